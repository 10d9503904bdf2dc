#pragma once
// Service protection limits (Dataverse's 429s), evaluated per user: the number of requests and
// their combined execution time over a sliding window, and the number of requests in flight.
//
// The window is kept as per-second buckets of the seconds that saw activity (at most
// window_seconds of them per user), so admitting and finishing a request is O(1) amortised.
// Users with nothing in the window and nothing in flight are evicted by a periodic sweep of
// their shard, so memory follows the users active in the last window.

#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <variant>

#include "tributary/base/guid.h"
#include "tributary/base/status.h"
#include "tributary/base/time.h"
#include "tributary/odata/http.h"
#include "tributary/server/server.h"

namespace tributary::server {

// The platform error numbers of the three limits.
inline constexpr uint32_t kRequestLimitExceeded = 0x80072322;
inline constexpr uint32_t kExecutionTimeLimitExceeded = 0x80072321;
inline constexpr uint32_t kConcurrencyLimitExceeded = 0x80072326;

enum class ThrottleReason : uint8_t { kRequests = 0, kExecutionTime = 1, kConcurrency = 2 };
inline constexpr size_t kThrottleReasonCount = 3;

// What is left of a user's allowance in the current window.
struct ThrottleBudget {
  int64_t requests_left = 0;
  int64_t execution_micros_left = 0;
};

// Thread-safe: users are spread over shards, each with its own mutex. `clock` must outlive it.
class ServiceProtection {
 public:
  // InvalidArgument when a limit is not positive or the window is longer than a day.
  static Status Validate(const ServiceProtectionOptions& options);

  // `options` must pass Validate.
  ServiceProtection(const ServiceProtectionOptions& options, const Clock& clock);
  ~ServiceProtection();
  ServiceProtection(const ServiceProtection&) = delete;
  ServiceProtection& operator=(const ServiceProtection&) = delete;

  // One admitted request: holds its concurrency slot until Finish (or destruction, which
  // finishes with no execution time). Move-only; must not outlive the ServiceProtection.
  class Permit {
   public:
    Permit(Permit&& other) noexcept
        : owner_(std::exchange(other.owner_, nullptr)), user_(other.user_), finished_(other.finished_) {}
    Permit& operator=(Permit&& other) noexcept;
    ~Permit();
    // Adds the request's execution time to the window, frees its slot and returns what is left.
    // Only the first call counts; later ones return the budget without changing it.
    ThrottleBudget Finish(std::chrono::microseconds execution);

   private:
    friend class ServiceProtection;
    Permit(ServiceProtection* owner, const Guid& user) : owner_(owner), user_(user) {}
    ServiceProtection* owner_;  // null once moved from
    Guid user_;
    bool finished_ = false;
  };

  struct Refusal {
    ThrottleReason reason;
    int64_t retry_after_seconds;  // at least 1
    ThrottleBudget budget;
  };

  // Admits one request of `user`, counting it in the window, or refuses it: when the requests
  // already in the window reach the limit, when their combined execution time exceeds the limit,
  // or when the user has `concurrent` requests in flight. Refused requests are not counted.
  std::variant<Permit, Refusal> Admit(const Guid& user);

  // The refusal as an HTTP answer: 429, Retry-After, the Dataverse error body, budget headers.
  odata::HttpResponse Refuse(const Refusal& refusal) const;
  // x-ms-ratelimit-burst-remaining-xrm-requests and x-ms-ratelimit-time-remaining-xrm-requests.
  static void AddBudgetHeaders(odata::HttpResponse& response, const ThrottleBudget& budget);
  // Seconds with two decimals and thousands separators, as Dataverse writes them: "1,199.46".
  static std::string FormatSeconds(int64_t micros);
  // The error message of a refusal, in Dataverse's wording.
  std::string Message(ThrottleReason reason) const;

  // Users currently tracked (for tests and metrics).
  size_t TrackedUsers() const;

 private:
  struct Bucket {
    int64_t second;
    uint32_t requests;
    uint64_t execution_micros;
  };
  struct UserState {
    std::deque<Bucket> buckets;  // ascending seconds, all inside the window
    int64_t requests = 0;        // sums over `buckets`
    uint64_t execution_micros = 0;
    int64_t in_flight = 0;
  };
  struct GuidHash {
    size_t operator()(const Guid& g) const;
  };
  struct Shard {
    mutable std::mutex mu;
    std::unordered_map<Guid, UserState, GuidHash> users;  // guarded by mu
    int64_t last_sweep_second = 0;                        // guarded by mu
  };
  static constexpr size_t kShards = 16;

  Shard& ShardOf(const Guid& user);
  // Drops the buckets that left the window ending at `now_second`.
  void Expire(UserState& u, int64_t now_second) const;
  // Adds to the bucket of `now_second`.
  void Record(UserState& u, int64_t now_second, uint32_t requests, uint64_t micros) const;
  ThrottleBudget BudgetOf(const UserState& u) const;
  // Seconds until enough old buckets leave the window for `reason` to clear, at least 1.
  int64_t RetryAfter(const UserState& u, ThrottleReason reason, int64_t now_ms) const;
  // Removes idle users from the shard at most once per window; `mu` held.
  void MaybeSweep(Shard& shard, int64_t now_second) const;
  // Records a finished request of `user` (when `release`) and returns the budget left.
  ThrottleBudget Finish(const Guid& user, std::chrono::microseconds execution, bool release);

  const ServiceProtectionOptions options_;
  const uint64_t execution_limit_micros_;
  const Clock& clock_;
  std::array<Shard, kShards> shards_;
};

}  // namespace tributary::server
