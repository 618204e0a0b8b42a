// Snapshot routes (Layer-only, docs/design.md §7.7):
//   GET /v2/namespaces/{ns}/snapshot-policy   → SnapshotPolicy, 404 not_found when none is stored
//   PUT /v2/namespaces/{ns}/snapshot-policy   → the normalised policy, stored and applied at once;
//                                              422 validation_error for a bad body (nothing
//                                              stored), 502 upstream_error when the object store
//                                              fails
//   GET /v2/namespaces/{ns}/history?limit&before → [{"watermark_ms","sha"}…] newest first (sha:
//                                              the 7 hex digits of the key), watermarks < before
//   GET /v2/namespaces/{ns}/snapshots/{sha}   → the stored body (7 to 64 hex digits of its sha;
//                                              the newest match; full snapshots first, then
//                                              on-demand ones), 404 not_found otherwise
//   POST /v2/namespaces/{ns}/snapshots        → 202 SnapshotJob (jobs/snapshot_job_runner.h):
//                                              {field, source?, filters?, page_size?}; 422
//                                              validation_error for a bad body; source cache:
//                                              400/422 for a filter no evaluator takes, 503
//                                              cache_cold unless the cache holds every row of the
//                                              namespace; 409 conflict when a job with another
//                                              request runs (the same request joins it)
//   GET /v2/namespaces/{ns}/snapshot-jobs      → {"snapshot_jobs":[…]} oldest first
//   GET|DELETE /v2/namespaces/{ns}/snapshot-jobs/{id} → SnapshotJob (DELETE cancels a running
//                                              one), 404 not_found otherwise
// Object-store calls run off the event loop (on the snapshot writer's thread).
#pragma once

#include "gateway/gateway.h"
#include "gateway/warm.h"

namespace layer::gateway {

Task<http::Response> SnapshotPolicyRoute(RequestContext& ctx, WarmServices& services,
                                         watermark::ConsistencyWatcher* watcher);
Task<http::Response> SnapshotHistory(RequestContext& ctx, WarmServices& services);
Task<http::Response> SnapshotBodyRoute(RequestContext& ctx, WarmServices& services);
Task<http::Response> StartSnapshotJob(RequestContext& ctx, WarmServices& services);
Task<http::Response> ListSnapshotJobs(RequestContext& ctx, WarmServices& services);
Task<http::Response> SnapshotJobById(RequestContext& ctx, WarmServices& services);

// Deletes every snapshot of the partition (a namespace delete). Best effort: logged on failure.
Task<void> PurgeSnapshots(WarmServices& services, const std::string& partition);

}  // namespace layer::gateway
