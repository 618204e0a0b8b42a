// Unauthenticated operations routes: GET /health, GET /ready, GET /metrics (reference §2.6).
#pragma once

#include "http/message.h"

namespace layer::gateway {

struct HealthInfo {
  std::string upstream_kind;  // "turbopuffer" or "embedded_origin"
  std::string upstream_url;
  bool draining = false;
};

http::Response HealthResponse(const HealthInfo& info);
// 200 with the health body, or 503 {"status":"draining",...} while draining.
http::Response ReadyResponse(const HealthInfo& info);
http::Response MetricsResponse();

}  // namespace layer::gateway
