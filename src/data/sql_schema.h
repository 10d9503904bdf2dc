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

// Brings the SQL schema from `before` to `after`, the catalogs before and after a schema change:
// drops the SQL tables (intersect tables included), columns and indexes of what `after` no longer
// has, with the stored files of dropped tables and file/image columns; checks that existing data
// allows what changed; then creates what is missing (EnsureSqlSchema). Fails without finishing when
// a string column got shorter than a stored value (InvalidArgument, err::kValidation) or a new
// alternate key finds two records with the same values (AlreadyExists,
// err::kDuplicateRecordEntityKey); the caller runs it in a transaction and rolls back on error.
Status SyncSqlSchema(storage::Connection& c, const catalog::Catalog& before, const catalog::Catalog& after);

// Keeps the privilege table in step with the catalog: the eight prv<Verb><Table> privileges of
// every table (stable ids, security::PrivilegeId) and the privileges that are not about a table;
// removes those of dropped tables from the table and from every role. Idempotent.
Status SyncPrivileges(storage::Connection& c, const catalog::Catalog& cat);

// Encodes a typed value for SQL. Lookups bind their id; polymorphic lookups also need TypeOf().
storage::SqlValue ToSql(const Value& v);
// Decodes column `i` of a row into the column's typed value.
Value FromSql(const catalog::Column& col, const storage::Row& row, int i, int type_index = -1);

// Converts a query literal to the typed value of `col` (for filters and keys). Errors name the
// column and the expected type.
Result<Value> LiteralToValue(const catalog::Column& col, const Literal& lit);

}  // namespace tributary::data
