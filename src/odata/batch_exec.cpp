// $batch execution: runs the parts of a parsed multipart batch (batch.h) through the same routes as
// single requests and writes the multipart answer.
//
// - Parts outside change sets run one after another, each as its own request.
// - A change set runs as ONE job on the store's writer thread: every request of the set is parsed
//   and executed there against a shared data::WriteScope, so the set commits together or not at
//   all (a failing request returns its error from the job, which rolls the whole set back). The
//   answers (204 + OData-EntityId, or the record for return=representation) are built after the
//   commit, on the I/O executor.
// - `$n` refers to the record written by the change set's request with Content-ID n, in the
//   request line (`PATCH $1`, `PUT $1/primarycontactid/$ref`) and in body references
//   (`"x@odata.bind": "$1"`, `{"@odata.id": "$1"}`).
// - Without `Prefer: odata.continue-on-error` the batch stops at the first failed part and answers
//   400 with the parts so far; with it, every part runs and the batch answers 200.

#include <map>

#include "batch.h"
#include "tributary/base/json.h"
#include "tributary/base/strings.h"
#include "tributary/odata/errors.h"
#include "webapi_internal.h"

namespace tributary::odata {

struct WebApi::BatchRun {
  CallPtr outer;
  std::vector<BatchItem> items;
  std::vector<BatchResultItem> results;
  std::string prefix;  // "/api/data/v9.2/"
  bool continue_on_error = false;
  bool failed = false;
};

namespace {

using ContentIds = std::map<std::string, std::string>;  // Content-ID → "/api/data/v9.2/accounts(<id>)"

Status UnknownContentId(std::string_view ref) {
  return PayloadError("Content-ID Reference: '" + std::string(ref) + "' does not exist in the batch context.");
}

// "$1" or "$1/rest": the referenced URL path plus the rest; nullopt when `s` is not a reference.
Result<std::optional<std::string>> ResolveReference(std::string_view s, const ContentIds& ids) {
  if (s.empty() || s[0] != '$') return std::optional<std::string>();
  size_t end = s.find_first_of("/?");
  std::string_view token = s.substr(1, end == std::string_view::npos ? std::string_view::npos : end - 1);
  // "$batch", "$metadata" …: not references.
  if (token.empty() || token == "batch" || token == "metadata") return std::optional<std::string>();
  auto it = ids.find(std::string(token));
  if (it == ids.end()) return UnknownContentId(s.substr(0, end));
  return std::optional<std::string>(it->second +
                                    std::string(end == std::string_view::npos ? std::string_view() : s.substr(end)));
}

// Rewrites `$n` values of @odata.bind / @odata.id members (also in arrays and nested deep inserts).
Result<Json> ResolveBodyReferences(const Json& j, const ContentIds& ids, bool reference_value) {
  if (j.is_string() && reference_value) {
    ASSIGN_OR_RETURN(auto r, ResolveReference(j.as_string(), ids));
    return r ? Json::MakeString(*r) : j;
  }
  if (j.is_array()) {
    std::vector<Json> out;
    for (const auto& e : j.as_array()) {
      ASSIGN_OR_RETURN(Json v, ResolveBodyReferences(e, ids, reference_value));
      out.push_back(std::move(v));
    }
    return Json::MakeArray(std::move(out));
  }
  if (j.is_object()) {
    std::vector<Json::Member> out;
    for (const auto& [k, v] : j.as_object()) {
      bool ref = k.ends_with("@odata.bind") || k == "@odata.id";
      ASSIGN_OR_RETURN(Json nv, ResolveBodyReferences(v, ids, ref));
      out.emplace_back(k, std::move(nv));
    }
    return Json::MakeObject(std::move(out));
  }
  return j;
}

// The request of one part, ready for WebApi::Prepare: target as an absolute path, `$n` resolved.
Result<HttpRequest> SubRequest(const WebApi::BatchRun& run, const BatchOperation& op, const ContentIds& ids) {
  HttpRequest req = op.request;
  req.base_url = run.outer->http.base_url;
  std::string_view t = req.target;
  std::string target;
  if (StartsWithIgnoreCase(t, "http://") || StartsWithIgnoreCase(t, "https://")) {
    size_t slash = t.find('/', t.find("//") + 2);
    target = slash == std::string_view::npos ? "/" : std::string(t.substr(slash));
  } else if (!t.empty() && t[0] == '$') {
    ASSIGN_OR_RETURN(auto r, ResolveReference(t, ids));
    target = r ? *r : run.prefix + std::string(t);
  } else if (!t.empty() && t[0] == '/') {
    target = std::string(t);
  } else if (t.rfind("api/data/v", 0) == 0) {
    target = "/" + std::string(t);
  } else {
    target = run.prefix + std::string(t);
  }
  req.target = std::move(target);
  if (req.body.find("\"$") != std::string::npos && req.method != "GET") {
    // Only rewrite bodies that are JSON and may hold references; others go through untouched.
    if (auto j = ParseJson(req.body); j.ok()) {
      ASSIGN_OR_RETURN(Json resolved, ResolveBodyReferences(*j, ids, false));
      req.body = resolved.Dump();
    }
  }
  return req;
}

// Dataverse adds Location beside OData-EntityId in batch parts.
const std::string* ResponseHeader(const HttpResponse& r, std::string_view name) {
  for (const auto& [k, v] : r.headers)
    if (EqualsIgnoreCase(k, name)) return &v;
  return nullptr;
}

void AddLocation(HttpResponse& r) {
  const std::string* id = ResponseHeader(r, "OData-EntityId");
  if (id && !ResponseHeader(r, "Location")) r.Set("Location", std::string(*id));
}

bool Failed(const HttpResponse& r) { return r.status >= 400; }

}  // namespace

void WebApi::Batch(CallPtr c) {
  const std::string* ct = c->http.Header("content-type");
  if (!ct || !StartsWithIgnoreCase(Trim(*ct), "multipart/mixed"))
    return c->Fail(PayloadError("A $batch request needs Content-Type: multipart/mixed; boundary=…"));
  BatchLimits limits;
  auto items = ParseBatch(*ct, c->http.body, limits);
  if (!items.ok()) return c->Fail(items.status());
  auto run = std::make_shared<BatchRun>();
  run->outer = c;
  run->items = std::move(items).value();
  run->continue_on_error = c->prefs.continue_on_error;
  run->prefix = c->root.substr(c->http.base_url.size());
  run->results.reserve(run->items.size());
  RunBatchItem(std::move(run));
}

void WebApi::RunBatchItem(std::shared_ptr<BatchRun> run) {
  size_t i = run->results.size();
  if (i == run->items.size() || (run->failed && !run->continue_on_error)) return FinishBatch(std::move(run));
  const BatchItem& item = run->items[i];
  run->results.push_back(BatchResultItem{item.is_changeset, {}});
  if (item.is_changeset) return RunChangeSet(std::move(run));
  const BatchOperation& op = item.operations[0];
  // Each part answers once; the next part starts from the I/O executor, never from inside the
  // previous part's call stack.
  auto record = [this, run, i, content_id = op.content_id](HttpResponse r) {
    AddLocation(r);
    if (Failed(r)) run->failed = true;
    run->results[i].results.push_back(BatchResult{content_id, std::move(r)});
    Hop([this, run]() { RunBatchItem(run); });
  };
  auto req = SubRequest(*run, op, {});
  if (!req.ok()) return record(ErrorResponse(req.status()));
  CallPtr call = Prepare(run->outer->caller, std::move(req).value(), record);
  if (!call) return;
  if (!call->segs.empty() && call->segs[0].name == "$batch")
    return call->Fail(InvalidArgument("A $batch request cannot contain another $batch."));
  Route(std::move(call));
}

namespace {

// The requests that may run inside a change set: writes to entity sets. Everything else (reads,
// metadata writes, functions) needs its own request.
Status CheckChangeSetRequest(const WebApi::Call& c) {
  const std::string& m = c.http.method;
  if (m == "GET" || m == "HEAD") return InvalidArgument("GET requests are not allowed inside a change set.");
  if (c.segs.empty() || !c.cat->FindBySetName(c.segs[0].name))
    return InvalidArgument("Only writes to entity sets are allowed inside a change set; '" +
                           (c.segs.empty() ? std::string("/") : c.segs[0].name) + "' is not one.");
  return Status::Ok();
}

}  // namespace

void WebApi::RunChangeSet(std::shared_ptr<BatchRun> run) {
  size_t index = run->results.size() - 1;
  struct State {
    std::vector<std::optional<HttpResponse>> responses;  // by operation
    std::vector<ChangeSet::Pending> pending;
    std::vector<size_t> pending_op;  // operation index of each pending answer
    std::optional<size_t> failed_op;
  };
  auto state = std::make_shared<State>();
  const BatchItem& item = run->items[index];
  state->responses.resize(item.operations.size());
  env_.service().Transact(
      run->outer->caller,
      [this, run, state, &item](data::WriteScope& scope) -> Status {
        ChangeSet cs;
        cs.scope = &scope;
        ContentIds ids;
        for (size_t j = 0; j < item.operations.size(); ++j) {
          const BatchOperation& op = item.operations[j];
          auto respond = [state, j](HttpResponse r) { state->responses[j] = std::move(r); };
          size_t before = cs.pending.size();
          auto req = SubRequest(*run, op, ids);
          if (!req.ok()) {
            respond(ErrorResponse(req.status()));
          } else if (CallPtr call = Prepare(run->outer->caller, std::move(req).value(), respond)) {
            call->changeset = &cs;
            if (Status s = CheckChangeSetRequest(*call); !s.ok())
              call->Fail(s);
            else
              Route(call);
            call->changeset = nullptr;
          }
          auto& answered = state->responses[j];
          if (answered && Failed(*answered)) {
            state->failed_op = j;
            return Status(Code::kInvalidArgument, "change set failed");
          }
          if (cs.pending.size() == before + 1) {
            state->pending_op.push_back(j);
            const WriteOutcome& o = cs.pending.back().outcome;
            if (!op.content_id.empty() && o.table)
              ids[op.content_id] = run->prefix + o.table->entity_set_name + "(" + o.id.ToString() + ")";
          } else if (!answered) {
            state->responses[j] = ErrorResponse(Internal("The request did not complete inside the change set."));
            state->failed_op = j;
            return Status(Code::kInvalidArgument, "change set failed");
          }
        }
        state->pending = std::move(cs.pending);
        return Status::Ok();
      },
      [this, run, state, index](Status s) {
        Hop([this, run, state, index, s = std::move(s)]() {
          const BatchItem& item = run->items[index];
          auto& out = run->results[index].results;
          if (!s.ok()) {
            // Nothing of the set was committed: answer with the failing request's error.
            run->failed = true;
            size_t j = state->failed_op.value_or(0);
            HttpResponse r =
                state->failed_op && state->responses[j] ? std::move(*state->responses[j]) : ErrorResponse(s);
            out.push_back(BatchResult{item.operations.empty() ? "" : item.operations[j].content_id, std::move(r)});
            return RunBatchItem(run);
          }
          // Committed: build each answer (they may read the records back for return=representation).
          for (size_t k = 0; k < state->pending.size(); ++k) state->pending[k].answer(state->pending[k].outcome);
          for (size_t j = 0; j < item.operations.size(); ++j) {
            HttpResponse r = state->responses[j] ? std::move(*state->responses[j]) : NoContent();
            AddLocation(r);
            if (Failed(r)) run->failed = true;
            out.push_back(BatchResult{item.operations[j].content_id, std::move(r)});
          }
          RunBatchItem(run);
        });
      });
}

void WebApi::FinishBatch(std::shared_ptr<BatchRun> run) {
  HttpResponse r;
  std::string content_type;
  r.body = WriteBatchResponse(run->results, content_type);
  r.status = run->failed && !run->continue_on_error ? 400 : 200;
  r.Set("Content-Type", content_type);
  AddODataHeaders(r);
  if (run->continue_on_error) r.Set("Preference-Applied", "odata.continue-on-error");
  run->outer->Reply(std::move(r));
}

}  // namespace tributary::odata
