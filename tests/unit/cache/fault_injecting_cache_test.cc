#include "cache/fault_injecting_cache.h"

#include <gtest/gtest.h>

#include <thread>

#include "cache/rocksdb/rocksdb_cache.h"
#include "unit/cache/document_cache_contract.h"
#include "unit/cache/test_util.h"

namespace layer::cache {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

class FaultInjectingCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    RocksDbCacheOptions o;
    o.path = dir_.Sub("cache");
    auto r = RocksDbCache::Open(o);
    ASSERT_TRUE(r.ok());
    faults_ =
        std::make_shared<FaultInjectingCache>(std::shared_ptr<DocumentCache>(std::move(r).value()));
  }
  testing::TempDir dir_;
  std::shared_ptr<FaultInjectingCache> faults_;
};

TEST_F(FaultInjectingCacheTest, ForwardsWhenNoKnobIsSet) {
  ASSERT_TRUE(faults_->PutIfNewer("ns", DocId::U64(1), CachedDoc{"{}", 1, false}).ok());
  EXPECT_TRUE(faults_->Get("ns", DocId::U64(1))->has_value());
  EXPECT_EQ(faults_->Stats().backend, "rocksdb");
  EXPECT_EQ(faults_->calls(CacheOp::kGet), 1u);
}

TEST_F(FaultInjectingCacheTest, PerOpAndGlobalFailures) {
  faults_->FailOp(CacheOp::kGet, Status::IoError("get broke"));
  EXPECT_EQ(faults_->Get("ns", DocId::U64(1)).status().message(), "get broke");
  EXPECT_TRUE(faults_->Ping().ok());
  faults_->FailAll(Status::Corruption("all broke"));
  EXPECT_EQ(faults_->Ping().message(), "all broke");
  EXPECT_EQ(faults_->Get("ns", DocId::U64(1)).status().message(), "get broke");  // per-op wins
  EXPECT_EQ(faults_->Stats().backend, "fault-injecting");
  faults_->ClearFailures();
  EXPECT_TRUE(faults_->Ping().ok());
  EXPECT_TRUE(faults_->Get("ns", DocId::U64(1)).ok());
}

TEST_F(FaultInjectingCacheTest, DisconnectFailsEverythingUntilReconnect) {
  faults_->Disconnect();
  EXPECT_TRUE(faults_->disconnected());
  EXPECT_EQ(faults_->Ping().code(), StatusCode::kUnavailable);
  EXPECT_EQ(faults_->BumpEpoch("ns").code(), StatusCode::kUnavailable);
  EXPECT_EQ(faults_->ListNamespaceRecords("k").status().code(), StatusCode::kUnavailable);
  faults_->Reconnect();
  EXPECT_TRUE(faults_->Ping().ok());
}

TEST_F(FaultInjectingCacheTest, LatencyDelaysAndClearLatencyWakesSleepers) {
  faults_->SetOpLatency(CacheOp::kPing, 30ms);
  auto start = Clock::now();
  EXPECT_TRUE(faults_->Ping().ok());
  EXPECT_GE(Clock::now() - start, 30ms);
  start = Clock::now();
  EXPECT_TRUE(faults_->Get("ns", DocId::U64(1)).ok());  // other ops are not delayed
  EXPECT_LT(Clock::now() - start, 30ms);

  faults_->SetLatency(10s);
  start = Clock::now();
  std::thread sleeper([&] { EXPECT_TRUE(faults_->Get("ns", DocId::U64(1)).ok()); });
  std::this_thread::sleep_for(20ms);
  faults_->ClearLatency();
  sleeper.join();
  EXPECT_LT(Clock::now() - start, 5s);
}

TEST_F(FaultInjectingCacheTest, TryGetForwardsWhenNoKnobIsSet) {
  ASSERT_TRUE(faults_->PutIfNewer("ns", DocId::U64(1), CachedDoc{"{\"a\":1}", 1, false}).ok());
  TryGetResult r = faults_->TryGet("ns", DocId::U64(1));
  ASSERT_TRUE(r.has_value() && r->ok());
  ASSERT_TRUE(r->value().has_value());
  EXPECT_EQ(r->value()->attributes_json, "{\"a\":1}");
  EXPECT_EQ(faults_->calls(CacheOp::kTryGet), 1u);
  EXPECT_EQ(faults_->calls(CacheOp::kGet), 0u);
}

TEST_F(FaultInjectingCacheTest, TryGetDeclinesInsteadOfSleepingUnderGetLatency) {
  ASSERT_TRUE(faults_->PutIfNewer("ns", DocId::U64(1), CachedDoc{"{}", 1, false}).ok());
  // If TryGet slept, this test would hang: the latency is an hour.
  faults_->SetLatency(std::chrono::hours(1));
  EXPECT_FALSE(faults_->TryGet("ns", DocId::U64(1)).has_value());
  faults_->ClearLatency();
  faults_->SetOpLatency(CacheOp::kGet, std::chrono::hours(1));
  EXPECT_FALSE(faults_->TryGet("ns", DocId::U64(1)).has_value());
  faults_->ClearLatency();
  faults_->SetOpLatency(CacheOp::kPing, std::chrono::hours(1));  // another op: no effect
  EXPECT_TRUE(faults_->TryGet("ns", DocId::U64(1)).has_value());
  faults_->ClearLatency();
  EXPECT_EQ(faults_->calls(CacheOp::kTryGet), 3u);
  EXPECT_EQ(faults_->calls(CacheOp::kGet), 0u);
}

TEST_F(FaultInjectingCacheTest, TryGetReturnsInjectedFailuresAtOnce) {
  faults_->FailOp(CacheOp::kGet, Status::IoError("get broke"));
  TryGetResult r = faults_->TryGet("ns", DocId::U64(1));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status().message(), "get broke");
  faults_->ClearFailures();
  faults_->FailAll(Status::Corruption("all broke"));
  EXPECT_EQ(faults_->TryGet("ns", DocId::U64(1))->status().message(), "all broke");
  faults_->ClearFailures();
  faults_->Disconnect();
  EXPECT_EQ(faults_->TryGet("ns", DocId::U64(1))->status().code(), StatusCode::kUnavailable);
  faults_->Reconnect();
  EXPECT_TRUE(faults_->TryGet("ns", DocId::U64(1))->ok());
}

TEST_F(FaultInjectingCacheTest, TryGetWouldBlockKnobForcesTheSlowPath) {
  ASSERT_TRUE(faults_->PutIfNewer("ns", DocId::U64(1), CachedDoc{"{}", 1, false}).ok());
  faults_->SetTryGetWouldBlock(true);
  EXPECT_FALSE(faults_->TryGet("ns", DocId::U64(1)).has_value());
  EXPECT_TRUE(faults_->Get("ns", DocId::U64(1))->has_value());  // Get is unaffected
  faults_->SetTryGetWouldBlock(false);
  EXPECT_TRUE(faults_->TryGet("ns", DocId::U64(1)).has_value());
}

TEST(CacheOpTest, EveryOpIsFoundByItsMetricName) {
  for (size_t i = 0; i < kCacheOpCount; ++i) {
    const auto op = static_cast<CacheOp>(i);
    EXPECT_EQ(CacheOpFromName(CacheOpName(op)), op) << CacheOpName(op);
  }
  EXPECT_FALSE(CacheOpFromName("no_such_op").has_value());
  EXPECT_FALSE(CacheOpFromName("").has_value());
}

// With no knob set the decorator must be a DocumentCache like any other: the contract suite runs
// it in front of a RocksDbCache.
class FaultInjectingContractBackend final : public DocumentCacheBackend {
 public:
  static std::unique_ptr<DocumentCacheBackend> Open() {
    auto backend = std::make_unique<FaultInjectingContractBackend>();
    std::shared_ptr<DocumentCache> inner = testing::OpenTestRocksDb(backend->dir_);
    if (!inner) return nullptr;
    backend->faults_ = std::make_unique<FaultInjectingCache>(std::move(inner));
    return backend;
  }
  DocumentCache& cache() override { return *faults_; }

 private:
  testing::TempDir dir_;
  // After dir_: the inner cache (owned by the decorator alone) closes before the directory goes.
  std::unique_ptr<FaultInjectingCache> faults_;
};

INSTANTIATE_TEST_SUITE_P(FaultInjecting, DocumentCacheContractTest,
                         ::testing::Values(DocumentCacheContractParam{
                             "FaultInjectingOverRocksDb", &FaultInjectingContractBackend::Open}));

}  // namespace
}  // namespace layer::cache
