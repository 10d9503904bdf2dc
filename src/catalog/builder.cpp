// CatalogBuilder: validates schema documents and builds immutable catalog snapshots.

#include <algorithm>
#include <map>
#include <set>

#include "tributary/base/strings.h"
#include "tributary/catalog/schema.h"

namespace tributary::catalog {
namespace {

bool IsIdentifier(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  if (!(s[0] >= 'a' && s[0] <= 'z')) return false;
  for (char c : s)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
  return true;
}

// Display name from a logical name: "new_project_phase" → "Project Phase".
std::string DisplayFromName(std::string_view name, bool strip_prefix) {
  if (strip_prefix) {
    auto pos = name.find('_');
    if (pos != std::string_view::npos) name = name.substr(pos + 1);
  }
  std::string out;
  bool up = true;
  for (char c : name) {
    if (c == '_') {
      out.push_back(' ');
      up = true;
    } else {
      out.push_back(up && c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c);
      up = false;
    }
  }
  return out;
}

std::optional<ColumnType> ParseType(std::string_view t) {
  static const std::pair<std::string_view, ColumnType> kTypes[] = {
      {"string", ColumnType::kString},     {"memo", ColumnType::kMemo},
      {"integer", ColumnType::kInteger},   {"bigint", ColumnType::kBigInt},
      {"decimal", ColumnType::kDecimal},   {"double", ColumnType::kDouble},
      {"money", ColumnType::kMoney},       {"boolean", ColumnType::kBoolean},
      {"choice", ColumnType::kChoice},     {"multichoice", ColumnType::kMultiChoice},
      {"datetime", ColumnType::kDateTime}, {"uniqueidentifier", ColumnType::kUniqueIdentifier},
      {"lookup", ColumnType::kLookup},     {"customer", ColumnType::kCustomer},
      {"file", ColumnType::kFile},         {"image", ColumnType::kImage},
  };
  for (auto& [n, ty] : kTypes)
    if (n == t) return ty;
  return std::nullopt;
}

struct Errors {
  std::vector<std::string> list;
  // The first coded problem (a drop blocked by dependencies or of a system component) decides the
  // status code and platform error number of the whole list.
  Code code = Code::kInvalidArgument;
  uint32_t error_code = 0;
  void Add(const std::string& path, const std::string& msg) { list.push_back(path + ": " + msg); }
  void AddCoded(const std::string& path, const std::string& msg, Code c, uint32_t e) {
    if (error_code == 0) {
      code = c;
      error_code = e;
    }
    Add(path, msg);
  }
  Status ToStatus() const {
    std::string out;
    for (const auto& l : list) {
      if (!out.empty()) out += "\n";
      out += l;
    }
    return Status(code, out, error_code ? error_code : err::kInvalidArgument);
  }
};

// The relationship names a lookup or customer column carries: target table → relationship name.
std::vector<std::pair<std::string, std::string>> LookupRelationships(const std::string& table, const ColumnDef& cd) {
  if (cd.type == "lookup")
    return {{cd.target, cd.relationship.empty() ? cd.target + "_" + table + "_" + cd.name : cd.relationship}};
  if (cd.type == "customer") {
    std::vector<std::pair<std::string, std::string>> out;
    for (const char* target : {"account", "contact"}) {
      auto it = cd.relationships.find(target);
      out.emplace_back(target,
                       it != cd.relationships.end() ? it->second : table + "_" + cd.name + "_" + std::string(target));
    }
    return out;
  }
  return {};
}

std::shared_ptr<OptionSet> MakeOptionSet(const std::string& name, const std::vector<OptionDef>& defs, bool global) {
  auto os = std::make_shared<OptionSet>();
  os->name = name;
  os->metadata_id = NameGuid("optionset:" + name);
  os->is_global = global;
  for (const auto& d : defs) os->options.push_back(Option{d.value, d.label, -1});
  return os;
}

std::shared_ptr<OptionSet> MakeGlobalChoice(const ChoiceDef& c) {
  auto os = MakeOptionSet(c.name, c.options, true);
  os->display_name = c.displayname;
  return os;
}

// The primary name column a custom table gets when its document names none: "{prefix}_name".
ColumnDef DefaultPrimaryName(const TableDef& d) {
  auto pos = d.name.find('_');
  ColumnDef pn;
  pn.name = (pos == std::string::npos ? d.name : d.name.substr(0, pos)) + "_name";
  pn.type = "string";
  pn.maxlength = 100;
  pn.path = d.path + ".primaryname";
  return pn;
}

std::vector<StateDef> DefaultStates() {
  return {StateDef{0, "Active", {{1, "Active"}}}, StateDef{1, "Inactive", {{2, "Inactive"}}}};
}

}  // namespace

class CatalogAssembler {
 public:
  CatalogAssembler(const std::vector<TableDef>& tables, const std::vector<ChoiceDef>& choices,
                   const std::vector<RelationshipDef>& rels)
      : defs_(tables), choice_defs_(choices), rel_defs_(rels) {}

  Result<CatalogPtr> Run(int64_t version, Catalog* cat) {
    cat_ = cat;
    cat_->version_ = version;
    for (const auto& c : choice_defs_) cat_->choices_[c.name] = MakeGlobalChoice(c);
    for (const auto& d : defs_) {
      auto t = std::make_unique<Table>();
      t->logical_name = d.name;
      t->schema_name = d.schemaname.empty() ? d.name : d.schemaname;
      t->entity_set_name = d.entitysetname.empty() ? DefaultEntitySetName(d.name) : d.entitysetname;
      bool custom = d.objecttypecode == 0;
      t->is_custom = custom;
      t->display_name = d.displayname.empty() ? DisplayFromName(d.name, custom) : d.displayname;
      t->display_collection_name = d.displaycollectionname.empty() ? t->display_name + "s" : d.displaycollectionname;
      t->description = d.description;
      t->metadata_id = NameGuid("table:" + d.name);
      if (custom) {
        auto otc = custom_otc_.find(d.name);
        t->object_type_code = otc != custom_otc_.end() ? otc->second : 0;
      } else {
        t->object_type_code = d.objecttypecode;
      }
      t->ownership = d.ownership == "organization" ? Ownership::kOrganization
                     : d.ownership == "none"       ? Ownership::kNone
                                                   : Ownership::kUser;
      t->change_tracking = d.changetracking;
      t->audit_enabled = d.audit;
      t->primary_id = d.name + "id";
      t->sql_table = d.name;
      cat_->by_name_[t->logical_name] = t.get();
      cat_->tables_.push_back(std::move(t));
    }
    // Intersect tables of N:N relationships.
    for (const auto& r : rel_defs_) {
      auto t = std::make_unique<Table>();
      std::string name = r.intersect.empty() ? r.name : r.intersect;
      t->logical_name = name;
      t->schema_name = name;
      // Dataverse names intersect sets "<name>collection" when the name already ends in s.
      t->entity_set_name = name.ends_with("s") ? name + "collection" : DefaultEntitySetName(name);
      t->display_name = name;
      t->display_collection_name = name;
      t->metadata_id = NameGuid("table:" + name);
      t->ownership = Ownership::kNone;
      t->is_intersect = true;
      t->is_custom =
          r.name.find('_') != std::string::npos && cat_->FindTable(r.entity1) && cat_->FindTable(r.entity1)->is_custom;
      t->primary_id = name + "id";
      t->sql_table = name;
      cat_->by_name_[name] = t.get();
      cat_->tables_.push_back(std::move(t));
    }
    for (size_t i = 0; i < defs_.size(); ++i) BuildColumns(defs_[i], *cat_->tables_[i]);
    for (const auto& r : rel_defs_) BuildManyToMany(r);
    for (size_t i = 0; i < defs_.size(); ++i) BuildKeys(defs_[i], *cat_->tables_[i]);
    for (auto& t : cat_->tables_) {
      for (const auto& c : t->columns) t->column_index[c->logical_name] = c.get();
      std::string set = ToLower(t->entity_set_name);
      if (cat_->by_set_.count(set)) errors_.Add("tables", "entity set name '" + t->entity_set_name + "' is used twice");
      cat_->by_set_[set] = t.get();
    }
    BuildNavs();
    if (!errors_.list.empty()) return errors_.ToStatus();
    return CatalogPtr();
  }

 private:
  Column& Add(Table& t, std::string name, ColumnType type) {
    auto c = std::make_unique<Column>();
    c->logical_name = name;
    c->schema_name = name;
    c->display_name = DisplayFromName(name, false);
    c->metadata_id = NameGuid("column:" + t.logical_name + "." + name);
    c->type = type;
    c->sql_name = name;
    Column& ref = *c;
    t.column_index[name] = c.get();
    t.columns.push_back(std::move(c));
    return ref;
  }

  Column& System(Table& t, std::string name, ColumnType type) {
    Column& c = Add(t, std::move(name), type);
    c.valid_for_create = false;
    c.valid_for_update = false;
    c.audit_enabled = false;
    return c;
  }

  void Lookup1N(Table& child, Column& col, const std::string& target, std::string rel_name, std::string nav,
                CascadeDelete on_delete, bool custom) {
    auto r = std::make_unique<Relationship>();
    r->schema_name = std::move(rel_name);
    r->metadata_id = NameGuid("relationship:" + r->schema_name);
    r->type = RelationshipType::kOneToMany;
    r->is_custom = custom;
    r->referenced_entity = target;
    r->referenced_attribute = target + "id";
    r->referencing_entity = child.logical_name;
    r->referencing_attribute = col.logical_name;
    r->referencing_nav = std::move(nav);
    r->referenced_nav = r->schema_name;
    r->on_delete = on_delete;
    pending_.push_back(r.get());
    cat_->relationships_.push_back(std::move(r));
  }

  void SystemLookup(Table& t, const std::string& name, const std::string& target, const std::string& rel) {
    Column& c = System(t, name, ColumnType::kLookup);
    c.targets = {target};
    if (cat_->FindTable(target)) Lookup1N(t, c, target, rel, name, CascadeDelete::kRemoveLink, false);
  }

  void BuildColumns(const TableDef& d, Table& t) {
    bool custom = t.is_custom;
    std::string base = d.basename.empty() ? d.name : d.basename;
    Column& id = Add(t, t.primary_id, ColumnType::kUniqueIdentifier);
    id.is_primary_id = true;
    id.valid_for_update = false;
    id.required = RequiredLevel::kSystemRequired;
    if (d.primaryname) {
      Column& pn = UserColumn(d, t, *d.primaryname);
      pn.is_primary_name = true;
      pn.indexed = true;
      t.primary_name = pn.logical_name;
    } else if (custom) {
      Column& c = UserColumn(d, t, DefaultPrimaryName(d));
      c.is_primary_name = true;
      c.indexed = true;
      t.primary_name = c.logical_name;
    }
    bool has_money = false;
    std::vector<std::pair<const Column*, const ColumnDef*>> files;
    for (const auto& cd : d.columns) {
      if (t.FindColumn(cd.name)) continue;
      Column& c = UserColumn(d, t, cd);
      has_money |= c.type == ColumnType::kMoney;
      if (c.IsFileOrImage()) files.emplace_back(&c, &cd);
    }
    for (const auto& [c, cd] : files) FileCompanions(t, *c, *cd);
    // System columns.
    System(t, "createdon", ColumnType::kDateTime);
    System(t, "modifiedon", ColumnType::kDateTime);
    SystemLookup(t, "createdby", "systemuser", "lk_" + base + "_createdby");
    SystemLookup(t, "modifiedby", "systemuser", "lk_" + base + "_modifiedby");
    SystemLookup(t, "createdonbehalfby", "systemuser", "lk_" + base + "_createdonbehalfby");
    SystemLookup(t, "modifiedonbehalfby", "systemuser", "lk_" + base + "_modifiedonbehalfby");
    if (t.ownership == Ownership::kUser) {
      Column& owner = Add(t, "ownerid", ColumnType::kOwner);
      owner.targets = {"systemuser", "team"};
      owner.required = RequiredLevel::kSystemRequired;
      owner.indexed = true;
      SystemLookup(t, "owninguser", "systemuser", "user_" + t.entity_set_name);
      SystemLookup(t, "owningteam", "team", "team_" + t.entity_set_name);
      SystemLookup(t, "owningbusinessunit", "businessunit", "business_unit_" + t.entity_set_name);
      const_cast<Column*>(t.FindColumn("owningbusinessunit"))->indexed = true;
    } else if (t.ownership == Ownership::kOrganization) {
      SystemLookup(t, "organizationid", "organization", "organization_" + t.entity_set_name);
    }
    auto states = d.states.empty() ? DefaultStates() : d.states;
    auto state_os = std::make_shared<OptionSet>();
    state_os->name = d.name + "_statecode";
    state_os->metadata_id = NameGuid("optionset:" + state_os->name);
    auto status_os = std::make_shared<OptionSet>();
    status_os->name = d.name + "_statuscode";
    status_os->metadata_id = NameGuid("optionset:" + status_os->name);
    for (const auto& s : states) {
      state_os->options.push_back(Option{s.value, s.label, -1});
      for (const auto& st : s.statuses) status_os->options.push_back(Option{st.value, st.label, s.value});
    }
    Column& sc = Add(t, "statecode", ColumnType::kState);
    sc.options = state_os;
    sc.valid_for_create = false;
    Column& stc = Add(t, "statuscode", ColumnType::kStatus);
    stc.options = status_os;
    System(t, "versionnumber", ColumnType::kBigInt);
    Column& oco = Add(t, "overriddencreatedon", ColumnType::kDateTime);
    oco.valid_for_update = false;
    Column& isn = Add(t, "importsequencenumber", ColumnType::kInteger);
    isn.valid_for_update = false;
    Add(t, "timezoneruleversionnumber", ColumnType::kInteger);
    Add(t, "utcconversiontimezonecode", ColumnType::kInteger);
    if (has_money && !t.FindColumn("transactioncurrencyid")) {
      Column& cur = Add(t, "transactioncurrencyid", ColumnType::kLookup);
      cur.targets = {"transactioncurrency"};
      Lookup1N(t, cur, "transactioncurrency", "transactioncurrency_" + d.name, "transactioncurrencyid",
               CascadeDelete::kRestrict, false);
      Column& rate = System(t, "exchangerate", ColumnType::kDecimal);
      rate.precision = 10;
      std::vector<std::string> money;
      for (const auto& c : t.columns)
        if (c->type == ColumnType::kMoney) money.push_back(c->logical_name);
      for (const auto& m : money) {
        Column& b = System(t, m + "_base", ColumnType::kMoney);
        b.precision = 4;
      }
    }
  }

  // The read-only columns Dataverse exposes beside a file or image column: "<col>_name" (the file
  // name) for files; "<col>id" (the image's file id), "<col>_timestamp" and "<col>_url" for images.
  // The file store (data/files.h) keeps them up to date.
  void FileCompanions(Table& t, const Column& col, const ColumnDef& cd) {
    struct Companion {
      std::string name;
      ColumnType type;
      int max_length;
    };
    std::vector<Companion> companions;
    if (col.type == ColumnType::kFile) {
      companions.push_back({col.logical_name + "_name", ColumnType::kString, 255});
    } else {
      companions.push_back({col.logical_name + "id", ColumnType::kUniqueIdentifier, 0});
      companions.push_back({col.logical_name + "_timestamp", ColumnType::kBigInt, 0});
      companions.push_back({col.logical_name + "_url", ColumnType::kString, 400});
    }
    for (const auto& comp : companions) {
      if (t.FindColumn(comp.name)) {
        errors_.Add(cd.path + ".name", "the column '" + comp.name +
                                           "' is taken: " + (col.type == ColumnType::kFile ? "file" : "image") +
                                           " column '" + col.logical_name + "' needs it for its companion column");
        continue;
      }
      Column& c = System(t, comp.name, comp.type);
      c.max_length = comp.max_length;
      c.is_custom = col.is_custom;
      c.display_name = DisplayFromName(comp.name, col.is_custom || t.is_custom);
    }
  }

  Column& UserColumn(const TableDef& d, Table& t, const ColumnDef& cd) {
    auto type = ParseType(cd.type);
    if (!type) {
      errors_.Add(cd.path + ".type", "unknown column type '" + cd.type + "'");
      type = ColumnType::kString;
    }
    if (!IsIdentifier(cd.name)) errors_.Add(cd.path + ".name", "'" + cd.name + "' is not a valid logical name");
    Column& c = Add(t, cd.name, *type);
    c.is_custom = !cd.name.empty() && custom_names_.count(t.logical_name + "." + cd.name);
    if (!cd.schemaname.empty()) c.schema_name = cd.schemaname;
    if (!cd.displayname.empty())
      c.display_name = cd.displayname;
    else
      c.display_name = DisplayFromName(cd.name, c.is_custom || t.is_custom);
    c.description = cd.description;
    c.format = cd.format;
    c.indexed = cd.indexed || c.IsLookup() || cd.type == "lookup" || cd.type == "customer";
    if (cd.readonly) {
      c.valid_for_create = false;
      c.valid_for_update = false;
    }
    c.audit_enabled = cd.audit.value_or(!cd.readonly);
    c.is_secured = cd.secured;
    if (cd.required == "applicationrequired")
      c.required = RequiredLevel::kApplicationRequired;
    else if (cd.required == "recommended")
      c.required = RequiredLevel::kRecommended;
    else if (cd.required == "systemrequired")
      c.required = RequiredLevel::kSystemRequired;
    else if (!cd.required.empty() && cd.required != "none")
      errors_.Add(cd.path + ".required", "must be none, recommended or applicationrequired");
    c.min_value = cd.min;
    c.max_value = cd.max;
    if (cd.min && cd.max && *cd.min > *cd.max) errors_.Add(cd.path + ".min", "must not be greater than max");
    if (cd.max_size_kb && !c.IsFileOrImage())
      errors_.Add(cd.path + ".max_size_kb", "applies to file and image columns only");
    switch (*type) {
      case ColumnType::kString:
        c.max_length = cd.maxlength.value_or(100);
        if (c.max_length < 1 || c.max_length > 4000) errors_.Add(cd.path + ".maxlength", "must be 1–4000");
        break;
      case ColumnType::kMemo:
        c.max_length = cd.maxlength.value_or(2000);
        if (c.max_length < 1 || c.max_length > 1048576) errors_.Add(cd.path + ".maxlength", "must be 1–1048576");
        break;
      case ColumnType::kInteger:
        if (!c.min_value) c.min_value = -2147483648.0;
        if (!c.max_value) c.max_value = 2147483647.0;
        break;
      case ColumnType::kDecimal:
        c.precision = cd.precision.value_or(2);
        if (c.precision < 0 || c.precision > 10) errors_.Add(cd.path + ".precision", "must be 0–10");
        if (!c.min_value) c.min_value = -100000000000.0;
        if (!c.max_value) c.max_value = 100000000000.0;
        break;
      case ColumnType::kDouble:
        c.precision = cd.precision.value_or(2);
        if (c.precision < 0 || c.precision > 5) errors_.Add(cd.path + ".precision", "must be 0–5");
        if (!c.min_value) c.min_value = -100000000000.0;
        if (!c.max_value) c.max_value = 100000000000.0;
        break;
      case ColumnType::kMoney:
        c.precision = cd.precision.value_or(2);
        if (c.precision < 0 || c.precision > 4) errors_.Add(cd.path + ".precision", "must be 0–4");
        if (!c.min_value) c.min_value = -922337203685477.0;
        if (!c.max_value) c.max_value = 922337203685477.0;
        break;
      case ColumnType::kBoolean: {
        c.default_bool = cd.default_bool.value_or(false);
        std::vector<OptionDef> opts = {{0, cd.falselabel.empty() ? "No" : cd.falselabel},
                                       {1, cd.truelabel.empty() ? "Yes" : cd.truelabel}};
        c.options = MakeOptionSet(t.logical_name + "_" + cd.name, opts, false);
        break;
      }
      case ColumnType::kChoice:
      case ColumnType::kMultiChoice:
        if (!cd.choices.empty()) {
          auto it = cat_->choices_.find(cd.choices);
          if (it == cat_->choices_.end())
            errors_.Add(cd.path + ".choices", "no global choice named '" + cd.choices + "'");
          else
            c.options = it->second;
        } else if (!cd.options.empty()) {
          c.options = MakeOptionSet(t.logical_name + "_" + cd.name, cd.options, false);
        } else {
          errors_.Add(cd.path, "a choice column needs 'options' or 'choices'");
        }
        break;
      case ColumnType::kDateTime:
        if (cd.behavior == "dateonly")
          c.behavior = DateBehavior::kDateOnly;
        else if (cd.behavior == "timezoneindependent")
          c.behavior = DateBehavior::kTimeZoneIndependent;
        else if (!cd.behavior.empty() && cd.behavior != "userlocal")
          errors_.Add(cd.path + ".behavior", "must be userlocal, dateonly or timezoneindependent");
        break;
      case ColumnType::kLookup: {
        if (cd.target == "*") {  // any table: no relationship, the target is stored per row
          c.any_target = true;
          break;
        }
        if (!cat_->FindTable(cd.target)) {
          errors_.Add(cd.path + ".target", "no table named '" + cd.target + "'");
          break;
        }
        c.targets = {cd.target};
        CascadeDelete od = OnDelete(cd);
        std::string rel = LookupRelationships(t.logical_name, cd).front().second;
        Lookup1N(t, c, cd.target, rel, cd.nav.empty() ? cd.name : cd.nav, od, c.is_custom || t.is_custom);
        break;
      }
      case ColumnType::kFile:
      case ColumnType::kImage: {
        // Dataverse's MaxSizeInKB: files 32 MB by default, up to 10 GB; images 10 MB, up to 30 MB.
        bool file = *type == ColumnType::kFile;
        int max = file ? 10485760 : 30720;
        c.max_size_kb = cd.max_size_kb.value_or(file ? 32768 : 10240);
        if (c.max_size_kb < 1 || c.max_size_kb > max)
          errors_.Add(cd.path + ".max_size_kb", "must be 1–" + std::to_string(max));
        // Set by uploading through the file API, never through a record's JSON body.
        c.valid_for_create = false;
        c.valid_for_update = false;
        break;
      }
      case ColumnType::kCustomer: {
        c.targets = {"account", "contact"};
        for (const auto& [target, rel] : LookupRelationships(t.logical_name, cd))
          Lookup1N(t, c, target, rel, cd.name + "_" + target, OnDelete(cd), c.is_custom || t.is_custom);
        break;
      }
      default:
        break;
    }
    return c;
  }

  CascadeDelete OnDelete(const ColumnDef& cd) {
    if (cd.ondelete == "cascade") return CascadeDelete::kCascade;
    if (cd.ondelete == "restrict") return CascadeDelete::kRestrict;
    if (!cd.ondelete.empty() && cd.ondelete != "removelink")
      errors_.Add(cd.path + ".ondelete", "must be removelink, cascade or restrict");
    return CascadeDelete::kRemoveLink;
  }

  void BuildManyToMany(const RelationshipDef& r) {
    const Table* e1 = cat_->FindTable(r.entity1);
    const Table* e2 = cat_->FindTable(r.entity2);
    if (!e1) errors_.Add(r.path + ".entity1", "no table named '" + r.entity1 + "'");
    if (!e2) errors_.Add(r.path + ".entity2", "no table named '" + r.entity2 + "'");
    if (r.type != "manytomany") errors_.Add(r.path + ".type", "must be manytomany");
    if (!e1 || !e2) return;
    std::string iname = r.intersect.empty() ? r.name : r.intersect;
    Table& it = *const_cast<Table*>(cat_->FindTable(iname));
    Column& id = Add(it, it.primary_id, ColumnType::kUniqueIdentifier);
    id.is_primary_id = true;
    std::string a1 = e1->primary_id, a2 = e2->primary_id;
    if (a1 == a2) {
      a1 = e1->logical_name + "idone";
      a2 = e2->logical_name + "idtwo";
    }
    Column& c1 = Add(it, a1, ColumnType::kUniqueIdentifier);
    Column& c2 = Add(it, a2, ColumnType::kUniqueIdentifier);
    c1.indexed = c2.indexed = true;
    c1.required = c2.required = RequiredLevel::kSystemRequired;
    // Dataverse's roleprivileges intersect also holds the depth at which the role has the
    // privilege (1 Basic, 2 Local, 4 Deep, 8 Global; an association through $ref gives Global).
    if (iname == "roleprivileges") Add(it, "privilegedepthmask", ColumnType::kInteger);
    System(it, "versionnumber", ColumnType::kBigInt);
    auto rel = std::make_unique<Relationship>();
    rel->schema_name = r.name;
    rel->metadata_id = NameGuid("relationship:" + r.name);
    rel->type = RelationshipType::kManyToMany;
    rel->is_custom = it.is_custom;
    rel->entity1 = e1->logical_name;
    rel->entity2 = e2->logical_name;
    rel->intersect_entity = iname;
    rel->entity1_attribute = a1;
    rel->entity2_attribute = a2;
    it.keys.push_back(
        Key{iname + "_pair", iname + "_pair", NameGuid("key:" + iname + "_pair"), {a1, a2}, iname + "_pair"});
    cat_->relationships_.push_back(std::move(rel));
  }

  void BuildKeys(const TableDef& d, Table& t) {
    for (const auto& kd : d.keys) {
      if (!IsIdentifier(kd.name)) errors_.Add(kd.path + ".name", "'" + kd.name + "' is not a valid key name");
      if (kd.columns.empty() || kd.columns.size() > 16) errors_.Add(kd.path + ".columns", "a key has 1–16 columns");
      for (const auto& cn : kd.columns) {
        const Column* c = t.FindColumn(cn);
        if (!c) {
          errors_.Add(kd.path + ".columns", "table '" + t.logical_name + "' has no column '" + cn + "'");
          continue;
        }
        static const ColumnType kAllowed[] = {ColumnType::kString,           ColumnType::kInteger, ColumnType::kDecimal,
                                              ColumnType::kDateTime,         ColumnType::kLookup,  ColumnType::kChoice,
                                              ColumnType::kUniqueIdentifier, ColumnType::kBigInt};
        if (std::find(std::begin(kAllowed), std::end(kAllowed), c->type) == std::end(kAllowed))
          errors_.Add(kd.path + ".columns", "column '" + cn + "' has a type that cannot be part of a key");
      }
      t.keys.push_back(Key{kd.name, kd.schemaname.empty() ? kd.name : kd.schemaname,
                           NameGuid("key:" + t.logical_name + "." + kd.name), kd.columns,
                           kd.displayname.empty() ? kd.schemaname.empty() ? kd.name : kd.schemaname : kd.displayname});
    }
    if (t.keys.size() > 10) errors_.Add(d.path + ".keys", "a table has at most 10 alternate keys");
  }

  void AddNav(Table& t, NavProperty nav) {
    if (t.nav_index.count(nav.name) || t.column_index.count(nav.name)) {
      // A navigation named like a column is normal for simple lookups (primarycontactid).
      if (t.nav_index.count(nav.name)) {
        errors_.Add("relationships",
                    "table '" + t.logical_name + "' has two navigation properties named '" + nav.name + "'");
        return;
      }
    }
    t.nav_index[nav.name] = t.navs.size();
    t.navs.push_back(std::move(nav));
  }

  void BuildNavs() {
    for (auto& tp : cat_->tables_) {
      Table& t = *tp;
      if (const Column* owner = t.FindColumn("ownerid"); owner && owner->type == ColumnType::kOwner)
        AddNav(t, NavProperty{"ownerid", NavProperty::Kind::kPolymorphicOwner, nullptr, nullptr, owner});
    }
    for (const auto& rp : cat_->relationships_) {
      const Relationship& r = *rp;
      if (r.type == RelationshipType::kOneToMany) {
        Table* child = const_cast<Table*>(cat_->FindTable(r.referencing_entity));
        Table* parent = const_cast<Table*>(cat_->FindTable(r.referenced_entity));
        if (!child || !parent) continue;
        const Column* col = child->FindColumn(r.referencing_attribute);
        AddNav(*child, NavProperty{r.referencing_nav, NavProperty::Kind::kSingle, &r, parent, col});
        AddNav(*parent, NavProperty{r.referenced_nav, NavProperty::Kind::kCollection, &r, child, col});
      } else {
        Table* e1 = const_cast<Table*>(cat_->FindTable(r.entity1));
        Table* e2 = const_cast<Table*>(cat_->FindTable(r.entity2));
        if (!e1 || !e2) continue;
        AddNav(*e1, NavProperty{r.schema_name, NavProperty::Kind::kManyToMany, &r, e2, nullptr});
        if (e1 != e2) AddNav(*e2, NavProperty{r.schema_name, NavProperty::Kind::kManyToMany, &r, e1, nullptr});
      }
    }
  }

 public:
  std::set<std::string> custom_names_;  // "table.column" of columns added by non-standard documents
  std::map<std::string, int> custom_otc_;
  Errors errors_;

 private:
  const std::vector<TableDef>& defs_;
  const std::vector<ChoiceDef>& choice_defs_;
  const std::vector<RelationshipDef>& rel_defs_;
  Catalog* cat_ = nullptr;
  std::vector<Relationship*> pending_;
};

std::string DefaultEntitySetName(std::string_view n) {
  std::string s(n);
  if (s.empty()) return s;
  auto ends = [&](std::string_view suf) {
    return s.size() >= suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
  };
  if (ends("y") && s.size() > 1 && std::string_view("aeiou").find(s[s.size() - 2]) == std::string_view::npos)
    return s.substr(0, s.size() - 1) + "ies";
  if (ends("s") || ends("x") || ends("z") || ends("ch") || ends("sh")) return s + "es";
  return s + "s";
}

Guid NameGuid(std::string_view name) {
  uint64_t h1 = 0xcbf29ce484222325ULL, h2 = 0x84222325cbf29ce4ULL;
  for (char c : name) {
    h1 = (h1 ^ static_cast<uint8_t>(c)) * 0x100000001b3ULL;
    h2 = (h2 ^ static_cast<uint8_t>(c)) * 0x100000001b3ULL + 0x9e3779b97f4a7c15ULL;
  }
  std::array<uint8_t, 16> b{};
  for (int i = 0; i < 8; ++i) b[i] = static_cast<uint8_t>(h1 >> (56 - 8 * i));
  for (int i = 0; i < 8; ++i) b[8 + i] = static_cast<uint8_t>(h2 >> (56 - 8 * i));
  b[6] = static_cast<uint8_t>(0x50 | (b[6] & 0x0f));
  b[8] = static_cast<uint8_t>(0x80 | (b[8] & 0x3f));
  return Guid(b);
}

namespace {

TableDef* FindTableDef(std::vector<TableDef>& tables, std::string_view name) {
  for (auto& t : tables)
    if (t.name == name) return &t;
  return nullptr;
}

// A column declared in a document (the primary name included); null for generated columns.
ColumnDef* FindColumnDef(TableDef& t, std::string_view name) {
  if (t.primaryname && t.primaryname->name == name) return &*t.primaryname;
  for (auto& c : t.columns)
    if (c.name == name) return &c;
  return nullptr;
}

std::string Join(const std::vector<std::string>& items, std::string_view sep) {
  std::string out;
  for (const auto& i : items) {
    if (!out.empty()) out += sep;
    out += i;
  }
  return out;
}

// Dataverse's CannotDeleteInUseComponent message, with the dependents named.
std::string InUseMessage(const std::string& component, const Guid& id, const std::vector<std::string>& dependents) {
  return "The " + component + "(" + id.ToString() + ") component cannot be deleted because it is referenced by " +
         std::to_string(dependents.size()) + " other component" + (dependents.size() == 1 ? "" : "s") + ": " +
         Join(dependents, "; ") + ".";
}

std::string SystemMessage(const std::string& what, const std::string& name, const Guid& id) {
  return "The 'Delete' operation on the " + what + " " + name + "(" + id.ToString() +
         ") is not allowed: it is a system component. Only custom components can be deleted.";
}

bool ValidOnDelete(const std::string& v) { return v == "removelink" || v == "cascade" || v == "restrict"; }

void CheckOptionValues(Errors& errors, const std::vector<OptionDef>& options, const std::string& path) {
  std::set<int> seen;
  for (const auto& o : options)
    if (!seen.insert(o.value).second) errors.Add(path, "the value " + std::to_string(o.value) + " is used twice");
  if (options.empty()) errors.Add(path, "a choice needs options");
}

}  // namespace

// One Apply in progress: a copy of the builder (`next`) that the document's sections change in
// order, and the problems found. Apply keeps `next` only when everything validated.
struct CatalogBuilder::Merge {
  Merge(const CatalogBuilder& current, const SchemaDoc& doc, bool standard)
      : doc(doc),
        standard(standard),
        prefix(doc.prefix.empty() ? "" : doc.prefix + "_"),
        next(current),
        tables(next.tables_),
        choices(next.choices_),
        rels(next.relationships_),
        custom_columns(next.custom_columns_) {}

  void CheckPrefix() {
    // The prefix names what a document adds; a document that only drops or updates needs none.
    bool adds = !doc.choices.empty() || !doc.tables.empty() || !doc.relationships.empty();
    if (standard || (!adds && doc.prefix.empty())) return;
    if (doc.prefix.empty())
      errors.Add("publisher.prefix", "a publisher prefix is required (for example 'new')");
    else if (!IsIdentifier(doc.prefix) || doc.prefix.size() < 2 || doc.prefix.size() > 8 ||
             doc.prefix.find('_') != std::string::npos)
      errors.Add("publisher.prefix", "must be 2–8 lowercase letters or digits, starting with a letter");
  }

  // Resolves the `drop` section against `cat` (the catalog before the document): system components
  // and columns that cannot go are refused; a 1:N relationship becomes its lookup column.
  void ResolveDrops(const Catalog& cat) {
    for (const auto& r : doc.drop.tables) {
      const Table* t = cat.FindTable(r.name);
      if (!t) continue;  // already gone: drops are idempotent like the rest of a document
      if (t->is_intersect) {
        errors.Add(r.path, "'" + r.name + "' is the intersect table of an N:N relationship; drop the relationship");
        continue;
      }
      if (next.standard_.count("table:" + r.name)) {
        errors.AddCoded(r.path, SystemMessage("table", r.name, t->metadata_id), Code::kPermissionDenied,
                        kErrSystemComponent);
        continue;
      }
      drop_tables.insert(r.name);
    }
    for (const auto& r : doc.drop.columns) DropColumn(cat, r.path, r.table, r.name);
    for (const auto& r : doc.drop.relationships) {
      const Relationship* rel = cat.FindRelationship(r.name);
      if (!rel) continue;
      if (rel->type == RelationshipType::kManyToMany) {
        if (next.standard_.count("relationship:" + rel->schema_name)) {
          errors.AddCoded(r.path, SystemMessage("relationship", rel->schema_name, rel->metadata_id),
                          Code::kPermissionDenied, kErrSystemComponent);
          continue;
        }
        drop_rels.insert(rel->schema_name);
        continue;
      }
      // 1:N: the relationship lives and dies with its lookup column.
      TableDef* td = FindTableDef(tables, rel->referencing_entity);
      const ColumnDef* cd = td ? FindColumnDef(*td, rel->referencing_attribute) : nullptr;
      if (cd && cd->type == "customer" && IsCustomColumn(td->name, cd->name)) {
        errors.Add(r.path, "'" + rel->schema_name + "' is one of the relationships of the customer column " + td->name +
                               "." + cd->name + "; delete the column");
        continue;
      }
      if (!cd || !IsCustomColumn(rel->referencing_entity, rel->referencing_attribute)) {
        errors.AddCoded(r.path, SystemMessage("relationship", rel->schema_name, rel->metadata_id),
                        Code::kPermissionDenied, kErrSystemComponent);
        continue;
      }
      DropColumn(cat, r.path, rel->referencing_entity, rel->referencing_attribute);
    }
    for (const auto& r : doc.drop.keys) {
      const Table* t = cat.FindTable(r.table);
      const Key* k = t ? t->FindKey(r.name) : nullptr;
      if (!k) continue;
      TableDef* td = FindTableDef(tables, r.table);
      bool declared =
          td && std::any_of(td->keys.begin(), td->keys.end(), [&](const KeyDef& x) { return x.name == r.name; });
      if (!declared || next.standard_.count("key:" + r.table + "." + r.name)) {
        errors.AddCoded(r.path, SystemMessage("key", r.table + "." + r.name, k->metadata_id), Code::kPermissionDenied,
                        kErrSystemComponent);
        continue;
      }
      drop_keys.insert(r.table + "." + r.name);
    }
    for (const auto& r : doc.drop.choices) {
      const OptionSet* os = cat.FindGlobalChoice(r.name);
      if (!os) continue;
      if (next.standard_.count("choice:" + r.name)) {
        errors.AddCoded(r.path, SystemMessage("choice", r.name, os->metadata_id), Code::kPermissionDenied,
                        kErrSystemComponent);
        continue;
      }
      drop_choices.insert(r.name);
    }
  }

  // Refuses drops of what other components, not dropped by this document too, still use.
  void CheckDependencies() {
    for (const auto& r : doc.drop.tables) {
      if (!drop_tables.count(r.name)) continue;
      std::vector<std::string> deps;
      for (const auto& td : tables) {
        if (td.name == r.name || drop_tables.count(td.name)) continue;
        for (const auto& cd : td.columns)
          for (const auto& [target, rel] : LookupRelationships(td.name, cd))
            if (target == r.name && !ColumnDropped(td.name, cd.name))
              deps.push_back("lookup column " + td.name + "." + cd.name + " (relationship " + rel + ")");
      }
      for (const auto& rd : rels) {
        if (drop_rels.count(rd.name) || (rd.entity1 != r.name && rd.entity2 != r.name)) continue;
        const std::string& other = rd.entity1 == r.name ? rd.entity2 : rd.entity1;
        if (other != r.name && !drop_tables.count(other)) deps.push_back("N:N relationship " + rd.name);
      }
      if (!deps.empty())
        errors.AddCoded(r.path, InUseMessage(r.name, NameGuid("table:" + r.name), deps), Code::kInvalidArgument,
                        kErrComponentInUse);
    }
    for (const auto& [dc, path] : drop_columns) {
      auto dot = dc.find('.');
      std::string table = dc.substr(0, dot), column = dc.substr(dot + 1);
      TableDef* td = FindTableDef(tables, table);
      if (drop_tables.count(table)) continue;
      std::vector<std::string> deps;
      for (const auto& kd : td->keys)
        if (!drop_keys.count(table + "." + kd.name) &&
            std::find(kd.columns.begin(), kd.columns.end(), column) != kd.columns.end())
          deps.push_back("alternate key " + table + "." + kd.name);
      if (!deps.empty())
        errors.AddCoded(path, InUseMessage(dc, NameGuid("column:" + dc), deps), Code::kInvalidArgument,
                        kErrComponentInUse);
    }
    for (const auto& r : doc.drop.choices) {
      if (!drop_choices.count(r.name)) continue;
      std::vector<std::string> deps;
      for (const auto& td : tables)
        for (const auto& cd : td.columns)
          if (cd.choices == r.name && !ColumnDropped(td.name, cd.name)) deps.push_back(td.name + "." + cd.name);
      if (!deps.empty())
        errors.AddCoded(r.path,
                        "This option set cannot be deleted. The current set of columns that reference the choice '" +
                            r.name + "' are: " + Join(deps, ", ") +
                            ". These references must be removed before the choice can be deleted.",
                        Code::kInvalidArgument, kErrOptionSetInUse);
    }
  }

  void RemoveDropped() {
    std::erase_if(tables, [&](const TableDef& t) { return drop_tables.count(t.name) > 0; });
    std::erase_if(custom_columns, [&](const std::string& tc) { return drop_tables.count(tc.substr(0, tc.find('.'))); });
    std::erase_if(rels, [&](const RelationshipDef& r) {
      return drop_rels.count(r.name) || drop_tables.count(r.entity1) || drop_tables.count(r.entity2);
    });
    for (auto& td : tables) {
      std::erase_if(td.columns, [&](const ColumnDef& c) { return drop_columns.count(td.name + "." + c.name) > 0; });
      std::erase_if(td.keys, [&](const KeyDef& k) { return drop_keys.count(td.name + "." + k.name) > 0; });
    }
    for (const auto& [dc, path] : drop_columns) custom_columns.erase(dc);
    std::erase_if(choices, [&](const ChoiceDef& c) { return drop_choices.count(c.name) > 0; });
  }

  // Applies the `update` section; `cat` is the catalog before the document.
  void Updates(const Catalog& cat) {
    for (const auto& tu : doc.update.tables) {
      TableDef* td = FindTableDef(tables, tu.name);
      if (!td) {
        errors.Add(tu.path + ".name", "no table named '" + tu.name + "'");
        continue;
      }
      if (tu.displayname) td->displayname = *tu.displayname;
      if (tu.displaycollectionname) td->displaycollectionname = *tu.displaycollectionname;
      if (tu.description) td->description = *tu.description;
      if (tu.changetracking) td->changetracking = *tu.changetracking;
      if (tu.audit) td->audit = *tu.audit;
      const Table* t = cat.FindTable(tu.name);
      for (const auto& cu : tu.columns) {
        ColumnDef* cd = FindColumnDef(*td, cu.name);
        if (!cd && !td->primaryname && !next.standard_.count("table:" + td->name) &&
            DefaultPrimaryName(*td).name == cu.name) {
          td->primaryname = DefaultPrimaryName(*td);  // the generated primary name, now declared
          cd = &*td->primaryname;
        }
        if (!cd) {
          if (t && t->FindColumn(cu.name))
            errors.Add(cu.path + ".name",
                       "'" + cu.name + "' is a system column of '" + tu.name + "' and cannot be changed");
          else
            errors.Add(cu.path + ".name", "table '" + tu.name + "' has no column '" + cu.name + "'");
          continue;
        }
        const std::string& ty = cd->type;
        auto only = [&](bool ok, const char* field, const char* types) {
          if (!ok) errors.Add(cu.path + "." + field, std::string("applies to ") + types + " columns only");
          return ok;
        };
        bool numeric = ty == "integer" || ty == "decimal" || ty == "double" || ty == "money";
        if (cu.displayname) cd->displayname = *cu.displayname;
        if (cu.description) cd->description = *cu.description;
        if (cu.required) cd->required = *cu.required;
        if (cu.indexed) cd->indexed = *cu.indexed;
        if (cu.audit) cd->audit = *cu.audit;
        if (cu.secured) cd->secured = *cu.secured;
        if (cu.format && only(ty == "string", "format", "string")) cd->format = *cu.format;
        if (cu.maxlength && only(ty == "string" || ty == "memo", "maxlength", "string and memo"))
          cd->maxlength = cu.maxlength;
        if (cu.precision &&
            only(ty == "decimal" || ty == "double" || ty == "money", "precision", "decimal, double and money"))
          cd->precision = cu.precision;
        if (cu.min && only(numeric, "min", "integer, decimal, double and money")) cd->min = cu.min;
        if (cu.max && only(numeric, "max", "integer, decimal, double and money")) cd->max = cu.max;
        if (cu.max_size_kb && only(ty == "file" || ty == "image", "max_size_kb", "file and image"))
          cd->max_size_kb = cu.max_size_kb;
        if (cu.default_bool && only(ty == "boolean", "default", "boolean")) cd->default_bool = cu.default_bool;
        if (cu.truelabel && only(ty == "boolean", "truelabel", "boolean")) cd->truelabel = *cu.truelabel;
        if (cu.falselabel && only(ty == "boolean", "falselabel", "boolean")) cd->falselabel = *cu.falselabel;
        if (cu.options && only(ty == "choice" || ty == "multichoice", "options", "choice and multichoice")) {
          if (!cd->choices.empty()) {
            errors.Add(cu.path + ".options", "column '" + cu.name + "' uses the global choice '" + cd->choices +
                                                 "'; update the choice instead");
          } else {
            CheckOptionValues(errors, *cu.options, cu.path + ".options");
            cd->options = *cu.options;
          }
        }
        cd->path = cu.path;  // later build errors point at the update
      }
    }
    for (const auto& chu : doc.update.choices) {
      auto it = std::find_if(choices.begin(), choices.end(), [&](const ChoiceDef& c) { return c.name == chu.name; });
      if (it == choices.end()) {
        errors.Add(chu.path + ".name", "no global choice named '" + chu.name + "'");
        continue;
      }
      if (chu.displayname) it->displayname = *chu.displayname;
      if (chu.options) {
        CheckOptionValues(errors, *chu.options, chu.path + ".options");
        it->options = *chu.options;
      }
      it->path = chu.path;
    }
    for (const auto& ru : doc.update.relationships) {
      const Relationship* rel = cat.FindRelationship(ru.name);
      if (!rel) {
        errors.Add(ru.path + ".name", "no relationship named '" + ru.name + "'");
        continue;
      }
      if (!ru.ondelete) continue;
      if (!ValidOnDelete(*ru.ondelete)) {
        errors.Add(ru.path + ".ondelete", "must be removelink, cascade or restrict");
        continue;
      }
      if (rel->type == RelationshipType::kManyToMany) {
        errors.Add(ru.path + ".ondelete", "an N:N relationship has no delete behaviour");
        continue;
      }
      TableDef* td = FindTableDef(tables, rel->referencing_entity);
      ColumnDef* cd = td ? FindColumnDef(*td, rel->referencing_attribute) : nullptr;
      if (!cd) {
        errors.Add(ru.path + ".name", "'" + rel->schema_name + "' is a system relationship and cannot be changed");
        continue;
      }
      cd->ondelete = *ru.ondelete;
    }
  }

  // Adds the document's choices, tables (and columns and keys of existing tables) and relationships.
  void Additions() {
    for (const auto& c : doc.choices) {
      if (!CustomName(c.name))
        errors.Add(c.path + ".name", "'" + c.name + "' must start with the prefix '" + prefix + "'");
      if (!IsIdentifier(c.name)) errors.Add(c.path + ".name", "'" + c.name + "' is not a valid name");
      if (c.options.empty()) errors.Add(c.path + ".options", "a choice needs options");
      if (drop_choices.count(c.name))
        errors.Add(c.path + ".name", "'" + c.name + "' is dropped by this document; add it back in another one");
      auto it = std::find_if(choices.begin(), choices.end(), [&](const ChoiceDef& x) { return x.name == c.name; });
      if (it == choices.end()) {
        choices.push_back(c);
        if (standard) next.standard_.insert("choice:" + c.name);
      }
    }
    for (const auto& td : doc.tables) {
      if (drop_tables.count(td.name)) {
        errors.Add(td.path + ".name", "'" + td.name + "' is dropped by this document; add it back in another one");
        continue;
      }
      auto it = std::find_if(tables.begin(), tables.end(), [&](const TableDef& x) { return x.name == td.name; });
      if (it == tables.end()) {
        if (!IsIdentifier(td.name)) {
          errors.Add(td.path + ".name", "'" + td.name + "' is not a valid logical name (lowercase letters, digits, _)");
          continue;
        }
        if (!CustomName(td.name)) {
          errors.Add(td.path + ".name", "'" + td.name + "' must start with the prefix '" + prefix + "'");
          continue;
        }
        if (!td.ownership.empty() && td.ownership != "user" && td.ownership != "organization" && td.ownership != "none")
          errors.Add(td.path + ".ownership", "must be user or organization");
        TableDef copy = td;
        if (standard) {
          next.standard_.insert("table:" + td.name);
          for (const auto& k : td.keys) next.standard_.insert("key:" + td.name + "." + k.name);
        } else {
          copy.objecttypecode = 0;
          next.custom_otc_[td.name] = next.next_custom_otc_++;
          for (const auto& c : copy.columns) custom_columns.insert(td.name + "." + c.name);
          if (copy.primaryname) custom_columns.insert(td.name + "." + copy.primaryname->name);
        }
        tables.push_back(std::move(copy));
      } else {
        for (const auto& cd : td.columns) {
          if (drop_columns.count(td.name + "." + cd.name)) {
            errors.Add(cd.path + ".name", "'" + cd.name + "' is dropped by this document; add it back in another one");
            continue;
          }
          auto ci = std::find_if(it->columns.begin(), it->columns.end(),
                                 [&](const ColumnDef& x) { return x.name == cd.name; });
          if (it->primaryname && it->primaryname->name == cd.name) {
            if (cd.type != "string")
              errors.Add(cd.path + ".type", "column '" + cd.name + "' exists with type 'string'");
            continue;
          }
          if (ci != it->columns.end()) {
            if (ci->type != cd.type)
              errors.Add(cd.path + ".type", "column '" + cd.name + "' exists with type '" + ci->type + "'");
            continue;
          }
          if (!CustomName(cd.name)) {
            errors.Add(cd.path + ".name", "'" + cd.name + "' must start with the prefix '" + prefix + "'");
            continue;
          }
          if (!standard) custom_columns.insert(td.name + "." + cd.name);
          it->columns.push_back(cd);
        }
        for (const auto& kd : td.keys) {
          if (drop_keys.count(td.name + "." + kd.name)) {
            errors.Add(kd.path + ".name", "'" + kd.name + "' is dropped by this document; add it back in another one");
            continue;
          }
          auto ki = std::find_if(it->keys.begin(), it->keys.end(), [&](const KeyDef& x) { return x.name == kd.name; });
          if (ki != it->keys.end()) {
            if (ki->columns != kd.columns) errors.Add(kd.path, "key '" + kd.name + "' exists with other columns");
            continue;
          }
          if (!CustomName(kd.name))
            errors.Add(kd.path + ".name", "'" + kd.name + "' must start with the prefix '" + prefix + "'");
          if (standard) next.standard_.insert("key:" + td.name + "." + kd.name);
          it->keys.push_back(kd);
        }
      }
    }
    for (const auto& r : doc.relationships) {
      if (!CustomName(r.name))
        errors.Add(r.path + ".name", "'" + r.name + "' must start with the prefix '" + prefix + "'");
      if (!IsIdentifier(r.name)) errors.Add(r.path + ".name", "'" + r.name + "' is not a valid name");
      if (drop_rels.count(r.name))
        errors.Add(r.path + ".name", "'" + r.name + "' is dropped by this document; add it back in another one");
      auto it = std::find_if(rels.begin(), rels.end(), [&](const RelationshipDef& x) { return x.name == r.name; });
      if (it == rels.end()) {
        rels.push_back(r);
        if (standard) next.standard_.insert("relationship:" + r.name);
      }
    }
  }

  const SchemaDoc& doc;
  const bool standard;
  const std::string prefix;
  CatalogBuilder next;
  Errors errors;

  bool CustomName(const std::string& name) const { return standard || name.rfind(prefix, 0) == 0; }
  bool IsCustomColumn(const std::string& t, const std::string& c) const {
    return custom_columns.count(t + "." + c) > 0;
  }
  bool ColumnDropped(const std::string& table, const std::string& column) const {
    return drop_tables.count(table) || drop_columns.count(table + "." + column);
  }
  void DropColumn(const Catalog& cat, const std::string& path, const std::string& table, const std::string& column) {
    const Table* t = cat.FindTable(table);
    const Column* c = t ? t->FindColumn(column) : nullptr;
    if (!c) return;
    TableDef* td = FindTableDef(tables, table);
    const ColumnDef* cd = td ? FindColumnDef(*td, column) : nullptr;
    if (c->is_primary_name && t->is_custom) {
      errors.Add(path, "'" + column + "' is the primary name column of '" + table +
                           "' and cannot be deleted; delete the table instead");
      return;
    }
    if (!cd || !IsCustomColumn(table, column)) {
      errors.AddCoded(path, SystemMessage("column", table + "." + column, c->metadata_id), Code::kPermissionDenied,
                      kErrSystemComponent);
      return;
    }
    drop_columns.emplace(table + "." + column, path);
  }

  std::vector<TableDef>& tables;
  std::vector<ChoiceDef>& choices;
  std::vector<RelationshipDef>& rels;
  std::set<std::string>& custom_columns;
  // What this document drops, after resolution. Additions must not name these again.
  std::set<std::string> drop_tables, drop_keys, drop_rels, drop_choices;
  std::map<std::string, std::string> drop_columns;  // "table.column" → path of the drop
};

Status CatalogBuilder::Apply(const SchemaDoc& doc, bool standard) {
  Merge m(*this, doc, standard);
  m.CheckPrefix();
  if (!doc.drop.empty() || !doc.update.empty()) {
    ASSIGN_OR_RETURN(CatalogPtr before, Build(0));
    m.ResolveDrops(*before);
    m.CheckDependencies();
    if (!m.errors.list.empty()) return m.errors.ToStatus();
    m.RemoveDropped();
    m.Updates(*before);
  }
  m.Additions();
  if (!m.errors.list.empty()) return m.errors.ToStatus();
  // Validate the merged result by building it.
  auto built = m.next.Build(0);
  if (!built.ok()) return built.status();
  *this = std::move(m.next);
  return Status::Ok();
}

Result<CatalogPtr> CatalogBuilder::Build(int64_t version) const {
  auto cat = std::make_shared<Catalog>();
  CatalogAssembler b(tables_, choices_, relationships_);
  b.custom_names_ = custom_columns_;
  b.custom_otc_ = custom_otc_;
  auto r = b.Run(version, cat.get());
  if (!r.ok()) return r.status();
  return CatalogPtr(std::move(cat));
}

}  // namespace tributary::catalog
