#pragma once
// OData 4.0 `$batch` in the multipart/mixed form Dataverse speaks: the request parser and the
// response writer. Pure functions over strings: no I/O, no shared state except the (thread-safe)
// GUID generator, so both are safe to call from any thread.
//
// Request format, client variants and response constraints: the Dataverse Web API wire reference
// (shared/reference/dataverse-webapi.md), §6 and §13.

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "tributary/base/status.h"
#include "tributary/odata/http.h"

namespace tributary::odata {

// One operation inside a batch, as written by the client.
struct BatchOperation {
  // method: upper-case, one of GET HEAD POST PUT PATCH DELETE.
  // target: exactly as on the request line (absolute URL, "/api/data/v9.2/x", "$1/…"), never empty.
  // headers: the HTTP headers after the request line, names lower-case, values trimmed, in order.
  // body: the bytes after the blank line, without the line break that precedes the next delimiter;
  //   cut to Content-Length when that header is present and only white space follows it.
  // base_url: left empty (the caller knows it).
  HttpRequest request;
  std::string content_id;  // Content-ID of the MIME part (or, failing that, of the HTTP headers); may be empty
};

struct BatchItem {
  bool is_changeset = false;
  std::vector<BatchOperation> operations;  // exactly one when !is_changeset; any number (also 0) in a change set
};

struct BatchLimits {
  size_t max_operations = 1000;  // over the whole batch, change set operations included
  size_t max_url = 65536;        // per request target, in bytes
};

// Parses a multipart/mixed $batch body; `content_type` is the request's Content-Type header value.
// Accepts quoted or bare boundaries, CRLF, LF-only and mixed line ends, preamble and epilogue, and
// the variants real clients send (reference §6.1, §13.2, §13.3). A body that is empty or blank is an
// empty batch (zero items), as is one that holds only the close delimiter.
// Fails with code kInvalidArgument and
//  - error_code kPayloadError when the body or Content-Type is malformed (boundary, delimiters,
//    part headers, request line, unknown method, unsupported transfer encoding);
//  - error_code kInvalidArgument when a batch rule is broken (nested change set, GET/HEAD inside a
//    change set, duplicate Content-ID within a change set, more than limits.max_operations
//    operations, a target longer than limits.max_url).
// Messages name the part ("$batch part 3, change set part 2: …") and are printable ASCII.
// Linear in the size of the body; never recurses.
Result<std::vector<BatchItem>> ParseBatch(std::string_view content_type, std::string_view body,
                                          const BatchLimits& limits = {});

// The answer to one operation.
struct BatchResult {
  std::string content_id;  // echoed as the part's Content-ID when not empty
  HttpResponse response;
};

struct BatchResultItem {
  bool is_changeset = false;
  std::vector<BatchResult> results;
};

// Writes the multipart/mixed response body and sets `content_type` to
// "multipart/mixed; boundary=batchresponse_<guid>". Change set items become nested
// multipart/mixed parts with boundary "changesetresponse_<guid>"; a change set item without
// results is left out (an empty multipart cannot be read by the clients). Every line ends in CRLF.
// Each response is written as "HTTP/1.1 <code> <reason>", its headers and its body; a JSON
// Content-Type is rewritten to "application/json; odata.metadata=<level>; odata.streaming=true".
// Header names and values are sanitized: CR and LF become spaces, and '{' '}' become %7B %7D, since
// clients take a part's JSON from its first '{' to its last '}'. A status outside 100..599 is
// written as 500.
std::string WriteBatchResponse(const std::vector<BatchResultItem>& items, std::string& content_type);

// The standard reason phrase of an HTTP status ("No Content"); letters and spaces only, as the
// clients' status-line regex requires. Unknown codes get a generic phrase for their class.
std::string_view ReasonPhrase(int status);

}  // namespace tributary::odata
