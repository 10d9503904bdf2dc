#pragma once
// Pieces of the Web API shared by its source files (webapi.cpp routes; batch execution, FetchXML,
// $apply and file columns live in files of their own). Private to the odata module.

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "operations.h"
#include "prefer.h"
#include "serializer.h"
#include "tributary/base/json.h"
#include "tributary/data/query.h"
#include "tributary/odata/errors.h"
#include "tributary/odata/http.h"
#include "tributary/odata/uri_parser.h"
#include "tributary/odata/webapi.h"

namespace tributary::odata {

inline constexpr int kMaxPageSize = 5000;

// What a write produced: the record written (or the first of a bulk call) and, for bulk calls, all ids.
struct WriteOutcome {
  const catalog::Table* table = nullptr;
  Guid id;
  bool created = false;
  std::vector<Guid> ids;
  std::vector<const catalog::Table*> tables;  // per id, when the ids span tables
};
// The transactional part of a write request, run on the writer thread.
using WriteOp = std::function<Result<WriteOutcome>(data::WriteScope&)>;
// Builds the response once the write is durable; runs on the I/O executor.
using WriteAnswer = std::function<void(const WriteOutcome&)>;

// One request in flight.
struct WebApi::Call {
  data::CallerContext caller;
  HttpRequest http;
  std::function<void(HttpResponse)> respond;
  catalog::CatalogPtr cat;
  Preferences prefs;
  std::string root;       // "{base}/api/data/vX.Y/"
  std::string raw_query;  // as received, without '?'
  std::vector<std::pair<std::string, std::string>> query;
  AliasMap aliases;
  std::vector<Segment> segs;
  data::QueryOptions options;
  bool count = false;
  std::string skiptoken;
  bool done = false;
  // Set while the request runs inside a $batch change set (on the writer thread): writes go to
  // the change set's transaction instead of queueing a job of their own.
  WebApi::ChangeSet* changeset = nullptr;

  const std::string* Option(std::string_view name) const {
    for (const auto& [k, v] : query)
      if (k == name) return &v;
    return nullptr;
  }
  void Reply(HttpResponse r) {
    if (done) return;
    done = true;
    r.Set("x-ms-dop-hint", "4");
    respond(std::move(r));
  }
  void Fail(const Status& s) { Reply(ErrorResponse(s)); }
};

// A $batch change set being executed on the writer thread: its requests' writes share `scope`, and
// their answers wait in `pending` until the commit.
struct WebApi::ChangeSet {
  data::WriteScope* scope = nullptr;
  struct Pending {
    std::shared_ptr<Call> call;
    WriteOutcome outcome;
    WriteAnswer answer;
  };
  std::vector<Pending> pending;
};

// A function or action: its signature and implementation (webapi_operations.cpp registers them).
struct WebApi::OperationArgs {
  const catalog::Table* table = nullptr;  // bound table
  std::optional<data::RecordKey> key;     // bound record
  Json params;                            // arguments by name
};

struct WebApi::Operation {
  OperationDef def;
  std::function<void(CallPtr, const OperationArgs&)> run;
};

Status NotFoundSegment(std::string_view seg);
Status MethodNotAllowed(std::string_view method, std::string_view what);
HttpResponse Json200(std::string body, int status = 200);
HttpResponse NoContent();
std::string Etag(int64_t v);
// Parses W/"123" (or "123"); nullopt for anything else.
std::optional<int64_t> ParseEtag(std::string_view s);
// The @odata.context of a record or collection: "{root}$metadata#accounts(name,revenue)[/$entity]".
std::string ContextUrl(const WebApi::Call& c, const std::string& set, bool entity);
SerializeContext MakeSerializeContext(const WebApi::Call& c, data::OrganizationService& svc);
void AddPreferenceApplied(const WebApi::Call& c, HttpResponse& r, bool representation);
// The JSON body of a request (application/json, not empty).
Result<Json> ParseBody(const HttpRequest& req);
// Whether a column holds files or images (routed to WebApi::FileColumn); webapi_files.cpp.
bool IsFileColumn(const catalog::Column& col);

}  // namespace tributary::odata
