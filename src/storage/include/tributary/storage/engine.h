#pragma once
// The storage engine interface: SQL over connections, one writer with group commit, many readers.
//
// Contract (DESIGN.md §4): a write job runs on the engine's single writer thread inside a
// transaction shared with other queued jobs (each job in its own savepoint, so one job's failure
// does not undo another's). A job's completion is called only after the shared COMMIT is durable
// on disk; a 2xx built from that completion therefore means durable. Reads use pooled connections
// that see committed data only.

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <variant>

#include "tributary/base/status.h"

namespace tributary::storage {

struct Blob {
  std::string bytes;
};

// A value bound to or read from SQL. Text is UTF-8.
using SqlValue = std::variant<std::monostate, int64_t, double, std::string, Blob>;

enum class ValueKind : uint8_t { kNull, kInt, kReal, kText, kBlob };

// One result row, valid only during the row callback.
class Row {
 public:
  virtual ~Row() = default;
  virtual int size() const = 0;
  virtual ValueKind kind(int i) const = 0;
  bool is_null(int i) const { return kind(i) == ValueKind::kNull; }
  virtual int64_t Int(int i) const = 0;
  virtual double Real(int i) const = 0;
  virtual std::string_view Text(int i) const = 0;  // also blob bytes
};

using RowCallback = std::function<bool(const Row&)>;  // return false to stop

// A database connection. Not thread-safe: owned by one thread at a time.
class Connection {
 public:
  virtual ~Connection() = default;
  // Runs one statement; returns the number of rows it changed. Statements are cached prepared.
  virtual Result<int64_t> Exec(std::string_view sql, std::span<const SqlValue> params = {}) = 0;
  // Runs a query, calling `on_row` per row until it returns false.
  virtual Status Query(std::string_view sql, std::span<const SqlValue> params, const RowCallback& on_row) = 0;
  // Runs several parameterless statements (DDL).
  virtual Status ExecScript(std::string_view sql) = 0;
};

// A read connection borrowed from the pool; returned when destroyed.
class ReadLease {
 public:
  ReadLease(Connection* c, std::function<void(Connection*)> release) : c_(c), release_(std::move(release)) {}
  ReadLease(ReadLease&& o) noexcept : c_(o.c_), release_(std::move(o.release_)) { o.c_ = nullptr; }
  ReadLease(const ReadLease&) = delete;
  ~ReadLease() {
    if (c_) release_(c_);
  }
  Connection& operator*() const { return *c_; }
  Connection* operator->() const { return c_; }

 private:
  Connection* c_;
  std::function<void(Connection*)> release_;
};

using WriteFn = std::function<Status(Connection&)>;
using WriteDone = std::function<void(Status)>;

struct EngineStats {
  uint64_t commits = 0;    // durable group commits
  uint64_t jobs = 0;       // write jobs completed (ok or not)
  uint64_t max_batch = 0;  // largest number of jobs in one commit
};

class Engine {
 public:
  virtual ~Engine() = default;
  // Borrows a read connection. Thread-safe.
  virtual ReadLease Read() = 0;
  // Queues a write job. `done` runs on the writer thread after commit (keep it short: post work
  // elsewhere). After Shutdown, jobs complete with kUnavailable. Thread-safe.
  virtual void Write(WriteFn fn, WriteDone done) = 0;
  // Queues a job and waits for its durable completion. Must not be called on the writer thread.
  Status WriteSync(WriteFn fn);
  // Called on the writer thread before every COMMIT with the batch's connection; a failure
  // fails the whole batch. Set once, before the first write.
  virtual void SetPreCommitHook(std::function<Status(Connection&)> hook) = 0;
  // Finishes queued jobs, then stops the writer. Idempotent.
  virtual void Shutdown() = 0;
  virtual EngineStats stats() const = 0;
};

struct SqliteOptions {
  std::string path;          // database file
  int read_connections = 8;  // pool size
  int max_batch = 1024;      // jobs per group commit
  bool synchronous_full = true;
};

// Opens (creating if needed) a SQLite database in WAL mode with synchronous=FULL.
Result<std::unique_ptr<Engine>> OpenSqlite(const SqliteOptions& options);

// "?,?,…" with n parameters, for `x IN (…)`.
std::string Placeholders(size_t n);

}  // namespace tributary::storage
