// FacetAggregator (snapshots/facets.h): per-value counts, arrays per element once per row,
// stringified values, canonical order, the distinct-value cap.
#include "snapshots/facets.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

namespace layer::snapshots {
namespace {

boost::json::object Row(const char* json) { return boost::json::parse(json).as_object(); }

TEST(FacetAggregatorTest, CountsValuesOfEveryType) {
  FacetAggregator agg({"tags", "color", "n"});
  agg.AddRow(Row(R"({"id":1,"color":"red","n":1,"tags":["a","b","a"]})"));
  agg.AddRow(Row(R"({"id":2,"color":"red","n":1.5,"tags":[]})"));
  agg.AddRow(Row(R"({"id":3,"color":true,"n":null})"));
  agg.AddRow(Row(R"({"id":4})"));
  SnapshotBody b = agg.Finish("ns", 42);
  EXPECT_EQ(b.ns, "ns");
  EXPECT_EQ(b.watermark_ms, 42u);
  EXPECT_EQ(b.row_count, 4u);
  ASSERT_EQ(b.fields.size(), 3u);
  EXPECT_EQ(b.fields[0].name, "color");
  EXPECT_EQ(b.fields[0].values,
            (std::vector<SnapshotValue>{{"red", 2}, {"true", 1}}));
  EXPECT_EQ(b.fields[1].name, "n");
  EXPECT_EQ(b.fields[1].values,
            (std::vector<SnapshotValue>{{"1", 1}, {"1.5", 1}, {"null", 1}}));
  EXPECT_EQ(b.fields[2].name, "tags");
  EXPECT_EQ(b.fields[2].values, (std::vector<SnapshotValue>{{"a", 1}, {"b", 1}}));
  EXPECT_EQ(b.sha, ComputeSha(b));
  EXPECT_TRUE(b.fields_skipped.empty());
}

TEST(FacetAggregatorTest, AFieldOverTheCapIsSkippedAndTheRestKept) {
  FacetAggregator agg({"id_like", "small"}, /*cap=*/3);
  for (int i = 0; i < 5; ++i) {
    agg.AddRow(Row(("{\"id_like\":\"v" + std::to_string(i) + "\",\"small\":\"x\"}").c_str()));
  }
  SnapshotBody b = agg.Finish("ns", 1);
  ASSERT_EQ(b.fields.size(), 1u);
  EXPECT_EQ(b.fields[0].name, "small");
  ASSERT_EQ(b.fields_skipped.size(), 1u);
  EXPECT_EQ(b.fields_skipped[0], (SkippedField{"id_like", "exceeded_cap", 5, 3}));
}

TEST(FacetAggregatorTest, TheSameDistributionHashesTheSameAtAnyWatermark) {
  FacetAggregator a({"c"}), b({"c"});
  a.AddRow(Row(R"({"c":"x"})"));
  a.AddRow(Row(R"({"c":"y"})"));
  b.AddRow(Row(R"({"c":"y"})"));
  b.AddRow(Row(R"({"c":"x"})"));
  EXPECT_EQ(a.Finish("ns", 1).sha, b.Finish("other", 2).sha);
}

}  // namespace
}  // namespace layer::snapshots
