#include "tributary/odata/metadata_writer.h"

#include "operations.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <optional>
#include <unordered_set>
#include <utility>

#include "tributary/base/guid.h"
#include "tributary/base/json.h"
#include "tributary/base/strings.h"

namespace tributary::odata {
namespace {

using catalog::Column;
using catalog::ColumnType;
using catalog::NavProperty;
using catalog::Table;

constexpr std::string_view kNamespace = "Microsoft.Dynamics.CRM";
constexpr int kLanguageCode = 1033;

// "{root}$metadata", with the root's trailing slash ensured.
std::string MetadataUrl(std::string_view root) {
  std::string out(root);
  if (!out.empty() && out.back() != '/') out.push_back('/');
  out += "$metadata";
  return out;
}

// "(a,b)" for a non-empty $select, as the context URL lists it; "" otherwise.
std::string SelectSuffix(const std::vector<std::string>& select) {
  if (select.empty()) return {};
  std::string out = "(";
  for (size_t i = 0; i < select.size(); ++i) {
    if (i > 0) out.push_back(',');
    out += select[i];
  }
  out.push_back(')');
  return out;
}

bool Selected(const std::vector<std::string>& select, std::string_view name) {
  return select.empty() || std::find(select.begin(), select.end(), name) != select.end();
}

Status UnknownProperty(std::string_view name, std::string_view type) {
  return QueryError("Could not find a property named '" + std::string(name) + "' on type '" + std::string(type) + "'.");
}

std::vector<const Table*> TablesOf(const catalog::Catalog& catalog) {
  std::vector<const Table*> tables;
  tables.reserve(catalog.tables().size());
  for (const auto& t : catalog.tables()) tables.push_back(t.get());
  return tables;
}

// systemuser and team derive from the abstract principal type and inherit its ownerid key.
bool DerivesFromPrincipal(const Table& t) { return t.logical_name == "systemuser" || t.logical_name == "team"; }

// A stable GUID for a metadata object that the catalog gives no id of its own (labels): a hash
// of the owner's id and a tag, laid out as a version-5 (name-based) UUID.
Guid DerivedGuid(const Guid& owner, std::string_view tag) {
  uint64_t h = 0xcbf29ce484222325ULL;  // FNV-1a
  auto mix = [&h](uint8_t b) { h = (h ^ b) * 0x100000001b3ULL; };
  for (uint8_t b : owner.bytes()) mix(b);
  for (char c : tag) mix(static_cast<uint8_t>(c));
  auto finalize = [](uint64_t z) {  // splitmix64
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  };
  uint64_t hi = finalize(h), lo = finalize(h ^ 0x9e3779b97f4a7c15ULL);
  std::array<uint8_t, 16> bytes;
  for (int i = 0; i < 8; ++i) {
    bytes[i] = static_cast<uint8_t>(hi >> (56 - 8 * i));
    bytes[8 + i] = static_cast<uint8_t>(lo >> (56 - 8 * i));
  }
  bytes[6] = static_cast<uint8_t>((bytes[6] & 0x0f) | 0x50);
  bytes[8] = static_cast<uint8_t>((bytes[8] & 0x3f) | 0x80);
  return Guid(bytes);
}

// ---------------------------------------------------------------------------------------------
// XML

// Writes elements with escaped attribute values; attributes with an empty value are left out
// (no CSDL attribute is legitimately empty). Element names must outlive the writer.
class XmlWriter {
 public:
  using Attrs = std::initializer_list<std::pair<std::string_view, std::string_view>>;

  explicit XmlWriter(std::string& out) : out_(out) {}
  void Open(std::string_view name, Attrs attrs = {}) {
    Start(name, attrs);
    out_.push_back('>');
    open_.push_back(name);
  }
  void Empty(std::string_view name, Attrs attrs = {}) {
    Start(name, attrs);
    out_ += "/>";
  }
  void Close() {
    out_ += "</";
    out_ += open_.back();
    out_.push_back('>');
    open_.pop_back();
  }

 private:
  void Start(std::string_view name, Attrs attrs) {
    out_.push_back('<');
    out_ += name;
    for (const auto& [key, value] : attrs) {
      if (value.empty()) continue;
      out_.push_back(' ');
      out_ += key;
      out_ += "=\"";
      AppendXmlEscaped(out_, value);
      out_.push_back('"');
    }
  }
  std::string& out_;
  std::vector<std::string_view> open_;
};

void WriteDescriptionAnnotation(XmlWriter& x, std::string_view description) {
  if (!description.empty()) {
    x.Empty("Annotation", {{"Term", "Org.OData.Core.V1.Description"}, {"String", description}});
  }
}

bool IsReadOnly(const Column& c) { return !c.valid_for_create && !c.valid_for_update; }

void WriteProperty(XmlWriter& x, const Column& c, bool annotations) {
  const std::string name = c.IsLookup() ? c.LookupProperty() : c.logical_name;
  const std::string_view type = EdmType(c);
  // Edm.Decimal defaults to scale 0; Dataverse decimals carry fractions.
  const std::string_view scale = type == "Edm.Decimal" ? "Variable" : "";
  const bool annotate = annotations && (IsReadOnly(c) || !c.description.empty());
  if (!annotate) {
    x.Empty("Property", {{"Name", name}, {"Type", type}, {"Scale", scale}});
    return;
  }
  x.Open("Property", {{"Name", name}, {"Type", type}, {"Scale", scale}});
  WriteDescriptionAnnotation(x, c.description);
  if (IsReadOnly(c)) {
    x.Empty("Annotation", {{"Term", "Org.OData.Core.V1.Computed"}, {"Bool", "true"}});
    x.Empty("Annotation",
            {{"Term", "Org.OData.Core.V1.Permissions"}, {"EnumMember", "Org.OData.Core.V1.Permission/Read"}});
  }
  x.Close();
}

// Single-valued navs carry a ReferentialConstraint from the lookup's "_x_value" property to the
// target's key; Partner names the nav on the other side (for N:N, the same name).
void WriteNavigationProperty(XmlWriter& x, const NavProperty& nav) {
  const catalog::Relationship* rel = nav.relationship;
  std::string type, partner, constraint_from, constraint_to;
  switch (nav.kind) {
    case NavProperty::Kind::kPolymorphicOwner:
      type = "mscrm.principal";
      constraint_from = nav.column ? nav.column->LookupProperty() : "_" + nav.name + "_value";
      constraint_to = "ownerid";
      break;
    case NavProperty::Kind::kSingle:
      if (nav.target == nullptr) return;  // not resolved: nothing to point at
      type = "mscrm." + nav.target->logical_name;
      if (rel) partner = rel->referenced_nav;
      if (nav.column) constraint_from = nav.column->LookupProperty();
      constraint_to = nav.target->primary_id;
      break;
    case NavProperty::Kind::kCollection:
      if (nav.target == nullptr) return;
      type = "Collection(mscrm." + nav.target->logical_name + ")";
      if (rel) partner = rel->referencing_nav;
      break;
    case NavProperty::Kind::kManyToMany:
      if (nav.target == nullptr) return;
      type = "Collection(mscrm." + nav.target->logical_name + ")";
      partner = nav.name;
      break;
  }
  const bool constrained = !constraint_from.empty() && !constraint_to.empty();
  if (!constrained) {
    x.Empty("NavigationProperty", {{"Name", nav.name}, {"Type", type}, {"Partner", partner}});
    return;
  }
  x.Open("NavigationProperty", {{"Name", nav.name}, {"Type", type}, {"Partner", partner}});
  x.Empty("ReferentialConstraint", {{"Property", constraint_from}, {"ReferencedProperty", constraint_to}});
  x.Close();
}

void WriteEntityType(XmlWriter& x, const Table& t, bool annotations) {
  const bool principal = DerivesFromPrincipal(t);
  x.Open("EntityType", {{"Name", t.logical_name}, {"BaseType", principal ? "mscrm.principal" : "mscrm.crmbaseentity"}});
  if (!principal && !t.primary_id.empty()) {
    x.Open("Key");
    x.Empty("PropertyRef", {{"Name", t.primary_id}});
    x.Close();
  }
  if (annotations) WriteDescriptionAnnotation(x, t.description);
  for (const auto& c : t.columns) {
    // The inherited ownerid must not be declared twice.
    if (principal && !c->IsLookup() && c->logical_name == "ownerid") continue;
    WriteProperty(x, *c, annotations);
  }
  for (const NavProperty& nav : t.navs) WriteNavigationProperty(x, nav);
  x.Close();
}

void WriteEntitySet(XmlWriter& x, const Table& t, const std::unordered_set<const Table*>& listed, bool annotations) {
  const std::string entity_type = std::string(kNamespace) + "." + t.logical_name;
  std::vector<const NavProperty*> bound;
  for (const NavProperty& nav : t.navs) {
    if (nav.target != nullptr && listed.contains(nav.target)) bound.push_back(&nav);
  }
  const bool tracked = annotations && t.change_tracking;
  if (bound.empty() && !tracked) {
    x.Empty("EntitySet", {{"Name", t.entity_set_name}, {"EntityType", entity_type}});
    return;
  }
  x.Open("EntitySet", {{"Name", t.entity_set_name}, {"EntityType", entity_type}});
  for (const NavProperty* nav : bound) {
    x.Empty("NavigationPropertyBinding", {{"Path", nav->name}, {"Target", nav->target->entity_set_name}});
  }
  if (tracked) {
    x.Open("Annotation", {{"Term", "Org.OData.Capabilities.V1.ChangeTracking"}});
    x.Open("Record");
    x.Empty("PropertyValue", {{"Property", "Supported"}, {"Bool", "true"}});
    x.Close();
    x.Close();
  }
  x.Close();
}

// The unbound functions every client calls at startup, with their response types.
void WriteFunctions(XmlWriter& x) {
  x.Open("ComplexType", {{"Name", "WhoAmIResponse"}});
  for (std::string_view p : {"BusinessUnitId", "UserId", "OrganizationId"}) {
    x.Empty("Property", {{"Name", p}, {"Type", "Edm.Guid"}, {"Nullable", "false"}});
  }
  x.Close();
  x.Open("ComplexType", {{"Name", "RetrieveVersionResponse"}});
  x.Empty("Property", {{"Name", "Version"}, {"Type", "Edm.String"}});
  x.Close();
  x.Open("Function", {{"Name", "WhoAmI"}, {"IsBound", "false"}});
  x.Empty("ReturnType", {{"Type", "mscrm.WhoAmIResponse"}, {"Nullable", "false"}});
  x.Close();
  x.Open("Function", {{"Name", "RetrieveVersion"}, {"IsBound", "false"}});
  x.Empty("ReturnType", {{"Type", "mscrm.RetrieveVersionResponse"}, {"Nullable", "false"}});
  x.Close();
}

// ---------------------------------------------------------------------------------------------
// JSON: labels and shared pieces

// A Label complex value in the user's language (1033); an empty text has no localized labels.
void WriteLabel(JsonWriter& w, std::string_view text, const Guid& owner, std::string_view tag, bool managed) {
  w.BeginObject();
  w.Key("LocalizedLabels");
  w.BeginArray();
  std::string localized;
  if (!text.empty()) {
    JsonWriter lw(localized);
    lw.BeginObject();
    lw.Key("Label");
    lw.String(text);
    lw.Key("LanguageCode");
    lw.Int(kLanguageCode);
    lw.Key("IsManaged");
    lw.Bool(managed);
    lw.Key("MetadataId");
    lw.String(DerivedGuid(owner, tag).ToString());
    lw.Key("HasChanged");
    lw.Null();
    lw.EndObject();
    w.Raw(localized);
  }
  w.EndArray();
  w.Key("UserLocalizedLabel");
  if (localized.empty()) {
    w.Null();
  } else {
    w.Raw(localized);
  }
  w.EndObject();
}

// {"Value":…,"CanBeChanged":…,"ManagedPropertyLogicalName":…}
void WriteManagedProperty(JsonWriter& w, bool value, bool can_be_changed, std::string_view name) {
  w.BeginObject();
  w.Key("Value");
  w.Bool(value);
  w.Key("CanBeChanged");
  w.Bool(can_be_changed);
  w.Key("ManagedPropertyLogicalName");
  w.String(name);
  w.EndObject();
}

void WriteStringOrNull(JsonWriter& w, std::string_view s) {
  if (s.empty()) {
    w.Null();
  } else {
    w.String(s);
  }
}

// Whole numbers as integers (Dataverse bounds are whole), anything else as a double.
void WriteNumber(JsonWriter& w, double v) {
  if (std::isfinite(v) && v == std::trunc(v) && std::fabs(v) < 9.0e15) {
    w.Int(static_cast<int64_t>(v));
  } else {
    w.Double(v);
  }
}

// ---------------------------------------------------------------------------------------------
// EntityMetadata

std::string_view OwnershipName(catalog::Ownership o) {
  switch (o) {
    case catalog::Ownership::kUser:
      return "UserOwned";
    case catalog::Ownership::kOrganization:
      return "OrganizationOwned";
    case catalog::Ownership::kNone:
      return "None";
  }
  return "None";
}

std::string Pluralize(std::string_view s) {
  std::string out(s);
  const std::string lower = ToLower(s);
  auto ends = [&lower](std::string_view suffix) { return lower.ends_with(suffix); };
  if (ends("y")) {
    out.pop_back();
    out += "ies";
  } else if (ends("s") || ends("x") || ends("z") || ends("ch") || ends("sh")) {
    out += "es";
  } else {
    out += "s";
  }
  return out;
}

// The schema name of the collection: the schema name with the entity set's plural ending when
// the set name extends the logical name ("new_Project" + "new_projects" → "new_Projects"), else
// the schema name pluralized ("Opportunity" → "Opportunities").
std::string CollectionSchemaName(const Table& t) {
  const std::string_view schema = t.schema_name.empty() ? t.logical_name : t.schema_name;
  const std::string_view set = t.entity_set_name;
  if (set.size() >= schema.size() && StartsWithIgnoreCase(set, schema)) {
    return std::string(schema) + std::string(set.substr(schema.size()));
  }
  return Pluralize(schema);
}

// IsAuditEnabled: a BooleanManagedProperty.
void WriteAuditSetting(JsonWriter& w, bool on, bool can_change) {
  w.BeginObject();
  w.Key("Value");
  w.Bool(on);
  w.Key("CanBeChanged");
  w.Bool(can_change);
  w.Key("ManagedPropertyLogicalName");
  w.String("canmodifyauditsettings");
  w.EndObject();
}

struct EntityProperty {
  std::string_view name;
  void (*write)(JsonWriter&, const Table&);
};

// Every EntityMetadata property we serve, in output order.
constexpr EntityProperty kEntityProperties[] = {
    {"MetadataId", [](JsonWriter& w, const Table& t) { w.String(t.metadata_id.ToString()); }},
    {"LogicalName", [](JsonWriter& w, const Table& t) { w.String(t.logical_name); }},
    {"SchemaName", [](JsonWriter& w, const Table& t) { w.String(t.schema_name); }},
    {"EntitySetName", [](JsonWriter& w, const Table& t) { w.String(t.entity_set_name); }},
    {"LogicalCollectionName", [](JsonWriter& w, const Table& t) { w.String(t.entity_set_name); }},
    {"CollectionSchemaName", [](JsonWriter& w, const Table& t) { w.String(CollectionSchemaName(t)); }},
    {"PrimaryIdAttribute", [](JsonWriter& w, const Table& t) { WriteStringOrNull(w, t.primary_id); }},
    {"PrimaryNameAttribute", [](JsonWriter& w, const Table& t) { WriteStringOrNull(w, t.primary_name); }},
    {"ObjectTypeCode", [](JsonWriter& w, const Table& t) { w.Int(t.object_type_code); }},
    {"IsCustomEntity", [](JsonWriter& w, const Table& t) { w.Bool(t.is_custom); }},
    {"IsActivity", [](JsonWriter& w, const Table&) { w.Bool(false); }},
    {"IsIntersect", [](JsonWriter& w, const Table& t) { w.Bool(t.is_intersect); }},
    {"ChangeTrackingEnabled", [](JsonWriter& w, const Table& t) { w.Bool(t.change_tracking); }},
    {"IsAuditEnabled",
     [](JsonWriter& w, const Table& t) {
       WriteAuditSetting(w, t.audit_enabled, !t.is_intersect && t.logical_name != "audit");
     }},
    {"IsOptimisticConcurrencyEnabled", [](JsonWriter& w, const Table&) { w.Bool(true); }},
    {"OwnershipType", [](JsonWriter& w, const Table& t) { w.String(OwnershipName(t.ownership)); }},
    {"DisplayName",
     [](JsonWriter& w, const Table& t) { WriteLabel(w, t.display_name, t.metadata_id, "DisplayName", !t.is_custom); }},
    {"DisplayCollectionName",
     [](JsonWriter& w, const Table& t) {
       WriteLabel(w, t.display_collection_name, t.metadata_id, "DisplayCollectionName", !t.is_custom);
     }},
    {"Description",
     [](JsonWriter& w, const Table& t) { WriteLabel(w, t.description, t.metadata_id, "Description", !t.is_custom); }},
    {"IsValidForAdvancedFind", [](JsonWriter& w, const Table& t) { w.Bool(!t.is_intersect); }},
    {"IconVectorName", [](JsonWriter& w, const Table&) { w.Null(); }},
};

constexpr std::string_view kEntityMetadataType = "Microsoft.Dynamics.CRM.EntityMetadata";

Status ValidateEntitySelect(const std::vector<std::string>& select) {
  for (const std::string& name : select) {
    const bool known = std::any_of(std::begin(kEntityProperties), std::end(kEntityProperties),
                                   [&name](const EntityProperty& p) { return p.name == name; });
    if (!known) return UnknownProperty(name, kEntityMetadataType);
  }
  return Status::Ok();
}

// The members of one EntityMetadata object (the caller opens and closes it).
void WriteEntityMembers(JsonWriter& w, const Table& t, const std::vector<std::string>& select) {
  for (const EntityProperty& p : kEntityProperties) {
    if (p.name != "MetadataId" && !Selected(select, p.name)) continue;
    w.Key(p.name);
    p.write(w, t);
  }
}

// ---------------------------------------------------------------------------------------------
// AttributeMetadata

using TypeMask = uint32_t;
constexpr TypeMask Bit(ColumnType t) { return TypeMask{1} << static_cast<unsigned>(t); }
constexpr TypeMask kAllTypes = (Bit(ColumnType::kImage) << 1) - 1;  // kImage is the last ColumnType
constexpr TypeMask kFileTypes = Bit(ColumnType::kFile) | Bit(ColumnType::kImage);
constexpr TypeMask kLookupTypes = Bit(ColumnType::kLookup) | Bit(ColumnType::kCustomer) | Bit(ColumnType::kOwner);
constexpr TypeMask kEnumTypes =
    Bit(ColumnType::kChoice) | Bit(ColumnType::kMultiChoice) | Bit(ColumnType::kState) | Bit(ColumnType::kStatus);
constexpr TypeMask kNumberTypes = Bit(ColumnType::kInteger) | Bit(ColumnType::kBigInt) | Bit(ColumnType::kDecimal) |
                                  Bit(ColumnType::kDouble) | Bit(ColumnType::kMoney);

// The AttributeMetadata subtype of a column (the cast name without the namespace).
std::string_view MetadataTypeName(ColumnType t) {
  switch (t) {
    case ColumnType::kString:
      return "StringAttributeMetadata";
    case ColumnType::kMemo:
      return "MemoAttributeMetadata";
    case ColumnType::kInteger:
      return "IntegerAttributeMetadata";
    case ColumnType::kBigInt:
      return "BigIntAttributeMetadata";
    case ColumnType::kDecimal:
      return "DecimalAttributeMetadata";
    case ColumnType::kDouble:
      return "DoubleAttributeMetadata";
    case ColumnType::kMoney:
      return "MoneyAttributeMetadata";
    case ColumnType::kBoolean:
      return "BooleanAttributeMetadata";
    case ColumnType::kChoice:
      return "PicklistAttributeMetadata";
    case ColumnType::kMultiChoice:
      return "MultiSelectPicklistAttributeMetadata";
    case ColumnType::kState:
      return "StateAttributeMetadata";
    case ColumnType::kStatus:
      return "StatusAttributeMetadata";
    case ColumnType::kDateTime:
      return "DateTimeAttributeMetadata";
    case ColumnType::kUniqueIdentifier:
      return "UniqueIdentifierAttributeMetadata";
    case ColumnType::kLookup:
    case ColumnType::kCustomer:
    case ColumnType::kOwner:
      return "LookupAttributeMetadata";
    case ColumnType::kFile:
      return "FileAttributeMetadata";
    case ColumnType::kImage:
      return "ImageAttributeMetadata";
  }
  return "AttributeMetadata";
}

// AttributeTypeName.Value (AttributeTypeDisplayName).
std::string_view AttributeTypeDisplayName(ColumnType t) {
  switch (t) {
    case ColumnType::kString:
      return "StringType";
    case ColumnType::kMemo:
      return "MemoType";
    case ColumnType::kInteger:
      return "IntegerType";
    case ColumnType::kBigInt:
      return "BigIntType";
    case ColumnType::kDecimal:
      return "DecimalType";
    case ColumnType::kDouble:
      return "DoubleType";
    case ColumnType::kMoney:
      return "MoneyType";
    case ColumnType::kBoolean:
      return "BooleanType";
    case ColumnType::kChoice:
      return "PicklistType";
    case ColumnType::kMultiChoice:
      return "MultiSelectPicklistType";
    case ColumnType::kState:
      return "StateType";
    case ColumnType::kStatus:
      return "StatusType";
    case ColumnType::kDateTime:
      return "DateTimeType";
    case ColumnType::kUniqueIdentifier:
      return "UniqueidentifierType";
    case ColumnType::kLookup:
      return "LookupType";
    case ColumnType::kCustomer:
      return "CustomerType";
    case ColumnType::kOwner:
      return "OwnerType";
    case ColumnType::kFile:
      return "FileType";
    case ColumnType::kImage:
      return "ImageType";
  }
  return "StringType";
}

std::string_view RequiredLevelName(catalog::RequiredLevel r) {
  switch (r) {
    case catalog::RequiredLevel::kNone:
      return "None";
    case catalog::RequiredLevel::kSystemRequired:
      return "SystemRequired";
    case catalog::RequiredLevel::kApplicationRequired:
      return "ApplicationRequired";
    case catalog::RequiredLevel::kRecommended:
      return "Recommended";
  }
  return "None";
}

std::string_view BehaviorName(catalog::DateBehavior b) {
  switch (b) {
    case catalog::DateBehavior::kUserLocal:
      return "UserLocal";
    case catalog::DateBehavior::kDateOnly:
      return "DateOnly";
    case catalog::DateBehavior::kTimeZoneIndependent:
      return "TimeZoneIndependent";
  }
  return "UserLocal";
}

// StringFormat of a string column: "Text", "Email", "Phone", "Url".
std::string StringFormatName(const Column& c) {
  if (c.format.empty()) return "Text";
  std::string out = ToLower(c.format);
  if (out[0] >= 'a' && out[0] <= 'z') out[0] = static_cast<char>(out[0] - 'a' + 'A');
  return out;
}

std::string FormatOf(const Column& c) {
  switch (c.type) {
    case ColumnType::kString:
      return StringFormatName(c);
    case ColumnType::kMemo:
      return "TextArea";
    case ColumnType::kInteger:
      return "None";
    case ColumnType::kDateTime:
      return c.behavior == catalog::DateBehavior::kDateOnly ? "DateOnly" : "DateAndTime";
    default:
      return {};
  }
}

void WriteBound(JsonWriter& w, const Column& c, bool max) {
  const std::optional<double>& set = max ? c.max_value : c.min_value;
  double v = 0;
  switch (c.type) {
    case ColumnType::kInteger:
      v = max ? std::numeric_limits<int32_t>::max() : std::numeric_limits<int32_t>::min();
      break;
    case ColumnType::kBigInt:
      if (!set) {
        w.Int(max ? std::numeric_limits<int64_t>::max() : std::numeric_limits<int64_t>::min());
        return;
      }
      break;
    case ColumnType::kMoney:
      v = max ? 922337203685477.0 : -922337203685477.0;
      break;
    default:
      v = max ? 100000000000.0 : -100000000000.0;
      break;
  }
  WriteNumber(w, set.value_or(v));
}

struct AttributeProperty {
  std::string_view name;
  TypeMask types;  // the column types that have this property
  void (*write)(JsonWriter&, const Table&, const Column&);
};

// Every AttributeMetadata property we serve, in output order.
constexpr AttributeProperty kAttributeProperties[] = {
    {"MetadataId", kAllTypes, [](JsonWriter& w, const Table&, const Column& c) { w.String(c.metadata_id.ToString()); }},
    {"LogicalName", kAllTypes, [](JsonWriter& w, const Table&, const Column& c) { w.String(c.logical_name); }},
    {"SchemaName", kAllTypes, [](JsonWriter& w, const Table&, const Column& c) { w.String(c.schema_name); }},
    {"AttributeType", kAllTypes,
     [](JsonWriter& w, const Table&, const Column& c) { w.String(catalog::ColumnTypeName(c.type)); }},
    {"AttributeTypeName", kAllTypes,
     [](JsonWriter& w, const Table&, const Column& c) {
       w.BeginObject();
       w.Key("Value");
       w.String(AttributeTypeDisplayName(c.type));
       w.EndObject();
     }},
    {"DisplayName", kAllTypes,
     [](JsonWriter& w, const Table&, const Column& c) {
       WriteLabel(w, c.display_name, c.metadata_id, "DisplayName", !c.is_custom);
     }},
    {"Description", kAllTypes,
     [](JsonWriter& w, const Table&, const Column& c) {
       WriteLabel(w, c.description, c.metadata_id, "Description", !c.is_custom);
     }},
    {"RequiredLevel", kAllTypes,
     [](JsonWriter& w, const Table&, const Column& c) {
       w.BeginObject();
       w.Key("Value");
       w.String(RequiredLevelName(c.required));
       w.Key("CanBeChanged");
       w.Bool(c.required != catalog::RequiredLevel::kSystemRequired);
       w.Key("ManagedPropertyLogicalName");
       w.String("canmodifyrequirementlevelsettings");
       w.EndObject();
     }},
    {"IsCustomAttribute", kAllTypes, [](JsonWriter& w, const Table&, const Column& c) { w.Bool(c.is_custom); }},
    // Columns the platform maintains (createdon, versionnumber, …) are never audited.
    {"IsAuditEnabled", kAllTypes,
     [](JsonWriter& w, const Table&, const Column& c) {
       WriteAuditSetting(w, c.audit_enabled, !c.is_primary_id && (c.valid_for_create || c.valid_for_update));
     }},
    {"IsPrimaryId", kAllTypes, [](JsonWriter& w, const Table&, const Column& c) { w.Bool(c.is_primary_id); }},
    {"IsSecured", kAllTypes, [](JsonWriter& w, const Table&, const Column& c) { w.Bool(c.is_secured); }},
    {"IsPrimaryName", kAllTypes, [](JsonWriter& w, const Table&, const Column& c) { w.Bool(c.is_primary_name); }},
    {"IsValidForCreate", kAllTypes, [](JsonWriter& w, const Table&, const Column& c) { w.Bool(c.valid_for_create); }},
    {"IsValidForUpdate", kAllTypes, [](JsonWriter& w, const Table&, const Column& c) { w.Bool(c.valid_for_update); }},
    {"IsValidForRead", kAllTypes, [](JsonWriter& w, const Table&, const Column& c) { w.Bool(c.valid_for_read); }},
    {"EntityLogicalName", kAllTypes, [](JsonWriter& w, const Table& t, const Column&) { w.String(t.logical_name); }},
    {"MaxLength", Bit(ColumnType::kString) | Bit(ColumnType::kMemo),
     [](JsonWriter& w, const Table&, const Column& c) { w.Int(c.max_length); }},
    {"Format",
     Bit(ColumnType::kString) | Bit(ColumnType::kMemo) | Bit(ColumnType::kInteger) | Bit(ColumnType::kDateTime),
     [](JsonWriter& w, const Table&, const Column& c) { w.String(FormatOf(c)); }},
    {"FormatName", Bit(ColumnType::kString) | Bit(ColumnType::kMemo),
     [](JsonWriter& w, const Table&, const Column& c) {
       w.BeginObject();
       w.Key("Value");
       w.String(FormatOf(c));
       w.EndObject();
     }},
    {"Precision", Bit(ColumnType::kDecimal) | Bit(ColumnType::kDouble) | Bit(ColumnType::kMoney),
     [](JsonWriter& w, const Table&, const Column& c) { w.Int(c.precision); }},
    {"MinValue", kNumberTypes, [](JsonWriter& w, const Table&, const Column& c) { WriteBound(w, c, /*max=*/false); }},
    {"MaxValue", kNumberTypes, [](JsonWriter& w, const Table&, const Column& c) { WriteBound(w, c, /*max=*/true); }},
    {"DefaultValue", Bit(ColumnType::kBoolean),
     [](JsonWriter& w, const Table&, const Column& c) { w.Bool(c.default_bool.value_or(false)); }},
    {"DateTimeBehavior", Bit(ColumnType::kDateTime),
     [](JsonWriter& w, const Table&, const Column& c) {
       w.BeginObject();
       w.Key("Value");
       w.String(BehaviorName(c.behavior));
       w.EndObject();
     }},
    {"Targets", kLookupTypes,
     [](JsonWriter& w, const Table&, const Column& c) {
       w.BeginArray();
       for (const std::string& target : c.targets) w.String(target);
       w.EndArray();
     }},
    {"MaxSizeInKB", kFileTypes, [](JsonWriter& w, const Table&, const Column& c) { w.Int(c.max_size_kb); }},
    // Images are kept at full size (no thumbnails are made): data/files.h.
    {"CanStoreFullImage", Bit(ColumnType::kImage), [](JsonWriter& w, const Table&, const Column&) { w.Bool(true); }},
    {"IsPrimaryImage", Bit(ColumnType::kImage), [](JsonWriter& w, const Table&, const Column&) { w.Bool(false); }},
    {"MaxHeight", Bit(ColumnType::kImage), [](JsonWriter& w, const Table&, const Column&) { w.Int(144); }},
    {"MaxWidth", Bit(ColumnType::kImage), [](JsonWriter& w, const Table&, const Column&) { w.Int(144); }},
};

constexpr TypeMask kOptionSetTypes = kEnumTypes | Bit(ColumnType::kBoolean);
constexpr TypeMask kGlobalOptionSetTypes =
    Bit(ColumnType::kChoice) | Bit(ColumnType::kMultiChoice) | Bit(ColumnType::kBoolean);

struct CastType {
  std::string_view name;
  TypeMask types;
};

constexpr CastType kCasts[] = {
    {"AttributeMetadata", kAllTypes},
    {"StringAttributeMetadata", Bit(ColumnType::kString)},
    {"MemoAttributeMetadata", Bit(ColumnType::kMemo)},
    {"IntegerAttributeMetadata", Bit(ColumnType::kInteger)},
    {"BigIntAttributeMetadata", Bit(ColumnType::kBigInt)},
    {"DecimalAttributeMetadata", Bit(ColumnType::kDecimal)},
    {"DoubleAttributeMetadata", Bit(ColumnType::kDouble)},
    {"MoneyAttributeMetadata", Bit(ColumnType::kMoney)},
    {"BooleanAttributeMetadata", Bit(ColumnType::kBoolean)},
    {"EnumAttributeMetadata", kEnumTypes},
    {"PicklistAttributeMetadata", Bit(ColumnType::kChoice)},
    {"MultiSelectPicklistAttributeMetadata", Bit(ColumnType::kMultiChoice)},
    {"StateAttributeMetadata", Bit(ColumnType::kState)},
    {"StatusAttributeMetadata", Bit(ColumnType::kStatus)},
    {"DateTimeAttributeMetadata", Bit(ColumnType::kDateTime)},
    {"UniqueIdentifierAttributeMetadata", Bit(ColumnType::kUniqueIdentifier)},
    {"LookupAttributeMetadata", kLookupTypes},
    {"FileAttributeMetadata", Bit(ColumnType::kFile)},
    {"ImageAttributeMetadata", Bit(ColumnType::kImage)},
};

// An AttributeQuery checked against the properties of its (cast) type.
struct ResolvedAttributeQuery {
  const AttributeQuery* query = nullptr;
  TypeMask types = kAllTypes;  // attributes of these types are listed
  std::string cast_segment;    // "/Microsoft.Dynamics.CRM.PicklistAttributeMetadata" or ""
};

Result<ResolvedAttributeQuery> ResolveAttributeQuery(const AttributeQuery& query) {
  ResolvedAttributeQuery resolved;
  resolved.query = &query;
  std::string type_name = std::string(kNamespace) + ".AttributeMetadata";
  const bool lenient = query.cast.empty();
  if (!lenient) {
    std::string_view cast = query.cast;
    if (cast.starts_with(kNamespace) && cast.size() > kNamespace.size() && cast[kNamespace.size()] == '.') {
      cast.remove_prefix(kNamespace.size() + 1);
    }
    const auto it =
        std::find_if(std::begin(kCasts), std::end(kCasts), [cast](const CastType& c) { return c.name == cast; });
    if (it == std::end(kCasts)) {
      return QueryError("The type '" + query.cast + "' is not a type of attribute metadata.");
    }
    resolved.types = it->types;
    type_name = std::string(kNamespace) + "." + std::string(it->name);
    resolved.cast_segment = "/" + type_name;
  }
  // Without a cast, any property of any attribute type is accepted; with one, only properties
  // that every attribute of the cast type has.
  auto known = [&](TypeMask types) { return lenient || (types & resolved.types) == resolved.types; };
  for (const std::string& name : query.select) {
    const auto it = std::find_if(std::begin(kAttributeProperties), std::end(kAttributeProperties),
                                 [&name](const AttributeProperty& p) { return p.name == name; });
    if (it == std::end(kAttributeProperties) || !known(it->types)) {
      return UnknownProperty(name, type_name);
    }
  }
  if (query.expand_option_set && !known(kOptionSetTypes)) {
    return UnknownProperty("OptionSet", type_name);
  }
  if (query.expand_global_option_set && !known(kGlobalOptionSetTypes)) {
    return UnknownProperty("GlobalOptionSet", type_name);
  }
  return resolved;
}

// One option of an OptionSetMetadata; `extra` writes the subtype members (state/status).
template <typename Extra>
void WriteOption(JsonWriter& w, int value, std::string_view label, const Guid& set_id, bool managed,
                 std::string_view odata_type, Extra&& extra) {
  w.BeginObject();
  if (!odata_type.empty()) {
    w.Key("@odata.type");
    w.String(odata_type);
  }
  w.Key("Value");
  w.Int(value);
  w.Key("Color");
  w.Null();
  w.Key("IsManaged");
  w.Bool(managed);
  w.Key("ExternalValue");
  w.Null();
  w.Key("ParentValues");
  w.BeginArray();
  w.EndArray();
  w.Key("MetadataId");
  w.Null();
  w.Key("HasChanged");
  w.Null();
  w.Key("Label");
  WriteLabel(w, label, set_id, "Option:" + std::to_string(value), managed);
  w.Key("Description");
  WriteLabel(w, {}, set_id, {}, managed);
  extra();
  w.EndObject();
}

// The statuscode column of a table, for a state option's DefaultStatus.
const Column* StatusColumn(const Table& t) {
  for (const auto& c : t.columns) {
    if (c->type == ColumnType::kStatus) return c.get();
  }
  return nullptr;
}

// The default status of a state: the first status option that belongs to it.
const catalog::Option* DefaultStatus(const Column* status, int state) {
  if (status == nullptr || status->options == nullptr) return nullptr;
  for (const catalog::Option& o : status->options->options) {
    if (o.state == state) return &o;
  }
  return nullptr;
}

std::string_view OptionSetTypeName(ColumnType t) {
  switch (t) {
    case ColumnType::kState:
      return "State";
    case ColumnType::kStatus:
      return "Status";
    case ColumnType::kBoolean:
      return "Boolean";
    default:
      return "Picklist";
  }
}

// OptionSetMetadata (BooleanOptionSetMetadata for two-option columns), or null when the column
// has no option set.
void WriteOptionSet(JsonWriter& w, const Table& t, const Column& c) {
  const catalog::OptionSet* set = c.options.get();
  if (set == nullptr && c.type != ColumnType::kBoolean) {
    w.Null();
    return;
  }
  const Guid set_id = set ? set->metadata_id : DerivedGuid(c.metadata_id, "OptionSet");
  const std::string name = set ? set->name : t.logical_name + "_" + c.logical_name;
  const bool is_global = set && set->is_global;
  const bool managed = !c.is_custom;
  w.BeginObject();
  w.Key("MetadataId");
  w.String(set_id.ToString());
  w.Key("HasChanged");
  w.Null();
  w.Key("IsCustomOptionSet");
  w.Bool(c.is_custom);
  w.Key("IsGlobal");
  w.Bool(is_global);
  w.Key("IsManaged");
  w.Bool(managed);
  w.Key("Name");
  w.String(name);
  w.Key("OptionSetType");
  w.String(OptionSetTypeName(c.type));
  w.Key("DisplayName");
  WriteLabel(w, {}, set_id, {}, managed);
  w.Key("Description");
  WriteLabel(w, {}, set_id, {}, managed);
  auto no_extra = [] {};
  if (c.type == ColumnType::kBoolean) {
    for (int value : {1, 0}) {
      std::string_view label = value ? "Yes" : "No";
      if (set) {
        for (const catalog::Option& o : set->options) {
          if (o.value == value) label = o.label;
        }
      }
      w.Key(value ? "TrueOption" : "FalseOption");
      WriteOption(w, value, label, set_id, managed, {}, no_extra);
    }
    w.EndObject();
    return;
  }
  const Column* status = c.type == ColumnType::kState ? StatusColumn(t) : nullptr;
  w.Key("Options");
  w.BeginArray();
  for (const catalog::Option& o : set->options) {
    switch (c.type) {
      case ColumnType::kState:
        WriteOption(w, o.value, o.label, set_id, managed, "#Microsoft.Dynamics.CRM.StateOptionMetadata", [&] {
          w.Key("InvariantName");
          w.String(o.label);
          w.Key("DefaultStatus");
          if (const catalog::Option* s = DefaultStatus(status, o.value)) {
            w.Int(s->value);
          } else {
            w.Null();
          }
        });
        break;
      case ColumnType::kStatus:
        WriteOption(w, o.value, o.label, set_id, managed, "#Microsoft.Dynamics.CRM.StatusOptionMetadata", [&] {
          w.Key("State");
          w.Int(o.state);
          w.Key("TransitionData");
          w.Null();
        });
        break;
      default:
        WriteOption(w, o.value, o.label, set_id, managed, {}, no_extra);
    }
  }
  w.EndArray();
  w.EndObject();
}

// The members of one AttributeMetadata object (the caller opens and closes it).
void WriteAttributeMembers(JsonWriter& w, const Table& t, const Column& c, const ResolvedAttributeQuery& q) {
  const TypeMask bit = Bit(c.type);
  w.Key("@odata.type");
  w.String("#" + std::string(kNamespace) + "." + std::string(MetadataTypeName(c.type)));
  for (const AttributeProperty& p : kAttributeProperties) {
    if ((p.types & bit) == 0) continue;
    if (p.name != "MetadataId" && !Selected(q.query->select, p.name)) continue;
    w.Key(p.name);
    p.write(w, t, c);
  }
  if (q.query->expand_option_set && (kOptionSetTypes & bit) != 0) {
    w.Key("OptionSet");
    WriteOptionSet(w, t, c);
  }
  if (q.query->expand_global_option_set && (kGlobalOptionSetTypes & bit) != 0) {
    w.Key("GlobalOptionSet");
    if (c.options && c.options->is_global) {
      WriteOptionSet(w, t, c);
    } else {
      w.Null();
    }
  }
}

std::string AttributesContext(const Table& t, std::string_view root) {
  return MetadataUrl(root) + "#EntityDefinitions(" + t.metadata_id.ToString() + ")/Attributes";
}

}  // namespace

std::string_view EdmType(const Column& c) {
  switch (c.type) {
    case ColumnType::kString:
    case ColumnType::kMemo:
    case ColumnType::kMultiChoice:
      return "Edm.String";
    case ColumnType::kInteger:
    case ColumnType::kChoice:
    case ColumnType::kState:
    case ColumnType::kStatus:
      return "Edm.Int32";
    case ColumnType::kBigInt:
      return "Edm.Int64";
    case ColumnType::kDecimal:
    case ColumnType::kMoney:
      return "Edm.Decimal";
    case ColumnType::kDouble:
      return "Edm.Double";
    case ColumnType::kBoolean:
      return "Edm.Boolean";
    case ColumnType::kDateTime:
      return c.behavior == catalog::DateBehavior::kDateOnly ? "Edm.Date" : "Edm.DateTimeOffset";
    case ColumnType::kUniqueIdentifier:
    case ColumnType::kLookup:
    case ColumnType::kCustomer:
    case ColumnType::kOwner:
    case ColumnType::kFile:  // the file id; the bytes are read from …/{column}/$value
      return "Edm.Guid";
    case ColumnType::kImage:
      return "Edm.Binary";
  }
  return "Edm.String";
}

std::string WriteServiceDocument(const catalog::Catalog& catalog, std::string_view root) {
  const std::vector<const Table*> tables = TablesOf(catalog);
  return WriteServiceDocument(TableList(tables), root);
}

std::string WriteServiceDocument(TableList tables, std::string_view root) {
  std::string out;
  JsonWriter w(out);
  w.BeginObject();
  w.Key("@odata.context");
  w.String(MetadataUrl(root));
  w.Key("value");
  w.BeginArray();
  for (const Table* t : tables) {
    w.BeginObject();
    w.Key("name");
    w.String(t->entity_set_name);
    w.Key("kind");
    w.String("EntitySet");
    w.Key("url");
    w.String(t->entity_set_name);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return out;
}

std::string WriteCsdlWith(TableList tables, bool annotations, const std::vector<OperationDef>* operations);

std::string WriteCsdl(const catalog::Catalog& catalog, bool annotations) {
  const std::vector<const Table*> tables = TablesOf(catalog);
  return WriteCsdl(TableList(tables), annotations);
}

std::string WriteCsdl(const catalog::Catalog& catalog, bool annotations, const std::vector<OperationDef>& operations) {
  const std::vector<const Table*> tables = TablesOf(catalog);
  return WriteCsdlWith(TableList(tables), annotations, &operations);
}

std::string WriteCsdl(TableList tables, bool annotations) { return WriteCsdlWith(tables, annotations, nullptr); }

namespace {

// The types of RetrieveRecordChangeHistory (PagingInfo in, AuditDetailCollection out).
void WriteAuditTypes(XmlWriter& x) {
  auto prop = [&](std::string_view name, std::string_view type, bool nullable = true) {
    if (nullable)
      x.Empty("Property", {{"Name", name}, {"Type", type}});
    else
      x.Empty("Property", {{"Name", name}, {"Type", type}, {"Nullable", "false"}});
  };
  auto nav = [&](std::string_view name, std::string_view type) {
    x.Empty("NavigationProperty", {{"Name", name}, {"Type", type}});
  };
  x.Open("EnumType", {{"Name", "AccessRights"}, {"IsFlags", "true"}});
  for (const auto& [m, v] : {std::pair<std::string_view, std::string_view>{"None", "0"},
                             {"ReadAccess", "1"},
                             {"WriteAccess", "2"},
                             {"AppendAccess", "4"},
                             {"AppendToAccess", "16"},
                             {"CreateAccess", "32"},
                             {"DeleteAccess", "65536"},
                             {"ShareAccess", "262144"},
                             {"AssignAccess", "524288"}})
    x.Empty("Member", {{"Name", m}, {"Value", v}});
  x.Close();
  x.Open("ComplexType", {{"Name", "PagingInfo"}});
  prop("Count", "Edm.Int32", false);
  prop("PageNumber", "Edm.Int32", false);
  prop("PagingCookie", "Edm.String");
  prop("ReturnTotalRecordCount", "Edm.Boolean", false);
  x.Close();
  x.Open("ComplexType", {{"Name", "Collection_Int32_String"}});
  prop("Count", "Edm.Int32", false);
  prop("IsReadOnly", "Edm.Boolean", false);
  prop("Keys", "Collection(Edm.Int32)");
  prop("Values", "Collection(Edm.String)");
  x.Close();
  x.Open("ComplexType", {{"Name", "AuditDetail"}, {"Abstract", "true"}});
  nav("AuditRecord", "mscrm.crmbaseentity");
  x.Close();
  x.Open("ComplexType", {{"Name", "AttributeAuditDetail"}, {"BaseType", "mscrm.AuditDetail"}});
  prop("InvalidNewValueAttributes", "Collection(Edm.String)");
  prop("LocLabelLanguageCode", "Edm.Int32", false);
  prop("DeletedAttributes", "mscrm.Collection_Int32_String");
  nav("OldValue", "mscrm.crmbaseentity");
  nav("NewValue", "mscrm.crmbaseentity");
  x.Close();
  x.Open("ComplexType", {{"Name", "RelationshipAuditDetail"}, {"BaseType", "mscrm.AuditDetail"}});
  prop("RelationshipName", "Edm.String");
  nav("TargetRecords", "Collection(mscrm.crmbaseentity)");
  x.Close();
  x.Open("ComplexType", {{"Name", "ShareAuditDetail"}, {"BaseType", "mscrm.AuditDetail"}});
  prop("OldPrivileges", "mscrm.AccessRights", false);
  prop("NewPrivileges", "mscrm.AccessRights", false);
  nav("Principal", "mscrm.crmbaseentity");
  x.Close();
  x.Open("ComplexType", {{"Name", "AuditDetailCollection"}});
  prop("AuditDetails", "Collection(mscrm.AuditDetail)");
  prop("MoreRecords", "Edm.Boolean", false);
  prop("PagingCookie", "Edm.String");
  prop("TotalRecordCount", "Edm.Int32", false);
  x.Close();
}

// The shared types operation signatures refer to.
void WriteOperationTypes(XmlWriter& x) {
  x.Open("EnumType", {{"Name", "TargetFieldType"}});
  int i = 0;
  for (std::string_view m : {"All", "ValidForCreate", "ValidForUpdate", "ValidForRead"}) {
    std::string v = std::to_string(i++);
    x.Empty("Member", {{"Name", m}, {"Value", v}});
  }
  x.Close();
  x.Open("ComplexType", {{"Name", "EntityRecordCountCollection"}});
  x.Empty("Property", {{"Name", "Count"}, {"Type", "Edm.Int32"}, {"Nullable", "false"}});
  x.Empty("Property", {{"Name", "IsReadOnly"}, {"Type", "Edm.Boolean"}, {"Nullable", "false"}});
  x.Empty("Property", {{"Name", "Keys"}, {"Type", "Collection(Edm.String)"}});
  x.Empty("Property", {{"Name", "Values"}, {"Type", "Collection(Edm.Int64)"}});
  x.Close();
  WriteAuditTypes(x);
}

void WriteOperations(XmlWriter& x, const std::vector<OperationDef>& ops) {
  WriteOperationTypes(x);
  for (const auto& op : ops) {
    if (op.response.empty()) continue;
    x.Open("ComplexType", {{"Name", op.name + "Response"}});
    for (const auto& p : op.response) x.Empty("Property", {{"Name", p.name}, {"Type", OperationEdmType(p)}});
    x.Close();
  }
  for (const auto& op : ops) {
    bool bound = op.binding != OperationBinding::kUnbound;
    x.Open(op.is_function ? "Function" : "Action", {{"Name", op.name}, {"IsBound", bound ? "true" : "false"}});
    if (bound) {
      std::string type = "mscrm." + (op.bound_table.empty() ? std::string("crmbaseentity") : op.bound_table);
      if (op.binding == OperationBinding::kCollection) type = "Collection(" + type + ")";
      x.Empty("Parameter", {{"Name", op.binding == OperationBinding::kCollection ? "entityset" : "entity"},
                            {"Type", type},
                            {"Nullable", "false"}});
    }
    for (const auto& p : op.parameters)
      x.Empty("Parameter",
              {{"Name", p.name}, {"Type", OperationEdmType(p)}, {"Nullable", p.optional ? "true" : "false"}});
    if (!op.response.empty())
      x.Empty("ReturnType", {{"Type", "mscrm." + op.name + "Response"}, {"Nullable", "false"}});
    else if (op.is_function)
      x.Empty("ReturnType", {{"Type", "mscrm.crmbaseentity"}});
    x.Close();
  }
}

void WriteOperationImports(XmlWriter& x, const std::vector<OperationDef>& ops) {
  for (const auto& op : ops) {
    if (op.binding != OperationBinding::kUnbound) continue;
    std::string target = "Microsoft.Dynamics.CRM." + op.name;
    if (op.is_function)
      x.Empty("FunctionImport", {{"Name", op.name}, {"Function", target}});
    else
      x.Empty("ActionImport", {{"Name", op.name}, {"Action", target}});
  }
}

}  // namespace

std::string WriteCsdlWith(TableList tables, bool annotations, const std::vector<OperationDef>* operations) {
  std::string out = R"(<?xml version="1.0" encoding="utf-8"?>)";
  XmlWriter x(out);
  x.Open("edmx:Edmx", {{"Version", "4.0"}, {"xmlns:edmx", "http://docs.oasis-open.org/odata/ns/edmx"}});
  x.Open("edmx:Reference",
         {{"Uri", "https://oasis-tcs.github.io/odata-vocabularies/vocabularies/Org.OData.Core.V1.xml"}});
  x.Empty("edmx:Include", {{"Namespace", "Org.OData.Core.V1"}, {"Alias", "Core"}});
  x.Close();
  x.Open("edmx:Reference", {{"Uri",
                             "https://oasis-tcs.github.io/odata-vocabularies/vocabularies/"
                             "Org.OData.Capabilities.V1.xml"}});
  x.Empty("edmx:Include", {{"Namespace", "Org.OData.Capabilities.V1"}, {"Alias", "Capabilities"}});
  x.Close();
  x.Open("edmx:DataServices");
  x.Open("Schema",
         {{"Namespace", kNamespace}, {"Alias", "mscrm"}, {"xmlns", "http://docs.oasis-open.org/odata/ns/edm"}});

  x.Empty("EntityType", {{"Name", "crmbaseentity"}, {"Abstract", "true"}});
  x.Open("EntityType", {{"Name", "principal"}, {"BaseType", "mscrm.crmbaseentity"}, {"Abstract", "true"}});
  x.Open("Key");
  x.Empty("PropertyRef", {{"Name", "ownerid"}});
  x.Close();
  x.Empty("Property", {{"Name", "ownerid"}, {"Type", "Edm.Guid"}});
  x.Close();
  for (const Table* t : tables) WriteEntityType(x, *t, annotations);
  if (operations)
    WriteOperations(x, *operations);
  else
    WriteFunctions(x);

  const std::unordered_set<const Table*> listed(tables.begin(), tables.end());
  x.Open("EntityContainer", {{"Name", "System"}});
  for (const Table* t : tables) WriteEntitySet(x, *t, listed, annotations);
  if (operations) {
    WriteOperationImports(x, *operations);
  } else {
    x.Empty("FunctionImport", {{"Name", "WhoAmI"}, {"Function", "Microsoft.Dynamics.CRM.WhoAmI"}});
    x.Empty("FunctionImport", {{"Name", "RetrieveVersion"}, {"Function", "Microsoft.Dynamics.CRM.RetrieveVersion"}});
  }
  x.Close();  // EntityContainer

  x.Close();  // Schema
  x.Close();  // edmx:DataServices
  x.Close();  // edmx:Edmx
  return out;
}

Result<std::string> WriteEntityDefinitions(const catalog::Catalog& catalog, std::string_view root,
                                           const std::vector<std::string>& select) {
  const std::vector<const Table*> tables = TablesOf(catalog);
  return WriteEntityDefinitions(TableList(tables), root, select);
}

Result<std::string> WriteEntityDefinitions(TableList tables, std::string_view root,
                                           const std::vector<std::string>& select) {
  RETURN_IF_ERROR(ValidateEntitySelect(select));
  std::string out;
  JsonWriter w(out);
  w.BeginObject();
  w.Key("@odata.context");
  w.String(MetadataUrl(root) + "#EntityDefinitions" + SelectSuffix(select));
  w.Key("value");
  w.BeginArray();
  for (const Table* t : tables) {
    w.BeginObject();
    WriteEntityMembers(w, *t, select);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return out;
}

Result<std::string> WriteEntityDefinition(const Table& table, std::string_view root,
                                          const std::vector<std::string>& select) {
  RETURN_IF_ERROR(ValidateEntitySelect(select));
  std::string out;
  JsonWriter w(out);
  w.BeginObject();
  w.Key("@odata.context");
  w.String(MetadataUrl(root) + "#EntityDefinitions" + SelectSuffix(select) + "/$entity");
  WriteEntityMembers(w, table, select);
  w.EndObject();
  return out;
}

Result<std::string> WriteAttributes(const Table& table, std::string_view root, const std::vector<std::string>& select) {
  AttributeQuery query;
  query.select = select;
  return WriteAttributesAs(table, root, query);
}

Result<std::string> WriteAttributesAs(const Table& table, std::string_view root, const AttributeQuery& query) {
  ASSIGN_OR_RETURN(const ResolvedAttributeQuery resolved, ResolveAttributeQuery(query));
  std::string out;
  JsonWriter w(out);
  w.BeginObject();
  w.Key("@odata.context");
  w.String(AttributesContext(table, root) + resolved.cast_segment + SelectSuffix(query.select));
  w.Key("value");
  w.BeginArray();
  for (const auto& c : table.columns) {
    if ((Bit(c->type) & resolved.types) == 0) continue;
    w.BeginObject();
    WriteAttributeMembers(w, table, *c, resolved);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return out;
}

Result<std::string> WriteAttribute(const Table& table, const Column& column, std::string_view root,
                                   const std::vector<std::string>& select) {
  AttributeQuery query;
  query.select = select;
  return WriteAttributeAs(table, column, root, query);
}

Result<std::string> WriteAttributeAs(const Table& table, const Column& column, std::string_view root,
                                     const AttributeQuery& query) {
  ASSIGN_OR_RETURN(const ResolvedAttributeQuery resolved, ResolveAttributeQuery(query));
  if ((Bit(column.type) & resolved.types) == 0) {
    return NotFound("The attribute '" + column.logical_name + "' is not of type '" + query.cast + "'.");
  }
  std::string out;
  JsonWriter w(out);
  w.BeginObject();
  w.Key("@odata.context");
  w.String(AttributesContext(table, root) + resolved.cast_segment + SelectSuffix(query.select) + "/$entity");
  WriteAttributeMembers(w, table, column, resolved);
  w.EndObject();
  return out;
}

std::string WriteKeys(const Table& table, std::string_view root) {
  std::string out;
  JsonWriter w(out);
  w.BeginObject();
  w.Key("@odata.context");
  w.String(MetadataUrl(root) + "#EntityDefinitions(" + table.metadata_id.ToString() + ")/Keys");
  w.Key("value");
  w.BeginArray();
  for (const catalog::Key& key : table.keys) {
    w.BeginObject();
    w.Key("MetadataId");
    w.String(key.metadata_id.ToString());
    w.Key("LogicalName");
    w.String(key.logical_name);
    w.Key("SchemaName");
    w.String(key.schema_name);
    w.Key("KeyAttributes");
    w.BeginArray();
    for (const std::string& column : key.columns) w.String(column);
    w.EndArray();
    w.Key("EntityLogicalName");
    w.String(table.logical_name);
    w.Key("EntityKeyIndexStatus");
    w.String("Active");
    w.Key("IsCustomizable");
    WriteManagedProperty(w, true, true, "iscustomizable");
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return out;
}

}  // namespace tributary::odata
