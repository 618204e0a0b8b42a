#include "cache/guard.h"

#include <gtest/gtest.h>
#include <pthread.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include <atomic>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>

#include "cache/fault_injecting_cache.h"
#include "cache/rocksdb/rocksdb_cache.h"
#include "common/thread.h"
#include "unit/cache/test_util.h"

namespace layer::cache {
namespace {

using testing::RunTask;
using testing::TempDir;
using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

class CacheGuardTest : public ::testing::Test {
 protected:
  void SetUp() override {
    RocksDbCacheOptions o;
    o.path = dir_.Sub("cache");
    auto r = RocksDbCache::Open(o);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    inner_ = std::shared_ptr<DocumentCache>(std::move(r).value());
    faults_ = std::make_shared<FaultInjectingCache>(inner_);
  }
  void TearDown() override {
    faults_->ClearLatency();  // lets late background calls finish before the guard joins
  }

  CacheGuardOptions Options() {
    CacheGuardOptions o;
    o.op_timeout = 1000ms;
    o.open_interval = 2000ms;
    o.clock = &clock_;
    o.metrics = &metrics_;
    return o;
  }

  TempDir dir_;
  std::shared_ptr<DocumentCache> inner_;
  std::shared_ptr<FaultInjectingCache> faults_;
  MetricsRegistry metrics_;
  // The breaker's clock, `ms` after the start of the test.
  void SetClockMs(int64_t ms) {
    clock_.Advance(std::chrono::milliseconds(ms - clock_ms_));
    clock_ms_ = ms;
  }
  ManualClock clock_;
  int64_t clock_ms_ = 0;
};

TEST_F(CacheGuardTest, PassesCallsThroughAndConnectsOnFirstSuccess) {
  CacheGuard guard(faults_, Options());
  EXPECT_FALSE(guard.connected());
  EXPECT_EQ(guard.generation(), 0u);
  auto put = RunTask(guard.PutIfNewer("ns", DocId::String("a"), CachedDoc{"{\"x\":1}", 5, false}));
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  EXPECT_TRUE(*put);
  EXPECT_TRUE(guard.connected());
  EXPECT_EQ(guard.generation(), 1u);
  auto got = RunTask(guard.Get("ns", DocId::String("a")));
  ASSERT_TRUE(got.ok());
  EXPECT_EQ((*got)->attributes_json, "{\"x\":1}");

  auto batch = RunTask(guard.PutIfNewerBatch("ns", {{DocId::U64(1), CachedDoc{"{}", 1, false}},
                                                    {DocId::U64(2), CachedDoc{"{}", 1, false}}}));
  ASSERT_TRUE(batch.ok());
  EXPECT_EQ(*batch, (std::vector<bool>{true, true}));
  auto multi = RunTask(guard.MultiGet("ns", {DocId::U64(2), DocId::U64(3)}));
  ASSERT_TRUE(multi.ok());
  EXPECT_TRUE((*multi)[0].has_value());
  EXPECT_FALSE((*multi)[1].has_value());
  EXPECT_TRUE(RunTask(guard.Tombstone("ns", DocId::U64(1), 10)).ok());
  EXPECT_TRUE((*RunTask(guard.Get("ns", DocId::U64(1))))->tombstone);
  EXPECT_TRUE(RunTask(guard.PutVector("ns", DocId::U64(2), "vvvv")).ok());
  EXPECT_EQ(**RunTask(guard.GetVector("ns", DocId::U64(2))), "vvvv");
  EXPECT_TRUE(RunTask(guard.Invalidate("ns", {DocId::U64(2)})).ok());
  EXPECT_FALSE(RunTask(guard.GetVector("ns", DocId::U64(2)))->has_value());
  EXPECT_TRUE(RunTask(guard.PutNamespaceRecord("ns", "k", "v")).ok());
  EXPECT_EQ(**RunTask(guard.GetNamespaceRecord("ns", "k")), "v");
  EXPECT_EQ(RunTask(guard.ListNamespaceRecords("k"))->size(), 1u);
  EXPECT_TRUE(RunTask(guard.BumpEpoch("ns")).ok());
  EXPECT_FALSE(RunTask(guard.Get("ns", DocId::String("a")))->has_value());
  EXPECT_TRUE(RunTask(guard.Ping()).ok());
  EXPECT_EQ(RunTask(guard.Stats())->backend, "rocksdb");
  EXPECT_TRUE(guard.PingSync().ok());
  EXPECT_EQ(guard.StatsSync()->backend, "rocksdb");
  EXPECT_EQ(guard.breaker_state(), BreakerState::kClosed);
  EXPECT_EQ(guard.generation(), 1u);
  EXPECT_TRUE(guard.last_error().ok());
}

TEST_F(CacheGuardTest, SlowBackendTimesOutQuicklyAndTheLateCallFinishesInTheBackground) {
  CacheGuardOptions o = Options();
  o.op_timeout = 50ms;
  CacheGuard guard(faults_, o);
  faults_->SetLatency(5000ms);
  auto start = SteadyClock::now();
  Result<bool> put = RunTask([&]() -> Task<Result<bool>> {
    // Locals of this coroutine, gone once it returns: the late backend call must own copies.
    // (Named, not brace-initialised temporaries inside the co_await: GCC 12 double-destroys
    // those; see guard.h.)
    std::string ns = "ns";
    DocId id = DocId::String(std::string("late"));
    CachedDoc doc{std::string("{\"late\":true}"), 7, false};
    co_return co_await guard.PutIfNewer(ns, std::move(id), std::move(doc));
  }());
  auto elapsed = SteadyClock::now() - start;
  ASSERT_FALSE(put.ok());
  EXPECT_EQ(put.status().code(), StatusCode::kTimeout);
  EXPECT_LT(elapsed, 1000ms);
  EXPECT_EQ(guard.breaker_state(), BreakerState::kOpen);
  EXPECT_FALSE(guard.connected());
  EXPECT_EQ(guard.last_error().code(), StatusCode::kTimeout);

  // Release the sleeping backend call; it completes with its own copies of the inputs.
  faults_->ClearLatency();
  bool landed = false;
  for (int i = 0; i < 100 && !landed; ++i) {
    auto r = inner_->Get("ns", DocId::String("late"));
    landed = r.ok() && r->has_value() && (*r)->attributes_json == "{\"late\":true}";
    if (!landed) std::this_thread::sleep_for(10ms);
  }
  EXPECT_TRUE(landed);
  EXPECT_NE(
      metrics_.Render().find("layer_cache_op_errors_total{op=\"put_if_newer\",kind=\"timeout\"} 1"),
      std::string::npos);
}

TEST_F(CacheGuardTest, SyncPingTimesOut) {
  CacheGuardOptions o = Options();
  o.op_timeout = 50ms;
  CacheGuard guard(faults_, o);
  faults_->SetOpLatency(CacheOp::kPing, 5000ms);
  auto start = SteadyClock::now();
  EXPECT_EQ(guard.PingSync().code(), StatusCode::kTimeout);
  EXPECT_LT(SteadyClock::now() - start, 1000ms);
  EXPECT_EQ(guard.breaker_state(), BreakerState::kOpen);
  faults_->ClearLatency();  // before ~CacheGuard waits for the sleeping call
}

TEST_F(CacheGuardTest, BreakerOpensHalfOpensAndCloses) {
  CacheGuard guard(faults_, Options());
  ASSERT_TRUE(RunTask(guard.Ping()).ok());
  EXPECT_EQ(guard.generation(), 1u);

  // One failure opens the breaker.
  faults_->FailAll(Status::IoError("boom"));
  auto r = RunTask(guard.Get("ns", DocId::U64(1)));
  EXPECT_EQ(r.status().code(), StatusCode::kIoError);
  EXPECT_EQ(guard.breaker_state(), BreakerState::kOpen);
  EXPECT_FALSE(guard.connected());
  EXPECT_EQ(guard.last_error().message(), "boom");
  EXPECT_NE(metrics_.Render().find("layer_cache_breaker_state 1"), std::string::npos);

  // While open, calls fail at once without reaching the backend.
  faults_->ClearFailures();
  const uint64_t calls = faults_->calls(CacheOp::kGet);
  r = RunTask(guard.Get("ns", DocId::U64(1)));
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(r.status().message(), "cache circuit open");
  EXPECT_EQ(faults_->calls(CacheOp::kGet), calls);
  SetClockMs(1999);
  EXPECT_EQ(RunTask(guard.Get("ns", DocId::U64(1))).status().message(), "cache circuit open");

  // After the interval exactly one caller probes; a concurrent caller is still turned away.
  SetClockMs(2000);
  faults_->SetLatency(100ms);
  boost::asio::io_context io;
  std::optional<Result<std::optional<CachedDoc>>> probe, second;
  std::optional<BreakerState> state_during_probe;
  boost::asio::co_spawn(
      io, [&]() -> Task<void> { probe.emplace(co_await guard.Get("ns", DocId::U64(1))); },
      boost::asio::detached);
  boost::asio::co_spawn(
      io,
      [&]() -> Task<void> {
        state_during_probe = guard.breaker_state();
        second.emplace(co_await guard.Get("ns", DocId::U64(2)));
      },
      boost::asio::detached);
  io.run();
  EXPECT_EQ(state_during_probe, BreakerState::kHalfOpen);
  ASSERT_TRUE(probe && second);
  EXPECT_TRUE(probe->ok()) << probe->status().ToString();
  EXPECT_EQ(second->status().message(), "cache circuit open");
  EXPECT_EQ(guard.breaker_state(), BreakerState::kClosed);
  EXPECT_TRUE(guard.connected());
  EXPECT_EQ(guard.generation(), 2u);
  EXPECT_NE(metrics_.Render().find("layer_cache_breaker_state 0"), std::string::npos);
  EXPECT_NE(
      metrics_.Render().find("layer_cache_op_errors_total{op=\"get\",kind=\"circuit_open\"} 3"),
      std::string::npos);
  EXPECT_NE(metrics_.Render().find("layer_cache_op_errors_total{op=\"get\",kind=\"io_error\"} 1"),
            std::string::npos);
}

TEST_F(CacheGuardTest, FailedProbeReopensTheBreaker) {
  CacheGuard guard(faults_, Options());
  faults_->FailOp(CacheOp::kPing, Status::Unavailable("down"));
  EXPECT_FALSE(RunTask(guard.Ping()).ok());
  EXPECT_EQ(guard.breaker_state(), BreakerState::kOpen);
  SetClockMs(2500);
  EXPECT_EQ(RunTask(guard.Ping()).message(), "down");  // the probe reached the backend and failed
  EXPECT_EQ(guard.breaker_state(), BreakerState::kOpen);
  SetClockMs(4000);  // re-opened at 2500: still open
  EXPECT_EQ(RunTask(guard.Ping()).message(), "cache circuit open");
  faults_->ClearFailures();
  SetClockMs(4500);
  EXPECT_TRUE(RunTask(guard.Ping()).ok());
  EXPECT_EQ(guard.breaker_state(), BreakerState::kClosed);
  EXPECT_EQ(guard.generation(), 1u);  // first time connected
}

TEST_F(CacheGuardTest, GenerationIncrementsOnEveryReconnect) {
  CacheGuard guard(faults_, Options());
  ASSERT_TRUE(guard.PingSync().ok());
  EXPECT_EQ(guard.generation(), 1u);
  for (uint64_t round = 2; round <= 4; ++round) {
    faults_->Disconnect();
    EXPECT_EQ(RunTask(guard.Get("ns", DocId::U64(1))).status().code(), StatusCode::kUnavailable);
    EXPECT_FALSE(guard.connected());
    EXPECT_EQ(guard.generation(), round - 1);
    faults_->Reconnect();
    SetClockMs(clock_ms_ + 2000);
    ASSERT_TRUE(RunTask(guard.Get("ns", DocId::U64(1))).ok());
    EXPECT_TRUE(guard.connected());
    EXPECT_EQ(guard.generation(), round);
  }
}

TEST_F(CacheGuardTest, CallerErrorsDoNotOpenTheBreaker) {
  CacheGuard guard(faults_, Options());
  auto r = RunTask(guard.Get("", DocId::U64(1)));  // empty namespace: InvalidArgument
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(guard.breaker_state(), BreakerState::kClosed);
}

TEST_F(CacheGuardTest, RealClockBreakerWithShortInterval) {
  CacheGuardOptions o;
  o.op_timeout = 200ms;
  o.open_interval = 300ms;
  o.metrics = &metrics_;
  CacheGuard guard(faults_, o);
  faults_->Disconnect();
  EXPECT_FALSE(RunTask(guard.Ping()).ok());
  EXPECT_EQ(RunTask(guard.Ping()).message(), "cache circuit open");
  faults_->Reconnect();
  std::this_thread::sleep_for(350ms);
  EXPECT_TRUE(RunTask(guard.Ping()).ok());
  EXPECT_EQ(guard.breaker_state(), BreakerState::kClosed);
}

bool Rendered(MetricsRegistry& m, const std::string& line) {
  return m.Render().find(line) != std::string::npos;
}

TEST_F(CacheGuardTest, TryGetServesFromMemoryOnTheCallersThread) {
  CacheGuard guard(faults_, Options());
  ASSERT_TRUE(inner_->PutIfNewer("ns", DocId::U64(1), CachedDoc{"{\"a\":1}", 3, false}).ok());
  // A plain call: no io_context runs, so nothing can have been posted to the pool and back.
  TryGetResult hit = guard.TryGet("ns", DocId::U64(1));
  ASSERT_TRUE(hit.has_value());
  ASSERT_TRUE(hit->ok());
  ASSERT_TRUE(hit->value().has_value());
  EXPECT_EQ(hit->value()->attributes_json, "{\"a\":1}");
  EXPECT_EQ(faults_->calls(CacheOp::kTryGet), 1u);
  EXPECT_EQ(faults_->calls(CacheOp::kGet), 0u);
  // It counts as a guarded success: connected, generation 1, metrics under op "try_get".
  EXPECT_TRUE(guard.connected());
  EXPECT_EQ(guard.generation(), 1u);
  EXPECT_TRUE(
      Rendered(metrics_, "layer_cache_op_duration_seconds_count{op=\"try_get\",status=\"ok\"} 1"));

  TryGetResult miss = guard.TryGet("ns", DocId::U64(2));
  ASSERT_TRUE(miss.has_value() && miss->ok());
  EXPECT_FALSE(miss->value().has_value());
}

TEST_F(CacheGuardTest, TryGetDeclineIsCountedAndLeavesTheBreakerAlone) {
  CacheGuard guard(faults_, Options());
  faults_->SetTryGetWouldBlock(true);
  EXPECT_FALSE(guard.TryGet("ns", DocId::U64(1)).has_value());
  EXPECT_EQ(guard.breaker_state(), BreakerState::kClosed);
  EXPECT_FALSE(guard.connected());  // a decline is not an answer
  EXPECT_TRUE(Rendered(metrics_, "layer_cache_try_get_fallbacks_total 1"));
  // The caller's fallback is an ordinary guarded Get.
  auto got = RunTask(guard.Get("ns", DocId::U64(1)));
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(faults_->calls(CacheOp::kGet), 1u);
}

TEST_F(CacheGuardTest, TryGetFailureOpensTheBreakerAndOpenBreakerSkipsTheBackend) {
  CacheGuard guard(faults_, Options());
  faults_->FailOp(CacheOp::kGet, Status::IoError("boom"));
  TryGetResult r = guard.TryGet("ns", DocId::U64(1));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status().code(), StatusCode::kIoError);
  EXPECT_EQ(guard.breaker_state(), BreakerState::kOpen);
  EXPECT_EQ(guard.last_error().message(), "boom");
  EXPECT_TRUE(
      Rendered(metrics_, "layer_cache_op_errors_total{op=\"try_get\",kind=\"io_error\"} 1"));

  // Open: TryGet declines without reaching the backend, and the Get that follows is rejected.
  faults_->ClearFailures();
  const uint64_t try_calls = faults_->calls(CacheOp::kTryGet);
  EXPECT_FALSE(guard.TryGet("ns", DocId::U64(1)).has_value());
  EXPECT_EQ(faults_->calls(CacheOp::kTryGet), try_calls);
  EXPECT_EQ(RunTask(guard.Get("ns", DocId::U64(1))).status().message(), "cache circuit open");

  // Half-open: TryGet still declines, so the caller's Get is the probe, under its deadline.
  SetClockMs(2000);
  EXPECT_FALSE(guard.TryGet("ns", DocId::U64(1)).has_value());
  EXPECT_EQ(guard.breaker_state(), BreakerState::kOpen);  // declining does not take the probe
  EXPECT_TRUE(RunTask(guard.Get("ns", DocId::U64(1))).ok());
  EXPECT_EQ(guard.breaker_state(), BreakerState::kClosed);
  EXPECT_EQ(guard.generation(), 1u);
  // Closed again: served from memory.
  EXPECT_TRUE(guard.TryGet("ns", DocId::U64(1)).has_value());
  EXPECT_EQ(faults_->calls(CacheOp::kTryGet), try_calls + 1);
}

TEST_F(CacheGuardTest, SlowCacheDegradesThroughTheDeadlinePath) {
  // docs/design.md §8.1, "cache down or slow": the read falls back to the guarded Get, which times
  // out (so the fetch falls through to upstream), the breaker opens, and later reads skip the
  // cache entirely until the breaker closes.
  CacheGuardOptions o = Options();
  o.op_timeout = 50ms;
  CacheGuard guard(faults_, o);
  ASSERT_TRUE(inner_->PutIfNewer("ns", DocId::U64(1), CachedDoc{"{}", 1, false}).ok());
  faults_->SetLatency(5000ms);
  EXPECT_FALSE(guard.TryGet("ns", DocId::U64(1)).has_value());
  auto slow = RunTask(guard.Get("ns", DocId::U64(1)));
  EXPECT_EQ(slow.status().code(), StatusCode::kTimeout);
  EXPECT_EQ(guard.breaker_state(), BreakerState::kOpen);
  EXPECT_FALSE(guard.TryGet("ns", DocId::U64(1)).has_value());
  EXPECT_EQ(RunTask(guard.Get("ns", DocId::U64(1))).status().message(), "cache circuit open");
  faults_->ClearLatency();
}

TEST_F(CacheGuardTest, ThrowingTryGetIsAnInternalError) {
  // A test double whose TryGet throws: nothing escapes the guard.
  class Throwing final : public DocumentCache {
   public:
    Result<std::optional<CachedDoc>> Get(std::string_view, const DocId&) override {
      return std::optional<CachedDoc>();
    }
    TryGetResult TryGet(std::string_view, const DocId&) override {
      throw std::runtime_error("kaboom");
    }
    Result<std::vector<std::optional<CachedDoc>>> MultiGet(std::string_view,
                                                           std::span<const DocId> ids) override {
      return std::vector<std::optional<CachedDoc>>(ids.size());
    }
    Result<bool> PutIfNewer(std::string_view, const DocId&, const CachedDoc&) override {
      return true;
    }
    Result<std::vector<bool>> PutIfNewerBatch(
        std::string_view, std::span<const std::pair<DocId, CachedDoc>> docs) override {
      return std::vector<bool>(docs.size(), true);
    }
    Status Tombstone(std::string_view, const DocId&, uint64_t, bool) override {
      return Status::Ok();
    }
    Status Invalidate(std::string_view, std::span<const DocId>) override { return Status::Ok(); }
    Status PutVector(std::string_view, const DocId&, std::string_view) override {
      return Status::Ok();
    }
    Result<std::optional<std::string>> GetVector(std::string_view, const DocId&) override {
      return std::optional<std::string>();
    }
    Status BumpEpoch(std::string_view) override { return Status::Ok(); }
    Result<std::optional<std::string>> GetNamespaceRecord(std::string_view,
                                                          std::string_view) override {
      return std::optional<std::string>();
    }
    Status PutNamespaceRecord(std::string_view, std::string_view, std::string_view) override {
      return Status::Ok();
    }
    Result<std::vector<std::pair<std::string, std::string>>> ListNamespaceRecords(
        std::string_view) override {
      return std::vector<std::pair<std::string, std::string>>();
    }
    Result<ScanPage> ScanNamespace(std::string_view, const std::optional<DocId>&, size_t) override {
      return ScanPage();
    }
    Status Ping() override { return Status::Ok(); }
    CacheStats Stats() override { return CacheStats{"throwing", 0, 0}; }
  };
  CacheGuard guard(std::make_shared<Throwing>(), Options());
  TryGetResult r = guard.TryGet("ns", DocId::U64(1));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status().code(), StatusCode::kInternal);
  EXPECT_EQ(guard.breaker_state(), BreakerState::kOpen);
}

TEST_F(CacheGuardTest, NamespaceRecordsVersionMovesAfterRecordWritesAndEpochBumps) {
  CacheGuard guard(faults_, Options());
  const uint64_t v0 = guard.namespace_records_version();
  ASSERT_TRUE(RunTask(guard.PutNamespaceRecord("ns", "k", "v")).ok());
  const uint64_t v1 = guard.namespace_records_version();
  EXPECT_GT(v1, v0);
  ASSERT_TRUE(RunTask(guard.GetNamespaceRecord("ns", "k")).ok());  // reads do not move it
  ASSERT_TRUE(RunTask(guard.Get("ns", DocId::U64(1))).ok());
  EXPECT_EQ(guard.namespace_records_version(), v1);
  ASSERT_TRUE(RunTask(guard.BumpEpoch("ns")).ok());
  EXPECT_GT(guard.namespace_records_version(), v1);
}

TEST_F(CacheGuardTest, RequestLaneThreadsHaveTheShortSliceWhileBackgroundWorkRunsAndTheBulkLaneNever) {
  // The hook runs inside every batch write, on the backend thread that does it.
  std::mutex mu;
  std::string thread_name;
  std::chrono::nanoseconds slice{-1};
  RocksDbCacheOptions o;
  o.path = dir_.Sub("sliced");
  o.test_hook_before_write = [&] {
    char name[16] = {};
    pthread_getname_np(pthread_self(), name, sizeof(name));
    std::lock_guard lk(mu);
    thread_name = name;
    slice = CurrentThreadSlice();
  };
  auto backend = RocksDbCache::Open(o);
  ASSERT_TRUE(backend.ok()) << backend.status().ToString();
  CacheGuardOptions go = Options();
  RequestSlices slices(300us);
  go.request_slices = &slices;
  CacheGuard guard(std::shared_ptr<DocumentCache>(std::move(backend).value()), go);
  const bool supported = PerThreadSlicesSupported();
  const std::chrono::nanoseconds default_slice = CurrentThreadSlice();

  // The request lane's thread enrolls: the default slice with nothing in the background, the
  // short one while background work runs.
  ASSERT_TRUE(RunTask(guard.PutIfNewer("ns", DocId::U64(1), CachedDoc{"{}", 1, false})).ok());
  {
    std::lock_guard lk(mu);
    EXPECT_EQ(thread_name, "layer-cache");
    if (supported) {
      EXPECT_EQ(slice, default_slice);
    }
  }
  EXPECT_GE(slices.enrolled(), 1u);
  {
    RequestSlices::BackgroundWork busy = slices.Background();
    ASSERT_TRUE(RunTask(guard.PutIfNewer("ns", DocId::U64(3), CachedDoc{"{}", 1, false})).ok());
    std::lock_guard lk(mu);
    if (supported) {
      EXPECT_EQ(slice, std::chrono::nanoseconds(300'000));
    }
  }
  {
    // The bulk lane is background work: never enrolled, so the default even while work runs.
    RequestSlices::BackgroundWork busy = slices.Background();
    ASSERT_TRUE(RunTask(guard.PutIfNewerBatch("ns", {{DocId::U64(2), CachedDoc{"{}", 1, false}}},
                                              CacheLane::kBulk))
                    .ok());
    std::lock_guard lk(mu);
    EXPECT_EQ(thread_name, "layer-cache-bul");  // the kernel keeps 15 bytes of a name
    if (supported) {
      EXPECT_EQ(slice, default_slice);
    }
  }
}

}  // namespace
}  // namespace layer::cache
