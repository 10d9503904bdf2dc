// Functions and actions: bound, unbound and collection-bound operations, parameter binding and
// checks, entity parameters with @odata.type, the QualifyLead action, and custom APIs registered
// as customapi rows, through dynamics-web-api callFunction/callAction and raw HTTP.
// Wire facts: shared/reference/dataverse-webapi.md §9.3–9.4.

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

// customapi types: 0 Boolean, 1 DateTime, 2 Decimal, 3 Entity, 4 EntityCollection, 5 EntityReference,
// 6 Float, 7 Integer, 8 Money, 9 Picklist, 10 String, 11 StringArray, 12 Guid.
async function registerApi({ uniquename, isfunction = false, bindingtype = 0, bound = null, params = [], response = [] }) {
  const id = await dwa.create({
    collection: "customapis",
    data: {
      uniquename,
      name: uniquename,
      isfunction,
      bindingtype,
      boundentitylogicalname: bound,
      customapi_customapirequestparameter: params.map((p) => ({ uniquename: p.name, name: p.name, type: p.type, isoptional: !!p.optional, logicalentityname: p.entity ?? null })),
      customapi_customapiresponseproperty: response.map((p) => ({ uniquename: p.name, name: p.name, type: p.type })),
    },
  });
  assert.match(id, GUID_RE);
  return id;
}

describe("built-in operations", () => {
  it("lists functions and actions with their bindings in $metadata", async () => {
    const r = await server.api("GET", "$metadata");
    assert.equal(r.status, 200);
    assert.match(r.text, /<Function Name="WhoAmI" IsBound="false"><ReturnType Type="mscrm.WhoAmIResponse"/);
    assert.match(r.text, /<Action Name="CreateMultiple" IsBound="true"><Parameter Name="entityset" Type="Collection\(mscrm.crmbaseentity\)" Nullable="false"\/><Parameter Name="Targets"/);
    assert.match(r.text, /<Action Name="QualifyLead" IsBound="true"><Parameter Name="entity" Type="mscrm.lead"/);
    assert.match(r.text, /<FunctionImport Name="RetrieveTotalRecordCount" Function="Microsoft.Dynamics.CRM.RetrieveTotalRecordCount"\/>/);
    assert.match(r.text, /<ComplexType Name="CreateMultipleResponse"><Property Name="Ids" Type="Collection\(Edm.Guid\)"\/>/);
  });

  it("calls unbound functions with and without parentheses and namespace", async () => {
    for (const path of ["WhoAmI", "WhoAmI()", "Microsoft.Dynamics.CRM.WhoAmI()"]) {
      const r = await server.api("GET", path);
      assert.equal(r.status, 200, path);
      assert.match(r.json.UserId, GUID_RE);
    }
    const who = await dwa.callFunction({ functionName: "WhoAmI" });
    assert.match(who.UserId, GUID_RE);
  });

  it("uses the right HTTP method: functions GET, actions POST", async () => {
    assertODataError(await server.api("POST", "WhoAmI()"), { status: 405 });
    assertODataError(await server.api("GET", "accounts/Microsoft.Dynamics.CRM.CreateMultiple"), { status: 405 });
  });

  it("checks arguments: unknown, missing and wrongly typed parameters answer 400", async () => {
    let r = await server.api("GET", `RetrieveTotalRecordCount(EntityNames=@p1,Bogus=1)?@p1=${q('["account"]')}`);
    assertODataError(r, { status: 400 });
    assert.match(r.json.error.message, /no parameter named 'Bogus'/);
    r = await server.api("GET", "RetrieveTotalRecordCount()");
    assertODataError(r, { status: 400 });
    assert.match(r.json.error.message, /requires the parameter 'EntityNames'/);
    r = await server.api("GET", "RetrieveTotalRecordCount(EntityNames=@p1)?@p1=42");
    assertODataError(r, { status: 400 });
    assert.match(r.json.error.message, /must be an array of strings/);
    r = await server.api("POST", "accounts/Microsoft.Dynamics.CRM.CreateMultiple", { body: { Targets: "x" } });
    assertODataError(r, { status: 400 });
    r = await server.api("POST", "accounts/Microsoft.Dynamics.CRM.CreateMultiple(Targets=1)", { body: {} });
    assertODataError(r, { status: 400 });
  });

  it("answers unknown operations with 404", async () => {
    assertODataError(await server.api("GET", "NoSuchFunction()"), { status: 404 });
    const id = await server.createOne("accounts", { name: uniqueTag("op") });
    assertODataError(await server.api("POST", `accounts(${id})/Microsoft.Dynamics.CRM.NoSuchAction`, { body: {} }), { status: 404 });
    assertODataError(await server.api("POST", `accounts(${id})/Microsoft.Dynamics.CRM.QualifyLead`, { body: {} }), { status: 404 });
  });
});

describe("QualifyLead (an action bound to a record)", () => {
  async function newLead(tag) {
    return server.createOne("leads", { subject: `${tag} deal`, firstname: "Lee", lastname: `${tag}-lead`, companyname: `${tag} Ltd`, emailaddress1: "lee@example.com", estimatedvalue: 1200 });
  }

  it("creates the account, contact and opportunity, links them and closes the lead", async () => {
    const tag = uniqueTag("ql");
    const lead = await newLead(tag);
    const res = await dwa.callAction({ collection: "leads", key: lead, actionName: "Microsoft.Dynamics.CRM.QualifyLead", action: { CreateAccount: true, CreateContact: true, CreateOpportunity: true, Status: 3 } });
    const created = res.CreatedEntities;
    assert.deepEqual(created.map((e) => e["@odata.type"]), ["#Microsoft.Dynamics.CRM.account", "#Microsoft.Dynamics.CRM.contact", "#Microsoft.Dynamics.CRM.opportunity"]);
    const [acc, con, opp] = [created[0].accountid, created[1].contactid, created[2].opportunityid];
    const account = await server.api("GET", `accounts(${acc})?$select=name,emailaddress1`);
    assert.equal(account.json.name, `${tag} Ltd`);
    const contact = await server.api("GET", `contacts(${con})?$select=lastname,_parentcustomerid_value`);
    assert.equal(contact.json.lastname, `${tag}-lead`);
    assert.equal(contact.json._parentcustomerid_value, acc);
    const o = await server.api("GET", `opportunities(${opp})?$select=name,estimatedvalue,_customerid_value,_originatingleadid_value`);
    assert.equal(o.json.name, `${tag} deal`);
    assert.equal(o.json.estimatedvalue, 1200);
    assert.equal(o.json._customerid_value, acc);
    assert.equal(o.json._originatingleadid_value, lead);
    const l = await server.api("GET", `leads(${lead})?$select=statecode,statuscode,_parentaccountid_value`);
    assert.equal(l.json.statecode, 1);
    assert.equal(l.json.statuscode, 3);
    assert.equal(l.json._parentaccountid_value, acc);
  });

  it("refuses to qualify a closed lead, and a bad status leaves nothing behind", async () => {
    const tag = uniqueTag("ql2");
    const lead = await newLead(tag);
    await dwa.callAction({ collection: "leads", key: lead, actionName: "Microsoft.Dynamics.CRM.QualifyLead", action: { CreateAccount: false, CreateContact: false, CreateOpportunity: false, Status: 3 } });
    const again = await server.api("POST", `leads(${lead})/Microsoft.Dynamics.CRM.QualifyLead`, { body: { CreateAccount: true, CreateContact: false, CreateOpportunity: false, Status: 3 } });
    assertODataError(again, { status: 400 });
    const lead2 = await newLead(`${tag}b`);
    const bad = await server.api("POST", `leads(${lead2})/Microsoft.Dynamics.CRM.QualifyLead`, { body: { CreateAccount: true, CreateContact: true, CreateOpportunity: false, Status: 99 } });
    assertODataError(bad, { status: 400 });
    const accounts = await server.api("GET", `accounts?$filter=${q(`name eq '${tag}b Ltd'`)}`);
    assert.equal(accounts.json.value.length, 0, "the account created before the failing status update was rolled back");
    assertODataError(await server.api("POST", `leads(${randomUUID()})/Microsoft.Dynamics.CRM.QualifyLead`, { body: { CreateAccount: true, CreateContact: false, CreateOpportunity: false, Status: 3 } }), { status: 404 });
  });

  it("runs inside a $batch change set", async () => {
    const tag = uniqueTag("qlb");
    const lead = await newLead(tag);
    dwa.startBatch();
    dwa.callAction({ collection: "leads", key: lead, actionName: "Microsoft.Dynamics.CRM.QualifyLead", action: { CreateAccount: true, CreateContact: false, CreateOpportunity: false, Status: 3 } });
    dwa.create({ collection: "accounts", data: { name: `${tag}-other` } });
    const [res, other] = await dwa.executeBatch();
    assert.equal(res.CreatedEntities.length, 1);
    assert.match(other, GUID_RE);
  });
});

describe("custom APIs", () => {
  it("registers an unbound action with typed parameters and response properties", async () => {
    await registerApi({
      uniquename: "new_Ping",
      params: [{ name: "Message", type: 10 }, { name: "Count", type: 7, optional: true }, { name: "Target", type: 3, entity: "account", optional: true }],
      response: [{ name: "Echo", type: 10 }],
    });
    const res = await dwa.callAction({ actionName: "new_Ping", action: { Message: "hi", Count: 2, Target: { "@odata.type": "Microsoft.Dynamics.CRM.account", name: "x" } } });
    assert.ok("Echo" in res, "the response complex type has its properties (unset without an implementation)");
    assert.equal(res.Echo, null);
    const meta = await server.api("GET", "$metadata");
    assert.match(meta.text, /<Action Name="new_Ping" IsBound="false"><Parameter Name="Count" Type="Edm.Int32" Nullable="true"\/><Parameter Name="Message" Type="Edm.String" Nullable="false"\/><Parameter Name="Target" Type="mscrm.account" Nullable="true"\/><ReturnType Type="mscrm.new_PingResponse"/);
    assert.match(meta.text, /<ActionImport Name="new_Ping" Action="Microsoft.Dynamics.CRM.new_Ping"\/>/);
    let r = await server.api("POST", "new_Ping", { body: { Count: 1 } });
    assertODataError(r, { status: 400 });
    assert.match(r.json.error.message, /requires the parameter 'Message'/);
    r = await server.api("POST", "new_Ping", { body: { Message: 5 } });
    assertODataError(r, { status: 400 });
    r = await server.api("POST", "new_Ping", { body: { Message: "x", Target: { "@odata.type": "Microsoft.Dynamics.CRM.contact", lastname: "y" } } });
    assertODataError(r, { status: 400 });
    assert.match(r.json.error.message, /must be a 'account' record/);
    r = await server.api("POST", "new_Ping", { body: { Message: "x", Target: { name: "no type" } } });
    assertODataError(r, { status: 400 });
    assert.match(r.json.error.message, /@odata.type/);
  });

  it("registers functions called with parameter aliases", async () => {
    await registerApi({ uniquename: "new_Lookup", isfunction: true, params: [{ name: "Code", type: 10 }, { name: "Limit", type: 7 }], response: [{ name: "Found", type: 0 }] });
    const res = await dwa.callFunction({ functionName: "new_Lookup", parameters: { Code: "A1", Limit: 3 } });
    assert.ok("Found" in res);
    assertODataError(await server.api("GET", "new_Lookup(Code='A1')"), { status: 400 });
    assertODataError(await server.api("POST", "new_Lookup(Code='A1',Limit=1)", { body: {} }), { status: 405 });
  });

  it("binds custom APIs to a record and to a collection", async () => {
    await registerApi({ uniquename: "new_Touch", bindingtype: 1, bound: "account" });
    await registerApi({ uniquename: "new_Summarize", isfunction: true, bindingtype: 2, bound: "account", response: [{ name: "Total", type: 7 }] });
    const id = await server.createOne("accounts", { name: uniqueTag("bound") });
    const r = await server.api("POST", `accounts(${id})/Microsoft.Dynamics.CRM.new_Touch`, { body: {} });
    assert.equal(r.status, 204, r.text);
    assertODataError(await server.api("POST", `accounts(${randomUUID()})/Microsoft.Dynamics.CRM.new_Touch`, { body: {} }), { status: 404 });
    const contact = await server.createOne("contacts", { lastname: uniqueTag("c") });
    assertODataError(await server.api("POST", `contacts(${contact})/Microsoft.Dynamics.CRM.new_Touch`, { body: {} }), { status: 404 });
    const s = await dwa.callFunction({ collection: "accounts", functionName: "Microsoft.Dynamics.CRM.new_Summarize" });
    assert.ok("Total" in s);
    const meta = await server.api("GET", "$metadata");
    assert.match(meta.text, /<Action Name="new_Touch" IsBound="true"><Parameter Name="entity" Type="mscrm.account" Nullable="false"\/><\/Action>/);
    assert.match(meta.text, /<Function Name="new_Summarize" IsBound="true"><Parameter Name="entityset" Type="Collection\(mscrm.account\)"/);
  });

  it("stops answering when the custom API is deactivated or deleted", async () => {
    const id = await registerApi({ uniquename: "new_Temp" });
    assert.equal((await server.api("POST", "new_Temp", { body: {} })).status, 204);
    await dwa.deleteRecord({ collection: "customapis", key: id });
    assertODataError(await server.api("POST", "new_Temp", { body: {} }), { status: 404 });
  });
});
