#include "tributary/security/jwks.h"

#include <gtest/gtest.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <memory>
#include <string>

#include "tributary/base/json.h"
#include "tributary/base/strings.h"

namespace tributary::security {
namespace {

using PkeyPtr = std::shared_ptr<EVP_PKEY>;

constexpr int64_t kNow = 1'700'000'000;
const Timestamp kNowTs{kNow * 1000};

PkeyPtr Generate(const char* type, const char* curve_or_null, size_t bits = 2048) {
  EVP_PKEY* k = curve_or_null ? EVP_PKEY_Q_keygen(nullptr, nullptr, type, curve_or_null)
                              : EVP_PKEY_Q_keygen(nullptr, nullptr, type, bits);
  return PkeyPtr(k, EVP_PKEY_free);
}

std::string BnParam(EVP_PKEY* k, const char* name, int pad = 0) {
  BIGNUM* bn = nullptr;
  EXPECT_EQ(EVP_PKEY_get_bn_param(k, name, &bn), 1);
  std::string out(pad ? pad : BN_num_bytes(bn), '\0');
  if (pad)
    BN_bn2binpad(bn, reinterpret_cast<unsigned char*>(out.data()), pad);
  else
    BN_bn2bin(bn, reinterpret_cast<unsigned char*>(out.data()));
  BN_free(bn);
  return out;
}

std::string RsaJwk(EVP_PKEY* k, const std::string& kid, const std::string& extra = "") {
  return R"({"kty":"RSA","kid":")" + kid + R"(","n":")" + Base64UrlEncode(BnParam(k, OSSL_PKEY_PARAM_RSA_N)) +
         R"(","e":")" + Base64UrlEncode(BnParam(k, OSSL_PKEY_PARAM_RSA_E)) + "\"" + extra + "}";
}

std::string EcJwk(EVP_PKEY* k, const std::string& kid, const std::string& crv = "P-256", int size = 32) {
  return R"({"kty":"EC","crv":")" + crv + R"(","kid":")" + kid + R"(","x":")" +
         Base64UrlEncode(BnParam(k, OSSL_PKEY_PARAM_EC_PUB_X, size)) + R"(","y":")" +
         Base64UrlEncode(BnParam(k, OSSL_PKEY_PARAM_EC_PUB_Y, size)) + R"("})";
}

std::string SignSha256(EVP_PKEY* k, std::string_view data) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  size_t len = 0;
  EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, k);
  EVP_DigestSign(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(data.data()), data.size());
  std::string sig(len, '\0');
  EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &len,
                 reinterpret_cast<const unsigned char*>(data.data()), data.size());
  EVP_MD_CTX_free(ctx);
  sig.resize(len);
  return sig;
}

// JWS ES256 signatures are r || s, not DER.
std::string DerToRaw(const std::string& der) {
  auto p = reinterpret_cast<const unsigned char*>(der.data());
  ECDSA_SIG* sig = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size()));
  std::string raw(64, '\0');
  BN_bn2binpad(ECDSA_SIG_get0_r(sig), reinterpret_cast<unsigned char*>(raw.data()), 32);
  BN_bn2binpad(ECDSA_SIG_get0_s(sig), reinterpret_cast<unsigned char*>(raw.data()) + 32, 32);
  ECDSA_SIG_free(sig);
  return raw;
}

std::string Payload(int64_t exp = kNow + 600, const std::string& aud = "\"https://org.example.com\"",
                    const std::string& iss = "https://login.example/tenant/v2.0", const std::string& extra = "") {
  return R"({"iss":")" + iss + R"(","aud":)" + aud + R"(,"exp":)" + std::to_string(exp) + R"(,"nbf":)" +
         std::to_string(kNow - 10) +
         R"(,"appid":"11111111-2222-3333-4444-555555555555","oid":"aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee","tid":"t")" +
         extra + "}";
}

std::string Token(EVP_PKEY* k, const std::string& alg, const std::string& kid, const std::string& payload) {
  std::string input = Base64UrlEncode(R"({"alg":")" + alg + R"(","kid":")" + kid + R"(","typ":"JWT"})") + "." +
                      Base64UrlEncode(payload);
  std::string sig = SignSha256(k, input);
  if (alg == "ES256") sig = DerToRaw(sig);
  return input + "." + Base64UrlEncode(sig);
}

class JwksTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    rsa_ = new PkeyPtr(Generate("RSA", nullptr));
    ec_ = new PkeyPtr(Generate("EC", "P-256"));
  }
  static void TearDownTestSuite() {
    delete rsa_;
    delete ec_;
  }
  void SetUp() override {
    issuer_.issuer = "https://login.example/tenant/v2.0";
    issuer_.audiences = {"https://org.example.com/"};
    auto set =
        JwksKeySet::Parse(R"({"keys":[)" + RsaJwk(rsa(), "r1", R"(,"use":"sig")") + "," + EcJwk(ec(), "e1") + "]}");
    ASSERT_TRUE(set.ok()) << set.status().message();
    keys_ = std::make_unique<JwksKeySet>(std::move(*set));
  }
  static EVP_PKEY* rsa() { return rsa_->get(); }
  static EVP_PKEY* ec() { return ec_->get(); }
  Result<ExternalClaims> Verify(const std::string& token) const { return keys_->Verify(token, issuer_, kNowTs); }
  void ExpectRefused(const std::string& token, const std::string& fragment) const {
    auto r = Verify(token);
    ASSERT_FALSE(r.ok()) << "accepted: " << token;
    EXPECT_EQ(r.status().code(), Code::kUnauthenticated);
    EXPECT_NE(r.status().message().find(fragment), std::string::npos) << r.status().message();
  }

  static PkeyPtr* rsa_;
  static PkeyPtr* ec_;
  TrustedIssuer issuer_;
  std::unique_ptr<JwksKeySet> keys_;
};
PkeyPtr* JwksTest::rsa_ = nullptr;
PkeyPtr* JwksTest::ec_ = nullptr;

TEST_F(JwksTest, ParsesRsaAndEcKeys) {
  EXPECT_EQ(keys_->size(), 2u);
  EXPECT_TRUE(keys_->Has("r1"));
  EXPECT_TRUE(keys_->Has("e1"));
  EXPECT_FALSE(keys_->Has("x"));
}

TEST_F(JwksTest, AcceptsRs256) {
  auto r = Verify(Token(rsa(), "RS256", "r1", Payload()));
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->issuer, "https://login.example/tenant/v2.0");
  EXPECT_EQ(r->audience, "https://org.example.com");
  EXPECT_EQ(r->app_id, "11111111-2222-3333-4444-555555555555");
  EXPECT_EQ(r->object_id, "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee");
  EXPECT_EQ(r->key_id, "r1");
  EXPECT_EQ(r->expires, kNow + 600);
  EXPECT_TRUE(r->AppOnly());
}

TEST_F(JwksTest, AcceptsEs256) {
  auto r = Verify(Token(ec(), "ES256", "e1", Payload()));
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->key_id, "e1");
}

TEST_F(JwksTest, AudienceWithOrWithoutSlashAndInArrays) {
  issuer_.audiences = {"https://org.example.com"};
  EXPECT_TRUE(Verify(Token(rsa(), "RS256", "r1", Payload(kNow + 600, "\"https://org.example.com/\""))).ok());
  EXPECT_TRUE(Verify(Token(rsa(), "RS256", "r1", Payload(kNow + 600, R"(["other","https://org.example.com"])"))).ok());
  issuer_.audiences = {"a", "https://org.example.com/"};
  EXPECT_TRUE(Verify(Token(rsa(), "RS256", "r1", Payload())).ok());
  ExpectRefused(Token(rsa(), "RS256", "r1", Payload(kNow + 600, "\"https://org.example.com.evil\"")), "audience");
  ExpectRefused(Token(rsa(), "RS256", "r1", Payload(kNow + 600, "[]")), "audience");
  ExpectRefused(Token(rsa(), "RS256", "r1", Payload(kNow + 600, "\"\"")), "audience");
  ExpectRefused(Token(rsa(), "RS256", "r1", Payload(kNow + 600, "42")), "audience");
}

TEST_F(JwksTest, RefusesWrongIssuer) {
  ExpectRefused(Token(rsa(), "RS256", "r1", Payload(kNow + 600, "\"https://org.example.com\"", "https://evil/")),
                "issuer");
}

TEST_F(JwksTest, TimeWindowWithSkew) {
  EXPECT_TRUE(Verify(Token(rsa(), "RS256", "r1", Payload(kNow - 30))).ok());  // within 60 s of skew
  ExpectRefused(Token(rsa(), "RS256", "r1", Payload(kNow - 61)), "expired");
  std::string future = R"({"iss":"https://login.example/tenant/v2.0","aud":"https://org.example.com","exp":)" +
                       std::to_string(kNow + 900) + R"(,"nbf":)" + std::to_string(kNow + 120) + "}";
  ExpectRefused(Token(rsa(), "RS256", "r1", future), "not valid yet");
  std::string no_exp = R"({"iss":"https://login.example/tenant/v2.0","aud":"https://org.example.com"})";
  ExpectRefused(Token(rsa(), "RS256", "r1", no_exp), "no 'exp'");
  std::string text_exp = R"({"iss":"https://login.example/tenant/v2.0","aud":"https://org.example.com","exp":"1"})";
  ExpectRefused(Token(rsa(), "RS256", "r1", text_exp), "not a number");
}

TEST_F(JwksTest, RefusesBadSignatures) {
  std::string t = Token(rsa(), "RS256", "r1", Payload());
  std::string tampered = t;
  size_t mid = t.rfind('.') + 10;
  tampered[mid] = tampered[mid] == 'A' ? 'B' : 'A';
  ExpectRefused(tampered, "signature");
  // The payload changed after signing.
  std::string other = Base64UrlEncode(Payload(kNow + 9999));
  size_t d1 = t.find('.'), d2 = t.rfind('.');
  ExpectRefused(t.substr(0, d1 + 1) + other + t.substr(d2), "signature");
  // Signed by another key under a known kid.
  auto stranger = Generate("RSA", nullptr);
  ExpectRefused(Token(stranger.get(), "RS256", "r1", Payload()), "signature");
  std::string es = Token(ec(), "ES256", "e1", Payload());
  ExpectRefused(es.substr(0, es.rfind('.') + 1) + Base64UrlEncode(std::string(64, '\1')), "signature");
  ExpectRefused(es.substr(0, es.rfind('.') + 1) + Base64UrlEncode(std::string(63, '\1')), "signature");
  ExpectRefused(es.substr(0, es.rfind('.') + 1), "signature");
}

TEST_F(JwksTest, RefusesUnknownOrMissingKid) {
  ExpectRefused(Token(rsa(), "RS256", "r9", Payload()), "not in the key set");
  ExpectRefused(Token(rsa(), "RS256", "", Payload()), "no 'kid'");
}

TEST_F(JwksTest, RefusesAlgorithmKeyMismatch) {
  ExpectRefused(Token(ec(), "ES256", "r1", Payload()), "does not fit");
  ExpectRefused(Token(rsa(), "RS256", "e1", Payload()), "does not fit");
  auto set = JwksKeySet::Parse(R"({"keys":[)" + RsaJwk(rsa(), "r1", R"(,"alg":"RS512")") + "]}");
  ASSERT_TRUE(set.ok());
  EXPECT_FALSE(set->Verify(Token(rsa(), "RS256", "r1", Payload()), issuer_, kNowTs).ok());
}

TEST_F(JwksTest, RefusesNoneAndHmac) {
  std::string body = Base64UrlEncode(Payload());
  ExpectRefused(Base64UrlEncode(R"({"alg":"none","kid":"r1"})") + "." + body + ".", "'none' is not accepted");
  ExpectRefused(Base64UrlEncode(R"({"alg":"None","kid":"r1"})") + "." + body + ".", "not accepted");
  ExpectRefused(Base64UrlEncode(R"({"kid":"r1"})") + "." + body + ".", "not accepted");
  // HS256 with the public key as the HMAC secret (algorithm confusion).
  std::string input = Base64UrlEncode(R"({"alg":"HS256","kid":"r1"})") + "." + body;
  std::string secret = RsaJwk(rsa(), "r1");
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &len);
  ExpectRefused(input + "." + Base64UrlEncode(std::string(reinterpret_cast<char*>(mac), len)),
                "'HS256' is not accepted");
}

TEST_F(JwksTest, RefusesMalformedTokens) {
  for (std::string t : {"", ".", "..", "...", "a.b.c", "a.b", "e30.e30.", "e30.W10.", "W10.e30.", "e30.e30.e30.e30",
                        "!!.e30.", "e30.e30.!!"}) {
    auto r = Verify(t);
    EXPECT_FALSE(r.ok()) << t;
    EXPECT_EQ(r.status().code(), Code::kUnauthenticated) << t;
  }
}

TEST_F(JwksTest, PeekReadsHeaderAndIssuerWithoutVerifying) {
  auto p = PeekJwt(Token(rsa(), "RS256", "r1", Payload()));
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->alg, "RS256");
  EXPECT_EQ(p->kid, "r1");
  EXPECT_EQ(p->issuer, "https://login.example/tenant/v2.0");
  EXPECT_FALSE(PeekJwt("x.y").ok());
}

TEST_F(JwksTest, ParseSkipsUnusableKeys) {
  auto small = Generate("RSA", nullptr, 1024);
  std::string doc =
      R"({"keys":[)" + RsaJwk(small.get(), "small") + "," + RsaJwk(rsa(), "enc", R"(,"use":"enc")") + "," +
      R"({"kty":"oct","kid":"sym","k":"c2VjcmV0"})" + "," + R"({"kty":"RSA","n":"AQAB","e":"AQAB"})" + "," +
      R"({"kty":"EC","crv":"P-256","kid":"bad",)" +
      R"("x":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","y":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"})" + "," +
      R"({"kty":"RSA","kid":"nokeys"})" + ",42,\"x\"," + RsaJwk(rsa(), "good") + "," +
      R"({"kty":"RSA","kid":"e1","e":"AQ","n":")" + Base64UrlEncode(BnParam(rsa(), OSSL_PKEY_PARAM_RSA_N)) + "\"}]}";
  auto set = JwksKeySet::Parse(doc);
  ASSERT_TRUE(set.ok()) << set.status().message();
  EXPECT_EQ(set->size(), 1u);
  EXPECT_TRUE(set->Has("good"));
  EXPECT_FALSE(set->Has("small"));
  EXPECT_FALSE(set->Has("enc"));
  EXPECT_FALSE(set->Has("sym"));
  EXPECT_FALSE(set->Has("bad"));  // (0, 0) is not on the curve
  EXPECT_FALSE(set->Has("e1"));   // exponent 1
  EXPECT_FALSE(JwksKeySet::Parse("not json").ok());
  EXPECT_FALSE(JwksKeySet::Parse("[]").ok());
  EXPECT_FALSE(JwksKeySet::Parse(R"({"keys":{}})").ok());
  auto empty = JwksKeySet::Parse(R"({"keys":[]})");
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->size(), 0u);
}

TEST_F(JwksTest, RefusesOtherCurves) {
  auto p384 = Generate("EC", "P-384");
  // A P-384 key, and its coordinates relabelled as P-256: neither is usable.
  auto set = JwksKeySet::Parse(R"({"keys":[)" + EcJwk(p384.get(), "p", "P-384", 48) + "," +
                               EcJwk(p384.get(), "q", "P-256", 48) + "]}");
  ASSERT_TRUE(set.ok());
  EXPECT_EQ(set->size(), 0u);
}

TEST(ExternalClaimsTest, AppOnlyOrDelegated) {
  ExternalClaims c;
  c.app_id = "a";
  EXPECT_TRUE(c.AppOnly());
  c.scopes = "user_impersonation";
  EXPECT_FALSE(c.AppOnly());
  c.idtyp = "app";
  EXPECT_TRUE(c.AppOnly());
  c.idtyp = "user";
  c.scopes.clear();
  EXPECT_FALSE(c.AppOnly());
  ExternalClaims none;
  EXPECT_FALSE(none.AppOnly());
}

}  // namespace
}  // namespace tributary::security
