// Dataverse metadata JSON → schema documents: creations (POST), updates (PUT: only what differs from
// the catalog) and the option value actions. See metadata_input.h.

#include "metadata_input.h"

#include <algorithm>

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

// IsAuditEnabled: a BooleanManagedProperty ({"Value": true, …}) or a plain boolean.
std::optional<bool> AuditSetting(const Json& o) {
  const Json* v = o.is_object() ? o.Find("IsAuditEnabled") : nullptr;
  if (v && v->is_object()) v = v->Find("Value");
  if (!v || !v->is_bool()) return std::nullopt;
  return v->as_bool();
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
  c.audit = AuditSetting(a);
  if (const Json* sec = a.Find("IsSecured"); sec && sec->is_bool()) c.secured = sec->as_bool();
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

// The label to store from a Label complex value in an update, or nullopt to keep the stored one.
// Clients edit LocalizedLabels (UserLocalizedLabel is computed by the server), so those come first.
std::optional<std::string> LabelUpdate(const Json& o, const char* key, bool merge) {
  const Json* l = o.is_object() ? o.Find(key) : nullptr;
  if (!l || !l->is_object()) return std::nullopt;
  const Json* labels = l->Find("LocalizedLabels");
  if (labels && labels->is_array()) {
    for (const auto& x : labels->as_array()) {
      const Json* lang = x.Find("LanguageCode");
      if (lang && lang->is_number() && lang->as_int() == 1033) return Text(x, "Label");
    }
  }
  if (merge) return std::nullopt;  // labels of other languages merge; the stored one stays
  if (labels && labels->is_array() && !labels->as_array().empty()) return Text(labels->as_array()[0], "Label");
  if (const Json* u = l->Find("UserLocalizedLabel"); u && u->is_object()) return Text(*u, "Label");
  return std::string();  // no labels: replaced by none
}

// Sets `field` when the body's label differs from the current text.
void DiffLabel(const Json& body, const char* key, bool merge, const std::string& current,
               std::optional<std::string>& field) {
  auto v = LabelUpdate(body, key, merge);
  if (v && *v != current) field = std::move(v);
}

// A name the body may repeat but not change.
Status Unchanged(const Json& body, const char* key, const std::string& current, bool ignore_case = false) {
  std::string v = Text(body, key);
  if (v.empty() || v == current || (ignore_case && EqualsIgnoreCase(v, current))) return Status::Ok();
  return Bad(std::string(key) + " cannot be changed (from '" + current + "' to '" + v + "').");
}

std::string RequiredName(catalog::RequiredLevel r) {
  switch (r) {
    case catalog::RequiredLevel::kNone:
      return "none";
    case catalog::RequiredLevel::kSystemRequired:
      return "systemrequired";
    case catalog::RequiredLevel::kApplicationRequired:
      return "applicationrequired";
    case catalog::RequiredLevel::kRecommended:
      return "recommended";
  }
  return "none";
}

// Which AttributeMetadata subtypes describe a column type (customer and owner columns are lookups).
bool MetadataTypeFits(std::string_view type, catalog::ColumnType t) {
  using CT = catalog::ColumnType;
  static const std::pair<std::string_view, CT> kTypes[] = {
      {"StringAttributeMetadata", CT::kString},     {"MemoAttributeMetadata", CT::kMemo},
      {"IntegerAttributeMetadata", CT::kInteger},   {"BigIntAttributeMetadata", CT::kBigInt},
      {"DecimalAttributeMetadata", CT::kDecimal},   {"DoubleAttributeMetadata", CT::kDouble},
      {"MoneyAttributeMetadata", CT::kMoney},       {"BooleanAttributeMetadata", CT::kBoolean},
      {"PicklistAttributeMetadata", CT::kChoice},   {"MultiSelectPicklistAttributeMetadata", CT::kMultiChoice},
      {"StateAttributeMetadata", CT::kState},       {"StatusAttributeMetadata", CT::kStatus},
      {"DateTimeAttributeMetadata", CT::kDateTime}, {"UniqueIdentifierAttributeMetadata", CT::kUniqueIdentifier},
      {"LookupAttributeMetadata", CT::kLookup},     {"LookupAttributeMetadata", CT::kCustomer},
      {"LookupAttributeMetadata", CT::kOwner},      {"FileAttributeMetadata", CT::kFile},
      {"ImageAttributeMetadata", CT::kImage},
  };
  if (type == "AttributeMetadata") return true;
  for (const auto& [name, ct] : kTypes)
    if (name == type && ct == t) return true;
  return false;
}

std::string CastName(std::string_view cast) {
  std::string t(cast);
  if (t.rfind("Microsoft.Dynamics.CRM.", 0) == 0) t = t.substr(23);
  return t;
}

// The options of an OptionSet body, with labels read like other labels in an update; an option
// without a usable label keeps the label it has in `current`.
std::vector<catalog::OptionDef> OptionsUpdate(const Json& options, const catalog::OptionSet* current, bool merge) {
  std::vector<catalog::OptionDef> out;
  if (!options.is_array()) return out;
  for (const auto& o : options.as_array()) {
    const Json* v = o.Find("Value");
    if (!v || !v->is_number()) continue;
    int value = static_cast<int>(v->as_int());
    const catalog::Option* old = current ? current->Find(value) : nullptr;
    auto label = LabelUpdate(o, "Label", merge);
    out.push_back({value, label ? *label : old ? old->label : std::string()});
  }
  return out;
}

bool SameOptions(const std::vector<catalog::OptionDef>& a, const catalog::OptionSet* b) {
  if (!b || a.size() != b->options.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i].value != b->options[i].value || a[i].label != b->options[i].label) return false;
  return true;
}

SchemaDoc UpdateDocument() {
  SchemaDoc d;
  d.version = 1;
  return d;
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
  t.audit = AuditSetting(body).value_or(false);
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

namespace tributary::odata {

Result<SchemaDoc> KeyMetadataToSchema(const catalog::Table& table, const Json& body) {
  if (!body.is_object()) return Bad("The body must be an EntityKeyMetadata object.");
  catalog::KeyDef k;
  k.schemaname = Text(body, "SchemaName");
  ASSIGN_OR_RETURN(std::string prefix, PrefixOf(k.schemaname, "The key's"));
  k.name = Text(body, "LogicalName").empty() ? ToLower(k.schemaname) : Text(body, "LogicalName");
  k.displayname = Label(body, "DisplayName");
  k.path = "key";
  const Json* attrs = body.Find("KeyAttributes");
  if (!attrs || !attrs->is_array() || attrs->as_array().empty())
    return Bad("KeyAttributes must list the logical names of the key's columns.");
  for (const auto& a : attrs->as_array()) {
    if (!a.is_string()) return Bad("KeyAttributes must list the logical names of the key's columns.");
    k.columns.push_back(a.as_string());
  }
  if (table.FindKey(k.name))
    return Status(Code::kAlreadyExists,
                  "The table '" + table.logical_name + "' already has an alternate key '" + k.name + "'.",
                  err::kDuplicateRecord);
  catalog::TableDef t;
  t.name = table.logical_name;
  t.keys.push_back(std::move(k));
  SchemaDoc d = UpdateDocument();
  d.prefix = prefix;
  d.tables.push_back(std::move(t));
  return d;
}

Result<SchemaDoc> EntityUpdateToSchema(const catalog::Table& table, const Json& body, bool merge_labels) {
  if (!body.is_object()) return Bad("The body must be an EntityMetadata object.");
  RETURN_IF_ERROR(Unchanged(body, "LogicalName", table.logical_name));
  RETURN_IF_ERROR(Unchanged(body, "SchemaName", table.schema_name, true));
  RETURN_IF_ERROR(Unchanged(body, "EntitySetName", table.entity_set_name));
  std::string own = Text(body, "OwnershipType");
  std::string current_own = table.ownership == catalog::Ownership::kOrganization ? "OrganizationOwned"
                            : table.ownership == catalog::Ownership::kUser       ? "UserOwned"
                                                                                 : "None";
  if (!own.empty() && own != current_own) return Bad("OwnershipType cannot be changed.");
  catalog::TableUpdate u;
  u.name = table.logical_name;
  u.path = "EntityDefinitions(LogicalName='" + table.logical_name + "')";
  DiffLabel(body, "DisplayName", merge_labels, table.display_name, u.displayname);
  DiffLabel(body, "DisplayCollectionName", merge_labels, table.display_collection_name, u.displaycollectionname);
  DiffLabel(body, "Description", merge_labels, table.description, u.description);
  if (const Json* ct = body.Find("ChangeTrackingEnabled");
      ct && ct->is_bool() && ct->as_bool() != table.change_tracking)
    u.changetracking = ct->as_bool();
  if (auto audit = AuditSetting(body); audit && *audit != table.audit_enabled) u.audit = audit;
  SchemaDoc d = UpdateDocument();
  if (u.displayname || u.displaycollectionname || u.description || u.changetracking || u.audit)
    d.update.tables.push_back(std::move(u));
  return d;
}

Result<SchemaDoc> AttributeUpdateToSchema(const catalog::Table& table, const catalog::Column& column,
                                          std::string_view cast, const Json& body, bool merge_labels) {
  using CT = catalog::ColumnType;
  if (!body.is_object()) return Bad("The body must be an AttributeMetadata object.");
  RETURN_IF_ERROR(Unchanged(body, "LogicalName", column.logical_name));
  RETURN_IF_ERROR(Unchanged(body, "SchemaName", column.schema_name, true));
  for (std::string type : {CastName(cast), Text(body, "@odata.type").empty() ? std::string() : TypeOf(body)}) {
    if (!type.empty() && !MetadataTypeFits(type, column.type))
      return Bad("The attribute '" + column.logical_name + "' is not a " + type +
                 "; an attribute's type cannot be changed.");
  }
  catalog::ColumnUpdate u;
  u.name = column.logical_name;
  u.path = "EntityDefinitions(LogicalName='" + table.logical_name + "')/Attributes(LogicalName='" +
           column.logical_name + "')";
  DiffLabel(body, "DisplayName", merge_labels, column.display_name, u.displayname);
  DiffLabel(body, "Description", merge_labels, column.description, u.description);
  if (auto audit = AuditSetting(body); audit && *audit != column.audit_enabled) u.audit = audit;
  if (const Json* sec = body.Find("IsSecured"); sec && sec->is_bool() && sec->as_bool() != column.is_secured)
    u.secured = sec->as_bool();
  if (const Json* rl = body.Find("RequiredLevel"); rl && rl->is_object()) {
    std::string v = ToLower(Text(*rl, "Value"));
    if (!v.empty() && v != RequiredName(column.required)) {
      if (v == "systemrequired" || column.required == catalog::RequiredLevel::kSystemRequired)
        return Bad("The requirement level SystemRequired is set by the platform and cannot be changed.");
      u.required = v;
    }
  }
  auto number = [&](const char* key) -> std::optional<double> {
    const Json* v = body.Find(key);
    return v && v->is_number() ? std::optional<double>(v->as_double()) : std::nullopt;
  };
  auto whole = [&](const char* key) -> Result<std::optional<int>> {
    auto n = number(key);
    if (!n) return std::optional<int>();
    if (*n != static_cast<double>(static_cast<int>(*n))) return Bad(std::string(key) + " must be a whole number.");
    return std::optional<int>(static_cast<int>(*n));
  };
  switch (column.type) {
    case CT::kString:
    case CT::kMemo: {
      ASSIGN_OR_RETURN(auto max, whole("MaxLength"));
      if (max && *max != column.max_length) u.maxlength = max;
      if (column.type == CT::kString) {
        std::string f;
        if (const Json* fn = body.Find("FormatName"); fn && fn->is_object()) f = ToLower(Text(*fn, "Value"));
        if (f == "text" || f == "textarea") f.clear();
        if ((body.Find("FormatName") && f != column.format)) u.format = f;
      }
      break;
    }
    case CT::kInteger:
    case CT::kDecimal:
    case CT::kDouble:
    case CT::kMoney: {
      auto min = number("MinValue"), max = number("MaxValue");
      if (min && min != column.min_value) u.min = min;
      if (max && max != column.max_value) u.max = max;
      if (column.type != CT::kInteger) {
        ASSIGN_OR_RETURN(auto precision, whole("Precision"));
        if (precision && *precision != column.precision) u.precision = precision;
      }
      break;
    }
    case CT::kBoolean: {
      if (const Json* dv = body.Find("DefaultValue"); dv && dv->is_bool() && dv->as_bool() != column.default_bool)
        u.default_bool = dv->as_bool();
      const Json* os = body.Find("OptionSet");
      if (os && os->is_object() && column.options) {
        const catalog::Option* f = column.options->Find(0);
        const catalog::Option* t = column.options->Find(1);
        if (const Json* to = os->Find("TrueOption"))
          DiffLabel(*to, "Label", merge_labels, t ? t->label : "", u.truelabel);
        if (const Json* fo = os->Find("FalseOption"))
          DiffLabel(*fo, "Label", merge_labels, f ? f->label : "", u.falselabel);
      }
      break;
    }
    case CT::kChoice:
    case CT::kMultiChoice: {
      const Json* os = body.Find("OptionSet");
      const Json* opts = os && os->is_object() ? os->Find("Options") : nullptr;
      if (opts && opts->is_array() && column.options && !column.options->is_global) {
        auto options = OptionsUpdate(*opts, column.options.get(), merge_labels);
        if (!SameOptions(options, column.options.get())) u.options = std::move(options);
      }
      break;
    }
    case CT::kDateTime: {
      const Json* b = body.Find("DateTimeBehavior");
      std::string v = b && b->is_object() ? ToLower(Text(*b, "Value")) : "";
      std::string current = column.behavior == catalog::DateBehavior::kDateOnly              ? "dateonly"
                            : column.behavior == catalog::DateBehavior::kTimeZoneIndependent ? "timezoneindependent"
                                                                                             : "userlocal";
      if (!v.empty() && v != current)
        return Bad("The DateTimeBehavior of '" + column.logical_name +
                   "' cannot be changed: stored values are kept as " + current + ".");
      break;
    }
    case CT::kFile:
    case CT::kImage: {
      ASSIGN_OR_RETURN(auto kb, whole("MaxSizeInKB"));
      if (kb && *kb != column.max_size_kb) u.max_size_kb = kb;
      break;
    }
    default:
      break;
  }
  SchemaDoc d = UpdateDocument();
  bool changed = u.displayname || u.description || u.required || u.format || u.maxlength || u.precision ||
                 u.max_size_kb || u.min || u.max || u.options || u.default_bool || u.truelabel || u.falselabel ||
                 u.audit;
  if (changed) {
    catalog::TableUpdate t;
    t.name = table.logical_name;
    t.path = "EntityDefinitions(LogicalName='" + table.logical_name + "')";
    t.columns.push_back(std::move(u));
    d.update.tables.push_back(std::move(t));
  }
  return d;
}

Result<SchemaDoc> RelationshipUpdateToSchema(const catalog::Relationship& rel, const Json& body) {
  if (!body.is_object()) return Bad("The body must be a relationship metadata object.");
  RETURN_IF_ERROR(Unchanged(body, "SchemaName", rel.schema_name, true));
  SchemaDoc d = UpdateDocument();
  if (rel.type == catalog::RelationshipType::kManyToMany) return d;  // labels and menus are not stored
  RETURN_IF_ERROR(Unchanged(body, "ReferencedEntity", rel.referenced_entity));
  RETURN_IF_ERROR(Unchanged(body, "ReferencingEntity", rel.referencing_entity));
  const Json* cc = body.Find("CascadeConfiguration");
  std::string del = cc && cc->is_object() ? Text(*cc, "Delete") : "";
  if (del.empty()) return d;
  std::string v = del == "Cascade"      ? "cascade"
                  : del == "RemoveLink" ? "removelink"
                  : del == "Restrict"   ? "restrict"
                                        : "";
  if (v.empty()) return Bad("CascadeConfiguration.Delete must be Cascade, RemoveLink or Restrict.");
  std::string current = rel.on_delete == catalog::CascadeDelete::kCascade    ? "cascade"
                        : rel.on_delete == catalog::CascadeDelete::kRestrict ? "restrict"
                                                                             : "removelink";
  if (v != current)
    d.update.relationships.push_back(
        {rel.schema_name, v, "RelationshipDefinitions(SchemaName='" + rel.schema_name + "')"});
  return d;
}

Result<SchemaDoc> OptionSetUpdateToSchema(const catalog::OptionSet& choice, const Json& body, bool merge_labels) {
  if (!body.is_object()) return Bad("The body must be an OptionSetMetadata object.");
  RETURN_IF_ERROR(Unchanged(body, "Name", choice.name, true));
  catalog::ChoiceUpdate u;
  u.name = choice.name;
  u.path = "GlobalOptionSetDefinitions(Name='" + choice.name + "')";
  DiffLabel(body, "DisplayName", merge_labels, choice.display_name, u.displayname);
  if (const Json* opts = body.Find("Options"); opts && opts->is_array()) {
    auto options = OptionsUpdate(*opts, &choice, merge_labels);
    if (!SameOptions(options, &choice)) u.options = std::move(options);
  }
  SchemaDoc d = UpdateDocument();
  if (u.displayname || u.options) d.update.choices.push_back(std::move(u));
  return d;
}

Result<SchemaDoc> OptionValueActionToSchema(const catalog::Catalog& cat, std::string_view action, const Json& body,
                                            int& value) {
  if (!body.is_object()) return Bad("The body of " + std::string(action) + " must be a JSON object.");
  const catalog::OptionSet* os = nullptr;
  const catalog::Table* table = nullptr;
  const catalog::Column* column = nullptr;
  if (std::string name = Text(body, "OptionSetName"); !name.empty()) {
    os = cat.FindGlobalChoice(name);
    if (!os) return NotFound("There is no global choice named '" + name + "'.");
  } else {
    std::string t = Text(body, "EntityLogicalName"), a = Text(body, "AttributeLogicalName");
    if (t.empty() || a.empty())
      return Bad(std::string(action) + " needs OptionSetName, or EntityLogicalName and AttributeLogicalName.");
    table = cat.FindTable(t);
    if (!table) return NotFound("There is no table named '" + t + "'.");
    column = table->FindColumn(a);
    if (!column) return NotFound("The table '" + t + "' has no attribute '" + a + "'.");
    if (column->type != catalog::ColumnType::kChoice && column->type != catalog::ColumnType::kMultiChoice)
      return Bad("The attribute '" + a + "' is not a choice column.");
    if (column->options->is_global)
      return Bad("The attribute '" + a + "' uses the global choice '" + column->options->name +
                 "'; change its options with OptionSetName.");
    os = column->options.get();
  }
  std::vector<catalog::OptionDef> options;
  for (const auto& o : os->options) options.push_back({o.value, o.label});
  const Json* v = body.Find("Value");
  bool has_value = v && v->is_number();
  if (has_value) value = static_cast<int>(v->as_int());
  auto existing = std::find_if(options.begin(), options.end(), [&](const auto& o) { return o.value == value; });
  if (action == "InsertOptionValue") {
    if (!has_value) {
      value = 0;
      for (const auto& o : options) value = std::max(value, o.value + 1);
      existing = options.end();
    }
    if (existing != options.end())
      return Bad("The choice '" + os->name + "' already has an option with the value " + std::to_string(value) + ".");
    auto label = LabelUpdate(body, "Label", false);
    if (!label || label->empty()) return Bad("InsertOptionValue needs a Label.");
    options.push_back({value, *label});
  } else {
    if (!has_value) return Bad(std::string(action) + " needs the Value of the option.");
    if (existing == options.end())
      return NotFound("The choice '" + os->name + "' has no option with the value " + std::to_string(value) + ".");
    if (action == "DeleteOptionValue") {
      options.erase(existing);
    } else {
      const Json* merge = body.Find("MergeLabels");
      auto label = LabelUpdate(body, "Label", merge && merge->is_bool() && merge->as_bool());
      if (label) existing->label = *label;
    }
  }
  SchemaDoc d = UpdateDocument();
  if (column) {
    catalog::ColumnUpdate cu;
    cu.name = column->logical_name;
    cu.options = std::move(options);
    cu.path = std::string(action);
    catalog::TableUpdate tu;
    tu.name = table->logical_name;
    tu.path = std::string(action);
    tu.columns.push_back(std::move(cu));
    d.update.tables.push_back(std::move(tu));
  } else {
    catalog::ChoiceUpdate cu;
    cu.name = os->name;
    cu.options = std::move(options);
    cu.path = std::string(action);
    d.update.choices.push_back(std::move(cu));
  }
  return d;
}

}  // namespace tributary::odata
