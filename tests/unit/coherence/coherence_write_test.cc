// CacheCoherence writes, against the embedded RocksDB cache (behind a FaultInjectingCache and a
// CacheGuard) and a scripted upstream RowReader: ApplyWrite's mirroring (newer-wins upserts,
// patch merges, tombstones, epoch bumps, id types), pending invalidations and their retry, and
// namespace delete (docs/design.md §4.2, §4.3, §4.4.1).
#include "coherence/coherence.h"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

#include <optional>
#include <string>
#include <vector>

#include "unit/coherence/coherence_fixture.h"

namespace layer::coherence::testing {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

// ---- ApplyWrite: rows ----

using ApplyWriteTest = CoherenceTest;

TEST_F(ApplyWriteTest, UpsertsAreCachedWithTheWriteStamp) {
  EXPECT_TRUE(
      Apply(Upserts(100, {Row(DocId::U64(1), R"({"a":1})"), Row(DocId::U64(2), R"({"a":2})")})));
  for (uint64_t n : {1, 2}) {
    auto doc = Cached(DocId::U64(n));
    ASSERT_TRUE(doc) << n;
    EXPECT_FALSE(doc->tombstone);
    EXPECT_EQ(doc->upserted_at, 100u);
    EXPECT_EQ(Json(doc->attributes_json), Json(R"({"a":)" + std::to_string(n) + "}"));
  }
  auto r = FetchOne(DocId::U64(2));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->outcome, FetchOutcome::kHit);
  EXPECT_EQ(r->row->stamp, 100u);
  EXPECT_EQ(upstream_.call_count(), 0u);
  EXPECT_EQ(core_->pending_invalidations(), 0u);
}

TEST_F(ApplyWriteTest, AnUpsertRefusedByANewerRecordLeavesNoVersionOfTheId) {
  EXPECT_TRUE(Apply(Upserts(200, {Row(DocId::U64(1), R"({"v":"new"})")})));
  // The older write's put is refused: the order in which the upstream applied the two is unknown,
  // so neither version is served, and versions older than the refused write stay blocked.
  EXPECT_TRUE(Apply(Upserts(100, {Row(DocId::U64(1), R"({"v":"old"})")})));
  auto doc = Cached(DocId::U64(1));
  ASSERT_TRUE(doc);
  EXPECT_TRUE(doc->tombstone);
  EXPECT_EQ(doc->upserted_at, 100u);
  EXPECT_EQ(core_->pending_invalidations(), 0u);
  auto r = FetchOne(DocId::U64(1));
  ASSERT_TRUE(r.ok());
  EXPECT_NE(r->outcome, FetchOutcome::kHit);

  EXPECT_TRUE(Apply(Upserts(300, {Row(DocId::U64(1), R"({"v":"newest"})")})));
  EXPECT_EQ(Json(Cached(DocId::U64(1))->attributes_json), Json(R"({"v":"newest"})"));
}

TEST_F(ApplyWriteTest, APatchMergeRefusedByANewerRecordLeavesNoVersionOfTheId) {
  const DocId id = DocId::U64(1);
  EXPECT_TRUE(Apply(Upserts(100, {Row(id, R"({"a":1,"b":1})")})));
  // A newer version, from a write whose order against the patch is unknown, is cached: the merge's
  // put with the patch's older stamp is refused.
  Seed(id, R"({"a":9,"b":9})", 300);
  EXPECT_TRUE(Apply(Patches(200, {Row(id, R"({"b":2})")})));
  auto doc = Cached(id);
  ASSERT_TRUE(doc);
  EXPECT_TRUE(doc->tombstone) << doc->attributes_json;
  EXPECT_EQ(doc->upserted_at, 200u);
}

TEST_F(ApplyWriteTest, ALargeWriteIsMirroredInBatchesAndHugeDeletesInvalidateTheNamespace) {
  constexpr uint64_t kRows = 2500;  // several batches, on the bulk lane
  std::vector<RowEffect> rows;
  for (uint64_t i = 1; i <= kRows; ++i) rows.push_back(Row(DocId::U64(i), R"({"n":1})"));
  EXPECT_TRUE(Apply(Upserts(100, std::move(rows))));
  for (uint64_t i : {uint64_t{1}, uint64_t{1000}, uint64_t{1001}, kRows}) {
    EXPECT_TRUE(HasLiveRecord(DocId::U64(i))) << i;
  }
  EXPECT_EQ(guard().breaker_state(), cache::BreakerState::kClosed);

  // More deletes than are worth one tombstone each: the namespace goes, in O(1).
  std::vector<DocId> ids;
  for (uint64_t i = 100'000; i < 100'000 + 10'001; ++i) ids.push_back(DocId::U64(i));
  EXPECT_TRUE(Apply(Deletes(200, std::move(ids))));
  EXPECT_FALSE(HasLiveRecord(DocId::U64(1)));
}

TEST_F(ApplyWriteTest, WritesOverlappingOnAnIdLeaveNoVersionOfIt) {
  const DocId id = DocId::U64(1), other = DocId::U64(2);
  // Both on their way upstream at once: their order there is unknown.
  auto first = core_->BeginWrite(kNs, {id, other});
  auto second = core_->BeginWrite(kNs, {id});
  EXPECT_TRUE(Run(core_->ApplyWrite(kNs, Upserts(100, {Row(id, R"({"v":1})")}), second.get())));
  second.reset();
  EXPECT_TRUE(Run(core_->ApplyWrite(
      kNs, Upserts(101, {Row(id, R"({"v":2})"), Row(other, R"({"v":2})")}), first.get())));
  first.reset();
  EXPECT_FALSE(HasLiveRecord(id));
  EXPECT_TRUE(HasLiveRecord(other));  // only the first write named it

  // One after the other: the later is mirrored.
  auto third = core_->BeginWrite(kNs, {id});
  EXPECT_TRUE(Run(core_->ApplyWrite(kNs, Upserts(102, {Row(id, R"({"v":3})")}), third.get())));
  third.reset();
  auto doc = Cached(id);
  ASSERT_TRUE(doc && !doc->tombstone);
  EXPECT_EQ(Json(doc->attributes_json), Json(R"({"v":3})"));
}

TEST_F(ApplyWriteTest, OverlappingWritesLeaveARepairableTombstoneThatAStrongReadRepairs) {
  const DocId id = DocId::U64(1);
  auto first = core_->BeginWrite(kNs, {id});
  auto second = core_->BeginWrite(kNs, {id});
  EXPECT_TRUE(Run(core_->ApplyWrite(kNs, Upserts(100, {Row(id, R"({"v":1})")}), second.get())));
  second.reset();
  EXPECT_TRUE(Run(core_->ApplyWrite(kNs, Upserts(101, {Row(id, R"({"v":2})")}), first.get())));
  first.reset();
  ASSERT_FALSE(HasLiveRecord(id));
  EXPECT_TRUE(Cached(id)->repairable);
  // The upstream applied the first write last. A read that began after both were acknowledged
  // sees that, and its backfill replaces the tombstone although its row is older than the
  // tombstone's stamp (docs/design.md §4.2.7): the next fetch is a hit.
  upstream_.Put(id, R"({"v":2})", 101);
  auto r = FetchOne(id);
  ASSERT_TRUE(r.ok() && r->row);
  EXPECT_EQ(r->outcome, FetchOutcome::kMiss);
  ASSERT_TRUE(WaitCached(id));
  r = FetchOne(id);
  ASSERT_TRUE(r.ok() && r->row);
  EXPECT_EQ(r->outcome, FetchOutcome::kHit);
  EXPECT_EQ(Json(r->row->attributes_json), Json(R"({"v":2})"));
  EXPECT_EQ(upstream_.call_count(), 1u);
}

TEST_F(ApplyWriteTest, ARepairNeverUndoesTheTombstoneOfAWriteAcknowledgedWhileItsPutWasOnItsWay) {
  const DocId id = DocId::U64(1);
  {
    auto first = core_->BeginWrite(kNs, {id});
    auto second = core_->BeginWrite(kNs, {id});
    EXPECT_TRUE(Run(core_->ApplyWrite(kNs, Upserts(100, {Row(id, R"({"v":1})")}), second.get())));
    second.reset();
    EXPECT_TRUE(Run(core_->ApplyWrite(kNs, Upserts(101, {Row(id, R"({"v":2})")}), first.get())));
  }
  ASSERT_TRUE(Cached(id)->repairable);
  upstream_.Put(id, R"({"v":2})", 101);
  // The fetch's backfill passes every check of the core, then its put is held on its way to the
  // cache; meanwhile a patch of the id is acknowledged (no cached row to merge into: a repairable
  // tombstone). The held repair must not replace that tombstone when it lands.
  faults_->SetOpLatency(CacheOp::kPutIfNewer, std::chrono::seconds(60));
  faults_->SetOpLatency(CacheOp::kPutIfNewerBatch, std::chrono::seconds(60));
  const uint64_t puts =
      faults_->calls(CacheOp::kPutIfNewer) + faults_->calls(CacheOp::kPutIfNewerBatch);
  const std::string ns = kNs;  // a coroutine lambda cannot capture the array
  std::optional<Result<FetchOneResult>> fetched;
  bool held = false, patched = false, landed = false;
  asio::co_spawn(
      io_, [&]() -> Task<void> { fetched.emplace(co_await core_->FetchOne(ns, id, reader_)); },
      asio::detached);
  asio::co_spawn(
      io_,
      [&]() -> Task<void> {
        held = co_await WaitOnLoop([&] {
          return faults_->calls(CacheOp::kPutIfNewer) +
                     faults_->calls(CacheOp::kPutIfNewerBatch) >
                 puts;
        });
        auto patch = core_->BeginWrite(ns, {id});
        const std::string v3 = R"({"v":3})";
        upstream_.Put(id, v3, core_->NewStamp());
        WriteOutcome patch_outcome = Patches(102, {Row(id, v3)});
        patched = co_await core_->ApplyWrite(ns, std::move(patch_outcome), patch.get());
        patch.reset();
        faults_->ClearLatency();
        landed = co_await WaitOnLoop([&] { return BackfillsDone() > 0; });
      },
      asio::detached);
  io_.restart();
  io_.run();
  ASSERT_TRUE(held);
  ASSERT_TRUE(patched);
  ASSERT_TRUE(landed);
  ASSERT_TRUE(fetched && fetched->ok());
  EXPECT_EQ(Json((*fetched)->row->attributes_json), Json(R"({"v":2})"));
  auto doc = Cached(id);
  ASSERT_TRUE(doc);
  EXPECT_TRUE(doc->tombstone) << "the repair undid the patch's tombstone: " << doc->attributes_json;
  auto r = FetchOne(id);
  ASSERT_TRUE(r.ok() && r->row);
  EXPECT_EQ(Json(r->row->attributes_json), Json(R"({"v":3})"));
}

TEST_F(ApplyWriteTest, NoReadRepairsTheIdsOfAWriteWhoseOutcomeIsUnknown) {
  const DocId id = DocId::U64(1);
  Seed(id, R"({"v":1})", 100);
  WriteOutcome unknown = Deletes(200, {id});
  unknown.kind = WriteOutcome::Kind::kInvalidateIds;
  unknown.outcome_known = false;
  EXPECT_TRUE(Apply(std::move(unknown)));
  ASSERT_TRUE(Cached(id)->tombstone);
  EXPECT_FALSE(Cached(id)->repairable);
  // The write may yet be applied: the row read now is never cached, however often it is read.
  upstream_.Put(id, R"({"v":1})", 100);
  for (int i = 0; i < 2; ++i) {
    auto r = FetchOne(id);
    ASSERT_TRUE(r.ok() && r->row);
    EXPECT_EQ(r->outcome, FetchOutcome::kMiss);
    ASSERT_TRUE(WaitFor([&] { return BackfillsDone() >= static_cast<uint64_t>(i + 1); }));
    EXPECT_FALSE(HasLiveRecord(id));
  }
}

TEST_F(ApplyWriteTest, AWriteOverlappingAWholeNamespaceWriteLeavesNoVersionOfItsIds) {
  const DocId id = DocId::U64(1);
  // A delete_by_filter is on its way upstream when an upsert of the id begins: the upstream may
  // apply the upsert first and then delete its row.
  auto by_filter = core_->BeginWrite(kNs, {}, /*whole_namespace=*/true);
  auto upsert = core_->BeginWrite(kNs, {id});
  EXPECT_TRUE(Run(core_->ApplyWrite(kNs, Upserts(101, {Row(id, R"({"g":1})")}), upsert.get())));
  upsert.reset();
  EXPECT_FALSE(HasLiveRecord(id));
  by_filter.reset();

  // The same when the whole-namespace write begins while the upsert is on its way.
  auto late_upsert = core_->BeginWrite(kNs, {id});
  auto late_filter = core_->BeginWrite(kNs, {}, /*whole_namespace=*/true);
  late_filter.reset();
  EXPECT_TRUE(
      Run(core_->ApplyWrite(kNs, Upserts(102, {Row(id, R"({"g":1})")}), late_upsert.get())));
  late_upsert.reset();
  EXPECT_FALSE(HasLiveRecord(id));

  // A whole-namespace write of another namespace does not overlap.
  auto elsewhere = core_->BeginWrite(kOtherNs, {}, /*whole_namespace=*/true);
  auto alone = core_->BeginWrite(kNs, {id});
  EXPECT_TRUE(Run(core_->ApplyWrite(kNs, Upserts(103, {Row(id, R"({"g":2})")}), alone.get())));
  alone.reset();
  elsewhere.reset();
  auto doc = Cached(id);
  ASSERT_TRUE(doc && !doc->tombstone);
  EXPECT_EQ(Json(doc->attributes_json), Json(R"({"g":2})"));
}

TEST_F(ApplyWriteTest, AWriteOfMoreThanTenThousandIdsIsMirroredUnlessAWriteOfItsNamespaceOverlaps) {
  std::vector<RowEffect> rows;
  std::vector<DocId> ids;
  for (uint64_t i = 1; i <= 10001; ++i) {
    rows.push_back(Row(DocId::U64(i), R"({"n":1})"));
    ids.push_back(DocId::U64(i));
  }
  // Alone in its namespace (a write elsewhere does not count): mirrored.
  auto elsewhere = core_->BeginWrite(kOtherNs, {DocId::U64(1)});
  auto big = core_->BeginWrite(kNs, ids);
  EXPECT_TRUE(Run(core_->ApplyWrite(kNs, Upserts(100, rows), big.get())));
  big.reset();
  elsewhere.reset();
  EXPECT_TRUE(HasLiveRecord(DocId::U64(1)));
  EXPECT_TRUE(HasLiveRecord(DocId::U64(10001)));

  // A write of one other id of the namespace overlaps it: the big write's ids were not
  // registered one by one, so none of its rows is mirrored (the namespace is invalidated).
  auto again = core_->BeginWrite(kNs, ids);
  auto small = core_->BeginWrite(kNs, {DocId::U64(50000)});
  small.reset();
  EXPECT_TRUE(Run(core_->ApplyWrite(kNs, Upserts(200, rows), again.get())));
  again.reset();
  EXPECT_FALSE(HasLiveRecord(DocId::U64(1)));
  EXPECT_FALSE(HasLiveRecord(DocId::U64(10001)));
}

TEST_F(ApplyWriteTest, StampsOnlyGrowWhenTheWallClockStepsBack) {
  clock_.SetWallMs(1'780'000'000'000);
  const uint64_t a = core_->NewStamp();
  clock_.SetWallMs(clock_.WallMs() - 60'000);
  const uint64_t b = core_->NewStamp();
  EXPECT_GT(b, a);
  clock_.Advance(std::chrono::minutes(2));
  EXPECT_EQ(core_->NewStamp(), static_cast<uint64_t>(clock_.WallMs()));
  // A stamp taken at least after a given one (a repairable tombstone's, docs/design.md §4.2.7).
  const uint64_t floor = static_cast<uint64_t>(clock_.WallMs()) + 5'000;
  EXPECT_EQ(core_->NewStampAfter(floor), floor);
  EXPECT_GT(core_->NewStamp(), floor);
}

TEST_F(ApplyWriteTest, ARestartedProcessNeverStampsBelowAnEarlierOne) {
  // Stamps run ahead of the wall clock while writes come faster than one per ms; a process
  // started after this one (a restart on the same data dir, whose cache and upstream rows keep
  // these stamps) must stamp above all of them (docs/design.md §4.2.6).
  std::vector<uint64_t> stored;
  CoherenceOptions first_options;
  first_options.clock = &clock_;
  first_options.persist_stamp_ceiling = [&](uint64_t ceiling) {
    stored.push_back(ceiling);
    return Status::Ok();
  };
  CacheCoherence first(nullptr, first_options);
  uint64_t last = 0;
  for (int i = 0; i < 200'000; ++i) {  // 200 s of stamps without the wall clock moving
    last = first.NewStamp();
    ASSERT_FALSE(stored.empty());
    ASSERT_LE(last, stored.back()) << "a stamp passed the stored ceiling";
  }
  EXPECT_GT(last, static_cast<uint64_t>(clock_.WallMs()) + 100'000);
  EXPECT_LE(stored.size(), 5u);  // once per kStampLeaseMs of stamps, not per stamp

  CoherenceOptions second_options;
  second_options.clock = &clock_;
  second_options.stamp_floor = stored.back();
  CacheCoherence second(nullptr, second_options);
  EXPECT_GT(second.NewStamp(), last);
}

TEST_F(ApplyWriteTest, UpsertVectorIsStoredApart) {
  RowEffect row = Row(DocId::U64(1), R"({"a":1})");
  const std::string f32("\x00\x00\x80\x3f\x00\x00\x00\x40", 8);
  row.vector_f32 = f32;
  EXPECT_TRUE(Apply(Upserts(100, {row})));
  auto v = inner_->GetVector(kNs, DocId::U64(1));
  ASSERT_TRUE(v.ok());
  ASSERT_TRUE(*v);
  EXPECT_EQ(**v, f32);
  EXPECT_EQ(Json(Cached(DocId::U64(1))->attributes_json), Json(R"({"a":1})"));
}

TEST_F(ApplyWriteTest, PatchMergesIntoACachedFullRow) {
  Seed(DocId::U64(1), R"({"a":1,"b":2,"c":{"x":1}})", 100);
  EXPECT_TRUE(Apply(Patches(200, {Row(DocId::U64(1), R"({"b":null,"c":5,"d":"new"})")})));
  auto doc = Cached(DocId::U64(1));
  ASSERT_TRUE(doc);
  EXPECT_FALSE(doc->tombstone);
  EXPECT_EQ(doc->upserted_at, 200u);
  EXPECT_EQ(Json(doc->attributes_json), Json(R"({"a":1,"c":5,"d":"new"})"));
  auto r = FetchOne(DocId::U64(1));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->outcome, FetchOutcome::kHit);
}

TEST_F(ApplyWriteTest, PatchOfAnIdWithoutACachedRowInvalidatesIt) {
  ASSERT_TRUE(inner_->Tombstone(kNs, DocId::U64(2), 50).ok());
  EXPECT_TRUE(
      Apply(Patches(200, {Row(DocId::U64(1), R"({"b":3})"), Row(DocId::U64(2), R"({"b":4})")})));
  for (uint64_t n : {1, 2}) {
    auto doc = Cached(DocId::U64(n));
    ASSERT_TRUE(doc) << n;  // never a fragment: a tombstone
    EXPECT_TRUE(doc->tombstone) << n;
    EXPECT_EQ(doc->upserted_at, 200u) << n;
  }
  upstream_.Put(DocId::U64(1), R"({"a":1,"b":3})", 200);
  auto r = FetchOne(DocId::U64(1));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->outcome, FetchOutcome::kMiss);
  EXPECT_EQ(upstream_.call_count(), 1u);
}

TEST_F(ApplyWriteTest, DeleteLeavesATombstoneThatBlocksAnOlderBackfill) {
  Seed(DocId::U64(5), R"({"v":"live"})", 100);
  EXPECT_TRUE(Apply(Deletes(200, {DocId::U64(5)})));
  auto doc = Cached(DocId::U64(5));
  ASSERT_TRUE(doc);
  EXPECT_TRUE(doc->tombstone);
  EXPECT_EQ(doc->upserted_at, 200u);

  // A lagging upstream still answers the row as of stamp 150.
  upstream_.Put(DocId::U64(5), R"({"v":"lagging"})", 150);
  const uint64_t backfills = BackfillsDone();
  auto r = FetchOne(DocId::U64(5));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->outcome, FetchOutcome::kMiss);
  ASSERT_TRUE(WaitFor([&] { return BackfillsDone() > backfills; }));
  doc = Cached(DocId::U64(5));
  ASSERT_TRUE(doc);
  EXPECT_TRUE(doc->tombstone);
  EXPECT_EQ(doc->upserted_at, 200u);
}

TEST_F(ApplyWriteTest, DeletesThenUpsertsThenPatchesInOneWrite) {
  Seed(DocId::U64(3), R"({"a":1})", 100);
  EXPECT_TRUE(Apply(Rows(200, {Row(DocId::U64(1), R"({"u":1})")},
                         {Row(DocId::U64(3), R"({"p":2})")}, {DocId::U64(2)})));
  EXPECT_TRUE(HasLiveRecord(DocId::U64(1)));
  EXPECT_TRUE(Cached(DocId::U64(2))->tombstone);
  EXPECT_EQ(Json(Cached(DocId::U64(3))->attributes_json), Json(R"({"a":1,"p":2})"));
}

TEST_F(ApplyWriteTest, LearnsTheNamespaceIdTypeFromItsIds) {
  EXPECT_FALSE(core_->KnownIdType("u"));
  EXPECT_TRUE(Apply(Upserts(100, {Row(DocId::U64(1), "{}")}), "u"));
  EXPECT_EQ(core_->KnownIdType("u"), tpuf::IdType::kU64);

  EXPECT_TRUE(Apply(Deletes(100, {DocId::String("abc")}), "s"));
  EXPECT_EQ(core_->KnownIdType("s"), tpuf::IdType::kString);

  auto uuid = DocId::Uuid("123e4567-e89b-12d3-a456-426614174000");
  ASSERT_TRUE(uuid.ok());
  EXPECT_TRUE(Apply(Patches(100, {Row(*uuid, R"({"a":1})")}), "q"));
  EXPECT_EQ(core_->KnownIdType("q"), tpuf::IdType::kUuid);

  EXPECT_TRUE(Apply(AffectedIds(100, {DocId::String("x")}, false), "a"));
  EXPECT_EQ(core_->KnownIdType("a"), tpuf::IdType::kString);

  // The first type learnt stays.
  EXPECT_TRUE(Apply(Upserts(200, {Row(DocId::String("y"), "{}")}), "u"));
  EXPECT_EQ(core_->KnownIdType("u"), tpuf::IdType::kU64);
  // A write without ids teaches nothing.
  EXPECT_TRUE(Apply(UnknownRows(100), "n"));
  EXPECT_FALSE(core_->KnownIdType("n"));
}

TEST_F(ApplyWriteTest, ARowOfUnknownFormIsInvalidatedNotMirrored) {
  // docs/design.md §4.2.8: a row whose upstream form is unknown holds no cached version; not the
  // older one either, and a patch is not merged.
  Seed(DocId::U64(1), R"({"when":"2026-05-30T00:00:00.000000000Z"})", 100);
  Seed(DocId::U64(3), R"({"a":1})", 100);
  RowEffect unknown = Row(DocId::U64(1), "");
  unknown.form_unknown = true;
  RowEffect unknown_patch = Row(DocId::U64(3), "");
  unknown_patch.form_unknown = true;
  EXPECT_TRUE(Apply(Rows(200, {unknown, Row(DocId::U64(2), R"({"a":2})")}, {unknown_patch}, {})));
  for (uint64_t n : {1, 3}) {
    auto doc = Cached(DocId::U64(n));
    ASSERT_TRUE(doc) << n;
    EXPECT_TRUE(doc->tombstone) << n;
    EXPECT_EQ(doc->upserted_at, 200u) << n;  // blocks the older versions a backfill may hold
  }
  EXPECT_TRUE(HasLiveRecord(DocId::U64(2)));
  EXPECT_EQ(core_->pending_invalidations(), 0u);
  // A read repairs the id with the upstream's own bytes.
  upstream_.Put(DocId::U64(1), R"({"when":"2026-05-30T00:00:00.000000000Z"})", 200);
  auto r = FetchOne(DocId::U64(1));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->outcome, FetchOutcome::kMiss);
}

TEST_F(ApplyWriteTest, APatchMergeKeepsTheBytesOfTheRestOfTheRow) {
  // Floats Boost.JSON 1.81 alone reads one ulp off, and a removal amid the attributes: the merged
  // row is the cached row with the patch applied, every other byte as it was.
  const DocId id = DocId::U64(1);
  Seed(id, R"({"f":0.11935319286735585,"x":1,"g":[1.6266288757324219],"h":"2026"})", 100);
  EXPECT_TRUE(Apply(Patches(200, {Row(id, R"({"x":null,"g":[0.5],"n":1.0})")})));
  auto doc = Cached(id);
  ASSERT_TRUE(doc && !doc->tombstone);
  EXPECT_EQ(doc->attributes_json, R"({"f":0.11935319286735585,"g":[0.5],"h":"2026","n":1.0})");
}

TEST_F(ApplyWriteTest, LearnsAttributeTypesFromASchemaUntilTheNamespaceIsDeleted) {
  EXPECT_FALSE(core_->KnownAttributeTypes(kNs));
  EXPECT_EQ(core_->LearnSchema(kNs, R"({"id":{"type":"uuid"},"when":{"type":"datetime"}})"),
            tpuf::IdType::kUuid);
  EXPECT_EQ(core_->KnownIdType(kNs), tpuf::IdType::kUuid);
  auto first = core_->KnownAttributeTypes(kNs);
  ASSERT_TRUE(first);
  ASSERT_EQ(first->size(), 1u);
  EXPECT_EQ(first->at("when").kind, tpuf::AttributeType::Kind::kDatetime);
  // Learning again what is known changes nothing (the same map); a new attribute adds to it,
  // without touching the map handed out before.
  EXPECT_EQ(core_->LearnSchema(kNs, R"({"id":{"type":"uuid"},"when":"datetime"})"),
            tpuf::IdType::kUuid);
  EXPECT_EQ(core_->KnownAttributeTypes(kNs), first);
  core_->LearnSchema(kNs, R"({"id":"uuid","n":"int"})");
  auto second = core_->KnownAttributeTypes(kNs);
  ASSERT_EQ(second->size(), 2u);
  EXPECT_EQ(first->size(), 1u);
  // No id type declared: u64, Turbopuffer's default; an unreadable schema teaches no attribute.
  EXPECT_EQ(core_->LearnSchema(kOtherNs, "not json"), tpuf::IdType::kU64);
  EXPECT_FALSE(core_->KnownAttributeTypes(kOtherNs));

  Run(core_->NamespaceDeleted(kNs));
  EXPECT_FALSE(core_->KnownAttributeTypes(kNs));
  EXPECT_FALSE(core_->KnownIdType(kNs));
  EXPECT_EQ(core_->KnownIdType(kOtherNs), tpuf::IdType::kU64);
}

// ---- ApplyWrite: affected ids and unknown rows ----

TEST_F(ApplyWriteTest, AffectedIdsAreInvalidated) {
  Seed(DocId::U64(1), R"({"n":1})", 100);
  Seed(DocId::U64(2), R"({"n":2})", 100);
  Seed(DocId::U64(3), R"({"n":3})", 100);
  EXPECT_TRUE(Apply(AffectedIds(200, {DocId::U64(1), DocId::U64(2)}, false)));
  for (uint64_t n : {1, 2}) {
    auto doc = Cached(DocId::U64(n));
    ASSERT_TRUE(doc) << n;
    EXPECT_TRUE(doc->tombstone) << n;
    EXPECT_EQ(doc->upserted_at, 200u) << n;
  }
  EXPECT_TRUE(HasLiveRecord(DocId::U64(3)));
}

TEST_F(ApplyWriteTest, UntypedAffectedIdsInvalidateTheNamespace) {
  Seed(DocId::U64(1), R"({"n":1})", 100);
  Seed(DocId::U64(2), R"({"n":2})", 100);
  Seed(DocId::U64(2), R"({"n":2})", 100, kOtherNs);
  EXPECT_TRUE(Apply(AffectedIds(200, {DocId::U64(1)}, true)));
  EXPECT_FALSE(Cached(DocId::U64(2)));
  EXPECT_FALSE(HasLiveRecord(DocId::U64(1)));
  EXPECT_TRUE(HasLiveRecord(DocId::U64(2), kOtherNs));
  auto r = FetchOne(DocId::U64(2));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->outcome, FetchOutcome::kMiss);
  EXPECT_EQ(core_->pending_invalidations(), 0u);
}

TEST_F(ApplyWriteTest, UnknownRowsInvalidateTheNamespace) {
  Seed(DocId::U64(1), R"({"n":1})", 100);
  Seed(DocId::String("s"), R"({"n":2})", 100);
  Seed(DocId::U64(1), R"({"n":1})", 100, kOtherNs);
  ASSERT_TRUE(Run(core_->RecordWarmedThrough(kNs, 500)).ok());
  const uint64_t bumps = faults_->calls(CacheOp::kBumpEpoch);
  EXPECT_TRUE(Apply(UnknownRows(200)));
  EXPECT_EQ(faults_->calls(CacheOp::kBumpEpoch), bumps + 1);
  EXPECT_FALSE(Cached(DocId::U64(1)));
  EXPECT_FALSE(Cached(DocId::String("s")));
  EXPECT_TRUE(HasLiveRecord(DocId::U64(1), kOtherNs));
  std::optional<uint64_t> warmed;
  EXPECT_EQ(Run(core_->StateOf(kNs, &warmed)), CacheState::kCold);
  EXPECT_FALSE(warmed);
}

// ---- Pending invalidations ----

using PendingTest = CoherenceTest;

TEST_F(PendingTest, RefusedTombstoneIsPendingUntilRetried) {
  Seed(DocId::U64(1), R"({"v":"stale"})", 100);
  faults_->FailOp(CacheOp::kTombstone, Status::InvalidArgument("injected"));
  const uint64_t skipped = metrics_.GetCounter("layer_cache_mirrors_skipped_total", "").value();
  EXPECT_FALSE(Apply(Deletes(200, {DocId::U64(1)})));
  EXPECT_EQ(guard().breaker_state(), cache::BreakerState::kClosed);
  EXPECT_EQ(core_->pending_invalidations(), 1u);
  EXPECT_EQ(PendingGauge(), 1.0);
  EXPECT_EQ(metrics_.GetCounter("layer_cache_mirrors_skipped_total", "").value(), skipped + 1);
  EXPECT_TRUE(core_->BackfillBlocked(kNs, DocId::U64(1)));
  EXPECT_FALSE(core_->BackfillBlocked(kNs, DocId::U64(2)));
  EXPECT_FALSE(core_->BackfillBlocked(kOtherNs, DocId::U64(1)));

  // The stale row is never served, and the answer is not backfilled.
  upstream_.Put(DocId::U64(1), R"({"v":"recreated"})", 300);
  const uint64_t backfills = BackfillsDone();
  auto r = FetchOne(DocId::U64(1));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->outcome, FetchOutcome::kMissOnError);
  ASSERT_TRUE(r->row);
  EXPECT_EQ(Json(r->row->attributes_json), Json(R"({"v":"recreated"})"));
  EXPECT_EQ(BackfillsDone(), backfills);
  EXPECT_EQ(Cached(DocId::U64(1))->upserted_at, 100u);

  // A retry while the cache still refuses keeps it.
  RetryPending();
  EXPECT_EQ(core_->pending_invalidations(), 1u);

  faults_->ClearFailures();
  RetryPending();
  EXPECT_EQ(core_->pending_invalidations(), 0u);
  EXPECT_EQ(PendingGauge(), 0.0);
  EXPECT_FALSE(core_->BackfillBlocked(kNs, DocId::U64(1)));
  auto doc = Cached(DocId::U64(1));
  ASSERT_TRUE(doc);
  EXPECT_TRUE(doc->tombstone);
  EXPECT_EQ(doc->upserted_at, 200u);

  auto clean = FetchOne(DocId::U64(1));
  ASSERT_TRUE(clean.ok());
  EXPECT_EQ(clean->outcome, FetchOutcome::kMiss);
  ASSERT_TRUE(WaitCached(DocId::U64(1)));
  EXPECT_EQ(Cached(DocId::U64(1))->upserted_at, 300u);
}

TEST_F(PendingTest, FailedTombstoneOpensTheBreakerAndTheRestGoesStraightToPending) {
  Seed(DocId::U64(1), R"({"v":"stale"})", 100);
  faults_->FailOp(CacheOp::kTombstone, Status::IoError("injected"));
  const uint64_t tombstones = faults_->calls(CacheOp::kTombstone);
  EXPECT_FALSE(Apply(Deletes(200, {DocId::U64(1), DocId::U64(2), DocId::U64(3)})));
  EXPECT_EQ(faults_->calls(CacheOp::kTombstone), tombstones + 1);
  EXPECT_EQ(guard().breaker_state(), cache::BreakerState::kOpen);
  EXPECT_EQ(core_->pending_invalidations(), 3u);
  for (uint64_t n : {1, 2, 3}) EXPECT_TRUE(core_->BackfillBlocked(kNs, DocId::U64(n))) << n;

  upstream_.Put(DocId::U64(1), R"({"v":"upstream"})", 300);
  auto r = FetchOne(DocId::U64(1));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->outcome, FetchOutcome::kMissOnError);

  // While the breaker is open a retry cannot reach the cache.
  RetryPending();
  EXPECT_EQ(core_->pending_invalidations(), 3u);

  Heal();
  RetryPending();
  EXPECT_EQ(core_->pending_invalidations(), 0u);
  for (uint64_t n : {1, 2, 3}) {
    auto doc = Cached(DocId::U64(n));
    ASSERT_TRUE(doc) << n;
    EXPECT_TRUE(doc->tombstone) << n;
    EXPECT_EQ(doc->upserted_at, 200u) << n;
  }
  upstream_.Remove(DocId::U64(1));
  auto clean = FetchOne(DocId::U64(1));
  ASSERT_TRUE(clean.ok());
  EXPECT_EQ(clean->outcome, FetchOutcome::kMiss);
  EXPECT_FALSE(clean->row);
}

TEST_F(PendingTest, AfterOneRefusalTheRestOfTheWriteGoesStraightToPending) {
  Seed(DocId::U64(4), R"({"a":1})", 100);
  faults_->FailOp(CacheOp::kTombstone, Status::InvalidArgument("injected"));
  const uint64_t tombstones = faults_->calls(CacheOp::kTombstone);
  const uint64_t puts = faults_->calls(CacheOp::kPutIfNewerBatch);
  const uint64_t reads = faults_->calls(CacheOp::kMultiGet);
  EXPECT_FALSE(Apply(Rows(200, {Row(DocId::U64(3), R"({"u":1})")},
                          {Row(DocId::U64(4), R"({"p":1})")}, {DocId::U64(1), DocId::U64(2)})));
  EXPECT_EQ(guard().breaker_state(), cache::BreakerState::kClosed);
  EXPECT_EQ(faults_->calls(CacheOp::kTombstone), tombstones + 1);
  EXPECT_EQ(faults_->calls(CacheOp::kPutIfNewerBatch), puts);
  EXPECT_EQ(faults_->calls(CacheOp::kMultiGet), reads);
  EXPECT_EQ(core_->pending_invalidations(), 4u);
  for (uint64_t n : {1, 2, 3, 4}) EXPECT_TRUE(core_->BackfillBlocked(kNs, DocId::U64(n))) << n;
}

TEST_F(PendingTest, RefusedUpsertMirrorIsPendingAndTheStaleRowIsNotServed) {
  Seed(DocId::U64(1), R"({"v":"stale"})", 100);
  faults_->FailOp(CacheOp::kPutIfNewerBatch, Status::InvalidArgument("injected"));
  EXPECT_FALSE(Apply(Upserts(200, {Row(DocId::U64(1), R"({"v":"new"})")})));
  EXPECT_EQ(core_->pending_invalidations(), 1u);
  upstream_.Put(DocId::U64(1), R"({"v":"new"})", 200);
  auto r = FetchOne(DocId::U64(1));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->outcome, FetchOutcome::kMissOnError);
  EXPECT_EQ(Json(r->row->attributes_json), Json(R"({"v":"new"})"));

  faults_->ClearFailures();
  RetryPending();
  EXPECT_EQ(core_->pending_invalidations(), 0u);
  EXPECT_TRUE(Cached(DocId::U64(1))->tombstone);
}

TEST_F(PendingTest, RefusedPatchReadIsPending) {
  Seed(DocId::U64(1), R"({"a":1})", 100);
  faults_->FailOp(CacheOp::kMultiGet, Status::InvalidArgument("injected"));
  EXPECT_FALSE(Apply(Patches(200, {Row(DocId::U64(1), R"({"a":2})")})));
  EXPECT_EQ(core_->pending_invalidations(), 1u);
  EXPECT_TRUE(core_->BackfillBlocked(kNs, DocId::U64(1)));
  faults_->ClearFailures();
  RetryPending();
  EXPECT_EQ(core_->pending_invalidations(), 0u);
  EXPECT_TRUE(Cached(DocId::U64(1))->tombstone);
}

TEST_F(PendingTest, FetchManyDoesNotServeAPendingId) {
  Seed(DocId::U64(1), R"({"v":"stale"})", 100);
  Seed(DocId::U64(2), R"({"n":2})", 100);
  faults_->FailOp(CacheOp::kTombstone, Status::InvalidArgument("injected"));
  EXPECT_FALSE(Apply(Deletes(200, {DocId::U64(1)})));
  faults_->ClearFailures();
  upstream_.Put(DocId::U64(1), R"({"v":"upstream"})", 300);
  const uint64_t backfills = BackfillsDone();
  auto r = FetchMany({DocId::U64(1), DocId::U64(2)});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->outcome, FetchOutcome::kMissOnError);
  ASSERT_EQ(upstream_.call_count(), 1u);
  EXPECT_EQ(Texts(upstream_.calls()[0]), std::vector<std::string>{"1"});
  EXPECT_EQ(Json(r->rows.at(IdKey(DocId::U64(1))).attributes_json), Json(R"({"v":"upstream"})"));
  EXPECT_EQ(BackfillsDone(), backfills);
  EXPECT_EQ(Cached(DocId::U64(1))->upserted_at, 100u);
}

TEST_F(PendingTest, FetchManyOfAPendingIdWithoutARecordIsMissOnError) {
  faults_->FailOp(CacheOp::kTombstone, Status::InvalidArgument("injected"));
  EXPECT_FALSE(Apply(Deletes(200, {DocId::U64(1)})));
  faults_->ClearFailures();
  Seed(DocId::U64(2), R"({"n":2})", 100);
  upstream_.Put(DocId::U64(1), R"({"v":"upstream"})", 300);
  const uint64_t backfills = BackfillsDone();
  auto r = FetchMany({DocId::U64(1), DocId::U64(2)});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->outcome, FetchOutcome::kMissOnError);
  EXPECT_EQ(r->rows.size(), 2u);
  EXPECT_EQ(BackfillsDone(), backfills);
  EXPECT_FALSE(Cached(DocId::U64(1)));
}

TEST_F(PendingTest, BackfillSkipsAnIdThatBecamePendingDuringTheRead) {
  upstream_.Put(DocId::U64(1), R"({"v":"old"})", 100);
  upstream_.Hold();
  faults_->FailOp(CacheOp::kTombstone, Status::InvalidArgument("injected"));
  const std::string ns = kNs;
  const DocId id = DocId::U64(1);
  std::optional<Result<FetchOneResult>> fetched;
  std::optional<bool> applied;
  asio::co_spawn(
      io_, [&]() -> Task<void> { fetched.emplace(co_await core_->FetchOne(ns, id, reader_)); },
      asio::detached);
  asio::co_spawn(
      io_,
      [&]() -> Task<void> {
        // The delete lands while the fetch's upstream read is in flight, and the cache refuses it.
        if (co_await WaitOnLoop([&] { return upstream_.blocked() == 1; })) {
          WriteOutcome del = Deletes(200, {id});
          applied = co_await core_->ApplyWrite(ns, std::move(del));
        }
        upstream_.Release();
      },
      asio::detached);
  io_.restart();
  io_.run();

  EXPECT_EQ(applied, false);
  ASSERT_TRUE(fetched && fetched->ok());
  EXPECT_EQ((*fetched)->outcome, FetchOutcome::kMiss);
  EXPECT_EQ(core_->pending_invalidations(), 1u);
  // Run() drained the io_context: the backfill has run, and wrote nothing.
  EXPECT_FALSE(Cached(id));
}

TEST_F(PendingTest, FailedEpochBumpHoldsTheWholeNamespace) {
  Seed(DocId::U64(1), R"({"v":"stale"})", 100);
  Seed(DocId::U64(1), R"({"v":"other"})", 100, kOtherNs);
  faults_->FailOp(CacheOp::kBumpEpoch, Status::InvalidArgument("injected"));
  EXPECT_FALSE(Apply(UnknownRows(200)));
  EXPECT_EQ(core_->pending_invalidations(), 1u);
  EXPECT_TRUE(core_->BackfillBlocked(kNs, DocId::U64(1)));
  EXPECT_TRUE(core_->BackfillBlocked(kNs, DocId::String("any")));
  EXPECT_FALSE(core_->BackfillBlocked(kOtherNs, DocId::U64(1)));

  upstream_.Put(DocId::U64(1), R"({"v":"upstream"})", 300);
  for (const DocId& id : {DocId::U64(1), DocId::U64(99), DocId::String("x")}) {
    auto r = FetchOne(id);
    ASSERT_TRUE(r.ok()) << id.ToText();
    EXPECT_EQ(r->outcome, FetchOutcome::kMissOnError) << id.ToText();
  }
  auto one = FetchOne(DocId::U64(1));
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(Json(one->row->attributes_json), Json(R"({"v":"upstream"})"));
  auto other = FetchOne(DocId::U64(1), kOtherNs);
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(other->outcome, FetchOutcome::kHit);

  RetryPending();
  EXPECT_EQ(core_->pending_invalidations(), 1u);

  faults_->ClearFailures();
  RetryPending();
  EXPECT_EQ(core_->pending_invalidations(), 0u);
  EXPECT_FALSE(Cached(DocId::U64(1)));
  auto clean = FetchOne(DocId::U64(1));
  ASSERT_TRUE(clean.ok());
  EXPECT_EQ(clean->outcome, FetchOutcome::kMiss);
}

TEST_F(PendingTest, FailedEpochBumpOfUntypedAffectedIdsIsPending) {
  faults_->FailOp(CacheOp::kBumpEpoch, Status::InvalidArgument("injected"));
  EXPECT_FALSE(Apply(AffectedIds(200, {DocId::U64(1)}, true)));
  EXPECT_EQ(core_->pending_invalidations(), 1u);
  EXPECT_TRUE(core_->BackfillBlocked(kNs, DocId::U64(7)));
  faults_->ClearFailures();
  RetryPending();
  EXPECT_EQ(core_->pending_invalidations(), 0u);
}

TEST_F(PendingTest, NamespaceRetrySettlesItsIdEntries) {
  faults_->FailOp(CacheOp::kTombstone, Status::InvalidArgument("injected"));
  EXPECT_FALSE(Apply(Deletes(200, {DocId::U64(1), DocId::U64(2)})));
  EXPECT_FALSE(Apply(Deletes(200, {DocId::U64(1)}), kOtherNs));
  faults_->FailOp(CacheOp::kBumpEpoch, Status::InvalidArgument("injected"));
  EXPECT_FALSE(Apply(UnknownRows(300)));
  EXPECT_EQ(core_->pending_invalidations(), 4u);

  // The bump goes through and settles the namespace's id entries; tombstones are still refused.
  faults_->ClearFailures();
  faults_->FailOp(CacheOp::kTombstone, Status::InvalidArgument("injected"));
  RetryPending();
  EXPECT_FALSE(core_->BackfillBlocked(kNs, DocId::U64(1)));
  EXPECT_FALSE(core_->BackfillBlocked(kNs, DocId::U64(2)));
  EXPECT_TRUE(core_->BackfillBlocked(kOtherNs, DocId::U64(1)));
  EXPECT_EQ(core_->pending_invalidations(), 1u);

  faults_->ClearFailures();
  RetryPending();
  EXPECT_EQ(core_->pending_invalidations(), 0u);
  auto doc = Cached(DocId::U64(1), kOtherNs);
  ASSERT_TRUE(doc);
  EXPECT_TRUE(doc->tombstone);
}

// ---- Namespace delete ----

using NamespaceDeletedTest = CoherenceTest;

TEST_F(NamespaceDeletedTest, ForgetsTheIdTypeAndDropsTheRecords) {
  EXPECT_TRUE(Apply(Upserts(100, {Row(DocId::U64(1), R"({"n":1})")})));
  ASSERT_TRUE(Run(core_->RecordWarmedThrough(kNs, 500)).ok());
  Seed(DocId::U64(1), R"({"n":1})", 100, kOtherNs);
  core_->LearnIdType(kOtherNs, tpuf::IdType::kU64);
  ASSERT_EQ(core_->KnownIdType(kNs), tpuf::IdType::kU64);

  Run(core_->NamespaceDeleted(kNs));
  EXPECT_FALSE(core_->KnownIdType(kNs));
  EXPECT_FALSE(Cached(DocId::U64(1)));
  std::optional<uint64_t> warmed;
  EXPECT_EQ(Run(core_->StateOf(kNs, &warmed)), CacheState::kCold);
  EXPECT_FALSE(warmed);
  auto r = FetchOne(DocId::U64(1));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->outcome, FetchOutcome::kMiss);
  EXPECT_EQ(core_->KnownIdType(kOtherNs), tpuf::IdType::kU64);
  EXPECT_TRUE(HasLiveRecord(DocId::U64(1), kOtherNs));
  EXPECT_EQ(core_->pending_invalidations(), 0u);
}

TEST_F(NamespaceDeletedTest, FailedBumpIsPending) {
  Seed(DocId::U64(1), R"({"n":1})", 100);
  faults_->FailOp(CacheOp::kBumpEpoch, Status::IoError("injected"));
  Run(core_->NamespaceDeleted(kNs));
  EXPECT_EQ(core_->pending_invalidations(), 1u);
  auto r = FetchOne(DocId::U64(1));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->outcome, FetchOutcome::kMissOnError);
  Heal();
  RetryPending();
  EXPECT_EQ(core_->pending_invalidations(), 0u);
  EXPECT_FALSE(Cached(DocId::U64(1)));
}

TEST_F(NamespaceDeletedTest, ARowReadBeforeTheDeleteNeverLandsAfterIt) {
  const DocId id = DocId::U64(7);
  upstream_.Put(id, R"({"n":7})", 100);
  upstream_.Hold();
  std::optional<Result<FetchOneResult>> fetched;
  auto fetch = [&]() -> Task<void> { fetched.emplace(co_await core_->FetchOne(kNs, id, reader_)); };
  asio::co_spawn(io_, fetch, asio::detached);
  asio::co_spawn(
      io_,
      [&]() -> Task<void> {
        // The fetch's read began before the delete; its answer (and backfill) comes after.
        co_await WaitOnLoop([&] { return upstream_.blocked() == 1; });
        co_await core_->NamespaceDeleted(kNs);
        upstream_.Release();
      },
      asio::detached);
  io_.restart();
  io_.run();  // runs the detached backfill to its end too
  ASSERT_TRUE(fetched && fetched->ok());
  EXPECT_TRUE((*fetched)->row);  // the caller still gets what it read
  EXPECT_FALSE(HasLiveRecord(id)) << "a row read before the delete was cached after it";
  EXPECT_EQ(BackfillsDone(), 0u);
}

// A warm page of one row per id, each {"n":<id>} with stamp 100.
std::vector<std::pair<DocId, CachedDoc>> WarmPage(const std::vector<DocId>& ids) {
  std::vector<std::pair<DocId, CachedDoc>> page;
  for (const DocId& id : ids) {
    CachedDoc doc;
    doc.attributes_json = R"({"n":)" + id.ToText() + "}";
    doc.upserted_at = 100;
    page.emplace_back(id, std::move(doc));
  }
  return page;
}

TEST_F(NamespaceDeletedTest, AWarmPageReadBeforeTheDeleteIsRefused) {
  auto mark = Run(core_->MarkWarmRead(kNs));
  Run(core_->NamespaceDeleted(kNs));
  auto put = Run(core_->PutWarmPage(kNs, WarmPage({DocId::U64(1)}), mark));
  ASSERT_FALSE(put.ok());
  EXPECT_EQ(put.status().code(), StatusCode::kAborted);
  EXPECT_FALSE(HasLiveRecord(DocId::U64(1)));
  // A page read after the delete is written.
  put = Run(core_->PutWarmPage(kNs, WarmPage({DocId::U64(1)}), Run(core_->MarkWarmRead(kNs))));
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  EXPECT_TRUE(HasLiveRecord(DocId::U64(1)));
}

// ---- Warm pages and writes in flight (docs/design.md §5.4) ----

using WarmPageTest = CoherenceTest;

TEST_F(WarmPageTest, RowsOfIdsAWriteMayHaveChangedDuringTheReadAreLeftOut) {
  const DocId racing = DocId::U64(1), quiet = DocId::U64(2), later = DocId::U64(3);
  const DocId settled = DocId::U64(4);
  auto done = core_->BeginWrite(kNs, {settled});
  done.reset();  // begun and ended before the read: its effect is in what the read sees
  auto in_flight = core_->BeginWrite(kNs, {racing});
  auto mark = Run(core_->MarkWarmRead(kNs));
  // The write in flight when the read began ends before the put: it may have been applied
  // before or after what the read saw.
  in_flight.reset();
  // A write begun after the read began: the same.
  auto after = core_->BeginWrite(kNs, {later});
  auto put = Run(core_->PutWarmPage(kNs, WarmPage({racing, quiet, later, settled}), mark));
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  EXPECT_EQ(put->size(), 2u);
  EXPECT_FALSE(Cached(racing));
  EXPECT_FALSE(Cached(later));
  EXPECT_TRUE(HasLiveRecord(quiet));
  EXPECT_TRUE(HasLiveRecord(settled));
  after.reset();
  // A page read once those writes ended is written whole.
  put = Run(core_->PutWarmPage(kNs, WarmPage({racing, later}), Run(core_->MarkWarmRead(kNs))));
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  EXPECT_TRUE(HasLiveRecord(racing));
  EXPECT_TRUE(HasLiveRecord(later));
}

TEST_F(WarmPageTest, AWholeNamespaceWriteDuringTheReadLeavesThePageOut) {
  const DocId id = DocId::U64(1), other_ns_id = DocId::U64(2);
  auto by_filter = core_->BeginWrite(kNs, {}, /*whole_namespace=*/true);
  auto mark = Run(core_->MarkWarmRead(kNs));
  auto other_mark = Run(core_->MarkWarmRead(kOtherNs));
  by_filter.reset();
  auto put = Run(core_->PutWarmPage(kNs, WarmPage({id}), mark));
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  EXPECT_TRUE(put->empty());
  EXPECT_FALSE(Cached(id));
  // Another namespace's page is not held back by it.
  put = Run(core_->PutWarmPage(kOtherNs, WarmPage({other_ns_id}), other_mark));
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  EXPECT_TRUE(HasLiveRecord(other_ns_id, kOtherNs));
}

TEST_F(WarmPageTest, TheRowOfOneOfTwoRacingWritesReadBetweenThemIsNotCached) {
  // Two writes of an id race; the upstream applies the second (newer stamp) first, a warm page
  // reads its row, then the first is applied: the upstream ends with the first's row, and the
  // cache must not hold the second's (whose stamp ties its own tombstone).
  const DocId id = DocId::U64(1);
  auto first = core_->BeginWrite(kNs, {id});
  auto second = core_->BeginWrite(kNs, {id});
  EXPECT_TRUE(Run(core_->ApplyWrite(kNs, Upserts(101, {Row(id, R"({"v":2})")}), second.get())));
  second.reset();
  auto mark = Run(core_->MarkWarmRead(kNs));  // reads {"v":2}, stamp 101
  std::vector<std::pair<DocId, CachedDoc>> page;
  CachedDoc row;
  row.attributes_json = R"({"v":2})";
  row.upserted_at = 101;
  page.emplace_back(id, row);
  auto put = Run(core_->PutWarmPage(kNs, std::move(page), mark));
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  EXPECT_TRUE(Run(core_->ApplyWrite(kNs, Upserts(100, {Row(id, R"({"v":1})")}), first.get())));
  first.reset();
  EXPECT_FALSE(HasLiveRecord(id));
}

}  // namespace
}  // namespace layer::coherence::testing
