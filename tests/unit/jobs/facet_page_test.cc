// CountFacetPage counts a page exactly as FacetAggregator::AddRow does over Boost.JSON rows.
#include "jobs/facet_page.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <string>
#include <vector>

namespace layer::jobs {
namespace {

const std::vector<std::string> kFields = {"tags", "color", "size"};

// The reference: the page parsed with Boost.JSON, every object row through AddRow.
snapshots::SnapshotBody Reference(const std::string& page) {
  snapshots::FacetAggregator agg(kFields);
  const boost::json::value parsed = boost::json::parse(page);
  for (const auto& row : parsed.as_object().at("rows").as_array()) {
    if (row.is_object()) agg.AddRow(row.as_object());
  }
  return agg.Finish("ns", 1);
}

snapshots::SnapshotBody Fast(std::string page, FacetPageCount* count = nullptr,
                             int* peeks = nullptr) {
  snapshots::FacetAggregator agg(kFields);
  auto counted = CountFacetPage(page, agg, [&](const FacetPageCount&) {
    if (peeks) ++*peeks;
    EXPECT_EQ(agg.rows(), 0u);  // before any row is counted
  });
  EXPECT_TRUE(counted.ok()) << counted.status().ToString();
  if (count && counted.ok()) *count = *counted;
  return agg.Finish("ns", 1);
}

TEST(FacetPageTest, CountsLikeAddRowOverBoostJson) {
  const std::string page = R"({"rows":[
    {"id":1,"color":"red","size":3,"tags":["a","b","a"]},
    {"id":2,"color":"r\u00e9d \"q\"","size":-4,"tags":[]},
    {"size":3.50,"id":3,"color":true,"tags":["a",1,1.0,[1,2],{"k":[3, 4]},null]},
    {"id":4,"color":null,"size":1e2,"tags":"a"},
    {"id":5,"size":-0,"other":{"color":"nested"}},
    {"id":6,"size":18446744073709551615,"color":"x"},
    {"id":7,"size":18446744073709551616,"color":{"b":1,"a":[1]}},
    {"id":8,"size":-9223372036854775808,"tags":[[2,1],[2,1]]},
    {"id":9,"c\u006flor":"escaped key","t\"x":1,"tags":["a\\b","a\\b","\/"]},
    7, "not a row", null,
    {"id":"last","color":"red"}
  ],"billing":{"x":1}})";
  FacetPageCount count;
  int peeks = 0;
  snapshots::SnapshotBody fast = Fast(page, &count, &peeks);
  EXPECT_EQ(fast, Reference(page));
  EXPECT_EQ(*fast.row_count, 10u);  // objects only
  EXPECT_EQ(count.returned, 13u);
  EXPECT_EQ(count.last_id_json, "\"last\"");
  EXPECT_EQ(peeks, 1);
}

TEST(FacetPageTest, LastIdIsTheLastRowsAsWritten) {
  FacetPageCount count;
  Fast(R"({"rows":[{"id":1},{"id":18446744073709551615}]})", &count);
  EXPECT_EQ(count.last_id_json, "18446744073709551615");
  Fast(R"({"rows":[{"id":1},{"color":"no id"}]})", &count);
  EXPECT_FALSE(count.last_id_json);
  Fast(R"({"rows":[]})", &count);
  EXPECT_EQ(count.returned, 0u);
  EXPECT_FALSE(count.last_id_json);
}

TEST(FacetPageTest, ManyRowsOverTheCap) {
  std::string page = R"({"rows":[)";
  for (int i = 0; i < 300; ++i) {
    if (i) page += ',';
    page += R"({"id":)" + std::to_string(i) + R"(,"color":"c)" + std::to_string(i % 7) +
            R"(","size":)" + std::to_string(i) + "}";
  }
  page += "]}";
  snapshots::FacetAggregator agg(kFields, /*cap=*/100);
  ASSERT_TRUE(CountFacetPage(page, agg, nullptr).ok());
  snapshots::SnapshotBody body = agg.Finish("ns", 1);
  ASSERT_EQ(body.fields_skipped.size(), 1u);
  EXPECT_EQ(body.fields_skipped[0].name, "size");
  EXPECT_EQ(body.fields_skipped[0].distinct_observed, 300u);
}

TEST(FacetPageTest, RefusesWhatIsNotAPage) {
  for (std::string bad : {"", "[]", "{}", R"({"rows":{}})", R"({"rows":[{"id":1,"color":)",
                          "not json", R"({"rows":[{"id":1,"color":tru}]})"}) {
    snapshots::FacetAggregator agg(kFields);
    EXPECT_EQ(CountFacetPage(bad, agg, nullptr).status().code(), StatusCode::kInvalidArgument)
        << bad;
  }
}

}  // namespace
}  // namespace layer::jobs
