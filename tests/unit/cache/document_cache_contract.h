// The DocumentCache contract suite: what every backend of cache/document_cache.h must do,
// whatever it stores records in. The cases (document_cache_contract_test.cc) check newer-wins
// compare-and-put (single and batched, with repeated keys), tombstones, typed keys, MultiGet,
// Invalidate, vectors, epochs, namespace records, TryGet's agreement with Get, the atomicity of
// concurrent writes of one key, and that Ping and Stats answer.
//
// A backend joins the suite from its own test file with one instantiation:
//
//   INSTANTIATE_TEST_SUITE_P(RocksDb, DocumentCacheContractTest,
//                            ::testing::Values(DocumentCacheContractParam{"RocksDb", factory}));
//
// where `factory` returns a fresh, empty cache for each case. What only some backends can do
// (survive a reopen, expire a tombstone on an injected clock, evict, answer TryGet from memory)
// is tested in the backend's own file, not here.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <barrier>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <ostream>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "cache/document_cache.h"

namespace layer::cache {
namespace testing {

// A live (not tombstone) record.
inline CachedDoc Doc(std::string json, uint64_t stamp) {
  return CachedDoc{std::move(json), stamp, false};
}

// Several threads put random stamps on the same keys (single puts and two-key batches in either
// order); the surviving record of every key must carry the largest stamp any thread wrote.
inline void RunConcurrentPuts(DocumentCache* c) {
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
          // A batch touching two keys, in either order, exercises multi-key locking.
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
inline void RunRacingRounds(DocumentCache* c) {
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

}  // namespace testing

// One backend under test: the cache and whatever it needs to live (a temporary directory, a
// server connection, an inner cache), released when the case ends.
class DocumentCacheBackend {
 public:
  virtual ~DocumentCacheBackend() = default;
  virtual DocumentCache& cache() = 0;
};

struct DocumentCacheContractParam {
  std::string name;  // the backend as printed (see PrintTo)
  // Returns a fresh, empty cache for every call; nullptr (after reporting why with ADD_FAILURE,
  // or skipping the case with GTEST_SKIP) when the backend cannot be opened.
  std::function<std::unique_ptr<DocumentCacheBackend>()> factory;
};

// gtest prints a case's parameter when it fails, and CMake's test discovery names each ctest
// case after it (Instance/Suite.Case/<name>); the factory has nothing readable to print.
inline void PrintTo(const DocumentCacheContractParam& param, std::ostream* os) {
  *os << param.name;
}

class DocumentCacheContractTest : public ::testing::TestWithParam<DocumentCacheContractParam> {
 protected:
  void SetUp() override {
    backend_ = GetParam().factory();
    if (IsSkipped()) return;  // the factory skipped the case (its server is not installed)
    ASSERT_NE(backend_, nullptr) << "backend " << GetParam().name << " did not open";
    cache_ = &backend_->cache();
  }

  std::optional<CachedDoc> MustGet(DocumentCache& c, std::string_view ns, const DocId& id) {
    auto r = c.Get(ns, id);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : std::nullopt;
  }

  std::unique_ptr<DocumentCacheBackend> backend_;
  DocumentCache* cache_ = nullptr;
};

}  // namespace layer::cache
