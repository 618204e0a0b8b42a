// The cases of the DocumentCache contract suite (see document_cache_contract.h). Each runs once
// per backend instantiated from a backend's test file.
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "unit/cache/document_cache_contract.h"

namespace layer::cache {
namespace {

using testing::Doc;

TEST_P(DocumentCacheContractTest, GetMissThenPutThenGet) {
  DocumentCache* c = cache_;
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

TEST_P(DocumentCacheContractTest, IdTypesAndNamespacesDoNotCollide) {
  DocumentCache* c = cache_;
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
  // A key's namespace and id never run together: ("a", "bc") and ("ab", "c") are different keys.
  ASSERT_TRUE(c->PutIfNewer("a", DocId::String("bc"), Doc("{\"k\":1}", 1)).ok());
  EXPECT_FALSE(MustGet(*c, "ab", DocId::String("c")).has_value());
}

TEST_P(DocumentCacheContractTest, MultiGetKeepsOrderWithMisses) {
  DocumentCache* c = cache_;
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

TEST_P(DocumentCacheContractTest, NewerWins) {
  DocumentCache* c = cache_;
  DocId id = DocId::String("k");
  EXPECT_TRUE(*c->PutIfNewer("ns", id, Doc("{\"v\":10}", 10)));
  EXPECT_FALSE(*c->PutIfNewer("ns", id, Doc("{\"v\":5}", 5)));
  EXPECT_EQ(MustGet(*c, "ns", id)->attributes_json, "{\"v\":10}");
  EXPECT_TRUE(*c->PutIfNewer("ns", id, Doc("{\"v\":\"tie\"}", 10)));  // ties: the later write
  EXPECT_TRUE(*c->PutIfNewer("ns", id, Doc("{\"v\":20}", 20)));
  EXPECT_EQ(MustGet(*c, "ns", id)->attributes_json, "{\"v\":20}");
  EXPECT_EQ(MustGet(*c, "ns", id)->upserted_at, 20u);
}

TEST_P(DocumentCacheContractTest, BatchPutFlagsPerRecordIncludingDuplicates) {
  DocumentCache* c = cache_;
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
TEST_P(DocumentCacheContractTest, BatchRepeatsInAndOutOfKeyOrder) {
  DocumentCache* c = cache_;
  ASSERT_TRUE(c->PutIfNewer("ns", DocId::U64(5), Doc("{\"disk\":5}", 100)).ok());
  std::vector<std::pair<DocId, CachedDoc>> unordered = {
      {DocId::U64(3), Doc("{\"v\":\"3a\"}", 50)},
      {DocId::U64(5), Doc("{\"v\":\"5a\"}", 50)},  // loses to the stored 100
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

// Tombstone expiry depends on each backend's TTL and clock, so it is tested per backend.
TEST_P(DocumentCacheContractTest, TombstoneBlocksOlderPutsAndReadsAsTombstone) {
  DocumentCache* c = cache_;
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
}

// A delete may reach the cache for a row it never held; the tombstone must still block a backfill
// of an older read of that row.
TEST_P(DocumentCacheContractTest, TombstoneOfAnUncachedIdIsKeptWithoutAttributes) {
  DocumentCache* c = cache_;
  DocId id = DocId::U64(4);
  ASSERT_TRUE(c->Tombstone("ns", id, 100).ok());
  auto t = MustGet(*c, "ns", id);
  ASSERT_TRUE(t.has_value());
  EXPECT_TRUE(t->tombstone);
  EXPECT_EQ(t->upserted_at, 100u);
  EXPECT_EQ(t->attributes_json, "");
  EXPECT_FALSE(*c->PutIfNewer("ns", id, Doc("{\"v\":1}", 99)));
  EXPECT_TRUE(MustGet(*c, "ns", id)->tombstone);
}

TEST_P(DocumentCacheContractTest, NewerPutReplacesTombstoneAndOlderTombstoneIsIgnored) {
  DocumentCache* c = cache_;
  DocId id = DocId::U64(9);
  ASSERT_TRUE(c->Tombstone("ns", id, 100).ok());
  EXPECT_TRUE(*c->PutIfNewer("ns", id, Doc("{\"v\":2}", 300)));
  ASSERT_TRUE(c->Tombstone("ns", id, 200).ok());  // older than the row: not written
  auto got = MustGet(*c, "ns", id);
  ASSERT_TRUE(got.has_value());
  EXPECT_FALSE(got->tombstone);
  EXPECT_EQ(got->upserted_at, 300u);
}

// A full row marked as a repair (CachedDoc::repair) of tombstones stamped up to `bound`.
CachedDoc Repair(std::string json, uint64_t stamp, uint64_t bound = 1000) {
  CachedDoc d = Doc(std::move(json), stamp);
  d.repair = true;
  d.repair_bound = bound;
  return d;
}

TEST_P(DocumentCacheContractTest, ARepairReplacesOnlyARepairableTombstone) {
  DocumentCache* c = cache_;
  const DocId repairable = DocId::U64(1), final = DocId::U64(2), newer = DocId::U64(3);
  ASSERT_TRUE(c->Tombstone("ns", repairable, 500, /*repairable=*/true).ok());
  ASSERT_TRUE(c->Tombstone("ns", final, 500).ok());
  ASSERT_TRUE(c->PutIfNewer("ns", newer, Doc("{\"v\":\"new\"}", 500)).ok());
  auto got = MustGet(*c, "ns", repairable);
  ASSERT_TRUE(got && got->tombstone && got->repairable);
  EXPECT_FALSE(MustGet(*c, "ns", final)->repairable);
  // An older row that is not a repair is refused by both tombstones.
  EXPECT_FALSE(*c->PutIfNewer("ns", repairable, Doc("{\"v\":\"old\"}", 100)));
  // A repair replaces the repairable tombstone whatever its own stamp, but only a tombstone
  // stamped no later than its bound; never a tombstone that is not repairable nor a newer
  // document.
  EXPECT_FALSE(*c->PutIfNewer("ns", repairable, Repair("{\"v\":\"old\"}", 100, 499)));
  ASSERT_TRUE(MustGet(*c, "ns", repairable)->tombstone);
  EXPECT_TRUE(*c->PutIfNewer("ns", repairable, Repair("{\"v\":\"old\"}", 100, 500)));
  EXPECT_FALSE(*c->PutIfNewer("ns", final, Repair("{\"v\":\"old\"}", 100)));
  EXPECT_FALSE(*c->PutIfNewer("ns", newer, Repair("{\"v\":\"old\"}", 100)));
  got = MustGet(*c, "ns", repairable);
  ASSERT_TRUE(got && !got->tombstone);
  EXPECT_EQ(got->attributes_json, "{\"v\":\"old\"}");
  EXPECT_TRUE(MustGet(*c, "ns", final)->tombstone);
  EXPECT_EQ(MustGet(*c, "ns", newer)->attributes_json, "{\"v\":\"new\"}");
  // The batch call obeys the same rule.
  ASSERT_TRUE(c->Tombstone("ns", DocId::U64(4), 500, true).ok());
  std::vector<std::pair<DocId, CachedDoc>> batch;
  ASSERT_TRUE(c->Tombstone("ns", DocId::U64(5), 700, true).ok());
  batch.emplace_back(DocId::U64(4), Repair("{}", 1, 600));
  batch.emplace_back(final, Repair("{}", 1, 600));
  batch.emplace_back(DocId::U64(5), Repair("{}", 1, 600));
  auto stored = c->PutIfNewerBatch("ns", batch);
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(*stored, (std::vector<bool>{true, false, false}));
}

TEST_P(DocumentCacheContractTest, ATombstoneThatIsNotRepairableIsNeverMadeRepairable) {
  DocumentCache* c = cache_;
  const DocId over = DocId::U64(1), under = DocId::U64(2);
  // A repairable tombstone over a live one that is not: still not repairable.
  ASSERT_TRUE(c->Tombstone("ns", over, 100).ok());
  ASSERT_TRUE(c->Tombstone("ns", over, 200, true).ok());
  auto got = MustGet(*c, "ns", over);
  ASSERT_TRUE(got && got->tombstone);
  EXPECT_EQ(got->upserted_at, 200u);
  EXPECT_FALSE(got->repairable);
  EXPECT_FALSE(*c->PutIfNewer("ns", over, Repair("{}", 1)));
  // A tombstone that is not repairable, older than a repairable one: the newer stays, no longer
  // repairable.
  ASSERT_TRUE(c->Tombstone("ns", under, 300, true).ok());
  ASSERT_TRUE(c->Tombstone("ns", under, 250).ok());
  got = MustGet(*c, "ns", under);
  ASSERT_TRUE(got && got->tombstone);
  EXPECT_EQ(got->upserted_at, 300u);
  EXPECT_FALSE(got->repairable);
  EXPECT_FALSE(*c->PutIfNewer("ns", under, Repair("{}", 1)));
}

TEST_P(DocumentCacheContractTest, InvalidateRemovesDocumentsVectorsAndTombstones) {
  DocumentCache* c = cache_;
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

TEST_P(DocumentCacheContractTest, VectorsAreKeptApart) {
  DocumentCache* c = cache_;
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

TEST_P(DocumentCacheContractTest, BumpEpochMakesEverythingOfTheNamespaceUnreachable) {
  DocumentCache* c = cache_;
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

TEST_P(DocumentCacheContractTest, NamespaceRecordsGetPutList) {
  DocumentCache* c = cache_;
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

// TryGet may decline whenever answering needs I/O (a network backend always declines), but an
// answer must be exactly what Get answers: never an older record, never a partial one.
TEST_P(DocumentCacheContractTest, TryGetAnswersWhatGetAnswers) {
  DocumentCache* c = cache_;
  const DocId id = DocId::U64(1);
  // TryGet runs first at every step, so that Get's reads cannot warm up what TryGet sees.
  auto expect_like_get = [&] {
    TryGetResult tried = c->TryGet("ns", id);
    auto got = c->Get("ns", id);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    if (!tried.has_value()) return;  // declined
    ASSERT_TRUE(tried->ok()) << tried->status().ToString();
    ASSERT_EQ(tried->value().has_value(), got->has_value());
    if (!got->has_value()) return;
    EXPECT_EQ(tried->value()->attributes_json, (*got)->attributes_json);
    EXPECT_EQ(tried->value()->upserted_at, (*got)->upserted_at);
    EXPECT_EQ(tried->value()->tombstone, (*got)->tombstone);
  };
  {
    SCOPED_TRACE("a miss");
    expect_like_get();
  }
  ASSERT_TRUE(c->PutIfNewer("ns", id, Doc(R"({"x":1})", 10)).ok());
  {
    SCOPED_TRACE("a document");
    expect_like_get();
  }
  ASSERT_TRUE(c->PutIfNewer("ns", id, Doc(R"({"x":2})", 20)).ok());
  {
    SCOPED_TRACE("a newer document");
    expect_like_get();
  }
  ASSERT_TRUE(c->Tombstone("ns", id, 30).ok());
  {
    SCOPED_TRACE("a tombstone");
    expect_like_get();
  }
  ASSERT_TRUE(c->PutIfNewer("ns", id, Doc(R"({"x":4})", 40)).ok());
  ASSERT_TRUE(c->BumpEpoch("ns").ok());
  {
    SCOPED_TRACE("after BumpEpoch");
    expect_like_get();
  }
  ASSERT_TRUE(c->PutIfNewer("ns", id, Doc(R"({"x":5})", 1)).ok());
  std::vector<DocId> ids{id};
  ASSERT_TRUE(c->Invalidate("ns", ids).ok());
  {
    SCOPED_TRACE("after Invalidate");
    expect_like_get();
  }
}

// Every page of a scan until resume_after is nullopt, with `limit` records examined per page.
std::vector<std::pair<DocId, CachedDoc>> ScanAll(DocumentCache* c, std::string_view ns,
                                                 size_t limit, size_t* pages = nullptr) {
  std::vector<std::pair<DocId, CachedDoc>> out;
  std::optional<DocId> after;
  for (size_t n = 0;; ++n) {
    auto page = c->ScanNamespace(ns, after, limit);
    EXPECT_TRUE(page.ok()) << page.status().ToString();
    if (!page.ok() || n > 10000) break;
    EXPECT_LE(page->rows.size(), limit);
    for (auto& row : page->rows) out.push_back(std::move(row));
    if (pages) *pages = n + 1;
    if (!page->resume_after) break;
    after = std::move(page->resume_after);
  }
  return out;
}

std::vector<std::string> IdTexts(const std::vector<std::pair<DocId, CachedDoc>>& rows) {
  std::vector<std::string> out;
  for (const auto& [id, doc] : rows) out.push_back(id.ToText());
  return out;
}

// A scan returns the namespace's live documents of its epoch in key order (u64 numerically,
// then uuids, then strings bytewise), each once, whatever the page size; tombstones, vectors,
// other namespaces and older epochs are not returned.
TEST_P(DocumentCacheContractTest, ScanNamespaceReturnsLiveRowsInKeyOrder) {
  DocumentCache* c = cache_;
  auto uuid = DocId::Uuid("6ba7b810-9dad-11d1-80b4-00c04fd430c8");
  ASSERT_TRUE(uuid.ok());
  ASSERT_TRUE(c->PutIfNewer("ns", DocId::String("b"), Doc(R"({"v":"b"})", 5)).ok());
  ASSERT_TRUE(c->PutIfNewer("ns", DocId::U64(300), Doc(R"({"v":300})", 5)).ok());
  ASSERT_TRUE(c->PutIfNewer("ns", DocId::U64(2), Doc(R"({"v":2})", 5)).ok());
  ASSERT_TRUE(c->PutIfNewer("ns", *uuid, Doc(R"({"v":"u"})", 5)).ok());
  ASSERT_TRUE(c->PutIfNewer("ns", DocId::String("a"), Doc(R"({"v":"a"})", 5)).ok());
  ASSERT_TRUE(c->PutIfNewer("ns", DocId::U64(7), Doc(R"({"v":7})", 5)).ok());
  ASSERT_TRUE(c->Tombstone("ns", DocId::U64(7), 9).ok());  // a delete
  ASSERT_TRUE(c->Tombstone("ns", DocId::U64(8), 9, /*repairable=*/true).ok());
  ASSERT_TRUE(c->PutVector("ns", DocId::U64(2), std::string(8, '\1')).ok());
  ASSERT_TRUE(c->PutVector("ns", DocId::U64(9), std::string(8, '\1')).ok());  // a vector alone
  ASSERT_TRUE(c->PutIfNewer("ns2", DocId::U64(1), Doc(R"({"v":"other"})", 5)).ok());
  ASSERT_TRUE(c->PutIfNewer("n", DocId::U64(1), Doc(R"({"v":"prefix"})", 5)).ok());
  const std::vector<std::string> want = {"2", "300", "6ba7b810-9dad-11d1-80b4-00c04fd430c8", "a",
                                         "b"};
  for (size_t limit : {1, 2, 3, 1000}) {
    SCOPED_TRACE("limit " + std::to_string(limit));
    auto rows = ScanAll(c, "ns", limit);
    EXPECT_EQ(IdTexts(rows), want);
    ASSERT_EQ(rows.size(), want.size());
    EXPECT_EQ(rows[0].second.attributes_json, R"({"v":2})");
    EXPECT_EQ(rows[0].second.upserted_at, 5u);
    for (const auto& [id, doc] : rows) EXPECT_FALSE(doc.tombstone);
  }
  // Resuming after a key returns what follows it, whether or not the key exists.
  auto page = c->ScanNamespace("ns", DocId::U64(3), 1000);
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  EXPECT_EQ(IdTexts(page->rows),
            (std::vector<std::string>{"300", "6ba7b810-9dad-11d1-80b4-00c04fd430c8", "a", "b"}));
  EXPECT_FALSE(page->resume_after.has_value());
  // An epoch bump empties the scan; rows put after it are scanned.
  ASSERT_TRUE(c->BumpEpoch("ns").ok());
  EXPECT_TRUE(ScanAll(c, "ns", 10).empty());
  ASSERT_TRUE(c->PutIfNewer("ns", DocId::U64(1), Doc(R"({"v":"new"})", 6)).ok());
  EXPECT_EQ(IdTexts(ScanAll(c, "ns", 10)), (std::vector<std::string>{"1"}));
  // An empty or unknown namespace ends at once; a page examines at least one record.
  page = c->ScanNamespace("never", std::nullopt, 10);
  ASSERT_TRUE(page.ok());
  EXPECT_TRUE(page->rows.empty());
  EXPECT_FALSE(page->resume_after.has_value());
  EXPECT_EQ(c->ScanNamespace("ns", std::nullopt, 0).status().code(), StatusCode::kInvalidArgument);
}

// Many rows over many pages: each exactly once, in order, and a page never examines more than its
// limit (tombstones count, so a page may hold fewer rows while more follow).
TEST_P(DocumentCacheContractTest, ScanNamespacePagesThroughManyRows) {
  DocumentCache* c = cache_;
  std::vector<std::pair<DocId, CachedDoc>> batch;
  for (uint64_t i = 0; i < 2500; ++i) {
    batch.emplace_back(DocId::U64(i * 3), Doc("{\"i\":" + std::to_string(i) + "}", 10));
  }
  ASSERT_TRUE(c->PutIfNewerBatch("big", batch).ok());
  for (uint64_t i = 0; i < 2500; i += 5) {
    ASSERT_TRUE(c->Tombstone("big", DocId::U64(i * 3), 11).ok());
  }
  size_t pages = 0;
  auto rows = ScanAll(c, "big", 256, &pages);
  ASSERT_EQ(rows.size(), 2000u);
  EXPECT_GE(pages, 2500u / 256);
  for (size_t k = 1; k < rows.size(); ++k) {
    EXPECT_LT(rows[k - 1].first.as_u64(), rows[k].first.as_u64());
  }
  EXPECT_EQ(rows.front().first.as_u64(), 3u);
  EXPECT_EQ(rows.back().first.as_u64(), 2499u * 3);
}

// Newer wins must hold when writes of one key race (PutIfNewer's atomicity clause).
TEST_P(DocumentCacheContractTest, ConcurrentWritesOfAKeyKeepTheMaxStamp) {
  testing::RunConcurrentPuts(cache_);
  testing::RunRacingRounds(cache_);
}

TEST_P(DocumentCacheContractTest, PingAndStatsAnswer) {
  EXPECT_TRUE(cache_->Ping().ok());
  EXPECT_FALSE(cache_->Stats().backend.empty());
}

}  // namespace
}  // namespace layer::cache
