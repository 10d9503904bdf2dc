#pragma once
// The one place where a Status becomes an HTTP status and a Dataverse error body.

#include "tributary/base/status.h"
#include "tributary/odata/http.h"

namespace tributary::odata {

int HttpStatusFor(const Status& s);
// {"error":{"code":"0x80040217","message":"…"}} with the right HTTP status and OData headers.
HttpResponse ErrorResponse(const Status& s);
// Headers every Web API response carries (OData-Version, …).
void AddODataHeaders(HttpResponse& r);
constexpr const char* kJsonContentType = "application/json; odata.metadata=minimal";

}  // namespace tributary::odata
