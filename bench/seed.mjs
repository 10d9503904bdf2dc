#!/usr/bin/env node
// Seeds accounts into a running Tributary server through its Web API, with N requests in flight.
//
//   node bench/seed.mjs --base http://127.0.0.1:PORT --count 20000 [options]
//
// Options:
//   --count N            accounts to create (default 20000)
//   --start K            index of the first account (for resuming a partly built store; default 0)
//   --concurrency C      requests in flight (default 32)
//   --mode M             auto | single | multiple (default auto: use CreateMultiple when the server
//                        answers it, otherwise one POST per account)
//   --batch B            records per CreateMultiple request (default 100)
//   --group-size G       accounts sharing one accountnumber value (default 50, so a filter on one
//                        value matches up to $top=50 rows); values are "A-<i mod ceil(total/G)>"
//   --total T            store size the accountnumber groups are computed for (default start+count)
//   --ids-out FILE       append the GUID of every created account, one per line
//   --numbers-out FILE   write the distinct accountnumber values used, one per line
//   --max-seconds S      stop starting new requests after S seconds (0 = no limit)
//
// Credentials come from BENCH_CLIENT_ID / BENCH_CLIENT_SECRET; the script fetches a token with the
// client_credentials grant and fetches a fresh one if the server answers 401.
// The last line on stdout is a summary: created=N errors=N seconds=S rate=R mode=single|multiple
// Exit status 1 if nothing could be created or the error count exceeds max(100, 1% of count).

import { appendFileSync, writeFileSync } from 'node:fs';

function parseArgs(argv) {
  const o = {
    base: '', count: 20000, start: 0, concurrency: 32, mode: 'auto', batch: 100,
    groupSize: 50, total: 0, idsOut: '', numbersOut: '', maxSeconds: 0,
  };
  const names = {
    '--base': 'base', '--count': 'count', '--start': 'start', '--concurrency': 'concurrency',
    '--mode': 'mode', '--batch': 'batch', '--group-size': 'groupSize', '--total': 'total',
    '--ids-out': 'idsOut', '--numbers-out': 'numbersOut', '--max-seconds': 'maxSeconds',
  };
  for (let i = 2; i < argv.length; i++) {
    const key = names[argv[i]];
    if (!key || i + 1 >= argv.length) {
      console.error(`seed.mjs: unknown or incomplete option ${argv[i]}`);
      process.exit(2);
    }
    const v = argv[++i];
    o[key] = typeof o[key] === 'number' ? Number(v) : v;
  }
  if (!o.base) {
    console.error('seed.mjs: --base is required');
    process.exit(2);
  }
  o.base = o.base.replace(/\/+$/, '');
  if (!o.total) o.total = o.start + o.count;
  if (!['auto', 'single', 'multiple'].includes(o.mode)) {
    console.error(`seed.mjs: --mode must be auto, single or multiple`);
    process.exit(2);
  }
  return o;
}

const opt = parseArgs(process.argv);
const API = `${opt.base}/api/data/v9.2`;
const groups = Math.max(1, Math.ceil(opt.total / opt.groupSize));
const clientId = process.env.BENCH_CLIENT_ID || '';
const clientSecret = process.env.BENCH_CLIENT_SECRET || '';

let token = '';
let tokenPromise = null;
async function fetchToken() {
  const body = new URLSearchParams({
    grant_type: 'client_credentials', client_id: clientId, client_secret: clientSecret,
  });
  const r = await fetch(`${opt.base}/oauth2/v2.0/token`, {
    method: 'POST', body,
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
  });
  const text = await r.text();
  if (!r.ok) throw new Error(`token request failed: ${r.status} ${text.slice(0, 200)}`);
  const j = JSON.parse(text);
  if (!j.access_token) throw new Error(`token response has no access_token: ${text.slice(0, 200)}`);
  return j.access_token;
}
function refreshToken(stale) {
  if (token !== stale) return Promise.resolve(token);  // someone already refreshed it
  if (!tokenPromise) {
    tokenPromise = fetchToken().then((t) => { token = t; tokenPromise = null; return t; },
                                     (e) => { tokenPromise = null; throw e; });
  }
  return tokenPromise;
}

function account(i) {
  return {
    name: `Bench Account ${i}`,
    accountnumber: `A-${i % groups}`,
    numberofemployees: i % 5000,
    revenue: 1000.5 + (i % 100000),
    telephone1: `+1-555-${String(1000000 + (i % 9000000)).padStart(7, '0')}`,
  };
}

function headers(json) {
  const h = {
    Authorization: `Bearer ${token}`, Accept: 'application/json',
    'OData-MaxVersion': '4.0', 'OData-Version': '4.0',
  };
  if (json) h['Content-Type'] = 'application/json; charset=utf-8';
  return h;
}

// POST with one retry after a token refresh on 401.
async function post(url, payload) {
  for (let attempt = 0; ; attempt++) {
    const used = token;
    const r = await fetch(url, { method: 'POST', headers: headers(true), body: JSON.stringify(payload) });
    if (r.status === 401 && attempt === 0) {
      await r.arrayBuffer();
      await refreshToken(used);
      continue;
    }
    return r;
  }
}

const GUID_IN_PARENS = /\(([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})\)/;

let created = 0;
let errors = 0;
let shownErrors = 0;
const pendingIds = [];
function noteError(msg) {
  errors++;
  if (shownErrors++ < 5) console.error(`seed.mjs: ${msg}`);
}
function flushIds(force) {
  if (!opt.idsOut || pendingIds.length === 0) return;
  if (!force && pendingIds.length < 4096) return;
  appendFileSync(opt.idsOut, pendingIds.join('\n') + '\n');
  pendingIds.length = 0;
}

async function createOne(i) {
  const r = await post(`${API}/accounts`, account(i));
  const text = await r.text();
  if (r.status !== 204 && r.status !== 201 && r.status !== 200) {
    noteError(`POST accounts -> ${r.status} ${text.slice(0, 200)}`);
    return;
  }
  const loc = r.headers.get('odata-entityid') || r.headers.get('location') || '';
  const m = GUID_IN_PARENS.exec(loc);
  let id = m ? m[1] : '';
  if (!id && text) {
    try { id = JSON.parse(text).accountid || ''; } catch { /* no body id */ }
  }
  if (!id) {
    noteError(`POST accounts -> ${r.status} without OData-EntityId`);
    return;
  }
  created++;
  pendingIds.push(id.toLowerCase());
}

async function createMany(first, n) {
  const Targets = [];
  for (let i = first; i < first + n; i++) {
    Targets.push({ '@odata.type': 'Microsoft.Dynamics.CRM.account', ...account(i) });
  }
  const r = await post(`${API}/accounts/Microsoft.Dynamics.CRM.CreateMultiple`, { Targets });
  const text = await r.text();
  if (!r.ok) {
    return { ok: false, status: r.status, text };
  }
  let ids = [];
  try { ids = JSON.parse(text).Ids || []; } catch { /* handled below */ }
  if (ids.length !== n) return { ok: false, status: r.status, text };
  created += n;
  for (const id of ids) pendingIds.push(String(id).toLowerCase());
  return { ok: true };
}

async function main() {
  const t0 = performance.now();
  const deadline = opt.maxSeconds > 0 ? t0 + opt.maxSeconds * 1000 : Infinity;
  token = await fetchToken();

  let next = opt.start;
  const end = opt.start + opt.count;
  let mode = opt.mode;
  if (mode !== 'single' && next < end) {
    // Probe CreateMultiple with one record; it counts as a created account if it works.
    const probe = await createMany(next, 1);
    if (probe.ok) {
      mode = 'multiple';
      next++;
    } else if (mode === 'multiple') {
      console.error(`seed.mjs: CreateMultiple failed: ${probe.status} ${probe.text.slice(0, 200)}`);
      process.exit(1);
    } else {
      mode = 'single';
    }
  }
  console.error(`seed.mjs: creating ${end - next} accounts (${mode === 'multiple'
    ? `CreateMultiple x${opt.batch}` : 'one POST each'}, ${opt.concurrency} in flight)`);

  let lastReport = t0;
  const worker = async () => {
    while (next < end && performance.now() < deadline) {
      try {
        if (mode === 'multiple') {
          const first = next;
          const n = Math.min(opt.batch, end - first);
          next += n;
          const r = await createMany(first, n);
          if (!r.ok) noteError(`CreateMultiple -> ${r.status} ${r.text.slice(0, 200)}`);
        } else {
          await createOne(next++);
        }
      } catch (e) {  // connection reset, refused, ...: count it and go on
        noteError(`request failed: ${e.cause?.code || e.message}`);
      }
      flushIds(false);
      const now = performance.now();
      if (now - lastReport > 2000) {
        lastReport = now;
        const s = (now - t0) / 1000;
        console.error(`seed.mjs: ${created} created, ${errors} errors, ${(created / s).toFixed(0)}/s`);
      }
      if (errors > Math.max(100, opt.count / 100)) return;
    }
  };
  const inFlight = mode === 'multiple' ? Math.max(1, Math.ceil(opt.concurrency / 4)) : opt.concurrency;
  await Promise.all(Array.from({ length: inFlight }, worker));
  flushIds(true);

  if (opt.numbersOut) {
    const used = Math.min(groups, Math.max(created, 1));
    const lines = [];
    for (let g = 0; g < used; g++) lines.push(`A-${g}`);
    writeFileSync(opt.numbersOut, lines.join('\n') + '\n');
  }
  const seconds = (performance.now() - t0) / 1000;
  console.log(`created=${created} errors=${errors} seconds=${seconds.toFixed(3)} ` +
              `rate=${(created / seconds).toFixed(1)} mode=${mode}`);
  if (created === 0 || errors > Math.max(100, opt.count / 100)) process.exit(1);
}

main().catch((e) => {
  flushIds(true);
  console.error(`seed.mjs: ${e.message}`);
  console.log(`created=${created} errors=${errors + 1} seconds=0 rate=0 mode=${opt.mode}`);
  process.exit(1);
});
