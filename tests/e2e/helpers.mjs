// Shared helpers for the end-to-end tests: start/stop/kill a `tributary serve` process on a fresh
// data directory, fetch tokens, build DynamicsWebApi clients and send raw HTTP requests.
//
// Environment:
//   TRIBUTARY_BIN      path of the server binary (default: <repo>/build/tributary)
//   TRIBUTARY_E2E_LOG  when set, the server's stdout/stderr are echoed to this process' stderr
//   TRIBUTARY_E2E_KEEP when set, temporary data directories are kept (for debugging)

import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { existsSync, rmSync } from "node:fs";
import fs from "node:fs/promises";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import assert from "node:assert/strict";
import { DynamicsWebApi } from "dynamics-web-api";

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
export const BIN = process.env.TRIBUTARY_BIN
  ? path.resolve(process.env.TRIBUTARY_BIN)
  : path.join(REPO_ROOT, "build", "tributary");
export const FIXTURES = path.join(REPO_ROOT, "tests", "e2e", "fixtures");
export const SCHEMA_FIXTURE = path.join(FIXTURES, "schema.yaml");

export const API_VERSION = "v9.2";
export const READY_TIMEOUT_MS = 20_000;
export const STOP_GRACE_MS = 5_000;

/** Lowercase canonical GUID. */
export const GUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** Any-case GUID, for extracting from URLs. */
const GUID_ANY = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}";
/** Dataverse error codes: 0x + 8 hex digits. */
export const ERROR_CODE_RE = /^0x[0-9a-fA-F]{8}$/;
/** Weak ETag as Dataverse sends it. */
export const ETAG_RE = /^W\/"\d+"$/;
export const JSON_CONTENT_TYPE = "application/json; odata.metadata=minimal";

// Every server process and temporary data directory created by this module, so that a test
// run that ends abruptly leaves neither orphans nor litter behind (TRIBUTARY_E2E_KEEP=1 keeps
// the directories for debugging).
const liveProcesses = new Set();
const ownedDirs = new Set();
process.on("exit", () => {
  for (const p of liveProcesses) {
    try {
      p.kill("SIGKILL");
    } catch {
      // already gone
    }
  }
  if (!process.env.TRIBUTARY_E2E_KEEP) {
    for (const d of ownedDirs) rmSync(d, { recursive: true, force: true });
  }
});

/** Returns a TCP port that was free a moment ago on 127.0.0.1. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Runs fn(item, index) over items with at most `concurrency` calls in flight; results in order. */
export async function pool(items, concurrency, fn) {
  const results = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
  return results;
}

/**
 * Calls fn() again while it fails with HTTP 429 (service protection), honouring Retry-After
 * up to 5 s per wait and 20 tries, so that a throttling server slows the suite but does not fail it.
 */
export async function retry429(fn) {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (e) {
      if (e?.status !== 429 || attempt >= 20) throw e;
      const ra = Number(e.headers?.["retry-after"] ?? "1") || 1;
      await sleep(Math.min(ra, 5) * 1000);
    }
  }
}

/** A short random tag to keep the rows of one test apart from the others. */
export function uniqueTag(prefix = "t") {
  return `${prefix}${randomUUID().replaceAll("-", "").slice(0, 10)}`;
}

/** Extracts the GUID at the end of an OData-EntityId / Location header (`…(guid)`). */
export function idFromEntityUrl(url) {
  const m = new RegExp(`\\((${GUID_ANY})\\)$`).exec(url ?? "");
  return m ? m[1].toLowerCase() : null;
}

function checkBinary() {
  if (!existsSync(BIN)) {
    throw new Error(
      `tributary binary not found at ${BIN}. Build it first (make build) or set TRIBUTARY_BIN.`
    );
  }
}

function runToCompletion(args, env, timeoutMs = 60_000) {
  return new Promise((resolve, reject) => {
    const child = spawn(BIN, args, { cwd: REPO_ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${BIN} ${args.join(" ")} timed out after ${timeoutMs} ms\n${stderr}`));
    }, timeoutMs);
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

function waitForExit(child, ms) {
  if (child.exitCode !== null || child.signalCode !== null) {
    return Promise.resolve({ code: child.exitCode, signal: child.signalCode, timedOut: false });
  }
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve({ code: null, signal: null, timedOut: true }), ms);
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, timedOut: false });
    });
  });
}

/**
 * One `tributary serve` process on one data directory. The directory outlives the process, so
 * the server can be stopped, killed and started again on the same data.
 */
export class TributaryServer {
  constructor({ dataDir, clientId, clientSecret, ownsDataDir, args = [] }) {
    this.dataDir = dataDir;
    this.args = args; // extra `serve` arguments, e.g. ["--config", file]
    this.clientId = clientId;
    this.clientSecret = clientSecret;
    this.ownsDataDir = ownsDataDir;
    this.proc = null;
    this.port = null;
    this.base = null; // http://127.0.0.1:PORT
    this.apiRoot = null; // http://127.0.0.1:PORT/api/data/v9.2/
    this.listenLine = null;
    this._log = [];
    this._logBytes = 0;
    this._token = null;
    this._dwa = null;
  }

  get env() {
    return {
      ...process.env,
      TRIBUTARY_BOOTSTRAP_CLIENT_ID: this.clientId,
      TRIBUTARY_BOOTSTRAP_CLIENT_SECRET: this.clientSecret,
    };
  }

  get running() {
    return !!this.proc && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** The last lines the server wrote to stdout/stderr (for failure messages). */
  logTail(maxChars = 8000) {
    const s = this._log.join("");
    return s.length > maxChars ? s.slice(s.length - maxChars) : s;
  }

  _record(stream, chunk) {
    const text = chunk.toString();
    if (process.env.TRIBUTARY_E2E_LOG) process.stderr.write(`[tributary ${stream}] ${text}`);
    this._log.push(text);
    this._logBytes += text.length;
    while (this._logBytes > 256 * 1024 && this._log.length > 1) {
      this._logBytes -= this._log.shift().length;
    }
  }

  /** Runs `tributary schema apply --data DIR FILE` (server must be stopped). */
  async applySchema(file) {
    checkBinary();
    assert.ok(!this.running, "schema apply needs the server to be stopped");
    const r = await runToCompletion(["schema", "apply", "--data", this.dataDir, file], this.env);
    if (r.code !== 0) {
      throw new Error(
        `schema apply ${file} failed (exit ${r.code}, signal ${r.signal})\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`
      );
    }
    return r;
  }

  /** Starts `serve` on a fresh free port and waits for the `listening on` line. */
  async start() {
    checkBinary();
    assert.ok(!this.running, "server already running");
    let lastError;
    for (let attempt = 0; attempt < 3; attempt++) {
      const port = await freePort();
      try {
        await this._startOn(port);
        return this;
      } catch (e) {
        lastError = e;
        // A port race (someone took the port between freePort() and bind) shows as an early
        // exit; try again with another port. Anything else is a real failure.
        if (!e.earlyExit || !/address|in use|bind/i.test(e.message)) break;
      }
    }
    throw lastError;
  }

  _startOn(port) {
    const child = spawn(
      BIN,
      ["serve", "--data", this.dataDir, "--listen", `127.0.0.1:${port}`, ...this.args],
      { cwd: REPO_ROOT, env: this.env, stdio: ["ignore", "pipe", "pipe"] }
    );
    liveProcesses.add(child);
    child.on("exit", () => liveProcesses.delete(child));
    this.proc = child;
    this._log = [];
    this._logBytes = 0;
    this._token = null;
    this._dwa = null;

    return new Promise((resolve, reject) => {
      let settled = false;
      let stdoutBuf = "";
      const finish = (err) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (err) reject(err);
        else resolve();
      };
      const timer = setTimeout(() => {
        child.kill("SIGKILL");
        finish(
          new Error(
            `tributary serve did not print "listening on" within ${READY_TIMEOUT_MS} ms ` +
              `(port ${port}, data ${this.dataDir}).\nserver output:\n${this.logTail()}`
          )
        );
      }, READY_TIMEOUT_MS);

      // Drain both pipes for the whole life of the process: a full pipe would block the server.
      child.stderr.on("data", (d) => this._record("stderr", d));
      child.stdout.on("data", (d) => {
        this._record("stdout", d);
        if (settled) return;
        stdoutBuf += d.toString();
        const m = /listening on (https?:\/\/[^\s]+)/.exec(stdoutBuf);
        if (m) {
          this.listenLine = m[0];
          this.port = port;
          this.base = `http://127.0.0.1:${port}`;
          this.apiRoot = `${this.base}/api/data/${API_VERSION}/`;
          finish();
        }
      });
      child.on("error", (e) => finish(new Error(`cannot start ${BIN}: ${e.message}`)));
      child.on("exit", (code, signal) => {
        const e = new Error(
          `tributary serve exited before it was ready (code ${code}, signal ${signal}).\n` +
            `server output:\n${this.logTail()}`
        );
        e.earlyExit = true;
        finish(e);
      });
    });
  }

  /** SIGTERM, then SIGKILL after 5 s. Resolves with {code, signal, graceful}. */
  async stop() {
    if (!this.proc || !this.running) return { code: this.proc?.exitCode ?? null, signal: null, graceful: true };
    const child = this.proc;
    child.kill("SIGTERM");
    let r = await waitForExit(child, STOP_GRACE_MS);
    if (r.timedOut) {
      child.kill("SIGKILL");
      r = await waitForExit(child, STOP_GRACE_MS);
      return { code: r.code, signal: r.signal, graceful: false };
    }
    return { code: r.code, signal: r.signal, graceful: true };
  }

  /** kill -9, and wait until the process is gone. */
  async kill9() {
    if (!this.proc || !this.running) return;
    const child = this.proc;
    child.kill("SIGKILL");
    await waitForExit(child, STOP_GRACE_MS);
  }

  /** Starts again on the same data directory (on a new port; clients must be rebuilt). */
  async restart({ hard = false } = {}) {
    if (this.running) {
      if (hard) await this.kill9();
      else await this.stop();
    }
    return this.start();
  }

  /** Stops the server (if running) and removes the data directory if we created it. */
  async cleanup() {
    try {
      await this.stop();
    } finally {
      if (this.ownsDataDir && !process.env.TRIBUTARY_E2E_KEEP) {
        await fs.rm(this.dataDir, { recursive: true, force: true });
        ownedDirs.delete(this.dataDir);
      }
    }
  }

  /** Requests a token with the client-credentials grant. */
  async requestToken({ clientId = this.clientId, clientSecret = this.clientSecret, tenant = null } = {}) {
    const url = tenant ? `${this.base}/${tenant}/oauth2/v2.0/token` : `${this.base}/oauth2/v2.0/token`;
    const body = new URLSearchParams({
      grant_type: "client_credentials",
      client_id: clientId,
      client_secret: clientSecret,
      scope: `${this.base}/.default`,
    });
    const res = await fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body,
      signal: AbortSignal.timeout(30_000),
    });
    const text = await res.text();
    let json;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: res.status, headers: res.headers, text, json };
  }

  /** A cached bearer token for the bootstrap application user. */
  async token() {
    if (this._token) return this._token;
    const r = await this.requestToken();
    if (r.status !== 200 || !r.json?.access_token) {
      throw new Error(`token request failed: ${r.status} ${r.text}\nserver output:\n${this.logTail()}`);
    }
    this._token = r.json.access_token;
    return this._token;
  }

  /** A DynamicsWebApi 2.5 client pointed at this server. */
  async dwa(extraConfig = {}) {
    const token = await this.token();
    return new DynamicsWebApi({
      serverUrl: this.base,
      dataApi: { version: API_VERSION.slice(1) },
      onTokenRefresh: async () => token,
      ...extraConfig,
    });
  }

  /** Resolves a path: absolute URL as is, "/x" against the host, anything else against apiRoot. */
  url(p) {
    if (/^https?:\/\//.test(p)) return p;
    if (p.startsWith("/")) return this.base + p;
    return this.apiRoot + p;
  }

  /**
   * Raw request with fetch. `body`: object/array → JSON; string/Buffer → sent as is.
   * Options: headers, body, auth (default true), token, contentType, timeoutMs (default 30 s).
   * Returns {status, headers, text, json}.
   */
  async api(method, p, { headers = {}, body, auth = true, token, contentType, redirect = "manual", timeoutMs = 30_000 } = {}) {
    const h = {
      Accept: "application/json",
      "OData-MaxVersion": "4.0",
      "OData-Version": "4.0",
    };
    if (auth) h.Authorization = `Bearer ${token ?? (await this.token())}`;
    let payload;
    if (body !== undefined) {
      if (typeof body === "string" || body instanceof Uint8Array) {
        payload = body;
        h["Content-Type"] = contentType ?? "application/json";
      } else {
        payload = JSON.stringify(body);
        h["Content-Type"] = contentType ?? "application/json; charset=utf-8";
      }
    }
    for (const [k, v] of Object.entries(headers)) {
      // Allow callers to drop a default header by passing null.
      const existing = Object.keys(h).find((x) => x.toLowerCase() === k.toLowerCase());
      if (existing) delete h[existing];
      if (v !== null && v !== undefined) h[k] = v;
    }
    // A hung server must fail one test, not stall the suite until undici's 300 s timeout.
    const res = await fetch(this.url(p), { method, headers: h, body: payload, redirect, signal: AbortSignal.timeout(timeoutMs) });
    const text = await res.text();
    let json;
    const ct = res.headers.get("content-type") ?? "";
    if (text.length && ct.includes("json")) {
      try {
        json = JSON.parse(text);
      } catch {
        json = undefined;
      }
    }
    return { status: res.status, headers: res.headers, text, json };
  }

  /**
   * Request through node:http, for what fetch cannot show or send: raw header lines
   * (`rawHeaders`), repeated request headers (pass an array value), exact request targets.
   */
  async http(method, p, { headers = {}, body, auth = true, agent } = {}) {
    const h = { Accept: "application/json", "OData-MaxVersion": "4.0", "OData-Version": "4.0", ...headers };
    if (auth) h.Authorization = `Bearer ${await this.token()}`;
    let payload;
    if (body !== undefined) {
      payload = typeof body === "string" || body instanceof Uint8Array ? body : JSON.stringify(body);
      if (!Object.keys(h).some((k) => k.toLowerCase() === "content-type")) h["Content-Type"] = "application/json";
      h["Content-Length"] = Buffer.byteLength(payload);
    }
    const target = /^https?:\/\//.test(p) ? new URL(p).pathname + new URL(p).search
      : p.startsWith("/") ? p : `/api/data/${API_VERSION}/${p}`;
    return httpRequest({ port: this.port, method, path: target, headers: h, body: payload, agent });
  }

  /** Creates many records with bounded concurrency (raw fetch). Returns ids in input order. */
  async createMany(collection, bodies, { concurrency = 16 } = {}) {
    const ids = new Array(bodies.length);
    let next = 0;
    const worker = async () => {
      while (next < bodies.length) {
        const i = next++;
        for (let attempt = 0; ; attempt++) {
          const r = await this.api("POST", collection, { body: bodies[i] });
          if (r.status === 429 && attempt < 20) {
            // Service protection: honour Retry-After, but keep the suite bounded.
            const wait = Math.min(Number(r.headers.get("retry-after") ?? "1") || 1, 5);
            await sleep(wait * 1000);
            continue;
          }
          if (r.status !== 204) {
            throw new Error(`create #${i} in ${collection} → ${r.status} ${r.text}`);
          }
          ids[i] = idFromEntityUrl(r.headers.get("odata-entityid"));
          break;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, bodies.length) }, worker));
    return ids;
  }

  /** Creates one record (raw) and returns its id. */
  async createOne(collection, body) {
    const r = await this.api("POST", collection, { body });
    assert.equal(r.status, 204, `create in ${collection}: ${r.status} ${r.text}`);
    const id = idFromEntityUrl(r.headers.get("odata-entityid"));
    assert.match(id ?? "", GUID_RE, `OData-EntityId: ${r.headers.get("odata-entityid")}`);
    return id;
  }
}

/**
 * Creates a server on a fresh temporary data directory, optionally applies a schema file
 * first, and starts it. Always pair with `await server.cleanup()`.
 */
export async function startServer({ schema = null, start = true, args = [] } = {}) {
  checkBinary();
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), "tributary-e2e-"));
  ownedDirs.add(dataDir);
  const server = new TributaryServer({
    dataDir,
    clientId: randomUUID(),
    clientSecret: `e2e-${randomUUID()}`,
    ownsDataDir: true,
    args,
  });
  try {
    if (schema) await server.applySchema(schema);
    if (start) await server.start();
  } catch (e) {
    await server.cleanup().catch(() => {});
    throw e;
  }
  return server;
}

/** node:http request returning {status, headers, rawHeaders, text, json}. */
export function httpRequest({ host = "127.0.0.1", port, method, path: target, headers = {}, body, agent, timeoutMs = 30_000 }) {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host, port, method, path: target, headers, agent: agent ?? false, timeout: timeoutMs },
      (res) => {
        const chunks = [];
        res.on("data", (c) => chunks.push(c));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          let json;
          if (text.length && (res.headers["content-type"] ?? "").includes("json")) {
            try {
              json = JSON.parse(text);
            } catch {
              json = undefined;
            }
          }
          resolve({ status: res.statusCode, headers: res.headers, rawHeaders: res.rawHeaders, text, json });
        });
        res.on("error", reject);
      }
    );
    req.on("timeout", () => req.destroy(new Error(`request timed out after ${timeoutMs} ms`)));
    req.on("error", reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

/**
 * Sends raw bytes on a new TCP connection and collects everything the server sends until it
 * closes (or timeoutMs). Returns {status (or null), head, body, closedWithoutResponse}.
 */
export function rawExchange(port, bytes, { timeoutMs = 10_000 } = {}) {
  return new Promise((resolve) => {
    const sock = net.connect({ host: "127.0.0.1", port });
    const chunks = [];
    let done = false;
    const finish = (why) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      const all = Buffer.concat(chunks).toString("latin1");
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(all);
      const split = all.indexOf("\r\n\r\n");
      resolve({
        status: m ? Number(m[1]) : null,
        head: split >= 0 ? all.slice(0, split) : all,
        body: split >= 0 ? all.slice(split + 4) : "",
        closedWithoutResponse: !m,
        why,
      });
    };
    const timer = setTimeout(() => finish("timeout"), timeoutMs);
    sock.on("data", (d) => {
      chunks.push(d);
      // One response is enough: stop once headers + declared body are in.
      const all = Buffer.concat(chunks).toString("latin1");
      const split = all.indexOf("\r\n\r\n");
      if (split >= 0) {
        const cl = /\r\ncontent-length:\s*(\d+)/i.exec(all.slice(0, split));
        if (cl && all.length - (split + 4) >= Number(cl[1])) finish("complete");
      }
    });
    sock.on("end", () => finish("end"));
    sock.on("error", () => finish("error"));
    // Half-close after sending, so that a server waiting for more bytes sees EOF at once.
    sock.on("connect", () => sock.end(bytes));
  });
}

/**
 * Asserts a Dataverse-style error response:
 * {"error":{"code":"0x…","message":"…"}} with a JSON content type and an optional exact code.
 */
export function assertODataError(res, { status, code, context = "" } = {}) {
  const where = `${context} → ${res.status} ${String(res.text ?? "").slice(0, 500)}`;
  if (status !== undefined) {
    const allowed = Array.isArray(status) ? status : [status];
    assert.ok(allowed.includes(res.status), `expected status ${allowed.join("|")}: ${where}`);
  }
  assert.ok(res.status >= 400 && res.status < 500, `expected a 4xx: ${where}`);
  const ct = typeof res.headers?.get === "function" ? res.headers.get("content-type") : res.headers?.["content-type"];
  assert.ok((ct ?? "").startsWith("application/json"), `error content-type is ${ct}: ${where}`);
  let json = res.json;
  if (json === undefined) {
    try {
      json = JSON.parse(res.text);
    } catch {
      assert.fail(`error body is not JSON: ${where}`);
    }
  }
  assert.equal(typeof json?.error, "object", `no "error" object: ${where}`);
  assert.match(String(json.error.code), ERROR_CODE_RE, `error.code: ${where}`);
  assert.equal(typeof json.error.message, "string", `error.message: ${where}`);
  assert.ok(json.error.message.length > 0, `empty error.message: ${where}`);
  if (code !== undefined) {
    assert.equal(json.error.code.toLowerCase(), code.toLowerCase(), `error.code: ${where}`);
  }
  return json.error;
}

/** encodeURIComponent for an OData query option value. */
export const q = (s) => encodeURIComponent(s);
