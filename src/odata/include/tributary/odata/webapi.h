#pragma once
// The Dataverse Web API (OData v4) at /api/data/vX.Y/: routes a request to the organization
// service and writes the answer in the shapes Dataverse clients parse.
//
// Threading: Handle() may be called from any thread. Reads are answered on the calling thread.
// Writes complete on the store's writer thread; the handler then hops to `post` (the server's
// I/O executor) to build the response, so the writer thread is never held by response work.
// `respond` is called exactly once.

#include <functional>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include "tributary/base/json.h"

#include "tributary/data/environment.h"
#include "tributary/odata/http.h"

namespace tributary::odata {

struct WriteOutcome;  // webapi_internal.h
struct OperationDef;  // operations.h
struct Segment;       // uri_parser.h
enum class OperationBinding : uint8_t;

class WebApi {
 public:
  using Post = std::function<void(std::function<void()>)>;
  WebApi(data::Environment& env, Post post);
  ~WebApi();

  void Handle(const data::CallerContext& caller, HttpRequest req, std::function<void(HttpResponse)> respond);

  struct Call;       // one request in flight (defined in webapi_internal.h)
  struct ChangeSet;  // a $batch change set being executed (defined in webapi_internal.h)
  struct BatchRun;   // a $batch request being executed (defined in batch_exec.cpp)

 private:
  using CallPtr = std::shared_ptr<Call>;
  // Parses the request line into a Call; answers and returns null when it is malformed.
  CallPtr Prepare(const data::CallerContext& caller, HttpRequest req, std::function<void(HttpResponse)> respond);
  void Route(CallPtr c);
  // Runs a write: in a transaction of its own, or in the change set the call belongs to; then `answer`.
  void Submit(CallPtr c, std::function<Result<WriteOutcome>(data::WriteScope&)> op,
              std::function<void(const WriteOutcome&)> answer);
  void Create(CallPtr c, const catalog::Table& table);
  void Retrieve(CallPtr c, const catalog::Table& table, const data::RecordKey& key);
  void Upsert(CallPtr c, const catalog::Table& table, data::RecordKey key);
  void Delete(CallPtr c, const catalog::Table& table, data::RecordKey key);
  // Metadata writes (webapi_metadata.cpp): POST/PUT/DELETE on EntityDefinitions (with Attributes
  // and Keys), RelationshipDefinitions and GlobalOptionSetDefinitions, and the actions
  // Insert/Update/DeleteOptionValue; each applied as a schema document, live at once.
  static bool IsMetadataWrite(const Call& c);
  void MetadataWrite(CallPtr c);
  // GET RetrieveTotalRecordCount(EntityNames=…), GET InitializeFrom(EntityMoniker=…,TargetEntityName=…,…).
  void UnboundFunction(CallPtr c, std::string_view name);
  // POST {set}/Microsoft.Dynamics.CRM.{CreateMultiple|UpdateMultiple|UpsertMultiple|DeleteMultiple}.
  void BulkAction(CallPtr c, const catalog::Table& table, std::string_view action, const Json& body);

  // Functions and actions (webapi_operations.cpp): built-ins registered at construction, custom
  // APIs read from customapi rows when called.
  struct OperationArgs;
  struct Operation;
  void RegisterOperations();
  void RegisterSecurityOperations();  // webapi_security.cpp
  std::shared_ptr<const Operation> FindOperation(std::string_view name, OperationBinding binding,
                                                 const catalog::Table* table, CallPtr c);
  Result<std::optional<OperationDef>> LoadCustomApi(const Call& c, std::string_view name);
  std::vector<OperationDef> OperationsForMetadata(const Call& c);
  void Invoke(CallPtr c, const Operation& op, const Segment& seg, const catalog::Table* table,
              std::optional<data::RecordKey> key);
  void RunCustomApi(CallPtr c, const OperationArgs& a);
  void QualifyLead(CallPtr c, const OperationArgs& a);
  // /set(key)/property, /set(key)/nav[/$ref|/$count|/$value], /set(key)/nav(key2)/$ref.
  void Member(CallPtr c, const catalog::Table& table, data::RecordKey key);
  // GET {set}?fetchXml=… (webapi_fetch.cpp).
  void FetchXml(CallPtr c, const catalog::Table& table);
  // GET {set}?$apply=… (webapi_fetch.cpp).
  void Apply(CallPtr c, const catalog::Table& table);
  // /set(key)/filecolumn[/$value]: upload (single or chunked), download with Range, delete (webapi_files.cpp).
  void FileColumn(CallPtr c, const catalog::Table& table, data::RecordKey key, const catalog::Column& col);
  // POST $batch (batch_exec.cpp): runs the parts in order, each change set in one transaction.
  void Batch(CallPtr c);
  void RunBatchItem(std::shared_ptr<BatchRun> run);
  void RunChangeSet(std::shared_ptr<BatchRun> run);
  void FinishBatch(std::shared_ptr<BatchRun> run);
  // Answers a write with 204 + OData-EntityId, or with the record when return=representation.
  void AnswerWrite(CallPtr c, const catalog::Table& table, const Guid& id, bool created);
  HttpResponse WriteCollection(Call& c, const data::Page& page, const std::string& context_set);
  // Runs `fn` on the I/O executor (used after a write completes on the writer thread).
  void Hop(std::function<void()> fn) { post_(std::move(fn)); }
  data::Environment& env_;
  Post post_;
  std::vector<std::shared_ptr<const Operation>> operations_;
};

}  // namespace tributary::odata
