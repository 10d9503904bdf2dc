// The security messages of the Web API (platform.md §2.3–§2.6): role privileges
// (AddPrivilegesRole, ReplacePrivilegesRole, RemovePrivilegeRole, RetrieveRolePrivilegesRole,
// RetrieveUserPrivileges), record sharing (GrantAccess, ModifyAccess, RevokeAccess,
// RetrievePrincipalAccess, RetrieveSharedPrincipalsAndAccess) and team membership
// (AddMembersTeam, RemoveMembersTeam). Roles to users and teams are associations
// (systemuserroles_association, teamroles_association); assignment is a PATCH of ownerid.

#include "operations.h"
#include "tributary/base/strings.h"
#include "tributary/data/environment.h"
#include "tributary/security/principal.h"
#include "webapi_internal.h"

namespace tributary::odata {

using catalog::Table;
using security::Depth;
using security::Verb;

namespace {

OperationParameter P(std::string name, OperationType type, bool optional = false, std::string entity = "") {
  return OperationParameter{std::move(name), type, std::move(entity), optional};
}

std::string Context(const WebApi::Call& c, const std::string& name) {
  return c.root + "$metadata#Microsoft.Dynamics.CRM." + name + "Response";
}

// One RolePrivilege of a request: {"PrivilegeId":…, "Depth":"Global"|0–3, "BusinessUnitId":…,
// "PrivilegeName":…}; the privilege by id or, failing that, by name.
struct RequestedPrivilege {
  Guid id;
  Depth depth = Depth::kGlobal;
};

Result<std::vector<RequestedPrivilege>> ParsePrivileges(const Json& list, std::string_view param) {
  std::vector<RequestedPrivilege> out;
  const std::string where = "The parameter '" + std::string(param) + "'";
  if (!list.is_array()) return PayloadError(where + " must be an array of RolePrivilege objects.");
  for (const auto& e : list.as_array()) {
    if (!e.is_object()) return PayloadError(where + " must be an array of RolePrivilege objects.");
    RequestedPrivilege rp;
    const Json* id = e.Find("PrivilegeId");
    const Json* name = e.Find("PrivilegeName");
    if (id && id->is_string()) {
      auto g = Guid::Parse(id->as_string());
      if (!g) return PayloadError(where + ": PrivilegeId '" + id->as_string() + "' is not a GUID.");
      rp.id = *g;
    } else if (name && name->is_string()) {
      rp.id = security::PrivilegeId(name->as_string());
    } else {
      return PayloadError(where + ": each RolePrivilege needs a PrivilegeId.");
    }
    if (const Json* d = e.Find("Depth"); d && !d->is_null()) {
      std::string text = d->is_int() ? std::to_string(d->as_int()) : d->is_string() ? d->as_string() : "";
      if (!security::ParseDepth(text, rp.depth))
        return PayloadError(where + ": Depth must be Basic, Local, Deep or Global (or 0–3), not " + d->Dump() + ".");
    }
    out.push_back(rp);
  }
  return out;
}

void WritePrivileges(JsonWriter& w, const std::vector<data::OrganizationService::RolePrivilege>& list) {
  w.Key("RolePrivileges");
  w.BeginArray();
  for (const auto& rp : list) {
    w.BeginObject();
    w.Key("Depth");
    w.String(security::DepthName(rp.depth));
    w.Key("PrivilegeId");
    w.String(rp.privilege_id.ToString());
    w.Key("BusinessUnitId");
    w.String(rp.business_unit_id.ToString());
    w.Key("PrivilegeName");
    w.String(rp.name);
    w.EndObject();
  }
  w.EndArray();
}

// A principal argument (systemuser or team).
Result<data::EntityRef> ParsePrincipal(const catalog::Catalog& cat, const Json* v, std::string_view name) {
  if (!v) return PayloadError("The parameter '" + std::string(name) + "' is missing.");
  ASSIGN_OR_RETURN(EntityArgument a, ParseEntityArgument(cat, *v, name, nullptr));
  if (a.table->logical_name != "systemuser" && a.table->logical_name != "team")
    return PayloadError("The parameter '" + std::string(name) + "' must be a systemuser or a team, not '" +
                        a.table->logical_name + "'.");
  if (!a.id) return PayloadError("The parameter '" + std::string(name) + "' must give the principal's id.");
  return data::EntityRef{a.table->logical_name, *a.id};
}

Result<EntityArgument> ParseTarget(const catalog::Catalog& cat, const Json& params, std::string_view name) {
  const Json* v = params.Find(name);
  if (!v) return PayloadError("The parameter '" + std::string(name) + "' is missing.");
  ASSIGN_OR_RETURN(EntityArgument a, ParseEntityArgument(cat, *v, name, nullptr));
  if (!a.id) return PayloadError("The parameter '" + std::string(name) + "' must give the record's id.");
  return a;
}

}  // namespace

void WebApi::RegisterSecurityOperations() {
  auto add = [this](OperationDef def, std::function<void(CallPtr, const OperationArgs&)> run) {
    operations_.push_back(std::make_shared<const Operation>(Operation{std::move(def), std::move(run)}));
  };
  const std::string kRolePrivileges = "Collection(mscrm.RolePrivilege)";

  // Role privileges. Changing a role needs Write on it.
  auto change_privileges = [this](CallPtr c, const OperationArgs& a, std::vector<RequestedPrivilege> list, bool replace,
                                  std::optional<Guid> remove) {
    const Table* role = a.table;
    data::RecordKey key = *a.key;
    Submit(
        c,
        [role, key, list = std::move(list), replace, remove](data::WriteScope& s) -> Result<WriteOutcome> {
          storage::Connection& conn = s.connection();
          std::optional<Guid> role_id = key.id;
          if (!role_id) return QueryError("A role is addressed by its id here.");
          RETURN_IF_ERROR(s.CheckAccess(*role, *role_id, Verb::kWrite));
          std::vector<storage::SqlValue> rid = {role_id->ToString()};
          if (replace) RETURN_IF_ERROR(conn.Exec("DELETE FROM roleprivileges WHERE roleid = ?", rid).status());
          if (remove) {
            std::vector<storage::SqlValue> p = {role_id->ToString(), remove->ToString()};
            ASSIGN_OR_RETURN(int64_t n,
                             conn.Exec("DELETE FROM roleprivileges WHERE roleid = ? AND privilegeid = ?", p));
            if (n == 0)
              return NotFound("The role " + role_id->ToString() + " does not have the privilege " + remove->ToString() +
                              ".");
          }
          for (const auto& rp : list) {
            std::vector<storage::SqlValue> q = {rp.id.ToString()};
            bool found = false;
            bool below_global = true;
            RETURN_IF_ERROR(
                conn.Query("SELECT canbebasic FROM privilege WHERE privilegeid = ?", q, [&](const storage::Row& r) {
                  found = true;
                  below_global = !r.is_null(0) && r.Int(0) != 0;
                  return false;
                }));
            if (!found) return NotFound("privilege With Id = " + rp.id.ToString() + " Does Not Exist");
            // Tables without owners (and task privileges) have only Organization depth.
            Depth depth = below_global ? rp.depth : Depth::kGlobal;
            std::vector<storage::SqlValue> p = {role_id->ToString(), rp.id.ToString()};
            std::optional<int64_t> existing;
            RETURN_IF_ERROR(
                conn.Query("SELECT privilegedepthmask FROM roleprivileges WHERE roleid = ? AND privilegeid = ?", p,
                           [&](const storage::Row& r) {
                             existing = r.is_null(0) ? 8 : r.Int(0);
                             return false;
                           }));
            int64_t mask = security::DepthMask(depth);
            if (existing) {
              // AddPrivilegesRole keeps the deeper of the two depths.
              if (!replace && security::DepthFromMask(*existing) >= depth) continue;
              std::vector<storage::SqlValue> u = {mask, role_id->ToString(), rp.id.ToString()};
              RETURN_IF_ERROR(
                  conn.Exec("UPDATE roleprivileges SET privilegedepthmask = ? WHERE roleid = ? AND privilegeid = ?", u)
                      .status());
            } else {
              std::vector<storage::SqlValue> ins = {GuidGenerator::NewSequential().ToString(), role_id->ToString(),
                                                    rp.id.ToString(), mask};
              RETURN_IF_ERROR(conn.Exec("INSERT INTO roleprivileges (roleprivilegesid, roleid, privilegeid, "
                                        "privilegedepthmask) VALUES (?, ?, ?, ?)",
                                        ins)
                                  .status());
            }
          }
          s.SecurityChanged();
          return WriteOutcome{role, *role_id, false, {}};
        },
        [c](const WriteOutcome&) { c->Reply(NoContent()); });
  };
  add({"AddPrivilegesRole",
       false,
       OperationBinding::kEntity,
       "role",
       {P("Privileges", OperationType::kComplex, false, kRolePrivileges)},
       {}},
      [change_privileges](CallPtr c, const OperationArgs& a) {
        auto list = ParsePrivileges(*a.params.Find("Privileges"), "Privileges");
        if (!list.ok()) return c->Fail(list.status());
        change_privileges(c, a, std::move(list).value(), false, std::nullopt);
      });
  add({"ReplacePrivilegesRole",
       false,
       OperationBinding::kEntity,
       "role",
       {P("Privileges", OperationType::kComplex, false, kRolePrivileges)},
       {}},
      [change_privileges](CallPtr c, const OperationArgs& a) {
        auto list = ParsePrivileges(*a.params.Find("Privileges"), "Privileges");
        if (!list.ok()) return c->Fail(list.status());
        change_privileges(c, a, std::move(list).value(), true, std::nullopt);
      });
  add({"RemovePrivilegeRole", false, OperationBinding::kEntity, "role", {P("PrivilegeId", OperationType::kGuid)}, {}},
      [change_privileges](CallPtr c, const OperationArgs& a) {
        auto id = Guid::Parse(a.params.Find("PrivilegeId")->as_string());
        change_privileges(c, a, {}, false, *id);
      });
  add({"RetrieveRolePrivilegesRole",
       true,
       OperationBinding::kEntity,
       "role",
       {},
       {P("RolePrivileges", OperationType::kComplex, false, kRolePrivileges)}},
      [this](CallPtr c, const OperationArgs& a) {
        auto& svc = env_.service();
        auto role = svc.Retrieve(c->caller, *a.table, *a.key, {});
        if (!role.ok()) return c->Fail(role.status());
        auto list = svc.RolePrivileges({role->id});
        if (!list.ok()) return c->Fail(list.status());
        std::string body;
        JsonWriter w(body);
        w.BeginObject();
        w.Key("@odata.context");
        w.String(Context(*c, "RetrieveRolePrivilegesRole"));
        WritePrivileges(w, *list);
        w.EndObject();
        c->Reply(Json200(std::move(body)));
      });
  add({"RetrieveUserPrivileges",
       true,
       OperationBinding::kEntity,
       "systemuser",
       {},
       {P("RolePrivileges", OperationType::kComplex, false, kRolePrivileges)}},
      [this](CallPtr c, const OperationArgs& a) {
        auto& svc = env_.service();
        auto user = svc.Retrieve(c->caller, *a.table, *a.key, {});
        if (!user.ok()) return c->Fail(user.status());
        auto roles = svc.UserRoles(user->id);
        if (!roles.ok()) return c->Fail(roles.status());
        auto list = svc.RolePrivileges(*roles);
        if (!list.ok()) return c->Fail(list.status());
        std::string body;
        JsonWriter w(body);
        w.BeginObject();
        w.Key("@odata.context");
        w.String(Context(*c, "RetrieveUserPrivileges"));
        WritePrivileges(w, *list);
        w.EndObject();
        c->Reply(Json200(std::move(body)));
      });

  // Sharing.
  auto share = [this](CallPtr c, const OperationArgs& a, bool replace) {
    auto target = ParseTarget(*c->cat, a.params, "Target");
    if (!target.ok()) return c->Fail(target.status());
    const Json* pa = a.params.Find("PrincipalAccess");
    if (!pa || !pa->is_object()) return c->Fail(PayloadError("The parameter 'PrincipalAccess' must be an object."));
    auto principal = ParsePrincipal(*c->cat, pa->Find("Principal"), "PrincipalAccess.Principal");
    if (!principal.ok()) return c->Fail(principal.status());
    const Json* mask = pa->Find("AccessMask");
    uint32_t rights = 0;
    std::string text = !mask               ? ""
                       : mask->is_int()    ? std::to_string(mask->as_int())
                       : mask->is_string() ? mask->as_string()
                                           : "";
    if (!security::ParseAccessRights(text, rights))
      return c->Fail(
          PayloadError("PrincipalAccess.AccessMask must name AccessRights (\"ReadAccess, WriteAccess\"), not " +
                       (mask ? mask->Dump() : std::string("nothing")) + "."));
    const Table* table = target->table;
    Guid id = *target->id;
    data::EntityRef who = *principal;
    Submit(
        c,
        [table, id, who, rights, replace](data::WriteScope& s) -> Result<WriteOutcome> {
          RETURN_IF_ERROR(s.Share(*table, id, who, rights, replace));
          return WriteOutcome{table, id, false, {}};
        },
        [c](const WriteOutcome&) { c->Reply(NoContent()); });
  };
  add({"GrantAccess",
       false,
       OperationBinding::kUnbound,
       "",
       {P("Target", OperationType::kEntityReference),
        P("PrincipalAccess", OperationType::kComplex, false, "mscrm.PrincipalAccess")},
       {}},
      [share](CallPtr c, const OperationArgs& a) { share(c, a, false); });
  add({"ModifyAccess",
       false,
       OperationBinding::kUnbound,
       "",
       {P("Target", OperationType::kEntityReference),
        P("PrincipalAccess", OperationType::kComplex, false, "mscrm.PrincipalAccess")},
       {}},
      [share](CallPtr c, const OperationArgs& a) { share(c, a, true); });
  add({"RevokeAccess",
       false,
       OperationBinding::kUnbound,
       "",
       {P("Target", OperationType::kEntityReference), P("Revokee", OperationType::kEntityReference)},
       {}},
      [this](CallPtr c, const OperationArgs& a) {
        auto target = ParseTarget(*c->cat, a.params, "Target");
        if (!target.ok()) return c->Fail(target.status());
        auto who = ParsePrincipal(*c->cat, a.params.Find("Revokee"), "Revokee");
        if (!who.ok()) return c->Fail(who.status());
        const Table* table = target->table;
        Guid id = *target->id;
        data::EntityRef principal = *who;
        Submit(
            c,
            [table, id, principal](data::WriteScope& s) -> Result<WriteOutcome> {
              RETURN_IF_ERROR(s.Unshare(*table, id, principal));
              return WriteOutcome{table, id, false, {}};
            },
            [c](const WriteOutcome&) { c->Reply(NoContent()); });
      });
  add({"RetrievePrincipalAccess",
       true,
       OperationBinding::kEntity,
       "systemuser",
       {P("Target", OperationType::kEntityReference)},
       {P("AccessRights", OperationType::kString)}},
      [this](CallPtr c, const OperationArgs& a) {
        auto target = ParseTarget(*c->cat, a.params, "Target");
        if (!target.ok()) return c->Fail(target.status());
        auto& svc = env_.service();
        auto user = svc.Retrieve(c->caller, *a.table, *a.key, {});
        if (!user.ok()) return c->Fail(user.status());
        auto who = env_.ResolveUser(user->id);
        if (!who.ok()) return c->Fail(InvalidArgument("The user " + user->id.ToString() + " is disabled."));
        auto rights = svc.PrincipalAccess(c->caller, *who, *target->table, *target->id);
        if (!rights.ok()) return c->Fail(rights.status());
        std::string body;
        JsonWriter w(body);
        w.BeginObject();
        w.Key("@odata.context");
        w.String(Context(*c, "RetrievePrincipalAccess"));
        w.Key("AccessRights");
        w.String(security::AccessRightsText(*rights));
        w.EndObject();
        c->Reply(Json200(std::move(body)));
      });
  add({"RetrieveSharedPrincipalsAndAccess",
       true,
       OperationBinding::kUnbound,
       "",
       {P("Target", OperationType::kEntityReference)},
       {P("PrincipalAccesses", OperationType::kComplex, false, "Collection(mscrm.PrincipalAccess)")}},
      [this](CallPtr c, const OperationArgs& a) {
        auto target = ParseTarget(*c->cat, a.params, "Target");
        if (!target.ok()) return c->Fail(target.status());
        auto list = env_.service().SharedPrincipals(c->caller, *target->table, *target->id);
        if (!list.ok()) return c->Fail(list.status());
        std::string body;
        JsonWriter w(body);
        w.BeginObject();
        w.Key("@odata.context");
        w.String(Context(*c, "RetrieveSharedPrincipalsAndAccess"));
        w.Key("PrincipalAccesses");
        w.BeginArray();
        for (const auto& sa : *list) {
          w.BeginObject();
          w.Key("AccessMask");
          w.String(security::AccessRightsText(sa.rights));
          w.Key("Principal");
          w.BeginObject();
          w.Key("@odata.type");
          w.String("#Microsoft.Dynamics.CRM." + sa.principal.table);
          w.Key("ownerid");
          w.String(sa.principal.id.ToString());
          w.EndObject();
          w.EndObject();
        }
        w.EndArray();
        w.EndObject();
        c->Reply(Json200(std::move(body)));
      });

  // Team membership: associations of teammembership_association, by list.
  auto members = [this](CallPtr c, const OperationArgs& a, bool add_members) {
    const Json* list = a.params.Find("Members");
    if (!list || !list->is_array())
      return c->Fail(PayloadError("The parameter 'Members' must be an array of systemusers."));
    std::vector<Guid> users;
    for (const auto& m : list->as_array()) {
      auto u = ParseEntityArgument(*c->cat, m, "Members", c->cat->FindTable("systemuser"));
      if (!u.ok()) return c->Fail(u.status());
      if (!u->id) return c->Fail(PayloadError("Each of 'Members' must give the systemuserid."));
      users.push_back(*u->id);
    }
    const Table* team = a.table;
    const catalog::NavProperty* nav = team->FindNav("teammembership_association");
    const Table* user_table = c->cat->FindTable("systemuser");
    if (!nav || !user_table) return c->Fail(Internal("teammembership_association is missing"));
    data::RecordKey key = *a.key;
    Submit(
        c,
        [team, nav, user_table, key, users, add_members](data::WriteScope& s) -> Result<WriteOutcome> {
          Guid team_id;
          for (const auto& u : users) {
            data::BindTarget related{user_table, data::RecordKey{u, {}}};
            auto r = s.Associate(*team, key, *nav, related, add_members);
            // Adding a member twice is not an error; neither is removing a non-member.
            if (!r.ok() && r.status().code() != Code::kAlreadyExists) return r.status();
            if (r.ok()) team_id = *r;
          }
          return WriteOutcome{team, team_id, false, {}};
        },
        [c](const WriteOutcome&) { c->Reply(NoContent()); });
  };
  add({"AddMembersTeam",
       false,
       OperationBinding::kEntity,
       "team",
       {P("Members", OperationType::kEntityCollection)},
       {}},
      [members](CallPtr c, const OperationArgs& a) { members(c, a, true); });
  add({"RemoveMembersTeam",
       false,
       OperationBinding::kEntity,
       "team",
       {P("Members", OperationType::kEntityCollection)},
       {}},
      [members](CallPtr c, const OperationArgs& a) { members(c, a, false); });
}

}  // namespace tributary::odata
