#pragma once
// Signing keys of external OpenID Connect issuers: fetched from each issuer's jwks_uri over
// HTTP(S) without blocking an I/O thread, cached, and re-fetched on key rotation.

#include <boost/asio/any_io_executor.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "tributary/base/status.h"
#include "tributary/base/time.h"
#include "tributary/security/jwks.h"

namespace tributary::server {

// The parts of an http:// or https:// URL that a GET needs.
struct HttpUrl {
  bool tls = false;
  std::string host;    // without brackets for IPv6 literals
  std::string port;    // "80"/"443" when the URL has none
  std::string target;  // path and query; "/" when empty
};
// kInvalidArgument for anything else (other schemes, user info, fragments, bad ports).
Result<HttpUrl> ParseHttpUrl(std::string_view url);

// GET `url` and call `done` with the body of a 200 answer (at most 1 MiB), or an error naming
// the reason (connection, TLS, timeout of 10 s per step, HTTP status). https verifies the peer
// against the system's CA store and the host name. `done` runs on an executor thread; it is not
// called when the executor's io_context stops first.
void HttpGet(const boost::asio::any_io_executor& ex, const std::string& url,
             std::function<void(Result<std::string>)> done);

// The key sets of the trusted issuers. Thread-safe.
//
// A key set is served from the cache; one that is older than the issuer's jwks_cache_seconds is
// refreshed in the background while the cached one keeps serving. A kid that is not in the cache
// triggers a re-fetch (key rotation), at most one per jwks_min_refresh_seconds per issuer, and the
// callers asking meanwhile wait for that one fetch. A failed fetch keeps the previous key set.
class JwksCache {
 public:
  using Fetch = std::function<void(const std::string& url, std::function<void(Result<std::string>)> done)>;
  using KeysPtr = std::shared_ptr<const security::JwksKeySet>;
  using Done = std::function<void(Result<KeysPtr>)>;

  // `fetch` is the network seam (HttpGet in production); `clock` must outlive the cache.
  JwksCache(std::vector<security::TrustedIssuer> issuers, Fetch fetch, const Clock& clock);
  ~JwksCache();

  // Checks a configuration: non-empty issuer and audience, an http(s) jwks_uri, positive times,
  // no issuer twice. Errors name the entry ("identity.issuers[1].jwks_uri: …").
  static Status Validate(const std::vector<security::TrustedIssuer>& issuers);

  // The issuer whose `iss` is exactly `iss`, or nullptr; `index` is set for Get().
  const security::TrustedIssuer* Find(std::string_view iss, size_t& index) const;
  // Starts fetching every issuer's keys (at startup, so that the first request need not wait).
  void Prefetch();
  // Calls `done` with a key set of issuer `index` in which to look for `kid`: at once from the
  // cache, or after a fetch. The set may still lack `kid` (rotation throttled); an error when no
  // key set could be fetched. `done` may run on the calling thread or on the fetching one.
  void Get(size_t index, std::string_view kid, Done done);
  // Fetches started for issuer `index` (for tests and metrics).
  uint64_t fetch_count(size_t index) const;

 private:
  struct State;
  void StartFetch(const std::shared_ptr<State>& state);

  std::vector<security::TrustedIssuer> issuers_;
  Fetch fetch_;
  const Clock& clock_;
  std::vector<std::shared_ptr<State>> states_;  // one per issuer
};

}  // namespace tributary::server
