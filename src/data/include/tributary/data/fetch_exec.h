#pragma once
// Runs a parsed FetchXML query (fetchxml.h) against the store: binds the names against the catalog,
// translates the query into one parameterized SQL statement (joins, EXISTS subqueries, filters
// through the same binder as $filter, ORDER BY, GROUP BY for aggregates, LIMIT/OFFSET or keyset
// paging) and reads the rows as typed cells. $apply queries run through the same code: the Web API
// builds an aggregate FetchQuery for them.
//
// Paging follows Dataverse: `count` rows per page (default 5000), `page` counts from 1, and the
// result carries a paging cookie for the next page when there are more records. The cookie is
// Tributary's own (`<cookie page="N"><accountid last="{…}" first="{…}" /></cookie>`, one element
// per order attribute and the primary id); when it matches the query's orders the next page is
// read by keyset, otherwise by offset.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "tributary/data/fetchxml.h"
#include "tributary/data/service.h"

namespace tributary::data {

// Dataverse's limits on FetchXML queries.
inline constexpr int64_t kFetchAggregateRecordLimit = 50000;  // rows an aggregate query may cover
inline constexpr int64_t kFetchTotalCountLimit = 5000;        // returntotalrecordcount cap
inline constexpr int64_t kFetchSimplePagingLimit = 50000;     // rows reachable by page number alone
inline constexpr int kMaxFetchLinks = 15;                     // link-entity elements per query

struct FetchOptions {
  // Page size when the query has no `count` (Prefer: odata.maxpagesize); capped at 5000.
  std::optional<int64_t> page_size;
  // An extra condition on the root entity, AND-ed to the query's filters ($apply's filter(...)).
  const Expr* filter = nullptr;
  // The AggregateQueryRecordLimit: an aggregate over more rows fails (tests lower it).
  int64_t aggregate_record_limit = kFetchAggregateRecordLimit;
  // The instant relative date conditions (today, last-x-days, …) count from; unset: the clock.
  std::optional<Timestamp> now;
};

// One output column of a result.
struct FetchColumn {
  // The result name: the attribute's logical name, "alias.attribute" for a link-entity column
  // (the link's alias, or its name plus a sequence number when it has none), or the attribute's
  // alias.
  std::string name;
  const catalog::Table* table = nullptr;    // the table the attribute belongs to
  const catalog::Column* column = nullptr;  // the attribute; null only for the count of rows
  bool aliased = false;                     // an AliasedValue: a link-entity column or an aliased attribute
  std::string aggregate;                    // count, countcolumn, sum, avg, min, max; empty otherwise
  std::string dategrouping;                 // day, week, month, quarter, year, fiscal-period, fiscal-year
  bool groupby = false;
  // Whether the values are plain integers rather than values of `column`: counts and date parts.
  bool IsInteger() const { return aggregate == "count" || aggregate == "countcolumn" || !dategrouping.empty(); }
};

struct FetchRow {
  std::optional<Guid> id;     // the root record (absent for aggregate and distinct rows)
  int64_t version = 0;        // its versionnumber (0 when the table has none)
  std::vector<Value> values;  // one per FetchResult::columns; null values are omitted by the Web API
};

struct FetchResult {
  const catalog::Table* table = nullptr;  // the <entity>
  bool aggregate = false;
  bool distinct = false;
  std::vector<FetchColumn> columns;
  std::vector<FetchRow> rows;
  int64_t page = 1;                           // the page returned
  bool more_records = false;                  // there is a next page
  std::string paging_cookie;                  // the inner cookie for the next request; empty when none applies
  std::optional<int64_t> total_record_count;  // returntotalrecordcount, capped at 5000
  bool total_record_count_limit_exceeded = false;
};

// Runs `q` on a pooled read connection. Errors: unknown names and invalid combinations are
// QueryErrors (400) whose messages follow Dataverse's ("'account' entity doesn't contain attribute
// with Name = 'nme' and NameMapping = 'Logical'."); an aggregate over more than
// `aggregate_record_limit` rows is AggregateQueryRecordLimit (0x8004E023).
Result<FetchResult> ExecuteFetch(OrganizationService& svc, const CallerContext& caller, const FetchQuery& q,
                                 const FetchOptions& options = {});

}  // namespace tributary::data
