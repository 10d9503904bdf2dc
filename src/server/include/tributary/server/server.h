#pragma once
// The HTTP server: Boost.Beast on an Asio io_context run by one thread per core. Owns sockets,
// request limits, authentication, the OAuth2 token endpoint, /healthz and /metrics, and hands
// /api/data/… requests to the Web API and /servicebus/… requests to the message bus.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tributary/data/environment.h"
#include "tributary/security/jwks.h"

namespace tributary::bus {
class Broker;
}

namespace tributary::server {

// Service protection limits per user, as Dataverse's (429 with Retry-After beyond them). Config
// `profile: production` turns them on with these defaults; `service_protection:` overrides.
struct ServiceProtectionOptions {
  bool enabled = false;
  int64_t requests = 6000;           // requests per window
  int64_t execution_seconds = 1200;  // combined execution time per window
  int64_t window_seconds = 300;      // sliding window
  int64_t concurrent = 52;           // requests in flight at once
};

struct ServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 8080;               // 0 picks a free port
  int threads = 0;                    // 0: one per core
  size_t max_body_bytes = 16u << 20;  // JSON bodies; Dataverse clients batch well below this
  size_t max_header_count = 200;
  size_t max_url_bytes = 32768;  // Dataverse's GET URL limit
  size_t max_header_bytes = 64u << 10;
  std::string public_url;  // base URL for links; default: from the Host header
  int idle_timeout_seconds = 120;
  // External OpenID Connect issuers whose RS256/ES256 tokens are accepted (config
  // identity.issuers); the platform's own HS256 tokens are accepted either way.
  std::vector<security::TrustedIssuer> issuers;
  ServiceProtectionOptions service_protection;
  // The message bus served under /servicebus/ (docs/servicebus.md); null: not served. Not owned;
  // must outlive the server. Stop() shuts it down, so that pending long polls are answered.
  bus::Broker* broker = nullptr;
};

class Server {
 public:
  Server(data::Environment& env, ServerOptions options);
  ~Server();
  // Binds and listens. Returns the bound port.
  Result<uint16_t> Start();
  // Serves until Stop() or SIGINT/SIGTERM; then stops accepting, lets in-flight responses finish
  // briefly and returns.
  void Run();
  void Stop();

  class Impl;  // defined in server.cpp

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace tributary::server
