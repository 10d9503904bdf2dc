// $batch: change sets (all or nothing, Content-ID references), continue-on-error, GETs outside
// change sets, and the response framing, through dynamics-web-api's executeBatch and raw multipart.
// Wire facts: shared/reference/dataverse-webapi.md §6.

import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { startServer, SCHEMA_FIXTURE, GUID_RE, uniqueTag, assertODataError, q } from "./helpers.mjs";

let server;
let dwa;

before(async () => {
  server = await startServer({ schema: SCHEMA_FIXTURE });
  dwa = await server.dwa();
});

after(async () => {
  await server?.cleanup();
});

async function accountsWithTag(tag) {
  const r = await server.api("GET", `accounts?$select=name,numberofemployees,_primarycontactid_value&$filter=${q(`startswith(name,'${tag}')`)}&$orderby=name`);
  assert.equal(r.status, 200, r.text);
  return r.json.value;
}

async function contactsWithTag(tag) {
  const r = await server.api("GET", `contacts?$select=lastname,_parentcustomerid_value&$filter=${q(`startswith(lastname,'${tag}')`)}&$orderby=lastname`);
  assert.equal(r.status, 200, r.text);
  return r.json.value;
}

/** Builds a multipart/mixed $batch body. items: {get: url} | {changeset: [{method, url, body, id, headers}]} | {method,url,body}. */
function buildBatch(items, { eol = "\r\n" } = {}) {
  const boundary = `batch_${randomUUID()}`;
  const lines = [];
  const request = (op, contentId) => {
    lines.push("Content-Type: application/http", "Content-Transfer-Encoding: binary");
    if (contentId !== undefined) lines.push(`Content-ID: ${contentId}`);
    lines.push("");
    lines.push(`${op.method} ${op.url} HTTP/1.1`);
    for (const [k, v] of Object.entries(op.headers ?? {})) lines.push(`${k}: ${v}`);
    if (op.body !== undefined) lines.push("Content-Type: application/json; type=entry");
    lines.push("");
    if (op.body !== undefined) lines.push(typeof op.body === "string" ? op.body : JSON.stringify(op.body));
  };
  for (const item of items) {
    lines.push(`--${boundary}`);
    if (item.changeset) {
      const cs = `changeset_${randomUUID()}`;
      lines.push(`Content-Type: multipart/mixed; boundary=${cs}`, "");
      for (const op of item.changeset) {
        lines.push(`--${cs}`);
        request(op, op.id);
      }
      lines.push(`--${cs}--`);
    } else {
      request(item);
    }
  }
  lines.push(`--${boundary}--`, "");
  return { body: lines.join(eol), contentType: `multipart/mixed; boundary=${boundary}` };
}

/** Splits a multipart response into parts {status, headers, json, contentId} (flattening change sets). */
function parseBatchResponse(text, contentType) {
  const m = /boundary=([^;]+)/.exec(contentType);
  assert.ok(m, `boundary in ${contentType}`);
  assert.match(m[1], /^batchresponse_[0-9a-f-]{36}$/);
  const parts = [];
  const split = (body, boundary) => {
    const chunks = body.split(`--${boundary}`);
    chunks.shift();
    chunks.pop();
    for (const chunk of chunks) {
      const inner = /Content-Type: multipart\/mixed; boundary=(changesetresponse_[0-9a-f-]{36})/.exec(chunk);
      if (inner) {
        split(chunk, inner[1]);
        continue;
      }
      const cid = /Content-ID: (\S+)/.exec(chunk)?.[1];
      const http = chunk.indexOf("HTTP/1.1 ");
      const status = Number(chunk.slice(http + 9, http + 12));
      const headerEnd = chunk.indexOf("\r\n\r\n", http);
      const headerText = chunk.slice(http, headerEnd);
      const headers = {};
      for (const line of headerText.split("\r\n").slice(1)) {
        const i = line.indexOf(":");
        headers[line.slice(0, i).toLowerCase()] = line.slice(i + 1).trim();
      }
      const rest = chunk.slice(headerEnd + 4).trim();
      parts.push({ status, headers, contentId: cid, json: rest ? JSON.parse(rest) : undefined });
    }
  };
  assert.ok(!/[^\r]\n/.test(text.replace(/\r\n/g, "")), "every line ends in CRLF");
  split(text, m[1]);
  return parts;
}

async function sendBatch(items, { headers = {}, eol } = {}) {
  const { body, contentType } = buildBatch(items, { eol });
  const r = await server.http("POST", "$batch", { body, headers: { "Content-Type": contentType, ...headers } });
  const ct = r.headers["content-type"];
  return { status: r.status, contentType: ct, text: r.text, parts: r.status < 500 && /multipart/.test(ct ?? "") ? parseBatchResponse(r.text, ct) : [] };
}

describe("$batch through dynamics-web-api executeBatch", () => {
  it("commits a change set: creates, a Content-ID reference in a body, an update through $n", async () => {
    const tag = uniqueTag("dwab");
    dwa.startBatch();
    dwa.create({ collection: "contacts", data: { firstname: "Ann", lastname: `${tag}-c` }, contentId: "1" });
    dwa.create({ collection: "accounts", data: { name: `${tag}-a`, "primarycontactid@odata.bind": "$1" } });
    dwa.create({ collection: "accounts", data: { name: `${tag}-b` }, contentId: "3" });
    dwa.update({ contentId: "$3", data: { numberofemployees: 77 } });
    const responses = await dwa.executeBatch();
    assert.equal(responses.length, 4);
    const [contactId, accountA, accountB] = responses;
    assert.match(contactId, GUID_RE);
    assert.match(accountA, GUID_RE);
    assert.match(accountB, GUID_RE);
    const rows = await accountsWithTag(tag);
    assert.equal(rows.length, 2);
    assert.equal(rows[0]._primarycontactid_value, contactId, "$1 in @odata.bind resolved to the contact created in the same set");
    assert.equal(rows[1].numberofemployees, 77, "PATCH $3 updated the account created by Content-ID 3");
  });

  it("rolls back the whole change set when its 7th request fails: the first six leave no trace", async () => {
    const tag = uniqueTag("dwarb");
    dwa.startBatch();
    for (let i = 0; i < 6; i++) dwa.create({ collection: "accounts", data: { name: `${tag}-${i}`, numberofemployees: i } });
    dwa.create({ collection: "accounts", data: { name: "x".repeat(161) } }); // over the 160-character limit
    dwa.create({ collection: "accounts", data: { name: `${tag}-after` } });
    await assert.rejects(dwa.executeBatch(), (e) => {
      const err = Array.isArray(e) ? e[0] : e;
      assert.equal(err.status, 400);
      assert.equal(err.error?.code ?? err.code, "0x80044331");
      return true;
    });
    assert.equal((await accountsWithTag(tag)).length, 0, "no account of the failed change set exists");
  });

  it("mixes GETs outside the change set with writes inside it", async () => {
    const tag = uniqueTag("dwag");
    const existing = await server.createOne("accounts", { name: `${tag}-0`, numberofemployees: 5 });
    dwa.startBatch();
    dwa.retrieve({ collection: "accounts", key: existing, select: ["name", "numberofemployees"] });
    dwa.create({ collection: "accounts", data: { name: `${tag}-1` } });
    dwa.retrieveMultiple({ collection: "accounts", select: ["name"], filter: `startswith(name,'${tag}')` });
    dwa.count({ collection: "accounts" });
    const responses = await dwa.executeBatch();
    assert.equal(responses.length, 4);
    assert.equal(responses[0].name, `${tag}-0`);
    assert.equal(responses[0].numberofemployees, 5);
    assert.match(responses[1], GUID_RE);
    assert.ok(responses[2].value.length >= 1);
    assert.equal(typeof responses[3], "number");
  });

  it("continues after a failure with continueOnError and reports every part", async () => {
    const tag = uniqueTag("dwacoe");
    dwa.startBatch();
    dwa.create({ collection: "accounts", data: { name: `${tag}-1` }, inChangeSet: false });
    dwa.create({ collection: "accounts", data: { name: "x".repeat(200) }, inChangeSet: false });
    dwa.create({ collection: "accounts", data: { name: `${tag}-3` }, inChangeSet: false });
    const responses = await dwa.executeBatch({ continueOnError: true });
    assert.equal(responses.length, 3);
    assert.match(responses[0], GUID_RE);
    assert.ok(responses[1] instanceof Error || responses[1]?.status === 400 || responses[1]?.error, `second part failed: ${JSON.stringify(responses[1])}`);
    assert.match(responses[2], GUID_RE);
    assert.equal((await accountsWithTag(tag)).length, 2);
  });

  it("answers a long FetchXML that dynamics-web-api wraps in a $batch GET", async () => {
    const tag = uniqueTag("long");
    const id = await server.createOne("accounts", { name: `${tag}-hit` });
    // > 2,000 characters of URL: DWA sends it as POST $batch with one GET part.
    const values = Array.from({ length: 60 }, () => `<value>${randomUUID()}</value>`).join("");
    const fetchXml = `<fetch><entity name="account"><attribute name="name"/><filter type="or">` +
      `<condition attribute="accountid" operator="in">${values}<value>${id}</value></condition>` +
      `<condition attribute="name" operator="eq" value="${tag}-none"/></filter></entity></fetch>`;
    assert.ok(encodeURIComponent(fetchXml).length > 2000);
    const r = await dwa.fetch({ collection: "accounts", fetchXml });
    assert.equal(r.value.length, 1);
    assert.equal(r.value[0].name, `${tag}-hit`);
  });

  it("associates and deletes inside a change set", async () => {
    const tag = uniqueTag("dwaref");
    const account = await server.createOne("accounts", { name: `${tag}-acc` });
    const contact = await server.createOne("contacts", { lastname: `${tag}-c` });
    dwa.startBatch();
    dwa.associate({ collection: "accounts", primaryKey: account, relationshipName: "contact_customer_accounts", relatedCollection: "contacts", relatedKey: contact });
    dwa.update({ collection: "accounts", key: account, data: { numberofemployees: 3 } });
    await dwa.executeBatch();
    const rows = await contactsWithTag(tag);
    assert.equal(rows[0]._parentcustomerid_value, account);
    dwa.startBatch();
    dwa.deleteRecord({ collection: "contacts", key: contact });
    dwa.deleteRecord({ collection: "accounts", key: account });
    await dwa.executeBatch();
    assert.equal((await contactsWithTag(tag)).length, 0);
    assert.equal((await accountsWithTag(tag)).length, 0);
  });
});

describe("$batch on the wire", () => {
  it("frames the response as clients parse it and echoes Content-IDs", async () => {
    const tag = uniqueTag("wire");
    const r = await sendBatch([
      { changeset: [
        { method: "POST", url: "/api/data/v9.2/contacts", body: { lastname: `${tag}-c` }, id: "1" },
        { method: "POST", url: `${server.apiRoot}accounts`, body: { name: `${tag}-a`, "primarycontactid@odata.bind": "$1" }, id: "2" },
        { method: "PUT", url: "$2/numberofemployees", body: { value: 12 }, id: "3" },
      ] },
      { method: "GET", url: `accounts?$select=name,numberofemployees&$filter=${q(`startswith(name,'${tag}')`)}` },
    ]);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.parts.length, 4);
    assert.deepEqual(r.parts.map((p) => p.contentId), ["1", "2", "3", undefined]);
    assert.deepEqual(r.parts.map((p) => p.status), [204, 204, 204, 200]);
    assert.match(r.parts[0].headers["odata-entityid"], /contacts\([0-9a-f-]{36}\)$/);
    assert.equal(r.parts[0].headers["location"], r.parts[0].headers["odata-entityid"]);
    assert.equal(r.parts[3].json.value[0].numberofemployees, 12);
    assert.match(r.parts[3].headers["content-type"], /^application\/json; odata.metadata=minimal; odata.streaming=true/);
  });

  it("answers return=representation parts with the record after the commit", async () => {
    const tag = uniqueTag("rep");
    const r = await sendBatch([{ changeset: [
      { method: "POST", url: "accounts?$select=name", body: { name: `${tag}-a` }, id: "a", headers: { Prefer: "return=representation" } },
    ] }]);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.parts[0].status, 201);
    assert.equal(r.parts[0].json.name, `${tag}-a`);
    assert.match(r.parts[0].json.accountid, GUID_RE);
  });

  it("accepts LF-only line ends", async () => {
    const tag = uniqueTag("lf");
    const r = await sendBatch([{ changeset: [{ method: "POST", url: "accounts", body: { name: `${tag}-a` }, id: "1" }] }], { eol: "\n" });
    assert.equal(r.status, 200, r.text);
    assert.equal((await accountsWithTag(tag)).length, 1);
  });

  it("stops at the first failure without continue-on-error and answers 400", async () => {
    const tag = uniqueTag("stop");
    const r = await sendBatch([
      { method: "POST", url: "accounts", body: { name: `${tag}-1` } },
      { method: "GET", url: "nosuchset" },
      { method: "POST", url: "accounts", body: { name: `${tag}-3` } },
    ]);
    assert.equal(r.status, 400);
    assert.equal(r.parts.length, 2, "the part after the failure did not run");
    assert.equal(r.parts[1].status, 404);
    assert.match(r.parts[1].json.error.code, /^0x[0-9a-f]{8}$/i);
    assert.equal((await accountsWithTag(tag)).length, 1);
  });

  it("keeps earlier change sets when a later one fails", async () => {
    const tag = uniqueTag("sets");
    const r = await sendBatch([
      { changeset: [{ method: "POST", url: "accounts", body: { name: `${tag}-ok` }, id: "1" }] },
      { changeset: [
        { method: "POST", url: "accounts", body: { name: `${tag}-rolled-back` }, id: "1" },
        { method: "PATCH", url: `accounts(${randomUUID()})`, body: { name: "nobody" }, id: "2", headers: { "If-Match": "*" } },
      ] },
    ], { headers: { Prefer: "odata.continue-on-error" } });
    assert.equal(r.status, 200);
    assert.deepEqual(r.parts.map((p) => p.status), [204, 404]);
    assert.equal(r.parts[1].contentId, "2", "the failing request of the set is named");
    const rows = await accountsWithTag(tag);
    assert.deepEqual(rows.map((x) => x.name), [`${tag}-ok`]);
  });

  it("rejects references to unknown Content-IDs and $n outside change sets", async () => {
    let r = await sendBatch([{ changeset: [{ method: "PATCH", url: "$9", body: { name: "x" }, id: "1" }] }]);
    assert.equal(r.status, 400);
    assert.match(r.parts[0].json.error.message, /Content-ID Reference: '\$9' does not exist/);
    r = await sendBatch([{ changeset: [{ method: "POST", url: "accounts", body: { name: "x", "primarycontactid@odata.bind": "$4" }, id: "1" }] }]);
    assert.equal(r.status, 400);
    assert.match(r.parts[0].json.error.message, /'\$4' does not exist/);
    r = await sendBatch([{ method: "PATCH", url: "$1", body: { name: "x" } }]);
    assert.equal(r.status, 400);
    assert.match(r.parts[0].json.error.message, /does not exist in the batch context/);
  });

  it("refuses reads and non-entity-set requests inside a change set", async () => {
    const r = await sendBatch([{ changeset: [{ method: "POST", url: "EntityDefinitions", body: { SchemaName: "x" }, id: "1" }] }]);
    assert.equal(r.status, 400);
    assert.equal(r.parts[0].status, 400);
    assert.match(r.parts[0].json.error.message, /change set/);
  });

  it("answers malformed multipart with 400 and commits nothing", async () => {
    const tag = uniqueTag("bad");
    const good = buildBatch([{ changeset: [{ method: "POST", url: "accounts", body: { name: `${tag}-x` }, id: "1" }] }]);
    const cases = [
      { body: good.body, ct: "application/json" },
      { body: good.body, ct: "multipart/mixed" },
      { body: good.body.replace(/--batch_[0-9a-f-]+--\r\n$/, ""), ct: good.contentType },
      { body: good.body.replace("POST accounts HTTP/1.1", "FROB accounts HTTP/1.1"), ct: good.contentType },
      { body: "--nope\r\n\r\n", ct: good.contentType },
    ];
    for (const c of cases) {
      const r = await server.http("POST", "$batch", { body: c.body, headers: { "Content-Type": c.ct } });
      assert.equal(r.status, 400, `${c.ct}: ${r.text}`);
      const json = JSON.parse(r.text);
      assert.match(json.error.code, /^0x[0-9a-f]{8}$/i);
    }
    assert.equal((await accountsWithTag(tag)).length, 0);
  });

  it("refuses more than 1,000 requests", async () => {
    const ops = Array.from({ length: 1001 }, (_, i) => ({ method: "POST", url: "accounts", body: { name: `n${i}` }, id: String(i + 1) }));
    const { body, contentType } = buildBatch([{ changeset: ops }]);
    const r = await server.http("POST", "$batch", { body, headers: { "Content-Type": contentType } });
    assert.equal(r.status, 400);
  });

  it("commits a 1,000-request change set atomically", async () => {
    const tag = uniqueTag("k");
    const ops = Array.from({ length: 1000 }, (_, i) => ({ method: "POST", url: "accounts", body: { name: `${tag}-${String(i).padStart(4, "0")}` }, id: String(i + 1) }));
    const r = await sendBatch([{ changeset: ops }]);
    assert.equal(r.status, 200);
    assert.equal(r.parts.length, 1000);
    assert.ok(r.parts.every((p) => p.status === 204));
    const count = await server.api("GET", `accounts/$count?$filter=${q(`startswith(name,'${tag}')`)}`);
    assert.equal(count.text, "1000");
  });

  it("survives a restart: a committed change set is durable", async () => {
    const tag = uniqueTag("dur");
    const r = await sendBatch([{ changeset: [
      { method: "POST", url: "accounts", body: { name: `${tag}-1` }, id: "1" },
      { method: "POST", url: "accounts", body: { name: `${tag}-2` }, id: "2" },
    ] }]);
    assert.equal(r.status, 200);
    await server.restart({ hard: true });
    dwa = await server.dwa();
    assert.equal((await accountsWithTag(tag)).length, 2);
  });
});
