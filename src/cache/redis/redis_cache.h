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
//    L<len>{ns}g                   the namespace's write generation (write intents)    no TTL
//    L<len>{ns}s                   the last write stamp given (write intents)          no TTL
//    L<len>{ns}W                   hash: the whole-namespace write intent    none while in flight
//    L<len>{ns}w:<t><id>           hash: an id's write intent                none while in flight
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
// Connections: per server (node), a pool of at most `pool_size` blocking hiredis connections,
// opened on demand. A connection that fails (I/O error, timeout, EOF) is closed; a call that
// failed on a connection reused from the pool is repeated once on a new one (so a restarted
// server costs no error). Connection failures and server refusals that may pass (LOADING, BUSY,
// OOM, MASTERDOWN, TRYAGAIN, CLUSTERDOWN) map to Unavailable; a pool that stays exhausted for
// `op_timeout` too.
//
// Redis Cluster (redis-cluster://H:P,H:P,...; docs/design.md §3.11). The slot map (16384 slots,
// CRC16 of a key's hash tag) is read with CLUSTER SLOTS from a seed, then from any known master;
// every master has its own pool, and every new connection checks that master's maxmemory-policy
// and loads the scripts on it. A call runs on the master of its namespace's slot (all keys of a
// call share it, so a batch is one pipeline to one node). MOVED updates that slot, refreshes the
// whole map and repeats the call on the named node; ASK repeats it once on the named node, each
// command preceded by ASKING, without touching the map; TRYAGAIN (a multi-key call during a
// slot migration) repeats it after a short pause, within `op_timeout`; a connection failure
// refreshes the map and repeats the call once if the slot's master changed (a failover).
// Repeating is safe because every call is idempotent (newer-wins puts, reads, deletes; a bump is
// one command, which a redirect never ran). The per-record-key registry `L:records:<key>` is one
// key (one slot) like any other; ListNamespaceRecords reads it, then groups the namespaces'
// HGETs by master and pipelines each group. Ping and Stats ask every master.
//
// Write intents (WriteIntents, docs/design.md §4.9): BeginIntent, EndIntent and Lookup are one
// script each on the namespace's slot; a put checks a row's read or write generation against the
// intents in its own script. An intent keeps no TTL while writes are counted in it, and the
// tombstone TTL once they ended (so that its generation outlives any read still in flight).
//
// TLS (rediss://): hiredis 0.14 (Debian 12's) has no TLS, so it only formats commands and parses
// replies on a TLS connection; the bytes go through OpenSSL on the socket it connected (with the
// same connect and call timeouts).
//
// TryGet always answers nullopt (a network cache). Thread-safe; every other call blocks on the
// network, at most about op_timeout per round trip.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "cache/document_cache.h"
#include "cache/write_intents.h"
#include "common/clock.h"

struct redisContext;
struct redisReply;
struct ssl_ctx_st;

namespace layer::cache {

struct RedisCacheOptions {
  std::string host = "127.0.0.1";
  int port = 6379;
  std::string unix_socket;  // when set, host and port are unused
  int db = 0;               // SELECT db (a cluster has only db 0)
  // Redis Cluster: the seed nodes (host, port) asked for the slot map; host, port and
  // unix_socket are then unused. Empty: one server.
  std::vector<std::pair<std::string, int>> cluster_seeds;
  std::string username;  // AUTH [username] password, when password is set
  std::string password;
  size_t pool_size = 4;
  std::chrono::milliseconds connect_timeout{1000};
  std::chrono::milliseconds op_timeout{2000};  // per round trip, and for a free pool slot
  std::chrono::milliseconds tombstone_ttl = std::chrono::minutes(10);
  std::chrono::milliseconds doc_ttl = std::chrono::hours(24 * 7);  // documents and vectors
  // TLS (rediss://, or tls=1 in a cluster URL): every connection, to every node, is TLS. The
  // server's certificate is verified against `tls_ca_file` (the system's CAs when empty) and its
  // name or IP address against `tls_server_name` (the host connected to when empty), unless
  // `tls_verify` is off. A client certificate is sent when `tls_cert_file` is set.
  bool tls = false;
  std::string tls_ca_file;
  std::string tls_cert_file;
  std::string tls_key_file;
  std::string tls_server_name;
  bool tls_verify = true;
  bool check_policy = true;      // refuse a maxmemory-policy that may evict tombstones or epochs
  size_t batch_chunk = 256;      // records per script of a batch put
  const Clock* clock = nullptr;  // wall time for tombstone expiry; null = Clock::System()
};

// Parses a --cache URL:
//   redis://[[USER]:PASSWORD@]HOST[:PORT][/DB][?OPTIONS]
//   rediss://[[USER]:PASSWORD@]HOST[:PORT][/DB][?OPTIONS]          (TLS)
//   redis+unix://[[USER]:PASSWORD@]/PATH/TO/SOCKET[?db=N&OPTIONS]
//   redis-cluster://[[USER]:PASSWORD@]HOST[:PORT][,HOST[:PORT]...][?OPTIONS]
// OPTIONS: pool=N (per node), timeout=DURATION, connect_timeout=DURATION, doc_ttl=DURATION,
// tombstone_ttl=DURATION, check_policy=0|1, and for TLS tls=1 (implied by rediss://), ca=PATH,
// cert=PATH, key=PATH, sni=NAME, verify=0|1. InvalidArgument for anything else, including a
// database in a cluster URL.
Result<RedisCacheOptions> ParseRedisCacheUrl(std::string_view url);

// The Redis Cluster hash slot of a key: CRC16 (XMODEM) of its hash tag -- the bytes between the
// first '{' and the next '}', when not empty -- or of the whole key, modulo 16384.
uint16_t RedisKeySlot(std::string_view key);

// What a cluster client did about redirections (for tests).
struct RedisClusterCounters {
  uint64_t moved = 0;      // MOVED replies followed
  uint64_t ask = 0;        // ASK replies followed
  uint64_t tryagain = 0;   // TRYAGAIN replies waited out
  uint64_t refreshes = 0;  // slot maps read (the first one included)
};

// The URL with its password replaced by "***", for logs.
std::string RedactRedisUrl(std::string_view url);

class RedisCache final : public DocumentCache, public WriteIntents {
 public:
  // Connects once (checking the eviction policy and loading the scripts) and keeps that
  // connection in the pool; on a cluster, reads the slot map and does so on every master. Sets
  // SIGPIPE to be ignored if it had its default action (hiredis writes with write(2); a closed
  // connection must not end the process). Unavailable when no server can be reached;
  // InvalidArgument for bad options, an unsafe maxmemory-policy (on any master), or a
  // redis-cluster:// URL naming a server that is not in cluster mode.
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
  // Write intents (write_intents.h): keys and scripts in docs/design.md §4.9.
  WriteIntents* write_intents() override { return this; }
  Result<IntentStart> BeginIntent(std::string_view ns, std::span<const DocId> ids,
                                  bool whole_namespace, uint64_t proposed_stamp,
                                  std::chrono::milliseconds deadline) override;
  Status EndIntent(std::string_view ns, std::span<const DocId> ids, bool whole_namespace,
                   uint64_t generation) override;
  Result<std::vector<IntentLookup>> Lookup(std::string_view ns,
                                           std::span<const DocId> ids) override;
  Result<uint64_t> Generation(std::string_view ns) override;
  Status Ping() override;       // every master of a cluster
  CacheStats Stats() override;  // summed over the masters of a cluster

  // The slot that holds every key of namespace `ns`.
  static uint16_t NamespaceSlot(std::string_view ns);
  RedisClusterCounters ClusterCounters() const;

  // Test-only: closes every idle pooled connection (as a server restart would break them).
  void DropIdleConnectionsForTest();

  class Conn;  // one pooled connection (redis_cache.cc)
  class Node;  // one server and its pool (redis_cache.cc)
  struct Redirect;

 private:
  explicit RedisCache(RedisCacheOptions options);

  // Runs `fn` on the master of `slot` (the one server, when not a cluster), following cluster
  // redirections and failovers as described above; `fn` may run more than once.
  Status OnSlot(uint16_t slot, const std::function<Status(Conn&)>& fn);
  // The master of `slot` (reading the slot map when it names none); the one server when not a
  // cluster.
  Result<std::shared_ptr<Node>> NodeFor(uint16_t slot);
  std::shared_ptr<Node> NodeAt(const std::string& host, int port);  // created on first use
  // One command on the master of its key's slot (cmd[1]); an error reply is a failure, any
  // other reply goes to `read` (when set).
  Status CommandOnSlot(std::string_view what, const std::vector<std::string>& cmd,
                       const std::function<Status(const redisReply&)>& read);
  static std::function<Status(const redisReply&)> StringInto(std::optional<std::string>* out);
  // Reads the slot map from `first`, then the known masters, then the seeds, and `last_resort`
  // last (a node that just failed), unless another thread read it since the caller saw
  // generation `seen_gen`.
  Status RefreshSlots(uint64_t seen_gen, const std::shared_ptr<Node>& first,
                      const std::shared_ptr<Node>& last_resort);
  void SetSlotOwner(uint16_t slot, std::shared_ptr<Node> node);
  std::vector<std::shared_ptr<Node>> Masters();  // distinct; the one server when not a cluster

  std::optional<uint64_t> EpochOf(std::string_view ns);  // as last seen; nullopt if never
  void SawEpoch(std::string_view ns, uint64_t epoch);
  // Runs the document-key scripts of one call with the epoch last seen, repeating them with the
  // current epoch while the server reports another one.
  Status WithEpoch(
      std::string_view ns,
      const std::function<Status(Conn&, uint64_t epoch, std::optional<uint64_t>* moved)>& fn);
  // The id scripts of one call (GetRaw, Invalidate, Lookup): `script` over `ids` in chunks of
  // batch_chunk, pipelined on one connection, with the epoch last seen (all chunks again when it
  // moved, WithEpoch). A chunk's keys are `head`'s and then `keys`' for each of its ids; its
  // ARGV the epoch and `args`. `start` (when set) runs before every attempt, `read` (when set)
  // takes each chunk's answer (values from element 1).
  Status EvalIdChunks(
      std::string_view what, std::string_view ns, std::span<const DocId> ids, size_t script,
      const std::function<void(uint64_t epoch, std::vector<std::string>* keys)>& head,
      const std::function<void(uint64_t epoch, const DocId& id, std::vector<std::string>* keys)>&
          keys,
      const std::vector<std::string>& args, const std::function<void()>& start,
      const std::function<Status(const redisReply& values)>& read);
  Result<std::vector<std::optional<std::string>>> GetRaw(std::string_view ns,
                                                         std::span<const DocId> ids, bool vectors);
  Result<std::optional<CachedDoc>> Decode(const std::optional<std::string>& value) const;
  int64_t NowMs() const;

  const RedisCacheOptions options_;
  const bool cluster_;
  // The TLS context of every connection (options_.tls); declared before the nodes, which use it.
  std::shared_ptr<ssl_ctx_st> tls_;
  Status tls_status_;  // why tls_ could not be made

  std::shared_ptr<Node> single_;  // the one server, when not a cluster

  std::mutex nodes_mu_;
  std::unordered_map<std::string, std::shared_ptr<Node>> nodes_;  // "host:port"; nodes_mu_

  std::mutex refresh_mu_;  // one slot-map read at a time
  std::shared_mutex map_mu_;
  std::vector<std::shared_ptr<Node>> slots_;  // 16384 owners (null: unknown); map_mu_
  std::atomic<uint64_t> map_gen_{0};          // slot maps read so far

  mutable std::mutex counters_mu_;
  RedisClusterCounters counters_;  // guarded by counters_mu_

  std::shared_mutex epochs_mu_;
  std::unordered_map<std::string, uint64_t> epochs_;  // guarded by epochs_mu_
};

}  // namespace layer::cache
