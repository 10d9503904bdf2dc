// Record-level security end to end, through dynamics-web-api: the admin builds a business-unit
// tree (root → east → east-sub, and west), users and an owner team, gives roles privileges with
// AddPrivilegesRole (depths by name and by number) and assigns them; then each user is acted as
// through impersonation (dynamics-web-api's `impersonate`, sent as MSCRMCallerID). Checked: the
// 403 codes and messages for a missing privilege and for row access, silently filtered lists and
// counts, Local and Deep depth (also through a team in another unit), GrantAccess making a record
// visible, an assignment moving a record out of a Local user's view, related records that stay
// hidden in $expand and $filter, and a $batch change set with a denied request rolling back.
// Model: shared/reference/platform.md §2.

import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer, uniqueTag, q, assertODataError } from "./helpers.mjs";

const PRIVILEGE_DENIED = "0x80040220";
const ACCESS_DENIED = "0x80048306";

let server;
let admin; // dynamics-web-api as the bootstrap admin (System Administrator)
let rootBu, east, eastSub, west;
let ella, ed, sam, wes; // users: ella and ed in east, sam in east-sub, wes in west
let eastTeam; // an owner team in east with wes as member
const tag = uniqueTag("sec");
const account = {}; // name → id, owned by the user of the same name (and "team")
const privilegeIds = new Map();

/** Asserts that a dynamics-web-api call rejects with this status and Dataverse error code. */
async function rejectsWith(promise, status, code, messagePattern) {
  let error;
  await assert.rejects(promise, (e) => {
    error = Array.isArray(e) ? e[0] : e;
    assert.equal(error.status, status, `status (error: ${error.message})`);
    assert.equal(String(error.code ?? error.error?.code).toLowerCase(), code.toLowerCase(), `code (error: ${error.message})`);
    if (messagePattern) assert.match(error.message, messagePattern);
    return true;
  });
  return error;
}

async function privilegeId(name) {
  if (!privilegeIds.has(name)) {
    const r = await admin.retrieveMultiple({ collection: "privileges", select: ["privilegeid"], filter: `name eq '${name}'` });
    assert.equal(r.value.length, 1, `privilege ${name}`);
    privilegeIds.set(name, r.value[0].privilegeid);
  }
  return privilegeIds.get(name);
}

// A role with {privilege name: depth (name or 0–3)}.
async function createRole(name, privileges) {
  const role = await admin.create({ collection: "roles", data: { name, "businessunitid@odata.bind": `/businessunits(${rootBu})` } });
  const list = [];
  for (const [prv, depth] of Object.entries(privileges)) list.push({ PrivilegeId: await privilegeId(prv), Depth: depth, BusinessUnitId: rootBu });
  await admin.callAction({ actionName: "Microsoft.Dynamics.CRM.AddPrivilegesRole", collection: "roles", key: role, action: { Privileges: list } });
  return role;
}

async function assignRole(user, role) {
  await admin.associate({ collection: "systemusers", primaryKey: user, relationshipName: "systemuserroles_association", relatedCollection: "roles", relatedKey: role });
}

async function createUser(lastname, bu) {
  return admin.create({ collection: "systemusers", data: { firstname: "E2E", lastname, "businessunitid@odata.bind": `/businessunits(${bu})` } });
}

/** dynamics-web-api acting as `user`. */
const as = (user) => server.dwa({ impersonate: user });

/** The names of this test's accounts that `client` can see, sorted. */
async function visibleAccounts(client) {
  const r = await client.retrieveMultiple({ collection: "accounts", select: ["name"], filter: `startswith(name,'${tag}')`, orderBy: ["name"] });
  return r.value.map((a) => a.name.slice(tag.length + 1));
}

before(async () => {
  server = await startServer();
  admin = await server.dwa();
  rootBu = (await admin.callFunction({ functionName: "WhoAmI" })).BusinessUnitId;
  const bu = (name, parent) => admin.create({ collection: "businessunits", data: { name: `${tag}-${name}`, "parentbusinessunitid@odata.bind": `/businessunits(${parent})` } });
  east = await bu("east", rootBu);
  eastSub = await bu("east-sub", east);
  west = await bu("west", rootBu);
  ella = await createUser("ella", east);
  ed = await createUser("ed", east);
  sam = await createUser("sam", eastSub);
  wes = await createUser("wes", west);
  eastTeam = await admin.create({ collection: "teams", data: { name: `${tag}-east team`, teamtype: 0, "businessunitid@odata.bind": `/businessunits(${east})` } });
  await admin.callAction({ actionName: "Microsoft.Dynamics.CRM.AddMembersTeam", collection: "teams", key: eastTeam, action: { Members: [{ "@odata.type": "Microsoft.Dynamics.CRM.systemuser", systemuserid: wes }] } });

  // East users: Read accounts in their unit (Local), create, write and delete their own (Basic,
  // by number and by name), read contacts at Basic.
  const eastRole = await createRole(`${tag}-east`, { prvReadAccount: "Local", prvCreateAccount: 0, prvWriteAccount: "Basic", prvDeleteAccount: 0, prvReadContact: "Basic", prvAppendAccount: 0, prvAppendToContact: 0 });
  await assignRole(ella, eastRole);
  await assignRole(ed, eastRole);
  // The east team's role: Read accounts at Deep, anchored at the team's unit (east).
  const teamRole = await createRole(`${tag}-team`, { prvReadAccount: 2 });
  await admin.associate({ collection: "teams", primaryKey: eastTeam, relationshipName: "teamroles_association", relatedCollection: "roles", relatedKey: teamRole });
  // wes's own role gives nothing on accounts.
  await assignRole(wes, await createRole(`${tag}-west`, { prvReadContact: 3 }));

  for (const [name, owner] of [["ella", ella], ["ed", ed], ["sam", sam], ["wes", wes]]) {
    account[name] = await admin.create({ collection: "accounts", data: { name: `${tag}-${name}`, "ownerid@odata.bind": `/systemusers(${owner})` } });
  }
  account.team = await admin.create({ collection: "accounts", data: { name: `${tag}-team`, "ownerid@odata.bind": `/teams(${eastTeam})` } });
});

after(async () => {
  await server?.cleanup();
});

describe("roles and privileges", () => {
  it("gives every new business unit a default team", async () => {
    for (const bu of [east, eastSub, west]) {
      const r = await admin.retrieveMultiple({ collection: "teams", select: ["name", "teamtype"], filter: `isdefault eq true and _businessunitid_value eq ${bu}` });
      assert.equal(r.value.length, 1, `default team of ${bu}`);
      assert.equal(r.value[0].teamtype, 0);
    }
  });

  it("stores the depths given by name and by number", async () => {
    const r = await admin.callFunction({ functionName: "Microsoft.Dynamics.CRM.RetrieveUserPrivileges", collection: "systemusers", key: ella });
    const byName = Object.fromEntries(r.RolePrivileges.map((p) => [p.PrivilegeName, p.Depth]));
    assert.deepEqual(byName, {
      prvAppendAccount: "Basic",
      prvAppendToContact: "Basic",
      prvCreateAccount: "Basic",
      prvDeleteAccount: "Basic",
      prvReadAccount: "Local",
      prvReadContact: "Basic",
      prvWriteAccount: "Basic",
    });
  });
});

describe("reading", () => {
  it("filters lists and counts to the rows the user may read (Local depth: own unit only)", async () => {
    const asElla = await as(ella);
    assert.deepEqual(await visibleAccounts(asElla), ["ed", "ella", "team"]);
    const count = await asElla.count({ collection: "accounts", filter: `startswith(name,'${tag}')` });
    assert.equal(count, 3);
  });

  it("answers a record out of reach with 403 0x80048306, naming no data", async () => {
    const asElla = await as(ella);
    const e = await rejectsWith(asElla.retrieve({ collection: "accounts", key: account.sam }), 403, ACCESS_DENIED, /ReadAccess/);
    assert.doesNotMatch(e.message, new RegExp(`${tag}-sam`));
  });

  it("answers a missing privilege with 403 0x80040220 naming it", async () => {
    const asElla = await as(ella);
    await rejectsWith(asElla.retrieveMultiple({ collection: "leads" }), 403, PRIVILEGE_DENIED, /prvReadLead/);
    const asWes = await as(wes);
    await rejectsWith(asWes.create({ collection: "accounts", data: { name: `${tag}-nope` } }), 403, PRIVILEGE_DENIED, /prvCreateAccount/);
  });

  it("applies a team's Deep role from the team's unit, plus the user's own rows", async () => {
    // wes (west) reads through the east team: east and east-sub rows, the team's row, and his own.
    assert.deepEqual(await visibleAccounts(await as(wes)), ["ed", "ella", "sam", "team", "wes"]);
  });
});

describe("sharing and assignment", () => {
  it("GrantAccess makes a record visible; RevokeAccess hides it again", async () => {
    const target = { "@odata.type": "Microsoft.Dynamics.CRM.account", accountid: account.sam };
    const principal = { "@odata.type": "Microsoft.Dynamics.CRM.systemuser", systemuserid: ella };
    await admin.callAction({ actionName: "GrantAccess", action: { Target: target, PrincipalAccess: { Principal: principal, AccessMask: "ReadAccess" } } });
    const asElla = await as(ella);
    const got = await asElla.retrieve({ collection: "accounts", key: account.sam, select: ["name"] });
    assert.equal(got.name, `${tag}-sam`);
    assert.deepEqual(await visibleAccounts(asElla), ["ed", "ella", "sam", "team"]);
    // Read only: no write through the share.
    await rejectsWith(asElla.update({ collection: "accounts", key: account.sam, data: { telephone1: "1" } }), 403, ACCESS_DENIED);
    await admin.callAction({ actionName: "RevokeAccess", action: { Target: target, Revokee: principal } });
    await rejectsWith(asElla.retrieve({ collection: "accounts", key: account.sam }), 403, ACCESS_DENIED);
  });

  it("an assignment to another unit moves a record out of a Local user's view", async () => {
    const moving = await admin.create({ collection: "accounts", data: { name: `${tag}-moving`, "ownerid@odata.bind": `/systemusers(${ed})` } });
    const asElla = await as(ella);
    assert.ok((await visibleAccounts(asElla)).includes("moving"));
    // ella holds no Assign privilege: not even her own record can be given away.
    await rejectsWith(asElla.update({ collection: "accounts", key: account.ella, data: { "ownerid@odata.bind": `/systemusers(${ed})` } }), 403, PRIVILEGE_DENIED, /prvAssignAccount/);
    await admin.update({ collection: "accounts", key: moving, data: { "ownerid@odata.bind": `/systemusers(${wes})` } });
    const after = await admin.retrieve({ collection: "accounts", key: moving, select: ["_ownerid_value", "_owningbusinessunit_value"] });
    assert.equal(after._ownerid_value, wes);
    assert.equal(after._owningbusinessunit_value, west);
    assert.ok(!(await visibleAccounts(asElla)).includes("moving"));
    await rejectsWith(asElla.retrieve({ collection: "accounts", key: moving }), 403, ACCESS_DENIED);
  });
});

describe("writing", () => {
  it("writes and deletes only within the depth held (Basic: own rows)", async () => {
    const asElla = await as(ella);
    await asElla.update({ collection: "accounts", key: account.ella, data: { telephone1: "555-1000" } });
    await rejectsWith(asElla.update({ collection: "accounts", key: account.ed, data: { telephone1: "555-1001" } }), 403, ACCESS_DENIED, /WriteAccess/);
    await rejectsWith(asElla.deleteRecord({ collection: "accounts", key: account.ed }), 403, ACCESS_DENIED, /DeleteAccess/);
    const mine = await asElla.create({ collection: "accounts", data: { name: `${tag}-scratch` } });
    const made = await admin.retrieve({ collection: "accounts", key: mine, select: ["_ownerid_value", "_owningbusinessunit_value"] });
    assert.equal(made._ownerid_value, ella);
    assert.equal(made._owningbusinessunit_value, east);
    await asElla.deleteRecord({ collection: "accounts", key: mine });
    // Creating a record for someone out of the Basic depth is refused.
    await rejectsWith(asElla.create({ collection: "accounts", data: { name: `${tag}-for ed`, "ownerid@odata.bind": `/systemusers(${ed})` } }), 403, PRIVILEGE_DENIED, /prvCreateAccount/);
  });

  it("rolls back a $batch change set that holds a denied request", async () => {
    const asElla = await as(ella);
    asElla.startBatch();
    asElla.create({ collection: "accounts", data: { name: `${tag}-batch` } });
    asElla.update({ collection: "accounts", key: account.ella, data: { telephone1: "555-2000" } });
    asElla.update({ collection: "accounts", key: account.ed, data: { telephone1: "555-2001" } });
    await rejectsWith(asElla.executeBatch(), 403, ACCESS_DENIED);
    const check = await admin.retrieveMultiple({ collection: "accounts", select: ["name"], filter: `name eq '${tag}-batch'` });
    assert.equal(check.value.length, 0, "the create of the failed change set stayed");
    const ellas = await admin.retrieve({ collection: "accounts", key: account.ella, select: ["telephone1"] });
    assert.notEqual(ellas.telephone1, "555-2000", "the update of the failed change set stayed");
  });
});

describe("related records stay hidden", () => {
  let hidden;

  before(async () => {
    // A contact owned by wes, outside ella's Basic Read on contacts, as primary contact of ella's account.
    hidden = await admin.create({ collection: "contacts", data: { firstname: "Hidden", lastname: `${tag}-secretname`, "ownerid@odata.bind": `/systemusers(${wes})` } });
    await admin.update({ collection: "accounts", key: account.ella, data: { "primarycontactid@odata.bind": `/contacts(${hidden})` } });
  });

  it("expands an unreadable lookup to null", async () => {
    const asElla = await as(ella);
    const r = await asElla.retrieve({ collection: "accounts", key: account.ella, select: ["name"], expand: [{ property: "primarycontactid", select: ["fullname"] }] });
    assert.equal(r.primarycontactid ?? null, null);
    assert.doesNotMatch(JSON.stringify(r.primarycontactid ?? null), /secretname/);
  });

  it("does not match $filter or order by the hidden contact's columns", async () => {
    const asElla = await as(ella);
    const hit = await asElla.retrieveMultiple({ collection: "accounts", select: ["name"], filter: `primarycontactid/lastname eq '${tag}-secretname'` });
    assert.equal(hit.value.length, 0);
    const r = await server.api("GET", `accounts?$select=name&$filter=${q(`startswith(name,'${tag}') and primarycontactid/lastname eq null`)}`, { headers: { MSCRMCallerID: ella } });
    assert.equal(r.status, 200, r.text);
    assert.ok(r.json.value.some((a) => a.name === `${tag}-ella`), "as if the lookup were empty");
  });

  it("refuses to point a record at a contact the user may not append to, naming no data", async () => {
    const asElla = await as(ella);
    const e = await rejectsWith(asElla.update({ collection: "accounts", key: account.ella, data: { "primarycontactid@odata.bind": `/contacts(${hidden})` } }), 403, ACCESS_DENIED, /AppendToAccess/);
    assert.doesNotMatch(e.message, /secretname/);
    const r = await server.api("GET", `contacts(${hidden})`, { headers: { MSCRMCallerID: ella } });
    assertODataError(r, { status: 403, code: ACCESS_DENIED });
  });
});
