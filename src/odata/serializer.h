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

}  // namespace tributary::odata
