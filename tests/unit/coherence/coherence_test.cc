// CacheCoherence reads, against the embedded RocksDB cache (behind a FaultInjectingCache and a
// CacheGuard) and a scripted upstream RowReader: fetch outcomes (hit, miss, partial,
// miss-on-error), read-through and backfill, the coalescing of concurrent misses, the cache
// state of a namespace and the reactive warm after a reconnect (docs/design.md §4.1, §4.5,
// §4.6).
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

// ---- FetchOne ----

using FetchOneTest = CoherenceTest;

TEST_F(FetchOneTest, CachedFullRowIsAHitWithoutReadingUpstream) {
  Seed(DocId::U64(1), R"({"a":1})", 100);
  const uint64_t hits = Lookups("hit");
  auto r = FetchOne(DocId::U64(1));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->outcome, FetchOutcome::kHit);
  ASSERT_TRUE(r->row);
  EXPECT_EQ(r->row->id_json, "1");
  EXPECT_EQ(Json(r->row->attributes_json), Json(R"({"a":1})"));
  EXPECT_EQ(r->row->stamp, 100u);
  EXPECT_EQ(upstream_.call_count(), 0u);
  EXPECT_EQ(Lookups("hit"), hits + 1);
}

TEST_F(FetchOneTest, HitThroughTheGuardedGetWhenTryGetDeclines) {
  Seed(DocId::String("doc-a"), R"({"b":"x"})", 7);
  faults_->SetTryGetWouldBlock(true);
  const uint64_t gets = faults_->calls(CacheOp::kGet);
  auto r = FetchOne(DocId::String("doc-a"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->outcome, FetchOutcome::kHit);
  ASSERT_TRUE(r->row);
  EXPECT_EQ(r->row->id_json, R"("doc-a")");
  EXPECT_EQ(Json(r->row->attributes_json), Json(R"({"b":"x"})"));
  EXPECT_EQ(faults_->calls(CacheOp::kGet), gets + 1);
  EXPECT_EQ(upstream_.call_count(), 0u);
}

TEST_F(FetchOneTest, MissReadsUpstreamOnceAndBackfills) {
  upstream_.Put(DocId::U64(7), R"({"n":7})", 100);
  const uint64_t misses = Lookups("miss");
  auto r = FetchOne(DocId::U64(7));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->outcome, FetchOutcome::kMiss);
  ASSERT_TRUE(r->row);
  EXPECT_EQ(Json(r->row->attributes_json), Json(R"({"n":7})"));
  EXPECT_EQ(r->row->stamp, 100u);
  ASSERT_EQ(upstream_.call_count(), 1u);
  EXPECT_EQ(Texts(upstream_.calls()[0]), std::vector<std::string>{"7"});
  EXPECT_EQ(Lookups("miss"), misses + 1);

  ASSERT_TRUE(WaitCached(DocId::U64(7)));
  auto doc = Cached(DocId::U64(7));
  EXPECT_EQ(Json(doc->attributes_json), Json(R"({"n":7})"));
  EXPECT_EQ(doc->upserted_at, 100u);

  auto again = FetchOne(DocId::U64(7));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->outcome, FetchOutcome::kHit);
  EXPECT_EQ(upstream_.call_count(), 1u);
}

TEST_F(FetchOneTest, TombstoneReadsAsAMiss) {
  ASSERT_TRUE(inner_->Tombstone(kNs, DocId::U64(3), 100).ok());
  upstream_.Put(DocId::U64(3), R"({"v":"recreated"})", 200);
  auto r = FetchOne(DocId::U64(3));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->outcome, FetchOutcome::kMiss);
  ASSERT_TRUE(r->row);
  EXPECT_EQ(Json(r->row->attributes_json), Json(R"({"v":"recreated"})"));
  EXPECT_EQ(upstream_.call_count(), 1u);
  // The upstream row is newer than the tombstone, so the backfill replaces it.
  ASSERT_TRUE(WaitCached(DocId::U64(3)));
  EXPECT_EQ(Cached(DocId::U64(3))->upserted_at, 200u);
}

TEST_F(FetchOneTest, RefusedCacheReadIsMissOnErrorAndNotBackfilled) {
  // InvalidArgument keeps the breaker closed, so a wrong backfill would reach the cache.
  faults_->FailOp(CacheOp::kGet, Status::InvalidArgument("injected"));
  upstream_.Put(DocId::U64(4), R"({"n":4})", 100);
  const uint64_t errors = Lookups("error");
  const uint64_t backfills = BackfillsDone();
  auto r = FetchOne(DocId::U64(4));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->outcome, FetchOutcome::kMissOnError);
  ASSERT_TRUE(r->row);
  EXPECT_EQ(Json(r->row->attributes_json), Json(R"({"n":4})"));
  EXPECT_EQ(upstream_.call_count(), 1u);
  EXPECT_EQ(Lookups("error"), errors + 1);
  EXPECT_EQ(guard().breaker_state(), cache::BreakerState::kClosed);
  // Run() drained the io_context, so a detached backfill would have finished by now.
  EXPECT_EQ(BackfillsDone(), backfills);
  EXPECT_FALSE(Cached(DocId::U64(4)));
}

TEST_F(FetchOneTest, FailedCacheReadIsMissOnErrorAndNotBackfilled) {
  Seed(DocId::U64(5), R"({"v":"cached"})", 100);
  faults_->FailOp(CacheOp::kGet, Status::IoError("injected"));
  upstream_.Put(DocId::U64(5), R"({"v":"upstream"})", 200);
  const uint64_t backfills = BackfillsDone();
  auto r = FetchOne(DocId::U64(5));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->outcome, FetchOutcome::kMissOnError);
  ASSERT_TRUE(r->row);
  EXPECT_EQ(Json(r->row->attributes_json), Json(R"({"v":"upstream"})"));
  EXPECT_EQ(upstream_.call_count(), 1u);
  EXPECT_EQ(BackfillsDone(), backfills);
  Heal();
  EXPECT_EQ(Cached(DocId::U64(5))->upserted_at, 100u);
}

TEST_F(FetchOneTest, CacheDownIsMissOnErrorAndNotBackfilled) {
  faults_->FailAll(Status::IoError("injected"));
  upstream_.Put(DocId::U64(6), R"({"n":6})", 100);
  const uint64_t backfills = BackfillsDone();
  for (int i = 0; i < 2; ++i) {  // the second one meets the open breaker
    auto r = FetchOne(DocId::U64(6));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->outcome, FetchOutcome::kMissOnError);
    ASSERT_TRUE(r->row);
  }
  EXPECT_EQ(upstream_.call_count(), 2u);
  EXPECT_EQ(BackfillsDone(), backfills);
  Heal();
  EXPECT_FALSE(Cached(DocId::U64(6)));
}

TEST_F(FetchOneTest, ReaderFailureIsAnError) {
  upstream_.Fail(Status::Unavailable("upstream down"));
  const uint64_t backfills = BackfillsDone();
  auto r = FetchOne(DocId::U64(8));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(r.status().message(), "upstream down");
  EXPECT_EQ(upstream_.call_count(), 1u);
  EXPECT_EQ(BackfillsDone(), backfills);
}

TEST_F(FetchOneTest, DocumentAbsentUpstreamIsNoRow) {
  const uint64_t backfills = BackfillsDone();
  auto r = FetchOne(DocId::U64(9));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->outcome, FetchOutcome::kMiss);
  EXPECT_FALSE(r->row);
  EXPECT_EQ(BackfillsDone(), backfills);
  EXPECT_FALSE(Cached(DocId::U64(9)));
  // Nothing is remembered: the next fetch asks again.
  auto again = FetchOne(DocId::U64(9));
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->row);
  EXPECT_EQ(upstream_.call_count(), 2u);
}

TEST_F(FetchOneTest, IdsOfDifferentTypesDoNotCollide) {
  Seed(DocId::U64(7), R"({"t":"u64"})", 100);
  upstream_.Put(DocId::String("7"), R"({"t":"string"})", 100);
  auto r = FetchOne(DocId::String("7"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->outcome, FetchOutcome::kMiss);
  ASSERT_TRUE(r->row);
  EXPECT_EQ(r->row->id_json, R"("7")");
  EXPECT_EQ(Json(r->row->attributes_json), Json(R"({"t":"string"})"));
}

// ---- Coalescing ----

// Concurrent single fetches of one id against a held upstream.
class CoalescingTest : public CoherenceTest {
 protected:
  struct Concurrent {
    std::vector<std::optional<Result<FetchOneResult>>> results;
    bool all_waiting = false;  // every fetch waited on the one held read before it was released
  };

  // Starts `n` fetches of `id` on the loop and releases the held upstream read once all of them
  // wait on it, then runs the loop to its end.
  Concurrent FetchConcurrently(const DocId& id, int n) {
    Concurrent out;
    out.results.resize(n);
    const std::string ns = kNs;
    const uint64_t misses = Lookups("miss");
    for (int i = 0; i < n; ++i) {
      asio::co_spawn(
          io_,
          [&, i]() -> Task<void> {
            out.results[i].emplace(co_await core_->FetchOne(ns, id, reader_));
          },
          asio::detached);
    }
    // Every fetch counts its lookup and joins the flight in one step on this single-threaded
    // io_context, so once all n are counted and the leader's read is held, all n wait on it.
    asio::co_spawn(
        io_,
        [&]() -> Task<void> {
          out.all_waiting = co_await WaitOnLoop([&] {
            return upstream_.blocked() == 1 &&
                   Lookups("miss") - misses == static_cast<uint64_t>(n);
          });
          upstream_.Release();
        },
        asio::detached);
    io_.restart();
    io_.run();
    return out;
  }
};

TEST_F(CoalescingTest, ConcurrentMissesOfOneIdShareOneRead) {
  constexpr int kN = 8;
  const DocId id = DocId::U64(42);
  upstream_.Put(id, R"({"n":42})", 100);
  upstream_.Hold();
  auto [results, all_waiting] = FetchConcurrently(id, kN);

  EXPECT_TRUE(all_waiting);
  EXPECT_EQ(upstream_.call_count(), 1u);
  for (int i = 0; i < kN; ++i) {
    ASSERT_TRUE(results[i]) << i;
    ASSERT_TRUE(results[i]->ok()) << i << ": " << results[i]->status().ToString();
    EXPECT_EQ((*results[i])->outcome, FetchOutcome::kMiss) << i;
    ASSERT_TRUE((*results[i])->row) << i;
    EXPECT_EQ(Json((*results[i])->row->attributes_json), Json(R"({"n":42})")) << i;
  }
  EXPECT_TRUE(WaitCached(id));
}

TEST_F(CoalescingTest, AFetchAfterAnAcknowledgedWriteNeverJoinsAReadBegunBeforeIt) {
  const std::string ns = kNs;
  const DocId id = DocId::U64(44);
  upstream_.Put(id, R"({"v":1})", 100);
  upstream_.Hold();
  std::optional<Result<FetchOneResult>> before, after;
  auto fetch_before = [&]() -> Task<void> {
    before.emplace(co_await core_->FetchOne(ns, id, reader_));
  };
  auto fetch_after = [&]() -> Task<void> {
    after.emplace(co_await core_->FetchOne(ns, id, reader_));
  };
  WriteOutcome del = Deletes(200, {id});
  asio::co_spawn(io_, fetch_before, asio::detached);
  bool own_read = false;
  asio::co_spawn(
      io_,
      [&]() -> Task<void> {
        // The first fetch's read is in flight when a delete of the id is acknowledged...
        co_await WaitOnLoop([&] { return upstream_.blocked() == 1; });
        upstream_.Remove(id);
        (void)co_await core_->ApplyWrite(ns, std::move(del));
        // ...so a fetch that begins now reads for itself instead of joining that read.
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
}

TEST_F(CoalescingTest, BatchMissesJoinReadsInFlightAndReadTheRestTogether) {
  const std::string ns = kNs;
  const DocId a = DocId::U64(51), b = DocId::U64(52), c = DocId::U64(53);
  for (const DocId& id : {a, b, c}) upstream_.Put(id, R"({"n":5})", 100);
  upstream_.Hold();
  std::optional<Result<FetchOneResult>> single;
  std::optional<Result<FetchManyResult>> batch;
  auto fetch_single = [&]() -> Task<void> {
    single.emplace(co_await core_->FetchOne(ns, a, reader_));
  };
  const std::vector<DocId> all{a, b, c};
  auto fetch_batch = [&]() -> Task<void> {
    batch.emplace(co_await core_->FetchMany(ns, all, reader_));
  };
  asio::co_spawn(io_, fetch_single, asio::detached);
  bool both_reading = false;
  asio::co_spawn(
      io_,
      [&]() -> Task<void> {
        co_await WaitOnLoop([&] { return upstream_.blocked() == 1; });
        asio::co_spawn(io_, fetch_batch, asio::detached);
        // The batch reads b and c; for a it waits on the single fetch's read.
        both_reading = co_await WaitOnLoop([&] { return upstream_.blocked() == 2; });
        upstream_.Release();
      },
      asio::detached);
  io_.restart();
  io_.run();

  EXPECT_TRUE(both_reading);
  ASSERT_EQ(upstream_.call_count(), 2u);
  EXPECT_EQ(Texts(upstream_.calls()[0]), (std::vector<std::string>{"51"}));
  EXPECT_EQ(Texts(upstream_.calls()[1]), (std::vector<std::string>{"52", "53"}));
  ASSERT_TRUE(single && single->ok() && (*single)->row);
  ASSERT_TRUE(batch && batch->ok()) << (batch ? batch->status().ToString() : "");
  EXPECT_EQ((*batch)->rows.size(), 3u);
  EXPECT_EQ((*batch)->outcome, FetchOutcome::kMiss);
}

TEST_F(CoalescingTest, ConcurrentMissesShareTheReadFailure) {
  constexpr int kN = 4;
  upstream_.Fail(Status::Unavailable("upstream down"));
  upstream_.Hold();
  auto [results, all_waiting] = FetchConcurrently(DocId::U64(43), kN);

  EXPECT_TRUE(all_waiting);
  EXPECT_EQ(upstream_.call_count(), 1u);
  for (int i = 0; i < kN; ++i) {
    ASSERT_TRUE(results[i]) << i;
    ASSERT_FALSE(results[i]->ok()) << i;
    EXPECT_EQ(results[i]->status().code(), StatusCode::kUnavailable) << i;
  }
}

TEST_F(CoalescingTest, OnlyTheSameNamespaceAndIdAreCoalesced) {
  upstream_.Put(DocId::U64(1), R"({"n":1})", 100);
  upstream_.Put(DocId::U64(2), R"({"n":2})", 100);
  upstream_.Hold();
  const std::string ns = kNs;
  const std::string other = kOtherNs;
  const DocId one = DocId::U64(1);
  const DocId two = DocId::U64(2);
  std::vector<std::optional<Result<FetchOneResult>>> results(3);
  auto spawn = [&](int i, const std::string& n, const DocId& id) {
    asio::co_spawn(
        io_,
        [&, i]() -> Task<void> { results[i].emplace(co_await core_->FetchOne(n, id, reader_)); },
        asio::detached);
  };
  spawn(0, ns, one);
  spawn(1, ns, two);
  spawn(2, other, one);
  bool all_reading = false;
  asio::co_spawn(
      io_,
      [&]() -> Task<void> {
        all_reading = co_await WaitOnLoop([&] { return upstream_.blocked() == 3; });
        upstream_.Release();
      },
      asio::detached);
  io_.restart();
  io_.run();

  EXPECT_TRUE(all_reading);
  EXPECT_EQ(upstream_.call_count(), 3u);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(results[i] && results[i]->ok()) << i;
    ASSERT_TRUE((*results[i])->row) << i;
  }
  EXPECT_EQ(Json((*results[1])->row->attributes_json), Json(R"({"n":2})"));
}

// ---- Fetches while a write is in flight (docs/design.md §4.1.2) ----

using WriteInFlightTest = CoherenceTest;

TEST_F(WriteInFlightTest, AFetchOfAnIdBeingWrittenReadsUpstreamAndDoesNotBackfill) {
  const DocId id = DocId::U64(1), other = DocId::U64(2);
  Seed(id, R"({"v":1})", 100);
  Seed(other, R"({"v":1})", 100);
  auto ticket = core_->BeginWrite(kNs, {id});
  // The upstream has applied the write, whose answer has not arrived: a query would see it.
  upstream_.Put(id, R"({"v":2})", 200);
  const uint64_t backfills = BackfillsDone();
  auto r = FetchOne(id);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->outcome, FetchOutcome::kMissOnError);
  ASSERT_TRUE(r->row);
  EXPECT_EQ(Json(r->row->attributes_json), Json(R"({"v":2})"));
  EXPECT_EQ(upstream_.call_count(), 1u);
  EXPECT_EQ(BackfillsDone(), backfills);  // Run() drained the io_context
  EXPECT_EQ(Cached(id)->upserted_at, 100u);
  // Another id is served from the cache meanwhile, alone or in a batch.
  auto o = FetchOne(other);
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->outcome, FetchOutcome::kHit);
  auto both = FetchMany({id, other});
  ASSERT_TRUE(both.ok()) << both.status().ToString();
  EXPECT_EQ(both->outcome, FetchOutcome::kMissOnError);
  ASSERT_EQ(upstream_.call_count(), 2u);
  EXPECT_EQ(Texts(upstream_.calls()[1]), std::vector<std::string>{"1"});
  EXPECT_EQ(Json(both->rows.at(IdKey(id)).attributes_json), Json(R"({"v":2})"));
  EXPECT_EQ(BackfillsDone(), backfills);

  // Once the write is over, the cache answers again.
  ticket.reset();
  auto after = FetchOne(other);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->outcome, FetchOutcome::kHit);
  EXPECT_FALSE(core_->WriteInFlight(kNs, id));
}

TEST_F(WriteInFlightTest, AWholeNamespaceWriteInFlightCoversEveryIdOfItsNamespace) {
  const DocId id = DocId::U64(3);
  Seed(id, R"({"v":1})", 100);
  Seed(id, R"({"v":1})", 100, kOtherNs);
  auto ticket = core_->BeginWrite(kNs, {}, /*whole_namespace=*/true);  // a delete_by_filter
  upstream_.Remove(id);
  EXPECT_TRUE(core_->WriteInFlight(kNs, id));
  auto r = FetchOne(id);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->outcome, FetchOutcome::kMissOnError);
  EXPECT_FALSE(r->row) << "the cached row the write deleted was served";
  auto many = FetchMany({id, DocId::U64(4)});
  ASSERT_TRUE(many.ok());
  EXPECT_TRUE(many->rows.empty());
  // Another namespace is not covered.
  auto o = FetchOne(id, kOtherNs);
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->outcome, FetchOutcome::kHit);
  ticket.reset();
  EXPECT_FALSE(core_->WriteInFlight(kNs, id));
}

TEST_F(WriteInFlightTest, AWriteOfMoreThanTenThousandIdsCoversItsNamespaceOnly) {
  std::vector<DocId> ids;
  for (uint64_t i = 1; i <= 10001; ++i) ids.push_back(DocId::U64(i));
  const DocId unnamed = DocId::U64(20000);
  Seed(unnamed, R"({"v":1})", 100);
  Seed(unnamed, R"({"v":1})", 100, kOtherNs);
  upstream_.Put(unnamed, R"({"v":1})", 100);
  auto ticket = core_->BeginWrite(kNs, ids);
  // Its ids are not registered one by one: every id of the namespace counts as being written.
  EXPECT_TRUE(core_->WriteInFlight(kNs, unnamed));
  auto r = FetchOne(unnamed);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->outcome, FetchOutcome::kMissOnError);
  // Another namespace is served from the cache meanwhile.
  EXPECT_FALSE(core_->WriteInFlight(kOtherNs, DocId::U64(1)));
  auto o = FetchOne(unnamed, kOtherNs);
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->outcome, FetchOutcome::kHit);
  ticket.reset();
  EXPECT_FALSE(core_->WriteInFlight(kNs, unnamed));
}

TEST_F(WriteInFlightTest, AFetchDuringAWriteNeverJoinsAReadBegunBeforeIt) {
  const std::string ns = kNs;
  const DocId id = DocId::U64(5);
  upstream_.Put(id, R"({"v":1})", 100);
  upstream_.Hold();
  std::optional<Result<FetchOneResult>> before, during;
  auto fetch_before = [&]() -> Task<void> {
    before.emplace(co_await core_->FetchOne(ns, id, reader_));
  };
  auto fetch_during = [&]() -> Task<void> {
    during.emplace(co_await core_->FetchOne(ns, id, reader_));
  };
  std::unique_ptr<CacheCoherence::WriteTicket> ticket;
  bool own_read = false;
  asio::co_spawn(io_, fetch_before, asio::detached);
  asio::co_spawn(
      io_,
      [&]() -> Task<void> {
        // The first fetch's read is in flight when a write of the id begins and is applied
        // upstream (its answer still on the way)...
        co_await WaitOnLoop([&] { return upstream_.blocked() == 1; });
        ticket = core_->BeginWrite(ns, {id});
        upstream_.Put(id, R"({"v":2})", 200);
        // ...so a fetch that begins now reads for itself instead of joining that read.
        asio::co_spawn(io_, fetch_during, asio::detached);
        own_read = co_await WaitOnLoop([&] { return upstream_.blocked() == 2; });
        upstream_.Release();
      },
      asio::detached);
  io_.restart();
  io_.run();

  EXPECT_TRUE(own_read);
  EXPECT_EQ(upstream_.call_count(), 2u);
  ASSERT_TRUE(during && during->ok());
  ASSERT_TRUE((*during)->row);
  EXPECT_EQ(Json((*during)->row->attributes_json), Json(R"({"v":2})"));
}

TEST_F(WriteInFlightTest, AReadIsNotBackfilledWhenAWriteOfItsIdBeganAfterItsLookup) {
  const std::string ns = kNs;
  const DocId id = DocId::U64(6);
  upstream_.Put(id, R"({"v":1})", 100);
  upstream_.Hold();
  std::optional<Result<FetchOneResult>> read;
  auto fetch = [&]() -> Task<void> { read.emplace(co_await core_->FetchOne(ns, id, reader_)); };
  std::unique_ptr<CacheCoherence::WriteTicket> upsert, del;
  // Built outside the coroutine (GCC 12 and braced lists inside coroutines).
  const std::vector<DocId> named{id};
  WriteOutcome upsert_outcome = Upserts(200, {Row(id, R"({"v":2})")});
  WriteOutcome delete_outcome = Deletes(150, {id});
  asio::co_spawn(io_, fetch, asio::detached);
  asio::co_spawn(
      io_,
      [&]() -> Task<void> {
        // The fetch's lookup missed and its read is on its way. Two writes of the id begin: a
        // delete (stamp 150), then an upsert (stamp 200), which the upstream applies first and
        // acknowledges; overlapped, it leaves a tombstone with its stamp.
        co_await WaitOnLoop([&] { return upstream_.blocked() == 1; });
        del = core_->BeginWrite(ns, named);
        upsert = core_->BeginWrite(ns, named);
        upstream_.Put(id, R"({"v":2})", 200);
        (void)co_await core_->ApplyWrite(ns, std::move(upsert_outcome), upsert.get());
        upsert.reset();
        // The read sees the upsert's row (stamp 200, as new as the tombstone)...
        upstream_.Release();
        co_await WaitOnLoop([&] { return read.has_value(); });
        // ...then the delete is applied upstream and acknowledged.
        upstream_.Remove(id);
        (void)co_await core_->ApplyWrite(ns, std::move(delete_outcome), del.get());
        del.reset();
      },
      asio::detached);
  io_.restart();
  io_.run();

  ASSERT_TRUE(read && read->ok());
  ASSERT_TRUE((*read)->row);
  EXPECT_EQ(Json((*read)->row->attributes_json), Json(R"({"v":2})"));
  // The upstream has no row: the cache must not serve the one the read saw.
  EXPECT_FALSE(HasLiveRecord(id)) << Cached(id)->attributes_json;
  auto again = FetchOne(id);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->row);
}

// ---- FetchMany ----

using FetchManyTest = CoherenceTest;

TEST_F(FetchManyTest, AllCachedIsAHit) {
  Seed(DocId::U64(1), R"({"n":1})", 100);
  Seed(DocId::U64(2), R"({"n":2})", 100);
  const uint64_t hits = Lookups("hit");
  auto r = FetchMany({DocId::U64(1), DocId::U64(2)});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->outcome, FetchOutcome::kHit);
  ASSERT_EQ(r->rows.size(), 2u);
  EXPECT_EQ(Json(r->rows.at(IdKey(DocId::U64(2))).attributes_json), Json(R"({"n":2})"));
  EXPECT_EQ(r->rows.at(IdKey(DocId::U64(1))).id_json, "1");
  EXPECT_EQ(upstream_.call_count(), 0u);
  EXPECT_EQ(Lookups("hit"), hits + 1);
}

TEST_F(FetchManyTest, NoneCachedIsAMissAndBackfills) {
  upstream_.Put(DocId::U64(1), R"({"n":1})", 100);
  upstream_.Put(DocId::U64(2), R"({"n":2})", 100);
  const uint64_t misses = Lookups("miss");
  auto r = FetchMany({DocId::U64(1), DocId::U64(2), DocId::U64(3)});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->outcome, FetchOutcome::kMiss);
  EXPECT_EQ(r->rows.size(), 2u);  // 3 is absent upstream
  EXPECT_FALSE(r->rows.count(IdKey(DocId::U64(3))));
  ASSERT_EQ(upstream_.call_count(), 1u);
  EXPECT_EQ(Texts(upstream_.calls()[0]), (std::vector<std::string>{"1", "2", "3"}));
  EXPECT_EQ(Lookups("miss"), misses + 1);
  ASSERT_TRUE(WaitCached(DocId::U64(1)));
  ASSERT_TRUE(WaitCached(DocId::U64(2)));
  EXPECT_FALSE(Cached(DocId::U64(3)));

  auto again = FetchMany({DocId::U64(1), DocId::U64(2)});
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->outcome, FetchOutcome::kHit);
  EXPECT_EQ(upstream_.call_count(), 1u);
}

TEST_F(FetchManyTest, SomeCachedIsPartialAndReadsExactlyTheMisses) {
  Seed(DocId::U64(1), R"({"n":1})", 100);
  Seed(DocId::U64(3), R"({"n":3})", 100);
  ASSERT_TRUE(inner_->Tombstone(kNs, DocId::U64(5), 100).ok());
  upstream_.Put(DocId::U64(2), R"({"n":2})", 100);
  upstream_.Put(DocId::U64(5), R"({"n":5})", 200);
  const uint64_t partials = Lookups("partial");
  auto r = FetchMany({DocId::U64(1), DocId::U64(2), DocId::U64(3), DocId::U64(4), DocId::U64(5)});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->outcome, FetchOutcome::kPartial);
  ASSERT_EQ(upstream_.call_count(), 1u);
  EXPECT_EQ(Texts(upstream_.calls()[0]), (std::vector<std::string>{"2", "4", "5"}));
  EXPECT_EQ(r->rows.size(), 4u);
  EXPECT_EQ(Json(r->rows.at(IdKey(DocId::U64(3))).attributes_json), Json(R"({"n":3})"));
  EXPECT_EQ(Json(r->rows.at(IdKey(DocId::U64(5))).attributes_json), Json(R"({"n":5})"));
  EXPECT_EQ(Lookups("partial"), partials + 1);
  ASSERT_TRUE(WaitCached(DocId::U64(2)));
  ASSERT_TRUE(WaitCached(DocId::U64(5)));
}

TEST_F(FetchManyTest, CacheErrorIsMissOnErrorAndNotBackfilled) {
  Seed(DocId::U64(1), R"({"v":"cached"})", 100);
  faults_->FailOp(CacheOp::kMultiGet, Status::InvalidArgument("injected"));
  upstream_.Put(DocId::U64(1), R"({"v":"upstream"})", 100);
  upstream_.Put(DocId::U64(2), R"({"n":2})", 100);
  const uint64_t errors = Lookups("error");
  const uint64_t backfills = BackfillsDone();
  auto r = FetchMany({DocId::U64(1), DocId::U64(2)});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->outcome, FetchOutcome::kMissOnError);
  ASSERT_EQ(upstream_.call_count(), 1u);
  EXPECT_EQ(Texts(upstream_.calls()[0]), (std::vector<std::string>{"1", "2"}));
  EXPECT_EQ(r->rows.size(), 2u);
  EXPECT_EQ(Json(r->rows.at(IdKey(DocId::U64(1))).attributes_json), Json(R"({"v":"upstream"})"));
  EXPECT_EQ(Lookups("error"), errors + 1);
  EXPECT_EQ(BackfillsDone(), backfills);
  EXPECT_FALSE(Cached(DocId::U64(2)));
}

TEST_F(FetchManyTest, CacheDownIsMissOnError) {
  faults_->FailAll(Status::IoError("injected"));
  upstream_.Put(DocId::U64(1), R"({"n":1})", 100);
  const uint64_t backfills = BackfillsDone();
  auto r = FetchMany({DocId::U64(1), DocId::U64(2)});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->outcome, FetchOutcome::kMissOnError);
  EXPECT_EQ(r->rows.size(), 1u);
  EXPECT_EQ(BackfillsDone(), backfills);
}

TEST_F(FetchManyTest, ReaderFailureIsAnError) {
  Seed(DocId::U64(1), R"({"n":1})", 100);
  upstream_.Fail(Status::Unavailable("upstream down"));
  auto r = FetchMany({DocId::U64(1), DocId::U64(2)});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
}

TEST(FetchOutcomeTest, HeaderValuesAndMetricLabels) {
  EXPECT_EQ(CacheHeaderValue(FetchOutcome::kHit), "hit");
  EXPECT_EQ(CacheHeaderValue(FetchOutcome::kMiss), "miss");
  EXPECT_EQ(CacheHeaderValue(FetchOutcome::kPartial), "miss");
  EXPECT_EQ(CacheHeaderValue(FetchOutcome::kMissOnError), "miss-on-error");
  EXPECT_EQ(MetricLabel(FetchOutcome::kHit), "hit");
  EXPECT_EQ(MetricLabel(FetchOutcome::kMiss), "miss");
  EXPECT_EQ(MetricLabel(FetchOutcome::kPartial), "partial");
  EXPECT_EQ(MetricLabel(FetchOutcome::kMissOnError), "error");
}

TEST(FetchOutcomeTest, IdKeysKeepTypesApart) {
  EXPECT_NE(IdKey(DocId::U64(7)), IdKey(DocId::String("7")));
  EXPECT_EQ(IdKey(DocId::String("7")), IdKey(DocId::String("7")));
}

// ---- Cache state ----

using StateTest = CoherenceTest;

TEST_F(StateTest, ColdWithoutAWarmedThroughRecord) {
  std::optional<uint64_t> warmed;
  EXPECT_EQ(Run(core_->StateOf(kNs, &warmed)), CacheState::kCold);
  EXPECT_FALSE(warmed);
}

TEST_F(StateTest, WarmAfterRecordWarmedThrough) {
  ASSERT_TRUE(Run(core_->RecordWarmedThrough(kNs, 1234)).ok());
  std::optional<uint64_t> warmed;
  EXPECT_EQ(Run(core_->StateOf(kNs, &warmed)), CacheState::kWarm);
  EXPECT_EQ(warmed, 1234u);
  EXPECT_EQ(StateGauge(kNs, "warm"), 1.0);
  EXPECT_EQ(StateGauge(kNs, "cold"), 0.0);
  EXPECT_EQ(StateGauge(kNs, "warming"), 0.0);
  std::optional<uint64_t> other;
  EXPECT_EQ(Run(core_->StateOf(kOtherNs, &other)), CacheState::kCold);
  EXPECT_FALSE(other);
}

TEST_F(StateTest, WarmingWhileTheWarmingHookSaysSo) {
  std::string warming = kNs;
  core_->SetWarmHooks([&](std::string_view ns) { return ns == warming; }, nullptr);
  EXPECT_TRUE(core_->Warming(kNs));
  EXPECT_FALSE(core_->Warming(kOtherNs));
  std::optional<uint64_t> warmed;
  EXPECT_EQ(Run(core_->StateOf(kNs, &warmed)), CacheState::kWarming);
  EXPECT_EQ(Run(core_->StateOf(kOtherNs, &warmed)), CacheState::kCold);

  // Warming wins even over an unavailable cache.
  faults_->FailAll(Status::IoError("injected"));
  EXPECT_FALSE(Run(core_->Available()));
  EXPECT_EQ(Run(core_->StateOf(kNs, &warmed)), CacheState::kWarming);

  warming.clear();
  EXPECT_EQ(Run(core_->StateOf(kNs, &warmed)), CacheState::kCold);
}

TEST_F(StateTest, ColdWhenTheCacheIsUnavailable) {
  ASSERT_TRUE(Run(core_->RecordWarmedThrough(kNs, 1234)).ok());
  EXPECT_TRUE(Run(core_->Available()));
  faults_->FailOp(CacheOp::kPing, Status::IoError("injected"));
  EXPECT_FALSE(Run(core_->Available()));
  std::optional<uint64_t> warmed;
  EXPECT_EQ(Run(core_->StateOf(kNs, &warmed)), CacheState::kCold);

  Heal();
  EXPECT_TRUE(Run(core_->Available()));
  EXPECT_EQ(Run(core_->StateOf(kNs, &warmed)), CacheState::kWarm);
  EXPECT_EQ(warmed, 1234u);
}

TEST_F(StateTest, NewStampIsTheClocksWallTime) {
  clock_.SetWallMs(1'780'000'000'000);
  EXPECT_EQ(core_->NewStamp(), static_cast<uint64_t>(clock_.WallMs()));
  clock_.Advance(5s);
  EXPECT_EQ(core_->NewStamp(), static_cast<uint64_t>(clock_.WallMs()));
}

TEST_F(StateTest, CacheStateNames) {
  EXPECT_EQ(CacheStateName(CacheState::kCold), "cold");
  EXPECT_EQ(CacheStateName(CacheState::kWarming), "warming");
  EXPECT_EQ(CacheStateName(CacheState::kWarm), "warm");
}

// ---- Reactive warm ----

using ReactiveWarmTest = CoherenceTest;

TEST_F(ReactiveWarmTest, NoWarmWhileTheCacheNeverReconnected) {
  std::vector<std::string> started;
  core_->SetWarmHooks(nullptr, [&](const std::string& ns) { started.push_back(ns); });
  ASSERT_EQ(guard().generation(), 1u);
  auto r = FetchOne(DocId::U64(1));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->outcome, FetchOutcome::kMiss);
  EXPECT_TRUE(started.empty());
}

TEST_F(ReactiveWarmTest, FirstCleanMissAfterAReconnectStartsOneWarm) {
  std::vector<std::string> started;
  core_->SetWarmHooks(nullptr, [&](const std::string& ns) { started.push_back(ns); });
  DisconnectAndReconnect();
  ASSERT_EQ(guard().generation(), 2u);

  auto first = FetchOne(DocId::U64(1));
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->outcome, FetchOutcome::kMiss);
  EXPECT_EQ(started, std::vector<std::string>{kNs});

  auto second = FetchOne(DocId::U64(2));
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->outcome, FetchOutcome::kMiss);
  auto many = FetchMany({DocId::U64(3), DocId::U64(4)});
  ASSERT_TRUE(many.ok());
  EXPECT_EQ(started, std::vector<std::string>{kNs});

  // Each namespace gets its own first miss; a batch miss counts too.
  auto other = FetchMany({DocId::U64(1)}, kOtherNs);
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(other->outcome, FetchOutcome::kMiss);
  EXPECT_EQ(started, (std::vector<std::string>{kNs, kOtherNs}));

  // A later reconnect starts one more per namespace.
  DisconnectAndReconnect();
  ASSERT_EQ(guard().generation(), 3u);
  ASSERT_TRUE(FetchOne(DocId::U64(5)).ok());
  ASSERT_TRUE(FetchOne(DocId::U64(6)).ok());
  EXPECT_EQ(started, (std::vector<std::string>{kNs, kOtherNs, kNs}));
}

TEST_F(ReactiveWarmTest, HitsAndMissesOnErrorStartNoWarm) {
  std::vector<std::string> started;
  core_->SetWarmHooks(nullptr, [&](const std::string& ns) { started.push_back(ns); });
  Seed(DocId::U64(1), R"({"n":1})", 100);
  DisconnectAndReconnect();

  auto hit = FetchOne(DocId::U64(1));
  ASSERT_TRUE(hit.ok());
  EXPECT_EQ(hit->outcome, FetchOutcome::kHit);
  faults_->FailOp(CacheOp::kGet, Status::InvalidArgument("injected"));
  auto error = FetchOne(DocId::U64(2));
  ASSERT_TRUE(error.ok());
  EXPECT_EQ(error->outcome, FetchOutcome::kMissOnError);
  EXPECT_TRUE(started.empty());

  faults_->ClearFailures();
  auto miss = FetchOne(DocId::U64(2));
  ASSERT_TRUE(miss.ok());
  EXPECT_EQ(miss->outcome, FetchOutcome::kMiss);
  EXPECT_EQ(started, std::vector<std::string>{kNs});
}

// ---- Without a cache ----

TEST(NoCacheTest, EveryFetchIsAMissOnErrorAndWritesSucceed) {
  asio::io_context io;
  CacheCoherence core(nullptr, CoherenceOptions{});
  FakeUpstream upstream;
  upstream.Put(DocId::U64(1), R"({"n":1})", 100);
  const RowReader reader = upstream.Reader();
  const std::string ns = kNs;
  const DocId id = DocId::U64(1);

  auto one = RunTask(io, core.FetchOne(ns, id, reader));
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(one->outcome, FetchOutcome::kMissOnError);
  ASSERT_TRUE(one->row);
  auto many = RunTask(io, core.FetchMany(ns, {id, DocId::U64(2)}, reader));
  ASSERT_TRUE(many.ok());
  EXPECT_EQ(many->outcome, FetchOutcome::kMissOnError);
  EXPECT_EQ(many->rows.size(), 1u);

  EXPECT_TRUE(RunTask(io, core.ApplyWrite(ns, Deletes(100, {id}))));
  EXPECT_EQ(core.KnownIdType(ns), tpuf::IdType::kU64);
  EXPECT_EQ(core.pending_invalidations(), 0u);
  EXPECT_FALSE(RunTask(io, core.Available()));
  std::optional<uint64_t> warmed;
  EXPECT_EQ(RunTask(io, core.StateOf(ns, &warmed)), CacheState::kCold);
  EXPECT_FALSE(RunTask(io, core.RecordWarmedThrough(ns, 1)).ok());
}

}  // namespace
}  // namespace layer::coherence::testing
