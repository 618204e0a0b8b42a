#include <algorithm>
#include <random>

#include "engine_test_util.h"

namespace layer::origin::testing {
namespace {

class QueryTest : public EngineTest {
 protected:
  std::vector<int64_t> Ids(std::string_view ns, std::string_view body) {
    Reply r = Query(ns, body);
    EXPECT_EQ(r.status, 200) << body << " -> " << r.body;
    std::vector<int64_t> ids;
    if (r.status != 200) return ids;
    for (const auto& row : r.json.at("rows").as_array())
      ids.push_back(row.at("id").to_number<int64_t>());
    return ids;
  }
  std::vector<double> Dists(std::string_view ns, std::string_view body) {
    Reply r = Query(ns, body);
    std::vector<double> d;
    if (r.status != 200) return d;
    for (const auto& row : r.json.at("rows").as_array())
      d.push_back(row.at("$dist").to_number<double>());
    return d;
  }
};

using IdList = std::vector<int64_t>;

TEST_F(QueryTest, DefaultProjectionIsIdOnly) {  // Q-01, PR-02
  ASSERT_EQ(Write("p", kFixtureP0).status, 200);
  EXPECT_EQ(Rows("p", R"({"rank_by":["id","asc"],"limit":2,"include_attributes":false})"),
            R"([{"id":1},{"id":2}])");
  EXPECT_EQ(Rows("p", R"({"rank_by":["id","asc"],"limit":2})"), R"([{"id":1},{"id":2}])");
  EXPECT_EQ(Rows("p", R"({"rank_by":["id","asc"],"limit":1,"include_attributes":[]})"),
            R"([{"id":1}])");
  Reply r = Query("p", R"({"rank_by":["id","asc"],"limit":1})");
  EXPECT_TRUE(r.json.as_object().contains("billing"));
  EXPECT_TRUE(r.json.as_object().contains("performance"));
}

TEST_F(QueryTest, AnnAndKnnCosine) {  // Q-02, Q-03
  ASSERT_EQ(Write("p", kFixtureP0).status, 200);
  const char* ann =
      R"({"rank_by":["vector","ANN",[1.0,0.0]],"limit":10,"filters":["And",[["category","Eq","mammal"],["public","Eq",1]]],"include_attributes":["category","score"]})";
  Reply r = Query("p", ann);
  ASSERT_EQ(r.status, 200) << r.body;
  const auto& rows = r.json.at("rows").as_array();
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_NE(r.body.find(R"({"id":1,"$dist":0.0,"category":"mammal","score":10})"),
            std::string::npos);
  EXPECT_NEAR(rows[1].at("$dist").as_double(), 0.0299, 1e-4);
  EXPECT_EQ(rows[1].at("id"), 3);
  Reply k = Query(
      "p",
      R"({"rank_by":["vector","kNN",[1.0,0.0]],"limit":2,"filters":["public","Eq",1],"include_attributes":["category","score"]})");
  EXPECT_EQ(RawField(k.body, "rows"), RawField(r.body, "rows"));
  EXPECT_EQ(Query("p", R"({"rank_by":["vector","kNN",[1.0,0.0]],"limit":2})").status, 400);
}

TEST_F(QueryTest, AnnOnFixtureF) {  // Q-04, PR-08
  ASSERT_EQ(Write("f", kFixtureF).status, 200);
  EXPECT_EQ(Ids("f", R"({"rank_by":["vector","ANN",[0.9,0.1]],"limit":5})"),
            (IdList{1, 3, 5, 4, 6}));
  auto d = Dists("f", R"({"rank_by":["vector","ANN",[0.9,0.1]],"limit":5})");
  ASSERT_EQ(d.size(), 5u);
  EXPECT_NEAR(d[0], 0.0061, 1e-4);
  EXPECT_NEAR(d[1], 0.0090, 1e-4);
  EXPECT_NEAR(d[2], 0.1118, 1e-4);
  EXPECT_NEAR(d[3], 0.5809, 1e-4);
  EXPECT_NEAR(d[4], 0.7805, 1e-4);
  Reply r = Query(
      "f",
      R"({"rank_by":["vector","ANN",[1,0]],"limit":3,"include_attributes":["vector"],"vector_encoding":"base64"})");
  EXPECT_EQ(r.json.at("rows").at(0).at("vector"), "AACAPwAAAAA=");
  EXPECT_EQ(r.json.at("rows").at(1).at("vector"), "zcxMP83MTD4=");
}

TEST_F(QueryTest, EuclideanSquaredTiesAndF32Formatting) {  // Q-05, Q-07
  std::string rows = R"({"distance_metric":"euclidean_squared","upsert_rows":[)";
  rows +=
      R"({"id":7,"vector":[0.7,0.7],"hello":"world"},{"id":3,"vector":[0.3,0.3]},{"id":6,"vector":[0.3,0.3]})";
  for (int i = 10; i <= 18; ++i) {
    double v = i / 10.0;
    rows += ",{\"id\":" + std::to_string(i) + ",\"vector\":[" + std::to_string(v) + "," +
            std::to_string(v) + "]}";
  }
  rows += "]}";
  ASSERT_EQ(Write("e", rows).status, 200);
  EXPECT_EQ(
      Ids("e",
          R"({"top_k":5,"rank_by":["vector","ANN",[0.8,0.7]],"include_attributes":["hello","vector"]})"),
      (IdList{7, 10, 11, 3, 6}));
  auto d = Dists("e", R"({"top_k":5,"rank_by":["vector","ANN",[0.8,0.7]]})");
  EXPECT_NEAR(d[0], 0.01, 1e-6);
  EXPECT_NEAR(d[3], 0.41, 1e-6);
  EXPECT_EQ(Ids("e", R"({"top_k":5,"rank_by":["vector","ANN",[1.5,1.6]]})"),
            (IdList{15, 16, 14, 17, 18}));
  Reply r = Query(
      "e",
      R"({"top_k":1,"rank_by":["id","asc"],"filters":["id","Eq",7],"include_attributes":true})");
  EXPECT_EQ(RawField(r.body, "rows"), R"([{"id":7,"vector":[0.7,0.7],"hello":"world"}])");
}

TEST_F(QueryTest, LimitsAndValidation) {  // Q-08..Q-13
  ASSERT_EQ(Write("p", kFixtureP0).status, 200);
  EXPECT_EQ(Ids("p", R"({"rank_by":["id","asc"],"top_k":2})"), (IdList{1, 2}));
  EXPECT_EQ(Ids("p", R"({"rank_by":["id","asc"],"limit":{"total":2}})"), (IdList{1, 2}));
  struct Case {
    const char* body;
    int status;
    const char* error;
  } cases[] = {
      {R"({"rank_by":["id","asc"],"limit":0})", 400, "💔 top_k must be between 1 and 10000"},
      {R"({"rank_by":["id","asc"],"top_k":10001})", 400, "💔 top_k must be between 1 and 10000"},
      {R"({"rank_by":["id","asc"]})", 400, "💔 rank_by queries must specify top_k or limit"},
      {R"({"rank_by":"bad","limit":1})", 422,
       "Failed to deserialize the JSON body into the target type: data did not match any variant "
       "of enum a valid variant of RankInput"},
      {R"({"rank_by":[],"limit":1})", 400, "💔 rank_by cannot be empty"},
      {R"({"rank_by":["vector","BAD",[1.0,0.0]],"limit":1})", 422,
       "Failed to deserialize the JSON body into the target type: data did not match any variant "
       "of enum a valid variant of RankInput"},
      {R"({"rank_by":["id","asc"],"limit":"bad"})", 422,
       "Failed to deserialize the JSON body into the target type: data did not match any variant "
       "of untagged enum LimitInput"},
      {R"({"rank_by":["id","asc"],"limit":1,"consistency":{"level":"bad"}})", 422,
       "Failed to deserialize the JSON body into the target type: consistency.level: unknown "
       "variant `bad`, expected `strong` or `eventual`"},
      {R"({"rank_by":["id","asc"],"limit":1,"consistency":"eventual"})", 422,
       "Failed to deserialize the JSON body into the target type: consistency: invalid type: "
       "string \"eventual\", expected struct Consistency"},
      {R"({"rank_by":["id","asc"],"limit":1,"consistency":{}})", 422,
       "Failed to deserialize the JSON body into the target type: consistency: missing field "
       "`level`"},
      {R"({"rank_by":["id","asc"],"limit":1,"consistency":{"level":1}})", 400,
       "Failed to parse the request body as JSON: consistency.level: expected value"},
      {R"({"rank_by":["id","asc"],"limit":1,"vector_encoding":"bad"})", 422,
       "Failed to deserialize the JSON body into the target type: vector_encoding: unknown "
       "variant `bad`, expected `float` or `base64`"},
      {R"({"rank_by":["id","asc"],"limit":1,"include_attributes":["title"],"exclude_attributes":["text"]})",
       400, "💔 cannot specify both include_attributes and exclude_attributes"},
      {R"({"rank_by":["id","asc"],"limit":1,"exclude_attributes":true})", 422,
       "Failed to deserialize the JSON body into the target type: invalid type: boolean `true`, "
       "expected a sequence"},
      {R"({"rank_by":["id","asc"],"limit":1,"include_attributes":["missing_attr"]})", 400,
       "💔 attribute \"missing_attr\" not found in schema, cannot be part of "
       "`include_attributes`. consider passing `include_attributes=True` to return all attribute "
       "data instead"},
      {R"({"rank_by":["text","BM25","walrus"],"limit":{"total":3,"per":{"attributes":["category"],"limit":1}}})",
       400, "💔 `limit.per` is only supported when ranking by an attribute"},
      {R"({"rank_by":["text","BM25",["quick","fish"]],"limit":10})", 400,
       "💔 invalid input '[quick, fish]' for rank_by field \"text\", expecting string"},
  };
  for (const auto& c : cases) {
    Reply r = Query("p", c.body);
    EXPECT_EQ(r.status, c.status) << c.body;
    EXPECT_EQ(r.error(), c.error) << c.body;
  }
  EXPECT_EQ(Ids("p", R"({"rank_by":["id","asc"],"limit":1,"consistency":{"level":"eventual"}})"),
            (IdList{1}));
  Reply r = Query("p", "{not json");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(Query("p-missing", R"({"rank_by":["id","asc"],"limit":1})").error(),
            "🤷 namespace 'p-missing' was not found");
}

TEST_F(QueryTest, Bm25ScoresAndTies) {  // B-01..B-03, B-08
  ASSERT_EQ(Write("p", kFixtureP0).status, 200);
  Reply r = Query(
      "p",
      R"({"rank_by":["text","BM25","quick walrus"],"limit":10,"filters":["category","Eq","mammal"],"include_attributes":["text"]})");
  ASSERT_EQ(r.status, 200) << r.body;
  const auto& rows = r.json.at("rows").as_array();
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].at("id"), 3);
  EXPECT_NEAR(rows[0].at("$dist").as_double(), 1.3988, 1e-4);
  EXPECT_EQ(rows[0].at("text"), "quick walrus sea mammal");
  EXPECT_EQ(rows[1].at("id"), 1);
  EXPECT_NEAR(rows[1].at("$dist").as_double(), 0.4532, 1e-4);

  ASSERT_EQ(Write("f", kFixtureF).status, 200);
  EXPECT_EQ(Ids("f", R"({"rank_by":["text","BM25","quick walrus"],"limit":5})"), (IdList{3, 1, 5}));
  auto d = Dists("f", R"({"rank_by":["text","BM25","quick walrus"],"limit":5})");
  EXPECT_NEAR(d[0], 2.0233, 1e-4);
  EXPECT_NEAR(d[1], 1.0116, 1e-4);
  EXPECT_NEAR(d[2], 1.0116, 1e-4);
  EXPECT_EQ(Ids("f", R"({"rank_by":["text","BM25","fish"],"limit":5})"), (IdList{6}));
  EXPECT_EQ(Ids("f", R"({"rank_by":["tokens","BM25",["walrus"]],"limit":5})"), (IdList{1, 3}));
  EXPECT_EQ(Ids("f", R"({"rank_by":["text","BM25","clown",{"last_as_prefix":true}],"limit":5})"),
            (IdList{2, 6}));
  r = Query("f", R"({"rank_by":["tokens","BM25","walrus"],"limit":5})");
  EXPECT_EQ(r.error(), "💔 invalid input 'walrus' for rank_by field \"tokens\", expecting []string");
}

TEST_F(QueryTest, Bm25StemmingAndCombinators) {  // B-04, B-05, B-10, B-11
  ASSERT_EQ(
      Write(
          "b",
          R"({"upsert_columns":{"id":[1,2,3,4],"blabla":["the fox is quick and brown","fox jumped over the lazy dog","the dog is lazy and brown","walrus is slow and inferior"],"fact_id":["a","b","c","d"]},"schema":{"blabla":{"type":"string","full_text_search":{"language":"english","stemming":true,"case_sensitive":false,"remove_stopwords":true}}}})")
          .status,
      200);
  EXPECT_EQ(Ids("b", R"({"top_k":10,"rank_by":["blabla","BM25","fox jumping"]})"), (IdList{2, 1}));
  ASSERT_EQ(
      Write(
          "b",
          R"({"upsert_rows":[{"id":7,"blabla":"walruses can live up to 40 years","fact_id":"e"}]})")
          .status,
      200);
  EXPECT_EQ(
      Ids("b",
          R"({"top_k":2,"rank_by":["Sum",[["blabla","BM25","walrus tusk"],["blabla","BM25","jumping fox"]]],"filters":["fact_id","NotEq","z"]})"),
      (IdList{2, 4}));
  EXPECT_EQ(
      Ids("b",
          R"({"top_k":10,"rank_by":["Max",[["blabla","BM25","lazy"],["Product",0.1,["fact_id","Eq","d"]]]]})"),
      (IdList{3, 2, 4}));  // doc 3 is shorter after stopword removal
  ASSERT_EQ(
      Write(
          "b",
          R"({"upsert_rows":[{"id":8,"blabla":"row based upsert format is cool","fact_id":"f"},{"id":9,"blabla":"dict format of row based upsert also works, but isn't typed as well","fact_id":"g"}]})")
          .status,
      200);
  EXPECT_EQ(Ids("b", R"({"top_k":10,"rank_by":["blabla","BM25","row based upsert"]})"),
            (IdList{8, 9}));
  EXPECT_EQ(Ids("b", R"({"top_k":10,"rank_by":["Product",["blabla","BM25","fox"],2]})"),
            (IdList{1, 2}));
  EXPECT_EQ(Ids("b", R"({"top_k":10,"rank_by":["Product",2,["Sum",[["blabla","BM25","fox"]]]]})"),
            (IdList{1, 2}));

  ASSERT_EQ(
      Write(
          "w",
          R"({"upsert_rows":[{"id":1,"text":"Walruses are large marine mammals with long tusks and whiskers"}],"schema":{"text":{"type":"string","full_text_search":{"stemming":true}}}})")
          .status,
      200);
  auto q = [](const std::string& f) {
    return R"({"top_k":10,"rank_by":["text","BM25","walrus whisker"],"filters":)" + f + "}";
  };
  EXPECT_EQ(Ids("w", q(R"(["text","ContainsAllTokens","marine mammals"])")), (IdList{1}));
  EXPECT_EQ(Ids("w", q(R"(["text","ContainsAllTokens","marine mammals short"])")), (IdList{}));
  EXPECT_EQ(Ids("w", q(R"(["Not",["text","ContainsAllTokens","marine mammals"]])")), (IdList{}));
  EXPECT_EQ(Ids("w", q(R"(["Not",["Not",["text","ContainsAllTokens","marine mammals"]]])")),
            (IdList{1}));
  EXPECT_EQ(
      Ids("w",
          q(R"(["Or",[["text","ContainsAllTokens","marine things"],["Or",[["Not",["Not",["And",[["text","ContainsAllTokens","marine mammals"],["id","In",[0,1,2]]]]]]]]]])")),
      (IdList{1}));
}

TEST_F(QueryTest, PreTokenizedArray) {  // B-07
  ASSERT_EQ(
      Write(
          "t",
          R"({"schema":{"content":{"type":"[]string","full_text_search":{"tokenizer":"pre_tokenized_array"}}},"upsert_rows":[{"id":1,"content":["jumped","over","the","lazy","dog"]},{"id":2,"content":["the","lazy","dog","is","brown"]}]})")
          .status,
      200);
  EXPECT_EQ(Ids("t", R"({"top_k":10,"rank_by":["content","BM25",["jumped","over"]]})"),
            (IdList{1}));
  EXPECT_EQ(Ids("t", R"({"top_k":10,"rank_by":["content","BM25",["dog"]]})").size(), 2u);
  Reply r = Query("t", R"({"top_k":10,"rank_by":["content","BM25","jumped"]})");
  EXPECT_NE(
      r.error().find("invalid input 'jumped' for rank_by field \"content\", expecting []string"),
      std::string::npos);
}

TEST_F(QueryTest, SparseKnn) {  // SP-01
  ASSERT_EQ(Write("p", kFixtureP0).status, 200);
  Reply r = Query(
      "p",
      R"({"rank_by":["sparse_vector","SparseKNN",{"0":1.0,"2":0.1}],"limit":10,"include_attributes":["category"]})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(
      RawField(r.body, "rows"),
      R"([{"id":1,"$dist":1.05,"category":"mammal"},{"id":3,"$dist":0.82,"category":"mammal"}])");
}

TEST_F(QueryTest, AttributeOrdering) {  // O-01..O-05
  ASSERT_EQ(Write("p", kFixtureP0).status, 200);
  EXPECT_EQ(
      Rows(
          "p",
          R"({"rank_by":[["category","asc"],["score","desc"]],"limit":3,"include_attributes":["category","score"]})"),
      R"([{"id":2,"category":"fish","score":7},{"id":1,"category":"mammal","score":10},{"id":3,"category":"mammal","score":5}])");
  EXPECT_EQ(
      Rows(
          "p",
          R"({"rank_by":["id","asc"],"limit":{"total":3,"per":{"attributes":["category"],"limit":1}},"include_attributes":["category"]})"),
      R"([{"id":1,"category":"mammal"},{"id":2,"category":"fish"}])");
  ASSERT_EQ(Write("f", kFixtureF).status, 200);
  EXPECT_EQ(Ids("f", R"({"rank_by":["score","desc"],"limit":6})"), (IdList{4, 1, 6, 2, 3, 5}));
  EXPECT_EQ(Ids("f", R"({"rank_by":["category","asc"],"limit":6})"), (IdList{4, 2, 6, 1, 3, 5}));
  EXPECT_EQ(Ids("f", R"({"rank_by":[["category","asc"],["score","desc"]],"limit":6})"),
            (IdList{4, 6, 2, 1, 3, 5}));
  EXPECT_EQ(Ids("f", R"({"rank_by":["id","desc"],"limit":2})"), (IdList{6, 5}));
  EXPECT_EQ(
      Rows(
          "f",
          R"({"rank_by":["category","asc"],"limit":{"total":5,"per":{"attributes":["category"],"limit":1}},"include_attributes":["category","score"]})"),
      R"([{"id":4,"category":"bird","score":12},{"id":2,"category":"fish","score":7},{"id":1,"category":"mammal","score":10}])");
}

TEST_F(QueryTest, NullsOrderFirstAscendingLastDescending) {  // O-07
  ASSERT_EQ(
      Write("n", R"({"upsert_rows":[{"id":1,"a":2},{"id":2},{"id":3,"a":1},{"id":4}]})").status,
      200);
  EXPECT_EQ(Ids("n", R"({"rank_by":["a","asc"],"limit":10})"), (IdList{2, 4, 3, 1}));
  EXPECT_EQ(Ids("n", R"({"rank_by":["a","desc"],"limit":10})"), (IdList{1, 3, 2, 4}));
  EXPECT_EQ(Ids("n", R"({"rank_by":["a","asc"],"limit":10,"filters":["a","Lt",2]})"),
            (IdList{2, 4, 3}));
  EXPECT_EQ(Ids("n", R"({"rank_by":["id","asc"],"limit":10,"filters":["a","Eq",null]})"),
            (IdList{2, 4}));
  EXPECT_EQ(Ids("n", R"({"rank_by":["id","asc"],"limit":10,"filters":["a","Gte",1]})"),
            (IdList{1, 3}));
}

TEST_F(QueryTest, FiltersOnFixtureF) {  // FL-05
  ASSERT_EQ(Write("f", kFixtureF).status, 200);
  struct Case {
    const char* filter;
    IdList ids;
  } cases[] = {
      {R"(["category","Eq","mammal"])", {1, 3, 5}},
      {R"(["category","NotEq","fish"])", {1, 3, 4, 5}},
      {R"(["category","In",["mammal","bird"]])", {1, 3, 4, 5}},
      {R"(["category","NotIn",["fish"]])", {1, 3, 4, 5}},
      {R"(["tags","Contains","mammal"])", {1, 3, 5}},
      {R"(["tags","NotContains","reef"])", {1, 2, 3, 4, 5}},
      {R"(["tags","ContainsAny",["reef","sky"]])", {4, 6}},
      {R"(["tags","NotContainsAny",["desert"]])", {1, 2, 3, 4, 5, 6}},
      {R"(["score","Lt",10])", {2, 3, 5, 6}},
      {R"(["score","Lte",9])", {2, 3, 5, 6}},
      {R"(["score","Gt",5])", {1, 2, 4, 6}},
      {R"(["score","Gte",7])", {1, 2, 4, 6}},
      {R"(["scores","AnyLt",2])", {1, 5}},
      {R"(["scores","AnyLte",3])", {1, 2, 3, 5}},
      {R"(["scores","AnyGt",8])", {3, 6}},
      {R"(["scores","AnyGte",9])", {3, 6}},
      {R"(["name","Glob","c*"])", {3}},
      {R"(["name","NotGlob","z*"])", {1, 2, 3, 4, 5, 6}},
      {R"(["name","NotIGlob","z*"])", {1, 2, 3, 4, 5, 6}},
      {R"(["name","IGlob","E*"])", {5}},
      {R"(["name","Regex","^(alpha|delta)$"])", {1, 4}},
      {R"(["text","ContainsAllTokens","quick mammal"])", {3}},
      {R"(["text","ContainsAnyToken","coral narwhal"])", {1, 6}},
      {R"(["text","ContainsTokenSequence","sea mammal"])", {3}},
      {R"(["tokens","ContainsAllTokens",["walrus","mammal"]])", {1, 3}},
      {R"(["tokens","ContainsAnyToken",["reef","narwhal"]])", {1, 6}},
      {R"(["tokens","ContainsTokenSequence",["walrus","narwhal"]])", {1}},
      {R"(["And",[["category","Eq","mammal"],["public","Eq",1]]])", {1, 3}},
      {R"(["Or",[["category","Eq","bird"],["tags","Contains","reef"]]])", {4, 6}},
      {R"(["Not",["category","Eq","fish"]])", {1, 3, 4, 5}},
      {R"(["published_at","Gte","2026-05-30T00:00:00Z"])", {1, 3}},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(
        Ids("f", std::string(R"({"rank_by":["id","asc"],"limit":10,"filters":)") + c.filter + "}"),
        c.ids)
        << c.filter;
  }
  EXPECT_EQ(
      Rows(
          "f",
          R"({"rank_by":["id","asc"],"filters":["tokens","ContainsTokenSequence",["walrus","narwhal"]],"limit":10,"include_attributes":["tokens"]})"),
      R"([{"id":1,"tokens":["walrus","narwhal","mammal"]}])");
}

TEST_F(QueryTest, FilterNullsInAndTypeErrors) {  // FL-01..FL-04, FL-08
  ASSERT_EQ(
      Write(
          "s",
          R"({"distance_metric":"cosine_distance","upsert_rows":[{"id":1,"vector":[1,2],"foo":"bar","numbers":[1,2,3],"maybeNull":null,"bool":true},{"id":2,"vector":[3,4],"foo":"baz","numbers":[2,3,4],"maybeNull":null,"bool":true},{"id":3,"vector":[3,4],"foo":"baz","numbers":[17],"maybeNull":"oh boy!","bool":true}]})")
          .status,
      200);
  EXPECT_EQ(
      Ids("s",
          R"({"rank_by":["vector","ANN",[1,1]],"filters":["And",[["Or",[["numbers","In",[2,3]],["numbers","In",[1,7]]]],["Or",[["foo","Eq","bar"],["numbers","In",[4]]]],["foo","NotEq",null],["maybeNull","Eq",null],["bool","Eq",true]]],"top_k":10})"),
      (IdList{2, 1}));
  EXPECT_EQ(Ids("s", R"({"rank_by":["id","asc"],"filters":["numbers","In",[2,4]],"top_k":10})"),
            (IdList{1, 2}));
  ASSERT_EQ(
      Write(
          "u",
          R"({"upsert_rows":[{"id":7,"count":1,"users":["jan","simon"]},{"id":9,"count":2,"users":["bojan","morgan","simon"]}]})")
          .status,
      200);
  EXPECT_EQ(
      Ids("u",
          R"({"rank_by":["id","asc"],"top_k":10,"filters":["Or",[["count","Eq",1],["users","In","bojan"]]]})"),
      (IdList{7, 9}));
  EXPECT_EQ(
      Ids("u",
          R"({"rank_by":["id","asc"],"top_k":10,"filters":["And",[["count","Eq",1],["users","In","bojan"]]]})"),
      (IdList{}));

  ASSERT_EQ(
      Write(
          "t",
          R"({"upsert_rows":[{"id":1,"tags":["python","javascript","rust"]},{"id":2,"tags":["javascript","typescript","react"]},{"id":3,"tags":["rust","go","c++"]},{"id":4,"tags":["python","django","flask"]}]})")
          .status,
      200);
  EXPECT_EQ(
      Ids("t",
          R"({"rank_by":["id","asc"],"top_k":10,"filters":["tags","ContainsAny",["rust","typescript"]]})"),
      (IdList{1, 2, 3}));
  EXPECT_EQ(
      Ids("t",
          R"({"rank_by":["id","asc"],"top_k":10,"filters":["tags","NotContainsAny",["javascript","rust","go"]]})"),
      (IdList{4}));
  Reply r = Query(
      "t", R"({"rank_by":["id","asc"],"top_k":10,"filters":["tags","ContainsAny","python"]})");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(
      r.error(),
      "filter error in key `tags`: type mismatch, ContainsAny expects []string, but got 'python'");
  r = Query(
      "t",
      R"({"rank_by":["id","asc"],"top_k":10,"filters":["tags","Contains",["python","javascript"]]})");
  EXPECT_EQ(r.error(),
            "filter error in key `tags`: type mismatch, Contains expects string, but got '[python, "
            "javascript]'");
  r = Query("t", R"({"rank_by":["id","asc"],"top_k":10,"filters":["tags","Bogus",1]})");
  EXPECT_EQ(r.status, 422);

  ASSERT_EQ(Write("f", kFixtureF).status, 200);
  r = Query(
      "f",
      R"({"rank_by":["id","asc"],"top_k":10,"filters":["text","ContainsAllTokens",["rust","ranking"]]})");
  EXPECT_EQ(r.error(),
            "filter error in key `text`: type mismatch, ContainsAllTokens expects string, but got "
            "'[rust, ranking]'");
  r = Query(
      "f", R"({"rank_by":["id","asc"],"top_k":10,"filters":["tokens","ContainsAllTokens","Foo"]})");
  EXPECT_EQ(r.error(),
            "filter error in key `tokens`: type mismatch, ContainsAllTokens expects []string, but "
            "got 'Foo'");
}

TEST_F(QueryTest, FuzzyFilter) {  // FL-06
  ASSERT_EQ(Write("p", kFixtureP0).status, 200);
  EXPECT_EQ(
      Rows(
          "p",
          R"({"rank_by":["id","asc"],"limit":10,"filters":["title","Fuzzy","walruss",{"max_edit_distance":[{"min_query_chars":6,"distance":1}]}],"include_attributes":["title"]})"),
      R"([{"id":1,"title":"walrus den"},{"id":3,"title":"quick walrus"}])");
}

TEST_F(QueryTest, Projection) {  // PR-01, PR-03, PR-07
  ASSERT_EQ(Write("p", kFixtureP0).status, 200);
  EXPECT_EQ(
      Rows("p", R"({"rank_by":["id","asc"],"limit":1,"include_attributes":true})"),
      R"([{"id":1,"vector":[1.0,0.0],"sparse_vector":{"0":1.0,"2":0.5},"category":"mammal","public":1,"title":"walrus den","text":"walrus narwhal arctic mammal","score":10,"tags":["arctic","mammal"],"published_at":"2026-05-30T00:00:00.000000000Z"}])");
  EXPECT_EQ(
      Rows(
          "p",
          R"({"rank_by":["id","asc"],"limit":2,"exclude_attributes":["vector","sparse_vector","text"]})"),
      R"([{"id":1,"category":"mammal","public":1,"title":"walrus den","score":10,"tags":["arctic","mammal"],"published_at":"2026-05-30T00:00:00.000000000Z"},{"id":2,"category":"fish","public":0,"title":"reef fish","score":7,"tags":["fish"],"published_at":"2026-05-29T00:00:00.000000000Z"}])");
  ASSERT_EQ(Write("p", R"({"upsert_rows":[{"id":9,"vector":[2,2]}]})").status, 200);
  EXPECT_EQ(Rows("p", R"({"rank_by":["id","desc"],"limit":1,"include_attributes":true})"),
            R"([{"id":9,"vector":[2.0,2.0]}])");
}

TEST_F(QueryTest, Aggregations) {  // AG-01..AG-07
  ASSERT_EQ(Write("f", kFixtureF).status, 200);
  Reply r = Query(
      "f",
      R"({"aggregate_by":{"count":["Count"]},"group_by":[{"tag":["ForEachUnique","tags"]}],"top_k":10})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(
      RawField(r.body, "aggregation_groups"),
      R"([{"tag":"arctic","count":1},{"tag":"bird","count":1},{"tag":"fish","count":2},{"tag":"forest","count":1},{"tag":"mammal","count":3},{"tag":"reef","count":1},{"tag":"sea","count":1},{"tag":"sky","count":1}])");
  EXPECT_FALSE(r.json.as_object().contains("rows"));
  r = Query("f", R"({"aggregate_by":{"count":["Count"]},"group_by":["category"],"top_k":10})");
  EXPECT_EQ(
      RawField(r.body, "aggregation_groups"),
      R"([{"category":"bird","count":1},{"category":"fish","count":2},{"category":"mammal","count":3}])");
  r = Query("f", R"({"aggregate_by":{"score_sum":["Sum","score"]},"filters":["public","Eq",1]})");
  EXPECT_EQ(RawField(r.body, "aggregations"), R"({"score_sum":36})");
  r = Query("f", R"({"aggregate_by":{"count":["Count"]},"filters":["public","Eq",1]})");
  EXPECT_EQ(RawField(r.body, "aggregations"), R"({"count":4})");
  r = Query("f", R"({"aggregate_by":{"count":["Count","id"]},"filters":["public","Eq",1]})");
  EXPECT_EQ(RawField(r.body, "aggregations"), R"({"count":4})");
  EXPECT_EQ(Query("f", R"({"aggregate_by":{"count":["Count","score"]}})").error(),
            "💔 aggregate_by with attributes other than \"id\" not yet supported");
  EXPECT_EQ(
      Query("f", R"({"aggregate_by":{"count":["Count"],"score_sum":["Sum","score"]}})").error(),
      "💔 aggregate_by currently requires exactly one function");
  EXPECT_EQ(Query("f", R"({"aggregate_by":{"count":["Count"]},"top_k":10})").error(),
            "💔 top_k is not supported in aggregation queries without group_by");
  EXPECT_EQ(Query("f", R"({"aggregate_by":{"count":["Count"]},"limit":10})").status, 422);
}

TEST_F(QueryTest, MultiQuery) {  // MQ-01..MQ-03
  ASSERT_EQ(Write("f", kFixtureF).status, 200);
  Reply r = Do(
      "POST", "/v2/namespaces/f/query",
      R"({"queries":[{"rank_by":["vector","ANN",[1,0]],"limit":2,"include_attributes":["vector"]},{"rank_by":["tokens","BM25",["fish"]],"limit":2}],"rank_by":["id","desc"],"filters":["public","Eq",0],"vector_encoding":"base64"})",
      "stainless_overload=multiQuery");
  ASSERT_EQ(r.status, 200) << r.body;
  const auto& results = r.json.at("results").as_array();
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[0].at("rows").at(0).at("vector"), "AACAPwAAAAA=");
  EXPECT_EQ(results[0].at("rows").at(1).at("id"), 3);
  EXPECT_EQ(results[1].at("rows").as_array().size(), 1u);
  EXPECT_EQ(results[1].at("rows").at(0).at("id"), 6);
  EXPECT_NEAR(results[1].at("rows").at(0).at("$dist").as_double(), 1.5404, 1e-4);
  EXPECT_TRUE(r.json.as_object().contains("billing"));
  EXPECT_TRUE(r.json.as_object().contains("performance"));

  EXPECT_EQ(Query("f", R"({"queries":"bad"})").error(),
            "Failed to deserialize the JSON body into the target type: invalid type: "
            "string \"bad\", expected a sequence");
  EXPECT_EQ(Query("f", R"({"queries":[]})").error(), "💔 must send at least one sub-query");
  std::string many = R"({"queries":[)";
  for (int i = 0; i < 17; ++i)
    many += std::string(i ? "," : "") + R"({"rank_by":["id","asc"],"limit":1})";
  many += "]}";
  EXPECT_EQ(Query("f", many).error(),
            "💔 multi-query exceeds per-namespace concurrency budget: requires 17 permits, max is "
            "16 (see https://turbopuffer.com/docs/limits)");
  EXPECT_EQ(Query("f", R"({"queries":["bad"]})").error(),
            "Failed to deserialize the JSON body into the target type: invalid type: string "
            "\"bad\", expected struct QueryRankBy");
  r = Query("f", R"({"queries":[{"aggregate_by":{"count":["Count"]}}]})");
  EXPECT_EQ(r.json.at("results").at(0).at("aggregations").at("count"), 6);
  r = Query(
      "f",
      R"({"queries":[{"rank_by":["id","asc"],"limit":3},{"rank_by":["id","desc"],"limit":3}],"rerank_by":["RRF"]})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json.at("results").as_array().size(), 1u);
}

TEST_F(QueryTest, RecallAndExplain) {  // RC-01, RC-02, EX-01
  ASSERT_EQ(Write("p", kFixtureP0).status, 200);
  Reply r = Do("POST", "/v1/namespaces/p/_debug/recall", R"({"num":1,"top_k":2})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json.at("avg_recall").to_number<double>(), 1.0);
  EXPECT_EQ(r.json.at("avg_exhaustive_count").to_number<double>(), 2.0);
  EXPECT_EQ(r.json.at("avg_ann_count").to_number<double>(), 2.0);
  EXPECT_FALSE(r.json.as_object().contains("ground_truth"));
  r = Do("POST", "/v1/namespaces/p/_debug/recall",
         R"({"num":1,"top_k":2,"filters":["public","Eq",1]})");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(Do("POST", "/v1/namespaces/p/_debug/recall", R"({"num":0,"top_k":1})").error(),
            "💔 samples must be between 1 and 200");
  EXPECT_EQ(Do("POST", "/v1/namespaces/p/_debug/recall", R"({"num":1,"top_k":0})").error(),
            "💔 top_k must be between 1 and 10000");
  EXPECT_EQ(Do("POST", "/v1/namespaces/p/_debug/recall",
               R"({"num":2,"top_k":1,"rank_by":["vector","ANN",[1.0,0.0]]})")
                .error(),
            "💔 rank_by and num cannot be specified together");
  EXPECT_EQ(Do("POST", "/v1/namespaces/p/_debug/recall", R"({"num":"bad","top_k":1})").error(),
            "Failed to deserialize the JSON body into the target type: num: invalid type: string "
            "\"bad\", expected usize");
  EXPECT_EQ(Do("POST", "/v1/namespaces/p/_debug/recall", R"({"num":1,"top_k":1,"filters":"bad"})")
                .error(),
            "Failed to deserialize the JSON body into the target type: filters: data did not "
            "match any variant of untagged enum FiltersInput");
  EXPECT_EQ(Do("POST", "/v1/namespaces/p/_debug/recall",
               R"({"num":1,"top_k":1,"include_ground_truth":"bad"})")
                .error(),
            "Failed to deserialize the JSON body into the target type: include_ground_truth: "
            "invalid type: string \"bad\", expected a boolean");

  r = Do("POST", "/v2/namespaces/p/explain_query",
         R"({"rank_by":["text","BM25","walrus"],"filters":["public","Eq",1],"limit":3})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(r.json.at("plan_text").is_string());
  EXPECT_EQ(Do("POST", "/v1/namespaces/p/query", R"({"rank_by":["id","asc"],"limit":1})").body,
            Query("p", R"({"rank_by":["id","asc"],"limit":1})").body);
}

}  // namespace
}  // namespace layer::origin::testing

namespace layer::origin::testing {
namespace {

using ExtrasTest = EngineTest;

TEST_F(ExtrasTest, AttributeSaturateDecayRankExpressions) {
  ASSERT_EQ(
      Write(
          "n",
          R"({"upsert_rows":[{"id":1,"pop":1},{"id":2,"pop":5},{"id":3,"pop":0},{"id":4,"pop":3}]})")
          .status,
      200);
  EXPECT_EQ(Rows("n", R"({"rank_by":["Attribute","pop"],"top_k":10})"),
            R"([{"id":2,"$dist":5.0},{"id":4,"$dist":3.0},{"id":1,"$dist":1.0}])");
  EXPECT_EQ(
      Rows("n",
           R"({"rank_by":["Saturate",["Attribute","pop"],{"midpoint":1,"exponent":1}],"top_k":1})"),
      R"([{"id":2,"$dist":0.8333333}])");
  EXPECT_EQ(
      Rows("n",
           R"({"rank_by":["Decay",["Attribute","pop"],{"midpoint":1,"exponent":1}],"top_k":1})"),
      R"([{"id":3,"$dist":1.0}])");
}

TEST_F(ExtrasTest, IdenticalVectorsHaveZeroCosineDistance) {
  ASSERT_EQ(
      Write(
          "n",
          R"({"distance_metric":"cosine_distance","upsert_rows":[{"id":1,"vector":[0.1,0.2,0.7]}]})")
          .status,
      200);
  EXPECT_EQ(Rows("n", R"({"rank_by":["vector","ANN",[0.1,0.2,0.7]],"top_k":1})"),
            R"([{"id":1,"$dist":0.0}])");
}

TEST_F(ExtrasTest, JsonSyntaxErrorsArePlain400WithPosition) {
  ASSERT_EQ(Write("n", R"({"upsert_rows":[{"id":1}]})").status, 200);
  Reply r = Query("n", "{\"rank_by\":");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(
      r.error(),
      "Failed to parse the request body as JSON: EOF while parsing a value at line 1 column 11");
  r = Query("n", "{} x");
  EXPECT_EQ(r.error(),
            "Failed to parse the request body as JSON: trailing characters at line 1 column 4");
  r = Query("n", "{\"a\":\n  nope}");
  EXPECT_EQ(r.error(),
            "Failed to parse the request body as JSON: expected value at line 2 column 3");
}

TEST_F(ExtrasTest, LegacyV1WriteShapes) {
  Reply r = Do(
      "POST", "/v1/namespaces/old",
      R"({"ids":[1,2,3],"vectors":[[1,0],[0,1],[1,1]],"attributes":{"k":["a","b",null]},"distance_metric":"cosine_distance"})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Rows("old", R"({"rank_by":["id","asc"],"top_k":10,"include_attributes":["k"]})"),
            R"([{"id":1,"k":"a"},{"id":2,"k":"b"},{"id":3}])");
  r = Do(
      "POST", "/v1/namespaces/old",
      R"({"upserts":[{"id":4,"vector":[0.5,0.5],"attributes":{"k":"d"}},{"id":1,"vector":null}]})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Rows("old", R"({"rank_by":["id","asc"],"top_k":10,"include_attributes":["k"]})"),
            R"([{"id":2,"k":"b"},{"id":3},{"id":4,"k":"d"}])");
  EXPECT_EQ(Do("DELETE", "/v1/namespaces/old").status, 200);
  EXPECT_EQ(Do("GET", "/v1/namespaces/old").status, 404);
}

}  // namespace
}  // namespace layer::origin::testing

namespace layer::origin::testing {
namespace {

TEST_F(ExtrasTest, TokenFilterLastAsPrefix) {
  ASSERT_EQ(Write("f", kFixtureF).status, 200);
  Reply r = Query(
      "f",
      R"({"rank_by":["id","asc"],"limit":10,"filters":["text","ContainsAllTokens","quick wal",{"last_as_prefix":true}]})");
  EXPECT_EQ(RawField(r.body, "rows"), R"([{"id":3}])");
  r = Query(
      "f",
      R"({"rank_by":["id","asc"],"limit":10,"filters":["text","ContainsAnyToken","clown",{"last_as_prefix":true}]})");
  EXPECT_EQ(RawField(r.body, "rows"), R"([{"id":2},{"id":6}])");
}

TEST_F(ExtrasTest, MultiQueryValidatesRootConsistency) {
  ASSERT_EQ(Write("n", R"({"upsert_rows":[{"id":1}]})").status, 200);
  EXPECT_EQ(
      Query("n",
            R"({"queries":[{"rank_by":["id","asc"],"limit":1}],"consistency":{"level":"bad"}})")
          .status,
      422);
  EXPECT_EQ(
      Query(
          "n",
          R"({"queries":[{"rank_by":["id","asc"],"limit":1}],"consistency":{"level":"eventual"}})")
          .status,
      200);
}

// The query indexes (vector column, text index) are dropped by every write: a query after a
// write must see it, and id-range paging must agree with the filter.
TEST_F(QueryTest, IndexesFollowWritesAndPagingHonoursIdFilters) {
  ASSERT_EQ(Write("ix", R"({"distance_metric":"euclidean_squared","schema":{"t":{"type":"string","full_text_search":true}},"upsert_rows":[{"id":1,"vector":[0,0],"t":"red fox"},{"id":2,"vector":[5,5],"t":"blue fox"},{"id":3,"vector":[9,9],"t":"green"}]})").status, 200);
  EXPECT_EQ(Ids("ix", R"({"rank_by":["vector","ANN",[4,4]],"limit":1})"), IdList({2}));
  EXPECT_EQ(Ids("ix", R"({"rank_by":["t","BM25","green"],"limit":5})"), IdList({3}));
  ASSERT_EQ(Write("ix", R"({"upsert_rows":[{"id":4,"vector":[4,4],"t":"green fox"}],"deletes":[3]})").status, 200);
  EXPECT_EQ(Ids("ix", R"({"rank_by":["vector","ANN",[4,4]],"limit":1})"), IdList({4}));
  EXPECT_EQ(Dists("ix", R"({"rank_by":["vector","ANN",[4,4]],"limit":2})"), std::vector<double>({0, 2}));
  EXPECT_EQ(Ids("ix", R"({"rank_by":["t","BM25","green"],"limit":5})"), IdList({4}));
  EXPECT_EQ(Ids("ix", R"({"rank_by":["id","asc"],"limit":2,"filters":["id","Gt",1]})"), IdList({2, 4}));
  EXPECT_EQ(Ids("ix", R"({"rank_by":["id","asc"],"limit":5,"filters":["And",[["id","Gte",2],["id","Gt",0],["id","NotEq",4]]]})"), IdList({2}));
  EXPECT_EQ(Ids("ix", R"({"rank_by":["id","asc"],"limit":5,"filters":["Or",[["id","Gt",3],["id","Eq",1]]]})"), IdList({1, 4}));
}

}  // namespace
}  // namespace layer::origin::testing

namespace layer::origin::testing {
namespace {

// 203 rows (not a multiple of the column's 8-row blocks) of 12-d vectors with duplicates, so
// ties must break by id.
std::string VectorRows(std::string_view metric, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> coord(-8, 8);
  std::string rows;
  std::vector<std::string> vectors;
  for (int i = 0; i < 203; ++i) {
    std::string v;
    if (i % 10 == 9) {
      v = vectors[static_cast<size_t>(i) / 2];  // a duplicate: equal distances
    } else {
      for (int d = 0; d < 12; ++d) v += (d ? "," : "") + std::to_string(coord(rng) / 8.0);
    }
    vectors.push_back(v);
    rows += std::string(i ? "," : "") + "{\"id\":" + std::to_string(i * 3) + ",\"vector\":[" + v +
            "],\"g\":" + std::to_string(i % 4) + "}";
  }
  return "{\"distance_metric\":\"" + std::string(metric) + "\",\"upsert_rows\":[" + rows + "]}";
}

TEST_F(QueryTest, AnnColumnScanEqualsTheFilteredPathForEveryMetric) {
  for (std::string metric : {"cosine_distance", "euclidean_squared"}) {
    std::string ns = "col_" + metric;
    ASSERT_EQ(Write(ns, VectorRows(metric, 7)).status, 200);
    for (std::string q : {"[0.5,0.25,0,0,1,-1,0.125,0,0,0,0,0.5]", "[0,0,0,0,0,0,0,0,0,0,0,0]",
                          "[1,1,1,1,1,1,1,1,1,1,1,1]"}) {
      for (int limit : {1, 7, 8, 50, 203, 500}) {
        std::string lim = std::to_string(limit);
        std::string scan = Rows(ns, R"({"rank_by":["vector","ANN",)" + q + R"(],"limit":)" + lim +
                                        R"(,"include_attributes":["g"]})");
        // A filter that keeps every row takes the per-document path.
        std::string filtered =
            Rows(ns, R"({"rank_by":["vector","ANN",)" + q + R"(],"limit":)" + lim +
                         R"(,"include_attributes":["g"],"filters":["id","Gte",0]})");
        EXPECT_EQ(scan, filtered) << metric << " " << q << " " << limit;
        EXPECT_EQ(boost::json::parse(scan).as_array().size(),
                  static_cast<size_t>(std::min(limit, 203)));
      }
    }
  }
}

TEST_F(QueryTest, AnnRanksByExactDistanceThenId) {
  ASSERT_EQ(Write("exact", VectorRows("euclidean_squared", 11)).status, 200);
  std::vector<double> q = {0.5, 0.25, 0, 0, 1, -1, 0.125, 0, 0, 0, 0, 0.5};
  Reply all = Query("exact", R"({"rank_by":["id","asc"],"limit":1000,"include_attributes":true})");
  ASSERT_EQ(all.status, 200);
  std::vector<std::pair<double, int64_t>> expect;
  for (const auto& row : all.json.at("rows").as_array()) {
    double sum = 0;
    const auto& v = row.at("vector").as_array();
    for (size_t d = 0; d < q.size(); ++d) {
      double diff = q[d] - v[d].to_number<double>();
      sum += diff * diff;
    }
    expect.emplace_back(static_cast<float>(sum), row.at("id").to_number<int64_t>());
  }
  std::sort(expect.begin(), expect.end());
  std::vector<int64_t> want;
  for (size_t i = 0; i < 40; ++i) want.push_back(expect[i].second);
  EXPECT_EQ(Ids("exact",
                R"({"rank_by":["vector","ANN",[0.5,0.25,0,0,1,-1,0.125,0,0,0,0,0.5]],"limit":40})"),
            want);
}

// Query indexes point into a namespace's documents: a copied namespace must build its own.
TEST_F(QueryTest, CopiedNamespaceOutlivesItsSourceIndexes) {
  ASSERT_EQ(Write("src", VectorRows("cosine_distance", 3)).status, 200);
  std::string body = R"({"rank_by":["vector","ANN",[1,0,0,0,0,0,0,0,0,0,0,1]],"limit":5,)"
                     R"("include_attributes":["g"]})";
  std::string before = Rows("src", body);  // builds src's vector column
  ASSERT_EQ(Write("dst", R"({"copy_from_namespace":"src"})").status, 200);
  ASSERT_EQ(Do("DELETE", "/v2/namespaces/src").status, 200);
  EXPECT_EQ(Rows("dst", body), before);
}

}  // namespace
}  // namespace layer::origin::testing
