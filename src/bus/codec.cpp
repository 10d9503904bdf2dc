// Stored form of a message's properties: one JSON object (docs/formats/bus-message.md).

#include "codec.h"

#include "tributary/base/json.h"

namespace tributary::bus {

namespace {

void Opt(JsonWriter& w, const char* key, const std::optional<std::string>& v) {
  if (!v) return;
  w.Key(key);
  w.String(*v);
}

void WriteValue(JsonWriter& w, const PropertyValue& pv) {
  std::visit(
      [&](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        w.BeginArray();
        if constexpr (std::is_same_v<T, std::monostate>) {
          w.String("n");
        } else if constexpr (std::is_same_v<T, bool>) {
          w.String("b");
          w.Bool(x);
        } else if constexpr (std::is_same_v<T, int64_t>) {
          w.String("i");
          w.Int(x);
        } else if constexpr (std::is_same_v<T, double>) {
          w.String("d");
          w.Double(x);
        } else if constexpr (std::is_same_v<T, std::string>) {
          w.String("s");
          w.String(x);
        } else {
          w.String("t");
          w.Int(x.ms);
        }
        w.EndArray();
      },
      pv.v);
}

PropertyValue ReadValue(const Json& j) {
  PropertyValue pv;
  if (!j.is_array() || j.as_array().empty() || !j.as_array()[0].is_string()) return pv;
  const std::string& t = j.as_array()[0].as_string();
  const Json* v = j.as_array().size() > 1 ? &j.as_array()[1] : nullptr;
  if (!v) return pv;
  if (t == "b" && v->is_bool())
    pv.v = v->as_bool();
  else if (t == "i" && v->is_number())
    pv.v = v->as_int();
  else if (t == "d" && v->is_number())
    pv.v = v->as_double();
  else if (t == "s" && v->is_string())
    pv.v = v->as_string();
  else if (t == "t" && v->is_number())
    pv.v = Timestamp{v->as_int()};
  return pv;
}

std::optional<std::string> Str(const Json& o, const char* key) {
  const Json* v = o.Find(key);
  if (!v || !v->is_string()) return std::nullopt;
  return v->as_string();
}

std::optional<int64_t> Int(const Json& o, const char* key) {
  const Json* v = o.Find(key);
  if (!v || !v->is_number()) return std::nullopt;
  return v->as_int();
}

}  // namespace

std::string EncodeProperties(const MessageProperties& p) {
  std::string out;
  JsonWriter w(out);
  w.BeginObject();
  Opt(w, "mid", p.message_id);
  Opt(w, "cid", p.correlation_id);
  Opt(w, "sid", p.session_id);
  Opt(w, "rsid", p.reply_to_session_id);
  Opt(w, "subj", p.subject);
  Opt(w, "to", p.to);
  Opt(w, "rto", p.reply_to);
  Opt(w, "ct", p.content_type);
  Opt(w, "pk", p.partition_key);
  Opt(w, "dls", p.dead_letter_source);
  if (p.time_to_live_ms) {
    w.Key("ttl");
    w.Int(*p.time_to_live_ms);
  }
  if (p.scheduled_enqueue_time) {
    w.Key("sched");
    w.Int(p.scheduled_enqueue_time->ms);
  }
  if (p.enqueued_sequence_number) {
    w.Key("eseq");
    w.Int(p.enqueued_sequence_number);
  }
  if (!p.application.empty()) {
    w.Key("app");
    w.BeginObject();
    for (const auto& [k, v] : p.application) {
      w.Key(k);
      WriteValue(w, v);
    }
    w.EndObject();
  }
  w.EndObject();
  return out;
}

MessageProperties DecodeProperties(std::string_view text) {
  MessageProperties p;
  auto j = ParseJson(text);
  if (!j.ok() || !j->is_object()) return p;
  const Json& o = *j;
  p.message_id = Str(o, "mid");
  p.correlation_id = Str(o, "cid");
  p.session_id = Str(o, "sid");
  p.reply_to_session_id = Str(o, "rsid");
  p.subject = Str(o, "subj");
  p.to = Str(o, "to");
  p.reply_to = Str(o, "rto");
  p.content_type = Str(o, "ct");
  p.partition_key = Str(o, "pk");
  p.dead_letter_source = Str(o, "dls");
  p.time_to_live_ms = Int(o, "ttl");
  if (auto s = Int(o, "sched")) p.scheduled_enqueue_time = Timestamp{*s};
  p.enqueued_sequence_number = Int(o, "eseq").value_or(0);
  if (const Json* app = o.Find("app"); app && app->is_object())
    for (const auto& [k, v] : app->as_object()) p.application[k] = ReadValue(v);
  return p;
}

int64_t MessageSize(const MessageProperties& p, std::string_view body) {
  int64_t n = static_cast<int64_t>(body.size());
  for (const auto* s : {&p.message_id, &p.correlation_id, &p.session_id, &p.reply_to_session_id, &p.subject, &p.to,
                        &p.reply_to, &p.content_type, &p.partition_key})
    if (*s) n += static_cast<int64_t>((*s)->size());
  for (const auto& [k, v] : p.application) {
    n += static_cast<int64_t>(k.size());
    if (const auto* s = std::get_if<std::string>(&v.v))
      n += static_cast<int64_t>(s->size());
    else
      n += 8;
  }
  return n;
}

}  // namespace tributary::bus
