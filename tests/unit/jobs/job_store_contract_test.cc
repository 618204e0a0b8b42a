// The cases of the JobStore contract suite (see job_store_contract.h). Each runs once per backend
// instantiated from a backend's test file.
#include <atomic>
#include <boost/json/parse.hpp>
#include <mutex>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "unit/jobs/job_store_contract.h"

namespace layer::jobs {
namespace {

using namespace std::chrono_literals;

TEST_P(JobStoreContractTest, CreateStoresARunningJob) {
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

TEST_P(JobStoreContractTest, CreateValidatesInput) {
  EXPECT_EQ(store_->Create({"", 1000, "gw"}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->Create({"ns", 1000, ""}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->Create({"ns", 0, "gw"}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->Create({"ns", 10001, "gw"}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(store_->Create({"ns", 10000, "gw"}).ok());
  EXPECT_TRUE(store_->Create({"ns2", 1, "gw"}).ok());
}

TEST_P(JobStoreContractTest, SecondCreateWhileRunningReturnsTheRunningJob) {
  WarmJob first = MustCreate("ns1");
  clock_.Advance(std::chrono::milliseconds(5));
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

TEST_P(JobStoreContractTest, ConcurrentCreatesMakeExactlyOneJob) {
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

TEST_P(JobStoreContractTest, GetUnknownIsNotFound) {
  auto r = store_->Get("00000000-0000-4000-8000-000000000000");
  EXPECT_TRUE(r.status().IsNotFound());
}

TEST_P(JobStoreContractTest, ListIsPerNamespaceOldestFirst) {
  WarmJob a = MustCreate("ns1");
  ASSERT_TRUE(store_->Finish(a.id, "gw-a", JobStatus::kFailed, "boom", std::nullopt).ok());
  clock_.Advance(std::chrono::milliseconds(10));
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

TEST_P(JobStoreContractTest, CheckpointRecordsProgressAndExtendsTheLease) {
  WarmJob job = MustCreate("ns1");
  clock_.Advance(std::chrono::milliseconds(10000));
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

TEST_P(JobStoreContractTest, CheckpointSetsAndClearsWhyAJobWaits) {
  WarmJob job = MustCreate("ns1");
  EXPECT_FALSE(store_->Get(job.id)->waiting);
  JobCheckpoint waiting{"\"doc-3\"", 3, 0.1, 0};
  waiting.waiting = "waiting for an API key";
  ASSERT_TRUE(store_->Checkpoint(job.id, "gw-a", waiting).ok());
  auto got = store_->Get(job.id);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->waiting, "waiting for an API key");
  EXPECT_EQ(got->status, JobStatus::kRunning);
  EXPECT_NE(WarmJobToJson(*got).find("\"waiting\":\"waiting for an API key\""), std::string::npos);
  // The next checkpoint that says nothing clears it, as does the job's end.
  ASSERT_TRUE(store_->Checkpoint(job.id, "gw-a", {"\"doc-4\"", 4, 0.2, 0}).ok());
  EXPECT_FALSE(store_->Get(job.id)->waiting);
  ASSERT_TRUE(store_->Checkpoint(job.id, "gw-a", waiting).ok());
  ASSERT_TRUE(store_->Finish(job.id, "gw-a", JobStatus::kCompleted, std::nullopt, 1).ok());
  got = store_->Get(job.id);
  EXPECT_FALSE(got->waiting);
  EXPECT_EQ(WarmJobToJson(*got).find("waiting"), std::string::npos);
}

TEST_P(JobStoreContractTest, JobsOfATenantsPartitionShowTheirNamespace) {
  WarmJob job = MustCreate("products@0123456789abcdef");
  EXPECT_NE(WarmJobToJson(job).find("\"namespace\":\"products\""), std::string::npos);
  EXPECT_TRUE(store_->List("products")->empty());  // jobs are kept per partition
  EXPECT_EQ(store_->List("products@0123456789abcdef")->size(), 1u);
}

TEST_P(JobStoreContractTest, CursorRoundTripsEveryIdType) {
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

TEST_P(JobStoreContractTest, LargeCountersRoundTrip) {
  WarmJob job = MustCreate("ns1");
  ASSERT_TRUE(store_->Checkpoint(job.id, "gw-a", {"1", UINT64_MAX, 0.5, UINT64_MAX - 1}).ok());
  ASSERT_TRUE(store_->Finish(job.id, "gw-a", JobStatus::kCompleted, std::nullopt, UINT64_MAX).ok());
  auto got = store_->Get(job.id);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->documents_scanned, UINT64_MAX);
  EXPECT_EQ(got->cache_errors, UINT64_MAX - 1);
  EXPECT_EQ(got->stable_as_of, UINT64_MAX);
}

TEST_P(JobStoreContractTest, CheckpointRefusesNonOwnersAndUnknownJobs) {
  WarmJob job = MustCreate("ns1");
  EXPECT_EQ(store_->Checkpoint(job.id, "gw-b", {"1", 1, 0.1, 0}).code(), StatusCode::kAborted);
  EXPECT_TRUE(store_->Checkpoint("missing", "gw-a", {"1", 1, 0.1, 0}).IsNotFound());
  auto got = store_->Get(job.id);
  EXPECT_EQ(got->documents_scanned, 0u);  // refused calls change nothing
}

TEST_P(JobStoreContractTest, FinishCompleted) {
  WarmJob job = MustCreate("ns1");
  ASSERT_TRUE(store_->Checkpoint(job.id, "gw-a", {"9", 9, 0.9, 1}).ok());
  clock_.Advance(std::chrono::milliseconds(1234));
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

TEST_P(JobStoreContractTest, FinishFailed) {
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

TEST_P(JobStoreContractTest, FinishRefusesBadStatusOwnerAndId) {
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

TEST_P(JobStoreContractTest, CancelStopsTheRunnerAndIsIdempotent) {
  WarmJob job = MustCreate("ns1");
  clock_.Advance(std::chrono::milliseconds(50));
  auto c = store_->Cancel(job.id);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->status, JobStatus::kCancelled);
  EXPECT_EQ(c->completed_at, kT0 + 50);
  // The runner learns at its next checkpoint.
  EXPECT_EQ(store_->Checkpoint(job.id, "gw-a", {"1", 1, 0.1, 0}).code(), StatusCode::kAborted);
  EXPECT_EQ(store_->Finish(job.id, "gw-a", JobStatus::kCompleted, std::nullopt, 1).code(),
            StatusCode::kAborted);
  // Idempotent: the first cancel time stays.
  clock_.Advance(std::chrono::milliseconds(50));
  auto again = store_->Cancel(job.id);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->status, JobStatus::kCancelled);
  EXPECT_EQ(again->completed_at, kT0 + 50);
  // A new warm of the namespace may start.
  EXPECT_TRUE(store_->Create({"ns1", 1000, "gw-a"})->created);
  EXPECT_TRUE(store_->Cancel("nope").status().IsNotFound());
}

TEST_P(JobStoreContractTest, CancelLeavesFinishedJobsAlone) {
  WarmJob job = MustCreate("ns1");
  ASSERT_TRUE(store_->Finish(job.id, "gw-a", JobStatus::kCompleted, std::nullopt, 3).ok());
  auto c = store_->Cancel(job.id);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->status, JobStatus::kCompleted);
}

TEST_P(JobStoreContractTest, ClaimTakesOnlyExpiredLeases) {
  WarmJob a = MustCreate("ns1", "gw-a");
  clock_.Advance(std::chrono::milliseconds(10000));
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
  clock_.SetWallMs(kT0 + 45000);
  EXPECT_TRUE(store_->Checkpoint(a.id, "gw-b", {"50", 50, 0.5, 1}).ok());
  EXPECT_EQ(store_->Get(a.id)->lease_expires_at, kT0 + 45000 + 30000);
  EXPECT_TRUE(store_->Finish(a.id, "gw-b", JobStatus::kCompleted, std::nullopt, 1).ok());

  // A second claimer at the same moment gets nothing: the leases are live again.
  auto again = store_->ClaimExpired("gw-c", kT0 + 40000, 20s);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->empty());
}

TEST_P(JobStoreContractTest, ConcurrentClaimersNeverShareAJob) {
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

TEST_P(JobStoreContractTest, ReleasedJobsAreClaimableAtOnce) {
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

TEST_P(JobStoreContractTest, ClaimAllRunningTakesLiveLeasesToo) {
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

TEST_P(JobStoreContractTest, DeleteNamespaceRemovesAllItsJobs) {
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

TEST_P(JobStoreContractTest, PruneByAge) {
  WarmJob old_job = MustCreate("ns1");
  ASSERT_TRUE(store_->Finish(old_job.id, "gw-a", JobStatus::kCompleted, std::nullopt, 1).ok());
  clock_.Advance(std::chrono::milliseconds(3600000));  // one hour later
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

TEST_P(JobStoreContractTest, PruneByCountKeepsTheNewestPerNamespace) {
  std::vector<std::string> ns1_ids;
  for (int i = 0; i < 5; ++i) {
    WarmJob j = MustCreate("ns1");
    clock_.Advance(std::chrono::milliseconds(10));
    ASSERT_TRUE(store_->Finish(j.id, "gw-a", JobStatus::kCompleted, std::nullopt, 1).ok());
    ns1_ids.push_back(j.id);
  }
  WarmJob ns2 = MustCreate("ns2");
  ASSERT_TRUE(store_->Finish(ns2.id, "gw-a", JobStatus::kFailed, "x", std::nullopt).ok());
  WarmJob running = MustCreate("ns1");
  auto n = store_->Prune(clock_.WallMs(), std::chrono::hours(24), 2);
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(*n, 3u);
  auto list = store_->List("ns1");
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 3u);
  EXPECT_EQ((*list)[0].id, ns1_ids[3]);
  EXPECT_EQ((*list)[1].id, ns1_ids[4]);
  EXPECT_EQ((*list)[2].id, running.id);
  EXPECT_TRUE(store_->Get(ns2.id).ok());
  EXPECT_EQ(*store_->Prune(clock_.WallMs(), std::chrono::hours(24), 0), 3u);  // keep none finished
  EXPECT_TRUE(store_->Get(running.id).ok());
}

// The old owner of a claimed job must stop: its Finish is refused like its Checkpoint, and the
// refusal changes nothing.
TEST_P(JobStoreContractTest, OldOwnerCannotFinishAClaimedJob) {
  WarmJob job = MustCreate("ns1", "gw-a");
  auto claimed = store_->ClaimExpired("gw-b", kT0 + 30000, 20s);
  ASSERT_TRUE(claimed.ok()) << claimed.status().ToString();
  ASSERT_EQ(claimed->size(), 1u);
  EXPECT_EQ(store_->Finish(job.id, "gw-a", JobStatus::kCompleted, std::nullopt, 1).code(),
            StatusCode::kAborted);
  auto got = store_->Get(job.id);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->status, JobStatus::kRunning);
  EXPECT_EQ(got->owner, "gw-b");
  EXPECT_TRUE(store_->Finish(job.id, "gw-b", JobStatus::kCompleted, std::nullopt, 1).ok());
}

// A checkpoint's progress is clamped to [0, 1): below as well as above.
TEST_P(JobStoreContractTest, CheckpointClampsNegativeProgressToZero) {
  WarmJob job = MustCreate("ns1");
  ASSERT_TRUE(store_->Checkpoint(job.id, "gw-a", {"1", 1, -0.5, 0}).ok());
  auto got = store_->Get(job.id);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->progress, 0.0);
}

// ---- Kinds: one record shape, one running job per (namespace, kind).

constexpr char kSnapshotParams[] =
    R"({"field":"title","source":"auto","filters":["year","Gte",2020],"page_size":500})";

TEST_P(JobStoreContractTest, OneRunningJobPerNamespaceAndKind) {
  WarmJob warm = MustCreate("ns1");
  auto snap = store_->CreateJob({"ns1", JobKind::kSnapshot, kSnapshotParams, "gw-a"});
  ASSERT_TRUE(snap.ok()) << snap.status().ToString();
  EXPECT_TRUE(snap->created);  // beside the running warm job of the namespace
  EXPECT_EQ(snap->job.kind, JobKind::kSnapshot);
  EXPECT_EQ(snap->job.params, kSnapshotParams);
  EXPECT_EQ(snap->job.status, JobStatus::kRunning);
  EXPECT_EQ(snap->job.owner, "gw-a");
  EXPECT_EQ(snap->job.lease_expires_at, kT0 + 30000);

  // A second job of either kind returns the running one of that kind, untouched.
  auto snap2 = store_->CreateJob({"ns1", JobKind::kSnapshot, R"({"field":"x"})", "gw-b"});
  ASSERT_TRUE(snap2.ok());
  EXPECT_FALSE(snap2->created);
  EXPECT_EQ(snap2->job.id, snap->job.id);
  EXPECT_EQ(snap2->job.params, kSnapshotParams);
  auto warm2 = store_->Create({"ns1", 10, "gw-b"});
  ASSERT_TRUE(warm2.ok());
  EXPECT_FALSE(warm2->created);
  EXPECT_EQ(warm2->job.id, warm.id);

  // Ending the snapshot job frees its kind only.
  ASSERT_TRUE(store_->Finish(snap->job.id, "gw-a", JobStatus::kCompleted, std::nullopt, 5).ok());
  EXPECT_FALSE(store_->Create({"ns1", 10, "gw-b"})->created);
  auto snap3 = store_->CreateJob({"ns1", JobKind::kSnapshot, "{}", "gw-b"});
  ASSERT_TRUE(snap3.ok());
  EXPECT_TRUE(snap3->created);
}

TEST_P(JobStoreContractTest, ConcurrentCreatesMakeOneJobPerKind) {
  std::vector<std::thread> threads;
  std::mutex mu;
  std::set<std::string> ids;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      const JobKind kind = i % 2 ? JobKind::kSnapshot : JobKind::kWarm;
      auto r = store_->CreateJob({"hot", kind, "{}", "gw-" + std::to_string(i)});
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      EXPECT_EQ(r->job.kind, kind);
      std::lock_guard lock(mu);
      ids.insert(r->job.id);
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ids.size(), 2u);
}

TEST_P(JobStoreContractTest, ListJobsFiltersByKindAndWarmCallsSeeOnlyWarmJobs) {
  WarmJob w1 = MustCreate("ns1");
  ASSERT_TRUE(store_->Finish(w1.id, "gw-a", JobStatus::kCompleted, std::nullopt, 1).ok());
  clock_.Advance(std::chrono::milliseconds(10));
  auto snap = store_->CreateJob({"ns1", JobKind::kSnapshot, kSnapshotParams, "gw-a"});
  ASSERT_TRUE(snap.ok());
  const std::string s = snap->job.id;
  WarmJob w2 = MustCreate("ns1", "gw-a", 250);
  MustCreate("ns2");

  auto all = store_->ListJobs("ns1", std::nullopt);
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  ASSERT_EQ(all->size(), 3u);
  EXPECT_EQ((*all)[0].id, w1.id);
  EXPECT_EQ((*all)[1].id, s);
  EXPECT_EQ((*all)[1].kind, JobKind::kSnapshot);
  EXPECT_EQ((*all)[1].params, kSnapshotParams);
  EXPECT_EQ((*all)[2].id, w2.id);
  EXPECT_EQ((*all)[2].kind, JobKind::kWarm);
  EXPECT_EQ((*all)[2].params, R"({"page_size":250})");

  auto snaps = store_->ListJobs("ns1", JobKind::kSnapshot);
  ASSERT_TRUE(snaps.ok());
  ASSERT_EQ(snaps->size(), 1u);
  EXPECT_EQ((*snaps)[0].id, s);
  auto warms = store_->ListJobs("ns1", JobKind::kWarm);
  ASSERT_TRUE(warms.ok());
  EXPECT_EQ(warms->size(), 2u);

  // The warm calls: typed views of the warm jobs only.
  auto list = store_->List("ns1");
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].id, w1.id);
  EXPECT_EQ((*list)[0].page_size, 1000);
  EXPECT_EQ((*list)[1].id, w2.id);
  EXPECT_EQ((*list)[1].page_size, 250);
  EXPECT_TRUE(store_->Get(s).status().IsNotFound());
  EXPECT_TRUE(store_->Cancel(s).status().IsNotFound());
  EXPECT_EQ(store_->GetJob(s)->status, JobStatus::kRunning);  // the warm Cancel left it alone

  // The record calls see every kind.
  auto got = store_->GetJob(w2.id);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->kind, JobKind::kWarm);
  EXPECT_EQ(got->params, R"({"page_size":250})");
  clock_.Advance(std::chrono::milliseconds(5));
  auto cancelled = store_->CancelJob(s);
  ASSERT_TRUE(cancelled.ok());
  EXPECT_EQ(cancelled->status, JobStatus::kCancelled);
  EXPECT_EQ(cancelled->kind, JobKind::kSnapshot);
  EXPECT_EQ(cancelled->completed_at, kT0 + 15);
  EXPECT_TRUE(store_->GetJob("nope").status().IsNotFound());
  EXPECT_TRUE(store_->CancelJob("nope").status().IsNotFound());
}

TEST_P(JobStoreContractTest, ClaimsAreByKind) {
  WarmJob warm = MustCreate("ns1", "gw-dead");
  auto snap = store_->CreateJob({"ns1", JobKind::kSnapshot, "{}", "gw-dead"});
  ASSERT_TRUE(snap.ok());

  auto warms = store_->ClaimExpired("gw-b", kT0 + 30000, 30s);
  ASSERT_TRUE(warms.ok()) << warms.status().ToString();
  ASSERT_EQ(warms->size(), 1u);
  EXPECT_EQ((*warms)[0].id, warm.id);
  EXPECT_EQ(store_->GetJob(snap->job.id)->owner, "gw-dead");  // another kind's claimer takes it

  auto snaps =
      store_->ClaimExpiredJobs("gw-c", kT0 + 30000, 20s, ClaimScope::kExpired, JobKind::kSnapshot);
  ASSERT_TRUE(snaps.ok()) << snaps.status().ToString();
  ASSERT_EQ(snaps->size(), 1u);
  EXPECT_EQ((*snaps)[0].id, snap->job.id);
  EXPECT_EQ((*snaps)[0].owner, "gw-c");
  EXPECT_EQ((*snaps)[0].lease_expires_at, kT0 + 50000);
  EXPECT_EQ(store_->Get(warm.id)->owner, "gw-b");

  auto all = store_->ClaimExpiredJobs("gw-d", kT0 + 30001, 20s, ClaimScope::kAllRunning,
                                      JobKind::kSnapshot);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 1u);
  EXPECT_EQ((*all)[0].id, snap->job.id);
  EXPECT_EQ(store_->Get(warm.id)->owner, "gw-b");
}

TEST_P(JobStoreContractTest, CreateJobValidatesItsInput) {
  for (const char* params : {"not json", "[1,2]", "\"text\"", ""}) {
    EXPECT_EQ(store_->CreateJob({"ns", JobKind::kSnapshot, params, "gw"}).status().code(),
              StatusCode::kInvalidArgument)
        << params;
  }
  for (const char* params : {R"({"page_size":0})", R"({"page_size":10001})",
                             R"({"page_size":"10"})", R"({"page_size":10.5})", "[]"}) {
    EXPECT_EQ(store_->CreateJob({"ns", JobKind::kWarm, params, "gw"}).status().code(),
              StatusCode::kInvalidArgument)
        << params;
  }
  EXPECT_EQ(store_->CreateJob({"", JobKind::kSnapshot, "{}", "gw"}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->CreateJob({"ns", JobKind::kSnapshot, "{}", ""}).status().code(),
            StatusCode::kInvalidArgument);
  auto list = store_->ListJobs("ns", std::nullopt);
  ASSERT_TRUE(list.ok());
  EXPECT_TRUE(list->empty());  // refused calls create nothing

  // Warm params without a page size mean the default one.
  auto warm = store_->CreateJob({"ns", JobKind::kWarm, "{}", "gw"});
  ASSERT_TRUE(warm.ok()) << warm.status().ToString();
  EXPECT_EQ(store_->Get(warm->job.id)->page_size, kDefaultWarmPageSize);
}

TEST_P(JobStoreContractTest, PruneKeepsTheNewestPerNamespaceAndKind) {
  std::vector<std::string> warm, snap;
  for (int i = 0; i < 3; ++i) {
    WarmJob w = MustCreate("ns1");
    auto s = store_->CreateJob({"ns1", JobKind::kSnapshot, "{}", "gw-a"});
    ASSERT_TRUE(s.ok());
    clock_.Advance(std::chrono::milliseconds(10));
    ASSERT_TRUE(store_->Finish(w.id, "gw-a", JobStatus::kCompleted, std::nullopt, 1).ok());
    ASSERT_TRUE(store_->Finish(s->job.id, "gw-a", JobStatus::kCompleted, std::nullopt, 1).ok());
    warm.push_back(w.id);
    snap.push_back(s->job.id);
  }
  auto n = store_->Prune(clock_.WallMs(), std::chrono::hours(24), 2);
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(*n, 2u);
  EXPECT_TRUE(store_->GetJob(warm[0]).status().IsNotFound());
  EXPECT_TRUE(store_->GetJob(snap[0]).status().IsNotFound());
  for (int i = 1; i < 3; ++i) {
    EXPECT_TRUE(store_->GetJob(warm[i]).ok()) << i;
    EXPECT_TRUE(store_->GetJob(snap[i]).ok()) << i;
  }
  // DeleteNamespace removes every kind.
  EXPECT_EQ(*store_->DeleteNamespace("ns1"), 4u);
}

TEST_P(JobStoreContractTest, CheckpointReplacesParamsOnlyWhenGiven) {
  auto snap = store_->CreateJob({"ns1", JobKind::kSnapshot, kSnapshotParams, "gw-a"});
  ASSERT_TRUE(snap.ok()) << snap.status().ToString();
  JobCheckpoint cp;
  cp.documents_scanned = 7;
  ASSERT_TRUE(store_->Checkpoint(snap->job.id, "gw-a", cp).ok());
  EXPECT_EQ(store_->GetJob(snap->job.id)->params, kSnapshotParams);  // kept

  const std::string done = R"({"field":"title","source":"auto","page_size":500,"sha":"ab"})";
  cp.params = done;
  ASSERT_TRUE(store_->Checkpoint(snap->job.id, "gw-a", cp).ok());
  EXPECT_EQ(store_->GetJob(snap->job.id)->params, done);

  // Params that are not a JSON object are refused, and nothing changes.
  for (const char* bad : {"[1]", "not json", "3"}) {
    cp.params = bad;
    cp.documents_scanned = 99;
    EXPECT_EQ(store_->Checkpoint(snap->job.id, "gw-a", cp).code(), StatusCode::kInvalidArgument)
        << bad;
  }
  auto job = store_->GetJob(snap->job.id);
  EXPECT_EQ(job->params, done);
  EXPECT_EQ(job->documents_scanned, 7u);
  // The params survive the job's end.
  ASSERT_TRUE(store_->Finish(snap->job.id, "gw-a", JobStatus::kCompleted, std::nullopt, 5).ok());
  EXPECT_EQ(store_->GetJob(snap->job.id)->params, done);
}

}  // namespace
}  // namespace layer::jobs
