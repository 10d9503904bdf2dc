#pragma once
// Request metrics in the Prometheus text format. Lock-free counters; thread-safe.

#include <array>
#include <atomic>
#include <cstdint>
#include <string>

#include "throttle.h"
#include "tributary/storage/engine.h"

namespace tributary::server {

class Metrics {
 public:
  // Records one answered request.
  void Observe(int status, double seconds);
  // Records one request refused by the service protection limits.
  void Throttled(ThrottleReason reason) {
    throttled_[static_cast<size_t>(reason)].fetch_add(1, std::memory_order_relaxed);
  }
  void ConnectionOpened() { connections_.fetch_add(1, std::memory_order_relaxed); }
  void ConnectionClosed() { connections_.fetch_sub(1, std::memory_order_relaxed); }
  std::string Render(const storage::EngineStats& store) const;

 private:
  static constexpr std::array<double, 12> kBuckets = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                      0.05,   0.1,   0.25,   0.5,   1.0,  2.5};
  std::array<std::atomic<uint64_t>, 6> by_class_{};  // 1xx..5xx, other
  std::array<std::atomic<uint64_t>, kBuckets.size() + 1> buckets_{};
  std::atomic<uint64_t> count_{0};
  std::atomic<uint64_t> sum_micros_{0};
  std::atomic<int64_t> connections_{0};
  std::array<std::atomic<uint64_t>, kThrottleReasonCount> throttled_{};
};

}  // namespace tributary::server
