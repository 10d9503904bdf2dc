// File and image columns of the Web API.

#include "tributary/odata/errors.h"
#include "webapi_internal.h"

namespace tributary::odata {

bool IsFileColumn(const catalog::Column&) { return false; }

void WebApi::FileColumn(CallPtr c, const catalog::Table&, data::RecordKey, const catalog::Column&) {
  c->Fail(
      Status(Code::kUnimplemented, "File columns are not available in this version of Tributary.", err::kNotSupported));
}

}  // namespace tributary::odata
