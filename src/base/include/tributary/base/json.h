#pragma once
// JSON: a small writer over std::to_chars, and a parsed document tree (parsed with simdjson).

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tributary/base/status.h"

namespace tributary {

// Appends `s` as a JSON string literal (quotes included), escaping as RFC 8259 requires.
void AppendJsonString(std::string& out, std::string_view s);
// Shortest round-trip text for a double; integers keep no fraction ("5", "2.5").
void AppendDouble(std::string& out, double v);
// Fixed number of decimals ("5000000.0000"), as Dataverse writes money and decimal columns.
void AppendFixed(std::string& out, double v, int decimals);
void AppendInt(std::string& out, int64_t v);

// Streaming writer. Commas are inserted automatically. Not thread-safe; writes into `out`.
class JsonWriter {
 public:
  explicit JsonWriter(std::string& out) : out_(out) {}
  void BeginObject() {
    Sep();
    out_.push_back('{');
    first_.push_back(true);
  }
  void EndObject() {
    out_.push_back('}');
    first_.pop_back();
  }
  void BeginArray() {
    Sep();
    out_.push_back('[');
    first_.push_back(true);
  }
  void EndArray() {
    out_.push_back(']');
    first_.pop_back();
  }
  void Key(std::string_view k) {
    Sep();
    AppendJsonString(out_, k);
    out_.push_back(':');
    after_key_ = true;
  }
  void String(std::string_view v) {
    Sep();
    AppendJsonString(out_, v);
  }
  void Int(int64_t v) {
    Sep();
    AppendInt(out_, v);
  }
  void Double(double v) {
    Sep();
    AppendDouble(out_, v);
  }
  void Fixed(double v, int decimals) {
    Sep();
    AppendFixed(out_, v, decimals);
  }
  void Bool(bool v) {
    Sep();
    out_.append(v ? "true" : "false");
  }
  void Null() {
    Sep();
    out_.append("null");
  }
  // Appends already-encoded JSON text as one value.
  void Raw(std::string_view json) {
    Sep();
    out_.append(json);
  }
  std::string& out() { return out_; }

 private:
  void Sep() {
    if (after_key_) {
      after_key_ = false;
      return;
    }
    if (!first_.empty()) {
      if (!first_.back()) out_.push_back(',');
      first_.back() = false;
    }
  }
  std::string& out_;
  std::vector<bool> first_;
  bool after_key_ = false;
};

// A parsed JSON value. Objects keep member order (and duplicates, which callers may reject).
class Json {
 public:
  enum class Type : uint8_t { kNull, kBool, kInt, kDouble, kString, kArray, kObject };
  using Member = std::pair<std::string, Json>;

  Json() = default;
  static Json MakeBool(bool b) {
    Json j;
    j.type_ = Type::kBool;
    j.i_ = b;
    return j;
  }
  static Json MakeInt(int64_t v) {
    Json j;
    j.type_ = Type::kInt;
    j.i_ = v;
    return j;
  }
  static Json MakeDouble(double v) {
    Json j;
    j.type_ = Type::kDouble;
    j.d_ = v;
    return j;
  }
  static Json MakeString(std::string s) {
    Json j;
    j.type_ = Type::kString;
    j.s_ = std::move(s);
    return j;
  }
  static Json MakeArray(std::vector<Json> a) {
    Json j;
    j.type_ = Type::kArray;
    j.a_ = std::move(a);
    return j;
  }
  static Json MakeObject(std::vector<Member> o) {
    Json j;
    j.type_ = Type::kObject;
    j.o_ = std::move(o);
    return j;
  }

  Type type() const { return type_; }
  bool is_null() const { return type_ == Type::kNull; }
  bool is_bool() const { return type_ == Type::kBool; }
  bool is_int() const { return type_ == Type::kInt; }
  bool is_number() const { return type_ == Type::kInt || type_ == Type::kDouble; }
  bool is_string() const { return type_ == Type::kString; }
  bool is_array() const { return type_ == Type::kArray; }
  bool is_object() const { return type_ == Type::kObject; }

  bool as_bool() const { return i_ != 0; }
  int64_t as_int() const { return type_ == Type::kDouble ? static_cast<int64_t>(d_) : i_; }
  double as_double() const { return type_ == Type::kInt ? static_cast<double>(i_) : d_; }
  const std::string& as_string() const { return s_; }
  const std::vector<Json>& as_array() const { return a_; }
  const std::vector<Member>& as_object() const { return o_; }
  // First member named `key`, or nullptr.
  const Json* Find(std::string_view key) const;

  // A short name of the type for error messages ("string", "number", …).
  std::string_view TypeName() const;
  // Re-encodes the value as compact JSON text.
  void Write(JsonWriter& w) const;
  std::string Dump() const;

 private:
  Type type_ = Type::kNull;
  int64_t i_ = 0;
  double d_ = 0;
  std::string s_;
  std::vector<Json> a_;
  std::vector<Member> o_;
};

// Parses a complete JSON text. Errors name the position and problem; never throws.
Result<Json> ParseJson(std::string_view text);

}  // namespace tributary
