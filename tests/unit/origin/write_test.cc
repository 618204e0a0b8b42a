#include "engine_test_util.h"

namespace layer::origin::testing {
namespace {

using WriteTest = EngineTest;

TEST_F(WriteTest, SeedWriteResponseHasOnlyUpsertKeys) {  // W-01
  Reply r = Write("p", kFixtureP0);
  ASSERT_EQ(r.status, 200) << r.body;
  const auto& o = r.json.as_object();
  EXPECT_EQ(o.at("status"), "OK");
  EXPECT_EQ(o.at("rows_affected"), 3);
  EXPECT_EQ(o.at("rows_upserted"), 3);
  EXPECT_FALSE(o.contains("rows_patched"));
  EXPECT_FALSE(o.contains("rows_deleted"));
  EXPECT_FALSE(o.contains("upserted_ids"));
  EXPECT_TRUE(o.at("billing").as_object().contains("billable_logical_bytes_written"));
  EXPECT_FALSE(o.at("billing").as_object().contains("query"));
  EXPECT_TRUE(o.contains("performance"));
}

TEST_F(WriteTest, ColumnsConditionsAndByFilterFollowParitySequence) {  // W-02..W-08
  ASSERT_EQ(Write("p", kFixtureP0).status, 200);
  Reply r = Write(
      "p",
      R"({"upsert_columns":{"id":[4,5],"vector":[[0.5,0.5],[0.4,0.6]],"sparse_vector":[{"0":0.4},{"1":0.6}],"title":["column walrus","blocked walrus"],"category":["mammal","mammal"],"public":[1,1],"text":["column walrus mammal","blocked walrus mammal"],"score":[2,20],"tags":[["mammal"],["mammal"]],"published_at":["2026-05-28T00:00:00Z","2026-05-27T00:00:00Z"]}})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json.at("rows_affected"), 2);
  EXPECT_EQ(r.json.at("rows_upserted"), 2);

  r = Write("p", R"({"upsert_rows":[
    {"id":4,"vector":[0.5,0.5],"sparse_vector":{"0":0.5},"title":"condition pass","category":"mammal","public":1,"text":"condition pass mammal","score":3,"tags":["mammal"],"published_at":"2026-05-28T00:00:00Z"},
    {"id":5,"vector":[0.4,0.6],"sparse_vector":{"1":0.6},"title":"condition blocked","category":"mammal","public":1,"text":"condition blocked mammal","score":10,"tags":["mammal"],"published_at":"2026-05-27T00:00:00Z"},
    {"id":6,"vector":[0.3,0.7],"sparse_vector":{"1":0.7},"title":"condition insert","category":"mammal","public":1,"text":"condition insert mammal","score":1,"tags":["mammal"],"published_at":"2026-05-26T00:00:00Z"}],
    "upsert_condition":["score","Lt",{"$ref_new":"score"}],"return_affected_ids":true})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json.at("rows_affected"), 2);
  EXPECT_EQ(r.json.at("rows_upserted"), 2);
  EXPECT_EQ(RawField(r.body, "upserted_ids"), "[4,6]");

  r = Write(
      "p",
      R"({"patch_columns":{"id":[4,6],"title":["patched column","patched insert"],"score":[4,100]},"patch_condition":["public","Eq",1],"return_affected_ids":true})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json.at("rows_patched"), 2);
  EXPECT_EQ(RawField(r.body, "patched_ids"), "[4,6]");
  EXPECT_FALSE(r.json.as_object().contains("rows_upserted"));
  EXPECT_FALSE(r.json.as_object().contains("rows_deleted"));

  r = Write("p",
            R"({"deletes":[5],"delete_condition":["score","Gte",20],"return_affected_ids":true})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json.at("rows_affected"), 1);
  EXPECT_EQ(RawField(r.body, "deleted_ids"), "[5]");

  EXPECT_EQ(
      Rows(
          "p",
          R"({"rank_by":["id","asc"],"limit":10,"include_attributes":["title","score","category"]})"),
      R"([{"id":1,"title":"walrus den","score":10,"category":"mammal"},{"id":2,"title":"reef fish","score":7,"category":"fish"},{"id":3,"title":"quick walrus","score":5,"category":"mammal"},{"id":4,"title":"patched column","score":4,"category":"mammal"},{"id":6,"title":"patched insert","score":100,"category":"mammal"}])");

  // AG-01..AG-03 and MQ-01 run on this 5-row state.
  r = Query(
      "p",
      R"({"aggregate_by":{"count":["Count"]},"group_by":[{"tag":["ForEachUnique","tags"]}],"top_k":10})");
  EXPECT_EQ(
      RawField(r.body, "aggregation_groups"),
      R"([{"tag":"arctic","count":1},{"tag":"fish","count":1},{"tag":"mammal","count":4},{"tag":"sea","count":1}])");
  r = Query("p", R"({"aggregate_by":{"count":["Count"]},"group_by":["category"]})");
  EXPECT_EQ(RawField(r.body, "aggregation_groups"),
            R"([{"category":"fish","count":1},{"category":"mammal","count":4}])");
  r = Query("p", R"({"aggregate_by":{"score_sum":["Sum","score"]}})");
  EXPECT_EQ(RawField(r.body, "aggregations"), R"({"score_sum":126})");
  r = Query(
      "p",
      R"({"queries":[{"rank_by":["vector","ANN",[1.0,0.0]],"limit":1},{"rank_by":["text","BM25","walrus"],"limit":2}]})");
  ASSERT_EQ(r.status, 200) << r.body;
  const auto& results = r.json.at("results").as_array();
  EXPECT_EQ(boost::json::serialize(results[0].at("rows").at(0).at("id")), "1");
  EXPECT_EQ(results[0].at("rows").at(0).at("$dist").to_number<double>(), 0.0);
  ASSERT_EQ(results[1].at("rows").as_array().size(), 2u);
  EXPECT_EQ(results[1].at("rows").at(0).at("id"), 1);
  EXPECT_EQ(results[1].at("rows").at(1).at("id"), 3);
  EXPECT_NEAR(results[1].at("rows").at(0).at("$dist").to_number<double>(), 0.8165, 1e-4);
  EXPECT_NEAR(results[1].at("rows").at(1).at("$dist").to_number<double>(), 0.8165, 1e-4);

  r = Write(
      "p",
      R"({"patch_by_filter":{"filters":["category","Eq","fish"],"patch":{"category":"reef","score":8}},"return_affected_ids":true})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json.at("rows_patched"), 1);
  EXPECT_EQ(RawField(r.body, "patched_ids"), "[2]");
  EXPECT_TRUE(r.json.at("billing").as_object().contains("query"));
  EXPECT_EQ(
      Rows("p", R"({"rank_by":["id","asc"],"limit":10,"include_attributes":["category","score"]})"),
      R"([{"id":1,"category":"mammal","score":10},{"id":2,"category":"reef","score":8},{"id":3,"category":"mammal","score":5},{"id":4,"category":"mammal","score":4},{"id":6,"category":"mammal","score":100}])");

  r = Write("p", R"({"delete_by_filter":["score","Lt",6],"return_affected_ids":true})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json.at("rows_deleted"), 2);
  EXPECT_EQ(RawField(r.body, "deleted_ids"), "[3,4]");
  EXPECT_EQ(
      Rows("p", R"({"rank_by":["id","asc"],"limit":10,"include_attributes":["category","score"]})"),
      R"([{"id":1,"category":"mammal","score":10},{"id":2,"category":"reef","score":8},{"id":6,"category":"mammal","score":100}])");

  // CP-01: copy into a new namespace gives identical rows.
  r = Write("p-copy", R"({"copy_from_namespace":"p"})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json.at("rows_affected"), 3);
  EXPECT_EQ(
      Rows("p-copy",
           R"({"rank_by":["id","asc"],"limit":10,"include_attributes":["category","score"]})"),
      Rows("p",
           R"({"rank_by":["id","asc"],"limit":10,"include_attributes":["category","score"]})"));
  // EXP-01: the deprecated export is columnar and aligned to ids.
  Reply ex = Do("GET", "/v1/namespaces/p");
  ASSERT_EQ(ex.status, 200);
  EXPECT_EQ(RawField(ex.body, "ids"), "[1,2,6]");
  EXPECT_EQ(RawField(ex.body, "vectors"), "[[1.0,0.0],[0.0,1.0],[0.3,0.7]]");
  EXPECT_EQ(boost::json::serialize(ex.json.at("attributes").at("score")), "[10,8,100]");
  EXPECT_TRUE(ex.json.at("next_cursor").is_null());
}

TEST_F(WriteTest, DeleteByFilterCounts) {  // W-09
  ASSERT_EQ(
      Write(
          "n",
          R"({"distance_metric":"euclidean_squared","upsert_rows":[{"id":5,"a":0,"vector":[0.7,0.7]},{"id":6,"a":1,"vector":[0.7,0.7]},{"id":7,"a":2,"vector":[0.7,0.7]},{"id":8,"a":1,"vector":[0.7,0.7]},{"id":9,"a":3,"vector":[0.7,0.7]}]})")
          .status,
      200);
  EXPECT_EQ(Write("n", R"({"delete_by_filter":["a","Eq",42]})").json.at("rows_affected"), 0);
  EXPECT_EQ(Write("n", R"({"delete_by_filter":["a","Eq",1]})").json.at("rows_affected"), 2);
  EXPECT_EQ(Rows("n", R"({"rank_by":["id","asc"],"top_k":10})"), R"([{"id":5},{"id":7},{"id":9}])");
  EXPECT_EQ(Write("n", R"({"delete_by_filter":["a","Gt",0]})").json.at("rows_affected"), 2);
  EXPECT_EQ(Rows("n", R"({"rank_by":["id","asc"],"top_k":10})"), R"([{"id":5}])");
}

TEST_F(WriteTest, PatchMergesAttributes) {  // W-11
  ASSERT_EQ(
      Write(
          "n",
          R"({"distance_metric":"cosine_distance","upsert_rows":[{"id":1,"vector":[1,1]},{"id":2,"vector":[2,2]}]})")
          .status,
      200);
  ASSERT_EQ(Write("n", R"({"patch_rows":[{"id":1,"a":1},{"id":2,"b":2}]})").status, 200);
  ASSERT_EQ(
      Write("n",
            R"({"patch_rows":[{"id":1,"b":1},{"id":2,"a":2}],"distance_metric":"cosine_distance"})")
          .status,
      200);
  EXPECT_EQ(Rows("n", R"({"rank_by":["id","asc"],"include_attributes":["id","a","b"],"top_k":10})"),
            R"([{"id":1,"a":1,"b":1},{"id":2,"a":2,"b":2}])");
  ASSERT_EQ(Write("n", R"({"patch_columns":{"id":[1,2],"a":[11,22],"c":[1,2]}})").status, 200);
  EXPECT_EQ(Rows("n", R"({"rank_by":["id","asc"],"include_attributes":["a","b","c"],"top_k":10})"),
            R"([{"id":1,"a":11,"b":1,"c":1},{"id":2,"a":22,"b":2,"c":2}])");
}

TEST_F(WriteTest, PatchOfMissingIdIsIgnored) {
  ASSERT_EQ(Write("n", R"({"upsert_rows":[{"id":1,"a":1}]})").status, 200);
  Reply r = Write("n", R"({"patch_rows":[{"id":9,"a":2}],"return_affected_ids":true})");
  EXPECT_EQ(r.json.at("rows_patched"), 0);
  EXPECT_FALSE(r.json.as_object().contains("patched_ids"));  // empty lists are omitted
  EXPECT_EQ(Rows("n", R"({"rank_by":["id","asc"],"top_k":10})"), R"([{"id":1}])");
}

TEST_F(WriteTest, ShapeErrorsAre422) {  // W-12..W-15
  struct Case {
    const char* body;
    const char* msg;
  } cases[] = {
      {R"({"upsert_rows":{"id":1}})", "upsert_rows: invalid type: map, expected a sequence"},
      {R"({"upsert_rows":[{"vector":[1,0]}]})", "upsert_rows[0]: missing field `id`"},
      {R"({"deletes":true})", "deletes: data did not match any variant of untagged enum IdVec"},
      {R"({"upsert_rows":[{"id":false}]})",
       "upsert_rows[0].id: data did not match any variant of untagged enum Id"},
      {R"({"patch_rows":[{"id":1.5}]})",
       "patch_rows[0].id: data did not match any variant of untagged enum Id"},
      {R"({"upsert_columns":{"id":[true],"title":["bad"]}})",
       "upsert_columns.id: data did not match any variant of untagged enum IdVec"},
      {R"({"patch_columns":{"id":[1.5],"title":["bad"]}})",
       "patch_columns.id: data did not match any variant of untagged enum IdVec"},
      {R"({"deletes":[true]})", "deletes: data did not match any variant of untagged enum IdVec"},
  };
  for (const auto& c : cases) {
    Reply r = Write("n", c.body);
    EXPECT_EQ(r.status, 422) << c.body;
    EXPECT_EQ(r.error(),
              std::string("Failed to deserialize the JSON body into the target type: ") + c.msg);
  }
  EXPECT_EQ(Do("GET", "/v1/namespaces/n/schema").status, 404);  // nothing was created
  // A malformed filter is a 422 even when the request also has a 400-level problem.
  Reply r = Write("n", R"({"upsert_rows":[{"id":1},{"id":1}],"delete_by_filter":"bad"})");
  EXPECT_EQ(r.status, 422);
  EXPECT_EQ(r.error(), "Failed to deserialize the JSON body into the target type: "
                       "delete_by_filter: data did not match any variant of untagged enum "
                       "FiltersInput");
}

TEST_F(WriteTest, CopyCannotBeCombined) {  // W-16
  ASSERT_EQ(Write("src", R"({"upsert_rows":[{"id":1}]})").status, 200);
  Reply r = Write("dst", R"({"copy_from_namespace":"src","upsert_rows":[{"id":1}]})");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.error(), "💔 copy_from_namespace cannot be used with other write request fields");
}

TEST_F(WriteTest, DuplicateUuidIdsRejectedAfterCanonicalisation) {  // W-17
  Reply r = Write(
      "u",
      R"({"schema":{"id":"uuid","title":"string"},"upsert_rows":[{"id":"769C134D-07B8-4225-954A-B6CC5FFC320C","title":"dupe-0"},{"id":"769c134d-07b8-4225-954a-b6cc5ffc320c","title":"dupe-1"}]})");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.error(),
            "💔 This upsert contains duplicate document IDs and was not written. You should "
            "ensure that individual upserts do not include duplicate documents. The duplicated "
            "IDs in this batch were the following: 769c134d-07b8-4225-954a-b6cc5ffc320c");
  EXPECT_EQ(Do("GET", "/v1/namespaces/u/metadata").status, 404);
}

TEST_F(WriteTest, DeletingEverythingLeavesQueryableNamespace) {  // W-18
  ASSERT_EQ(Write("n", R"({"upsert_rows":[{"id":2},{"id":7}]})").status, 200);
  ASSERT_EQ(Write("n", R"({"deletes":[2,7]})").status, 200);
  EXPECT_EQ(Rows("n", R"({"rank_by":["id","asc"],"top_k":100})"), "[]");
}

TEST_F(WriteTest, PatchingVectorsUnsupported) {  // W-21
  ASSERT_EQ(
      Write("n", R"({"distance_metric":"cosine_distance","upsert_rows":[{"id":1,"vector":[1,0]}]})")
          .status,
      200);
  Reply r = Write("n", R"({"patch_rows":[{"id":1,"vector":[1.0,0.0]}]})");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.error(), "💔 patching vectors is currently unsupported");
}

TEST_F(WriteTest, Base64VectorsAccepted) {  // W-22
  ASSERT_EQ(
      Write(
          "n",
          R"({"distance_metric":"euclidean_squared","upsert_rows":[{"id":1,"vector":"zczMPc3MTD6amZk+"}]})")
          .status,
      200);
  EXPECT_EQ(Rows("n", R"({"rank_by":["id","asc"],"top_k":1,"include_attributes":true})"),
            R"([{"id":1,"vector":[0.1,0.2,0.3]}])");
}

TEST_F(WriteTest, DistanceMetricRules) {  // DM-01..DM-06
  Reply r = Write("a", R"({"upsert_rows":[{"id":1,"vector":[1,0]}]})");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.error(), "💔 distance_metric must be specified for write to namespace with a vector");

  r = Write(
      "b",
      R"({"schema":{"vector":{"type":"[2]f32","ann":{"distance_metric":"euclidean"}}},"upsert_rows":[{"id":1,"vector":[1,0]}]})");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.error(),
            "💔 `distance_metric` must be specified as a field at the top level of the "
            "write request, not in the `ann` configuration for an attribute");

  r = Write(
      "c",
      R"({"distance_metric":"cosine_distance","schema":{"vector":"[2]f32"},"upsert_rows":[{"id":1,"vector":[1,0]}]})");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.error(),
            "💔 the `vector` attribute must have `ann` set to `true`, eg: `\"vector\": "
            "{ \"type\": \"[1024]f32\", \"ann\": true }`");

  r = Write("d", R"({"distance_metric":"bad","upsert_rows":[{"id":1,"vector":[1,0]}]})");
  EXPECT_EQ(r.status, 422);
  EXPECT_EQ(r.error(),
            "Failed to deserialize the JSON body into the target type: distance_metric: "
            "unknown variant `bad`, expected one of `Unknown`, `euclidean_squared`, "
            "`cosine_distance`, `euclidean`, `Query`");

  ASSERT_EQ(Write("p", kFixtureP0).status, 200);
  r = Write("p",
            R"({"distance_metric":"euclidean_squared","upsert_rows":[{"id":99,"vector":[0,1]}]})");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.error(),
            "💔 distance metric mismatch, expected cosine_distance, got euclidean_squared");

  r = Write("s", R"({"upsert_rows":[{"id":1,"title":"scalar"}]})");
  EXPECT_EQ(r.json.at("rows_upserted"), 1);
  r = Write("s", R"({"upsert_rows":[{"id":2,"vector":[1,0],"title":"vector"}]})");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.error(), "💔 Vector provided for namespace without vector attribute");
}

TEST_F(WriteTest, EuclideanIsNotSquared) {  // DM-07
  ASSERT_EQ(
      Write(
          "e",
          R"({"distance_metric":"euclidean","upsert_rows":[{"id":1,"vector":[1,0]},{"id":2,"vector":[0,2]}]})")
          .status,
      200);
  EXPECT_EQ(
      Rows("e", R"({"rank_by":["vector","ANN",[0,0]],"limit":2,"include_attributes":["vector"]})"),
      R"([{"id":1,"$dist":1.0,"vector":[1.0,0.0]},{"id":2,"$dist":2.0,"vector":[0.0,2.0]}])");
  Reply md = Do("GET", "/v1/namespaces/e/metadata");
  EXPECT_EQ(boost::json::serialize(md.json.at("schema").at("vector").at("ann")),
            R"({"distance_metric":"euclidean"})");
}

TEST_F(WriteTest, Base64RoundTrip) {  // DM-08
  Reply r = Write(
      "b",
      R"({"distance_metric":"cosine_distance","schema":{"vector":{"type":"[2]f32","ann":true}},"upsert_rows":[{"id":1,"vector":"AACAPwAAAAA=","title":"base64"}],"return_affected_ids":true})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(RawField(r.body, "upserted_ids"), "[1]");
  EXPECT_EQ(
      Rows(
          "b",
          R"({"rank_by":["vector","ANN","AACAPwAAAAA="],"limit":1,"include_attributes":["vector"],"vector_encoding":"base64"})"),
      R"([{"id":1,"$dist":0.0,"vector":"AACAPwAAAAA="}])");
}

TEST_F(WriteTest, UuidIds) {  // ID-01..ID-07
  Reply r = Write(
      "bad",
      R"({"schema":{"id":"uuid","title":"string"},"upsert_rows":[{"id":"not-a-uuid","title":"bad"}]})");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.error(), "💔 namespace ID type is uuid, but a written ID could not be parsed as uuid");
  EXPECT_EQ(Do("GET", "/v1/namespaces/bad/metadata").status, 404);

  r = Write(
      "u",
      R"({"schema":{"id":"uuid","title":"string"},"upsert_rows":[{"id":"769C134D-07B8-4225-954A-B6CC5FFC320C","title":"row-0"},{"id":"769c134d07b84225954ab6cc5ffc320d","title":"row-1"},{"id":"{769c134d-07b8-4225-954a-b6cc5ffc320e}","title":"row-2"},{"id":"urn:uuid:769c134d-07b8-4225-954a-b6cc5ffc320f","title":"row-3"}],"return_affected_ids":true})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(
      RawField(r.body, "upserted_ids"),
      R"(["769c134d-07b8-4225-954a-b6cc5ffc320c","769c134d-07b8-4225-954a-b6cc5ffc320d","769c134d-07b8-4225-954a-b6cc5ffc320e","769c134d-07b8-4225-954a-b6cc5ffc320f"])");
  EXPECT_EQ(
      Rows("u", R"({"rank_by":["title","asc"],"limit":10,"include_attributes":["title"]})"),
      R"([{"id":"769c134d-07b8-4225-954a-b6cc5ffc320c","title":"row-0"},{"id":"769c134d-07b8-4225-954a-b6cc5ffc320d","title":"row-1"},{"id":"769c134d-07b8-4225-954a-b6cc5ffc320e","title":"row-2"},{"id":"769c134d-07b8-4225-954a-b6cc5ffc320f","title":"row-3"}])");
  EXPECT_EQ(Do("GET", "/v1/namespaces/u/schema").json.at("id").at("type"), "uuid");

  EXPECT_EQ(
      Rows(
          "u",
          R"({"rank_by":["id","asc"],"limit":10,"filters":["id","Eq","769C134D-07B8-4225-954A-B6CC5FFC320C"]})"),
      R"([{"id":"769c134d-07b8-4225-954a-b6cc5ffc320c"}])");
  EXPECT_EQ(
      Rows(
          "u",
          R"({"rank_by":["id","asc"],"limit":10,"filters":["id","Gte","769c134d07b84225954ab6cc5ffc320c"]})")
          .size(),
      std::string(
          R"([{"id":"769c134d-07b8-4225-954a-b6cc5ffc320c"},{"id":"769c134d-07b8-4225-954a-b6cc5ffc320d"},{"id":"769c134d-07b8-4225-954a-b6cc5ffc320e"},{"id":"769c134d-07b8-4225-954a-b6cc5ffc320f"}])")
          .size());

  r = Query("u", R"({"rank_by":["id","asc"],"limit":10,"filters":["id","Eq","not-a-uuid"]})");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.error(),
            "filter error in key `id`: type mismatch, Eq expects uuid, but got 'not-a-uuid'");
  r = Query(
      "u",
      R"({"rank_by":["id","asc"],"limit":10,"filters":["id","In",["not-a-uuid","769C134D-07B8-4225-954A-B6CC5FFC320C"]]})");
  EXPECT_EQ(r.error(),
            "filter error in key `id`: type mismatch, In expects uuid or []uuid, but got "
            "'[not-a-uuid, 769C134D-07B8-4225-954A-B6CC5FFC320C]'");

  r = Write(
      "u",
      R"({"patch_rows":[{"id":"769C134D-07B8-4225-954A-B6CC5FFC320C","title":"patched"}],"return_affected_ids":true})");
  EXPECT_EQ(RawField(r.body, "patched_ids"), R"(["769c134d-07b8-4225-954a-b6cc5ffc320c"])");
  r = Write(
      "u",
      R"({"upsert_rows":[{"id":"769C134D-07B8-4225-954A-B6CC5FFC320C","title":"conditioned"}],"upsert_condition":["id","Eq","769C134D-07B8-4225-954A-B6CC5FFC320C"],"return_affected_ids":true})");
  EXPECT_EQ(r.json.at("rows_upserted"), 1);
  r = Write(
      "u",
      R"({"deletes":["{769c134d-07b8-4225-954a-b6cc5ffc320e}"],"delete_condition":["id","Eq","{769c134d-07b8-4225-954a-b6cc5ffc320e}"],"return_affected_ids":true})");
  EXPECT_EQ(RawField(r.body, "deleted_ids"), R"(["769c134d-07b8-4225-954a-b6cc5ffc320e"])");
  r = Write("u", R"({"deletes":["not-a-uuid"]})");
  EXPECT_EQ(r.error(), "💔 namespace ID type is uuid, but a written ID could not be parsed as uuid");
  r = Write(
      "u",
      R"({"patch_columns":{"id":["urn:uuid:{769c134d-07b8-4225-954a-b6cc5ffc320c}"],"title":["bad"]}})");
  EXPECT_EQ(r.status, 400);
}

TEST_F(WriteTest, TypedIdRules) {  // ID-08..ID-10
  EXPECT_EQ(
      Write("a",
            R"({"schema":{"id":"int","title":"string"},"upsert_rows":[{"id":1,"title":"bad"}]})")
          .error(),
      "💔 int is not a valid ID type");
  EXPECT_EQ(
      Write("b",
            R"({"schema":{"id":"string","title":"string"},"upsert_rows":[{"id":1,"title":"bad"}]})")
          .error(),
      "💔 namespace ID type is string, but you sent uint; you are not allowed to mix ID "
      "types in the same namespace");
  EXPECT_EQ(
      Write(
          "c",
          R"({"schema":{"id":"uint","title":"string"},"upsert_rows":[{"id":"abc","title":"bad"}]})")
          .error(),
      "💔 namespace ID type is uint, but you sent string; you are not allowed to mix ID "
      "types in the same namespace");
  ASSERT_EQ(Write("d", R"({"upsert_rows":[{"id":1,"title":"good"}]})").status, 200);
  EXPECT_EQ(Write("d", R"({"upsert_rows":[{"id":"1","title":"bad"}]})").status, 400);
  EXPECT_EQ(Query("d", R"({"rank_by":["id","asc"],"limit":1,"filters":["id","Eq","abc"]})").error(),
            "filter error in key `id`: type mismatch, Eq expects uint, but got 'abc'");
  ASSERT_EQ(
      Write(
          "s",
          R"({"schema":{"id":"string","title":"string"},"upsert_rows":[{"id":"abc","title":"good"}]})")
          .status,
      200);
  EXPECT_EQ(Query("s", R"({"rank_by":["id","asc"],"limit":1,"filters":["id","Eq",1]})").error(),
            "filter error in key `id`: type mismatch, Eq expects string, but got '1'");
}

TEST_F(WriteTest, OrderingDeleteByFilterThenPatchByFilterThenIds) {
  ASSERT_EQ(Write("n", R"({"upsert_rows":[{"id":1,"a":1},{"id":2,"a":2},{"id":3,"a":3}]})").status,
            200);
  Reply r = Write(
      "n",
      R"({"delete_by_filter":["a","Eq",1],"patch_by_filter":{"filters":["a","Lte",2],"patch":{"b":true}},"patch_rows":[{"id":1,"c":1}],"upsert_rows":[{"id":4,"a":4}]})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json.at("rows_deleted"), 1);
  EXPECT_EQ(r.json.at("rows_patched"), 1);  // id 2 by filter; id 1 was deleted first
  EXPECT_EQ(r.json.at("rows_upserted"), 1);
  EXPECT_EQ(Rows("n", R"({"rank_by":["id","asc"],"top_k":10,"include_attributes":true})"),
            R"([{"id":2,"a":2,"b":true},{"id":3,"a":3},{"id":4,"a":4}])");
}

TEST_F(WriteTest, FailedWriteIsAtomic) {
  ASSERT_EQ(Write("n", R"({"upsert_rows":[{"id":1,"a":1}]})").status, 200);
  Reply r = Write("n", R"({"upsert_rows":[{"id":2,"a":2},{"id":3,"a":"text"}]})");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(Rows("n", R"({"rank_by":["id","asc"],"top_k":10})"), R"([{"id":1}])");
}

TEST_F(WriteTest, GzipBody) {
  std::string body = R"({"upsert_rows":[{"id":1,"a":1}]})";
  OriginRequest req;
  req.method = "POST";
  req.path = "/v2/namespaces/gz";
  req.content_encoding = "gzip";
  auto gz = GzipCompressForTest(body);
  req.body = gz;
  EXPECT_EQ(engine_->Handle(req).status, 200);
  EXPECT_EQ(Rows("gz", R"({"rank_by":["id","asc"],"top_k":10})"), R"([{"id":1}])");
  // Gzip'ed query bodies too; garbage gzip and unknown encodings are rejected.
  std::string q = GzipCompressForTest(R"({"rank_by":["id","asc"],"top_k":10})");
  EXPECT_EQ(Do("POST", "/v2/namespaces/gz/query", q, "", "GZIP").status, 200);
  EXPECT_EQ(Do("POST", "/v2/namespaces/gz/query", "not gzip", "", "gzip").status, 400);
  EXPECT_EQ(Do("POST", "/v2/namespaces/gz/query", "{}", "", "br").status, 415);
}

TEST_F(WriteTest, StainlessOverloadIgnoredAndBranchCopies) {
  ASSERT_EQ(Write("src", R"({"upsert_rows":[{"id":1,"a":1},{"id":2,"a":2}]})").status, 200);
  Reply r =
      Do("POST", "/v2/namespaces/br", R"({"branch_from_namespace":{"source_namespace":"src"}})",
         "stainless_overload=branchFrom");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json.at("rows_affected"), 2);
  r = Do("POST", "/v2/namespaces/cp", R"({"copy_from_namespace":"src"})",
         "stainless_overload=copyFrom");
  EXPECT_EQ(r.json.at("rows_affected"), 2);
  EXPECT_EQ(Rows("cp", R"({"rank_by":["id","asc"],"top_k":10,"include_attributes":true})"),
            R"([{"id":1,"a":1},{"id":2,"a":2}])");
  // Independent afterwards.
  ASSERT_EQ(Write("cp", R"({"deletes":[1]})").status, 200);
  EXPECT_EQ(Rows("src", R"({"rank_by":["id","asc"],"top_k":10})"), R"([{"id":1},{"id":2}])");
  EXPECT_EQ(Do("POST", "/v2/namespaces/x", R"({"copy_from_namespace":"missing"})").status, 404);
}

}  // namespace
}  // namespace layer::origin::testing
