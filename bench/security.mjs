#!/usr/bin/env node
// Setup, checks and report of bench/security.sh (issue 4: the cost of record-level security).
//
//   node bench/security.mjs setup  --base URL --out DIR [--bus 100] [--users 10000] [--accounts 20000]
//                                  [--group-size 50] [--max-seconds 150]
//   node bench/security.mjs check  --base URL --out DIR     (BENCH_TOKEN, BENCH_USER_TOKEN, BENCH_CALLER_ID)
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
// accounts of other units: 403 for the user).
//
// check: one request of each kind as the admin and as the user (BENCH_USER_TOKEN, plus the header
// MSCRMCallerID: BENCH_CALLER_ID when set), asserting the answers a valid run needs: readable ids
// 200, other units' ids 403 0x80048306, each query value --group-size rows for both callers.
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
  const o = { base: '', out: '', bus: 100, users: 10000, accounts: 20000, groupSize: 50, maxSeconds: 150 };
  const names = {
    '--base': 'base', '--out': 'out', '--bus': 'bus', '--users': 'users', '--accounts': 'accounts',
    '--group-size': 'groupSize', '--max-seconds': 'maxSeconds',
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
  const body = new URLSearchParams({ grant_type: 'client_credentials', client_id: clientId, client_secret: clientSecret });
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
  const role = await create(token, 'roles', { name: roleName, 'businessunitid@odata.bind': `/businessunits(${bus[0]})` });
  const prv = await must(token, 'GET', "privileges?$select=privilegeid&$filter=name eq 'prvReadAccount'");
  const prvId = prv.json?.value?.[0]?.privilegeid;
  if (!prvId) fail('privilege prvReadAccount not found');
  await must(token, 'POST', `roles(${role})/Microsoft.Dynamics.CRM.AddPrivilegesRole`, {
    Privileges: [{ PrivilegeId: prvId, Depth: 'Local' }],
  });
  const benchBu = bus.length - 1;
  const user = usersOf[benchBu][0];
  await must(token, 'POST', `systemusers(${user})/systemuserroles_association/$ref`, { '@odata.id': `${API}/roles(${role})` });
  step(`role '${roleName}' (prvReadAccount, Local) given to ${user}`);

  // Accounts: account i in unit b = i mod bus, the j-th of that unit, owned by one of its users.
  const ids = [];
  const numbers = new Set();
  const others = [];
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
  const setupEnv = Object.fromEntries(lines('setup.env').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
  if (who.status !== 200 || who.json?.BusinessUnitId?.toLowerCase() !== setupEnv.user_bu) {
    problems.push(`WhoAmI as the user: ${who.status}, business unit ${who.json?.BusinessUnitId} (expected ${setupEnv.user_bu})`);
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
  const q = (v) => `accounts?$select=name,accountnumber&$filter=${encodeURIComponent(`accountnumber eq '${v}'`)}&$top=50`;
  for (const v of values) {
    for (const [name, token, extra] of [['admin', admin, {}], ['user', userToken, asUser]]) {
      const r = await call(token, 'GET', q(v), undefined, extra);
      const n = r.json?.value?.length;
      const want = Math.min(50, Number(setupEnv.group_size));
      if (r.status !== 200 || n !== want) problems.push(`query '${v}' as the ${name}: ${r.status}, ${n} rows (expected ${want})`);
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
  out.push(`Organization: ${R.bus || '?'} business units, ${int(num(R.users))} users, ${int(num(R.accounts))} accounts ` +
           `(${R.readable_accounts || '?'} in the benchmark user's unit, ${R.query_values || '?'} accountnumber values of ` +
           `${R.group_size || '?'} rows there); setup ${R.setup_seconds || '?'} s. ` +
           `User: prvReadAccount at Local (Business Unit) depth, acting through ${R.caller_mode || '?'}.`);
  out.push(`wrk -t${R.threads || '?'} -c${R.connections || '?'} -d${R.duration || '?'} (warm-up ${R.warmup || 'none'}), ` +
           `${rounds} round(s) (admin first in odd rounds, user first in even ones); req/s and CPU/req are the ` +
           'means of the rounds, p99 the worst.', '');
  if (R.error) out.push(`**Run failed:** ${R.error}`, '');
  out.push('| Operation | System Administrator req/s | p99 | CPU/req | BU-depth user req/s | p99 | CPU/req | ' +
           `overhead (req/s) | overhead (CPU/req) | target ≤ ${Math.round(target * 100)}% |`);
  out.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---|');
  const labels = { get: 'GET account by id', query: 'Filtered query (`accountnumber eq`, `$top=50`)' };
  const cpu = (v) => (v === null ? 'n/a' : `${Math.round(v)} µs`);
  const mean = (a) => (a.length ? a.reduce((x, y) => x + y, 0) / a.length : null);
  // The runs NAME_1 … NAME_rounds (or just NAME): mean req/s and CPU/req, worst p99, any errors.
  const agg = (name, n) => {
    const keys = n ? Array.from({ length: n }, (_, i) => `${name}_${i + 1}`) : [name];
    const rps = [];
    const p99 = [];
    const cpus = [];
    let bad = false;
    for (const k of keys) {
      if (num(R[`${k}_rps`]) === null) { bad = true; continue; }
      rps.push(num(R[`${k}_rps`]));
      p99.push(num(R[`${k}_p99_ms`]));
      if (num(R[`${k}_cpu_us`]) !== null) cpus.push(num(R[`${k}_cpu_us`]));
      if (['non2xx', 'connect', 'read', 'write', 'timeout'].some((e) => (num(R[`${k}_${e}`]) || 0) > 0)) bad = true;
    }
    return { rps: mean(rps), p99: p99.length ? Math.max(...p99) : null, cpu: mean(cpus), bad, all: rps.map(int).join(' / ') };
  };
  for (const op of ['get', 'query']) {
    const a = agg(`${op}_admin`, rounds);
    const u = agg(`${op}_user`, rounds);
    const overhead = a.rps && u.rps ? 1 - u.rps / a.rps : null;
    const cpuOver = a.cpu && u.cpu ? u.cpu / a.cpu - 1 : null;
    const verdict = a.bad || u.bad ? 'invalid run (errors)' : overhead === null ? 'n/a'
      : overhead <= target ? '**met**' : '**missed**';
    const each = (x) => (rounds > 1 ? ` (${x.all})` : '');
    out.push(`| ${labels[op]} | ${int(a.rps)}${each(a)} | ${ms(a.p99)} | ${cpu(a.cpu)} | ${int(u.rps)}${each(u)} | ` +
             `${ms(u.p99)} | ${cpu(u.cpu)} | ${pct(overhead)} | ${pct(cpuOver)} | ${verdict} |`);
  }
  const la = agg('list_admin', 1);
  const lu = agg('list_user', 1);
  if (la.rps !== null || lu.rps !== null) {
    const overhead = la.rps && lu.rps ? 1 - lu.rps / la.rps : null;
    const cpuOver = la.cpu && lu.cpu ? lu.cpu / la.cpu - 1 : null;
    out.push(`| List without a filter (\`$top=50\`; not part of the target) | ${int(la.rps)} | ${ms(la.p99)} | ` +
             `${cpu(la.cpu)} | ${int(lu.rps)} | ${ms(lu.p99)} | ${cpu(lu.cpu)} | ${pct(overhead)} | ${pct(cpuOver)} | ` +
             `${la.bad || lu.bad ? 'invalid run (errors)' : ''} |`);
  }
  out.push('', 'Overhead (req/s) = 1 − user ÷ admin; overhead (CPU/req) = user ÷ admin − 1 of the server\'s CPU time ' +
           'per request (utime + stime of the process over the measured run ÷ requests), which depends less on ' +
           'what else runs on the machine.');
  const imp = agg('imp_get', 0);
  if (imp.rps !== null) {
    const tok = agg('get_user', rounds);
    out.push('', `Impersonation (the admin's token + MSCRMCallerID of the same user) against the user's own token, ` +
             `GET by id: ${int(imp.rps)} vs ${int(tok.rps)} req/s (${pct(tok.rps ? 1 - imp.rps / tok.rps : null)} ` +
             `fewer), CPU/req ${cpu(imp.cpu)} vs ${cpu(tok.cpu)}, p99 ${ms(imp.p99)} vs ${ms(tok.p99)}.`);
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
} else if (command === 'report') {
  if (!argv[1]) fail('usage: security.mjs report DIR');
  process.stdout.write(report(argv[1]));
} else {
  fail('usage: security.mjs setup|check|report ... (see the header)');
}
