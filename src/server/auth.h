#pragma once
// Bearer authentication and the OAuth2 client-credentials token endpoint.

#include <mutex>
#include <string>
#include <unordered_map>

#include "tributary/data/environment.h"
#include "tributary/odata/http.h"
#include "tributary/security/token.h"

namespace tributary::server {

class Auth {
 public:
  explicit Auth(data::Environment& env) : env_(env), signer_(env.signing_key()) {}
  // Validates "Authorization: Bearer …" and returns the caller.
  Result<data::CallerContext> Authenticate(const odata::HttpRequest& req);
  // POST /oauth2/v2.0/token (form-encoded client_credentials).
  odata::HttpResponse Token(const odata::HttpRequest& req);
  // The 401 answer with the WWW-Authenticate challenge clients use for discovery.
  odata::HttpResponse Challenge(const odata::HttpRequest& req, const Status& why);
  std::string TenantId() const { return env_.ids().organization_id.ToString(); }

 private:
  bool CheckSecret(const data::Credential& cred, const std::string& secret);
  data::Environment& env_;
  security::TokenSigner signer_;
  std::mutex mu_;
  std::unordered_map<std::string, std::string> verified_;  // client_id → SHA-256 of a verified secret
};

}  // namespace tributary::server
