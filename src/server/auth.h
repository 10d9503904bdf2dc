#pragma once
// Bearer authentication (the platform's own HS256 tokens and, when configured, RS256/ES256 tokens
// of external OpenID Connect issuers), impersonation (MSCRMCallerID / CallerObjectId) and the
// OAuth2 client-credentials token endpoint.

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "oidc.h"
#include "tributary/data/environment.h"
#include "tributary/odata/http.h"
#include "tributary/security/token.h"

namespace tributary::server {

// Thread-safe. Lives as long as the server; callbacks of pending key fetches refer to it.
class Auth {
 public:
  // `issuers` may be null (no external identity configured).
  Auth(data::Environment& env, std::unique_ptr<JwksCache> issuers)
      : env_(env), signer_(env.signing_key()), issuers_(std::move(issuers)) {}

  using Done = std::function<void(Result<data::CallerContext>)>;
  // Validates "Authorization: Bearer …", maps the token to its systemuser and applies an
  // impersonation header; calls `done` with the caller, on this thread or, when the keys of an
  // external issuer must be fetched first, later on an I/O thread. Errors: kUnauthenticated (bad
  // or missing token: 401), kPermissionDenied (a valid token of an unknown user, or impersonation
  // without prvActOnBehalfOfAnotherUser: 403), kNotFound / kInvalidArgument (impersonation target).
  // `req` is read before this returns.
  void Authenticate(const odata::HttpRequest& req, Done done);
  // Starts fetching the external issuers' keys.
  void Prefetch() {
    if (issuers_) issuers_->Prefetch();
  }
  // POST /oauth2/v2.0/token (form-encoded client_credentials).
  odata::HttpResponse Token(const odata::HttpRequest& req);
  // The answer to a failed Authenticate: 401 with the WWW-Authenticate challenge clients use for
  // discovery, or the error as it is (403, 404, 400).
  odata::HttpResponse Refuse(const odata::HttpRequest& req, const Status& why);
  std::string TenantId() const { return env_.ids().organization_id.ToString(); }

 private:
  // Who asks to be impersonated, copied out of the request.
  struct Impersonation {
    std::string caller_id;         // MSCRMCallerID: a systemuserid
    std::string caller_object_id;  // CallerObjectId: an Entra object id
    bool empty() const { return caller_id.empty() && caller_object_id.empty(); }
  };

  void VerifyExternal(std::string token, const security::UnverifiedJwt& peek, Impersonation imp, Done done);
  Result<data::CallerContext> MapExternal(const security::ExternalClaims& claims);
  Result<data::CallerContext> Impersonate(const data::CallerContext& real, const Impersonation& imp);
  // systemuserid by applicationid ("a:…") or azureactivedirectoryobjectid ("o:…"), cached briefly.
  Result<std::optional<Guid>> FindUser(bool by_application, const Guid& id);
  bool CheckSecret(const data::Credential& cred, const std::string& secret);

  data::Environment& env_;
  security::TokenSigner signer_;
  std::unique_ptr<JwksCache> issuers_;
  std::mutex mu_;
  std::unordered_map<std::string, std::string> verified_;            // client_id → SHA-256(hash + secret)
  std::unordered_map<std::string, std::pair<Guid, int64_t>> users_;  // FindUser key → (user, expiry ms)
};

}  // namespace tributary::server
