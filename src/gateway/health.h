// Unauthenticated operations routes: GET /health, GET /ready, GET /metrics (reference §2.6).
// The health body reports the cache backend, whether it is connected, its connection generation
// and last error; a disconnected cache is probed (bounded by the cache's op timeout).
#pragma once

#include "gateway/cache_context.h"
#include "http/message.h"

namespace layer::gateway {

struct HealthInfo {
  std::string upstream_kind;  // "turbopuffer" or "embedded_origin"
  std::string upstream_url;
  bool draining = false;
  CacheContext* cache = nullptr;
};

// The health body also lists `cache_state` for every namespace the gateway watches or has warmed:
// [{"namespace","state":"cold|warming|warm","warmed_through"?,"warm_inflight"}], by name.
http::Task<http::Response> HealthResponse(const HealthInfo& info);
// 200 with the health body, or 503 {"status":"draining",...} while draining.
http::Task<http::Response> ReadyResponse(const HealthInfo& info);
http::Response MetricsResponse();

}  // namespace layer::gateway
