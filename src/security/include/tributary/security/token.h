#pragma once
// Access tokens (JWT, HS256) issued by the platform's OAuth2 endpoint, and client secrets
// (argon2id hashes; the clear secret is never stored or logged).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "tributary/base/guid.h"
#include "tributary/base/status.h"
#include "tributary/base/time.h"

namespace tributary::security {

struct Claims {
  std::string issuer;      // iss
  std::string audience;    // aud
  std::string subject;     // sub
  Guid object_id;          // oid: the systemuser id
  std::string app_id;      // appid: the OAuth client id
  Guid tenant_id;          // tid
  int64_t issued_at = 0;   // iat, seconds
  int64_t not_before = 0;  // nbf
  int64_t expires = 0;     // exp
};

// Signs and verifies HS256 JWTs with one symmetric key. Thread-safe (immutable after creation).
class TokenSigner {
 public:
  explicit TokenSigner(std::string key) : key_(std::move(key)) {}
  std::string Sign(const Claims& claims) const;
  // Checks the signature, the algorithm (HS256 only; "none" is refused), the time window (with
  // 60 s of clock skew) and the audience when `audience` is non-empty. Errors are kUnauthenticated.
  Result<Claims> Verify(std::string_view token, Timestamp now, std::string_view audience = {}) const;

 private:
  std::string key_;
};

// Random bytes from the OS, as text: URL-safe base64 of `bytes` random bytes.
std::string RandomSecret(size_t bytes = 32);
std::string RandomBytes(size_t bytes);

// argon2id (libsodium crypto_pwhash_str, interactive limits). Never fails for valid input.
Result<std::string> HashSecret(std::string_view secret);
bool VerifySecret(std::string_view hash, std::string_view secret);

}  // namespace tributary::security
