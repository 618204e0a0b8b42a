#include "gateway/health.h"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>

#include <atomic>
#include <optional>
#include <string>

#include "cache/fault_injecting_cache.h"
#include "cache/rocksdb/rocksdb_cache.h"
#include "unit/cache/test_util.h"

namespace layer::gateway {
namespace {

using cache::testing::RunTask;
using namespace std::chrono_literals;
namespace json = boost::json;

class CacheStateListingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cache::RocksDbCacheOptions o;
    o.path = dir_.Sub("cache");
    auto r = cache::RocksDbCache::Open(o);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    inner_ = std::shared_ptr<cache::DocumentCache>(std::move(r).value());
    faults_ = std::make_shared<cache::FaultInjectingCache>(inner_);
    cache::CacheGuardOptions g;
    g.metrics = &metrics_;
    cache_ = std::make_unique<coherence::CacheCoherence>(
        std::make_unique<cache::CacheGuard>(faults_, g), coherence::CoherenceOptions{});
    cache_->SetWarmHooks([this](std::string_view ns) { return ns == warming_ns_; }, nullptr);
    ASSERT_TRUE(cache_->guard()->PingSync().ok());
  }
  void TearDown() override { faults_->ClearLatency(); }

  json::array Get() { return RunTask(listing_.Get(*cache_)); }
  uint64_t ListCalls() const { return faults_->calls(cache::CacheOp::kListNamespaceRecords); }

  cache::testing::TempDir dir_;
  MetricsRegistry metrics_;
  std::shared_ptr<cache::DocumentCache> inner_;
  std::shared_ptr<cache::FaultInjectingCache> faults_;
  std::unique_ptr<coherence::CacheCoherence> cache_;
  std::string warming_ns_;
  const CacheStateListing::Clock::time_point t0_ = CacheStateListing::Clock::now();
  std::atomic<int64_t> ms_{0};
  CacheStateListing listing_{100ms, [this] { return t0_ + std::chrono::milliseconds(ms_.load()); }};
};

TEST_F(CacheStateListingTest, KeepsTheListingUntilAnInputChangesOrItAges) {
  EXPECT_EQ(Get(), json::array());
  EXPECT_EQ(listing_.computations(), 1u);
  const uint64_t calls = ListCalls();
  // Nothing changed and it is fresh: no cache read at all.
  for (int i = 0; i < 5; ++i) EXPECT_EQ(Get(), json::array());
  EXPECT_EQ(listing_.computations(), 1u);
  EXPECT_EQ(ListCalls(), calls);

  // A record written through the guard (a warm completing) shows up on the next probe.
  ASSERT_TRUE(
      RunTask(cache_->guard()->PutNamespaceRecord("ns1", std::string(coherence::kWarmedThroughRecord), "123"))
          .ok());
  json::array want = {json::object{{"namespace", "ns1"},
                                   {"state", "warm"},
                                   {"warmed_through", uint64_t{123}},
                                   {"warm_inflight", false}}};
  EXPECT_EQ(Get(), want);
  EXPECT_EQ(listing_.computations(), 2u);

  // A record written behind the guard's back (another replica sharing the cache) shows up once
  // the listing is max_age old, not before.
  ASSERT_TRUE(inner_->PutNamespaceRecord("ns2", coherence::kWarmedThroughRecord, "7").ok());
  ms_ = 99;
  EXPECT_EQ(Get().size(), 1u);
  ms_ = 100;
  EXPECT_EQ(Get().size(), 2u);
  EXPECT_EQ(listing_.computations(), 3u);

  // A warm starting here shows up at once.
  warming_ns_ = "ns2";
  cache_->NoteWarmingChanged();
  json::array states = Get();
  ASSERT_EQ(states.size(), 2u);
  EXPECT_EQ(states[1].at("state").as_string(), "warming");
  EXPECT_TRUE(states[1].at("warm_inflight").as_bool());
  EXPECT_EQ(listing_.computations(), 4u);

  // An epoch bump (namespace delete) drops the namespace's records.
  ASSERT_TRUE(RunTask(cache_->guard()->BumpEpoch("ns1")).ok());
  EXPECT_EQ(Get().size(), 1u);

  // The cache going away shows up at once: nothing is listed from it, nothing is "warm".
  faults_->Disconnect();
  EXPECT_FALSE(cache_->guard()->PingSync().ok());
  EXPECT_EQ(Get(), json::array());
  const uint64_t computed = listing_.computations();
  EXPECT_EQ(Get(), json::array());
  EXPECT_EQ(listing_.computations(), computed);
}

TEST_F(CacheStateListingTest, OneRefreshForAgeAtATimeOthersGetThePreviousListing) {
  ASSERT_TRUE(inner_->PutNamespaceRecord("ns1", coherence::kWarmedThroughRecord, "1").ok());
  ASSERT_EQ(Get().size(), 1u);
  ASSERT_TRUE(inner_->PutNamespaceRecord("ns2", coherence::kWarmedThroughRecord, "2").ok());
  ms_ = 1000;
  boost::asio::io_context io;
  std::optional<json::array> first, second;
  // The first probe starts the refresh and waits for the cache; the second runs meanwhile.
  boost::asio::co_spawn(
      io, [&]() -> Task<void> { first.emplace(co_await listing_.Get(*cache_)); },
      boost::asio::detached);
  boost::asio::co_spawn(
      io, [&]() -> Task<void> { second.emplace(co_await listing_.Get(*cache_)); },
      boost::asio::detached);
  io.run();
  ASSERT_TRUE(first && second);
  EXPECT_EQ(first->size(), 2u);
  EXPECT_EQ(second->size(), 1u);  // the previous listing, not a second refresh
  EXPECT_EQ(listing_.computations(), 2u);
  EXPECT_EQ(Get().size(), 2u);  // and the refreshed one from then on
  EXPECT_EQ(listing_.computations(), 2u);
}

}  // namespace
}  // namespace layer::gateway
