#include "access.h"

#include "sql_schema.h"

#include <algorithm>
#include <atomic>

namespace tributary::data {

using catalog::Ownership;
using catalog::Table;

namespace {

// Where the ids of a row condition go: into the text as literals ('id'), or as `?` parameters
// appended to `params` in text order, so the statement text is the same for every caller with
// as many teams and business units (and SQLite's prepared statements are reused).
struct IdSink {
  std::string& out;
  std::vector<storage::SqlValue>* params = nullptr;

  void Add(const Guid& g) {
    if (params) {
      out += '?';
      params->emplace_back(g.ToString());
      return;
    }
    out += '\'';
    g.AppendTo(out);
    out += '\'';
  }
  void AddList(const std::vector<Guid>& ids) {
    for (size_t i = 0; i < ids.size(); ++i) {
      if (i) out += ',';
      Add(ids[i]);
    }
  }
  // The user and their teams.
  void AddPrincipals(const security::Principal& p) {
    Add(p.user_id);
    for (const Guid& t : p.teams) {
      out += ',';
      Add(t);
    }
  }
};

// Tables whose rows are not subject to the row check: no owner columns.
bool RowScoped(const Table& t) { return t.ownership == Ownership::kUser && !t.is_intersect; }

}  // namespace

Status PrivilegeDenied(const CallerContext& caller, const Table& table, Verb verb) {
  std::string prv = security::PrivilegeName(verb, table.schema_name);
  return Status(Code::kPermissionDenied,
                "Principal user (Id=" + caller.user_id.ToString() + ", type=8) is missing " + prv +
                    " privilege (Id=" + security::PrivilegeId(prv).ToString() +
                    ") on OTC=" + std::to_string(table.object_type_code) + " for entity '" + table.logical_name + "'.",
                err::kPrivilegeDenied);
}

Status RecordAccessDenied(const CallerContext& caller, const Table& table, Verb verb, const Guid& id) {
  return Status(Code::kPermissionDenied,
                "Principal user (Id=" + caller.user_id.ToString() + ", type=8) does not have " +
                    security::AccessRightsText(security::RightOf(verb)) +
                    " right(s) for record with Id = " + id.ToString() + " of entity " + table.logical_name + " (" +
                    security::PrivilegeName(verb, table.schema_name) + " does not reach it).",
                err::kRecordAccessDenied);
}

Status CheckPrivilege(const CallerContext& caller, const Table& table, Verb verb) {
  if (!caller.principal || table.is_intersect) return Status::Ok();
  if (caller.principal->Access(table.schema_name, verb).held) return Status::Ok();
  return PrivilegeDenied(caller, table, verb);
}

namespace {

// The row condition of RowFilter for a caller whose access `a` is row-scoped: rows owned by the
// user or one of their teams, owned in a reachable business unit, or shared with the user or one
// of their teams with this right. Two shapes select the same rows:
//  - per row (default): `ownerid IN (…) OR owningbusinessunit IN (…) OR EXISTS (share)`, checked
//    row by row; right when most rows pass, as a scan in key order then stops early;
//  - kIndexOr: the same OR with the share term as `<id> IN (ids shared …)`: every term can use an
//    index, so SQLite may answer it as a multi-index OR, or use an index of the query's own
//    conditions and check the terms per row; right for few reachable rows and a filtered query;
//  - kIdList: `<id> IN (ids owned by … UNION ALL ids in units … UNION ALL ids shared …)`, a list
//    SQLite builds once from the owner, business-unit and share indexes alone, then reads in key
//    order (no sort for the default order, only the rows it returns); right for few reachable
//    rows and a query without conditions of its own.
// Built in one buffer: this runs on every read.
std::string BuildRowFilter(const security::Principal& p, const security::TableAccess& a, const Table& table, Verb verb,
                           std::string_view alias, RowFilterShape shape,
                           std::vector<storage::SqlValue>* params = nullptr) {
  const std::string pk = Q(table.PrimaryId()->sql_name);
  const std::string t = Q(table.sql_table);
  std::string s;
  s.reserve(320 + 3 * alias.size() + 40 * (2 * (p.teams.size() + 1) + a.business_units.size()));
  IdSink ids{s, params};
  auto shared = [&] {  // the share condition on poa, after "poa.principalid IN ("
    ids.AddPrincipals(p);
    s += ") AND ((poa.\"accessrightsmask\" | coalesce(poa.\"inheritedaccessrightsmask\", 0)) & ";
    s += std::to_string(security::RightOf(verb));
    s += ") <> 0";
  };
  if (shape == RowFilterShape::kIdList) {
    s += alias;
    s += '.';
    s += pk;
    s += " IN (SELECT rf_o." + pk + " FROM " + t + " rf_o WHERE rf_o.\"ownerid\" IN (";
    ids.AddPrincipals(p);
    s += ')';
    if (!a.business_units.empty()) {
      s += " UNION ALL SELECT rf_b." + pk + " FROM " + t + " rf_b WHERE rf_b.\"owningbusinessunit\" IN (";
      ids.AddList(a.business_units);
      s += ')';
    }
    s += " UNION ALL SELECT poa.\"objectid\" FROM \"principalobjectaccess\" poa WHERE poa.\"principalid\" IN (";
    shared();
    s += ')';
    return s;
  }
  s += '(';
  s += alias;
  s += ".\"ownerid\" IN (";
  ids.AddPrincipals(p);
  s += ')';
  if (!a.business_units.empty()) {
    s += " OR ";
    s += alias;
    s += ".\"owningbusinessunit\" IN (";
    ids.AddList(a.business_units);
    s += ')';
  }
  if (shape == RowFilterShape::kIndexOr) {
    s += " OR ";
    s += alias;
    s += '.';
    s += pk;
    s += " IN (SELECT poa.\"objectid\" FROM \"principalobjectaccess\" poa WHERE poa.\"principalid\" IN (";
    shared();
    s += "))";
    return s;
  }
  s += " OR EXISTS (SELECT 1 FROM \"principalobjectaccess\" poa WHERE poa.\"objectid\" = ";
  s += alias;
  s += '.';
  s += pk;
  s += " AND poa.\"principalid\" IN (";
  shared();
  s += "))";
  return s;
}

// How many rows of `table` the caller reaches for `verb` through the row condition, counted up
// to kReachProbeCap (shares of every table count: an upper bound is enough here).
Result<int64_t> CountReach(storage::Connection& conn, const security::Principal& p, const security::TableAccess& a,
                           const Table& table) {
  const std::string t = Q(table.sql_table);
  std::string sql;
  std::vector<storage::SqlValue> params;
  IdSink ids{sql, &params};
  sql = "SELECT count(*) FROM (SELECT 1 FROM " + t + " WHERE \"ownerid\" IN (";
  ids.AddPrincipals(p);
  sql += ')';
  if (!a.business_units.empty()) {
    sql += " UNION ALL SELECT 1 FROM " + t + " WHERE \"owningbusinessunit\" IN (";
    ids.AddList(a.business_units);
    sql += ')';
  }
  sql += " UNION ALL SELECT 1 FROM \"principalobjectaccess\" WHERE \"principalid\" IN (";
  ids.AddPrincipals(p);
  sql += ") AND \"objecttypecode\" = ? LIMIT " + std::to_string(kReachProbeCap) + ")";
  params.emplace_back(table.logical_name);
  int64_t n = 0;
  RETURN_IF_ERROR(conn.Query(sql, params, [&](const storage::Row& r) {
    n = r.Int(0);
    return false;
  }));
  return n;
}

std::atomic<RowFilterShape> forced_shape{RowFilterShape::kChosen};

}  // namespace

ScopedRowFilterShape::ScopedRowFilterShape(RowFilterShape shape) : previous_(forced_shape.exchange(shape)) {}
ScopedRowFilterShape::~ScopedRowFilterShape() { forced_shape.store(previous_); }

namespace {

// The caller's access to `table` for `verb` when its rows must be checked; nullptr when every row
// passes (no principal, Organization depth, a table without owners); PrivilegeDenied.
Result<const security::TableAccess*> RowCheckedAccess(const CallerContext& caller, const Table& table, Verb verb) {
  const security::TableAccess* none = nullptr;
  if (!caller.principal || table.is_intersect) return none;
  const security::TableAccess& a = caller.principal->Access(table.schema_name, verb);
  if (!a.held) return PrivilegeDenied(caller, table, verb);
  if (a.global || !RowScoped(table)) return none;
  return &a;
}

}  // namespace

Result<std::optional<std::string>> RowFilter(const CallerContext& caller, const Table& table, Verb verb,
                                             std::string_view alias) {
  ASSIGN_OR_RETURN(const security::TableAccess* a, RowCheckedAccess(caller, table, verb));
  if (!a) return std::optional<std::string>();
  return std::optional<std::string>(BuildRowFilter(*caller.principal, *a, table, verb, alias, RowFilterShape::kPerRow));
}

Result<std::optional<std::string>> RowFilter(const CallerContext& caller, const Table& table, Verb verb,
                                             std::string_view alias, std::vector<storage::SqlValue>& params) {
  ASSIGN_OR_RETURN(const security::TableAccess* a, RowCheckedAccess(caller, table, verb));
  if (!a) return std::optional<std::string>();
  return std::optional<std::string>(
      BuildRowFilter(*caller.principal, *a, table, verb, alias, RowFilterShape::kPerRow, &params));
}

Result<std::optional<std::string>> CollectionRowFilter(storage::Connection& conn, const CallerContext& caller,
                                                       const Table& table, Verb verb, std::string_view alias,
                                                       int64_t limit, bool filtered,
                                                       std::vector<storage::SqlValue>& params) {
  ASSIGN_OR_RETURN(const security::TableAccess* a, RowCheckedAccess(caller, table, verb));
  if (!a) return std::optional<std::string>();
  const security::Principal& p = *caller.principal;
  // Reading V reachable rows through the indexes costs about V; scanning in key order until
  // `limit` rows pass costs about limit × N / V. Below the threshold the index shapes are bounded
  // and cheap; above it the scan finds its rows quickly. The count is kept with the principal (at
  // most SecurityCache::kMaxAgeSeconds), so it is read once per user and table.
  RowFilterShape shape = forced_shape.load(std::memory_order_relaxed);
  if (shape == RowFilterShape::kChosen) {
    const std::string key = table.logical_name + '/' + std::to_string(static_cast<int>(verb));
    std::optional<int64_t> reach = p.CachedReach(key);
    if (!reach) {
      ASSIGN_OR_RETURN(int64_t n, CountReach(conn, p, *a, table));
      p.CacheReach(key, n);
      reach = n;
    }
    shape = *reach > std::max<int64_t>(kFewRows, limit) ? RowFilterShape::kPerRow
            : filtered                                  ? RowFilterShape::kIndexOr
                                                        : RowFilterShape::kIdList;
  }
  return std::optional<std::string>(BuildRowFilter(p, *a, table, verb, alias, shape, &params));
}

uint8_t FieldRights(const CallerContext& caller, const Table& table, const catalog::Column& column) {
  constexpr uint8_t kAll = security::kFieldRead | security::kFieldCreate | security::kFieldUpdate;
  if (!column.is_secured || !caller.principal) return kAll;
  return caller.principal->FieldRights(table.logical_name, column.logical_name);
}

Status CheckField(const CallerContext& caller, const Table& table, const catalog::Column& column,
                  security::FieldRight right) {
  if (FieldRights(caller, table, column) & right) return Status::Ok();
  const std::string col = "'" + column.logical_name + "' of '" + table.logical_name + "'";
  switch (right) {
    case security::kFieldCreate:
      return Status(Code::kPermissionDenied,
                    "The user does not have create permissions to a secured field (" + col +
                        "). The requested operation could not be completed.",
                    err::kAttributePrivilegeCreateIsMissing);
    case security::kFieldUpdate:
      return Status(Code::kPermissionDenied,
                    "The user doesn't have AttributePrivilegeUpdate and not granted shared access for a secured "
                    "attribute during update operation (" +
                        col + ").",
                    err::kAttributePermissionUpdateIsMissingDuringUpdate);
    default:
      return Status(Code::kPermissionDenied,
                    "The user does not have read permissions to a secured field (" + col +
                        "). The requested operation could not be completed.",
                    err::kAttributePermissionReadIsMissing);
  }
}

bool ReachesOwner(const CallerContext& caller, const Table& table, Verb verb, const Guid& owner,
                  const Guid& owning_bu) {
  if (!caller.principal || !RowScoped(table)) return true;
  const security::Principal& p = *caller.principal;
  const security::TableAccess& a = p.Access(table.schema_name, verb);
  if (!a.held) return false;
  if (a.global) return true;
  if (owner == p.user_id || std::binary_search(p.teams.begin(), p.teams.end(), owner)) return true;
  return std::binary_search(a.business_units.begin(), a.business_units.end(), owning_bu);
}

}  // namespace tributary::data
