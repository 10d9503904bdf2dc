#include "tributary/odata/errors.h"

#include <cstdio>

#include "tributary/base/json.h"

namespace tributary::odata {

int HttpStatusFor(const Status& s) {
  switch (s.code()) {
    case Code::kOk:
      return 200;
    case Code::kInvalidArgument:
      return 400;
    case Code::kNotFound:
      return 404;
    case Code::kAlreadyExists:
      return 412;
    case Code::kFailedPrecondition:
      return 412;
    case Code::kUnauthenticated:
      return 401;
    case Code::kPermissionDenied:
      return 403;
    case Code::kMethodNotAllowed:
      return 405;
    case Code::kPayloadTooLarge:
      return 413;
    case Code::kResourceExhausted:
      return 429;
    case Code::kUnimplemented:
      return 501;
    case Code::kUnavailable:
      return 503;
    case Code::kInternal:
      return 500;
  }
  return 500;
}

namespace {

uint32_t DefaultCode(Code c) {
  switch (c) {
    case Code::kNotFound:
      return err::kObjectDoesNotExist;
    case Code::kAlreadyExists:
      return err::kDuplicateRecord;
    case Code::kFailedPrecondition:
      return err::kConcurrencyVersionMismatch;
    case Code::kUnauthenticated:
      return err::kUnauthorized;
    case Code::kPermissionDenied:
      return err::kPrivilegeDenied;
    case Code::kMethodNotAllowed:
      return err::kNotSupported;
    case Code::kPayloadTooLarge:
      return err::kRequestTooLarge;
    case Code::kInternal:
      return err::kInternalError;
    default:
      return err::kInvalidArgument;
  }
}

}  // namespace

void AddODataHeaders(HttpResponse& r) { r.Set("OData-Version", "4.0"); }

HttpResponse ErrorResponse(const Status& s) {
  HttpResponse r;
  r.status = HttpStatusFor(s);
  uint32_t code = s.error_code() ? s.error_code() : DefaultCode(s.code());
  char hex[16];
  std::snprintf(hex, sizeof hex, "0x%08x", code);
  JsonWriter w(r.body);
  w.BeginObject();
  w.Key("error");
  w.BeginObject();
  w.Key("code");
  w.String(hex);
  w.Key("message");
  w.String(s.code() == Code::kInternal ? "An unexpected error occurred." : s.message());
  w.EndObject();
  w.EndObject();
  r.Set("Content-Type", kJsonContentType);
  AddODataHeaders(r);
  return r;
}

}  // namespace tributary::odata
