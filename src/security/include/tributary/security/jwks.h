#pragma once
// Access tokens from external OpenID Connect issuers (Microsoft Entra ID, Keycloak, …): RS256 and
// ES256 JWTs checked against the issuer's JSON Web Key Set (RFC 7517/7518). The keys come from the
// issuer's jwks_uri; fetching them is the server's job (src/server/oidc.h), this file only parses
// and verifies.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tributary/base/status.h"
#include "tributary/base/time.h"

namespace tributary::security {

// An issuer whose tokens the server accepts (config `identity.issuers`).
struct TrustedIssuer {
  std::string issuer;                  // the exact `iss` value
  std::vector<std::string> audiences;  // accepted `aud` values; a trailing slash on either side is ignored
  std::string jwks_uri;                // http:// or https://
  int jwks_cache_seconds = 3600;       // a key set older than this is refreshed in the background
  int jwks_min_refresh_seconds = 30;   // at most one fetch per issuer in this interval (unknown kid, errors)
};

// The claims of a verified external token that the server uses.
struct ExternalClaims {
  std::string issuer;     // iss
  std::string audience;   // the accepted aud value
  std::string subject;    // sub
  std::string object_id;  // oid (Entra object id of the user or service principal)
  std::string app_id;     // appid (v1) or azp (v2)
  std::string tenant_id;  // tid
  std::string scopes;     // scp: delegated tokens only
  std::string idtyp;      // "app" or "user" when the issuer sends it
  std::string key_id;     // kid of the key that verified the signature
  int64_t not_before = 0;
  int64_t expires = 0;
  // An application acting as itself (client credentials), as opposed to a user signed in to an
  // application: idtyp=app, or an app id without delegated scopes.
  bool AppOnly() const;
};

// The header and payload of a JWT read without checking its signature: enough to pick the issuer
// and key. Never trust these values before Verify succeeds.
struct UnverifiedJwt {
  std::string alg;
  std::string kid;
  std::string issuer;
};
// kUnauthenticated when the token is not three base64url parts with JSON objects in the first two.
Result<UnverifiedJwt> PeekJwt(std::string_view token);

// The public keys of one issuer, parsed from a JWKS document. Immutable and thread-safe; keys are
// shared between copies.
class JwksKeySet {
 public:
  // Accepts RSA keys (n, e; at least 2048 bits) and EC P-256 keys (x, y). Keys of other types,
  // curves or with "use" other than "sig" are skipped; a key without "kid" is skipped. Fails when
  // the document is not a JSON object with a "keys" array.
  static Result<JwksKeySet> Parse(std::string_view jwks_json);

  bool Has(std::string_view kid) const;
  size_t size() const { return keys_.size(); }

  // Verifies a token of `issuer`: alg RS256 or ES256 (never "none" or HS*), the signature with the
  // key named by `kid` (whose type must fit the alg, and whose "alg" when present must equal it),
  // `iss`, `aud`, `exp` (required) and `nbf`, with 60 s of clock skew. Every failure is
  // kUnauthenticated with a message that names the reason but not the token.
  Result<ExternalClaims> Verify(std::string_view token, const TrustedIssuer& issuer, Timestamp now) const;

  struct Key;  // defined in jwks.cpp

 private:
  std::vector<std::shared_ptr<const Key>> keys_;
};

}  // namespace tributary::security
