#include "oidc.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>
#include <cstdio>
#include <set>
#include <type_traits>

#include "tributary/base/strings.h"

namespace tributary::server {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;

namespace {

constexpr auto kStepTimeout = std::chrono::seconds(10);
constexpr size_t kMaxJwksBytes = 1u << 20;
// Requests that may wait for one issuer's key fetch; more are answered 503 at once.
constexpr size_t kMaxWaiters = 10000;

Status Unauthenticated(std::string m) { return Status(Code::kUnauthenticated, std::move(m), err::kUnauthorized); }

ssl::context& ClientTlsContext() {
  // Shared by every fetch; creating SSL objects from one SSL_CTX is thread-safe.
  static ssl::context* ctx = [] {
    auto* c = new ssl::context(ssl::context::tls_client);
    c->set_default_verify_paths();
    c->set_verify_mode(ssl::verify_peer);
    return c;
  }();
  return *ctx;
}

// One GET on a fresh connection. Owns itself through the shared_ptrs its handlers hold.
template <bool kTls>
class GetOp : public std::enable_shared_from_this<GetOp<kTls>> {
 public:
  using Stream = std::conditional_t<kTls, beast::ssl_stream<beast::tcp_stream>, beast::tcp_stream>;

  GetOp(const net::any_io_executor& ex, HttpUrl url, std::function<void(Result<std::string>)> done)
      : resolver_(ex), stream_(MakeStream(ex)), url_(std::move(url)), done_(std::move(done)) {}

  void Start() {
    resolver_.async_resolve(url_.host, url_.port,
                            [self = this->shared_from_this()](beast::error_code ec, tcp::resolver::results_type r) {
                              self->OnResolve(ec, std::move(r));
                            });
  }

 private:
  static Stream MakeStream(const net::any_io_executor& ex) {
    if constexpr (kTls)
      return Stream(ex, ClientTlsContext());
    else
      return Stream(ex);
  }
  beast::tcp_stream& Lowest() { return beast::get_lowest_layer(stream_); }

  void Finish(Result<std::string> r) {
    if (!done_) return;
    auto done = std::move(done_);
    done_ = nullptr;
    beast::error_code ignored;
    Lowest().socket().close(ignored);
    done(std::move(r));
  }
  void Fail(std::string_view what, beast::error_code ec) {
    Finish(Status(Code::kUnavailable, std::string(what) + ": " + ec.message()));
  }

  void OnResolve(beast::error_code ec, tcp::resolver::results_type results) {
    if (ec) return Fail("cannot resolve " + url_.host, ec);
    Lowest().expires_after(kStepTimeout);
    Lowest().async_connect(results, [self = this->shared_from_this()](beast::error_code ec, const tcp::endpoint&) {
      self->OnConnect(ec);
    });
  }

  void OnConnect(beast::error_code ec) {
    if (ec) return Fail("cannot connect to " + url_.host + ":" + url_.port, ec);
    if constexpr (kTls) {
      beast::error_code ip_ec;
      net::ip::make_address(url_.host, ip_ec);
      if (ip_ec && !SSL_set_tlsext_host_name(stream_.native_handle(), url_.host.c_str()))
        return Finish(Status(Code::kUnavailable, "cannot set the TLS server name"));
      stream_.set_verify_callback(ssl::host_name_verification(url_.host));
      Lowest().expires_after(kStepTimeout);
      stream_.async_handshake(ssl::stream_base::client, [self = this->shared_from_this()](beast::error_code ec) {
        if (ec) return self->Fail("TLS handshake with " + self->url_.host + " failed", ec);
        self->Send();
      });
    } else {
      Send();
    }
  }

  void Send() {
    req_.method(http::verb::get);
    req_.target(url_.target);
    req_.version(11);
    bool default_port = url_.port == (kTls ? "443" : "80");
    std::string host = url_.host.find(':') != std::string::npos ? "[" + url_.host + "]" : url_.host;
    req_.set(http::field::host, default_port ? host : host + ":" + url_.port);
    req_.set(http::field::user_agent, "Tributary");
    req_.set(http::field::accept, "application/json");
    req_.set(http::field::connection, "close");
    Lowest().expires_after(kStepTimeout);
    http::async_write(stream_, req_, [self = this->shared_from_this()](beast::error_code ec, size_t) {
      if (ec) return self->Fail("cannot send the request to " + self->url_.host, ec);
      self->parser_.body_limit(kMaxJwksBytes);
      self->Lowest().expires_after(kStepTimeout);
      http::async_read(self->stream_, self->buffer_, self->parser_,
                       [self](beast::error_code ec, size_t) { self->OnRead(ec); });
    });
  }

  void OnRead(beast::error_code ec) {
    if (ec == ssl::error::stream_truncated && parser_.is_done()) ec = {};  // closed without close_notify
    if (ec == http::error::body_limit)
      return Finish(
          Status(Code::kUnavailable, "the answer is larger than " + std::to_string(kMaxJwksBytes) + " bytes"));
    if (ec) return Fail("cannot read the answer of " + url_.host, ec);
    auto& res = parser_.get();
    if (res.result_int() != 200) return Finish(Status(Code::kUnavailable, "HTTP " + std::to_string(res.result_int())));
    Finish(std::move(res.body()));
  }

  tcp::resolver resolver_;
  Stream stream_;
  HttpUrl url_;
  std::function<void(Result<std::string>)> done_;
  beast::flat_buffer buffer_;
  http::request<http::empty_body> req_;
  http::response_parser<http::string_body> parser_;
};

}  // namespace

Result<HttpUrl> ParseHttpUrl(std::string_view url) {
  auto bad = [&](std::string_view why) {
    return InvalidArgument("'" + PrintableText(url) + "' is not an http(s) URL: " + std::string(why) + ".");
  };
  HttpUrl u;
  std::string_view rest;
  if (StartsWithIgnoreCase(url, "https://")) {
    u.tls = true;
    rest = url.substr(8);
  } else if (StartsWithIgnoreCase(url, "http://")) {
    rest = url.substr(7);
  } else {
    return bad("the scheme must be http or https");
  }
  for (char c : url)
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) return bad("it contains spaces or control characters");
  if (rest.find('#') != std::string_view::npos) return bad("it has a fragment");
  size_t end = rest.find_first_of("/?");
  std::string_view authority = rest.substr(0, end);
  std::string_view target = end == std::string_view::npos ? std::string_view() : rest.substr(end);
  if (authority.find('@') != std::string_view::npos) return bad("user information is not supported");
  std::string_view host = authority, port;
  if (authority.starts_with('[')) {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return bad("the IPv6 address has no ']'");
    host = authority.substr(1, close - 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') return bad("unexpected text after the host");
      port = after.substr(1);
    }
  } else if (size_t colon = authority.find(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
  }
  if (host.empty()) return bad("the host is empty");
  if (!port.empty()) {
    int p = 0;
    for (char c : port) {
      if (c < '0' || c > '9' || p > 65535) return bad("the port is not a number from 1 to 65535");
      p = p * 10 + (c - '0');
    }
    if (p < 1 || p > 65535) return bad("the port is not a number from 1 to 65535");
    u.port = std::to_string(p);
  } else {
    u.port = u.tls ? "443" : "80";
  }
  u.host = std::string(host);
  u.target = target.empty() ? "/" : target.starts_with('?') ? "/" + std::string(target) : std::string(target);
  return u;
}

void HttpGet(const net::any_io_executor& ex, const std::string& url, std::function<void(Result<std::string>)> done) {
  auto u = ParseHttpUrl(url);
  if (!u.ok()) return done(u.status());
  if (u->tls)
    std::make_shared<GetOp<true>>(ex, std::move(*u), std::move(done))->Start();
  else
    std::make_shared<GetOp<false>>(ex, std::move(*u), std::move(done))->Start();
}

struct JwksCache::State {
  std::string issuer;
  std::string url;
  int64_t cache_ms = 0;
  int64_t min_refresh_ms = 0;

  std::mutex mu;
  KeysPtr keys;              // the last key set fetched; null before the first success
  int64_t fetched_at = 0;    // ms, of `keys`
  int64_t last_attempt = 0;  // ms
  bool attempted = false;
  bool in_flight = false;
  Status last_error;          // of the last attempt
  std::vector<Done> waiters;  // callers waiting for the fetch in flight
  uint64_t fetches = 0;

  // Under `mu`: records the start of a fetch.
  void Mark(int64_t now) {
    in_flight = attempted = true;
    last_attempt = now;
    ++fetches;
  }
};

JwksCache::JwksCache(std::vector<security::TrustedIssuer> issuers, Fetch fetch, const Clock& clock)
    : issuers_(std::move(issuers)), fetch_(std::move(fetch)), clock_(clock) {
  for (const auto& i : issuers_) {
    auto s = std::make_shared<State>();
    s->issuer = i.issuer;
    s->url = i.jwks_uri;
    s->cache_ms = int64_t{i.jwks_cache_seconds} * 1000;
    s->min_refresh_ms = int64_t{i.jwks_min_refresh_seconds} * 1000;
    states_.push_back(std::move(s));
  }
}

JwksCache::~JwksCache() = default;

Status JwksCache::Validate(const std::vector<security::TrustedIssuer>& issuers) {
  std::set<std::string> seen;
  for (size_t n = 0; n < issuers.size(); ++n) {
    const auto& i = issuers[n];
    std::string where = "identity.issuers[" + std::to_string(n) + "]";
    if (i.issuer.empty()) return InvalidArgument(where + ".issuer is required.");
    if (!seen.insert(i.issuer).second) return InvalidArgument(where + ": the issuer " + i.issuer + " is listed twice.");
    if (i.audiences.empty()) return InvalidArgument(where + ".audience is required.");
    for (const auto& a : i.audiences)
      if (a.empty()) return InvalidArgument(where + ".audience must not be empty.");
    if (i.jwks_uri.empty()) return InvalidArgument(where + ".jwks_uri is required.");
    if (auto u = ParseHttpUrl(i.jwks_uri); !u.ok())
      return InvalidArgument(where + ".jwks_uri: " + u.status().message());
    if (i.jwks_cache_seconds < 1) return InvalidArgument(where + ".jwks_cache_seconds must be at least 1.");
    if (i.jwks_min_refresh_seconds < 1) return InvalidArgument(where + ".jwks_min_refresh_seconds must be at least 1.");
  }
  return Status::Ok();
}

const security::TrustedIssuer* JwksCache::Find(std::string_view iss, size_t& index) const {
  for (size_t i = 0; i < issuers_.size(); ++i) {
    if (issuers_[i].issuer == iss) {
      index = i;
      return &issuers_[i];
    }
  }
  return nullptr;
}

void JwksCache::StartFetch(const std::shared_ptr<State>& state) {
  const Clock* clock = &clock_;
  fetch_(state->url, [state, clock](Result<std::string> body) {
    KeysPtr fresh;
    Status error;
    if (!body.ok()) {
      error = body.status();
    } else if (auto set = security::JwksKeySet::Parse(*body); !set.ok()) {
      error = set.status();
    } else if (set->size() == 0) {
      error = Status(Code::kUnavailable, "the key set has no usable RS256/ES256 signing key");
    } else {
      fresh = std::make_shared<const security::JwksKeySet>(std::move(*set));
    }
    std::vector<Done> waiters;
    {
      std::lock_guard lock(state->mu);
      state->in_flight = false;
      if (fresh) {
        state->keys = fresh;
        state->fetched_at = clock->Now().ms;
        state->last_error = Status::Ok();
      } else {
        state->last_error = Unauthenticated("The signing keys of issuer " + state->issuer +
                                            " could not be fetched: " + error.message());
      }
      waiters.swap(state->waiters);
      error = state->last_error;
    }
    if (!fresh) std::fprintf(stderr, "tributary: identity: %s\n", error.message().c_str());
    for (auto& w : waiters) {
      if (fresh)
        w(fresh);
      else
        w(error);
    }
  });
}

void JwksCache::Prefetch() {
  for (const auto& s : states_) {
    {
      std::lock_guard lock(s->mu);
      if (s->in_flight || s->attempted) continue;
      s->Mark(clock_.Now().ms);
    }
    StartFetch(s);
  }
}

void JwksCache::Get(size_t index, std::string_view kid, Done done) {
  const auto& s = states_.at(index);
  KeysPtr keys;
  Status error;
  bool start = false, waiting = false;
  {
    std::lock_guard lock(s->mu);
    int64_t now = clock_.Now().ms;
    bool throttled = s->attempted && now - s->last_attempt < s->min_refresh_ms;
    if (s->keys && s->keys->Has(kid)) {
      keys = s->keys;
      if (!s->in_flight && !throttled && now - s->fetched_at >= s->cache_ms) {
        s->Mark(now);  // refresh in the background; this caller uses the cached set
        start = true;
      }
    } else if (s->in_flight && s->waiters.size() < kMaxWaiters) {
      s->waiters.push_back(std::move(done));
      return;
    } else if (s->in_flight) {
      error = Status(Code::kUnavailable, "The signing keys of issuer " + s->issuer + " are being fetched; try again.");
    } else if (!throttled) {
      s->Mark(now);
      s->waiters.push_back(std::move(done));
      start = waiting = true;
    } else {
      keys = s->keys;
      error = s->last_error;
    }
  }
  if (start) StartFetch(s);
  if (waiting) return;
  if (keys && error.ok()) return done(keys);
  if (error.ok()) error = Unauthenticated("The signing keys of issuer " + s->issuer + " are not available yet.");
  done(error);
}

uint64_t JwksCache::fetch_count(size_t index) const {
  const auto& s = states_.at(index);
  std::lock_guard lock(s->mu);
  return s->fetches;
}

}  // namespace tributary::server
