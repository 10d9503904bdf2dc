#pragma once
// The catalog: metadata of tables, columns, relationships, alternate keys and choices.
//
// A Catalog is an immutable snapshot built from schema documents (the embedded standard schema,
// then every schema file applied to the environment, in order). Readers hold a
// std::shared_ptr<const Catalog>; a schema change builds a new snapshot and swaps it in, so
// pointers into a snapshot stay valid for as long as the snapshot is held. Thread-safe to read.

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tributary/base/guid.h"
#include "tributary/base/status.h"

namespace tributary::catalog {

enum class ColumnType : uint8_t {
  kString,
  kMemo,
  kInteger,
  kBigInt,
  kDecimal,
  kDouble,
  kMoney,
  kBoolean,
  kChoice,       // Picklist
  kMultiChoice,  // MultiSelectPicklist, stored as "v1,v2"
  kState,        // statecode
  kStatus,       // statuscode
  kDateTime,
  kUniqueIdentifier,
  kLookup,    // single target
  kCustomer,  // account or contact
  kOwner,     // systemuser or team
  kFile,      // FileType: the value is the file id; bytes live in the store's file tables
  kImage,     // ImageType: the value is the image bytes (small images only, see data/files.h)
};

enum class DateBehavior : uint8_t { kUserLocal, kDateOnly, kTimeZoneIndependent };
enum class RequiredLevel : uint8_t { kNone, kSystemRequired, kApplicationRequired, kRecommended };
enum class Ownership : uint8_t { kUser, kOrganization, kNone };
enum class CascadeDelete : uint8_t { kRemoveLink, kCascade, kRestrict };

struct Option {
  int value = 0;
  std::string label;
  int state = -1;  // for status options: the statecode this status belongs to
};

struct OptionSet {
  std::string name;
  std::string display_name;  // global choices: as declared (may be empty)
  Guid metadata_id;
  bool is_global = false;
  std::vector<Option> options;
  const Option* Find(int value) const;
};

struct Column {
  std::string logical_name;
  std::string schema_name;
  std::string display_name;
  std::string description;
  Guid metadata_id;
  ColumnType type = ColumnType::kString;
  int max_length = 0;   // string/memo
  int precision = 0;    // decimal/double/money
  int max_size_kb = 0;  // file/image: MaxSizeInKB, the largest file the column accepts
  std::optional<double> min_value, max_value;
  DateBehavior behavior = DateBehavior::kUserLocal;
  RequiredLevel required = RequiredLevel::kNone;
  std::string format;                        // string format: text, email, phone, url
  std::vector<std::string> targets;          // lookup target tables
  std::shared_ptr<const OptionSet> options;  // choice, multichoice, state, status, boolean labels
  std::optional<bool> default_bool;
  bool valid_for_create = true;
  bool valid_for_update = true;
  bool valid_for_read = true;
  bool is_custom = false;
  bool is_primary_id = false;
  bool is_primary_name = false;
  // Whether the store keeps an index on the column: primary names, business lookups, ownerid,
  // owningbusinessunit and columns declared `indexed`. Alternate keys have their own indexes.
  bool indexed = false;
  // IsAuditEnabled: changes to the column are audited (when its table and the organization audit).
  // Off for the columns the platform maintains (createdon, modifiedby, versionnumber, …).
  bool audit_enabled = true;
  // IsSecured: only principals with a field security profile granting it (or System
  // Administrators) read, create or update the column.
  bool is_secured = false;
  // A lookup to any table (audit.objectid): no relationship; the target is stored per row.
  bool any_target = false;
  // Name of the column in the SQL table. Polymorphic lookups also store the target table's
  // logical name in `sql_name + "_type"`.
  std::string sql_name;

  bool IsLookup() const {
    return type == ColumnType::kLookup || type == ColumnType::kCustomer || type == ColumnType::kOwner;
  }
  bool IsPolymorphic() const { return type == ColumnType::kCustomer || type == ColumnType::kOwner || any_target; }
  bool IsFileOrImage() const { return type == ColumnType::kFile || type == ColumnType::kImage; }
  bool IsChoiceLike() const {
    return type == ColumnType::kChoice || type == ColumnType::kState || type == ColumnType::kStatus;
  }
  // "_parentcustomerid_value" for lookups.
  std::string LookupProperty() const { return "_" + logical_name + "_value"; }
};

enum class RelationshipType : uint8_t { kOneToMany, kManyToMany };

struct Relationship {
  std::string schema_name;
  Guid metadata_id;
  RelationshipType type = RelationshipType::kOneToMany;
  bool is_custom = false;
  // 1:N: the referencing (child) table's lookup column points at the referenced (parent) table.
  std::string referenced_entity;
  std::string referenced_attribute;  // parent's primary id
  std::string referencing_entity;
  std::string referencing_attribute;  // child's lookup column
  std::string referencing_nav;        // single-valued nav on the child, e.g. "parentcustomerid_account"
  std::string referenced_nav;         // collection nav on the parent (= schema_name)
  CascadeDelete on_delete = CascadeDelete::kRemoveLink;
  // N:N: rows of `intersect_entity` hold (entity1_attribute, entity2_attribute).
  std::string entity1, entity2;
  std::string intersect_entity;
  std::string entity1_attribute, entity2_attribute;
};

struct Table;

// A navigation property of a table, derived from its relationships.
struct NavProperty {
  enum class Kind : uint8_t {
    kSingle,            // N:1 through this table's lookup column
    kPolymorphicOwner,  // "ownerid": N:1 to systemuser or team, chosen by the stored type
    kCollection,        // 1:N: rows of another table whose lookup points here
    kManyToMany,        // N:N through an intersect table
  };
  std::string name;
  Kind kind = Kind::kSingle;
  const Relationship* relationship = nullptr;  // null for kPolymorphicOwner
  const Table* target = nullptr;               // null for kPolymorphicOwner
  const struct Column* column = nullptr;       // kSingle/kPolymorphicOwner: this table's lookup column;
                                               // kCollection: the target's lookup column
  bool IsCollection() const { return kind == Kind::kCollection || kind == Kind::kManyToMany; }
};

struct Key {
  std::string logical_name;
  std::string schema_name;
  Guid metadata_id;
  std::vector<std::string> columns;
  std::string display_name;
};

struct Table {
  std::string logical_name;
  std::string schema_name;
  std::string entity_set_name;
  std::string display_name;
  std::string display_collection_name;
  std::string description;
  Guid metadata_id;
  int object_type_code = 0;
  Ownership ownership = Ownership::kUser;
  bool is_custom = false;
  bool is_intersect = false;
  bool change_tracking = false;
  // IsAuditEnabled (auditing also needs organization.isauditenabled).
  bool audit_enabled = false;
  std::string primary_id;                        // "accountid"
  std::string primary_name;                      // "name"; may be empty
  std::string sql_table;                         // SQL table name
  std::vector<std::unique_ptr<Column>> columns;  // in definition order
  std::vector<Key> keys;
  std::vector<NavProperty> navs;

  const Column* FindColumn(std::string_view logical_name) const;
  // Resolves "_x_value" to the lookup column x.
  const Column* FindLookupProperty(std::string_view property) const;
  const NavProperty* FindNav(std::string_view name) const;
  const Key* FindKey(std::string_view logical_name) const;
  const Column* PrimaryId() const { return FindColumn(primary_id); }

  std::unordered_map<std::string, const Column*> column_index;
  std::unordered_map<std::string, size_t> nav_index;
};

class Catalog {
 public:
  const Table* FindTable(std::string_view logical_name) const;
  // Entity set names match case-insensitively (clients lower-case them).
  const Table* FindBySetName(std::string_view set_name) const;
  const Table* FindByMetadataId(const Guid& id) const;
  const Relationship* FindRelationship(std::string_view schema_name) const;
  const OptionSet* FindGlobalChoice(std::string_view name) const;
  const std::vector<std::unique_ptr<Table>>& tables() const { return tables_; }
  const std::vector<std::unique_ptr<Relationship>>& relationships() const { return relationships_; }
  const std::map<std::string, std::shared_ptr<const OptionSet>>& global_choices() const { return choices_; }
  // Increases with every schema change (Microsoft.Dynamics.CRM.globalmetadataversion).
  int64_t version() const { return version_; }

 private:
  friend class CatalogAssembler;
  std::vector<std::unique_ptr<Table>> tables_;
  std::vector<std::unique_ptr<Relationship>> relationships_;
  std::map<std::string, std::shared_ptr<const OptionSet>> choices_;
  std::unordered_map<std::string, const Table*> by_name_;
  std::unordered_map<std::string, const Table*> by_set_;  // lower-cased
  int64_t version_ = 0;
};

using CatalogPtr = std::shared_ptr<const Catalog>;

std::string_view ColumnTypeName(ColumnType t);  // "String", "Picklist", … (AttributeType)

}  // namespace tributary::catalog
