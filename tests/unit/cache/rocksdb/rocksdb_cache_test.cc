#include "cache/rocksdb/rocksdb_cache.h"

#include <gtest/gtest.h>
#include <rocksdb/perf_level.h>

#include <atomic>
#include <barrier>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <random>
#include <thread>

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
    o.now_ms = [this] { return now_ms_.load(); };
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
  std::atomic<int64_t> now_ms_{1'700'000'000'000};
};

TEST_F(RocksDbCacheTest, GetMissThenPutThenGet) {
  auto c = OpenCache();
  DocId id = DocId::String("a");
  EXPECT_FALSE(MustGet(*c, "ns", id).has_value());
  ASSERT_TRUE(*c->PutIfNewer("ns", id, Doc(R"({"x":1})", 10)));
  auto got = MustGet(*c, "ns", id);
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->attributes_json, R"({"x":1})");
  EXPECT_EQ(got->upserted_at, 10u);
  EXPECT_FALSE(got->tombstone);
  EXPECT_FALSE(MustGet(*c, "other", id).has_value());
}

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

TEST_F(RocksDbCacheTest, IdTypesAndNamespacesDoNotCollide) {
  auto c = OpenCache();
  DocId u = DocId::U64(7);
  DocId s = DocId::String("7");
  DocId raw = DocId::String(u.bytes);
  DocId uuid = *DocId::Uuid("00000000-0000-0000-0000-000000000007");
  ASSERT_TRUE(c->PutIfNewer("ns", u, Doc("{\"t\":\"u64\"}", 1)).ok());
  ASSERT_TRUE(c->PutIfNewer("ns", s, Doc("{\"t\":\"str\"}", 1)).ok());
  ASSERT_TRUE(c->PutIfNewer("ns", raw, Doc("{\"t\":\"raw\"}", 1)).ok());
  ASSERT_TRUE(c->PutIfNewer("ns", uuid, Doc("{\"t\":\"uuid\"}", 1)).ok());
  EXPECT_EQ(MustGet(*c, "ns", u)->attributes_json, "{\"t\":\"u64\"}");
  EXPECT_EQ(MustGet(*c, "ns", s)->attributes_json, "{\"t\":\"str\"}");
  EXPECT_EQ(MustGet(*c, "ns", raw)->attributes_json, "{\"t\":\"raw\"}");
  EXPECT_EQ(MustGet(*c, "ns", uuid)->attributes_json, "{\"t\":\"uuid\"}");
  // Length-prefixed namespaces: ("a", "bc") and ("ab", "c") are different keys.
  ASSERT_TRUE(c->PutIfNewer("a", DocId::String("bc"), Doc("{\"k\":1}", 1)).ok());
  EXPECT_FALSE(MustGet(*c, "ab", DocId::String("c")).has_value());
}

TEST_F(RocksDbCacheTest, MultiGetKeepsOrderWithMisses) {
  auto c = OpenCache();
  ASSERT_TRUE(c->PutIfNewer("ns", DocId::U64(1), Doc("{\"n\":1}", 1)).ok());
  ASSERT_TRUE(c->PutIfNewer("ns", DocId::U64(3), Doc("{\"n\":3}", 1)).ok());
  std::vector<DocId> ids = {DocId::U64(3), DocId::U64(2), DocId::U64(1), DocId::U64(3)};
  auto r = c->MultiGet("ns", ids);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->size(), 4u);
  EXPECT_EQ((*r)[0]->attributes_json, "{\"n\":3}");
  EXPECT_FALSE((*r)[1].has_value());
  EXPECT_EQ((*r)[2]->attributes_json, "{\"n\":1}");
  EXPECT_EQ((*r)[3]->attributes_json, "{\"n\":3}");
  auto empty = c->MultiGet("ns", {});
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
}

TEST_F(RocksDbCacheTest, NewerWins) {
  auto c = OpenCache();
  DocId id = DocId::String("k");
  EXPECT_TRUE(*c->PutIfNewer("ns", id, Doc("{\"v\":10}", 10)));
  EXPECT_FALSE(*c->PutIfNewer("ns", id, Doc("{\"v\":5}", 5)));
  EXPECT_EQ(MustGet(*c, "ns", id)->attributes_json, "{\"v\":10}");
  EXPECT_TRUE(*c->PutIfNewer("ns", id, Doc("{\"v\":\"tie\"}", 10)));  // ties: the later write
  EXPECT_TRUE(*c->PutIfNewer("ns", id, Doc("{\"v\":20}", 20)));
  EXPECT_EQ(MustGet(*c, "ns", id)->attributes_json, "{\"v\":20}");
  EXPECT_EQ(MustGet(*c, "ns", id)->upserted_at, 20u);
}

TEST_F(RocksDbCacheTest, BatchPutFlagsPerRecordIncludingDuplicates) {
  auto c = OpenCache();
  ASSERT_TRUE(c->PutIfNewer("ns", DocId::U64(1), Doc("{\"old\":1}", 100)).ok());
  std::vector<std::pair<DocId, CachedDoc>> batch = {
      {DocId::U64(1), Doc("{\"v\":1}", 50)},   // older than the stored record
      {DocId::U64(2), Doc("{\"v\":2}", 50)},   // new
      {DocId::U64(2), Doc("{\"v\":22}", 40)},  // older than the previous record of this batch
      {DocId::U64(3), Doc("{\"v\":3}", 50)},
      {DocId::U64(3), Doc("{\"v\":33}", 60)},  // newer than the previous record of this batch
  };
  auto r = c->PutIfNewerBatch("ns", batch);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, (std::vector<bool>{false, true, false, true, true}));
  EXPECT_EQ(MustGet(*c, "ns", DocId::U64(1))->attributes_json, "{\"old\":1}");
  EXPECT_EQ(MustGet(*c, "ns", DocId::U64(2))->attributes_json, "{\"v\":2}");
  EXPECT_EQ(MustGet(*c, "ns", DocId::U64(3))->attributes_json, "{\"v\":33}");
}

// Repeated keys in a batch compare against the record in force before them, whether the batch
// is in key order (repeats adjacent) or not, including repeats that follow a losing record.
TEST_F(RocksDbCacheTest, BatchRepeatsInAndOutOfKeyOrder) {
  auto c = OpenCache();
  ASSERT_TRUE(c->PutIfNewer("ns", DocId::U64(5), Doc("{\"disk\":5}", 100)).ok());
  std::vector<std::pair<DocId, CachedDoc>> unordered = {
      {DocId::U64(3), Doc("{\"v\":\"3a\"}", 50)},
      {DocId::U64(5), Doc("{\"v\":\"5a\"}", 50)},   // loses to the stored 100
      {DocId::U64(1), Doc("{\"v\":\"1\"}", 50)},
      {DocId::U64(3), Doc("{\"v\":\"3b\"}", 40)},   // loses to 3a
      {DocId::U64(5), Doc("{\"v\":\"5b\"}", 70)},   // still loses to the stored 100
      {DocId::U64(3), Doc("{\"v\":\"3c\"}", 60)},   // wins over 3a
      {DocId::U64(5), Doc("{\"v\":\"5c\"}", 150)},  // wins over the stored 100
  };
  auto r = c->PutIfNewerBatch("ns", unordered);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, (std::vector<bool>{true, false, true, false, false, true, true}));
  EXPECT_EQ(MustGet(*c, "ns", DocId::U64(3))->attributes_json, "{\"v\":\"3c\"}");
  EXPECT_EQ(MustGet(*c, "ns", DocId::U64(5))->attributes_json, "{\"v\":\"5c\"}");

  std::vector<std::pair<DocId, CachedDoc>> ordered = {
      {DocId::U64(5), Doc("{\"v\":\"5d\"}", 120)},  // loses to 5c (150)
      {DocId::U64(5), Doc("{\"v\":\"5e\"}", 140)},  // still loses
      {DocId::U64(5), Doc("{\"v\":\"5f\"}", 150)},  // a tie wins
      {DocId::U64(5), Doc("{\"v\":\"5g\"}", 149)},  // loses to 5f
      {DocId::U64(6), Doc("{\"v\":\"6\"}", 1)},
  };
  r = c->PutIfNewerBatch("ns", ordered);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, (std::vector<bool>{false, false, true, false, true}));
  EXPECT_EQ(MustGet(*c, "ns", DocId::U64(5))->attributes_json, "{\"v\":\"5f\"}");
}

TEST_F(RocksDbCacheTest, TombstoneBlocksOlderPutsUntilItExpires) {
  RocksDbCacheOptions o = Options();
  o.tombstone_ttl = 60s;
  auto c = OpenCache(o);
  DocId id = DocId::String("d");
  ASSERT_TRUE(c->PutIfNewer("ns", id, Doc("{\"v\":1}", 100)).ok());
  ASSERT_TRUE(c->PutVector("ns", id, "abcd").ok());
  ASSERT_TRUE(c->Tombstone("ns", id, 200).ok());
  auto t = MustGet(*c, "ns", id);
  ASSERT_TRUE(t.has_value());
  EXPECT_TRUE(t->tombstone);
  EXPECT_EQ(t->upserted_at, 200u);
  EXPECT_FALSE(c->GetVector("ns", id)->has_value());  // the delete drops the vector too
  // A backfill of an older read cannot resurrect the row.
  EXPECT_FALSE(*c->PutIfNewer("ns", id, Doc("{\"v\":1}", 150)));
  EXPECT_TRUE(MustGet(*c, "ns", id)->tombstone);
  auto multi = c->MultiGet("ns", std::vector<DocId>{id});
  ASSERT_TRUE(multi.ok());
  EXPECT_TRUE((*multi)[0]->tombstone);
  // After the TTL the tombstone counts as absent and stops blocking.
  now_ms_ += 60'000;
  EXPECT_FALSE(MustGet(*c, "ns", id).has_value());
  EXPECT_FALSE((*c->MultiGet("ns", std::vector<DocId>{id}))[0].has_value());
  EXPECT_TRUE(*c->PutIfNewer("ns", id, Doc("{\"v\":1}", 150)));
  EXPECT_EQ(MustGet(*c, "ns", id)->attributes_json, "{\"v\":1}");
}

TEST_F(RocksDbCacheTest, NewerPutReplacesTombstoneAndOlderTombstoneIsIgnored) {
  auto c = OpenCache();
  DocId id = DocId::U64(9);
  ASSERT_TRUE(c->Tombstone("ns", id, 100).ok());
  EXPECT_TRUE(*c->PutIfNewer("ns", id, Doc("{\"v\":2}", 300)));
  ASSERT_TRUE(c->Tombstone("ns", id, 200).ok());  // older than the row: not written
  auto got = MustGet(*c, "ns", id);
  ASSERT_TRUE(got.has_value());
  EXPECT_FALSE(got->tombstone);
  EXPECT_EQ(got->upserted_at, 300u);
}

TEST_F(RocksDbCacheTest, InvalidateRemovesDocumentsVectorsAndTombstones) {
  auto c = OpenCache();
  DocId a = DocId::String("a"), b = DocId::String("b"), keep = DocId::String("keep");
  ASSERT_TRUE(c->PutIfNewer("ns", a, Doc("{}", 500)).ok());
  ASSERT_TRUE(c->PutVector("ns", a, "vec").ok());
  ASSERT_TRUE(c->Tombstone("ns", b, 500).ok());
  ASSERT_TRUE(c->PutIfNewer("ns", keep, Doc("{}", 1)).ok());
  std::vector<DocId> ids = {a, b};
  ASSERT_TRUE(c->Invalidate("ns", ids).ok());
  EXPECT_FALSE(MustGet(*c, "ns", a).has_value());
  EXPECT_FALSE(MustGet(*c, "ns", b).has_value());
  EXPECT_FALSE(c->GetVector("ns", a)->has_value());
  EXPECT_TRUE(MustGet(*c, "ns", keep).has_value());
  // Whatever the old stamps were, an older put is accepted again.
  EXPECT_TRUE(*c->PutIfNewer("ns", b, Doc("{}", 1)));
  EXPECT_TRUE(c->Invalidate("ns", {}).ok());
}

TEST_F(RocksDbCacheTest, VectorsAreKeptApart) {
  auto c = OpenCache();
  DocId id = DocId::U64(1);
  EXPECT_FALSE(c->GetVector("ns", id)->has_value());
  std::string f32le("\x00\x00\x80\x3f\x00\x00\x00\x40", 8);  // [1.0, 2.0]
  ASSERT_TRUE(c->PutVector("ns", id, f32le).ok());
  EXPECT_EQ(**c->GetVector("ns", id), f32le);
  EXPECT_FALSE(MustGet(*c, "ns", id).has_value());  // a vector is not a document
  ASSERT_TRUE(c->PutIfNewer("ns", id, Doc("{\"a\":1}", 1)).ok());
  EXPECT_EQ(MustGet(*c, "ns", id)->attributes_json, "{\"a\":1}");
  EXPECT_EQ(**c->GetVector("ns", id), f32le);
}

TEST_F(RocksDbCacheTest, BumpEpochMakesEverythingOfTheNamespaceUnreachable) {
  auto c = OpenCache();
  DocId id = DocId::String("x");
  ASSERT_TRUE(c->PutIfNewer("ns", id, Doc("{\"v\":1}", 100)).ok());
  ASSERT_TRUE(c->PutVector("ns", id, "vec").ok());
  ASSERT_TRUE(c->Tombstone("ns", DocId::String("t"), 100).ok());
  ASSERT_TRUE(c->PutNamespaceRecord("ns", "cache_warmed_through", "123").ok());
  ASSERT_TRUE(c->PutIfNewer("other", id, Doc("{\"v\":2}", 100)).ok());
  ASSERT_TRUE(c->PutNamespaceRecord("other", "cache_warmed_through", "456").ok());

  ASSERT_TRUE(c->BumpEpoch("ns").ok());
  EXPECT_FALSE(MustGet(*c, "ns", id).has_value());
  EXPECT_FALSE(MustGet(*c, "ns", DocId::String("t")).has_value());
  EXPECT_FALSE(c->GetVector("ns", id)->has_value());
  EXPECT_FALSE(c->GetNamespaceRecord("ns", "cache_warmed_through")->has_value());
  // Other namespaces are untouched.
  EXPECT_EQ(MustGet(*c, "other", id)->attributes_json, "{\"v\":2}");
  EXPECT_EQ(**c->GetNamespaceRecord("other", "cache_warmed_through"), "456");
  // The new epoch starts empty: older stamps are accepted again.
  EXPECT_TRUE(*c->PutIfNewer("ns", id, Doc("{\"v\":3}", 1)));
  EXPECT_EQ(MustGet(*c, "ns", id)->attributes_json, "{\"v\":3}");
  ASSERT_TRUE(c->BumpEpoch("never-used").ok());
}

TEST_F(RocksDbCacheTest, NamespaceRecordsGetPutList) {
  auto c = OpenCache();
  EXPECT_FALSE(c->GetNamespaceRecord("a", "k")->has_value());
  ASSERT_TRUE(c->PutNamespaceRecord("a", "k", "1").ok());
  ASSERT_TRUE(c->PutNamespaceRecord("a", "k", "2").ok());  // overwrite
  ASSERT_TRUE(c->PutNamespaceRecord("b", "k", "3").ok());
  ASSERT_TRUE(c->PutNamespaceRecord("b", "other", "4").ok());
  ASSERT_TRUE(c->PutNamespaceRecord("c", "kk", "5").ok());  // a key that extends "k"
  EXPECT_EQ(**c->GetNamespaceRecord("a", "k"), "2");
  auto list = c->ListNamespaceRecords("k");
  ASSERT_TRUE(list.ok());
  std::map<std::string, std::string> got(list->begin(), list->end());
  EXPECT_EQ(got, (std::map<std::string, std::string>{{"a", "2"}, {"b", "3"}}));
  ASSERT_TRUE(c->BumpEpoch("a").ok());
  list = c->ListNamespaceRecords("k");
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0], (std::pair<std::string, std::string>{"b", "3"}));
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
  now_ms_ += std::chrono::milliseconds(Options().tombstone_ttl).count();
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
    c->AbandonForTest();                  // ... but the process "dies" without the marker
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

// Several threads put random stamps on the same keys (single puts and two-key batches in either
// order); the surviving record of every key must carry the largest stamp any thread wrote.
void RunConcurrentPuts(RocksDbCache* c) {
  constexpr int kThreads = 8, kOps = 400, kKeys = 16;
  std::vector<std::vector<uint64_t>> max_seen(kThreads, std::vector<uint64_t>(kKeys, 0));
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(t + 1);
      for (int i = 0; i < kOps; ++i) {
        int k = static_cast<int>(rng() % kKeys);
        uint64_t stamp = 1 + rng() % 1'000'000;
        max_seen[t][k] = std::max(max_seen[t][k], stamp);
        CachedDoc d = Doc("{\"s\":" + std::to_string(stamp) + "}", stamp);
        if (i % 3 == 0) {
          // A batch touching two keys, in either order, exercises multi-stripe locking.
          int k2 = (k + 1 + static_cast<int>(rng() % (kKeys - 1))) % kKeys;
          uint64_t stamp2 = 1 + rng() % 1'000'000;
          max_seen[t][k2] = std::max(max_seen[t][k2], stamp2);
          std::vector<std::pair<DocId, CachedDoc>> batch = {
              {DocId::U64(k), d},
              {DocId::U64(k2), Doc("{\"s\":" + std::to_string(stamp2) + "}", stamp2)}};
          ASSERT_TRUE(c->PutIfNewerBatch("ns", batch).ok());
        } else {
          ASSERT_TRUE(c->PutIfNewer("ns", DocId::U64(k), d).ok());
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int k = 0; k < kKeys; ++k) {
    uint64_t want = 0;
    for (int t = 0; t < kThreads; ++t) want = std::max(want, max_seen[t][k]);
    auto got = c->Get("ns", DocId::U64(k));
    ASSERT_TRUE(got.ok() && got->has_value());
    EXPECT_EQ((*got)->upserted_at, want) << "key " << k;
    EXPECT_EQ((*got)->attributes_json, "{\"s\":" + std::to_string(want) + "}");
  }
}

// Rounds of a pure race: in each round every thread, released together by a barrier, puts one
// fresh key with its own stamp (odd threads through a two-key batch). The max stamp must survive.
void RunRacingRounds(RocksDbCache* c) {
  constexpr int kThreads = 6, kRounds = 60;
  std::mt19937_64 rng(42);
  std::vector<std::vector<uint64_t>> stamps(kThreads, std::vector<uint64_t>(kRounds));
  for (auto& per_thread : stamps) {
    for (auto& st : per_thread) st = 1 + rng() % 1'000'000;
  }
  std::barrier sync(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int r = 0; r < kRounds; ++r) {
        sync.arrive_and_wait();
        const uint64_t st = stamps[t][r];
        CachedDoc d = Doc("{\"s\":" + std::to_string(st) + "}", st);
        if (t % 2 == 1) {
          std::vector<std::pair<DocId, CachedDoc>> batch = {{DocId::U64(100000 + r), d},
                                                            {DocId::U64(r), d}};
          ASSERT_TRUE(c->PutIfNewerBatch("race", batch).ok());
        } else {
          ASSERT_TRUE(c->PutIfNewer("race", DocId::U64(r), d).ok());
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  int lost = 0;
  for (int r = 0; r < kRounds; ++r) {
    uint64_t want = 0;
    for (int t = 0; t < kThreads; ++t) want = std::max(want, stamps[t][r]);
    auto got = c->Get("race", DocId::U64(r));
    ASSERT_TRUE(got.ok() && got->has_value());
    if ((*got)->upserted_at != want) ++lost;
  }
  EXPECT_EQ(lost, 0) << "rounds whose newest write was lost";
}

// Widens the read-compare-write window so that a missing lock would lose updates reliably.
void YieldInsideCompareAndPut() {
  std::this_thread::yield();
  std::this_thread::sleep_for(20us);
}

TEST_F(RocksDbCacheTest, ConcurrentPutsKeepTheMaxStamp) {
  RocksDbCacheOptions o = Options();
  o.test_hook_before_write = YieldInsideCompareAndPut;
  auto c = OpenCache(o);
  RunConcurrentPuts(c.get());
  RunRacingRounds(c.get());
}

TEST_F(RocksDbCacheTest, ConcurrentPutsKeepTheMaxStampWithFewStripes) {
  RocksDbCacheOptions o = Options();
  o.lock_stripes = 2;  // batches share stripes: exercises ordered, de-duplicated locking
  o.test_hook_before_write = YieldInsideCompareAndPut;
  auto c = OpenCache(o);
  RunConcurrentPuts(c.get());
  RunRacingRounds(c.get());
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

}  // namespace
}  // namespace layer::cache
