// WarmRunner: executes warm jobs (docs/design.md §5).
//
// A job pages through the origin by id (`rank_by ["id","asc"]`, `["id","Gt",cursor]`, `top_k`
// min(page_size+1, 10000), full attributes), writes each page into the cache with newer-wins, and
// checkpoints the cursor, `documents_scanned` and `progress` (documents scanned over the
// namespace's `approx_row_count`, below 1.0 until done) after every page. Transient upstream
// errors are retried with backoff, then the job fails with `error` set. If the cache becomes
// unavailable mid-job the job fails with a `cache_cold` error; other cache write errors are
// counted in `cache_errors`. On success: status completed, progress 1, `stable_as_of` = the stable
// watermark captured at the start, and the namespace's `cache_warmed_through` record moves to it.
//
// Pipelining: as soon as a look at page N gives its last id (the next cursor), the read of page
// N+1 starts; page N is then parsed and handed to the writer while earlier pages are still being
// written to the cache and checkpointed, so reading, parsing and writing overlap and the chain of
// reads is never held up by a write. At most one page is read ahead, one parsed and two being
// written. Order: checkpoints are stored in page order, and page N is checkpointed only after its
// own cache write returned and page N-1's checkpoint was stored, so a checkpoint never claims a
// page whose documents are not in the cache (cache writes themselves may overlap: pages hold
// disjoint ids). A read ahead whose job then stops (cancelled, failed, cache cold, lease lost) is
// abandoned: its answer is dropped unread, and a failure of it is reported only after every
// earlier page has been written and checkpointed.
//
// Threads: a job runs on a thread of the runner's IoPool, where it makes its upstream calls
// (`upstream` must be one made for that pool). `layer serve` gives the runner a pool and upstream
// connections of their own ("layer-warm-io"), so reading a warm's pages never takes a request
// thread's time. Page parsing and keying (CPU) run on the runner's page thread, cache writes on
// the cache guard's bulk lane (so fetches never queue behind them), and every job-store call
// (local transactions that may fsync) on the runner's store thread. Rows are sliced from the
// page, never re-serialised (jobs/warm_page.h); a page's rows go to the cache in one batch.
//
// Durability: the job store holds every checkpoint, so a gateway killed mid-warm resumes the job
// from its last cursor when it starts again (ResumeAll).
//
// Sweep: while it lives, the runner periodically (WarmRunnerOptions::sweep_interval) claims the
// warm jobs whose lease expired -- their owner died or stalled, e.g. another gateway sharing the
// store -- and runs them from their checkpoints, and prunes finished jobs (the store's
// retention). A job already executing here is never started twice. The sweep's timer waits on the
// runner's pool and its store calls run on the store thread; the destructor stops it.
//
// Lifetime: the pool must outlive the runner, and the runner must outlive the jobs it runs (stop
// the pool, or wait for active() == 0, before destroying it). Thread-safe.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>

#include <boost/asio/steady_timer.hpp>

#include "coherence/coherence.h"
#include "common/clock.h"
#include "common/metrics.h"
#include "http/credentials.h"
#include "http/io_pool.h"
#include "common/task.h"
#include "common/thread.h"
#include "http/upstream.h"
#include "jobs/job_store.h"
#include "watermark/consistency_watcher.h"

namespace layer::jobs {

// A page's rows keyed for the cache, in page order.
using CacheBatch = std::vector<std::pair<tpuf::DocId, cache::CachedDoc>>;
// What a page's put must know of the writes when the page's read began.
using WarmMark = std::shared_ptr<const coherence::CacheCoherence::WarmReadMark>;

struct WarmRunnerOptions {
  std::string owner;                   // this process's identity in job leases
  // The upstream credential of each job's tenant (docs/design.md §9.7); null: jobs send none.
  // A job whose tenant has none waits (its record says why) until a caller of that tenant warms
  // the namespace again.
  const http::Credentials* credentials = nullptr;
  // Request threads have the short slice while a job runs (common/thread.h); null: no effect.
  RequestSlices* request_slices = nullptr;
  int max_attempts = 5;                // per page, for transient upstream errors
  std::chrono::milliseconds retry_base{200};
  int64_t safety_margin_ms = 500;      // stable watermark = metadata poll start − margin
  const Clock* clock = nullptr;         // wall time of leases and polls; null: Clock::System()
  MetricsRegistry* metrics = nullptr;   // null: layer::Metrics()
  // The lease a claim takes (ResumeAll, the sweep). Keep it the job store's lease, which Create
  // and Checkpoint grant.
  std::chrono::milliseconds lease = std::chrono::seconds(30);
  // The time between sweeps; zero means lease / 3, so that a dead owner's job waits at most about
  // a third of a lease past its expiry.
  std::chrono::milliseconds sweep_interval{0};
  // Retention of finished jobs, applied by every sweep (JobStore::Prune).
  std::chrono::milliseconds keep_finished_for = std::chrono::hours(24 * 7);
  uint64_t keep_finished_max_per_namespace = 100;
};

class WarmRunner {
 public:
  // `watcher` (may be null) is told of the metadata the runner reads and gives the stable
  // watermark when the namespace's index is not up to date.
  WarmRunner(http::IoPool& pool, JobStore& store, http::Upstream& upstream,
             coherence::CacheCoherence& cache, watermark::ConsistencyWatcher* watcher,
             WarmRunnerOptions options);
  ~WarmRunner();

  // Runs `job` in the background (it must be running and owned by this runner's owner). Returns
  // false, and does nothing, when the job is already executing here.
  bool Start(WarmJob job);
  // Creates a warm job of `ns` with the default page size and runs it, unless one is running
  // already. Returns at once: the job-store call happens on the store thread.
  void CreateAndStart(std::string ns);
  // Claims every running job of the store (a restarted embedded gateway) and runs it. With
  // `cache_was_reset`, what those jobs had cached is gone, so they start paging over. Call it
  // before the pool runs (as `layer serve` does), so that it goes before the first sweep: a sweep
  // would resume a job whose lease expired from its checkpoint, cache reset or not.
  Status ResumeAll(bool cache_was_reset);
  // Asks a running job to stop at its next page boundary (the store marks it cancelled).
  void RequestStop(const std::string& id);
  // Jobs currently executing in this process.
  size_t active() const;
  // Whether a job of `ns` is executing in this process.
  bool Warming(std::string_view ns) const;

  const WarmRunnerOptions& options() const { return options_; }

  // Runs `fn` (a job-store call) on the runner's store thread and resumes the caller on its own
  // executor: route handlers use it to keep job-store calls off the I/O threads.
  template <typename Fn>
  Task<std::invoke_result_t<Fn&>> Blocking(Fn fn) {
    co_return co_await OffLoop(*store_thread_, std::move(fn));
  }

 private:
  struct PageRead;
  struct PageWrite;
  struct WriteOutcome {
    std::string failure;  // set: the job fails with this error (the cache went cold)
    bool stop = false;    // the checkpoint was refused or a stop was requested: the job ends
  };
  struct JobProgress;
  struct SweepState;

  // Schedules the next sweep; expects sweep_->mu held.
  void ArmSweepLocked();
  // Claims the warm jobs whose lease expired and starts them, prunes finished jobs, and schedules
  // the next sweep. Runs on the store thread.
  void Sweep();

  Task<void> Run(WarmJob job);
  // Starts reading the page after `cursor` (with retries) in the background, on this thread.
  Task<std::shared_ptr<PageRead>> StartRead(const std::string& ns, size_t page_size,
                                                  const std::optional<std::string>& cursor);
  // Starts `read` of the page after `cursor` on `ex`; call on `ex` (the read is touched there
  // only).
  void LaunchRead(const boost::asio::any_io_executor& ex, std::shared_ptr<PageRead> read,
                  const std::string& ns, size_t page_size,
                  const std::optional<std::string>& cursor);
  Task<void> ReadPage(std::shared_ptr<PageRead> read, std::string partition, std::string target,
                      std::string body);
  // The read's outcome: the last attempt's answer or transport error.
  static Task<Result<http::Response>> AwaitRead(std::shared_ptr<PageRead> read);
  // Stops the read's retries and drops its answer.
  static void Abandon(const std::shared_ptr<PageRead>& read);
  // Writes a page's rows to the cache (CacheCoherence::PutWarmPage: not when the namespace was
  // invalidated after `mark`, taken when the page's read began, nor the rows of ids a write may
  // have changed since), waits for `previous` (the page before, if any; when it ended the
  // job, so does this page), then checkpoints the job past this page (`cursor`, the page's
  // `taken` rows and the rows not warmed, `unkeyed` ones included, added to `progress`) and
  // reports into `w`.
  Task<void> WritePage(std::shared_ptr<PageWrite> w, std::shared_ptr<PageWrite> previous,
                       std::shared_ptr<JobProgress> progress, std::string id, std::string ns,
                       CacheBatch batch, WarmMark mark, uint64_t taken, uint64_t unkeyed,
                       std::optional<std::string> cursor);
  // The write's outcome, once it is over.
  static Task<WriteOutcome> AwaitWrite(std::shared_ptr<PageWrite> w);
  // Records the job's end in the store and forgets it. `error` is empty unless the job failed.
  Task<void> End(const std::string& id, JobStatus status, std::string error,
                       std::optional<uint64_t> stable_as_of);
  void Forget(const std::string& id);
  bool StopRequested(const std::string& id) const;
  // Learns the namespace's id type from the upstream schema when the ids alone cannot tell.
  Task<std::optional<tpuf::IdType>> ReadIdType(const std::string& ns);
  // Captures the stable watermark and approximate row count from upstream metadata.
  Task<void> ReadMetadata(const std::string& ns, std::optional<uint64_t>* stable_as_of,
                                uint64_t* approx_rows);
  // Sends a request of `partition`'s job upstream with the credential of its tenant.
  Task<Result<http::Response>> Send(std::string_view partition, http::Verb method,
                                    std::string target, std::string body);
  // Records that job `job` waits for a credential and stops executing it here.
  Task<void> WaitForCredential(const WarmJob& job);

  http::IoPool& pool_;
  JobStore& store_;
  http::Upstream& upstream_;
  coherence::CacheCoherence& cache_;
  watermark::ConsistencyWatcher* const watcher_;
  const WarmRunnerOptions options_;

  // One thread each (jobs are bound by upstream reads, and the job store serialises its calls
  // anyway), so a checkpoint's fsync never holds up the next page's parsing. Joined by the
  // destructor.
  std::unique_ptr<boost::asio::thread_pool> store_thread_;
  std::unique_ptr<boost::asio::thread_pool> page_thread_;

  mutable std::mutex mu_;  // guards active_ and stop_
  std::map<std::string, std::string> active_;  // job id -> namespace
  std::set<std::string> stop_;

  const std::chrono::milliseconds sweep_interval_;
  // Shared with the sweep timer's handler, which may run after the runner is gone.
  std::shared_ptr<SweepState> sweep_;
  std::unique_ptr<boost::asio::steady_timer> sweep_timer_;  // guarded by sweep_->mu
};

}  // namespace layer::jobs
