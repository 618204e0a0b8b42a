// Unauthenticated operations routes: GET /health, GET /ready, GET /metrics (docs/design.md §9.8).
// The health body reports the cache backend, whether it is connected, its connection generation
// and last error; a disconnected cache is probed (bounded by the cache's op timeout).
#pragma once

#include <boost/json/array.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string_view>

#include "coherence/coherence.h"
#include "http/message.h"
#include "watermark/consistency_watcher.h"

namespace layer::gateway {

// The `cache_state` listing of the health body, kept between probes: building it reads the cache
// (the namespace records, through the guard's threads), which a load balancer polling /health
// must not pay for on every probe. Get() recomputes it when its inputs changed — the cache's
// connection state or generation, a namespace record written or dropped through the guard, a
// namespace registered with or forgotten by the watcher, a warm started or ended here — and
// otherwise at most every `max_age` (which bounds how late records written by another replica
// into a shared cache show up). While one caller recomputes after `max_age` alone, others get the
// previous listing. Thread-safe.
class CacheStateListing {
 public:
  using Clock = std::chrono::steady_clock;
  explicit CacheStateListing(std::chrono::milliseconds max_age = std::chrono::milliseconds(100),
                             std::function<Clock::time_point()> now = {});

  // `watcher` (may be null) adds the namespaces it watches to those with a warmed-through record.
  Task<boost::json::array> Get(coherence::CacheCoherence& cache,
                               const watermark::ConsistencyWatcher* watcher = nullptr);

  // Listings computed so far (for tests).
  uint64_t computations() const;

 private:
  struct Inputs {
    bool connected = false;
    uint64_t generation = 0;
    uint64_t records_version = 0;
    uint64_t watcher_version = 0;
    uint64_t warming_version = 0;
    friend bool operator==(const Inputs&, const Inputs&) = default;
  };
  static Inputs InputsOf(const coherence::CacheCoherence& cache,
                         const watermark::ConsistencyWatcher* watcher);
  Clock::time_point Now() const;

  const std::chrono::milliseconds max_age_;
  const std::function<Clock::time_point()> now_;
  mutable std::mutex mu_;  // guards everything below
  std::optional<boost::json::array> listing_;
  Inputs inputs_;  // what listing_ was computed from
  Clock::time_point computed_at_{};
  bool refreshing_ = false;  // a recompute for max_age alone is running
  uint64_t computations_ = 0;
};

struct HealthInfo {
  std::string upstream_kind;  // "turbopuffer" or "embedded_origin"
  std::string upstream_url;
  bool draining = false;
  coherence::CacheCoherence* cache = nullptr;
  const watermark::ConsistencyWatcher* watcher = nullptr;
  CacheStateListing* cache_states = nullptr;  // null: computed afresh for this request
};

// The health body also lists `cache_state` for every namespace the gateway watches or has warmed:
// [{"namespace","state":"cold|warming|warm","warmed_through"?,"warm_inflight"}], by name, as of
// the last computation of `info.cache_states` (see CacheStateListing).
Task<http::Response> HealthResponse(const HealthInfo& info);
// 200 with the health body, or 503 {"status":"draining",...} while draining.
Task<http::Response> ReadyResponse(const HealthInfo& info);
http::Response MetricsResponse();

}  // namespace layer::gateway
