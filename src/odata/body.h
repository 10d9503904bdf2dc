#pragma once
// Request bodies and references: JSON → EntityInput, "@odata.bind"/"@odata.id" URLs → records.

#include <string_view>

#include "tributary/base/json.h"
#include "tributary/catalog/catalog.h"
#include "tributary/data/value.h"
#include "tributary/odata/uri_parser.h"

namespace tributary::odata {

// The record key in a path segment: a bare GUID, or name=value pairs (alternate key).
Result<data::RecordKey> KeyFromSegment(const catalog::Table& table, const Segment& seg);

// Resolves a reference URL in any form clients send: "/contacts(id)", "contacts(id)",
// "http://host/api/data/v9.2/contacts(id)", "https:/host/…" (one slash), alternate keys.
Result<data::BindTarget> ParseReference(const catalog::Catalog& cat, std::string_view url);

// Converts a JSON object into the typed input of a create/update of `table`. Unknown properties
// and wrong JSON types are payload errors (0x80048d19) naming the property.
Result<data::EntityInput> ParseEntityBody(const catalog::Catalog& cat, const catalog::Table& table, const Json& body,
                                          int depth = 0);

// Converts one JSON value to the typed value of `column` (also used for single-property PUT).
Result<data::Value> JsonToValue(const catalog::Table& table, const catalog::Column& column, const Json& v);

}  // namespace tributary::odata
