// Metadata writes of the Web API: POST/PUT/DELETE on EntityDefinitions (with their Attributes and
// Keys), RelationshipDefinitions and GlobalOptionSetDefinitions, and the actions InsertOptionValue,
// UpdateOptionValue and DeleteOptionValue. Each request becomes one schema document
// (metadata_input.h) that the environment validates, logs in _t_schema and applies with its SQL
// changes in one transaction; the new catalog is live (and in $metadata) when the answer leaves.

#include <optional>

#include "metadata_input.h"
#include "tributary/base/json.h"
#include "tributary/base/strings.h"
#include "webapi_internal.h"

namespace tributary::odata {

using catalog::Column;
using catalog::Table;

namespace {

bool IsBareGuidKey(const Segment& s) { return s.keys.size() == 1 && s.keys[0].name.empty(); }

std::optional<Guid> BareGuid(const Segment& s) {
  if (!IsBareGuidKey(s)) return std::nullopt;
  return Guid::Parse(s.keys[0].value.text);
}

// The value of the only key `name='…'` of a segment, or nullopt.
std::optional<std::string> NamedKey(const Segment& s, std::string_view name) {
  if (s.keys.size() != 1 || s.keys[0].name != name) return std::nullopt;
  return s.keys[0].value.text;
}

std::string KeyText(const Segment& s) { return s.keys.empty() ? s.name : s.keys[0].raw; }

Status NotFoundKey(std::string_view what, const Segment& s) {
  return NotFound("Could not find " + std::string(what) + " with the key " + KeyText(s) + ".",
                  err::kObjectDoesNotExist);
}

// EntityDefinitions(LogicalName='x') or EntityDefinitions(<MetadataId>).
const Table* FindTableByKey(const catalog::Catalog& cat, const Segment& s) {
  if (auto name = NamedKey(s, "LogicalName")) return cat.FindTable(*name);
  if (auto id = BareGuid(s)) return cat.FindByMetadataId(*id);
  return nullptr;
}

// Attributes(LogicalName='x') or Attributes(<MetadataId>).
const Column* FindColumnByKey(const Table& t, const Segment& s) {
  if (auto name = NamedKey(s, "LogicalName")) return t.FindColumn(*name);
  if (auto id = BareGuid(s))
    for (const auto& c : t.columns)
      if (c->metadata_id == *id) return c.get();
  return nullptr;
}

// Keys(LogicalName='x') or Keys(<MetadataId>).
const catalog::Key* FindKeyByKey(const Table& t, const Segment& s) {
  if (auto name = NamedKey(s, "LogicalName")) return t.FindKey(*name);
  if (auto id = BareGuid(s))
    for (const auto& k : t.keys)
      if (k.metadata_id == *id) return &k;
  return nullptr;
}

// RelationshipDefinitions(SchemaName='x') or RelationshipDefinitions(<MetadataId>).
const catalog::Relationship* FindRelationshipByKey(const catalog::Catalog& cat, const Segment& s) {
  if (auto name = NamedKey(s, "SchemaName")) return cat.FindRelationship(*name);
  if (auto id = BareGuid(s))
    for (const auto& r : cat.relationships())
      if (r->metadata_id == *id) return r.get();
  return nullptr;
}

// GlobalOptionSetDefinitions(Name='x') or GlobalOptionSetDefinitions(<MetadataId>).
const catalog::OptionSet* FindChoiceByKey(const catalog::Catalog& cat, const Segment& s) {
  if (auto name = NamedKey(s, "Name")) return cat.FindGlobalChoice(*name);
  if (auto id = BareGuid(s))
    for (const auto& [name, os] : cat.global_choices())
      if (os->metadata_id == *id) return os.get();
  return nullptr;
}

// A document dropping one component (docs/formats/schema.md, "drop").
catalog::SchemaDoc DropDocument(std::vector<catalog::DropRef> catalog::DropDef::*list, std::string table,
                                std::string name, std::string path) {
  catalog::SchemaDoc d;
  d.version = 1;
  (d.drop.*list).push_back({std::move(table), std::move(name), std::move(path)});
  return d;
}

bool IsOptionValueAction(std::string_view name) {
  return name == "InsertOptionValue" || name == "UpdateOptionValue" || name == "DeleteOptionValue";
}

std::string_view Unqualified(std::string_view name) {
  if (name.rfind("Microsoft.Dynamics.CRM.", 0) == 0) name.remove_prefix(23);
  return name;
}

bool MergeLabels(const HttpRequest& r) {
  const std::string* v = r.Header("mscrm.mergelabels");
  return v && EqualsIgnoreCase(Trim(*v), "true");
}

// What a metadata write request asks for: the schema document to apply and the answer's extras.
struct Plan {
  catalog::SchemaDoc doc;
  std::string location;           // OData-EntityId of what a POST created, relative to the root
  std::optional<int> new_option;  // InsertOptionValue's NewOptionValue
};

Result<Plan> ToPlan(Result<catalog::SchemaDoc> doc, std::string location = {}) {
  if (!doc.ok()) return doc.status();
  return Plan{std::move(doc).value(), std::move(location), std::nullopt};
}

Status NotAllowed(const WebApi::Call& c, std::string_view what) { return MethodNotAllowed(c.http.method, what); }

// EntityDefinitions, EntityDefinitions(…), …/Attributes[(…)[/cast]], …/Keys[(…)].
Result<Plan> PlanTableWrite(const WebApi::Call& c, bool merge) {
  const std::string& m = c.http.method;
  const catalog::Catalog& cat = *c.cat;
  const Segment& s0 = c.segs[0];
  const size_t n = c.segs.size();
  if (s0.keys.empty()) {
    if (n != 1) return NotFoundSegment(c.segs[1].name);
    if (m != "POST") return NotAllowed(c, "EntityDefinitions (tables are added with POST)");
    ASSIGN_OR_RETURN(Json body, ParseBody(c.http));
    ASSIGN_OR_RETURN(catalog::SchemaDoc doc, EntityMetadataToSchema(body));
    const std::string& name = doc.tables[0].name;
    if (cat.FindTable(name))
      return Status(Code::kAlreadyExists, "A table named '" + name + "' already exists.", err::kDuplicateRecord);
    return ToPlan(std::move(doc), "EntityDefinitions(" + catalog::NameGuid("table:" + name).ToString() + ")");
  }
  const Table* t = FindTableByKey(cat, s0);
  if (!t) return NotFoundKey("an entity", s0);
  const std::string table_path = "EntityDefinitions(LogicalName='" + t->logical_name + "')";
  if (n == 1) {
    if (m == "PUT") {
      ASSIGN_OR_RETURN(Json body, ParseBody(c.http));
      return ToPlan(EntityUpdateToSchema(*t, body, merge));
    }
    if (m == "DELETE") return ToPlan(DropDocument(&catalog::DropDef::tables, "", t->logical_name, table_path));
    return NotAllowed(c, "a table definition (use PUT to update it, DELETE to delete it)");
  }
  const Segment& s1 = c.segs[1];
  if (s1.name == "Attributes") {
    if (s1.keys.empty()) {
      if (n != 2) return NotFoundSegment(c.segs[2].name);
      if (m != "POST") return NotAllowed(c, "Attributes (columns are added with POST)");
      ASSIGN_OR_RETURN(Json body, ParseBody(c.http));
      ASSIGN_OR_RETURN(catalog::SchemaDoc doc, AttributeMetadataToSchema(*t, body));
      std::string id = catalog::NameGuid("column:" + t->logical_name + "." + doc.tables[0].columns[0].name).ToString();
      return ToPlan(std::move(doc), "EntityDefinitions(" + t->metadata_id.ToString() + ")/Attributes(" + id + ")");
    }
    const Column* col = FindColumnByKey(*t, s1);
    if (!col) return NotFoundKey("an attribute", s1);
    if (n > 3) return NotFoundSegment(c.segs[3].name);
    std::string_view cast = n == 3 ? std::string_view(c.segs[2].name) : std::string_view();
    if (m == "PUT") {
      ASSIGN_OR_RETURN(Json body, ParseBody(c.http));
      return ToPlan(AttributeUpdateToSchema(*t, *col, cast, body, merge));
    }
    if (m == "DELETE")
      return ToPlan(DropDocument(&catalog::DropDef::columns, t->logical_name, col->logical_name,
                                 table_path + "/Attributes(LogicalName='" + col->logical_name + "')"));
    return NotAllowed(c, "an attribute definition (use PUT to update it, DELETE to delete it)");
  }
  if (s1.name == "Keys") {
    if (n != 2) return NotFoundSegment(c.segs[2].name);
    if (s1.keys.empty()) {
      if (m != "POST") return NotAllowed(c, "Keys (alternate keys are added with POST)");
      ASSIGN_OR_RETURN(Json body, ParseBody(c.http));
      ASSIGN_OR_RETURN(catalog::SchemaDoc doc, KeyMetadataToSchema(*t, body));
      std::string id = catalog::NameGuid("key:" + t->logical_name + "." + doc.tables[0].keys[0].name).ToString();
      return ToPlan(std::move(doc), "EntityDefinitions(" + t->metadata_id.ToString() + ")/Keys(" + id + ")");
    }
    const catalog::Key* k = FindKeyByKey(*t, s1);
    if (!k) return NotFoundKey("an entity key", s1);
    if (m != "DELETE") return NotAllowed(c, "an alternate key (keys cannot be changed; delete and add it again)");
    return ToPlan(DropDocument(&catalog::DropDef::keys, t->logical_name, k->logical_name,
                               table_path + "/Keys(LogicalName='" + k->logical_name + "')"));
  }
  return NotFoundSegment(s1.name);
}

// RelationshipDefinitions, RelationshipDefinitions(…)[/cast].
Result<Plan> PlanRelationshipWrite(const WebApi::Call& c) {
  const std::string& m = c.http.method;
  const Segment& s0 = c.segs[0];
  const size_t n = c.segs.size();
  if (s0.keys.empty()) {
    if (n != 1) return NotFoundSegment(c.segs[1].name);
    if (m != "POST") return NotAllowed(c, "RelationshipDefinitions (relationships are added with POST)");
    ASSIGN_OR_RETURN(Json body, ParseBody(c.http));
    ASSIGN_OR_RETURN(catalog::SchemaDoc doc, RelationshipMetadataToSchema(*c.cat, body));
    std::string name = doc.relationships.empty() ? doc.tables[0].columns[0].relationship : doc.relationships[0].name;
    return ToPlan(std::move(doc),
                  "RelationshipDefinitions(" + catalog::NameGuid("relationship:" + name).ToString() + ")");
  }
  const catalog::Relationship* r = FindRelationshipByKey(*c.cat, s0);
  if (!r) return NotFoundKey("a relationship", s0);
  if (n > 2) return NotFoundSegment(c.segs[2].name);  // n == 2: a type cast
  if (m == "PUT") {
    ASSIGN_OR_RETURN(Json body, ParseBody(c.http));
    return ToPlan(RelationshipUpdateToSchema(*r, body));
  }
  if (m == "DELETE")
    return ToPlan(DropDocument(&catalog::DropDef::relationships, "", r->schema_name,
                               "RelationshipDefinitions(SchemaName='" + r->schema_name + "')"));
  return NotAllowed(c, "a relationship definition (use PUT to update it, DELETE to delete it)");
}

// GlobalOptionSetDefinitions, GlobalOptionSetDefinitions(…)[/cast].
Result<Plan> PlanChoiceWrite(const WebApi::Call& c, bool merge) {
  const std::string& m = c.http.method;
  const Segment& s0 = c.segs[0];
  const size_t n = c.segs.size();
  if (s0.keys.empty()) {
    if (n != 1) return NotFoundSegment(c.segs[1].name);
    if (m != "POST") return NotAllowed(c, "GlobalOptionSetDefinitions (choices are added with POST)");
    ASSIGN_OR_RETURN(Json body, ParseBody(c.http));
    ASSIGN_OR_RETURN(catalog::SchemaDoc doc, OptionSetMetadataToSchema(body));
    const std::string& name = doc.choices[0].name;
    if (c.cat->FindGlobalChoice(name))
      return Status(Code::kAlreadyExists, "A choice named '" + name + "' already exists.", err::kDuplicateRecord);
    return ToPlan(std::move(doc),
                  "GlobalOptionSetDefinitions(" + catalog::NameGuid("optionset:" + name).ToString() + ")");
  }
  const catalog::OptionSet* os = FindChoiceByKey(*c.cat, s0);
  if (!os) return NotFoundKey("an option set", s0);
  if (n > 2) return NotFoundSegment(c.segs[2].name);  // n == 2: a type cast
  if (m == "PUT") {
    ASSIGN_OR_RETURN(Json body, ParseBody(c.http));
    return ToPlan(OptionSetUpdateToSchema(*os, body, merge));
  }
  if (m == "DELETE")
    return ToPlan(
        DropDocument(&catalog::DropDef::choices, "", os->name, "GlobalOptionSetDefinitions(Name='" + os->name + "')"));
  return NotAllowed(c, "a choice definition (use PUT to update it, DELETE to delete it)");
}

// POST InsertOptionValue, UpdateOptionValue, DeleteOptionValue.
Result<Plan> PlanOptionValueAction(const WebApi::Call& c, std::string_view action) {
  if (c.segs.size() != 1) return NotFoundSegment(c.segs[1].name);
  if (c.http.method != "POST") return NotAllowed(c, action);
  ASSIGN_OR_RETURN(Json body, ParseBody(c.http));
  int value = 0;
  ASSIGN_OR_RETURN(Plan plan, ToPlan(OptionValueActionToSchema(*c.cat, action, body, value)));
  if (action == "InsertOptionValue") plan.new_option = value;
  return plan;
}

}  // namespace

bool WebApi::IsMetadataWrite(const Call& c) {
  const std::string& name = c.segs[0].name;
  if (name == "EntityDefinitions" || name == "RelationshipDefinitions" || name == "GlobalOptionSetDefinitions")
    return c.http.method != "GET";
  return IsOptionValueAction(Unqualified(name));
}

void WebApi::MetadataWrite(CallPtr c) {
  const std::string& set = c->segs[0].name;
  bool merge = MergeLabels(c->http);
  Result<Plan> plan = set == "EntityDefinitions"            ? PlanTableWrite(*c, merge)
                      : set == "RelationshipDefinitions"    ? PlanRelationshipWrite(*c)
                      : set == "GlobalOptionSetDefinitions" ? PlanChoiceWrite(*c, merge)
                                                            : PlanOptionValueAction(*c, Unqualified(set));
  if (!plan.ok()) return c->Fail(plan.status());
  const catalog::SchemaDoc& doc = plan->doc;
  bool changes = !doc.tables.empty() || !doc.choices.empty() || !doc.relationships.empty() || !doc.drop.empty() ||
                 !doc.update.empty();
  if (changes) {
    Status applied = env_.ApplySchema(doc, catalog::SchemaDocToJson(doc));
    if (!applied.ok()) {
      // Plain validation problems are payload errors; dependency, system-component and data errors
      // keep their own codes.
      if (applied.code() == Code::kInvalidArgument && applied.error_code() == err::kInvalidArgument)
        return c->Fail(PayloadError(applied.message()));
      return c->Fail(applied);
    }
  }
  if (plan->new_option) {
    std::string out;
    JsonWriter w(out);
    w.BeginObject();
    w.Key("@odata.context");
    w.String(c->root + "$metadata#Microsoft.Dynamics.CRM.InsertOptionValueResponse");
    w.Key("NewOptionValue");
    w.Int(*plan->new_option);
    w.EndObject();
    return c->Reply(Json200(std::move(out)));
  }
  HttpResponse r = NoContent();
  if (!plan->location.empty()) r.Set("OData-EntityId", c->root + plan->location);
  c->Reply(std::move(r));
}

}  // namespace tributary::odata
