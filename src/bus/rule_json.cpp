#include "tributary/bus/rule_json.h"

#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "tributary/base/strings.h"
#include "tributary/base/time.h"

namespace tributary::bus {

namespace {

Status Bad(std::string message) { return InvalidArgument("Invalid rule: " + std::move(message) + "."); }

std::string Quoted(std::string_view key) { return "'" + PrintableText(key, 60) + "'"; }

// The members of `object` matched against `keys` ignoring case; each found value lands in the
// slot of its key. Unknown keys (other than `ignored`) and duplicates are errors.
Status Members(const Json& object, std::string_view where, const std::vector<std::string_view>& keys,
               std::vector<const Json*>& slots, const std::vector<std::string_view>& ignored = {}) {
  if (!object.is_object()) return Bad(std::string(where) + " must be an object, not " + std::string(object.TypeName()));
  slots.assign(keys.size(), nullptr);
  for (const auto& [name, value] : object.as_object()) {
    size_t i = 0;
    while (i < keys.size() && !EqualsIgnoreCase(keys[i], name)) ++i;
    if (i == keys.size()) {
      bool skip = false;
      for (auto k : ignored) skip = skip || EqualsIgnoreCase(k, name);
      if (skip) continue;
      std::string known;
      for (auto k : keys) known += (known.empty() ? "" : ", ") + std::string(k);
      return Bad("unknown key " + Quoted(name) + " in " + std::string(where) + " (known: " + known + ")");
    }
    if (slots[i]) return Bad("duplicate key " + Quoted(name) + " in " + std::string(where));
    slots[i] = &value;
  }
  return Status::Ok();
}

Result<std::optional<std::string>> OptionalString(const Json* v, std::string_view key) {
  if (!v || v->is_null()) return std::optional<std::string>();
  if (!v->is_string()) return Bad(std::string(key) + " must be a string, not " + std::string(v->TypeName()));
  return std::optional<std::string>(v->as_string());
}

Result<PropertyValue> ValueFromJson(const Json& v, std::string_view key) {
  auto p = ScalarFromJson(v);
  if (!p) return Bad("the value of correlation property " + Quoted(key) + " must be a string, number, boolean or null");
  return std::move(*p);
}

void WriteValue(JsonWriter& w, const PropertyValue& p) {
  std::visit(
      [&](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, std::monostate>) {
          w.Null();
        } else if constexpr (std::is_same_v<T, bool>) {
          w.Bool(x);
        } else if constexpr (std::is_same_v<T, int64_t>) {
          w.Int(x);
        } else if constexpr (std::is_same_v<T, double>) {
          // An integral double keeps a fraction so that it reads back as a double.
          if (std::isfinite(x) && x == std::trunc(x) && std::fabs(x) < 1e15) {
            std::string s;
            AppendInt(s, static_cast<int64_t>(x));
            w.Raw(s + ".0");
          } else {
            w.Double(x);
          }
        } else if constexpr (std::is_same_v<T, std::string>) {
          w.String(x);
        } else {
          w.String(FormatTimestamp(x));
        }
      },
      p.v);
}

std::string WithoutSpaces(std::string_view s) {
  std::string out;
  for (char c : s)
    if (c != ' ' && c != '\t' && c != '\r' && c != '\n') out.push_back(c);
  return out;
}

Result<CorrelationFilter> CorrelationFromJson(const Json& j) {
  static const std::vector<std::string_view> kKeys = {
      "CorrelationId",    "MessageId",   "To",         "ReplyTo", "Label", "SessionId",
      "ReplyToSessionId", "ContentType", "Properties", "Subject", "SendTo"};
  std::vector<const Json*> m;
  RETURN_IF_ERROR(Members(j, "CorrelationFilter", kKeys, m, {"RequiresPreprocessing"}));
  if (m[4] && m[9]) return Bad("CorrelationFilter has both Label and Subject");
  if (m[2] && m[10]) return Bad("CorrelationFilter has both To and SendTo");
  CorrelationFilter f;
  std::optional<std::string>* fields[] = {
      &f.correlation_id, &f.message_id,          &f.to,          &f.reply_to, &f.subject,
      &f.session_id,     &f.reply_to_session_id, &f.content_type};
  for (size_t i = 0; i < 8; ++i) {
    const Json* v = m[i];
    if (i == 4 && !v) v = m[9];
    if (i == 2 && !v) v = m[10];
    ASSIGN_OR_RETURN(*fields[i], OptionalString(v, kKeys[i]));
  }
  if (const Json* props = m[8]; props && !props->is_null()) {
    if (!props->is_object()) return Bad("CorrelationFilter.Properties must be an object");
    for (const auto& [name, value] : props->as_object()) {
      if (f.properties.count(name)) return Bad("duplicate correlation property " + Quoted(name));
      ASSIGN_OR_RETURN(f.properties[name], ValueFromJson(value, name));
    }
  }
  if (f.empty()) return Bad("CorrelationFilter sets no property");
  return f;
}

Result<std::string> SqlExpressionOf(const Json* j, std::string_view where) {
  if (!j || j->is_null()) return std::string();
  std::vector<const Json*> m;
  RETURN_IF_ERROR(Members(*j, where, {"SqlExpression"}, m, {"CompatibilityLevel", "RequiresPreprocessing"}));
  if (!m[0] || m[0]->is_null()) return std::string();
  if (!m[0]->is_string()) return Bad(std::string(where) + ".SqlExpression must be a string");
  return m[0]->as_string();
}

}  // namespace

Status ValidateRuleName(std::string_view name) {
  if (name.empty()) return Bad("the rule name is empty");
  size_t chars = 0;
  for (size_t i = 0; i < name.size();) {
    unsigned char c = static_cast<unsigned char>(name[i]);
    if (c < 0x20 || c == 0x7f) return Bad("the rule name contains a control character");
    size_t n = c < 0x80 ? 1 : Utf8SequenceLength(name, i);
    if (n == 0) return Bad("the rule name is not valid UTF-8");
    i += n;
    ++chars;
  }
  if (chars > kMaxRuleNameChars)
    return Bad("the rule name is longer than " + std::to_string(kMaxRuleNameChars) + " characters");
  return Status::Ok();
}

Result<Rule> RuleFromJson(const Json& j) {
  std::vector<const Json*> top;
  RETURN_IF_ERROR(Members(j, "the rule", {"Name", "Properties"}, top));
  if (!top[0] || !top[0]->is_string()) return Bad("Name must be a string");
  Rule rule;
  rule.name = top[0]->as_string();
  RETURN_IF_ERROR(ValidateRuleName(rule.name));
  if (!top[1]) return Bad("rule " + Quoted(rule.name) + " has no Properties");

  std::vector<const Json*> p;
  RETURN_IF_ERROR(Members(*top[1], "Properties", {"FilterType", "SqlFilter", "CorrelationFilter", "Action"}, p));
  std::string type;
  if (p[0] && !p[0]->is_null()) {
    if (!p[0]->is_string()) return Bad("FilterType must be a string");
    type = p[0]->as_string();
  } else if (p[1] && !p[1]->is_null() && !(p[2] && !p[2]->is_null())) {
    type = "Sql";
  } else if (p[2] && !p[2]->is_null() && !(p[1] && !p[1]->is_null())) {
    type = "Correlation";
  } else {
    return Bad("rule " + Quoted(rule.name) + " needs a FilterType");
  }

  if (EqualsIgnoreCase(type, "Sql")) {
    ASSIGN_OR_RETURN(std::string expr, SqlExpressionOf(p[1], "SqlFilter"));
    std::string compact = WithoutSpaces(expr);
    if (compact.empty()) return Bad("rule " + Quoted(rule.name) + " has no SqlFilter.SqlExpression");
    if (compact == "1=1") {
      rule.filter = TrueFilter{};
    } else if (compact == "1=0") {
      rule.filter = FalseFilter{};
    } else {
      auto f = ParseSqlFilter(expr);
      if (!f.ok()) return Bad("rule " + Quoted(rule.name) + ": " + f.status().message());
      rule.filter = std::move(f).value();
    }
  } else if (EqualsIgnoreCase(type, "Correlation")) {
    if (!p[2] || p[2]->is_null()) return Bad("rule " + Quoted(rule.name) + " has no CorrelationFilter");
    auto f = CorrelationFromJson(*p[2]);
    if (!f.ok()) return Bad("rule " + Quoted(rule.name) + ": " + f.status().message());
    rule.filter = std::move(f).value();
  } else if (EqualsIgnoreCase(type, "True")) {
    rule.filter = TrueFilter{};
  } else if (EqualsIgnoreCase(type, "False")) {
    rule.filter = FalseFilter{};
  } else {
    return Bad("FilterType " + Quoted(type) + " is not Sql, Correlation, True or False");
  }

  ASSIGN_OR_RETURN(std::string action, SqlExpressionOf(p[3], "Action"));
  if (!Trim(action).empty()) {
    auto a = ParseSqlAction(action);
    if (!a.ok()) return Bad("rule " + Quoted(rule.name) + ": " + a.status().message());
    rule.action = std::move(a).value();
  }
  return rule;
}

Result<Rule> ParseRuleJson(std::string_view text) {
  auto j = ParseJson(text);
  if (!j.ok()) return Bad(j.status().message());
  return RuleFromJson(*j);
}

void WriteRuleJson(JsonWriter& w, const Rule& rule) {
  w.BeginObject();
  w.Key("Name");
  w.String(rule.name);
  w.Key("Properties");
  w.BeginObject();
  w.Key("FilterType");
  if (const auto* c = std::get_if<CorrelationFilter>(&rule.filter)) {
    w.String("Correlation");
    w.Key("CorrelationFilter");
    w.BeginObject();
    const std::pair<const char*, const std::optional<std::string>*> fields[] = {
        {"CorrelationId", &c->correlation_id},
        {"MessageId", &c->message_id},
        {"To", &c->to},
        {"ReplyTo", &c->reply_to},
        {"Label", &c->subject},
        {"SessionId", &c->session_id},
        {"ReplyToSessionId", &c->reply_to_session_id},
        {"ContentType", &c->content_type}};
    for (const auto& [key, value] : fields) {
      if (!*value) continue;
      w.Key(key);
      w.String(**value);
    }
    if (!c->properties.empty()) {
      w.Key("Properties");
      w.BeginObject();
      for (const auto& [name, value] : c->properties) {
        w.Key(name);
        WriteValue(w, value);
      }
      w.EndObject();
    }
    w.EndObject();
  } else {
    w.String("Sql");
    w.Key("SqlFilter");
    w.BeginObject();
    w.Key("SqlExpression");
    if (std::holds_alternative<TrueFilter>(rule.filter))
      w.String("1=1");
    else if (std::holds_alternative<FalseFilter>(rule.filter))
      w.String("1=0");
    else
      w.String(std::get<SqlFilter>(rule.filter).expression());
    w.EndObject();
  }
  if (rule.action) {
    w.Key("Action");
    w.BeginObject();
    w.Key("SqlExpression");
    w.String(rule.action->expression());
    w.EndObject();
  }
  w.EndObject();
  w.EndObject();
}

std::string RuleToJson(const Rule& rule) {
  std::string out;
  JsonWriter w(out);
  WriteRuleJson(w, rule);
  return out;
}

std::optional<PropertyValue> ScalarFromJson(const Json& v) {
  PropertyValue p;
  switch (v.type()) {
    case Json::Type::kNull:
      break;
    case Json::Type::kBool:
      p.v = v.as_bool();
      break;
    case Json::Type::kInt:
      p.v = v.as_int();
      break;
    case Json::Type::kDouble:
      p.v = v.as_double();
      break;
    case Json::Type::kString:
      p.v = v.as_string();
      break;
    default:
      return std::nullopt;
  }
  return p;
}

}  // namespace tributary::bus
