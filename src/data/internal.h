#pragma once
// Shared pieces of the organization service implementation. Private to the data layer.

#include <string>
#include <vector>

#include "sql_schema.h"
#include "tributary/data/service.h"

namespace tributary::data {

// Which columns a read returns and where they sit in the SQL row.
struct SelectPlan {
  const catalog::Table* table = nullptr;
  std::vector<const catalog::Column*> columns;  // output order
  std::vector<int> index;                       // SQL result index per column
  std::vector<int> type_index;                  // SQL index of "<col>_type" for polymorphic, else -1
  int pk_index = 0;
  int version_index = 1;
  std::string list;  // "t0.a, t0.b, …" using alias t0
};

Result<SelectPlan> PlanSelect(const catalog::Table& table, const std::vector<std::string>& select,
                              std::string_view alias = "t0", bool lenient = false);
Entity ReadEntity(const SelectPlan& plan, const storage::Row& row);

// WHERE condition identifying a record by key; `what` describes it for errors.
struct KeySql {
  std::string where;  // uses alias t0
  std::vector<storage::SqlValue> params;
  std::string what;
  bool by_id = false;
  Guid id;
};
Result<KeySql> KeyToSql(const catalog::Table& table, const RecordKey& key, std::string_view alias = "t0");
Status NotFoundFor(const catalog::Table& table, const KeySql& k);

Result<std::pair<std::string, const catalog::Column*>> OrderBySql(const catalog::Catalog& cat,
                                                                  const catalog::Table& table,
                                                                  const std::vector<std::string>& path,
                                                                  std::string_view alias,
                                                                  const CallerContext* caller = nullptr);

// Checks $expand options against the catalog (names, nested $select/$filter/$orderby).
Status ValidateExpand(const catalog::Catalog& cat, const catalog::Table& table, const std::vector<Expand>& expands,
                      int depth, const CallerContext* caller = nullptr);
// Applies `options.expand` to already-read rows.
Status ExpandRows(storage::Connection& c, const catalog::Catalog& cat, const CallerContext& caller,
                  std::vector<Entity>& rows, const std::vector<Expand>& expands, int depth,
                  std::optional<Timestamp> now = std::nullopt);

// Deletes the files of a record's file and image columns and its unfinished uploads, inside the
// transaction that deletes the record (files.cpp).
Status DeleteRecordFiles(storage::Connection& c, const catalog::Table& table, const Guid& record);

}  // namespace tributary::data
