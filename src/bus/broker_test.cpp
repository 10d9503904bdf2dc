// Tier-1 acceptance tests of the broker (reference/service-bus.md §11, items 1–17), the session
// ordering test of issue 5, and the emulator Config.json loader. Time comes from a manual clock;
// time-driven state moves only on Broker::Tick().

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <future>
#include <latch>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include "tributary/base/time.h"
#include "tributary/bus/broker.h"
#include "tributary/storage/engine.h"

namespace tributary::bus {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr int64_t kStart = 1'700'000'000'000;  // 2023-11-14T22:13:20Z

// --- helpers ----------------------------------------------------------------------------------

// Starts an asynchronous broker call and returns a future of its result. A second call of the
// callback is a broker bug: it is counted, not allowed to throw.
std::atomic<int> g_done_called_twice{0};

template <typename T, typename F>
std::future<Result<T>> Start(F&& start) {
  auto promise = std::make_shared<std::promise<Result<T>>>();
  auto called = std::make_shared<std::atomic<bool>>(false);
  auto future = promise->get_future();
  start(Done<T>([promise, called](Result<T> r) {
    if (called->exchange(true)) {
      g_done_called_twice++;
      return;
    }
    promise->set_value(std::move(r));
  }));
  return future;
}

template <typename T>
Result<T> Wait(std::future<Result<T>>& f, std::chrono::milliseconds limit = 30s) {
  if (f.wait_for(limit) != std::future_status::ready) {
    return Status(Code::kInternal, "the broker did not call back within the time limit");
  }
  return f.get();
}

template <typename T, typename F>
Result<T> Await(F&& start) {
  auto f = Start<T>(std::forward<F>(start));
  return Wait(f);
}

template <typename F>
bool IsReady(const std::future<F>& f, std::chrono::milliseconds wait = 100ms) {
  return f.wait_for(wait) == std::future_status::ready;
}

::testing::AssertionResult IsOk(const Status& s) {
  if (s.ok()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << s.ToString();
}
template <typename T>
::testing::AssertionResult IsOk(const Result<T>& r) {
  return IsOk(r.status());
}

std::string Hex(uint32_t v) {
  char buf[16];
  snprintf(buf, sizeof buf, "0x%08x", v);
  return buf;
}

// The call failed with the broker error code `code` (errc::…).
::testing::AssertionResult Fails(const Status& s, uint32_t code) {
  if (s.ok()) return ::testing::AssertionFailure() << "succeeded; expected error " << Hex(code);
  if (s.error_code() != code) {
    return ::testing::AssertionFailure() << "failed with " << Hex(s.error_code()) << " (" << s.ToString()
                                         << "); expected " << Hex(code);
  }
  return ::testing::AssertionSuccess();
}
template <typename T>
::testing::AssertionResult Fails(const Result<T>& r, uint32_t code) {
  return Fails(r.status(), code);
}

PropertyValue Str(std::string s) { return PropertyValue{.v = std::move(s)}; }
PropertyValue Int(int64_t i) { return PropertyValue{.v = i}; }
PropertyValue Bool(bool b) { return PropertyValue{.v = b}; }

OutgoingMessage Msg(std::string body, std::optional<std::string> session = std::nullopt) {
  OutgoingMessage m;
  m.body = std::move(body);
  m.properties.session_id = std::move(session);
  return m;
}

OutgoingMessage WithId(std::string body, std::string id) {
  OutgoingMessage m = Msg(std::move(body));
  m.properties.message_id = std::move(id);
  return m;
}

// The string value of application property `name`, or "<absent>" / "<not a string>".
std::string AppStr(const ReceivedMessage& m, const std::string& name) {
  auto it = m.properties.application.find(name);
  if (it == m.properties.application.end()) return "<absent>";
  if (auto* s = std::get_if<std::string>(&it->second.v)) return *s;
  return "<not a string>";
}

std::vector<std::string> Bodies(const std::vector<ReceivedMessage>& ms) {
  std::vector<std::string> out;
  for (const auto& m : ms) out.push_back(m.body);
  return out;
}

std::vector<int64_t> Seqs(const std::vector<ReceivedMessage>& ms) {
  std::vector<int64_t> out;
  for (const auto& m : ms) out.push_back(m.properties.sequence_number);
  return out;
}

EntityProperties Props(std::function<void(EntityProperties&)> edit = {}) {
  EntityProperties p;
  if (edit) edit(p);
  return p;
}

// A store in a temp dir and a broker on it; reopening both simulates a restart.
class BrokerTest : public ::testing::Test {
 public:
  void SetUp() override {
    g_done_called_twice = 0;
    dir_ = fs::temp_directory_path() / ("trib_bus_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    ASSERT_NO_FATAL_FAILURE(OpenAll(clock_));
  }
  void TearDown() override {
    CloseAll();
    fs::remove_all(dir_);
    EXPECT_EQ(g_done_called_twice.load(), 0) << "a Done callback was called twice";
  }
  void OpenAll(const Clock& clock) {
    auto e = storage::OpenSqlite({.path = (dir_ / "bus.db").string(), .read_connections = 4});
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    engine_ = std::move(e).value();
    // No background ticker: time-driven state moves only when a test calls Tick().
    auto b = Broker::Open(*engine_, clock, BrokerOptions{.tick_interval = 0ms});
    ASSERT_TRUE(b.ok()) << b.status().ToString();
    broker_ = std::move(b).value();
  }
  // The store is drained before the broker is destroyed: completions of queued jobs call into it.
  void CloseAll() {
    if (broker_) broker_->Shutdown();
    if (engine_) engine_->Shutdown();
    broker_.reset();
    engine_.reset();
  }
  // Closes the broker and the store and opens both again on the same files.
  void Reopen() {
    CloseAll();
    ASSERT_NO_FATAL_FAILURE(OpenAll(clock_));
  }
  // Tick() starts the writes of what it changes (a lock expiry's count, an activation, a TTL
  // move) without waiting for them; Settle() waits until the store has run those and the jobs
  // their completions queue (empty write jobs run in order behind them).
  void Settle() {
    for (int i = 0; i < 3; ++i)
      ASSERT_TRUE(IsOk(engine_->WriteSync([](storage::Connection&) { return Status::Ok(); })));
  }
  void Tick() {
    broker_->Tick();
    Settle();
  }
  void Advance(int64_t ms) {
    clock_.Advance(ms);
    Tick();
  }
  int64_t Now() const { return clock_.Now().ms; }

  // --- synchronous wrappers ---
  Result<std::vector<int64_t>> Send(const std::string& path, std::vector<OutgoingMessage> ms) {
    return Await<std::vector<int64_t>>(
        [&](Done<std::vector<int64_t>> d) { broker_->Send(path, std::move(ms), std::move(d)); });
  }
  Result<int64_t> SendOne(const std::string& path, OutgoingMessage m) {
    std::vector<OutgoingMessage> v;
    v.push_back(std::move(m));
    auto r = Send(path, std::move(v));
    if (!r.ok()) return r.status();
    if (r->size() != 1) return Status(Code::kInternal, "Send answered " + std::to_string(r->size()) + " numbers");
    return (*r)[0];
  }
  Result<std::vector<int64_t>> Schedule(const std::string& path, std::vector<OutgoingMessage> ms, int64_t at) {
    return Await<std::vector<int64_t>>(
        [&](Done<std::vector<int64_t>> d) { broker_->Schedule(path, std::move(ms), Timestamp{at}, std::move(d)); });
  }
  Result<bool> Cancel(const std::string& path, std::vector<int64_t> seqs) {
    return Await<bool>([&](Done<bool> d) { broker_->CancelScheduled(path, std::move(seqs), std::move(d)); });
  }
  Result<std::vector<ReceivedMessage>> Receive(const std::string& path, int n = 1,
                                               ReceiveMode mode = ReceiveMode::kPeekLock,
                                               SubQueue sub = SubQueue::kNone) {
    ReceiveOptions o{.mode = mode, .max_messages = n, .timeout = 0ms};
    return Await<std::vector<ReceivedMessage>>(
        [&](Done<std::vector<ReceivedMessage>> d) { broker_->Receive(path, sub, o, std::move(d)); });
  }
  // Receives everything (receive-and-delete) from a (sub-)queue.
  std::vector<ReceivedMessage> Drain(const std::string& path, SubQueue sub = SubQueue::kNone) {
    std::vector<ReceivedMessage> all;
    for (int i = 0; i < 100; ++i) {
      auto r = Receive(path, 100, ReceiveMode::kReceiveAndDelete, sub);
      EXPECT_TRUE(IsOk(r)) << path;
      if (!r.ok() || r->empty()) break;
      for (auto& m : *r) all.push_back(std::move(m));
    }
    return all;
  }
  Result<std::vector<ReceivedMessage>> ReceiveDeferred(const std::string& path, std::vector<int64_t> seqs,
                                                       ReceiveMode mode = ReceiveMode::kPeekLock) {
    return Await<std::vector<ReceivedMessage>>([&](Done<std::vector<ReceivedMessage>> d) {
      broker_->ReceiveDeferred(path, SubQueue::kNone, std::move(seqs), mode, std::move(d));
    });
  }
  std::vector<ReceivedMessage> PeekAll(const std::string& path, SubQueue sub = SubQueue::kNone) {
    std::vector<ReceivedMessage> all;
    int64_t from = 1;
    for (int i = 0; i < 100; ++i) {
      auto r = broker_->Peek(path, sub, from, 250);
      EXPECT_TRUE(IsOk(r)) << path;
      if (!r.ok() || r->empty()) break;
      from = r->back().properties.sequence_number + 1;
      for (auto& m : *r) all.push_back(std::move(m));
    }
    return all;
  }
  Result<bool> Complete(const std::string& path, const std::string& token, SubQueue sub = SubQueue::kNone) {
    return Await<bool>([&](Done<bool> d) { broker_->Complete(path, sub, token, std::move(d)); });
  }
  Result<bool> Abandon(const std::string& path, const std::string& token,
                       std::map<std::string, PropertyValue> props = {}, SubQueue sub = SubQueue::kNone) {
    return Await<bool>([&](Done<bool> d) { broker_->Abandon(path, sub, token, std::move(props), std::move(d)); });
  }
  Result<bool> Defer(const std::string& path, const std::string& token,
                     std::map<std::string, PropertyValue> props = {}) {
    return Await<bool>(
        [&](Done<bool> d) { broker_->Defer(path, SubQueue::kNone, token, std::move(props), std::move(d)); });
  }
  Result<bool> DeadLetter(const std::string& path, const std::string& token, std::string reason,
                          std::string description, std::map<std::string, PropertyValue> props = {},
                          SubQueue sub = SubQueue::kNone) {
    return Await<bool>([&](Done<bool> d) {
      broker_->DeadLetter(path, sub, token, std::move(reason), std::move(description), std::move(props), std::move(d));
    });
  }
  std::future<Result<SessionLock>> StartAccept(const std::string& path, std::optional<std::string> id,
                                               std::chrono::milliseconds timeout) {
    return Start<SessionLock>(
        [&](Done<SessionLock> d) { broker_->AcceptSession(path, std::move(id), timeout, std::move(d)); });
  }
  // Accepts a session; a zero timeout must answer at once (a Tick at the same instant is allowed).
  Result<SessionLock> Accept(const std::string& path, std::optional<std::string> id,
                             std::chrono::milliseconds timeout = 0ms) {
    auto f = StartAccept(path, std::move(id), timeout);
    if (!IsReady(f, 50ms)) broker_->Tick();
    return Wait(f);
  }
  Result<std::vector<ReceivedMessage>> ReceiveSession(const std::string& path, const SessionLock& s, int n = 1) {
    ReceiveOptions o{.mode = ReceiveMode::kPeekLock, .max_messages = n, .timeout = 0ms};
    return Await<std::vector<ReceivedMessage>>(
        [&](Done<std::vector<ReceivedMessage>> d) { broker_->ReceiveFromSession(path, s, o, std::move(d)); });
  }
  Result<bool> SetState(const std::string& path, const SessionLock& s, std::optional<std::string> state) {
    return Await<bool>([&](Done<bool> d) { broker_->SetSessionState(path, s, std::move(state), std::move(d)); });
  }

  fs::path dir_;
  ManualClock clock_{Timestamp{kStart}};
  std::unique_ptr<storage::Engine> engine_;
  std::unique_ptr<Broker> broker_;
};

// --- 1. sequence numbers, enqueued times, durability ------------------------------------------

TEST_F(BrokerTest, SequenceNumbersAreGapFreeAndSurviveReopen) {
  ASSERT_TRUE(IsOk(broker_->CreateQueue("q", Props())));
  // 1,000 single-message sends, 100 in flight at a time, the clock moving between rounds.
  std::set<std::string> sent_bodies;
  std::vector<int64_t> seqs;
  for (int round = 0; round < 10; ++round) {
    std::vector<std::future<Result<std::vector<int64_t>>>> inflight;
    for (int i = 0; i < 100; ++i) {
      std::string body = "m" + std::to_string(round * 100 + i);
      sent_bodies.insert(body);
      std::vector<OutgoingMessage> one;
      one.push_back(Msg(body));
      inflight.push_back(Start<std::vector<int64_t>>(
          [&](Done<std::vector<int64_t>> d) { broker_->Send("q", std::move(one), std::move(d)); }));
    }
    for (auto& f : inflight) {
      auto r = Wait(f);
      ASSERT_TRUE(IsOk(r));
      ASSERT_EQ(r->size(), 1u);
      seqs.push_back((*r)[0]);
    }
    clock_.Advance(7);
  }
  std::sort(seqs.begin(), seqs.end());
  std::vector<int64_t> expected(1000);
  for (int i = 0; i < 1000; ++i) expected[i] = i + 1;
  EXPECT_EQ(seqs, expected);

  // A peek answers at most 250 (BrokerOptions::max_peek).
  auto first = broker_->Peek("q", SubQueue::kNone, 1, 1000);
  ASSERT_TRUE(IsOk(first));
  EXPECT_EQ(first->size(), 250u);

  auto check_all = [&](const char* when) {
    auto all = PeekAll("q");
    ASSERT_EQ(all.size(), 1000u) << when;
    std::set<std::string> bodies;
    for (size_t i = 0; i < all.size(); ++i) {
      const auto& p = all[i].properties;
      EXPECT_EQ(p.sequence_number, static_cast<int64_t>(i + 1)) << when;
      if (i > 0) {
        EXPECT_GE(p.enqueued_time.ms, all[i - 1].properties.enqueued_time.ms) << when << " at " << i;
      }
      EXPECT_GE(p.enqueued_time.ms, kStart);
      EXPECT_EQ(p.state, MessageState::kActive);
      EXPECT_EQ(p.delivery_count, 0);
      // The broker assigns a message id when the sender gives none (§2.1).
      EXPECT_TRUE(p.message_id.has_value() && !p.message_id->empty()) << when << " at " << i;
      EXPECT_TRUE(all[i].lock_token.empty()) << "a peeked message carries no lock";
      bodies.insert(all[i].body);
    }
    EXPECT_EQ(bodies, sent_bodies) << when;
  };
  check_all("before reopen");
  EXPECT_EQ(broker_->GetEntity("q")->runtime.active, 1000);

  ASSERT_NO_FATAL_FAILURE(Reopen());
  check_all("after reopen");
  EXPECT_EQ(broker_->GetEntity("q")->runtime.active, 1000);
  auto next = SendOne("q", Msg("after"));
  ASSERT_TRUE(IsOk(next));
  EXPECT_EQ(*next, 1001);

  // Emptying the queue does not reset the counter, not even across a reopen.
  EXPECT_EQ(Drain("q").size(), 1001u);
  ASSERT_NO_FATAL_FAILURE(Reopen());
  next = SendOne("q", Msg("after empty"));
  ASSERT_TRUE(IsOk(next));
  EXPECT_EQ(*next, 1002);
}

TEST_F(BrokerTest, LocksHeldAtRestartAreGoneAndOldTokensAreLost) {
  ASSERT_TRUE(IsOk(broker_->CreateQueue("q", Props())));
  ASSERT_TRUE(IsOk(SendOne("q", Msg("a"))));
  auto r = Receive("q");
  ASSERT_TRUE(IsOk(r));
  ASSERT_EQ(r->size(), 1u);
  std::string token = (*r)[0].lock_token;
  ASSERT_NO_FATAL_FAILURE(Reopen());
  // No waiting for the lock duration: the message is available at once.
  auto again = Receive("q");
  ASSERT_TRUE(IsOk(again));
  ASSERT_EQ(again->size(), 1u);
  EXPECT_EQ((*again)[0].body, "a");
  EXPECT_LE((*again)[0].properties.delivery_count, 1);
  EXPECT_TRUE(Fails(Complete("q", token), errc::kMessageLockLost));
  EXPECT_TRUE(IsOk(Complete("q", (*again)[0].lock_token)));
}

// --- 2. peek-lock ---------------------------------------------------------------------------------

TEST_F(BrokerTest, PeekLockHidesTheMessageUntilCompletedAndCompleteAfterExpiryFails) {
  ASSERT_TRUE(IsOk(broker_->CreateQueue("q", Props([](auto& p) { p.lock_duration_ms = 30'000; }))));
  ASSERT_TRUE(IsOk(SendOne("q", Msg("one"))));

  auto r = Receive("q");
  ASSERT_TRUE(IsOk(r));
  ASSERT_EQ(r->size(), 1u);
  const ReceivedMessage m = (*r)[0];
  EXPECT_EQ(m.body, "one");
  EXPECT_FALSE(m.lock_token.empty());
  ASSERT_TRUE(m.locked_until.has_value());
  EXPECT_EQ(m.locked_until->ms, Now() + 30'000);
  EXPECT_EQ(m.properties.delivery_count, 0) << "the wire delivery count is 0 on the first delivery";

  // A second receiver sees nothing.
  auto second = Receive("q");
  ASSERT_TRUE(IsOk(second));
  EXPECT_TRUE(second->empty());
  EXPECT_EQ(broker_->GetEntity("q")->runtime.locked, 1);

  ASSERT_TRUE(IsOk(Complete("q", m.lock_token)));
  EXPECT_TRUE(PeekAll("q").empty());
  EXPECT_TRUE(Fails(Complete("q", m.lock_token), errc::kMessageLockLost)) << "completing twice";
  EXPECT_TRUE(Fails(Complete("q", "00000000-0000-0000-0000-000000000001"), errc::kMessageLockLost));

  // Renewal extends the lock from now.
  ASSERT_TRUE(IsOk(SendOne("q", Msg("two"))));
  r = Receive("q");
  ASSERT_TRUE(IsOk(r));
  ASSERT_EQ(r->size(), 1u);
  const ReceivedMessage two = (*r)[0];
  Advance(20'000);
  auto renewed = broker_->RenewLock("q", SubQueue::kNone, two.lock_token);
  ASSERT_TRUE(IsOk(renewed));
  EXPECT_EQ(renewed->ms, Now() + 30'000);
  Advance(20'000);  // past the first lockedUntil, before the renewed one
  EXPECT_TRUE(IsOk(Complete("q", two.lock_token)));

  // Complete after expiry: MessageLockLost, and the message is available again with count 1.
  ASSERT_TRUE(IsOk(SendOne("q", Msg("three"))));
  r = Receive("q");
  ASSERT_TRUE(IsOk(r));
  ASSERT_EQ(r->size(), 1u);
  const ReceivedMessage three = (*r)[0];
  Advance(30'001);
  EXPECT_TRUE(Fails(Complete("q", three.lock_token), errc::kMessageLockLost));
  EXPECT_TRUE(Fails(broker_->RenewLock("q", SubQueue::kNone, three.lock_token), errc::kMessageLockLost));
  r = Receive("q");
  ASSERT_TRUE(IsOk(r));
  ASSERT_EQ(r->size(), 1u);
  EXPECT_EQ((*r)[0].body, "three");
  EXPECT_EQ((*r)[0].properties.delivery_count, 1);
  EXPECT_NE((*r)[0].lock_token, three.lock_token);
  EXPECT_TRUE(IsOk(Complete("q", (*r)[0].lock_token)));
}

TEST_F(BrokerTest, ReceiveAndDeleteRemovesAndLongPollingWaitsForASend) {
  ASSERT_TRUE(IsOk(broker_->CreateQueue("q", Props())));
  ASSERT_TRUE(IsOk(Send("q", {Msg("a"), Msg("b"), Msg("c")})));
  auto r = Receive("q", 2, ReceiveMode::kReceiveAndDelete);
  ASSERT_TRUE(IsOk(r));
  EXPECT_EQ(Bodies(*r), (std::vector<std::string>{"a", "b"}));
  for (const auto& m : *r) EXPECT_TRUE(m.lock_token.empty());
  EXPECT_EQ(Bodies(PeekAll("q")), (std::vector<std::string>{"c"}));
  EXPECT_EQ(Drain("q").size(), 1u);

  // A receive with a timeout waits for the next send.
  ReceiveOptions o{.mode = ReceiveMode::kPeekLock, .max_messages = 1, .timeout = 10'000ms};
  auto pending = Start<std::vector<ReceivedMessage>>(
      [&](Done<std::vector<ReceivedMessage>> d) { broker_->Receive("q", SubQueue::kNone, o, std::move(d)); });
  EXPECT_FALSE(IsReady(pending));
  ASSERT_TRUE(IsOk(SendOne("q", Msg("late"))));
  Tick();
  auto got = Wait(pending, 5s);
  ASSERT_TRUE(IsOk(got));
  ASSERT_EQ(got->size(), 1u);
  EXPECT_EQ((*got)[0].body, "late");
  EXPECT_FALSE((*got)[0].lock_token.empty());

  // With nothing arriving it answers empty once the timeout has passed.
  pending = Start<std::vector<ReceivedMessage>>(
      [&](Done<std::vector<ReceivedMessage>> d) { broker_->Receive("q", SubQueue::kNone, o, std::move(d)); });
  EXPECT_FALSE(IsReady(pending));
  Advance(10'000);
  got = Wait(pending, 5s);
  ASSERT_TRUE(IsOk(got));
  EXPECT_TRUE(got->empty());
}

// --- 3. abandon ----------------------------------------------------------------------------------

TEST_F(BrokerTest, AbandonMergesPropertiesAndCountsDeliveriesAsDoesLockExpiry) {
  ASSERT_TRUE(IsOk(broker_->CreateQueue("q", Props([](auto& p) { p.lock_duration_ms = 10'000; }))));
  OutgoingMessage out = Msg("payload");
  out.properties.application["a"] = Str("1");
  out.properties.application["n"] = Int(5);
  auto seq = SendOne("q", out);
  ASSERT_TRUE(IsOk(seq));

  auto r = Receive("q");
  ASSERT_TRUE(IsOk(r));
  ASSERT_EQ(r->size(), 1u);
  const std::string first_token = (*r)[0].lock_token;
  EXPECT_EQ((*r)[0].properties.delivery_count, 0);
  ASSERT_TRUE(IsOk(Abandon("q", first_token, {{"n", Int(6)}, {"b", Bool(true)}})));
  EXPECT_TRUE(Fails(Complete("q", first_token), errc::kMessageLockLost)) << "abandon ends the lock";

  r = Receive("q");
  ASSERT_TRUE(IsOk(r));
  ASSERT_EQ(r->size(), 1u);
  ReceivedMessage m = (*r)[0];
  EXPECT_EQ(m.properties.sequence_number, *seq);
  EXPECT_EQ(m.body, "payload");
  EXPECT_EQ(m.properties.delivery_count, 1);
  EXPECT_EQ(m.properties.application["a"], Str("1"));
  EXPECT_EQ(m.properties.application["n"], Int(6));
  EXPECT_EQ(m.properties.application["b"], Bool(true));

  // Lock expiry counts like an abandon.
  Advance(10'001);
  r = Receive("q");
  ASSERT_TRUE(IsOk(r));
  ASSERT_EQ(r->size(), 1u);
  EXPECT_EQ((*r)[0].properties.sequence_number, *seq);
  EXPECT_EQ((*r)[0].properties.delivery_count, 2);
  EXPECT_EQ((*r)[0].properties.application.at("n"), Int(6)) << "merged properties are kept";
  EXPECT_TRUE(IsOk(Complete("q", (*r)[0].lock_token)));
}

// --- 4. maxDeliveryCount --------------------------------------------------------------------------

TEST_F(BrokerTest, ThirdAbandonWithMaxDeliveryCountThreeDeadLetters) {
  ASSERT_TRUE(IsOk(broker_->CreateQueue("q", Props([](auto& p) { p.max_delivery_count = 3; }))));
  OutgoingMessage out = WithId("poison", "mid-1");
  auto seq = SendOne("q", out);
  ASSERT_TRUE(IsOk(seq));
  for (int i = 0; i < 3; ++i) {
    auto r = Receive("q");
    ASSERT_TRUE(IsOk(r));
    ASSERT_EQ(r->size(), 1u) << "delivery " << i;
    EXPECT_EQ((*r)[0].properties.delivery_count, i);
    ASSERT_TRUE(IsOk(Abandon("q", (*r)[0].lock_token)));
  }
  auto main = Receive("q");
  ASSERT_TRUE(IsOk(main));
  EXPECT_TRUE(main->empty()) << "no fourth delivery";
  EXPECT_TRUE(PeekAll("q").empty());

  auto dlq = Receive("q", 10, ReceiveMode::kPeekLock, SubQueue::kDeadLetter);
  ASSERT_TRUE(IsOk(dlq));
  ASSERT_EQ(dlq->size(), 1u);
  const ReceivedMessage& d = (*dlq)[0];
  EXPECT_EQ(d.body, "poison");
  EXPECT_EQ(d.properties.message_id, std::optional<std::string>("mid-1"));
  EXPECT_EQ(AppStr(d, "DeadLetterReason"), "MaxDeliveryCountExceeded");
  EXPECT_EQ(AppStr(d, "DeadLetterErrorDescription"), "Message could not be consumed after 3 delivery attempts.");
  EXPECT_EQ(d.properties.delivery_count, 3) << "the count is kept on the dead-lettered message";
  auto info = broker_->GetEntity("q");
  ASSERT_TRUE(IsOk(info));
  EXPECT_EQ(info->runtime.active, 0);
  EXPECT_EQ(info->runtime.dead_lettered, 1);
  // The DLQ is a normal peek-lock queue: complete removes the message.
  EXPECT_TRUE(IsOk(Complete("q", d.lock_token, SubQueue::kDeadLetter)));
  EXPECT_TRUE(PeekAll("q", SubQueue::kDeadLetter).empty());
  // The sub-queue path form names the same queue.
  EXPECT_EQ(SplitSubQueue("q/$DeadLetterQueue"), std::make_pair(std::string("q"), SubQueue::kDeadLetter));
  auto split = SplitSubQueue("t/subscriptions/s/$Transfer/$DeadLetterQueue");
  EXPECT_EQ(split.second, SubQueue::kTransferDeadLetter);
  EXPECT_EQ(split.first.size(), std::string("t/Subscriptions/s").size()) << split.first;
}

// --- 5. TTL ----------------------------------------------------------------------------------------

TEST_F(BrokerTest, TimeToLiveExpiresDropsOrDeadLettersAndIsClampedByTheEntityDefault) {
  ASSERT_TRUE(IsOk(broker_->CreateQueue("drop", Props([](auto& p) { p.default_message_ttl_ms = 10'000; }))));
  ASSERT_TRUE(IsOk(broker_->CreateQueue("dl", Props([](auto& p) {
                                          p.default_message_ttl_ms = 10'000;
                                          p.dead_lettering_on_message_expiration = true;
                                        }))));
  OutgoingMessage short_lived = Msg("1s");
  short_lived.properties.time_to_live_ms = 1'000;
  const int64_t t0 = Now();
  ASSERT_TRUE(IsOk(SendOne("drop", short_lived)));
  ASSERT_TRUE(IsOk(SendOne("dl", short_lived)));
  auto peeked = PeekAll("dl");
  ASSERT_EQ(peeked.size(), 1u);
  ASSERT_TRUE(peeked[0].properties.expires_at.has_value());
  EXPECT_EQ(peeked[0].properties.expires_at->ms, t0 + 1'000);

  Advance(1'001);
  auto r = Receive("drop");
  ASSERT_TRUE(IsOk(r));
  EXPECT_TRUE(r->empty()) << "expired";
  EXPECT_TRUE(PeekAll("drop", SubQueue::kDeadLetter).empty()) << "dropped without deadLetteringOnMessageExpiration";
  r = Receive("dl");
  ASSERT_TRUE(IsOk(r));
  EXPECT_TRUE(r->empty());
  auto dlq = Drain("dl", SubQueue::kDeadLetter);
  ASSERT_EQ(dlq.size(), 1u);
  EXPECT_EQ(dlq[0].body, "1s");
  EXPECT_EQ(AppStr(dlq[0], "DeadLetterReason"), "TTLExpiredException");
  EXPECT_EQ(AppStr(dlq[0], "DeadLetterErrorDescription"), "The message expired and was dead lettered.");

  // A TTL above the entity default is lowered to it; no TTL means the default.
  OutgoingMessage long_lived = Msg("60s");
  long_lived.properties.time_to_live_ms = 60'000;
  const int64_t t1 = Now();
  ASSERT_TRUE(IsOk(Send("dl", {long_lived, Msg("default")})));
  peeked = PeekAll("dl");
  ASSERT_EQ(peeked.size(), 2u);
  for (const auto& m : peeked) {
    ASSERT_TRUE(m.properties.expires_at.has_value()) << m.body;
    EXPECT_EQ(m.properties.expires_at->ms, t1 + 10'000) << m.body;
  }
  Advance(9'999);
  EXPECT_EQ(PeekAll("dl").size(), 2u);
  Advance(2);
  r = Receive("dl");
  ASSERT_TRUE(IsOk(r));
  EXPECT_TRUE(r->empty());
  EXPECT_EQ(Drain("dl", SubQueue::kDeadLetter).size(), 2u);

  // A locked message does not expire under its lock: complete still wins; an abandon after the
  // expiry time dead-letters it at once.
  ASSERT_TRUE(IsOk(Send("dl", {short_lived, short_lived})));
  r = Receive("dl", 2);
  ASSERT_TRUE(IsOk(r));
  ASSERT_EQ(r->size(), 2u);
  Advance(2'000);
  EXPECT_TRUE(IsOk(Complete("dl", (*r)[0].lock_token)));
  EXPECT_TRUE(IsOk(Abandon("dl", (*r)[1].lock_token)));
  Tick();
  auto after = Receive("dl");
  ASSERT_TRUE(IsOk(after));
  EXPECT_TRUE(after->empty());
  dlq = Drain("dl", SubQueue::kDeadLetter);
  ASSERT_EQ(dlq.size(), 1u);
  EXPECT_EQ(dlq[0].properties.sequence_number, (*r)[1].properties.sequence_number);
  EXPECT_EQ(AppStr(dlq[0], "DeadLetterReason"), "TTLExpiredException");
}

// --- 6. deferral -----------------------------------------------------------------------------------

TEST_F(BrokerTest, DeferredMessagesAreOnlyReachableBySequenceNumberAndDoNotExpire) {
  ASSERT_TRUE(IsOk(broker_->CreateQueue("q", Props([](auto& p) {
                                          p.default_message_ttl_ms = 1'000;
                                          p.dead_lettering_on_message_expiration = true;
                                        }))));
  auto seq = SendOne("q", Msg("later"));
  ASSERT_TRUE(IsOk(seq));
  auto r = Receive("q");
  ASSERT_TRUE(IsOk(r));
  ASSERT_EQ(r->size(), 1u);
  ASSERT_TRUE(IsOk(Defer("q", (*r)[0].lock_token, {{"step", Int(2)}})));

  auto none = Receive("q");
  ASSERT_TRUE(IsOk(none));
  EXPECT_TRUE(none->empty()) << "deferred messages are skipped by receive";
  auto peeked = PeekAll("q");
  ASSERT_EQ(peeked.size(), 1u);
  EXPECT_EQ(peeked[0].properties.state, MessageState::kDeferred);
  EXPECT_EQ(peeked[0].properties.application.at("step"), Int(2));
  EXPECT_EQ(broker_->GetEntity("q")->runtime.deferred, 1);

  auto d = ReceiveDeferred("q", {*seq});
  ASSERT_TRUE(IsOk(d));
  ASSERT_EQ(d->size(), 1u);
  EXPECT_EQ((*d)[0].body, "later");
  EXPECT_FALSE((*d)[0].lock_token.empty());
  EXPECT_TRUE((*d)[0].locked_until.has_value());
  ASSERT_TRUE(IsOk(Complete("q", (*d)[0].lock_token)));
  EXPECT_TRUE(PeekAll("q").empty());
  EXPECT_TRUE(Fails(ReceiveDeferred("q", {*seq}), errc::kMessageNotFound));

  // A deferred message outlives its TTL and is not dead-lettered.
  seq = SendOne("q", Msg("kept"));
  ASSERT_TRUE(IsOk(seq));
  r = Receive("q");
  ASSERT_TRUE(IsOk(r));
  ASSERT_EQ(r->size(), 1u);
  ASSERT_TRUE(IsOk(Defer("q", (*r)[0].lock_token)));
  Advance(5'000);
  EXPECT_TRUE(PeekAll("q", SubQueue::kDeadLetter).empty());
  d = ReceiveDeferred("q", {*seq}, ReceiveMode::kReceiveAndDelete);
  ASSERT_TRUE(IsOk(d));
  ASSERT_EQ(d->size(), 1u);
  EXPECT_EQ((*d)[0].body, "kept");
  EXPECT_TRUE(PeekAll("q").empty());
}

// --- 7. dead-letter ----------------------------------------------------------------------------------

TEST_F(BrokerTest, DeadLetterStoresReasonAndDescriptionAndNotFromTheDeadLetterQueue) {
  ASSERT_TRUE(IsOk(broker_->CreateQueue("q", Props())));
  OutgoingMessage out = Msg("bad");
  out.properties.application["k"] = Str("v");
  ASSERT_TRUE(IsOk(SendOne("q", out)));
  auto r = Receive("q");
  ASSERT_TRUE(IsOk(r));
  ASSERT_EQ(r->size(), 1u);
  ASSERT_TRUE(IsOk(DeadLetter("q", (*r)[0].lock_token, "BadFormat", "not json", {{"extra", Int(7)}})));
  auto main = Receive("q");
  ASSERT_TRUE(IsOk(main));
  EXPECT_TRUE(main->empty());

  auto dlq = Receive("q", 1, ReceiveMode::kPeekLock, SubQueue::kDeadLetter);
  ASSERT_TRUE(IsOk(dlq));
  ASSERT_EQ(dlq->size(), 1u);
  const ReceivedMessage d = (*dlq)[0];
  EXPECT_EQ(d.body, "bad");
  EXPECT_EQ(AppStr(d, "DeadLetterReason"), "BadFormat");
  EXPECT_EQ(AppStr(d, "DeadLetterErrorDescription"), "not json");
  EXPECT_EQ(AppStr(d, "k"), "v");
  EXPECT_EQ(d.properties.application.at("extra"), Int(7));
  EXPECT_EQ(d.properties.delivery_count, 0);

  // Dead-lettering from the DLQ is refused; the message stays locked there.
  EXPECT_FALSE(IsOk(DeadLetter("q", d.lock_token, "again", "again", {}, SubQueue::kDeadLetter)));
  EXPECT_TRUE(IsOk(Complete("q", d.lock_token, SubQueue::kDeadLetter)));

  // A 4,096-character description is kept whole; a longer one is refused or cut to 4,096.
  ASSERT_TRUE(IsOk(Send("q", {Msg("long"), Msg("longer")})));
  r = Receive("q", 2);
  ASSERT_TRUE(IsOk(r));
  ASSERT_EQ(r->size(), 2u);
  const std::string d4096(4096, 'd');
  ASSERT_TRUE(IsOk(DeadLetter("q", (*r)[0].lock_token, "R", d4096)));
  auto longer = DeadLetter("q", (*r)[1].lock_token, "R", std::string(4097, 'e'));
  if (!longer.ok()) {
    EXPECT_EQ(longer.status().code(), Code::kInvalidArgument) << longer.status().ToString();
    EXPECT_TRUE(IsOk(Complete("q", (*r)[1].lock_token))) << "a refused dead-letter keeps the lock";
  }
  auto all = Drain("q", SubQueue::kDeadLetter);
  ASSERT_EQ(all.size(), longer.ok() ? 2u : 1u);
  EXPECT_EQ(AppStr(all[0], "DeadLetterErrorDescription"), d4096);
  if (longer.ok()) {
    EXPECT_EQ(AppStr(all[1], "DeadLetterErrorDescription"), std::string(4096, 'e'));
  }
}

// --- 8. peek -----------------------------------------------------------------------------------------

TEST_F(BrokerTest, PeekFromASequenceNumberIncludesLockedAndScheduledWithACursor) {
  ASSERT_TRUE(IsOk(broker_->CreateQueue("q", Props())));
  auto empty = broker_->Peek("q", SubQueue::kNone, 1, 10);
  ASSERT_TRUE(IsOk(empty));
  EXPECT_TRUE(empty->empty()) << "no content";

  ASSERT_TRUE(IsOk(Send("q", {Msg("1"), Msg("2"), Msg("3"), Msg("4"), Msg("5")})));
  auto sched = Schedule("q", {Msg("6")}, Now() + 60'000);
  ASSERT_TRUE(IsOk(sched));
  ASSERT_EQ(*sched, std::vector<int64_t>{6});
  ASSERT_TRUE(IsOk(Send("q", {Msg("7"), Msg("8"), Msg("9"), Msg("10")})));
  auto locked = Receive("q", 2);  // locks 1 and 2
  ASSERT_TRUE(IsOk(locked));
  ASSERT_EQ(Seqs(*locked), (std::vector<int64_t>{1, 2}));

  auto p = broker_->Peek("q", SubQueue::kNone, 1, 4);
  ASSERT_TRUE(IsOk(p));
  EXPECT_EQ(Seqs(*p), (std::vector<int64_t>{1, 2, 3, 4}));
  for (const auto& m : *p) EXPECT_TRUE(m.lock_token.empty());
  p = broker_->Peek("q", SubQueue::kNone, 5, 4);  // the cursor: last + 1
  ASSERT_TRUE(IsOk(p));
  ASSERT_EQ(Seqs(*p), (std::vector<int64_t>{5, 6, 7, 8}));
  EXPECT_EQ((*p)[1].properties.state, MessageState::kScheduled);
  EXPECT_EQ((*p)[1].body, "6");
  EXPECT_EQ((*p)[0].properties.state, MessageState::kActive);
  p = broker_->Peek("q", SubQueue::kNone, 9, 4);
  ASSERT_TRUE(IsOk(p));
  EXPECT_EQ(Seqs(*p), (std::vector<int64_t>{9, 10}));
  p = broker_->Peek("q", SubQueue::kNone, 11, 4);
  ASSERT_TRUE(IsOk(p));
  EXPECT_TRUE(p->empty());
  // A start between numbers begins at the next one that exists.
  ASSERT_TRUE(IsOk(Complete("q", (*locked)[0].lock_token)));
  p = broker_->Peek("q", SubQueue::kNone, 1, 2);
  ASSERT_TRUE(IsOk(p));
  EXPECT_EQ(Seqs(*p), (std::vector<int64_t>{2, 3}));
}

// --- 9. scheduling ---------------------------------------------------------------------------------------

TEST_F(BrokerTest, ScheduledMessagesActivateWithANewSequenceNumberAndCanBeCancelled) {
  ASSERT_TRUE(IsOk(broker_->CreateQueue("q", Props())));
  const int64_t t0 = Now();
  auto s = Schedule("q", {Msg("five")}, t0 + 5'000);
  ASSERT_TRUE(IsOk(s));
  ASSERT_EQ(s->size(), 1u);
  const int64_t scheduled_seq = (*s)[0];
  auto peeked = PeekAll("q");
  ASSERT_EQ(peeked.size(), 1u);
  EXPECT_EQ(peeked[0].properties.state, MessageState::kScheduled);
  EXPECT_EQ(peeked[0].properties.sequence_number, scheduled_seq);
  ASSERT_TRUE(peeked[0].properties.scheduled_enqueue_time.has_value());
  EXPECT_EQ(peeked[0].properties.scheduled_enqueue_time->ms, t0 + 5'000);
  EXPECT_EQ(broker_->GetEntity("q")->runtime.scheduled, 1);

  auto r = Receive("q");
  ASSERT_TRUE(IsOk(r));
  EXPECT_TRUE(r->empty());
  Advance(4'999);
  r = Receive("q");
  ASSERT_TRUE(IsOk(r));
  EXPECT_TRUE(r->empty()) << "not before its time";
  Advance(1);
  r = Receive("q");
  ASSERT_TRUE(IsOk(r));
  ASSERT_EQ(r->size(), 1u);
  EXPECT_EQ((*r)[0].body, "five");
  EXPECT_GT((*r)[0].properties.sequence_number, scheduled_seq) << "activation appends with a new number";
  EXPECT_EQ((*r)[0].properties.enqueued_time.ms, t0 + 5'000);
  EXPECT_EQ((*r)[0].properties.state, MessageState::kActive);
  EXPECT_EQ(broker_->GetEntity("q")->runtime.scheduled, 0);
  ASSERT_TRUE(IsOk(Complete("q", (*r)[0].lock_token)));

  // Cancel before activation deletes it.
  s = Schedule("q", {Msg("cancelled")}, Now() + 5'000);
  ASSERT_TRUE(IsOk(s));
  ASSERT_TRUE(IsOk(Cancel("q", *s)));
  EXPECT_TRUE(PeekAll("q").empty());
  Advance(6'000);
  r = Receive("q");
  ASSERT_TRUE(IsOk(r));
  EXPECT_TRUE(r->empty());

  // scheduled_enqueue_time on a normal send schedules too.
  OutgoingMessage m = Msg("by property");
  m.properties.scheduled_enqueue_time = Timestamp{Now() + 2'000};
  auto seq = SendOne("q", m);
  ASSERT_TRUE(IsOk(seq));
  peeked = PeekAll("q");
  ASSERT_EQ(peeked.size(), 1u);
  EXPECT_EQ(peeked[0].properties.state, MessageState::kScheduled);
  Advance(2'000);
  r = Receive("q");
  ASSERT_TRUE(IsOk(r));
  ASSERT_EQ(r->size(), 1u);
  EXPECT_EQ((*r)[0].body, "by property");
  EXPECT_GT((*r)[0].properties.sequence_number, *seq);
}

// --- 10. duplicate detection ---------------------------------------------------------------------------

TEST_F(BrokerTest, DuplicateDetectionDropsRepeatsWithinTheWindow) {
  ASSERT_TRUE(IsOk(broker_->CreateQueue("q", Props([](auto& p) {
                                          p.requires_duplicate_detection = true;
                                          p.duplicate_detection_history_time_window_ms = 20'000;
                                        }))));
  auto first = SendOne("q", WithId("a1", "a"));
  ASSERT_TRUE(IsOk(first));
  EXPECT_GT(*first, 0);
  Advance(10'000);
  auto dup = SendOne("q", WithId("a2", "a"));
  ASSERT_TRUE(IsOk(dup)) << "a duplicate is accepted";
  EXPECT_EQ(*dup, 0) << "and dropped";
  // Inside one batch as well.
  auto batch = Send("q", {WithId("x1", "x"), WithId("x2", "x")});
  ASSERT_TRUE(IsOk(batch));
  ASSERT_EQ(batch->size(), 2u);
  EXPECT_GT((*batch)[0], 0);
  EXPECT_EQ((*batch)[1], 0);
  EXPECT_EQ(Bodies(Drain("q")), (std::vector<std::string>{"a1", "x1"}));

  Advance(21'000);  // both sends of "a" are now older than the window
  auto again = SendOne("q", WithId("a3", "a"));
  ASSERT_TRUE(IsOk(again));
  EXPECT_GT(*again, 0);
  EXPECT_EQ(Bodies(Drain("q")), (std::vector<std::string>{"a3"}));

  // A scheduled and an immediate send with the same id dedupe each other, in either order.
  auto sb = Schedule("q", {WithId("b-scheduled", "b")}, Now() + 5'000);
  ASSERT_TRUE(IsOk(sb));
  EXPECT_GT((*sb)[0], 0);
  auto b = SendOne("q", WithId("b-now", "b"));
  ASSERT_TRUE(IsOk(b));
  EXPECT_EQ(*b, 0);
  auto c = SendOne("q", WithId("c-now", "c"));
  ASSERT_TRUE(IsOk(c));
  EXPECT_GT(*c, 0);
  auto sc = Schedule("q", {WithId("c-scheduled", "c")}, Now() + 5'000);
  ASSERT_TRUE(IsOk(sc));
  EXPECT_EQ(*sc, std::vector<int64_t>{0});
  Advance(5'000);
  auto bodies = Bodies(Drain("q"));
  std::sort(bodies.begin(), bodies.end());
  EXPECT_EQ(bodies, (std::vector<std::string>{"b-scheduled", "c-now"}));
}

// --- 11. sessions: disjoint receivers, FIFO, head-of-line --------------------------------------------

TEST_F(BrokerTest, ConcurrentAcceptNextReceiversGetDisjointSessionsInOrder) {
  ASSERT_TRUE(IsOk(broker_->CreateQueue("s", Props([](auto& p) { p.requires_session = true; }))));
  EXPECT_FALSE(IsOk(SendOne("s", Msg("no session")))) << "a session-less send to a session queue is refused";

  std::vector<OutgoingMessage> batch;
  for (int i = 0; i < 300; ++i) batch.push_back(Msg(std::to_string(i), "s" + std::to_string(i % 3)));
  auto seqs = Send("s", std::move(batch));
  ASSERT_TRUE(IsOk(seqs));
  ASSERT_EQ(seqs->size(), 300u);

  struct Got {
    std::string session;
    std::vector<int64_t> seqs;
    std::vector<std::string> errors;
  };
  std::vector<Got> got(3);
  std::latch three_accepted(3), go(1);
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&, t] {
      Got& g = got[t];
      auto lock = Accept("s", std::nullopt, 5'000ms);
      three_accepted.count_down();
      go.wait();
      if (!lock.ok()) {
        g.errors.push_back("accept: " + lock.status().ToString());
        return;
      }
      g.session = lock->session_id;
      for (int round = 0; round < 200; ++round) {
        auto r = ReceiveSession("s", *lock, 7);
        if (!r.ok()) {
          g.errors.push_back("receive: " + r.status().ToString());
          return;
        }
        if (r->empty()) break;
        for (const auto& m : *r) {
          if (m.properties.session_id != lock->session_id) g.errors.push_back("message of another session");
          g.seqs.push_back(m.properties.sequence_number);
          auto c = Complete("s", m.lock_token);
          if (!c.ok()) g.errors.push_back("complete: " + c.status().ToString());
        }
      }
      if (auto st = broker_->ReleaseSession("s", *lock); !st.ok()) g.errors.push_back("release: " + st.ToString());
    });
  }
  // While the three sessions are held, a fourth accept-next finds nothing.
  three_accepted.wait();
  EXPECT_TRUE(Fails(Accept("s", std::nullopt), errc::kServiceTimeout));
  go.count_down();
  for (auto& th : threads) th.join();

  std::set<std::string> sessions;
  for (const auto& g : got) {
    EXPECT_TRUE(g.errors.empty()) << ::testing::PrintToString(g.errors);
    sessions.insert(g.session);
    EXPECT_EQ(g.seqs.size(), 100u) << g.session;
    EXPECT_TRUE(std::is_sorted(g.seqs.begin(), g.seqs.end()) &&
                std::adjacent_find(g.seqs.begin(), g.seqs.end()) == g.seqs.end())
        << g.session << " not strictly increasing";
    // Session sK holds exactly the messages sent at positions i % 3 == K.
    if (g.session.size() == 2) {
      int k = g.session[1] - '0';
      std::vector<int64_t> expected;
      for (int i = k; i < 300; i += 3) expected.push_back((*seqs)[i]);
      EXPECT_EQ(g.seqs, expected) << g.session;
    }
  }
  EXPECT_EQ(sessions, (std::set<std::string>{"s0", "s1", "s2"}));
  EXPECT_TRUE(PeekAll("s").empty());
}

TEST_F(BrokerTest, AcceptNextFindsNothingWhileAllSessionsAreHeld) {
  ASSERT_TRUE(IsOk(broker_->CreateQueue("s", Props([](auto& p) { p.requires_session = true; }))));
  ASSERT_TRUE(IsOk(Send("s", {Msg("a", "a"), Msg("b", "b")})));
  auto l1 = Accept("s", std::nullopt);
  auto l2 = Accept("s", std::nullopt);
  ASSERT_TRUE(IsOk(l1));
  ASSERT_TRUE(IsOk(l2));
  EXPECT_NE(l1->session_id, l2->session_id);
  EXPECT_TRUE(Fails(Accept("s", std::nullopt), errc::kServiceTimeout));
}

TEST_F(BrokerTest, AbandonInASessionReservesTheSameHeadMessage) {
  ASSERT_TRUE(IsOk(broker_->CreateQueue("s", Props([](auto& p) { p.requires_session = true; }))));
  auto seqs = Send("s", {Msg("m1", "x"), Msg("m2", "x"), Msg("m3", "x")});
  ASSERT_TRUE(IsOk(seqs));
  auto lock = Accept("s", "x");
  ASSERT_TRUE(IsOk(lock));
  EXPECT_EQ(lock->session_id, "x");

  auto r = ReceiveSession("s", *lock);
  ASSERT_TRUE(IsOk(r));
  ASSERT_EQ(Bodies(*r), std::vector<std::string>{"m1"});
  ASSERT_TRUE(IsOk(Abandon("s", (*r)[0].lock_token)));
  r = ReceiveSession("s", *lock);
  ASSERT_TRUE(IsOk(r));
  ASSERT_EQ(Bodies(*r), std::vector<std::string>{"m1"}) << "no skipping past an abandoned head";
  EXPECT_EQ((*r)[0].properties.delivery_count, 1);
  ASSERT_TRUE(IsOk(Complete("s", (*r)[0].lock_token)));

  // With two locked, abandoning the first serves it again before anything else.
  r = ReceiveSession("s", *lock, 2);
  ASSERT_TRUE(IsOk(r));
  ASSERT_EQ(Bodies(*r), (std::vector<std::string>{"m2", "m3"}));
  ASSERT_TRUE(IsOk(Abandon("s", (*r)[0].lock_token)));
  auto again = ReceiveSession("s", *lock);
  ASSERT_TRUE(IsOk(again));
  ASSERT_EQ(Bodies(*again), std::vector<std::string>{"m2"});
  ASSERT_TRUE(IsOk(Complete("s", (*again)[0].lock_token)));
  ASSERT_TRUE(IsOk(Complete("s", (*r)[1].lock_token)));
  EXPECT_TRUE(PeekAll("s").empty());
}

// --- 12. session lock expiry, release, renew -----------------------------------------------------------

TEST_F(BrokerTest, SessionLockExpiryRenewAndRelease) {
  ASSERT_TRUE(IsOk(broker_->CreateQueue("s", Props([](auto& p) {
                                          p.requires_session = true;
                                          p.lock_duration_ms = 30'000;
                                        }))));
  ASSERT_TRUE(IsOk(Send("s", {Msg("m1", "a"), Msg("m2", "a")})));
  auto l1 = Accept("s", "a");
  ASSERT_TRUE(IsOk(l1));
  EXPECT_EQ(l1->locked_until.ms, Now() + 30'000);
  EXPECT_FALSE(l1->lock_token.empty());

  // Renew extends from now; settlements keep working past the first lockedUntil.
  auto r = ReceiveSession("s", *l1);
  ASSERT_TRUE(IsOk(r));
  ASSERT_EQ(Bodies(*r), std::vector<std::string>{"m1"});
  Advance(10'000);
  auto renewed = broker_->RenewSessionLock("s", *l1);
  ASSERT_TRUE(IsOk(renewed));
  EXPECT_EQ(renewed->ms, Now() + 30'000);
  Advance(25'000);
  ASSERT_TRUE(IsOk(Complete("s", (*r)[0].lock_token)));

  // Expiry: the owner's settlements and calls fail with SessionLockLost; the count goes up.
  r = ReceiveSession("s", *l1);
  ASSERT_TRUE(IsOk(r));
  ASSERT_EQ(Bodies(*r), std::vector<std::string>{"m2"});
  EXPECT_EQ((*r)[0].properties.delivery_count, 0);
  Advance(30'001);
  EXPECT_TRUE(Fails(Complete("s", (*r)[0].lock_token), errc::kSessionLockLost));
  EXPECT_TRUE(Fails(ReceiveSession("s", *l1), errc::kSessionLockLost));
  EXPECT_TRUE(Fails(broker_->RenewSessionLock("s", *l1), errc::kSessionLockLost));
  EXPECT_TRUE(Fails(SetState("s", *l1, std::string("x")), errc::kSessionLockLost));

  auto l2 = Accept("s", std::nullopt);
  ASSERT_TRUE(IsOk(l2)) << "another receiver can accept the session";
  EXPECT_EQ(l2->session_id, "a");
  EXPECT_NE(l2->lock_token, l1->lock_token);
  r = ReceiveSession("s", *l2);
  ASSERT_TRUE(IsOk(r));
  ASSERT_EQ(Bodies(*r), std::vector<std::string>{"m2"});
  EXPECT_EQ((*r)[0].properties.delivery_count, 1) << "session lock expiry counts a delivery";

  // Release: no count; the message lock ends with the session.
  const std::string token2 = (*r)[0].lock_token;
  ASSERT_TRUE(IsOk(broker_->ReleaseSession("s", *l2)));
  EXPECT_FALSE(IsOk(Complete("s", token2)));
  auto l3 = Accept("s", "a");
  ASSERT_TRUE(IsOk(l3));
  r = ReceiveSession("s", *l3);
  ASSERT_TRUE(IsOk(r));
  ASSERT_EQ(Bodies(*r), std::vector<std::string>{"m2"});
  EXPECT_EQ((*r)[0].properties.delivery_count, 1) << "release does not count a delivery";
  EXPECT_TRUE(IsOk(Complete("s", (*r)[0].lock_token)));
  EXPECT_TRUE(IsOk(broker_->ReleaseSession("s", *l3)));
}

// --- 13. accept timeouts and locked sessions ------------------------------------------------------------

TEST_F(BrokerTest, AcceptNextTimesOutAndAcceptOfALockedSessionIsRefused) {
  ASSERT_TRUE(IsOk(broker_->CreateQueue("s", Props([](auto& p) { p.requires_session = true; }))));
  auto pending = StartAccept("s", std::nullopt, 5'000ms);
  EXPECT_FALSE(IsReady(pending));
  Advance(4'999);
  EXPECT_FALSE(IsReady(pending)) << "answered before the requested timeout";
  Advance(1);
  auto r = Wait(pending, 5s);
  EXPECT_TRUE(Fails(r, errc::kServiceTimeout));

  ASSERT_TRUE(IsOk(SendOne("s", Msg("m", "x"))));
  auto held = Accept("s", "x");
  ASSERT_TRUE(IsOk(held));
  auto second = StartAccept("s", "x", 5'000ms);
  if (!IsReady(second)) Tick();
  EXPECT_TRUE(Fails(Wait(second, 5s), errc::kSessionCannotBeLocked));

  // A waiting accept-next gets a session that is released …
  auto waiter = StartAccept("s", std::nullopt, 10'000ms);
  EXPECT_FALSE(IsReady(waiter));
  ASSERT_TRUE(IsOk(broker_->ReleaseSession("s", *held)));
  Tick();
  auto got = Wait(waiter, 5s);
  ASSERT_TRUE(IsOk(got));
  EXPECT_EQ(got->session_id, "x");

  // … or one that a send creates.
  waiter = StartAccept("s", std::nullopt, 10'000ms);
  EXPECT_FALSE(IsReady(waiter));
  ASSERT_TRUE(IsOk(SendOne("s", Msg("m", "y"))));
  Tick();
  got = Wait(waiter, 5s);
  ASSERT_TRUE(IsOk(got));
  EXPECT_EQ(got->session_id, "y");
}

// --- 14. session state ----------------------------------------------------------------------------------

TEST_F(BrokerTest, SessionStateGetSetClearAndSurvival) {
  ASSERT_TRUE(IsOk(broker_->CreateQueue("s", Props([](auto& p) { p.requires_session = true; }))));
  auto none = broker_->GetSessionState("s", "new");
  ASSERT_TRUE(IsOk(none));
  EXPECT_FALSE(none->has_value());

  ASSERT_TRUE(IsOk(SendOne("s", Msg("m", "st"))));
  auto lock = Accept("s", "st");
  ASSERT_TRUE(IsOk(lock));
  std::string big(100 * 1024, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 31 % 256);
  ASSERT_TRUE(IsOk(SetState("s", *lock, big)));
  auto st = broker_->GetSessionState("s", "st");
  ASSERT_TRUE(IsOk(st));
  ASSERT_TRUE(st->has_value());
  EXPECT_TRUE(**st == big) << "100 KB of binary state comes back unchanged";

  ASSERT_TRUE(IsOk(SetState("s", *lock, std::nullopt)));
  st = broker_->GetSessionState("s", "st");
  ASSERT_TRUE(IsOk(st));
  EXPECT_FALSE(st->has_value()) << "set(null) clears";

  ASSERT_TRUE(IsOk(SetState("s", *lock, std::string("cursor=7"))));
  auto r = ReceiveSession("s", *lock);
  ASSERT_TRUE(IsOk(r));
  ASSERT_EQ(r->size(), 1u);
  ASSERT_TRUE(IsOk(Complete("s", (*r)[0].lock_token)));
  ASSERT_TRUE(IsOk(broker_->ReleaseSession("s", *lock)));
  EXPECT_TRUE(PeekAll("s").empty());
  st = broker_->GetSessionState("s", "st");
  ASSERT_TRUE(IsOk(st));
  EXPECT_EQ(*st, std::optional<std::string>("cursor=7")) << "state outlives the messages";
  EXPECT_TRUE(Fails(SetState("s", *lock, std::string("late")), errc::kSessionLockLost));
  auto sessions = broker_->ListSessions("s", Timestamp{0}, 0, 100);
  ASSERT_TRUE(IsOk(sessions));
  EXPECT_NE(std::find(sessions->begin(), sessions->end(), "st"), sessions->end());

  ASSERT_NO_FATAL_FAILURE(Reopen());
  st = broker_->GetSessionState("s", "st");
  ASSERT_TRUE(IsOk(st));
  EXPECT_EQ(*st, std::optional<std::string>("cursor=7")) << "state is durable";
}

// --- 15. topics, rules, actions ----------------------------------------------------------------------

TEST_F(BrokerTest, TopicFansOutByCorrelationSqlAndActionRules) {
  ASSERT_TRUE(IsOk(broker_->CreateTopic("t", Props())));
  ASSERT_TRUE(IsOk(broker_->CreateSubscription("t", "all", Props())));
  ASSERT_TRUE(IsOk(broker_->CreateSubscription(
      "t", "corr", Props(),
      R"([{"Name":"c","Properties":{"FilterType":"Correlation","CorrelationFilter":{"CorrelationId":"order","Properties":{"region":"eu"}}}}])")));
  ASSERT_TRUE(IsOk(broker_->CreateSubscription(
      "t", "label", Props(),
      R"([{"Name":"hot","Properties":{"FilterType":"Correlation","CorrelationFilter":{"Label":"hot"}}}])")));
  ASSERT_TRUE(IsOk(broker_->CreateSubscription(
      "t", "sql", Props(),
      R"([{"Name":"blue","Properties":{"FilterType":"Sql","SqlFilter":{"SqlExpression":"color = 'blue'"}}}])")));
  ASSERT_TRUE(IsOk(broker_->CreateSubscription(
      "t", "multi", Props(),
      R"([{"Name":"blue","Properties":{"FilterType":"Sql","SqlFilter":{"SqlExpression":"color = 'blue'"}}},)"
      R"({"Name":"big","Properties":{"FilterType":"Sql","SqlFilter":{"SqlExpression":"size > 10"},"Action":{"SqlExpression":"SET x = 1"}}}])")));
  ASSERT_TRUE(IsOk(broker_->CreateSubscription("t", "none", Props())));
  ASSERT_TRUE(IsOk(broker_->DeleteRule("t/Subscriptions/none", "$Default")));

  auto rules = broker_->ListRules("t/Subscriptions/all");
  ASSERT_TRUE(IsOk(rules));
  EXPECT_NE(rules->find("$Default"), std::string::npos) << *rules;
  rules = broker_->ListRules("t/Subscriptions/none");
  ASSERT_TRUE(IsOk(rules));
  EXPECT_EQ(rules->find("$Default"), std::string::npos) << *rules;

  auto make = [](std::string body, std::map<std::string, PropertyValue> app, std::optional<std::string> corr = {},
                 std::optional<std::string> subject = {}) {
    OutgoingMessage m = Msg(std::move(body));
    m.properties.application = std::move(app);
    m.properties.correlation_id = std::move(corr);
    m.properties.subject = std::move(subject);
    return m;
  };
  ASSERT_TRUE(IsOk(Send("t", {
                                 make("m1", {{"color", Str("blue")}, {"size", Int(5)}, {"region", Str("eu")}}, "order"),
                                 make("m2", {{"color", Str("red")}, {"size", Int(20)}}),
                                 make("m3", {{"color", Str("blue")}, {"size", Int(20)}}),
                                 make("m4", {{"region", Str("us")}}, "order"),
                                 make("m5", {}, std::nullopt, "hot"),
                             })));

  auto bodies_of = [&](const std::string& sub) {
    auto b = Bodies(Drain("t/Subscriptions/" + sub));
    std::sort(b.begin(), b.end());
    return b;
  };
  EXPECT_EQ(bodies_of("all"), (std::vector<std::string>{"m1", "m2", "m3", "m4", "m5"}));
  EXPECT_EQ(bodies_of("corr"), (std::vector<std::string>{"m1"}));
  EXPECT_EQ(bodies_of("label"), (std::vector<std::string>{"m5"}));
  EXPECT_EQ(bodies_of("sql"), (std::vector<std::string>{"m1", "m3"}));
  EXPECT_EQ(bodies_of("none"), (std::vector<std::string>{})) << "a subscription without rules gets nothing";

  // Rules without actions give one copy together; each matching action rule gives its own copy.
  auto multi = Drain("t/Subscriptions/multi");
  std::vector<std::string> plain, action;
  for (const auto& m : multi) {
    if (m.properties.application.count("x")) {
      action.push_back(m.body);
      EXPECT_EQ(m.properties.application.at("x"), Int(1));
      EXPECT_EQ(AppStr(m, "RuleName"), "big");
    } else {
      plain.push_back(m.body);
      EXPECT_EQ(m.properties.application.count("RuleName"), 0u);
    }
  }
  std::sort(plain.begin(), plain.end());
  std::sort(action.begin(), action.end());
  EXPECT_EQ(plain, (std::vector<std::string>{"m1", "m3"}));
  EXPECT_EQ(action, (std::vector<std::string>{"m2", "m3"}));

  // Sequence numbers are per subscription and gap-free.
  ASSERT_TRUE(IsOk(SendOne("t", make("m6", {{"color", Str("blue")}}))));
  auto sql = PeekAll("t/Subscriptions/sql");
  ASSERT_EQ(sql.size(), 1u);
  EXPECT_EQ(sql[0].properties.sequence_number, 3);
}

// --- 16. auto-forwarding ----------------------------------------------------------------------------------

TEST_F(BrokerTest, AutoForwardStopsAfterFourHopsAndAtAFullDestination) {
  // q0 → q1 → q2 → q3 → q4 → q5; destinations are created first.
  ASSERT_TRUE(IsOk(broker_->CreateQueue("q5", Props())));
  for (int i = 4; i >= 0; --i) {
    std::string to = "q" + std::to_string(i + 1);
    ASSERT_TRUE(IsOk(broker_->CreateQueue("q" + std::to_string(i), Props([&](auto& p) { p.forward_to = to; }))));
  }
  // Four hops (q1 → q5) arrive.
  ASSERT_TRUE(IsOk(SendOne("q1", Msg("four hops"))));
  Tick();
  auto arrived = Drain("q5");
  ASSERT_EQ(arrived.size(), 1u);
  EXPECT_EQ(arrived[0].body, "four hops");

  // A fifth hop is refused: the message stays in the transfer DLQ of the entity that would
  // forward it a fifth time (q4).
  ASSERT_TRUE(IsOk(SendOne("q0", Msg("five hops"))));
  Tick();
  EXPECT_TRUE(Drain("q5").empty());
  std::string where;
  for (int i = 0; i <= 5; ++i) {
    std::string q = "q" + std::to_string(i);
    auto tdlq = PeekAll(q, SubQueue::kTransferDeadLetter);
    if (tdlq.empty()) continue;
    where += q + " ";
    EXPECT_EQ(tdlq.size(), 1u);
    EXPECT_EQ(tdlq[0].body, "five hops");
    EXPECT_EQ(AppStr(tdlq[0], "DeadLetterReason"), "MaxTransferHopCountExceeded");
  }
  EXPECT_EQ(where, "q4 ") << "transfer dead-lettered in: " << where;
  EXPECT_EQ(broker_->GetEntity("q4")->runtime.transfer_dead_lettered, 1);

  // A full destination: the message goes to the source's transfer DLQ.
  ASSERT_TRUE(IsOk(broker_->CreateQueue("full", Props([](auto& p) { p.max_size_in_megabytes = 1; }))));
  ASSERT_TRUE(IsOk(broker_->CreateQueue("src", Props([](auto& p) { p.forward_to = "full"; }))));
  const std::string chunk(250 * 1024, 'z');
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(IsOk(SendOne("full", Msg(chunk)))) << i;
  EXPECT_TRUE(Fails(SendOne("full", Msg(chunk)), errc::kQuotaExceeded));
  ASSERT_TRUE(IsOk(SendOne("src", Msg(chunk))));
  Tick();
  EXPECT_EQ(PeekAll("src", SubQueue::kTransferDeadLetter).size(), 1u);
  EXPECT_EQ(PeekAll("full").size(), 4u);
}

TEST_F(BrokerTest, DeadLetteredMessagesForwardWithTheirSource) {
  ASSERT_TRUE(IsOk(broker_->CreateQueue("dst", Props())));
  ASSERT_TRUE(IsOk(broker_->CreateQueue("src", Props([](auto& p) { p.forward_dead_lettered_messages_to = "dst"; }))));
  ASSERT_TRUE(IsOk(SendOne("src", Msg("failed"))));
  auto r = Receive("src");
  ASSERT_TRUE(IsOk(r));
  ASSERT_EQ(r->size(), 1u);
  ASSERT_TRUE(IsOk(DeadLetter("src", (*r)[0].lock_token, "Broken", "it broke")));
  Tick();
  auto got = Drain("dst");
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].body, "failed");
  EXPECT_EQ(got[0].properties.dead_letter_source, std::optional<std::string>("src"));
  EXPECT_EQ(AppStr(got[0], "DeadLetterReason"), "Broken");
}

// --- 17. quotas --------------------------------------------------------------------------------------------

TEST_F(BrokerTest, QuotasOnMessageSizeMessageIdAndEntitySize) {
  ASSERT_TRUE(IsOk(broker_->CreateQueue("q", Props([](auto& p) { p.max_size_in_megabytes = 1; }))));
  EXPECT_TRUE(Fails(SendOne("q", Msg(std::string(256 * 1024 + 1, 'x'))), errc::kMessageSizeExceeded));
  EXPECT_TRUE(IsOk(SendOne("q", Msg(std::string(200 * 1024, 'x')))));
  // All or none: a batch with one oversize message stores nothing.
  EXPECT_TRUE(Fails(Send("q", {Msg("small"), Msg(std::string(300 * 1024, 'x'))}), errc::kMessageSizeExceeded));
  EXPECT_EQ(PeekAll("q").size(), 1u);

  EXPECT_TRUE(IsOk(SendOne("q", WithId("id128", std::string(128, 'i')))));
  EXPECT_TRUE(Fails(SendOne("q", WithId("id129", std::string(129, 'i'))), errc::kBadRequest));
  EXPECT_EQ(Drain("q").size(), 2u);

  // Entity full → QuotaExceeded; room again after a receive.
  const std::string chunk(250 * 1024, 'y');
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(IsOk(SendOne("q", Msg(chunk)))) << i;
  EXPECT_TRUE(Fails(SendOne("q", Msg(chunk)), errc::kQuotaExceeded));
  EXPECT_EQ(PeekAll("q").size(), 4u);
  auto one = Receive("q", 1, ReceiveMode::kReceiveAndDelete);
  ASSERT_TRUE(IsOk(one));
  EXPECT_TRUE(IsOk(SendOne("q", Msg(chunk))));

  // Session ids are limited like message ids.
  ASSERT_TRUE(IsOk(broker_->CreateQueue("s", Props([](auto& p) { p.requires_session = true; }))));
  EXPECT_TRUE(IsOk(SendOne("s", Msg("ok", std::string(128, 's')))));
  EXPECT_FALSE(IsOk(SendOne("s", Msg("long", std::string(129, 's')))));
}

TEST_F(BrokerTest, SessionIdOnAnEntityWithoutSessionsIsAPlainProperty) {
  ASSERT_TRUE(IsOk(broker_->CreateQueue("q", Props([](auto& p) { p.lock_duration_ms = 10'000; }))));
  ASSERT_TRUE(IsOk(SendOne("q", Msg("a", "s1"))));
  auto r = Receive("q");
  ASSERT_TRUE(IsOk(r));
  ASSERT_EQ(r->size(), 1u);
  EXPECT_EQ((*r)[0].properties.session_id, std::optional<std::string>("s1"));
  ASSERT_TRUE(IsOk(broker_->RenewLock("q", SubQueue::kNone, (*r)[0].lock_token)));
  Advance(10'001);  // an ordinary message lock: it expires on its own
  r = Receive("q");
  ASSERT_TRUE(IsOk(r));
  ASSERT_EQ(r->size(), 1u);
  EXPECT_EQ((*r)[0].properties.delivery_count, 1);
  EXPECT_TRUE(IsOk(Complete("q", (*r)[0].lock_token)));
}

// As app/bus_cli.cpp closes it: the broker is shut down and destroyed before the store drains.
TEST_F(BrokerTest, DestroyingTheBrokerWithWritesInFlightIsSafe) {
  ASSERT_TRUE(IsOk(broker_->CreateQueue("q", Props())));
  std::vector<std::future<Result<std::vector<int64_t>>>> inflight;
  for (int i = 0; i < 50; ++i) {
    std::vector<OutgoingMessage> one;
    one.push_back(Msg("m" + std::to_string(i)));
    inflight.push_back(Start<std::vector<int64_t>>(
        [&](Done<std::vector<int64_t>> d) { broker_->Send("q", std::move(one), std::move(d)); }));
  }
  broker_->Shutdown();
  broker_.reset();
  engine_->Shutdown();
  for (auto& f : inflight) {
    ASSERT_TRUE(IsReady(f, 5'000ms)) << "every send is answered";
    auto r = f.get();
    EXPECT_TRUE(r.ok() || r.status().code() == Code::kUnavailable) << r.status().ToString();
  }
}

TEST_F(BrokerTest, UnknownEntitiesAreNotFound) {
  EXPECT_TRUE(Fails(SendOne("nope", Msg("x")), errc::kEntityNotFound));
  EXPECT_TRUE(Fails(Receive("nope"), errc::kEntityNotFound));
  EXPECT_TRUE(Fails(broker_->Peek("nope", SubQueue::kNone, 1, 1), errc::kEntityNotFound));
  EXPECT_TRUE(Fails(broker_->GetEntity("nope"), errc::kEntityNotFound));
  ASSERT_TRUE(IsOk(broker_->CreateQueue("q", Props())));
  EXPECT_TRUE(Fails(broker_->CreateQueue("q", Props()), errc::kEntityExists));
}

// --- emulator Config.json ------------------------------------------------------------------------------------

constexpr std::string_view kEmulatorConfig = R"json({
  "UserConfig": {
    "Namespaces": [
      {
        "Name": "sbemulatorns",
        "Queues": [
          {
            "Name": "queue.1",
            "Properties": {
              "DeadLetteringOnMessageExpiration": false,
              "DefaultMessageTimeToLive": "PT1H",
              "DuplicateDetectionHistoryTimeWindow": "PT20S",
              "ForwardDeadLetteredMessagesTo": "",
              "ForwardTo": "",
              "LockDuration": "PT1M",
              "MaxDeliveryCount": 3,
              "RequiresDuplicateDetection": false,
              "RequiresSession": false
            }
          },
          {
            "Name": "orders",
            "Properties": {
              "DeadLetteringOnMessageExpiration": true,
              "DefaultMessageTimeToLive": "PT5M",
              "LockDuration": "PT30S",
              "MaxDeliveryCount": 5,
              "RequiresDuplicateDetection": true,
              "DuplicateDetectionHistoryTimeWindow": "PT1M",
              "RequiresSession": true
            }
          }
        ],
        "Topics": [
          {
            "Name": "topic.1",
            "Properties": {
              "DefaultMessageTimeToLive": "PT1H",
              "DuplicateDetectionHistoryTimeWindow": "PT20S",
              "RequiresDuplicateDetection": false
            },
            "Subscriptions": [
              {
                "Name": "subscription.1",
                "Properties": {
                  "DeadLetteringOnMessageExpiration": false,
                  "DefaultMessageTimeToLive": "PT1H",
                  "LockDuration": "PT1M",
                  "MaxDeliveryCount": 3,
                  "ForwardDeadLetteredMessagesTo": "",
                  "ForwardTo": "",
                  "RequiresSession": false
                },
                "Rules": [
                  {
                    "Name": "app-prop-filter-1",
                    "Properties": {
                      "FilterType": "Correlation",
                      "CorrelationFilter": {
                        "ContentType": "application/text",
                        "CorrelationId": "id1",
                        "Label": "subject1",
                        "MessageId": "msgid1",
                        "ReplyTo": "someQueue",
                        "ReplyToSessionId": "sessionId",
                        "SessionId": "session1",
                        "To": "xyz",
                        "Properties": { "prop1": "value1" }
                      }
                    }
                  }
                ]
              },
              {
                "Name": "subscription.2",
                "Properties": {
                  "LockDuration": "PT1M",
                  "MaxDeliveryCount": 3
                },
                "Rules": [
                  {
                    "Name": "sql-filter-1",
                    "Properties": {
                      "FilterType": "Sql",
                      "SqlFilter": { "SqlExpression": "shape = 'circular' AND size > 3" },
                      "Action": { "SqlExpression": "SET tagged = 'yes'" }
                    }
                  }
                ]
              },
              {
                "Name": "subscription.3",
                "Properties": {
                  "LockDuration": "PT1M",
                  "MaxDeliveryCount": 10
                }
              }
            ]
          }
        ]
      }
    ],
    "Logging": { "Type": "File" }
  }
})json";

TEST_F(BrokerTest, LoadsTheEmulatorConfigFormat) {
  ASSERT_TRUE(IsOk(broker_->LoadEmulatorConfig(kEmulatorConfig)));

  auto q1 = broker_->GetEntity("queue.1");
  ASSERT_TRUE(IsOk(q1));
  EXPECT_EQ(q1->kind, EntityKind::kQueue);
  EXPECT_EQ(q1->properties.lock_duration_ms, 60'000);
  EXPECT_EQ(q1->properties.max_delivery_count, 3);
  EXPECT_EQ(q1->properties.default_message_ttl_ms, 3'600'000);
  EXPECT_EQ(q1->properties.duplicate_detection_history_time_window_ms, 20'000);
  EXPECT_FALSE(q1->properties.requires_session);
  EXPECT_FALSE(q1->properties.dead_lettering_on_message_expiration);

  auto orders = broker_->GetEntity("orders");
  ASSERT_TRUE(IsOk(orders));
  EXPECT_EQ(orders->properties.lock_duration_ms, 30'000);
  EXPECT_EQ(orders->properties.max_delivery_count, 5);
  EXPECT_EQ(orders->properties.default_message_ttl_ms, 300'000);
  EXPECT_EQ(orders->properties.duplicate_detection_history_time_window_ms, 60'000);
  EXPECT_TRUE(orders->properties.requires_session);
  EXPECT_TRUE(orders->properties.requires_duplicate_detection);
  EXPECT_TRUE(orders->properties.dead_lettering_on_message_expiration);

  auto topic = broker_->GetEntity("topic.1");
  ASSERT_TRUE(IsOk(topic));
  EXPECT_EQ(topic->kind, EntityKind::kTopic);
  auto sub1 = broker_->GetEntity("topic.1/Subscriptions/subscription.1");
  ASSERT_TRUE(IsOk(sub1));
  EXPECT_EQ(sub1->kind, EntityKind::kSubscription);
  EXPECT_EQ(sub1->properties.max_delivery_count, 3);
  auto sub3 = broker_->GetEntity("topic.1/Subscriptions/subscription.3");
  ASSERT_TRUE(IsOk(sub3));
  EXPECT_EQ(sub3->properties.max_delivery_count, 10);
  EXPECT_EQ(broker_->ListEntities(EntityKind::kQueue).size(), 2u);
  EXPECT_EQ(broker_->ListEntities(EntityKind::kSubscription).size(), 3u);

  auto rules = broker_->ListRules("topic.1/Subscriptions/subscription.1");
  ASSERT_TRUE(IsOk(rules));
  EXPECT_NE(rules->find("app-prop-filter-1"), std::string::npos) << *rules;
  EXPECT_EQ(rules->find("$Default"), std::string::npos) << *rules;
  rules = broker_->ListRules("topic.1/Subscriptions/subscription.3");
  ASSERT_TRUE(IsOk(rules));
  EXPECT_NE(rules->find("$Default"), std::string::npos) << "no Rules: the $Default rule; " << *rules;

  // Routing follows the loaded rules.
  OutgoingMessage corr = Msg("corr");
  auto& p = corr.properties;
  p.content_type = "application/text";
  p.correlation_id = "id1";
  p.subject = "subject1";
  p.message_id = "msgid1";
  p.reply_to = "someQueue";
  p.reply_to_session_id = "sessionId";
  p.session_id = "session1";
  p.to = "xyz";
  p.application["prop1"] = Str("value1");
  OutgoingMessage almost = corr;
  almost.body = "almost";
  almost.properties.message_id = "msgid2";
  OutgoingMessage circle = Msg("circle");
  circle.properties.application = {{"shape", Str("circular")}, {"size", Int(4)}};
  ASSERT_TRUE(IsOk(Send("topic.1", {corr, almost, circle})));
  EXPECT_EQ(Bodies(Drain("topic.1/Subscriptions/subscription.1")), std::vector<std::string>{"corr"});
  auto s2 = Drain("topic.1/Subscriptions/subscription.2");
  ASSERT_EQ(Bodies(s2), std::vector<std::string>{"circle"});
  EXPECT_EQ(AppStr(s2[0], "tagged"), "yes");
  EXPECT_EQ(Drain("topic.1/Subscriptions/subscription.3").size(), 3u);

  // Loading again creates nothing new and changes nothing.
  ASSERT_TRUE(IsOk(broker_->LoadEmulatorConfig(kEmulatorConfig)));
  EXPECT_EQ(broker_->ListEntities().size(), 6u);
  // Entities survive a restart.
  ASSERT_NO_FATAL_FAILURE(Reopen());
  EXPECT_EQ(broker_->ListEntities().size(), 6u);
  EXPECT_TRUE(broker_->GetEntity("orders")->properties.requires_session);

  // Malformed input is an error, not a crash.
  EXPECT_FALSE(IsOk(broker_->LoadEmulatorConfig("{\"UserConfig\":")));
  EXPECT_FALSE(IsOk(broker_->LoadEmulatorConfig("[1,2,3]")));
  EXPECT_FALSE(IsOk(broker_->LoadEmulatorConfig(
      R"({"UserConfig":{"Namespaces":[{"Name":"n","Queues":[{"Name":"bad","Properties":{"LockDuration":"soon"}}]}]}})")));
}

// --- issue 5: ordering under concurrency -----------------------------------------------------------------------

// A clock that a driver thread advances while receivers read it (ManualClock is not synchronized).
class SharedClock final : public Clock {
 public:
  explicit SharedClock(int64_t ms) : ms_(ms) {}
  Timestamp Now() const override { return Timestamp{ms_.load(std::memory_order_acquire)}; }
  void Advance(int64_t ms) { ms_.fetch_add(ms, std::memory_order_acq_rel); }

 private:
  std::atomic<int64_t> ms_;
};

TEST_F(BrokerTest, ThreeSessionsEightReceiversCompleteInOrderDespiteAbandonsAndExpiries) {
  CloseAll();
  SharedClock clock(kStart);
  struct CloseFirst {  // the broker must not outlive `clock`
    BrokerTest* t;
    ~CloseFirst() { t->CloseAll(); }
  } close_first{this};
  ASSERT_NO_FATAL_FAILURE(OpenAll(clock));
  constexpr int kSessions = 3, kPerSession = 1000, kReceivers = 8;
  constexpr int64_t kLockMs = 10'000;
  ASSERT_TRUE(IsOk(broker_->CreateQueue("ord", Props([](auto& p) {
                                          p.requires_session = true;
                                          p.lock_duration_ms = kLockMs;
                                          p.max_delivery_count = 1'000'000;  // nothing may reach the DLQ
                                        }))));
  std::map<std::string, std::vector<int64_t>> sent;
  for (int b = 0; b < 10; ++b) {
    std::vector<OutgoingMessage> batch;
    std::vector<std::string> ids;
    for (int i = 0; i < kSessions * kPerSession / 10; ++i) {
      std::string id = "session-" + std::to_string(i % kSessions);
      batch.push_back(Msg(std::to_string(b) + ":" + std::to_string(i), id));
      ids.push_back(id);
    }
    auto seqs = Send("ord", std::move(batch));
    ASSERT_TRUE(IsOk(seqs));
    for (size_t i = 0; i < ids.size(); ++i) sent[ids[i]].push_back((*seqs)[i]);
  }

  std::mutex mu;
  std::map<std::string, std::vector<int64_t>> completed;  // in commit order
  std::vector<std::string> errors;
  std::atomic<int> total{0};
  std::atomic<bool> stop{false}, stop_driver{false};
  std::atomic<int> abandons{0}, stalls{0}, releases{0}, lock_losses{0};
  auto error = [&](std::string e) {
    std::lock_guard<std::mutex> g(mu);
    if (errors.size() < 20) errors.push_back(std::move(e));
  };

  // The driver moves time: a stalled receiver's session expires after kLockMs of clock time. It
  // runs until the receivers are joined (their accept-next waits end on its ticks).
  std::thread driver([&] {
    while (!stop_driver) {
      std::this_thread::sleep_for(2ms);
      clock.Advance(500);
      broker_->Tick();
    }
  });

  auto receiver = [&](int id) {
    std::mt19937 rng(1234 + id);
    auto chance = [&](int percent) { return static_cast<int>(rng() % 100) < percent; };
    while (!stop) {
      auto acc = StartAccept("ord", std::nullopt, 1'000ms);
      auto lock = Wait(acc, 20s);
      if (!lock.ok()) {
        if (lock.status().error_code() != errc::kServiceTimeout) error("accept: " + lock.status().ToString());
        continue;
      }
      const std::string session = lock->session_id;
      bool keep = true;
      while (keep && !stop) {
        auto got = ReceiveSession("ord", *lock, 1 + static_cast<int>(rng() % 4));
        if (!got.ok()) {
          if (got.status().error_code() != errc::kSessionLockLost) error("receive: " + got.status().ToString());
          lock_losses++;
          break;
        }
        if (got->empty()) {
          (void)broker_->ReleaseSession("ord", *lock);
          break;
        }
        for (size_t i = 1; i < got->size(); ++i) {
          if ((*got)[i].properties.sequence_number <= (*got)[i - 1].properties.sequence_number) {
            error("batch out of order in " + session);
          }
        }
        for (const auto& m : *got) {
          if (m.properties.session_id != session) error("message of another session in " + session);
        }
        if (chance(3)) {  // the receiver dies holding its locks
          stalls++;
          break;
        }
        if (chance(3)) {  // a clean close
          releases++;
          (void)broker_->ReleaseSession("ord", *lock);
          break;
        }
        for (size_t i = 0; i < got->size() && keep; ++i) {
          const ReceivedMessage& m = (*got)[i];
          if (chance(8)) {
            // Abandon this one and the rest of the batch, in order.
            abandons++;
            for (size_t j = i; j < got->size(); ++j) {
              auto a = Await<bool>([&](Done<bool> d) {
                broker_->Abandon("ord", SubQueue::kNone, (*got)[j].lock_token, {}, std::move(d));
              });
              if (!a.ok()) {
                keep = false;
                break;
              }
            }
            break;
          }
          const int64_t seq = m.properties.sequence_number;
          auto c = Start<bool>([&](Done<bool> d) {
            auto record = [&mu, &completed, &errors, &total, session, seq, d = std::move(d)](Result<bool> r) {
              if (r.ok()) {
                std::lock_guard<std::mutex> g(mu);
                auto& list = completed[session];
                if (!list.empty() && list.back() >= seq) {
                  if (errors.size() < 20) {
                    errors.push_back(session + ": completed " + std::to_string(seq) + " after " +
                                     std::to_string(list.back()));
                  }
                }
                list.push_back(seq);
                total++;
              }
              d(std::move(r));
            };
            broker_->Complete("ord", SubQueue::kNone, m.lock_token, std::move(record));
          });
          auto r = Wait(c, 20s);
          if (!r.ok()) {
            uint32_t e = r.status().error_code();
            if (e != errc::kSessionLockLost && e != errc::kMessageLockLost) error("complete: " + r.status().ToString());
            lock_losses++;
            keep = false;
          }
        }
        if (keep && !broker_->RenewSessionLock("ord", *lock).ok()) {
          lock_losses++;
          keep = false;
        }
      }
    }
  };
  std::vector<std::thread> receivers;
  for (int i = 0; i < kReceivers; ++i) receivers.emplace_back(receiver, i);
  const auto deadline = std::chrono::steady_clock::now() + 240s;
  while (total < kSessions * kPerSession && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(20ms);
  }
  stop = true;
  for (auto& t : receivers) t.join();
  stop_driver = true;
  driver.join();

  EXPECT_TRUE(errors.empty()) << ::testing::PrintToString(errors);
  EXPECT_EQ(total.load(), kSessions * kPerSession);
  for (const auto& [session, seqs] : sent) {
    EXPECT_EQ(completed[session], seqs) << session << ": completed out of order, lost or twice";
  }
  EXPECT_TRUE(PeekAll("ord").empty());
  EXPECT_TRUE(PeekAll("ord", SubQueue::kDeadLetter).empty());
  // The run exercised what it claims to.
  EXPECT_GT(abandons.load(), 0);
  EXPECT_GT(stalls.load(), 0);
  EXPECT_GT(releases.load(), 0);
  RecordProperty("abandons", abandons.load());
  RecordProperty("stalls", stalls.load());
  RecordProperty("lock_losses", lock_losses.load());
}

// --- the transactional outbox ------------------------------------------------------------------------------

// A record change and the message it raises commit together, or neither does.
TEST_F(BrokerTest, SendWithinAnotherWriteCommitsAndRollsBackWithIt) {
  ASSERT_TRUE(IsOk(broker_->CreateQueue("outbox", Props())));
  ASSERT_TRUE(IsOk(engine_->WriteSync(
      [](storage::Connection& c) { return c.ExecScript("CREATE TABLE demo_record (id INTEGER PRIMARY KEY);"); })));
  auto change = [&](int id, bool fail) {
    std::function<void(Status)> finish;
    Status s = engine_->WriteSync([&](storage::Connection& c) -> Status {
      std::vector<storage::SqlValue> v = {int64_t{id}};
      RETURN_IF_ERROR(c.Exec("INSERT INTO demo_record (id) VALUES (?)", v).status());
      auto sent = broker_->SendWithin(c, "outbox", {Msg("record " + std::to_string(id))});
      if (!sent.ok()) return sent.status();
      finish = std::move(sent).value();
      if (fail) return Status(Code::kInvalidArgument, "the change is refused");
      return Status::Ok();
    });
    if (finish) finish(s);
    return s;
  };
  EXPECT_FALSE(IsOk(change(1, true)));
  EXPECT_TRUE(IsOk(change(2, false)));
  EXPECT_FALSE(IsOk(change(3, true)));
  EXPECT_TRUE(IsOk(change(4, false)));
  auto got = Drain("outbox");
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].body, "record 2");
  EXPECT_EQ(got[1].body, "record 4");
  // Gap-free: the refused changes used no sequence numbers.
  EXPECT_EQ(got[0].properties.sequence_number, 1);
  EXPECT_EQ(got[1].properties.sequence_number, 2);
  int64_t rows = 0;
  ASSERT_TRUE(IsOk(engine_->Read()->Query("SELECT count(*) FROM demo_record", {}, [&](const storage::Row& r) {
    rows = r.Int(0);
    return false;
  })));
  EXPECT_EQ(rows, 2);
  // Survives a restart like any other send.
  ASSERT_TRUE(IsOk(change(5, false)));
  ASSERT_NO_FATAL_FAILURE(Reopen());
  auto after = Drain("outbox");
  ASSERT_EQ(after.size(), 1u);
  EXPECT_EQ(after[0].body, "record 5");
}

}  // namespace
}  // namespace tributary::bus
