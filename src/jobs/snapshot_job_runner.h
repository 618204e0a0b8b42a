// SnapshotJobRunner: on-demand snapshot jobs (docs/design.md §7.8).
//
// A job builds the facet histogram of one attribute (`field`) of a namespace, optionally of the
// documents a Turbopuffer filter selects, from a source:
// - stored: the latest stored full snapshot (the automatic writer's), when it holds the field.
//   Nothing is written: the job reports that snapshot's sha, watermark and key, and
//   documents_scanned = the sum of the field's counts. Filters are not allowed (the route answers
//   422); a latest snapshot without the field, or none at all, fails the job.
// - origin: one paged read of the upstream by id (`rank_by id asc`, `page_size` rows a page,
//   `include_attributes` = [field], strong consistency; the filter ANDed with the id cursor),
//   counted into a single-field body (snapshots/facets.h) at the stable watermark observed when
//   the scan starts. A job fails with "no stable watermark observed…" when there is none (the
//   watcher's, or the index status read from the upstream metadata at the start).
// - cache: the namespace's rows in the document cache, paged in key order through the coherence
//   core (CacheCoherence::ScanCached), allowed only while the cache holds the whole namespace
//   (CacheCoherence::WholeNamespace: warm, and nothing invalidated since); the filter is
//   evaluated on each row with the origin's evaluator (jobs/cache_filter.h) against the
//   namespace schema read upstream. The body's watermark is the stable watermark observed at the
//   start, else cache_warmed_through. The cache ceasing to hold the whole namespace before the
//   scan ends fails the job ("cache_cold: …"); so does a filter the upstream would refuse.
// - auto: stored when the request has no filters and the latest stored snapshot holds the field
//   (not skipped over the cap); else cache when the cache holds the whole namespace and can
//   evaluate the filter (a cache scan that fails for either reason falls back); else origin.
// A body built from the cache or the origin is stored, put if absent, at
// "[tenants/{tag}/]snapshots-on-demand/{ns}/{watermark_ms:013}-{sha7}.json", outside the prefix of
// full snapshots: it never becomes the namespace's latest and is never mirrored into the cache
// (decision "snapshots never shadow each other", §7.4). It is served by
// GET /v2/namespaces/{ns}/snapshots/{sha} like a full snapshot.
//
// Jobs live in the job store (kind snapshot). Their params (SnapshotJobParams) hold the request
// and, once done, `effective_source`, `sha`, `key` and `watermark_ms`. After every page the job
// checkpoints `documents_scanned`, which extends its lease and is where a cancel is noticed
// (Aborted: the job stops and writes nothing). Completion records stable_as_of = the snapshot's
// watermark.
//
// Durability: the histogram of a scan in progress is in memory only, so a job resumed after a
// crash (ResumeAll at start, or a sweep that claims a job whose lease expired) starts its scan
// again from the first page. A job whose tenant has no credential (docs/design.md §9.7: keys held
// in memory only, lost by a restart) waits, its record saying why, until a caller of that tenant
// posts a snapshot job of the namespace again.
//
// Threads: jobs run on the pool's threads (upstream reads through the snapshot writer); job-store
// calls run on the runner's store thread and object-store calls on the writer's thread.
// Thread-safe. Lifetime: as WarmRunner (the pool must stop before the runner is destroyed).
#pragma once

#include <boost/asio/thread_pool.hpp>

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <string>

#include "common/clock.h"
#include "common/task.h"
#include "common/thread.h"
#include "http/credentials.h"
#include "http/io_pool.h"
#include "http/upstream.h"
#include "jobs/job_store.h"
#include "jobs/snapshot_writer.h"
#include "snapshots/facets.h"
#include "watermark/consistency_watcher.h"

namespace layer::jobs {

enum class SnapshotSource : uint8_t { kAuto = 0, kStored, kCache, kOrigin };
// "auto", "stored", "cache", "origin".
std::string_view SnapshotSourceName(SnapshotSource source);
std::optional<SnapshotSource> ParseSnapshotSource(std::string_view text);

// A snapshot job's params (Job::params), as stored: {"field","source","filters"?,"page_size",
// "effective_source"?,"sha"?,"key"?,"watermark_ms"?}.
struct SnapshotJobParams {
  std::string field;
  SnapshotSource source = SnapshotSource::kAuto;
  std::optional<std::string> filters;  // compact JSON text of a Turbopuffer filter
  int page_size = kDefaultWarmPageSize;
  // Set when the job completes.
  std::optional<SnapshotSource> effective_source;
  std::optional<std::string> sha;  // 64 hex
  std::optional<std::string> key;  // the object key of the body
  std::optional<uint64_t> watermark_ms;

  // The request part only (field, source, filters, page_size) compared.
  bool SameRequest(const SnapshotJobParams& other) const;
};

std::string SnapshotJobParamsToJson(const SnapshotJobParams& params);
// Corruption when `json` is not params of this shape.
Result<SnapshotJobParams> SnapshotJobParamsFromJson(std::string_view json);

// A POST /v2/namespaces/{ns}/snapshots body: {"field" (required, non-blank string), "source"?
// (auto|stored|cache|origin, default auto), "filters"? (a JSON array; not with stored),
// "page_size"? (integer 1..10000, default 1000)}. InvalidArgument, with a message fit for a 422,
// for anything else (unknown members included).
Result<SnapshotJobParams> ParseSnapshotJobRequest(std::string_view body);

// The SnapshotJob wire shape: the WarmJob fields (id, namespace, status, progress,
// documents_scanned, stable_as_of?, created_at, completed_at?, error?, waiting?) plus "field",
// "source", "effective_source"?, "sha" (null until known), "page_size", "filters"?, "key"?,
// "watermark_ms"?. Compact JSON.
std::string SnapshotJobToJson(const Job& job);
// {"snapshot_jobs":[...]} in the given order.
std::string SnapshotJobListToJson(std::span<const Job> jobs);

struct SnapshotJobRunnerOptions {
  std::string owner;  // this process's identity in job leases
  // The upstream credential of each job's tenant; null: jobs send none (the writer's own
  // credentials are what upstream reads use; this only decides whether a job must wait).
  const http::Credentials* credentials = nullptr;
  // Request threads have the short slice while a job runs (common/thread.h); null: no effect.
  RequestSlices* request_slices = nullptr;
  int64_t safety_margin_ms = 500;  // stable watermark = metadata poll start − margin
  const Clock* clock = nullptr;    // null: Clock::System()
  std::chrono::milliseconds lease = std::chrono::seconds(30);  // as the job store's
  std::chrono::milliseconds sweep_interval{0};                 // zero: lease / 3
};

class SnapshotJobRunner {
 public:
  // `watcher` (may be null) gives the stable watermark.
  SnapshotJobRunner(http::IoPool& pool, JobStore& store, http::Upstream& upstream,
                    SnapshotWriter& writer, watermark::ConsistencyWatcher* watcher,
                    SnapshotJobRunnerOptions options);
  ~SnapshotJobRunner();

  // Runs `job` (a running snapshot job owned by this runner's owner) in the background. False,
  // and nothing done, when it executes here already.
  bool Start(Job job);
  // Claims every running snapshot job of the store (a restarted embedded gateway) and runs it
  // from the start. Blocking; call it before the pool runs.
  Status ResumeAll();
  // Asks a running job to stop (the store already says cancelled).
  void RequestStop(const std::string& id);
  size_t active() const;
  // Claims the snapshot jobs whose lease expired and runs them; every sweep_interval until the
  // pool stops.
  Task<void> SweepLoop();

  const SnapshotJobRunnerOptions& options() const { return options_; }

  // Runs `fn` (job-store calls) on the runner's store thread.
  template <typename Fn>
  Task<std::invoke_result_t<Fn&>> Blocking(Fn fn) {
    co_return co_await OffLoop(*store_thread_, std::move(fn));
  }

 private:
  struct Outcome;
  Task<void> Run(Job job);
  Task<Result<Outcome>> RunStored(const Job& job, const SnapshotJobParams& params);
  Task<Result<Outcome>> RunOrigin(const Job& job, const SnapshotJobParams& params);
  Task<Result<Outcome>> RunCache(const Job& job, const SnapshotJobParams& params);
  // Checkpoints documents_scanned after a page; `out->stopped` when the job must stop.
  Task<Status> CheckpointPage(const Job& job, Outcome* out);
  // Stores the single-field body of `agg` at `watermark_ms` (put if absent) into `out`.
  Task<Status> StoreBody(const std::string& partition, const snapshots::FacetAggregator& agg,
                         uint64_t watermark_ms, Outcome* out);
  // A GET of `target` upstream with the partition's credential.
  http::Request UpstreamRequest(const std::string& partition, std::string target) const;
  // GET `target` upstream with the partition's credential; the body of a 200.
  Task<Result<std::string>> UpstreamGet(const std::string& partition, std::string target);
  // The stable watermark of the partition: the watcher's, else the metadata's index status.
  Task<std::optional<uint64_t>> StableWatermark(const std::string& partition);
  Task<void> End(const std::string& id, JobStatus status, std::string error,
                 std::optional<uint64_t> stable_as_of);
  Task<void> WaitForCredential(const Job& job);
  void Forget(const std::string& id);
  bool StopRequested(const std::string& id) const;

  http::IoPool& pool_;
  JobStore& store_;
  http::Upstream& upstream_;
  SnapshotWriter& writer_;
  watermark::ConsistencyWatcher* const watcher_;
  const SnapshotJobRunnerOptions options_;
  std::unique_ptr<boost::asio::thread_pool> store_thread_;

  mutable std::mutex mu_;  // guards active_ and stop_
  std::map<std::string, std::string> active_;  // job id -> partition
  std::set<std::string> stop_;
};

}  // namespace layer::jobs
