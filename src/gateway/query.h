// Queries (POST /v2/namespaces/{ns}/query and the v1 alias) and the namespace-information
// routes (schema, metadata, deprecated export), with Layer's reserved attributes kept invisible.
//
// Queries: `include_attributes: true` becomes an `exclude_attributes` list on the way up and an
// explicit `exclude_attributes` gains the reserved names, so rows never carry `_hevlayer_*`
// attributes the caller did not name. Other queries, and every response, pass through untouched.
//
// Schema, metadata and export: the reserved attributes are removed from the upstream's answer;
// every other byte of a body that needs no change is relayed verbatim.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "coherence/coherence.h"
#include "gateway/gateway.h"
#include "watermark/consistency_watcher.h"

namespace layer::gateway {

// Responses carry `x-layer-stable-as-of` once the namespace has a stable watermark.
Task<http::Response> Query(RequestContext& ctx, http::Upstream& upstream,
                           const watermark::ConsistencyWatcher* watcher,
                           const std::string& public_url);

// GET /v2/…/metadata also gains a `layer` object: stable_as_of, is_stable, cache_state and
// cache_warmed_through; its index status feeds the consistency watcher.
Task<http::Response> NamespaceInfo(RequestContext& ctx, http::Upstream& upstream,
                                   coherence::CacheCoherence& cache,
                                   watermark::ConsistencyWatcher* watcher,
                                   const std::string& public_url);

// Rewrites a query body so reserved attributes are not returned unless named. Returns the new
// body, or nullopt when the body needs no change (or is not JSON: the upstream answers it).
std::optional<std::string> HideReservedAttributes(std::string_view query_body);

// Removes reserved attributes from a schema map, a metadata body's "schema" or an export body's
// "attributes". Returns nullopt when nothing changed (or the body is not JSON).
std::optional<std::string> StripReservedFromInfo(tpuf::RouteId route, std::string_view body);

}  // namespace layer::gateway
