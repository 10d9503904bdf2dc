#pragma once
// Record-level security in the organization service (platform.md §2.5): the privilege check,
// then the row access check, both from the caller's security::Principal. For queries the row
// check is an SQL condition on the queried alias, so paging, counts and joins see only the rows
// the caller may read. A caller without a principal is the platform itself and passes.

#include <optional>
#include <string>
#include <string_view>

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
