#pragma once
// Functions and actions of the Web API: their signatures, argument binding and $metadata.
//
// An operation is a function (GET, no side effects) or an action (POST), unbound
// (`/WhoAmI()`), bound to a record (`/accounts(id)/Microsoft.Dynamics.CRM.X`) or bound to a
// collection (`/accounts/Microsoft.Dynamics.CRM.X`). Function arguments come from the URL, inline
// (`X(A='b',C=1)`) or through parameter aliases (`X(A=@p1)?@p1='b'`); action arguments are the JSON
// body. Both are bound to the declared parameters into one JSON object, so an implementation sees
// the same shape either way. Built-in operations are registered by the Web API; custom APIs
// (customapi rows) are read from the store and described with the same types.

#include <optional>
#include <string>
#include <vector>

#include "tributary/base/json.h"
#include "tributary/base/status.h"
#include "tributary/catalog/catalog.h"
#include "tributary/odata/uri_parser.h"

namespace tributary::odata {

enum class OperationBinding : uint8_t { kUnbound, kEntity, kCollection };

// Parameter and response property types, as the customapi `type` choice numbers them.
enum class OperationType : uint8_t {
  kBoolean = 0,
  kDateTime = 1,
  kDecimal = 2,
  kEntity = 3,
  kEntityCollection = 4,
  kEntityReference = 5,
  kFloat = 6,
  kInteger = 7,
  kMoney = 8,
  kPicklist = 9,
  kString = 10,
  kStringArray = 11,
  kGuid = 12,
  kEnum = 100,       // a named type of the mscrm namespace (enum or complex type) given in `entity`
  kGuidArray = 101,  // Collection(Edm.Guid) (CreateMultipleResponse.Ids)
  kComplex = 102,    // a complex value (object, or array of objects): `entity` is its Edm type
};

struct OperationParameter {
  std::string name;
  OperationType type = OperationType::kString;
  std::string entity;  // logical name for entity types ("" = any table: crmbaseentity); enum type name
  bool optional = false;
};

struct OperationDef {
  std::string name;  // without namespace: "WhoAmI"
  bool is_function = false;
  OperationBinding binding = OperationBinding::kUnbound;
  std::string bound_table;  // logical name (entity/collection binding); "" = any table
  std::vector<OperationParameter> parameters;
  std::vector<OperationParameter> response;  // properties of {Name}Response; none → actions answer 204
  bool custom = false;                       // a custom API (customapi row)
};

// The Edm type of a parameter or response property in $metadata ("Edm.String", "mscrm.account",
// "Collection(mscrm.crmbaseentity)").
std::string OperationEdmType(const OperationParameter& p);

// Binds function arguments from the URL segment `X(...)` (aliases already resolved) into a JSON
// object keyed by parameter name. Literals keep their type: strings, numbers, booleans, GUIDs (as
// strings), enums (member name), and JSON objects/arrays written inline or through an alias.
Result<Json> FunctionArguments(const Segment& s);

// Checks arguments against the definition: unknown names, missing required parameters, and JSON
// types that cannot hold the parameter's type. `what` prefixes messages ("The function 'X'").
Status CheckArguments(const catalog::Catalog& cat, const OperationDef& def, const Json& args);

// The record an Entity/EntityReference argument names: {"@odata.type":"Microsoft.Dynamics.CRM.account",
// "accountid":"…"} or {"@odata.id":"accounts(…)"}; `expected` (may be null) restricts the table.
struct EntityArgument {
  const catalog::Table* table = nullptr;
  std::optional<Guid> id;
};
Result<EntityArgument> ParseEntityArgument(const catalog::Catalog& cat, const Json& value, std::string_view name,
                                           const catalog::Table* expected);

}  // namespace tributary::odata
