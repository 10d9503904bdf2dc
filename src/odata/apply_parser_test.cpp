// Tests of the $apply parser (apply_parser.h).

#include "apply_parser.h"

#include <gtest/gtest.h>

namespace tributary::odata {
namespace {

using Paths = std::vector<std::vector<std::string>>;

ApplyQuery Parse(std::string_view text, const AliasMap& aliases = {}) {
  auto r = ParseApply(text, aliases);
  EXPECT_TRUE(r.ok()) << text << ": " << r.status().ToString();
  return r.ok() ? std::move(r).value() : ApplyQuery{};
}

std::string Error(std::string_view text) {
  auto r = ParseApply(text, {});
  EXPECT_FALSE(r.ok()) << text;
  if (r.ok()) return "";
  EXPECT_EQ(r.status().error_code(), err::kQueryError);
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
  return r.status().message();
}

TEST(ApplyParser, GroupBy) {
  auto q = Parse("groupby((statuscode,_ownerid_value))");
  EXPECT_TRUE(q.groupby);
  EXPECT_EQ(q.groupby_paths, (Paths{{"statuscode"}, {"_ownerid_value"}}));
  EXPECT_TRUE(q.aggregates.empty());
  EXPECT_FALSE(q.filter);
  EXPECT_TRUE(q.Aggregates());

  auto nav = Parse("groupby( ( primarycontactid/fullname , address1_city ) )");
  EXPECT_EQ(nav.groupby_paths, (Paths{{"primarycontactid", "fullname"}, {"address1_city"}}));
}

TEST(ApplyParser, GroupByWithAggregates) {
  auto q = Parse(
      "groupby((address1_city),aggregate($count as count,revenue with sum as total, "
      "numberofemployees with average as avg,revenue with min as lo,revenue with max as hi,"
      "name with countdistinct as names))");
  EXPECT_EQ(q.groupby_paths, (Paths{{"address1_city"}}));
  EXPECT_EQ(q.aggregates, (std::vector<ApplyAggregate>{{{}, "count", "count"},
                                                       {{"revenue"}, "sum", "total"},
                                                       {{"numberofemployees"}, "average", "avg"},
                                                       {{"revenue"}, "min", "lo"},
                                                       {{"revenue"}, "max", "hi"},
                                                       {{"name"}, "countdistinct", "names"}}));
}

TEST(ApplyParser, AggregateAlone) {
  auto q = Parse("aggregate(revenue with sum as total)");
  EXPECT_FALSE(q.groupby);
  EXPECT_EQ(q.aggregates, (std::vector<ApplyAggregate>{{{"revenue"}, "sum", "total"}}));
  EXPECT_TRUE(q.Aggregates());
  EXPECT_EQ(Parse("aggregate($count as n)").aggregates[0].method, "count");
}

TEST(ApplyParser, FiltersComeFirstAndAreAnded) {
  auto q = Parse("filter(name eq 'a/b (x)')/filter(revenue gt 5)/groupby((statuscode))");
  ASSERT_TRUE(q.filter);
  EXPECT_EQ(q.filter->kind, data::Expr::Kind::kAnd);
  EXPECT_EQ(q.filter->children[0]->children[1]->literal.text, "a/b (x)");
  EXPECT_EQ(q.groupby_paths, (Paths{{"statuscode"}}));

  auto only = Parse("filter(primarycontactid/fullname eq 'O''Neil')");
  ASSERT_TRUE(only.filter);
  EXPECT_FALSE(only.Aggregates());
  EXPECT_EQ(only.filter->children[0]->path, (std::vector<std::string>{"primarycontactid", "fullname"}));

  // Aliases reach the filter.
  auto aliased = Parse("filter(name eq @p)", {{"@p", "'x'"}});
  EXPECT_EQ(aliased.filter->children[1]->literal.text, "x");
}

TEST(ApplyParser, RejectsWhatDataverseDoesNot) {
  EXPECT_NE(Error("").find("empty"), std::string::npos);
  EXPECT_NE(Error("groupby((a))/filter(b eq 1)").find("before"), std::string::npos);
  EXPECT_NE(Error("groupby((a))/groupby((b))").find("before"), std::string::npos);
  EXPECT_NE(Error("compute(a add 1 as b)").find("'compute'"), std::string::npos);
  EXPECT_NE(Error("topcount(2,revenue)").find("'topcount'"), std::string::npos);
  EXPECT_NE(Error("aggregate(revenue with median as m)").find("'median'"), std::string::npos);
  EXPECT_NE(Error("aggregate(revenue with sum)").find("'as'"), std::string::npos);
  EXPECT_NE(Error("aggregate(revenue as x)").find("'with'"), std::string::npos);
  EXPECT_NE(Error("aggregate($count as n, revenue with sum as n)").find("'n'"), std::string::npos);
  EXPECT_NE(Error("groupby(a)").find("parenthesized"), std::string::npos);
  EXPECT_NE(Error("groupby((a),b)").find("aggregate"), std::string::npos);
  EXPECT_NE(Error("groupby((a)").find("'('"), std::string::npos);
  EXPECT_NE(Error("groupby((a)))").find("')'"), std::string::npos);
  EXPECT_NE(Error("filter(name eq 'x)").find("quoted"), std::string::npos);
  EXPECT_NE(Error("filter(name eq)").find("$filter"), std::string::npos);
  EXPECT_NE(Error("filter(a eq 1)//groupby((a))").find("empty"), std::string::npos);
  EXPECT_NE(Error("groupby((a),aggregate($count as a))").find("'a'"), std::string::npos);
  EXPECT_NE(Error("groupby((a/))").find("property name"), std::string::npos);
}

TEST(ApplyParser, AnyInputIsSafe) {
  // Deeply nested or truncated input gives an error, never a crash.
  std::string deep(5000, '(');
  EXPECT_FALSE(ParseApply("filter" + deep, {}).ok());
  EXPECT_FALSE(ParseApply("filter(" + std::string(300, '(') + "a eq 1" + std::string(300, ')') + ")", {}).ok());
  for (std::string_view s : {"(", ")", "/", "groupby", "aggregate(", "groupby((", "filter()", "aggregate()"})
    EXPECT_FALSE(ParseApply(s, {}).ok()) << s;
}

}  // namespace
}  // namespace tributary::odata
