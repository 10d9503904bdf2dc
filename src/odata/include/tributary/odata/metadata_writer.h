#pragma once
// Metadata serializers: the service document, $metadata (CSDL XML), and the JSON of the metadata
// API (EntityDefinitions, their Attributes and Keys).
//
// Every function is pure: it reads catalog structures and returns text, so all are thread-safe
// over an immutable catalog snapshot. The Catalog overloads are thin wrappers over the overloads
// that take a list of tables; handlers that filter (EntityDefinitions?$filter=…) pass the rows
// that matched. Writers never touch Table::FindColumn & co.; they only walk the public members.
//
// `root` is the service root the client used, e.g. "http://127.0.0.1:8080/api/data/v9.2/"; a
// missing trailing slash is added. `select` holds $select names as the client wrote them (OData
// names are case-sensitive); an empty list selects every property. Unknown names fail with
// QueryError (0x80060888), as Dataverse answers.

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tributary/base/status.h"
#include "tributary/catalog/catalog.h"

namespace tributary::odata {

// Tables in output order. Pointers must stay valid for the duration of the call.
using TableList = std::span<const catalog::Table* const>;

// The Edm type of a column's Web API property: Edm.String, Edm.Int32, Edm.Int64, Edm.Decimal,
// Edm.Double, Edm.Boolean, Edm.DateTimeOffset (Edm.Date for date-only columns) or Edm.Guid (also
// for lookups, whose property is "_x_value").
std::string_view EdmType(const catalog::Column& column);

// {"@odata.context":"{root}$metadata",
//  "value":[{"name":"accounts","kind":"EntitySet","url":"accounts"},…]}
std::string WriteServiceDocument(const catalog::Catalog& catalog, std::string_view root);
std::string WriteServiceDocument(TableList tables, std::string_view root);

// EDMX 4.0 CSDL: Schema "Microsoft.Dynamics.CRM" (alias mscrm) with the abstract bases
// crmbaseentity and principal (systemuser and team derive from it and inherit its ownerid key),
// one EntityType per table, WhoAmI / RetrieveVersion with their response complex types, and the
// EntityContainer "System". `annotations` (?annotations=true) adds Core.Description, Core.Computed
// and Core.Permissions on read-only columns, and Capabilities.ChangeTracking on the entity sets of
// change-tracked tables. Navigation properties whose target is not among `tables` still name the
// target type; NavigationPropertyBinding is written only for targets in the list.
std::string WriteCsdl(const catalog::Catalog& catalog, bool annotations);
std::string WriteCsdl(TableList tables, bool annotations);
// The same with the given functions and actions (operations.h) in place of WhoAmI/RetrieveVersion:
// one Function/Action element each (bound ones with the binding parameter first), a
// "{Name}Response" complex type for those with response properties, and a FunctionImport/
// ActionImport for unbound ones.
struct OperationDef;
std::string WriteCsdl(const catalog::Catalog& catalog, bool annotations, const std::vector<OperationDef>& operations);

// GET EntityDefinitions:
// {"@odata.context":"{root}$metadata#EntityDefinitions[(select)]","value":[…]}.
Result<std::string> WriteEntityDefinitions(const catalog::Catalog& catalog, std::string_view root,
                                           const std::vector<std::string>& select);
Result<std::string> WriteEntityDefinitions(TableList tables, std::string_view root,
                                           const std::vector<std::string>& select);
// GET EntityDefinitions(…): one EntityMetadata object with
// "@odata.context":"{root}$metadata#EntityDefinitions[(select)]/$entity". MetadataId is always
// written.
Result<std::string> WriteEntityDefinition(const catalog::Table& table, std::string_view root,
                                          const std::vector<std::string>& select);

// The query applied to an Attributes request.
struct AttributeQuery {
  std::vector<std::string> select;  // empty = all properties
  // Type-cast segment: "PicklistAttributeMetadata" or "Microsoft.Dynamics.CRM.Picklist…"; empty
  // for none. A cast keeps only attributes of that type and limits $select/$expand to its
  // properties. Without a cast the writer is lenient: type-specific names (MaxLength, Precision,
  // Targets, …) are accepted and written on the attributes they apply to.
  std::string cast;
  bool expand_option_set = false;         // $expand=OptionSet (choice, state, status, boolean)
  bool expand_global_option_set = false;  // $expand=GlobalOptionSet (null for local choices)
};

// GET EntityDefinitions(…)/Attributes: {"@odata.context":…,"value":[…]}, the context being
// "{root}$metadata#EntityDefinitions({MetadataId})/Attributes" + "/{cast type}" + "({select})".
// Every row carries "@odata.type" and MetadataId. Fails with QueryError on unknown select/expand
// names or an unknown cast.
Result<std::string> WriteAttributes(const catalog::Table& table, std::string_view root,
                                    const std::vector<std::string>& select);
Result<std::string> WriteAttributesAs(const catalog::Table& table, std::string_view root, const AttributeQuery& query);
// GET …/Attributes(…): one AttributeMetadata object with an "…/$entity" context. With a cast
// the column must be of that type, else NotFound (0x80040217).
Result<std::string> WriteAttribute(const catalog::Table& table, const catalog::Column& column, std::string_view root,
                                   const std::vector<std::string>& select);
Result<std::string> WriteAttributeAs(const catalog::Table& table, const catalog::Column& column, std::string_view root,
                                     const AttributeQuery& query);

// GET EntityDefinitions(…)/Keys: {"@odata.context":…,"value":[EntityKeyMetadata…]}.
std::string WriteKeys(const catalog::Table& table, std::string_view root);

}  // namespace tributary::odata
