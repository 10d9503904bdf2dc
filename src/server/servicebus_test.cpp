// The /servicebus/ handler against a real broker on a temporary store, with a manual clock:
// BrokerProperties and custom-property headers in and out, RFC 1123 dates, routes, the error
// statuses, scheduled sends, management and metrics.
#include "servicebus.h"

#include <gtest/gtest.h>

#include <unistd.h>
#include <chrono>
#include <filesystem>
#include <future>
#include <memory>
#include <thread>

#include "tributary/base/json.h"
#include "tributary/base/strings.h"
#include "tributary/storage/engine.h"

namespace tributary::server {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using odata::HttpRequest;
using odata::HttpResponse;

constexpr int64_t kStart = 1'700'000'000'000;  // Tue, 14 Nov 2023 22:13:20 GMT

struct Header {
  std::string name, value;
};

class ServiceBusHttpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("tributary-sbhttp-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    auto e = storage::OpenSqlite({.path = (dir_ / "bus.db").string(), .read_connections = 2});
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    engine_ = std::move(e).value();
    auto b = bus::Broker::Open(*engine_, clock_, bus::BrokerOptions{.tick_interval = 0ms});
    ASSERT_TRUE(b.ok()) << b.status().ToString();
    broker_ = std::move(b).value();
    http_ = std::make_unique<ServiceBusHttp>(*broker_);
  }
  void TearDown() override {
    http_.reset();
    if (broker_) broker_->Shutdown();
    if (engine_) engine_->Shutdown();
    broker_.reset();
    engine_.reset();
    fs::remove_all(dir_);
  }

  HttpResponse Call(std::string method, std::string target, std::string body = "", std::vector<Header> headers = {}) {
    HttpRequest r;
    r.method = std::move(method);
    r.target = "/servicebus/" + target;
    r.base_url = "http://sb.test";
    for (auto& h : headers) {
      r.headers.emplace_back(ToLower(h.name), h.value);
      r.header_names.push_back(h.name);
    }
    r.body = std::move(body);
    auto p = std::make_shared<std::promise<HttpResponse>>();
    auto f = p->get_future();
    http_->Handle(std::move(r), [p](HttpResponse x) { p->set_value(std::move(x)); });
    if (f.wait_for(10s) != std::future_status::ready) {
      ADD_FAILURE() << "no answer";
      return {};
    }
    return f.get();
  }

  static const std::string* Get(const HttpResponse& r, std::string_view name) {
    for (const auto& [k, v] : r.headers)
      if (EqualsIgnoreCase(k, name)) return &v;
    return nullptr;
  }
  static Json BrokerProperties(const HttpResponse& r) {
    const std::string* h = Get(r, "BrokerProperties");
    if (!h) return Json();
    auto j = ParseJson(*h);
    return j.ok() ? *j : Json();
  }
  static std::string ErrorCode(const HttpResponse& r) {
    auto j = ParseJson(r.body);
    if (!j.ok() || !j->Find("error")) return "";
    return j->Find("error")->Find("code")->as_string();
  }

  void Queue(const std::string& name, std::string body = "{}") {
    ASSERT_EQ(Call("PUT", "$management/queues/" + name, std::move(body)).status, 201);
  }

  fs::path dir_;
  ManualClock clock_{Timestamp{kStart}};
  std::unique_ptr<storage::Engine> engine_;
  std::unique_ptr<bus::Broker> broker_;
  std::unique_ptr<ServiceBusHttp> http_;
};

TEST_F(ServiceBusHttpTest, SendAndPeekLockCarryTheProperties) {
  Queue("q");
  HttpResponse s = Call("POST", "q/messages", "body",
                        {{"Authorization", "Bearer x"},
                         {"Content-Type", "text/plain"},
                         {"BrokerProperties", R"({"MessageId":"m1","Label":"L","SessionId":null,"Unknown":1})"},
                         {"Priority", "\"High\""},
                         {"Count", "42"},
                         {"Ratio", "0.5"},
                         {"Flag", "false"},
                         {"Bare", "just text"},
                         {"x-ms-client-request-id", "ignored"}});
  ASSERT_EQ(s.status, 201) << s.body;
  HttpResponse r = Call("POST", "q/messages/head?timeout=0");
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(r.body, "body");
  Json bp = BrokerProperties(r);
  EXPECT_EQ(bp.Find("MessageId")->as_string(), "m1");
  EXPECT_EQ(bp.Find("Label")->as_string(), "L");
  EXPECT_EQ(bp.Find("DeliveryCount")->as_int(), 1);
  EXPECT_EQ(bp.Find("SequenceNumber")->as_int(), 1);
  EXPECT_EQ(bp.Find("EnqueuedTimeUtc")->as_string(), "Tue, 14 Nov 2023 22:13:20 GMT");
  EXPECT_EQ(bp.Find("LockedUntilUtc")->as_string(), "Tue, 14 Nov 2023 22:14:20 GMT");
  std::string token = bp.Find("LockToken")->as_string();
  EXPECT_EQ(*Get(r, "Location"), "http://sb.test/servicebus/q/messages/1/" + token);
  EXPECT_EQ(*Get(r, "Content-Type"), "text/plain");
  // Custom properties keep the case they were sent with and their types.
  bool saw_priority = false;
  for (const auto& [k, v] : r.headers)
    if (k == "Priority") saw_priority = v == "\"High\"";
  EXPECT_TRUE(saw_priority);
  EXPECT_EQ(*Get(r, "Count"), "42");
  EXPECT_EQ(*Get(r, "Ratio"), "0.5");
  EXPECT_EQ(*Get(r, "Flag"), "false");
  EXPECT_EQ(*Get(r, "Bare"), "\"just text\"");
  EXPECT_EQ(Get(r, "Authorization"), nullptr);
  EXPECT_EQ(Get(r, "x-ms-client-request-id"), nullptr);

  EXPECT_EQ(Call("DELETE", "q/messages/1/" + token).status, 200);
  HttpResponse again = Call("DELETE", "q/messages/1/" + token);
  EXPECT_EQ(again.status, 410);
  EXPECT_EQ(ErrorCode(again), "0x80131503");
}

TEST_F(ServiceBusHttpTest, NonAsciiTravelsEscapedInHeaders) {
  Queue("q");
  ASSERT_EQ(Call("POST", "q/messages",
                 R"([{"Body":"b","BrokerProperties":{"Label":"Zoë"},"UserProperties":{"who":"Zoë 😀","bad name":1}}])",
                 {{"Content-Type", "application/vnd.microsoft.servicebus.json"}})
                .status,
            201);
  HttpResponse r = Call("DELETE", "q/messages/head?timeout=0");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(*Get(r, "who"), "\"Zo\\u00eb \\ud83d\\ude00\"");
  EXPECT_NE(Get(r, "BrokerProperties")->find("Zo\\u00eb"), std::string::npos);
  EXPECT_EQ(Get(r, "bad name"), nullptr) << "not a header token";
  for (const auto& [k, v] : r.headers)
    for (char c : v) EXPECT_TRUE(static_cast<unsigned char>(c) < 0x80 && c != '\n' && c != '\r') << k;
  auto who = ParseJson(*Get(r, "who"));
  ASSERT_TRUE(who.ok());
  EXPECT_EQ(who->as_string(), "Zoë 😀");
}

TEST_F(ServiceBusHttpTest, ScheduledEnqueueTimeInRfc1123) {
  Queue("q");
  ASSERT_EQ(Call("POST", "q/messages", "later",
                 {{"BrokerProperties", R"({"ScheduledEnqueueTimeUtc":"Tue, 14 Nov 2023 22:13:30 GMT"})"}})
                .status,
            201);
  EXPECT_EQ(Call("DELETE", "q/messages/head?timeout=0").status, 204);
  HttpResponse peek = Call("GET", "q/messages?peek");
  ASSERT_EQ(peek.status, 200);
  Json j = *ParseJson(peek.body);
  ASSERT_EQ(j.as_array().size(), 1u);
  EXPECT_EQ(j.as_array()[0].Find("BrokerProperties")->Find("State")->as_string(), "Scheduled");
  EXPECT_EQ(j.as_array()[0].Find("BrokerProperties")->Find("ScheduledEnqueueTimeUtc")->as_string(),
            "Tue, 14 Nov 2023 22:13:30 GMT");
  clock_.Advance(10'000);
  broker_->Tick();
  HttpResponse got;
  got.status = 0;
  for (int i = 0; i < 50 && got.status != 200; ++i) {
    got = Call("DELETE", "q/messages/head?timeout=0");
    if (got.status != 200) std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(got.status, 200);
  EXPECT_EQ(got.body, "later");
}

TEST_F(ServiceBusHttpTest, RoutesAndErrors) {
  Queue("a/b");
  EXPECT_EQ(Call("POST", "a/b/messages", "x").status, 201);
  EXPECT_EQ(Call("GET", "a/b/messages?peek&from=1&top=1").status, 200);
  EXPECT_EQ(Call("GET", "a/b/messages/head").status, 405);
  EXPECT_EQ(Call("GET", "a/b/nothing").status, 404);
  EXPECT_EQ(Call("POST", "nope/messages", "x").status, 404);
  EXPECT_EQ(ErrorCode(Call("POST", "nope/messages", "x")), "0x80131501");
  EXPECT_EQ(Call("POST", "a/b/messages", "x", {{"BrokerProperties", "{"}}).status, 400);
  EXPECT_EQ(Call("POST", "a/b/messages", "x", {{"BrokerProperties", R"({"TimeToLive":"1"})"}}).status, 400);
  EXPECT_EQ(Call("DELETE", "a/b/messages/1/zzz").status, 400);
  EXPECT_EQ(Call("POST", "a/b/messages/head?timeout=x").status, 400);
  EXPECT_EQ(Call("POST", "a/b/messages", std::string(300 * 1024, 'x')).status, 413);
  EXPECT_EQ(Call("GET", "$management/queues/a/b").status, 200);
  EXPECT_EQ(Call("PUT", "$management/queues/a/b", "{}").status, 409);
  EXPECT_EQ(Call("PUT", "$management/queues/c", R"({"lockDuration":"soon"})").status, 400);
  EXPECT_EQ(Call("GET", "$management/things").status, 404);
  // A session named like a route word still works by its position.
  Queue("s", R"({"requiresSession":true})");
  EXPECT_EQ(Call("POST", "s/messages", "m", {{"BrokerProperties", R"({"SessionId":"messages"})"}}).status, 201);
  HttpResponse acc = Call("POST", "s/sessions/accept?session=messages&timeout=0");
  ASSERT_EQ(acc.status, 200) << acc.body;
  std::string token = ParseJson(acc.body)->Find("SessionLockToken")->as_string();
  HttpResponse m = Call("DELETE", "s/sessions/messages/messages/head?timeout=0", "", {{"x-session-lock", token}});
  EXPECT_EQ(m.status, 200) << m.body;
  EXPECT_EQ(m.body, "m");
}

TEST_F(ServiceBusHttpTest, MetricsNameEveryEntity) {
  Queue("m.q_1");
  ASSERT_EQ(Call("POST", "m.q_1/messages", "1").status, 201);
  ASSERT_EQ(Call("POST", "m.q_1/messages", "2").status, 201);
  ASSERT_EQ(Call("DELETE", "m.q_1/messages/head?timeout=0").status, 200);
  std::string m = http_->RenderMetrics();
  EXPECT_NE(m.find("tributary_bus_messages{entity=\"m.q_1\",state=\"active\"} 1\n"), std::string::npos) << m;
  EXPECT_NE(m.find("tributary_bus_http_sent_total{entity=\"m.q_1\"} 2\n"), std::string::npos) << m;
  EXPECT_NE(m.find("tributary_bus_http_completed_total{entity=\"m.q_1\"} 1\n"), std::string::npos) << m;
}

TEST_F(ServiceBusHttpTest, BatchReceiveAndBatchComplete) {
  Queue("q");
  ASSERT_EQ(Call("POST", "q/messages", R"([{"Body":"a"},{"Body":"b"},{"Body":"c"}])",
                 {{"Content-Type", "application/vnd.microsoft.servicebus.json"}})
                .status,
            201);
  HttpResponse r = Call("POST", "q/messages/head?timeout=0&maxMessages=2");
  ASSERT_EQ(r.status, 200) << r.body;
  Json got = *ParseJson(r.body);
  ASSERT_EQ(got.as_array().size(), 2u);
  std::vector<std::string> tokens;
  for (const Json& m : got.as_array()) {
    const Json* bp = m.Find("BrokerProperties");
    EXPECT_EQ(bp->Find("DeliveryCount")->as_int(), 1);
    tokens.push_back(bp->Find("LockToken")->as_string());
  }
  EXPECT_EQ(got.as_array()[0].Find("Body")->as_string(), "a");
  EXPECT_EQ(got.as_array()[1].Find("BrokerProperties")->Find("SequenceNumber")->as_int(), 2);

  std::string body = R"({"lockTokens":[")" + tokens[0] + R"(",")" + tokens[1] + R"("]})";
  HttpResponse c = Call("POST", "q/messages/complete", body);
  EXPECT_EQ(c.status, 200) << c.body;
  // Again: both locks are gone, so the answer is the error itself.
  HttpResponse again = Call("POST", "q/messages/complete", body);
  EXPECT_EQ(again.status, 410) << again.body;
  EXPECT_EQ(ErrorCode(again), "0x80131503");

  // One good token and one stale: 207 with the failure.
  HttpResponse third = Call("POST", "q/messages/head?timeout=0&maxMessages=5");
  ASSERT_EQ(third.status, 200);
  std::string t3 = ParseJson(third.body)->as_array()[0].Find("BrokerProperties")->Find("LockToken")->as_string();
  HttpResponse mixed =
      Call("POST", "q/messages/complete", R"({"lockTokens":[")" + t3 + R"(",")" + tokens[0] + R"("]})");
  EXPECT_EQ(mixed.status, 207) << mixed.body;
  Json mj = *ParseJson(mixed.body);
  EXPECT_EQ(mj.Find("completed")->as_int(), 1);
  ASSERT_EQ(mj.Find("failures")->as_array().size(), 1u);
  const Json& f = mj.Find("failures")->as_array()[0];
  EXPECT_EQ(f.Find("lockToken")->as_string(), tokens[0]);
  EXPECT_EQ(f.Find("status")->as_int(), 410);
  EXPECT_EQ(f.Find("code")->as_string(), "0x80131503");

  // Empty: 204; receive-and-delete batches too.
  EXPECT_EQ(Call("POST", "q/messages/head?timeout=0&maxMessages=5").status, 204);
  ASSERT_EQ(Call("POST", "q/messages", "d").status, 201);
  HttpResponse rd = Call("DELETE", "q/messages/head?timeout=0&maxMessages=5");
  ASSERT_EQ(rd.status, 200) << rd.body;
  EXPECT_EQ(ParseJson(rd.body)->as_array()[0].Find("Body")->as_string(), "d");
  std::string m = http_->RenderMetrics();
  EXPECT_NE(m.find("tributary_bus_http_completed_total{entity=\"q\"} 4\n"), std::string::npos) << m;
}

TEST_F(ServiceBusHttpTest, BatchExtensionsWithinASession) {
  Queue("s", R"({"requiresSession":true})");
  std::string batch;
  for (int i = 0; i < 4; ++i)
    batch += std::string(batch.empty() ? "[" : ",") + R"({"Body":"m)" + std::to_string(i) +
             R"(","BrokerProperties":{"SessionId":")" + (i % 2 ? "B" : "A") + R"("}})";
  batch += "]";
  ASSERT_EQ(Call("POST", "s/messages", batch, {{"Content-Type", "application/vnd.microsoft.servicebus.json"}}).status,
            201);
  HttpResponse acc = Call("POST", "s/sessions/accept?timeout=0");
  ASSERT_EQ(acc.status, 200) << acc.body;
  Json sj = *ParseJson(acc.body);
  std::string id = sj.Find("SessionId")->as_string();
  std::vector<Header> lock = {{"x-session-lock", sj.Find("SessionLockToken")->as_string()}};
  EXPECT_EQ(Call("POST", "s/sessions/" + id + "/messages/head?timeout=0&maxMessages=10").status, 400)
      << "the session lock is required";
  HttpResponse r = Call("POST", "s/sessions/" + id + "/messages/head?timeout=0&maxMessages=10", "", lock);
  ASSERT_EQ(r.status, 200) << r.body;
  Json got = *ParseJson(r.body);
  ASSERT_EQ(got.as_array().size(), 2u);
  std::string body = "{\"lockTokens\":[";
  for (const Json& m : got.as_array()) {
    EXPECT_EQ(m.Find("BrokerProperties")->Find("SessionId")->as_string(), id);
    if (body.back() != '[') body += ",";
    body += "\"" + m.Find("BrokerProperties")->Find("LockToken")->as_string() + "\"";
  }
  body += "]}";
  EXPECT_EQ(Call("POST", "s/sessions/" + id + "/messages/complete", body, lock).status, 200);
  EXPECT_EQ(Call("POST", "s/sessions/" + id + "/messages/head?timeout=0&maxMessages=10", "", lock).status, 204);
}

TEST_F(ServiceBusHttpTest, BatchExtensionsRefuseBadInput) {
  Queue("q");
  EXPECT_EQ(Call("POST", "q/messages/head?timeout=0&maxMessages=0").status, 400);
  EXPECT_EQ(Call("POST", "q/messages/head?timeout=0&maxMessages=1001").status, 400);
  EXPECT_EQ(Call("POST", "q/messages/head?timeout=0&maxMessages=x").status, 400);
  EXPECT_EQ(Call("GET", "q/messages/complete").status, 405);
  for (const char* body : {"", "[]", "{", R"({"lockTokens":[]})", R"({"lockTokens":["nope"]})", R"({"lockTokens":[1]})",
                           R"({"tokens":["00000000-0000-0000-0000-000000000001"]})", R"({"lockTokens":"x"})"}) {
    HttpResponse r = Call("POST", "q/messages/complete", body);
    EXPECT_EQ(r.status, 400) << body << " → " << r.body;
    EXPECT_EQ(ErrorCode(r), "0x8013150b") << body;
  }
  std::string many = "{\"lockTokens\":[";
  for (int i = 0; i < 5001; ++i) many += std::string(i ? "," : "") + "\"00000000-0000-0000-0000-000000000001\"";
  many += "]}";
  EXPECT_EQ(Call("POST", "q/messages/complete", many).status, 400);
  HttpResponse unknown =
      Call("POST", "nope/messages/complete", R"({"lockTokens":["00000000-0000-0000-0000-000000000001"]})");
  EXPECT_EQ(unknown.status, 404) << unknown.body;
  EXPECT_EQ(ErrorCode(unknown), "0x80131501");
  EXPECT_EQ(
      Call("POST", "q/$DeadLetterQueue/messages/complete", R"({"lockTokens":["00000000-0000-0000-0000-000000000001"]})")
          .status,
      410);
  EXPECT_EQ(Call("POST", "q/$DeadLetterQueue/sessions/a/messages/complete", "{}").status, 400);
}

}  // namespace
}  // namespace tributary::server
