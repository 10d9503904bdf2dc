#include "throttle.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace tributary::server {
namespace {

using std::chrono::microseconds;
using std::chrono::seconds;
using Permit = ServiceProtection::Permit;
using Refusal = ServiceProtection::Refusal;

// 10:00:00.000 UTC on some day: a whole second, so bucket boundaries are easy to reason about.
constexpr int64_t kStart = 1'700'000'000'000;

ServiceProtectionOptions Limits(int64_t requests, int64_t execution_seconds, int64_t window, int64_t concurrent) {
  ServiceProtectionOptions o;
  o.enabled = true;
  o.requests = requests;
  o.execution_seconds = execution_seconds;
  o.window_seconds = window;
  o.concurrent = concurrent;
  return o;
}

Guid User(uint8_t n) {
  std::array<uint8_t, 16> b{};
  b[0] = n;
  b[15] = static_cast<uint8_t>(n * 7 + 1);
  return Guid(b);
}

const std::string* Header(const odata::HttpResponse& r, std::string_view name) {
  for (const auto& [k, v] : r.headers)
    if (k == name) return &v;
  return nullptr;
}

class ServiceProtectionTest : public ::testing::Test {
 protected:
  ManualClock clock_{Timestamp{kStart}};
};

TEST_F(ServiceProtectionTest, RequestLimitTripsAfterItIsReachedAndTheWindowSlides) {
  ServiceProtection sp(Limits(5, 1200, 10, 100), clock_);
  Guid u = User(1);
  for (int i = 0; i < 5; ++i) {
    auto a = sp.Admit(u);
    ASSERT_TRUE(std::holds_alternative<Permit>(a)) << i;
    auto budget = std::get<Permit>(a).Finish(microseconds(1000));
    EXPECT_EQ(budget.requests_left, 4 - i);
    clock_.Advance(1000);  // one request a second: t = 0 … 4
  }
  // t = 5 s: five requests in the window [−4, 5]; the sixth is refused.
  auto a = sp.Admit(u);
  ASSERT_TRUE(std::holds_alternative<Refusal>(a));
  const auto& r = std::get<Refusal>(a);
  EXPECT_EQ(r.reason, ThrottleReason::kRequests);
  EXPECT_EQ(r.budget.requests_left, 0);
  // The first request (second 0) leaves the 10-second window at t = 10 s.
  EXPECT_EQ(r.retry_after_seconds, 5);
  clock_.Advance(4500);  // t = 9.5 s: still refused, half a second to go → 1
  a = sp.Admit(u);
  ASSERT_TRUE(std::holds_alternative<Refusal>(a));
  EXPECT_EQ(std::get<Refusal>(a).retry_after_seconds, 1);
  clock_.Advance(500);  // t = 10 s: one slot free
  a = sp.Admit(u);
  ASSERT_TRUE(std::holds_alternative<Permit>(a));
  EXPECT_EQ(std::get<Permit>(a).Finish(microseconds(0)).requests_left, 0);
  a = sp.Admit(u);
  ASSERT_TRUE(std::holds_alternative<Refusal>(a));
  EXPECT_EQ(std::get<Refusal>(a).retry_after_seconds, 1);  // second 1 leaves at t = 11 s
}

TEST_F(ServiceProtectionTest, RetryAfterCoversEveryBucketThatMustLeave) {
  ServiceProtection sp(Limits(4, 1200, 300, 100), clock_);
  Guid u = User(2);
  // Two requests at t = 0 and two at t = 100 s: at t = 100 s the window holds 4.
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(std::holds_alternative<Permit>(sp.Admit(u)));
  clock_.Advance(100'000);
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(std::holds_alternative<Permit>(sp.Admit(u)));
  auto a = sp.Admit(u);
  ASSERT_TRUE(std::holds_alternative<Refusal>(a));
  EXPECT_EQ(std::get<Refusal>(a).retry_after_seconds, 200);  // the t = 0 bucket leaves at 300 s
  clock_.Advance(199'250);
  a = sp.Admit(u);
  ASSERT_TRUE(std::holds_alternative<Refusal>(a));
  EXPECT_EQ(std::get<Refusal>(a).retry_after_seconds, 1);  // 0.75 s rounds up
}

TEST_F(ServiceProtectionTest, RefusedRequestsAreNotCounted) {
  ServiceProtection sp(Limits(1, 1200, 5, 100), clock_);
  Guid u = User(3);
  ASSERT_TRUE(std::holds_alternative<Permit>(sp.Admit(u)));
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(std::holds_alternative<Refusal>(sp.Admit(u)));
  clock_.Advance(5000);
  EXPECT_TRUE(std::holds_alternative<Permit>(sp.Admit(u)));
}

TEST_F(ServiceProtectionTest, ExecutionTimeTripsOnlyWhenExceeded) {
  ServiceProtection sp(Limits(1000, 10, 60, 100), clock_);
  Guid u = User(4);
  {
    auto a = sp.Admit(u);
    ASSERT_TRUE(std::holds_alternative<Permit>(a));
    auto budget = std::get<Permit>(a).Finish(seconds(10));  // exactly the limit: not exceeded
    EXPECT_EQ(budget.execution_micros_left, 0);
    EXPECT_EQ(budget.requests_left, 999);
  }
  clock_.Advance(1000);
  {
    auto a = sp.Admit(u);
    ASSERT_TRUE(std::holds_alternative<Permit>(a));
    std::get<Permit>(a).Finish(microseconds(1));  // now exceeded by 1 µs
  }
  clock_.Advance(1000);
  auto a = sp.Admit(u);
  ASSERT_TRUE(std::holds_alternative<Refusal>(a));
  const auto& r = std::get<Refusal>(a);
  EXPECT_EQ(r.reason, ThrottleReason::kExecutionTime);
  EXPECT_EQ(r.budget.execution_micros_left, 0);
  // Removing the first bucket (t = 0, leaves at 60 s) brings the sum under the limit.
  EXPECT_EQ(r.retry_after_seconds, 58);
  clock_.Advance(58'000);
  EXPECT_TRUE(std::holds_alternative<Permit>(sp.Admit(u)));
}

TEST_F(ServiceProtectionTest, ConcurrencyIsImmediateAndReleasedOnFinish) {
  ServiceProtection sp(Limits(1000, 1200, 300, 2), clock_);
  Guid u = User(5);
  auto a1 = sp.Admit(u);
  auto a2 = sp.Admit(u);
  ASSERT_TRUE(std::holds_alternative<Permit>(a1));
  ASSERT_TRUE(std::holds_alternative<Permit>(a2));
  auto a3 = sp.Admit(u);
  ASSERT_TRUE(std::holds_alternative<Refusal>(a3));
  EXPECT_EQ(std::get<Refusal>(a3).reason, ThrottleReason::kConcurrency);
  EXPECT_EQ(std::get<Refusal>(a3).retry_after_seconds, 1);
  // Other users are not affected.
  EXPECT_TRUE(std::holds_alternative<Permit>(sp.Admit(User(6))));
  std::get<Permit>(a1).Finish(microseconds(500));
  std::get<Permit>(a1).Finish(microseconds(500));  // a second Finish changes nothing
  auto a4 = sp.Admit(u);
  ASSERT_TRUE(std::holds_alternative<Permit>(a4));
  EXPECT_TRUE(std::holds_alternative<Refusal>(sp.Admit(u)));
  // Destroying an unfinished permit releases its slot too.
  { Permit dropped = std::move(std::get<Permit>(a2)); }
  EXPECT_TRUE(std::holds_alternative<Permit>(sp.Admit(u)));
}

TEST_F(ServiceProtectionTest, BudgetHeadersAndRefusalResponse) {
  ServiceProtection sp(Limits(6000, 1200, 300, 52), clock_);
  Guid u = User(7);
  auto a = sp.Admit(u);
  ASSERT_TRUE(std::holds_alternative<Permit>(a));
  auto budget = std::get<Permit>(a).Finish(microseconds(540'000));
  EXPECT_EQ(budget.requests_left, 5999);
  odata::HttpResponse ok;
  ServiceProtection::AddBudgetHeaders(ok, budget);
  ASSERT_NE(Header(ok, "x-ms-ratelimit-burst-remaining-xrm-requests"), nullptr);
  EXPECT_EQ(*Header(ok, "x-ms-ratelimit-burst-remaining-xrm-requests"), "5999");
  EXPECT_EQ(*Header(ok, "x-ms-ratelimit-time-remaining-xrm-requests"), "1,199.46");

  odata::HttpResponse r = sp.Refuse(Refusal{ThrottleReason::kRequests, 42, ThrottleBudget{0, 1'000'000}});
  EXPECT_EQ(r.status, 429);
  EXPECT_EQ(*Header(r, "Retry-After"), "42");
  EXPECT_EQ(*Header(r, "x-ms-ratelimit-burst-remaining-xrm-requests"), "0");
  EXPECT_EQ(*Header(r, "x-ms-ratelimit-time-remaining-xrm-requests"), "1.00");
  EXPECT_EQ(r.body,
            "{\"error\":{\"code\":\"0x80072322\",\"message\":\"Number of requests exceeded the limit of 6000 over time "
            "window of 300 seconds.\"}}");
  r = sp.Refuse(Refusal{ThrottleReason::kExecutionTime, 0, ThrottleBudget{}});
  EXPECT_EQ(*Header(r, "Retry-After"), "1");  // never less than 1
  EXPECT_NE(r.body.find("\"0x80072321\""), std::string::npos);
  EXPECT_NE(r.body.find("Combined execution time of incoming requests exceeded limit of 1,200,000 milliseconds over "
                        "time window of 300 seconds."),
            std::string::npos);
  r = sp.Refuse(Refusal{ThrottleReason::kConcurrency, 1, ThrottleBudget{}});
  EXPECT_NE(r.body.find("\"0x80072326\""), std::string::npos);
  EXPECT_NE(r.body.find("Number of concurrent requests exceeded the limit of 52."), std::string::npos);
}

TEST(ServiceProtectionFormatTest, Seconds) {
  EXPECT_EQ(ServiceProtection::FormatSeconds(0), "0.00");
  EXPECT_EQ(ServiceProtection::FormatSeconds(-5), "0.00");
  EXPECT_EQ(ServiceProtection::FormatSeconds(9'999), "0.00");
  EXPECT_EQ(ServiceProtection::FormatSeconds(10'000), "0.01");
  EXPECT_EQ(ServiceProtection::FormatSeconds(999'999'999), "999.99");
  EXPECT_EQ(ServiceProtection::FormatSeconds(1'200'000'000), "1,200.00");
  EXPECT_EQ(ServiceProtection::FormatSeconds(1'234'567'890'000), "1,234,567.89");
}

TEST_F(ServiceProtectionTest, IdleUsersAreEvicted) {
  ServiceProtection sp(Limits(100, 1200, 10, 5), clock_);
  std::vector<Permit> held;
  for (uint8_t i = 0; i < 40; ++i) {
    auto a = sp.Admit(User(i));
    ASSERT_TRUE(std::holds_alternative<Permit>(a));
    if (i == 0) {
      held.push_back(std::move(std::get<Permit>(a)));  // still in flight
    } else {
      std::get<Permit>(a).Finish(microseconds(10));
    }
  }
  EXPECT_EQ(sp.TrackedUsers(), 40u);
  // After a full window the shards sweep as they are used: one request per shard's users.
  clock_.Advance(11'000);
  for (uint8_t i = 100; i < 200; ++i) std::get<Permit>(sp.Admit(User(i))).Finish(microseconds(0));
  // User 0 is kept (a request in flight); the 39 idle ones are gone; the 100 new ones stay.
  EXPECT_EQ(sp.TrackedUsers(), 101u);
  held.clear();
  clock_.Advance(11'000);
  for (uint8_t i = 100; i < 200; ++i) std::get<Permit>(sp.Admit(User(i))).Finish(microseconds(0));
  EXPECT_EQ(sp.TrackedUsers(), 100u);
}

TEST_F(ServiceProtectionTest, ClockSteppingBackIsHarmless) {
  ServiceProtection sp(Limits(3, 1200, 10, 5), clock_);
  Guid u = User(8);
  ASSERT_TRUE(std::holds_alternative<Permit>(sp.Admit(u)));
  clock_.Advance(-5000);
  ASSERT_TRUE(std::holds_alternative<Permit>(sp.Admit(u)));
  ASSERT_TRUE(std::holds_alternative<Permit>(sp.Admit(u)));
  auto a = sp.Admit(u);
  ASSERT_TRUE(std::holds_alternative<Refusal>(a));
  EXPECT_GE(std::get<Refusal>(a).retry_after_seconds, 1);
  clock_.Advance(15'000);
  EXPECT_TRUE(std::holds_alternative<Permit>(sp.Admit(u)));
}

TEST(ServiceProtectionValidateTest, RejectsNonPositiveLimits) {
  EXPECT_TRUE(ServiceProtection::Validate(Limits(6000, 1200, 300, 52)).ok());
  EXPECT_FALSE(ServiceProtection::Validate(Limits(0, 1200, 300, 52)).ok());
  EXPECT_FALSE(ServiceProtection::Validate(Limits(6000, -1, 300, 52)).ok());
  EXPECT_FALSE(ServiceProtection::Validate(Limits(6000, 1200, 0, 52)).ok());
  EXPECT_FALSE(ServiceProtection::Validate(Limits(6000, 1200, 86401, 52)).ok());
  EXPECT_FALSE(ServiceProtection::Validate(Limits(6000, 1200, 300, 0)).ok());
  ServiceProtectionOptions off = Limits(0, 0, 0, 0);
  off.enabled = false;
  EXPECT_TRUE(ServiceProtection::Validate(off).ok());  // not checked while off
}

TEST(ServiceProtectionThreadsTest, ConcurrentAdmitsNeverExceedTheLimits) {
  SystemClock clock;
  ServiceProtection sp(Limits(4000, 1200, 300, 3), clock);
  std::atomic<int> admitted{0}, refused{0}, in_flight{0}, max_in_flight{0};
  Guid u = User(9);
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 1000; ++i) {
        auto a = sp.Admit(u);
        if (auto* p = std::get_if<Permit>(&a)) {
          ++admitted;
          int now = ++in_flight;
          int prev = max_in_flight.load();
          while (now > prev && !max_in_flight.compare_exchange_weak(prev, now)) {
          }
          --in_flight;
          p->Finish(microseconds(1));
        } else {
          ++refused;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(admitted + refused, 8000);
  EXPECT_LE(admitted.load(), 4000);
  EXPECT_LE(max_in_flight.load(), 3);
}

}  // namespace
}  // namespace tributary::server
