// The message bus over HTTP (docs/servicebus.md): the Service Bus REST data plane (send with
// BrokerProperties and custom-property headers, batches, peek-lock / unlock / complete / renew,
// receive-and-delete, long polling), the extensions (defer, dead-letter, peek, deferred receive,
// sub-queues, sessions with state), the JSON management API, metrics, bad input (the broker keeps
// working after each), `tributary bus …` and `serve --bus-config`, and kill -9: every
// acknowledged send is there after a restart, every acknowledged completion is gone, and locks
// held at the crash are released.

import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { startServer, sleep, uniqueTag, assertODataError, pool, BIN, REPO_ROOT, GUID_RE } from "./helpers.mjs";

const LOCK_LOST = "0x80131503";
const NOT_FOUND = "0x80131501";
const RFC1123_RE = /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} GMT$/;

let server;

/** A request to /servicebus/{p}. body: string/Buffer as is, other values as JSON. */
async function sb(method, p, { headers = {}, body, auth = true, token, timeoutMs = 30_000 } = {}) {
  const h = { ...headers };
  if (auth) h.Authorization = `Bearer ${token ?? (await server.token())}`;
  let payload;
  if (body !== undefined) {
    if (typeof body === "string" || body instanceof Uint8Array) {
      payload = body;
    } else {
      payload = JSON.stringify(body);
      if (!Object.keys(h).some((k) => k.toLowerCase() === "content-type")) h["Content-Type"] = "application/json";
    }
  }
  const url = /^https?:\/\//.test(p) ? p : `${server.base}/servicebus/${p}`;
  const res = await fetch(url, { method, headers: h, body: payload, signal: AbortSignal.timeout(timeoutMs) });
  const text = await res.text();
  let json;
  if (text.length && (res.headers.get("content-type") ?? "").includes("json")) {
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
  }
  const bp = res.headers.get("brokerproperties");
  return { status: res.status, headers: res.headers, text, json, bp: bp ? JSON.parse(bp) : undefined };
}

const mgmt = (method, p, opts) => sb(method, `$management/${p}`, opts);

async function createQueue(name, props = {}) {
  const r = await mgmt("PUT", `queues/${name}`, { body: props });
  assert.equal(r.status, 201, `create queue ${name}: ${r.status} ${r.text}`);
  return r.json;
}

/** Sends one message; props: BrokerProperties object; custom: {name: header value}. */
async function send(entity, body, { props, custom = {}, contentType = "text/plain" } = {}) {
  const headers = { "Content-Type": contentType, ...custom };
  if (props) headers.BrokerProperties = JSON.stringify(props);
  const r = await sb("POST", `${entity}/messages`, { headers, body });
  assert.equal(r.status, 201, `send to ${entity}: ${r.status} ${r.text}`);
}

const lockPath = (r) => new URL(r.headers.get("location")).pathname.replace(/^\/servicebus\//, "");
const peekLock = (entity, timeout = 0, headers = {}) =>
  sb("POST", `${entity}/messages/head?timeout=${timeout}`, { headers });
const receiveAndDelete = (entity, timeout = 0) => sb("DELETE", `${entity}/messages/head?timeout=${timeout}`);

/** The broker still answers: a send and a receive on a fresh queue. */
async function assertHealthy() {
  const q = uniqueTag("health");
  await createQueue(q);
  await send(q, "ping");
  const r = await receiveAndDelete(q);
  assert.equal(r.status, 200, `broker unhealthy: ${r.status} ${r.text}`);
  assert.equal(r.text, "ping");
}

before(async () => {
  server = await startServer();
});

after(async () => {
  await server?.cleanup();
});

describe("management API", () => {
  it("creates, reads, updates, lists and deletes queues", async () => {
    const q = uniqueTag("mq");
    const created = await createQueue(q, { lockDuration: "PT30S", maxDeliveryCount: 5, requiresSession: false });
    assert.equal(created.name, q);
    assert.equal(created.lockDuration, "PT30S");
    assert.equal(created.maxDeliveryCount, 5);
    assert.equal(created.defaultMessageTimeToLive, "P10675199DT2H48M5.4775807S");
    assert.equal(created.activeMessageCount, 0);

    const again = await mgmt("PUT", `queues/${q}`, { body: {} });
    assertODataError(again, { status: 409, context: "create twice" });

    const upd = await mgmt("PUT", `queues/${q}`, { body: { maxDeliveryCount: 7, userMetadata: "hi" }, headers: { "If-Match": "*" } });
    assert.equal(upd.status, 200, upd.text);
    assert.equal(upd.json.maxDeliveryCount, 7);
    assert.equal(upd.json.lockDuration, "PT30S", "an update keeps what it does not name");
    assert.equal(upd.json.userMetadata, "hi");

    // What GET answers can be sent back with a change.
    const got = await mgmt("GET", `queues/${q}`);
    assert.equal(got.status, 200);
    const back = await mgmt("PUT", `queues/${q}`, { body: { ...got.json, lockDuration: "PT45S" }, headers: { "If-Match": "*" } });
    assert.equal(back.status, 200, back.text);
    assert.equal(back.json.lockDuration, "PT45S");

    await send(q, "one");
    await send(q, "two");
    const counted = await mgmt("GET", `queues/${q}`);
    assert.equal(counted.json.activeMessageCount, 2);

    const list = await mgmt("GET", "queues");
    assert.equal(list.status, 200);
    assert.ok(list.json.some((e) => e.name === q));

    assert.equal((await mgmt("DELETE", `queues/${q}`)).status, 200);
    assertODataError(await mgmt("GET", `queues/${q}`), { status: 404, code: NOT_FOUND });
    assertODataError(await mgmt("DELETE", `queues/${q}`), { status: 404 });
  });

  it("queue names may contain '/'", async () => {
    const q = `${uniqueTag("site")}/orders`;
    await createQueue(q);
    await send(q, "nested");
    const r = await receiveAndDelete(q);
    assert.equal(r.status, 200);
    assert.equal(r.text, "nested");
    assert.equal((await mgmt("GET", `queues/${q}`)).json.name, q);
  });

  it("topics, subscriptions and rules", async () => {
    const t = uniqueTag("mt");
    const tr = await mgmt("PUT", `topics/${t}`, { body: { defaultMessageTimeToLive: "P1D" } });
    assert.equal(tr.status, 201, tr.text);
    assert.equal(tr.json.defaultMessageTimeToLive, "P1D");
    assert.equal(tr.json.lockDuration, undefined, "a topic has no lock duration");

    const all = await mgmt("PUT", `topics/${t}/subscriptions/all`, { body: { maxDeliveryCount: 2 } });
    assert.equal(all.status, 201, all.text);
    assert.equal(all.json.topicName, t);
    assert.equal(all.json.subscriptionName, "all");
    const red = await mgmt("PUT", `topics/${t}/subscriptions/red`, {
      body: { defaultRuleOptions: { name: "onlyred", filter: { sqlExpression: "color = 'red'" } } },
    });
    assert.equal(red.status, 201, red.text);

    const subs = await mgmt("GET", `topics/${t}/subscriptions`);
    assert.deepEqual(subs.json.map((s) => s.subscriptionName).sort(), ["all", "red"]);

    const rules = await mgmt("GET", `topics/${t}/subscriptions/red/rules`);
    assert.equal(rules.status, 200, rules.text);
    assert.deepEqual(rules.json, [{ name: "onlyred", filter: { sqlExpression: "color = 'red'" }, action: null }]);
    const def = await mgmt("GET", `topics/${t}/subscriptions/all/rules/$Default`);
    assert.equal(def.status, 200, def.text);
    assert.equal(def.json.filter.sqlExpression, "1=1");

    const corr = await mgmt("PUT", `topics/${t}/subscriptions/red/rules/vip`, {
      body: { filter: { correlationId: "vip", applicationProperties: { tier: "gold" } }, action: { sqlExpression: "SET flagged = TRUE" } },
    });
    assert.equal(corr.status, 201, corr.text);
    assert.equal(corr.json.filter.correlationId, "vip");
    assert.deepEqual(corr.json.filter.applicationProperties, { tier: "gold" });
    assert.equal(corr.json.action.sqlExpression, "SET flagged = TRUE");
    const vip = await mgmt("GET", `topics/${t}/subscriptions/red/rules/vip`);
    assert.equal(vip.status, 200);
    assert.equal(vip.json.name, "vip");

    // Fan-out: "all" gets every message, "red" only the red ones.
    await send(t, "r1", { custom: { color: '"red"' } });
    await send(t, "b1", { custom: { color: '"blue"' } });
    const redMsgs = await sb("GET", `${t}/subscriptions/red/messages?peek&top=10`);
    assert.deepEqual(redMsgs.json.map((m) => m.Body), ["r1"]);
    const allMsgs = await sb("GET", `${t}/Subscriptions/all/messages?peek&top=10`);
    assert.deepEqual(allMsgs.json.map((m) => m.Body), ["r1", "b1"]);
    const got = await receiveAndDelete(`${t}/subscriptions/red`);
    assert.equal(got.status, 200);
    assert.equal(got.text, "r1");
    assert.equal(got.headers.get("color"), '"red"');
    // A subscription's dead-letter queue by path.
    const lockedSub = await peekLock(`${t}/subscriptions/all`);
    assert.equal((await sb("POST", `${lockPath(lockedSub)}/deadletter`, { body: { DeadLetterReason: "test" } })).status, 200);
    const dlq = await receiveAndDelete(`${t}/subscriptions/all/$DeadLetterQueue`);
    assert.equal(dlq.status, 200, dlq.text);
    assert.equal(dlq.text, "r1");
    assert.equal(dlq.headers.get("deadletterreason"), '"test"');

    assert.equal((await mgmt("DELETE", `topics/${t}/subscriptions/red/rules/vip`)).status, 200);
    assertODataError(await mgmt("GET", `topics/${t}/subscriptions/red/rules/vip`), { status: 404 });
    assert.equal((await mgmt("DELETE", `topics/${t}/subscriptions/red`)).status, 200);
    assertODataError(await mgmt("GET", `topics/${t}/subscriptions/red`), { status: 404 });
    assert.equal((await mgmt("GET", "topics")).json.filter((x) => x.name === t).length, 1);
    assert.equal((await mgmt("DELETE", `topics/${t}`)).status, 200);
    assertODataError(await mgmt("GET", `topics/${t}`), { status: 404 });
  });

  it("refuses bad descriptions with 400 and unknown resources with 404", async () => {
    const q = uniqueTag("mbad");
    assertODataError(await mgmt("PUT", `queues/${q}`, { body: { lockDuration: "one minute" } }), { status: 400 });
    assertODataError(await mgmt("PUT", `queues/${q}`, { body: { maxDeliveryCount: "3" } }), { status: 400 });
    assertODataError(await mgmt("PUT", `queues/${q}`, { body: { noSuchProperty: 1 } }), { status: 400 });
    assertODataError(await mgmt("PUT", `queues/${q}`, { body: "{not json" }), { status: 400 });
    assertODataError(await mgmt("PUT", `queues/${q}`, { body: { lockDuration: "P1Y" } }), { status: 400 });
    assertODataError(await mgmt("GET", `queues/${q}`), { status: 404 });
    assertODataError(await mgmt("PUT", `queues/${q}`, { body: {}, headers: { "If-Match": "*" } }), { status: 404 });
    assertODataError(await mgmt("GET", "widgets"), { status: 404 });
    assertODataError(await mgmt("POST", "queues"), { status: 405 });
    const t = uniqueTag("mbt");
    assert.equal((await mgmt("PUT", `topics/${t}`, { body: {} })).status, 201);
    assertODataError(await mgmt("PUT", `topics/${t}`, { body: { lockDuration: "PT1M" } , headers: { "If-Match": "*" } }), { status: 400, context: "lockDuration on a topic" });
    assertODataError(await mgmt("PUT", `topics/${uniqueTag("none")}/subscriptions/s`, { body: {} }), { status: 404 });
    assert.equal((await mgmt("PUT", `topics/${t}/subscriptions/s`, { body: {} })).status, 201);
    // Invalid filters: a SQL syntax error, an unknown sys. property, a bad action.
    for (const body of [
      { filter: { sqlExpression: "color = " } },
      { filter: { sqlExpression: "sys.NoSuchThing = 1" } },
      { filter: { sqlExpression: "1=1" }, action: { sqlExpression: "DROP TABLE x" } },
      { filter: 42 },
    ]) {
      const r = await mgmt("PUT", `topics/${t}/subscriptions/s/rules/bad`, { body });
      assertODataError(r, { status: 400, context: JSON.stringify(body) });
    }
    assertODataError(
      await mgmt("PUT", `topics/${t}/subscriptions/bad`, { body: { defaultRuleOptions: { filter: { sqlExpression: "a ==== b" } } } }),
      { status: 400 }
    );
    assertODataError(await mgmt("GET", `topics/${t}/subscriptions/bad`), { status: 404, context: "nothing made by a failed create" });
    await assertHealthy();
  });
});

describe("data plane", () => {
  it("sends a message with BrokerProperties and custom properties; peek-lock shows them; complete removes it", async () => {
    const q = uniqueTag("dq");
    await createQueue(q);
    await send(q, "hello bus", {
      props: { MessageId: "m-1", CorrelationId: "c-1", Label: "greeting", To: "x", ReplyTo: "y", TimeToLive: 600 },
      custom: { Priority: '"High"', Customer: '"12345,ABC"', Count: "42", Ratio: "2.5", Urgent: "true" },
      contentType: "text/plain; charset=utf-8",
    });
    const r = await peekLock(q);
    assert.equal(r.status, 201, r.text);
    assert.equal(r.text, "hello bus");
    assert.equal(r.headers.get("content-type"), "text/plain; charset=utf-8");
    const bp = r.bp;
    assert.equal(bp.MessageId, "m-1");
    assert.equal(bp.CorrelationId, "c-1");
    assert.equal(bp.Label, "greeting");
    assert.equal(bp.To, "x");
    assert.equal(bp.ReplyTo, "y");
    assert.equal(bp.TimeToLive, 600);
    assert.equal(bp.DeliveryCount, 1);
    assert.equal(bp.SequenceNumber, 1);
    assert.equal(bp.State, "Active");
    assert.match(bp.LockToken, GUID_RE);
    assert.match(bp.LockedUntilUtc, RFC1123_RE);
    assert.match(bp.EnqueuedTimeUtc, RFC1123_RE);
    assert.ok(Date.parse(bp.LockedUntilUtc) > Date.parse(bp.EnqueuedTimeUtc));
    // Custom properties come back as headers, strings quoted; names keep their case.
    assert.equal(r.headers.get("priority"), '"High"');
    assert.equal(r.headers.get("customer"), '"12345,ABC"');
    assert.equal(r.headers.get("count"), "42");
    assert.equal(r.headers.get("ratio"), "2.5");
    assert.equal(r.headers.get("urgent"), "true");
    const peek = await sb("GET", `${q}/messages?peek`);
    assert.deepEqual(Object.keys(peek.json[0].UserProperties).sort(), ["Count", "Customer", "Priority", "Ratio", "Urgent"]);
    assert.deepEqual(peek.json[0].UserProperties, { Count: 42, Customer: "12345,ABC", Priority: "High", Ratio: 2.5, Urgent: true });
    // Location: …/messages/{seq}/{lockToken}
    const loc = lockPath(r);
    assert.equal(loc, `${q}/messages/1/${bp.LockToken}`);
    // Locked: nobody else gets it.
    assert.equal((await peekLock(q)).status, 204);
    const done = await sb("DELETE", loc);
    assert.equal(done.status, 200, done.text);
    assertODataError(await sb("DELETE", loc), { status: 410, code: LOCK_LOST, context: "complete twice" });
    assert.equal((await peekLock(q)).status, 204);
    assert.equal((await mgmt("GET", `queues/${q}`)).json.activeMessageCount, 0);
  });

  it("assigns a MessageId when none is given and takes ContentType from Content-Type", async () => {
    const q = uniqueTag("did");
    await createQueue(q);
    await send(q, '{"a":1}', { contentType: "application/json" });
    const r = await receiveAndDelete(q);
    assert.equal(r.status, 200);
    assert.ok(r.bp.MessageId, "a message id is assigned");
    assert.equal(r.bp.ContentType, "application/json");
    assert.equal(r.bp.LockToken, undefined, "receive-and-delete has no lock");
    assert.equal(r.headers.get("location"), null);
  });

  it("sends a batch (application/vnd.microsoft.servicebus.json)", async () => {
    const q = uniqueTag("batch");
    await createQueue(q);
    const batch = [
      { Body: "first", BrokerProperties: { Label: "L1", MessageId: "b1" }, UserProperties: { n: 1, who: "ann" } },
      { Body: "second", BrokerProperties: { Label: "L2" }, UserProperties: { n: 2, ok: false } },
      { Body: "third" },
    ];
    const r = await sb("POST", `${q}/messages`, {
      headers: { "Content-Type": "application/vnd.microsoft.servicebus.json" },
      body: JSON.stringify(batch),
    });
    assert.equal(r.status, 201, r.text);
    const got = [];
    for (let i = 0; i < 3; i++) {
      const m = await receiveAndDelete(q);
      assert.equal(m.status, 200, m.text);
      got.push({ body: m.text, label: m.bp.Label, seq: m.bp.SequenceNumber, n: m.headers.get("n") });
    }
    assert.deepEqual(got, [
      { body: "first", label: "L1", seq: 1, n: "1" },
      { body: "second", label: "L2", seq: 2, n: "2" },
      { body: "third", label: undefined, seq: 3, n: null },
    ]);
    assert.equal((await receiveAndDelete(q)).status, 204);
  });

  it("abandon (unlock) makes the message available again with DeliveryCount + 1; maxDeliveryCount dead-letters it", async () => {
    const q = uniqueTag("ab");
    await createQueue(q, { maxDeliveryCount: 3 });
    await send(q, "poison", { props: { MessageId: "p1" } });
    for (let attempt = 1; attempt <= 3; attempt++) {
      const r = await peekLock(q);
      assert.equal(r.status, 201, `attempt ${attempt}: ${r.status} ${r.text}`);
      assert.equal(r.bp.DeliveryCount, attempt);
      const u = await sb("PUT", lockPath(r));
      assert.equal(u.status, 200, u.text);
    }
    assert.equal((await peekLock(q)).status, 204, "after 3 deliveries the message left the queue");
    const info = await mgmt("GET", `queues/${q}`);
    assert.equal(info.json.deadLetterMessageCount, 1);
    const d = await peekLock(`${q}/$DeadLetterQueue`);
    assert.equal(d.status, 201, d.text);
    assert.equal(d.text, "poison");
    assert.equal(d.headers.get("deadletterreason"), '"MaxDeliveryCountExceeded"');
    assert.match(d.headers.get("deadlettererrordescription"), /3 delivery attempts/);
    assert.match(lockPath(d), new RegExp(`^${q}/\\$DeadLetterQueue/messages/\\d+/`));
    assert.equal((await sb("DELETE", lockPath(d))).status, 200, "complete from the dead-letter queue");
    assert.equal((await mgmt("GET", `queues/${q}`)).json.deadLetterMessageCount, 0);
  });

  it("abandon with properties to modify merges them", async () => {
    const q = uniqueTag("abp");
    await createQueue(q);
    await send(q, "x", { custom: { stage: '"new"' } });
    const r = await peekLock(q);
    assert.equal((await sb("PUT", lockPath(r), { body: { stage: "retry", attempts: 1 } })).status, 200);
    const again = await peekLock(q);
    assert.equal(again.headers.get("stage"), '"retry"');
    assert.equal(again.headers.get("attempts"), "1");
    assert.equal(again.bp.DeliveryCount, 2);
  });

  it("dead-letters with a reason and description; the sub-queue is addressed by path", async () => {
    const q = uniqueTag("dl");
    await createQueue(q);
    await send(q, "bad order");
    const r = await peekLock(q);
    const dl = await sb("POST", `${lockPath(r)}/deadletter`, {
      body: { DeadLetterReason: "ValidationFailed", DeadLetterErrorDescription: "amount < 0" },
    });
    assert.equal(dl.status, 200, dl.text);
    assert.equal((await peekLock(q)).status, 204);
    const peek = await sb("GET", `${q}/$DeadLetterQueue/messages?peek`);
    assert.equal(peek.status, 200);
    assert.equal(peek.json.length, 1);
    assert.equal(peek.json[0].UserProperties.DeadLetterReason, "ValidationFailed");
    assert.equal(peek.json[0].UserProperties.DeadLetterErrorDescription, "amount < 0");
    const enc = await receiveAndDelete(`${q}/%24DeadLetterQueue`);
    assert.equal(enc.status, 200, "a percent-encoded $ works too");
    assert.equal(enc.text, "bad order");
    assertODataError(await sb("POST", `${q}/$DeadLetterQueue/messages`, { body: "x" }), { status: 400, context: "send to a DLQ" });
  });

  it("renews a lock", async () => {
    const q = uniqueTag("rn");
    await createQueue(q, { lockDuration: "PT10S" });
    await send(q, "long job");
    const r = await peekLock(q);
    await sleep(1100);
    const renew = await sb("POST", lockPath(r));
    assert.equal(renew.status, 200, renew.text);
    assert.match(renew.json.LockedUntilUtc, RFC1123_RE);
    assert.ok(Date.parse(renew.json.LockedUntilUtc) > Date.parse(r.bp.LockedUntilUtc), "the lock moved forward");
    assert.equal((await sb("DELETE", lockPath(r))).status, 200);
    assertODataError(await sb("POST", lockPath(r)), { status: 410, context: "renew after complete" });
  });

  it("a lock that expires makes the message available again", async () => {
    const q = uniqueTag("exp");
    await createQueue(q, { lockDuration: "PT5S" });
    await send(q, "slow");
    const r = await peekLock(q);
    assert.equal(r.status, 201);
    const again = await peekLock(q, 15);
    assert.equal(again.status, 201, "redelivered after the lock expired (long poll)");
    assert.equal(again.bp.DeliveryCount, 2);
    assertODataError(await sb("DELETE", lockPath(r)), { status: 410, code: LOCK_LOST, context: "complete with the expired lock" });
    assert.equal((await sb("DELETE", lockPath(again))).status, 200);
  });

  it("defers a message, peeks it as Deferred and receives it by sequence number", async () => {
    const q = uniqueTag("df");
    await createQueue(q);
    await send(q, "later");
    await send(q, "now");
    const r = await peekLock(q);
    assert.equal(r.text, "later");
    const seq = r.bp.SequenceNumber;
    assert.equal((await sb("POST", `${lockPath(r)}/defer`)).status, 200);
    const next = await receiveAndDelete(q);
    assert.equal(next.text, "now", "the deferred message is skipped");
    assert.equal((await receiveAndDelete(q)).status, 204);
    const peek = await sb("GET", `${q}/messages?peek&from=${seq}&top=5`);
    assert.equal(peek.json.length, 1);
    assert.equal(peek.json[0].BrokerProperties.State, "Deferred");
    const got = await sb("POST", `${q}/messages/deferred?seq=${seq}`);
    assert.equal(got.status, 200, got.text);
    assert.equal(got.json.length, 1);
    assert.equal(got.json[0].Body, "later");
    const token = got.json[0].BrokerProperties.LockToken;
    assert.match(token, GUID_RE);
    assert.equal((await sb("DELETE", `${q}/messages/${seq}/${token}`)).status, 200);
    assert.deepEqual((await sb("GET", `${q}/messages?peek`)).json, []);
    assertODataError(await sb("POST", `${q}/messages/deferred?seq=abc`), { status: 400 });
  });

  it("peeks from a sequence number without locking", async () => {
    const q = uniqueTag("pk");
    await createQueue(q);
    for (let i = 1; i <= 5; i++) await send(q, `m${i}`);
    const a = await sb("GET", `${q}/messages?peek&from=2&top=2`);
    assert.equal(a.status, 200);
    assert.deepEqual(a.json.map((m) => [m.Body, m.BrokerProperties.SequenceNumber, m.BrokerProperties.DeliveryCount]), [
      ["m2", 2, 0],
      ["m3", 3, 0],
    ]);
    assert.equal(a.json[0].BrokerProperties.LockToken, undefined);
    const all = await sb("GET", `${q}/messages?peek&top=250`);
    assert.equal(all.json.length, 5);
    assert.equal((await peekLock(q)).text, "m1", "peek does not lock");
    assertODataError(await sb("GET", `${q}/messages?peek&top=251`), { status: 400 });
  });

  it("ScheduledEnqueueTimeUtc (RFC 1123) delays a message", async () => {
    const q = uniqueTag("sch");
    await createQueue(q);
    const at = new Date(Math.ceil((Date.now() + 2000) / 1000) * 1000);
    await send(q, "at time", { props: { ScheduledEnqueueTimeUtc: at.toUTCString() } });
    const peek = await sb("GET", `${q}/messages?peek`);
    assert.equal(peek.json[0].BrokerProperties.State, "Scheduled");
    assert.equal(peek.json[0].BrokerProperties.ScheduledEnqueueTimeUtc, at.toUTCString());
    assert.equal((await mgmt("GET", `queues/${q}`)).json.scheduledMessageCount, 1);
    assert.equal((await receiveAndDelete(q)).status, 204, "not before its time");
    const r = await receiveAndDelete(q, 10);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.text, "at time");
    assert.ok(Date.now() >= at.getTime() - 50, "delivered at or after the scheduled time");
  });

  it("receive-and-delete takes the message at once", async () => {
    const q = uniqueTag("rd");
    await createQueue(q);
    await send(q, "once");
    const r = await receiveAndDelete(q);
    assert.equal(r.status, 200);
    assert.equal(r.text, "once");
    assert.equal(r.bp.DeliveryCount, 1);
    assert.equal((await receiveAndDelete(q)).status, 204);
    assert.equal((await mgmt("GET", `queues/${q}`)).json.totalMessageCount, 0);
  });

  it("long polling: a waiting receive is answered by a later send; an idle one answers 204 after its timeout", async () => {
    const q = uniqueTag("lp");
    await createQueue(q);
    const started = Date.now();
    const waiting = peekLock(q, 20);
    await sleep(500);
    await send(q, "wake up");
    const r = await waiting;
    const took = Date.now() - started;
    assert.equal(r.status, 201, r.text);
    assert.equal(r.text, "wake up");
    assert.ok(took >= 450 && took < 10_000, `answered after ${took} ms`);

    const t0 = Date.now();
    const idle = await receiveAndDelete(q, 1);
    const idleMs = Date.now() - t0;
    assert.equal(idle.status, 204);
    assert.ok(idleMs >= 900 && idleMs < 5000, `idle receive took ${idleMs} ms`);
  });
});

describe("sessions", () => {
  it("accepts sessions, receives in order within one, keeps state, renews and releases", async () => {
    const q = uniqueTag("ss");
    await createQueue(q, { requiresSession: true });
    assertODataError(await sb("POST", `${q}/messages`, { body: "no session" }), { status: 400, context: "session-less send" });
    for (let i = 0; i < 3; i++) {
      await send(q, `a${i}`, { props: { SessionId: "A" } });
      await send(q, `b${i}`, { props: { SessionId: "B" } });
    }
    const list = await sb("GET", `${q}/sessions`);
    assert.equal(list.status, 200, list.text);
    assert.deepEqual(list.json.sort(), ["A", "B"]);

    const acc = await sb("POST", `${q}/sessions/accept?session=A&timeout=0`);
    assert.equal(acc.status, 200, acc.text);
    assert.equal(acc.json.SessionId, "A");
    assert.match(acc.json.SessionLockToken, GUID_RE);
    assert.match(acc.json.LockedUntilUtc, RFC1123_RE);
    const lock = { "x-session-lock": acc.json.SessionLockToken };

    // A is exclusive: a second accept of A fails, accept-next gets B.
    assertODataError(await sb("POST", `${q}/sessions/accept?session=A&timeout=0`), { status: 410, context: "A twice" });
    const nextB = await sb("POST", `${q}/sessions/accept?timeout=5`);
    assert.equal(nextB.status, 200, nextB.text);
    assert.equal(nextB.json.SessionId, "B");
    assert.equal((await sb("POST", `${q}/sessions/accept?timeout=1`)).status, 204, "no free session left");

    // A session receive needs the session lock.
    assertODataError(await sb("POST", `${q}/sessions/A/messages/head?timeout=0`), { status: 400 });
    assertODataError(
      await sb("POST", `${q}/sessions/A/messages/head?timeout=0`, { headers: { "x-session-lock": randomUUID() } }),
      { status: 410, context: "a wrong session lock" }
    );
    const bodies = [];
    for (let i = 0; i < 3; i++) {
      const m = await sb("POST", `${q}/sessions/A/messages/head?timeout=0`, { headers: lock });
      assert.equal(m.status, 201, m.text);
      assert.equal(m.bp.SessionId, "A");
      bodies.push(m.text);
      if (i === 1) {
        // Abandon keeps the order: the same message comes next.
        assert.equal((await sb("PUT", lockPath(m))).status, 200);
        const again = await sb("POST", `${q}/sessions/A/messages/head?timeout=0`, { headers: lock });
        assert.equal(again.text, m.text);
        assert.equal((await sb("DELETE", lockPath(again))).status, 200);
      } else {
        assert.equal((await sb("DELETE", lockPath(m))).status, 200);
      }
    }
    assert.deepEqual(bodies, ["a0", "a1", "a2"]);
    assert.equal((await sb("POST", `${q}/sessions/A/messages/head?timeout=0`, { headers: lock })).status, 204);

    // State: none, set, read, clear.
    assert.equal((await sb("GET", `${q}/sessions/A/state`)).status, 204);
    assertODataError(await sb("PUT", `${q}/sessions/A/state`, { body: "x" }), { status: 400, context: "state without lock" });
    const st = await sb("PUT", `${q}/sessions/A/state`, { headers: { ...lock, "Content-Type": "application/octet-stream" }, body: "step=3" });
    assert.equal(st.status, 200, st.text);
    const read = await sb("GET", `${q}/sessions/A/state`);
    assert.equal(read.status, 200);
    assert.equal(read.text, "step=3");

    const renew = await sb("POST", `${q}/sessions/A/renew`, { headers: lock });
    assert.equal(renew.status, 200, renew.text);
    assert.match(renew.json.LockedUntilUtc, RFC1123_RE);

    assert.equal((await sb("DELETE", `${q}/sessions/A`, { headers: lock })).status, 200);
    assertODataError(await sb("POST", `${q}/sessions/A/renew`, { headers: lock }), { status: 410, context: "renew after release" });
    // Released: A can be accepted again, and its state outlived its messages.
    const reacc = await sb("POST", `${q}/sessions/accept?session=A&timeout=0`);
    assert.equal(reacc.status, 200, reacc.text);
    assert.equal((await sb("GET", `${q}/sessions/A/state`)).text, "step=3");
    const cleared = await sb("DELETE", `${q}/sessions/A/state`, { headers: { "x-session-lock": reacc.json.SessionLockToken } });
    assert.equal(cleared.status, 200, cleared.text);
    assert.equal((await sb("GET", `${q}/sessions/A/state`)).status, 204);

    // B in order by receive-and-delete.
    const bLock = { "x-session-lock": nextB.json.SessionLockToken };
    const b = [];
    for (let i = 0; i < 3; i++) b.push((await sb("DELETE", `${q}/sessions/B/messages/head?timeout=0`, { headers: bLock })).text);
    assert.deepEqual(b, ["b0", "b1", "b2"]);
  });

  it("accept-next long-polls until a session gets a message", async () => {
    const q = uniqueTag("sn");
    await createQueue(q, { requiresSession: true });
    const waiting = sb("POST", `${q}/sessions/accept?timeout=20`);
    await sleep(400);
    await send(q, "hi", { props: { SessionId: "late" } });
    const r = await waiting;
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.SessionId, "late");
  });
});

describe("bad input", () => {
  it("answers every bad request with a clear 4xx and the broker keeps working", async () => {
    const q = uniqueTag("bad");
    await createQueue(q);
    const topic = uniqueTag("badt");
    assert.equal((await mgmt("PUT", `topics/${topic}`, { body: {} })).status, 201);
    assert.equal((await mgmt("PUT", `topics/${topic}/subscriptions/s`, { body: {} })).status, 201);
    const cases = [
      ["malformed BrokerProperties", () => sb("POST", `${q}/messages`, { headers: { BrokerProperties: "{oops" }, body: "x" }), 400],
      ["BrokerProperties not an object", () => sb("POST", `${q}/messages`, { headers: { BrokerProperties: "[1]" }, body: "x" }), 400],
      ["TimeToLive as text", () => sb("POST", `${q}/messages`, { headers: { BrokerProperties: '{"TimeToLive":"soon"}' }, body: "x" }), 400],
      ["negative TimeToLive", () => sb("POST", `${q}/messages`, { headers: { BrokerProperties: '{"TimeToLive":-5}' }, body: "x" }), 400],
      ["bad ScheduledEnqueueTimeUtc", () => sb("POST", `${q}/messages`, { headers: { BrokerProperties: '{"ScheduledEnqueueTimeUtc":"tomorrow"}' }, body: "x" }), 400],
      ["MessageId of 129 characters", () => sb("POST", `${q}/messages`, { headers: { BrokerProperties: JSON.stringify({ MessageId: "m".repeat(129) }) }, body: "x" }), 400],
      ["batch that is not an array", () => sb("POST", `${q}/messages`, { headers: { "Content-Type": "application/vnd.microsoft.servicebus.json" }, body: '{"Body":"x"}' }), 400],
      ["empty batch", () => sb("POST", `${q}/messages`, { headers: { "Content-Type": "application/vnd.microsoft.servicebus.json" }, body: "[]" }), 400],
      ["batch with a numeric Body", () => sb("POST", `${q}/messages`, { headers: { "Content-Type": "application/vnd.microsoft.servicebus.json" }, body: '[{"Body":5}]' }), 400],
      ["batch that is not JSON", () => sb("POST", `${q}/messages`, { headers: { "Content-Type": "application/vnd.microsoft.servicebus.json" }, body: "[{" }), 400],
      ["300 KB message", () => sb("POST", `${q}/messages`, { body: "x".repeat(300 * 1024) }), 413],
      ["300 KB batch", () => sb("POST", `${q}/messages`, { headers: { "Content-Type": "application/vnd.microsoft.servicebus.json" }, body: JSON.stringify([{ Body: "y".repeat(300 * 1024) }]) }), 413],
      ["send to an unknown queue", () => sb("POST", `${uniqueTag("nope")}/messages`, { body: "x" }), 404],
      ["receive from an unknown queue", () => peekLock(uniqueTag("nope")), 404],
      ["peek an unknown queue", () => sb("GET", `${uniqueTag("nope")}/messages?peek`), 404],
      ["a lock token that is not a GUID", () => sb("DELETE", `${q}/messages/1/not-a-token`), 400],
      ["an unknown lock token", () => sb("DELETE", `${q}/messages/1/${randomUUID()}`), 410],
      ["abandon with a bad body", () => sb("PUT", `${q}/messages/1/${randomUUID()}`, { body: "[1,2]" }), 400],
      ["negative timeout", () => sb("POST", `${q}/messages/head?timeout=-1`), 400],
      ["timeout that is not a number", () => sb("POST", `${q}/messages/head?timeout=soon`), 400],
      ["unknown route", () => sb("GET", `${q}/whatever`), 404],
      ["wrong method on head", () => sb("GET", `${q}/messages/head`), 405],
      ["bad percent escape", () => sb("GET", `${q}%zz/messages?peek`), 400],
      ["no token", () => sb("POST", `${q}/messages`, { auth: false, body: "x" }), 401],
      ["a forged token", () => sb("POST", `${q}/messages`, { token: "eyJhbGciOiJIUzI1NiJ9.e30.c2lnbmF0dXJl", body: "x" }), 401],
      ["sessions on a dead-letter queue", () => sb("POST", `${q}/$DeadLetterQueue/sessions/accept`), 400],
      ["peek a topic", () => sb("GET", `${topic}/messages?peek`), 400],
      ["send to a subscription", () => sb("POST", `${topic}/subscriptions/s/messages`, { body: "x" }), 400],
    ];
    for (const [name, fn, status] of cases) {
      const r = await fn();
      assertODataError(r, { status, context: name });
      assert.ok(!/\b(sig|secret|password)\b/i.test(r.text), `${name}: no secrets in the error`);
    }
    assert.equal((await mgmt("GET", `queues/${q}`)).json.activeMessageCount, 0, "no bad send was stored");
    // A 256 KB message fits (body + properties within the entity's 256 KB).
    await send(q, "z".repeat(200 * 1024));
    assert.equal((await receiveAndDelete(q)).text.length, 200 * 1024);
    await assertHealthy();
    const h = await fetch(`${server.base}/healthz`);
    assert.equal(h.status, 200);
  });
});

describe("metrics", () => {
  it("exposes per-entity gauges and the HTTP counters", async () => {
    const q = uniqueTag("met");
    await createQueue(q);
    await send(q, "a");
    await send(q, "b");
    await receiveAndDelete(q);
    const text = await (await fetch(`${server.base}/metrics`)).text();
    assert.match(text, new RegExp(`tributary_bus_messages\\{entity="${q}",state="active"\\} 1\\n`));
    assert.match(text, new RegExp(`tributary_bus_messages\\{entity="${q}",state="dead_lettered"\\} 0\\n`));
    assert.match(text, new RegExp(`tributary_bus_http_sent_total\\{entity="${q}"\\} 2\\n`));
    assert.match(text, new RegExp(`tributary_bus_http_completed_total\\{entity="${q}"\\} 1\\n`));
  });
});

/** Runs `tributary ARGS`; resolves {code, stdout, stderr}. */
function cli(args, env = process.env, timeoutMs = 60_000) {
  return new Promise((resolve, reject) => {
    const child = spawn(BIN, args, { cwd: REPO_ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("error", reject);
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

describe("tributary bus CLI and serve --bus-config", () => {
  let cliServer;
  let dir;
  let config;

  before(async () => {
    cliServer = await startServer({ start: false });
    dir = cliServer.dataDir;
    config = path.join(await fs.mkdtemp(path.join(os.tmpdir(), "tributary-bus-")), "Config.json");
    await fs.writeFile(
      config,
      JSON.stringify({
        UserConfig: {
          Namespaces: [
            {
              Name: "sbemulatorns",
              Queues: [{ Name: "emq", Properties: { LockDuration: "PT45S", MaxDeliveryCount: 4, RequiresSession: false } }],
              Topics: [
                {
                  Name: "emt",
                  Properties: {},
                  Subscriptions: [
                    {
                      Name: "ems",
                      Properties: { MaxDeliveryCount: 3 },
                      Rules: [{ Name: "red", Properties: { FilterType: "Sql", SqlFilter: { SqlExpression: "color = 'red'" } } }],
                    },
                  ],
                },
              ],
            },
          ],
        },
      })
    );
  });

  after(async () => {
    await cliServer?.cleanup();
    if (config) await fs.rm(path.dirname(config), { recursive: true, force: true });
  });

  it("creates, lists, shows and deletes entities with the server stopped", async () => {
    const env = cliServer.env;
    let r = await cli(["bus", "create-queue", "orders", "--data", dir, "--lock-duration", "PT30S", "--max-delivery-count", "4", "--requires-session"], env);
    assert.equal(r.code, 0, r.stderr);
    const q = JSON.parse(r.stdout);
    assert.equal(q.lockDuration, "PT30S");
    assert.equal(q.maxDeliveryCount, 4);
    assert.equal(q.requiresSession, true);
    r = await cli(["bus", "create-topic", "events", "--data", dir], env);
    assert.equal(r.code, 0, r.stderr);
    r = await cli(["bus", "create-subscription", "events", "audit", "--data", dir, "--sql", "kind = 'audit'"], env);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).rules[0].filter.sqlExpression, "kind = 'audit'");
    r = await cli(["bus", "create-queue", "tmp", "--data", dir, "--properties", '{"maxDeliveryCount":2}'], env);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).maxDeliveryCount, 2);

    r = await cli(["bus", "list", "--data", dir], env);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /queue\s+orders\s+0/);
    assert.match(r.stdout, /subscription\s+events\/Subscriptions\/audit/);
    r = await cli(["bus", "list", "--json", "--data", dir], env);
    const all = JSON.parse(r.stdout);
    assert.deepEqual(all.queues.map((x) => x.name).sort(), ["orders", "tmp"]);
    assert.deepEqual(all.topics.map((x) => x.name), ["events"]);

    r = await cli(["bus", "show", "events/Subscriptions/audit", "--data", dir], env);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).subscriptionName, "audit");
    r = await cli(["bus", "delete", "tmp", "--data", dir], env);
    assert.equal(r.code, 0, r.stderr);

    // Errors: exit 2 and a message.
    for (const args of [
      ["bus", "create-queue", "orders", "--data", dir],
      ["bus", "show", "nope", "--data", dir],
      ["bus", "delete", "nope", "--data", dir],
      ["bus", "create-queue", "x", "--data", dir, "--lock-duration", "forever"],
      ["bus", "create-subscription", "events", "bad", "--data", dir, "--sql", "a = = b"],
      ["bus", "load-config", "/nonexistent/Config.json", "--data", dir],
    ]) {
      const e = await cli(args, env);
      assert.equal(e.code, 2, `${args.join(" ")}: exit ${e.code} ${e.stderr}`);
      assert.match(e.stderr, /tributary: /);
    }

    r = await cli(["bus", "load-config", config, "--data", dir], env);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /loaded/);
  });

  it("the server sees what the CLI made, and --bus-config loads an emulator Config.json at start", async () => {
    const other = await startServer({ start: false });
    try {
      other.args = ["--bus-config", config];
      await other.start();
      const saved = server;
      server = other;
      try {
        const emq = await mgmt("GET", "queues/emq");
        assert.equal(emq.status, 200, emq.text);
        assert.equal(emq.json.lockDuration, "PT45S");
        assert.equal(emq.json.maxDeliveryCount, 4);
        const rules = await mgmt("GET", "topics/emt/subscriptions/ems/rules");
        assert.deepEqual(rules.json.map((x) => x.name), ["red"]);
        await send("emt", "r", { custom: { color: "'red'" } });
        await send("emt", "r2", { custom: { color: '"red"' } });
        const got = await receiveAndDelete("emt/subscriptions/ems");
        assert.equal(got.text, "r2");
      } finally {
        server = saved;
      }
      // Restarting with the same config keeps the messages and entities.
      await other.restart();
      const saved2 = server;
      server = other;
      try {
        assert.equal((await mgmt("GET", "queues/emq")).status, 200);
      } finally {
        server = saved2;
      }
    } finally {
      await other.cleanup();
    }

    await cliServer.start();
    const saved = server;
    server = cliServer;
    try {
      const orders = await mgmt("GET", "queues/orders");
      assert.equal(orders.status, 200, orders.text);
      assert.equal(orders.json.requiresSession, true);
      assert.equal((await mgmt("GET", "queues/emq")).status, 200, "load-config made emq");
      assertODataError(await mgmt("GET", "queues/tmp"), { status: 404 });
      await send("orders", "o1", { props: { SessionId: "s" } });
      const acc = await sb("POST", "orders/sessions/accept?session=s&timeout=0");
      assert.equal(acc.status, 200, acc.text);
    } finally {
      server = saved;
    }
  });

  it("one process per data folder: a second server and bus commands are refused while a server runs", async () => {
    // cliServer runs since the previous test.
    const inUse = /data folder .* is in use by another Tributary process \(pid \d+, http:\/\/127\.0\.0\.1:\d+\)/;
    const second = await cli(["serve", "--data", dir, "--listen", "127.0.0.1:0"], cliServer.env, 20_000);
    assert.equal(second.signal, null, "the second server did not exit by itself");
    assert.equal(second.code, 2, second.stderr);
    assert.match(second.stderr, inUse);
    for (const args of [["bus", "create-queue", "side", "--data", dir], ["bus", "list", "--data", dir]]) {
      const r = await cli(args, cliServer.env);
      assert.equal(r.code, 2, `${args.join(" ")}: ${r.stdout} ${r.stderr}`);
      assert.match(r.stderr, inUse);
    }
    // The server is unaffected, and a kill -9 releases the folder at once.
    const saved = server;
    server = cliServer;
    try {
      assert.equal((await mgmt("GET", "queues/orders")).status, 200);
      assertODataError(await mgmt("GET", "queues/side"), { status: 404 });
    } finally {
      server = saved;
    }
    await cliServer.kill9();
    const r = await cli(["bus", "list", "--data", dir], cliServer.env);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /orders/);
  });

  it("bus: config: in the YAML config file; SIGTERM answers a pending long poll with 503", async () => {
    const yaml = path.join(path.dirname(config), "tributary.yaml");
    await fs.writeFile(yaml, `bus:\n  config: ${config}\n`);
    const other = await startServer({ start: false, args: ["--config", yaml] });
    try {
      await other.start();
      const saved = server;
      server = other;
      try {
        assert.equal((await mgmt("GET", "queues/emq")).status, 200);
        const waiting = peekLock("emq", 60);
        await sleep(300);
        const t0 = Date.now();
        const stopped = other.stop();
        const r = await waiting;
        assert.equal(r.status, 503, r.text);
        assert.ok(Date.now() - t0 < 3000, "answered at once");
        assert.equal((await stopped).graceful, true);
      } finally {
        server = saved;
      }
    } finally {
      await other.cleanup();
    }
  });

  it("a bad --bus-config stops serve with a message", async () => {
    const bad = path.join(path.dirname(config), "bad.json");
    await fs.writeFile(bad, '{"UserConfig":{"Namespaces":[{"Name":"x","Queues":[{"Name":"q","Properties":{"LockDuration":"never"}}]}]}}');
    const d = await fs.mkdtemp(path.join(os.tmpdir(), "tributary-e2e-"));
    try {
      const r = await cli(["serve", "--data", d, "--listen", "127.0.0.1:0", "--bus-config", bad], cliServer.env);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /bad\.json/);
    } finally {
      await fs.rm(d, { recursive: true, force: true });
    }
  });
});

describe("kill -9", () => {
  let crash;
  const q = "durable";
  const acked = new Set(); // bodies whose send was answered 201
  const completed = new Set(); // bodies whose complete was answered 200
  // Bodies whose complete was sent but not answered before the kill: the broker may or may not
  // have committed it, so after the restart such a message may be either there or gone.
  const completing = new Set();
  const lockedAtCrash = new Set(); // bodies received (peek-lock) and never settled

  before(async () => {
    crash = await startServer();
  });

  after(async () => {
    await crash?.cleanup();
  });

  it("sends and completes under load, then the server is SIGKILLed", async () => {
    const saved = server;
    server = crash;
    try {
      await createQueue(q, { lockDuration: "PT5S" });
      const token = await crash.token();
      let stop = false;
      const sender = async (c) => {
        for (let n = 0; !stop; n++) {
          const body = `c${c}-${n}`;
          try {
            const r = await sb("POST", `${q}/messages`, { token, body, headers: { BrokerProperties: JSON.stringify({ MessageId: body }) }, timeoutMs: 10_000 });
            if (r.status === 201) acked.add(body);
            else if (!stop) throw new Error(`send ${body}: ${r.status} ${r.text}`);
          } catch (e) {
            if (!stop) throw e;
            return;
          }
        }
      };
      const receiver = async () => {
        for (let i = 0; !stop; i++) {
          try {
            const r = await sb("POST", `${q}/messages/head?timeout=1`, { token, timeoutMs: 10_000 });
            if (r.status !== 201) continue;
            if (i % 5 === 4) {
              lockedAtCrash.add(r.text); // keep the lock: it must be released by the restart
              continue;
            }
            completing.add(r.text);
            const d = await sb("DELETE", lockPath(r), { token, timeoutMs: 10_000 });
            if (d.status === 200) completed.add(r.text);
            completing.delete(r.text);
          } catch {
            return;
          }
        }
      };
      const work = Promise.all([...Array.from({ length: 6 }, (_, c) => sender(c)), receiver(), receiver()]);
      await sleep(2500);
      stop = true;
      await crash.kill9();
      await work;
      assert.ok(acked.size >= 50, `only ${acked.size} sends acknowledged`);
      assert.ok(completed.size >= 5, `only ${completed.size} completions acknowledged`);
    } finally {
      server = saved;
    }
  });

  it("after restart: every acknowledged send is there, completed ones are gone, locks are released", async () => {
    await crash.start();
    const saved = server;
    server = crash;
    try {
      const stored = new Map(); // body → SequenceNumber
      let from = 0;
      for (;;) {
        const r = await sb("GET", `${q}/messages?peek&from=${from}&top=250`);
        assert.equal(r.status, 200, r.text);
        if (!r.json.length) break;
        for (const m of r.json) {
          assert.ok(!stored.has(m.Body), `${m.Body} stored twice`);
          stored.set(m.Body, m.BrokerProperties.SequenceNumber);
        }
        from = r.json.at(-1).BrokerProperties.SequenceNumber + 1;
      }
      const missing = [...acked].filter((b) => !completed.has(b) && !completing.has(b) && !stored.has(b));
      assert.ok(completing.size <= 2, `${completing.size} completions in flight with 2 receivers`);
      assert.deepEqual(missing.slice(0, 10), [], `${missing.length} acknowledged messages lost`);
      const resurrected = [...completed].filter((b) => stored.has(b));
      assert.deepEqual(resurrected.slice(0, 10), [], `${resurrected.length} completed messages came back`);

      // Locks held at the crash are gone: every stored message can be received now.
      const seen = new Set();
      await pool(Array.from({ length: 4 }), 4, async () => {
        for (;;) {
          const r = await receiveAndDelete(q, 0);
          if (r.status === 204) return;
          assert.equal(r.status, 200, r.text);
          seen.add(r.text);
        }
      });
      for (const b of lockedAtCrash) if (!completed.has(b)) assert.ok(seen.has(b), `${b} (locked at the crash) not redelivered`);
      assert.equal(seen.size, stored.size);
    } finally {
      server = saved;
    }
  });
});

describe("batch extensions: messages/head?maxMessages= and messages/complete", () => {
  const BATCH_CT = "application/vnd.microsoft.servicebus.json";
  const sendBatch = async (q, items) => {
    const r = await sb("POST", `${q}/messages`, { headers: { "Content-Type": BATCH_CT }, body: JSON.stringify(items) });
    assert.equal(r.status, 201, r.text);
  };
  const completeAll = (p, tokens, headers = {}) =>
    sb("POST", `${p}/messages/complete`, { headers: { "Content-Type": "application/json", ...headers }, body: { lockTokens: tokens } });

  it("peek-locks several messages in one answer and completes them in one request", async () => {
    const q = uniqueTag("bq");
    await createQueue(q);
    await sendBatch(q, Array.from({ length: 5 }, (_, i) => ({ Body: `m${i}`, UserProperties: { i } })));
    const r = await sb("POST", `${q}/messages/head?timeout=0&maxMessages=3`);
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json.map((m) => m.Body), ["m0", "m1", "m2"]);
    assert.deepEqual(r.json.map((m) => m.BrokerProperties.SequenceNumber), [1, 2, 3]);
    for (const m of r.json) {
      assert.match(m.BrokerProperties.LockToken, GUID_RE);
      assert.match(m.BrokerProperties.LockedUntilUtc, RFC1123_RE);
      assert.equal(m.BrokerProperties.DeliveryCount, 1);
    }
    assert.equal(r.json[1].UserProperties.i, 1);
    const tokens = r.json.map((m) => m.BrokerProperties.LockToken);
    const c = await completeAll(q, tokens);
    assert.equal(c.status, 200, c.text);
    assertODataError(await completeAll(q, tokens), { status: 410, code: LOCK_LOST, context: "complete twice" });

    // A batch where one lock is stale: 207 with that failure; the other one is completed.
    const rest = await sb("POST", `${q}/messages/head?timeout=0&maxMessages=10`);
    assert.equal(rest.status, 200, rest.text);
    assert.deepEqual(rest.json.map((m) => m.Body), ["m3", "m4"]);
    const mixed = await completeAll(q, [rest.json[0].BrokerProperties.LockToken, tokens[0]]);
    assert.equal(mixed.status, 207, mixed.text);
    assert.equal(mixed.json.completed, 1);
    assert.equal(mixed.json.failures.length, 1);
    assert.equal(mixed.json.failures[0].lockToken, tokens[0]);
    assert.equal(mixed.json.failures[0].status, 410);
    assert.equal(mixed.json.failures[0].code, LOCK_LOST);
    // The single-message routes still settle a message received in a batch.
    const last = rest.json[1].BrokerProperties;
    assert.equal((await sb("DELETE", `${q}/messages/${last.SequenceNumber}/${last.LockToken}`)).status, 200);
    assert.equal((await sb("POST", `${q}/messages/head?timeout=0&maxMessages=10`)).status, 204);
    assert.equal((await mgmt("GET", `queues/${q}`)).json.activeMessageCount, 0);
  });

  it("long-polls a batch receive and receives-and-deletes in batches", async () => {
    const q = uniqueTag("bl");
    await createQueue(q);
    const waiting = sb("DELETE", `${q}/messages/head?timeout=10&maxMessages=50`);
    await sleep(300);
    await sendBatch(q, [{ Body: "a" }, { Body: "b" }]);
    const r = await waiting;
    assert.equal(r.status, 200, r.text);
    assert.ok(r.json.length >= 1 && r.json.length <= 2, r.text);
    assert.equal(r.json[0].BrokerProperties.LockToken, undefined, "receive-and-delete has no lock");
    const left = 2 - r.json.length;
    const again = await sb("DELETE", `${q}/messages/head?timeout=0&maxMessages=50`);
    assert.equal(again.status, left ? 200 : 204, again.text);
    assert.equal((await mgmt("GET", `queues/${q}`)).json.activeMessageCount, 0);
  });

  it("works within an accepted session, in sequence order", async () => {
    const q = uniqueTag("bs");
    await createQueue(q, { requiresSession: true });
    const items = [];
    for (let i = 0; i < 6; i++) items.push({ Body: `${i % 2 ? "B" : "A"}${i >> 1}`, BrokerProperties: { SessionId: i % 2 ? "B" : "A" } });
    await sendBatch(q, items);
    const acc = await sb("POST", `${q}/sessions/accept?session=A&timeout=0`);
    assert.equal(acc.status, 200, acc.text);
    const lock = { "x-session-lock": acc.json.SessionLockToken };
    assertODataError(await sb("POST", `${q}/sessions/A/messages/head?timeout=0&maxMessages=10`), { status: 400, context: "no session lock" });
    const r = await sb("POST", `${q}/sessions/A/messages/head?timeout=0&maxMessages=10`, { headers: lock });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json.map((m) => m.Body), ["A0", "A1", "A2"]);
    assert.ok(r.json.every((m) => m.BrokerProperties.SessionId === "A"));
    const c = await completeAll(`${q}/sessions/A`, r.json.map((m) => m.BrokerProperties.LockToken), lock);
    assert.equal(c.status, 200, c.text);
    assert.equal((await sb("POST", `${q}/sessions/A/messages/head?timeout=0&maxMessages=10`, { headers: lock })).status, 204);
    assert.equal((await sb("DELETE", `${q}/sessions/A`, { headers: lock })).status, 200);
    // B is untouched.
    const peek = await sb("GET", `${q}/messages?peek&top=10`);
    assert.deepEqual(peek.json.map((m) => m.Body), ["B0", "B1", "B2"]);
  });

  it("refuses bad batch requests with clear errors", async () => {
    const q = uniqueTag("bx");
    await createQueue(q);
    for (const v of ["0", "1001", "-1", "two"])
      assertODataError(await sb("POST", `${q}/messages/head?timeout=0&maxMessages=${v}`), { status: 400, context: `maxMessages=${v}` });
    for (const body of ["", "[]", "{", '{"lockTokens":[]}', '{"lockTokens":["x"]}', '{"other":[]}'])
      assertODataError(await sb("POST", `${q}/messages/complete`, { headers: { "Content-Type": "application/json" }, body }), {
        status: 400,
        context: `complete body ${body}`,
      });
    assertODataError(await sb("PUT", `${q}/messages/complete`), { status: 405 });
    assertODataError(await completeAll(uniqueTag("none"), [randomUUID()]), { status: 404, code: NOT_FOUND });
    await assertHealthy();
  });
});
