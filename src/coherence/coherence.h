// CacheCoherence: the one place where the rules that keep the document cache true live
// (docs/design.md §4). Request handlers (fetch, write, namespace delete, health, hint) and jobs
// (the warm runner) call it; none of them reads or writes the cache by other means for documents.
//
// What it decides:
// - Lookup: a record is served only if it is a full row, not a tombstone, no pending
//   invalidation covers its id or namespace, and no write that may change it is in flight. A
//   cache error is a miss-on-error, never a failure.
// - Read-through: misses are read upstream through the caller's RowReader, concurrent misses of
//   one id coalesced into one read; rows are backfilled after the answer with newer-wins, never
//   over a pending invalidation, and never after a cache error.
// - Writes: ApplyWrite applies what the upstream accepted (mirror after success): upserts put with
//   newer-wins, patches merged into a cached full row (else the id is invalidated), deletes and
//   affected ids tombstoned, an unknown set of rows invalidates the namespace. Whatever the cache
//   could not take is held as a pending invalidation until a retry writes it.
// - Namespaces: the id and attribute types of each namespace, epochs (a delete bumps it), the
//   cache state (cold, warming, warm) and `cache_warmed_through`.
//
// Process-local state (docs/design.md §4.7): NamespaceTypes, PendingInvalidations, the fetch
// single-flight, the reactive-warm generations, the write sequences and namespace fences with
// their in-flight put counts, the writes in flight (WriteTicket, InFlightIds), the last stamp
// given, and the partition registry (authoritative in memory; the cache keeps a copy start-up
// reads). Everything else is in the cache itself. When replicas share the cache
// (CacheGuard::shares_writes), the writes in flight are also registered there as write intents
// (ShareWrite, docs/design.md §4.9), and lookups, backfills, warm pages and mirrors check them.
//
// Thread-safe. Every Task runs on the caller's executor; cache calls go through the CacheGuard
// (its own threads, per-op deadline, breaker).
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "cache/fault_injecting_cache.h"
#include "cache/guard.h"
#include "coherence/row_codec.h"
#include "coherence/single_flight.h"
#include "coherence/write_outcome.h"
#include "common/clock.h"
#include "common/metrics.h"
#include "common/task.h"
#include "common/tenant.h"
#include "tpuf/canonical.h"
#include "tpuf/doc_id.h"

namespace layer::coherence {

// Per-namespace types: the id type (u64, uuid or string) and the attribute types, learned from
// writes and upstream schema reads (docs/design.md §4.4.1, §4.2.8). Turbopuffer never changes the
// type of a namespace's ids or attributes, so what is learned holds until the namespace is
// deleted. Thread-safe.
class NamespaceTypes {
 public:
  std::optional<tpuf::IdType> IdType(std::string_view ns) const;
  void LearnIdType(const std::string& ns, tpuf::IdType type);
  // The attribute types known for `ns`; null when none are. A map handed out is never modified.
  std::shared_ptr<const tpuf::AttributeTypes> AttributeTypes(std::string_view ns) const;
  // Adds `types` to what is known of `ns` (a name known already takes the type given here).
  void LearnAttributeTypes(const std::string& ns, const tpuf::AttributeTypes& types);
  void Forget(const std::string& ns);

 private:
  struct Entry {
    std::optional<tpuf::IdType> id;
    std::shared_ptr<const tpuf::AttributeTypes> attributes;
  };
  mutable std::shared_mutex mu_;  // guards types_
  std::map<std::string, Entry, std::less<>> types_;
};

// Invalidations the cache has not acknowledged yet. Thread-safe; Blocks() is one atomic load
// when nothing is pending.
class PendingInvalidations {
 public:
  void Add(const std::string& ns, const tpuf::DocId& id, uint64_t stamp);
  void AddNamespace(const std::string& ns);  // an epoch bump that failed
  bool Blocks(std::string_view ns, const tpuf::DocId& id) const;
  bool BlocksNamespace(std::string_view ns) const;
  size_t size() const { return count_.load(std::memory_order_relaxed); }
  // Retries everything pending once; keeps what still fails, and what was added while it ran.
  Task<void> Retry(cache::CacheGuard& guard);

 private:
  struct Key {
    std::string ns;
    tpuf::DocId id;
    bool operator<(const Key& o) const {
      if (ns != o.ns) return ns < o.ns;
      if (id.type != o.id.type) return id.type < o.id.type;
      return id.bytes < o.id.bytes;
    }
  };
  void UpdateCount();

  mutable std::mutex mu_;        // guards ids_ and namespaces_
  std::map<Key, uint64_t> ids_;  // -> stamp of the tombstone to write
  // -> the sequence number of the latest failed bump, so a retry that began before it does not
  // clear it.
  std::map<std::string, uint64_t, std::less<>> namespaces_;
  uint64_t next_seq_ = 0;
  std::atomic<size_t> count_{0};
};

// The ids named by writes in flight, exactly (a count per (namespace, id)): fetches of them do not
// serve the cache (docs/design.md §4.1.2). Thread-safe; Contains() is one atomic load when no
// write is in flight.
class InFlightIds {
 public:
  void Add(std::string_view ns, const std::vector<tpuf::DocId>& ids);
  void Remove(std::string_view ns, const std::vector<tpuf::DocId>& ids);
  bool Contains(std::string_view ns, const tpuf::DocId& id) const;

 private:
  struct Shard {
    mutable std::mutex mu;                             // guards count
    std::unordered_map<std::string, uint32_t> count;  // namespace '\0' IdKey -> writes
  };
  static std::string Key(std::string_view ns, const tpuf::DocId& id);
  Shard& ShardOf(const std::string& key) const;

  static constexpr size_t kShards = 64;
  mutable std::array<Shard, kShards> shards_;
  std::atomic<uint64_t> entries_{0};  // ids registered, with repeats
};

enum class FetchConsistency { kStrong, kEventual };

// What a fetch's cache lookup came to. One name per outcome for the `x-layer-cache` header and
// one for the `layer_cache_lookups_total{result}` label.
enum class FetchOutcome : uint8_t {
  kHit,          // every id answered from the cache
  kMiss,         // every id read upstream (the cache answered cleanly)
  kPartial,      // some ids from the cache, the rest read upstream
  kMissOnError,  // the cache could not be trusted or reached: read upstream, nothing backfilled
};
// x-layer-cache: "hit", "miss" (kMiss and kPartial), "miss-on-error".
std::string_view CacheHeaderValue(FetchOutcome outcome);
// Metric label: "hit", "miss", "partial", "error".
std::string_view MetricLabel(FetchOutcome outcome);

// Rows read upstream, by IdKey of their id.
using RowsById = std::unordered_map<std::string, FetchedRow>;
// The key of an id in RowsById: its type and canonical bytes.
std::string IdKey(const tpuf::DocId& id);
// Reads the full rows of `ids` (all of one namespace and type) upstream. Absent ids are simply
// not in the result; a failure means the upstream could not answer.
using RowReader = std::function<Task<Result<RowsById>>(std::span<const tpuf::DocId> ids)>;

struct FetchOneResult {
  std::optional<FetchedRow> row;  // nullopt: the document does not exist upstream
  FetchOutcome outcome = FetchOutcome::kMiss;
};

struct FetchManyResult {
  RowsById rows;  // the documents found, by IdKey
  FetchOutcome outcome = FetchOutcome::kMiss;
};

// The namespace's cache state (docs/design.md §4.6).
enum class CacheState : uint8_t { kCold, kWarming, kWarm };
std::string_view CacheStateName(CacheState state);  // "cold", "warming", "warm"

inline constexpr std::string_view kWarmedThroughRecord = "cache_warmed_through";
inline constexpr std::string_view kLatestSnapshotRecord = "latest_snapshot";
// The stamp of the latest write that left rows of the namespace in a state the cache does not
// hold (an invalidated id): a cache scan cannot vouch for the namespace (docs/design.md §7.8).
inline constexpr std::string_view kRowsUnknownRecord = "rows_unknown_at";

// A page of a namespace's cached rows (CacheCoherence::ScanCached).
struct CacheScanPage {
  std::vector<std::pair<tpuf::DocId, cache::CachedDoc>> rows;  // live rows, in key order
  std::optional<tpuf::DocId> resume_after;                     // nullopt: the scan is over
};

// The namespace record that lists a namespace's tagged partitions (docs/design.md §9.7), kept on
// the name PartitionRegistryName(ns): one tenant tag per line.
inline constexpr std::string_view kPartitionsRecord = "partitions";

// Tenant tags by namespace: the partitions the cache may hold records in.
using PartitionRegistry = std::map<std::string, std::set<std::string>, std::less<>>;
// The registry a cache holds (its kPartitionsRecord records); start-up reads it before serving.
Result<PartitionRegistry> ReadPartitionRegistry(cache::DocumentCache& cache);

struct CoherenceOptions {
  std::string backend_name;  // reported by /health ("rocksdb", ...)
  // The partitions the cache holds records in (ReadPartitionRegistry), when callers' keys are
  // tenants; empty otherwise.
  PartitionRegistry partitions;
  FetchConsistency fetch_consistency = FetchConsistency::kStrong;
  // Whether strong reads repair repairable tombstones (docs/design.md §4.2.7). Only where this
  // process sees every write to the cache: the bound a repair carries orders this process's
  // stamps and writes in flight, not another replica's.
  bool repair = false;
  // How long HoldUnknownWrite keeps a write whose outcome is unknown in flight
  // (docs/design.md §4.2.5).
  std::chrono::milliseconds unknown_write_hold{60000};
  // How long a replica may take to end a write it registered in a shared cache's write intents
  // (docs/design.md §4.9): its upstream timeout, unknown_write_hold and a margin. Past it, other
  // replicas treat the write's ids as invalidated.
  std::chrono::milliseconds shared_write_deadline{190000};
  // How long after the shared cache becomes connected again (after an outage, not the first
  // time) fetches do not trust it (docs/design.md §4.9): long enough for the other replicas,
  // reconnected too, to write what they could not while it was away (they retry every 250 ms).
  std::chrono::milliseconds shared_reconnect_grace{2000};
  // How long the backend keeps a tombstone (docs/design.md §3.4): WholeNamespace's margin.
  std::chrono::milliseconds tombstone_ttl = std::chrono::minutes(10);
  // Set only under --test-faults: the decorator between the guard and the backend.
  std::shared_ptr<cache::FaultInjectingCache> faults;
  const Clock* clock = nullptr;        // null: Clock::System()
  MetricsRegistry* metrics = nullptr;  // null: layer::Metrics()
  // Stamps outlive the process (in the cache after a clean stop, and in upstream rows), and run
  // ahead of the wall clock while writes come faster than one per ms, so a new process must
  // never stamp below an earlier one (docs/design.md §4.2.6). Every stamp is above
  // `stamp_floor` (the ceiling an earlier process persisted), and `persist_stamp_ceiling` (when
  // set) is called, and returns, before the first stamp above the last ceiling it stored, with a
  // new ceiling kStampLeaseMs past that stamp.
  uint64_t stamp_floor = 0;
  std::function<Status(uint64_t ceiling)> persist_stamp_ceiling;
};

class CacheCoherence {
 public:
  // `guard` may be null: the gateway then runs without a cache (every fetch is a miss-on-error).
  CacheCoherence(std::unique_ptr<cache::CacheGuard> guard, CoherenceOptions options);
  ~CacheCoherence();
  CacheCoherence(const CacheCoherence&) = delete;
  CacheCoherence& operator=(const CacheCoherence&) = delete;

  // ---- Fetch (docs/design.md §4.1) ----

  // One document: from the cache, or read through `read` (coalesced with concurrent misses of the
  // same id) and backfilled after the answer. A failure means the upstream read failed.
  Task<Result<FetchOneResult>> FetchOne(const std::string& ns, const tpuf::DocId& id,
                                        const RowReader& read);
  // Many documents (distinct ids of one type): the cache's answers; the misses join reads in
  // flight for them and are read upstream together for the rest. A failure means an upstream
  // read failed.
  Task<Result<FetchManyResult>> FetchMany(const std::string& ns, std::vector<tpuf::DocId> ids,
                                          const RowReader& read);
  FetchConsistency fetch_consistency() const { return options_.fetch_consistency; }

  // ---- Writes (docs/design.md §4.2) ----

  // The `_hevlayer_upserted_at` stamp of a write accepted now: the clock's wall time in ms, and
  // strictly greater than every stamp this core gave before, even if the wall clock stepped back.
  uint64_t NewStamp();
  // A stamp as NewStamp, and at least `floor`: the stamp of a write's repairable tombstones,
  // taken once the upstream answered (docs/design.md §4.2.7).
  uint64_t NewStampAfter(uint64_t floor);
  // How far past a stamp the persisted ceiling is raised (CoherenceOptions).
  static constexpr uint64_t kStampLeaseMs = 60'000;

  // A write on its way upstream (docs/design.md §4.2.6): the stripes of the ids it names count it
  // from BeginWrite until the ticket is destroyed, so that ApplyWrite knows when another write to
  // one of its ids was in flight at the same time; the upstream may then have applied the two in
  // either order, and such ids are invalidated instead of mirrored. A write whose rows the gateway
  // cannot name in advance (by filter or condition, a body it cannot follow, a namespace delete),
  // or that names more than kMaxIdInvalidations ids, counts for its whole namespace instead. While
  // a ticket lives, fetches of what it covers (its ids exactly, or its namespace) neither serve the
  // cache nor join another read (docs/design.md §4.1.2): the upstream may have applied the write
  // already. Not thread-safe itself; use it from the write's coroutine.
  class WriteTicket {
   public:
    ~WriteTicket();
    WriteTicket(const WriteTicket&) = delete;
    WriteTicket& operator=(const WriteTicket&) = delete;
    // Whether another write to (a stripe of) `id`, or to the whole namespace, overlapped this one
    // so far; for a whole-namespace write, whether any other write of its namespace did. With a
    // shared cache, also whether a write through another replica was in flight when this one
    // began, or this one could not be registered there (ShareWrite).
    bool Overlapped(std::string_view ns, const tpuf::DocId& id) const;

   private:
    friend class CacheCoherence;
    explicit WriteTicket(CacheCoherence& core) : core_(core) {}
    CacheCoherence& core_;
    // Its write intent in a shared cache (ShareWrite; docs/design.md §4.9), ended when the ticket
    // is destroyed -- unless ApplyWrite left some of its effects pending: the intent then stays
    // until its deadline, after which every replica's lookups invalidate what it names.
    std::optional<uint64_t> shared_generation_;
    bool shared_failed_ = false;               // registering it failed
    bool shared_ns_overlapped_ = false;        // (whole-namespace) another one was in flight
    std::set<std::string> shared_overlapped_;  // IdKey of the ids another write overlapped
    std::vector<tpuf::DocId> shared_ids_;      // registered, distinct (id writes)
    mutable bool keep_intent_ = false;         // set by ApplyWrite when effects are pending
    std::optional<boost::asio::any_io_executor> executor_;  // where the intent is ended
    std::string ns_;
    std::vector<tpuf::DocId> ids_;       // registered in InFlightIds (id writes)
    std::vector<size_t> stripes_;        // distinct, sorted
    std::vector<uint64_t> begun_after_;  // begun_writes_ of each stripe right after this began
    std::vector<bool> overlapped_;       // another write was in flight when this began
    size_t ns_stripe_ = 0;
    bool whole_namespace_ = false;  // counted for its namespace instead of per id
    uint64_t ns_begun_at_ = 0;      // begun_ns_writes_ of the namespace when this began
    bool ns_overlapped_ = false;    // a whole-namespace write was in flight when this began
    uint64_t any_begun_after_ = 0;  // begun_any_writes_ of the namespace right after this began
    bool any_overlapped_ = false;   // another write of the namespace was in flight then
  };
  // `whole_namespace`: the write may change any row of the namespace; `ids` are then ignored.
  std::unique_ptr<WriteTicket> BeginWrite(std::string_view ns, const std::vector<tpuf::DocId>& ids,
                                          bool whole_namespace = false);
  // Registers the write in the shared cache's write intents (docs/design.md §4.9), when the
  // cache is shared by replicas; call it right after BeginWrite, before the write is sent.
  // Answers the stamp the write must carry: `stamp` (from NewStamp), or a later one when a write
  // begun earlier through another replica was stamped `stamp` or later (stamps grow in the order
  // writes begin across the fleet). When the cache cannot register it, the write goes on and
  // none of its rows is mirrored (its ids are invalidated instead).
  Task<uint64_t> ShareWrite(WriteTicket& ticket, uint64_t stamp);
  // Ends the write's shared intent now, once its effects are in the cache and before it is
  // answered, so that a fetch through another replica right after the answer finds the write
  // ended (docs/design.md §4.9). Otherwise the ticket's destruction ends it, detached. Nothing
  // to do when the intent is kept (ApplyWrite left effects pending) or there is none.
  Task<void> EndSharedWrite(WriteTicket& ticket);
  // Keeps a write whose outcome is unknown (the gateway gave up on its answer, or got a 5xx) in
  // flight for CoherenceOptions::unknown_write_hold more: the upstream may still apply it, so
  // until then fetches of what it names neither serve nor backfill the cache, and writes to its
  // ids are overlapped by it (docs/design.md §4.2.5). Spawn it detached on the request's executor.
  Task<void> HoldUnknownWrite(std::unique_ptr<WriteTicket> ticket);
  // Whether a write that may change `id` (one naming it, or a whole-namespace one) is in flight.
  bool WriteInFlight(std::string_view ns, const tpuf::DocId& id) const;

  // Applies what a write did upstream (WriteOutcome: accepted, or an unknown outcome to
  // invalidate). Learns the namespace's id type from its ids. Returns false when some effect
  // could not be written to the cache (those ids, or the namespace, are then held as pending
  // invalidations). A row whose upstream form is unknown (RowEffect::form_unknown) is invalidated
  // rather than mirrored; so, with `ticket` (from BeginWrite), are rows of ids another write
  // overlapped; a row whose put is refused because a newer record is there is invalidated too.
  Task<bool> ApplyWrite(const std::string& ns, WriteOutcome outcome,
                        const WriteTicket* ticket = nullptr);
  // The namespace was deleted upstream: forget its id type and make its records unreachable.
  Task<void> NamespaceDeleted(const std::string& ns);
  // Writes pending invalidations the cache could not take before; keeps what still fails.
  Task<void> RetryPending();
  size_t pending_invalidations() const {
    return pending_.size() + (registry_unsaved_.load() ? 1 : 0);
  }

  // ---- Warm pages (docs/design.md §5) ----

  // Whether a backfill of `id` must be skipped (a pending invalidation covers it).
  bool BackfillBlocked(std::string_view ns, const tpuf::DocId& id) const {
    return pending_.Blocks(ns, id);
  }
  // What the put of a warm page must know of the writes when the page's upstream read began
  // (docs/design.md §5.4): the namespace's fence (a namespace invalidation, such as a delete or a
  // write whose rows are unknown, moves it), and how many writes of each id stripe and of the
  // namespace had ended. Immutable once taken; share it between threads freely.
  class WarmReadMark {
   private:
    friend class CacheCoherence;
    uint64_t fence_ = 0;
    uint64_t ns_ended_ = 0;        // ended_ns_writes_ of the namespace's stripe
    std::vector<uint64_t> ended_;  // ended_writes_, by id stripe
    // With a shared cache: its write generation (nullopt when it could not be read: no row of
    // the page is put).
    bool shared_ = false;
    std::optional<uint64_t> shared_generation_;
  };
  // Take it right before a warm page is read upstream, and hand it to PutWarmPage. With a shared
  // cache it also holds the namespace's write generation there (docs/design.md §4.9).
  Task<std::shared_ptr<const WarmReadMark>> MarkWarmRead(std::string ns);
  // Writes a page of full rows read after `mark` was taken with newer-wins on the cache's bulk
  // lane, unless the namespace was invalidated since (Aborted then: the rows may predate the
  // invalidation). Leaves out the row of every id a write may have changed since the mark (a
  // write begun since, or one that had begun and not ended by then, of the id's stripe or of the
  // whole namespace): the upstream may apply such a write before or after what the read saw, and
  // when two of them race on an id the stamp of the row read does not tell which came last
  // (§4.2.6). The answer holds one entry per row put.
  Task<Result<std::vector<bool>>> PutWarmPage(
      const std::string& ns, std::vector<std::pair<tpuf::DocId, cache::CachedDoc>> docs,
      std::shared_ptr<const WarmReadMark> mark);
  // Records that the cache holds every row of `ns` as of `watermark_ms`.
  Task<Status> RecordWarmedThrough(const std::string& ns, uint64_t watermark_ms);

  // ---- Snapshots (docs/design.md §7) ----

  // Mirrors the namespace's latest snapshot body into the cache.
  Task<Status> RecordLatestSnapshot(const std::string& ns, std::string body);
  // The mirrored body, if any (nullopt as well when the cache cannot answer).
  Task<std::optional<std::string>> LatestSnapshot(const std::string& ns);

  // ---- Cache scans (docs/design.md §7.8) ----

  // Whether the cache holds every row of the namespace now, so that a scan of it answers for the
  // namespace: the cache is connected, no warm of it runs here, a warm completed
  // (cache_warmed_through, which it returns), no write since -- or within a tombstone's life
  // before -- that warm left an id invalidated (kRowsUnknownRecord), and no invalidation is
  // pending. Unavailable, saying which, otherwise.
  Task<Result<uint64_t>> WholeNamespace(const std::string& ns);
  // A page of the namespace's cached rows (DocumentCache::ScanNamespace, on the bulk lane), when
  // WholeNamespace holds. A row a write in flight may change is not returned: the page is read
  // again once no such write is in flight (Unavailable if one stays in flight for a second).
  Task<Result<CacheScanPage>> ScanCached(const std::string& ns, std::optional<tpuf::DocId> after,
                                         size_t limit);

  // ---- Namespaces ----

  std::optional<tpuf::IdType> KnownIdType(std::string_view ns) const { return types_.IdType(ns); }
  void LearnIdType(const std::string& ns, tpuf::IdType type) { types_.LearnIdType(ns, type); }
  // The namespace's attribute types as far as known (null: none), for putting written values in
  // the form the upstream returns them in (docs/design.md §4.2.8).
  std::shared_ptr<const tpuf::AttributeTypes> KnownAttributeTypes(std::string_view ns) const {
    return types_.AttributeTypes(ns);
  }
  // Learns what a namespace schema (the body of GET /v1/namespaces/{ns}/schema) says: the id
  // type (u64 when it names none, Turbopuffer's default) and the attribute types. Returns the id
  // type.
  tpuf::IdType LearnSchema(const std::string& ns, std::string_view schema_body);

  // The namespace's cache state: "warming" while a warm runs here, else "cold" when the cache is
  // unavailable, else "warm" once a warm completed (cache_warmed_through is recorded), else
  // "cold". `warmed_through` receives the record when there is one. Updates layer_cache_state.
  Task<CacheState> StateOf(const std::string& ns, std::optional<uint64_t>* warmed_through);

  // Hooks to the warm runner, set once before serving. `warming` tells whether a warm of the
  // namespace executes in this process; `start_warm` starts a background warm (reactive warm
  // after a cache reconnect, docs/design.md §4.5); null disables reactive warms.
  void SetWarmHooks(std::function<bool(std::string_view)> warming,
                    std::function<void(const std::string&)> start_warm);
  bool Warming(std::string_view ns) const { return warming_ && warming_(ns); }
  // Increased whenever what Warming() answers may have changed (a warm started or ended here).
  uint64_t warming_version() const { return warming_version_.load(std::memory_order_acquire); }
  void NoteWarmingChanged() { warming_version_.fetch_add(1, std::memory_order_release); }

  // ---- Tenants' partitions (docs/design.md §9.7) ----
  //
  // Every namespace argument above is a partition (common/tenant.h). The write sequences, fences
  // and write tickets are shared by all partitions of a namespace, and a write or namespace delete
  // through one partition invalidates what it names in every other registered partition of the
  // namespace: one Turbopuffer organisation may call through several keys.

  // Registers `partition` (a no-op for the one tenant's), before anything is put into it: from
  // then on writes through the namespace's other partitions invalidate in it. The registry is
  // kept in the cache; when the cache cannot take it, it is retried with the pending
  // invalidations and counts as one of them.
  Task<void> RegisterPartition(const std::string& partition);
  // The registered partitions of `partition`'s namespace other than `partition` itself.
  std::vector<std::string> SiblingPartitions(std::string_view partition) const;

  // ---- The cache underneath ----

  // Whether the cache answers now (a ping through the guard). Warm and cache-dependent hint steps
  // answer 503 cache_cold when it does not.
  Task<bool> Available();

  // Null when the gateway runs without a cache. For liveness, stats and namespace records other
  // than the ones above; documents go through the calls above.
  cache::CacheGuard* guard() const { return guard_.get(); }
  const std::string& backend_name() const { return options_.backend_name; }
  cache::FaultInjectingCache* faults() const { return options_.faults.get(); }

 private:
  class Mirror;

  // The one lookup rule for fetches (docs/design.md §4.1.1): a record is served only if it is a
  // full row, not a tombstone, and no pending invalidation covers its id or namespace; a pending
  // invalidation makes the cache untrusted for the lookup (miss-on-error, no backfill).
  enum class Verdict : uint8_t { kServe, kMiss, kUntrusted };
  Verdict Judge(std::string_view ns, const tpuf::DocId& id,
                const std::optional<cache::CachedDoc>& rec) const;

  // Backfills rows read upstream after `fence` was taken, best effort, never over a pending
  // invalidation, and not a row of an id whose WritesBegun() moved from `begun[i]` (taken at the
  // read's lookup). `repair_bound` is RepairBound() taken before the lookup checked for writes
  // in flight: a strong read repairs repairable tombstones stamped up to it (§4.2.7).
  // `shared_begun`: with a shared cache, the generation the lookup answered per row (the put is
  // dropped there when a write of the id began since, through any replica); empty otherwise.
  Task<void> Backfill(std::string ns, std::vector<std::pair<tpuf::DocId, FetchedRow>> rows,
                      uint64_t repair_bound, std::vector<uint64_t> begun,
                      std::vector<uint64_t> shared_begun, uint64_t fence);
  // Whether lookups go through the shared cache's write intents (docs/design.md §4.9).
  bool shared() const { return guard_ && guard_->shares_writes(); }
  // Whether the shared cache became connected less than shared_reconnect_grace ago.
  bool SharedCacheSettling() const;
  // Raises the last stamp given to at least `stamp` (one a shared cache handed out).
  void AdoptStamp(uint64_t stamp);
  // Ends a write intent in the shared cache (EndSharedWrite, or a ticket's destructor).
  Task<void> EndIntent(std::string ns, std::vector<tpuf::DocId> ids, bool whole,
                       uint64_t generation);
  // The last stamp given so far. Taken by a fetch before it checks for writes in flight: every
  // tombstone a write acknowledged later writes is stamped after it (NewStampAfter), so a repair
  // bounded by it never undoes one (docs/design.md §4.2.7).
  uint64_t RepairBound() const { return last_stamp_.load(); }
  // Writes ever begun that may change `id` (its id stripe's and its namespace's), a sum that
  // moves whenever one begins.
  uint64_t WritesBegun(std::string_view ns, const tpuf::DocId& id) const;
  // The namespace's fence now: take it before reading rows upstream, and hand it to the put of
  // what was read. A namespace invalidation (a delete, a write whose rows are unknown) moves it.
  uint64_t NamespaceFence(std::string_view ns) { return NsWrites(ns).load(); }
  // Puts rows read after `fence` was taken (docs/design.md §4.3): the namespace's in-flight puts
  // are counted, so that an invalidation either sees this put in flight and waits for it (it then
  // lands before the epoch moves) or this put sees the moved fence and is dropped.
  Task<Result<std::vector<bool>>> FencedPut(
      const std::string& ns, std::vector<std::pair<tpuf::DocId, cache::CachedDoc>> docs,
      uint64_t fence, cache::CacheLane lane);
  // Invalidates the whole namespace: moves its fence, waits for its puts in flight, bumps the
  // epoch (pending when the cache cannot take it).
  Task<bool> InvalidateNamespace(const std::string& ns);
  // Reactive warm: after the cache reconnects (a new connection generation), the first clean miss
  // of a namespace starts one background warm. Called on every clean fetch miss.
  void OnCleanMiss(const std::string& ns);
  void CountLookup(FetchOutcome outcome);
  void UpdatePendingGauge();

  struct Metrics;

  const std::unique_ptr<cache::CacheGuard> guard_;
  const CoherenceOptions options_;
  std::unique_ptr<Metrics> metrics_;
  NamespaceTypes types_;
  PendingInvalidations pending_;
  SingleFlight<std::optional<FetchedRow>> fetch_flights_;
  // Write sequence numbers, striped by (namespace, id) and by namespace: every write the upstream
  // acknowledged moves the stripes of the ids it names (or of its namespace, when the ids are
  // unknown). A fetch joins only a read of the same stripes' values, so it never gets an answer
  // read before a write acknowledged to anyone (docs/design.md §4.1.2). Two ids sharing a stripe
  // only cost a read that could have been shared.
  static constexpr size_t kWriteStripes = 4096;
  // Rows mirrored per cache batch, and the most ids a write invalidates one by one (past that,
  // its namespace is invalidated instead).
  static constexpr size_t kMirrorBatch = 1000;
  static constexpr size_t kMaxIdInvalidations = 10000;
  std::array<std::atomic<uint64_t>, kWriteStripes> id_writes_{};
  std::array<std::atomic<uint64_t>, kWriteStripes> ns_writes_{};  // also the namespace fences
  std::array<std::atomic<uint64_t>, kWriteStripes> ns_puts_{};    // fenced puts in flight
  // Writes in flight, and writes ever begun (WriteTicket): id writes by id stripe, and by
  // namespace stripe the whole-namespace writes and all writes.
  std::array<std::atomic<uint64_t>, kWriteStripes> active_writes_{};
  std::array<std::atomic<uint64_t>, kWriteStripes> begun_writes_{};
  std::array<std::atomic<uint64_t>, kWriteStripes> active_ns_writes_{};
  std::array<std::atomic<uint64_t>, kWriteStripes> begun_ns_writes_{};
  std::array<std::atomic<uint64_t>, kWriteStripes> active_any_writes_{};
  std::array<std::atomic<uint64_t>, kWriteStripes> begun_any_writes_{};
  // Writes ever ended (the ticket destroyed), by id stripe, and the whole-namespace ones by
  // namespace stripe: a stripe's writes begun now equal its writes ended at an earlier time only
  // if every write begun since had ended by then (WarmReadMark).
  std::array<std::atomic<uint64_t>, kWriteStripes> ended_writes_{};
  std::array<std::atomic<uint64_t>, kWriteStripes> ended_ns_writes_{};
  InFlightIds in_flight_ids_;
  // Numbers the reads that must not be joined (a write was in flight when they began).
  std::atomic<uint64_t> solo_reads_{0};
  std::atomic<uint64_t> last_stamp_{0};
  // The ceiling last persisted (CoherenceOptions::persist_stamp_ceiling); raised under the mutex.
  std::atomic<uint64_t> stamp_ceiling_{0};
  std::mutex stamp_ceiling_mu_;
  void RaiseStampCeiling(uint64_t stamp);
  static size_t IdStripe(std::string_view ns, const tpuf::DocId& id);
  static size_t NsStripe(std::string_view ns);
  std::atomic<uint64_t>& IdWrites(std::string_view ns, const tpuf::DocId& id);
  std::atomic<uint64_t>& NsWrites(std::string_view ns);
  // The single-flight key of a read of `id` begun under `fence`; with `solo`, a key no other
  // read has (a write that may change the id is in flight: no earlier read may answer for it).
  // With a shared cache, `shared_begun` (the lookup's generation for the id) is part of the key: a
  // read is never joined by a fetch that began after a write through another replica began.
  std::string FlightKey(std::string_view ns, const tpuf::DocId& id, uint64_t fence, bool solo,
                        uint64_t shared_begun = 0);
  std::atomic<uint64_t>& NsPuts(std::string_view ns);

  // Applies a write's invalidations to the namespace's other partitions (RegisterPartition).
  // `unmirrored`: ids of rows the write set that were taken out of `outcome` (overlapped, or of
  // unknown form) because they are not mirrored in `ns`; they are invalidated there as well.
  Task<bool> InvalidateSiblings(const std::string& ns, const WriteOutcome& outcome,
                                const std::vector<tpuf::DocId>& unmirrored);
  // Records that a write with `stamp` left ids of `ns` (with `siblings`: of its sibling
  // partitions instead) invalidated: in memory, and as kRowsUnknownRecord in the cache so that it
  // outlives a restart (best effort: a failure is logged).
  Task<void> NoteRowsUnknown(const std::string& ns, uint64_t stamp, bool siblings);
  std::mutex rows_unknown_mu_;                                 // guards rows_unknown_
  std::map<std::string, uint64_t, std::less<>> rows_unknown_;  // NoteRowsUnknown's, by partition

  // Writes the registry of `ns` to the cache; false when the cache did not take it.
  Task<bool> SavePartitions(std::string ns);

  mutable std::mutex partitions_mu_;  // guards partitions_, unsaved_ and saving_partitions_
  PartitionRegistry partitions_;
  std::set<std::string, std::less<>> unsaved_partitions_;  // namespaces whose registry is unsaved
  std::set<std::string, std::less<>> saving_partitions_;   // namespaces whose registry is saving
  std::atomic<bool> registry_unsaved_{false};

  std::function<bool(std::string_view)> warming_;
  std::function<void(const std::string&)> start_warm_;
  std::atomic<uint64_t> warming_version_{0};
  std::mutex reactive_mu_;  // guards reactive_generation_
  std::map<std::string, uint64_t, std::less<>> reactive_generation_;
};

}  // namespace layer::coherence
