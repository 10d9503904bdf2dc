#pragma once
// The organization service: Create/Retrieve/Update/Upsert/Delete/RetrieveMultiple on the tables of
// one environment, with the platform's rules (system columns, validation, cascades), each write in
// one transaction of the store. Protocol-neutral: the Web API (odata/) and other front ends call it.
//
// Threading: reads run on the calling thread with a pooled read connection. Writes run on the
// store's writer thread and complete through the callback after the commit is durable; the
// callback runs on the writer thread and must only hand the result off.

#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "tributary/base/time.h"
#include "tributary/catalog/catalog.h"
#include "tributary/catalog/schema.h"
#include "tributary/data/value.h"
#include "tributary/security/principal.h"
#include "tributary/storage/engine.h"

namespace tributary::data {

// Who is calling. Filled by the server from the validated token.
struct CallerContext {
  Guid user_id;
  Guid business_unit_id;
  // The user's evaluated rights; null for the platform itself (bootstrap, background work), which
  // passes every check. Every request from outside carries one.
  security::PrincipalPtr principal;
  // When impersonating (CallerObjectId / MSCRMCallerID): the real caller; nil otherwise.
  Guid initiating_user_id;
};

// Identity of the environment (root business unit, organization, base currency, bootstrap user).
struct EnvironmentIds {
  Guid organization_id;
  Guid root_business_unit_id;
  Guid base_currency_id;
  Guid admin_user_id;
};

enum class UpsertMode : uint8_t {
  kUpsert,      // PATCH without preconditions: update if present, else create
  kUpdateOnly,  // If-Match: * (or an ETag): 404 when missing
  kCreateOnly,  // If-None-Match: *: 412 when present
};

struct WriteResult {
  Guid id;
  bool created = false;
};

// Bulk messages (CreateMultiple, UpdateMultiple, UpsertMultiple, DeleteMultiple).
enum class BulkOperation : uint8_t { kCreate, kUpdate, kUpsert, kDelete };

struct BulkItem {
  EntityInput input;  // the target's values (input.table is the bulk table)
  RecordKey key;      // update/upsert/delete: the record; create: an optional id (key.id)
};

struct PageRequest {
  int page_size = 5000;   // ≤ 5000
  std::string skiptoken;  // from a previous page's next link ("" for the first page)
  bool count = false;     // also count matching rows (capped at 5000)
};

struct Page {
  std::vector<Entity> rows;
  std::optional<int64_t> count;  // when requested
  bool count_limit_exceeded = false;
  std::string next_skiptoken;  // empty on the last page
};

// Thread-safe holder of the current catalog snapshot.
class CatalogHolder {
 public:
  catalog::CatalogPtr Get() const {
    std::lock_guard lock(mu_);
    return current_;
  }
  void Set(catalog::CatalogPtr c) {
    std::lock_guard lock(mu_);
    current_ = std::move(c);
  }

 private:
  mutable std::mutex mu_;
  catalog::CatalogPtr current_;
};

template <typename T>
using Done = std::function<void(Result<T>)>;

class WriteScope;

class OrganizationService {
 public:
  OrganizationService(storage::Engine& engine, CatalogHolder& catalog, const Clock& clock, EnvironmentIds ids);
  ~OrganizationService();

  void Create(const CallerContext& caller, EntityInput input, std::optional<Guid> id, Done<WriteResult> done);
  // Update and upsert. `if_match_version` set → optimistic concurrency (412 on mismatch).
  void Upsert(const CallerContext& caller, EntityInput input, RecordKey key, UpsertMode mode,
              std::optional<int64_t> if_match_version, Done<WriteResult> done);
  void Delete(const CallerContext& caller, const catalog::Table& table, RecordKey key,
              std::optional<int64_t> if_match_version, Done<Guid> done);
  // Runs every item through the same pipeline as the single operation, all in one transaction:
  // any failure undoes the whole call and names the failing item ("Targets[3]: …"). Answers the
  // ids of the records, in item order.
  void ExecuteBulk(const CallerContext& caller, const catalog::Table& table, BulkOperation op,
                   std::vector<BulkItem> items, Done<std::vector<Guid>> done);
  // Runs `fn` as one job on the writer thread: everything it does through the scope commits
  // together, or not at all when it returns an error. `done` runs on the writer thread after
  // the commit is durable (or with the error).
  void Transact(const CallerContext& caller, std::function<Status(WriteScope&)> fn, std::function<void(Status)> done);
  // Sets (target set) or clears (nullopt) a single-valued navigation of a record.
  void SetReference(const CallerContext& caller, const catalog::Table& table, RecordKey key,
                    const catalog::NavProperty& nav, std::optional<BindTarget> target, Done<Guid> done);
  // Adds or removes a record of a collection-valued navigation (1:N or N:N).
  void Associate(const CallerContext& caller, const catalog::Table& table, RecordKey key,
                 const catalog::NavProperty& nav, BindTarget related, bool associate, Done<Guid> done);

  Result<Entity> Retrieve(const CallerContext& caller, const catalog::Table& table, const RecordKey& key,
                          const QueryOptions& options);
  Result<Page> RetrieveMultiple(const CallerContext& caller, const catalog::Table& table, const QueryOptions& options,
                                const PageRequest& page);
  // Rows of a related collection of one record (GET accounts(id)/contact_customer_accounts).
  Result<Page> RetrieveRelated(const CallerContext& caller, const catalog::Table& table, const RecordKey& key,
                               const catalog::NavProperty& nav, const QueryOptions& options, const PageRequest& page);
  Result<int64_t> Count(const CallerContext& caller, const catalog::Table& table, const Expr* filter);
  // Every row of a table, uncapped (RetrieveTotalRecordCount).
  Result<int64_t> CountAll(const CallerContext& caller, const catalog::Table& table);
  // The primary name column value of a record (for display annotations); nullopt when none.
  std::optional<std::string> PrimaryName(const std::string& table, const Guid& id);

  catalog::CatalogPtr catalog() const { return catalog_.Get(); }
  const EnvironmentIds& ids() const { return ids_; }
  storage::Engine& engine() { return engine_; }

  // Runs on the writer thread before each commit (persists the version counter).
  Status PreCommit(storage::Connection& c);

  // --- Security reads (security_ops.cpp) ---
  // The rights `who` has on a record (RetrievePrincipalAccess): each verb whose privilege is held
  // and whose row check passes. `caller` must be able to read the record.
  Result<uint32_t> PrincipalAccess(const CallerContext& caller, const CallerContext& who, const catalog::Table& table,
                                   const Guid& record);
  struct SharedAccess {
    EntityRef principal;
    uint32_t rights = 0;
  };
  // The shares of a record (RetrieveSharedPrincipalsAndAccess); `caller` must be able to read it.
  Result<std::vector<SharedAccess>> SharedPrincipals(const CallerContext& caller, const catalog::Table& table,
                                                     const Guid& record);
  struct RolePrivilege {
    Guid privilege_id;
    std::string name;
    security::Depth depth = security::Depth::kNone;
    Guid business_unit_id;
  };
  // The privileges of the given roles, the deepest depth per privilege (RetrieveRolePrivilegesRole,
  // RetrieveUserPrivileges), ordered by name.
  Result<std::vector<RolePrivilege>> RolePrivileges(const std::vector<Guid>& roles);
  // The roles of a user: held directly and through the user's teams.
  Result<std::vector<Guid>> UserRoles(const Guid& user);

  // The principals cache, told after every committed change to a security table.
  void SetSecurityCache(security::SecurityCache* cache) { security_ = cache; }

 private:
  class Writer;
  security::SecurityCache* security_ = nullptr;
  storage::Engine& engine_;
  CatalogHolder& catalog_;
  const Clock& clock_;
  EnvironmentIds ids_;
  // The row version counter: touched only on the writer thread.
  int64_t next_version_ = 1;
  int64_t persisted_version_ = 0;
  // organization.isauditenabled as last read (nullopt: read it again); writer thread only (audit.h).
  std::optional<bool> org_audit_enabled_;
  friend class Writer;
  friend class WriteScope;
  friend class Environment;
};

// The write operations of one transaction. Lives on the store's writer thread inside
// OrganizationService::Transact; every operation runs through the same pipeline as the single
// asynchronous calls below (validation, system columns, cascades). A failed operation leaves its
// own changes half done: the caller must then fail the transaction (return the error from the
// Transact function), which undoes every operation of the scope.
class WriteScope {
 public:
  Result<WriteResult> Create(const EntityInput& input, std::optional<Guid> id);
  Result<WriteResult> Upsert(const EntityInput& input, const RecordKey& key, UpsertMode mode,
                             std::optional<int64_t> if_match_version);
  Result<Guid> Delete(const catalog::Table& table, const RecordKey& key, std::optional<int64_t> if_match_version);
  // Bulk messages: any failure names the failing item ("Targets[3]: …").
  Result<std::vector<Guid>> Bulk(const catalog::Table& table, BulkOperation op, const std::vector<BulkItem>& items);
  Result<Guid> SetReference(const catalog::Table& table, const RecordKey& key, const catalog::NavProperty& nav,
                            const std::optional<BindTarget>& target);
  Result<Guid> Associate(const catalog::Table& table, const RecordKey& key, const catalog::NavProperty& nav,
                         const BindTarget& related, bool associate);
  // Changes the owner of a record (Assign): needs Assign and Write on the record; the owning
  // business unit follows the new owner's.
  Result<Guid> Assign(const catalog::Table& table, const RecordKey& key, const EntityRef& owner);
  // Record shares (GrantAccess adds rights to a principal's share, ModifyAccess replaces them,
  // RevokeAccess removes the share); the caller needs Share on the record.
  Status Share(const catalog::Table& table, const Guid& record, const EntityRef& principal, uint32_t rights,
               bool replace);
  Status Unshare(const catalog::Table& table, const Guid& record, const EntityRef& principal);
  // Tells the principals cache, after the commit, that security data changed (for raw writes
  // through connection() to roles, teams or privileges).
  void SecurityChanged();
  // Fails unless the caller may do `verb` on the record (privilege, then row access).
  Status CheckAccess(const catalog::Table& table, const Guid& record, security::Verb verb);
  const CallerContext& caller() const;
  // The transaction's connection (reads see the scope's own uncommitted writes).
  storage::Connection& connection();

 private:
  friend class OrganizationService;
  explicit WriteScope(OrganizationService::Writer& w) : w_(w) {}
  OrganizationService::Writer& w_;
};

// Translation of query expressions into SQL (exposed for unit tests).
struct SqlFragment {
  std::string sql;
  std::vector<storage::SqlValue> params;
};
// Binds `expr` against `table` (alias `alias` in the SQL) and appends the SQL condition. `now` is
// the instant the relative date functions (Today, LastXDays, …) count from: pass the service
// clock's time; without it the system clock is read.
Status AppendFilterSql(const catalog::Catalog& cat, const catalog::Table& table, const Expr& expr,
                       std::string_view alias, SqlFragment& out, const CallerContext* caller = nullptr,
                       std::optional<Timestamp> now = std::nullopt);

}  // namespace tributary::data
