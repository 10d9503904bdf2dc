#include "throttle.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <optional>

#include "tributary/odata/errors.h"

namespace tributary::server {

namespace {

constexpr int64_t kMaxWindowSeconds = 86400;

// "6000" → "6,000".
std::string Grouped(uint64_t n) {
  std::string digits = std::to_string(n);
  std::string out;
  out.reserve(digits.size() + digits.size() / 3);
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

int64_t SecondOf(int64_t ms) { return ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000); }

uint64_t MicrosOf(std::chrono::microseconds d) { return d.count() > 0 ? static_cast<uint64_t>(d.count()) : 0; }

}  // namespace

Status ServiceProtection::Validate(const ServiceProtectionOptions& o) {
  if (!o.enabled) return Status::Ok();
  if (o.requests <= 0 || o.requests > std::numeric_limits<uint32_t>::max())
    return InvalidArgument("service_protection.requests must be a positive number.");
  if (o.execution_seconds <= 0 || o.execution_seconds > 1'000'000'000)
    return InvalidArgument("service_protection.execution_seconds must be a positive number.");
  if (o.window_seconds <= 0 || o.window_seconds > kMaxWindowSeconds)
    return InvalidArgument("service_protection.window_seconds must be between 1 and 86400.");
  if (o.concurrent <= 0) return InvalidArgument("service_protection.concurrent must be a positive number.");
  return Status::Ok();
}

ServiceProtection::ServiceProtection(const ServiceProtectionOptions& options, const Clock& clock)
    : options_(options),
      execution_limit_micros_(static_cast<uint64_t>(options.execution_seconds) * 1'000'000),
      clock_(clock) {}

ServiceProtection::~ServiceProtection() = default;

size_t ServiceProtection::GuidHash::operator()(const Guid& g) const {
  uint64_t a, b;
  std::memcpy(&a, g.bytes().data(), 8);
  std::memcpy(&b, g.bytes().data() + 8, 8);
  uint64_t x = a ^ (b * 0x9e3779b97f4a7c15ULL);
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return static_cast<size_t>(x);
}

ServiceProtection::Shard& ServiceProtection::ShardOf(const Guid& user) {
  // The high bits, so that the shard and the bucket inside the map's table differ.
  return shards_[(GuidHash{}(user) >> 56) % kShards];
}

void ServiceProtection::Expire(UserState& u, int64_t now_second) const {
  while (!u.buckets.empty() && u.buckets.front().second + options_.window_seconds <= now_second) {
    u.requests -= u.buckets.front().requests;
    u.execution_micros -= u.buckets.front().execution_micros;
    u.buckets.pop_front();
  }
}

void ServiceProtection::Record(UserState& u, int64_t now_second, uint32_t requests, uint64_t micros) const {
  // A clock that stepped back adds to the newest bucket rather than reordering them.
  if (u.buckets.empty() || u.buckets.back().second < now_second) u.buckets.push_back(Bucket{now_second, 0, 0});
  Bucket& b = u.buckets.back();
  b.requests += requests;
  b.execution_micros += micros;
  u.requests += requests;
  u.execution_micros += micros;
}

ThrottleBudget ServiceProtection::BudgetOf(const UserState& u) const {
  return ThrottleBudget{std::max<int64_t>(0, options_.requests - u.requests),
                        u.execution_micros >= execution_limit_micros_
                            ? 0
                            : static_cast<int64_t>(execution_limit_micros_ - u.execution_micros)};
}

int64_t ServiceProtection::RetryAfter(const UserState& u, ThrottleReason reason, int64_t now_ms) const {
  if (reason == ThrottleReason::kConcurrency) return 1;
  int64_t requests = u.requests;
  uint64_t micros = u.execution_micros;
  for (const Bucket& b : u.buckets) {
    requests -= b.requests;
    micros -= b.execution_micros;
    bool clear = reason == ThrottleReason::kRequests ? requests < options_.requests : micros <= execution_limit_micros_;
    if (clear) {
      int64_t leaves_ms = (b.second + options_.window_seconds) * 1000;
      return std::max<int64_t>(1, (leaves_ms - now_ms + 999) / 1000);
    }
  }
  return std::max<int64_t>(1, options_.window_seconds);  // unreachable: an empty window clears
}

void ServiceProtection::MaybeSweep(Shard& shard, int64_t now_second) const {
  if (now_second - shard.last_sweep_second < options_.window_seconds) return;
  shard.last_sweep_second = now_second;
  for (auto it = shard.users.begin(); it != shard.users.end();) {
    Expire(it->second, now_second);
    if (it->second.buckets.empty() && it->second.in_flight == 0) {
      it = shard.users.erase(it);
    } else {
      ++it;
    }
  }
}

std::variant<ServiceProtection::Permit, ServiceProtection::Refusal> ServiceProtection::Admit(const Guid& user) {
  int64_t now_ms = clock_.Now().ms;
  int64_t now_second = SecondOf(now_ms);
  Shard& shard = ShardOf(user);
  std::lock_guard lock(shard.mu);
  MaybeSweep(shard, now_second);
  UserState& u = shard.users[user];
  Expire(u, now_second);
  std::optional<ThrottleReason> refused;
  if (u.requests >= options_.requests) {
    refused = ThrottleReason::kRequests;
  } else if (u.execution_micros > execution_limit_micros_) {
    refused = ThrottleReason::kExecutionTime;
  } else if (u.in_flight >= options_.concurrent) {
    refused = ThrottleReason::kConcurrency;
  }
  if (refused) return Refusal{*refused, RetryAfter(u, *refused, now_ms), BudgetOf(u)};
  Record(u, now_second, 1, 0);
  ++u.in_flight;
  return Permit(this, user);
}

ThrottleBudget ServiceProtection::Finish(const Guid& user, std::chrono::microseconds execution, bool release) {
  int64_t now_second = SecondOf(clock_.Now().ms);
  Shard& shard = ShardOf(user);
  std::lock_guard lock(shard.mu);
  auto it = shard.users.find(user);
  if (it == shard.users.end()) return ThrottleBudget{options_.requests, static_cast<int64_t>(execution_limit_micros_)};
  UserState& u = it->second;
  Expire(u, now_second);
  if (release) {
    uint64_t micros = MicrosOf(execution);
    if (micros > 0) Record(u, now_second, 0, micros);
    if (u.in_flight > 0) --u.in_flight;
  }
  return BudgetOf(u);
}

ServiceProtection::Permit& ServiceProtection::Permit::operator=(Permit&& other) noexcept {
  if (this != &other) {
    if (owner_ && !finished_) owner_->Finish(user_, std::chrono::microseconds(0), true);
    owner_ = std::exchange(other.owner_, nullptr);
    user_ = other.user_;
    finished_ = other.finished_;
  }
  return *this;
}

ServiceProtection::Permit::~Permit() {
  if (owner_ && !finished_) owner_->Finish(user_, std::chrono::microseconds(0), true);
}

ThrottleBudget ServiceProtection::Permit::Finish(std::chrono::microseconds execution) {
  if (!owner_) return ThrottleBudget{};
  bool release = !finished_;
  finished_ = true;
  return owner_->Finish(user_, execution, release);
}

std::string ServiceProtection::Message(ThrottleReason reason) const {
  switch (reason) {
    case ThrottleReason::kRequests:
      return "Number of requests exceeded the limit of " + std::to_string(options_.requests) + " over time window of " +
             std::to_string(options_.window_seconds) + " seconds.";
    case ThrottleReason::kExecutionTime:
      return "Combined execution time of incoming requests exceeded limit of " +
             Grouped(static_cast<uint64_t>(options_.execution_seconds) * 1000) + " milliseconds over time window of " +
             std::to_string(options_.window_seconds) +
             " seconds. Decrease number of concurrent requests or reduce the duration of requests and try again "
             "later.";
    case ThrottleReason::kConcurrency:
      return "Number of concurrent requests exceeded the limit of " + std::to_string(options_.concurrent) + ".";
  }
  return {};
}

odata::HttpResponse ServiceProtection::Refuse(const Refusal& refusal) const {
  static constexpr uint32_t kCodes[] = {kRequestLimitExceeded, kExecutionTimeLimitExceeded, kConcurrencyLimitExceeded};
  odata::HttpResponse r = odata::ErrorResponse(
      Status(Code::kResourceExhausted, Message(refusal.reason), kCodes[static_cast<size_t>(refusal.reason)]));
  r.Set("Retry-After", std::to_string(std::max<int64_t>(1, refusal.retry_after_seconds)));
  AddBudgetHeaders(r, refusal.budget);
  return r;
}

void ServiceProtection::AddBudgetHeaders(odata::HttpResponse& response, const ThrottleBudget& budget) {
  response.Set("x-ms-ratelimit-burst-remaining-xrm-requests",
               std::to_string(std::max<int64_t>(0, budget.requests_left)));
  response.Set("x-ms-ratelimit-time-remaining-xrm-requests", FormatSeconds(budget.execution_micros_left));
}

std::string ServiceProtection::FormatSeconds(int64_t micros) {
  uint64_t centis = micros > 0 ? static_cast<uint64_t>(micros) / 10'000 : 0;
  std::string out = Grouped(centis / 100);
  uint64_t frac = centis % 100;
  out += '.';
  out += static_cast<char>('0' + frac / 10);
  out += static_cast<char>('0' + frac % 10);
  return out;
}

size_t ServiceProtection::TrackedUsers() const {
  size_t n = 0;
  for (const Shard& s : shards_) {
    std::lock_guard lock(s.mu);
    n += s.users.size();
  }
  return n;
}

}  // namespace tributary::server
