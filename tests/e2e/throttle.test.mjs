// Service protection limits (429): the request limit over a sliding window with Retry-After, the
// Dataverse error shape and the x-ms-ratelimit-* headers; a $batch counting as one request; the
// concurrency limit; what dynamics-web-api does with a 429 (no built-in retry: the error carries
// status and headers, and the caller retries after Retry-After); limits off by default.
// Wire facts: shared/reference/dataverse-webapi.md §11.1.

import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { startServer, sleep, assertODataError } from "./helpers.mjs";

const WINDOW_SECONDS = 3;
const REQUESTS = 5;
const TIME_REMAINING_RE = /^\d{1,3}(,\d{3})*\.\d{2}$/; // "1,199.46"

let configDir;

async function writeConfig(name, text) {
  const file = path.join(configDir, name);
  await fs.writeFile(file, text);
  return file;
}

before(async () => {
  configDir = await fs.mkdtemp(path.join(os.tmpdir(), "tributary-throttle-"));
});

after(async () => {
  if (configDir) await fs.rm(configDir, { recursive: true, force: true });
});

/**
 * What integration code around dynamics-web-api does, since the library has no retry of its own:
 * on a 429 wait Retry-After seconds (2^n s without one) and try again, a bounded number of times.
 */
async function withRetryAfter(fn, { maxRetries = 3, onWait = () => {} } = {}) {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (e) {
      if (e?.status !== 429 || attempt >= maxRetries) throw e;
      const header = Number(e.headers?.["retry-after"]);
      const seconds = Number.isFinite(header) && header > 0 ? header : 2 ** attempt;
      onWait(seconds);
      await sleep(seconds * 1000);
    }
  }
}

/** A multipart $batch of GETs outside change sets. */
function batchOfGets(urls) {
  const boundary = `batch_${randomUUID()}`;
  const lines = [];
  for (const url of urls) {
    lines.push(`--${boundary}`, "Content-Type: application/http", "Content-Transfer-Encoding: binary", "");
    lines.push(`GET ${url} HTTP/1.1`, "Accept: application/json", "");
  }
  lines.push(`--${boundary}--`, "");
  return { body: lines.join("\r\n"), contentType: `multipart/mixed; boundary=${boundary}` };
}

/** A $batch with one change set of `n` account creates (a write: slower than a read). */
function batchOfCreates(n, tag) {
  const boundary = `batch_${randomUUID()}`;
  const cs = `changeset_${randomUUID()}`;
  const lines = [`--${boundary}`, `Content-Type: multipart/mixed; boundary=${cs}`, ""];
  for (let i = 0; i < n; i++) {
    lines.push(`--${cs}`, "Content-Type: application/http", "Content-Transfer-Encoding: binary", `Content-ID: ${i + 1}`, "");
    lines.push("POST accounts HTTP/1.1", "Content-Type: application/json; type=entry", "");
    lines.push(JSON.stringify({ name: `${tag}-${i}` }));
  }
  lines.push(`--${cs}--`, `--${boundary}--`, "");
  return { body: lines.join("\r\n"), contentType: `multipart/mixed; boundary=${boundary}` };
}

function budgetHeaders(res) {
  const get = (n) => (typeof res.headers.get === "function" ? res.headers.get(n) : res.headers[n]);
  return {
    burst: get("x-ms-ratelimit-burst-remaining-xrm-requests"),
    time: get("x-ms-ratelimit-time-remaining-xrm-requests"),
  };
}

describe("request limit (requests: 5, window_seconds: 3)", () => {
  let server;

  before(async () => {
    const config = await writeConfig(
      "requests.yaml",
      `service_protection:\n  enabled: true\n  requests: ${REQUESTS}\n  window_seconds: ${WINDOW_SECONDS}\n`
    );
    server = await startServer({ args: ["--config", config] });
    await server.token(); // the token endpoint is not an /api/ request and is not counted
  });

  after(async () => {
    await server?.cleanup();
  });

  // Lets the previous test's requests leave the window.
  const emptyWindow = () => sleep(WINDOW_SECONDS * 1000 + 300);

  it("answers the 6th request in the window with 429, Retry-After and the Dataverse error", async () => {
    for (let i = 1; i <= REQUESTS; i++) {
      const r = await server.api("GET", "WhoAmI");
      assert.equal(r.status, 200, r.text);
      const b = budgetHeaders(r);
      assert.equal(b.burst, String(REQUESTS - i), `burst remaining after request ${i}`);
      assert.match(b.time ?? "", TIME_REMAINING_RE);
    }
    const r = await server.api("GET", "WhoAmI");
    const err = assertODataError(r, { status: 429, code: "0x80072322" });
    assert.equal(err.message, `Number of requests exceeded the limit of ${REQUESTS} over time window of ${WINDOW_SECONDS} seconds.`);
    const retryAfter = r.headers.get("retry-after");
    assert.match(retryAfter ?? "", /^\d+$/);
    assert.ok(Number(retryAfter) >= 1 && Number(retryAfter) <= WINDOW_SECONDS, `Retry-After ${retryAfter}`);
    assert.equal(budgetHeaders(r).burst, "0");
    assert.match(budgetHeaders(r).time ?? "", TIME_REMAINING_RE);
    // Browsers may read the headers (CORS).
    const exposed = (r.headers.get("access-control-expose-headers") ?? "").toLowerCase();
    for (const h of ["retry-after", "x-ms-ratelimit-burst-remaining-xrm-requests", "x-ms-ratelimit-time-remaining-xrm-requests"]) {
      assert.ok(exposed.includes(h), `Access-Control-Expose-Headers lacks ${h}`);
    }

    // Unauthenticated requests are refused before the limits and carry no budget.
    const anon = await server.api("GET", "WhoAmI", { auth: false });
    assert.equal(anon.status, 401);
    assert.equal(budgetHeaders(anon).burst, null);

    const metrics = await fetch(`${server.base}/metrics`).then((x) => x.text());
    const m = /tributary_throttled_requests_total\{reason="requests"\} (\d+)/.exec(metrics);
    assert.ok(m && Number(m[1]) >= 1, `throttle metric in:\n${metrics}`);

    // After Retry-After seconds the window lets a request through again.
    await sleep(Number(retryAfter) * 1000);
    const again = await server.api("GET", "WhoAmI");
    assert.equal(again.status, 200, again.text);
  });

  it("dynamics-web-api rejects with the 429 (status, code, Retry-After header); a retry after Retry-After succeeds", async () => {
    await emptyWindow();
    const dwa = await server.dwa();
    for (let i = 0; i < REQUESTS; i++) await dwa.callFunction({ name: "WhoAmI" });

    const t0 = Date.now();
    let caught;
    await assert.rejects(dwa.callFunction({ name: "WhoAmI" }), (e) => {
      caught = e;
      return true;
    });
    // No built-in retry: the rejection comes at once rather than after waiting.
    assert.ok(Date.now() - t0 < 1000, `DWA took ${Date.now() - t0} ms to reject`);
    assert.equal(caught.status, 429);
    assert.equal(caught.code, "0x80072322");
    assert.match(caught.message, /^Number of requests exceeded the limit of 5/);
    const retryAfter = Number(caught.headers?.["retry-after"]);
    assert.ok(retryAfter >= 1 && retryAfter <= WINDOW_SECONDS, `retry-after ${caught.headers?.["retry-after"]}`);
    assert.equal(caught.headers?.["x-ms-ratelimit-burst-remaining-xrm-requests"], "0");

    // The integration-code wrapper: the same call, throttled again, goes through after one wait.
    const waits = [];
    const who = await withRetryAfter(() => dwa.callFunction({ name: "WhoAmI" }), { onWait: (s) => waits.push(s) });
    assert.match(who.UserId, /^[0-9a-f-]{36}$/);
    assert.equal(waits.length, 1, `waited ${JSON.stringify(waits)}`);
    assert.ok(waits[0] >= 1 && waits[0] <= WINDOW_SECONDS);
  });

  it("counts a $batch as one request, whatever it holds", async () => {
    await emptyWindow();
    const { body, contentType } = batchOfGets(Array.from({ length: 10 }, () => "WhoAmI"));
    const r = await server.http("POST", "$batch", { body, headers: { "Content-Type": contentType } });
    assert.equal(r.status, 200, r.text.slice(0, 500));
    assert.equal((r.text.match(/HTTP\/1\.1 200 OK/g) ?? []).length, 10);
    assert.equal(budgetHeaders(r).burst, String(REQUESTS - 1));
    for (let i = 0; i < REQUESTS - 1; i++) assert.equal((await server.api("GET", "WhoAmI")).status, 200);
    assertODataError(await server.api("GET", "WhoAmI"), { status: 429, code: "0x80072322" });
  });
});

describe("concurrency limit (concurrent: 2)", () => {
  let server;

  before(async () => {
    const config = await writeConfig("concurrent.yaml", "threads: 4\nservice_protection:\n  enabled: true\n  concurrent: 2\n");
    server = await startServer({ args: ["--config", config] });
    await server.token();
  });

  after(async () => {
    await server?.cleanup();
  });

  it("refuses requests beyond 2 in flight at once with 0x80072326, and frees the slots when they finish", async () => {
    let refused;
    let answered = 0;
    for (let round = 0; round < 5 && !refused; round++) {
      const results = await Promise.all(
        Array.from({ length: 8 }, (_, i) => {
          const { body, contentType } =
            i % 2 === 0 ? batchOfCreates(40, `thr${round}x${i}`) : batchOfGets(Array.from({ length: 40 }, () => "accounts?$top=20"));
          return server.http("POST", "$batch", { body, headers: { "Content-Type": contentType } });
        })
      );
      for (const r of results) {
        if (r.status === 429) refused ??= r;
        else assert.equal(r.status, 200, r.text.slice(0, 500));
        answered++;
      }
    }
    assert.ok(refused, `no 429 in ${answered} parallel $batch requests`);
    const err = assertODataError(
      { status: refused.status, headers: refused.headers, text: refused.text, json: refused.json },
      { status: 429, code: "0x80072326" }
    );
    assert.equal(err.message, "Number of concurrent requests exceeded the limit of 2.");
    assert.match(refused.headers["retry-after"] ?? "", /^\d+$/);
    assert.ok(Number(refused.headers["retry-after"]) >= 1);

    // Everything has finished: sequential requests all pass, with the budget headers.
    for (let i = 0; i < 5; i++) {
      const r = await server.api("GET", "WhoAmI");
      assert.equal(r.status, 200, r.text);
      assert.match(budgetHeaders(r).burst ?? "", /^\d+$/);
      assert.ok(Number(budgetHeaders(r).burst) < 6000 && Number(budgetHeaders(r).burst) > 5900);
    }
    const metrics = await fetch(`${server.base}/metrics`).then((x) => x.text());
    assert.match(metrics, /tributary_throttled_requests_total\{reason="concurrency"\} [1-9]/);
  });
});

describe("profiles", () => {
  it("developer (the default) has no limits and no budget headers", async () => {
    const server = await startServer();
    try {
      const results = await Promise.all(Array.from({ length: 60 }, () => server.api("GET", "WhoAmI")));
      for (const r of results) {
        assert.equal(r.status, 200, r.text);
        assert.equal(budgetHeaders(r).burst, null);
      }
    } finally {
      await server.cleanup();
    }
  });

  it("--profile production turns on Dataverse's defaults", async () => {
    const server = await startServer({ args: ["--profile", "production"] });
    try {
      const r = await server.api("GET", "WhoAmI");
      assert.equal(r.status, 200, r.text);
      assert.equal(budgetHeaders(r).burst, "5999");
      assert.match(budgetHeaders(r).time ?? "", /^1,(199|200)\.\d{2}$/);
    } finally {
      await server.cleanup();
    }
  });

  it("service_protection.enabled: false overrides profile: production", async () => {
    const config = await writeConfig("off.yaml", "profile: production\nservice_protection:\n  enabled: false\n");
    const server = await startServer({ args: ["--config", config] });
    try {
      const r = await server.api("GET", "WhoAmI");
      assert.equal(r.status, 200, r.text);
      assert.equal(budgetHeaders(r).burst, null);
    } finally {
      await server.cleanup();
    }
  });
});
