#pragma once
// The Dataverse query functions of $filter that need more than the column and its literals: the
// relative and fiscal date functions (LastXDays, ThisWeek, InFiscalPeriodAndYear, …), which are
// ranges around "now", and the user/team functions (EqualUserTeams, EqualUserOrUserTeams,
// EqualUserLanguage). Private to the data layer; the binder in filter_sql.cpp calls these.
//
// Time rules (Dataverse evaluates in the user's time zone; Tributary has no user time zone yet,
// so every boundary is computed in UTC):
//   - days start at 00:00 UTC; weeks start on Sunday; months and years are calendar ones;
//   - fiscal settings are Dataverse's defaults: the fiscal year is the calendar year starting on
//     1 January and the fiscal period is the quarter (Q1 = January–March);
//   - a DateOnly value counts as 00:00 UTC of its day (how Dataverse stores date-only values).
// The rule of each function is written beside it in query_functions.cpp.

#include <optional>
#include <string_view>

#include "tributary/base/time.h"
#include "tributary/catalog/catalog.h"
#include "tributary/data/query.h"
#include "tributary/data/service.h"

namespace tributary::data {

// A range of instants in milliseconds since the epoch (UTC). A missing bound is open. The value
// matches when from <= value and value < to (value <= to when to_inclusive); with `outside`
// (NotOn) it matches when it is a non-null value that is not in the range.
struct DateRange {
  std::optional<int64_t> from_ms;
  std::optional<int64_t> to_ms;
  bool to_inclusive = false;
  bool outside = false;
};

// True for the names of the date query functions (without namespace): "Today", "LastXDays", ….
bool IsDateQueryFunction(std::string_view name);
// True for EqualUserTeams, EqualUserOrUserTeams and EqualUserLanguage.
bool IsUserQueryFunction(std::string_view name);
// True for the functions that need hierarchical relationships or hierarchy security (Above,
// Under, EqualUserOrUserHierarchy, …), which Tributary does not support.
bool IsHierarchyQueryFunction(std::string_view name);

// The range a date function selects at `now`, from the function's parameters (PropertyValue,
// PropertyValue1/PropertyValue2). QueryError naming the function and the parameter when a value
// is missing or of the wrong type.
Result<DateRange> EvaluateDateFunction(const Expr& e, Timestamp now);

// Appends the SQL condition of date function `e` on `col` (SQL expression `col_sql`), with the
// bounds bound as parameters in the column's storage form (milliseconds, or days for DateOnly).
// QueryError when `col` is not a date and time column.
Status AppendDateFunctionSql(const Expr& e, const catalog::Column& col, std::string_view col_sql, Timestamp now,
                             SqlFragment& out);

// Appends the SQL condition of a user/team function on `col`. EqualUserTeams: the value is one of
// the teams the calling user is a member of (teammembership); EqualUserOrUserTeams: the user or
// one of those teams; EqualUserLanguage: the user's language, which is always 1033 (English)
// because Tributary keeps no per-user language setting.
Status AppendUserFunctionSql(const catalog::Catalog& cat, const Expr& e, const catalog::Column& col,
                             std::string_view col_sql, const CallerContext* caller, SqlFragment& out);

}  // namespace tributary::data
