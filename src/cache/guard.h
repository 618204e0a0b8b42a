// CacheGuard: the request path's only door to a DocumentCache backend.
//
// Every call runs on the guard's own small thread pool (backends block on I/O) with a deadline
// (`op_timeout`, default 200 ms). When the deadline passes first the caller gets Timeout at once;
// the backend call keeps running in the background, owns copies of its inputs, and its result is
// discarded.
//
// Circuit breaker: one failure (an error or a timeout) opens it; while open every call fails at
// once with Unavailable("cache circuit open") without touching the backend. After `open_interval`
// (default 2 s) exactly one caller is let through as a half-open probe: its success closes the
// breaker, its failure re-opens it for another interval. InvalidArgument and NotFound mean the
// backend answered, so they never count as failures.
//
// Non-blocking reads: TryGet runs the backend's TryGet on the caller's thread, with no hop and no
// deadline (the backend answers from memory or declines), so an event-loop thread can serve a
// hot record without waking a pool thread. It only runs while the breaker is closed; it declines
// (nullopt) when the breaker is open or half-open, so the caller's Get is rejected or becomes
// the half-open probe as usual. An answer counts like any guarded call: metrics under op
// "try_get", a failure opens the breaker, a success marks the cache connected. A decline by the
// backend is counted in layer_cache_try_get_fallbacks_total.
//
// Connection state: connected() turns true on the first success and false when the breaker opens;
// generation() increases by one on every transition to connected (1 after the first success), so
// callers can notice a reconnect (e.g. to schedule one background warm per namespace).
//
// Metrics (layer::Metrics() unless a registry is given): layer_cache_op_duration_seconds{op,status}
// with status ok|error|timeout|rejected, layer_cache_op_errors_total{op,kind} with kind timeout,
// circuit_open or the lower-case status code (unavailable, io_error, ...), and
// layer_cache_breaker_state (0 closed, 1 open, 2 half-open).
//
// Lanes: PutIfNewerBatch may run on the bulk lane (CacheLane), with its own thread and deadline;
// breaker and metrics are shared by both lanes.
//
// Thread safety: all methods are thread-safe. Coroutine methods take their arguments by value (the
// background call owns copies) and complete on the caller's executor. Lifetime: the guard must
// outlive the coroutines that call it; its destructor waits for in-flight backend calls to
// finish. Nothing here throws.
//
// Compiler caveat (GCC 12, reproduced on this toolchain): a brace-initialised aggregate temporary
// inside a co_await expression is destroyed twice. Write
//   CachedDoc doc{...}; co_await guard.PutIfNewer(ns, id, std::move(doc));
// never `co_await guard.PutIfNewer(ns, id, CachedDoc{...})` (a double free). Prvalues returned by
// functions (DocId::U64(7)) are fine.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "cache/cache_op.h"
#include "cache/document_cache.h"
#include "cache/write_intents.h"
#include "common/clock.h"
#include "common/metrics.h"
#include "common/task.h"
#include "common/thread.h"

namespace boost::asio {
class thread_pool;
}  // namespace boost::asio

namespace layer::cache {

enum class BreakerState : uint8_t { kClosed = 0, kOpen = 1, kHalfOpen = 2 };
std::string_view BreakerStateName(BreakerState s);

// Which threads a call runs on. Request-path calls never queue behind bulk calls: bulk calls
// (a warm job's page writes) have their own thread and their own deadline, since a page of rows
// takes longer than one record.
enum class CacheLane : uint8_t { kRequest = 0, kBulk };

struct CacheGuardOptions {
  std::chrono::milliseconds op_timeout{200};
  std::chrono::milliseconds bulk_op_timeout{2000};  // deadline of kBulk calls
  std::chrono::milliseconds open_interval{2000};    // how long the breaker stays open
  int threads = 2;                                  // backend threads
  // Where the request-lane threads enroll for the short scheduler slice they have while
  // background work runs (common/thread.h); null: they keep the default. It must outlive the
  // guard. The bulk lane keeps the default: it is background work.
  RequestSlices* request_slices = nullptr;
  // Clock for the breaker's open interval (its steady time). Null = Clock::System(). Op
  // durations in the metrics are always real time.
  const Clock* clock = nullptr;
  MetricsRegistry* metrics = nullptr;  // null = layer::Metrics()
};

class CacheGuard {
 public:
  CacheGuard(std::shared_ptr<DocumentCache> backend, CacheGuardOptions options = {});
  ~CacheGuard();
  CacheGuard(const CacheGuard&) = delete;
  CacheGuard& operator=(const CacheGuard&) = delete;

  // One coroutine per DocumentCache method; same meaning, plus Timeout / Unavailable from the
  // guard itself.
  Task<Result<std::optional<CachedDoc>>> Get(std::string ns, DocId id);
  // Never blocks (see above). nullopt: use Get.
  TryGetResult TryGet(std::string_view ns, const DocId& id);
  Task<Result<std::vector<std::optional<CachedDoc>>>> MultiGet(std::string ns,
                                                                     std::vector<DocId> ids);
  Task<Result<bool>> PutIfNewer(std::string ns, DocId id, CachedDoc doc);
  Task<Result<std::vector<bool>>> PutIfNewerBatch(
      std::string ns, std::vector<std::pair<DocId, CachedDoc>> docs,
      CacheLane lane = CacheLane::kRequest);
  Task<Status> Tombstone(std::string ns, DocId id, uint64_t stamp, bool repairable = false);
  Task<Status> Invalidate(std::string ns, std::vector<DocId> ids);
  Task<Status> PutVector(std::string ns, DocId id, std::string f32le);
  Task<Result<std::optional<std::string>>> GetVector(std::string ns, DocId id);
  Task<Status> BumpEpoch(std::string ns);
  Task<Result<std::optional<std::string>>> GetNamespaceRecord(std::string ns,
                                                                    std::string key);
  Task<Status> PutNamespaceRecord(std::string ns, std::string key, std::string value);
  Task<Result<std::vector<std::pair<std::string, std::string>>>> ListNamespaceRecords(
      std::string key);
  // Runs on the bulk lane (a page of a scan takes longer than one record).
  Task<Result<ScanPage>> ScanNamespace(std::string ns, std::optional<DocId> after, size_t limit);
  Task<Status> Ping();
  Task<Result<CacheStats>> Stats();

  // The backend's WriteIntents (write_intents.h), when it has them: shares_writes() tells. The
  // calls answer Internal otherwise. BeginIntent and EndIntent are tried even while the breaker
  // is open (their outcome does not move it), with the bulk deadline: a write that cannot be
  // registered is one other replicas do not know of (docs/design.md §4.9), and a write can wait
  // for it.
  bool shares_writes() const { return intents_ != nullptr; }
  Task<Result<IntentStart>> BeginIntent(std::string ns, std::vector<DocId> ids,
                                        bool whole_namespace, uint64_t proposed_stamp,
                                        std::chrono::milliseconds deadline);
  Task<Status> EndIntent(std::string ns, std::vector<DocId> ids, bool whole_namespace,
                         uint64_t generation);
  Task<Result<std::vector<IntentLookup>>> Lookup(std::string ns, std::vector<DocId> ids);
  Task<Result<uint64_t>> Generation(std::string ns);

  // Blocking variants for callers off the event loop (/health, start-up): same pool, deadline and
  // breaker; block the calling thread for at most op_timeout.
  Status PingSync();
  Result<CacheStats> StatsSync();

  bool connected() const;
  uint64_t generation() const;
  // When the cache last became connected (the start of generation()); the epoch when never.
  std::chrono::steady_clock::time_point connected_at() const;
  // Increases after every PutNamespaceRecord or BumpEpoch call has run on the backend (whatever
  // its outcome), so a caller that keeps namespace records in memory can tell when to re-read.
  uint64_t namespace_records_version() const {
    return records_version_.load(std::memory_order_acquire);
  }
  Status last_error() const;  // OK until the first failure
  BreakerState breaker_state() const;
  DocumentCache& backend() { return *backend_; }

 private:
  struct Ticket {
    bool admitted = false;
    bool probe = false;
  };
  // R is Status or Result<X>; fn() -> R runs on the pool.
  template <typename R, typename Fn>
  // `always`: the call is made even while the breaker rejects calls, on the request pool with the
  // bulk deadline, and its outcome leaves the breaker as it is.
  Task<R> Call(CacheOp op, Fn fn, CacheLane lane = CacheLane::kRequest, bool always = false);
  template <typename R, typename Fn>
  R CallSync(CacheOp op, Fn fn);

  // Run first by every request-lane task: names the pool thread and sets its slice, once.
  void PrepareRequestThread() const;
  Ticket Admit();
  // Records the outcome of an admitted call: breaker transitions and metrics.
  void Finish(CacheOp op, const Ticket& ticket, const Status& status,
              std::chrono::steady_clock::duration elapsed);
  void RecordRejected(CacheOp op);
  std::chrono::steady_clock::time_point Now() const;
  void SetStateLocked(BreakerState s);

  const std::shared_ptr<DocumentCache> backend_;
  WriteIntents* const intents_;  // backend_->write_intents(), owned by it
  const CacheGuardOptions options_;
  MetricsRegistry& metrics_;
  std::unique_ptr<boost::asio::thread_pool> pool_;
  std::unique_ptr<boost::asio::thread_pool> bulk_pool_;  // one thread, CacheLane::kBulk

  // Metric series resolved once: [op][ok, error, timeout, rejected] and [op][timeout, open].
  std::array<std::array<Histogram*, 4>, kCacheOpCount> durations_{};
  std::array<std::array<Counter*, 2>, kCacheOpCount> common_errors_{};
  Gauge* state_gauge_ = nullptr;
  Counter* try_get_fallbacks_ = nullptr;
  std::atomic<uint64_t> records_version_{0};

  mutable std::mutex mu_;  // guards the breaker and connection state below
  BreakerState state_ = BreakerState::kClosed;
  std::chrono::steady_clock::time_point opened_at_{};
  std::chrono::steady_clock::time_point probe_started_{};
  bool connected_ = false;
  uint64_t generation_ = 0;
  std::chrono::steady_clock::time_point connected_at_{};
  Status last_error_;
};

}  // namespace layer::cache
