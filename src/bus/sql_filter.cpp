// SQL filters and actions of subscription rules: lexer, recursive-descent parser (nesting and
// tree height bounded, so evaluation recursion is bounded too), three-valued evaluator, actions,
// correlation filters and the fan-out of a message over a subscription's rules.

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <forward_list>
#include <limits>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "tributary/base/guid.h"
#include "tributary/base/json.h"
#include "tributary/base/strings.h"
#include "tributary/base/time.h"
#include "tributary/bus/filter.h"

namespace tributary::bus {

namespace {

// Parenthesis / NOT / unary-sign nesting, and the height of the finished tree.
constexpr int kMaxNesting = 64;
constexpr int kMaxHeight = 128;

enum class SysProp : uint8_t {
  kMessageId,
  kCorrelationId,
  kSessionId,
  kReplyToSessionId,
  kSubject,
  kTo,
  kReplyTo,
  kContentType,
  kPartitionKey,
  kTimeToLive,
  kScheduledEnqueueTime,
  kSequenceNumber,
  kEnqueuedSequenceNumber,
  kEnqueuedTime,
  kExpiresAt,
  kDeliveryCount,
  kState,
  kDeadLetterSource,
};

struct SysPropName {
  std::string_view name;
  SysProp prop;
};

// Names as the .NET message classes spell them (old and new), matched ignoring case.
constexpr SysPropName kSysProps[] = {
    {"MessageId", SysProp::kMessageId},
    {"CorrelationId", SysProp::kCorrelationId},
    {"SessionId", SysProp::kSessionId},
    {"ReplyToSessionId", SysProp::kReplyToSessionId},
    {"Label", SysProp::kSubject},
    {"Subject", SysProp::kSubject},
    {"To", SysProp::kTo},
    {"ReplyTo", SysProp::kReplyTo},
    {"ContentType", SysProp::kContentType},
    {"PartitionKey", SysProp::kPartitionKey},
    {"TimeToLive", SysProp::kTimeToLive},
    {"ScheduledEnqueueTimeUtc", SysProp::kScheduledEnqueueTime},
    {"ScheduledEnqueueTime", SysProp::kScheduledEnqueueTime},
    {"SequenceNumber", SysProp::kSequenceNumber},
    {"EnqueuedSequenceNumber", SysProp::kEnqueuedSequenceNumber},
    {"EnqueuedTimeUtc", SysProp::kEnqueuedTime},
    {"EnqueuedTime", SysProp::kEnqueuedTime},
    {"ExpiresAtUtc", SysProp::kExpiresAt},
    {"ExpiresAt", SysProp::kExpiresAt},
    {"DeliveryCount", SysProp::kDeliveryCount},
    {"State", SysProp::kState},
    {"DeadLetterSource", SysProp::kDeadLetterSource},
};

std::optional<SysProp> FindSysProp(std::string_view name) {
  for (const auto& p : kSysProps)
    if (EqualsIgnoreCase(p.name, name)) return p.prop;
  return std::nullopt;
}

bool Settable(SysProp p) { return p <= SysProp::kScheduledEnqueueTime; }

const std::optional<std::string>* StringField(const MessageProperties& m, SysProp p) {
  switch (p) {
    case SysProp::kMessageId:
      return &m.message_id;
    case SysProp::kCorrelationId:
      return &m.correlation_id;
    case SysProp::kSessionId:
      return &m.session_id;
    case SysProp::kReplyToSessionId:
      return &m.reply_to_session_id;
    case SysProp::kSubject:
      return &m.subject;
    case SysProp::kTo:
      return &m.to;
    case SysProp::kReplyTo:
      return &m.reply_to;
    case SysProp::kContentType:
      return &m.content_type;
    case SysProp::kPartitionKey:
      return &m.partition_key;
    case SysProp::kDeadLetterSource:
      return &m.dead_letter_source;
    default:
      return nullptr;
  }
}

std::optional<std::string>* StringField(MessageProperties& m, SysProp p) {
  return const_cast<std::optional<std::string>*>(StringField(static_cast<const MessageProperties&>(m), p));
}

// The application property `name`: exact match first, then ignoring ASCII case.
template <typename Map>
auto FindUser(Map& app, const std::string& name) -> decltype(app.begin()) {
  auto it = app.find(name);
  if (it != app.end()) return it;
  for (it = app.begin(); it != app.end(); ++it)
    if (EqualsIgnoreCase(it->first, name)) return it;
  return app.end();
}

size_t CharLen(std::string_view s, size_t i) {
  size_t n = Utf8SequenceLength(s, i);
  return n ? n : 1;
}

size_t CountChars(std::string_view s) {
  size_t n = 0;
  for (size_t i = 0; i < s.size(); i += CharLen(s, i)) ++n;
  return n;
}

// ---------------------------------------------------------------------------------------------
// LIKE patterns

struct LikePattern {
  enum class Kind : uint8_t { kLiteral, kOne, kAny };
  struct Elem {
    Kind kind;
    std::string literal;  // one character (UTF-8 bytes) for kLiteral
  };
  std::vector<Elem> elems;
};

// Compiles `pattern`; `escape` is empty or one character. Fails when the pattern ends in the
// escape character.
bool CompileLike(std::string_view pattern, std::string_view escape, LikePattern& out) {
  out.elems.clear();
  for (size_t i = 0; i < pattern.size();) {
    size_t n = CharLen(pattern, i);
    std::string_view ch = pattern.substr(i, n);
    i += n;
    if (!escape.empty() && ch == escape) {
      if (i >= pattern.size()) return false;
      size_t m = CharLen(pattern, i);
      out.elems.push_back({LikePattern::Kind::kLiteral, std::string(pattern.substr(i, m))});
      i += m;
    } else if (ch == "%") {
      if (out.elems.empty() || out.elems.back().kind != LikePattern::Kind::kAny)
        out.elems.push_back({LikePattern::Kind::kAny, {}});
    } else if (ch == "_") {
      out.elems.push_back({LikePattern::Kind::kOne, {}});
    } else {
      out.elems.push_back({LikePattern::Kind::kLiteral, std::string(ch)});
    }
  }
  return true;
}

// Wildcard match with one backtrack point: O(|s|·|pattern|) at worst, no recursion.
bool MatchLike(const LikePattern& p, std::string_view s) {
  const auto& e = p.elems;
  size_t si = 0, pi = 0;
  size_t star = std::string_view::npos, star_s = 0;
  while (si < s.size()) {
    if (pi < e.size() && e[pi].kind == LikePattern::Kind::kOne) {
      si += CharLen(s, si);
      ++pi;
    } else if (pi < e.size() && e[pi].kind == LikePattern::Kind::kLiteral &&
               s.substr(si, e[pi].literal.size()) == e[pi].literal) {
      si += e[pi].literal.size();
      ++pi;
    } else if (pi < e.size() && e[pi].kind == LikePattern::Kind::kAny) {
      star = pi++;
      star_s = si;
    } else if (star != std::string_view::npos) {
      pi = star + 1;
      star_s += CharLen(s, star_s);
      si = star_s;
    } else {
      return false;
    }
  }
  while (pi < e.size() && e[pi].kind == LikePattern::Kind::kAny) ++pi;
  return pi == e.size();
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// The parsed tree

namespace internal {

enum class NodeKind : uint8_t {
  kConst,
  kUserProp,
  kSysProp,
  kNewId,
  kPropertyFn,
  kNeg,
  kPos,
  kNot,
  kAnd,
  kOr,
  kCompare,
  kArith,
  kIn,
  kLike,
  kIsNull,
  kExists,
};

enum class Op : uint8_t { kEq, kNe, kLt, kLe, kGt, kGe, kAdd, kSub, kMul, kDiv, kMod };

struct SqlNode {
  NodeKind kind = NodeKind::kConst;
  Op op = Op::kEq;
  bool negated = false;  // NOT IN, NOT LIKE, IS NOT NULL
  SysProp sys = SysProp::kMessageId;
  int height = 1;
  PropertyValue value;  // kConst
  std::string name;     // kUserProp
  std::vector<SqlNode> kids;
  std::shared_ptr<const LikePattern> pattern;  // kLike with constant pattern and escape
};

struct SqlStatement {
  bool remove = false;
  bool system = false;
  SysProp sys = SysProp::kMessageId;
  std::string name;  // application property
  SqlNode value;     // SET
};

}  // namespace internal

namespace {

using internal::NodeKind;
using internal::Op;
using internal::SqlNode;
using internal::SqlStatement;

// ---------------------------------------------------------------------------------------------
// Lexer

enum class Tok : uint8_t {
  kEnd,
  kIdent,
  kString,
  kInteger,
  kDecimal,
  kParam,
  kLParen,
  kRParen,
  kComma,
  kDot,
  kSemicolon,
  kEq,
  kNe,
  kLt,
  kLe,
  kGt,
  kGe,
  kPlus,
  kMinus,
  kStar,
  kSlash,
  kPercent,
};

enum class IdentForm : uint8_t { kRegular, kDelimited, kQuoted };

struct Token {
  Tok kind = Tok::kEnd;
  size_t pos = 0;        // byte offset in the source
  std::string_view src;  // the source text of the token
  std::string text;      // identifier name, string value, parameter name
  IdentForm form = IdentForm::kRegular;
  uint64_t u = 0;  // kInteger
  double d = 0;    // kDecimal
};

bool IsIdentStart(unsigned char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c >= 0x80; }
bool IsIdentPart(unsigned char c) { return IsIdentStart(c) || (c >= '0' && c <= '9'); }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }

bool IsKeyword(const Token& t, std::string_view kw) {
  return t.kind == Tok::kIdent && t.form == IdentForm::kRegular && EqualsIgnoreCase(t.text, kw);
}

// Words that cannot be regular identifiers.
bool IsReserved(const Token& t) {
  static constexpr std::string_view kWords[] = {"AND",  "OR",     "NOT",    "IS",   "NULL", "IN",
                                                "LIKE", "ESCAPE", "EXISTS", "TRUE", "FALSE"};
  if (t.kind != Tok::kIdent || t.form != IdentForm::kRegular) return false;
  for (auto w : kWords)
    if (EqualsIgnoreCase(t.text, w)) return true;
  return false;
}

class Parser {
 public:
  Parser(std::string_view src, const SqlParameters& params, std::string_view what)
      : src_(src), params_(params), what_(what) {}

  Result<SqlNode> ParseFilter() {
    if (!Prepare()) return error_;
    SqlNode root;
    size_t start = Peek().pos;
    if (!ParseOr(root) || !ExpectCondition(root, start)) return error_;
    if (Peek().kind != Tok::kEnd) {
      Fail(Peek().pos, "unexpected " + Describe(Peek()));
      return error_;
    }
    return root;
  }

  Result<std::vector<SqlStatement>> ParseAction() {
    if (!Prepare()) return error_;
    std::vector<SqlStatement> out;
    while (true) {
      while (Peek().kind == Tok::kSemicolon) Next();
      if (Peek().kind == Tok::kEnd) break;
      if (out.size() == kMaxActionStatements) {
        Fail(Peek().pos, "more than " + std::to_string(kMaxActionStatements) + " statements");
        return error_;
      }
      SqlStatement st;
      const Token& verb = Peek();
      if (IsKeyword(verb, "SET")) {
        Next();
        if (!ParseTarget(st)) return error_;
        if (Peek().kind != Tok::kEq) {
          Fail(Peek().pos, "expected '=' after the SET property, found " + Describe(Peek()));
          return error_;
        }
        Next();
        if (!ParseAdditive(st.value)) return error_;
      } else if (IsKeyword(verb, "REMOVE")) {
        Next();
        st.remove = true;
        if (!ParseTarget(st)) return error_;
      } else {
        Fail(verb.pos, "expected SET or REMOVE, found " + Describe(verb));
        return error_;
      }
      out.push_back(std::move(st));
      if (Peek().kind == Tok::kSemicolon || Peek().kind == Tok::kComma) Next();
    }
    if (out.empty()) {
      Fail(0, "the action has no statement");
      return error_;
    }
    return out;
  }

 private:
  // ---- errors

  bool Fail(size_t byte_pos, std::string message) {
    size_t chars = CountChars(src_.substr(0, std::min(byte_pos, src_.size())));
    error_ = InvalidArgument("Invalid " + std::string(what_) + " at position " + std::to_string(chars + 1) + ": " +
                             message + ".");
    return false;
  }

  static std::string Describe(const Token& t) {
    if (t.kind == Tok::kEnd) return "the end of the expression";
    return "'" + PrintableText(t.src, 40) + "'";
  }

  // ---- lexing

  bool Prepare() {
    size_t chars = CountChars(src_);
    if (chars > kMaxSqlExpressionChars) {
      error_ = InvalidArgument("Invalid " + std::string(what_) + ": longer than " +
                               std::to_string(kMaxSqlExpressionChars) + " characters.");
      return false;
    }
    if (!Lex()) return false;
    if (toks_.size() == 1) return Fail(0, "the expression is empty");
    return true;
  }

  bool Lex() {
    size_t i = 0;
    const size_t n = src_.size();
    while (true) {
      while (i < n && (src_[i] == ' ' || src_[i] == '\t' || src_[i] == '\r' || src_[i] == '\n' || src_[i] == '\f' ||
                       src_[i] == '\v'))
        ++i;
      Token t;
      t.pos = i;
      if (i >= n) {
        toks_.push_back(std::move(t));
        return true;
      }
      unsigned char c = static_cast<unsigned char>(src_[i]);
      size_t start = i;
      if (IsDigit(src_[i]) || (c == '.' && i + 1 < n && IsDigit(src_[i + 1]))) {
        if (!LexNumber(i, t)) return false;
      } else if (IsIdentStart(c)) {
        while (i < n && IsIdentPart(static_cast<unsigned char>(src_[i]))) ++i;
        t.kind = Tok::kIdent;
        t.text = std::string(src_.substr(start, i - start));
      } else if (c == '[' || c == '"' || c == '\'') {
        char close = c == '[' ? ']' : static_cast<char>(c);
        ++i;
        std::string text;
        bool closed = false;
        while (i < n) {
          if (src_[i] == close) {
            if (i + 1 < n && src_[i + 1] == close) {
              text.push_back(close);
              i += 2;
              continue;
            }
            ++i;
            closed = true;
            break;
          }
          text.push_back(src_[i++]);
        }
        if (!closed) {
          return Fail(start,
                      c == '\'' ? "unterminated string" : std::string("unterminated name (missing '") + close + "')");
        }
        if (c == '\'') {
          t.kind = Tok::kString;
        } else {
          if (text.empty()) return Fail(start, "empty property name");
          t.kind = Tok::kIdent;
          t.form = c == '[' ? IdentForm::kDelimited : IdentForm::kQuoted;
        }
        t.text = std::move(text);
      } else if (c == '@') {
        ++i;
        while (i < n && IsIdentPart(static_cast<unsigned char>(src_[i]))) ++i;
        if (i == start + 1) return Fail(start, "'@' must be followed by a parameter name");
        t.kind = Tok::kParam;
        t.text = std::string(src_.substr(start, i - start));
      } else {
        ++i;
        switch (c) {
          case '(':
            t.kind = Tok::kLParen;
            break;
          case ')':
            t.kind = Tok::kRParen;
            break;
          case ',':
            t.kind = Tok::kComma;
            break;
          case '.':
            t.kind = Tok::kDot;
            break;
          case ';':
            t.kind = Tok::kSemicolon;
            break;
          case '=':
            t.kind = Tok::kEq;
            break;
          case '+':
            t.kind = Tok::kPlus;
            break;
          case '-':
            t.kind = Tok::kMinus;
            break;
          case '*':
            t.kind = Tok::kStar;
            break;
          case '/':
            t.kind = Tok::kSlash;
            break;
          case '%':
            t.kind = Tok::kPercent;
            break;
          case '<':
            t.kind = Tok::kLt;
            if (i < n && src_[i] == '=') {
              t.kind = Tok::kLe;
              ++i;
            } else if (i < n && src_[i] == '>') {
              t.kind = Tok::kNe;
              ++i;
            }
            break;
          case '>':
            t.kind = Tok::kGt;
            if (i < n && src_[i] == '=') {
              t.kind = Tok::kGe;
              ++i;
            }
            break;
          case '!':
            if (i < n && src_[i] == '=') {
              t.kind = Tok::kNe;
              ++i;
              break;
            }
            return Fail(start, "unexpected '!' (use NOT or !=)");
          default: {
            size_t len = CharLen(src_, start);
            return Fail(start, "unexpected character '" + PrintableText(src_.substr(start, len)) + "'");
          }
        }
      }
      t.src = src_.substr(start, i - start);
      toks_.push_back(std::move(t));
    }
  }

  bool LexNumber(size_t& i, Token& t) {
    const size_t n = src_.size();
    size_t start = i;
    bool decimal = false;
    while (i < n && IsDigit(src_[i])) ++i;
    if (i < n && src_[i] == '.') {
      decimal = true;
      ++i;
      while (i < n && IsDigit(src_[i])) ++i;
    }
    if (i < n && (src_[i] == 'e' || src_[i] == 'E')) {
      size_t k = i + 1;
      if (k < n && (src_[k] == '+' || src_[k] == '-')) ++k;
      if (k >= n || !IsDigit(src_[k])) return Fail(start, "malformed number");
      while (k < n && IsDigit(src_[k])) ++k;
      i = k;
      decimal = true;
    }
    if (i < n && (IsIdentPart(static_cast<unsigned char>(src_[i])) || src_[i] == '.'))
      return Fail(start, "malformed number");
    std::string_view text = src_.substr(start, i - start);
    if (decimal) {
      // from_chars does not take a leading '.'; "5." and ".5" are written as "5.0" and "0.5".
      std::string buf(text);
      if (buf.front() == '.') buf.insert(buf.begin(), '0');
      double d = 0;
      auto r = std::from_chars(buf.data(), buf.data() + buf.size(), d);
      if (r.ec != std::errc() || r.ptr != buf.data() + buf.size() || !std::isfinite(d))
        return Fail(start, "number out of range");
      t.kind = Tok::kDecimal;
      t.d = d;
    } else {
      uint64_t u = 0;
      auto r = std::from_chars(text.data(), text.data() + text.size(), u);
      if (r.ec != std::errc() || u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) + 1)
        return Fail(start, "integer out of range");
      t.kind = Tok::kInteger;
      t.u = u;
    }
    return true;
  }

  // ---- tokens

  const Token& Peek(size_t ahead = 0) const { return toks_[std::min(pos_ + ahead, toks_.size() - 1)]; }
  const Token& Next() {
    const Token& t = toks_[pos_];
    if (pos_ + 1 < toks_.size()) ++pos_;
    return t;
  }

  struct DepthGuard {
    explicit DepthGuard(int& d) : d_(d) { ++d_; }
    ~DepthGuard() { --d_; }
    int& d_;
  };
  bool TooDeep(size_t pos) {
    if (depth_ <= kMaxNesting) return false;
    return !Fail(pos, "the expression is nested too deeply");
  }

  // ---- node helpers

  enum class StaticType : uint8_t { kCondition, kValue, kAny };

  static StaticType TypeOf(const SqlNode& n) {
    switch (n.kind) {
      case NodeKind::kConst:  // TRUE and FALSE are conditions and values alike
        if (n.value.is_null() || std::holds_alternative<bool>(n.value.v)) return StaticType::kAny;
        return StaticType::kValue;
      case NodeKind::kUserProp:
      case NodeKind::kPropertyFn:
        return StaticType::kAny;
      case NodeKind::kSysProp:
      case NodeKind::kNewId:
      case NodeKind::kNeg:
      case NodeKind::kPos:
      case NodeKind::kArith:
        return StaticType::kValue;
      default:
        return StaticType::kCondition;
    }
  }

  bool ExpectCondition(const SqlNode& n, size_t pos) {
    if (TypeOf(n) != StaticType::kValue) return true;
    return Fail(pos, "expected a condition, found a value");
  }
  bool ExpectValue(const SqlNode& n, size_t pos) {
    if (TypeOf(n) != StaticType::kCondition) return true;
    return Fail(pos, "expected a value, found a condition");
  }

  // Makes `out` a node of `kind` over `kids`, checking the height bound.
  bool Make(SqlNode& out, NodeKind kind, std::vector<SqlNode> kids, size_t pos) {
    int h = 0;
    for (const auto& k : kids) h = std::max(h, k.height);
    if (h + 1 > kMaxHeight) return Fail(pos, "the expression is nested too deeply");
    SqlNode n;
    n.kind = kind;
    n.kids = std::move(kids);
    n.height = h + 1;
    out = std::move(n);
    return true;
  }

  static std::vector<SqlNode> Kids(SqlNode a) {
    std::vector<SqlNode> v;
    v.push_back(std::move(a));
    return v;
  }
  static std::vector<SqlNode> Kids(SqlNode a, SqlNode b) {
    std::vector<SqlNode> v;
    v.reserve(2);
    v.push_back(std::move(a));
    v.push_back(std::move(b));
    return v;
  }

  // ---- grammar

  bool ParseOr(SqlNode& out) { return ParseLogical(out, true); }

  // OR of ANDs, each an n-ary node so long chains stay flat.
  bool ParseLogical(SqlNode& out, bool is_or) {
    size_t at = Peek().pos;
    SqlNode first;
    if (!(is_or ? ParseLogical(first, false) : ParseNot(first))) return false;
    const char* kw = is_or ? "OR" : "AND";
    if (!IsKeyword(Peek(), kw)) {
      out = std::move(first);
      return true;
    }
    if (!ExpectCondition(first, at)) return false;
    std::vector<SqlNode> kids;
    kids.push_back(std::move(first));
    while (IsKeyword(Peek(), kw)) {
      Next();
      size_t p = Peek().pos;
      SqlNode next;
      if (!(is_or ? ParseLogical(next, false) : ParseNot(next))) return false;
      if (!ExpectCondition(next, p)) return false;
      kids.push_back(std::move(next));
    }
    return Make(out, is_or ? NodeKind::kOr : NodeKind::kAnd, std::move(kids), at);
  }

  bool ParseNot(SqlNode& out) {
    if (!IsKeyword(Peek(), "NOT")) return ParsePredicate(out);
    size_t at = Next().pos;
    DepthGuard g(depth_);
    if (TooDeep(at)) return false;
    size_t p = Peek().pos;
    SqlNode inner;
    if (!ParseNot(inner) || !ExpectCondition(inner, p)) return false;
    return Make(out, NodeKind::kNot, Kids(std::move(inner)), at);
  }

  bool ParsePredicate(SqlNode& out) {
    size_t at = Peek().pos;
    SqlNode left;
    if (!ParseAdditive(left)) return false;
    const Token& t = Peek();
    Op op;
    switch (t.kind) {
      case Tok::kEq:
        op = Op::kEq;
        break;
      case Tok::kNe:
        op = Op::kNe;
        break;
      case Tok::kLt:
        op = Op::kLt;
        break;
      case Tok::kLe:
        op = Op::kLe;
        break;
      case Tok::kGt:
        op = Op::kGt;
        break;
      case Tok::kGe:
        op = Op::kGe;
        break;
      default:
        return ParsePostfixPredicate(std::move(left), at, out);
    }
    Next();
    SqlNode right;
    if (!ParseAdditive(right)) return false;
    if (!Make(out, NodeKind::kCompare, Kids(std::move(left), std::move(right)), at)) return false;
    out.op = op;
    return true;
  }

  // IS [NOT] NULL, [NOT] IN (…), [NOT] LIKE … [ESCAPE …] after `left`, or `left` itself.
  bool ParsePostfixPredicate(SqlNode left, size_t at, SqlNode& out) {
    if (IsKeyword(Peek(), "IS")) {
      Next();
      bool negated = false;
      if (IsKeyword(Peek(), "NOT")) {
        Next();
        negated = true;
      }
      if (!IsKeyword(Peek(), "NULL")) return Fail(Peek().pos, "expected NULL after IS, found " + Describe(Peek()));
      Next();
      if (!Make(out, NodeKind::kIsNull, Kids(std::move(left)), at)) return false;
      out.negated = negated;
      return true;
    }
    bool negated = false;
    if (IsKeyword(Peek(), "NOT")) {
      if (!IsKeyword(Peek(1), "IN") && !IsKeyword(Peek(1), "LIKE"))
        return Fail(Peek(1).pos, "expected IN or LIKE after NOT, found " + Describe(Peek(1)));
      Next();
      negated = true;
    }
    if (IsKeyword(Peek(), "IN")) {
      Next();
      if (!ExpectValue(left, at)) return false;
      if (Peek().kind != Tok::kLParen) return Fail(Peek().pos, "expected '(' after IN, found " + Describe(Peek()));
      Next();
      std::vector<SqlNode> kids;
      kids.push_back(std::move(left));
      while (true) {
        size_t p = Peek().pos;
        SqlNode item;
        if (!ParseAdditive(item) || !ExpectValue(item, p)) return false;
        kids.push_back(std::move(item));
        if (Peek().kind == Tok::kComma) {
          Next();
          continue;
        }
        if (Peek().kind == Tok::kRParen) {
          Next();
          break;
        }
        return Fail(Peek().pos, "expected ',' or ')' in the IN list, found " + Describe(Peek()));
      }
      if (!Make(out, NodeKind::kIn, std::move(kids), at)) return false;
      out.negated = negated;
      return true;
    }
    if (IsKeyword(Peek(), "LIKE")) {
      Next();
      if (!ExpectValue(left, at)) return false;
      std::vector<SqlNode> kids;
      kids.push_back(std::move(left));
      size_t pattern_pos = Peek().pos;
      SqlNode pattern;
      if (!ParseAdditive(pattern)) return false;
      if (TypeOf(pattern) == StaticType::kCondition || (pattern.kind == NodeKind::kConst && !pattern.value.is_null() &&
                                                        !std::holds_alternative<std::string>(pattern.value.v)))
        return Fail(pattern_pos, "the LIKE pattern must be a string");
      kids.push_back(std::move(pattern));
      size_t escape_pos = 0;
      if (IsKeyword(Peek(), "ESCAPE")) {
        Next();
        escape_pos = Peek().pos;
        SqlNode escape;
        if (!ParseAdditive(escape)) return false;
        if (escape.kind == NodeKind::kConst && !escape.value.is_null()) {
          const auto* s = std::get_if<std::string>(&escape.value.v);
          if (!s || CountChars(*s) != 1) return Fail(escape_pos, "the ESCAPE character must be a string of length 1");
        } else if (TypeOf(escape) == StaticType::kCondition) {
          return Fail(escape_pos, "the ESCAPE character must be a string of length 1");
        }
        kids.push_back(std::move(escape));
      }
      if (!Make(out, NodeKind::kLike, std::move(kids), at)) return false;
      out.negated = negated;
      // Constant pattern (and escape): compile once.
      const SqlNode& p = out.kids[1];
      const SqlNode* e = out.kids.size() > 2 ? &out.kids[2] : nullptr;
      const auto* ps = p.kind == NodeKind::kConst ? std::get_if<std::string>(&p.value.v) : nullptr;
      const auto* es = e && e->kind == NodeKind::kConst ? std::get_if<std::string>(&e->value.v) : nullptr;
      if (ps && (!e || es)) {
        auto compiled = std::make_shared<LikePattern>();
        if (!CompileLike(*ps, es ? std::string_view(*es) : std::string_view(), *compiled))
          return Fail(pattern_pos, "the LIKE pattern ends with the escape character");
        out.pattern = std::move(compiled);
      }
      return true;
    }
    out = std::move(left);
    return true;
  }

  bool ParseAdditive(SqlNode& out) {
    size_t at = Peek().pos;
    if (!ParseMultiplicative(out)) return false;
    while (Peek().kind == Tok::kPlus || Peek().kind == Tok::kMinus) {
      Op op = Next().kind == Tok::kPlus ? Op::kAdd : Op::kSub;
      size_t p = Peek().pos;
      SqlNode right;
      if (!ExpectValue(out, at) || !ParseMultiplicative(right) || !ExpectValue(right, p)) return false;
      if (!Make(out, NodeKind::kArith, Kids(std::move(out), std::move(right)), at)) return false;
      out.op = op;
    }
    return true;
  }

  bool ParseMultiplicative(SqlNode& out) {
    size_t at = Peek().pos;
    if (!ParseUnary(out)) return false;
    while (Peek().kind == Tok::kStar || Peek().kind == Tok::kSlash || Peek().kind == Tok::kPercent) {
      Tok k = Next().kind;
      Op op = k == Tok::kStar ? Op::kMul : k == Tok::kSlash ? Op::kDiv : Op::kMod;
      size_t p = Peek().pos;
      SqlNode right;
      if (!ExpectValue(out, at) || !ParseUnary(right) || !ExpectValue(right, p)) return false;
      if (!Make(out, NodeKind::kArith, Kids(std::move(out), std::move(right)), at)) return false;
      out.op = op;
    }
    return true;
  }

  bool ParseUnary(SqlNode& out) {
    Tok k = Peek().kind;
    if (k != Tok::kMinus && k != Tok::kPlus) return ParsePrimary(out);
    size_t at = Next().pos;
    // -9223372036854775808 is the one integer written beyond int64's maximum.
    if (k == Tok::kMinus && Peek().kind == Tok::kInteger &&
        Peek().u == static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) + 1) {
      Next();
      out = SqlNode{};
      out.value.v = std::numeric_limits<int64_t>::min();
      return true;
    }
    DepthGuard g(depth_);
    if (TooDeep(at)) return false;
    size_t p = Peek().pos;
    SqlNode inner;
    if (!ParseUnary(inner)) return false;
    if (TypeOf(inner) == StaticType::kCondition ||
        (inner.kind == NodeKind::kConst && !inner.value.is_null() && !std::holds_alternative<int64_t>(inner.value.v) &&
         !std::holds_alternative<double>(inner.value.v)))
      return Fail(p, std::string("unary '") + (k == Tok::kMinus ? "-" : "+") + "' needs a number");
    if (inner.kind == NodeKind::kConst) {  // fold the sign into the constant
      if (k == Tok::kMinus) {
        if (auto* i = std::get_if<int64_t>(&inner.value.v))
          *i = static_cast<int64_t>(0 - static_cast<uint64_t>(*i));
        else if (auto* d = std::get_if<double>(&inner.value.v))
          *d = -*d;
      }
      out = std::move(inner);
      return true;
    }
    return Make(out, k == Tok::kMinus ? NodeKind::kNeg : NodeKind::kPos, Kids(std::move(inner)), at);
  }

  bool ParsePrimary(SqlNode& out) {
    const Token& t = Peek();
    switch (t.kind) {
      case Tok::kLParen: {
        size_t at = Next().pos;
        DepthGuard g(depth_);
        if (TooDeep(at)) return false;
        if (!ParseOr(out)) return false;
        if (Peek().kind != Tok::kRParen) return Fail(Peek().pos, "expected ')', found " + Describe(Peek()));
        Next();
        return true;
      }
      case Tok::kInteger:
        if (t.u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
          return Fail(t.pos, "integer out of range");
        out = SqlNode{};
        out.value.v = static_cast<int64_t>(t.u);
        Next();
        return true;
      case Tok::kDecimal:
        out = SqlNode{};
        out.value.v = t.d;
        Next();
        return true;
      case Tok::kString:
        out = SqlNode{};
        out.value.v = t.text;
        Next();
        return true;
      case Tok::kParam: {
        auto it = params_.find(t.text);
        if (it == params_.end()) it = params_.find(t.text.substr(1));
        if (it == params_.end()) return Fail(t.pos, "unknown parameter '" + PrintableText(t.text, 60) + "'");
        out = SqlNode{};
        out.value = it->second;
        Next();
        return true;
      }
      case Tok::kIdent:
        break;
      case Tok::kEnd:
        return Fail(t.pos, "unexpected end of the expression");
      default:
        return Fail(t.pos, "unexpected " + Describe(t));
    }
    if (IsKeyword(t, "TRUE") || IsKeyword(t, "FALSE")) {
      out = SqlNode{};
      out.value.v = IsKeyword(t, "TRUE");
      Next();
      return true;
    }
    if (IsKeyword(t, "NULL")) {
      out = SqlNode{};
      Next();
      return true;
    }
    if (IsKeyword(t, "EXISTS")) {
      size_t at = Next().pos;
      if (Peek().kind != Tok::kLParen) return Fail(Peek().pos, "expected '(' after EXISTS, found " + Describe(Peek()));
      Next();
      SqlNode prop;
      if (!ParseProperty(prop)) return false;
      if (Peek().kind != Tok::kRParen) return Fail(Peek().pos, "expected ')', found " + Describe(Peek()));
      Next();
      return Make(out, NodeKind::kExists, Kids(std::move(prop)), at);
    }
    if (t.form == IdentForm::kRegular && Peek(1).kind == Tok::kLParen) return ParseFunction(out);
    return ParseProperty(out);
  }

  bool ParseFunction(SqlNode& out) {
    const Token& name = Next();
    size_t at = name.pos;
    Next();  // '('
    if (EqualsIgnoreCase(name.text, "newid")) {
      if (Peek().kind != Tok::kRParen) return Fail(Peek().pos, "newid() takes no argument");
      Next();
      out = SqlNode{};
      out.kind = NodeKind::kNewId;
      return true;
    }
    if (EqualsIgnoreCase(name.text, "property") || EqualsIgnoreCase(name.text, "p")) {
      DepthGuard g(depth_);
      if (TooDeep(at)) return false;
      size_t p = Peek().pos;
      SqlNode arg;
      if (!ParseAdditive(arg) || !ExpectValue(arg, p)) return false;
      if (Peek().kind != Tok::kRParen) return Fail(Peek().pos, "expected ')', found " + Describe(Peek()));
      Next();
      return Make(out, NodeKind::kPropertyFn, Kids(std::move(arg)), at);
    }
    return Fail(at, "unknown function '" + PrintableText(name.text, 60) + "' (known: newid, property, p)");
  }

  // [sys. | user.] name
  bool ParseProperty(SqlNode& out) {
    const Token& t = Peek();
    if (t.kind != Tok::kIdent) return Fail(t.pos, "expected a property name, found " + Describe(t));
    bool scoped = t.form == IdentForm::kRegular && Peek(1).kind == Tok::kDot;
    if (!scoped) {
      if (IsReserved(t)) return Fail(t.pos, "unexpected keyword " + Describe(t));
      out = SqlNode{};
      out.kind = NodeKind::kUserProp;
      out.name = t.text;
      Next();
      return true;
    }
    bool sys = EqualsIgnoreCase(t.text, "sys");
    if (!sys && !EqualsIgnoreCase(t.text, "user"))
      return Fail(t.pos, "unknown scope " + Describe(t) + " (use sys. or user.)");
    Next();
    Next();  // '.'
    const Token& name = Peek();
    if (name.kind != Tok::kIdent) return Fail(name.pos, "expected a property name, found " + Describe(name));
    out = SqlNode{};
    if (sys) {
      auto p = FindSysProp(name.text);
      if (!p) return Fail(name.pos, "unknown system property 'sys." + PrintableText(name.text, 60) + "'");
      out.kind = NodeKind::kSysProp;
      out.sys = *p;
    } else {
      out.kind = NodeKind::kUserProp;
      out.name = name.text;
    }
    Next();
    return true;
  }

  bool ParseTarget(SqlStatement& st) {
    size_t at = Peek().pos;
    SqlNode target;
    if (!ParseProperty(target)) return false;
    if (target.kind == NodeKind::kSysProp) {
      if (!Settable(target.sys))
        return Fail(at, "system property 'sys." + PrintableText(toks_[pos_ - 1].text, 60) + "' cannot be changed");
      st.system = true;
      st.sys = target.sys;
    } else {
      st.name = std::move(target.name);
    }
    return true;
  }

  std::string_view src_;
  const SqlParameters& params_;
  std::string_view what_;
  std::vector<Token> toks_;
  size_t pos_ = 0;
  int depth_ = 0;
  Status error_;
};

// ---------------------------------------------------------------------------------------------
// Evaluation

// A value during evaluation: monostate is NULL / unknown. Strings point into the message, the
// tree, or the evaluator's arena.
using Val = std::variant<std::monostate, bool, int64_t, double, std::string_view, Timestamp>;

enum class Tri : uint8_t { kFalse, kTrue, kUnknown };

Tri TriOf(const Val& v) {
  if (const bool* b = std::get_if<bool>(&v)) return *b ? Tri::kTrue : Tri::kFalse;
  return Tri::kUnknown;
}
Val ValOf(Tri t) { return t == Tri::kUnknown ? Val{} : Val{t == Tri::kTrue}; }
Tri Negate(Tri t) { return t == Tri::kUnknown ? t : (t == Tri::kTrue ? Tri::kFalse : Tri::kTrue); }

Val ValOf(const PropertyValue& p) {
  return std::visit(
      [](const auto& x) -> Val {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, std::string>)
          return std::string_view(x);
        else
          return x;
      },
      p.v);
}

PropertyValue PropertyOf(const Val& v) {
  PropertyValue p;
  std::visit(
      [&](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, std::string_view>)
          p.v = std::string(x);
        else
          p.v = x;
      },
      v);
  return p;
}

bool IsNumber(const Val& v) { return std::holds_alternative<int64_t>(v) || std::holds_alternative<double>(v); }
double AsDouble(const Val& v) {
  if (const auto* i = std::get_if<int64_t>(&v)) return static_cast<double>(*i);
  return std::get<double>(v);
}

Val SysValue(const MessageProperties& m, SysProp p) {
  if (const auto* f = StringField(m, p)) return *f ? Val{std::string_view(**f)} : Val{};
  switch (p) {
    case SysProp::kTimeToLive:
      return m.time_to_live_ms ? Val{*m.time_to_live_ms} : Val{};
    case SysProp::kScheduledEnqueueTime:
      return m.scheduled_enqueue_time ? Val{*m.scheduled_enqueue_time} : Val{};
    case SysProp::kSequenceNumber:
      return m.sequence_number;
    case SysProp::kEnqueuedSequenceNumber:
      return m.enqueued_sequence_number;
    case SysProp::kEnqueuedTime:
      return m.enqueued_time;
    case SysProp::kExpiresAt:
      return m.expires_at ? Val{*m.expires_at} : Val{};
    case SysProp::kDeliveryCount:
      return m.delivery_count;
    case SysProp::kState:
      return static_cast<int64_t>(m.state);
    default:
      return {};
  }
}

// C#'s relational and equality operators over the promoted types.
Tri Compare(Op op, const Val& a, const Val& b) {
  if (std::holds_alternative<std::monostate>(a) || std::holds_alternative<std::monostate>(b)) return Tri::kUnknown;
  int cmp = 0;
  if (IsNumber(a) && IsNumber(b)) {
    if (std::holds_alternative<int64_t>(a) && std::holds_alternative<int64_t>(b)) {
      int64_t x = std::get<int64_t>(a), y = std::get<int64_t>(b);
      cmp = x < y ? -1 : (x > y ? 1 : 0);
    } else {
      double x = AsDouble(a), y = AsDouble(b);
      if (std::isnan(x) || std::isnan(y)) return op == Op::kNe ? Tri::kTrue : Tri::kFalse;
      cmp = x < y ? -1 : (x > y ? 1 : 0);
    }
  } else if (a.index() == b.index() && std::holds_alternative<std::string_view>(a)) {
    int c = std::get<std::string_view>(a).compare(std::get<std::string_view>(b));
    cmp = c < 0 ? -1 : (c > 0 ? 1 : 0);
  } else if (a.index() == b.index() && std::holds_alternative<Timestamp>(a)) {
    auto x = std::get<Timestamp>(a), y = std::get<Timestamp>(b);
    cmp = x < y ? -1 : (x > y ? 1 : 0);
  } else if (a.index() == b.index() && std::holds_alternative<bool>(a)) {
    if (op != Op::kEq && op != Op::kNe) return Tri::kUnknown;
    cmp = std::get<bool>(a) == std::get<bool>(b) ? 0 : 1;
  } else {  // unrelated types
    if (op == Op::kEq) return Tri::kFalse;
    if (op == Op::kNe) return Tri::kTrue;
    return Tri::kUnknown;
  }
  bool r = false;
  switch (op) {
    case Op::kEq:
      r = cmp == 0;
      break;
    case Op::kNe:
      r = cmp != 0;
      break;
    case Op::kLt:
      r = cmp < 0;
      break;
    case Op::kLe:
      r = cmp <= 0;
      break;
    case Op::kGt:
      r = cmp > 0;
      break;
    case Op::kGe:
      r = cmp >= 0;
      break;
    default:
      break;
  }
  return r ? Tri::kTrue : Tri::kFalse;
}

// The text of a value in a string concatenation (as C#'s ToString with the invariant culture).
void AppendText(std::string& out, const Val& v) {
  if (const auto* s = std::get_if<std::string_view>(&v)) {
    out.append(*s);
  } else if (const auto* i = std::get_if<int64_t>(&v)) {
    AppendInt(out, *i);
  } else if (const auto* d = std::get_if<double>(&v)) {
    if (std::isnan(*d))
      out.append("NaN");
    else if (std::isinf(*d))
      out.append(*d > 0 ? "Infinity" : "-Infinity");
    else
      AppendDouble(out, *d);
  } else if (const auto* b = std::get_if<bool>(&v)) {
    out.append(*b ? "True" : "False");
  } else if (const auto* t = std::get_if<Timestamp>(&v)) {
    AppendTimestamp(out, *t);
  }
}

class Evaluator {
 public:
  explicit Evaluator(const MessageProperties& m) : m_(m) {}

  // Evaluates `n` into `out`; false on an evaluation failure (see error()).
  bool Eval(const SqlNode& n, Val& out) {
    switch (n.kind) {
      case NodeKind::kConst:
        out = ValOf(n.value);
        return true;
      case NodeKind::kUserProp: {
        auto it = FindUser(m_.application, n.name);
        out = it == m_.application.end() ? Val{} : ValOf(it->second);
        return true;
      }
      case NodeKind::kSysProp:
        out = SysValue(m_, n.sys);
        return true;
      case NodeKind::kNewId:
        out = Keep(GuidGenerator::NewRandom().ToString());
        return true;
      case NodeKind::kPropertyFn:
        return EvalPropertyFn(n, out);
      case NodeKind::kNeg:
      case NodeKind::kPos: {
        Val v;
        if (!Eval(n.kids[0], v)) return false;
        if (n.kind == NodeKind::kNeg) {
          if (auto* i = std::get_if<int64_t>(&v))
            *i = static_cast<int64_t>(0 - static_cast<uint64_t>(*i));
          else if (auto* d = std::get_if<double>(&v))
            *d = -*d;
        }
        out = IsNumber(v) ? v : Val{};
        return true;
      }
      case NodeKind::kNot: {
        Val v;
        if (!Eval(n.kids[0], v)) return false;
        out = ValOf(Negate(TriOf(v)));
        return true;
      }
      case NodeKind::kAnd:
      case NodeKind::kOr: {
        // AND: FALSE wins, else UNKNOWN, else TRUE; OR: TRUE wins, else UNKNOWN, else FALSE.
        const Tri decisive = n.kind == NodeKind::kAnd ? Tri::kFalse : Tri::kTrue;
        Tri result = Negate(decisive);
        for (const auto& k : n.kids) {
          Val v;
          if (!Eval(k, v)) return false;
          Tri t = TriOf(v);
          if (t == decisive) {
            result = decisive;
            break;
          }
          if (t == Tri::kUnknown) result = Tri::kUnknown;
        }
        out = ValOf(result);
        return true;
      }
      case NodeKind::kCompare: {
        Val a, b;
        if (!Eval(n.kids[0], a) || !Eval(n.kids[1], b)) return false;
        out = ValOf(Compare(n.op, a, b));
        return true;
      }
      case NodeKind::kArith: {
        Val a, b;
        if (!Eval(n.kids[0], a) || !Eval(n.kids[1], b)) return false;
        return Arith(n.op, a, b, out);
      }
      case NodeKind::kIn: {
        Val left;
        if (!Eval(n.kids[0], left)) return false;
        if (std::holds_alternative<std::monostate>(left)) {
          out = Val{};
          return true;
        }
        Tri result = Tri::kFalse;
        for (size_t i = 1; i < n.kids.size(); ++i) {
          Val item;
          if (!Eval(n.kids[i], item)) return false;
          Tri t = Compare(Op::kEq, left, item);
          if (t == Tri::kTrue) {
            result = Tri::kTrue;
            break;
          }
          if (t == Tri::kUnknown) result = Tri::kUnknown;
        }
        out = ValOf(n.negated ? Negate(result) : result);
        return true;
      }
      case NodeKind::kLike:
        return EvalLike(n, out);
      case NodeKind::kIsNull: {
        Val v;
        if (!Eval(n.kids[0], v)) return false;
        bool is_null = std::holds_alternative<std::monostate>(v);
        out = Val{is_null != n.negated};
        return true;
      }
      case NodeKind::kExists: {
        const SqlNode& p = n.kids[0];
        if (p.kind == NodeKind::kSysProp)
          out = Val{!std::holds_alternative<std::monostate>(SysValue(m_, p.sys))};
        else
          out = Val{FindUser(m_.application, p.name) != m_.application.end()};
        return true;
      }
    }
    return true;
  }

  const Status& error() const { return error_; }

 private:
  bool Fail(std::string message) {
    error_ = InvalidArgument("SQL evaluation failed: " + std::move(message) + ".");
    return false;
  }

  std::string_view Keep(std::string s) {
    arena_.push_front(std::move(s));
    return arena_.front();
  }

  bool Arith(Op op, const Val& a, const Val& b, Val& out) {
    out = Val{};
    if (std::holds_alternative<std::monostate>(a) || std::holds_alternative<std::monostate>(b)) return true;
    if (op == Op::kAdd &&
        (std::holds_alternative<std::string_view>(a) || std::holds_alternative<std::string_view>(b))) {
      std::string s;
      AppendText(s, a);
      AppendText(s, b);
      out = Keep(std::move(s));
      return true;
    }
    if (!IsNumber(a) || !IsNumber(b)) return true;
    if (std::holds_alternative<int64_t>(a) && std::holds_alternative<int64_t>(b)) {
      int64_t x = std::get<int64_t>(a), y = std::get<int64_t>(b);
      uint64_t ux = static_cast<uint64_t>(x), uy = static_cast<uint64_t>(y);
      switch (op) {
        case Op::kAdd:
          out = static_cast<int64_t>(ux + uy);
          break;
        case Op::kSub:
          out = static_cast<int64_t>(ux - uy);
          break;
        case Op::kMul:
          out = static_cast<int64_t>(ux * uy);
          break;
        case Op::kDiv:
          if (y == 0) return Fail("division by zero");
          if (x == std::numeric_limits<int64_t>::min() && y == -1) return Fail("integer overflow in division");
          out = x / y;
          break;
        case Op::kMod:
          if (y == 0) return Fail("division by zero");
          out = y == -1 ? int64_t{0} : x % y;
          break;
        default:
          break;
      }
      return true;
    }
    double x = AsDouble(a), y = AsDouble(b);
    switch (op) {
      case Op::kAdd:
        out = x + y;
        break;
      case Op::kSub:
        out = x - y;
        break;
      case Op::kMul:
        out = x * y;
        break;
      case Op::kDiv:
        out = x / y;
        break;
      case Op::kMod:
        out = std::fmod(x, y);
        break;
      default:
        break;
    }
    return true;
  }

  bool EvalPropertyFn(const SqlNode& n, Val& out) {
    Val arg;
    if (!Eval(n.kids[0], arg)) return false;
    out = Val{};
    const auto* name = std::get_if<std::string_view>(&arg);
    if (!name) return true;
    if (StartsWithIgnoreCase(*name, "sys.")) {
      auto p = FindSysProp(name->substr(4));
      if (!p) return Fail("unknown system property '" + PrintableText(*name, 60) + "'");
      out = SysValue(m_, *p);
      return true;
    }
    std::string key(StartsWithIgnoreCase(*name, "user.") ? name->substr(5) : *name);
    auto it = FindUser(m_.application, key);
    if (it != m_.application.end()) out = ValOf(it->second);
    return true;
  }

  bool EvalLike(const SqlNode& n, Val& out) {
    out = Val{};
    Val subject;
    if (!Eval(n.kids[0], subject)) return false;
    const LikePattern* pattern = n.pattern.get();
    LikePattern dynamic;
    if (!pattern) {
      Val p, e;
      if (!Eval(n.kids[1], p)) return false;
      if (n.kids.size() > 2 && !Eval(n.kids[2], e)) return false;
      const auto* ps = std::get_if<std::string_view>(&p);
      if (!ps) return true;  // NULL or not a string: unknown
      std::string_view escape;
      if (n.kids.size() > 2) {
        if (std::holds_alternative<std::monostate>(e)) return true;
        const auto* es = std::get_if<std::string_view>(&e);
        if (!es || CountChars(*es) != 1) return Fail("the ESCAPE character must be a string of length 1");
        escape = *es;
      }
      if (!CompileLike(*ps, escape, dynamic)) return Fail("the LIKE pattern ends with the escape character");
      pattern = &dynamic;
    }
    const auto* s = std::get_if<std::string_view>(&subject);
    if (!s) return true;
    out = Val{MatchLike(*pattern, *s) != n.negated};
    return true;
  }

  const MessageProperties& m_;
  std::forward_list<std::string> arena_;  // computed strings; stable addresses, no allocation until used
  Status error_;
};

// ---------------------------------------------------------------------------------------------
// Actions

Status SetSystem(MessageProperties& m, SysProp p, const Val& v, std::string_view name) {
  bool null = std::holds_alternative<std::monostate>(v);
  if (auto* f = StringField(m, p)) {
    if (null) {
      f->reset();
    } else if (const auto* s = std::get_if<std::string_view>(&v)) {
      *f = std::string(*s);
    } else {
      return InvalidArgument("SQL action failed: sys." + std::string(name) + " takes a string.");
    }
    return Status::Ok();
  }
  if (p == SysProp::kTimeToLive) {
    if (null) {
      m.time_to_live_ms.reset();
      return Status::Ok();
    }
    if (const auto* i = std::get_if<int64_t>(&v); i && *i >= 0) {
      m.time_to_live_ms = *i;
      return Status::Ok();
    }
    if (const auto* d = std::get_if<double>(&v); d && *d >= 0 && *d < 9.2e18) {
      m.time_to_live_ms = static_cast<int64_t>(std::llround(*d));
      return Status::Ok();
    }
    return InvalidArgument("SQL action failed: sys.TimeToLive takes a number of milliseconds >= 0.");
  }
  if (p == SysProp::kScheduledEnqueueTime) {
    if (null) {
      m.scheduled_enqueue_time.reset();
      return Status::Ok();
    }
    if (const auto* t = std::get_if<Timestamp>(&v)) {
      m.scheduled_enqueue_time = *t;
      return Status::Ok();
    }
    return InvalidArgument("SQL action failed: sys.ScheduledEnqueueTimeUtc takes a timestamp.");
  }
  return InvalidArgument("SQL action failed: sys." + std::string(name) + " cannot be changed.");
}

std::string_view SysName(SysProp p) {
  for (const auto& s : kSysProps)
    if (s.prop == p) return s.name;
  return "?";
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Public API

Result<SqlFilter> ParseSqlFilter(std::string_view expression, const SqlParameters& parameters) {
  Parser parser(expression, parameters, "SQL filter");
  auto root = parser.ParseFilter();
  if (!root.ok()) return std::move(root).status();
  SqlFilter f;
  f.expression_ = std::string(expression);
  f.root_ = std::make_shared<const SqlNode>(std::move(root).value());
  return f;
}

Result<bool> SqlFilter::Evaluate(const MessageProperties& message) const {
  if (!root_) return false;
  Evaluator ev(message);
  Val v;
  if (!ev.Eval(*root_, v)) return ev.error();
  return TriOf(v) == Tri::kTrue;
}

bool SqlFilter::Matches(const MessageProperties& message) const {
  auto r = Evaluate(message);
  return r.ok() && *r;
}

Result<SqlAction> ParseSqlAction(std::string_view expression, const SqlParameters& parameters) {
  Parser parser(expression, parameters, "SQL action");
  auto statements = parser.ParseAction();
  if (!statements.ok()) return std::move(statements).status();
  SqlAction a;
  a.expression_ = std::string(expression);
  a.statements_ = std::make_shared<const std::vector<SqlStatement>>(std::move(statements).value());
  return a;
}

Status Apply(const SqlAction& action, MessageProperties& message) {
  if (!action.statements_) return Status::Ok();
  MessageProperties copy = message;
  for (const auto& st : *action.statements_) {
    if (st.remove) {
      if (st.system) {
        RETURN_IF_ERROR(SetSystem(copy, st.sys, Val{}, SysName(st.sys)));
      } else {
        auto it = FindUser(copy.application, st.name);
        if (it != copy.application.end()) copy.application.erase(it);
      }
      continue;
    }
    PropertyValue value;
    {
      // The evaluator reads `copy`; its values are materialized before `copy` changes.
      Evaluator ev(copy);
      Val v;
      if (!ev.Eval(st.value, v)) return ev.error();
      if (st.system) {
        RETURN_IF_ERROR(SetSystem(copy, st.sys, v, SysName(st.sys)));
        continue;
      }
      value = PropertyOf(v);
    }
    auto it = FindUser(copy.application, st.name);
    if (it == copy.application.end()) {
      copy.application.emplace(st.name, std::move(value));
      continue;
    }
    // SET converts implicitly where C# would: an integer stored into a double property.
    if (std::holds_alternative<double>(it->second.v))
      if (const auto* i = std::get_if<int64_t>(&value.v)) value.v = static_cast<double>(*i);
    it->second = std::move(value);
  }
  message = std::move(copy);
  return Status::Ok();
}

namespace {

bool CorrelationValueEquals(const PropertyValue& want, const PropertyValue& have) {
  Val a = ValOf(want), b = ValOf(have);
  if (IsNumber(a) && IsNumber(b)) return Compare(Op::kEq, a, b) == Tri::kTrue;
  return want == have;
}

bool FieldMatches(const std::optional<std::string>& want, const std::optional<std::string>& have) {
  return !want || (have && *want == *have);
}

}  // namespace

bool CorrelationFilter::Matches(const MessageProperties& m) const {
  if (!FieldMatches(correlation_id, m.correlation_id) || !FieldMatches(message_id, m.message_id) ||
      !FieldMatches(to, m.to) || !FieldMatches(reply_to, m.reply_to) || !FieldMatches(subject, m.subject) ||
      !FieldMatches(session_id, m.session_id) || !FieldMatches(reply_to_session_id, m.reply_to_session_id) ||
      !FieldMatches(content_type, m.content_type))
    return false;
  for (const auto& [name, want] : properties) {
    auto it = m.application.find(name);
    if (it == m.application.end() || !CorrelationValueEquals(want, it->second)) return false;
  }
  return true;
}

bool CorrelationFilter::empty() const {
  return !correlation_id && !message_id && !to && !reply_to && !subject && !session_id && !reply_to_session_id &&
         !content_type && properties.empty();
}

Result<bool> EvaluateFilter(const RuleFilter& filter, const MessageProperties& message) {
  return std::visit(
      [&](const auto& f) -> Result<bool> {
        using T = std::decay_t<decltype(f)>;
        if constexpr (std::is_same_v<T, TrueFilter>)
          return true;
        else if constexpr (std::is_same_v<T, FalseFilter>)
          return false;
        else if constexpr (std::is_same_v<T, SqlFilter>)
          return f.Evaluate(message);
        else
          return f.Matches(message);
      },
      filter);
}

Rule DefaultRule() { return Rule{"$Default", TrueFilter{}, std::nullopt}; }

FanOutResult FanOut(std::span<const Rule> rules, const MessageProperties& message) {
  FanOutResult out;
  bool plain = false;
  for (const Rule& rule : rules) {
    if (plain && !rule.action) continue;  // one more action-less match adds nothing
    auto matched = EvaluateFilter(rule.filter, message);
    if (!matched.ok()) {
      if (out.error.ok())
        out.error =
            InvalidArgument("Rule '" + rule.name + "': " + matched.status().message(), matched.status().error_code());
      continue;
    }
    if (!*matched) continue;
    if (!rule.action) {
      plain = true;
      continue;
    }
    RuleCopy copy{message, rule.name};
    Status s = Apply(*rule.action, copy.properties);
    if (!s.ok()) {
      if (out.error.ok()) out.error = InvalidArgument("Rule '" + rule.name + "': " + s.message(), s.error_code());
      continue;
    }
    copy.properties.application.insert_or_assign(std::string(kRuleNameProperty), PropertyValue{rule.name});
    out.copies.push_back(std::move(copy));
  }
  if (plain) out.copies.insert(out.copies.begin(), RuleCopy{message, {}});
  return out;
}

}  // namespace tributary::bus
