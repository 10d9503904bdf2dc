#pragma once
// The Prefer request header (several header lines merge) and annotation selection.

#include <optional>
#include <string>
#include <vector>

#include "tributary/odata/http.h"

namespace tributary::odata {

struct Preferences {
  bool return_representation = false;
  std::optional<int> max_page_size;
  bool track_changes = false;
  bool continue_on_error = false;
  std::vector<std::string> annotations;  // patterns: "*", "Ns.*", exact names
  std::string annotations_raw;           // as sent, for Preference-Applied

  // Whether the annotation `name` (e.g. "OData.Community.Display.V1.FormattedValue") was asked for.
  bool Wants(std::string_view name) const;
  bool AnyAnnotations() const { return !annotations.empty(); }
};

Preferences ParsePrefer(const HttpRequest& req);

}  // namespace tributary::odata
