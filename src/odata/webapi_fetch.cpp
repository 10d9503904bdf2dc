// FetchXML (GET {set}?fetchXml=…) and $apply (GET {set}?$apply=…) queries of the Web API.
//
// Both run through data::ExecuteFetch: FetchXML as parsed, $apply translated into an aggregate
// FetchQuery (group-by properties and aggregates as attributes, lookup paths as outer
// link-entities) with its filter(...) passed alongside. Results are written as Dataverse writes
// FetchXML results: null values omitted, link-entity columns as "{alias}_x002e_{attribute}",
// aggregates under their aliases, and the paging annotations (fetchxmlpagingcookie, morerecords,
// totalrecordcount) when asked for.

#include "apply_parser.h"
#include "tributary/base/strings.h"
#include "tributary/data/fetch_exec.h"
#include "tributary/data/fetchxml.h"
#include "tributary/odata/errors.h"
#include "webapi_internal.h"

namespace tributary::odata {

using catalog::Column;
using catalog::NavProperty;
using catalog::Table;

namespace {

constexpr std::string_view kPagingCookie = "Microsoft.Dynamics.CRM.fetchxmlpagingcookie";
constexpr std::string_view kMoreRecords = "Microsoft.Dynamics.CRM.morerecords";
constexpr std::string_view kTotalCount = "Microsoft.Dynamics.CRM.totalrecordcount";
constexpr std::string_view kTotalCountExceeded = "Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded";

// "contact.fullname" → "contact_x002e_fullname": '.' is not allowed in an OData property name.
std::string PropertyNameOf(std::string_view name) {
  std::string out;
  for (char ch : name) {
    if (ch == '.')
      out += "_x002e_";
    else
      out += ch;
  }
  return out;
}

// PercentEncode with lower-case hex digits, as Dataverse writes the paging cookie ("%253ccookie").
std::string PercentEncodeLower(std::string_view in) {
  std::string out = PercentEncode(in);
  for (size_t i = 0; i + 2 < out.size(); ++i)
    if (out[i] == '%') {
      for (size_t k = i + 1; k <= i + 2; ++k)
        if (out[k] >= 'A' && out[k] <= 'F') out[k] = static_cast<char>(out[k] - 'A' + 'a');
      i += 2;
    }
  return out;
}

struct WriteOptions {
  bool attribute_names = true;  // AttributeName annotations on aliased values (FetchXML)
};

// The JSON body of a FetchXML or $apply result.
HttpResponse WriteFetchResult(WebApi::Call& c, data::OrganizationService& svc, const data::FetchResult& r,
                              const WriteOptions& wo) {
  const Table& table = *r.table;
  SerializeContext ctx = MakeSerializeContext(c, svc);
  HttpResponse resp;
  JsonWriter w(resp.body);
  w.BeginObject();
  // The context lists the entity's own columns, as for $select.
  std::string context = c.root + "$metadata#" + table.entity_set_name;
  if (!r.aggregate) {
    std::string list;
    for (const auto& col : r.columns)
      if (!col.aliased) list += (list.empty() ? "" : ",") + PropertyName(*col.column);
    if (!list.empty()) context += "(" + list + ")";
  }
  w.Key("@odata.context");
  w.String(context);
  if (c.count && r.total_record_count) {
    w.Key("@odata.count");
    w.Int(*r.total_record_count);
  }
  if (r.total_record_count || c.prefs.Wants(kTotalCount)) {
    w.Key("@" + std::string(kTotalCount));
    w.Int(r.total_record_count.value_or(-1));
    w.Key("@" + std::string(kTotalCountExceeded));
    w.Bool(r.total_record_count_limit_exceeded);
  }
  if (r.more_records) {
    // The cookie the client passes back in paging-cookie: Dataverse's shape, the inner cookie
    // URL-encoded twice; absent on the last page (DynamicsWebApi's fetchAll loops on it).
    if (!r.paging_cookie.empty() && c.prefs.Wants(kPagingCookie)) {
      w.Key("@" + std::string(kPagingCookie));
      w.String("<cookie pagenumber=\"" + std::to_string(r.page + 1) + "\" pagingcookie=\"" +
               PercentEncodeLower(PercentEncodeLower(r.paging_cookie)) + "\" istracking=\"False\" />");
    }
    if (c.prefs.Wants(kMoreRecords) || c.prefs.Wants(kPagingCookie)) {
      w.Key("@" + std::string(kMoreRecords));
      w.Bool(true);
    }
  }
  const bool etags = !r.aggregate && table.FindColumn("versionnumber");
  w.Key("value");
  w.BeginArray();
  for (const data::FetchRow& row : r.rows) {
    w.BeginObject();
    if (etags && row.id) {
      w.Key("@odata.etag");
      w.String(Etag(row.version));
    }
    for (size_t i = 0; i < r.columns.size(); ++i) {
      const data::Value& v = row.values[i];
      if (data::IsNull(v)) continue;  // FetchXML results omit null columns
      const data::FetchColumn& col = r.columns[i];
      ResultProperty p;
      const std::string name =
          col.aliased ? PropertyNameOf(col.name) : PropertyName(*col.column);  // lookups as _x_value
      p.name = name;
      p.column = col.IsInteger() ? nullptr : col.column;
      p.count = col.aggregate == "count" || col.aggregate == "countcolumn";
      if (col.aliased && wo.attribute_names && col.column) p.attribute_name = col.column->logical_name;
      if (col.table == &table) p.nav_table = &table;
      WriteResultProperty(w, p, v, ctx);
    }
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  resp.Set("Content-Type", kJsonContentType);
  AddODataHeaders(resp);
  AddPreferenceApplied(c, resp, false);
  return resp;
}

data::FetchOptions OptionsFor(const WebApi::Call& c) {
  data::FetchOptions o;
  if (c.prefs.max_page_size) o.page_size = std::clamp(*c.prefs.max_page_size, 1, kMaxPageSize);
  return o;
}

// ---- $apply → FetchQuery ------------------------------------------------------------------------

// Builds the aggregate FetchQuery of a $apply pipeline on `table`, and the names of its result
// columns (group properties as written, e.g. "statuscode", "_ownerid_value", and
// "{table}_{column}" for lookup paths such as primarycontactid/fullname; aggregate aliases).
class ApplyTranslator {
 public:
  ApplyTranslator(const Table& table, const ApplyQuery& a) : table_(table), a_(a) {}

  Result<data::FetchQuery> Translate() {
    q_.entity = table_.logical_name;
    q_.aggregate = true;
    for (const auto& path : a_.groupby_paths) RETURN_IF_ERROR(GroupBy(path));
    for (const ApplyAggregate& agg : a_.aggregates) RETURN_IF_ERROR(Aggregate(agg));
    return std::move(q_);
  }

  // The result name of a grouped path, or empty when `path` is not grouped.
  std::string GroupName(const std::vector<std::string>& path) const {
    for (const auto& [p, name] : groups_)
      if (p == path) return name;
    return "";
  }
  bool IsAggregateAlias(std::string_view name) const {
    for (const ApplyAggregate& agg : a_.aggregates)
      if (agg.alias == name) return true;
    return false;
  }

 private:
  static Status NoProperty(const Table& t, std::string_view name) {
    return QueryError("Could not find a property named '" + std::string(name) + "' on type 'Microsoft.Dynamics.CRM." +
                      t.logical_name + "'.");
  }

  // A column by its OData property name (a column, or _x_value for a lookup).
  static Result<const Column*> Property(const Table& t, std::string_view name) {
    const Column* c = t.FindColumn(name);
    if (c && c->IsLookup()) c = nullptr;
    if (!c) c = t.FindLookupProperty(name);
    if (!c) return NoProperty(t, name);
    return c;
  }

  Status GroupBy(const std::vector<std::string>& path) {
    const Table* t = &table_;
    std::vector<data::FetchLink>* links = &q_.links;
    std::vector<data::FetchAttribute>* attrs = &q_.attributes;
    std::string link_alias;
    for (size_t i = 0; i + 1 < path.size(); ++i) {
      const NavProperty* nav = t->FindNav(path[i]);
      if (!nav) return NoProperty(*t, path[i]);
      if (nav->kind != NavProperty::Kind::kSingle)
        return QueryError(
            "$apply can group by a property of a single-valued navigation property with a single "
            "target table; '" +
            path[i] + "' is not one.");
      link_alias += (link_alias.empty() ? "" : "_") + path[i];
      auto it =
          std::find_if(links->begin(), links->end(), [&](const data::FetchLink& l) { return l.alias == link_alias; });
      if (it == links->end()) {
        data::FetchLink l;
        l.name = nav->target->logical_name;
        l.from = nav->target->primary_id;
        l.to = nav->column->logical_name;
        l.alias = link_alias;
        l.link_type = "outer";
        links->push_back(std::move(l));
        it = links->end() - 1;
      }
      t = nav->target;
      attrs = &it->attributes;
      links = &it->links;
    }
    ASSIGN_OR_RETURN(const Column* col, Property(*t, path.back()));
    if (col->type == catalog::ColumnType::kDateTime)
      return QueryError("$apply can't group by the date and time column '" + col->logical_name +
                        "'; use FetchXML with dategrouping.");
    std::string name = path.size() == 1 ? path.back() : t->logical_name + "_" + path.back();
    for (const auto& [p, n] : groups_)
      if (n == name) return QueryError("$apply groups two properties under the same name '" + name + "'.");
    data::FetchAttribute a;
    a.name = col->logical_name;
    a.alias = name;
    a.groupby = true;
    attrs->push_back(std::move(a));
    groups_.emplace_back(path, name);
    return Status::Ok();
  }

  Status Aggregate(const ApplyAggregate& agg) {
    for (const auto& [p, n] : groups_)
      if (n == agg.alias) return QueryError("The alias '" + agg.alias + "' is also the name of a grouped property.");
    data::FetchAttribute a;
    a.alias = agg.alias;
    if (agg.method == "count") {
      a.name = table_.primary_id;
      a.aggregate = "count";
      q_.attributes.push_back(std::move(a));
      return Status::Ok();
    }
    if (agg.path.size() != 1)
      return QueryError("$apply aggregates columns of the queried table only; '" + agg.path.front() + "/…' is a path.");
    ASSIGN_OR_RETURN(const Column* col, Property(table_, agg.path[0]));
    a.name = col->logical_name;
    if (agg.method == "average") {
      a.aggregate = "avg";
    } else if (agg.method == "countdistinct") {
      a.aggregate = "countcolumn";
      a.distinct = true;
    } else {
      a.aggregate = agg.method;  // sum, min, max
    }
    q_.attributes.push_back(std::move(a));
    return Status::Ok();
  }

  const Table& table_;
  const ApplyQuery& a_;
  data::FetchQuery q_;
  std::vector<std::pair<std::vector<std::string>, std::string>> groups_;
};

}  // namespace

void WebApi::FetchXml(CallPtr c, const Table& table) {
  for (const auto& [k, v] : c->query)
    if (!k.empty() && k[0] == '$' && k != "$count")
      return c->Fail(QueryError("The query option '" + k +
                                "' can't be combined with fetchXml; express it in the FetchXML query."));
  auto q = data::ParseFetchXml(*c->Option("fetchXml"));
  if (!q.ok()) return c->Fail(q.status());
  if (q->entity != table.logical_name)
    return c->Fail(QueryError("The entity '" + q->entity + "' of the fetchXml query does not match the entity set '" +
                              table.entity_set_name + "' (table '" + table.logical_name + "')."));
  if (c->count) q->returntotalrecordcount = true;  // $count=true: @odata.count, as for OData queries
  auto r = data::ExecuteFetch(env_.service(), c->caller, *q, OptionsFor(*c));
  if (!r.ok()) return c->Fail(r.status());
  c->Reply(WriteFetchResult(*c, env_.service(), *r, WriteOptions{}));
}

void WebApi::Apply(CallPtr c, const Table& table) {
  auto apply = ParseApply(*c->Option("$apply"), c->aliases);
  if (!apply.ok()) return c->Fail(apply.status());
  // filter(...) alone: the matching records, as a $filter would give them.
  if (!apply->Aggregates()) {
    if (c->options.filter) {
      auto both = std::make_unique<data::Expr>();
      both->kind = data::Expr::Kind::kAnd;
      both->children.push_back(std::move(apply->filter));
      both->children.push_back(std::move(c->options.filter));
      c->options.filter = std::move(both);
    } else {
      c->options.filter = std::move(apply->filter);
    }
    data::PageRequest pr;
    pr.page_size = std::min(c->prefs.max_page_size.value_or(kMaxPageSize), kMaxPageSize);
    pr.skiptoken = c->skiptoken;
    pr.count = c->count || c->prefs.Wants(kTotalCount);
    auto page = env_.service().RetrieveMultiple(c->caller, table, c->options, pr);
    if (!page.ok()) return c->Fail(page.status());
    return c->Reply(WriteCollection(*c, *page, table.entity_set_name));
  }
  for (const char* option : {"$select", "$expand", "$skiptoken", "$count"})
    if (c->Option(option))
      return c->Fail(
          QueryError(std::string("The query option '") + option + "' can't be combined with an aggregating $apply."));
  ApplyTranslator t(table, *apply);
  auto q = t.Translate();
  if (!q.ok()) return c->Fail(q.status());
  // $orderby on the grouped properties (not on aggregate values, which Dataverse rejects).
  for (const data::OrderBy& ob : c->options.orderby) {
    std::string name = t.GroupName(ob.path);
    if (name.empty()) {
      std::string text;
      for (const auto& s : ob.path) text += (text.empty() ? "" : "/") + s;
      if (ob.path.size() == 1 && t.IsAggregateAlias(text))
        return c->Fail(QueryError("$orderby on the aggregated value '" + text + "' is not supported."));
      return c->Fail(
          QueryError("$orderby on '" + text + "' is not possible: with $apply, order by a grouped property."));
    }
    q->orders.push_back(data::FetchOrder{"", name, ob.descending});
  }
  // Every group in one answer ($apply has no next link): at most the 50,000 rows an aggregate
  // may cover, or $top.
  q->top = c->options.top.value_or(data::kFetchAggregateRecordLimit);
  // The filter(...) transformations and any $filter restrict the rows before grouping.
  data::ExprPtr filter = std::move(apply->filter);
  if (c->options.filter) {
    if (filter) {
      auto both = std::make_unique<data::Expr>();
      both->kind = data::Expr::Kind::kAnd;
      both->children.push_back(std::move(filter));
      both->children.push_back(std::move(c->options.filter));
      filter = std::move(both);
    } else {
      filter = std::move(c->options.filter);
    }
  }
  data::FetchOptions o;
  o.filter = filter.get();
  auto r = data::ExecuteFetch(env_.service(), c->caller, *q, o);
  if (!r.ok()) return c->Fail(r.status());
  c->Reply(WriteFetchResult(*c, env_.service(), *r, WriteOptions{.attribute_names = false}));
}

}  // namespace tributary::odata
