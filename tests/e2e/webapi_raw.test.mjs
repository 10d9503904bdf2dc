// Web API on the wire (raw fetch / node:http): status codes, headers and envelopes that client
// libraries hide. Wire facts: shared/reference/dataverse-webapi.md §1–§5, §10, §12, §13.4.

import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import {
  startServer,
  SCHEMA_FIXTURE,
  GUID_RE,
  ETAG_RE,
  JSON_CONTENT_TYPE,
  uniqueTag,
  idFromEntityUrl,
  assertODataError,
  q,
} from "./helpers.mjs";

const FV = "@OData.Community.Display.V1.FormattedValue";
const LOGICAL = "@Microsoft.Dynamics.CRM.lookuplogicalname";
const NOT_FOUND = "0x80040217";
const CONCURRENCY = "0x80060882";
const DUPLICATE = "0x80040237";
const BAD_QUERY = "0x80060888";

let server;

before(async () => {
  server = await startServer({ schema: SCHEMA_FIXTURE });
});

after(async () => {
  await server?.cleanup();
});

const reEscape = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

function assertJsonResponse(res, context = "") {
  const ct = res.headers.get("content-type");
  assert.ok(
    ct && ct.startsWith(JSON_CONTENT_TYPE),
    `${context}: Content-Type must start with "${JSON_CONTENT_TYPE}" (lowercase), got "${ct}"`
  );
  assert.equal(res.headers.get("odata-version"), "4.0", `${context}: OData-Version`);
}

async function newAccount(body = {}) {
  return server.createOne("accounts", { name: `raw ${uniqueTag()}`, ...body });
}

describe("authentication", () => {
  it("token endpoint: client credentials → bearer JWT", async () => {
    const r = await server.requestToken();
    assert.equal(r.status, 200, r.text);
    assert.ok((r.headers.get("content-type") ?? "").startsWith("application/json"));
    assert.equal(r.json.token_type, "Bearer");
    assert.equal(r.json.expires_in, 3600);
    assert.match(r.json.access_token, /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/, "a JWT (3 base64url parts)");
  });

  it("token endpoint with a tenant segment", async () => {
    const r = await server.requestToken({ tenant: randomUUID() });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.token_type, "Bearer");
    const use = await server.api("GET", "WhoAmI", { token: r.json.access_token });
    assert.equal(use.status, 200);
  });

  it("wrong secret and unknown client → 401 invalid_client", async () => {
    for (const creds of [
      { clientSecret: "not-the-secret" },
      { clientId: randomUUID() },
    ]) {
      const r = await server.requestToken(creds);
      assert.equal(r.status, 401, r.text);
      assert.equal(r.json?.error, "invalid_client");
    }
  });

  it("unsupported grant type → 400 unsupported_grant_type", async () => {
    const res = await fetch(`${server.base}/oauth2/v2.0/token`, {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ grant_type: "password", client_id: server.clientId, username: "u", password: "p" }),
    });
    assert.equal(res.status, 400);
    assert.equal((await res.json()).error, "unsupported_grant_type");
  });

  for (const [label, headers] of [
    ["no Authorization header", {}],
    ["a garbage bearer token", { Authorization: "Bearer not.a.token" }],
    ["a non-Bearer scheme", { Authorization: "Basic dXNlcjpwYXNz" }],
  ]) {
    it(`${label} → 401 with exactly one WWW-Authenticate challenge`, async () => {
      const r = await server.http("GET", "accounts?$top=1", { auth: false, headers });
      assert.equal(r.status, 401, r.text);
      const challenges = [];
      for (let i = 0; i < r.rawHeaders.length; i += 2) {
        if (r.rawHeaders[i].toLowerCase() === "www-authenticate") challenges.push(r.rawHeaders[i + 1]);
      }
      assert.equal(challenges.length, 1, `WWW-Authenticate headers: ${JSON.stringify(challenges)}`);
      assert.match(challenges[0], /^Bearer authorization_uri=[^ ,]+, resource_id=[^ ,]+$/);
      assert.equal(r.headers["odata-version"], "4.0");
      if (r.text.length) JSON.parse(r.text); // a 401 body is JSON or empty (§12)
    });
  }

  it("a token with a tampered signature is rejected", async () => {
    const tok = await server.token();
    const [h, p, s] = tok.split(".");
    const flipped = s.slice(0, -2) + (s.at(-2) === "A" ? "B" : "A") + s.at(-1);
    const r = await server.api("GET", "WhoAmI", { token: `${h}.${p}.${flipped}` });
    assert.equal(r.status, 401);
    const r2 = await server.api("GET", "WhoAmI", { token: `${h}.${p}.` });
    assert.equal(r2.status, 401);
  });

  it("/healthz needs no token", async () => {
    const r = await fetch(`${server.base}/healthz`);
    assert.equal(r.status, 200);
  });
});

describe("service root, $metadata, versions, headers", () => {
  it("service document lists entity sets", async () => {
    const r = await server.api("GET", "");
    assert.equal(r.status, 200, r.text);
    assertJsonResponse(r, "service document");
    assert.equal(r.json["@odata.context"], `${server.apiRoot}$metadata`);
    const accounts = r.json.value.find((e) => e.name === "accounts");
    assert.deepEqual(accounts, { name: "accounts", kind: "EntitySet", url: "accounts" });
    assert.ok(r.json.value.some((e) => e.name === "new_projects"), "custom tables are listed");
  });

  it("$metadata is CSDL XML", async () => {
    const r = await server.api("GET", "$metadata", { headers: { Accept: "application/xml" } });
    assert.equal(r.status, 200);
    assert.match(r.headers.get("content-type") ?? "", /^application\/xml/);
    assert.equal(r.headers.get("odata-version"), "4.0");
    assert.match(r.text, /<EntityType Name="account"/);
    assert.match(r.text, /<Key><PropertyRef Name="accountid"\s*\/><\/Key>/);
    assert.match(r.text, /<Property Name="_primarycontactid_value" Type="Edm.Guid"/);
  });

  for (const v of ["v8.0", "v8.2", "v9.0", "v9.1", "v9.2"]) {
    it(`API version ${v} is accepted`, async () => {
      const r = await server.api("GET", `/api/data/${v}/accounts?$select=name&$top=1`);
      assert.equal(r.status, 200, r.text);
      assertJsonResponse(r, v);
    });
  }

  it("OData-Version: 4.0 and lowercase JSON content type on every kind of response", async () => {
    const id = await newAccount();
    const responses = {
      "GET collection": await server.api("GET", "accounts?$top=1"),
      "GET record": await server.api("GET", `accounts(${id})`),
      "GET property": await server.api("GET", `accounts(${id})/name`),
      "POST 204": await server.api("POST", "accounts", { body: { name: "hdr" } }),
      "PATCH 204": await server.api("PATCH", `accounts(${id})`, { body: { telephone1: "1" }, headers: { "If-Match": "*" } }),
      "404": await server.api("GET", `accounts(${randomUUID()})`),
      "400": await server.api("GET", "accounts?$skip=1"),
      "401": await server.api("GET", "accounts", { auth: false }),
      "$count": await server.api("GET", "accounts/$count"),
      "$metadata": await server.api("GET", "$metadata"),
      "WhoAmI": await server.api("GET", "WhoAmI()"),
    };
    for (const [what, r] of Object.entries(responses)) {
      assert.equal(r.headers.get("odata-version"), "4.0", `${what}: OData-Version`);
      if (r.text.length && (r.headers.get("content-type") ?? "").includes("json")) {
        assertJsonResponse(r, what);
      }
    }
  });
});

describe("create and retrieve on the wire", () => {
  it("POST → 204, empty body, absolute OData-EntityId with a lowercase GUID", async () => {
    const r = await server.api("POST", "accounts", { body: { name: "wire create" } });
    assert.equal(r.status, 204, r.text);
    assert.equal(r.text, "");
    const eid = r.headers.get("odata-entityid");
    assert.match(eid ?? "", new RegExp(`^${reEscape(server.apiRoot)}accounts\\([0-9a-f-]{36}\\)$`), `OData-EntityId: ${eid}`);
    assert.match(idFromEntityUrl(eid), GUID_RE);
  });

  it("POST with Prefer: return=representation → 201 with body, ETag and Preference-Applied", async () => {
    const r = await server.api("POST", "accounts?$select=name,telephone1", {
      body: { name: "wire rep", telephone1: "555", description: "not selected" },
      headers: { Prefer: "return=representation" },
    });
    assert.equal(r.status, 201, r.text);
    assertJsonResponse(r, "201");
    assert.match(r.headers.get("preference-applied") ?? "", /return=representation/);
    assert.match(r.json.accountid, GUID_RE);
    assert.equal(r.json.name, "wire rep");
    assert.equal(r.json.telephone1, "555");
    assert.ok(!("description" in r.json), "$select on POST limits the representation");
    assert.match(r.json["@odata.etag"], ETAG_RE);
    assert.ok(String(r.json["@odata.context"]).startsWith(`${server.apiRoot}$metadata#accounts`));
    assert.equal(r.headers.get("etag"), r.json["@odata.etag"]);
  });

  it("POST may choose the primary key", async () => {
    const id = randomUUID();
    const r = await server.api("POST", "accounts", { body: { accountid: id, name: "chosen id" } });
    assert.equal(r.status, 204, r.text);
    assert.equal(idFromEntityUrl(r.headers.get("odata-entityid")), id);
    const again = await server.api("POST", "accounts", { body: { accountid: id, name: "chosen id again" } });
    assertODataError(again, { status: 412, code: DUPLICATE, context: "duplicate primary key" });
  });

  it("GET record → 200 with ETag header equal to @odata.etag and a /$entity context", async () => {
    const id = await newAccount({ telephone1: "42" });
    const r = await server.api("GET", `accounts(${id})?$select=name,telephone1`);
    assert.equal(r.status, 200);
    assertJsonResponse(r, "GET record");
    assert.match(r.headers.get("etag") ?? "", ETAG_RE);
    assert.equal(r.headers.get("etag"), r.json["@odata.etag"]);
    assert.match(r.json["@odata.context"], /\$metadata#accounts\(.*\)\/\$entity$/);
    assert.equal(r.json.accountid, id);
    assert.equal(r.json.telephone1, "42");
  });

  it("GET / PUT / DELETE a single property", async () => {
    const id = await newAccount({ telephone1: "100" });
    let r = await server.api("GET", `accounts(${id})/telephone1`);
    assert.equal(r.status, 200);
    assert.equal(r.json.value, "100");
    assert.match(r.json["@odata.context"], new RegExp(`\\$metadata#accounts\\(${id}\\)/telephone1$`));

    r = await server.api("PUT", `accounts(${id})/telephone1`, { body: { value: "200" } });
    assert.equal(r.status, 204, r.text);
    r = await server.api("GET", `accounts(${id})/telephone1`);
    assert.equal(r.json.value, "200");

    r = await server.api("DELETE", `accounts(${id})/telephone1`);
    assert.equal(r.status, 204, r.text);
    r = await server.api("GET", `accounts(${id})?$select=telephone1`);
    assert.equal(r.json.telephone1, null);
  });

  it("GET record not found → 404 0x80040217; DELETE → 204 then 404", async () => {
    assertODataError(await server.api("GET", `accounts(${randomUUID()})`), { status: 404, code: NOT_FOUND });
    const id = await newAccount();
    assert.equal((await server.api("DELETE", `accounts(${id})`)).status, 204);
    assertODataError(await server.api("DELETE", `accounts(${id})`), { status: 404, code: NOT_FOUND });
  });

  it("GET by alternate key; missing alternate key → 404", async () => {
    const num = `AK-${uniqueTag()}`;
    const id = await newAccount({ accountnumber: num });
    const r = await server.api("GET", `accounts(accountnumber='${num}')?$select=accountnumber`);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.accountid, id);
    assertODataError(await server.api("GET", `accounts(accountnumber='nope-${num}')`), { status: 404 });
  });

  it("WhoAmI with and without parentheses, with x-ms-dop-hint", async () => {
    for (const p of ["WhoAmI()", "WhoAmI"]) {
      const r = await server.api("GET", p);
      assert.equal(r.status, 200, `${p}: ${r.text}`);
      assertJsonResponse(r, p);
      assert.match(r.json.UserId, GUID_RE);
      assert.match(r.json.BusinessUnitId, GUID_RE);
      assert.match(r.json.OrganizationId, GUID_RE);
      assert.match(String(r.json["@odata.context"]), /\$metadata#Microsoft\.Dynamics\.CRM\.WhoAmIResponse$/);
      const dop = r.headers.get("x-ms-dop-hint");
      assert.match(dop ?? "", /^\d+$/, `${p}: x-ms-dop-hint must be an integer, got ${dop}`);
      assert.ok(Number(dop) >= 1);
    }
  });

  it("RetrieveVersion()", async () => {
    const r = await server.api("GET", "RetrieveVersion()");
    assert.equal(r.status, 200, r.text);
    assert.match(String(r.json.Version), /^9\.\d+/);
    assert.match(String(r.json["@odata.context"]), /RetrieveVersionResponse$/);
  });
});

describe("conditional requests and ETags", () => {
  it("If-None-Match: null is ignored on GET, PATCH (update and upsert) and DELETE", async () => {
    const id = await newAccount({ telephone1: "1" });
    const g = await server.api("GET", `accounts(${id})`, { headers: { "If-None-Match": "null" } });
    assert.equal(g.status, 200);
    const p1 = await server.api("PATCH", `accounts(${id})`, { body: { telephone1: "2" }, headers: { "If-None-Match": "null", "If-Match": "*" } });
    assert.equal(p1.status, 204, p1.text);
    const p2 = await server.api("PATCH", `accounts(${id})`, { body: { telephone1: "3" }, headers: { "If-None-Match": "null" } });
    assert.equal(p2.status, 204, `upsert with If-None-Match: null must not be create-only: ${p2.text}`);
    const after = await server.api("GET", `accounts(${id})?$select=telephone1`);
    assert.equal(after.json.telephone1, "3");
    const d = await server.api("DELETE", `accounts(${id})`, { headers: { "If-None-Match": "null" } });
    assert.equal(d.status, 204, d.text);
  });

  it("conditional GET: 304 when unchanged, 200 after a change, never 304 with $expand or annotations", async () => {
    const id = await newAccount({ telephone1: "a" });
    const first = await server.api("GET", `accounts(${id})?$select=name,telephone1`);
    const etag = first.headers.get("etag");
    assert.match(etag ?? "", ETAG_RE);

    const nm = await server.api("GET", `accounts(${id})?$select=name,telephone1`, { headers: { "If-None-Match": etag } });
    assert.equal(nm.status, 304);
    assert.equal(nm.text, "");

    const withExpand = await server.api("GET", `accounts(${id})?$select=name&$expand=primarycontactid($select=fullname)`, { headers: { "If-None-Match": etag } });
    assert.equal(withExpand.status, 200, "no 304 with $expand (§5.2)");
    const withAnn = await server.api("GET", `accounts(${id})?$select=name`, { headers: { "If-None-Match": etag, Prefer: 'odata.include-annotations="*"' } });
    assert.equal(withAnn.status, 200, "no 304 with annotations (§3.6)");

    await server.api("PATCH", `accounts(${id})`, { body: { telephone1: "b" }, headers: { "If-Match": "*" } });
    const changed = await server.api("GET", `accounts(${id})?$select=name,telephone1`, { headers: { "If-None-Match": etag } });
    assert.equal(changed.status, 200);
    assert.notEqual(changed.headers.get("etag"), etag);
    assert.equal(changed.json.telephone1, "b");
  });

  it("PATCH and DELETE with a stale If-Match → 412 0x80060882", async () => {
    const id = await newAccount();
    const etag = (await server.api("GET", `accounts(${id})`)).headers.get("etag");
    assert.equal((await server.api("PATCH", `accounts(${id})`, { body: { telephone1: "x" }, headers: { "If-Match": etag } })).status, 204);
    assertODataError(await server.api("PATCH", `accounts(${id})`, { body: { telephone1: "y" }, headers: { "If-Match": etag } }), {
      status: 412,
      code: CONCURRENCY,
    });
    assertODataError(await server.api("DELETE", `accounts(${id})`, { headers: { "If-Match": etag } }), { status: 412, code: CONCURRENCY });
    const still = await server.api("GET", `accounts(${id})?$select=telephone1`);
    assert.equal(still.json.telephone1, "x");
  });

  it("PATCH with return=representation → 200 + body", async () => {
    const id = await newAccount();
    const r = await server.api("PATCH", `accounts(${id})?$select=telephone1`, {
      body: { telephone1: "rep" },
      headers: { "If-Match": "*", Prefer: "return=representation" },
    });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.telephone1, "rep");
    assert.equal(r.json.accountid, id);
  });
});

describe("upsert matrix (§5.4)", () => {
  const stale = 'W/"1"';
  const rows = [
    { label: "no conditional headers", headers: () => ({}), exists: { status: 204, entityId: true }, missing: { status: 204, entityId: true } },
    {
      label: "Prefer: return=representation",
      headers: () => ({ Prefer: "return=representation" }),
      exists: { status: 200, body: true },
      missing: { status: 201, body: true },
    },
    { label: "If-Match: *", headers: () => ({ "If-Match": "*" }), exists: { status: 204 }, missing: { status: 404, code: NOT_FOUND } },
    { label: "If-None-Match: *", headers: () => ({ "If-None-Match": "*" }), exists: { status: 412, code: DUPLICATE }, missing: { status: 204 } },
    { label: "If-Match: current ETag", headers: (etag) => ({ "If-Match": etag }), exists: { status: 204 }, missing: { status: 404 } },
    { label: "If-Match: stale ETag", headers: () => ({ "If-Match": stale }), exists: { status: 412, code: CONCURRENCY }, missing: { status: 404 } },
  ];

  for (const row of rows) {
    it(`${row.label}: record exists → ${row.exists.status}`, async () => {
      const id = await newAccount({ telephone1: "before" });
      const etag = (await server.api("GET", `accounts(${id})`)).headers.get("etag");
      const r = await server.api("PATCH", `accounts(${id})`, { body: { telephone1: "after" }, headers: row.headers(etag) });
      const now = (await server.api("GET", `accounts(${id})?$select=telephone1`)).json;
      if (row.exists.status >= 400) {
        assertODataError(r, { status: row.exists.status, code: row.exists.code });
        assert.equal(now.telephone1, "before", "a failed upsert changes nothing");
        return;
      }
      assert.equal(r.status, row.exists.status, r.text);
      assert.equal(now.telephone1, "after");
      if (row.exists.entityId) assert.equal(idFromEntityUrl(r.headers.get("odata-entityid")), id);
      if (row.exists.body) {
        assert.equal(r.json.accountid, id);
        assert.equal(r.json.telephone1, "after");
        assert.match(r.headers.get("etag") ?? "", ETAG_RE);
      }
    });

    it(`${row.label}: record missing → ${row.missing.status}`, async () => {
      const id = randomUUID();
      const r = await server.api("PATCH", `accounts(${id})`, { body: { name: `upsert ${id}` }, headers: row.headers('W/"12345"') });
      const get = await server.api("GET", `accounts(${id})?$select=name`);
      if (row.missing.status >= 400) {
        assertODataError(r, { status: row.missing.status, code: row.missing.code });
        assert.equal(get.status, 404, "nothing is created");
        return;
      }
      assert.equal(r.status, row.missing.status, r.text);
      assert.equal(get.status, 200, "the record was created with the id from the URL");
      assert.equal(get.json.name, `upsert ${id}`);
      if (row.missing.entityId) assert.equal(idFromEntityUrl(r.headers.get("odata-entityid")), id);
      if (row.missing.body) {
        assert.equal(r.json.accountid, id);
        assert.match(r.headers.get("etag") ?? "", ETAG_RE);
      }
    });
  }

  it("alternate-key upsert → 204 with an OData-EntityId for the row; body values for key columns are ignored on update", async () => {
    const code = `UP-${uniqueTag()}`;
    const r = await server.api("PATCH", `new_projects(new_code='${code}')`, { body: { new_name: "alt v1" } });
    assert.equal(r.status, 204, r.text);
    const eid = r.headers.get("odata-entityid") ?? "";
    assert.ok(eid.startsWith(`${server.apiRoot}new_projects(`), `OData-EntityId: ${eid}`);
    const got = await server.api("GET", `new_projects(new_code='${code}')?$select=new_name,new_code`);
    assert.equal(got.status, 200);
    assert.equal(got.json.new_code, code);
    const u = await server.api("PATCH", `new_projects(new_code='${code}')`, { body: { new_name: "alt v2", new_code: `${code}-other` } });
    assert.equal(u.status, 204, u.text);
    const after = await server.api("GET", `new_projects(new_code='${code}')?$select=new_name,new_code`);
    assert.equal(after.status, 200, "key column unchanged by the update path");
    assert.equal(after.json.new_name, "alt v2");
    assert.equal(after.json.new_projectid, got.json.new_projectid);
  });
});

describe("query options on the wire", () => {
  const tag = uniqueTag("wq");
  const filter = q(`startswith(name,'${tag}')`);

  before(async () => {
    for (let i = 1; i <= 5; i++) await newAccount({ name: `${tag}-${i}`, revenue: i * 100, industrycode: 1 });
  });

  it("$skip is rejected with 400", async () => {
    assertODataError(await server.api("GET", "accounts?$skip=1"), { status: 400 });
  });

  it("unknown entity set → 404 0x80060888", async () => {
    assertODataError(await server.api("GET", "nosuchtables"), { status: 404, code: BAD_QUERY });
    assertODataError(await server.api("GET", `nosuchtables(${randomUUID()})`), { status: 404, code: BAD_QUERY });
  });

  it("unknown column in $select / $filter / $orderby → 400 0x80060888", async () => {
    const e = assertODataError(await server.api("GET", "accounts?$select=name,nosuchcolumn"), { status: 400, code: BAD_QUERY });
    assert.match(e.message, /nosuchcolumn/);
    assertODataError(await server.api("GET", `accounts?$filter=${q("nosuchcolumn eq 1")}`), { status: 400, code: BAD_QUERY });
    assertODataError(await server.api("GET", "accounts?$orderby=nosuchcolumn"), { status: 400, code: BAD_QUERY });
  });

  it("unknown navigation segment → 400/404 0x80060888", async () => {
    const id = await newAccount();
    assertODataError(await server.api("GET", `accounts(${id})/nosuchnav`), { status: [400, 404], code: BAD_QUERY });
    assertODataError(await server.api("GET", "accounts?$expand=nosuchnav"), { status: 400, code: BAD_QUERY });
  });

  it("odata.maxpagesize → Preference-Applied, nextLink on the request's base URL, pages cover all rows once", async () => {
    const seen = [];
    let url = `accounts?$select=name&$filter=${filter}&$orderby=name asc`;
    let pages = 0;
    while (url) {
      const r = await server.api("GET", url, { headers: { Prefer: "odata.maxpagesize=2" } });
      assert.equal(r.status, 200, r.text);
      assert.match(r.headers.get("preference-applied") ?? "", /odata\.maxpagesize=2/);
      assert.ok(r.json.value.length <= 2);
      seen.push(...r.json.value.map((x) => x.name));
      const next = r.json["@odata.nextLink"];
      if (next !== undefined) {
        assert.ok(next.startsWith(server.apiRoot), `nextLink ${next} must start with ${server.apiRoot}`);
        assert.match(next, /(\$|%24)skiptoken=/);
      }
      url = next;
      assert.ok(++pages < 10, "too many pages");
    }
    assert.deepEqual(seen, [1, 2, 3, 4, 5].map((i) => `${tag}-${i}`));
    assert.equal(pages, 3);
  });

  it("a nextLink re-requested with a trailing '/' still works (dataverse-webapi quirk, §1.6)", async () => {
    const r1 = await server.api("GET", `accounts?$select=name&$filter=${filter}&$orderby=name asc`, { headers: { Prefer: "odata.maxpagesize=2" } });
    const next = r1.json["@odata.nextLink"];
    assert.ok(next);
    const plain = await server.api("GET", next, { headers: { Prefer: "odata.maxpagesize=2" } });
    const slashed = await server.api("GET", `${next}/`, { headers: { Prefer: "odata.maxpagesize=2" } });
    assert.equal(slashed.status, 200, slashed.text);
    assert.deepEqual(slashed.json.value.map((x) => x.name), plain.json.value.map((x) => x.name));
  });

  it("$top limits rows without a nextLink; $count=true adds @odata.count", async () => {
    const r = await server.api("GET", `accounts?$select=name&$filter=${filter}&$top=2&$count=true`);
    assert.equal(r.status, 200);
    assert.equal(r.json.value.length, 2);
    assert.equal(r.json["@odata.nextLink"], undefined);
    assert.equal(r.json["@odata.count"], 5);
  });

  it("/$count → text/plain number", async () => {
    const r = await server.api("GET", "accounts/$count");
    assert.equal(r.status, 200);
    assert.match(r.headers.get("content-type") ?? "", /^text\/plain/);
    assert.match(r.text.replace(/^\uFEFF/, "").trim(), /^\d+$/);
    assert.ok(Number(r.text.replace(/^\uFEFF/, "").trim()) >= 5);
  });

  it("two Prefer header lines are merged", async () => {
    const r = await server.http("GET", `accounts?$select=name,revenue&$filter=${filter}&$orderby=name%20asc`, {
      headers: { Prefer: ["odata.maxpagesize=2", 'odata.include-annotations="*"'] },
    });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.value.length, 2, "maxpagesize from the first line");
    assert.ok(r.json["@odata.nextLink"]);
    assert.ok(`revenue${FV}` in r.json.value[0], "annotations from the second line");
  });

  it("include-annotations: unquoted single name, namespace wildcard, and totalrecordcount", async () => {
    const id = await newAccount({ revenue: 5, "primarycontactid@odata.bind": `/contacts(${await server.createOne("contacts", { lastname: tag })})` });
    const path = `accounts(${id})?$select=revenue,_primarycontactid_value`;

    const only = await server.api("GET", path, { headers: { Prefer: "odata.include-annotations=OData.Community.Display.V1.FormattedValue" } });
    assert.equal(only.status, 200);
    assert.ok(`revenue${FV}` in only.json);
    assert.ok(!(`_primarycontactid_value${LOGICAL}` in only.json), "only the requested annotation");

    const crm = await server.api("GET", path, { headers: { Prefer: 'odata.include-annotations="Microsoft.Dynamics.CRM.*"' } });
    assert.equal(crm.json[`_primarycontactid_value${LOGICAL}`], "contact");
    assert.ok(!(`revenue${FV}` in crm.json), "wildcard limited to its namespace");

    const total = await server.api("GET", `accounts?$select=name&$filter=${filter}&$count=true`, {
      headers: { Prefer: 'odata.include-annotations="Microsoft.Dynamics.CRM.totalrecordcount,Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded"' },
    });
    assert.equal(total.json["@Microsoft.Dynamics.CRM.totalrecordcount"], 5);
    assert.equal(total.json["@Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded"], false);
  });

  it("collection $expand gives an array and a per-record nextLink", async () => {
    const acct = await newAccount({ name: `exp-${tag}` });
    await server.createOne("contacts", { lastname: tag, "parentcustomerid_account@odata.bind": `/accounts(${acct})` });
    const r = await server.api("GET", `accounts(${acct})?$select=name&$expand=contact_customer_accounts($select=lastname)`);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.contact_customer_accounts.length, 1);
    assert.equal(r.json.contact_customer_accounts[0].lastname, tag);
  });
});

describe("URL decoding and key forms", () => {
  it("repeated slashes in the path are collapsed", async () => {
    for (const p of ["/api/data/v9.2//accounts?$top=1", "//api/data/v9.2/accounts?$top=1", "/api//data/v9.2/accounts?$top=1"]) {
      const r = await server.api("GET", `${server.base}${p}`);
      assert.equal(r.status, 200, `${p}: ${r.status} ${r.text}`);
      assert.ok(Array.isArray(r.json.value), p);
    }
  });

  it("GUID keys: uppercase, braces (raw and %7B%7D), and the named-key form", async () => {
    const id = await newAccount();
    const forms = [
      ["uppercase", `accounts(${id.toUpperCase()})`],
      ["encoded braces", `accounts(%7B${id}%7D)`],
    ];
    for (const [label, p] of forms) {
      const r = await server.api("GET", `${p}?$select=name`);
      assert.equal(r.status, 200, `${label}: ${r.text}`);
      assert.equal(r.json.accountid, id, `${label}: ids are returned lowercase`);
    }
    const raw = await server.http("GET", `accounts({${id.toUpperCase()}})?$select=name`);
    assert.equal(raw.status, 200, `raw braces: ${raw.text}`);
    assert.equal(raw.json.accountid, id);
  });

  it("'+' in the query is a space; %2B is a literal plus", async () => {
    const t = uniqueTag("plus");
    await newAccount({ name: `${t} a b` });
    await newAccount({ name: `${t} a+b` });
    const spaced = await server.api("GET", `${server.apiRoot}accounts?$select=name&$filter=name+eq+'${t}+a+b'`);
    assert.equal(spaced.status, 200, spaced.text);
    assert.deepEqual(spaced.json.value.map((x) => x.name), [`${t} a b`]);
    const plus = await server.api("GET", `${server.apiRoot}accounts?$select=name&$filter=name%20eq%20'${t}%20a%2Bb'`);
    assert.equal(plus.status, 200, plus.text);
    assert.deepEqual(plus.json.value.map((x) => x.name), [`${t} a+b`]);
  });

  it("percent-encoded quotes and parentheses in $filter", async () => {
    const t = uniqueTag("pct");
    await newAccount({ name: `${t} O'Neil` });
    const r = await server.api("GET", `accounts?$select=name&$filter=${encodeURIComponent(`name eq '${t} O''Neil'`).replace(/'/g, "%27").replace(/\(/g, "%28").replace(/\)/g, "%29")}`);
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json.value.map((x) => x.name), [`${t} O'Neil`]);
  });

  it("JSON bodies with \\u escapes and surrogate pairs are decoded", async () => {
    const r = await server.api("POST", "accounts?$select=name", {
      body: '{"name":"caf\\u00e9 \\ud83d\\ude00 \\"q\\""}',
      headers: { Prefer: "return=representation" },
    });
    assert.equal(r.status, 201, r.text);
    assert.equal(r.json.name, 'café 😀 "q"');
  });

  it("@odata.bind without a leading slash, by alternate key, as a lenient absolute URL", async () => {
    const contact = await server.createOne("contacts", { lastname: uniqueTag() });
    const num = `B-${uniqueTag()}`;
    const parent = await newAccount({ accountnumber: num });
    const id = await newAccount({
      "primarycontactid@odata.bind": `contacts(${contact})`,
      "parentaccountid@odata.bind": `accounts(accountnumber='${num}')`,
    });
    let r = await server.api("GET", `accounts(${id})?$select=_primarycontactid_value,_parentaccountid_value`);
    assert.equal(r.json._primarycontactid_value, contact);
    assert.equal(r.json._parentaccountid_value, parent);

    // dataverse-webapi's "https:/host/…" (one slash lost) must resolve by the trailing set(key) (§1.5).
    const c2 = await server.createOne("contacts", { lastname: uniqueTag() });
    const p = await server.api("PATCH", `accounts(${id})`, {
      body: { "primarycontactid@odata.bind": `https:/org.crm.dynamics.com/api/data/v9.2/contacts(${c2})` },
      headers: { "If-Match": "*" },
    });
    assert.equal(p.status, 204, p.text);
    r = await server.api("GET", `accounts(${id})?$select=_primarycontactid_value`);
    assert.equal(r.json._primarycontactid_value, c2);
  });

  it("composite alternate key in the URL, in any order", async () => {
    const region = uniqueTag("r").slice(0, 12);
    const r = await server.api("PATCH", `new_assignments(new_region='${region}',new_seq=3)`, { body: { new_name: "three" } });
    assert.equal(r.status, 204, r.text);
    const a = await server.api("GET", `new_assignments(new_seq=3,new_region='${region}')?$select=new_name`);
    assert.equal(a.status, 200, a.text);
    assert.equal(a.json.new_name, "three");
  });
});
