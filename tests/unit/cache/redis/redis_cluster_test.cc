// The Redis backend on a Redis Cluster (redis-cluster://, docs/design.md §3.11): the DocumentCache
// contract suite on three masters started by the test (redis-server --cluster-enabled yes on
// three free ports, joined with redis-cli --cluster create, flushed before every case), and what
// only a cluster does: slots computed as the server computes them, namespaces spread over the
// masters, a slot migrated under live caches (ASK while it migrates, MOVED once it has moved),
// the eviction-policy check and script reloads on every master.
//
// A missing redis-server or redis-cli skips these tests, except under CI (CI=true), where it
// fails them.
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "cache/redis/redis_cache.h"
#include "unit/cache/document_cache_contract.h"
#include "unit/cache/write_intents_contract.h"
#include "unit/cache/test_util.h"

namespace layer::cache {
namespace {

using namespace std::chrono_literals;
using testing::Doc;
using testing::FreePort;
using testing::TempDir;

std::string Binary(const char* env_name, const char* fallback) {
  const char* env = getenv(env_name);
  std::string bin = env && *env ? env : fallback;
  return std::filesystem::exists(bin) ? bin : std::string();
}
std::string RedisServerBinary() { return Binary("LAYER_REDIS_SERVER", "/usr/bin/redis-server"); }
std::string RedisCliBinary() { return Binary("LAYER_REDIS_CLI", "/usr/bin/redis-cli"); }

bool UnderCi() {
  const char* ci = getenv("CI");
  return ci && std::string_view(ci) == "true";
}

// One command on a fresh TCP connection. The reply as text (an integer in decimal, an error as
// "ERR: ..."), or for an array its elements; {} on a connection failure.
std::vector<std::string> CmdArray(int port, const std::vector<std::string>& args) {
  timeval tv{5, 0};
  redisContext* ctx = redisConnectWithTimeout("127.0.0.1", port, tv);
  if (!ctx || ctx->err) {
    if (ctx) redisFree(ctx);
    return {};
  }
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  for (const auto& a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  auto* r = static_cast<redisReply*>(
      redisCommandArgv(ctx, static_cast<int>(argv.size()), argv.data(), lens.data()));
  auto text = [](const redisReply* x) -> std::string {
    if (x->type == REDIS_REPLY_INTEGER) return std::to_string(x->integer);
    if (x->type == REDIS_REPLY_ERROR) return "ERR: " + std::string(x->str, x->len);
    if (x->str) return std::string(x->str, x->len);
    return "";
  };
  std::vector<std::string> out;
  if (r) {
    if (r->type == REDIS_REPLY_ARRAY) {
      for (size_t i = 0; i < r->elements; ++i) out.push_back(text(r->element[i]));
    } else {
      out.push_back(text(r));
    }
    freeReplyObject(r);
  }
  redisFree(ctx);
  return out;
}

// The same, for a reply that is not an array; "" on a connection failure.
std::string Cmd(int port, const std::vector<std::string>& args) {
  auto out = CmdArray(port, args);
  return out.empty() ? std::string() : out[0];
}

// Three redis-server masters in cluster mode (with `replicas` replicas each), each node in its own
// directory, joined into one cluster.
class RedisCluster {
 public:
  ~RedisCluster() { Stop(); }

  const std::vector<int>& ports() const { return ports_; }

  // Starts the servers, creates the cluster and waits until every node reports cluster_state:ok
  // and knows all three (60 s bound: a hang, not a timing check).
  bool Start(std::string* why, int replicas = 0) {
    const std::string bin = RedisServerBinary();
    nodes_ = 3 * (1 + replicas);
    // With replicas, a dead master is failed over after about twice this; without, the default
    // (15 s) keeps a slow machine from being taken for a failed node.
    const std::string node_timeout = replicas > 0 ? "2000" : "15000";
    for (int i = 0; i < nodes_; ++i) {
      if (!StartNode(bin, i, node_timeout, why)) return false;
    }
    std::string create = RedisCliBinary() + " --cluster create";
    for (int port : ports_) create += " 127.0.0.1:" + std::to_string(port);
    const std::string log = dir_.Sub("create.log");
    create += " --cluster-replicas " + std::to_string(replicas) + " --cluster-yes >" + log +
              " 2>&1 </dev/null";
    if (std::system(create.c_str()) != 0) {
      std::ifstream in(log);
      return Fail(why, "redis-cli --cluster create failed: " +
                           std::string(std::istreambuf_iterator<char>(in), {}));
    }
    if (!WaitFor([&] { return Converged(); })) return Fail(why, "cluster_state never became ok");
    return true;
  }

  // Starts node `i` on a free port and waits until the port answers as this node's own process.
  // Another test process may take the same free port at the same moment (ctest runs them side by
  // side); then this node cannot bind it and exits, or the port answers with the other process's
  // pid, and the node is started again on another port.
  bool StartNode(const std::string& bin, int i, const std::string& node_timeout,
                 std::string* why) {
    const std::string dir = dir_.Sub("node" + std::to_string(i));
    std::filesystem::create_directories(dir);
    for (int attempt = 0; attempt < 5; ++attempt) {
      const int port = FreePort();
      if (port == 0) return Fail(why, "no free port");
      std::filesystem::remove(dir + "/nodes.conf");
      pid_t pid = fork();
      if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive the test process
        const std::string port_s = std::to_string(port);
        const std::string conf = dir + "/nodes.conf", log = dir + "/redis.log";
        execl(bin.c_str(), bin.c_str(), "--port", port_s.c_str(), "--bind", "127.0.0.1",
              "--cluster-enabled", "yes", "--cluster-config-file", conf.c_str(), "--save", "",
              "--appendonly", "no", "--dir", dir.c_str(), "--logfile", log.c_str(),
              "--maxmemory-policy", "volatile-lru", "--cluster-node-timeout", node_timeout.c_str(),
              static_cast<char*>(nullptr));
        _exit(127);
      }
      if (pid < 0) return Fail(why, "fork failed");
      bool exited = false;
      const bool ours = WaitFor([&] {
        int status = 0;
        if (waitpid(pid, &status, WNOHANG) == pid) exited = true;
        return exited || Info(port, "server", "process_id") == std::to_string(pid);
      });
      if (ours && !exited) {
        pids_.push_back(pid);
        ports_.push_back(port);
        return true;
      }
      if (!exited) {
        kill(pid, SIGKILL);
        int status = 0;
        waitpid(pid, &status, 0);
      }
    }
    return Fail(why, "node " + std::to_string(i) + " found no port of its own");
  }

  // Every live node says cluster_state:ok and knows every node.
  bool Converged() {
    for (size_t i = 0; i < ports_.size(); ++i) {
      if (pids_[i] < 0) continue;
      const std::string info = Cmd(ports_[i], {"CLUSTER", "INFO"});
      if (info.find("cluster_state:ok") == std::string::npos ||
          info.find("cluster_known_nodes:" + std::to_string(nodes_)) == std::string::npos ||
          info.find("cluster_slots_assigned:16384") == std::string::npos) {
        return false;
      }
    }
    return true;
  }

  void Stop() {
    for (size_t i = 0; i < ports_.size(); ++i) Kill(ports_[i]);
    pids_.clear();
    ports_.clear();
  }

  // Kills the node on `port` (SIGKILL: no goodbye to its clients or peers).
  void Kill(int port) {
    for (size_t i = 0; i < ports_.size(); ++i) {
      if (ports_[i] == port && pids_[i] > 0) {
        kill(pids_[i], SIGKILL);
        int status = 0;
        waitpid(pids_[i], &status, 0);
        pids_[i] = -1;
      }
    }
  }

  // A field of a node's INFO section, or "".
  static std::string Info(int port, const std::string& section, const std::string& field) {
    const std::string info = Cmd(port, {"INFO", section});
    size_t at = info.find(field + ":");
    if (at == std::string::npos) return "";
    at += field.size() + 1;
    return info.substr(at, info.find_first_of("\r\n", at) - at);
  }

  // The port of the master that serves `slot` (the one that answers a key of it without MOVED).
  int OwnerOf(const std::string& key) {
    for (int port : ports_) {
      if (Cmd(port, {"EXISTS", key}).starts_with("ERR: MOVED") == false) return port;
    }
    return 0;
  }

  std::string IdOf(int port) { return Cmd(port, {"CLUSTER", "MYID"}); }

  // The port of a replica of the master on `port`, or 0.
  int ReplicaOf(int port) {
    for (int p : ports_) {
      if (p != port && Info(p, "replication", "role") == "slave" &&
          Info(p, "replication", "master_port") == std::to_string(port)) {
        return p;
      }
    }
    return 0;
  }

  bool FlushAll() {
    for (int port : ports_) {
      if (Cmd(port, {"FLUSHALL"}) != "OK") return false;
    }
    return true;
  }

  RedisCacheOptions Options() const {
    RedisCacheOptions o;
    for (int port : ports_) o.cluster_seeds.emplace_back("127.0.0.1", port);
    o.pool_size = 4;
    return o;
  }

  // Polls `pred` (a readiness check, not a wait for a time) for at most 60 s.
  template <typename Pred>
  static bool WaitFor(Pred pred) {
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    while (std::chrono::steady_clock::now() < deadline) {
      if (pred()) return true;
      std::this_thread::sleep_for(10ms);
    }
    return false;
  }

 private:
  static bool Fail(std::string* why, std::string msg) {
    *why = std::move(msg);
    return false;
  }

  TempDir dir_;
  int nodes_ = 0;
  std::vector<pid_t> pids_;  // -1: killed
  std::vector<int> ports_;
};

// The attributes of a record, or "<none>" / the error.
std::string MustGetOr(DocumentCache& c, std::string_view ns, const DocId& id) {
  auto r = c.Get(ns, id);
  if (!r.ok()) return r.status().ToString();
  return r->has_value() ? (*r)->attributes_json : "<none>";
}

// Why the cluster cannot be had ("" when it can): binaries missing, or the start failed.
std::string MissingBinaries() {
  if (RedisServerBinary().empty()) return "redis-server is not installed";
  if (RedisCliBinary().empty()) return "redis-cli is not installed";
  return "";
}

// The cluster shared by the contract cases of this process (stopped at exit).
RedisCluster* SharedCluster(std::string* why) {
  static std::string start_error;
  static std::unique_ptr<RedisCluster> cluster = [] {
    auto c = std::make_unique<RedisCluster>();
    if (!MissingBinaries().empty() || !c->Start(&start_error)) c.reset();
    return c;
  }();
  *why = start_error;
  return cluster.get();
}

#define REQUIRE_CLUSTER_BINARIES()                                   \
  do {                                                               \
    if (std::string missing = MissingBinaries(); !missing.empty()) { \
      if (UnderCi()) FAIL() << missing << " (scripts/setup.sh)";     \
      GTEST_SKIP() << missing;                                       \
    }                                                                \
  } while (0)

class RedisClusterContractBackend final : public DocumentCacheBackend {
 public:
  static std::unique_ptr<DocumentCacheBackend> Open() {
    if (std::string missing = MissingBinaries(); !missing.empty()) {
      if (UnderCi()) {
        ADD_FAILURE() << missing << " (scripts/setup.sh installs it)";
      } else {
        [&] { GTEST_SKIP() << missing; }();
      }
      return nullptr;
    }
    std::string why;
    RedisCluster* cluster = SharedCluster(&why);
    if (!cluster) {
      ADD_FAILURE() << "the Redis Cluster did not start: " << why;
      return nullptr;
    }
    if (!cluster->FlushAll()) {
      ADD_FAILURE() << "FLUSHALL failed";
      return nullptr;
    }
    auto c = RedisCache::Open(cluster->Options());
    if (!c.ok()) {
      ADD_FAILURE() << c.status().ToString();
      return nullptr;
    }
    auto b = std::make_unique<RedisClusterContractBackend>();
    b->cache_ = std::move(*c);
    return b;
  }
  DocumentCache& cache() override { return *cache_; }

 private:
  std::unique_ptr<RedisCache> cache_;
};

INSTANTIATE_TEST_SUITE_P(RedisCluster, DocumentCacheContractTest,
                         ::testing::Values(DocumentCacheContractParam{
                             "RedisCluster", &RedisClusterContractBackend::Open}));
INSTANTIATE_TEST_SUITE_P(RedisCluster, WriteIntentsContractTest,
                         ::testing::Values(DocumentCacheContractParam{
                             "RedisCluster", &RedisClusterContractBackend::Open}));

// Each case gets its own cluster: a migration leaves the slot map changed.
class RedisClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    REQUIRE_CLUSTER_BINARIES();
    std::string why;
    ASSERT_TRUE(cluster_.Start(&why)) << why;
  }
  std::unique_ptr<RedisCache> OpenCache(RedisCacheOptions o) {
    auto r = RedisCache::Open(std::move(o));
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? std::move(r).value() : nullptr;
  }
  std::unique_ptr<RedisCache> OpenCache() { return OpenCache(cluster_.Options()); }
  std::optional<CachedDoc> MustGet(DocumentCache& c, std::string_view ns, const DocId& id) {
    auto r = c.Get(ns, id);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : std::nullopt;
  }

  RedisCluster cluster_;
};

TEST_F(RedisClusterTest, SlotsAreTheServersSlotsAndNamespacesSpreadOverTheMasters) {
  for (std::string key : {"foo", "bar", "hello", "L2{ns}e", "L2{ns}d0:1abc", "{}x", "{a}{b}",
                          "a{}b{c}", "L:records:cache_warmed_through", "123456789"}) {
    EXPECT_EQ(std::to_string(RedisKeySlot(key)),
              Cmd(cluster_.ports()[0], {"CLUSTER", "KEYSLOT", key}))
        << key;
  }
  EXPECT_EQ(RedisCache::NamespaceSlot("ns"), RedisKeySlot("L2{ns}r"));
  auto c = OpenCache();
  ASSERT_NE(c, nullptr);
  std::set<int> owners;
  for (int i = 0; i < 30; ++i) {
    const std::string ns = "ns" + std::to_string(i);
    ASSERT_TRUE(*c->PutIfNewer(ns, DocId::U64(1), Doc("{\"i\":" + std::to_string(i) + "}", 1)));
    ASSERT_TRUE(c->PutNamespaceRecord(ns, "k", std::to_string(i)).ok());
    owners.insert(cluster_.OwnerOf("L" + std::to_string(ns.size()) + "{" + ns + "}e"));
  }
  EXPECT_EQ(owners.size(), 3u) << "30 namespaces all on fewer than three masters";
  auto listed = c->ListNamespaceRecords("k");
  ASSERT_TRUE(listed.ok()) << listed.status().ToString();
  EXPECT_EQ(listed->size(), 30u);
  for (const auto& [ns, value] : *listed) EXPECT_EQ(ns, "ns" + value);
  auto stats = c->Stats();
  EXPECT_GE(stats.approx_keys, 61u);  // keys on all three masters are counted
  EXPECT_TRUE(c->Ping().ok());
  EXPECT_EQ(c->ClusterCounters().moved, 0u);
}

// A namespace's slot moves to another master while two caches (two replicas) use it: while it
// migrates, a call whose keys have all left is followed to the target with ASKING; once the slot
// has moved, MOVED sends every call to the new master. Nothing served is ever wrong.
TEST_F(RedisClusterTest, ASlotMigrationIsFollowedThroughAskAndMoved) {
  RedisCacheOptions o = cluster_.Options();
  o.op_timeout = 500ms;  // TRYAGAIN waits end sooner
  auto a = OpenCache(o), b = OpenCache(o);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  const std::string ns = "migrating";
  const std::string tag = "L9{migrating}";
  const uint16_t slot = RedisCache::NamespaceSlot(ns);
  ASSERT_TRUE(a->BumpEpoch(ns).ok());  // the epoch key exists: epoch 1
  for (uint64_t id = 1; id <= 20; ++id) {
    ASSERT_TRUE(*a->PutIfNewer(ns, DocId::U64(id), Doc("{\"v\":" + std::to_string(id) + "}", 10)));
  }
  ASSERT_TRUE(a->PutVector(ns, DocId::U64(1), std::string(8, '\x01')).ok());
  ASSERT_TRUE(a->PutNamespaceRecord(ns, "cache_warmed_through", "77").ok());
  ASSERT_EQ(MustGet(*b, ns, DocId::U64(5))->attributes_json, "{\"v\":5}");  // b saw epoch 1

  const int source = cluster_.OwnerOf(tag + "e");
  ASSERT_NE(source, 0);
  int target = 0;
  for (int port : cluster_.ports()) {
    if (port != source) {
      target = port;
      break;
    }
  }
  const std::string source_id = cluster_.IdOf(source), target_id = cluster_.IdOf(target);
  const std::string slot_s = std::to_string(slot);
  ASSERT_EQ(Cmd(target, {"CLUSTER", "SETSLOT", slot_s, "IMPORTING", source_id}), "OK");
  ASSERT_EQ(Cmd(source, {"CLUSTER", "SETSLOT", slot_s, "MIGRATING", target_id}), "OK");

  // The epoch and row 1 (with its vector) move first: a read of row 1 finds none of its keys on
  // the source, which answers ASK; the target serves it after ASKING.
  const std::string doc1 =
      tag + "d1:" + std::string(1, '0' + static_cast<int>(IdType::kU64)) + DocId::U64(1).bytes;
  const std::string vec1 =
      tag + "v1:" + std::string(1, '0' + static_cast<int>(IdType::kU64)) + DocId::U64(1).bytes;
  ASSERT_EQ(Cmd(source, {"EXISTS", doc1}), "1") << "the key layout changed";
  ASSERT_EQ(Cmd(source, {"MIGRATE", "127.0.0.1", std::to_string(target), "", "0", "5000", "KEYS",
                         tag + "e", doc1, vec1}),
            "OK");
  const uint64_t ask_before = a->ClusterCounters().ask;
  EXPECT_EQ(MustGet(*a, ns, DocId::U64(1))->attributes_json, "{\"v\":1}");
  EXPECT_GT(a->ClusterCounters().ask, ask_before) << "the read was not sent to the target";
  auto vec = b->GetVector(ns, DocId::U64(1));
  ASSERT_TRUE(vec.ok()) << vec.status().ToString();
  EXPECT_EQ(**vec, std::string(8, '\x01'));
  // Row 2 stayed on the source while its epoch left: the call's keys are split between the two
  // masters, which answer ASK then TRYAGAIN until the slot has moved. It fails as Unavailable
  // (the caller treats the cache as unavailable for that call), or succeeds; it is never wrong.
  auto row2 = a->Get(ns, DocId::U64(2));
  if (row2.ok()) {
    EXPECT_EQ((*row2)->attributes_json, "{\"v\":2}");
  } else {
    EXPECT_EQ(row2.status().code(), StatusCode::kUnavailable) << row2.status().ToString();
  }

  // The rest of the slot moves, and the slot is given to the target on every node.
  for (;;) {
    auto keys = CmdArray(source, {"CLUSTER", "GETKEYSINSLOT", slot_s, "100"});
    if (keys.empty()) break;
    std::vector<std::string> migrate = {"MIGRATE", "127.0.0.1", std::to_string(target), "", "0",
                                        "5000",    "KEYS"};
    migrate.insert(migrate.end(), keys.begin(), keys.end());
    ASSERT_EQ(Cmd(source, migrate), "OK");
  }
  for (int port : {target, source}) {
    ASSERT_EQ(Cmd(port, {"CLUSTER", "SETSLOT", slot_s, "NODE", target_id}), "OK");
  }
  for (int port : cluster_.ports()) {
    if (port != target && port != source) {
      ASSERT_EQ(Cmd(port, {"CLUSTER", "SETSLOT", slot_s, "NODE", target_id}), "OK");
    }
  }
  ASSERT_EQ(cluster_.OwnerOf(tag + "e"), target);

  // Both caches still route the slot to the source: MOVED sends them to the target.
  const uint64_t moved_before = a->ClusterCounters().moved;
  std::vector<DocId> ids;
  for (uint64_t id = 1; id <= 20; ++id) ids.push_back(DocId::U64(id));
  auto all = a->MultiGet(ns, ids);
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  for (uint64_t id = 1; id <= 20; ++id) {
    ASSERT_TRUE((*all)[id - 1].has_value()) << id;
    EXPECT_EQ((*all)[id - 1]->attributes_json, "{\"v\":" + std::to_string(id) + "}");
  }
  EXPECT_GT(a->ClusterCounters().moved, moved_before);
  EXPECT_EQ(a->ClusterCounters().moved, moved_before + 1) << "the map was not refreshed";
  // Newer wins across the move; an older put is refused by the record that moved.
  EXPECT_TRUE(*b->PutIfNewer(ns, DocId::U64(3), Doc("{\"v\":\"new\"}", 20)));
  EXPECT_FALSE(*a->PutIfNewer(ns, DocId::U64(3), Doc("{\"v\":\"old\"}", 15)));
  EXPECT_EQ(MustGet(*a, ns, DocId::U64(3))->attributes_json, "{\"v\":\"new\"}");
  ASSERT_TRUE(a->Tombstone(ns, DocId::U64(4), 30).ok());
  EXPECT_TRUE(MustGet(*b, ns, DocId::U64(4))->tombstone);
  EXPECT_EQ(**b->GetNamespaceRecord(ns, "cache_warmed_through"), "77");
  auto listed = b->ListNamespaceRecords("cache_warmed_through");
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].second, "77");
  // A bump through one replica after the move is seen by the other.
  ASSERT_TRUE(b->BumpEpoch(ns).ok());
  EXPECT_FALSE(MustGet(*a, ns, DocId::U64(3)).has_value());
  EXPECT_EQ(Cmd(target, {"GET", tag + "e"}), "2");
}

// A slot with no keys handed to another master with CLUSTER SETSLOT ... NODE (no migration):
// the first call there meets MOVED, follows it and refreshes the map.
TEST_F(RedisClusterTest, AnEmptySlotGivenToAnotherMasterIsFollowed) {
  auto c = OpenCache();
  ASSERT_NE(c, nullptr);
  const std::string ns = "moved-empty";
  const std::string tag = "L11{moved-empty}";
  const std::string slot_s = std::to_string(RedisCache::NamespaceSlot(ns));
  const int source = cluster_.OwnerOf(tag + "e");
  const int target = source == cluster_.ports()[0] ? cluster_.ports()[1] : cluster_.ports()[0];
  const std::string target_id = cluster_.IdOf(target);
  // The owner first (it gives the slot away), then the others.
  ASSERT_EQ(Cmd(source, {"CLUSTER", "SETSLOT", slot_s, "NODE", target_id}), "OK");
  for (int port : cluster_.ports()) {
    if (port != source) {
      ASSERT_EQ(Cmd(port, {"CLUSTER", "SETSLOT", slot_s, "NODE", target_id}), "OK");
    }
  }
  ASSERT_TRUE(*c->PutIfNewer(ns, DocId::String("k"), Doc("{\"x\":1}", 5)));
  EXPECT_GE(c->ClusterCounters().moved, 1u);
  EXPECT_EQ(MustGet(*c, ns, DocId::String("k"))->attributes_json, "{\"x\":1}");
  EXPECT_EQ(
      Cmd(target,
          {"EXISTS", tag + "d0:" + std::string(1, '0' + static_cast<int>(IdType::kString)) + "k"}),
      "1");
}

// A master dies and its replica takes over: the cache's next call meets a refused connection,
// reads the slot map again and goes to the new master, without an error.
TEST(RedisClusterFailoverTest, AFailedOverMastersSlotsFollowItsReplica) {
  REQUIRE_CLUSTER_BINARIES();
  RedisCluster cluster;
  std::string why;
  ASSERT_TRUE(cluster.Start(&why, /*replicas=*/1)) << why;
  auto opened = RedisCache::Open(cluster.Options());
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  RedisCache& c = **opened;
  const std::string ns = "failover";
  ASSERT_TRUE(c.BumpEpoch(ns).ok());
  for (uint64_t id = 1; id <= 10; ++id) {
    ASSERT_TRUE(*c.PutIfNewer(ns, DocId::U64(id), Doc("{\"v\":" + std::to_string(id) + "}", 10)));
  }
  const int master = cluster.OwnerOf("L8{failover}e");
  ASSERT_NE(master, 0);
  const int replica = cluster.ReplicaOf(master);
  ASSERT_NE(replica, 0) << "no replica of the namespace's master";
  // The replica has every write (replication is asynchronous: wait for its offset).
  ASSERT_TRUE(RedisCluster::WaitFor([&] {
    const std::string want = RedisCluster::Info(master, "replication", "master_repl_offset");
    return !want.empty() && RedisCluster::Info(replica, "replication", "slave_repl_offset") == want;
  }));
  const uint64_t refreshes = c.ClusterCounters().refreshes;
  cluster.Kill(master);
  ASSERT_TRUE(RedisCluster::WaitFor([&] {
    return RedisCluster::Info(replica, "replication", "role") == "master";
  })) << "the replica was not promoted";
  ASSERT_TRUE(RedisCluster::WaitFor([&] { return cluster.Converged(); }));

  auto got = c.Get(ns, DocId::U64(7));
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ((*got)->attributes_json, "{\"v\":7}");
  EXPECT_GT(c.ClusterCounters().refreshes, refreshes) << "the slot map was not read again";
  EXPECT_TRUE(*c.PutIfNewer(ns, DocId::U64(7), Doc("{\"v\":\"after\"}", 20)));
  EXPECT_FALSE(*c.PutIfNewer(ns, DocId::U64(8), Doc("{\"v\":\"older\"}", 5)));
  EXPECT_EQ(MustGetOr(c, ns, DocId::U64(8)), "{\"v\":8}");
  EXPECT_EQ(Cmd(replica, {"GET", "L8{failover}e"}), "1");
  EXPECT_TRUE(c.Ping().ok());
}

TEST_F(RedisClusterTest, EveryMastersPolicyIsCheckedAndScriptsReloadPerMaster) {
  // One master with a policy that may evict tombstones: the cache refuses the cluster.
  ASSERT_EQ(Cmd(cluster_.ports()[2], {"CONFIG", "SET", "maxmemory-policy", "allkeys-lru"}), "OK");
  auto refused = RedisCache::Open(cluster_.Options());
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(refused.status().message().find("allkeys-lru"), std::string::npos)
      << refused.status().ToString();
  ASSERT_EQ(Cmd(cluster_.ports()[2], {"CONFIG", "SET", "maxmemory-policy", "volatile-ttl"}), "OK");

  auto c = OpenCache();
  ASSERT_NE(c, nullptr);
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(*c->PutIfNewer("s" + std::to_string(i), DocId::U64(1), Doc("{}", 1)));
  }
  for (int port : cluster_.ports()) ASSERT_EQ(Cmd(port, {"SCRIPT", "FLUSH"}), "OK");
  for (int i = 0; i < 10; ++i) {
    EXPECT_TRUE(*c->PutIfNewer("s" + std::to_string(i), DocId::U64(1), Doc("{\"n\":2}", 2)));
    EXPECT_EQ(MustGet(*c, "s" + std::to_string(i), DocId::U64(1))->attributes_json, "{\"n\":2}");
  }
}

TEST(RedisClusterUnreachableTest, NoSeedAnsweringIsUnavailable) {
  RedisCacheOptions o;
  o.cluster_seeds.emplace_back("127.0.0.1", FreePort());  // nothing listens there
  auto c = RedisCache::Open(o);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), StatusCode::kUnavailable);
}

TEST(RedisClusterUrlTest, ParsesSeedsCredentialsAndOptions) {
  auto o = ParseRedisCacheUrl("redis-cluster://:pw@10.0.0.1:7000,10.0.0.2,[::1]:7002?pool=2");
  ASSERT_TRUE(o.ok()) << o.status().ToString();
  ASSERT_EQ(o->cluster_seeds.size(), 3u);
  EXPECT_EQ(o->cluster_seeds[0], std::make_pair(std::string("10.0.0.1"), 7000));
  EXPECT_EQ(o->cluster_seeds[1], std::make_pair(std::string("10.0.0.2"), 6379));
  EXPECT_EQ(o->cluster_seeds[2], std::make_pair(std::string("::1"), 7002));
  EXPECT_EQ(o->password, "pw");
  EXPECT_EQ(o->pool_size, 2u);
  for (std::string bad : {"redis-cluster://", "redis-cluster://a:1,", "redis-cluster://a:1/2",
                          "redis-cluster://a:1?db=3", "redis-cluster://a:x"}) {
    EXPECT_EQ(ParseRedisCacheUrl(bad).status().code(), StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_EQ(RedactRedisUrl("redis-cluster://:pw@a:1,b:2"), "redis-cluster://:***@a:1,b:2");
}

}  // namespace
}  // namespace layer::cache
