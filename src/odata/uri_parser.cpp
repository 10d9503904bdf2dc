#include "tributary/odata/uri_parser.h"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

#include "tributary/base/guid.h"
#include "tributary/base/status.h"
#include "tributary/base/strings.h"
#include "tributary/base/time.h"

namespace tributary::odata {
namespace {

using data::CompareOp;
using data::Expr;
using data::ExprPtr;
using data::Literal;

constexpr size_t kMaxAliasExpansion = size_t{1} << 20;

// ---------------------------------------------------------------------------------------------
// Characters and messages

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsHex(char c) { return IsDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
bool IsAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
// Identifiers are ASCII letters, digits and '_', plus any non-ASCII byte (UTF-8 names).
bool IsIdentStart(char c) { return IsAlpha(c) || c == '_' || static_cast<unsigned char>(c) >= 0x80; }
bool IsIdentChar(char c) { return IsIdentStart(c) || IsDigit(c); }
bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

bool IsIdentifier(std::string_view s) {
  if (s.empty() || !IsIdentStart(s[0])) return false;
  for (char c : s)
    if (!IsIdentChar(c)) return false;
  return true;
}

// Identifiers joined by single dots: "name", "Microsoft.Dynamics.CRM.WhoAmI".
bool IsQualifiedIdentifier(std::string_view s) {
  for (std::string_view part : Split(s, '.'))
    if (!IsIdentifier(part)) return false;
  return true;
}

// A property path: qualified identifiers joined by '/'.
bool IsPropertyPath(std::string_view s) {
  for (std::string_view part : Split(s, '/'))
    if (!IsQualifiedIdentifier(part)) return false;
  return true;
}

std::vector<std::string> SplitPath(std::string_view s) {
  std::vector<std::string> out;
  for (std::string_view part : Split(s, '/')) out.emplace_back(part);
  return out;
}

// Quotes user text for a message (PrintableText: valid UTF-8 of bounded length).
std::string Quote(std::string_view s) { return "'" + PrintableText(s, 60) + "'"; }

std::string DescribeChar(char c) {
  unsigned char u = static_cast<unsigned char>(c);
  if (u >= 0x20 && u < 0x7f) return std::string("'") + c + "'";
  static constexpr char kHex[] = "0123456789ABCDEF";
  return std::string("byte 0x") + kHex[u >> 4] + kHex[u & 15];
}

// Text being parsed plus the label used in messages ("'$filter'", "parameter alias '@p1'").
class Source {
 public:
  Source(std::string_view text, std::string label) : text_(text), label_(std::move(label)) {}

  std::string_view text() const { return text_; }
  size_t size() const { return text_.size(); }
  // The character at `i`, or '\0' past the end.
  char At(size_t i) const { return i < text_.size() ? text_[i] : '\0'; }
  const std::string& label() const { return label_; }

  Status Error(size_t pos, std::string_view what) const {
    std::string m = "Syntax error at position ";
    m += std::to_string(pos);
    m += " in ";
    m += label_;
    m += ": ";
    m += what;
    m += '.';
    return QueryError(std::move(m));
  }

 private:
  std::string_view text_;
  std::string label_;
};

// Scans from `from` and returns the index of the first character listed in `stops` that is
// outside quoted strings and brackets, or the text size when there is none. Single-quoted
// strings use '' for a quote; double-quoted (JSON) strings use backslash escapes. Fails on
// unterminated strings and unbalanced (), [] or {}. Iterative and linear.
Result<size_t> ScanBalanced(const Source& src, size_t from, std::string_view stops) {
  std::string_view t = src.text();
  std::vector<size_t> open;  // positions of unclosed brackets
  for (size_t i = from; i < t.size(); ++i) {
    char c = t[i];
    if (open.empty() && stops.find(c) != std::string_view::npos) return i;
    switch (c) {
      case '\'': {
        size_t q = i + 1;
        while (q < t.size() && t[q] != '\'') ++q;
        if (q >= t.size()) return src.Error(i, "unterminated string literal");
        i = q;
        break;
      }
      case '"': {
        size_t q = i + 1;
        while (q < t.size() && t[q] != '"') q += t[q] == '\\' ? 2 : 1;
        if (q >= t.size()) return src.Error(i, "unterminated string literal");
        i = q;
        break;
      }
      case '(':
      case '[':
      case '{':
        open.push_back(i);
        break;
      case ')':
      case ']':
      case '}': {
        char want = open.empty() ? '\0' : (t[open.back()] == '(' ? ')' : t[open.back()] == '[' ? ']' : '}');
        if (c != want) return src.Error(i, "unbalanced " + DescribeChar(c));
        open.pop_back();
        break;
      }
      default:
        break;
    }
  }
  if (!open.empty()) return src.Error(open.back(), "unbalanced " + DescribeChar(t[open.back()]) + ", never closed");
  return t.size();
}

// ---------------------------------------------------------------------------------------------
// Literal scanning helpers. Each takes the position of the first character and returns the
// position after the lexeme.

// A GUID, bare or in braces, not followed by an identifier character; 0 when there is none.
size_t ScanGuid(const Source& src, size_t pos) {
  bool brace = src.At(pos) == '{';
  size_t start = pos + (brace ? 1 : 0);
  if (start + 36 > src.size()) return 0;
  for (size_t i = 0; i < 36; ++i) {
    char c = src.At(start + i);
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (c != '-') return 0;
    } else if (!IsHex(c)) {
      return 0;
    }
  }
  size_t end = start + 36;
  if (brace) {
    if (src.At(end) != '}') return 0;
    ++end;
  }
  char next = src.At(end);
  if (IsIdentChar(next) || next == '-' || next == '.') return 0;
  return end;
}

bool DigitsAt(const Source& src, size_t pos, size_t n) {
  for (size_t i = 0; i < n; ++i)
    if (!IsDigit(src.At(pos + i))) return false;
  return true;
}

// The shape of a date (YYYY-MM-DD) or date-time (…THH:MM[:SS[.f+]][Z|±HH:MM]); returns 0 when
// the text does not have it. Ranges are checked by the caller.
size_t ScanDateTime(const Source& src, size_t pos, bool& has_time) {
  has_time = false;
  if (!DigitsAt(src, pos, 4) || src.At(pos + 4) != '-' || !DigitsAt(src, pos + 5, 2) || src.At(pos + 7) != '-' ||
      !DigitsAt(src, pos + 8, 2))
    return 0;
  size_t p = pos + 10;
  if (src.At(p) != 'T' && src.At(p) != 't') return p;
  has_time = true;
  if (!DigitsAt(src, p + 1, 2) || src.At(p + 3) != ':' || !DigitsAt(src, p + 4, 2)) return 0;
  p += 6;
  if (src.At(p) == ':') {
    if (!DigitsAt(src, p + 1, 2)) return 0;
    p += 3;
    if (src.At(p) == '.') {
      size_t f = ++p;
      while (IsDigit(src.At(p))) ++p;
      if (p == f) return 0;
    }
  }
  if (src.At(p) == 'Z' || src.At(p) == 'z') {
    ++p;
  } else if (src.At(p) == '+' || src.At(p) == '-') {
    if (!DigitsAt(src, p + 1, 2) || src.At(p + 3) != ':' || !DigitsAt(src, p + 4, 2)) return 0;
    p += 6;
  }
  return p;
}

// A single-quoted OData string; appends the unescaped text to `out`. Returns 0 if unterminated.
size_t ScanQuoted(const Source& src, size_t pos, std::string& out) {
  std::string_view t = src.text();
  size_t p = pos + 1;
  while (p < t.size()) {
    if (t[p] == '\'') {
      if (src.At(p + 1) != '\'') return p + 1;
      out.push_back('\'');
      p += 2;
    } else {
      out.push_back(t[p++]);
    }
  }
  return 0;
}

bool Hex4(const Source& src, size_t pos, uint32_t& out) {
  out = 0;
  for (size_t i = 0; i < 4; ++i) {
    char c = src.At(pos + i);
    if (!IsHex(c)) return false;
    out = out << 4 | static_cast<uint32_t>(IsDigit(c) ? c - '0' : (c | 0x20) - 'a' + 10);
  }
  return true;
}

// A double-quoted JSON string; appends the unescaped text to `out`.
Result<size_t> ScanJsonString(const Source& src, size_t pos, std::string& out) {
  std::string_view t = src.text();
  size_t p = pos + 1;
  while (p < t.size()) {
    char c = t[p];
    if (c == '"') return p + 1;
    if (c != '\\') {
      out.push_back(c);
      ++p;
      continue;
    }
    char e = src.At(p + 1);
    switch (e) {
      case '"':
      case '\\':
      case '/':
        out.push_back(e);
        break;
      case 'b':
        out.push_back('\b');
        break;
      case 'f':
        out.push_back('\f');
        break;
      case 'n':
        out.push_back('\n');
        break;
      case 'r':
        out.push_back('\r');
        break;
      case 't':
        out.push_back('\t');
        break;
      case 'u': {
        uint32_t cp;
        if (!Hex4(src, p + 2, cp)) return src.Error(p, "invalid \\u escape in string");
        p += 4;
        if (cp >= 0xD800 && cp < 0xDC00) {
          uint32_t lo;
          if (src.At(p + 2) == '\\' && src.At(p + 3) == 'u' && Hex4(src, p + 4, lo) && lo >= 0xDC00 && lo < 0xE000) {
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            p += 6;
          } else {
            cp = 0xFFFD;
          }
        } else if (cp >= 0xDC00 && cp < 0xE000) {
          cp = 0xFFFD;
        }
        AppendUtf8(out, cp);
        break;
      }
      default:
        return src.Error(p, "invalid escape sequence in string");
    }
    p += 2;
  }
  return src.Error(pos, "unterminated string literal");
}

// ---------------------------------------------------------------------------------------------
// Lexer

enum class Tok : uint8_t {
  kEnd,
  kIdent,       // name, possibly dotted; keywords (and, eq, asc, …) are identifiers too
  kLiteral,     // literal() holds the value
  kJsonString,  // "…": only valid inside arrays; literal() holds it as a kString
  kAlias,       // @name
  kLParen,
  kRParen,
  kComma,
  kSlash,
  kColon,
  kEquals,
  kLBracket,
  kRBracket,
};

struct Token {
  Tok kind = Tok::kEnd;
  size_t pos = 0;         // first byte
  size_t end = 0;         // one past the last byte
  std::string_view text;  // the lexeme as written
  Literal literal;
};

class Lexer {
 public:
  explicit Lexer(const Source& src) : src_(src) {}

  const Source& src() const { return src_; }
  Token& tok() { return tok_; }
  // The lexeme before the current token (for messages); empty at the start.
  std::string_view prev() const { return prev_; }
  // True when the current token is exactly the identifier `word`.
  bool Is(std::string_view word) const { return tok_.kind == Tok::kIdent && tok_.text == word; }
  // The character right after the current token (no space skipped), '\0' at the end.
  char CharAfter() const { return src_.At(tok_.end); }

  // Reads the next token.
  Status Advance();

 private:
  Status LexNumber(size_t start);
  Status LexDateTime(size_t start);
  Status LexWord(size_t start);
  void Finish(Tok kind, size_t end) {
    tok_.kind = kind;
    tok_.end = end;
    tok_.text = src_.text().substr(tok_.pos, end - tok_.pos);
    pos_ = end;
  }
  void FinishLiteral(Literal::Kind kind, std::string text, size_t end) {
    tok_.literal.kind = kind;
    tok_.literal.text = std::move(text);
    Finish(Tok::kLiteral, end);
  }

  const Source& src_;
  size_t pos_ = 0;
  Token tok_;
  std::string_view prev_;
};

Status Lexer::Advance() {
  prev_ = tok_.text;
  std::string_view t = src_.text();
  while (pos_ < t.size() && IsSpace(t[pos_])) ++pos_;
  tok_ = Token{};
  tok_.pos = pos_;
  if (pos_ >= t.size()) {
    Finish(Tok::kEnd, pos_);
    return Status::Ok();
  }
  char c = t[pos_];
  switch (c) {
    case '(':
      Finish(Tok::kLParen, pos_ + 1);
      return Status::Ok();
    case ')':
      Finish(Tok::kRParen, pos_ + 1);
      return Status::Ok();
    case ',':
      Finish(Tok::kComma, pos_ + 1);
      return Status::Ok();
    case '/':
      Finish(Tok::kSlash, pos_ + 1);
      return Status::Ok();
    case ':':
      Finish(Tok::kColon, pos_ + 1);
      return Status::Ok();
    case '=':
      Finish(Tok::kEquals, pos_ + 1);
      return Status::Ok();
    case '[':
      Finish(Tok::kLBracket, pos_ + 1);
      return Status::Ok();
    case ']':
      Finish(Tok::kRBracket, pos_ + 1);
      return Status::Ok();
    case '\'': {
      std::string s;
      size_t end = ScanQuoted(src_, pos_, s);
      if (end == 0) return src_.Error(pos_, "unterminated string literal");
      FinishLiteral(Literal::Kind::kString, std::move(s), end);
      return Status::Ok();
    }
    case '"': {
      std::string s;
      ASSIGN_OR_RETURN(size_t end, ScanJsonString(src_, pos_, s));
      tok_.literal.kind = Literal::Kind::kString;
      tok_.literal.text = std::move(s);
      Finish(Tok::kJsonString, end);
      return Status::Ok();
    }
    case '@': {
      size_t p = pos_ + 1;
      while (IsIdentChar(src_.At(p))) ++p;
      if (p == pos_ + 1) return src_.Error(pos_, "expected a parameter alias name after '@'");
      Finish(Tok::kAlias, p);
      return Status::Ok();
    }
    default:
      break;
  }
  if (size_t end = ScanGuid(src_, pos_); end != 0) {
    std::optional<Guid> g = Guid::Parse(t.substr(pos_, end - pos_));
    if (!g) return src_.Error(pos_, "invalid GUID");  // unreachable: ScanGuid checked the shape
    FinishLiteral(Literal::Kind::kGuid, g->ToString(), end);
    return Status::Ok();
  }
  if (IsDigit(c)) {
    if (DigitsAt(src_, pos_, 4) && src_.At(pos_ + 4) == '-') return LexDateTime(pos_);
    return LexNumber(pos_);
  }
  if ((c == '-' || c == '+') && IsDigit(src_.At(pos_ + 1))) return LexNumber(pos_);
  if (IsIdentStart(c)) return LexWord(pos_);
  return src_.Error(pos_, "unexpected character " + DescribeChar(c));
}

Status Lexer::LexNumber(size_t start) {
  size_t p = start;
  if (src_.At(p) == '-' || src_.At(p) == '+') ++p;
  size_t int_start = p;
  while (IsDigit(src_.At(p))) ++p;
  bool ok = p > int_start;
  bool is_decimal = false;
  if (ok && src_.At(p) == '.') {
    size_t f = ++p;
    while (IsDigit(src_.At(p))) ++p;
    ok = p > f;
    is_decimal = true;
  }
  if (ok && (src_.At(p) == 'e' || src_.At(p) == 'E')) {
    ++p;
    if (src_.At(p) == '+' || src_.At(p) == '-') ++p;
    size_t e = p;
    while (IsDigit(src_.At(p))) ++p;
    ok = p > e;
    is_decimal = true;
  }
  size_t value_end = p;
  if (ok && (src_.At(p) == 'm' || src_.At(p) == 'M')) {
    ++p;
    is_decimal = true;
  }
  if (!ok || IsIdentChar(src_.At(p)) || src_.At(p) == '.' || src_.At(p) == '-') {
    size_t q = p;
    while (IsIdentChar(src_.At(q)) || src_.At(q) == '.' || src_.At(q) == '-') ++q;
    return src_.Error(start, "invalid number " + Quote(src_.text().substr(start, q - start)));
  }
  size_t text_start = src_.At(start) == '+' ? start + 1 : start;
  FinishLiteral(is_decimal ? Literal::Kind::kDecimal : Literal::Kind::kInteger,
                std::string(src_.text().substr(text_start, value_end - text_start)), p);
  return Status::Ok();
}

Status Lexer::LexDateTime(size_t start) {
  bool has_time = false;
  size_t end = ScanDateTime(src_, start, has_time);
  if (end == 0 || IsIdentChar(src_.At(end)) || src_.At(end) == '.' || src_.At(end) == ':') {
    size_t q = start;
    while (IsIdentChar(src_.At(q)) || src_.At(q) == '-' || src_.At(q) == ':' || src_.At(q) == '.' || src_.At(q) == '+')
      ++q;
    return src_.Error(start, "invalid date/time literal " + Quote(src_.text().substr(start, q - start)));
  }
  std::string_view text = src_.text().substr(start, end - start);
  bool valid = has_time ? ParseTimestamp(text).has_value() : ParseDate(text).has_value();
  if (!valid) return src_.Error(start, "invalid date/time literal " + Quote(text) + " (value out of range)");
  FinishLiteral(has_time ? Literal::Kind::kDateTime : Literal::Kind::kDate, std::string(text), end);
  return Status::Ok();
}

Status Lexer::LexWord(size_t start) {
  size_t p = start;
  for (;;) {
    while (IsIdentChar(src_.At(p))) ++p;
    if (src_.At(p) == '.' && IsIdentStart(src_.At(p + 1))) {
      ++p;
      continue;
    }
    break;
  }
  std::string_view word = src_.text().substr(start, p - start);
  if (src_.At(p) == '\'') {
    size_t dot = word.rfind('.');
    if (dot == std::string_view::npos) {
      return src_.Error(start,
                        Quote(word) + " typed literals are not supported; write the value without a type prefix");
    }
    std::string member;
    size_t end = ScanQuoted(src_, p, member);
    if (end == 0) return src_.Error(p, "unterminated string literal");
    std::string text(word.substr(dot + 1));
    text += '\'';
    text += member;
    text += '\'';
    FinishLiteral(Literal::Kind::kEnum, std::move(text), end);
    return Status::Ok();
  }
  if (word == "null") {
    FinishLiteral(Literal::Kind::kNull, "", p);
  } else if (word == "true" || word == "false") {
    FinishLiteral(Literal::Kind::kBool, std::string(word), p);
  } else {
    Finish(Tok::kIdent, p);
  }
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------------
// Shared parse state: aliases, the nesting depth and the alias expansion budget.

struct ParseContext {
  const AliasMap& aliases;
  int depth = 0;
  size_t alias_bytes = 0;
};

// Counts one nesting level for its lifetime.
class DepthGuard {
 public:
  explicit DepthGuard(int& depth) : depth_(depth) { ++depth_; }
  ~DepthGuard() { --depth_; }
  DepthGuard(const DepthGuard&) = delete;
  DepthGuard& operator=(const DepthGuard&) = delete;
  bool exceeded() const { return depth_ > kMaxNestingDepth; }

 private:
  int& depth_;
};

std::string TooDeep() { return "nesting is deeper than " + std::to_string(kMaxNestingDepth) + " levels"; }

// The value text of alias `name` (with '@'), std::nullopt when unassigned.
Result<std::optional<std::string_view>> LookupAlias(ParseContext& ctx, const Source& src, size_t pos,
                                                    std::string_view name) {
  auto it = ctx.aliases.find(std::string(name));
  if (it == ctx.aliases.end()) return std::optional<std::string_view>();
  ctx.alias_bytes += it->second.size() + 1;
  if (ctx.alias_bytes > kMaxAliasExpansion)
    return src.Error(pos, "parameter aliases expand to more than 1 MiB of text");
  return std::optional<std::string_view>(Trim(it->second));
}

Result<Literal> ParseLiteralIn(std::string_view text, std::string label) {
  Source src(text, std::move(label));
  Lexer lx(src);
  RETURN_IF_ERROR(lx.Advance());
  if (lx.tok().kind != Tok::kLiteral) {
    if (lx.tok().kind == Tok::kEnd) return src.Error(0, "expected a literal but the text is empty");
    return src.Error(lx.tok().pos, "expected a literal but found " + Quote(lx.tok().text));
  }
  Literal lit = std::move(lx.tok().literal);
  RETURN_IF_ERROR(lx.Advance());
  if (lx.tok().kind != Tok::kEnd)
    return src.Error(lx.tok().pos, "unexpected " + Quote(lx.tok().text) + " after the literal");
  return lit;
}

std::string AliasLabel(std::string_view name) { return "parameter alias " + Quote(name); }

// Elements of an array whose '[' is the lexer's current token; leaves the lexer after ']'.
Result<std::vector<Literal>> ParseArray(Lexer& lx) {
  std::vector<Literal> values;
  RETURN_IF_ERROR(lx.Advance());
  if (lx.tok().kind == Tok::kRBracket) {
    RETURN_IF_ERROR(lx.Advance());
    return values;
  }
  for (;;) {
    Token& t = lx.tok();
    if (t.kind != Tok::kLiteral && t.kind != Tok::kJsonString) {
      if (t.kind == Tok::kEnd) return lx.src().Error(t.pos, "unterminated array, expected ']'");
      return lx.src().Error(t.pos, "expected a literal in the array but found " + Quote(t.text));
    }
    values.push_back(std::move(t.literal));
    RETURN_IF_ERROR(lx.Advance());
    if (lx.tok().kind == Tok::kComma) {
      RETURN_IF_ERROR(lx.Advance());
      continue;
    }
    if (lx.tok().kind == Tok::kRBracket) break;
    return lx.src().Error(lx.tok().pos, "expected ',' or ']' in the array");
  }
  RETURN_IF_ERROR(lx.Advance());
  return values;
}

// ---------------------------------------------------------------------------------------------
// $filter and $orderby

ExprPtr MakeLiteral(Literal lit) {
  auto e = std::make_unique<Expr>();
  e->kind = Expr::Kind::kLiteral;
  e->literal = std::move(lit);
  return e;
}

ExprPtr MakeProperty(std::vector<std::string> path) {
  auto e = std::make_unique<Expr>();
  e->kind = Expr::Kind::kProperty;
  e->path = std::move(path);
  return e;
}

ExprPtr MakeNot(ExprPtr operand) {
  auto e = std::make_unique<Expr>();
  e->kind = Expr::Kind::kNot;
  e->children.push_back(std::move(operand));
  return e;
}

// A balanced tree over items[lo, hi), left half rounded up (so three items lean left).
ExprPtr BuildChain(Expr::Kind kind, std::vector<ExprPtr>& items, size_t lo, size_t hi) {
  if (hi - lo == 1) return std::move(items[lo]);
  size_t mid = lo + (hi - lo + 1) / 2;
  auto e = std::make_unique<Expr>();
  e->kind = kind;
  e->children.push_back(BuildChain(kind, items, lo, mid));
  e->children.push_back(BuildChain(kind, items, mid, hi));
  return e;
}

bool CompareOpFor(std::string_view word, CompareOp& op) {
  static constexpr std::pair<std::string_view, CompareOp> kOps[] = {{"eq", CompareOp::kEq}, {"ne", CompareOp::kNe},
                                                                    {"gt", CompareOp::kGt}, {"ge", CompareOp::kGe},
                                                                    {"lt", CompareOp::kLt}, {"le", CompareOp::kLe}};
  for (const auto& [name, value] : kOps) {
    if (word == name) {
      op = value;
      return true;
    }
  }
  return false;
}

// True when `word` is one of the space-separated words in `list`.
bool InWordList(std::string_view list, std::string_view word) {
  if (word.empty()) return false;
  for (size_t pos = list.find(word); pos != std::string_view::npos; pos = list.find(word, pos + 1)) {
    size_t end = pos + word.size();
    if ((pos == 0 || list[pos - 1] == ' ') && (end == list.size() || list[end] == ' ')) return true;
  }
  return false;
}

bool IsUnsupportedOperator(std::string_view word) { return InWordList("has in add sub mul div divby mod", word); }

bool IsReservedWord(std::string_view word) {
  CompareOp op;
  return word == "and" || word == "or" || word == "not" || CompareOpFor(word, op);
}

// OData functions that Dataverse does not offer in $filter.
bool IsUnsupportedFunction(std::string_view name) {
  return InWordList(
      "concat indexof length substring matchesPattern tolower toupper trim date day fractionalseconds hour "
      "maxdatetime mindatetime minute month now second time totaloffsetminutes totalseconds year ceiling floor "
      "round cast isof hassubset hassubsequence case",
      name);
}

bool StripQueryFunctionNamespace(std::string_view& name) {
  for (std::string_view ns : {std::string_view("Microsoft.Dynamics.CRM."), std::string_view("mscrm.")}) {
    if (StartsWithIgnoreCase(name, ns)) {
      name.remove_prefix(ns.size());
      return true;
    }
  }
  return false;
}

constexpr std::string_view kNotWithQueryFunction =
    "Not operator along with the Custom Named Condition operators is not allowed";

// An operand before it is known whether it is compared or used as a condition.
struct Operand {
  ExprPtr expr;
  size_t pos = 0;
};

class ExprParser {
 public:
  ExprParser(std::string_view text, std::string label, ParseContext& ctx)
      : src_(text, std::move(label)), lx_(src_), ctx_(ctx) {}

  Result<ExprPtr> ParseFilter();
  Result<std::vector<data::OrderBy>> ParseOrderBy();

 private:
  Token& tok() { return lx_.tok(); }
  Status Advance() { return lx_.Advance(); }
  Status Expect(Tok kind, std::string_view what) {
    if (tok().kind == kind) return Advance();
    return UnexpectedHere(std::string("expected ") + std::string(what));
  }
  // "<what> but found 'x'" or "<what> but the input ends".
  Status UnexpectedHere(std::string what) {
    if (tok().kind == Tok::kEnd) {
      what += " but the input ends";
    } else {
      what += " but found " + Quote(tok().text);
    }
    return src_.Error(tok().pos, what);
  }

  // ParseOr and ParseAnd start from `first` when given: a comparison already parsed.
  Result<ExprPtr> ParseOr(ExprPtr first = nullptr);
  Result<ExprPtr> ParseAnd(ExprPtr first = nullptr);
  Result<ExprPtr> ParseComparison();
  Result<ExprPtr> FinishComparison(Operand left);
  Result<Operand> ParseUnary();
  Result<Operand> ParsePrimary();
  Result<Operand> ParsePathOrLambda();
  Result<ExprPtr> ParseLambda(std::vector<std::string> path);
  Result<Operand> ParseCall();
  Result<ExprPtr> ParseStringFunction(std::string name);
  Result<ExprPtr> ParseQueryFunction(std::string name);
  Result<Expr::Param> ParseParamValue(std::string name);
  Result<ExprPtr> ResolveAliasOperand(const Token& t);
  Result<std::vector<std::string>> ResolveAliasPath(const Token& t);
  Status CheckFollower();
  Result<ExprPtr> ToCondition(Operand operand);
  Result<ExprPtr> MakeComparison(Operand left, CompareOp op, size_t op_pos, Operand right);

  Source src_;
  Lexer lx_;
  ParseContext& ctx_;
};

Result<ExprPtr> ExprParser::ParseFilter() {
  RETURN_IF_ERROR(Advance());
  if (tok().kind == Tok::kEnd) return src_.Error(0, "the expression is empty");
  ASSIGN_OR_RETURN(ExprPtr e, ParseOr());
  if (tok().kind == Tok::kRParen) return src_.Error(tok().pos, "unbalanced ')'");
  if (tok().kind != Tok::kEnd) return UnexpectedHere("expected 'and' or 'or' after " + Quote(lx_.prev()));
  return e;
}

Result<ExprPtr> ExprParser::ParseOr(ExprPtr first) {
  std::vector<ExprPtr> items;
  ASSIGN_OR_RETURN(ExprPtr head, ParseAnd(std::move(first)));
  items.push_back(std::move(head));
  while (lx_.Is("or")) {
    RETURN_IF_ERROR(Advance());
    ASSIGN_OR_RETURN(ExprPtr next, ParseAnd());
    items.push_back(std::move(next));
  }
  return BuildChain(Expr::Kind::kOr, items, 0, items.size());
}

Result<ExprPtr> ExprParser::ParseAnd(ExprPtr first) {
  std::vector<ExprPtr> items;
  if (!first) {
    ASSIGN_OR_RETURN(first, ParseComparison());
  }
  items.push_back(std::move(first));
  while (lx_.Is("and")) {
    RETURN_IF_ERROR(Advance());
    ASSIGN_OR_RETURN(ExprPtr next, ParseComparison());
    items.push_back(std::move(next));
  }
  return BuildChain(Expr::Kind::kAnd, items, 0, items.size());
}

// After a comparison or condition only 'and', 'or', ')' or the end may follow.
Status ExprParser::CheckFollower() {
  Token& t = tok();
  if (t.kind == Tok::kEnd || t.kind == Tok::kRParen || lx_.Is("and") || lx_.Is("or")) return Status::Ok();
  if (t.kind == Tok::kIdent && IsUnsupportedOperator(t.text))
    return src_.Error(t.pos, "the operator " + Quote(t.text) + " is not supported");
  CompareOp op;
  if (t.kind == Tok::kIdent && CompareOpFor(t.text, op))
    return src_.Error(t.pos, "comparisons cannot be chained; combine them with 'and' or 'or'");
  if (t.kind == Tok::kIdent) {
    std::string lower = ToLower(t.text);
    if (IsReservedWord(lower) || IsUnsupportedOperator(lower))
      return src_.Error(t.pos, "operators are case-sensitive; write " + Quote(lower) + " instead of " + Quote(t.text));
  }
  return src_.Error(t.pos, "expected an operator after " + Quote(lx_.prev()) + " but found " + Quote(t.text));
}

Result<ExprPtr> ExprParser::ParseComparison() {
  ASSIGN_OR_RETURN(Operand left, ParseUnary());
  return FinishComparison(std::move(left));
}

Result<ExprPtr> ExprParser::FinishComparison(Operand left) {
  CompareOp op;
  if (tok().kind == Tok::kIdent && CompareOpFor(tok().text, op)) {
    size_t op_pos = tok().pos;
    RETURN_IF_ERROR(Advance());
    ASSIGN_OR_RETURN(Operand right, ParseUnary());
    ASSIGN_OR_RETURN(ExprPtr cmp, MakeComparison(std::move(left), op, op_pos, std::move(right)));
    RETURN_IF_ERROR(CheckFollower());
    return cmp;
  }
  RETURN_IF_ERROR(CheckFollower());
  return ToCondition(std::move(left));
}

Result<ExprPtr> ExprParser::ToCondition(Operand operand) {
  ExprPtr& e = operand.expr;
  if (e->kind == Expr::Kind::kProperty) {
    auto cmp = std::make_unique<Expr>();
    cmp->kind = Expr::Kind::kCompare;
    cmp->op = CompareOp::kEq;
    cmp->children.push_back(std::move(e));
    Literal t;
    t.kind = Literal::Kind::kBool;
    t.text = "true";
    cmp->children.push_back(MakeLiteral(std::move(t)));
    return cmp;
  }
  if (e->kind == Expr::Kind::kLiteral) return src_.Error(operand.pos, "expected a condition but found a literal");
  return std::move(e);
}

Result<ExprPtr> ExprParser::MakeComparison(Operand left, CompareOp op, size_t op_pos, Operand right) {
  auto is_value = [](const ExprPtr& e) { return e->kind == Expr::Kind::kProperty || e->kind == Expr::Kind::kLiteral; };
  if (is_value(left.expr) && is_value(right.expr)) {
    auto cmp = std::make_unique<Expr>();
    cmp->kind = Expr::Kind::kCompare;
    cmp->op = op;
    cmp->children.push_back(std::move(left.expr));
    cmp->children.push_back(std::move(right.expr));
    return cmp;
  }
  // `contains(name,'x') eq false` and the like: the call itself or its negation.
  Expr::Kind lk = left.expr->kind;
  bool callable = lk == Expr::Kind::kFunction || lk == Expr::Kind::kLambda || lk == Expr::Kind::kQueryFunction;
  const ExprPtr& r = right.expr;
  if (callable && (op == CompareOp::kEq || op == CompareOp::kNe) && r->kind == Expr::Kind::kLiteral &&
      r->literal.kind == Literal::Kind::kBool) {
    bool negate = (r->literal.text == "true") == (op == CompareOp::kNe);
    if (!negate) return std::move(left.expr);
    if (lk == Expr::Kind::kQueryFunction) return QueryError(std::string(kNotWithQueryFunction));
    return MakeNot(std::move(left.expr));
  }
  if (lk == Expr::Kind::kNot) {
    return src_.Error(left.pos, "'not' binds tighter than comparisons; write 'not (a eq b)' to negate one");
  }
  const Operand& bad = is_value(left.expr) ? right : left;
  return src_.Error(bad.pos, "only properties and literals can be compared (the operand of the operator at position " +
                                 std::to_string(op_pos) + " is a condition)");
}

Result<Operand> ExprParser::ParseUnary() {
  if (!lx_.Is("not")) return ParsePrimary();
  size_t pos = tok().pos;
  DepthGuard guard(ctx_.depth);
  if (guard.exceeded()) return src_.Error(pos, TooDeep());
  RETURN_IF_ERROR(Advance());
  ASSIGN_OR_RETURN(Operand operand, ParseUnary());
  ASSIGN_OR_RETURN(ExprPtr cond, ToCondition(std::move(operand)));
  if (cond->kind == Expr::Kind::kQueryFunction) return QueryError(std::string(kNotWithQueryFunction));
  Operand out;
  out.expr = MakeNot(std::move(cond));
  out.pos = pos;
  return out;
}

Result<Operand> ExprParser::ParsePrimary() {
  Token& t = tok();
  Operand out;
  out.pos = t.pos;
  switch (t.kind) {
    case Tok::kLParen: {
      DepthGuard guard(ctx_.depth);
      if (guard.exceeded()) return src_.Error(t.pos, TooDeep());
      size_t open = t.pos;
      RETURN_IF_ERROR(Advance());
      if (tok().kind == Tok::kRParen) return src_.Error(tok().pos, "empty parentheses");
      // Parentheses around a value keep it a value: `(name) eq 'x'`.
      ASSIGN_OR_RETURN(Operand inner, ParseUnary());
      Expr::Kind k = inner.expr->kind;
      if ((k == Expr::Kind::kProperty || k == Expr::Kind::kLiteral) && tok().kind == Tok::kRParen) {
        RETURN_IF_ERROR(Advance());
        return inner;
      }
      ASSIGN_OR_RETURN(ExprPtr first, FinishComparison(std::move(inner)));
      ASSIGN_OR_RETURN(out.expr, ParseOr(std::move(first)));
      if (tok().kind != Tok::kRParen)
        return UnexpectedHere("expected ')' to close the '(' at position " + std::to_string(open));
      RETURN_IF_ERROR(Advance());
      return out;
    }
    case Tok::kLiteral:
      out.expr = MakeLiteral(std::move(t.literal));
      RETURN_IF_ERROR(Advance());
      return out;
    case Tok::kAlias: {
      Token alias = t;
      RETURN_IF_ERROR(Advance());
      ASSIGN_OR_RETURN(out.expr, ResolveAliasOperand(alias));
      return out;
    }
    case Tok::kIdent:
      if (IsReservedWord(t.text) || IsUnsupportedOperator(t.text)) {
        if (lx_.prev().empty()) return src_.Error(t.pos, "expected an expression before " + Quote(t.text));
        return src_.Error(t.pos, "expected an expression after " + Quote(lx_.prev()) + " but found " + Quote(t.text));
      }
      if (lx_.CharAfter() == '(') return ParseCall();
      return ParsePathOrLambda();
    case Tok::kJsonString:
      return src_.Error(t.pos, "double-quoted strings are only allowed inside arrays; use single quotes");
    default:
      return UnexpectedHere(lx_.prev().empty() ? std::string("expected an expression")
                                               : "expected an expression after " + Quote(lx_.prev()));
  }
}

Result<Operand> ExprParser::ParsePathOrLambda() {
  Operand out;
  out.pos = tok().pos;
  std::vector<std::string> path;
  for (;;) {
    Token& t = tok();
    if (lx_.CharAfter() == '(') {
      if (t.text == "any" || t.text == "all") {
        ASSIGN_OR_RETURN(out.expr, ParseLambda(std::move(path)));
        return out;
      }
      return src_.Error(t.pos, "unexpected '(' after " + Quote(t.text) + "; a property path cannot call a function");
    }
    path.emplace_back(t.text);
    RETURN_IF_ERROR(Advance());
    if (tok().kind != Tok::kSlash) break;
    RETURN_IF_ERROR(Advance());
    if (tok().kind != Tok::kIdent || IsReservedWord(tok().text))
      return UnexpectedHere("expected a property name after '/'");
  }
  out.expr = MakeProperty(std::move(path));
  return out;
}

// Current token: `any` or `all`, directly followed by '('.
Result<ExprPtr> ExprParser::ParseLambda(std::vector<std::string> path) {
  DepthGuard guard(ctx_.depth);
  if (guard.exceeded()) return src_.Error(tok().pos, TooDeep());
  auto e = std::make_unique<Expr>();
  e->kind = Expr::Kind::kLambda;
  e->name = std::string(tok().text);
  e->path = std::move(path);
  RETURN_IF_ERROR(Advance());  // any|all
  RETURN_IF_ERROR(Advance());  // (
  if (tok().kind == Tok::kRParen) {
    if (e->name == "all")
      return src_.Error(tok().pos, "'all' requires a lambda expression such as all(x:x/statecode eq 0)");
  } else {
    if (tok().kind != Tok::kIdent || tok().text.find('.') != std::string_view::npos || IsReservedWord(tok().text))
      return UnexpectedHere("expected a lambda variable name");
    e->variable = std::string(tok().text);
    RETURN_IF_ERROR(Advance());
    RETURN_IF_ERROR(Expect(Tok::kColon, "':' after the lambda variable"));
    ASSIGN_OR_RETURN(ExprPtr body, ParseOr());
    e->children.push_back(std::move(body));
    if (tok().kind != Tok::kRParen) return UnexpectedHere("expected ')' to close the lambda");
  }
  RETURN_IF_ERROR(Advance());  // )
  if (tok().kind == Tok::kSlash) return src_.Error(tok().pos, "a lambda must be the last segment of a path");
  return e;
}

// Current token: an identifier directly followed by '('.
Result<Operand> ExprParser::ParseCall() {
  Operand out;
  out.pos = tok().pos;
  std::string_view name = tok().text;
  if (name.find('.') != std::string_view::npos) {
    std::string_view short_name = name;
    if (!StripQueryFunctionNamespace(short_name) || !IsIdentifier(short_name))
      return src_.Error(tok().pos, "unknown function " + Quote(name));
    ASSIGN_OR_RETURN(out.expr, ParseQueryFunction(std::string(short_name)));
    return out;
  }
  if (name == "contains" || name == "startswith" || name == "endswith") {
    ASSIGN_OR_RETURN(out.expr, ParseStringFunction(std::string(name)));
    return out;
  }
  if (name == "any" || name == "all")
    return src_.Error(
        tok().pos, "the lambda " + Quote(name) + " needs a collection path, as in nav/" + std::string(name) + "(x:…)");
  if (IsUnsupportedFunction(name))
    return src_.Error(tok().pos, "the function " + Quote(name) +
                                     " is not supported; $filter supports only contains, startswith and endswith");
  return src_.Error(tok().pos, "unknown function " + Quote(name));
}

Result<ExprPtr> ExprParser::ParseStringFunction(std::string name) {
  DepthGuard guard(ctx_.depth);
  if (guard.exceeded()) return src_.Error(tok().pos, TooDeep());
  RETURN_IF_ERROR(Advance());  // name
  RETURN_IF_ERROR(Advance());  // (
  ASSIGN_OR_RETURN(Operand target, ParsePrimary());
  if (target.expr->kind != Expr::Kind::kProperty)
    return src_.Error(target.pos, "the first argument of " + name + " must be a property");
  RETURN_IF_ERROR(Expect(Tok::kComma, "',' between the arguments of " + name));
  ASSIGN_OR_RETURN(Operand value, ParsePrimary());
  if (value.expr->kind != Expr::Kind::kLiteral)
    return src_.Error(value.pos, "the second argument of " + name + " must be a literal");
  if (tok().kind != Tok::kRParen) return UnexpectedHere("expected ')' after the arguments of " + name);
  RETURN_IF_ERROR(Advance());
  auto e = std::make_unique<Expr>();
  e->kind = Expr::Kind::kFunction;
  e->name = std::move(name);
  e->children.push_back(std::move(target.expr));
  e->children.push_back(std::move(value.expr));
  return e;
}

Result<ExprPtr> ExprParser::ParseQueryFunction(std::string name) {
  DepthGuard guard(ctx_.depth);
  if (guard.exceeded()) return src_.Error(tok().pos, TooDeep());
  RETURN_IF_ERROR(Advance());  // name
  RETURN_IF_ERROR(Advance());  // (
  auto e = std::make_unique<Expr>();
  e->kind = Expr::Kind::kQueryFunction;
  e->name = std::move(name);
  if (tok().kind != Tok::kRParen) {
    std::unordered_set<std::string_view> seen;
    for (;;) {
      if (tok().kind != Tok::kIdent || !IsIdentifier(tok().text))
        return UnexpectedHere("expected a parameter name in " + Quote(e->name));
      if (!seen.insert(tok().text).second)
        return src_.Error(tok().pos, "the parameter " + Quote(tok().text) + " is given twice");
      std::string param(tok().text);
      RETURN_IF_ERROR(Advance());
      RETURN_IF_ERROR(Expect(Tok::kEquals, "'=' after the parameter name " + Quote(param)));
      ASSIGN_OR_RETURN(Expr::Param value, ParseParamValue(std::move(param)));
      e->params.push_back(std::move(value));
      if (tok().kind == Tok::kComma) {
        RETURN_IF_ERROR(Advance());
        continue;
      }
      if (tok().kind == Tok::kRParen) break;
      return UnexpectedHere("expected ',' or ')' in " + Quote(e->name));
    }
  }
  RETURN_IF_ERROR(Advance());  // )
  return e;
}

// Parses an alias value used as a query-function parameter: a literal or an array.
Result<Expr::Param> ParseAliasParam(std::string name, std::string_view alias, std::string_view value) {
  Expr::Param p;
  p.name = std::move(name);
  if (!value.empty() && value[0] == '[') {
    Source src(value, AliasLabel(alias));
    Lexer lx(src);
    RETURN_IF_ERROR(lx.Advance());
    ASSIGN_OR_RETURN(p.values, ParseArray(lx));
    if (lx.tok().kind != Tok::kEnd) return src.Error(lx.tok().pos, "unexpected text after the array");
    p.is_array = true;
    return p;
  }
  ASSIGN_OR_RETURN(Literal lit, ParseLiteralIn(value, AliasLabel(alias)));
  p.values.push_back(std::move(lit));
  return p;
}

Result<Expr::Param> ExprParser::ParseParamValue(std::string name) {
  Token& t = tok();
  if (t.kind == Tok::kLBracket) {
    Expr::Param p;
    p.name = std::move(name);
    p.is_array = true;
    ASSIGN_OR_RETURN(p.values, ParseArray(lx_));
    return p;
  }
  if (t.kind == Tok::kLiteral) {
    Expr::Param p;
    p.name = std::move(name);
    p.values.push_back(std::move(t.literal));
    RETURN_IF_ERROR(Advance());
    return p;
  }
  if (t.kind == Tok::kAlias) {
    Token alias = t;
    RETURN_IF_ERROR(Advance());
    ASSIGN_OR_RETURN(std::optional<std::string_view> value, LookupAlias(ctx_, src_, alias.pos, alias.text));
    if (!value) {
      Expr::Param p;
      p.name = std::move(name);
      p.values.emplace_back();  // unassigned alias: null
      return p;
    }
    return ParseAliasParam(std::move(name), alias.text, *value);
  }
  return UnexpectedHere("expected a value for the parameter " + Quote(name));
}

Result<ExprPtr> ExprParser::ResolveAliasOperand(const Token& t) {
  ASSIGN_OR_RETURN(std::optional<std::string_view> value, LookupAlias(ctx_, src_, t.pos, t.text));
  if (!value) return MakeLiteral(Literal{});
  if (!value->empty() && IsIdentStart((*value)[0]) && IsPropertyPath(*value)) {
    // A word that is a literal (null, true, false) stays a literal.
    Result<Literal> lit = ParseLiteralIn(*value, AliasLabel(t.text));
    if (lit.ok()) return MakeLiteral(std::move(lit).value());
    return MakeProperty(SplitPath(*value));
  }
  ASSIGN_OR_RETURN(Literal lit, ParseLiteralIn(*value, AliasLabel(t.text)));
  return MakeLiteral(std::move(lit));
}

Result<std::vector<std::string>> ExprParser::ResolveAliasPath(const Token& t) {
  ASSIGN_OR_RETURN(std::optional<std::string_view> value, LookupAlias(ctx_, src_, t.pos, t.text));
  if (!value) return src_.Error(t.pos, "the parameter alias " + Quote(t.text) + " has no value");
  if (!IsPropertyPath(*value))
    return src_.Error(
        t.pos, "the value " + Quote(*value) + " of parameter alias " + Quote(t.text) + " is not a property path");
  return SplitPath(*value);
}

Result<std::vector<data::OrderBy>> ExprParser::ParseOrderBy() {
  std::vector<data::OrderBy> out;
  RETURN_IF_ERROR(Advance());
  if (tok().kind == Tok::kEnd) return src_.Error(0, "the list is empty");
  for (;;) {
    data::OrderBy item;
    if (tok().kind == Tok::kAlias) {
      Token alias = tok();
      RETURN_IF_ERROR(Advance());
      ASSIGN_OR_RETURN(item.path, ResolveAliasPath(alias));
    } else if (tok().kind == Tok::kIdent && !IsReservedWord(tok().text)) {
      for (;;) {
        if (lx_.CharAfter() == '(')
          return src_.Error(tok().pos, "functions are not supported in $orderby: " + Quote(tok().text));
        item.path.emplace_back(tok().text);
        RETURN_IF_ERROR(Advance());
        if (tok().kind != Tok::kSlash) break;
        RETURN_IF_ERROR(Advance());
        if (tok().kind != Tok::kIdent) return UnexpectedHere("expected a property name after '/'");
      }
    } else {
      return UnexpectedHere("expected a property name");
    }
    if (lx_.Is("asc") || lx_.Is("desc")) {
      item.descending = tok().text == "desc";
      RETURN_IF_ERROR(Advance());
    }
    out.push_back(std::move(item));
    if (tok().kind == Tok::kEnd) break;
    if (tok().kind != Tok::kComma) return UnexpectedHere("expected ',', 'asc' or 'desc' after " + Quote(lx_.prev()));
    RETURN_IF_ERROR(Advance());
  }
  return out;
}

Result<ExprPtr> ParseFilterIn(std::string_view text, ParseContext& ctx) {
  ExprParser p(text, "'$filter'", ctx);
  return p.ParseFilter();
}

Result<std::vector<data::OrderBy>> ParseOrderByIn(std::string_view text, ParseContext& ctx) {
  ExprParser p(text, "'$orderby'", ctx);
  return p.ParseOrderBy();
}

// ---------------------------------------------------------------------------------------------
// $expand

Status InExpand(std::string_view nav, const Status& s) {
  return QueryError("In $expand of " + Quote(nav) + ": " + s.message());
}

Result<std::vector<data::Expand>> ParseExpandIn(std::string_view text, ParseContext& ctx);

enum class ExpandOption : uint8_t { kSelect, kFilter, kOrderBy, kTop, kExpand };
constexpr size_t kExpandOptionCount = 5;

std::optional<ExpandOption> ExpandOptionNamed(std::string_view name) {
  if (name == "$select") return ExpandOption::kSelect;
  if (name == "$filter") return ExpandOption::kFilter;
  if (name == "$orderby") return ExpandOption::kOrderBy;
  if (name == "$top") return ExpandOption::kTop;
  if (name == "$expand") return ExpandOption::kExpand;
  return std::nullopt;
}

// Applies one `name=value` option of `out`'s parentheses.
Status ApplyExpandOption(ExpandOption option, std::string_view value, data::Expand& out, ParseContext& ctx) {
  Status st;
  switch (option) {
    case ExpandOption::kSelect: {
      auto r = ParseSelect(value);
      if (r.ok()) out.options.select = std::move(r).value();
      st = r.status();
      break;
    }
    case ExpandOption::kFilter: {
      auto r = ParseFilterIn(value, ctx);
      if (r.ok()) out.options.filter = std::move(r).value();
      st = r.status();
      break;
    }
    case ExpandOption::kOrderBy: {
      auto r = ParseOrderByIn(value, ctx);
      if (r.ok()) out.options.orderby = std::move(r).value();
      st = r.status();
      break;
    }
    case ExpandOption::kTop: {
      auto r = ParseTop(value);
      if (r.ok()) out.options.top = r.value();
      st = r.status();
      break;
    }
    case ExpandOption::kExpand: {
      auto r = ParseExpandIn(value, ctx);
      if (r.ok()) out.options.expand = std::move(r).value();
      st = r.status();
      break;
    }
  }
  if (!st.ok()) return InExpand(out.nav, st);
  return Status::Ok();
}

// Parses the options between the parentheses at src[from - 1] and src[to].
Status ParseExpandOptions(const Source& src, size_t from, size_t to, data::Expand& out, ParseContext& ctx) {
  const std::string& nav = out.nav;
  bool seen[kExpandOptionCount] = {};
  size_t p = from;
  for (;;) {
    // Inside the options a top-level ')' can only be the closing one, at `to`.
    ASSIGN_OR_RETURN(size_t stop, ScanBalanced(src, p, ";)"));
    std::string_view trimmed = Trim(src.text().substr(p, stop - p));
    if (trimmed.empty()) return src.Error(p, "empty option in the $expand of " + Quote(nav));
    size_t eq = trimmed.find('=');
    if (eq == std::string_view::npos)
      return src.Error(p, "expected '=' after the option " + Quote(trimmed) + " in the $expand of " + Quote(nav));
    std::string_view name = Trim(trimmed.substr(0, eq));
    std::optional<ExpandOption> option = ExpandOptionNamed(name);
    if (!option) {
      if (name == "$skip" || name == "$count" || name == "$search" || name == "$levels")
        return QueryError("The query option " + Quote(name) + " is not supported inside $expand (in the $expand of " +
                          Quote(nav) + ").");
      return QueryError("Unknown query option " + Quote(name) + " in the $expand of " + Quote(nav) + ".");
    }
    bool& was_seen = seen[static_cast<size_t>(*option)];
    if (was_seen)
      return QueryError("The query option " + Quote(name) + " is given twice in the $expand of " + Quote(nav) + ".");
    was_seen = true;
    RETURN_IF_ERROR(ApplyExpandOption(*option, trimmed.substr(eq + 1), out, ctx));
    if (stop >= to) break;
    p = stop + 1;
  }
  return Status::Ok();
}

Result<data::Expand> ParseExpandItem(const Source& src, size_t from, size_t to, ParseContext& ctx) {
  std::string_view t = src.text();
  size_t p = from;
  while (p < to && IsSpace(t[p])) ++p;
  size_t end = to;
  while (end > p && IsSpace(t[end - 1])) --end;
  if (p == end) return src.Error(from, "empty item");
  size_t name_start = p;
  while (p < end && (IsIdentChar(t[p]) || t[p] == '.')) ++p;
  std::string_view nav = t.substr(name_start, p - name_start);
  if (!IsQualifiedIdentifier(nav)) return src.Error(name_start, "expected a navigation property name");
  data::Expand out;
  out.nav = std::string(nav);
  if (p == end) return out;
  std::string_view rest = t.substr(p, end - p);
  if (rest == "/$ref") {
    out.ref = true;
    return out;
  }
  if (t[p] != '(') {
    return src.Error(p, "unexpected " + Quote(rest) + " after the navigation property " + Quote(nav) +
                            " (expected '(', '/$ref', ',' or the end)");
  }
  // The item was split at top-level commas, so its '(' closes at the last ')' or not at all.
  if (t[end - 1] != ')') return src.Error(p, "expected the options of " + Quote(nav) + " to end with ')'");
  ASSIGN_OR_RETURN(size_t close, ScanBalanced(src, p + 1, ")"));
  if (close != end - 1) return src.Error(close + 1, "unexpected text after the options of " + Quote(nav));
  if (close == p + 1) return src.Error(p, "empty options in the $expand of " + Quote(nav));
  RETURN_IF_ERROR(ParseExpandOptions(src, p + 1, close, out, ctx));
  return out;
}

Result<std::vector<data::Expand>> ParseExpandIn(std::string_view text, ParseContext& ctx) {
  Source src(text, "'$expand'");
  DepthGuard guard(ctx.depth);
  if (guard.exceeded()) return src.Error(0, TooDeep());
  if (Trim(text).empty()) return src.Error(0, "the list is empty");
  std::vector<data::Expand> out;
  size_t p = 0;
  for (;;) {
    ASSIGN_OR_RETURN(size_t stop, ScanBalanced(src, p, ","));
    ASSIGN_OR_RETURN(data::Expand item, ParseExpandItem(src, p, stop, ctx));
    out.push_back(std::move(item));
    if (stop >= text.size()) break;
    p = stop + 1;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Resource path

// Parses one key or parameter value (after '=' or bare): an alias, a JSON array/object or a
// literal.
Status ParseKeyValueText(std::string_view text, const std::string& label, KeyValue& kv) {
  if (!text.empty() && (text[0] == '[' || (text[0] == '{' && !Guid::Parse(text)))) {
    Source src(text, label);
    ASSIGN_OR_RETURN(size_t close, ScanBalanced(src, 1, text[0] == '[' ? "]" : "}"));
    if (close >= text.size()) return src.Error(0, "unbalanced " + DescribeChar(text[0]) + ", never closed");
    if (close + 1 != text.size()) return src.Error(close + 1, "unexpected text after the JSON value");
    kv.value = Literal{};
    kv.raw = std::string(text);
    return Status::Ok();
  }
  ASSIGN_OR_RETURN(kv.value, ParseLiteralIn(text, label));
  kv.raw = std::string(text);
  return Status::Ok();
}

Status ParseKeys(const Source& src, size_t from, size_t close, std::vector<KeyValue>& keys, ParseContext& ctx) {
  std::string_view t = src.text();
  if (Trim(t.substr(from, close - from)).empty()) return Status::Ok();
  std::unordered_set<std::string_view> names;
  size_t p = from;
  for (;;) {
    ASSIGN_OR_RETURN(size_t stop, ScanBalanced(src, p, "=,)"));
    KeyValue kv;
    size_t value_start = p;
    if (src.At(stop) == '=') {
      std::string_view name = Trim(t.substr(p, stop - p));
      if (!IsIdentifier(name)) return src.Error(p, "expected a key or parameter name before '='");
      if (!names.insert(name).second) return src.Error(p, "the key " + Quote(name) + " is given twice");
      kv.name = std::string(name);
      value_start = stop + 1;
      ASSIGN_OR_RETURN(stop, ScanBalanced(src, value_start, ",)"));
    }
    if (stop >= t.size()) return src.Error(p, "missing ')'");
    std::string_view value = Trim(t.substr(value_start, stop - value_start));
    if (value.empty()) return src.Error(value_start, "missing key value");
    if (value[0] == '@') {
      bool valid = value.size() > 1;
      for (char c : value.substr(1)) valid = valid && IsIdentChar(c);
      if (!valid) return src.Error(value_start, "invalid parameter alias " + Quote(value));
      ASSIGN_OR_RETURN(std::optional<std::string_view> resolved, LookupAlias(ctx, src, value_start, value));
      if (!resolved) {
        kv.value = Literal{};
        kv.raw = "null";
      } else {
        RETURN_IF_ERROR(ParseKeyValueText(*resolved, AliasLabel(value), kv));
      }
    } else {
      RETURN_IF_ERROR(ParseKeyValueText(value, "key value " + Quote(value) + " of " + src.label(), kv));
    }
    keys.push_back(std::move(kv));
    if (keys.size() > 1 && (keys.front().name.empty() || keys.back().name.empty()))
      return src.Error(value_start, "a key without a name must be the only key");
    if (t[stop] == ')') break;
    p = stop + 1;
  }
  return Status::Ok();
}

bool IsSegmentName(std::string_view name) {
  if (!name.empty() && name[0] == '$') {
    if (name.size() == 1) return false;
    for (char c : name.substr(1))
      if (!IsIdentChar(c)) return false;
    return true;
  }
  return IsQualifiedIdentifier(name);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Public API

Result<data::ExprPtr> ParseFilter(std::string_view text, const AliasMap& aliases) {
  ParseContext ctx{aliases};
  return ParseFilterIn(text, ctx);
}

Result<std::vector<data::OrderBy>> ParseOrderBy(std::string_view text, const AliasMap& aliases) {
  ParseContext ctx{aliases};
  return ParseOrderByIn(text, ctx);
}

Result<std::vector<std::string>> ParseSelect(std::string_view text) {
  Source src(text, "'$select'");
  if (Trim(text).empty()) return src.Error(0, "the list is empty");
  std::vector<std::string> out;
  size_t p = 0;
  for (std::string_view item : Split(text, ',')) {
    std::string_view name = Trim(item);
    if (name.empty()) return src.Error(p, "empty item");
    if (!IsIdentifier(name)) {
      size_t lead = 0;
      while (lead < item.size() && IsSpace(item[lead])) ++lead;
      return src.Error(p + lead, Quote(name) + " is not a valid column name");
    }
    out.emplace_back(name);
    p += item.size() + 1;
  }
  return out;
}

Result<std::vector<data::Expand>> ParseExpand(std::string_view text, const AliasMap& aliases) {
  ParseContext ctx{aliases};
  return ParseExpandIn(text, ctx);
}

Result<int64_t> ParseTop(std::string_view text) {
  std::string_view t = Trim(text);
  auto fail = [&] {
    return QueryError("Invalid value " + Quote(text) + " for $top: expected a non-negative integer.");
  };
  if (t.empty()) return fail();
  int64_t v = 0;
  for (char c : t) {
    if (!IsDigit(c)) return fail();
    int d = c - '0';
    if (v > (INT64_MAX - d) / 10) return fail();
    v = v * 10 + d;
  }
  return v;
}

Result<std::vector<Segment>> ParseResourcePath(std::string_view path, const AliasMap& aliases) {
  ParseContext ctx{aliases};
  std::vector<Segment> out;
  size_t i = 0;
  for (;;) {
    while (i < path.size() && path[i] == '/') ++i;
    if (i >= path.size()) break;
    std::string_view rest = path.substr(i);
    Source src(rest, "resource path segment " + Quote(rest));
    size_t p = 0;
    while (p < rest.size() && rest[p] != '/' && rest[p] != '(') ++p;
    Segment seg;
    std::string_view name = rest.substr(0, p);
    if (name.empty()) return src.Error(0, "missing a name before '('");
    if (!IsSegmentName(name)) return src.Error(0, Quote(name) + " is not a valid segment name");
    seg.name = std::string(name);
    if (p < rest.size() && rest[p] == '(') {
      seg.has_parens = true;
      ASSIGN_OR_RETURN(size_t close, ScanBalanced(src, p + 1, ")"));
      if (close >= rest.size()) return src.Error(p, "unbalanced '(', never closed");
      // Re-label with the exact segment now that its extent is known.
      Source seg_src(rest.substr(0, close + 1), "resource path segment " + Quote(rest.substr(0, close + 1)));
      RETURN_IF_ERROR(ParseKeys(seg_src, p + 1, close, seg.keys, ctx));
      p = close + 1;
      if (p < rest.size() && rest[p] != '/')
        return src.Error(p, "unexpected " + DescribeChar(rest[p]) + " after ')'; expected '/' or the end");
    }
    out.push_back(std::move(seg));
    i += p;
  }
  return out;
}

Result<std::vector<std::pair<std::string, std::string>>> ParseQueryString(std::string_view query) {
  std::vector<std::pair<std::string, std::string>> out;
  size_t offset = 0;
  for (std::string_view piece : Split(query, '&')) {
    size_t piece_offset = offset;
    offset += piece.size() + 1;
    if (piece.empty()) continue;
    size_t eq = piece.find('=');
    std::string_view raw_name = piece.substr(0, eq);
    std::string_view raw_value = eq == std::string_view::npos ? std::string_view() : piece.substr(eq + 1);
    std::string name, value;
    if (!PercentDecode(raw_name, name, true) || !PercentDecode(raw_value, value, true))
      return QueryError("Malformed percent-encoding at position " + std::to_string(piece_offset) +
                        " of the query string, in " + Quote(piece) + ".");
    out.emplace_back(std::move(name), std::move(value));
  }
  return out;
}

Result<data::Literal> ParseLiteral(std::string_view text) {
  std::string_view t = Trim(text);
  return ParseLiteralIn(t, "literal " + Quote(t));
}

}  // namespace tributary::odata
