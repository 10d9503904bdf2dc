// Web API through a real client: dynamics-web-api 2.5.0 (DWA) against a started server.
// Wire facts: shared/reference/dataverse-webapi.md (§3–§5, §9, §13).

import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import {
  startServer,
  SCHEMA_FIXTURE,
  GUID_RE,
  ETAG_RE,
  uniqueTag,
  pool,
  retry429,
} from "./helpers.mjs";

const FV = "@OData.Community.Display.V1.FormattedValue";
const LOGICAL = "@Microsoft.Dynamics.CRM.lookuplogicalname";
const NAVPROP = "@Microsoft.Dynamics.CRM.associatednavigationproperty";
const NOT_FOUND = "0x80040217";

let server;
let dwa;

before(async () => {
  server = await startServer({ schema: SCHEMA_FIXTURE });
  dwa = await server.dwa();
});

after(async () => {
  await server?.cleanup();
});

/** Asserts that a DWA call rejects with the given HTTP status (and Dataverse error code). */
async function rejectsWith(promise, status, code) {
  await assert.rejects(promise, (e) => {
    assert.equal(e.status, status, `status (error: ${e.message})`);
    if (code) assert.equal(String(e.code).toLowerCase(), code.toLowerCase(), `code (error: ${e.message})`);
    assert.equal(typeof e.message, "string");
    return true;
  });
}

const names = (rows) => rows.map((r) => r.name);

describe("create and retrieve", () => {
  const tag = uniqueTag("cr");
  let contactId;
  let accountId;

  it("create returns the new id taken from OData-EntityId", async () => {
    contactId = await dwa.create({
      collection: "contacts",
      data: {
        firstname: "Ada",
        lastname: `Lovelace${tag}`,
        emailaddress1: `ada.${tag}@example.com`,
        jobtitle: "Analyst",
        birthdate: "1815-12-10",
      },
    });
    assert.equal(typeof contactId, "string");
    assert.match(contactId, GUID_RE);
  });

  it("retrieve returns computed fullname, date-only value, pk and etag", async () => {
    const c = await dwa.retrieve({
      collection: "contacts",
      key: contactId,
      select: ["firstname", "lastname", "fullname", "birthdate", "jobtitle"],
    });
    assert.equal(c.contactid, contactId);
    assert.equal(c.firstname, "Ada");
    assert.equal(c.fullname, `Ada Lovelace${tag}`);
    assert.equal(c.birthdate, "1815-12-10", "Edm.Date is serialized as YYYY-MM-DD");
    assert.equal(c.jobtitle, "Analyst");
    assert.match(c["@odata.etag"], ETAG_RE);
    assert.ok(!("emailaddress1" in c), "unselected columns are not returned");
  });

  it("create with returnRepresentation returns the record (201)", async () => {
    const rec = await dwa.create({
      collection: "accounts",
      data: { name: `${tag} rep`, telephone1: "555-0100", numberofemployees: 12 },
      returnRepresentation: true,
      select: ["name", "telephone1", "numberofemployees"],
    });
    assert.equal(typeof rec, "object");
    assert.match(rec.accountid, GUID_RE);
    assert.equal(rec.name, `${tag} rep`);
    assert.equal(rec.telephone1, "555-0100");
    assert.equal(rec.numberofemployees, 12);
    assert.match(rec["@odata.etag"], ETAG_RE);
  });

  it("create with @odata.bind, then retrieve with $select, $expand and annotations", async () => {
    accountId = await dwa.create({
      collection: "accounts",
      data: {
        name: `${tag} Contoso`,
        revenue: 20000,
        industrycode: 1,
        numberofemployees: 250,
        creditonhold: false,
        websiteurl: "https://contoso.example.com",
        description: "multi\nline",
        "primarycontactid@odata.bind": `contacts(${contactId})`, // DWA sends "/contacts(…)"
      },
    });
    assert.match(accountId, GUID_RE);

    const a = await dwa.retrieve({
      collection: "accounts",
      key: accountId,
      select: ["name", "revenue", "industrycode", "numberofemployees", "creditonhold", "description", "_primarycontactid_value"],
      expand: [{ property: "primarycontactid", select: ["fullname", "firstname"] }],
      includeAnnotations: "*",
    });
    assert.equal(a.accountid, accountId);
    assert.equal(a.name, `${tag} Contoso`);
    assert.equal(a.revenue, 20000);
    assert.equal(a.industrycode, 1);
    assert.equal(a.numberofemployees, 250);
    assert.equal(a.creditonhold, false);
    assert.equal(a.description, "multi\nline");
    assert.match(a["@odata.etag"], ETAG_RE);

    // Money: FormattedValue is a currency string; selecting money also returns the currency lookup.
    assert.match(String(a[`revenue${FV}`]), /20,000\.00/);
    assert.equal(a.revenue_Formatted, a[`revenue${FV}`], "DWA maps FormattedValue to _Formatted");
    assert.ok("_transactioncurrencyid_value" in a, "money column brings _transactioncurrencyid_value (§3.2)");
    // Choice: FormattedValue is the option label.
    assert.equal(typeof a[`industrycode${FV}`], "string");
    assert.ok(a[`industrycode${FV}`].length > 0);
    // Number and boolean formatted values.
    assert.equal(a[`numberofemployees${FV}`], "250");
    assert.equal(typeof a[`creditonhold${FV}`], "string");

    // Lookup property + its annotations.
    assert.equal(a._primarycontactid_value, contactId);
    assert.equal(a[`_primarycontactid_value${LOGICAL}`], "contact");
    assert.equal(a[`_primarycontactid_value${NAVPROP}`], "primarycontactid");
    assert.equal(a[`_primarycontactid_value${FV}`], `Ada Lovelace${tag}`);
    assert.equal(a._primarycontactid_value_LogicalName, "contact");

    // Expanded single-valued navigation.
    assert.equal(typeof a.primarycontactid, "object");
    assert.equal(a.primarycontactid.contactid, contactId);
    assert.equal(a.primarycontactid.fullname, `Ada Lovelace${tag}`);
    assert.equal(a.primarycontactid.firstname, "Ada");
  });

  it("retrieve without annotations carries none", async () => {
    const a = await dwa.retrieve({ collection: "accounts", key: accountId, select: ["revenue", "_primarycontactid_value"] });
    assert.equal(a.revenue, 20000);
    for (const k of Object.keys(a)) {
      assert.ok(!k.includes("@OData.Community") && !k.includes("@Microsoft.Dynamics.CRM"), `unexpected annotation ${k}`);
    }
  });

  it("retrieve with a collection expand using nested $select;$filter;$orderby;$top", async () => {
    const kids = ["Bea", "Cal", "Dot", "Eve"];
    await pool(kids, 4, (first) =>
      dwa.create({
        collection: "contacts",
        data: { firstname: first, lastname: tag, "parentcustomerid_account@odata.bind": `/accounts(${accountId})` },
      })
    );
    const a = await dwa.retrieve({
      collection: "accounts",
      key: accountId,
      select: ["name"],
      expand: [
        {
          property: "contact_customer_accounts",
          select: ["firstname", "lastname"],
          filter: "firstname ne 'Cal'",
          orderBy: ["firstname desc"],
          top: 2,
        },
      ],
    });
    assert.ok(Array.isArray(a.contact_customer_accounts), "collection expand is an array");
    assert.deepEqual(
      a.contact_customer_accounts.map((c) => c.firstname),
      ["Eve", "Dot"]
    );
    for (const c of a.contact_customer_accounts) {
      assert.match(c.contactid, GUID_RE);
      assert.equal(c.lastname, tag);
    }
  });

  it("retrieve of a missing id rejects with 404 0x80040217", async () => {
    await rejectsWith(dwa.retrieve({ collection: "accounts", key: randomUUID() }), 404, NOT_FOUND);
  });

  it("custom table: choice, money, date-only and lookup round-trip with annotations", async () => {
    const code = `P-${tag}`;
    const id = await dwa.create({
      collection: "new_projects",
      data: {
        new_name: `${tag} project`,
        new_code: code,
        new_stage: 2,
        new_priority: 100000001,
        new_budget: 1234.5,
        new_start: "2024-03-15",
        new_count: 3,
        new_active: true,
        "new_accountid@odata.bind": `/accounts(${accountId})`,
      },
    });
    assert.match(id, GUID_RE);
    const p = await dwa.retrieve({
      collection: "new_projects",
      key: id,
      select: ["new_name", "new_code", "new_stage", "new_priority", "new_budget", "new_start", "new_count", "new_active", "_new_accountid_value"],
      includeAnnotations: "*",
    });
    assert.equal(p.new_projectid, id);
    assert.equal(p.new_code, code);
    assert.equal(p.new_stage, 2);
    assert.equal(p[`new_stage${FV}`], "Build");
    assert.equal(p.new_priority, 100000001);
    assert.equal(p[`new_priority${FV}`], "High");
    assert.equal(p.new_budget, 1234.5);
    assert.match(String(p[`new_budget${FV}`]), /1,234\.50/);
    assert.equal(p.new_start, "2024-03-15");
    assert.equal(p.new_count, 3);
    assert.equal(p.new_active, true);
    assert.equal(p[`new_active${FV}`], "Yes");
    assert.equal(p._new_accountid_value, accountId);
    assert.equal(p[`_new_accountid_value${LOGICAL}`], "account");
    assert.equal(p[`_new_accountid_value${NAVPROP}`], "new_accountid");
    assert.equal(p[`_new_accountid_value${FV}`], `${tag} Contoso`);

    // And from the other side: the account's collection navigation of the custom relationship.
    const a = await dwa.retrieve({
      collection: "accounts",
      key: accountId,
      select: ["name"],
      expand: [{ property: "new_account_new_project", select: ["new_code"] }],
    });
    assert.deepEqual(a.new_account_new_project.map((x) => x.new_code), [code]);
  });
});

describe("retrieveMultiple: $filter, $orderby, $top, $count", () => {
  const tag = uniqueTag("q");
  let graceId;
  const ids = {};

  before(async () => {
    graceId = await dwa.create({ collection: "contacts", data: { firstname: "Grace", lastname: tag } });
    await pool([1, 2, 3, 4, 5, 6, 7], 7, async (i) => {
      const data = {
        name: `${tag}-0${i}`,
        numberofemployees: i * 10,
        revenue: i * 1000,
        creditonhold: i % 3 === 0,
        address1_city: i <= 3 ? "Oslo" : "Bergen",
      };
      if (i % 2 === 0) data.telephone1 = `555-000${i}`;
      if (i <= 2) data["primarycontactid@odata.bind"] = `/contacts(${graceId})`;
      ids[i] = await dwa.create({ collection: "accounts", data });
    });
  });

  const mine = () => `startswith(name,'${tag}')`;
  const query = (filter, extra = {}) =>
    dwa.retrieveMultiple({ collection: "accounts", select: ["name", "numberofemployees"], filter, orderBy: ["name asc"], ...extra });

  it("filter + orderby + top + count=true", async () => {
    const r = await dwa.retrieveMultiple({
      collection: "accounts",
      select: ["name", "numberofemployees"],
      filter: `${mine()} and numberofemployees ge 20`,
      orderBy: ["numberofemployees desc"],
      top: 3,
      count: true,
    });
    assert.deepEqual(names(r.value), [`${tag}-07`, `${tag}-06`, `${tag}-05`]);
    assert.deepEqual(r.value.map((x) => x.numberofemployees), [70, 60, 50]);
    assert.equal(r.oDataCount, 6, "@odata.count counts all matches, not just $top");
    assert.equal(r.oDataNextLink, undefined);
    for (const row of r.value) {
      assert.match(row.accountid, GUID_RE, "primary key is always returned");
      assert.match(row["@odata.etag"], ETAG_RE);
      assert.ok(!("revenue" in row), "unselected column returned");
    }
  });

  it("string functions: contains, startswith, endswith, not", async () => {
    let r = await query(`contains(name,'${tag}') and endswith(name,'-03')`);
    assert.deepEqual(names(r.value), [`${tag}-03`]);
    r = await query(`${mine()} and not endswith(name,'1')`);
    assert.equal(r.value.length, 6);
    assert.ok(!names(r.value).includes(`${tag}-01`));
    r = await query(`${mine()} and not contains(name,'-0')`);
    assert.equal(r.value.length, 0);
  });

  it("string comparison is case-insensitive", async () => {
    const r = await query(`name eq '${tag.toUpperCase()}-01'`);
    assert.deepEqual(names(r.value), [`${tag}-01`]);
  });

  it("and / or / not with parentheses", async () => {
    let r = await query(`${mine()} and (numberofemployees eq 10 or numberofemployees eq 70)`);
    assert.deepEqual(names(r.value), [`${tag}-01`, `${tag}-07`]);
    r = await query(`${mine()} and not (numberofemployees lt 30 or numberofemployees gt 50)`);
    assert.deepEqual(names(r.value), [`${tag}-03`, `${tag}-04`, `${tag}-05`]);
    r = await query(`(${mine()}) and ((address1_city eq 'Oslo' and numberofemployees gt 10) or (address1_city eq 'Bergen' and numberofemployees le 40))`);
    assert.deepEqual(names(r.value), [`${tag}-02`, `${tag}-03`, `${tag}-04`]);
  });

  it("all comparison operators", async () => {
    const cases = [
      ["eq 30", [3]],
      ["ne 30", [1, 2, 4, 5, 6, 7]],
      ["gt 50", [6, 7]],
      ["ge 50", [5, 6, 7]],
      ["lt 30", [1, 2]],
      ["le 30", [1, 2, 3]],
    ];
    for (const [op, expected] of cases) {
      const r = await query(`${mine()} and numberofemployees ${op}`);
      assert.deepEqual(names(r.value), expected.map((i) => `${tag}-0${i}`), `numberofemployees ${op}`);
    }
    const money = await query(`${mine()} and revenue gt 5500.5`);
    assert.deepEqual(names(money.value), [`${tag}-06`, `${tag}-07`]);
    const bool = await query(`${mine()} and creditonhold eq true`);
    assert.deepEqual(names(bool.value), [`${tag}-03`, `${tag}-06`]);
  });

  it("null comparisons", async () => {
    let r = await query(`${mine()} and telephone1 eq null`);
    assert.deepEqual(names(r.value), [1, 3, 5, 7].map((i) => `${tag}-0${i}`));
    r = await query(`${mine()} and telephone1 ne null`);
    assert.deepEqual(names(r.value), [2, 4, 6].map((i) => `${tag}-0${i}`));
    r = await query(`${mine()} and _primarycontactid_value eq null`);
    assert.equal(r.value.length, 5);
  });

  it("lookup _x_value filter (bare and quoted GUID) and single-valued navigation path", async () => {
    let r = await query(`_primarycontactid_value eq ${graceId}`);
    assert.deepEqual(names(r.value), [`${tag}-01`, `${tag}-02`]);
    r = await query(`_primarycontactid_value eq '${graceId}'`);
    assert.deepEqual(names(r.value), [`${tag}-01`, `${tag}-02`]);
    r = await query(`primarycontactid/fullname eq 'Grace ${tag}'`);
    assert.deepEqual(names(r.value), [`${tag}-01`, `${tag}-02`]);
    // Rows whose contact is named Grace never match "ne 'Grace'" (rows without a contact are
    // left out of this assertion: OData and SQL join semantics differ for them).
    r = await query(`${mine()} and primarycontactid/firstname ne 'Grace'`);
    assert.ok(!names(r.value).includes(`${tag}-01`) && !names(r.value).includes(`${tag}-02`));
  });

  it("parameter aliases @p1/@p2 in $filter and $orderby", async () => {
    const r = await dwa.retrieveMultiple({
      collection: "accounts",
      select: ["name"],
      filter: "startswith(name,@p1) and numberofemployees gt @p2",
      orderBy: ["@p3 desc"],
      queryParams: [`@p1=${encodeURIComponent(`'${tag}'`)}`, "@p2=40", "@p3=numberofemployees"],
    });
    assert.deepEqual(names(r.value), [`${tag}-07`, `${tag}-06`, `${tag}-05`]);
  });

  it("multi-column $orderby (boolean desc, name asc)", async () => {
    const r = await dwa.retrieveMultiple({
      collection: "accounts",
      select: ["name", "creditonhold"],
      filter: mine(),
      orderBy: ["creditonhold desc", "name asc"],
    });
    assert.deepEqual(names(r.value), [3, 6, 1, 2, 4, 5, 7].map((i) => `${tag}-0${i}`));
  });

  it("collection-valued navigation of a record (filtered collection)", async () => {
    const r = await dwa.retrieve({
      collection: "contacts",
      key: graceId,
      navigationProperty: "account_primary_contact",
      select: ["name"],
    });
    assert.deepEqual(names(r.value).sort(), [`${tag}-01`, `${tag}-02`]);
  });

  it("count with a filter ($count=true) and without (/$count)", async () => {
    assert.equal(await dwa.count({ collection: "accounts", filter: mine() }), 7);
    assert.equal(await dwa.count({ collection: "accounts", filter: `${mine()} and numberofemployees gt 40` }), 3);

    const before = await dwa.count({ collection: "leads" });
    assert.equal(typeof before, "number");
    await pool([1, 2, 3], 3, (i) => dwa.create({ collection: "leads", data: { subject: `${tag} lead ${i}`, lastname: tag } }));
    const afterCount = await dwa.count({ collection: "leads" });
    assert.equal(afterCount, before + 3);
  });

  it("countAll", async () => {
    assert.equal(await dwa.countAll({ collection: "accounts", filter: mine(), select: ["accountid"] }), 7);
  });

  it("annotations on a collection: FormattedValue per row and totalrecordcount", async () => {
    const r = await dwa.retrieveMultiple({
      collection: "accounts",
      select: ["name", "revenue"],
      filter: mine(),
      orderBy: ["name asc"],
      count: true,
      includeAnnotations: "*",
    });
    assert.equal(r.value.length, 7);
    assert.match(String(r.value[0][`revenue${FV}`]), /1,000\.00/);
    assert.equal(r["@Microsoft.Dynamics.CRM.totalrecordcount"], 7);
    assert.equal(r["@Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded"], false);
  });
});

describe("paging beyond the 5,000-row page cap", () => {
  const tag = uniqueTag("pg");
  const TOTAL = 5200;
  let created;
  const filter = `startswith(name,'${tag}-')`;

  before(async () => {
    const t0 = Date.now();
    const rows = Array.from({ length: TOTAL }, (_, i) => ({ name: `${tag}-${String(i).padStart(5, "0")}`, numberofemployees: i }));
    created = await pool(rows, 16, (data) => retry429(() => dwa.create({ collection: "accounts", data })));
    const ms = Date.now() - t0;
    assert.ok(ms < 60_000, `creating ${TOTAL} accounts took ${ms} ms`);
    assert.equal(new Set(created).size, TOTAL);
  }, { timeout: 120_000 });

  it("the first page holds exactly 5,000 rows and a nextLink on the same base URL", async () => {
    const r = await dwa.retrieveMultiple({ collection: "accounts", select: ["accountid", "name"], filter });
    assert.equal(r.value.length, 5000);
    assert.equal(typeof r.oDataNextLink, "string");
    assert.ok(r.oDataNextLink.startsWith(server.apiRoot), `nextLink ${r.oDataNextLink} must start with ${server.apiRoot}`);
    assert.match(r.oDataNextLink, /(\$|%24)skiptoken=/);
    const r2 = await dwa.retrieveMultiple({ collection: "accounts", select: ["accountid", "name"], filter }, r.oDataNextLink);
    assert.equal(r2.value.length, TOTAL - 5000);
    assert.equal(r2.oDataNextLink, undefined);
    const all = new Set([...r.value, ...r2.value].map((x) => x.accountid));
    assert.equal(all.size, TOTAL, "pages overlap or miss rows");
  });

  it("retrieveAll follows nextLinks and returns every row once", async () => {
    const r = await dwa.retrieveAll({ collection: "accounts", select: ["accountid"], filter });
    assert.equal(r.value.length, TOTAL);
    const got = new Set(r.value.map((x) => x.accountid));
    assert.equal(got.size, TOTAL);
    for (const id of created) assert.ok(got.has(id), `missing ${id}`);
  });

  it("retrieveAll with maxPageSize 1000 and an $orderby keeps order across pages", async () => {
    const r = await dwa.retrieveAll({
      collection: "accounts",
      select: ["accountid", "numberofemployees"],
      filter,
      orderBy: ["numberofemployees desc"],
      maxPageSize: 1000,
    });
    assert.equal(r.value.length, TOTAL);
    const nums = r.value.map((x) => x.numberofemployees);
    for (let i = 1; i < nums.length; i++) assert.ok(nums[i - 1] > nums[i], `order broken at ${i}: ${nums[i - 1]}, ${nums[i]}`);
  });

  it("countAll counts past 5,000; @odata.count is capped at 5,000", async () => {
    assert.equal(await dwa.countAll({ collection: "accounts", filter, select: ["accountid"] }), TOTAL);
    const r = await dwa.retrieveMultiple({ collection: "accounts", select: ["accountid"], filter, count: true, maxPageSize: 10 });
    assert.equal(r.value.length, 10);
    assert.equal(r.oDataCount, 5000);
  });

  it("$top above 5,000 never returns more than $top rows", async () => {
    const r = await dwa.retrieveMultiple({ collection: "accounts", select: ["accountid"], filter, top: 5100 });
    // $top > 5000: Dataverse returns at most 5,000 per page; either way no row beyond 5,100.
    assert.ok(r.value.length <= 5100);
    assert.ok(r.value.length >= 5000);
  });
});

describe("update", () => {
  const tag = uniqueTag("up");
  let id;

  before(async () => {
    id = await dwa.create({ collection: "accounts", data: { name: `${tag} original`, telephone1: "111" } });
  });

  it("update (If-Match: *) returns true and changes the etag", async () => {
    const before = await dwa.retrieve({ collection: "accounts", key: id, select: ["name"] });
    const ok = await dwa.update({ collection: "accounts", key: id, data: { name: `${tag} renamed`, numberofemployees: 9 } });
    assert.equal(ok, true);
    const after = await dwa.retrieve({ collection: "accounts", key: id, select: ["name", "telephone1", "numberofemployees"] });
    assert.equal(after.name, `${tag} renamed`);
    assert.equal(after.numberofemployees, 9);
    assert.equal(after.telephone1, "111", "columns not sent are left alone");
    assert.notEqual(after["@odata.etag"], before["@odata.etag"]);
  });

  it("update with a matching etag succeeds; with a stale etag DWA returns false (412)", async () => {
    const cur = await dwa.retrieve({ collection: "accounts", key: id, select: ["name"] });
    const etag = cur["@odata.etag"];
    assert.equal(await dwa.update({ collection: "accounts", key: id, data: { telephone1: "222" }, ifmatch: etag }), true);
    assert.equal(await dwa.update({ collection: "accounts", key: id, data: { telephone1: "333" }, ifmatch: etag }), false);
    const now = await dwa.retrieve({ collection: "accounts", key: id, select: ["telephone1"] });
    assert.equal(now.telephone1, "222", "the stale update must not apply");
  });

  it("update of a missing record rejects with 404", async () => {
    await rejectsWith(dwa.update({ collection: "accounts", key: randomUUID(), data: { name: "x" } }), 404, NOT_FOUND);
  });

  it("update with returnRepresentation returns the updated record", async () => {
    const rec = await dwa.update({
      collection: "accounts",
      key: id,
      data: { name: `${tag} rep` },
      returnRepresentation: true,
      select: ["name"],
    });
    assert.equal(rec.name, `${tag} rep`);
    assert.equal(rec.accountid, id);
  });

  it("updateSingleProperty, single-property retrieve and delete", async () => {
    await dwa.updateSingleProperty({ collection: "accounts", key: id, fieldValuePair: { telephone1: "555-1234" } });
    const v = await dwa.retrieve({ collection: "accounts", key: id, navigationProperty: "telephone1" });
    assert.equal(v.value, "555-1234");
    assert.match(String(v.oDataContext), /\$metadata#/);

    await dwa.updateSingleProperty({ collection: "accounts", key: id, fieldValuePair: { numberofemployees: 77 } });
    const n = await dwa.retrieve({ collection: "accounts", key: id, navigationProperty: "numberofemployees" });
    assert.equal(n.value, 77);

    assert.equal(await dwa.deleteRecord({ collection: "accounts", key: id, property: "telephone1" }), true);
    const rec = await dwa.retrieve({ collection: "accounts", key: id, select: ["telephone1", "numberofemployees"] });
    assert.equal(rec.telephone1, null);
    assert.equal(rec.numberofemployees, 77);
  });
});

describe("upsert", () => {
  const tag = uniqueTag("us");

  it("by GUID: create path, then update path (same id)", async () => {
    const id = randomUUID();
    const r1 = await dwa.upsert({ collection: "accounts", key: id, data: { name: `${tag} created` } });
    assert.equal(r1, id, "DWA returns the id from OData-EntityId");
    let rec = await dwa.retrieve({ collection: "accounts", key: id, select: ["name"] });
    assert.equal(rec.name, `${tag} created`);

    const r2 = await dwa.upsert({ collection: "accounts", key: id, data: { name: `${tag} updated` } });
    assert.equal(r2, id);
    rec = await dwa.retrieve({ collection: "accounts", key: id, select: ["name"] });
    assert.equal(rec.name, `${tag} updated`);
  });

  it("ifnonematch '*' (create only): existing → null and unchanged; missing → created", async () => {
    const id = await dwa.create({ collection: "accounts", data: { name: `${tag} keep` } });
    const r = await dwa.upsert({ collection: "accounts", key: id, data: { name: `${tag} clobbered` }, ifnonematch: "*" });
    assert.equal(r, null, "412 on create-only upsert of an existing record");
    const rec = await dwa.retrieve({ collection: "accounts", key: id, select: ["name"] });
    assert.equal(rec.name, `${tag} keep`);

    const fresh = randomUUID();
    const r2 = await dwa.upsert({ collection: "accounts", key: fresh, data: { name: `${tag} fresh` }, ifnonematch: "*" });
    assert.equal(r2, fresh);
  });

  it("ifmatch '*' (update only): missing → null and nothing created", async () => {
    const id = randomUUID();
    const r = await dwa.upsert({ collection: "accounts", key: id, data: { name: `${tag} ghost` }, ifmatch: "*" });
    assert.equal(r, null);
    await rejectsWith(dwa.retrieve({ collection: "accounts", key: id }), 404, NOT_FOUND);
  });

  it("returnRepresentation on upsert returns the record", async () => {
    const id = randomUUID();
    const rec = await dwa.upsert({
      collection: "accounts",
      key: id,
      data: { name: `${tag} rep` },
      returnRepresentation: true,
      select: ["name"],
    });
    assert.equal(rec.accountid, id);
    assert.equal(rec.name, `${tag} rep`);
  });

  it("by alternate key on a custom table: creates with the key value from the URL, then updates", async () => {
    const code = `K-${tag}`;
    await dwa.upsert({ collection: "new_projects", key: `new_code='${code}'`, data: { new_name: `${tag} v1`, new_stage: 1 } });
    let rec = await dwa.retrieve({ collection: "new_projects", key: `new_code='${code}'`, select: ["new_name", "new_code", "new_stage"] });
    assert.equal(rec.new_code, code, "key value copied from the URL on create (§5.4)");
    assert.equal(rec.new_name, `${tag} v1`);
    const id = rec.new_projectid;
    assert.match(id, GUID_RE);

    await dwa.upsert({ collection: "new_projects", key: `new_code='${code}'`, data: { new_name: `${tag} v2`, new_stage: 3 } });
    rec = await dwa.retrieve({ collection: "new_projects", key: `new_code='${code}'`, select: ["new_name", "new_stage"] });
    assert.equal(rec.new_projectid, id, "the update path keeps the same row");
    assert.equal(rec.new_name, `${tag} v2`);
    assert.equal(rec.new_stage, 3);
    assert.equal(await dwa.count({ collection: "new_projects", filter: `new_code eq '${code}'` }), 1);
  });

  it("by alternate key with a quote in the value", async () => {
    const code = `O''Brien-${tag}`; // OData doubles the quote inside the literal
    await dwa.upsert({ collection: "new_projects", key: `new_code='${code}'`, data: { new_name: "quoted" } });
    const rec = await dwa.retrieve({ collection: "new_projects", key: `new_code='${code}'`, select: ["new_code"] });
    assert.equal(rec.new_code, `O'Brien-${tag}`);
  });

  it("by the account alternate key (accountnumber) from the schema fixture", async () => {
    const num = `AN-${tag}`;
    await dwa.upsert({ collection: "accounts", key: `accountnumber='${num}'`, data: { name: `${tag} by number` } });
    const rec = await dwa.retrieve({ collection: "accounts", key: `accountnumber='${num}'`, select: ["name", "accountnumber"] });
    assert.equal(rec.name, `${tag} by number`);
    assert.equal(rec.accountnumber, num);
    // A second create with the same key value violates the key.
    await rejectsWith(dwa.create({ collection: "accounts", data: { name: "dup", accountnumber: num } }), 412);
  });

  it("by a composite alternate key", async () => {
    const region = `R${tag}`.slice(0, 20);
    await dwa.upsert({ collection: "new_assignments", key: `new_region='${region}',new_seq=7`, data: { new_name: "seven", new_hours: 1.25 } });
    await dwa.upsert({ collection: "new_assignments", key: `new_region='${region}',new_seq=8`, data: { new_name: "eight" } });
    const seven = await dwa.retrieve({ collection: "new_assignments", key: `new_region='${region}',new_seq=7`, select: ["new_name", "new_region", "new_seq", "new_hours"] });
    assert.equal(seven.new_name, "seven");
    assert.equal(seven.new_region, region);
    assert.equal(seven.new_seq, 7);
    assert.equal(seven.new_hours, 1.25);
    await dwa.upsert({ collection: "new_assignments", key: `new_region='${region}',new_seq=7`, data: { new_name: "seven v2" } });
    assert.equal(await dwa.count({ collection: "new_assignments", filter: `new_region eq '${region}'` }), 2);
    const again = await dwa.retrieve({ collection: "new_assignments", key: `new_seq=7,new_region='${region}'`, select: ["new_name"] });
    assert.equal(again.new_name, "seven v2", "key parts in any order");
    await rejectsWith(dwa.retrieve({ collection: "new_assignments", key: `new_region='${region}',new_seq=9` }), 404);
  });
});

describe("deleteRecord", () => {
  const tag = uniqueTag("del");

  it("delete returns true and the record is gone (404 0x80040217)", async () => {
    const id = await dwa.create({ collection: "accounts", data: { name: `${tag} doomed` } });
    assert.equal(await dwa.deleteRecord({ collection: "accounts", key: id }), true);
    await rejectsWith(dwa.retrieve({ collection: "accounts", key: id }), 404, NOT_FOUND);
    await rejectsWith(dwa.deleteRecord({ collection: "accounts", key: id }), 404, NOT_FOUND);
  });

  it("delete with a stale etag returns false; with the current etag succeeds", async () => {
    const id = await dwa.create({ collection: "accounts", data: { name: `${tag} guarded` } });
    const v1 = (await dwa.retrieve({ collection: "accounts", key: id, select: ["name"] }))["@odata.etag"];
    await dwa.update({ collection: "accounts", key: id, data: { name: `${tag} guarded 2` } });
    assert.equal(await dwa.deleteRecord({ collection: "accounts", key: id, ifmatch: v1 }), false);
    const cur = await dwa.retrieve({ collection: "accounts", key: id, select: ["name"] });
    assert.equal(await dwa.deleteRecord({ collection: "accounts", key: id, ifmatch: cur["@odata.etag"] }), true);
    await rejectsWith(dwa.retrieve({ collection: "accounts", key: id }), 404);
  });

  it("delete by alternate key", async () => {
    const code = `D-${tag}`;
    await dwa.create({ collection: "new_projects", data: { new_name: "to delete", new_code: code } });
    assert.equal(await dwa.deleteRecord({ collection: "new_projects", key: `new_code='${code}'` }), true);
    await rejectsWith(dwa.retrieve({ collection: "new_projects", key: `new_code='${code}'` }), 404);
  });
});

describe("@odata.bind", () => {
  const tag = uniqueTag("bind");
  let c1;
  let c2;
  let parentNum;
  let parentId;
  let acct;

  before(async () => {
    [c1, c2] = await pool(["One", "Two"], 2, (f) => dwa.create({ collection: "contacts", data: { firstname: f, lastname: tag } }));
    parentNum = `PN-${tag}`;
    parentId = await dwa.create({ collection: "accounts", data: { name: `${tag} parent`, accountnumber: parentNum } });
  });

  const lookups = () =>
    dwa.retrieve({
      collection: "accounts",
      key: acct,
      select: ["_primarycontactid_value", "_parentaccountid_value"],
      includeAnnotations: "*",
    });

  it("relative with leading slash (as DWA sends it)", async () => {
    acct = await dwa.create({ collection: "accounts", data: { name: `${tag} child`, "primarycontactid@odata.bind": `/contacts(${c1})` } });
    assert.equal((await lookups())._primarycontactid_value, c1);
  });

  it("absolute URL", async () => {
    assert.equal(await dwa.update({ collection: "accounts", key: acct, data: { "primarycontactid@odata.bind": `${server.apiRoot}contacts(${c2})` } }), true);
    assert.equal((await lookups())._primarycontactid_value, c2);
  });

  it("by alternate key", async () => {
    await dwa.update({ collection: "accounts", key: acct, data: { "parentaccountid@odata.bind": `/accounts(accountnumber='${parentNum}')` } });
    const r = await lookups();
    assert.equal(r._parentaccountid_value, parentId);
    assert.equal(r[`_parentaccountid_value${LOGICAL}`], "account");
    assert.equal(r[`_parentaccountid_value${FV}`], `${tag} parent`);
  });

  it("null clears (nav@odata.bind: null and nav: null)", async () => {
    await dwa.update({ collection: "accounts", key: acct, data: { "primarycontactid@odata.bind": null } });
    let r = await lookups();
    assert.equal(r._primarycontactid_value, null);
    assert.equal(r._parentaccountid_value, parentId, "other lookups untouched");
    await dwa.update({ collection: "accounts", key: acct, data: { parentaccountid: null } });
    r = await lookups();
    assert.equal(r._parentaccountid_value, null);
  });

  it("polymorphic customer lookup: account target, then contact target", async () => {
    const c = await dwa.create({
      collection: "contacts",
      data: { firstname: "Poly", lastname: tag, "parentcustomerid_account@odata.bind": `/accounts(${parentId})` },
    });
    const get = () => dwa.retrieve({ collection: "contacts", key: c, select: ["_parentcustomerid_value"], includeAnnotations: "*" });
    let r = await get();
    assert.equal(r._parentcustomerid_value, parentId);
    assert.equal(r[`_parentcustomerid_value${LOGICAL}`], "account");
    assert.equal(r[`_parentcustomerid_value${NAVPROP}`], "parentcustomerid_account");

    await dwa.update({ collection: "contacts", key: c, data: { "parentcustomerid_contact@odata.bind": `/contacts(${c1})` } });
    r = await get();
    assert.equal(r._parentcustomerid_value, c1);
    assert.equal(r[`_parentcustomerid_value${LOGICAL}`], "contact");
    assert.equal(r[`_parentcustomerid_value${NAVPROP}`], "parentcustomerid_contact");

    const viaAccount = await dwa.retrieve({ collection: "accounts", key: parentId, navigationProperty: "contact_customer_accounts", select: ["contactid"] });
    assert.ok(!viaAccount.value.some((x) => x.contactid === c), "switching the target unlinks the account side");
  });
});

describe("deep insert", () => {
  const tag = uniqueTag("deep");

  it("creates the record, a single-valued related record and collections in one request", async () => {
    const id = await dwa.create({
      collection: "accounts",
      data: {
        name: `${tag} deep`,
        primarycontactid: { firstname: "Prime", lastname: tag },
        contact_customer_accounts: [
          { firstname: "Kid1", lastname: tag },
          { firstname: "Kid2", lastname: tag },
        ],
        opportunity_customer_accounts: [{ name: `${tag} opp`, estimatedvalue: 1500 }],
      },
    });
    assert.match(id, GUID_RE);
    const a = await dwa.retrieve({
      collection: "accounts",
      key: id,
      select: ["name", "_primarycontactid_value"],
      expand: [
        { property: "primarycontactid", select: ["firstname", "lastname"] },
        { property: "contact_customer_accounts", select: ["firstname"], orderBy: ["firstname asc"] },
        { property: "opportunity_customer_accounts", select: ["name", "estimatedvalue"] },
      ],
    });
    assert.equal(a.name, `${tag} deep`);
    assert.equal(a.primarycontactid.firstname, "Prime");
    assert.equal(a.primarycontactid.lastname, tag);
    assert.equal(a._primarycontactid_value, a.primarycontactid.contactid);
    assert.deepEqual(a.contact_customer_accounts.map((c) => c.firstname), ["Kid1", "Kid2"]);
    assert.equal(a.opportunity_customer_accounts.length, 1);
    assert.equal(a.opportunity_customer_accounts[0].name, `${tag} opp`);
    assert.equal(a.opportunity_customer_accounts[0].estimatedvalue, 1500);
    const kids = await dwa.retrieveMultiple({ collection: "contacts", select: ["firstname"], filter: `_parentcustomerid_value eq ${id}` });
    assert.equal(kids.value.length, 2);
  });

  it("a failing nested record rolls back the whole deep insert", async () => {
    await assert.rejects(
      dwa.create({
        collection: "accounts",
        data: {
          name: `${tag} rollback`,
          contact_customer_accounts: [{ firstname: "Ok", lastname: tag }, { firstname: "Bad", nosuchcolumn: 1 }],
        },
      }),
      (e) => e.status === 400
    );
    assert.equal(await dwa.count({ collection: "accounts", filter: `name eq '${tag} rollback'` }), 0);
    assert.equal(await dwa.count({ collection: "contacts", filter: `firstname eq 'Ok' and lastname eq '${tag}'` }), 0);
  });
});

describe("functions and metadata", () => {
  it("WhoAmI returns the caller's ids", async () => {
    const who = await dwa.callFunction("WhoAmI");
    assert.match(who.UserId, GUID_RE);
    assert.match(who.BusinessUnitId, GUID_RE);
    assert.match(who.OrganizationId, GUID_RE);
    const me = await dwa.retrieve({ collection: "systemusers", key: who.UserId, select: ["fullname", "_businessunitid_value"] });
    assert.equal(me.systemuserid, who.UserId);
    assert.equal(me._businessunitid_value, who.BusinessUnitId);
    const bu = await dwa.retrieve({ collection: "businessunits", key: who.BusinessUnitId, select: ["name"] });
    assert.equal(bu.businessunitid, who.BusinessUnitId);
    const org = await dwa.retrieve({ collection: "organizations", key: who.OrganizationId, select: ["name"] });
    assert.equal(org.organizationid, who.OrganizationId);
  });

  it("RetrieveVersion returns a 9.x version string", async () => {
    const r = await dwa.callFunction({ name: "RetrieveVersion" });
    assert.match(String(r.Version), /^9\.\d+\.\d+\.\d+$/);
  });

  it("EntityDefinitions lists tables with their entity set names", async () => {
    const r = await dwa.retrieveEntities({ select: ["LogicalName", "EntitySetName"] });
    const sets = Object.fromEntries(r.value.map((e) => [e.LogicalName, e.EntitySetName]));
    assert.equal(sets.account, "accounts");
    assert.equal(sets.contact, "contacts");
    assert.equal(sets.opportunity, "opportunities");
    assert.equal(sets.systemuser, "systemusers");
    assert.equal(sets.new_project, "new_projects");
    assert.equal(sets.new_assignment, "new_assignments");
    assert.equal(r.oDataNextLink, undefined, "EntityDefinitions is not paged");
  });

  it("EntityDefinitions(LogicalName='account') and by MetadataId", async () => {
    const e = await dwa.retrieveEntity({
      key: "LogicalName='account'",
      select: ["LogicalName", "SchemaName", "EntitySetName", "PrimaryIdAttribute", "PrimaryNameAttribute"],
    });
    assert.equal(e.LogicalName, "account");
    assert.equal(e.SchemaName, "Account");
    assert.equal(e.EntitySetName, "accounts");
    assert.equal(e.PrimaryIdAttribute, "accountid");
    assert.equal(e.PrimaryNameAttribute, "name");
    assert.match(e.MetadataId, GUID_RE, "MetadataId is always returned");
    const byId = await dwa.retrieveEntity({ key: e.MetadataId, select: ["LogicalName"] });
    assert.equal(byId.LogicalName, "account");

    const custom = await dwa.retrieveEntity({ key: "LogicalName='new_project'", select: ["PrimaryIdAttribute", "PrimaryNameAttribute", "IsCustomEntity"] });
    assert.equal(custom.PrimaryIdAttribute, "new_projectid");
    assert.equal(custom.PrimaryNameAttribute, "new_name");
    assert.equal(custom.IsCustomEntity, true);
  });

  it("EntityDefinitions(...)/Attributes lists typed columns", async () => {
    const r = await dwa.retrieveAttributes({ entityKey: "LogicalName='account'", select: ["LogicalName", "AttributeType"] });
    const types = Object.fromEntries(r.value.map((a) => [a.LogicalName, a.AttributeType]));
    assert.equal(types.accountid, "Uniqueidentifier");
    assert.equal(types.name, "String");
    assert.equal(types.description, "Memo");
    assert.equal(types.revenue, "Money");
    assert.equal(types.numberofemployees, "Integer");
    assert.equal(types.industrycode, "Picklist");
    assert.equal(types.creditonhold, "Boolean");
    assert.equal(types.primarycontactid, "Lookup");
    assert.equal(types.createdon, "DateTime");

    const p = await dwa.retrieveAttributes({ entityKey: "LogicalName='new_project'", select: ["LogicalName", "AttributeType"] });
    const pt = Object.fromEntries(p.value.map((a) => [a.LogicalName, a.AttributeType]));
    assert.equal(pt.new_code, "String");
    assert.equal(pt.new_accountid, "Lookup");
    assert.equal(pt.new_stage, "Picklist");
    assert.equal(pt.new_budget, "Money");
    assert.equal(pt.new_start, "DateTime");
  });

  it("EntityDefinitions(...)/Keys shows the alternate keys from the schema fixture", async () => {
    const r = await dwa.retrieve({ collection: "EntityDefinitions", key: "LogicalName='account'", navigationProperty: "Keys" });
    const key = r.value.find((k) => k.LogicalName === "new_accountnumber_key");
    assert.ok(key, `keys: ${JSON.stringify(r.value)}`);
    assert.deepEqual(key.KeyAttributes, ["accountnumber"]);

    const c = await dwa.retrieve({ collection: "EntityDefinitions", key: "LogicalName='new_assignment'", navigationProperty: "Keys" });
    const ck = c.value.find((k) => k.LogicalName === "new_region_seq_key");
    assert.ok(ck);
    assert.deepEqual(ck.KeyAttributes, ["new_region", "new_seq"]);
  });

  it("retrieveCsdlMetadata returns the CSDL document", async () => {
    const xml = await dwa.retrieveCsdlMetadata();
    assert.equal(typeof xml, "string");
    assert.match(xml, /<edmx:Edmx[^>]*Version="4\.0"/);
    assert.match(xml, /Namespace="Microsoft\.Dynamics\.CRM"/);
    assert.match(xml, /<EntityType Name="account"/);
    assert.match(xml, /<EntityType Name="new_project"/);
    assert.match(xml, /<EntityContainer Name="System"/);
    assert.match(xml, /<EntitySet Name="accounts"/);
    assert.match(xml, /<NavigationProperty Name="primarycontactid"/);
  });
});
