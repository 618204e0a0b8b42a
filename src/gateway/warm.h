// Warm jobs (Layer-only, docs/design.md §5):
//   POST   /v2/namespaces/{ns}/warm?page_size=N   → 202 WarmJob (the running one if any)
//   GET    /v2/namespaces/{ns}/warm-jobs           → {"warm_jobs":[…]} oldest first
//   GET    /v2/namespaces/{ns}/warm-jobs/{id}      → WarmJob, 404 not_found otherwise
//   DELETE /v2/namespaces/{ns}/warm-jobs/{id}      → cancels a running job
// `page_size` is 1..10000 (default 1000); anything else is 422. When the cache is unavailable,
// POST answers 503 cache_cold (with "cache_state":"cold") before any job is created.
#pragma once

#include "coherence/coherence.h"
#include "gateway/gateway.h"
#include "jobs/job_store.h"
#include "jobs/snapshot_job_runner.h"
#include "jobs/snapshot_writer.h"
#include "jobs/warm_runner.h"
#include "snapshots/object_store.h"

namespace layer::gateway {

struct WarmServices {
  jobs::JobStore& store;
  jobs::WarmRunner& runner;
  snapshots::ObjectStore& objects;  // where namespace snapshots live
  jobs::SnapshotWriter& snapshots;  // snapshot policies, the writer, retention
  jobs::SnapshotJobRunner* snapshot_jobs = nullptr;  // on-demand snapshot jobs; null: none
};

Task<http::Response> StartWarm(RequestContext& ctx, coherence::CacheCoherence& cache, WarmServices& warm);
Task<http::Response> ListWarmJobs(RequestContext& ctx, WarmServices& warm);
Task<http::Response> WarmJobById(RequestContext& ctx, WarmServices& warm);

// Cancels every running job of the namespace (a namespace delete). Best effort: a job-store
// failure is logged, and the job's next checkpoint then fails against the deleted namespace.
Task<void> CancelRunningJobs(WarmServices& warm, const std::string& ns);

// The `page_size` query parameter: 1..10000, default 1000; InvalidArgument otherwise.
Result<int> ParsePageSize(std::string_view query);

// Creates a warm job of ctx's partition, or joins the one running (POST /warm and the hint's
// documents step), and runs it here unless it runs already.
Task<Result<jobs::WarmJob>> StartOrJoinWarm(RequestContext& ctx, WarmServices& warm,
                                            int page_size);
// The 503 answered when the job store fails.
http::Response JobStoreError(const Status& st);

// The 503 answered when a cache-dependent operation meets an unavailable cache.
http::Response CacheCold(const std::string& ns);

}  // namespace layer::gateway
