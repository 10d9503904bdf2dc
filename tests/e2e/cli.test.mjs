// The administrator commands `tributary user …` and `tributary role …` against a data folder: a
// role and an application user made with the server stopped work once it starts (token from the
// printed client_id/client_secret, reads and creates allowed, other tables 403 0x80040220);
// changes made while the server runs (a role, a disabled user, a new secret) apply within the
// principal cache's 30 s; the rows look like the Web API's; bad arguments exit 2; client secrets
// never reach the data folder in clear.

import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import fs from "node:fs/promises";
import path from "node:path";
import { startServer, assertODataError, sleep, BIN, REPO_ROOT, GUID_RE } from "./helpers.mjs";

const PRIVILEGE_DENIED = "0x80040220";

let server;
let app; // {systemuserid, client_id, client_secret} of the application user made before the start
const secrets = []; // every client secret the CLI printed

/** Runs `tributary ARGS` with the server's environment; resolves {code, stdout, stderr}. */
function cli(...args) {
  return new Promise((resolve, reject) => {
    const child = spawn(BIN, args, { cwd: REPO_ROOT, env: server.env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
    child.on("error", reject);
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** Runs the CLI with `--data DIR` after the command words. */
function run(words, ...options) {
  return cli(...words.split(" "), "--data", server.dataDir, ...options);
}

async function runOk(words, ...options) {
  const r = await run(words, ...options);
  assert.equal(r.code, 0, `tributary ${words} ${options.join(" ")} → exit ${r.code}\n${r.stderr}`);
  try {
    return JSON.parse(r.stdout);
  } catch {
    return r.stdout;
  }
}

function token(clientId, clientSecret) {
  return server.requestToken({ clientId, clientSecret });
}

async function tokenOf(user) {
  const r = await token(user.client_id, user.client_secret);
  assert.equal(r.status, 200, `token: ${r.status} ${r.text}`);
  return r.json.access_token;
}

/** Polls fn() every second until it returns true, for at most `seconds`. */
async function eventually(fn, seconds, what) {
  const end = Date.now() + seconds * 1000;
  for (;;) {
    if (await fn()) return;
    if (Date.now() > end) assert.fail(`not within ${seconds} s: ${what}`);
    await sleep(1000);
  }
}

before(async () => {
  server = await startServer({ start: false });
});

after(async () => {
  await server?.cleanup();
});

describe("tributary user / role with the server stopped", () => {
  it("creates a role with privileges at depths and shows it", async () => {
    const role = await runOk(
      "role create",
      "--name", "Account clerk",
      "--privilege", "prvReadAccount:Global",
      "--privilege", "prvCreateAccount:Basic"
    );
    assert.match(role.roleid, GUID_RE);
    assert.deepEqual(role.privileges, { prvReadAccount: "Global", prvCreateAccount: "Basic" });
    const shown = await runOk("role show", "--role", "account clerk", "--json");
    assert.equal(shown.roleid, role.roleid);
    assert.equal(shown.systemadministrator, false);
    assert.deepEqual(
      shown.privileges.map((p) => [p.name, p.depth]),
      [["prvCreateAccount", "Basic"], ["prvReadAccount", "Global"]]
    );
    const text = await runOk("role show", "--role", role.roleid);
    assert.match(text, /prvReadAccount\s+Global/);
    const list = await runOk("role list", "--json");
    const names = list.map((r) => r.name).sort();
    assert.deepEqual(names, ["Account clerk", "System Administrator"]);
    assert.equal(list.find((r) => r.name === "System Administrator").systemadministrator, true);
  });

  it("creates an application user with the role and prints its credentials once", async () => {
    app = await runOk("user create", "--name", "CLI integration", "--app", "--role", "Account clerk");
    assert.match(app.systemuserid, GUID_RE);
    assert.match(app.client_id, GUID_RE);
    assert.equal(typeof app.client_secret, "string");
    assert.ok(app.client_secret.length >= 32, "a long random secret");
    secrets.push(app.client_secret);
    const users = await runOk("user list", "--json");
    const me = users.find((u) => u.systemuserid === app.systemuserid);
    assert.ok(me, JSON.stringify(users));
    assert.equal(me.fullname, "# CLI integration");
    assert.equal(me.applicationid, app.client_id);
    assert.equal(me.isdisabled, false);
    assert.deepEqual(me.roles, ["Account clerk"]);
    const text = await runOk("user list");
    assert.match(text, /^ID\s+NAME\s+BUSINESS UNIT\s+APPLICATION ID\s+DISABLED\s+ROLES/);
    assert.ok(!text.includes(app.client_secret), "user list shows no secret");
  });

  it("creates a user for an external identity (object id), once", async () => {
    const oid = randomUUID();
    const u = await runOk("user create", "--name", "Jane Q Doe", "--email", "jane@example.com", "--object-id", oid);
    assert.match(u.systemuserid, GUID_RE);
    assert.equal(u.client_secret, undefined, "no credentials for a non-application user");
    const users = await runOk("user list", "--json");
    const jane = users.find((x) => x.systemuserid === u.systemuserid);
    assert.equal(jane.fullname, "Jane Q Doe");
    assert.equal(jane.azureactivedirectoryobjectid, oid);
    assert.equal(jane.internalemailaddress, "jane@example.com");
    const again = await run("user create", "--name", "Jane again", "--object-id", oid);
    assert.equal(again.code, 2, again.stderr);
    assert.match(again.stderr, /object id/);
    // By email, by name: the same user.
    assert.match(await runOk("user add-role", "--user", "jane@example.com", "--role", "Account clerk"), /added the role/);
    assert.match(await runOk("user add-role", "--user", "jane q doe", "--role", "Account clerk"), /already has the role/);
    assert.match(await runOk("user remove-role", "--user", u.systemuserid, "--role", "Account clerk"), /removed the role/);
  });

  it("bad arguments and unknown names exit 2 with a message on stderr", async () => {
    const cases = [
      [["role create", "--name", "X", "--privilege", "prvReadNoSuchTable"], /unknown privilege 'prvReadNoSuchTable'/],
      [["role create", "--name", "X", "--privilege", "prvReadAccount:Sideways"], /depth/],
      [["role create", "--name", "Account clerk"], /exists/],
      [["role add-privilege", "--role", "No such role", "--privilege", "prvReadAccount"], /unknown role 'No such role'/],
      [["role add-privilege", "--role", "Account clerk", "--privilege", "prvReadAccount", "--depth", "9"], /--depth/],
      [["role remove-privilege", "--role", "Account clerk", "--privilege", "prvDeleteAccount"], /does not have/],
      [["role show", "--role", randomUUID()], /unknown role/],
      [["user add-role", "--user", "Nobody", "--role", "Account clerk"], /unknown user 'Nobody'/],
      [["user add-role", "--user", app.systemuserid, "--role", "Nothing"], /unknown role 'Nothing'/],
      [["user remove-role", "--user", app.systemuserid, "--role", "System Administrator"], /does not have/],
      [["user disable", "--user", randomUUID()], /unknown user/],
      [["user create", "--name", "X", "--object-id", "not-a-guid"], /--object-id/],
      [["user create", "--name", "X", "--business-unit", "Nowhere"], /unknown business unit 'Nowhere'/],
      [["user create", "--name", "X", "--role", "Nothing"], /unknown role/],
      [["user create"], /--name is required/],
      [["user reset-secret", "--client-id", randomUUID()], /unknown client id/],
      [["user create", "--name", "X", "--no-such-option"], /no-such-option/],
    ];
    for (const [[words, ...options], message] of cases) {
      const r = await run(words, ...options);
      assert.equal(r.code, 2, `tributary ${words} ${options.join(" ")} → exit ${r.code}\n${r.stdout}\n${r.stderr}`);
      assert.match(r.stderr, message, `${words} ${options.join(" ")}`);
      assert.equal(r.stdout, "", "nothing on stdout");
    }
    // Without --data, and an unknown command.
    for (const args of [["user", "list"], ["user", "frobnicate", "--data", server.dataDir], ["role"]]) {
      const r = await cli(...args);
      assert.equal(r.code, 2, `tributary ${args.join(" ")} → exit ${r.code}\n${r.stderr}`);
    }
    // Nothing half-written: a failed create left no user or role behind.
    const users = await runOk("user list", "--json");
    assert.ok(!users.some((u) => u.fullname === "X" || u.fullname === "# X"), JSON.stringify(users));
    const roles = await runOk("role list", "--json");
    assert.ok(!roles.some((r) => r.name === "X"));
  });
});

describe("the server honours what the CLI wrote", () => {
  let appToken;

  before(async () => {
    await server.start();
    appToken = await tokenOf(app);
  });

  it("the application user reads and creates accounts, and gets 403 on contacts", async () => {
    const who = await server.api("GET", "WhoAmI", { token: appToken });
    assert.equal(who.status, 200, who.text);
    assert.equal(who.json.UserId, app.systemuserid);
    const created = await server.api("POST", "accounts", { token: appToken, body: { name: "Made by the CLI app" } });
    assert.equal(created.status, 204, created.text);
    const read = await server.api("GET", "accounts?$select=name", { token: appToken });
    assert.equal(read.status, 200, read.text);
    assert.ok(read.json.value.some((a) => a.name === "Made by the CLI app"));
    const contacts = await server.api("GET", "contacts", { token: appToken });
    assertODataError(contacts, { status: 403, code: PRIVILEGE_DENIED, context: "GET contacts" });
    const contact = await server.api("POST", "contacts", { token: appToken, body: { lastname: "No" } });
    assertODataError(contact, { status: 403, code: PRIVILEGE_DENIED, context: "POST contacts" });
  });

  it("the rows are those the Web API writes", async () => {
    const roles = await runOk("role list", "--json");
    const clerk = roles.find((r) => r.name === "Account clerk");
    const r = await server.api("GET", `roles(${clerk.roleid})/Microsoft.Dynamics.CRM.RetrieveRolePrivilegesRole()`);
    assert.equal(r.status, 200, r.text);
    const depths = Object.fromEntries(r.json.RolePrivileges.map((p) => [p.PrivilegeName, p.Depth]));
    assert.deepEqual(depths, { prvCreateAccount: "Basic", prvReadAccount: "Global" });
    const user = await server.api(
      "GET",
      `systemusers(${app.systemuserid})?$select=fullname,applicationid,accessmode,isdisabled,_businessunitid_value,createdon`
    );
    assert.equal(user.status, 200, user.text);
    assert.equal(user.json.applicationid, app.client_id);
    assert.equal(user.json.accessmode, 4);
    assert.equal(user.json.isdisabled, false);
    assert.match(user.json._businessunitid_value, GUID_RE);
    assert.ok(user.json.createdon, "system columns are filled");
    const assoc = await server.api("GET", `systemusers(${app.systemuserid})/systemuserroles_association?$select=name`);
    assert.equal(assoc.status, 200, assoc.text);
    assert.deepEqual(assoc.json.value.map((x) => x.name), ["Account clerk"]);
  });

  it("a role added and a user disabled while the server runs apply within 30 s", async () => {
    const other = await runOk("user create", "--name", "Second app", "--app");
    secrets.push(other.client_secret);
    const otherToken = await tokenOf(other);
    // An application user without roles: authenticated, but no privileges.
    const before = await server.api("GET", "WhoAmI", { token: otherToken });
    assert.equal(before.status, 200, before.text);

    await runOk("role create", "--name", "Contact reader", "--privilege", "prvReadContact");
    assert.match(await runOk("user add-role", "--user", app.client_id, "--role", "Contact reader"), /added the role/);
    assert.match(await runOk("user disable", "--user", "Second app"), /disabled user/);

    await eventually(
      async () => (await server.api("GET", "contacts", { token: appToken })).status === 200,
      40,
      "the new role lets the application user read contacts"
    );
    await eventually(
      async () => (await server.api("GET", "WhoAmI", { token: otherToken })).status === 401,
      40,
      "the disabled user's token stops working"
    );
    // Still no contact creation: the new role only reads.
    const contact = await server.api("POST", "contacts", { token: appToken, body: { lastname: "No" } });
    assertODataError(contact, { status: 403, code: PRIVILEGE_DENIED, context: "POST contacts" });

    const users = await runOk("user list", "--json");
    assert.equal(users.find((u) => u.systemuserid === other.systemuserid).isdisabled, true);
    assert.deepEqual(users.find((u) => u.systemuserid === app.systemuserid).roles, ["Account clerk", "Contact reader"]);
    assert.match(await runOk("user enable", "--user", other.systemuserid), /enabled user/);
  });

  it("reset-secret replaces the secret at once", async () => {
    const fresh = await runOk("user reset-secret", "--client-id", app.client_id);
    assert.equal(fresh.client_id, app.client_id);
    assert.notEqual(fresh.client_secret, app.client_secret);
    secrets.push(fresh.client_secret);
    const old = await token(app.client_id, app.client_secret);
    assert.equal(old.status, 401, `the old secret: ${old.status} ${old.text}`);
    const now = await token(app.client_id, fresh.client_secret);
    assert.equal(now.status, 200, now.text);
  });

  it("privileges can be changed and removed while the server runs", async () => {
    assert.match(
      await runOk("role add-privilege", "--role", "Account clerk", "--privilege", "prvCreateAccount", "--depth", "Global"),
      /prvCreateAccount at Global/
    );
    assert.match(
      await runOk("role remove-privilege", "--role", "Account clerk", "--privilege", "prvcreateaccount"),
      /removed prvCreateAccount/
    );
    const shown = await runOk("role show", "--role", "Account clerk", "--json");
    assert.deepEqual(shown.privileges.map((p) => [p.name, p.depth]), [["prvReadAccount", "Global"]]);
  });

  it("no client secret is in the data folder in clear", async () => {
    await server.stop();
    const files = await fs.readdir(server.dataDir, { recursive: true });
    let hashes = 0;
    for (const f of files) {
      const p = path.join(server.dataDir, f);
      if (!(await fs.stat(p)).isFile()) continue;
      const bytes = await fs.readFile(p);
      for (const s of secrets) assert.ok(!bytes.includes(Buffer.from(s)), `a client secret is in ${f}`);
      if (bytes.includes(Buffer.from("$argon2id$"))) hashes++;
    }
    assert.ok(hashes > 0, "the secrets are stored as argon2id hashes");
    assert.equal(secrets.length, 3);
  });
});
