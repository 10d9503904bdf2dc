#include "tributary/security/jwks.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

#include "tributary/base/json.h"
#include "tributary/base/strings.h"

namespace tributary::security {

enum class KeyType : uint8_t { kRsa, kEcP256 };

struct JwksKeySet::Key {
  std::string kid;
  std::string alg;  // the JWK's "alg" when present
  KeyType type = KeyType::kRsa;
  std::shared_ptr<EVP_PKEY> pkey;
};

namespace {

constexpr int64_t kSkewSeconds = 60;

Status Unauthenticated(std::string m) { return Status(Code::kUnauthenticated, std::move(m), err::kUnauthorized); }

template <typename T, void (*Free)(T*)>
struct Deleter {
  void operator()(T* p) const { Free(p); }
};
using BnPtr = std::unique_ptr<BIGNUM, Deleter<BIGNUM, BN_free>>;
using ParamBldPtr = std::unique_ptr<OSSL_PARAM_BLD, Deleter<OSSL_PARAM_BLD, OSSL_PARAM_BLD_free>>;
using ParamPtr = std::unique_ptr<OSSL_PARAM, Deleter<OSSL_PARAM, OSSL_PARAM_free>>;
using PkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, Deleter<EVP_PKEY_CTX, EVP_PKEY_CTX_free>>;
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, Deleter<EVP_MD_CTX, EVP_MD_CTX_free>>;
using EcdsaSigPtr = std::unique_ptr<ECDSA_SIG, Deleter<ECDSA_SIG, ECDSA_SIG_free>>;

std::string StringMember(const Json& obj, std::string_view key) {
  const Json* v = obj.Find(key);
  return v && v->is_string() ? v->as_string() : std::string();
}

// The base64url-decoded value of a string member; empty when missing or malformed.
std::string BytesMember(const Json& obj, std::string_view key) {
  std::string out;
  const Json* v = obj.Find(key);
  if (!v || !v->is_string() || !Base64UrlDecode(v->as_string(), out)) out.clear();
  return out;
}

std::shared_ptr<EVP_PKEY> FromData(const char* type, OSSL_PARAM_BLD* bld) {
  ParamPtr params(OSSL_PARAM_BLD_to_param(bld));
  PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
  EVP_PKEY* pkey = nullptr;
  if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) <= 0 ||
      EVP_PKEY_fromdata(ctx.get(), &pkey, EVP_PKEY_PUBLIC_KEY, params.get()) <= 0)
    return nullptr;
  return std::shared_ptr<EVP_PKEY>(pkey, EVP_PKEY_free);
}

std::shared_ptr<EVP_PKEY> RsaKey(const Json& jwk) {
  std::string n = BytesMember(jwk, "n"), e = BytesMember(jwk, "e");
  if (n.empty() || e.empty() || e.size() > 8) return nullptr;
  auto bytes = [](const std::string& s) { return reinterpret_cast<const unsigned char*>(s.data()); };
  BnPtr bn_n(BN_bin2bn(bytes(n), static_cast<int>(n.size()), nullptr));
  BnPtr bn_e(BN_bin2bn(bytes(e), static_cast<int>(e.size()), nullptr));
  if (!bn_n || !bn_e || BN_num_bits(bn_n.get()) < 2048 || BN_num_bits(bn_n.get()) > 16384) return nullptr;
  if (!BN_is_odd(bn_e.get()) || BN_is_one(bn_e.get())) return nullptr;  // e = 1 would verify anything
  ParamBldPtr bld(OSSL_PARAM_BLD_new());
  if (!bld || !OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, bn_n.get()) ||
      !OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, bn_e.get()))
    return nullptr;
  return FromData("RSA", bld.get());
}

std::shared_ptr<EVP_PKEY> EcP256Key(const Json& jwk) {
  if (StringMember(jwk, "crv") != "P-256") return nullptr;
  std::string x = BytesMember(jwk, "x"), y = BytesMember(jwk, "y");
  if (x.size() != 32 || y.size() != 32) return nullptr;
  std::string point = "\x04" + x + y;  // uncompressed SEC1 point; fromdata checks it is on the curve
  ParamBldPtr bld(OSSL_PARAM_BLD_new());
  char group[] = "prime256v1";
  if (!bld || !OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, group, 0) ||
      !OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size()))
    return nullptr;
  auto key = FromData("EC", bld.get());
  if (!key) return nullptr;
  PkeyCtxPtr check(EVP_PKEY_CTX_new_from_pkey(nullptr, key.get(), nullptr));
  if (!check || EVP_PKEY_public_check(check.get()) != 1) return nullptr;
  return key;
}

// ES256 signatures in a JWS are r || s (32 bytes each); OpenSSL verifies DER-encoded ECDSA-Sig-Value.
bool RawToDer(std::string_view raw, std::string& der) {
  if (raw.size() != 64) return false;
  auto p = reinterpret_cast<const unsigned char*>(raw.data());
  EcdsaSigPtr sig(ECDSA_SIG_new());
  BIGNUM* r = BN_bin2bn(p, 32, nullptr);
  BIGNUM* s = BN_bin2bn(p + 32, 32, nullptr);
  if (!sig || !r || !s || !ECDSA_SIG_set0(sig.get(), r, s)) {
    BN_free(r);
    BN_free(s);
    return false;
  }
  int len = i2d_ECDSA_SIG(sig.get(), nullptr);
  if (len <= 0) return false;
  der.resize(static_cast<size_t>(len));
  auto out = reinterpret_cast<unsigned char*>(der.data());
  return i2d_ECDSA_SIG(sig.get(), &out) == len;
}

bool VerifySha256(EVP_PKEY* key, std::string_view data, std::string_view sig) {
  MdCtxPtr ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key) != 1) return false;
  return EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                          reinterpret_cast<const unsigned char*>(data.data()), data.size()) == 1;
}

// A token split into its three parts, with header and payload decoded and parsed.
struct DecodedJwt {
  Json header;
  Json payload;
  std::string_view signing_input;
  std::string signature;
};

Result<DecodedJwt> Decode(std::string_view token) {
  auto d1 = token.find('.');
  auto d2 = d1 == std::string_view::npos ? d1 : token.find('.', d1 + 1);
  if (d2 == std::string_view::npos || token.find('.', d2 + 1) != std::string_view::npos)
    return Unauthenticated("The access token is malformed.");
  std::string header, payload;
  DecodedJwt d;
  if (!Base64UrlDecode(token.substr(0, d1), header) || !Base64UrlDecode(token.substr(d1 + 1, d2 - d1 - 1), payload) ||
      !Base64UrlDecode(token.substr(d2 + 1), d.signature))
    return Unauthenticated("The access token is malformed.");
  auto h = ParseJson(header);
  if (!h.ok() || !h->is_object()) return Unauthenticated("The access token header is malformed.");
  auto p = ParseJson(payload);
  if (!p.ok() || !p->is_object()) return Unauthenticated("The access token payload is malformed.");
  d.header = std::move(*h);
  d.payload = std::move(*p);
  d.signing_input = token.substr(0, d2);
  return d;
}

std::string_view WithoutTrailingSlash(std::string_view s) { return s.ends_with('/') ? s.substr(0, s.size() - 1) : s; }

// The configured audience that one of the token's `aud` values names, or empty.
std::string MatchAudience(const Json* aud, const TrustedIssuer& issuer) {
  auto match = [&](const Json& v) -> std::string {
    if (!v.is_string() || v.as_string().empty()) return {};
    for (const std::string& a : issuer.audiences)
      if (WithoutTrailingSlash(a) == WithoutTrailingSlash(v.as_string())) return v.as_string();
    return {};
  };
  if (!aud) return {};
  if (aud->is_array()) {
    for (const Json& v : aud->as_array())
      if (std::string m = match(v); !m.empty()) return m;
    return {};
  }
  return match(*aud);
}

// NumericDate claims: a number of seconds; 0 when missing.
bool TimeClaim(const Json& payload, std::string_view key, int64_t& out) {
  out = 0;
  const Json* v = payload.Find(key);
  if (!v) return true;
  if (!v->is_number()) return false;
  out = v->as_int();
  return true;
}

}  // namespace

bool ExternalClaims::AppOnly() const {
  if (idtyp == "app") return true;
  if (idtyp == "user") return false;
  return !app_id.empty() && scopes.empty();
}

Result<UnverifiedJwt> PeekJwt(std::string_view token) {
  ASSIGN_OR_RETURN(DecodedJwt d, Decode(token));
  UnverifiedJwt u;
  u.alg = StringMember(d.header, "alg");
  u.kid = StringMember(d.header, "kid");
  u.issuer = StringMember(d.payload, "iss");
  return u;
}

Result<JwksKeySet> JwksKeySet::Parse(std::string_view jwks_json) {
  auto doc = ParseJson(jwks_json);
  if (!doc.ok()) return InvalidArgument("The JWKS document is not JSON: " + doc.status().message());
  const Json* keys = doc->is_object() ? doc->Find("keys") : nullptr;
  if (!keys || !keys->is_array()) return InvalidArgument("The JWKS document has no \"keys\" array.");
  JwksKeySet set;
  for (const Json& jwk : keys->as_array()) {
    if (!jwk.is_object()) continue;
    auto key = std::make_shared<Key>();
    key->kid = StringMember(jwk, "kid");
    key->alg = StringMember(jwk, "alg");
    std::string use = StringMember(jwk, "use");
    if (key->kid.empty() || (!use.empty() && use != "sig")) continue;
    std::string kty = StringMember(jwk, "kty");
    if (kty == "RSA") {
      key->type = KeyType::kRsa;
      key->pkey = RsaKey(jwk);
    } else if (kty == "EC") {
      key->type = KeyType::kEcP256;
      key->pkey = EcP256Key(jwk);
    }
    if (key->pkey) set.keys_.push_back(std::move(key));
  }
  return set;
}

bool JwksKeySet::Has(std::string_view kid) const {
  for (const auto& k : keys_)
    if (k->kid == kid) return true;
  return false;
}

Result<ExternalClaims> JwksKeySet::Verify(std::string_view token, const TrustedIssuer& issuer, Timestamp now) const {
  ASSIGN_OR_RETURN(DecodedJwt d, Decode(token));
  std::string alg = StringMember(d.header, "alg");
  KeyType type;
  if (alg == "RS256")
    type = KeyType::kRsa;
  else if (alg == "ES256")
    type = KeyType::kEcP256;
  else
    return Unauthenticated("The access token's signing algorithm '" + PrintableText(alg, 20) +
                           "' is not accepted for issuer " + issuer.issuer + "; RS256 and ES256 are.");
  std::string kid = StringMember(d.header, "kid");
  if (kid.empty()) return Unauthenticated("The access token has no 'kid' header naming its signing key.");
  const Key* key = nullptr;
  for (const auto& k : keys_)
    if (k->kid == kid) key = k.get();
  if (!key)
    return Unauthenticated("The access token's signing key '" + PrintableText(kid, 100) +
                           "' is not in the key set of issuer " + issuer.issuer + ".");
  if (key->type != type || (!key->alg.empty() && key->alg != alg))
    return Unauthenticated("The access token's algorithm " + alg + " does not fit its signing key '" +
                           PrintableText(kid, 100) + "'.");
  std::string der;
  std::string_view sig = d.signature;
  if (type == KeyType::kEcP256) {
    if (!RawToDer(d.signature, der)) return Unauthenticated("The access token's signature is invalid.");
    sig = der;
  }
  if (!VerifySha256(key->pkey.get(), d.signing_input, sig))
    return Unauthenticated("The access token's signature is invalid.");

  const Json& p = d.payload;
  ExternalClaims c;
  c.issuer = StringMember(p, "iss");
  if (c.issuer != issuer.issuer)
    return Unauthenticated("The access token's issuer '" + PrintableText(c.issuer, 200) + "' is not " + issuer.issuer +
                           ".");
  c.audience = MatchAudience(p.Find("aud"), issuer);
  if (c.audience.empty()) return Unauthenticated("The access token's audience is not this environment.");
  if (!TimeClaim(p, "exp", c.expires) || !TimeClaim(p, "nbf", c.not_before))
    return Unauthenticated("The access token's 'exp' or 'nbf' claim is not a number.");
  int64_t secs = now.ms / 1000;
  if (c.expires == 0) return Unauthenticated("The access token has no 'exp' claim.");
  if (secs > c.expires + kSkewSeconds) return Unauthenticated("The access token has expired.");
  if (c.not_before > secs + kSkewSeconds) return Unauthenticated("The access token is not valid yet.");
  c.subject = StringMember(p, "sub");
  c.object_id = StringMember(p, "oid");
  c.app_id = StringMember(p, "appid");
  if (c.app_id.empty()) c.app_id = StringMember(p, "azp");
  c.tenant_id = StringMember(p, "tid");
  c.scopes = StringMember(p, "scp");
  c.idtyp = StringMember(p, "idtyp");
  c.key_id = kid;
  return c;
}

}  // namespace tributary::security
