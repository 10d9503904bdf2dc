#pragma once
// Subscription rules (reference/service-bus.md §1.3): SQL filters, correlation filters, SQL rule
// actions, and the fan-out of one topic message into the copies a subscription receives.
//
// The SQL dialect is Service Bus's ("Subscription Rule SQL Filter syntax", "SQL action syntax"):
//   - properties: `name`, `user.name` (application properties) and `sys.Name` (system properties:
//     MessageId, CorrelationId, SessionId, ReplyToSessionId, Label/Subject, To, ReplyTo,
//     ContentType, PartitionKey, TimeToLive (ms), ScheduledEnqueueTimeUtc, SequenceNumber,
//     EnqueuedSequenceNumber, EnqueuedTimeUtc, ExpiresAtUtc, DeliveryCount, State,
//     DeadLetterSource); names are regular identifiers, [delimited]] ones] or "quoted"" ones";
//     an unknown `sys.` name is a parse error;
//   - constants: integers (int64), decimals and 1.5E3 (double), 'strings' ('' escapes a quote),
//     TRUE, FALSE, NULL; `@name` parameters bound at parse time;
//   - operators: OR, AND, NOT, = <> != > >= < <=, IS [NOT] NULL, [NOT] IN (…), [NOT] LIKE p
//     [ESCAPE 'c'] (% any run, _ one character, case-sensitive), EXISTS(property), + - * / %,
//     unary + -; functions newid(), property(name) / p(name);
//   - keywords, function names and property names are case-insensitive (an application property
//     is looked up by its exact name first, then ignoring ASCII case).
// Evaluation follows SQL's three-valued logic: a missing property or NULL is UNKNOWN, which
// propagates through arithmetic and comparisons; only TRUE matches. Types follow C#'s promotions:
// int64 with double compares and computes as double; string + anything concatenates; strings
// compare ordinally; timestamps compare with timestamps. Values of unrelated types are unequal
// (= is FALSE, <> is TRUE) and unordered (< etc. is UNKNOWN). Integer arithmetic wraps as C#'s
// unchecked arithmetic; integer division by zero is an evaluation error.
//
// Everything here is immutable after parsing and safe to share between threads, except Apply,
// which edits the message it is given.

#include <cstddef>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "tributary/base/status.h"
#include "tributary/bus/message.h"

namespace tributary::bus {

inline constexpr size_t kMaxSqlExpressionChars = 1024;  // filters and actions
inline constexpr size_t kMaxActionStatements = 32;
inline constexpr size_t kMaxRuleNameChars = 50;
// The application property that names the rule on a copy made by a rule with an action.
inline constexpr std::string_view kRuleNameProperty = "RuleName";

// Values for `@name` parameters (SqlRuleFilter.Parameters); keys with or without the '@'.
using SqlParameters = std::map<std::string, PropertyValue>;

namespace internal {
struct SqlNode;
struct SqlStatement;
}  // namespace internal

// A parsed SQL filter. Copies share the parsed tree.
class SqlFilter {
 public:
  SqlFilter() = default;  // matches nothing; use ParseSqlFilter

  // The expression as written.
  const std::string& expression() const { return expression_; }
  // True when the condition is TRUE for `message`; FALSE and UNKNOWN give false. A failure at
  // evaluation time (integer division by zero, property() naming an unknown system property, a
  // LIKE escape that is not one character) is a kInvalidArgument Status: the broker treats it
  // as a filter evaluation exception.
  Result<bool> Evaluate(const MessageProperties& message) const;
  // Evaluate, with failures counted as no match.
  bool Matches(const MessageProperties& message) const;

  bool operator==(const SqlFilter& o) const { return expression_ == o.expression_; }

 private:
  friend Result<SqlFilter> ParseSqlFilter(std::string_view, const SqlParameters&);
  std::string expression_;
  std::shared_ptr<const internal::SqlNode> root_;
};

// Parses a filter expression (at most kMaxSqlExpressionChars characters). Errors are
// kInvalidArgument with the 1-based character position ("… at position 7: …").
Result<SqlFilter> ParseSqlFilter(std::string_view expression, const SqlParameters& parameters = {});

// A parsed SQL rule action: `SET property = expression` and `REMOVE property` statements
// (at most kMaxActionStatements), separated by ';' (optional) or ','. Copies share the parse.
class SqlAction {
 public:
  SqlAction() = default;  // does nothing; use ParseSqlAction

  const std::string& expression() const { return expression_; }
  bool operator==(const SqlAction& o) const { return expression_ == o.expression_; }

 private:
  friend Result<SqlAction> ParseSqlAction(std::string_view, const SqlParameters&);
  friend Status Apply(const SqlAction&, MessageProperties&);
  std::string expression_;
  std::shared_ptr<const std::vector<internal::SqlStatement>> statements_;
};

// Parses an action. Only the settable system properties may be targets of SET and REMOVE
// (MessageId, CorrelationId, SessionId, ReplyToSessionId, Label/Subject, To, ReplyTo,
// ContentType, PartitionKey, TimeToLive, ScheduledEnqueueTimeUtc); others are parse errors.
Result<SqlAction> ParseSqlAction(std::string_view expression, const SqlParameters& parameters = {});

// Runs the statements in order, each seeing the effects of the ones before. SET of an
// application property creates it or replaces it (an existing double property keeps its type
// when given an integer); SET to NULL or a missing property stores NULL; REMOVE deletes it.
// SET of a system property needs a value of its type (string; TimeToLive a number of ms ≥ 0;
// ScheduledEnqueueTimeUtc a timestamp), NULL clears it. On error (kInvalidArgument) `message`
// is left unchanged.
Status Apply(const SqlAction& action, MessageProperties& message);

// Exact, case-sensitive equality on every given field, AND-ed. An application property matches
// when the message has a property of exactly that name with an equal value (numbers compare by
// value, 10 equals 10.0). A filter with no field set matches every message.
struct CorrelationFilter {
  std::optional<std::string> correlation_id;
  std::optional<std::string> message_id;
  std::optional<std::string> to;
  std::optional<std::string> reply_to;
  std::optional<std::string> subject;  // Label
  std::optional<std::string> session_id;
  std::optional<std::string> reply_to_session_id;
  std::optional<std::string> content_type;
  std::map<std::string, PropertyValue> properties;

  bool Matches(const MessageProperties& message) const;
  bool empty() const;
  bool operator==(const CorrelationFilter&) const = default;
};

struct TrueFilter {
  bool operator==(const TrueFilter&) const = default;
};
struct FalseFilter {
  bool operator==(const FalseFilter&) const = default;
};

using RuleFilter = std::variant<TrueFilter, FalseFilter, SqlFilter, CorrelationFilter>;

// Whether `filter` selects `message`; SQL evaluation failures are errors (see SqlFilter).
Result<bool> EvaluateFilter(const RuleFilter& filter, const MessageProperties& message);

struct Rule {
  std::string name;
  RuleFilter filter;
  std::optional<SqlAction> action;
  bool operator==(const Rule&) const = default;
};

// The default rule of a new subscription: "$Default" with a TrueFilter and no action.
Rule DefaultRule();

// One copy of a message for a subscription.
struct RuleCopy {
  MessageProperties properties;
  // The rule whose action made this copy (also in the copy's "RuleName" application property);
  // empty for the one copy that the action-less rules select.
  std::string rule_name;
};

struct FanOutResult {
  std::vector<RuleCopy> copies;
  // The first filter or action evaluation failure, if any (that rule then counts as not
  // matching). The broker dead-letters on it when deadLetteringOnFilterEvaluationExceptions.
  Status error;
};

// The copies of `message` that a subscription with `rules` receives: one copy when any rule
// without an action matches (first in the result), then one copy per matching rule with an
// action, in rule order, with the action applied and "RuleName" set. No rules → no copies.
FanOutResult FanOut(std::span<const Rule> rules, const MessageProperties& message);

}  // namespace tributary::bus
