#include "prefer.h"

#include <charconv>

#include "tributary/base/strings.h"

namespace tributary::odata {

bool Preferences::Wants(std::string_view name) const {
  for (const auto& p : annotations) {
    if (p == "*" || p == name) return true;
    if (p.size() > 2 && p.ends_with(".*") && name.rfind(p.substr(0, p.size() - 1), 0) == 0) return true;
    if (p.size() > 1 && p.back() == '*' && name.rfind(p.substr(0, p.size() - 1), 0) == 0) return true;
  }
  return false;
}

namespace {

// Splits on commas outside double quotes.
std::vector<std::string> SplitPrefer(std::string_view s) {
  std::vector<std::string> out;
  std::string cur;
  bool quoted = false;
  for (char c : s) {
    if (c == '"') quoted = !quoted;
    if (c == ',' && !quoted) {
      out.emplace_back(Trim(cur));
      cur.clear();
    } else {
      cur.push_back(c);
    }
  }
  if (!Trim(cur).empty()) out.emplace_back(Trim(cur));
  return out;
}

}  // namespace

Preferences ParsePrefer(const HttpRequest& req) {
  Preferences p;
  for (const auto& [name, value] : req.headers) {
    if (name != "prefer") continue;
    for (const auto& item : SplitPrefer(value)) {
      auto eq = item.find('=');
      std::string key = ToLower(Trim(std::string_view(item).substr(0, eq)));
      std::string val = eq == std::string::npos ? "" : std::string(Trim(std::string_view(item).substr(eq + 1)));
      if (val.size() >= 2 && val.front() == '"' && val.back() == '"') val = val.substr(1, val.size() - 2);
      if (key == "return" && val == "representation")
        p.return_representation = true;
      else if (key == "odata.maxpagesize") {
        int n = 0;
        auto r = std::from_chars(val.data(), val.data() + val.size(), n);
        if (r.ec == std::errc() && r.ptr == val.data() + val.size() && n > 0) p.max_page_size = n;
      } else if (key == "odata.track-changes")
        p.track_changes = true;
      else if (key == "odata.continue-on-error")
        p.continue_on_error = true;
      else if (key == "odata.include-annotations") {
        p.annotations_raw = val;
        for (auto a : Split(val, ',')) {
          auto t = Trim(a);
          if (!t.empty() && t.front() != '-') p.annotations.emplace_back(t);
        }
      }
    }
  }
  return p;
}

}  // namespace tributary::odata
