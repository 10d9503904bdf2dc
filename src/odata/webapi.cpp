#include "tributary/odata/webapi.h"

#include <charconv>

#include "body.h"
#include "operations.h"
#include "prefer.h"
#include "serializer.h"
#include "tributary/base/json.h"
#include "tributary/base/strings.h"
#include "tributary/odata/errors.h"
#include "tributary/odata/metadata_writer.h"
#include "tributary/odata/uri_parser.h"
#include "webapi_internal.h"

namespace tributary::odata {

using catalog::Column;
using catalog::NavProperty;
using catalog::Table;

Status NotFoundSegment(std::string_view seg) {
  return NotFound("Resource not found for the segment '" + std::string(seg) + "'.", err::kQueryError);
}

Status MethodNotAllowed(std::string_view method, std::string_view what) {
  return Status(Code::kMethodNotAllowed,
                "The HTTP method '" + std::string(method) + "' is not allowed on " + std::string(what) + ".",
                err::kNotSupported);
}

HttpResponse Json200(std::string body, int status) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  r.Set("Content-Type", kJsonContentType);
  AddODataHeaders(r);
  return r;
}

HttpResponse NoContent() {
  HttpResponse r;
  r.status = 204;
  AddODataHeaders(r);
  return r;
}

std::string Etag(int64_t v) { return "W/\"" + std::to_string(v) + "\""; }

// Parses W/"123" (or "123"); nullopt for anything else.
std::optional<int64_t> ParseEtag(std::string_view s) {
  s = Trim(s);
  if (s.rfind("W/", 0) == 0) s.remove_prefix(2);
  if (s.size() < 3 || s.front() != '"' || s.back() != '"') return std::nullopt;
  s = s.substr(1, s.size() - 2);
  int64_t v = 0;
  auto r = std::from_chars(s.data(), s.data() + s.size(), v);
  if (r.ec != std::errc() || r.ptr != s.data() + s.size()) return std::nullopt;
  return v;
}

namespace {

std::string JoinSelect(const std::vector<std::string>& select) {
  std::string out;
  for (const auto& sel : select) out += (out.empty() ? "" : ",") + sel;
  return out;
}

}  // namespace

WebApi::WebApi(data::Environment& env, Post post) : env_(env), post_(std::move(post)) { RegisterOperations(); }
WebApi::~WebApi() = default;

namespace {

// Splits "/api/data/v9.2/rest?query" into the version root and the decoded resource path.
Status SplitTarget(std::string_view target, std::string& version, std::string& path, std::string& query) {
  auto q = target.find('?');
  std::string_view raw_path = target.substr(0, q);
  query = q == std::string_view::npos ? "" : std::string(target.substr(q + 1));
  std::string decoded;
  if (!PercentDecode(raw_path, decoded, false)) return QueryError("The URL path has a malformed percent escape.");
  // Collapse repeated slashes.
  std::string clean;
  for (char c : decoded)
    if (!(c == '/' && !clean.empty() && clean.back() == '/')) clean.push_back(c);
  constexpr std::string_view kPrefix = "/api/data/v";
  if (clean.rfind(kPrefix, 0) != 0) return NotFoundSegment(clean);
  auto slash = clean.find('/', kPrefix.size());
  version =
      clean.substr(kPrefix.size() - 1, slash == std::string::npos ? std::string::npos : slash - kPrefix.size() + 1);
  static const char* kVersions[] = {"v8.0", "v8.1", "v8.2", "v9.0", "v9.1", "v9.2"};
  bool ok = false;
  for (const char* v : kVersions) ok |= version == v;
  if (!ok) return NotFound("The API version '" + version + "' is not supported; use v8.0 to v9.2.", err::kQueryError);
  path = slash == std::string::npos ? "" : clean.substr(slash + 1);
  return Status::Ok();
}

}  // namespace

WebApi::CallPtr WebApi::Prepare(const data::CallerContext& caller, HttpRequest req,
                                std::function<void(HttpResponse)> respond) {
  auto call = std::make_shared<Call>();
  call->caller = caller;
  call->http = std::move(req);
  call->respond = std::move(respond);
  call->cat = env_.catalog().Get();
  call->prefs = ParsePrefer(call->http);
  std::string version, path;
  if (Status s = SplitTarget(call->http.target, version, path, call->raw_query); !s.ok()) {
    call->Fail(s);
    return nullptr;
  }
  call->root = call->http.base_url + "/api/data/" + version + "/";
  auto q = ParseQueryString(call->raw_query);
  if (!q.ok()) {
    call->Fail(q.status());
    return nullptr;
  }
  call->query = std::move(q).value();
  for (const auto& [k, v] : call->query)
    if (!k.empty() && k[0] == '@') call->aliases[k] = v;
  auto segs = ParseResourcePath(path, call->aliases);
  if (!segs.ok()) {
    call->Fail(segs.status());
    return nullptr;
  }
  call->segs = std::move(segs).value();
  return call;
}

void WebApi::Handle(const data::CallerContext& caller, HttpRequest req, std::function<void(HttpResponse)> respond) {
  if (CallPtr call = Prepare(caller, std::move(req), std::move(respond))) Route(std::move(call));
}

void WebApi::Submit(CallPtr c, WriteOp op, WriteAnswer answer) {
  if (c->changeset) {
    auto r = op(*c->changeset->scope);
    if (!r.ok()) return c->Fail(r.status());
    c->changeset->pending.push_back({c, std::move(r).value(), std::move(answer)});
    return;
  }
  auto out = std::make_shared<WriteOutcome>();
  env_.service().Transact(
      c->caller,
      [op = std::move(op), out](data::WriteScope& s) -> Status {
        ASSIGN_OR_RETURN(*out, op(s));
        return Status::Ok();
      },
      [this, c, out, answer = std::move(answer)](Status s) {
        Hop([c, s = std::move(s), out, answer]() {
          if (!s.ok()) return c->Fail(s);
          answer(*out);
        });
      });
}

namespace {

// Reads the system query options into c.options / c.count / c.skiptoken.
Status ParseQueryOptions(WebApi::Call& c) {
  std::vector<std::string> seen;
  for (const auto& [k, v] : c.query) {
    if (k.empty() || k[0] != '$') continue;
    for (const auto& s : seen)
      if (s == k) return QueryError("The query option '" + k + "' was specified more than once.");
    seen.push_back(k);
    if (k == "$select") {
      ASSIGN_OR_RETURN(c.options.select, ParseSelect(v));
    } else if (k == "$filter") {
      ASSIGN_OR_RETURN(c.options.filter, ParseFilter(v, c.aliases));
    } else if (k == "$orderby") {
      ASSIGN_OR_RETURN(c.options.orderby, ParseOrderBy(v, c.aliases));
    } else if (k == "$top") {
      ASSIGN_OR_RETURN(int64_t top, ParseTop(v));
      c.options.top = top;
    } else if (k == "$expand") {
      ASSIGN_OR_RETURN(c.options.expand, ParseExpand(v, c.aliases));
    } else if (k == "$count") {
      if (v != "true" && v != "false") return QueryError("$count must be true or false.");
      c.count = v == "true";
    } else if (k == "$skiptoken") {
      // Some clients append '/' to the next link: keep the cookie up to its closing '>'.
      auto end = v.rfind('>');
      c.skiptoken = end == std::string::npos ? v : v.substr(0, end + 1);
    } else if (k == "$id") {
      // The record to disassociate in DELETE {set}({id})/{nav}/$ref?$id=…; read by Member().
    } else if (k == "$skip") {
      return QueryError("The query parameter $skip is not supported. Use the @odata.nextLink of the response to page.");
    } else if (k == "$apply") {
      // Aggregation; answered by Apply().
    } else if (k == "$search" || k == "$format" || k == "$levels" || k == "$compute" || k == "$index") {
      return QueryError("The query parameter " + k + " is not supported.");
    } else if (k == "$deltatoken") {
      return Status(Code::kUnimplemented, "Change tracking is not available in this version of Tributary.",
                    err::kNotSupported);
    } else {
      return QueryError("The query parameter '" + k + "' is not supported.");
    }
  }
  for (const char* unsupported : {"savedQuery", "userQuery", "sql"})
    if (c.Option(unsupported))
      return Status(Code::kUnimplemented,
                    std::string(unsupported) + " queries are not available in this version of Tributary.",
                    err::kNotSupported);
  return Status::Ok();
}

}  // namespace

// The @odata.context of a record or collection: "{root}$metadata#accounts(name,revenue)[/$entity]".
std::string ContextUrl(const WebApi::Call& c, const std::string& set, bool entity) {
  std::string ctx = c.root + "$metadata#" + set;
  if (!c.options.select.empty()) ctx += "(" + JoinSelect(c.options.select) + ")";
  if (entity) ctx += "/$entity";
  return ctx;
}

SerializeContext MakeSerializeContext(const WebApi::Call& c, data::OrganizationService& svc) {
  SerializeContext ctx;
  ctx.root = c.root;
  ctx.prefs = &c.prefs;
  if (c.prefs.Wants("OData.Community.Display.V1.FormattedValue"))
    ctx.primary_name = [&svc](const std::string& table, const Guid& id) { return svc.PrimaryName(table, id); };
  return ctx;
}

void AddPreferenceApplied(const WebApi::Call& c, HttpResponse& r, bool representation) {
  std::string applied;
  auto add = [&](const std::string& s) { applied += (applied.empty() ? "" : ",") + s; };
  if (representation && c.prefs.return_representation) add("return=representation");
  if (c.prefs.max_page_size) add("odata.maxpagesize=" + std::to_string(std::min(*c.prefs.max_page_size, kMaxPageSize)));
  if (c.prefs.AnyAnnotations()) add("odata.include-annotations=\"" + c.prefs.annotations_raw + "\"");
  if (!applied.empty()) r.Set("Preference-Applied", applied);
}

Result<Json> ParseBody(const HttpRequest& req) {
  if (const std::string* ct = req.Header("content-type");
      ct && !Trim(*ct).empty() && !StartsWithIgnoreCase(Trim(*ct), "application/json"))
    return PayloadError("The Content-Type '" + *ct + "' is not supported; send application/json.");
  if (Trim(req.body).empty()) return PayloadError("The request body is empty; a JSON object is required.");
  return ParseJson(req.body);
}

// The routing table of the Web API.
void WebApi::Route(std::shared_ptr<Call> c) {
  const std::string& m = c->http.method;
  auto& svc = env_.service();
  const catalog::Catalog& cat = *c->cat;
  if (Status s = ParseQueryOptions(*c); !s.ok()) return c->Fail(s);

  // Service document, $metadata, functions, metadata sets.
  if (c->segs.empty()) {
    if (m != "GET") return c->Fail(MethodNotAllowed(m, "the service document"));
    return c->Reply(Json200(WriteServiceDocument(cat, c->root)));
  }
  const Segment& s0 = c->segs[0];
  std::string name0 = s0.name;
  if (name0.rfind("Microsoft.Dynamics.CRM.", 0) == 0) name0 = name0.substr(23);
  if (name0 == "$metadata") {
    if (m != "GET") return c->Fail(MethodNotAllowed(m, "$metadata"));
    const std::string* ann = c->Option("annotations");
    HttpResponse r;
    r.body = WriteCsdl(cat, (ann && *ann == "true") || c->prefs.AnyAnnotations(), OperationsForMetadata(*c));
    r.Set("Content-Type", "application/xml");
    AddODataHeaders(r);
    return c->Reply(std::move(r));
  }
  if (name0 == "$batch" && c->segs.size() == 1) {
    if (m != "POST") return c->Fail(MethodNotAllowed(m, "$batch"));
    return Batch(c);
  }
  if (IsMetadataWrite(*c)) return MetadataWrite(c);
  if (s0.name == "EntityDefinitions") {
    if (c->options.filter && s0.keys.empty() && c->segs.size() == 1) {
      // Filter the table list: LogicalName/EntitySetName/SchemaName equality terms (or-ed).
      std::vector<const Table*> keep;
      std::function<bool(const data::Expr&, const Table&)> eval = [&](const data::Expr& e, const Table& t) -> bool {
        if (e.kind == data::Expr::Kind::kOr) return eval(*e.children[0], t) || eval(*e.children[1], t);
        if (e.kind == data::Expr::Kind::kAnd) return eval(*e.children[0], t) && eval(*e.children[1], t);
        if (e.kind == data::Expr::Kind::kCompare && e.children[0]->kind == data::Expr::Kind::kProperty &&
            e.children[1]->kind == data::Expr::Kind::kLiteral && e.children[0]->path.size() == 1) {
          const std::string& p = e.children[0]->path[0];
          const std::string& v = e.children[1]->literal.text;
          std::string actual = p == "LogicalName"             ? t.logical_name
                               : p == "EntitySetName"         ? t.entity_set_name
                               : p == "SchemaName"            ? t.schema_name
                               : p == "ObjectTypeCode"        ? std::to_string(t.object_type_code)
                               : p == "IsCustomEntity"        ? (t.is_custom ? "true" : "false")
                               : p == "ChangeTrackingEnabled" ? (t.change_tracking ? "true" : "false")
                                                              : std::string("\x01");
          bool eq = EqualsIgnoreCase(actual, v);
          return e.op == data::CompareOp::kNe ? !eq : eq;
        }
        return false;
      };
      for (const auto& t : cat.tables())
        if (eval(*c->options.filter, *t)) keep.push_back(t.get());
      auto body = WriteEntityDefinitions(TableList(keep), c->root, c->options.select);
      if (!body.ok()) return c->Fail(body.status());
      return c->Reply(Json200(std::move(body).value()));
    }
    if (s0.keys.empty()) {
      if (c->segs.size() != 1) return c->Fail(NotFoundSegment(c->segs[1].name));
      auto body = WriteEntityDefinitions(cat, c->root, c->options.select);
      if (!body.ok()) return c->Fail(body.status());
      return c->Reply(Json200(std::move(body).value()));
    }
    const Table* t = nullptr;
    if (s0.keys.size() == 1 && s0.keys[0].name == "LogicalName")
      t = cat.FindTable(s0.keys[0].value.text);
    else if (s0.keys.size() == 1 && s0.keys[0].name.empty()) {
      if (auto g = Guid::Parse(s0.keys[0].value.text)) t = cat.FindByMetadataId(*g);
    }
    if (!t)
      return c->Fail(
          NotFound("Could not find an entity with the key " + s0.keys[0].raw + ".", err::kObjectDoesNotExist));
    if (c->segs.size() == 1) {
      auto body = WriteEntityDefinition(*t, c->root, c->options.select);
      if (!body.ok()) return c->Fail(body.status());
      return c->Reply(Json200(std::move(body).value()));
    }
    const Segment& s1 = c->segs[1];
    if (s1.name == "Keys" && c->segs.size() == 2) return c->Reply(Json200(WriteKeys(*t, c->root)));
    if (s1.name == "Attributes") {
      AttributeQuery aq;
      aq.select = c->options.select;
      for (const auto& ex : c->options.expand) {
        if (ex.nav == "OptionSet")
          aq.expand_option_set = true;
        else if (ex.nav == "GlobalOptionSet")
          aq.expand_global_option_set = true;
        else
          return c->Fail(QueryError("Could not find a property named '" + ex.nav + "' on AttributeMetadata."));
      }
      const Column* col = nullptr;
      size_t next = 2;
      if (!s1.keys.empty()) {
        if (s1.keys.size() == 1 && s1.keys[0].name == "LogicalName")
          col = t->FindColumn(s1.keys[0].value.text);
        else if (s1.keys.size() == 1 && s1.keys[0].name.empty()) {
          if (auto g = Guid::Parse(s1.keys[0].value.text))
            for (const auto& cc : t->columns)
              if (cc->metadata_id == *g) col = cc.get();
        }
        if (!col)
          return c->Fail(
              NotFound("Could not find an attribute with the key " + s1.keys[0].raw + ".", err::kObjectDoesNotExist));
      }
      if (next < c->segs.size()) aq.cast = c->segs[next++].name;
      if (next < c->segs.size()) return c->Fail(NotFoundSegment(c->segs[next].name));
      auto body = col ? WriteAttributeAs(*t, *col, c->root, aq) : WriteAttributesAs(*t, c->root, aq);
      if (!body.ok()) return c->Fail(body.status());
      return c->Reply(Json200(std::move(body).value()));
    }
    return c->Fail(NotFoundSegment(s1.name));
  }

  const Table* table = cat.FindBySetName(s0.name);
  if (!table) {
    // Unbound functions and actions: /WhoAmI(), /Microsoft.Dynamics.CRM.WhoAmI, /new_MyApi.
    if (c->segs.size() == 1)
      if (auto op = FindOperation(name0, OperationBinding::kUnbound, nullptr, c))
        return Invoke(c, *op, s0, nullptr, std::nullopt);
    return c->Fail(NotFoundSegment(s0.name));
  }

  if (s0.has_parens && s0.keys.empty())
    return c->Fail(QueryError("The key of '" + s0.name + "' is empty; address a record as " + s0.name + "(<id>)."));
  // Collection: /accounts, /accounts/$count.
  if (s0.keys.empty()) {
    if (c->segs.size() == 2 && c->segs[1].name == "$count") {
      if (m != "GET") return c->Fail(MethodNotAllowed(m, "$count"));
      auto n = svc.Count(c->caller, *table, c->options.filter.get());
      if (!n.ok()) return c->Fail(n.status());
      HttpResponse r;
      r.body = std::to_string(*n);
      r.Set("Content-Type", "text/plain");
      AddODataHeaders(r);
      return c->Reply(std::move(r));
    }
    if (c->segs.size() > 1) {
      const std::string& n1 = c->segs[1].name;
      std::string_view action = n1;
      if (action.rfind("Microsoft.Dynamics.CRM.", 0) == 0)
        action.remove_prefix(23);
      else if (action.rfind("mscrm.", 0) == 0)
        action.remove_prefix(6);
      if (c->segs.size() == 2)
        if (auto op = FindOperation(action, OperationBinding::kCollection, table, c))
          return Invoke(c, *op, c->segs[1], table, std::nullopt);
      return c->Fail(NotFoundSegment(n1));
    }
    if (m == "GET" && c->Option("fetchXml")) return FetchXml(c, *table);
    if (m == "GET" && c->Option("$apply")) return Apply(c, *table);
    if (m == "GET") {
      data::PageRequest pr;
      pr.page_size = std::min(c->prefs.max_page_size.value_or(kMaxPageSize), kMaxPageSize);
      pr.skiptoken = c->skiptoken;
      pr.count = c->count || c->prefs.Wants("Microsoft.Dynamics.CRM.totalrecordcount");
      auto page = svc.RetrieveMultiple(c->caller, *table, c->options, pr);
      if (!page.ok()) return c->Fail(page.status());
      return c->Reply(WriteCollection(*c, *page, table->entity_set_name));
    }
    if (m == "POST") return Create(c, *table);
    return c->Fail(MethodNotAllowed(m, "an entity set"));
  }

  auto key = KeyFromSegment(*table, s0);
  if (!key.ok()) return c->Fail(key.status());
  if (c->segs.size() == 1) {
    if (m == "GET") return Retrieve(c, *table, *key);
    if (m == "PATCH" || m == "PUT") return Upsert(c, *table, std::move(key).value());
    if (m == "DELETE") return Delete(c, *table, std::move(key).value());
    return c->Fail(MethodNotAllowed(m, "a record"));
  }
  return Member(c, *table, std::move(key).value());
}

}  // namespace tributary::odata

namespace tributary::odata {

HttpResponse WebApi::WriteCollection(Call& c, const data::Page& page, const std::string& context_set) {
  SerializeContext ctx = MakeSerializeContext(c, env_.service());
  HttpResponse r;
  JsonWriter w(r.body);
  w.BeginObject();
  w.Key("@odata.context");
  w.String(ContextUrl(c, context_set, false));
  if (c.count && page.count) {
    w.Key("@odata.count");
    w.Int(*page.count);
  }
  if (c.prefs.Wants("Microsoft.Dynamics.CRM.totalrecordcount")) {
    w.Key("@Microsoft.Dynamics.CRM.totalrecordcount");
    w.Int(page.count.value_or(-1));
    w.Key("@Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded");
    w.Bool(page.count_limit_exceeded);
  }
  if (c.prefs.Wants("Microsoft.Dynamics.CRM.globalmetadataversion")) {
    w.Key("@Microsoft.Dynamics.CRM.globalmetadataversion");
    w.String(std::to_string(c.cat->version()));
  }
  w.Key("value");
  w.BeginArray();
  for (const auto& row : page.rows) WriteEntity(w, row, ctx);
  w.EndArray();
  if (!page.next_skiptoken.empty()) {
    // The client's own options, minus any previous $skiptoken, plus the new one.
    std::string q;
    for (auto piece : Split(c.raw_query, '&')) {
      if (piece.empty() || piece.rfind("$skiptoken=", 0) == 0 || piece.rfind("%24skiptoken=", 0) == 0) continue;
      q += (q.empty() ? "" : "&") + std::string(piece);
    }
    q += (q.empty() ? "" : "&") + std::string("$skiptoken=") + PercentEncode(page.next_skiptoken);
    std::string path = c.http.target.substr(0, c.http.target.find('?'));
    auto v = path.find("/api/data/");
    path = v == std::string::npos ? path : path.substr(v);
    // Collapse '//' as the request path was.
    std::string clean;
    for (char ch : path)
      if (!(ch == '/' && !clean.empty() && clean.back() == '/')) clean.push_back(ch);
    w.Key("@odata.nextLink");
    w.String(c.http.base_url + clean + "?" + q);
  }
  w.EndObject();
  r.Set("Content-Type", kJsonContentType);
  AddODataHeaders(r);
  AddPreferenceApplied(c, r, false);
  return r;
}

void WebApi::Retrieve(CallPtr c, const Table& table, const data::RecordKey& key) {
  auto e = env_.service().Retrieve(c->caller, table, key, c->options);
  if (!e.ok()) return c->Fail(e.status());
  std::string etag = table.FindColumn("versionnumber") ? Etag(e->version) : "";
  if (const std::string* inm = c->http.Header("if-none-match");
      inm && !etag.empty() && c->options.expand.empty() && !c->prefs.AnyAnnotations()) {
    if (auto v = ParseEtag(*inm); v && *v == e->version) {
      HttpResponse r;
      r.status = 304;
      r.Set("ETag", etag);
      AddODataHeaders(r);
      return c->Reply(std::move(r));
    }
  }
  SerializeContext ctx = MakeSerializeContext(*c, env_.service());
  HttpResponse r;
  JsonWriter w(r.body);
  WriteEntity(w, *e, ctx, ContextUrl(*c, table.entity_set_name, true));
  r.Set("Content-Type", kJsonContentType);
  AddODataHeaders(r);
  if (!etag.empty()) r.Set("ETag", etag);
  AddPreferenceApplied(*c, r, false);
  c->Reply(std::move(r));
}

void WebApi::AnswerWrite(CallPtr c, const Table& table, const Guid& id, bool created) {
  if (!c->prefs.return_representation) {
    HttpResponse r = NoContent();
    r.Set("OData-EntityId", c->root + table.entity_set_name + "(" + id.ToString() + ")");
    return c->Reply(std::move(r));
  }
  data::RecordKey key;
  key.id = id;
  auto e = env_.service().Retrieve(c->caller, table, key, c->options);
  if (!e.ok()) return c->Fail(e.status());
  SerializeContext ctx = MakeSerializeContext(*c, env_.service());
  HttpResponse r;
  r.status = created ? 201 : 200;
  JsonWriter w(r.body);
  WriteEntity(w, *e, ctx, ContextUrl(*c, table.entity_set_name, true));
  r.Set("Content-Type", kJsonContentType);
  AddODataHeaders(r);
  if (table.FindColumn("versionnumber")) r.Set("ETag", Etag(e->version));
  if (created) r.Set("Location", c->root + table.entity_set_name + "(" + id.ToString() + ")");
  AddPreferenceApplied(*c, r, true);
  c->Reply(std::move(r));
}

void WebApi::Create(CallPtr c, const Table& table) {
  auto body = ParseBody(c->http);
  if (!body.ok()) return c->Fail(body.status());
  auto in = ParseEntityBody(*c->cat, table, *body);
  if (!in.ok()) return c->Fail(in.status());
  auto input = std::make_shared<data::EntityInput>(std::move(in).value());
  Submit(
      c,
      [input, &table](data::WriteScope& s) -> Result<WriteOutcome> {
        ASSIGN_OR_RETURN(data::WriteResult r, s.Create(*input, std::nullopt));
        return WriteOutcome{&table, r.id, true, {}};
      },
      [this, c, &table](const WriteOutcome& o) { AnswerWrite(c, table, o.id, true); });
}

void WebApi::Upsert(CallPtr c, const Table& table, data::RecordKey key) {
  auto body = ParseBody(c->http);
  if (!body.ok()) return c->Fail(body.status());
  auto in = ParseEntityBody(*c->cat, table, *body);
  if (!in.ok()) return c->Fail(in.status());
  data::UpsertMode mode = data::UpsertMode::kUpsert;
  std::optional<int64_t> version;
  if (const std::string* im = c->http.Header("if-match")) {
    mode = data::UpsertMode::kUpdateOnly;
    if (Trim(*im) != "*") {
      version = ParseEtag(*im);
      if (!version) return c->Fail(InvalidArgument("The If-Match header '" + *im + "' is not a valid ETag."));
    }
  }
  if (const std::string* inm = c->http.Header("if-none-match"); inm && Trim(*inm) != "null") {
    if (Trim(*inm) != "*") return c->Fail(InvalidArgument("If-None-Match on PATCH must be '*'."));
    if (mode == data::UpsertMode::kUpdateOnly)
      return c->Fail(InvalidArgument("If-Match and If-None-Match: * cannot be combined."));
    mode = data::UpsertMode::kCreateOnly;
  }
  auto input = std::make_shared<data::EntityInput>(std::move(in).value());
  Submit(
      c,
      [input, &table, key = std::move(key), mode, version](data::WriteScope& s) -> Result<WriteOutcome> {
        ASSIGN_OR_RETURN(data::WriteResult r, s.Upsert(*input, key, mode, version));
        return WriteOutcome{&table, r.id, r.created, {}};
      },
      [this, c, &table](const WriteOutcome& o) { AnswerWrite(c, table, o.id, o.created); });
}

void WebApi::Delete(CallPtr c, const Table& table, data::RecordKey key) {
  std::optional<int64_t> version;
  if (const std::string* im = c->http.Header("if-match"); im && Trim(*im) != "*") {
    version = ParseEtag(*im);
    if (!version) return c->Fail(InvalidArgument("The If-Match header '" + *im + "' is not a valid ETag."));
  }
  Submit(
      c,
      [&table, key = std::move(key), version](data::WriteScope& s) -> Result<WriteOutcome> {
        ASSIGN_OR_RETURN(Guid id, s.Delete(table, key, version));
        return WriteOutcome{&table, id, false, {}};
      },
      [c](const WriteOutcome&) { c->Reply(NoContent()); });
}

namespace {

// A function parameter given as JSON in the URL; clients write it with single or double quotes.
Result<Json> ParameterJson(const KeyValue& p) {
  auto j = ParseJson(p.raw);
  if (j.ok()) return j;
  std::string swapped = p.raw;
  for (char& ch : swapped)
    if (ch == '\'') ch = '"';
  auto k = ParseJson(swapped);
  if (k.ok()) return k;
  return QueryError("The value of the parameter '" + p.name + "' is not valid JSON: " + p.raw);
}

const KeyValue* Param(const Segment& s, std::string_view name) {
  for (const auto& kv : s.keys)
    if (kv.name == name) return &kv;
  return nullptr;
}

}  // namespace

void WebApi::UnboundFunction(CallPtr c, std::string_view name) {
  const Segment& s = c->segs[0];
  const catalog::Catalog& cat = *c->cat;
  auto& svc = env_.service();
  std::string out;
  JsonWriter w(out);
  if (name == "RetrieveTotalRecordCount") {
    const KeyValue* p = Param(s, "EntityNames");
    if (!p)
      return c->Fail(
          QueryError("RetrieveTotalRecordCount needs EntityNames, e.g. "
                     "RetrieveTotalRecordCount(EntityNames=@p1)?@p1=[\"account\"]."));
    auto names = ParameterJson(*p);
    if (!names.ok()) return c->Fail(names.status());
    if (!names->is_array()) return c->Fail(QueryError("EntityNames must be an array of table logical names."));
    std::vector<std::pair<std::string, int64_t>> counts;
    for (const auto& n : names->as_array()) {
      const Table* t = n.is_string() ? cat.FindTable(n.as_string()) : nullptr;
      if (!t) return c->Fail(QueryError("EntityNames: there is no table named " + n.Dump() + "."));
      auto count = svc.CountAll(c->caller, *t);
      if (!count.ok()) return c->Fail(count.status());
      counts.emplace_back(t->logical_name, *count);
    }
    w.BeginObject();
    w.Key("@odata.context");
    w.String(c->root + "$metadata#Microsoft.Dynamics.CRM.RetrieveTotalRecordCountResponse");
    w.Key("EntityRecordCountCollection");
    w.BeginObject();
    w.Key("Count");
    w.Int(static_cast<int64_t>(counts.size()));
    w.Key("IsReadOnly");
    w.Bool(false);
    w.Key("Keys");
    w.BeginArray();
    for (const auto& [k, v] : counts) w.String(k);
    w.EndArray();
    w.Key("Values");
    w.BeginArray();
    for (const auto& [k, v] : counts) w.Int(v);
    w.EndArray();
    w.EndObject();
    w.EndObject();
    return c->Reply(Json200(std::move(out)));
  }
  // InitializeFrom: a new record of TargetEntityName prefilled from EntityMoniker: columns of the
  // same name and type that are valid for the field type, the lookups they share, and the
  // navigation property that points at the source record.
  const KeyValue* moniker = Param(s, "EntityMoniker");
  const KeyValue* target_name = Param(s, "TargetEntityName");
  if (!moniker || !target_name) return c->Fail(QueryError("InitializeFrom needs EntityMoniker and TargetEntityName."));
  auto mj = ParameterJson(*moniker);
  if (!mj.ok()) return c->Fail(mj.status());
  const Json* odata_id = mj->is_object() ? mj->Find("@odata.id") : nullptr;
  if (!odata_id || !odata_id->is_string())
    return c->Fail(QueryError("EntityMoniker must be {'@odata.id':'<set>(<id>)'}."));
  auto source = ParseReference(cat, odata_id->as_string());
  if (!source.ok()) return c->Fail(source.status());
  const Table* target = cat.FindTable(target_name->value.text);
  if (!target)
    return c->Fail(QueryError("TargetEntityName: there is no table named '" + target_name->value.text + "'."));
  std::string field_type = "ValidForCreate";
  if (const KeyValue* ft = Param(s, "TargetFieldType")) {
    std::string_view v = ft->value.text;
    for (const char* known : {"ValidForCreate", "ValidForUpdate", "ValidForRead", "All"})
      if (v.find(known) != std::string_view::npos) field_type = known;
  }
  auto record = svc.Retrieve(c->caller, *source->table, source->key, {});
  if (!record.ok()) return c->Fail(record.status());
  w.BeginObject();
  w.Key("@odata.context");
  w.String(c->root + "$metadata#" + target->entity_set_name + "/$entity");
  w.Key("@odata.type");
  w.String("#Microsoft.Dynamics.CRM." + target->logical_name);
  for (const auto& f : record->fields) {
    const Column& sc = *f.column;
    const Column* tc = target->FindColumn(sc.logical_name);
    if (!tc || tc->type != sc.type || tc->is_primary_id || tc->is_primary_name || data::IsNull(f.value)) continue;
    if (tc->type == catalog::ColumnType::kState || tc->type == catalog::ColumnType::kStatus) continue;
    bool valid = field_type == "ValidForCreate"   ? tc->valid_for_create
                 : field_type == "ValidForUpdate" ? tc->valid_for_update
                                                  : tc->valid_for_read;
    if (!valid) continue;
    if (tc->IsLookup()) {
      if (tc->IsPolymorphic()) continue;
      const NavProperty* nav = target->FindNav(tc->logical_name);
      const auto& ref = std::get<data::EntityRef>(f.value);
      const Table* rt = cat.FindTable(ref.table);
      if (!nav || !rt) continue;
      w.Key(nav->name + "@odata.bind");
      w.String(rt->entity_set_name + "(" + ref.id.ToString() + ")");
      continue;
    }
    w.Key(sc.logical_name);
    WriteValue(w, *tc, f.value);
  }
  for (const auto& nav : target->navs)
    if (nav.kind == NavProperty::Kind::kSingle && nav.target == source->table &&
        !nav.column->logical_name.starts_with("created") && !nav.column->logical_name.starts_with("modified") &&
        nav.column->valid_for_create) {
      w.Key(nav.name + "@odata.bind");
      w.String(source->table->entity_set_name + "(" + record->id.ToString() + ")");
      break;
    }
  w.EndObject();
  c->Reply(Json200(std::move(out)));
}

void WebApi::BulkAction(CallPtr c, const Table& table, std::string_view action, const Json& body) {
  using data::BulkOperation;
  BulkOperation op = action == "CreateMultiple"   ? BulkOperation::kCreate
                     : action == "UpdateMultiple" ? BulkOperation::kUpdate
                     : action == "UpsertMultiple" ? BulkOperation::kUpsert
                                                  : BulkOperation::kDelete;
  const Json* targets = body.is_object() ? body.Find("Targets") : nullptr;
  if (!targets || !targets->is_array())
    return c->Fail(PayloadError("The body of " + std::string(action) + " must be {\"Targets\": [ … ]}."));
  std::vector<data::BulkItem> items;
  items.reserve(targets->as_array().size());
  const Column* pk = table.PrimaryId();
  for (size_t i = 0; i < targets->as_array().size(); ++i) {
    const Json& t = targets->as_array()[i];
    std::string where = "Targets[" + std::to_string(i) + "]: ";
    if (!t.is_object() || !t.Find("@odata.type"))
      return c->Fail(PayloadError(where +
                                  "every target must be an object with \"@odata.type\": \"Microsoft.Dynamics.CRM." +
                                  table.logical_name + "\"."));
    auto in = ParseEntityBody(*c->cat, table, t);
    if (!in.ok()) return c->Fail(Status(in.status().code(), where + in.status().message(), in.status().error_code()));
    data::BulkItem item{std::move(in).value(), {}};
    for (const auto& f : item.input.fields)
      if (f.column == pk)
        if (const auto* g = std::get_if<Guid>(&f.value)) item.key.id = *g;
    if (op == BulkOperation::kUpsert && !item.key.id) {
      const Json* ref = t.Find("@odata.id");
      if (!ref || !ref->is_string())
        return c->Fail(PayloadError(where + "a target of UpsertMultiple needs \"" + pk->logical_name +
                                    "\" or \"@odata.id\" naming the record (by id or alternate key)."));
      auto target = ParseReference(*c->cat, ref->as_string());
      if (!target.ok())
        return c->Fail(Status(target.status().code(), where + target.status().message(), target.status().error_code()));
      if (target->table != &table)
        return c->Fail(PayloadError(where + "\"@odata.id\" must name a record of '" + table.logical_name + "'."));
      item.key = std::move(target->key);
    }
    if ((op == BulkOperation::kUpdate || op == BulkOperation::kDelete) && !item.key.id)
      return c->Fail(PayloadError(where + "the primary key '" + pk->logical_name + "' is required."));
    items.push_back(std::move(item));
  }
  auto shared = std::make_shared<std::vector<data::BulkItem>>(std::move(items));
  Submit(
      c,
      [&table, op, shared](data::WriteScope& s) -> Result<WriteOutcome> {
        ASSIGN_OR_RETURN(std::vector<Guid> ids, s.Bulk(table, op, *shared));
        WriteOutcome o{&table, ids.empty() ? Guid() : ids[0], op == data::BulkOperation::kCreate, std::move(ids)};
        return o;
      },
      [c, op](const WriteOutcome& o) {
        if (op != data::BulkOperation::kCreate) return c->Reply(NoContent());
        std::string out;
        JsonWriter w(out);
        w.BeginObject();
        w.Key("@odata.context");
        w.String(c->root + "$metadata#Microsoft.Dynamics.CRM.CreateMultipleResponse");
        w.Key("Ids");
        w.BeginArray();
        for (const auto& id : o.ids) w.String(id.ToString());
        w.EndArray();
        w.EndObject();
        c->Reply(Json200(std::move(out)));
      });
}

void WebApi::Member(CallPtr c, const Table& table, data::RecordKey key) {
  const std::string& m = c->http.method;
  auto& svc = env_.service();
  const Segment& s1 = c->segs[1];
  const NavProperty* nav = table.FindNav(s1.name);
  // $ref writes: run in a transaction (or the change set), then 204.
  auto set_reference = [this, c, &table](data::RecordKey key, const NavProperty& nav,
                                         std::optional<data::BindTarget> target) {
    Submit(
        c,
        [&table, &nav, key = std::move(key), target = std::move(target)](data::WriteScope& s) -> Result<WriteOutcome> {
          ASSIGN_OR_RETURN(Guid id, s.SetReference(table, key, nav, target));
          return WriteOutcome{&table, id, false, {}};
        },
        [c](const WriteOutcome&) { c->Reply(NoContent()); });
  };
  auto associate = [this, c, &table](data::RecordKey key, const NavProperty& nav, data::BindTarget related, bool add) {
    Submit(
        c,
        [&table, &nav, key = std::move(key), related = std::move(related),
         add](data::WriteScope& s) -> Result<WriteOutcome> {
          ASSIGN_OR_RETURN(Guid id, s.Associate(table, key, nav, related, add));
          return WriteOutcome{&table, id, false, {}};
        },
        [c](const WriteOutcome&) { c->Reply(NoContent()); });
  };
  auto reference_body = [&]() -> Result<data::BindTarget> {
    ASSIGN_OR_RETURN(Json body, ParseBody(c->http));
    const Json* id = body.is_object() ? body.Find("@odata.id") : nullptr;
    if (!id || !id->is_string()) return PayloadError("The request body must be {\"@odata.id\": \"<record URL>\"}.");
    return ParseReference(*c->cat, id->as_string());
  };

  if (nav) {
    std::string tail = c->segs.size() > 2 ? c->segs[2].name : "";
    if (c->segs.size() > 3) return c->Fail(NotFoundSegment(c->segs[3].name));
    if (!nav->IsCollection()) {
      if (!s1.keys.empty()) return c->Fail(QueryError("'" + nav->name + "' is single-valued and takes no key."));
      if (tail == "$ref") {
        if (m == "GET") {
          data::QueryOptions o;
          data::Expand ex;
          ex.nav = nav->name;
          ex.ref = true;
          o.select = {table.primary_id};
          o.expand.push_back(std::move(ex));
          auto e = svc.Retrieve(c->caller, table, key, o);
          if (!e.ok()) return c->Fail(e.status());
          if (e->expanded.empty() || e->expanded[0].rows.empty()) return c->Reply(NoContent());
          const auto& target = e->expanded[0].rows[0];
          std::string body;
          JsonWriter w(body);
          w.BeginObject();
          w.Key("@odata.context");
          w.String(c->root + "$metadata#$ref");
          w.Key("@odata.id");
          w.String(c->root + target.table->entity_set_name + "(" + target.id.ToString() + ")");
          w.EndObject();
          return c->Reply(Json200(std::move(body)));
        }
        if (m == "PUT") {
          auto target = reference_body();
          if (!target.ok()) return c->Fail(target.status());
          return set_reference(std::move(key), *nav, std::move(target).value());
        }
        if (m == "DELETE") return set_reference(std::move(key), *nav, std::nullopt);
        return c->Fail(MethodNotAllowed(m, "a single-valued $ref"));
      }
      if (!tail.empty()) return c->Fail(NotFoundSegment(tail));
      if (m != "GET") {
        if (m == "DELETE")
          return c->Fail(Status(Code::kMethodNotAllowed,
                                "A navigation property cannot be deleted; use DELETE " + nav->name + "/$ref.",
                                err::kNotSupported));
        return c->Fail(MethodNotAllowed(m, "a navigation property"));
      }
      // The related record: expand the nav with the query's options.
      data::QueryOptions o;
      o.select = {table.primary_id};
      data::Expand ex;
      ex.nav = nav->name;
      ex.options = std::move(c->options);
      o.expand.push_back(std::move(ex));
      auto e = svc.Retrieve(c->caller, table, key, o);
      if (!e.ok()) return c->Fail(e.status());
      if (e->expanded.empty() || e->expanded[0].rows.empty()) return c->Reply(NoContent());
      const data::Entity& target = e->expanded[0].rows[0];
      c->options = std::move(o.expand[0].options);
      SerializeContext ctx = MakeSerializeContext(*c, svc);
      HttpResponse r;
      JsonWriter w(r.body);
      WriteEntity(w, target, ctx, ContextUrl(*c, target.table->entity_set_name, true));
      r.Set("Content-Type", kJsonContentType);
      AddODataHeaders(r);
      r.Set("ETag", Etag(target.version));
      return c->Reply(std::move(r));
    }
    // Collection-valued navigation.
    if (!s1.keys.empty()) {
      if (tail != "$ref" || m != "DELETE")
        return c->Fail(
            QueryError("Addressing one record of '" + nav->name + "' is only supported to DELETE its $ref."));
      auto rk = KeyFromSegment(*nav->target, s1);
      if (!rk.ok()) return c->Fail(rk.status());
      return associate(std::move(key), *nav, data::BindTarget{nav->target, std::move(rk).value()}, false);
    }
    if (tail == "$ref") {
      if (m == "POST") {
        auto target = reference_body();
        if (!target.ok()) return c->Fail(target.status());
        if (target->table != nav->target)
          return c->Fail(PayloadError("The reference does not point at a '" + nav->target->logical_name + "' record."));
        return associate(std::move(key), *nav, std::move(target).value(), true);
      }
      if (m == "DELETE") {
        const std::string* id = c->Option("$id");
        if (!id) return c->Fail(QueryError("DELETE of a collection $ref needs the $id query option or a key."));
        auto target = ParseReference(*c->cat, *id);
        if (!target.ok()) return c->Fail(target.status());
        return associate(std::move(key), *nav, std::move(target).value(), false);
      }
      if (m == "GET") {
        data::QueryOptions o;
        o.select = {nav->target->primary_id};
        data::PageRequest pr;
        auto page = svc.RetrieveRelated(c->caller, table, key, *nav, o, pr);
        if (!page.ok()) return c->Fail(page.status());
        std::string body;
        JsonWriter w(body);
        w.BeginObject();
        w.Key("@odata.context");
        w.String(c->root + "$metadata#Collection($ref)");
        w.Key("value");
        w.BeginArray();
        for (const auto& row : page->rows) {
          w.BeginObject();
          w.Key("@odata.id");
          w.String(c->root + nav->target->entity_set_name + "(" + row.id.ToString() + ")");
          w.EndObject();
        }
        w.EndArray();
        w.EndObject();
        return c->Reply(Json200(std::move(body)));
      }
      return c->Fail(MethodNotAllowed(m, "a collection $ref"));
    }
    if (tail == "$count") {
      if (m != "GET") return c->Fail(MethodNotAllowed(m, "$count"));
      data::PageRequest pr;
      pr.count = true;
      pr.page_size = 1;
      auto page = svc.RetrieveRelated(c->caller, table, key, *nav, c->options, pr);
      if (!page.ok()) return c->Fail(page.status());
      HttpResponse r;
      r.body = std::to_string(page->count.value_or(0));
      r.Set("Content-Type", "text/plain");
      AddODataHeaders(r);
      return c->Reply(std::move(r));
    }
    if (!tail.empty()) return c->Fail(NotFoundSegment(tail));
    if (m != "GET") return c->Fail(MethodNotAllowed(m, "a collection-valued navigation property"));
    data::PageRequest pr;
    pr.page_size = std::min(c->prefs.max_page_size.value_or(kMaxPageSize), kMaxPageSize);
    pr.skiptoken = c->skiptoken;
    pr.count = c->count;
    auto page = svc.RetrieveRelated(c->caller, table, key, *nav, c->options, pr);
    if (!page.ok()) return c->Fail(page.status());
    return c->Reply(WriteCollection(*c, *page, nav->target->entity_set_name));
  }

  // A column: /accounts(id)/name, /accounts(id)/_primarycontactid_value, /…/name/$value.
  const Column* col = table.FindColumn(s1.name);
  if (col && col->IsLookup()) col = nullptr;
  if (!col) col = table.FindLookupProperty(s1.name);
  if (!col) {
    // Functions and actions bound to the record: /accounts(id)/Microsoft.Dynamics.CRM.X.
    std::string_view op_name = s1.name;
    if (op_name.rfind("Microsoft.Dynamics.CRM.", 0) == 0)
      op_name.remove_prefix(23);
    else if (op_name.rfind("mscrm.", 0) == 0)
      op_name.remove_prefix(6);
    if (op_name.size() != s1.name.size() && c->segs.size() == 2)
      if (auto op = FindOperation(op_name, OperationBinding::kEntity, &table, c))
        return Invoke(c, *op, s1, &table, std::move(key));
    return c->Fail(NotFoundSegment(s1.name));
  }
  if (IsFileColumn(*col)) {
    if (c->changeset) return c->Fail(InvalidArgument("File columns cannot be written inside a change set."));
    return FileColumn(c, table, std::move(key), *col);
  }
  bool raw = c->segs.size() == 3 && c->segs[2].name == "$value";
  if (c->segs.size() > (raw ? 3u : 2u)) return c->Fail(NotFoundSegment(c->segs.back().name));
  if (m == "GET") {
    data::QueryOptions o;
    o.select = {s1.name};
    auto e = svc.Retrieve(c->caller, table, key, o);
    if (!e.ok()) return c->Fail(e.status());
    const data::Value* v = e->Get(col->logical_name);
    if (!v || data::IsNull(*v)) return c->Reply(NoContent());
    if (raw) {
      HttpResponse r;
      std::string tmp;
      JsonWriter w(tmp);
      WriteValue(w, *col, *v);
      r.body = std::holds_alternative<std::string>(*v)   ? std::get<std::string>(*v)
               : (tmp.size() >= 2 && tmp.front() == '"') ? tmp.substr(1, tmp.size() - 2)
                                                         : tmp;
      r.Set("Content-Type", "text/plain");
      AddODataHeaders(r);
      return c->Reply(std::move(r));
    }
    std::string body;
    JsonWriter w(body);
    w.BeginObject();
    w.Key("@odata.context");
    w.String(c->root + "$metadata#" + table.entity_set_name + "(" + e->id.ToString() + ")/" + s1.name);
    w.Key("value");
    WriteValue(w, *col, *v);
    w.EndObject();
    return c->Reply(Json200(std::move(body)));
  }
  if (raw) return c->Fail(MethodNotAllowed(m, "$value"));
  if (m == "PUT" || m == "DELETE") {
    if (col->IsLookup())
      return c->Fail(
          InvalidArgument("The lookup '" + s1.name + "' is set or cleared through its navigation property's $ref."));
    data::EntityInput in;
    in.table = &table;
    if (m == "PUT") {
      auto body = ParseBody(c->http);
      if (!body.ok()) return c->Fail(body.status());
      const Json* v = body->is_object() ? body->Find("value") : nullptr;
      if (!v) return c->Fail(PayloadError("The request body must be {\"value\": …}."));
      auto val = JsonToValue(table, *col, *v);
      if (!val.ok()) return c->Fail(val.status());
      in.fields.push_back(data::Field{col, std::move(val).value()});
    } else {
      in.fields.push_back(data::Field{col, std::monostate{}});
    }
    if (!col->valid_for_update)
      return c->Fail(InvalidArgument("The property '" + col->logical_name + "' cannot be updated.", err::kValidation));
    auto input = std::make_shared<data::EntityInput>(std::move(in));
    return Submit(
        c,
        [input, &table, key = std::move(key)](data::WriteScope& s) -> Result<WriteOutcome> {
          ASSIGN_OR_RETURN(data::WriteResult r, s.Upsert(*input, key, data::UpsertMode::kUpdateOnly, std::nullopt));
          return WriteOutcome{&table, r.id, false, {}};
        },
        [c](const WriteOutcome&) { c->Reply(NoContent()); });
  }
  return c->Fail(MethodNotAllowed(m, "a property"));
}

}  // namespace tributary::odata
