#include "jobs/sqlite/sqlite_job_store.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <boost/json/parse.hpp>
#include <fstream>
#include <set>

#include "unit/jobs/job_store_contract.h"
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

// The contract suite's backend: a database file in a directory of its own.
class SqliteContractBackend final : public JobStoreBackend {
 public:
  static std::unique_ptr<JobStoreBackend> Open(const JobStoreContractSettings& settings) {
    auto backend = std::make_unique<SqliteContractBackend>();
    SqliteJobStoreOptions opts;
    opts.path = backend->dir_.Sub("data/jobs.sqlite3");
    opts.lease = settings.lease;
    opts.now_ms = settings.now_ms;
    auto s = SqliteJobStore::Open(opts);
    if (!s.ok()) {
      ADD_FAILURE() << s.status().ToString();
      return nullptr;
    }
    backend->store_ = std::move(s).value();
    return backend;
  }
  JobStore& store() override { return *store_; }

 private:
  layer::testing::StorageTempDir dir_;
  std::unique_ptr<SqliteJobStore> store_;  // after dir_: closed before the directory is removed
};

INSTANTIATE_TEST_SUITE_P(Sqlite, JobStoreContractTest,
                         ::testing::Values(JobStoreContractParam{"Sqlite",
                                                                 &SqliteContractBackend::Open}));

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
