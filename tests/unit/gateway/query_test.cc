#include "gateway/query.h"

#include <gtest/gtest.h>

namespace layer::gateway {
namespace {

TEST(HideReservedAttributes, IncludeTrueBecomesExclude) {
  auto r = HideReservedAttributes(R"({"rank_by":["id","asc"],"include_attributes":true})");
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, R"({"rank_by":["id","asc"],"exclude_attributes":["_hevlayer_upserted_at"]})");
}

TEST(HideReservedAttributes, ExcludeGainsTheStampAndMultiQueryIsCovered) {
  auto r = HideReservedAttributes(
      R"({"queries":[{"exclude_attributes":["a"]},{"include_attributes":["a"]}]})");
  ASSERT_TRUE(r);
  EXPECT_EQ(*r,
            R"({"queries":[{"exclude_attributes":["a","_hevlayer_upserted_at"]},{"include_attributes":["a"]}]})");
}

TEST(HideReservedAttributes, RewrittenBodiesKeepEveryDigit) {
  // Boost.JSON 1.81 alone reads 0.11935319286735585 one ulp off.
  auto r = HideReservedAttributes(
      R"({"filters":["f","Eq",0.11935319286735585],"include_attributes":true})");
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, R"({"filters":["f","Eq",0.11935319286735585],)"
                R"("exclude_attributes":["_hevlayer_upserted_at"]})");
  auto e = StripReservedFromInfo(tpuf::RouteId::kLegacyNamespace,
                                 R"({"attributes":{"f":[1.6266288757324219],"_hevlayer_x":[1]}})");
  ASSERT_TRUE(e);
  EXPECT_EQ(*e, R"({"attributes":{"f":[1.6266288757324219]}})");
}

TEST(HideReservedAttributes, UntouchedBodiesPassVerbatim) {
  EXPECT_FALSE(HideReservedAttributes(R"({"rank_by":["id","asc"],"include_attributes":["a"]})"));
  EXPECT_FALSE(HideReservedAttributes(R"({"include_attributes":false})"));
  EXPECT_FALSE(HideReservedAttributes("not json"));
  EXPECT_FALSE(HideReservedAttributes(R"({"include_attributes":true,"exclude_attributes":[]})"));
}

// A body is parsed only when it may hold a key to rewrite; every spelling of one still is.
TEST(HideReservedAttributes, KeysFoundWithoutAParseInEverySpelling) {
  const std::string hidden = R"("exclude_attributes":["_hevlayer_upserted_at"])";
  auto spaced = HideReservedAttributes("{\n  \"include_attributes\" :\t true\n}");
  ASSERT_TRUE(spaced);
  EXPECT_EQ(*spaced, "{" + hidden + "}");
  auto escaped = HideReservedAttributes(R"({"\u0069nclude_attributes":true})");
  ASSERT_TRUE(escaped);
  EXPECT_EQ(*escaped, "{" + hidden + "}");
  auto nested = HideReservedAttributes(R"({"queries":[{"top_k":1,"include_attributes":true}]})");
  ASSERT_TRUE(nested);
  EXPECT_EQ(*nested, R"({"queries":[{"top_k":1,)" + hidden + "}]}");
  // The name as a value, or a key named like it inside a filter value, changes nothing.
  EXPECT_FALSE(HideReservedAttributes(R"({"filters":["t","Eq","include_attributes"],"top_k":1})"));
  EXPECT_FALSE(HideReservedAttributes(R"({"filters":["t","Eq",{"include_attributes":true}]})"));
}

TEST(StripReservedFromInfo, SchemaMetadataAndExport) {
  auto s = StripReservedFromInfo(tpuf::RouteId::kGetSchema,
                                 R"({"id":{"type":"uint"},"_hevlayer_upserted_at":{"type":"uint"}})");
  ASSERT_TRUE(s);
  EXPECT_EQ(*s, R"({"id":{"type":"uint"}})");
  auto m = StripReservedFromInfo(tpuf::RouteId::kMetadataV2,
                                 R"({"schema":{"_hevlayer_upserted_at":{"type":"uint"}},"approx_row_count":1})");
  ASSERT_TRUE(m);
  EXPECT_EQ(*m, R"({"schema":{},"approx_row_count":1})");
  auto e = StripReservedFromInfo(tpuf::RouteId::kLegacyNamespace,
                                 R"({"ids":[1],"attributes":{"a":[1],"_hevlayer_upserted_at":[5]}})");
  ASSERT_TRUE(e);
  EXPECT_EQ(*e, R"({"ids":[1],"attributes":{"a":[1]}})");
  EXPECT_FALSE(StripReservedFromInfo(tpuf::RouteId::kGetSchema, R"({"id":{"type":"uint"}})"));
}

}  // namespace
}  // namespace layer::gateway
