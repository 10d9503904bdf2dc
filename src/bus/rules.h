#pragma once
// A subscription's rules as the broker keeps them (parsed once, evaluated per message), their
// JSON form (the Service Bus emulator's Config.json shape), and emulator entity properties.

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tributary/base/json.h"
#include "tributary/bus/broker.h"
#include "tributary/bus/filter.h"

namespace tributary::bus {

class RuleSet {
 public:
  explicit RuleSet(std::vector<Rule> rules) : rules_(std::move(rules)) {}
  // The copies the subscription receives (none when no rule matches or there are no rules).
  std::vector<MessageProperties> FanOut(const MessageProperties& m) const;
  const std::vector<Rule>& rules() const { return rules_; }

 private:
  std::vector<Rule> rules_;
};

// `[{"Name":"r","Properties":{"FilterType":"Sql"|"Correlation"|"True"|"False","SqlFilter":{"SqlExpression":…},
// "CorrelationFilter":{…},"Action":{"SqlExpression":…}}}]`; empty text: the $Default rule.
Result<std::shared_ptr<const RuleSet>> ParseRules(std::string_view json);
std::shared_ptr<const RuleSet> DefaultRules();
// The stored rules, or the $Default rule's JSON when none were stored.
std::string RulesJsonOrDefault(const std::string& json);
// Adds one rule (its JSON object) to a rules array; AlreadyExists for a taken name.
Result<std::string> AddRuleJson(const std::string& rules, const std::string& rule);
Result<std::string> RemoveRuleJson(const std::string& rules, const std::string& name);

// Reads emulator-style entity properties ("LockDuration":"PT1M", "MaxDeliveryCount":3, …).
Status ApplyEmulatorProperties(const Json& properties, EntityProperties& p);
// ISO 8601 duration ("PT1M", "P7D", "PT0.5S") → milliseconds.
Result<int64_t> ParseIsoDuration(std::string_view text);
std::string FormatIsoDuration(int64_t ms);

}  // namespace tributary::bus
