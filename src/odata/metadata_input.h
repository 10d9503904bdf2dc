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

}  // namespace tributary::odata
