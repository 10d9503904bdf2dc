#include <gtest/gtest.h>

#include "tributary/base/strings.h"
#include "tributary/security/token.h"

namespace tributary::security {
namespace {

Claims Sample(int64_t now_s) {
  Claims c;
  c.issuer = "https://tributary.local/tenant/";
  c.audience = "http://127.0.0.1:8080";
  c.subject = "client";
  c.object_id = GuidGenerator::NewRandom();
  c.app_id = "client";
  c.issued_at = c.not_before = now_s;
  c.expires = now_s + 3600;
  return c;
}

TEST(TokenTest, SignedTokenVerifies) {
  TokenSigner s("k1-0123456789abcdef0123456789abcdef");
  Claims c = Sample(1700000000);
  auto v = s.Verify(s.Sign(c), Timestamp{1700000100LL * 1000});
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(v->object_id, c.object_id);
  EXPECT_EQ(v->app_id, "client");
}

TEST(TokenTest, RejectsExpiredForeignTamperedAndAlgNone) {
  TokenSigner s("key-a");
  TokenSigner other("key-b");
  Claims c = Sample(1700000000);
  std::string t = s.Sign(c);
  EXPECT_EQ(s.Verify(t, Timestamp{(1700000000LL + 3600 + 61) * 1000}).status().code(), Code::kUnauthenticated);
  EXPECT_FALSE(other.Verify(t, Timestamp{1700000000LL * 1000}).ok());
  std::string tampered = t;
  tampered[tampered.find('.') + 3] ^= 1;
  EXPECT_FALSE(s.Verify(tampered, Timestamp{1700000000LL * 1000}).ok());
  std::string none =
      Base64UrlEncode(R"({"alg":"none","typ":"JWT"})") + t.substr(t.find('.'), t.rfind('.') - t.find('.')) + ".";
  EXPECT_FALSE(s.Verify(none, Timestamp{1700000000LL * 1000}).ok());
  EXPECT_FALSE(s.Verify("garbage", Timestamp{0}).ok());
  EXPECT_FALSE(s.Verify("a.b.c.d", Timestamp{0}).ok());
  EXPECT_FALSE(s.Verify(t, Timestamp{1700000000LL * 1000}, "https://other").ok());
}

TEST(SecretTest, HashVerifies) {
  auto h = HashSecret("s3cret");
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->rfind("$argon2id$", 0), 0u);
  EXPECT_TRUE(VerifySecret(*h, "s3cret"));
  EXPECT_FALSE(VerifySecret(*h, "s3cret!"));
  EXPECT_NE(RandomSecret(), RandomSecret());
}

}  // namespace
}  // namespace tributary::security
