#include "rules.h"

#include <charconv>
#include <cmath>

#include "tributary/base/strings.h"
#include "tributary/bus/rule_json.h"

namespace tributary::bus {

namespace {

Status Bad(std::string m) { return Status(Code::kInvalidArgument, std::move(m), errc::kBadRequest); }

std::optional<std::string> Str(const Json& o, const char* key) {
  const Json* v = o.Find(key);
  if (!v || !v->is_string()) return std::nullopt;
  return v->as_string();
}

constexpr const char* kDefaultRulesJson = R"([{"Name":"$Default","Properties":{"FilterType":"True"}}])";

}  // namespace

std::vector<MessageProperties> RuleSet::FanOut(const MessageProperties& m) const {
  FanOutResult r = bus::FanOut(rules_, m);
  std::vector<MessageProperties> out;
  out.reserve(r.copies.size());
  for (auto& c : r.copies) out.push_back(std::move(c.properties));
  return out;
}

Result<std::shared_ptr<const RuleSet>> ParseRules(std::string_view json) {
  if (Trim(json).empty()) return DefaultRules();
  ASSIGN_OR_RETURN(Json doc, ParseJson(json));
  if (!doc.is_array()) return Bad("Rules must be a JSON array of rule objects.");
  std::vector<Rule> rules;
  for (const Json& j : doc.as_array()) {
    ASSIGN_OR_RETURN(Rule r, RuleFromJson(j));
    for (const auto& other : rules)
      if (EqualsIgnoreCase(other.name, r.name)) return Bad("The rule name '" + r.name + "' is used twice.");
    rules.push_back(std::move(r));
  }
  return std::make_shared<const RuleSet>(std::move(rules));
}

std::shared_ptr<const RuleSet> DefaultRules() {
  static const auto kDefault = std::make_shared<const RuleSet>(std::vector<Rule>{DefaultRule()});
  return kDefault;
}

std::string RulesJsonOrDefault(const std::string& json) { return Trim(json).empty() ? kDefaultRulesJson : json; }

Result<std::string> AddRuleJson(const std::string& rules, const std::string& rule) {
  ASSIGN_OR_RETURN(Json doc, ParseJson(RulesJsonOrDefault(rules)));
  ASSIGN_OR_RETURN(Json added, ParseJson(rule));
  ASSIGN_OR_RETURN(Rule parsed, RuleFromJson(added));
  std::string out = "[";
  bool first = true;
  for (const Json& j : doc.as_array()) {
    auto n = Str(j, "Name");
    if (n && EqualsIgnoreCase(*n, parsed.name))
      return Status(Code::kAlreadyExists, "The rule '" + parsed.name + "' already exists.", errc::kEntityExists);
    out += (first ? "" : ",") + j.Dump();
    first = false;
  }
  out += (first ? "" : ",") + added.Dump() + "]";
  return out;
}

Result<std::string> RemoveRuleJson(const std::string& rules, const std::string& name) {
  ASSIGN_OR_RETURN(Json doc, ParseJson(RulesJsonOrDefault(rules)));
  std::string out = "[";
  bool first = true, found = false;
  for (const Json& j : doc.as_array()) {
    auto n = Str(j, "Name");
    if (n && EqualsIgnoreCase(*n, name)) {
      found = true;
      continue;
    }
    out += (first ? "" : ",") + j.Dump();
    first = false;
  }
  if (!found) return Status(Code::kNotFound, "The rule '" + name + "' could not be found.", errc::kEntityNotFound);
  return out + "]";
}

Result<int64_t> ParseIsoDuration(std::string_view text) {
  std::string_view s = Trim(text);
  auto bad = [&] { return Bad("'" + std::string(text) + "' is not an ISO 8601 duration such as PT1M or P7D."); };
  if (s.empty() || (s[0] != 'P' && s[0] != 'p')) return bad();
  s.remove_prefix(1);
  bool time = false, any = false;
  double total = 0;
  while (!s.empty()) {
    if (s[0] == 'T' || s[0] == 't') {
      time = true;
      s.remove_prefix(1);
      continue;
    }
    size_t n = 0;
    while (n < s.size() && (std::isdigit(static_cast<unsigned char>(s[n])) || s[n] == '.')) ++n;
    if (n == 0 || n == s.size()) return bad();
    double v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + n, v);
    if (ec != std::errc() || p != s.data() + n) return bad();
    char unit = static_cast<char>(std::toupper(static_cast<unsigned char>(s[n])));
    double ms;
    if (!time && unit == 'D')
      ms = v * 86'400'000;
    else if (!time && unit == 'W')
      ms = v * 7 * 86'400'000;
    else if (time && unit == 'H')
      ms = v * 3'600'000;
    else if (time && unit == 'M')
      ms = v * 60'000;
    else if (time && unit == 'S')
      ms = v * 1000;
    else
      return bad();
    total += ms;
    any = true;
    s.remove_prefix(n + 1);
  }
  if (!any) return bad();
  // TimeSpan.MaxValue (P10675199DT2H48M5.4775807S) and anything past int64 → "forever".
  if (total >= 9.2e18) return INT64_MAX;
  return static_cast<int64_t>(std::llround(total));
}

std::string FormatIsoDuration(int64_t ms) {
  if (ms == INT64_MAX) return "P10675199DT2H48M5.4775807S";
  std::string out = "P";
  int64_t days = ms / 86'400'000;
  ms %= 86'400'000;
  if (days) out += std::to_string(days) + "D";
  if (ms || days == 0) {
    out += "T";
    int64_t h = ms / 3'600'000, m = (ms / 60'000) % 60, s = (ms / 1000) % 60, rest = ms % 1000;
    if (h) out += std::to_string(h) + "H";
    if (m) out += std::to_string(m) + "M";
    if (s || rest || (!h && !m)) {
      out += std::to_string(s);
      if (rest) {
        char buf[8];
        std::snprintf(buf, sizeof buf, ".%03d", static_cast<int>(rest));
        out += buf;
      }
      out += "S";
    }
  }
  return out;
}

Status ApplyEmulatorProperties(const Json& props, EntityProperties& p) {
  if (!props.is_object()) return Bad("Properties must be an object.");
  for (const auto& [key, v] : props.as_object()) {
    auto duration = [&](int64_t& out) -> Status {
      if (!v.is_string()) return Bad(key + " must be an ISO 8601 duration string.");
      ASSIGN_OR_RETURN(out, ParseIsoDuration(v.as_string()));
      return Status::Ok();
    };
    auto boolean = [&](bool& out) -> Status {
      if (!v.is_bool()) return Bad(key + " must be true or false.");
      out = v.as_bool();
      return Status::Ok();
    };
    auto integer = [&](int64_t& out) -> Status {
      if (!v.is_int()) return Bad(key + " must be an integer.");
      out = v.as_int();
      return Status::Ok();
    };
    auto text = [&](std::string& out) -> Status {
      if (v.is_null()) return Status::Ok();
      if (!v.is_string()) return Bad(key + " must be a string.");
      out = v.as_string();
      return Status::Ok();
    };
    std::string k = ToLower(key);
    if (k == "lockduration")
      RETURN_IF_ERROR(duration(p.lock_duration_ms));
    else if (k == "maxdeliverycount")
      RETURN_IF_ERROR(integer(p.max_delivery_count));
    else if (k == "defaultmessagetimetolive")
      RETURN_IF_ERROR(duration(p.default_message_ttl_ms));
    else if (k == "deadletteringonmessageexpiration")
      RETURN_IF_ERROR(boolean(p.dead_lettering_on_message_expiration));
    else if (k == "requiressession")
      RETURN_IF_ERROR(boolean(p.requires_session));
    else if (k == "requiresduplicatedetection")
      RETURN_IF_ERROR(boolean(p.requires_duplicate_detection));
    else if (k == "duplicatedetectionhistorytimewindow")
      RETURN_IF_ERROR(duration(p.duplicate_detection_history_time_window_ms));
    else if (k == "maxsizeinmegabytes")
      RETURN_IF_ERROR(integer(p.max_size_in_megabytes));
    else if (k == "maxmessagesizeinkilobytes")
      RETURN_IF_ERROR(integer(p.max_message_size_in_kilobytes));
    else if (k == "forwardto")
      RETURN_IF_ERROR(text(p.forward_to));
    else if (k == "forwarddeadletteredmessagesto")
      RETURN_IF_ERROR(text(p.forward_dead_lettered_messages_to));
    else if (k == "status")
      RETURN_IF_ERROR(text(p.status));
    else if (k == "usermetadata")
      RETURN_IF_ERROR(text(p.user_metadata));
    else if (k == "enablebatchedoperations" || k == "enablepartitioning" || k == "autodeleteonidle" ||
             k == "deadletteringonfilterevaluationexceptions" || k == "supportordering")
      continue;  // accepted, no effect here
    else
      return Bad("Unknown entity property '" + key + "'.");
  }
  return Status::Ok();
}

}  // namespace tributary::bus
