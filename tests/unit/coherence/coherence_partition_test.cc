// CacheCoherence across tenants' partitions of one namespace (docs/design.md §9.7): entries are
// never shared, a write or namespace delete through one partition invalidates what it names in
// every other registered one, the registry survives in the cache (ReadPartitionRegistry), and the
// write sequences and fences are shared, so a read begun in one partition before a write through
// another is never joined or backfilled over it.
#include "coherence/coherence.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/tenant.h"
#include "unit/coherence/coherence_fixture.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

namespace layer::coherence::testing {
namespace {

namespace asio = boost::asio;

using PartitionTest = CoherenceTest;

const std::string kA = PartitionName(kNs, "aaaaaaaaaaaaaaaa");
const std::string kB = PartitionName(kNs, "bbbbbbbbbbbbbbbb");

TEST(TenantNamingTest, PartitionsAreNamedAfterTheirNamespaceAndTag) {
  EXPECT_EQ(PartitionName("products", ""), "products");
  EXPECT_EQ(PartitionName("products", "0123"), "products@0123");
  EXPECT_EQ(SplitPartition("products@0123").ns, "products");
  EXPECT_EQ(SplitPartition("products@0123").tag, "0123");
  EXPECT_EQ(SplitPartition("products").ns, "products");
  EXPECT_EQ(SplitPartition("products").tag, "");
  EXPECT_EQ(PartitionNamespace("a.b-c_d@ff"), "a.b-c_d");
  EXPECT_EQ(PartitionRegistryName("products"), "products@");
}

TEST_F(PartitionTest, EntriesAreNeverSharedBetweenPartitions) {
  EXPECT_TRUE(Apply(Upserts(100, {Row(DocId::U64(1), R"({"v":"a"})")}), kA));
  auto a = FetchOne(DocId::U64(1), kA);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->outcome, FetchOutcome::kHit);
  upstream_.Put(DocId::U64(1), R"({"v":"upstream"})", 100);
  auto b = FetchOne(DocId::U64(1), kB);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->outcome, FetchOutcome::kMiss);
  EXPECT_EQ(upstream_.call_count(), 1u);
  EXPECT_FALSE(Cached(DocId::U64(1), kNs));  // nor with the namespace's own name
}

TEST_F(PartitionTest, AWriteThroughOnePartitionInvalidatesWhatItNamesInTheOthers) {
  for (const std::string* p : {&kA, &kB}) {
    Run(core_->RegisterPartition(*p));
    for (uint64_t id : {1, 2, 3}) Seed(DocId::U64(id), R"({"v":1})", 100, *p);
  }
  EXPECT_EQ(core_->SiblingPartitions(kA), std::vector<std::string>{kB});
  EXPECT_EQ(core_->SiblingPartitions(kB), std::vector<std::string>{kA});
  // An upsert of 1 and a delete of 2 through B: A holds no version of either, 3 is untouched.
  EXPECT_TRUE(Apply(Rows(200, {Row(DocId::U64(1), R"({"v":2})")}, {}, {DocId::U64(2)}), kB));
  for (uint64_t id : {1, 2}) {
    auto rec = Cached(DocId::U64(id), kA);
    EXPECT_TRUE(!rec || rec->tombstone) << id;
    // An older row read before the write cannot land over it.
    auto put = Run(guard().PutIfNewer(kA, DocId::U64(id), CachedDoc{R"({"v":1})", 100, false}));
    ASSERT_TRUE(put.ok());
    EXPECT_FALSE(*put) << id;
  }
  EXPECT_TRUE(HasLiveRecord(DocId::U64(3), kA));
  // B has the write's own effects.
  EXPECT_EQ(Json(Cached(DocId::U64(1), kB)->attributes_json), Json(R"({"v":2})"));
  // A write whose rows are unknown invalidates every partition of the namespace.
  EXPECT_TRUE(Apply(UnknownRows(300), kA));
  EXPECT_FALSE(HasLiveRecord(DocId::U64(3), kA));
  EXPECT_FALSE(HasLiveRecord(DocId::U64(3), kB));
}

TEST_F(PartitionTest, RowsNotMirroredThroughOnePartitionAreInvalidatedInTheOthers) {
  for (const std::string* p : {&kA, &kB}) {
    Run(core_->RegisterPartition(*p));
    for (uint64_t id : {1, 2}) Seed(DocId::U64(id), R"({"v":1})", 100, *p);
  }
  // Through B: the row of 1 is of unknown form (docs/design.md §4.2.8), 2 overlapped another
  // write; neither is mirrored in B, and A must not keep its version of either.
  RowEffect unknown = Row(DocId::U64(1), "");
  unknown.form_unknown = true;
  auto other = core_->BeginWrite(kB, {DocId::U64(2)});
  auto ticket = core_->BeginWrite(kB, {DocId::U64(1), DocId::U64(2)});
  EXPECT_TRUE(Run(core_->ApplyWrite(
      kB, Upserts(200, {unknown, Row(DocId::U64(2), R"({"v":2})")}), ticket.get())));
  for (const std::string* p : {&kA, &kB}) {
    for (uint64_t id : {1, 2}) EXPECT_FALSE(HasLiveRecord(DocId::U64(id), *p)) << *p << " " << id;
  }
}

TEST_F(PartitionTest, ANamespaceDeleteEmptiesEveryPartition) {
  EXPECT_TRUE(Apply(Upserts(100, {Row(DocId::U64(1), "{}")}), kA));
  EXPECT_TRUE(Apply(Upserts(100, {Row(DocId::U64(1), "{}")}), kB));
  core_->LearnIdType(kB, tpuf::IdType::kU64);
  Run(core_->NamespaceDeleted(kA));
  EXPECT_FALSE(HasLiveRecord(DocId::U64(1), kA));
  EXPECT_FALSE(HasLiveRecord(DocId::U64(1), kB));
  EXPECT_FALSE(core_->KnownIdType(kB));
}

TEST_F(PartitionTest, AReadBegunBeforeAWriteThroughAnotherPartitionIsNotJoinedOrKept) {
  // A fetch in B reads upstream (held); a delete through A is acknowledged meanwhile; a fetch in
  // B that begins then reads for itself, and the first read's row never lands in B's cache.
  const DocId id = DocId::U64(9);
  upstream_.Put(id, R"({"v":"old"})", 100);
  Run(core_->RegisterPartition(kB));
  upstream_.Hold();
  std::optional<Result<FetchOneResult>> before, after;
  auto fetch_before = [&]() -> Task<void> {
    before.emplace(co_await core_->FetchOne(kB, id, reader_));
  };
  auto fetch_after = [&]() -> Task<void> {
    after.emplace(co_await core_->FetchOne(kB, id, reader_));
  };
  WriteOutcome del = Deletes(200, {id});
  asio::co_spawn(io_, fetch_before, asio::detached);
  bool own_read = false;
  asio::co_spawn(
      io_,
      [&]() -> Task<void> {
        co_await WaitOnLoop([&] { return upstream_.blocked() == 1; });
        upstream_.Remove(id);
        (void)co_await core_->ApplyWrite(kA, std::move(del));
        asio::co_spawn(io_, fetch_after, asio::detached);
        own_read = co_await WaitOnLoop([&] { return upstream_.blocked() == 2; });
        upstream_.Release();
      },
      asio::detached);
  io_.restart();
  io_.run();

  EXPECT_TRUE(own_read);
  EXPECT_EQ(upstream_.call_count(), 2u);
  ASSERT_TRUE(after && after->ok());
  EXPECT_FALSE((*after)->row) << "the fetch after the delete got the row read before it";
  ASSERT_TRUE(before && before->ok());
  EXPECT_FALSE(HasLiveRecord(id, kB)) << "the row read before the delete was backfilled";
}

TEST_F(PartitionTest, TheRegistryIsKeptInTheCache) {
  Run(core_->RegisterPartition(kA));
  Run(core_->RegisterPartition(kB));
  Run(core_->RegisterPartition(kNs));  // the one tenant's partition is never registered
  auto registry = ReadPartitionRegistry(*inner_);
  ASSERT_TRUE(registry.ok()) << registry.status().ToString();
  ASSERT_EQ(registry->size(), 1u);
  EXPECT_EQ(registry->at(kNs),
            (std::set<std::string>{"aaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbb"}));
  EXPECT_EQ(core_->pending_invalidations(), 0u);
}

TEST_F(PartitionTest, ARegistryTheCacheRefusesIsPendingUntilARetrySavesIt) {
  faults_->FailOp(CacheOp::kPutNamespaceRecord, Status::IoError("injected"));
  Run(core_->RegisterPartition(kA));
  EXPECT_EQ(core_->pending_invalidations(), 1u);  // a clean stop would discard the cache
  EXPECT_EQ(core_->SiblingPartitions(kB), std::vector<std::string>{kA});  // known here at once
  Heal();
  RetryPending();
  EXPECT_EQ(core_->pending_invalidations(), 0u);
  auto registry = ReadPartitionRegistry(*inner_);
  ASSERT_TRUE(registry.ok());
  EXPECT_EQ(registry->at(kNs), std::set<std::string>{"aaaaaaaaaaaaaaaa"});
}

}  // namespace
}  // namespace layer::coherence::testing
