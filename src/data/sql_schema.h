#pragma once
// How catalog tables map to SQL: column types, value encoding, DDL. Private to the data layer.

#include <string>

#include "tributary/catalog/catalog.h"
#include "tributary/data/value.h"
#include "tributary/storage/engine.h"

namespace tributary::data {

// Double-quoted SQL identifier.
std::string Q(std::string_view ident);

// Creates missing SQL tables, columns and indexes for every catalog table. Idempotent.
Status EnsureSqlSchema(storage::Connection& c, const catalog::Catalog& cat);

// Encodes a typed value for SQL. Lookups bind their id; polymorphic lookups also need TypeOf().
storage::SqlValue ToSql(const Value& v);
// Decodes column `i` of a row into the column's typed value.
Value FromSql(const catalog::Column& col, const storage::Row& row, int i, int type_index = -1);

// Converts a query literal to the typed value of `col` (for filters and keys). Errors name the
// column and the expected type.
Result<Value> LiteralToValue(const catalog::Column& col, const Literal& lit);

}  // namespace tributary::data
