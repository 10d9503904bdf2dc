#pragma once
// The management JSON of the message bus (docs/servicebus.md, "Management"): entity properties
// and runtime counts in the camelCase of the Service Bus administration API, durations in
// ISO 8601, rules as the JS administration client writes them. Used by the HTTP management
// routes and by `tributary bus`. Pure functions; thread-safe.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "tributary/base/json.h"
#include "tributary/base/status.h"
#include "tributary/bus/broker.h"

namespace tributary::server {

// ISO 8601 durations ("PT1M", "P14D", "PT0.5S"; weeks allowed, years and months not).
// TimeSpan.MaxValue ("P10675199DT2H48M5.4775807S") and anything longer read as INT64_MAX ms.
std::optional<int64_t> ParseIsoDuration(std::string_view text);
std::string FormatIsoDuration(int64_t ms);

// Applies the members of a JSON object to `p` (keys matched ignoring case, so the emulator's
// PascalCase works too). Read-only members that GET answers (name, counts, times) are ignored;
// unknown members, wrong types and properties that do not apply to `kind` are kInvalidArgument.
// Ranges are left to the broker.
Status ReadEntityProperties(const Json& body, bus::EntityKind kind, bus::EntityProperties& p);

// The JSON object of an entity: its properties and runtime counts.
void WriteEntity(JsonWriter& w, const bus::EntityInfo& e);
std::string EntityJson(const bus::EntityInfo& e);

// A rule named `name` from a request body, in the shape the broker takes (one element of the
// emulator Config.json's "Rules"). The body is either {"filter":{…},"action":{…}} (filter:
// {"sqlExpression","sqlParameters"} or the correlation fields correlationId, messageId, to,
// replyTo, subject, sessionId, replyToSessionId, contentType, applicationProperties; no filter:
// a true filter) or the emulator's {"Properties":{"FilterType",…}}.
Result<std::string> RuleForBroker(const std::string& name, const Json& body);
// A rule as the broker lists it (emulator shape) → {"name","filter","action"} in camelCase.
void WriteRule(JsonWriter& w, const Json& broker_rule);

// The body of a subscription PUT may carry its first rule: "defaultRuleOptions" (JS admin
// client: {"name","filter","action"}) or "rules" (an array in either rule shape). Returns the
// broker's rules JSON array text, or "" when the body names none (the broker adds $Default).
Result<std::string> SubscriptionRulesForBroker(const Json& body);

}  // namespace tributary::server
