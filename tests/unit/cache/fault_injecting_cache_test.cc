#include "cache/fault_injecting_cache.h"

#include <gtest/gtest.h>

#include <thread>

#include "cache/rocksdb/rocksdb_cache.h"
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

}  // namespace
}  // namespace layer::cache
