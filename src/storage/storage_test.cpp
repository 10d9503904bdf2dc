#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <thread>
#include <vector>

#include "tributary/storage/engine.h"

namespace tributary::storage {
namespace {

class StorageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("trib_storage_" + std::to_string(::getpid()) + "_" +
                                                     ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    auto e = OpenSqlite({.path = (dir_ / "t.db").string()});
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    engine_ = std::move(e).value();
    ASSERT_TRUE(engine_
                    ->WriteSync([](Connection& c) {
                      return c.ExecScript("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT UNIQUE)");
                    })
                    .ok());
  }
  void TearDown() override {
    engine_.reset();
    std::filesystem::remove_all(dir_);
  }
  int64_t Count() {
    int64_t n = -1;
    auto r = engine_->Read();
    EXPECT_TRUE(r->Query("SELECT count(*) FROM t", {}, [&](const Row& row) {
                   n = row.Int(0);
                   return true;
                 }).ok());
    return n;
  }
  std::filesystem::path dir_;
  std::unique_ptr<Engine> engine_;
};

TEST_F(StorageTest, GroupCommitBatchesConcurrentWritersAndAnswersEach) {
  constexpr int kThreads = 8, kPerThread = 200;
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        std::string v = std::to_string(t) + ":" + std::to_string(i);
        Status s = engine_->WriteSync([v](Connection& c) {
          SqlValue p[] = {v};
          return c.Exec("INSERT INTO t (v) VALUES (?)", p).status();
        });
        if (s.ok()) ok++;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(ok.load(), kThreads * kPerThread);
  EXPECT_EQ(Count(), kThreads * kPerThread);
  auto stats = engine_->stats();
  EXPECT_EQ(stats.jobs, static_cast<uint64_t>(kThreads * kPerThread) + 1);
  // Concurrent writers share commits: fewer commits than jobs.
  EXPECT_LT(stats.commits, stats.jobs);
}

TEST_F(StorageTest, FailedJobRollsBackOnlyItself) {
  std::atomic<int> done{0};
  Status bad;
  engine_->Write(
      [](Connection& c) {
        SqlValue p[] = {std::string("a")};
        return c.Exec("INSERT INTO t (v) VALUES (?)", p).status();
      },
      [&](Status) { done++; });
  engine_->Write(
      [](Connection& c) {
        SqlValue p[] = {std::string("b")};
        RETURN_IF_ERROR(c.Exec("INSERT INTO t (v) VALUES (?)", p).status());
        SqlValue q[] = {std::string("a")};  // duplicate: fails, must undo "b" too
        return c.Exec("INSERT INTO t (v) VALUES (?)", q).status();
      },
      [&](Status s) {
        bad = s;
        done++;
      });
  engine_->Write(
      [](Connection& c) {
        SqlValue p[] = {std::string("c")};
        return c.Exec("INSERT INTO t (v) VALUES (?)", p).status();
      },
      [&](Status) { done++; });
  while (done.load() < 3) std::this_thread::yield();
  EXPECT_EQ(bad.code(), Code::kAlreadyExists);
  EXPECT_EQ(Count(), 2);
}

TEST_F(StorageTest, DataSurvivesReopen) {
  ASSERT_TRUE(engine_
                  ->WriteSync([](Connection& c) {
                    SqlValue p[] = {std::string("kept")};
                    return c.Exec("INSERT INTO t (v) VALUES (?)", p).status();
                  })
                  .ok());
  engine_.reset();
  auto e = OpenSqlite({.path = (dir_ / "t.db").string()});
  ASSERT_TRUE(e.ok());
  engine_ = std::move(e).value();
  EXPECT_EQ(Count(), 1);
}

TEST_F(StorageTest, WritesAfterShutdownAreRefused) {
  engine_->Shutdown();
  Status s = engine_->WriteSync([](Connection&) { return Status::Ok(); });
  EXPECT_EQ(s.code(), Code::kUnavailable);
}

}  // namespace
}  // namespace tributary::storage
