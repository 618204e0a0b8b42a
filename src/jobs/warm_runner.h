// WarmRunner: executes warm jobs (architecture §3 decision 8, reference §7.3–7.4).
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
// Durability: the job store holds every checkpoint, so a gateway killed mid-warm resumes the job
// from its last cursor when it starts again (ResumeAll). Jobs run on the IoPool; job-store calls
// are short local transactions made from the job's coroutine. Thread-safe.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>

#include "gateway/cache_context.h"
#include "http/io_pool.h"
#include "http/upstream.h"
#include "jobs/job_store.h"

namespace layer::jobs {

struct WarmRunnerOptions {
  std::string owner;                   // this process's identity in job leases
  std::string upstream_authorization;  // "Bearer …" for background upstream calls, or empty
  int max_attempts = 5;                // per page, for transient upstream errors
  std::chrono::milliseconds retry_base{200};
  int64_t safety_margin_ms = 500;      // stable watermark = metadata poll start − margin
};

class WarmRunner {
 public:
  WarmRunner(http::IoPool& pool, JobStore& store, http::Upstream& upstream,
             gateway::CacheContext& cache, WarmRunnerOptions options);

  // Runs `job` in the background (it must be running and owned by this runner's owner).
  void Start(WarmJob job);
  // Claims every running job of the store (a restarted embedded gateway) and runs it. With
  // `cache_was_reset`, what those jobs had cached is gone, so they start paging over.
  Status ResumeAll(bool cache_was_reset);
  // Asks a running job to stop at its next page boundary (the store marks it cancelled).
  void RequestStop(const std::string& id);
  // Jobs currently executing in this process.
  size_t active() const;
  // Whether a job of `ns` is executing in this process.
  bool Warming(std::string_view ns) const;

  const WarmRunnerOptions& options() const { return options_; }

 private:
  http::Task<void> Run(WarmJob job);
  // Forgets a job that stopped executing here.
  void EndActive(const std::string& id);
  // Learns the namespace's id type from the upstream schema when the ids alone cannot tell.
  http::Task<std::optional<cache::IdType>> ReadIdType(const std::string& ns);
  // Captures the stable watermark and approximate row count from upstream metadata.
  http::Task<void> ReadMetadata(const std::string& ns, std::optional<uint64_t>* stable_as_of,
                                uint64_t* approx_rows);
  http::Task<Result<http::Response>> Send(http::Verb method, std::string target, std::string body);

  http::IoPool& pool_;
  JobStore& store_;
  http::Upstream& upstream_;
  gateway::CacheContext& cache_;
  const WarmRunnerOptions options_;

  mutable std::mutex mu_;  // guards active_ and stop_
  std::map<std::string, std::string> active_;  // job id -> namespace
  std::set<std::string> stop_;
};

}  // namespace layer::jobs
