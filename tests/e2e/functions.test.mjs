// Functions through dynamics-web-api's callFunction: RetrieveTotalRecordCount and InitializeFrom.
// Wire facts: shared/reference/dataverse-webapi.md §9.3–§9.4.

import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer, uniqueTag, assertODataError, q } from "./helpers.mjs";

let server;
let dwa;

before(async () => {
  server = await startServer();
  dwa = await server.dwa();
});

after(async () => {
  await server?.cleanup();
});

describe("RetrieveTotalRecordCount", () => {
  it("counts every row, beyond the 5,000 cap of $count", async () => {
    const Targets = Array.from({ length: 5100 }, (_, i) => ({ "@odata.type": "Microsoft.Dynamics.CRM.account", name: `c${i}` }));
    for (let i = 0; i < Targets.length; i += 1000)
      await dwa.callAction({ collection: "accounts", actionName: "Microsoft.Dynamics.CRM.CreateMultiple", action: { Targets: Targets.slice(i, i + 1000) } });
    await dwa.create({ collection: "contacts", data: { lastname: "Only" } });
    const r = await dwa.callFunction({ name: "RetrieveTotalRecordCount", parameters: { EntityNames: ["account", "contact"] } });
    const c = r.EntityRecordCountCollection;
    assert.equal(c.Count, 2);
    assert.deepEqual(c.Keys, ["account", "contact"]);
    assert.equal(c.Values[0], 5100);
    assert.equal(c.Values[1], 1);
    const capped = await server.api("GET", "accounts/$count");
    assert.equal(capped.text.trim(), "5000");
    // Single-quoted JSON as Microsoft's samples write it.
    const raw = await server.api("GET", `RetrieveTotalRecordCount(EntityNames=@p1)?@p1=${q("['contact']")}`);
    assert.equal(raw.status, 200, raw.text);
    assert.deepEqual(raw.json.EntityRecordCountCollection.Values, [1]);
  });

  it("answers bad parameters with 400", async () => {
    for (const path of ["RetrieveTotalRecordCount()", `RetrieveTotalRecordCount(EntityNames=@p1)?@p1=${q('["nosuchtable"]')}`,
                        `RetrieveTotalRecordCount(EntityNames=@p1)?@p1=${q("{not json")}`]) {
      const r = await server.api("GET", path);
      assertODataError(r, { status: 400, context: path });
    }
    assertODataError(await server.api("POST", "RetrieveTotalRecordCount(EntityNames=@p1)?@p1=[]", { body: {} }), { status: 405 });
  });
});

describe("InitializeFrom", () => {
  it("prefills a contact from an account, ready to create", async () => {
    const tag = uniqueTag("init");
    const account = await dwa.create({ collection: "accounts", data: { name: tag, telephone1: "555-0100", address1_city: "Lyon", emailaddress1: "a@b.c" } });
    const init = await dwa.callFunction({
      name: "InitializeFrom",
      parameters: {
        EntityMoniker: { "@odata.id": `accounts(${account})` },
        TargetEntityName: "contact",
        TargetFieldType: "Microsoft.Dynamics.CRM.TargetFieldType'ValidForCreate'",
      },
    });
    assert.equal(init["@odata.type"], "#Microsoft.Dynamics.CRM.contact");
    assert.equal(init.telephone1, "555-0100");
    assert.equal(init.address1_city, "Lyon");
    assert.equal(init["parentcustomerid_account@odata.bind"], `accounts(${account})`);
    assert.equal(init.name, undefined, "the source's primary name is not copied");
    delete init["@odata.context"];
    const contact = await dwa.create({ collection: "contacts", data: { ...init, lastname: "Initialized" } });
    const got = await dwa.retrieve({ collection: "contacts", key: contact, select: ["_parentcustomerid_value", "address1_city"] });
    assert.equal(got._parentcustomerid_value, account);
    assert.equal(got.address1_city, "Lyon");
  });

  it("answers a missing source with 404 and bad parameters with 400", async () => {
    const missing = await server.api("GET",
      `InitializeFrom(EntityMoniker=@p1,TargetEntityName=@p2)?@p1=${q("{'@odata.id':'accounts(00000000-0000-0000-0000-000000000001)'}")}&@p2='contact'`);
    assertODataError(missing, { status: 404, code: "0x80040217" });
    const noTarget = await server.api("GET", `InitializeFrom(EntityMoniker=@p1)?@p1=${q("{'@odata.id':'accounts(00000000-0000-0000-0000-000000000001)'}")}`);
    assertODataError(noTarget, { status: 400 });
    const badTable = await server.api("GET",
      `InitializeFrom(EntityMoniker=@p1,TargetEntityName=@p2)?@p1=${q("{'@odata.id':'accounts(00000000-0000-0000-0000-000000000001)'}")}&@p2='nosuch'`);
    assertODataError(badTable, { status: 400 });
  });
});
