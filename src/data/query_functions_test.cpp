// Unit tests of the Dataverse date/time and user/team query functions (query_functions.h): the
// ranges each date function selects at an injected "now" (day, week, month, year and fiscal
// boundaries, leap years), and the rows they select through the organization service on DateTime
// and DateOnly columns, plus the user/team functions and the errors for bad input.

#include "query_functions.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <future>

#include "tributary/data/environment.h"

namespace tributary::data {
namespace {

namespace fs = std::filesystem;

Timestamp At(std::string_view text) {
  auto t = ParseTimestamp(text);
  EXPECT_TRUE(t.has_value()) << text;
  return t.value_or(Timestamp{});
}
int64_t Ms(std::string_view text) { return At(text).ms; }

Literal Int(int64_t v) { return Literal{Literal::Kind::kInteger, std::to_string(v)}; }
Literal Str(std::string s) { return Literal{Literal::Kind::kString, std::move(s)}; }
Literal DateLit(std::string s) { return Literal{Literal::Kind::kDate, std::move(s)}; }

// Microsoft.Dynamics.CRM.<name>(PropertyName='<column>', <params>…)
ExprPtr Fn(std::string name, std::string column, std::vector<Expr::Param> params = {}) {
  auto e = std::make_unique<Expr>();
  e->kind = Expr::Kind::kQueryFunction;
  e->name = std::move(name);
  e->params.push_back(Expr::Param{"PropertyName", {Str(std::move(column))}, false});
  for (auto& p : params) e->params.push_back(std::move(p));
  return e;
}
Expr::Param P(std::string name, Literal v) { return Expr::Param{std::move(name), {std::move(v)}, false}; }
ExprPtr FnX(std::string name, std::string column, int64_t x) {
  return Fn(std::move(name), std::move(column), {P("PropertyValue", Int(x))});
}

// The range of `e` at `now`, printed as "[from, to)" / "[from, to]" with ISO date-times.
std::string Range(const Expr& e, Timestamp now) {
  auto r = EvaluateDateFunction(e, now);
  if (!r.ok()) return "ERROR: " + r.status().message();
  std::string s = r->outside ? "not " : "";
  s += r->from_ms ? "[" + FormatTimestamp(Timestamp{*r->from_ms}) : "(-inf";
  s += ", ";
  s += r->to_ms ? FormatTimestamp(Timestamp{*r->to_ms}) + (r->to_inclusive ? "]" : ")") : "+inf)";
  return s;
}
std::string Range(const ExprPtr& e, std::string_view now) { return Range(*e, At(now)); }

// ---- Ranges ----

TEST(DateRangeTest, WholeDaysAroundNow) {
  const char* now = "2024-02-29T15:30:00Z";  // a leap day, a Thursday
  EXPECT_EQ(Range(Fn("Today", "createdon"), now), "[2024-02-29T00:00:00Z, 2024-03-01T00:00:00Z)");
  EXPECT_EQ(Range(Fn("Yesterday", "createdon"), now), "[2024-02-28T00:00:00Z, 2024-02-29T00:00:00Z)");
  EXPECT_EQ(Range(Fn("Tomorrow", "createdon"), now), "[2024-03-01T00:00:00Z, 2024-03-02T00:00:00Z)");
  // Year rollover.
  EXPECT_EQ(Range(Fn("Tomorrow", "createdon"), "2023-12-31T23:59:59.999Z"),
            "[2024-01-01T00:00:00Z, 2024-01-02T00:00:00Z)");
  EXPECT_EQ(Range(Fn("Yesterday", "createdon"), "2024-01-01T00:00:00Z"),
            "[2023-12-31T00:00:00Z, 2024-01-01T00:00:00Z)");
}

TEST(DateRangeTest, WeeksStartOnSunday) {
  // Thursday 29 February 2024: the week is Sunday 25 February to Saturday 2 March.
  EXPECT_EQ(Range(Fn("ThisWeek", "createdon"), "2024-02-29T15:30:00Z"), "[2024-02-25T00:00:00Z, 2024-03-03T00:00:00Z)");
  EXPECT_EQ(Range(Fn("LastWeek", "createdon"), "2024-02-29T15:30:00Z"), "[2024-02-18T00:00:00Z, 2024-02-25T00:00:00Z)");
  EXPECT_EQ(Range(Fn("NextWeek", "createdon"), "2024-02-29T15:30:00Z"), "[2024-03-03T00:00:00Z, 2024-03-10T00:00:00Z)");
  // A Sunday starts its own week; the Saturday before ends the previous one.
  EXPECT_EQ(Range(Fn("ThisWeek", "createdon"), "2023-12-31T00:00:00Z"), "[2023-12-31T00:00:00Z, 2024-01-07T00:00:00Z)");
  EXPECT_EQ(Range(Fn("ThisWeek", "createdon"), "2023-12-30T23:59:59.999Z"),
            "[2023-12-24T00:00:00Z, 2023-12-31T00:00:00Z)");
  // Before 1970 (negative day numbers): Thursday 1 January 1970 and Wednesday 31 December 1969.
  EXPECT_EQ(Range(Fn("ThisWeek", "createdon"), "1970-01-01T12:00:00Z"), "[1969-12-28T00:00:00Z, 1970-01-04T00:00:00Z)");
  EXPECT_EQ(Range(Fn("ThisWeek", "createdon"), "1969-12-31T12:00:00Z"), "[1969-12-28T00:00:00Z, 1970-01-04T00:00:00Z)");
}

TEST(DateRangeTest, CalendarMonthsAndYears) {
  const char* now = "2024-02-29T15:30:00Z";
  EXPECT_EQ(Range(Fn("ThisMonth", "createdon"), now), "[2024-02-01T00:00:00Z, 2024-03-01T00:00:00Z)");
  EXPECT_EQ(Range(Fn("LastMonth", "createdon"), now), "[2024-01-01T00:00:00Z, 2024-02-01T00:00:00Z)");
  EXPECT_EQ(Range(Fn("NextMonth", "createdon"), now), "[2024-03-01T00:00:00Z, 2024-04-01T00:00:00Z)");
  EXPECT_EQ(Range(Fn("LastMonth", "createdon"), "2024-01-15T00:00:00Z"),
            "[2023-12-01T00:00:00Z, 2024-01-01T00:00:00Z)");
  EXPECT_EQ(Range(Fn("NextMonth", "createdon"), "2023-12-15T00:00:00Z"),
            "[2024-01-01T00:00:00Z, 2024-02-01T00:00:00Z)");
  EXPECT_EQ(Range(Fn("ThisYear", "createdon"), now), "[2024-01-01T00:00:00Z, 2025-01-01T00:00:00Z)");
  EXPECT_EQ(Range(Fn("LastYear", "createdon"), now), "[2023-01-01T00:00:00Z, 2024-01-01T00:00:00Z)");
  EXPECT_EQ(Range(Fn("NextYear", "createdon"), now), "[2025-01-01T00:00:00Z, 2026-01-01T00:00:00Z)");
}

TEST(DateRangeTest, LastAndNextX) {
  const char* now = "2024-02-29T15:30:00Z";
  // LastX…: from 00:00 of the day X units ago up to now, both included.
  EXPECT_EQ(Range(FnX("LastXDays", "createdon", 3), now), "[2024-02-26T00:00:00Z, 2024-02-29T15:30:00Z]");
  EXPECT_EQ(Range(FnX("LastXDays", "createdon", 0), now), "[2024-02-29T00:00:00Z, 2024-02-29T15:30:00Z]");
  EXPECT_EQ(Range(Fn("Last7Days", "createdon"), now), "[2024-02-22T00:00:00Z, 2024-02-29T15:30:00Z]");
  EXPECT_EQ(Range(FnX("LastXHours", "createdon", 2), now), "[2024-02-29T13:30:00Z, 2024-02-29T15:30:00Z]");
  EXPECT_EQ(Range(FnX("LastXWeeks", "createdon", 2), now), "[2024-02-15T00:00:00Z, 2024-02-29T15:30:00Z]");
  EXPECT_EQ(Range(FnX("LastXMonths", "createdon", 1), now), "[2024-01-29T00:00:00Z, 2024-02-29T15:30:00Z]");
  // 29 February minus a year is 28 February (no 29th in 2023).
  EXPECT_EQ(Range(FnX("LastXYears", "createdon", 1), now), "[2023-02-28T00:00:00Z, 2024-02-29T15:30:00Z]");
  // 31 March minus a month is 29 February in a leap year.
  EXPECT_EQ(Range(FnX("LastXMonths", "createdon", 1), "2024-03-31T08:00:00Z"),
            "[2024-02-29T00:00:00Z, 2024-03-31T08:00:00Z]");
  // NextX…: from now up to the end of the day X units ahead.
  EXPECT_EQ(Range(FnX("NextXDays", "createdon", 3), now), "[2024-02-29T15:30:00Z, 2024-03-04T00:00:00Z)");
  EXPECT_EQ(Range(Fn("Next7Days", "createdon"), now), "[2024-02-29T15:30:00Z, 2024-03-08T00:00:00Z)");
  EXPECT_EQ(Range(FnX("NextXHours", "createdon", 10), now), "[2024-02-29T15:30:00Z, 2024-03-01T01:30:00Z]");
  EXPECT_EQ(Range(FnX("NextXWeeks", "createdon", 1), now), "[2024-02-29T15:30:00Z, 2024-03-08T00:00:00Z)");
  EXPECT_EQ(Range(FnX("NextXMonths", "createdon", 12), now), "[2024-02-29T15:30:00Z, 2025-03-01T00:00:00Z)");
  EXPECT_EQ(Range(FnX("NextXYears", "createdon", 4), now), "[2024-02-29T15:30:00Z, 2028-03-01T00:00:00Z)");
  // Month arithmetic across a year boundary.
  EXPECT_EQ(Range(FnX("LastXMonths", "createdon", 13), "2024-01-31T00:00:00Z"),
            "[2022-12-31T00:00:00Z, 2024-01-31T00:00:00Z]");
}

TEST(DateRangeTest, OlderThanX) {
  const char* now = "2024-02-29T15:30:00Z";
  EXPECT_EQ(Range(FnX("OlderThanXMinutes", "createdon", 30), now), "(-inf, 2024-02-29T15:00:00Z)");
  EXPECT_EQ(Range(FnX("OlderThanXHours", "createdon", 24), now), "(-inf, 2024-02-28T15:30:00Z)");
  EXPECT_EQ(Range(FnX("OlderThanXDays", "createdon", 3), now), "(-inf, 2024-02-26T00:00:00Z)");
  EXPECT_EQ(Range(FnX("OlderThanXWeeks", "createdon", 1), now), "(-inf, 2024-02-22T00:00:00Z)");
  EXPECT_EQ(Range(FnX("OlderThanXMonths", "createdon", 2), now), "(-inf, 2023-12-29T00:00:00Z)");
  EXPECT_EQ(Range(FnX("OlderThanXYears", "createdon", 1), now), "(-inf, 2023-02-28T00:00:00Z)");
}

TEST(DateRangeTest, OnAndItsTwins) {
  const char* now = "2024-02-29T15:30:00Z";
  auto on = [&](const char* fn, Literal v) { return Range(Fn(fn, "createdon", {P("PropertyValue", v)}), now); };
  EXPECT_EQ(on("On", DateLit("2023-03-01")), "[2023-03-01T00:00:00Z, 2023-03-02T00:00:00Z)");
  EXPECT_EQ(on("NotOn", DateLit("2023-03-01")), "not [2023-03-01T00:00:00Z, 2023-03-02T00:00:00Z)");
  EXPECT_EQ(on("OnOrAfter", DateLit("2023-03-01")), "[2023-03-01T00:00:00Z, +inf)");
  EXPECT_EQ(on("OnOrBefore", DateLit("2023-03-01")), "(-inf, 2023-03-02T00:00:00Z)");
  // The text of a date (FetchXML's <value>), and a date and time: its UTC day counts.
  EXPECT_EQ(on("On", Str("2024-02-29")), "[2024-02-29T00:00:00Z, 2024-03-01T00:00:00Z)");
  EXPECT_EQ(on("On", Literal{Literal::Kind::kDateTime, "2024-02-29T23:30:00-02:00"}),
            "[2024-03-01T00:00:00Z, 2024-03-02T00:00:00Z)");
}

TEST(DateRangeTest, FiscalYearsAndQuarters) {
  const char* now = "2024-02-29T15:30:00Z";  // Q1 of fiscal year 2024
  EXPECT_EQ(Range(Fn("ThisFiscalYear", "createdon"), now), "[2024-01-01T00:00:00Z, 2025-01-01T00:00:00Z)");
  EXPECT_EQ(Range(Fn("LastFiscalYear", "createdon"), now), "[2023-01-01T00:00:00Z, 2024-01-01T00:00:00Z)");
  EXPECT_EQ(Range(Fn("NextFiscalYear", "createdon"), now), "[2025-01-01T00:00:00Z, 2026-01-01T00:00:00Z)");
  EXPECT_EQ(Range(Fn("ThisFiscalPeriod", "createdon"), now), "[2024-01-01T00:00:00Z, 2024-04-01T00:00:00Z)");
  EXPECT_EQ(Range(Fn("LastFiscalPeriod", "createdon"), now), "[2023-10-01T00:00:00Z, 2024-01-01T00:00:00Z)");
  EXPECT_EQ(Range(Fn("NextFiscalPeriod", "createdon"), now), "[2024-04-01T00:00:00Z, 2024-07-01T00:00:00Z)");
  EXPECT_EQ(Range(Fn("NextFiscalPeriod", "createdon"), "2023-11-15T00:00:00Z"),
            "[2024-01-01T00:00:00Z, 2024-04-01T00:00:00Z)");
  EXPECT_EQ(Range(FnX("LastXFiscalPeriods", "createdon", 2), now), "[2023-07-01T00:00:00Z, 2024-01-01T00:00:00Z)");
  EXPECT_EQ(Range(FnX("NextXFiscalPeriods", "createdon", 3), now), "[2024-04-01T00:00:00Z, 2025-01-01T00:00:00Z)");
  EXPECT_EQ(Range(FnX("LastXFiscalYears", "createdon", 2), now), "[2022-01-01T00:00:00Z, 2024-01-01T00:00:00Z)");
  EXPECT_EQ(Range(FnX("NextXFiscalYears", "createdon", 1), now), "[2025-01-01T00:00:00Z, 2026-01-01T00:00:00Z)");
  EXPECT_EQ(Range(FnX("InFiscalYear", "createdon", 2013), now), "[2013-01-01T00:00:00Z, 2014-01-01T00:00:00Z)");
  EXPECT_EQ(Range(FnX("InFiscalPeriod", "createdon", 3), now), "[2024-07-01T00:00:00Z, 2024-10-01T00:00:00Z)");
  auto py = [&](const char* fn, int64_t period, int64_t year) {
    return Range(Fn(fn, "createdon", {P("PropertyValue1", Int(period)), P("PropertyValue2", Int(year))}), now);
  };
  EXPECT_EQ(py("InFiscalPeriodAndYear", 4, 2022), "[2022-10-01T00:00:00Z, 2023-01-01T00:00:00Z)");
  EXPECT_EQ(py("InOrBeforeFiscalPeriodAndYear", 4, 2022), "(-inf, 2023-01-01T00:00:00Z)");
  EXPECT_EQ(py("InOrAfterFiscalPeriodAndYear", 2, 2022), "[2022-04-01T00:00:00Z, +inf)");
  // FetchXML's two <value>s as one list, as text.
  EXPECT_EQ(
      Range(Fn("InFiscalPeriodAndYear", "createdon", {Expr::Param{"PropertyValues", {Str("1"), Str("2021")}, true}}),
            now),
      "[2021-01-01T00:00:00Z, 2021-04-01T00:00:00Z)");
}

TEST(DateRangeTest, BadParametersNameTheFunctionAndTheParameter) {
  const char* now = "2024-02-29T15:30:00Z";
  auto error = [&](ExprPtr e) { return Range(e, now); };
  EXPECT_EQ(error(Fn("LastXDays", "createdon")),
            "ERROR: The query function 'Microsoft.Dynamics.CRM.LastXDays' needs the parameter 'PropertyValue'.");
  EXPECT_EQ(error(FnX("LastXDays", "createdon", -1)),
            "ERROR: The parameter 'PropertyValue' of the query function 'Microsoft.Dynamics.CRM.LastXDays' must be a "
            "non-negative integer no larger than 2147483647; '-1' is not.");
  EXPECT_EQ(error(Fn("LastXDays", "createdon", {P("PropertyValue", Literal{Literal::Kind::kDecimal, "1.5"})})),
            "ERROR: The parameter 'PropertyValue' of the query function 'Microsoft.Dynamics.CRM.LastXDays' must be a "
            "non-negative integer no larger than 2147483647; '1.5' is not.");
  EXPECT_EQ(error(Fn("NextXHours", "createdon", {P("PropertyValue", Str("three"))})),
            "ERROR: The parameter 'PropertyValue' of the query function 'Microsoft.Dynamics.CRM.NextXHours' must be a "
            "non-negative integer no larger than 2147483647; 'three' is not.");
  EXPECT_EQ(error(Fn("LastXDays", "createdon", {P("PropertyValue", Literal{})})),
            "ERROR: The parameter 'PropertyValue' of the query function 'Microsoft.Dynamics.CRM.LastXDays' must be a "
            "non-negative integer no larger than 2147483647; it is null.");
  EXPECT_EQ(error(FnX("LastXDays", "createdon", 3000000000)),
            "ERROR: The parameter 'PropertyValue' of the query function 'Microsoft.Dynamics.CRM.LastXDays' must be a "
            "non-negative integer no larger than 2147483647; '3000000000' is not.");
  EXPECT_EQ(error(Fn("OlderThanXDays", "createdon", {Expr::Param{"PropertyValue", {Int(1), Int(2)}, true}})),
            "ERROR: The parameter 'PropertyValue' of the query function 'Microsoft.Dynamics.CRM.OlderThanXDays' must "
            "be a non-negative integer no larger than 2147483647, not a list.");
  EXPECT_EQ(error(Fn("On", "createdon", {P("PropertyValue", Str("yesterday"))})),
            "ERROR: The parameter 'PropertyValue' of the query function 'Microsoft.Dynamics.CRM.On' must be a date "
            "such as 2023-04-07; 'yesterday' is not.");
  EXPECT_EQ(error(Fn("On", "createdon", {P("PropertyValue", Int(20230101))})),
            "ERROR: The parameter 'PropertyValue' of the query function 'Microsoft.Dynamics.CRM.On' must be a date "
            "such as 2023-04-07; '20230101' is not.");
  EXPECT_EQ(error(FnX("InFiscalPeriod", "createdon", 5)),
            "ERROR: The parameter 'PropertyValue' of the query function 'Microsoft.Dynamics.CRM.InFiscalPeriod' must "
            "be a fiscal period between 1 and 4 (fiscal periods are quarters); '5' is not.");
  EXPECT_EQ(error(FnX("InFiscalYear", "createdon", 0)),
            "ERROR: The parameter 'PropertyValue' of the query function 'Microsoft.Dynamics.CRM.InFiscalYear' must be "
            "a year between 1 and 9999; '0' is not.");
  EXPECT_EQ(error(Fn("InFiscalPeriodAndYear", "createdon", {P("PropertyValue1", Int(2))})),
            "ERROR: The query function 'Microsoft.Dynamics.CRM.InFiscalPeriodAndYear' needs the parameter "
            "'PropertyValue2'.");
  // The largest X does not overflow.
  EXPECT_EQ(Range(FnX("LastXYears", "createdon", 2147483647), now).rfind("[", 0), 0u);
  EXPECT_EQ(Range(FnX("NextXMonths", "createdon", 2147483647), now).rfind("[", 0), 0u);
}

// ---- Through the organization service ----

class QueryFunctionsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("trib_qf_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    auto env = Environment::Open({.data_dir = dir_.string(),
                                  .bootstrap_client_id = "test",
                                  .bootstrap_client_secret = "secret",
                                  .clock = &clock_});
    ASSERT_TRUE(env.ok()) << env.status().ToString();
    env_ = std::move(env).value();
    cat_ = env_->catalog().Get();
    caller_ = {env_->ids().admin_user_id, env_->ids().root_business_unit_id};
  }
  void TearDown() override {
    env_.reset();
    fs::remove_all(dir_);
  }
  const catalog::Table& T(const char* name) { return *cat_->FindTable(name); }

  Guid Create(const char* table, std::vector<std::pair<const char*, Value>> fields) {
    EntityInput in;
    in.table = &T(table);
    for (auto& [c, v] : fields) in.fields.push_back(Field{in.table->FindColumn(c), std::move(v)});
    std::promise<Result<WriteResult>> p;
    env_->service().Create(caller_, std::move(in), std::nullopt,
                           [&](Result<WriteResult> r) { p.set_value(std::move(r)); });
    auto r = p.get_future().get();
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? r->id : Guid();
  }
  // An account whose createdon is `created` (through overriddencreatedon, as a migration would).
  void Account(const std::string& name, std::string_view created) {
    Create("account", {{"name", name}, {"overriddencreatedon", At(created)}});
  }
  void Contact(const std::string& lastname, std::string_view birthdate) {
    Create("contact", {{"lastname", lastname}, {"birthdate", *ParseDate(birthdate)}});
  }

  // The names (primary name column) of the rows `filter` selects, sorted; "ERROR: …" on failure.
  std::string Names(const char* table, ExprPtr filter) {
    QueryOptions q;
    q.filter = std::move(filter);
    auto page = env_->service().RetrieveMultiple(caller_, T(table), q, PageRequest{});
    if (!page.ok()) return "ERROR: " + page.status().message();
    std::vector<std::string> names;
    const std::string& col = T(table).primary_name;
    for (const auto& row : page->rows)
      if (const Value* v = row.Get(col); v && std::holds_alternative<std::string>(*v))
        names.push_back(std::get<std::string>(*v));
    std::sort(names.begin(), names.end());
    std::string s;
    for (const auto& n : names) s += (s.empty() ? "" : ",") + n;
    return s;
  }

  fs::path dir_;
  ManualClock clock_{At("2024-02-29T15:30:00Z")};
  std::unique_ptr<Environment> env_;
  catalog::CatalogPtr cat_;
  CallerContext caller_;
};

TEST_F(QueryFunctionsTest, DayBoundariesOnDateTimeColumns) {
  Account("before_yesterday", "2024-02-27T23:59:59.999Z");
  Account("yesterday_start", "2024-02-28T00:00:00Z");
  Account("yesterday_end", "2024-02-28T23:59:59.999Z");
  Account("today_start", "2024-02-29T00:00:00Z");
  Account("now", "2024-02-29T15:30:00Z");
  Account("later_today", "2024-02-29T15:30:00.001Z");
  Account("today_end", "2024-02-29T23:59:59.999Z");
  Account("tomorrow_start", "2024-03-01T00:00:00Z");
  EXPECT_EQ(Names("account", Fn("Today", "createdon")), "later_today,now,today_end,today_start");
  EXPECT_EQ(Names("account", Fn("Yesterday", "createdon")), "yesterday_end,yesterday_start");
  EXPECT_EQ(Names("account", Fn("Tomorrow", "createdon")), "tomorrow_start");
  EXPECT_EQ(Names("account", FnX("LastXDays", "createdon", 1)), "now,today_start,yesterday_end,yesterday_start");
  EXPECT_EQ(Names("account", FnX("NextXDays", "createdon", 1)), "later_today,now,today_end,tomorrow_start");
  EXPECT_EQ(Names("account", FnX("OlderThanXDays", "createdon", 1)), "before_yesterday");
  EXPECT_EQ(Names("account", FnX("LastXHours", "createdon", 0)), "now");
  EXPECT_EQ(Names("account", FnX("OlderThanXMinutes", "createdon", 0)),
            "before_yesterday,today_start,yesterday_end,yesterday_start");
  EXPECT_EQ(Names("account", Fn("On", "createdon", {P("PropertyValue", DateLit("2024-02-28"))})),
            "yesterday_end,yesterday_start");
  EXPECT_EQ(Names("account", Fn("NotOn", "createdon", {P("PropertyValue", Str("2024-02-29"))})),
            "before_yesterday,tomorrow_start,yesterday_end,yesterday_start");
  EXPECT_EQ(Names("account", Fn("OnOrBefore", "createdon", {P("PropertyValue", DateLit("2024-02-27"))})),
            "before_yesterday");
  EXPECT_EQ(Names("account", Fn("OnOrAfter", "createdon", {P("PropertyValue", DateLit("2024-03-01"))})),
            "tomorrow_start");
  // The same filter at another instant: "now" is the service clock's.
  clock_.Set(At("2024-03-01T08:00:00Z"));
  EXPECT_EQ(Names("account", Fn("Yesterday", "createdon")), "later_today,now,today_end,today_start");
  EXPECT_EQ(Names("account", Fn("Today", "createdon")), "tomorrow_start");
}

TEST_F(QueryFunctionsTest, WeekMonthAndYearRollovers) {
  clock_.Set(At("2024-01-01T10:00:00Z"));  // a Monday; the week started on Sunday 31 December
  Account("sat_before", "2023-12-30T23:59:59.999Z");
  Account("sun_start", "2023-12-31T00:00:00Z");
  Account("new_year", "2024-01-01T00:00:00Z");
  Account("sat_end", "2024-01-06T23:59:59.999Z");
  Account("next_sun", "2024-01-07T00:00:00Z");
  Account("dec_first", "2023-12-01T00:00:00Z");
  Account("nov_last", "2023-11-30T23:59:59.999Z");
  EXPECT_EQ(Names("account", Fn("ThisWeek", "createdon")), "new_year,sat_end,sun_start");
  EXPECT_EQ(Names("account", Fn("LastWeek", "createdon")), "sat_before");
  EXPECT_EQ(Names("account", Fn("NextWeek", "createdon")), "next_sun");
  EXPECT_EQ(Names("account", Fn("LastMonth", "createdon")), "dec_first,sat_before,sun_start");
  EXPECT_EQ(Names("account", Fn("ThisMonth", "createdon")), "new_year,next_sun,sat_end");
  EXPECT_EQ(Names("account", Fn("LastYear", "createdon")), "dec_first,nov_last,sat_before,sun_start");
  EXPECT_EQ(Names("account", Fn("LastFiscalPeriod", "createdon")), "dec_first,nov_last,sat_before,sun_start");
  EXPECT_EQ(Names("account", FnX("InFiscalYear", "createdon", 2024)), "new_year,next_sun,sat_end");
  EXPECT_EQ(Names("account", Fn("InFiscalPeriodAndYear", "createdon",
                                {P("PropertyValue1", Str("4")), P("PropertyValue2", Str("2023"))})),
            "dec_first,nov_last,sat_before,sun_start");
}

TEST_F(QueryFunctionsTest, DateOnlyColumnsCompareDays) {
  // Leap years: 29 February 2024 exists; a year before it is 28 February 2023.
  Contact("y2023_02_27", "2023-02-27");
  Contact("y2023_02_28", "2023-02-28");
  Contact("y2024_02_28", "2024-02-28");
  Contact("y2024_02_29", "2024-02-29");
  Contact("y2024_03_01", "2024-03-01");
  Contact("y2024_03_03", "2024-03-03");
  Contact("y2024_03_04", "2024-03-04");
  EXPECT_EQ(Names("contact", Fn("Today", "birthdate")), "y2024_02_29");
  EXPECT_EQ(Names("contact", Fn("Yesterday", "birthdate")), "y2024_02_28");
  EXPECT_EQ(Names("contact", Fn("Tomorrow", "birthdate")), "y2024_03_01");
  // Today's date (its 00:00) is before now: up to now it counts for LastXDays, not for NextXDays.
  EXPECT_EQ(Names("contact", FnX("LastXDays", "birthdate", 1)), "y2024_02_28,y2024_02_29");
  EXPECT_EQ(Names("contact", FnX("NextXDays", "birthdate", 3)), "y2024_03_01,y2024_03_03");
  EXPECT_EQ(Names("contact", FnX("LastXYears", "birthdate", 1)), "y2023_02_28,y2024_02_28,y2024_02_29");
  EXPECT_EQ(Names("contact", FnX("OlderThanXYears", "birthdate", 1)), "y2023_02_27");
  EXPECT_EQ(Names("contact", Fn("ThisMonth", "birthdate")), "y2024_02_28,y2024_02_29");
  EXPECT_EQ(Names("contact", Fn("On", "birthdate", {P("PropertyValue", Str("2024-02-29"))})), "y2024_02_29");
  EXPECT_EQ(Names("contact", Fn("OnOrBefore", "birthdate", {P("PropertyValue", DateLit("2023-02-28"))})),
            "y2023_02_27,y2023_02_28");
  EXPECT_EQ(Names("contact", Fn("NotOn", "birthdate", {P("PropertyValue", DateLit("2024-02-29"))})),
            "y2023_02_27,y2023_02_28,y2024_02_28,y2024_03_01,y2024_03_03,y2024_03_04");
  // Null values match no date function, NotOn included.
  Create("contact", {{"lastname", std::string("no_birthdate")}});
  EXPECT_EQ(
      Names("contact", Fn("NotOn", "birthdate", {P("PropertyValue", DateLit("2024-02-29"))})).find("no_birthdate"),
      std::string::npos);
  EXPECT_EQ(Names("contact", Fn("ThisFiscalPeriod", "birthdate")),
            "y2024_02_28,y2024_02_29,y2024_03_01,y2024_03_03,y2024_03_04");
}

TEST_F(QueryFunctionsTest, DateFunctionsOnOtherColumnsAreQueryErrors) {
  Account("a", "2024-02-29T00:00:00Z");
  EXPECT_EQ(Names("account", Fn("Today", "name")),
            "ERROR: The query function 'Microsoft.Dynamics.CRM.Today' can only be used on a date and time column; "
            "'name' is not one.");
  EXPECT_EQ(Names("account", FnX("LastXDays", "numberofemployees", 2)),
            "ERROR: The query function 'Microsoft.Dynamics.CRM.LastXDays' can only be used on a date and time column; "
            "'numberofemployees' is not one.");
  QueryOptions q;
  q.filter = FnX("LastXDays", "createdon", -2);
  auto page = env_->service().RetrieveMultiple(caller_, T("account"), q, PageRequest{});
  ASSERT_FALSE(page.ok());
  EXPECT_EQ(page.status().error_code(), err::kQueryError);
}

TEST_F(QueryFunctionsTest, HierarchyAndUnknownFunctionsAreQueryErrors) {
  for (const char* fn : {"Above", "AboveOrEqual", "Under", "UnderOrEqual", "NotUnder", "EqualUserOrUserHierarchy"}) {
    auto e = Fn(fn, "accountid", {P("PropertyValue", Str("00000000-0000-0000-0000-000000000001"))});
    QueryOptions q;
    q.filter = std::move(e);
    auto page = env_->service().RetrieveMultiple(caller_, T("account"), q, PageRequest{});
    ASSERT_FALSE(page.ok()) << fn;
    EXPECT_EQ(page.status().error_code(), err::kQueryError);
    EXPECT_EQ(page.status().message(), "The query function 'Microsoft.Dynamics.CRM." + std::string(fn) +
                                           "' is not supported: Tributary has no hierarchical relationships or "
                                           "hierarchy security.");
  }
  EXPECT_EQ(Names("account", Fn("LastXCenturies", "createdon")),
            "ERROR: The query function 'Microsoft.Dynamics.CRM.LastXCenturies' is not supported.");
}

TEST_F(QueryFunctionsTest, UserTeamsAndLanguage) {
  const catalog::Table& team = T("team");
  Guid mine = Create("team", {{"name", std::string("Mine")}});
  Guid other = Create("team", {{"name", std::string("Other")}});
  // The caller joins "Mine" (teammembership_association, N:N systemuser–team).
  const catalog::NavProperty* members = team.FindNav("teammembership_association");
  ASSERT_NE(members, nullptr);
  std::promise<Result<Guid>> p;
  env_->service().Associate(caller_, team, RecordKey{mine, {}}, *members,
                            BindTarget{&T("systemuser"), RecordKey{caller_.user_id, {}}}, true,
                            [&](Result<Guid> r) { p.set_value(std::move(r)); });
  ASSERT_TRUE(p.get_future().get().ok());
  Create("account", {{"name", std::string("by_me")}});
  Create("account", {{"name", std::string("by_my_team")}, {"ownerid", EntityRef{"team", mine}}});
  Create("account", {{"name", std::string("by_other_team")}, {"ownerid", EntityRef{"team", other}}});
  EXPECT_EQ(Names("account", Fn("EqualUserTeams", "ownerid")), "by_my_team");
  EXPECT_EQ(Names("account", Fn("EqualUserOrUserTeams", "ownerid")), "by_me,by_my_team");
  EXPECT_EQ(Names("account", Fn("EqualUserOrUserTeams", "_ownerid_value")), "by_me,by_my_team");
  EXPECT_EQ(Names("account", Fn("EqualUserTeams", "name")),
            "ERROR: The query function 'Microsoft.Dynamics.CRM.EqualUserTeams' can only be used on an owner, lookup "
            "or unique identifier column; 'name' is not one.");
}

TEST_F(QueryFunctionsTest, UserLanguageIsEnglish) {
  // EqualUserLanguage compares with 1033: Tributary keeps no per-user language. Any whole number
  // column will do for the test.
  Create("account", {{"name", std::string("english")}, {"numberofemployees", int64_t{1033}}});
  Create("account", {{"name", std::string("french")}, {"numberofemployees", int64_t{1036}}});
  EXPECT_EQ(Names("account", Fn("EqualUserLanguage", "numberofemployees")), "english");
  EXPECT_EQ(Names("account", Fn("EqualUserLanguage", "createdon")),
            "ERROR: The query function 'Microsoft.Dynamics.CRM.EqualUserLanguage' can only be used on a whole number "
            "or choice column; 'createdon' is not one.");
}

}  // namespace
}  // namespace tributary::data
