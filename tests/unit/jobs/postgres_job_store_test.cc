// The PostgreSQL job store: the contract suite on a real server (postgres_test_server.h), and what
// needs more than one handle on the same database: two stores (two gateway replicas' pools)
// claiming together, a lease taken over after it expired, concurrent and repeated migrations,
// connections the server broke.
#include "jobs/postgres/postgres_job_store.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "jobs/open_job_store.h"
#include "unit/jobs/job_store_contract.h"
#include "unit/jobs/postgres_test_server.h"

namespace layer::jobs {
namespace {

using namespace std::chrono_literals;

constexpr int64_t kT0 = 1779789600000;  // 2026-05-26T10:00:00.000Z

[[maybe_unused]] ::testing::Environment* const kPostgresEnv =
    ::testing::AddGlobalTestEnvironment(new PostgresTestEnvironment());

// The shared server, or nullptr after GTEST_SKIP / FAIL (see SkipOrFail). Call from a void
// function and return when it gives nullptr.
PostgresTestServer* ServerOrSkip() {
  std::string why;
  PostgresTestServer* server = PostgresTestServer::Shared(&why);
  if (!server) {
    [&] { PostgresTestServer::SkipOrFail(why); }();
  }
  return server;
}

// The contract suite's backend: a fresh database per case.
class PostgresContractBackend final : public JobStoreBackend {
 public:
  static std::unique_ptr<JobStoreBackend> Open(const JobStoreContractSettings& settings) {
    PostgresTestServer* server = ServerOrSkip();
    if (!server) return nullptr;
    std::string db = server->NewDatabase();
    if (db.empty()) return nullptr;
    PostgresJobStoreOptions opts;
    opts.conninfo = server->Url(db);
    opts.lease = settings.lease;
    opts.clock = settings.clock;
    auto s = PostgresJobStore::Open(opts);
    if (!s.ok()) {
      ADD_FAILURE() << s.status().ToString();
      return nullptr;
    }
    auto backend = std::make_unique<PostgresContractBackend>();
    backend->store_ = std::move(s).value();
    return backend;
  }
  JobStore& store() override { return *store_; }

 private:
  std::unique_ptr<PostgresJobStore> store_;
};

INSTANTIATE_TEST_SUITE_P(Postgres, JobStoreContractTest,
                         ::testing::Values(JobStoreContractParam{
                             "Postgres", &PostgresContractBackend::Open}));

class PostgresJobStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = ServerOrSkip();
    if (!server_) return;
    db_ = server_->NewDatabase();
    ASSERT_FALSE(db_.empty());
  }

  // A store on the test's database: a gateway replica's pool.
  std::unique_ptr<PostgresJobStore> OpenStore(size_t pool_size = 4,
                                              std::chrono::milliseconds statement_timeout = 10s) {
    PostgresJobStoreOptions opts;
    opts.conninfo = server_->Url(db_);
    opts.lease = 30s;
    opts.clock = &clock_;
    opts.pool_size = pool_size;
    opts.statement_timeout = statement_timeout;
    auto s = PostgresJobStore::Open(opts);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? std::move(s).value() : nullptr;
  }

  std::string Query(const std::string& sql) { return server_->Query(db_, sql); }

  PostgresTestServer* server_ = nullptr;
  std::string db_;
  ManualClock clock_{kT0};
};

TEST_F(PostgresJobStoreTest, TwoReplicasClaimingConcurrentlyNeverShareAJob) {
  auto a = OpenStore();
  auto b = OpenStore();
  ASSERT_TRUE(a && b);
  constexpr int kJobs = 60;
  std::set<std::string> all;
  for (int i = 0; i < kJobs; ++i) {
    all.insert(MustCreateWarmJob(*a, "ns" + std::to_string(i), "gw-dead", 1000).id);
  }
  clock_.Advance(31s);  // every lease has expired
  const int64_t now = clock_.WallMs();

  std::mutex mu;
  std::map<std::string, std::string> claimed_by;  // job id -> claimer
  std::vector<std::string> shared;                // ids two claimers both got
  std::atomic<int> ready{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      PostgresJobStore& store = t % 2 ? *b : *a;
      const std::string owner = fmt::format("gw-{}-{}", t % 2 ? "b" : "a", t);
      ready.fetch_add(1);
      while (ready.load() < 8) std::this_thread::yield();
      for (int round = 0; round < 3; ++round) {
        auto got = store.ClaimExpired(owner, now, 30s);
        ASSERT_TRUE(got.ok()) << got.status().ToString();
        std::lock_guard lock(mu);
        for (const WarmJob& job : *got) {
          EXPECT_EQ(job.owner, owner);
          if (!claimed_by.emplace(job.id, owner).second) shared.push_back(job.id);
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_TRUE(shared.empty()) << shared.size() << " jobs were claimed twice, e.g. "
                              << (shared.empty() ? "" : shared[0]);
  EXPECT_EQ(claimed_by.size(), all.size());
  // The store agrees with the claimers: each job is held by the one that says it claimed it.
  for (const auto& [id, owner] : claimed_by) {
    auto job = b->Get(id);
    ASSERT_TRUE(job.ok());
    EXPECT_EQ(job->owner, owner) << id;
  }
}

TEST_F(PostgresJobStoreTest, ALeaseIsTakenOverByAnotherReplicaAfterItExpires) {
  auto a = OpenStore();
  auto b = OpenStore();
  ASSERT_TRUE(a && b);
  WarmJob job = MustCreateWarmJob(*a, "ns1", "gw-a", 500);
  ASSERT_TRUE(a->Checkpoint(job.id, "gw-a", {"\"k-41\"", 41, 0.4, 2}).ok());

  // While A's lease runs, B takes nothing, and a warm of the namespace through B is A's job.
  clock_.Advance(29s);
  auto early = b->ClaimExpired("gw-b", clock_.WallMs(), 30s);
  ASSERT_TRUE(early.ok());
  EXPECT_TRUE(early->empty());
  auto second = b->Create({"ns1", 1000, "gw-b"});
  ASSERT_TRUE(second.ok());
  EXPECT_FALSE(second->created);
  EXPECT_EQ(second->job.id, job.id);

  // A dies (no more checkpoints); once its lease has expired B takes the job from its cursor.
  clock_.Advance(2s);
  auto taken = b->ClaimExpired("gw-b", clock_.WallMs(), 30s);
  ASSERT_TRUE(taken.ok());
  ASSERT_EQ(taken->size(), 1u);
  EXPECT_EQ((*taken)[0].id, job.id);
  EXPECT_EQ((*taken)[0].cursor, "\"k-41\"");
  EXPECT_EQ((*taken)[0].documents_scanned, 41u);
  EXPECT_EQ((*taken)[0].page_size, 500);
  EXPECT_EQ((*taken)[0].lease_expires_at, clock_.WallMs() + 30000);

  // A comes back: its writes are refused, B's go through.
  EXPECT_EQ(a->Checkpoint(job.id, "gw-a", {"\"k-50\"", 50, 0.5, 2}).code(), StatusCode::kAborted);
  EXPECT_EQ(a->Finish(job.id, "gw-a", JobStatus::kCompleted, std::nullopt, 1).code(),
            StatusCode::kAborted);
  ASSERT_TRUE(b->Checkpoint(job.id, "gw-b", {"\"k-60\"", 60, 0.6, 2}).ok());
  ASSERT_TRUE(b->Finish(job.id, "gw-b", JobStatus::kCompleted, std::nullopt, 7).ok());
  auto done = a->Get(job.id);
  ASSERT_TRUE(done.ok());
  EXPECT_EQ(done->status, JobStatus::kCompleted);
  EXPECT_EQ(done->documents_scanned, 60u);
  // Cancel from either replica sees the same record.
  WarmJob next = MustCreateWarmJob(*b, "ns1", "gw-b", 1000);
  auto cancelled = a->Cancel(next.id);
  ASSERT_TRUE(cancelled.ok());
  EXPECT_EQ(cancelled->status, JobStatus::kCancelled);
  EXPECT_EQ(b->Checkpoint(next.id, "gw-b", {"1", 1, 0.1, 0}).code(), StatusCode::kAborted);
}

TEST_F(PostgresJobStoreTest, MigrationRunsOnceForConcurrentStartersAndIsIdempotent) {
  constexpr int kStarters = 6;
  std::vector<std::unique_ptr<PostgresJobStore>> stores(kStarters);
  std::vector<std::thread> threads;
  std::atomic<int> ready{0};
  for (int i = 0; i < kStarters; ++i) {
    threads.emplace_back([&, i] {
      ready.fetch_add(1);
      while (ready.load() < kStarters) std::this_thread::yield();
      stores[static_cast<size_t>(i)] = OpenStore(1);
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& s : stores) ASSERT_TRUE(s);
  EXPECT_EQ(Query("SELECT count(*) FROM layer_schema_version"), "1");
  EXPECT_EQ(Query("SELECT version FROM layer_schema_version WHERE component = 'jobs'"), "1");

  // Every starter works on the one schema; opening again keeps the data.
  WarmJob job = MustCreateWarmJob(*stores[0], "ns1", "gw-a", 1000);
  stores.clear();
  auto again = OpenStore();
  ASSERT_TRUE(again);
  auto got = again->Get(job.id);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->ns, "ns1");
  EXPECT_EQ(Query("SELECT count(*) FROM layer_schema_version"), "1");
}

TEST_F(PostgresJobStoreTest, ANewerSchemaIsRefused) {
  ASSERT_TRUE(OpenStore());
  std::string err;
  ASSERT_TRUE(server_->Admin("UPDATE layer_schema_version SET version = 99", &err, db_)) << err;
  PostgresJobStoreOptions opts;
  opts.conninfo = server_->Url(db_);
  auto s = PostgresJobStore::Open(opts);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kIoError) << s.status().ToString();
  EXPECT_NE(s.status().message().find("99"), std::string::npos) << s.status().ToString();
}

TEST_F(PostgresJobStoreTest, RecoversFromConnectionsTheServerTerminated) {
  auto store = OpenStore(2);
  ASSERT_TRUE(store);
  WarmJob job = MustCreateWarmJob(*store, "ns1", "gw-a", 1000);
  std::vector<int> pids = store->BackendPids();
  ASSERT_FALSE(pids.empty());
  const uint64_t opened = store->connections_opened();
  std::string list;
  for (int pid : pids) list += (list.empty() ? "" : ",") + std::to_string(pid);
  std::string err;
  ASSERT_TRUE(server_->Admin("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid IN (" +
                                 list + ")",
                             &err))
      << err;
  // Wait for the backends to be gone (event, bounded only against a hang).
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (Query("SELECT count(*) FROM pg_stat_activity WHERE pid IN (" + list + ")") != "0") {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "backends not terminated";
    std::this_thread::sleep_for(10ms);
  }

  // The next call succeeds, or fails cleanly as Unavailable; the one after succeeds.
  auto first = store->Get(job.id);
  if (!first.ok()) {
    EXPECT_EQ(first.status().code(), StatusCode::kUnavailable) << first.status().ToString();
    EXPECT_TRUE(first.status().retryable());
  }
  auto second = store->Get(job.id);
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_EQ(second->id, job.id);
  EXPECT_GT(store->connections_opened(), opened);  // it reconnected
  ASSERT_TRUE(store->Checkpoint(job.id, "gw-a", {"5", 5, 0.5, 0}).ok());
  for (int pid : store->BackendPids()) {
    EXPECT_EQ(std::find(pids.begin(), pids.end(), pid), pids.end()) << "a dead connection kept";
  }
}

TEST_F(PostgresJobStoreTest, AStatementBlockedBeyondItsTimeoutFailsAsTimeout) {
  auto store = OpenStore(2, 300ms);
  ASSERT_TRUE(store);
  WarmJob job = MustCreateWarmJob(*store, "ns1", "gw-a", 1000);
  // Another session holds the job's row locked, in a transaction left open.
  const std::string url = server_->Url(db_);
  PGconn* holder = PQconnectdb(url.c_str());
  ASSERT_EQ(PQstatus(holder), CONNECTION_OK);
  PQclear(PQexec(holder, "BEGIN"));
  PGresult* r = PQexec(holder, ("SELECT 1 FROM layer_jobs WHERE id = '" + job.id + "' FOR UPDATE").c_str());
  ASSERT_EQ(PQresultStatus(r), PGRES_TUPLES_OK);
  PQclear(r);

  Status st = store->Checkpoint(job.id, "gw-a", {"5", 5, 0.5, 0});
  EXPECT_EQ(st.code(), StatusCode::kTimeout) << st.ToString();
  EXPECT_TRUE(st.retryable());

  PQclear(PQexec(holder, "ROLLBACK"));
  PQfinish(holder);
  // The connection that timed out is still good.
  ASSERT_TRUE(store->Checkpoint(job.id, "gw-a", {"6", 6, 0.6, 0}).ok());
  EXPECT_EQ(store->Get(job.id)->documents_scanned, 6u);
}

TEST_F(PostgresJobStoreTest, AnUnreachableServerIsUnavailable) {
  PostgresJobStoreOptions opts;
  opts.conninfo = "postgresql://postgres@/nowhere?host=" + server_->dir() + "/missing&port=5432";
  auto s = PostgresJobStore::Open(opts);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kUnavailable) << s.status().ToString();
  EXPECT_TRUE(s.status().retryable());
  opts.conninfo = "";
  EXPECT_EQ(PostgresJobStore::Open(opts).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(PostgresJobStoreTest, OpenJobStoreSelectsTheBackendByUrl) {
  JobStoreSettings settings;
  settings.url = server_->Url(db_);
  settings.clock = &clock_;
  auto pg = OpenJobStore(settings);
  ASSERT_TRUE(pg.ok()) << pg.status().ToString();
  EXPECT_TRUE(pg->shared);
  EXPECT_EQ(pg->description.rfind("postgresql ", 0), 0u) << pg->description;

  const std::string dir = server_->dir() + "/sqlite-" + db_;
  settings.url = "sqlite://" + dir + "/jobs.sqlite3";
  auto lite = OpenJobStore(settings);
  ASSERT_TRUE(lite.ok()) << lite.status().ToString();
  EXPECT_FALSE(lite->shared);
  EXPECT_TRUE(std::filesystem::exists(dir + "/jobs.sqlite3"));

  settings.url = "";
  settings.data_dir = dir + "/data";
  auto def = OpenJobStore(settings);
  ASSERT_TRUE(def.ok()) << def.status().ToString();
  EXPECT_TRUE(std::filesystem::exists(dir + "/data/jobs.sqlite3"));

  settings.url = "mysql://x";
  EXPECT_EQ(OpenJobStore(settings).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace layer::jobs
