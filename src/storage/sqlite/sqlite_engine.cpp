// SQLite implementation of the storage engine: one writer thread that commits queued jobs
// together (group commit), and a pool of read connections (WAL snapshots).

#include <sqlite3.h>

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "tributary/storage/engine.h"

namespace tributary::storage {
namespace {

Status SqliteError(sqlite3* db, int rc, std::string_view what) {
  std::string msg(what);
  msg += ": ";
  msg += db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  int primary = rc & 0xff;
  if (primary == SQLITE_CONSTRAINT) {
    return {Code::kAlreadyExists, msg, err::kDuplicateRecord};
  }
  if (primary == SQLITE_BUSY || primary == SQLITE_LOCKED) return {Code::kUnavailable, msg, err::kInternalError};
  if (primary == SQLITE_TOOBIG) return {Code::kInvalidArgument, msg, err::kPayloadError};
  return Internal(msg);
}

class SqliteRow final : public Row {
 public:
  explicit SqliteRow(sqlite3_stmt* s) : s_(s) {}
  int size() const override { return sqlite3_column_count(s_); }
  ValueKind kind(int i) const override {
    switch (sqlite3_column_type(s_, i)) {
      case SQLITE_INTEGER:
        return ValueKind::kInt;
      case SQLITE_FLOAT:
        return ValueKind::kReal;
      case SQLITE_TEXT:
        return ValueKind::kText;
      case SQLITE_BLOB:
        return ValueKind::kBlob;
      default:
        return ValueKind::kNull;
    }
  }
  int64_t Int(int i) const override { return sqlite3_column_int64(s_, i); }
  double Real(int i) const override { return sqlite3_column_double(s_, i); }
  std::string_view Text(int i) const override {
    const void* p = sqlite3_column_blob(s_, i);
    int n = sqlite3_column_bytes(s_, i);
    return p ? std::string_view(static_cast<const char*>(p), static_cast<size_t>(n)) : std::string_view();
  }

 private:
  sqlite3_stmt* s_;
};

class SqliteConnection final : public Connection {
 public:
  explicit SqliteConnection(sqlite3* db) : db_(db) {}
  ~SqliteConnection() override {
    for (auto& [sql, st] : cache_) sqlite3_finalize(st);
    sqlite3_close_v2(db_);
  }

  Result<int64_t> Exec(std::string_view sql, std::span<const SqlValue> params = {}) override {
    ASSIGN_OR_RETURN(sqlite3_stmt * st, Prepare(sql));
    RETURN_IF_ERROR(Bind(st, params));
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc != SQLITE_DONE) return SqliteError(db_, rc, "statement failed");
    return static_cast<int64_t>(sqlite3_changes64(db_));
  }

  Status Query(std::string_view sql, std::span<const SqlValue> params, const RowCallback& on_row) override {
    ASSIGN_OR_RETURN(sqlite3_stmt * st, Prepare(sql));
    RETURN_IF_ERROR(Bind(st, params));
    SqliteRow row(st);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
      if (!on_row(row)) {
        rc = SQLITE_DONE;
        break;
      }
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc != SQLITE_DONE) return SqliteError(db_, rc, "query failed");
    return Status::Ok();
  }

  Status ExecScript(std::string_view sql) override {
    std::string s(sql);
    char* errmsg = nullptr;
    int rc = sqlite3_exec(db_, s.c_str(), nullptr, nullptr, &errmsg);
    if (rc != SQLITE_OK) {
      std::string m = errmsg ? errmsg : sqlite3_errstr(rc);
      sqlite3_free(errmsg);
      return Internal("schema statement failed: " + m);
    }
    // DDL may invalidate cached statements' assumptions; SQLite re-prepares them itself.
    return Status::Ok();
  }

  sqlite3* db() const { return db_; }

 private:
  Result<sqlite3_stmt*> Prepare(std::string_view sql) {
    auto it = cache_.find(sql);  // heterogeneous lookup: no copy of the SQL text per statement
    if (it != cache_.end()) return it->second;
    if (cache_.size() >= kMaxCached) {
      for (auto& [k, st] : cache_) sqlite3_finalize(st);
      cache_.clear();
    }
    sqlite3_stmt* st = nullptr;
    int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT, &st, nullptr);
    if (rc != SQLITE_OK) return SqliteError(db_, rc, "prepare failed");
    cache_.emplace(std::string(sql), st);
    return st;
  }

  Status Bind(sqlite3_stmt* st, std::span<const SqlValue> params) {
    for (size_t i = 0; i < params.size(); ++i) {
      int idx = static_cast<int>(i + 1);
      int rc = std::visit(
          [&](const auto& v) -> int {
            using T = std::decay_t<decltype(v)>;
            if constexpr (std::is_same_v<T, std::monostate>)
              return sqlite3_bind_null(st, idx);
            else if constexpr (std::is_same_v<T, int64_t>)
              return sqlite3_bind_int64(st, idx, v);
            else if constexpr (std::is_same_v<T, double>)
              return sqlite3_bind_double(st, idx, v);
            // SQLITE_STATIC: `params` outlives the statement's use of them (Exec and Query step,
            // reset and clear the bindings before they return), so SQLite need not copy them.
            else if constexpr (std::is_same_v<T, std::string>)
              return sqlite3_bind_text64(st, idx, v.data(), v.size(), SQLITE_STATIC, SQLITE_UTF8);
            else
              return sqlite3_bind_blob64(st, idx, v.bytes.data(), v.bytes.size(), SQLITE_STATIC);
          },
          params[i]);
      if (rc != SQLITE_OK) {
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        return SqliteError(db_, rc, "bind failed");
      }
    }
    return Status::Ok();
  }

  // Hashes std::string and std::string_view alike, so lookups by string_view need no copy.
  struct TextHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };

  static constexpr size_t kMaxCached = 2048;
  sqlite3* db_;
  std::unordered_map<std::string, sqlite3_stmt*, TextHash, std::equal_to<>> cache_;
};

enum class Role : uint8_t { kWriter, kReader, kCheckpointer };

Result<std::unique_ptr<SqliteConnection>> OpenConnection(const SqliteOptions& o, Role role) {
  const bool writer = role == Role::kWriter;
  // Memory statistics take a global mutex on every allocation; readers on two cores contend on it.
  static const int configured = sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
  (void)configured;
  sqlite3* db = nullptr;
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
  int rc = sqlite3_open_v2(o.path.c_str(), &db, flags, nullptr);
  if (rc != SQLITE_OK) {
    Status s = SqliteError(db, rc, "cannot open " + o.path);
    sqlite3_close_v2(db);
    return s;
  }
  auto conn = std::make_unique<SqliteConnection>(db);
  sqlite3_busy_timeout(db, 10000);
  std::string pragmas = "PRAGMA journal_mode=WAL; PRAGMA foreign_keys=OFF; PRAGMA cache_size=-65536;";
  pragmas += o.synchronous_full ? "PRAGMA synchronous=FULL;" : "PRAGMA synchronous=NORMAL;";
  if (role == Role::kReader) pragmas += "PRAGMA query_only=1;";
  // The writer's savepoint journals (one savepoint per job, see RunBatch) stay in memory: with the
  // default temp store they spill to a temporary file past 64 KiB, and a 1,000-row bulk job would
  // write a few hundred KiB there, page by page, for nothing (the journal dies with the savepoint).
  // Readers keep the default, so large sorts do not hold memory.
  if (writer) pragmas += "PRAGMA temp_store=MEMORY;";
  RETURN_IF_ERROR(conn->ExecScript(pragmas));
  return conn;
}

struct Job {
  WriteFn fn;
  WriteDone done;
};

// WAL checkpoints. SQLite's default runs a checkpoint on the committing connection once the WAL
// holds 1,000 pages, so the writer thread used to copy every page a second time (WAL → database
// file) and wait for the database file's fsync between two batches. Here the writer only asks,
// and a thread of its own runs PASSIVE checkpoints on another connection, concurrently with the
// next batches. A commit is durable once the WAL is synced, as before; checkpoints only move
// committed pages into the database file.
//
// SQLite restarts the WAL from its beginning only in a write transaction that started when the WAL
// was entirely checkpointed, which a busy writer, beginning its next batch right after each
// commit, rarely sees while the checkpointer is still running. So once the WAL passes
// kMaxWalFrames the writer waits for the running checkpoint and finishes it itself, as SQLite's
// default would: the WAL stays below about kMaxWalFrames pages plus one batch.
class Checkpointer {
 public:
  static constexpr int kCheckpointFrames = 1000;  // SQLite's default wal_autocheckpoint
  static constexpr int kMaxWalFrames = 4096;

  explicit Checkpointer(std::unique_ptr<SqliteConnection> conn) : conn_(std::move(conn)) {
    thread_ = std::thread([this] { Loop(); });
  }
  ~Checkpointer() { Stop(); }

  // Installs the commit hook on the writer's connection (replaces SQLite's auto-checkpoint).
  void Attach(sqlite3* writer) { sqlite3_wal_hook(writer, &Checkpointer::OnCommit, this); }

  // Writer thread, before a batch: keeps the WAL bounded (see above).
  void BeforeBatch(sqlite3* writer) {
    if (wal_frames_ < kMaxWalFrames) return;
    {
      std::unique_lock lock(mu_);
      done_cv_.wait(lock, [this] { return !running_; });
    }
    sqlite3_wal_checkpoint_v2(writer, nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
    wal_frames_ = 0;  // the next commit reports the WAL's new size
  }

  void Stop() {
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
      stopping_ = true;
      cv_.notify_all();
    }
    if (thread_.joinable()) thread_.join();
    conn_.reset();
  }

 private:
  // SQLite calls this on the writer thread after every commit with the WAL's size in pages.
  static int OnCommit(void* self, sqlite3*, const char*, int frames) {
    auto* c = static_cast<Checkpointer*>(self);
    c->wal_frames_ = frames;
    if (frames >= kCheckpointFrames) {
      std::lock_guard lock(c->mu_);
      c->requested_ = true;
      c->cv_.notify_one();
    }
    return SQLITE_OK;
  }

  void Loop() {
    for (;;) {
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [this] { return stopping_ || requested_; });
        if (stopping_) return;
        requested_ = false;
        running_ = true;
      }
      // PASSIVE: copies what it can without waiting for the writer or readers. Failures (a
      // reader holding an old snapshot, a busy lock) only leave pages for the next checkpoint.
      sqlite3_wal_checkpoint_v2(conn_->db(), nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
      {
        std::lock_guard lock(mu_);
        running_ = false;
      }
      done_cv_.notify_all();
    }
  }

  std::unique_ptr<SqliteConnection> conn_;
  int wal_frames_ = 0;  // writer thread only
  std::mutex mu_;
  std::condition_variable cv_, done_cv_;
  bool requested_ = false, running_ = false, stopping_ = false;
  std::thread thread_;
};

class SqliteEngine final : public Engine {
 public:
  SqliteEngine(SqliteOptions o, std::unique_ptr<SqliteConnection> writer,
               std::unique_ptr<SqliteConnection> checkpointer)
      : options_(std::move(o)), writer_conn_(std::move(writer)), checkpointer_(std::move(checkpointer)) {
    checkpointer_.Attach(writer_conn_->db());
    thread_ = std::thread([this] { WriterLoop(); });
  }

  ~SqliteEngine() override {
    Shutdown();
    for (auto* c : idle_readers_) delete c;
  }

  ReadLease Read() override {
    Connection* c = nullptr;
    {
      std::lock_guard lock(read_mu_);
      if (!idle_readers_.empty()) {
        c = idle_readers_.back();
        idle_readers_.pop_back();
      }
    }
    if (!c) {
      auto opened = OpenConnection(options_, Role::kReader);
      if (!opened.ok()) {
        // Cannot open another reader (file descriptors exhausted?): fall back to a blocking wait.
        std::unique_lock lock(read_mu_);
        read_cv_.wait(lock, [this] { return !idle_readers_.empty(); });
        c = idle_readers_.back();
        idle_readers_.pop_back();
      } else {
        c = opened->release();
      }
    }
    return ReadLease(c, [this](Connection* conn) {
      std::lock_guard lock(read_mu_);
      if (idle_readers_.size() >= static_cast<size_t>(options_.read_connections) * 4) {
        delete conn;
        return;
      }
      idle_readers_.push_back(conn);
      read_cv_.notify_one();
    });
  }

  void Write(WriteFn fn, WriteDone done) override {
    {
      std::lock_guard lock(mu_);
      if (!stopping_) {
        queue_.push_back(Job{std::move(fn), std::move(done)});
        cv_.notify_one();
        return;
      }
    }
    done(Status(Code::kUnavailable, "the store is shutting down"));
  }

  void SetPreCommitHook(std::function<Status(Connection&)> hook) override { hook_ = std::move(hook); }

  void Shutdown() override {
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
      stopping_ = true;
      cv_.notify_all();
    }
    if (thread_.joinable()) thread_.join();
    checkpointer_.Stop();  // before the writer's connection closes (the last one checkpoints)
    writer_conn_.reset();
  }

  EngineStats stats() const override {
    std::lock_guard lock(mu_);
    return stats_;
  }

 private:
  void WriterLoop() {
    std::vector<Job> batch;
    std::vector<Status> results;
    for (;;) {
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
        if (queue_.empty() && stopping_) return;
        while (!queue_.empty() && batch.size() < static_cast<size_t>(options_.max_batch)) {
          batch.push_back(std::move(queue_.front()));
          queue_.pop_front();
        }
      }
      RunBatch(batch, results);
      {
        std::lock_guard lock(mu_);
        stats_.commits++;
        stats_.jobs += batch.size();
        stats_.max_batch = std::max<uint64_t>(stats_.max_batch, batch.size());
      }
      for (size_t i = 0; i < batch.size(); ++i) batch[i].done(std::move(results[i]));
      batch.clear();
      results.clear();
    }
  }

  void RunBatch(std::vector<Job>& batch, std::vector<Status>& results) {
    SqliteConnection& c = *writer_conn_;
    checkpointer_.BeforeBatch(c.db());
    auto begin = c.Exec("BEGIN IMMEDIATE");
    if (!begin.ok()) {
      for (size_t i = 0; i < batch.size(); ++i) results.push_back(begin.status());
      return;
    }
    bool any_ok = false;
    for (auto& job : batch) {
      (void)c.Exec("SAVEPOINT job");
      Status s = job.fn(c);
      if (s.ok()) {
        auto rel = c.Exec("RELEASE job");
        if (!rel.ok())
          s = rel.status();
        else
          any_ok = true;
      }
      if (!s.ok()) {
        (void)c.Exec("ROLLBACK TO job");
        (void)c.Exec("RELEASE job");
      }
      results.push_back(std::move(s));
    }
    Status commit_status;
    if (any_ok && hook_) commit_status = hook_(c);
    if (commit_status.ok()) {
      auto r = c.Exec("COMMIT");
      if (!r.ok()) commit_status = r.status();
    }
    if (!commit_status.ok()) {
      (void)c.Exec("ROLLBACK");
      for (auto& r : results)
        if (r.ok()) r = commit_status;
    }
  }

  SqliteOptions options_;
  std::unique_ptr<SqliteConnection> writer_conn_;
  Checkpointer checkpointer_;
  std::function<Status(Connection&)> hook_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> queue_;
  bool stopping_ = false;
  EngineStats stats_;
  std::thread thread_;

  std::mutex read_mu_;
  std::condition_variable read_cv_;
  std::vector<Connection*> idle_readers_;
};

}  // namespace

Result<std::unique_ptr<Engine>> OpenSqlite(const SqliteOptions& options) {
  ASSIGN_OR_RETURN(auto writer, OpenConnection(options, Role::kWriter));
  ASSIGN_OR_RETURN(auto checkpointer, OpenConnection(options, Role::kCheckpointer));
  return std::unique_ptr<Engine>(std::make_unique<SqliteEngine>(options, std::move(writer), std::move(checkpointer)));
}

}  // namespace tributary::storage
