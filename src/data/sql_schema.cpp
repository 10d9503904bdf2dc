#include "sql_schema.h"

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
      if (col->indexed)
        ddl += "CREATE INDEX IF NOT EXISTS " + Q("ix_" + t.sql_table + "_" + col->sql_name) + " ON " + Q(t.sql_table) +
               " (" + Q(col->sql_name) + ");";
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

}  // namespace tributary::data
