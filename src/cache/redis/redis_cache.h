// RedisCache: the DocumentCache backend on a Redis-protocol server (Redis 7, Valkey), shared by
// gateway replicas. docs/design.md §3.11.
//
// Keys. Every key of a namespace carries the hash tag `{ns}`, so that a namespace's keys share one
// Redis Cluster slot and a script may touch all of them:
//    L<len>{ns}e                   the namespace epoch (decimal; absent = 0)          no TTL
//    L<len>{ns}t                   sorted set: tombstone keys scored by their expiry  no TTL
//    L<len>{ns}r                   hash: the namespace records                         no TTL
//    L<len>{ns}d<epoch>:<t><id>    a document or tombstone (t = '0' + IdType)          see below
//    L<len>{ns}v<epoch>:<t><id>    a vector (little-endian f32 bytes)                 doc TTL
//    L:records:<record key>        set: the namespaces that hold that record           no TTL
// `len` is the namespace's length in bytes, so ("a", "bc") and ("ab", "c") never meet.
// A stored document is 'd' + stamp (20 zero-padded digits, so string order is numeric order) +
// attributes JSON, with the doc TTL; a tombstone is 't' (or 'r', repairable) + stamp + expiry
// (20 digits, wall ms), with NO TTL: see Eviction.
//
// Atomicity. Every write of a document key (PutIfNewer, PutIfNewerBatch, Tombstone) is one Lua
// script run on the server: the compare-and-put of document_cache.h, with the rules of the
// RocksDB backend's PutBatch, for all records of the call, in order (repeated keys compare with
// the record in force before them). Keys are built with the namespace epoch this object last saw
// (a namespace never seen has its epoch read first); every script first checks the epoch key
// against it and, when a bump (here or through another replica) moved it, answers the current
// epoch instead of touching anything. The call is then repeated with the new epoch (reads,
// tombstones, invalidations), except the rows of a put: they may have been read before the bump,
// so they are dropped (reported not stored), as a put racing a bump lands in the old epoch in the
// RocksDB backend. BumpEpoch is a script too (INCR the epoch and drop the namespace records,
// together). Scripts are loaded once per connection (SCRIPT LOAD) and called by sha (EVALSHA);
// NOSCRIPT (a restarted or flushed server) reloads them and repeats the call. A batch of more
// than `batch_chunk` records runs as several scripts, pipelined on one connection.
//
// Eviction. Memory is bounded by the server's maxmemory and policy. Documents and vectors have a
// TTL (`doc_ttl`), so a volatile-* policy may evict them (an evicted key is a miss); epochs,
// tombstones, the tombstone index and namespace records have none, so it never evicts them.
// The policy must be volatile-lru, volatile-ttl or noeviction; a connection to a server with
// another policy (allkeys-*, volatile-random, volatile-lfu) is refused with InvalidArgument,
// unless `check_policy` is off. A live tombstone expires logically (its value holds the expiry;
// reads and writes then treat it as absent); expired tombstones are deleted by the next write
// scripts of their namespace (up to 64 per call, from the sorted set). Why this never serves a
// stale or resurrected row: docs/design.md §3.11.
//
// Connections: a pool of at most `pool_size` blocking hiredis connections, opened on demand. A
// connection that fails (I/O error, timeout, EOF) is closed; a call that failed on a connection
// reused from the pool is repeated once on a new one (so a restarted server costs no error).
// Connection failures and server refusals that may pass (LOADING, BUSY, OOM, MASTERDOWN) map to
// Unavailable; a pool that stays exhausted for `op_timeout` too.
//
// TLS (rediss://) needs hiredis >= 1.0 (hiredis_ssl); Debian 12's is 0.14, so such URLs are
// refused. Redis Cluster (redis-cluster://, MOVED/ASK) is not implemented yet: the keys are laid
// out for it.
//
// TryGet always answers nullopt (a network cache). Thread-safe; every other call blocks on the
// network, at most about op_timeout per round trip.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "cache/document_cache.h"
#include "common/clock.h"

struct redisContext;

namespace layer::cache {

struct RedisCacheOptions {
  std::string host = "127.0.0.1";
  int port = 6379;
  std::string unix_socket;  // when set, host and port are unused
  int db = 0;               // SELECT db
  std::string username;     // AUTH [username] password, when password is set
  std::string password;
  size_t pool_size = 4;
  std::chrono::milliseconds connect_timeout{1000};
  std::chrono::milliseconds op_timeout{2000};  // per round trip, and for a free pool slot
  std::chrono::milliseconds tombstone_ttl = std::chrono::minutes(10);
  std::chrono::milliseconds doc_ttl = std::chrono::hours(24 * 7);  // documents and vectors
  bool check_policy = true;      // refuse a maxmemory-policy that may evict tombstones or epochs
  size_t batch_chunk = 256;      // records per script of a batch put
  const Clock* clock = nullptr;  // wall time for tombstone expiry; null = Clock::System()
};

// Parses a --cache URL:
//   redis://[[USER]:PASSWORD@]HOST[:PORT][/DB][?OPTIONS]
//   redis+unix://[[USER]:PASSWORD@]/PATH/TO/SOCKET[?db=N&OPTIONS]
// OPTIONS: pool=N, timeout=DURATION, connect_timeout=DURATION, doc_ttl=DURATION,
// tombstone_ttl=DURATION, check_policy=0|1. InvalidArgument for anything else, including
// rediss:// and redis-cluster:// (not available in this build; see above).
Result<RedisCacheOptions> ParseRedisCacheUrl(std::string_view url);

// The URL with its password replaced by "***", for logs.
std::string RedactRedisUrl(std::string_view url);

class RedisCache final : public DocumentCache {
 public:
  // Connects once (checking the eviction policy and loading the scripts) and keeps that
  // connection in the pool. Sets SIGPIPE to be ignored if it had its default action (hiredis
  // writes with write(2); a closed connection must not end the process). Unavailable when the server cannot be reached; InvalidArgument for
  // bad options or an unsafe maxmemory-policy.
  static Result<std::unique_ptr<RedisCache>> Open(RedisCacheOptions options);

  ~RedisCache() override;
  RedisCache(const RedisCache&) = delete;
  RedisCache& operator=(const RedisCache&) = delete;

  Result<std::optional<CachedDoc>> Get(std::string_view ns, const DocId& id) override;
  TryGetResult TryGet(std::string_view ns, const DocId& id) override;  // always nullopt
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

  // Test-only: closes every idle pooled connection (as a server restart would break them).
  void DropIdleConnectionsForTest();

  class Conn;  // one pooled connection (redis_cache.cc)

 private:
  explicit RedisCache(RedisCacheOptions options);

  // Runs `fn` on a pooled connection; repeats it once on a new connection when it failed with a
  // broken connection that came from the pool.
  Status WithConn(const std::function<Status(Conn&)>& fn);
  Result<std::unique_ptr<Conn>> Acquire(bool* reused);
  void Release(std::unique_ptr<Conn> conn);
  Result<std::unique_ptr<Conn>> Connect();

  std::optional<uint64_t> EpochOf(std::string_view ns);  // as last seen; nullopt if never
  void SawEpoch(std::string_view ns, uint64_t epoch);
  // Runs the document-key scripts of one call with the epoch last seen, repeating them with the
  // current epoch while the server reports another one.
  Status WithEpoch(
      std::string_view ns,
      const std::function<Status(Conn&, uint64_t epoch, std::optional<uint64_t>* moved)>& fn);
  Result<std::vector<std::optional<std::string>>> GetRaw(std::string_view ns,
                                                         std::span<const DocId> ids, bool vectors);
  Result<std::optional<CachedDoc>> Decode(const std::optional<std::string>& value) const;
  int64_t NowMs() const;

  const RedisCacheOptions options_;

  std::mutex pool_mu_;
  std::condition_variable pool_cv_;
  std::vector<std::unique_ptr<Conn>> idle_;  // guarded by pool_mu_
  size_t open_ = 0;                          // idle + in use; guarded by pool_mu_

  std::shared_mutex epochs_mu_;
  std::unordered_map<std::string, uint64_t> epochs_;  // guarded by epochs_mu_
};

}  // namespace layer::cache
