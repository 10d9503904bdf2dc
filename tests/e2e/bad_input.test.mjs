// Bad input never breaks the server: every malformed request gets a 4xx with a Dataverse error
// body {"error":{"code":"0x…","message":"…"}}, never a 5xx, and the server stays healthy.
// Cases are data: {name, method, path, headers, body, status}. `path`/`body` may be functions of
// the fixture ids ({ A: account id, C: contact id }).

import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { startServer, SCHEMA_FIXTURE, assertODataError, rawExchange, q } from "./helpers.mjs";

let server;
const ids = {};

before(async () => {
  server = await startServer({ schema: SCHEMA_FIXTURE });
  ids.C = await server.createOne("contacts", { firstname: "Bad", lastname: "Input" });
  ids.A = await server.createOne("accounts", { name: "bad input target", accountnumber: "BAD-1" });
});

after(async () => {
  await server?.cleanup();
});

const ANY_KEY_ERROR = [400, 404];
const resolve = (v) => (typeof v === "function" ? v(ids) : v);

async function send(c) {
  const path = resolve(c.path);
  const body = resolve(c.body);
  if (c.raw) return server.http(c.method, path, { headers: c.headers ?? {}, body });
  return server.api(c.method, path, { headers: c.headers ?? {}, body, contentType: c.contentType });
}

function runCases(cases) {
  for (const c of cases) {
    it(`${c.method} ${c.name}`, async () => {
      const res = await send(c);
      assertODataError(res, { status: c.status, code: c.code, context: c.name });
      assert.ok(server.running, `server died on: ${c.name}\n${server.logTail()}`);
    });
  }
}

// ---------------------------------------------------------------------------------------------
// URLs: key literals, parentheses, percent escapes, segments

const urlCases = [
  { name: "key: not a GUID", method: "GET", path: "accounts(not-a-guid)", status: ANY_KEY_ERROR },
  { name: "key: GUID with a non-hex digit", method: "GET", path: "accounts(00000000-0000-0000-0000-00000000000G)", status: ANY_KEY_ERROR },
  { name: "key: GUID too short", method: "GET", path: "accounts(00000000-0000-0000-0000-0000000000)", status: ANY_KEY_ERROR },
  { name: "key: integer", method: "GET", path: "accounts(123)", status: ANY_KEY_ERROR },
  { name: "key: huge integer", method: "GET", path: "accounts(1234567890123456789012345678901234567890)", status: ANY_KEY_ERROR },
  { name: "key: empty parentheses", method: "GET", path: "accounts()", status: ANY_KEY_ERROR },
  { name: "key: legacy guid'…' literal", method: "GET", path: ({ A }) => `accounts(guid'${A}')`, status: ANY_KEY_ERROR },
  { name: "key: quoted GUID", method: "GET", path: ({ A }) => `accounts('${A}')`, status: ANY_KEY_ERROR },
  { name: "parens: unclosed", method: "GET", path: "accounts(", status: ANY_KEY_ERROR },
  { name: "parens: unclosed after GUID", method: "GET", path: ({ A }) => `accounts(${A}`, status: ANY_KEY_ERROR },
  { name: "parens: close without open", method: "GET", path: "accounts)", status: ANY_KEY_ERROR },
  { name: "parens: doubled", method: "GET", path: ({ A }) => `accounts((${A}))`, status: ANY_KEY_ERROR },
  { name: "parens: extra close", method: "GET", path: ({ A }) => `accounts(${A}))`, status: ANY_KEY_ERROR },
  { name: "parens: two keys", method: "GET", path: ({ A }) => `accounts(${A})(${A})`, status: ANY_KEY_ERROR },
  { name: "alt key: unterminated string", method: "GET", path: "accounts(accountnumber='BAD-1)", status: ANY_KEY_ERROR },
  { name: "alt key: empty value", method: "GET", path: "accounts(accountnumber=)", status: ANY_KEY_ERROR },
  { name: "alt key: repeated column", method: "GET", path: "accounts(accountnumber='a',accountnumber='b')", status: ANY_KEY_ERROR },
  { name: "alt key: column that is no key", method: "GET", path: "accounts(name='bad input target')", status: ANY_KEY_ERROR },
  { name: "alt key: unknown column", method: "GET", path: "accounts(nosuchcolumn='x')", status: ANY_KEY_ERROR },
  { name: "alt key: wrong literal type", method: "GET", path: "accounts(accountnumber=42)", status: ANY_KEY_ERROR },
  { name: "alt key: partial composite key", method: "GET", path: "new_assignments(new_region='x')", status: ANY_KEY_ERROR },
  { name: "alt key: composite with bad integer", method: "GET", path: "new_assignments(new_region='x',new_seq='seven')", status: ANY_KEY_ERROR },
  { name: "alt key: composite with trailing comma", method: "GET", path: "new_assignments(new_region='x',new_seq=1,)", status: ANY_KEY_ERROR },
  { name: "percent: bad escape in entity set", method: "GET", path: "acc%zzounts", status: ANY_KEY_ERROR },
  { name: "percent: bad escape after entity set", method: "GET", path: "accounts%zz", status: ANY_KEY_ERROR },
  { name: "percent: bad escape in key", method: "GET", path: "accounts(%zz)", status: ANY_KEY_ERROR },
  { name: "percent: truncated escape in path", method: "GET", path: "accounts%2", status: ANY_KEY_ERROR },
  { name: "percent: NUL in path", method: "GET", path: "accounts%00", status: ANY_KEY_ERROR },
  { name: "percent: bad escape in $filter", method: "GET", path: `accounts?$filter=${q("name eq 'a")}%zz${q("'")}`, status: 400 },
  { name: "percent: truncated escape at end of query", method: "GET", path: `accounts?$filter=${q("name eq 'a")}%`, status: 400 },
  { name: "percent: bad escape in $select", method: "GET", path: "accounts?$select=na%GGme", status: 400 },
  { name: "percent: encoded dot-dot traversal", method: "GET", path: "/api/data/v9.2/%2e%2e/%2e%2e/etc/passwd", raw: true, status: ANY_KEY_ERROR },
  { name: "version: unknown", method: "GET", path: "/api/data/v99.0/accounts", status: ANY_KEY_ERROR },
  { name: "version: not a version", method: "GET", path: "/api/data/vx/accounts", status: ANY_KEY_ERROR },
  { name: "segment: unknown entity set", method: "GET", path: "nosuchtables", status: 404 },
  { name: "segment: unknown property", method: "GET", path: ({ A }) => `accounts(${A})/nosuchcolumn`, status: ANY_KEY_ERROR },
  { name: "segment: too many after a property", method: "GET", path: ({ A }) => `accounts(${A})/name/extra/segments`, status: ANY_KEY_ERROR },
  { name: "segment: $count twice", method: "GET", path: "accounts/$count/$count", status: ANY_KEY_ERROR },
  { name: "segment: unknown function", method: "GET", path: "NoSuchFunction()", status: ANY_KEY_ERROR },
  { name: "key: invalid GUID for systemusers", method: "GET", path: "systemusers(zzz)", status: ANY_KEY_ERROR },
];

// ---------------------------------------------------------------------------------------------
// Query options other than $filter

const optionCases = [
  ["$top=-1", "accounts?$top=-1"],
  ["$top=abc", "accounts?$top=abc"],
  ["$top=1.5", "accounts?$top=1.5"],
  ["$top= (empty)", "accounts?$top="],
  ["$top overflow", "accounts?$top=99999999999999999999"],
  ["$count=maybe", "accounts?$count=maybe"],
  ["$select with empty item", "accounts?$select=name,,telephone1"],
  ["$select with a parenthesis", "accounts?$select=name("],
  ["$select of a navigation property", "accounts?$select=primarycontactid"],
  ["$orderby bad direction", "accounts?$orderby=name%20sideways"],
  ["$orderby two directions", "accounts?$orderby=name%20asc%20desc"],
  ["$orderby unknown column", "accounts?$orderby=nosuchcolumn"],
  ["$orderby empty items", "accounts?$orderby=,"],
  ["$expand unknown nav", "accounts?$expand=nosuchnav"],
  ["$expand unclosed options", "accounts?$expand=primarycontactid("],
  ["$expand unknown column inside", "accounts?$expand=primarycontactid($select=nosuchcolumn)"],
  ["$expand with $skip inside", "accounts?$expand=contact_customer_accounts($skip=1)"],
  ["$expand with $levels", "accounts?$expand=primarycontactid($levels=2)"],
  ["$expand /$ref on a collection", "accounts?$expand=contact_customer_accounts/$ref"],
  ["$expand bad option separator", "accounts?$expand=primarycontactid($select=fullname,$top=1)"],
  ["$skip", "accounts?$skip=1"],
  ["$search", "accounts?$search=x"],
  ["$format", "accounts?$format=json"],
  ["unknown $ option", "accounts?$foo=1"],
  ["upper-case option name", "accounts?$SELECT=name"],
  ["$select given twice", "accounts?$select=name&$select=telephone1"],
  ["$apply garbage", "accounts?$apply=garbage("],
  ["$skiptoken garbage", "accounts?$skiptoken=garbage"],
  ["alias with unterminated string", `accounts?$filter=name%20eq%20@p1&@p1=${q("'unterminated")}`],
].map(([name, path]) => ({ name, method: "GET", path, status: 400 }));

// ---------------------------------------------------------------------------------------------
// Malformed $filter expressions

const filters = [
  "name eq",
  "eq 'x'",
  "name eq 'x",
  "name eq x'",
  "name eqq 'x'",
  "name == 'x'",
  "name = 'x'",
  "(name eq 'x'",
  "name eq 'x')",
  "((name eq 'x')",
  "()",
  "name eq 'x' and",
  "and name eq 'x'",
  "name eq 'x' or or name eq 'y'",
  "name eq 'x' and and name eq 'y'",
  "not",
  "not not",
  "name eq 'x' and not",
  "name",
  "'x'",
  "1 eq 1 eq 1",
  "name eq 'a' 'b'",
  "name eq \"x\"",
  "name eq 'it''s",
  "nosuchcolumn eq 1",
  "Name eq 'x'",
  "contains(name)",
  "contains(name,'a','b')",
  "contains(name,'a'",
  "contains name,'a')",
  "startswith('a')",
  "endswith(,'a')",
  "contains(numberofemployees,'1')",
  "tolower(name) eq 'x'",
  "substring(name,1) eq 'x'",
  "nosuchfunction(name)",
  "numberofemployees eq 'abc'",
  "numberofemployees eq 99999999999999999999",
  "numberofemployees eq 1.2.3",
  "numberofemployees gt",
  "revenue gt 1e999",
  "creditonhold eq 'maybe'",
  "createdon gt 2023-13-45T00:00:00Z",
  "createdon gt 'notadate'",
  "accountid eq 1234",
  "accountid eq 00000000-0000-0000-0000-00000000zzzz",
  "_primarycontactid_value eq 'notaguid'",
  "primarycontactid/nosuchcolumn eq 'x'",
  "nosuchnav/fullname eq 'x'",
  "primarycontactid eq 'x'",
  "primarycontactid/ eq 'x'",
  "name eq 'x' and (numberofemployees gt )",
  "Microsoft.Dynamics.CRM.NoSuchCondition(PropertyName='name')",
  "Microsoft.Dynamics.CRM.In(PropertyName='name'",
  "contact_customer_accounts/any(c:c/nosuchcolumn eq 1)",
  "contact_customer_accounts/any(c:",
  "@",
  "$",
  ",",
  "'".repeat(7),
  "(".repeat(5000),
  ")".repeat(50),
];
const filterCases = filters.map((f) => ({
  name: `$filter=${f.length > 60 ? `${f.slice(0, 40)}… (${f.length} chars)` : f}`,
  method: "GET",
  path: `accounts?$select=name&$filter=${q(f)}`,
  status: 400,
}));

// ---------------------------------------------------------------------------------------------
// Bodies: malformed JSON, wrong types, unknown columns, bad binds, limits

const utf8Bad = Buffer.concat([Buffer.from('{"name":"'), Buffer.from([0xff, 0xfe, 0xc3, 0x28]), Buffer.from('"}')]);
const deepJson = "[".repeat(100_000) + "]".repeat(100_000);
const deepObject = '{"name":'.repeat(50_000) + '"x"' + "}".repeat(50_000);

const bodyCases = [
  // malformed JSON
  { name: "json: lone brace", body: "{" },
  { name: "json: missing value", body: '{"name":}' },
  { name: "json: trailing comma", body: '{"name":"x",}' },
  { name: "json: single quotes", body: "{'name':'x'}" },
  { name: "json: unquoted key", body: "{name:\"x\"}" },
  { name: "json: garbage after object", body: '{"name":"x"}garbage' },
  { name: "json: two objects", body: '{"name":"x"}{"name":"y"}' },
  { name: "json: array at top level", body: "[]" },
  { name: "json: string at top level", body: '"name"' },
  { name: "json: null at top level", body: "null" },
  { name: "json: number at top level", body: "42" },
  { name: "json: empty body", body: "" },
  { name: "json: whitespace only", body: "   \n " },
  { name: "json: unterminated string", body: '{"name":"x' },
  { name: "json: bad escape", body: '{"name":"\\x41"}' },
  { name: "json: bad unicode escape", body: '{"name":"\\u12G4"}' },
  { name: "json: raw control character in string", body: '{"name":"a\u0001b"}' },
  { name: "json: invalid UTF-8", body: utf8Bad },
  { name: "json: NaN", body: '{"numberofemployees":NaN}' },
  { name: "json: number overflow", body: '{"numberofemployees":1e999}' },
  { name: "json: 100k nested arrays", body: deepJson },
  { name: "json: 50k nested objects", body: deepObject },
  // wrong JSON types for columns
  { name: "type: number for string column", body: { name: 123 } },
  { name: "type: object for string column", body: { name: { a: 1 } } },
  { name: "type: array for string column", body: { name: ["a"] } },
  { name: "type: boolean for string column", body: { name: true } },
  { name: "type: string for integer column", body: { numberofemployees: "ten" } },
  { name: "type: fraction for integer column", body: { numberofemployees: 1.5 } },
  { name: "type: integer overflow (Int32)", body: { numberofemployees: 3_000_000_000 } },
  { name: "type: string for money column", body: { revenue: "lots" } },
  { name: "type: string for boolean column", body: { creditonhold: "yes" } },
  { name: "type: number for boolean column", body: { creditonhold: 1 } },
  { name: "type: string for choice column", body: { industrycode: "one" } },
  { name: "type: choice value out of range", body: { industrycode: 999_999 } },
  { name: "type: invalid GUID for the primary key", body: { accountid: "not-a-guid" } },
  { name: "type: number for the primary key", body: { accountid: 5 } },
  { name: "type: string over maxlength", body: { name: "x".repeat(5000) } },
  // unknown or read-only columns
  { name: "unknown column", body: { name: "x", nosuchcolumn: 1 } },
  { name: "column name with wrong case", body: { Name: "x" } },
  { name: "read-only lookup property _x_value", body: ({ C }) => ({ name: "x", _primarycontactid_value: C }) },
  { name: "navigation property given a scalar", body: { name: "x", primarycontactid: "abc" } },
  { name: "@odata.type of another table", body: { "@odata.type": "Microsoft.Dynamics.CRM.contact", name: "x" } },
  // @odata.bind errors
  { name: "bind: invalid GUID", body: { name: "x", "primarycontactid@odata.bind": "/contacts(not-a-guid)" } },
  { name: "bind: wrong target table", body: ({ A }) => ({ name: "x", "primarycontactid@odata.bind": `/accounts(${A})` }) },
  { name: "bind: number instead of a URL", body: { name: "x", "primarycontactid@odata.bind": 42 } },
  { name: "bind: unknown navigation property", body: ({ C }) => ({ name: "x", "nosuchnav@odata.bind": `/contacts(${C})` }) },
  { name: "bind: unknown entity set", body: ({ C }) => ({ name: "x", "primarycontactid@odata.bind": `/nosuchtables(${C})` }) },
  { name: "bind: not a URL", body: { name: "x", "primarycontactid@odata.bind": "((((" } },
  { name: "bind: missing record", body: { name: "x", "primarycontactid@odata.bind": "/contacts(00000000-0000-0000-0000-0000000000aa)" }, status: [400, 404] },
  { name: "bind: array on a single-valued nav", body: ({ C }) => ({ name: "x", "primarycontactid@odata.bind": [`/contacts(${C})`] }) },
  { name: "deep insert: array on a single-valued nav", body: { name: "x", primarycontactid: [{ lastname: "y" }] } },
  { name: "deep insert: object on a collection nav", body: { name: "x", contact_customer_accounts: { lastname: "y" } } },
].map((c) => ({ method: "POST", path: "accounts", status: 400, ...c }));

const customBodyCases = [
  { name: "custom: choice value not in the options", body: { new_name: "x", new_stage: 99 } },
  { name: "custom: impossible date-only value", body: { new_name: "x", new_start: "2024-02-30" } },
  { name: "custom: date-only garbage", body: { new_name: "x", new_start: "soon" } },
  { name: "custom: string for money", body: { new_name: "x", new_budget: "x" } },
  { name: "custom: integer below min", body: { new_name: "x", new_count: -1 } },
  { name: "custom: string over maxlength 50", body: { new_name: "x", new_code: "c".repeat(51) } },
  { name: "custom: bind to a contact on an account lookup", body: ({ C }) => ({ new_name: "x", "new_accountid@odata.bind": `/contacts(${C})` }) },
].map((c) => ({ method: "POST", path: "new_projects", status: 400, ...c }));

const updateCases = [
  { name: "PATCH: malformed JSON", method: "PATCH", body: "{", headers: { "If-Match": "*" } },
  { name: "PATCH: wrong type", method: "PATCH", body: { numberofemployees: "many" }, headers: { "If-Match": "*" } },
  { name: "PATCH: unknown column", method: "PATCH", body: { nosuchcolumn: 1 }, headers: { "If-Match": "*" } },
  { name: "PATCH: array body", method: "PATCH", body: "[1,2]", headers: { "If-Match": "*" } },
].map((c) => ({ path: ({ A }) => `accounts(${A})`, status: 400, ...c }));

const propertyCases = [
  { name: "PUT property: wrong type", method: "PUT", path: ({ A }) => `accounts(${A})/name`, body: { value: 5 }, status: 400 },
  { name: "PUT property: no value member", method: "PUT", path: ({ A }) => `accounts(${A})/name`, body: {}, status: 400 },
  { name: "PUT property: bare JSON string", method: "PUT", path: ({ A }) => `accounts(${A})/name`, body: '"x"', status: 400 },
  { name: "PUT property: unknown column", method: "PUT", path: ({ A }) => `accounts(${A})/nosuchcolumn`, body: { value: 1 }, status: ANY_KEY_ERROR },
  { name: "PUT property: primary key", method: "PUT", path: ({ A }) => `accounts(${A})/accountid`, body: { value: "00000000-0000-0000-0000-000000000001" }, status: 400 },
  { name: "DELETE property: unknown column", method: "DELETE", path: ({ A }) => `accounts(${A})/nosuchcolumn`, status: ANY_KEY_ERROR },
];

// ---------------------------------------------------------------------------------------------
// Methods, headers, sizes

const methodCases = [
  { name: "PATCH on a collection", method: "PATCH", path: "accounts", body: { name: "x" }, status: 405 },
  { name: "PUT on a collection", method: "PUT", path: "accounts", body: { name: "x" }, status: 405 },
  { name: "DELETE on a collection", method: "DELETE", path: "accounts", status: 405 },
  { name: "POST on a record", method: "POST", path: ({ A }) => `accounts(${A})`, body: { name: "x" }, status: 405 },
  { name: "DELETE on $metadata", method: "DELETE", path: "$metadata", status: 405 },
  { name: "POST on $count", method: "POST", path: "accounts/$count", body: {}, status: [400, 404, 405] },
  { name: "POST to a function", method: "POST", path: "WhoAmI()", body: {}, status: [400, 404, 405] },
  { name: "PUT on the service root", method: "PUT", path: "", body: {}, status: [400, 404, 405] },
  { name: "unknown method", method: "FROB", path: "accounts", status: [400, 405] },
];

const headerCases = [
  { name: "Content-Type text/plain", method: "POST", path: "accounts", body: '{"name":"x"}', contentType: "text/plain", status: [400, 415] },
  { name: "Content-Type application/xml", method: "POST", path: "accounts", body: "<name>x</name>", contentType: "application/xml", status: [400, 415] },
  { name: "If-Match garbage on PATCH", method: "PATCH", path: ({ A }) => `accounts(${A})`, body: { name: "x" }, headers: { "If-Match": "garbage" }, status: [400, 412] },
  { name: "64 KiB header", method: "GET", path: "accounts?$top=1", headers: { "X-Big": "a".repeat(64 * 1024) }, status: [400, 431] },
  { name: "1 MiB header", method: "GET", path: "accounts?$top=1", headers: { "X-Huge": "b".repeat(1024 * 1024) }, status: [400, 431] },
  {
    name: "2,000 headers",
    method: "GET",
    path: "accounts?$top=1",
    headers: Object.fromEntries(Array.from({ length: 2000 }, (_, i) => [`X-H${i}`, "v"])),
    status: [400, 431],
  },
  { name: "URL over 32 KiB", method: "GET", path: `accounts?$filter=${q(`name eq '${"n".repeat(40_000)}'`)}`, status: [400, 414] },
];

describe("malformed URLs", () => runCases(urlCases));
describe("bad query options", () => runCases(optionCases));
describe("malformed $filter", () => runCases(filterCases));
describe("bad bodies on create", () => runCases(bodyCases));
describe("bad bodies on a custom table", () => runCases(customBodyCases));
describe("bad bodies on update", () => runCases(updateCases));
describe("bad single-property requests", () => runCases(propertyCases));
describe("wrong methods", () => runCases(methodCases));
describe("bad headers and sizes", () => runCases(headerCases));

// ---------------------------------------------------------------------------------------------
// Inputs where the server may accept or reject, but must never fail with 5xx.

const toleratedCases = [
  { name: "Prefer: odata.maxpagesize=abc", headers: { Prefer: "odata.maxpagesize=abc" } },
  { name: "Prefer: odata.maxpagesize=-5", headers: { Prefer: "odata.maxpagesize=-5" } },
  { name: "Prefer: odata.maxpagesize=0", headers: { Prefer: "odata.maxpagesize=0" } },
  { name: "Prefer: odata.maxpagesize overflow", headers: { Prefer: "odata.maxpagesize=99999999999999999999" } },
  { name: "Prefer: empty include-annotations", headers: { Prefer: "odata.include-annotations=" } },
  { name: "Prefer: unterminated quote", headers: { Prefer: 'odata.include-annotations="*' } },
  { name: "Prefer: return=garbage", headers: { Prefer: "return=garbage" } },
  { name: "Prefer: punctuation soup", headers: { Prefer: ",,,;;;===\"\"" } },
  { name: "Prefer: unknown preference", headers: { Prefer: "x-unknown=1" } },
  { name: "If-None-Match garbage on GET", headers: { "If-None-Match": "zzz" } },
  { name: "OData-MaxVersion 3.0", headers: { "OData-MaxVersion": "3.0" } },
  { name: "Accept: text/html", headers: { Accept: "text/html" } },
  { name: "2,000 nested parentheses", path: `accounts?$select=name&$filter=${"(".repeat(2000)}${q("name eq 'x'")}${")".repeat(2000)}` },
  { name: "3,000 nested nots", path: `accounts?$select=name&$filter=${q("not ".repeat(3000) + "name eq 'x'")}` },
  { name: "600 or-terms", path: `accounts?$select=name&$filter=${q(Array.from({ length: 600 }, (_, i) => `name eq 'n${i}'`).join(" or "))}` },
  { name: "duplicate JSON keys", method: "POST", path: "accounts", body: '{"name":"dup1","name":"dup2"}' },
  { name: "lone surrogate escape", method: "POST", path: "accounts", body: '{"name":"\\ud800"}' },
  { name: "string with NUL escape", method: "POST", path: "accounts", body: '{"name":"a\\u0000b"}' },
  { name: "unknown non-$ query parameter", path: "accounts?$top=1&tag=abc&foo=bar" },
].map((c) => ({ method: "GET", path: "accounts?$select=name&$top=2", ...c }));

describe("tolerated inputs: accepted or rejected, never a 5xx", () => {
  for (const c of toleratedCases) {
    it(`${c.method} ${c.name}`, async () => {
      const res = await send(c);
      assert.ok(res.status < 500, `${c.name}: ${res.status} ${res.text.slice(0, 300)}`);
      if (res.status >= 400) assertODataError(res, { context: c.name });
      assert.ok(server.running, `server died on: ${c.name}`);
    });
  }
});

describe("authentication failures (401 bodies are JSON or empty)", () => {
  const authCases = [
    ["no Authorization", null],
    ["empty Bearer", "Bearer "],
    ["Bearer without a space", "Bearerabc"],
    ["Basic scheme", "Basic dXNlcjpwYXNz"],
    ["garbage token", "Bearer !!!"],
    ["10 KiB token", `Bearer ${"A".repeat(10 * 1024)}`],
    ["JWT with alg none", `Bearer ${Buffer.from('{"alg":"none","typ":"JWT"}').toString("base64url")}.${Buffer.from('{"sub":"x"}').toString("base64url")}.`],
  ];
  for (const [label, value] of authCases) {
    it(label, async () => {
      const res = await server.api("GET", "accounts?$top=1", { auth: value !== null, headers: value ? { Authorization: value } : {} });
      assert.equal(res.status, 401, `${label}: ${res.text}`);
      if (res.text.length) JSON.parse(res.text);
    });
  }
});

describe("oversize body", () => {
  it("a 20 MiB JSON body → 413 with an error body", async () => {
    const size = 20 * 1024 * 1024;
    const token = await server.token();
    const head = Buffer.from('{"name":"big","description":"');
    const tail = Buffer.from('"}');
    const fillLen = size - head.length - tail.length;
    const res = await new Promise((resolvePromise, reject) => {
      const req = http.request(
        {
          host: "127.0.0.1",
          port: server.port,
          method: "POST",
          path: "/api/data/v9.2/accounts",
          headers: {
            Authorization: `Bearer ${token}`,
            "Content-Type": "application/json",
            "Content-Length": size,
            Accept: "application/json",
          },
          agent: false,
        },
        (r) => {
          const chunks = [];
          r.on("data", (c) => chunks.push(c));
          r.on("end", () => {
            const text = Buffer.concat(chunks).toString("utf8");
            resolvePromise({ status: r.statusCode, headers: r.headers, text, json: text ? JSON.parse(text) : undefined });
            req.destroy();
          });
        }
      );
      req.on("error", (e) =>
        reject(new Error(`connection failed before a response arrived (${e.code ?? e.message}); a server that ` +
          `refuses a body should answer 413 and drain or linger before closing`))
      );
      // Write in 1 MiB chunks with back-pressure, stopping if a response already arrived.
      const chunk = Buffer.alloc(1024 * 1024, 0x61);
      let written = 0;
      const pump = () => {
        if (written === 0) {
          req.write(head);
        }
        while (written < fillLen) {
          const n = Math.min(chunk.length, fillLen - written);
          written += n;
          if (!req.write(n === chunk.length ? chunk : chunk.subarray(0, n))) {
            req.once("drain", pump);
            return;
          }
        }
        req.end(tail);
      };
      pump();
    });
    assertODataError(res, { status: 413, context: "20 MiB body" });
  });
});

describe("protocol garbage on a raw socket: 4xx or a closed connection, never a crash", () => {
  const rawCases = [
    ["not HTTP at all", "GARBAGE\r\n\r\n"],
    ["unknown HTTP version", "GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n"],
    ["space inside the request target", "GET /api/data/v9.2/accounts?$filter=name eq 'x' HTTP/1.1\r\nHost: x\r\n\r\n"],
    ["header line without a colon", "GET /healthz HTTP/1.1\r\nHost: x\r\nBadHeader\r\n\r\n"],
    ["negative Content-Length", "POST /api/data/v9.2/accounts HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n"],
    ["non-numeric Content-Length", "POST /api/data/v9.2/accounts HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n"],
    ["Content-Length and chunked together", "POST /api/data/v9.2/accounts HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"],
    ["bad chunk size", "POST /api/data/v9.2/accounts HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n"],
    ["NUL in a header value", "GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\u0000b\r\n\r\n"],
    ["body shorter than Content-Length", "POST /api/data/v9.2/accounts HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"name\":"],
    ["absolute-form target to another host", "GET http://example.invalid/api/data/v9.2/accounts HTTP/1.1\r\nHost: example.invalid\r\n\r\n"],
  ];

  it("sanity: a well-formed raw request gets 200", async () => {
    const r = await rawExchange(server.port, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    assert.equal(r.status, 200, r.head);
  });

  for (const [label, text] of rawCases) {
    it(label, async () => {
      const r = await rawExchange(server.port, Buffer.from(text, "latin1"), { timeoutMs: 8000 });
      if (!r.closedWithoutResponse) {
        assert.ok(r.status >= 400 && r.status < 500, `${label}: status ${r.status}\n${r.head}`);
      }
      assert.ok(server.running, `server died on: ${label}\n${server.logTail()}`);
    });
  }
});

describe("after all of the above", () => {
  it("the server is healthy and a normal create still works", async () => {
    assert.ok(server.running, `server process exited\n${server.logTail()}`);
    const h = await fetch(`${server.base}/healthz`);
    assert.equal(h.status, 200);
    const id = await server.createOne("accounts", { name: "still alive" });
    const r = await server.api("GET", `accounts(${id})?$select=name`);
    assert.equal(r.status, 200);
    assert.equal(r.json.name, "still alive");
    // None of the rejected creates left a row behind.
    for (const name of ["big", "x"]) {
      const c = await server.api("GET", `accounts?$select=name&$filter=${q(`name eq '${name}'`)}`);
      assert.equal(c.status, 200);
      assert.equal(c.json.value.length, 0, `a rejected create left "${name}" behind`);
    }
  });
});
