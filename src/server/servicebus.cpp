#include "servicebus.h"

#include <array>
#include <atomic>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "tributary/base/json.h"
#include "tributary/base/strings.h"
#include "tributary/base/time.h"
#include "tributary/bus/rule_json.h"
#include "tributary/server/bus_admin.h"

namespace tributary::server {

using odata::HttpRequest;
using odata::HttpResponse;
namespace errc = bus::errc;

namespace {

constexpr std::string_view kPrefix = "/servicebus/";
constexpr std::string_view kBatchContentType = "application/vnd.microsoft.servicebus.json";
constexpr const char* kJson = "application/json; charset=utf-8";
constexpr int64_t kDefaultTimeoutSeconds = 60;  // Service Bus REST's default for messages/head
constexpr int64_t kMaxTimeoutSeconds = 300;
constexpr size_t kMaxIdChars = 128;  // MessageId, SessionId, PartitionKey
constexpr size_t kMaxDeadLetterText = 4096;
constexpr int64_t kDefaultPeek = 10;
constexpr int64_t kMaxPeek = 250;
constexpr int64_t kMaxReceiveBatch = 1000;  // messages/head?maxMessages=
constexpr size_t kMaxCompleteBatch = 5000;  // lock tokens per messages/complete

Status Bad(std::string m) { return Status(Code::kInvalidArgument, std::move(m), errc::kBadRequest); }

// --- Time -------------------------------------------------------------------------------------

constexpr std::array<const char*, 7> kWeekdays = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
constexpr std::array<const char*, 12> kMonths = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                 "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

int64_t FloorDiv(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

// "Sun, 06 Nov 1994 08:49:37 GMT" (RFC 1123, as Service Bus REST writes dates).
std::string Rfc1123(Timestamp t) {
  int64_t secs = FloorDiv(t.ms, 1000);
  int64_t days = FloorDiv(secs, 86400);
  int64_t rem = secs - days * 86400;
  Civil c = CivilFromDays(days);
  int64_t wd = ((days % 7) + 7 + 4) % 7;  // 1970-01-01 was a Thursday
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s, %02u %s %04lld %02d:%02d:%02d GMT", kWeekdays[wd], c.d, kMonths[c.m - 1],
                static_cast<long long>(c.y), static_cast<int>(rem / 3600), static_cast<int>(rem / 60 % 60),
                static_cast<int>(rem % 60));
  return buf;
}

// RFC 1123 ("[Sun, ]06 Nov 1994 08:49:37 GMT") or ISO 8601.
std::optional<Timestamp> ParseDateTime(std::string_view s) {
  s = Trim(s);
  if (auto iso = ParseTimestamp(s)) return iso;
  if (auto comma = s.find(','); comma != std::string_view::npos) s = Trim(s.substr(comma + 1));
  auto parts = Split(s, ' ');
  std::vector<std::string_view> p;
  for (auto x : parts)
    if (!x.empty()) p.push_back(x);
  if (p.size() != 5 || (p[4] != "GMT" && p[4] != "UTC" && p[4] != "Z")) return std::nullopt;
  auto num = [](std::string_view v, int& out) {
    auto r = std::from_chars(v.data(), v.data() + v.size(), out);
    return r.ec == std::errc() && r.ptr == v.data() + v.size();
  };
  int d, y, hh, mm, ss;
  if (!num(p[0], d) || !num(p[2], y)) return std::nullopt;
  unsigned m = 0;
  for (unsigned i = 0; i < 12; ++i)
    if (EqualsIgnoreCase(p[1], kMonths[i])) m = i + 1;
  auto hms = Split(p[3], ':');
  if (m == 0 || hms.size() != 3 || !num(hms[0], hh) || !num(hms[1], mm) || !num(hms[2], ss)) return std::nullopt;
  if (y < 1 || y > 9999 || d < 1 || static_cast<unsigned>(d) > DaysInMonth(y, m) || hh > 23 || mm > 59 || ss > 60 ||
      hh < 0 || mm < 0 || ss < 0)
    return std::nullopt;
  int64_t days = DaysFromCivil(y, m, static_cast<unsigned>(d));
  return Timestamp{((days * 86400) + hh * 3600 + mm * 60 + ss) * 1000};
}

// --- Text -------------------------------------------------------------------------------------

// JSON text with every non-ASCII character as a \u escape, so that it can travel in a header.
std::string AsciiJson(std::string_view json) {
  std::string out;
  out.reserve(json.size());
  char buf[16];
  auto esc = [&](uint32_t u) {
    std::snprintf(buf, sizeof buf, "\\u%04x", u);
    out += buf;
  };
  for (size_t i = 0; i < json.size();) {
    auto c = static_cast<unsigned char>(json[i]);
    if (c < 0x80) {
      out.push_back(static_cast<char>(c));
      ++i;
      continue;
    }
    size_t n = Utf8SequenceLength(json, i);
    if (n == 0) {
      esc(0xfffd);
      ++i;
      continue;
    }
    uint32_t cp = c & (n == 2 ? 0x1f : n == 3 ? 0x0f : 0x07);
    for (size_t k = 1; k < n; ++k) cp = (cp << 6) | (static_cast<unsigned char>(json[i + k]) & 0x3f);
    if (cp >= 0x10000) {
      cp -= 0x10000;
      esc(0xd800 + (cp >> 10));
      esc(0xdc00 + (cp & 0x3ff));
    } else {
      esc(cp);
    }
    i += n;
  }
  return out;
}

bool ValidUtf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    if (static_cast<unsigned char>(s[i]) < 0x80) {
      ++i;
      continue;
    }
    size_t n = Utf8SequenceLength(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

bool IsToken(std::string_view name) {
  if (name.empty()) return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
    if (!ok) return false;
  }
  return true;
}

// Percent-encodes one path segment, keeping unreserved characters and '$'.
std::string EncodeSegment(std::string_view s) {
  std::string out;
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
        c == '_' || c == '~' || c == '$') {
      out.push_back(c);
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", u);
      out += buf;
    }
  }
  return out;
}

std::string EncodePath(std::string_view path) {
  std::string out;
  for (auto seg : Split(path, '/')) {
    if (!out.empty()) out.push_back('/');
    out += EncodeSegment(seg);
  }
  return out;
}

// --- Property values --------------------------------------------------------------------------

// Request headers that are not custom message properties.
bool IsProtocolHeader(std::string_view lower) {
  static constexpr std::string_view kNames[] = {"authorization",
                                                "content-type",
                                                "content-length",
                                                "host",
                                                "connection",
                                                "brokerproperties",
                                                "user-agent",
                                                "accept",
                                                "accept-encoding",
                                                "accept-language",
                                                "accept-charset",
                                                "expect",
                                                "transfer-encoding",
                                                "te",
                                                "trailer",
                                                "upgrade",
                                                "via",
                                                "keep-alive",
                                                "proxy-authorization",
                                                "proxy-connection",
                                                "cookie",
                                                "origin",
                                                "referer",
                                                "cache-control",
                                                "pragma",
                                                "date",
                                                "if-match",
                                                "if-none-match",
                                                "if-modified-since",
                                                "if-unmodified-since",
                                                "prefer",
                                                "x-session-lock",
                                                "mscrmcallerid",
                                                "callerobjectid",
                                                "x-http-method",
                                                "traceparent",
                                                "tracestate",
                                                "request-id",
                                                "request-context",
                                                "x-requested-with",
                                                "dnt",
                                                "content-encoding",
                                                "content-language",
                                                "range",
                                                "forwarded",
                                                "x-real-ip",
                                                "priority-hint"};
  for (auto n : kNames)
    if (lower == n) return true;
  for (std::string_view p : {"x-ms-", "odata-", "x-forwarded-", "sec-", "access-control-"})
    if (lower.starts_with(p)) return true;
  return false;
}

// Response headers a custom property may not overwrite.
bool IsReservedResponseHeader(std::string_view name) {
  std::string lower = ToLower(name);
  static constexpr std::string_view kNames[] = {
      "content-type",     "content-length",    "location", "brokerproperties", "server",
      "connection",       "transfer-encoding", "date",     "keep-alive",       "set-cookie",
      "www-authenticate", "content-encoding",  "trailer"};
  for (auto n : kNames)
    if (lower == n) return true;
  return lower.starts_with("access-control-");
}

// A custom-property header value as Service Bus REST writes them: "quoted" strings, numbers,
// true/false; anything else is taken as a string.
bus::PropertyValue HeaderValue(std::string_view v) {
  v = Trim(v);
  bus::PropertyValue out;
  if (v.size() >= 2 && v.front() == '"' && v.back() == '"') {
    auto j = ParseJson(v);
    out.v = j.ok() && j->is_string() ? j->as_string() : std::string(v.substr(1, v.size() - 2));
    return out;
  }
  if (v == "true" || v == "false") {
    out.v = v == "true";
    return out;
  }
  if (v == "null") return out;
  int64_t i = 0;
  auto ri = std::from_chars(v.data(), v.data() + v.size(), i);
  if (!v.empty() && ri.ec == std::errc() && ri.ptr == v.data() + v.size()) {
    out.v = i;
    return out;
  }
  if (!v.empty() && v.find_first_of(".eE") != std::string_view::npos &&
      v.find_first_not_of("0123456789+-.eE") == std::string_view::npos) {
    double d = 0;
    auto rd = std::from_chars(v.data(), v.data() + v.size(), d);
    if (rd.ec == std::errc() && rd.ptr == v.data() + v.size() && std::isfinite(d)) {
      out.v = d;
      return out;
    }
  }
  out.v = std::string(v);
  return out;
}

std::string HeaderText(const bus::PropertyValue& p) {
  std::string out;
  std::visit(
      [&](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, std::monostate>) {
          out = "null";
        } else if constexpr (std::is_same_v<T, bool>) {
          out = x ? "true" : "false";
        } else if constexpr (std::is_same_v<T, int64_t>) {
          AppendInt(out, x);
        } else if constexpr (std::is_same_v<T, double>) {
          AppendDouble(out, x);
        } else if constexpr (std::is_same_v<T, std::string>) {
          AppendJsonString(out, x);
        } else {
          AppendJsonString(out, Rfc1123(x));
        }
      },
      p.v);
  return AsciiJson(out);
}

void WriteValue(JsonWriter& w, const bus::PropertyValue& p) {
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
          w.Double(x);
        } else if constexpr (std::is_same_v<T, std::string>) {
          w.String(x);
        } else {
          w.String(Rfc1123(x));
        }
      },
      p.v);
}

Result<bus::PropertyValue> JsonValue(const std::string& name, const Json& v) {
  auto p = bus::ScalarFromJson(v);
  if (!p) return Bad("The property '" + PrintableText(name, 80) + "' must be a string, number, boolean or null.");
  return std::move(*p);
}

Result<std::map<std::string, bus::PropertyValue>> ReadUserProperties(const Json& obj, std::string_view what) {
  std::map<std::string, bus::PropertyValue> out;
  if (obj.is_null()) return out;
  if (!obj.is_object()) return Bad(std::string(what) + " must be a JSON object.");
  for (const auto& [k, v] : obj.as_object()) {
    if (k.empty()) return Bad(std::string(what) + " has a property with an empty name.");
    ASSIGN_OR_RETURN(out[k], JsonValue(k, v));
  }
  return out;
}

const Json* FindCi(const Json& obj, std::string_view key) {
  if (!obj.is_object()) return nullptr;
  for (const auto& [k, v] : obj.as_object())
    if (EqualsIgnoreCase(k, key)) return &v;
  return nullptr;
}

// BrokerProperties (a JSON object) → the sender's message properties. Unknown and read-only
// members are ignored, as Service Bus does; wrong types are errors.
Status ReadBrokerProperties(const Json& bp, bus::MessageProperties& p) {
  if (!bp.is_object()) return Bad("BrokerProperties must be a JSON object.");
  struct Field {
    std::string_view name;
    std::optional<std::string> bus::MessageProperties::*member;
  };
  static const std::array<Field, 10> kStrings = {{
      {"MessageId", &bus::MessageProperties::message_id},
      {"CorrelationId", &bus::MessageProperties::correlation_id},
      {"SessionId", &bus::MessageProperties::session_id},
      {"ReplyToSessionId", &bus::MessageProperties::reply_to_session_id},
      {"Label", &bus::MessageProperties::subject},
      {"Subject", &bus::MessageProperties::subject},
      {"To", &bus::MessageProperties::to},
      {"ReplyTo", &bus::MessageProperties::reply_to},
      {"ContentType", &bus::MessageProperties::content_type},
      {"PartitionKey", &bus::MessageProperties::partition_key},
  }};
  for (const auto& [key, v] : bp.as_object()) {
    bool done = false;
    for (const auto& f : kStrings) {
      if (!EqualsIgnoreCase(key, f.name)) continue;
      done = true;
      if (v.is_null()) break;
      if (v.is_string()) {
        p.*f.member = v.as_string();
      } else if (v.is_int() && (f.name == "MessageId" || f.name == "CorrelationId")) {
        p.*f.member = std::to_string(v.as_int());
      } else {
        return Bad("BrokerProperties." + std::string(f.name) + " must be a string.");
      }
      if ((f.name == "MessageId" || f.name == "SessionId" || f.name == "PartitionKey") &&
          (p.*f.member)->size() > kMaxIdChars)
        return Bad("BrokerProperties." + std::string(f.name) + " is longer than 128 characters.");
    }
    if (done) continue;
    if (EqualsIgnoreCase(key, "TimeToLive")) {
      if (v.is_null()) continue;
      if (!v.is_number() || !(v.as_double() > 0))
        return Bad("BrokerProperties.TimeToLive must be a positive number of seconds.");
      double ms = std::round(v.as_double() * 1000);
      p.time_to_live_ms = ms >= 9.2e18 ? INT64_MAX : std::max<int64_t>(1, static_cast<int64_t>(ms));
    } else if (EqualsIgnoreCase(key, "ScheduledEnqueueTimeUtc")) {
      if (v.is_null()) continue;
      std::optional<Timestamp> t = v.is_string() ? ParseDateTime(v.as_string()) : std::nullopt;
      if (!t)
        return Bad(
            "BrokerProperties.ScheduledEnqueueTimeUtc must be a date such as \"Sun, 06 Nov 1994 08:49:37 GMT\".");
      p.scheduled_enqueue_time = *t;
    }
  }
  return {};
}

// --- Messages out -----------------------------------------------------------------------------

const char* StateName(bus::MessageState s) {
  switch (s) {
    case bus::MessageState::kDeferred:
      return "Deferred";
    case bus::MessageState::kScheduled:
      return "Scheduled";
    default:
      return "Active";
  }
}

// `delivered`: the message was received (locked or deleted), so DeliveryCount counts this
// delivery too, as Service Bus REST and the .NET client show it; peeked messages show the count
// of earlier deliveries.
void WriteBrokerProperties(JsonWriter& w, const bus::ReceivedMessage& m, bool delivered) {
  const auto& p = m.properties;
  auto opt = [&](std::string_view key, const std::optional<std::string>& v) {
    if (!v) return;
    w.Key(key);
    w.String(*v);
  };
  w.BeginObject();
  opt("MessageId", p.message_id);
  opt("CorrelationId", p.correlation_id);
  opt("SessionId", p.session_id);
  opt("ReplyToSessionId", p.reply_to_session_id);
  opt("Label", p.subject);
  opt("To", p.to);
  opt("ReplyTo", p.reply_to);
  opt("ContentType", p.content_type);
  opt("PartitionKey", p.partition_key);
  w.Key("DeliveryCount");
  w.Int(p.delivery_count + (delivered ? 1 : 0));
  w.Key("SequenceNumber");
  w.Int(p.sequence_number);
  if (p.enqueued_sequence_number) {
    w.Key("EnqueuedSequenceNumber");
    w.Int(p.enqueued_sequence_number);
  }
  w.Key("EnqueuedTimeUtc");
  w.String(Rfc1123(p.enqueued_time));
  if (p.expires_at) {
    w.Key("ExpiresAtUtc");
    w.String(Rfc1123(*p.expires_at));
  }
  if (!m.lock_token.empty()) {
    w.Key("LockToken");
    w.String(m.lock_token);
  }
  if (m.locked_until) {
    w.Key("LockedUntilUtc");
    w.String(Rfc1123(*m.locked_until));
  }
  if (p.scheduled_enqueue_time) {
    w.Key("ScheduledEnqueueTimeUtc");
    w.String(Rfc1123(*p.scheduled_enqueue_time));
  }
  w.Key("State");
  w.String(StateName(p.state));
  if (p.time_to_live_ms && *p.time_to_live_ms != INT64_MAX) {
    w.Key("TimeToLive");
    w.Double(static_cast<double>(*p.time_to_live_ms) / 1000.0);
  }
  opt("DeadLetterSource", p.dead_letter_source);
  w.EndObject();
}

// A message as JSON: {"Body","BrokerProperties","UserProperties"} (the batch-send shape); a body
// that is not UTF-8 text comes as "BodyBase64".
void WriteMessage(JsonWriter& w, const bus::ReceivedMessage& m, bool delivered) {
  w.BeginObject();
  if (ValidUtf8(m.body)) {
    w.Key("Body");
    w.String(m.body);
  } else {
    w.Key("BodyBase64");
    w.String(Base64Encode(m.body));
  }
  w.Key("BrokerProperties");
  WriteBrokerProperties(w, m, delivered);
  w.Key("UserProperties");
  w.BeginObject();
  for (const auto& [k, v] : m.properties.application) {
    w.Key(k);
    WriteValue(w, v);
  }
  w.EndObject();
  w.EndObject();
}

HttpResponse JsonResponse(int status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  r.Set("Content-Type", kJson);
  return r;
}

HttpResponse Empty(int status) {
  HttpResponse r;
  r.status = status;
  return r;
}

HttpResponse MessagesJson(const std::vector<bus::ReceivedMessage>& msgs, bool delivered) {
  std::string out;
  JsonWriter w(out);
  w.BeginArray();
  for (const auto& m : msgs) WriteMessage(w, m, delivered);
  w.EndArray();
  return JsonResponse(200, std::move(out));
}

HttpResponse MethodNotAllowed(std::string_view method, std::string_view allowed) {
  HttpResponse r =
      ServiceBusHttp::Error(Status(Code::kMethodNotAllowed,
                                   "The method " + PrintableText(method, 20) +
                                       " is not allowed on this resource; allowed: " + std::string(allowed) + ".",
                                   errc::kBadRequest));
  r.Set("Allow", std::string(allowed));
  return r;
}

std::string SessionJson(const bus::SessionLock& s) {
  std::string out;
  JsonWriter w(out);
  w.BeginObject();
  w.Key("SessionId");
  w.String(s.session_id);
  w.Key("SessionLockToken");
  w.String(s.lock_token);
  w.Key("LockedUntilUtc");
  w.String(Rfc1123(s.locked_until));
  w.EndObject();
  return out;
}

// {"lockTokens":["…",…]}: 1 to kMaxCompleteBatch lock tokens (GUIDs).
Result<std::vector<std::string>> LockTokens(std::string_view body) {
  constexpr std::string_view kShape = "The body must be {\"lockTokens\":[\"…\",…]}";
  auto j = ParseJson(body);
  if (!j.ok()) return Bad(std::string(kShape) + "; it is not valid JSON: " + j.status().message());
  if (!j->is_object()) return Bad(std::string(kShape) + ".");
  const Json* list = nullptr;
  for (const auto& [k, v] : j->as_object()) {
    if (!EqualsIgnoreCase(k, "lockTokens"))
      return Bad("'" + PrintableText(k, 60) + "' is not a member; use lockTokens.");
    list = &v;
  }
  if (!list || !list->is_array() || list->as_array().empty())
    return Bad(std::string(kShape) + " with at least one lock token.");
  if (list->as_array().size() > kMaxCompleteBatch)
    return Bad("At most " + std::to_string(kMaxCompleteBatch) + " lock tokens per request.");
  std::vector<std::string> out;
  out.reserve(list->as_array().size());
  for (const Json& t : list->as_array()) {
    if (!t.is_string() || !Guid::Parse(t.as_string()))
      return Bad("lockTokens[" + std::to_string(out.size()) + "] is not a lock token.");
    out.push_back(t.as_string());
  }
  return out;
}

Status LockLostError() {
  return Status(Code::kFailedPrecondition,
                "The lock supplied is invalid: it expired, or the message was already settled.",
                errc::kMessageLockLost);
}

// --- Routes -----------------------------------------------------------------------------------

enum class Op : uint8_t {
  kMessages,    // {e}/messages: POST send, GET peek
  kHead,        // {e}/messages/head: POST peek-lock, DELETE receive-and-delete
  kComplete,    // {e}/messages/complete: POST complete several by lock token
  kDeferred,    // {e}/messages/deferred?seq=: POST peek-lock, DELETE receive-and-delete
  kSettle,      // {e}/messages/{id}/{lock}: DELETE complete, PUT abandon, POST renew
  kDefer,       // {e}/messages/{id}/{lock}/defer
  kDeadLetter,  // {e}/messages/{id}/{lock}/deadletter
  kSessions,    // {e}/sessions: GET list
  kAccept,      // {e}/sessions/accept: POST
  kSession,     // {e}/sessions/{id}: DELETE release
  kRenew,       // {e}/sessions/{id}/renew: POST
  kState,       // {e}/sessions/{id}/state: GET, PUT, DELETE
};

struct Route {
  Op op = Op::kMessages;
  std::string entity;                  // the broker's path, sub-queue included ("t/Subscriptions/s/$DeadLetterQueue")
  std::optional<std::string> session;  // …/sessions/{id}/messages/…, or the {id} of session routes
  std::string id, lock;
};

std::string JoinPath(const std::vector<std::string>& s, size_t from, size_t to) {
  std::string out;
  for (size_t i = from; i < to; ++i) {
    if (i > from) out.push_back('/');
    // The broker's subscription paths spell the segment "Subscriptions".
    out += i > from && EqualsIgnoreCase(s[i], "subscriptions") ? std::string("Subscriptions") : s[i];
  }
  return out;
}

// Matches the rightmost "messages" or "sessions" segment that forms a route (entity names may
// contain '/').
std::optional<Route> MatchRoute(const std::vector<std::string>& s, std::string_view method) {
  size_t n = s.size();
  for (size_t i = n; i-- > 1;) {
    size_t tail = n - i - 1;
    auto t = [&](size_t k) -> const std::string& { return s[i + 1 + k]; };
    Route r;
    bool ok = false;
    if (EqualsIgnoreCase(s[i], "messages")) {
      ok = true;
      if (tail == 0) {
        r.op = Op::kMessages;
      } else if (tail == 1 && EqualsIgnoreCase(t(0), "head")) {
        r.op = Op::kHead;
      } else if (tail == 1 && EqualsIgnoreCase(t(0), "deferred")) {
        r.op = Op::kDeferred;
      } else if (tail == 1 && EqualsIgnoreCase(t(0), "complete")) {
        r.op = Op::kComplete;
      } else if (tail == 2) {
        r.op = Op::kSettle;
      } else if (tail == 3 && EqualsIgnoreCase(t(2), "defer")) {
        r.op = Op::kDefer;
      } else if (tail == 3 && EqualsIgnoreCase(t(2), "deadletter")) {
        r.op = Op::kDeadLetter;
      } else {
        ok = false;
      }
      if (!ok) continue;
      if (tail >= 2) {
        r.id = t(0);
        r.lock = t(1);
      }
      size_t end = i;
      if (i >= 3 && EqualsIgnoreCase(s[i - 2], "sessions")) {
        r.session = s[i - 1];
        end = i - 2;
      }
      r.entity = JoinPath(s, 0, end);
      return r;
    }
    if (EqualsIgnoreCase(s[i], "sessions")) {
      ok = true;
      if (tail == 0) {
        r.op = Op::kSessions;
      } else if (tail == 1 && EqualsIgnoreCase(t(0), "accept") && method == "POST") {
        r.op = Op::kAccept;
      } else if (tail == 1) {
        r.op = Op::kSession;
        r.session = t(0);
      } else if (tail == 2 && EqualsIgnoreCase(t(1), "renew")) {
        r.op = Op::kRenew;
        r.session = t(0);
      } else if (tail == 2 && EqualsIgnoreCase(t(1), "state")) {
        r.op = Op::kState;
        r.session = t(0);
      } else {
        ok = false;
      }
      if (!ok) continue;
      r.entity = JoinPath(s, 0, i);
      return r;
    }
  }
  return std::nullopt;
}

}  // namespace

// --- The request ------------------------------------------------------------------------------

class ServiceBusHttp::Request {
 public:
  HttpRequest http;
  std::vector<std::string> segs;  // decoded path segments after /servicebus/
  std::vector<std::pair<std::string, std::string>> query;

  Status Parse() {
    std::string_view target = http.target;
    auto q = target.find('?');
    std::string_view path = target.substr(0, q);
    if (!path.starts_with(kPrefix)) return NotFound("No resource at '" + PrintableText(path) + "'.");
    path.remove_prefix(kPrefix.size());
    if (path.ends_with('/')) path.remove_suffix(1);
    if (!path.empty()) {
      for (auto raw : Split(path, '/')) {
        std::string seg;
        if (!PercentDecode(raw, seg, false)) return Bad("The URL has a malformed percent escape.");
        if (seg.empty())
          return NotFound("No resource at '" + PrintableText(http.target) + "' (an empty path segment).");
        segs.push_back(std::move(seg));
      }
    }
    if (q != std::string_view::npos) {
      for (auto item : Split(target.substr(q + 1), '&')) {
        if (item.empty()) continue;
        auto eq = item.find('=');
        std::string k, v;
        if (!PercentDecode(item.substr(0, eq), k, true) ||
            (eq != std::string_view::npos && !PercentDecode(item.substr(eq + 1), v, true)))
          return Bad("The query string has a malformed percent escape.");
        query.emplace_back(ToLower(k), std::move(v));
      }
    }
    return {};
  }

  const std::string* Query(std::string_view name) const {
    for (const auto& [k, v] : query)
      if (k == name) return &v;
    return nullptr;
  }

  Result<int64_t> IntQuery(std::string_view name, int64_t def, int64_t min, int64_t max) const {
    const std::string* v = Query(name);
    if (!v && name.starts_with('$')) v = Query(name.substr(1));
    if (!v) return def;
    int64_t x = 0;
    auto r = std::from_chars(v->data(), v->data() + v->size(), x);
    if (v->empty() || r.ec != std::errc() || r.ptr != v->data() + v->size() || x < min || x > max)
      return Bad("The query option '" + std::string(name) + "' must be an integer from " + std::to_string(min) +
                 " to " + std::to_string(max) + ".");
    return x;
  }

  // timeout=N seconds (long polling); Service Bus's default is 60 s.
  Result<std::chrono::milliseconds> Timeout() const {
    const std::string* v = Query("timeout");
    if (!v) return std::chrono::milliseconds(kDefaultTimeoutSeconds * 1000);
    double secs = 0;
    auto r = std::from_chars(v->data(), v->data() + v->size(), secs);
    if (v->empty() || r.ec != std::errc() || r.ptr != v->data() + v->size() || !(secs >= 0) || !std::isfinite(secs))
      return Bad("The query option 'timeout' must be a number of seconds.");
    secs = std::min<double>(secs, kMaxTimeoutSeconds);
    return std::chrono::milliseconds(static_cast<int64_t>(secs * 1000));
  }

  // The JSON body, or an empty object when there is none.
  Result<Json> JsonBody() const {
    if (Trim(http.body).empty()) return Json::MakeObject({});
    auto j = ParseJson(http.body);
    if (!j.ok()) return Bad("The request body is not valid JSON: " + j.status().message());
    return j;
  }
};

// --- Errors -----------------------------------------------------------------------------------

namespace {

// The HTTP status and the Service Bus error number for `s`.
std::pair<int, uint32_t> StatusAndCode(const Status& s) {
  int status = 500;
  switch (s.code()) {
    case Code::kInvalidArgument:
      status = 400;
      break;
    case Code::kNotFound:
      status = 404;
      break;
    case Code::kAlreadyExists:
      status = 409;
      break;
    case Code::kFailedPrecondition:
      status = 412;
      break;
    case Code::kUnauthenticated:
      status = 401;
      break;
    case Code::kPermissionDenied:
    case Code::kResourceExhausted:  // quota
      status = 403;
      break;
    case Code::kMethodNotAllowed:
      status = 405;
      break;
    case Code::kPayloadTooLarge:
      status = 413;
      break;
    case Code::kUnimplemented:
      status = 501;
      break;
    case Code::kUnavailable:
      status = 503;
      break;
    default:
      status = 500;
  }
  // The bus's own error numbers decide the status whatever the code (Service Bus REST's).
  uint32_t code = s.error_code();
  switch (code) {
    case errc::kEntityNotFound:
    case errc::kMessageNotFound:
      status = 404;
      break;
    case errc::kEntityExists:
      status = 409;
      break;
    case errc::kMessageLockLost:
    case errc::kSessionLockLost:
    case errc::kSessionCannotBeLocked:
      status = 410;
      break;
    case errc::kQuotaExceeded:
    case errc::kEntityDisabled:
      status = 403;
      break;
    case errc::kMessageSizeExceeded:
      status = 413;
      break;
    case errc::kServiceTimeout:
      status = 408;
      break;
    case 0:
      code = status == 404   ? errc::kEntityNotFound
             : status == 409 ? errc::kEntityExists
             : status == 413 ? errc::kMessageSizeExceeded
             : status == 403 ? errc::kQuotaExceeded
             : status < 500  ? errc::kBadRequest
                             : err::kInternalError;
      break;
    default:
      break;
  }
  return {status, code};
}

std::string CodeText(uint32_t code) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08x", code);
  return buf;
}

}  // namespace

HttpResponse ServiceBusHttp::Error(const Status& s) {
  auto [status, code] = StatusAndCode(s);
  HttpResponse r;
  r.status = status;
  JsonWriter w(r.body);
  w.BeginObject();
  w.Key("error");
  w.BeginObject();
  w.Key("code");
  w.String(CodeText(code));
  w.Key("message");
  w.String(s.message().empty() ? std::string("Error.") : s.message());
  w.EndObject();
  w.EndObject();
  r.Set("Content-Type", kJson);
  if (status == 503) r.Set("Retry-After", "1");
  return r;
}

// --- Dispatch ---------------------------------------------------------------------------------

void ServiceBusHttp::Handle(HttpRequest http, Respond respond) {
  // Handlers copy what their callbacks need: the request lives only for this call.
  Request r;
  r.http = std::move(http);
  Status st = r.Parse();
  if (!st.ok()) return respond(Error(st));
  if (r.segs.empty()) {
    return respond(
        JsonResponse(200, "{\"name\":\"Tributary message bus\",\"management\":\"/servicebus/$management/queues\"}"));
  }
  if (r.segs[0] == "$management") return Management(r, std::move(respond));
  DataPlane(r, std::move(respond));
}

Status ServiceBusHttp::TopicHint(const Status& s, const std::string& entity) {
  if (s.error_code() != errc::kEntityNotFound) return s;
  auto e = broker_.GetEntity(entity);
  if (!e.ok() || e->kind != bus::EntityKind::kTopic) return s;
  return Bad("'" + PrintableText(entity) + "' is a topic; receive from its subscriptions ('" + PrintableText(entity) +
             "/subscriptions/NAME').");
}

void ServiceBusHttp::Count(const std::string& entity, bool sent, int64_t n) {
  std::lock_guard lock(mu_);
  auto& c = counters_[entity];
  (sent ? c.sent : c.completed) += n;
}

void ServiceBusHttp::CompleteAll(const std::string& entity, bus::SubQueue sub, std::vector<std::string> tokens,
                                 Respond respond) {
  // Each callback fills its own slot; the last one to finish answers.
  struct Batch {
    std::vector<std::string> tokens;
    std::vector<Status> results;
    std::atomic<size_t> left;
    Respond respond;
  };
  const size_t n = tokens.size();
  auto b = std::make_shared<Batch>();
  b->tokens = std::move(tokens);
  b->results.resize(n);
  b->left.store(n, std::memory_order_relaxed);
  b->respond = std::move(respond);
  auto finish = [this, b, entity] {
    int64_t completed = 0;
    const Status* first = nullptr;
    bool same = true;
    for (const Status& s : b->results) {
      if (s.ok()) {
        ++completed;
        continue;
      }
      if (!first)
        first = &s;
      else if (s.code() != first->code() || s.error_code() != first->error_code())
        same = false;
    }
    if (completed) Count(entity, false, completed);
    if (!first) return b->respond(Empty(200));
    // Nothing completed, for one reason (an unknown entity, every lock lost): the error itself.
    if (completed == 0 && same) return b->respond(Error(*first));
    std::string out;
    JsonWriter w(out);
    w.BeginObject();
    w.Key("completed");
    w.Int(completed);
    w.Key("failures");
    w.BeginArray();
    for (size_t i = 0; i < b->results.size(); ++i) {
      const Status& s = b->results[i];
      if (s.ok()) continue;
      auto [status, code] = StatusAndCode(s);
      w.BeginObject();
      w.Key("lockToken");
      w.String(b->tokens[i]);
      w.Key("status");
      w.Int(status);
      w.Key("code");
      w.String(CodeText(code));
      w.Key("message");
      w.String(s.message());
      w.EndObject();
    }
    w.EndArray();
    w.EndObject();
    b->respond(JsonResponse(207, std::move(out)));
  };
  for (size_t i = 0; i < n; ++i) {
    broker_.Complete(entity, sub, b->tokens[i], [b, i, finish](Result<bool> res) {
      if (!res.ok())
        b->results[i] = res.status();
      else if (!*res)
        b->results[i] = LockLostError();
      if (b->left.fetch_sub(1, std::memory_order_acq_rel) == 1) finish();
    });
  }
}

void ServiceBusHttp::DataPlane(Request& r, Respond respond) {
  const std::string& method = r.http.method;
  auto route = MatchRoute(r.segs, method);
  if (!route || route->entity.empty())
    return respond(Error(Status(
        Code::kNotFound,
        "No Service Bus resource at '" + PrintableText(r.http.target) + "'; see docs/servicebus.md for the routes.",
        errc::kBadRequest)));
  auto [entity, sub] = bus::SplitSubQueue(route->entity);
  bool sessions_route = route->op == Op::kSessions || route->op == Op::kAccept || route->op == Op::kSession ||
                        route->op == Op::kRenew || route->op == Op::kState ||
                        (route->session && (route->op == Op::kHead || route->op == Op::kComplete));
  if (sessions_route && sub != bus::SubQueue::kNone)
    return respond(Error(
        Bad("Sub-queues have no sessions; receive from '" + PrintableText(route->entity) + "' without a session.")));

  // The session lock a session receive, renew, release or state change presents.
  auto session_lock = [&]() -> Result<bus::SessionLock> {
    const std::string* h = r.http.Header("x-session-lock");
    if (!h || Trim(*h).empty())
      return Bad("The x-session-lock header (the SessionLockToken from sessions/accept) is required.");
    bus::SessionLock s;
    s.session_id = *route->session;
    s.lock_token = std::string(Trim(*h));
    return s;
  };
  auto lock_token = [&]() -> Result<std::string> {
    if (!Guid::Parse(route->lock)) return Bad("'" + PrintableText(route->lock, 60) + "' is not a lock token.");
    return route->lock;
  };
  auto settled = [this, respond, entity = entity](bool count_complete) {
    return [this, respond, entity, count_complete](Result<bool> res) {
      if (!res.ok()) return respond(Error(res.status()));
      if (!*res) return respond(Error(LockLostError()));
      if (count_complete) Count(entity, false, 1);
      respond(Empty(200));
    };
  };

  switch (route->op) {
    case Op::kMessages: {
      if (method == "GET") {
        if (route->session && sub != bus::SubQueue::kNone) return respond(Error(Bad("Sub-queues have no sessions.")));
        auto from = r.IntQuery("from", 0, 0, INT64_MAX);
        auto top = r.IntQuery("top", kDefaultPeek, 1, kMaxPeek);
        if (!from.ok()) return respond(Error(from.status()));
        if (!top.ok()) return respond(Error(top.status()));
        const std::string* session = route->session ? &*route->session : nullptr;
        auto msgs = broker_.Peek(entity, sub, *from, static_cast<int>(*top), session);
        if (!msgs.ok()) return respond(Error(TopicHint(msgs.status(), entity)));
        return respond(MessagesJson(*msgs, false));
      }
      if (method != "POST") return respond(MethodNotAllowed(method, "GET, POST"));
      if (sub != bus::SubQueue::kNone || route->session || entity.find("/Subscriptions/") != std::string::npos)
        return respond(
            Error(Bad("Messages are sent to a queue or topic, not to '" + PrintableText(r.http.target) + "'.")));
      std::vector<bus::OutgoingMessage> msgs;
      const std::string* ct = r.http.Header("content-type");
      if (ct && StartsWithIgnoreCase(Trim(*ct), kBatchContentType)) {
        auto batch = ParseJson(r.http.body);
        if (!batch.ok()) return respond(Error(Bad("The batch is not valid JSON: " + batch.status().message())));
        if (!batch->is_array())
          return respond(Error(Bad("A batch is a JSON array of {\"Body\",\"BrokerProperties\",\"UserProperties\"}.")));
        if (batch->as_array().empty()) return respond(Error(Bad("The batch is empty.")));
        for (const Json& item : batch->as_array()) {
          std::string where = "Message " + std::to_string(msgs.size() + 1) + " of the batch";
          if (!item.is_object()) return respond(Error(Bad(where + " is not a JSON object.")));
          bus::OutgoingMessage m;
          for (const auto& [k, v] : item.as_object()) {
            Status st;
            if (EqualsIgnoreCase(k, "Body")) {
              if (!v.is_string())
                st = Bad(where + ": \"Body\" must be a string.");
              else
                m.body = v.as_string();
            } else if (EqualsIgnoreCase(k, "BodyBase64")) {
              if (!v.is_string() || !Base64Decode(v.as_string(), m.body))
                st = Bad(where + ": \"BodyBase64\" must be base64 text.");
            } else if (EqualsIgnoreCase(k, "BrokerProperties")) {
              st = v.is_null() ? Status() : ReadBrokerProperties(v, m.properties);
              if (!st.ok()) st = Bad(where + ": " + st.message());
            } else if (EqualsIgnoreCase(k, "UserProperties")) {
              auto props = ReadUserProperties(v, where + ": UserProperties");
              if (!props.ok())
                st = props.status();
              else
                m.properties.application = std::move(*props);
            } else {
              st = Bad(where + ": '" + PrintableText(k, 60) +
                       "' is not a member; use Body, BrokerProperties and UserProperties.");
            }
            if (!st.ok()) return respond(Error(st));
          }
          msgs.push_back(std::move(m));
        }
      } else {
        bus::OutgoingMessage m;
        if (const std::string* bp = r.http.Header("brokerproperties"); bp && !Trim(*bp).empty()) {
          auto j = ParseJson(*bp);
          if (!j.ok())
            return respond(Error(Bad("The BrokerProperties header is not valid JSON: " + j.status().message())));
          Status st = ReadBrokerProperties(*j, m.properties);
          if (!st.ok()) return respond(Error(st));
        }
        if (!m.properties.content_type && ct && !Trim(*ct).empty()) m.properties.content_type = std::string(Trim(*ct));
        for (size_t i = 0; i < r.http.headers.size(); ++i) {
          const auto& [lower, value] = r.http.headers[i];
          if (IsProtocolHeader(lower)) continue;
          const std::string& name = i < r.http.header_names.size() ? r.http.header_names[i] : lower;
          m.properties.application[name] = HeaderValue(value);
        }
        m.body = std::move(r.http.body);
        msgs.push_back(std::move(m));
      }
      int64_t n = static_cast<int64_t>(msgs.size());
      broker_.Send(entity, std::move(msgs), [this, respond, entity = entity, n](Result<std::vector<int64_t>> res) {
        if (!res.ok()) return respond(Error(res.status()));
        Count(entity, true, n);
        respond(Empty(201));
      });
      return;
    }

    case Op::kHead: {
      bool lock = method == "POST";
      if (!lock && method != "DELETE") return respond(MethodNotAllowed(method, "POST, DELETE"));
      auto timeout = r.Timeout();
      if (!timeout.ok()) return respond(Error(timeout.status()));
      // maxMessages (extension): several messages in one answer, as a JSON array.
      const bool batch = r.Query("maxmessages") != nullptr;
      auto max = r.IntQuery("maxmessages", 1, 1, kMaxReceiveBatch);
      if (!max.ok()) return respond(Error(max.status()));
      bus::ReceiveOptions o;
      o.mode = lock ? bus::ReceiveMode::kPeekLock : bus::ReceiveMode::kReceiveAndDelete;
      o.max_messages = static_cast<int>(*max);
      o.timeout = *timeout;
      bus::Done<std::vector<bus::ReceivedMessage>> receive;
      if (batch) {
        receive = [this, respond, lock, entity = entity](Result<std::vector<bus::ReceivedMessage>> res) {
          if (!res.ok()) return respond(Error(res.status()));
          if (res->empty()) return respond(Empty(204));
          if (!lock) Count(entity, false, static_cast<int64_t>(res->size()));
          respond(MessagesJson(*res, true));
        };
      }
      std::string location = r.http.base_url + std::string(kPrefix) + EncodePath(route->entity) + "/messages/";
      auto done = [this, respond, lock, location, entity = entity](Result<std::vector<bus::ReceivedMessage>> res) {
        if (!res.ok()) return respond(Error(res.status()));
        if (res->empty()) return respond(Empty(204));
        const bus::ReceivedMessage& m = res->front();
        HttpResponse out;
        out.status = lock ? 201 : 200;
        std::string bp;
        JsonWriter w(bp);
        WriteBrokerProperties(w, m, true);
        out.Set("BrokerProperties", AsciiJson(bp));
        out.Set("Content-Type", m.properties.content_type && !m.properties.content_type->empty() &&
                                        m.properties.content_type->find_first_of("\r\n") == std::string::npos
                                    ? AsciiJson(*m.properties.content_type)
                                    : std::string("application/octet-stream"));
        if (lock)
          out.Set("Location",
                  location + std::to_string(m.properties.sequence_number) + "/" + EncodeSegment(m.lock_token));
        for (const auto& [k, v] : m.properties.application)
          if (IsToken(k) && !IsReservedResponseHeader(k)) out.Set(k, HeaderText(v));
        out.body = m.body;
        if (!lock) Count(entity, false, 1);
        respond(std::move(out));
      };
      if (!batch) receive = std::move(done);
      if (route->session) {
        auto s = session_lock();
        if (!s.ok()) return respond(Error(s.status()));
        return broker_.ReceiveFromSession(entity, *s, o, std::move(receive));
      }
      return broker_.Receive(entity, sub, o, std::move(receive));
    }

    case Op::kComplete: {
      if (method != "POST") return respond(MethodNotAllowed(method, "POST"));
      auto tokens = LockTokens(r.http.body);
      if (!tokens.ok()) return respond(Error(tokens.status()));
      return CompleteAll(entity, sub, std::move(*tokens), std::move(respond));
    }

    case Op::kDeferred: {
      bool lock = method == "POST";
      if (!lock && method != "DELETE") return respond(MethodNotAllowed(method, "POST, DELETE"));
      std::vector<int64_t> seqs;
      for (const auto& [k, v] : r.query) {
        if (k != "seq" && k != "sequencenumber") continue;
        for (auto part : Split(v, ',')) {
          part = Trim(part);
          int64_t x = 0;
          auto rc = std::from_chars(part.data(), part.data() + part.size(), x);
          if (part.empty() || rc.ec != std::errc() || rc.ptr != part.data() + part.size() || x < 0)
            return respond(Error(Bad("'seq' must list sequence numbers separated by commas.")));
          seqs.push_back(x);
        }
      }
      if (seqs.empty()) return respond(Error(Bad("Name the deferred messages with ?seq=N[,N…].")));
      if (seqs.size() > static_cast<size_t>(kMaxPeek))
        return respond(Error(Bad("At most 250 sequence numbers per request.")));
      return broker_.ReceiveDeferred(
          entity, sub, std::move(seqs), lock ? bus::ReceiveMode::kPeekLock : bus::ReceiveMode::kReceiveAndDelete,
          [this, respond, lock, entity = entity](Result<std::vector<bus::ReceivedMessage>> res) {
            if (!res.ok()) return respond(Error(res.status()));
            if (!lock) Count(entity, false, static_cast<int64_t>(res->size()));
            respond(MessagesJson(*res, true));
          });
    }

    case Op::kSettle: {
      auto token = lock_token();
      if (!token.ok()) return respond(Error(token.status()));
      if (method == "DELETE") return broker_.Complete(entity, sub, *token, settled(true));
      if (method == "PUT") {
        auto body = r.JsonBody();
        if (!body.ok()) return respond(Error(body.status()));
        auto props = ReadUserProperties(*body, "The properties to modify");
        if (!props.ok()) return respond(Error(props.status()));
        return broker_.Abandon(entity, sub, *token, std::move(*props), settled(false));
      }
      if (method == "POST") {
        auto until = broker_.RenewLock(entity, sub, *token);
        if (!until.ok()) return respond(Error(until.status()));
        return respond(JsonResponse(200, "{\"LockedUntilUtc\":\"" + Rfc1123(*until) + "\"}"));
      }
      return respond(MethodNotAllowed(method, "DELETE, PUT, POST"));
    }

    case Op::kDefer: {
      if (method != "POST") return respond(MethodNotAllowed(method, "POST"));
      auto token = lock_token();
      if (!token.ok()) return respond(Error(token.status()));
      auto body = r.JsonBody();
      if (!body.ok()) return respond(Error(body.status()));
      auto props = ReadUserProperties(*body, "The properties to modify");
      if (!props.ok()) return respond(Error(props.status()));
      return broker_.Defer(entity, sub, *token, std::move(*props), settled(false));
    }

    case Op::kDeadLetter: {
      if (method != "POST") return respond(MethodNotAllowed(method, "POST"));
      auto token = lock_token();
      if (!token.ok()) return respond(Error(token.status()));
      auto body = r.JsonBody();
      if (!body.ok()) return respond(Error(body.status()));
      if (!body->is_object()) return respond(Error(Bad("The dead-letter body must be a JSON object.")));
      std::string reason, description;
      std::map<std::string, bus::PropertyValue> props;
      for (const auto& [k, v] : body->as_object()) {
        std::string* text = EqualsIgnoreCase(k, "DeadLetterReason")             ? &reason
                            : EqualsIgnoreCase(k, "DeadLetterErrorDescription") ? &description
                                                                                : nullptr;
        if (text) {
          if (v.is_null()) continue;
          if (!v.is_string()) return respond(Error(Bad("'" + k + "' must be a string.")));
          if (v.as_string().size() > kMaxDeadLetterText)
            return respond(Error(Bad("'" + k + "' is longer than 4096 characters.")));
          *text = v.as_string();
        } else if (EqualsIgnoreCase(k, "Properties") || EqualsIgnoreCase(k, "PropertiesToModify")) {
          auto p = ReadUserProperties(v, "Properties");
          if (!p.ok()) return respond(Error(p.status()));
          props = std::move(*p);
        } else {
          return respond(Error(Bad("'" + PrintableText(k, 60) +
                                   "' is not a member; use DeadLetterReason, DeadLetterErrorDescription and "
                                   "Properties.")));
        }
      }
      return broker_.DeadLetter(entity, sub, *token, std::move(reason), std::move(description), std::move(props),
                                settled(false));
    }

    case Op::kSessions: {
      if (method != "GET") return respond(MethodNotAllowed(method, "GET"));
      Timestamp since{0};
      if (const std::string* v = r.Query("since")) {
        auto t = ParseDateTime(*v);
        if (!t) return respond(Error(Bad("'since' must be a date-time (ISO 8601 or RFC 1123).")));
        since = *t;
      }
      auto skip = r.IntQuery("$skip", 0, 0, INT32_MAX);
      auto top = r.IntQuery("$top", 100, 1, 1000);
      if (!skip.ok()) return respond(Error(skip.status()));
      if (!top.ok()) return respond(Error(top.status()));
      auto ids = broker_.ListSessions(entity, since, static_cast<int>(*skip), static_cast<int>(*top));
      if (!ids.ok()) return respond(Error(ids.status()));
      std::string out;
      JsonWriter w(out);
      w.BeginArray();
      for (const auto& id : *ids) w.String(id);
      w.EndArray();
      return respond(JsonResponse(200, std::move(out)));
    }

    case Op::kAccept: {
      std::optional<std::string> id;
      if (const std::string* v = r.Query("session")) {
        if (v->empty() || v->size() > kMaxIdChars) return respond(Error(Bad("'session' must be 1 to 128 characters.")));
        id = *v;
      }
      auto timeout = r.Timeout();
      if (!timeout.ok()) return respond(Error(timeout.status()));
      return broker_.AcceptSession(entity, id, *timeout, [respond](Result<bus::SessionLock> res) {
        if (!res.ok() && res.status().error_code() == errc::kServiceTimeout) return respond(Empty(204));
        if (!res.ok()) return respond(Error(res.status()));
        respond(JsonResponse(200, SessionJson(*res)));
      });
    }

    case Op::kSession: {
      if (method != "DELETE") return respond(MethodNotAllowed(method, "DELETE"));
      auto s = session_lock();
      if (!s.ok()) return respond(Error(s.status()));
      Status st = broker_.ReleaseSession(entity, *s);
      return respond(st.ok() ? Empty(200) : Error(st));
    }

    case Op::kRenew: {
      if (method != "POST") return respond(MethodNotAllowed(method, "POST"));
      auto s = session_lock();
      if (!s.ok()) return respond(Error(s.status()));
      auto until = broker_.RenewSessionLock(entity, *s);
      if (!until.ok()) return respond(Error(until.status()));
      s->locked_until = *until;
      return respond(JsonResponse(200, SessionJson(*s)));
    }

    case Op::kState: {
      if (method == "GET") {
        auto state = broker_.GetSessionState(entity, *route->session);
        if (!state.ok()) return respond(Error(state.status()));
        if (!*state) return respond(Empty(204));
        HttpResponse out;
        out.body = std::move(**state);
        out.Set("Content-Type", "application/octet-stream");
        return respond(std::move(out));
      }
      if (method != "PUT" && method != "DELETE") return respond(MethodNotAllowed(method, "GET, PUT, DELETE"));
      auto s = session_lock();
      if (!s.ok()) return respond(Error(s.status()));
      std::optional<std::string> state;
      if (method == "PUT") state = std::move(r.http.body);
      return broker_.SetSessionState(entity, *s, std::move(state), [respond](Result<bool> res) {
        if (!res.ok()) return respond(Error(res.status()));
        if (!*res)
          return respond(
              Error(Status(Code::kFailedPrecondition, "The session lock was lost.", errc::kSessionLockLost)));
        respond(Empty(200));
      });
    }
  }
}

// --- Management -------------------------------------------------------------------------------

void ServiceBusHttp::Management(Request& r, Respond respond) {
  const std::string& method = r.http.method;
  const auto& s = r.segs;
  size_t n = s.size();
  auto not_found = [&] {
    respond(Error(Status(Code::kNotFound,
                         "No management resource at '" + PrintableText(r.http.target) +
                             "'; use $management/queues, $management/topics, …/subscriptions and …/rules.",
                         errc::kBadRequest)));
  };
  if (n < 2) return not_found();
  bool queues = EqualsIgnoreCase(s[1], "queues"), topics = EqualsIgnoreCase(s[1], "topics");
  if (!queues && !topics) return not_found();

  auto skip = r.IntQuery("$skip", 0, 0, INT32_MAX);
  auto top = r.IntQuery("$top", 1000, 0, INT32_MAX);
  if (!skip.ok()) return respond(Error(skip.status()));
  if (!top.ok()) return respond(Error(top.status()));

  auto list = [&](bus::EntityKind kind, const std::string& parent) {
    std::string out;
    JsonWriter w(out);
    w.BeginArray();
    int64_t index = 0, written = 0;
    for (const auto& e : broker_.ListEntities(kind)) {
      if (!parent.empty()) {
        std::string prefix = parent + "/Subscriptions/";
        if (!e.path.starts_with(prefix) || e.path.find('/', prefix.size()) != std::string::npos) continue;
      }
      if (index++ < *skip) continue;
      if (written >= *top) break;
      WriteEntity(w, e);
      ++written;
    }
    w.EndArray();
    respond(JsonResponse(200, std::move(out)));
  };

  // GET / PUT / DELETE of one entity of `kind` at `path`.
  auto entity = [&](bus::EntityKind kind, const std::string& path, const std::string& topic, const std::string& name) {
    auto current = broker_.GetEntity(path);
    bool exists = current.ok() && current->kind == kind;
    if (!current.ok() && current.status().error_code() != errc::kEntityNotFound &&
        current.status().code() != Code::kNotFound)
      return respond(Error(current.status()));
    const char* what = kind == bus::EntityKind::kQueue   ? "queue"
                       : kind == bus::EntityKind::kTopic ? "topic"
                                                         : "subscription";
    Status missing(Code::kNotFound, std::string("The ") + what + " '" + PrintableText(path) + "' does not exist.",
                   errc::kEntityNotFound);
    if (method == "GET") return respond(exists ? JsonResponse(200, EntityJson(*current)) : Error(missing));
    if (method == "DELETE") {
      if (!exists) return respond(Error(missing));
      Status st = broker_.DeleteEntity(path);
      return respond(st.ok() ? Empty(200) : Error(st));
    }
    if (method != "PUT") return respond(MethodNotAllowed(method, "GET, PUT, DELETE"));
    auto body = r.JsonBody();
    if (!body.ok()) return respond(Error(body.status()));
    bool update = r.http.Header("if-match") != nullptr;
    if (update && !exists) return respond(Error(missing));
    if (!update && current.ok())
      return respond(Error(
          Status(Code::kAlreadyExists,
                 "The messaging entity '" + PrintableText(path) + "' already exists; send If-Match: * to update it.",
                 errc::kEntityExists)));
    bus::EntityProperties p = update ? current->properties : bus::EntityProperties{};
    Status st = ReadEntityProperties(*body, kind, p);
    if (!st.ok()) return respond(Error(st));
    if (update) {
      st = broker_.UpdateEntity(path, p);
    } else if (kind == bus::EntityKind::kQueue) {
      st = broker_.CreateQueue(path, p);
    } else if (kind == bus::EntityKind::kTopic) {
      st = broker_.CreateTopic(path, p);
    } else {
      auto rules = SubscriptionRulesForBroker(*body);
      st = rules.ok() ? broker_.CreateSubscription(topic, name, p, *rules) : rules.status();
    }
    if (!st.ok()) return respond(Error(st));
    auto after = broker_.GetEntity(path);
    if (!after.ok()) return respond(Error(after.status()));
    respond(JsonResponse(update ? 200 : 201, EntityJson(*after)));
  };

  if (queues) {
    std::string name = JoinPath(s, 2, n);
    if (name.empty())
      return method == "GET" ? list(bus::EntityKind::kQueue, "") : respond(MethodNotAllowed(method, "GET"));
    return entity(bus::EntityKind::kQueue, name, "", "");
  }
  size_t j = 0;
  for (size_t i = n; i-- > 3;)
    if (EqualsIgnoreCase(s[i], "subscriptions")) {
      j = i;
      break;
    }
  if (j == 0) {
    std::string name = JoinPath(s, 2, n);
    if (name.empty())
      return method == "GET" ? list(bus::EntityKind::kTopic, "") : respond(MethodNotAllowed(method, "GET"));
    return entity(bus::EntityKind::kTopic, name, "", "");
  }
  std::string topic = JoinPath(s, 2, j);
  size_t tail = n - j - 1;
  if (tail == 0) {
    if (method != "GET") return respond(MethodNotAllowed(method, "GET"));
    auto t = broker_.GetEntity(topic);
    if (!t.ok() || t->kind != bus::EntityKind::kTopic)
      return respond(Error(
          Status(Code::kNotFound, "The topic '" + PrintableText(topic) + "' does not exist.", errc::kEntityNotFound)));
    return list(bus::EntityKind::kSubscription, topic);
  }
  const std::string& sub_name = s[j + 1];
  std::string sub_path = topic + "/Subscriptions/" + sub_name;
  if (tail == 1) return entity(bus::EntityKind::kSubscription, sub_path, topic, sub_name);
  if (!EqualsIgnoreCase(s[j + 2], "rules") || tail > 3) return not_found();

  auto rules = [&]() -> Result<Json> {
    ASSIGN_OR_RETURN(std::string text, broker_.ListRules(sub_path));
    auto j = ParseJson(text);
    if (!j.ok() || !j->is_array()) return Internal("The broker listed rules that are not a JSON array.");
    return j;
  };
  if (tail == 2) {
    if (method != "GET") return respond(MethodNotAllowed(method, "GET"));
    auto all = rules();
    if (!all.ok()) return respond(Error(all.status()));
    std::string out;
    JsonWriter w(out);
    w.BeginArray();
    int64_t index = 0, written = 0;
    for (const Json& rule : all->as_array()) {
      if (index++ < *skip) continue;
      if (written++ >= *top) break;
      WriteRule(w, rule);
    }
    w.EndArray();
    return respond(JsonResponse(200, std::move(out)));
  }
  const std::string& rule_name = s[j + 3];
  auto find_rule = [&](const Json& all) -> const Json* {
    for (const Json& rule : all.as_array()) {
      const Json* nm = FindCi(rule, "Name");
      if (nm && nm->is_string() && nm->as_string() == rule_name) return &rule;
    }
    return nullptr;
  };
  if (method == "GET") {
    auto all = rules();
    if (!all.ok()) return respond(Error(all.status()));
    const Json* rule = find_rule(*all);
    if (!rule)
      return respond(Error(Status(Code::kNotFound, "The rule '" + PrintableText(rule_name) + "' does not exist.",
                                  errc::kEntityNotFound)));
    std::string out;
    JsonWriter w(out);
    WriteRule(w, *rule);
    return respond(JsonResponse(200, std::move(out)));
  }
  if (method == "DELETE") {
    Status st = broker_.DeleteRule(sub_path, rule_name);
    return respond(st.ok() ? Empty(200) : Error(st));
  }
  if (method != "PUT") return respond(MethodNotAllowed(method, "GET, PUT, DELETE"));
  auto body = r.JsonBody();
  if (!body.ok()) return respond(Error(body.status()));
  auto rule_json = RuleForBroker(rule_name, *body);
  if (!rule_json.ok()) return respond(Error(rule_json.status()));
  Status st = broker_.CreateRule(sub_path, *rule_json);
  if (!st.ok()) return respond(Error(st));
  auto parsed = ParseJson(*rule_json);
  std::string out;
  JsonWriter w(out);
  WriteRule(w, parsed.ok() ? *parsed : Json());
  respond(JsonResponse(201, std::move(out)));
}

// --- Metrics ----------------------------------------------------------------------------------

std::string ServiceBusHttp::RenderMetrics() const {
  auto label = [](std::string_view s) {
    std::string out;
    for (char c : s) {
      if (c == '\\' || c == '"') out.push_back('\\');
      if (c == '\n') {
        out += "\\n";
        continue;
      }
      out.push_back(c);
    }
    return out;
  };
  std::string out;
  char buf[64];
  out += "# HELP tributary_bus_messages Messages in a bus entity, by state.\n";
  out += "# TYPE tributary_bus_messages gauge\n";
  auto entities = broker_.ListEntities();
  for (const auto& e : entities) {
    std::string l = label(e.path);
    const auto& rt = e.runtime;
    std::pair<const char*, int64_t> states[] = {{"active", rt.active},
                                                {"dead_lettered", rt.dead_lettered},
                                                {"scheduled", rt.scheduled},
                                                {"deferred", rt.deferred},
                                                {"locked", rt.locked},
                                                {"transfer", rt.transfer},
                                                {"transfer_dead_lettered", rt.transfer_dead_lettered}};
    for (const auto& [state, v] : states) {
      std::snprintf(buf, sizeof buf, "\",state=\"%s\"} %lld\n", state, static_cast<long long>(v));
      out += "tributary_bus_messages{entity=\"" + l + buf;
    }
  }
  out += "# HELP tributary_bus_size_bytes Bytes of the messages stored in a bus entity.\n";
  out += "# TYPE tributary_bus_size_bytes gauge\n";
  for (const auto& e : entities) {
    std::snprintf(buf, sizeof buf, "\"} %lld\n", static_cast<long long>(e.runtime.size_in_bytes));
    out += "tributary_bus_size_bytes{entity=\"" + label(e.path) + buf;
  }
  std::map<std::string, Counters> counters;
  {
    std::lock_guard lock(mu_);
    counters = counters_;
  }
  out += "# HELP tributary_bus_http_sent_total Messages sent through the HTTP data plane.\n";
  out += "# TYPE tributary_bus_http_sent_total counter\n";
  for (const auto& [path, c] : counters) {
    std::snprintf(buf, sizeof buf, "\"} %lld\n", static_cast<long long>(c.sent));
    out += "tributary_bus_http_sent_total{entity=\"" + label(path) + buf;
  }
  out +=
      "# HELP tributary_bus_http_completed_total Messages completed or received-and-deleted through the HTTP "
      "data plane.\n";
  out += "# TYPE tributary_bus_http_completed_total counter\n";
  for (const auto& [path, c] : counters) {
    std::snprintf(buf, sizeof buf, "\"} %lld\n", static_cast<long long>(c.completed));
    out += "tributary_bus_http_completed_total{entity=\"" + label(path) + buf;
  }
  return out;
}

}  // namespace tributary::server
