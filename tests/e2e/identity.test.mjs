// External identity (OpenID Connect) and impersonation: tributary trusts an issuer whose JWKS is
// served by this test (node http, keys from `jose`); RS256 and ES256 tokens of that issuer map to
// systemusers by applicationid (app-only) or azureactivedirectoryobjectid (delegated); keys rotate
// without a restart; bad tokens get 401 with a JSON error and a WWW-Authenticate challenge; the
// MSCRMCallerID / CallerObjectId headers impersonate when the caller holds
// prvActOnBehalfOfAnotherUser.

import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import crypto, { randomUUID } from "node:crypto";
import fs from "node:fs/promises";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import * as jose from "jose";
import { startServer, assertODataError, freePort, sleep, GUID_RE } from "./helpers.mjs";

const ISSUER = "https://login.example/e2e-tenant/v2.0";
const DEAD_ISSUER = "https://login.example/unreachable/v2.0";
const AUDIENCE = "https://org.example.com";
const NOT_A_MEMBER = "0x80072560";

const APP_ID = randomUUID(); // an application user (no roles)
const USER_OID = randomUUID(); // a delegated user (no roles)
const STRANGER_APP_ID = randomUUID(); // a valid token, but no systemuser

let server;
let jwksServer;
let jwksUrl;
let jwksHits = 0;
let published = []; // the JWKs the issuer publishes now
let configDir;
const keys = {};
const ids = {};

async function keyPair(alg, kid) {
  const { publicKey, privateKey } = await jose.generateKeyPair(alg, { extractable: true });
  const jwk = { ...(await jose.exportJWK(publicKey)), kid, alg, use: "sig" };
  return { alg, kid, publicKey, privateKey, jwk };
}

/** A token of ISSUER (or `iss`) signed with `key`; `claims` override the app-only defaults. */
async function sign(key, { claims = {}, iss = ISSUER, aud = AUDIENCE, exp = "10m", header = {} } = {}) {
  const jwt = new jose.SignJWT({ appid: APP_ID, tid: "e2e-tenant", ver: "2.0", ...claims })
    .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: "JWT", ...header })
    .setIssuer(iss)
    .setIssuedAt()
    .setNotBefore("-1m");
  if (aud !== null) jwt.setAudience(aud);
  jwt.setExpirationTime(exp);
  return jwt.sign(key.privateKey);
}

const b64url = (s) => Buffer.from(s).toString("base64url");

function whoAmI(token, headers = {}) {
  return server.api("GET", "WhoAmI", { token, headers });
}

async function expectUser(token, userId, headers = {}) {
  const r = await whoAmI(token, headers);
  assert.equal(r.status, 200, `WhoAmI: ${r.status} ${r.text}`);
  assert.equal(r.json.UserId, userId);
  return r;
}

/** 401 with a Dataverse error body and the Bearer challenge; returns the error. */
async function expect401(token, fragment, headers = {}) {
  const r = await whoAmI(token, headers);
  const e = assertODataError(r, { status: 401, context: fragment });
  assert.match(r.headers.get("www-authenticate") ?? "", /^Bearer authorization_uri=/, "WWW-Authenticate");
  if (fragment) assert.match(e.message, fragment);
  return e;
}

before(async () => {
  keys.rsa = await keyPair("RS256", "rsa-1");
  keys.ec = await keyPair("ES256", "ec-1");
  keys.rsa2 = await keyPair("RS256", "rsa-2");
  published = [keys.rsa.jwk, keys.ec.jwk];
  jwksServer = http.createServer((req, res) => {
    jwksHits++;
    if (req.url !== "/keys") {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ keys: published }));
  });
  await new Promise((r) => jwksServer.listen(0, "127.0.0.1", r));
  jwksUrl = `http://127.0.0.1:${jwksServer.address().port}/keys`;
  const deadPort = await freePort();

  configDir = await fs.mkdtemp(path.join(os.tmpdir(), "tributary-identity-"));
  const config = path.join(configDir, "tributary.yaml");
  await fs.writeFile(
    config,
    [
      "identity:",
      "  issuers:",
      `    - issuer: ${ISSUER}`,
      `      audience: [ "https://other.example.com", "${AUDIENCE}/" ]`,
      `      jwks_uri: ${jwksUrl}`,
      "      jwks_min_refresh_seconds: 1",
      `    - issuer: ${DEAD_ISSUER}`,
      `      audience: ${AUDIENCE}`,
      `      jwks_uri: http://127.0.0.1:${deadPort}/keys`,
      "",
    ].join("\n")
  );
  server = await startServer({ args: ["--config", config] });

  const me = await server.api("GET", "WhoAmI");
  assert.equal(me.status, 200, me.text);
  ids.admin = me.json.UserId;
  ids.bu = me.json.BusinessUnitId;
  ids.app = await server.createOne("systemusers", {
    firstname: "E2E",
    lastname: "App",
    applicationid: APP_ID,
    "businessunitid@odata.bind": `/businessunits(${ids.bu})`,
  });
  ids.user = await server.createOne("systemusers", {
    firstname: "E2E",
    lastname: "Delegated",
    azureactivedirectoryobjectid: USER_OID,
    "businessunitid@odata.bind": `/businessunits(${ids.bu})`,
  });
});

after(async () => {
  await server?.cleanup();
  await new Promise((r) => (jwksServer ? jwksServer.close(r) : r()));
  if (configDir) await fs.rm(configDir, { recursive: true, force: true });
});

describe("external tokens", () => {
  it("accepts RS256 app-only tokens and maps them by applicationid", async () => {
    assert.match(ids.app, GUID_RE);
    await expectUser(await sign(keys.rsa), ids.app);
  });

  it("accepts ES256 tokens; azp works as the app id", async () => {
    await expectUser(await sign(keys.ec), ids.app);
    await expectUser(await sign(keys.ec, { claims: { appid: undefined, azp: APP_ID, idtyp: "app" } }), ids.app);
  });

  it("maps delegated tokens (scp) by azureactivedirectoryobjectid", async () => {
    const token = await sign(keys.rsa, { claims: { scp: "user_impersonation", oid: USER_OID } });
    await expectUser(token, ids.user);
    // The Dataverse client library sends its own headers; DynamicsWebApi with this token works too.
    const dwa = await server.dwa({ onTokenRefresh: async () => token });
    const r = await dwa.callFunction({ name: "WhoAmI" });
    assert.equal(r.UserId, ids.user);
  });

  it("answers 403 'not a member of the organization' for a valid token of an unknown user", async () => {
    const r = await whoAmI(await sign(keys.rsa, { claims: { appid: STRANGER_APP_ID } }));
    const e = assertODataError(r, { status: 403, code: NOT_A_MEMBER });
    assert.match(e.message, /The user is not a member of the organization/);
    const d = await whoAmI(await sign(keys.ec, { claims: { scp: "user_impersonation", oid: randomUUID() } }));
    assertODataError(d, { status: 403, code: NOT_A_MEMBER });
  });

  it("keeps accepting the server's own HS256 tokens", async () => {
    await expectUser(await server.token(), ids.admin);
  });
});

describe("bad tokens get 401 with a JSON error and a challenge", () => {
  it("expired", async () => {
    await expect401(await sign(keys.rsa, { exp: Math.floor(Date.now() / 1000) - 3600 }), /expired/);
  });

  it("not valid yet", async () => {
    const t = await new jose.SignJWT({ appid: APP_ID })
      .setProtectedHeader({ alg: "RS256", kid: keys.rsa.kid })
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setNotBefore("10m")
      .setExpirationTime("20m")
      .sign(keys.rsa.privateKey);
    await expect401(t, /not valid yet/);
  });

  it("wrong audience, or none", async () => {
    await expect401(await sign(keys.rsa, { aud: "https://evil.example.com" }), /audience/);
    await expect401(await sign(keys.rsa, { aud: null }), /audience/);
  });

  it("untrusted issuer", async () => {
    await expect401(await sign(keys.rsa, { iss: "https://evil.example/v2.0" }), /issuer .* is not trusted/);
  });

  it("tampered signature and tampered payload", async () => {
    const t = await sign(keys.rsa);
    const [h, p, s] = t.split(".");
    const sig = Buffer.from(s, "base64url");
    sig[10] ^= 0xff;
    await expect401(`${h}.${p}.${sig.toString("base64url")}`, /signature/);
    const claims = JSON.parse(Buffer.from(p, "base64url").toString());
    claims.appid = STRANGER_APP_ID;
    await expect401(`${h}.${b64url(JSON.stringify(claims))}.${s}`, /signature/);
  });

  it("alg none", async () => {
    const body = b64url(JSON.stringify({ iss: ISSUER, aud: AUDIENCE, appid: APP_ID, exp: Math.floor(Date.now() / 1000) + 600 }));
    await expect401(`${b64url(JSON.stringify({ alg: "none", typ: "JWT" }))}.${body}.`, /not accepted/);
    await expect401(`${b64url(JSON.stringify({ alg: "none", kid: keys.rsa.kid }))}.${body}.`, /not accepted/);
  });

  it("HS256 signed with the issuer's public key (algorithm confusion)", async () => {
    const header = b64url(JSON.stringify({ alg: "HS256", kid: keys.rsa.kid, typ: "JWT" }));
    const body = b64url(JSON.stringify({ iss: ISSUER, aud: AUDIENCE, appid: APP_ID, exp: Math.floor(Date.now() / 1000) + 600 }));
    const pem = await jose.exportSPKI(keys.rsa.publicKey);
    for (const secret of [pem, JSON.stringify(keys.rsa.jwk)]) {
      const mac = crypto.createHmac("sha256", secret).update(`${header}.${body}`).digest("base64url");
      await expect401(`${header}.${body}.${mac}`, /HS256.*not accepted/);
    }
  });

  it("a kid the issuer does not publish, and a token without kid", async () => {
    const stranger = await keyPair("RS256", "never-published");
    await expect401(await sign(stranger), /never-published/);
    await expect401(await sign(keys.rsa, { header: { kid: undefined } }), /kid/);
  });

  it("an algorithm that does not fit the key", async () => {
    // An ES256 token claiming the RSA key's kid.
    await expect401(await sign({ ...keys.ec, kid: keys.rsa.kid }), /does not fit/);
  });

  it("an issuer whose keys cannot be fetched", async () => {
    await expect401(await sign(keys.rsa, { iss: DEAD_ISSUER }), /could not be fetched/);
  });

  it("malformed bearer values", async () => {
    for (const t of ["x", "a.b", "a.b.c", "...", "e30.e30.e30"]) await expect401(t);
    const r = await server.api("GET", "WhoAmI", { auth: false, headers: { Authorization: "Basic abc" } });
    assertODataError(r, { status: 401 });
  });
});

describe("key rotation", () => {
  it("a token signed with a new key works without a restart; the retired key stops working", async () => {
    await expectUser(await sign(keys.rsa), ids.app);
    published = [keys.rsa2.jwk, keys.ec.jwk];
    await sleep(1100); // jwks_min_refresh_seconds: 1
    await expectUser(await sign(keys.rsa2), ids.app);
    await sleep(1100);
    await expect401(await sign(keys.rsa), /not in the key set/);
  });

  it("many tokens with an unknown kid cause at most one fetch at a time", async () => {
    await sleep(1100);
    const stranger = await keyPair("ES256", "storm");
    const token = await sign(stranger);
    const before = jwksHits;
    const results = await Promise.all(Array.from({ length: 20 }, () => whoAmI(token)));
    for (const r of results) assertODataError(r, { status: 401 });
    const fetched = jwksHits - before;
    assert.ok(fetched <= 2, `20 requests fetched the key set ${fetched} times`);
  });
});

describe("impersonation", () => {
  it("MSCRMCallerID: the admin acts as another user", async () => {
    await expectUser(await server.token(), ids.app, { MSCRMCallerID: ids.app });
    await expectUser(await server.token(), ids.user, { MSCRMCallerID: ids.user.toUpperCase() });
  });

  it("CallerObjectId: the admin acts as the user with that Entra object id", async () => {
    await expectUser(await server.token(), ids.user, { CallerObjectId: USER_OID });
  });

  it("works with an external token of a user holding the privilege", async () => {
    // The admin's identity through the external issuer: bind an Entra object id to it.
    const adminOid = randomUUID();
    const r = await server.api("PATCH", `systemusers(${ids.admin})`, { body: { azureactivedirectoryobjectid: adminOid } });
    assert.equal(r.status, 204, r.text);
    const token = await sign(keys.ec, { claims: { scp: "user_impersonation", oid: adminOid } });
    await expectUser(token, ids.admin);
    await expectUser(token, ids.app, { MSCRMCallerID: ids.app });
  });

  it("is refused (403, naming prvActOnBehalfOfAnotherUser) for a caller without the privilege", async () => {
    const token = await sign(keys.ec); // the application user: no roles
    await expectUser(token, ids.app);
    const r = await whoAmI(token, { MSCRMCallerID: ids.admin });
    const e = assertODataError(r, { status: 403 });
    assert.match(e.message, /prvActOnBehalfOfAnotherUser/);
    const o = await whoAmI(token, { CallerObjectId: USER_OID });
    assertODataError(o, { status: 403 });
  });

  it("an unknown or malformed impersonation target is a clear error", async () => {
    const admin = await server.token();
    const unknown = await whoAmI(admin, { MSCRMCallerID: randomUUID() });
    assert.match(assertODataError(unknown, { status: 404 }).message, /impersonate/);
    const unknownOid = await whoAmI(admin, { CallerObjectId: randomUUID() });
    assert.match(assertODataError(unknownOid, { status: 404 }).message, /impersonate/);
    const bad = await whoAmI(admin, { MSCRMCallerID: "not-a-guid" });
    assert.match(assertODataError(bad, { status: 400 }).message, /MSCRMCallerID/);
  });
});

describe("disabled users", () => {
  it("a disabled application user's token is refused", async () => {
    const appId = randomUUID();
    const id = await server.createOne("systemusers", {
      firstname: "E2E",
      lastname: "Disabled",
      applicationid: appId,
      "businessunitid@odata.bind": `/businessunits(${ids.bu})`,
    });
    const token = await sign(keys.ec, { claims: { appid: appId } });
    await expectUser(token, id);
    const r = await server.api("PATCH", `systemusers(${id})`, { body: { isdisabled: true } });
    assert.equal(r.status, 204, r.text);
    await expect401(token, /disabled/);
  });
});
