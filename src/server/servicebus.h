#pragma once
// The message bus over HTTP, under /servicebus/ (docs/servicebus.md): the Service Bus REST data
// plane (send with BrokerProperties and custom-property headers, batches, peek-lock and
// receive-and-delete on messages/head with long polling, settlement by {id}/{lockToken}), its
// documented extensions (defer, dead-letter, peek, deferred receive, sub-queues, sessions, batch
// receive and batch complete) and the JSON management API under /servicebus/$management/.
//
// Callers are authenticated before Handle; every authenticated user may use every entity.
// Thread-safe; lives as long as the server. The broker outlives it.

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "tributary/bus/broker.h"
#include "tributary/odata/http.h"

namespace tributary::server {

class ServiceBusHttp {
 public:
  explicit ServiceBusHttp(bus::Broker& broker) : broker_(broker) {}

  using Respond = std::function<void(odata::HttpResponse)>;
  // Answers a request whose path starts with "/servicebus/". `respond` is called exactly once,
  // on this thread or later on a broker thread (long polls, commits).
  void Handle(odata::HttpRequest req, Respond respond);

  // Prometheus text: per-entity message gauges and the HTTP send/complete counters.
  std::string RenderMetrics() const;

  // {"error":{"code":"0x…","message":"…"}} with the HTTP status for `s`.
  static odata::HttpResponse Error(const Status& s);

  class Request;  // one parsed request (servicebus.cpp)

 private:
  void Management(Request& r, Respond respond);
  void DataPlane(Request& r, Respond respond);
  void Count(const std::string& entity, bool sent, int64_t n);
  // Completes every lock token, then answers once: 200 when all completed, else 207 with the
  // failures, or the error itself when none completed and all failed alike.
  void CompleteAll(const std::string& entity, bus::SubQueue sub, std::vector<std::string> tokens, Respond respond);
  // A clearer error for a topic addressed as a queue. Not for broker callbacks: it locks the broker.
  Status TopicHint(const Status& s, const std::string& entity);

  bus::Broker& broker_;
  mutable std::mutex mu_;
  struct Counters {
    int64_t sent = 0, completed = 0;
  };
  std::map<std::string, Counters> counters_;  // by entity path, guarded by mu_
};

}  // namespace tributary::server
