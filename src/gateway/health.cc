#include "gateway/health.h"

#include "common/tenant.h"

#include <boost/json.hpp>

#include <set>

#include "common/metrics.h"
#include "common/version.h"
#include "http/errors.h"

namespace layer::gateway {
namespace {

boost::json::object CacheBody(coherence::CacheCoherence& cache) {
  boost::json::object out{{"backend", cache.backend_name()}};
  if (!cache.guard()) {
    out["connected"] = false;
    return out;
  }
  auto& g = *cache.guard();
  if (!g.connected()) (void)g.PingSync();  // lets /health notice a cache that came back
  out["connected"] = g.connected();
  out["generation"] = g.generation();
  out["breaker"] = cache::BreakerStateName(g.breaker_state());
  if (!g.last_error().ok()) out["last_error"] = g.last_error().ToString();
  out["pending_invalidations"] = cache.pending_invalidations();
  return out;
}

Task<boost::json::array> CacheStates(coherence::CacheCoherence& cache,
                                     const watermark::ConsistencyWatcher* watcher) {
  std::set<std::string> names;
  if (watcher) {
    for (auto& ns : watcher->Namespaces()) names.insert(std::move(ns));
  }
  if (cache.guard() && cache.guard()->connected()) {
    auto warmed = co_await cache.guard()->ListNamespaceRecords(
        std::string(coherence::kWarmedThroughRecord));
    if (warmed.ok()) {
      for (auto& [ns, v] : *warmed) names.insert(ns);
    }
  }
  boost::json::array out;
  for (const auto& ns : names) {
    std::optional<uint64_t> warmed;
    coherence::CacheState state = co_await cache.StateOf(ns, &warmed);
    const PartitionParts parts = SplitPartition(ns);  // one entry per tenant's partition (§9.7)
    boost::json::object entry{{"namespace", parts.ns},
                              {"state", coherence::CacheStateName(state)}};
    if (!parts.tag.empty()) entry["tenant"] = parts.tag;
    if (warmed) entry["warmed_through"] = *warmed;
    entry["warm_inflight"] = cache.Warming(ns);
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

CacheStateListing::Inputs CacheStateListing::InputsOf(
    const coherence::CacheCoherence& cache, const watermark::ConsistencyWatcher* watcher) {
  Inputs in;
  if (const cache::CacheGuard* guard = cache.guard()) {
    in.connected = guard->connected();
    in.generation = guard->generation();
    in.records_version = guard->namespace_records_version();
  }
  if (watcher) in.watcher_version = watcher->namespaces_version();
  in.warming_version = cache.warming_version();
  return in;
}

uint64_t CacheStateListing::computations() const {
  std::lock_guard lk(mu_);
  return computations_;
}

Task<boost::json::array> CacheStateListing::Get(coherence::CacheCoherence& cache,
                                                const watermark::ConsistencyWatcher* watcher) {
  // Read before computing: a change that lands while the listing is computed leaves the stored
  // inputs behind, so the next call computes again.
  const Inputs inputs = InputsOf(cache, watcher);
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
  boost::json::array fresh = co_await CacheStates(cache, watcher);
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

Task<boost::json::object> HealthBody(const HealthInfo& info) {
  boost::json::object body{
      {"status", "ok"},
      {"version", kVersion},
      {"upstream", boost::json::object{{"kind", info.upstream_kind}, {"url", info.upstream_url}}},
  };
  if (info.cache) {
    body["cache"] = CacheBody(*info.cache);
    if (info.cache_states) {
      body["cache_state"] = co_await info.cache_states->Get(*info.cache, info.watcher);
    } else {
      body["cache_state"] = co_await CacheStates(*info.cache, info.watcher);
    }
  }
  co_return body;
}

}  // namespace

Task<http::Response> HealthResponse(const HealthInfo& info) {
  boost::json::object body = co_await HealthBody(info);
  co_return http::MakeJson(http::Code::ok, body);
}

Task<http::Response> ReadyResponse(const HealthInfo& info) {
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
