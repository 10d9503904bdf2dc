#!/usr/bin/env node
// $batch benchmark for bench/bulk.sh: times one multipart/mixed $batch holding ONE change set of
// --size requests (one atomic transaction), as Dataverse clients send it
// (/work/shared/reference/dataverse-webapi.md §6.1: CRLF line ends, boundary "batch_<uuid>",
// change set boundary "changeset_<uuid>", "Content-ID: n" on every part).
//
//   node bench/batch.mjs --base http://127.0.0.1:PORT [--size 1000] [--runs 5] [--results FILE]
//
// Runs:
//   1. --runs times a change set of --size `POST /api/data/v9.2/accounts` (new accounts, the same 5
//      attributes as bench/seed.mjs); reports the median, min and max wall time (request sent to
//      response read).
//   2. once, a change set of --size `PATCH /api/data/v9.2/accounts(<id>)` updating the accounts
//      the first run created (ids taken from the OData-EntityId headers of its response).
// Every response is checked: status 200, and one 2xx part per request (204 with OData-EntityId for
// the creates). A failing run is reported and stops the benchmark.
//
// If the server answers 501 (the $batch of a server that does not implement it), that is reported
// plainly ("not measured") and the script exits 0, so bench/bulk.sh goes on. Any other failure (a
// non-200 answer, a failed part) is reported with the server's error message and exit status 1.
//
// Results: key=value lines (batch_status, batch_message, batch_size, batch_post_runs,
// batch_post_median_ms, batch_post_min_ms, batch_post_max_ms, batch_post_all_ms, batch_patch_ms),
// appended to --results FILE, or printed on stdout. Token: BENCH_TOKEN, or fetched with
// BENCH_CLIENT_ID / BENCH_CLIENT_SECRET.

import { appendFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';

const opt = { base: '', size: 1000, runs: 5, results: '' };
{
  const names = { '--base': 'base', '--size': 'size', '--runs': 'runs', '--results': 'results' };
  const a = process.argv.slice(2);
  for (let i = 0; i < a.length; i++) {
    const key = names[a[i]];
    if (!key || i + 1 >= a.length) {
      console.error(`batch.mjs: unknown or incomplete option ${a[i]}`);
      process.exit(2);
    }
    const v = a[++i];
    opt[key] = typeof opt[key] === 'number' ? Number(v) : v;
  }
  if (!opt.base || !(opt.size >= 1) || !(opt.runs >= 1)) {
    console.error('batch.mjs: --base is required; --size and --runs must be positive');
    process.exit(2);
  }
  opt.base = opt.base.replace(/\/+$/, '');
}
const PREFIX = '/api/data/v9.2';
const CRLF = '\r\n';

const out = [];
function result(key, value) {
  out.push(`batch_${key}=${String(value).replace(/\s+/g, ' ')}`);
}
function finish(code) {
  const text = out.join('\n') + '\n';
  if (opt.results) appendFileSync(opt.results, text);
  else process.stdout.write(text);
  process.exit(code);
}

async function getToken() {
  if (process.env.BENCH_TOKEN) return process.env.BENCH_TOKEN;
  const body = new URLSearchParams({
    grant_type: 'client_credentials',
    client_id: process.env.BENCH_CLIENT_ID || '',
    client_secret: process.env.BENCH_CLIENT_SECRET || '',
  });
  const r = await fetch(`${opt.base}/oauth2/v2.0/token`, { method: 'POST', body });
  const text = await r.text();
  if (!r.ok) throw new Error(`token request failed: ${r.status} ${text.slice(0, 200)}`);
  return JSON.parse(text).access_token;
}

// One change set with a part per request: {method, path, body}. Returns {contentType, body}.
function buildBatch(requests) {
  const batch = `batch_${randomUUID()}`;
  const changeset = `changeset_${randomUUID()}`;
  const parts = [
    `--${batch}${CRLF}Content-Type: multipart/mixed; boundary=${changeset}${CRLF}${CRLF}`,
  ];
  requests.forEach((r, i) => {
    parts.push(
      `--${changeset}${CRLF}` +
      `Content-Type: application/http${CRLF}` +
      `Content-Transfer-Encoding: binary${CRLF}` +
      `Content-ID: ${i + 1}${CRLF}${CRLF}` +
      `${r.method} ${PREFIX}/${r.path} HTTP/1.1${CRLF}` +
      `Content-Type: application/json; type=entry${CRLF}${CRLF}` +
      `${JSON.stringify(r.body)}${CRLF}`);
  });
  parts.push(`--${changeset}--${CRLF}--${batch}--${CRLF}`);
  return { contentType: `multipart/mixed; boundary=${batch}`, body: parts.join('') };
}

// The message of the first {"error":{…}} in a response (plain JSON, or a part of a multipart one).
function errorMessage(text) {
  const at = text.indexOf('{"error"');
  if (at >= 0) {
    const line = text.slice(at).split(/\r?\n/)[0];
    try {
      const e = JSON.parse(line).error;
      return `${e.code}: ${e.message}`;
    } catch { /* not JSON after all */ }
  }
  return text.slice(0, 200);
}

const STATUS_LINE = /^HTTP\/1\.1 (\d{3})/gm;
const ENTITY_ID = /^OData-EntityId:.*\(([0-9a-fA-F-]{36})\)\s*$/gim;

// Sends one $batch and checks it. Returns {ms, ids} or {status, message} when the server refuses
// $batch as a whole, and throws when a request inside the change set failed.
async function send(token, requests, what) {
  const { contentType, body } = buildBatch(requests);
  const t0 = performance.now();
  const r = await fetch(`${opt.base}${PREFIX}/$batch`, {
    method: 'POST',
    headers: {
      Authorization: `Bearer ${token}`, 'Content-Type': contentType, Accept: 'application/json',
      'OData-MaxVersion': '4.0', 'OData-Version': '4.0',
    },
    body,
  });
  const text = await r.text();
  const ms = performance.now() - t0;
  if (r.status === 501) return { status: r.status, message: errorMessage(text) };
  if (r.status !== 200) throw new Error(`${what}: the server answered ${r.status}: ${errorMessage(text)}`);
  const statuses = [...text.matchAll(STATUS_LINE)].map((m) => Number(m[1]));
  const ok = statuses.filter((s) => s >= 200 && s < 300).length;
  if (ok !== requests.length || statuses.length !== requests.length) {
    throw new Error(`${what}: ${ok} of ${requests.length} parts succeeded (${statuses.length} parts in the ` +
                    `response): ${errorMessage(text)}`);
  }
  const ids = [...text.matchAll(ENTITY_ID)].map((m) => m[1].toLowerCase());
  return { ms, ids };
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

async function main() {
  const token = await getToken();
  result('size', opt.size);
  const tag = (Date.now() % 1e8).toString(36);  // accountnumber holds at most 20 characters
  const times = [];
  let ids = [];
  for (let run = 0; run < opt.runs; run++) {
    const requests = [];
    for (let i = 0; i < opt.size; i++) {
      requests.push({
        method: 'POST', path: 'accounts',
        body: {
          name: `Bench Batch ${run}-${i}`, accountnumber: `X${tag}-${run}-${i}`, numberofemployees: i % 5000,
          revenue: 1000.5 + i, telephone1: `+1-555-${String(1000000 + i).padStart(7, '0')}`,
        },
      });
    }
    const res = await send(token, requests, `run ${run + 1} (${opt.size} POST)`);
    if (res.status !== undefined) {
      console.error(`batch.mjs: $batch is not available: the server answered ${res.status} (${res.message}); ` +
                    'not measured');
      result('status', res.status);
      result('message', res.message);
      finish(0);
    }
    if (res.ids.length !== opt.size) {
      throw new Error(`run ${run + 1}: ${res.ids.length} OData-EntityId headers for ${opt.size} creates`);
    }
    if (run === 0) ids = res.ids;
    times.push(res.ms);
    console.error(`batch.mjs: run ${run + 1}: ${opt.size} POST in one change set: ${res.ms.toFixed(1)} ms`);
  }
  result('status', 200);
  result('post_runs', times.length);
  result('post_median_ms', median(times).toFixed(2));
  result('post_min_ms', Math.min(...times).toFixed(2));
  result('post_max_ms', Math.max(...times).toFixed(2));
  result('post_all_ms', times.map((t) => t.toFixed(1)).join(','));

  const patches = ids.map((id, i) => ({
    method: 'PATCH', path: `accounts(${id})`,
    body: { name: `Bench Batch Update ${i}`, telephone1: `+1-555-${String(3000000 + i).padStart(7, '0')}` },
  }));
  const res = await send(token, patches, `${patches.length} PATCH`);
  if (res.status !== undefined) throw new Error(`${patches.length} PATCH: the server answered ${res.status}`);
  result('patch_ms', res.ms.toFixed(2));
  console.error(`batch.mjs: ${patches.length} PATCH in one change set: ${res.ms.toFixed(1)} ms`);
  finish(0);
}

main().catch((e) => {
  console.error(`batch.mjs: ${e.message}`);
  result('message', e.message);
  finish(1);
});
