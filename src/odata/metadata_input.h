#pragma once
// Metadata writes: Dataverse metadata JSON (EntityMetadata, AttributeMetadata, relationship and
// option-set metadata, as clients POST them) → a schema document, which the environment applies
// like a schema file (validated, persisted, live without a restart).

#include "tributary/base/json.h"
#include "tributary/catalog/catalog.h"
#include "tributary/catalog/schema.h"

namespace tributary::odata {

// POST EntityDefinitions: a new table with its attributes (one IsPrimaryName string attribute).
Result<catalog::SchemaDoc> EntityMetadataToSchema(const Json& body);
// POST EntityDefinitions(…)/Attributes: a new column of `table`.
Result<catalog::SchemaDoc> AttributeMetadataToSchema(const catalog::Table& table, const Json& body);
// POST RelationshipDefinitions: OneToManyRelationshipMetadata (with its Lookup) or
// ManyToManyRelationshipMetadata.
Result<catalog::SchemaDoc> RelationshipMetadataToSchema(const catalog::Catalog& cat, const Json& body);
// POST GlobalOptionSetDefinitions: a global choice.
Result<catalog::SchemaDoc> OptionSetMetadataToSchema(const Json& body);
// POST EntityDefinitions(…)/Keys: {"SchemaName","DisplayName","KeyAttributes":[…]}, a new alternate key.
Result<catalog::SchemaDoc> KeyMetadataToSchema(const catalog::Table& table, const Json& body);

// Updates (PUT with the full metadata object): a document whose `update` section holds what differs
// from the current definition; an empty `update` when nothing does. Names cannot change; a body
// that renames, retypes or changes a date column's behaviour fails with PayloadError. Labels are
// read from LocalizedLabels (language 1033 first); with `merge_labels` (MSCRM.MergeLabels: true)
// labels of other languages only leave the stored label alone, and missing labels never clear it.
Result<catalog::SchemaDoc> EntityUpdateToSchema(const catalog::Table& table, const Json& body, bool merge_labels);
// `cast` is the type segment of the URL (…/Attributes(…)/Microsoft.Dynamics.CRM.StringAttributeMetadata), if any.
Result<catalog::SchemaDoc> AttributeUpdateToSchema(const catalog::Table& table, const catalog::Column& column,
                                                   std::string_view cast, const Json& body, bool merge_labels);
Result<catalog::SchemaDoc> RelationshipUpdateToSchema(const catalog::Relationship& rel, const Json& body);
Result<catalog::SchemaDoc> OptionSetUpdateToSchema(const catalog::OptionSet& choice, const Json& body,
                                                   bool merge_labels);

// The actions InsertOptionValue, UpdateOptionValue and DeleteOptionValue: one option of a global
// choice (OptionSetName) or of a column with local options (EntityLogicalName, AttributeLogicalName),
// as an update of the whole option list. `value` receives the option's value; InsertOptionValue
// without a Value takes the next one after the largest. Unknown choices, tables, columns and values
// fail with NotFound; a value that exists already (insert) or a body without a label with PayloadError.
Result<catalog::SchemaDoc> OptionValueActionToSchema(const catalog::Catalog& cat, std::string_view action,
                                                     const Json& body, int& value);

}  // namespace tributary::odata
