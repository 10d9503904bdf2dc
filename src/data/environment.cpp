#include "tributary/data/environment.h"

#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>

#include "internal.h"
#include "tributary/base/json.h"
#include "tributary/security/token.h"

namespace tributary::data {

namespace fs = std::filesystem;

namespace {

constexpr const char* kInternalSchema = R"sql(
CREATE TABLE IF NOT EXISTS _t_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS _t_schema (seq INTEGER PRIMARY KEY, document TEXT NOT NULL, applied_on INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS _t_credential (client_id TEXT PRIMARY KEY, secret_hash TEXT NOT NULL, systemuserid TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS _t_secret (name TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS _t_file (fileid TEXT PRIMARY KEY, tablename TEXT NOT NULL, columnname TEXT NOT NULL,
  recordid TEXT NOT NULL, filename TEXT NOT NULL, mimetype TEXT NOT NULL, size INTEGER NOT NULL, created INTEGER NOT NULL);
CREATE UNIQUE INDEX IF NOT EXISTS _t_file_owner ON _t_file (tablename, recordid, columnname);
CREATE TABLE IF NOT EXISTS _t_file_chunk (fileid TEXT NOT NULL, start INTEGER NOT NULL, bytes BLOB NOT NULL,
  PRIMARY KEY (fileid, start));
CREATE TABLE IF NOT EXISTS _t_file_upload (token TEXT PRIMARY KEY, fileid TEXT NOT NULL, tablename TEXT NOT NULL,
  columnname TEXT NOT NULL, recordid TEXT NOT NULL, filename TEXT NOT NULL, mimetype TEXT NOT NULL, total INTEGER,
  received INTEGER NOT NULL, completed INTEGER NOT NULL, created INTEGER NOT NULL, expires INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS _t_file_upload_record ON _t_file_upload (tablename, recordid);
CREATE INDEX IF NOT EXISTS _t_file_upload_expires ON _t_file_upload (expires);
)sql";

Result<std::optional<std::string>> Meta(storage::Connection& c, std::string_view key) {
  std::optional<std::string> v;
  std::vector<storage::SqlValue> p = {std::string(key)};
  RETURN_IF_ERROR(c.Query("SELECT value FROM _t_meta WHERE key = ?", p, [&](const storage::Row& r) {
    v = std::string(r.Text(0));
    return false;
  }));
  return v;
}

Status SetMeta(storage::Connection& c, std::string_view key, std::string value) {
  std::vector<storage::SqlValue> p = {std::string(key), std::move(value)};
  return c
      .Exec("INSERT INTO _t_meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value", p)
      .status();
}

// Version of the store layout (docs/formats/store.md). A store written by a newer layout is refused.
constexpr int kStoreFormatVersion = 1;

Status WriteBootstrapFile(const std::string& dir, const std::string& id, const std::string& secret) {
  std::string path = dir + "/bootstrap-credentials.json";
  std::string body;
  JsonWriter w(body);
  w.BeginObject();
  w.Key("client_id");
  w.String(id);
  w.Key("client_secret");
  w.String(secret);
  w.Key("token_endpoint");
  w.String("/oauth2/v2.0/token");
  w.EndObject();
  body += "\n";
  {
    std::ofstream f(path, std::ios::trunc);
    if (!f) return Internal("cannot write " + path);
    f << body;
  }
  ::chmod(path.c_str(), 0600);
  return Status::Ok();
}

// Creates a record through the organization service, synchronously (start-up only).
Result<Guid> CreateSync(OrganizationService& svc, const CallerContext& caller, const catalog::Catalog& cat,
                        std::string_view table, std::vector<std::pair<std::string, Value>> fields, Guid id) {
  const catalog::Table* t = cat.FindTable(table);
  if (!t) return Internal("standard table '" + std::string(table) + "' is missing");
  EntityInput in;
  in.table = t;
  for (auto& [name, v] : fields) {
    const catalog::Column* c = t->FindColumn(name);
    if (!c) return Internal("standard column '" + name + "' is missing on " + std::string(table));
    in.fields.push_back(Field{c, std::move(v)});
  }
  std::promise<Result<WriteResult>> p;
  auto f = p.get_future();
  svc.Create(caller, std::move(in), id, [&p](Result<WriteResult> r) { p.set_value(std::move(r)); });
  auto r = f.get();
  if (!r.ok()) return r.status();
  return r->id;
}

}  // namespace

Result<std::unique_ptr<Environment>> Environment::Open(const EnvironmentOptions& options) {
  std::unique_ptr<Environment> env(new Environment());
  env->dir_ = options.data_dir;
  env->clock_ = options.clock ? options.clock : &SystemClock::Get();
  std::error_code ec;
  fs::create_directories(options.data_dir, ec);
  if (ec) return InvalidArgument("cannot create the data folder '" + options.data_dir + "': " + ec.message());
  ASSIGN_OR_RETURN(env->engine_, storage::OpenSqlite({.path = options.data_dir + "/tributary.db",
                                                      .read_connections = options.read_connections}));
  RETURN_IF_ERROR(env->engine_->WriteSync([](storage::Connection& c) { return c.ExecScript(kInternalSchema); }));
  {
    auto r = env->engine_->Read();
    ASSIGN_OR_RETURN(auto format, Meta(*r, "format_version"));
    if (format && std::atoi(format->c_str()) > kStoreFormatVersion)
      return InvalidArgument("the store in " + options.data_dir + " has format version " + *format +
                             "; this build reads version " + std::to_string(kStoreFormatVersion) + " or older");
  }
  RETURN_IF_ERROR(env->Load());
  auto r = env->engine_->Read();
  ASSIGN_OR_RETURN(auto org, Meta(*r, "organization_id"));
  if (!org) {
    RETURN_IF_ERROR(env->Bootstrap(options));
    env->created_ = true;
  } else {
    RETURN_IF_ERROR(env->EnsureCredential(options));
  }
  return env;
}

Environment::~Environment() { Shutdown(); }

void Environment::Shutdown() {
  if (engine_) engine_->Shutdown();
}

Status Environment::Load() {
  ASSIGN_OR_RETURN(catalog::SchemaDoc standard, catalog::ParseSchemaDocument(catalog::StandardSchemaText()));
  RETURN_IF_ERROR(builder_.Apply(standard, true));
  std::vector<std::string> docs;
  {
    auto r = engine_->Read();
    RETURN_IF_ERROR(r->Query("SELECT document FROM _t_schema ORDER BY seq", {}, [&](const storage::Row& row) {
      docs.emplace_back(row.Text(0));
      return true;
    }));
  }
  for (const auto& d : docs) {
    ASSIGN_OR_RETURN(catalog::SchemaDoc doc, catalog::ParseSchemaDocument(d));
    RETURN_IF_ERROR(builder_.Apply(doc));
  }
  ASSIGN_OR_RETURN(catalog::CatalogPtr cat, builder_.Build(static_cast<int64_t>(docs.size()) + 1));
  catalog_.Set(cat);
  // Meta: ids and the version counter.
  auto r = engine_->Read();
  ASSIGN_OR_RETURN(auto version, Meta(*r, "version"));
  int64_t v = version ? std::stoll(*version) : 0;
  auto id = [&](const char* key) -> Guid {
    auto m = Meta(*r, key);
    if (m.ok() && *m) {
      if (auto g = Guid::Parse(**m)) return *g;
    }
    return Guid();
  };
  ids_.organization_id = id("organization_id");
  ids_.root_business_unit_id = id("root_business_unit_id");
  ids_.base_currency_id = id("base_currency_id");
  ids_.admin_user_id = id("admin_user_id");
  service_ = std::make_unique<OrganizationService>(*engine_, catalog_, *clock_, ids_);
  service_->next_version_ = v + 1;
  service_->persisted_version_ = v;
  engine_->SetPreCommitHook([svc = service_.get()](storage::Connection& c) { return svc->PreCommit(c); });
  security_ = std::make_unique<security::SecurityCache>(*engine_);
  service_->SetSecurityCache(security_.get());
  RETURN_IF_ERROR(engine_->WriteSync([cat](storage::Connection& c) {
    RETURN_IF_ERROR(EnsureSqlSchema(c, *cat));
    RETURN_IF_ERROR(SyncPrivileges(c, *cat));
    // Stores created before roles had templates: the bootstrap role is System Administrator.
    std::vector<storage::SqlValue> p = {std::string(security::kSystemAdministratorTemplateId)};
    return c
        .Exec("UPDATE role SET roletemplateid = ? WHERE name = 'System Administrator' AND roletemplateid IS NULL", p)
        .status();
  }));
  std::optional<std::string> secret;
  RETURN_IF_ERROR(
      r->Query("SELECT value FROM _t_secret WHERE name = 'token_signing_key'", {}, [&](const storage::Row& row) {
        secret = std::string(row.Text(0));
        return false;
      }));
  if (secret) signing_key_ = *secret;
  return Status::Ok();
}

Status Environment::Bootstrap(const EnvironmentOptions& options) {
  auto cat = catalog_.Get();
  ids_.organization_id = GuidGenerator::NewSequential();
  ids_.root_business_unit_id = GuidGenerator::NewSequential();
  ids_.base_currency_id = GuidGenerator::NewSequential();
  ids_.admin_user_id = GuidGenerator::NewSequential();
  service_ = std::make_unique<OrganizationService>(*engine_, catalog_, *clock_, ids_);
  service_->SetSecurityCache(security_.get());  // Load() set it on the service this one replaces
  service_->next_version_ = 1;
  engine_->SetPreCommitHook([svc = service_.get()](storage::Connection& c) { return svc->PreCommit(c); });
  RETURN_IF_ERROR(engine_->WriteSync([](storage::Connection& c) {
    RETURN_IF_ERROR(SetMeta(c, "format_version", std::to_string(kStoreFormatVersion)));
    return c.Exec("INSERT OR IGNORE INTO _t_meta (key, value) VALUES ('version', '0')").status();
  }));
  CallerContext sys;  // the platform itself: no principal, every check passes
  sys.user_id = ids_.admin_user_id;
  sys.business_unit_id = ids_.root_business_unit_id;
  RETURN_IF_ERROR(CreateSync(*service_, sys, *cat, "transactioncurrency",
                             {{"currencyname", std::string("US Dollar")},
                              {"isocurrencycode", std::string("USD")},
                              {"currencysymbol", std::string("$")},
                              {"currencyprecision", int64_t{2}},
                              {"exchangerate", 1.0}},
                             ids_.base_currency_id)
                      .status());
  RETURN_IF_ERROR(CreateSync(*service_, sys, *cat, "organization",
                             {{"name", std::string("Tributary")},
                              {"basecurrencyid", EntityRef{"transactioncurrency", ids_.base_currency_id}},
                              {"languagecode", int64_t{1033}},
                              {"pricingdecimalprecision", int64_t{2}},
                              {"expirechangetrackingindays", int64_t{7}}},
                             ids_.organization_id)
                      .status());
  RETURN_IF_ERROR(
      CreateSync(*service_, sys, *cat, "businessunit", {{"name", std::string("Tributary")}}, ids_.root_business_unit_id)
          .status());
  // Each business unit has a default owner team; its members are the BU's users.
  RETURN_IF_ERROR(CreateSync(*service_, sys, *cat, "team",
                             {{"name", std::string("Tributary")},
                              {"teamtype", int64_t{0}},
                              {"isdefault", true},
                              {"businessunitid", EntityRef{"businessunit", ids_.root_business_unit_id}}},
                             GuidGenerator::NewSequential())
                      .status());
  std::string client_id =
      options.bootstrap_client_id.empty() ? GuidGenerator::NewRandom().ToString() : options.bootstrap_client_id;
  auto app_guid = Guid::Parse(client_id);
  RETURN_IF_ERROR(CreateSync(*service_, sys, *cat, "systemuser",
                             {{"firstname", std::string("#")},
                              {"lastname", std::string("Tributary bootstrap")},
                              {"applicationid", app_guid ? *app_guid : catalog::NameGuid("app:" + client_id)},
                              {"accessmode", int64_t{4}},
                              {"businessunitid", EntityRef{"businessunit", ids_.root_business_unit_id}}},
                             ids_.admin_user_id)
                      .status());
  Guid role_id = GuidGenerator::NewSequential();
  RETURN_IF_ERROR(CreateSync(*service_, sys, *cat, "role",
                             {{"name", std::string("System Administrator")},
                              {"roletemplateid", *Guid::Parse(security::kSystemAdministratorTemplateId)},
                              {"businessunitid", EntityRef{"businessunit", ids_.root_business_unit_id}}},
                             role_id)
                      .status());
  const catalog::Table* user = cat->FindTable("systemuser");
  const catalog::NavProperty* roles = user ? user->FindNav("systemuserroles_association") : nullptr;
  if (roles) {
    std::promise<Result<Guid>> p;
    auto f = p.get_future();
    RecordKey k;
    k.id = ids_.admin_user_id;
    BindTarget role{cat->FindTable("role"), RecordKey{role_id, {}}};
    service_->Associate(sys, *user, k, *roles, role, true, [&p](Result<Guid> r) { p.set_value(std::move(r)); });
    RETURN_IF_ERROR(f.get().status());
  }
  std::string secret =
      options.bootstrap_client_secret.empty() ? security::RandomSecret(24) : options.bootstrap_client_secret;
  ASSIGN_OR_RETURN(std::string hash, security::HashSecret(secret));
  std::string key = security::RandomBytes(32);
  signing_key_ = key;
  auto ids = ids_;
  RETURN_IF_ERROR(engine_->WriteSync([&](storage::Connection& c) {
    std::vector<storage::SqlValue> p = {client_id, hash, ids.admin_user_id.ToString()};
    RETURN_IF_ERROR(
        c.Exec("INSERT INTO _t_credential (client_id, secret_hash, systemuserid) VALUES (?, ?, ?)", p).status());
    std::vector<storage::SqlValue> k = {storage::Blob{key}};
    RETURN_IF_ERROR(c.Exec("INSERT INTO _t_secret (name, value) VALUES ('token_signing_key', ?)", k).status());
    RETURN_IF_ERROR(SetMeta(c, "root_business_unit_id", ids.root_business_unit_id.ToString()));
    RETURN_IF_ERROR(SetMeta(c, "base_currency_id", ids.base_currency_id.ToString()));
    RETURN_IF_ERROR(SetMeta(c, "admin_user_id", ids.admin_user_id.ToString()));
    // Written last: its presence marks a complete bootstrap.
    return SetMeta(c, "organization_id", ids.organization_id.ToString());
  }));
  if (options.bootstrap_client_id.empty() || options.bootstrap_client_secret.empty())
    RETURN_IF_ERROR(WriteBootstrapFile(dir_, client_id, secret));
  return Status::Ok();
}

Status Environment::EnsureCredential(const EnvironmentOptions& options) {
  if (options.bootstrap_client_id.empty() || options.bootstrap_client_secret.empty()) return Status::Ok();
  ASSIGN_OR_RETURN(auto existing, FindCredential(options.bootstrap_client_id));
  if (existing && security::VerifySecret(existing->secret_hash, options.bootstrap_client_secret)) return Status::Ok();
  // The environment variables are authoritative for the bootstrap application user.
  ASSIGN_OR_RETURN(std::string hash, security::HashSecret(options.bootstrap_client_secret));
  std::string id = options.bootstrap_client_id;
  Guid user = existing ? existing->user_id : ids_.admin_user_id;
  return engine_->WriteSync([&](storage::Connection& c) {
    std::vector<storage::SqlValue> p = {id, hash, user.ToString()};
    return c
        .Exec(
            "INSERT INTO _t_credential (client_id, secret_hash, systemuserid) VALUES (?, ?, ?) "
            "ON CONFLICT(client_id) DO UPDATE SET secret_hash = excluded.secret_hash",
            p)
        .status();
  });
}

Result<std::optional<Credential>> Environment::FindCredential(std::string_view client_id) {
  std::optional<Credential> cred;
  auto r = engine_->Read();
  std::vector<storage::SqlValue> p = {std::string(client_id)};
  RETURN_IF_ERROR(r->Query("SELECT client_id, secret_hash, systemuserid FROM _t_credential WHERE client_id = ?", p,
                           [&](const storage::Row& row) {
                             Credential c;
                             c.client_id = std::string(row.Text(0));
                             c.secret_hash = std::string(row.Text(1));
                             if (auto g = Guid::Parse(row.Text(2))) c.user_id = *g;
                             cred = std::move(c);
                             return false;
                           }));
  return cred;
}

Result<CallerContext> Environment::ResolveUser(const Guid& user_id) {
  auto p = security_->Get(user_id);
  if (!p.ok() && p.status().code() != Code::kNotFound) return p.status();
  if (!p.ok() || (*p)->disabled)
    return Status(Code::kUnauthenticated, "The user of this access token does not exist or is disabled.",
                  err::kUnauthorized);
  CallerContext c;
  c.user_id = user_id;
  c.business_unit_id = (*p)->business_unit_id;
  c.principal = *p;
  return c;
}

namespace {

// The first systemuser whose uniqueidentifier `column` holds `id`.
Result<std::optional<Guid>> FindUserBy(storage::Engine& engine, std::string_view column, const Guid& id) {
  std::optional<Guid> user;
  auto r = engine.Read();
  std::vector<storage::SqlValue> p = {id.ToString()};
  RETURN_IF_ERROR(r->Query("SELECT systemuserid FROM systemuser WHERE " + std::string(column) + " = ? LIMIT 1", p,
                           [&](const storage::Row& row) {
                             user = Guid::Parse(row.Text(0));
                             return false;
                           }));
  return user;
}

}  // namespace

Result<std::optional<Guid>> Environment::FindUserByApplicationId(const Guid& application_id) {
  return FindUserBy(*engine_, "applicationid", application_id);
}

Result<std::optional<Guid>> Environment::FindUserByObjectId(const Guid& object_id) {
  return FindUserBy(*engine_, "azureactivedirectoryobjectid", object_id);
}

Status Environment::ApplySchema(const catalog::SchemaDoc& doc, std::string_view source_text) {
  std::lock_guard lock(schema_mu_);
  catalog::CatalogBuilder next = builder_;
  RETURN_IF_ERROR(next.Apply(doc));
  auto current = catalog_.Get();
  ASSIGN_OR_RETURN(catalog::CatalogPtr cat, next.Build(current->version() + 1));
  std::string text(source_text);
  int64_t now = clock_->Now().ms;
  // One write job: the SQL changes (drops included) and the log entry commit or roll back together.
  RETURN_IF_ERROR(engine_->WriteSync([&](storage::Connection& c) {
    RETURN_IF_ERROR(SyncSqlSchema(c, *current, *cat));
    RETURN_IF_ERROR(SyncPrivileges(c, *cat));
    std::vector<storage::SqlValue> p = {text, now};
    return c.Exec("INSERT INTO _t_schema (document, applied_on) VALUES (?, ?)", p).status();
  }));
  builder_ = std::move(next);
  catalog_.Set(cat);
  security_->Invalidate();  // privileges of dropped tables left their roles
  return Status::Ok();
}

}  // namespace tributary::data
