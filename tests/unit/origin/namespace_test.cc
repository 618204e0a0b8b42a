#include "common/base64.h"
#include "engine_test_util.h"

namespace layer::origin::testing {
namespace {

using NamespaceTest = EngineTest;

std::string Cursor(const std::string& start_after) {
  return Base64EncodeUnpadded(R"({"continuation_token":null,"start_after":")" + start_after +
                              R"("})");
}

TEST_F(NamespaceTest, ListingOrderCursorAndEmptyPages) {  // NS-01..NS-04
  ASSERT_EQ(Write("pns", R"({"upsert_rows":[{"id":1}]})").status, 200);
  ASSERT_EQ(Write("pns-copy", R"({"upsert_rows":[{"id":1}]})").status, 200);
  ASSERT_EQ(Write("other", R"({"upsert_rows":[{"id":1}]})").status, 200);

  Reply r = Do("GET", "/v1/namespaces", "", "prefix=pns&page_size=10");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.body, R"({"namespaces":[{"id":"pns-copy"},{"id":"pns"}],"next_cursor":null})");

  r = Do("GET", "/v1/namespaces", "", "prefix=pns&page_size=1");
  std::string c1 = Cursor("pns-copy-table/");
  EXPECT_EQ(r.body, R"({"namespaces":[{"id":"pns-copy"}],"next_cursor":")" + c1 + "\"}");
  r = Do("GET", "/v1/namespaces", "", "prefix=pns&page_size=1&cursor=" + c1);
  EXPECT_EQ(r.body,
            R"({"namespaces":[{"id":"pns"}],"next_cursor":")" + Cursor("pns-table/") + "\"}");
  r = Do("GET", "/v1/namespaces", "", "prefix=pns&page_size=1&cursor=" + Cursor("pns-table/"));
  EXPECT_EQ(r.body, R"({"namespaces":[],"next_cursor":null})");

  r = Do("GET", "/v1/namespaces", "", "prefix=pns-empty&page_size=1");
  EXPECT_EQ(r.body, R"({"namespaces":[],"next_cursor":null})");
  r = Do("GET", "/v1/namespaces", "", "cursor=" + Base64EncodeUnpadded("{}"));
  EXPECT_EQ(r.json.at("namespaces").as_array().size(), 3u);
}

TEST_F(NamespaceTest, ListingValidation) {  // NS-05..NS-07
  Reply r = Do("GET", "/v1/namespaces", "", "prefix=p&page_size=0");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.body, R"({"status":"error","error":"💔 Page size must be in range 1..=1000, was 0"})");
  r = Do("GET", "/v1/namespaces", "", "page_size=1001");
  EXPECT_EQ(r.error(), "💔 Page size must be in range 1..=1000, was 1001");
  r = Do("GET", "/v1/namespaces", "", "prefix=p&page_size=bad");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.body, "Failed to deserialize query string: invalid digit found in string");
  EXPECT_NE(r.content_type.find("text/plain"), std::string::npos);
  r = Do("GET", "/v1/namespaces", "", "cursor=bad");
  EXPECT_EQ(r.status, 500);
  EXPECT_EQ(
      r.error(),
      "🐡 Unknown error, if this persists, please contact support!! We'll be happy to help :)");
}

TEST_F(NamespaceTest, PaginationOverManyNamespaces) {  // NS-08
  for (int i = 0; i < 12; ++i) {
    ASSERT_EQ(Write("ns" + std::to_string(100 + i), R"({"upsert_rows":[{"id":1}]})").status, 200);
  }
  Reply r = Do("GET", "/v1/namespaces", "", "page_size=5");
  ASSERT_EQ(r.json.at("namespaces").as_array().size(), 5u);
  std::string c = std::string(r.json.at("next_cursor").as_string());
  Reply r2 = Do("GET", "/v1/namespaces", "", "page_size=5&cursor=" + c);
  ASSERT_EQ(r2.json.at("namespaces").as_array().size(), 5u);
  EXPECT_NE(r2.json.at("next_cursor"), r.json.at("next_cursor"));
  Reply r3 = Do("GET", "/v1/namespaces", "",
                "page_size=5&cursor=" + std::string(r2.json.at("next_cursor").as_string()));
  EXPECT_EQ(r3.json.at("namespaces").as_array().size(), 2u);
  EXPECT_TRUE(r3.json.at("next_cursor").is_null());
}

TEST_F(NamespaceTest, DeleteNamespace) {  // NS-09, ERR-05..07
  ASSERT_EQ(Write("n", R"({"upsert_rows":[{"id":1}]})").status, 200);
  Reply r = Do("DELETE", "/v2/namespaces/n");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, R"({"status":"OK"})");
  r = Query("n", R"({"rank_by":["id","asc"],"limit":1})");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.body, R"({"status":"error","error":"🤷 namespace 'n' was not found"})");
  EXPECT_EQ(Do("GET", "/v1/namespaces/n/schema").status, 404);
  EXPECT_EQ(Do("GET", "/v1/namespaces/n/metadata").status, 404);
  EXPECT_EQ(Do("DELETE", "/v2/namespaces/n").status, 404);
  EXPECT_EQ(Do("GET", "/v1/namespaces", "", "").body, R"({"namespaces":[],"next_cursor":null})");
  // The name is reusable immediately, with a fresh schema.
  ASSERT_EQ(Write("n", R"({"upsert_rows":[{"id":"s"}]})").status, 200);
  EXPECT_EQ(Do("GET", "/v1/namespaces/n/schema").json.at("id").at("type"), "string");
}

TEST_F(NamespaceTest, InvalidNamespaceNames) {  // ERR-03, ERR-04
  Reply r =
      Do("POST", "/v2/namespaces/bad%20namespace/query", R"({"rank_by":["id","asc"],"limit":1})");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.body, "Invalid URL: Namespace contains invalid characters, must be [A-Za-z0-9-_.]");
  std::string long_name(129, 'a');
  r = Do("POST", "/v2/namespaces/" + long_name + "/query", "{}");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.body, "Invalid URL: Namespace `" + long_name +
                        "` is too long, limit is currently 128 characters");
  EXPECT_EQ(Do("GET", "/v1/nope").status, 404);
}

TEST_F(NamespaceTest, SchemaRepresentations) {  // SC-01, SC-02, SC-04
  ASSERT_EQ(Write("p", kFixtureP0).status, 200);
  Reply r = Do("GET", "/v1/namespaces/p/schema");
  ASSERT_EQ(r.status, 200);
  const auto& s = r.json.as_object();
  EXPECT_EQ(boost::json::serialize(s.at("id")),
            R"({"type":"uint","filterable":null,"full_text_search":null})");
  EXPECT_EQ(boost::json::serialize(s.at("vector")),
            R"({"type":"[2]f32","ann":true,"filterable":null,"full_text_search":null})");
  EXPECT_EQ(boost::json::serialize(s.at("category")),
            R"({"type":"string","filterable":true,"full_text_search":null})");
  EXPECT_EQ(s.at("public").at("type"), "int");
  EXPECT_EQ(s.at("score").at("type"), "int");
  EXPECT_EQ(boost::json::serialize(s.at("tags")),
            R"({"type":"[]string","filterable":true,"full_text_search":null})");
  EXPECT_EQ(boost::json::serialize(s.at("published_at")),
            R"({"type":"datetime","filterable":true,"full_text_search":null})");
  EXPECT_EQ(boost::json::serialize(s.at("title")),
            R"({"type":"string","fuzzy":true,"filterable":false,"full_text_search":null})");
  EXPECT_EQ(boost::json::serialize(s.at("sparse_vector")),
            R"({"type":"{}f16","filterable":false,"full_text_search":null})");
  EXPECT_EQ(
      RawField(r.body, "text"),
      R"({"type":"string","filterable":false,"full_text_search":{"k1":1.2,"b":0.75,"k3":8.0,"language":"english","stemming":false,"remove_stopwords":false,"ascii_folding":false,"case_sensitive":false,"max_token_length":39,"tokenizer":"word_v3"}})");

  Reply md = Do("GET", "/v1/namespaces/p/metadata");
  ASSERT_EQ(md.status, 200);
  const auto& ms = md.json.at("schema").as_object();
  EXPECT_EQ(boost::json::serialize(ms.at("id")), R"({"type":"uint"})");
  EXPECT_EQ(boost::json::serialize(ms.at("vector")),
            R"({"type":"[2]f32","ann":{"distance_metric":"cosine_distance"}})");
  EXPECT_EQ(ms.at("category").at("filterable"), true);
  EXPECT_EQ(md.json.at("schema").at("text").at("full_text_search"),
            s.at("text").at("full_text_search"));
}

TEST_F(NamespaceTest, SchemaAndMetadataPerSdkTest) {  // SC-03, SC-04
  ASSERT_EQ(Write("s", R"({"distance_metric":"cosine_distance",
    "schema":{"title":{"type":"string","full_text_search":{"stemming":true,"remove_stopwords":true,"case_sensitive":false}},
              "tags":{"type":"[]string","full_text_search":{"stemming":false,"remove_stopwords":false,"case_sensitive":true}},
              "vector":{"type":"[2]f16","ann":true}},
    "upsert_rows":[{"id":1,"vector":[1,2],"title":null,"private":null,"tags":["a"]},
                   {"id":2,"vector":[3,4],"title":"hello","private":true,"tags":["b","c"]}]})")
                .status,
            200);
  Reply r = Do("GET", "/v1/namespaces/s/schema");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(boost::json::serialize(r.json.at("id")),
            R"({"type":"uint","filterable":null,"full_text_search":null})");
  EXPECT_EQ(boost::json::serialize(r.json.at("private")),
            R"({"type":"bool","filterable":true,"full_text_search":null})");
  EXPECT_EQ(boost::json::serialize(r.json.at("vector")),
            R"({"type":"[2]f16","ann":true,"filterable":null,"full_text_search":null})");
  const auto& title = r.json.at("title").as_object();
  EXPECT_EQ(title.at("filterable"), false);
  EXPECT_EQ(title.at("full_text_search").at("stemming"), true);
  EXPECT_EQ(title.at("full_text_search").at("remove_stopwords"), true);
  EXPECT_EQ(title.at("full_text_search").at("max_token_length"), 39);
  EXPECT_EQ(r.json.at("tags").at("full_text_search").at("case_sensitive"), true);

  Reply md = Do("GET", "/v2/namespaces/s/metadata");
  const auto& ms = md.json.at("schema").as_object();
  EXPECT_EQ(boost::json::serialize(ms.at("id")), R"({"type":"uint"})");
  EXPECT_EQ(boost::json::serialize(ms.at("private")), R"({"type":"bool","filterable":true})");
  EXPECT_EQ(boost::json::serialize(ms.at("vector")),
            R"({"type":"[2]f16","ann":{"distance_metric":"cosine_distance"}})");
  EXPECT_EQ(ms.at("title").at("filterable"), false);
  EXPECT_TRUE(ms.at("title").as_object().contains("full_text_search"));
}

TEST_F(NamespaceTest, SchemaUpdates) {  // SC-06..SC-09
  ASSERT_EQ(Write("p", kFixtureP0).status, 200);
  Reply r = Do(
      "POST", "/v1/namespaces/p/schema",
      R"({"category":{"type":"string","regex":true,"filterable":true,"not_a_real_schema_option":true}})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(boost::json::serialize(r.json.at("category")),
            R"({"type":"string","regex":true,"filterable":true,"full_text_search":null})");
  EXPECT_TRUE(r.json.as_object().contains("vector"));

  r = Do("POST", "/v1/namespaces/p/schema", R"({"category":{"regex":true}})");
  EXPECT_EQ(r.status, 422);
  EXPECT_EQ(r.error(),
            "Failed to deserialize the JSON body into the target type: category: data "
            "did not match any variant of untagged enum AttributeSchemaInput");
  r = Do("POST", "/v1/namespaces/p/schema", R"({"schema":{"category":"string"}})");
  EXPECT_EQ(r.error(),
            "Failed to deserialize the JSON body into the target type: schema: data did "
            "not match any variant of untagged enum AttributeSchemaInput");

  r = Do("POST", "/v1/namespaces/p/schema", R"({"category":"int"})");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(
      r.body,
      R"({"status":"error","error":"🙅 invalid schema update for attribute 'category': cannot change attribute type from string to int","attribute":"category"})");
  r = Write("p", R"({"schema":{"category":"int"}})");
  EXPECT_EQ(r.status, 400);

  r = Do("POST", "/v1/namespaces/p/schema",
         R"({"public":{"type":"int","filterable":false,"full_text_search":false}})");
  EXPECT_EQ(boost::json::serialize(r.json.at("public")),
            R"({"type":"int","filterable":false,"full_text_search":null})");
}

TEST_F(NamespaceTest, FilterableDefaultsAndNonFilterableErrors) {  // SC-10
  ASSERT_EQ(
      Write(
          "n",
          R"({"upsert_rows":[{"id":1,"hello":"foobar","x":"a"}],"schema":{"x":{"type":"string"}}})")
          .status,
      200);
  Reply r =
      Do("POST", "/v1/namespaces/n/schema", R"({"hello":{"type":"string","filterable":false}})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json.at("hello").at("filterable"), false);
  EXPECT_EQ(r.json.at("x").at("filterable"), true);
  r = Query("n", R"({"rank_by":["id","asc"],"limit":1,"filters":["hello","Eq","foobar"]})");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(Query("n", R"({"rank_by":["id","asc"],"limit":1,"filters":["x","Eq","a"]})").status,
            200);
}

TEST_F(NamespaceTest, InferredBoolAndFloat) {
  ASSERT_EQ(
      Write("n", R"({"upsert_rows":[{"id":1,"b":true,"f":1.5,"fs":[1.5,2]},{"id":2,"b":null}]})")
          .status,
      200);
  Reply r = Do("GET", "/v1/namespaces/n/schema");
  EXPECT_EQ(r.json.at("b").at("type"), "bool");
  EXPECT_EQ(r.json.at("f").at("type"), "float");
  EXPECT_EQ(r.json.at("fs").at("type"), "[]float");
}

TEST_F(NamespaceTest, MetadataShapesAndIndexLag) {  // MD-01, MD-03, index lag knob
  Reopen(/*index_lag_ms=*/1000);
  ASSERT_EQ(Write("n", R"({"upsert_rows":[{"id":1,"a":"x"}]})").status, 200);
  Reply v1 = Do("GET", "/v1/namespaces/n/metadata");
  Reply v2 = Do("GET", "/v2/namespaces/n/metadata");
  ASSERT_EQ(v1.status, 200);
  EXPECT_EQ(boost::json::serialize(v1.json.at("encryption")), R"({"sse":true})");
  EXPECT_EQ(boost::json::serialize(v2.json.at("encryption")), R"({"mode":"default"})");
  for (const char* key : {"approx_logical_bytes", "approx_row_count", "created_at", "updated_at",
                          "last_write_at", "schema", "index"}) {
    EXPECT_TRUE(v2.json.as_object().contains(key)) << key;
  }
  EXPECT_EQ(v2.json.at("created_at"), "2026-05-28T20:26:40Z");
  EXPECT_EQ(v2.json.at("index").at("status"), "updating");
  EXPECT_GT(v2.json.at("index").at("unindexed_bytes").as_int64(), 0);
  now_ms_ += 1000;
  v2 = Do("GET", "/v2/namespaces/n/metadata");
  EXPECT_EQ(boost::json::serialize(v2.json.at("index")), R"({"status":"up-to-date"})");

  Reply p = Do("PATCH", "/v1/namespaces/n/metadata", R"({"pinning":{"replicas":2}})");
  ASSERT_EQ(p.status, 200) << p.body;
  EXPECT_EQ(p.json.at("pinning").at("replicas"), 2);
  p = Do("PATCH", "/v1/namespaces/n/metadata", R"({"pinning":false})");
  EXPECT_FALSE(p.json.as_object().contains("pinning"));
}

TEST_F(NamespaceTest, NoLagMeansUpToDate) {
  ASSERT_EQ(Write("n", R"({"upsert_rows":[{"id":1}]})").status, 200);
  EXPECT_EQ(Do("GET", "/v2/namespaces/n/metadata").json.at("index").at("status"), "up-to-date");
}

TEST_F(NamespaceTest, HintCacheWarm) {  // HW-01
  ASSERT_EQ(Write("n", R"({"upsert_rows":[{"id":1}]})").status, 200);
  Reply r = Do("GET", "/v1/namespaces/n/hint_cache_warm");
  EXPECT_EQ(r.status, 202);
  EXPECT_EQ(r.body, R"({"status":"ACCEPTED","message":"cache warm hint accepted"})");
  EXPECT_TRUE(r.headers.empty());
  EXPECT_EQ(Do("GET", "/v1/namespaces/missing/hint_cache_warm").status, 404);
}

TEST_F(NamespaceTest, WritesSurviveRestart) {
  ASSERT_EQ(Write("p", kFixtureP0).status, 200);
  ASSERT_EQ(Write("p", R"({"patch_rows":[{"id":2,"category":"reef"}],"deletes":[1]})").status, 200);
  ASSERT_EQ(Write("gone", R"({"upsert_rows":[{"id":1}]})").status, 200);
  ASSERT_EQ(Do("DELETE", "/v2/namespaces/gone").status, 200);
  std::string before =
      Rows("p", R"({"rank_by":["id","asc"],"limit":10,"include_attributes":true})");
  std::string schema_before = Do("GET", "/v1/namespaces/p/schema").body;
  Reopen();
  EXPECT_EQ(Rows("p", R"({"rank_by":["id","asc"],"limit":10,"include_attributes":true})"), before);
  EXPECT_EQ(Do("GET", "/v1/namespaces/p/schema").body, schema_before);
  EXPECT_EQ(Do("GET", "/v1/namespaces/gone/metadata").status, 404);
  EXPECT_EQ(Do("GET", "/v1/namespaces").body, R"({"namespaces":[{"id":"p"}],"next_cursor":null})");
  // Vector components are restored exactly.
  EXPECT_NE(before.find(R"("vector":[0.8,0.2])"), std::string::npos) << before;
}

TEST_F(NamespaceTest, TornLogTailIsDiscarded) {
  ASSERT_EQ(Write("n", R"({"upsert_rows":[{"id":1}]})").status, 200);
  ASSERT_EQ(Write("n", R"({"upsert_rows":[{"id":2}]})").status, 200);
  engine_.reset();
  std::string path = dir_ + "/namespaces/n/wal.log";
  auto size = std::filesystem::file_size(path);
  std::filesystem::resize_file(path, size - 3);
  Reopen();
  EXPECT_EQ(Rows("n", R"({"rank_by":["id","asc"],"top_k":10})"), R"([{"id":1}])");
  ASSERT_EQ(Write("n", R"({"upsert_rows":[{"id":3}]})").status, 200);
  Reopen();
  EXPECT_EQ(Rows("n", R"({"rank_by":["id","asc"],"top_k":10})"), R"([{"id":1},{"id":3}])");
}

TEST_F(NamespaceTest, ExportAndHead) {  // EXP-01
  ASSERT_EQ(
      Write(
          "n",
          R"({"distance_metric":"cosine_distance","upsert_rows":[{"id":2,"vector":[0,1],"a":"x"},{"id":1,"vector":[1,0],"b":3}]})")
          .status,
      200);
  Reply r = Do("GET", "/v1/namespaces/n");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(
      r.body,
      R"({"ids":[1,2],"vectors":[[1.0,0.0],[0.0,1.0]],"attributes":{"a":[null,"x"],"b":[3,null]},"next_cursor":null})");
  r = Do("HEAD", "/v1/namespaces/n");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.headers.size(), 3u);
}

TEST_F(NamespaceTest, ManyWritesCompactAndReplay) {
  for (int i = 0; i < 1100; ++i) {
    ASSERT_EQ(Write("n", R"({"upsert_rows":[{"id":1,"v":)" + std::to_string(i) + "}]}").status,
              200);
  }
  Reopen();
  EXPECT_EQ(Rows("n", R"({"rank_by":["id","asc"],"top_k":10,"include_attributes":["v"]})"),
            R"([{"id":1,"v":1099}])");
  EXPECT_LT(std::filesystem::file_size(dir_ + "/namespaces/n/wal.log"), 100000u);
}

}  // namespace
}  // namespace layer::origin::testing
