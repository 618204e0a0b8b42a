// GET /v1/namespaces/{ns}/hint_cache_warm (docs/design.md §6.3–§6.4).
//
// With a raw query string that names none of turbopuffer, documents, snapshots, page_size it is a
// pure passthrough (it never touches the cache, so it works while the cache is down). Naming any
// of them switches to Layer orchestration: booleans accept true|false|1|0 (anything else 422),
// the steps default to on, page_size is 1..10000. If documents or snapshots is on and the cache
// is unavailable the answer is 503 cache_cold and no step runs. With the documents step on, the
// caller needs the write scope, as for POST /warm. Then, in order: `turbopuffer` forwards the hint
// (a failure is 502 for the whole call), `snapshots` mirrors the latest snapshot body of the
// object store into the cache (`completed` with key, watermark_ms and sha; `no_snapshot`; 502 on a
// store error or a corrupt body; the store is read off the event loop), and last `documents`
// starts a warm job (or reports the running one), so a failing step never leaves a job running
// whose id the caller does not see. Disabled steps report `skipped`.
#pragma once

#include "coherence/coherence.h"
#include "gateway/gateway.h"
#include "gateway/warm.h"

namespace layer::gateway {

// Whether the raw query string switches hint_cache_warm to orchestration.
bool IsOrchestratedHint(std::string_view query);
// The auth scope the call needs: write when it orchestrates with the documents step on (it starts
// a warm job, as POST /warm does), else read.
unsigned HintRequiredScope(std::string_view query);

Task<http::Response> OrchestrateHintCacheWarm(RequestContext& ctx, http::Upstream& upstream,
                                                    coherence::CacheCoherence& cache, WarmServices& warm);

}  // namespace layer::gateway
