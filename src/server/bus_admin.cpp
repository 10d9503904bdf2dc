#include "tributary/server/bus_admin.h"

#include <array>
#include <cstdio>

#include "tributary/base/strings.h"
#include "tributary/base/time.h"

namespace tributary::server {

namespace {

// TimeSpan.MaxValue in whole milliseconds: longer durations mean "never".
constexpr int64_t kTimeSpanMaxMs = 922'337'203'685'477;
constexpr const char* kTimeSpanMaxText = "P10675199DT2H48M5.4775807S";

const Json* FindCi(const Json& obj, std::string_view key) {
  if (!obj.is_object()) return nullptr;
  for (const auto& [k, v] : obj.as_object())
    if (EqualsIgnoreCase(k, key)) return &v;
  return nullptr;
}

Status Bad(std::string m) { return Status(Code::kInvalidArgument, std::move(m), bus::errc::kBadRequest); }

bool Applies(bus::EntityKind kind, std::string_view scope) {
  // scope: q = queue, t = topic, s = subscription
  char c = kind == bus::EntityKind::kQueue ? 'q' : kind == bus::EntityKind::kTopic ? 't' : 's';
  return scope.find(c) != std::string_view::npos;
}

Status ReadDuration(const std::string& key, const Json& v, int64_t& out) {
  if (!v.is_string()) return Bad("'" + key + "' must be an ISO 8601 duration such as \"PT1M\".");
  auto ms = ParseIsoDuration(v.as_string());
  if (!ms) return Bad("'" + key + "': '" + PrintableText(v.as_string(), 60) + "' is not an ISO 8601 duration.");
  out = *ms;
  return {};
}

Status ReadInt(const std::string& key, const Json& v, int64_t& out) {
  if (!v.is_int()) return Bad("'" + key + "' must be an integer.");
  out = v.as_int();
  return {};
}

Status ReadBool(const std::string& key, const Json& v, bool& out) {
  if (!v.is_bool()) return Bad("'" + key + "' must be true or false.");
  out = v.as_bool();
  return {};
}

Status ReadString(const std::string& key, const Json& v, std::string& out, bool null_clears) {
  if (v.is_null() && null_clears) {
    out.clear();
    return {};
  }
  if (!v.is_string()) return Bad("'" + key + "' must be a string.");
  out = v.as_string();
  return {};
}

// Members GET answers that a PUT may send back unchanged; they are not settable.
constexpr std::string_view kReadOnly[] = {
    "name",
    "topicName",
    "subscriptionName",
    "totalMessageCount",
    "activeMessageCount",
    "deadLetterMessageCount",
    "scheduledMessageCount",
    "transferMessageCount",
    "transferDeadLetterMessageCount",
    "deferredMessageCount",
    "lockedMessageCount",
    "sizeInBytes",
    "createdAt",
    "modifiedAt",
    "accessedAt",
    "subscriptionCount",
    "enableBatchedOperations",
    "autoDeleteOnIdle",
    "supportOrdering",
    "enableExpress",
    "deadLetteringOnFilterEvaluationExceptions",
    "authorizationRules",
    "availabilityStatus",
    "defaultRuleOptions",
    "rules",
};

std::optional<std::string> Str(const Json& obj, std::string_view key) {
  const Json* v = FindCi(obj, key);
  if (!v || v->is_null()) return std::nullopt;
  if (v->is_string()) return v->as_string();
  return v->Dump();
}

}  // namespace

std::optional<int64_t> ParseIsoDuration(std::string_view s) {
  if (s == kTimeSpanMaxText) return INT64_MAX;
  size_t i = 0;
  bool negative = false;
  if (i < s.size() && s[i] == '-') {
    negative = true;
    ++i;
  }
  if (i >= s.size() || (s[i] != 'P' && s[i] != 'p')) return std::nullopt;
  ++i;
  __int128 total = 0;  // ms
  bool in_time = false, any = false, time_part = false;
  std::string_view order_date = "WD", order_time = "HMS";
  size_t date_pos = 0, time_pos = 0;
  while (i < s.size()) {
    char c = s[i];
    if (c == 'T' || c == 't') {
      if (in_time) return std::nullopt;
      in_time = true;
      ++i;
      continue;
    }
    __int128 whole = 0;
    size_t digits = 0;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
      if (whole < (__int128(1) << 80)) whole = whole * 10 + (s[i] - '0');
      ++i;
      ++digits;
    }
    int64_t frac_ms = 0;
    bool has_frac = false;
    if (i < s.size() && (s[i] == '.' || s[i] == ',')) {
      has_frac = true;
      ++i;
      int scale = 100;
      size_t fd = 0;
      while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
        if (scale > 0) frac_ms += (s[i] - '0') * scale;
        scale /= 10;
        ++i;
        ++fd;
      }
      if (fd == 0) return std::nullopt;
    }
    if (digits == 0 || i >= s.size()) return std::nullopt;
    char unit = static_cast<char>(s[i] & ~0x20);  // upper case
    ++i;
    std::string_view order = in_time ? order_time : order_date;
    size_t& pos = in_time ? time_pos : date_pos;
    size_t at = order.find(unit, pos);
    if (at == std::string_view::npos) return std::nullopt;  // unknown unit, Y/M dates, wrong order
    pos = at + 1;
    if (has_frac && unit != 'S') return std::nullopt;
    __int128 unit_ms = unit == 'W'   ? 7LL * 86'400'000
                       : unit == 'D' ? 86'400'000
                       : unit == 'H' ? 3'600'000
                       : unit == 'M' ? 60'000
                                     : 1'000;
    time_part = time_part || in_time;
    total += whole * unit_ms + frac_ms;
    if (total > (__int128(1) << 90)) total = __int128(1) << 90;
    any = true;
  }
  if (!any || (in_time && !time_part)) return std::nullopt;  // "P", "P1DT"
  if (total >= kTimeSpanMaxMs) return negative ? std::nullopt : std::optional<int64_t>(INT64_MAX);
  if (negative) return std::nullopt;  // no entity property takes a negative duration
  return static_cast<int64_t>(total);
}

std::string FormatIsoDuration(int64_t ms) {
  if (ms >= kTimeSpanMaxMs) return kTimeSpanMaxText;
  if (ms <= 0) return "PT0S";
  int64_t days = ms / 86'400'000;
  int64_t rest = ms % 86'400'000;
  int64_t h = rest / 3'600'000, m = rest / 60'000 % 60, s = rest / 1000 % 60, f = rest % 1000;
  std::string out = "P";
  if (days) out += std::to_string(days) + "D";
  if (rest) {
    out += "T";
    if (h) out += std::to_string(h) + "H";
    if (m) out += std::to_string(m) + "M";
    if (s || f) {
      out += std::to_string(s);
      if (f) {
        char buf[8];
        std::snprintf(buf, sizeof buf, ".%03lld", static_cast<long long>(f));
        std::string frac(buf);
        while (frac.back() == '0') frac.pop_back();
        out += frac;
      }
      out += "S";
    }
  }
  return out;
}

Status ReadEntityProperties(const Json& body, bus::EntityKind kind, bus::EntityProperties& p) {
  if (!body.is_object()) return Bad("The entity description must be a JSON object.");
  const char* kind_name = kind == bus::EntityKind::kQueue   ? "a queue"
                          : kind == bus::EntityKind::kTopic ? "a topic"
                                                            : "a subscription";
  for (const auto& [key, v] : body.as_object()) {
    auto is = [&](std::string_view name) { return EqualsIgnoreCase(key, name); };
    auto scope_ok = [&](std::string_view scope) -> Status {
      if (Applies(kind, scope)) return {};
      return Bad("'" + key + "' is not a property of " + kind_name + ".");
    };
    Status st;
    if (is("lockDuration")) {
      st = scope_ok("qs");
      if (st.ok()) st = ReadDuration(key, v, p.lock_duration_ms);
    } else if (is("maxDeliveryCount")) {
      st = scope_ok("qs");
      if (st.ok()) st = ReadInt(key, v, p.max_delivery_count);
    } else if (is("defaultMessageTimeToLive")) {
      st = ReadDuration(key, v, p.default_message_ttl_ms);
    } else if (is("deadLetteringOnMessageExpiration")) {
      st = scope_ok("qs");
      if (st.ok()) st = ReadBool(key, v, p.dead_lettering_on_message_expiration);
    } else if (is("requiresSession")) {
      st = scope_ok("qs");
      if (st.ok()) st = ReadBool(key, v, p.requires_session);
    } else if (is("requiresDuplicateDetection")) {
      st = scope_ok("qt");
      if (st.ok()) st = ReadBool(key, v, p.requires_duplicate_detection);
    } else if (is("duplicateDetectionHistoryTimeWindow")) {
      st = scope_ok("qt");
      if (st.ok()) st = ReadDuration(key, v, p.duplicate_detection_history_time_window_ms);
    } else if (is("maxSizeInMegabytes")) {
      st = scope_ok("qt");
      if (st.ok()) st = ReadInt(key, v, p.max_size_in_megabytes);
    } else if (is("maxMessageSizeInKilobytes")) {
      st = scope_ok("qt");
      if (st.ok()) st = ReadInt(key, v, p.max_message_size_in_kilobytes);
    } else if (is("forwardTo")) {
      st = scope_ok("qs");
      if (st.ok()) st = ReadString(key, v, p.forward_to, true);
    } else if (is("forwardDeadLetteredMessagesTo")) {
      st = scope_ok("qs");
      if (st.ok()) st = ReadString(key, v, p.forward_dead_lettered_messages_to, true);
    } else if (is("status")) {
      st = ReadString(key, v, p.status, false);
    } else if (is("userMetadata")) {
      st = ReadString(key, v, p.user_metadata, true);
    } else if (is("enablePartitioning")) {
      if (!v.is_bool() || v.as_bool()) st = Bad("Partitioned entities are not supported ('enablePartitioning').");
    } else {
      bool read_only = false;
      for (auto ro : kReadOnly) read_only = read_only || EqualsIgnoreCase(key, ro);
      if (!read_only)
        st = Bad("'" + PrintableText(key, 80) + "' is not a property of " + kind_name +
                 " (see docs/servicebus.md, Management).");
    }
    if (!st.ok()) return st;
  }
  return {};
}

void WriteEntity(JsonWriter& w, const bus::EntityInfo& e) {
  const auto& p = e.properties;
  const auto& r = e.runtime;
  bool queue = e.kind == bus::EntityKind::kQueue, topic = e.kind == bus::EntityKind::kTopic,
       sub = e.kind == bus::EntityKind::kSubscription;
  w.BeginObject();
  if (sub) {
    // "t/Subscriptions/s": the topic path may itself contain '/'.
    auto cut = e.path.rfind('/');
    auto mid = cut == std::string::npos ? std::string::npos : e.path.rfind('/', cut - 1);
    w.Key("topicName");
    w.String(mid == std::string::npos ? std::string_view() : std::string_view(e.path).substr(0, mid));
    w.Key("subscriptionName");
    w.String(cut == std::string::npos ? std::string_view(e.path) : std::string_view(e.path).substr(cut + 1));
  } else {
    w.Key("name");
    w.String(e.path);
  }
  if (!topic) {
    w.Key("lockDuration");
    w.String(FormatIsoDuration(p.lock_duration_ms));
  }
  if (!sub) {
    w.Key("maxSizeInMegabytes");
    w.Int(p.max_size_in_megabytes);
    w.Key("maxMessageSizeInKilobytes");
    w.Int(p.max_message_size_in_kilobytes);
    w.Key("requiresDuplicateDetection");
    w.Bool(p.requires_duplicate_detection);
    w.Key("duplicateDetectionHistoryTimeWindow");
    w.String(FormatIsoDuration(p.duplicate_detection_history_time_window_ms));
  }
  if (!topic) {
    w.Key("requiresSession");
    w.Bool(p.requires_session);
  }
  w.Key("defaultMessageTimeToLive");
  w.String(FormatIsoDuration(p.default_message_ttl_ms));
  if (!topic) {
    w.Key("deadLetteringOnMessageExpiration");
    w.Bool(p.dead_lettering_on_message_expiration);
    w.Key("maxDeliveryCount");
    w.Int(p.max_delivery_count);
  }
  w.Key("enableBatchedOperations");
  w.Bool(true);
  w.Key("status");
  w.String(p.status);
  if (!topic && !p.forward_to.empty()) {
    w.Key("forwardTo");
    w.String(p.forward_to);
  }
  if (!topic && !p.forward_dead_lettered_messages_to.empty()) {
    w.Key("forwardDeadLetteredMessagesTo");
    w.String(p.forward_dead_lettered_messages_to);
  }
  w.Key("userMetadata");
  w.String(p.user_metadata);
  if (queue || sub) {
    w.Key("totalMessageCount");
    w.Int(r.active + r.dead_lettered + r.scheduled + r.transfer + r.transfer_dead_lettered + r.deferred);
    w.Key("activeMessageCount");
    w.Int(r.active);
    w.Key("deadLetterMessageCount");
    w.Int(r.dead_lettered);
  }
  w.Key("scheduledMessageCount");
  w.Int(r.scheduled);
  if (queue || sub) {
    w.Key("transferMessageCount");
    w.Int(r.transfer);
    w.Key("transferDeadLetterMessageCount");
    w.Int(r.transfer_dead_lettered);
    w.Key("deferredMessageCount");
    w.Int(r.deferred);
    w.Key("lockedMessageCount");
    w.Int(r.locked);
  }
  w.Key("sizeInBytes");
  w.Int(r.size_in_bytes);
  w.Key("createdAt");
  w.String(FormatTimestamp(r.created_at));
  w.Key("modifiedAt");
  w.String(FormatTimestamp(r.updated_at));
  w.Key("accessedAt");
  w.String(FormatTimestamp(r.accessed_at));
  w.EndObject();
}

std::string EntityJson(const bus::EntityInfo& e) {
  std::string out;
  JsonWriter w(out);
  WriteEntity(w, e);
  return out;
}

Result<std::string> RuleForBroker(const std::string& name, const Json& body) {
  if (!body.is_object()) return Bad("A rule must be a JSON object.");
  std::string out;
  JsonWriter w(out);
  w.BeginObject();
  w.Key("Name");
  w.String(name);
  w.Key("Properties");
  if (const Json* props = FindCi(body, "Properties")) {
    // The emulator's shape: passed on; the broker checks it.
    props->Write(w);
    w.EndObject();
    return out;
  }
  for (const auto& [k, v] : body.as_object()) {
    if (!EqualsIgnoreCase(k, "filter") && !EqualsIgnoreCase(k, "action") && !EqualsIgnoreCase(k, "name") &&
        !EqualsIgnoreCase(k, "ruleName"))
      return Bad("'" + PrintableText(k, 80) + "' is not a member of a rule; use \"filter\" and \"action\".");
  }
  w.BeginObject();
  const Json* filter = FindCi(body, "filter");
  if (filter && !filter->is_null() && !filter->is_object()) return Bad("The rule's \"filter\" must be an object.");
  if (filter && filter->is_object() && FindCi(*filter, "sqlExpression")) {
    const Json* expr = FindCi(*filter, "sqlExpression");
    if (!expr->is_string()) return Bad("\"sqlExpression\" must be a string.");
    w.Key("FilterType");
    w.String("Sql");
    w.Key("SqlFilter");
    w.BeginObject();
    w.Key("SqlExpression");
    w.String(expr->as_string());
    if (const Json* params = FindCi(*filter, "sqlParameters");
        params && !params->is_null() && !(params->is_object() && params->as_object().empty()))
      return Bad("\"sqlParameters\" are not supported; write the values into the expression.");
    w.EndObject();
    for (const auto& [k, v] : filter->as_object())
      if (!EqualsIgnoreCase(k, "sqlExpression") && !EqualsIgnoreCase(k, "sqlParameters"))
        return Bad("'" + PrintableText(k, 80) + "' is not a member of a SQL filter.");
  } else if (filter && filter->is_object() && !filter->as_object().empty()) {
    static constexpr std::array<std::pair<std::string_view, std::string_view>, 9> kFields = {{
        {"correlationId", "CorrelationId"},
        {"messageId", "MessageId"},
        {"to", "To"},
        {"replyTo", "ReplyTo"},
        {"subject", "Label"},
        {"label", "Label"},
        {"sessionId", "SessionId"},
        {"replyToSessionId", "ReplyToSessionId"},
        {"contentType", "ContentType"},
    }};
    w.Key("FilterType");
    w.String("Correlation");
    w.Key("CorrelationFilter");
    w.BeginObject();
    for (const auto& [k, v] : filter->as_object()) {
      bool known = false;
      for (const auto& [from, to] : kFields) {
        if (!EqualsIgnoreCase(k, from)) continue;
        known = true;
        if (v.is_null()) break;
        if (!v.is_string()) return Bad("The correlation filter's '" + k + "' must be a string.");
        w.Key(to);
        w.String(v.as_string());
      }
      if (known) continue;
      if (EqualsIgnoreCase(k, "applicationProperties") || EqualsIgnoreCase(k, "properties")) {
        if (v.is_null()) continue;
        if (!v.is_object()) return Bad("The correlation filter's '" + k + "' must be an object.");
        w.Key("Properties");
        v.Write(w);
        continue;
      }
      return Bad("'" + PrintableText(k, 80) + "' is not a member of a correlation filter.");
    }
    w.EndObject();
  } else {
    w.Key("FilterType");
    w.String("Sql");
    w.Key("SqlFilter");
    w.BeginObject();
    w.Key("SqlExpression");
    w.String("1=1");
    w.EndObject();
  }
  if (const Json* action = FindCi(body, "action"); action && !action->is_null()) {
    const Json* expr = action->is_object() ? FindCi(*action, "sqlExpression") : nullptr;
    if (!expr || !expr->is_string()) return Bad("The rule's \"action\" must be {\"sqlExpression\": \"…\"}.");
    if (!expr->as_string().empty()) {
      w.Key("Action");
      w.BeginObject();
      w.Key("SqlExpression");
      w.String(expr->as_string());
      w.EndObject();
    }
  }
  w.EndObject();
  w.EndObject();
  return out;
}

void WriteRule(JsonWriter& w, const Json& rule) {
  w.BeginObject();
  w.Key("name");
  w.String(Str(rule, "Name").value_or(""));
  const Json* props = FindCi(rule, "Properties");
  static const Json kEmpty = Json::MakeObject({});
  if (!props || !props->is_object()) props = &kEmpty;
  std::string type = Str(*props, "FilterType").value_or("");
  w.Key("filter");
  w.BeginObject();
  if (EqualsIgnoreCase(type, "Correlation")) {
    const Json* cf = FindCi(*props, "CorrelationFilter");
    static constexpr std::array<std::pair<std::string_view, std::string_view>, 8> kFields = {{
        {"CorrelationId", "correlationId"},
        {"MessageId", "messageId"},
        {"To", "to"},
        {"ReplyTo", "replyTo"},
        {"Label", "subject"},
        {"SessionId", "sessionId"},
        {"ReplyToSessionId", "replyToSessionId"},
        {"ContentType", "contentType"},
    }};
    if (cf && cf->is_object()) {
      for (const auto& [from, to] : kFields) {
        if (auto v = Str(*cf, from)) {
          w.Key(to);
          w.String(*v);
        }
      }
      w.Key("applicationProperties");
      const Json* ap = FindCi(*cf, "Properties");
      if (ap && ap->is_object())
        ap->Write(w);
      else
        w.Raw("{}");
    }
  } else {
    std::string expr = EqualsIgnoreCase(type, "False") ? "1=0" : "1=1";
    if (const Json* sf = FindCi(*props, "SqlFilter"); sf && sf->is_object())
      expr = Str(*sf, "SqlExpression").value_or(expr);
    w.Key("sqlExpression");
    w.String(expr);
  }
  w.EndObject();
  w.Key("action");
  const Json* action = FindCi(*props, "Action");
  std::optional<std::string> expr = action ? Str(*action, "SqlExpression") : std::nullopt;
  if (expr && !expr->empty()) {
    w.BeginObject();
    w.Key("sqlExpression");
    w.String(*expr);
    w.EndObject();
  } else {
    w.Null();
  }
  w.EndObject();
}

Result<std::string> SubscriptionRulesForBroker(const Json& body) {
  if (!body.is_object()) return std::string();
  std::string out;
  JsonWriter w(out);
  if (const Json* d = FindCi(body, "defaultRuleOptions"); d && !d->is_null()) {
    if (!d->is_object()) return Bad("\"defaultRuleOptions\" must be an object.");
    std::string name = Str(*d, "name").value_or("$Default");
    ASSIGN_OR_RETURN(std::string rule, RuleForBroker(name, *d));
    w.BeginArray();
    w.Raw(rule);
    w.EndArray();
    return out;
  }
  const Json* rules = FindCi(body, "rules");
  if (!rules || rules->is_null()) return std::string();
  if (!rules->is_array()) return Bad("\"rules\" must be an array.");
  w.BeginArray();
  for (const Json& r : rules->as_array()) {
    if (!r.is_object()) return Bad("Each of \"rules\" must be an object.");
    auto name = Str(r, "name");
    if (!name || name->empty()) return Bad("Each of \"rules\" needs a \"name\".");
    ASSIGN_OR_RETURN(std::string rule, RuleForBroker(*name, r));
    w.Raw(rule);
  }
  w.EndArray();
  return out;
}

}  // namespace tributary::server
