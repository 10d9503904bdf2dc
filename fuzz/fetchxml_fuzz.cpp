// libFuzzer target for the FetchXML parser. The input must never crash, hang or fail with anything
// but a QueryError with a UTF-8 message; a parsed query must satisfy the promises of fetchxml.h
// and survive FormatFetchXml → ParseFetchXml unchanged. Each input is parsed as a whole document
// and, to reach the condition rules faster, as the content of an entity's <filter>.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <span>
#include <string>
#include <string_view>

#include "tributary/base/status.h"
#include "tributary/base/strings.h"
#include "tributary/data/fetchxml.h"

namespace {

using tributary::Status;
using namespace tributary::data;

[[noreturn]] void Die(const char* what, const std::string& detail) {
  std::fprintf(stderr, "%s: %s\n", what, detail.c_str());
  std::abort();
}

void CheckError(const Status& s) {
  if (s.code() != tributary::Code::kInvalidArgument || s.error_code() != tributary::err::kQueryError)
    Die("failed without a QueryError", s.message());
  if (s.message().empty() || !tributary::IsUtf8(s.message())) Die("empty or invalid UTF-8 message", s.message());
  if (s.message().size() > 1000) Die("message too long", s.message().substr(0, 200));
}

constexpr std::string_view kNoValue[] = {"null",      "not-null",  "today",     "yesterday",     "tomorrow",
                                         "this-week", "eq-userid", "ne-userid", "eq-businessid", "ne-businessid"};
constexpr std::string_view kTwoValues[] = {"between", "not-between", "in-fiscal-period-and-year"};
constexpr std::string_view kComparisons[] = {"eq", "neq", "ne", "gt", "ge", "lt", "le"};
constexpr std::string_view kFilterLinks[] = {"any", "not any", "all", "not all"};
constexpr std::string_view kJoinLinks[] = {"inner", "outer", "exists", "in", "matchfirstrowusingcrossapply"};

bool In(std::span<const std::string_view> list, std::string_view s) {
  return std::find(list.begin(), list.end(), s) != list.end();
}

struct Checker {
  bool aggregate = false;
  std::set<std::string> aliases;

  void Attribute(const FetchAttribute& a) {
    if (a.name.empty()) Die("attribute without name", a.alias);
    if (!aggregate && (!a.aggregate.empty() || a.groupby)) Die("aggregate attribute in plain query", a.name);
    if (aggregate && (a.alias.empty() || (a.aggregate.empty() == !a.groupby))) Die("bad aggregate attribute", a.name);
    if (!a.dategrouping.empty() && !a.groupby) Die("dategrouping without groupby", a.name);
  }

  void Condition(const FetchCondition& c) {
    if (c.attribute.empty()) Die("condition without attribute", c.op);
    if (!IsKnownFetchOperator(c.op)) Die("unknown operator accepted", c.op);
    if (!c.valueof.empty()) {
      if (!c.values.empty() || !In(kComparisons, c.op)) Die("bad valueof condition", c.op);
      return;
    }
    if (In(kNoValue, c.op) && !c.values.empty()) Die("value for a no-value operator", c.op);
    if (In(kTwoValues, c.op) && c.values.size() != 2) Die("wrong value count", c.op);
    if ((c.op == "eq" || c.op == "like" || c.op == "last-x-days") && c.values.size() != 1)
      Die("wrong value count", c.op);
    if ((c.op == "in" || c.op == "contain-values") && c.values.empty()) Die("no values", c.op);
  }

  // Returns the nesting depth.
  int Filter(const FetchFilter& f) {
    int d = 0;
    for (const FetchCondition& c : f.conditions) Condition(c);
    for (const FetchFilter& c : f.filters) d = std::max(d, Filter(c));
    for (const FetchLink& l : f.links) {
      if (!In(kFilterLinks, l.link_type)) Die("join link type in a filter", l.link_type);
      if (l.all_attributes || !l.attributes.empty()) Die("filter link selects columns", l.name);
      d = std::max(d, Link(l));
    }
    return d + 1;
  }

  int Link(const FetchLink& l) {
    if (l.name.empty()) Die("link without name", l.alias);
    if (!l.alias.empty() && !aliases.insert(l.alias).second) Die("duplicate alias", l.alias);
    if (!In(kJoinLinks, l.link_type) && !In(kFilterLinks, l.link_type)) Die("unknown link type", l.link_type);
    return Body(l) + 1;
  }

  template <typename Node>
  int Body(const Node& n) {
    if (aggregate && n.all_attributes) Die("all-attributes in aggregate query", "");
    for (const FetchAttribute& a : n.attributes) Attribute(a);
    for (const FetchOrder& o : n.orders)
      if (o.attribute.empty() == o.alias.empty()) Die("order needs exactly one of attribute, alias", o.attribute);
    int d = n.filter ? Filter(*n.filter) : 0;
    for (const FetchLink& l : n.links) {
      if (In(kFilterLinks, l.link_type)) Die("filter link type outside a filter", l.link_type);
      d = std::max(d, Link(l));
    }
    return d;
  }

  void Query(const FetchQuery& q) {
    aggregate = q.aggregate;
    if (q.entity.empty()) Die("query without entity", "");
    if (q.top && (q.page || q.count)) Die("top with paging", "");
    for (const auto& n : {q.top, q.count})
      if (n && (*n < 1 || *n > kMaxFetchPageSize)) Die("top/count out of range", std::to_string(*n));
    if (q.page && *q.page < 1) Die("page out of range", std::to_string(*q.page));
    if (Body(q) > kMaxFetchNesting) Die("nesting too deep", "");
  }
};

void Run(std::string_view text) {
  auto q = ParseFetchXml(text);
  if (!q.ok()) {
    CheckError(q.status());
    return;
  }
  Checker().Query(*q);
  std::string xml = FormatFetchXml(*q);
  auto again = ParseFetchXml(xml);
  if (!again.ok()) Die("formatted query does not parse", xml + " → " + again.status().message());
  if (!(*again == *q)) Die("round trip changed the query", xml);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  Run(text);
  Run("<fetch><entity name='a'><filter>" + std::string(text) + "</filter></entity></fetch>");
  return 0;
}
