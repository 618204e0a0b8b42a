// Document fetch (Layer-only, docs/design.md §4.1):
//   GET  /v2/namespaces/{ns}/documents/{id}?include_attributes=a,b
//   POST /v2/namespaces/{ns}/documents  {"ids":[…], "include_attributes"?:[…]}
//
// Pull-through: a cache hit is served from the cache; a miss reads the full row upstream
// (strong consistency by default), coalescing concurrent misses of one id into one read, and
// backfills it with newer-wins. A cache error never fails a fetch nor turns a present document
// into a 404: it falls through to upstream (`x-layer-cache: miss-on-error`) without backfill.
// Reserved `_hevlayer_*` attributes are returned only when named in include_attributes; a
// requested `vector` is dropped with `x-layer-warning: vector_attribute_dropped`.
#pragma once

#include "coherence/coherence.h"
#include "gateway/gateway.h"

namespace layer::gateway {

inline constexpr size_t kMaxFetchIds = 1000;

Task<http::Response> FetchDocument(RequestContext& ctx, http::Upstream& upstream,
                                         coherence::CacheCoherence& cache);
Task<http::Response> FetchDocuments(RequestContext& ctx, http::Upstream& upstream,
                                          coherence::CacheCoherence& cache);

// The namespace's id type: known, or learned from the upstream schema (NotFound when the
// namespace does not exist upstream).
Task<Result<tpuf::IdType>> ResolveIdType(RequestContext& ctx, http::Upstream& upstream,
                                                coherence::CacheCoherence& cache);
// Reads the namespace's schema upstream and learns its id and attribute types
// (CacheCoherence::LearnSchema); returns its id type. NotFound when the namespace does not exist
// upstream.
Task<Result<tpuf::IdType>> ReadSchema(RequestContext& ctx, http::Upstream& upstream,
                                      coherence::CacheCoherence& cache);


}  // namespace layer::gateway
