// WarmRunner against a scripted in-process origin, the RocksDB cache and the SQLite job store:
// the read-ahead pipeline's edge cases (cancel while a page is read ahead, a failing read-ahead,
// the cache lost mid-pipeline, resume from a checkpoint), the checkpoint-order invariant, and the
// sweep (taking over jobs whose owner died, pruning) while the runner runs.
#include "jobs/warm_runner.h"

#include <gtest/gtest.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "cache/fault_injecting_cache.h"
#include "cache/rocksdb/rocksdb_cache.h"
#include "common/clock.h"
#include "jobs/sqlite/sqlite_job_store.h"
#include "unit/cache/test_util.h"

namespace layer::jobs {
namespace {

namespace asio = boost::asio;
namespace json = boost::json;
using namespace std::chrono_literals;

constexpr char kNs[] = "warmns";
constexpr uint64_t kOriginStamp = 100;

// Waits (bounded, so a bug fails the test instead of hanging it) until `done()`.
bool WaitFor(const std::function<bool()>& done, std::chrono::milliseconds limit = 20s) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(2ms);
  }
  return true;
}

// An origin holding documents 1..docs (u64 ids, stamped kOriginStamp) that answers the warm
// runner's metadata and page queries. Pages are numbered by their cursor: page p holds ids
// p*page_size+1 .. (p+1)*page_size.
class ScriptedOrigin final : public http::Upstream {
 public:
  explicit ScriptedOrigin(uint64_t docs) : docs_(docs) {}

  // A query for page `held_page` does not answer until Release().
  std::atomic<int64_t> held_page{-1};
  // A query for page `failing_page` answers `fail_status`.
  std::atomic<int64_t> failing_page{-1};
  std::atomic<unsigned> fail_status{500};

  // Calls made from a thread of another pool than `home` (the runner's): an HttpUpstream shards
  // its connections by the pool it was made for.
  std::atomic<const http::IoPool*> home{nullptr};
  int off_home() const { return off_home_.load(); }

  void Release() { released_ = true; }
  bool holding() const { return holding_.load() > 0; }
  int in_flight() const { return in_flight_.load(); }
  void Record(std::string event) {
    std::lock_guard lock(mu_);
    events_.push_back(std::move(event));
  }
  std::vector<std::string> events() const {
    std::lock_guard lock(mu_);
    return events_;
  }
  int Count(const std::string& event) const {
    auto ev = events();
    return static_cast<int>(std::count(ev.begin(), ev.end(), event));
  }

  // The Authorization headers of the requests, in order ("" for none).
  std::vector<std::string> authorizations() const {
    std::lock_guard lock(mu_);
    return authorizations_;
  }

  Task<Result<http::Response>> Send(http::Request req, bool) override {
    {
      std::lock_guard lock(mu_);
      authorizations_.emplace_back(req[http::Field::authorization]);
      targets_.emplace_back(req.target());
    }
    if (http::IoPool::Current() != home.load()) ++off_home_;
    ++in_flight_;
    http::Response res{http::Code::ok, 11};
    res.set(http::Field::content_type, "application/json");
    std::string target(req.target());
    if (target.ends_with("/metadata")) {
      res.body() = R"({"approx_row_count":)" + std::to_string(docs_) +
                   R"(,"index":{"status":"up-to-date"}})";
    } else if (target.ends_with("/query")) {
      json::object q = json::parse(req.body()).as_object();
      const uint64_t top_k = q.at("top_k").to_number<uint64_t>();
      const uint64_t page_size = top_k - 1;
      uint64_t cursor = 0;
      if (auto* f = q.if_contains("filters")) cursor = f->as_array().at(2).to_number<uint64_t>();
      const int64_t page = static_cast<int64_t>(cursor / page_size);
      Record("query " + std::to_string(page));
      if (page == held_page.load()) {
        ++holding_;
        asio::steady_timer poll(co_await asio::this_coro::executor);
        while (!released_.load()) {
          poll.expires_after(1ms);
          co_await poll.async_wait(asio::as_tuple(asio::use_awaitable));
        }
        --holding_;
      }
      if (page == failing_page.load()) {
        res.result(fail_status.load());
        res.body() = R"({"error":"injected"})";
      } else {
        std::string rows;
        for (uint64_t id = cursor + 1; id <= std::min(cursor + top_k, docs_); ++id) {
          if (!rows.empty()) rows += ',';
          rows += R"({"id":)" + std::to_string(id) + R"(,"n":)" + std::to_string(id) +
                  R"(,"_hevlayer_upserted_at":)" + std::to_string(kOriginStamp) +
                  R"(,"vector":[0.5,0.25]})";
        }
        res.body() = R"({"rows":[)" + rows + "]}";
      }
    } else {
      res.result(http::Code::not_found);
      res.body() = R"({"error":"not found"})";
    }
    --in_flight_;
    co_return res;
  }

  const std::string& base() const override { return base_; }

 private:
  const uint64_t docs_;
  const std::string base_ = "http://scripted";
  std::atomic<bool> released_{false};
  std::atomic<int> holding_{0};
  std::atomic<int> in_flight_{0};
  std::atomic<int> off_home_{0};
  mutable std::mutex mu_;  // guards events_, authorizations_ and targets_
  std::vector<std::string> events_;
  std::vector<std::string> authorizations_;
  std::vector<std::string> targets_;

 public:
  std::vector<std::string> targets() const {
    std::lock_guard lock(mu_);
    return targets_;
  }
};

// Forwards to the SQLite store; Checkpoint records an event and runs a hook first and after.
class RecordingStore final : public JobStore {
 public:
  explicit RecordingStore(JobStore& inner) : inner_(inner) {}
  std::function<void(const WarmJobCheckpoint&)> before_checkpoint;
  std::function<void(const WarmJobCheckpoint&)> after_checkpoint;
  // Store faults: the next `failing_checkpoints` checkpoints and `failing_finishes` finishes fail
  // with IoError without reaching the store; the next `unreachable_checkpoints` checkpoints fail
  // Unavailable (a store restarting), after `unreachable_after` documents.
  std::atomic<int> failing_checkpoints{0};
  std::atomic<int> unreachable_checkpoints{0};
  std::atomic<int> checkpoint_attempts{0};
  uint64_t unreachable_after = 0;
  std::atomic<int> failing_finishes{0};
  std::atomic<int> finishes{0};

  Result<CreateJobOutcome> CreateJob(const CreateJobRequest& r) override {
    return inner_.CreateJob(r);
  }
  Result<Job> GetJob(std::string_view id) override { return inner_.GetJob(id); }
  Result<std::vector<Job>> ListJobs(std::string_view ns, std::optional<JobKind> kind) override {
    return inner_.ListJobs(ns, kind);
  }
  Status Checkpoint(std::string_view id, std::string_view owner,
                    const WarmJobCheckpoint& cp) override {
    if (before_checkpoint) before_checkpoint(cp);
    ++checkpoint_attempts;
    if (failing_checkpoints.fetch_sub(1) > 0) return Status::IoError("injected store fault");
    if (cp.documents_scanned > unreachable_after && unreachable_checkpoints.fetch_sub(1) > 0) {
      return Status::Unavailable("injected: the store is restarting");
    }
    Status st = inner_.Checkpoint(id, owner, cp);
    if (after_checkpoint) after_checkpoint(cp);
    return st;
  }
  Status Finish(std::string_view id, std::string_view owner, JobStatus status,
                std::optional<std::string> error, std::optional<uint64_t> stable) override {
    ++finishes;
    if (failing_finishes.fetch_sub(1) > 0) return Status::IoError("injected store fault");
    return inner_.Finish(id, owner, status, std::move(error), stable);
  }
  Result<Job> CancelJob(std::string_view id) override { return inner_.CancelJob(id); }
  Result<std::vector<Job>> ClaimExpiredJobs(std::string_view owner, int64_t now_ms,
                                            std::chrono::milliseconds lease, ClaimScope scope,
                                            JobKind kind) override {
    return inner_.ClaimExpiredJobs(owner, now_ms, lease, scope, kind);
  }
  Result<uint64_t> ReleaseOwner(std::string_view owner) override {
    return inner_.ReleaseOwner(owner);
  }
  Result<uint64_t> DeleteNamespace(std::string_view ns) override {
    return inner_.DeleteNamespace(ns);
  }
  Result<uint64_t> Prune(int64_t now_ms, std::chrono::milliseconds keep_for,
                         uint64_t keep_max) override {
    return inner_.Prune(now_ms, keep_for, keep_max);
  }

 private:
  JobStore& inner_;
};

class WarmRunnerTest : public ::testing::Test {
 protected:
  static constexpr int kPage = 10;
  static constexpr uint64_t kDocs = 95;

  void SetUp() override {
    cache::RocksDbCacheOptions copts;
    copts.path = dir_.Sub("cache");
    auto db = cache::RocksDbCache::Open(copts);
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    backend_ = std::shared_ptr<cache::DocumentCache>(std::move(*db));
    faults_ = std::make_shared<cache::FaultInjectingCache>(backend_);
    cache::CacheGuardOptions gopts;
    gopts.op_timeout = 5s;  // a loaded test machine must not trip the breaker
    cache_ = std::make_unique<coherence::CacheCoherence>(
        std::make_unique<cache::CacheGuard>(faults_, gopts), coherence::CoherenceOptions{});

    SqliteJobStoreOptions sopts;
    sopts.path = dir_.Sub("jobs.sqlite3");
    sopts.synchronous_full = false;
    auto store = SqliteJobStore::Open(sopts);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    sqlite_ = std::move(*store);
    store_ = std::make_unique<RecordingStore>(*sqlite_);
    store_->before_checkpoint = [this](const WarmJobCheckpoint& cp) {
      origin_.Record("checkpoint " + std::to_string(cp.documents_scanned / kPage - 1));
      CheckCheckpointIsCached(cp);
    };
    pool_.Start();
    origin_.home = &pool_;

    WarmRunnerOptions wopts;
    wopts.owner = "gw-test";
    wopts.max_attempts = 3;
    wopts.retry_base = 1ms;
    wopts.request_slices = &slices_;
    runner_ = std::make_unique<WarmRunner>(pool_, *store_, origin_, *cache_, nullptr, wopts);
  }

  void TearDown() override {
    origin_.Release();
    EXPECT_TRUE(WaitFor([&] { return runner_->active() == 0 && origin_.in_flight() == 0; }));
    pool_.Stop();
    pool_.Join();
    runner_.reset();
  }

  // The checkpoint-order invariant: every document a checkpoint claims is in the cache.
  void CheckCheckpointIsCached(const WarmJobCheckpoint& cp) {
    for (uint64_t id = 1; id <= cp.documents_scanned && id <= kDocs; ++id) {
      if (!Cached(id)) {
        ++invariant_violations_;
        return;
      }
    }
  }

  bool Cached(uint64_t id) {
    auto doc = backend_->Get(kNs, cache::DocId::U64(id));
    return doc.ok() && doc->has_value() && !(*doc)->tombstone;
  }

  WarmJob CreateJob() {
    auto created = store_->Create({kNs, kPage, "gw-test"});
    EXPECT_TRUE(created.ok() && created->created);
    return created.ok() ? created->job : WarmJob{};
  }

  WarmJob StartJob() {
    WarmJob job = CreateJob();
    runner_->Start(job);
    return job;
  }

  WarmJob WaitEnded(const std::string& id) {
    EXPECT_TRUE(WaitFor([&] { return runner_->active() == 0; })) << "the job never ended";
    auto job = store_->Get(id);
    EXPECT_TRUE(job.ok());
    return job.ok() ? *job : WarmJob{};
  }

  // The position of `event` in the origin's log, or -1.
  int Position(const std::string& event) {
    auto ev = origin_.events();
    auto it = std::find(ev.begin(), ev.end(), event);
    return it == ev.end() ? -1 : static_cast<int>(it - ev.begin());
  }

  cache::testing::TempDir dir_;
  RequestSlices slices_{std::chrono::microseconds(300)};  // no thread enrolls: only the holds
  ScriptedOrigin origin_{kDocs};
  std::shared_ptr<cache::DocumentCache> backend_;
  std::shared_ptr<cache::FaultInjectingCache> faults_;
  std::unique_ptr<coherence::CacheCoherence> cache_;
  std::unique_ptr<SqliteJobStore> sqlite_;
  std::unique_ptr<RecordingStore> store_;
  http::IoPool pool_{1};
  std::unique_ptr<WarmRunner> runner_;
  std::atomic<int> invariant_violations_{0};
};

TEST_F(WarmRunnerTest, ReadsOnePageAheadAndCachesEveryDocument) {
  // A slow checkpoint gives an unbounded read-ahead every chance to run further ahead.
  store_->after_checkpoint = [](const WarmJobCheckpoint&) { std::this_thread::sleep_for(5ms); };
  WarmJob job = WaitEnded(StartJob().id);
  EXPECT_EQ(job.status, JobStatus::kCompleted);
  EXPECT_EQ(job.documents_scanned, kDocs);
  EXPECT_EQ(job.cache_errors, 0u);
  EXPECT_EQ(job.cursor, std::to_string(kDocs));
  for (uint64_t id = 1; id <= kDocs; ++id) EXPECT_TRUE(Cached(id)) << id;
  EXPECT_EQ(invariant_violations_.load(), 0);
  // Metadata, schema and page reads all ran on the runner's pool (a gateway gives it a pool of
  // its own, apart from the request threads).
  EXPECT_EQ(origin_.off_home(), 0);
  const int pages = static_cast<int>((kDocs + kPage - 1) / kPage);
  for (int p = 1; p < pages; ++p) {
    // Page p is requested before page p-1 is checkpointed (read ahead)…
    EXPECT_LT(Position("query " + std::to_string(p)),
              Position("checkpoint " + std::to_string(p - 1)))
        << p;
    // …but not before page p-4 is checkpointed (one page read ahead, one parsed, two being
    // written).
    if (p >= 4) {
      EXPECT_GT(Position("query " + std::to_string(p)),
                Position("checkpoint " + std::to_string(p - 4)))
          << p;
    }
    EXPECT_EQ(origin_.Count("query " + std::to_string(p)), 1) << p;
  }
  auto cached = backend_->Get(kNs, cache::DocId::U64(42));
  ASSERT_TRUE(cached.ok() && cached->has_value());
  EXPECT_EQ((*cached)->attributes_json, R"({"n":42})");
  EXPECT_EQ((*cached)->upserted_at, kOriginStamp);
}

// A runner of jobs whose tenants are keys (docs/design.md §9.7), in place of the fixture's.
class TenantWarmRunnerTest : public WarmRunnerTest {
 protected:
  void UseCredentials() {
    runner_.reset();
    WarmRunnerOptions wopts;
    wopts.owner = "gw-test";
    wopts.max_attempts = 3;
    wopts.retry_base = 1ms;
    wopts.credentials = &credentials_;
    runner_ = std::make_unique<WarmRunner>(pool_, *store_, origin_, *cache_, nullptr, wopts);
  }
  http::Credentials credentials_;
};

TEST_F(TenantWarmRunnerTest, AJobPagesWithItsTenantsKeyAndTheNamespacesName) {
  UseCredentials();
  const std::string partition = std::string(kNs) + "@0123456789abcdef";
  credentials_.Remember("0123456789abcdef", "Bearer tenant-key");
  credentials_.Remember("fedcba9876543210", "Bearer other-key");
  auto created = store_->Create({partition, kPage, "gw-test"});
  ASSERT_TRUE(created.ok());
  ASSERT_TRUE(runner_->Start(created->job));
  WarmJob job = WaitEnded(created->job.id);
  EXPECT_EQ(job.status, JobStatus::kCompleted);
  EXPECT_EQ(job.documents_scanned, kDocs);
  for (const auto& a : origin_.authorizations()) EXPECT_EQ(a, "Bearer tenant-key");
  for (const auto& t : origin_.targets()) {
    EXPECT_TRUE(t.starts_with("/v2/namespaces/" + std::string(kNs) + "/") ||
                t.starts_with("/v1/namespaces/" + std::string(kNs) + "/"))
        << t;
  }
  // Cached in the tenant's partition, not under the namespace's own name.
  auto in_partition = backend_->Get(partition, cache::DocId::U64(7));
  ASSERT_TRUE(in_partition.ok() && in_partition->has_value());
  EXPECT_FALSE(Cached(7));
}

TEST_F(TenantWarmRunnerTest, AJobWhoseTenantHasNoKeyWaitsSaysWhyAndGoesOnOnceItHasOne) {
  UseCredentials();
  const std::string partition = std::string(kNs) + "@0123456789abcdef";
  auto created = store_->Create({partition, kPage, "gw-test"});
  ASSERT_TRUE(created.ok());
  ASSERT_TRUE(runner_->Start(created->job));
  WarmJob waiting = WaitEnded(created->job.id);  // stops executing here, still running
  EXPECT_EQ(waiting.status, JobStatus::kRunning);
  ASSERT_TRUE(waiting.waiting);
  EXPECT_NE(waiting.waiting->find("API key"), std::string::npos);
  EXPECT_TRUE(origin_.authorizations().empty());  // nothing was sent without a key
  credentials_.Remember("0123456789abcdef", "Bearer tenant-key");
  ASSERT_TRUE(runner_->Start(*store_->Get(created->job.id)));
  WarmJob done = WaitEnded(created->job.id);
  EXPECT_EQ(done.status, JobStatus::kCompleted);
  EXPECT_EQ(done.documents_scanned, kDocs);
  EXPECT_FALSE(done.waiting);
}

TEST_F(TenantWarmRunnerTest, TheOneTenantWithoutAKeyPagesWithNone) {
  UseCredentials();
  WarmJob job = WaitEnded(StartJob().id);
  EXPECT_EQ(job.status, JobStatus::kCompleted);
  for (const auto& a : origin_.authorizations()) EXPECT_EQ(a, "");
}

TEST_F(WarmRunnerTest, RequestThreadsHaveTheShortSliceWhileAJobRunsOnly) {
  EXPECT_FALSE(slices_.short_now());
  origin_.held_page = 2;
  WarmJob job = StartJob();
  ASSERT_TRUE(WaitFor([&] { return origin_.holding(); }));
  EXPECT_TRUE(slices_.short_now());
  origin_.Release();
  EXPECT_EQ(WaitEnded(job.id).status, JobStatus::kCompleted);
  // The job's run lets go of the short slice as it returns, just after it recorded the end.
  EXPECT_TRUE(WaitFor([&] { return !slices_.short_now(); }));
}

TEST_F(WarmRunnerTest, CancelAtACheckpointAbandonsTheReadAheadWithoutWaitingForIt) {
  origin_.held_page = 2;  // read ahead while page 1 is written and checkpointed
  std::string id;
  store_->after_checkpoint = [&](const WarmJobCheckpoint& cp) {
    if (cp.documents_scanned == 2 * kPage) {
      EXPECT_TRUE(store_->Cancel(id).ok());
      runner_->RequestStop(id);
    }
  };
  WarmJob created = CreateJob();
  id = created.id;
  runner_->Start(created);
  // The job ends while the read of page 2 is still held: it did not wait for it.
  ASSERT_TRUE(WaitFor([&] { return runner_->active() == 0; }));
  EXPECT_TRUE(origin_.holding());
  origin_.Release();
  ASSERT_TRUE(WaitFor([&] { return origin_.in_flight() == 0; }));
  WarmJob job = WaitEnded(id);
  EXPECT_EQ(job.status, JobStatus::kCancelled);
  EXPECT_EQ(job.documents_scanned, 2u * kPage);
  EXPECT_FALSE(Cached(2 * kPage + 1));  // the abandoned page was never written
  EXPECT_EQ(Position("query 3"), -1);
  EXPECT_EQ(invariant_violations_.load(), 0);
}

TEST_F(WarmRunnerTest, CancelWhileWaitingForAReadAheadDropsItsPage) {
  origin_.held_page = 3;
  WarmJob started = StartJob();
  ASSERT_TRUE(WaitFor([&] { return origin_.holding(); }));
  // Pages 0..2 are written and checkpointed before the job waits for page 3.
  ASSERT_TRUE(WaitFor([&] {
    auto j = store_->Get(started.id);
    return j.ok() && j->documents_scanned == 3u * kPage;
  }));
  ASSERT_TRUE(store_->Cancel(started.id).ok());
  runner_->RequestStop(started.id);
  origin_.Release();
  WarmJob job = WaitEnded(started.id);
  EXPECT_EQ(job.status, JobStatus::kCancelled);
  EXPECT_EQ(job.documents_scanned, 3u * kPage);
  EXPECT_FALSE(Cached(3 * kPage + 1));
  EXPECT_EQ(Position("query 4"), -1);
}

TEST_F(WarmRunnerTest, AFailedReadAheadFailsTheJobOnlyAfterEarlierPagesAreCheckpointed) {
  origin_.failing_page = 3;
  origin_.fail_status = 400;
  WarmJob job = WaitEnded(StartJob().id);
  EXPECT_EQ(job.status, JobStatus::kFailed);
  ASSERT_TRUE(job.error.has_value());
  EXPECT_NE(job.error->find("400"), std::string::npos) << *job.error;
  EXPECT_EQ(job.documents_scanned, 3u * kPage);
  for (uint64_t id = 1; id <= 3 * kPage; ++id) EXPECT_TRUE(Cached(id)) << id;
  EXPECT_FALSE(Cached(3 * kPage + 1));
  EXPECT_EQ(origin_.Count("query 3"), 1);  // a 400 is not retried
  EXPECT_EQ(Position("query 4"), -1);
  EXPECT_EQ(invariant_violations_.load(), 0);
}

TEST_F(WarmRunnerTest, ATransientlyFailingReadAheadIsRetriedThenFailsTheJob) {
  origin_.failing_page = 2;
  origin_.fail_status = 503;
  WarmJob job = WaitEnded(StartJob().id);
  EXPECT_EQ(job.status, JobStatus::kFailed);
  ASSERT_TRUE(job.error.has_value());
  EXPECT_NE(job.error->find("503"), std::string::npos) << *job.error;
  EXPECT_EQ(job.documents_scanned, 2u * kPage);
  EXPECT_EQ(origin_.Count("query 2"), 3);  // max_attempts
  EXPECT_TRUE(Cached(2 * kPage));
  EXPECT_FALSE(Cached(2 * kPage + 1));
}

TEST_F(WarmRunnerTest, CacheLostWithAReadAheadInFlightFailsTheJobAsCacheCold) {
  store_->after_checkpoint = [&](const WarmJobCheckpoint& cp) {
    if (cp.documents_scanned == kPage) faults_->Disconnect();
  };
  WarmJob job = WaitEnded(StartJob().id);
  EXPECT_EQ(job.status, JobStatus::kFailed);
  ASSERT_TRUE(job.error.has_value());
  EXPECT_EQ(job.error->rfind("cache_cold", 0), 0u) << *job.error;
  // Pages written before the disconnect (page 0's checkpoint; later pages' writes may have run
  // ahead of it) are checkpointed; the first write that failed ended the job.
  EXPECT_EQ(job.documents_scanned % kPage, 0u);
  EXPECT_GE(job.documents_scanned, 1u * kPage);
  EXPECT_LT(job.documents_scanned, kDocs);
  EXPECT_EQ(invariant_violations_.load(), 0);
  // At most one page read ahead, one parsed and two being written past the last checkpoint.
  const uint64_t last = job.documents_scanned / kPage - 1;
  EXPECT_EQ(Position("query " + std::to_string(last + 5)), -1);
  faults_->Reconnect();
  EXPECT_TRUE(Cached(job.documents_scanned));
  EXPECT_FALSE(Cached(job.documents_scanned + 1));
}

TEST_F(WarmRunnerTest, ResumesAfterTheCheckpointCursor) {
  auto created = store_->Create({kNs, kPage, "gw-dead"});
  ASSERT_TRUE(created.ok());
  WarmJobCheckpoint cp;
  cp.cursor = "40";
  cp.documents_scanned = 40;
  store_->before_checkpoint = nullptr;
  ASSERT_TRUE(store_->Checkpoint(created->job.id, "gw-dead", cp).ok());
  store_->before_checkpoint = [this](const WarmJobCheckpoint& c) {
    origin_.Record("checkpoint " + std::to_string(c.documents_scanned / kPage - 1));
  };
  ASSERT_TRUE(runner_->ResumeAll(/*cache_was_reset=*/false).ok());
  WarmJob job = WaitEnded(created->job.id);
  EXPECT_EQ(job.status, JobStatus::kCompleted);
  EXPECT_EQ(job.documents_scanned, kDocs);  // neither double counted nor lost
  EXPECT_EQ(Position("query 0"), -1);
  EXPECT_EQ(origin_.events().front(), "query 4");
  EXPECT_FALSE(Cached(40));
  for (uint64_t id = 41; id <= kDocs; ++id) EXPECT_TRUE(Cached(id)) << id;
}

TEST_F(WarmRunnerTest, ResumeAfterACacheResetStartsOver) {
  auto created = store_->Create({kNs, kPage, "gw-dead"});
  ASSERT_TRUE(created.ok());
  WarmJobCheckpoint cp;
  cp.cursor = "40";
  cp.documents_scanned = 40;
  cp.cache_errors = 2;
  store_->before_checkpoint = nullptr;
  ASSERT_TRUE(store_->Checkpoint(created->job.id, "gw-dead", cp).ok());
  ASSERT_TRUE(runner_->ResumeAll(/*cache_was_reset=*/true).ok());
  WarmJob job = WaitEnded(created->job.id);
  EXPECT_EQ(job.status, JobStatus::kCompleted);
  EXPECT_EQ(job.documents_scanned, kDocs);
  EXPECT_EQ(job.cache_errors, 0u);
  EXPECT_EQ(origin_.events().front(), "query 0");
  for (uint64_t id = 1; id <= kDocs; ++id) EXPECT_TRUE(Cached(id)) << id;
}

TEST_F(WarmRunnerTest, NewerRecordsAndPendingInvalidationsWinOverWarmData) {
  cache::CachedDoc newer;
  newer.attributes_json = R"({"n":"newer"})";
  newer.upserted_at = kOriginStamp + 1;
  ASSERT_TRUE(backend_->PutIfNewer(kNs, cache::DocId::U64(5), newer).ok());
  // A delete of 7 the cache refused (an answer, not a failure: the breaker stays closed) leaves a
  // pending invalidation.
  faults_->FailOp(cache::CacheOp::kTombstone, Status::InvalidArgument("refused"));
  coherence::WriteOutcome del;
  del.stamp = kOriginStamp + 1;
  del.deletes.push_back(cache::DocId::U64(7));
  EXPECT_FALSE(cache::testing::RunTask(cache_->ApplyWrite(kNs, std::move(del))));
  faults_->ClearFailures();
  WarmJob job = WaitEnded(StartJob().id);
  EXPECT_EQ(job.status, JobStatus::kCompleted);
  auto five = backend_->Get(kNs, cache::DocId::U64(5));
  ASSERT_TRUE(five.ok() && five->has_value());
  EXPECT_EQ((*five)->attributes_json, R"({"n":"newer"})");
  EXPECT_FALSE(Cached(7));
  EXPECT_TRUE(Cached(8));
}

TEST_F(WarmRunnerTest, ACheckpointTheStoreCannotTakeForAMomentIsTriedAgain) {
  // The store is out of reach (a restart) for the fourth page's checkpoint and its next retries:
  // the job waits for it, and then completes with every document counted once.
  store_->unreachable_after = 3 * kPage;
  store_->unreachable_checkpoints = 4;
  WarmJob job = WaitEnded(StartJob().id);
  EXPECT_EQ(job.status, JobStatus::kCompleted) << job.error.value_or("");
  EXPECT_EQ(job.documents_scanned, kDocs);
  EXPECT_EQ(job.cache_errors, 0u);
  const int pages = static_cast<int>((kDocs + kPage - 1) / kPage);
  EXPECT_EQ(store_->checkpoint_attempts.load(), pages + 4);
  for (uint64_t id = 1; id <= kDocs; ++id) EXPECT_TRUE(Cached(id)) << id;
  EXPECT_EQ(invariant_violations_.load(), 0);
}

// The sweep, with a runner that sweeps every few milliseconds instead of every lease / 3. Waits
// are for the store's state, never for a time: the limits only turn a hang into a failure.
TEST_F(WarmRunnerTest, AJobWhoseStoreFailsIsMarkedFailedAndNeverBlocksTheNextWarm) {
  // The first checkpoint fails, and so does the first attempt to record the job's end.
  store_->failing_checkpoints = 1;
  store_->failing_finishes = 1;
  WarmJob first = WaitEnded(StartJob().id);
  EXPECT_EQ(first.status, JobStatus::kFailed);
  ASSERT_TRUE(first.error.has_value());
  EXPECT_NE(first.error->find("the job store failed"), std::string::npos) << *first.error;
  EXPECT_EQ(store_->finishes.load(), 2);
  // The namespace is free for the next warm, which completes.
  auto next = store_->Create(CreateWarmJobRequest{kNs, kPage, "gw-test"});
  ASSERT_TRUE(next.ok()) << next.status().ToString();
  EXPECT_TRUE(next->created);
  EXPECT_NE(next->job.id, first.id);
}

class WarmRunnerSweepTest : public WarmRunnerTest {
 protected:
  // Replaces the fixture's runner (nothing runs on it yet) with one that sweeps often.
  void UseSweepingRunner(std::chrono::milliseconds keep_finished_for = std::chrono::hours(24)) {
    runner_.reset();
    WarmRunnerOptions wopts;
    wopts.owner = "gw-test";
    wopts.max_attempts = 3;
    wopts.retry_base = 1ms;
    wopts.sweep_interval = 5ms;
    wopts.keep_finished_for = keep_finished_for;
    runner_ = std::make_unique<WarmRunner>(pool_, *store_, origin_, *cache_, nullptr, wopts);
  }

  // Another gateway on the same job store whose clock is `behind` the wall clock: the leases it
  // takes (30 s, the store's default) have already expired.
  std::unique_ptr<SqliteJobStore> OtherGateway(std::chrono::milliseconds behind) {
    other_clock_.SetWallMs(WallClockMs() - behind.count());
    SqliteJobStoreOptions opts;
    opts.path = dir_.Sub("jobs.sqlite3");
    opts.synchronous_full = false;
    opts.clock = &other_clock_;
    auto store = SqliteJobStore::Open(opts);
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    return store.ok() ? std::move(*store) : nullptr;
  }

  // Waits until the job's stored state satisfies `done`.
  bool WaitForJob(const std::string& id, const std::function<bool(const WarmJob&)>& done) {
    return WaitFor(
        [&] {
          auto job = store_->Get(id);
          return job.ok() && done(*job);
        },
        60s);
  }

  ManualClock other_clock_;  // OtherGateway's
};

TEST_F(WarmRunnerSweepTest, TakesOverAJobWhoseOwnerDiedWithoutARestart) {
  runner_.reset();  // no sweep may claim the job before its owner has checkpointed it
  // "other" created the job, paged three pages, checkpointed, and died: its lease ran out.
  auto other = OtherGateway(60s);
  ASSERT_TRUE(other);
  auto created = other->Create({kNs, kPage, "other"});
  ASSERT_TRUE(created.ok() && created->created);
  const std::string id = created->job.id;
  ASSERT_TRUE(other->Checkpoint(id, "other", {"30", 30, 0.3, 0}).ok());
  other.reset();
  // Documents 1..30 were cached by the dead gateway, not here: skip the cached-claims check.
  store_->before_checkpoint = [this](const WarmJobCheckpoint& c) {
    origin_.Record("checkpoint " + std::to_string(c.documents_scanned / kPage - 1));
  };

  UseSweepingRunner();
  ASSERT_TRUE(WaitForJob(id, [](const WarmJob& j) { return j.finished(); }))
      << "the running runner never took the job over";
  WarmJob job = *store_->Get(id);
  EXPECT_EQ(job.status, JobStatus::kCompleted);
  EXPECT_EQ(job.owner, "gw-test");
  EXPECT_EQ(job.documents_scanned, kDocs);  // resumed from the dead owner's checkpoint
  EXPECT_EQ(job.page_size, kPage);
  EXPECT_EQ(origin_.events().front(), "query 3");
  EXPECT_EQ(origin_.Count("query 3"), 1);
  for (uint64_t doc = 31; doc <= kDocs; ++doc) EXPECT_TRUE(Cached(doc)) << doc;
}

TEST_F(WarmRunnerSweepTest, NeverStartsAJobItRunsTwice) {
  UseSweepingRunner();
  origin_.held_page = 2;
  WarmJob started = StartJob();
  // Pages 0 and 1 are checkpointed and the job waits for page 2: no checkpoint renews its lease.
  ASSERT_TRUE(
      WaitForJob(started.id, [](const WarmJob& j) { return j.documents_scanned == 2u * kPage; }));
  ASSERT_TRUE(WaitFor([&] { return origin_.holding(); }, 60s));
  // Its lease expires while it runs here (a stall): the sweep claims the job back for this
  // process, which must not start it a second time.
  auto expired =
      sqlite_->ClaimExpired("gw-test", WallClockMs() - 60000, 1ms, ClaimScope::kAllRunning);
  ASSERT_TRUE(expired.ok());
  ASSERT_EQ(expired->size(), 1u);
  ASSERT_TRUE(WaitForJob(started.id, [](const WarmJob& j) {
    return j.lease_expires_at > WallClockMs();  // only a sweep's claim renews it now
  })) << "the sweep never claimed the job";
  EXPECT_EQ(runner_->active(), 1u);
  origin_.Release();
  WarmJob job = WaitEnded(started.id);
  EXPECT_EQ(job.status, JobStatus::kCompleted);
  EXPECT_EQ(job.documents_scanned, kDocs);
  for (int p = 0; p < static_cast<int>((kDocs + kPage - 1) / kPage); ++p) {
    EXPECT_EQ(origin_.Count("query " + std::to_string(p)), 1) << p;
  }
}

TEST_F(WarmRunnerSweepTest, PrunesFinishedJobsWhileRunning) {
  runner_.reset();
  // A job that finished an hour ago, and one that just did.
  auto other = OtherGateway(std::chrono::hours(1));
  ASSERT_TRUE(other);
  auto old_job = other->Create({kNs, kPage, "other"});
  ASSERT_TRUE(old_job.ok());
  ASSERT_TRUE(other->Finish(old_job->job.id, "other", JobStatus::kFailed, "x", std::nullopt).ok());
  WarmJob recent = CreateJob();
  ASSERT_TRUE(store_->Cancel(recent.id).ok());

  UseSweepingRunner(/*keep_finished_for=*/30min);
  ASSERT_TRUE(WaitFor([&] { return store_->Get(old_job->job.id).status().IsNotFound(); }, 60s))
      << "the sweep never pruned the old job";
  EXPECT_TRUE(store_->Get(recent.id).ok());
}

}  // namespace
}  // namespace layer::jobs
