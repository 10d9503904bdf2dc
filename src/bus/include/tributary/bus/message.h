#pragma once
// The message model of the bus (reference/service-bus.md §2): the properties a sender sets, the
// ones the broker sets, and the typed values of application properties. Filters (SQL and
// correlation) and rule actions read and edit these; the body is opaque bytes kept verbatim.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>

#include "tributary/base/time.h"

namespace tributary::bus {

// A value of an application property (AMQP simple types as the SDKs send them).
struct PropertyValue {
  // null, boolean, 64-bit integer, double, string, timestamp (ms since the epoch, UTC)
  std::variant<std::monostate, bool, int64_t, double, std::string, Timestamp> v;
  bool is_null() const { return std::holds_alternative<std::monostate>(v); }
  bool operator==(const PropertyValue&) const = default;
};

// Message states (x-opt-message-state): 0 active, 1 deferred, 2 scheduled.
enum class MessageState : uint8_t { kActive = 0, kDeferred = 1, kScheduled = 2 };

struct MessageProperties {
  // Set by the sender (system properties; `sys.` names in SQL filters).
  std::optional<std::string> message_id;           // sys.MessageId
  std::optional<std::string> correlation_id;       // sys.CorrelationId
  std::optional<std::string> session_id;           // sys.SessionId (AMQP group-id)
  std::optional<std::string> reply_to_session_id;  // sys.ReplyToSessionId
  std::optional<std::string> subject;              // sys.Label / sys.Subject
  std::optional<std::string> to;                   // sys.To
  std::optional<std::string> reply_to;             // sys.ReplyTo
  std::optional<std::string> content_type;         // sys.ContentType
  std::optional<std::string> partition_key;
  std::optional<int64_t> time_to_live_ms;           // header ttl
  std::optional<Timestamp> scheduled_enqueue_time;  // x-opt-scheduled-enqueue-time
  // Application (user) properties; names are case-sensitive as sent.
  std::map<std::string, PropertyValue> application;

  // Set by the broker.
  int64_t sequence_number = 0;
  int64_t enqueued_sequence_number = 0;
  Timestamp enqueued_time{0};
  std::optional<Timestamp> expires_at;
  int64_t delivery_count = 0;  // prior unsuccessful deliveries (AMQP header.delivery-count)
  MessageState state = MessageState::kActive;
  std::optional<std::string> dead_letter_source;
};

}  // namespace tributary::bus
