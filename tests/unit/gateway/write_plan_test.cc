#include "gateway/write_plan.h"

#include <boost/json.hpp>
#include <gtest/gtest.h>

namespace layer::gateway {
namespace {

namespace json = boost::json;

json::object Parse(const std::string& s) { return json::parse(s).as_object(); }

TEST(WritePlan, StampsRowsAndColumnsWithOneStamp) {
  auto p = PlanWrite(
      R"({"upsert_rows":[{"id":1,"a":"x","vector":[1,0]}],"upsert_columns":{"id":[2,3],"a":["y",null]},
          "patch_rows":[{"id":4,"b":null}],"deletes":[5]})",
      1234, std::nullopt);
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
