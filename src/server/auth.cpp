#include "auth.h"

#include <openssl/sha.h>

#include "tributary/base/json.h"
#include "tributary/base/strings.h"
#include "tributary/odata/errors.h"

namespace tributary::server {

using odata::HttpRequest;
using odata::HttpResponse;

namespace {

std::string Sha256(std::string_view s) {
  unsigned char out[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(s.data()), s.size(), out);
  return std::string(reinterpret_cast<char*>(out), sizeof out);
}

HttpResponse OAuthError(int status, std::string_view error, std::string_view description) {
  HttpResponse r;
  r.status = status;
  JsonWriter w(r.body);
  w.BeginObject();
  w.Key("error");
  w.String(error);
  w.Key("error_description");
  w.String(description);
  w.EndObject();
  r.Set("Content-Type", "application/json; charset=utf-8");
  r.Set("Cache-Control", "no-store");
  return r;
}

}  // namespace

Result<data::CallerContext> Auth::Authenticate(const HttpRequest& req) {
  const std::string* h = req.Header("authorization");
  if (!h)
    return Status(Code::kUnauthenticated, "The request has no Authorization header; a Bearer token is required.",
                  err::kUnauthorized);
  std::string_view v = Trim(*h);
  if (!StartsWithIgnoreCase(v, "bearer "))
    return Status(Code::kUnauthenticated, "The Authorization header must use the Bearer scheme.", err::kUnauthorized);
  ASSIGN_OR_RETURN(security::Claims claims, signer_.Verify(Trim(v.substr(7)), env_.clock().Now()));
  return env_.ResolveUser(claims.object_id);
}

HttpResponse Auth::Challenge(const HttpRequest& req, const Status& why) {
  HttpResponse r = odata::ErrorResponse(why);
  r.status = 401;
  r.Set("WWW-Authenticate", "Bearer authorization_uri=" + req.base_url + "/" + TenantId() +
                                "/oauth2/authorize, resource_id=" + req.base_url + "/");
  return r;
}

bool Auth::CheckSecret(const data::Credential& cred, const std::string& secret) {
  std::string digest = Sha256(secret);
  {
    std::lock_guard lock(mu_);
    auto it = verified_.find(cred.client_id);
    if (it != verified_.end() && it->second == digest) return true;
  }
  if (!security::VerifySecret(cred.secret_hash, secret)) return false;
  std::lock_guard lock(mu_);
  if (verified_.size() > 10000) verified_.clear();
  verified_[cred.client_id] = digest;
  return true;
}

HttpResponse Auth::Token(const HttpRequest& req) {
  if (req.method != "POST") return OAuthError(405, "invalid_request", "The token endpoint accepts POST only.");
  std::string grant, client_id, client_secret, scope;
  for (auto piece : Split(req.body, '&')) {
    auto eq = piece.find('=');
    std::string k, v;
    if (!PercentDecode(piece.substr(0, eq), k, true) ||
        !PercentDecode(eq == std::string_view::npos ? "" : piece.substr(eq + 1), v, true))
      return OAuthError(400, "invalid_request", "The form body has a malformed percent escape.");
    if (k == "grant_type")
      grant = v;
    else if (k == "client_id")
      client_id = v;
    else if (k == "client_secret")
      client_secret = v;
    else if (k == "scope")
      scope = v;
  }
  if (const std::string* basic = req.Header("authorization"); basic && StartsWithIgnoreCase(Trim(*basic), "basic ")) {
    std::string decoded;
    if (Base64Decode(Trim(Trim(*basic).substr(6)), decoded)) {
      auto colon = decoded.find(':');
      if (colon != std::string::npos) {
        PercentDecode(decoded.substr(0, colon), client_id, true);
        PercentDecode(decoded.substr(colon + 1), client_secret, true);
      }
    }
  }
  if (grant.empty())
    return OAuthError(400, "invalid_request",
                      "AADSTS900144: The request body must contain the 'grant_type' parameter.");
  if (grant != "client_credentials")
    return OAuthError(400, "unsupported_grant_type", "AADSTS70003: Only the client_credentials grant is supported.");
  if (client_id.empty() || client_secret.empty())
    return OAuthError(400, "invalid_request",
                      "AADSTS900144: The request body must contain 'client_id' and 'client_secret'.");
  auto cred = env_.FindCredential(client_id);
  if (!cred.ok()) return OAuthError(503, "temporarily_unavailable", "The credential store is not available.");
  if (!*cred || !CheckSecret(**cred, client_secret))
    return OAuthError(401, "invalid_client", "AADSTS7000215: Invalid client secret provided, or unknown client.");
  int64_t now = env_.clock().Now().ms / 1000;
  security::Claims c;
  c.issuer = req.base_url + "/" + TenantId() + "/";
  std::string aud = scope;
  if (aud.size() > 9 && aud.ends_with("/.default")) aud.resize(aud.size() - 9);
  c.audience = aud.empty() ? req.base_url : aud;
  c.subject = client_id;
  c.object_id = (*cred)->user_id;
  c.app_id = client_id;
  c.tenant_id = env_.ids().organization_id;
  c.issued_at = c.not_before = now;
  c.expires = now + 3600;
  HttpResponse r;
  JsonWriter w(r.body);
  w.BeginObject();
  w.Key("token_type");
  w.String("Bearer");
  w.Key("expires_in");
  w.Int(3600);
  w.Key("ext_expires_in");
  w.Int(3600);
  w.Key("access_token");
  w.String(signer_.Sign(c));
  w.EndObject();
  r.Set("Content-Type", "application/json; charset=utf-8");
  r.Set("Cache-Control", "no-store");
  return r;
}

}  // namespace tributary::server
