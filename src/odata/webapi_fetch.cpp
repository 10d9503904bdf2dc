// FetchXML (?fetchXml=) and $apply queries of the Web API.

#include "tributary/odata/errors.h"
#include "webapi_internal.h"

namespace tributary::odata {

void WebApi::FetchXml(CallPtr c, const catalog::Table&) {
  c->Fail(Status(Code::kUnimplemented, "fetchXml queries are not available in this version of Tributary.",
                 err::kNotSupported));
}

void WebApi::Apply(CallPtr c, const catalog::Table&) {
  c->Fail(QueryError("The query parameter $apply is not supported by this server yet."));
}

}  // namespace tributary::odata
