#include "tributary/odata/uri_parser.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "tributary/base/status.h"
#include "tributary/data/query.h"

namespace tributary::odata {
namespace {

using data::CompareOp;
using data::Expr;
using data::Literal;

constexpr char kGuid[] = "00000000-0000-0000-0000-000000000001";

// A compact, unambiguous rendering of the AST for table-driven expectations:
//   and(A,B) or(A,B) not(A) eq(A,B) … path/to/prop int:5 dec:1.5 'str' guid:… dt:… date:… enum:…
//   contains(A,B)  nav/any(t:BODY)  nav/any()  qf:In(PropertyName='a',PropertyValues=['x',int:1])
std::string Show(const Literal& l) {
  switch (l.kind) {
    case Literal::Kind::kNull:
      return "null";
    case Literal::Kind::kBool:
      return l.text;
    case Literal::Kind::kInteger:
      return "int:" + l.text;
    case Literal::Kind::kDecimal:
      return "dec:" + l.text;
    case Literal::Kind::kString:
      return "'" + l.text + "'";
    case Literal::Kind::kGuid:
      return "guid:" + l.text;
    case Literal::Kind::kDateTime:
      return "dt:" + l.text;
    case Literal::Kind::kDate:
      return "date:" + l.text;
    case Literal::Kind::kEnum:
      return "enum:" + l.text;
  }
  return "?";
}

std::string JoinPath(const std::vector<std::string>& path) {
  std::string s;
  for (const std::string& p : path) {
    if (!s.empty()) s += '/';
    s += p;
  }
  return s;
}

std::string Show(const Expr& e) {
  static constexpr const char* kOps[] = {"eq", "ne", "gt", "ge", "lt", "le"};
  auto child = [&](size_t i) { return i < e.children.size() && e.children[i] ? Show(*e.children[i]) : "<missing>"; };
  switch (e.kind) {
    case Expr::Kind::kAnd:
      return "and(" + child(0) + "," + child(1) + ")";
    case Expr::Kind::kOr:
      return "or(" + child(0) + "," + child(1) + ")";
    case Expr::Kind::kNot:
      return "not(" + child(0) + ")";
    case Expr::Kind::kCompare:
      return std::string(kOps[static_cast<int>(e.op)]) + "(" + child(0) + "," + child(1) + ")";
    case Expr::Kind::kProperty:
      return JoinPath(e.path);
    case Expr::Kind::kLiteral:
      return Show(e.literal);
    case Expr::Kind::kFunction:
      return e.name + "(" + child(0) + "," + child(1) + ")";
    case Expr::Kind::kLambda:
      if (e.children.empty()) return JoinPath(e.path) + "/" + e.name + "()";
      return JoinPath(e.path) + "/" + e.name + "(" + e.variable + ":" + child(0) + ")";
    case Expr::Kind::kQueryFunction: {
      std::string s = "qf:" + e.name + "(";
      for (size_t i = 0; i < e.params.size(); ++i) {
        if (i) s += ',';
        s += e.params[i].name + "=";
        if (e.params[i].is_array) s += '[';
        for (size_t j = 0; j < e.params[i].values.size(); ++j) {
          if (j) s += ',';
          s += Show(e.params[i].values[j]);
        }
        if (e.params[i].is_array) s += ']';
      }
      return s + ")";
    }
  }
  return "?";
}

std::string FilterOrError(std::string_view text, const AliasMap& aliases = {}) {
  auto r = ParseFilter(text, aliases);
  if (!r.ok()) return "ERROR: " + r.status().message();
  return Show(**r);
}

void ExpectQueryError(const Status& s, std::string_view input) {
  EXPECT_FALSE(s.ok()) << "accepted: " << input;
  EXPECT_EQ(s.code(), Code::kInvalidArgument) << input;
  EXPECT_EQ(s.error_code(), err::kQueryError) << input << " → " << s.message();
  EXPECT_FALSE(s.message().empty()) << input;
}

int Depth(const Expr& e) {
  int d = 0;
  for (const auto& c : e.children) d = std::max(d, Depth(*c));
  return d + 1;
}

// ---------------------------------------------------------------------------------------------
// $filter: valid input

struct FilterCase {
  const char* input;
  const char* expected;
};

class FilterValidTest : public testing::TestWithParam<FilterCase> {};

TEST_P(FilterValidTest, Parses) {
  const FilterCase& c = GetParam();
  EXPECT_EQ(FilterOrError(c.input), c.expected) << c.input;
}

INSTANTIATE_TEST_SUITE_P(
    Filter, FilterValidTest,
    testing::Values(
        // Comparison operators and literal kinds.
        FilterCase{"name eq 'Contoso'", "eq(name,'Contoso')"}, FilterCase{"revenue ne 5", "ne(revenue,int:5)"},
        FilterCase{"revenue gt -5", "gt(revenue,int:-5)"}, FilterCase{"revenue ge 1.5", "ge(revenue,dec:1.5)"},
        FilterCase{"revenue lt -2e3", "lt(revenue,dec:-2e3)"}, FilterCase{"revenue le 1.5m", "le(revenue,dec:1.5)"},
        FilterCase{"revenue le 2.25M", "le(revenue,dec:2.25)"}, FilterCase{"revenue eq 1E+10", "eq(revenue,dec:1E+10)"},
        FilterCase{"revenue eq +7", "eq(revenue,int:7)"},
        FilterCase{"revenue eq 99999999999999999999", "eq(revenue,int:99999999999999999999)"},
        FilterCase{"name eq null", "eq(name,null)"}, FilterCase{"donotemail eq true", "eq(donotemail,true)"},
        FilterCase{"donotemail ne false", "ne(donotemail,false)"},
        FilterCase{"name eq 'O''Bryan'", "eq(name,'O'Bryan')"}, FilterCase{"name eq ''", "eq(name,'')"},
        FilterCase{"name eq ''''", "eq(name,''')"}, FilterCase{"name eq 'a)b,c=d;e/f'", "eq(name,'a)b,c=d;e/f')"},
        FilterCase{"name eq 'and or not eq'", "eq(name,'and or not eq')"},
        FilterCase{"name eq '%_[^]'", "eq(name,'%_[^]')"}, FilterCase{"name eq 'Zürich'", "eq(name,'Zürich')"},
        FilterCase{"_ownerid_value eq 4026BE43-6D3C-E611-80D5-00155D2A68D1",
                   "eq(_ownerid_value,guid:4026be43-6d3c-e611-80d5-00155d2a68d1)"},
        FilterCase{"_ownerid_value eq {4026be43-6d3c-e611-80d5-00155d2a68d1}",
                   "eq(_ownerid_value,guid:4026be43-6d3c-e611-80d5-00155d2a68d1)"},
        FilterCase{"_ownerid_value eq abcdef01-6d3c-e611-80d5-00155d2a68d1",
                   "eq(_ownerid_value,guid:abcdef01-6d3c-e611-80d5-00155d2a68d1)"},
        FilterCase{"_ownerid_value eq '4026BE43-6D3C-E611-80D5-00155D2A68D1'",
                   "eq(_ownerid_value,'4026BE43-6D3C-E611-80D5-00155D2A68D1')"},
        FilterCase{"createdon gt 2023-01-01T00:00:00Z", "gt(createdon,dt:2023-01-01T00:00:00Z)"},
        FilterCase{"createdon gt 2023-01-01T00:00:00.123Z", "gt(createdon,dt:2023-01-01T00:00:00.123Z)"},
        FilterCase{"createdon gt 2021-04-04T12:00:00-08:00", "gt(createdon,dt:2021-04-04T12:00:00-08:00)"},
        FilterCase{"createdon gt 2021-04-04T12:00:00+05:30", "gt(createdon,dt:2021-04-04T12:00:00+05:30)"},
        FilterCase{"createdon gt 2021-04-04T12:00Z", "gt(createdon,dt:2021-04-04T12:00Z)"},
        FilterCase{"createdon gt 2021-04-04T12:00:00", "gt(createdon,dt:2021-04-04T12:00:00)"},
        FilterCase{"birthdate eq 2023-01-01", "eq(birthdate,date:2023-01-01)"},
        FilterCase{"birthdate eq 2024-02-29", "eq(birthdate,date:2024-02-29)"},
        FilterCase{"OwnershipType eq Microsoft.Dynamics.CRM.OwnershipTypes'UserOwned'",
                   "eq(OwnershipType,enum:OwnershipTypes'UserOwned')"},
        FilterCase{"RequiredLevel/Value eq Microsoft.Dynamics.CRM.AttributeRequiredLevel'ApplicationRequired'",
                   "eq(RequiredLevel/Value,enum:AttributeRequiredLevel'ApplicationRequired')"},
        // Paths and column-vs-column.
        FilterCase{"primarycontactid/fullname eq 'Joe'", "eq(primarycontactid/fullname,'Joe')"},
        FilterCase{"primarycontactid/createdby/fullname eq 'Joe'", "eq(primarycontactid/createdby/fullname,'Joe')"},
        FilterCase{"firstname eq lastname", "eq(firstname,lastname)"},
        FilterCase{"CanCreateAttributes/Value eq true", "eq(CanCreateAttributes/Value,true)"},
        FilterCase{"5 lt revenue", "lt(int:5,revenue)"}, FilterCase{"(name) eq 'x'", "eq(name,'x')"},
        // Precedence and grouping.
        FilterCase{"a eq 1 or b eq 2 and c eq 3", "or(eq(a,int:1),and(eq(b,int:2),eq(c,int:3)))"},
        FilterCase{"a eq 1 and b eq 2 or c eq 3", "or(and(eq(a,int:1),eq(b,int:2)),eq(c,int:3))"},
        FilterCase{"(a eq 1 or b eq 2) and c eq 3", "and(or(eq(a,int:1),eq(b,int:2)),eq(c,int:3))"},
        FilterCase{"a eq 1 and (b eq 2 or c eq 3)", "and(eq(a,int:1),or(eq(b,int:2),eq(c,int:3)))"},
        FilterCase{"a eq 1 or b eq 2 or c eq 3", "or(or(eq(a,int:1),eq(b,int:2)),eq(c,int:3))"},
        FilterCase{"a eq 1 and b eq 2 and c eq 3", "and(and(eq(a,int:1),eq(b,int:2)),eq(c,int:3))"},
        FilterCase{"not a eq 1 or b eq 2",
                   "ERROR: Syntax error at position 0 in '$filter': 'not' binds tighter "
                   "than comparisons; write 'not (a eq b)' to negate one."},
        FilterCase{"a eq 1 eq 2",
                   "ERROR: Syntax error at position 7 in '$filter': comparisons cannot be chained; "
                   "combine them with 'and' or 'or'."},
        FilterCase{"(a eq 1) eq true",
                   "ERROR: Syntax error at position 0 in '$filter': only properties and literals "
                   "can be compared (the operand of the operator at position 9 is a condition)."},
        FilterCase{"not (a eq 1) or b eq 2", "or(not(eq(a,int:1)),eq(b,int:2))"},
        FilterCase{"not(a eq 1)", "not(eq(a,int:1))"}, FilterCase{"not not (a eq 1)", "not(not(eq(a,int:1)))"},
        FilterCase{"((((a eq 1))))", "eq(a,int:1)"},
        FilterCase{"(a eq 1) and ((b eq 2))", "and(eq(a,int:1),eq(b,int:2))"}, FilterCase{"\ta\teq\t1 ", "eq(a,int:1)"},
        FilterCase{"a  eq   1   and   b eq 2", "and(eq(a,int:1),eq(b,int:2))"},
        FilterCase{"(a eq 1)and(b eq 2)", "and(eq(a,int:1),eq(b,int:2))"},
        // Boolean properties as conditions.
        FilterCase{"donotemail", "eq(donotemail,true)"}, FilterCase{"not donotemail", "not(eq(donotemail,true))"},
        FilterCase{"donotemail and not donotphone", "and(eq(donotemail,true),not(eq(donotphone,true)))"},
        // String functions.
        FilterCase{"contains(name,'sample')", "contains(name,'sample')"},
        FilterCase{"startswith(name, 'a''b')", "startswith(name,'a'b')"},
        FilterCase{"endswith( primarycontactid/fullname , 'x' )", "endswith(primarycontactid/fullname,'x')"},
        FilterCase{"not contains(name,'x')", "not(contains(name,'x'))"},
        FilterCase{"contains(name,'x') eq true", "contains(name,'x')"},
        FilterCase{"contains(name,'x') eq false", "not(contains(name,'x'))"},
        FilterCase{"contains(name,'x') ne true", "not(contains(name,'x'))"},
        FilterCase{"contains(name,'x') and startswith(name,'y')", "and(contains(name,'x'),startswith(name,'y'))"},
        // Lambdas.
        FilterCase{"Account_Tasks/any(t:t/statecode eq 1)", "Account_Tasks/any(t:eq(t/statecode,int:1))"},
        FilterCase{"Account_Tasks/all(x:x/statecode eq 1)", "Account_Tasks/all(x:eq(x/statecode,int:1))"},
        FilterCase{"Account_Tasks/any()", "Account_Tasks/any()"},
        FilterCase{"not Account_Tasks/any()", "not(Account_Tasks/any())"},
        FilterCase{"contact_customer_accounts/any(c: c/fullname eq 'x' and contains(c/fullname,'y'))",
                   "contact_customer_accounts/any(c:and(eq(c/fullname,'x'),contains(c/fullname,'y')))"},
        FilterCase{"contact_customer_accounts/any(c:c/contact_tasks/any(t:t/subject eq 'x'))",
                   "contact_customer_accounts/any(c:c/contact_tasks/any(t:eq(t/subject,'x')))"},
        FilterCase{"primarycontactid/contact_tasks/any(t:t/subject eq 'x')",
                   "primarycontactid/contact_tasks/any(t:eq(t/subject,'x'))"},
        FilterCase{"Account_Tasks/any(t:t/statecode eq 1) eq false", "not(Account_Tasks/any(t:eq(t/statecode,int:1)))"},
        // Dataverse query functions.
        FilterCase{"Microsoft.Dynamics.CRM.In(PropertyName='name',PropertyValues=['a','b'])",
                   "qf:In(PropertyName='name',PropertyValues=['a','b'])"},
        FilterCase{"Microsoft.Dynamics.CRM.Between(PropertyName='numberofemployees',PropertyValues=[\"5\",\"2000\"])",
                   "qf:Between(PropertyName='numberofemployees',PropertyValues=['5','2000'])"},
        FilterCase{"Microsoft.Dynamics.CRM.In(PropertyName='name',PropertyValues=[\"O'Brian\",'x''y',5,1.5,null])",
                   "qf:In(PropertyName='name',PropertyValues=['O'Brian','x'y',int:5,dec:1.5,null])"},
        FilterCase{"Microsoft.Dynamics.CRM.In(PropertyName='name',PropertyValues=[\"a\\\"b\\u00e9\\\\\"])",
                   "qf:In(PropertyName='name',PropertyValues=['a\"bé\\'])"},
        FilterCase{"Microsoft.Dynamics.CRM.In(PropertyName='x',PropertyValues=[])",
                   "qf:In(PropertyName='x',PropertyValues=[])"},
        FilterCase{"Microsoft.Dynamics.CRM.LastXDays(PropertyName='createdon',PropertyValue=7)",
                   "qf:LastXDays(PropertyName='createdon',PropertyValue=int:7)"},
        FilterCase{"Microsoft.Dynamics.CRM.Today(PropertyName='createdon')", "qf:Today(PropertyName='createdon')"},
        FilterCase{"Microsoft.Dynamics.CRM.Today( PropertyName = 'createdon' )", "qf:Today(PropertyName='createdon')"},
        FilterCase{"mscrm.Today(PropertyName='createdon')", "qf:Today(PropertyName='createdon')"},
        FilterCase{"Microsoft.Dynamics.CRM.EqualUserId(PropertyName='ownerid')",
                   "qf:EqualUserId(PropertyName='ownerid')"},
        FilterCase{"Microsoft.Dynamics.CRM.Between(PropertyName='createdon',PropertyValues=[2023-01-01,2023-12-31])",
                   "qf:Between(PropertyName='createdon',PropertyValues=[date:2023-01-01,date:2023-12-31])"},
        FilterCase{"Microsoft.Dynamics.CRM.Today(PropertyName='createdon') and name eq 'x'",
                   "and(qf:Today(PropertyName='createdon'),eq(name,'x'))"},
        FilterCase{"Microsoft.Dynamics.CRM.Today(PropertyName='createdon') eq true",
                   "qf:Today(PropertyName='createdon')"},
        FilterCase{"not (Microsoft.Dynamics.CRM.Today(PropertyName='createdon') and a eq 1)",
                   "not(and(qf:Today(PropertyName='createdon'),eq(a,int:1)))"}));

TEST(FilterTest, LongChainsBuildShallowTrees) {
  std::string text;
  for (int i = 0; i < 5000; ++i) {
    if (i) text += " or ";
    text += "accountid eq " + std::string(kGuid);
  }
  auto r = ParseFilter(text, {});
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ((*r)->kind, Expr::Kind::kOr);
  EXPECT_LE(Depth(**r), 16);
  // Count the leaves: every term is kept.
  std::vector<const Expr*> stack = {r->get()};
  int compares = 0;
  while (!stack.empty()) {
    const Expr* e = stack.back();
    stack.pop_back();
    if (e->kind == Expr::Kind::kCompare) ++compares;
    for (const auto& c : e->children) stack.push_back(c.get());
  }
  EXPECT_EQ(compares, 5000);
}

TEST(FilterTest, NestingUpToTheLimitIsAccepted) {
  std::string text = std::string(kMaxNestingDepth, '(') + "a eq 1" + std::string(kMaxNestingDepth, ')');
  EXPECT_EQ(FilterOrError(text), "eq(a,int:1)");
  std::string nots;
  for (int i = 0; i < kMaxNestingDepth - 1; ++i) nots += "not ";
  EXPECT_TRUE(ParseFilter(nots + "(a eq 1)", {}).ok());
}

TEST(FilterTest, DeepNestingIsAnErrorNotACrash) {
  for (const std::string& text :
       {std::string(10000, '('), std::string(10000, '(') + "a eq 1" + std::string(10000, ')'),
        std::string(kMaxNestingDepth + 1, '(') + "a eq 1" + std::string(kMaxNestingDepth + 1, ')')}) {
    auto r = ParseFilter(text, {});
    ExpectQueryError(r.status(), text.substr(0, 20));
    EXPECT_NE(r.status().message().find("nesting is deeper than 100 levels"), std::string::npos)
        << r.status().message();
  }
  std::string nots;
  for (int i = 0; i < 10000; ++i) nots += "not ";
  ExpectQueryError(ParseFilter(nots + "a", {}).status(), "not not …");
  std::string lambdas;
  for (int i = 0; i < 5000; ++i) lambdas += "n/any(x:";
  ExpectQueryError(ParseFilter(lambdas, {}).status(), "n/any(x:n/any(x: …");
  std::string calls;
  for (int i = 0; i < 5000; ++i) calls += "contains(";
  ExpectQueryError(ParseFilter(calls, {}).status(), "contains(contains( …");
}

TEST(FilterTest, AliasesResolve) {
  AliasMap aliases = {{"@p1", "'Contoso'"},
                      {"@p2", "revenue"},
                      {"@p3", " 100000 "},
                      {"@p4", "4026BE43-6D3C-E611-80D5-00155D2A68D1"},
                      {"@p5", "primarycontactid/fullname"},
                      {"@p6", "true"},
                      {"@p7", "['a','b']"},
                      {"@p8", "'createdon'"},
                      {"@p9", "null"}};
  EXPECT_EQ(FilterOrError("name eq @p1", aliases), "eq(name,'Contoso')");
  EXPECT_EQ(FilterOrError("@p2 gt @p3", aliases), "gt(revenue,int:100000)");
  EXPECT_EQ(FilterOrError("_ownerid_value eq @p4", aliases),
            "eq(_ownerid_value,guid:4026be43-6d3c-e611-80d5-00155d2a68d1)");
  EXPECT_EQ(FilterOrError("@p5 eq @p1", aliases), "eq(primarycontactid/fullname,'Contoso')");
  EXPECT_EQ(FilterOrError("donotemail eq @p6", aliases), "eq(donotemail,true)");
  EXPECT_EQ(FilterOrError("contains(@p2,@p1)", aliases), "contains(revenue,'Contoso')");
  EXPECT_EQ(FilterOrError("name eq @unassigned", aliases), "eq(name,null)");
  EXPECT_EQ(FilterOrError("name eq @p9", aliases), "eq(name,null)");
  EXPECT_EQ(FilterOrError("Microsoft.Dynamics.CRM.In(PropertyName='name',PropertyValues=@p7)", aliases),
            "qf:In(PropertyName='name',PropertyValues=['a','b'])");
  EXPECT_EQ(FilterOrError("Microsoft.Dynamics.CRM.LastXDays(PropertyName=@p8,PropertyValue=@p3)", aliases),
            "qf:LastXDays(PropertyName='createdon',PropertyValue=int:100000)");
  EXPECT_EQ(FilterOrError("Microsoft.Dynamics.CRM.Today(PropertyName=@nothing)", aliases),
            "qf:Today(PropertyName=null)");
}

TEST(FilterTest, BadAliasValuesAreErrors) {
  AliasMap aliases = {
      {"@bad", "'unterminated"}, {"@expr", "name eq 'x'"}, {"@arr", "['a',"}, {"@other", "@p1"}, {"@p1", "'x'"}};
  for (const char* text : {"name eq @bad", "name eq @expr", "name eq @other",
                           "Microsoft.Dynamics.CRM.In(PropertyName='a',PropertyValues=@arr)",
                           "Microsoft.Dynamics.CRM.In(PropertyName=@expr,PropertyValues=['a'])"}) {
    auto r = ParseFilter(text, aliases);
    ExpectQueryError(r.status(), text);
    EXPECT_NE(r.status().message().find("parameter alias"), std::string::npos) << r.status().message();
  }
}

TEST(FilterTest, AliasExpansionIsBounded) {
  AliasMap aliases = {{"@big", "'" + std::string(100000, 'x') + "'"}};
  std::string text = "a eq @big";
  for (int i = 0; i < 20; ++i) text += " or a eq @big";
  auto r = ParseFilter(text, aliases);
  ExpectQueryError(r.status(), "many @big");
  EXPECT_NE(r.status().message().find("1 MiB"), std::string::npos);
}

TEST(FilterTest, MessagesNameTheProblemAndPosition) {
  EXPECT_EQ(FilterOrError("name foo"),
            "ERROR: Syntax error at position 5 in '$filter': expected an operator after 'name' but found 'foo'.");
  EXPECT_EQ(FilterOrError("name eq"),
            "ERROR: Syntax error at position 7 in '$filter': expected an expression after 'eq' but the input ends.");
  EXPECT_EQ(FilterOrError("tolower(name) eq 'x'"),
            "ERROR: Syntax error at position 0 in '$filter': the function 'tolower' is not supported; $filter "
            "supports only contains, startswith and endswith.");
  EXPECT_EQ(FilterOrError("frobnicate(name)"),
            "ERROR: Syntax error at position 0 in '$filter': unknown function 'frobnicate'.");
  EXPECT_EQ(FilterOrError("name eq 'abc"),
            "ERROR: Syntax error at position 8 in '$filter': unterminated string literal.");
  EXPECT_EQ(FilterOrError("(a eq 1"),
            "ERROR: Syntax error at position 7 in '$filter': expected ')' to close the '(' at position 0 but the "
            "input ends.");
  EXPECT_EQ(FilterOrError("not Microsoft.Dynamics.CRM.In(PropertyName='name',PropertyValues=['a'])"),
            "ERROR: Not operator along with the Custom Named Condition operators is not allowed");
  EXPECT_EQ(
      FilterOrError("name EQ 'x'"),
      "ERROR: Syntax error at position 5 in '$filter': operators are case-sensitive; write 'eq' instead of 'EQ'.");
  EXPECT_EQ(FilterOrError("a/ eq 1"),
            "ERROR: Syntax error at position 3 in '$filter': expected a property name after '/' but found 'eq'.");
  EXPECT_EQ(FilterOrError("a in ('x','y')"),
            "ERROR: Syntax error at position 2 in '$filter': the operator 'in' is not supported.");
  EXPECT_EQ(FilterOrError("year(createdon) eq 2020"),
            "ERROR: Syntax error at position 0 in '$filter': the function 'year' is not supported; $filter supports "
            "only contains, startswith and endswith.");
}

TEST(FilterTest, MessagesAreValidUtf8AndBounded) {
  std::string bad = "a eq 1 \xff\xfe\xc3";
  auto r = ParseFilter(bad, {});
  ExpectQueryError(r.status(), "invalid UTF-8");
  EXPECT_EQ(r.status().message().find('\xff'), std::string::npos) << r.status().message();
  EXPECT_EQ(FilterOrError("name eq 'x' Zürich"),
            "ERROR: Syntax error at position 12 in '$filter': expected an operator after ''x'' but found 'Zürich'.");
  // Regression (fuzzer): a query-function name with invalid UTF-8 was echoed raw.
  auto qf = ParseFilter("Microsoft.Dynamics.CRM.I\xd7(n=1]", {});
  ExpectQueryError(qf.status(), "bad qf name");
  EXPECT_EQ(qf.status().message().find('\xd7'), std::string::npos) << qf.status().message();
  std::string long_name(1000, 'n');
  auto l = ParseFilter("x eq 1 " + long_name, {});
  EXPECT_LT(l.status().message().size(), 250u) << l.status().message();
}

// ---------------------------------------------------------------------------------------------
// $filter: malformed input

class FilterInvalidTest : public testing::TestWithParam<const char*> {};

TEST_P(FilterInvalidTest, IsQueryError) {
  const char* text = GetParam();
  auto r = ParseFilter(text, {});
  ExpectQueryError(r.status(), text);
}

INSTANTIATE_TEST_SUITE_P(
    Filter, FilterInvalidTest,
    testing::Values("", "   ", "name eq", "name eq 'x' and", "name eq 'x' or", "and name eq 'x'",
                    "name eq 'x' and or b eq 1", "not", "(", ")", "(a eq 1", "a eq 1)", "(a eq 1))", "((a eq 1)", "()",
                    "name eq 'abc", "name eq 'abc''", "name eq \"abc\"", "name EQ 'x'", "name eq 'x' AND b eq 1",
                    "name eq 'x' foo", "name 'x'", "a eq 1 eq 2", "a eq b eq c", "a eq", "eq 1", "1", "'x'", "null",
                    "tolower(name) eq 'x'", "substring(name,1) eq 'x'", "year(createdon) eq 2020", "length(name) gt 3",
                    "frobnicate(name)", "geo.distance(a,b) lt 5", "Foo.Bar.In(PropertyName='a')", "contains(name)",
                    "contains(name,'x','y')", "contains('x',name)", "contains(name,othercolumn)", "contains(name 'x')",
                    "contains(name,'x'", "startswith(,'x')", "name eq guid'4026be43-6d3c-e611-80d5-00155d2a68d1'",
                    "createdon gt datetime'2020-01-01'", "createdon gt 2023-13-01", "createdon gt 2023-02-30",
                    "createdon gt 2023-01-01T25:00:00Z", "createdon gt 2023-01-01T10",
                    "createdon gt 2023-01-01T10:00:00+5", "a eq 1.", "a eq 1e", "a eq 12abc", "a eq 0x10",
                    "a eq 4026be43-6d3c-e611-80d5-00155d2a68d", "a eq 4026be43-6d3c-e611-80d5-00155d2a68d1x", "a eq -",
                    "a eq @", "a eq 1 add 2", "a has Microsoft.Dynamics.CRM.X'Y'", "a/ eq 1", "/a eq 1", "a//b eq 1",
                    "a eq 1 /", "Tasks/any(", "Tasks/any(t)", "Tasks/any(t:)", "Tasks/any(t:t/x eq 1", "Tasks/all()",
                    "any(t:t/x eq 1)", "Tasks/any(t:t/x eq 1)/x eq 1", "Tasks/any(1:t/x eq 1)",
                    "Tasks/any(t:t/x eq 1) eq 5", "not Microsoft.Dynamics.CRM.Today(PropertyName='createdon')",
                    "not (Microsoft.Dynamics.CRM.Today(PropertyName='createdon'))",
                    "Microsoft.Dynamics.CRM.Today(PropertyName='createdon') eq false",
                    "Microsoft.Dynamics.CRM.In(PropertyName='a',PropertyValues=['a',])",
                    "Microsoft.Dynamics.CRM.In(PropertyName='a',PropertyValues=['a'",
                    "Microsoft.Dynamics.CRM.In(PropertyName='a',PropertyValues=[['a']])",
                    "Microsoft.Dynamics.CRM.In(PropertyName='a',PropertyName='b')",
                    "Microsoft.Dynamics.CRM.In(PropertyName)", "Microsoft.Dynamics.CRM.In(PropertyName=)",
                    "Microsoft.Dynamics.CRM.In(PropertyName='a' PropertyValues=['b'])", "Microsoft.Dynamics.CRM.(x=1)",
                    "Microsoft.Dynamics.CRM.In(PropertyName=\"a\")", "name eq 'x' and (", "not 5", "a eq (b eq 1)",
                    "(a eq 1) eq true", "name eq 'x'\x01", "name eq {}", "name $eq 'x'", "a eq 1;b eq 2", "a eq [1]",
                    "a eq ]", "a eq 'x' ,", "a eq 'x':", "a=1", "a eq Microsoft.Dynamics.CRM.X'unterminated",
                    "a eq \"\\q\"", "a eq 1 or", "not not", "(((((((((("));

// ---------------------------------------------------------------------------------------------
// Literals

struct LiteralCase {
  const char* input;
  Literal::Kind kind;
  const char* text;
};

class LiteralTest : public testing::TestWithParam<LiteralCase> {};

TEST_P(LiteralTest, Parses) {
  const LiteralCase& c = GetParam();
  auto r = ParseLiteral(c.input);
  ASSERT_TRUE(r.ok()) << c.input << ": " << r.status().message();
  EXPECT_EQ(r->kind, c.kind) << c.input;
  EXPECT_EQ(r->text, c.text) << c.input;
}

INSTANTIATE_TEST_SUITE_P(
    Literal, LiteralTest,
    testing::Values(
        LiteralCase{"null", Literal::Kind::kNull, ""}, LiteralCase{"true", Literal::Kind::kBool, "true"},
        LiteralCase{"false", Literal::Kind::kBool, "false"}, LiteralCase{"0", Literal::Kind::kInteger, "0"},
        LiteralCase{"-42", Literal::Kind::kInteger, "-42"}, LiteralCase{"+42", Literal::Kind::kInteger, "42"},
        LiteralCase{" 1033 ", Literal::Kind::kInteger, "1033"}, LiteralCase{"3.25", Literal::Kind::kDecimal, "3.25"},
        LiteralCase{"-2e3", Literal::Kind::kDecimal, "-2e3"}, LiteralCase{"1.5m", Literal::Kind::kDecimal, "1.5"},
        LiteralCase{"7M", Literal::Kind::kDecimal, "7"}, LiteralCase{"'hello'", Literal::Kind::kString, "hello"},
        LiteralCase{"'it''s'", Literal::Kind::kString, "it's"}, LiteralCase{"''", Literal::Kind::kString, ""},
        LiteralCase{"'Pacific Standard Time'", Literal::Kind::kString, "Pacific Standard Time"},
        LiteralCase{"'00000000-0000-0000-0000-000000000001'", Literal::Kind::kString,
                    "00000000-0000-0000-0000-000000000001"},
        LiteralCase{"7EB682F1-CA75-E511-80D4-00155D2A68D1", Literal::Kind::kGuid,
                    "7eb682f1-ca75-e511-80d4-00155d2a68d1"},
        LiteralCase{"{7EB682F1-CA75-E511-80D4-00155D2A68D1}", Literal::Kind::kGuid,
                    "7eb682f1-ca75-e511-80d4-00155d2a68d1"},
        LiteralCase{"2023-01-01T00:00:00Z", Literal::Kind::kDateTime, "2023-01-01T00:00:00Z"},
        LiteralCase{"2023-01-01T00:00:00.1234567+01:00", Literal::Kind::kDateTime, "2023-01-01T00:00:00.1234567+01:00"},
        LiteralCase{"2023-01-01", Literal::Kind::kDate, "2023-01-01"},
        LiteralCase{"Microsoft.Dynamics.CRM.TargetFieldType'ValidForCreate'", Literal::Kind::kEnum,
                    "TargetFieldType'ValidForCreate'"},
        LiteralCase{"Microsoft.Dynamics.CRM.OwnershipTypes'UserOwned'", Literal::Kind::kEnum,
                    "OwnershipTypes'UserOwned'"}));

TEST(LiteralTest, RejectsNonLiterals) {
  for (const char* text :
       {"", "  ", "abc", "@p1", "'x", "'x' 'y'", "1 2", "[1]", "{'a':1}", "\"x\"", "guid'x'", "2023-01-32", "1.2.3",
        "--1", "True", "NULL", "(1)", "00000000-0000-0000-0000-00000000000g"}) {
    ExpectQueryError(ParseLiteral(text).status(), text);
  }
}

// ---------------------------------------------------------------------------------------------
// $orderby, $select, $top

TEST(OrderByTest, Parses) {
  auto r = ParseOrderBy("revenue asc,name desc, primarycontactid/fullname ,_ownerid_value", {});
  ASSERT_TRUE(r.ok()) << r.status().message();
  ASSERT_EQ(r->size(), 4u);
  EXPECT_EQ(JoinPath((*r)[0].path), "revenue");
  EXPECT_FALSE((*r)[0].descending);
  EXPECT_EQ(JoinPath((*r)[1].path), "name");
  EXPECT_TRUE((*r)[1].descending);
  EXPECT_EQ(JoinPath((*r)[2].path), "primarycontactid/fullname");
  EXPECT_FALSE((*r)[2].descending);
  EXPECT_EQ(JoinPath((*r)[3].path), "_ownerid_value");
}

TEST(OrderByTest, Aliases) {
  AliasMap aliases = {{"@p1", "name"}, {"@p2", "primarycontactid/fullname"}};
  auto r = ParseOrderBy("@p1 desc,@p2", aliases);
  ASSERT_TRUE(r.ok()) << r.status().message();
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ(JoinPath((*r)[0].path), "name");
  EXPECT_TRUE((*r)[0].descending);
  EXPECT_EQ(JoinPath((*r)[1].path), "primarycontactid/fullname");
  ExpectQueryError(ParseOrderBy("@missing", aliases).status(), "@missing");
  ExpectQueryError(ParseOrderBy("@p1", {{"@p1", "'name'"}}).status(), "@p1='name'");
}

TEST(OrderByTest, RejectsMalformed) {
  for (const char* text :
       {"", " ", ",", "name,", ",name", "name asc desc", "name DESC", "name ascending", "tolower(name)", "name/",
        "'name'", "5", "name,,revenue", "name eq 1", "name;revenue", "name asc,"}) {
    ExpectQueryError(ParseOrderBy(text, {}).status(), text);
  }
}

TEST(SelectTest, Parses) {
  auto r = ParseSelect("name, _primarycontactid_value ,revenue,\taccountid");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(*r, (std::vector<std::string>{"name", "_primarycontactid_value", "revenue", "accountid"}));
  EXPECT_EQ(*ParseSelect("name"), std::vector<std::string>{"name"});
}

TEST(SelectTest, RejectsMalformed) {
  for (const char* text : {"", " ", "name,", ",name", "name,,revenue", "name revenue", "primarycontactid/fullname",
                           "'name'", "na-me", "1name", "name;revenue", "name(x)"}) {
    ExpectQueryError(ParseSelect(text).status(), text);
  }
  EXPECT_EQ(ParseSelect("name,,x").status().message(), "Syntax error at position 5 in '$select': empty item.");
}

TEST(TopTest, ParsesNonNegativeIntegers) {
  EXPECT_EQ(*ParseTop("0"), 0);
  EXPECT_EQ(*ParseTop("5"), 5);
  EXPECT_EQ(*ParseTop(" 5000 "), 5000);
  EXPECT_EQ(*ParseTop("9223372036854775807"), INT64_MAX);
  for (const char* text : {"", "-1", "+1", "1.5", "abc", "1e3", "9223372036854775808", "99999999999999999999", "1 2"})
    ExpectQueryError(ParseTop(text).status(), text);
}

// ---------------------------------------------------------------------------------------------
// $expand

TEST(ExpandTest, SimpleListAndRef) {
  auto r = ParseExpand("primarycontactid, createdby/$ref ,Account_Tasks", {});
  ASSERT_TRUE(r.ok()) << r.status().message();
  ASSERT_EQ(r->size(), 3u);
  EXPECT_EQ((*r)[0].nav, "primarycontactid");
  EXPECT_FALSE((*r)[0].ref);
  EXPECT_EQ((*r)[1].nav, "createdby");
  EXPECT_TRUE((*r)[1].ref);
  EXPECT_EQ((*r)[2].nav, "Account_Tasks");
}

TEST(ExpandTest, OptionsAndThreeLevelsOfNesting) {
  auto r = ParseExpand(
      "primarycontactid($select=fullname,emailaddress1;$expand=createdby($select=fullname;"
      "$expand=businessunitid($select=name;$filter=name ne 'a,b;c(d)'))),"
      "Account_Tasks($select=subject;$filter=contains(subject,'x;y') and statecode eq 0;$orderby=createdon "
      "desc;$top=5)",
      {});
  ASSERT_TRUE(r.ok()) << r.status().message();
  ASSERT_EQ(r->size(), 2u);
  const data::Expand& pc = (*r)[0];
  EXPECT_EQ(pc.nav, "primarycontactid");
  EXPECT_EQ(pc.options.select, (std::vector<std::string>{"fullname", "emailaddress1"}));
  ASSERT_EQ(pc.options.expand.size(), 1u);
  const data::Expand& cb = pc.options.expand[0];
  EXPECT_EQ(cb.nav, "createdby");
  EXPECT_EQ(cb.options.select, std::vector<std::string>{"fullname"});
  ASSERT_EQ(cb.options.expand.size(), 1u);
  const data::Expand& bu = cb.options.expand[0];
  EXPECT_EQ(bu.nav, "businessunitid");
  EXPECT_EQ(bu.options.select, std::vector<std::string>{"name"});
  ASSERT_TRUE(bu.options.filter);
  EXPECT_EQ(Show(*bu.options.filter), "ne(name,'a,b;c(d)')");

  const data::Expand& tasks = (*r)[1];
  EXPECT_EQ(tasks.nav, "Account_Tasks");
  ASSERT_TRUE(tasks.options.filter);
  EXPECT_EQ(Show(*tasks.options.filter), "and(contains(subject,'x;y'),eq(statecode,int:0))");
  ASSERT_EQ(tasks.options.orderby.size(), 1u);
  EXPECT_EQ(JoinPath(tasks.options.orderby[0].path), "createdon");
  EXPECT_TRUE(tasks.options.orderby[0].descending);
  EXPECT_EQ(tasks.options.top, 5);
  EXPECT_FALSE(pc.options.top.has_value());
}

TEST(ExpandTest, FilterWithQueryFunctionAndAlias) {
  AliasMap aliases = {{"@p1", "'x'"}};
  auto r = ParseExpand(
      "Account_Tasks($filter=Microsoft.Dynamics.CRM.In(PropertyName='subject',PropertyValues=[\"a,b\",'c;d']) or "
      "subject eq @p1)",
      aliases);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(Show(*(*r)[0].options.filter),
            "or(qf:In(PropertyName='subject',PropertyValues=['a,b','c;d']),eq(subject,'x'))");
}

TEST(ExpandTest, ToleratesSpacesAroundOptions) {
  auto r = ParseExpand(" a( $select=x ; $top=2 ) , b/$ref ", {});
  ASSERT_TRUE(r.ok()) << r.status().message();
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[0].options.select, std::vector<std::string>{"x"});
  EXPECT_EQ((*r)[0].options.top, 2);
  EXPECT_TRUE((*r)[1].ref);
}

TEST(ExpandTest, UnsupportedOptionsAreNamed) {
  for (const char* opt : {"$skip", "$count", "$search", "$levels"}) {
    std::string text = std::string("Account_Tasks(") + opt + "=1)";
    auto r = ParseExpand(text, {});
    ExpectQueryError(r.status(), text);
    EXPECT_NE(r.status().message().find(opt), std::string::npos) << r.status().message();
    EXPECT_NE(r.status().message().find("not supported"), std::string::npos) << r.status().message();
  }
  auto r = ParseExpand("a($frobnicate=1)", {});
  ExpectQueryError(r.status(), "$frobnicate");
  EXPECT_NE(r.status().message().find("$frobnicate"), std::string::npos);
}

TEST(ExpandTest, NestedErrorsNameTheNavigation) {
  auto r = ParseExpand("a($expand=b($filter=name eq))", {});
  ExpectQueryError(r.status(), "nested");
  EXPECT_EQ(r.status().message(),
            "In $expand of 'a': In $expand of 'b': Syntax error at position 7 in '$filter': expected an expression "
            "after 'eq' but the input ends.");
}

TEST(ExpandTest, RejectsMalformed) {
  for (const char* text : {"",
                           " ",
                           ",",
                           "a,",
                           ",a",
                           "a,,b",
                           "a(",
                           "a)",
                           "a(($select=x)",
                           "a($select=x))",
                           "a()",
                           "a($select=x)b",
                           "a ($select=x)",
                           "a/$ref($select=x)",
                           "a/b",
                           "a/$count",
                           "a($select=)",
                           "a($select=x;)",
                           "a(;$select=x)",
                           "a($select)",
                           "a($select=x;$select=y)",
                           "a($top=-1)",
                           "a($top=x)",
                           "a($filter=)",
                           "a($filter=name eq 'x)",
                           "a($orderby=name sideways)",
                           "a($expand=)",
                           "a($expand=b(c))",
                           "a(select=x)",
                           "a($SELECT=x)",
                           "'a'",
                           "a($filter=name eq \"x)",
                           "1a",
                           "a($expand=b($expand=c($top=1;$skip=2)))"}) {
    ExpectQueryError(ParseExpand(text, {}).status(), text);
  }
}

TEST(ExpandTest, DeepNestingIsAnError) {
  std::string text;
  for (int i = 0; i < 500; ++i) text += "a($expand=";
  text += "b";
  for (int i = 0; i < 500; ++i) text += ")";
  ExpectQueryError(ParseExpand(text, {}).status(), "deep expand");
  // Expand and filter nesting share one budget.
  std::string mixed;
  for (int i = 0; i < 60; ++i) mixed += "a($expand=";
  mixed += "b($filter=" + std::string(60, '(') + "x eq 1" + std::string(60, ')') + ")";
  for (int i = 0; i < 60; ++i) mixed += ")";
  ExpectQueryError(ParseExpand(mixed, {}).status(), "mixed");
}

// ---------------------------------------------------------------------------------------------
// Resource paths

std::string ShowPath(std::string_view path, const AliasMap& aliases = {}) {
  auto r = ParseResourcePath(path, aliases);
  if (!r.ok()) return "ERROR: " + r.status().message();
  std::string s;
  for (const Segment& seg : *r) {
    if (!s.empty()) s += " | ";
    s += seg.name;
    if (seg.has_parens) {
      s += '(';
      for (size_t i = 0; i < seg.keys.size(); ++i) {
        if (i) s += ',';
        if (!seg.keys[i].name.empty()) s += seg.keys[i].name + "=";
        s += Show(seg.keys[i].value);
        if (seg.keys[i].value.kind == Literal::Kind::kNull && seg.keys[i].raw != "null") s += " raw:" + seg.keys[i].raw;
      }
      s += ')';
    }
  }
  return s;
}

struct PathCase {
  const char* input;
  const char* expected;
};

class PathValidTest : public testing::TestWithParam<PathCase> {};

TEST_P(PathValidTest, Parses) {
  AliasMap aliases = {{"@p1", "[\"account\",\"contact\"]"},
                      {"@p2", "'Pacific Standard Time'"},
                      {"@p3", "1033"},
                      {"@tid", "{'@odata.id':'contacts(00000000-0000-0000-0000-000000000002)'}"},
                      {"@ft", "Microsoft.Dynamics.CRM.TargetFieldType'ValidForCreate'"}};
  EXPECT_EQ(ShowPath(GetParam().input, aliases), GetParam().expected) << GetParam().input;
}

INSTANTIATE_TEST_SUITE_P(
    Path, PathValidTest,
    testing::Values(
        PathCase{"", ""}, PathCase{"/", ""}, PathCase{"accounts", "accounts"}, PathCase{"accounts/", "accounts"},
        PathCase{"//accounts//", "accounts"},
        PathCase{"accounts(00000000-0000-0000-0000-000000000001)",
                 "accounts(guid:00000000-0000-0000-0000-000000000001)"},
        PathCase{"accounts({7EB682F1-CA75-E511-80D4-00155D2A68D1})",
                 "accounts(guid:7eb682f1-ca75-e511-80d4-00155d2a68d1)"},
        PathCase{"accounts(7EB682F1-CA75-E511-80D4-00155D2A68D1)",
                 "accounts(guid:7eb682f1-ca75-e511-80d4-00155d2a68d1)"},
        PathCase{"accounts(accountnumber='A1')", "accounts(accountnumber='A1')"},
        PathCase{"contacts(firstname='Joe',emailaddress1='a@b.c')", "contacts(firstname='Joe',emailaddress1='a@b.c')"},
        PathCase{"contacts(firstname='Joe', emailaddress1 = 'a@b.c' )",
                 "contacts(firstname='Joe',emailaddress1='a@b.c')"},
        PathCase{"example_records(example_key1=2,example_key2=2)",
                 "example_records(example_key1=int:2,example_key2=int:2)"},
        PathCase{"accounts(_primarycontactid_value=00000000-0000-0000-0000-000000000001)",
                 "accounts(_primarycontactid_value=guid:00000000-0000-0000-0000-000000000001)"},
        PathCase{"accounts(accountid=00000000-0000-0000-0000-000000000001)",
                 "accounts(accountid=guid:00000000-0000-0000-0000-000000000001)"},
        PathCase{"accounts(name='a)b,c=d/e''f')", "accounts(name='a)b,c=d/e'f')"},
        PathCase{"accounts(00000000-0000-0000-0000-000000000001)/name",
                 "accounts(guid:00000000-0000-0000-0000-000000000001) | name"},
        PathCase{"accounts(00000000-0000-0000-0000-000000000001)/primarycontactid/$ref",
                 "accounts(guid:00000000-0000-0000-0000-000000000001) | primarycontactid | $ref"},
        PathCase{"accounts(00000000-0000-0000-0000-000000000001)/contact_customer_accounts("
                 "00000000-0000-0000-0000-000000000002)/$ref",
                 "accounts(guid:00000000-0000-0000-0000-000000000001) | contact_customer_accounts(guid:"
                 "00000000-0000-0000-0000-000000000002) | $ref"},
        PathCase{"accounts(00000000-0000-0000-0000-000000000001)/entityimage/$value",
                 "accounts(guid:00000000-0000-0000-0000-000000000001) | entityimage | $value"},
        PathCase{"accounts/$count", "accounts | $count"},
        PathCase{"accounts/Microsoft.Dynamics.CRM.CreateMultiple", "accounts | Microsoft.Dynamics.CRM.CreateMultiple"},
        PathCase{"WhoAmI()", "WhoAmI()"}, PathCase{"WhoAmI", "WhoAmI"},
        PathCase{"Microsoft.Dynamics.CRM.WhoAmI()", "Microsoft.Dynamics.CRM.WhoAmI()"},
        PathCase{"RetrieveTotalRecordCount(EntityNames=@p1)",
                 "RetrieveTotalRecordCount(EntityNames=null raw:[\"account\",\"contact\"])"},
        PathCase{"RetrieveTotalRecordCount(EntityNames=[\"account\",\"con)tact\"])",
                 "RetrieveTotalRecordCount(EntityNames=null raw:[\"account\",\"con)tact\"])"},
        PathCase{"GetTimeZoneCodeByLocalizedName(LocalizedStandardName=@p2,LocaleId=@p3)",
                 "GetTimeZoneCodeByLocalizedName(LocalizedStandardName='Pacific Standard Time',LocaleId=int:1033)"},
        PathCase{"GetTimeZoneCodeByLocalizedName(LocalizedStandardName='Pacific Standard Time',LocaleId=1033)",
                 "GetTimeZoneCodeByLocalizedName(LocalizedStandardName='Pacific Standard Time',LocaleId=int:1033)"},
        PathCase{"InitializeFrom(EntityMoniker=@tid,TargetEntityName='account',TargetFieldType=@ft)",
                 "InitializeFrom(EntityMoniker=null raw:{'@odata.id':'contacts(00000000-0000-0000-0000-000000000002)'},"
                 "TargetEntityName='account',TargetFieldType=enum:TargetFieldType'ValidForCreate')"},
        PathCase{"Fn(A=@unassigned)", "Fn(A=null)"},
        PathCase{"EntityDefinitions(LogicalName='account')/Attributes(LogicalName='name')/"
                 "Microsoft.Dynamics.CRM.PicklistAttributeMetadata",
                 "EntityDefinitions(LogicalName='account') | Attributes(LogicalName='name') | "
                 "Microsoft.Dynamics.CRM.PicklistAttributeMetadata"},
        PathCase{"$metadata", "$metadata"}, PathCase{"$batch", "$batch"}, PathCase{"$1/lastname", "$1 | lastname"},
        PathCase{"accounts(123)", "accounts(int:123)"}, PathCase{"accounts('abc')", "accounts('abc')"},
        PathCase{"accounts()", "accounts()"}, PathCase{"accounts( )", "accounts()"},
        PathCase{"systemusers(00000000-0000-0000-0000-000000000001)/Microsoft.Dynamics.CRM.RetrieveUserPrivileges",
                 "systemusers(guid:00000000-0000-0000-0000-000000000001) | "
                 "Microsoft.Dynamics.CRM.RetrieveUserPrivileges"}));

TEST(PathTest, KeepsRawText) {
  auto r = ParseResourcePath("contacts(firstname='Jo''e',age=5)", {});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)[0].keys[0].raw, "'Jo''e'");
  EXPECT_EQ((*r)[0].keys[1].raw, "5");
  auto a = ParseResourcePath("Fn(X=@a)", {{"@a", " 'v' "}});
  ASSERT_TRUE(a.ok());
  EXPECT_EQ((*a)[0].keys[0].raw, "'v'");
  EXPECT_EQ((*a)[0].keys[0].value.text, "v");
  auto n = ParseResourcePath("Fn(X=@none)", {});
  ASSERT_TRUE(n.ok());
  EXPECT_EQ((*n)[0].keys[0].raw, "null");
}

TEST(PathTest, RejectsMalformed) {
  for (const char* text : {"accounts(",
                           "accounts)",
                           "accounts(1))",
                           "accounts((1)",
                           "accounts('abc)",
                           "accounts(abc)",
                           "accounts(1)x",
                           "accounts(1)(2)",
                           "accounts(1) /name",
                           "accounts(a=1,a=2)",
                           "accounts(a=1,2)",
                           "accounts(1,a=2)",
                           "accounts(a=)",
                           "accounts(=1)",
                           "accounts(a b=1)",
                           "accounts(a=1,)",
                           "accounts(,)",
                           "accounts(a=[1)",
                           "accounts(a=[1]x)",
                           "accounts(a={'x':1)",
                           "(1)",
                           "/(1)",
                           "acc ounts",
                           "acc'ounts",
                           "$",
                           "$meta-data",
                           "accounts(a=@)",
                           "accounts(a=@p 1)",
                           "accounts(guid'00000000-0000-0000-0000-000000000001')",
                           "accounts(name=\"x\")",
                           "Fn(X=@bad)",
                           "accounts(a='x'y')",
                           "accounts.(1)",
                           "a..b",
                           ".a"}) {
    auto r = ParseResourcePath(text, {{"@bad", "'unterminated"}});
    ExpectQueryError(r.status(), text);
  }
  auto r = ParseResourcePath("accounts(1)/contacts(1)x/y", {});
  EXPECT_NE(r.status().message().find("contacts(1)x"), std::string::npos) << r.status().message();
}

// ---------------------------------------------------------------------------------------------
// Query string

TEST(QueryStringTest, DecodesInOrder) {
  auto r = ParseQueryString(
      "$select=name,revenue&$filter=name%20eq%20%27O%27%27Neil%27+and+x%2By&&@p1=%5B%22a%22%5D&$count&%24top=5&=v");
  ASSERT_TRUE(r.ok()) << r.status().message();
  std::vector<std::pair<std::string, std::string>> want = {{"$select", "name,revenue"},
                                                           {"$filter", "name eq 'O''Neil' and x+y"},
                                                           {"@p1", "[\"a\"]"},
                                                           {"$count", ""},
                                                           {"$top", "5"},
                                                           {"", "v"}};
  EXPECT_EQ(*r, want);
  EXPECT_TRUE(ParseQueryString("")->empty());
  EXPECT_EQ((*ParseQueryString("a=b=c"))[0].second, "b=c");
}

TEST(QueryStringTest, RejectsBadEscapes) {
  for (const char* text : {"a=%", "a=%2", "a=%zz", "%g1=b", "a=1&b=%%"})
    ExpectQueryError(ParseQueryString(text).status(), text);
}

// ---------------------------------------------------------------------------------------------
// Robustness: random and mutated input never crashes and only fails with kQueryError.

TEST(RobustnessTest, RandomInputFailsCleanly) {
  std::mt19937 rng(12345);
  const std::string alphabet = "()[]{}'\",;:=/@$ -+.eqandornt0123456789abcdefT:Z";
  const std::vector<std::string> seeds = {"a eq 1 and (b ne 'x' or not contains(c,'y'))", "Tasks/any(t:t/x eq 1)",
                                          "Microsoft.Dynamics.CRM.In(PropertyName='n',PropertyValues=[\"a\",'b',1])",
                                          "p($select=a,b;$filter=c eq 1;$expand=q($top=2))",
                                          "accounts(a='x',b=00000000-0000-0000-0000-000000000001)/x"};
  AliasMap aliases = {{"@p1", "'x'"}, {"@p2", "[1,2]"}, {"@p3", "name"}};
  for (int i = 0; i < 20000; ++i) {
    std::string s = seeds[rng() % seeds.size()];
    int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      size_t pos = s.empty() ? 0 : rng() % (s.size() + 1);
      switch (rng() % 3) {
        case 0:
          s.insert(s.begin() + static_cast<std::ptrdiff_t>(pos), alphabet[rng() % alphabet.size()]);
          break;
        case 1:
          if (pos < s.size()) s.erase(pos, 1);
          break;
        default:
          if (pos < s.size()) s[pos] = static_cast<char>(rng() % 256);
          break;
      }
    }
    for (const Status& st :
         {ParseFilter(s, aliases).status(), ParseExpand(s, aliases).status(), ParseResourcePath(s, aliases).status(),
          ParseOrderBy(s, aliases).status(), ParseLiteral(s).status(), ParseSelect(s).status()}) {
      if (!st.ok()) {
        EXPECT_EQ(st.error_code(), err::kQueryError) << s << " → " << st.message();
      }
    }
  }
}

}  // namespace
}  // namespace tributary::odata
