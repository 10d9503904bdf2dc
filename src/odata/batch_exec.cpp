// $batch execution.

#include "tributary/odata/errors.h"
#include "webapi_internal.h"

namespace tributary::odata {

struct WebApi::ChangeSet {};

void WebApi::Batch(CallPtr c) {
  c->Fail(Status(Code::kUnimplemented, "$batch is not available in this version of Tributary.", err::kNotSupported));
}

}  // namespace tributary::odata
