// Writes and namespace deletes with cache mirroring (docs/design.md §4.2
// and §4.3).
//
// POST /v2/namespaces/{ns}: validate (422 before anything is forwarded), stamp, forward, and only
// after a 2xx mirror into the cache: upserts put full rows (newer wins), patches merge into a
// cached full row or invalidate the id, deletes write tombstones, and conditional or by-filter
// writes invalidate exactly the ids the upstream reports (the gateway asks for them; the client
// sees `*_ids` only if it asked too). Upstream non-2xx is relayed verbatim and a transport failure
// is 502; in both cases the cache is untouched. A mirroring failure never fails the write: the ids
// are held as pending invalidations so nothing stale is served.
//
// DELETE /v2/namespaces/{ns} (and /v1/namespaces/{ns}): upstream first (a 404 counts as done, a lost answer or a 5xx as
// perhaps done), then the namespace's running jobs are cancelled, and an O(1) epoch bump of the
// namespace in the cache, fenced so that no row read before the delete lands after it, and a purge
// of the gateway's state for it (docs/design.md §4.3).

#pragma once

#include "coherence/coherence.h"
#include "gateway/gateway.h"
#include "gateway/warm.h"
#include "watermark/consistency_watcher.h"

namespace layer::gateway {

// `watcher` (may be null) learns of every namespace written.
Task<http::Response> Write(RequestContext& ctx, http::Upstream& upstream,
                           coherence::CacheCoherence& cache, watermark::ConsistencyWatcher* watcher,
                           const std::string& public_url);

// POST /v1/namespaces/{ns} (a legacy write, in Turbopuffer's v1 shape): forwarded as it is; when
// it may have been applied (a 2xx, a 5xx or a lost answer), the namespace is invalidated in the
// cache, since the gateway does not follow the v1 shape (docs/design.md §4.2.3).
Task<http::Response> LegacyWrite(RequestContext& ctx, http::Upstream& upstream,
                                 coherence::CacheCoherence& cache, const std::string& public_url);

// DELETE /v2/namespaces/{ns}, and its legacy twin DELETE /v1/namespaces/{ns}.
// `warm` (may be null): the namespace's running jobs are cancelled once the delete may have been
// applied.
Task<http::Response> DeleteNamespace(RequestContext& ctx, http::Upstream& upstream,
                                     coherence::CacheCoherence& cache,
                                     watermark::ConsistencyWatcher* watcher, WarmServices* warm,
                                     const std::string& public_url);

}  // namespace layer::gateway
