#include "metadata_input.h"

#include "tributary/base/strings.h"

namespace tributary::odata {

using catalog::ColumnDef;
using catalog::SchemaDoc;

namespace {

Status Bad(std::string m) { return PayloadError(std::move(m)); }

std::string Text(const Json& o, const char* key) {
  const Json* v = o.is_object() ? o.Find(key) : nullptr;
  return v && v->is_string() ? v->as_string() : std::string();
}

// The user's label of a Label complex value (LocalizedLabels, preferring language 1033).
std::string Label(const Json& o, const char* key) {
  const Json* l = o.is_object() ? o.Find(key) : nullptr;
  if (!l || !l->is_object()) return {};
  if (const Json* u = l->Find("UserLocalizedLabel"); u && u->is_object()) {
    std::string s = Text(*u, "Label");
    if (!s.empty()) return s;
  }
  const Json* labels = l->Find("LocalizedLabels");
  if (!labels || !labels->is_array()) return {};
  std::string first;
  for (const auto& x : labels->as_array()) {
    const Json* lang = x.Find("LanguageCode");
    std::string s = Text(x, "Label");
    if (lang && lang->is_number() && lang->as_int() == 1033) return s;
    if (first.empty()) first = s;
  }
  return first;
}

std::optional<double> Number(const Json& o, const char* key) {
  const Json* v = o.Find(key);
  if (!v || !v->is_number()) return std::nullopt;
  return v->as_double();
}

// "new_BankAccount" → prefix "new".
Result<std::string> PrefixOf(const std::string& schema_name, const char* what) {
  auto us = schema_name.find('_');
  if (schema_name.empty() || us == std::string::npos || us == 0)
    return Bad(std::string(what) + " SchemaName '" + schema_name +
               "' must start with the publisher's customization prefix, for example new_");
  return ToLower(schema_name.substr(0, us));
}

std::string TypeOf(const Json& a) {
  std::string t = Text(a, "@odata.type");
  if (!t.empty() && t[0] == '#') t = t.substr(1);
  if (t.rfind("Microsoft.Dynamics.CRM.", 0) == 0) t = t.substr(23);
  if (t.empty()) t = Text(a, "AttributeType") + "AttributeMetadata";
  return t;
}

std::vector<catalog::OptionDef> OptionsOf(const Json& options) {
  std::vector<catalog::OptionDef> out;
  if (!options.is_array()) return out;
  for (const auto& o : options.as_array()) {
    const Json* v = o.Find("Value");
    if (!v || !v->is_number()) continue;
    out.push_back({static_cast<int>(v->as_int()), Label(o, "Label")});
  }
  return out;
}

Result<ColumnDef> ColumnOf(const Json& a, size_t index) {
  if (!a.is_object()) return Bad("Attributes[" + std::to_string(index) + "] must be an object.");
  ColumnDef c;
  c.schemaname = Text(a, "SchemaName");
  c.name = Text(a, "LogicalName").empty() ? ToLower(c.schemaname) : Text(a, "LogicalName");
  c.path = "Attributes[" + std::to_string(index) + "]";
  if (c.name.empty()) return Bad(c.path + ": SchemaName is required.");
  c.displayname = Label(a, "DisplayName");
  c.description = Label(a, "Description");
  if (const Json* rl = a.Find("RequiredLevel"); rl && rl->is_object()) c.required = ToLower(Text(*rl, "Value"));
  std::string type = TypeOf(a);
  if (type == "StringAttributeMetadata") {
    c.type = "string";
    if (auto n = Number(a, "MaxLength")) c.maxlength = static_cast<int>(*n);
    if (const Json* f = a.Find("FormatName"); f && f->is_object())
      c.format = ToLower(Text(*f, "Value"));
    else
      c.format = ToLower(Text(a, "Format"));
    if (c.format == "text" || c.format == "textarea") c.format.clear();
  } else if (type == "MemoAttributeMetadata") {
    c.type = "memo";
    if (auto n = Number(a, "MaxLength")) c.maxlength = static_cast<int>(*n);
  } else if (type == "IntegerAttributeMetadata" || type == "BigIntAttributeMetadata") {
    c.type = type == "BigIntAttributeMetadata" ? "bigint" : "integer";
    c.min = Number(a, "MinValue");
    c.max = Number(a, "MaxValue");
  } else if (type == "DecimalAttributeMetadata" || type == "DoubleAttributeMetadata" ||
             type == "MoneyAttributeMetadata") {
    c.type = type == "DecimalAttributeMetadata" ? "decimal" : type == "DoubleAttributeMetadata" ? "double" : "money";
    if (auto n = Number(a, "Precision")) c.precision = static_cast<int>(*n);
    c.min = Number(a, "MinValue");
    c.max = Number(a, "MaxValue");
  } else if (type == "BooleanAttributeMetadata") {
    c.type = "boolean";
    if (const Json* d = a.Find("DefaultValue"); d && d->is_bool()) c.default_bool = d->as_bool();
    if (const Json* os = a.Find("OptionSet"); os && os->is_object()) {
      if (const Json* t = os->Find("TrueOption")) c.truelabel = Label(*t, "Label");
      if (const Json* f = os->Find("FalseOption")) c.falselabel = Label(*f, "Label");
    }
  } else if (type == "PicklistAttributeMetadata" || type == "MultiSelectPicklistAttributeMetadata") {
    c.type = type == "PicklistAttributeMetadata" ? "choice" : "multichoice";
    std::string global = Text(a, "GlobalOptionSet@odata.bind");
    if (!global.empty()) {
      auto q1 = global.find('\''), q2 = global.rfind('\'');
      if (q1 == std::string::npos || q2 <= q1)
        return Bad(c.path +
                   ": GlobalOptionSet@odata.bind must name the choice: /GlobalOptionSetDefinitions(Name='x').");
      c.choices = global.substr(q1 + 1, q2 - q1 - 1);
    } else if (const Json* os = a.Find("OptionSet"); os && os->is_object()) {
      if (const Json* opts = os->Find("Options")) c.options = OptionsOf(*opts);
      if (c.options.empty()) return Bad(c.path + ": a choice column needs OptionSet.Options.");
    } else {
      return Bad(c.path + ": a choice column needs an OptionSet or GlobalOptionSet@odata.bind.");
    }
  } else if (type == "DateTimeAttributeMetadata") {
    c.type = "datetime";
    if (const Json* b = a.Find("DateTimeBehavior"); b && b->is_object()) c.behavior = ToLower(Text(*b, "Value"));
  } else if (type == "UniqueIdentifierAttributeMetadata") {
    c.type = "uniqueidentifier";
  } else if (type == "FileAttributeMetadata" || type == "ImageAttributeMetadata") {
    c.type = type == "FileAttributeMetadata" ? "file" : "image";
    if (auto n = Number(a, "MaxSizeInKB")) {
      if (*n < 1 || *n > 2147483647.0 || *n != static_cast<int>(*n))
        return Bad(c.path + ": MaxSizeInKB must be a positive whole number.");
      c.max_size_kb = static_cast<int>(*n);
    }
  } else if (type == "LookupAttributeMetadata") {
    return Bad(c.path + ": lookup columns are created with their relationship: POST RelationshipDefinitions.");
  } else {
    return Bad(c.path + ": the attribute type '" + type + "' cannot be created.");
  }
  return c;
}

}  // namespace

Result<SchemaDoc> EntityMetadataToSchema(const Json& body) {
  if (!body.is_object()) return Bad("The body must be an EntityMetadata object.");
  catalog::TableDef t;
  t.schemaname = Text(body, "SchemaName");
  ASSIGN_OR_RETURN(std::string prefix, PrefixOf(t.schemaname, "The table's"));
  t.name = ToLower(t.schemaname);
  t.displayname = Label(body, "DisplayName");
  t.displaycollectionname = Label(body, "DisplayCollectionName");
  t.description = Label(body, "Description");
  t.entitysetname = Text(body, "EntitySetName");
  std::string own = Text(body, "OwnershipType");
  t.ownership = own == "OrganizationOwned" ? "organization" : "user";
  if (const Json* ct = body.Find("ChangeTrackingEnabled"); ct && ct->is_bool()) t.changetracking = ct->as_bool();
  if (const Json* act = body.Find("IsActivity"); act && act->is_bool() && act->as_bool())
    return Bad("Activity tables cannot be created yet.");
  const Json* attrs = body.Find("Attributes");
  if (!attrs || !attrs->is_array() || attrs->as_array().empty())
    return Bad("Attributes must list at least the primary name attribute (IsPrimaryName: true).");
  for (size_t i = 0; i < attrs->as_array().size(); ++i) {
    const Json& a = attrs->as_array()[i];
    ASSIGN_OR_RETURN(ColumnDef c, ColumnOf(a, i));
    const Json* primary = a.Find("IsPrimaryName");
    if (primary && primary->is_bool() && primary->as_bool()) {
      if (c.type != "string") return Bad(c.path + ": the primary name attribute must be a StringAttributeMetadata.");
      if (t.primaryname) return Bad("Only one attribute can have IsPrimaryName: true.");
      t.primaryname = std::move(c);
    } else {
      t.columns.push_back(std::move(c));
    }
  }
  if (!t.primaryname) return Bad("One string attribute must have IsPrimaryName: true.");
  SchemaDoc d;
  d.version = 1;
  d.prefix = prefix;
  d.tables.push_back(std::move(t));
  return d;
}

Result<SchemaDoc> AttributeMetadataToSchema(const catalog::Table& table, const Json& body) {
  ASSIGN_OR_RETURN(ColumnDef c, ColumnOf(body, 0));
  c.path = "attribute";
  ASSIGN_OR_RETURN(std::string prefix, PrefixOf(c.schemaname.empty() ? c.name : c.schemaname, "The attribute's"));
  if (table.FindColumn(c.name))
    return Status(Code::kAlreadyExists,
                  "The table '" + table.logical_name + "' already has an attribute '" + c.name + "'.",
                  err::kDuplicateRecord);
  catalog::TableDef t;
  t.name = table.logical_name;
  t.columns.push_back(std::move(c));
  SchemaDoc d;
  d.version = 1;
  d.prefix = prefix;
  d.tables.push_back(std::move(t));
  return d;
}

Result<SchemaDoc> RelationshipMetadataToSchema(const catalog::Catalog& cat, const Json& body) {
  if (!body.is_object()) return Bad("The body must be a relationship metadata object.");
  std::string schema = Text(body, "SchemaName");
  ASSIGN_OR_RETURN(std::string prefix, PrefixOf(schema, "The relationship's"));
  if (cat.FindRelationship(schema))
    return Status(Code::kAlreadyExists, "A relationship named '" + schema + "' already exists.", err::kDuplicateRecord);
  std::string type = TypeOf(body);
  SchemaDoc d;
  d.version = 1;
  d.prefix = prefix;
  if (type == "ManyToManyRelationshipMetadata") {
    catalog::RelationshipDef r;
    r.name = ToLower(schema);
    r.type = "manytomany";
    r.entity1 = Text(body, "Entity1LogicalName");
    r.entity2 = Text(body, "Entity2LogicalName");
    r.intersect = ToLower(Text(body, "IntersectEntityName"));
    r.path = "relationship";
    d.relationships.push_back(std::move(r));
    return d;
  }
  if (type != "OneToManyRelationshipMetadata")
    return Bad(
        "The @odata.type must be Microsoft.Dynamics.CRM.OneToManyRelationshipMetadata or "
        "ManyToManyRelationshipMetadata.");
  const Json* lookup = body.Find("Lookup");
  if (!lookup || !lookup->is_object()) return Bad("A one-to-many relationship needs its Lookup attribute.");
  ColumnDef c;
  c.schemaname = Text(*lookup, "SchemaName");
  c.name = ToLower(c.schemaname);
  if (c.name.empty()) return Bad("Lookup.SchemaName is required.");
  c.path = "Lookup";
  c.type = "lookup";
  c.displayname = Label(*lookup, "DisplayName");
  c.description = Label(*lookup, "Description");
  if (const Json* rl = lookup->Find("RequiredLevel"); rl && rl->is_object()) c.required = ToLower(Text(*rl, "Value"));
  c.target = Text(body, "ReferencedEntity");
  c.relationship = schema;
  c.nav = Text(body, "ReferencingEntityNavigationPropertyName");
  if (const Json* cc = body.Find("CascadeConfiguration"); cc && cc->is_object()) {
    std::string del = Text(*cc, "Delete");
    c.ondelete = del == "Cascade" ? "cascade" : del == "Restrict" ? "restrict" : "";
  }
  catalog::TableDef t;
  t.name = Text(body, "ReferencingEntity");
  if (!cat.FindTable(t.name)) return Bad("ReferencingEntity: there is no table named '" + t.name + "'.");
  t.columns.push_back(std::move(c));
  d.tables.push_back(std::move(t));
  return d;
}

Result<SchemaDoc> OptionSetMetadataToSchema(const Json& body) {
  if (!body.is_object()) return Bad("The body must be an OptionSetMetadata object.");
  catalog::ChoiceDef c;
  c.name = ToLower(Text(body, "Name"));
  ASSIGN_OR_RETURN(std::string prefix, PrefixOf(c.name, "The choice's"));
  c.displayname = Label(body, "DisplayName");
  if (const Json* opts = body.Find("Options")) c.options = OptionsOf(*opts);
  c.path = "optionset";
  SchemaDoc d;
  d.version = 1;
  d.prefix = prefix;
  d.choices.push_back(std::move(c));
  return d;
}

}  // namespace tributary::odata
