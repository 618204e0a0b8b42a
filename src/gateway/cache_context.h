// CacheContext: the state the cache-aware handlers (fetch, write, namespace delete, health)
// share: the guarded cache, what the gateway knows of each namespace's id type, invalidations
// that could not be applied yet, and the coalescing of concurrent fetch misses.
//
// Correctness rule: a cache record that may be stale is never served. When a write succeeded
// upstream but its cache effect failed (the cache was down or slow), the affected ids are held in
// PendingInvalidations: fetches treat them as misses (and do not backfill them) until a background
// retry has written the invalidation. The same holds for a namespace whose epoch bump failed.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <shared_mutex>
#include <string>
#include <vector>

#include "cache/fault_injecting_cache.h"
#include "cache/guard.h"
#include "common/metrics.h"
#include "gateway/single_flight.h"
#include "watermark/consistency_watcher.h"

namespace layer::gateway {

// Per-namespace id type (u64, uuid or string), learned from writes and upstream schema reads.
// Thread-safe.
class NamespaceIdTypes {
 public:
  std::optional<cache::IdType> Known(std::string_view ns) const;
  void Learn(const std::string& ns, cache::IdType type);
  void Forget(const std::string& ns);

 private:
  mutable std::shared_mutex mu_;  // guards types_
  std::map<std::string, cache::IdType, std::less<>> types_;
};

// Invalidations the cache has not acknowledged yet. Thread-safe; Blocks() is one atomic load
// when nothing is pending.
class PendingInvalidations {
 public:
  void Add(const std::string& ns, const cache::DocId& id, uint64_t stamp);
  void AddNamespace(const std::string& ns);  // an epoch bump that failed
  bool Blocks(std::string_view ns, const cache::DocId& id) const;
  bool BlocksNamespace(std::string_view ns) const;
  size_t size() const { return count_.load(std::memory_order_relaxed); }
  // Retries everything pending once; keeps what still fails.
  http::Task<void> Retry(cache::CacheGuard& guard);

 private:
  struct Key {
    std::string ns;
    cache::DocId id;
    bool operator<(const Key& o) const {
      if (ns != o.ns) return ns < o.ns;
      if (id.type != o.id.type) return id.type < o.id.type;
      return id.bytes < o.id.bytes;
    }
  };
  void UpdateCount();

  mutable std::mutex mu_;  // guards ids_ and namespaces_
  std::map<Key, uint64_t> ids_;  // -> stamp of the tombstone to write
  std::set<std::string, std::less<>> namespaces_;
  std::atomic<size_t> count_{0};
};

// A full upstream row, ready to cache and to answer a fetch.
struct FetchedRow {
  std::string id_json;          // the id as Turbopuffer returned it
  std::string attributes_json;  // every attribute but id, vector(s) and $dist
  uint64_t stamp = 0;           // its _hevlayer_upserted_at, 0 when unstamped
};

enum class FetchConsistency { kStrong, kEventual };

struct CacheMetrics {
  Counter& Lookups(std::string_view result);  // hit | miss | partial | error
  Counter& backfills_ok = Metrics().GetCounter("layer_cache_backfills_total",
                                               "Rows written into the cache by fetch misses",
                                               {{"status", "ok"}});
  Counter& backfills_error = Metrics().GetCounter(
      "layer_cache_backfills_total", "Rows written into the cache by fetch misses",
      {{"status", "error"}});
  Counter& mirrors_skipped = Metrics().GetCounter(
      "layer_cache_mirrors_skipped_total",
      "Writes applied upstream whose cache mirroring failed (ids held as pending invalidations)");
  Gauge& pending = Metrics().GetGauge("layer_cache_pending_invalidations",
                                      "Invalidations waiting for the cache to come back");
};

struct CacheContext {
  std::unique_ptr<cache::CacheGuard> guard;  // null when the gateway runs without a cache
  // Set only under --test-faults: the decorator between the guard and the backend.
  std::shared_ptr<cache::FaultInjectingCache> faults;
  std::string backend_name;
  FetchConsistency fetch_consistency = FetchConsistency::kStrong;
  NamespaceIdTypes id_types;
  PendingInvalidations pending;
  SingleFlight<std::optional<FetchedRow>> fetch_flights;
  CacheMetrics metrics;
  // The namespaces' stable watermarks (cache_warmed_through moves to them); null in tests.
  watermark::ConsistencyWatcher* watcher = nullptr;
  // Whether a warm of the namespace is executing in this process.
  std::function<bool(std::string_view)> warming;
  // Increased whenever what `warming` answers may have changed (a warm started or ended here).
  std::atomic<uint64_t> warming_version{0};
  // Starts a background warm of the namespace (reference §7.6); null disables reactive warms.
  std::function<void(const std::string&)> start_warm;

  // Reactive warm: after the cache reconnects (a new connection generation), the first clean miss
  // of a namespace starts one background warm. Called on every clean fetch miss; cheap otherwise.
  void OnCleanMiss(const std::string& ns);

 private:
  std::mutex reactive_mu_;  // guards reactive_generation_
  std::map<std::string, uint64_t, std::less<>> reactive_generation_;
};

inline constexpr std::string_view kWarmedThroughRecord = "cache_warmed_through";

// The namespace's cache state (reference §5.8): "warming" while a warm runs here, else "cold"
// when the cache is unavailable, else "warm" once a warm completed (cache_warmed_through is
// recorded in the cache), else "cold". `warmed_through` receives the record when there is one.
http::Task<std::string_view> CacheStateOf(CacheContext& cache, const std::string& ns,
                                          std::optional<uint64_t>* warmed_through);

}  // namespace layer::gateway
