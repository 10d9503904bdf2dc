#!/usr/bin/env node
// Message-bus load client for bench/bus.sh (issue 5): the same workload against Tributary's
// HTTP data plane, RabbitMQ (AMQP 0-9-1, amqplib) and NATS JetStream (nats.js), each already
// running; bench/bus.sh starts and stops the servers.
//
//   node bench/bus.mjs --system tributary|rabbitmq|nats --mode throughput|latency --url URL [options]
//
// Workload: 1 KB messages spread over --sessions session ids (round robin).
//   throughput  --producers loops send batches of --batch messages and wait for each batch to be
//               acknowledged durably (Tributary: 201 after the commit; RabbitMQ: publisher
//               confirms; NATS: the PubAcks); --consumers loops receive and settle in batches of up
//               to --receive-batch. Producers pause while more than --backlog messages are sent but
//               not settled. Measured: settled (completed / acked) messages per second over
//               --duration seconds after --warmup seconds, and send→settle latency.
//   latency     one producer sends single messages paced at --rate per second; consumers long-poll.
//               Measured: send→receive latency (the send timestamp travels in the body).
//
// Per system:
//   tributary  queue --queue with requiresSession; consumers accept the next free session
//              (sessions/accept), receive up to --receive-batch messages of it
//              (…/messages/head?maxMessages=), complete them in one request (…/messages/complete),
//              repeat while the batch came full, then release the session. Token: BENCH_TOKEN.
//   rabbitmq   one quorum queue (no sessions: the session id is a header); a confirm channel per
//              producer; a channel per consumer with prefetch --receive-batch and manual acks
//              (multiple=true every half prefetch, and every 5 ms).
//   nats       one stream with file storage and work-queue retention on subjects orders.<session>,
//              one durable pull consumer with explicit acks shared by the consumers.
//
// Options (defaults): --sessions 1000 --size 1024 --duration 20 --warmup 3 --producers 4
//   --batch 100 --consumers 8 --receive-batch 100 --backlog 40000 --rate 1000 --queue bench
//   --server-pid PID (the broker's process, for the CPU split; Linux /proc).
//
// Producers and consumers run in two worker threads, so the client may use both cores. The last
// stdout line is machine-readable:
//   system=… mode=… seconds=… sent=… settled=… rate=… send_rate=… p50_ms=… p99_ms=… max_ms=…
//   errors=… server_cpu=… client_cpu=… busy=… iowait=…
// (CPU figures in cores: 1.00 = one core busy for the whole window.) Exit status 1 on errors.
//
//   node bench/bus.mjs --report WORKDIR
// renders bench/bus.sh's markdown table from WORKDIR/results.env.

import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { performance } from 'node:perf_hooks';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { Pool } from 'undici';

const SENT = 0;
const SETTLED = 1;
const STOP = 2;
const ERRORS = 3;
const MEASURE = 4;

const nowMs = () => performance.timeOrigin + performance.now();  // epoch ms, comparable across threads
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function fail(msg) {
  console.error(`bus.mjs: ${msg}`);
  process.exit(2);
}

function parseArgs(args) {
  const o = {
    system: '', mode: '', url: '', sessions: 1000, size: 1024, duration: 20, warmup: 3, producers: 4,
    batch: 100, consumers: 8, receiveBatch: 100, backlog: 40000, rate: 1000, queue: 'bench', serverPid: 0,
  };
  const names = {
    '--system': 'system', '--mode': 'mode', '--url': 'url', '--sessions': 'sessions', '--size': 'size',
    '--duration': 'duration', '--warmup': 'warmup', '--producers': 'producers', '--batch': 'batch',
    '--consumers': 'consumers', '--receive-batch': 'receiveBatch', '--backlog': 'backlog', '--rate': 'rate',
    '--queue': 'queue', '--server-pid': 'serverPid',
  };
  for (let i = 0; i < args.length; i++) {
    const key = names[args[i]];
    if (!key || i + 1 >= args.length) fail(`unknown or incomplete option ${args[i]}`);
    const v = args[++i];
    o[key] = typeof o[key] === 'number' ? Number(v) : v;
  }
  if (!['tributary', 'rabbitmq', 'nats'].includes(o.system)) fail('--system is tributary, rabbitmq or nats');
  if (!['throughput', 'latency'].includes(o.mode)) fail('--mode is throughput or latency');
  if (!o.url) fail('--url is required');
  for (const k of ['sessions', 'size', 'duration', 'producers', 'batch', 'consumers', 'receiveBatch', 'backlog', 'rate'])
    if (!(o[k] > 0)) fail(`--${k} must be positive`);
  return o;
}

// A body of exactly `size` bytes: "<send time ms>;<session>;<n>;xxxx…" (no characters that JSON
// must escape).
function makeBody(t, session, n, size) {
  return `${t.toFixed(3)};${session};${n};`.padEnd(size, 'x');
}
const sentAt = (body) => parseFloat(body);

// ------------------------------------------------------------------------------------------------
// Worker side: the context every driver gets
// ------------------------------------------------------------------------------------------------

class Ctx {
  constructor(o, sab) {
    this.o = o;
    this.c = new Int32Array(sab);
    this.lat = [];
    this.nextSession = 0;
    this.n = 0;
    this.errorSamples = [];
  }
  stopped() { return Atomics.load(this.c, STOP) !== 0; }
  sent(n) { Atomics.add(this.c, SENT, n); }
  settled(n) { Atomics.add(this.c, SETTLED, n); }
  backlogFull() { return Atomics.load(this.c, SENT) - Atomics.load(this.c, SETTLED) > this.o.backlog; }
  error(what) {
    Atomics.add(this.c, ERRORS, 1);
    if (this.errorSamples.length < 5) this.errorSamples.push(String(what).slice(0, 300));
  }
  // A message arrived: its latency counts while the measured window is open.
  received(body, at = nowMs()) {
    if (Atomics.load(this.c, MEASURE) === 1) this.lat.push(at - sentAt(body));
  }
  session() {
    const s = this.nextSession;
    this.nextSession = (s + 1) % this.o.sessions;
    return s;
  }
  body(t, s) { return makeBody(t, s, this.n++, this.o.size); }
  // Paced sends for the latency mode: calls send(t, session) --rate times a second until stopped.
  async paced(send) {
    const t0 = nowMs();
    let k = 0;
    while (!this.stopped()) {
      const due = Math.floor(((nowMs() - t0) * this.o.rate) / 1000);
      while (k < due) {
        k++;
        const s = this.session();
        send(nowMs(), s);
      }
      await sleep(1);
    }
  }
  async backlogWait() {
    while (this.backlogFull() && !this.stopped()) await sleep(1);
  }
}

async function runWorker() {
  const { role, o, sab } = workerData;
  const ctx = new Ctx(o, sab);
  const driver = DRIVERS[o.system];
  try {
    if (role === 'produce') await driver.produce(ctx);
    else await driver.consume(ctx);
  } catch (e) {
    ctx.error(e?.stack ?? e);
  }
  parentPort.postMessage({ lat: role === 'consume' ? ctx.lat : [], errors: ctx.errorSamples });
}

// ------------------------------------------------------------------------------------------------
// Tributary: the HTTP data plane with the batch extensions (docs/servicebus.md)
// ------------------------------------------------------------------------------------------------

// Keep-alive connections through undici's Pool (less client CPU per request than node:http).
class Http {
  constructor(base, connections) {
    this.pool = new Pool(base, { connections, keepAliveTimeout: 60_000 });
    this.auth = `Bearer ${process.env.BENCH_TOKEN ?? ''}`;
  }
  async request(method, path, headers = {}, body = undefined) {
    const r = await this.pool.request({
      method, path, body, headers: { authorization: this.auth, ...headers }, headersTimeout: 60_000, bodyTimeout: 60_000,
    });
    return { status: r.statusCode, body: await r.body.text() };
  }
}

const tributary = {
  async setup(o) {
    const h = new Http(o.url, 1);
    const path = `/servicebus/$management/queues/${o.queue}`;
    await h.request('DELETE', path);
    const r = await h.request('PUT', path, { 'Content-Type': 'application/json' },
      JSON.stringify({ requiresSession: true, lockDuration: 'PT1M', maxDeliveryCount: 10 }));
    if (r.status !== 201) throw new Error(`create queue: ${r.status} ${r.body}`);
  },

  async produce(ctx) {
    const { o } = ctx;
    const h = new Http(o.url, o.mode === 'latency' ? 256 : o.producers);
    const path = `/servicebus/${o.queue}/messages`;
    if (o.mode === 'latency') {
      return ctx.paced((t, s) => {
        h.request('POST', path, { BrokerProperties: `{"SessionId":"s${s}"}`, 'Content-Type': 'text/plain' }, ctx.body(t, s))
          .then((r) => (r.status === 201 ? ctx.sent(1) : ctx.error(`send ${r.status} ${r.body}`)), (e) => ctx.error(e));
      });
    }
    const loop = async () => {
      while (!ctx.stopped()) {
        await ctx.backlogWait();
        const t = nowMs();
        const parts = [];
        for (let i = 0; i < o.batch; i++) {
          const s = ctx.session();
          parts.push(`{"Body":"${ctx.body(t, s)}","BrokerProperties":{"SessionId":"s${s}"}}`);
        }
        try {
          const r = await h.request('POST', path, { 'Content-Type': 'application/vnd.microsoft.servicebus.json' },
            `[${parts.join(',')}]`);
          if (r.status === 201) ctx.sent(o.batch);
          else ctx.error(`send batch ${r.status} ${r.body}`);
        } catch (e) {
          ctx.error(e);
        }
      }
    };
    await Promise.all(Array.from({ length: o.producers }, loop));
  },

  async consume(ctx) {
    const { o } = ctx;
    const h = new Http(o.url, o.consumers);
    const base = `/servicebus/${o.queue}`;
    const lastSeq = new Map();  // session → last sequence number seen (order check)
    const loop = async () => {
      while (!ctx.stopped()) {
        let acc;
        try {
          acc = await h.request('POST', `${base}/sessions/accept?timeout=1`);
        } catch (e) {
          ctx.error(e);
          continue;
        }
        if (acc.status === 204) continue;
        if (acc.status !== 200) {
          ctx.error(`accept ${acc.status} ${acc.body}`);
          await sleep(10);
          continue;
        }
        const { SessionId: id, SessionLockToken: lock } = JSON.parse(acc.body);
        const sp = `${base}/sessions/${encodeURIComponent(id)}`;
        const lockHeader = { 'x-session-lock': lock };
        try {
          for (;;) {
            const r = await h.request('POST', `${sp}/messages/head?timeout=0&maxMessages=${o.receiveBatch}`, lockHeader);
            if (r.status === 204) break;
            if (r.status !== 200) {
              ctx.error(`receive ${r.status} ${r.body}`);
              break;
            }
            const at = nowMs();
            const msgs = JSON.parse(r.body);
            const tokens = [];
            for (const m of msgs) {
              ctx.received(m.Body, at);
              const seq = m.BrokerProperties.SequenceNumber;
              if ((lastSeq.get(id) ?? 0) >= seq) ctx.error(`session ${id}: sequence ${seq} after ${lastSeq.get(id)}`);
              lastSeq.set(id, seq);
              tokens.push(m.BrokerProperties.LockToken);
            }
            const c = await h.request('POST', `${sp}/messages/complete`, { 'Content-Type': 'application/json' },
              JSON.stringify({ lockTokens: tokens }));
            if (c.status === 200) ctx.settled(tokens.length);
            else ctx.error(`complete ${c.status} ${c.body}`);
            if (msgs.length < o.receiveBatch || ctx.stopped()) break;
          }
          const rel = await h.request('DELETE', sp, lockHeader);
          if (rel.status !== 200) ctx.error(`release ${rel.status} ${rel.body}`);
        } catch (e) {
          ctx.error(e);
        }
      }
    };
    await Promise.all(Array.from({ length: o.consumers }, loop));
  },
};

// ------------------------------------------------------------------------------------------------
// RabbitMQ: one quorum queue, publisher confirms, manual acks
// ------------------------------------------------------------------------------------------------

const rabbitmq = {
  async setup(o) {
    const amqp = (await import('amqplib')).default;
    const conn = await amqp.connect(o.url);
    const ch = await conn.createChannel();
    await ch.deleteQueue(o.queue);
    await ch.assertQueue(o.queue, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
    await conn.close();
  },

  async produce(ctx) {
    const { o } = ctx;
    const amqp = (await import('amqplib')).default;
    const conns = [];
    const open = async () => {
      const conn = await amqp.connect(o.url);
      conns.push(conn);
      return conn.createConfirmChannel();
    };
    const publish = (ch, t, s, cb) =>
      ch.sendToQueue(o.queue, Buffer.from(ctx.body(t, s)), { persistent: true, headers: { session: `s${s}` } }, cb);
    try {
      if (o.mode === 'latency') {
        const ch = await open();
        await ctx.paced((t, s) => publish(ch, t, s, (err) => (err ? ctx.error(err) : ctx.sent(1))));
        await ch.waitForConfirms().catch((e) => ctx.error(e));
        return;
      }
      const loop = async () => {
        const ch = await open();
        while (!ctx.stopped()) {
          await ctx.backlogWait();
          const t = nowMs();
          for (let i = 0; i < o.batch; i++) publish(ch, t, ctx.session());
          try {
            await ch.waitForConfirms();
            ctx.sent(o.batch);
          } catch (e) {
            ctx.error(e);
          }
        }
      };
      await Promise.all(Array.from({ length: o.producers }, loop));
    } finally {
      for (const c of conns) await c.close().catch(() => {});
    }
  },

  async consume(ctx) {
    const { o } = ctx;
    const amqp = (await import('amqplib')).default;
    const ackEvery = Math.max(1, Math.floor(o.receiveBatch / 2));
    const one = async () => {
      const conn = await amqp.connect(o.url);
      const ch = await conn.createChannel();
      await ch.prefetch(o.receiveBatch);
      let last = null;
      let unacked = 0;
      const flush = () => {
        if (!unacked) return;
        ch.ack(last, true);
        ctx.settled(unacked);
        unacked = 0;
      };
      await ch.consume(o.queue, (msg) => {
        if (!msg) return;
        ctx.received(msg.content.toString('latin1', 0, 32));
        last = msg;
        if (++unacked >= ackEvery) flush();
      }, { noAck: false });
      const timer = setInterval(flush, 5);
      while (!ctx.stopped()) await sleep(20);
      clearInterval(timer);
      flush();
      await conn.close().catch(() => {});
    };
    await Promise.all(Array.from({ length: o.consumers }, one));
  },
};

// ------------------------------------------------------------------------------------------------
// NATS JetStream: one stream (file storage, work-queue retention), one durable pull consumer
// ------------------------------------------------------------------------------------------------

const STREAM = 'BENCH';
const DURABLE = 'bench';

const nats = {
  async setup(o) {
    const { connect, AckPolicy, RetentionPolicy, StorageType } = await import('nats');
    const nc = await connect({ servers: o.url });
    const jsm = await nc.jetstreamManager();
    await jsm.streams.delete(STREAM).catch(() => {});
    await jsm.streams.add({
      name: STREAM, subjects: ['orders.*'], storage: StorageType.File, retention: RetentionPolicy.Workqueue,
      num_replicas: 1,
    });
    await jsm.consumers.add(STREAM, {
      durable_name: DURABLE, ack_policy: AckPolicy.Explicit, max_ack_pending: Math.max(1000, o.consumers * o.receiveBatch * 4),
    });
    await nc.close();
  },

  async produce(ctx) {
    const { o } = ctx;
    const { connect } = await import('nats');
    const enc = new TextEncoder();
    const conns = [];
    const open = async () => {
      const nc = await connect({ servers: o.url });
      conns.push(nc);
      return nc.jetstream();
    };
    try {
      if (o.mode === 'latency') {
        const js = await open();
        await ctx.paced((t, s) => {
          js.publish(`orders.s${s}`, enc.encode(ctx.body(t, s))).then(() => ctx.sent(1), (e) => ctx.error(e));
        });
        return;
      }
      const loop = async () => {
        const js = await open();
        while (!ctx.stopped()) {
          await ctx.backlogWait();
          const t = nowMs();
          const acks = [];
          for (let i = 0; i < o.batch; i++) {
            const s = ctx.session();
            acks.push(js.publish(`orders.s${s}`, enc.encode(ctx.body(t, s))));
          }
          const res = await Promise.allSettled(acks);
          let ok = 0;
          for (const r of res) r.status === 'fulfilled' ? ok++ : ctx.error(r.reason);
          ctx.sent(ok);
        }
      };
      await Promise.all(Array.from({ length: o.producers }, loop));
    } finally {
      for (const nc of conns) await nc.drain().catch(() => {});
    }
  },

  async consume(ctx) {
    const { o } = ctx;
    const { connect } = await import('nats');
    const dec = new TextDecoder();
    const one = async () => {
      const nc = await connect({ servers: o.url });
      const consumer = await nc.jetstream().consumers.get(STREAM, DURABLE);
      const msgs = await consumer.consume({ max_messages: o.receiveBatch });
      let acked = 0;
      const timer = setInterval(() => {
        if (acked) ctx.settled(acked);
        acked = 0;
        if (ctx.stopped()) msgs.stop();
      }, 5);
      for await (const m of msgs) {
        ctx.received(dec.decode(m.data.subarray(0, 32)));
        m.ack();
        acked++;
      }
      clearInterval(timer);
      if (acked) ctx.settled(acked);
      await nc.close().catch(() => {});
    };
    await Promise.all(Array.from({ length: o.consumers }, one));
  },
};

const DRIVERS = { tributary, rabbitmq, nats };

// ------------------------------------------------------------------------------------------------
// Main: setup, workers, the measured window, CPU split, summary
// ------------------------------------------------------------------------------------------------

// Ticks of the process (utime + stime) from /proc; 0 when unreadable.
function procTicks(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return Number(f[11]) + Number(f[12]);  // fields 14, 15 of proc(5)
  } catch {
    return 0;
  }
}

// Machine-wide ticks: total, idle, iowait (the "cpu" line of /proc/stat).
function machineTicks() {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    return { total: f.slice(0, 8).reduce((a, b) => a + b, 0), idle: f[3], iowait: f[4] };
  } catch {
    return { total: 0, idle: 0, iowait: 0 };
  }
}

function percentile(sorted, p) {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

// Tributary's store counters (GET /metrics): durable group commits and write jobs.
async function storeCounters(o) {
  if (o.system !== 'tributary') return null;
  try {
    const text = await (await fetch(`${o.url}/metrics`)).text();
    const get = (name) => Number((text.match(new RegExp(`^${name} (\\S+)$`, 'm')) ?? [])[1]);
    return { commits: get('tributary_store_commits_total'), jobs: get('tributary_store_write_jobs_total') };
  } catch {
    return null;
  }
}

async function runMain(o) {
  await DRIVERS[o.system].setup(o);
  const sab = new SharedArrayBuffer(8 * 4);
  const c = new Int32Array(sab);
  const workers = ['consume', 'produce'].map((role) => {
    const w = new Worker(new URL(import.meta.url), { workerData: { role, o, sab } });
    const result = new Promise((resolve) => {
      w.on('message', resolve);
      w.on('error', (e) => resolve({ lat: [], errors: [String(e?.stack ?? e)], failed: true }));
      w.on('exit', () => resolve({ lat: [], errors: [] }));
    });
    return { w, result };
  });
  await sleep(o.warmup * 1000);
  const ncpu = cpus().length;
  const m0 = machineTicks();
  const s0 = o.serverPid ? procTicks(o.serverPid) : 0;
  const self0 = process.cpuUsage();
  const settled0 = Atomics.load(c, SETTLED);
  const sent0 = Atomics.load(c, SENT);
  const store0 = await storeCounters(o);
  const t0 = performance.now();
  Atomics.store(c, MEASURE, 1);
  await sleep(o.duration * 1000);
  Atomics.store(c, MEASURE, 2);
  const seconds = (performance.now() - t0) / 1000;
  const settled = Atomics.load(c, SETTLED) - settled0;
  const sent = Atomics.load(c, SENT) - sent0;
  const m1 = machineTicks();
  const s1 = o.serverPid ? procTicks(o.serverPid) : 0;
  const self = process.cpuUsage(self0);
  Atomics.store(c, STOP, 1);
  const store1 = await storeCounters(o);

  const results = await Promise.race([
    Promise.all(workers.map((x) => x.result)),
    sleep(15_000).then(() => null),
  ]);
  for (const { w } of workers) await w.terminate();
  const lat = [];
  const errorSamples = [];
  for (const r of results ?? []) {
    for (const x of r.lat) lat.push(x);
    errorSamples.push(...r.errors);
  }
  if (!results) errorSamples.push('workers did not stop within 15 s');
  for (const e of errorSamples) console.error(`bus.mjs: ${o.system} ${o.mode}: ${e}`);
  lat.sort((a, b) => a - b);

  const total = m1.total - m0.total;
  const cores = (ticks) => (total > 0 ? (ticks / total) * ncpu : 0);
  const summary = {
    system: o.system,
    mode: o.mode,
    seconds: seconds.toFixed(1),
    sent,
    settled,
    rate: Math.round(settled / seconds),
    send_rate: Math.round(sent / seconds),
    p50_ms: percentile(lat, 50).toFixed(2),
    p99_ms: percentile(lat, 99).toFixed(2),
    max_ms: (lat.length ? lat[lat.length - 1] : NaN).toFixed(2),
    samples: lat.length,
    errors: Atomics.load(c, ERRORS) + (results ? 0 : 1),
    server_cpu: o.serverPid ? cores(s1 - s0).toFixed(2) : '',
    client_cpu: ((self.user + self.system) / 1e6 / seconds).toFixed(2),
    busy: cores(total - (m1.idle - m0.idle) - (m1.iowait - m0.iowait)).toFixed(2),
    iowait: cores(m1.iowait - m0.iowait).toFixed(2),
  };
  if (store0 && store1) {
    summary.commits_per_s = Math.round((store1.commits - store0.commits) / seconds);
    summary.jobs_per_commit = ((store1.jobs - store0.jobs) / Math.max(1, store1.commits - store0.commits)).toFixed(1);
  }
  console.log(Object.entries(summary).map(([k, v]) => `${k}=${v}`).join(' '));
  process.exit(summary.errors ? 1 : 0);
}

// ------------------------------------------------------------------------------------------------
// Report: markdown from bench/bus.sh's results.env
// ------------------------------------------------------------------------------------------------

function report(dir) {
  if (!dir) fail('--report needs the work directory');
  const r = {};
  for (const line of readFileSync(`${dir}/results.env`, 'utf8').split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) r[line.slice(0, eq)] = line.slice(eq + 1);
  }
  const num = (k) => (r[k] !== undefined && r[k] !== '' && !Number.isNaN(Number(r[k])) ? Number(r[k]) : undefined);
  const fmt = (v, d = 0) =>
    v === undefined ? '–' : v.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });
  const systems = [
    ['tributary', 'Tributary (HTTP, batch extensions)'],
    ['rabbitmq', `RabbitMQ ${r.rabbitmq_version ?? ''} (quorum queue)`],
    ['nats', `NATS JetStream ${r.nats_version ?? ''}${r.nats_sync === 'default' ? ' (no fsync per publish)' : ''}`],
  ];
  const grid = (r.grid ?? '').split(/\s+/).filter(Boolean);
  const out = [];
  out.push(`### Message bus (bench/bus.sh) — ${r.date ?? ''}`, '');
  out.push(`Machine: ${r.cpus ?? '?'} × ${r.cpu_model ?? '?'}, ${r.mem_gib ?? '?'} GiB, ${r.os ?? ''}; ${r.fs ?? ''}; git ${r.git ?? ''}.`);
  out.push(`Workload: ${r.size ?? 1024}-byte messages over ${r.sessions ?? 1000} sessions. Throughput: ${r.batch}-message send batches, settled in batches of up to ${r.receive_batch}, backlog ≤ ${r.backlog}, ${r.duration} s after ${r.warmup} s warm-up, for each producers×consumers setting of ${grid.join(', ')} (the best is shown). Latency: ${r.rate} msg/s paced single sends, ${r.lat_consumers} consumers, ${r.latency_duration} s.`, '');
  out.push(`| System | settled msg/s (best setting) | send→settle p50 / p99 | CPU cores: server / client / other processes | latency run: send→receive p50 / p99 / max at ${r.rate ?? 1000} msg/s | errors |`);
  out.push('|---|---:|---:|---:|---:|---:|');
  for (const [s, label] of systems) {
    const t = (k) => num(`${s}_throughput_${k}`);
    const l = (k) => num(`${s}_latency_${k}`);
    if (r[`${s}_skipped`]) {
      out.push(`| ${label} | not run: ${r[`${s}_skipped`]} | | | | |`);
      continue;
    }
    const other = t('busy') !== undefined ? Math.max(0, t('busy') - (t('server_cpu') ?? 0) - (t('client_cpu') ?? 0)) : undefined;
    let errors = l('errors') ?? 0;
    for (const g of grid) errors += num(`${s}_tp${g}_errors`) ?? 0;
    out.push(`| ${label} | ${fmt(t('rate'))} (${t('producers') ?? '?'}×${t('consumers') ?? '?'}) | ${fmt(t('p50_ms'), 1)} / ${fmt(t('p99_ms'), 1)} ms | ${fmt(t('server_cpu'), 2)} / ${fmt(t('client_cpu'), 2)} / ${fmt(other, 2)} | ${fmt(l('p50_ms'), 2)} / ${fmt(l('p99_ms'), 2)} / ${fmt(l('max_ms'), 1)} ms | ${fmt(errors)} |`);
  }
  out.push('');
  out.push(`Throughput of every setting (settled msg/s): ${systems.filter(([s]) => !r[`${s}_skipped`]).map(([s]) => `${s} ${grid.map((g) => `${g}: ${fmt(num(`${s}_tp${g}_rate`))}`).join(', ')}`).join('; ')}.`);
  if (num('tributary_throughput_commits_per_s') !== undefined)
    out.push(`Tributary's store in the best run: ${fmt(num('tributary_throughput_commits_per_s'))} fsync'd commits/s, ${fmt(num('tributary_throughput_jobs_per_commit'), 1)} write jobs per commit.`);
  out.push('');
  const tr = num('tributary_throughput_rate');
  const tp99 = num('tributary_latency_p99_ms');
  const ratio = (a, b) => (a !== undefined && b ? `${(a / b).toFixed(2)}×` : '–');
  out.push('| Tributary vs | throughput ratio (higher is better) | p99 latency ratio (lower is better) |');
  out.push('|---|---:|---:|');
  for (const [s, label] of systems.slice(1)) {
    if (r[`${s}_skipped`]) continue;
    out.push(`| ${label} | ${ratio(tr, num(`${s}_throughput_rate`))} | ${ratio(tp99, num(`${s}_latency_p99_ms`))} |`);
  }
  out.push('');
  const met = (ok) => (ok === undefined ? 'not measured' : ok ? '**met**' : '**missed**');
  out.push(`Targets: ≥ 20,000 msg/s end to end: ${met(tr === undefined ? undefined : tr >= 20000)} (${fmt(tr)}); p99 send→receive < 10 ms at 1,000 msg/s: ${met(tp99 === undefined ? undefined : tp99 < 10)} (${fmt(tp99, 2)} ms).`);
  out.push('');
  console.log(out.join('\n'));
}

// ------------------------------------------------------------------------------------------------

if (!isMainThread) {
  await runWorker();
} else {
  const argv = process.argv.slice(2);
  if (argv[0] === '--report') report(argv[1]);
  else await runMain(parseArgs(argv));
}
