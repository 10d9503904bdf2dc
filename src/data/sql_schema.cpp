#include "sql_schema.h"

#include <map>
#include <set>

#include "tributary/security/principal.h"

#include <algorithm>
#include <charconv>
#include <set>

#include "tributary/base/strings.h"

namespace tributary::data {

using catalog::Column;
using catalog::ColumnType;
using catalog::DateBehavior;

std::string Q(std::string_view ident) {
  std::string s = "\"";
  s += ident;
  s += "\"";
  return s;
}

namespace {

const char* SqlType(const Column& c) {
  switch (c.type) {
    case ColumnType::kString:
    case ColumnType::kMemo:
    case ColumnType::kMultiChoice:
      return "TEXT COLLATE NOCASE";
    case ColumnType::kInteger:
    case ColumnType::kBigInt:
    case ColumnType::kBoolean:
    case ColumnType::kChoice:
    case ColumnType::kState:
    case ColumnType::kStatus:
    case ColumnType::kDateTime:
      return "INTEGER";
    case ColumnType::kDecimal:
    case ColumnType::kDouble:
    case ColumnType::kMoney:
      return "REAL";
    case ColumnType::kUniqueIdentifier:
    case ColumnType::kLookup:
    case ColumnType::kCustomer:
    case ColumnType::kOwner:
    case ColumnType::kFile:  // the file id
      return "TEXT";
    case ColumnType::kImage:  // the bytes of a small image (data/files.h)
      return "BLOB";
  }
  return "TEXT";
}

}  // namespace

Status EnsureSqlSchema(storage::Connection& c, const catalog::Catalog& cat) {
  std::set<std::string> existing;
  RETURN_IF_ERROR(c.Query("SELECT name FROM sqlite_master WHERE type='table'", {}, [&](const storage::Row& r) {
    existing.insert(std::string(r.Text(0)));
    return true;
  }));
  for (const auto& tp : cat.tables()) {
    const catalog::Table& t = *tp;
    std::string ddl;
    if (!existing.count(t.sql_table)) {
      ddl = "CREATE TABLE " + Q(t.sql_table) + " (";
      bool first = true;
      for (const auto& col : t.columns) {
        if (!first) ddl += ", ";
        first = false;
        ddl += Q(col->sql_name) + " " + SqlType(*col);
        if (col->is_primary_id) ddl += " NOT NULL PRIMARY KEY";
        if (col->IsPolymorphic()) ddl += ", " + Q(col->sql_name + "_type") + " TEXT";
      }
      ddl += ") WITHOUT ROWID;";
    } else {
      std::set<std::string> cols;
      RETURN_IF_ERROR(c.Query("SELECT name FROM pragma_table_info(?)", std::vector<storage::SqlValue>{t.sql_table},
                              [&](const storage::Row& r) {
                                cols.insert(std::string(r.Text(0)));
                                return true;
                              }));
      for (const auto& col : t.columns) {
        if (!cols.count(col->sql_name))
          ddl += "ALTER TABLE " + Q(t.sql_table) + " ADD COLUMN " + Q(col->sql_name) + " " + SqlType(*col) + ";";
        if (col->IsPolymorphic() && !cols.count(col->sql_name + "_type"))
          ddl += "ALTER TABLE " + Q(t.sql_table) + " ADD COLUMN " + Q(col->sql_name + "_type") + " TEXT;";
      }
    }
    for (const auto& col : t.columns) {
      if (!col->indexed) continue;
      // An alternate key that starts with the column already indexes it (unique): a second index
      // would only cost every insert and update one more B-tree write.
      bool key_leads = false;
      for (const auto& k : t.keys) key_leads |= !k.columns.empty() && k.columns.front() == col->logical_name;
      const std::string ix = Q("ix_" + t.sql_table + "_" + col->sql_name);
      if (key_leads)
        ddl += "DROP INDEX IF EXISTS " + ix + ";";
      else
        ddl += "CREATE INDEX IF NOT EXISTS " + ix + " ON " + Q(t.sql_table) + " (" + Q(col->sql_name) + ");";
    }
    for (const auto& k : t.keys) {
      ddl += "CREATE UNIQUE INDEX IF NOT EXISTS " + Q("ak_" + t.sql_table + "_" + k.logical_name) + " ON " +
             Q(t.sql_table) + " (";
      for (size_t i = 0; i < k.columns.size(); ++i) {
        if (i) ddl += ", ";
        const Column* col = t.FindColumn(k.columns[i]);
        ddl += Q(col ? col->sql_name : k.columns[i]);
      }
      ddl += ");";
    }
    if (!ddl.empty()) RETURN_IF_ERROR(c.ExecScript(ddl));
  }
  return Status::Ok();
}

namespace {

// Deletes the stored files (and unfinished uploads) of a table, or of one of its columns.
Status DeleteFiles(storage::Connection& c, const std::string& table, const std::string* column) {
  std::vector<storage::SqlValue> p = {table};
  std::string where = "tablename = ?";
  if (column) {
    where += " AND columnname = ?";
    p.emplace_back(*column);
  }
  RETURN_IF_ERROR(
      c.Exec("DELETE FROM _t_file_chunk WHERE fileid IN (SELECT fileid FROM _t_file WHERE " + where + ")", p).status());
  RETURN_IF_ERROR(c.Exec("DELETE FROM _t_file WHERE " + where, p).status());
  RETURN_IF_ERROR(c.Exec("DELETE FROM _t_file_chunk WHERE fileid IN (SELECT fileid FROM _t_file_upload WHERE " + where +
                             " AND completed = 0)",
                         p)
                      .status());
  return c.Exec("DELETE FROM _t_file_upload WHERE " + where, p).status();
}

// The SQL columns a catalog column occupies (polymorphic lookups also keep the target's name).
std::vector<std::string> SqlColumns(const Column& col) {
  std::vector<std::string> out = {col.sql_name};
  if (col.IsPolymorphic()) out.push_back(col.sql_name + "_type");
  return out;
}

// Drops every index of `table` that covers one of `columns` (SQLite refuses to drop an indexed column).
Status DropIndexesOn(storage::Connection& c, const std::string& table, const std::set<std::string>& columns) {
  std::vector<std::string> indexes;
  RETURN_IF_ERROR(c.Query("SELECT name FROM pragma_index_list(?) WHERE origin = 'c'",
                          std::vector<storage::SqlValue>{table}, [&](const storage::Row& r) {
                            indexes.emplace_back(r.Text(0));
                            return true;
                          }));
  std::string ddl;
  for (const auto& ix : indexes) {
    bool covers = false;
    RETURN_IF_ERROR(c.Query("SELECT name FROM pragma_index_info(?)", std::vector<storage::SqlValue>{ix},
                            [&](const storage::Row& r) {
                              covers |= !r.is_null(0) && columns.count(std::string(r.Text(0))) > 0;
                              return !covers;
                            }));
    if (covers) ddl += "DROP INDEX IF EXISTS " + Q(ix) + ";";
  }
  return ddl.empty() ? Status::Ok() : c.ExecScript(ddl);
}

bool SameKey(const catalog::Key& a, const catalog::Key& b) { return a.columns == b.columns; }

// A new alternate key must not find two records with the same (non-null) values.
Status CheckKeyUnique(storage::Connection& c, const catalog::Table& t, const catalog::Key& k) {
  std::string cols, where, shown;
  for (const auto& name : k.columns) {
    const Column* col = t.FindColumn(name);
    std::string q = Q(col ? col->sql_name : name);
    cols += (cols.empty() ? "" : ", ") + q;
    where += (where.empty() ? "" : " AND ") + q + " IS NOT NULL";
    shown += (shown.empty() ? "" : ", ") + name;
  }
  std::string sample;
  int64_t count = 0;
  std::string sql = "SELECT " + cols + ", count(*) FROM " + Q(t.sql_table) + " WHERE " + where + " GROUP BY " + cols +
                    " HAVING count(*) > 1 LIMIT 1";
  RETURN_IF_ERROR(c.Query(sql, {}, [&](const storage::Row& r) {
    for (size_t i = 0; i < k.columns.size(); ++i) {
      int idx = static_cast<int>(i);
      sample += (i ? ", " : "") + std::string(r.is_null(idx) ? "null" : "'" + std::string(r.Text(idx)) + "'");
    }
    count = r.Int(static_cast<int>(k.columns.size()));
    return false;
  }));
  if (count == 0) return Status::Ok();
  return Status(Code::kAlreadyExists,
                "The alternate key '" + k.logical_name + "' of '" + t.logical_name +
                    "' cannot be created: " + std::to_string(count) + " records have the same value for " + shown +
                    " (" + sample + "). Make the values unique first.",
                err::kDuplicateRecordEntityKey);
}

// Changes to a table that exists before and after: dropped columns, keys and indexes; data checks.
Status SyncTable(storage::Connection& c, const catalog::Table& before, const catalog::Table& after) {
  const std::string& table = after.sql_table;
  // Data checks first, so that a refused change leaves no work half done.
  for (const auto& col : after.columns) {
    const Column* old = before.FindColumn(col->logical_name);
    if (!old || old->type != col->type) continue;
    bool text = col->type == ColumnType::kString || col->type == ColumnType::kMemo;
    if (text && col->max_length < old->max_length) {
      bool longer = false;
      RETURN_IF_ERROR(c.Query("SELECT 1 FROM " + Q(table) + " WHERE length(" + Q(col->sql_name) + ") > ? LIMIT 1",
                              std::vector<storage::SqlValue>{int64_t{col->max_length}}, [&](const storage::Row&) {
                                longer = true;
                                return false;
                              }));
      if (longer)
        return InvalidArgument("The column '" + col->logical_name + "' of '" + after.logical_name +
                                   "' has values longer than " + std::to_string(col->max_length) +
                                   " characters; shorten them before lowering its maximum length.",
                               err::kValidation);
    }
  }
  for (const auto& k : after.keys) {
    const catalog::Key* old = before.FindKey(k.logical_name);
    if (old && SameKey(*old, k)) continue;
    bool all_old = std::all_of(k.columns.begin(), k.columns.end(),
                               [&](const std::string& n) { return before.FindColumn(n) != nullptr; });
    if (all_old) RETURN_IF_ERROR(CheckKeyUnique(c, before, k));  // new columns hold no values yet
  }
  std::string ddl;
  for (const auto& k : before.keys) {
    const catalog::Key* now = after.FindKey(k.logical_name);
    if (!now || !SameKey(*now, k)) ddl += "DROP INDEX IF EXISTS " + Q("ak_" + table + "_" + k.logical_name) + ";";
  }
  for (const auto& col : before.columns) {
    const Column* now = after.FindColumn(col->logical_name);
    if (now && col->indexed && !now->indexed)
      ddl += "DROP INDEX IF EXISTS " + Q("ix_" + table + "_" + col->sql_name) + ";";
  }
  if (!ddl.empty()) RETURN_IF_ERROR(c.ExecScript(ddl));
  std::set<std::string> dropped;
  for (const auto& col : before.columns) {
    if (after.FindColumn(col->logical_name)) continue;
    for (auto& n : SqlColumns(*col)) dropped.insert(std::move(n));
    if (col->IsFileOrImage()) RETURN_IF_ERROR(DeleteFiles(c, before.logical_name, &col->logical_name));
  }
  if (dropped.empty()) return Status::Ok();
  RETURN_IF_ERROR(DropIndexesOn(c, table, dropped));
  std::set<std::string> existing;
  RETURN_IF_ERROR(c.Query("SELECT name FROM pragma_table_info(?)", std::vector<storage::SqlValue>{table},
                          [&](const storage::Row& r) {
                            existing.insert(std::string(r.Text(0)));
                            return true;
                          }));
  ddl.clear();
  for (const auto& col : dropped)
    if (existing.count(col)) ddl += "ALTER TABLE " + Q(table) + " DROP COLUMN " + Q(col) + ";";
  return ddl.empty() ? Status::Ok() : c.ExecScript(ddl);
}

}  // namespace

Status SyncSqlSchema(storage::Connection& c, const catalog::Catalog& before, const catalog::Catalog& after) {
  for (const auto& tp : before.tables()) {
    const catalog::Table* now = after.FindTable(tp->logical_name);
    if (now) {
      RETURN_IF_ERROR(SyncTable(c, *tp, *now));
      continue;
    }
    RETURN_IF_ERROR(c.ExecScript("DROP TABLE IF EXISTS " + Q(tp->sql_table) + ";"));
    RETURN_IF_ERROR(DeleteFiles(c, tp->logical_name, nullptr));
  }
  return EnsureSqlSchema(c, after);
}

storage::SqlValue ToSql(const Value& v) {
  return std::visit(
      [](const auto& x) -> storage::SqlValue {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, std::monostate>)
          return std::monostate{};
        else if constexpr (std::is_same_v<T, bool>)
          return int64_t{x ? 1 : 0};
        else if constexpr (std::is_same_v<T, int64_t>)
          return x;
        else if constexpr (std::is_same_v<T, double>)
          return x;
        else if constexpr (std::is_same_v<T, std::string>)
          return x;
        else if constexpr (std::is_same_v<T, Guid>)
          return x.ToString();
        else if constexpr (std::is_same_v<T, Timestamp>)
          return x.ms;
        else if constexpr (std::is_same_v<T, Date>)
          return int64_t{x.days};
        else
          return x.id.ToString();
      },
      v);
}

Value FromSql(const Column& col, const storage::Row& row, int i, int type_index) {
  if (row.is_null(i)) return std::monostate{};
  switch (col.type) {
    case ColumnType::kString:
    case ColumnType::kMemo:
    case ColumnType::kMultiChoice:
      return std::string(row.Text(i));
    case ColumnType::kInteger:
    case ColumnType::kBigInt:
    case ColumnType::kChoice:
    case ColumnType::kState:
    case ColumnType::kStatus:
      return row.Int(i);
    case ColumnType::kBoolean:
      return row.Int(i) != 0;
    case ColumnType::kDecimal:
    case ColumnType::kDouble:
    case ColumnType::kMoney:
      return row.Real(i);
    case ColumnType::kDateTime:
      if (col.behavior == DateBehavior::kDateOnly) return Date{static_cast<int32_t>(row.Int(i))};
      return Timestamp{row.Int(i)};
    case ColumnType::kUniqueIdentifier:
    case ColumnType::kFile: {
      auto g = Guid::Parse(row.Text(i));
      return g ? Value(*g) : Value(std::monostate{});
    }
    case ColumnType::kImage:
      return std::string(row.Text(i));
    case ColumnType::kLookup:
    case ColumnType::kCustomer:
    case ColumnType::kOwner: {
      auto g = Guid::Parse(row.Text(i));
      if (!g) return std::monostate{};
      std::string table;
      if (col.IsPolymorphic() && type_index >= 0 && !row.is_null(type_index))
        table = std::string(row.Text(type_index));
      else if (!col.targets.empty())
        table = col.targets.front();
      return EntityRef{std::move(table), *g};
    }
  }
  return std::monostate{};
}

namespace {

Status TypeMismatch(const Column& col, const Literal& lit, std::string_view expected) {
  return QueryError("The value '" + lit.text + "' is not a valid " + std::string(expected) + " for the property '" +
                    col.logical_name + "'.");
}

}  // namespace

Result<Value> LiteralToValue(const Column& col, const Literal& lit) {
  using K = Literal::Kind;
  if (lit.kind == K::kNull) return Value(std::monostate{});
  switch (col.type) {
    case ColumnType::kString:
    case ColumnType::kMemo:
    case ColumnType::kMultiChoice:
      if (lit.kind == K::kString) return Value(lit.text);
      if (col.type == ColumnType::kMultiChoice && lit.kind == K::kInteger) return Value(lit.text);
      return TypeMismatch(col, lit, "string");
    case ColumnType::kInteger:
    case ColumnType::kBigInt:
    case ColumnType::kChoice:
    case ColumnType::kState:
    case ColumnType::kStatus: {
      if (lit.kind != K::kInteger && lit.kind != K::kString) return TypeMismatch(col, lit, "integer");
      int64_t v = 0;
      auto r = std::from_chars(lit.text.data(), lit.text.data() + lit.text.size(), v);
      if (r.ec != std::errc() || r.ptr != lit.text.data() + lit.text.size()) return TypeMismatch(col, lit, "integer");
      return Value(v);
    }
    case ColumnType::kBoolean:
      if (lit.kind == K::kBool) return Value(lit.text == "true");
      if (lit.kind == K::kInteger && (lit.text == "0" || lit.text == "1")) return Value(lit.text == "1");
      return TypeMismatch(col, lit, "boolean");
    case ColumnType::kDecimal:
    case ColumnType::kDouble:
    case ColumnType::kMoney: {
      if (lit.kind != K::kInteger && lit.kind != K::kDecimal && lit.kind != K::kString)
        return TypeMismatch(col, lit, "number");
      double d = 0;
      auto r = std::from_chars(lit.text.data(), lit.text.data() + lit.text.size(), d);
      if (r.ec != std::errc() || r.ptr != lit.text.data() + lit.text.size()) return TypeMismatch(col, lit, "number");
      return Value(d);
    }
    case ColumnType::kDateTime: {
      if (lit.kind != K::kDateTime && lit.kind != K::kDate && lit.kind != K::kString)
        return TypeMismatch(col, lit, "date");
      if (col.behavior == catalog::DateBehavior::kDateOnly) {
        auto d = ParseDate(lit.text);
        if (!d) return TypeMismatch(col, lit, "date");
        return Value(*d);
      }
      auto t = ParseTimestamp(lit.text);
      if (!t) return TypeMismatch(col, lit, "date and time");
      return Value(*t);
    }
    case ColumnType::kUniqueIdentifier:
    case ColumnType::kLookup:
    case ColumnType::kCustomer:
    case ColumnType::kOwner: {
      if (lit.kind != K::kGuid && lit.kind != K::kString) return TypeMismatch(col, lit, "GUID");
      auto g = Guid::Parse(lit.text);
      if (!g) return TypeMismatch(col, lit, "GUID");
      if (col.type == ColumnType::kUniqueIdentifier) return Value(*g);
      return Value(EntityRef{col.targets.empty() ? "" : col.targets.front(), *g});
    }
    case ColumnType::kFile: {
      if (lit.kind != K::kGuid && lit.kind != K::kString) return TypeMismatch(col, lit, "GUID");
      auto g = Guid::Parse(lit.text);
      if (!g) return TypeMismatch(col, lit, "GUID");
      return Value(*g);
    }
    case ColumnType::kImage:
      return QueryError("The image column '" + col.logical_name + "' can only be compared with null.");
  }
  return TypeMismatch(col, lit, "value");
}

Status SyncPrivileges(storage::Connection& c, const catalog::Catalog& cat) {
  struct Want {
    std::string name;
    int64_t right;
    bool below_global;  // Basic/Local/Deep allowed (tables with owners)
  };
  std::map<std::string, Want> want;  // id → privilege
  for (const auto& t : cat.tables()) {
    if (t->is_intersect) continue;
    for (security::Verb v : security::kAllVerbs) {
      std::string name = security::PrivilegeName(v, t->schema_name);
      want[security::PrivilegeId(name).ToString()] = {name, security::RightOf(v),
                                                      t->ownership == catalog::Ownership::kUser};
    }
  }
  for (std::string_view misc : security::kMiscPrivileges)
    want[security::PrivilegeId(misc).ToString()] = {std::string(misc), 0, false};
  std::set<std::string> have;
  RETURN_IF_ERROR(c.Query("SELECT privilegeid FROM privilege", {}, [&](const storage::Row& r) {
    have.insert(std::string(r.Text(0)));
    return true;
  }));
  for (const auto& id : have) {
    if (want.count(id)) continue;
    std::vector<storage::SqlValue> p = {id};
    RETURN_IF_ERROR(c.Exec("DELETE FROM roleprivileges WHERE privilegeid = ?", p).status());
    RETURN_IF_ERROR(c.Exec("DELETE FROM privilege WHERE privilegeid = ?", p).status());
  }
  for (const auto& [id, w] : want) {
    if (have.count(id)) continue;
    int64_t below = w.below_global ? 1 : 0;
    std::vector<storage::SqlValue> p = {id, w.name, w.right, below, below, below};
    RETURN_IF_ERROR(c.Exec("INSERT INTO privilege (privilegeid, name, accessright, canbebasic, canbelocal, canbedeep, "
                           "canbeglobal) VALUES (?, ?, ?, ?, ?, ?, 1)",
                           p)
                        .status());
  }
  return Status::Ok();
}

}  // namespace tributary::data
