#!/usr/bin/env node
// Renders the markdown report for bench/webapi.sh.
//
//   node bench/report.mjs WORKDIR > report.md
//
// WORKDIR holds results.env (key=value lines written by webapi.sh; the last value of a key wins),
// raw.json (bench_raw_sqlite --benchmark_out, optional), wrk.<name>.txt, raw.txt and metrics.txt.
// Everything after the "<!-- details -->" line is detail that webapi.sh writes to the results
// file but does not print.

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const dir = process.argv[2];
if (!dir) {
  console.error('usage: report.mjs WORKDIR');
  process.exit(2);
}
const read = (f) => (existsSync(join(dir, f)) ? readFileSync(join(dir, f), 'utf8') : '');

const R = {};
for (const line of read('results.env').split('\n')) {
  const i = line.indexOf('=');
  if (i > 0) R[line.slice(0, i)] = line.slice(i + 1);
}

const raw = {};
const rawText = read('raw.json');
let rawContext = null;
if (rawText) {
  try {
    const j = JSON.parse(rawText);
    rawContext = j.context || null;
    for (const b of j.benchmarks || []) {
      if (b.run_type && b.run_type !== 'iteration') continue;
      raw[b.name] = b;
    }
  } catch (e) {
    console.error(`report.mjs: raw.json: ${e.message}`);
  }
}

const num = (v) => (v === undefined || v === '' || Number.isNaN(Number(v)) ? null : Number(v));
const int = (v) => (v === null ? 'n/a' : Math.round(v).toLocaleString('en-US'));
const ms = (v) => (v === null ? 'n/a' : `${v < 10 ? v.toFixed(2) : v.toFixed(1)} ms`);
const mib = (kb) => (num(kb) === null ? 'n/a' : `${(num(kb) / 1024).toFixed(1)} MiB`);
const rawIps = (name) => num(raw[name]?.items_per_second);

const ops = [
  {
    key: 'get', label: 'GET account by id',
    rawName: 'BM_PointLookup/real_time/threads:2',
    rawLabel: 'PK lookup, 2 threads',
    target: { rps: 20000, p99: 10 }, targetText: '>= 20,000 req/s, p99 < 10 ms',
  },
  {
    key: 'create', label: 'POST create account (durable)',
    rawName: 'BM_InsertBatch64/real_time',
    rawLabel: '64 rows/commit, fsync',
    target: { rps: 10000 }, targetText: '>= 10,000 req/s',
  },
  {
    key: 'query', label: 'Filtered query ($filter accountnumber, $top=50)',
    rawName: 'BM_FilterIndexed/real_time/threads:2',
    rawLabel: 'indexed eq, 50 rows, 2 threads',
    target: { rps: 5000 }, targetText: '>= 5,000 req/s',
  },
];

const out = [];
const p = (s = '') => out.push(s);

p(`## Tributary Web API benchmark, ${R.date || 'unknown date'}`);
p();
p(`Machine: ${R.cpus || '?'} CPUs (${R.cpu_model || 'unknown CPU'}), ${R.mem_gib || '?'} GiB RAM, ` +
  `${R.os || 'unknown OS'}; data dir on ${R.fs || '?'}. Commit: ${R.git || '?'}.`);
p(`wrk: ${R.threads} threads, ${R.connections} connections, ${R.duration} per run ` +
  `(warm-up ${R.warmup}), load generator on the same machine as the server.`);
p();

if (R.server !== '1') {
  p('**The Web API was not measured**: `build/tributary` (or wrk, curl or node) was not found.');
  p();
} else if (R.server_error) {
  p(`**The Web API runs were aborted**: ${R.server_error}.`);
  p();
}

p('| Operation | Tributary req/s | p99 | raw SQLite ops/s | ratio | target |');
p('|---|---:|---:|---:|---:|---|');
for (const op of ops) {
  const rps = num(R[`${op.key}_rps`]);
  const p99 = num(R[`${op.key}_p99_ms`]);
  const non2xx = num(R[`${op.key}_non2xx`]) || 0;
  const sockErr = ['connect', 'read', 'write', 'timeout']
    .reduce((a, k) => a + (num(R[`${op.key}_${k}`]) || 0), 0);
  const ceiling = rawIps(op.rawName);
  let verdict = 'not measured';
  if (rps !== null) {
    const ok = rps >= op.target.rps && (op.target.p99 === undefined || (p99 !== null && p99 < op.target.p99));
    verdict = `${op.targetText}: ${ok ? 'met' : 'missed'}`;
    if (non2xx || sockErr) verdict += ` (INVALID: ${non2xx} non-2xx, ${sockErr} socket errors)`;
  } else if (R[`${op.key}_failed`]) {
    verdict = `${op.targetText}: wrk failed`;
  } else {
    verdict = `${op.targetText}: not measured`;
  }
  const rawCell = ceiling === null ? 'n/a' : `${int(ceiling)} (${op.rawLabel})`;
  const ratio = rps !== null && ceiling ? `${(rps / ceiling).toFixed(3)}x` : 'n/a';
  p(`| ${op.label} | ${int(rps)} | ${ms(p99)} | ${rawCell} | ${ratio} | ${verdict} |`);
}
p();

const usMs = (v) => (num(v) === null ? 'n/a' : `${(num(v) / 1000).toFixed(1)} ms`);
p('| Resource | Value |');
p('|---|---|');
p(`| Idle RSS after start (empty store) | ${mib(R.idle_rss_kb)} |`);
p(`| Peak RSS (VmHWM) over seeding + all wrk runs | ${mib(R.peak_rss_kb)} |`);
p(`| RSS after the wrk runs | ${mib(R.loaded_rss_kb)} |`);
if (R.cold_median_us) {
  const partial = num(R.cold_accounts) < num(R.cold_target) ? ` (target ${int(num(R.cold_target))}; store still being built)` : '';
  p(`| Cold start to "listening on", ${int(num(R.cold_accounts))} accounts${partial} | ` +
    `median ${usMs(R.cold_median_us)} (min ${usMs(R.cold_min_us)}, max ${usMs(R.cold_max_us)}, ` +
    `${R.cold_runs} starts, ${R.cold_page_cache} page cache) |`);
  p(`| Idle RSS after cold start with ${int(num(R.cold_accounts))} accounts | ${mib(R.cold_idle_rss_kb)} |`);
  p(`| Store size on disk (${int(num(R.cold_accounts))} accounts) | ` +
    `${num(R.cold_store_bytes) === null ? 'n/a' : `${(num(R.cold_store_bytes) / 1048576).toFixed(1)} MiB`} |`);
  p(`| Store check after restart (first and last account readable) | ${R.cold_verify || 'n/a'} |`);
} else {
  p(`| Cold start | ${R.cold_error || 'not measured'} |`);
}
p(`| Start of the empty server to "listening on" | ${R.start_ms ? `${R.start_ms} ms` : 'n/a'} |`);
if (R.seed_rate) {
  p(`| Seeding (${R.seed_mode === 'multiple' ? 'CreateMultiple' : 'POST, 32 in flight'}) | ` +
    `${int(num(R.seed_created))} of ${int(num(R.seed_target))} accounts at ${int(num(R.seed_rate))}/s, ${R.seed_errors} errors |`);
}
p();

const rawNames = Object.keys(raw);
if (rawNames.length) {
  p(`Raw SQLite ceiling (bench_raw_sqlite, SQLite ${rawContext?.sqlite_version || '?'}, ` +
    `${rawContext?.rows || '?'} rows, WAL, synchronous=FULL):`);
  p();
  p('| Benchmark | items/s | wall time per iteration |');
  p('|---|---:|---:|');
  for (const n of rawNames) {
    const b = raw[n];
    p(`| ${n} | ${int(num(b.items_per_second))} | ${num(b.real_time)?.toFixed(0)} ${b.time_unit || 'ns'} |`);
  }
  p();
} else {
  p('Raw SQLite ceiling: not measured (bench_raw_sqlite not built or failed).');
  p();
}

p('<!-- details -->');
p();
p('### Details');
p();
for (const op of ops) {
  if (num(R[`${op.key}_rps`]) === null) continue;
  p(`- ${op.label}: ${int(num(R[`${op.key}_requests`]))} requests in ${R[`${op.key}_duration_s`]} s; ` +
    `p50 ${ms(num(R[`${op.key}_p50_ms`]))}, p90 ${ms(num(R[`${op.key}_p90_ms`]))}, ` +
    `p99 ${ms(num(R[`${op.key}_p99_ms`]))}, max ${ms(num(R[`${op.key}_max_ms`]))}; ` +
    `non-2xx ${R[`${op.key}_non2xx`]}, socket errors connect ${R[`${op.key}_connect`]} ` +
    `read ${R[`${op.key}_read`]} write ${R[`${op.key}_write`]} timeout ${R[`${op.key}_timeout`]}`);
}
p();
for (const op of ops) {
  const t = read(`wrk.${op.key}.txt`).trim();
  if (!t) continue;
  p(`<details><summary>wrk output: ${op.label}</summary>`);
  p();
  p('```');
  p(t);
  p('```');
  p();
  p('</details>');
  p();
}
const rawOut = read('raw.txt').trim();
if (rawOut) {
  p('<details><summary>bench_raw_sqlite output</summary>');
  p();
  p('```');
  p(rawOut);
  p('```');
  p();
  p('</details>');
  p();
}
const metrics = read('metrics.txt').trim();
if (metrics) {
  const lines = metrics.split('\n');
  p('<details><summary>GET /metrics after the runs</summary>');
  p();
  p('```');
  p(lines.slice(0, 400).join('\n'));
  if (lines.length > 400) p(`... (${lines.length - 400} more lines)`);
  p('```');
  p();
  p('</details>');
  p();
}

process.stdout.write(out.join('\n'));
