#include "jobs/sqlite/sqlite_job_store.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <boost/json/parse.hpp>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>

#include <fmt/format.h>

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
    opts.clock = &clock_;
    auto s = SqliteJobStore::Open(opts);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? std::move(s).value() : nullptr;
  }

  WarmJob MustCreate(const std::string& ns, const std::string& owner = "gw-a",
                     int page_size = 1000) {
    return MustCreateWarmJob(*store_, ns, owner, page_size);
  }

  layer::testing::StorageTempDir dir_;
  ManualClock clock_{kT0};
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

  clock_.Advance(std::chrono::milliseconds(5000));  // restart well within the old lease
  store_ = OpenStore();
  ASSERT_TRUE(store_);
  auto got = store_->Get(job.id);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->status, JobStatus::kRunning);
  EXPECT_EQ(got->documents_scanned, 900u);
  EXPECT_EQ(got->page_size, 300);
  EXPECT_EQ(store_->Get(done.id)->stable_as_of, 11u);
  // The embedded gateway claims every running job at start-up.
  auto claimed = store_->ClaimExpired("gw-restarted", clock_.WallMs(), 30s, ClaimScope::kAllRunning);
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
    opts.clock = settings.clock;
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

// Params of a snapshot job (for WarmJobViewRoundTrips below).
constexpr char kSnapshotParams[] =
    R"({"field":"title","source":"auto","filters":["year","Gte",2020],"page_size":500})";

// ---- Migration of a file of the first schema (warm jobs only, a page_size column).

// The first schema, as its store created it.
constexpr char kFirstSchema[] = R"sql(
PRAGMA journal_mode=WAL;
CREATE TABLE IF NOT EXISTS warm_jobs (
  seq               INTEGER PRIMARY KEY AUTOINCREMENT,  -- creation order
  id                TEXT NOT NULL UNIQUE,
  namespace         TEXT NOT NULL,
  status            TEXT NOT NULL,
  progress          REAL NOT NULL DEFAULT 0,
  documents_scanned INTEGER NOT NULL DEFAULT 0,          -- u64 stored as its int64 bit pattern
  stable_as_of      INTEGER,
  created_at        INTEGER NOT NULL,
  completed_at      INTEGER,
  error             TEXT,
  cache_errors      INTEGER NOT NULL DEFAULT 0,
  page_size         INTEGER NOT NULL,
  cursor            TEXT,
  owner             TEXT NOT NULL DEFAULT '',
  lease_expires_at  INTEGER NOT NULL DEFAULT 0,
  updated_at        INTEGER NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS warm_jobs_one_running ON warm_jobs(namespace)
  WHERE status = 'running';
CREATE INDEX IF NOT EXISTS warm_jobs_by_namespace ON warm_jobs(namespace, created_at, seq);
CREATE INDEX IF NOT EXISTS warm_jobs_running_lease ON warm_jobs(lease_expires_at)
  WHERE status = 'running';
)sql";

constexpr char kOldDone[] = "00000000-0000-4000-8000-000000000001";
constexpr char kOldRunning[] = "00000000-0000-4000-8000-000000000002";
constexpr char kOldFailed[] = "00000000-0000-4000-8000-000000000003";

class SqliteJobStoreMigrationTest : public SqliteJobStoreTest {
 protected:
  // Runs `sql` on the database at `path` through a plain SQLite connection.
  static void RawSql(const std::string& path, const std::string& sql) {
    std::filesystem::create_directories(std::filesystem::path(path).parent_path());
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    char* err = nullptr;
    int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
    EXPECT_EQ(rc, SQLITE_OK) << (err ? err : "");
    sqlite3_free(err);
    sqlite3_close(db);
  }

  // The first column of the first row of `sql` on the database at `path`, as text.
  static std::string RawQuery(const std::string& path, const std::string& sql) {
    sqlite3* db = nullptr;
    EXPECT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    sqlite3_stmt* s = nullptr;
    std::string out;
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &s, nullptr) == SQLITE_OK &&
        sqlite3_step(s) == SQLITE_ROW && sqlite3_column_text(s, 0)) {
      out = reinterpret_cast<const char*>(sqlite3_column_text(s, 0));
    }
    sqlite3_finalize(s);
    sqlite3_close(db);
    return out;
  }

  Result<std::unique_ptr<SqliteJobStore>> Open(const std::string& path) {
    SqliteJobStoreOptions opts;
    opts.path = path;
    opts.lease = 30s;
    opts.clock = &clock_;
    return SqliteJobStore::Open(opts);
  }

  // A file of the first schema holding a completed, a running and a failed warm job.
  std::string MakeFirstSchemaFile() {
    const std::string path = dir_.Sub("old/jobs.sqlite3");
    RawSql(path, kFirstSchema);
    RawSql(path, fmt::format(
                     "INSERT INTO warm_jobs (id, namespace, status, progress, documents_scanned, "
                     "stable_as_of, created_at, completed_at, error, cache_errors, page_size, "
                     "cursor, owner, lease_expires_at, updated_at) VALUES "
                     "('{0}', 'ns1', 'completed', 1.0, 500, 7, {3}, {4}, NULL, 1, 500, '500', '', "
                     "0, {4}), "
                     "('{1}', 'ns1', 'running', 0.25, 300, NULL, {5}, NULL, NULL, 2, 250, "
                     "'\"k-300\"', 'gw-old', {6}, {7}), "
                     "('{2}', 'ns2', 'failed', 0.1, 10, NULL, {8}, {9}, 'boom', 0, 1000, NULL, '', "
                     "0, {9})",
                     kOldDone, kOldRunning, kOldFailed, kT0 - 2000, kT0 - 1000, kT0 - 500,
                     kT0 + 29500, kT0 - 100, kT0 - 400, kT0 - 300));
    return path;
  }
};

TEST_F(SqliteJobStoreMigrationTest, OpensAFileOfTheFirstSchemaAndFindsItsJobs) {
  const std::string path = MakeFirstSchemaFile();
  auto opened = Open(path);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  std::unique_ptr<SqliteJobStore> store = std::move(opened).value();

  auto running = store->Get(kOldRunning);
  ASSERT_TRUE(running.ok()) << running.status().ToString();
  EXPECT_EQ(running->ns, "ns1");
  EXPECT_EQ(running->status, JobStatus::kRunning);
  EXPECT_DOUBLE_EQ(running->progress, 0.25);
  EXPECT_EQ(running->documents_scanned, 300u);
  EXPECT_EQ(running->cache_errors, 2u);
  EXPECT_EQ(running->page_size, 250);
  EXPECT_EQ(running->cursor, "\"k-300\"");
  EXPECT_EQ(running->owner, "gw-old");
  EXPECT_EQ(running->lease_expires_at, kT0 + 29500);
  EXPECT_EQ(running->created_at, kT0 - 500);
  EXPECT_EQ(running->updated_at, kT0 - 100);
  auto record = store->GetJob(kOldRunning);
  ASSERT_TRUE(record.ok());
  EXPECT_EQ(record->kind, JobKind::kWarm);
  EXPECT_EQ(record->params, R"({"page_size":250})");

  auto ns1 = store->List("ns1");
  ASSERT_TRUE(ns1.ok()) << ns1.status().ToString();
  ASSERT_EQ(ns1->size(), 2u);
  EXPECT_EQ((*ns1)[0].id, kOldDone);  // oldest first
  EXPECT_EQ((*ns1)[0].status, JobStatus::kCompleted);
  EXPECT_EQ((*ns1)[0].page_size, 500);
  EXPECT_EQ((*ns1)[0].stable_as_of, 7u);
  EXPECT_EQ((*ns1)[0].completed_at, kT0 - 1000);
  EXPECT_EQ((*ns1)[1].id, kOldRunning);
  auto failed = store->Get(kOldFailed);
  ASSERT_TRUE(failed.ok());
  EXPECT_EQ(failed->status, JobStatus::kFailed);
  EXPECT_EQ(failed->error, "boom");
  EXPECT_EQ(failed->page_size, 1000);
  EXPECT_FALSE(failed->cursor);

  // The rules hold for the migrated jobs: the running one is ns1's running warm job, a snapshot
  // job may run beside it, and a claimer takes it once its lease expires, with its checkpoint.
  auto again = store->Create({"ns1", 1000, "gw-new"});
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_FALSE(again->created);
  EXPECT_EQ(again->job.id, kOldRunning);
  auto snap = store->CreateJob({"ns1", JobKind::kSnapshot, "{}", "gw-new"});
  ASSERT_TRUE(snap.ok()) << snap.status().ToString();
  EXPECT_TRUE(snap->created);
  auto claimed = store->ClaimExpired("gw-new", kT0 + 29500, 30s);
  ASSERT_TRUE(claimed.ok()) << claimed.status().ToString();
  ASSERT_EQ(claimed->size(), 1u);
  EXPECT_EQ((*claimed)[0].id, kOldRunning);
  EXPECT_EQ((*claimed)[0].cursor, "\"k-300\"");
  EXPECT_EQ((*claimed)[0].page_size, 250);
  ASSERT_TRUE(store->Checkpoint(kOldRunning, "gw-new", {"\"k-400\"", 400, 0.5, 2}).ok());
  ASSERT_TRUE(store->Finish(kOldRunning, "gw-new", JobStatus::kCompleted, std::nullopt, 9).ok());
  EXPECT_TRUE(store->Create({"ns1", 100, "gw-new"})->created);

  // The file is now of the current schema, and opening it again changes nothing.
  store.reset();
  EXPECT_EQ(RawQuery(path, "PRAGMA user_version"), "3");
  EXPECT_EQ(RawQuery(path,
                     "SELECT COUNT(*) FROM pragma_table_info('warm_jobs') "
                     "WHERE name = 'page_size'"),
            "0");
  auto reopened = Open(path);
  ASSERT_TRUE(reopened.ok()) << reopened.status().ToString();
  auto all = (*reopened)->ListJobs("ns1", std::nullopt);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 4u);
  EXPECT_EQ((*reopened)->Get(kOldRunning)->documents_scanned, 400u);
  EXPECT_EQ((*reopened)->Get(kOldDone)->page_size, 500);
}

TEST_F(SqliteJobStoreMigrationTest, ProcessesOpeningAFileTogetherMigrateItOnce) {
  const std::string path = MakeFirstSchemaFile();
  std::vector<std::thread> threads;
  std::atomic<int> opened{0};
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      auto store = Open(path);
      EXPECT_TRUE(store.ok()) << store.status().ToString();
      if (store.ok() && (*store)->Get(kOldRunning).ok()) ++opened;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(opened.load(), 4);
  EXPECT_EQ(
      RawQuery(path, "SELECT params FROM warm_jobs WHERE id = '" + std::string(kOldDone) + "'"),
      R"({"page_size":500})");
}

TEST_F(SqliteJobStoreMigrationTest, OpensAFileOfTheSecondSchemaAndItsJobsCanWait) {
  const std::string path = dir_.Sub("v2/jobs.sqlite3");
  std::string id;
  {
    auto store = Open(path);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    auto created = (*store)->Create({"ns1", 100, "gw-a"});
    ASSERT_TRUE(created.ok());
    id = created->job.id;
  }
  // What version 2 was: no `waiting` column.
  RawSql(path, "ALTER TABLE warm_jobs DROP COLUMN waiting; PRAGMA user_version = 2;");
  auto store = Open(path);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  EXPECT_EQ(RawQuery(path, "PRAGMA user_version"), "3");
  auto job = (*store)->Get(id);
  ASSERT_TRUE(job.ok()) << job.status().ToString();
  EXPECT_FALSE(job->waiting);
  JobCheckpoint waiting{std::nullopt, 0, 0, 0};
  waiting.waiting = "why";
  ASSERT_TRUE((*store)->Checkpoint(id, "gw-a", waiting).ok());
  EXPECT_EQ((*store)->Get(id)->waiting, "why");
}

TEST_F(SqliteJobStoreMigrationTest, OpenRefusesANewerSchema) {
  const std::string path = dir_.Sub("newer/jobs.sqlite3");
  RawSql(path, "CREATE TABLE warm_jobs (id TEXT); PRAGMA user_version = 4;");
  auto opened = Open(path);
  EXPECT_EQ(opened.status().code(), StatusCode::kIoError) << opened.status().ToString();
}

TEST(JobStoreRenderTest, KindNames) {
  for (JobKind k : {JobKind::kWarm, JobKind::kSnapshot}) {
    EXPECT_EQ(ParseJobKind(JobKindName(k)), k);
  }
  EXPECT_EQ(JobKindName(JobKind::kWarm), "warm");
  EXPECT_EQ(JobKindName(JobKind::kSnapshot), "snapshot");
  EXPECT_FALSE(ParseJobKind("Warm"));
}

TEST(JobStoreRenderTest, WarmJobViewRoundTrips) {
  WarmJob warm;
  warm.id = "x";
  warm.ns = "n";
  warm.status = JobStatus::kFailed;
  warm.documents_scanned = 12;
  warm.error = "boom";
  warm.cursor = "12";
  warm.owner = "gw";
  warm.page_size = 42;
  Job job = warm.ToJob();
  EXPECT_EQ(job.kind, JobKind::kWarm);
  EXPECT_EQ(job.params, R"({"page_size":42})");
  EXPECT_EQ(job.id, "x");
  EXPECT_EQ(job.error, "boom");
  auto back = WarmJob::FromJob(job);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(WarmJobToJson(*back), WarmJobToJson(warm));
  EXPECT_EQ(back->cursor, "12");
  EXPECT_EQ(back->owner, "gw");

  job.params = R"({"page_size":-1})";
  EXPECT_EQ(WarmJob::FromJob(job).status().code(), StatusCode::kCorruption);
  job.kind = JobKind::kSnapshot;
  job.params = "{}";
  EXPECT_EQ(WarmJob::FromJob(job).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(*WarmPageSizeFromParams(R"({"page_size":10000,"other":1})"), 10000);
  EXPECT_EQ(*WarmPageSizeFromParams("{}"), kDefaultWarmPageSize);
  EXPECT_TRUE(ValidateJobParams(JobKind::kSnapshot, kSnapshotParams).ok());
}

}  // namespace
}  // namespace layer::jobs
