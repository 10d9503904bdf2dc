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

// "The user is not a member of the organization." (a valid token whose user has no systemuser).
constexpr uint32_t kUserNotMemberOfOrganization = 0x80072560;
constexpr int64_t kUserCacheMs = 30'000;

Status Unauthenticated(std::string m) { return Status(Code::kUnauthenticated, std::move(m), err::kUnauthorized); }

}  // namespace

void Auth::Authenticate(const HttpRequest& req, Done done) {
  const std::string* h = req.Header("authorization");
  if (!h) return done(Unauthenticated("The request has no Authorization header; a Bearer token is required."));
  std::string_view v = Trim(*h);
  if (!StartsWithIgnoreCase(v, "bearer "))
    return done(Unauthenticated("The Authorization header must use the Bearer scheme."));
  std::string_view token = Trim(v.substr(7));
  Impersonation imp;
  if (const std::string* c = req.Header("mscrmcallerid")) imp.caller_id = std::string(Trim(*c));
  if (const std::string* c = req.Header("callerobjectid")) imp.caller_object_id = std::string(Trim(*c));

  std::optional<security::UnverifiedJwt> peek;
  if (issuers_) {
    auto p = security::PeekJwt(token);
    if (!p.ok()) return done(std::move(p).status());
    if (p->alg != "HS256") return VerifyExternal(std::string(token), *p, std::move(imp), std::move(done));
    peek = std::move(*p);
  }
  auto claims = signer_.Verify(token, env_.clock().Now());
  size_t index = 0;
  if (!claims.ok() && peek && issuers_->Find(peek->issuer, index))
    return done(Unauthenticated("The access token's signing algorithm 'HS256' is not accepted for issuer " +
                                peek->issuer + "; RS256 and ES256 are."));
  if (!claims.ok()) return done(std::move(claims).status());
  auto caller = env_.ResolveUser(claims->object_id);
  done(caller.ok() && !imp.empty() ? Impersonate(*caller, imp) : std::move(caller));
}

void Auth::VerifyExternal(std::string token, const security::UnverifiedJwt& peek, Impersonation imp, Done done) {
  if (peek.alg != "RS256" && peek.alg != "ES256")
    return done(Unauthenticated("The access token's signing algorithm '" + PrintableText(peek.alg, 20) +
                                "' is not accepted; HS256 (tokens of this server), RS256 and ES256 are."));
  size_t index = 0;
  const security::TrustedIssuer* issuer = issuers_->Find(peek.issuer, index);
  if (!issuer)
    return done(Unauthenticated("The access token's issuer '" + PrintableText(peek.issuer) +
                                "' is not trusted by this environment."));
  if (peek.kid.empty()) return done(Unauthenticated("The access token has no 'kid' header naming its signing key."));
  issuers_->Get(index, peek.kid,
                [this, issuer, token = std::move(token), imp = std::move(imp),
                 done = std::move(done)](Result<JwksCache::KeysPtr> keys) {
                  if (!keys.ok()) return done(std::move(keys).status());
                  auto claims = (*keys)->Verify(token, *issuer, env_.clock().Now());
                  if (!claims.ok()) return done(std::move(claims).status());
                  auto caller = MapExternal(*claims);
                  done(caller.ok() && !imp.empty() ? Impersonate(*caller, imp) : std::move(caller));
                });
}

Result<data::CallerContext> Auth::MapExternal(const security::ExternalClaims& claims) {
  bool app = claims.AppOnly();
  auto id = Guid::Parse(app ? claims.app_id : claims.object_id);
  if (!id)
    return Unauthenticated(app ? "The access token has no valid 'appid' or 'azp' claim."
                               : "The access token has no valid 'oid' claim.");
  ASSIGN_OR_RETURN(std::optional<Guid> user, FindUser(app, *id));
  if (!user)
    return Status(Code::kPermissionDenied,
                  "The user is not a member of the organization. " +
                      (app ? "No application user has applicationid " + id->ToString()
                           : "No user has azureactivedirectoryobjectid " + id->ToString()) +
                      ".",
                  kUserNotMemberOfOrganization);
  return env_.ResolveUser(*user);
}

Result<data::CallerContext> Auth::Impersonate(const data::CallerContext& real, const Impersonation& imp) {
  // A caller without a principal is refused too: only the platform itself has none, and it never
  // comes through here.
  if (!real.principal || !real.principal->Holds(security::kPrvActOnBehalfOfAnotherUser))
    return Status(Code::kPermissionDenied,
                  "Principal user (Id=" + real.user_id.ToString() +
                      ", type=8) is missing prvActOnBehalfOfAnotherUser privilege; it is needed to impersonate "
                      "another user (MSCRMCallerID or CallerObjectId header).",
                  err::kPrivilegeDenied);
  Guid target;
  std::string what;
  if (!imp.caller_id.empty()) {
    auto id = Guid::Parse(imp.caller_id);
    if (!id) return InvalidArgument("The MSCRMCallerID header is not a GUID.");
    target = *id;
    what = "MSCRMCallerID " + id->ToString();
  } else {
    auto oid = Guid::Parse(imp.caller_object_id);
    if (!oid) return InvalidArgument("The CallerObjectId header is not a GUID.");
    what = "CallerObjectId " + oid->ToString();
    ASSIGN_OR_RETURN(std::optional<Guid> user, FindUser(false, *oid));
    if (!user) return NotFound("The user to impersonate (" + what + ") does not exist.");
    target = *user;
  }
  auto ctx = env_.ResolveUser(target);
  if (!ctx.ok()) {
    if (ctx.status().code() == Code::kUnauthenticated)
      return NotFound("The user to impersonate (" + what + ") does not exist or is disabled.");
    return std::move(ctx).status();
  }
  ctx->initiating_user_id = real.user_id;
  return ctx;
}

Result<std::optional<Guid>> Auth::FindUser(bool by_application, const Guid& id) {
  std::string key = (by_application ? "a:" : "o:") + id.ToString();
  int64_t now = env_.clock().Now().ms;
  {
    std::lock_guard lock(mu_);
    auto it = users_.find(key);
    if (it != users_.end() && it->second.second > now) return std::optional<Guid>(it->second.first);
  }
  ASSIGN_OR_RETURN(std::optional<Guid> user,
                   by_application ? env_.FindUserByApplicationId(id) : env_.FindUserByObjectId(id));
  if (user) {
    std::lock_guard lock(mu_);
    if (users_.size() > 10000) users_.clear();
    users_[key] = {*user, now + kUserCacheMs};
  }
  return user;
}

HttpResponse Auth::Refuse(const HttpRequest& req, const Status& why) {
  HttpResponse r = odata::ErrorResponse(why);
  if (why.code() != Code::kUnauthenticated) return r;
  r.status = 401;
  r.Set("WWW-Authenticate", "Bearer authorization_uri=" + req.base_url + "/" + TenantId() +
                                "/oauth2/authorize, resource_id=" + req.base_url + "/");
  return r;
}

bool Auth::CheckSecret(const data::Credential& cred, const std::string& secret) {
  // Over the stored hash too: a secret replaced in the store (`tributary user reset-secret`) stops
  // matching the cache at once.
  std::string digest = Sha256(cred.secret_hash + '\n' + secret);
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
