// Read side of the organization service: retrieve, retrieve multiple (paged), count, expand.

#include <charconv>

#include "access.h"
#include "internal.h"
#include "tributary/base/strings.h"

namespace tributary::data {

using catalog::Column;
using catalog::ColumnType;
using catalog::NavProperty;
using catalog::Table;

namespace {

constexpr int kMaxPage = 5000;
constexpr int64_t kCountCap = 5000;

std::string TypeName(const Table& t) { return "Microsoft.Dynamics.CRM." + t.logical_name; }

}  // namespace

const Value* Entity::Get(std::string_view column) const {
  for (const auto& f : fields)
    if (f.column->logical_name == column) return &f.value;
  return nullptr;
}

Result<SelectPlan> PlanSelect(const Table& table, const std::vector<std::string>& select, std::string_view alias,
                              bool lenient) {
  SelectPlan p;
  p.table = &table;
  const Column* pk = table.PrimaryId();
  std::string a(alias);
  p.list = a + "." + Q(pk->sql_name) + ", " + a + "." +
           Q(table.FindColumn("versionnumber") ? "versionnumber" : pk->sql_name);
  int next = 2;
  auto add = [&](const Column* c) {
    for (const Column* e : p.columns)
      if (e == c) return;
    p.columns.push_back(c);
    p.index.push_back(next++);
    p.list += ", " + a + "." + Q(c->sql_name);
    if (c->IsPolymorphic()) {
      p.type_index.push_back(next++);
      p.list += ", " + a + "." + Q(c->sql_name + "_type");
    } else {
      p.type_index.push_back(-1);
    }
  };
  if (select.empty()) {
    for (const auto& c : table.columns)
      if (c->valid_for_read) add(c.get());
    return p;
  }
  bool money = false;
  for (const auto& name : select) {
    const Column* c = table.FindColumn(name);
    if (c && c->IsLookup()) c = nullptr;  // lookups are selected as _x_value
    if (!c) c = table.FindLookupProperty(name);
    if (!c) {
      if (lenient) continue;
      if (table.FindNav(name))
        return QueryError("Could not find a property named '" + name + "' on type '" + TypeName(table) +
                          "'. Navigation properties are read with $expand.");
      return QueryError("Could not find a property named '" + name + "' on type '" + TypeName(table) + "'.");
    }
    money |= c->type == ColumnType::kMoney;
    add(c);
  }
  add(pk);
  if (money)
    if (const Column* cur = table.FindColumn("transactioncurrencyid")) add(cur);
  return p;
}

void HideSecuredColumns(const CallerContext& caller, SelectPlan& plan) {
  if (!caller.principal || caller.principal->system_administrator) return;
  for (size_t i = plan.columns.size(); i-- > 0;) {
    const Column* c = plan.columns[i];
    if (!c->is_secured || (FieldRights(caller, *plan.table, *c) & security::kFieldRead)) continue;
    plan.columns.erase(plan.columns.begin() + static_cast<std::ptrdiff_t>(i));
    plan.index.erase(plan.index.begin() + static_cast<std::ptrdiff_t>(i));
    plan.type_index.erase(plan.type_index.begin() + static_cast<std::ptrdiff_t>(i));
  }
}

Entity ReadEntity(const SelectPlan& plan, const storage::Row& row) {
  Entity e;
  e.table = plan.table;
  if (auto g = Guid::Parse(row.Text(plan.pk_index))) e.id = *g;
  e.version = row.Int(plan.version_index);
  e.fields.reserve(plan.columns.size());
  for (size_t i = 0; i < plan.columns.size(); ++i)
    e.fields.push_back(Field{plan.columns[i], FromSql(*plan.columns[i], row, plan.index[i], plan.type_index[i])});
  return e;
}

Result<KeySql> KeyToSql(const Table& table, const RecordKey& key, std::string_view alias) {
  KeySql k;
  std::string a(alias);
  const Column* pk = table.PrimaryId();
  std::optional<Guid> id = key.id;
  if (!id && key.alternate.size() == 1 && key.alternate[0].first == table.primary_id) {
    const Literal& lit = key.alternate[0].second;
    auto g =
        (lit.kind == Literal::Kind::kGuid || lit.kind == Literal::Kind::kString) ? Guid::Parse(lit.text) : std::nullopt;
    if (!g) return QueryError("The key value '" + lit.text + "' is not a valid GUID for '" + table.primary_id + "'.");
    id = g;
  }
  if (id) {
    k.where = a + "." + Q(pk->sql_name) + " = ?";
    k.params.push_back(id->ToString());
    k.what = id->ToString();
    k.by_id = true;
    k.id = *id;
    return k;
  }
  if (key.alternate.empty())
    return QueryError("A key is required to address a record of '" + table.logical_name + "'.");
  // Map names (column or _x_value) to columns and find the alternate key with exactly these columns.
  std::vector<std::pair<const Column*, const Literal*>> parts;
  for (const auto& [name, lit] : key.alternate) {
    const Column* c = table.FindColumn(name);
    if (!c) c = table.FindLookupProperty(name);
    if (!c) return QueryError("Could not find a property named '" + name + "' on type '" + TypeName(table) + "'.");
    parts.emplace_back(c, &lit);
  }
  const catalog::Key* match = nullptr;
  for (const auto& key_def : table.keys) {
    if (key_def.columns.size() != parts.size()) continue;
    bool all = true;
    for (const auto& [c, lit] : parts) {
      bool found = false;
      for (const auto& kc : key_def.columns) found |= kc == c->logical_name;
      all &= found;
    }
    if (all) {
      match = &key_def;
      break;
    }
  }
  if (!match) {
    std::string names;
    for (const auto& [c, lit] : parts) names += (names.empty() ? "" : ",") + c->logical_name;
    return QueryError("The key attributes (" + names + ") are not a defined alternate key of the entity '" +
                      table.logical_name + "'.");
  }
  for (const auto& [c, lit] : parts) {
    ASSIGN_OR_RETURN(Value v, LiteralToValue(*c, *lit));
    if (IsNull(v)) return QueryError("A key value of '" + c->logical_name + "' cannot be null.");
    if (!k.where.empty()) k.where += " AND ";
    k.where += a + "." + Q(c->sql_name) + " = ?";
    k.params.push_back(ToSql(v));
    if (!k.what.empty()) k.what += ",";
    k.what += c->logical_name + "=" + lit->text;
  }
  return k;
}

Status NotFoundFor(const Table& table, const KeySql& k) {
  if (k.by_id) return NotFound(table.logical_name + " With Id = " + k.what + " Does Not Exist");
  return NotFound("A record with the specified key values does not exist in " + table.logical_name + " entity",
                  err::kRecordNotFoundByEntityKey);
}

namespace {

// ---- Paging cookie (skiptoken) ----------------------------------------------------------------
// Shaped like Dataverse's: <cookie pagenumber="2" pagingcookie="<double-encoded inner>" istracking="False" />
// The inner cookie holds the last row's values of every ORDER BY key (and the primary key):
// <cookie page="1" returned="N"><name last="…"/><accountid last="{…}"/></cookie>; null values carry null="1".

struct CookieKey {
  std::string name;
  bool is_null = false;
  std::string text;
};

struct Cookie {
  int page = 1;
  int64_t returned = 0;
  std::vector<CookieKey> keys;
};

std::string EncodeValue(const Value& v) {
  return std::visit(
      [](const auto& x) -> std::string {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, std::monostate>)
          return "";
        else if constexpr (std::is_same_v<T, bool>)
          return x ? "1" : "0";
        else if constexpr (std::is_same_v<T, int64_t>)
          return std::to_string(x);
        else if constexpr (std::is_same_v<T, double>) {
          std::string s;
          char buf[32];
          auto r = std::to_chars(buf, buf + sizeof buf, x);
          return std::string(buf, r.ptr);
        } else if constexpr (std::is_same_v<T, std::string>)
          return x;
        else if constexpr (std::is_same_v<T, Guid>)
          return "{" + x.ToString() + "}";
        else if constexpr (std::is_same_v<T, Timestamp>)
          return std::to_string(x.ms);
        else if constexpr (std::is_same_v<T, Date>)
          return std::to_string(x.days);
        else
          return "{" + x.id.ToString() + "}";
      },
      v);
}

std::optional<storage::SqlValue> DecodeValue(const Column& c, const std::string& text) {
  auto num = [&](auto& out) {
    auto r = std::from_chars(text.data(), text.data() + text.size(), out);
    return r.ec == std::errc() && r.ptr == text.data() + text.size();
  };
  switch (c.type) {
    case ColumnType::kString:
    case ColumnType::kMemo:
    case ColumnType::kMultiChoice:
      return storage::SqlValue(text);
    case ColumnType::kDecimal:
    case ColumnType::kDouble:
    case ColumnType::kMoney: {
      double d;
      if (!num(d)) return std::nullopt;
      return storage::SqlValue(d);
    }
    case ColumnType::kUniqueIdentifier:
    case ColumnType::kFile:
    case ColumnType::kLookup:
    case ColumnType::kCustomer:
    case ColumnType::kOwner: {
      auto g = Guid::Parse(text);
      if (!g) return std::nullopt;
      return storage::SqlValue(g->ToString());
    }
    default: {
      int64_t i;
      if (!num(i)) return std::nullopt;
      return storage::SqlValue(i);
    }
  }
}

std::string BuildSkiptoken(const Cookie& c) {
  std::string inner =
      "<cookie page=\"" + std::to_string(c.page) + "\" returned=\"" + std::to_string(c.returned) + "\">";
  for (const auto& k : c.keys) {
    inner += "<" + k.name;
    if (k.is_null) {
      inner += " null=\"1\"";
    } else {
      inner += " last=\"";
      AppendXmlEscaped(inner, k.text);
      inner += "\"";
    }
    inner += " />";
  }
  inner += "</cookie>";
  return "<cookie pagenumber=\"" + std::to_string(c.page + 1) + "\" pagingcookie=\"" +
         PercentEncode(PercentEncode(inner)) + "\" istracking=\"False\" />";
}

std::optional<std::string> Attr(std::string_view tag, std::string_view name) {
  std::string needle = " " + std::string(name) + "=\"";
  auto p = tag.find(needle);
  if (p == std::string_view::npos) return std::nullopt;
  p += needle.size();
  auto e = tag.find('"', p);
  if (e == std::string_view::npos) return std::nullopt;
  return std::string(tag.substr(p, e - p));
}

Result<Cookie> ParseSkiptoken(std::string_view token) {
  auto bad = [] { return QueryError("The $skiptoken is not valid; use the @odata.nextLink exactly as returned."); };
  auto pc = Attr(token, "pagingcookie");
  if (!pc) return bad();
  std::string once, twice;
  if (!PercentDecode(*pc, once, false) || !PercentDecode(once, twice, false)) return bad();
  std::string_view inner = twice;
  if (inner.rfind("<cookie ", 0) != 0) return bad();
  Cookie c;
  auto head_end = inner.find('>');
  if (head_end == std::string_view::npos) return bad();
  std::string_view head = inner.substr(0, head_end);
  auto page = Attr(head, "page");
  auto returned = Attr(head, "returned");
  if (!page || !returned) return bad();
  if (std::from_chars(page->data(), page->data() + page->size(), c.page).ec != std::errc()) return bad();
  if (std::from_chars(returned->data(), returned->data() + returned->size(), c.returned).ec != std::errc())
    return bad();
  size_t pos = head_end + 1;
  while (pos < inner.size()) {
    if (inner.substr(pos).rfind("</cookie>", 0) == 0) break;
    if (inner[pos] != '<') return bad();
    auto end = inner.find("/>", pos);
    if (end == std::string_view::npos) return bad();
    std::string_view tag = inner.substr(pos + 1, end - pos - 1);
    auto sp = tag.find(' ');
    CookieKey k;
    k.name = std::string(tag.substr(0, sp));
    if (Attr(tag, "null"))
      k.is_null = true;
    else if (auto last = Attr(tag, "last"))
      k.text = XmlUnescape(*last);
    else
      return bad();
    c.keys.push_back(std::move(k));
    pos = end + 2;
  }
  return c;
}

struct OrderKey {
  std::string sql;
  const Column* column;
  bool desc;
  std::string name;
};

// Keyset condition "row comes after the cookie's last row" for the ORDER BY keys.
Status AppendAfter(const std::vector<OrderKey>& keys, const Cookie& cookie, SqlFragment& out) {
  if (cookie.keys.size() != keys.size())
    return QueryError("The $skiptoken does not match the query; use the @odata.nextLink exactly as returned.");
  std::vector<std::optional<storage::SqlValue>> vals;
  for (size_t i = 0; i < keys.size(); ++i) {
    if (cookie.keys[i].name != keys[i].name)
      return QueryError("The $skiptoken does not match the query; use the @odata.nextLink exactly as returned.");
    if (cookie.keys[i].is_null) {
      vals.emplace_back(std::nullopt);
    } else {
      auto v = DecodeValue(*keys[i].column, cookie.keys[i].text);
      if (!v) return QueryError("The $skiptoken is not valid; use the @odata.nextLink exactly as returned.");
      vals.emplace_back(std::move(v));
    }
  }
  // after(i) = strictly-after on key i OR (equal on key i AND after(i+1)); SQLite sorts NULL first.
  std::string sql;
  std::vector<storage::SqlValue> params;
  std::function<void(size_t)> build = [&](size_t i) {
    const OrderKey& k = keys[i];
    const auto& v = vals[i];
    sql += "(";
    if (!v)
      sql += k.desc ? "0" : k.sql + " IS NOT NULL";
    else {
      sql += k.desc ? "(" + k.sql + " < ? OR " + k.sql + " IS NULL)" : k.sql + " > ?";
      params.push_back(*v);
    }
    if (i + 1 < keys.size()) {
      sql += " OR (";
      if (!v)
        sql += k.sql + " IS NULL";
      else {
        sql += k.sql + " = ?";
        params.push_back(*v);
      }
      sql += " AND ";
      build(i + 1);
      sql += ")";
    }
    sql += ")";
  };
  build(0);
  out.sql += sql;
  for (auto& p : params) out.params.push_back(std::move(p));
  return Status::Ok();
}

// The rows of `nav.target` related to record `id` of `parent` through a collection navigation
// (1:N through the child's lookup, N:N through the intersect table), as a condition on alias t0.
SqlFragment RelatedCondition(const catalog::Catalog& cat, const Table& parent, const NavProperty& nav, const Guid& id) {
  SqlFragment f;
  if (nav.kind == NavProperty::Kind::kCollection) {
    f.sql = "t0." + Q(nav.column->sql_name) + " = ?";
  } else {
    const auto& r = *nav.relationship;
    const Table* inter = cat.FindTable(r.intersect_entity);
    bool self_first = r.entity1 == parent.logical_name;
    f.sql = "t0." + Q(nav.target->PrimaryId()->sql_name) + " IN (SELECT " +
            Q(self_first ? r.entity2_attribute : r.entity1_attribute) + " FROM " + Q(inter->sql_table) + " WHERE " +
            Q(self_first ? r.entity1_attribute : r.entity2_attribute) + " = ?)";
  }
  f.params.push_back(id.ToString());
  return f;
}

struct CollectionQuery {
  const Table* table;
  SqlFragment where;  // conditions joined with AND, may be empty
};

Result<Page> RunCollection(storage::Connection& conn, const catalog::Catalog& cat, const CallerContext& caller,
                           const CollectionQuery& q, const QueryOptions& options, const PageRequest& page,
                           std::optional<Timestamp> now) {
  const Table& table = *q.table;
  RETURN_IF_ERROR(ValidateExpand(cat, table, options.expand, 0, &caller));
  ASSIGN_OR_RETURN(SelectPlan plan, PlanSelect(table, options.select));
  HideSecuredColumns(caller, plan);
  SqlFragment where = q.where;
  if (options.filter) {
    if (!where.sql.empty()) where.sql += " AND ";
    RETURN_IF_ERROR(AppendFilterSql(cat, table, *options.filter, "t0", where, &caller, now));
  }
  // Only the rows the caller may read: part of the SQL, so counts and pages are right.
  const int64_t rows_wanted =
      std::min<int64_t>(std::clamp(page.page_size, 1, kMaxPage), options.top.value_or(kMaxPage));
  ASSIGN_OR_RETURN(auto row_filter, CollectionRowFilter(conn, caller, table, Verb::kRead, "t0", rows_wanted,
                                                        !where.sql.empty(), where.params));
  if (row_filter) {
    if (!where.sql.empty()) where.sql += " AND ";
    where.sql += *row_filter;
  }
  Page result;
  if (page.count) {
    std::string sql = "SELECT count(*) FROM (SELECT 1 FROM " + Q(table.sql_table) + " t0" +
                      (where.sql.empty() ? "" : " WHERE " + where.sql) + " LIMIT " + std::to_string(kCountCap + 1) +
                      ")";
    int64_t n = 0;
    RETURN_IF_ERROR(conn.Query(sql, where.params, [&](const storage::Row& r) {
      n = r.Int(0);
      return false;
    }));
    result.count_limit_exceeded = n > kCountCap;
    result.count = std::min(n, kCountCap);
  }
  std::vector<OrderKey> keys;
  for (const auto& ob : options.orderby) {
    ASSIGN_OR_RETURN(auto sc, OrderBySql(cat, table, ob.path, "t0", &caller));
    std::string name;
    for (const auto& seg : ob.path) name += (name.empty() ? "" : ".") + seg;
    keys.push_back(OrderKey{sc.first, sc.second, ob.descending, name});
  }
  const Column* pk = table.PrimaryId();
  keys.push_back(OrderKey{"t0." + Q(pk->sql_name), pk, false, pk->logical_name});

  Cookie cookie;
  if (!page.skiptoken.empty()) {
    ASSIGN_OR_RETURN(cookie, ParseSkiptoken(page.skiptoken));
    SqlFragment after;
    RETURN_IF_ERROR(AppendAfter(keys, cookie, after));
    if (!where.sql.empty()) where.sql += " AND ";
    where.sql += after.sql;
    for (auto& p : after.params) where.params.push_back(std::move(p));
  }
  int64_t page_size = std::clamp(page.page_size, 1, kMaxPage);
  int64_t limit = page_size;
  if (options.top) limit = std::min<int64_t>(limit, std::max<int64_t>(0, *options.top - cookie.returned));
  std::string sql = "SELECT " + plan.list;
  for (size_t i = 0; i < keys.size(); ++i) sql += ", " + keys[i].sql;
  sql += " FROM " + Q(table.sql_table) + " t0";
  if (!where.sql.empty()) sql += " WHERE " + where.sql;
  sql += " ORDER BY ";
  for (size_t i = 0; i < keys.size(); ++i) {
    if (i) sql += ", ";
    sql += keys[i].sql + (keys[i].desc ? " DESC" : "");
  }
  sql += " LIMIT " + std::to_string(limit + 1);
  int ncols = 0;
  std::vector<std::string> last_keys;
  std::vector<bool> last_null;
  bool more = false;
  RETURN_IF_ERROR(conn.Query(sql, where.params, [&](const storage::Row& r) {
    if (static_cast<int64_t>(result.rows.size()) == limit) {
      more = true;
      return false;
    }
    result.rows.push_back(ReadEntity(plan, r));
    ncols = r.size();
    int base = ncols - static_cast<int>(keys.size());
    last_keys.assign(keys.size(), "");
    last_null.assign(keys.size(), false);
    for (size_t i = 0; i < keys.size(); ++i) {
      int idx = base + static_cast<int>(i);
      if (r.is_null(idx))
        last_null[i] = true;
      else
        last_keys[i] = EncodeValue(FromSql(*keys[i].column, r, idx));
    }
    return true;
  }));
  bool top_reached = options.top && cookie.returned + static_cast<int64_t>(result.rows.size()) >= *options.top;
  if (more && !top_reached && !result.rows.empty()) {
    Cookie next;
    next.page = cookie.page + 1;
    next.returned = cookie.returned + static_cast<int64_t>(result.rows.size());
    for (size_t i = 0; i < keys.size(); ++i) next.keys.push_back(CookieKey{keys[i].name, last_null[i], last_keys[i]});
    result.next_skiptoken = BuildSkiptoken(next);
  }
  RETURN_IF_ERROR(ExpandRows(conn, cat, caller, result.rows, options.expand, 0, now));
  return result;
}

}  // namespace

// Checks $expand options against the catalog even when no row will be expanded, so a bad
// option is an error whatever the data.
Status ValidateExpand(const catalog::Catalog& cat, const Table& table, const std::vector<Expand>& expands, int depth,
                      const CallerContext* caller) {
  if (depth > 10) return QueryError("$expand is nested too deeply.");
  if (expands.size() > 15) return QueryError("A query can have at most 15 $expand options.");
  for (const auto& ex : expands) {
    const NavProperty* nav = table.FindNav(ex.nav);
    if (!nav)
      return QueryError("Could not find a property named '" + ex.nav + "' on type 'Microsoft.Dynamics.CRM." +
                        table.logical_name + "'.");
    if (nav->kind == NavProperty::Kind::kPolymorphicOwner) continue;  // options apply per target type
    const Table& target = *nav->target;
    RETURN_IF_ERROR(PlanSelect(target, ex.options.select).status());
    SqlFragment scratch;
    if (ex.options.filter) RETURN_IF_ERROR(AppendFilterSql(cat, target, *ex.options.filter, "t0", scratch, caller));
    for (const auto& ob : ex.options.orderby) RETURN_IF_ERROR(OrderBySql(cat, target, ob.path, "t0").status());
    RETURN_IF_ERROR(ValidateExpand(cat, target, ex.options.expand, depth + 1, caller));
  }
  return Status::Ok();
}

Status ExpandRows(storage::Connection& c, const catalog::Catalog& cat, const CallerContext& caller,
                  std::vector<Entity>& rows, const std::vector<Expand>& expands, int depth,
                  std::optional<Timestamp> now) {
  if (expands.empty() || rows.empty()) return Status::Ok();
  if (depth > 10) return QueryError("$expand is nested too deeply.");
  for (const auto& ex : expands) {
    const Table& table = *rows.front().table;
    const NavProperty* nav = table.FindNav(ex.nav);
    if (!nav) {
      return QueryError("Could not find a property named '" + ex.nav + "' on type 'Microsoft.Dynamics.CRM." +
                        table.logical_name + "'.");
    }
    if (ex.ref && nav->IsCollection())
      return QueryError("Expand with $ref is only supported on lookup type navigation property.");
    if (!nav->IsCollection()) {
      if (ex.options.top || !ex.options.orderby.empty())
        return QueryError(
            "Only $select and $filter clause can be provided while doing $expand on many-to-one "
            "relationship or nested one-to-many relationship.");
      const Column* col = nav->column;
      // Find the lookup value of each row; read the target by id.
      for (auto& row : rows) {
        Entity::Expanded out{nav, {}};
        std::optional<EntityRef> ref;
        // The lookup may not be among the selected fields: read it.
        std::string sql = "SELECT " + Q(col->sql_name) +
                          (col->IsPolymorphic() ? ", " + Q(col->sql_name + "_type") : ", NULL") + " FROM " +
                          Q(table.sql_table) + " WHERE " + Q(table.PrimaryId()->sql_name) + " = ?";
        std::vector<storage::SqlValue> p = {row.id.ToString()};
        RETURN_IF_ERROR(c.Query(sql, p, [&](const storage::Row& r) {
          Value v = FromSql(*col, r, 0, col->IsPolymorphic() ? 1 : -1);
          if (auto* er = std::get_if<EntityRef>(&v)) ref = *er;
          return false;
        }));
        const Table* target = nav->target;
        if (ref && nav->kind == NavProperty::Kind::kPolymorphicOwner) target = cat.FindTable(ref->table);
        if (ref && target &&
            (nav->kind == NavProperty::Kind::kPolymorphicOwner || ref->table.empty() ||
             ref->table == target->logical_name)) {
          ASSIGN_OR_RETURN(
              SelectPlan plan,
              PlanSelect(*target, ex.ref ? std::vector<std::string>{target->primary_id} : ex.options.select, "t0",
                         nav->kind == NavProperty::Kind::kPolymorphicOwner));
          HideSecuredColumns(caller, plan);
          SqlFragment where;
          where.sql = "t0." + Q(target->PrimaryId()->sql_name) + " = ?";
          where.params.push_back(ref->id.ToString());
          // A related record the caller may not read expands to null.
          ASSIGN_OR_RETURN(auto row_filter, RowFilter(caller, *target, Verb::kRead, "t0", where.params));
          if (row_filter) where.sql += " AND " + *row_filter;
          if (ex.options.filter) {
            where.sql += " AND ";
            RETURN_IF_ERROR(AppendFilterSql(cat, *target, *ex.options.filter, "t0", where, &caller, now));
          }
          std::string q = "SELECT " + plan.list + " FROM " + Q(target->sql_table) + " t0 WHERE " + where.sql;
          RETURN_IF_ERROR(c.Query(q, where.params, [&](const storage::Row& r) {
            out.rows.push_back(ReadEntity(plan, r));
            return false;
          }));
          RETURN_IF_ERROR(ExpandRows(c, cat, caller, out.rows, ex.options.expand, depth + 1, now));
        }
        row.expanded.push_back(std::move(out));
      }
      continue;
    }
    // Collection-valued.
    const Table& target = *nav->target;
    for (auto& row : rows) {
      CollectionQuery q{&target, RelatedCondition(cat, table, *nav, row.id)};
      PageRequest pr;
      pr.page_size = kMaxPage;
      ASSIGN_OR_RETURN(Page page, RunCollection(c, cat, caller, q, ex.options, pr, now));
      row.expanded.push_back(Entity::Expanded{nav, std::move(page.rows)});
    }
  }
  return Status::Ok();
}

Result<Entity> OrganizationService::Retrieve(const CallerContext& caller, const Table& table, const RecordKey& key,
                                             const QueryOptions& options) {
  auto cat = catalog_.Get();
  ASSIGN_OR_RETURN(SelectPlan plan, PlanSelect(table, options.select));
  HideSecuredColumns(caller, plan);
  RETURN_IF_ERROR(ValidateExpand(*cat, table, options.expand, 0, &caller));
  ASSIGN_OR_RETURN(KeySql k, KeyToSql(table, key));
  SqlFragment where{k.where, k.params};
  const Timestamp now = clock_.Now();
  if (options.filter) {
    where.sql += " AND ";
    RETURN_IF_ERROR(AppendFilterSql(*cat, table, *options.filter, "t0", where, &caller, now));
  }
  ASSIGN_OR_RETURN(auto row_filter, RowFilter(caller, table, Verb::kRead, "t0", where.params));
  if (row_filter) where.sql += " AND " + *row_filter;
  auto conn = engine_.Read();
  std::vector<Entity> rows;
  std::string sql = "SELECT " + plan.list + " FROM " + Q(table.sql_table) + " t0 WHERE " + where.sql;
  RETURN_IF_ERROR(conn->Query(sql, where.params, [&](const storage::Row& r) {
    rows.push_back(ReadEntity(plan, r));
    return false;
  }));
  if (rows.empty()) {
    // Not readable or absent: a record the caller may not read answers 403, as in Dataverse.
    if (row_filter) {
      std::optional<Guid> id;
      RETURN_IF_ERROR(conn->Query(
          "SELECT t0." + Q(table.PrimaryId()->sql_name) + " FROM " + Q(table.sql_table) + " t0 WHERE " + k.where,
          k.params, [&](const storage::Row& r) {
            id = Guid::Parse(r.Text(0));
            return false;
          }));
      if (id && !options.filter) return RecordAccessDenied(caller, table, Verb::kRead, *id);
    }
    return NotFoundFor(table, k);
  }
  RETURN_IF_ERROR(ExpandRows(*conn, *cat, caller, rows, options.expand, 0, now));
  return std::move(rows.front());
}

Result<Page> OrganizationService::RetrieveMultiple(const CallerContext& caller, const Table& table,
                                                   const QueryOptions& options, const PageRequest& page) {
  auto cat = catalog_.Get();
  auto conn = engine_.Read();
  return RunCollection(*conn, *cat, caller, CollectionQuery{&table, {}}, options, page, clock_.Now());
}

Result<Page> OrganizationService::RetrieveRelated(const CallerContext& caller, const Table& table, const RecordKey& key,
                                                  const NavProperty& nav, const QueryOptions& options,
                                                  const PageRequest& page) {
  auto cat = catalog_.Get();
  auto conn = engine_.Read();
  ASSIGN_OR_RETURN(KeySql k, KeyToSql(table, key));
  // The row condition's parameters come first: it is in the select list, before the key's.
  std::vector<storage::SqlValue> params;
  ASSIGN_OR_RETURN(auto row_filter, RowFilter(caller, table, Verb::kRead, "t0", params));
  params.insert(params.end(), k.params.begin(), k.params.end());
  std::optional<Guid> id;
  bool readable = true;
  RETURN_IF_ERROR(conn->Query("SELECT t0." + Q(table.PrimaryId()->sql_name) + ", " +
                                  (row_filter ? "CASE WHEN " + *row_filter + " THEN 1 ELSE 0 END" : "1") + " FROM " +
                                  Q(table.sql_table) + " t0 WHERE " + k.where,
                              params, [&](const storage::Row& r) {
                                id = Guid::Parse(r.Text(0));
                                readable = r.Int(1) != 0;
                                return false;
                              }));
  if (!id) return NotFoundFor(table, k);
  if (!readable) return RecordAccessDenied(caller, table, Verb::kRead, *id);
  if (!nav.IsCollection()) return QueryError("'" + nav.name + "' is not a collection-valued navigation property.");
  CollectionQuery q{nav.target, RelatedCondition(*cat, table, nav, *id)};
  return RunCollection(*conn, *cat, caller, q, options, page, clock_.Now());
}

Result<int64_t> OrganizationService::Count(const CallerContext& caller, const Table& table, const Expr* filter) {
  auto cat = catalog_.Get();
  SqlFragment where;
  if (filter) RETURN_IF_ERROR(AppendFilterSql(*cat, table, *filter, "t0", where, &caller, clock_.Now()));
  auto conn = engine_.Read();
  ASSIGN_OR_RETURN(auto row_filter, CollectionRowFilter(*conn, caller, table, Verb::kRead, "t0", kCountCap,
                                                        filter != nullptr, where.params));
  if (row_filter) where.sql += (where.sql.empty() ? "" : " AND ") + *row_filter;
  std::string sql = "SELECT count(*) FROM (SELECT 1 FROM " + Q(table.sql_table) + " t0" +
                    (where.sql.empty() ? "" : " WHERE " + where.sql) + " LIMIT " + std::to_string(kCountCap) + ")";
  int64_t n = 0;
  RETURN_IF_ERROR(conn->Query(sql, where.params, [&](const storage::Row& r) {
    n = r.Int(0);
    return false;
  }));
  return n;
}

Result<int64_t> OrganizationService::CountAll(const CallerContext& caller, const Table& table) {
  RETURN_IF_ERROR(CheckPrivilege(caller, table, Verb::kRead));
  auto conn = engine_.Read();
  int64_t n = 0;
  RETURN_IF_ERROR(conn->Query("SELECT count(*) FROM " + Q(table.sql_table), {}, [&](const storage::Row& r) {
    n = r.Int(0);
    return false;
  }));
  return n;
}

std::optional<std::string> OrganizationService::PrimaryName(const std::string& table, const Guid& id) {
  auto cat = catalog_.Get();
  const Table* t = cat->FindTable(table);
  if (!t || t->primary_name.empty()) return std::nullopt;
  std::optional<std::string> name;
  auto conn = engine_.Read();
  std::vector<storage::SqlValue> p = {id.ToString()};
  Status s = conn->Query(
      "SELECT " + Q(t->primary_name) + " FROM " + Q(t->sql_table) + " WHERE " + Q(t->PrimaryId()->sql_name) + " = ?", p,
      [&](const storage::Row& r) {
        if (!r.is_null(0)) name = std::string(r.Text(0));
        return false;
      });
  if (!s.ok()) return std::nullopt;
  return name;
}

}  // namespace tributary::data
