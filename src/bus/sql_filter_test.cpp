#include <gtest/gtest.h>

#include <string>

#include "tributary/base/guid.h"
#include "tributary/bus/filter.h"
#include "tributary/bus/rule_json.h"

namespace tributary::bus {
namespace {

PropertyValue S(std::string s) { return PropertyValue{std::move(s)}; }
PropertyValue I(int64_t i) { return PropertyValue{i}; }
PropertyValue D(double d) { return PropertyValue{d}; }
PropertyValue B(bool b) { return PropertyValue{b}; }

MessageProperties Order() {
  MessageProperties m;
  m.message_id = "m-1";
  m.correlation_id = "high";
  m.subject = "ABCdef";
  m.to = "Store5";
  m.reply_to = "johndoe@contoso.com";
  m.content_type = "application/json";
  m.session_id = "s-1";
  m.sequence_number = 42;
  m.enqueued_time = Timestamp{1'700'000'000'000};
  m.application = {{"color", S("blue")},
                   {"quantity", I(10)},
                   {"price", D(2.5)},
                   {"priority", S("high")},
                   {"StoreId", S("Store2")},
                   {"flag", B(true)},
                   {"nothing", PropertyValue{}},
                   {"Property With Space", S("x")},
                   {"HR-EmployeeID", I(7)},
                   {"http://schemas.microsoft.com/xrm/2011/Claims/EntityLogicalName", S("account")}};
  return m;
}

// Parses and evaluates; a parse failure fails the test.
bool Match(std::string_view expr, const MessageProperties& m = Order()) {
  auto f = ParseSqlFilter(expr);
  EXPECT_TRUE(f.ok()) << expr << ": " << f.status().message();
  if (!f.ok()) return false;
  auto r = f->Evaluate(m);
  EXPECT_TRUE(r.ok()) << expr << ": " << r.status().message();
  return r.ok() && *r;
}

std::string ParseError(std::string_view expr) {
  auto f = ParseSqlFilter(expr);
  EXPECT_FALSE(f.ok()) << expr;
  if (f.ok()) return {};
  EXPECT_EQ(f.status().code(), Code::kInvalidArgument);
  return f.status().message();
}

TEST(SqlFilterTest, DocumentationExamples) {
  EXPECT_TRUE(Match("sys.Label LIKE 'ABC%'"));
  EXPECT_FALSE(Match("sys.Label LIKE '%bus%'"));
  EXPECT_TRUE(Match("color = 'blue' AND quantity = 10"));
  EXPECT_TRUE(Match("color='blue' AND quantity=10"));
  EXPECT_FALSE(Match("user.color='red'"));
  EXPECT_TRUE(Match("StoreId IN ('Store1', 'Store2', 'Store3')"));
  EXPECT_TRUE(Match("StoreId IN('Store1','Store2','Store3')"));
  EXPECT_TRUE(Match("sys.To IN ('Store5','Store6','Store7') OR StoreId = 'Store8'"));
  EXPECT_FALSE(
      Match("sys.To NOT IN ('Store1','Store2','Store3','Store4','Store5','Store6','Store7','Store8') OR StoreId NOT "
            "IN ('Store1','Store2','Store3','Store4','Store5','Store6','Store7','Store8')"));
  EXPECT_TRUE(Match("sys.CorrelationId = 'high' AND priority = 'high' AND (importance IS NULL OR importance = 'x')"));
  EXPECT_TRUE(Match("sys.messageid = 'm-1'"));
  EXPECT_TRUE(Match("sys.correlationid like 'hi%'"));
  EXPECT_TRUE(Match("sys.ReplyTo = 'johndoe@contoso.com' AND sys.Label = 'ABCdef' AND color = 'blue'"));
  EXPECT_TRUE(Match("\"http://schemas.microsoft.com/xrm/2011/Claims/EntityLogicalName\" = 'account'"));
  EXPECT_TRUE(Match("[Property With Space] = 'x' AND [HR-EmployeeID] = 7"));
  EXPECT_TRUE(Match("user.[HR-EmployeeID] > 6"));
  EXPECT_TRUE(Match("quantity > 1 AND quantity > 2.08 AND price < 3"));
  EXPECT_TRUE(Match("EXISTS(user.color) AND EXISTS(color) AND NOT EXISTS(size)"));
  EXPECT_TRUE(Match("EXISTS(sys.CorrelationId) AND NOT EXISTS(sys.ContentType) = FALSE"));
}

TEST(SqlFilterTest, BooleanFilters) {
  EXPECT_TRUE(Match("1=1"));
  EXPECT_FALSE(Match("1=0"));
  EXPECT_TRUE(Match("TRUE"));
  EXPECT_FALSE(Match("FALSE"));
  EXPECT_TRUE(Match("true AND NOT false"));
  EXPECT_TRUE(Match("flag"));
  EXPECT_TRUE(Match("flag = TRUE"));
  EXPECT_FALSE(Match("flag <> TRUE"));
}

TEST(SqlFilterTest, KeywordsAndSystemNamesIgnoreCase) {
  EXPECT_TRUE(Match("SYS.LABEL like 'abc%' or Color Is Not Null"));
  EXPECT_TRUE(Match("sys.subject = 'ABCdef' and sys.Label = sys.SUBJECT"));
  EXPECT_TRUE(Match("exists(COLOR) AnD NoT (quantity iN (1, 2))"));
  // Application properties: exact name first, else ignoring case.
  EXPECT_TRUE(Match("COLOR = 'blue' AND storeid = 'Store2'"));
  MessageProperties m;
  m.application = {{"a", I(1)}, {"A", I(2)}};
  EXPECT_TRUE(Match("a = 1 AND A = 2", m));
}

TEST(SqlFilterTest, NullsAndUnknown) {
  // A missing property is unknown: neither it nor its negation matches.
  EXPECT_FALSE(Match("size = 5"));
  EXPECT_FALSE(Match("NOT (size = 5)"));
  EXPECT_FALSE(Match("size <> 5"));
  EXPECT_FALSE(Match("size + 1 > 0"));
  EXPECT_FALSE(Match("-size < 0"));
  EXPECT_FALSE(Match("size LIKE '%'"));
  EXPECT_FALSE(Match("size NOT LIKE '%'"));
  EXPECT_FALSE(Match("size IN (1, 2)"));
  EXPECT_FALSE(Match("size NOT IN (1, 2)"));
  EXPECT_TRUE(Match("size IS NULL AND nothing IS NULL AND color IS NOT NULL"));
  EXPECT_TRUE(Match("EXISTS(nothing) AND NOT EXISTS(size)"));
  EXPECT_FALSE(Match("nothing = NULL"));
  EXPECT_FALSE(Match("NULL = NULL"));
  // AND / OR truth tables with unknown.
  EXPECT_FALSE(Match("size = 1 AND 1 = 1"));
  EXPECT_FALSE(Match("NOT (size = 1 AND 1 = 1)"));
  EXPECT_TRUE(Match("NOT (size = 1 AND 1 = 0)"));  // U AND F = F
  EXPECT_TRUE(Match("size = 1 OR 1 = 1"));         // U OR T = T
  EXPECT_FALSE(Match("size = 1 OR 1 = 0"));        // U OR F = U
  EXPECT_FALSE(Match("NOT (size = 1 OR 1 = 0)"));
  // IN with an unknown item: no match either way unless an item is equal.
  EXPECT_FALSE(Match("quantity IN (1, size)"));
  EXPECT_FALSE(Match("quantity NOT IN (1, size)"));
  EXPECT_TRUE(Match("quantity IN (10, size)"));
  // System properties that are not set are NULL.
  MessageProperties empty;
  EXPECT_TRUE(Match("sys.CorrelationId IS NULL AND NOT EXISTS(sys.CorrelationId)", empty));
  EXPECT_FALSE(Match("sys.CorrelationId = 'x'", empty));
  EXPECT_TRUE(Match("EXISTS(sys.SequenceNumber) AND sys.SequenceNumber = 0", empty));
}

TEST(SqlFilterTest, NumbersAndArithmetic) {
  EXPECT_TRUE(Match("quantity / 3 = 3"));  // integer division
  EXPECT_TRUE(Match("quantity / 4.0 = 2.5"));
  EXPECT_TRUE(Match("quantity % 3 = 1 AND -quantity % 3 = -1"));
  EXPECT_TRUE(Match("quantity * 2 + 1 = 21 AND 1 + quantity * 2 = 21 AND (1 + quantity) * 2 = 22"));
  EXPECT_TRUE(Match("quantity - 3 - 2 = 5"));
  EXPECT_TRUE(Match("-quantity = -10 AND +quantity = 10 AND - -quantity = 10"));
  EXPECT_TRUE(Match("quantity = 10.0 AND price = 2.5 AND price * 4 = quantity"));
  EXPECT_TRUE(Match("101.5E5 = 10150000 AND 0.5E-2 = 0.005 AND .5 = 0.5 AND 2. = 2"));
  EXPECT_TRUE(Match("9223372036854775807 > 0 AND -9223372036854775808 < 0"));
  EXPECT_TRUE(Match("9223372036854775807 + 1 < 0"));  // unchecked, as C#
  EXPECT_TRUE(Match("price % 1 = 0.5"));
  EXPECT_TRUE(Match("1 / 0.0 > 1000000"));
  EXPECT_TRUE(Match("sys.SequenceNumber >= 42 AND sys.SequenceNumber < 43"));
  EXPECT_TRUE(Match("sys.DeliveryCount = 0 AND sys.State = 0"));
}

TEST(SqlFilterTest, StringsAndTypes) {
  EXPECT_TRUE(Match("color + '-' + quantity = 'blue-10'"));
  EXPECT_TRUE(Match("'x' + price + flag = 'x2.5True'"));
  EXPECT_TRUE(Match("'it''s' = 'it' + '''s'"));
  EXPECT_TRUE(Match("color < 'red' AND color > 'BLUE'"));  // ordinal
  EXPECT_FALSE(Match("color = 'BLUE'"));                   // case-sensitive
  // Unrelated types are unequal and unordered.
  EXPECT_FALSE(Match("quantity = '10'"));
  EXPECT_TRUE(Match("quantity <> '10'"));
  EXPECT_FALSE(Match("quantity < '10'"));
  EXPECT_FALSE(Match("NOT (quantity < '10')"));
  EXPECT_FALSE(Match("color - 1 = 0"));
  EXPECT_FALSE(Match("flag > FALSE"));
  MessageProperties m;
  m.application = {{"t1", PropertyValue{Timestamp{1000}}}, {"t2", PropertyValue{Timestamp{2000}}}};
  m.enqueued_time = Timestamp{1500};
  EXPECT_TRUE(Match("t1 < t2 AND t1 < sys.EnqueuedTimeUtc AND sys.EnqueuedTimeUtc < t2 AND t1 <> t2", m));
}

TEST(SqlFilterTest, Like) {
  EXPECT_TRUE(Match("sys.Label LIKE 'ABC___'"));
  EXPECT_FALSE(Match("sys.Label LIKE 'ABC__'"));
  EXPECT_TRUE(Match("sys.Label LIKE '%def' AND sys.Label LIKE '%C%e%' AND sys.Label LIKE '%'"));
  EXPECT_FALSE(Match("sys.Label LIKE 'abc%'"));
  EXPECT_TRUE(Match("sys.Label NOT LIKE 'abc%'"));
  MessageProperties m;
  m.application = {{"p", S("ABC%")}, {"q", S("ABCD")}, {"u", S("h\xC3\xA9llo")}, {"e", S("")}};
  EXPECT_TRUE(Match("p LIKE 'ABC\\%' ESCAPE '\\'", m));
  EXPECT_FALSE(Match("q LIKE 'ABC\\%' ESCAPE '\\'", m));
  EXPECT_TRUE(Match("q LIKE 'ABC%' ESCAPE '\\'", m));
  EXPECT_TRUE(Match("p LIKE 'ABC!%' ESCAPE '!' AND p LIKE '%!%' ESCAPE '!' AND q NOT LIKE '%!%' ESCAPE '!'", m));
  EXPECT_TRUE(Match("'a!b' LIKE 'a!!b' ESCAPE '!'", m));
  EXPECT_TRUE(Match("u LIKE 'h_llo' AND u LIKE '_\xC3\xA9%'", m));  // _ is one character
  EXPECT_TRUE(Match("e LIKE '' AND e LIKE '%' AND NOT e LIKE '_'", m));
  EXPECT_TRUE(Match("'aaaaaaaaaaaaaaaaaaaaaaaaaaaaab' NOT LIKE '%a%a%a%a%a%a%a%a%a%a%c'", m));
  // Computed pattern and escape.
  EXPECT_TRUE(Match("q LIKE 'AB' + '%'", m));
  EXPECT_TRUE(Match("p LIKE 'ABCx%' ESCAPE p(q) + ''", m) == false);
  EXPECT_TRUE(Match("p LIKE 'ABC' + 'x%' ESCAPE 'x'", m));
  EXPECT_FALSE(Match("quantity LIKE '1%'"));  // not a string: unknown
}

TEST(SqlFilterTest, Functions) {
  EXPECT_TRUE(Match("property('color') = 'blue' AND p('user.quantity') = 10 AND P('sys.Label') = sys.Label"));
  EXPECT_TRUE(Match("property('col' + 'or') = 'blue'"));
  EXPECT_TRUE(Match("property('missing') IS NULL"));
  EXPECT_TRUE(Match("newid() <> newid() AND newid() LIKE '________-____-____-____-____________'"));
  auto f = ParseSqlFilter("property('sys.Nope') = 1");
  ASSERT_TRUE(f.ok());
  auto r = f->Evaluate(Order());
  EXPECT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("sys.Nope"), std::string::npos);
  EXPECT_FALSE(f->Matches(Order()));
}

TEST(SqlFilterTest, Parameters) {
  SqlParameters params = {{"@stringParam", S("blue")}, {"n", I(10)}, {"@when", PropertyValue{Timestamp{5}}}};
  auto f = ParseSqlFilter("color = @stringParam AND quantity = @n AND @when < sys.EnqueuedTimeUtc", params);
  ASSERT_TRUE(f.ok()) << f.status().message();
  EXPECT_TRUE(f->Matches(Order()));
  auto bad = ParseSqlFilter("color = @other", params);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("@other"), std::string::npos);
}

TEST(SqlFilterTest, EvaluationErrors) {
  for (const char* expr :
       {"quantity / 0 = 1", "quantity % 0 = 1", "-9223372036854775808 / -1 = 0", "color LIKE 'x' ESCAPE color"}) {
    auto f = ParseSqlFilter(expr);
    ASSERT_TRUE(f.ok()) << expr << ": " << f.status().message();
    auto r = f->Evaluate(Order());
    EXPECT_FALSE(r.ok()) << expr;
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
    EXPECT_FALSE(f->Matches(Order()));
  }
  // FALSE AND … does not evaluate the rest.
  EXPECT_FALSE(Match("1 = 0 AND quantity / 0 = 1"));
  EXPECT_TRUE(Match("1 = 1 OR quantity / 0 = 1"));
  EXPECT_TRUE(Match("-9223372036854775808 % -1 = 0"));
}

TEST(SqlFilterTest, SyntaxErrorsNamePosition) {
  EXPECT_NE(ParseError("color = ").find("position 9"), std::string::npos);
  EXPECT_NE(ParseError("color = 'blue").find("unterminated string"), std::string::npos);
  EXPECT_NE(ParseError("color == 'blue'").find("position 8"), std::string::npos);
  EXPECT_NE(ParseError("sys.Nope = 1").find("unknown system property 'sys.Nope'"), std::string::npos);
  EXPECT_NE(ParseError("foo.bar = 1").find("unknown scope"), std::string::npos);
  EXPECT_NE(ParseError("(a = 1").find("expected ')'"), std::string::npos);
  EXPECT_NE(ParseError("a = 1)").find("unexpected ')'"), std::string::npos);
  EXPECT_NE(ParseError("'blue'").find("expected a condition"), std::string::npos);
  EXPECT_NE(ParseError("1 + 1").find("expected a condition"), std::string::npos);
  EXPECT_NE(ParseError("a = 1 AND 5").find("position 11"), std::string::npos);
  EXPECT_NE(ParseError("a LIKE 5").find("pattern must be a string"), std::string::npos);
  EXPECT_NE(ParseError("a LIKE 'x' ESCAPE 'ab'").find("length 1"), std::string::npos);
  EXPECT_NE(ParseError("a LIKE 'x!' ESCAPE '!'").find("ends with the escape"), std::string::npos);
  EXPECT_NE(ParseError("a IN ()").find("position 7"), std::string::npos);
  EXPECT_NE(ParseError("a NOT = 1").find("expected IN or LIKE"), std::string::npos);
  EXPECT_NE(ParseError("a IS 1").find("expected NULL"), std::string::npos);
  EXPECT_NE(ParseError("and = 1").find("keyword"), std::string::npos);
  EXPECT_NE(ParseError("foo(1) = 1").find("unknown function"), std::string::npos);
  EXPECT_NE(ParseError("99999999999999999999 = 1").find("out of range"), std::string::npos);
  EXPECT_NE(ParseError("1e999 = 1").find("out of range"), std::string::npos);
  EXPECT_NE(ParseError("12abc = 1").find("malformed number"), std::string::npos);
  EXPECT_NE(ParseError("a = 1 ! b").find("'!'"), std::string::npos);
  EXPECT_NE(ParseError("a = #").find("unexpected character '#'"), std::string::npos);
  EXPECT_NE(ParseError("[] = 1").find("empty property name"), std::string::npos);
  EXPECT_NE(ParseError("[abc = 1").find("unterminated name"), std::string::npos);
  EXPECT_NE(ParseError("-'a' = 1").find("needs a number"), std::string::npos);
  EXPECT_NE(ParseError("EXISTS(1)").find("expected a property name"), std::string::npos);
  EXPECT_NE(ParseError("").find("empty"), std::string::npos);
  EXPECT_NE(ParseError("   ").find("empty"), std::string::npos);
  // Positions count characters, not bytes.
  EXPECT_NE(ParseError("'\xC3\xA9' = #").find("position 7"), std::string::npos);
}

TEST(SqlFilterTest, Limits) {
  std::string expr = "a = '" + std::string(1018, 'x') + "'";  // 1,024 characters
  ASSERT_EQ(expr.size(), 1024u);
  EXPECT_TRUE(ParseSqlFilter(expr).ok());
  EXPECT_NE(ParseError(expr + " ").find("longer than 1024"), std::string::npos);
  // Deep nesting is refused, not a stack overflow.
  EXPECT_NE(ParseError(std::string(500, '(') + "1=1" + std::string(500, ')')).find("nested too deeply"),
            std::string::npos);
  std::string nots;
  for (int i = 0; i < 200; ++i) nots += "NOT ";
  EXPECT_NE(ParseError(nots + "1=1").find("nested too deeply"), std::string::npos);
  std::string chain = "a";
  for (int i = 0; i < 300; ++i) chain += "+a";
  EXPECT_NE(ParseError(chain + " = 1").find("nested too deeply"), std::string::npos);
  std::string minus(600, '-');
  EXPECT_FALSE(ParseSqlFilter(minus + "1 = 1").ok());
  // Long flat OR chains are fine.
  std::string ors = "a = 0";
  for (int i = 1; i < 100; ++i) ors += " OR a = " + std::to_string(i);
  ASSERT_LE(ors.size(), 1024u);
  MessageProperties m;
  m.application = {{"a", I(99)}};
  EXPECT_TRUE(Match(ors, m));
}

TEST(SqlActionTest, SetAndRemove) {
  auto a = ParseSqlAction("SET quantity = quantity / 2; REMOVE priority;SET sys.CorrelationId = 'low';");
  ASSERT_TRUE(a.ok()) << a.status().message();
  MessageProperties m = Order();
  ASSERT_TRUE(Apply(*a, m).ok());
  EXPECT_EQ(m.application.at("quantity"), I(5));
  EXPECT_EQ(m.application.count("priority"), 0u);
  EXPECT_EQ(m.correlation_id, "low");
}

TEST(SqlActionTest, StatementsSeeEarlierOnes) {
  auto a = ParseSqlAction("set x = 1 set y = x + 1, set sys.Label = sys.Label + '-' + y; remove sys.To");
  ASSERT_TRUE(a.ok()) << a.status().message();
  MessageProperties m = Order();
  ASSERT_TRUE(Apply(*a, m).ok());
  EXPECT_EQ(m.application.at("x"), I(1));
  EXPECT_EQ(m.application.at("y"), I(2));
  EXPECT_EQ(m.subject, "ABCdef-2");
  EXPECT_FALSE(m.to.has_value());
}

TEST(SqlActionTest, TypesAndNulls) {
  MessageProperties m = Order();
  ASSERT_TRUE(Apply(*ParseSqlAction("SET price = 3; SET color = missing; SET [New Prop] = TRUE; SET "
                                    "sys.ContentType = NULL; SET COLOR2 = newid(); SET sys.TimeToLive = 60000"),
                    m)
                  .ok());
  EXPECT_EQ(m.application.at("price"), D(3.0));  // keeps the double type
  EXPECT_TRUE(m.application.at("color").is_null());
  EXPECT_EQ(m.application.at("New Prop"), B(true));
  EXPECT_FALSE(m.content_type.has_value());
  EXPECT_TRUE(Guid::Parse(std::get<std::string>(m.application.at("COLOR2").v)).has_value());
  EXPECT_EQ(m.time_to_live_ms, 60000);
  // Case-insensitive names update the existing property.
  ASSERT_TRUE(Apply(*ParseSqlAction("SET QUANTITY = 11; REMOVE PRIORITY"), m).ok());
  EXPECT_EQ(m.application.at("quantity"), I(11));
  EXPECT_EQ(m.application.count("QUANTITY"), 0u);
  EXPECT_EQ(m.application.count("priority"), 0u);
}

TEST(SqlActionTest, ErrorsLeaveTheMessageUnchanged) {
  MessageProperties m = Order();
  const MessageProperties before = m;
  Status s = Apply(*ParseSqlAction("SET a = 1; SET sys.Label = 5"), m);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("takes a string"), std::string::npos);
  Status s2 = Apply(*ParseSqlAction("SET a = 1; SET b = quantity / 0"), m);
  EXPECT_FALSE(s2.ok());
  EXPECT_EQ(m.application, before.application);
  EXPECT_EQ(m.subject, before.subject);
}

TEST(SqlActionTest, ParseErrors) {
  auto err = [](std::string_view text) {
    auto a = ParseSqlAction(text);
    EXPECT_FALSE(a.ok()) << text;
    return a.ok() ? std::string() : a.status().message();
  };
  EXPECT_NE(err("").find("empty"), std::string::npos);
  EXPECT_NE(err(";").find("no statement"), std::string::npos);
  EXPECT_NE(err("UPDATE x = 1").find("expected SET or REMOVE"), std::string::npos);
  EXPECT_NE(err("SET x 1").find("expected '='"), std::string::npos);
  EXPECT_NE(err("SET x = ").find("position 9"), std::string::npos);
  EXPECT_NE(err("SET sys.SequenceNumber = 1").find("cannot be changed"), std::string::npos);
  EXPECT_NE(err("REMOVE sys.EnqueuedTimeUtc").find("cannot be changed"), std::string::npos);
  EXPECT_NE(err("SET sys.Bogus = 1").find("unknown system property"), std::string::npos);
  std::string many;
  for (int i = 0; i < 33; ++i) many += "SET a" + std::to_string(i) + " = 1;";
  EXPECT_NE(err(many).find("more than 32"), std::string::npos);
  std::string ok32;
  for (int i = 0; i < 32; ++i) ok32 += "SET a" + std::to_string(i) + " = 1;";
  EXPECT_TRUE(ParseSqlAction(ok32).ok());
}

TEST(CorrelationFilterTest, Matches) {
  CorrelationFilter f;
  f.subject = "ABCdef";
  f.reply_to = "johndoe@contoso.com";
  f.properties["color"] = S("blue");
  EXPECT_TRUE(f.Matches(Order()));
  f.properties["quantity"] = D(10.0);  // numbers by value
  EXPECT_TRUE(f.Matches(Order()));
  f.properties["color"] = S("Blue");  // case-sensitive
  EXPECT_FALSE(f.Matches(Order()));
  f.properties.erase("color");
  f.properties["COLOR"] = S("blue");  // names too
  EXPECT_FALSE(f.Matches(Order()));
  f.properties.clear();
  f.properties["missing"] = PropertyValue{};
  EXPECT_FALSE(f.Matches(Order()));
  f.properties.clear();
  f.properties["nothing"] = PropertyValue{};
  EXPECT_TRUE(f.Matches(Order()));

  CorrelationFilter c;
  c.correlation_id = "high";
  EXPECT_TRUE(c.Matches(Order()));
  c.correlation_id = "HIGH";
  EXPECT_FALSE(c.Matches(Order()));
  c.correlation_id = "high";
  c.session_id = "s-1";
  c.message_id = "m-1";
  c.to = "Store5";
  c.content_type = "application/json";
  EXPECT_TRUE(c.Matches(Order()));
  c.reply_to_session_id = "r";
  EXPECT_FALSE(c.Matches(Order()));  // the message has none
  EXPECT_TRUE(CorrelationFilter{}.Matches(Order()));
}

Rule SqlRule(std::string name, std::string_view filter, std::string_view action = {}) {
  Rule r{std::move(name), *ParseSqlFilter(filter), std::nullopt};
  if (!action.empty()) r.action = *ParseSqlAction(action);
  return r;
}

TEST(FanOutTest, FiveRulesTwoWithActionsAllMatching) {
  CorrelationFilter corr;
  corr.correlation_id = "high";
  std::vector<Rule> rules = {
      DefaultRule(),
      SqlRule("blue", "color = 'blue'"),
      Rule{"corr", corr, std::nullopt},
      SqlRule("halve", "quantity > 1", "SET quantity = quantity / 2"),
      SqlRule("tag", "EXISTS(priority)", "SET tagged = TRUE; REMOVE priority"),
  };
  auto out = FanOut(rules, Order());
  EXPECT_TRUE(out.error.ok());
  ASSERT_EQ(out.copies.size(), 3u);
  EXPECT_EQ(out.copies[0].rule_name, "");
  EXPECT_EQ(out.copies[0].properties.application, Order().application);
  EXPECT_EQ(out.copies[1].rule_name, "halve");
  EXPECT_EQ(out.copies[1].properties.application.at("quantity"), I(5));
  EXPECT_EQ(out.copies[1].properties.application.at("RuleName"), S("halve"));
  EXPECT_EQ(out.copies[2].rule_name, "tag");
  EXPECT_EQ(out.copies[2].properties.application.at("RuleName"), S("tag"));
  EXPECT_EQ(out.copies[2].properties.application.count("priority"), 0u);
  EXPECT_EQ(out.copies[2].properties.application.at("quantity"), I(10));  // copies are independent
}

TEST(FanOutTest, SelectionAndErrors) {
  EXPECT_TRUE(FanOut({}, Order()).copies.empty());
  std::vector<Rule> none = {Rule{"f", FalseFilter{}, std::nullopt}, SqlRule("red", "color = 'red'", "SET x = 1")};
  EXPECT_TRUE(FanOut(none, Order()).copies.empty());
  std::vector<Rule> one = {SqlRule("red", "color = 'red'"), SqlRule("blue", "color = 'blue'")};
  auto r1 = FanOut(one, Order());
  ASSERT_EQ(r1.copies.size(), 1u);
  EXPECT_EQ(r1.copies[0].properties.application.count("RuleName"), 0u);
  std::vector<Rule> broken = {SqlRule("div", "quantity / 0 = 1"), SqlRule("act", "1=1", "SET y = quantity % 0"),
                              SqlRule("ok", "1=1", "SET z = 1")};
  auto r2 = FanOut(broken, Order());
  EXPECT_FALSE(r2.error.ok());
  EXPECT_NE(r2.error.message().find("'div'"), std::string::npos);
  ASSERT_EQ(r2.copies.size(), 1u);
  EXPECT_EQ(r2.copies[0].rule_name, "ok");
}

TEST(RuleJsonTest, ReadsEmulatorConfigShape) {
  auto r = ParseRuleJson(R"({"Name":"r1","Properties":{"FilterType":"Correlation","CorrelationFilter":{
      "CorrelationId":"id1","Label":"subj","ContentType":"application/text","MessageId":"m","ReplyTo":"q",
      "ReplyToSessionId":"rs","SessionId":"s","To":"t","Properties":{"prop1":"value1","n":5,"d":2.5,"b":true}}}})");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->name, "r1");
  const auto& c = std::get<CorrelationFilter>(r->filter);
  EXPECT_EQ(c.correlation_id, "id1");
  EXPECT_EQ(c.subject, "subj");
  EXPECT_EQ(c.to, "t");
  EXPECT_EQ(c.properties.at("prop1"), S("value1"));
  EXPECT_EQ(c.properties.at("n"), I(5));
  EXPECT_EQ(c.properties.at("d"), D(2.5));
  EXPECT_FALSE(r->action.has_value());

  auto s = ParseRuleJson(R"({"name":"sql","properties":{"filterType":"Sql",
      "sqlFilter":{"sqlExpression":"color = 'blue'"},"action":{"sqlExpression":"SET x = 1"}}})");
  ASSERT_TRUE(s.ok()) << s.status().message();
  EXPECT_TRUE(std::get<SqlFilter>(s->filter).Matches(Order()));
  ASSERT_TRUE(s->action.has_value());
  EXPECT_EQ(s->action->expression(), "SET x = 1");

  auto t = ParseRuleJson(R"({"Name":"all","Properties":{"FilterType":"Sql","SqlFilter":{"SqlExpression":"1 = 1"}}})");
  ASSERT_TRUE(t.ok());
  EXPECT_TRUE(std::holds_alternative<TrueFilter>(t->filter));
  auto f = ParseRuleJson(R"({"Name":"none","Properties":{"SqlFilter":{"SqlExpression":"1=0"}}})");
  ASSERT_TRUE(f.ok());
  EXPECT_TRUE(std::holds_alternative<FalseFilter>(f->filter));
  auto t2 = ParseRuleJson(R"({"Name":"$Default","Properties":{"FilterType":"True"}})");
  ASSERT_TRUE(t2.ok()) << t2.status().message();
  EXPECT_EQ(*t2, DefaultRule());
}

TEST(RuleJsonTest, RoundTrips) {
  CorrelationFilter corr;
  corr.correlation_id = "c";
  corr.subject = "s";
  corr.properties = {{"a", S("x")}, {"b", I(-3)}, {"c", D(2.0)}, {"d", B(false)}, {"e", PropertyValue{}}};
  std::vector<Rule> rules = {DefaultRule(), Rule{"no", FalseFilter{}, std::nullopt}, Rule{"corr", corr, std::nullopt},
                             SqlRule("sql", "color = 'it''s' AND [a b] > 1.5", "SET x = 'y'; REMOVE z")};
  rules[2].action = *ParseSqlAction("SET sys.Label = 'l'");
  for (const Rule& rule : rules) {
    std::string json = RuleToJson(rule);
    auto back = ParseRuleJson(json);
    ASSERT_TRUE(back.ok()) << json << ": " << back.status().message();
    EXPECT_EQ(*back, rule) << json;
    EXPECT_EQ(RuleToJson(*back), json);
  }
  EXPECT_EQ(RuleToJson(DefaultRule()),
            R"({"Name":"$Default","Properties":{"FilterType":"Sql","SqlFilter":{"SqlExpression":"1=1"}}})");
}

TEST(RuleJsonTest, Errors) {
  auto err = [](std::string_view text) {
    auto r = ParseRuleJson(text);
    EXPECT_FALSE(r.ok()) << text;
    return r.ok() ? std::string() : r.status().message();
  };
  EXPECT_NE(err(R"({"Properties":{}})").find("Name"), std::string::npos);
  EXPECT_NE(err(R"({"Name":"","Properties":{}})").find("empty"), std::string::npos);
  EXPECT_NE(err(R"({"Name":")" + std::string(51, 'n') + R"(","Properties":{}})").find("longer than 50"),
            std::string::npos);
  EXPECT_NE(err(R"({"Name":"r","Properties":{}})").find("FilterType"), std::string::npos);
  EXPECT_NE(err(R"({"Name":"r","Properties":{"FilterType":"Regex"}})").find("not Sql, Correlation, True or False"),
            std::string::npos);
  EXPECT_NE(
      err(R"({"Name":"r","Properties":{"FilterType":"Sql","SqlFilter":{"SqlExpression":"a ="}}})").find("position"),
      std::string::npos);
  EXPECT_NE(err(R"({"Name":"r","Properties":{"FilterType":"Sql","SqlFilter":{"SqlExpression":"1=1"},)"
                R"("Action":{"SqlExpression":"SET"}}})")
                .find("SQL action"),
            std::string::npos);
  EXPECT_NE(
      err(R"({"Name":"r","Properties":{"FilterType":"Correlation","CorrelationFilter":{}}})").find("sets no property"),
      std::string::npos);
  EXPECT_NE(err(R"({"Name":"r","Properties":{"FilterType":"Correlation","CorrelationFilter":{"Lable":"x"}}})")
                .find("unknown key 'Lable'"),
            std::string::npos);
  EXPECT_NE(
      err(R"({"Name":"r","Properties":{"FilterType":"Correlation","CorrelationFilter":{"Properties":{"a":[1]}}}})")
          .find("string, number, boolean or null"),
      std::string::npos);
  EXPECT_NE(err(R"({"Name":"r","Properties":{"FilterType":"Correlation","CorrelationFilter":{"To":5}}})")
                .find("To must be a string"),
            std::string::npos);
  EXPECT_NE(err("[1]").find("must be an object"), std::string::npos);
  EXPECT_NE(err("{").find("Invalid rule"), std::string::npos);
}

}  // namespace
}  // namespace tributary::bus
