#pragma once
// Schema documents (docs/formats/schema.md) and the builder that turns them into a Catalog.

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "tributary/base/status.h"
#include "tributary/catalog/catalog.h"

namespace tributary::catalog {

struct OptionDef {
  int value = 0;
  std::string label;
};

struct ChoiceDef {
  std::string name;
  std::string displayname;
  std::vector<OptionDef> options;
  std::string path;  // location in the document, for error messages
};

struct ColumnDef {
  std::string name;
  std::string schemaname;
  std::string displayname;
  std::string description;
  std::string type;  // string, memo, integer, bigint, decimal, double, money, boolean, choice,
                     // multichoice, datetime, uniqueidentifier, lookup, customer, file, image
  std::string format;
  std::string behavior;  // userlocal | dateonly | timezoneindependent
  std::string required;  // none | recommended | applicationrequired | systemrequired
  std::optional<int> maxlength;
  std::optional<int> precision;
  std::optional<int> max_size_kb;  // file/image
  std::optional<double> min, max;
  std::string target;        // lookup; "*": any table, the target's name stored per row (audit.objectid)
  std::string relationship;  // lookup: relationship schema name
  // customer: relationship schema name per target ("account" → "contact_customer_accounts").
  std::map<std::string, std::string> relationships;
  std::string nav;       // lookup: single-valued nav name (default: the column name)
  std::string ondelete;  // removelink | cascade | restrict
  std::string choices;   // name of a global choice
  std::vector<OptionDef> options;
  std::optional<bool> default_bool;
  std::string truelabel, falselabel;
  bool readonly = false;      // not valid for create/update (computed by the platform)
  bool indexed = false;       // keep a SQL index for filtering and sorting
  std::optional<bool> audit;  // IsAuditEnabled; unset = on
  bool secured = false;       // IsSecured: column (field) security applies
  std::string path;
};

struct KeyDef {
  std::string name;
  std::string schemaname;
  std::string displayname;
  std::vector<std::string> columns;
  std::string path;
};

// statecode/statuscode values of a table (standard schema; custom tables get Active/Inactive).
struct StateDef {
  int value = 0;
  std::string label;
  std::vector<OptionDef> statuses;  // the first is the state's default status
};

struct TableDef {
  std::string name;
  std::string schemaname;
  std::string displayname;
  std::string displaycollectionname;
  std::string description;
  std::string entitysetname;
  std::string ownership;  // user | organization | none
  std::optional<ColumnDef> primaryname;
  bool changetracking = false;
  bool audit = false;  // IsAuditEnabled
  // Standard-schema extras (allowed in any file, rarely needed there):
  int objecttypecode = 0;
  std::string basename;  // system relationship names use lk_{basename}_createdby (default: name)
  std::vector<StateDef> states;
  std::vector<ColumnDef> columns;
  std::vector<KeyDef> keys;
  std::string path;
};

struct RelationshipDef {
  std::string name;
  std::string type;  // manytomany
  std::string entity1, entity2;
  std::string intersect;  // intersect table name (default: name)
  std::string path;
};

// One component named in a `drop` section. Columns and keys are written "table.name".
struct DropRef {
  std::string table;  // columns and keys: the table; empty for tables, relationships and choices
  std::string name;
  std::string path;
};

// The `drop` section: components to remove, with their data.
struct DropDef {
  std::vector<DropRef> tables;
  std::vector<DropRef> columns;
  std::vector<DropRef> keys;
  std::vector<DropRef> relationships;  // N:N by name, or 1:N by name (drops its lookup column)
  std::vector<DropRef> choices;        // global choices
  bool empty() const {
    return tables.empty() && columns.empty() && keys.empty() && relationships.empty() && choices.empty();
  }
};

// An `update` of one column: only the fields that are set change.
struct ColumnUpdate {
  std::string name;
  std::optional<std::string> displayname, description, required, format;
  std::optional<int> maxlength, precision, max_size_kb;
  std::optional<double> min, max;
  std::optional<std::vector<OptionDef>> options;  // local choices: the complete new list
  std::optional<bool> default_bool;
  std::optional<std::string> truelabel, falselabel;
  std::optional<bool> indexed;
  std::optional<bool> audit;
  std::optional<bool> secured;
  std::string path;
};

struct TableUpdate {
  std::string name;
  std::optional<std::string> displayname, displaycollectionname, description;
  std::optional<bool> changetracking;
  std::optional<bool> audit;
  std::vector<ColumnUpdate> columns;
  std::string path;
};

struct ChoiceUpdate {
  std::string name;
  std::optional<std::string> displayname;
  std::optional<std::vector<OptionDef>> options;  // the complete new list
  std::string path;
};

// A 1:N relationship (the lookup column that carries it) or an N:N relationship.
struct RelationshipUpdate {
  std::string name;
  std::optional<std::string> ondelete;  // 1:N only: removelink | cascade | restrict
  std::string path;
};

// The `update` section: changes to existing components.
struct UpdateDef {
  std::vector<TableUpdate> tables;
  std::vector<ChoiceUpdate> choices;
  std::vector<RelationshipUpdate> relationships;
  bool empty() const { return tables.empty() && choices.empty() && relationships.empty(); }
};

// A schema document. Applying it runs `drop`, then `update`, then adds `choices`, `tables` and
// `relationships` (docs/formats/schema.md).
struct SchemaDoc {
  int version = 0;
  std::string prefix;
  std::vector<ChoiceDef> choices;
  std::vector<TableDef> tables;
  std::vector<RelationshipDef> relationships;
  DropDef drop;
  UpdateDef update;
};

// Platform error numbers of schema changes that Dataverse clients know (CannotDeleteInUseComponent,
// CannotDeleteInUseOptionSet, CannotDeleteMetadata: a system component). The builder's errors
// carry them; everything else is InvalidArgument.
inline constexpr uint32_t kErrComponentInUse = 0x8004F01F;
inline constexpr uint32_t kErrOptionSetInUse = 0x80048417;
inline constexpr uint32_t kErrSystemComponent = 0x8004F032;

// Parses YAML or JSON text. Errors list every problem found, one per line, each prefixed by the
// element's path ("tables[1].columns[0].type: …").
Result<SchemaDoc> ParseSchemaDocument(std::string_view text);

// Writes a document as JSON in the schema-file format; ParseSchemaDocument reads it back.
std::string SchemaDocToJson(const SchemaDoc& doc);

// The standard schema embedded in the binary (src/catalog/standard_schema.yaml).
std::string_view StandardSchemaText();

// Accumulates schema documents and builds catalog snapshots. Not thread-safe.
class CatalogBuilder {
 public:
  // Validates `doc` against what was applied before and merges it: drops, then updates, then
  // additions. `standard` lifts the publisher-prefix rule (the standard schema's names carry none)
  // and marks its components as system components, which cannot be dropped. On error nothing is
  // merged; the status is InvalidArgument listing every problem, except that a drop blocked by
  // dependencies fails with kErrComponentInUse / kErrOptionSetInUse (InvalidArgument, naming the
  // dependents) and a drop of a system component with kErrSystemComponent (PermissionDenied).
  Status Apply(const SchemaDoc& doc, bool standard = false);
  // Builds an immutable catalog from everything applied: system columns, relationships,
  // navigation properties and indexes. `version` becomes Catalog::version().
  Result<CatalogPtr> Build(int64_t version) const;

 private:
  struct Merge;  // one Apply in progress (builder.cpp)

  std::vector<TableDef> tables_;
  std::vector<ChoiceDef> choices_;
  std::vector<RelationshipDef> relationships_;
  std::set<std::string> custom_columns_;  // "table.column" added by non-standard documents
  // Components of the standard schema: "table:x", "key:x.k", "relationship:r", "choice:c".
  std::set<std::string> standard_;
  // Object type codes of custom tables, handed out in the order the tables were added and never
  // reused, so that dropping a table does not renumber the others.
  std::map<std::string, int> custom_otc_;
  int next_custom_otc_ = 10000;
};

// Default entity set name: plural of the logical name (y→ies, s/x/z/ch/sh→+es, else +s).
std::string DefaultEntitySetName(std::string_view logical_name);

// A stable GUID derived from a name (metadata ids must survive restarts).
Guid NameGuid(std::string_view name);

}  // namespace tributary::catalog
