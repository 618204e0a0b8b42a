// SnapshotWriter: namespace snapshots in the object store (docs/design.md §7.5, §7.6).
//
// Policies: every partition's snapshot policy (snapshots/policy.h) is read from the object store
// at start (LoadPolicies) and again by every sweep, and set here when a PUT stores one.
//
// The automatic writer: when the consistency watcher advances a partition's stable watermark
// (OnWatermark), a snapshot is written unless a guard says no -- the policy has no facet fields,
// there is no watermark, the last snapshot of the partition is younger than the policy's
// interval, one is being written already (single flight), or the tenant has no credential. It
// pages through the upstream once by id, projecting only the facet fields (reading a page while
// the one before is counted: jobs/facet_page.h), builds the histogram
// (snapshots/facets.h), and compares its sha with the newest stored key's: the same distribution
// is not stored again (deduped); another is put if absent at
// "[tenants/{tag}/]snapshots/{ns}/{watermark_ms:013}-{sha7}.json". Either way the newest stored
// body is mirrored into the cache as the partition's latest snapshot. Failures are logged and
// counted, and the next watermark tries again.
//
// Retention: every sweep deletes, per partition whose policy has a retention, the snapshots whose
// watermark is older than now - retention, always keeping the newest one.
//
// Threads: upstream pages are read on `pool` (the gateway's background pool); object-store calls,
// which block, run on the writer's own thread. Metrics: layer_snapshots_written_total,
// layer_snapshots_deduped_total, layer_snapshot_failures_total,
// layer_snapshot_fields_skipped_total{field}, layer_snapshots_pruned_total.
//
// Lifetime: the pool must stop (and join) before the writer is destroyed. Thread-safe.
#pragma once

#include <boost/asio/thread_pool.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "coherence/coherence.h"
#include "common/clock.h"
#include "common/metrics.h"
#include "common/task.h"
#include "common/thread.h"
#include "http/credentials.h"
#include "http/io_pool.h"
#include "http/upstream.h"
#include "snapshots/facets.h"
#include "snapshots/object_store.h"
#include "snapshots/policy.h"
#include "snapshots/snapshot.h"

namespace layer::jobs {

struct SnapshotWriterOptions {
  const http::Credentials* credentials = nullptr;  // null: upstream reads send none
  // Request threads have the short slice while a snapshot is written (common/thread.h); null:
  // no effect.
  RequestSlices* request_slices = nullptr;
  const Clock* clock = nullptr;                    // null: Clock::System()
  MetricsRegistry* metrics = nullptr;              // null: layer::Metrics()
  size_t page_size = 1000;                         // rows per upstream page
  int max_attempts = 5;                            // per page, for transient upstream errors
  std::chrono::milliseconds retry_base{200};
  std::chrono::milliseconds sweep_interval{60000};  // retention and policy reloads
};

struct SnapshotWrite {
  bool deduped = false;  // the newest stored snapshot has the same distribution
  std::string key;       // the stored key (the newest one when deduped)
  snapshots::SnapshotBody body;  // as built (its watermark is this write's)
};

// One page of a projected read of a namespace upstream (SnapshotWriter::ReadFacetPage).
struct FacetPage {
  uint64_t rows = 0;                       // rows the page held (all counted into the aggregator)
  std::optional<std::string> next_cursor;  // JSON text of its last id; nullopt: the read is over
};

class SnapshotWriter {
 public:
  SnapshotWriter(http::IoPool& pool, http::Upstream& upstream, snapshots::ObjectStore& objects,
                 coherence::CacheCoherence& cache, SnapshotWriterOptions options);
  ~SnapshotWriter();

  // Reads every stored policy. Blocking (call it at start, or on the object-store thread).
  Status LoadPolicies();
  std::optional<snapshots::SnapshotPolicy> Policy(std::string_view partition) const;
  // Applies a policy stored just now.
  void SetPolicy(const std::string& partition, snapshots::SnapshotPolicy policy);

  // The watcher's hook: the partition's stable watermark advanced. Returns at once.
  void OnWatermark(const std::string& partition, uint64_t watermark_ms);
  // Builds and stores a snapshot of `fields` now (no guard but the credential). Runs on `pool`.
  Task<Result<SnapshotWrite>> Write(std::string partition, uint64_t watermark_ms,
                                    std::vector<std::string> fields);

  // Reads the page of `partition` after `cursor` (JSON text of an id; nullopt: the first page)
  // upstream, ranked by id, projecting only `fields`, with `filters_json` (a Turbopuffer filter,
  // JSON text) ANDed with the cursor when given, and counts its rows into `agg`. Transient
  // upstream errors are retried with backoff; an upstream 404 is an empty last page. Runs on
  // `pool`; `agg` must outlive the call.
  Task<Result<FacetPage>> ReadFacetPage(std::string partition, std::vector<std::string> fields,
                                        std::optional<std::string> filters_json,
                                        size_t page_size, std::optional<std::string> cursor,
                                        snapshots::FacetAggregator& agg);

  // Deletes the snapshots every retention says are too old (never a partition's newest).
  // Blocking; returns how many were deleted.
  Result<uint64_t> PruneRetention();
  // Deletes every snapshot of the partition, on-demand ones included (its namespace was deleted).
  // Blocking.
  Status Purge(std::string_view partition);
  // The sweep loop: policy reloads and retention, every sweep_interval, until the pool stops.
  Task<void> SweepLoop();

  // Runs `fn` (object-store calls) on the writer's thread and resumes the caller on its own.
  template <typename Fn>
  Task<std::invoke_result_t<Fn&>> Blocking(Fn fn) {
    co_return co_await OffLoop(*store_thread_, std::move(fn));
  }
  snapshots::ObjectStore& objects() { return objects_; }
  coherence::CacheCoherence& cache() { return cache_; }

 private:
  struct Metrics;
  struct PageFetch;
  // Reads into `fetch` and wakes whoever waits for it.
  Task<void> FetchInto(std::shared_ptr<PageFetch> fetch, std::string partition,
                       std::string target, std::string body);
  // Reads the rows of `partition` upstream, page by page (the next read while a page is counted),
  // into `agg`.
  Task<Status> ReadRows(const std::string& partition, const std::vector<std::string>& fields,
                        snapshots::FacetAggregator& agg);
  Task<Result<http::Response>> Send(const std::string& partition, std::string target,
                                    std::string body);
  // Stores `bytes` (or finds the newest key the same) and mirrors the newest into the cache.
  Result<SnapshotWrite> Store(const std::string& partition, snapshots::SnapshotBody body,
                              std::string bytes, std::string* mirror_bytes);
  Task<void> RunAutomatic(std::string partition, uint64_t watermark_ms,
                          std::vector<std::string> fields);

  http::IoPool& pool_;
  http::Upstream& upstream_;
  snapshots::ObjectStore& objects_;
  coherence::CacheCoherence& cache_;
  const SnapshotWriterOptions options_;
  std::unique_ptr<Metrics> metrics_;
  std::unique_ptr<boost::asio::thread_pool> store_thread_;

  mutable std::mutex mu_;  // guards policies_, last_written_ms_ and writing_
  std::map<std::string, snapshots::SnapshotPolicy, std::less<>> policies_;
  std::map<std::string, int64_t, std::less<>> last_written_ms_;  // wall ms of the last snapshot
  std::set<std::string, std::less<>> writing_;
};

}  // namespace layer::jobs
