// libFuzzer target for access tokens, the input every unauthenticated caller controls
// (src/security/include/tributary/security/jwks.h and token.h). The input is a JWKS document, a
// newline and a token (fuzz/corpus/jwt: real RS256/ES256 tokens made with the npm package jose,
// an expired one, one with the wrong kid and an alg=none one). The JWKS is parsed; the token is
// peeked, verified against the key set for a fixed issuer at a fixed time, and verified as one of
// the platform's own HS256 tokens. Nothing may crash or hang; every failure has the documented
// code and a message; a token that verifies must carry the trusted issuer and audience and be
// valid at the fixed time (a mutation cannot forge a signature).

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "tributary/base/status.h"
#include "tributary/base/time.h"
#include "tributary/security/jwks.h"
#include "tributary/security/token.h"

namespace {

using namespace tributary;
using namespace tributary::security;

constexpr int64_t kNowSeconds = 1'800'000'000;  // the seeds' tokens are valid at this time

[[noreturn]] void Fail(const char* what, const std::string& detail) {
  std::fprintf(stderr, "%s: %s\n", what, detail.c_str());
  std::abort();
}

void Expect(const Status& s, Code code, const char* what) {
  if (s.ok()) return;
  if (s.code() != code) Fail(what, "unexpected code: " + s.ToString());
  if (s.message().empty()) Fail(what, "empty message");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 64 * 1024) return 0;
  std::string_view in(reinterpret_cast<const char*>(data), size);
  const size_t nl = in.find('\n');
  const std::string_view jwks = nl == std::string_view::npos ? in : in.substr(0, nl);
  const std::string_view token = nl == std::string_view::npos ? std::string_view() : in.substr(nl + 1);
  const Timestamp now{kNowSeconds * 1000};

  auto peek = PeekJwt(token);
  Expect(peek.status(), Code::kUnauthenticated, "PeekJwt");

  auto keys = JwksKeySet::Parse(jwks);
  Expect(keys.status(), Code::kInvalidArgument, "JwksKeySet::Parse");
  if (keys.ok()) {
    TrustedIssuer issuer;
    issuer.issuer = "https://login.example.com/tenant/v2.0";
    issuer.audiences = {"https://org.example.com"};
    issuer.jwks_uri = "https://login.example.com/keys";
    auto claims = keys->Verify(token, issuer, now);
    Expect(claims.status(), Code::kUnauthenticated, "JwksKeySet::Verify");
    if (claims.ok()) {
      if (!peek.ok()) Fail("Verify", "a token that PeekJwt refuses verified");
      if (claims->issuer != issuer.issuer) Fail("Verify", "accepted issuer " + claims->issuer);
      if (claims->audience != "https://org.example.com") Fail("Verify", "accepted audience " + claims->audience);
      if (claims->expires <= kNowSeconds - 60) Fail("Verify", "accepted an expired token");
      if (peek->alg != "RS256" && peek->alg != "ES256") Fail("Verify", "accepted alg " + peek->alg);
    }
  }

  // The platform's own tokens: HS256 with a key the fuzzer cannot know.
  TokenSigner signer("fuzz-signing-key-0123456789abcdef0123456789abcdef");
  auto own = signer.Verify(token, now, "https://org.example.com");
  Expect(own.status(), Code::kUnauthenticated, "TokenSigner::Verify");
  if (own.ok()) Fail("TokenSigner::Verify", "a token not signed with the key verified");
  return 0;
}
