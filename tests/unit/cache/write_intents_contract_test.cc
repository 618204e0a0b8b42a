// The cases of the WriteIntents contract suite (see write_intents_contract.h). Each runs once per
// backend instantiated from a backend's test file.
#include <chrono>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "unit/cache/write_intents_contract.h"

namespace layer::cache {
namespace {

using std::chrono::milliseconds;
using testing::Doc;

std::vector<DocId> Ids(std::initializer_list<uint64_t> ids) {
  std::vector<DocId> out;
  for (uint64_t id : ids) out.push_back(DocId::U64(id));
  return out;
}

class Intents {
 public:
  explicit Intents(WriteIntents* w) : w_(w) {}
  IntentStart Begin(std::string_view ns, const std::vector<DocId>& ids, uint64_t stamp = 100,
                    milliseconds deadline = milliseconds(60000)) {
    auto r = w_->BeginIntent(ns, ids, /*whole_namespace=*/false, stamp, deadline);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : IntentStart{};
  }
  IntentStart BeginWhole(std::string_view ns, uint64_t stamp = 100,
                         milliseconds deadline = milliseconds(60000)) {
    auto r = w_->BeginIntent(ns, {}, /*whole_namespace=*/true, stamp, deadline);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : IntentStart{};
  }
  void End(std::string_view ns, const std::vector<DocId>& ids, const IntentStart& s) {
    EXPECT_TRUE(w_->EndIntent(ns, ids, false, s.generation).ok());
  }
  void EndWhole(std::string_view ns, const IntentStart& s) {
    EXPECT_TRUE(w_->EndIntent(ns, {}, true, s.generation).ok());
  }
  std::vector<IntentLookup> Look(std::string_view ns, const std::vector<DocId>& ids) {
    auto r = w_->Lookup(ns, ids);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : std::vector<IntentLookup>(ids.size());
  }
  uint64_t Generation(std::string_view ns) {
    auto r = w_->Generation(ns);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : 0;
  }
  // Looks `id` up until no write is in flight for it (a deadline passing on the backend's clock),
  // for at most 10 s.
  IntentLookup LookUntilSettled(std::string_view ns, const DocId& id) {
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    std::vector<DocId> one(1, id);
    while (true) {
      auto entry = Look(ns, one)[0];
      if (!entry.write_in_flight || std::chrono::steady_clock::now() > give_up) return entry;
      std::this_thread::sleep_for(milliseconds(1));
    }
  }

 private:
  WriteIntents* w_;
};

CachedDoc Read(std::string json, uint64_t stamp, uint64_t generation) {
  CachedDoc d = Doc(std::move(json), stamp);
  d.read_generation = generation;
  return d;
}

CachedDoc Written(std::string json, uint64_t stamp, uint64_t generation) {
  CachedDoc d = Doc(std::move(json), stamp);
  d.write_generation = generation;
  return d;
}

bool Put(DocumentCache* c, std::string_view ns, const DocId& id, const CachedDoc& d) {
  auto r = c->PutIfNewer(ns, id, d);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() && *r;
}

TEST_P(WriteIntentsContractTest, GenerationsGrowAndStampsFollowTheOrderWritesBegin) {
  Intents w(intents_);
  EXPECT_EQ(w.Generation("ns"), 0u);
  IntentStart a = w.Begin("ns", Ids({1}), 1000);
  EXPECT_EQ(a.generation, 1u);
  EXPECT_EQ(a.stamp, 1000u);
  // Proposed below a stamp already given (another replica's clock is behind): the next one.
  IntentStart b = w.Begin("ns", Ids({2}), 900);
  EXPECT_EQ(b.generation, 2u);
  EXPECT_EQ(b.stamp, 1001u);
  IntentStart c = w.BeginWhole("ns", 5000);
  EXPECT_EQ(c.generation, 3u);
  EXPECT_EQ(c.stamp, 5000u);
  EXPECT_EQ(w.Generation("ns"), 3u);
  // Namespaces are apart.
  IntentStart o = w.Begin("other", Ids({1}), 10);
  EXPECT_EQ(o.generation, 1u);
  EXPECT_EQ(o.stamp, 10u);
}

TEST_P(WriteIntentsContractTest, AWriteIsToldWhenAnotherWasInFlightAsItBegan) {
  Intents w(intents_);
  IntentStart a = w.Begin("ns", Ids({1, 2}));
  EXPECT_EQ(a.overlapped, std::vector<bool>({false, false}));
  IntentStart b = w.Begin("ns", Ids({2, 3}));
  EXPECT_EQ(b.overlapped, std::vector<bool>({true, false}));
  w.End("ns", Ids({1, 2}), a);
  IntentStart c = w.Begin("ns", Ids({1, 2}));
  EXPECT_EQ(c.overlapped, std::vector<bool>({false, true}));  // b is still in flight
  IntentStart whole = w.BeginWhole("ns");
  EXPECT_EQ(whole.overlapped, std::vector<bool>({false}));
  IntentStart d = w.Begin("ns", Ids({9}));
  EXPECT_EQ(d.overlapped, std::vector<bool>({true}));  // the whole-namespace write
  EXPECT_EQ(w.BeginWhole("ns").overlapped, std::vector<bool>({true}));
  w.End("ns", Ids({9}), d);
  IntentStart e = w.Begin("other", Ids({9}));
  EXPECT_EQ(e.overlapped, std::vector<bool>({false}));
}

TEST_P(WriteIntentsContractTest, LookupSeesWritesInFlightUntilTheyEnd) {
  Intents w(intents_);
  ASSERT_TRUE(Put(cache_, "ns", DocId::U64(1), Doc(R"({"v":1})", 10)));
  IntentStart a = w.Begin("ns", Ids({1}));
  auto l = w.Look("ns", Ids({1, 2}));
  ASSERT_EQ(l.size(), 2u);
  EXPECT_TRUE(l[0].write_in_flight);
  ASSERT_TRUE(l[0].record.has_value());
  EXPECT_EQ(l[0].record->attributes_json, R"({"v":1})");
  EXPECT_EQ(l[0].begun, a.generation);
  EXPECT_FALSE(l[1].write_in_flight);
  EXPECT_FALSE(l[1].record.has_value());
  EXPECT_EQ(l[1].begun, 0u);
  w.End("ns", Ids({1}), a);
  l = w.Look("ns", Ids({1}));
  EXPECT_FALSE(l[0].write_in_flight);
  EXPECT_EQ(l[0].begun, a.generation);

  // Two writes of one id: the end of one leaves the other in flight.
  IntentStart b = w.Begin("ns", Ids({1}));
  IntentStart c = w.Begin("ns", Ids({1}));
  w.End("ns", Ids({1}), b);
  EXPECT_TRUE(w.Look("ns", Ids({1}))[0].write_in_flight);
  w.End("ns", Ids({1}), c);
  EXPECT_FALSE(w.Look("ns", Ids({1}))[0].write_in_flight);

  // A whole-namespace write covers every id.
  IntentStart whole = w.BeginWhole("ns");
  l = w.Look("ns", Ids({1, 77}));
  EXPECT_TRUE(l[0].write_in_flight && l[1].write_in_flight);
  EXPECT_EQ(l[1].begun, whole.generation);
  EXPECT_FALSE(w.Look("other", Ids({1}))[0].write_in_flight);
  w.EndWhole("ns", whole);
  EXPECT_FALSE(w.Look("ns", Ids({77}))[0].write_in_flight);
}

TEST_P(WriteIntentsContractTest, ARowReadBeforeAWriteBeganIsNotPut) {
  Intents w(intents_);
  const DocId id = DocId::U64(1);
  const uint64_t read_at = w.Look("ns", Ids({1}))[0].begun;
  IntentStart a = w.Begin("ns", Ids({1}));
  EXPECT_FALSE(Put(cache_, "ns", id, Read(R"({"v":"old"})", 10, read_at)));  // in flight
  w.End("ns", Ids({1}), a);
  EXPECT_FALSE(Put(cache_, "ns", id, Read(R"({"v":"old"})", 10, read_at)));  // begun since
  EXPECT_FALSE(w.Look("ns", Ids({1}))[0].record.has_value());
  // A read that began after the write ended is put.
  const uint64_t later = w.Look("ns", Ids({1}))[0].begun;
  EXPECT_EQ(later, a.generation);
  EXPECT_TRUE(Put(cache_, "ns", id, Read(R"({"v":"new"})", 20, later)));
  EXPECT_EQ(w.Look("ns", Ids({1}))[0].record->attributes_json, R"({"v":"new"})");

  // A whole-namespace write begun since the read: every id's row is dropped.
  const uint64_t page_at = w.Generation("ns");
  IntentStart whole = w.BeginWhole("ns");
  w.EndWhole("ns", whole);
  EXPECT_FALSE(Put(cache_, "ns", DocId::U64(2), Read(R"({"v":2})", 30, page_at)));
  EXPECT_TRUE(Put(cache_, "ns", DocId::U64(2), Read(R"({"v":2})", 30, w.Generation("ns"))));
  // In a batch, only the rows written since are dropped; tombstones are never held back.
  const uint64_t batch_at = w.Generation("ns");
  IntentStart b = w.Begin("ns", Ids({3}));
  CachedDoc tomb;
  tomb.upserted_at = 40;
  tomb.tombstone = true;
  tomb.read_generation = batch_at;
  std::vector<std::pair<DocId, CachedDoc>> batch = {
      {DocId::U64(3), Read(R"({"v":3})", 40, batch_at)},
      {DocId::U64(4), Read(R"({"v":4})", 40, batch_at)},
      {DocId::U64(3), tomb}};
  auto stored = cache_->PutIfNewerBatch("ns", batch);
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(*stored, std::vector<bool>({false, true, true}));
  w.End("ns", Ids({3}), b);
}

TEST_P(WriteIntentsContractTest, AWritesOwnRowIsDroppedOnlyAfterALaterWholeNamespaceWrite) {
  Intents w(intents_);
  IntentStart a = w.Begin("ns", Ids({1}));
  IntentStart other = w.Begin("ns", Ids({1}));  // an id write begun after: not a reason
  EXPECT_TRUE(Put(cache_, "ns", DocId::U64(1), Written(R"({"v":1})", 10, a.generation)));
  w.End("ns", Ids({1}), other);
  IntentStart whole = w.BeginWhole("ns");
  EXPECT_FALSE(Put(cache_, "ns", DocId::U64(1), Written(R"({"v":2})", 20, a.generation)));
  w.EndWhole("ns", whole);
  EXPECT_FALSE(Put(cache_, "ns", DocId::U64(1), Written(R"({"v":2})", 20, a.generation)));
  w.End("ns", Ids({1}), a);
  IntentStart b = w.Begin("ns", Ids({1}));
  EXPECT_TRUE(Put(cache_, "ns", DocId::U64(1), Written(R"({"v":3})", 30, b.generation)));
  EXPECT_TRUE(Put(cache_, "ns", DocId::U64(1), Doc(R"({"v":4})", 40)));  // no generation
  w.End("ns", Ids({1}), b);
}

TEST_P(WriteIntentsContractTest, AnIntentPastItsDeadlineIsClosedWithATombstone) {
  Intents w(intents_);
  const DocId id = DocId::U64(1);
  ASSERT_TRUE(Put(cache_, "ns", id, Doc(R"({"v":1})", 50)));
  // A replica registers a write and is never heard of again.
  IntentStart lost = w.Begin("ns", Ids({1}), 70, milliseconds(1));
  IntentLookup l = w.LookUntilSettled("ns", id);
  ASSERT_FALSE(l.write_in_flight) << "the deadline never passed";
  ASSERT_TRUE(l.record.has_value());
  EXPECT_TRUE(l.record->tombstone);
  EXPECT_EQ(l.record->upserted_at, 70u);
  EXPECT_FALSE(Put(cache_, "ns", id, Doc(R"({"v":1})", 50)));  // the row from before it
  // A write begun since is not overlapped by it, and the late end of the lost one does not end
  // the new one.
  IntentStart next = w.Begin("ns", Ids({1}), 80);
  EXPECT_EQ(next.overlapped, std::vector<bool>({false}));
  w.End("ns", Ids({1}), lost);
  EXPECT_TRUE(w.Look("ns", Ids({1}))[0].write_in_flight);
  w.End("ns", Ids({1}), next);
  EXPECT_FALSE(w.Look("ns", Ids({1}))[0].write_in_flight);
  // The lost write's row, arriving late, is its own version: newer wins decides.
  EXPECT_TRUE(Put(cache_, "ns", id, Written(R"({"v":2})", 80, next.generation)));
}

TEST_P(WriteIntentsContractTest, AWholeNamespaceIntentPastItsDeadlineDropsTheNamespace) {
  Intents w(intents_);
  ASSERT_TRUE(Put(cache_, "ns", DocId::U64(5), Doc(R"({"v":5})", 50)));
  ASSERT_TRUE(Put(cache_, "keep", DocId::U64(5), Doc(R"({"v":5})", 50)));
  w.BeginWhole("ns", 70, milliseconds(1));
  IntentLookup l = w.LookUntilSettled("ns", DocId::U64(5));
  ASSERT_FALSE(l.write_in_flight) << "the deadline never passed";
  EXPECT_FALSE(l.record.has_value());
  auto got = cache_->Get("ns", DocId::U64(5));
  ASSERT_TRUE(got.ok());
  EXPECT_FALSE(got->has_value());
  got = cache_->Get("keep", DocId::U64(5));
  ASSERT_TRUE(got.ok() && got->has_value());
}

TEST_P(WriteIntentsContractTest, ManyIdsAnswerInOrder) {
  Intents w(intents_);
  std::vector<DocId> ids, written;
  for (uint64_t i = 0; i < 600; ++i) {
    ids.push_back(DocId::U64(i));
    if (i % 7 == 0) written.push_back(DocId::U64(i));
  }
  IntentStart a = w.Begin("ns", written);
  ASSERT_EQ(a.overlapped.size(), written.size());
  auto l = w.Look("ns", ids);
  ASSERT_EQ(l.size(), ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    EXPECT_EQ(l[i].write_in_flight, i % 7 == 0) << i;
    EXPECT_EQ(l[i].begun, i % 7 == 0 ? a.generation : 0u) << i;
  }
  w.End("ns", written, a);
  l = w.Look("ns", ids);
  for (size_t i = 0; i < ids.size(); ++i) EXPECT_FALSE(l[i].write_in_flight) << i;
}

}  // namespace
}  // namespace layer::cache
