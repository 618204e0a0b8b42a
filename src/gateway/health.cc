#include "gateway/health.h"

#include <boost/json/object.hpp>

#include "common/metrics.h"
#include "common/version.h"
#include "http/errors.h"

namespace layer::gateway {
namespace {

boost::json::object CacheBody(CacheContext& cache) {
  boost::json::object out{{"backend", cache.backend_name}};
  if (!cache.guard) {
    out["connected"] = false;
    return out;
  }
  auto& g = *cache.guard;
  if (!g.connected()) (void)g.PingSync();  // lets /health notice a cache that came back
  out["connected"] = g.connected();
  out["generation"] = g.generation();
  out["breaker"] = cache::BreakerStateName(g.breaker_state());
  if (!g.last_error().ok()) out["last_error"] = g.last_error().ToString();
  out["pending_invalidations"] = cache.pending.size();
  return out;
}

boost::json::object HealthBody(const HealthInfo& info) {
  boost::json::object body{
      {"status", "ok"},
      {"version", kVersion},
      {"upstream", boost::json::object{{"kind", info.upstream_kind}, {"url", info.upstream_url}}},
  };
  if (info.cache) body["cache"] = CacheBody(*info.cache);
  return body;
}

}  // namespace

http::Response HealthResponse(const HealthInfo& info) {
  return http::MakeJson(http::Code::ok, HealthBody(info));
}

http::Response ReadyResponse(const HealthInfo& info) {
  if (info.draining) {
    return http::MakeJson(http::Code::service_unavailable,
                          boost::json::object{{"status", "draining"}, {"version", kVersion}});
  }
  return HealthResponse(info);
}

http::Response MetricsResponse() {
  http::Response res{http::Code::ok, 11};
  res.set(http::Field::content_type, "text/plain; version=0.0.4; charset=utf-8");
  res.body() = Metrics().Render();
  return res;
}

}  // namespace layer::gateway
