// libFuzzer target for the Service Bus rule language (src/bus/include/tributary/bus/filter.h):
// the input is parsed as a SQL filter, as a SQL action and as a rule in Config.json shape.
// Nothing may crash or hang; every failure must be kInvalidArgument with a printable UTF-8
// message; a filter that parses evaluates against a fixed message; an action that fails leaves
// the message unchanged; a rule read from JSON writes back to JSON that reads as the same rule.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "tributary/base/status.h"
#include "tributary/base/strings.h"
#include "tributary/bus/filter.h"
#include "tributary/bus/rule_json.h"

namespace {

using namespace tributary;
using namespace tributary::bus;

void Check(const Status& s, const char* what) {
  if (s.ok()) return;
  if (s.code() != Code::kInvalidArgument) {
    std::fprintf(stderr, "%s failed without kInvalidArgument: %s\n", what, s.message().c_str());
    std::abort();
  }
  if (s.message().empty() || !tributary::IsUtf8(s.message())) {
    std::fprintf(stderr, "%s: empty or invalid UTF-8 message: %s\n", what, s.message().c_str());
    std::abort();
  }
}

MessageProperties Fixed() {
  MessageProperties m;
  m.message_id = "m-1";
  m.correlation_id = "high";
  m.subject = "ABCdef";
  m.to = "Store5";
  m.content_type = "application/json";
  m.sequence_number = 42;
  m.enqueued_time = Timestamp{1'700'000'000'000};
  m.application = {{"color", PropertyValue{std::string("blue")}},
                   {"quantity", PropertyValue{int64_t{10}}},
                   {"price", PropertyValue{2.5}},
                   {"flag", PropertyValue{true}},
                   {"nothing", PropertyValue{}},
                   {"when", PropertyValue{Timestamp{1000}}},
                   {"a", PropertyValue{int64_t{-9223372036854775807 - 1}}}};
  return m;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  static const MessageProperties kMessage = Fixed();
  static const SqlParameters kParams = {{"@p", PropertyValue{std::string("blue")}}, {"n", PropertyValue{1.5}}};

  auto filter = ParseSqlFilter(text, kParams);
  Check(filter.status(), "ParseSqlFilter");
  if (filter.ok()) {
    auto r = filter->Evaluate(kMessage);
    Check(r.status(), "SqlFilter::Evaluate");
    if (filter->Matches(kMessage) != (r.ok() && *r)) std::abort();
  }

  auto action = ParseSqlAction(text, kParams);
  Check(action.status(), "ParseSqlAction");
  if (action.ok()) {
    MessageProperties m = kMessage;
    Status s = Apply(*action, m);
    Check(s, "Apply");
    if (!s.ok() && (m.application != kMessage.application || m.subject != kMessage.subject)) {
      std::fprintf(stderr, "a failed action changed the message\n");
      std::abort();
    }
  }

  if (filter.ok() || action.ok()) {
    std::vector<Rule> rules = {DefaultRule()};
    Rule rule{"r", filter.ok() ? RuleFilter(*filter) : RuleFilter(TrueFilter{}), std::nullopt};
    if (action.ok()) rule.action = *action;
    rules.push_back(rule);
    FanOutResult out = FanOut(rules, kMessage);
    Check(out.error, "FanOut");
    if (out.copies.empty() || out.copies.size() > 2) std::abort();
  }

  if (!text.empty() && text.front() == '{') {
    auto rule = ParseRuleJson(text);
    Check(rule.status(), "ParseRuleJson");
    if (rule.ok()) {
      std::string json = RuleToJson(*rule);
      auto back = ParseRuleJson(json);
      if (!back.ok() || !(*back == *rule)) {
        std::fprintf(stderr, "rule JSON does not round-trip: %s\n", json.c_str());
        std::abort();
      }
    }
  }
  return 0;
}
