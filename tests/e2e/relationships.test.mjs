// Associate / disassociate through $ref (1:N and N:N) and cascade behaviours on delete, through
// dynamics-web-api and raw HTTP. Wire facts: shared/reference/dataverse-webapi.md §5.7,
// shared/reference/platform.md §3.5.

import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer, SCHEMA_FIXTURE, uniqueTag, assertODataError } from "./helpers.mjs";

let server;
let dwa;

before(async () => {
  server = await startServer({ schema: SCHEMA_FIXTURE });
  dwa = await server.dwa();
});

after(async () => {
  await server?.cleanup();
});

async function related(path) {
  const r = await server.api("GET", path);
  assert.equal(r.status, 200, r.text);
  return r.json.value;
}

describe("1:N through $ref", () => {
  it("associate, read the refs, disassociate (key form and $id form)", async () => {
    const account = await dwa.create({ collection: "accounts", data: { name: uniqueTag("parent") } });
    const c1 = await dwa.create({ collection: "contacts", data: { lastname: "One" } });
    const c2 = await dwa.create({ collection: "contacts", data: { lastname: "Two" } });
    for (const c of [c1, c2])
      await dwa.associate({ collection: "accounts", primaryKey: account, relationshipName: "contact_customer_accounts", relatedCollection: "contacts", relatedKey: c });
    const refs = await related(`accounts(${account})/contact_customer_accounts/$ref`);
    assert.equal(refs.length, 2);
    for (const r of refs) assert.match(r["@odata.id"], /\/contacts\([0-9a-f-]{36}\)$/);
    const child = await dwa.retrieve({ collection: "contacts", key: c1, select: ["_parentcustomerid_value"] });
    assert.equal(child._parentcustomerid_value, account);

    await dwa.disassociate({ collection: "accounts", primaryKey: account, relationshipName: "contact_customer_accounts", relatedKey: c1 });
    const del = await server.api("DELETE", `accounts(${account})/contact_customer_accounts/$ref?$id=${server.base}/api/data/v9.2/contacts(${c2})`);
    assert.equal(del.status, 204, del.text);
    assert.equal((await related(`accounts(${account})/contact_customer_accounts`)).length, 0);
    const after = await dwa.retrieve({ collection: "contacts", key: c1, select: ["_parentcustomerid_value"] });
    assert.equal(after._parentcustomerid_value, null);
  });

  it("single-valued $ref: PUT sets, GET reads, DELETE clears", async () => {
    const account = await dwa.create({ collection: "accounts", data: { name: uniqueTag("sv") } });
    const contact = await dwa.create({ collection: "contacts", data: { lastname: "Primary" } });
    await dwa.associateSingleValued({ collection: "accounts", primaryKey: account, navigationProperty: "primarycontactid", relatedCollection: "contacts", relatedKey: contact });
    const ref = await server.api("GET", `accounts(${account})/primarycontactid/$ref`);
    assert.equal(ref.status, 200);
    assert.ok(ref.json["@odata.id"].endsWith(`/contacts(${contact})`));
    const nav = await server.api("GET", `accounts(${account})/primarycontactid?$select=lastname`);
    assert.equal(nav.json.lastname, "Primary");
    await dwa.disassociateSingleValued({ collection: "accounts", primaryKey: account, navigationProperty: "primarycontactid" });
    const cleared = await dwa.retrieve({ collection: "accounts", key: account, select: ["_primarycontactid_value"] });
    assert.equal(cleared._primarycontactid_value, null);
  });

  it("refuses references to a missing record or another table", async () => {
    const account = await dwa.create({ collection: "accounts", data: { name: uniqueTag("bad") } });
    const missing = await server.api("POST", `accounts(${account})/contact_customer_accounts/$ref`, {
      body: { "@odata.id": `${server.base}/api/data/v9.2/contacts(00000000-0000-0000-0000-000000000001)` },
    });
    assertODataError(missing, { status: 404, code: "0x80040217" });
    const wrong = await server.api("POST", `accounts(${account})/contact_customer_accounts/$ref`, {
      body: { "@odata.id": `accounts(${account})` },
    });
    assertODataError(wrong, { status: 400 });
    const noBody = await server.api("POST", `accounts(${account})/contact_customer_accounts/$ref`, { body: {} });
    assertODataError(noBody, { status: 400 });
  });
});

describe("N:N through $ref", () => {
  it("associates users with a team both ways and disassociates", async () => {
    const team = await dwa.create({ collection: "teams", data: { name: uniqueTag("team") } });
    const u1 = await dwa.create({ collection: "systemusers", data: { firstname: "Ann", lastname: "Lee" } });
    const u2 = await dwa.create({ collection: "systemusers", data: { firstname: "Bo", lastname: "Ng" } });
    await dwa.associate({ collection: "teams", primaryKey: team, relationshipName: "teammembership_association", relatedCollection: "systemusers", relatedKey: u1 });
    await dwa.associate({ collection: "systemusers", primaryKey: u2, relationshipName: "teammembership_association", relatedCollection: "teams", relatedKey: team });
    const members = await related(`teams(${team})/teammembership_association?$select=fullname&$orderby=fullname`);
    assert.deepEqual(members.map((m) => m.fullname), ["Ann Lee", "Bo Ng"]);
    const count = await server.api("GET", `teams(${team})/teammembership_association/$count`);
    assert.equal(count.text.trim(), "2");
    const expanded = await dwa.retrieve({ collection: "systemusers", key: u1, select: ["fullname"], expand: [{ property: "teammembership_association", select: ["name"] }] });
    assert.equal(expanded.teammembership_association.length, 1);
    const filtered = await server.api("GET", `teams?$select=name&$filter=teammembership_association/any(u:u/systemuserid eq ${u2})`);
    assert.equal(filtered.json.value.length, 1);

    const again = await server.api("POST", `teams(${team})/teammembership_association/$ref`, { body: { "@odata.id": `systemusers(${u1})` } });
    assertODataError(again, { status: 412 });

    await dwa.disassociate({ collection: "teams", primaryKey: team, relationshipName: "teammembership_association", relatedKey: u1 });
    assert.equal((await related(`teams(${team})/teammembership_association`)).length, 1);
    // Deleting a user removes its intersect rows.
    await dwa.deleteRecord({ collection: "systemusers", key: u2 });
    assert.equal((await related(`teams(${team})/teammembership_association`)).length, 0);
  });
});

describe("cascade on delete", () => {
  it("Cascade deletes children, RemoveLink clears lookups, Restrict refuses with 405", async () => {
    const account = await dwa.create({ collection: "accounts", data: { name: uniqueTag("casc") } });
    const child = await dwa.create({ collection: "contacts", data: { lastname: "Child", "parentcustomerid_account@odata.bind": `/accounts(${account})` } });
    const other = await dwa.create({ collection: "accounts", data: { name: uniqueTag("other"), "parentaccountid@odata.bind": `/accounts(${account})` } });
    const project = await dwa.create({ collection: "new_projects", data: { new_name: "p", "new_accountid@odata.bind": `/accounts(${account})` } });
    await dwa.deleteRecord({ collection: "accounts", key: account });
    const gone = await server.api("GET", `contacts(${child})`);
    assertODataError(gone, { status: 404 }); // contact_customer_accounts: Cascade (parental)
    const o = await dwa.retrieve({ collection: "accounts", key: other, select: ["_parentaccountid_value"] });
    assert.equal(o._parentaccountid_value, null); // account_parent_account: RemoveLink
    const p = await dwa.retrieve({ collection: "new_projects", key: project, select: ["_new_accountid_value"] });
    assert.equal(p._new_accountid_value, null); // fixture lookup: removelink

    const bu = await dwa.create({ collection: "businessunits", data: { name: uniqueTag("bu") } });
    const user = await dwa.create({ collection: "systemusers", data: { lastname: "InBu", "businessunitid@odata.bind": `/businessunits(${bu})` } });
    const refused = await server.api("DELETE", `businessunits(${bu})`);
    assertODataError(refused, { status: 405 }); // systemuser.businessunitid: Restrict
    assert.equal((await server.api("GET", `businessunits(${bu})?$select=name`)).status, 200);
    await dwa.deleteRecord({ collection: "systemusers", key: user });
    assert.equal((await server.api("DELETE", `businessunits(${bu})`)).status, 204);
  });
});
