// ConsistencyWatcher (docs/design.md §6.1, §9.7): it polls each registered partition's namespace
// upstream with that tenant's credential (none remembered: not polled), moves the stable
// watermark to poll start - margin when the index is up to date, keeps it while the index
// updates, and forgets a namespace the upstream no longer has.
#include "watermark/consistency_watcher.h"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace layer::watermark {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

// Answers metadata polls from a table by namespace; records every request.
class ScriptedMetadata final : public http::Upstream {
 public:
  void Set(const std::string& ns, unsigned status, std::string body) {
    std::lock_guard lock(mu_);
    answers_[ns] = {status, std::move(body)};
  }
  std::vector<std::pair<std::string, std::string>> requests() const {
    std::lock_guard lock(mu_);
    return requests_;
  }
  Task<Result<http::Response>> Send(http::Request req, bool) override {
    std::string target(req.target());
    std::pair<unsigned, std::string> answer{404, "{}"};
    {
      std::lock_guard lock(mu_);
      requests_.emplace_back(target, std::string(req[http::Field::authorization]));
      const std::string prefix = "/v2/namespaces/";
      std::string ns = target.substr(prefix.size(), target.size() - prefix.size() - 9);
      if (auto it = answers_.find(ns); it != answers_.end()) answer = it->second;
    }
    http::Response res{static_cast<http::Code>(answer.first), 11};
    res.body() = answer.second;
    co_return res;
  }
  const std::string& base() const override { return base_; }

 private:
  const std::string base_ = "http://scripted";
  mutable std::mutex mu_;  // guards answers_ and requests_
  std::map<std::string, std::pair<unsigned, std::string>> answers_;
  std::vector<std::pair<std::string, std::string>> requests_;
};

class WatcherTest : public ::testing::Test {
 protected:
  WatcherTest() {
    options_.poll_interval = 1ms;
    options_.stable_poll_interval = 1ms;
    options_.safety_margin_ms = 500;
    options_.clock = &clock_;
    options_.credentials = &credentials_;
  }
  // Runs the watcher's loop until `done` holds (bounded: 10 s proves nothing hangs).
  bool RunUntil(ConsistencyWatcher& w, const std::function<bool()>& done) {
    asio::io_context io;
    asio::co_spawn(io, w.Run(), asio::detached);
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!done()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      io.run_for(2ms);
    }
    return true;
  }
  size_t Requests(const std::string& target) const {
    size_t n = 0;
    for (const auto& [t, a] : upstream_.requests()) n += t == target;
    return n;
  }

  ManualClock clock_;
  http::Credentials credentials_;
  WatcherOptions options_;
  ScriptedMetadata upstream_;
};

TEST_F(WatcherTest, PollsEachPartitionWithItsTenantsKey) {
  ConsistencyWatcher w(upstream_, options_);
  upstream_.Set("products", 200, R"({"index":{"status":"up-to-date"}})");
  credentials_.Remember("aaaa", "Bearer key-a");
  w.Register("products@aaaa", true);
  w.Register("products@bbbb", true);  // no key for this tenant
  ASSERT_TRUE(RunUntil(w, [&] { return w.IsStable("products@aaaa"); }));
  EXPECT_EQ(w.StableAsOf("products@aaaa"), static_cast<uint64_t>(clock_.WallMs() - 500));
  for (const auto& [target, authorization] : upstream_.requests()) {
    EXPECT_EQ(target, "/v2/namespaces/products/metadata");
    EXPECT_EQ(authorization, "Bearer key-a");
  }
  EXPECT_FALSE(w.StableAsOf("products@bbbb"));
  // Once the other tenant has a key, its partition is polled with it.
  credentials_.Remember("bbbb", "Bearer key-b");
  ASSERT_TRUE(RunUntil(w, [&] { return w.IsStable("products@bbbb"); }));
  bool saw_b = false;
  for (const auto& [target, authorization] : upstream_.requests()) {
    saw_b |= authorization == "Bearer key-b";
  }
  EXPECT_TRUE(saw_b);
}

TEST_F(WatcherTest, TheWatermarkHoldsWhileTheIndexUpdatesAndAGoneNamespaceIsForgotten) {
  ConsistencyWatcher w(upstream_, options_);
  upstream_.Set("docs", 200, R"({"index":{"status":"up-to-date"}})");
  w.Register("docs", true);
  ASSERT_TRUE(RunUntil(w, [&] { return w.IsStable("docs"); }));
  const auto first = w.StableAsOf("docs");
  ASSERT_TRUE(first);
  upstream_.Set("docs", 200, R"({"index":{"status":"updating","unindexed_bytes":10}})");
  clock_.Advance(10s);
  const size_t before = Requests("/v2/namespaces/docs/metadata");
  ASSERT_TRUE(RunUntil(w, [&] { return !w.IsStable("docs"); }));
  EXPECT_GT(Requests("/v2/namespaces/docs/metadata"), before);
  EXPECT_EQ(w.StableAsOf("docs"), first);  // the last stable watermark still holds
  upstream_.Set("docs", 404, R"({"error":"namespace not found"})");
  clock_.Advance(10s);  // the next poll is due
  ASSERT_TRUE(RunUntil(w, [&] { return w.Namespaces().empty(); }));
  EXPECT_FALSE(w.StableAsOf("docs"));
}

TEST_F(WatcherTest, AFixedUpstreamKeyPollsEveryPartition) {
  http::Credentials fixed("Bearer upstream");
  options_.credentials = &fixed;
  ConsistencyWatcher w(upstream_, options_);
  upstream_.Set("docs", 200, R"({"index":{"status":"up-to-date"}})");
  w.Register("docs", true);
  ASSERT_TRUE(RunUntil(w, [&] { return w.IsStable("docs"); }));
  for (const auto& [target, authorization] : upstream_.requests()) {
    EXPECT_EQ(authorization, "Bearer upstream");
  }
}

TEST(IndexStatusTest, ReadsTheMetadataBody) {
  EXPECT_EQ(IndexStatusOf(R"({"index":{"status":"up-to-date"}})"), IndexStatus::kStable);
  EXPECT_EQ(IndexStatusOf(R"({"index":{"status":"updating"}})"), IndexStatus::kUpdating);
  EXPECT_EQ(IndexStatusOf(R"({"x":{"unindexed_bytes":5}})"), IndexStatus::kUpdating);
  EXPECT_EQ(IndexStatusOf(R"({"x":{"unindexed_bytes":0}})"), IndexStatus::kUnknown);
  EXPECT_EQ(IndexStatusOf("not json"), IndexStatus::kUnknown);
}

}  // namespace
}  // namespace layer::watermark
