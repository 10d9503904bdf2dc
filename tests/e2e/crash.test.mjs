// Durability: a 2xx means the write is on disk (shared/DESIGN.md §4). Kill the server with
// SIGKILL while 64 clients are creating accounts, restart it on the same data directory and
// prove that every acknowledged create is there. Also: SIGTERM drains and exits cleanly.

import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { startServer, httpRequest, idFromEntityUrl, sleep, uniqueTag, pool, GUID_RE } from "./helpers.mjs";

let server;

before(async () => {
  server = await startServer();
});

after(async () => {
  await server?.cleanup();
});

/**
 * Runs `clients` loops that POST accounts named `${prefix}-${client}-${n}` over keep-alive
 * connections until stop() is called. Records every create answered 204 (id → name).
 */
function startLoad({ clients, prefix }) {
  const state = {
    acked: new Map(),
    lastAckedPerClient: new Map(),
    statuses: {},
    inflight: 0,
    stopping: false,
    errorsBeforeStop: [],
    errorsAfterStop: 0,
    serverErrors: [],
  };
  const port = server.port;
  const tokenPromise = server.token();

  const loop = async (c) => {
    const token = await tokenPromise;
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      for (let n = 0; !state.stopping; n++) {
        const name = `${prefix}-${c}-${n}`;
        const body = JSON.stringify({ name, numberofemployees: n });
        state.inflight++;
        let res;
        try {
          res = await httpRequest({
            port,
            method: "POST",
            path: "/api/data/v9.2/accounts",
            headers: {
              Authorization: `Bearer ${token}`,
              Accept: "application/json",
              "OData-Version": "4.0",
              "OData-MaxVersion": "4.0",
              "Content-Type": "application/json; charset=utf-8",
              "Content-Length": Buffer.byteLength(body),
            },
            body,
            agent,
            timeoutMs: 15_000,
          });
        } catch (e) {
          if (state.stopping) {
            state.errorsAfterStop++;
            break; // the server is gone; this request was never acknowledged
          }
          state.errorsBeforeStop.push(`${name}: ${e.code ?? e.message}`);
          await sleep(20);
          continue;
        } finally {
          state.inflight--;
        }
        state.statuses[res.status] = (state.statuses[res.status] ?? 0) + 1;
        if (res.status === 204) {
          const id = idFromEntityUrl(res.headers["odata-entityid"]);
          if (!id) state.serverErrors.push(`${name}: 204 without a valid OData-EntityId (${res.headers["odata-entityid"]})`);
          else {
            state.acked.set(id, name);
            state.lastAckedPerClient.set(c, id);
          }
        } else if (res.status === 429 || res.status === 503) {
          await sleep(Number(res.headers["retry-after"] ?? 0) > 0 ? 100 : 25); // throttled: back off a little
        } else {
          state.serverErrors.push(`${name}: ${res.status} ${res.text.slice(0, 200)}`);
        }
      }
    } finally {
      agent.destroy();
    }
  };

  const done = Promise.all(Array.from({ length: clients }, (_, c) => loop(c)));
  return {
    state,
    stop: async () => {
      state.stopping = true;
      await done;
    },
    markStopping: () => {
      state.stopping = true;
    },
    done,
  };
}

/** All accounts whose name starts with prefix, via DynamicsWebApi retrieveAll: id → name. */
async function readBack(prefix) {
  const dwa = await server.dwa();
  const r = await dwa.retrieveAll({ collection: "accounts", select: ["accountid", "name"], filter: `startswith(name,'${prefix}-')` });
  const byId = new Map();
  const names = new Map();
  for (const row of r.value) {
    assert.ok(!byId.has(row.accountid), `row ${row.accountid} returned twice`);
    byId.set(row.accountid, row.name);
    names.set(row.name, (names.get(row.name) ?? 0) + 1);
  }
  for (const [name, count] of names) assert.equal(count, 1, `"${name}" stored ${count} times`);
  return byId;
}

function assertAllAcknowledgedPresent(state, stored, label) {
  const missing = [];
  const wrong = [];
  for (const [id, name] of state.acked) {
    if (!stored.has(id)) missing.push(`${id} (${name})`);
    else if (stored.get(id) !== name) wrong.push(`${id}: stored "${stored.get(id)}", sent "${name}"`);
  }
  assert.deepEqual(missing.slice(0, 20), [], `${label}: ${missing.length} of ${state.acked.size} acknowledged creates lost`);
  assert.deepEqual(wrong.slice(0, 20), [], `${label}: ${wrong.length} rows with the wrong data`);
}

describe("kill -9 under load", () => {
  const prefix = uniqueTag("crash");
  let load;

  it("64 clients create accounts for ~3 s, then the server is SIGKILLed mid-flight", async (t) => {
    load = startLoad({ clients: 64, prefix });
    await sleep(3000);
    const inflightAtKill = load.state.inflight;
    load.markStopping();
    await server.kill9();
    await load.done;

    const s = load.state;
    t.diagnostic(
      `acknowledged ${s.acked.size}, statuses ${JSON.stringify(s.statuses)}, in flight at kill ${inflightAtKill}, ` +
        `connection errors after kill ${s.errorsAfterStop}`
    );
    assert.ok(!server.running, "server must be dead");
    assert.ok(inflightAtKill > 0, "the kill must hit requests in flight");
    assert.deepEqual(s.serverErrors.slice(0, 10), [], "unexpected responses under load");
    assert.deepEqual(s.errorsBeforeStop.slice(0, 10), [], "connection errors before the kill");
    assert.ok(s.acked.size >= 64, `only ${s.acked.size} creates acknowledged in 3 s`);
  });

  it("after restart every acknowledged id is retrievable, with its data", async () => {
    assert.ok(load, "previous test did not run");
    await server.start();
    const h = await fetch(`${server.base}/healthz`);
    assert.equal(h.status, 200);

    const stored = await readBack(prefix);
    assert.ok(stored.size >= load.state.acked.size, `stored ${stored.size} < acknowledged ${load.state.acked.size}`);
    assertAllAcknowledgedPresent(load.state, stored, "retrieveAll");

    // The newest acknowledged write of every client (the most exposed to a lost commit), plus a
    // sample of the rest, also by direct GET.
    const sample = new Set(load.state.lastAckedPerClient.values());
    const all = [...load.state.acked.keys()];
    for (let i = 0; i < all.length && sample.size < 300; i += Math.max(1, Math.floor(all.length / 200))) sample.add(all[i]);
    await pool([...sample], 16, async (id) => {
      const r = await server.api("GET", `accounts(${id})?$select=name`);
      assert.equal(r.status, 200, `GET accounts(${id}) → ${r.status} ${r.text}`);
      assert.equal(r.json.name, load.state.acked.get(id));
    });
  });

  it("the restarted server serves writes and reads normally", async () => {
    const id = await server.createOne("accounts", { name: `${prefix}-after-restart` });
    assert.match(id, GUID_RE);
    const r = await server.api("GET", `accounts(${id})?$select=name`);
    assert.equal(r.status, 200);
    assert.equal(r.json.name, `${prefix}-after-restart`);
    const who = await server.api("GET", "WhoAmI()");
    assert.equal(who.status, 200);
  });

  it("a second kill -9 right after a restart (idle) loses nothing either", async () => {
    const before = await readBack(prefix);
    await server.kill9();
    await server.start();
    const after = await readBack(prefix);
    assert.equal(after.size, before.size);
    for (const id of before.keys()) assert.ok(after.has(id), `lost ${id} after an idle kill -9`);
  });
});

describe("SIGTERM", () => {
  const prefix = uniqueTag("term");

  it("SIGTERM under load: exits cleanly (code 0) within 5 s and keeps every acknowledged write", async (t) => {
    const load = startLoad({ clients: 16, prefix });
    await sleep(1000);
    load.markStopping();
    const result = await server.stop();
    await load.done;
    t.diagnostic(`acknowledged ${load.state.acked.size}, statuses ${JSON.stringify(load.state.statuses)}`);
    assert.equal(result.graceful, true, "server did not exit within 5 s of SIGTERM");
    assert.equal(result.code, 0, `exit code ${result.code}, signal ${result.signal}\n${server.logTail()}`);
    assert.deepEqual(load.state.serverErrors.slice(0, 10), [], "unexpected responses during shutdown");
    assert.ok(load.state.acked.size > 0);

    await server.start();
    const stored = await readBack(prefix);
    assertAllAcknowledgedPresent(load.state, stored, "after SIGTERM");
  });

  it("an idle server stops on SIGTERM with exit code 0", async () => {
    const result = await server.stop();
    assert.equal(result.graceful, true);
    assert.equal(result.code, 0);
    await server.start();
    assert.equal((await fetch(`${server.base}/healthz`)).status, 200);
  });
});
