#pragma once
// Schema documents (docs/formats/schema.md) and the builder that turns them into a Catalog.

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
  std::string target;        // lookup
  std::string relationship;  // lookup: relationship schema name
  // customer: relationship schema name per target ("account" → "contact_customer_accounts").
  std::map<std::string, std::string> relationships;
  std::string nav;       // lookup: single-valued nav name (default: the column name)
  std::string ondelete;  // removelink | cascade | restrict
  std::string choices;   // name of a global choice
  std::vector<OptionDef> options;
  std::optional<bool> default_bool;
  std::string truelabel, falselabel;
  bool readonly = false;  // not valid for create/update (computed by the platform)
  bool indexed = false;   // keep a SQL index for filtering and sorting
  std::string path;
};

struct KeyDef {
  std::string name;
  std::string schemaname;
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

struct SchemaDoc {
  int version = 0;
  std::string prefix;
  std::vector<ChoiceDef> choices;
  std::vector<TableDef> tables;
  std::vector<RelationshipDef> relationships;
};

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
  // Validates `doc` against what was applied before and merges it. `standard` lifts the
  // publisher-prefix rule (the standard schema's names carry none). On error nothing is merged.
  Status Apply(const SchemaDoc& doc, bool standard = false);
  // Builds an immutable catalog from everything applied: system columns, relationships,
  // navigation properties and indexes. `version` becomes Catalog::version().
  Result<CatalogPtr> Build(int64_t version) const;

 private:
  std::vector<TableDef> tables_;
  std::vector<ChoiceDef> choices_;
  std::vector<RelationshipDef> relationships_;
  std::set<std::string> custom_columns_;  // "table.column" added by non-standard documents
};

// Default entity set name: plural of the logical name (y→ies, s/x/z/ch/sh→+es, else +s).
std::string DefaultEntitySetName(std::string_view logical_name);

// A stable GUID derived from a name (metadata ids must survive restarts).
Guid NameGuid(std::string_view name);

}  // namespace tributary::catalog
