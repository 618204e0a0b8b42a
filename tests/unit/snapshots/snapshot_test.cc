#include "snapshots/snapshot.h"

#include <gtest/gtest.h>

#include "snapshots/fs/fs_object_store.h"
#include "unit/jobs/temp_dir.h"

namespace layer::snapshots {
namespace {

constexpr const char* kExampleSha =
    "f6f83e38330124dc242272ce14fbb9160a5c412b98c82e0220205607dec42dea";

// Deliberately out of canonical order.
SnapshotBody Example() {
  SnapshotBody b;
  b.ns = "ns1";
  b.watermark_ms = 1779789600000;
  b.row_count = 3;
  b.fields = {{"color", {{"red", 2}, {"blue", 1}}}};
  b.fields_skipped = {{"tag", "exceeded_cap", 10001, 10000}};
  return b;
}

TEST(SnapshotShaTest, CoversCompactJsonOfRowCountFieldsAndSkipped) {
  SnapshotBody b = Example();
  Seal(b);
  EXPECT_EQ(ShaInput(b),
            "{\"row_count\":3,\"fields\":[{\"name\":\"color\",\"values\":[{\"v\":\"blue\",\"n\":1},"
            "{\"v\":\"red\",\"n\":2}]}],\"fields_skipped\":[{\"name\":\"tag\",\"reason\":"
            "\"exceeded_cap\",\"distinct_observed\":10001,\"cap\":10000}]}");
  // sha256sum of the text above.
  EXPECT_EQ(b.sha, kExampleSha);
}

TEST(SnapshotShaTest, IgnoresNamespaceAndWatermarkButNotContent) {
  SnapshotBody a = Example();
  SnapshotBody b = Example();
  b.ns = "other";
  b.watermark_ms = 5;
  Seal(a);
  Seal(b);
  EXPECT_EQ(a.sha, b.sha);
  SnapshotBody c = Example();
  c.fields[0].values[0].n = 3;
  Seal(c);
  EXPECT_NE(a.sha, c.sha);
  SnapshotBody d = Example();
  d.row_count.reset();
  Seal(d);
  EXPECT_NE(a.sha, d.sha);
  EXPECT_NE(ShaInput(d).find("\"row_count\":null"), std::string::npos);
}

TEST(SnapshotShaTest, CanonicalOrder) {
  SnapshotBody b;
  b.fields = {{"z", {{"b", 1}, {"a", 1}}}, {"a", {{"10", 1}, {"9", 1}}}};
  b.fields_skipped = {{"y", "exceeded_cap", 1, 1}, {"x", "exceeded_cap", 1, 1}};
  Canonicalize(b);
  EXPECT_EQ(b.fields[0].name, "a");
  EXPECT_EQ(b.fields[0].values[0].v, "10");  // bytewise, not numeric
  EXPECT_EQ(b.fields[1].values[0].v, "a");
  EXPECT_EQ(b.fields_skipped[0].name, "x");
}

TEST(SnapshotBodyTest, SerializeParseRoundTrip) {
  SnapshotBody b = Example();
  b.fields.push_back({"empty", {}});
  b.fields[0].values.push_back({"quote\"d \xc3\xa9", 4});
  Seal(b);
  std::string text = SerializeSnapshotBody(b);
  EXPECT_NE(text.find("\n  \"watermark_ms\": 1779789600000,\n"), std::string::npos) << text;
  auto parsed = ParseSnapshotBody(text, {.expected_namespace = "ns1"});
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString() << "\n" << text;
  EXPECT_EQ(*parsed, b);

  SnapshotBody empty;
  empty.ns = "e";
  Seal(empty);
  auto p2 = ParseSnapshotBody(SerializeSnapshotBody(empty));
  ASSERT_TRUE(p2.ok()) << p2.status().ToString();
  EXPECT_EQ(*p2, empty);
}

TEST(SnapshotBodyTest, AcceptsCompactBodiesWithOptionalMembersAbsent) {
  SnapshotBody b;
  b.ns = "ns1";
  b.watermark_ms = 7;
  b.fields = {{"f", {{"x", 1}}}};
  Seal(b);
  std::string text = "{\"namespace\":\"ns1\",\"watermark_ms\":7,\"sha\":\"" + b.sha +
                     "\",\"row_count\":null,\"fields\":[{\"name\":\"f\",\"values\":[{\"v\":\"x\","
                     "\"n\":1}]}]}";
  auto parsed = ParseSnapshotBody(text);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_FALSE(parsed->row_count);
  EXPECT_TRUE(parsed->fields_skipped.empty());
}

TEST(SnapshotBodyTest, RefusesTheWrongNamespace) {
  SnapshotBody b = Example();
  Seal(b);
  auto r = ParseSnapshotBody(SerializeSnapshotBody(b), {.expected_namespace = "ns2"});
  EXPECT_EQ(r.status().code(), StatusCode::kCorruption);
  EXPECT_NE(r.status().message().find("namespace"), std::string::npos);
}

TEST(SnapshotBodyTest, RefusesCorruptBodies) {
  SnapshotBody b = Example();
  Seal(b);
  std::string good = SerializeSnapshotBody(b);
  std::vector<std::string> bad = {
      "",
      "not json",
      good.substr(0, good.size() / 2),
      "[]",
      "{\"watermark_ms\":1,\"sha\":\"" + b.sha + "\",\"fields\":[]}",     // no namespace
      "{\"namespace\":\"ns1\",\"sha\":\"" + b.sha + "\",\"fields\":[]}",  // no watermark
      "{\"namespace\":\"ns1\",\"watermark_ms\":-1,\"sha\":\"" + b.sha + "\",\"fields\":[]}",
      "{\"namespace\":\"ns1\",\"watermark_ms\":1.5,\"sha\":\"" + b.sha + "\",\"fields\":[]}",
      "{\"namespace\":\"ns1\",\"watermark_ms\":1,\"sha\":\"abc\",\"fields\":[]}",
      "{\"namespace\":\"ns1\",\"watermark_ms\":1,\"sha\":\"" + std::string(64, 'A') +
          "\",\"fields\":[]}",
      "{\"namespace\":\"ns1\",\"watermark_ms\":1,\"sha\":\"" + b.sha + "\"}",  // no fields
      "{\"namespace\":\"ns1\",\"watermark_ms\":1,\"sha\":\"" + b.sha +
          "\",\"fields\":[{\"name\":\"f\",\"values\":[{\"v\":1,\"n\":1}]}]}",
      "{\"namespace\":\"ns1\",\"watermark_ms\":1,\"sha\":\"" + b.sha +
          "\",\"fields\":[{\"name\":\"f\",\"values\":[{\"v\":\"x\",\"n\":-1}]}]}",
      "{\"namespace\":\"ns1\",\"watermark_ms\":1,\"sha\":\"" + b.sha +
          "\",\"fields\":[],\"fields_skipped\":[{\"name\":\"f\"}]}",
  };
  for (const std::string& text : bad) {
    auto r = ParseSnapshotBody(text, {.verify_sha = false});
    EXPECT_EQ(r.status().code(), StatusCode::kCorruption) << text;
  }
}

TEST(SnapshotBodyTest, VerifiesTheSha) {
  SnapshotBody b = Example();
  Seal(b);
  b.fields[0].values[0].n = 99;  // content changed after sealing
  std::string text = SerializeSnapshotBody(b);
  EXPECT_EQ(ParseSnapshotBody(text).status().code(), StatusCode::kCorruption);
  EXPECT_TRUE(ParseSnapshotBody(text, {.verify_sha = false}).ok());
}

TEST(SnapshotKeyTest, TenantsHaveTheirOwnKeys) {
  auto key = SnapshotKey("ns1@0a1b2c", 42, "abcdef0");
  ASSERT_TRUE(key.ok()) << key.status().ToString();
  EXPECT_EQ(*key, "tenants/0a1b2c/snapshots/ns1/0000000000042-abcdef0.json");
  EXPECT_EQ(SnapshotPrefix("ns1@0a1b2c"), "tenants/0a1b2c/snapshots/ns1/");
  auto info = ParseSnapshotKey(*key);
  ASSERT_TRUE(info);
  EXPECT_EQ(*info, (SnapshotKeyInfo{"ns1", 42, "abcdef0", "0a1b2c"}));
  EXPECT_FALSE(SnapshotKey("ns1@NOTHEX", 42, "abcdef0").ok());
  EXPECT_FALSE(ParseSnapshotKey("tenants//snapshots/ns1/0000000000042-abcdef0.json"));
  EXPECT_FALSE(ParseSnapshotKey("tenants/XY/snapshots/ns1/0000000000042-abcdef0.json"));
}

TEST(SnapshotKeyTest, FormatAndParse) {
  auto key = SnapshotKey("ns1", 1779789600000, kExampleSha);
  ASSERT_TRUE(key.ok());
  EXPECT_EQ(*key, "snapshots/ns1/1779789600000-f6f83e3.json");
  EXPECT_EQ(*SnapshotKey("ns1", 42, "abcdef0"), "snapshots/ns1/0000000000042-abcdef0.json");
  EXPECT_EQ(SnapshotPrefix("ns1"), "snapshots/ns1/");
  auto info = ParseSnapshotKey(*key);
  ASSERT_TRUE(info);
  EXPECT_EQ(*info, (SnapshotKeyInfo{"ns1", 1779789600000, "f6f83e3"}));

  EXPECT_EQ(SnapshotKey("bad/ns", 1, kExampleSha).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(SnapshotKey("..", 1, kExampleSha).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(SnapshotKey("", 1, kExampleSha).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(SnapshotKey("ns", 1, "abc").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(SnapshotKey("ns", 1, "ABCDEF0").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(SnapshotKey("ns", 10000000000000ull, kExampleSha).status().code(),
            StatusCode::kInvalidArgument);

  for (const char* bad :
       {"snapshots/ns1/42-abcdef0.json", "snapshots/ns1/0000000000042-abcdef0",
        "snapshots/ns1/0000000000042_abcdef0.json", "snapshots/ns1/0000000000042-ABCDEF0.json",
        "snapshots/ns1/sub/0000000000042-abcdef0.json", "other/ns1/0000000000042-abcdef0.json",
        "snapshots/0000000000042"}) {
    EXPECT_FALSE(ParseSnapshotKey(bad)) << bad;
  }
}

TEST(SnapshotKeyTest, OnDemandKeysLiveOutsideTheFullSnapshotPrefix) {
  auto key = OnDemandSnapshotKey("ns1", 42, kExampleSha);
  ASSERT_TRUE(key.ok()) << key.status().ToString();
  EXPECT_EQ(*key, "snapshots-on-demand/ns1/0000000000042-f6f83e3.json");
  EXPECT_EQ(*OnDemandSnapshotKey("ns1@0a1b2c", 42, "abcdef0"),
            "tenants/0a1b2c/snapshots-on-demand/ns1/0000000000042-abcdef0.json");
  EXPECT_EQ(OnDemandSnapshotPrefix("ns1"), "snapshots-on-demand/ns1/");
  // Not of the full snapshots' scheme, and not under their listing prefix.
  EXPECT_FALSE(ParseSnapshotKey(*key));
  EXPECT_FALSE(key->starts_with(SnapshotPrefix("ns1")));
  EXPECT_EQ(OnDemandSnapshotKey("bad/ns", 1, kExampleSha).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(OnDemandSnapshotKey("ns", 1, "abc").status().code(), StatusCode::kInvalidArgument);
}

class SnapshotStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { store_ = std::move(FsObjectStore::Open(dir_.Sub("obj"))).value(); }

  std::string Write(const std::string& ns, uint64_t wm, SnapshotBody b) {
    b.ns = ns;
    b.watermark_ms = wm;
    Seal(b);
    std::string key = *SnapshotKey(ns, wm, b.sha);
    EXPECT_TRUE(*store_->PutIfAbsent(key, SerializeSnapshotBody(b)));
    return key;
  }

  layer::testing::StorageTempDir dir_;
  std::unique_ptr<FsObjectStore> store_;
};

TEST_F(SnapshotStoreTest, OnDemandBodiesNeverBecomeLatest) {
  std::string full = Write("ns1", 1000, Example());
  SnapshotBody single = Example();
  single.ns = "ns1";
  single.watermark_ms = 2000;  // newer than the full snapshot
  single.fields_skipped.clear();
  Seal(single);
  ASSERT_TRUE(*store_->PutIfAbsent(*OnDemandSnapshotKey("ns1", 2000, single.sha),
                                   SerializeSnapshotBody(single)));
  auto keys = ListSnapshotKeys(*store_, "ns1");
  ASSERT_TRUE(keys.ok());
  EXPECT_EQ(*keys, std::vector<std::string>{full});
  auto latest = ReadLatestSnapshot(*store_, "ns1");
  ASSERT_TRUE(latest.ok() && *latest);
  EXPECT_EQ((*latest)->key, full);
}

TEST_F(SnapshotStoreTest, LatestIsTheLastKeyOfTheListing) {
  auto none = LatestSnapshotKey(*store_, "ns1");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(*none);
  auto no_body = ReadLatestSnapshot(*store_, "ns1");
  ASSERT_TRUE(no_body.ok());
  EXPECT_FALSE(*no_body);

  SnapshotBody other = Example();
  other.row_count = 4;
  Write("ns1", 999, Example());
  std::string newest = Write("ns1", 1000, other);  // 999 < 1000 only thanks to zero padding
  Write("ns10", 5000, Example());                  // another namespace sharing a prefix
  ASSERT_TRUE(store_->Put("snapshots/ns1/zzz-not-a-snapshot.json", "junk").ok());

  auto keys = ListSnapshotKeys(*store_, "ns1");
  ASSERT_TRUE(keys.ok());
  EXPECT_EQ(keys->size(), 2u);
  auto latest = LatestSnapshotKey(*store_, "ns1");
  ASSERT_TRUE(latest.ok());
  EXPECT_EQ(**latest, newest);

  auto read = ReadLatestSnapshot(*store_, "ns1");
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  ASSERT_TRUE(*read);
  EXPECT_EQ((*read)->key, newest);
  EXPECT_EQ((*read)->body.watermark_ms, 1000u);
  EXPECT_EQ((*read)->body.row_count, 4u);
  EXPECT_EQ((*read)->bytes, *store_->Get(newest));
}

TEST_F(SnapshotStoreTest, ReadLatestRefusesBadBodies) {
  SnapshotBody b = Example();
  b.ns = "ns2";  // stored under ns1's prefix but names ns2
  Seal(b);
  ASSERT_TRUE(store_->Put(*SnapshotKey("ns1", 1, b.sha), SerializeSnapshotBody(b)).ok());
  EXPECT_EQ(ReadLatestSnapshot(*store_, "ns1").status().code(), StatusCode::kCorruption);

  ASSERT_TRUE(store_->Put(*SnapshotKey("ns1", 2, b.sha), "{corrupt").ok());
  EXPECT_EQ(ReadLatestSnapshot(*store_, "ns1").status().code(), StatusCode::kCorruption);

  // A valid body under a key whose sha7 does not match.
  SnapshotBody c = Example();
  c.ns = "ns1";
  Seal(c);
  ASSERT_TRUE(store_->Put(*SnapshotKey("ns1", 3, "0000000"), SerializeSnapshotBody(c)).ok());
  EXPECT_EQ(ReadLatestSnapshot(*store_, "ns1").status().code(), StatusCode::kCorruption);

  std::string good = Write("ns1", 4, Example());
  auto read = ReadLatestSnapshot(*store_, "ns1");
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  EXPECT_EQ((*read)->key, good);
}

}  // namespace
}  // namespace layer::snapshots
