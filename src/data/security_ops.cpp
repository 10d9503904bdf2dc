// Security reads of the organization service: a principal's access to a record, a record's
// shares, the privileges of roles (RetrievePrincipalAccess, RetrieveSharedPrincipalsAndAccess,
// RetrieveRolePrivilegesRole, RetrieveUserPrivileges).

#include <algorithm>
#include <map>

#include "access.h"
#include "internal.h"

namespace tributary::data {

using catalog::Table;

namespace {

Status CheckReadable(storage::Connection& c, const CallerContext& caller, const Table& table, const Guid& record) {
  RETURN_IF_ERROR(CheckPrivilege(caller, table, Verb::kRead));
  // The row condition's parameters first: it is in the select list, before the id.
  std::vector<storage::SqlValue> p;
  ASSIGN_OR_RETURN(auto rf, RowFilter(caller, table, Verb::kRead, "t0", p));
  p.emplace_back(record.ToString());
  bool exists = false, readable = false;
  RETURN_IF_ERROR(c.Query("SELECT " + (rf ? "CASE WHEN " + *rf + " THEN 1 ELSE 0 END" : std::string("1")) + " FROM " +
                              Q(table.sql_table) + " t0 WHERE t0." + Q(table.PrimaryId()->sql_name) + " = ?",
                          p, [&](const storage::Row& r) {
                            exists = true;
                            readable = r.Int(0) != 0;
                            return false;
                          }));
  if (!exists) return NotFound(table.logical_name + " With Id = " + record.ToString() + " Does Not Exist");
  if (!readable) return RecordAccessDenied(caller, table, Verb::kRead, record);
  return Status::Ok();
}

}  // namespace

Result<uint32_t> OrganizationService::PrincipalAccess(const CallerContext& caller, const CallerContext& who,
                                                      const Table& table, const Guid& record) {
  auto conn = engine_.Read();
  RETURN_IF_ERROR(CheckReadable(*conn, caller, table, record));
  uint32_t rights = 0;
  for (Verb v : security::kAllVerbs) {
    if (v == Verb::kCreate) continue;  // not a right on an existing record
    if (!CheckPrivilege(who, table, v).ok()) continue;
    std::vector<storage::SqlValue> p = {record.ToString()};
    ASSIGN_OR_RETURN(auto rf, RowFilter(who, table, v, "t0", p));
    bool ok = !rf;
    if (rf) {
      RETURN_IF_ERROR(conn->Query(
          "SELECT 1 FROM " + Q(table.sql_table) + " t0 WHERE t0." + Q(table.PrimaryId()->sql_name) + " = ? AND " + *rf,
          p, [&](const storage::Row&) {
            ok = true;
            return false;
          }));
    }
    if (ok) rights |= security::RightOf(v);
  }
  return rights;
}

Result<std::vector<OrganizationService::SharedAccess>> OrganizationService::SharedPrincipals(
    const CallerContext& caller, const Table& table, const Guid& record) {
  auto conn = engine_.Read();
  RETURN_IF_ERROR(CheckReadable(*conn, caller, table, record));
  std::vector<SharedAccess> out;
  std::vector<storage::SqlValue> p = {record.ToString()};
  RETURN_IF_ERROR(conn->Query(
      "SELECT principalid, principaltypecode, accessrightsmask, inheritedaccessrightsmask FROM principalobjectaccess "
      "WHERE objectid = ? ORDER BY principalid",
      p, [&](const storage::Row& r) {
        auto id = Guid::Parse(r.Text(0));
        if (!id) return true;
        uint32_t mask = static_cast<uint32_t>((r.is_null(2) ? 0 : r.Int(2)) | (r.is_null(3) ? 0 : r.Int(3)));
        if (mask) out.push_back(SharedAccess{EntityRef{std::string(r.Text(1)), *id}, mask});
        return true;
      }));
  return out;
}

Result<std::vector<OrganizationService::RolePrivilege>> OrganizationService::RolePrivileges(
    const std::vector<Guid>& roles) {
  std::vector<RolePrivilege> out;
  if (roles.empty()) return out;
  std::vector<storage::SqlValue> p;
  for (const auto& r : roles) p.emplace_back(r.ToString());
  std::map<std::string, RolePrivilege> best;  // by name
  auto conn = engine_.Read();
  RETURN_IF_ERROR(conn->Query(
      "SELECT p.privilegeid, p.name, rp.privilegedepthmask, r.businessunitid FROM roleprivileges rp JOIN privilege p "
      "ON p.privilegeid = rp.privilegeid JOIN role r ON r.roleid = rp.roleid WHERE rp.roleid IN (" +
          storage::Placeholders(roles.size()) + ")",
      p, [&](const storage::Row& r) {
        RolePrivilege rp;
        if (auto g = Guid::Parse(r.Text(0))) rp.privilege_id = *g;
        rp.name = std::string(r.Text(1));
        rp.depth = r.is_null(2) ? security::Depth::kGlobal : security::DepthFromMask(r.Int(2));
        if (!r.is_null(3))
          if (auto g = Guid::Parse(r.Text(3))) rp.business_unit_id = *g;
        auto [it, inserted] = best.emplace(rp.name, rp);
        if (!inserted && rp.depth > it->second.depth) it->second = rp;
        return true;
      }));
  for (auto& [name, rp] : best) out.push_back(std::move(rp));
  return out;
}

Result<std::vector<Guid>> OrganizationService::UserRoles(const Guid& user) {
  std::vector<Guid> out;
  auto conn = engine_.Read();
  auto add = [&](const storage::Row& r) {
    if (auto g = Guid::Parse(r.Text(0))) out.push_back(*g);
    return true;
  };
  std::vector<storage::SqlValue> p = {user.ToString()};
  RETURN_IF_ERROR(conn->Query("SELECT roleid FROM systemuserroles WHERE systemuserid = ?", p, add));
  RETURN_IF_ERROR(conn->Query(
      "SELECT tr.roleid FROM teamroles tr WHERE tr.teamid IN (SELECT teamid FROM teammembership WHERE systemuserid = ? "
      "UNION SELECT t.teamid FROM team t JOIN systemuser u ON u.businessunitid = t.businessunitid WHERE t.isdefault = "
      "1 AND u.systemuserid = ?)",
      std::vector<storage::SqlValue>{user.ToString(), user.ToString()}, add));
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

}  // namespace tributary::data
