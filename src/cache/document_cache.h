// DocumentCache: the document cache's interface, implemented by sibling backends
// (rocksdb/ embedded on local NVMe; redis/ shared by replicas) and wrapped by CacheGuard.
//
// What a record is: the full attribute map of one upstream row as ready-to-send JSON object text
// (never `id`, `vector`, `vectors`, `$dist`), the row's `_hevlayer_upserted_at` stamp, and a
// tombstone flag. Only full rows are ever stored; a projected read must never be written here.
// A vector, when kept, is stored apart (PutVector/GetVector) and never returned by a fetch.
//
// Keys: (namespace, namespace epoch, typed id). u64 7, the string "7" and a UUID never collide.
// BumpEpoch(ns) makes every record of `ns` unreachable in O(1); the old records are garbage that
// eviction reclaims.
//
// Newer wins: PutIfNewer stores a record only if no record with a strictly newer stamp (document
// or tombstone) is present -- except that a repair put (CachedDoc::repair) replaces a repairable
// tombstone whose stamp is at most the put's CachedDoc::repair_bound, whatever the row's own
// stamp, and a repairable tombstone written over a live tombstone that is not repairable stays
// not repairable -- atomically with respect to every other write of the same key in this cache
// (per-key lock stripes in-process, a script in Redis). Tombstones carry the delete's stamp
// and expire after the backend's tombstone TTL.
//
// Blocking: every call but TryGet may block on I/O. Callers on the request path go through
// CacheGuard, which runs calls on its own threads with a deadline. Thread-safe.
//
// Failure: a non-OK Status means the cache could not answer; the caller must treat the cache as
// unavailable for that call (fetch falls through to upstream, writes skip mirroring). A failed
// write leaves the previous record in place.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"
#include "tpuf/doc_id.h"

namespace layer::cache {

// Keys are Turbopuffer document ids of the three types (tpuf/doc_id.h).
using tpuf::DocId;
using tpuf::IdType;

class WriteIntents;  // write_intents.h

struct CachedDoc {
  std::string attributes_json;  // JSON object text; "{}" for a row with no attributes
  uint64_t upserted_at = 0;     // `_hevlayer_upserted_at` (epoch ms); 0 when unstamped
  bool tombstone = false;       // a delete marker; attributes_json is empty
  // Tombstones: written for a write the upstream acknowledged, so a strong read that began after
  // it may replace the tombstone (a repair; see `repair`). A tombstone of a write whose outcome is
  // unknown is not repairable: that write may still be applied late.
  bool repairable = false;
  // Puts of full rows: a repair, which replaces a repairable tombstone whose stamp is at most
  // `repair_bound`, whatever the row's own stamp (never a document, a tombstone that is not
  // repairable, or one stamped after the bound). Neither is stored.
  bool repair = false;
  uint64_t repair_bound = 0;
  // Only a backend with write intents (write_intents.h) reads these; others ignore them. Puts of
  // full rows read upstream: the write generation the read began at (dropped when a write of the
  // id began since or is in flight). Puts of a write's own rows: the write's generation (dropped
  // when a whole-namespace write began after it).
  std::optional<uint64_t> read_generation;
  std::optional<uint64_t> write_generation;
};

// What TryGet answers: nullopt when answering would have needed I/O (nothing was done; use Get),
// otherwise exactly what Get would have returned.
using TryGetResult = std::optional<Result<std::optional<CachedDoc>>>;

// One page of a namespace scan (DocumentCache::ScanNamespace).
struct ScanPage {
  // The live documents (never a tombstone, never a vector) of the current epoch, in key order.
  std::vector<std::pair<DocId, CachedDoc>> rows;
  // The last key the page examined (a tombstone's too): the next page starts after it. nullopt
  // when the scan reached the end of the namespace.
  std::optional<DocId> resume_after;
};

// The order of a namespace scan: by id type (u64, uuid, string), then by the id's canonical
// bytes (tpuf/doc_id.h: u64 big-endian, so numeric order).
inline bool ScanOrderLess(const DocId& a, const DocId& b) {
  if (a.type != b.type) return a.type < b.type;
  return a.bytes < b.bytes;  // std::string compares bytes as unsigned char
}

struct CacheStats {
  std::string backend;        // "rocksdb", "redis", ...
  uint64_t approx_bytes = 0;  // live data size, best effort
  uint64_t approx_keys = 0;
};

class DocumentCache {
 public:
  virtual ~DocumentCache() = default;

  // nullopt = no record (a clean miss). A tombstone is returned as such; callers treat it as a
  // miss for reads but it still blocks older puts.
  virtual Result<std::optional<CachedDoc>> Get(std::string_view ns, const DocId& id) = 0;
  // Get without blocking: answers only from memory (RocksDB: memtables and block cache) and
  // returns nullopt when the answer needs disk or network I/O, or waiting on a lock that may be
  // held across I/O. Never sleeps, so it may run on an event-loop thread. A backend that can never
  // answer from memory (a network cache) returns nullopt always. When it answers, the answer has
  // the same meaning and freshness as Get's: it is never a partial or older record.
  virtual TryGetResult TryGet(std::string_view ns, const DocId& id) = 0;
  // One entry per id, in order.
  virtual Result<std::vector<std::optional<CachedDoc>>> MultiGet(std::string_view ns,
                                                                 std::span<const DocId> ids) = 0;

  // Stores `doc` unless a record with a newer stamp exists. Returns true if stored.
  virtual Result<bool> PutIfNewer(std::string_view ns, const DocId& id, const CachedDoc& doc) = 0;
  // The same for many records; one flag per record, in order.
  virtual Result<std::vector<bool>> PutIfNewerBatch(
      std::string_view ns, std::span<const std::pair<DocId, CachedDoc>> docs) = 0;
  // Writes a tombstone with `stamp` unless a newer record exists; `repairable` as in CachedDoc.
  virtual Status Tombstone(std::string_view ns, const DocId& id, uint64_t stamp,
                           bool repairable = false) = 0;
  // Removes records (documents, vectors and tombstones) whatever their stamps.
  virtual Status Invalidate(std::string_view ns, std::span<const DocId> ids) = 0;

  // Vectors are kept apart from attributes: little-endian f32 bytes.
  virtual Status PutVector(std::string_view ns, const DocId& id, std::string_view f32le) = 0;
  virtual Result<std::optional<std::string>> GetVector(std::string_view ns, const DocId& id) = 0;

  // Makes every record of `ns` unreachable (documents, vectors, tombstones), in O(1). Namespace
  // records (below) are dropped too.
  virtual Status BumpEpoch(std::string_view ns) = 0;

  // A small per-namespace key/value record (e.g. "cache_warmed_through", "latest_snapshot").
  virtual Result<std::optional<std::string>> GetNamespaceRecord(std::string_view ns,
                                                                std::string_view key) = 0;
  virtual Status PutNamespaceRecord(std::string_view ns, std::string_view key,
                                    std::string_view value) = 0;
  // Every namespace that has a namespace record with `key`, with its value.
  virtual Result<std::vector<std::pair<std::string, std::string>>> ListNamespaceRecords(
      std::string_view key) = 0;

  // A page of the namespace's records of its current epoch, in key order (ScanOrderLess), after
  // `after` (exclusive; nullopt: from the start). At most `limit` records (>= 1) are examined;
  // tombstones among them are skipped, so a page may hold fewer than `limit` rows while more
  // follow: only a nullopt resume_after ends the scan. Records written during a scan may or may
  // not be seen; a record present for the whole scan is returned exactly once. InvalidArgument
  // for limit 0.
  virtual Result<ScanPage> ScanNamespace(std::string_view ns, const std::optional<DocId>& after,
                                         size_t limit) = 0;

  // The writes in flight through every replica (write_intents.h), when several replicas share
  // this cache; null for a cache one process owns. Lives as long as the cache.
  virtual WriteIntents* write_intents() { return nullptr; }

  // Cheap liveness check.
  virtual Status Ping() = 0;
  virtual CacheStats Stats() = 0;
};

}  // namespace layer::cache
