// The fixture of the CacheCoherence tests: a CacheCoherence over the embedded RocksDB cache,
// behind a FaultInjectingCache and a CacheGuard that share one ManualClock, and a scripted
// upstream RowReader (FakeUpstream) that records its reads, can fail, and can hold reads until
// released. Plus builders of WriteOutcomes and bounded waits.
#pragma once

#include <gtest/gtest.h>

#include <boost/asio/as_tuple.hpp>
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
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "cache/fault_injecting_cache.h"
#include "cache/rocksdb/rocksdb_cache.h"
#include "coherence/coherence.h"
#include "common/clock.h"
#include "common/metrics.h"
#include "unit/cache/test_util.h"

namespace layer::coherence::testing {

using cache::CachedDoc;
using cache::CacheOp;
using cache::testing::RunTask;
using tpuf::DocId;

inline constexpr char kNs[] = "docs";
inline constexpr char kOtherNs[] = "other";
// Only an upper bound that proves nothing hangs; every wait ends as soon as its event happens.
inline constexpr std::chrono::seconds kBound{10};

// Polls `done` on this thread (bounded) until it holds.
inline bool WaitFor(const std::function<bool()>& done) {
  const auto deadline = std::chrono::steady_clock::now() + kBound;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

// Polls `done` from a coroutine (bounded), letting the io_context run other work meanwhile.
inline Task<bool> WaitOnLoop(std::function<bool()> done) {
  boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor);
  const auto deadline = std::chrono::steady_clock::now() + kBound;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) co_return false;
    timer.expires_after(std::chrono::milliseconds(1));
    co_await timer.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
  }
  co_return true;
}

inline std::vector<std::string> Texts(const std::vector<DocId>& ids) {
  std::vector<std::string> out;
  for (const auto& id : ids) out.push_back(id.ToText());
  return out;
}

inline boost::json::value Json(std::string_view text) { return boost::json::parse(text); }

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
    auto ex = co_await boost::asio::this_coro::executor;
    auto timer = std::make_shared<boost::asio::steady_timer>(ex);
    timer->expires_at(boost::asio::steady_timer::time_point::max());
    bool wait = false;
    {
      std::lock_guard lock(mu_);
      calls_.push_back(ids);
      if (held_) {
        wait = true;
        waiters_.push_back([ex, timer] { boost::asio::post(ex, [timer] { timer->cancel(); }); });
      }
    }
    if (wait) {
      ++blocked_;
      co_await timer->async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
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

inline RowEffect Row(const DocId& id, std::string attributes_json) {
  RowEffect r;
  r.id = id;
  r.attributes_json = std::move(attributes_json);
  return r;
}

inline WriteOutcome Rows(uint64_t stamp, std::vector<RowEffect> upserts,
                         std::vector<RowEffect> patches, std::vector<DocId> deletes) {
  WriteOutcome w;
  w.kind = WriteOutcome::Kind::kRows;
  w.stamp = stamp;
  w.upserts = std::move(upserts);
  w.patches = std::move(patches);
  w.deletes = std::move(deletes);
  return w;
}

inline WriteOutcome Upserts(uint64_t stamp, std::vector<RowEffect> rows) {
  return Rows(stamp, std::move(rows), {}, {});
}
inline WriteOutcome Patches(uint64_t stamp, std::vector<RowEffect> rows) {
  return Rows(stamp, {}, std::move(rows), {});
}
inline WriteOutcome Deletes(uint64_t stamp, std::vector<DocId> ids) {
  return Rows(stamp, {}, {}, std::move(ids));
}

inline WriteOutcome AffectedIds(uint64_t stamp, std::vector<DocId> ids, bool has_untyped_ids) {
  WriteOutcome w;
  w.kind = WriteOutcome::Kind::kInvalidateIds;
  w.stamp = stamp;
  w.deletes = std::move(ids);
  w.has_untyped_ids = has_untyped_ids;
  return w;
}

inline WriteOutcome UnknownRows(uint64_t stamp) {
  WriteOutcome w;
  w.kind = WriteOutcome::Kind::kInvalidateNamespace;
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
    g.op_timeout = std::chrono::seconds(10);
    g.bulk_op_timeout = std::chrono::seconds(10);
    g.open_interval = std::chrono::seconds(1);  // on the manual clock
    g.clock = &clock_;
    CoherenceOptions options;
    options.backend_name = "rocksdb";
    options.repair = true;
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

  // Clears the faults and lets the breaker close again: the open interval passes on the manual
  // clock and a ping succeeds (as the half-open probe when the breaker was open).
  void Heal() {
    faults_->ClearFailures();
    if (faults_->disconnected()) faults_->Reconnect();
    clock_.Advance(std::chrono::seconds(60));
    ASSERT_TRUE(guard().PingSync().ok());
    ASSERT_EQ(guard().breaker_state(), cache::BreakerState::kClosed);
  }

  // Opens the breaker with a disconnect, then reconnects: the guard's generation moves on.
  void DisconnectAndReconnect() {
    faults_->Disconnect();
    EXPECT_FALSE(guard().PingSync().ok());
    EXPECT_FALSE(guard().connected());
    faults_->Reconnect();
    clock_.Advance(std::chrono::seconds(60));
    EXPECT_TRUE(guard().PingSync().ok());
    EXPECT_TRUE(guard().connected());
  }

  cache::testing::TempDir dir_;
  // The wall clock starts at 0 ms, below the tests' write stamps (100, 200, ...): stamps the core
  // gives itself (NewStampAfter, for repairable tombstones) then follow them, as in production.
  ManualClock clock_{0};
  MetricsRegistry guard_metrics_;
  MetricsRegistry metrics_;
  std::shared_ptr<cache::DocumentCache> inner_;
  std::shared_ptr<cache::FaultInjectingCache> faults_;
  FakeUpstream upstream_;
  RowReader reader_ = upstream_.Reader();
  boost::asio::io_context io_;
  std::unique_ptr<CacheCoherence> core_;
};

}  // namespace layer::coherence::testing
