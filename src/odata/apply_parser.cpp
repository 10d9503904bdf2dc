// Parser of the $apply query option (apply_parser.h): splits the pipeline at its top-level '/',
// reads groupby/aggregate with a small cursor and hands filter(...) to ParseFilter.

#include "apply_parser.h"

#include "tributary/base/strings.h"

namespace tributary::odata {
namespace {

Status Bad(const std::string& msg) { return QueryError("Invalid $apply: " + PrintableText(msg, 400)); }

bool IsNameStart(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool IsNameChar(char c) { return IsNameStart(c) || (c >= '0' && c <= '9'); }
bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

// The transformations: `text` split at '/' outside parentheses and quoted strings.
Result<std::vector<std::string_view>> SplitTransforms(std::string_view text) {
  std::vector<std::string_view> out;
  int depth = 0;
  char quote = 0;
  size_t start = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (quote) {
      if (c == quote) {
        if (i + 1 < text.size() && text[i + 1] == quote)
          ++i;  // '' inside a string
        else
          quote = 0;
      }
      continue;
    }
    if (c == '\'' || c == '"') {
      quote = c;
    } else if (c == '(') {
      ++depth;
    } else if (c == ')') {
      if (--depth < 0) return Bad("a ')' has no matching '('.");
    } else if (c == '/' && depth == 0) {
      out.push_back(text.substr(start, i - start));
      start = i + 1;
    }
  }
  if (quote) return Bad("a quoted string is not closed.");
  if (depth != 0) return Bad("a '(' is not closed.");
  out.push_back(text.substr(start));
  return out;
}

// A cursor over the text of a groupby or aggregate transformation.
class Cursor {
 public:
  explicit Cursor(std::string_view s) : s_(s) {}

  bool AtEnd() {
    SkipSpace();
    return i_ == s_.size();
  }
  bool Eat(char c) {
    SkipSpace();
    if (i_ < s_.size() && s_[i_] == c) {
      ++i_;
      return true;
    }
    return false;
  }
  // A keyword followed by a non-name character.
  bool EatWord(std::string_view w) {
    SkipSpace();
    if (!s_.substr(i_).starts_with(w)) return false;
    size_t end = i_ + w.size();
    if (end < s_.size() && IsNameChar(s_[end])) return false;
    i_ = end;
    return true;
  }
  Result<std::string> Name(std::string_view what) {
    SkipSpace();
    size_t start = i_;
    if (i_ < s_.size() && IsNameStart(s_[i_]))
      while (i_ < s_.size() && IsNameChar(s_[i_])) ++i_;
    if (i_ == start) return Bad("expected " + std::string(what) + " " + Where() + ".");
    return std::string(s_.substr(start, i_ - start));
  }
  Result<std::vector<std::string>> Path() {
    std::vector<std::string> path;
    do {
      ASSIGN_OR_RETURN(std::string n, Name("a property name"));
      path.push_back(std::move(n));
    } while (Eat('/'));
    return path;
  }
  // "at 'rest of text'" or "at the end", for messages.
  std::string Where() const {
    if (i_ >= s_.size()) return "at the end of '" + std::string(s_) + "'";
    std::string_view rest = s_.substr(i_, 20);
    return "at '" + std::string(rest) + (s_.size() - i_ > 20 ? "…" : "") + "' in '" + std::string(s_.substr(0, 200)) +
           "'";
  }

 private:
  void SkipSpace() {
    while (i_ < s_.size() && IsSpace(s_[i_])) ++i_;
  }
  std::string_view s_;
  size_t i_ = 0;
};

// "aggregate(" item ("," item)* ")", the keyword already read.
Status ParseAggregate(Cursor& c, std::vector<ApplyAggregate>& out) {
  if (!c.Eat('(')) return Bad("expected '(' after aggregate " + c.Where() + ".");
  do {
    ApplyAggregate a;
    if (c.EatWord("$count")) {
      a.method = "count";
    } else {
      ASSIGN_OR_RETURN(a.path, c.Path());
      if (!c.EatWord("with")) return Bad("expected 'with' and an aggregation method " + c.Where() + ".");
      ASSIGN_OR_RETURN(a.method, c.Name("an aggregation method"));
      if (a.method != "sum" && a.method != "average" && a.method != "min" && a.method != "max" &&
          a.method != "countdistinct")
        return Bad("'" + a.method + "' is not an aggregation method; use sum, average, min, max or countdistinct.");
    }
    if (!c.EatWord("as")) return Bad("expected 'as' and an alias " + c.Where() + ".");
    ASSIGN_OR_RETURN(a.alias, c.Name("an alias"));
    for (const ApplyAggregate& e : out)
      if (e.alias == a.alias) return Bad("the alias '" + a.alias + "' is used more than once.");
    out.push_back(std::move(a));
  } while (c.Eat(','));
  if (!c.Eat(')')) return Bad("expected ',' or ')' " + c.Where() + ".");
  return Status::Ok();
}

// The text between the parentheses of "name(...)" when the transformation is exactly that.
std::optional<std::string_view> Arguments(std::string_view t, std::string_view name) {
  if (!t.starts_with(name)) return std::nullopt;
  std::string_view rest = Trim(t.substr(name.size()));
  if (rest.size() < 2 || rest.front() != '(' || rest.back() != ')') return std::nullopt;
  return rest.substr(1, rest.size() - 2);
}

}  // namespace

Result<ApplyQuery> ParseApply(std::string_view text, const AliasMap& aliases) {
  if (Trim(text).empty()) return Bad("the option is empty.");
  ASSIGN_OR_RETURN(std::vector<std::string_view> transforms, SplitTransforms(text));
  ApplyQuery q;
  bool ended = false;  // a groupby or aggregate was read: nothing may follow
  for (std::string_view raw : transforms) {
    std::string_view t = Trim(raw);
    if (t.empty()) return Bad("a transformation is empty ('" + std::string(text.substr(0, 200)) + "').");
    if (ended)
      return Bad("only filter(...) transformations may come before groupby or aggregate, and nothing after them.");
    if (auto args = Arguments(t, "filter")) {
      ASSIGN_OR_RETURN(data::ExprPtr e, ParseFilter(*args, aliases));
      if (!q.filter) {
        q.filter = std::move(e);
      } else {
        auto both = std::make_unique<data::Expr>();
        both->kind = data::Expr::Kind::kAnd;
        both->children.push_back(std::move(q.filter));
        both->children.push_back(std::move(e));
        q.filter = std::move(both);
      }
      continue;
    }
    if (auto args = Arguments(t, "groupby")) {
      Cursor c(*args);
      if (!c.Eat('(')) return Bad("groupby needs a parenthesized list of properties, as in groupby((statuscode)).");
      do {
        ASSIGN_OR_RETURN(auto path, c.Path());
        q.groupby_paths.push_back(std::move(path));
      } while (c.Eat(','));
      if (!c.Eat(')')) return Bad("expected ',' or ')' " + c.Where() + ".");
      if (c.Eat(',')) {
        if (!c.EatWord("aggregate")) return Bad("expected aggregate(...) " + c.Where() + ".");
        RETURN_IF_ERROR(ParseAggregate(c, q.aggregates));
      }
      if (!c.AtEnd()) return Bad("unexpected text " + c.Where() + ".");
      q.groupby = true;
      ended = true;
      continue;
    }
    if (auto args = Arguments(t, "aggregate")) {
      Cursor c(t.substr(9));
      RETURN_IF_ERROR(ParseAggregate(c, q.aggregates));
      if (!c.AtEnd()) return Bad("unexpected text " + c.Where() + ".");
      ended = true;
      continue;
    }
    size_t paren = t.find('(');
    std::string name(t.substr(0, paren == std::string_view::npos ? std::min<size_t>(t.size(), 40) : paren));
    return Bad("the transformation '" + name + "' is not supported; use filter, groupby or aggregate.");
  }
  // Group properties and aggregate aliases name the result's columns: they must differ.
  for (const ApplyAggregate& a : q.aggregates)
    for (const auto& p : q.groupby_paths)
      if (p.size() == 1 && p[0] == a.alias) return Bad("the alias '" + a.alias + "' is also a grouped property.");
  return q;
}

}  // namespace tributary::odata
