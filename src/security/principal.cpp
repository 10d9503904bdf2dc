#include "tributary/security/principal.h"

#include <algorithm>
#include <charconv>
#include <functional>
#include <map>

#include "tributary/base/strings.h"
#include "tributary/catalog/schema.h"

namespace tributary::security {

namespace {

constexpr std::array<std::string_view, kVerbCount> kVerbNames = {"Create", "Read",     "Write",  "Delete",
                                                                 "Append", "AppendTo", "Assign", "Share"};
constexpr std::array<uint32_t, kVerbCount> kVerbRights = {kCreateAccess, kReadAccess,     kWriteAccess,  kDeleteAccess,
                                                          kAppendAccess, kAppendToAccess, kAssignAccess, kShareAccess};
// AccessRights members in the order Dataverse lists them.
constexpr std::array<std::pair<uint32_t, std::string_view>, 8> kRightNames = {{{kReadAccess, "ReadAccess"},
                                                                               {kWriteAccess, "WriteAccess"},
                                                                               {kAppendAccess, "AppendAccess"},
                                                                               {kAppendToAccess, "AppendToAccess"},
                                                                               {kCreateAccess, "CreateAccess"},
                                                                               {kDeleteAccess, "DeleteAccess"},
                                                                               {kShareAccess, "ShareAccess"},
                                                                               {kAssignAccess, "AssignAccess"}}};

std::vector<storage::SqlValue> Texts(const std::vector<Guid>& ids) {
  std::vector<storage::SqlValue> out;
  out.reserve(ids.size());
  for (const auto& g : ids) out.emplace_back(g.ToString());
  return out;
}

std::optional<Guid> GuidAt(const storage::Row& r, int i) {
  if (r.is_null(i)) return std::nullopt;
  return Guid::Parse(r.Text(i));
}

}  // namespace

std::string_view VerbName(Verb v) { return kVerbNames[static_cast<size_t>(v)]; }
uint32_t RightOf(Verb v) { return kVerbRights[static_cast<size_t>(v)]; }

std::string AccessRightsText(uint32_t mask) {
  if (mask == 0) return "None";
  std::string out;
  for (const auto& [bit, name] : kRightNames) {
    if (!(mask & bit)) continue;
    if (!out.empty()) out += ", ";
    out += name;
  }
  return out;
}

bool ParseAccessRights(std::string_view text, uint32_t& mask) {
  mask = 0;
  text = Trim(text);
  if (text.empty()) return false;
  if (std::isdigit(static_cast<unsigned char>(text.front()))) {
    auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), mask);
    return ec == std::errc() && p == text.data() + text.size() && (mask & ~kAllAccessRights) == 0;
  }
  for (auto piece : Split(text, ',')) {
    piece = Trim(piece);
    if (piece == "None") continue;
    bool found = false;
    for (const auto& [bit, name] : kRightNames)
      if (EqualsIgnoreCase(piece, name)) {
        mask |= bit;
        found = true;
      }
    if (!found) return false;
  }
  return true;
}

int DepthMask(Depth d) { return d == Depth::kNone ? 0 : 1 << static_cast<int>(d); }

Depth DepthFromMask(int64_t mask) {
  if (mask & 8) return Depth::kGlobal;
  if (mask & 4) return Depth::kDeep;
  if (mask & 2) return Depth::kLocal;
  if (mask & 1) return Depth::kBasic;
  return Depth::kNone;
}

std::string_view DepthName(Depth d) {
  switch (d) {
    case Depth::kBasic:
      return "Basic";
    case Depth::kLocal:
      return "Local";
    case Depth::kDeep:
      return "Deep";
    case Depth::kGlobal:
      return "Global";
    default:
      return "None";
  }
}

bool ParseDepth(std::string_view text, Depth& d) {
  for (Depth x : {Depth::kBasic, Depth::kLocal, Depth::kDeep, Depth::kGlobal})
    if (EqualsIgnoreCase(text, DepthName(x)) || text == std::to_string(static_cast<int>(x))) {
      d = x;
      return true;
    }
  return false;
}

std::string PrivilegeName(Verb v, std::string_view table_schema_name) {
  return "prv" + std::string(VerbName(v)) + std::string(table_schema_name);
}

Guid PrivilegeId(std::string_view name) { return catalog::NameGuid("privilege:" + ToLower(name)); }

const TableAccess& Principal::Access(std::string_view table_schema_name, Verb verb) const {
  static const TableAccess kNone;
  static const TableAccess kAll{true, true, {}};
  if (system_administrator) return kAll;
  auto it = tables.find(ToLower(table_schema_name));
  return it == tables.end() ? kNone : it->second[static_cast<size_t>(verb)];
}

bool Principal::Holds(std::string_view privilege_name) const {
  return system_administrator || misc.count(ToLower(privilege_name)) > 0;
}

uint8_t Principal::FieldRights(std::string_view table, std::string_view column) const {
  if (system_administrator) return kFieldRead | kFieldCreate | kFieldUpdate;
  std::string key;
  key.reserve(table.size() + column.size() + 1);
  key.append(table).append(".").append(column);
  auto it = fields.find(ToLower(key));
  return it == fields.end() ? 0 : it->second;
}

Result<PrincipalPtr> LoadPrincipal(storage::Connection& c, const Guid& user_id) {
  auto p = std::make_shared<Principal>();
  p->user_id = user_id;
  const std::string uid = user_id.ToString();
  bool found = false;
  RETURN_IF_ERROR(c.Query("SELECT businessunitid, isdisabled FROM systemuser WHERE systemuserid = ?",
                          std::vector<storage::SqlValue>{uid}, [&](const storage::Row& r) {
                            found = true;
                            if (auto g = GuidAt(r, 0)) p->business_unit_id = *g;
                            p->disabled = r.kind(1) == storage::ValueKind::kInt && r.Int(1) != 0;
                            return false;
                          }));
  if (!found) return NotFound("No systemuser with id " + uid + ".");

  // Teams: explicit memberships and the default team of the user's business unit.
  struct TeamInfo {
    Guid id, business_unit;
    int64_t type = 0;
  };
  std::vector<TeamInfo> teams;
  auto add_team = [&](const storage::Row& r) {
    auto id = GuidAt(r, 0);
    if (!id) return true;
    for (const auto& t : teams)
      if (t.id == *id) return true;
    teams.push_back({*id, GuidAt(r, 1).value_or(Guid()), r.is_null(2) ? 0 : r.Int(2)});
    return true;
  };
  RETURN_IF_ERROR(
      c.Query("SELECT t.teamid, t.businessunitid, t.teamtype FROM teammembership m JOIN team t ON "
              "t.teamid = m.teamid WHERE m.systemuserid = ?",
              std::vector<storage::SqlValue>{uid}, add_team));
  RETURN_IF_ERROR(
      c.Query("SELECT teamid, businessunitid, teamtype FROM team WHERE isdefault = 1 AND businessunitid = ?",
              std::vector<storage::SqlValue>{p->business_unit_id.ToString()}, add_team));
  for (const auto& t : teams) p->teams.push_back(t.id);
  std::sort(p->teams.begin(), p->teams.end());

  // Roles, each with the business unit that anchors its Local/Deep depths: the user's for roles
  // held directly, the team's for roles held through a team. Access teams hold no roles.
  std::vector<std::pair<Guid, Guid>> roles;  // role id, anchor business unit
  RETURN_IF_ERROR(c.Query("SELECT roleid FROM systemuserroles WHERE systemuserid = ?",
                          std::vector<storage::SqlValue>{uid}, [&](const storage::Row& r) {
                            if (auto g = GuidAt(r, 0)) roles.emplace_back(*g, p->business_unit_id);
                            return true;
                          }));
  std::vector<Guid> role_teams;
  for (const auto& t : teams)
    if (t.type != 1) role_teams.push_back(t.id);
  if (!role_teams.empty()) {
    RETURN_IF_ERROR(c.Query(
        "SELECT teamid, roleid FROM teamroles WHERE teamid IN (" + storage::Placeholders(role_teams.size()) + ")",
        Texts(role_teams), [&](const storage::Row& r) {
          auto team = GuidAt(r, 0);
          auto role = GuidAt(r, 1);
          if (!team || !role) return true;
          for (const auto& t : teams)
            if (t.id == *team) roles.emplace_back(*role, t.business_unit);
          return true;
        }));
  }

  if (!roles.empty()) {
    std::vector<Guid> role_ids;
    for (const auto& [r, bu] : roles) role_ids.push_back(r);
    std::sort(role_ids.begin(), role_ids.end());
    role_ids.erase(std::unique(role_ids.begin(), role_ids.end()), role_ids.end());
    auto params = Texts(role_ids);
    // Only active roles count.
    std::vector<Guid> active;
    RETURN_IF_ERROR(c.Query("SELECT roleid, roletemplateid FROM role WHERE roleid IN (" +
                                storage::Placeholders(role_ids.size()) + ") AND (statecode IS NULL OR statecode = 0)",
                            params, [&](const storage::Row& r) {
                              if (auto g = GuidAt(r, 0)) active.push_back(*g);
                              if (!r.is_null(1) && EqualsIgnoreCase(r.Text(1), kSystemAdministratorTemplateId))
                                p->system_administrator = true;
                              return true;
                            }));

    // The business-unit tree, for Deep grants.
    std::multimap<Guid, Guid> children;
    bool need_tree = true;
    auto subtree = [&](const Guid& root, std::vector<Guid>& out) {
      std::vector<Guid> stack = {root};
      size_t guard = 0;
      while (!stack.empty() && guard++ < 1'000'000) {
        Guid bu = stack.back();
        stack.pop_back();
        out.push_back(bu);
        auto [b, e] = children.equal_range(bu);
        for (auto it = b; it != e; ++it) stack.push_back(it->second);
      }
    };

    struct Grant {
      std::string name;
      uint32_t right;
      Depth depth;
      Guid anchor;
    };
    std::vector<Grant> grants;
    if (!active.empty()) {
      std::sort(active.begin(), active.end());
      RETURN_IF_ERROR(
          c.Query("SELECT rp.roleid, p.name, p.accessright, rp.privilegedepthmask FROM roleprivileges rp "
                  "JOIN privilege p ON p.privilegeid = rp.privilegeid WHERE rp.roleid IN (" +
                      storage::Placeholders(active.size()) + ")",
                  Texts(active), [&](const storage::Row& r) {
                    auto role = GuidAt(r, 0);
                    if (!role || r.is_null(1)) return true;
                    // An association without a depth (through $ref) gives Global.
                    Depth d = r.is_null(3) ? Depth::kGlobal : DepthFromMask(r.Int(3));
                    if (d == Depth::kNone) return true;
                    uint32_t right = r.is_null(2) ? 0 : static_cast<uint32_t>(r.Int(2));
                    for (const auto& [rid, anchor] : roles)
                      if (rid == *role) grants.push_back({std::string(r.Text(1)), right, d, anchor});
                    return true;
                  }));
    }
    for (const auto& g : grants) {
      if (g.depth == Depth::kDeep && need_tree) {
        need_tree = false;
        RETURN_IF_ERROR(
            c.Query("SELECT businessunitid, parentbusinessunitid FROM businessunit", {}, [&](const storage::Row& r) {
              auto bu = GuidAt(r, 0);
              auto parent = GuidAt(r, 1);
              if (bu && parent && *bu != *parent) children.emplace(*parent, *bu);
              return true;
            }));
      }
      // Which verb: the privilege's access right; its table: the name after "prv<Verb>".
      std::optional<Verb> verb;
      for (Verb v : kAllVerbs)
        if (g.right == RightOf(v)) verb = v;
      std::string prefix = verb ? "prv" + std::string(VerbName(*verb)) : std::string();
      if (!verb || g.name.size() <= prefix.size() || !StartsWithIgnoreCase(g.name, prefix)) {
        p->misc.insert(ToLower(g.name));
        continue;
      }
      TableAccess& a = p->tables[ToLower(std::string_view(g.name).substr(prefix.size()))][static_cast<size_t>(*verb)];
      a.held = true;
      if (g.depth == Depth::kGlobal)
        a.global = true;
      else if (g.depth == Depth::kLocal)
        a.business_units.push_back(g.anchor);
      else if (g.depth == Depth::kDeep)
        subtree(g.anchor, a.business_units);
    }
    for (auto& [name, verbs] : p->tables)
      for (auto& a : verbs) {
        if (a.global) a.business_units.clear();
        std::sort(a.business_units.begin(), a.business_units.end());
        a.business_units.erase(std::unique(a.business_units.begin(), a.business_units.end()), a.business_units.end());
      }
  }

  // Field security: the profiles of the user and of their teams.
  std::vector<Guid> profiles;
  auto add_profile = [&](const storage::Row& r) {
    if (auto g = GuidAt(r, 0)) profiles.push_back(*g);
    return true;
  };
  RETURN_IF_ERROR(c.Query("SELECT fieldsecurityprofileid FROM systemuserprofiles WHERE systemuserid = ?",
                          std::vector<storage::SqlValue>{uid}, add_profile));
  if (!p->teams.empty())
    RETURN_IF_ERROR(c.Query("SELECT fieldsecurityprofileid FROM teamprofiles WHERE teamid IN (" +
                                storage::Placeholders(p->teams.size()) + ")",
                            Texts(p->teams), add_profile));
  if (!profiles.empty()) {
    RETURN_IF_ERROR(
        c.Query("SELECT entityname, attributelogicalname, canread, cancreate, canupdate FROM fieldpermission WHERE "
                "fieldsecurityprofileid IN (" +
                    storage::Placeholders(profiles.size()) + ")",
                Texts(profiles), [&](const storage::Row& r) {
                  if (r.is_null(0) || r.is_null(1)) return true;
                  uint8_t bits = 0;
                  if (!r.is_null(2) && r.Int(2) == 4) bits |= kFieldRead;
                  if (!r.is_null(3) && r.Int(3) == 4) bits |= kFieldCreate;
                  if (!r.is_null(4) && r.Int(4) == 4) bits |= kFieldUpdate;
                  p->fields[ToLower(std::string(r.Text(0)) + "." + std::string(r.Text(1)))] |= bits;
                  return true;
                }));
  }
  return PrincipalPtr(std::move(p));
}

std::optional<int64_t> Principal::CachedReach(const std::string& key) const {
  std::lock_guard lock(reach_mu_);
  auto it = reach_.find(key);
  if (it == reach_.end()) return std::nullopt;
  return it->second;
}

void Principal::CacheReach(const std::string& key, int64_t rows) const {
  std::lock_guard lock(reach_mu_);
  reach_[key] = rows;
}

bool SecurityCache::IsSecurityTable(std::string_view n) {
  static const std::array<std::string_view, 14> kTables = {"systemuser",
                                                           "team",
                                                           "teammembership",
                                                           "businessunit",
                                                           "role",
                                                           "roleprivileges",
                                                           "systemuserroles",
                                                           "teamroles",
                                                           "fieldsecurityprofile",
                                                           "fieldpermission",
                                                           "systemuserprofiles",
                                                           "teamprofiles",
                                                           "privilege",
                                                           "organization"};
  return std::find(kTables.begin(), kTables.end(), n) != kTables.end();
}

Result<PrincipalPtr> SecurityCache::Get(const Guid& user_id) {
  const std::string key = user_id.ToString();
  uint64_t epoch = epoch_.load(std::memory_order_acquire);
  {
    std::lock_guard lock(mu_);
    if (cached_epoch_ != epoch) {
      cache_.clear();
      cached_epoch_ = epoch;
    }
    auto it = cache_.find(key);
    if (it != cache_.end() &&
        std::chrono::steady_clock::now() - it->second.loaded < std::chrono::seconds(kMaxAgeSeconds))
      return it->second.principal;
  }
  auto lease = engine_.Read();
  ASSIGN_OR_RETURN(PrincipalPtr p, LoadPrincipal(*lease, user_id));
  std::lock_guard lock(mu_);
  // Keep it only if no security change happened while it was read.
  if (cached_epoch_ == epoch && epoch_.load(std::memory_order_acquire) == epoch) {
    if (cache_.size() >= 100'000) cache_.clear();
    cache_[key] = Entry{p, std::chrono::steady_clock::now()};
  }
  return p;
}

void SecurityCache::Invalidate() { epoch_.fetch_add(1, std::memory_order_acq_rel); }

}  // namespace tributary::security
