// The Dataverse date/time and user/team query functions of $filter (and of FetchXML conditions,
// whose operators map onto them): each date function becomes a range of instants around "now",
// bound as SQL parameters in the column's storage form. See query_functions.h for the UTC, week
// and fiscal rules.

#include "query_functions.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <limits>

#include "sql_schema.h"

namespace tributary::data {

using catalog::Column;
using catalog::ColumnType;

namespace {

constexpr int64_t kMsPerMinute = 60'000;
constexpr int64_t kMsPerHour = 3'600'000;
constexpr int64_t kMsPerDay = 86'400'000;
// Dataverse has no per-user language in Tributary: every user reads English (United States).
constexpr int64_t kUserLanguage = 1033;

enum class Fn : uint8_t {
  kToday,
  kYesterday,
  kTomorrow,
  kLast7Days,
  kNext7Days,
  kLastWeek,
  kThisWeek,
  kNextWeek,
  kLastMonth,
  kThisMonth,
  kNextMonth,
  kLastYear,
  kThisYear,
  kNextYear,
  kLastXHours,
  kNextXHours,
  kLastXDays,
  kNextXDays,
  kLastXWeeks,
  kNextXWeeks,
  kLastXMonths,
  kNextXMonths,
  kLastXYears,
  kNextXYears,
  kOlderThanXMinutes,
  kOlderThanXHours,
  kOlderThanXDays,
  kOlderThanXWeeks,
  kOlderThanXMonths,
  kOlderThanXYears,
  kOn,
  kNotOn,
  kOnOrAfter,
  kOnOrBefore,
  kThisFiscalYear,
  kThisFiscalPeriod,
  kNextFiscalYear,
  kNextFiscalPeriod,
  kLastFiscalYear,
  kLastFiscalPeriod,
  kLastXFiscalYears,
  kLastXFiscalPeriods,
  kNextXFiscalYears,
  kNextXFiscalPeriods,
  kInFiscalYear,
  kInFiscalPeriod,
  kInFiscalPeriodAndYear,
  kInOrBeforeFiscalPeriodAndYear,
  kInOrAfterFiscalPeriodAndYear,
};

struct FnName {
  std::string_view name;
  Fn fn;
};

constexpr std::array kDateFunctions = {
    FnName{"Today", Fn::kToday},
    FnName{"Yesterday", Fn::kYesterday},
    FnName{"Tomorrow", Fn::kTomorrow},
    FnName{"Last7Days", Fn::kLast7Days},
    FnName{"Next7Days", Fn::kNext7Days},
    FnName{"LastWeek", Fn::kLastWeek},
    FnName{"ThisWeek", Fn::kThisWeek},
    FnName{"NextWeek", Fn::kNextWeek},
    FnName{"LastMonth", Fn::kLastMonth},
    FnName{"ThisMonth", Fn::kThisMonth},
    FnName{"NextMonth", Fn::kNextMonth},
    FnName{"LastYear", Fn::kLastYear},
    FnName{"ThisYear", Fn::kThisYear},
    FnName{"NextYear", Fn::kNextYear},
    FnName{"LastXHours", Fn::kLastXHours},
    FnName{"NextXHours", Fn::kNextXHours},
    FnName{"LastXDays", Fn::kLastXDays},
    FnName{"NextXDays", Fn::kNextXDays},
    FnName{"LastXWeeks", Fn::kLastXWeeks},
    FnName{"NextXWeeks", Fn::kNextXWeeks},
    FnName{"LastXMonths", Fn::kLastXMonths},
    FnName{"NextXMonths", Fn::kNextXMonths},
    FnName{"LastXYears", Fn::kLastXYears},
    FnName{"NextXYears", Fn::kNextXYears},
    FnName{"OlderThanXMinutes", Fn::kOlderThanXMinutes},
    FnName{"OlderThanXHours", Fn::kOlderThanXHours},
    FnName{"OlderThanXDays", Fn::kOlderThanXDays},
    FnName{"OlderThanXWeeks", Fn::kOlderThanXWeeks},
    FnName{"OlderThanXMonths", Fn::kOlderThanXMonths},
    FnName{"OlderThanXYears", Fn::kOlderThanXYears},
    FnName{"On", Fn::kOn},
    FnName{"NotOn", Fn::kNotOn},
    FnName{"OnOrAfter", Fn::kOnOrAfter},
    FnName{"OnOrBefore", Fn::kOnOrBefore},
    FnName{"ThisFiscalYear", Fn::kThisFiscalYear},
    FnName{"ThisFiscalPeriod", Fn::kThisFiscalPeriod},
    FnName{"NextFiscalYear", Fn::kNextFiscalYear},
    FnName{"NextFiscalPeriod", Fn::kNextFiscalPeriod},
    FnName{"LastFiscalYear", Fn::kLastFiscalYear},
    FnName{"LastFiscalPeriod", Fn::kLastFiscalPeriod},
    FnName{"LastXFiscalYears", Fn::kLastXFiscalYears},
    FnName{"LastXFiscalPeriods", Fn::kLastXFiscalPeriods},
    FnName{"NextXFiscalYears", Fn::kNextXFiscalYears},
    FnName{"NextXFiscalPeriods", Fn::kNextXFiscalPeriods},
    FnName{"InFiscalYear", Fn::kInFiscalYear},
    FnName{"InFiscalPeriod", Fn::kInFiscalPeriod},
    FnName{"InFiscalPeriodAndYear", Fn::kInFiscalPeriodAndYear},
    FnName{"InOrBeforeFiscalPeriodAndYear", Fn::kInOrBeforeFiscalPeriodAndYear},
    FnName{"InOrAfterFiscalPeriodAndYear", Fn::kInOrAfterFiscalPeriodAndYear},
};

std::optional<Fn> FindDateFunction(std::string_view name) {
  for (const auto& f : kDateFunctions)
    if (f.name == name) return f.fn;
  return std::nullopt;
}

// ---- Calendar arithmetic on day numbers (days since 1970-01-01, UTC) ----

int64_t FloorDiv(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }
int64_t CeilDiv(int64_t a, int64_t b) { return -FloorDiv(-a, b); }


// Months counted from year 0: y * 12 + (m - 1).
int64_t MonthIndex(int64_t day) {
  Civil c = CivilFromDays(day);
  return c.y * 12 + (c.m - 1);
}
int64_t MonthStart(int64_t month_index) {
  int64_t y = FloorDiv(month_index, 12);
  return DaysFromCivil(y, static_cast<unsigned>(month_index - y * 12 + 1), 1);
}
// The same day of the month `months` months away, clamped to the last day of a shorter month
// (31 March - 1 month = 28/29 February), as .NET's DateTime.AddMonths and SQL's DATEADD do.
int64_t AddMonths(int64_t day, int64_t months) {
  Civil c = CivilFromDays(day);
  int64_t idx = c.y * 12 + (c.m - 1) + months;
  int64_t y = FloorDiv(idx, 12);
  auto m = static_cast<unsigned>(idx - y * 12 + 1);
  return DaysFromCivil(y, m, std::min(c.d, DaysInMonth(y, m)));
}
// Fiscal periods are quarters counted from year 0: y * 4 + (quarter - 1).
int64_t QuarterIndex(int64_t day) { return FloorDiv(MonthIndex(day), 3); }
int64_t QuarterStart(int64_t quarter_index) { return MonthStart(quarter_index * 3); }
int64_t YearStart(int64_t y) { return DaysFromCivil(y, 1, 1); }

// 00:00 of a day in milliseconds; saturates far outside any stored date so that a huge X
// (LastXYears(2000000000)) cannot overflow.
int64_t DayMs(int64_t day) {
  constexpr int64_t kLimit = 100'000'000'000;  // ~273 million years
  return std::clamp(day, -kLimit, kLimit) * kMsPerDay;
}

// ---- Parameters ----

std::string FnLabel(const Expr& e) { return "'Microsoft.Dynamics.CRM." + e.name + "'"; }

const Expr::Param* FindParam(const Expr& e, std::string_view name) {
  for (const auto& p : e.params)
    if (p.name == name) return &p;
  return nullptr;
}

Status BadParam(const Expr& e, std::string_view param, std::string_view what, const Literal* lit = nullptr) {
  std::string m = "The parameter '" + std::string(param) + "' of the query function " + FnLabel(e) + " must be " +
                  std::string(what);
  if (lit) m += lit->kind == Literal::Kind::kNull ? "; it is null" : "; '" + lit->text + "' is not";
  return QueryError(m + ".");
}

// The single literal of parameter `name`: QueryError when missing, an array, or null.
Result<const Literal*> OneLiteral(const Expr& e, std::string_view name, std::string_view what) {
  const Expr::Param* p = FindParam(e, name);
  if (!p) return QueryError("The query function " + FnLabel(e) + " needs the parameter '" + std::string(name) + "'.");
  if (p->is_array || p->values.size() != 1) return BadParam(e, name, std::string(what) + ", not a list");
  if (p->values[0].kind == Literal::Kind::kNull) return BadParam(e, name, what, &p->values[0]);
  return &p->values[0];
}

// An integer in [lo, hi], written as an integer literal or as the text of one ('3'): FetchXML
// gives the text of its <value>.
Result<int64_t> IntFromLiteral(const Expr& e, std::string_view name, const Literal& lit, int64_t lo, int64_t hi,
                               std::string_view what) {
  if (lit.kind != Literal::Kind::kInteger && lit.kind != Literal::Kind::kString) return BadParam(e, name, what, &lit);
  int64_t v = 0;
  const char* end = lit.text.data() + lit.text.size();
  auto r = std::from_chars(lit.text.data(), end, v);
  if (r.ec != std::errc() || r.ptr != end || v < lo || v > hi) return BadParam(e, name, what, &lit);
  return v;
}

Result<int64_t> IntParam(const Expr& e, std::string_view name, int64_t lo, int64_t hi, std::string_view what) {
  ASSIGN_OR_RETURN(const Literal* lit, OneLiteral(e, name, what));
  return IntFromLiteral(e, name, *lit, lo, hi, what);
}

// X of the LastX…/NextX…/OlderThanX… functions: Dataverse's X is an Int32.
constexpr std::string_view kXWhat = "a non-negative integer no larger than 2147483647";
Result<int64_t> XParam(const Expr& e) {
  return IntParam(e, "PropertyValue", 0, std::numeric_limits<int32_t>::max(), kXWhat);
}

constexpr std::string_view kYearWhat = "a year between 1 and 9999";
constexpr std::string_view kPeriodWhat = "a fiscal period between 1 and 4 (fiscal periods are quarters)";

// The day of the On/NotOn/OnOrAfter/OnOrBefore value: a date ('2023-04-07', 2023-04-07) or a
// date and time, whose UTC day counts.
Result<int64_t> DayParam(const Expr& e) {
  constexpr std::string_view kWhat = "a date such as 2023-04-07";
  ASSIGN_OR_RETURN(const Literal* lit, OneLiteral(e, "PropertyValue", kWhat));
  using K = Literal::Kind;
  if (lit->kind != K::kDate && lit->kind != K::kDateTime && lit->kind != K::kString)
    return BadParam(e, "PropertyValue", kWhat, lit);
  auto t = ParseTimestamp(lit->text);
  if (!t) return BadParam(e, "PropertyValue", kWhat, lit);
  return FloorDiv(t->ms, kMsPerDay);
}

// Period and year of InFiscalPeriodAndYear and its InOrBefore/InOrAfter twins: PropertyValue1 is
// the period and PropertyValue2 the year, as in Dataverse; PropertyValues=[period,year] is also
// accepted (the order of FetchXML's two <value> elements). Answers the quarter index.
Result<int64_t> PeriodAndYearParams(const Expr& e) {
  int64_t period = 0, year = 0;
  if (!FindParam(e, "PropertyValue1") && !FindParam(e, "PropertyValue2")) {
    if (const Expr::Param* pv = FindParam(e, "PropertyValues")) {
      if (pv->values.size() != 2) return BadParam(e, "PropertyValues", "a list of a fiscal period and a year");
      ASSIGN_OR_RETURN(period, IntFromLiteral(e, "PropertyValues", pv->values[0], 1, 4, kPeriodWhat));
      ASSIGN_OR_RETURN(year, IntFromLiteral(e, "PropertyValues", pv->values[1], 1, 9999, kYearWhat));
      return year * 4 + (period - 1);
    }
  }
  ASSIGN_OR_RETURN(period, IntParam(e, "PropertyValue1", 1, 4, kPeriodWhat));
  ASSIGN_OR_RETURN(year, IntParam(e, "PropertyValue2", 1, 9999, kYearWhat));
  return year * 4 + (period - 1);
}

// [from, to) in days.
DateRange Days(int64_t from_day, int64_t to_day) { return DateRange{DayMs(from_day), DayMs(to_day), false, false}; }

bool IsGuidValued(const Column& c) {
  return c.type == ColumnType::kUniqueIdentifier || c.type == ColumnType::kLookup || c.type == ColumnType::kCustomer ||
         c.type == ColumnType::kOwner;
}

}  // namespace

bool IsDateQueryFunction(std::string_view name) { return FindDateFunction(name).has_value(); }

bool IsUserQueryFunction(std::string_view name) {
  return name == "EqualUserTeams" || name == "EqualUserOrUserTeams" || name == "EqualUserLanguage";
}

bool IsHierarchyQueryFunction(std::string_view name) {
  return name == "Above" || name == "AboveOrEqual" || name == "Under" || name == "UnderOrEqual" || name == "NotUnder" ||
         name == "EqualUserOrUserHierarchy" || name == "EqualUserOrUserHierarchyAndTeams";
}

Result<DateRange> EvaluateDateFunction(const Expr& e, Timestamp now) {
  std::optional<Fn> fn = FindDateFunction(e.name);
  if (!fn) return QueryError("The query function " + FnLabel(e) + " is not a date function.");
  const int64_t n = now.ms;
  const int64_t today = FloorDiv(n, kMsPerDay);
  // Sunday starts the week: day 0 (1970-01-01) was a Thursday.
  const int64_t week_start = today - (today + 4 - FloorDiv(today + 4, 7) * 7);
  const int64_t month = MonthIndex(today);
  const int64_t year = CivilFromDays(today).y;
  const int64_t quarter = QuarterIndex(today);
  // "From a day's start up to now" and "from now up to a day's start", both ends included at now.
  auto up_to_now = [&](int64_t from_ms) { return DateRange{from_ms, n, true, false}; };
  auto from_now = [&](int64_t to_ms, bool inclusive = false) { return DateRange{n, to_ms, inclusive, false}; };
  auto before = [](int64_t to_ms) { return DateRange{std::nullopt, to_ms, false, false}; };

  switch (*fn) {
    // Whole days.
    case Fn::kToday:
      return Days(today, today + 1);
    case Fn::kYesterday:
      return Days(today - 1, today);
    case Fn::kTomorrow:
      return Days(today + 1, today + 2);
    // Calendar weeks (Sunday to Saturday), months and years.
    case Fn::kLastWeek:
      return Days(week_start - 7, week_start);
    case Fn::kThisWeek:
      return Days(week_start, week_start + 7);
    case Fn::kNextWeek:
      return Days(week_start + 7, week_start + 14);
    case Fn::kLastMonth:
      return Days(MonthStart(month - 1), MonthStart(month));
    case Fn::kThisMonth:
      return Days(MonthStart(month), MonthStart(month + 1));
    case Fn::kNextMonth:
      return Days(MonthStart(month + 1), MonthStart(month + 2));
    case Fn::kLastYear:
      return Days(YearStart(year - 1), YearStart(year));
    case Fn::kThisYear:
      return Days(YearStart(year), YearStart(year + 1));
    case Fn::kNextYear:
      return Days(YearStart(year + 1), YearStart(year + 2));
    // LastX…: from 00:00 of the day X units before today up to now (hours: from now - X hours);
    // today counts, the rest of today does not. Last7Days = LastXDays(7).
    // NextX…: from now up to the end of the day X units after today (hours: up to now + X hours).
    // Next7Days = NextXDays(7).
    case Fn::kLast7Days:
      return up_to_now(DayMs(today - 7));
    case Fn::kNext7Days:
      return from_now(DayMs(today + 8));
    case Fn::kLastXHours: {
      ASSIGN_OR_RETURN(int64_t x, XParam(e));
      return up_to_now(n - x * kMsPerHour);
    }
    case Fn::kNextXHours: {
      ASSIGN_OR_RETURN(int64_t x, XParam(e));
      return from_now(n + x * kMsPerHour, true);
    }
    case Fn::kLastXDays: {
      ASSIGN_OR_RETURN(int64_t x, XParam(e));
      return up_to_now(DayMs(today - x));
    }
    case Fn::kNextXDays: {
      ASSIGN_OR_RETURN(int64_t x, XParam(e));
      return from_now(DayMs(today + x + 1));
    }
    case Fn::kLastXWeeks: {
      ASSIGN_OR_RETURN(int64_t x, XParam(e));
      return up_to_now(DayMs(today - 7 * x));
    }
    case Fn::kNextXWeeks: {
      ASSIGN_OR_RETURN(int64_t x, XParam(e));
      return from_now(DayMs(today + 7 * x + 1));
    }
    case Fn::kLastXMonths: {
      ASSIGN_OR_RETURN(int64_t x, XParam(e));
      return up_to_now(DayMs(AddMonths(today, -x)));
    }
    case Fn::kNextXMonths: {
      ASSIGN_OR_RETURN(int64_t x, XParam(e));
      return from_now(DayMs(AddMonths(today, x) + 1));
    }
    case Fn::kLastXYears: {
      ASSIGN_OR_RETURN(int64_t x, XParam(e));
      return up_to_now(DayMs(AddMonths(today, -12 * x)));
    }
    case Fn::kNextXYears: {
      ASSIGN_OR_RETURN(int64_t x, XParam(e));
      return from_now(DayMs(AddMonths(today, 12 * x) + 1));
    }
    // OlderThanX…: before now - X minutes/hours; for days and longer units, before 00:00 of the
    // day X units before today, so that OlderThanXDays(X) and LastXDays(X) split the past exactly.
    case Fn::kOlderThanXMinutes: {
      ASSIGN_OR_RETURN(int64_t x, XParam(e));
      return before(n - x * kMsPerMinute);
    }
    case Fn::kOlderThanXHours: {
      ASSIGN_OR_RETURN(int64_t x, XParam(e));
      return before(n - x * kMsPerHour);
    }
    case Fn::kOlderThanXDays: {
      ASSIGN_OR_RETURN(int64_t x, XParam(e));
      return before(DayMs(today - x));
    }
    case Fn::kOlderThanXWeeks: {
      ASSIGN_OR_RETURN(int64_t x, XParam(e));
      return before(DayMs(today - 7 * x));
    }
    case Fn::kOlderThanXMonths: {
      ASSIGN_OR_RETURN(int64_t x, XParam(e));
      return before(DayMs(AddMonths(today, -x)));
    }
    case Fn::kOlderThanXYears: {
      ASSIGN_OR_RETURN(int64_t x, XParam(e));
      return before(DayMs(AddMonths(today, -12 * x)));
    }
    // On: the whole day; NotOn: any other instant (null never matches); OnOrAfter: from the day's
    // start; OnOrBefore: up to the day's end.
    case Fn::kOn: {
      ASSIGN_OR_RETURN(int64_t d, DayParam(e));
      return Days(d, d + 1);
    }
    case Fn::kNotOn: {
      ASSIGN_OR_RETURN(int64_t d, DayParam(e));
      DateRange r = Days(d, d + 1);
      r.outside = true;
      return r;
    }
    case Fn::kOnOrAfter: {
      ASSIGN_OR_RETURN(int64_t d, DayParam(e));
      return DateRange{DayMs(d), std::nullopt, false, false};
    }
    case Fn::kOnOrBefore: {
      ASSIGN_OR_RETURN(int64_t d, DayParam(e));
      return before(DayMs(d + 1));
    }
    // Fiscal years are calendar years, fiscal periods are quarters (Dataverse's defaults).
    // LastX…/NextX… count whole fiscal years/periods before/after the current one, which is not
    // included. InFiscalPeriod is the given period of the current fiscal year.
    case Fn::kThisFiscalYear:
      return Days(YearStart(year), YearStart(year + 1));
    case Fn::kLastFiscalYear:
      return Days(YearStart(year - 1), YearStart(year));
    case Fn::kNextFiscalYear:
      return Days(YearStart(year + 1), YearStart(year + 2));
    case Fn::kThisFiscalPeriod:
      return Days(QuarterStart(quarter), QuarterStart(quarter + 1));
    case Fn::kLastFiscalPeriod:
      return Days(QuarterStart(quarter - 1), QuarterStart(quarter));
    case Fn::kNextFiscalPeriod:
      return Days(QuarterStart(quarter + 1), QuarterStart(quarter + 2));
    case Fn::kLastXFiscalYears: {
      ASSIGN_OR_RETURN(int64_t x, XParam(e));
      return Days(YearStart(year - x), YearStart(year));
    }
    case Fn::kNextXFiscalYears: {
      ASSIGN_OR_RETURN(int64_t x, XParam(e));
      return Days(YearStart(year + 1), YearStart(year + 1 + x));
    }
    case Fn::kLastXFiscalPeriods: {
      ASSIGN_OR_RETURN(int64_t x, XParam(e));
      return Days(QuarterStart(quarter - x), QuarterStart(quarter));
    }
    case Fn::kNextXFiscalPeriods: {
      ASSIGN_OR_RETURN(int64_t x, XParam(e));
      return Days(QuarterStart(quarter + 1), QuarterStart(quarter + 1 + x));
    }
    case Fn::kInFiscalYear: {
      ASSIGN_OR_RETURN(int64_t y, IntParam(e, "PropertyValue", 1, 9999, kYearWhat));
      return Days(YearStart(y), YearStart(y + 1));
    }
    case Fn::kInFiscalPeriod: {
      ASSIGN_OR_RETURN(int64_t p, IntParam(e, "PropertyValue", 1, 4, kPeriodWhat));
      int64_t q = year * 4 + (p - 1);
      return Days(QuarterStart(q), QuarterStart(q + 1));
    }
    case Fn::kInFiscalPeriodAndYear: {
      ASSIGN_OR_RETURN(int64_t q, PeriodAndYearParams(e));
      return Days(QuarterStart(q), QuarterStart(q + 1));
    }
    case Fn::kInOrBeforeFiscalPeriodAndYear: {
      ASSIGN_OR_RETURN(int64_t q, PeriodAndYearParams(e));
      return before(DayMs(QuarterStart(q + 1)));
    }
    case Fn::kInOrAfterFiscalPeriodAndYear: {
      ASSIGN_OR_RETURN(int64_t q, PeriodAndYearParams(e));
      return DateRange{DayMs(QuarterStart(q)), std::nullopt, false, false};
    }
  }
  return QueryError("The query function " + FnLabel(e) + " is not supported.");
}

Status AppendDateFunctionSql(const Expr& e, const Column& col, std::string_view col_sql, Timestamp now,
                             SqlFragment& out) {
  if (col.type != ColumnType::kDateTime)
    return QueryError("The query function " + FnLabel(e) + " can only be used on a date and time column; '" +
                      col.logical_name + "' is not one.");
  ASSIGN_OR_RETURN(DateRange r, EvaluateDateFunction(e, now));
  // DateTime columns hold milliseconds; DateOnly columns hold days, and the day d stands for the
  // instant d 00:00, so "value >= from" is "d >= ceil(from)" and "value < to" is "d < ceil(to)".
  const bool date_only = col.behavior == catalog::DateBehavior::kDateOnly;
  std::string c(col_sql);
  std::string cond;
  auto bound = [&](int64_t ms, bool upper_inclusive) -> int64_t {
    if (!date_only) return ms;
    return upper_inclusive ? FloorDiv(ms, kMsPerDay) : CeilDiv(ms, kMsPerDay);
  };
  if (r.from_ms) {
    cond += c + " >= ?";
    out.params.push_back(bound(*r.from_ms, false));
  }
  if (r.to_ms) {
    if (!cond.empty()) cond += " AND ";
    cond += c + (r.to_inclusive ? " <= ?" : " < ?");
    out.params.push_back(bound(*r.to_ms, r.to_inclusive));
  }
  out.sql += r.outside ? "(" + c + " IS NOT NULL AND NOT (" + cond + "))" : "(" + cond + ")";
  return Status::Ok();
}

Status AppendUserFunctionSql(const catalog::Catalog& cat, const Expr& e, const Column& col, std::string_view col_sql,
                             const CallerContext* caller, SqlFragment& out) {
  std::string c(col_sql);
  if (e.name == "EqualUserLanguage") {
    if (col.type != ColumnType::kInteger && col.type != ColumnType::kBigInt && col.type != ColumnType::kChoice)
      return QueryError("The query function " + FnLabel(e) + " can only be used on a whole number or choice column; '" +
                        col.logical_name + "' is not one.");
    out.sql += "(" + c + " = ?)";
    out.params.push_back(kUserLanguage);
    return Status::Ok();
  }
  if (!caller) return QueryError("The query function " + FnLabel(e) + " needs a calling user.");
  if (!IsGuidValued(col))
    return QueryError("The query function " + FnLabel(e) +
                      " can only be used on an owner, lookup or unique identifier column; '" + col.logical_name +
                      "' is not one.");
  const catalog::Table* tm = cat.FindTable("teammembership");
  const Column* user_col = tm ? tm->FindColumn("systemuserid") : nullptr;
  const Column* team_col = tm ? tm->FindColumn("teamid") : nullptr;
  if (!user_col || !team_col)
    return QueryError("The query function " + FnLabel(e) + " needs the teammembership table, which is missing.");
  std::string user_id = caller->user_id.ToString();
  std::string teams = c + " IN (SELECT qf_tm." + Q(team_col->sql_name) + " FROM " + Q(tm->sql_table) +
                      " qf_tm WHERE qf_tm." + Q(user_col->sql_name) + " = ?)";
  if (e.name == "EqualUserTeams") {
    out.sql += "(" + teams + ")";
    out.params.push_back(user_id);
  } else {
    out.sql += "(" + c + " = ? OR " + teams + ")";
    out.params.push_back(user_id);
    out.params.push_back(user_id);
  }
  return Status::Ok();
}

}  // namespace tributary::data
