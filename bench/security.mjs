#!/usr/bin/env node
// Setup, checks and report of bench/security.sh (issue 4: the cost of record-level security).
//
//   node bench/security.mjs setup  --base URL --out DIR [--bus 100] [--users 10000] [--accounts 20000]
//                                  [--group-size 50] [--max-seconds 150]
//   node bench/security.mjs check  --base URL --out DIR     (BENCH_TOKEN, BENCH_USER_TOKEN, BENCH_CALLER_ID)
//   node bench/security.mjs many   --base URL --out DIR     (BENCH_TOKEN)
//   node bench/security.mjs seq    --base URL --out DIR --kind get|query --count N
//                                                          (BENCH_TOKEN, BENCH_CALLER_ID)
//   node bench/security.mjs report DIR
//
// setup, as the bootstrap System Administrator (BENCH_CLIENT_ID / BENCH_CLIENT_SECRET):
//   - a business-unit tree of --bus units: the root, 9 children, the rest spread over the children
//     (100 → root + 9 + 90);
//   - --users systemusers, user j in unit j mod bus (CreateMultiple, 500 per request);
//   - a role "Bench BU reader" in the root unit with prvReadAccount at Local (Business Unit) depth;
//   - --accounts accounts, account i in unit b = i mod bus, owned by one of that unit's users
//     (ownerid@odata.bind, CreateMultiple of 1,000). Its accountnumber is "S-<b>-<k>": the
//     accounts of one value (--group-size of them) all belong to one unit.
//   - the benchmark user: the first user of the last unit (a leaf), given the role.
// It writes to --out: setup.env (key=value: user, bu, role, role_name, counts, seconds),
// ids.txt (the accounts of the benchmark user's unit: readable by it), numbers.txt (their
// accountnumber values: each matches --group-size readable accounts) and other_ids.txt (a few
// accounts of other units: 403 for the user) and pairs.txt ("<user> <account>" for every user, the
// account in the user's unit, in an order that mixes the units).
//
// check: one request of each kind as the admin and as the user (BENCH_USER_TOKEN, plus the header
// MSCRMCallerID: BENCH_CALLER_ID when set), asserting the answers a valid run needs: readable ids
// 200, other units' ids 403 0x80048306, each query value --group-size rows for both callers.
//
// many: gives the role to the default team of every unit, so every user reads its unit's accounts,
// and checks two pairs of pairs.txt by impersonation (the admin's token, BENCH_TOKEN).
//
// seq: N requests one after the other (GET by id over ids.txt, or the filtered query over
// numbers.txt), for counting the server's instructions per request; fails on any non-200.
//
// report: renders results.env of a bench/security.sh work dir as markdown.

import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const argv = process.argv.slice(2);
const command = argv[0];

function fail(msg) {
  console.error(`security.mjs: ${msg}`);
  process.exit(1);
}

function parseArgs(args) {
  const o = {
    base: '', out: '', bus: 100, users: 10000, accounts: 20000, groupSize: 50, maxSeconds: 150, kind: 'get', count: 0,
  };
  const names = {
    '--base': 'base', '--out': 'out', '--bus': 'bus', '--users': 'users', '--accounts': 'accounts',
    '--group-size': 'groupSize', '--max-seconds': 'maxSeconds', '--kind': 'kind', '--count': 'count',
  };
  for (let i = 0; i < args.length; i++) {
    const key = names[args[i]];
    if (!key || i + 1 >= args.length) fail(`unknown or incomplete option ${args[i]}`);
    const v = args[++i];
    o[key] = typeof o[key] === 'number' ? Number(v) : v;
  }
  if (!o.base || !o.out) fail('--base and --out are required');
  if (!(o.bus >= 2) || !(o.users >= o.bus) || !(o.accounts >= o.bus) || !(o.groupSize >= 1)) {
    fail('need --bus >= 2, --users >= --bus, --accounts >= --bus, --group-size >= 1');
  }
  o.base = o.base.replace(/\/+$/, '');
  return o;
}

// ------------------------------------------------------------------------------------------------
// HTTP
// ------------------------------------------------------------------------------------------------

let opt;
let API;
let deadline = Infinity;

async function fetchToken(clientId, clientSecret) {
  const body = new URLSearchParams({
    grant_type: 'client_credentials', client_id: clientId, client_secret: clientSecret,
  });
  const r = await fetch(`${opt.base}/oauth2/v2.0/token`, {
    method: 'POST', body, headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
  });
  const text = await r.text();
  if (!r.ok) fail(`token request failed: ${r.status} ${text.slice(0, 200)}`);
  return JSON.parse(text).access_token;
}

function headers(token, extra = {}) {
  return {
    Authorization: `Bearer ${token}`, Accept: 'application/json', 'OData-MaxVersion': '4.0',
    'OData-Version': '4.0', 'Content-Type': 'application/json; charset=utf-8', ...extra,
  };
}

// One request; the parsed JSON body (or null) with the status. Fails the run past --max-seconds.
async function call(token, method, path, body, extra) {
  if (performance.now() > deadline) fail(`setup took longer than ${opt.maxSeconds} s; giving up`);
  const r = await fetch(`${API}/${path}`, {
    method, headers: headers(token, extra), body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
  return { status: r.status, json, text, headers: r.headers };
}

// key=value lines of a file.
function readEnv(file) {
  const out = {};
  for (const l of readFileSync(file, 'utf8').split('\n')) {
    const i = l.indexOf('=');
    if (i > 0) out[l.slice(0, i)] = l.slice(i + 1);
  }
  return out;
}

// The filtered query of the benchmark (as bench/query.lua sends it).
function queryPath(value) {
  const filter = encodeURIComponent(`accountnumber eq '${value.replace(/'/g, "''")}'`);
  return `accounts?$select=name,accountnumber&$filter=${filter}&$top=50`;
}

async function must(token, method, path, body) {
  const r = await call(token, method, path, body);
  if (r.status < 200 || r.status > 299) fail(`${method} ${path} -> ${r.status} ${r.text.slice(0, 300)}`);
  return r;
}

const GUID = /\(([0-9a-fA-F-]{36})\)/;
async function create(token, set, record) {
  const r = await must(token, 'POST', set, record);
  const m = GUID.exec(r.headers.get('odata-entityid') || '');
  if (!m) fail(`POST ${set}: no OData-EntityId`);
  return m[1].toLowerCase();
}

async function createMultiple(token, set, type, records) {
  const Targets = records.map((r) => ({ '@odata.type': `Microsoft.Dynamics.CRM.${type}`, ...r }));
  const r = await must(token, 'POST', `${set}/Microsoft.Dynamics.CRM.CreateMultiple`, { Targets });
  const ids = r.json?.Ids || [];
  if (ids.length !== records.length) fail(`CreateMultiple ${set}: ${ids.length} ids for ${records.length} records`);
  return ids.map((id) => String(id).toLowerCase());
}

// Runs fn(i) for i in [0, n) with `width` calls in flight.
async function pool(n, width, fn) {
  let next = 0;
  const worker = async () => {
    while (next < n) await fn(next++);
  };
  await Promise.all(Array.from({ length: Math.min(width, n) }, worker));
}

// ------------------------------------------------------------------------------------------------
// setup
// ------------------------------------------------------------------------------------------------

async function setup() {
  const t0 = performance.now();
  deadline = opt.maxSeconds > 0 ? t0 + opt.maxSeconds * 1000 : Infinity;
  const token = await fetchToken(process.env.BENCH_CLIENT_ID || '', process.env.BENCH_CLIENT_SECRET || '');
  const me = (await must(token, 'GET', 'WhoAmI')).json;
  const step = (what) => console.error(`security.mjs: ${what} (${((performance.now() - t0) / 1000).toFixed(1)} s)`);

  // Business units: the root, up to 9 children, the rest round-robin under the children.
  const bus = [me.BusinessUnitId.toLowerCase()];
  const level1 = Math.min(9, opt.bus - 1);
  for (let c = 0; c < level1; c++) {
    bus.push(await create(token, 'businessunits', {
      name: `Bench BU ${bus.length}`, 'parentbusinessunitid@odata.bind': `/businessunits(${bus[0]})`,
    }));
  }
  const leaves = opt.bus - 1 - level1;
  const leafIds = new Array(leaves);
  await pool(leaves, 4, async (k) => {
    leafIds[k] = await create(token, 'businessunits', {
      name: `Bench BU ${1 + level1 + k}`,
      'parentbusinessunitid@odata.bind': `/businessunits(${bus[1 + (k % level1)]})`,
    });
  });
  bus.push(...leafIds);
  step(`${bus.length} business units`);

  // Users: user j in unit j mod bus.
  const usersOf = bus.map(() => []);
  const userBatch = 500;
  await pool(Math.ceil(opt.users / userBatch), 2, async (b) => {
    const first = b * userBatch;
    const n = Math.min(userBatch, opt.users - first);
    const recs = [];
    for (let j = first; j < first + n; j++) {
      recs.push({
        firstname: 'Bench', lastname: `User ${j}`, domainname: `bench.user.${j}@example.com`,
        'businessunitid@odata.bind': `/businessunits(${bus[j % bus.length]})`,
      });
    }
    const ids = await createMultiple(token, 'systemusers', 'systemuser', recs);
    ids.forEach((id, k) => { usersOf[(first + k) % bus.length][Math.floor((first + k) / bus.length)] = id; });
  });
  step(`${opt.users} users`);

  // The role: Read on account at Local (Business Unit) depth.
  const roleName = 'Bench BU reader';
  const role = await create(token, 'roles', {
    name: roleName, 'businessunitid@odata.bind': `/businessunits(${bus[0]})`,
  });
  const prv = await must(token, 'GET', "privileges?$select=privilegeid&$filter=name eq 'prvReadAccount'");
  const prvId = prv.json?.value?.[0]?.privilegeid;
  if (!prvId) fail('privilege prvReadAccount not found');
  await must(token, 'POST', `roles(${role})/Microsoft.Dynamics.CRM.AddPrivilegesRole`, {
    Privileges: [{ PrivilegeId: prvId, Depth: 'Local' }],
  });
  const benchBu = bus.length - 1;
  const user = usersOf[benchBu][0];
  await must(token, 'POST', `systemusers(${user})/systemuserroles_association/$ref`, {
    '@odata.id': `${API}/roles(${role})`,
  });
  step(`role '${roleName}' (prvReadAccount, Local) given to ${user}`);

  // Accounts: account i in unit b = i mod bus, the j-th of that unit, owned by one of its users.
  const ids = [];
  const numbers = new Set();
  const others = [];
  const accountsOf = bus.map(() => []);
  const accountBatch = 1000;
  await pool(Math.ceil(opt.accounts / accountBatch), 2, async (b) => {
    const first = b * accountBatch;
    const n = Math.min(accountBatch, opt.accounts - first);
    const recs = [];
    for (let i = first; i < first + n; i++) {
      const bu = i % bus.length;
      const j = Math.floor(i / bus.length);
      const owners = usersOf[bu];
      recs.push({
        name: `Bench Account ${i}`,
        accountnumber: `S-${bu}-${Math.floor(j / opt.groupSize)}`,
        numberofemployees: i % 5000,
        revenue: 1000.5 + (i % 100000),
        telephone1: `+1-555-${String(1000000 + (i % 9000000)).padStart(7, '0')}`,
        'ownerid@odata.bind': `/systemusers(${owners[j % owners.length]})`,
      });
    }
    const got = await createMultiple(token, 'accounts', 'account', recs);
    got.forEach((id, k) => {
      const i = first + k;
      const bu = i % bus.length;
      accountsOf[bu].push(id);
      if (bu === benchBu) {
        ids.push(id);
        numbers.add(recs[k].accountnumber);
      } else if (others.length < 50 && bu !== 0) {
        others.push(id);
      }
    });
  });
  step(`${opt.accounts} accounts`);

  writeFileSync(join(opt.out, 'ids.txt'), ids.join('\n') + '\n');
  writeFileSync(join(opt.out, 'numbers.txt'), [...numbers].join('\n') + '\n');
  writeFileSync(join(opt.out, 'other_ids.txt'), others.join('\n') + '\n');
  // Every user with an account of its unit; user j of unit b is the (j * bus + b)-th line, so
  // consecutive lines belong to different units.
  const pairs = [];
  const perUnit = Math.max(...usersOf.map((u) => u.length));
  for (let j = 0; j < perUnit; j++) {
    for (let b = 0; b < bus.length; b++) {
      const u = usersOf[b][j];
      const a = accountsOf[b];
      if (u && a.length) pairs.push(`${u} ${a[j % a.length]}`);
    }
  }
  writeFileSync(join(opt.out, 'pairs.txt'), pairs.join('\n') + '\n');
  const seconds = (performance.now() - t0) / 1000;
  const env = {
    user, user_bu: bus[benchBu], root_bu: bus[0], role, role_name: roleName, bus: bus.length,
    users: opt.users, accounts: opt.accounts, readable_accounts: ids.length, query_values: numbers.size,
    group_size: opt.groupSize, users_in_bu: usersOf[benchBu].length, setup_seconds: seconds.toFixed(1),
  };
  writeFileSync(join(opt.out, 'setup.env'), Object.entries(env).map(([k, v]) => `${k}=${v}`).join('\n') + '\n');
  step('done');
}

// ------------------------------------------------------------------------------------------------
// check
// ------------------------------------------------------------------------------------------------

async function check() {
  const lines = (f) => readFileSync(join(opt.out, f), 'utf8').split('\n').filter(Boolean);
  const admin = process.env.BENCH_TOKEN || '';
  const userToken = process.env.BENCH_USER_TOKEN || '';
  const caller = process.env.BENCH_CALLER_ID || '';
  if (!admin || !userToken) fail('BENCH_TOKEN and BENCH_USER_TOKEN are required');
  const asUser = caller ? { MSCRMCallerID: caller } : {};
  const ids = lines('ids.txt');
  const others = lines('other_ids.txt');
  const values = lines('numbers.txt');
  const problems = [];
  const who = await call(userToken, 'GET', 'WhoAmI', undefined, asUser);
  const setupEnv = readEnv(join(opt.out, 'setup.env'));
  if (who.status !== 200 || who.json?.BusinessUnitId?.toLowerCase() !== setupEnv.user_bu) {
    problems.push(`WhoAmI as the user: ${who.status}, business unit ${who.json?.BusinessUnitId} ` +
                  `(expected ${setupEnv.user_bu})`);
  }
  for (const id of [ids[0], ids[ids.length - 1]]) {
    for (const [name, token, extra] of [['admin', admin, {}], ['user', userToken, asUser]]) {
      const r = await call(token, 'GET', `accounts(${id})?$select=name`, undefined, extra);
      if (r.status !== 200) problems.push(`GET accounts(${id}) as the ${name}: ${r.status} ${r.text.slice(0, 200)}`);
    }
  }
  for (const id of others.slice(0, 3)) {
    const r = await call(userToken, 'GET', `accounts(${id})?$select=name`, undefined, asUser);
    if (r.status !== 403 || r.json?.error?.code !== '0x80048306') {
      problems.push(`GET accounts(${id}) of another unit as the user: ${r.status} (expected 403 0x80048306)`);
    }
  }
  const q = (v) => queryPath(v);
  for (const v of values) {
    for (const [name, token, extra] of [['admin', admin, {}], ['user', userToken, asUser]]) {
      const r = await call(token, 'GET', q(v), undefined, extra);
      const n = r.json?.value?.length;
      const want = Math.min(50, Number(setupEnv.group_size));
      if (r.status !== 200 || n !== want) {
        problems.push(`query '${v}' as the ${name}: ${r.status}, ${n} rows (expected ${want})`);
      }
    }
  }
  // Without a selective filter the user sees only its unit's share of the table.
  const all = await call(userToken, 'GET', 'accounts?$select=name&$count=true&$top=1', undefined, asUser);
  const count = all.json?.['@odata.count'];
  if (count !== ids.length) problems.push(`$count as the user: ${count} (expected ${ids.length})`);
  if (problems.length) fail(`the setup is not what the benchmark needs:\n  ${problems.join('\n  ')}`);
  console.error(`security.mjs: checks passed (${ids.length} readable ids, ${values.length} query values, ` +
                `others' records 403, user $count ${count})`);
}

// ------------------------------------------------------------------------------------------------
// many
// ------------------------------------------------------------------------------------------------

async function many() {
  const token = process.env.BENCH_TOKEN || '';
  if (!token) fail('BENCH_TOKEN is required');
  const env = readEnv(join(opt.out, 'setup.env'));
  const teams = (await must(token, 'GET', 'teams?$select=teamid&$filter=isdefault eq true')).json?.value || [];
  await pool(teams.length, 4, async (k) => {
    await must(token, 'POST', `teams(${teams[k].teamid})/teamroles_association/$ref`, {
      '@odata.id': `${API}/roles(${env.role})`,
    });
  });
  const pairs = readFileSync(join(opt.out, 'pairs.txt'), 'utf8').split('\n').filter(Boolean);
  for (const line of [pairs[1], pairs[pairs.length - 1]]) {
    const [user, id] = line.split(' ');
    const r = await call(token, 'GET', `accounts(${id})?$select=name`, undefined, { MSCRMCallerID: user });
    if (r.status !== 200) fail(`GET accounts(${id}) as ${user}: ${r.status} ${r.text.slice(0, 200)}`);
  }
  console.error(`security.mjs: the role is on ${teams.length} default teams; ${pairs.length} user/account pairs`);
}

// ------------------------------------------------------------------------------------------------
// seq
// ------------------------------------------------------------------------------------------------

async function seq() {
  const token = process.env.BENCH_TOKEN || '';
  if (!token) fail('BENCH_TOKEN is required');
  const extra = process.env.BENCH_CALLER_ID ? { MSCRMCallerID: process.env.BENCH_CALLER_ID } : {};
  const lines = (f) => readFileSync(join(opt.out, f), 'utf8').split('\n').filter(Boolean);
  const list = lines(opt.kind === 'query' ? 'numbers.txt' : 'ids.txt');
  for (let i = 0; i < opt.count; i++) {
    const v = list[i % list.length];
    const path = opt.kind === 'query' ? queryPath(v) : `accounts(${v})`;
    const r = await call(token, 'GET', path, undefined, extra);
    if (r.status !== 200) fail(`GET ${path} -> ${r.status} ${r.text.slice(0, 200)}`);
  }
}

// ------------------------------------------------------------------------------------------------
// report
// ------------------------------------------------------------------------------------------------

function report(dir) {
  const R = {};
  const read = (f) => (existsSync(join(dir, f)) ? readFileSync(join(dir, f), 'utf8') : '');
  for (const line of (read('setup.env') + read('results.env')).split('\n')) {
    const i = line.indexOf('=');
    if (i > 0) R[line.slice(0, i)] = line.slice(i + 1);
  }
  const num = (v) => (v === undefined || v === '' || Number.isNaN(Number(v)) ? null : Number(v));
  const int = (v) => (v === null ? 'n/a' : Math.round(v).toLocaleString('en-US'));
  const ms = (v) => (v === null ? 'n/a' : `${v.toFixed(2)} ms`);
  const pct = (v) => (v === null ? 'n/a' : `${(v * 100).toFixed(1)}%`);
  const rounds = num(R.rounds) || 0;
  const target = num(R.target_overhead) ?? 0.15;
  const out = [];
  out.push(`### Security checks (bench/security.sh), ${R.date || ''}`, '');
  out.push(`Machine: ${R.cpus || '?'} CPUs (${R.cpu_model || '?'}), ${R.mem_gib || '?'} GiB, ${R.os || '?'}; ` +
           `git ${R.git || '?'}; data dir on ${R.fs || '?'}.`);
  out.push(`Organization: ${R.bus || '?'} business units, ${int(num(R.users))} users, ` +
           `${int(num(R.accounts))} accounts (${R.readable_accounts || '?'} in the benchmark user's unit, ` +
           `${R.query_values || '?'} accountnumber values of ` +
           `${R.group_size || '?'} rows there); setup ${R.setup_seconds || '?'} s. ` +
           `User: prvReadAccount at Local (Business Unit) depth, acting through ${R.caller_mode || '?'}.`);
  out.push(`wrk -t${R.threads || '?'} -c${R.connections || '?'} -d${R.duration || '?'} ` +
           `(warm-up ${R.warmup || 'none'}), ` +
           `${rounds} round(s) (admin first in odd rounds, user first in even ones); req/s and CPU/req are the ` +
           'means of the rounds, p99 the worst.', '');
  if (R.error) out.push(`**Run failed:** ${R.error}`, '');
  out.push('| Operation | System Administrator req/s | p99 | CPU/req | BU-depth user req/s | p99 | CPU/req | ' +
           `overhead (req/s) | overhead (CPU/req) | target ≤ ${Math.round(target * 100)}% |`);
  out.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---|');
  const labels = { get: 'GET account by id', query: 'Filtered query (`accountnumber eq`, `$top=50`)' };
  const cpu = (v) => (v === null ? 'n/a' : `${Math.round(v)} µs`);
  const mean = (a) => (a.length ? a.reduce((x, y) => x + y, 0) / a.length : null);
  const median = (a) => {
    if (!a.length) return null;
    const s = [...a].sort((x, y) => x - y);
    return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  };
  // The runs NAME_1 … NAME_n (or just NAME with n = 0): per-run req/s and CPU/req (null when a run
  // is missing), mean req/s and CPU/req, worst p99, whether any run had errors.
  const agg = (name, n) => {
    const keys = n ? Array.from({ length: n }, (_, i) => `${name}_${i + 1}`) : [name];
    const rps = keys.map((k) => num(R[`${k}_rps`]));
    const cpus = keys.map((k) => num(R[`${k}_cpu_us`]));
    const p99 = keys.map((k) => num(R[`${k}_p99_ms`])).filter((v) => v !== null);
    const bad = keys.some((k) => num(R[`${k}_rps`]) === null ||
      ['non2xx', 'connect', 'read', 'write', 'timeout'].some((e) => (num(R[`${k}_${e}`]) || 0) > 0));
    const ok = rps.filter((v) => v !== null);
    const all = ok.length <= 4 ? ok.map(int).join(' / ') : `${int(Math.min(...ok))}–${int(Math.max(...ok))}`;
    return { runs: rps, cpus, rps: mean(ok), cpu: mean(cpus.filter((v) => v !== null)),
             p99: p99.length ? Math.max(...p99) : null, bad, all };
  };
  // Overheads from the rounds' pairs (same round, so the same machine conditions): the median of
  // 1 − user ÷ admin req/s and of user ÷ admin − 1 CPU/req.
  const paired = (a, u) => {
    const r = [];
    const c = [];
    a.runs.forEach((v, i) => {
      if (v && u.runs[i]) r.push(1 - u.runs[i] / v);
      if (a.cpus[i] && u.cpus[i]) c.push(u.cpus[i] / a.cpus[i] - 1);
    });
    return { rps: median(r), cpu: median(c) };
  };
  for (const op of ['get', 'query']) {
    const a = agg(`${op}_admin`, rounds);
    const u = agg(`${op}_user`, rounds);
    const over = paired(a, u);
    const verdict = a.bad || u.bad ? 'invalid run (errors)' : over.rps === null ? 'n/a'
      : over.rps <= target ? '**met**' : '**missed**';
    const each = (x) => (rounds > 1 ? ` (${x.all})` : '');
    out.push(`| ${labels[op]} | ${int(a.rps)}${each(a)} | ${ms(a.p99)} | ${cpu(a.cpu)} | ${int(u.rps)}${each(u)} | ` +
             `${ms(u.p99)} | ${cpu(u.cpu)} | ${pct(over.rps)} | ${pct(over.cpu)} | ${verdict} |`);
  }
  // Beyond the target: the cases where the checks cost more.
  const extra = [];
  const row = (label, baseName, base, otherName, other) => {
    const over = paired(base, other);
    extra.push(`| ${label} | ${baseName}: ${int(base.rps)} req/s, p99 ${ms(base.p99)}, ${cpu(base.cpu)} | ` +
               `${otherName}: ${int(other.rps)} req/s, p99 ${ms(other.p99)}, ${cpu(other.cpu)} | ${pct(over.rps)} | ` +
               `${pct(over.cpu)} |${base.bad || other.bad ? ' invalid run (errors)' : ''}`);
  };
  const la = agg('list_admin', 1);
  const lu = agg('list_user', 1);
  if (la.rps !== null || lu.rps !== null) {
    row('List without a filter (`accounts?$select=name,accountnumber&$top=50`)', 'admin', la, 'BU-depth user', lu);
  }
  const one = agg('users_one', 0);
  const all = agg('users_all', 0);
  if (one.rps !== null || all.rps !== null) {
    row(`GET by id as ${int(num(R.pairs))} different users in turn (MSCRMCallerID; the role on every unit's ` +
        'default team)',
        'one user', one, 'all users', all);
  }
  const ir = (k) => num(R[`cg_${k}_ir`]);
  if (ir('get_admin') !== null || ir('query_admin') !== null) {
    const kir = (v) => (v === null ? 'n/a' : `${(v / 1000).toFixed(1)}k`);
    const over = (a, b) => (a && b ? pct(b / a - 1) : 'n/a');
    out.push('', 'Instructions per request, counted by callgrind (valgrind) on the same data ' +
             `(${R.cg_requests || '?'}, one after the other): they do not depend on what else runs on the ` +
             'machine, so they measure the work the checks add more exactly than req/s on a shared machine.', '',
             '| Operation | System Administrator | BU-depth user | more instructions | ' +
             `target ≤ ${Math.round(target * 100)}% |`, '|---|---:|---:|---:|---|');
    for (const op of ['get', 'query']) {
      const a = ir(`${op}_admin`);
      const u = ir(`${op}_user`);
      const verdict = a && u ? (u / a - 1 <= target ? '**met**' : '**missed**') : 'n/a';
      out.push(`| ${labels[op]} | ${kir(a)} | ${kir(u)} | ${over(a, u)} | ${verdict} |`);
    }
    if (ir('get_imp') !== null) {
      out.push(`| GET by id: the admin's token + MSCRMCallerID of the user, against the user's own token | ` +
               `${kir(ir('get_user'))} (user's token) | ${kir(ir('get_imp'))} (impersonation) | ` +
               `${over(ir('get_user'), ir('get_imp'))} | |`);
    }
  }
  const busy = Object.keys(R).filter((k) => /^(get|query)_\d+_busy$/.test(k)).map((k) => num(R[k]));
  if (busy.length) {
    const quiet = busy.filter((b) => b < num(R.idle_busy)).length;
    out.push('', 'Each pair started after waiting for the other work on the machine to drop below ' +
             `${R.idle_busy || '?'}% CPU (up to ${R.idle_wait || '?'} s): it was ${quiet} of ${busy.length} times; ` +
             `CPU busy at the start of the pairs ${Math.min(...busy)}–${Math.max(...busy)}%.`);
  }
  out.push('', 'Overhead (req/s) = 1 − user ÷ admin req/s; overhead (CPU/req) = user ÷ admin − 1 of the ' +
           'server\'s CPU ' +
           'time per request (utime + stime of the process over the measured run ÷ requests), which depends less ' +
           'on what else runs on the machine. Both are the median over the rounds of the ratio within a round.');
  const imp = agg('imp_get', 0);
  const tok = agg('imp_token', 0);
  if (imp.rps !== null && tok.rps !== null) {
    out.push('', `Impersonation, GET by id, two runs back to back: the user's own token ${int(tok.rps)} req/s, ` +
             `CPU/req ${cpu(tok.cpu)}, p99 ${ms(tok.p99)}; the admin's token + MSCRMCallerID of the same user ` +
             `${int(imp.rps)} req/s, CPU/req ${cpu(imp.cpu)}, p99 ${ms(imp.p99)} ` +
             `(${pct(1 - imp.rps / tok.rps)} fewer req/s, ` +
             `${pct(imp.cpu && tok.cpu ? imp.cpu / tok.cpu - 1 : null)} CPU/req).`);
  }
  if (extra.length) {
    out.push('', 'Beyond the target (CPU = the server\'s CPU time per request):', '',
             '| Case | baseline | with the checks | fewer req/s | more CPU/req |', '|---|---|---|---:|---:|', ...extra);
  }
  out.push('', `Load average before / after: ${R.load_before || '?'} / ${R.load_after || '?'}.`);
  out.push('');
  return out.join('\n');
}

// ------------------------------------------------------------------------------------------------

if (command === 'setup') {
  opt = parseArgs(argv.slice(1));
  API = `${opt.base}/api/data/v9.2`;
  setup().catch((e) => fail(e.stack || e.message));
} else if (command === 'check') {
  opt = parseArgs(argv.slice(1));
  API = `${opt.base}/api/data/v9.2`;
  check().catch((e) => fail(e.stack || e.message));
} else if (command === 'many') {
  opt = parseArgs(argv.slice(1));
  API = `${opt.base}/api/data/v9.2`;
  many().catch((e) => fail(e.stack || e.message));
} else if (command === 'seq') {
  opt = parseArgs(argv.slice(1));
  API = `${opt.base}/api/data/v9.2`;
  seq().catch((e) => fail(e.stack || e.message));
} else if (command === 'report') {
  if (!argv[1]) fail('usage: security.mjs report DIR');
  process.stdout.write(report(argv[1]));
} else {
  fail('usage: security.mjs setup|check|many|seq|report ... (see the header)');
}
