#pragma once
// The $apply query option (OData data aggregation) in the subset Dataverse supports:
//
//   apply       := transform ("/" transform)*
//   transform   := "filter(" <$filter expression> ")"
//                | "groupby((" path ("," path)* ")" ["," aggregate] ")"
//                | aggregate
//   aggregate   := "aggregate(" item ("," item)* ")"
//   item        := "$count as" alias | path "with" method "as" alias
//   method      := sum | average | min | max | countdistinct
//   path        := name ("/" name)*        (a column, _x_value, or single-valued navigations then a column)
//
// filter(...) transforms come first (several are and-ed); at most one groupby or aggregate
// follows and ends the pipeline. The filter text goes through ParseFilter, so it has $filter's
// syntax and aliases. Like uri_parser.h the result is syntactic (names are not bound) and errors
// are QueryErrors (0x80060888) naming the problem. Pure and thread-safe.

#include <string>
#include <string_view>
#include <vector>

#include "tributary/base/status.h"
#include "tributary/data/query.h"
#include "tributary/odata/uri_parser.h"

namespace tributary::odata {

struct ApplyAggregate {
  std::vector<std::string> path;  // empty for $count
  std::string method;             // "count" ($count), sum, average, min, max, countdistinct
  std::string alias;
  bool operator==(const ApplyAggregate&) const = default;
};

struct ApplyQuery {
  data::ExprPtr filter;  // the filter(...) transforms, and-ed; null when none
  bool groupby = false;  // a groupby transform
  std::vector<std::vector<std::string>> groupby_paths;
  std::vector<ApplyAggregate> aggregates;  // of aggregate(...), alone or inside groupby
  // Whether the pipeline aggregates (groupby or aggregate); a filter-only $apply does not.
  bool Aggregates() const { return groupby || !aggregates.empty(); }
};

Result<ApplyQuery> ParseApply(std::string_view text, const AliasMap& aliases);

}  // namespace tributary::odata
