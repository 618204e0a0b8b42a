// The Redis backend: the DocumentCache contract suite on a real redis-server (started once per
// test process on a unix socket in a temporary directory, flushed before every case), and what
// only this backend does: two cache objects (two replicas) on one server, the eviction policy
// check and eviction under maxmemory, tombstone expiry and reaping, reconnects and NOSCRIPT.
//
// A missing redis-server skips these tests, except under CI (CI=true), where it fails them.
#include "cache/redis/redis_cache.h"

#include <arpa/inet.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <barrier>
#include <chrono>
#include <filesystem>
#include <random>
#include <thread>

#include "cache/fault_injecting_cache.h"
#include "cache/guard.h"
#include "common/metrics.h"
#include "unit/cache/document_cache_contract.h"
#include "unit/cache/write_intents_contract.h"
#include "unit/cache/test_util.h"

namespace layer::cache {
namespace {

using namespace std::chrono_literals;
using testing::Doc;
using testing::FreePort;
using testing::TempDir;

std::string RedisServerBinary() {
  const char* env = getenv("LAYER_REDIS_SERVER");
  std::string bin = env && *env ? env : "/usr/bin/redis-server";
  return std::filesystem::exists(bin) ? bin : std::string();
}

bool UnderCi() {
  const char* ci = getenv("CI");
  return ci && std::string_view(ci) == "true";
}

// A redis-server child process on a unix socket (no TCP port) in its own directory; with `tls`,
// also on a TLS port of 127.0.0.1 with a self-signed certificate (made by the openssl command),
// which Options() then connects to.
class RedisServer {
 public:
  explicit RedisServer(std::string policy = "volatile-lru", bool tls = false)
      : policy_(std::move(policy)), tls_(tls) {}
  ~RedisServer() { Stop(); }

  const std::string& socket() const { return socket_; }
  bool running() const { return pid_ > 0; }

  // Starts the server and waits until it answers PING (10 s bound: a hang, not a timing check).
  bool Start() {
    const std::string bin = RedisServerBinary();
    if (bin.empty()) return false;
    socket_ = dir_.Sub("redis.sock");
    std::vector<std::string> args = {bin, "--port", "0", "--unixsocket", socket_,
                                     "--unixsocketperm", "700", "--save", "", "--appendonly",
                                     "no", "--dir", dir_.path(), "--logfile",
                                     dir_.Sub("redis.log"), "--maxmemory-policy", policy_};
    if (tls_) {
      const std::string make_cert =
          "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost -addext "
          "subjectAltName=IP:127.0.0.1,DNS:localhost -keyout " + dir_.Sub("key.pem") +
          " -out " + dir_.Sub("cert.pem") + " >/dev/null 2>&1";
      if (std::system(make_cert.c_str()) != 0) return false;
      tls_port_ = FreePort();
      for (std::string a : {std::string("--tls-port"), std::to_string(tls_port_),
                            std::string("--tls-cert-file"), dir_.Sub("cert.pem"),
                            std::string("--tls-key-file"), dir_.Sub("key.pem"),
                            std::string("--tls-auth-clients"), std::string("no")}) {
        args.push_back(std::move(a));
      }
    }
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_ = fork();
    if (pid_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive the test process
      execv(bin.c_str(), argv.data());
      _exit(127);
    }
    if (pid_ < 0) return false;
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < deadline) {
      if (Command("PING") == "PONG") return true;
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return false;
      }
      std::this_thread::sleep_for(5ms);  // polling for readiness, not waiting out a time
    }
    return false;
  }

  void Stop() {
    if (pid_ <= 0) return;
    kill(pid_, SIGKILL);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    std::error_code ec;
    std::filesystem::remove(socket_, ec);
  }

  // Runs one command on a fresh connection; answers the reply as text (an integer in decimal,
  // an error as "ERR: ..."), "" on a connection failure.
  std::string Command(const std::string& a, const std::string& b = "", const std::string& c = "",
                      const std::string& d = "") {
    timeval tv{2, 0};
    redisContext* ctx = redisConnectUnixWithTimeout(socket_.c_str(), tv);
    if (!ctx || ctx->err) {
      if (ctx) redisFree(ctx);
      return "";
    }
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    for (const std::string* s : {&a, &b, &c, &d}) {
      if (s->empty()) break;
      argv.push_back(s->data());
      lens.push_back(s->size());
    }
    auto* r = static_cast<redisReply*>(
        redisCommandArgv(ctx, static_cast<int>(argv.size()), argv.data(), lens.data()));
    std::string out;
    if (r) {
      if (r->type == REDIS_REPLY_INTEGER) {
        out = std::to_string(r->integer);
      } else if (r->type == REDIS_REPLY_ERROR) {
        out = "ERR: " + std::string(r->str, r->len);
      } else if (r->str) {
        out.assign(r->str, r->len);
      }
      freeReplyObject(r);
    }
    redisFree(ctx);
    return out;
  }

  // A field of INFO (e.g. "evicted_keys"), or "" if absent.
  std::string Info(const std::string& section, const std::string& field) {
    std::string info = Command("INFO", section);
    size_t at = info.find(field + ":");
    if (at == std::string::npos) return "";
    at += field.size() + 1;
    return info.substr(at, info.find_first_of("\r\n", at) - at);
  }

  RedisCacheOptions Options() const {
    RedisCacheOptions o;
    if (tls_) {
      o.host = "127.0.0.1";
      o.port = tls_port_;
      o.tls = true;
      o.tls_ca_file = dir_.Sub("cert.pem");
    } else {
      o.unix_socket = socket_;
    }
    o.pool_size = 4;
    return o;
  }
  std::string CertFile() const { return dir_.Sub("cert.pem"); }

 private:
  std::string policy_;
  bool tls_ = false;
  int tls_port_ = 0;
  TempDir dir_;
  std::string socket_;
  pid_t pid_ = -1;
};

// The server shared by the contract cases of this process (stopped at exit).
RedisServer* SharedServer() {
  static std::unique_ptr<RedisServer> server = [] {
    auto s = std::make_unique<RedisServer>();
    if (!s->Start()) s.reset();
    return s;
  }();
  return server.get();
}

// Skips (or, under CI, fails) a test when redis-server is not installed.
#define REQUIRE_REDIS_SERVER()                                                     \
  do {                                                                             \
    if (RedisServerBinary().empty()) {                                             \
      if (UnderCi()) FAIL() << "redis-server is not installed (scripts/setup.sh)"; \
      GTEST_SKIP() << "redis-server is not installed";                             \
    }                                                                              \
  } while (0)

// The TLS server shared by the contract cases over TLS (stopped at exit).
RedisServer* SharedTlsServer() {
  static std::unique_ptr<RedisServer> server = [] {
    auto s = std::make_unique<RedisServer>("volatile-lru", /*tls=*/true);
    if (!s->Start()) s.reset();
    return s;
  }();
  return server.get();
}

class RedisContractBackend final : public DocumentCacheBackend {
 public:
  static std::unique_ptr<DocumentCacheBackend> Open() { return OpenOn(SharedServer()); }
  static std::unique_ptr<DocumentCacheBackend> OpenTls() { return OpenOn(SharedTlsServer()); }
  static std::unique_ptr<DocumentCacheBackend> OpenOn(RedisServer* server) {
    if (!server) {
      if (!RedisServerBinary().empty()) {
        ADD_FAILURE() << "redis-server did not start";
      } else if (UnderCi()) {
        ADD_FAILURE() << "redis-server is not installed (scripts/setup.sh installs it)";
      } else {
        [] { GTEST_SKIP() << "redis-server is not installed (scripts/setup.sh installs it)"; }();
      }
      return nullptr;
    }
    if (server->Command("FLUSHALL") != "OK") {
      ADD_FAILURE() << "FLUSHALL failed";
      return nullptr;
    }
    auto c = RedisCache::Open(server->Options());
    if (!c.ok()) {
      ADD_FAILURE() << c.status().ToString();
      return nullptr;
    }
    auto b = std::make_unique<RedisContractBackend>();
    b->cache_ = std::move(*c);
    return b;
  }
  DocumentCache& cache() override { return *cache_; }

 private:
  std::unique_ptr<RedisCache> cache_;
};

INSTANTIATE_TEST_SUITE_P(Redis, DocumentCacheContractTest,
                         ::testing::Values(DocumentCacheContractParam{
                             "Redis", &RedisContractBackend::Open}));
INSTANTIATE_TEST_SUITE_P(Redis, WriteIntentsContractTest,
                         ::testing::Values(DocumentCacheContractParam{
                             "Redis", &RedisContractBackend::Open}));
// Over TLS (rediss://): the same suites on a TLS port.
INSTANTIATE_TEST_SUITE_P(RedisTls, DocumentCacheContractTest,
                         ::testing::Values(DocumentCacheContractParam{
                             "RedisTls", &RedisContractBackend::OpenTls}));
INSTANTIATE_TEST_SUITE_P(RedisTls, WriteIntentsContractTest,
                         ::testing::Values(DocumentCacheContractParam{
                             "RedisTls", &RedisContractBackend::OpenTls}));

class RedisCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    REQUIRE_REDIS_SERVER();
    ASSERT_TRUE(server_.Start()) << "redis-server did not start";
  }
  std::unique_ptr<RedisCache> OpenCache(RedisCacheOptions o) {
    auto r = RedisCache::Open(std::move(o));
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? std::move(r).value() : nullptr;
  }
  std::unique_ptr<RedisCache> OpenCache() { return OpenCache(server_.Options()); }
  std::optional<CachedDoc> MustGet(DocumentCache& c, std::string_view ns, const DocId& id) {
    auto r = c.Get(ns, id);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : std::nullopt;
  }

  RedisServer server_;
};

// Two cache objects are two replicas: races between them still keep the newest stamp per key.
TEST_F(RedisCacheTest, TwoReplicasRacingOnOneKeyKeepNewerWins) {
  auto a = OpenCache(), b = OpenCache();
  ASSERT_TRUE(a && b);
  constexpr int kThreads = 6, kRounds = 80;
  std::mt19937_64 rng(7);
  std::vector<std::vector<uint64_t>> stamps(kThreads, std::vector<uint64_t>(kRounds));
  for (auto& per_thread : stamps) {
    for (auto& st : per_thread) st = 1 + rng() % 1'000'000;
  }
  std::barrier sync(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      DocumentCache& c = t % 2 == 0 ? static_cast<DocumentCache&>(*a) : *b;
      for (int r = 0; r < kRounds; ++r) {
        sync.arrive_and_wait();
        const uint64_t st = stamps[t][r];
        if (t % 3 == 2) {  // a tombstone: must win or lose by its stamp like a row
          ASSERT_TRUE(c.Tombstone("race", DocId::U64(r), st).ok());
        } else {
          ASSERT_TRUE(
              c.PutIfNewer("race", DocId::U64(r), Doc("{\"s\":" + std::to_string(st) + "}", st))
                  .ok());
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int r = 0; r < kRounds; ++r) {
    uint64_t want = 0;
    int winner = 0;
    for (int t = 0; t < kThreads; ++t) {
      if (stamps[t][r] >= want) {
        want = stamps[t][r];
        winner = t;
      }
    }
    for (DocumentCache* c :
         {static_cast<DocumentCache*>(a.get()), static_cast<DocumentCache*>(b.get())}) {
      auto got = MustGet(*c, "race", DocId::U64(r));
      ASSERT_TRUE(got.has_value()) << "round " << r;
      EXPECT_EQ(got->upserted_at, want) << "round " << r;
      EXPECT_EQ(got->tombstone, winner % 3 == 2) << "round " << r;
    }
  }
}

// A replica that never saw a bump (its epoch is stale) neither reads nor writes the old epoch.
TEST_F(RedisCacheTest, AnEpochBumpThroughOneReplicaIsSeenByTheOther) {
  auto a = OpenCache(), b = OpenCache();
  ASSERT_TRUE(a && b);
  const DocId id = DocId::String("x");
  ASSERT_TRUE(*b->PutIfNewer("ns", id, Doc("{\"v\":1}", 100)));
  ASSERT_TRUE(b->PutNamespaceRecord("ns", "cache_warmed_through", "5").ok());
  EXPECT_TRUE(MustGet(*b, "ns", id).has_value());
  ASSERT_TRUE(a->BumpEpoch("ns").ok());
  EXPECT_FALSE(MustGet(*b, "ns", id).has_value());
  EXPECT_FALSE(b->GetNamespaceRecord("ns", "cache_warmed_through")->has_value());
  // A row B put while the epoch moved under it may have been read before the bump: dropped.
  // B's next row lands in the new epoch, where A reads it.
  ASSERT_TRUE(a->BumpEpoch("ns").ok());
  EXPECT_FALSE(*b->PutIfNewer("ns", id, Doc("{\"v\":2}", 1)));
  EXPECT_FALSE(MustGet(*a, "ns", id).has_value());
  ASSERT_TRUE(*b->PutIfNewer("ns", id, Doc("{\"v\":2}", 1)));
  EXPECT_EQ(MustGet(*a, "ns", id)->attributes_json, "{\"v\":2}");
  ASSERT_TRUE(a->BumpEpoch("ns").ok());
  std::vector<DocId> ids{id};
  auto multi = b->MultiGet("ns", ids);
  ASSERT_TRUE(multi.ok());
  EXPECT_FALSE((*multi)[0].has_value());
  // A tombstone through B after A's bump blocks older puts through A.
  ASSERT_TRUE(b->Tombstone("ns", id, 500).ok());
  EXPECT_FALSE(*a->PutIfNewer("ns", id, Doc("{\"v\":3}", 400)));
  EXPECT_TRUE(MustGet(*a, "ns", id)->tombstone);
}

TEST_F(RedisCacheTest, BatchesLargerThanAChunkArePipelinedInOrder) {
  RedisCacheOptions o = server_.Options();
  o.batch_chunk = 3;
  auto c = OpenCache(o);
  ASSERT_TRUE(c);
  std::vector<std::pair<DocId, CachedDoc>> batch;
  for (int i = 0; i < 10; ++i)
    batch.emplace_back(DocId::U64(i % 4), Doc("{\"i\":" + std::to_string(i) + "}", 10 + i));
  batch.emplace_back(DocId::U64(0), Doc("{\"old\":1}", 1));  // older than the first of its key
  auto stored = c->PutIfNewerBatch("ns", batch);
  ASSERT_TRUE(stored.ok()) << stored.status().ToString();
  std::vector<bool> want(10, true);
  want.push_back(false);
  EXPECT_EQ(*stored, want);
  std::vector<DocId> ids;
  for (int i = 0; i < 7; ++i) ids.push_back(DocId::U64(i));
  auto got = c->MultiGet("ns", ids);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ((*got)[0]->attributes_json, "{\"i\":8}");
  EXPECT_EQ((*got)[3]->attributes_json, "{\"i\":7}");
  EXPECT_FALSE((*got)[4].has_value());
  // Invalidations are chunked the same way.
  ASSERT_TRUE(c->Invalidate("ns", ids).ok());
  got = c->MultiGet("ns", ids);
  ASSERT_TRUE(got.ok());
  for (const auto& d : *got) EXPECT_FALSE(d.has_value());
}

TEST_F(RedisCacheTest, TombstonesExpireOnTheClockAndAreReapedByLaterWrites) {
  ManualClock clock(1'700'000'000'000);
  RedisCacheOptions o = server_.Options();
  o.clock = &clock;
  o.tombstone_ttl = 10min;
  auto c = OpenCache(o);
  ASSERT_TRUE(c);
  const DocId id = DocId::U64(1);
  ASSERT_TRUE(c->Tombstone("ns", id, 500).ok());
  clock.Advance(10min - 1ms);
  EXPECT_TRUE(MustGet(*c, "ns", id)->tombstone);
  EXPECT_FALSE(*c->PutIfNewer("ns", id, Doc("{}", 100)));
  clock.Advance(1ms);
  // Expired: absent for reads and writes.
  EXPECT_FALSE(MustGet(*c, "ns", id).has_value());
  ASSERT_TRUE(c->Tombstone("ns", DocId::U64(2), 1).ok());  // the write that reaps
  EXPECT_EQ(server_.Command("EXISTS", "L2{ns}d0:1" + id.bytes), "0");
  EXPECT_EQ(server_.Command("ZCARD", "L2{ns}t"), "1");  // only the new tombstone is indexed
  EXPECT_TRUE(*c->PutIfNewer("ns", id, Doc("{\"back\":1}", 100)));
  EXPECT_EQ(MustGet(*c, "ns", id)->attributes_json, "{\"back\":1}");
}

TEST_F(RedisCacheTest, DocumentsHaveATtlAndTombstonesEpochsAndRecordsHaveNone) {
  auto c = OpenCache();
  ASSERT_TRUE(c);
  ASSERT_TRUE(c->PutIfNewer("ns", DocId::String("d"), Doc("{}", 1)).ok());
  ASSERT_TRUE(c->PutVector("ns", DocId::String("d"), "vec").ok());
  ASSERT_TRUE(c->Tombstone("ns", DocId::String("t"), 1).ok());
  ASSERT_TRUE(c->BumpEpoch("other").ok());
  ASSERT_TRUE(c->PutNamespaceRecord("ns", "k", "v").ok());
  EXPECT_GT(std::stoll(server_.Command("PTTL", "L2{ns}d0:3d")), 0);
  EXPECT_GT(std::stoll(server_.Command("PTTL", "L2{ns}v0:3d")), 0);
  EXPECT_EQ(server_.Command("PTTL", "L2{ns}d0:3t"), "-1");
  EXPECT_EQ(server_.Command("PTTL", "L2{ns}t"), "-1");
  EXPECT_EQ(server_.Command("PTTL", "L5{other}e"), "-1");
  EXPECT_EQ(server_.Command("PTTL", "L2{ns}r"), "-1");
  // A row replacing the tombstone gets a TTL; a tombstone replacing a row loses it.
  ASSERT_TRUE(*c->PutIfNewer("ns", DocId::String("t"), Doc("{}", 2)));
  EXPECT_GT(std::stoll(server_.Command("PTTL", "L2{ns}d0:3t")), 0);
  ASSERT_TRUE(c->Tombstone("ns", DocId::String("d"), 5).ok());
  EXPECT_EQ(server_.Command("PTTL", "L2{ns}d0:3d"), "-1");
}

TEST_F(RedisCacheTest, AnUnsafeEvictionPolicyIsRefused) {
  for (std::string policy :
       {"allkeys-lru", "allkeys-lfu", "allkeys-random", "volatile-random", "volatile-lfu"}) {
    ASSERT_EQ(server_.Command("CONFIG", "SET", "maxmemory-policy", policy), "OK");
    auto c = RedisCache::Open(server_.Options());
    ASSERT_FALSE(c.ok()) << policy;
    EXPECT_EQ(c.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(c.status().message().find(policy), std::string::npos) << c.status().message();
    EXPECT_NE(c.status().message().find("volatile-lru"), std::string::npos);
  }
  // check_policy=0 lets an operator who knows better connect anyway.
  RedisCacheOptions o = server_.Options();
  o.check_policy = false;
  EXPECT_TRUE(RedisCache::Open(o).ok());
  for (std::string policy : {"volatile-lru", "volatile-ttl", "noeviction"}) {
    ASSERT_EQ(server_.Command("CONFIG", "SET", "maxmemory-policy", policy), "OK");
    EXPECT_TRUE(RedisCache::Open(server_.Options()).ok()) << policy;
  }
}

// A full server evicts rows (misses), never tombstones, epochs or namespace records: no older
// row ever comes back over a delete, and nothing of a bumped epoch reappears.
TEST_F(RedisCacheTest, EvictionUnderMaxmemoryDropsRowsNeverTombstonesOrEpochs) {
  auto c = OpenCache();
  ASSERT_TRUE(c);
  constexpr int kDeleted = 200;
  // Rows of epoch 0, then a bump: they must stay unreachable whatever is evicted.
  ASSERT_TRUE(*c->PutIfNewer("gone", DocId::U64(1), Doc("{\"old\":1}", 1)));
  ASSERT_TRUE(c->BumpEpoch("gone").ok());
  ASSERT_TRUE(c->PutNamespaceRecord("ns", "cache_warmed_through", "77").ok());
  for (int i = 0; i < kDeleted; ++i) {
    ASSERT_TRUE(*c->PutIfNewer("ns", DocId::U64(i), Doc("{\"v\":\"old\"}", 100)));
    ASSERT_TRUE(c->Tombstone("ns", DocId::U64(i), 200).ok());
  }
  const long used = std::stol(server_.Info("memory", "used_memory"));
  ASSERT_EQ(server_.Command("CONFIG", "SET", "maxmemory", std::to_string(used + (2 << 20))), "OK");
  // Fill until the server has evicted rows (an event, not a duration).
  const std::string big(16 << 10, 'x');
  int written = 0;
  while (server_.Info("stats", "evicted_keys") == "0") {
    ASSERT_LT(written, 10000) << "nothing was evicted";
    auto r =
        c->PutIfNewer("ns", DocId::U64(100000 + written), Doc("{\"pad\":\"" + big + "\"}", 300));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ++written;
  }
  // Keep writing a while past the first eviction.
  for (int i = 0; i < 200; ++i, ++written) {
    ASSERT_TRUE(
        c->PutIfNewer("ns", DocId::U64(100000 + written), Doc("{\"pad\":\"" + big + "\"}", 300))
            .ok());
  }
  EXPECT_LT(std::stol(server_.Info("memory", "used_memory")), used + (3 << 20));
  int misses = 0;
  for (int i = 0; i < written; ++i) {
    auto got = MustGet(*c, "ns", DocId::U64(100000 + i));
    if (!got) ++misses;
  }
  EXPECT_GT(misses, 0);
  for (int i = 0; i < kDeleted; ++i) {
    auto got = MustGet(*c, "ns", DocId::U64(i));
    ASSERT_TRUE(got.has_value()) << "tombstone " << i << " was evicted";
    EXPECT_TRUE(got->tombstone);
    // The backfill of a read from before the delete still cannot land.
    EXPECT_FALSE(*c->PutIfNewer("ns", DocId::U64(i), Doc("{\"v\":\"old\"}", 100)));
  }
  EXPECT_FALSE(MustGet(*c, "gone", DocId::U64(1)).has_value());
  EXPECT_EQ(**c->GetNamespaceRecord("ns", "cache_warmed_through"), "77");
}

TEST_F(RedisCacheTest, ReconnectsAfterTheServerRestarts) {
  auto c = OpenCache();
  ASSERT_TRUE(c);
  ASSERT_TRUE(*c->PutIfNewer("ns", DocId::U64(1), Doc("{}", 1)));
  server_.Stop();
  EXPECT_EQ(c->Ping().code(), StatusCode::kUnavailable);
  auto down = c->Get("ns", DocId::U64(1));
  EXPECT_EQ(down.status().code(), StatusCode::kUnavailable);
  ASSERT_TRUE(server_.Start());
  // The pooled connections died with the server: the next calls reconnect (and reload the
  // scripts) without an error. The restarted server is empty.
  EXPECT_TRUE(c->Ping().ok());
  EXPECT_FALSE(MustGet(*c, "ns", DocId::U64(1)).has_value());
  EXPECT_TRUE(*c->PutIfNewer("ns", DocId::U64(1), Doc("{\"after\":1}", 1)));
  EXPECT_EQ(MustGet(*c, "ns", DocId::U64(1))->attributes_json, "{\"after\":1}");
}

TEST_F(RedisCacheTest, ARestartWhileConnectionsAreIdleCostsNoError) {
  auto c = OpenCache();
  ASSERT_TRUE(c);
  ASSERT_TRUE(c->Ping().ok());
  server_.Stop();
  ASSERT_TRUE(server_.Start());
  // The idle pooled connection is dead; the call is repeated once on a new one.
  EXPECT_TRUE(c->Ping().ok());
  EXPECT_TRUE(*c->PutIfNewer("ns", DocId::U64(1), Doc("{}", 1)));
}

TEST_F(RedisCacheTest, FlushedScriptsAreReloaded) {
  auto c = OpenCache();
  ASSERT_TRUE(c);
  ASSERT_TRUE(*c->PutIfNewer("ns", DocId::U64(1), Doc("{}", 1)));
  ASSERT_EQ(server_.Command("SCRIPT", "FLUSH"), "OK");
  EXPECT_TRUE(*c->PutIfNewer("ns", DocId::U64(1), Doc("{\"v\":2}", 2)));
  EXPECT_EQ(MustGet(*c, "ns", DocId::U64(1))->attributes_json, "{\"v\":2}");
}

TEST_F(RedisCacheTest, AnUnreachableServerIsUnavailable) {
  RedisCacheOptions o = server_.Options();
  o.unix_socket += ".nothing-here";
  auto c = RedisCache::Open(o);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), StatusCode::kUnavailable);
}

// A write that cannot register its intent is one the other replicas do not know of, so the guard
// tries intents even while its breaker is open (docs/design.md §4.9), and leaves the breaker as
// it is whatever they answer.
TEST_F(RedisCacheTest, TheGuardTriesWriteIntentsWhileItsBreakerIsOpen) {
  auto c = RedisCache::Open(server_.Options());
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  auto faults = std::make_shared<FaultInjectingCache>(std::shared_ptr<DocumentCache>(
      std::move(*c)));
  MetricsRegistry metrics;
  CacheGuardOptions o;
  o.metrics = &metrics;
  o.open_interval = std::chrono::hours(1);  // no probe during the test
  CacheGuard guard(faults, o);
  ASSERT_TRUE(guard.shares_writes());
  ASSERT_TRUE(testing::RunTask(guard.Ping()).ok());
  faults->FailOp(CacheOp::kGet, Status::IoError("boom"));
  EXPECT_FALSE(testing::RunTask(guard.Get("ns", DocId::U64(1))).ok());
  ASSERT_EQ(guard.breaker_state(), BreakerState::kOpen);
  EXPECT_EQ(testing::RunTask(guard.Lookup("ns", {DocId::U64(1)})).status().message(),
            "cache circuit open");

  auto started = testing::RunTask(guard.BeginIntent("ns", {DocId::U64(1)}, false, 100, 60s));
  ASSERT_TRUE(started.ok()) << started.status().ToString();
  EXPECT_EQ(started->generation, 1u);
  EXPECT_EQ(guard.breaker_state(), BreakerState::kOpen);  // a success closes nothing
  // Registered on the server: another replica's lookup sees the write in flight.
  auto seen = faults->Lookup("ns", std::vector<DocId>{DocId::U64(1)});
  ASSERT_TRUE(seen.ok());
  EXPECT_TRUE((*seen)[0].write_in_flight);
  EXPECT_TRUE(testing::RunTask(guard.EndIntent("ns", {DocId::U64(1)}, false, 1)).ok());
  seen = faults->Lookup("ns", std::vector<DocId>{DocId::U64(1)});
  ASSERT_TRUE(seen.ok());
  EXPECT_FALSE((*seen)[0].write_in_flight);
  faults->FailAll(Status::Unavailable("down"));
  EXPECT_FALSE(testing::RunTask(guard.BeginIntent("ns", {DocId::U64(2)}, false, 100, 60s)).ok());
  EXPECT_EQ(guard.breaker_state(), BreakerState::kOpen);
  faults->ClearFailures();
}

TEST(RedisTlsTest, TheServersCertificateAndNameAreVerified) {
  REQUIRE_REDIS_SERVER();
  RedisServer server("volatile-lru", /*tls=*/true);
  ASSERT_TRUE(server.Start()) << "redis-server did not start with TLS";
  {
    auto c = RedisCache::Open(server.Options());
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    ASSERT_TRUE(*(*c)->PutIfNewer("ns", DocId::U64(1), Doc(R"({"v":1})", 1)));
    auto got = (*c)->Get("ns", DocId::U64(1));
    ASSERT_TRUE(got.ok() && got->has_value());
    EXPECT_EQ((*got)->attributes_json, R"({"v":1})");
  }
  RedisCacheOptions o = server.Options();
  o.tls_ca_file.clear();  // the system's CAs: the self-signed certificate is not among them
  auto c = RedisCache::Open(o);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(c.status().message().find("certificate"), std::string::npos) << c.status().message();
  o.tls_verify = false;  // verify=0: any certificate
  EXPECT_TRUE(RedisCache::Open(o).ok());
  o = server.Options();
  o.tls_server_name = "other.example";  // not the certificate's name
  c = RedisCache::Open(o);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), StatusCode::kUnavailable);
  o = server.Options();
  o.tls_server_name = "localhost";  // the certificate's DNS name
  EXPECT_TRUE(RedisCache::Open(o).ok());
  o = server.Options();
  o.tls = false;  // plain text to a TLS port: refused, not hung
  o.op_timeout = 500ms;
  EXPECT_FALSE(RedisCache::Open(o).ok());
  o = server.Options();
  o.tls_ca_file = "/nonexistent/ca.pem";
  c = RedisCache::Open(o);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), StatusCode::kInvalidArgument);
}

TEST(RedisCacheUrlTest, ParsesHostPortDbCredentialsAndOptions) {
  auto o = ParseRedisCacheUrl("redis://cache.internal:6380/3?pool=8&timeout=500ms&doc_ttl=1d");
  ASSERT_TRUE(o.ok()) << o.status().ToString();
  EXPECT_EQ(o->host, "cache.internal");
  EXPECT_EQ(o->port, 6380);
  EXPECT_EQ(o->db, 3);
  EXPECT_EQ(o->pool_size, 8u);
  EXPECT_EQ(o->op_timeout, 500ms);
  EXPECT_EQ(o->doc_ttl, std::chrono::hours(24));
  EXPECT_TRUE(o->password.empty());
  o = ParseRedisCacheUrl("redis://bob:s%40cret@h");
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->host, "h");
  EXPECT_EQ(o->port, 6379);
  EXPECT_EQ(o->username, "bob");
  EXPECT_EQ(o->password, "s@cret");
  o = ParseRedisCacheUrl("redis://:pw@[::1]:7000");
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->host, "::1");
  EXPECT_EQ(o->port, 7000);
  EXPECT_EQ(o->password, "pw");
  o = ParseRedisCacheUrl("redis+unix:///run/redis.sock?db=2&check_policy=0");
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->unix_socket, "/run/redis.sock");
  EXPECT_EQ(o->db, 2);
  EXPECT_FALSE(o->check_policy);
  o = ParseRedisCacheUrl("rediss://:pw@cache.internal:6380?ca=/etc/ca.pem&sni=redis.example");
  ASSERT_TRUE(o.ok()) << o.status().ToString();
  EXPECT_TRUE(o->tls);
  EXPECT_TRUE(o->tls_verify);
  EXPECT_EQ(o->host, "cache.internal");
  EXPECT_EQ(o->port, 6380);
  EXPECT_EQ(o->tls_ca_file, "/etc/ca.pem");
  EXPECT_EQ(o->tls_server_name, "redis.example");
  o = ParseRedisCacheUrl("redis-cluster://a:1,b:2?tls=1&cert=/c.pem&key=/k.pem&verify=0");
  ASSERT_TRUE(o.ok()) << o.status().ToString();
  EXPECT_TRUE(o->tls);
  EXPECT_FALSE(o->tls_verify);
  EXPECT_EQ(o->tls_cert_file, "/c.pem");
  EXPECT_EQ(o->tls_key_file, "/k.pem");
  EXPECT_FALSE(ParseRedisCacheUrl("redis://h").value().tls);
  for (std::string bad :
       {"http://h", "redis://h:0", "redis://h:x", "redis://h/db", "redis://h?pool=0",
        "redis://h?timeout=soon", "redis+unix://relative.sock", "redis://h?ca=/ca.pem",
        "rediss://h?tls=0", "rediss://h?cert=/c.pem", "rediss://h?verify=2", "rediss://h?ca=",
        "redis+unix:///s.sock?tls=1"}) {
    EXPECT_EQ(ParseRedisCacheUrl(bad).status().code(), StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_EQ(RedactRedisUrl("redis://bob:secret@h:1/0?pool=2"), "redis://bob:***@h:1/0?pool=2");
  EXPECT_EQ(RedactRedisUrl("redis://h:1"), "redis://h:1");
}

}  // namespace
}  // namespace layer::cache
