#include "coherence/coherence.h"

#include <spdlog/spdlog.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include <algorithm>
#include <charconv>

#include "common/json_text.h"

namespace layer::coherence {

std::optional<tpuf::IdType> NamespaceTypes::IdType(std::string_view ns) const {
  std::shared_lock lock(mu_);
  auto it = types_.find(ns);
  if (it == types_.end()) return std::nullopt;
  return it->second.id;
}

void NamespaceTypes::LearnIdType(const std::string& ns, tpuf::IdType type) {
  std::unique_lock lock(mu_);
  types_[ns].id = type;
}

std::shared_ptr<const tpuf::AttributeTypes> NamespaceTypes::AttributeTypes(
    std::string_view ns) const {
  std::shared_lock lock(mu_);
  auto it = types_.find(ns);
  if (it == types_.end()) return nullptr;
  return it->second.attributes;
}

void NamespaceTypes::LearnAttributeTypes(const std::string& ns, const tpuf::AttributeTypes& types) {
  if (types.empty()) return;
  std::unique_lock lock(mu_);
  auto& known = types_[ns].attributes;
  bool news = !known;
  for (auto it = types.begin(); !news && it != types.end(); ++it) {
    auto k = known->find(it->first);
    news = k == known->end() || !(k->second == it->second);
  }
  if (!news) return;  // the common case allocates nothing
  // Copy on write: readers keep the map they were handed.
  auto merged = known ? std::make_shared<tpuf::AttributeTypes>(*known)
                      : std::make_shared<tpuf::AttributeTypes>();
  for (const auto& [name, type] : types) (*merged)[name] = type;
  known = std::move(merged);
}

void NamespaceTypes::Forget(const std::string& ns) {
  std::unique_lock lock(mu_);
  types_.erase(ns);
}

void PendingInvalidations::UpdateCount() {
  count_.store(ids_.size() + namespaces_.size(), std::memory_order_relaxed);
}

void PendingInvalidations::Add(const std::string& ns, const tpuf::DocId& id, uint64_t stamp) {
  std::lock_guard lock(mu_);
  auto& s = ids_[Key{ns, id}];
  s = std::max(s, stamp);
  UpdateCount();
}

void PendingInvalidations::AddNamespace(const std::string& ns) {
  std::lock_guard lock(mu_);
  namespaces_[ns] = ++next_seq_;
  UpdateCount();
}

bool PendingInvalidations::Blocks(std::string_view ns, const tpuf::DocId& id) const {
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

Task<void> PendingInvalidations::Retry(cache::CacheGuard& guard) {
  std::map<std::string, uint64_t, std::less<>> namespaces;
  std::map<Key, uint64_t> ids;
  {
    std::lock_guard lock(mu_);
    namespaces = namespaces_;
    ids = ids_;
  }
  std::set<std::string, std::less<>> bumped;
  for (const auto& [ns, seq] : namespaces) {
    Status st = co_await guard.BumpEpoch(ns);
    if (!st.ok()) co_return;  // the cache is still unwell; try again later
    bumped.insert(ns);
    std::lock_guard lock(mu_);
    auto it = namespaces_.find(ns);
    if (it != namespaces_.end() && it->second == seq) namespaces_.erase(it);
    // The bump made every record of the namespace that existed before it unreachable: the ids
    // pending when this retry began are settled. Ids added since keep their entries (a backfill
    // may have landed in the new epoch before their tombstone).
    for (const auto& [key, stamp] : ids) {
      if (key.ns != ns) continue;
      auto id = ids_.find(key);
      if (id != ids_.end() && id->second <= stamp) ids_.erase(id);
    }
    UpdateCount();
  }
  for (const auto& [key, stamp] : ids) {
    if (bumped.count(key.ns)) continue;
    Status st = co_await guard.Tombstone(key.ns, key.id, stamp);
    if (!st.ok()) co_return;
    std::lock_guard lock(mu_);
    auto it = ids_.find(key);
    if (it != ids_.end() && it->second <= stamp) ids_.erase(it);
    UpdateCount();
  }
}

std::string_view CacheHeaderValue(FetchOutcome outcome) {
  switch (outcome) {
    case FetchOutcome::kHit:
      return "hit";
    case FetchOutcome::kMiss:
    case FetchOutcome::kPartial:
      return "miss";
    case FetchOutcome::kMissOnError:
      return "miss-on-error";
  }
  return "miss-on-error";
}

std::string_view MetricLabel(FetchOutcome outcome) {
  switch (outcome) {
    case FetchOutcome::kHit:
      return "hit";
    case FetchOutcome::kMiss:
      return "miss";
    case FetchOutcome::kPartial:
      return "partial";
    case FetchOutcome::kMissOnError:
      return "error";
  }
  return "error";
}

std::string_view CacheStateName(CacheState state) {
  switch (state) {
    case CacheState::kCold:
      return "cold";
    case CacheState::kWarming:
      return "warming";
    case CacheState::kWarm:
      return "warm";
  }
  return "cold";
}

std::string IdKey(const tpuf::DocId& id) {
  std::string k;
  k.reserve(1 + id.bytes.size());
  k += static_cast<char>(id.type);
  k += id.bytes;
  return k;
}

struct CacheCoherence::Metrics {
  explicit Metrics(MetricsRegistry& r)
      : registry(r),
        lookups{&Lookups(r, FetchOutcome::kHit), &Lookups(r, FetchOutcome::kMiss),
                &Lookups(r, FetchOutcome::kPartial), &Lookups(r, FetchOutcome::kMissOnError)},
        backfills_ok(r.GetCounter("layer_cache_backfills_total",
                                  "Rows written into the cache by fetch misses",
                                  {{"status", "ok"}})),
        backfills_error(r.GetCounter("layer_cache_backfills_total",
                                     "Rows written into the cache by fetch misses",
                                     {{"status", "error"}})),
        mirrors_skipped(r.GetCounter("layer_cache_mirrors_skipped_total",
                                     "Writes applied upstream whose cache mirroring failed (ids "
                                     "held as pending invalidations)")),
        pending(r.GetGauge("layer_cache_pending_invalidations",
                           "Invalidations waiting for the cache to come back")) {}

  static Counter& Lookups(MetricsRegistry& r, FetchOutcome outcome) {
    return r.GetCounter("layer_cache_lookups_total", "Fetch cache lookups by result",
                        {{"result", std::string(MetricLabel(outcome))}});
  }

  MetricsRegistry& registry;
  Counter* lookups[4];  // by FetchOutcome
  Counter& backfills_ok;
  Counter& backfills_error;
  Counter& mirrors_skipped;
  Gauge& pending;
};

CacheCoherence::CacheCoherence(std::unique_ptr<cache::CacheGuard> guard, CoherenceOptions options)
    : guard_(std::move(guard)),
      options_(std::move(options)),
      metrics_(std::make_unique<Metrics>(MetricsOr(options_.metrics))),
      partitions_(options_.partitions) {
  last_stamp_.store(options_.stamp_floor);
  stamp_ceiling_.store(options_.stamp_floor);
}

CacheCoherence::~CacheCoherence() = default;

void CacheCoherence::CountLookup(FetchOutcome outcome) {
  metrics_->lookups[static_cast<size_t>(outcome)]->Inc();
}

void CacheCoherence::UpdatePendingGauge() {
  metrics_->pending.Set(static_cast<double>(pending_.size()));
}

void CacheCoherence::SetWarmHooks(std::function<bool(std::string_view)> warming,
                                  std::function<void(const std::string&)> start_warm) {
  warming_ = std::move(warming);
  start_warm_ = std::move(start_warm);
}

// ---- Fetch ----

CacheCoherence::Verdict CacheCoherence::Judge(std::string_view ns, const tpuf::DocId& id,
                                              const std::optional<cache::CachedDoc>& rec) const {
  if (pending_.Blocks(ns, id)) return Verdict::kUntrusted;
  if (!rec || rec->tombstone) return Verdict::kMiss;
  return Verdict::kServe;
}

Task<Result<FetchOneResult>> CacheCoherence::FetchOne(const std::string& ns, const tpuf::DocId& id,
                                                      const RowReader& read) {
  // A write that may change the id is in flight: the upstream may have applied it already (and a
  // query may have seen it), so neither the cached version nor a read begun earlier may answer,
  // and what this read sees is not backfilled (docs/design.md §4.1.2). Checked before the cache
  // is read: a version read from it is then the upstream's as of this check.
  const uint64_t repair_bound = RepairBound();  // before the check below (§4.2.7)
  // A write of the id begun after this is not ordered against what the read sees: the read's
  // backfill is dropped then (docs/design.md §4.1.3). Read before the check for writes in
  // flight, which a write joins before it counts as begun (BeginWrite): a write is either seen
  // in flight or counted after this.
  const uint64_t begun = WritesBegun(ns, id);
  bool writing = WriteInFlight(ns, id);
  bool cache_error = !guard_ || writing;
  uint64_t shared_begun = 0;  // with a shared cache: the lookup's write generation (§4.9)
  // With a shared cache whose lookup failed, writes through other replicas are unknown: the read
  // joins no other (one begun before such a write was acknowledged could answer it).
  bool solo = writing || shared();
  // Just reconnected: other replicas may still be writing what they could not meanwhile (§4.9).
  if (shared() && SharedCacheSettling()) cache_error = true;
  if (guard_ && !cache_error) {
    cache::TryGetResult got;
    if (shared()) {
      // The record and the writes in flight through every replica, in one step (§4.9).
      std::vector<tpuf::DocId> one(1, id);
      auto looked = co_await guard_->Lookup(ns, std::move(one));
      if (!looked.ok()) {
        got.emplace(looked.status());
      } else {
        cache::IntentLookup& entry = (*looked)[0];
        shared_begun = entry.begun;
        writing = entry.write_in_flight;
        solo = writing;
        got.emplace(std::move(entry.record));
      }
    } else {
      // A record in memory is read right here on the I/O thread; anything that needs I/O (or a
      // breaker that is not closed) takes the guarded path with its deadline.
      got = guard_->TryGet(ns, id);
      if (!got) {
        auto slow = co_await guard_->Get(ns, id);
        got.emplace(std::move(slow));
      }
    }
    if (writing) {
      cache_error = true;  // in flight through another replica: as for one through this one
    } else if (!got->ok()) {
      cache_error = true;
    } else {
      std::optional<cache::CachedDoc>& rec = **got;
      switch (Judge(ns, id, rec)) {
        case Verdict::kServe:
          CountLookup(FetchOutcome::kHit);
          co_return FetchOneResult{
              FetchedRow{id.ToJson(), std::move(rec->attributes_json), rec->upserted_at},
              FetchOutcome::kHit};
        case Verdict::kUntrusted:
          cache_error = true;
          break;
        case Verdict::kMiss:
          break;
      }
    }
  }
  const FetchOutcome outcome = cache_error ? FetchOutcome::kMissOnError : FetchOutcome::kMiss;
  CountLookup(outcome);
  if (!cache_error) {
    OnCleanMiss(ns);
    co_await RegisterPartition(ns);  // before the read whose rows it backfills (§9.7)
  }

  // Taken before the upstream read begins (docs/design.md §4.3).
  const uint64_t fence = NamespaceFence(ns);
  const std::string flight_key = FlightKey(ns, id, fence, solo, shared_begun);
  // The flight's leader reads, and backfills once for every caller it answers (unless its own
  // lookup met a cache error; Backfill skips ids that became pending meanwhile).
  auto fetched =
      co_await fetch_flights_.Do(flight_key, [&]() -> Task<Result<std::optional<FetchedRow>>> {
        auto rows = co_await read(std::span<const tpuf::DocId>(&id, 1));
        if (!rows.ok()) co_return rows.status();
        auto it = rows->find(IdKey(id));
        if (it == rows->end()) co_return std::optional<FetchedRow>();
        if (!cache_error) {
          // The backfill runs after the answer: it never adds to the miss's latency.
          std::vector<std::pair<tpuf::DocId, FetchedRow>> fill;
          fill.emplace_back(id, it->second);
          std::vector<uint64_t> fill_begun(1, begun);
          std::vector<uint64_t> fill_shared;
          if (shared()) fill_shared.push_back(shared_begun);
          boost::asio::co_spawn(co_await boost::asio::this_coro::executor,
                                Backfill(ns, std::move(fill), repair_bound, std::move(fill_begun),
                                         std::move(fill_shared), fence),
                                boost::asio::detached);
        }
        co_return std::optional<FetchedRow>(std::move(it->second));
      });
  if (!fetched.ok()) co_return fetched.status();
  co_return FetchOneResult{std::move(*fetched), outcome};
}

Task<Result<FetchManyResult>> CacheCoherence::FetchMany(const std::string& ns,
                                                        std::vector<tpuf::DocId> ids,
                                                        const RowReader& read) {
  FetchManyResult out;
  bool cache_error = !guard_;
  // As in FetchOne, by position in `ids`: whether a write in flight may change the id (then it
  // is read upstream alone, and nothing is backfilled), and WritesBegun() at the lookup.
  std::vector<char> writing(ids.size(), 0);
  std::vector<uint64_t> begun(ids.size());
  const uint64_t repair_bound = RepairBound();  // before the checks below (§4.2.7)
  size_t n_writing = 0;
  for (size_t i = 0; i < ids.size(); ++i) {
    begun[i] = WritesBegun(ns, ids[i]);  // before the check for writes in flight, as in FetchOne
    writing[i] = WriteInFlight(ns, ids[i]) ? 1 : 0;
    n_writing += writing[i];
  }
  std::vector<uint64_t> shared_begun(ids.size(), 0);  // with a shared cache (§4.9)
  // As in FetchOne: unless the shared cache's lookup answered, no miss joins another read.
  bool shared_unknown = shared();
  if (shared() && SharedCacheSettling()) cache_error = true;  // as in FetchOne
  if (guard_ && !cache_error && n_writing < ids.size()) {
    Result<std::vector<std::optional<cache::CachedDoc>>> got = Status::Unavailable("");
    if (shared()) {
      // The records and the writes in flight through every replica, in one step (§4.9).
      std::vector<tpuf::DocId> all = ids;
      auto looked = co_await guard_->Lookup(ns, std::move(all));
      if (!looked.ok()) {
        got = looked.status();
      } else {
        shared_unknown = false;
        std::vector<std::optional<cache::CachedDoc>> recs;
        recs.reserve(ids.size());
        for (size_t i = 0; i < ids.size(); ++i) {
          cache::IntentLookup& entry = (*looked)[i];
          shared_begun[i] = entry.begun;
          if (entry.write_in_flight && !writing[i]) {
            writing[i] = 1;
            ++n_writing;
          }
          recs.push_back(std::move(entry.record));
        }
        got = std::move(recs);
      }
    } else {
      got = co_await guard_->MultiGet(ns, ids);
    }
    if (!got.ok()) {
      cache_error = true;
    } else {
      for (size_t i = 0; i < ids.size(); ++i) {
        if (writing[i]) continue;
        std::optional<cache::CachedDoc>& rec = (*got)[i];
        switch (Judge(ns, ids[i], rec)) {
          case Verdict::kServe:
            out.rows.emplace(
                IdKey(ids[i]),
                FetchedRow{ids[i].ToJson(), std::move(rec->attributes_json), rec->upserted_at});
            break;
          case Verdict::kUntrusted:
            cache_error = true;
            break;
          case Verdict::kMiss:
            break;
        }
      }
    }
  }
  if (n_writing > 0) cache_error = true;
  const size_t hits = out.rows.size();
  std::vector<tpuf::DocId> misses;
  std::vector<size_t> miss_at;  // each miss's position in `ids`
  for (size_t i = 0; i < ids.size(); ++i) {
    if (out.rows.count(IdKey(ids[i]))) continue;
    misses.push_back(std::move(ids[i]));
    miss_at.push_back(i);
  }
  if (!misses.empty()) {
    if (!cache_error) {
      OnCleanMiss(ns);
      co_await RegisterPartition(ns);  // before the read whose rows it backfills (§9.7)
    }
    // The misses join reads already in flight for them (a single fetch's or another batch's,
    // under the same rule as FetchOne) and are read together for the rest.
    const uint64_t fence = NamespaceFence(ns);  // before the upstream read begins (§4.3)
    std::vector<std::string> keys;
    keys.reserve(misses.size());
    for (size_t j = 0; j < misses.size(); ++j) {
      keys.push_back(
          FlightKey(ns, misses[j], fence, writing[miss_at[j]] != 0 || shared_unknown,
                    shared_begun[miss_at[j]]));
    }
    auto read_led = [&](const std::vector<size_t>& led)
        -> Task<std::vector<Result<std::optional<FetchedRow>>>> {
      std::vector<tpuf::DocId> ids;
      ids.reserve(led.size());
      for (size_t i : led) ids.push_back(misses[i]);
      auto rows = co_await read(ids);
      std::vector<Result<std::optional<FetchedRow>>> results;
      results.reserve(led.size());
      if (!rows.ok()) {
        for (size_t j = 0; j < led.size(); ++j) results.emplace_back(rows.status());
        co_return results;
      }
      std::vector<std::pair<tpuf::DocId, FetchedRow>> fill;
      std::vector<uint64_t> fill_begun;
      std::vector<uint64_t> fill_shared;
      for (size_t j = 0; j < ids.size(); ++j) {
        const tpuf::DocId& id = ids[j];
        auto it = rows->find(IdKey(id));
        if (it == rows->end()) {
          results.emplace_back(std::optional<FetchedRow>());
          continue;
        }
        if (!cache_error) {
          fill.emplace_back(id, it->second);
          fill_begun.push_back(begun[miss_at[led[j]]]);
          if (shared()) fill_shared.push_back(shared_begun[miss_at[led[j]]]);
        }
        results.emplace_back(std::optional<FetchedRow>(std::move(it->second)));
      }
      if (!fill.empty()) {
        boost::asio::co_spawn(co_await boost::asio::this_coro::executor,
                              Backfill(ns, std::move(fill), repair_bound,
                                       std::move(fill_begun), std::move(fill_shared), fence),
                              boost::asio::detached);
      }
      co_return results;
    };
    auto fetched = co_await fetch_flights_.DoMany(keys, read_led);
    for (size_t i = 0; i < misses.size(); ++i) {
      if (!fetched[i].ok()) co_return fetched[i].status();
      if (*fetched[i]) out.rows.emplace(IdKey(misses[i]), std::move(**fetched[i]));
    }
  }
  out.outcome = cache_error      ? FetchOutcome::kMissOnError
                : misses.empty() ? FetchOutcome::kHit
                : hits == 0      ? FetchOutcome::kMiss
                                 : FetchOutcome::kPartial;
  CountLookup(out.outcome);
  co_return out;
}

Task<void> CacheCoherence::Backfill(std::string ns,
                                    std::vector<std::pair<tpuf::DocId, FetchedRow>> rows,
                                    uint64_t repair_bound, std::vector<uint64_t> begun,
                                    std::vector<uint64_t> shared_begun, uint64_t fence) {
  std::vector<std::pair<tpuf::DocId, cache::CachedDoc>> docs;
  // A strong read that began with no write to the id in flight (else it would not backfill)
  // reflects every write acknowledged before it began; the repairable tombstones of those are
  // stamped up to `repair_bound`, and every later write's are stamped after it (§4.2.7).
  const bool repair =
      options_.repair && options_.fetch_consistency == FetchConsistency::kStrong;
  for (size_t i = 0; i < rows.size(); ++i) {
    auto& [id, row] = rows[i];
    if (pending_.Blocks(ns, id)) continue;
    // A write that may change the id began after the read's lookup: the upstream may apply it
    // before or after what the read saw, in an order its stamp does not tell (§4.2.6).
    if (WritesBegun(ns, id) != begun[i]) continue;
    cache::CachedDoc doc;
    doc.attributes_json = std::move(row.attributes_json);
    doc.upserted_at = row.stamp;
    doc.repair = repair;
    doc.repair_bound = repair_bound;
    // Writes through other replicas: the shared cache drops the row when one of the id began
    // after the lookup or is in flight (§4.9).
    if (i < shared_begun.size()) doc.read_generation = shared_begun[i];
    docs.emplace_back(std::move(id), std::move(doc));
  }
  if (docs.empty()) co_return;
  size_t n = docs.size();
  auto r = co_await FencedPut(ns, std::move(docs), fence, cache::CacheLane::kRequest);
  if (!r.ok() && r.status().code() == StatusCode::kAborted) co_return;  // fenced out
  (r.ok() ? metrics_->backfills_ok : metrics_->backfills_error).Inc(n);
}

void CacheCoherence::OnCleanMiss(const std::string& ns) {
  if (!guard_ || !start_warm_ || !guard_->connected()) return;
  const uint64_t generation = guard_->generation();
  if (generation < 2) return;  // never reconnected: nothing was lost to warm back
  {
    std::lock_guard lock(reactive_mu_);
    uint64_t& seen = reactive_generation_[ns];
    if (seen >= generation) return;
    seen = generation;
  }
  spdlog::info("first cache miss of '{}' in cache generation {}: starting a background warm", ns,
               generation);
  start_warm_(ns);
}

// ---- Writes ----

// Applies a successful write's effects to the cache. Every id whose effect could not be written
// is held as a pending invalidation; once the cache failed, the rest goes straight there.
class CacheCoherence::Mirror {
 public:
  // `known`: the upstream acknowledged the write (WriteOutcome::outcome_known).
  // `generation`: the write's intent in a shared cache (§4.9), carried by its row puts.
  Mirror(CacheCoherence& core, const std::string& ns, uint64_t stamp, bool known,
         std::optional<uint64_t> generation)
      : core_(core),
        guard_(*core.guard_),
        ns_(ns),
        stamp_(stamp),
        known_(known),
        generation_(generation) {}

  // Tombstones `ids`. `repairable`: the ids' versions are unknown only for their order or their
  // rows (not deleted), so once the write is acknowledged a strong read may repair them (§4.2.7).
  // A repairable tombstone is stamped when the write was acknowledged, not when it was accepted:
  // after RepairBound() of every read that did not see this write in flight, so that no repair
  // of such a read (which may not reflect this write) replaces it (§4.2.7).
  Task<void> Invalidate(const std::vector<tpuf::DocId>& ids, bool repairable) {
    const bool mark = repairable && known_;
    if (ids.empty()) co_return;
    if (mark && ack_stamp_ == 0) ack_stamp_ = core_.NewStampAfter(stamp_);
    const uint64_t stamp = mark ? ack_stamp_ : stamp_;
    for (const auto& id : ids) {
      if (failed_) {
        Fail(id);
        continue;
      }
      Status st = co_await guard_.Tombstone(ns_, id, stamp, mark);
      if (!st.ok()) Fail(id);
    }
  }

  Task<void> Upserts(std::vector<RowEffect>& rows, cache::CacheLane lane) {
    if (rows.empty()) co_return;
    std::vector<std::pair<tpuf::DocId, cache::CachedDoc>> docs;
    for (auto& r : rows) {
      cache::CachedDoc doc;
      doc.attributes_json = r.attributes_json;
      doc.upserted_at = stamp_;
      doc.write_generation = generation_;
      docs.emplace_back(r.id, std::move(doc));
    }
    std::optional<Result<std::vector<bool>>> res;
    if (!failed_) res.emplace(co_await guard_.PutIfNewerBatch(ns_, std::move(docs), lane));
    if (!res || !res->ok()) {
      for (const auto& r : rows) Fail(r.id);
      co_return;
    }
    co_await SupersedeRefused(rows, **res);
    for (auto& r : rows) {
      if (!r.vector_f32 || failed_) continue;
      // Vectors are an optional accelerator; a failure here costs nothing but a miss later.
      (void)co_await guard_.PutVector(ns_, r.id, std::move(*r.vector_f32));
    }
  }

  // Merges each patch into a cached full row; an id with no cached full row is invalidated.
  Task<void> Patches(std::vector<RowEffect>& rows, cache::CacheLane lane) {
    if (rows.empty()) co_return;
    std::vector<tpuf::DocId> ids;
    for (const auto& r : rows) ids.push_back(r.id);
    if (failed_) {
      for (const auto& id : ids) Fail(id);
      co_return;
    }
    auto got = co_await guard_.MultiGet(ns_, ids);
    if (!got.ok()) {
      for (const auto& id : ids) Fail(id);
      co_return;
    }
    std::vector<std::pair<tpuf::DocId, cache::CachedDoc>> merged;
    std::vector<tpuf::DocId> absent;
    for (size_t i = 0; i < rows.size(); ++i) {
      auto& rec = (*got)[i];
      boost::system::error_code ec;
      // Read with exact doubles: the merged row is written out again (docs/design.md §4.2.8).
      boost::json::value base = rec && !rec->tombstone ? ParseJson(rec->attributes_json, ec)
                                                       : boost::json::value();
      boost::json::value patch = ParseJson(rows[i].attributes_json, ec);
      if (!base.is_object() || !patch.is_object()) {
        absent.push_back(rows[i].id);
        continue;
      }
      // As the upstream merges: a value replaces the attribute's in its place, a new attribute
      // goes last, a null removes the attribute and leaves the others in their order.
      for (const auto& [k, v] : patch.as_object()) {
        if (v.is_null()) {
          base.as_object().stable_erase(k);
        } else {
          base.as_object()[k] = v;
        }
      }
      cache::CachedDoc doc;
      doc.attributes_json = SerializeJson(base);
      doc.upserted_at = stamp_;
      doc.write_generation = generation_;
      merged.emplace_back(rows[i].id, std::move(doc));
    }
    if (!merged.empty()) {
      auto res = co_await guard_.PutIfNewerBatch(ns_, merged, lane);
      if (!res.ok()) {
        for (const auto& [id, doc] : merged) Fail(id);
      } else {
        co_await SupersedeRefused(merged, *res);
      }
    }
    co_await Invalidate(absent, /*repairable=*/true);
  }

  bool failed() const { return failed_; }
  // Some put was refused by a newer record, and the id invalidated.
  bool superseded() const { return superseded_; }

 private:
  static const tpuf::DocId& IdOf(const RowEffect& r) { return r.id; }
  static const tpuf::DocId& IdOf(const std::pair<tpuf::DocId, cache::CachedDoc>& d) {
    return d.first;
  }

  // The puts `stored` refused: a record with a newer stamp is there, from a write whose order
  // against this one the gateway cannot know (docs/design.md §4.2.6). Neither version may be
  // served: the record is removed, then older versions are blocked with this write's stamp.
  template <typename Row>
  Task<void> SupersedeRefused(const std::vector<Row>& rows, const std::vector<bool>& stored) {
    std::vector<tpuf::DocId> refused;
    for (size_t i = 0; i < rows.size() && i < stored.size(); ++i) {
      if (!stored[i]) refused.push_back(IdOf(rows[i]));
    }
    if (refused.empty()) co_return;
    superseded_ = true;
    Status removed = co_await guard_.Invalidate(ns_, std::vector<tpuf::DocId>(refused));
    if (!removed.ok()) {
      for (const auto& id : refused) Fail(id);
      co_return;
    }
    co_await Invalidate(refused, /*repairable=*/true);
  }

  void Fail(const tpuf::DocId& id) {
    if (!failed_) core_.metrics_->mirrors_skipped.Inc();
    failed_ = true;
    core_.pending_.Add(ns_, id, stamp_);
    core_.UpdatePendingGauge();
  }

  CacheCoherence& core_;
  cache::CacheGuard& guard_;
  const std::string& ns_;
  uint64_t stamp_;
  uint64_t ack_stamp_ = 0;  // of repairable tombstones, taken at the first one
  bool known_;
  std::optional<uint64_t> generation_;
  bool failed_ = false;
  bool superseded_ = false;
};

size_t CacheCoherence::IdStripe(std::string_view ns, const tpuf::DocId& id) {
  // By the partition's namespace: every tenant's partition of it shares the stripes (§9.7).
  size_t h = std::hash<std::string_view>()(PartitionNamespace(ns)) * 31 +
             std::hash<std::string_view>()(id.bytes);
  return (h + static_cast<size_t>(id.type)) % kWriteStripes;
}

std::string InFlightIds::Key(std::string_view ns, const tpuf::DocId& id) {
  // By the partition's namespace: a write through one tenant's partition holds back the id in
  // every partition of the namespace (§9.7).
  std::string key(PartitionNamespace(ns));
  key += '\0';
  key += IdKey(id);
  return key;
}

InFlightIds::Shard& InFlightIds::ShardOf(const std::string& key) const {
  return shards_[std::hash<std::string>()(key) % kShards];
}

void InFlightIds::Add(std::string_view ns, const std::vector<tpuf::DocId>& ids) {
  // Counted before the ids are inserted, so Contains() never skips an inserted id.
  entries_.fetch_add(ids.size());
  for (const auto& id : ids) {
    std::string key = Key(ns, id);
    Shard& shard = ShardOf(key);
    std::lock_guard lock(shard.mu);
    ++shard.count[std::move(key)];
  }
}

void InFlightIds::Remove(std::string_view ns, const std::vector<tpuf::DocId>& ids) {
  for (const auto& id : ids) {
    std::string key = Key(ns, id);
    Shard& shard = ShardOf(key);
    std::lock_guard lock(shard.mu);
    auto it = shard.count.find(key);
    if (it != shard.count.end() && --it->second == 0) shard.count.erase(it);
  }
  entries_.fetch_sub(ids.size());
}

bool InFlightIds::Contains(std::string_view ns, const tpuf::DocId& id) const {
  if (entries_.load() == 0) return false;
  std::string key = Key(ns, id);
  Shard& shard = ShardOf(key);
  std::lock_guard lock(shard.mu);
  return shard.count.count(key) > 0;
}

size_t CacheCoherence::NsStripe(std::string_view ns) {
  // By the partition's namespace: every tenant's partition of it shares the stripe (§9.7).
  return std::hash<std::string_view>()(PartitionNamespace(ns)) % kWriteStripes;
}

std::atomic<uint64_t>& CacheCoherence::IdWrites(std::string_view ns, const tpuf::DocId& id) {
  return id_writes_[IdStripe(ns, id)];
}

uint64_t CacheCoherence::NewStamp() { return NewStampAfter(0); }

uint64_t CacheCoherence::NewStampAfter(uint64_t floor) {
  const uint64_t wall = static_cast<uint64_t>(ClockOr(options_.clock).WallMs());
  uint64_t last = last_stamp_.load();
  uint64_t next;
  do {
    next = std::max({wall, last + 1, floor});
  } while (!last_stamp_.compare_exchange_weak(last, next));
  if (options_.persist_stamp_ceiling && next > stamp_ceiling_.load()) RaiseStampCeiling(next);
  return next;
}

void CacheCoherence::AdoptStamp(uint64_t stamp) {
  uint64_t last = last_stamp_.load();
  while (last < stamp && !last_stamp_.compare_exchange_weak(last, stamp)) {
  }
  if (options_.persist_stamp_ceiling && stamp > stamp_ceiling_.load()) RaiseStampCeiling(stamp);
}

void CacheCoherence::RaiseStampCeiling(uint64_t stamp) {
  // Rare (once per kStampLeaseMs of stamps); a caller whose stamp passed the ceiling waits here
  // until a ceiling above it is durable.
  std::lock_guard lock(stamp_ceiling_mu_);
  if (stamp <= stamp_ceiling_.load()) return;
  const uint64_t ceiling = stamp + kStampLeaseMs;
  if (Status st = options_.persist_stamp_ceiling(ceiling); !st.ok()) {
    spdlog::error("the write stamp ceiling could not be stored ({}); a gateway restarted on this "
                  "data dir may stamp below this one", st.ToString());
  }
  stamp_ceiling_.store(ceiling);
}

std::unique_ptr<CacheCoherence::WriteTicket> CacheCoherence::BeginWrite(
    std::string_view ns, const std::vector<tpuf::DocId>& ids, bool whole_namespace) {
  std::unique_ptr<WriteTicket> t(new WriteTicket(*this));
  const size_t s = NsStripe(ns);
  t->ns_ = std::string(ns);
  t->ns_stripe_ = s;
  t->any_begun_after_ = begun_any_writes_[s].fetch_add(1) + 1;
  t->any_overlapped_ = active_any_writes_[s].fetch_add(1) > 0;
  // Past this many ids, registering each costs more than it saves (docs/design.md §4.2.2).
  t->whole_namespace_ = whole_namespace || ids.size() > kMaxIdInvalidations;
  if (t->whole_namespace_) {
    // In flight before counted as begun, as an id write joins InFlightIds before its stripes
    // count it: a fetch that reads the begun count, then checks for writes in flight, sees
    // every write in one or the other (FetchOne).
    active_ns_writes_[s].fetch_add(1);
    begun_ns_writes_[s].fetch_add(1);
    return t;
  }
  t->ns_begun_at_ = begun_ns_writes_[s].load();
  t->ns_overlapped_ = active_ns_writes_[s].load() > 0;
  in_flight_ids_.Add(ns, ids);
  t->ids_ = ids;
  for (const auto& id : ids) t->stripes_.push_back(IdStripe(ns, id));
  std::sort(t->stripes_.begin(), t->stripes_.end());
  t->stripes_.erase(std::unique(t->stripes_.begin(), t->stripes_.end()), t->stripes_.end());
  for (size_t s : t->stripes_) {
    t->begun_after_.push_back(begun_writes_[s].fetch_add(1) + 1);
    t->overlapped_.push_back(active_writes_[s].fetch_add(1) > 0);
  }
  return t;
}

CacheCoherence::WriteTicket::~WriteTicket() {
  if (shared_generation_ && !keep_intent_ && executor_) {
    boost::asio::co_spawn(*executor_,
                          core_.EndIntent(ns_, std::move(shared_ids_), whole_namespace_,
                                               *shared_generation_),
                          boost::asio::detached);
  }
  if (whole_namespace_) {
    core_.active_ns_writes_[ns_stripe_].fetch_sub(1);
    core_.ended_ns_writes_[ns_stripe_].fetch_add(1);
  }
  core_.in_flight_ids_.Remove(ns_, ids_);
  for (size_t s : stripes_) {
    core_.active_writes_[s].fetch_sub(1);
    core_.ended_writes_[s].fetch_add(1);
  }
  core_.active_any_writes_[ns_stripe_].fetch_sub(1);
}

bool CacheCoherence::SharedCacheSettling() const {
  // Not after the first connection: no outage, nothing another replica could not write.
  return guard_->generation() >= 2 &&
         std::chrono::steady_clock::now() - guard_->connected_at() <
             options_.shared_reconnect_grace;
}

Task<uint64_t> CacheCoherence::ShareWrite(WriteTicket& ticket, uint64_t stamp) {
  if (!shared()) co_return stamp;
  ticket.executor_ = co_await boost::asio::this_coro::executor;
  std::vector<tpuf::DocId> ids;
  if (!ticket.whole_namespace_) {
    std::set<std::string> seen;
    for (const auto& id : ticket.ids_) {
      if (seen.insert(IdKey(id)).second) ids.push_back(id);
    }
  }
  auto started = co_await guard_->BeginIntent(ticket.ns_, ids, ticket.whole_namespace_, stamp,
                                              options_.shared_write_deadline);
  if (!started.ok()) {
    // Other replicas cannot know of this write: none of its rows is mirrored (§4.9).
    spdlog::warn("registering a write to '{}' in the shared cache failed ({}); its ids are "
                 "invalidated instead of mirrored",
                 ticket.ns_, started.status().ToString());
    ticket.shared_failed_ = true;
    co_return stamp;
  }
  ticket.shared_generation_ = started->generation;
  if (ticket.whole_namespace_) {
    ticket.shared_ns_overlapped_ = !started->overlapped.empty() && started->overlapped[0];
  } else {
    for (size_t i = 0; i < ids.size() && i < started->overlapped.size(); ++i) {
      if (started->overlapped[i]) ticket.shared_overlapped_.insert(IdKey(ids[i]));
    }
  }
  ticket.shared_ids_ = std::move(ids);
  if (started->stamp != stamp) AdoptStamp(started->stamp);
  co_return started->stamp;
}

Task<void> CacheCoherence::EndSharedWrite(WriteTicket& ticket) {
  if (!ticket.shared_generation_ || ticket.keep_intent_) co_return;
  const uint64_t generation = *std::exchange(ticket.shared_generation_, std::nullopt);
  co_await EndIntent(ticket.ns_, std::move(ticket.shared_ids_), ticket.whole_namespace_,
                     generation);
}

Task<void> CacheCoherence::EndIntent(std::string ns, std::vector<tpuf::DocId> ids, bool whole,
                                     uint64_t generation) {
  Status st = co_await guard_->EndIntent(ns, std::move(ids), whole, generation);
  if (!st.ok()) {
    // The intent stays until its deadline; lookups then invalidate what it names (§4.9).
    spdlog::warn("ending a write intent of '{}' in the shared cache failed ({})", ns,
                 st.ToString());
  }
}

Task<void> CacheCoherence::HoldUnknownWrite(std::unique_ptr<WriteTicket> ticket) {
  boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor);
  timer.expires_after(options_.unknown_write_hold);
  co_await timer.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
  ticket.reset();
}

uint64_t CacheCoherence::WritesBegun(std::string_view ns, const tpuf::DocId& id) const {
  return begun_writes_[IdStripe(ns, id)].load() + begun_ns_writes_[NsStripe(ns)].load();
}

bool CacheCoherence::WriteInFlight(std::string_view ns, const tpuf::DocId& id) const {
  return active_ns_writes_[NsStripe(ns)].load() > 0 || in_flight_ids_.Contains(ns, id);
}

bool CacheCoherence::WriteTicket::Overlapped(std::string_view ns, const tpuf::DocId& id) const {
  // Through other replicas (§4.9): this write could not be registered, or another was in flight.
  if (shared_failed_ || shared_ns_overlapped_) return true;
  if (!shared_overlapped_.empty() && shared_overlapped_.count(IdKey(id))) return true;
  if (whole_namespace_) {
    // Its ids were not registered one by one: any other write of the namespace may have touched
    // them.
    return any_overlapped_ || core_.begun_any_writes_[ns_stripe_].load() != any_begun_after_;
  }
  // A whole-namespace write (by filter, say) in flight when this began, or begun since, may have
  // changed any id: its order against this one upstream is unknown.
  if (ns_overlapped_ || core_.begun_ns_writes_[ns_stripe_].load() != ns_begun_at_) return true;
  const size_t stripe = IdStripe(ns, id);
  auto it = std::lower_bound(stripes_.begin(), stripes_.end(), stripe);
  // An id the write did not register is treated as overlapped: nothing is known of its order.
  if (it == stripes_.end() || *it != stripe) return true;
  const size_t i = static_cast<size_t>(it - stripes_.begin());
  return overlapped_[i] || core_.begun_writes_[stripe].load() != begun_after_[i];
}

std::string CacheCoherence::FlightKey(std::string_view ns, const tpuf::DocId& id,
                                      uint64_t fence, bool solo, uint64_t shared_begun) {
  if (solo) return "\x01solo:" + std::to_string(solo_reads_.fetch_add(1));
  // The flight is of this id as of the last write acknowledged for it and the namespace's fence:
  // a read that began before such a write is not joined.
  std::string key(ns);
  key += '\0';
  key += IdKey(id);
  key += '\0';
  key += std::to_string(IdWrites(ns, id).load(std::memory_order_acquire));
  key += '.';
  key += std::to_string(fence);
  key += '.';
  key += std::to_string(shared_begun);
  return key;
}

std::atomic<uint64_t>& CacheCoherence::NsWrites(std::string_view ns) {
  return ns_writes_[NsStripe(ns)];
}

Task<bool> CacheCoherence::ApplyWrite(const std::string& ns, WriteOutcome outcome,
                                      const WriteTicket* ticket) {
  // Rows whose form upstream is unknown (docs/design.md §4.2.8), and rows of ids another write
  // overlapped (the upstream's order of the two is unknown, §4.2.6): the id holds no cached
  // version (a repairable tombstone with this write's stamp, §4.2.7) until a read repairs it.
  std::vector<tpuf::DocId> overlapped_ids;
  for (auto* rows : {&outcome.upserts, &outcome.patches}) {
    auto not_mirrored = [&](const RowEffect& r) {
      return r.form_unknown || (ticket && ticket->Overlapped(ns, r.id));
    };
    for (const RowEffect& r : *rows) {
      if (not_mirrored(r)) overlapped_ids.push_back(r.id);
    }
    rows->erase(std::remove_if(rows->begin(), rows->end(), not_mirrored), rows->end());
  }
  // Acknowledged: from now on no fetch joins a read that began before this write.
  for (const auto* effects : {&outcome.upserts, &outcome.patches}) {
    for (const RowEffect& r : *effects) IdWrites(ns, r.id).fetch_add(1, std::memory_order_acq_rel);
  }
  for (const auto* ids : {&outcome.deletes, &overlapped_ids}) {
    for (const tpuf::DocId& id : *ids) IdWrites(ns, id).fetch_add(1, std::memory_order_acq_rel);
  }
  // A u64 id, or a string that is not a UUID, tells the namespace's id type unambiguously.
  if (!types_.IdType(ns)) {
    const tpuf::DocId* first = !outcome.upserts.empty()   ? &outcome.upserts.front().id
                               : !outcome.patches.empty() ? &outcome.patches.front().id
                               : !outcome.deletes.empty() ? &outcome.deletes.front()
                                                          : nullptr;
    if (first) types_.LearnIdType(ns, first->type);
  }
  if (!guard_) co_return true;
  co_await RegisterPartition(ns);
  // Other tenants' partitions first: nothing of this write may be missing there once it is
  // acknowledged, whatever this partition's own mirror does below.
  bool siblings_ok = co_await InvalidateSiblings(ns, outcome, overlapped_ids);
  if (outcome.kind == WriteOutcome::Kind::kInvalidateNamespace ||
      outcome.deletes.size() + overlapped_ids.size() > kMaxIdInvalidations) {
    // Past kMaxIdInvalidations tombstones (they go one id at a time), one O(1) namespace
    // invalidation is both quicker and kinder to other requests (docs/design.md §4.2.2).
    const bool ok = co_await InvalidateNamespace(ns) && siblings_ok;
    if (!ok && ticket) ticket->keep_intent_ = true;  // as below
    co_return ok;
  }
  Mirror mirror(*this, ns, outcome.stamp, outcome.outcome_known,
                ticket ? ticket->shared_generation_ : std::nullopt);
  // Deletes, and the ids of a write whose outcome or rows are unknown, are never repaired: the
  // tombstone refuses older rows (a lagging or late upstream) until it expires.
  co_await mirror.Invalidate(outcome.deletes, /*repairable=*/false);
  co_await mirror.Invalidate(overlapped_ids, /*repairable=*/true);
  // Large writes are mirrored in bounded batches on the bulk lane: they neither hold the request
  // lane nor run into its deadline (which would open the breaker).
  const cache::CacheLane lane = outcome.upserts.size() + outcome.patches.size() > kMirrorBatch
                                    ? cache::CacheLane::kBulk
                                    : cache::CacheLane::kRequest;
  for (auto [rows, merge] : {std::pair{&outcome.upserts, false}, {&outcome.patches, true}}) {
    for (size_t i = 0; i < rows->size(); i += kMirrorBatch) {
      auto first = rows->begin() + static_cast<std::ptrdiff_t>(i);
      auto last = rows->begin() + static_cast<std::ptrdiff_t>(std::min(rows->size(), i + kMirrorBatch));
      std::vector<RowEffect> batch(std::make_move_iterator(first), std::make_move_iterator(last));
      if (merge) {
        co_await mirror.Patches(batch, lane);
      } else {
        co_await mirror.Upserts(batch, lane);
      }
    }
  }
  bool ok = !mirror.failed() && siblings_ok;
  if (outcome.has_untyped_ids) {
    // Ids the gateway cannot key: the namespace cannot be trusted in the cache any more.
    ok = co_await InvalidateNamespace(ns) && ok;
  }
  // Effects left pending here: the write's shared intent stays, so that other replicas do not
  // serve what it names, and invalidate it once the intent's deadline passed (§4.9).
  if (!ok && ticket) ticket->keep_intent_ = true;
  // Ids left without their row: a cache scan no longer answers for the namespace (§7.8).
  if (!ok || outcome.kind != WriteOutcome::Kind::kRows || !outcome.outcome_known ||
      !overlapped_ids.empty() || mirror.superseded()) {
    co_await NoteRowsUnknown(ns, outcome.stamp, /*siblings=*/false);
  }
  if (!outcome.upserts.empty() || !outcome.patches.empty() || !outcome.deletes.empty() ||
      !overlapped_ids.empty()) {
    co_await NoteRowsUnknown(ns, outcome.stamp, /*siblings=*/true);  // invalidated there
  }
  co_return ok;
}

Task<bool> CacheCoherence::InvalidateNamespace(const std::string& ns) {
  // Moving the fence first: every read that began before it is now either put already, in
  // flight (waited for below) or dropped by FencedPut. seq_cst pairs with FencedPut's order.
  NsWrites(ns).fetch_add(1);
  if (!guard_) co_return true;
  std::atomic<uint64_t>& puts = NsPuts(ns);
  if (puts.load() > 0) {
    boost::asio::steady_timer wait(co_await boost::asio::this_coro::executor);
    while (puts.load() > 0) {
      wait.expires_after(std::chrono::milliseconds(1));
      co_await wait.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
    }
  }
  Status st = co_await guard_->BumpEpoch(ns);
  if (st.ok()) co_return true;
  spdlog::warn("cache epoch bump of '{}' failed ({}); held as pending", ns, st.ToString());
  pending_.AddNamespace(ns);
  UpdatePendingGauge();
  co_return false;
}

namespace {

// Counts a fenced put in flight for as long as it lives (a named class: see SingleFlight).
class PutInFlight {
 public:
  explicit PutInFlight(std::atomic<uint64_t>& count) : count_(count) { count_.fetch_add(1); }
  PutInFlight(const PutInFlight&) = delete;
  PutInFlight& operator=(const PutInFlight&) = delete;
  ~PutInFlight() { count_.fetch_sub(1); }

 private:
  std::atomic<uint64_t>& count_;
};

}  // namespace

Task<Result<std::vector<bool>>> CacheCoherence::FencedPut(
    const std::string& ns, std::vector<std::pair<tpuf::DocId, cache::CachedDoc>> docs,
    uint64_t fence, cache::CacheLane lane) {
  if (!guard_) co_return Status::Unavailable("no document cache");
  PutInFlight in_flight(NsPuts(ns));
  if (NsWrites(ns).load() != fence) {
    co_return Status::Aborted("the namespace was invalidated after these rows were read");
  }
  co_return co_await guard_->PutIfNewerBatch(ns, std::move(docs), lane);
}

std::atomic<uint64_t>& CacheCoherence::NsPuts(std::string_view ns) {
  return ns_puts_[std::hash<std::string_view>()(PartitionNamespace(ns)) % kWriteStripes];
}

Task<void> CacheCoherence::NamespaceDeleted(const std::string& ns) {
  types_.Forget(ns);
  (void)co_await InvalidateNamespace(ns);
  for (const std::string& sibling : SiblingPartitions(ns)) {
    types_.Forget(sibling);
    (void)co_await InvalidateNamespace(sibling);
  }
}

// ---- Tenants' partitions ----

Result<PartitionRegistry> ReadPartitionRegistry(cache::DocumentCache& cache) {
  auto records = cache.ListNamespaceRecords(kPartitionsRecord);
  if (!records.ok()) return records.status();
  PartitionRegistry out;
  for (const auto& [name, value] : *records) {
    // Registry records live on "<namespace>@" (PartitionRegistryName).
    if (name.empty() || name.back() != kPartitionSeparator) continue;
    std::set<std::string>& tags = out[name.substr(0, name.size() - 1)];
    size_t start = 0;
    while (start < value.size()) {
      size_t end = value.find('\n', start);
      if (end == std::string::npos) end = value.size();
      if (end > start) tags.insert(value.substr(start, end - start));
      start = end + 1;
    }
  }
  return out;
}

Task<void> CacheCoherence::RegisterPartition(const std::string& partition) {
  const PartitionParts parts = SplitPartition(partition);
  if (parts.tag.empty() || !guard_) co_return;
  {
    std::lock_guard lock(partitions_mu_);
    auto& tags = partitions_[std::string(parts.ns)];
    if (!tags.emplace(parts.tag).second) co_return;  // known already
    unsaved_partitions_.emplace(parts.ns);
    registry_unsaved_.store(true);
  }
  // In this process the registry in memory is the truth from here on; the cache's copy is what a
  // restart reads (and a clean stop with it unsaved discards the cache, like pending
  // invalidations).
  (void)co_await SavePartitions(std::string(parts.ns));
}

Task<bool> CacheCoherence::SavePartitions(std::string ns) {
  {
    std::lock_guard lock(partitions_mu_);
    // One save of a namespace's registry at a time, so that an older list never lands after a
    // newer one: a registration during it leaves the namespace unsaved, and the save goes again.
    if (!saving_partitions_.insert(ns).second) co_return true;
  }
  bool saved = true;
  for (;;) {
    std::string value;
    {
      std::lock_guard lock(partitions_mu_);
      if (!unsaved_partitions_.count(ns)) break;
      unsaved_partitions_.erase(ns);
      for (const std::string& tag : partitions_[ns]) {
        value += tag;
        value += '\n';
      }
    }
    Status st = co_await guard_->PutNamespaceRecord(PartitionRegistryName(ns),
                                                    std::string(kPartitionsRecord), value);
    if (!st.ok()) {
      spdlog::warn("saving the partition registry of '{}' failed: {}; retried later", ns,
                   st.ToString());
      std::lock_guard lock(partitions_mu_);
      unsaved_partitions_.insert(ns);
      saved = false;
      break;
    }
  }
  std::lock_guard lock(partitions_mu_);
  saving_partitions_.erase(ns);
  registry_unsaved_.store(!unsaved_partitions_.empty());
  co_return saved;
}

std::vector<std::string> CacheCoherence::SiblingPartitions(std::string_view partition) const {
  const PartitionParts parts = SplitPartition(partition);
  std::vector<std::string> out;
  std::lock_guard lock(partitions_mu_);
  auto it = partitions_.find(parts.ns);
  if (it != partitions_.end()) {
    for (const std::string& tag : it->second) {
      if (tag != parts.tag) out.push_back(PartitionName(parts.ns, tag));
    }
  }
  // The one tenant's partition, if the cache has one, is the namespace's own name; it is never
  // registered, and a cache never holds both kinds (start-up resets it when the tenancy changes).
  return out;
}

Task<bool> CacheCoherence::InvalidateSiblings(const std::string& ns, const WriteOutcome& outcome,
                                              const std::vector<tpuf::DocId>& unmirrored) {
  std::vector<std::string> siblings = SiblingPartitions(ns);
  if (siblings.empty()) co_return true;
  std::vector<tpuf::DocId> rows = unmirrored;  // ids whose rows the write set: repairable there
  for (const auto* effects : {&outcome.upserts, &outcome.patches}) {
    for (const RowEffect& r : *effects) rows.push_back(r.id);
  }
  const bool whole = outcome.kind == WriteOutcome::Kind::kInvalidateNamespace ||
                     outcome.has_untyped_ids ||
                     rows.size() + outcome.deletes.size() > kMaxIdInvalidations;
  bool ok = true;
  for (const std::string& sibling : siblings) {
    if (whole) {
      ok = co_await InvalidateNamespace(sibling) && ok;
      continue;
    }
    // What this write did is unknown there (another key may see other rows): no version from
    // before it may be served, as for a write whose outcome is unknown (§4.2.5).
    Mirror mirror(*this, sibling, outcome.stamp, outcome.outcome_known, std::nullopt);
    co_await mirror.Invalidate(outcome.deletes, /*repairable=*/false);
    co_await mirror.Invalidate(rows, /*repairable=*/true);
    ok = !mirror.failed() && ok;
  }
  co_return ok;
}

Task<void> CacheCoherence::RetryPending() {
  if (!guard_) co_return;
  if (registry_unsaved_.load()) {
    std::vector<std::string> unsaved;
    {
      std::lock_guard lock(partitions_mu_);
      unsaved.assign(unsaved_partitions_.begin(), unsaved_partitions_.end());
    }
    for (std::string& ns : unsaved) {
      if (!co_await SavePartitions(std::move(ns))) break;
    }
  }
  if (pending_.size() == 0) co_return;
  co_await pending_.Retry(*guard_);
  UpdatePendingGauge();
}

// ---- Warm pages ----

Task<std::shared_ptr<const CacheCoherence::WarmReadMark>> CacheCoherence::MarkWarmRead(
    std::string ns) {
  auto mark = std::make_shared<WarmReadMark>();
  mark->fence_ = ns_writes_[NsStripe(ns)].load();
  mark->ns_ended_ = ended_ns_writes_[NsStripe(ns)].load();
  mark->ended_.resize(kWriteStripes);
  for (size_t s = 0; s < kWriteStripes; ++s) mark->ended_[s] = ended_writes_[s].load();
  if (shared()) {
    mark->shared_ = true;
    auto gen = co_await guard_->Generation(ns);
    if (gen.ok()) mark->shared_generation_ = *gen;
  }
  co_return mark;
}

Task<Result<std::vector<bool>>> CacheCoherence::PutWarmPage(
    const std::string& ns, std::vector<std::pair<tpuf::DocId, cache::CachedDoc>> docs,
    std::shared_ptr<const WarmReadMark> mark) {
  // The writes begun now equal the writes ended at the mark (ended never passes begun) only if
  // every write begun by now had ended by then: none was in flight during the read or began since.
  const bool ns_written = begun_ns_writes_[NsStripe(ns)].load() != mark->ns_ended_;
  std::erase_if(docs, [&](const std::pair<tpuf::DocId, cache::CachedDoc>& d) {
    const size_t s = IdStripe(ns, d.first);
    return ns_written || begun_writes_[s].load() != mark->ended_[s];
  });
  if (mark->shared_) {
    // Writes through other replicas: the shared cache drops the rows of ids written since (§4.9).
    if (!mark->shared_generation_) {
      co_return Status::Unavailable("the shared cache's write generation could not be read");
    }
    for (auto& d : docs) d.second.read_generation = *mark->shared_generation_;
  }
  if (docs.empty()) co_return std::vector<bool>();
  co_return co_await FencedPut(ns, std::move(docs), mark->fence_, cache::CacheLane::kBulk);
}

Task<Status> CacheCoherence::RecordWarmedThrough(const std::string& ns, uint64_t watermark_ms) {
  if (!guard_) co_return Status::Unavailable("no document cache");
  co_return co_await guard_->PutNamespaceRecord(ns, std::string(kWarmedThroughRecord),
                                                std::to_string(watermark_ms));
}

Task<Status> CacheCoherence::RecordLatestSnapshot(const std::string& ns, std::string body) {
  if (!guard_) co_return Status::Unavailable("no document cache");
  co_return co_await guard_->PutNamespaceRecord(ns, std::string(kLatestSnapshotRecord),
                                                std::move(body));
}

Task<std::optional<std::string>> CacheCoherence::LatestSnapshot(const std::string& ns) {
  if (!guard_) co_return std::nullopt;
  auto rec = co_await guard_->GetNamespaceRecord(ns, std::string(kLatestSnapshotRecord));
  if (!rec.ok()) co_return std::nullopt;
  co_return std::move(*rec);
}

Task<bool> CacheCoherence::Available() {
  if (!guard_) co_return false;
  co_return (co_await guard_->Ping()).ok();
}

// ---- Cache scans ----

namespace {

std::optional<uint64_t> RecordMs(const Result<std::optional<std::string>>& rec) {
  if (!rec.ok() || !*rec) return std::nullopt;
  uint64_t v = 0;
  const std::string& text = **rec;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || p != text.data() + text.size()) return std::nullopt;
  return v;
}

}  // namespace

Task<void> CacheCoherence::NoteRowsUnknown(const std::string& ns, uint64_t stamp, bool siblings) {
  std::vector<std::string> targets;
  if (siblings) {
    targets = SiblingPartitions(ns);
  } else {
    targets.push_back(ns);
  }
  for (const std::string& target : targets) {
    {
      std::lock_guard lock(rows_unknown_mu_);
      uint64_t& at = rows_unknown_[target];
      at = std::max(at, stamp);
    }
    std::string key(kRowsUnknownRecord);
    std::string value = std::to_string(stamp);
    Status st = co_await guard_->PutNamespaceRecord(target, std::move(key), std::move(value));
    if (!st.ok()) {
      spdlog::warn("recording that rows of '{}' were invalidated in the cache failed: {}", target,
                   st.ToString());
    }
  }
}

Task<Result<uint64_t>> CacheCoherence::WholeNamespace(const std::string& ns) {
  if (!guard_) co_return Status::Unavailable("the gateway runs without a document cache");
  std::string ct_key(kWarmedThroughRecord);
  auto ct_rec = co_await guard_->GetNamespaceRecord(ns, std::move(ct_key));
  if (!ct_rec.ok() || !guard_->connected()) {
    co_return Status::Unavailable("the document cache is not connected");
  }
  if (Warming(ns)) co_return Status::Unavailable("a warm of the namespace is running");
  std::optional<uint64_t> ct = RecordMs(ct_rec);
  if (!ct) co_return Status::Unavailable("no warm of the namespace has completed");
  if (pending_invalidations() > 0) {
    co_return Status::Unavailable("invalidations the cache has not taken yet are pending");
  }
  std::string unknown_key(kRowsUnknownRecord);
  auto unknown_rec = co_await guard_->GetNamespaceRecord(ns, std::move(unknown_key));
  if (!unknown_rec.ok()) co_return Status::Unavailable("the document cache is not connected");
  std::optional<uint64_t> at = RecordMs(unknown_rec);
  {
    std::lock_guard lock(rows_unknown_mu_);
    auto it = rows_unknown_.find(ns);
    if (it != rows_unknown_.end()) at = std::max(at.value_or(0), it->second);
  }
  // A tombstone alive when the warm put its id refused the warm's row.
  const uint64_t tombstone_life = static_cast<uint64_t>(options_.tombstone_ttl.count());
  if (at && *at + tombstone_life >= *ct) {
    co_return Status::Unavailable(
        "a write left rows of the namespace invalidated in the cache since (or shortly before) "
        "its last warm; warm it again");
  }
  co_return *ct;
}

Task<Result<CacheScanPage>> CacheCoherence::ScanCached(const std::string& ns,
                                                       std::optional<tpuf::DocId> after,
                                                       size_t limit) {
  auto whole = co_await WholeNamespace(ns);
  if (!whole.ok()) co_return whole.status();
  boost::asio::steady_timer wait(co_await boost::asio::this_coro::executor);
  for (int attempt = 0;; ++attempt) {
    auto page = co_await guard_->ScanNamespace(ns, after, limit);
    if (!page.ok()) {
      co_return Status::Unavailable("the document cache failed: " + page.status().message());
    }
    // A write in flight may have been applied upstream already: its rows' cached versions do not
    // answer for the namespace until it is mirrored (or invalidated, which WholeNamespace sees).
    bool writing = false;
    for (const auto& [id, doc] : page->rows) writing = writing || WriteInFlight(ns, id);
    if (!writing) {
      // An invalidation the cache refused meanwhile may cover a row of this page.
      if (pending_invalidations() > 0) {
        co_return Status::Unavailable("invalidations the cache has not taken yet are pending");
      }
      CacheScanPage out;
      out.rows = std::move(page->rows);
      out.resume_after = std::move(page->resume_after);
      co_return out;
    }
    if (attempt >= 100) {
      co_return Status::Unavailable("writes to the namespace stayed in flight during the scan");
    }
    wait.expires_after(std::chrono::milliseconds(10));
    co_await wait.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
  }
}

// ---- Namespaces ----

tpuf::IdType CacheCoherence::LearnSchema(const std::string& ns, std::string_view schema_body) {
  boost::system::error_code ec;
  boost::json::value schema = boost::json::parse(schema_body, ec);
  if (ec) schema = nullptr;  // declares nothing: u64 ids, no attribute types
  const tpuf::IdType id = tpuf::IdTypeOfSchema(schema);
  types_.LearnIdType(ns, id);
  types_.LearnAttributeTypes(ns, tpuf::AttributeTypesOfSchema(schema));
  return id;
}

Task<CacheState> CacheCoherence::StateOf(const std::string& ns,
                                         std::optional<uint64_t>* warmed_through) {
  warmed_through->reset();
  if (guard_) {
    auto rec = co_await guard_->GetNamespaceRecord(ns, std::string(kWarmedThroughRecord));
    if (rec.ok() && *rec) {
      uint64_t v = 0;
      if (std::from_chars(rec->value().data(), rec->value().data() + rec->value().size(), v).ec ==
          std::errc()) {
        *warmed_through = v;
      }
    }
  }
  CacheState state = Warming(ns)                       ? CacheState::kWarming
                     : !guard_ || !guard_->connected() ? CacheState::kCold
                     : *warmed_through                 ? CacheState::kWarm
                                                       : CacheState::kCold;
  // layer_cache_state{namespace,state}: exactly one state is 1, as of the last evaluation.
  for (CacheState s : {CacheState::kCold, CacheState::kWarming, CacheState::kWarm}) {
    metrics_->registry
        .GetGauge("layer_cache_state", "Cache state per namespace (1 = current state)",
                  {{"namespace", ns}, {"state", std::string(CacheStateName(s))}})
        .Set(s == state ? 1 : 0);
  }
  co_return state;
}

}  // namespace layer::coherence
