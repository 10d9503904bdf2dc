// The broker: an in-memory index of every stored message (state, session, lock, timers) over
// the rows in the store, which hold the bytes. See broker.h for the contract.
//
// Index and store stay in step this way: a change is written first (one job on the store's
// writer thread, group-committed) and applied to the index in the job's completion, after the
// commit; messages being changed are marked `busy` meanwhile so no one else takes them. Sequence
// numbers are assigned inside the write job, so they follow commit order, and the entity's
// high-water mark is stored in the same transaction.

#include "tributary/bus/broker.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <list>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <unordered_map>

#include "codec.h"
#include "rules.h"
#include "tributary/base/guid.h"
#include "tributary/base/json.h"
#include "tributary/base/strings.h"

namespace tributary::bus {

namespace {

// _bus_message is a rowid table: a WITHOUT ROWID row keeps at most ~1,000 bytes in its B-tree page,
// so every 1 KB message spilled into an overflow page of its own (twice the pages written).
constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS _bus_entity (id INTEGER PRIMARY KEY, path TEXT NOT NULL, lpath TEXT NOT NULL UNIQUE,
  kind INTEGER NOT NULL, parent INTEGER, properties TEXT NOT NULL, rules TEXT, next_seq INTEGER NOT NULL DEFAULT 1,
  created INTEGER NOT NULL, updated INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS _bus_message (entity INTEGER NOT NULL, queue INTEGER NOT NULL, seq INTEGER NOT NULL,
  state INTEGER NOT NULL, session TEXT, enqueued INTEGER NOT NULL, visible_at INTEGER, expires_at INTEGER,
  delivery_count INTEGER NOT NULL DEFAULT 0, size INTEGER NOT NULL, props TEXT NOT NULL, body BLOB,
  PRIMARY KEY (entity, queue, seq));
CREATE TABLE IF NOT EXISTS _bus_session (entity INTEGER NOT NULL, session TEXT NOT NULL, state BLOB,
  updated INTEGER NOT NULL, PRIMARY KEY (entity, session)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS _bus_dedup (entity INTEGER NOT NULL, message_id TEXT NOT NULL, expires INTEGER NOT NULL,
  PRIMARY KEY (entity, message_id)) WITHOUT ROWID;
)sql";

constexpr int64_t kNever = INT64_MAX;
constexpr int kMaxHops = 4;
constexpr size_t kMaxDeadLetterText = 4096;

Status Err(uint32_t code, std::string message, Code c = Code::kInvalidArgument) {
  return Status(c, std::move(message), code);
}
Status EntityNotFound(std::string_view path) {
  return Err(errc::kEntityNotFound, "The messaging entity '" + std::string(path) + "' could not be found.",
             Code::kNotFound);
}
Status LockLost() {
  return Err(errc::kMessageLockLost,
             "The lock supplied is invalid. Either the lock expired, or the message has already been removed from the "
             "queue.",
             Code::kFailedPrecondition);
}
Status SessionLockLost() {
  return Err(errc::kSessionLockLost, "The session lock has expired or the session was released.",
             Code::kFailedPrecondition);
}

int64_t SatAdd(int64_t a, int64_t b) { return a > kNever - b ? kNever : a + b; }

struct Msg {
  int64_t seq = 0;
  MessageState state = MessageState::kActive;
  std::string session;
  int64_t enqueued = 0;
  int64_t visible_at = 0;  // scheduled messages: when they activate
  int64_t expires_at = kNever;
  int64_t delivery_count = 0;
  int64_t size = 0;
  std::string lock;  // lock token while locked
  int64_t locked_until = 0;
  bool busy = false;  // a write about it is in flight
};

struct SessionInfo {
  std::set<int64_t> all;    // every message of the session (sequence order)
  std::set<int64_t> avail;  // active, unlocked, visible messages
  std::string lock;         // session lock token
  int64_t locked_until = 0;
  int64_t ready_head = -1;  // its key in Queue::ready while it is there
  int64_t updated = 0;
  bool has_state = false;
};

struct Queue {
  std::map<int64_t, Msg> msgs;
  std::set<int64_t> avail;  // entities without sessions (and sub-queues)
  std::map<std::string, SessionInfo> sessions;
  // Sessions a receiver could accept now (unlocked, with an available message), by the sequence
  // number of their first available message: accept-next takes the first.
  std::set<std::pair<int64_t, std::string>> ready;
  int64_t bytes = 0;
};

// Keeps `q.ready` in step with session `id` after its lock or available messages changed.
void UpdateReady(Queue& q, const std::string& id, SessionInfo& s) {
  int64_t head = s.lock.empty() && !s.avail.empty() ? *s.avail.begin() : -1;
  if (head == s.ready_head) return;
  if (s.ready_head >= 0) q.ready.erase({s.ready_head, id});
  if (head >= 0) q.ready.emplace(head, id);
  s.ready_head = head;
}

struct Waiter {
  uint64_t id = 0;
  SubQueue sub = SubQueue::kNone;
  ReceiveOptions options;
  std::string session;       // receive within this session (its lock token below)
  std::string session_lock;  // empty: not a session receive
  int64_t deadline = 0;
  Done<std::vector<ReceivedMessage>> done;
};

struct SessionWaiter {
  uint64_t id = 0;
  int64_t deadline = 0;
  Done<SessionLock> done;
};

struct Entity {
  int64_t id = 0;
  std::string path;
  EntityKind kind = EntityKind::kQueue;
  Entity* parent = nullptr;  // topic of a subscription
  EntityProperties props;
  std::string rules_json;
  std::shared_ptr<const RuleSet> rules;
  int64_t next_seq = 1;
  int64_t created = 0, updated = 0, accessed = 0;
  std::vector<Entity*> subs;
  Queue q[3];
  std::unordered_map<std::string, int64_t> dedup;  // message id → expiry
  std::deque<std::pair<int64_t, std::string>> dedup_order;
  std::list<Waiter> waiters;
  std::list<SessionWaiter> session_waiters;
  bool deleted = false;
  int64_t sent = 0, completed = 0;
};

struct LockRef {
  Entity* e;
  SubQueue sub;
  int64_t seq;
};

struct TimerRef {
  Entity* e;
  int64_t seq;
};

struct SessionRef {
  Entity* e;
  std::string session;
};

std::string Lower(std::string_view s) { return ToLower(s); }

std::string PropertiesJson(const EntityProperties& p) {
  std::string out;
  JsonWriter w(out);
  w.BeginObject();
  w.Key("lockDurationMs");
  w.Int(p.lock_duration_ms);
  w.Key("maxDeliveryCount");
  w.Int(p.max_delivery_count);
  w.Key("defaultMessageTtlMs");
  w.Int(p.default_message_ttl_ms);
  w.Key("deadLetteringOnMessageExpiration");
  w.Bool(p.dead_lettering_on_message_expiration);
  w.Key("requiresSession");
  w.Bool(p.requires_session);
  w.Key("requiresDuplicateDetection");
  w.Bool(p.requires_duplicate_detection);
  w.Key("duplicateDetectionWindowMs");
  w.Int(p.duplicate_detection_history_time_window_ms);
  w.Key("maxSizeInMegabytes");
  w.Int(p.max_size_in_megabytes);
  w.Key("maxMessageSizeInKilobytes");
  w.Int(p.max_message_size_in_kilobytes);
  w.Key("forwardTo");
  w.String(p.forward_to);
  w.Key("forwardDeadLetteredMessagesTo");
  w.String(p.forward_dead_lettered_messages_to);
  w.Key("status");
  w.String(p.status);
  w.Key("userMetadata");
  w.String(p.user_metadata);
  w.EndObject();
  return out;
}

EntityProperties PropertiesFromJson(std::string_view text) {
  EntityProperties p;
  auto j = ParseJson(text);
  if (!j.ok() || !j->is_object()) return p;
  auto i = [&](const char* k, int64_t& out) {
    if (const Json* v = j->Find(k); v && v->is_number()) out = v->as_int();
  };
  auto b = [&](const char* k, bool& out) {
    if (const Json* v = j->Find(k); v && v->is_bool()) out = v->as_bool();
  };
  auto s = [&](const char* k, std::string& out) {
    if (const Json* v = j->Find(k); v && v->is_string()) out = v->as_string();
  };
  i("lockDurationMs", p.lock_duration_ms);
  i("maxDeliveryCount", p.max_delivery_count);
  i("defaultMessageTtlMs", p.default_message_ttl_ms);
  b("deadLetteringOnMessageExpiration", p.dead_lettering_on_message_expiration);
  b("requiresSession", p.requires_session);
  b("requiresDuplicateDetection", p.requires_duplicate_detection);
  i("duplicateDetectionWindowMs", p.duplicate_detection_history_time_window_ms);
  i("maxSizeInMegabytes", p.max_size_in_megabytes);
  i("maxMessageSizeInKilobytes", p.max_message_size_in_kilobytes);
  s("forwardTo", p.forward_to);
  s("forwardDeadLetteredMessagesTo", p.forward_dead_lettered_messages_to);
  s("status", p.status);
  s("userMetadata", p.user_metadata);
  return p;
}

Status ValidateProperties(const EntityProperties& p) {
  if (p.lock_duration_ms < 5'000 || p.lock_duration_ms > 300'000)
    return Err(errc::kBadRequest, "lockDuration must be between 5 seconds and 5 minutes.");
  if (p.max_delivery_count < 1) return Err(errc::kBadRequest, "maxDeliveryCount must be at least 1.");
  if (p.default_message_ttl_ms < 1'000)
    return Err(errc::kBadRequest, "defaultMessageTimeToLive must be at least 1 second.");
  if (p.duplicate_detection_history_time_window_ms < 20'000 ||
      p.duplicate_detection_history_time_window_ms > 7LL * 24 * 3600 * 1000)
    return Err(errc::kBadRequest, "duplicateDetectionHistoryTimeWindow must be between 20 seconds and 7 days.");
  if (p.max_size_in_megabytes < 1 || p.max_size_in_megabytes > 81'920)
    return Err(errc::kBadRequest, "maxSizeInMegabytes must be between 1 and 81920.");
  if (p.max_message_size_in_kilobytes < 1 || p.max_message_size_in_kilobytes > 102'400)
    return Err(errc::kBadRequest, "maxMessageSizeInKilobytes must be between 1 and 102400.");
  if (p.status != "Active" && p.status != "Disabled" && p.status != "SendDisabled" && p.status != "ReceiveDisabled")
    return Err(errc::kBadRequest, "status must be Active, Disabled, SendDisabled or ReceiveDisabled.");
  return Status::Ok();
}

bool ValidName(std::string_view name, size_t max) {
  if (name.empty() || name.size() > max) return false;
  if (name.front() == '/' || name.back() == '/' || name.find("//") != std::string_view::npos) return false;
  for (char c : name)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' || c == '/' || c == '~'))
      return false;
  return name.find('$') == std::string_view::npos;
}

// One row to insert: a message copy bound for a queue of an entity.
struct Insert {
  Entity* e;
  SubQueue sub;
  MessageProperties props;
  std::shared_ptr<const std::string> body;
  int64_t size;
  int result_index;  // which sent message it answers for (-1: not reported)
  bool scheduled;
};

}  // namespace

std::pair<std::string, SubQueue> SplitSubQueue(std::string_view path) {
  auto strip = [&](std::string_view suffix) {
    if (path.size() >= suffix.size() && EqualsIgnoreCase(path.substr(path.size() - suffix.size()), suffix)) {
      path.remove_suffix(suffix.size());
      return true;
    }
    return false;
  };
  SubQueue sub = SubQueue::kNone;
  if (strip("/$Transfer/$DeadLetterQueue"))
    sub = SubQueue::kTransferDeadLetter;
  else if (strip("/$DeadLetterQueue"))
    sub = SubQueue::kDeadLetter;
  return {std::string(path), sub};
}

class BrokerImpl final : public Broker {
 public:
  BrokerImpl(storage::Engine& engine, const Clock& clock, BrokerOptions options)
      : engine_(engine), clock_(clock), options_(options) {}
  ~BrokerImpl() override { Shutdown(); }

  Status Load() {
    RETURN_IF_ERROR(engine_.WriteSync([](storage::Connection& c) { return c.ExecScript(kSchema); }));
    auto r = engine_.Read();
    std::map<int64_t, Entity*> by_id;
    RETURN_IF_ERROR(
        r->Query("SELECT id, path, kind, parent, properties, rules, next_seq, created, updated FROM "
                 "_bus_entity ORDER BY id",
                 {}, [&](const storage::Row& row) {
                   auto e = std::make_unique<Entity>();
                   e->id = row.Int(0);
                   e->path = std::string(row.Text(1));
                   e->kind = static_cast<EntityKind>(row.Int(2));
                   if (!row.is_null(3)) e->parent = by_id[row.Int(3)];
                   e->props = PropertiesFromJson(row.Text(4));
                   e->rules_json = row.is_null(5) ? "" : std::string(row.Text(5));
                   e->next_seq = row.Int(6);
                   e->created = row.Int(7);
                   e->updated = row.Int(8);
                   by_id[e->id] = e.get();
                   next_id_ = std::max(next_id_, e->id + 1);
                   entities_[Lower(e->path)] = std::move(e);
                   return true;
                 }));
    for (auto& [k, e] : entities_) {
      if (e->parent) e->parent->subs.push_back(e.get());
      if (e->kind == EntityKind::kSubscription) {
        auto rs = ParseRules(e->rules_json);
        e->rules = rs.ok() ? std::move(rs).value() : DefaultRules();
      }
    }
    const int64_t now = clock_.Now().ms;
    RETURN_IF_ERROR(r->Query(
        "SELECT entity, queue, seq, state, session, enqueued, visible_at, expires_at, "
        "delivery_count, size FROM _bus_message",
        {}, [&](const storage::Row& row) {
          Entity* e = by_id.count(row.Int(0)) ? by_id[row.Int(0)] : nullptr;
          if (!e) return true;
          auto sub = static_cast<SubQueue>(row.Int(1));
          Msg m;
          m.seq = row.Int(2);
          m.state = static_cast<MessageState>(row.Int(3));
          m.session =
              row.is_null(4) || !e->props.requires_session || sub != SubQueue::kNone ? "" : std::string(row.Text(4));
          m.enqueued = row.Int(5);
          m.visible_at = row.is_null(6) ? 0 : row.Int(6);
          m.expires_at = row.is_null(7) ? kNever : row.Int(7);
          m.delivery_count = row.Int(8);
          m.size = row.Int(9);
          AddToIndex(*e, sub, std::move(m), now);
          return true;
        }));
    RETURN_IF_ERROR(r->Query("SELECT entity, session, updated FROM _bus_session", {}, [&](const storage::Row& row) {
      Entity* e = by_id.count(row.Int(0)) ? by_id[row.Int(0)] : nullptr;
      if (!e) return true;
      SessionInfo& s = e->q[0].sessions[std::string(row.Text(1))];
      s.has_state = true;
      s.updated = std::max(s.updated, row.Int(2));
      return true;
    }));
    RETURN_IF_ERROR(r->Query("SELECT entity, message_id, expires FROM _bus_dedup WHERE expires > ? ORDER BY expires",
                             std::vector<storage::SqlValue>{now}, [&](const storage::Row& row) {
                               Entity* e = by_id.count(row.Int(0)) ? by_id[row.Int(0)] : nullptr;
                               if (!e) return true;
                               std::string id(row.Text(1));
                               e->dedup[id] = row.Int(2);
                               e->dedup_order.emplace_back(row.Int(2), std::move(id));
                               return true;
                             }));
    if (options_.tick_interval.count() > 0) {
      ticker_ = std::thread([this] {
        std::unique_lock lock(tick_mu_);
        while (!stopping_) {
          tick_cv_.wait_for(lock, options_.tick_interval);
          if (stopping_) break;
          lock.unlock();
          Tick();
          lock.lock();
        }
      });
    }
    return Status::Ok();
  }

  // ----------------------------------------------------------------------------------------------
  // Management

  Status CreateQueue(const std::string& path, const EntityProperties& p) override {
    return CreateEntity(path, EntityKind::kQueue, nullptr, p, "");
  }

  Status CreateTopic(const std::string& path, const EntityProperties& p) override {
    return CreateEntity(path, EntityKind::kTopic, nullptr, p, "");
  }

  Status CreateSubscription(const std::string& topic, const std::string& name, const EntityProperties& p,
                            const std::string& rules_json) override {
    if (name.empty() || name.size() > 50 || name.find('/') != std::string::npos || !ValidName(name, 50))
      return Err(errc::kBadRequest, "A subscription name has 1–50 letters, digits, '.', '-', '_' or '~'.");
    Entity* t;
    {
      std::lock_guard lock(mu_);
      t = Find(topic);
      if (!t || t->kind != EntityKind::kTopic) return EntityNotFound(topic);
    }
    return CreateEntity(t->path + "/Subscriptions/" + name, EntityKind::kSubscription, t, p, rules_json);
  }

  Status UpdateEntity(const std::string& path, const EntityProperties& p) override {
    RETURN_IF_ERROR(ValidateProperties(p));
    std::lock_guard admin(admin_mu_);
    int64_t id;
    {
      std::lock_guard lock(mu_);
      Entity* e = Find(path);
      if (!e) return EntityNotFound(path);
      if (p.requires_session != e->props.requires_session)
        return Err(errc::kBadRequest, "requiresSession cannot be changed after the entity is created.");
      if (p.requires_duplicate_detection != e->props.requires_duplicate_detection)
        return Err(errc::kBadRequest, "requiresDuplicateDetection cannot be changed after the entity is created.");
      RETURN_IF_ERROR(CheckForward(*e, p));
      id = e->id;
    }
    int64_t now = clock_.Now().ms;
    std::string json = PropertiesJson(p);
    // Never wait for the writer while holding mu_: its jobs take mu_.
    RETURN_IF_ERROR(engine_.WriteSync([&](storage::Connection& c) {
      std::vector<storage::SqlValue> v = {json, now, id};
      return c.Exec("UPDATE _bus_entity SET properties = ?, updated = ? WHERE id = ?", v).status();
    }));
    std::lock_guard lock(mu_);
    if (Entity* e = Find(path)) {
      e->props = p;
      e->updated = now;
    }
    return Status::Ok();
  }

  Status DeleteEntity(const std::string& path) override {
    std::vector<Entity*> doomed;
    std::vector<int64_t> ids;
    std::vector<std::function<void()>> after;
    std::lock_guard admin(admin_mu_);
    {
      std::lock_guard lock(mu_);
      Entity* e = Find(path);
      if (!e) return EntityNotFound(path);
      doomed.push_back(e);
      for (Entity* s : e->subs) doomed.push_back(s);
      for (Entity* d : doomed) ids.push_back(d->id);
    }
    RETURN_IF_ERROR(engine_.WriteSync([&](storage::Connection& c) {
      for (int64_t id : ids) {
        std::vector<storage::SqlValue> v = {id};
        RETURN_IF_ERROR(c.Exec("DELETE FROM _bus_message WHERE entity = ?", v).status());
        RETURN_IF_ERROR(c.Exec("DELETE FROM _bus_session WHERE entity = ?", v).status());
        RETURN_IF_ERROR(c.Exec("DELETE FROM _bus_dedup WHERE entity = ?", v).status());
        RETURN_IF_ERROR(c.Exec("DELETE FROM _bus_entity WHERE id = ?", v).status());
      }
      return Status::Ok();
    }));
    {
      std::lock_guard lock(mu_);
      Entity* e = doomed.front();
      for (Entity* d : doomed) {
        d->deleted = true;
        for (auto& w : d->waiters) after.push_back([done = w.done] { done(EntityNotFound("(deleted)")); });
        for (auto& w : d->session_waiters) after.push_back([done = w.done] { done(EntityNotFound("(deleted)")); });
        d->waiters.clear();
        d->session_waiters.clear();
        for (auto it = locks_.begin(); it != locks_.end();) it = it->second.e == d ? locks_.erase(it) : std::next(it);
        for (auto it = session_locks_.begin(); it != session_locks_.end();)
          it = it->second.e == d ? session_locks_.erase(it) : std::next(it);
      }
      if (e->parent) std::erase(e->parent->subs, e);
      // Keep the objects (callbacks in flight may point at them); drop them from the name index.
      for (Entity* d : doomed) {
        auto it = entities_.find(Lower(d->path));
        if (it != entities_.end()) {
          graveyard_.push_back(std::move(it->second));
          entities_.erase(it);
        }
      }
    }
    for (auto& f : after) f();
    return Status::Ok();
  }

  Result<EntityInfo> GetEntity(const std::string& path) override {
    std::lock_guard lock(mu_);
    Entity* e = Find(path);
    if (!e) return EntityNotFound(path);
    return Info(*e);
  }

  std::vector<EntityInfo> ListEntities(std::optional<EntityKind> kind) override {
    std::lock_guard lock(mu_);
    std::vector<EntityInfo> out;
    for (auto& [k, e] : entities_)
      if (!kind || e->kind == *kind) out.push_back(Info(*e));
    return out;
  }

  Status CreateRule(const std::string& subscription_path, const std::string& rule_json) override {
    return ChangeRules(subscription_path, [&](std::string& json) -> Status {
      ASSIGN_OR_RETURN(std::string added, AddRuleJson(json, rule_json));
      json = std::move(added);
      return Status::Ok();
    });
  }

  Status DeleteRule(const std::string& subscription_path, const std::string& name) override {
    return ChangeRules(subscription_path, [&](std::string& json) -> Status {
      ASSIGN_OR_RETURN(std::string removed, RemoveRuleJson(json, name));
      json = std::move(removed);
      return Status::Ok();
    });
  }

  Result<std::string> ListRules(const std::string& subscription_path) override {
    std::lock_guard lock(mu_);
    Entity* e = Find(subscription_path);
    if (!e || e->kind != EntityKind::kSubscription) return EntityNotFound(subscription_path);
    return RulesJsonOrDefault(e->rules_json);
  }

  Status LoadEmulatorConfig(std::string_view json) override;

  // ----------------------------------------------------------------------------------------------
  // Sending

  void Send(const std::string& path, std::vector<OutgoingMessage> messages, Done<std::vector<int64_t>> done) override {
    SendImpl(path, std::move(messages), std::nullopt, std::move(done));
  }

  void Schedule(const std::string& path, std::vector<OutgoingMessage> messages, Timestamp at,
                Done<std::vector<int64_t>> done) override {
    SendImpl(path, std::move(messages), at, std::move(done));
  }

  void CancelScheduled(const std::string& path, std::vector<int64_t> seqs, Done<bool> done) override {
    std::vector<std::pair<Entity*, int64_t>> targets;  // every copy (topics: per subscription)
    Status refused;
    {
      std::lock_guard lock(mu_);
      Entity* e = Find(path);
      if (!e) {
        refused = EntityNotFound(path);
        seqs.clear();
      }
      std::vector<Entity*> holders;
      if (e) holders = e->kind == EntityKind::kTopic ? e->subs : std::vector<Entity*>{e};
      for (int64_t seq : seqs) {
        bool found = false;
        for (Entity* h : holders) {
          auto it = h->q[0].msgs.find(seq);
          if (it == h->q[0].msgs.end() || it->second.state != MessageState::kScheduled || it->second.busy) continue;
          it->second.busy = true;
          targets.emplace_back(h, seq);
          found = true;
        }
        if (!found && e->kind != EntityKind::kTopic) {
          for (auto& [h, s] : targets) h->q[0].msgs[s].busy = false;
          targets.clear();
          refused = Err(errc::kMessageNotFound,
                        "No scheduled message with sequence number " + std::to_string(seq) + ".", Code::kNotFound);
          break;
        }
      }
    }
    if (!refused.ok()) return done(refused);  // never call back with mu_ held
    Write(
        [targets](storage::Connection& c) {
          for (auto& [h, seq] : targets) {
            std::vector<storage::SqlValue> v = {h->id, seq};
            RETURN_IF_ERROR(c.Exec("DELETE FROM _bus_message WHERE entity = ? AND queue = 0 AND seq = ?", v).status());
          }
          return Status::Ok();
        },
        [this, targets, done](Status s) {
          {
            std::lock_guard lock(mu_);
            for (auto& [h, seq] : targets) {
              if (s.ok())
                RemoveFromIndex(*h, SubQueue::kNone, seq);
              else if (auto it = h->q[0].msgs.find(seq); it != h->q[0].msgs.end())
                it->second.busy = false;
            }
          }
          if (!s.ok()) return done(s);
          done(true);
        });
  }

  // ----------------------------------------------------------------------------------------------
  // Receiving

  void Receive(const std::string& path, SubQueue sub, ReceiveOptions options,
               Done<std::vector<ReceivedMessage>> done) override {
    std::unique_lock lock(mu_);
    Entity* e = Find(path);
    if (!e) return Unlock(lock, done, EntityNotFound(path));
    if (e->kind == EntityKind::kTopic)
      return Unlock(lock, done,
                    Err(errc::kBadRequest, "'" + e->path + "' is a topic: receive from one of its subscriptions ('" +
                                               e->path + "/Subscriptions/<name>')."));
    if (sub == SubQueue::kNone && e->props.requires_session)
      return Unlock(lock, done,
                    Err(errc::kBadRequest,
                        "The entity '" + e->path + "' requires sessions: accept a session to receive from it."));
    if (e->props.status == "Disabled" || e->props.status == "ReceiveDisabled")
      return Unlock(lock, done,
                    Err(errc::kEntityDisabled, "The entity '" + e->path + "' is disabled for receiving.",
                        Code::kFailedPrecondition));
    Waiter w;
    w.sub = sub;
    w.options = Clamp(options);
    w.done = std::move(done);
    Serve(*e, std::move(w), lock);
  }

  void ReceiveDeferred(const std::string& path, SubQueue sub, std::vector<int64_t> seqs, ReceiveMode mode,
                       Done<std::vector<ReceivedMessage>> done) override {
    std::unique_lock lock(mu_);
    Entity* e = Find(path);
    if (!e || e->kind == EntityKind::kTopic) return Unlock(lock, done, EntityNotFound(path));
    Queue& q = e->q[static_cast<int>(sub)];
    for (int64_t seq : seqs) {
      auto it = q.msgs.find(seq);
      if (it == q.msgs.end() || it->second.state != MessageState::kDeferred || !it->second.lock.empty() ||
          it->second.busy)
        return Unlock(lock, done,
                      Err(errc::kMessageNotFound,
                          "Failed to lock one or more specified messages. Either the message is already locked or it "
                          "does not exist (sequence number " +
                              std::to_string(seq) + ").",
                          Code::kNotFound));
    }
    Delivery d = Take(*e, sub, seqs, mode, clock_.Now().ms);
    lock.unlock();
    Deliver(std::move(d), std::move(done));
  }

  Result<std::vector<ReceivedMessage>> Peek(const std::string& path, SubQueue sub, int64_t from, int max,
                                            const std::string* session_id) override {
    std::vector<std::pair<int64_t, Msg>> picked;
    int64_t id;
    {
      std::lock_guard lock(mu_);
      Entity* e = Find(path);
      if (!e || e->kind == EntityKind::kTopic) return EntityNotFound(path);
      id = e->id;
      e->accessed = clock_.Now().ms;
      max = std::clamp<int>(max, 1, static_cast<int>(options_.max_peek));
      const Queue& q = e->q[static_cast<int>(sub)];
      for (auto it = q.msgs.lower_bound(from); it != q.msgs.end() && static_cast<int>(picked.size()) < max; ++it) {
        if (session_id && it->second.session != *session_id) continue;
        if (e->kind == EntityKind::kSubscription && it->second.state == MessageState::kScheduled) continue;
        picked.emplace_back(it->first, it->second);
        picked.back().second.lock.clear();  // a peeked message carries no lock
      }
    }
    std::vector<ReceivedMessage> out;
    RETURN_IF_ERROR(LoadRows(id, sub, picked, out));
    return out;
  }

  // ----------------------------------------------------------------------------------------------
  // Settlement

  void Complete(const std::string& path, SubQueue sub, const std::string& token, Done<bool> done) override {
    std::unique_lock lock(mu_);
    auto ref = Locked(path, sub, token);
    if (!ref.ok()) return Unlock(lock, done, ref.status());
    Entity* e = ref->e;
    int64_t seq = ref->seq;
    Msg& m = e->q[static_cast<int>(sub)].msgs[seq];
    m.busy = true;
    lock.unlock();
    Write(
        [e, sub, seq](storage::Connection& c) {
          std::vector<storage::SqlValue> v = {e->id, static_cast<int64_t>(sub), seq};
          return c.Exec("DELETE FROM _bus_message WHERE entity = ? AND queue = ? AND seq = ?", v).status();
        },
        [this, e, sub, seq, token, done](Status s) {
          {
            std::lock_guard lock(mu_);
            if (s.ok()) {
              locks_.erase(token);
              RemoveFromIndex(*e, sub, seq);
              ++e->completed;
            } else if (auto it = e->q[static_cast<int>(sub)].msgs.find(seq);
                       it != e->q[static_cast<int>(sub)].msgs.end()) {
              it->second.busy = false;
            }
          }
          if (!s.ok()) return done(s);
          done(true);
        });
  }

  void Abandon(const std::string& path, SubQueue sub, const std::string& token,
               std::map<std::string, PropertyValue> props, Done<bool> done) override {
    std::unique_lock lock(mu_);
    auto ref = Locked(path, sub, token);
    if (!ref.ok()) return Unlock(lock, done, ref.status());
    Release(*ref->e, sub, ref->seq, token, /*count=*/true, std::move(props), std::nullopt, lock, std::move(done));
  }

  void Defer(const std::string& path, SubQueue sub, const std::string& token,
             std::map<std::string, PropertyValue> props, Done<bool> done) override {
    std::unique_lock lock(mu_);
    auto ref = Locked(path, sub, token);
    if (!ref.ok()) return Unlock(lock, done, ref.status());
    Release(*ref->e, sub, ref->seq, token, /*count=*/false, std::move(props), MessageState::kDeferred, lock,
            std::move(done));
  }

  void DeadLetter(const std::string& path, SubQueue sub, const std::string& token, std::string reason,
                  std::string description, std::map<std::string, PropertyValue> props, Done<bool> done) override {
    if (sub != SubQueue::kNone)
      return done(Err(errc::kBadRequest, "A message in a dead-letter queue cannot be dead-lettered again."));
    if (reason.size() > kMaxDeadLetterText || description.size() > kMaxDeadLetterText)
      return done(
          Err(errc::kBadRequest, "DeadLetterReason and DeadLetterErrorDescription are limited to 4096 characters."));
    std::unique_lock lock(mu_);
    auto ref = Locked(path, sub, token);
    if (!ref.ok()) return Unlock(lock, done, ref.status());
    props["DeadLetterReason"] = PropertyValue{std::move(reason)};
    props["DeadLetterErrorDescription"] = PropertyValue{std::move(description)};
    Entity* e = ref->e;
    int64_t seq = ref->seq;
    Msg& m = e->q[0].msgs[seq];
    m.busy = true;
    lock.unlock();
    MoveToDeadLetter(e, seq, std::move(props), m.delivery_count, token, std::move(done));
  }

  Result<Timestamp> RenewLock(const std::string& path, SubQueue sub, const std::string& token) override {
    std::lock_guard lock(mu_);
    auto ref = Locked(path, sub, token);
    if (!ref.ok()) return ref.status();
    Msg& m = ref->e->q[static_cast<int>(sub)].msgs[ref->seq];
    if (!m.session.empty() && sub == SubQueue::kNone) {
      // A session message's lock is the session's.
      SessionInfo& s = ref->e->q[0].sessions[m.session];
      return Timestamp{s.locked_until};
    }
    m.locked_until = clock_.Now().ms + ref->e->props.lock_duration_ms;
    lock_expiry_.emplace(m.locked_until, token);
    return Timestamp{m.locked_until};
  }

  // ----------------------------------------------------------------------------------------------
  // Sessions

  void AcceptSession(const std::string& path, std::optional<std::string> session_id, std::chrono::milliseconds timeout,
                     Done<SessionLock> done) override {
    std::unique_lock lock(mu_);
    Entity* e = Find(path);
    if (!e || e->kind == EntityKind::kTopic) return Unlock(lock, done, EntityNotFound(path));
    if (!e->props.requires_session)
      return Unlock(lock, done, Err(errc::kBadRequest, "The entity '" + e->path + "' does not require sessions."));
    int64_t now = clock_.Now().ms;
    if (session_id) {
      if (session_id->empty() || session_id->size() > 128)
        return Unlock(lock, done, Err(errc::kBadRequest, "A session id has 1–128 characters."));
      SessionInfo& s = e->q[0].sessions[*session_id];
      if (!s.lock.empty() && s.locked_until > now)
        return Unlock(
            lock, done,
            Err(errc::kSessionCannotBeLocked,
                "The requested session '" + *session_id + "' cannot be accepted. It may be locked by another receiver.",
                Code::kFailedPrecondition));
      if (!s.lock.empty()) ExpireSession(*e, *session_id, now);  // a stale lock
      SessionLock sl = LockSession(*e, *session_id, now);
      auto writes = TakePending();
      lock.unlock();
      for (auto& f : writes) f();
      return done(sl);
    }
    if (auto next = NextFreeSession(*e, now)) {
      SessionLock sl = LockSession(*e, *next, now);
      auto writes = TakePending();
      lock.unlock();
      for (auto& f : writes) f();
      return done(sl);
    }
    if (timeout.count() <= 0) return Unlock(lock, done, NoSession());
    SessionWaiter w;
    w.id = ++waiter_ids_;
    w.deadline = now + std::min<int64_t>(timeout.count(), options_.max_wait.count());
    w.done = std::move(done);
    e->session_waiters.push_back(std::move(w));
  }

  void ReceiveFromSession(const std::string& path, const SessionLock& session, ReceiveOptions options,
                          Done<std::vector<ReceivedMessage>> done) override {
    std::unique_lock lock(mu_);
    Entity* e = Find(path);
    if (!e) return Unlock(lock, done, EntityNotFound(path));
    if (!SessionHeld(*e, session)) return Unlock(lock, done, SessionLockLost());
    Waiter w;
    w.options = Clamp(options);
    w.session = session.session_id;
    w.session_lock = session.lock_token;
    w.done = std::move(done);
    Serve(*e, std::move(w), lock);
  }

  Result<Timestamp> RenewSessionLock(const std::string& path, const SessionLock& session) override {
    std::lock_guard lock(mu_);
    Entity* e = Find(path);
    if (!e) return EntityNotFound(path);
    if (!SessionHeld(*e, session)) return SessionLockLost();
    SessionInfo& s = e->q[0].sessions[session.session_id];
    s.locked_until = clock_.Now().ms + e->props.lock_duration_ms;
    session_expiry_.emplace(s.locked_until, session.lock_token);
    for (int64_t seq : s.all)
      if (Msg& m = e->q[0].msgs[seq]; !m.lock.empty()) m.locked_until = s.locked_until;
    return Timestamp{s.locked_until};
  }

  Status ReleaseSession(const std::string& path, const SessionLock& session) override {
    std::vector<std::function<void()>> after;
    {
      std::lock_guard lock(mu_);
      Entity* e = Find(path);
      if (!e) return EntityNotFound(path);
      if (!SessionHeld(*e, session)) return SessionLockLost();
      UnlockSession(*e, session.session_id, /*count=*/false, clock_.Now().ms);
      after = Wake(*e);
    }
    for (auto& f : after) f();
    return Status::Ok();
  }

  Result<std::optional<std::string>> GetSessionState(const std::string& path, const std::string& session_id) override {
    int64_t id;
    {
      std::lock_guard lock(mu_);
      Entity* e = Find(path);
      if (!e) return EntityNotFound(path);
      id = e->id;
    }
    std::optional<std::string> state;
    auto r = engine_.Read();
    RETURN_IF_ERROR(r->Query("SELECT state FROM _bus_session WHERE entity = ? AND session = ?",
                             std::vector<storage::SqlValue>{id, session_id}, [&](const storage::Row& row) {
                               if (!row.is_null(0)) state = std::string(row.Text(0));
                               return false;
                             }));
    return state;
  }

  void SetSessionState(const std::string& path, const SessionLock& session, std::optional<std::string> state,
                       Done<bool> done) override {
    Entity* e;
    int64_t now = clock_.Now().ms;
    {
      std::unique_lock lock(mu_);
      e = Find(path);
      if (!e) return Unlock(lock, done, EntityNotFound(path));
      if (!SessionHeld(*e, session)) return Unlock(lock, done, SessionLockLost());
      if (state && static_cast<int64_t>(state->size()) > e->props.max_message_size_in_kilobytes * 1024)
        return Unlock(lock, done,
                      Err(errc::kMessageSizeExceeded,
                          "The session state is larger than the entity's message size limit.", Code::kPayloadTooLarge));
    }
    std::string sid = session.session_id;
    Write(
        [e, sid, state, now](storage::Connection& c) {
          if (!state) {
            std::vector<storage::SqlValue> v = {e->id, sid};
            return c.Exec("DELETE FROM _bus_session WHERE entity = ? AND session = ?", v).status();
          }
          std::vector<storage::SqlValue> v = {e->id, sid, storage::Blob{*state}, now};
          return c
              .Exec(
                  "INSERT INTO _bus_session (entity, session, state, updated) VALUES (?, ?, ?, ?) ON CONFLICT "
                  "(entity, session) DO UPDATE SET state = excluded.state, updated = excluded.updated",
                  v)
              .status();
        },
        [this, e, sid, has = state.has_value(), now, done](Status s) {
          if (s.ok()) {
            std::lock_guard lock(mu_);
            SessionInfo& si = e->q[0].sessions[sid];
            si.has_state = has;
            si.updated = now;
          }
          if (!s.ok()) return done(s);
          done(true);
        });
  }

  Result<std::vector<std::string>> ListSessions(const std::string& path, Timestamp since, int skip, int top) override {
    std::lock_guard lock(mu_);
    Entity* e = Find(path);
    if (!e) return EntityNotFound(path);
    std::vector<std::string> out;
    int seen = 0;
    for (const auto& [id, s] : e->q[0].sessions) {
      bool has_messages = !s.all.empty();
      if (!has_messages && !s.has_state) continue;
      if (s.updated < since.ms && !has_messages) continue;
      if (seen++ < skip) continue;
      if (static_cast<int>(out.size()) >= top) break;
      out.push_back(id);
    }
    return out;
  }

  // ----------------------------------------------------------------------------------------------
  // Time

  void Tick() override {
    std::vector<std::function<void()>> after;
    std::vector<std::pair<Entity*, int64_t>> expired_ttl, activate;
    std::vector<std::pair<std::string, LockRef>> expired_locks;
    {
      std::lock_guard lock(mu_);
      const int64_t now = clock_.Now().ms;
      // Message locks.
      while (!lock_expiry_.empty() && lock_expiry_.begin()->first <= now) {
        std::string token = lock_expiry_.begin()->second;
        lock_expiry_.erase(lock_expiry_.begin());
        auto it = locks_.find(token);
        if (it == locks_.end()) continue;
        Msg* m = FindMsg(*it->second.e, it->second.sub, it->second.seq);
        if (!m || m->lock != token || m->busy || m->locked_until > now || !m->session.empty()) continue;
        expired_locks.emplace_back(token, it->second);
      }
      // Session locks.
      while (!session_expiry_.empty() && session_expiry_.begin()->first <= now) {
        std::string token = session_expiry_.begin()->second;
        session_expiry_.erase(session_expiry_.begin());
        auto it = session_locks_.find(token);
        if (it == session_locks_.end()) continue;
        SessionInfo& s = it->second.e->q[0].sessions[it->second.session];
        if (s.lock != token || s.locked_until > now) continue;
        Entity* e = it->second.e;
        ExpireSession(*e, it->second.session, now);
        auto w = Wake(*e);
        after.insert(after.end(), w.begin(), w.end());
      }
      // Scheduled activation and TTL expiry, from the timer index (entries are checked: the
      // message may have moved on since).
      while (!timers_.empty() && timers_.begin()->first <= now) {
        TimerRef t = timers_.begin()->second;
        timers_.erase(timers_.begin());
        if (t.e->deleted) continue;
        Msg* m = FindMsg(*t.e, SubQueue::kNone, t.seq);
        if (!m || m->busy) continue;
        if (m->state == MessageState::kScheduled && m->visible_at <= now) {
          m->busy = true;
          activate.emplace_back(t.e, t.seq);
        } else if (m->state == MessageState::kActive && m->lock.empty() && m->expires_at <= now) {
          m->busy = true;
          RemoveAvailable(*t.e, SubQueue::kNone, *m);
          expired_ttl.emplace_back(t.e, t.seq);
        }
      }
      for (auto& [k, e] : entities_) {
        // Waiters past their deadline answer empty (receives) or time out (accept-next).
        for (auto it = e->waiters.begin(); it != e->waiters.end();) {
          if (it->deadline <= now) {
            after.push_back([done = std::move(it->done)] { done(std::vector<ReceivedMessage>{}); });
            it = e->waiters.erase(it);
          } else {
            ++it;
          }
        }
        for (auto it = e->session_waiters.begin(); it != e->session_waiters.end();) {
          if (it->deadline <= now) {
            after.push_back([done = std::move(it->done), this] { done(NoSession()); });
            it = e->session_waiters.erase(it);
          } else {
            ++it;
          }
        }
        while (!e->dedup_order.empty() && e->dedup_order.front().first <= now) {
          auto& [exp, id] = e->dedup_order.front();
          if (auto d = e->dedup.find(id); d != e->dedup.end() && d->second <= now) e->dedup.erase(d);
          e->dedup_order.pop_front();
        }
      }
    }
    for (auto& f : after) f();
    for (auto& [token, ref] : expired_locks) {
      std::unique_lock lock(mu_);
      Msg* m = FindMsg(*ref.e, ref.sub, ref.seq);
      if (!m || m->lock != token || m->busy) continue;
      Release(*ref.e, ref.sub, ref.seq, token, true, {}, std::nullopt, lock, [](Result<bool>) {});
    }
    for (auto& [e, seq] : expired_ttl) Expire(e, seq);
    for (auto& [e, seq] : activate) Activate(e, seq);
  }

  void Shutdown() override {
    {
      std::lock_guard lock(tick_mu_);
      if (stopping_) return;
      stopping_ = true;
      tick_cv_.notify_all();
    }
    if (ticker_.joinable()) ticker_.join();
    std::vector<std::function<void()>> after;
    {
      std::lock_guard lock(mu_);
      for (auto& [k, e] : entities_) {
        for (auto& w : e->waiters)
          after.push_back([done = w.done] { done(Status(Code::kUnavailable, "The broker is shutting down.")); });
        for (auto& w : e->session_waiters)
          after.push_back([done = w.done] { done(Status(Code::kUnavailable, "The broker is shutting down.")); });
        e->waiters.clear();
        e->session_waiters.clear();
      }
    }
    for (auto& f : after) f();
    // Completions of writes still queued in the store touch the index: wait for them.
    std::unique_lock lock(inflight_mu_);
    inflight_cv_.wait(lock, [this] { return inflight_ == 0; });
  }

 private:
  // A set of messages taken for a receiver: their index entries (copied) and how to settle.
  struct Delivery {
    int64_t entity_id = 0;
    Entity* e = nullptr;
    SubQueue sub = SubQueue::kNone;
    ReceiveMode mode = ReceiveMode::kPeekLock;
    std::vector<std::pair<int64_t, Msg>> msgs;
  };

  // Every write of the broker goes through here, so Shutdown() can wait for their completions
  // (which touch the broker's state) before the broker goes away.
  void Write(storage::WriteFn fn, storage::WriteDone done) {
    {
      std::lock_guard lock(inflight_mu_);
      ++inflight_;
    }
    engine_.Write(std::move(fn), [this, done = std::move(done)](Status s) {
      done(std::move(s));
      std::lock_guard lock(inflight_mu_);
      if (--inflight_ == 0) inflight_cv_.notify_all();
    });
  }

  template <typename T>
  static void Unlock(std::unique_lock<std::mutex>& lock, const Done<T>& done, Status s) {
    lock.unlock();
    done(std::move(s));
  }

  static Status NoSession() {
    return Err(errc::kServiceTimeout,
               "The operation did not complete within the allotted timeout: no session became available.",
               Code::kUnavailable);
  }

  ReceiveOptions Clamp(ReceiveOptions o) const {
    o.max_messages = std::clamp<int>(o.max_messages, 1, static_cast<int>(options_.max_receive));
    if (o.timeout > options_.max_wait) o.timeout = options_.max_wait;
    return o;
  }

  Entity* Find(std::string_view path) {
    auto it = entities_.find(Lower(path));
    return it == entities_.end() ? nullptr : it->second.get();
  }

  static Msg* FindMsg(Entity& e, SubQueue sub, int64_t seq) {
    auto& msgs = e.q[static_cast<int>(sub)].msgs;
    auto it = msgs.find(seq);
    return it == msgs.end() ? nullptr : &it->second;
  }

  EntityInfo Info(const Entity& e) const {
    EntityInfo i;
    i.path = e.path;
    i.kind = e.kind;
    i.properties = e.props;
    const Queue& q = e.q[0];
    for (const auto& [seq, m] : q.msgs) {
      if (m.state == MessageState::kScheduled)
        ++i.runtime.scheduled;
      else if (m.state == MessageState::kDeferred)
        ++i.runtime.deferred;
      else
        ++i.runtime.active;
      if (!m.lock.empty()) ++i.runtime.locked;
    }
    i.runtime.dead_lettered = static_cast<int64_t>(e.q[1].msgs.size());
    i.runtime.transfer_dead_lettered = static_cast<int64_t>(e.q[2].msgs.size());
    i.runtime.size_in_bytes = e.q[0].bytes + e.q[1].bytes + e.q[2].bytes;
    i.runtime.created_at = Timestamp{e.created};
    i.runtime.updated_at = Timestamp{e.updated};
    i.runtime.accessed_at = Timestamp{e.accessed};
    if (e.kind == EntityKind::kTopic)
      for (const Entity* s : e.subs) i.runtime.active += 0 * s->id;  // a topic holds no messages itself
    return i;
  }

  Status CheckForward(const Entity& e, const EntityProperties& p) {
    for (const std::string* to : {&p.forward_to, &p.forward_dead_lettered_messages_to}) {
      if (to->empty()) continue;
      Entity* d = Find(*to);
      if (!d || d->kind == EntityKind::kSubscription)
        return Err(errc::kEntityNotFound, "The forwarding destination '" + *to + "' is not a queue or topic.",
                   Code::kNotFound);
      if (d == &e) return Err(errc::kBadRequest, "An entity cannot forward to itself.");
    }
    return Status::Ok();
  }

  Status CreateEntity(const std::string& path, EntityKind kind, Entity* parent, const EntityProperties& p,
                      const std::string& rules_json) {
    if (kind != EntityKind::kSubscription && !ValidName(path, 260))
      return Err(errc::kBadRequest,
                 "An entity path has 1–260 letters, digits, '.', '-', '_', '~' or '/' (not at the start or end).");
    RETURN_IF_ERROR(ValidateProperties(p));
    std::shared_ptr<const RuleSet> rules;
    std::string stored_rules;
    if (kind == EntityKind::kSubscription) {
      ASSIGN_OR_RETURN(rules, ParseRules(rules_json));
      stored_rules = rules_json;
    }
    std::lock_guard admin(admin_mu_);  // one management change at a time
    std::unique_lock lock(mu_);
    if (Find(path))
      return Err(errc::kEntityExists, "The messaging entity '" + path + "' already exists.", Code::kAlreadyExists);
    RETURN_IF_ERROR(CheckForward(Entity{}, p));
    auto e = std::make_unique<Entity>();
    e->id = next_id_;
    e->path = path;
    e->kind = kind;
    e->parent = parent;
    e->props = p;
    e->rules_json = stored_rules;
    e->rules = rules;
    e->created = e->updated = clock_.Now().ms;
    std::vector<storage::SqlValue> v = {e->id,
                                        e->path,
                                        Lower(e->path),
                                        static_cast<int64_t>(kind),
                                        parent ? storage::SqlValue(parent->id) : storage::SqlValue(),
                                        PropertiesJson(p),
                                        stored_rules.empty() ? storage::SqlValue() : storage::SqlValue(stored_rules),
                                        e->created,
                                        e->created};
    lock.unlock();  // the writer's jobs take mu_: never wait for it while holding mu_
    RETURN_IF_ERROR(engine_.WriteSync([&](storage::Connection& c) {
      return c
          .Exec(
              "INSERT INTO _bus_entity (id, path, lpath, kind, parent, properties, rules, next_seq, created, "
              "updated) VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?, ?)",
              v)
          .status();
    }));
    lock.lock();
    ++next_id_;
    if (parent) parent->subs.push_back(e.get());
    entities_[Lower(path)] = std::move(e);
    return Status::Ok();
  }

  Status ChangeRules(const std::string& path, const std::function<Status(std::string&)>& change) {
    std::lock_guard admin(admin_mu_);
    std::unique_lock lock(mu_);
    Entity* e = Find(path);
    if (!e || e->kind != EntityKind::kSubscription) return EntityNotFound(path);
    std::string json = RulesJsonOrDefault(e->rules_json);
    RETURN_IF_ERROR(change(json));
    ASSIGN_OR_RETURN(auto rules, ParseRules(json));
    int64_t id = e->id, now = clock_.Now().ms;
    lock.unlock();
    RETURN_IF_ERROR(engine_.WriteSync([&](storage::Connection& c) {
      std::vector<storage::SqlValue> v = {json, now, id};
      return c.Exec("UPDATE _bus_entity SET rules = ?, updated = ? WHERE id = ?", v).status();
    }));
    lock.lock();
    e->rules_json = json;
    e->rules = std::move(rules);
    e->updated = now;
    return Status::Ok();
  }

  // --- Index ---

  void AddToIndex(Entity& e, SubQueue sub, Msg m, int64_t now) {
    (void)now;
    Queue& q = e.q[static_cast<int>(sub)];
    q.bytes += m.size;
    int64_t seq = m.seq;
    auto [it, inserted] = q.msgs.insert_or_assign(seq, std::move(m));
    MakeAvailable(e, sub, it->second);
    if (sub == SubQueue::kNone && !it->second.session.empty()) {
      SessionInfo& s = q.sessions[it->second.session];
      s.all.insert(seq);
      s.updated = std::max(s.updated, it->second.enqueued);
    }
  }

  void MakeAvailable(Entity& e, SubQueue sub, Msg& m) {
    if (sub == SubQueue::kNone && !m.busy) {
      // Timers: activation of a scheduled message, expiry of an available one (checked when due).
      if (m.state == MessageState::kScheduled)
        timers_.emplace(m.visible_at, TimerRef{&e, m.seq});
      else if (m.state == MessageState::kActive && m.lock.empty() && m.expires_at != kNever)
        timers_.emplace(m.expires_at, TimerRef{&e, m.seq});
    }
    if (m.state != MessageState::kActive || !m.lock.empty() || m.busy) return;
    Queue& q = e.q[static_cast<int>(sub)];
    if (sub == SubQueue::kNone && !m.session.empty()) {
      SessionInfo& si = q.sessions[m.session];
      si.avail.insert(m.seq);
      UpdateReady(q, m.session, si);
    } else
      q.avail.insert(m.seq);
  }

  void RemoveAvailable(Entity& e, SubQueue sub, const Msg& m) {
    Queue& q = e.q[static_cast<int>(sub)];
    if (sub == SubQueue::kNone && !m.session.empty()) {
      if (auto it = q.sessions.find(m.session); it != q.sessions.end()) {
        it->second.avail.erase(m.seq);
        UpdateReady(q, m.session, it->second);
      }
    } else {
      q.avail.erase(m.seq);
    }
  }

  void RemoveFromIndex(Entity& e, SubQueue sub, int64_t seq) {
    Queue& q = e.q[static_cast<int>(sub)];
    auto it = q.msgs.find(seq);
    if (it == q.msgs.end()) return;
    RemoveAvailable(e, sub, it->second);
    if (!it->second.lock.empty()) locks_.erase(it->second.lock);
    q.bytes -= it->second.size;
    std::string session = it->second.session;
    q.msgs.erase(it);
    if (!session.empty() && sub == SubQueue::kNone) {
      auto s = q.sessions.find(session);
      if (s != q.sessions.end()) {
        s->second.all.erase(seq);
        if (s->second.all.empty() && s->second.lock.empty() && !s->second.has_state) q.sessions.erase(s);
      }
    }
  }

  // --- Sessions ---

  bool SessionHeld(Entity& e, const SessionLock& sl) {
    auto it = e.q[0].sessions.find(sl.session_id);
    return it != e.q[0].sessions.end() && it->second.lock == sl.lock_token && !sl.lock_token.empty() &&
           it->second.locked_until > clock_.Now().ms;
  }

  SessionLock LockSession(Entity& e, const std::string& id, int64_t now) {
    SessionInfo& s = e.q[0].sessions[id];
    s.lock = GuidGenerator::NewRandom().ToString();
    s.locked_until = now + e.props.lock_duration_ms;
    UpdateReady(e.q[0], id, s);
    session_locks_[s.lock] = SessionRef{&e, id};
    session_expiry_.emplace(s.locked_until, s.lock);
    e.accessed = now;
    return SessionLock{id, s.lock, Timestamp{s.locked_until}};
  }

  std::optional<std::string> NextFreeSession(Entity& e, int64_t now) {
    (void)now;  // sessions whose lock lapsed come back into `ready` at the next Tick
    if (e.q[0].ready.empty()) return std::nullopt;
    return e.q[0].ready.begin()->second;
  }

  // Drops the session's lock; its locked messages become available again, counting a delivery
  // when `count` (lock expiry) and not when the receiver released the session.
  void UnlockSession(Entity& e, std::string id, bool count,
                     int64_t now) {  // id by value: it may live in session_locks_
    SessionInfo& s = e.q[0].sessions[id];
    session_locks_.erase(s.lock);
    s.lock.clear();
    s.locked_until = 0;
    UpdateReady(e.q[0], id, s);
    const std::vector<int64_t> seqs(s.all.begin(), s.all.end());
    for (int64_t seq : seqs) {
      Msg& m = e.q[0].msgs[seq];
      if (m.lock.empty() || m.busy) continue;
      locks_.erase(m.lock);
      if (lost_session_tokens_.size() > 100'000) lost_session_tokens_.clear();
      lost_session_tokens_.insert(m.lock);
      m.lock.clear();
      m.locked_until = 0;
      if (count) {
        PersistCount(&e, seq, m.delivery_count + 1);
      } else {
        MakeAvailable(e, SubQueue::kNone, m);
      }
    }
    (void)now;
  }

  void ExpireSession(Entity& e, std::string id, int64_t now) { UnlockSession(e, std::move(id), true, now); }

  // Stores a new delivery count for a main-queue message that lost its lock (session expiry);
  // moves it to the dead-letter queue when it reached the limit.
  void PersistCount(Entity* e, int64_t seq, int64_t count) {
    Msg& m = e->q[0].msgs[seq];
    m.busy = true;
    if (count >= e->props.max_delivery_count) {
      std::map<std::string, PropertyValue> props;
      props["DeadLetterReason"] = PropertyValue{std::string("MaxDeliveryCountExceeded")};
      props["DeadLetterErrorDescription"] = PropertyValue{
          "Message could not be consumed after " + std::to_string(e->props.max_delivery_count) + " delivery attempts."};
      pending_.push_back(
          [this, e, seq, props, count] { MoveToDeadLetter(e, seq, props, count, "", [](Result<bool>) {}); });
      return;
    }
    pending_.push_back([this, e, seq, count] {
      Write(
          [e, seq, count](storage::Connection& c) {
            std::vector<storage::SqlValue> v = {count, e->id, seq};
            return c.Exec("UPDATE _bus_message SET delivery_count = ? WHERE entity = ? AND queue = 0 AND seq = ?", v)
                .status();
          },
          [this, e, seq, count](Status s) {
            std::vector<std::function<void()>> after;
            {
              std::lock_guard lock(mu_);
              Msg* m = FindMsg(*e, SubQueue::kNone, seq);
              if (!m) return;
              m->busy = false;
              if (s.ok()) m->delivery_count = count;
              MakeAvailable(*e, SubQueue::kNone, *m);
              after = Wake(*e);
            }
            for (auto& f : after) f();
          });
    });
  }

  // --- Delivery ---

  // Locks (peek-lock) or claims (receive-and-delete) the given messages for a receiver.
  Delivery Take(Entity& e, SubQueue sub, const std::vector<int64_t>& seqs, ReceiveMode mode, int64_t now,
                int64_t locked_until = 0) {
    Delivery d;
    d.entity_id = e.id;
    d.e = &e;
    d.sub = sub;
    d.mode = mode;
    e.accessed = now;
    for (int64_t seq : seqs) {
      Msg& m = e.q[static_cast<int>(sub)].msgs[seq];
      RemoveAvailable(e, sub, m);
      if (mode == ReceiveMode::kPeekLock) {
        m.lock = GuidGenerator::NewRandom().ToString();
        m.locked_until = locked_until ? locked_until : now + e.props.lock_duration_ms;
        locks_[m.lock] = LockRef{&e, sub, seq};
        if (m.session.empty() || sub != SubQueue::kNone) lock_expiry_.emplace(m.locked_until, m.lock);
      } else {
        m.busy = true;
      }
      d.msgs.emplace_back(seq, m);
    }
    return d;
  }

  // Reads the bodies and properties of taken messages and answers the receiver; for
  // receive-and-delete, deletes them first (durably).
  void Deliver(Delivery d, Done<std::vector<ReceivedMessage>> done) {
    auto out = std::make_shared<std::vector<ReceivedMessage>>();
    Status s = LoadRows(d.entity_id, d.sub, d.msgs, *out);
    if (!s.ok()) {
      Undo(d);
      return done(s);
    }
    if (d.mode == ReceiveMode::kPeekLock || d.msgs.empty()) return done(std::move(*out));
    auto shared = std::make_shared<Delivery>(std::move(d));
    Write(
        [shared](storage::Connection& c) {
          for (const auto& [seq, m] : shared->msgs) {
            std::vector<storage::SqlValue> v = {shared->entity_id, static_cast<int64_t>(shared->sub), seq};
            RETURN_IF_ERROR(c.Exec("DELETE FROM _bus_message WHERE entity = ? AND queue = ? AND seq = ?", v).status());
          }
          return Status::Ok();
        },
        [this, shared, out, done](Status s) {
          if (!s.ok()) {
            Undo(*shared);
            return done(s);
          }
          {
            std::lock_guard lock(mu_);
            for (const auto& [seq, m] : shared->msgs) RemoveFromIndex(*shared->e, shared->sub, seq);
            shared->e->completed += static_cast<int64_t>(shared->msgs.size());
          }
          done(std::move(*out));
        });
  }

  void Undo(const Delivery& d) {
    std::vector<std::function<void()>> after;
    {
      std::lock_guard lock(mu_);
      for (const auto& [seq, copy] : d.msgs) {
        Msg* m = FindMsg(*d.e, d.sub, seq);
        if (!m) continue;
        if (!m->lock.empty()) locks_.erase(m->lock);
        m->lock.clear();
        m->locked_until = 0;
        m->busy = false;
        MakeAvailable(*d.e, d.sub, *m);
      }
      after = Wake(*d.e);
    }
    for (auto& f : after) f();
  }

  Status LoadRows(int64_t entity_id, SubQueue sub, const std::vector<std::pair<int64_t, Msg>>& msgs,
                  std::vector<ReceivedMessage>& out) {
    if (msgs.empty()) return Status::Ok();
    auto r = engine_.Read();
    std::map<int64_t, std::pair<std::string, std::string>> rows;
    std::string in;
    std::vector<storage::SqlValue> params = {entity_id, static_cast<int64_t>(sub)};
    for (const auto& [seq, m] : msgs) {
      in += in.empty() ? "?" : ",?";
      params.emplace_back(seq);
    }
    RETURN_IF_ERROR(
        r->Query("SELECT seq, props, body FROM _bus_message WHERE entity = ? AND queue = ? AND seq IN (" + in + ")",
                 params, [&](const storage::Row& row) {
                   rows[row.Int(0)] = {std::string(row.Text(1)), std::string(row.Text(2))};
                   return true;
                 }));
    for (const auto& [seq, m] : msgs) {
      auto it = rows.find(seq);
      if (it == rows.end()) continue;
      ReceivedMessage rm;
      rm.properties = DecodeProperties(it->second.first);
      rm.body = std::move(it->second.second);
      rm.properties.sequence_number = seq;
      if (!rm.properties.enqueued_sequence_number) rm.properties.enqueued_sequence_number = seq;
      rm.properties.enqueued_time = Timestamp{m.enqueued};
      rm.properties.delivery_count = m.delivery_count;
      rm.properties.state = m.state;
      if (m.expires_at != kNever) rm.properties.expires_at = Timestamp{m.expires_at};
      if (!m.session.empty()) rm.properties.session_id = m.session;
      if (!m.lock.empty()) {
        rm.lock_token = m.lock;
        rm.locked_until = Timestamp{m.locked_until};
      }
      out.push_back(std::move(rm));
    }
    return Status::Ok();
  }

  // Serves a receiver now or parks it until messages arrive or its timeout passes.
  void Serve(Entity& e, Waiter w, std::unique_lock<std::mutex>& lock) {
    const int64_t now = clock_.Now().ms;
    auto picked = Pick(e, w, now);
    if (!picked.empty() || w.options.timeout.count() <= 0) {
      SessionInfo* s = w.session_lock.empty() ? nullptr : &e.q[0].sessions[w.session];
      Delivery d = Take(e, w.sub, picked, w.options.mode, now, s ? s->locked_until : 0);
      lock.unlock();
      return Deliver(std::move(d), std::move(w.done));
    }
    w.id = ++waiter_ids_;
    w.deadline = now + w.options.timeout.count();
    e.waiters.push_back(std::move(w));
  }

  // The messages a receiver would get now, in sequence order.
  std::vector<int64_t> Pick(Entity& e, const Waiter& w, int64_t now) {
    std::vector<int64_t> out;
    const std::set<int64_t>* avail;
    Queue& q = e.q[static_cast<int>(w.sub)];
    if (!w.session_lock.empty()) {
      auto it = q.sessions.find(w.session);
      if (it == q.sessions.end() || it->second.lock != w.session_lock || it->second.locked_until <= now) return out;
      // Strictly in order: the session's messages after its head wait while an earlier one is
      // in transition (being abandoned, returned from an expired lock); messages this receiver
      // already holds do not block.
      for (int64_t seq : it->second.all) {
        if (static_cast<int>(out.size()) >= w.options.max_messages) break;
        const Msg& m = q.msgs[seq];
        if (m.state != MessageState::kActive) continue;
        if (m.busy) break;
        if (!m.lock.empty()) continue;
        if (m.expires_at <= now) break;  // expires at the next tick, then the next one is the head
        out.push_back(seq);
      }
      return out;
    } else {
      avail = &q.avail;
    }
    for (int64_t seq : *avail) {
      if (static_cast<int>(out.size()) >= w.options.max_messages) break;
      const Msg& m = q.msgs[seq];
      if (m.expires_at <= now && w.sub == SubQueue::kNone) continue;  // expires at the next tick
      out.push_back(seq);
    }
    return out;
  }

  // Serves parked receivers and accept-next waiters of `e` that can be served now; the returned
  // functions run after mu_ is released.
  std::vector<std::function<void()>> Wake(Entity& e) {
    std::vector<std::function<void()>> after;
    const int64_t now = clock_.Now().ms;
    for (auto it = e.waiters.begin(); it != e.waiters.end();) {
      if (!it->session_lock.empty()) {
        auto s = e.q[0].sessions.find(it->session);
        if (s == e.q[0].sessions.end() || s->second.lock != it->session_lock || s->second.locked_until <= now) {
          after.push_back([done = std::move(it->done)] { done(SessionLockLost()); });
          it = e.waiters.erase(it);
          continue;
        }
      }
      auto picked = Pick(e, *it, now);
      if (picked.empty()) {
        ++it;
        continue;
      }
      SessionInfo* s = it->session_lock.empty() ? nullptr : &e.q[0].sessions[it->session];
      auto d = std::make_shared<Delivery>(Take(e, it->sub, picked, it->options.mode, now, s ? s->locked_until : 0));
      after.push_back([this, d, done = std::move(it->done)]() mutable { Deliver(std::move(*d), std::move(done)); });
      it = e.waiters.erase(it);
    }
    while (!e.session_waiters.empty()) {
      auto next = NextFreeSession(e, now);
      if (!next) break;
      SessionLock sl = LockSession(e, *next, now);
      after.push_back([sl, done = std::move(e.session_waiters.front().done)] { done(sl); });
      e.session_waiters.pop_front();
    }
    for (auto& f : pending_) after.push_back(std::move(f));
    pending_.clear();
    return after;
  }

  std::vector<std::function<void()>> TakePending() {
    std::vector<std::function<void()>> out = std::move(pending_);
    pending_.clear();
    return out;
  }

  // --- Settlement helpers ---

  Result<LockRef> Locked(const std::string& path, SubQueue sub, const std::string& token) {
    Entity* e = Find(path);
    if (!e) return EntityNotFound(path);
    auto it = locks_.find(token);
    if (it == locks_.end() && lost_session_tokens_.count(token)) return SessionLockLost();
    if (it == locks_.end() || it->second.e != e || it->second.sub != sub) return LockLost();
    Msg* m = FindMsg(*e, sub, it->second.seq);
    int64_t now = clock_.Now().ms;
    if (!m || m->lock != token || m->busy) return LockLost();
    if (sub == SubQueue::kNone && !m->session.empty()) {
      SessionInfo& s = e->q[0].sessions[m->session];
      if (s.lock.empty() || s.locked_until <= now) return SessionLockLost();
    } else if (m->locked_until <= now) {
      return LockLost();
    }
    return it->second;
  }

  // Abandon (count), defer (state) or lock expiry: write the change, then unlock in the index.
  void Release(Entity& e, SubQueue sub, int64_t seq, const std::string& token, bool count,
               std::map<std::string, PropertyValue> props, std::optional<MessageState> state,
               std::unique_lock<std::mutex>& lock, Done<bool> done) {
    Msg& m = e.q[static_cast<int>(sub)].msgs[seq];
    m.busy = true;
    int64_t new_count = m.delivery_count + (count ? 1 : 0);
    Entity* ep = &e;
    if (count && sub == SubQueue::kNone && new_count >= e.props.max_delivery_count) {
      props["DeadLetterReason"] = PropertyValue{std::string("MaxDeliveryCountExceeded")};
      props["DeadLetterErrorDescription"] = PropertyValue{
          "Message could not be consumed after " + std::to_string(e.props.max_delivery_count) + " delivery attempts."};
      lock.unlock();
      return MoveToDeadLetter(ep, seq, std::move(props), new_count, token, std::move(done));
    }
    lock.unlock();
    int64_t st = static_cast<int64_t>(state.value_or(m.state));
    Write(
        [ep, sub, seq, new_count, st, props](storage::Connection& c) -> Status {
          std::vector<storage::SqlValue> key = {ep->id, static_cast<int64_t>(sub), seq};
          if (!props.empty()) {
            std::string text;
            RETURN_IF_ERROR(c.Query("SELECT props FROM _bus_message WHERE entity = ? AND queue = ? AND seq = ?", key,
                                    [&](const storage::Row& r) {
                                      text = std::string(r.Text(0));
                                      return false;
                                    }));
            MessageProperties p = DecodeProperties(text);
            for (const auto& [k, v] : props) p.application[k] = v;
            std::vector<storage::SqlValue> u = {EncodeProperties(p), ep->id, static_cast<int64_t>(sub), seq};
            RETURN_IF_ERROR(
                c.Exec("UPDATE _bus_message SET props = ? WHERE entity = ? AND queue = ? AND seq = ?", u).status());
          }
          std::vector<storage::SqlValue> v = {new_count, st, ep->id, static_cast<int64_t>(sub), seq};
          return c
              .Exec("UPDATE _bus_message SET delivery_count = ?, state = ? WHERE entity = ? AND queue = ? AND seq = ?",
                    v)
              .status();
        },
        [this, ep, sub, seq, token, new_count, st, done](Status s) {
          std::vector<std::function<void()>> after;
          {
            std::lock_guard lock(mu_);
            Msg* m = FindMsg(*ep, sub, seq);
            if (m) {
              m->busy = false;
              if (s.ok()) {
                locks_.erase(token);
                m->lock.clear();
                m->locked_until = 0;
                m->delivery_count = new_count;
                m->state = static_cast<MessageState>(st);
                MakeAvailable(*ep, sub, *m);
              }
            }
            after = Wake(*ep);
          }
          for (auto& f : after) f();
          if (!s.ok()) return done(s);
          done(true);
        });
  }

  // Moves a main-queue message to the entity's dead-letter queue (same sequence number), with the
  // given application properties merged; or forwards it (forwardDeadLetteredMessagesTo).
  void MoveToDeadLetter(Entity* e, int64_t seq, std::map<std::string, PropertyValue> props, int64_t count,
                        const std::string& token, Done<bool> done) {
    Write(
        [e, seq, props, count](storage::Connection& c) -> Status {
          std::vector<storage::SqlValue> key = {e->id, seq};
          std::string text;
          RETURN_IF_ERROR(c.Query("SELECT props FROM _bus_message WHERE entity = ? AND queue = 0 AND seq = ?", key,
                                  [&](const storage::Row& r) {
                                    text = std::string(r.Text(0));
                                    return false;
                                  }));
          MessageProperties p = DecodeProperties(text);
          for (const auto& [k, v] : props) p.application[k] = v;
          std::vector<storage::SqlValue> u = {EncodeProperties(p), count, e->id, seq};
          return c
              .Exec(
                  "UPDATE _bus_message SET queue = 1, state = 0, visible_at = NULL, expires_at = NULL, props = ?, "
                  "delivery_count = ? WHERE entity = ? AND queue = 0 AND seq = ?",
                  u)
              .status();
        },
        [this, e, seq, count, token, done](Status s) {
          std::vector<std::function<void()>> after;
          {
            std::lock_guard lock(mu_);
            Msg* m = FindMsg(*e, SubQueue::kNone, seq);
            if (m) {
              if (s.ok()) {
                Msg copy = *m;
                RemoveFromIndex(*e, SubQueue::kNone, seq);
                if (!token.empty()) locks_.erase(token);
                copy.lock.clear();
                copy.locked_until = 0;
                copy.busy = false;
                copy.state = MessageState::kActive;
                copy.expires_at = kNever;
                copy.delivery_count = count;
                AddToIndex(*e, SubQueue::kDeadLetter, std::move(copy), 0);
                if (!e->props.forward_dead_lettered_messages_to.empty())
                  pending_.push_back([this, e, seq] { ForwardDeadLetter(e, seq); });
              } else {
                m->busy = false;
              }
            }
            after = Wake(*e);
          }
          for (auto& f : after) f();
          if (!s.ok()) return done(s);
          done(true);
        });
  }

  // forwardDeadLetteredMessagesTo: sends a dead-lettered message on, marked with its source, and
  // then removes it from the dead-letter queue (two commits: a crash between them leaves it in
  // both places, never in neither).
  void ForwardDeadLetter(Entity* e, int64_t seq) {
    std::string dest;
    std::vector<std::pair<int64_t, Msg>> one;
    {
      std::lock_guard lock(mu_);
      Msg* m = FindMsg(*e, SubQueue::kDeadLetter, seq);
      if (!m || m->busy || !m->lock.empty() || e->deleted) return;
      m->busy = true;
      RemoveAvailable(*e, SubQueue::kDeadLetter, *m);
      dest = e->props.forward_dead_lettered_messages_to;
      one.emplace_back(seq, *m);
    }
    std::vector<ReceivedMessage> loaded;
    Status s = LoadRows(e->id, SubQueue::kDeadLetter, one, loaded);
    auto unbusy = [this, e, seq] {
      std::lock_guard lock(mu_);
      if (Msg* m = FindMsg(*e, SubQueue::kDeadLetter, seq)) {
        m->busy = false;
        MakeAvailable(*e, SubQueue::kDeadLetter, *m);
      }
    };
    if (!s.ok() || loaded.empty()) return unbusy();
    OutgoingMessage out;
    out.properties = loaded[0].properties;
    out.properties.dead_letter_source = e->path;
    out.properties.scheduled_enqueue_time.reset();
    out.body = std::move(loaded[0].body);
    SendImpl(dest, {std::move(out)}, std::nullopt, [this, e, seq, unbusy](Result<std::vector<int64_t>> r) {
      if (!r.ok()) return unbusy();
      Write(
          [e, seq](storage::Connection& c) {
            std::vector<storage::SqlValue> v = {e->id, seq};
            return c.Exec("DELETE FROM _bus_message WHERE entity = ? AND queue = 1 AND seq = ?", v).status();
          },
          [this, e, seq, unbusy](Status s) {
            if (!s.ok()) return unbusy();
            std::lock_guard lock(mu_);
            RemoveFromIndex(*e, SubQueue::kDeadLetter, seq);
          });
    });
  }

  // TTL: drops the message or dead-letters it with TTLExpiredException.
  void Expire(Entity* e, int64_t seq) {
    bool dlq;
    {
      std::lock_guard lock(mu_);
      if (!FindMsg(*e, SubQueue::kNone, seq)) return;
      dlq = e->props.dead_lettering_on_message_expiration;
    }
    if (dlq) {
      std::map<std::string, PropertyValue> props;
      props["DeadLetterReason"] = PropertyValue{std::string("TTLExpiredException")};
      props["DeadLetterErrorDescription"] = PropertyValue{std::string("The message expired and was dead lettered.")};
      int64_t count;
      {
        std::lock_guard lock(mu_);
        count = e->q[0].msgs[seq].delivery_count;
      }
      return MoveToDeadLetter(e, seq, std::move(props), count, "", [](Result<bool>) {});
    }
    Write(
        [e, seq](storage::Connection& c) {
          std::vector<storage::SqlValue> v = {e->id, seq};
          return c.Exec("DELETE FROM _bus_message WHERE entity = ? AND queue = 0 AND seq = ?", v).status();
        },
        [this, e, seq](Status s) {
          std::lock_guard lock(mu_);
          if (s.ok()) {
            RemoveFromIndex(*e, SubQueue::kNone, seq);
          } else if (Msg* m = FindMsg(*e, SubQueue::kNone, seq)) {
            m->busy = false;
            MakeAvailable(*e, SubQueue::kNone, *m);
          }
        });
  }

  // A scheduled message becomes active: a new sequence number and enqueued time.
  void Activate(Entity* e, int64_t seq) {
    auto new_seq = std::make_shared<int64_t>(0);
    auto now = std::make_shared<int64_t>(0);
    Write(
        [this, e, seq, new_seq, now](storage::Connection& c) -> Status {
          {
            std::lock_guard lock(mu_);
            *new_seq = e->next_seq++;
          }
          *now = clock_.Now().ms;
          std::vector<storage::SqlValue> v = {*new_seq, *now, e->id, seq};
          RETURN_IF_ERROR(c.Exec("UPDATE _bus_message SET seq = ?, state = 0, enqueued = ?, visible_at = NULL WHERE "
                                 "entity = ? AND queue = 0 AND seq = ?",
                                 v)
                              .status());
          std::vector<storage::SqlValue> n = {*new_seq + 1, e->id};
          return c.Exec("UPDATE _bus_entity SET next_seq = ? WHERE id = ?", n).status();
        },
        [this, e, seq, new_seq, now](Status s) {
          std::vector<std::function<void()>> after;
          {
            std::lock_guard lock(mu_);
            Msg* m = FindMsg(*e, SubQueue::kNone, seq);
            if (!m) return;
            if (!s.ok()) {
              m->busy = false;
              ReloadSequence(*e);
              return;
            }
            Msg copy = *m;
            RemoveFromIndex(*e, SubQueue::kNone, seq);
            copy.seq = *new_seq;
            copy.state = MessageState::kActive;
            copy.busy = false;
            copy.expires_at = copy.expires_at == kNever ? kNever : SatAdd(*now, copy.expires_at - copy.enqueued);
            copy.enqueued = *now;
            copy.visible_at = 0;
            AddToIndex(*e, SubQueue::kNone, std::move(copy), *now);
            after = Wake(*e);
          }
          for (auto& f : after) f();
        });
  }

  void ReloadSequence(Entity& e) {
    auto r = engine_.Read();
    (void)r->Query("SELECT next_seq FROM _bus_entity WHERE id = ?", std::vector<storage::SqlValue>{e.id},
                   [&](const storage::Row& row) {
                     e.next_seq = row.Int(0);
                     return false;
                   });
  }

  // --- Send ---

  // A send in three steps: checks and routing under mu_ (PrepareSend), the rows written in a
  // write job (StoreSend, on the writer thread), the index updated after the commit (FinishSend;
  // its result runs after mu_ is released).
  struct SendPlan {
    std::vector<Insert> inserts;
    std::vector<Msg> rows;
    std::vector<int64_t> results;
    std::vector<std::pair<Entity*, std::string>> dedup_added;
    int64_t now = 0;
  };
  Result<std::shared_ptr<SendPlan>> PrepareSend(const std::string& path, std::vector<OutgoingMessage> messages,
                                                std::optional<Timestamp> at);
  Status StoreSend(SendPlan& plan, storage::Connection& c);
  std::vector<std::function<void()>> FinishSend(SendPlan& plan, const Status& s);
  static Status Refuse(std::unique_lock<std::mutex>& lock, Status s) {
    lock.unlock();
    return s;
  }

 public:
  Result<std::function<void(Status)>> SendWithin(storage::Connection& c, const std::string& path,
                                                 std::vector<OutgoingMessage> messages) override;

 private:
  void SendImpl(const std::string& path, std::vector<OutgoingMessage> messages, std::optional<Timestamp> at,
                Done<std::vector<int64_t>> done);

  storage::Engine& engine_;
  const Clock& clock_;
  BrokerOptions options_;
  std::mutex admin_mu_;  // serializes management changes (taken before mu_)
  std::mutex mu_;
  std::map<std::string, std::unique_ptr<Entity>> entities_;  // by lower-case path
  std::vector<std::unique_ptr<Entity>> graveyard_;           // deleted entities (callbacks may still point at them)
  int64_t next_id_ = 1;
  std::unordered_map<std::string, LockRef> locks_;
  std::multimap<int64_t, std::string> lock_expiry_;
  std::unordered_map<std::string, SessionRef> session_locks_;
  std::multimap<int64_t, std::string> session_expiry_;
  std::multimap<int64_t, TimerRef> timers_;     // scheduled activation and TTL expiry of main-queue messages
  std::vector<std::function<void()>> pending_;  // writes queued under mu_, started after it
  std::set<std::string> lost_session_tokens_;   // message locks that ended with their session lock
  uint64_t waiter_ids_ = 0;

  std::mutex inflight_mu_;
  std::condition_variable inflight_cv_;
  int64_t inflight_ = 0;  // writes queued in the store and not yet completed
  std::mutex tick_mu_;
  std::condition_variable tick_cv_;
  bool stopping_ = false;
  std::thread ticker_;
};

Result<std::shared_ptr<BrokerImpl::SendPlan>> BrokerImpl::PrepareSend(const std::string& path,
                                                                      std::vector<OutgoingMessage> messages,
                                                                      std::optional<Timestamp> at) {
  auto plan = std::make_shared<SendPlan>();
  auto* inserts = &plan->inserts;
  auto* results = &plan->results;
  auto* dedup_added = &plan->dedup_added;
  results->assign(messages.size(), 0);
  {
    std::unique_lock lock(mu_);
    Entity* e = Find(path);
    if (!e || e->kind == EntityKind::kSubscription) return Refuse(lock, EntityNotFound(path));
    if (e->props.status == "Disabled" || e->props.status == "SendDisabled")
      return Refuse(lock, Err(errc::kEntityDisabled, "The entity '" + e->path + "' is disabled for sending.",
                              Code::kFailedPrecondition));
    const int64_t now = clock_.Now().ms;
    e->accessed = now;
    int64_t batch_bytes = 0;
    for (size_t i = 0; i < messages.size(); ++i) {
      OutgoingMessage& m = messages[i];
      MessageProperties& p = m.properties;
      if (p.message_id && (p.message_id->empty() || p.message_id->size() > 128))
        return Refuse(lock, Err(errc::kBadRequest, "A MessageId has 1–128 characters."));
      if (p.session_id && p.session_id->size() > 128)
        return Refuse(lock, Err(errc::kBadRequest, "A SessionId has at most 128 characters."));
      if (!p.message_id) p.message_id = GuidGenerator::NewRandom().ToString();
      if (at) p.scheduled_enqueue_time = *at;
      int64_t size = MessageSize(p, m.body);
      if (size > e->props.max_message_size_in_kilobytes * 1024)
        return Refuse(lock, Err(errc::kMessageSizeExceeded,
                                "The message of " + std::to_string(size) + " bytes is larger than the limit of " +
                                    std::to_string(e->props.max_message_size_in_kilobytes * 1024) + " bytes.",
                                Code::kPayloadTooLarge));
      batch_bytes += size;
      // Duplicate detection, at the entity the message was sent to.
      if (e->props.requires_duplicate_detection) {
        auto d = e->dedup.find(*p.message_id);
        if (d != e->dedup.end() && d->second > now) continue;  // accepted and dropped
        int64_t exp = now + e->props.duplicate_detection_history_time_window_ms;
        e->dedup[*p.message_id] = exp;
        e->dedup_order.emplace_back(exp, *p.message_id);
        dedup_added->emplace_back(e, *p.message_id);
      }
      auto body = std::make_shared<const std::string>(std::move(m.body));
      // Route: a queue (possibly forwarding) or a topic's subscriptions (each possibly forwarding).
      std::vector<std::pair<Entity*, MessageProperties>> targets;
      if (e->kind == EntityKind::kTopic) {
        for (Entity* s : e->subs)
          for (auto& copy : s->rules ? s->rules->FanOut(p) : std::vector<MessageProperties>{p})
            targets.emplace_back(s, std::move(copy));
      } else {
        targets.emplace_back(e, p);
      }
      bool reported = false;
      for (auto& [t, props] : targets) {
        Entity* dest = t;
        Entity* forwarder = nullptr;  // the last entity that forwarded the message
        SubQueue sub = SubQueue::kNone;
        int hops = 0;
        while (!dest->props.forward_to.empty()) {
          Entity* next = Find(dest->props.forward_to);
          if (!next || next->props.status == "Disabled" || next->props.status == "SendDisabled") {
            props.application["DeadLetterReason"] = PropertyValue{std::string("ForwardingDestinationUnavailable")};
            props.application["DeadLetterErrorDescription"] =
                PropertyValue{"The forwarding destination '" + dest->props.forward_to + "' is not available."};
            sub = SubQueue::kTransferDeadLetter;
            break;
          }
          if (++hops > kMaxHops) {
            props.application["DeadLetterReason"] = PropertyValue{std::string("MaxTransferHopCountExceeded")};
            props.application["DeadLetterErrorDescription"] =
                PropertyValue{"The message exceeded the maximum of " + std::to_string(kMaxHops) + " forwarding hops."};
            sub = SubQueue::kTransferDeadLetter;
            break;
          }
          forwarder = dest;
          dest = next;
          if (dest->kind == EntityKind::kTopic) break;  // a topic forwards to its subscriptions below
        }
        std::vector<std::pair<Entity*, MessageProperties>> finals;
        if (sub == SubQueue::kNone && dest->kind == EntityKind::kTopic) {
          for (Entity* s : dest->subs)
            for (auto& copy : s->rules ? s->rules->FanOut(props) : std::vector<MessageProperties>{props})
              finals.emplace_back(s, std::move(copy));
        } else {
          finals.emplace_back(dest, props);
        }
        for (auto& [f, fp] : finals) {
          if (sub == SubQueue::kNone && f->props.requires_session && !fp.session_id) {
            if (f->kind == EntityKind::kQueue)
              return Refuse(lock, Err(errc::kBadRequest, "The entity '" + f->path +
                                                             "' requires sessions: every message needs a SessionId."));
            // A subscription dead-letters it.
            fp.application["DeadLetterReason"] = PropertyValue{std::string("SessionIdIsMissing")};
            fp.application["DeadLetterErrorDescription"] = PropertyValue{std::string("Session id is null")};
            inserts->push_back(Insert{f, SubQueue::kDeadLetter, fp, body, size, -1, false});
            continue;
          }
          int64_t quota = f->props.max_size_in_megabytes * 1024 * 1024;
          if (sub == SubQueue::kNone && forwarder &&
              f->q[0].bytes + f->q[1].bytes + f->q[2].bytes + batch_bytes > quota) {
            // A full forwarding destination: the forwarder's transfer dead-letter queue keeps it.
            fp.application["DeadLetterReason"] = PropertyValue{std::string("QuotaExceeded")};
            fp.application["DeadLetterErrorDescription"] =
                PropertyValue{"The forwarding destination '" + f->path + "' has reached its maximum size."};
            inserts->push_back(Insert{forwarder, SubQueue::kTransferDeadLetter, fp, body, size,
                                      reported ? -1 : static_cast<int>(i), false});
            reported = true;  // the send itself succeeded
            continue;
          }
          if (f->q[0].bytes + f->q[1].bytes + f->q[2].bytes + batch_bytes > quota)
            return Refuse(lock, Err(errc::kQuotaExceeded,
                                    "The messaging entity '" + f->path + "' has reached its maximum size of " +
                                        std::to_string(f->props.max_size_in_megabytes) + " MB.",
                                    Code::kResourceExhausted));
          bool scheduled = fp.scheduled_enqueue_time && fp.scheduled_enqueue_time->ms > now;
          int idx = -1;
          if (!reported && (f == e || e->kind != EntityKind::kQueue || true)) {
            idx = static_cast<int>(i);
            reported = true;
          }
          inserts->push_back(Insert{f, sub, fp, body, size, idx, scheduled});
        }
      }
      if (!reported) (*results)[i] = 0;
      ++e->sent;
    }
  }
  plan->now = clock_.Now().ms;
  plan->rows.resize(inserts->size());
  return plan;
}

Status BrokerImpl::StoreSend(SendPlan& plan, storage::Connection& c) {
  auto* inserts = &plan.inserts;
  auto* rows = &plan.rows;
  auto* results = &plan.results;
  auto* dedup_added = &plan.dedup_added;
  const int64_t now = plan.now;

  std::set<Entity*> touched;
  {
    std::lock_guard lock(mu_);
    for (size_t i = 0; i < inserts->size(); ++i) {
      Insert& in = (*inserts)[i];
      Msg& m = (*rows)[i];
      m.seq = in.e->next_seq++;
      touched.insert(in.e);
      if (in.result_index >= 0) (*results)[in.result_index] = m.seq;
    }
  }
  for (size_t i = 0; i < inserts->size(); ++i) {
    Insert& in = (*inserts)[i];
    Msg& m = (*rows)[i];
    m.state = in.scheduled ? MessageState::kScheduled : MessageState::kActive;
    // Only entities that require sessions group messages by session id; elsewhere it is a
    // plain property.
    m.session = in.e->props.requires_session && in.sub == SubQueue::kNone ? in.props.session_id.value_or("") : "";
    m.enqueued = now;
    m.visible_at = in.scheduled ? in.props.scheduled_enqueue_time->ms : 0;
    int64_t ttl = in.e->props.default_message_ttl_ms;
    if (in.props.time_to_live_ms && *in.props.time_to_live_ms > 0) ttl = std::min(ttl, *in.props.time_to_live_ms);
    int64_t start = in.scheduled ? m.visible_at : now;
    m.expires_at = in.sub == SubQueue::kNone ? SatAdd(start, ttl) : kNever;
    m.size = in.size;
    in.props.sequence_number = m.seq;
    std::vector<storage::SqlValue> v = {in.e->id,
                                        static_cast<int64_t>(in.sub),
                                        m.seq,
                                        static_cast<int64_t>(m.state),
                                        m.session.empty() ? storage::SqlValue() : storage::SqlValue(m.session),
                                        now,
                                        in.scheduled ? storage::SqlValue(m.visible_at) : storage::SqlValue(),
                                        m.expires_at == kNever ? storage::SqlValue() : storage::SqlValue(m.expires_at),
                                        m.size,
                                        EncodeProperties(in.props),
                                        storage::Blob{*in.body}};
    RETURN_IF_ERROR(c.Exec("INSERT INTO _bus_message (entity, queue, seq, state, session, enqueued, visible_at, "
                           "expires_at, delivery_count, size, props, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, ?, "
                           "?, ?)",
                           v)
                        .status());
  }
  for (Entity* t : touched) {
    int64_t next;
    {
      std::lock_guard lock(mu_);
      next = t->next_seq;
    }
    std::vector<storage::SqlValue> v = {next, t->id};
    RETURN_IF_ERROR(c.Exec("UPDATE _bus_entity SET next_seq = ? WHERE id = ?", v).status());
  }
  for (auto& [e, id] : *dedup_added) {
    std::vector<storage::SqlValue> v = {e->id, id, now + e->props.duplicate_detection_history_time_window_ms};
    RETURN_IF_ERROR(c.Exec("INSERT INTO _bus_dedup (entity, message_id, expires) VALUES (?, ?, ?) ON CONFLICT "
                           "(entity, message_id) DO UPDATE SET expires = excluded.expires",
                           v)
                        .status());
  }
  return Status::Ok();
}

std::vector<std::function<void()>> BrokerImpl::FinishSend(SendPlan& plan, const Status& s) {
  auto* inserts = &plan.inserts;
  auto* rows = &plan.rows;
  auto* dedup_added = &plan.dedup_added;
  const int64_t now = plan.now;

  std::vector<std::function<void()>> after;
  {
    std::lock_guard lock(mu_);
    if (!s.ok()) {
      std::set<Entity*> touched;
      for (auto& in : *inserts) touched.insert(in.e);
      for (Entity* t : touched) ReloadSequence(*t);
      for (auto& [e, id] : *dedup_added) e->dedup.erase(id);
    } else {
      std::set<Entity*> touched;
      for (size_t i = 0; i < inserts->size(); ++i) {
        Insert& in = (*inserts)[i];
        AddToIndex(*in.e, in.sub, std::move((*rows)[i]), now);
        touched.insert(in.e);
      }
      for (Entity* t : touched) {
        auto w = Wake(*t);
        after.insert(after.end(), w.begin(), w.end());
      }
    }
  }
  return after;
}

void BrokerImpl::SendImpl(const std::string& path, std::vector<OutgoingMessage> messages, std::optional<Timestamp> at,
                          Done<std::vector<int64_t>> done) {
  auto prepared = PrepareSend(path, std::move(messages), at);
  if (!prepared.ok()) return done(prepared.status());
  std::shared_ptr<SendPlan> plan = std::move(prepared).value();
  if (plan->inserts.empty()) return done(std::move(plan->results));
  Write([this, plan](storage::Connection& c) { return StoreSend(*plan, c); },
        [this, plan, done](Status s) {
          for (auto& f : FinishSend(*plan, s)) f();
          if (!s.ok()) return done(s);
          done(std::move(plan->results));
        });
}

Result<std::function<void(Status)>> BrokerImpl::SendWithin(storage::Connection& c, const std::string& path,
                                                           std::vector<OutgoingMessage> messages) {
  ASSIGN_OR_RETURN(std::shared_ptr<SendPlan> plan, PrepareSend(path, std::move(messages), std::nullopt));
  if (plan->inserts.empty()) return std::function<void(Status)>([](Status) {});
  Status stored = StoreSend(*plan, c);
  if (!stored.ok()) {
    for (auto& f : FinishSend(*plan, stored)) f();
    return stored;
  }
  return std::function<void(Status)>([this, plan](Status s) {
    for (auto& f : FinishSend(*plan, s)) f();
  });
}

Status BrokerImpl::LoadEmulatorConfig(std::string_view json) {
  ASSIGN_OR_RETURN(Json doc, ParseJson(json));
  const Json* user = doc.Find("UserConfig");
  const Json* namespaces = user ? user->Find("Namespaces") : nullptr;
  if (!namespaces || !namespaces->is_array())
    return Err(errc::kBadRequest, "Config.json needs UserConfig.Namespaces (an array).");
  for (const Json& ns : namespaces->as_array()) {
    auto apply = [&](const Json* props, EntityProperties& p) -> Status {
      if (!props) return Status::Ok();
      return ApplyEmulatorProperties(*props, p);
    };
    if (const Json* queues = ns.Find("Queues"); queues && queues->is_array()) {
      for (const Json& q : queues->as_array()) {
        const Json* name = q.Find("Name");
        if (!name || !name->is_string()) return Err(errc::kBadRequest, "A queue in Config.json needs a Name.");
        EntityProperties p;
        RETURN_IF_ERROR(apply(q.Find("Properties"), p));
        if (GetEntity(name->as_string()).ok()) continue;
        RETURN_IF_ERROR(CreateQueue(name->as_string(), p));
      }
    }
    // Topics after queues; forwarding destinations may name either, so create entities without
    // forwarding first would be needed for cycles — Config.json lists them in dependency order.
    if (const Json* topics = ns.Find("Topics"); topics && topics->is_array()) {
      for (const Json& t : topics->as_array()) {
        const Json* name = t.Find("Name");
        if (!name || !name->is_string()) return Err(errc::kBadRequest, "A topic in Config.json needs a Name.");
        EntityProperties p;
        RETURN_IF_ERROR(apply(t.Find("Properties"), p));
        if (!GetEntity(name->as_string()).ok()) RETURN_IF_ERROR(CreateTopic(name->as_string(), p));
        if (const Json* subs = t.Find("Subscriptions"); subs && subs->is_array()) {
          for (const Json& s : subs->as_array()) {
            const Json* sname = s.Find("Name");
            if (!sname || !sname->is_string())
              return Err(errc::kBadRequest, "A subscription in Config.json needs a Name.");
            EntityProperties sp;
            RETURN_IF_ERROR(apply(s.Find("Properties"), sp));
            std::string rules;
            if (const Json* r = s.Find("Rules"); r && r->is_array()) rules = r->Dump();
            if (GetEntity(name->as_string() + "/Subscriptions/" + sname->as_string()).ok()) continue;
            RETURN_IF_ERROR(CreateSubscription(name->as_string(), sname->as_string(), sp, rules));
          }
        }
      }
    }
  }
  return Status::Ok();
}

Result<std::unique_ptr<Broker>> Broker::Open(storage::Engine& engine, const Clock& clock, BrokerOptions options) {
  auto b = std::make_unique<BrokerImpl>(engine, clock, options);
  RETURN_IF_ERROR(b->Load());
  return std::unique_ptr<Broker>(std::move(b));
}

}  // namespace tributary::bus
