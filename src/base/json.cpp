#include "tributary/base/json.h"

#include <simdjson.h>

#include <charconv>
#include <cmath>
#include <cstdio>

namespace tributary {

void AppendJsonString(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  size_t start = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out.append(s.data() + start, i - start);
    start = i + 1;
    switch (c) {
      case '"':
        out.append("\\\"");
        break;
      case '\\':
        out.append("\\\\");
        break;
      case '\n':
        out.append("\\n");
        break;
      case '\r':
        out.append("\\r");
        break;
      case '\t':
        out.append("\\t");
        break;
      case '\b':
        out.append("\\b");
        break;
      case '\f':
        out.append("\\f");
        break;
      default:
        out.append("\\u00");
        out.push_back(kHex[c >> 4]);
        out.push_back(kHex[c & 15]);
    }
  }
  out.append(s.data() + start, s.size() - start);
  out.push_back('"');
}

void AppendInt(std::string& out, int64_t v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

void AppendDouble(std::string& out, double v) {
  if (!std::isfinite(v)) {
    out.append("null");
    return;
  }
  char buf[32];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

void AppendFixed(std::string& out, double v, int decimals) {
  if (!std::isfinite(v)) {
    out.append("null");
    return;
  }
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed, decimals);
  if (r.ec != std::errc()) {
    AppendDouble(out, v);
    return;
  }
  out.append(buf, r.ptr);
}

const Json* Json::Find(std::string_view key) const {
  for (const auto& [k, v] : o_)
    if (k == key) return &v;
  return nullptr;
}

std::string_view Json::TypeName() const {
  switch (type_) {
    case Type::kNull:
      return "null";
    case Type::kBool:
      return "boolean";
    case Type::kInt:
    case Type::kDouble:
      return "number";
    case Type::kString:
      return "string";
    case Type::kArray:
      return "array";
    case Type::kObject:
      return "object";
  }
  return "value";
}

void Json::Write(JsonWriter& w) const {
  switch (type_) {
    case Type::kNull:
      w.Null();
      break;
    case Type::kBool:
      w.Bool(as_bool());
      break;
    case Type::kInt:
      w.Int(i_);
      break;
    case Type::kDouble:
      w.Double(d_);
      break;
    case Type::kString:
      w.String(s_);
      break;
    case Type::kArray:
      w.BeginArray();
      for (const auto& v : a_) v.Write(w);
      w.EndArray();
      break;
    case Type::kObject:
      w.BeginObject();
      for (const auto& [k, v] : o_) {
        w.Key(k);
        v.Write(w);
      }
      w.EndObject();
      break;
  }
}

std::string Json::Dump() const {
  std::string out;
  JsonWriter w(out);
  Write(w);
  return out;
}

namespace {

Json Convert(simdjson::dom::element e) {
  using simdjson::dom::element_type;
  switch (e.type()) {
    case element_type::NULL_VALUE:
      return Json();
    case element_type::BOOL:
      return Json::MakeBool(bool(e));
    case element_type::INT64:
      return Json::MakeInt(int64_t(e));
    case element_type::UINT64:
      return Json::MakeDouble(static_cast<double>(uint64_t(e)));
    case element_type::DOUBLE:
      return Json::MakeDouble(double(e));
    case element_type::STRING:
      return Json::MakeString(std::string(std::string_view(e)));
    case element_type::ARRAY: {
      simdjson::dom::array arr(e);
      std::vector<Json> a;
      a.reserve(arr.size());  // the element count is on the tape (saturates at 2^24 - 1)
      for (auto child : arr) a.push_back(Convert(child));
      return Json::MakeArray(std::move(a));
    }
    case element_type::OBJECT: {
      simdjson::dom::object obj(e);
      std::vector<Json::Member> o;
      o.reserve(obj.size());
      for (auto field : obj) o.emplace_back(std::string(field.key), Convert(field.value));
      return Json::MakeObject(std::move(o));
    }
  }
  return Json();
}

}  // namespace

Result<Json> ParseJson(std::string_view text) {
  thread_local simdjson::dom::parser parser;
  simdjson::padded_string padded(text);
  simdjson::dom::element root;
  auto error = parser.parse(padded).get(root);
  if (error) {
    return InvalidArgument(std::string("Invalid JSON: ") + simdjson::error_message(error), err::kPayloadError);
  }
  return Convert(root);
}

}  // namespace tributary
