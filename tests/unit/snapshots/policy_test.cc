// Snapshot policies (snapshots/policy.h): validation, normalisation, keys per tenant.
#include "snapshots/policy.h"

#include <gtest/gtest.h>

namespace layer::snapshots {
namespace {

TEST(SnapshotPolicyTest, DefaultsAndNormalisation) {
  auto p = ParseSnapshotPolicy("{}");
  ASSERT_TRUE(p.ok());
  EXPECT_TRUE(p->facet_fields.empty());
  EXPECT_EQ(p->interval_ms, 300000);
  EXPECT_FALSE(p->retention_ms);
  EXPECT_EQ(SerializeSnapshotPolicy(*p),
            R"({"facetFields":[],"interval":"5m","retention":"never"})");
  p = ParseSnapshotPolicy(R"({"facetFields":["b","a","b"],"interval":"1s","retention":"30d"})");
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->facet_fields, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(p->interval_ms, 1000);
  EXPECT_EQ(p->retention_ms, 30LL * 86400000);
  EXPECT_EQ(SerializeSnapshotPolicy(*p),
            R"({"facetFields":["a","b"],"interval":"1s","retention":"30d"})");
  EXPECT_EQ(ParseSnapshotPolicy(SerializeSnapshotPolicy(*p)).value(), *p);
}

TEST(SnapshotPolicyTest, BadBodiesAreRefusedWithAMessage) {
  for (const char* bad :
       {"", "[]", "{", R"({"facetFields":[""]})", R"({"facetFields":[" "]})",
        R"({"facetFields":[1]})", R"({"facetFields":"a"})", R"({"facetFields":["id"]})",
        R"({"facetFields":["_hevlayer_upserted_at"]})", R"({"interval":"0s"})",
        R"({"interval":5})", R"({"interval":"-1m"})", R"({"retention":"0d"})",
        R"({"retention":"always"})", R"({"facet_fields":["a"]})"}) {
    auto p = ParseSnapshotPolicy(bad);
    EXPECT_EQ(p.status().code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_FALSE(p.status().message().empty()) << bad;
  }
}

TEST(SnapshotPolicyTest, KeysPerTenantRoundTrip) {
  EXPECT_EQ(PolicyKey("products"), "snapshot-policies/products.json");
  EXPECT_EQ(PolicyKey("products@0a1b"), "tenants/0a1b/snapshot-policies/products.json");
  EXPECT_EQ(PolicyPartition("snapshot-policies/products.json"), "products");
  EXPECT_EQ(PolicyPartition("tenants/0a1b/snapshot-policies/products.json"), "products@0a1b");
  for (const char* bad : {"snapshot-policies/a/b.json", "snapshot-policies/x.txt",
                          "tenants//snapshot-policies/x.json", "snapshots/x/1.json"}) {
    EXPECT_FALSE(PolicyPartition(bad)) << bad;
  }
}

}  // namespace
}  // namespace layer::snapshots
