#include "gateway/health.h"

#include <boost/json.hpp>

#include <set>

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

http::Task<boost::json::array> CacheStates(CacheContext& cache) {
  std::set<std::string> names;
  if (cache.watcher) {
    for (auto& ns : cache.watcher->Namespaces()) names.insert(std::move(ns));
  }
  if (cache.guard && cache.guard->connected()) {
    auto warmed = co_await cache.guard->ListNamespaceRecords(std::string(kWarmedThroughRecord));
    if (warmed.ok()) {
      for (auto& [ns, v] : *warmed) names.insert(ns);
    }
  }
  boost::json::array out;
  for (const auto& ns : names) {
    std::optional<uint64_t> warmed;
    std::string_view state = co_await CacheStateOf(cache, ns, &warmed);
    boost::json::object entry{{"namespace", ns}, {"state", state}};
    if (warmed) entry["warmed_through"] = *warmed;
    entry["warm_inflight"] = cache.warming && cache.warming(ns);
    out.push_back(std::move(entry));
  }
  co_return out;
}

}  // namespace

CacheStateListing::CacheStateListing(std::chrono::milliseconds max_age,
                                     std::function<Clock::time_point()> now)
    : max_age_(max_age), now_(std::move(now)) {}

CacheStateListing::Clock::time_point CacheStateListing::Now() const {
  return now_ ? now_() : Clock::now();
}

CacheStateListing::Inputs CacheStateListing::InputsOf(const CacheContext& cache) {
  Inputs in;
  if (cache.guard) {
    in.connected = cache.guard->connected();
    in.generation = cache.guard->generation();
    in.records_version = cache.guard->namespace_records_version();
  }
  if (cache.watcher) in.watcher_version = cache.watcher->namespaces_version();
  in.warming_version = cache.warming_version.load(std::memory_order_acquire);
  return in;
}

uint64_t CacheStateListing::computations() const {
  std::lock_guard lk(mu_);
  return computations_;
}

http::Task<boost::json::array> CacheStateListing::Get(CacheContext& cache) {
  // Read before computing: a change that lands while the listing is computed leaves the stored
  // inputs behind, so the next call computes again.
  const Inputs inputs = InputsOf(cache);
  const Clock::time_point now = Now();
  bool age_refresh = false;
  {
    std::lock_guard lk(mu_);
    if (listing_ && inputs_ == inputs) {
      if (now - computed_at_ < max_age_ || refreshing_) co_return *listing_;
      refreshing_ = true;
      age_refresh = true;
    }
  }
  // Clears `refreshing_` however this frame ends.
  struct RefreshDone {
    CacheStateListing* self;
    bool active;
    ~RefreshDone() {
      if (!active) return;
      std::lock_guard lk(self->mu_);
      self->refreshing_ = false;
    }
  } done{this, age_refresh};
  boost::json::array fresh = co_await CacheStates(cache);
  {
    std::lock_guard lk(mu_);
    ++computations_;
    listing_ = fresh;
    inputs_ = inputs;
    computed_at_ = now;
  }
  co_return fresh;
}

namespace {

http::Task<boost::json::object> HealthBody(const HealthInfo& info) {
  boost::json::object body{
      {"status", "ok"},
      {"version", kVersion},
      {"upstream", boost::json::object{{"kind", info.upstream_kind}, {"url", info.upstream_url}}},
  };
  if (info.cache) {
    body["cache"] = CacheBody(*info.cache);
    if (info.cache_states) {
      body["cache_state"] = co_await info.cache_states->Get(*info.cache);
    } else {
      body["cache_state"] = co_await CacheStates(*info.cache);
    }
  }
  co_return body;
}

}  // namespace

http::Task<http::Response> HealthResponse(const HealthInfo& info) {
  boost::json::object body = co_await HealthBody(info);
  co_return http::MakeJson(http::Code::ok, body);
}

http::Task<http::Response> ReadyResponse(const HealthInfo& info) {
  if (info.draining) {
    co_return http::MakeJson(http::Code::service_unavailable,
                             boost::json::object{{"status", "draining"}, {"version", kVersion}});
  }
  co_return co_await HealthResponse(info);
}

http::Response MetricsResponse() {
  http::Response res{http::Code::ok, 11};
  res.set(http::Field::content_type, "text/plain; version=0.0.4; charset=utf-8");
  res.body() = Metrics().Render();
  return res;
}

}  // namespace layer::gateway
