// `tributary user …` and `tributary role …` (admin.h). Records are written through the
// organization service as the platform (a caller without a principal), so system columns, audit
// and validation are those of the Web API; role privileges and client credentials are written
// with SQL in the same transaction, as the Web API's AddPrivilegesRole and the bootstrap write
// them.

#include "admin.h"
#include "cli_status.h"

#include <algorithm>
#include <cstdio>
#include <future>
#include <map>
#include <utility>
#include <vector>

#include "tributary/base/json.h"
#include "tributary/base/strings.h"
#include "tributary/security/principal.h"
#include "tributary/security/token.h"

namespace tributary::app {

namespace {

using data::CallerContext;
using data::Environment;
using data::WriteScope;
using security::Depth;
using storage::Connection;
using storage::SqlValue;

// --- Errors and exit codes ---------------------------------------------------------------------

Status Unknown(std::string m) { return NotFound(std::move(m)); }
Status Bad(std::string m) { return InvalidArgument(std::move(m)); }

// --- Small helpers -----------------------------------------------------------------------------

std::optional<Guid> GuidAt(const storage::Row& r, int i) {
  if (r.is_null(i)) return std::nullopt;
  return Guid::Parse(r.Text(i));
}

std::string TextAt(const storage::Row& r, int i) { return r.is_null(i) ? std::string() : std::string(r.Text(i)); }

// Runs `fn` as one transaction of the organization service and waits for the durable commit.
Status TransactSync(Environment& env, const CallerContext& caller, std::function<Status(WriteScope&)> fn) {
  std::promise<Status> p;
  auto f = p.get_future();
  env.service().Transact(caller, std::move(fn), [&p](Status s) { p.set_value(std::move(s)); });
  return f.get();
}

// The platform itself: no principal, so every privilege check passes; records name the bootstrap
// user as their creator, as the records of the bootstrap do.
CallerContext Platform(const Environment& env) {
  CallerContext c;
  c.user_id = env.ids().admin_user_id;
  c.business_unit_id = env.ids().root_business_unit_id;
  return c;
}

// Depth names of the API (Basic, Local, Deep, Global, or 0–3) and of the role editor (User,
// BusinessUnit, ParentChildBusinessUnit, Organization).
bool ParseDepthText(std::string_view text, Depth& d) {
  if (security::ParseDepth(text, d)) return true;
  static const std::pair<std::string_view, Depth> kAliases[] = {{"User", Depth::kBasic},
                                                                {"BusinessUnit", Depth::kLocal},
                                                                {"ParentChildBusinessUnit", Depth::kDeep},
                                                                {"Organization", Depth::kGlobal}};
  for (const auto& [name, depth] : kAliases)
    if (EqualsIgnoreCase(text, name)) {
      d = depth;
      return true;
    }
  return false;
}

// Fixed-width columns for people; the last column is not padded.
void PrintTable(const std::vector<std::string>& head, const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width(head.size());
  for (size_t i = 0; i < head.size(); ++i) width[i] = head[i].size();
  for (const auto& r : rows)
    for (size_t i = 0; i < r.size() && i < width.size(); ++i) width[i] = std::max(width[i], r[i].size());
  auto line = [&](const std::vector<std::string>& r) {
    std::string out;
    for (size_t i = 0; i < r.size(); ++i) {
      out += r[i];
      if (i + 1 < r.size()) out.append(width[i] - r[i].size() + 2, ' ');
    }
    std::printf("%s\n", out.c_str());
  };
  line(head);
  for (const auto& r : rows) line(r);
}

std::string Join(const std::vector<std::string>& parts, std::string_view sep) {
  std::string out;
  for (const auto& p : parts) {
    if (!out.empty()) out += sep;
    out += p;
  }
  return out;
}

// --- Lookups (on the transaction's or a read connection) ---------------------------------------

struct UserRow {
  Guid id;
  std::string name;
  Guid business_unit;
};

// A user by systemuserid, applicationid or Entra object id (a GUID), else by full name, by the
// name of an application user (its last name), by user name or by primary email.
Result<UserRow> FindUser(Connection& c, std::string_view text) {
  std::vector<UserRow> found;
  auto add = [&](const storage::Row& r) {
    UserRow u;
    u.id = GuidAt(r, 0).value_or(Guid());
    u.name = TextAt(r, 1);
    u.business_unit = GuidAt(r, 2).value_or(Guid());
    found.push_back(std::move(u));
    return found.size() < 20;
  };
  const std::string select = "SELECT systemuserid, fullname, businessunitid FROM systemuser WHERE ";
  if (auto g = Guid::Parse(text)) {
    std::vector<SqlValue> p = {g->ToString()};
    RETURN_IF_ERROR(c.Query(select + "systemuserid = ?", p, add));
    if (found.empty()) {
      p.push_back(g->ToString());
      RETURN_IF_ERROR(c.Query(select + "applicationid = ? OR azureactivedirectoryobjectid = ?", p, add));
    }
  } else {
    std::string t(text);
    std::vector<SqlValue> p = {t, t, t, t};
    RETURN_IF_ERROR(c.Query(select +
                                "fullname = ? COLLATE NOCASE OR (firstname = '#' AND lastname = ? COLLATE NOCASE) OR "
                                "domainname = ? COLLATE NOCASE OR internalemailaddress = ? COLLATE NOCASE",
                            p, add));
  }
  if (found.empty()) return Unknown("unknown user '" + PrintableText(text) + "'");
  if (found.size() > 1) {
    std::vector<std::string> ids;
    for (const auto& u : found) ids.push_back(u.id.ToString());
    return Bad("'" + PrintableText(text) + "' names several users (" + Join(ids, ", ") + "); give the id");
  }
  return found.front();
}

struct RoleRow {
  Guid id;
  std::string name;
  Guid business_unit;
};

// A role by id or by name (case-insensitive). Several roles of that name: the one in
// `prefer_business_unit`, if exactly one is.
Result<RoleRow> FindRole(Connection& c, std::string_view text, std::optional<Guid> prefer_business_unit = {}) {
  std::vector<RoleRow> found;
  auto add = [&](const storage::Row& r) {
    found.push_back({GuidAt(r, 0).value_or(Guid()), TextAt(r, 1), GuidAt(r, 2).value_or(Guid())});
    return found.size() < 20;
  };
  const std::string select = "SELECT roleid, name, businessunitid FROM role WHERE ";
  if (auto g = Guid::Parse(text)) {
    RETURN_IF_ERROR(c.Query(select + "roleid = ?", std::vector<SqlValue>{g->ToString()}, add));
  } else {
    RETURN_IF_ERROR(c.Query(select + "name = ? COLLATE NOCASE", std::vector<SqlValue>{std::string(text)}, add));
  }
  if (found.empty()) return Unknown("unknown role '" + PrintableText(text) + "'");
  if (found.size() > 1 && prefer_business_unit) {
    std::vector<RoleRow> same_bu;
    for (const auto& r : found)
      if (r.business_unit == *prefer_business_unit) same_bu.push_back(r);
    if (same_bu.size() == 1) return same_bu.front();
  }
  if (found.size() > 1) {
    std::vector<std::string> ids;
    for (const auto& r : found) ids.push_back(r.id.ToString());
    return Bad("'" + PrintableText(text) + "' names several roles (" + Join(ids, ", ") + "); give the id");
  }
  return found.front();
}

Result<Guid> FindBusinessUnit(Connection& c, std::string_view text) {
  std::vector<Guid> found;
  auto add = [&](const storage::Row& r) {
    if (auto g = GuidAt(r, 0)) found.push_back(*g);
    return found.size() < 20;
  };
  if (auto g = Guid::Parse(text)) {
    RETURN_IF_ERROR(c.Query("SELECT businessunitid FROM businessunit WHERE businessunitid = ?",
                            std::vector<SqlValue>{g->ToString()}, add));
  } else {
    RETURN_IF_ERROR(c.Query("SELECT businessunitid FROM businessunit WHERE name = ? COLLATE NOCASE",
                            std::vector<SqlValue>{std::string(text)}, add));
  }
  if (found.empty()) return Unknown("unknown business unit '" + PrintableText(text) + "'");
  if (found.size() > 1) return Bad("'" + PrintableText(text) + "' names several business units; give the id");
  return found.front();
}

struct PrivilegeRow {
  Guid id;
  std::string name;
  bool below_global = true;  // false: Organization (Global) depth only, as for tables without owners
};

// A privilege by id or name (prvReadAccount; case-insensitive).
Result<PrivilegeRow> FindPrivilege(Connection& c, std::string_view text) {
  std::optional<PrivilegeRow> found;
  auto add = [&](const storage::Row& r) {
    found = PrivilegeRow{GuidAt(r, 0).value_or(Guid()), TextAt(r, 1), !r.is_null(2) && r.Int(2) != 0};
    return false;
  };
  const std::string select = "SELECT privilegeid, name, canbebasic FROM privilege WHERE ";
  Guid id = Guid::Parse(text).value_or(security::PrivilegeId(text));
  RETURN_IF_ERROR(c.Query(select + "privilegeid = ?", std::vector<SqlValue>{id.ToString()}, add));
  if (!found)
    RETURN_IF_ERROR(c.Query(select + "name = ? COLLATE NOCASE", std::vector<SqlValue>{std::string(text)}, add));
  if (!found)
    return Unknown("unknown privilege '" + PrintableText(text) +
                   "' (table privileges are prv<Verb><table schema name> with the verbs Create, Read, Write, Delete, "
                   "Append, AppendTo, Assign and Share, e.g. prvReadAccount)");
  return *found;
}

// "prvReadAccount" or "prvReadAccount:Global".
struct PrivilegeSpec {
  std::string name;
  std::optional<Depth> depth;
};

Result<std::vector<PrivilegeSpec>> ParsePrivilegeSpecs(const std::vector<std::string>& texts) {
  std::vector<PrivilegeSpec> out;
  for (const auto& t : texts) {
    PrivilegeSpec s;
    auto colon = t.rfind(':');
    s.name = std::string(Trim(std::string_view(t).substr(0, colon)));
    if (colon != std::string::npos) {
      Depth d;
      if (!ParseDepthText(Trim(std::string_view(t).substr(colon + 1)), d))
        return Bad("the depth in '" + PrintableText(t) + "' must be Basic, Local, Deep or Global");
      s.depth = d;
    }
    if (s.name.empty()) return Bad("empty privilege name in '" + PrintableText(t) + "'");
    out.push_back(std::move(s));
  }
  return out;
}

// Gives `role` the privilege at `depth` (replacing the depth it had), in the rows the Web API's
// AddPrivilegesRole writes. Privileges that exist at Global depth only get Global. Returns the
// depth set.
Result<Depth> SetRolePrivilege(Connection& c, const Guid& role, const PrivilegeRow& privilege, Depth depth) {
  if (!privilege.below_global) depth = Depth::kGlobal;
  int64_t mask = security::DepthMask(depth);
  std::vector<SqlValue> key = {role.ToString(), privilege.id.ToString()};
  bool exists = false;
  RETURN_IF_ERROR(
      c.Query("SELECT 1 FROM roleprivileges WHERE roleid = ? AND privilegeid = ?", key, [&](const storage::Row&) {
        exists = true;
        return false;
      }));
  if (exists) {
    std::vector<SqlValue> p = {mask, role.ToString(), privilege.id.ToString()};
    RETURN_IF_ERROR(
        c.Exec("UPDATE roleprivileges SET privilegedepthmask = ? WHERE roleid = ? AND privilegeid = ?", p).status());
  } else {
    std::vector<SqlValue> p = {GuidGenerator::NewSequential().ToString(), role.ToString(), privilege.id.ToString(),
                               mask};
    RETURN_IF_ERROR(c.Exec("INSERT INTO roleprivileges (roleprivilegesid, roleid, privilegeid, privilegedepthmask) "
                           "VALUES (?, ?, ?, ?)",
                           p)
                        .status());
  }
  return depth;
}

// --- Record writes through the organization service --------------------------------------------

Status AddField(data::EntityInput& in, std::string_view column, data::Value v) {
  const catalog::Column* c = in.table->FindColumn(column);
  if (!c) return Internal("standard column '" + std::string(column) + "' is missing on " + in.table->logical_name);
  in.fields.push_back(data::Field{c, std::move(v)});
  return Status::Ok();
}

// Adds or removes a role of a user (systemuserroles_association, audited like the Web API's).
Status AssociateRole(WriteScope& s, const catalog::Catalog& cat, const Guid& user, const Guid& role, bool add) {
  const catalog::Table* users = cat.FindTable("systemuser");
  const catalog::Table* roles = cat.FindTable("role");
  const catalog::NavProperty* nav = users ? users->FindNav("systemuserroles_association") : nullptr;
  if (!nav || !roles) return Internal("the systemuserroles_association relationship is missing");
  data::RecordKey key;
  key.id = user;
  return s.Associate(*users, key, *nav, data::BindTarget{roles, data::RecordKey{role, {}}}, add).status();
}

Result<bool> UserHasRole(Connection& c, const Guid& user, const Guid& role) {
  bool has = false;
  RETURN_IF_ERROR(c.Query("SELECT 1 FROM systemuserroles WHERE systemuserid = ? AND roleid = ?",
                          std::vector<SqlValue>{user.ToString(), role.ToString()}, [&](const storage::Row&) {
                            has = true;
                            return false;
                          }));
  return has;
}

}  // namespace

// --- The commands ------------------------------------------------------------------------------

struct AdminCommands::State {
  OptionsFn options;
  std::vector<std::pair<CLI::App*, std::function<int()>>> commands;

  // Option values (each parse sets those of one command).
  std::string data_dir, name, email, business_unit, object_id, user, client_id, depth;
  std::vector<std::string> roles, privileges;
  bool app = false;
  bool json = false;

  Result<std::unique_ptr<Environment>> Open() {
    data::EnvironmentOptions o = options(data_dir);
    o.read_connections = 2;
    auto env = Environment::Open(o);
    if (!env.ok())
      return Status(env.status().code(), "cannot open the environment in " + data_dir + ": " + env.status().message());
    if ((*env)->created()) std::fprintf(stderr, "created a new environment in %s\n", data_dir.c_str());
    return env;
  }

  int UserCreate();
  int UserList();
  int UserRoles(bool add);
  int UserEnable(bool enable);
  int UserResetSecret();
  int RoleList();
  int RoleCreate();
  int RolePrivileges(bool add);
  int RoleShow();
};

int AdminCommands::State::UserCreate() {
  std::optional<Guid> oid;
  if (!object_id.empty()) {
    oid = Guid::Parse(object_id);
    if (!oid) return Report(Bad("--object-id must be a GUID, got '" + PrintableText(object_id) + "'"));
  }
  if (Trim(name).empty()) return Report(Bad("--name must not be empty"));
  // The secret exists in clear only in this process and on stdout.
  std::string secret, hash;
  Guid app_id;
  if (app) {
    app_id = GuidGenerator::NewRandom();
    secret = security::RandomSecret(32);
    auto h = security::HashSecret(secret);
    if (!h.ok()) return Report(h.status());
    hash = std::move(h).value();
  }
  auto env = Open();
  if (!env.ok()) return Report(env.status());
  Environment& e = **env;
  auto cat = e.service().catalog();
  Guid user_id = GuidGenerator::NewSequential();
  Status s = TransactSync(e, Platform(e), [&](WriteScope& scope) -> Status {
    Connection& c = scope.connection();
    Guid bu = e.ids().root_business_unit_id;
    if (!business_unit.empty()) {
      ASSIGN_OR_RETURN(bu, FindBusinessUnit(c, business_unit));
    }
    if (oid) {
      bool taken = false;
      RETURN_IF_ERROR(c.Query("SELECT 1 FROM systemuser WHERE azureactivedirectoryobjectid = ?",
                              std::vector<SqlValue>{oid->ToString()}, [&](const storage::Row&) {
                                taken = true;
                                return false;
                              }));
      if (taken) return Status(Code::kAlreadyExists, "a user with the object id " + oid->ToString() + " exists");
    }
    std::vector<RoleRow> role_rows;
    for (const auto& r : roles) {
      ASSIGN_OR_RETURN(RoleRow row, FindRole(c, r, bu));
      role_rows.push_back(std::move(row));
    }
    data::EntityInput in;
    in.table = cat->FindTable("systemuser");
    if (!in.table) return Internal("the systemuser table is missing");
    std::string full(Trim(name));
    if (app) {
      // Application users are "# <name>" in Dataverse.
      RETURN_IF_ERROR(AddField(in, "firstname", std::string("#")));
      RETURN_IF_ERROR(AddField(in, "lastname", full));
      RETURN_IF_ERROR(AddField(in, "applicationid", app_id));
      RETURN_IF_ERROR(AddField(in, "accessmode", int64_t{4}));  // Non-interactive
    } else {
      auto space = full.rfind(' ');
      if (space != std::string::npos) RETURN_IF_ERROR(AddField(in, "firstname", full.substr(0, space)));
      RETURN_IF_ERROR(AddField(in, "lastname", space == std::string::npos ? full : full.substr(space + 1)));
    }
    if (!email.empty()) {
      RETURN_IF_ERROR(AddField(in, "internalemailaddress", email));
      RETURN_IF_ERROR(AddField(in, "domainname", email));
    }
    if (oid) RETURN_IF_ERROR(AddField(in, "azureactivedirectoryobjectid", *oid));
    RETURN_IF_ERROR(AddField(in, "businessunitid", data::EntityRef{"businessunit", bu}));
    RETURN_IF_ERROR(scope.Create(in, user_id).status());
    for (const auto& r : role_rows) RETURN_IF_ERROR(AssociateRole(scope, *cat, user_id, r.id, true));
    if (app) {
      std::vector<SqlValue> p = {app_id.ToString(), hash, user_id.ToString()};
      RETURN_IF_ERROR(
          c.Exec("INSERT INTO _t_credential (client_id, secret_hash, systemuserid) VALUES (?, ?, ?)", p).status());
    }
    return Status::Ok();
  });
  if (!s.ok()) return Report(s);
  std::string out;
  JsonWriter w(out);
  w.BeginObject();
  w.Key("systemuserid");
  w.String(user_id.ToString());
  if (app) {
    w.Key("client_id");
    w.String(app_id.ToString());
    w.Key("client_secret");
    w.String(secret);
  }
  w.EndObject();
  std::printf("%s\n", out.c_str());
  return 0;
}

int AdminCommands::State::UserList() {
  auto env = Open();
  if (!env.ok()) return Report(env.status());
  struct Row {
    std::string id, name, bu, app_id, object_id, email;
    bool disabled = false;
    std::vector<std::string> roles;
  };
  std::vector<Row> rows;
  std::map<std::string, size_t> by_id;
  auto r = (*env)->engine().Read();
  Status s = r->Query(
      "SELECT u.systemuserid, u.fullname, b.name, u.applicationid, u.azureactivedirectoryobjectid, "
      "u.internalemailaddress, u.isdisabled FROM systemuser u LEFT JOIN businessunit b ON b.businessunitid = "
      "u.businessunitid ORDER BY u.fullname COLLATE NOCASE, u.systemuserid",
      {}, [&](const storage::Row& row) {
        Row x{TextAt(row, 0), TextAt(row, 1), TextAt(row, 2), TextAt(row, 3), TextAt(row, 4), TextAt(row, 5)};
        x.disabled = !row.is_null(6) && row.Int(6) != 0;
        by_id[x.id] = rows.size();
        rows.push_back(std::move(x));
        return true;
      });
  if (s.ok())
    s = r->Query(
        "SELECT ur.systemuserid, ro.name FROM systemuserroles ur JOIN role ro ON ro.roleid = ur.roleid ORDER "
        "BY ro.name COLLATE NOCASE",
        {}, [&](const storage::Row& row) {
          auto it = by_id.find(TextAt(row, 0));
          if (it != by_id.end()) rows[it->second].roles.push_back(TextAt(row, 1));
          return true;
        });
  if (!s.ok()) return Report(s);
  if (json) {
    std::string out;
    JsonWriter w(out);
    w.BeginArray();
    for (const auto& x : rows) {
      w.BeginObject();
      w.Key("systemuserid");
      w.String(x.id);
      w.Key("fullname");
      w.String(x.name);
      w.Key("businessunit");
      w.String(x.bu);
      w.Key("applicationid");
      x.app_id.empty() ? w.Null() : w.String(x.app_id);
      w.Key("azureactivedirectoryobjectid");
      x.object_id.empty() ? w.Null() : w.String(x.object_id);
      w.Key("internalemailaddress");
      x.email.empty() ? w.Null() : w.String(x.email);
      w.Key("isdisabled");
      w.Bool(x.disabled);
      w.Key("roles");
      w.BeginArray();
      for (const auto& role : x.roles) w.String(role);
      w.EndArray();
      w.EndObject();
    }
    w.EndArray();
    std::printf("%s\n", out.c_str());
    return 0;
  }
  std::vector<std::vector<std::string>> table;
  for (const auto& x : rows)
    table.push_back({x.id, x.name, x.bu, x.app_id.empty() ? "-" : x.app_id, x.disabled ? "yes" : "no",
                     x.roles.empty() ? "-" : Join(x.roles, ", ")});
  PrintTable({"ID", "NAME", "BUSINESS UNIT", "APPLICATION ID", "DISABLED", "ROLES"}, table);
  return 0;
}

int AdminCommands::State::UserRoles(bool add) {
  auto env = Open();
  if (!env.ok()) return Report(env.status());
  Environment& e = **env;
  auto cat = e.service().catalog();
  std::vector<std::string> lines;
  Status s = TransactSync(e, Platform(e), [&](WriteScope& scope) -> Status {
    lines.clear();
    Connection& c = scope.connection();
    ASSIGN_OR_RETURN(UserRow u, FindUser(c, user));
    for (const auto& text : roles) {
      ASSIGN_OR_RETURN(RoleRow r, FindRole(c, text, u.business_unit));
      ASSIGN_OR_RETURN(bool has, UserHasRole(c, u.id, r.id));
      std::string what = "role '" + r.name + "' (" + r.id.ToString() + ")";
      std::string who = "user '" + u.name + "' (" + u.id.ToString() + ")";
      if (add && has) {
        lines.push_back(who + " already has the " + what);
        continue;
      }
      if (!add && !has) return Unknown(who + " does not have the " + what);
      RETURN_IF_ERROR(AssociateRole(scope, *cat, u.id, r.id, add));
      lines.push_back((add ? "added the " + what + " to " : "removed the " + what + " from ") + who);
    }
    return Status::Ok();
  });
  if (!s.ok()) return Report(s);
  for (const auto& l : lines) std::printf("%s\n", l.c_str());
  return 0;
}

int AdminCommands::State::UserEnable(bool enable) {
  auto env = Open();
  if (!env.ok()) return Report(env.status());
  Environment& e = **env;
  auto cat = e.service().catalog();
  std::string line;
  Status s = TransactSync(e, Platform(e), [&](WriteScope& scope) -> Status {
    ASSIGN_OR_RETURN(UserRow u, FindUser(scope.connection(), user));
    data::EntityInput in;
    in.table = cat->FindTable("systemuser");
    if (!in.table) return Internal("the systemuser table is missing");
    RETURN_IF_ERROR(AddField(in, "isdisabled", !enable));
    data::RecordKey key;
    key.id = u.id;
    RETURN_IF_ERROR(scope.Upsert(in, key, data::UpsertMode::kUpdateOnly, std::nullopt).status());
    line = std::string(enable ? "enabled" : "disabled") + " user '" + u.name + "' (" + u.id.ToString() + ")";
    return Status::Ok();
  });
  if (!s.ok()) return Report(s);
  std::printf("%s\n", line.c_str());
  return 0;
}

int AdminCommands::State::UserResetSecret() {
  std::string secret = security::RandomSecret(32);
  auto hash = security::HashSecret(secret);
  if (!hash.ok()) return Report(hash.status());
  auto env = Open();
  if (!env.ok()) return Report(env.status());
  Environment& e = **env;
  Status s = e.engine().WriteSync([&](Connection& c) -> Status {
    std::vector<SqlValue> p = {*hash, client_id};
    ASSIGN_OR_RETURN(int64_t n, c.Exec("UPDATE _t_credential SET secret_hash = ? WHERE client_id = ?", p));
    if (n == 0) return Unknown("unknown client id '" + PrintableText(client_id) + "'");
    return Status::Ok();
  });
  if (!s.ok()) return Report(s);
  std::string out;
  JsonWriter w(out);
  w.BeginObject();
  w.Key("client_id");
  w.String(client_id);
  w.Key("client_secret");
  w.String(secret);
  w.EndObject();
  std::printf("%s\n", out.c_str());
  return 0;
}

int AdminCommands::State::RoleList() {
  auto env = Open();
  if (!env.ok()) return Report(env.status());
  struct Row {
    std::string id, name, bu;
    bool admin = false;
    int64_t privileges = 0, users = 0;
  };
  std::vector<Row> rows;
  auto r = (*env)->engine().Read();
  Status s = r->Query(
      "SELECT r.roleid, r.name, b.name, r.roletemplateid, (SELECT count(*) FROM roleprivileges rp WHERE rp.roleid = "
      "r.roleid), (SELECT count(*) FROM systemuserroles ur WHERE ur.roleid = r.roleid) FROM role r LEFT JOIN "
      "businessunit b ON b.businessunitid = r.businessunitid ORDER BY r.name COLLATE NOCASE, r.roleid",
      {}, [&](const storage::Row& row) {
        Row x{TextAt(row, 0), TextAt(row, 1), TextAt(row, 2)};
        x.admin = EqualsIgnoreCase(TextAt(row, 3), security::kSystemAdministratorTemplateId);
        x.privileges = row.Int(4);
        x.users = row.Int(5);
        rows.push_back(std::move(x));
        return true;
      });
  if (!s.ok()) return Report(s);
  if (json) {
    std::string out;
    JsonWriter w(out);
    w.BeginArray();
    for (const auto& x : rows) {
      w.BeginObject();
      w.Key("roleid");
      w.String(x.id);
      w.Key("name");
      w.String(x.name);
      w.Key("businessunit");
      w.String(x.bu);
      w.Key("systemadministrator");
      w.Bool(x.admin);
      w.Key("privileges");
      w.Int(x.privileges);
      w.Key("users");
      w.Int(x.users);
      w.EndObject();
    }
    w.EndArray();
    std::printf("%s\n", out.c_str());
    return 0;
  }
  std::vector<std::vector<std::string>> table;
  for (const auto& x : rows)
    table.push_back({x.id, x.name, x.bu, x.admin ? "all (System Administrator)" : std::to_string(x.privileges),
                     std::to_string(x.users)});
  PrintTable({"ID", "NAME", "BUSINESS UNIT", "PRIVILEGES", "USERS"}, table);
  return 0;
}

int AdminCommands::State::RoleCreate() {
  if (Trim(name).empty()) return Report(Bad("--name must not be empty"));
  auto specs = ParsePrivilegeSpecs(privileges);
  if (!specs.ok()) return Report(specs.status());
  auto env = Open();
  if (!env.ok()) return Report(env.status());
  Environment& e = **env;
  auto cat = e.service().catalog();
  Guid role_id = GuidGenerator::NewSequential();
  std::vector<std::pair<std::string, Depth>> granted;
  Status s = TransactSync(e, Platform(e), [&](WriteScope& scope) -> Status {
    granted.clear();
    Connection& c = scope.connection();
    Guid bu = e.ids().root_business_unit_id;
    if (!business_unit.empty()) {
      ASSIGN_OR_RETURN(bu, FindBusinessUnit(c, business_unit));
    }
    std::string role_name(Trim(name));
    bool taken = false;
    RETURN_IF_ERROR(c.Query("SELECT 1 FROM role WHERE name = ? COLLATE NOCASE AND businessunitid = ?",
                            std::vector<SqlValue>{role_name, bu.ToString()}, [&](const storage::Row&) {
                              taken = true;
                              return false;
                            }));
    if (taken)
      return Status(Code::kAlreadyExists,
                    "a role named '" + PrintableText(role_name) + "' exists in that business unit");
    std::vector<std::pair<PrivilegeRow, Depth>> list;
    for (const auto& spec : *specs) {
      ASSIGN_OR_RETURN(PrivilegeRow p, FindPrivilege(c, spec.name));
      list.emplace_back(std::move(p), spec.depth.value_or(Depth::kGlobal));
    }
    data::EntityInput in;
    in.table = cat->FindTable("role");
    if (!in.table) return Internal("the role table is missing");
    RETURN_IF_ERROR(AddField(in, "name", role_name));
    RETURN_IF_ERROR(AddField(in, "businessunitid", data::EntityRef{"businessunit", bu}));
    RETURN_IF_ERROR(scope.Create(in, role_id).status());
    for (const auto& [p, depth] : list) {
      ASSIGN_OR_RETURN(Depth set, SetRolePrivilege(c, role_id, p, depth));
      granted.emplace_back(p.name, set);
    }
    scope.SecurityChanged();
    return Status::Ok();
  });
  if (!s.ok()) return Report(s);
  std::string out;
  JsonWriter w(out);
  w.BeginObject();
  w.Key("roleid");
  w.String(role_id.ToString());
  w.Key("privileges");
  w.BeginObject();
  for (const auto& [n, d] : granted) {
    w.Key(n);
    w.String(security::DepthName(d));
  }
  w.EndObject();
  w.EndObject();
  std::printf("%s\n", out.c_str());
  return 0;
}

int AdminCommands::State::RolePrivileges(bool add) {
  auto specs = ParsePrivilegeSpecs(privileges);
  if (!specs.ok()) return Report(specs.status());
  Depth default_depth = Depth::kGlobal;
  if (!depth.empty() && !ParseDepthText(depth, default_depth))
    return Report(Bad("--depth must be Basic, Local, Deep or Global, got '" + PrintableText(depth) + "'"));
  auto env = Open();
  if (!env.ok()) return Report(env.status());
  Environment& e = **env;
  std::vector<std::string> lines;
  Status s = TransactSync(e, Platform(e), [&](WriteScope& scope) -> Status {
    lines.clear();
    Connection& c = scope.connection();
    ASSIGN_OR_RETURN(RoleRow r, FindRole(c, roles.front()));
    for (const auto& spec : *specs) {
      ASSIGN_OR_RETURN(PrivilegeRow p, FindPrivilege(c, spec.name));
      if (add) {
        ASSIGN_OR_RETURN(Depth set, SetRolePrivilege(c, r.id, p, spec.depth.value_or(default_depth)));
        lines.push_back("role '" + r.name + "': " + p.name + " at " + std::string(security::DepthName(set)));
      } else {
        std::vector<SqlValue> q = {r.id.ToString(), p.id.ToString()};
        ASSIGN_OR_RETURN(int64_t n, c.Exec("DELETE FROM roleprivileges WHERE roleid = ? AND privilegeid = ?", q));
        if (n == 0) return Unknown("the role '" + r.name + "' does not have the privilege " + p.name);
        lines.push_back("role '" + r.name + "': removed " + p.name);
      }
    }
    scope.SecurityChanged();
    return Status::Ok();
  });
  if (!s.ok()) return Report(s);
  for (const auto& l : lines) std::printf("%s\n", l.c_str());
  return 0;
}

int AdminCommands::State::RoleShow() {
  auto env = Open();
  if (!env.ok()) return Report(env.status());
  Environment& e = **env;
  RoleRow role;
  std::string bu_name, template_id;
  {
    auto r = e.engine().Read();
    auto found = FindRole(*r, roles.front());
    if (!found.ok()) return Report(found.status());
    role = *found;
    Status s = r->Query(
        "SELECT b.name, r.roletemplateid FROM role r LEFT JOIN businessunit b ON b.businessunitid = r.businessunitid "
        "WHERE r.roleid = ?",
        std::vector<SqlValue>{role.id.ToString()}, [&](const storage::Row& row) {
          bu_name = TextAt(row, 0);
          template_id = TextAt(row, 1);
          return false;
        });
    if (!s.ok()) return Report(s);
  }
  bool admin = EqualsIgnoreCase(template_id, security::kSystemAdministratorTemplateId);
  auto list = e.service().RolePrivileges({role.id});
  if (!list.ok()) return Report(list.status());
  if (json) {
    std::string out;
    JsonWriter w(out);
    w.BeginObject();
    w.Key("roleid");
    w.String(role.id.ToString());
    w.Key("name");
    w.String(role.name);
    w.Key("businessunit");
    w.String(bu_name);
    w.Key("systemadministrator");
    w.Bool(admin);
    w.Key("privileges");
    w.BeginArray();
    for (const auto& p : *list) {
      w.BeginObject();
      w.Key("name");
      w.String(p.name);
      w.Key("depth");
      w.String(security::DepthName(p.depth));
      w.Key("privilegeid");
      w.String(p.privilege_id.ToString());
      w.EndObject();
    }
    w.EndArray();
    w.EndObject();
    std::printf("%s\n", out.c_str());
    return 0;
  }
  std::printf("role %s (%s), business unit %s\n", role.name.c_str(), role.id.ToString().c_str(), bu_name.c_str());
  if (admin) std::printf("System Administrator: every privilege at Global depth\n");
  std::vector<std::vector<std::string>> table;
  for (const auto& p : *list) table.push_back({p.name, std::string(security::DepthName(p.depth))});
  if (!table.empty()) PrintTable({"PRIVILEGE", "DEPTH"}, table);
  return 0;
}

AdminCommands::AdminCommands(CLI::App& app, OptionsFn options) : s_(std::make_unique<State>()) {
  State& s = *s_;
  s.options = std::move(options);
  auto command = [&s](CLI::App* parent, const char* name, const char* what, std::function<int()> run) {
    CLI::App* c = parent->add_subcommand(name, what);
    c->add_option("--data", s.data_dir, "Data folder")->required();
    s.commands.emplace_back(c, std::move(run));
    return c;
  };

  CLI::App* user = app.add_subcommand("user", "Manage users and application users");
  user->require_subcommand(1);
  CLI::App* c = command(user, "create", "Create a user; --app: an application user with a client id and secret",
                        [&s] { return s.UserCreate(); });
  c->add_option("--name", s.name, "Full name (of an application user: its name)")->required();
  c->add_flag("--app", s.app, "Application user: prints its client_id and client_secret once");
  c->add_option("--email", s.email, "Primary email and user name");
  c->add_option("--business-unit", s.business_unit, "Business unit name or id (default: the root)");
  c->add_option("--role", s.roles, "Security role name or id (repeatable)");
  c->add_option("--object-id", s.object_id, "Entra/OpenID Connect object id (azureactivedirectoryobjectid)");
  c = command(user, "list", "List users", [&s] { return s.UserList(); });
  c->add_flag("--json", s.json, "JSON output");
  c = command(user, "add-role", "Give a user security roles", [&s] { return s.UserRoles(true); });
  c->add_option("--user", s.user, "User id, application id, name or email")->required();
  c->add_option("--role", s.roles, "Role name or id (repeatable)")->required();
  c = command(user, "remove-role", "Take security roles from a user", [&s] { return s.UserRoles(false); });
  c->add_option("--user", s.user, "User id, application id, name or email")->required();
  c->add_option("--role", s.roles, "Role name or id (repeatable)")->required();
  c = command(user, "disable", "Disable a user (its tokens stop working)", [&s] { return s.UserEnable(false); });
  c->add_option("--user", s.user, "User id, application id, name or email")->required();
  c = command(user, "enable", "Enable a user", [&s] { return s.UserEnable(true); });
  c->add_option("--user", s.user, "User id, application id, name or email")->required();
  c = command(user, "reset-secret", "Replace the client secret of an application user; prints the new one once",
              [&s] { return s.UserResetSecret(); });
  c->add_option("--client-id", s.client_id, "Client id")->required();

  CLI::App* role = app.add_subcommand("role", "Manage security roles");
  role->require_subcommand(1);
  c = command(role, "list", "List security roles", [&s] { return s.RoleList(); });
  c->add_flag("--json", s.json, "JSON output");
  c = command(role, "create", "Create a security role", [&s] { return s.RoleCreate(); });
  c->add_option("--name", s.name, "Role name")->required();
  c->add_option("--business-unit", s.business_unit, "Business unit name or id (default: the root)");
  c->add_option("--privilege", s.privileges, "NAME[:DEPTH], e.g. prvReadAccount:Global (repeatable; default Global)");
  c = command(role, "add-privilege", "Give a role privileges (sets their depth)",
              [&s] { return s.RolePrivileges(true); });
  c->add_option("--role", s.roles, "Role name or id")->required()->expected(1);
  c->add_option("--privilege", s.privileges, "NAME[:DEPTH] (repeatable)")->required();
  c->add_option("--depth", s.depth, "Basic, Local, Deep or Global (default Global)");
  c = command(role, "remove-privilege", "Take privileges from a role", [&s] { return s.RolePrivileges(false); });
  c->add_option("--role", s.roles, "Role name or id")->required()->expected(1);
  c->add_option("--privilege", s.privileges, "Privilege name (repeatable)")->required();
  c = command(role, "show", "Show a role's privileges and depths", [&s] { return s.RoleShow(); });
  c->add_option("--role", s.roles, "Role name or id")->required()->expected(1);
  c->add_flag("--json", s.json, "JSON output");
}

AdminCommands::~AdminCommands() = default;

std::optional<int> AdminCommands::Run() {
  for (const auto& [app, run] : s_->commands)
    if (app->parsed()) return run();
  return std::nullopt;
}

}  // namespace tributary::app
