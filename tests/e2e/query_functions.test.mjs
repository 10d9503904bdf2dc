// Dataverse date/time and user/team query functions in $filter (Microsoft.Dynamics.CRM.LastXDays,
// Today, ThisWeek, On, InFiscalPeriodAndYear, EqualUserOrUserTeams, …) through dynamics-web-api and
// raw HTTP, on records whose dates the test sets: accounts through overriddencreatedon, and a
// custom table with a DateTime and a DateOnly column. Tributary evaluates "now", days and weeks
// in UTC (weeks start on Sunday; fiscal years are calendar years, fiscal periods quarters).
// Wire facts: shared/reference/dataverse-webapi.md §4.2.

import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { startServer, uniqueTag, assertODataError, sleep, q } from "./helpers.mjs";

const DAY = 86_400_000;
const QUERY_ERROR = "0x80060888";

const SCHEMA = `version: 1
publisher:
  prefix: new
tables:
  - name: new_event
    displayname: Event
    entitysetname: new_events
    ownership: user
    primaryname: { name: new_name, maxlength: 200 }
    columns:
      - { name: new_when, type: datetime }
      - { name: new_day, type: datetime, behavior: dateonly }
      - { name: new_lang, type: integer }
`;

let server;
let dwa;
let schemaDir;

before(async () => {
  schemaDir = await fs.mkdtemp(path.join(os.tmpdir(), "tributary-qf-"));
  const schema = path.join(schemaDir, "schema.yaml");
  await fs.writeFile(schema, SCHEMA);
  server = await startServer({ schema });
  dwa = await server.dwa();
  // The day-relative cases compute "today" on this side: keep clear of a UTC midnight.
  const toMidnight = DAY - (Date.now() % DAY);
  if (toMidnight < 120_000) await sleep(toMidnight + 1_000);
});

after(async () => {
  await server?.cleanup();
  if (schemaDir) await fs.rm(schemaDir, { recursive: true, force: true });
});

/** "2024-02-29T00:00:00Z" (Dataverse writes no fractional seconds). */
const iso = (ms) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
const isoDay = (ms) => new Date(ms).toISOString().slice(0, 10);
const startOfDay = (ms) => ms - (((ms % DAY) + DAY) % DAY);

/** Names of the rows of `collection` that `filter` and the tag select, sorted, through DWA. */
async function names(collection, nameColumn, tag, filter) {
  const r = await dwa.retrieveMultiple({
    collection,
    select: [nameColumn],
    filter: `startswith(${nameColumn},'${tag}') and ${filter}`,
  });
  return r.value.map((x) => x[nameColumn].slice(tag.length + 1)).sort();
}

async function events(tag, rows) {
  for (const [name, data] of Object.entries(rows))
    await dwa.create({ collection: "new_events", data: { new_name: `${tag}_${name}`, ...data } });
}

describe("relative date functions", () => {
  it("LastXDays on createdon, with createdon set through overriddencreatedon", async () => {
    const tag = uniqueTag("lxd");
    const now = Date.now();
    for (const [name, created] of [["two_days_ago", now - 2 * DAY], ["five_days_ago", now - 5 * DAY]])
      await dwa.create({ collection: "accounts", data: { name: `${tag}_${name}`, overriddencreatedon: iso(created) } });
    await dwa.create({ collection: "accounts", data: { name: `${tag}_just_now` } });
    const r = await dwa.retrieveMultiple({
      collection: "accounts",
      select: ["name"],
      filter: `Microsoft.Dynamics.CRM.LastXDays(PropertyName='createdon',PropertyValue=3) and startswith(name,'${tag}')`,
    });
    assert.deepEqual(r.value.map((x) => x.name).sort(), [`${tag}_just_now`, `${tag}_two_days_ago`]);
    assert.deepEqual(await names("accounts", "name", tag, "Microsoft.Dynamics.CRM.OlderThanXDays(PropertyName='createdon',PropertyValue=3)"),
      ["five_days_ago"]);
    // Parameter aliases, and the X as the text of a number (as FetchXML values are).
    const raw = await server.api("GET",
      `accounts?$select=name&$filter=${q(`Microsoft.Dynamics.CRM.LastXDays(PropertyName=@p1,PropertyValue=@p2) and startswith(name,'${tag}')`)}` +
      `&@p1=${q("'createdon'")}&@p2=${q("'3'")}`);
    assert.equal(raw.status, 200, raw.text);
    assert.equal(raw.json.value.length, 2);
  });

  it("Today, Yesterday and Tomorrow split at 00:00 UTC", async () => {
    const tag = uniqueTag("day");
    const today = startOfDay(Date.now());
    await events(tag, {
      yesterday_end: { new_when: iso(today - 1000) },
      today_start: { new_when: iso(today) },
      today_end: { new_when: iso(today + DAY - 1000) },
      tomorrow_start: { new_when: iso(today + DAY) },
      no_date: {},
    });
    const fn = (name) => `Microsoft.Dynamics.CRM.${name}(PropertyName='new_when')`;
    assert.deepEqual(await names("new_events", "new_name", tag, fn("Today")), ["today_end", "today_start"]);
    assert.deepEqual(await names("new_events", "new_name", tag, fn("Yesterday")), ["yesterday_end"]);
    assert.deepEqual(await names("new_events", "new_name", tag, fn("Tomorrow")), ["tomorrow_start"]);
    // NextXDays: from now to the end of the day X days ahead; LastXDays: up to now only.
    assert.deepEqual(await names("new_events", "new_name", tag,
      "Microsoft.Dynamics.CRM.NextXDays(PropertyName='new_when',PropertyValue=1)"), ["today_end", "tomorrow_start"]);
    assert.deepEqual(await names("new_events", "new_name", tag,
      "Microsoft.Dynamics.CRM.LastXDays(PropertyName='new_when',PropertyValue=1)"), ["today_start", "yesterday_end"]);
    // On / NotOn / OnOrAfter with a date literal, a quoted date and a date-time. NotOn skips nulls.
    assert.deepEqual(await names("new_events", "new_name", tag,
      `Microsoft.Dynamics.CRM.On(PropertyName='new_when',PropertyValue=${isoDay(today)})`), ["today_end", "today_start"]);
    assert.deepEqual(await names("new_events", "new_name", tag,
      `Microsoft.Dynamics.CRM.NotOn(PropertyName='new_when',PropertyValue='${isoDay(today)}')`), ["tomorrow_start", "yesterday_end"]);
    assert.deepEqual(await names("new_events", "new_name", tag,
      `Microsoft.Dynamics.CRM.OnOrAfter(PropertyName='new_when',PropertyValue=${iso(today + DAY + 3_600_000)})`), ["tomorrow_start"]);
    assert.deepEqual(await names("new_events", "new_name", tag,
      `Microsoft.Dynamics.CRM.OnOrBefore(PropertyName='new_when',PropertyValue=${isoDay(today - DAY)})`), ["yesterday_end"]);
  });

  it("weeks start on Sunday", async () => {
    const tag = uniqueTag("week");
    const today = startOfDay(Date.now());
    const sunday = today - new Date(today).getUTCDay() * DAY;
    await events(tag, {
      last_saturday: { new_when: iso(sunday - 1000) },
      sunday: { new_when: iso(sunday) },
      saturday: { new_when: iso(sunday + 7 * DAY - 1000) },
      next_sunday: { new_when: iso(sunday + 7 * DAY) },
    });
    const fn = (name) => `Microsoft.Dynamics.CRM.${name}(PropertyName='new_when')`;
    assert.deepEqual(await names("new_events", "new_name", tag, fn("ThisWeek")), ["saturday", "sunday"]);
    assert.deepEqual(await names("new_events", "new_name", tag, fn("LastWeek")), ["last_saturday"]);
    assert.deepEqual(await names("new_events", "new_name", tag, fn("NextWeek")), ["next_sunday"]);
  });

  it("DateOnly columns compare whole days", async () => {
    const tag = uniqueTag("donly");
    const today = startOfDay(Date.now());
    await events(tag, {
      d_minus_2: { new_day: isoDay(today - 2 * DAY) },
      d_minus_1: { new_day: isoDay(today - DAY) },
      d_0: { new_day: isoDay(today) },
      d_plus_1: { new_day: isoDay(today + DAY) },
      d_plus_9: { new_day: isoDay(today + 9 * DAY) },
    });
    const f = (fn, x) => `Microsoft.Dynamics.CRM.${fn}(PropertyName='new_day'${x === undefined ? "" : `,PropertyValue=${x}`})`;
    assert.deepEqual(await names("new_events", "new_name", tag, f("Today")), ["d_0"]);
    assert.deepEqual(await names("new_events", "new_name", tag, f("Yesterday")), ["d_minus_1"]);
    assert.deepEqual(await names("new_events", "new_name", tag, f("LastXDays", 1)), ["d_0", "d_minus_1"]);
    assert.deepEqual(await names("new_events", "new_name", tag, f("Next7Days")), ["d_plus_1"]);
    assert.deepEqual(await names("new_events", "new_name", tag, f("OlderThanXDays", 1)), ["d_minus_2"]);
    assert.deepEqual(await names("new_events", "new_name", tag, f("On", isoDay(today + 9 * DAY))), ["d_plus_9"]);
  });

  it("fiscal years and periods are calendar years and quarters", async () => {
    const tag = uniqueTag("fisc");
    await events(tag, {
      q3_end: { new_when: "2022-09-30T23:59:59Z", new_day: "2022-09-30" },
      q4_start: { new_when: "2022-10-01T00:00:00Z", new_day: "2022-10-01" },
      q4_end: { new_when: "2022-12-31T23:59:59Z", new_day: "2022-12-31" },
      next_year: { new_when: "2023-01-01T00:00:00Z", new_day: "2023-01-01" },
    });
    for (const col of ["new_when", "new_day"]) {
      assert.deepEqual(await names("new_events", "new_name", tag,
        `Microsoft.Dynamics.CRM.InFiscalPeriodAndYear(PropertyName='${col}',PropertyValue1=4,PropertyValue2=2022)`), ["q4_end", "q4_start"]);
      assert.deepEqual(await names("new_events", "new_name", tag,
        `Microsoft.Dynamics.CRM.InFiscalYear(PropertyName='${col}',PropertyValue=2022)`), ["q3_end", "q4_end", "q4_start"]);
      assert.deepEqual(await names("new_events", "new_name", tag,
        `Microsoft.Dynamics.CRM.InOrBeforeFiscalPeriodAndYear(PropertyName='${col}',PropertyValue1=3,PropertyValue2=2022)`), ["q3_end"]);
      assert.deepEqual(await names("new_events", "new_name", tag,
        `Microsoft.Dynamics.CRM.InOrAfterFiscalPeriodAndYear(PropertyName='${col}',PropertyValue1=1,PropertyValue2=2023)`), ["next_year"]);
    }
  });
});

describe("user and team functions", () => {
  it("EqualUserTeams and EqualUserOrUserTeams follow the caller's team memberships", async () => {
    const tag = uniqueTag("own");
    const me = (await dwa.callFunction({ name: "WhoAmI" })).UserId;
    const mine = await dwa.create({ collection: "teams", data: { name: `${tag}_mine` } });
    const other = await dwa.create({ collection: "teams", data: { name: `${tag}_other` } });
    await dwa.associate({ collection: "teams", primaryKey: mine, relationshipName: "teammembership_association", relatedCollection: "systemusers", relatedKey: me });
    await events(tag, {
      by_me: {},
      by_my_team: { "ownerid@odata.bind": `/teams(${mine})` },
      by_other_team: { "ownerid@odata.bind": `/teams(${other})` },
    });
    assert.deepEqual(await names("new_events", "new_name", tag, "Microsoft.Dynamics.CRM.EqualUserTeams(PropertyName='ownerid')"), ["by_my_team"]);
    assert.deepEqual(await names("new_events", "new_name", tag, "Microsoft.Dynamics.CRM.EqualUserOrUserTeams(PropertyName='ownerid')"),
      ["by_me", "by_my_team"]);
    assert.deepEqual(await names("new_events", "new_name", tag, "Microsoft.Dynamics.CRM.EqualUserId(PropertyName='ownerid')"), ["by_me"]);
  });

  it("EqualUserLanguage compares with 1033 (English)", async () => {
    const tag = uniqueTag("lang");
    await events(tag, { english: { new_lang: 1033 }, french: { new_lang: 1036 } });
    assert.deepEqual(await names("new_events", "new_name", tag, "Microsoft.Dynamics.CRM.EqualUserLanguage(PropertyName='new_lang')"), ["english"]);
  });
});

describe("bad input", () => {
  const bad = async (filter, { collection = "new_events", messageIncludes = [] } = {}) => {
    const r = await server.api("GET", `${collection}?$select=createdon&$filter=${q(filter)}`);
    const err = assertODataError(r, { status: 400, code: QUERY_ERROR, context: filter });
    for (const part of messageIncludes) assert.ok(err.message.includes(part), `"${err.message}" should mention ${part}`);
    return err;
  };

  it("wrong parameter values name the function and the parameter", async () => {
    await bad("Microsoft.Dynamics.CRM.LastXDays(PropertyName='createdon',PropertyValue='three')",
      { messageIncludes: ["LastXDays", "PropertyValue", "non-negative integer"] });
    await bad("Microsoft.Dynamics.CRM.LastXDays(PropertyName='createdon',PropertyValue=-1)", { messageIncludes: ["LastXDays", "PropertyValue"] });
    await bad("Microsoft.Dynamics.CRM.NextXHours(PropertyName='createdon',PropertyValue=1.5)", { messageIncludes: ["NextXHours", "PropertyValue"] });
    await bad("Microsoft.Dynamics.CRM.LastXDays(PropertyName='createdon')", { messageIncludes: ["LastXDays", "PropertyValue"] });
    await bad("Microsoft.Dynamics.CRM.On(PropertyName='createdon',PropertyValue='not a date')", { messageIncludes: ["On", "PropertyValue", "date"] });
    await bad("Microsoft.Dynamics.CRM.InFiscalPeriod(PropertyName='createdon',PropertyValue=5)", { messageIncludes: ["InFiscalPeriod", "PropertyValue"] });
    await bad("Microsoft.Dynamics.CRM.InFiscalPeriodAndYear(PropertyName='createdon',PropertyValue1=2)", { messageIncludes: ["PropertyValue2"] });
    await bad("Microsoft.Dynamics.CRM.Today(PropertyName='nosuchcolumn')", { messageIncludes: ["nosuchcolumn"] });
  });

  it("a date function on a text column, an unknown function and hierarchy functions answer 400", async () => {
    await bad("Microsoft.Dynamics.CRM.LastXDays(PropertyName='new_name',PropertyValue=3)",
      { messageIncludes: ["LastXDays", "new_name", "date and time"] });
    await bad("Microsoft.Dynamics.CRM.EqualUserTeams(PropertyName='new_when')", { messageIncludes: ["EqualUserTeams", "new_when"] });
    await bad("Microsoft.Dynamics.CRM.LastXFortnights(PropertyName='createdon',PropertyValue=3)",
      { messageIncludes: ["LastXFortnights", "not supported"] });
    for (const fn of ["Above", "AboveOrEqual", "Under", "UnderOrEqual", "NotUnder"]) {
      await bad(`Microsoft.Dynamics.CRM.${fn}(PropertyName='accountid',PropertyValue='00000000-0000-0000-0000-000000000001')`,
        { collection: "accounts", messageIncludes: [fn, "hierarch"] });
    }
    // A query function cannot be negated (Dataverse's rule), date functions included.
    await bad("not Microsoft.Dynamics.CRM.Today(PropertyName='createdon')");
  });
});
