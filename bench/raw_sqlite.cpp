// bench_raw_sqlite — the raw-SQLite ceiling for the operations Tributary serves over HTTP.
//
// Everything here goes straight through the SQLite C API with prepared statements, so the numbers
// are what the storage engine can do on this machine with no HTTP, JSON, auth or OData layer in
// front of it. bench/webapi.sh puts them next to the server's figures as "ratio = Tributary / raw".
//
// Operations (all reported as items/s, measured on wall-clock time):
//   BM_PointLookup        SELECT * ... WHERE accountid = ?           (1 and 2 threads, own connections)
//   BM_InsertCommit       one INSERT + COMMIT, synchronous=FULL       (one fsync per row)
//   BM_InsertBatch64      64 INSERTs per transaction, synchronous=FULL (group-commit ceiling)
//   BM_InsertTxn1000      1,000 INSERTs in one transaction
//   BM_FilterIndexed      WHERE accountnumber = ? LIMIT 50 (indexed)  (1 and 2 threads)
//   BM_AccountInsert1000  1,000 INSERTs per fsync'd commit into a copy of Tributary's real account
//                         table (63 columns, WITHOUT ROWID, 7 indexes + the unique alternate-key
//                         index on accountnumber): the CreateMultiple / UpsertMultiple ceiling
//   BM_AccountUpdate1000/by_id, /by_key
//                         1,000 UPDATEs per fsync'd commit of existing rows of that table, found by
//                         primary key or by the unique accountnumber: the update-path ceiling
//
// The databases live in a fresh directory /tmp/tributary-bench-XXXXXX (override the parent with
// BENCH_TMPDIR) and are removed at exit, including on SIGINT/SIGTERM. Row count: BENCH_ROWS
// (default 100000). The BM_Account* table is created and filled with BENCH_BULK_ROWS rows (default
// 100000) the first time one of them runs, so a --benchmark_filter without them does not pay for it.

#include <benchmark/benchmark.h>
#include <sqlite3.h>

#include <sys/statfs.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <mutex>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

constexpr int kAccountNumberCardinality = 2000;  // 100k rows / 2000 values = 50 rows per value

// ---------------------------------------------------------------------------------------------
// Small SQLite helpers
// ---------------------------------------------------------------------------------------------

[[noreturn]] void die(sqlite3* db, const char* what) {
  std::fprintf(stderr, "bench_raw_sqlite: %s: %s\n", what, db ? sqlite3_errmsg(db) : "(no db)");
  std::exit(1);
}

void exec(sqlite3* db, const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::fprintf(stderr, "bench_raw_sqlite: %s: %s\n", sql, err ? err : "?");
    sqlite3_free(err);
    std::exit(1);
  }
}

class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) : db_(db) {
    if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s_, nullptr) != SQLITE_OK) die(db, sql);
  }
  ~Stmt() { sqlite3_finalize(s_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  sqlite3_stmt* get() const { return s_; }
  void text(int i, const std::string& v) {
    sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  }
  void int64(int i, std::int64_t v) { sqlite3_bind_int64(s_, i, v); }
  void real(int i, double v) { sqlite3_bind_double(s_, i, v); }
  void null(int i) { sqlite3_bind_null(s_, i); }
  int step() { return sqlite3_step(s_); }
  void reset() {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }
  void run() {  // step a statement that returns no rows
    if (step() != SQLITE_DONE) die(db_, sqlite3_sql(s_));
    sqlite3_reset(s_);
  }

 private:
  sqlite3* db_;
  sqlite3_stmt* s_ = nullptr;
};

class Conn {
 public:
  // synchronous: "FULL" (fsync the WAL on every commit) or "NORMAL".
  explicit Conn(const std::string& path, const char* synchronous = "FULL") {
    if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        nullptr) != SQLITE_OK)
      die(db_, "open");
    sqlite3_busy_timeout(db_, 5000);
    exec(db_, "PRAGMA journal_mode=WAL");
    std::string sync = std::string("PRAGMA synchronous=") + synchronous;
    exec(db_, sync.c_str());
    exec(db_, "PRAGMA cache_size=-65536");  // 64 MiB page cache per connection
    exec(db_, "PRAGMA temp_store=MEMORY");
    exec(db_, "PRAGMA foreign_keys=OFF");
  }
  ~Conn() { sqlite3_close_v2(db_); }
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;
  sqlite3* get() const { return db_; }

 private:
  sqlite3* db_ = nullptr;
};

// ---------------------------------------------------------------------------------------------
// Time-ordered GUID-like keys: 48-bit millisecond timestamp, then a 16-bit sequence, then 64
// random bits, formatted 8-4-4-4-12 lowercase hex (UUIDv7-like; sorts by creation time, so
// inserts append to the right edge of the primary-key B-tree as the server's keys do).
// ---------------------------------------------------------------------------------------------

class GuidGen {
 public:
  explicit GuidGen(std::uint64_t seed) : rng_(seed) {}
  std::string next() {
    auto ms = static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count());
    if (ms <= last_ms_) {
      // Same (or earlier) millisecond: keep monotonic by bumping the sequence.
      if (++seq_ == 0) ++last_ms_;
      ms = last_ms_;
    } else {
      last_ms_ = ms;
      seq_ = 0;
    }
    std::uint64_t r = rng_();
    char buf[37];
    std::snprintf(buf, sizeof buf, "%08x-%04x-%04x-%04x-%012llx", static_cast<unsigned>(ms >> 16),
                  static_cast<unsigned>(ms & 0xffff), static_cast<unsigned>(seq_),
                  static_cast<unsigned>((r >> 48) & 0xffff), static_cast<unsigned long long>(r & 0xffffffffffffULL));
    return buf;
  }

 private:
  std::mt19937_64 rng_;
  std::uint64_t last_ms_ = 0;
  std::uint16_t seq_ = 0;
};

// ---------------------------------------------------------------------------------------------
// An account-like table: 21 columns, TEXT guid primary key (rowid table), index on accountnumber.
// ---------------------------------------------------------------------------------------------

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS account (
    accountid            TEXT PRIMARY KEY NOT NULL,
    name                 TEXT,
    accountnumber        TEXT,
    numberofemployees    INTEGER,
    revenue              REAL,
    telephone1           TEXT,
    emailaddress1        TEXT,
    websiteurl           TEXT,
    address1_line1       TEXT,
    address1_city        TEXT,
    address1_postalcode  TEXT,
    address1_country     TEXT,
    description          TEXT,
    statecode            INTEGER NOT NULL DEFAULT 0,
    statuscode           INTEGER NOT NULL DEFAULT 1,
    ownerid              TEXT,
    createdby            TEXT,
    modifiedby           TEXT,
    createdon            TEXT,
    modifiedon           TEXT,
    versionnumber        INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS account_accountnumber ON account(accountnumber);
)sql";

constexpr const char* kInsertSql =
    "INSERT INTO account (accountid, name, accountnumber, numberofemployees, revenue, telephone1,"
    " emailaddress1, websiteurl, address1_line1, address1_city, address1_postalcode,"
    " address1_country, description, statecode, statuscode, ownerid, createdby, modifiedby,"
    " createdon, modifiedon, versionnumber)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, 0, 1, ?14, ?14, ?14, ?15, ?15,"
    " ?16)";

constexpr const char* kOwnerId = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";

std::string account_number(std::uint64_t n) { return "A-" + std::to_string(n % kAccountNumberCardinality); }

std::string now_iso() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// Binds one realistic row (roughly what POST /accounts with 5 attributes plus system columns
// stores) and runs the insert.
void insert_row(Stmt& ins, const std::string& id, std::uint64_t n, const std::string& when) {
  static std::atomic<std::int64_t> version{1};
  ins.text(1, id);
  ins.text(2, "Account " + std::to_string(n));
  ins.text(3, account_number(n));
  ins.int64(4, static_cast<std::int64_t>(n % 5000));
  ins.real(5, 1000.5 + static_cast<double>(n % 100000));
  ins.text(6, "+1-555-" + std::to_string(1000000 + n % 9000000));
  ins.null(7);
  ins.null(8);
  ins.null(9);
  ins.null(10);
  ins.null(11);
  ins.null(12);
  ins.null(13);
  ins.text(14, kOwnerId);
  ins.text(15, when);
  ins.int64(16, version.fetch_add(1, std::memory_order_relaxed));
  ins.run();
  sqlite3_clear_bindings(ins.get());
}

// ---------------------------------------------------------------------------------------------
// Global fixture: temp dir, a read DB and a write DB, each seeded with BENCH_ROWS rows.
// ---------------------------------------------------------------------------------------------

struct Env {
  std::string dir;
  std::string read_db;
  std::string write_db;
  std::string account_db;        // BM_Account*: Tributary's account table, created on first use
  std::vector<std::string> ids;  // primary keys in the read DB
  std::uint64_t rows = 100000;
};

Env g_env;
// Paths kept as plain char arrays so the signal handler can unlink them without allocating.
char g_cleanup_paths[16][512];
int g_cleanup_count = 0;
char g_cleanup_dir[512];

void cleanup_files() {
  for (int i = 0; i < g_cleanup_count; ++i) unlink(g_cleanup_paths[i]);
  if (g_cleanup_dir[0]) rmdir(g_cleanup_dir);
}

extern "C" void on_signal(int sig) {
  cleanup_files();
  std::signal(sig, SIG_DFL);
  std::raise(sig);
}

void register_cleanup(const std::string& db) {
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
    if (g_cleanup_count >= 16) return;
    std::snprintf(g_cleanup_paths[g_cleanup_count++], 512, "%s%s", db.c_str(), suffix);
  }
}

void seed(const std::string& path, std::uint64_t rows, std::vector<std::string>* ids_out) {
  Conn c(path);
  exec(c.get(), kSchema);
  GuidGen gen(0x5eed0000u + rows);
  Stmt ins(c.get(), kInsertSql);
  const std::string when = now_iso();
  exec(c.get(), "BEGIN");
  for (std::uint64_t n = 0; n < rows; ++n) {
    std::string id = gen.next();
    insert_row(ins, id, n, when);
    if (ids_out) ids_out->push_back(std::move(id));
  }
  exec(c.get(), "COMMIT");
  exec(c.get(), "PRAGMA wal_checkpoint(TRUNCATE)");
  exec(c.get(), "ANALYZE");
}

void setup_env() {
  if (const char* r = std::getenv("BENCH_ROWS")) g_env.rows = std::strtoull(r, nullptr, 10);
  if (g_env.rows < kAccountNumberCardinality) g_env.rows = kAccountNumberCardinality;

  std::string parent = "/tmp";
  if (const char* t = std::getenv("BENCH_TMPDIR"); t && *t) parent = t;
  std::string tmpl = parent + "/tributary-bench-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (!mkdtemp(buf.data())) {
    std::perror("bench_raw_sqlite: mkdtemp");
    std::exit(1);
  }
  g_env.dir = buf.data();
  std::snprintf(g_cleanup_dir, sizeof g_cleanup_dir, "%s", g_env.dir.c_str());
  g_env.read_db = g_env.dir + "/read.db";
  g_env.write_db = g_env.dir + "/write.db";
  g_env.account_db = g_env.dir + "/account.db";
  register_cleanup(g_env.read_db);
  register_cleanup(g_env.write_db);
  register_cleanup(g_env.account_db);
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  std::signal(SIGHUP, on_signal);

  struct statfs sfs {};
  if (statfs(g_env.dir.c_str(), &sfs) == 0 && sfs.f_type == 0x01021994 /* TMPFS_MAGIC */)
    std::fprintf(stderr,
                 "bench_raw_sqlite: WARNING: %s is on tmpfs; fsync is free there, so the "
                 "durable-insert figures are not meaningful. Set BENCH_TMPDIR to a disk.\n",
                 g_env.dir.c_str());

  auto t0 = std::chrono::steady_clock::now();
  g_env.ids.reserve(g_env.rows);
  seed(g_env.read_db, g_env.rows, &g_env.ids);
  seed(g_env.write_db, g_env.rows, nullptr);
  auto secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::fprintf(stderr, "bench_raw_sqlite: seeded 2 x %llu rows in %s in %.2f s (SQLite %s)\n",
               static_cast<unsigned long long>(g_env.rows), g_env.dir.c_str(), secs, sqlite3_libversion());
}

// ---------------------------------------------------------------------------------------------
// Benchmarks
// ---------------------------------------------------------------------------------------------

// Pulls the table and both indexes into this connection's page cache (not timed): a server keeps
// its connections open, so the ceiling is measured warm, not on a connection's first queries.
void warm(sqlite3* db) {
  for (const char* sql :
       {"SELECT count(*), sum(length(name)) FROM account", "SELECT count(*) FROM account WHERE accountid > ''",
        "SELECT count(*) FROM account WHERE accountnumber > ''"}) {
    Stmt s(db, sql);
    while (s.step() == SQLITE_ROW) {
    }
  }
}

// (a) Point lookup by primary key; materialises every column like a GET of the full record.
void BM_PointLookup(benchmark::State& state) {
  Conn c(g_env.read_db);
  warm(c.get());
  Stmt q(c.get(), "SELECT * FROM account WHERE accountid = ?1");
  std::mt19937_64 rng(1234 + static_cast<unsigned>(state.thread_index()));
  std::uniform_int_distribution<std::size_t> pick(0, g_env.ids.size() - 1);
  std::int64_t found = 0;
  for (auto _ : state) {
    const std::string& id = g_env.ids[pick(rng)];
    sqlite3_bind_text(q.get(), 1, id.data(), static_cast<int>(id.size()), SQLITE_STATIC);
    if (q.step() == SQLITE_ROW) {
      ++found;
      int n = sqlite3_column_count(q.get());
      for (int i = 0; i < n; ++i) {
        const unsigned char* v = sqlite3_column_text(q.get(), i);
        benchmark::DoNotOptimize(v);
        benchmark::DoNotOptimize(sqlite3_column_bytes(q.get(), i));
      }
    }
    sqlite3_reset(q.get());
  }
  if (found != static_cast<std::int64_t>(state.iterations())) state.SkipWithError("point lookup missed a row");
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}
BENCHMARK(BM_PointLookup)->Threads(1)->Threads(2)->UseRealTime();

// Shared by the insert benchmarks: one connection to the write DB, synchronous=FULL, WAL.
// `per_txn` rows per transaction; each benchmark iteration is one committed transaction.
void run_inserts(benchmark::State& state, int per_txn) {
  Conn c(g_env.write_db, "FULL");
  Stmt ins(c.get(), kInsertSql);
  Stmt begin(c.get(), "BEGIN IMMEDIATE");
  Stmt commit(c.get(), "COMMIT");
  GuidGen gen(std::random_device{}());
  std::mt19937_64 rng(99);
  const std::string when = now_iso();
  for (auto _ : state) {
    if (per_txn > 1) begin.run();
    for (int i = 0; i < per_txn; ++i) insert_row(ins, gen.next(), rng(), when);
    if (per_txn > 1) commit.run();  // per_txn == 1: autocommit == INSERT + COMMIT
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * per_txn);
  state.counters["txn/s"] = benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

// (b) One INSERT + COMMIT per row; synchronous=FULL means one WAL fsync per row.
void BM_InsertCommit(benchmark::State& state) { run_inserts(state, 1); }
BENCHMARK(BM_InsertCommit)->UseRealTime();

// (c) 64 INSERTs per transaction: what group commit can reach at best.
void BM_InsertBatch64(benchmark::State& state) { run_inserts(state, 64); }
BENCHMARK(BM_InsertBatch64)->UseRealTime();

// (d) 1,000 INSERTs in one transaction.
void BM_InsertTxn1000(benchmark::State& state) { run_inserts(state, 1000); }
BENCHMARK(BM_InsertTxn1000)->UseRealTime();

// (e) Indexed equality filter returning up to 50 rows, projecting the columns the Web API query
// selects ($select=name,accountnumber plus the primary key that is always returned). No ORDER BY:
// rows come back in rowid order, which for these time-ordered keys is also primary-key order.
void BM_FilterIndexed(benchmark::State& state) {
  Conn c(g_env.read_db);
  warm(c.get());
  Stmt q(c.get(), "SELECT accountid, name, accountnumber FROM account WHERE accountnumber = ?1 LIMIT 50");
  std::mt19937_64 rng(777 + static_cast<unsigned>(state.thread_index()));
  std::vector<std::string> values;
  values.reserve(kAccountNumberCardinality);
  for (int i = 0; i < kAccountNumberCardinality; ++i) values.push_back(account_number(i));
  std::uniform_int_distribution<std::size_t> pick(0, values.size() - 1);
  std::int64_t rows = 0;
  for (auto _ : state) {
    const std::string& v = values[pick(rng)];
    sqlite3_bind_text(q.get(), 1, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
    while (q.step() == SQLITE_ROW) {
      ++rows;
      for (int i = 0; i < 3; ++i) {
        benchmark::DoNotOptimize(sqlite3_column_text(q.get(), i));
        benchmark::DoNotOptimize(sqlite3_column_bytes(q.get(), i));
      }
    }
    sqlite3_reset(q.get());
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
  // Averaged (not summed) over threads so it reads as rows per query in every row of output.
  state.counters["rows/query"] =
      benchmark::Counter(state.iterations() ? static_cast<double>(rows) / static_cast<double>(state.iterations()) : 0.0,
                         benchmark::Counter::kAvgThreads);
}
BENCHMARK(BM_FilterIndexed)->Threads(1)->Threads(2)->UseRealTime();

// ---------------------------------------------------------------------------------------------
// Bulk-write ceilings on Tributary's own account table
// ---------------------------------------------------------------------------------------------

// The DDL that `tributary schema apply` produces for the standard account table with the alternate
// key of bench/schema.yaml (src/data/sql_schema.cpp: strings TEXT COLLATE NOCASE, date-times INTEGER
// milliseconds, lookups TEXT GUIDs, WITHOUT ROWID, one index per indexed column, one UNIQUE index
// per alternate key; an indexed column that leads an alternate key gets no second index).
// 63 columns, 7 indexes + 1 unique index. Keep it in step with the server:
// `sqlite3 DATA/tributary.db '.schema account'` prints the current one.
constexpr const char* kAccountTableSchema = R"sql(
CREATE TABLE IF NOT EXISTS "account" ("accountid" TEXT NOT NULL PRIMARY KEY, "name" TEXT COLLATE NOCASE,
 "accountnumber" TEXT COLLATE NOCASE, "parentaccountid" TEXT, "primarycontactid" TEXT,
 "telephone1" TEXT COLLATE NOCASE, "telephone2" TEXT COLLATE NOCASE, "fax" TEXT COLLATE NOCASE,
 "emailaddress1" TEXT COLLATE NOCASE, "websiteurl" TEXT COLLATE NOCASE, "address1_line1" TEXT COLLATE NOCASE,
 "address1_line2" TEXT COLLATE NOCASE, "address1_line3" TEXT COLLATE NOCASE, "address1_city" TEXT COLLATE NOCASE,
 "address1_stateorprovince" TEXT COLLATE NOCASE, "address1_postalcode" TEXT COLLATE NOCASE,
 "address1_country" TEXT COLLATE NOCASE, "address1_composite" TEXT COLLATE NOCASE,
 "address2_line1" TEXT COLLATE NOCASE, "address2_line2" TEXT COLLATE NOCASE, "address2_line3" TEXT COLLATE NOCASE,
 "address2_city" TEXT COLLATE NOCASE, "address2_stateorprovince" TEXT COLLATE NOCASE,
 "address2_postalcode" TEXT COLLATE NOCASE, "address2_country" TEXT COLLATE NOCASE,
 "address2_composite" TEXT COLLATE NOCASE, "industrycode" INTEGER, "customertypecode" INTEGER,
 "accountcategorycode" INTEGER, "revenue" REAL, "numberofemployees" INTEGER, "description" TEXT COLLATE NOCASE,
 "creditonhold" INTEGER, "creditlimit" REAL, "tickersymbol" TEXT COLLATE NOCASE, "sic" TEXT COLLATE NOCASE,
 "ownershipcode" INTEGER, "originatingleadid" TEXT, "preferredcontactmethodcode" INTEGER, "donotemail" INTEGER,
 "donotphone" INTEGER, "createdon" INTEGER, "modifiedon" INTEGER, "createdby" TEXT, "modifiedby" TEXT,
 "createdonbehalfby" TEXT, "modifiedonbehalfby" TEXT, "ownerid" TEXT, "ownerid_type" TEXT, "owninguser" TEXT,
 "owningteam" TEXT, "owningbusinessunit" TEXT, "statecode" INTEGER, "statuscode" INTEGER, "versionnumber" INTEGER,
 "overriddencreatedon" INTEGER, "importsequencenumber" INTEGER, "timezoneruleversionnumber" INTEGER,
 "utcconversiontimezonecode" INTEGER, "transactioncurrencyid" TEXT, "exchangerate" REAL, "revenue_base" REAL,
 "creditlimit_base" REAL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS "ix_account_name" ON "account" ("name");
CREATE INDEX IF NOT EXISTS "ix_account_parentaccountid" ON "account" ("parentaccountid");
CREATE INDEX IF NOT EXISTS "ix_account_primarycontactid" ON "account" ("primarycontactid");
CREATE INDEX IF NOT EXISTS "ix_account_emailaddress1" ON "account" ("emailaddress1");
CREATE INDEX IF NOT EXISTS "ix_account_originatingleadid" ON "account" ("originatingleadid");
CREATE INDEX IF NOT EXISTS "ix_account_ownerid" ON "account" ("ownerid");
CREATE INDEX IF NOT EXISTS "ix_account_owningbusinessunit" ON "account" ("owningbusinessunit");
CREATE UNIQUE INDEX IF NOT EXISTS "ak_account_new_accountnumber_key" ON "account" ("accountnumber");
)sql";

// The columns the server writes for a create with the 5 attributes bench/bulk.mjs sends: the
// attributes, then created/modified on and by, owner, owning user and business unit, state and
// status, version number, currency and exchange rate. Nothing else is bound (the server's INSERT
// lists only the columns it sets).
constexpr const char* kAccountInsertSql =
    "INSERT INTO account (accountid, name, accountnumber, numberofemployees, revenue, telephone1,"
    " createdon, modifiedon, createdby, modifiedby, ownerid, ownerid_type, owninguser,"
    " owningbusinessunit, statecode, statuscode, versionnumber, transactioncurrencyid, exchangerate)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?8, ?8, ?8, 'systemuser', ?8, ?9, 0, 1, ?10, ?11, 1.0)";

// What an upsert that finds the row writes: the 2 attributes bulk.mjs sends, modified on/by and the
// version number.
constexpr const char* kAccountUpdateByIdSql =
    "UPDATE account SET name = ?1, telephone1 = ?2, modifiedon = ?3, modifiedby = ?4, versionnumber = ?5"
    " WHERE accountid = ?6";
constexpr const char* kAccountUpdateByKeySql =
    "UPDATE account SET name = ?1, telephone1 = ?2, modifiedon = ?3, modifiedby = ?4, versionnumber = ?5"
    " WHERE accountnumber = ?6";

constexpr const char* kBusinessUnitId = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a00";
constexpr const char* kCurrencyId = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a01";

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The account table's state, shared by the BM_Account* benchmarks (they run one after the other).
struct AccountTable {
  std::vector<std::string> ids;      // every row's accountid, in insertion order
  std::vector<std::string> numbers;  // every row's accountnumber (unique: the alternate key)
  std::int64_t version = 1;
  GuidGen gen{0xacc0u};
};
AccountTable* g_account = nullptr;

void insert_account(Stmt& ins, AccountTable& t, std::int64_t when) {
  const std::uint64_t n = t.ids.size();
  std::string id = t.gen.next();
  std::string number = "B-" + std::to_string(n);
  ins.text(1, id);
  ins.text(2, "Bench Account " + std::to_string(n));
  ins.text(3, number);
  ins.int64(4, static_cast<std::int64_t>(n % 5000));
  ins.real(5, 1000.5 + static_cast<double>(n % 100000));
  ins.text(6, "+1-555-" + std::to_string(1000000 + n % 9000000));
  ins.int64(7, when);
  ins.text(8, kOwnerId);
  ins.text(9, kBusinessUnitId);
  ins.int64(10, t.version++);
  ins.text(11, kCurrencyId);
  ins.run();
  t.ids.push_back(std::move(id));
  t.numbers.push_back(std::move(number));
}

// Creates account.db with Tributary's table and BENCH_BULK_ROWS rows (default 100,000) on first use.
AccountTable& account_table() {
  if (g_account) return *g_account;
  g_account = new AccountTable();
  std::uint64_t rows = 100000;
  if (const char* r = std::getenv("BENCH_BULK_ROWS")) rows = std::strtoull(r, nullptr, 10);
  auto t0 = std::chrono::steady_clock::now();
  Conn c(g_env.account_db);
  exec(c.get(), kAccountTableSchema);
  Stmt ins(c.get(), kAccountInsertSql);
  const std::int64_t when = now_ms();
  g_account->ids.reserve(rows + 400000);
  g_account->numbers.reserve(rows + 400000);
  exec(c.get(), "BEGIN");
  for (std::uint64_t n = 0; n < rows; ++n) insert_account(ins, *g_account, when);
  exec(c.get(), "COMMIT");
  exec(c.get(), "PRAGMA wal_checkpoint(TRUNCATE)");
  exec(c.get(), "ANALYZE");
  auto secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::fprintf(stderr, "bench_raw_sqlite: account table (63 columns, 8 indexes) seeded with %llu rows in %.2f s\n",
               static_cast<unsigned long long>(rows), secs);
  return *g_account;
}

// (f) 1,000 new accounts per transaction, one fsync'd commit each (synchronous=FULL, WAL): the most
// CreateMultiple (or an UpsertMultiple that creates) of 1,000 records can reach on this table.
void BM_AccountInsert1000(benchmark::State& state) {
  AccountTable& t = account_table();
  Conn c(g_env.account_db, "FULL");
  warm(c.get());
  Stmt ins(c.get(), kAccountInsertSql);
  Stmt begin(c.get(), "BEGIN IMMEDIATE");
  Stmt commit(c.get(), "COMMIT");
  for (auto _ : state) {
    const std::int64_t when = now_ms();
    begin.run();
    for (int i = 0; i < 1000; ++i) insert_account(ins, t, when);
    commit.run();
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * 1000);
  state.counters["rows"] = static_cast<double>(t.ids.size());
}
BENCHMARK(BM_AccountInsert1000)->UseRealTime();

// (g) 1,000 updates of existing accounts per fsync'd commit, each found by primary key (by_id) or by
// the unique accountnumber (by_key): the update-path ceiling of UpsertMultiple on existing rows,
// and the storage engine's own cost of finding a row by alternate key instead of by id. Both walk
// the table from its first row in creation order.
void BM_AccountUpdate1000(benchmark::State& state, bool by_key) {
  AccountTable& t = account_table();
  Conn c(g_env.account_db, "FULL");
  warm(c.get());
  Stmt upd(c.get(), by_key ? kAccountUpdateByKeySql : kAccountUpdateByIdSql);
  Stmt begin(c.get(), "BEGIN IMMEDIATE");
  Stmt commit(c.get(), "COMMIT");
  // Rows in creation order, like bench/bulk.mjs, which upserts the rows one CreateMultiple run
  // created in the order it created them (ids are time-ordered, so these are neighbouring pages).
  const std::size_t rows = t.ids.size();
  std::uint64_t n = 0;
  for (auto _ : state) {
    const std::int64_t when = now_ms();
    begin.run();
    for (int i = 0; i < 1000; ++i, ++n) {
      const std::size_t row = n % rows;
      upd.text(1, "Bench Upsert " + std::to_string(n));
      upd.text(2, "+1-555-" + std::to_string(2000000 + n % 7000000));
      upd.int64(3, when);
      upd.text(4, kOwnerId);
      upd.int64(5, t.version++);
      upd.text(6, by_key ? t.numbers[row] : t.ids[row]);
      upd.run();
      if (sqlite3_changes(c.get()) != 1) {
        state.SkipWithError("update missed a row");
        break;
      }
    }
    commit.run();
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * 1000);
}
BENCHMARK_CAPTURE(BM_AccountUpdate1000, by_id, false)->UseRealTime();
BENCHMARK_CAPTURE(BM_AccountUpdate1000, by_key, true)->UseRealTime();

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  // Memory-usage statistics take a global mutex on every allocation, which serialises
  // connections on different threads; a server that cares about throughput turns them off.
  sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
  if (sqlite3_threadsafe() == 0) {
    std::fprintf(stderr, "bench_raw_sqlite: SQLite was built without thread support\n");
    return 1;
  }
  setup_env();
  benchmark::AddCustomContext("sqlite_version", sqlite3_libversion());
  benchmark::AddCustomContext("rows", std::to_string(g_env.rows));
  benchmark::AddCustomContext("db_dir", g_env.dir);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  cleanup_files();
  return 0;
}
