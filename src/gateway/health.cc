#include "gateway/health.h"

#include <boost/json/object.hpp>

#include "common/metrics.h"
#include "common/version.h"
#include "http/errors.h"

namespace layer::gateway {
namespace {

boost::json::object HealthBody(const HealthInfo& info) {
  return boost::json::object{
      {"status", "ok"},
      {"version", kVersion},
      {"upstream", boost::json::object{{"kind", info.upstream_kind}, {"url", info.upstream_url}}},
  };
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
