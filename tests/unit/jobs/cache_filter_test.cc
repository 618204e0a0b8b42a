// CacheRowFilter (jobs/cache_filter.h): Turbopuffer filters on cached rows, typed by the
// namespace schema, and the filters it refuses.
#include "jobs/cache_filter.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

namespace layer::jobs {
namespace {

using tpuf::DocId;

CacheRowFilter Must(std::string_view filters, std::string_view schema = "{}") {
  auto parsed = CacheRowFilter::Parse(filters, schema);
  if (auto* refused = std::get_if<FilterRefusal>(&parsed)) {
    ADD_FAILURE() << filters << ": " << refused->message;
  }
  return std::move(std::get<CacheRowFilter>(parsed));
}

bool Match(const CacheRowFilter& f, const DocId& id, std::string_view row) {
  auto m = f.Matches(id, boost::json::parse(row).as_object());
  EXPECT_TRUE(m.ok()) << m.status().ToString();
  return m.ok() && *m;
}

TEST(CacheRowFilter, CachedValuesAreReadInTheirAttributesTypes) {
  const std::string schema = R"({"when":{"type":"datetime"},"score":{"type":"float"},
                                 "u":{"type":"uuid"},"id":{"type":"uint"}})";
  auto f = Must(R"(["And",[["when","Gte","2026-05-04T00:00:00Z"],["score","Lt",2]]])", schema);
  EXPECT_TRUE(Match(f, DocId::U64(1), R"({"when":"2026-05-05T10:00:00.000000000Z","score":1.0})"));
  EXPECT_FALSE(Match(f, DocId::U64(1), R"({"when":"2026-05-03T10:00:00.000000000Z","score":1.0})"));
  EXPECT_FALSE(Match(f, DocId::U64(1), R"({"when":"2026-05-05T10:00:00.000000000Z","score":2.0})"));
  auto u = Must(R"(["u","Eq","6BA7B8109DAD11D180B400C04FD430C8"])", schema);
  EXPECT_TRUE(Match(u, DocId::U64(1), R"({"u":"6ba7b810-9dad-11d1-80b4-00c04fd430c8"})"));
  auto ids = Must(R"(["id","In",[3,5]])", schema);
  EXPECT_TRUE(Match(ids, DocId::U64(5), "{}"));
  EXPECT_FALSE(Match(ids, DocId::U64(4), "{}"));
  // Missing and null attributes: Eq null matches them, as upstream.
  auto missing = Must(R"(["tags","Eq",null])");
  EXPECT_TRUE(Match(missing, DocId::String("a"), R"({"x":1})"));
  EXPECT_FALSE(Match(missing, DocId::String("a"), R"({"tags":["a"]})"));
}

TEST(CacheRowFilter, RefusesWhatTheUpstreamRefuses) {
  for (auto [filters, status] : {std::pair<std::string_view, int>{R"(["size","Between",1])", 422},
                                 {R"(["size","Eq"])", 422},
                                 {R"(["size","Regex","("])", 400},
                                 {R"(["size","Eq",{"$ref_new":"size"}])", 400}}) {
    auto parsed = CacheRowFilter::Parse(filters, "{}");
    auto* refused = std::get_if<FilterRefusal>(&parsed);
    ASSERT_NE(refused, nullptr) << filters;
    EXPECT_EQ(refused->http_status, status) << filters << ": " << refused->message;
  }
  // A type mismatch needs the schema to be seen.
  auto parsed = CacheRowFilter::Parse(R"(["when","Eq",true])", R"({"when":"datetime"})");
  ASSERT_TRUE(std::holds_alternative<FilterRefusal>(parsed));
  EXPECT_EQ(std::get<FilterRefusal>(parsed).http_status, 400);
}

}  // namespace
}  // namespace layer::jobs
