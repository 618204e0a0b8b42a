#include "gateway/write_plan.h"

#include <boost/json.hpp>
#include <gtest/gtest.h>

namespace layer::gateway {
namespace {

namespace json = boost::json;

json::object Parse(const std::string& s) { return json::parse(s).as_object(); }

// Attribute types as a namespace schema would give them.
tpuf::AttributeTypes Types(std::string_view schema) {
  return tpuf::AttributeTypesOfSchema(json::parse(schema));
}

TEST(WritePlan, StampsRowsAndColumnsWithOneStamp) {
  const auto types = Types(R"({"a":"string","b":"int"})");
  auto p = PlanWrite(
      R"({"upsert_rows":[{"id":1,"a":"x","vector":[1,0]}],"upsert_columns":{"id":[2,3],"a":["y",null]},
          "patch_rows":[{"id":4,"b":null}],"deletes":[5]})",
      1234, std::nullopt, &types);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_TRUE(p->row_write);
  EXPECT_FALSE(p->by_affected_ids);
  auto body = Parse(p->upstream_body);
  EXPECT_EQ(body["upsert_rows"].as_array()[0].as_object()["_hevlayer_upserted_at"].as_int64(), 1234);
  EXPECT_EQ(body["upsert_columns"].as_object()["_hevlayer_upserted_at"].as_array().size(), 2u);
  EXPECT_EQ(body["patch_rows"].as_array()[0].as_object()["_hevlayer_upserted_at"].as_int64(), 1234);
  ASSERT_EQ(p->upserts.size(), 3u);
  EXPECT_EQ(p->upserts[0].id, tpuf::DocId::U64(1));
  EXPECT_EQ(p->upserts[0].attributes_json, R"({"a":"x"})");  // no id, vector or stamp
  ASSERT_TRUE(p->upserts[0].vector_f32.has_value());
  EXPECT_EQ(p->upserts[0].vector_f32->size(), 8u);
  EXPECT_EQ(p->upserts[2].attributes_json, "{}");  // a written null is an absent attribute
  ASSERT_EQ(p->patches.size(), 1u);
  EXPECT_EQ(p->patches[0].attributes_json, R"({"b":null})");  // a patched null removes
  ASSERT_EQ(p->deletes.size(), 1u);
  EXPECT_EQ(p->deletes[0], tpuf::DocId::U64(5));
}

TEST(WritePlan, ConditionalAndFilterWritesAskForAffectedIds) {
  auto p = PlanWrite(R"({"upsert_rows":[{"id":1,"v":2}],"upsert_condition":["v","Lt",{"$ref_new":"v"}]})",
                     7, std::nullopt);
  ASSERT_TRUE(p.ok());
  EXPECT_TRUE(p->by_affected_ids);
  EXPECT_FALSE(p->client_asked_affected_ids);
  EXPECT_TRUE(p->upserts.empty());
  EXPECT_TRUE(Parse(p->upstream_body)["return_affected_ids"].as_bool());

  auto f = PlanWrite(R"({"patch_by_filter":{"filters":["a","Eq",1],"patch":{"b":2}},"return_affected_ids":true})",
                     7, std::nullopt);
  ASSERT_TRUE(f.ok());
  EXPECT_TRUE(f->by_affected_ids);
  EXPECT_TRUE(f->client_asked_affected_ids);
  auto patch = Parse(f->upstream_body)["patch_by_filter"].as_object()["patch"].as_object();
  EXPECT_EQ(patch["_hevlayer_upserted_at"].as_int64(), 7);
}

TEST(WritePlan, RejectsWhatMustNeverReachTurbopuffer) {
  EXPECT_EQ(PlanWrite("{}", 1, std::nullopt).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(PlanWrite(R"({"upserts":[]})", 1, std::nullopt).status().code(),
            StatusCode::kInvalidArgument);
  auto reserved = PlanWrite(R"({"upsert_rows":[{"id":1,"_hevlayer_upserted_at":5}]})", 1, {});
  EXPECT_EQ(reserved.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(reserved.status().message().find("_hevlayer_upserted_at"), std::string::npos);
  EXPECT_FALSE(PlanWrite(R"({"upsert_columns":{"id":[1],"_hevlayer_x":[1]}})", 1, {}).ok());
  EXPECT_FALSE(PlanWrite(R"({"patch_by_filter":{"filters":[],"patch":{"_hevlayer_y":1}}})", 1, {}).ok());
}

TEST(WritePlan, MalformedAndNonRowWritesAreLeftToTurbopuffer) {
  for (const char* body : {R"({"upsert_rows":{"id":1}})", R"({"upsert_rows":[{"vector":[1]}]})",
                           R"({"deletes":true})", R"({"patch_rows":[{"id":1,"vector":[1]}]})",
                           R"({"upsert_columns":{"id":[1,2],"a":[1]}})"}) {
    auto p = PlanWrite(body, 1, std::nullopt);
    ASSERT_TRUE(p.ok()) << body;
    EXPECT_TRUE(p->upstream_decides) << body;
    EXPECT_FALSE(p->row_write) << body;
  }
  for (const char* body : {R"({"schema":{"a":"string"}})", R"({"copy_from_namespace":"x"})",
                           "not json", "[1]"}) {
    auto p = PlanWrite(body, 1, std::nullopt);
    ASSERT_TRUE(p.ok()) << body;
    EXPECT_FALSE(p->row_write) << body;
    EXPECT_FALSE(p->upstream_decides) << body;
  }
}

TEST(WritePlan, TypesStringIdsOnlyWhenSafe) {
  const char* uuid = "769c134d-07b8-4225-954a-b6cc5ffc320c";
  std::string body = std::string(R"({"deletes":["abc",")") + uuid + R"("]})";
  auto unknown = PlanWrite(body, 1, std::nullopt);
  ASSERT_TRUE(unknown.ok());
  EXPECT_TRUE(unknown->has_untyped_ids);  // a UUID-looking string in a namespace of unknown type
  ASSERT_EQ(unknown->deletes.size(), 1u);
  EXPECT_EQ(unknown->deletes[0], tpuf::DocId::String("abc"));
  auto as_uuid = PlanWrite(std::string(R"({"deletes":[")") + uuid + R"("]})", 1,
                           tpuf::IdType::kUuid);
  ASSERT_TRUE(as_uuid.ok());
  ASSERT_EQ(as_uuid->deletes.size(), 1u);
  EXPECT_EQ(as_uuid->deletes[0].type, tpuf::IdType::kUuid);
}

TEST(WritePlan, MirrorsValuesInTheFormTheUpstreamReturns) {
  const auto types = Types(R"({"when":"datetime","who":"uuid","n":"int","f":"float","s":"string",
      "days":"[]datetime","ids":"[]uuid","ns":"[]int","e":{"type":"[2]f32","ann":true}})");
  const std::string body = R"({"upsert_rows":[
      {"id":1,"when":"2026-05-30T02:00:00+02:00","who":"769C134D07B84225954AB6CC5FFC320C",
       "n":1.0,"f":2,"s":"2026-05-30T02:00:00+02:00","days":["2026-05-30"],
       "ids":["{769c134d-07b8-4225-954a-b6cc5ffc320c}"],"ns":[1e3,2],"e":[1,0.1000000001]}],
    "upsert_columns":{"id":[2,3],"when":["2026-05-30T00:00:00.000000000Z","2026-05-30"],
                      "n":[5,-0.0]}})";
  auto p = PlanWrite(body, 1, std::nullopt, &types);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_FALSE(p->has_untyped_attributes);
  ASSERT_EQ(p->upserts.size(), 3u);
  for (const auto& r : p->upserts) EXPECT_FALSE(r.form_unknown) << r.attributes_json;
  EXPECT_EQ(p->upserts[0].attributes_json,
            R"({"when":"2026-05-30T00:00:00.000000000Z",)"
            R"("who":"769c134d-07b8-4225-954a-b6cc5ffc320c","n":1,"f":2.0,)"
            R"("s":"2026-05-30T02:00:00+02:00","days":["2026-05-30T00:00:00.000000000Z"],)"
            R"("ids":["769c134d-07b8-4225-954a-b6cc5ffc320c"],"ns":[1000,2],"e":[1.0,0.1]})");
  EXPECT_EQ(p->upserts[1].attributes_json, R"({"when":"2026-05-30T00:00:00.000000000Z","n":5})");
  EXPECT_EQ(p->upserts[2].attributes_json, R"({"when":"2026-05-30T00:00:00.000000000Z","n":0})");
  // Turbopuffer gets the values as the client wrote them.
  auto sent = Parse(p->upstream_body);
  auto& row = sent["upsert_rows"].as_array()[0].as_object();
  EXPECT_EQ(row["when"].as_string(), "2026-05-30T02:00:00+02:00");
  EXPECT_TRUE(row["n"].is_double());
}

TEST(WritePlan, FloatsAreForwardedAndMirroredWithEveryDigit) {
  // Boost.JSON 1.81 alone reads these one ulp off; Turbopuffer reads them exactly.
  const auto types = Types(R"({"f":"[]float"})");
  const std::string floats = "[0.11935319286735585,1.6266288757324219,2.1829489720880483e41]";
  auto p = PlanWrite(R"({"upsert_rows":[{"id":1,"f":)" + floats + "}]}", 1, std::nullopt, &types);
  ASSERT_TRUE(p.ok());
  EXPECT_NE(p->upstream_body.find(floats), std::string::npos) << p->upstream_body;
  EXPECT_EQ(p->upserts[0].attributes_json, R"({"f":)" + floats + "}");
}

TEST(WritePlan, PatchesMergeValuesInTheUpstreamsForm) {
  const auto types = Types(R"({"when":"datetime","n":"float"})");
  auto p = PlanWrite(R"({"patch_rows":[{"id":1,"when":"2026-05-30","n":null}],
                         "patch_columns":{"id":[2],"n":[3]}})",
                     1, std::nullopt, &types);
  ASSERT_TRUE(p.ok());
  ASSERT_EQ(p->patches.size(), 2u);
  EXPECT_EQ(p->patches[0].attributes_json,
            R"({"when":"2026-05-30T00:00:00.000000000Z","n":null})");  // null still removes
  EXPECT_EQ(p->patches[1].attributes_json, R"({"n":3.0})");
}

TEST(WritePlan, TheWritesOwnSchemaTypesItsAttributes) {
  // Nothing known of the namespace; the write declares the types (also over what is known).
  const auto stale = Types(R"({"when":"string"})");
  auto p = PlanWrite(R"({"schema":{"when":{"type":"datetime"},"tags":"[]uuid"},
      "upsert_rows":[{"id":1,"when":"2026-05-30T02:00:00+02:00",
                      "tags":["769C134D-07B8-4225-954A-B6CC5FFC320C"]}]})",
                     1, std::nullopt, &stale);
  ASSERT_TRUE(p.ok());
  EXPECT_FALSE(p->has_untyped_attributes);
  ASSERT_EQ(p->upserts.size(), 1u);
  EXPECT_FALSE(p->upserts[0].form_unknown);
  EXPECT_EQ(p->upserts[0].attributes_json,
            R"({"when":"2026-05-30T00:00:00.000000000Z",)"
            R"("tags":["769c134d-07b8-4225-954a-b6cc5ffc320c"]})");
}

TEST(WritePlan, ARowWithAValueOfUnknownTypeIsNotMirrored) {
  const auto types = Types(R"({"a":"string"})");
  auto p = PlanWrite(R"({"upsert_rows":[{"id":1,"a":"x","b":"2026-05-30"},{"id":2,"a":"y"}],
                         "upsert_columns":{"id":[3,4],"b":[null,1]}})",
                     1, std::nullopt, &types);
  ASSERT_TRUE(p.ok());
  EXPECT_TRUE(p->has_untyped_attributes);  // the namespace's schema may tell `b`'s type
  ASSERT_EQ(p->upserts.size(), 4u);
  EXPECT_TRUE(p->upserts[0].form_unknown);
  EXPECT_FALSE(p->upserts[1].form_unknown);
  EXPECT_EQ(p->upserts[1].attributes_json, R"({"a":"y"})");
  EXPECT_FALSE(p->upserts[2].form_unknown);  // a null upserted is an absent attribute
  EXPECT_EQ(p->upserts[2].attributes_json, "{}");
  EXPECT_TRUE(p->upserts[3].form_unknown);  // 1 is returned as 1.0 if `b` is a float

  // Values returned as written whatever the type need none: bools, empty arrays, removals.
  auto q = PlanWrite(
      R"({"upsert_rows":[{"id":1,"ok":true,"tags":[]}],"patch_rows":[{"id":2,"x":null}]})", 1,
      std::nullopt, nullptr);
  ASSERT_TRUE(q.ok());
  EXPECT_FALSE(q->has_untyped_attributes);
  EXPECT_EQ(q->upserts[0].attributes_json, R"({"ok":true,"tags":[]})");
  EXPECT_EQ(q->patches[0].attributes_json, R"({"x":null})");
}

TEST(WritePlan, ARowWithAValueOfUncertainFormIsNotMirrored) {
  const auto types =
      Types(R"({"when":"datetime","v":{"type":"[2]f16","ann":true},"sparse":"{}f16"})");
  for (const char* row : {R"({"id":1,"when":"2026-05-30T00:00:00.0001Z"})",  // below a millisecond
                          R"({"id":1,"when":1780099200000})",                // epoch ms
                          R"({"id":1,"v":[0.5,0.25]})",                      // f16
                          R"({"id":1,"sparse":{"1":0.5}})"}) {
    auto p = PlanWrite(std::string(R"({"upsert_rows":[)") + row + "]}", 1, std::nullopt, &types);
    ASSERT_TRUE(p.ok()) << row;
    EXPECT_FALSE(p->has_untyped_attributes) << row;  // known type: a schema read cannot help
    ASSERT_EQ(p->upserts.size(), 1u);
    EXPECT_TRUE(p->upserts[0].form_unknown) << row;
  }
}

TEST(WritePlan, ConditionalWritesNeedNoAttributeTypes) {
  auto p = PlanWrite(R"({"upsert_rows":[{"id":1,"a":"x"}],"upsert_condition":["a","Eq","y"]})", 1,
                     std::nullopt, nullptr);
  ASSERT_TRUE(p.ok());
  EXPECT_TRUE(p->by_affected_ids);
  EXPECT_FALSE(p->has_untyped_attributes);
}

TEST(WritePlan, AffectedIdsParseAndStrip) {
  std::string res = R"({"status":"OK","rows_affected":2,"upserted_ids":[1],"deleted_ids":[3]})";
  auto ids = ParseAffectedIds(res, std::nullopt);
  ASSERT_EQ(ids.upserted.size(), 1u);
  ASSERT_EQ(ids.deleted.size(), 1u);
  EXPECT_TRUE(ids.patched.empty());
  auto stripped = StripAffectedIds(res);
  ASSERT_TRUE(stripped);
  EXPECT_EQ(*stripped, R"({"status":"OK","rows_affected":2})");
}

}  // namespace
}  // namespace layer::gateway
