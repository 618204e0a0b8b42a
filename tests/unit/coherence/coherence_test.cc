// CacheCoherence against the embedded RocksDB cache (behind a FaultInjectingCache and a
// CacheGuard) and a scripted upstream RowReader: fetch outcomes, read-through and backfill, the
// coalescing of concurrent misses, write mirroring (newer-wins, patch merge, tombstones, epoch
// bumps), pending invalidations and their retry, namespace delete, cache state and the reactive
// warm after a reconnect (docs/design.md §4).
#include "coherence/coherence.h"

#include <gtest/gtest.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "cache/fault_injecting_cache.h"
#include "cache/rocksdb/rocksdb_cache.h"
#include "unit/cache/test_util.h"

namespace layer::coherence {
namespace {

namespace asio = boost::asio;
namespace json = boost::json;
using cache::CachedDoc;
using cache::CacheOp;
using cache::testing::RunTask;
using tpuf::DocId;
using namespace std::chrono_literals;

constexpr char kNs[] = "docs";
constexpr char kOtherNs[] = "other";
// Only an upper bound that proves nothing hangs; every wait ends as soon as its event happens.
constexpr std::chrono::seconds kBound = 10s;

// Polls `done` on this thread (bounded) until it holds.
bool WaitFor(const std::function<bool()>& done) {
  const auto deadline = std::chrono::steady_clock::now() + kBound;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

// Polls `done` from a coroutine (bounded), letting the io_context run other work meanwhile.
Task<bool> WaitOnLoop(std::function<bool()> done) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  const auto deadline = std::chrono::steady_clock::now() + kBound;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) co_return false;
    timer.expires_after(1ms);
    co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
  }
  co_return true;
}

std::vector<std::string> Texts(const std::vector<DocId>& ids) {
  std::vector<std::string> out;
  for (const auto& id : ids) out.push_back(id.ToText());
  return out;
}

json::value Json(std::string_view text) { return json::parse(text); }

// A scripted upstream: the rows it holds, every read it was asked for, an optional failure, and
// an optional hold that keeps reads waiting until Release().
class FakeUpstream {
 public:
  void Put(const DocId& id, std::string attributes_json, uint64_t stamp) {
    std::lock_guard lock(mu_);
    rows_[IdKey(id)] = FetchedRow{id.ToJson(), std::move(attributes_json), stamp};
  }
  void Remove(const DocId& id) {
    std::lock_guard lock(mu_);
    rows_.erase(IdKey(id));
  }
  void Fail(Status status) {
    std::lock_guard lock(mu_);
    failure_ = std::move(status);
  }
  void Hold() {
    std::lock_guard lock(mu_);
    held_ = true;
  }
  // Lets every held read (and every later one) answer.
  void Release() {
    std::vector<std::function<void()>> wake;
    {
      std::lock_guard lock(mu_);
      held_ = false;
      wake.swap(waiters_);
    }
    for (auto& w : wake) w();
  }
  std::vector<std::vector<DocId>> calls() const {
    std::lock_guard lock(mu_);
    return calls_;
  }
  size_t call_count() const { return calls().size(); }
  // Reads waiting for Release().
  int blocked() const { return blocked_.load(); }

  RowReader Reader() {
    return [this](std::span<const DocId> ids) {
      return Read(std::vector<DocId>(ids.begin(), ids.end()));
    };
  }

 private:
  Task<Result<RowsById>> Read(std::vector<DocId> ids) {
    auto ex = co_await asio::this_coro::executor;
    auto timer = std::make_shared<asio::steady_timer>(ex);
    timer->expires_at(asio::steady_timer::time_point::max());
    bool wait = false;
    {
      std::lock_guard lock(mu_);
      calls_.push_back(ids);
      if (held_) {
        wait = true;
        waiters_.push_back([ex, timer] { asio::post(ex, [timer] { timer->cancel(); }); });
      }
    }
    if (wait) {
      ++blocked_;
      co_await timer->async_wait(asio::as_tuple(asio::use_awaitable));
      --blocked_;
    }
    std::lock_guard lock(mu_);
    if (failure_) co_return *failure_;
    RowsById out;
    for (const auto& id : ids) {
      auto it = rows_.find(IdKey(id));
      if (it != rows_.end()) out.emplace(it->first, it->second);
    }
    co_return out;
  }

  mutable std::mutex mu_;  // guards everything below but blocked_
  std::map<std::string, FetchedRow> rows_;
  std::optional<Status> failure_;
  bool held_ = false;
  std::vector<std::function<void()>> waiters_;
  std::vector<std::vector<DocId>> calls_;
  std::atomic<int> blocked_{0};
};

RowEffect Row(const DocId& id, std::string attributes_json) {
  RowEffect r;
  r.id = id;
  r.attributes_json = std::move(attributes_json);
  return r;
}

WriteOutcome Rows(uint64_t stamp, std::vector<RowEffect> upserts, std::vector<RowEffect> patches,
                  std::vector<DocId> deletes) {
  WriteOutcome w;
  w.kind = WriteOutcome::Kind::kRows;
  w.stamp = stamp;
  w.upserts = std::move(upserts);
  w.patches = std::move(patches);
  w.deletes = std::move(deletes);
  return w;
}

WriteOutcome Upserts(uint64_t stamp, std::vector<RowEffect> rows) {
  return Rows(stamp, std::move(rows), {}, {});
}
WriteOutcome Patches(uint64_t stamp, std::vector<RowEffect> rows) {
  return Rows(stamp, {}, std::move(rows), {});
}
WriteOutcome Deletes(uint64_t stamp, std::vector<DocId> ids) {
  return Rows(stamp, {}, {}, std::move(ids));
}

WriteOutcome AffectedIds(uint64_t stamp, std::vector<DocId> ids, bool has_untyped_ids) {
  WriteOutcome w;
  w.kind = WriteOutcome::Kind::kAffectedIds;
  w.stamp = stamp;
  w.deletes = std::move(ids);
  w.has_untyped_ids = has_untyped_ids;
  return w;
}

WriteOutcome UnknownRows(uint64_t stamp) {
  WriteOutcome w;
  w.kind = WriteOutcome::Kind::kUnknownRows;
  w.stamp = stamp;
  return w;
}

class CoherenceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cache::RocksDbCacheOptions o;
    o.path = dir_.Sub("cache");
    o.clock = &clock_;
    auto r = cache::RocksDbCache::Open(o);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    inner_ = std::shared_ptr<cache::DocumentCache>(std::move(r).value());
    faults_ = std::make_shared<cache::FaultInjectingCache>(inner_);
    cache::CacheGuardOptions g;
    g.metrics = &guard_metrics_;
    // Generous deadlines: a slow shared machine must not open the breaker by a timeout.
    g.op_timeout = 10s;
    g.bulk_op_timeout = 10s;
    g.open_interval = 1s;  // on the manual clock
    g.clock = &clock_;
    CoherenceOptions options;
    options.backend_name = "rocksdb";
    options.faults = faults_;
    options.clock = &clock_;
    options.metrics = &metrics_;
    core_ = std::make_unique<CacheCoherence>(std::make_unique<cache::CacheGuard>(faults_, g),
                                             std::move(options));
    ASSERT_TRUE(guard().PingSync().ok());
  }

  void TearDown() override {
    faults_->ClearFailures();
    faults_->ClearLatency();
    upstream_.Release();
  }

  cache::CacheGuard& guard() { return *core_->guard(); }

  // The core's fetch lookup counter of one outcome label.
  uint64_t Lookups(std::string_view label) {
    return metrics_
        .GetCounter("layer_cache_lookups_total", "Fetch cache lookups by result",
                    {{"result", std::string(label)}})
        .value();
  }
  // Backfill batches that finished (with either status).
  uint64_t BackfillsDone() {
    uint64_t n = 0;
    for (const char* status : {"ok", "error"}) {
      n += metrics_
               .GetCounter("layer_cache_backfills_total",
                           "Rows written into the cache by fetch misses", {{"status", status}})
               .value();
    }
    return n;
  }
  double PendingGauge() {
    return metrics_
        .GetGauge("layer_cache_pending_invalidations",
                  "Invalidations waiting for the cache to come back")
        .value();
  }
  double StateGauge(const std::string& ns, std::string_view state) {
    return metrics_
        .GetGauge("layer_cache_state", "Cache state per namespace (1 = current state)",
                  {{"namespace", ns}, {"state", std::string(state)}})
        .value();
  }

  template <typename T>
  T Run(Task<T> task) {
    return RunTask(io_, std::move(task));
  }
  void Run(Task<void> task) {
    RunTask(io_, [](Task<void> t) -> Task<bool> {
      co_await std::move(t);
      co_return true;
    }(std::move(task)));
  }

  Result<FetchOneResult> FetchOne(const DocId& id, const std::string& ns = kNs) {
    return Run(core_->FetchOne(ns, id, reader_));
  }
  Result<FetchManyResult> FetchMany(std::vector<DocId> ids, const std::string& ns = kNs) {
    return Run(core_->FetchMany(ns, std::move(ids), reader_));
  }
  bool Apply(WriteOutcome outcome, const std::string& ns = kNs) {
    return Run(core_->ApplyWrite(ns, std::move(outcome)));
  }
  void RetryPending() { Run(core_->RetryPending()); }

  // Writes a full row straight into the backend.
  void Seed(const DocId& id, std::string attributes_json, uint64_t stamp,
            const std::string& ns = kNs) {
    CachedDoc doc;
    doc.attributes_json = std::move(attributes_json);
    doc.upserted_at = stamp;
    auto r = inner_->PutIfNewer(ns, id, doc);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ASSERT_TRUE(*r);
  }
  // The backend's record of `id`, read past the guard and the faults.
  std::optional<CachedDoc> Cached(const DocId& id, const std::string& ns = kNs) {
    auto r = inner_->Get(ns, id);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : std::nullopt;
  }
  bool HasLiveRecord(const DocId& id, const std::string& ns = kNs) {
    auto doc = Cached(id, ns);
    return doc && !doc->tombstone;
  }
  // Waits (bounded) for the backfill of `id` to land in the backend.
  bool WaitCached(const DocId& id, const std::string& ns = kNs) {
    return WaitFor([&] { return HasLiveRecord(id, ns); });
  }

  // Clears the faults and lets the breaker close again: the open interval passes on the fake
  // clock and a ping succeeds (as the half-open probe when the breaker was open).
  void Heal() {
    faults_->ClearFailures();
    if (faults_->disconnected()) faults_->Reconnect();
    clock_.Advance(60s);
    ASSERT_TRUE(guard().PingSync().ok());
    ASSERT_EQ(guard().breaker_state(), cache::BreakerState::kClosed);
  }

  // Opens the breaker with a disconnect, then reconnects: the guard's generation moves on.
  void DisconnectAndReconnect() {
    faults_->Disconnect();
    EXPECT_FALSE(guard().PingSync().ok());
    EXPECT_FALSE(guard().connected());
    faults_->Reconnect();
    clock_.Advance(60s);
    EXPECT_TRUE(guard().PingSync().ok());
    EXPECT_TRUE(guard().connected());
  }

  cache::testing::TempDir dir_;
  ManualClock clock_;
  MetricsRegistry guard_metrics_;
  MetricsRegistry metrics_;
  std::shared_ptr<cache::DocumentCache> inner_;
  std::shared_ptr<cache::FaultInjectingCache> faults_;
  FakeUpstream upstream_;
  RowReader reader_ = upstream_.Reader();
  asio::io_context io_;
  std::unique_ptr<CacheCoherence> core_;
};

// ---- FetchOne ----

using FetchOneTest = CoherenceTest;

TEST_F(FetchOneTest, CachedFullRowIsAHitWithoutReadingUpstream) {
  Seed(DocId::U64(1), R"({"a":1})", 100);
  const uint64_t hits = Lookups("hit");
  auto r = FetchOne(DocId::U64(1));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->outcome, FetchOutcome::kHit);
  ASSERT_TRUE(r->row);
  EXPECT_EQ(r->row->id_json, "1");
  EXPECT_EQ(Json(r->row->attributes_json), Json(R"({"a":1})"));
  EXPECT_EQ(r->row->stamp, 100u);
  EXPECT_EQ(upstream_.call_count(), 0u);
  EXPECT_EQ(Lookups("hit"), hits + 1);
}

TEST_F(FetchOneTest, HitThroughTheGuardedGetWhenTryGetDeclines) {
  Seed(DocId::String("doc-a"), R"({"b":"x"})", 7);
  faults_->SetTryGetWouldBlock(true);
  const uint64_t gets = faults_->calls(CacheOp::kGet);
  auto r = FetchOne(DocId::String("doc-a"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->outcome, FetchOutcome::kHit);
  ASSERT_TRUE(r->row);
  EXPECT_EQ(r->row->id_json, R"("doc-a")");
  EXPECT_EQ(Json(r->row->attributes_json), Json(R"({"b":"x"})"));
  EXPECT_EQ(faults_->calls(CacheOp::kGet), gets + 1);
  EXPECT_EQ(upstream_.call_count(), 0u);
}

TEST_F(FetchOneTest, MissReadsUpstreamOnceAndBackfills) {
  upstream_.Put(DocId::U64(7), R"({"n":7})", 100);
  const uint64_t misses = Lookups("miss");
  auto r = FetchOne(DocId::U64(7));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->outcome, FetchOutcome::kMiss);
  ASSERT_TRUE(r->row);
  EXPECT_EQ(Json(r->row->attributes_json), Json(R"({"n":7})"));
  EXPECT_EQ(r->row->stamp, 100u);
  ASSERT_EQ(upstream_.call_count(), 1u);
  EXPECT_EQ(Texts(upstream_.calls()[0]), std::vector<std::string>{"7"});
  EXPECT_EQ(Lookups("miss"), misses + 1);

  ASSERT_TRUE(WaitCached(DocId::U64(7)));
  auto doc = Cached(DocId::U64(7));
  EXPECT_EQ(Json(doc->attributes_json), Json(R"({"n":7})"));
  EXPECT_EQ(doc->upserted_at, 100u);

  auto again = FetchOne(DocId::U64(7));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->outcome, FetchOutcome::kHit);
  EXPECT_EQ(upstream_.call_count(), 1u);
}

TEST_F(FetchOneTest, TombstoneReadsAsAMiss) {
  ASSERT_TRUE(inner_->Tombstone(kNs, DocId::U64(3), 100).ok());
  upstream_.Put(DocId::U64(3), R"({"v":"recreated"})", 200);
  auto r = FetchOne(DocId::U64(3));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->outcome, FetchOutcome::kMiss);
  ASSERT_TRUE(r->row);
  EXPECT_EQ(Json(r->row->attributes_json), Json(R"({"v":"recreated"})"));
  EXPECT_EQ(upstream_.call_count(), 1u);
  // The upstream row is newer than the tombstone, so the backfill replaces it.
  ASSERT_TRUE(WaitCached(DocId::U64(3)));
  EXPECT_EQ(Cached(DocId::U64(3))->upserted_at, 200u);
}

TEST_F(FetchOneTest, RefusedCacheReadIsMissOnErrorAndNotBackfilled) {
  // InvalidArgument keeps the breaker closed, so a wrong backfill would reach the cache.
  faults_->FailOp(CacheOp::kGet, Status::InvalidArgument("injected"));
  upstream_.Put(DocId::U64(4), R"({"n":4})", 100);
  const uint64_t errors = Lookups("error");
  const uint64_t backfills = BackfillsDone();
  auto r = FetchOne(DocId::U64(4));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->outcome, FetchOutcome::kMissOnError);
  ASSERT_TRUE(r->row);
  EXPECT_EQ(Json(r->row->attributes_json), Json(R"({"n":4})"));
  EXPECT_EQ(upstream_.call_count(), 1u);
  EXPECT_EQ(Lookups("error"), errors + 1);
  EXPECT_EQ(guard().breaker_state(), cache::BreakerState::kClosed);
  // Run() drained the io_context, so a detached backfill would have finished by now.
  EXPECT_EQ(BackfillsDone(), backfills);
  EXPECT_FALSE(Cached(DocId::U64(4)));
}

TEST_F(FetchOneTest, FailedCacheReadIsMissOnErrorAndNotBackfilled) {
  Seed(DocId::U64(5), R"({"v":"cached"})", 100);
  faults_->FailOp(CacheOp::kGet, Status::IoError("injected"));
  upstream_.Put(DocId::U64(5), R"({"v":"upstream"})", 200);
  const uint64_t backfills = BackfillsDone();
  auto r = FetchOne(DocId::U64(5));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->outcome, FetchOutcome::kMissOnError);
  ASSERT_TRUE(r->row);
  EXPECT_EQ(Json(r->row->attributes_json), Json(R"({"v":"upstream"})"));
  EXPECT_EQ(upstream_.call_count(), 1u);
  EXPECT_EQ(BackfillsDone(), backfills);
  Heal();
  EXPECT_EQ(Cached(DocId::U64(5))->upserted_at, 100u);
}

TEST_F(FetchOneTest, CacheDownIsMissOnErrorAndNotBackfilled) {
  faults_->FailAll(Status::IoError("injected"));
  upstream_.Put(DocId::U64(6), R"({"n":6})", 100);
  const uint64_t backfills = BackfillsDone();
  for (int i = 0; i < 2; ++i) {  // the second one meets the open breaker
    auto r = FetchOne(DocId::U64(6));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->outcome, FetchOutcome::kMissOnError);
    ASSERT_TRUE(r->row);
  }
  EXPECT_EQ(upstream_.call_count(), 2u);
  EXPECT_EQ(BackfillsDone(), backfills);
  Heal();
  EXPECT_FALSE(Cached(DocId::U64(6)));
}

TEST_F(FetchOneTest, ReaderFailureIsAnError) {
  upstream_.Fail(Status::Unavailable("upstream down"));
  const uint64_t backfills = BackfillsDone();
  auto r = FetchOne(DocId::U64(8));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(r.status().message(), "upstream down");
  EXPECT_EQ(upstream_.call_count(), 1u);
  EXPECT_EQ(BackfillsDone(), backfills);
}

TEST_F(FetchOneTest, DocumentAbsentUpstreamIsNoRow) {
  const uint64_t backfills = BackfillsDone();
  auto r = FetchOne(DocId::U64(9));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->outcome, FetchOutcome::kMiss);
  EXPECT_FALSE(r->row);
  EXPECT_EQ(BackfillsDone(), backfills);
  EXPECT_FALSE(Cached(DocId::U64(9)));
  // Nothing is remembered: the next fetch asks again.
  auto again = FetchOne(DocId::U64(9));
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->row);
  EXPECT_EQ(upstream_.call_count(), 2u);
}

TEST_F(FetchOneTest, IdsOfDifferentTypesDoNotCollide) {
  Seed(DocId::U64(7), R"({"t":"u64"})", 100);
  upstream_.Put(DocId::String("7"), R"({"t":"string"})", 100);
  auto r = FetchOne(DocId::String("7"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->outcome, FetchOutcome::kMiss);
  ASSERT_TRUE(r->row);
  EXPECT_EQ(r->row->id_json, R"("7")");
  EXPECT_EQ(Json(r->row->attributes_json), Json(R"({"t":"string"})"));
}

// ---- Coalescing ----

using CoalescingTest = CoherenceTest;

TEST_F(CoalescingTest, ConcurrentMissesOfOneIdShareOneRead) {
  constexpr int kN = 8;
  upstream_.Put(DocId::U64(42), R"({"n":42})", 100);
  upstream_.Hold();
  const std::string ns = kNs;
  const DocId id = DocId::U64(42);
  const uint64_t misses = Lookups("miss");
  std::vector<std::optional<Result<FetchOneResult>>> results(kN);
  for (int i = 0; i < kN; ++i) {
    asio::co_spawn(
        io_,
        [&, i]() -> Task<void> { results[i].emplace(co_await core_->FetchOne(ns, id, reader_)); },
        asio::detached);
  }
  // Every fetch counts its lookup and joins the flight in one step on this single-threaded
  // io_context, so once all N are counted and the leader's read is held, all N wait on it.
  bool all_waiting = false;
  asio::co_spawn(
      io_,
      [&]() -> Task<void> {
        all_waiting = co_await WaitOnLoop([&] {
          return upstream_.blocked() == 1 && Lookups("miss") - misses == static_cast<uint64_t>(kN);
        });
        upstream_.Release();
      },
      asio::detached);
  io_.restart();
  io_.run();

  EXPECT_TRUE(all_waiting);
  EXPECT_EQ(upstream_.call_count(), 1u);
  for (int i = 0; i < kN; ++i) {
    ASSERT_TRUE(results[i]) << i;
    ASSERT_TRUE(results[i]->ok()) << i << ": " << results[i]->status().ToString();
    EXPECT_EQ((*results[i])->outcome, FetchOutcome::kMiss) << i;
    ASSERT_TRUE((*results[i])->row) << i;
    EXPECT_EQ(Json((*results[i])->row->attributes_json), Json(R"({"n":42})")) << i;
  }
  EXPECT_TRUE(WaitCached(id));
}

TEST_F(CoalescingTest, ConcurrentMissesShareTheReadFailure) {
  constexpr int kN = 4;
  upstream_.Fail(Status::Unavailable("upstream down"));
  upstream_.Hold();
  const std::string ns = kNs;
  const DocId id = DocId::U64(43);
  const uint64_t misses = Lookups("miss");
  std::vector<std::optional<Result<FetchOneResult>>> results(kN);
  for (int i = 0; i < kN; ++i) {
    asio::co_spawn(
        io_,
        [&, i]() -> Task<void> { results[i].emplace(co_await core_->FetchOne(ns, id, reader_)); },
        asio::detached);
  }
  bool all_waiting = false;
  asio::co_spawn(
      io_,
      [&]() -> Task<void> {
        all_waiting = co_await WaitOnLoop([&] {
          return upstream_.blocked() == 1 && Lookups("miss") - misses == static_cast<uint64_t>(kN);
        });
        upstream_.Release();
      },
      asio::detached);
  io_.restart();
  io_.run();

  EXPECT_TRUE(all_waiting);
  EXPECT_EQ(upstream_.call_count(), 1u);
  for (int i = 0; i < kN; ++i) {
    ASSERT_TRUE(results[i]) << i;
    ASSERT_FALSE(results[i]->ok()) << i;
    EXPECT_EQ(results[i]->status().code(), StatusCode::kUnavailable) << i;
  }
}

TEST_F(CoalescingTest, OnlyTheSameNamespaceAndIdAreCoalesced) {
  upstream_.Put(DocId::U64(1), R"({"n":1})", 100);
  upstream_.Put(DocId::U64(2), R"({"n":2})", 100);
  upstream_.Hold();
  const std::string ns = kNs;
  const std::string other = kOtherNs;
  const DocId one = DocId::U64(1);
  const DocId two = DocId::U64(2);
  std::vector<std::optional<Result<FetchOneResult>>> results(3);
  auto spawn = [&](int i, const std::string& n, const DocId& id) {
    asio::co_spawn(
        io_,
        [&, i]() -> Task<void> { results[i].emplace(co_await core_->FetchOne(n, id, reader_)); },
        asio::detached);
  };
  spawn(0, ns, one);
  spawn(1, ns, two);
  spawn(2, other, one);
  bool all_reading = false;
  asio::co_spawn(
      io_,
      [&]() -> Task<void> {
        all_reading = co_await WaitOnLoop([&] { return upstream_.blocked() == 3; });
        upstream_.Release();
      },
      asio::detached);
  io_.restart();
  io_.run();

  EXPECT_TRUE(all_reading);
  EXPECT_EQ(upstream_.call_count(), 3u);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(results[i] && results[i]->ok()) << i;
    ASSERT_TRUE((*results[i])->row) << i;
  }
  EXPECT_EQ(Json((*results[1])->row->attributes_json), Json(R"({"n":2})"));
}

// ---- FetchMany ----

using FetchManyTest = CoherenceTest;

TEST_F(FetchManyTest, AllCachedIsAHit) {
  Seed(DocId::U64(1), R"({"n":1})", 100);
  Seed(DocId::U64(2), R"({"n":2})", 100);
  const uint64_t hits = Lookups("hit");
  auto r = FetchMany({DocId::U64(1), DocId::U64(2)});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->outcome, FetchOutcome::kHit);
  ASSERT_EQ(r->rows.size(), 2u);
  EXPECT_EQ(Json(r->rows.at(IdKey(DocId::U64(2))).attributes_json), Json(R"({"n":2})"));
  EXPECT_EQ(r->rows.at(IdKey(DocId::U64(1))).id_json, "1");
  EXPECT_EQ(upstream_.call_count(), 0u);
  EXPECT_EQ(Lookups("hit"), hits + 1);
}

TEST_F(FetchManyTest, NoneCachedIsAMissAndBackfills) {
  upstream_.Put(DocId::U64(1), R"({"n":1})", 100);
  upstream_.Put(DocId::U64(2), R"({"n":2})", 100);
  const uint64_t misses = Lookups("miss");
  auto r = FetchMany({DocId::U64(1), DocId::U64(2), DocId::U64(3)});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->outcome, FetchOutcome::kMiss);
  EXPECT_EQ(r->rows.size(), 2u);  // 3 is absent upstream
  EXPECT_FALSE(r->rows.count(IdKey(DocId::U64(3))));
  ASSERT_EQ(upstream_.call_count(), 1u);
  EXPECT_EQ(Texts(upstream_.calls()[0]), (std::vector<std::string>{"1", "2", "3"}));
  EXPECT_EQ(Lookups("miss"), misses + 1);
  ASSERT_TRUE(WaitCached(DocId::U64(1)));
  ASSERT_TRUE(WaitCached(DocId::U64(2)));
  EXPECT_FALSE(Cached(DocId::U64(3)));

  auto again = FetchMany({DocId::U64(1), DocId::U64(2)});
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->outcome, FetchOutcome::kHit);
  EXPECT_EQ(upstream_.call_count(), 1u);
}

TEST_F(FetchManyTest, SomeCachedIsPartialAndReadsExactlyTheMisses) {
  Seed(DocId::U64(1), R"({"n":1})", 100);
  Seed(DocId::U64(3), R"({"n":3})", 100);
  ASSERT_TRUE(inner_->Tombstone(kNs, DocId::U64(5), 100).ok());
  upstream_.Put(DocId::U64(2), R"({"n":2})", 100);
  upstream_.Put(DocId::U64(5), R"({"n":5})", 200);
  const uint64_t partials = Lookups("partial");
  auto r = FetchMany({DocId::U64(1), DocId::U64(2), DocId::U64(3), DocId::U64(4), DocId::U64(5)});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->outcome, FetchOutcome::kPartial);
  ASSERT_EQ(upstream_.call_count(), 1u);
  EXPECT_EQ(Texts(upstream_.calls()[0]), (std::vector<std::string>{"2", "4", "5"}));
  EXPECT_EQ(r->rows.size(), 4u);
  EXPECT_EQ(Json(r->rows.at(IdKey(DocId::U64(3))).attributes_json), Json(R"({"n":3})"));
  EXPECT_EQ(Json(r->rows.at(IdKey(DocId::U64(5))).attributes_json), Json(R"({"n":5})"));
  EXPECT_EQ(Lookups("partial"), partials + 1);
  ASSERT_TRUE(WaitCached(DocId::U64(2)));
  ASSERT_TRUE(WaitCached(DocId::U64(5)));
}

TEST_F(FetchManyTest, CacheErrorIsMissOnErrorAndNotBackfilled) {
  Seed(DocId::U64(1), R"({"v":"cached"})", 100);
  faults_->FailOp(CacheOp::kMultiGet, Status::InvalidArgument("injected"));
  upstream_.Put(DocId::U64(1), R"({"v":"upstream"})", 100);
  upstream_.Put(DocId::U64(2), R"({"n":2})", 100);
  const uint64_t errors = Lookups("error");
  const uint64_t backfills = BackfillsDone();
  auto r = FetchMany({DocId::U64(1), DocId::U64(2)});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->outcome, FetchOutcome::kMissOnError);
  ASSERT_EQ(upstream_.call_count(), 1u);
  EXPECT_EQ(Texts(upstream_.calls()[0]), (std::vector<std::string>{"1", "2"}));
  EXPECT_EQ(r->rows.size(), 2u);
  EXPECT_EQ(Json(r->rows.at(IdKey(DocId::U64(1))).attributes_json), Json(R"({"v":"upstream"})"));
  EXPECT_EQ(Lookups("error"), errors + 1);
  EXPECT_EQ(BackfillsDone(), backfills);
  EXPECT_FALSE(Cached(DocId::U64(2)));
}

TEST_F(FetchManyTest, CacheDownIsMissOnError) {
  faults_->FailAll(Status::IoError("injected"));
  upstream_.Put(DocId::U64(1), R"({"n":1})", 100);
  const uint64_t backfills = BackfillsDone();
  auto r = FetchMany({DocId::U64(1), DocId::U64(2)});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->outcome, FetchOutcome::kMissOnError);
  EXPECT_EQ(r->rows.size(), 1u);
  EXPECT_EQ(BackfillsDone(), backfills);
}

TEST_F(FetchManyTest, ReaderFailureIsAnError) {
  Seed(DocId::U64(1), R"({"n":1})", 100);
  upstream_.Fail(Status::Unavailable("upstream down"));
  auto r = FetchMany({DocId::U64(1), DocId::U64(2)});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
}

TEST(FetchOutcomeTest, HeaderValuesAndMetricLabels) {
  EXPECT_EQ(CacheHeaderValue(FetchOutcome::kHit), "hit");
  EXPECT_EQ(CacheHeaderValue(FetchOutcome::kMiss), "miss");
  EXPECT_EQ(CacheHeaderValue(FetchOutcome::kPartial), "miss");
  EXPECT_EQ(CacheHeaderValue(FetchOutcome::kMissOnError), "miss-on-error");
  EXPECT_EQ(MetricLabel(FetchOutcome::kHit), "hit");
  EXPECT_EQ(MetricLabel(FetchOutcome::kMiss), "miss");
  EXPECT_EQ(MetricLabel(FetchOutcome::kPartial), "partial");
  EXPECT_EQ(MetricLabel(FetchOutcome::kMissOnError), "error");
}

TEST(FetchOutcomeTest, IdKeysKeepTypesApart) {
  EXPECT_NE(IdKey(DocId::U64(7)), IdKey(DocId::String("7")));
  EXPECT_EQ(IdKey(DocId::String("7")), IdKey(DocId::String("7")));
}

// ---- ApplyWrite: rows ----

using ApplyWriteTest = CoherenceTest;

TEST_F(ApplyWriteTest, UpsertsAreCachedWithTheWriteStamp) {
  EXPECT_TRUE(
      Apply(Upserts(100, {Row(DocId::U64(1), R"({"a":1})"), Row(DocId::U64(2), R"({"a":2})")})));
  for (uint64_t n : {1, 2}) {
    auto doc = Cached(DocId::U64(n));
    ASSERT_TRUE(doc) << n;
    EXPECT_FALSE(doc->tombstone);
    EXPECT_EQ(doc->upserted_at, 100u);
    EXPECT_EQ(Json(doc->attributes_json), Json(R"({"a":)" + std::to_string(n) + "}"));
  }
  auto r = FetchOne(DocId::U64(2));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->outcome, FetchOutcome::kHit);
  EXPECT_EQ(r->row->stamp, 100u);
  EXPECT_EQ(upstream_.call_count(), 0u);
  EXPECT_EQ(core_->pending_invalidations(), 0u);
}

TEST_F(ApplyWriteTest, OlderUpsertDoesNotReplaceANewerRecord) {
  EXPECT_TRUE(Apply(Upserts(200, {Row(DocId::U64(1), R"({"v":"new"})")})));
  EXPECT_TRUE(Apply(Upserts(100, {Row(DocId::U64(1), R"({"v":"old"})")})));
  auto doc = Cached(DocId::U64(1));
  ASSERT_TRUE(doc);
  EXPECT_EQ(doc->upserted_at, 200u);
  EXPECT_EQ(Json(doc->attributes_json), Json(R"({"v":"new"})"));
  EXPECT_EQ(core_->pending_invalidations(), 0u);

  EXPECT_TRUE(Apply(Upserts(300, {Row(DocId::U64(1), R"({"v":"newest"})")})));
  EXPECT_EQ(Json(Cached(DocId::U64(1))->attributes_json), Json(R"({"v":"newest"})"));
}

TEST_F(ApplyWriteTest, UpsertVectorIsStoredApart) {
  RowEffect row = Row(DocId::U64(1), R"({"a":1})");
  const std::string f32("\x00\x00\x80\x3f\x00\x00\x00\x40", 8);
  row.vector_f32 = f32;
  EXPECT_TRUE(Apply(Upserts(100, {row})));
  auto v = inner_->GetVector(kNs, DocId::U64(1));
  ASSERT_TRUE(v.ok());
  ASSERT_TRUE(*v);
  EXPECT_EQ(**v, f32);
  EXPECT_EQ(Json(Cached(DocId::U64(1))->attributes_json), Json(R"({"a":1})"));
}

TEST_F(ApplyWriteTest, PatchMergesIntoACachedFullRow) {
  Seed(DocId::U64(1), R"({"a":1,"b":2,"c":{"x":1}})", 100);
  EXPECT_TRUE(Apply(Patches(200, {Row(DocId::U64(1), R"({"b":null,"c":5,"d":"new"})")})));
  auto doc = Cached(DocId::U64(1));
  ASSERT_TRUE(doc);
  EXPECT_FALSE(doc->tombstone);
  EXPECT_EQ(doc->upserted_at, 200u);
  EXPECT_EQ(Json(doc->attributes_json), Json(R"({"a":1,"c":5,"d":"new"})"));
  auto r = FetchOne(DocId::U64(1));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->outcome, FetchOutcome::kHit);
}

TEST_F(ApplyWriteTest, PatchOfAnIdWithoutACachedRowInvalidatesIt) {
  ASSERT_TRUE(inner_->Tombstone(kNs, DocId::U64(2), 50).ok());
  EXPECT_TRUE(
      Apply(Patches(200, {Row(DocId::U64(1), R"({"b":3})"), Row(DocId::U64(2), R"({"b":4})")})));
  for (uint64_t n : {1, 2}) {
    auto doc = Cached(DocId::U64(n));
    ASSERT_TRUE(doc) << n;  // never a fragment: a tombstone
    EXPECT_TRUE(doc->tombstone) << n;
    EXPECT_EQ(doc->upserted_at, 200u) << n;
  }
  upstream_.Put(DocId::U64(1), R"({"a":1,"b":3})", 200);
  auto r = FetchOne(DocId::U64(1));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->outcome, FetchOutcome::kMiss);
  EXPECT_EQ(upstream_.call_count(), 1u);
}

TEST_F(ApplyWriteTest, DeleteLeavesATombstoneThatBlocksAnOlderBackfill) {
  Seed(DocId::U64(5), R"({"v":"live"})", 100);
  EXPECT_TRUE(Apply(Deletes(200, {DocId::U64(5)})));
  auto doc = Cached(DocId::U64(5));
  ASSERT_TRUE(doc);
  EXPECT_TRUE(doc->tombstone);
  EXPECT_EQ(doc->upserted_at, 200u);

  // A lagging upstream still answers the row as of stamp 150.
  upstream_.Put(DocId::U64(5), R"({"v":"lagging"})", 150);
  const uint64_t backfills = BackfillsDone();
  auto r = FetchOne(DocId::U64(5));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->outcome, FetchOutcome::kMiss);
  ASSERT_TRUE(WaitFor([&] { return BackfillsDone() > backfills; }));
  doc = Cached(DocId::U64(5));
  ASSERT_TRUE(doc);
  EXPECT_TRUE(doc->tombstone);
  EXPECT_EQ(doc->upserted_at, 200u);
}

TEST_F(ApplyWriteTest, DeletesThenUpsertsThenPatchesInOneWrite) {
  Seed(DocId::U64(3), R"({"a":1})", 100);
  EXPECT_TRUE(Apply(Rows(200, {Row(DocId::U64(1), R"({"u":1})")},
                         {Row(DocId::U64(3), R"({"p":2})")}, {DocId::U64(2)})));
  EXPECT_TRUE(HasLiveRecord(DocId::U64(1)));
  EXPECT_TRUE(Cached(DocId::U64(2))->tombstone);
  EXPECT_EQ(Json(Cached(DocId::U64(3))->attributes_json), Json(R"({"a":1,"p":2})"));
}

TEST_F(ApplyWriteTest, LearnsTheNamespaceIdTypeFromItsIds) {
  EXPECT_FALSE(core_->KnownIdType("u"));
  EXPECT_TRUE(Apply(Upserts(100, {Row(DocId::U64(1), "{}")}), "u"));
  EXPECT_EQ(core_->KnownIdType("u"), tpuf::IdType::kU64);

  EXPECT_TRUE(Apply(Deletes(100, {DocId::String("abc")}), "s"));
  EXPECT_EQ(core_->KnownIdType("s"), tpuf::IdType::kString);

  auto uuid = DocId::Uuid("123e4567-e89b-12d3-a456-426614174000");
  ASSERT_TRUE(uuid.ok());
  EXPECT_TRUE(Apply(Patches(100, {Row(*uuid, R"({"a":1})")}), "q"));
  EXPECT_EQ(core_->KnownIdType("q"), tpuf::IdType::kUuid);

  EXPECT_TRUE(Apply(AffectedIds(100, {DocId::String("x")}, false), "a"));
  EXPECT_EQ(core_->KnownIdType("a"), tpuf::IdType::kString);

  // The first type learnt stays.
  EXPECT_TRUE(Apply(Upserts(200, {Row(DocId::String("y"), "{}")}), "u"));
  EXPECT_EQ(core_->KnownIdType("u"), tpuf::IdType::kU64);
  // A write without ids teaches nothing.
  EXPECT_TRUE(Apply(UnknownRows(100), "n"));
  EXPECT_FALSE(core_->KnownIdType("n"));
}

// ---- ApplyWrite: affected ids and unknown rows ----

TEST_F(ApplyWriteTest, AffectedIdsAreInvalidated) {
  Seed(DocId::U64(1), R"({"n":1})", 100);
  Seed(DocId::U64(2), R"({"n":2})", 100);
  Seed(DocId::U64(3), R"({"n":3})", 100);
  EXPECT_TRUE(Apply(AffectedIds(200, {DocId::U64(1), DocId::U64(2)}, false)));
  for (uint64_t n : {1, 2}) {
    auto doc = Cached(DocId::U64(n));
    ASSERT_TRUE(doc) << n;
    EXPECT_TRUE(doc->tombstone) << n;
    EXPECT_EQ(doc->upserted_at, 200u) << n;
  }
  EXPECT_TRUE(HasLiveRecord(DocId::U64(3)));
}

TEST_F(ApplyWriteTest, UntypedAffectedIdsInvalidateTheNamespace) {
  Seed(DocId::U64(1), R"({"n":1})", 100);
  Seed(DocId::U64(2), R"({"n":2})", 100);
  Seed(DocId::U64(2), R"({"n":2})", 100, kOtherNs);
  EXPECT_TRUE(Apply(AffectedIds(200, {DocId::U64(1)}, true)));
  EXPECT_FALSE(Cached(DocId::U64(2)));
  EXPECT_FALSE(HasLiveRecord(DocId::U64(1)));
  EXPECT_TRUE(HasLiveRecord(DocId::U64(2), kOtherNs));
  auto r = FetchOne(DocId::U64(2));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->outcome, FetchOutcome::kMiss);
  EXPECT_EQ(core_->pending_invalidations(), 0u);
}

TEST_F(ApplyWriteTest, UnknownRowsInvalidateTheNamespace) {
  Seed(DocId::U64(1), R"({"n":1})", 100);
  Seed(DocId::String("s"), R"({"n":2})", 100);
  Seed(DocId::U64(1), R"({"n":1})", 100, kOtherNs);
  ASSERT_TRUE(Run(core_->RecordWarmedThrough(kNs, 500)).ok());
  const uint64_t bumps = faults_->calls(CacheOp::kBumpEpoch);
  EXPECT_TRUE(Apply(UnknownRows(200)));
  EXPECT_EQ(faults_->calls(CacheOp::kBumpEpoch), bumps + 1);
  EXPECT_FALSE(Cached(DocId::U64(1)));
  EXPECT_FALSE(Cached(DocId::String("s")));
  EXPECT_TRUE(HasLiveRecord(DocId::U64(1), kOtherNs));
  std::optional<uint64_t> warmed;
  EXPECT_EQ(Run(core_->StateOf(kNs, &warmed)), CacheState::kCold);
  EXPECT_FALSE(warmed);
}

// ---- Pending invalidations ----

using PendingTest = CoherenceTest;

TEST_F(PendingTest, RefusedTombstoneIsPendingUntilRetried) {
  Seed(DocId::U64(1), R"({"v":"stale"})", 100);
  faults_->FailOp(CacheOp::kTombstone, Status::InvalidArgument("injected"));
  const uint64_t skipped = metrics_.GetCounter("layer_cache_mirrors_skipped_total", "").value();
  EXPECT_FALSE(Apply(Deletes(200, {DocId::U64(1)})));
  EXPECT_EQ(guard().breaker_state(), cache::BreakerState::kClosed);
  EXPECT_EQ(core_->pending_invalidations(), 1u);
  EXPECT_EQ(PendingGauge(), 1.0);
  EXPECT_EQ(metrics_.GetCounter("layer_cache_mirrors_skipped_total", "").value(), skipped + 1);
  EXPECT_TRUE(core_->BackfillBlocked(kNs, DocId::U64(1)));
  EXPECT_FALSE(core_->BackfillBlocked(kNs, DocId::U64(2)));
  EXPECT_FALSE(core_->BackfillBlocked(kOtherNs, DocId::U64(1)));

  // The stale row is never served, and the answer is not backfilled.
  upstream_.Put(DocId::U64(1), R"({"v":"recreated"})", 300);
  const uint64_t backfills = BackfillsDone();
  auto r = FetchOne(DocId::U64(1));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->outcome, FetchOutcome::kMissOnError);
  ASSERT_TRUE(r->row);
  EXPECT_EQ(Json(r->row->attributes_json), Json(R"({"v":"recreated"})"));
  EXPECT_EQ(BackfillsDone(), backfills);
  EXPECT_EQ(Cached(DocId::U64(1))->upserted_at, 100u);

  // A retry while the cache still refuses keeps it.
  RetryPending();
  EXPECT_EQ(core_->pending_invalidations(), 1u);

  faults_->ClearFailures();
  RetryPending();
  EXPECT_EQ(core_->pending_invalidations(), 0u);
  EXPECT_EQ(PendingGauge(), 0.0);
  EXPECT_FALSE(core_->BackfillBlocked(kNs, DocId::U64(1)));
  auto doc = Cached(DocId::U64(1));
  ASSERT_TRUE(doc);
  EXPECT_TRUE(doc->tombstone);
  EXPECT_EQ(doc->upserted_at, 200u);

  auto clean = FetchOne(DocId::U64(1));
  ASSERT_TRUE(clean.ok());
  EXPECT_EQ(clean->outcome, FetchOutcome::kMiss);
  ASSERT_TRUE(WaitCached(DocId::U64(1)));
  EXPECT_EQ(Cached(DocId::U64(1))->upserted_at, 300u);
}

TEST_F(PendingTest, FailedTombstoneOpensTheBreakerAndTheRestGoesStraightToPending) {
  Seed(DocId::U64(1), R"({"v":"stale"})", 100);
  faults_->FailOp(CacheOp::kTombstone, Status::IoError("injected"));
  const uint64_t tombstones = faults_->calls(CacheOp::kTombstone);
  EXPECT_FALSE(Apply(Deletes(200, {DocId::U64(1), DocId::U64(2), DocId::U64(3)})));
  EXPECT_EQ(faults_->calls(CacheOp::kTombstone), tombstones + 1);
  EXPECT_EQ(guard().breaker_state(), cache::BreakerState::kOpen);
  EXPECT_EQ(core_->pending_invalidations(), 3u);
  for (uint64_t n : {1, 2, 3}) EXPECT_TRUE(core_->BackfillBlocked(kNs, DocId::U64(n))) << n;

  upstream_.Put(DocId::U64(1), R"({"v":"upstream"})", 300);
  auto r = FetchOne(DocId::U64(1));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->outcome, FetchOutcome::kMissOnError);

  // While the breaker is open a retry cannot reach the cache.
  RetryPending();
  EXPECT_EQ(core_->pending_invalidations(), 3u);

  Heal();
  RetryPending();
  EXPECT_EQ(core_->pending_invalidations(), 0u);
  for (uint64_t n : {1, 2, 3}) {
    auto doc = Cached(DocId::U64(n));
    ASSERT_TRUE(doc) << n;
    EXPECT_TRUE(doc->tombstone) << n;
    EXPECT_EQ(doc->upserted_at, 200u) << n;
  }
  upstream_.Remove(DocId::U64(1));
  auto clean = FetchOne(DocId::U64(1));
  ASSERT_TRUE(clean.ok());
  EXPECT_EQ(clean->outcome, FetchOutcome::kMiss);
  EXPECT_FALSE(clean->row);
}

TEST_F(PendingTest, RefusedUpsertMirrorIsPendingAndTheStaleRowIsNotServed) {
  Seed(DocId::U64(1), R"({"v":"stale"})", 100);
  faults_->FailOp(CacheOp::kPutIfNewerBatch, Status::InvalidArgument("injected"));
  EXPECT_FALSE(Apply(Upserts(200, {Row(DocId::U64(1), R"({"v":"new"})")})));
  EXPECT_EQ(core_->pending_invalidations(), 1u);
  upstream_.Put(DocId::U64(1), R"({"v":"new"})", 200);
  auto r = FetchOne(DocId::U64(1));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->outcome, FetchOutcome::kMissOnError);
  EXPECT_EQ(Json(r->row->attributes_json), Json(R"({"v":"new"})"));

  faults_->ClearFailures();
  RetryPending();
  EXPECT_EQ(core_->pending_invalidations(), 0u);
  EXPECT_TRUE(Cached(DocId::U64(1))->tombstone);
}

TEST_F(PendingTest, RefusedPatchReadIsPending) {
  Seed(DocId::U64(1), R"({"a":1})", 100);
  faults_->FailOp(CacheOp::kMultiGet, Status::InvalidArgument("injected"));
  EXPECT_FALSE(Apply(Patches(200, {Row(DocId::U64(1), R"({"a":2})")})));
  EXPECT_EQ(core_->pending_invalidations(), 1u);
  EXPECT_TRUE(core_->BackfillBlocked(kNs, DocId::U64(1)));
  faults_->ClearFailures();
  RetryPending();
  EXPECT_EQ(core_->pending_invalidations(), 0u);
  EXPECT_TRUE(Cached(DocId::U64(1))->tombstone);
}

TEST_F(PendingTest, FetchManyDoesNotServeAPendingId) {
  Seed(DocId::U64(1), R"({"v":"stale"})", 100);
  Seed(DocId::U64(2), R"({"n":2})", 100);
  faults_->FailOp(CacheOp::kTombstone, Status::InvalidArgument("injected"));
  EXPECT_FALSE(Apply(Deletes(200, {DocId::U64(1)})));
  faults_->ClearFailures();
  upstream_.Put(DocId::U64(1), R"({"v":"upstream"})", 300);
  const uint64_t backfills = BackfillsDone();
  auto r = FetchMany({DocId::U64(1), DocId::U64(2)});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->outcome, FetchOutcome::kMissOnError);
  ASSERT_EQ(upstream_.call_count(), 1u);
  EXPECT_EQ(Texts(upstream_.calls()[0]), std::vector<std::string>{"1"});
  EXPECT_EQ(Json(r->rows.at(IdKey(DocId::U64(1))).attributes_json), Json(R"({"v":"upstream"})"));
  EXPECT_EQ(BackfillsDone(), backfills);
  EXPECT_EQ(Cached(DocId::U64(1))->upserted_at, 100u);
}

TEST_F(PendingTest, FetchManyOfAPendingIdWithoutARecordIsMissOnError) {
  faults_->FailOp(CacheOp::kTombstone, Status::InvalidArgument("injected"));
  EXPECT_FALSE(Apply(Deletes(200, {DocId::U64(1)})));
  faults_->ClearFailures();
  Seed(DocId::U64(2), R"({"n":2})", 100);
  upstream_.Put(DocId::U64(1), R"({"v":"upstream"})", 300);
  const uint64_t backfills = BackfillsDone();
  auto r = FetchMany({DocId::U64(1), DocId::U64(2)});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->outcome, FetchOutcome::kMissOnError);
  EXPECT_EQ(r->rows.size(), 2u);
  EXPECT_EQ(BackfillsDone(), backfills);
  EXPECT_FALSE(Cached(DocId::U64(1)));
}

TEST_F(PendingTest, FailedEpochBumpHoldsTheWholeNamespace) {
  Seed(DocId::U64(1), R"({"v":"stale"})", 100);
  Seed(DocId::U64(1), R"({"v":"other"})", 100, kOtherNs);
  faults_->FailOp(CacheOp::kBumpEpoch, Status::InvalidArgument("injected"));
  EXPECT_FALSE(Apply(UnknownRows(200)));
  EXPECT_EQ(core_->pending_invalidations(), 1u);
  EXPECT_TRUE(core_->BackfillBlocked(kNs, DocId::U64(1)));
  EXPECT_TRUE(core_->BackfillBlocked(kNs, DocId::String("any")));
  EXPECT_FALSE(core_->BackfillBlocked(kOtherNs, DocId::U64(1)));

  upstream_.Put(DocId::U64(1), R"({"v":"upstream"})", 300);
  for (const DocId& id : {DocId::U64(1), DocId::U64(99), DocId::String("x")}) {
    auto r = FetchOne(id);
    ASSERT_TRUE(r.ok()) << id.ToText();
    EXPECT_EQ(r->outcome, FetchOutcome::kMissOnError) << id.ToText();
  }
  auto one = FetchOne(DocId::U64(1));
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(Json(one->row->attributes_json), Json(R"({"v":"upstream"})"));
  auto other = FetchOne(DocId::U64(1), kOtherNs);
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(other->outcome, FetchOutcome::kHit);

  RetryPending();
  EXPECT_EQ(core_->pending_invalidations(), 1u);

  faults_->ClearFailures();
  RetryPending();
  EXPECT_EQ(core_->pending_invalidations(), 0u);
  EXPECT_FALSE(Cached(DocId::U64(1)));
  auto clean = FetchOne(DocId::U64(1));
  ASSERT_TRUE(clean.ok());
  EXPECT_EQ(clean->outcome, FetchOutcome::kMiss);
}

TEST_F(PendingTest, FailedEpochBumpOfUntypedAffectedIdsIsPending) {
  faults_->FailOp(CacheOp::kBumpEpoch, Status::InvalidArgument("injected"));
  EXPECT_FALSE(Apply(AffectedIds(200, {DocId::U64(1)}, true)));
  EXPECT_EQ(core_->pending_invalidations(), 1u);
  EXPECT_TRUE(core_->BackfillBlocked(kNs, DocId::U64(7)));
  faults_->ClearFailures();
  RetryPending();
  EXPECT_EQ(core_->pending_invalidations(), 0u);
}

TEST_F(PendingTest, NamespaceRetrySettlesItsIdEntries) {
  faults_->FailOp(CacheOp::kTombstone, Status::InvalidArgument("injected"));
  EXPECT_FALSE(Apply(Deletes(200, {DocId::U64(1), DocId::U64(2)})));
  EXPECT_FALSE(Apply(Deletes(200, {DocId::U64(1)}), kOtherNs));
  faults_->FailOp(CacheOp::kBumpEpoch, Status::InvalidArgument("injected"));
  EXPECT_FALSE(Apply(UnknownRows(300)));
  EXPECT_EQ(core_->pending_invalidations(), 4u);

  // The bump goes through and settles the namespace's id entries; tombstones are still refused.
  faults_->ClearFailures();
  faults_->FailOp(CacheOp::kTombstone, Status::InvalidArgument("injected"));
  RetryPending();
  EXPECT_FALSE(core_->BackfillBlocked(kNs, DocId::U64(1)));
  EXPECT_FALSE(core_->BackfillBlocked(kNs, DocId::U64(2)));
  EXPECT_TRUE(core_->BackfillBlocked(kOtherNs, DocId::U64(1)));
  EXPECT_EQ(core_->pending_invalidations(), 1u);

  faults_->ClearFailures();
  RetryPending();
  EXPECT_EQ(core_->pending_invalidations(), 0u);
  auto doc = Cached(DocId::U64(1), kOtherNs);
  ASSERT_TRUE(doc);
  EXPECT_TRUE(doc->tombstone);
}

// ---- Namespace delete ----

using NamespaceDeletedTest = CoherenceTest;

TEST_F(NamespaceDeletedTest, ForgetsTheIdTypeAndDropsTheRecords) {
  EXPECT_TRUE(Apply(Upserts(100, {Row(DocId::U64(1), R"({"n":1})")})));
  ASSERT_TRUE(Run(core_->RecordWarmedThrough(kNs, 500)).ok());
  Seed(DocId::U64(1), R"({"n":1})", 100, kOtherNs);
  core_->LearnIdType(kOtherNs, tpuf::IdType::kU64);
  ASSERT_EQ(core_->KnownIdType(kNs), tpuf::IdType::kU64);

  Run(core_->NamespaceDeleted(kNs));
  EXPECT_FALSE(core_->KnownIdType(kNs));
  EXPECT_FALSE(Cached(DocId::U64(1)));
  std::optional<uint64_t> warmed;
  EXPECT_EQ(Run(core_->StateOf(kNs, &warmed)), CacheState::kCold);
  EXPECT_FALSE(warmed);
  auto r = FetchOne(DocId::U64(1));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->outcome, FetchOutcome::kMiss);
  EXPECT_EQ(core_->KnownIdType(kOtherNs), tpuf::IdType::kU64);
  EXPECT_TRUE(HasLiveRecord(DocId::U64(1), kOtherNs));
  EXPECT_EQ(core_->pending_invalidations(), 0u);
}

TEST_F(NamespaceDeletedTest, FailedBumpIsPending) {
  Seed(DocId::U64(1), R"({"n":1})", 100);
  faults_->FailOp(CacheOp::kBumpEpoch, Status::IoError("injected"));
  Run(core_->NamespaceDeleted(kNs));
  EXPECT_EQ(core_->pending_invalidations(), 1u);
  auto r = FetchOne(DocId::U64(1));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->outcome, FetchOutcome::kMissOnError);
  Heal();
  RetryPending();
  EXPECT_EQ(core_->pending_invalidations(), 0u);
  EXPECT_FALSE(Cached(DocId::U64(1)));
}

// ---- Cache state ----

using StateTest = CoherenceTest;

TEST_F(StateTest, ColdWithoutAWarmedThroughRecord) {
  std::optional<uint64_t> warmed;
  EXPECT_EQ(Run(core_->StateOf(kNs, &warmed)), CacheState::kCold);
  EXPECT_FALSE(warmed);
}

TEST_F(StateTest, WarmAfterRecordWarmedThrough) {
  ASSERT_TRUE(Run(core_->RecordWarmedThrough(kNs, 1234)).ok());
  std::optional<uint64_t> warmed;
  EXPECT_EQ(Run(core_->StateOf(kNs, &warmed)), CacheState::kWarm);
  EXPECT_EQ(warmed, 1234u);
  EXPECT_EQ(StateGauge(kNs, "warm"), 1.0);
  EXPECT_EQ(StateGauge(kNs, "cold"), 0.0);
  EXPECT_EQ(StateGauge(kNs, "warming"), 0.0);
  std::optional<uint64_t> other;
  EXPECT_EQ(Run(core_->StateOf(kOtherNs, &other)), CacheState::kCold);
  EXPECT_FALSE(other);
}

TEST_F(StateTest, WarmingWhileTheWarmingHookSaysSo) {
  std::string warming = kNs;
  core_->SetWarmHooks([&](std::string_view ns) { return ns == warming; }, nullptr);
  EXPECT_TRUE(core_->Warming(kNs));
  EXPECT_FALSE(core_->Warming(kOtherNs));
  std::optional<uint64_t> warmed;
  EXPECT_EQ(Run(core_->StateOf(kNs, &warmed)), CacheState::kWarming);
  EXPECT_EQ(Run(core_->StateOf(kOtherNs, &warmed)), CacheState::kCold);

  // Warming wins even over an unavailable cache.
  faults_->FailAll(Status::IoError("injected"));
  EXPECT_FALSE(Run(core_->Available()));
  EXPECT_EQ(Run(core_->StateOf(kNs, &warmed)), CacheState::kWarming);

  warming.clear();
  EXPECT_EQ(Run(core_->StateOf(kNs, &warmed)), CacheState::kCold);
}

TEST_F(StateTest, ColdWhenTheCacheIsUnavailable) {
  ASSERT_TRUE(Run(core_->RecordWarmedThrough(kNs, 1234)).ok());
  EXPECT_TRUE(Run(core_->Available()));
  faults_->FailOp(CacheOp::kPing, Status::IoError("injected"));
  EXPECT_FALSE(Run(core_->Available()));
  std::optional<uint64_t> warmed;
  EXPECT_EQ(Run(core_->StateOf(kNs, &warmed)), CacheState::kCold);

  Heal();
  EXPECT_TRUE(Run(core_->Available()));
  EXPECT_EQ(Run(core_->StateOf(kNs, &warmed)), CacheState::kWarm);
  EXPECT_EQ(warmed, 1234u);
}

TEST_F(StateTest, NewStampIsTheClocksWallTime) {
  EXPECT_EQ(core_->NewStamp(), static_cast<uint64_t>(clock_.WallMs()));
  clock_.Advance(5s);
  EXPECT_EQ(core_->NewStamp(), static_cast<uint64_t>(clock_.WallMs()));
}

TEST_F(StateTest, CacheStateNames) {
  EXPECT_EQ(CacheStateName(CacheState::kCold), "cold");
  EXPECT_EQ(CacheStateName(CacheState::kWarming), "warming");
  EXPECT_EQ(CacheStateName(CacheState::kWarm), "warm");
}

// ---- Reactive warm ----

using ReactiveWarmTest = CoherenceTest;

TEST_F(ReactiveWarmTest, NoWarmWhileTheCacheNeverReconnected) {
  std::vector<std::string> started;
  core_->SetWarmHooks(nullptr, [&](const std::string& ns) { started.push_back(ns); });
  ASSERT_EQ(guard().generation(), 1u);
  auto r = FetchOne(DocId::U64(1));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->outcome, FetchOutcome::kMiss);
  EXPECT_TRUE(started.empty());
}

TEST_F(ReactiveWarmTest, FirstCleanMissAfterAReconnectStartsOneWarm) {
  std::vector<std::string> started;
  core_->SetWarmHooks(nullptr, [&](const std::string& ns) { started.push_back(ns); });
  DisconnectAndReconnect();
  ASSERT_EQ(guard().generation(), 2u);

  auto first = FetchOne(DocId::U64(1));
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->outcome, FetchOutcome::kMiss);
  EXPECT_EQ(started, std::vector<std::string>{kNs});

  auto second = FetchOne(DocId::U64(2));
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->outcome, FetchOutcome::kMiss);
  auto many = FetchMany({DocId::U64(3), DocId::U64(4)});
  ASSERT_TRUE(many.ok());
  EXPECT_EQ(started, std::vector<std::string>{kNs});

  // Each namespace gets its own first miss; a batch miss counts too.
  auto other = FetchMany({DocId::U64(1)}, kOtherNs);
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(other->outcome, FetchOutcome::kMiss);
  EXPECT_EQ(started, (std::vector<std::string>{kNs, kOtherNs}));

  // A later reconnect starts one more per namespace.
  DisconnectAndReconnect();
  ASSERT_EQ(guard().generation(), 3u);
  ASSERT_TRUE(FetchOne(DocId::U64(5)).ok());
  ASSERT_TRUE(FetchOne(DocId::U64(6)).ok());
  EXPECT_EQ(started, (std::vector<std::string>{kNs, kOtherNs, kNs}));
}

TEST_F(ReactiveWarmTest, HitsAndMissesOnErrorStartNoWarm) {
  std::vector<std::string> started;
  core_->SetWarmHooks(nullptr, [&](const std::string& ns) { started.push_back(ns); });
  Seed(DocId::U64(1), R"({"n":1})", 100);
  DisconnectAndReconnect();

  auto hit = FetchOne(DocId::U64(1));
  ASSERT_TRUE(hit.ok());
  EXPECT_EQ(hit->outcome, FetchOutcome::kHit);
  faults_->FailOp(CacheOp::kGet, Status::InvalidArgument("injected"));
  auto error = FetchOne(DocId::U64(2));
  ASSERT_TRUE(error.ok());
  EXPECT_EQ(error->outcome, FetchOutcome::kMissOnError);
  EXPECT_TRUE(started.empty());

  faults_->ClearFailures();
  auto miss = FetchOne(DocId::U64(2));
  ASSERT_TRUE(miss.ok());
  EXPECT_EQ(miss->outcome, FetchOutcome::kMiss);
  EXPECT_EQ(started, std::vector<std::string>{kNs});
}

// ---- Without a cache ----

TEST(NoCacheTest, EveryFetchIsAMissOnErrorAndWritesSucceed) {
  asio::io_context io;
  CacheCoherence core(nullptr, CoherenceOptions{});
  FakeUpstream upstream;
  upstream.Put(DocId::U64(1), R"({"n":1})", 100);
  const RowReader reader = upstream.Reader();
  const std::string ns = kNs;
  const DocId id = DocId::U64(1);

  auto one = RunTask(io, core.FetchOne(ns, id, reader));
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(one->outcome, FetchOutcome::kMissOnError);
  ASSERT_TRUE(one->row);
  auto many = RunTask(io, core.FetchMany(ns, {id, DocId::U64(2)}, reader));
  ASSERT_TRUE(many.ok());
  EXPECT_EQ(many->outcome, FetchOutcome::kMissOnError);
  EXPECT_EQ(many->rows.size(), 1u);

  EXPECT_TRUE(RunTask(io, core.ApplyWrite(ns, Deletes(100, {id}))));
  EXPECT_EQ(core.KnownIdType(ns), tpuf::IdType::kU64);
  EXPECT_EQ(core.pending_invalidations(), 0u);
  EXPECT_FALSE(RunTask(io, core.Available()));
  std::optional<uint64_t> warmed;
  EXPECT_EQ(RunTask(io, core.StateOf(ns, &warmed)), CacheState::kCold);
  EXPECT_FALSE(RunTask(io, core.RecordWarmedThrough(ns, 1)).ok());
}

}  // namespace
}  // namespace layer::coherence
