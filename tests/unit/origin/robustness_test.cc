// Structured fuzzing: random type-confusing mutations of real request bodies must never crash the
// engine or surface as an internal error (500).
#include <random>

#include "engine_test_util.h"

namespace layer::origin::testing {
namespace {

class RobustnessTest : public EngineTest {
 protected:
  boost::json::value RandomValue() {
    switch (rng_() % 9) {
      case 0:
        return nullptr;
      case 1:
        return rng_() % 2 == 0;
      case 2:
        return static_cast<int64_t>(rng_() % 21) - 10;
      case 3:
        return 0.5;
      case 4:
        return "id";
      case 5:
        return boost::json::array{"vector", "ANN", boost::json::array{1.0, 0.0}};
      case 6:
        return boost::json::array{};
      case 7:
        return boost::json::object{{"$ref_new", "score"}};
      default:
        return boost::json::array{"score", "Eq", 1};
    }
  }

  // Replaces one random node of `v` (depth-first, by index) with a random value.
  void Mutate(boost::json::value& v, int& countdown) {
    if (countdown-- == 0) {
      v = RandomValue();
      return;
    }
    if (v.is_array()) {
      for (auto& e : v.as_array()) Mutate(e, countdown);
    } else if (v.is_object()) {
      for (auto& kv : v.as_object()) Mutate(kv.value(), countdown);
    }
  }

  std::mt19937 rng_{12345};
};

TEST_F(RobustnessTest, MutatedRequestsNeverFailInternally) {
  ASSERT_EQ(Write("p", kFixtureP0).status, 200);
  const char* seeds[][2] = {
      {"/v2/namespaces/p", kFixtureP0},
      {"/v2/namespaces/p",
       R"({"upsert_rows":[{"id":4,"score":3,"vector":[0.5,0.5]}],"upsert_condition":["score","Lt",{"$ref_new":"score"}],"return_affected_ids":true})"},
      {"/v2/namespaces/p",
       R"({"patch_by_filter":{"filters":["category","Eq","fish"],"patch":{"score":8}},"delete_by_filter":["score","Lt",0],"patch_columns":{"id":[1],"title":["t"]}})"},
      {"/v2/namespaces/p/query",
       R"({"rank_by":["vector","ANN",[1.0,0.0]],"limit":10,"filters":["And",[["category","Eq","mammal"],["tags","ContainsAny",["sea"]]]],"include_attributes":["category","score"]})"},
      {"/v2/namespaces/p/query",
       R"({"rank_by":["Sum",[["text","BM25","quick walrus"],["Product",2,["public","Eq",1]]]],"limit":{"total":3,"per":{"attributes":["category"],"limit":1}}})"},
      {"/v2/namespaces/p/query",
       R"({"aggregate_by":{"c":["Sum","score"]},"group_by":[{"t":["ForEachUnique","tags"]}],"top_k":5,"filters":["published_at","Gt","2026-05-29T00:00:00Z"]})"},
      {"/v2/namespaces/p/query",
       R"({"queries":[{"rank_by":[["category","asc"],["score","desc"]],"limit":3},{"rank_by":["text","BM25","walrus"],"limit":2}],"rerank_by":["RRF",{"rank_constant":60}],"vector_encoding":"base64"})"},
      {"/v1/namespaces/p/_debug/recall", R"({"num":1,"top_k":2,"filters":["public","Eq",1]})"},
      {"/v1/namespaces/p/schema",
       R"({"category":{"type":"string","regex":true,"filterable":true}})"},
      {"/v2/namespaces/p/explain_query", R"({"rank_by":["id","asc"],"limit":3})"},
  };
  int internal = 0;
  for (int iter = 0; iter < 3000; ++iter) {
    const auto& seed = seeds[iter % (sizeof(seeds) / sizeof(seeds[0]))];
    boost::json::value body = boost::json::parse(seed[1]);
    int mutations = 1 + static_cast<int>(rng_() % 3);
    for (int m = 0; m < mutations; ++m) {
      int countdown = static_cast<int>(rng_() % 40);
      Mutate(body, countdown);
    }
    std::string text = boost::json::serialize(body);
    Reply r = Do("POST", seed[0], text);
    if (r.status == 500) {
      ++internal;
      ADD_FAILURE() << seed[0] << " " << text << " -> " << r.body;
    }
    ASSERT_TRUE(r.status == 200 || r.status == 400 || r.status == 403 || r.status == 404 ||
                r.status == 422)
        << r.status;
    if (internal > 5) break;
  }
}

}  // namespace
}  // namespace layer::origin::testing
