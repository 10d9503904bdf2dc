// Bulk messages (CreateMultiple, UpdateMultiple, UpsertMultiple, DeleteMultiple) through
// dynamics-web-api's callAction and raw HTTP. Wire facts: shared/reference/dataverse-webapi.md §7.

import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { startServer, SCHEMA_FIXTURE, GUID_RE, uniqueTag, assertODataError, q } from "./helpers.mjs";

const ACCOUNT = "Microsoft.Dynamics.CRM.account";
const PROJECT = "Microsoft.Dynamics.CRM.new_project";

let server;
let dwa;

before(async () => {
  server = await startServer({ schema: SCHEMA_FIXTURE });
  dwa = await server.dwa();
});

after(async () => {
  await server?.cleanup();
});

async function namesWithTag(tag) {
  const r = await server.api("GET", `accounts?$select=name,numberofemployees&$filter=${q(`startswith(name,'${tag}')`)}&$orderby=name`);
  assert.equal(r.status, 200);
  return r.json.value;
}

describe("CreateMultiple", () => {
  it("creates every target in one call and returns their ids in order", async () => {
    const tag = uniqueTag("cm");
    const chosen = randomUUID();
    const Targets = Array.from({ length: 250 }, (_, i) => ({
      "@odata.type": ACCOUNT,
      name: `${tag}-${String(i).padStart(3, "0")}`,
      numberofemployees: i,
    }));
    Targets[7].accountid = chosen;
    const res = await dwa.callAction({ collection: "accounts", actionName: "Microsoft.Dynamics.CRM.CreateMultiple", action: { Targets } });
    assert.equal(res.Ids.length, 250);
    for (const id of res.Ids) assert.match(id, GUID_RE);
    assert.equal(res.Ids[7], chosen, "a client-chosen primary key is kept");
    assert.equal(new Set(res.Ids).size, 250);
    const rows = await namesWithTag(tag);
    assert.equal(rows.length, 250);
    assert.equal(rows[42].numberofemployees, 42);
    const one = await server.api("GET", `accounts(${res.Ids[3]})?$select=name,statecode,_ownerid_value`);
    assert.equal(one.json.name, `${tag}-003`);
    assert.equal(one.json.statecode, 0, "bulk rows go through the same pipeline (system columns)");
    assert.match(one.json._ownerid_value, GUID_RE);
  });

  it("is all or nothing: one bad target leaves no row of the call behind", async () => {
    const tag = uniqueTag("cmbad");
    const Targets = Array.from({ length: 10 }, (_, i) => ({ "@odata.type": ACCOUNT, name: `${tag}-${i}` }));
    Targets[6].name = "x".repeat(161); // over the 160-character limit of account.name
    const r = await server.api("POST", "accounts/Microsoft.Dynamics.CRM.CreateMultiple", { body: { Targets } });
    assertODataError(r, { status: 400, code: "0x80044331" });
    assert.match(r.json.error.message, /Targets\[6\]/);
    assert.equal((await namesWithTag(tag)).length, 0);
  });

  it("rejects a duplicate id with 412 and nothing created", async () => {
    const tag = uniqueTag("cmdup");
    const id = randomUUID();
    const Targets = [
      { "@odata.type": ACCOUNT, accountid: id, name: `${tag}-a` },
      { "@odata.type": ACCOUNT, accountid: id, name: `${tag}-b` },
    ];
    const r = await server.api("POST", "accounts/Microsoft.Dynamics.CRM.CreateMultiple", { body: { Targets } });
    assertODataError(r, { status: 412, code: "0x80040237" });
    assert.equal((await namesWithTag(tag)).length, 0);
  });

  it("answers malformed bodies with 400 in the Dataverse shape", async () => {
    const cases = [
      {},
      { Targets: "nope" },
      { Targets: [{ name: "no type" }] },
      { Targets: [{ "@odata.type": "Microsoft.Dynamics.CRM.contact", lastname: "wrong table" }] },
      { Targets: [{ "@odata.type": ACCOUNT, nosuchcolumn: 1 }] },
      { Targets: [42] },
    ];
    for (const body of cases) {
      const r = await server.api("POST", "accounts/Microsoft.Dynamics.CRM.CreateMultiple", { body });
      assertODataError(r, { status: 400, context: JSON.stringify(body) });
    }
    const get = await server.api("GET", "accounts/Microsoft.Dynamics.CRM.CreateMultiple");
    assertODataError(get, { status: 405 });
  });
});

describe("UpdateMultiple, UpsertMultiple, DeleteMultiple", () => {
  it("UpdateMultiple changes every target; a missing one fails the whole call with 404", async () => {
    const tag = uniqueTag("um");
    const created = await dwa.callAction({
      collection: "accounts",
      actionName: "Microsoft.Dynamics.CRM.CreateMultiple",
      action: { Targets: [0, 1, 2].map((i) => ({ "@odata.type": ACCOUNT, name: `${tag}-${i}` })) },
    });
    await dwa.callAction({
      collection: "accounts",
      actionName: "Microsoft.Dynamics.CRM.UpdateMultiple",
      action: { Targets: created.Ids.map((id, i) => ({ "@odata.type": ACCOUNT, accountid: id, numberofemployees: 100 + i })) },
    });
    const rows = await namesWithTag(tag);
    assert.deepEqual(rows.map((r) => r.numberofemployees), [100, 101, 102]);

    const bad = await server.api("POST", "accounts/Microsoft.Dynamics.CRM.UpdateMultiple", {
      body: {
        Targets: [
          { "@odata.type": ACCOUNT, accountid: created.Ids[0], numberofemployees: 999 },
          { "@odata.type": ACCOUNT, accountid: randomUUID(), numberofemployees: 999 },
        ],
      },
    });
    assertODataError(bad, { status: 404, code: "0x80040217" });
    assert.equal((await namesWithTag(tag))[0].numberofemployees, 100, "the first update was rolled back");

    const noKey = await server.api("POST", "accounts/Microsoft.Dynamics.CRM.UpdateMultiple", {
      body: { Targets: [{ "@odata.type": ACCOUNT, numberofemployees: 1 }] },
    });
    assertODataError(noKey, { status: 400 });
  });

  it("UpsertMultiple creates and updates by alternate key (@odata.id) and by id", async () => {
    const code = uniqueTag("UP");
    const existing = await server.createOne("new_projects", { new_name: "before", new_code: `${code}-1` });
    const res = await server.api("POST", "new_projects/Microsoft.Dynamics.CRM.UpsertMultiple", {
      body: {
        Targets: [
          { "@odata.type": PROJECT, "@odata.id": `new_projects(new_code='${code}-1')`, new_name: "after" },
          { "@odata.type": PROJECT, "@odata.id": `new_projects(new_code='${code}-2')`, new_name: "new by key" },
          { "@odata.type": PROJECT, new_projectid: randomUUID(), new_code: `${code}-3`, new_name: "new by id" },
        ],
      },
    });
    assert.equal(res.status, 204, res.text);
    const got = await server.api("GET", `new_projects(${existing})?$select=new_name`);
    assert.equal(got.json.new_name, "after");
    const byKey = await server.api("GET", `new_projects(new_code='${code}-2')?$select=new_name,new_code`);
    assert.equal(byKey.status, 200);
    assert.equal(byKey.json.new_name, "new by key");
    assert.equal(byKey.json.new_code, `${code}-2`, "the key value from @odata.id is stored on create");
    const byId = await server.api("GET", `new_projects(new_code='${code}-3')?$select=new_name`);
    assert.equal(byId.json.new_name, "new by id");
  });

  it("DeleteMultiple deletes every target (standard tables too), all or nothing", async () => {
    const tag = uniqueTag("dm");
    const created = await dwa.callAction({
      collection: "accounts",
      actionName: "Microsoft.Dynamics.CRM.CreateMultiple",
      action: { Targets: [0, 1, 2, 3].map((i) => ({ "@odata.type": ACCOUNT, name: `${tag}-${i}` })) },
    });
    const bad = await server.api("POST", "accounts/Microsoft.Dynamics.CRM.DeleteMultiple", {
      body: { Targets: [{ "@odata.type": ACCOUNT, accountid: created.Ids[0] }, { "@odata.type": ACCOUNT, accountid: randomUUID() }] },
    });
    assertODataError(bad, { status: 404 });
    assert.equal((await namesWithTag(tag)).length, 4);
    const ok = await server.api("POST", "accounts/Microsoft.Dynamics.CRM.DeleteMultiple", {
      body: { Targets: created.Ids.slice(0, 3).map((id) => ({ "@odata.type": ACCOUNT, accountid: id })) },
    });
    assert.equal(ok.status, 204, ok.text);
    const left = await namesWithTag(tag);
    assert.deepEqual(left.map((r) => r.name), [`${tag}-3`]);
  });
});
