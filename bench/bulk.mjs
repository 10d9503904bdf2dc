#!/usr/bin/env node
// Bulk-write load client for bench/bulk.sh: sends CreateMultiple / UpsertMultiple requests of
// --size records each to a running Tributary, with at most --inflight requests in flight, and
// measures records/s from the first send to the last response.
//
//   node bench/bulk.mjs --base http://127.0.0.1:PORT --op OP [options]
//
// Operations (every record carries the same 5 attributes as bench/seed.mjs and create.lua):
//   create          CreateMultiple of new accounts, accountnumber "B-<tag>-<i>"
//   upsert-id       UpsertMultiple of existing accounts named by "accountid" (from --records)
//   upsert-key      UpsertMultiple of existing accounts named by
//                   "@odata.id": "accounts(accountnumber='…')" (the alternate key, from --records)
//   upsert-key-new  UpsertMultiple by alternate key of accounts that do not exist yet (creates them)
// The upserts of existing rows change name and telephone1; the key-based ones send exactly the
// same attributes as the id-based ones, so the two differ only in how the row is found.
//
// Options:
//   --size N          records per request (default 1000)
//   --batches N       requests to send (default 100)
//   --inflight K      requests in flight (default 1)
//   --tag T           makes accountnumber values unique per run (default: from the clock); keep it
//                     short: accountnumber holds at most 20 characters
//   --records FILE    input for upsert-id / upsert-key: "<accountid> <accountnumber>" per line,
//                     used in order and reused from the top if there are fewer than needed
//   --records-out F   create / upsert-key-new: write "<accountid> <accountnumber>" per created row
//                     (upsert-key-new does not learn ids: it writes "- <accountnumber>")
//   --max-seconds S   start no new request after S seconds (0 = no limit; default 0)
//
// Token: BENCH_TOKEN, or fetched with BENCH_CLIENT_ID / BENCH_CLIENT_SECRET (client_credentials).
// The last stdout line is machine-readable:
//   op=… inflight=K size=N batches=B records=R errors=E seconds=S rate=R req_p50_ms=… req_max_ms=…
// Only records of successful requests count. Exit status 1 if any request failed.
//
//   node bench/bulk.mjs --report WORKDIR
// renders the markdown tables of bench/bulk.sh from WORKDIR/results.env (key=value lines) and
// WORKDIR/raw.json (bench_raw_sqlite --benchmark_out).

import { readFileSync, writeFileSync, existsSync } from 'node:fs';

// ------------------------------------------------------------------------------------------------
// Load
// ------------------------------------------------------------------------------------------------

function parseArgs(args) {
  const o = {
    base: '', op: '', size: 1000, batches: 100, inflight: 1, tag: '', records: '', recordsOut: '',
    maxSeconds: 0,
  };
  const names = {
    '--base': 'base', '--op': 'op', '--size': 'size', '--batches': 'batches', '--inflight': 'inflight',
    '--tag': 'tag', '--records': 'records', '--records-out': 'recordsOut', '--max-seconds': 'maxSeconds',
  };
  for (let i = 0; i < args.length; i++) {
    const key = names[args[i]];
    if (!key || i + 1 >= args.length) fail(`unknown or incomplete option ${args[i]}`);
    const v = args[++i];
    o[key] = typeof o[key] === 'number' ? Number(v) : v;
  }
  if (!o.base) fail('--base is required');
  if (!['create', 'upsert-id', 'upsert-key', 'upsert-key-new'].includes(o.op)) {
    fail('--op must be create, upsert-id, upsert-key or upsert-key-new');
  }
  for (const k of ['size', 'batches', 'inflight']) {
    if (!Number.isInteger(o[k]) || o[k] < 1) fail(`--${k} must be a positive integer`);
  }
  if ((o.op === 'upsert-id' || o.op === 'upsert-key') && !o.records) fail(`--op ${o.op} needs --records`);
  o.base = o.base.replace(/\/+$/, '');
  if (!o.tag) o.tag = (Date.now() % 1e8).toString(36);
  return o;
}

function fail(msg) {
  console.error(`bulk.mjs: ${msg}`);
  process.exit(2);
}

async function getToken(base) {
  if (process.env.BENCH_TOKEN) return process.env.BENCH_TOKEN;
  const body = new URLSearchParams({
    grant_type: 'client_credentials',
    client_id: process.env.BENCH_CLIENT_ID || '',
    client_secret: process.env.BENCH_CLIENT_SECRET || '',
  });
  const r = await fetch(`${base}/oauth2/v2.0/token`, { method: 'POST', body });
  const text = await r.text();
  if (!r.ok) throw new Error(`token request failed: ${r.status} ${text.slice(0, 200)}`);
  return JSON.parse(text).access_token;
}

const TYPE = 'Microsoft.Dynamics.CRM.account';

// The 5 attributes of a new account (the same shape as seed.mjs and create.lua).
function newAccount(number, i) {
  return {
    name: `Bench Bulk ${i}`,
    accountnumber: number,
    numberofemployees: i % 5000,
    revenue: 1000.5 + (i % 100000),
    telephone1: `+1-555-${String(1000000 + (i % 9000000)).padStart(7, '0')}`,
  };
}

// The attributes an upsert of an existing account changes.
function changed(tag, i) {
  return { name: `Bench Upsert ${tag} ${i}`, telephone1: `+1-555-${String(2000000 + (i % 7000000)).padStart(7, '0')}` };
}

function odataString(s) {
  return `'${s.replace(/'/g, "''")}'`;
}

// Builds every request body up front, so building JSON does not count in the timed part.
function buildBatches(o) {
  let records = [];
  if (o.records) {
    records = readFileSync(o.records, 'utf8').split('\n').filter(Boolean).map((l) => l.split(' '));
    if (records.length === 0) throw new Error(`${o.records} is empty`);
  }
  const batches = [];
  let n = 0;
  for (let b = 0; b < o.batches; b++) {
    const Targets = [];
    const numbers = [];
    for (let j = 0; j < o.size; j++, n++) {
      if (o.op === 'create' || o.op === 'upsert-key-new') {
        const number = `B-${o.tag}-${n}`;
        numbers.push(number);
        const rec = newAccount(number, n);
        if (o.op === 'create') {
          Targets.push({ '@odata.type': TYPE, ...rec });
        } else {
          delete rec.accountnumber;  // the key is in @odata.id; the server sets the column from it
          Targets.push({ '@odata.type': TYPE, '@odata.id': `accounts(accountnumber=${odataString(number)})`, ...rec });
        }
      } else {
        const [id, number] = records[n % records.length];
        const who = o.op === 'upsert-id' ? { accountid: id }
          : { '@odata.id': `accounts(accountnumber=${odataString(number)})` };
        Targets.push({ '@odata.type': TYPE, ...who, ...changed(o.tag, n) });
      }
    }
    batches.push({ body: JSON.stringify({ Targets }), numbers });
  }
  return batches;
}

async function run(o) {
  const token = await getToken(o.base);
  const message = o.op === 'create' ? 'CreateMultiple' : 'UpsertMultiple';
  const url = `${o.base}/api/data/v9.2/accounts/Microsoft.Dynamics.CRM.${message}`;
  const headers = {
    Authorization: `Bearer ${token}`, Accept: 'application/json', 'Content-Type': 'application/json; charset=utf-8',
    'OData-MaxVersion': '4.0', 'OData-Version': '4.0',
  };
  const batches = buildBatches(o);
  const out = [];
  const latencies = [];
  let records = 0;
  let errors = 0;
  let shown = 0;
  const noteError = (msg) => {
    errors++;
    if (shown++ < 3) console.error(`bulk.mjs: ${o.op}: ${msg}`);
  };

  let next = 0;
  const t0 = performance.now();
  const deadline = o.maxSeconds > 0 ? t0 + o.maxSeconds * 1000 : Infinity;
  let last = t0;
  const worker = async () => {
    while (next < batches.length && performance.now() < deadline) {
      const batch = batches[next++];
      const start = performance.now();
      try {
        const r = await fetch(url, { method: 'POST', headers, body: batch.body });
        const text = await r.text();
        last = performance.now();
        latencies.push(last - start);
        if (o.op === 'create') {
          let ids = [];
          if (r.status === 200) {
            try { ids = JSON.parse(text).Ids || []; } catch { /* counted below */ }
          }
          if (ids.length !== batch.numbers.length) {
            noteError(`${r.status} ${text.slice(0, 300)}`);
            continue;
          }
          ids.forEach((id, i) => out.push(`${String(id).toLowerCase()} ${batch.numbers[i]}`));
        } else if (r.status !== 204 && r.status !== 200) {
          noteError(`${r.status} ${text.slice(0, 300)}`);
          continue;
        } else if (o.op === 'upsert-key-new') {
          for (const n of batch.numbers) out.push(`- ${n}`);
        }
        records += batch.numbers.length || o.size;
      } catch (e) {
        last = performance.now();
        noteError(`request failed: ${e.cause?.code || e.message}`);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(o.inflight, batches.length) }, worker));
  const seconds = (last - t0) / 1000;
  if (o.recordsOut) writeFileSync(o.recordsOut, out.length ? out.join('\n') + '\n' : '');
  latencies.sort((a, b) => a - b);
  const pct = (p) => (latencies.length ? latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] : 0);
  console.log(`op=${o.op} inflight=${o.inflight} size=${o.size} batches=${latencies.length} records=${records} ` +
              `errors=${errors} seconds=${seconds.toFixed(3)} rate=${seconds > 0 ? (records / seconds).toFixed(1) : 0} ` +
              `req_p50_ms=${pct(0.5).toFixed(1)} req_max_ms=${(latencies.at(-1) || 0).toFixed(1)}`);
  if (errors) process.exit(1);
}

// ------------------------------------------------------------------------------------------------
// Report
// ------------------------------------------------------------------------------------------------

function report(dir) {
  if (!dir) fail('--report needs the work directory');
  const kv = {};
  for (const line of readFileSync(`${dir}/results.env`, 'utf8').split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) kv[line.slice(0, eq)] = line.slice(eq + 1);
  }
  const raw = {};
  if (existsSync(`${dir}/raw.json`)) {
    try {
      for (const b of JSON.parse(readFileSync(`${dir}/raw.json`, 'utf8')).benchmarks || []) raw[b.name] = b;
    } catch (e) {
      console.error(`bulk.mjs: raw.json: ${e.message}`);
    }
  }
  const num = (v) => (v === undefined || v === '' || Number.isNaN(Number(v)) ? null : Number(v));
  const int = (v) => (v === null ? 'n/a' : Math.round(v).toLocaleString('en-US'));
  const x = (a, b) => (a === null || b === null || b === 0 ? 'n/a' : `${(a / b).toFixed(2)}×`);
  const rawIps = (name) => num(raw[name]?.items_per_second);
  const lines = [];
  const p = (s = '') => lines.push(s);

  const size = kv.bulk_size || '1000';
  const inflights = (kv.bulk_inflight || '').split(' ').filter(Boolean);
  p(`## Bulk writes, alternate keys and $batch (bench/bulk.sh)`);
  p();
  p(`${kv.date || '?'} · ${kv.cpus || '?'} CPUs (${kv.cpu_model || '?'}) · ${kv.mem_gib || '?'} GiB · ${kv.os || '?'} · ` +
    `git ${kv.git || '?'} · data dir on ${kv.fs || '?'}`);
  p();
  if (kv.server_error) {
    p(`**Web API runs failed:** ${kv.server_error}`);
    p();
  }

  // Bulk throughput.
  const rawInsert = rawIps('BM_AccountInsert1000/real_time');
  const rawUpdId = rawIps('BM_AccountUpdate1000/by_id/real_time');
  const rawUpdKey = rawIps('BM_AccountUpdate1000/by_key/real_time');
  const postRps = kv.post_failed ? null : num(kv.post_rps);
  const ops = [
    ['create', `CreateMultiple ×${size}, new rows`, rawInsert],
    ['upsert-id', `UpsertMultiple ×${size} by accountid, existing rows`, rawUpdId],
    ['upsert-key', `UpsertMultiple ×${size} by alternate key, existing rows`, rawUpdKey],
    ['upsert-key-new', `UpsertMultiple ×${size} by alternate key, new rows`, rawInsert],
  ];
  const best = {};
  p(`Bulk writes: ${kv.bulk_batches || '?'} requests of ${size} records per run, durable (each response after ` +
    `its fsync'd commit); records/s from the first send to the last response.`);
  p();
  p(`| Operation | ${inflights.map((k) => `${k} in flight`).join(' | ')} | best | ÷ raw insert ×1000 | ` +
    `÷ raw same op | ÷ one POST each | target ≥ 50,000/s |`);
  p(`|---|${inflights.map(() => '---:').join('|')}|---:|---:|---:|---:|---|`);
  for (const [op, label, rawSame] of ops) {
    const key = op.replace(/-/g, '_');
    let top = null;
    const cells = inflights.map((k) => {
      const r = num(kv[`${key}_${k}_rate`]);
      const bad = num(kv[`${key}_${k}_errors`]);
      if (r === null) return 'n/a';
      if (bad) return `${int(r)} (**${bad} failed**)`;
      if (top === null || r > top) top = r;
      return int(r);
    });
    best[op] = top;
    const verdict = top === null ? 'n/a' : top >= 50000 ? '**met**' : '**missed**';
    p(`| ${label} | ${cells.join(' | ')} | ${int(top)} | ${x(top, rawInsert)} | ${x(top, rawSame)} | ` +
      `${x(top, postRps)} | ${verdict} |`);
  }
  p(`| POST accounts, one record per request (wrk -c${kv.connections || '?'}) | ` +
    `${inflights.map(() => '').join(' | ')} | ${int(postRps)} req/s | ${x(postRps, rawInsert)} | | 1.00× | |`);
  p();
  p(`Raw SQLite on a copy of Tributary's account table (63 columns, 8 indexes, WITHOUT ROWID, WAL, ` +
    `synchronous=FULL, one fsync'd commit per 1,000 rows): insert ${int(rawInsert)} rows/s, update by id ` +
    `${int(rawUpdId)} rows/s, update by alternate key ${int(rawUpdKey)} rows/s` +
    `${raw['BM_AccountInsert1000/real_time']?.rows ? ` (table at ${int(num(raw['BM_AccountInsert1000/real_time'].rows))} rows)` : ''}.`);
  p();
  if (kv.server_account_columns) {
    const same = kv.server_account_columns === '63' && kv.server_account_indexes === '8';
    p(`The server's account table after the run: ${kv.server_account_columns} columns, ` +
      `${kv.server_account_indexes} indexes, ${int(num(kv.server_account_rows))} rows.` +
      (same ? '' : ' **It no longer matches the raw copy (63 columns, 8 indexes): update kAccountTableSchema ' +
                   'in bench/raw_sqlite.cpp.**'));
    p();
  }

  // Alternate key vs GUID.
  const patchId = kv.patch_id_failed ? null : num(kv.patch_id_rps);
  const patchKey = kv.patch_key_failed ? null : num(kv.patch_key_rps);
  const cost = (idRate, keyRate) => {
    if (idRate === null || keyRate === null || keyRate === 0) return ['n/a', 'n/a'];
    const c = idRate / keyRate;
    return [`${c.toFixed(2)}×`, c <= 1.5 ? '**met**' : '**missed**'];
  };
  const ms = (v) => (num(v) === null ? 'n/a' : `${num(v).toFixed(2)} ms`);
  p(`Alternate-key upsert vs GUID upsert on existing rows (cost = GUID rate ÷ key rate):`);
  p();
  p('| Upsert of an existing account | by accountid | by alternate key | cost of the key | target ≤ 1.5× |');
  p('|---|---:|---:|---:|---|');
  const [c1, v1] = cost(patchId, patchKey);
  p(`| single PATCH (wrk -t${kv.threads || '?'} -c${kv.connections || '?'}, ${kv.duration || '?'}) | ` +
    `${int(patchId)} req/s, p99 ${ms(kv.patch_id_p99_ms)} | ${int(patchKey)} req/s, p99 ${ms(kv.patch_key_p99_ms)} | ` +
    `${c1} | ${v1} |`);
  const [c2, v2] = cost(best['upsert-id'], best['upsert-key']);
  p(`| UpsertMultiple ×${size} (best of the in-flight settings) | ${int(best['upsert-id'])} rec/s | ` +
    `${int(best['upsert-key'])} rec/s | ${c2} | ${v2} |`);
  const [c3] = cost(rawUpdId, rawUpdKey);
  p(`| raw SQLite UPDATE ×1000 per commit (reference) | ${int(rawUpdId)} rows/s | ${int(rawUpdKey)} rows/s | ${c3} | |`);
  for (const k of ['patch_id', 'patch_key', 'post']) {
    if (kv[`${k}_failed`] || num(kv[`${k}_non2xx`]) || num(kv[`${k}_connect`]) || num(kv[`${k}_read`]) ||
        num(kv[`${k}_write`]) || num(kv[`${k}_timeout`])) {
      p();
      p(`**INVALID ${k} run:** ${kv[`${k}_failed`] ? 'wrk produced no result' : `non-2xx ${kv[`${k}_non2xx`]}, ` +
        `socket errors ${kv[`${k}_connect`]}/${kv[`${k}_read`]}/${kv[`${k}_write`]}/${kv[`${k}_timeout`]}`}.`);
    }
  }
  p();

  // $batch.
  p(`$batch with one change set of ${kv.batch_size || '1000'} requests (one atomic transaction):`);
  p();
  if (kv.batch_status && kv.batch_status !== '200') {
    p(`**$batch not measured:** the server answered ${kv.batch_status}` +
      `${kv.batch_message ? ` (${kv.batch_message})` : ''}.`);
  } else if (kv.batch_post_median_ms) {
    const under = (v) => (num(v) === null ? 'n/a' : num(v) < 1000 ? '**met**' : '**missed**');
    p('| Change set | wall time | records/s | target < 1 s |');
    p('|---|---:|---:|---|');
    p(`| ${kv.batch_size} × POST accounts | median ${ms(kv.batch_post_median_ms)} (${ms(kv.batch_post_min_ms)}–` +
      `${ms(kv.batch_post_max_ms)}, ${kv.batch_post_runs} runs) | ` +
      `${int(num(kv.batch_size) / num(kv.batch_post_median_ms) * 1000)} | ${under(kv.batch_post_median_ms)} |`);
    if (kv.batch_patch_ms) {
      p(`| ${kv.batch_size} × PATCH accounts(id) | ${ms(kv.batch_patch_ms)} (1 run) | ` +
        `${int(num(kv.batch_size) / num(kv.batch_patch_ms) * 1000)} | ${under(kv.batch_patch_ms)} |`);
    }
    if (kv.batch_message) {
      p();
      p(`**$batch run failed:** ${kv.batch_message}.`);
    }
  } else {
    p(`**$batch not measured:** ${kv.batch_message || 'batch.mjs produced no result'}.`);
  }
  p();
  process.stdout.write(lines.join('\n') + '\n');
}

// ------------------------------------------------------------------------------------------------

const argv = process.argv.slice(2);
if (argv[0] === '--report') {
  report(argv[1]);
} else {
  await run(parseArgs(argv)).catch((e) => {
    console.error(`bulk.mjs: ${e.message}`);
    process.exit(1);
  });
}
