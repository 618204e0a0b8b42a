#include "jobs/warm_page.h"

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include <string>
#include <vector>

namespace layer::jobs {
namespace {

namespace json = boost::json;

WarmPage MustParse(std::string body, size_t limit) {
  auto page = ParseWarmPage(std::move(body), limit);
  EXPECT_TRUE(page.ok()) << page.status().ToString();
  return page.ok() ? std::move(*page) : WarmPage{};
}

TEST(WarmPageTest, SlicesAttributesByteForByte) {
  // Number text, escapes and nesting come out exactly as upstream wrote them.
  const std::string attrs =
      R"({"f":1.50,"big":1e300,"s":"a\"b\\u00e9\n","nested":{"x":[1, 2 ,{"y":null}]},"t":true})";
  std::string body = R"({"rows":[{"id":7,)" + attrs.substr(1) + "]}";
  WarmPage page = MustParse(body, 10);
  ASSERT_EQ(page.rows.size(), 1u);
  EXPECT_EQ(page.rows[0].attributes_json, attrs);
  EXPECT_EQ(page.rows[0].id_kind, WarmRow::IdKind::kU64);
  EXPECT_EQ(page.rows[0].id_u64, 7u);
  EXPECT_EQ(page.returned, 1u);
  EXPECT_EQ(page.taken, 1u);
  EXPECT_EQ(page.last_id_json, "7");
}

TEST(WarmPageTest, DropsIdVectorsScoresAndReservedAttributesKeepingTheStamp) {
  WarmPage page =
      MustParse(R"({"rows":[{"$dist":0.5,"id":"doc-1","vector":[0.1,0.2],"a":1,)"
                R"("_hevlayer_upserted_at":1779789600123,"_hevlayer_shard":3,"vectors":{"v":[1]},)"
                R"("$score":2,"b":"x"}]})",
                10);
  ASSERT_EQ(page.rows.size(), 1u);
  const WarmRow& row = page.rows[0];
  EXPECT_EQ(row.attributes_json, R"({"a":1,"b":"x"})");
  EXPECT_EQ(row.stamp, 1779789600123u);
  EXPECT_EQ(row.id_kind, WarmRow::IdKind::kString);
  EXPECT_EQ(row.id_text, "doc-1");
  EXPECT_EQ(page.last_id_json, R"("doc-1")");
}

TEST(WarmPageTest, ToleratesWhitespaceAroundValues) {
  WarmPage page =
      MustParse("{ \"rows\" : [ { \"id\" : 3 , \"a\" : [ 1 ] ,\n\"b\":\"q\" } ] }\n", 5);
  ASSERT_EQ(page.rows.size(), 1u);
  EXPECT_EQ(page.rows[0].attributes_json, R"({"a":[ 1 ],"b":"q"})");
  EXPECT_EQ(page.last_id_json, "3");
  EXPECT_EQ(json::parse(page.rows[0].attributes_json), json::parse(R"({"a":[1],"b":"q"})"));
}

TEST(WarmPageTest, RowWithOnlyAnIdCachesAnEmptyObject) {
  WarmPage page = MustParse(R"({"rows":[{"id":1},{"id":2,"vector":[1]}]})", 5);
  ASSERT_EQ(page.rows.size(), 2u);
  EXPECT_EQ(page.rows[0].attributes_json, "{}");
  EXPECT_EQ(page.rows[1].attributes_json, "{}");
}

TEST(WarmPageTest, EscapedKeysStayValidJson) {
  WarmPage page = MustParse(R"({"rows":[{"id":1,"a\"b":1,"c\u0001":2}]})", 5);
  ASSERT_EQ(page.rows.size(), 1u);
  json::value v = json::parse(page.rows[0].attributes_json);
  EXPECT_EQ(v, json::parse(R"({"a\"b":1,"c\u0001":2})"));
}

TEST(WarmPageTest, CountsRowsPastTheLimitWithoutTakingThem) {
  WarmPage page = MustParse(R"({"rows":[{"id":1,"a":1},{"id":2,"a":2},{"id":3,"a":3}]})", 2);
  EXPECT_EQ(page.returned, 3u);
  EXPECT_EQ(page.taken, 2u);
  ASSERT_EQ(page.rows.size(), 2u);
  EXPECT_EQ(page.rows[1].id_u64, 2u);
  EXPECT_EQ(page.last_id_json, "2");  // the cursor is the last row taken, not the extra one
}

TEST(WarmPageTest, RowsThatAreNotDocumentsAreSkippedButCounted) {
  WarmPage page = MustParse(R"({"rows":[{"id":1},5,{"a":1},{"id":4}]})", 10);
  EXPECT_EQ(page.returned, 4u);
  EXPECT_EQ(page.taken, 4u);
  ASSERT_EQ(page.rows.size(), 2u);
  EXPECT_EQ(page.last_id_json, "4");
  // A last row without an id leaves no cursor: the caller must not guess one.
  page = MustParse(R"({"rows":[{"id":1},{"a":1}]})", 10);
  EXPECT_FALSE(page.last_id_json.has_value());
}

TEST(WarmPageTest, IdsTheCacheCannotKeyAreMarked) {
  WarmPage page =
      MustParse(R"({"rows":[{"id":-1},{"id":1.5},{"id":true},{"id":18446744073709551615}]})", 10);
  ASSERT_EQ(page.rows.size(), 4u);
  EXPECT_EQ(page.rows[0].id_kind, WarmRow::IdKind::kOther);
  EXPECT_EQ(page.rows[1].id_kind, WarmRow::IdKind::kOther);
  EXPECT_EQ(page.rows[2].id_kind, WarmRow::IdKind::kOther);
  EXPECT_EQ(page.rows[3].id_kind, WarmRow::IdKind::kU64);
  EXPECT_EQ(page.rows[3].id_u64, 18446744073709551615u);
  EXPECT_EQ(page.last_id_json, "18446744073709551615");
}

TEST(WarmPageTest, OtherTopLevelMembersAreIgnored) {
  WarmPage page =
      MustParse(R"({"billing":{"x":1},"rows":[{"id":1,"a":2}],"performance":{"ms":3}})", 5);
  ASSERT_EQ(page.rows.size(), 1u);
  EXPECT_EQ(page.rows[0].attributes_json, R"({"a":2})");
}

TEST(WarmPageTest, EmptyPage) {
  WarmPage page = MustParse(R"({"rows":[]})", 5);
  EXPECT_EQ(page.returned, 0u);
  EXPECT_EQ(page.taken, 0u);
  EXPECT_TRUE(page.rows.empty());
  EXPECT_FALSE(page.last_id_json.has_value());
}

TEST(WarmPageTest, NumbersTheFastPathRefusesFallBackToTheSlowPath) {
  // 1e400 is out of double range for simdjson; Boost.JSON takes it, as the runner always did.
  WarmPage page = MustParse(R"({"rows":[{"id":1,"a":1e400,"b":"x"},{"id":2,"a":3}]})", 5);
  ASSERT_EQ(page.rows.size(), 2u);
  EXPECT_TRUE(json::parse(page.rows[0].attributes_json).is_object());
  EXPECT_EQ(page.rows[1].attributes_json, R"({"a":3})");
  EXPECT_EQ(page.last_id_json, "2");
}

TEST(WarmPageTest, AStampThatIsNoU64CountsAsNone) {
  WarmPage page = MustParse(R"({"rows":[{"id":1,"_hevlayer_upserted_at":-5,"a":1}]})", 5);
  ASSERT_EQ(page.rows.size(), 1u);
  EXPECT_EQ(page.rows[0].stamp, 0u);
  EXPECT_EQ(page.rows[0].attributes_json, R"({"a":1})");
}

TEST(WarmPageTest, MalformedBodiesFail) {
  for (std::string body :
       {"", "[]", "{\"rows\":5}", "{\"rows\":[{\"id\":1,\"a\":tru}]}",
        "{\"rows\":[{\"id\":1,\"a\":\"\\x\"}]}", "{\"other\":[]}", "{\"rows\":[{\"id\":1}]"}) {
    EXPECT_FALSE(ParseWarmPage(body, 5).ok()) << body;
  }
}

TEST(WarmPageTest, MatchesAReSerialisationOfEveryRow) {
  // Whatever the fast path keeps parses to the same JSON as the page's own row (less dropped keys).
  std::string body = R"({"rows":[)";
  for (int i = 1; i <= 50; ++i) {
    if (i > 1) body += ',';
    body += R"({"id":)" + std::to_string(i) + R"(,"n":)" + std::to_string(i * 3) + R"(,"f":)" +
            std::to_string(i) + R"(.25,"tags":["a","b"],"body":"line\nnext )" + std::to_string(i) +
            R"(","vector":[0.5,0.25]})";
  }
  body += "]}";
  json::value whole = json::parse(body);
  WarmPage page = MustParse(body, 50);
  ASSERT_EQ(page.rows.size(), 50u);
  for (size_t i = 0; i < 50; ++i) {
    json::object expected = whole.at("rows").at(i).as_object();
    expected.erase("id");
    expected.erase("vector");
    EXPECT_EQ(json::parse(page.rows[i].attributes_json), json::value(expected)) << i;
  }
}

}  // namespace
}  // namespace layer::jobs

namespace layer::jobs {
namespace {

TEST(WarmPagePeekTest, FindsTheIdOfOneRowAndCountsThemAll) {
  std::string body = R"({"rows":[{"id":1,"a":"x"},{"a":"y","id":"k\"2" },{"id":3}],"other":1})";
  auto peek = PeekWarmPage(body, 1);
  ASSERT_TRUE(peek.has_value());
  EXPECT_EQ(peek->returned, 3u);
  EXPECT_EQ(peek->id_json, R"("k\"2")");
  // The peek leaves the body for the parse, which agrees with it.
  WarmPage page = MustParse(body, 2);
  EXPECT_EQ(page.last_id_json, peek->id_json);
}

TEST(WarmPagePeekTest, NoIdWhenTheRowIsMissingOrHasNone) {
  std::string body = R"({"rows":[{"id":1},{"a":2},5]})";
  EXPECT_FALSE(PeekWarmPage(body, 1)->id_json.has_value());
  EXPECT_FALSE(PeekWarmPage(body, 2)->id_json.has_value());
  EXPECT_FALSE(PeekWarmPage(body, 3)->id_json.has_value());
  EXPECT_EQ(PeekWarmPage(body, 0)->id_json, "1");
  std::string not_a_page = R"({"error":"x"})";
  EXPECT_FALSE(PeekWarmPage(not_a_page, 0).has_value());
}

bool SamePage(const Result<WarmPage>& a, const Result<WarmPage>& b) {
  if (a.ok() != b.ok()) return false;
  if (!a.ok()) return a.status().code() == b.status().code();
  if (a->returned != b->returned || a->taken != b->taken || a->last_id_json != b->last_id_json ||
      a->rows.size() != b->rows.size()) {
    return false;
  }
  for (size_t i = 0; i < a->rows.size(); ++i) {
    const WarmRow &x = a->rows[i], &y = b->rows[i];
    if (x.id_kind != y.id_kind || x.id_u64 != y.id_u64 || x.id_text != y.id_text ||
        x.attributes_json != y.attributes_json || x.stamp != y.stamp) {
      return false;
    }
  }
  return true;
}

TEST(WarmPagePeekTest, PeekAndParseInOneIndexAgreesWithTheTwoCalls) {
  // Fast-path pages, pages only the slow path takes (1e400), malformed rows and non-pages.
  const std::vector<std::string> bodies = {
      R"({"rows":[{"id":1,"a":"x"},{"a":"y","id":"k\"2" },{"id":3,"_hevlayer_upserted_at":9}]})",
      R"({"rows":[{"id":1},{"a":2},5,{"id":4,"n":1.50}],"other":{"rows":[]}})",
      R"({"rows":[{"id":1,"big":1e400},{"id":2,"b":[1,{"c":null}]}]})",
      R"({"rows":[{"id":1,"a":tru}]})",
      R"({"rows":[]})",
      R"({"error":"x"})",
      R"([1,2])",
      "",
  };
  for (const std::string& body : bodies) {
    for (size_t limit : {1, 2, 3, 10}) {
      std::string peek_copy = body;
      const std::optional<WarmPagePeek> expected_peek = PeekWarmPage(peek_copy, limit - 1);
      const Result<WarmPage> expected = ParseWarmPage(body, limit);
      int peeks = 0;
      std::optional<WarmPagePeek> seen;
      Result<WarmPage> both =
          PeekAndParseWarmPage(body, limit, limit - 1, [&](const std::optional<WarmPagePeek>& p) {
            ++peeks;
            seen = p;
          });
      EXPECT_EQ(peeks, 1) << body;
      ASSERT_EQ(seen.has_value(), expected_peek.has_value()) << body;
      if (seen) {
        EXPECT_EQ(seen->returned, expected_peek->returned) << body;
        EXPECT_EQ(seen->id_json, expected_peek->id_json) << body << " limit " << limit;
      }
      EXPECT_TRUE(SamePage(both, expected)) << body << " limit " << limit;
    }
  }
}

}  // namespace
}  // namespace layer::jobs
