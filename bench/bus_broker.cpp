// bench_bus_broker — the message broker's own ceiling, in process, without HTTP (issue 5).
//
// A real bus::Broker on a real SQLite store (WAL, synchronous=FULL, group commit), the system
// clock, 1 KB messages on a queue that requires sessions. Every send and complete waits for its
// durable commit, as the HTTP data plane does before it answers. Reported as items/s (messages)
// on wall-clock time; with ->Threads(N), N clients run at once (their writes share commits).
//
//   BM_Send                 one batch of 100 messages over 100 sessions per iteration
//   BM_Cycle/per_session:K  per iteration: send a batch of 100 messages over 100/K sessions, then
//                           for each session accept it, receive its K messages, complete them all
//                           (concurrently, as messages/complete does) and release it: the
//                           send + peek-lock + complete round trip of bench/bus.sh
//
// The store lives in a fresh directory /tmp/tributary-busbench-XXXXXX (parent: BENCH_TMPDIR),
// removed at exit, also on SIGINT/SIGTERM.

#include <benchmark/benchmark.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "tributary/base/time.h"
#include "tributary/bus/broker.h"
#include "tributary/storage/engine.h"

namespace {

using namespace tributary;
namespace fs = std::filesystem;

constexpr int kBatch = 100;
constexpr size_t kBodyBytes = 1024;

[[noreturn]] void Die(const std::string& what, const Status& s) {
  std::fprintf(stderr, "bench_bus_broker: %s: %s\n", what.c_str(), s.ToString().c_str());
  std::exit(1);
}

// --- The store and the broker, shared by every benchmark --------------------------------------

char g_dir[512];

extern "C" void OnSignal(int sig) {
  // Not async-signal-safe in general, but the process is going away and nothing else runs.
  std::error_code ec;
  fs::remove_all(g_dir, ec);
  std::signal(sig, SIG_DFL);
  std::raise(sig);
}

struct Env {
  std::unique_ptr<storage::Engine> engine;
  std::unique_ptr<bus::Broker> broker;

  Env() {
    const char* parent = std::getenv("BENCH_TMPDIR");
    std::string tmpl = std::string(parent && *parent ? parent : "/tmp") + "/tributary-busbench-XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    if (!mkdtemp(buf.data())) {
      std::perror("bench_bus_broker: mkdtemp");
      std::exit(1);
    }
    std::snprintf(g_dir, sizeof g_dir, "%s", buf.data());
    std::signal(SIGINT, OnSignal);
    std::signal(SIGTERM, OnSignal);
    struct statfs sfs {};
    if (statfs(g_dir, &sfs) == 0 && sfs.f_type == 0x01021994 /* TMPFS_MAGIC */)
      std::fprintf(stderr, "bench_bus_broker: warning: %s is tmpfs; fsync costs nothing there\n", g_dir);
    auto e = storage::OpenSqlite({.path = std::string(g_dir) + "/bus.db"});
    if (!e.ok()) Die("open the store", e.status());
    engine = std::move(e).value();
    auto b = bus::Broker::Open(*engine, SystemClock::Get());
    if (!b.ok()) Die("open the broker", b.status());
    broker = std::move(b).value();
  }
  ~Env() {
    broker->Shutdown();
    engine->Shutdown();
    broker.reset();
    engine.reset();
    std::error_code ec;
    fs::remove_all(g_dir, ec);
  }
};

Env& GetEnv() {
  static Env env;
  return env;
}

void CreateSessionQueue(const std::string& name) {
  bus::EntityProperties p;
  p.requires_session = true;
  Status s = GetEnv().broker->CreateQueue(name, p);
  if (!s.ok()) Die("create " + name, s);
}

void DeleteQueue(const std::string& name) { (void)GetEnv().broker->DeleteEntity(name); }

// Waits for a broker callback.
template <typename T>
T Wait(const std::function<void(bus::Done<T>)>& call, const char* what) {
  std::promise<Result<T>> p;
  auto f = p.get_future();
  call([&p](Result<T> r) { p.set_value(std::move(r)); });
  Result<T> r = f.get();
  if (!r.ok()) Die(what, r.status());
  return std::move(r).value();
}

std::vector<bus::OutgoingMessage> Batch(const std::string& prefix, int sessions) {
  static const std::string body(kBodyBytes, 'x');
  std::vector<bus::OutgoingMessage> out(kBatch);
  for (int i = 0; i < kBatch; ++i) {
    out[i].properties.session_id = prefix + std::to_string(i % sessions);
    out[i].body = body;
  }
  return out;
}

void Send(const std::string& queue, std::vector<bus::OutgoingMessage> msgs) {
  Wait<std::vector<int64_t>>(
      [&](bus::Done<std::vector<int64_t>> d) { GetEnv().broker->Send(queue, std::move(msgs), std::move(d)); }, "send");
}

// Completes every lock token concurrently and waits for all of them.
void CompleteAll(const std::string& queue, const std::vector<bus::ReceivedMessage>& msgs) {
  std::mutex mu;
  std::condition_variable cv;
  size_t left = msgs.size();
  Status failed;
  for (const auto& m : msgs) {
    GetEnv().broker->Complete(queue, bus::SubQueue::kNone, m.lock_token, [&](Result<bool> r) {
      std::lock_guard lock(mu);
      if (!r.ok())
        failed = r.status();
      else if (!*r)
        failed = Status(Code::kFailedPrecondition, "lock lost");
      if (--left == 0) cv.notify_all();
    });
  }
  std::unique_lock lock(mu);
  cv.wait(lock, [&] { return left == 0; });
  if (!failed.ok()) Die("complete", failed);
}

// --- Benchmarks ---------------------------------------------------------------------------------

void BM_Send(benchmark::State& state) {
  const std::string queue = "send";
  if (state.thread_index() == 0) CreateSessionQueue(queue);
  const std::string prefix = "t" + std::to_string(state.thread_index()) + "-";
  for (auto _ : state) Send(queue, Batch(prefix, kBatch));
  state.SetItemsProcessed(state.iterations() * kBatch);
  state.SetBytesProcessed(state.iterations() * kBatch * static_cast<int64_t>(kBodyBytes));
  if (state.thread_index() == 0) DeleteQueue(queue);
}
BENCHMARK(BM_Send)->Threads(1)->Threads(4)->UseRealTime();

void BM_Cycle(benchmark::State& state) {
  const int per_session = static_cast<int>(state.range(0));
  const int sessions = kBatch / per_session;
  const std::string queue = "cycle";
  if (state.thread_index() == 0) CreateSessionQueue(queue);
  const std::string prefix = "t" + std::to_string(state.thread_index()) + "-";
  bus::Broker& broker = *GetEnv().broker;
  bus::ReceiveOptions o;
  o.max_messages = kBatch;
  for (auto _ : state) {
    Send(queue, Batch(prefix, sessions));
    int received = 0;
    for (int s = 0; s < sessions; ++s) {
      auto lock = Wait<bus::SessionLock>(
          [&](bus::Done<bus::SessionLock> d) {
            broker.AcceptSession(queue, prefix + std::to_string(s), std::chrono::milliseconds(0), std::move(d));
          },
          "accept");
      auto msgs = Wait<std::vector<bus::ReceivedMessage>>(
          [&](bus::Done<std::vector<bus::ReceivedMessage>> d) {
            broker.ReceiveFromSession(queue, lock, o, std::move(d));
          },
          "receive");
      received += static_cast<int>(msgs.size());
      CompleteAll(queue, msgs);
      Status st = broker.ReleaseSession(queue, lock);
      if (!st.ok()) Die("release", st);
    }
    if (received != kBatch) {
      state.SkipWithError("received fewer messages than sent");
      break;
    }
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
  if (state.thread_index() == 0) DeleteQueue(queue);
}
BENCHMARK(BM_Cycle)->ArgName("per_session")->Arg(100)->Arg(10)->Arg(1)->Threads(1)->Threads(4)->UseRealTime();

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  GetEnv();
  benchmark::AddCustomContext("store", g_dir);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
