#include "metrics.h"

#include <cstdio>

namespace tributary::server {

void Metrics::Observe(int status, double seconds) {
  int cls = status / 100;
  by_class_[cls >= 1 && cls <= 5 ? cls - 1 : 5].fetch_add(1, std::memory_order_relaxed);
  size_t i = 0;
  while (i < kBuckets.size() && seconds > kBuckets[i]) ++i;
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_micros_.fetch_add(static_cast<uint64_t>(seconds * 1e6), std::memory_order_relaxed);
}

std::string Metrics::Render(const storage::EngineStats& store) const {
  std::string out;
  char buf[256];
  out += "# HELP tributary_http_requests_total HTTP requests answered, by status class.\n";
  out += "# TYPE tributary_http_requests_total counter\n";
  static const char* kClasses[] = {"1xx", "2xx", "3xx", "4xx", "5xx", "other"};
  for (size_t i = 0; i < by_class_.size(); ++i) {
    std::snprintf(buf, sizeof buf, "tributary_http_requests_total{code=\"%s\"} %llu\n", kClasses[i],
                  static_cast<unsigned long long>(by_class_[i].load()));
    out += buf;
  }
  out += "# HELP tributary_http_request_duration_seconds Time from request read to response queued.\n";
  out += "# TYPE tributary_http_request_duration_seconds histogram\n";
  uint64_t cumulative = 0;
  for (size_t i = 0; i < kBuckets.size(); ++i) {
    cumulative += buckets_[i].load();
    std::snprintf(buf, sizeof buf, "tributary_http_request_duration_seconds_bucket{le=\"%g\"} %llu\n", kBuckets[i],
                  static_cast<unsigned long long>(cumulative));
    out += buf;
  }
  cumulative += buckets_[kBuckets.size()].load();
  std::snprintf(buf, sizeof buf, "tributary_http_request_duration_seconds_bucket{le=\"+Inf\"} %llu\n",
                static_cast<unsigned long long>(cumulative));
  out += buf;
  std::snprintf(buf, sizeof buf, "tributary_http_request_duration_seconds_sum %.6f\n", sum_micros_.load() / 1e6);
  out += buf;
  std::snprintf(buf, sizeof buf, "tributary_http_request_duration_seconds_count %llu\n",
                static_cast<unsigned long long>(count_.load()));
  out += buf;
  out += "# HELP tributary_http_connections Open HTTP connections.\n# TYPE tributary_http_connections gauge\n";
  std::snprintf(buf, sizeof buf, "tributary_http_connections %lld\n", static_cast<long long>(connections_.load()));
  out += buf;
  out += "# HELP tributary_throttled_requests_total Requests refused with 429 by the service protection limits.\n";
  out += "# TYPE tributary_throttled_requests_total counter\n";
  static const char* kReasons[] = {"requests", "execution_time", "concurrency"};
  for (size_t i = 0; i < throttled_.size(); ++i) {
    std::snprintf(buf, sizeof buf, "tributary_throttled_requests_total{reason=\"%s\"} %llu\n", kReasons[i],
                  static_cast<unsigned long long>(throttled_[i].load()));
    out += buf;
  }
  out += "# HELP tributary_store_commits_total Durable group commits of the store.\n";
  out += "# TYPE tributary_store_commits_total counter\n";
  std::snprintf(buf, sizeof buf, "tributary_store_commits_total %llu\n",
                static_cast<unsigned long long>(store.commits));
  out += buf;
  out += "# HELP tributary_store_write_jobs_total Write jobs completed by the store.\n";
  out += "# TYPE tributary_store_write_jobs_total counter\n";
  std::snprintf(buf, sizeof buf, "tributary_store_write_jobs_total %llu\n",
                static_cast<unsigned long long>(store.jobs));
  out += buf;
  out += "# HELP tributary_store_max_batch Largest number of write jobs in one commit.\n";
  out += "# TYPE tributary_store_max_batch gauge\n";
  std::snprintf(buf, sizeof buf, "tributary_store_max_batch %llu\n", static_cast<unsigned long long>(store.max_batch));
  out += buf;
  return out;
}

}  // namespace tributary::server
