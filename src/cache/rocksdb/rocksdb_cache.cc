#include "cache/rocksdb/rocksdb_cache.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <functional>
#include <limits>
#include <unordered_map>
#include <utility>

#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/options.h>
#include <rocksdb/perf_level.h>
#include <rocksdb/slice.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>

#include "common/log.h"

namespace layer::cache {
namespace {

namespace fs = std::filesystem;

constexpr char kMetaCf[] = "meta";
constexpr char kMarkerFile[] = "CLEAN_SHUTDOWN";
constexpr char kLockFile[] = "cache.lock";
constexpr char kDbDir[] = "db";
constexpr char kEpochTag = 'E';
constexpr char kRecordTag = 'R';
constexpr uint8_t kVectorTagBit = 0x80;
constexpr uint8_t kFlagTombstone = 0x01;
constexpr uint8_t kFlagRepairable = 0x02;  // tombstones only (CachedDoc::repairable)
constexpr size_t kValueHeader = 9;  // flags + stamp
constexpr size_t kMaxValueHead = kValueHeader + 8;  // a tombstone adds its expiry

void AppendU64(std::string* out, uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8)
    out->push_back(static_cast<char>((v >> shift) & 0xff));
}

uint64_t ReadU64(std::string_view s) {
  uint64_t v = 0;
  for (size_t i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(s[i]);
  return v;
}

Status CheckNs(std::string_view ns) {
  if (ns.empty() || ns.size() > 0xffff) {
    return Status::InvalidArgument("cache namespace must be 1..65535 bytes");
  }
  return Status::Ok();
}

void AppendNs(std::string* out, std::string_view ns) {
  out->push_back(static_cast<char>((ns.size() >> 8) & 0xff));
  out->push_back(static_cast<char>(ns.size() & 0xff));
  out->append(ns);
}

size_t DocKeySize(std::string_view ns, const DocId& id) {
  return 2 + ns.size() + 8 + 1 + id.bytes.size();
}

// Appends [u16 ns length][ns][u64 epoch][tag][id bytes].
void AppendDocKey(std::string* out, std::string_view ns, uint64_t epoch, const DocId& id,
                  bool vector) {
  AppendNs(out, ns);
  AppendU64(out, epoch);
  uint8_t tag = static_cast<uint8_t>(id.type);
  if (vector) tag |= kVectorTagBit;
  out->push_back(static_cast<char>(tag));
  out->append(id.bytes);
}

std::string DocKey(std::string_view ns, uint64_t epoch, const DocId& id, bool vector) {
  std::string key;
  key.reserve(DocKeySize(ns, id));
  AppendDocKey(&key, ns, epoch, id, vector);
  return key;
}

std::string EpochKey(std::string_view ns) {
  std::string key(1, kEpochTag);
  key.append(ns);
  return key;
}

std::string RecordPrefix(std::string_view ns) {
  std::string key(1, kRecordTag);
  AppendNs(&key, ns);
  return key;
}

std::string RecordKey(std::string_view ns, uint64_t epoch, std::string_view record) {
  std::string key = RecordPrefix(ns);
  AppendU64(&key, epoch);
  key.append(record);
  return key;
}

Status FromRocks(const rocksdb::Status& s, std::string_view what) {
  if (s.ok()) return Status::Ok();
  std::string msg = "rocksdb " + std::string(what) + ": " + s.ToString();
  if (s.IsCorruption()) return Status::Corruption(std::move(msg));
  if (s.IsTimedOut() || s.IsBusy() || s.IsTryAgain()) return Status::IoError(std::move(msg), true);
  return Status::IoError(std::move(msg));
}

// `no_io` limits a read to memtables and the block cache (RocksDB answers Incomplete otherwise).
rocksdb::ReadOptions ReadOpts(bool no_io) {
  rocksdb::ReadOptions ro;
  if (no_io) ro.read_tier = rocksdb::kBlockCacheTier;
  return ro;
}

rocksdb::WriteOptions CacheWriteOptions() {
  rocksdb::WriteOptions wo;
  wo.disableWAL = true;  // an unclean shutdown discards the cache anyway
  return wo;
}

// RocksDB keeps per-thread perf-context counters unless the thread says otherwise, at the price
// of thread-local look-ups in every key comparison (~9% of a batch write's instructions). The
// cache never reads them: every thread that calls into the database turns them off, once.
void StopPerfCounting() {
  thread_local bool stopped = false;
  if (stopped) return;
  rocksdb::SetPerfLevel(rocksdb::PerfLevel::kDisable);
  stopped = true;
}

Status SyncDir(const fs::path& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return Status::IoError("cannot open " + dir.string());
  int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return Status::IoError("cannot fsync " + dir.string());
  return Status::Ok();
}

}  // namespace

RocksDbCache::RocksDbCache(RocksDbCacheOptions options)
    : options_(std::move(options)),
      stripes_(std::make_unique<std::mutex[]>(options_.lock_stripes)) {}

RocksDbCache::~RocksDbCache() { (void)Close(); }

Result<std::unique_ptr<RocksDbCache>> RocksDbCache::Open(RocksDbCacheOptions options) {
  if (options.path.empty()) return Status::InvalidArgument("cache path is empty");
  if (options.max_bytes == 0) return Status::InvalidArgument("cache max_bytes must be > 0");
  if (options.lock_stripes == 0) options.lock_stripes = 1;
  if (options.tombstone_ttl.count() < 0) {
    return Status::InvalidArgument("tombstone_ttl must be >= 0");
  }

  const fs::path dir(options.path);
  const fs::path db_dir = dir / kDbDir;
  const fs::path marker = dir / kMarkerFile;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Status::IoError("cannot create cache dir " + dir.string() + ": " + ec.message());

  // Only one process may own the directory: without this a second gateway pointed at a running
  // cache would see no marker and wipe the live database.
  int lock_fd = ::open((dir / kLockFile).c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd < 0) return Status::IoError("cannot open " + (dir / kLockFile).string());
  if (::flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(lock_fd);
    return Status::Unavailable("cache dir " + dir.string() + " is in use by another process");
  }
  struct LockCloser {
    int fd;
    ~LockCloser() {
      if (fd >= 0) ::close(fd);
    }
  } lock{lock_fd};

  const bool clean = fs::exists(marker, ec);
  const bool has_db = fs::exists(db_dir, ec);
  if (has_db && (!clean || options.reset_on_start)) {
    spdlog::info("document cache: discarding {} ({})", db_dir.string(),
                 clean ? "reset on start" : "no clean-shutdown marker");
    fs::remove_all(db_dir, ec);
    if (ec) return Status::IoError("cannot wipe " + db_dir.string() + ": " + ec.message());
  }
  // From here on the data on disk is live: a crash before the next Close() must discard it.
  fs::remove(marker, ec);
  if (ec) return Status::IoError("cannot remove " + marker.string() + ": " + ec.message());
  if (Status s = SyncDir(dir); !s.ok()) return s;

  std::unique_ptr<RocksDbCache> cache(new RocksDbCache(std::move(options)));
  cache->started_empty_ = !fs::exists(db_dir, ec);
  Status opened = cache->OpenDb();
  if (opened.code() == StatusCode::kCorruption) {
    // The cache is disposable: start over rather than refuse to start.
    spdlog::warn("document cache: discarding {} ({})", db_dir.string(), opened.ToString());
    fs::remove_all(db_dir, ec);
    if (ec) return Status::IoError("cannot wipe " + db_dir.string() + ": " + ec.message());
    cache->started_empty_ = true;
    opened = cache->OpenDb();
  }
  if (!opened.ok()) return opened;
  cache->lock_fd_ = std::exchange(lock.fd, -1);
  return cache;
}

Status RocksDbCache::OpenDb() {
  rocksdb::DBOptions db_opts;
  db_opts.create_if_missing = true;
  db_opts.create_missing_column_families = true;
  db_opts.max_background_jobs = 2;
  db_opts.avoid_flush_during_shutdown = false;
  // RocksDB's own LOG: what a release build logs (a library built without NDEBUG defaults to
  // debug level), in a few bounded files rather than one that grows for the life of the cache.
  db_opts.info_log_level = rocksdb::INFO_LEVEL;
  db_opts.max_log_file_size = 16 << 20;
  db_opts.keep_log_file_num = 4;

  rocksdb::BlockBasedTableOptions table;
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  // Hot documents that were flushed to files stay readable from memory (TryGet's fast path).
  table.block_cache = rocksdb::NewLRUCache(static_cast<size_t>(
      std::clamp<uint64_t>(options_.max_bytes / 16, 8ull << 20, 256ull << 20)));

  rocksdb::ColumnFamilyOptions docs;
  docs.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  // Files stay uncompressed unless asked. FIFO keeps every file in level 0, which RocksDB's own
  // tuning leaves uncompressed: each flush would otherwise compress every block on the write and
  // warm paths (over half of a flush's CPU, even for values that do not compress), and reads
  // would pay to decompress. The cache trades disk space, which it bounds, for CPU.
  docs.compression = options_.compress ? rocksdb::kSnappyCompression : rocksdb::kNoCompression;
  docs.compaction_style = rocksdb::kCompactionStyleFIFO;
  docs.compaction_options_fifo.max_table_files_size = options_.max_bytes;
  docs.compaction_options_fifo.allow_compaction = false;
  // Memtables are flushed into files FIFO can evict; keep them a fraction of the bound so the
  // bound is honoured within one memtable or two.
  docs.write_buffer_size =
      static_cast<size_t>(std::clamp<uint64_t>(options_.max_bytes / 8, 64 << 10, 64 << 20));
  // FIFO keeps every file in L0: never stall writes on the L0 file count.
  docs.level0_file_num_compaction_trigger = 4;
  docs.level0_slowdown_writes_trigger = 1 << 30;
  docs.level0_stop_writes_trigger = 1 << 30;
  // Every put reads the key first (newer wins), and a warm's keys are mostly new: a whole-key
  // bloom filter on the memtable answers those misses without searching the skip list.
  docs.memtable_prefix_bloom_size_ratio = 0.02;
  docs.memtable_whole_key_filtering = true;

  rocksdb::ColumnFamilyOptions meta;
  meta.write_buffer_size = 4 << 20;

  std::vector<rocksdb::ColumnFamilyDescriptor> cfs = {
      {rocksdb::kDefaultColumnFamilyName, docs},
      {kMetaCf, meta},
  };
  rocksdb::DB* raw = nullptr;
  const std::string db_dir = (fs::path(options_.path) / kDbDir).string();
  rocksdb::Status s = rocksdb::DB::Open(db_opts, db_dir, cfs, &handles_, &raw);
  if (!s.ok()) return FromRocks(s, "open " + db_dir);
  db_.reset(raw);
  docs_cf_ = handles_[0];
  meta_cf_ = handles_[1];
  return Status::Ok();
}

void RocksDbCache::CloseDb(bool write_marker, bool release_dir_lock) {
  if (!db_) {
    if (release_dir_lock && lock_fd_ >= 0) ::close(lock_fd_);
    if (release_dir_lock) lock_fd_ = -1;
    return;
  }
  rocksdb::FlushOptions fo;
  fo.wait = true;
  rocksdb::Status fs_status = db_->Flush(fo, handles_);
  if (!fs_status.ok()) {
    spdlog::warn("document cache: flush at close failed: {}", fs_status.ToString());
    write_marker = false;
  }
  for (auto* h : handles_) (void)db_->DestroyColumnFamilyHandle(h);
  handles_.clear();
  docs_cf_ = meta_cf_ = nullptr;
  rocksdb::Status cs = db_->Close();
  if (!cs.ok()) {
    spdlog::warn("document cache: close failed: {}", cs.ToString());
    write_marker = false;
  }
  db_.reset();
  if (write_marker) WriteMarker();
  if (release_dir_lock && lock_fd_ >= 0) {
    ::close(lock_fd_);  // releases the flock
    lock_fd_ = -1;
  }
}

void RocksDbCache::WriteMarker() {
  const fs::path marker = fs::path(options_.path) / kMarkerFile;
  int fd = ::open(marker.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) {
    spdlog::warn("document cache: cannot write {}", marker.string());
    return;
  }
  (void)::fsync(fd);
  ::close(fd);
  (void)SyncDir(options_.path);
}

Status RocksDbCache::Close() {
  std::unique_lock lock(db_mu_);
  closed_ = true;
  // A broken database's memtables were lost: no clean-shutdown marker for it.
  CloseDb(/*write_marker=*/!broken_.load(std::memory_order_acquire), /*release_dir_lock=*/true);
  return Status::Ok();
}

void RocksDbCache::Discard() {
  std::unique_lock lock(db_mu_);
  closed_ = true;
  CloseDb(/*write_marker=*/false, /*release_dir_lock=*/true);
}

Status RocksDbCache::FlushForTest() {
  std::shared_lock db_lock(db_mu_);
  if (!db_) return Status::Unavailable("cache closed");
  rocksdb::FlushOptions fo;
  fo.wait = true;
  return FromRocks(db_->Flush(fo, handles_), "flush");
}

int64_t RocksDbCache::NowMs() const { return ClockOr(options_.clock).WallMs(); }

std::optional<Result<uint64_t>> RocksDbCache::EpochOf(std::string_view ns, bool no_io) {
  if (Status s = CheckNs(ns); !s.ok()) return s;
  std::string key(ns);
  {
    std::shared_lock lk(epochs_mu_);
    auto it = epochs_.find(key);
    if (it != epochs_.end()) return it->second;
  }
  std::string value;
  rocksdb::Status s = db_->Get(ReadOpts(no_io), meta_cf_, EpochKey(ns), &value);
  if (no_io && s.IsIncomplete()) return std::nullopt;
  uint64_t epoch = 0;
  if (s.ok()) {
    if (value.size() != 8) return Status::Corruption("bad epoch record for " + key);
    epoch = ReadU64(value);
  } else if (!s.IsNotFound()) {
    return FromRocks(s, "get epoch");
  }
  std::unique_lock lk(epochs_mu_);
  // A concurrent BumpEpoch may have stored a newer value: keep the larger one.
  auto [it, inserted] = epochs_.emplace(std::move(key), epoch);
  if (!inserted && it->second < epoch) it->second = epoch;
  return it->second;
}

Result<std::optional<CachedDoc>> RocksDbCache::Decode(std::string_view value) const {
  if (value.size() < kValueHeader) return Status::Corruption("short cache record");
  CachedDoc doc;
  doc.upserted_at = ReadU64(value.substr(1));
  doc.tombstone = (static_cast<uint8_t>(value[0]) & kFlagTombstone) != 0;
  doc.repairable = doc.tombstone && (static_cast<uint8_t>(value[0]) & kFlagRepairable) != 0;
  std::string_view payload = value.substr(kValueHeader);
  if (doc.tombstone) {
    if (payload.size() != 8) return Status::Corruption("bad tombstone record");
    if (NowMs() >= static_cast<int64_t>(ReadU64(payload))) return std::optional<CachedDoc>();
  } else {
    doc.attributes_json.assign(payload);
  }
  return std::optional<CachedDoc>(std::move(doc));
}

size_t RocksDbCache::EncodeDocHead(const CachedDoc& doc, char* out) const {
  auto put_u64 = [](char* at, uint64_t v) {
    for (int i = 0; i < 8; ++i) at[i] = static_cast<char>((v >> (56 - 8 * i)) & 0xff);
  };
  out[0] = static_cast<char>(doc.tombstone ? (kFlagTombstone | (doc.repairable ? kFlagRepairable : 0))
                                           : 0);
  put_u64(out + 1, doc.upserted_at);
  if (!doc.tombstone) return kValueHeader;
  put_u64(out + kValueHeader, static_cast<uint64_t>(std::max<int64_t>(
                                  0, NowMs() + options_.tombstone_ttl.count())));
  return kMaxValueHead;
}

Result<std::optional<CachedDoc>> RocksDbCache::Get(std::string_view ns, const DocId& id) {
  std::shared_lock db_lock = Admit();
  if (!db_) return Unusable();
  Result<uint64_t> epoch = EpochOf(ns);
  if (!epoch.ok()) return epoch.status();
  rocksdb::PinnableSlice value;
  rocksdb::Status s =
      db_->Get(rocksdb::ReadOptions(), docs_cf_, DocKey(ns, *epoch, id, /*vector=*/false), &value);
  if (s.IsNotFound()) return std::optional<CachedDoc>();
  if (!s.ok()) return FromRocks(s, "get");
  return Decode(value.ToStringView());
}

TryGetResult RocksDbCache::TryGet(std::string_view ns, const DocId& id) {
  // Never waits on the I/O thread: while the database is being reopened, decline.
  StopPerfCounting();
  std::shared_lock db_lock(db_mu_, std::try_to_lock);
  if (!db_lock.owns_lock() || broken_.load(std::memory_order_relaxed)) return std::nullopt;
  if (!db_) return Status::Unavailable("cache closed");
  std::optional<Result<uint64_t>> epoch = EpochOf(ns, /*no_io=*/true);
  if (!epoch) return std::nullopt;
  if (!epoch->ok()) return epoch->status();
  rocksdb::PinnableSlice value;
  rocksdb::Status s = db_->Get(ReadOpts(/*no_io=*/true), docs_cf_,
                               DocKey(ns, **epoch, id, /*vector=*/false), &value);
  // Incomplete: the key may live in a file block that is not cached. NotFound is only answered
  // when every place the key could be was ruled out from memory (filters included).
  if (s.IsIncomplete()) return std::nullopt;
  if (s.IsNotFound()) return std::optional<CachedDoc>();
  if (!s.ok()) return FromRocks(s, "try_get");
  return Decode(value.ToStringView());
}

Result<std::vector<std::optional<CachedDoc>>> RocksDbCache::MultiGet(std::string_view ns,
                                                                     std::span<const DocId> ids) {
  std::shared_lock db_lock = Admit();
  if (!db_) return Unusable();
  Result<uint64_t> epoch = EpochOf(ns);
  if (!epoch.ok()) return epoch.status();
  std::vector<std::optional<CachedDoc>> out(ids.size());
  if (ids.empty()) return out;
  std::vector<std::string> keys;
  keys.reserve(ids.size());
  for (const DocId& id : ids) keys.push_back(DocKey(ns, *epoch, id, /*vector=*/false));
  std::vector<rocksdb::Slice> slices(keys.begin(), keys.end());
  std::vector<rocksdb::PinnableSlice> values(ids.size());
  std::vector<rocksdb::Status> statuses(ids.size());
  db_->MultiGet(rocksdb::ReadOptions(), docs_cf_, ids.size(), slices.data(), values.data(),
                statuses.data());
  for (size_t i = 0; i < ids.size(); ++i) {
    if (statuses[i].IsNotFound()) continue;
    if (!statuses[i].ok()) return FromRocks(statuses[i], "multi_get");
    Result<std::optional<CachedDoc>> doc = Decode(values[i].ToStringView());
    if (!doc.ok()) return doc.status();
    out[i] = std::move(*doc);
  }
  return out;
}

Result<bool> RocksDbCache::PutIfNewer(std::string_view ns, const DocId& id, const CachedDoc& doc) {
  std::pair<DocId, CachedDoc> one(id, doc);
  Result<std::vector<bool>> r = PutBatch(ns, std::span(&one, 1));
  if (!r.ok()) return r.status();
  return static_cast<bool>((*r)[0]);
}

Result<std::vector<bool>> RocksDbCache::PutIfNewerBatch(
    std::string_view ns, std::span<const std::pair<DocId, CachedDoc>> docs) {
  return PutBatch(ns, docs);
}

Status RocksDbCache::Tombstone(std::string_view ns, const DocId& id, uint64_t stamp,
                               bool repairable) {
  CachedDoc tomb;
  tomb.upserted_at = stamp;
  tomb.tombstone = true;
  tomb.repairable = repairable;
  std::pair<DocId, CachedDoc> one(id, std::move(tomb));
  return PutBatch(ns, std::span(&one, 1)).status();
}

Result<std::vector<bool>> RocksDbCache::PutBatch(
    std::string_view ns, std::span<const std::pair<DocId, CachedDoc>> docs) {
  std::shared_lock db_lock = Admit();
  if (!db_) return Unusable();
  Result<uint64_t> epoch = EpochOf(ns);
  if (!epoch.ok()) return epoch.status();
  std::vector<bool> stored(docs.size(), false);
  if (docs.empty()) return stored;

  // Every key in one buffer (sized first, so the slices into it stay valid).
  size_t keys_size = 0;
  for (const auto& [id, doc] : docs) keys_size += DocKeySize(ns, id);
  std::string key_bytes;
  key_bytes.reserve(keys_size);
  std::vector<rocksdb::Slice> keys;
  keys.reserve(docs.size());
  std::vector<size_t> stripes;
  stripes.reserve(docs.size());
  for (const auto& [id, doc] : docs) {
    const size_t at = key_bytes.size();
    AppendDocKey(&key_bytes, ns, *epoch, id, /*vector=*/false);
    keys.emplace_back(key_bytes.data() + at, key_bytes.size() - at);
    stripes.push_back(std::hash<std::string_view>{}(keys.back().ToStringView()) %
                      options_.lock_stripes);
  }
  std::sort(stripes.begin(), stripes.end());
  stripes.erase(std::unique(stripes.begin(), stripes.end()), stripes.end());
  std::vector<std::unique_lock<std::mutex>> locks;  // ascending order: no deadlock
  locks.reserve(stripes.size());
  for (size_t s : stripes) locks.emplace_back(stripes_[s]);

  std::vector<rocksdb::PinnableSlice> values(docs.size());
  std::vector<rocksdb::Status> statuses(docs.size());
  // Only the stamps are wanted and the new records go to the memtable: the blocks read for them
  // stay out of the block cache, where they would evict the blocks hot fetches are served from
  // (a re-warm reads back every block of the namespace). A warm page's keys arrive in ascending
  // order: RocksDB need not sort them again.
  rocksdb::ReadOptions read_before_write;
  read_before_write.fill_cache = false;
  const bool sorted = std::is_sorted(keys.begin(), keys.end(), [](const auto& a, const auto& b) {
    return a.compare(b) < 0;
  });
  db_->MultiGet(read_before_write, docs_cf_, docs.size(), keys.data(), values.data(),
                statuses.data(), sorted);

  // The record in force per key so far (its stamp and kind), counting earlier records of this same
  // batch. With sorted keys a repeated key follows its previous record directly; otherwise a map
  // finds it.
  struct InForce {
    uint64_t stamp = 0;
    bool tombstone = false;
    bool repairable = false;
  };
  std::unordered_map<std::string_view, std::optional<InForce>> in_force;
  if (!sorted) in_force.reserve(docs.size());
  std::optional<InForce> previous_in_force;  // sorted: of keys[i - 1]
  size_t batch_bytes = 64;
  for (size_t i = 0; i < docs.size(); ++i) {
    batch_bytes += keys[i].size() + kMaxValueHead + docs[i].second.attributes_json.size() + 16;
  }
  rocksdb::WriteBatch batch(batch_bytes);  // one allocation, no regrowth copies
  for (size_t i = 0; i < docs.size(); ++i) {
    CachedDoc doc_flags;  // the stored kind of docs[i] (a tombstone's repairable flag may change)
    const CachedDoc& given = docs[i].second;
    std::optional<InForce> existing;
    bool repeated = false;
    if (sorted) {
      repeated = i > 0 && keys[i] == keys[i - 1];
      if (repeated) existing = previous_in_force;
    } else if (auto it = in_force.find(keys[i].ToStringView()); it != in_force.end()) {
      repeated = true;
      existing = it->second;
    }
    if (!repeated) {
      if (statuses[i].ok()) {
        Result<std::optional<CachedDoc>> old = Decode(values[i].ToStringView());
        // A corrupt record is replaced rather than blocking writes forever.
        if (old.ok() && old->has_value()) {
          existing = InForce{(*old)->upserted_at, (*old)->tombstone, (*old)->repairable};
        }
      } else if (!statuses[i].IsNotFound()) {
        return FromRocks(statuses[i], "get before put");
      }
    }
    // Newer wins; a repair also replaces a repairable tombstone stamped no later than its bound
    // (document_cache.h).
    const bool wins = !existing || existing->stamp <= given.upserted_at ||
                      (given.repair && !given.tombstone && existing->tombstone &&
                       existing->repairable && existing->stamp <= given.repair_bound);
    // A repairable tombstone over one that is not stays not repairable: the write behind the
    // older one may still be applied late.
    const bool repairable = given.tombstone && given.repairable &&
                            !(existing && existing->tombstone && !existing->repairable);
    doc_flags.tombstone = given.tombstone;
    doc_flags.repairable = repairable;
    doc_flags.upserted_at = given.upserted_at;
    const CachedDoc& doc = given;
    const std::optional<InForce> now_in_force =
        wins ? std::optional<InForce>(InForce{given.upserted_at, given.tombstone, repairable})
             : existing;
    if (sorted) {
      previous_in_force = now_in_force;
    } else {
      in_force[keys[i].ToStringView()] = now_in_force;
    }
    if (!wins) {
      if (given.tombstone && !given.repairable && existing && existing->tombstone &&
          existing->repairable) {
        // A newer repairable tombstone is there: it stays, but no longer repairable, since the
        // write behind this one may still be applied late.
        char head[kMaxValueHead];
        CachedDoc kept;
        kept.tombstone = true;
        kept.upserted_at = existing->stamp;
        batch.Put(docs_cf_, keys[i], rocksdb::Slice(head, EncodeDocHead(kept, head)));
        InForce downgraded = *existing;
        downgraded.repairable = false;
        if (sorted) {
          previous_in_force = downgraded;
        } else {
          in_force[keys[i].ToStringView()] = downgraded;
        }
      }
      continue;
    }
    // The value is the head and the attributes, copied once, straight into the batch.
    char head[kMaxValueHead];
    const rocksdb::Slice value_parts[2] = {
        rocksdb::Slice(head, EncodeDocHead(doc_flags, head)),
        rocksdb::Slice(doc.tombstone ? std::string_view() : doc.attributes_json)};
    batch.Put(docs_cf_, rocksdb::SliceParts(&keys[i], 1), rocksdb::SliceParts(value_parts, 2));
    if (doc.tombstone) {
      batch.Delete(docs_cf_, DocKey(ns, *epoch, docs[i].first, /*vector=*/true));
    }
    stored[i] = true;
  }
  if (options_.test_hook_before_write) options_.test_hook_before_write();
  if (batch.Count() > 0) {
    if (Status s = Commit(&batch, "put"); !s.ok()) return s;
  }
  return stored;
}

std::shared_lock<std::shared_mutex> RocksDbCache::Admit() {
  StopPerfCounting();
  if (broken_.load(std::memory_order_acquire)) Reopen();
  return std::shared_lock(db_mu_);
}

Status RocksDbCache::Unusable() const {
  std::lock_guard lk(broken_mu_);
  if (broken_reason_.empty()) return Status::Unavailable("cache closed");
  return Status::Unavailable("cache database stopped (" + broken_reason_ + "); reopening");
}

Status RocksDbCache::Commit(rocksdb::WriteBatch* batch, std::string_view what) {
  rocksdb::Status s = db_->Write(CacheWriteOptions(), batch);
  if (s.ok() || s.IsBusy() || s.IsTimedOut() || s.IsTryAgain()) return FromRocks(s, what);
  // A write refused after a background error (a flush into a directory that turned unwritable,
  // a full disk): RocksDB refuses all writes until it resumes. Without a WAL a failed flush is
  // beyond Resume, so the database is marked broken and the next operation reopens it empty.
  rocksdb::Status resumed = db_->Resume();
  if (resumed.ok()) return FromRocks(db_->Write(CacheWriteOptions(), batch), what);
  {
    std::lock_guard lk(broken_mu_);
    if (!broken_.load(std::memory_order_relaxed)) {
      broken_reason_ = resumed.ToString();
      spdlog::error("document cache: database stopped after a background error ({}); it will be "
                    "reopened empty",
                    broken_reason_);
    }
    broken_.store(true, std::memory_order_release);
  }
  return FromRocks(s, what);
}

void RocksDbCache::Reopen() {
  std::unique_lock lock(db_mu_);
  if (!broken_.load(std::memory_order_acquire) || closed_) return;
  auto now = ClockOr(options_.clock).Steady();
  if (now - last_reopen_ < std::chrono::seconds(1)) return;
  last_reopen_ = now;
  CloseDb(/*write_marker=*/false, /*release_dir_lock=*/false);
  // Memtable contents were lost with the failed flush: keeping the files could resurrect older
  // versions of documents, so the reopened cache starts empty.
  std::error_code ec;
  const fs::path db_dir = fs::path(options_.path) / kDbDir;
  fs::remove_all(db_dir, ec);
  if (ec) {
    spdlog::warn("document cache: cannot wipe {} yet: {}", db_dir.string(), ec.message());
    return;
  }
  if (Status st = OpenDb(); !st.ok()) {
    spdlog::warn("document cache: cannot reopen yet: {}", st.ToString());
    return;
  }
  {
    std::unique_lock lk(epochs_mu_);
    epochs_.clear();
  }
  std::lock_guard lk(broken_mu_);
  broken_reason_.clear();
  broken_.store(false, std::memory_order_release);
  spdlog::warn("document cache: database reopened empty in {}", db_dir.string());
}

Status RocksDbCache::Invalidate(std::string_view ns, std::span<const DocId> ids) {
  std::shared_lock db_lock = Admit();
  if (!db_) return Unusable();
  Result<uint64_t> epoch = EpochOf(ns);
  if (!epoch.ok()) return epoch.status();
  rocksdb::WriteBatch batch;
  for (const DocId& id : ids) {
    batch.Delete(docs_cf_, DocKey(ns, *epoch, id, /*vector=*/false));
    batch.Delete(docs_cf_, DocKey(ns, *epoch, id, /*vector=*/true));
  }
  if (batch.Count() == 0) return Status::Ok();
  return Commit(&batch, "invalidate");
}

Status RocksDbCache::PutVector(std::string_view ns, const DocId& id, std::string_view f32le) {
  std::shared_lock db_lock = Admit();
  if (!db_) return Unusable();
  Result<uint64_t> epoch = EpochOf(ns);
  if (!epoch.ok()) return epoch.status();
  rocksdb::WriteBatch batch;
  batch.Put(docs_cf_, DocKey(ns, *epoch, id, true), f32le);
  return Commit(&batch, "put vector");
}

Result<std::optional<std::string>> RocksDbCache::GetVector(std::string_view ns, const DocId& id) {
  std::shared_lock db_lock = Admit();
  if (!db_) return Unusable();
  Result<uint64_t> epoch = EpochOf(ns);
  if (!epoch.ok()) return epoch.status();
  std::string value;
  rocksdb::Status s =
      db_->Get(rocksdb::ReadOptions(), docs_cf_, DocKey(ns, *epoch, id, true), &value);
  if (s.IsNotFound()) return std::optional<std::string>();
  if (!s.ok()) return FromRocks(s, "get vector");
  return std::optional<std::string>(std::move(value));
}

Status RocksDbCache::BumpEpoch(std::string_view ns) {
  std::shared_lock db_lock = Admit();
  if (!db_) return Unusable();
  std::unique_lock bump_lock(epoch_write_mu_);
  Result<uint64_t> epoch = EpochOf(ns);
  if (!epoch.ok()) return epoch.status();
  const uint64_t next = *epoch + 1;
  rocksdb::WriteBatch batch;
  std::string value;
  AppendU64(&value, next);
  batch.Put(meta_cf_, EpochKey(ns), value);
  // Namespace records die with the epoch; they are few, so delete them outright.
  const std::string prefix = RecordPrefix(ns);
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), meta_cf_));
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    batch.Delete(meta_cf_, it->key());
  }
  if (!it->status().ok()) return FromRocks(it->status(), "scan namespace records");
  if (Status s = Commit(&batch, "bump epoch"); !s.ok()) return s;
  std::unique_lock lk(epochs_mu_);
  epochs_[std::string(ns)] = next;
  return Status::Ok();
}

Result<std::optional<std::string>> RocksDbCache::GetNamespaceRecord(std::string_view ns,
                                                                    std::string_view key) {
  std::shared_lock db_lock = Admit();
  if (!db_) return Unusable();
  Result<uint64_t> epoch = EpochOf(ns);
  if (!epoch.ok()) return epoch.status();
  std::string value;
  rocksdb::Status s =
      db_->Get(rocksdb::ReadOptions(), meta_cf_, RecordKey(ns, *epoch, key), &value);
  if (s.IsNotFound()) return std::optional<std::string>();
  if (!s.ok()) return FromRocks(s, "get namespace record");
  return std::optional<std::string>(std::move(value));
}

Status RocksDbCache::PutNamespaceRecord(std::string_view ns, std::string_view key,
                                        std::string_view value) {
  std::shared_lock db_lock = Admit();
  if (!db_) return Unusable();
  // Shared with other record writers, exclusive with BumpEpoch: a record written concurrently
  // with a bump lands either before it (and is deleted) or after it (in the new epoch).
  std::shared_lock bump_lock(epoch_write_mu_);
  Result<uint64_t> epoch = EpochOf(ns);
  if (!epoch.ok()) return epoch.status();
  rocksdb::WriteBatch batch;
  batch.Put(meta_cf_, RecordKey(ns, *epoch, key), value);
  return Commit(&batch, "put namespace record");
}

Result<std::vector<std::pair<std::string, std::string>>> RocksDbCache::ListNamespaceRecords(
    std::string_view key) {
  std::shared_lock db_lock = Admit();
  if (!db_) return Unusable();
  std::vector<std::pair<std::string, std::string>> out;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), meta_cf_));
  const std::string prefix(1, kRecordTag);
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    std::string_view k = it->key().ToStringView().substr(1);
    if (k.size() < 2) continue;
    size_t ns_len = (static_cast<unsigned char>(k[0]) << 8) | static_cast<unsigned char>(k[1]);
    if (k.size() < 2 + ns_len + 8) continue;
    std::string_view ns = k.substr(2, ns_len);
    uint64_t epoch = ReadU64(k.substr(2 + ns_len));
    if (k.substr(2 + ns_len + 8) != key) continue;
    Result<uint64_t> current = EpochOf(ns);
    if (!current.ok()) return current.status();
    if (*current != epoch) continue;
    out.emplace_back(std::string(ns), it->value().ToString());
  }
  if (!it->status().ok()) return FromRocks(it->status(), "list namespace records");
  return out;
}

Result<ScanPage> RocksDbCache::ScanNamespace(std::string_view ns, const std::optional<DocId>& after,
                                             size_t limit) {
  if (limit == 0) return Status::InvalidArgument("a scan page must examine at least one record");
  std::shared_lock db_lock = Admit();
  if (!db_) return Unusable();
  Result<uint64_t> epoch = EpochOf(ns);
  if (!epoch.ok()) return epoch.status();
  // The documents of the epoch are [prefix][type][id bytes] with a type below the vector bit;
  // vectors ([prefix][0x80|type]…) sort after all of them and bound the range.
  std::string prefix;
  AppendNs(&prefix, ns);
  AppendU64(&prefix, *epoch);
  std::string upper = prefix;
  upper.push_back(static_cast<char>(kVectorTagBit));
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper_slice;
  ro.fill_cache = false;  // a scan must not push the hot records out of the block cache
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, docs_cf_));
  if (after) {
    const std::string from = DocKey(ns, *epoch, *after, /*vector=*/false);
    it->Seek(from);
    if (it->Valid() && it->key() == rocksdb::Slice(from)) it->Next();
  } else {
    it->Seek(prefix);
  }
  ScanPage page;
  size_t examined = 0;
  for (; it->Valid() && examined < limit; it->Next()) {
    std::string_view key = it->key().ToStringView();
    if (key.size() <= prefix.size() || !key.starts_with(prefix)) break;
    const uint8_t tag = static_cast<uint8_t>(key[prefix.size()]);
    DocId id;
    id.type = static_cast<IdType>(tag);
    id.bytes.assign(key.substr(prefix.size() + 1));
    ++examined;
    Result<std::optional<CachedDoc>> doc = Decode(it->value().ToStringView());
    if (!doc.ok()) return doc.status();
    if (*doc && !(*doc)->tombstone) page.rows.emplace_back(id, std::move(**doc));
    page.resume_after = std::move(id);
  }
  if (!it->status().ok()) return FromRocks(it->status(), "scan namespace");
  // Ended by the range, not by the limit: nothing follows.
  if (examined < limit || !it->Valid()) page.resume_after.reset();
  return page;
}

Status RocksDbCache::Ping() {
  std::shared_lock db_lock = Admit();
  if (!db_) return Unusable();
  return Status::Ok();
}

CacheStats RocksDbCache::Stats() {
  CacheStats stats;
  stats.backend = "rocksdb";
  std::shared_lock db_lock(db_mu_);
  if (!db_) return stats;
  for (auto* cf : handles_) {
    uint64_t v = 0;
    if (db_->GetIntProperty(cf, "rocksdb.estimate-live-data-size", &v)) stats.approx_bytes += v;
    if (db_->GetIntProperty(cf, "rocksdb.estimate-num-keys", &v)) stats.approx_keys += v;
  }
  return stats;
}

}  // namespace layer::cache
