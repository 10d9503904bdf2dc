// The management JSON of the bus: ISO 8601 durations, entity properties in and out, rules in the
// JS admin client's shape ↔ the broker's (emulator Config.json) shape.
#include "tributary/server/bus_admin.h"

#include <gtest/gtest.h>

#include "tributary/bus/rule_json.h"

namespace tributary::server {
namespace {

Json Parse(std::string_view text) {
  auto j = ParseJson(text);
  EXPECT_TRUE(j.ok()) << text;
  return j.ok() ? *j : Json();
}

TEST(IsoDuration, Parses) {
  EXPECT_EQ(ParseIsoDuration("PT1M"), 60'000);
  EXPECT_EQ(ParseIsoDuration("PT30S"), 30'000);
  EXPECT_EQ(ParseIsoDuration("PT0.5S"), 500);
  EXPECT_EQ(ParseIsoDuration("PT1.2345S"), 1234);
  EXPECT_EQ(ParseIsoDuration("PT1H30M"), 5'400'000);
  EXPECT_EQ(ParseIsoDuration("P14D"), 14LL * 86'400'000);
  EXPECT_EQ(ParseIsoDuration("P1W"), 7LL * 86'400'000);
  EXPECT_EQ(ParseIsoDuration("P1DT2H3M4S"), 86'400'000 + 7'384'000);
  EXPECT_EQ(ParseIsoDuration("pt5s"), 5'000);
  EXPECT_EQ(ParseIsoDuration("P10675199DT2H48M5.4775807S"), INT64_MAX);
  EXPECT_EQ(ParseIsoDuration("P99999999D"), INT64_MAX);
  EXPECT_EQ(ParseIsoDuration("PT99999999999999999999999999H"), INT64_MAX);
}

TEST(IsoDuration, Refuses) {
  for (const char* bad : {"", "P", "PT", "1M", "P1Y", "P1M", "PT1.5M", "PTS", "PT1H1H", "PT1S1M", "-PT1S", "P1DT",
                          "PT1", "PT1X", "P1D1W", "PT.5S", "one minute"})
    EXPECT_FALSE(ParseIsoDuration(bad).has_value()) << bad;
}

TEST(IsoDuration, Formats) {
  EXPECT_EQ(FormatIsoDuration(60'000), "PT1M");
  EXPECT_EQ(FormatIsoDuration(500), "PT0.5S");
  EXPECT_EQ(FormatIsoDuration(0), "PT0S");
  EXPECT_EQ(FormatIsoDuration(86'400'000 + 3'661'001), "P1DT1H1M1.001S");
  EXPECT_EQ(FormatIsoDuration(14LL * 86'400'000), "P14D");
  EXPECT_EQ(FormatIsoDuration(INT64_MAX), "P10675199DT2H48M5.4775807S");
  for (int64_t ms : {1LL, 999LL, 1'000LL, 59'999LL, 3'600'000LL, 90'061'001LL, 1'000'000'000'000LL})
    EXPECT_EQ(ParseIsoDuration(FormatIsoDuration(ms)), ms) << ms;
}

TEST(EntityProperties, ReadsCamelAndPascalCase) {
  bus::EntityProperties p;
  ASSERT_TRUE(ReadEntityProperties(Parse(R"({"lockDuration":"PT30S","MaxDeliveryCount":3,"requiresSession":true,
      "DefaultMessageTimeToLive":"PT1H","deadLetteringOnMessageExpiration":true,"forwardTo":"other",
      "requiresDuplicateDetection":true,"duplicateDetectionHistoryTimeWindow":"PT20S","maxSizeInMegabytes":2048,
      "status":"ReceiveDisabled","userMetadata":"m"})"),
                                   bus::EntityKind::kQueue, p)
                  .ok());
  EXPECT_EQ(p.lock_duration_ms, 30'000);
  EXPECT_EQ(p.max_delivery_count, 3);
  EXPECT_TRUE(p.requires_session);
  EXPECT_EQ(p.default_message_ttl_ms, 3'600'000);
  EXPECT_TRUE(p.dead_lettering_on_message_expiration);
  EXPECT_EQ(p.forward_to, "other");
  EXPECT_TRUE(p.requires_duplicate_detection);
  EXPECT_EQ(p.duplicate_detection_history_time_window_ms, 20'000);
  EXPECT_EQ(p.max_size_in_megabytes, 2048);
  EXPECT_EQ(p.status, "ReceiveDisabled");
  EXPECT_EQ(p.user_metadata, "m");
  ASSERT_TRUE(ReadEntityProperties(Parse(R"({"forwardTo":null})"), bus::EntityKind::kQueue, p).ok());
  EXPECT_EQ(p.forward_to, "");
}

TEST(EntityProperties, IgnoresWhatGetAnswers) {
  bus::EntityInfo e;
  e.path = "q";
  e.properties.lock_duration_ms = 45'000;
  e.runtime.active = 3;
  bus::EntityProperties p;
  Status s = ReadEntityProperties(Parse(EntityJson(e)), bus::EntityKind::kQueue, p);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(p.lock_duration_ms, 45'000);
}

TEST(EntityProperties, Refuses) {
  bus::EntityProperties p;
  for (const char* body :
       {R"({"lockDuration":60})", R"({"maxDeliveryCount":"3"})", R"({"requiresSession":"yes"})", R"({"nope":1})",
        R"({"enablePartitioning":true})", R"([1])", R"({"status":null})", R"({"lockDuration":"P1Y"})"}) {
    Status s = ReadEntityProperties(Parse(body), bus::EntityKind::kQueue, p);
    EXPECT_EQ(s.code(), Code::kInvalidArgument) << body;
    EXPECT_EQ(s.error_code(), bus::errc::kBadRequest) << body;
  }
  EXPECT_FALSE(ReadEntityProperties(Parse(R"({"lockDuration":"PT1M"})"), bus::EntityKind::kTopic, p).ok());
  EXPECT_FALSE(ReadEntityProperties(Parse(R"({"requiresSession":true})"), bus::EntityKind::kTopic, p).ok());
  EXPECT_FALSE(ReadEntityProperties(Parse(R"({"maxSizeInMegabytes":1})"), bus::EntityKind::kSubscription, p).ok());
  EXPECT_FALSE(
      ReadEntityProperties(Parse(R"({"requiresDuplicateDetection":true})"), bus::EntityKind::kSubscription, p).ok());
}

TEST(EntityJson, PerKind) {
  bus::EntityInfo q;
  q.path = "a/b";
  q.runtime.active = 2;
  q.runtime.dead_lettered = 1;
  q.runtime.deferred = 1;
  Json j = Parse(EntityJson(q));
  EXPECT_EQ(j.Find("name")->as_string(), "a/b");
  EXPECT_EQ(j.Find("lockDuration")->as_string(), "PT1M");
  EXPECT_EQ(j.Find("defaultMessageTimeToLive")->as_string(), "P10675199DT2H48M5.4775807S");
  EXPECT_EQ(j.Find("activeMessageCount")->as_int(), 2);
  EXPECT_EQ(j.Find("totalMessageCount")->as_int(), 4);
  EXPECT_EQ(j.Find("forwardTo"), nullptr);

  bus::EntityInfo t;
  t.path = "t";
  t.kind = bus::EntityKind::kTopic;
  j = Parse(EntityJson(t));
  EXPECT_EQ(j.Find("lockDuration"), nullptr);
  EXPECT_EQ(j.Find("activeMessageCount"), nullptr);
  EXPECT_NE(j.Find("requiresDuplicateDetection"), nullptr);

  bus::EntityInfo s;
  s.path = "x/y/Subscriptions/sub";
  s.kind = bus::EntityKind::kSubscription;
  j = Parse(EntityJson(s));
  EXPECT_EQ(j.Find("topicName")->as_string(), "x/y");
  EXPECT_EQ(j.Find("subscriptionName")->as_string(), "sub");
  EXPECT_EQ(j.Find("maxSizeInMegabytes"), nullptr);
}

// The broker accepts what RuleForBroker makes, and WriteRule gives back the camelCase shape.
std::string RoundTrip(const std::string& name, std::string_view body) {
  auto rule = RuleForBroker(name, Parse(body));
  EXPECT_TRUE(rule.ok()) << body << ": " << rule.status().ToString();
  if (!rule.ok()) return "";
  auto parsed = bus::ParseRuleJson(*rule);
  EXPECT_TRUE(parsed.ok()) << *rule << ": " << parsed.status().ToString();
  if (!parsed.ok()) return "";
  std::string out;
  JsonWriter w(out);
  WriteRule(w, Parse(bus::RuleToJson(*parsed)));
  return out;
}

TEST(Rules, RoundTrip) {
  EXPECT_EQ(RoundTrip("r", R"({"filter":{"sqlExpression":"color = 'red'"}})"),
            R"({"name":"r","filter":{"sqlExpression":"color = 'red'"},"action":null})");
  EXPECT_EQ(RoundTrip("t", R"({})"), R"({"name":"t","filter":{"sqlExpression":"1=1"},"action":null})");
  EXPECT_EQ(RoundTrip("f", R"({"filter":{"sqlExpression":"1=0"}})"),
            R"({"name":"f","filter":{"sqlExpression":"1=0"},"action":null})");
  EXPECT_EQ(RoundTrip("c", R"({"filter":{"correlationId":"x","subject":"s","applicationProperties":{"n":1}},
                               "action":{"sqlExpression":"SET a = 1"}})"),
            R"({"name":"c","filter":{"correlationId":"x","subject":"s","applicationProperties":{"n":1}},)"
            R"("action":{"sqlExpression":"SET a = 1"}})");
  EXPECT_EQ(RoundTrip("e", R"({"Properties":{"FilterType":"Correlation","CorrelationFilter":{"To":"b"}}})"),
            R"({"name":"e","filter":{"to":"b","applicationProperties":{}},"action":null})");
}

TEST(Rules, Refuses) {
  for (const char* body :
       {R"([])", R"({"filter":5})", R"({"filter":{"sqlExpression":7}})", R"({"filter":{"correlationId":1}})",
        R"({"filter":{"nope":"x"}})", R"({"other":1})", R"({"action":"SET a = 1"})",
        R"({"filter":{"sqlExpression":"a=1","sqlParameters":{"@p":1}}})"})
    EXPECT_FALSE(RuleForBroker("r", Parse(body)).ok()) << body;
}

TEST(Rules, SubscriptionBodies) {
  EXPECT_EQ(*SubscriptionRulesForBroker(Parse(R"({"maxDeliveryCount":1})")), "");
  auto d = SubscriptionRulesForBroker(Parse(R"({"defaultRuleOptions":{"filter":{"sqlExpression":"a = 1"}}})"));
  ASSERT_TRUE(d.ok());
  Json j = Parse(*d);
  ASSERT_EQ(j.as_array().size(), 1u);
  EXPECT_EQ(j.as_array()[0].Find("Name")->as_string(), "$Default");
  auto list = SubscriptionRulesForBroker(Parse(R"({"rules":[{"name":"a"},{"name":"b","filter":{"to":"x"}}]})"));
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(Parse(*list).as_array().size(), 2u);
  EXPECT_FALSE(SubscriptionRulesForBroker(Parse(R"({"rules":[{"filter":{}}]})")).ok());
  EXPECT_FALSE(SubscriptionRulesForBroker(Parse(R"({"rules":{}})")).ok());
}

}  // namespace
}  // namespace tributary::server
