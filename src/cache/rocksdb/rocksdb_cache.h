// RocksDbCache: the embedded DocumentCache backend, on local disk (RocksDB).
//
// Layout. Two column families:
//  * "default" holds documents, tombstones and vectors, keyed
//      [u16 BE ns length][ns][u64 BE epoch][tag][id bytes]
//    where tag is the IdType byte (1..3) for a document or tombstone and 0x80|IdType for a vector.
//    It uses FIFO compaction bounded by `max_bytes`: when the SST files exceed the bound, the
//    oldest files are dropped whole (oldest-first eviction; newer versions of a key always live in
//    newer files, so eviction never resurrects an old version). Its files are not compressed
//    unless `compress` is set (see OpenDb for why).
//  * "meta" holds what eviction must never drop: per-namespace epochs ('E' + ns -> u64 BE) and
//    namespace records ('R' + [u16 BE ns length][ns][u64 BE epoch][record key] -> value).
// Document values are [u8 flags][u64 BE stamp][payload]: payload is the attributes JSON for a
// document and, for a tombstone (flags bit 0), the u64 BE wall-clock ms at which it expires.
//
// Memory. An LRU block cache of max_bytes/16 (8 MiB to 256 MiB) keeps hot file blocks in memory,
// so TryGet can answer documents that were already flushed.
//
// Durability. The cache is disposable: writes skip the WAL. Close() (and the destructor) flushes
// the memtables, closes the DB and then writes a clean-shutdown marker file. Open() accepts the
// existing data only if that marker is present; otherwise (a crash, a kill, a power loss) or with
// `reset_on_start` it destroys and recreates the database, so a crash can never serve stale rows.
// The marker is removed at Open() before any write. A lock file (flock on <path>/cache.lock) keeps
// a second process from opening, and so wiping, a directory that is in use. A database that fails
// to open as corrupt is wiped and recreated too.
//
// Newer wins: PutIfNewer/PutIfNewerBatch/Tombstone hold the lock stripes of their keys (a hash of
// the full key picks one of `lock_stripes` mutexes; a batch locks its stripes in ascending order)
// across the read-compare-write, so concurrent writes of one key are linearised. A record is
// replaced when the existing stamp is <= the new stamp (ties go to the newer write). An expired
// tombstone counts as absent.
//
// Recovery: writes skip the WAL, so when a flush fails (the directory turned unwritable, the disk
// filled up) RocksDB stops taking writes and cannot resume. The cache then marks itself broken
// and its next operation (at most once a second) closes the database, wipes it and reopens it
// empty; until that succeeds every operation fails with Unavailable. The lost memtable could
// have held the newest versions of documents, so keeping the old files would risk stale reads.
//
// Thread safety: every DocumentCache method is thread-safe and blocks on local disk I/O (TryGet
// never blocks: it declines while the database is being reopened). Close() may be called while
// other calls run; they fail with Unavailable afterwards. A thread that calls any method has
// RocksDB's per-thread perf counting turned off (rocksdb::SetPerfLevel(kDisable)) from then on:
// the counters cost thread-local look-ups in every key comparison and nothing here reads them.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "cache/document_cache.h"
#include "common/clock.h"

namespace rocksdb {
class DB;
class ColumnFamilyHandle;
class WriteBatch;
}  // namespace rocksdb

namespace layer::cache {

struct RocksDbCacheOptions {
  std::string path;                 // the cache directory; created if missing
  uint64_t max_bytes = 1ull << 30;  // bound on the on-disk size of documents and vectors
  bool reset_on_start = false;      // wipe the cache at Open() even after a clean shutdown
  std::chrono::milliseconds tombstone_ttl = std::chrono::minutes(10);
  // Wall time for tombstone expiry, steady time for reopen pacing. Null = Clock::System().
  const Clock* clock = nullptr;
  size_t lock_stripes = 256;
  // Snappy-compress file blocks: smaller files (more documents within max_bytes for compressible
  // attributes) for more CPU in every flush and every read of a flushed block. Off: see OpenDb.
  bool compress = false;
  // Test-only: runs inside every compare-and-put between the read and the write (with the stripe
  // locks held), so tests can widen the race window that the stripes must close.
  std::function<void()> test_hook_before_write;
};

class RocksDbCache final : public DocumentCache {
 public:
  // Opens (or creates, or wipes and recreates; see above) the cache at `options.path`.
  // Fails with InvalidArgument for bad options, Unavailable when another process holds the
  // directory, and IoError when RocksDB cannot open it.
  static Result<std::unique_ptr<RocksDbCache>> Open(RocksDbCacheOptions options);

  ~RocksDbCache() override;  // Close()
  RocksDbCache(const RocksDbCache&) = delete;
  RocksDbCache& operator=(const RocksDbCache&) = delete;

  // Flushes, closes the database and writes the clean-shutdown marker. Idempotent. Later calls of
  // any other method fail with Unavailable.
  Status Close();

  // True when Open() found no usable data (a new cache, or one discarded after an unclean stop,
  // a reset or corruption): anything recorded as cached before this process started is gone.
  bool started_empty() const { return started_empty_; }

  // Flushes and closes the database WITHOUT writing the clean-shutdown marker, as if the process
  // had died, so the next Open() discards the data: for a process that knows its cache may hold
  // stale rows (invalidations it could not write), and for tests of an unclean stop.
  void Discard();
  // Test-only: flushes the memtables to SST files (which lets FIFO eviction see them).
  Status FlushForTest();

  Result<std::optional<CachedDoc>> Get(std::string_view ns, const DocId& id) override;
  // Reads with ReadOptions::read_tier = kBlockCacheTier (memtables and block cache only; RocksDB
  // answers Incomplete instead of reading a file), the epoch from memory or the same tier.
  TryGetResult TryGet(std::string_view ns, const DocId& id) override;
  Result<std::vector<std::optional<CachedDoc>>> MultiGet(std::string_view ns,
                                                         std::span<const DocId> ids) override;
  Result<bool> PutIfNewer(std::string_view ns, const DocId& id, const CachedDoc& doc) override;
  Result<std::vector<bool>> PutIfNewerBatch(
      std::string_view ns, std::span<const std::pair<DocId, CachedDoc>> docs) override;
  Status Tombstone(std::string_view ns, const DocId& id, uint64_t stamp,
                   bool repairable = false) override;
  Status Invalidate(std::string_view ns, std::span<const DocId> ids) override;
  Status PutVector(std::string_view ns, const DocId& id, std::string_view f32le) override;
  Result<std::optional<std::string>> GetVector(std::string_view ns, const DocId& id) override;
  Status BumpEpoch(std::string_view ns) override;
  Result<std::optional<std::string>> GetNamespaceRecord(std::string_view ns,
                                                        std::string_view key) override;
  Status PutNamespaceRecord(std::string_view ns, std::string_view key,
                            std::string_view value) override;
  Result<ScanPage> ScanNamespace(std::string_view ns, const std::optional<DocId>& after,
                                 size_t limit) override;
  Result<std::vector<std::pair<std::string, std::string>>> ListNamespaceRecords(
      std::string_view key) override;
  Status Ping() override;
  CacheStats Stats() override;

 private:
  explicit RocksDbCache(RocksDbCacheOptions options);
  Status OpenDb();
  // Flushes and closes the database; `release_dir_lock` also drops the directory's flock.
  void CloseDb(bool write_marker, bool release_dir_lock);
  // Admits one operation: reopens a broken database first (see Recovery above), then holds
  // db_mu_ shared. The caller checks db_ (null: closed, or not reopened yet → Unusable()).
  std::shared_lock<std::shared_mutex> Admit();
  Status Unusable() const;
  // Writes `batch`; after a background error asks RocksDB to resume, else marks the cache broken.
  Status Commit(rocksdb::WriteBatch* batch, std::string_view what);
  void Reopen();  // takes db_mu_ exclusively
  void WriteMarker();

  int64_t NowMs() const;
  // The namespace's current epoch (0 if never bumped); cached in memory after the first read.
  // With `no_io`, a read that would need disk I/O returns nullopt instead.
  std::optional<Result<uint64_t>> EpochOf(std::string_view ns, bool no_io);
  Result<uint64_t> EpochOf(std::string_view ns) { return *EpochOf(ns, /*no_io=*/false); }
  // Decodes a stored document value; expired tombstones become nullopt.
  Result<std::optional<CachedDoc>> Decode(std::string_view value) const;
  // Writes a stored value's head (flags, stamp, a tombstone's expiry; at most kMaxValueHead
  // bytes) to `out` and returns its length; a live document's attributes follow it.
  size_t EncodeDocHead(const CachedDoc& doc, char* out) const;
  // Shared by PutIfNewer and PutIfNewerBatch (and Tombstone, as a one-record batch).
  Result<std::vector<bool>> PutBatch(std::string_view ns,
                                     std::span<const std::pair<DocId, CachedDoc>> docs);

  const RocksDbCacheOptions options_;
  bool started_empty_ = false;  // set by Open()
  // Shared by every operation, exclusive in Close() and Reopen(); guards db_, the handles and
  // closed_.
  mutable std::shared_mutex db_mu_;
  bool closed_ = false;
  std::atomic<bool> broken_{false};
  std::chrono::steady_clock::time_point last_reopen_{};  // guarded by db_mu_ (exclusive)
  mutable std::mutex broken_mu_;
  std::string broken_reason_;  // guarded by broken_mu_
  int lock_fd_ = -1;  // flock on <path>/cache.lock, held from Open() until Close()
  std::unique_ptr<rocksdb::DB> db_;
  rocksdb::ColumnFamilyHandle* docs_cf_ = nullptr;  // owned by db_'s handle list (handles_)
  rocksdb::ColumnFamilyHandle* meta_cf_ = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;

  std::unique_ptr<std::mutex[]> stripes_;  // per-key write locks for compare-and-put

  // Exclusive in BumpEpoch, shared in PutNamespaceRecord.
  std::shared_mutex epoch_write_mu_;
  mutable std::shared_mutex epochs_mu_;               // guards epochs_
  std::unordered_map<std::string, uint64_t> epochs_;  // cache of the meta CF's epoch rows
};

}  // namespace layer::cache
