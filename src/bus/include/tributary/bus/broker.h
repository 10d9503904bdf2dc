#pragma once
// The message broker (reference/service-bus.md §1–§6): queues, topics with subscriptions and
// rules, dead-letter sub-queues, sessions, peek-lock and receive-and-delete, deferral,
// scheduling, duplicate detection, TTL and auto-forwarding, in the environment's store.
//
// Durability: a send is answered after the commit that stores it (the store's group commit);
// complete, abandon, defer, dead-letter and session-state changes likewise. Locks live in
// memory: after a restart every message is unlocked (a lock held at a crash has expired).
// Sequence numbers are gap-free per entity: the high-water mark is stored with the messages.
//
// Threading: all methods are thread-safe; `done` callbacks run on the store's writer thread
// (writes) or on the calling thread / the ticker (reads and waits). Time comes from the Clock;
// Tick() moves time-driven state (lock expiry, scheduled activation, waiter timeouts, TTL) and
// runs on a background thread in production, by hand in tests.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tributary/base/guid.h"
#include "tributary/base/status.h"
#include "tributary/base/time.h"
#include "tributary/bus/message.h"
#include "tributary/storage/engine.h"

namespace tributary::bus {

template <typename T>
using Done = std::function<void(Result<T>)>;

enum class EntityKind : uint8_t { kQueue = 0, kTopic = 1, kSubscription = 2 };

// Properties of a queue, topic or subscription (service-bus.md §1.2), with Service Bus's defaults.
struct EntityProperties {
  int64_t lock_duration_ms = 60'000;           // PT1M, 5 s .. 5 min
  int64_t max_delivery_count = 10;             // >= 1
  int64_t default_message_ttl_ms = INT64_MAX;  // TimeSpan.MaxValue
  bool dead_lettering_on_message_expiration = false;
  bool requires_session = false;                                 // queues and subscriptions
  bool requires_duplicate_detection = false;                     // queues and topics
  int64_t duplicate_detection_history_time_window_ms = 600'000;  // PT10M, 20 s .. 7 d
  int64_t max_size_in_megabytes = 1024;
  int64_t max_message_size_in_kilobytes = 256;
  std::string forward_to;  // queue or topic path
  std::string forward_dead_lettered_messages_to;
  std::string status = "Active";  // Active | Disabled | SendDisabled | ReceiveDisabled
  std::string user_metadata;
};

// Runtime counts of an entity.
struct EntityRuntime {
  int64_t active = 0, dead_lettered = 0, scheduled = 0, transfer = 0, transfer_dead_lettered = 0, deferred = 0;
  int64_t locked = 0;
  int64_t size_in_bytes = 0;
  Timestamp created_at{0}, updated_at{0}, accessed_at{0};
};

struct EntityInfo {
  std::string path;  // "q", "t", "t/Subscriptions/s"
  EntityKind kind = EntityKind::kQueue;
  EntityProperties properties;
  EntityRuntime runtime;
};

// A message to send: properties the sender sets and the body bytes, stored verbatim.
struct OutgoingMessage {
  MessageProperties properties;
  std::string body;
};

// A received or peeked message.
struct ReceivedMessage {
  MessageProperties properties;
  std::string body;
  std::string lock_token;                 // peek-lock only (a GUID)
  std::optional<Timestamp> locked_until;  // peek-lock only
};

enum class ReceiveMode : uint8_t { kPeekLock, kReceiveAndDelete };

// Which sub-queue of an entity: the entity itself, its dead-letter queue or its transfer
// dead-letter queue ("q/$DeadLetterQueue", "q/$Transfer/$DeadLetterQueue").
enum class SubQueue : uint8_t { kNone = 0, kDeadLetter = 1, kTransferDeadLetter = 2 };

struct ReceiveOptions {
  ReceiveMode mode = ReceiveMode::kPeekLock;
  int max_messages = 1;
  std::chrono::milliseconds timeout{0};  // wait this long for a first message (long polling)
};

// A session accepted by a receiver: exclusive until released or expired.
struct SessionLock {
  std::string session_id;
  std::string lock_token;  // identifies this acceptance (a GUID)
  Timestamp locked_until{0};
};

struct BrokerOptions {
  int64_t max_peek = 250;
  int64_t max_receive = 5000;
  std::chrono::milliseconds max_wait{std::chrono::minutes(5)};
  // How often a background thread calls Tick(); 0: no thread (tests call Tick themselves).
  std::chrono::milliseconds tick_interval{50};
};

// Error codes (Status::error_code) the broker uses; the HTTP and AMQP layers map them.
namespace errc {
inline constexpr uint32_t kEntityNotFound = 0x80131501;   // MessagingEntityNotFound
inline constexpr uint32_t kEntityExists = 0x80131502;     // MessagingEntityAlreadyExists
inline constexpr uint32_t kMessageLockLost = 0x80131503;  // MessageLockLost
inline constexpr uint32_t kSessionLockLost = 0x80131504;  // SessionLockLost
inline constexpr uint32_t kSessionCannotBeLocked = 0x80131505;
inline constexpr uint32_t kMessageNotFound = 0x80131506;  // MessageNotFound (sequence number)
inline constexpr uint32_t kQuotaExceeded = 0x80131507;
inline constexpr uint32_t kMessageSizeExceeded = 0x80131508;
inline constexpr uint32_t kEntityDisabled = 0x80131509;
inline constexpr uint32_t kServiceTimeout = 0x8013150a;
inline constexpr uint32_t kBadRequest = 0x8013150b;
}  // namespace errc

class Broker {
 public:
  // Opens the broker on the environment's store: creates its tables if missing and loads the
  // entities and the index of stored messages.
  static Result<std::unique_ptr<Broker>> Open(storage::Engine& engine, const Clock& clock, BrokerOptions options = {});
  virtual ~Broker() = default;

  // --- Management ---------------------------------------------------------------------------
  virtual Status CreateQueue(const std::string& path, const EntityProperties& p) = 0;
  virtual Status CreateTopic(const std::string& path, const EntityProperties& p) = 0;
  // Rules: JSON array in the emulator's Config.json shape (empty: the $Default true rule).
  virtual Status CreateSubscription(const std::string& topic, const std::string& name, const EntityProperties& p,
                                    const std::string& rules_json = "") = 0;
  virtual Status UpdateEntity(const std::string& path, const EntityProperties& p) = 0;
  virtual Status DeleteEntity(const std::string& path) = 0;
  virtual Result<EntityInfo> GetEntity(const std::string& path) = 0;
  virtual std::vector<EntityInfo> ListEntities(std::optional<EntityKind> kind = std::nullopt) = 0;
  virtual Status CreateRule(const std::string& subscription_path, const std::string& rule_json) = 0;
  virtual Status DeleteRule(const std::string& subscription_path, const std::string& name) = 0;
  virtual Result<std::string> ListRules(const std::string& subscription_path) = 0;  // JSON array
  // Loads entities in the Service Bus emulator's Config.json format (creates missing ones).
  virtual Status LoadEmulatorConfig(std::string_view json) = 0;

  // --- Sending --------------------------------------------------------------------------------
  // Stores the messages (all or none) and answers their sequence numbers (0 for a duplicate that
  // was dropped). A topic fans out to its subscriptions. Scheduled messages answer the sequence
  // number they hold while scheduled.
  virtual void Send(const std::string& path, std::vector<OutgoingMessage> messages,
                    Done<std::vector<int64_t>> done) = 0;
  virtual void Schedule(const std::string& path, std::vector<OutgoingMessage> messages, Timestamp at,
                        Done<std::vector<int64_t>> done) = 0;
  // Sends as part of another write job (the transactional outbox: a record change and the
  // messages it raises commit together). Call it on the writer thread inside a job, with the
  // job's connection; it writes the rows there and returns a completion that the caller must call
  // with the job's final status once the job has committed or failed (the messages become
  // receivable then, or are forgotten).
  virtual Result<std::function<void(Status)>> SendWithin(storage::Connection& c, const std::string& path,
                                                         std::vector<OutgoingMessage> messages) = 0;
  virtual void CancelScheduled(const std::string& path, std::vector<int64_t> sequence_numbers, Done<bool> done) = 0;

  // --- Receiving (entities without sessions, and sub-queues) ----------------------------------
  virtual void Receive(const std::string& path, SubQueue sub, ReceiveOptions options,
                       Done<std::vector<ReceivedMessage>> done) = 0;
  virtual void ReceiveDeferred(const std::string& path, SubQueue sub, std::vector<int64_t> sequence_numbers,
                               ReceiveMode mode, Done<std::vector<ReceivedMessage>> done) = 0;
  virtual Result<std::vector<ReceivedMessage>> Peek(const std::string& path, SubQueue sub, int64_t from_sequence,
                                                    int max_messages, const std::string* session_id = nullptr) = 0;

  // --- Settlement (by lock token) -------------------------------------------------------------
  virtual void Complete(const std::string& path, SubQueue sub, const std::string& lock_token, Done<bool> done) = 0;
  virtual void Abandon(const std::string& path, SubQueue sub, const std::string& lock_token,
                       std::map<std::string, PropertyValue> properties_to_modify, Done<bool> done) = 0;
  virtual void Defer(const std::string& path, SubQueue sub, const std::string& lock_token,
                     std::map<std::string, PropertyValue> properties_to_modify, Done<bool> done) = 0;
  virtual void DeadLetter(const std::string& path, SubQueue sub, const std::string& lock_token, std::string reason,
                          std::string description, std::map<std::string, PropertyValue> properties_to_modify,
                          Done<bool> done) = 0;
  virtual Result<Timestamp> RenewLock(const std::string& path, SubQueue sub, const std::string& lock_token) = 0;

  // --- Sessions ---------------------------------------------------------------------------------
  // Accepts `session_id`, or the next available session when empty (waiting up to `timeout`;
  // kServiceTimeout when none frees up).
  virtual void AcceptSession(const std::string& path, std::optional<std::string> session_id,
                             std::chrono::milliseconds timeout, Done<SessionLock> done) = 0;
  virtual void ReceiveFromSession(const std::string& path, const SessionLock& session, ReceiveOptions options,
                                  Done<std::vector<ReceivedMessage>> done) = 0;
  virtual Result<Timestamp> RenewSessionLock(const std::string& path, const SessionLock& session) = 0;
  // Releases the session (its locked messages are unlocked without counting a delivery).
  virtual Status ReleaseSession(const std::string& path, const SessionLock& session) = 0;
  virtual Result<std::optional<std::string>> GetSessionState(const std::string& path,
                                                             const std::string& session_id) = 0;
  virtual void SetSessionState(const std::string& path, const SessionLock& session, std::optional<std::string> state,
                               Done<bool> done) = 0;
  // Sessions with messages or state, updated at or after `since` (get-message-sessions).
  virtual Result<std::vector<std::string>> ListSessions(const std::string& path, Timestamp since, int skip,
                                                        int top) = 0;

  // Moves time-driven state forward to the clock's now: lock and session-lock expiry, scheduled
  // activation, TTL, waiters whose timeout passed, duplicate-detection history. The writes this
  // starts (delivery counts, activations, dead-lettering) complete asynchronously, after Tick returns.
  virtual void Tick() = 0;
  // Stops the ticker, fails pending waiters (kUnavailable) and waits until the broker's writes
  // queued in the store have completed. The store must still be running.
  virtual void Shutdown() = 0;
};

// Splits "q/$DeadLetterQueue", "t/Subscriptions/s/$Transfer/$DeadLetterQueue" into the entity path
// and the sub-queue; the `Subscriptions` segment is matched case-insensitively.
std::pair<std::string, SubQueue> SplitSubQueue(std::string_view path);

}  // namespace tributary::bus
