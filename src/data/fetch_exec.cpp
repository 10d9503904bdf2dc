// FetchXML execution (fetch_exec.h): binds a FetchQuery against the catalog, writes it as one SQL
// statement and reads the rows.
//
// Shape of the SQL:
//   SELECT <columns> FROM "account" t0
//     LEFT JOIN "contact" l1 ON l1."contactid" = t0."primarycontactid" AND (<l1's filter>)
//   WHERE (<entity filter>) AND EXISTS (SELECT 1 FROM "task" l2 WHERE l2."regardingobjectid" = t0."accountid")
//   [GROUP BY …] ORDER BY … LIMIT n+1 [OFFSET …]
// t0 is the entity and lN the N-th link-entity of the query. Join links (inner, outer,
// matchfirstrowusingcrossapply) become JOINs; a filter inside an outer link goes into its ON
// clause so unmatched rows stay. Links of type exists/in, and any/not any/all/not all inside
// filters, become EXISTS subqueries. Every table enters the SQL through TableSource(), the one
// place where row-level security will add its per-table predicate. Conditions become data::Expr
// and go through AppendFilterSql, the binder $filter uses.

#include "tributary/data/fetch_exec.h"

#include <algorithm>
#include <charconv>
#include <deque>
#include <functional>
#include <map>
#include <utility>

#include "access.h"
#include "internal.h"
#include "tributary/base/strings.h"

namespace tributary::data {

using catalog::Column;
using catalog::ColumnType;
using catalog::Table;

namespace {

// Platform error numbers of the query builder (Dataverse's names).
constexpr uint32_t kErrNoEntity = 0x80041102;        // QueryBuilderNoEntity
constexpr uint32_t kErrNoAttribute = 0x80041103;     // QueryBuilderNoAttribute
constexpr uint32_t kErrAggregateLimit = 0x8004E023;  // AggregateQueryRecordLimit
constexpr uint32_t kErrPagingLimit = 0x8004430A;     // OverRetrievalUpperLimitWithoutPagingCookie
constexpr size_t kMaxLikePattern = 8000;
// Orders beyond this many page by offset: each key nests the keyset condition deeper.
constexpr size_t kMaxKeysetKeys = 64;

Status NoEntity(std::string_view name) {
  return Status(Code::kInvalidArgument,
                "The entity with a name = '" + std::string(name) +
                    "' with namemapping = 'Logical' was not found in the MetadataCache.",
                kErrNoEntity);
}

Status NoAttribute(const Table& t, std::string_view name) {
  return Status(Code::kInvalidArgument,
                "'" + t.logical_name + "' entity doesn't contain attribute with Name = '" + std::string(name) +
                    "' and NameMapping = 'Logical'.",
                kErrNoAttribute);
}

bool IsJoinType(std::string_view t) { return t == "inner" || t == "outer" || t == "matchfirstrowusingcrossapply"; }

bool IsText(const Column& c) {
  return c.type == ColumnType::kString || c.type == ColumnType::kMemo || c.type == ColumnType::kMultiChoice;
}
bool IsGuidLike(const Column& c) { return c.type == ColumnType::kUniqueIdentifier || c.IsLookup(); }
bool IsNumber(const Column& c) {
  return c.type == ColumnType::kInteger || c.type == ColumnType::kBigInt || c.type == ColumnType::kDecimal ||
         c.type == ColumnType::kDouble || c.type == ColumnType::kMoney;
}
bool IsWholeNumber(const Column& c) { return c.type == ColumnType::kInteger || c.type == ColumnType::kBigInt; }

// Whether two columns hold comparable values (join columns, valueof).
bool Comparable(const Column& a, const Column& b) {
  if (IsText(a) || IsText(b)) return IsText(a) && IsText(b);
  if (IsGuidLike(a) || IsGuidLike(b)) return IsGuidLike(a) && IsGuidLike(b);
  if (IsNumber(a) && IsNumber(b)) return true;
  return a.type == b.type || (a.IsChoiceLike() && b.IsChoiceLike());
}

std::string Col(const std::string& alias, const Column& c) { return alias + "." + Q(c.sql_name); }

// ---------------------------------------------------------------------------------------------
// Conditions as data::Expr

ExprPtr NewExpr(Expr::Kind k) {
  auto e = std::make_unique<Expr>();
  e->kind = k;
  return e;
}

ExprPtr Prop(const Column& c) {
  auto e = NewExpr(Expr::Kind::kProperty);
  e->path = {c.IsLookup() ? c.LookupProperty() : c.logical_name};
  return e;
}

ExprPtr Lit(Literal l) {
  auto e = NewExpr(Expr::Kind::kLiteral);
  e->literal = std::move(l);
  return e;
}

ExprPtr Binary(Expr::Kind k, ExprPtr a, ExprPtr b) {
  auto e = NewExpr(k);
  e->children.push_back(std::move(a));
  e->children.push_back(std::move(b));
  return e;
}

ExprPtr Compare(ExprPtr a, CompareOp op, ExprPtr b) {
  auto e = Binary(Expr::Kind::kCompare, std::move(a), std::move(b));
  e->op = op;
  return e;
}

ExprPtr Not(ExprPtr a) {
  auto e = NewExpr(Expr::Kind::kNot);
  e->children.push_back(std::move(a));
  return e;
}

ExprPtr IsNotNull(const Column& c) { return Compare(Prop(c), CompareOp::kNe, Lit(Literal{Literal::Kind::kNull, ""})); }

// A FetchXML value as the query literal LiteralToValue expects for the column's type; a value
// that does not fit becomes an error there, naming the column and the expected type.
Literal LiteralFor(const Column& c, const std::string& text) {
  using K = Literal::Kind;
  std::string trimmed(Trim(text));
  switch (c.type) {
    case ColumnType::kString:
    case ColumnType::kMemo:
    case ColumnType::kMultiChoice:
      return {K::kString, text};
    case ColumnType::kInteger:
    case ColumnType::kBigInt:
    case ColumnType::kChoice:
    case ColumnType::kState:
    case ColumnType::kStatus:
      return {K::kInteger, trimmed};
    case ColumnType::kBoolean:
      if (EqualsIgnoreCase(trimmed, "true") || EqualsIgnoreCase(trimmed, "false")) return {K::kBool, ToLower(trimmed)};
      if (trimmed == "1" || trimmed == "0") return {K::kInteger, trimmed};
      return {K::kString, text};
    case ColumnType::kDecimal:
    case ColumnType::kDouble:
    case ColumnType::kMoney:
      return {K::kDecimal, trimmed};
    default:
      return {K::kString, trimmed};
  }
}

bool AllDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// FetchXML operators that are Dataverse query functions (the names $filter uses).
constexpr std::pair<std::string_view, std::string_view> kQueryFunctions[] = {
    {"in", "In"},
    {"not-in", "NotIn"},
    {"between", "Between"},
    {"not-between", "NotBetween"},
    {"yesterday", "Yesterday"},
    {"today", "Today"},
    {"tomorrow", "Tomorrow"},
    {"last-seven-days", "Last7Days"},
    {"next-seven-days", "Next7Days"},
    {"last-week", "LastWeek"},
    {"this-week", "ThisWeek"},
    {"next-week", "NextWeek"},
    {"last-month", "LastMonth"},
    {"this-month", "ThisMonth"},
    {"next-month", "NextMonth"},
    {"on", "On"},
    {"on-or-before", "OnOrBefore"},
    {"on-or-after", "OnOrAfter"},
    {"last-year", "LastYear"},
    {"this-year", "ThisYear"},
    {"next-year", "NextYear"},
    {"last-x-hours", "LastXHours"},
    {"next-x-hours", "NextXHours"},
    {"last-x-days", "LastXDays"},
    {"next-x-days", "NextXDays"},
    {"last-x-weeks", "LastXWeeks"},
    {"next-x-weeks", "NextXWeeks"},
    {"last-x-months", "LastXMonths"},
    {"next-x-months", "NextXMonths"},
    {"olderthan-x-months", "OlderThanXMonths"},
    {"olderthan-x-years", "OlderThanXYears"},
    {"olderthan-x-weeks", "OlderThanXWeeks"},
    {"olderthan-x-days", "OlderThanXDays"},
    {"olderthan-x-hours", "OlderThanXHours"},
    {"olderthan-x-minutes", "OlderThanXMinutes"},
    {"last-x-years", "LastXYears"},
    {"next-x-years", "NextXYears"},
    {"eq-userid", "EqualUserId"},
    {"ne-userid", "NotEqualUserId"},
    {"eq-userteams", "EqualUserTeams"},
    {"eq-useroruserteams", "EqualUserOrUserTeams"},
    {"eq-useroruserhierarchy", "EqualUserOrUserHierarchy"},
    {"eq-useroruserhierarchyandteams", "EqualUserOrUserHierarchyAndTeams"},
    {"eq-businessid", "EqualBusinessId"},
    {"ne-businessid", "NotEqualBusinessId"},
    {"eq-userlanguage", "EqualUserLanguage"},
    {"this-fiscal-year", "ThisFiscalYear"},
    {"this-fiscal-period", "ThisFiscalPeriod"},
    {"next-fiscal-year", "NextFiscalYear"},
    {"next-fiscal-period", "NextFiscalPeriod"},
    {"last-fiscal-year", "LastFiscalYear"},
    {"last-fiscal-period", "LastFiscalPeriod"},
    {"last-x-fiscal-years", "LastXFiscalYears"},
    {"last-x-fiscal-periods", "LastXFiscalPeriods"},
    {"next-x-fiscal-years", "NextXFiscalYears"},
    {"next-x-fiscal-periods", "NextXFiscalPeriods"},
    {"in-fiscal-year", "InFiscalYear"},
    {"in-fiscal-period", "InFiscalPeriod"},
    {"in-fiscal-period-and-year", "InFiscalPeriodAndYear"},
    {"in-or-before-fiscal-period-and-year", "InOrBeforeFiscalPeriodAndYear"},
    {"in-or-after-fiscal-period-and-year", "InOrAfterFiscalPeriodAndYear"},
    {"under", "Under"},
    {"eq-or-under", "UnderOrEqual"},
    {"not-under", "NotUnder"},
    {"above", "Above"},
    {"eq-or-above", "AboveOrEqual"},
    {"contain-values", "ContainValues"},
    {"not-contain-values", "DoesNotContainValues"},
};

// Functions whose values are a list (PropertyValues) rather than one value.
bool TakesValueList(std::string_view fn) {
  return fn == "In" || fn == "NotIn" || fn == "Between" || fn == "NotBetween" || fn == "ContainValues" ||
         fn == "DoesNotContainValues";
}

// The Expr of a condition on `col` (not valueof).
Result<ExprPtr> ConditionExpr(const FetchCondition& c, const Column& col) {
  const std::string& op = c.op;
  static constexpr std::pair<std::string_view, CompareOp> kCompares[] = {
      {"eq", CompareOp::kEq}, {"ne", CompareOp::kNe}, {"neq", CompareOp::kNe}, {"gt", CompareOp::kGt},
      {"ge", CompareOp::kGe}, {"lt", CompareOp::kLt}, {"le", CompareOp::kLe}};
  for (const auto& [name, cmp] : kCompares)
    if (op == name) return Compare(Prop(col), cmp, Lit(LiteralFor(col, c.values.at(0))));
  if (op == "null") return Compare(Prop(col), CompareOp::kEq, Lit(Literal{Literal::Kind::kNull, ""}));
  if (op == "not-null") return IsNotNull(col);
  // Text matching: like takes the pattern as written (% and _ are wildcards); begins-with and
  // ends-with are startswith/endswith. The negated forms exclude null values, as SQL's NOT LIKE.
  static constexpr std::pair<std::string_view, std::string_view> kText[] = {{"like", "like"},
                                                                            {"not-like", "like"},
                                                                            {"begins-with", "startswith"},
                                                                            {"not-begin-with", "startswith"},
                                                                            {"ends-with", "endswith"},
                                                                            {"not-end-with", "endswith"}};
  for (const auto& [name, fn] : kText) {
    if (op != name) continue;
    if (c.values.at(0).size() > kMaxLikePattern)
      return QueryError("The value of the '" + op + "' condition on '" + col.logical_name + "' is longer than " +
                        std::to_string(kMaxLikePattern) + " characters.");
    auto e = NewExpr(Expr::Kind::kFunction);
    e->name = std::string(fn);
    e->children.push_back(Prop(col));
    e->children.push_back(Lit(Literal{Literal::Kind::kString, c.values.at(0)}));
    if (op.starts_with("not-")) return Binary(Expr::Kind::kAnd, IsNotNull(col), Not(std::move(e)));
    return e;
  }
  for (const auto& [name, fn] : kQueryFunctions) {
    if (op != name) continue;
    auto e = NewExpr(Expr::Kind::kQueryFunction);
    e->name = std::string(fn);
    e->params.push_back(Expr::Param{"PropertyName", {Literal{Literal::Kind::kString, col.logical_name}}, false});
    if (TakesValueList(fn)) {
      Expr::Param p{"PropertyValues", {}, true};
      for (const std::string& v : c.values) p.values.push_back(LiteralFor(col, v));
      e->params.push_back(std::move(p));
    } else if (c.values.size() == 2) {
      for (size_t i = 0; i < 2; ++i)
        e->params.push_back(Expr::Param{"PropertyValue" + std::to_string(i + 1),
                                        {Literal{Literal::Kind::kInteger, std::string(Trim(c.values[i]))}},
                                        false});
    } else if (c.values.size() == 1) {
      std::string v(Trim(c.values[0]));
      Literal lit{AllDigits(v) ? Literal::Kind::kInteger : Literal::Kind::kString, v};
      e->params.push_back(Expr::Param{"PropertyValue", {std::move(lit)}, false});
    }
    return e;
  }
  return QueryError("The condition operator '" + op + "' is not supported.");
}

// ---------------------------------------------------------------------------------------------
// Paging cookie: <cookie page="N"><name last="…" first="…" />…<accountid last="{…}" first="{…}" /></cookie>.
// Values: GUIDs in braces, numbers and dates (milliseconds or days) as integers, text
// percent-encoded (so that no XML-special character appears, whatever the client does to the
// cookie on its way back); a null value has no `last`/`first` attribute.

std::string EncodeCookieValue(const Value& v) {
  return std::visit(
      [](const auto& x) -> std::string {
        using T = std::decay_t<decltype(x)>;
        auto guid = [](const Guid& g) {
          std::string s = g.ToString();
          std::transform(s.begin(), s.end(), s.begin(), [](char c) { return c >= 'a' && c <= 'f' ? c - 32 : c; });
          return "{" + s + "}";
        };
        if constexpr (std::is_same_v<T, std::monostate>)
          return "";
        else if constexpr (std::is_same_v<T, bool>)
          return x ? "1" : "0";
        else if constexpr (std::is_same_v<T, int64_t>)
          return std::to_string(x);
        else if constexpr (std::is_same_v<T, double>) {
          char buf[32];
          auto r = std::to_chars(buf, buf + sizeof buf, x);
          return std::string(buf, r.ptr);
        } else if constexpr (std::is_same_v<T, std::string>)
          return PercentEncode(x);
        else if constexpr (std::is_same_v<T, Guid>)
          return guid(x);
        else if constexpr (std::is_same_v<T, Timestamp>)
          return std::to_string(x.ms);
        else if constexpr (std::is_same_v<T, Date>)
          return std::to_string(x.days);
        else
          return guid(x.id);
      },
      v);
}

// The SQL value of a cookie value of column `c`; nullopt when it does not fit the column.
std::optional<storage::SqlValue> DecodeCookieValue(const Column& c, const std::string& text) {
  auto number = [&](auto& out) {
    auto r = std::from_chars(text.data(), text.data() + text.size(), out);
    return r.ec == std::errc() && r.ptr == text.data() + text.size();
  };
  if (IsText(c)) {
    std::string s;
    if (!PercentDecode(text, s, false)) return std::nullopt;
    return storage::SqlValue(std::move(s));
  }
  if (IsGuidLike(c)) {
    auto g = Guid::Parse(text);
    if (!g) return std::nullopt;
    return storage::SqlValue(g->ToString());
  }
  if (c.type == ColumnType::kDecimal || c.type == ColumnType::kDouble || c.type == ColumnType::kMoney) {
    double d;
    if (!number(d)) return std::nullopt;
    return storage::SqlValue(d);
  }
  int64_t i;
  if (!number(i)) return std::nullopt;
  return storage::SqlValue(i);
}

struct CookieKey {
  std::string name;
  std::optional<std::string> last;  // nullopt: the value was null
};

struct Cookie {
  int64_t page = 0;
  std::vector<CookieKey> keys;
};

// Reads the attributes of a tag's text (` last="…" first="…"`) into `out`; false when it is
// malformed or an attribute repeats.
bool TagAttributes(std::string_view tag, std::map<std::string, std::string, std::less<>>& out) {
  size_t i = 0;
  while (i < tag.size()) {
    while (i < tag.size() && tag[i] == ' ') ++i;
    if (i == tag.size()) break;
    size_t eq = tag.find('=', i);
    if (eq == std::string_view::npos || eq + 1 >= tag.size() || tag[eq + 1] != '"') return false;
    size_t end = tag.find('"', eq + 2);
    if (end == std::string_view::npos) return false;
    std::string name(tag.substr(i, eq - i));
    if (name.empty() || name.find(' ') != std::string::npos) return false;
    if (!out.emplace(name, XmlUnescape(tag.substr(eq + 2, end - eq - 2))).second) return false;
    i = end + 1;
    if (i < tag.size() && tag[i] != ' ') return false;
  }
  return true;
}

// Parses a cookie this file wrote. nullopt for anything else (the query then pages by offset).
std::optional<Cookie> ParseCookie(std::string_view s) {
  s = Trim(s);
  if (!s.starts_with("<cookie ") || !s.ends_with("</cookie>")) return std::nullopt;
  size_t head_end = s.find('>');
  std::map<std::string, std::string, std::less<>> head;
  if (!TagAttributes(s.substr(8, head_end - 8), head)) return std::nullopt;
  Cookie c;
  auto page = head.find("page");
  if (page == head.end()) return std::nullopt;
  auto r = std::from_chars(page->second.data(), page->second.data() + page->second.size(), c.page);
  if (r.ec != std::errc() || r.ptr != page->second.data() + page->second.size()) return std::nullopt;
  size_t pos = head_end + 1;
  const size_t body_end = s.size() - 9;
  while (pos < body_end) {
    if (s[pos] != '<') return std::nullopt;
    size_t end = s.find("/>", pos);
    if (end == std::string_view::npos || end > body_end) return std::nullopt;
    std::string_view tag = Trim(s.substr(pos + 1, end - pos - 1));
    size_t sp = tag.find(' ');
    CookieKey key{std::string(tag.substr(0, sp)), std::nullopt};
    std::map<std::string, std::string, std::less<>> attrs;
    if (sp != std::string_view::npos && !TagAttributes(tag.substr(sp), attrs)) return std::nullopt;
    if (auto last = attrs.find("last"); last != attrs.end()) key.last = last->second;
    c.keys.push_back(std::move(key));
    pos = end + 2;
  }
  return c;
}

// ---------------------------------------------------------------------------------------------
// The query plan

// The entity or a link-entity.
struct Node {
  const Table* table = nullptr;
  std::string sql;                  // SQL alias: t0, l1, l2, …
  std::string name;                 // the fetch alias, or the generated "{name}{N}"; empty for the entity
  const FetchLink* link = nullptr;  // null for the entity
  Node* parent = nullptr;
  std::vector<Node*> children;                     // body links (joins and exists/in), in order
  std::map<const FetchLink*, Node*> filter_links;  // links inside this node's filters
  const Column* from = nullptr;                    // on this node's table
  const Column* to = nullptr;                      // on the parent's table
  bool placed = false;                             // in the FROM clause being written (may be referenced)
  const std::optional<FetchFilter>* filter = nullptr;
  const std::vector<FetchAttribute>* attributes = nullptr;
  const std::vector<FetchOrder>* orders = nullptr;
  bool all_attributes = false;
};

// An output column and where its value sits in the SQL row.
struct Slot {
  int index = -1;
  int type_index = -1;
  std::string expr;  // its SQL expression (for ORDER BY/GROUP BY)
};

struct OrderKey {
  std::string sql;
  const Column* column;
  bool desc;
  std::string name;  // the attribute, for the paging cookie
};

class FetchPlanner {
 public:
  FetchPlanner(const catalog::Catalog& cat, const CallerContext& caller, const FetchQuery& q, const FetchOptions& o)
      : cat_(cat), caller_(caller), q_(q), o_(o) {}

  Result<FetchResult> Run(storage::Connection& conn) {
    conn_ = &conn;
    const Table* table = cat_.FindTable(q_.entity);
    if (!table) return NoEntity(q_.entity);
    Node& root = nodes_.emplace_back();
    root.table = table;
    root.sql = "t0";
    root.filter = &q_.filter;
    root.attributes = &q_.attributes;
    root.orders = &q_.orders;
    root.all_attributes = q_.all_attributes;
    RETURN_IF_ERROR(BindBody(root, q_.links, q_.filter));
    result_.table = table;
    result_.aggregate = q_.aggregate;
    result_.distinct = q_.distinct && !q_.aggregate;
    return q_.aggregate ? RunAggregate(conn, root) : RunRows(conn, root);
  }

 private:
  // ---- Binding -------------------------------------------------------------------------------

  Result<const Column*> Attribute(const Table& t, std::string_view name) const {
    const Column* c = t.FindColumn(name);
    if (!c) return NoAttribute(t, name);
    // A secured column the caller cannot read cannot be selected, filtered, sorted or aggregated.
    RETURN_IF_ERROR(CheckField(caller_, t, *c, security::kFieldRead));
    return c;
  }

  Status BindBody(Node& n, const std::vector<FetchLink>& links, const std::optional<FetchFilter>& filter) {
    for (const FetchLink& l : links) {
      ASSIGN_OR_RETURN(Node * c, BindLink(n, l));
      n.children.push_back(c);
    }
    if (filter) RETURN_IF_ERROR(BindFilterLinks(n, *filter));
    return Status::Ok();
  }

  Status BindFilterLinks(Node& n, const FetchFilter& f) {
    for (const FetchLink& l : f.links) {
      ASSIGN_OR_RETURN(Node * c, BindLink(n, l));
      n.filter_links[&l] = c;
    }
    for (const FetchFilter& sub : f.filters) RETURN_IF_ERROR(BindFilterLinks(n, sub));
    return Status::Ok();
  }

  Result<Node*> BindLink(Node& parent, const FetchLink& l) {
    if (++links_ > kMaxFetchLinks)
      return QueryError("Number of link entities in query exceeded maximum limit: a query can have at most " +
                        std::to_string(kMaxFetchLinks) + " link-entity elements.");
    const Table* table = cat_.FindTable(l.name);
    if (!table) return NoEntity(l.name);
    Node& n = nodes_.emplace_back();
    n.table = table;
    n.sql = "l" + std::to_string(links_);
    n.name = l.alias.empty() ? l.name + std::to_string(links_) : l.alias;
    n.link = &l;
    n.parent = &parent;
    n.filter = &l.filter;
    n.attributes = &l.attributes;
    n.orders = &l.orders;
    n.all_attributes = l.all_attributes;
    by_name_.emplace(n.name, &n);
    RETURN_IF_ERROR(ResolveJoin(parent, n, l));
    RETURN_IF_ERROR(BindBody(n, l.links, l.filter));
    return &n;
  }

  // The single lookup of `from_table` that points at `to_table` (for intersect tables: the
  // relationship column of that side); null when there is none or more than one.
  const Column* LookupTo(const Table& from_table, const Table& to_table) const {
    const Column* found = nullptr;
    int count = 0;
    for (const auto& c : from_table.columns) {
      if (!c->IsLookup()) continue;
      if (std::find(c->targets.begin(), c->targets.end(), to_table.logical_name) == c->targets.end()) continue;
      found = c.get();
      ++count;
    }
    if (from_table.is_intersect) {
      for (const auto& r : cat_.relationships()) {
        if (r->intersect_entity != from_table.logical_name) continue;
        if (r->entity1 == to_table.logical_name) {
          found = from_table.FindColumn(r->entity1_attribute);
          ++count;
        }
        if (r->entity2 == to_table.logical_name && r->entity2 != r->entity1) {
          found = from_table.FindColumn(r->entity2_attribute);
          ++count;
        }
      }
    }
    return count == 1 ? found : nullptr;
  }

  // from/to of a link; inferred from the relationship between the two tables when omitted.
  Status ResolveJoin(const Node& parent, Node& n, const FetchLink& l) {
    const Table& p = *parent.table;
    const Table& t = *n.table;
    const Column* from = nullptr;
    const Column* to = nullptr;
    if (!l.from.empty()) {
      ASSIGN_OR_RETURN(from, Attribute(t, l.from));
    }
    if (!l.to.empty()) {
      ASSIGN_OR_RETURN(to, Attribute(p, l.to));
    }
    auto points_at = [](const Column* c, const Table& target) {
      return c && c->IsLookup() &&
             std::find(c->targets.begin(), c->targets.end(), target.logical_name) != c->targets.end();
    };
    if (to && !from) {
      if (points_at(to, t))
        from = t.PrimaryId();
      else if (to->is_primary_id)
        from = LookupTo(t, p);
    } else if (from && !to) {
      if (points_at(from, p))
        to = p.PrimaryId();
      else if (from->is_primary_id)
        to = LookupTo(p, t);
    } else if (!from && !to) {
      if (const Column* c = LookupTo(p, t)) {
        to = c;
        from = t.PrimaryId();
      } else if (const Column* d = LookupTo(t, p)) {
        from = d;
        to = p.PrimaryId();
      }
    }
    if (!from || !to)
      return QueryError("The link-entity '" + l.name +
                        "' needs its 'from' and 'to' attributes: no single relationship between '" + p.logical_name +
                        "' and '" + t.logical_name + "' tells which columns to join.");
    if (!Comparable(*from, *to))
      return QueryError("The link-entity '" + l.name + "' joins '" + t.logical_name + "." + from->logical_name +
                        "' with '" + p.logical_name + "." + to->logical_name + "', whose types differ.");
    n.from = from;
    n.to = to;
    return Status::Ok();
  }

  // The node a condition's entityname (or a valueof prefix) names, among those the SQL written so
  // far can refer to.
  Result<Node*> Named(std::string_view name) {
    auto it = by_name_.find(std::string(name));
    if (it == by_name_.end()) {
      // A link without an alias may also be named by its table, when that is unambiguous.
      Node* only = nullptr;
      int count = 0;
      for (Node& n : nodes_)
        if (n.link && n.link->alias.empty() && n.link->name == name && n.placed) {
          only = &n;
          ++count;
        }
      if (count == 1) return only;
      return QueryError("No link-entity has the alias '" + std::string(name) + "' (used in entityname or valueof).");
    }
    if (!it->second->placed)
      return QueryError("The link-entity '" + std::string(name) +
                        "' can't be referenced here: a condition can use the entity and the link-entities joined "
                        "before it, in the same query or subquery.");
    return it->second;
  }

  // ---- SQL pieces ----------------------------------------------------------------------------

  // The one place a table enters the SQL ("account" t0). Row-level security adds its predicate
  // for the alias here.
  static std::string TableSource(const Table& t, const std::string& alias) { return Q(t.sql_table) + " " + alias; }

  static void And(SqlFragment& out, bool& first) {
    if (!first) out.sql += " AND ";
    first = false;
  }

  Status AppendCondition(const FetchCondition& c, Node& owner, SqlFragment& out) {
    Node* n = &owner;
    if (!c.entityname.empty()) {
      ASSIGN_OR_RETURN(n, Named(c.entityname));
    }
    ASSIGN_OR_RETURN(const Column* col, Attribute(*n->table, c.attribute));
    if (c.valueof.empty()) {
      ASSIGN_OR_RETURN(ExprPtr e, ConditionExpr(c, *col));
      return AppendFilterSql(cat_, *n->table, *e, n->sql, out, &caller_, o_.now);
    }
    // valueof: another column of the same row, "attribute" or "alias.attribute".
    Node* other = n;
    std::string name = c.valueof;
    if (auto dot = name.find('.'); dot != std::string::npos) {
      ASSIGN_OR_RETURN(other, Named(name.substr(0, dot)));
      name = name.substr(dot + 1);
    }
    ASSIGN_OR_RETURN(const Column* rc, Attribute(*other->table, name));
    auto op = c.op == "eq"                    ? CompareOp::kEq
              : c.op == "ne" || c.op == "neq" ? CompareOp::kNe
              : c.op == "gt"                  ? CompareOp::kGt
              : c.op == "ge"                  ? CompareOp::kGe
              : c.op == "lt"                  ? CompareOp::kLt
                                              : CompareOp::kLe;
    if (other == n) return AppendFilterSql(cat_, *n->table, *Compare(Prop(*col), op, Prop(*rc)), n->sql, out, &caller_);
    if (!Comparable(*col, *rc))
      return QueryError("Cannot compare '" + col->logical_name + "' with '" + c.valueof + "': the types differ.");
    static constexpr const char* kOps[] = {" = ", " <> ", " > ", " >= ", " < ", " <= "};
    out.sql += "(" + Col(n->sql, *col) + (IsText(*col) ? " COLLATE NOCASE" : "") + kOps[static_cast<int>(op)] +
               Col(other->sql, *rc) + ")";
    return Status::Ok();
  }

  // Appends `items` joined with `joiner`, parenthesized as a balanced tree: SQLite limits the
  // depth of an expression (1000), and a flat chain of N terms is N deep.
  static void AppendBalanced(std::vector<SqlFragment>& items, size_t lo, size_t hi, const char* joiner,
                             SqlFragment& out) {
    if (hi - lo == 1) {
      out.sql += items[lo].sql;
      for (auto& p : items[lo].params) out.params.push_back(std::move(p));
      return;
    }
    size_t mid = lo + (hi - lo) / 2;
    out.sql += "(";
    AppendBalanced(items, lo, mid, joiner, out);
    out.sql += joiner;
    AppendBalanced(items, mid, hi, joiner, out);
    out.sql += ")";
  }

  Status AppendFilter(const FetchFilter& f, Node& owner, SqlFragment& out) {
    std::vector<SqlFragment> items;
    for (const FetchCondition& c : f.conditions) RETURN_IF_ERROR(AppendCondition(c, owner, items.emplace_back()));
    for (const FetchFilter& sub : f.filters) RETURN_IF_ERROR(AppendFilter(sub, owner, items.emplace_back()));
    for (const FetchLink& l : f.links) {
      SqlFragment& item = items.emplace_back();
      Node& n = *owner.filter_links.at(&l);
      // any: a related row matches; not any: none does; all: related rows exist and none of them
      // matches the link's filters; not all: the same as any (Dataverse's definitions).
      if (l.link_type == "not any") {
        item.sql += "NOT ";
        RETURN_IF_ERROR(AppendExists(n, item, true));
      } else if (l.link_type == "all") {
        item.sql += "(";
        RETURN_IF_ERROR(AppendExists(n, item, false));
        item.sql += " AND NOT ";
        RETURN_IF_ERROR(AppendExists(n, item, true));
        item.sql += ")";
      } else {
        RETURN_IF_ERROR(AppendExists(n, item, true));
      }
    }
    if (items.empty()) {
      out.sql += "(1)";
      return Status::Ok();
    }
    out.sql += "(";
    AppendBalanced(items, 0, items.size(), f.is_or ? " OR " : " AND ", out);
    out.sql += ")";
    return Status::Ok();
  }

  // The conditions that restrict the rows of `n`: its filter and its exists/in links, each
  // preceded by " AND " unless `first`.
  Status AppendRestrictions(Node& n, SqlFragment& out, bool& first) {
    // Only rows the caller may read, for the entity and every link (in an outer link's ON, an
    // unreadable row leaves the link's columns null).
    // The root entity's in the shape that suits how many rows the caller reaches (access.h).
    std::optional<std::string> row_filter;
    if (n.parent == nullptr && conn_) {
      const int64_t wanted = q_.top.value_or(q_.count.value_or(kMaxFetchPageSize));
      ASSIGN_OR_RETURN(row_filter, CollectionRowFilter(*conn_, caller_, *n.table, security::Verb::kRead, n.sql, wanted,
                                                       *n.filter || !n.children.empty() || o_.filter, out.params));
    } else {
      ASSIGN_OR_RETURN(row_filter, RowFilter(caller_, *n.table, security::Verb::kRead, n.sql));
    }
    if (row_filter) {
      And(out, first);
      out.sql += *row_filter;
    }
    if (*n.filter) {
      And(out, first);
      RETURN_IF_ERROR(AppendFilter(**n.filter, n, out));
    }
    for (Node* c : n.children) {
      if (IsJoinType(c->link->link_type)) continue;
      And(out, first);
      RETURN_IF_ERROR(AppendExists(*c, out, true));
    }
    return Status::Ok();
  }

  // EXISTS (SELECT 1 FROM <n's table> <n's joins> WHERE <n.from = parent.to> [AND <restrictions>]).
  // Without `restricted`, only the relation to the parent and the caller's read access count
  // (link-type all), so rows the caller may not read are not seen either way.
  Status AppendExists(Node& n, SqlFragment& out, bool restricted) {
    out.sql += "EXISTS (SELECT 1 FROM " + TableSource(*n.table, n.sql);
    n.placed = true;
    if (restricted) RETURN_IF_ERROR(AppendJoins(n, out));
    out.sql += " WHERE " + Col(n.sql, *n.from) + " = " + Col(n.parent->sql, *n.to);
    bool first = false;
    if (restricted) {
      RETURN_IF_ERROR(AppendRestrictions(n, out, first));
    } else {
      ASSIGN_OR_RETURN(auto row_filter, RowFilter(caller_, *n.table, security::Verb::kRead, n.sql));
      if (row_filter) out.sql += " AND " + *row_filter;
    }
    out.sql += ")";
    Unplace(n);
    return Status::Ok();
  }

  static void Unplace(Node& n) {
    n.placed = false;
    for (Node* c : n.children) Unplace(*c);
  }

  // The JOINs of n's join links, and theirs, in order.
  Status AppendJoins(Node& n, SqlFragment& from) {
    for (Node* c : n.children) {
      const std::string& type = c->link->link_type;
      if (!IsJoinType(type)) continue;
      from.sql += type == "outer" ? " LEFT JOIN " : " JOIN ";
      from.sql += TableSource(*c->table, c->sql) + " ON ";
      c->placed = true;
      bool first = false;
      if (type == "matchfirstrowusingcrossapply") {
        // The first related row only: join on the id of the first row that matches.
        const Column& pk = *c->table->PrimaryId();
        std::string outer = c->sql;
        c->sql = outer + "m";
        from.sql += Col(outer, pk) + " = (SELECT " + Col(c->sql, pk) + " FROM " + TableSource(*c->table, c->sql) +
                    " WHERE " + Col(c->sql, *c->from) + " = " + Col(n.sql, *c->to);
        Status s = AppendRestrictions(*c, from, first);
        from.sql += " ORDER BY " + Col(c->sql, pk) + " LIMIT 1)";
        c->sql = outer;
        RETURN_IF_ERROR(s);
      } else {
        from.sql += Col(c->sql, *c->from) + " = " + Col(n.sql, *c->to);
        RETURN_IF_ERROR(AppendRestrictions(*c, from, first));
      }
      RETURN_IF_ERROR(AppendJoins(*c, from));
    }
    return Status::Ok();
  }

  // FROM … JOIN … [WHERE <restrictions of the entity and the extra filter>]; `has_where` tells
  // whether a WHERE clause was written.
  Status AppendFromWhere(Node& root, SqlFragment& out, bool& has_where) {
    out.sql += " FROM " + TableSource(*root.table, root.sql);
    root.placed = true;
    RETURN_IF_ERROR(AppendJoins(root, out));
    SqlFragment where;
    bool first = true;
    RETURN_IF_ERROR(AppendRestrictions(root, where, first));
    if (o_.filter) {
      And(where, first);
      RETURN_IF_ERROR(AppendFilterSql(cat_, *root.table, *o_.filter, root.sql, where, &caller_, o_.now));
    }
    has_where = !first;
    if (has_where) {
      out.sql += " WHERE " + where.sql;
      for (auto& p : where.params) out.params.push_back(std::move(p));
    }
    return Status::Ok();
  }

  // The join nodes in output order: the entity, then its join links depth-first.
  void JoinNodes(Node& n, std::vector<Node*>& out) {
    out.push_back(&n);
    for (Node* c : n.children)
      if (IsJoinType(c->link->link_type)) JoinNodes(*c, out);
  }

  // Whether every join of the query keeps one row per entity row (N:1 joins on the linked
  // table's primary id), so that the entity's primary id orders rows uniquely.
  static bool JoinsAreToOne(const Node& n) {
    for (const Node* c : n.children) {
      if (!IsJoinType(c->link->link_type)) continue;
      if (c->link->link_type != "matchfirstrowusingcrossapply" && !c->from->is_primary_id) return false;
      if (!JoinsAreToOne(*c)) return false;
    }
    return true;
  }

  void AddSelect(std::string& list, const std::string& expr) {
    list += (list.empty() ? "" : ", ") + expr;
    ++select_count_;
  }

  // Adds an output column reading `col` of node `n`.
  Slot ColumnSlot(std::string& list, const Node& n, const Column& col) {
    Slot s;
    s.expr = Col(n.sql, col);
    s.index = select_count_;
    AddSelect(list, s.expr);
    if (col.IsPolymorphic()) {
      s.type_index = select_count_;
      AddSelect(list, n.sql + "." + Q(col.sql_name + "_type"));
    }
    return s;
  }

  Status AddOutput(FetchColumn fc, Slot slot) {
    for (const FetchColumn& e : result_.columns)
      if (e.name == fc.name) {
        if (e.column == fc.column && e.table == fc.table && e.aggregate == fc.aggregate &&
            e.dategrouping == fc.dategrouping && !q_.aggregate)
          return Status::Ok();  // the same attribute twice
        return QueryError("The name '" + fc.name + "' is used for more than one attribute of the query.");
      }
    result_.columns.push_back(std::move(fc));
    slots_.push_back(std::move(slot));
    return Status::Ok();
  }

  // ---- Rows ----------------------------------------------------------------------------------

  Result<FetchResult> RunRows(storage::Connection& conn, Node& root) {
    const bool distinct = result_.distinct;
    const Column& pk = *root.table->PrimaryId();
    const Column* version = root.table->FindColumn("versionnumber");
    std::string list;
    if (!distinct) {
      AddSelect(list, Col(root.sql, pk));
      AddSelect(list, version ? Col(root.sql, *version) : "0");
    }
    std::vector<Node*> joined;
    JoinNodes(root, joined);
    for (Node* n : joined) {
      std::vector<FetchAttribute> attrs;
      if (n->all_attributes) {
        for (const auto& c : n->table->columns)
          if (c->valid_for_read && (FieldRights(caller_, *n->table, *c) & security::kFieldRead))
            attrs.push_back(FetchAttribute{c->logical_name, "", "", false, "", false});
      }
      attrs.insert(attrs.end(), n->attributes->begin(), n->attributes->end());
      if (n == &root && !distinct && std::none_of(attrs.begin(), attrs.end(), [&](const FetchAttribute& a) {
            return a.name == pk.logical_name && a.alias.empty();
          }))
        attrs.push_back(FetchAttribute{pk.logical_name, "", "", false, "", false});
      for (const FetchAttribute& a : attrs) {
        ASSIGN_OR_RETURN(const Column* col, Attribute(*n->table, a.name));
        FetchColumn fc;
        fc.table = n->table;
        fc.column = col;
        fc.aliased = n != &root || !a.alias.empty();
        fc.name = !a.alias.empty() ? a.alias : n == &root ? col->logical_name : n->name + "." + col->logical_name;
        RETURN_IF_ERROR(AddOutput(std::move(fc), ColumnSlot(list, *n, *col)));
      }
    }

    // ORDER BY: the entity's orders, then the link-entities', then a tiebreaker.
    std::vector<OrderKey> keys;
    bool root_orders_only = true;
    for (Node* n : joined) {
      for (const FetchOrder& o : *n->orders) {
        if (!o.alias.empty()) {
          auto it = std::find_if(result_.columns.begin(), result_.columns.end(),
                                 [&](const FetchColumn& c) { return c.aliased && c.name == o.alias; });
          if (it == result_.columns.end())
            return QueryError("The order alias '" + o.alias + "' is not the alias of an attribute of the query.");
          keys.push_back(OrderKey{slots_[it - result_.columns.begin()].expr, it->column, o.descending, ""});
          root_orders_only = false;
          continue;
        }
        ASSIGN_OR_RETURN(const Column* col, Attribute(*n->table, o.attribute));
        keys.push_back(OrderKey{Col(n->sql, *col), col, o.descending, col->logical_name});
        root_orders_only &= n == &root;
      }
    }
    if (distinct) {
      for (const Slot& s : slots_) keys.push_back(OrderKey{s.expr, nullptr, false, ""});
    } else {
      keys.push_back(OrderKey{Col(root.sql, pk), &pk, false, pk.logical_name});
    }

    const int64_t page = q_.page.value_or(1);
    const int64_t size =
        q_.top ? *q_.top
               : std::clamp<int64_t>(q_.count.value_or(o_.page_size.value_or(kMaxFetchPageSize)), 1, kMaxFetchPageSize);
    // Keyset paging needs a unique, fully known order: the entity's own columns and its id, over
    // joins that keep one row per record.
    const bool keyset =
        !distinct && !q_.top && root_orders_only && JoinsAreToOne(root) && keys.size() <= kMaxKeysetKeys;
    const int key_base = select_count_;
    if (keyset)
      for (const OrderKey& k : keys) AddSelect(list, k.sql);

    SqlFragment sql;
    sql.sql = std::string("SELECT ") + (distinct ? "DISTINCT " : "") + list;
    bool has_where = false;
    RETURN_IF_ERROR(AppendFromWhere(root, sql, has_where));
    const SqlFragment base = sql;  // for the total count

    int64_t offset = 0;
    bool after_cookie = false;
    if (!q_.top && page > 1) {
      std::optional<Cookie> cookie = keyset ? ParseCookie(q_.paging_cookie) : std::nullopt;
      if (cookie && cookie->page == page - 1 && CookieMatches(*cookie, keys)) {
        SqlFragment after;
        if (AppendAfter(keys, *cookie, after)) {
          sql.sql += (has_where ? " AND " : " WHERE ") + after.sql;
          for (auto& p : after.params) sql.params.push_back(std::move(p));
          after_cookie = true;
        }
      }
      if (!after_cookie) {
        if ((page - 1) * size + size > kFetchSimplePagingLimit)
          return Status(Code::kInvalidArgument,
                        "Page " + std::to_string(page) + " of " + std::to_string(size) +
                            " records is beyond the 50,000 records that can be read by page number alone; pass the "
                            "paging cookie of the previous page.",
                        kErrPagingLimit);
        offset = (page - 1) * size;
      }
    }
    sql.sql += " ORDER BY ";
    for (size_t i = 0; i < keys.size(); ++i) sql.sql += (i ? ", " : "") + keys[i].sql + (keys[i].desc ? " DESC" : "");
    sql.sql += " LIMIT " + std::to_string(q_.top ? size : size + 1);
    if (offset) sql.sql += " OFFSET " + std::to_string(offset);

    std::vector<std::optional<std::string>> first_keys, last_keys;
    RETURN_IF_ERROR(conn.Query(sql.sql, sql.params, [&](const storage::Row& r) {
      if (static_cast<int64_t>(result_.rows.size()) == size) {
        result_.more_records = true;
        return false;
      }
      FetchRow row;
      if (!distinct) {
        row.id = Guid::Parse(r.Text(0));
        row.version = r.is_null(1) ? 0 : r.Int(1);
      }
      row.values.reserve(slots_.size());
      for (size_t i = 0; i < slots_.size(); ++i)
        row.values.push_back(FromSql(*result_.columns[i].column, r, slots_[i].index, slots_[i].type_index));
      result_.rows.push_back(std::move(row));
      if (keyset) {
        last_keys.clear();
        for (size_t i = 0; i < keys.size(); ++i) {
          int idx = key_base + static_cast<int>(i);
          last_keys.push_back(r.is_null(idx) ? std::nullopt
                                             : std::optional(EncodeCookieValue(FromSql(*keys[i].column, r, idx))));
        }
        if (first_keys.empty()) first_keys = last_keys;
      }
      return true;
    }));
    result_.page = page;
    if (result_.more_records) {
      // The cookie the next request passes back; without keys (offset paging) it only counts pages.
      std::string c = "<cookie page=\"" + std::to_string(page) + "\">";
      if (keyset) {
        for (size_t i = 0; i < keys.size(); ++i) {
          c += "<" + keys[i].name;
          if (last_keys[i]) c += " last=\"" + *last_keys[i] + "\"";
          if (first_keys[i]) c += " first=\"" + *first_keys[i] + "\"";
          c += " />";
        }
      }
      c += "</cookie>";
      result_.paging_cookie = std::move(c);
    }
    if (q_.returntotalrecordcount) {
      std::string count_sql =
          "SELECT count(*) FROM (" + base.sql + " LIMIT " + std::to_string(kFetchTotalCountLimit + 1) + ")";
      int64_t n = 0;
      RETURN_IF_ERROR(conn.Query(count_sql, base.params, [&](const storage::Row& r) {
        n = r.Int(0);
        return false;
      }));
      result_.total_record_count = std::min(n, kFetchTotalCountLimit);
      result_.total_record_count_limit_exceeded = n > kFetchTotalCountLimit;
    }
    return std::move(result_);
  }

  static bool CookieMatches(const Cookie& c, const std::vector<OrderKey>& keys) {
    if (c.keys.size() != keys.size()) return false;
    for (size_t i = 0; i < keys.size(); ++i)
      if (c.keys[i].name != keys[i].name) return false;
    return true;
  }

  // The keyset condition "the row sorts after the cookie's last row". SQLite sorts nulls first.
  // False when a value does not fit its column (the cookie is then ignored).
  static bool AppendAfter(const std::vector<OrderKey>& keys, const Cookie& cookie, SqlFragment& out) {
    std::vector<std::optional<storage::SqlValue>> values;
    for (size_t i = 0; i < keys.size(); ++i) {
      if (!cookie.keys[i].last) {
        values.emplace_back(std::nullopt);
        continue;
      }
      auto v = DecodeCookieValue(*keys[i].column, *cookie.keys[i].last);
      if (!v) return false;
      values.emplace_back(std::move(v));
    }
    // after(i) = strictly after on key i, or equal on key i and after(i + 1).
    std::function<void(size_t)> after = [&](size_t i) {
      const OrderKey& k = keys[i];
      const auto& v = values[i];
      out.sql += "(";
      if (!v) {
        out.sql += k.desc ? "0" : k.sql + " IS NOT NULL";
      } else if (k.desc) {
        out.sql += "(" + k.sql + " < ? OR " + k.sql + " IS NULL)";
        out.params.push_back(*v);
      } else {
        out.sql += k.sql + " > ?";
        out.params.push_back(*v);
      }
      if (i + 1 < keys.size()) {
        out.sql += " OR (";
        if (!v) {
          out.sql += k.sql + " IS NULL";
        } else {
          out.sql += k.sql + " = ?";
          out.params.push_back(*v);
        }
        out.sql += " AND ";
        after(i + 1);
        out.sql += ")";
      }
      out.sql += ")";
    };
    after(0);
    return true;
  }

  // ---- Aggregates ----------------------------------------------------------------------------

  // The date part of `expr` (milliseconds, or days for DateOnly) as an integer, in UTC. Weeks
  // count from 1 and start on Sunday (week 1 holds 1 January); the fiscal year is the calendar
  // year and the fiscal period its quarter.
  static std::string DatePart(const Column& col, const std::string& expr, const std::string& part) {
    std::string secs =
        col.behavior == catalog::DateBehavior::kDateOnly ? "(" + expr + " * 86400)" : "(" + expr + " / 1000.0)";
    auto fmt = [&](const char* f, const char* modifier = "") {
      return std::string("CAST(strftime('") + f + "', " + secs + ", 'unixepoch'" + modifier + ") AS INTEGER)";
    };
    if (part == "year" || part == "fiscal-year") return fmt("%Y");
    if (part == "month") return fmt("%m");
    if (part == "day") return fmt("%d");
    if (part == "quarter" || part == "fiscal-period") return "((" + fmt("%m") + " + 2) / 3)";
    // week
    return "((" + fmt("%j") + " - 1 + " + fmt("%w", ", 'start of year'") + ") / 7 + 1)";
  }

  Status AggregateError(const FetchAttribute& a, const Column& col, std::string_view what) const {
    return QueryError("The attribute '" + a.name + "' of type '" + std::string(catalog::ColumnTypeName(col.type)) +
                      "' can't be used with " + std::string(what) + ".");
  }

  Result<FetchResult> RunAggregate(storage::Connection& conn, Node& root) {
    std::string list;
    std::vector<std::string> group_by;
    std::vector<Node*> joined;
    JoinNodes(root, joined);
    for (Node* n : joined) {
      if (n->all_attributes) return QueryError("all-attributes can't be used in an aggregate query.");
      for (const FetchAttribute& a : *n->attributes) {
        ASSIGN_OR_RETURN(const Column* col, Attribute(*n->table, a.name));
        FetchColumn fc;
        fc.name = a.alias;
        fc.table = n->table;
        fc.column = col;
        fc.aliased = true;
        fc.aggregate = a.aggregate;
        fc.groupby = a.groupby;
        fc.dategrouping = a.dategrouping;
        Slot s;
        const std::string expr = Col(n->sql, *col);
        if (a.groupby) {
          if (!a.dategrouping.empty()) {
            if (col->type != ColumnType::kDateTime) return AggregateError(a, *col, "dategrouping");
            s.expr = DatePart(*col, expr, a.dategrouping);
            s.index = select_count_;
            AddSelect(list, s.expr);
            group_by.push_back(s.expr);
          } else {
            s = ColumnSlot(list, *n, *col);
            group_by.push_back(s.expr);
            if (s.type_index >= 0) group_by.push_back(n->sql + "." + Q(col->sql_name + "_type"));
          }
        } else {
          const std::string arg = (a.distinct ? "DISTINCT " : "") + expr;
          const std::string& f = a.aggregate;
          if (f == "count") {
            s.expr = a.distinct ? "COUNT(" + arg + ")" : "COUNT(*)";
          } else if (f == "countcolumn") {
            s.expr = "COUNT(" + arg + ")";
          } else if (f == "sum" || f == "avg") {
            if (!IsNumber(*col)) return AggregateError(a, *col, "the aggregate '" + f + "'");
            if (f == "sum")
              s.expr = col->type == ColumnType::kBigInt ? "TOTAL(" + arg + ")" : "SUM(" + arg + ")";
            else
              s.expr = IsWholeNumber(*col) ? "CAST(AVG(" + arg + ") AS INTEGER)" : "AVG(" + arg + ")";
          } else {  // min, max
            if (!IsNumber(*col) && col->type != ColumnType::kDateTime)
              return AggregateError(a, *col, "the aggregate '" + f + "'");
            s.expr = (f == "min" ? "MIN(" : "MAX(") + arg + ")";
          }
          s.index = select_count_;
          AddSelect(list, s.expr);
        }
        RETURN_IF_ERROR(AddOutput(std::move(fc), std::move(s)));
      }
    }
    if (result_.columns.empty()) return QueryError("An aggregate query needs at least one attribute.");
    // How many rows the aggregate covers, for AggregateQueryRecordLimit.
    const int total_index = select_count_;
    AddSelect(list, "SUM(COUNT(*)) OVER ()");

    std::vector<std::string> order;
    for (Node* n : joined) {
      for (const FetchOrder& o : *n->orders) {
        size_t i = 0;
        for (; i < result_.columns.size(); ++i) {
          const FetchColumn& c = result_.columns[i];
          if (!o.alias.empty()
                  ? c.name == o.alias
                  : c.groupby && c.dategrouping.empty() && c.table == n->table && c.column->logical_name == o.attribute)
            break;
        }
        if (i == result_.columns.size())
          return QueryError(
              !o.alias.empty()
                  ? "The order alias '" + o.alias + "' is not the alias of an attribute of the query."
                  : "In an aggregate query an order must name the alias of an attribute (<order alias=\"…\" "
                    "/>) or a groupby attribute; '" +
                        o.attribute + "' is neither.");
        order.push_back(slots_[i].expr + (o.descending ? " DESC" : ""));
      }
    }
    for (const std::string& g : group_by) order.push_back(g);

    SqlFragment sql;
    sql.sql = "SELECT " + list;
    bool has_where = false;
    RETURN_IF_ERROR(AppendFromWhere(root, sql, has_where));
    for (size_t i = 0; i < group_by.size(); ++i) sql.sql += (i ? ", " : " GROUP BY ") + group_by[i];
    for (size_t i = 0; i < order.size(); ++i) sql.sql += (i ? ", " : " ORDER BY ") + order[i];
    const int64_t page = q_.page.value_or(1);
    const int64_t size =
        q_.top ? *q_.top
               : std::clamp<int64_t>(q_.count.value_or(o_.page_size.value_or(kMaxFetchPageSize)), 1, kMaxFetchPageSize);
    if (!q_.top && (page - 1) * size + size > kFetchSimplePagingLimit)
      return Status(Code::kInvalidArgument,
                    "Page " + std::to_string(page) + " of " + std::to_string(size) +
                        " groups is beyond the 50,000 records that can be read by page number.",
                    kErrPagingLimit);
    sql.sql += " LIMIT " + std::to_string(q_.top ? size : size + 1);
    if (!q_.top && page > 1) sql.sql += " OFFSET " + std::to_string((page - 1) * size);

    int64_t covered = 0;
    RETURN_IF_ERROR(conn.Query(sql.sql, sql.params, [&](const storage::Row& r) {
      covered = std::max<int64_t>(covered, r.is_null(total_index) ? 0 : r.Int(total_index));
      if (static_cast<int64_t>(result_.rows.size()) == size) {
        result_.more_records = true;
        return false;
      }
      FetchRow row;
      for (size_t i = 0; i < slots_.size(); ++i) {
        const FetchColumn& c = result_.columns[i];
        const Slot& s = slots_[i];
        if (r.is_null(s.index))
          row.values.emplace_back(std::monostate{});
        else if (c.IsInteger())
          row.values.emplace_back(r.Int(s.index));
        else
          row.values.push_back(FromSql(*c.column, r, s.index, s.type_index));
      }
      result_.rows.push_back(std::move(row));
      return true;
    }));
    if (covered > o_.aggregate_record_limit)
      return Status(Code::kInvalidArgument,
                    "AggregateQueryRecordLimit exceeded: the aggregate covers more than " +
                        std::to_string(o_.aggregate_record_limit) + " records. Reduce the number of records.",
                    kErrAggregateLimit);
    result_.page = page;
    return std::move(result_);
  }

  const catalog::Catalog& cat_;
  const CallerContext& caller_;
  const FetchQuery& q_;
  const FetchOptions& o_;
  std::deque<Node> nodes_;
  std::map<std::string, Node*> by_name_;
  int links_ = 0;
  int select_count_ = 0;
  storage::Connection* conn_ = nullptr;  // the query's, while Run runs
  std::vector<Slot> slots_;
  FetchResult result_;
};

}  // namespace

Result<FetchResult> ExecuteFetch(OrganizationService& svc, const CallerContext& caller, const FetchQuery& q,
                                 const FetchOptions& options) {
  catalog::CatalogPtr cat = svc.catalog();
  auto conn = svc.engine().Read();
  FetchPlanner planner(*cat, caller, q, options);
  return planner.Run(*conn);
}

}  // namespace tributary::data
