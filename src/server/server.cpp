#include "tributary/server/server.h"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <thread>
#include <vector>

#include "auth.h"
#include "metrics.h"
#include "servicebus.h"
#include "throttle.h"
#include "tributary/base/strings.h"
#include "tributary/bus/broker.h"
#include "tributary/odata/errors.h"
#include "tributary/odata/webapi.h"

namespace tributary::server {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using odata::HttpRequest;
using odata::HttpResponse;

namespace {

constexpr const char* kExposeHeaders =
    "Preference-Applied, OData-EntityId, Location, ETag, OData-Version, Content-Encoding, Transfer-Encoding, "
    "BrokerProperties, "
    "Content-Length, Retry-After, x-ms-dop-hint, x-ms-ratelimit-burst-remaining-xrm-requests, "
    "x-ms-ratelimit-time-remaining-xrm-requests";

// Single-request uploads to file columns (PATCH …/{column} with application/octet-stream) may
// carry up to 128 MiB, as in Dataverse; every other request keeps ServerOptions::max_body_bytes.
constexpr size_t kMaxFileUploadBytes = 128u << 20;

template <typename Message>
bool IsFileUpload(const Message& msg) {
  std::string_view target(msg.target().data(), msg.target().size());
  auto ct = msg[http::field::content_type];
  return msg.method() == http::verb::patch && (target.rfind("/api/", 0) == 0 || target.rfind("//api/", 0) == 0) &&
         StartsWithIgnoreCase(Trim(std::string_view(ct.data(), ct.size())), "application/octet-stream");
}

// The key cache of the configured external issuers, or null when there are none.
std::unique_ptr<JwksCache> MakeJwksCache(const std::vector<security::TrustedIssuer>& issuers,
                                         const net::any_io_executor& ex, const Clock& clock) {
  if (issuers.empty()) return nullptr;
  return std::make_unique<JwksCache>(
      issuers,
      [ex](const std::string& url, std::function<void(Result<std::string>)> done) {
        HttpGet(ex, url, std::move(done));
      },
      clock);
}

HttpResponse JsonText(int status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  r.Set("Content-Type", "application/json; charset=utf-8");
  return r;
}

}  // namespace

class Server::Impl {
 public:
  Impl(data::Environment& env, ServerOptions o)
      : env_(env),
        options_(std::move(o)),
        ioc_(options_.threads > 0 ? options_.threads : std::max(1u, std::thread::hardware_concurrency())),
        acceptor_(ioc_),
        signals_(ioc_, SIGINT, SIGTERM),
        auth_(env, MakeJwksCache(options_.issuers, ioc_.get_executor(), env.clock())),
        webapi_(env, [this](std::function<void()> fn) { net::post(ioc_, std::move(fn)); }),
        bus_(options_.broker ? std::make_unique<ServiceBusHttp>(*options_.broker) : nullptr) {}

  Result<uint16_t> Start() {
    RETURN_IF_ERROR(JwksCache::Validate(options_.issuers));
    RETURN_IF_ERROR(ServiceProtection::Validate(options_.service_protection));
    if (options_.service_protection.enabled)
      throttle_ = std::make_unique<ServiceProtection>(options_.service_protection, env_.clock());
    beast::error_code ec;
    auto addr = net::ip::make_address(options_.host, ec);
    if (ec) return InvalidArgument("'" + options_.host + "' is not an IP address to listen on.");
    tcp::endpoint ep(addr, options_.port);
    acceptor_.open(ep.protocol(), ec);
    if (!ec) acceptor_.set_option(net::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(ep, ec);
    if (!ec) acceptor_.listen(net::socket_base::max_listen_connections, ec);
    if (ec)
      return Status(Code::kUnavailable,
                    "cannot listen on " + options_.host + ":" + std::to_string(options_.port) + ": " + ec.message());
    port_ = acceptor_.local_endpoint().port();
    auth_.Prefetch();
    Accept();
    signals_.async_wait([this](beast::error_code e, int) {
      if (!e) Stop();
    });
    return port_;
  }

  void Run() {
    int n =
        options_.threads > 0 ? options_.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    std::vector<std::thread> threads;
    for (int i = 1; i < n; ++i) threads.emplace_back([this] { ioc_.run(); });
    ioc_.run();
    for (auto& t : threads) t.join();
  }

  void Stop() {
    net::post(ioc_, [this] {
      if (stopping_) return;
      stopping_ = true;
      beast::error_code ec;
      acceptor_.close(ec);
      signals_.cancel(ec);
      // Answers the bus's pending long polls (503) within the grace period below.
      if (options_.broker) options_.broker->Shutdown();
      // Give in-flight requests a moment to be answered, then stop.
      auto timer = std::make_shared<net::steady_timer>(ioc_, std::chrono::milliseconds(300));
      timer->async_wait([this, timer](beast::error_code) { ioc_.stop(); });
    });
  }

  // Dispatches one request; `respond` may be called from any thread.
  void Dispatch(HttpRequest req, std::function<void(HttpResponse)> respond) {
    std::string_view target = req.target;
    std::string_view path = target.substr(0, target.find('?'));
    if (req.method == "OPTIONS") {
      HttpResponse r;
      r.status = 204;
      r.Set("Access-Control-Allow-Methods", "GET, POST, PATCH, PUT, DELETE, OPTIONS");
      const std::string* h = req.Header("access-control-request-headers");
      r.Set("Access-Control-Allow-Headers", h ? *h : "*");
      r.Set("Access-Control-Max-Age", "600");
      return respond(std::move(r));
    }
    if (path == "/healthz") return respond(JsonText(200, "{\"status\":\"ok\"}"));
    if (path == "/metrics") {
      HttpResponse r;
      r.body = metrics_.Render(env_.engine().stats());
      if (bus_) r.body += bus_->RenderMetrics();
      r.Set("Content-Type", "text/plain; version=0.0.4");
      return respond(std::move(r));
    }
    if (path.ends_with("/oauth2/v2.0/token")) {
      // /oauth2/v2.0/token or /{tenant}/oauth2/v2.0/token
      auto prefix = path.substr(0, path.size() - std::string_view("/oauth2/v2.0/token").size());
      if (prefix.empty() || prefix.find('/', 1) == std::string_view::npos) return respond(auth_.Token(req));
    }
    if (path.rfind("/api/", 0) == 0 || path.rfind("//api/", 0) == 0) {
      // Authentication may wait for an external issuer's keys: the request moves into the callback.
      auto pending = std::make_shared<HttpRequest>(std::move(req));
      auto started = std::chrono::steady_clock::now();
      return auth_.Authenticate(
          *pending, [this, pending, started, respond = std::move(respond)](Result<data::CallerContext> caller) mutable {
            if (!caller.ok()) return respond(auth_.Refuse(*pending, caller.status()));
            if (throttle_) {
              // Limits are per real caller, also while impersonating.
              const Guid& user = caller->initiating_user_id.IsNil() ? caller->user_id : caller->initiating_user_id;
              auto admitted = throttle_->Admit(user);
              if (auto* refusal = std::get_if<ServiceProtection::Refusal>(&admitted)) {
                metrics_.Throttled(refusal->reason);
                return respond(throttle_->Refuse(*refusal));
              }
              auto permit =
                  std::make_shared<ServiceProtection::Permit>(std::get<ServiceProtection::Permit>(std::move(admitted)));
              respond = [permit, started, respond = std::move(respond)](HttpResponse r) {
                auto execution =
                    std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - started);
                ServiceProtection::AddBudgetHeaders(r, permit->Finish(execution));
                respond(std::move(r));
              };
            }
            webapi_.Handle(*caller, std::move(*pending), std::move(respond));
          });
    }
    if (path.rfind("/servicebus/", 0) == 0) {
      // The message bus (docs/servicebus.md): any authenticated user; no service protection
      // limits, since long polls would use up the execution-time budget.
      if (!bus_) return respond(ServiceBusHttp::Error(NotFound("The message bus is not enabled on this server.")));
      auto pending = std::make_shared<HttpRequest>(std::move(req));
      return auth_.Authenticate(
          *pending, [this, pending, respond = std::move(respond)](Result<data::CallerContext> caller) mutable {
            if (!caller.ok()) return respond(auth_.Refuse(*pending, caller.status()));
            bus_->Handle(std::move(*pending), std::move(respond));
          });
    }
    if (path == "/") {
      return respond(
          JsonText(200, "{\"name\":\"Tributary\",\"webapi\":\"/api/data/v9.2/\",\"token\":\"/oauth2/v2.0/token\"}"));
    }
    respond(odata::ErrorResponse(NotFound("No resource at '" + std::string(path) + "'.", err::kQueryError)));
  }

  const ServerOptions& options() const { return options_; }
  Metrics& metrics() { return metrics_; }
  uint16_t port() const { return port_; }

 private:
  void Accept();

  data::Environment& env_;
  ServerOptions options_;
  // Null while the limits are off; set by Start. Declared before ioc_ so that it outlives the
  // permits held by handlers that are still queued when the server is destroyed.
  std::unique_ptr<ServiceProtection> throttle_;
  net::io_context ioc_;
  tcp::acceptor acceptor_;
  net::signal_set signals_;
  Auth auth_;
  odata::WebApi webapi_;
  std::unique_ptr<ServiceBusHttp> bus_;  // null without a broker
  Metrics metrics_;
  uint16_t port_ = 0;
  bool stopping_ = false;
};

namespace {

// One HTTP/1.1 connection: read a request, answer it, repeat while keep-alive.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, Server::Impl& server) : stream_(std::move(socket)), server_(server) {
    server_.metrics().ConnectionOpened();
  }
  ~Session() { server_.metrics().ConnectionClosed(); }

  void Start() {
    net::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->Read(); });
  }

 private:
  void Read() {
    parser_.emplace();
    // The header is read first with the larger limit (Beast checks Content-Length against the
    // limit as the header completes); OnHeader then sets the limit that applies to the request.
    body_limit_ = std::max(server_.options().max_body_bytes, kMaxFileUploadBytes);
    parser_->body_limit(body_limit_);
    parser_->header_limit(static_cast<uint32_t>(server_.options().max_header_bytes));
    stream_.expires_after(std::chrono::seconds(server_.options().idle_timeout_seconds));
    http::async_read_header(stream_, buffer_, *parser_,
                            [self = shared_from_this()](beast::error_code ec, size_t) { self->OnHeader(ec); });
  }

  void OnHeader(beast::error_code ec) {
    if (ec) return OnRead(ec);
    if (!IsFileUpload(parser_->get())) {
      body_limit_ = server_.options().max_body_bytes;
      if (auto len = parser_->content_length(); len && *len > body_limit_) return OnRead(http::error::body_limit);
      parser_->body_limit(body_limit_);  // applies to chunked transfer encoding as it arrives
    }
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, size_t) { self->OnRead(ec); });
  }

  void OnRead(beast::error_code ec) {
    if (ec == http::error::end_of_stream || ec == net::error::operation_aborted || ec == beast::error::timeout ||
        ec == net::error::connection_reset || ec == net::error::eof) {
      return Close();
    }
    if (ec) {
      // Malformed or oversized requests get an answer in the Dataverse error shape, then the
      // connection closes (the rest of the stream cannot be trusted).
      Status s =
          ec == http::error::body_limit
              ? Status(Code::kPayloadTooLarge,
                       "The request body is larger than the limit of " + std::to_string(body_limit_) + " bytes.",
                       err::kRequestTooLarge)
          : ec == http::error::header_limit
              ? Status(Code::kInvalidArgument, "The request headers are larger than the limit.", err::kInvalidArgument)
              : Status(Code::kInvalidArgument, "Malformed HTTP request: " + ec.message(), err::kInvalidArgument);
      keep_alive_ = false;
      version_ = 11;
      start_ = std::chrono::steady_clock::now();
      return Write(odata::ErrorResponse(s));
    }
    auto& msg = parser_->get();
    keep_alive_ = msg.keep_alive();
    version_ = msg.version();
    start_ = std::chrono::steady_clock::now();
    size_t header_count = std::distance(msg.begin(), msg.end());
    if (header_count > server_.options().max_header_count)
      return Write(odata::ErrorResponse(
          InvalidArgument("The request has " + std::to_string(header_count) + " headers; at most " +
                          std::to_string(server_.options().max_header_count) + " are accepted.")));
    if (msg.target().size() > server_.options().max_url_bytes)
      return Write(odata::ErrorResponse(InvalidArgument("The URL is longer than " +
                                                        std::to_string(server_.options().max_url_bytes) +
                                                        " characters; send long queries in a $batch request.")));
    HttpRequest req;
    req.method = std::string(msg.method_string().data(), msg.method_string().size());
    req.target = std::string(msg.target().data(), msg.target().size());
    req.headers.reserve(16);
    // Service Bus custom properties are headers whose names keep their case.
    bool keep_names = req.target.rfind("/servicebus/", 0) == 0;
    for (const auto& f : msg) {
      std::string_view name(f.name_string().data(), f.name_string().size());
      req.headers.emplace_back(ToLower(name), std::string(f.value().data(), f.value().size()));
      if (keep_names) req.header_names.emplace_back(name);
    }
    req.body = std::move(msg.body());
    const std::string& pub = server_.options().public_url;
    if (!pub.empty()) {
      req.base_url = pub;
    } else {
      const std::string* host = req.Header("host");
      const std::string* proto = req.Header("x-forwarded-proto");
      const std::string* fwd_host = req.Header("x-forwarded-host");
      std::string h = fwd_host ? *fwd_host
                      : host   ? *host
                               : server_.options().host + ":" + std::to_string(server_.port());
      req.base_url = (proto ? *proto : std::string("http")) + "://" + h;
    }
    stream_.expires_never();
    server_.Dispatch(std::move(req), [self = shared_from_this()](HttpResponse r) {
      net::post(self->stream_.get_executor(), [self, r = std::move(r)]() mutable { self->Write(std::move(r)); });
    });
  }

  void Write(HttpResponse r) {
    auto res = std::make_shared<http::response<http::string_body>>(static_cast<http::status>(r.status), version_);
    res->set(http::field::server, "Tributary");
    res->set(http::field::access_control_allow_origin, "*");
    res->set(http::field::access_control_expose_headers, kExposeHeaders);
    for (auto& [k, v] : r.headers) res->set(k, v);
    res->body() = std::move(r.body);
    res->keep_alive(keep_alive_);
    res->prepare_payload();
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    server_.metrics().Observe(r.status, secs);
    stream_.expires_after(std::chrono::seconds(30));
    http::async_write(stream_, *res, [self = shared_from_this(), res](beast::error_code ec, size_t) {
      if (ec) return self->Close();
      if (!self->keep_alive_) return self->Linger();
      self->Read();
    });
  }

  void Close() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
  }

  // Lingering close: stop sending, then read and discard what the client still sends (a refused
  // upload) for a bounded time and size, so the client reads our answer instead of a reset.
  void Linger() {
    Close();
    drained_ = 0;
    stream_.expires_after(std::chrono::seconds(10));
    DrainSome();
  }

  void DrainSome() {
    if (!scratch_) scratch_ = std::make_unique<std::array<char, 65536>>();
    stream_.async_read_some(net::buffer(*scratch_), [self = shared_from_this()](beast::error_code ec, size_t n) {
      self->drained_ += n;
      if (ec || self->drained_ > (256u << 20)) return;  // EOF, timeout or too much: let the socket close
      self->DrainSome();
    });
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  Server::Impl& server_;
  bool keep_alive_ = true;
  unsigned version_ = 11;
  size_t body_limit_ = 0;  // of the request being read
  size_t drained_ = 0;
  std::unique_ptr<std::array<char, 65536>> scratch_;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace

void Server::Impl::Accept() {
  acceptor_.async_accept(net::make_strand(ioc_), [this](beast::error_code ec, tcp::socket socket) {
    if (ec) {
      if (ec == net::error::operation_aborted || !acceptor_.is_open()) return;
    } else {
      beast::error_code ignored;
      socket.set_option(tcp::no_delay(true), ignored);
      std::make_shared<Session>(std::move(socket), *this)->Start();
    }
    Accept();
  });
}

Server::Server(data::Environment& env, ServerOptions options)
    : impl_(std::make_unique<Impl>(env, std::move(options))) {}
Server::~Server() = default;
Result<uint16_t> Server::Start() { return impl_->Start(); }
void Server::Run() { impl_->Run(); }
void Server::Stop() { impl_->Stop(); }

}  // namespace tributary::server
