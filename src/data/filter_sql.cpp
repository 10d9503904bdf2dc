// Binds query expressions against the catalog and writes them as SQL with bound parameters.
// Values are never spliced into SQL text: every literal becomes a `?` parameter.

#include <map>

#include "access.h"
#include "query_functions.h"
#include "sql_schema.h"
#include "tributary/data/service.h"

namespace tributary::data {

using catalog::Column;
using catalog::ColumnType;
using catalog::NavProperty;
using catalog::Table;

namespace {

std::string TypeName(const Table& t) { return "Microsoft.Dynamics.CRM." + t.logical_name; }

Status NoProperty(const Table& t, std::string_view name) {
  return QueryError("Could not find a property named '" + std::string(name) + "' on type '" + TypeName(t) + "'.");
}

bool IsText(const Column& c) {
  return c.type == ColumnType::kString || c.type == ColumnType::kMemo || c.type == ColumnType::kMultiChoice;
}

struct Scope {
  const Table* table;
  std::string alias;
};

struct Operand {
  std::string sql;
  const Column* column = nullptr;
};

class Binder {
 public:
  Binder(const catalog::Catalog& cat, SqlFragment& out, const CallerContext* caller,
         std::optional<Timestamp> now = std::nullopt)
      : cat_(cat), out_(out), caller_(caller), now_(now) {}

  Status Bind(const Table& t, std::string_view alias, const Expr& e, int depth = 0) {
    if (depth > 200) return QueryError("The $filter expression is nested too deeply.");
    switch (e.kind) {
      case Expr::Kind::kAnd:
      case Expr::Kind::kOr: {
        out_.sql += "(";
        RETURN_IF_ERROR(Bind(t, alias, *e.children[0], depth + 1));
        out_.sql += e.kind == Expr::Kind::kAnd ? " AND " : " OR ";
        RETURN_IF_ERROR(Bind(t, alias, *e.children[1], depth + 1));
        out_.sql += ")";
        return Status::Ok();
      }
      case Expr::Kind::kNot:
        out_.sql += "NOT COALESCE((";
        RETURN_IF_ERROR(Bind(t, alias, *e.children[0], depth + 1));
        out_.sql += "), 0)";
        return Status::Ok();
      case Expr::Kind::kCompare:
        return Compare(t, alias, e);
      case Expr::Kind::kFunction:
        return Function(t, alias, e);
      case Expr::Kind::kLambda:
        return Lambda(t, alias, e, depth);
      case Expr::Kind::kQueryFunction:
        return QueryFunction(t, alias, e);
      case Expr::Kind::kProperty: {
        // A bare boolean property used as a condition: "creditonhold".
        ASSIGN_OR_RETURN(Operand op, Resolve(t, alias, e.path));
        if (op.column->type != ColumnType::kBoolean)
          return QueryError("The property '" + op.column->logical_name +
                            "' is not a boolean and cannot be a condition.");
        out_.sql += "(" + op.sql + " = 1)";
        return Status::Ok();
      }
      case Expr::Kind::kLiteral:
        if (e.literal.kind == Literal::Kind::kBool) {
          out_.sql += e.literal.text == "true" ? "1" : "0";
          return Status::Ok();
        }
        return QueryError("A literal '" + e.literal.text + "' cannot be used as a condition.");
    }
    return QueryError("Unsupported expression in $filter.");
  }

  // Resolves a property path to an SQL expression (scalar subqueries for single-valued navs).
  Result<Operand> Resolve(const Table& t, std::string_view alias, const std::vector<std::string>& path) {
    if (path.empty()) return QueryError("Empty property path in $filter.");
    const Table* table = &t;
    std::string current_alias(alias);
    size_t i = 0;
    if (auto it = vars_.find(path[0]); it != vars_.end()) {
      table = it->second.table;
      current_alias = it->second.alias;
      i = 1;
      if (path.size() == 1) return QueryError("A lambda variable must be followed by a property.");
    }
    std::string fk_expr;  // SQL expression for the id of the row of `table`, when reached by navigation
    for (; i + 1 < path.size(); ++i) {
      const NavProperty* nav = table->FindNav(path[i]);
      if (!nav) return NoProperty(*table, path[i]);
      if (nav->kind != NavProperty::Kind::kSingle)
        return QueryError("The navigation property '" + path[i] +
                          "' is not single-valued; use any() or all() for collection-valued navigation properties.");
      ASSIGN_OR_RETURN(std::string lookup, ColumnOf(*table, current_alias, fk_expr, nav->column->sql_name));
      fk_expr = lookup;
      table = nav->target;
      current_alias.clear();
    }
    const std::string& name = path.back();
    const Column* col = table->FindColumn(name);
    if (col && col->IsLookup()) col = nullptr;  // lookups are addressed as _x_value
    if (!col) col = table->FindLookupProperty(name);
    if (!col) return NoProperty(*table, name);
    // A secured column the caller cannot read cannot be used to filter or sort by it either.
    if (caller_) RETURN_IF_ERROR(CheckField(*caller_, *table, *col, security::kFieldRead));
    ASSIGN_OR_RETURN(std::string sql, ColumnOf(*table, current_alias, fk_expr, col->sql_name));
    return Operand{std::move(sql), col};
  }

 private:
  // `alias.col` directly, or a scalar subquery from the row whose id is `fk_expr` (NULL when the
  // caller may not read that row, so a condition cannot reveal its values).
  Result<std::string> ColumnOf(const Table& table, const std::string& alias, const std::string& fk_expr,
                               const std::string& sql_col) {
    if (fk_expr.empty()) return alias + "." + Q(sql_col);
    std::string a = NewAlias();
    std::string sql = "(SELECT " + a + "." + Q(sql_col) + " FROM " + Q(table.sql_table) + " " + a + " WHERE " + a +
                      "." + Q(table.PrimaryId()->sql_name) + " = " + fk_expr;
    RETURN_IF_ERROR(AppendRowFilter(table, a, sql));
    return sql + ")";
  }

  // " AND <row filter>" for reading `table` under `alias`, when the caller is restricted.
  Status AppendRowFilter(const Table& table, const std::string& alias, std::string& sql) {
    if (!caller_) return Status::Ok();
    ASSIGN_OR_RETURN(auto rf, RowFilter(*caller_, table, security::Verb::kRead, alias));
    if (rf) sql += " AND " + *rf;
    return Status::Ok();
  }

  std::string NewAlias() { return "f" + std::to_string(++alias_counter_); }

  void Param(storage::SqlValue v) {
    out_.sql += "?";
    out_.params.push_back(std::move(v));
  }

  static const char* OpSql(CompareOp op) {
    switch (op) {
      case CompareOp::kEq:
        return " = ";
      case CompareOp::kNe:
        return " <> ";
      case CompareOp::kGt:
        return " > ";
      case CompareOp::kGe:
        return " >= ";
      case CompareOp::kLt:
        return " < ";
      case CompareOp::kLe:
        return " <= ";
    }
    return " = ";
  }

  static CompareOp Flip(CompareOp op) {
    switch (op) {
      case CompareOp::kGt:
        return CompareOp::kLt;
      case CompareOp::kGe:
        return CompareOp::kLe;
      case CompareOp::kLt:
        return CompareOp::kGt;
      case CompareOp::kLe:
        return CompareOp::kGe;
      default:
        return op;
    }
  }

  Status Compare(const Table& t, std::string_view alias, const Expr& e) {
    const Expr* l = e.children[0].get();
    const Expr* r = e.children[1].get();
    CompareOp op = e.op;
    if (l->kind == Expr::Kind::kLiteral && r->kind == Expr::Kind::kProperty) {
      std::swap(l, r);
      op = Flip(op);
    }
    if (l->kind != Expr::Kind::kProperty)
      return QueryError("A comparison in $filter needs a property on at least one side.");
    ASSIGN_OR_RETURN(Operand left, Resolve(t, alias, l->path));
    if (r->kind == Expr::Kind::kProperty) {
      ASSIGN_OR_RETURN(Operand right, Resolve(t, alias, r->path));
      if (IsText(*left.column) != IsText(*right.column))
        return QueryError("Cannot compare '" + left.column->logical_name + "' with '" + right.column->logical_name +
                          "': the types differ.");
      out_.sql += "(" + left.sql + (IsText(*left.column) ? " COLLATE NOCASE" : "") + OpSql(op) + right.sql + ")";
      return Status::Ok();
    }
    if (r->kind != Expr::Kind::kLiteral) return QueryError("Unsupported operand in a $filter comparison.");
    ASSIGN_OR_RETURN(Value v, LiteralToValue(*left.column, r->literal));
    if (IsNull(v)) {
      if (op != CompareOp::kEq && op != CompareOp::kNe)
        return QueryError("null can only be compared with 'eq' or 'ne'.");
      out_.sql += "(" + left.sql + (op == CompareOp::kEq ? " IS NULL)" : " IS NOT NULL)");
      return Status::Ok();
    }
    out_.sql += "(" + left.sql + (IsText(*left.column) ? " COLLATE NOCASE" : "") + OpSql(op);
    Param(ToSql(v));
    out_.sql += ")";
    return Status::Ok();
  }

  Status Function(const Table& t, std::string_view alias, const Expr& e) {
    if (e.children.size() != 2 || e.children[0]->kind != Expr::Kind::kProperty ||
        e.children[1]->kind != Expr::Kind::kLiteral)
      return QueryError("The function '" + e.name + "' takes a property and a string literal.");
    ASSIGN_OR_RETURN(Operand p, Resolve(t, alias, e.children[0]->path));
    if (!IsText(*p.column))
      return QueryError("The function '" + e.name + "' needs a string property; '" + p.column->logical_name +
                        "' is not one.");
    const Literal& lit = e.children[1]->literal;
    if (lit.kind != Literal::Kind::kString)
      return QueryError("The second argument of '" + e.name + "' must be a string literal.");
    std::string pattern;
    if (e.name == "contains")
      pattern = "%" + lit.text + "%";
    else if (e.name == "startswith")
      pattern = lit.text + "%";
    else if (e.name == "endswith")
      pattern = "%" + lit.text;
    else if (e.name == "like")  // FetchXML's like: the pattern as written (% and _ are wildcards)
      pattern = lit.text;
    else
      return QueryError("The function '" + e.name + "' is not supported.");
    out_.sql += "(" + p.sql + " LIKE ";
    Param(pattern);
    out_.sql += ")";
    return Status::Ok();
  }

  Status Lambda(const Table& t, std::string_view alias, const Expr& e, int depth) {
    if (e.path.size() != 1)
      return QueryError(
          "Lambda operators are only supported on a collection-valued navigation property of the "
          "queried table.");
    const Table* table = &t;
    std::string outer(alias);
    if (auto it = vars_.find(e.path[0]); it != vars_.end() && e.path.size() > 1) {
      table = it->second.table;
      outer = it->second.alias;
    }
    const NavProperty* nav = table->FindNav(e.path.back());
    if (!nav) return NoProperty(*table, e.path.back());
    if (!nav->IsCollection())
      return QueryError("The navigation property '" + nav->name + "' is not collection-valued.");
    bool all = e.name == "all";
    std::string a = NewAlias();
    std::string from;
    if (nav->kind == NavProperty::Kind::kCollection) {
      from = " FROM " + Q(nav->target->sql_table) + " " + a + " WHERE " + a + "." + Q(nav->column->sql_name) + " = " +
             outer + "." + Q(table->PrimaryId()->sql_name);
    } else {
      const auto& r = *nav->relationship;
      const Table* inter = cat_.FindTable(r.intersect_entity);
      std::string ia = NewAlias();
      bool self_first = r.entity1 == table->logical_name;
      const std::string& self_col = self_first ? r.entity1_attribute : r.entity2_attribute;
      const std::string& other_col = self_first ? r.entity2_attribute : r.entity1_attribute;
      from = " FROM " + Q(inter->sql_table) + " " + ia + " JOIN " + Q(nav->target->sql_table) + " " + a + " ON " + a +
             "." + Q(nav->target->PrimaryId()->sql_name) + " = " + ia + "." + Q(other_col) + " WHERE " + ia + "." +
             Q(self_col) + " = " + outer + "." + Q(table->PrimaryId()->sql_name);
    }
    RETURN_IF_ERROR(AppendRowFilter(*nav->target, a, from));
    out_.sql += all ? "(NOT EXISTS (SELECT 1" : "(EXISTS (SELECT 1";
    out_.sql += from;
    if (!e.children.empty()) {
      vars_[e.variable] = Scope{nav->target, a};
      out_.sql += all ? " AND NOT COALESCE((" : " AND (";
      Status s = Bind(*nav->target, a, *e.children[0], depth + 1);
      vars_.erase(e.variable);
      RETURN_IF_ERROR(s);
      out_.sql += all ? "), 0)" : ")";
    } else if (all) {
      return QueryError("all() needs a predicate.");
    }
    out_.sql += "))";
    return Status::Ok();
  }

  const Expr::Param* FindParam(const Expr& e, std::string_view name) {
    for (const auto& p : e.params)
      if (p.name == name) return &p;
    return nullptr;
  }

  // "Now" for the relative date functions: the time given by the caller, else the system clock,
  // read once so that every function of one filter sees the same instant.
  Timestamp Now() {
    if (!now_) now_ = SystemClock::Get().Now();
    return *now_;
  }

  static bool IsKnownQueryFunction(std::string_view n) {
    return n == "In" || n == "NotIn" || n == "Between" || n == "NotBetween" || n == "EqualUserId" ||
           n == "NotEqualUserId" || n == "EqualBusinessId" || n == "NotEqualBusinessId" || n == "ContainValues" ||
           n == "DoesNotContainValues" || IsDateQueryFunction(n) || IsUserQueryFunction(n);
  }

  Status QueryFunction(const Table& t, std::string_view alias, const Expr& e) {
    if (IsHierarchyQueryFunction(e.name))
      return QueryError("The query function 'Microsoft.Dynamics.CRM." + e.name +
                        "' is not supported: Tributary has no hierarchical relationships or hierarchy security.");
    if (!IsKnownQueryFunction(e.name))
      return QueryError("The query function 'Microsoft.Dynamics.CRM." + e.name + "' is not supported.");
    const Expr::Param* pn = FindParam(e, "PropertyName");
    if (!pn || pn->values.size() != 1 || pn->values[0].kind != Literal::Kind::kString)
      return QueryError("The query function '" + e.name + "' needs PropertyName='<column>'.");
    std::vector<std::string> path;
    for (size_t s = 0, n; s <= pn->values[0].text.size(); s = n + 1) {
      n = pn->values[0].text.find('/', s);
      if (n == std::string::npos) n = pn->values[0].text.size();
      path.push_back(pn->values[0].text.substr(s, n - s));
    }
    // PropertyName may name a lookup column directly (Dataverse accepts 'ownerid').
    const Column* direct = t.FindColumn(path.back());
    if (path.size() == 1 && direct && direct->IsLookup()) path.back() = direct->LookupProperty();
    ASSIGN_OR_RETURN(Operand p, Resolve(t, alias, path));
    if (IsDateQueryFunction(e.name)) return AppendDateFunctionSql(e, *p.column, p.sql, Now(), out_);
    if (IsUserQueryFunction(e.name)) return AppendUserFunctionSql(cat_, e, *p.column, p.sql, caller_, out_);
    auto values = [&](const char* name) -> Result<std::vector<Value>> {
      const Expr::Param* pv = FindParam(e, name);
      if (!pv) return QueryError("The query function '" + e.name + "' needs " + name + ".");
      std::vector<Value> out;
      for (const auto& lit : pv->values) {
        ASSIGN_OR_RETURN(Value v, LiteralToValue(*p.column, lit));
        out.push_back(std::move(v));
      }
      return out;
    };
    const std::string& n = e.name;
    if (n == "In" || n == "NotIn") {
      ASSIGN_OR_RETURN(auto vs, values("PropertyValues"));
      if (vs.empty()) return QueryError("PropertyValues of '" + n + "' must not be empty.");
      out_.sql += "(" + p.sql + (n == "In" ? " IN (" : " NOT IN (");
      for (size_t i = 0; i < vs.size(); ++i) {
        if (i) out_.sql += ", ";
        Param(ToSql(vs[i]));
      }
      out_.sql += "))";
      return Status::Ok();
    }
    if (n == "Between" || n == "NotBetween") {
      ASSIGN_OR_RETURN(auto vs, values("PropertyValues"));
      if (vs.size() != 2) return QueryError("PropertyValues of '" + n + "' must have two values.");
      out_.sql += "(" + p.sql + (n == "Between" ? " BETWEEN " : " NOT BETWEEN ");
      Param(ToSql(vs[0]));
      out_.sql += " AND ";
      Param(ToSql(vs[1]));
      out_.sql += ")";
      return Status::Ok();
    }
    if (n == "EqualUserId" || n == "NotEqualUserId" || n == "EqualBusinessId" || n == "NotEqualBusinessId") {
      if (!caller_) return QueryError("The query function '" + n + "' needs a calling user.");
      const Guid& id = (n == "EqualUserId" || n == "NotEqualUserId") ? caller_->user_id : caller_->business_unit_id;
      out_.sql += "(" + p.sql + (n.rfind("Not", 0) == 0 ? " IS NOT " : " = ");
      Param(id.ToString());
      out_.sql += ")";
      return Status::Ok();
    }
    if (n == "ContainValues" || n == "DoesNotContainValues") {
      const Expr::Param* pv = FindParam(e, "PropertyValues");
      if (!pv || pv->values.empty()) return QueryError("The query function '" + n + "' needs PropertyValues.");
      out_.sql += n == "ContainValues" ? "(" : "(NOT (";
      for (size_t i = 0; i < pv->values.size(); ++i) {
        if (i) out_.sql += " OR ";
        out_.sql += "(',' || " + p.sql + " || ',') LIKE ";
        Param("%," + pv->values[i].text + ",%");
      }
      out_.sql += n == "ContainValues" ? ")" : "))";
      return Status::Ok();
    }
    return QueryError("The query function 'Microsoft.Dynamics.CRM." + n + "' is not supported.");
  }

  const catalog::Catalog& cat_;
  SqlFragment& out_;
  const CallerContext* caller_;
  std::optional<Timestamp> now_;
  std::map<std::string, Scope> vars_;
  int alias_counter_ = 0;
};

}  // namespace

Status AppendFilterSql(const catalog::Catalog& cat, const Table& table, const Expr& expr, std::string_view alias,
                       SqlFragment& out, const CallerContext* caller, std::optional<Timestamp> now) {
  Binder b(cat, out, caller, now);
  return b.Bind(table, alias, expr);
}

// Resolves an $orderby path to an SQL expression; used by the reader.
Result<std::pair<std::string, const Column*>> OrderBySql(const catalog::Catalog& cat, const Table& table,
                                                         const std::vector<std::string>& path, std::string_view alias,
                                                         const CallerContext* caller) {
  SqlFragment unused;
  Binder b(cat, unused, caller);
  ASSIGN_OR_RETURN(Operand op, b.Resolve(table, alias, path));
  if (op.column->type == ColumnType::kImage)
    return QueryError("The image column '" + op.column->logical_name + "' cannot be used to sort.");
  return std::make_pair(op.sql, op.column);
}

}  // namespace tributary::data
