// $apply aggregation (GET {set}?$apply=…) with raw HTTP and dynamics-web-api's retrieveMultiple:
// groupby, aggregate, filter, lookup paths, $orderby/$top on the result, and bad input.
// Wire facts: shared/reference/dataverse-webapi.md §4.6.

import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer, uniqueTag, assertODataError, q } from "./helpers.mjs";

let server;
let dwa;
const tag = uniqueTag("ap");
const ids = {};
const mine = `filter(startswith(name,'${tag}'))`;

before(async () => {
  server = await startServer();
  dwa = await server.dwa();
  const acct = (name, data = {}) => dwa.create({ collection: "accounts", data: { name: `${tag} ${name}`, ...data } });
  ids.ann = await dwa.create({ collection: "contacts", data: { firstname: "Ann", lastname: "Lee" } });
  ids.bob = await dwa.create({ collection: "contacts", data: { firstname: "Bob", lastname: "Ray" } });
  const pc = (id) => ({ "primarycontactid@odata.bind": `contacts(${id})` });
  await acct("Alpha", { revenue: 100, numberofemployees: 10, address1_city: "Oslo", ...pc(ids.ann) });
  await acct("Beta", { revenue: 200, numberofemployees: 21, address1_city: "Oslo", ...pc(ids.ann) });
  await acct("Gamma", { revenue: 300, numberofemployees: 30, address1_city: "Bergen", ...pc(ids.bob) });
  await acct("Delta", { revenue: 50 });
});

after(async () => {
  await server?.cleanup();
});

const apply = (text, { extra = "", headers = {} } = {}) =>
  server.api("GET", `accounts?$apply=${q(text)}${extra}`, { headers });

describe("$apply", () => {
  it("groups with counts and sums", async () => {
    const r = await apply(`${mine}/groupby((address1_city),aggregate($count as count,revenue with sum as total))`, {
      extra: "&$orderby=address1_city",
    });
    assert.equal(r.status, 200, r.text);
    assert.match(r.json["@odata.context"], /\$metadata#accounts$/);
    // Null city first (ascending), then Bergen, Oslo; a null group value is omitted.
    assert.deepEqual(r.json.value, [
      { count: 1, total: 50 },
      { address1_city: "Bergen", count: 1, total: 300 },
      { address1_city: "Oslo", count: 2, total: 300 },
    ]);
  });

  it("aggregates without groups: average, min, max, countdistinct", async () => {
    const r = await apply(
      `${mine}/aggregate(revenue with average as avg,revenue with min as lo,revenue with max as hi,` +
        `address1_city with countdistinct as cities,$count as n)`,
      { headers: { Prefer: 'odata.include-annotations="OData.Community.Display.V1.FormattedValue"' } }
    );
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.value.length, 1);
    const row = r.json.value[0];
    assert.equal(row.avg, 162.5);
    assert.equal(row.lo, 50);
    assert.equal(row.hi, 300);
    assert.equal(row.cities, 2);
    assert.equal(row.n, 4);
    assert.equal(row["hi@OData.Community.Display.V1.FormattedValue"], "$300.00");
  });

  it("groups by a lookup and by a lookup path", async () => {
    const byId = await apply(`${mine}/groupby((_primarycontactid_value),aggregate($count as n))`, {
      headers: { Prefer: 'odata.include-annotations="*"' },
    });
    assert.equal(byId.status, 200, byId.text);
    const ann = byId.json.value.find((v) => v._primarycontactid_value === ids.ann);
    assert.equal(ann.n, 2);
    assert.equal(ann["_primarycontactid_value@Microsoft.Dynamics.CRM.lookuplogicalname"], "contact");
    assert.equal(ann["_primarycontactid_value@OData.Community.Display.V1.FormattedValue"], "Ann Lee");
    assert.equal(byId.json.value.length, 3, "Ann, Bob and no contact");

    const byName = await apply(`${mine}/groupby((primarycontactid/fullname),aggregate(revenue with sum as total))`, {
      extra: `&$orderby=${q("primarycontactid/fullname desc")}`,
    });
    assert.equal(byName.status, 200, byName.text);
    assert.deepEqual(byName.json.value, [
      { contact_fullname: "Bob Ray", total: 300 },
      { contact_fullname: "Ann Lee", total: 300 },
      { total: 50 },
    ]);
  });

  it("groupby alone gives the distinct values, and $top limits the groups", async () => {
    const r = await apply(`${mine}/groupby((address1_city))`, { extra: "&$orderby=address1_city desc&$top=2" });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json.value, [{ address1_city: "Oslo" }, { address1_city: "Bergen" }]);
  });

  it("filter alone returns the matching records", async () => {
    const r = await apply(`${mine}/filter(revenue gt 150)`, { extra: "&$select=name&$orderby=name" });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json.value.map((v) => v.name), [`${tag} Beta`, `${tag} Gamma`]);
  });

  it("works through dynamics-web-api's retrieveMultiple", async () => {
    const r = await dwa.retrieveMultiple({
      collection: "accounts",
      apply: encodeURIComponent(`${mine}/groupby((address1_city),aggregate($count as n))`),
      orderBy: ["address1_city desc"],
    });
    assert.deepEqual(r.value.map((v) => [v.address1_city ?? null, v.n]), [
      ["Oslo", 2],
      ["Bergen", 1],
      [null, 1],
    ]);
  });

  it("answers unsupported and malformed $apply with 400 in the Dataverse error shape", async () => {
    const cases = [
      ["groupby((address1_city)", {}],
      ["groupby((nosuch))", {}],
      ["aggregate(revenue with median as m)", {}],
      ["aggregate(name with sum as s)", {}],
      ["compute(revenue mul 2 as r)", {}],
      ["groupby((address1_city))/filter(revenue gt 1)", {}],
      ["groupby((createdon))", {}],
      ["groupby((Account_Tasks/subject))", {}],
      ["filter(nosuch eq 1)", {}],
      ["", {}],
      ["groupby((address1_city),aggregate($count as n))", { extra: "&$orderby=n" }],
      ["groupby((address1_city),aggregate($count as n))", { extra: "&$select=name" }],
    ];
    for (const [text, opts] of cases) {
      const r = await apply(text, opts);
      assertODataError(r, { status: 400, code: "0x80060888", context: `$apply=${text}${opts.extra ?? ""}` });
    }
  });
});
