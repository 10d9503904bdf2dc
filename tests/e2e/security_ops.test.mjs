// Security messages and column security through the Web API: role privileges
// (AddPrivilegesRole, ReplacePrivilegesRole, RemovePrivilegeRole, RetrieveRolePrivilegesRole,
// RetrieveUserPrivileges), sharing (GrantAccess, ModifyAccess, RevokeAccess, RetrievePrincipalAccess,
// RetrieveSharedPrincipalsAndAccess), team membership (AddMembersTeam, RemoveMembersTeam),
// assignment (PATCH ownerid), and field security profiles on a secured column. Users are acted
// as through impersonation (MSCRMCallerID, sent by dynamics-web-api's `impersonate`).
// Model: shared/reference/platform.md §2.

import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer, GUID_RE, uniqueTag, assertODataError, q } from "./helpers.mjs";

let server;
let dwa; // the bootstrap admin (System Administrator)
let rootBu;
const privilegeIds = new Map();

async function privilegeId(name) {
  if (!privilegeIds.has(name)) {
    const r = await dwa.retrieveMultiple({ collection: "privileges", select: ["privilegeid", "name"], filter: `name eq '${name}'` });
    assert.equal(r.value.length, 1, `privilege ${name}`);
    privilegeIds.set(name, r.value[0].privilegeid);
  }
  return privilegeIds.get(name);
}

async function createBu(name, parent = rootBu) {
  return dwa.create({ collection: "businessunits", data: { name, "parentbusinessunitid@odata.bind": `/businessunits(${parent})` } });
}

async function createUser(name, bu = rootBu) {
  return dwa.create({ collection: "systemusers", data: { firstname: "T", lastname: name, "businessunitid@odata.bind": `/businessunits(${bu})` } });
}

// A role with the given privileges ({name: depth}), assigned to `users`.
async function createRole(privs, users = []) {
  const role = await dwa.create({ collection: "roles", data: { name: uniqueTag("role"), "businessunitid@odata.bind": `/businessunits(${rootBu})` } });
  const list = [];
  for (const [name, depth] of Object.entries(privs)) list.push({ PrivilegeId: await privilegeId(name), Depth: depth, BusinessUnitId: rootBu });
  await dwa.callAction({ actionName: "Microsoft.Dynamics.CRM.AddPrivilegesRole", collection: "roles", key: role, action: { Privileges: list } });
  for (const u of users) await dwa.associate({ collection: "systemusers", primaryKey: u, relationshipName: "systemuserroles_association", relatedCollection: "roles", relatedKey: role });
  return role;
}

function as(user) {
  return { headers: { MSCRMCallerID: user } };
}

before(async () => {
  server = await startServer();
  dwa = await server.dwa();
  const who = await dwa.callFunction({ functionName: "WhoAmI" });
  rootBu = who.BusinessUnitId;
});

after(async () => {
  await server?.cleanup();
});

describe("role privileges", () => {
  it("creates one privilege per verb for every table", async () => {
    const r = await server.api("GET", `privileges?$filter=${q("endswith(name,'Account')")}&$select=name,accessright`);
    assert.equal(r.status, 200);
    const names = r.json.value.map((p) => p.name).sort();
    assert.deepEqual(names, ["prvAppendAccount", "prvAppendToAccount", "prvAssignAccount", "prvCreateAccount", "prvDeleteAccount", "prvReadAccount", "prvShareAccount", "prvWriteAccount"]);
    const read = r.json.value.find((p) => p.name === "prvReadAccount");
    assert.equal(read.accessright, 1);
  });

  it("adds, keeps the deeper depth, replaces, lists and removes a role's privileges", async () => {
    const role = await createRole({ prvReadAccount: "Basic", prvWriteAccount: 2 });
    let r = await server.api("GET", `roles(${role})/Microsoft.Dynamics.CRM.RetrieveRolePrivilegesRole()`);
    assert.equal(r.status, 200, r.text);
    const byName = Object.fromEntries(r.json.RolePrivileges.map((p) => [p.PrivilegeName, p.Depth]));
    assert.deepEqual(byName, { prvReadAccount: "Basic", prvWriteAccount: "Deep" });
    assert.match(r.json.RolePrivileges[0].PrivilegeId, GUID_RE);

    // AddPrivilegesRole keeps the deeper depth.
    await dwa.callAction({ actionName: "Microsoft.Dynamics.CRM.AddPrivilegesRole", collection: "roles", key: role, action: { Privileges: [{ PrivilegeId: await privilegeId("prvReadAccount"), Depth: "Global" }, { PrivilegeId: await privilegeId("prvWriteAccount"), Depth: "Basic" }] } });
    r = await server.api("GET", `roles(${role})/Microsoft.Dynamics.CRM.RetrieveRolePrivilegesRole()`);
    assert.deepEqual(Object.fromEntries(r.json.RolePrivileges.map((p) => [p.PrivilegeName, p.Depth])), { prvReadAccount: "Global", prvWriteAccount: "Deep" });

    await dwa.callAction({ actionName: "Microsoft.Dynamics.CRM.ReplacePrivilegesRole", collection: "roles", key: role, action: { Privileges: [{ PrivilegeId: await privilegeId("prvReadContact"), Depth: "Local" }] } });
    r = await server.api("GET", `roles(${role})/Microsoft.Dynamics.CRM.RetrieveRolePrivilegesRole()`);
    assert.deepEqual(r.json.RolePrivileges.map((p) => [p.PrivilegeName, p.Depth]), [["prvReadContact", "Local"]]);

    await dwa.callAction({ actionName: "Microsoft.Dynamics.CRM.RemovePrivilegeRole", collection: "roles", key: role, action: { PrivilegeId: await privilegeId("prvReadContact") } });
    r = await server.api("GET", `roles(${role})/Microsoft.Dynamics.CRM.RetrieveRolePrivilegesRole()`);
    assert.deepEqual(r.json.RolePrivileges, []);
  });

  it("refuses bad privilege requests with the Dataverse error shape", async () => {
    const role = await createRole({});
    let r = await server.api("POST", `roles(${role})/Microsoft.Dynamics.CRM.AddPrivilegesRole`, { body: { Privileges: [{ PrivilegeId: "00000000-0000-0000-0000-000000000001", Depth: "Global" }] } });
    assertODataError(r, { status: 404 });
    r = await server.api("POST", `roles(${role})/Microsoft.Dynamics.CRM.AddPrivilegesRole`, { body: { Privileges: [{ PrivilegeId: await privilegeId("prvReadAccount"), Depth: "Everything" }] } });
    assertODataError(r, { status: 400 });
    r = await server.api("POST", `roles(${role})/Microsoft.Dynamics.CRM.AddPrivilegesRole`, { body: { Privileges: "all" } });
    assertODataError(r, { status: 400 });
  });

  it("answers RetrieveUserPrivileges with the roles of the user and of the user's teams", async () => {
    const user = await createUser(uniqueTag("u"));
    await createRole({ prvReadAccount: "Local" }, [user]);
    const team = await dwa.create({ collection: "teams", data: { name: uniqueTag("team"), teamtype: 0, "businessunitid@odata.bind": `/businessunits(${rootBu})` } });
    const teamRole = await createRole({ prvCreateContact: "Basic" });
    await dwa.associate({ collection: "teams", primaryKey: team, relationshipName: "teamroles_association", relatedCollection: "roles", relatedKey: teamRole });
    await dwa.callAction({ actionName: "Microsoft.Dynamics.CRM.AddMembersTeam", collection: "teams", key: team, action: { Members: [{ "@odata.type": "Microsoft.Dynamics.CRM.systemuser", systemuserid: user }] } });
    const r = await server.api("GET", `systemusers(${user})/Microsoft.Dynamics.CRM.RetrieveUserPrivileges()`);
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(Object.fromEntries(r.json.RolePrivileges.map((p) => [p.PrivilegeName, p.Depth])), { prvCreateContact: "Basic", prvReadAccount: "Local" });
    // The team role now applies: the user may create contacts.
    const c = await server.api("POST", "contacts", { ...as(user), body: { lastname: "via team" } });
    assert.equal(c.status, 204, c.text);
    await dwa.callAction({ actionName: "Microsoft.Dynamics.CRM.RemoveMembersTeam", collection: "teams", key: team, action: { Members: [{ "@odata.type": "Microsoft.Dynamics.CRM.systemuser", systemuserid: user }] } });
    const denied = await server.api("POST", "contacts", { ...as(user), body: { lastname: "no team" } });
    assertODataError(denied, { status: 403, code: "0x80040220" });
    assert.match(denied.json.error.message, /prvCreateContact/);
  });
});

describe("record access", () => {
  let bu, alice, bob, aliceAccount, bobAccount;

  before(async () => {
    bu = await createBu(uniqueTag("bu"));
    alice = await createUser("alice", bu);
    bob = await createUser("bob", bu);
    await createRole({ prvReadAccount: "Basic", prvCreateAccount: "Basic", prvWriteAccount: "Basic", prvShareAccount: "Basic", prvAssignAccount: "Basic", prvDeleteAccount: "Basic" }, [alice, bob]);
    const a = await server.api("POST", "accounts", { ...as(alice), body: { name: "alice's" }, headers: { MSCRMCallerID: alice, Prefer: "return=representation" } });
    assert.equal(a.status, 201, a.text);
    aliceAccount = a.json.accountid;
    assert.equal(a.json._ownerid_value, alice);
    assert.equal(a.json._owningbusinessunit_value, bu);
    const b = await server.api("POST", "accounts", { body: { name: "bob's" }, headers: { MSCRMCallerID: bob, Prefer: "return=representation" } });
    bobAccount = b.json.accountid;
  });

  it("keeps users with Basic depth to their own records: list, get, count, update, delete", async () => {
    let r = await server.api("GET", `accounts?$select=name&$count=true&$filter=${q(`accountid eq ${aliceAccount} or accountid eq ${bobAccount}`)}`, as(alice));
    assert.equal(r.status, 200);
    assert.deepEqual(r.json.value.map((x) => x.name), ["alice's"]);
    assert.equal(r.json["@odata.count"], 1);
    r = await server.api("GET", `accounts(${bobAccount})`, as(alice));
    assertODataError(r, { status: 403, code: "0x80048306" });
    assert.doesNotMatch(r.json.error.message, /bob's/);
    r = await server.api("PATCH", `accounts(${bobAccount})`, { ...as(alice), body: { name: "hacked" } });
    assertODataError(r, { status: 403, code: "0x80048306" });
    r = await server.api("DELETE", `accounts(${bobAccount})`, as(alice));
    assertODataError(r, { status: 403, code: "0x80048306" });
    r = await server.api("GET", `contacts`, as(alice));
    assertODataError(r, { status: 403, code: "0x80040220" });
    assert.match(r.json.error.message, /prvReadContact/);
  });

  it("shares, modifies and revokes access, and reports it", async () => {
    const target = { "@odata.type": "Microsoft.Dynamics.CRM.account", accountid: bobAccount };
    const principal = { "@odata.type": "Microsoft.Dynamics.CRM.systemuser", systemuserid: alice };
    // Alice cannot share Bob's record.
    let r = await server.api("POST", "GrantAccess", { ...as(alice), body: { Target: target, PrincipalAccess: { Principal: principal, AccessMask: "ReadAccess" } } });
    assertODataError(r, { status: 403 });
    r = await server.api("POST", "GrantAccess", { ...as(bob), body: { Target: target, PrincipalAccess: { Principal: principal, AccessMask: "ReadAccess" } } });
    assert.equal(r.status, 204, r.text);
    r = await server.api("GET", `accounts(${bobAccount})?$select=name`, as(alice));
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.name, "bob's");
    r = await server.api("GET", `systemusers(${alice})/Microsoft.Dynamics.CRM.RetrievePrincipalAccess(Target=@t)?@t=${q(JSON.stringify({ "@odata.id": `accounts(${bobAccount})` }))}`);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.AccessRights, "ReadAccess");
    r = await server.api("PATCH", `accounts(${bobAccount})`, { ...as(alice), body: { name: "still not" } });
    assertODataError(r, { status: 403, code: "0x80048306" });

    r = await server.api("POST", "ModifyAccess", { ...as(bob), body: { Target: target, PrincipalAccess: { Principal: principal, AccessMask: "ReadAccess, WriteAccess" } } });
    assert.equal(r.status, 204, r.text);
    r = await server.api("PATCH", `accounts(${bobAccount})`, { ...as(alice), body: { description: "edited by alice" } });
    assert.equal(r.status, 204, r.text);
    r = await server.api("GET", `RetrieveSharedPrincipalsAndAccess(Target=@t)?@t=${q(JSON.stringify({ "@odata.id": `accounts(${bobAccount})` }))}`, as(bob));
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json.PrincipalAccesses, [{ AccessMask: "ReadAccess, WriteAccess", Principal: { "@odata.type": "#Microsoft.Dynamics.CRM.systemuser", ownerid: alice } }]);

    r = await server.api("POST", "RevokeAccess", { ...as(bob), body: { Target: target, Revokee: principal } });
    assert.equal(r.status, 204, r.text);
    r = await server.api("GET", `accounts(${bobAccount})`, as(alice));
    assertODataError(r, { status: 403, code: "0x80048306" });
  });

  it("assigns a record: the owner and owning business unit follow, and access moves", async () => {
    const other = await createBu(uniqueTag("bu"));
    const carol = await createUser("carol", other);
    const made = await server.api("POST", "accounts", { body: { name: "to assign" }, headers: { MSCRMCallerID: alice, Prefer: "return=representation" } });
    const id = made.json.accountid;
    let r = await server.api("PATCH", `accounts(${id})`, { ...as(alice), body: { "ownerid@odata.bind": `/systemusers(${carol})` } });
    assert.equal(r.status, 204, r.text);
    r = await server.api("GET", `accounts(${id})?$select=_ownerid_value,_owningbusinessunit_value,_owninguser_value`);
    assert.equal(r.json._ownerid_value, carol);
    assert.equal(r.json._owninguser_value, carol);
    assert.equal(r.json._owningbusinessunit_value, other);
    r = await server.api("GET", `accounts(${id})`, as(alice));
    assertODataError(r, { status: 403, code: "0x80048306" });
    // Without the Assign privilege, no assignment.
    const dave = await createUser("dave", bu);
    await createRole({ prvReadAccount: "Global", prvWriteAccount: "Global" }, [dave]);
    r = await server.api("PATCH", `accounts(${id})`, { ...as(dave), body: { "ownerid@odata.bind": `/systemusers(${dave})` } });
    assertODataError(r, { status: 403, code: "0x80040220" });
    assert.match(r.json.error.message, /prvAssignAccount/);
  });

  it("rolls back a $batch change set with a denied request", async () => {
    const name = uniqueTag("batch");
    const boundary = "batch_x";
    const cs = "changeset_y";
    const part = (n, method, url, body) =>
      `--${cs}\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\nContent-ID: ${n}\r\n\r\n${method} ${server.apiRoot}${url} HTTP/1.1\r\nContent-Type: application/json\r\n\r\n${JSON.stringify(body)}\r\n`;
    const payload = `--${boundary}\r\nContent-Type: multipart/mixed; boundary=${cs}\r\n\r\n` + part(1, "POST", "accounts", { name }) + part(2, "PATCH", `accounts(${bobAccount})`, { name: "denied" }) + `--${cs}--\r\n--${boundary}--\r\n`;
    const r = await server.api("POST", "$batch", { body: payload, contentType: `multipart/mixed; boundary=${boundary}`, headers: { MSCRMCallerID: alice } });
    assert.match(r.text, /403/);
    const check = await server.api("GET", `accounts?$filter=${q(`name eq '${name}'`)}`);
    assert.equal(check.json.value.length, 0);
  });
});

describe("column security", () => {
  let user, account;

  before(async () => {
    const col = await server.api("POST", "EntityDefinitions(LogicalName='account')/Attributes", {
      body: {
        "@odata.type": "Microsoft.Dynamics.CRM.StringAttributeMetadata",
        SchemaName: "new_Secret",
        MaxLength: 100,
        IsSecured: true,
        DisplayName: { LocalizedLabels: [{ Label: "Secret", LanguageCode: 1033 }] },
        RequiredLevel: { Value: "None" },
      },
    });
    assert.equal(col.status, 204, col.text);
    user = await createUser(uniqueTag("fls"));
    await createRole({ prvReadAccount: "Global", prvWriteAccount: "Global", prvCreateAccount: "Global" }, [user]);
    account = await dwa.create({ collection: "accounts", data: { name: "with a secret", new_secret: "s3cr3t" } });
  });

  it("shows IsSecured in the metadata", async () => {
    const r = await server.api("GET", "EntityDefinitions(LogicalName='account')/Attributes(LogicalName='new_secret')?$select=IsSecured");
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.IsSecured, true);
  });

  it("hides the column and refuses filtering, sorting, FetchXML and writes without a profile", async () => {
    let r = await server.api("GET", `accounts(${account})`, as(user));
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.name, "with a secret");
    assert.equal("new_secret" in r.json, false);
    assert.doesNotMatch(r.text, /s3cr3t/);
    r = await server.api("GET", `accounts?$filter=${q("new_secret eq 's3cr3t'")}`, as(user));
    assertODataError(r, { status: 403, code: "0x8004f504" });
    r = await server.api("GET", `accounts?$orderby=new_secret`, as(user));
    assertODataError(r, { status: 403, code: "0x8004f504" });
    const fetch = `<fetch><entity name="account"><attribute name="name"/><filter><condition attribute="new_secret" operator="like" value="s%"/></filter></entity></fetch>`;
    r = await server.api("GET", `accounts?fetchXml=${q(fetch)}`, as(user));
    assertODataError(r, { status: 403, code: "0x8004f504" });
    r = await server.api("PATCH", `accounts(${account})`, { ...as(user), body: { new_secret: "changed" } });
    assertODataError(r, { status: 403, code: "0x8004f507" });
    r = await server.api("POST", "accounts", { ...as(user), body: { name: "x", new_secret: "mine" } });
    assertODataError(r, { status: 403, code: "0x8004f502" });
    // The admin still sees it.
    r = await server.api("GET", `accounts(${account})?$select=new_secret`);
    assert.equal(r.json.new_secret, "s3cr3t");
  });

  it("grants read and update through a field security profile", async () => {
    const profile = await dwa.create({ collection: "fieldsecurityprofiles", data: { name: uniqueTag("profile") } });
    await dwa.create({ collection: "fieldpermissions", data: { "fieldsecurityprofileid@odata.bind": `/fieldsecurityprofiles(${profile})`, entityname: "account", attributelogicalname: "new_secret", canread: 4, canupdate: 4, cancreate: 0 } });
    await dwa.associate({ collection: "systemusers", primaryKey: user, relationshipName: "systemuserprofiles_association", relatedCollection: "fieldsecurityprofiles", relatedKey: profile });
    let r = await server.api("GET", `accounts(${account})?$select=new_secret`, as(user));
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.new_secret, "s3cr3t");
    r = await server.api("GET", `accounts?$select=name&$filter=${q("new_secret eq 's3cr3t'")}`, as(user));
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.value.length, 1);
    r = await server.api("PATCH", `accounts(${account})`, { ...as(user), body: { new_secret: "rotated" } });
    assert.equal(r.status, 204, r.text);
    r = await server.api("POST", "accounts", { ...as(user), body: { name: "x", new_secret: "mine" } });
    assertODataError(r, { status: 403, code: "0x8004f502" });
  });
});
