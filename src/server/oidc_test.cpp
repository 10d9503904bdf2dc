#include "oidc.h"

#include <gtest/gtest.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>

#include <boost/asio.hpp>
#include <chrono>
#include <thread>

#include "tributary/base/strings.h"

namespace tributary::server {
namespace {

namespace net = boost::asio;
using security::TrustedIssuer;

// ---------------------------------------------------------------------------------------------
// URLs

TEST(ParseHttpUrlTest, Accepts) {
  auto u = ParseHttpUrl("http://127.0.0.1:8081/keys?x=1");
  ASSERT_TRUE(u.ok());
  EXPECT_FALSE(u->tls);
  EXPECT_EQ(u->host, "127.0.0.1");
  EXPECT_EQ(u->port, "8081");
  EXPECT_EQ(u->target, "/keys?x=1");
  u = ParseHttpUrl("HTTPS://login.example/tenant/discovery/v2.0/keys");
  ASSERT_TRUE(u.ok());
  EXPECT_TRUE(u->tls);
  EXPECT_EQ(u->host, "login.example");
  EXPECT_EQ(u->port, "443");
  EXPECT_EQ(u->target, "/tenant/discovery/v2.0/keys");
  u = ParseHttpUrl("http://[::1]:9000");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->host, "::1");
  EXPECT_EQ(u->port, "9000");
  EXPECT_EQ(u->target, "/");
  u = ParseHttpUrl("http://h?q");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->port, "80");
  EXPECT_EQ(u->target, "/?q");
}

TEST(ParseHttpUrlTest, Refuses) {
  for (const char* bad : {"", "ftp://h/", "h/keys", "http://", "http:///x", "http://h:0/", "http://h:65536/",
                          "http://h:99999999999/", "http://h:x/", "http://u:p@h/", "http://h/a#f", "http://h/a b",
                          "http://[::1/", "http://[::1]x/", "file:///etc/passwd"}) {
    auto u = ParseHttpUrl(bad);
    EXPECT_FALSE(u.ok()) << bad;
    if (!u.ok()) {
      EXPECT_EQ(u.status().code(), Code::kInvalidArgument) << bad;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Issuer configuration

TrustedIssuer Issuer(std::string iss = "https://login.example/t/v2.0") {
  TrustedIssuer i;
  i.issuer = std::move(iss);
  i.audiences = {"https://org.example.com"};
  i.jwks_uri = "http://127.0.0.1:1/keys";
  return i;
}

TEST(JwksCacheTest, ValidateNamesTheBadEntry) {
  EXPECT_TRUE(JwksCache::Validate({}).ok());
  EXPECT_TRUE(JwksCache::Validate({Issuer(), Issuer("b")}).ok());
  auto expect_bad = [](std::vector<TrustedIssuer> v, const std::string& fragment) {
    Status s = JwksCache::Validate(v);
    EXPECT_FALSE(s.ok()) << fragment;
    EXPECT_NE(s.message().find(fragment), std::string::npos) << s.message();
  };
  TrustedIssuer i = Issuer();
  i.issuer.clear();
  expect_bad({i}, "identity.issuers[0].issuer");
  expect_bad({Issuer(), Issuer()}, "listed twice");
  i = Issuer();
  i.audiences.clear();
  expect_bad({Issuer("x"), i}, "identity.issuers[1].audience");
  i = Issuer();
  i.audiences = {""};
  expect_bad({i}, "audience");
  i = Issuer();
  i.jwks_uri = "ftp://x";
  expect_bad({i}, "jwks_uri");
  i = Issuer();
  i.jwks_uri.clear();
  expect_bad({i}, "jwks_uri is required");
  i = Issuer();
  i.jwks_cache_seconds = 0;
  expect_bad({i}, "jwks_cache_seconds");
  i = Issuer();
  i.jwks_min_refresh_seconds = 0;
  expect_bad({i}, "jwks_min_refresh_seconds");
}

// ---------------------------------------------------------------------------------------------
// The cache, with a fake network

std::string Jwk(const std::string& kid) {
  static EVP_PKEY* key = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
  auto coord = [](const char* name) {
    BIGNUM* bn = nullptr;
    EVP_PKEY_get_bn_param(key, name, &bn);
    std::string out(32, '\0');
    BN_bn2binpad(bn, reinterpret_cast<unsigned char*>(out.data()), 32);
    BN_free(bn);
    return Base64UrlEncode(out);
  };
  return R"({"kty":"EC","crv":"P-256","kid":")" + kid + R"(","x":")" + coord(OSSL_PKEY_PARAM_EC_PUB_X) + R"(","y":")" +
         coord(OSSL_PKEY_PARAM_EC_PUB_Y) + R"("})";
}

std::string KeySet(std::initializer_list<std::string> kids) {
  std::string doc = R"({"keys":[)";
  bool first = true;
  for (const auto& k : kids) {
    if (!first) doc += ",";
    first = false;
    doc += Jwk(k);
  }
  return doc + "]}";
}

// Records fetches; the test completes them.
struct FakeNetwork {
  std::vector<std::pair<std::string, std::function<void(Result<std::string>)>>> pending;
  JwksCache::Fetch fetch() {
    return [this](const std::string& url, std::function<void(Result<std::string>)> done) {
      pending.emplace_back(url, std::move(done));
    };
  }
  void Complete(Result<std::string> body) {
    ASSERT_FALSE(pending.empty());
    auto done = std::move(pending.front().second);
    pending.erase(pending.begin());
    done(std::move(body));
  }
};

struct Outcome {
  bool called = false;
  Result<JwksCache::KeysPtr> result = Status(Code::kInternal, "not called");
  JwksCache::Done done() {
    return [this](Result<JwksCache::KeysPtr> r) {
      called = true;
      result = std::move(r);
    };
  }
};

class JwksCacheFakeTest : public ::testing::Test {
 protected:
  JwksCacheFakeTest() : clock_(Timestamp{1'000'000}) {
    TrustedIssuer i = Issuer();
    i.jwks_cache_seconds = 3600;
    i.jwks_min_refresh_seconds = 30;
    cache_ = std::make_unique<JwksCache>(std::vector<TrustedIssuer>{i}, net_.fetch(), clock_);
  }
  FakeNetwork net_;
  ManualClock clock_;
  std::unique_ptr<JwksCache> cache_;
};

TEST_F(JwksCacheFakeTest, FindsIssuersExactly) {
  size_t index = 99;
  EXPECT_NE(cache_->Find("https://login.example/t/v2.0", index), nullptr);
  EXPECT_EQ(index, 0u);
  EXPECT_EQ(cache_->Find("https://login.example/t/v2.0/", index), nullptr);
  EXPECT_EQ(cache_->Find("", index), nullptr);
}

TEST_F(JwksCacheFakeTest, FirstCallersWaitForOneFetch) {
  Outcome a, b;
  cache_->Get(0, "k1", a.done());
  cache_->Get(0, "k1", b.done());
  EXPECT_FALSE(a.called);
  EXPECT_FALSE(b.called);
  ASSERT_EQ(net_.pending.size(), 1u);
  EXPECT_EQ(net_.pending[0].first, "http://127.0.0.1:1/keys");
  net_.Complete(KeySet({"k1"}));
  ASSERT_TRUE(a.called && b.called);
  ASSERT_TRUE(a.result.ok());
  EXPECT_TRUE((*a.result)->Has("k1"));
  EXPECT_EQ(*a.result, *b.result);
  EXPECT_EQ(cache_->fetch_count(0), 1u);
  // Served from the cache now.
  Outcome c;
  cache_->Get(0, "k1", c.done());
  EXPECT_TRUE(c.called);
  EXPECT_TRUE(net_.pending.empty());
}

TEST_F(JwksCacheFakeTest, PrefetchStartsOnce) {
  cache_->Prefetch();
  cache_->Prefetch();
  EXPECT_EQ(net_.pending.size(), 1u);
  Outcome a;
  cache_->Get(0, "k1", a.done());  // joins the fetch in flight
  EXPECT_EQ(net_.pending.size(), 1u);
  net_.Complete(KeySet({"k1"}));
  EXPECT_TRUE(a.called);
  EXPECT_TRUE(a.result.ok());
}

TEST_F(JwksCacheFakeTest, UnknownKidRefetchesAtMostOncePerInterval) {
  Outcome first;
  cache_->Get(0, "k1", first.done());
  net_.Complete(KeySet({"k1"}));
  clock_.Advance(31'000);
  // Rotation: a new kid fetches again, and many callers share that fetch.
  std::vector<Outcome> many(20);
  for (auto& o : many) cache_->Get(0, "k2", o.done());
  ASSERT_EQ(net_.pending.size(), 1u);
  net_.Complete(KeySet({"k2"}));
  for (auto& o : many) {
    ASSERT_TRUE(o.called);
    ASSERT_TRUE(o.result.ok());
    EXPECT_TRUE((*o.result)->Has("k2"));
  }
  // Another unknown kid within 30 s: no fetch; the caller gets the current set (without the kid).
  clock_.Advance(5'000);
  Outcome throttled;
  cache_->Get(0, "k3", throttled.done());
  EXPECT_TRUE(net_.pending.empty());
  ASSERT_TRUE(throttled.called);
  ASSERT_TRUE(throttled.result.ok());
  EXPECT_FALSE((*throttled.result)->Has("k3"));
  EXPECT_EQ(cache_->fetch_count(0), 2u);
  // After the interval it may fetch again.
  clock_.Advance(30'000);
  Outcome later;
  cache_->Get(0, "k3", later.done());
  EXPECT_EQ(net_.pending.size(), 1u);
  net_.Complete(KeySet({"k2", "k3"}));
  ASSERT_TRUE(later.result.ok());
  EXPECT_TRUE((*later.result)->Has("k3"));
}

TEST_F(JwksCacheFakeTest, StaleSetIsServedWhileItRefreshes) {
  Outcome first;
  cache_->Get(0, "k1", first.done());
  net_.Complete(KeySet({"k1"}));
  clock_.Advance(3601'000);
  Outcome stale;
  cache_->Get(0, "k1", stale.done());
  ASSERT_TRUE(stale.called);  // at once, from the cache
  EXPECT_TRUE(stale.result.ok());
  EXPECT_EQ(net_.pending.size(), 1u);  // and a refresh runs
  Outcome during;
  cache_->Get(0, "k1", during.done());
  EXPECT_TRUE(during.called);
  EXPECT_EQ(net_.pending.size(), 1u);
  net_.Complete(KeySet({"k1", "k2"}));
  Outcome after;
  cache_->Get(0, "k2", after.done());
  ASSERT_TRUE(after.called);
  EXPECT_TRUE(after.result.ok());
  EXPECT_TRUE(net_.pending.empty());
}

TEST_F(JwksCacheFakeTest, FailedFetchAnswersUnauthenticatedAndKeepsOldKeys) {
  Outcome a;
  cache_->Get(0, "k1", a.done());
  net_.Complete(Status(Code::kUnavailable, "cannot connect to 127.0.0.1:1: Connection refused"));
  ASSERT_TRUE(a.called);
  ASSERT_FALSE(a.result.ok());
  EXPECT_EQ(a.result.status().code(), Code::kUnauthenticated);
  EXPECT_NE(a.result.status().message().find("could not be fetched"), std::string::npos);
  EXPECT_NE(a.result.status().message().find("Connection refused"), std::string::npos);
  // Within the interval: the same error, no new fetch.
  Outcome b;
  cache_->Get(0, "k1", b.done());
  EXPECT_TRUE(net_.pending.empty());
  ASSERT_TRUE(b.called);
  EXPECT_FALSE(b.result.ok());
  // Later it succeeds; then a failing refresh keeps the set for known kids.
  clock_.Advance(30'000);
  Outcome c;
  cache_->Get(0, "k1", c.done());
  net_.Complete(KeySet({"k1"}));
  ASSERT_TRUE(c.result.ok());
  clock_.Advance(30'000);
  Outcome d;
  cache_->Get(0, "k2", d.done());
  net_.Complete(std::string("not json"));
  ASSERT_TRUE(d.called);
  EXPECT_FALSE(d.result.ok());
  Outcome e;
  cache_->Get(0, "k1", e.done());
  ASSERT_TRUE(e.called);
  EXPECT_TRUE(e.result.ok());
}

TEST_F(JwksCacheFakeTest, WaitersAreBounded) {
  std::vector<Outcome> waiting(10000);
  for (auto& o : waiting) cache_->Get(0, "k1", o.done());
  Outcome over;
  cache_->Get(0, "k1", over.done());
  ASSERT_TRUE(over.called);
  EXPECT_EQ(over.result.status().code(), Code::kUnavailable);
  net_.Complete(KeySet({"k1"}));
  EXPECT_TRUE(waiting.back().called);
  EXPECT_TRUE(waiting.back().result.ok());
}

TEST_F(JwksCacheFakeTest, EmptyKeySetIsAnError) {
  Outcome a;
  cache_->Get(0, "k1", a.done());
  net_.Complete(std::string(R"({"keys":[]})"));
  ASSERT_TRUE(a.called);
  ASSERT_FALSE(a.result.ok());
  EXPECT_NE(a.result.status().message().find("no usable"), std::string::npos);
}

// ---------------------------------------------------------------------------------------------
// HttpGet against a local server

// Accepts one connection per call of Serve(), reads the request head and writes `response`.
class OneShotServer {
 public:
  explicit OneShotServer(net::io_context& ioc) : acceptor_(ioc, {net::ip::make_address("127.0.0.1"), 0}) {}
  uint16_t port() const { return acceptor_.local_endpoint().port(); }
  // Answers `response` after the request head, or at once when `read_first` is false.
  void Serve(std::string response, bool read_first = true) {
    auto sock = std::make_shared<net::ip::tcp::socket>(acceptor_.get_executor());
    acceptor_.async_accept(
        *sock, [this, sock, response = std::move(response), read_first](boost::system::error_code ec) {
          if (ec) return;
          auto reply = [sock, response] {
            auto out = std::make_shared<std::string>(response);
            net::async_write(*sock, net::buffer(*out), [sock, out](boost::system::error_code, size_t) {
              boost::system::error_code ignored;
              sock->shutdown(net::ip::tcp::socket::shutdown_both, ignored);
            });
          };
          if (!read_first) return reply();
          auto buf = std::make_shared<std::string>();
          net::async_read_until(*sock, net::dynamic_buffer(*buf), "\r\n\r\n",
                                [this, buf, reply](boost::system::error_code ec, size_t) {
                                  if (ec) return;
                                  request_ = *buf;
                                  reply();
                                });
        });
  }
  const std::string& request() const { return request_; }

 private:
  net::ip::tcp::acceptor acceptor_;
  std::string request_;
};

Result<std::string> Get(net::io_context& ioc, const std::string& url) {
  Result<std::string> out = Status(Code::kInternal, "not called");
  bool called = false;
  HttpGet(ioc.get_executor(), url, [&](Result<std::string> r) {
    called = true;
    out = std::move(r);
  });
  ioc.restart();
  ioc.run_for(std::chrono::seconds(15));
  EXPECT_TRUE(called) << url;
  return out;
}

TEST(HttpGetTest, ReadsA200Body) {
  net::io_context ioc;
  OneShotServer server(ioc);
  server.Serve("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"keys\":[]}");
  auto r = Get(ioc, "http://127.0.0.1:" + std::to_string(server.port()) + "/t/keys?a=1");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(*r, R"({"keys":[]})");
  EXPECT_EQ(server.request().rfind("GET /t/keys?a=1 HTTP/1.1\r\n", 0), 0u) << server.request();
  EXPECT_NE(server.request().find("Host: 127.0.0.1:"), std::string::npos);
}

TEST(HttpGetTest, ReadsABodyUntilClose) {
  net::io_context ioc;
  OneShotServer server(ioc);
  server.Serve("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n{\"keys\":[1]}");
  auto r = Get(ioc, "http://127.0.0.1:" + std::to_string(server.port()) + "/");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(*r, R"({"keys":[1]})");
}

TEST(HttpGetTest, ReportsHttpErrors) {
  net::io_context ioc;
  OneShotServer server(ioc);
  server.Serve("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
  auto r = Get(ioc, "http://127.0.0.1:" + std::to_string(server.port()) + "/keys");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "HTTP 404");
}

TEST(HttpGetTest, RefusesOversizedAnswers) {
  net::io_context ioc;
  OneShotServer server(ioc);
  server.Serve("HTTP/1.1 200 OK\r\nContent-Length: 2000000\r\n\r\n");
  auto r = Get(ioc, "http://127.0.0.1:" + std::to_string(server.port()) + "/keys");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("larger than"), std::string::npos) << r.status().message();
}

TEST(HttpGetTest, ReportsConnectionFailures) {
  net::io_context ioc;
  uint16_t port;
  {
    OneShotServer closed(ioc);  // a port that was free a moment ago and is closed again
    port = closed.port();
  }
  auto r = Get(ioc, "http://127.0.0.1:" + std::to_string(port) + "/keys");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("cannot connect"), std::string::npos) << r.status().message();
  r = Get(ioc, "gopher://x/");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
}

TEST(HttpGetTest, TlsToAPlainServerFails) {
  net::io_context ioc;
  OneShotServer server(ioc);
  server.Serve("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}", false);
  auto r = Get(ioc, "https://127.0.0.1:" + std::to_string(server.port()) + "/keys");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("TLS"), std::string::npos) << r.status().message();
}

}  // namespace
}  // namespace tributary::server
