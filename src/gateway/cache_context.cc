#include "gateway/cache_context.h"

#include <spdlog/spdlog.h>

#include <charconv>

namespace layer::gateway {

std::optional<cache::IdType> NamespaceIdTypes::Known(std::string_view ns) const {
  std::shared_lock lock(mu_);
  auto it = types_.find(ns);
  if (it == types_.end()) return std::nullopt;
  return it->second;
}

void NamespaceIdTypes::Learn(const std::string& ns, cache::IdType type) {
  std::unique_lock lock(mu_);
  types_[ns] = type;
}

void NamespaceIdTypes::Forget(const std::string& ns) {
  std::unique_lock lock(mu_);
  types_.erase(ns);
}

void PendingInvalidations::UpdateCount() {
  count_.store(ids_.size() + namespaces_.size(), std::memory_order_relaxed);
}

void PendingInvalidations::Add(const std::string& ns, const cache::DocId& id, uint64_t stamp) {
  std::lock_guard lock(mu_);
  auto& s = ids_[Key{ns, id}];
  s = std::max(s, stamp);
  UpdateCount();
}

void PendingInvalidations::AddNamespace(const std::string& ns) {
  std::lock_guard lock(mu_);
  namespaces_.insert(ns);
  UpdateCount();
}

bool PendingInvalidations::Blocks(std::string_view ns, const cache::DocId& id) const {
  if (count_.load(std::memory_order_relaxed) == 0) return false;
  std::lock_guard lock(mu_);
  if (namespaces_.count(ns)) return true;
  return ids_.count(Key{std::string(ns), id}) > 0;
}

bool PendingInvalidations::BlocksNamespace(std::string_view ns) const {
  if (count_.load(std::memory_order_relaxed) == 0) return false;
  std::lock_guard lock(mu_);
  return namespaces_.count(ns) > 0;
}

http::Task<void> PendingInvalidations::Retry(cache::CacheGuard& guard) {
  std::set<std::string, std::less<>> namespaces;
  std::map<Key, uint64_t> ids;
  {
    std::lock_guard lock(mu_);
    namespaces = namespaces_;
    ids = ids_;
  }
  for (const auto& ns : namespaces) {
    Status st = co_await guard.BumpEpoch(ns);
    if (!st.ok()) co_return;  // the cache is still unwell; try again later
    std::lock_guard lock(mu_);
    namespaces_.erase(ns);
    // The bump made every record of the namespace unreachable: its id entries are moot.
    for (auto it = ids_.begin(); it != ids_.end();) {
      it = it->first.ns == ns ? ids_.erase(it) : std::next(it);
    }
    UpdateCount();
  }
  for (const auto& [key, stamp] : ids) {
    Status st = co_await guard.Tombstone(key.ns, key.id, stamp);
    if (!st.ok()) co_return;
    std::lock_guard lock(mu_);
    auto it = ids_.find(key);
    if (it != ids_.end() && it->second <= stamp) ids_.erase(it);
    UpdateCount();
  }
}

void CacheContext::OnCleanMiss(const std::string& ns) {
  if (!guard || !start_warm || !guard->connected()) return;
  const uint64_t generation = guard->generation();
  if (generation < 2) return;  // never reconnected: nothing was lost to warm back
  {
    std::lock_guard lock(reactive_mu_);
    uint64_t& seen = reactive_generation_[ns];
    if (seen >= generation) return;
    seen = generation;
  }
  spdlog::info("first cache miss of '{}' in cache generation {}: starting a background warm", ns,
               generation);
  start_warm(ns);
}

http::Task<std::string_view> CacheStateOf(CacheContext& cache, const std::string& ns,
                                          std::optional<uint64_t>* warmed_through) {
  if (cache.guard) {
    auto rec = co_await cache.guard->GetNamespaceRecord(ns, std::string(kWarmedThroughRecord));
    if (rec.ok() && *rec) {
      uint64_t v = 0;
      if (std::from_chars(rec->value().data(), rec->value().data() + rec->value().size(), v).ec ==
          std::errc()) {
        *warmed_through = v;
      }
    }
  }
  std::string_view state = cache.warming && cache.warming(ns)            ? "warming"
                           : !cache.guard || !cache.guard->connected() ? "cold"
                           : *warmed_through                             ? "warm"
                                                                         : "cold";
  // layer_cache_state{namespace,state}: exactly one state is 1, as of the last evaluation.
  for (std::string_view s : {"cold", "warming", "warm"}) {
    Metrics()
        .GetGauge("layer_cache_state", "Cache state per namespace (1 = current state)",
                  {{"namespace", ns}, {"state", std::string(s)}})
        .Set(s == state ? 1 : 0);
  }
  co_return state;
}

Counter& CacheMetrics::Lookups(std::string_view result) {
  static Counter& hit = Metrics().GetCounter("layer_cache_lookups_total",
                                             "Fetch cache lookups by result", {{"result", "hit"}});
  static Counter& miss = Metrics().GetCounter(
      "layer_cache_lookups_total", "Fetch cache lookups by result", {{"result", "miss"}});
  static Counter& partial = Metrics().GetCounter(
      "layer_cache_lookups_total", "Fetch cache lookups by result", {{"result", "partial"}});
  static Counter& error = Metrics().GetCounter(
      "layer_cache_lookups_total", "Fetch cache lookups by result", {{"result", "error"}});
  if (result == "hit") return hit;
  if (result == "miss") return miss;
  if (result == "partial") return partial;
  return error;
}

}  // namespace layer::gateway
