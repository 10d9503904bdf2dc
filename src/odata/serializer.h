#pragma once
// Writes records as Web API JSON: values by Edm type, @odata.etag, expanded navigations and, when
// requested, the FormattedValue / lookuplogicalname / associatednavigationproperty annotations.

#include <functional>
#include <optional>
#include <string>

#include "prefer.h"
#include "tributary/base/json.h"
#include "tributary/data/value.h"

namespace tributary::odata {

struct SerializeContext {
  std::string root;  // service root, ending in '/'
  const Preferences* prefs = nullptr;
  // Primary name of a record, for lookup FormattedValue annotations.
  std::function<std::optional<std::string>(const std::string& table, const Guid& id)> primary_name;
  bool omit_nulls = false;
};

// Writes one record as a JSON object; `context` (may be empty) becomes its @odata.context.
void WriteEntity(JsonWriter& w, const data::Entity& e, const SerializeContext& ctx, std::string_view context = {});
// The property name a field is written under ("name", "_primarycontactid_value").
std::string PropertyName(const catalog::Column& c);
// Writes a bare value (for single-property responses).
void WriteValue(JsonWriter& w, const catalog::Column& c, const data::Value& v);
// FormattedValue text, or nullopt when the type has none.
std::optional<std::string> FormattedValue(const catalog::Column& c, const data::Value& v, const SerializeContext& ctx);

// One property of a query result row (FetchXML, $apply): a column value under any name.
struct ResultProperty {
  std::string_view name;                    // the JSON property name
  const catalog::Column* column = nullptr;  // the value's column; null: a plain integer (date part)
  bool count = false;                       // with a null column: a count (formatted "1,234")
  // The AttributeName annotation (aliased values: link-entity columns, attribute aliases); empty: none.
  std::string_view attribute_name;
  // The table whose navigation property a lookup annotates (associatednavigationproperty); null: none.
  const catalog::Table* nav_table = nullptr;
};
// Writes the property with the annotations asked for (FormattedValue, lookuplogicalname,
// associatednavigationproperty, AttributeName), each before the value as Dataverse does.
void WriteResultProperty(JsonWriter& w, const ResultProperty& p, const data::Value& v, const SerializeContext& ctx);

}  // namespace tributary::odata
