// libFuzzer target for the $apply parser (src/odata/apply_parser.h). The input must never crash,
// hang or fail with anything but a QueryError with a printable UTF-8 message; a success must give
// a consistent pipeline (aliases and methods set, paths not empty).

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "apply_parser.h"
#include "tributary/base/status.h"
#include "tributary/base/strings.h"

namespace {

[[noreturn]] void Fail(const char* what) {
  std::fprintf(stderr, "apply_fuzz: %s\n", what);
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  static const tributary::odata::AliasMap kAliases = {{"@p1", "'Contoso'"}, {"@p2", "revenue"}};
  auto r = tributary::odata::ParseApply(text, kAliases);
  if (!r.ok()) {
    const auto& s = r.status();
    if (s.code() != tributary::Code::kInvalidArgument || s.error_code() != tributary::err::kQueryError)
      Fail("failed without a QueryError");
    if (s.message().empty() || !tributary::IsUtf8(s.message())) Fail("empty or invalid UTF-8 message");
    return 0;
  }
  for (const auto& p : r->groupby_paths)
    if (p.empty()) Fail("empty groupby path");
  for (const auto& a : r->aggregates) {
    if (a.alias.empty() || a.method.empty()) Fail("aggregate without alias or method");
    if (a.method != "count" && a.path.empty()) Fail("aggregate without a path");
  }
  if (r->groupby && r->groupby_paths.empty()) Fail("groupby without paths");
  return 0;
}
