// tributary: the only place that knows every concrete component (DESIGN.md §3).
//
//   tributary serve --data DIR --listen HOST:PORT [--config FILE] [--profile developer|production]
//                   [--bus-config Config.json]
//   tributary schema apply --data DIR FILE
//   tributary user … / tributary role …   (admin.h)
//   tributary bus …                         (bus_cli.h)
//   tributary version

#include <yaml-cpp/yaml.h>
#include <CLI/CLI.hpp>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>

#include "admin.h"
#include "bus_cli.h"
#include "data_lock.h"
#include "tributary/bus/broker.h"
#include "tributary/catalog/schema.h"
#include "tributary/data/environment.h"
#include "tributary/server/server.h"

namespace {

using tributary::Status;

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

tributary::data::EnvironmentOptions EnvOptions(const std::string& dir) {
  tributary::data::EnvironmentOptions o;
  o.data_dir = dir;
  o.bootstrap_client_id = Env("TRIBUTARY_BOOTSTRAP_CLIENT_ID");
  o.bootstrap_client_secret = Env("TRIBUTARY_BOOTSTRAP_CLIENT_SECRET");
  return o;
}

bool SplitListen(const std::string& listen, std::string& host, uint16_t& port) {
  auto colon = listen.rfind(':');
  if (colon == std::string::npos) return false;
  host = listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  try {
    int p = std::stoi(listen.substr(colon + 1));
    if (p < 0 || p > 65535) return false;
    port = static_cast<uint16_t>(p);
  } catch (...) {
    return false;
  }
  return !host.empty();
}

// identity.issuers (docs/usage.md): external OpenID Connect issuers. Returns an error text or "".
// The values are checked when the server starts.
std::string ReadIssuers(const YAML::Node& identity, std::vector<tributary::security::TrustedIssuer>& out) {
  if (!identity.IsMap()) return "identity must be a map";
  for (const auto& kv : identity)
    if (kv.first.as<std::string>() != "issuers")
      return "identity." + kv.first.as<std::string>() + " is not a known key";
  YAML::Node list = identity["issuers"];
  if (!list) return "";
  if (!list.IsSequence()) return "identity.issuers must be a list";
  for (size_t i = 0; i < list.size(); ++i) {
    YAML::Node n = list[i];
    std::string where = "identity.issuers[" + std::to_string(i) + "]";
    if (!n.IsMap()) return where + " must be a map";
    tributary::security::TrustedIssuer t;
    for (const auto& kv : n) {
      std::string key = kv.first.as<std::string>();
      const YAML::Node& v = kv.second;
      if (key == "issuer") {
        t.issuer = v.as<std::string>();
      } else if (key == "audience") {
        if (v.IsSequence()) {
          for (const auto& a : v) t.audiences.push_back(a.as<std::string>());
        } else {
          t.audiences.push_back(v.as<std::string>());
        }
      } else if (key == "jwks_uri") {
        t.jwks_uri = v.as<std::string>();
      } else if (key == "jwks_cache_seconds") {
        t.jwks_cache_seconds = v.as<int>();
      } else if (key == "jwks_min_refresh_seconds") {
        t.jwks_min_refresh_seconds = v.as<int>();
      } else {
        return where + "." + key + " is not a known key";
      }
    }
    out.push_back(std::move(t));
  }
  return "";
}

// service_protection (docs/usage.md): the per-user limits. `enabled`, when present, overrides the
// profile. Returns an error text or ""; the values are checked when the server starts.
std::string ReadServiceProtection(const YAML::Node& n, tributary::server::ServiceProtectionOptions& o) {
  if (!n.IsMap()) return "service_protection must be a map";
  for (const auto& kv : n) {
    std::string key = kv.first.as<std::string>();
    const YAML::Node& v = kv.second;
    if (key == "enabled") {
      o.enabled = v.as<bool>();
    } else if (key == "requests") {
      o.requests = v.as<int64_t>();
    } else if (key == "execution_seconds") {
      o.execution_seconds = v.as<int64_t>();
    } else if (key == "window_seconds") {
      o.window_seconds = v.as<int64_t>();
    } else if (key == "concurrent") {
      o.concurrent = v.as<int64_t>();
    } else {
      return "service_protection." + key + " is not a known key";
    }
  }
  return "";
}

int Fail(const std::string& what) {
  std::fprintf(stderr, "tributary: %s\n", what.c_str());
  return 2;
}

int Serve(std::string data_dir, std::string listen, const std::string& config, std::string profile,
          std::string bus_config) {
  tributary::server::ServerOptions so;
  std::optional<YAML::Node> protection;  // service_protection, applied over the profile
  if (!config.empty()) {
    try {
      YAML::Node c = YAML::LoadFile(config);
      if (c["profile"] && profile.empty()) profile = c["profile"].as<std::string>();
      if (c["service_protection"]) protection.emplace(c["service_protection"]);
      if (c["listen"] && listen.empty()) listen = c["listen"].as<std::string>();
      if (c["data"] && data_dir.empty()) data_dir = c["data"].as<std::string>();
      if (c["public_url"]) so.public_url = c["public_url"].as<std::string>();
      if (c["threads"]) so.threads = c["threads"].as<int>();
      if (c["max_body_mb"]) so.max_body_bytes = c["max_body_mb"].as<size_t>() << 20;
      if (c["identity"]) {
        std::string e = ReadIssuers(c["identity"], so.issuers);
        if (!e.empty()) return Fail("cannot read the config file " + config + ": " + e);
      }
      // bus.config: an emulator Config.json loaded at start (--bus-config wins).
      if (YAML::Node b = c["bus"]) {
        if (!b.IsMap()) return Fail("cannot read the config file " + config + ": bus must be a map");
        for (const auto& kv : b)
          if (kv.first.as<std::string>() != "config")
            return Fail("cannot read the config file " + config + ": bus." + kv.first.as<std::string>() +
                        " is not a known key");
        if (b["config"] && bus_config.empty()) bus_config = b["config"].as<std::string>();
      }
    } catch (const YAML::Exception& e) {
      return Fail("cannot read the config file " + config + ": " + e.what());
    }
  }
  // developer (default): no service protection limits; production: Dataverse's defaults.
  if (profile.empty()) profile = "developer";
  if (profile != "developer" && profile != "production")
    return Fail("profile must be developer or production, got '" + profile + "'");
  so.service_protection.enabled = profile == "production";
  if (protection) {
    try {
      std::string e = ReadServiceProtection(*protection, so.service_protection);
      if (!e.empty()) return Fail("cannot read the config file " + config + ": " + e);
    } catch (const YAML::Exception& e) {
      return Fail("cannot read the config file " + config + ": " + e.what());
    }
  }
  if (data_dir.empty()) data_dir = "./data";
  if (listen.empty()) listen = "127.0.0.1:8080";
  if (!SplitListen(listen, so.host, so.port)) return Fail("--listen must be HOST:PORT, got '" + listen + "'");
  // Before anything touches the store: one server per data folder.
  auto lock = tributary::app::DataLock::Acquire(data_dir);
  if (!lock.ok()) return Fail(lock.status().message());
  auto env = tributary::data::Environment::Open(EnvOptions(data_dir));
  if (!env.ok()) return Fail("cannot open the environment in " + data_dir + ": " + env.status().ToString());
  auto broker = tributary::bus::Broker::Open((*env)->engine(), (*env)->clock());
  if (!broker.ok()) return Fail("cannot open the message bus in " + data_dir + ": " + broker.status().ToString());
  if (!bus_config.empty()) {
    std::ifstream in(bus_config);
    if (!in) return Fail("cannot read the bus config " + bus_config);
    std::stringstream text;
    text << in.rdbuf();
    Status s = (*broker)->LoadEmulatorConfig(text.str());
    if (!s.ok()) return Fail(bus_config + ": " + s.message());
  }
  so.broker = broker->get();
  tributary::server::Server server(**env, so);
  auto port = server.Start();
  if (!port.ok()) return Fail(port.status().ToString());
  std::string url = "http://" + (so.host.find(':') != std::string::npos ? "[" + so.host + "]" : so.host) + ":" +
                    std::to_string(*port);
  if ((*env)->created()) std::fprintf(stderr, "created a new environment in %s\n", data_dir.c_str());
  if (Env("TRIBUTARY_BOOTSTRAP_CLIENT_ID").empty())
    std::fprintf(stderr,
                 "get a token:  curl -s -d grant_type=client_credentials -d client_id=ID -d client_secret=SECRET "
                 "%s/oauth2/v2.0/token\n  (ID and SECRET are in %s/bootstrap-credentials.json)\n",
                 url.c_str(), data_dir.c_str());
  lock->Describe(url);
  std::fprintf(stderr, "Web API: %s/api/data/v9.2/\n", url.c_str());
  std::printf("listening on %s\n", url.c_str());
  std::fflush(stdout);
  server.Run();
  (*broker)->Shutdown();
  (*env)->Shutdown();
  std::fprintf(stderr, "stopped\n");
  return 0;
}

int SchemaApply(const std::string& data_dir, const std::string& file) {
  std::ifstream in(file);
  if (!in) return Fail("cannot read " + file);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  auto doc = tributary::catalog::ParseSchemaDocument(text);
  if (!doc.ok()) {
    std::fprintf(stderr, "%s: %s\n", file.c_str(), doc.status().message().c_str());
    return 2;
  }
  // A running server would not see the new schema: one process per data folder.
  auto lock = tributary::app::DataLock::Acquire(data_dir);
  if (!lock.ok()) return Fail(lock.status().message());
  auto env = tributary::data::Environment::Open(EnvOptions(data_dir));
  if (!env.ok()) return Fail("cannot open the environment in " + data_dir + ": " + env.status().ToString());
  Status s = (*env)->ApplySchema(*doc, text);
  if (!s.ok()) {
    std::fprintf(stderr, "%s: %s\n", file.c_str(), s.message().c_str());
    return 2;
  }
  std::printf("applied %s: %zu table(s), %zu relationship(s), %zu choice(s)\n", file.c_str(), doc->tables.size(),
              doc->relationships.size(), doc->choices.size());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Tributary: a self-hosted, Dataverse-compatible data platform and integration hub"};
  app.require_subcommand(1);
  std::string data_dir, listen, config, file, profile, bus_config;
  auto* serve = app.add_subcommand("serve", "Start the server");
  serve->add_option("--data", data_dir, "Data folder (default ./data)");
  serve->add_option("--listen", listen, "HOST:PORT to listen on (default 127.0.0.1:8080)");
  serve->add_option("--config", config, "YAML config file");
  serve->add_option("--profile", profile, "developer (default: no service protection limits) or production");
  serve->add_option("--bus-config", bus_config, "Service Bus emulator Config.json: entities created at start");
  auto* schema = app.add_subcommand("schema", "Manage the schema");
  schema->require_subcommand(1);
  auto* apply = schema->add_subcommand("apply", "Apply a schema file (YAML or JSON, docs/formats/schema.md)");
  apply->add_option("--data", data_dir, "Data folder")->required();
  apply->add_option("file", file, "Schema file")->required();
  tributary::app::AdminCommands admin(app, EnvOptions);
  tributary::app::BusCommands bus(app, EnvOptions);
  app.add_subcommand("version", "Print the version");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;  // --help: 0; bad arguments: 2
  }
  if (serve->parsed()) return Serve(data_dir, listen, config, profile, bus_config);
  if (apply->parsed()) return SchemaApply(data_dir, file);
  if (auto rc = admin.Run()) return *rc;
  if (auto rc = bus.Run()) return *rc;
  std::printf("tributary 0.1.0\n");
  return 0;
}
