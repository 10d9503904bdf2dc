#pragma once
// An environment: one data folder with its store, catalog and organization service.
//
// Open() on an empty folder creates the environment: the standard tables, an organization, the
// root business unit, the base currency, the System Administrator role and a bootstrap
// application user whose OAuth client credentials come from the options (or are generated and
// written to DIR/bootstrap-credentials.json with mode 0600).

#include <memory>
#include <optional>
#include <string>

#include "tributary/catalog/schema.h"
#include "tributary/data/service.h"
#include "tributary/storage/engine.h"

namespace tributary::data {

struct EnvironmentOptions {
  std::string data_dir;
  std::string bootstrap_client_id;      // empty: generate on first start
  std::string bootstrap_client_secret;  // empty: generate on first start
  const Clock* clock = nullptr;         // default: the system clock
  int read_connections = 8;
};

struct Credential {
  std::string client_id;
  std::string secret_hash;  // argon2id
  Guid user_id;
};

class Environment {
 public:
  static Result<std::unique_ptr<Environment>> Open(const EnvironmentOptions& options);
  ~Environment();

  OrganizationService& service() { return *service_; }
  CatalogHolder& catalog() { return catalog_; }
  storage::Engine& engine() { return *engine_; }
  const EnvironmentIds& ids() const { return ids_; }
  const Clock& clock() const { return *clock_; }
  // The HS256 key for access tokens (raw bytes). Never logged.
  const std::string& signing_key() const { return signing_key_; }
  // True when Open() created the environment.
  bool created() const { return created_; }

  // Validates and applies a schema document (additions, updates and drops): persists it in the
  // schema log, changes the SQL tables/columns/indexes to match (creating, dropping, checking data
  // for new keys and shorter strings) and swaps in the new catalog, all in one write job: all or
  // nothing. Thread-safe; blocks until the change is durable.
  Status ApplySchema(const catalog::SchemaDoc& doc, std::string_view source_text);

  Result<std::optional<Credential>> FindCredential(std::string_view client_id);
  // The caller context of a systemuser: its business unit and evaluated rights (principal).
  // Unauthenticated when the user does not exist or is disabled.
  Result<CallerContext> ResolveUser(const Guid& user_id);
  // The systemuser bound to an Entra application (applicationid) or to an Entra user or service
  // principal (azureactivedirectoryobjectid); nullopt when there is none. Not cached.
  Result<std::optional<Guid>> FindUserByApplicationId(const Guid& application_id);
  Result<std::optional<Guid>> FindUserByObjectId(const Guid& object_id);
  // The principals cache (invalidated by the organization service on security changes).
  security::SecurityCache& security() { return *security_; }

  void Shutdown();

 private:
  Environment() = default;
  Status Load();
  Status Bootstrap(const EnvironmentOptions& options);
  Status EnsureCredential(const EnvironmentOptions& options);

  std::string dir_;
  const Clock* clock_ = nullptr;
  std::unique_ptr<storage::Engine> engine_;
  CatalogHolder catalog_;
  catalog::CatalogBuilder builder_;
  std::unique_ptr<OrganizationService> service_;
  EnvironmentIds ids_;
  std::string signing_key_;
  bool created_ = false;
  std::mutex schema_mu_;  // serializes ApplySchema (builder_ and the catalog swap)
  std::unique_ptr<security::SecurityCache> security_;
};

}  // namespace tributary::data
