#pragma once
// Subscription rules as JSON, in the shape of the Service Bus emulator's Config.json
// (reference/service-bus.md §6.4):
//   {"Name":"r","Properties":{"FilterType":"Sql"|"Correlation",
//     "SqlFilter":{"SqlExpression":"…"},
//     "CorrelationFilter":{"CorrelationId":…,"MessageId":…,"To":…,"ReplyTo":…,"Label":…,
//                          "SessionId":…,"ReplyToSessionId":…,"ContentType":…,"Properties":{…}},
//     "Action":{"SqlExpression":"…"}}}
// FilterType "True" and "False" (no other member needed) are read as well.
// Keys are matched ignoring case (ARM templates write them in camelCase); "Subject" is accepted
// for "Label" and "SendTo" for "To". A SQL filter "1=1" reads as TrueFilter and "1=0" as
// FalseFilter, and those two are written that way. Correlation property values are JSON
// strings, numbers, booleans or null (a timestamp value is written as its ISO 8601 text).

#include <optional>
#include <string>
#include <string_view>

#include "tributary/base/json.h"
#include "tributary/base/status.h"
#include "tributary/bus/filter.h"

namespace tributary::bus {

// A rule name: 1 to kMaxRuleNameChars characters, no control characters.
Status ValidateRuleName(std::string_view name);

// Reads one rule object. Errors (kInvalidArgument) name the offending key, and carry the SQL
// parser's message and position for a bad expression.
Result<Rule> RuleFromJson(const Json& rule);
Result<Rule> ParseRuleJson(std::string_view text);

void WriteRuleJson(JsonWriter& w, const Rule& rule);

// A JSON scalar (null, boolean, integer, double, string) as a property value; nullopt for an
// array or an object.
std::optional<PropertyValue> ScalarFromJson(const Json& v);
std::string RuleToJson(const Rule& rule);

}  // namespace tributary::bus
