#pragma once
// FetchXML: the parsed form of a <fetch> query, as the Web API receives it in `?fetchXml=`.
//
// ParseFetchXml reads the XML text (already URL-decoded by the HTTP layer) with a small, strict,
// non-validating XML reader and checks it against the FetchXML schema and the rules Dataverse
// enforces before running a query. The model is syntactic like query.h: names are not bound to
// the catalog and values stay text; the translator binds them.
//
// Accepted XML: elements, attributes in single or double quotes, self-closing tags, comments,
// CDATA sections, the XML declaration, a UTF-8 byte order mark, the five predefined entities and
// numeric character references. Rejected: DTDs/<!DOCTYPE>, other processing instructions, other
// entities, invalid UTF-8 or characters XML does not allow, and anything malformed.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tributary/base/status.h"

namespace tributary::data {

// Filters and link-entities may nest at most this many levels deep, counted together (a filter
// in a link-entity in a filter is three levels).
inline constexpr int kMaxFetchNesting = 32;
// Largest page size (`count`) and `top`.
inline constexpr int64_t kMaxFetchPageSize = 5000;

// <attribute>: a selected column, or in an aggregate query an aggregate or a group-by column.
struct FetchAttribute {
  std::string name;
  std::string alias;      // empty = none
  std::string aggregate;  // empty, count, countcolumn, sum, avg, min, max
  bool groupby = false;
  std::string dategrouping;  // empty, day, week, month, quarter, year, fiscal-period, fiscal-year
  bool distinct = false;
  bool operator==(const FetchAttribute&) const = default;
};

// <order>: exactly one of `attribute` and `alias` (an attribute alias in aggregate queries) is set.
struct FetchOrder {
  std::string attribute;
  std::string alias;
  bool descending = false;
  bool operator==(const FetchOrder&) const = default;
};

// <condition>. The values' count fits the operator (see ParseFetchXml); `values` and `valueof`
// are never both set.
struct FetchCondition {
  std::string entityname;  // alias of a link-entity, or empty
  std::string attribute;
  std::string op;                   // the operator as written: eq, ne, like, in, between, last-x-days, …
  std::vector<std::string> values;  // value="…" or the <value> children, in order (entities decoded)
  std::string valueof;              // column comparison: the other column; empty otherwise
  bool operator==(const FetchCondition&) const = default;
};

struct FetchLink;

// <filter>: conditions, nested filters and filter link-entities (link-type any, not any, all,
// not all) combined with and/or.
struct FetchFilter {
  bool is_or = false;
  std::vector<FetchCondition> conditions;
  std::vector<FetchFilter> filters;
  std::vector<FetchLink> links;  // each with a filter link type; never selects columns
  bool operator==(const FetchFilter&) const = default;
};

// <link-entity>: a join. Inside an entity or link-entity `link_type` is inner, outer, exists, in
// or matchfirstrowusingcrossapply; inside a filter it is any, not any, all or not all. Links of
// type exists, in, any, not any, all and not all select no columns.
struct FetchLink {
  std::string name, from, to, alias, link_type = "inner";  // from/to may be empty (relationship inferred)
  bool visible = false;
  bool intersect = false;
  bool all_attributes = false;
  std::vector<FetchAttribute> attributes;
  std::vector<FetchOrder> orders;
  std::optional<FetchFilter> filter;  // several <filter> children are combined with "and"
  std::vector<FetchLink> links;
  bool operator==(const FetchLink&) const = default;
};

struct FetchQuery {
  std::string entity;  // <entity name="...">
  bool all_attributes = false;
  std::vector<FetchAttribute> attributes;
  std::vector<FetchOrder> orders;
  std::optional<FetchFilter> filter;  // several <filter> children are combined with "and"
  std::vector<FetchLink> links;
  std::optional<int64_t> top, count, page;  // 1 ≤ top, count ≤ 5000; page ≥ 1; top never with count/page
  std::string paging_cookie;                // decoded attribute value, e.g. <cookie page="1">…</cookie>
  bool distinct = false, aggregate = false, returntotalrecordcount = false, no_lock = false;
  bool operator==(const FetchQuery&) const = default;
};

// Parses and validates a FetchXML query. Any input is safe: it takes time linear in its size,
// bounded stack, and never throws (beyond std::bad_alloc). On failure the status is a QueryError
// (kInvalidArgument, 0x80060888) whose message names the element (with line and column) or
// attribute and the problem; it is valid UTF-8.
//
// Beyond well-formed XML and the schema (known elements and attributes, required attributes,
// enumerations, booleans, integers), it enforces: exactly one <entity>; `top` not with `page` or
// `count`; `count` and `top` ≤ 5000; in an aggregate query every attribute has an alias and an
// aggregate or groupby, and aggregate attributes are only allowed in aggregate queries; operator
// arity (none for null/today/eq-userid…, exactly one for eq/like/on…, one or more for in/not-in/
// contain-values, two for between/not-between, integers for last-x-days and the other x/fiscal
// operators); valueof only with eq/ne/neq/gt/ge/lt/le; unique link-entity aliases; nesting
// depth (kMaxFetchNesting). Attributes Tributary accepts but ignores (version, mapping,
// output-format, options, latematerialize, ui* hints, xmlns…) are listed in fetchxml.cpp;
// attributes that would change results but are not supported (utc-offset, datasource,
// rowaggregate, order entityname, condition column/aggregate/alias) are rejected.
Result<FetchQuery> ParseFetchXml(std::string_view xml);

// True for the condition operators of the FetchXML schema (eq, neq, ne, …, contain-values,
// not-contain-values), exactly as written there (case-sensitive).
bool IsKnownFetchOperator(std::string_view op);

// Renders a query as compact FetchXML that ParseFetchXml parses back to an equal query (the
// round-trip property the tests and the fuzzer check). Attribute values are in double quotes and
// escaped; a single condition value is written as value="…", others as <value> elements.
std::string FormatFetchXml(const FetchQuery& query);

}  // namespace tributary::data
