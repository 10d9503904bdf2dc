#include <openssl/crypto.h>
#include <openssl/hmac.h>
#include <sodium.h>

#include "tributary/base/json.h"
#include "tributary/base/strings.h"
#include "tributary/security/token.h"

namespace tributary::security {
namespace {

std::string Hmac(std::string_view key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
       data.size(), out, &len);
  return std::string(reinterpret_cast<char*>(out), len);
}

Status Unauthenticated(std::string m) { return Status(Code::kUnauthenticated, std::move(m), err::kUnauthorized); }

bool SodiumReady() {
  static const bool ok = sodium_init() >= 0;
  return ok;
}

}  // namespace

std::string TokenSigner::Sign(const Claims& c) const {
  std::string header = Base64UrlEncode(R"({"alg":"HS256","typ":"JWT"})");
  std::string body;
  JsonWriter w(body);
  w.BeginObject();
  w.Key("aud");
  w.String(c.audience);
  w.Key("iss");
  w.String(c.issuer);
  w.Key("iat");
  w.Int(c.issued_at);
  w.Key("nbf");
  w.Int(c.not_before);
  w.Key("exp");
  w.Int(c.expires);
  w.Key("appid");
  w.String(c.app_id);
  w.Key("azp");
  w.String(c.app_id);
  w.Key("idtyp");
  w.String("app");
  w.Key("oid");
  w.String(c.object_id.ToString());
  w.Key("sub");
  w.String(c.subject);
  w.Key("tid");
  w.String(c.tenant_id.ToString());
  w.Key("ver");
  w.String("1.0");
  w.EndObject();
  std::string signing_input = header + "." + Base64UrlEncode(body);
  return signing_input + "." + Base64UrlEncode(Hmac(key_, signing_input));
}

Result<Claims> TokenSigner::Verify(std::string_view token, Timestamp now, std::string_view audience) const {
  auto d1 = token.find('.');
  auto d2 = d1 == std::string_view::npos ? d1 : token.find('.', d1 + 1);
  if (d2 == std::string_view::npos || token.find('.', d2 + 1) != std::string_view::npos)
    return Unauthenticated("The access token is malformed.");
  std::string header, payload, sig;
  if (!Base64UrlDecode(token.substr(0, d1), header) || !Base64UrlDecode(token.substr(d1 + 1, d2 - d1 - 1), payload) ||
      !Base64UrlDecode(token.substr(d2 + 1), sig))
    return Unauthenticated("The access token is malformed.");
  auto h = ParseJson(header);
  if (!h.ok() || !h->is_object()) return Unauthenticated("The access token header is malformed.");
  const Json* alg = h->Find("alg");
  if (!alg || !alg->is_string() || alg->as_string() != "HS256")
    return Unauthenticated("The access token's signing algorithm is not accepted.");
  std::string expected = Hmac(key_, token.substr(0, d2));
  if (sig.size() != expected.size() || CRYPTO_memcmp(sig.data(), expected.data(), sig.size()) != 0)
    return Unauthenticated("The access token's signature is invalid.");
  auto p = ParseJson(payload);
  if (!p.ok() || !p->is_object()) return Unauthenticated("The access token payload is malformed.");
  Claims c;
  auto str = [&](const char* k) -> std::string {
    const Json* v = p->Find(k);
    return v && v->is_string() ? v->as_string() : std::string();
  };
  auto num = [&](const char* k) -> int64_t {
    const Json* v = p->Find(k);
    return v && v->is_number() ? v->as_int() : 0;
  };
  c.issuer = str("iss");
  c.audience = str("aud");
  c.subject = str("sub");
  c.app_id = str("appid");
  auto oid = Guid::Parse(str("oid"));
  if (!oid) return Unauthenticated("The access token has no valid 'oid' claim.");
  c.object_id = *oid;
  if (auto tid = Guid::Parse(str("tid"))) c.tenant_id = *tid;
  c.issued_at = num("iat");
  c.not_before = num("nbf");
  c.expires = num("exp");
  int64_t secs = now.ms / 1000;
  if (c.expires == 0 || secs > c.expires + 60) return Unauthenticated("The access token has expired.");
  if (c.not_before > secs + 60) return Unauthenticated("The access token is not valid yet.");
  if (!audience.empty() && c.audience != audience)
    return Unauthenticated("The access token's audience is not this environment.");
  return c;
}

std::string RandomBytes(size_t bytes) {
  SodiumReady();
  std::string b(bytes, '\0');
  randombytes_buf(b.data(), b.size());
  return b;
}

std::string RandomSecret(size_t bytes) { return Base64UrlEncode(RandomBytes(bytes)); }

Result<std::string> HashSecret(std::string_view secret) {
  if (!SodiumReady()) return Internal("libsodium failed to initialise");
  char out[crypto_pwhash_STRBYTES];
  if (crypto_pwhash_str(out, secret.data(), secret.size(), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                        crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0)
    return Internal("hashing the secret ran out of memory");
  return std::string(out);
}

bool VerifySecret(std::string_view hash, std::string_view secret) {
  if (!SodiumReady()) return false;
  std::string h(hash);
  return crypto_pwhash_str_verify(h.c_str(), secret.data(), secret.size()) == 0;
}

}  // namespace tributary::security
