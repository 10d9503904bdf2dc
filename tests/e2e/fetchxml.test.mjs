// FetchXML queries (GET {set}?fetchXml=…) through dynamics-web-api's fetch/fetchAll and raw HTTP:
// columns and null omission, lookups and their annotations, link-entities with the _x002e_ names,
// filters, paging with the paging cookie, aggregates, and bad input.
// Wire facts: shared/reference/dataverse-webapi.md §3.4, §4.7, §13.2.
//
// DWA sends fetchXml in the URL and switches to $batch above 2,000 characters, so the queries
// sent through DWA here are kept short (single quotes are not percent-encoded).

import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer, uniqueTag, assertODataError, q, GUID_RE, ETAG_RE } from "./helpers.mjs";

let server;
let dwa;
const tag = uniqueTag("fx");
const ids = {};

// <fetch …><entity name='account'>BODY<filter>tag filter</filter></entity></fetch>
const accounts = (body, fetchAttrs = "") =>
  `<fetch${fetchAttrs}><entity name='account'>${body}` +
  `<filter><condition attribute='name' operator='begins-with' value='${tag}'/></filter></entity></fetch>`;

before(async () => {
  server = await startServer();
  dwa = await server.dwa({ includeAnnotations: "*" });
  const acct = (name, data = {}) => dwa.create({ collection: "accounts", data: { name: `${tag} ${name}`, ...data } });
  ids.alpha = await acct("Alpha", { numberofemployees: 10, revenue: 100, address1_city: "Oslo", industrycode: 7 });
  ids.beta = await acct("Beta", { numberofemployees: 20, revenue: 200, address1_city: "Oslo", industrycode: 7 });
  ids.gamma = await acct("Gamma", { numberofemployees: 30, revenue: 300, address1_city: "Bergen" });
  ids.delta = await acct("Delta", { revenue: 50 });
  ids.epsilon = await acct("Epsilon", { numberofemployees: 5, address1_city: "Oslo" });
  const contact = (first, last, account) =>
    dwa.create({
      collection: "contacts",
      data: { firstname: first, lastname: last, "parentcustomerid_account@odata.bind": `accounts(${account})` },
    });
  ids.ann = await contact("Ann", "Lee", ids.alpha);
  ids.bob = await contact("Bob", "Ray", ids.beta);
  ids.cid = await contact("Cid", "Moe", ids.alpha);
  await dwa.update({ collection: "accounts", key: ids.alpha, data: { "primarycontactid@odata.bind": `contacts(${ids.ann})` } });
  await dwa.update({ collection: "accounts", key: ids.beta, data: { "primarycontactid@odata.bind": `contacts(${ids.bob})` } });
});

after(async () => {
  await server?.cleanup();
});

const names = (rows) => rows.map((r) => r.name.slice(tag.length + 1));

describe("FetchXML columns and annotations", () => {
  it("returns the selected columns with the primary id and etag, omitting null values", async () => {
    const r = await dwa.fetch({
      collection: "accounts",
      fetchXml: accounts("<attribute name='name'/><attribute name='revenue'/><order attribute='name'/>"),
    });
    assert.match(r.oDataContext, /\$metadata#accounts\(name,revenue,accountid\)$/);
    assert.deepEqual(names(r.value), ["Alpha", "Beta", "Delta", "Epsilon", "Gamma"]);
    const alpha = r.value[0];
    assert.equal(alpha.accountid, ids.alpha);
    assert.match(alpha["@odata.etag"], ETAG_RE);
    assert.equal(alpha.revenue, 100);
    assert.equal(alpha["revenue@OData.Community.Display.V1.FormattedValue"], "$100.00");
    const epsilon = r.value[3];
    assert.ok(!("revenue" in epsilon), "a null column is omitted from FetchXML results");
    assert.equal(r.PagingInfo, undefined, "one page: no paging cookie");
  });

  it("writes lookups as _x_value with their annotations", async () => {
    const r = await dwa.fetch({
      collection: "accounts",
      fetchXml: accounts("<attribute name='primarycontactid'/><attribute name='ownerid'/><order attribute='name'/>"),
    });
    const alpha = r.value[0];
    assert.equal(alpha._primarycontactid_value, ids.ann);
    assert.equal(alpha["_primarycontactid_value@Microsoft.Dynamics.CRM.lookuplogicalname"], "contact");
    assert.equal(alpha._primarycontactid_value_LogicalName, "contact");
    assert.equal(alpha["_primarycontactid_value@Microsoft.Dynamics.CRM.associatednavigationproperty"], "primarycontactid");
    assert.equal(alpha["_primarycontactid_value@OData.Community.Display.V1.FormattedValue"], "Ann Lee");
    assert.equal(alpha["_ownerid_value@Microsoft.Dynamics.CRM.lookuplogicalname"], "systemuser");
    assert.ok(!("_primarycontactid_value" in r.value[2]), "Delta has no primary contact");
  });

  it("names link-entity columns {alias}_x002e_{attribute}, with AttributeName annotations", async () => {
    const fetchXml = accounts(
      "<attribute name='name'/><order attribute='name'/>" +
        "<link-entity name='contact' from='contactid' to='primarycontactid' alias='pc'>" +
        "<attribute name='firstname'/><attribute name='parentcustomerid'/></link-entity>"
    );
    const raw = await server.api("GET", `accounts?fetchXml=${q(fetchXml)}`, {
      headers: { Prefer: 'odata.include-annotations="*"' },
    });
    assert.equal(raw.status, 200, raw.text);
    assert.equal(raw.json.value.length, 2, "inner join: accounts with a primary contact");
    const row = raw.json.value[0];
    assert.equal(row.pc_x002e_firstname, "Ann");
    assert.equal(row["pc_x002e_firstname@OData.Community.Display.V1.AttributeName"], "firstname");
    assert.equal(row.pc_x002e_parentcustomerid, ids.alpha);
    assert.equal(row["pc_x002e_parentcustomerid@Microsoft.Dynamics.CRM.lookuplogicalname"], "account");
    assert.equal(row["pc_x002e_parentcustomerid@OData.Community.Display.V1.FormattedValue"], `${tag} Alpha`);
    // Without annotations requested, only the values.
    const plain = await server.api("GET", `accounts?fetchXml=${q(fetchXml)}`);
    assert.deepEqual(Object.keys(plain.json.value[1]).sort(), ["@odata.etag", "accountid", "name", "pc_x002e_firstname", "pc_x002e_parentcustomerid"]);

    // DWA groups aliased values under the alias.
    const r = await dwa.fetch({ collection: "accounts", fetchXml });
    assert.equal(r.value[1].pc.firstname, "Bob");
  });

  it("keeps unmatched rows of an outer link, and prefixes unaliased links with their name", async () => {
    const r = await dwa.fetch({
      collection: "accounts",
      fetchXml: accounts(
        "<attribute name='name'/><order attribute='name'/>" +
          "<link-entity name='contact' from='contactid' to='primarycontactid' link-type='outer'>" +
          "<attribute name='lastname'/></link-entity>"
      ),
    });
    assert.deepEqual(names(r.value), ["Alpha", "Beta", "Delta", "Epsilon", "Gamma"]);
    assert.deepEqual(r.value.map((v) => v.contact1_x002e_lastname ?? null), ["Lee", "Ray", null, null, null]);
    // Outer link + null condition: accounts without a primary contact.
    const none = await dwa.fetch({
      collection: "accounts",
      fetchXml:
        `<fetch><entity name='account'><attribute name='name'/><order attribute='name'/>` +
        `<link-entity name='contact' from='contactid' to='primarycontactid' link-type='outer' alias='c'/>` +
        `<filter><condition attribute='name' operator='begins-with' value='${tag}'/>` +
        `<condition entityname='c' attribute='contactid' operator='null'/></filter></entity></fetch>`,
    });
    assert.deepEqual(names(none.value), ["Delta", "Epsilon", "Gamma"]);
  });
});

describe("FetchXML filters", () => {
  const run = async (conditions, type = "and") => {
    const r = await dwa.fetch({
      collection: "accounts",
      fetchXml: accounts(`<attribute name='name'/><order attribute='name'/><filter type='${type}'>${conditions}</filter>`),
    });
    return names(r.value);
  };

  it("nests and/or filters", async () => {
    assert.deepEqual(
      await run(
        "<condition attribute='address1_city' operator='eq' value='Oslo'/><filter type='or'>" +
          "<condition attribute='numberofemployees' operator='ge' value='20'/>" +
          "<condition attribute='numberofemployees' operator='lt' value='8'/></filter>"
      ),
      ["Beta", "Epsilon"]
    );
    assert.deepEqual(
      await run(
        "<condition attribute='revenue' operator='gt' value='250'/><condition attribute='numberofemployees' operator='null'/>",
        "or"
      ),
      ["Delta", "Gamma"]
    );
  });

  it("supports in, not-in, between, like, null and not-null", async () => {
    assert.deepEqual(
      await run(`<condition attribute='name' operator='in'><value>${tag} Beta</value><value>${tag} gamma</value></condition>`),
      ["Beta", "Gamma"]
    );
    assert.deepEqual(
      await run("<condition attribute='numberofemployees' operator='not-in'><value>10</value><value>30</value></condition>"),
      ["Beta", "Epsilon"]
    );
    assert.deepEqual(
      await run("<condition attribute='revenue' operator='between'><value>60</value><value>200</value></condition>"),
      ["Alpha", "Beta"]
    );
    assert.deepEqual(await run(`<condition attribute='name' operator='like' value='%a_pha'/>`), ["Alpha"]);
    assert.deepEqual(await run(`<condition attribute='name' operator='not-like' value='%a'/>`), ["Epsilon"]);
    assert.deepEqual(await run("<condition attribute='address1_city' operator='null'/>"), ["Delta"]);
    assert.deepEqual(await run("<condition attribute='revenue' operator='not-null'/>").then((n) => n.length), 4);
    assert.deepEqual(await run("<condition attribute='industrycode' operator='eq' value='7'/>"), ["Alpha", "Beta"]);
    assert.deepEqual(await run("<condition attribute='ownerid' operator='eq-userid'/>").then((n) => n.length), 5);
  });

  it("filters on related rows with link-type exists and any/not any", async () => {
    const exists = await dwa.fetch({
      collection: "accounts",
      fetchXml: accounts(
        "<attribute name='name'/><order attribute='name'/>" +
          "<link-entity name='contact' from='parentcustomerid' to='accountid' link-type='exists'>" +
          "<filter><condition attribute='firstname' operator='eq' value='Cid'/></filter></link-entity>"
      ),
    });
    assert.deepEqual(names(exists.value), ["Alpha"]);
    const notAny = await dwa.fetch({
      collection: "accounts",
      fetchXml: accounts(
        "<attribute name='name'/><order attribute='name'/><filter>" +
          "<link-entity name='contact' from='parentcustomerid' to='accountid' link-type='not any'/></filter>"
      ),
    });
    assert.deepEqual(names(notAny.value), ["Delta", "Epsilon", "Gamma"]);
  });
});

describe("FetchXML paging", () => {
  const ptag = uniqueTag("pg");
  const pageFetch = (extra = "") =>
    `<fetch count='4'${extra}><entity name='account'><attribute name='name'/><order attribute='name'/>` +
    `<filter><condition attribute='name' operator='begins-with' value='${ptag}'/></filter></entity></fetch>`;
  const expected = Array.from({ length: 11 }, (_, i) => `${ptag} P${String(i).padStart(2, "0")}`);

  before(async () => {
    // Created out of order, so that the name order is not the creation order.
    await server.createMany("accounts", [...expected].reverse().map((name) => ({ name })));
  });

  it("returns the cookie and morerecords on every page but the last", async () => {
    const first = await server.api("GET", `accounts?fetchXml=${q(pageFetch(" page='1'"))}`, {
      headers: { Prefer: 'odata.include-annotations="Microsoft.Dynamics.CRM.fetchxmlpagingcookie"' },
    });
    assert.equal(first.status, 200, first.text);
    const cookie = first.json["@Microsoft.Dynamics.CRM.fetchxmlpagingcookie"];
    assert.match(cookie, /^<cookie pagenumber="2" pagingcookie="%253ccookie%2520page%253d%25221%2522%253e.*" istracking="False" \/>$/);
    assert.equal(first.json["@Microsoft.Dynamics.CRM.morerecords"], true);
    const inner = decodeURIComponent(decodeURIComponent(/pagingcookie="([^"]*)"/.exec(cookie)[1]));
    assert.match(inner, /^<cookie page="1"><name last="[^"]*" first="[^"]*" \/><accountid last="\{[0-9A-F-]{36}\}" first="\{[0-9A-F-]{36}\}" \/><\/cookie>$/);

    // DWA's fetch: PagingInfo from the cookie; the last page has none.
    const pages = [];
    let request = { collection: "accounts", fetchXml: pageFetch() };
    for (let i = 0; i < 10; i++) {
      const r = await dwa.fetch(request);
      pages.push(r.value.map((v) => v.name));
      if (!r.PagingInfo) {
        assert.equal(r["@Microsoft.Dynamics.CRM.morerecords"], undefined, "no morerecords on the last page");
        break;
      }
      assert.equal(r.PagingInfo.nextPage, i + 2);
      request = { ...request, pageNumber: r.PagingInfo.nextPage, pagingCookie: r.PagingInfo.cookie };
    }
    assert.deepEqual(pages.map((p) => p.length), [4, 4, 3]);
    assert.deepEqual(pages.flat(), expected);
  });

  it("fetchAll loops over the pages and ends", async () => {
    const all = await dwa.fetchAll({ collection: "accounts", fetchXml: pageFetch() });
    assert.deepEqual(all.value.map((v) => v.name), expected);
    // Descending on the name, with a cookie per page.
    const desc = await dwa.fetchAll({ collection: "accounts", fetchXml: pageFetch().replace("<order attribute='name'/>", "<order attribute='name' descending='true'/>") });
    assert.deepEqual(desc.value.map((v) => v.name), [...expected].reverse());
  });

  it("pages by page number alone, and by Prefer: odata.maxpagesize without count", async () => {
    const third = await dwa.fetch({ collection: "accounts", fetchXml: pageFetch(" page='3'") });
    assert.deepEqual(third.value.map((v) => v.name), expected.slice(8));
    const noCount = pageFetch().replace(" count='4'", "");
    const sized = await server.api("GET", `accounts?fetchXml=${q(noCount)}`, {
      headers: { Prefer: 'odata.maxpagesize=5,odata.include-annotations="*"' },
    });
    assert.equal(sized.status, 200, sized.text);
    assert.equal(sized.json.value.length, 5);
    assert.equal(sized.json["@Microsoft.Dynamics.CRM.morerecords"], true);
    assert.match(sized.headers.get("preference-applied") ?? "", /odata\.maxpagesize=5/);
    const all = await dwa.fetchAll({ collection: "accounts", fetchXml: noCount, maxPageSize: 5 });
    assert.deepEqual(all.value.map((v) => v.name), expected);
  });

  it("counts the total with returntotalrecordcount", async () => {
    const r = await server.api("GET", `accounts?fetchXml=${q(pageFetch(" returntotalrecordcount='true'"))}`, {
      headers: { Prefer: 'odata.include-annotations="Microsoft.Dynamics.CRM.totalrecordcount,Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded"' },
    });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json["@Microsoft.Dynamics.CRM.totalrecordcount"], 11);
    assert.equal(r.json["@Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded"], false);
    assert.equal(r.json.value.length, 4);
    // $count=true combines with fetchXml.
    const counted = await server.api("GET", `accounts?fetchXml=${q(pageFetch())}&$count=true`);
    assert.equal(counted.status, 200, counted.text);
    assert.equal(counted.json["@odata.count"], 11);
  });

  it("top returns the first rows without paging", async () => {
    const r = await dwa.fetch({
      collection: "accounts",
      fetchXml: pageFetch().replace(" count='4'", " top='2'"),
    });
    assert.deepEqual(r.value.map((v) => v.name), expected.slice(0, 2));
    assert.equal(r.PagingInfo, undefined);
  });
});

describe("FetchXML aggregates", () => {
  const otag = uniqueTag("ag");
  before(async () => {
    const opp = (name, date, value, account) =>
      dwa.create({
        collection: "opportunities",
        data: { name: `${otag} ${name}`, estimatedclosedate: date, estimatedvalue: value, "parentaccountid@odata.bind": `accounts(${account})` },
      });
    await opp("a", "2023-01-15", 100, ids.alpha);
    await opp("b", "2023-02-20", 200, ids.alpha);
    await opp("c", "2023-02-28", 300, ids.beta);
    await opp("d", "2024-07-01", 400, ids.beta);
  });
  const opps = (body) =>
    `<fetch aggregate='true'><entity name='opportunity'>${body}` +
    `<filter><condition attribute='name' operator='begins-with' value='${otag}'/></filter></entity></fetch>`;

  it("counts, sums and averages", async () => {
    const r = await dwa.fetch({
      collection: "opportunities",
      fetchXml: opps(
        "<attribute name='opportunityid' alias='n' aggregate='count'/>" +
          "<attribute name='estimatedvalue' alias='total' aggregate='sum'/>" +
          "<attribute name='estimatedvalue' alias='mean' aggregate='avg'/>" +
          "<attribute name='estimatedvalue' alias='top' aggregate='max'/>"
      ),
    });
    assert.equal(r.value.length, 1);
    const row = r.value[0];
    assert.equal(row.n, 4);
    assert.equal(row.total, 1000);
    assert.equal(row.mean, 250);
    assert.equal(row.top, 400);
    assert.equal(row["total@OData.Community.Display.V1.FormattedValue"], "$1,000.00");
    assert.equal(row.n_Formatted, "4");
    assert.ok(!("@odata.etag" in row));
  });

  it("groups by a lookup, a link-entity column and a date part", async () => {
    const byAccount = await dwa.fetch({
      collection: "opportunities",
      fetchXml: opps(
        "<attribute name='parentaccountid' alias='account' groupby='true'/>" +
          "<attribute name='estimatedvalue' alias='total' aggregate='sum'/>" +
          "<link-entity name='account' from='accountid' to='parentaccountid' alias='a'>" +
          "<attribute name='name' alias='account_name' groupby='true'/></link-entity><order alias='total' descending='true'/>"
      ),
    });
    assert.deepEqual(
      byAccount.value.map((v) => [v.account, v.account_name, v.total]),
      [
        [ids.beta, `${tag} Beta`, 700],
        [ids.alpha, `${tag} Alpha`, 300],
      ]
    );
    assert.equal(byAccount.value[0]["account@Microsoft.Dynamics.CRM.lookuplogicalname"], "account");
    assert.equal(byAccount.value[0]["account@OData.Community.Display.V1.FormattedValue"], `${tag} Beta`);

    const byMonth = await dwa.fetch({
      collection: "opportunities",
      fetchXml: opps(
        "<attribute name='estimatedclosedate' alias='year' groupby='true' dategrouping='year'/>" +
          "<attribute name='estimatedclosedate' alias='month' groupby='true' dategrouping='month'/>" +
          "<attribute name='opportunityid' alias='n' aggregate='count'/><order alias='year'/><order alias='month'/>"
      ),
    });
    assert.deepEqual(
      byMonth.value.map((v) => [v.year, v.month, v.n]),
      [
        [2023, 1, 1],
        [2023, 2, 2],
        [2024, 7, 1],
      ]
    );
  });
});

describe("FetchXML bad input", () => {
  const bad = async (fetchXml, { set = "accounts", status = 400, code, extra = "" } = {}) => {
    const r = await server.api("GET", `${set}?fetchXml=${q(fetchXml)}${extra}`);
    return assertODataError(r, { status, code, context: fetchXml });
  };

  it("answers malformed XML, unknown names and a wrong entity with 400", async () => {
    const e1 = await bad("<fetch><entity name='account'><attribute name='name'></entity></fetch>", { code: "0x80060888" });
    assert.match(e1.message, /line 1/);
    const e2 = await bad("<fetch><entity name='account'><attribute name='nme'/></entity></fetch>", { code: "0x80041103" });
    assert.equal(e2.message, "'account' entity doesn't contain attribute with Name = 'nme' and NameMapping = 'Logical'.");
    await bad("<fetch><entity name='account'><filter><condition attribute='nme' operator='eq' value='x'/></filter></entity></fetch>", { code: "0x80041103" });
    await bad("<fetch><entity name='account'><link-entity name='nosuch' from='a' to='b'/></entity></fetch>", { code: "0x80041102" });
    const e3 = await bad("<fetch><entity name='contact'><attribute name='fullname'/></entity></fetch>");
    assert.match(e3.message, /contact/);
    await bad("<fetch><entity name='account'><filter><condition attribute='numberofemployees' operator='eq' value='many'/></filter></entity></fetch>");
    await bad("<fetch><entity name='account'><filter><condition attribute='name' operator='nope' value='x'/></filter></entity></fetch>");
    await bad("<fetch aggregate='true'><entity name='account'><attribute name='name' alias='s' aggregate='sum'/></entity></fetch>");
    await bad("<fetch><entity name='account'/></fetch>", { extra: "&$select=name" });
    await bad("not xml at all");
    await bad("<!DOCTYPE x><fetch/>");
    await bad("");
  });

  it("never answers 5xx to hostile queries", async () => {
    const hostile = [
      `<fetch><entity name='account'>${"<filter>".repeat(40)}${"</filter>".repeat(40)}</entity></fetch>`,
      `<fetch><entity name='account'>${"<link-entity name='account' from='accountid' to='parentaccountid' link-type='outer'/>".repeat(20)}</entity></fetch>`,
      `<fetch><entity name='account'><filter><condition attribute='name' operator='in'>${"<value>x</value>".repeat(1000)}</condition></filter></entity></fetch>`,
      "<fetch count='5000' page='999999'><entity name='account'/></fetch>",
      "<fetch page='2' paging-cookie='&lt;cookie page=\"1\"&gt;&lt;accountid last=\"garbage\" /&gt;&lt;/cookie&gt;'><entity name='account'/></fetch>",
      "<fetch><entity name='account'><order attribute='name'/><link-entity name='contact' from='contactid' to='primarycontactid'><filter><condition entityname='zz' attribute='x' operator='null'/></filter></link-entity></entity></fetch>",
    ];
    for (const fetchXml of hostile) {
      const r = await server.api("GET", `accounts?fetchXml=${q(fetchXml)}`);
      assert.ok(r.status < 500, `${r.status} ${r.text.slice(0, 300)} for ${fetchXml.slice(0, 200)}`);
      assert.ok(r.status === 200 || r.json?.error?.code, r.text.slice(0, 300));
    }
  });
});
