// CacheCoherence's cache scans (docs/design.md §7.8), against the embedded RocksDB cache behind
// a FaultInjectingCache and a CacheGuard: WholeNamespace (a completed warm, nothing invalidated
// since or within a tombstone's life before, nothing pending) and ScanCached's pages (acknowledged
// writes in them, rows a write in flight may change held back).
#include "coherence/coherence.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "unit/coherence/coherence_fixture.h"

namespace layer::coherence::testing {
namespace {

constexpr uint64_t kTombstoneLifeMs = 10 * 60 * 1000;

class CacheScanTest : public CoherenceTest {
 protected:
  Result<uint64_t> Whole(const std::string& ns = kNs) { return Run(core_->WholeNamespace(ns)); }
  void Warmed(uint64_t ct, const std::string& ns = kNs) {
    ASSERT_TRUE(Run(core_->RecordWarmedThrough(ns, ct)).ok());
  }
  // Every page of the namespace; the rows' ids as text, or the first failure.
  Result<std::vector<std::string>> ScanAll(size_t limit, const std::string& ns = kNs) {
    std::vector<std::string> ids;
    std::optional<DocId> after;
    for (;;) {
      auto page = Run(core_->ScanCached(ns, after, limit));
      if (!page.ok()) return page.status();
      for (const auto& [id, doc] : page->rows) ids.push_back(id.ToText());
      if (!page->resume_after) return ids;
      after = page->resume_after;
    }
  }
};

TEST_F(CacheScanTest, OnlyAWarmNamespaceIsWhole) {
  Seed(DocId::U64(1), R"({"a":1})", 10);
  auto whole = Whole();
  ASSERT_FALSE(whole.ok());
  EXPECT_EQ(whole.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(whole.status().message().find("no warm"), std::string::npos)
      << whole.status().ToString();
  EXPECT_FALSE(Run(core_->ScanCached(kNs, std::nullopt, 10)).ok());
  Warmed(1000);
  whole = Whole();
  ASSERT_TRUE(whole.ok()) << whole.status().ToString();
  EXPECT_EQ(*whole, 1000u);
  EXPECT_FALSE(Whole(kOtherNs).ok());
  // A namespace delete drops the warm with everything else.
  Run(core_->NamespaceDeleted(kNs));
  EXPECT_FALSE(Whole().ok());
}

TEST_F(CacheScanTest, AcknowledgedWritesKeepItWholeAndArePaged) {
  for (uint64_t i = 1; i <= 5; ++i) Seed(DocId::U64(i), R"({"a":1})", 10);
  Warmed(1000);
  ASSERT_TRUE(Apply(Upserts(2000, {Row(DocId::U64(9), R"({"a":9})")})));
  ASSERT_TRUE(Apply(Deletes(2001, {DocId::U64(2)})));
  ASSERT_TRUE(Apply(Patches(2002, {Row(DocId::U64(3), R"({"b":3})")})));
  ASSERT_TRUE(Whole().ok()) << Whole().status().ToString();
  for (size_t limit : {1, 2, 100}) {
    auto ids = ScanAll(limit);
    ASSERT_TRUE(ids.ok()) << ids.status().ToString();
    EXPECT_EQ(*ids, (std::vector<std::string>{"1", "3", "4", "5", "9"})) << limit;
  }
  auto page = Run(core_->ScanCached(kNs, DocId::U64(2), 1));
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->rows.size(), 1u);
  EXPECT_EQ(page->rows[0].second.attributes_json, R"({"a":1,"b":3})");
}

TEST_F(CacheScanTest, InvalidatedIdsEndItUntilAWarmBegunAfterTheirTombstonesExpired) {
  Seed(DocId::U64(1), R"({"a":1})", 10);
  Warmed(1000);
  // A conditional write's affected ids: their rows are unknown to the cache now.
  ASSERT_TRUE(Apply(AffectedIds(5000, {DocId::U64(1)}, false)));
  auto whole = Whole();
  ASSERT_FALSE(whole.ok());
  EXPECT_NE(whole.status().message().find("invalidated"), std::string::npos)
      << whole.status().ToString();
  EXPECT_FALSE(Run(core_->ScanCached(kNs, std::nullopt, 10)).ok());
  // A warm begun while the tombstone may still refuse its row does not restore it...
  Warmed(5000 + kTombstoneLifeMs);
  EXPECT_FALSE(Whole().ok());
  // ...one begun after the tombstone expired does.
  Warmed(5000 + kTombstoneLifeMs + 1);
  EXPECT_TRUE(Whole().ok()) << Whole().status().ToString();
}

TEST_F(CacheScanTest, OverlappedAndUnknownOutcomeWritesEndIt) {
  Seed(DocId::U64(1), R"({"a":1})", 10);
  Warmed(1000);
  WriteOutcome unknown = Upserts(3000, {Row(DocId::U64(1), R"({"a":2})")});
  unknown.kind = WriteOutcome::Kind::kInvalidateIds;
  unknown.deletes = {DocId::U64(1)};
  unknown.upserts.clear();
  unknown.outcome_known = false;
  ASSERT_TRUE(Apply(std::move(unknown)));
  EXPECT_FALSE(Whole().ok());

  Seed(DocId::U64(1), R"({"a":1})", 10, kOtherNs);
  Warmed(1000, kOtherNs);
  const DocId id = DocId::U64(1);
  auto first = core_->BeginWrite(kOtherNs, {id});
  auto second = core_->BeginWrite(kOtherNs, {id});
  ASSERT_TRUE(
      Run(core_->ApplyWrite(kOtherNs, Upserts(4000, {Row(id, R"({"a":3})")}), second.get())));
  EXPECT_FALSE(Whole(kOtherNs).ok());
}

TEST_F(CacheScanTest, APendingInvalidationEndsIt) {
  Seed(DocId::U64(1), R"({"a":1})", 10);
  Warmed(1000);
  // (A refusal that does not open the breaker: the cache stays connected.)
  faults_->FailOp(cache::CacheOp::kTombstone, Status::InvalidArgument("injected"));
  EXPECT_FALSE(Apply(Deletes(2000, {DocId::U64(1)})));
  ASSERT_GT(core_->pending_invalidations(), 0u);
  auto whole = Whole();
  ASSERT_FALSE(whole.ok());
  EXPECT_NE(whole.status().message().find("pending"), std::string::npos)
      << whole.status().ToString();
}

TEST_F(CacheScanTest, RowsAWriteInFlightMayChangeAreHeldBack) {
  for (uint64_t i = 1; i <= 3; ++i) Seed(DocId::U64(i), R"({"a":1})", 10);
  Warmed(1000);
  {
    // A write of an id the scan does not return holds nothing back.
    auto elsewhere = core_->BeginWrite(kNs, {DocId::U64(7)});
    auto ids = ScanAll(10);
    ASSERT_TRUE(ids.ok()) << ids.status().ToString();
    EXPECT_EQ(ids->size(), 3u);
  }
  {
    // One of a row it returns: the page is read again until the write ends (here: never).
    auto writing = core_->BeginWrite(kNs, {DocId::U64(2)});
    auto page = Run(core_->ScanCached(kNs, std::nullopt, 10));
    ASSERT_FALSE(page.ok());
    EXPECT_NE(page.status().message().find("in flight"), std::string::npos)
        << page.status().ToString();
    // The page after that row does not hold it.
    page = Run(core_->ScanCached(kNs, DocId::U64(2), 10));
    ASSERT_TRUE(page.ok()) << page.status().ToString();
    EXPECT_EQ(page->rows.size(), 1u);
  }
  EXPECT_TRUE(ScanAll(10).ok());
}

}  // namespace
}  // namespace layer::coherence::testing
