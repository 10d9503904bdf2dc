#pragma once
// Record-level security in the organization service (platform.md §2.5): the privilege check,
// then the row access check, both from the caller's security::Principal. For queries the row
// check is an SQL condition on the queried alias, so paging, counts and joins see only the rows
// the caller may read. A caller without a principal is the platform itself and passes.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tributary/data/service.h"

namespace tributary::data {

using security::Verb;

// 403 PrivilegeDenied (0x80040220), naming the missing prv<Verb><Table>.
Status PrivilegeDenied(const CallerContext& caller, const catalog::Table& table, Verb verb);
// 403 (0x80048306): the caller holds the privilege but not on this record.
Status RecordAccessDenied(const CallerContext& caller, const catalog::Table& table, Verb verb, const Guid& id);

// The privilege check: OK, or PrivilegeDenied.
Status CheckPrivilege(const CallerContext& caller, const catalog::Table& table, Verb verb);

// The row condition for `verb` on `table` under `alias` ("t0"), or nullopt when every row passes
// (no principal, Organization depth, or a table without owners). PrivilegeDenied when the caller
// does not hold the privilege at all. The text has no parameters (ids are written as literals),
// so it can go anywhere in a statement.
Result<std::optional<std::string>> RowFilter(const CallerContext& caller, const catalog::Table& table, Verb verb,
                                             std::string_view alias);
// The same condition with the ids as `?` parameters, appended to `params` now: the text must go
// into the statement where its parameters come next (e.g. at the end of a WHERE whose parameters
// are `params`). The text is then the same for every caller with as many teams and business
// units, so prepared statements are shared between users. Use this form wherever that holds;
// the literal form above is for conditions built into reusable expressions (navigation
// subqueries in $filter and $orderby).
Result<std::optional<std::string>> RowFilter(const CallerContext& caller, const catalog::Table& table, Verb verb,
                                             std::string_view alias, std::vector<storage::SqlValue>& params);

// RowFilter for the rows of a collection query (a list, a page of a related collection, $count,
// a FetchXML root entity) that returns up to `limit` rows: the same rows, in the shape SQLite
// answers fastest for this caller. When the caller reaches many rows, the table is read in key
// order and rows are checked one by one (kPerRow), which stops early because most rows pass.
// When they reach few (at most max(kFewRows, limit), counted once per principal and table on
// `conn`), the condition is answered from the owner, business-unit and share indexes: for a
// query with conditions of its own (`filtered`) as an OR of index look-ups SQLite can weigh
// against the indexes of those conditions (kIndexOr), otherwise as the list of reachable ids,
// read in key order so that only the returned rows are read and nothing is sorted (kIdList).
inline constexpr int64_t kFewRows = 2000;
inline constexpr int64_t kReachProbeCap = 5001;  // the largest page (5,000) + 1
enum class RowFilterShape : uint8_t { kChosen, kPerRow, kIndexOr, kIdList };
// For tests: makes every CollectionRowFilter use `shape` (kChosen: by the caller's reach) while
// it lives. Not for concurrent use with other instances.
class ScopedRowFilterShape {
 public:
  explicit ScopedRowFilterShape(RowFilterShape shape);
  ~ScopedRowFilterShape();
  ScopedRowFilterShape(const ScopedRowFilterShape&) = delete;
  ScopedRowFilterShape& operator=(const ScopedRowFilterShape&) = delete;

 private:
  RowFilterShape previous_;
};
// Its ids are parameters, as in the second RowFilter.
Result<std::optional<std::string>> CollectionRowFilter(storage::Connection& conn, const CallerContext& caller,
                                                       const catalog::Table& table, Verb verb, std::string_view alias,
                                                       int64_t limit, bool filtered,
                                                       std::vector<storage::SqlValue>& params);

// Column (field) security: the caller's rights (security::FieldRight bits) on a column; all of
// them for a column that is not secured, for the platform and for System Administrators.
uint8_t FieldRights(const CallerContext& caller, const catalog::Table& table, const catalog::Column& column);
// 403 AttributePermissionReadIsMissing / AttributePrivilegeCreateIsMissing /
// AttributePermissionUpdateIsMissingDuringUpdate unless the caller has `right` on the column.
Status CheckField(const CallerContext& caller, const catalog::Table& table, const catalog::Column& column,
                  security::FieldRight right);

// Whether the caller reaches a row owned by `owner` in business unit `owning_bu` for `verb`,
// ignoring shares (used for rows being created or assigned, which have no shares yet).
bool ReachesOwner(const CallerContext& caller, const catalog::Table& table, Verb verb, const Guid& owner,
                  const Guid& owning_bu);

}  // namespace tributary::data
