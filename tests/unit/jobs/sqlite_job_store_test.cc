#include "jobs/sqlite/sqlite_job_store.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <boost/json/parse.hpp>
#include <fstream>
#include <regex>
#include <set>
#include <thread>

#include "unit/jobs/temp_dir.h"

namespace layer::jobs {
namespace {

using namespace std::chrono_literals;

constexpr int64_t kT0 = 1779789600000;  // 2026-05-26T10:00:00.000Z

class SqliteJobStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { store_ = OpenStore(); }

  std::unique_ptr<SqliteJobStore> OpenStore() {
    SqliteJobStoreOptions opts;
    opts.path = dir_.Sub("data/jobs.sqlite3");
    opts.lease = 30s;
    opts.now_ms = [this] { return now_.load(); };
    auto s = SqliteJobStore::Open(opts);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? std::move(s).value() : nullptr;
  }

  WarmJob MustCreate(const std::string& ns, const std::string& owner = "gw-a",
                     int page_size = 1000) {
    auto r = store_->Create({ns, page_size, owner});
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_TRUE(r->created);
    return r->job;
  }

  layer::testing::StorageTempDir dir_;
  std::atomic<int64_t> now_{kT0};
  std::unique_ptr<SqliteJobStore> store_;
};

TEST_F(SqliteJobStoreTest, CreateStoresARunningJob) {
  WarmJob job = MustCreate("ns1", "gw-a", 250);
  EXPECT_TRUE(std::regex_match(
      job.id, std::regex("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")))
      << job.id;
  auto got = store_->Get(job.id);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->ns, "ns1");
  EXPECT_EQ(got->status, JobStatus::kRunning);
  EXPECT_EQ(got->progress, 0.0);
  EXPECT_EQ(got->documents_scanned, 0u);
  EXPECT_EQ(got->created_at, kT0);
  EXPECT_FALSE(got->completed_at);
  EXPECT_FALSE(got->stable_as_of);
  EXPECT_FALSE(got->error);
  EXPECT_FALSE(got->cursor);
  EXPECT_EQ(got->page_size, 250);
  EXPECT_EQ(got->owner, "gw-a");
  EXPECT_EQ(got->lease_expires_at, kT0 + 30000);
  EXPECT_EQ(got->updated_at, kT0);
}

TEST_F(SqliteJobStoreTest, CreateValidatesInput) {
  EXPECT_EQ(store_->Create({"", 1000, "gw"}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->Create({"ns", 1000, ""}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->Create({"ns", 0, "gw"}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->Create({"ns", 10001, "gw"}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(store_->Create({"ns", 10000, "gw"}).ok());
  EXPECT_TRUE(store_->Create({"ns2", 1, "gw"}).ok());
}

TEST_F(SqliteJobStoreTest, SecondCreateWhileRunningReturnsTheRunningJob) {
  WarmJob first = MustCreate("ns1");
  now_ += 5;
  auto second = store_->Create({"ns1", 500, "gw-b"});
  ASSERT_TRUE(second.ok());
  EXPECT_FALSE(second->created);
  EXPECT_EQ(second->job.id, first.id);
  EXPECT_EQ(second->job.owner, "gw-a");  // the running job is untouched
  EXPECT_EQ(second->job.page_size, 1000);

  // Another namespace is independent.
  WarmJob other = MustCreate("ns2");
  EXPECT_NE(other.id, first.id);

  // Once the first job is finished, a new one can start.
  ASSERT_TRUE(store_->Finish(first.id, "gw-a", JobStatus::kCompleted, std::nullopt, 7).ok());
  auto third = store_->Create({"ns1", 1000, "gw-b"});
  ASSERT_TRUE(third.ok());
  EXPECT_TRUE(third->created);
  EXPECT_NE(third->job.id, first.id);
  auto list = store_->List("ns1");
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->size(), 2u);
}

TEST_F(SqliteJobStoreTest, ConcurrentCreatesMakeExactlyOneJob) {
  std::atomic<int> created{0};
  std::vector<std::thread> threads;
  std::mutex mu;
  std::set<std::string> ids;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      auto r = store_->Create({"hot", 1000, "gw-" + std::to_string(i)});
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      if (r->created) ++created;
      std::lock_guard lock(mu);
      ids.insert(r->job.id);
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(created.load(), 1);
  EXPECT_EQ(ids.size(), 1u);
}

TEST_F(SqliteJobStoreTest, OneRunningJobPerNamespaceAcrossConnections) {
  // A second store on the same file stands for a second process.
  auto other = OpenStore();
  ASSERT_TRUE(other);
  WarmJob a = MustCreate("ns1");
  auto b = other->Create({"ns1", 1000, "gw-b"});
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_FALSE(b->created);
  EXPECT_EQ(b->job.id, a.id);
  // Writes through one connection are visible through the other.
  ASSERT_TRUE(store_->Checkpoint(a.id, "gw-a", {"5", 5, 0.5, 0}).ok());
  auto got = other->Get(a.id);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->documents_scanned, 5u);
}

TEST_F(SqliteJobStoreTest, GetUnknownIsNotFound) {
  auto r = store_->Get("00000000-0000-4000-8000-000000000000");
  EXPECT_TRUE(r.status().IsNotFound());
}

TEST_F(SqliteJobStoreTest, ListIsPerNamespaceOldestFirst) {
  WarmJob a = MustCreate("ns1");
  ASSERT_TRUE(store_->Finish(a.id, "gw-a", JobStatus::kFailed, "boom", std::nullopt).ok());
  now_ += 10;
  MustCreate("ns2");
  WarmJob b = MustCreate("ns1");
  ASSERT_TRUE(store_->Cancel(b.id).ok());
  // Same created_at as b: creation order breaks the tie.
  WarmJob c = MustCreate("ns1");
  auto list = store_->List("ns1");
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 3u);
  EXPECT_EQ((*list)[0].id, a.id);
  EXPECT_EQ((*list)[1].id, b.id);
  EXPECT_EQ((*list)[2].id, c.id);
  auto none = store_->List("nope");
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

TEST_F(SqliteJobStoreTest, CheckpointRecordsProgressAndExtendsTheLease) {
  WarmJob job = MustCreate("ns1");
  now_ += 10000;
  ASSERT_TRUE(store_->Checkpoint(job.id, "gw-a", {"\"doc-17\"", 17, 0.25, 2}).ok());
  auto got = store_->Get(job.id);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->cursor, "\"doc-17\"");
  EXPECT_EQ(got->documents_scanned, 17u);
  EXPECT_DOUBLE_EQ(got->progress, 0.25);
  EXPECT_EQ(got->cache_errors, 2u);
  EXPECT_EQ(got->lease_expires_at, kT0 + 10000 + 30000);
  EXPECT_EQ(got->updated_at, kT0 + 10000);

  // No cursor: the old one is kept. Progress never reaches 1.0 while running.
  ASSERT_TRUE(store_->Checkpoint(job.id, "gw-a", {std::nullopt, 40, 1.5, 2}).ok());
  got = store_->Get(job.id);
  EXPECT_EQ(got->cursor, "\"doc-17\"");
  EXPECT_LT(got->progress, 1.0);
  EXPECT_GT(got->progress, 0.99);
}

// Checkpoints commit without an fsync; every other call keeps the connection's FULL setting,
// also after a checkpoint that failed.
TEST_F(SqliteJobStoreTest, OnlyCheckpointsRelaxTheSyncSetting) {
  EXPECT_EQ(store_->SynchronousLevel(), 2);
  WarmJob job = MustCreate("ns");
  ASSERT_TRUE(store_->Checkpoint(job.id, "gw-a", {"1", 1, 0.1, 0}).ok());
  EXPECT_EQ(store_->SynchronousLevel(), 2);
  EXPECT_FALSE(store_->Checkpoint(job.id, "gw-b", {"2", 2, 0.2, 0}).ok());  // not the owner
  EXPECT_EQ(store_->SynchronousLevel(), 2);
  EXPECT_EQ(store_->Get(job.id)->documents_scanned, 1u);
}

TEST_F(SqliteJobStoreTest, CursorRoundTripsEveryIdType) {
  WarmJob job = MustCreate("ns1");
  for (std::string cursor : {"18446744073709551615", "\"a \\\"quoted\\\" id\"",
                             "\"0a1b2c3d-0000-4000-8000-00000000abcd\"", "0"}) {
    ASSERT_TRUE(store_->Checkpoint(job.id, "gw-a", {cursor, 1, 0.1, 0}).ok()) << cursor;
    auto got = store_->Get(job.id);
    ASSERT_TRUE(got.ok());
    EXPECT_EQ(got->cursor, cursor);
  }
  auto u64 = boost::json::parse("18446744073709551615");
  EXPECT_EQ(u64.as_uint64(), UINT64_MAX);  // the stored text keeps full u64 precision
  EXPECT_EQ(store_->Checkpoint(job.id, "gw-a", {"{not json", 1, 0.1, 0}).code(),
            StatusCode::kInvalidArgument);
}

TEST_F(SqliteJobStoreTest, LargeCountersRoundTrip) {
  WarmJob job = MustCreate("ns1");
  ASSERT_TRUE(store_->Checkpoint(job.id, "gw-a", {"1", UINT64_MAX, 0.5, UINT64_MAX - 1}).ok());
  ASSERT_TRUE(store_->Finish(job.id, "gw-a", JobStatus::kCompleted, std::nullopt, UINT64_MAX).ok());
  auto got = store_->Get(job.id);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->documents_scanned, UINT64_MAX);
  EXPECT_EQ(got->cache_errors, UINT64_MAX - 1);
  EXPECT_EQ(got->stable_as_of, UINT64_MAX);
}

TEST_F(SqliteJobStoreTest, CheckpointRefusesNonOwnersAndUnknownJobs) {
  WarmJob job = MustCreate("ns1");
  EXPECT_EQ(store_->Checkpoint(job.id, "gw-b", {"1", 1, 0.1, 0}).code(), StatusCode::kAborted);
  EXPECT_TRUE(store_->Checkpoint("missing", "gw-a", {"1", 1, 0.1, 0}).IsNotFound());
  auto got = store_->Get(job.id);
  EXPECT_EQ(got->documents_scanned, 0u);  // refused calls change nothing
}

TEST_F(SqliteJobStoreTest, FinishCompleted) {
  WarmJob job = MustCreate("ns1");
  ASSERT_TRUE(store_->Checkpoint(job.id, "gw-a", {"9", 9, 0.9, 1}).ok());
  now_ += 1234;
  ASSERT_TRUE(
      store_->Finish(job.id, "gw-a", JobStatus::kCompleted, std::string("ignored"), kT0 - 5).ok());
  auto got = store_->Get(job.id);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->status, JobStatus::kCompleted);
  EXPECT_EQ(got->progress, 1.0);
  EXPECT_EQ(got->documents_scanned, 9u);
  EXPECT_EQ(got->completed_at, kT0 + 1234);
  EXPECT_EQ(got->stable_as_of, static_cast<uint64_t>(kT0 - 5));
  EXPECT_FALSE(got->error);
  EXPECT_TRUE(got->finished());
  // Terminal: no more checkpoints or finishes, even by the owner.
  EXPECT_EQ(store_->Checkpoint(job.id, "gw-a", {"1", 1, 0.1, 0}).code(), StatusCode::kAborted);
  EXPECT_EQ(store_->Finish(job.id, "gw-a", JobStatus::kFailed, "x", std::nullopt).code(),
            StatusCode::kAborted);
}

TEST_F(SqliteJobStoreTest, FinishFailed) {
  WarmJob job = MustCreate("ns1");
  ASSERT_TRUE(store_->Checkpoint(job.id, "gw-a", {"9", 9, 0.4, 0}).ok());
  ASSERT_TRUE(
      store_->Finish(job.id, "gw-a", JobStatus::kFailed, "upstream 500", std::nullopt).ok());
  auto got = store_->Get(job.id);
  EXPECT_EQ(got->status, JobStatus::kFailed);
  EXPECT_EQ(got->error, "upstream 500");
  EXPECT_DOUBLE_EQ(got->progress, 0.4);
  EXPECT_EQ(got->completed_at, kT0);

  WarmJob job2 = MustCreate("ns2");
  ASSERT_TRUE(store_->Finish(job2.id, "gw-a", JobStatus::kFailed, std::nullopt, std::nullopt).ok());
  EXPECT_EQ(store_->Get(job2.id)->error, "failed");
}

TEST_F(SqliteJobStoreTest, FinishRefusesBadStatusOwnerAndId) {
  WarmJob job = MustCreate("ns1");
  EXPECT_EQ(store_->Finish(job.id, "gw-a", JobStatus::kRunning, std::nullopt, std::nullopt).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(
      store_->Finish(job.id, "gw-a", JobStatus::kCancelled, std::nullopt, std::nullopt).code(),
      StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->Finish(job.id, "gw-b", JobStatus::kCompleted, std::nullopt, 1).code(),
            StatusCode::kAborted);
  EXPECT_TRUE(store_->Finish("nope", "gw-a", JobStatus::kCompleted, std::nullopt, 1).IsNotFound());
  EXPECT_EQ(store_->Get(job.id)->status, JobStatus::kRunning);
}

TEST_F(SqliteJobStoreTest, CancelStopsTheRunnerAndIsIdempotent) {
  WarmJob job = MustCreate("ns1");
  now_ += 50;
  auto c = store_->Cancel(job.id);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->status, JobStatus::kCancelled);
  EXPECT_EQ(c->completed_at, kT0 + 50);
  // The runner learns at its next checkpoint.
  EXPECT_EQ(store_->Checkpoint(job.id, "gw-a", {"1", 1, 0.1, 0}).code(), StatusCode::kAborted);
  EXPECT_EQ(store_->Finish(job.id, "gw-a", JobStatus::kCompleted, std::nullopt, 1).code(),
            StatusCode::kAborted);
  // Idempotent: the first cancel time stays.
  now_ += 50;
  auto again = store_->Cancel(job.id);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->status, JobStatus::kCancelled);
  EXPECT_EQ(again->completed_at, kT0 + 50);
  // A new warm of the namespace may start.
  EXPECT_TRUE(store_->Create({"ns1", 1000, "gw-a"})->created);
  EXPECT_TRUE(store_->Cancel("nope").status().IsNotFound());
}

TEST_F(SqliteJobStoreTest, CancelLeavesFinishedJobsAlone) {
  WarmJob job = MustCreate("ns1");
  ASSERT_TRUE(store_->Finish(job.id, "gw-a", JobStatus::kCompleted, std::nullopt, 3).ok());
  auto c = store_->Cancel(job.id);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->status, JobStatus::kCompleted);
}

TEST_F(SqliteJobStoreTest, ClaimTakesOnlyExpiredLeases) {
  WarmJob a = MustCreate("ns1", "gw-a");
  now_ += 10000;
  WarmJob b = MustCreate("ns2", "gw-a");
  WarmJob done = MustCreate("ns3", "gw-a");
  ASSERT_TRUE(store_->Finish(done.id, "gw-a", JobStatus::kCompleted, std::nullopt, 1).ok());
  ASSERT_TRUE(store_->Checkpoint(a.id, "gw-a", {"41", 41, 0.4, 1}).ok());  // lease to T0+40s

  // Nothing has expired yet.
  auto none = store_->ClaimExpired("gw-b", kT0 + 39999, 20s);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());

  // Both leases end at T0+40s (a by its checkpoint at T0+10s, b by its creation then).
  auto claimed = store_->ClaimExpired("gw-b", kT0 + 40000, 20s);
  ASSERT_TRUE(claimed.ok()) << claimed.status().ToString();
  ASSERT_EQ(claimed->size(), 2u);
  EXPECT_EQ((*claimed)[0].id, a.id);  // oldest first
  EXPECT_EQ((*claimed)[1].id, b.id);
  EXPECT_EQ((*claimed)[0].owner, "gw-b");
  EXPECT_EQ((*claimed)[0].lease_expires_at, kT0 + 60000);
  EXPECT_EQ((*claimed)[0].cursor, "41");  // resume from the checkpoint
  EXPECT_EQ((*claimed)[0].documents_scanned, 41u);

  // The old owner has lost the job; the new owner drives it.
  EXPECT_EQ(store_->Checkpoint(a.id, "gw-a", {"50", 50, 0.5, 0}).code(), StatusCode::kAborted);
  now_ = kT0 + 45000;
  EXPECT_TRUE(store_->Checkpoint(a.id, "gw-b", {"50", 50, 0.5, 1}).ok());
  EXPECT_EQ(store_->Get(a.id)->lease_expires_at, kT0 + 45000 + 30000);
  EXPECT_TRUE(store_->Finish(a.id, "gw-b", JobStatus::kCompleted, std::nullopt, 1).ok());

  // A second claimer at the same moment gets nothing: the leases are live again.
  auto again = store_->ClaimExpired("gw-c", kT0 + 40000, 20s);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->empty());
}

TEST_F(SqliteJobStoreTest, ConcurrentClaimersNeverShareAJob) {
  for (int i = 0; i < 20; ++i) MustCreate("ns" + std::to_string(i));
  std::vector<std::vector<WarmJob>> got(4);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      auto r = store_->ClaimExpired("claimer-" + std::to_string(t), kT0 + 60000, 30s);
      ASSERT_TRUE(r.ok());
      got[t] = std::move(r).value();
    });
  }
  for (auto& t : threads) t.join();
  std::set<std::string> ids;
  size_t total = 0;
  for (const auto& v : got) {
    total += v.size();
    for (const auto& j : v) ids.insert(j.id);
  }
  EXPECT_EQ(total, 20u);
  EXPECT_EQ(ids.size(), 20u);
}

TEST_F(SqliteJobStoreTest, ReleasedJobsAreClaimableAtOnce) {
  WarmJob a = MustCreate("ns1", "gw-a");
  MustCreate("ns2", "gw-other");
  auto released = store_->ReleaseOwner("gw-a");
  ASSERT_TRUE(released.ok());
  EXPECT_EQ(*released, 1u);
  auto claimed = store_->ClaimExpired("gw-b", kT0, 30s);
  ASSERT_TRUE(claimed.ok());
  ASSERT_EQ(claimed->size(), 1u);
  EXPECT_EQ((*claimed)[0].id, a.id);
}

TEST_F(SqliteJobStoreTest, ClaimAllRunningTakesLiveLeasesToo) {
  WarmJob a = MustCreate("ns1", "gw-dead");
  auto expired_only = store_->ClaimExpired("gw-new", kT0 + 1, 30s);
  ASSERT_TRUE(expired_only.ok());
  EXPECT_TRUE(expired_only->empty());
  auto all = store_->ClaimExpired("gw-new", kT0 + 1, 30s, ClaimScope::kAllRunning);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 1u);
  EXPECT_EQ((*all)[0].id, a.id);
  EXPECT_EQ(store_->Get(a.id)->owner, "gw-new");
  EXPECT_EQ(store_->ClaimExpired("", kT0, 30s).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->ClaimExpired("x", kT0, 0ms).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(SqliteJobStoreTest, DeleteNamespaceRemovesAllItsJobs) {
  WarmJob a = MustCreate("ns1");
  ASSERT_TRUE(store_->Finish(a.id, "gw-a", JobStatus::kCompleted, std::nullopt, 1).ok());
  WarmJob b = MustCreate("ns1");
  WarmJob other = MustCreate("ns2");
  auto n = store_->DeleteNamespace("ns1");
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 2u);
  EXPECT_TRUE(store_->Get(a.id).status().IsNotFound());
  // The running job's owner learns at its next checkpoint.
  EXPECT_TRUE(store_->Checkpoint(b.id, "gw-a", {"1", 1, 0.1, 0}).IsNotFound());
  EXPECT_TRUE(store_->Get(other.id).ok());
  EXPECT_EQ(*store_->DeleteNamespace("ns1"), 0u);
}

TEST_F(SqliteJobStoreTest, PruneByAge) {
  WarmJob old_job = MustCreate("ns1");
  ASSERT_TRUE(store_->Finish(old_job.id, "gw-a", JobStatus::kCompleted, std::nullopt, 1).ok());
  now_ += 3600000;  // one hour later
  WarmJob recent = MustCreate("ns1");
  ASSERT_TRUE(store_->Cancel(recent.id).ok());
  WarmJob running = MustCreate("ns1");
  // Running jobs are never pruned, however old.
  auto n = store_->Prune(kT0 + 3600000 + 1000, std::chrono::minutes(30), 100);
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(*n, 1u);
  EXPECT_TRUE(store_->Get(old_job.id).status().IsNotFound());
  EXPECT_TRUE(store_->Get(recent.id).ok());
  EXPECT_TRUE(store_->Get(running.id).ok());
  auto later = store_->Prune(kT0 + 100 * 3600000ll, std::chrono::minutes(30), 100);
  ASSERT_TRUE(later.ok());
  EXPECT_EQ(*later, 1u);
  EXPECT_TRUE(store_->Get(running.id).ok());
}

TEST_F(SqliteJobStoreTest, PruneByCountKeepsTheNewestPerNamespace) {
  std::vector<std::string> ns1_ids;
  for (int i = 0; i < 5; ++i) {
    WarmJob j = MustCreate("ns1");
    now_ += 10;
    ASSERT_TRUE(store_->Finish(j.id, "gw-a", JobStatus::kCompleted, std::nullopt, 1).ok());
    ns1_ids.push_back(j.id);
  }
  WarmJob ns2 = MustCreate("ns2");
  ASSERT_TRUE(store_->Finish(ns2.id, "gw-a", JobStatus::kFailed, "x", std::nullopt).ok());
  WarmJob running = MustCreate("ns1");
  auto n = store_->Prune(now_, std::chrono::hours(24), 2);
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(*n, 3u);
  auto list = store_->List("ns1");
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 3u);
  EXPECT_EQ((*list)[0].id, ns1_ids[3]);
  EXPECT_EQ((*list)[1].id, ns1_ids[4]);
  EXPECT_EQ((*list)[2].id, running.id);
  EXPECT_TRUE(store_->Get(ns2.id).ok());
  EXPECT_EQ(*store_->Prune(now_, std::chrono::hours(24), 0), 3u);  // keep none finished
  EXPECT_TRUE(store_->Get(running.id).ok());
}

TEST_F(SqliteJobStoreTest, JobsSurviveReopenAndResume) {
  WarmJob job = MustCreate("ns1", "gw-a", 300);
  ASSERT_TRUE(store_->Checkpoint(job.id, "gw-a", {"\"k-9\"", 900, 0.3, 4}).ok());
  WarmJob done = MustCreate("ns2");
  ASSERT_TRUE(store_->Finish(done.id, "gw-a", JobStatus::kCompleted, std::nullopt, 11).ok());
  store_.reset();  // as after kill -9: nothing more is written

  now_ += 5000;  // restart well within the old lease
  store_ = OpenStore();
  ASSERT_TRUE(store_);
  auto got = store_->Get(job.id);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->status, JobStatus::kRunning);
  EXPECT_EQ(got->documents_scanned, 900u);
  EXPECT_EQ(got->page_size, 300);
  EXPECT_EQ(store_->Get(done.id)->stable_as_of, 11u);
  // The embedded gateway claims every running job at start-up.
  auto claimed = store_->ClaimExpired("gw-restarted", now_, 30s, ClaimScope::kAllRunning);
  ASSERT_TRUE(claimed.ok());
  ASSERT_EQ(claimed->size(), 1u);
  EXPECT_EQ((*claimed)[0].cursor, "\"k-9\"");
  EXPECT_EQ((*claimed)[0].cache_errors, 4u);
  // And the one-running-job rule still holds.
  EXPECT_FALSE(store_->Create({"ns1", 1000, "gw-restarted"})->created);
}

TEST_F(SqliteJobStoreTest, CheckpointSurvivesKill9) {
  store_.reset();
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    // Child: a gateway that creates a job, checkpoints and is killed without any cleanup.
    auto child = OpenStore();
    if (!child) _exit(2);
    auto r = child->Create({"ns1", 1000, "gw-child"});
    if (!r.ok() || !child->Checkpoint(r->job.id, "gw-child", {"77", 77, 0.7, 0}).ok()) _exit(3);
    raise(SIGKILL);
    _exit(4);
  }
  int wstatus = 0;
  ASSERT_EQ(waitpid(pid, &wstatus, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(wstatus) && WTERMSIG(wstatus) == SIGKILL) << wstatus;
  store_ = OpenStore();
  ASSERT_TRUE(store_);
  auto list = store_->List("ns1");
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].status, JobStatus::kRunning);
  EXPECT_EQ((*list)[0].cursor, "77");
  EXPECT_EQ((*list)[0].documents_scanned, 77u);
}

TEST_F(SqliteJobStoreTest, OpenRefusesGarbageAndBadOptions) {
  std::string path = dir_.Sub("garbage.sqlite3");
  {
    std::ofstream f(path);
    f << std::string(4096, 'x');
  }
  SqliteJobStoreOptions opts;
  opts.path = path;
  auto r = SqliteJobStore::Open(opts);
  EXPECT_FALSE(r.ok());
  opts.path = "";
  EXPECT_EQ(SqliteJobStore::Open(opts).status().code(), StatusCode::kInvalidArgument);
  opts.path = dir_.Sub("ok.sqlite3");
  opts.lease = 0ms;
  EXPECT_EQ(SqliteJobStore::Open(opts).status().code(), StatusCode::kInvalidArgument);
}

TEST(JobStoreRenderTest, Rfc3339) {
  EXPECT_EQ(FormatRfc3339Ms(kT0), "2026-05-26T10:00:00.000Z");
  EXPECT_EQ(FormatRfc3339Ms(kT0 + 1), "2026-05-26T10:00:00.001Z");
  EXPECT_EQ(FormatRfc3339Ms(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(FormatRfc3339Ms(951782400999), "2000-02-29T00:00:00.999Z");
}

TEST(JobStoreRenderTest, StatusNames) {
  for (JobStatus s :
       {JobStatus::kRunning, JobStatus::kCompleted, JobStatus::kFailed, JobStatus::kCancelled}) {
    EXPECT_EQ(ParseJobStatus(JobStatusName(s)), s);
  }
  EXPECT_FALSE(ParseJobStatus("pending"));
}

TEST(JobStoreRenderTest, RunningJobJsonOmitsAbsentMembers) {
  WarmJob job;
  job.id = "0a1b2c3d-0000-4000-8000-00000000abcd";
  job.ns = "my-ns";
  job.documents_scanned = 12;
  job.progress = 0.25;
  job.created_at = kT0;
  job.cursor = "12";
  job.owner = "secret-owner";
  EXPECT_EQ(WarmJobToJson(job),
            "{\"id\":\"0a1b2c3d-0000-4000-8000-00000000abcd\",\"namespace\":\"my-ns\","
            "\"status\":\"running\",\"progress\":0.25,\"documents_scanned\":12,"
            "\"created_at\":\"2026-05-26T10:00:00.000Z\",\"cache_errors\":0,\"page_size\":1000}");
}

TEST(JobStoreRenderTest, FinishedJobJson) {
  WarmJob job;
  job.id = "x";
  job.ns = "n\"s";
  job.status = JobStatus::kFailed;
  job.progress = 1.0;
  job.stable_as_of = 99;
  job.created_at = kT0;
  job.completed_at = kT0 + 61000;
  job.error = "upstream said \"no\"";
  job.cache_errors = 3;
  job.page_size = 10;
  auto v = boost::json::parse(WarmJobToJson(job)).as_object();
  EXPECT_EQ(v.at("namespace").as_string(), "n\"s");
  EXPECT_EQ(v.at("status").as_string(), "failed");
  EXPECT_EQ(v.at("progress").to_number<double>(), 1.0);
  EXPECT_EQ(v.at("stable_as_of").to_number<uint64_t>(), 99u);
  EXPECT_EQ(v.at("completed_at").as_string(), "2026-05-26T10:01:01.000Z");
  EXPECT_EQ(v.at("error").as_string(), "upstream said \"no\"");
  EXPECT_EQ(v.at("cache_errors").to_number<uint64_t>(), 3u);
  EXPECT_EQ(v.at("page_size").to_number<int>(), 10);
  EXPECT_FALSE(v.contains("cursor"));
  EXPECT_FALSE(v.contains("owner"));

  std::vector<WarmJob> jobs{job, job};
  auto list = boost::json::parse(WarmJobListToJson(jobs)).as_object();
  EXPECT_EQ(list.at("warm_jobs").as_array().size(), 2u);
  EXPECT_EQ(WarmJobListToJson({}), "{\"warm_jobs\":[]}");
}

TEST(JobStoreRenderTest, NewJobIdsAreDistinctV4Uuids) {
  std::set<std::string> ids;
  for (int i = 0; i < 1000; ++i) ids.insert(NewJobId());
  EXPECT_EQ(ids.size(), 1000u);
  EXPECT_EQ(ids.begin()->size(), 36u);
  EXPECT_EQ((*ids.begin())[14], '4');
}

}  // namespace
}  // namespace layer::jobs
