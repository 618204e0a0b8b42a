#include "cache/rocksdb/rocksdb_cache.h"

#include <gtest/gtest.h>
#include <rocksdb/perf_level.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <thread>

#include "unit/cache/document_cache_contract.h"
#include "unit/cache/test_util.h"

namespace layer::cache {
namespace {

using testing::TempDir;
using namespace std::chrono_literals;

CachedDoc Doc(std::string json, uint64_t stamp) { return CachedDoc{std::move(json), stamp, false}; }

class RocksDbCacheTest : public ::testing::Test {
 protected:
  RocksDbCacheOptions Options() {
    RocksDbCacheOptions o;
    o.path = dir_.Sub("cache");
    o.max_bytes = 64 << 20;
    o.clock = &clock_;
    return o;
  }
  std::unique_ptr<RocksDbCache> OpenCache(RocksDbCacheOptions o) {
    auto r = RocksDbCache::Open(std::move(o));
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? std::move(r).value() : nullptr;
  }
  std::unique_ptr<RocksDbCache> OpenCache() { return OpenCache(Options()); }

  std::optional<CachedDoc> MustGet(RocksDbCache& c, std::string_view ns, const DocId& id) {
    auto r = c.Get(ns, id);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : std::nullopt;
  }

  TempDir dir_;
  ManualClock clock_{1'700'000'000'000};
};

TEST_F(RocksDbCacheTest, ThreadsThatUseTheCacheStopRocksDbPerfCounting) {
  auto c = OpenCache();
  // A fresh thread per call: RocksDB's perf level is per thread and starts at counting.
  auto level_after = [](auto&& call) {
    rocksdb::PerfLevel before = rocksdb::PerfLevel::kUninitialized, after = before;
    std::thread t([&] {
      before = rocksdb::GetPerfLevel();
      call();
      after = rocksdb::GetPerfLevel();
    });
    t.join();
    EXPECT_NE(before, rocksdb::PerfLevel::kDisable);
    return after;
  };
  EXPECT_EQ(
      level_after([&] { ASSERT_TRUE(c->PutIfNewer("ns", DocId::U64(1), Doc("{}", 1)).ok()); }),
      rocksdb::PerfLevel::kDisable);
  EXPECT_EQ(level_after([&] { (void)c->TryGet("ns", DocId::U64(1)); }),
            rocksdb::PerfLevel::kDisable);
  EXPECT_EQ(level_after([&] { ASSERT_TRUE(c->Get("ns", DocId::U64(1)).ok()); }),
            rocksdb::PerfLevel::kDisable);
}

TEST_F(RocksDbCacheTest, RocksDbsOwnLogStaysAtInfoLevel) {
  // Reopening deletes the previous MANIFEST and WAL, which RocksDB logs at debug level.
  for (int i = 0; i < 2; ++i) {
    auto c = OpenCache();
    ASSERT_TRUE(c->PutIfNewer("ns", DocId::U64(1), Doc("{}", 1 + i)).ok());
    ASSERT_TRUE(c->Close().ok());
  }
  std::ifstream log(std::filesystem::path(dir_.Sub("cache")) / "db" / "LOG");
  ASSERT_TRUE(log.good());
  std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("[db/"), std::string::npos);  // it is RocksDB's log, and it was written
  EXPECT_EQ(text.find("[DEBUG]"), std::string::npos);
}

// What a tombstone does before it expires is in the contract suite; its expiry is this backend's
// (a TTL on the injected clock).
TEST_F(RocksDbCacheTest, TombstoneBlocksOlderPutsUntilItExpires) {
  RocksDbCacheOptions o = Options();
  o.tombstone_ttl = 60s;
  auto c = OpenCache(o);
  DocId id = DocId::String("d");
  ASSERT_TRUE(c->PutIfNewer("ns", id, Doc("{\"v\":1}", 100)).ok());
  ASSERT_TRUE(c->Tombstone("ns", id, 200).ok());
  ASSERT_TRUE(MustGet(*c, "ns", id)->tombstone);
  // After the TTL the tombstone counts as absent and stops blocking.
  clock_.Advance(std::chrono::milliseconds(60'000));
  EXPECT_FALSE(MustGet(*c, "ns", id).has_value());
  EXPECT_FALSE((*c->MultiGet("ns", std::vector<DocId>{id}))[0].has_value());
  EXPECT_TRUE(*c->PutIfNewer("ns", id, Doc("{\"v\":1}", 150)));
  EXPECT_EQ(MustGet(*c, "ns", id)->attributes_json, "{\"v\":1}");
}

TEST_F(RocksDbCacheTest, CleanRestartKeepsEverything) {
  DocId id = DocId::U64(42);
  {
    auto c = OpenCache();
    ASSERT_TRUE(c->PutIfNewer("gone", id, Doc("{\"old\":1}", 1)).ok());
    ASSERT_TRUE(c->BumpEpoch("gone").ok());
    ASSERT_TRUE(c->PutIfNewer("ns", id, Doc("{\"v\":1}", 100)).ok());
    ASSERT_TRUE(c->PutVector("ns", id, "vec").ok());
    ASSERT_TRUE(c->Tombstone("ns", DocId::U64(43), 100).ok());
    ASSERT_TRUE(c->PutNamespaceRecord("ns", "cache_warmed_through", "99").ok());
    ASSERT_TRUE(c->Close().ok());
    EXPECT_EQ(c->Get("ns", id).status().code(), StatusCode::kUnavailable);
    EXPECT_EQ(c->Ping().code(), StatusCode::kUnavailable);
  }
  auto c = OpenCache();
  EXPECT_EQ(MustGet(*c, "ns", id)->attributes_json, "{\"v\":1}");
  EXPECT_EQ(**c->GetVector("ns", id), "vec");
  EXPECT_TRUE(MustGet(*c, "ns", DocId::U64(43))->tombstone);
  EXPECT_EQ(**c->GetNamespaceRecord("ns", "cache_warmed_through"), "99");
  EXPECT_EQ(c->ListNamespaceRecords("cache_warmed_through")->size(), 1u);
  // The epoch survived too: the bumped namespace's old rows stay unreachable.
  EXPECT_FALSE(MustGet(*c, "gone", id).has_value());
}

// Files written with or without block compression read back under either setting, and an
// ascending batch (a warm page: the read-before-write skips RocksDB's sort) over flushed records
// still lets only newer stamps win.
TEST_F(RocksDbCacheTest, AscendingBatchOverFlushedFilesOfEitherCompression) {
  for (bool compress : {false, true}) {
    SCOPED_TRACE(compress ? "written compressed" : "written uncompressed");
    RocksDbCacheOptions o = Options();
    o.path = dir_.Sub(compress ? "compressed" : "plain");
    std::vector<std::pair<DocId, CachedDoc>> first;
    for (uint64_t i = 1; i <= 2000; ++i) {
      first.emplace_back(DocId::U64(i), Doc("{\"v\":" + std::to_string(i) + "}", 100));
    }
    {
      o.compress = compress;
      auto c = OpenCache(o);
      ASSERT_TRUE(c->PutIfNewerBatch("ns", first).ok());
      ASSERT_TRUE(c->Close().ok());  // flushes: the records now live in files
    }
    o.compress = !compress;
    auto c = OpenCache(o);
    std::vector<std::pair<DocId, CachedDoc>> second = {
        {DocId::U64(10), Doc("{\"v\":\"older\"}", 50)},
        {DocId::U64(11), Doc("{\"v\":\"newer\"}", 150)},
        {DocId::U64(11), Doc("{\"v\":\"older than the batch's own\"}", 120)},
        {DocId::U64(1999), Doc("{\"v\":\"tie\"}", 100)},
        {DocId::U64(5000), Doc("{\"v\":\"new\"}", 1)},
    };
    auto r = c->PutIfNewerBatch("ns", second);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(*r, (std::vector<bool>{false, true, false, true, true}));
    EXPECT_EQ(MustGet(*c, "ns", DocId::U64(10))->attributes_json, "{\"v\":10}");
    EXPECT_EQ(MustGet(*c, "ns", DocId::U64(11))->attributes_json, "{\"v\":\"newer\"}");
    EXPECT_EQ(MustGet(*c, "ns", DocId::U64(1999))->attributes_json, "{\"v\":\"tie\"}");
    EXPECT_EQ(MustGet(*c, "ns", DocId::U64(5000))->attributes_json, "{\"v\":\"new\"}");
    EXPECT_EQ(MustGet(*c, "ns", DocId::U64(1234))->attributes_json, "{\"v\":1234}");
  }
}

TEST_F(RocksDbCacheTest, TryGetAnswersFromMemoryLikeGet) {
  auto c = OpenCache();
  DocId id = DocId::U64(1);
  // A miss is an answer (engaged), not a decline.
  TryGetResult miss = c->TryGet("ns", id);
  ASSERT_TRUE(miss.has_value());
  ASSERT_TRUE(miss->ok()) << miss->status().ToString();
  EXPECT_FALSE(miss->value().has_value());

  ASSERT_TRUE(c->PutIfNewer("ns", id, Doc(R"({"x":1})", 10)).ok());
  TryGetResult hit = c->TryGet("ns", id);
  ASSERT_TRUE(hit.has_value() && hit->ok());
  ASSERT_TRUE(hit->value().has_value());
  EXPECT_EQ(hit->value()->attributes_json, R"({"x":1})");
  EXPECT_EQ(hit->value()->upserted_at, 10u);
  EXPECT_FALSE(hit->value()->tombstone);

  // Newer wins is visible at once; tombstones come back as tombstones.
  ASSERT_TRUE(c->PutIfNewer("ns", id, Doc(R"({"x":2})", 20)).ok());
  EXPECT_EQ(c->TryGet("ns", id)->value()->attributes_json, R"({"x":2})");
  ASSERT_TRUE(c->Tombstone("ns", id, 30).ok());
  TryGetResult tomb = c->TryGet("ns", id);
  ASSERT_TRUE(tomb.has_value() && tomb->ok() && tomb->value().has_value());
  EXPECT_TRUE(tomb->value()->tombstone);
  // An expired tombstone counts as absent, as for Get.
  clock_.Advance(std::chrono::milliseconds(Options().tombstone_ttl));
  EXPECT_FALSE(c->TryGet("ns", id)->value().has_value());

  // Invalidate and BumpEpoch are seen at once.
  ASSERT_TRUE(c->PutIfNewer("ns", DocId::U64(2), Doc("{}", 1)).ok());
  ASSERT_TRUE(c->TryGet("ns", DocId::U64(2))->value().has_value());
  ASSERT_TRUE(c->BumpEpoch("ns").ok());
  EXPECT_FALSE(c->TryGet("ns", DocId::U64(2))->value().has_value());
  ASSERT_TRUE(c->PutIfNewer("ns", DocId::U64(3), Doc("{}", 1)).ok());
  std::vector<DocId> ids{DocId::U64(3)};
  ASSERT_TRUE(c->Invalidate("ns", ids).ok());
  EXPECT_FALSE(c->TryGet("ns", DocId::U64(3))->value().has_value());

  // Bad input is answered like Get answers it.
  TryGetResult bad = c->TryGet("", id);
  ASSERT_TRUE(bad.has_value());
  EXPECT_EQ(bad->status().code(), StatusCode::kInvalidArgument);
}

TEST_F(RocksDbCacheTest, TryGetDeclinesWhatOnlyDiskHasUntilAGetBringsItIn) {
  DocId id = DocId::U64(7);
  {
    // A clean close flushes everything into files.
    auto c = OpenCache();
    ASSERT_TRUE(c->BumpEpoch("ns").ok());
    ASSERT_TRUE(c->PutIfNewer("ns", id, Doc(R"({"on":"disk"})", 5)).ok());
  }
  auto c = OpenCache();  // nothing in memtables, nothing in the block cache
  TryGetResult cold = c->TryGet("ns", id);
  EXPECT_FALSE(cold.has_value());
  // Never a wrong answer while cold: declined, or (another id) declined or a clean miss.
  TryGetResult other = c->TryGet("ns", DocId::U64(8));
  if (other.has_value()) {
    ASSERT_TRUE(other->ok());
    EXPECT_FALSE(other->value().has_value());
  }

  // A blocking Get reads the epoch and the block from disk and caches them.
  EXPECT_EQ(MustGet(*c, "ns", id)->attributes_json, R"({"on":"disk"})");
  TryGetResult warm = c->TryGet("ns", id);
  ASSERT_TRUE(warm.has_value());
  ASSERT_TRUE(warm->ok()) << warm->status().ToString();
  ASSERT_TRUE(warm->value().has_value());
  EXPECT_EQ(warm->value()->attributes_json, R"({"on":"disk"})");
  EXPECT_EQ(warm->value()->upserted_at, 5u);
}

TEST_F(RocksDbCacheTest, TryGetAfterCloseIsUnavailable) {
  auto c = OpenCache();
  ASSERT_TRUE(c->Close().ok());
  TryGetResult r = c->TryGet("ns", DocId::U64(1));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status().code(), StatusCode::kUnavailable);
}

TEST_F(RocksDbCacheTest, DestructorIsACleanShutdown) {
  { ASSERT_TRUE(OpenCache()->PutIfNewer("ns", DocId::U64(1), Doc("{}", 1)).ok()); }
  auto c = OpenCache();
  EXPECT_TRUE(MustGet(*c, "ns", DocId::U64(1)).has_value());
}

TEST_F(RocksDbCacheTest, UncleanRestartDiscardsTheCache) {
  {
    auto c = OpenCache();
    ASSERT_TRUE(c->PutIfNewer("ns", DocId::U64(1), Doc("{}", 1)).ok());
    ASSERT_TRUE(c->PutNamespaceRecord("ns", "k", "v").ok());
    ASSERT_TRUE(c->FlushForTest().ok());  // the rows are on disk ...
    c->Discard();                  // ... but the process "dies" without the marker
  }
  auto c = OpenCache();
  EXPECT_FALSE(MustGet(*c, "ns", DocId::U64(1)).has_value());
  EXPECT_FALSE(c->GetNamespaceRecord("ns", "k")->has_value());
  EXPECT_TRUE(c->ListNamespaceRecords("k")->empty());
}

TEST_F(RocksDbCacheTest, CopyOfARunningCacheIsDiscarded) {
  // A snapshot of the directory taken while the cache runs is what a crash leaves behind.
  auto c = OpenCache();
  ASSERT_TRUE(c->PutIfNewer("ns", DocId::U64(1), Doc("{}", 1)).ok());
  ASSERT_TRUE(c->FlushForTest().ok());
  const std::string copy = dir_.Sub("copy");
  std::filesystem::copy(Options().path, copy, std::filesystem::copy_options::recursive);
  std::filesystem::remove(copy + "/db/LOCK");
  RocksDbCacheOptions o = Options();
  o.path = copy;
  auto crashed = OpenCache(o);
  EXPECT_FALSE(MustGet(*crashed, "ns", DocId::U64(1)).has_value());
  EXPECT_TRUE(MustGet(*c, "ns", DocId::U64(1)).has_value());
}

TEST_F(RocksDbCacheTest, ASecondOpenOfALiveDirectoryFailsWithoutWipingIt) {
  auto c = OpenCache();
  ASSERT_TRUE(c->PutIfNewer("ns", DocId::U64(1), Doc("{}", 1)).ok());
  ASSERT_TRUE(c->FlushForTest().ok());
  auto second = RocksDbCache::Open(Options());
  EXPECT_EQ(second.status().code(), StatusCode::kUnavailable);
  EXPECT_TRUE(MustGet(*c, "ns", DocId::U64(1)).has_value());
  ASSERT_TRUE(c->Close().ok());
  auto reopened = OpenCache();  // the lock is released by Close()
  EXPECT_TRUE(MustGet(*reopened, "ns", DocId::U64(1)).has_value());
}

TEST_F(RocksDbCacheTest, ResetOnStartWipesEvenAfterACleanShutdown) {
  { ASSERT_TRUE(OpenCache()->PutIfNewer("ns", DocId::U64(1), Doc("{}", 1)).ok()); }
  RocksDbCacheOptions o = Options();
  o.reset_on_start = true;
  auto c = OpenCache(o);
  EXPECT_FALSE(MustGet(*c, "ns", DocId::U64(1)).has_value());
}

TEST_F(RocksDbCacheTest, SmallMaxBytesEvictsOldestFirst) {
  RocksDbCacheOptions o = Options();
  o.max_bytes = 1 << 20;  // 1 MiB; memtables of 128 KiB
  auto c = OpenCache(o);
  std::mt19937_64 rng(1);
  auto noise = [&] {  // incompressible, so the on-disk size is real
    std::string s(200, '\0');
    for (auto& ch : s) ch = static_cast<char>('a' + rng() % 26);
    return s;
  };
  constexpr int kDocs = 6000;  // ~7 MB, several times the bound
  for (int i = 0; i < kDocs; ++i) {
    std::string json = "{\"n\":\"" + noise() + std::string(1000, 'y') + noise() + "\"}";
    ASSERT_TRUE(c->PutIfNewer("ns", DocId::U64(i), Doc(json, 1)).ok());
  }
  ASSERT_TRUE(c->FlushForTest().ok());
  // FIFO deletion runs in the background after a flush; give it a moment.
  bool evicted = false;
  for (int tries = 0; tries < 100 && !evicted; ++tries) {
    evicted = !MustGet(*c, "ns", DocId::U64(0)).has_value();
    if (!evicted) std::this_thread::sleep_for(50ms);
  }
  EXPECT_TRUE(evicted) << "the oldest row should have been evicted";
  EXPECT_TRUE(MustGet(*c, "ns", DocId::U64(kDocs - 1)).has_value()) << "the newest row stays";
  CacheStats stats = c->Stats();
  EXPECT_EQ(stats.backend, "rocksdb");
  EXPECT_LE(stats.approx_bytes, 2u * o.max_bytes);
  EXPECT_GT(stats.approx_bytes, 0u);
  EXPECT_LT(stats.approx_keys, static_cast<uint64_t>(kDocs));
}

// Widens the read-compare-write window so that a missing lock would lose updates reliably (the
// contract suite runs the same races without it, as any backend must pass them).
void YieldInsideCompareAndPut() {
  std::this_thread::yield();
  std::this_thread::sleep_for(20us);
}

TEST_F(RocksDbCacheTest, ConcurrentPutsKeepTheMaxStamp) {
  RocksDbCacheOptions o = Options();
  o.test_hook_before_write = YieldInsideCompareAndPut;
  auto c = OpenCache(o);
  testing::RunConcurrentPuts(c.get());
  testing::RunRacingRounds(c.get());
}

TEST_F(RocksDbCacheTest, ConcurrentPutsKeepTheMaxStampWithFewStripes) {
  RocksDbCacheOptions o = Options();
  o.lock_stripes = 2;  // batches share stripes: exercises ordered, de-duplicated locking
  o.test_hook_before_write = YieldInsideCompareAndPut;
  auto c = OpenCache(o);
  testing::RunConcurrentPuts(c.get());
  testing::RunRacingRounds(c.get());
}

TEST_F(RocksDbCacheTest, PingStatsAndBadInput) {
  auto c = OpenCache();
  EXPECT_TRUE(c->Ping().ok());
  ASSERT_TRUE(c->PutIfNewer("ns", DocId::U64(1), Doc("{}", 1)).ok());
  CacheStats s = c->Stats();
  EXPECT_EQ(s.backend, "rocksdb");
  EXPECT_GE(s.approx_keys, 1u);
  EXPECT_EQ(c->Get("", DocId::U64(1)).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(c->PutIfNewer(std::string(70000, 'n'), DocId::U64(1), Doc("{}", 1)).status().code(),
            StatusCode::kInvalidArgument);
  RocksDbCacheOptions bad;
  EXPECT_EQ(RocksDbCache::Open(bad).status().code(), StatusCode::kInvalidArgument);
}

// The contract suite's backend: a cache in a directory of its own, sized as in the tests above,
// on the system clock (no contract case moves time).
class RocksDbContractBackend final : public DocumentCacheBackend {
 public:
  static std::unique_ptr<DocumentCacheBackend> Open() {
    auto backend = std::make_unique<RocksDbContractBackend>();
    backend->cache_ = OpenTestRocksDb(backend->dir_);
    if (!backend->cache_) return nullptr;
    return backend;
  }
  DocumentCache& cache() override { return *cache_; }

 private:
  TempDir dir_;
  std::unique_ptr<RocksDbCache> cache_;  // after dir_: closed before the directory is removed
};

INSTANTIATE_TEST_SUITE_P(RocksDb, DocumentCacheContractTest,
                         ::testing::Values(DocumentCacheContractParam{
                             "RocksDb", &RocksDbContractBackend::Open}));

}  // namespace
}  // namespace layer::cache
