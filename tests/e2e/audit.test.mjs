// Auditing (platform.md §3.10): organization, table and column switches, audit rows written in the
// transaction of each change (create, update, delete, role assignment), read as the `audits` entity
// set and through RetrieveRecordChangeHistory, with dynamics-web-api.

import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer, SCHEMA_FIXTURE, GUID_RE, uniqueTag, assertODataError, idFromEntityUrl, q } from "./helpers.mjs";

let server;
let dwa;
let who;

const ANNOTATIONS = { Prefer: 'odata.include-annotations="*"' };

before(async () => {
  server = await startServer({ schema: SCHEMA_FIXTURE });
  dwa = await server.dwa();
  who = await dwa.callFunction({ name: "WhoAmI" });
});

after(async () => {
  await server?.cleanup();
});

async function setAuditing(on) {
  await dwa.update({ collection: "organizations", key: who.OrganizationId, data: { isauditenabled: on } });
}

// The audit rows of one record, oldest first.
async function auditsOf(id) {
  const r = await dwa.retrieveMultiple({
    collection: "audits",
    filter: `_objectid_value eq ${id}`,
    orderBy: ["versionnumber asc"],
  });
  return r.value;
}

async function history(set, id) {
  return dwa.callFunction({ name: "RetrieveRecordChangeHistory", parameters: { Target: { "@odata.id": `${set}(${id})` } } });
}

describe("audit settings", () => {
  it("shows IsAuditEnabled on tables and columns", async () => {
    const account = await server.api("GET", "EntityDefinitions(LogicalName='account')?$select=LogicalName,IsAuditEnabled");
    assert.equal(account.status, 200);
    assert.deepEqual(account.json.IsAuditEnabled, {
      Value: true,
      CanBeChanged: true,
      ManagedPropertyLogicalName: "canmodifyauditsettings",
    });
    const project = await server.api("GET", "EntityDefinitions(LogicalName='new_project')?$select=IsAuditEnabled");
    assert.equal(project.json.IsAuditEnabled.Value, false, "custom tables are not audited unless asked");
    const name = await server.api("GET", "EntityDefinitions(LogicalName='account')/Attributes(LogicalName='name')");
    assert.equal(name.json.IsAuditEnabled.Value, true);
    const modified = await server.api("GET", "EntityDefinitions(LogicalName='account')/Attributes(LogicalName='modifiedon')");
    assert.equal(modified.json.IsAuditEnabled.Value, false, "columns the platform maintains are not audited");
    assert.equal(modified.json.IsAuditEnabled.CanBeChanged, false);
    const audits = await server.api("GET", "EntityDefinitions(LogicalName='audit')?$select=EntitySetName,ObjectTypeCode,OwnershipType");
    assert.equal(audits.json.EntitySetName, "audits");
    assert.equal(audits.json.ObjectTypeCode, 4567);
    assert.equal(audits.json.OwnershipType, "None");
  });

  it("describes RetrieveRecordChangeHistory and its types in $metadata", async () => {
    const r = await server.api("GET", "$metadata");
    assert.match(r.text, /<Function Name="RetrieveRecordChangeHistory" IsBound="false"><Parameter Name="Target" Type="mscrm.crmbaseentity"/);
    assert.match(r.text, /<ComplexType Name="AttributeAuditDetail" BaseType="mscrm.AuditDetail">/);
    assert.match(r.text, /<ComplexType Name="RetrieveRecordChangeHistoryResponse"><Property Name="AuditDetailCollection" Type="mscrm.AuditDetailCollection"\/>/);
  });
});

describe("auditing", () => {
  it("writes nothing while the organization does not audit", async () => {
    await setAuditing(false);
    const id = await dwa.create({ collection: "accounts", data: { name: uniqueTag("quiet") } });
    assert.equal((await auditsOf(id)).length, 0);
  });

  it("records create, update and delete, read as audits and through RetrieveRecordChangeHistory", async () => {
    await setAuditing(true);
    const tag = uniqueTag("aud");
    const id = await dwa.create({ collection: "accounts", data: { name: tag, telephone1: "555-0100", numberofemployees: 10 } });
    await dwa.update({ collection: "accounts", key: id, data: { name: `${tag}-2`, telephone1: "555-0100" } });
    await dwa.update({ collection: "accounts", key: id, data: { name: `${tag}-2` } }); // no change: no audit row
    await dwa.deleteRecord({ collection: "accounts", key: id });

    const rows = await auditsOf(id);
    assert.deepEqual(rows.map((r) => r.action), [1, 2, 3]);
    assert.deepEqual(rows.map((r) => r.operation), [1, 2, 3]);
    for (const r of rows) {
      assert.equal(r._objectid_value, id);
      assert.equal(r.objecttypecode, "account");
      assert.equal(r._userid_value, who.UserId);
      assert.match(r.auditid, GUID_RE);
      assert.match(r.transactionid, GUID_RE);
    }
    assert.equal(rows[1].attributemask, "name", "only the column whose value changed");
    const change = JSON.parse(rows[1].changedata);
    assert.deepEqual(change, { v: 1, old: { name: tag }, new: { name: `${tag}-2` } });

    // The lookup's table is annotated like any polymorphic lookup.
    const raw = await server.api("GET", `audits?$filter=_objectid_value eq ${id}&$select=_objectid_value,action`, { headers: ANNOTATIONS });
    assert.equal(raw.status, 200);
    assert.equal(raw.json.value[0]["_objectid_value@Microsoft.Dynamics.CRM.lookuplogicalname"], "account");
    assert.equal(raw.json.value[0]["action@OData.Community.Display.V1.FormattedValue"] !== undefined, true);

    const h = await history("accounts", id);
    const c = h.AuditDetailCollection;
    assert.equal(c.TotalRecordCount, 3);
    assert.equal(c.MoreRecords, false);
    assert.equal(c.AuditDetails.length, 3);
    const [deleted, updated, created] = c.AuditDetails; // newest first
    for (const d of c.AuditDetails) {
      assert.equal(d["@odata.type"], "#Microsoft.Dynamics.CRM.AttributeAuditDetail");
      assert.equal(d.AuditRecord._objectid_value, id);
    }
    assert.equal(deleted.AuditRecord.action, 3);
    assert.equal(deleted.OldValue.name, `${tag}-2`);
    assert.equal(deleted.OldValue.numberofemployees, 10);
    assert.equal(updated.OldValue.name, tag);
    assert.equal(updated.NewValue.name, `${tag}-2`);
    assert.equal(updated.NewValue.telephone1, undefined);
    assert.equal(created.AuditRecord.action, 1);
    assert.equal(created.NewValue.name, tag);
    assert.equal(created.NewValue._ownerid_value, who.UserId);
    assert.equal(created.OldValue["@odata.type"], "#Microsoft.Dynamics.CRM.account");
  });

  it("pages RetrieveRecordChangeHistory with PagingInfo", async () => {
    await setAuditing(true);
    const id = await dwa.create({ collection: "accounts", data: { name: uniqueTag("page") } });
    for (let i = 1; i <= 3; i++) await dwa.update({ collection: "accounts", key: id, data: { numberofemployees: i } });
    const r = await dwa.callFunction({
      name: "RetrieveRecordChangeHistory",
      parameters: { Target: { "@odata.id": `accounts(${id})` }, PagingInfo: { Count: 2, PageNumber: 1, ReturnTotalRecordCount: true } },
    });
    assert.equal(r.AuditDetailCollection.AuditDetails.length, 2);
    assert.equal(r.AuditDetailCollection.TotalRecordCount, 4);
    assert.equal(r.AuditDetailCollection.MoreRecords, true);
    assert.equal(r.AuditDetailCollection.AuditDetails[0].NewValue.numberofemployees, 3);
  });

  it("records role assignments to a user as Assign/Remove Role To/From User", async () => {
    await setAuditing(true);
    const tag = uniqueTag("role");
    const role = await dwa.create({ collection: "roles", data: { name: tag, "businessunitid@odata.bind": `businessunits(${who.BusinessUnitId})` } });
    const user = await dwa.create({
      collection: "systemusers",
      data: { firstname: "Audit", lastname: tag, domainname: `${tag}@example.com`, "businessunitid@odata.bind": `businessunits(${who.BusinessUnitId})` },
    });
    await dwa.associate({ collection: "systemusers", primaryKey: user, relationshipName: "systemuserroles_association", relatedCollection: "roles", relatedKey: role });
    await dwa.disassociate({ collection: "systemusers", primaryKey: user, relationshipName: "systemuserroles_association", relatedKey: role });
    const rows = await auditsOf(user);
    assert.deepEqual(rows.map((r) => r.action), [1, 55, 56]);
    const h = (await history("systemusers", user)).AuditDetailCollection.AuditDetails;
    assert.equal(h[1]["@odata.type"], "#Microsoft.Dynamics.CRM.RelationshipAuditDetail");
    assert.equal(h[1].RelationshipName, "systemuserroles_association");
    assert.deepEqual(h[1].TargetRecords, [{ "@odata.type": "#Microsoft.Dynamics.CRM.role", roleid: role }]);
    assert.equal(h[1].AuditRecord.action, 55);
    assert.equal(h[0].AuditRecord.action, 56);
    // The role's own history names the user.
    const roleRows = await auditsOf(role);
    assert.deepEqual(roleRows.map((r) => r.action), [1, 55, 56]);
  });

  it("writes nothing for tables and columns that are not audited, and follows metadata changes", async () => {
    await setAuditing(true);
    const tag = uniqueTag("off");
    const project = await dwa.create({ collection: "new_projects", data: { new_name: tag } });
    assert.equal((await auditsOf(project)).length, 0, "new_project is not audited");

    const put = await server.api("PUT", "EntityDefinitions(LogicalName='new_project')", { body: { IsAuditEnabled: { Value: true, CanBeChanged: true } } });
    assert.equal(put.status, 204, put.text);
    const project2 = await dwa.create({ collection: "new_projects", data: { new_name: `${tag}-2` } });
    assert.equal((await auditsOf(project2)).length, 1, "audited once the table is");

    const fax = await server.api("PUT", "EntityDefinitions(LogicalName='account')/Attributes(LogicalName='fax')", {
      body: { "@odata.type": "Microsoft.Dynamics.CRM.StringAttributeMetadata", IsAuditEnabled: { Value: false } },
    });
    assert.equal(fax.status, 204, fax.text);
    const got = await server.api("GET", "EntityDefinitions(LogicalName='account')/Attributes(LogicalName='fax')");
    assert.equal(got.json.IsAuditEnabled.Value, false);
    const id = await dwa.create({ collection: "accounts", data: { name: tag, fax: "1" } });
    await dwa.update({ collection: "accounts", key: id, data: { fax: "2" } });
    let rows = await auditsOf(id);
    assert.equal(rows.length, 1, "changing only an unaudited column writes nothing");
    assert.equal(JSON.parse(rows[0].changedata).new.fax, undefined);
    await dwa.update({ collection: "accounts", key: id, data: { fax: "3", name: `${tag}-x` } });
    rows = await auditsOf(id);
    assert.equal(rows.length, 2);
    assert.equal(rows[1].attributemask, "name");
  });

  it("leaves no audit rows behind a failed change set in $batch", async () => {
    await setAuditing(true);
    const tag = uniqueTag("batch");
    dwa.startBatch();
    dwa.create({ collection: "accounts", data: { name: `${tag}-1` } });
    dwa.create({ collection: "accounts", data: { name: "x".repeat(161) } }); // over the 160-character limit
    await assert.rejects(dwa.executeBatch());
    const r = await server.api("GET", `audits?$filter=contains(changedata,'${tag}')&$count=true`);
    assert.equal(r.status, 200);
    assert.equal(r.json["@odata.count"], 0);
    // A change set that commits is audited, all rows in one transaction.
    dwa.startBatch();
    dwa.create({ collection: "accounts", data: { name: `${tag}-a` } });
    dwa.create({ collection: "accounts", data: { name: `${tag}-b` } });
    const [a, b] = await dwa.executeBatch();
    const [ra] = await auditsOf(a);
    const [rb] = await auditsOf(b);
    assert.equal(ra.transactionid, rb.transactionid);
  });

  it("records the impersonating caller in callinguserid", async () => {
    await setAuditing(true);
    const tag = uniqueTag("imp");
    const user = await dwa.create({
      collection: "systemusers",
      data: { firstname: "On", lastname: tag, domainname: `${tag}@example.com`, "businessunitid@odata.bind": `businessunits(${who.BusinessUnitId})` },
    });
    const admin = await dwa.retrieveMultiple({ collection: "roles", select: ["roleid"], filter: "name eq 'System Administrator'" });
    await dwa.associate({ collection: "systemusers", primaryKey: user, relationshipName: "systemuserroles_association", relatedCollection: "roles", relatedKey: admin.value[0].roleid });
    const r = await server.api("POST", "accounts", { body: { name: tag }, headers: { MSCRMCallerID: user } });
    assert.equal(r.status, 204, r.text);
    const id = idFromEntityUrl(r.headers.get("odata-entityid"));
    const [row] = await auditsOf(id);
    assert.equal(row._userid_value, user);
    assert.equal(row._callinguserid_value, who.UserId);
  });

  it("stops when the organization turns auditing off", async () => {
    await setAuditing(false);
    const id = await dwa.create({ collection: "accounts", data: { name: uniqueTag("off") } });
    await dwa.update({ collection: "accounts", key: id, data: { name: uniqueTag("off2") } });
    assert.equal((await auditsOf(id)).length, 0);
  });
});

describe("audit records are read-only", () => {
  it("refuses create, update and delete of audit rows", async () => {
    await setAuditing(true);
    const id = await dwa.create({ collection: "accounts", data: { name: uniqueTag("ro") } });
    const [row] = await auditsOf(id);
    assertODataError(await server.api("POST", "audits", { body: { attributemask: "x" } }), { status: 405, code: "0x80040800" });
    assertODataError(await server.api("PATCH", `audits(${row.auditid})`, { body: { attributemask: "x" } }), { status: 405, code: "0x80040800" });
    assertODataError(await server.api("DELETE", `audits(${row.auditid})`), { status: 405, code: "0x80040800" });
    assert.equal((await auditsOf(id)).length, 1);
    const one = await dwa.retrieve({ collection: "audits", key: row.auditid, select: ["attributemask"] });
    assert.equal(one.attributemask, row.attributemask);
  });

  it("answers bad RetrieveRecordChangeHistory targets with 400", async () => {
    for (const path of [
      "RetrieveRecordChangeHistory()",
      `RetrieveRecordChangeHistory(Target=@t)?@t=${q("{'@odata.id':'nosuchset(00000000-0000-0000-0000-000000000001)'}")}`,
      `RetrieveRecordChangeHistory(Target=@t)?@t=${q("'text'")}`,
    ]) {
      const r = await server.api("GET", path);
      assertODataError(r, { status: 400, context: path });
    }
  });
});
