// On-demand snapshot jobs: the POST body's validation, the params' stored form and the
// SnapshotJob wire shape (jobs/snapshot_job_runner.h).
#include "jobs/snapshot_job_runner.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

namespace layer::jobs {
namespace {

namespace json = boost::json;

TEST(SnapshotJobRequestTest, Defaults) {
  auto p = ParseSnapshotJobRequest(R"({"field":"color"})");
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->field, "color");
  EXPECT_EQ(p->source, SnapshotSource::kAuto);
  EXPECT_FALSE(p->filters);
  EXPECT_EQ(p->page_size, 1000);
}

TEST(SnapshotJobRequestTest, EveryMember) {
  auto p = ParseSnapshotJobRequest(
      R"({"field":"color","source":"origin","filters":["size","In",[1, 2]],"page_size":10000})");
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->source, SnapshotSource::kOrigin);
  EXPECT_EQ(*p->filters, R"(["size","In",[1,2]])");  // compact
  EXPECT_EQ(p->page_size, 10000);
  for (const char* source : {"auto", "stored", "cache", "origin"}) {
    auto q = ParseSnapshotJobRequest(std::string(R"({"field":"c","source":")") + source + "\"}");
    ASSERT_TRUE(q.ok()) << source;
    EXPECT_EQ(SnapshotSourceName(q->source), source);
  }
}

TEST(SnapshotJobRequestTest, RefusesBadBodies) {
  for (const char* bad : {
           "", "[]", "not json", "{}", R"({"field":""})", R"({"field":"   "})",
           R"({"field":3})", R"({"field":null})", R"({"field":"id"})", R"({"field":"vector"})",
           R"({"field":"_hevlayer_shard"})", R"({"field":"c","source":"snapshot"})",
           R"({"field":"c","source":3})", R"({"field":"c","page_size":0})",
           R"({"field":"c","page_size":10001})", R"({"field":"c","page_size":"10"})",
           R"({"field":"c","page_size":1.5})", R"({"field":"c","filters":"size"})",
           R"({"field":"c","filters":[]})", R"({"field":"c","filters":{"a":1}})",
           R"({"field":"c","source":"stored","filters":["size","Eq",1]})",
           R"({"field":"c","other":1})"}) {
    auto p = ParseSnapshotJobRequest(bad);
    EXPECT_EQ(p.status().code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_FALSE(p.status().message().empty()) << bad;
  }
  // A null filter is no filter, with any source.
  EXPECT_TRUE(ParseSnapshotJobRequest(R"({"field":"c","source":"stored","filters":null})").ok());
}

TEST(SnapshotJobParamsTest, RoundTripAndSameRequest) {
  SnapshotJobParams p;
  p.field = "colour \"x\"";
  p.source = SnapshotSource::kOrigin;
  p.filters = R"(["a","Eq",1])";
  p.page_size = 7;
  auto back = SnapshotJobParamsFromJson(SnapshotJobParamsToJson(p));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_TRUE(back->SameRequest(p));
  EXPECT_FALSE(back->sha);

  p.effective_source = SnapshotSource::kOrigin;
  p.sha = std::string(64, 'a');
  p.key = "snapshots-on-demand/ns/0000000000001-aaaaaaa.json";
  p.watermark_ms = 1;
  back = SnapshotJobParamsFromJson(SnapshotJobParamsToJson(p));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->sha, p.sha);
  EXPECT_EQ(back->key, p.key);
  EXPECT_EQ(back->watermark_ms, p.watermark_ms);
  EXPECT_EQ(back->effective_source, SnapshotSource::kOrigin);

  SnapshotJobParams other = p;
  other.field = "size";
  EXPECT_FALSE(other.SameRequest(p));
  other = p;
  other.filters.reset();
  EXPECT_FALSE(other.SameRequest(p));
  other = p;
  other.sha.reset();  // results do not make another request
  EXPECT_TRUE(other.SameRequest(p));

  EXPECT_EQ(SnapshotJobParamsFromJson("{}").status().code(), StatusCode::kCorruption);
  EXPECT_EQ(SnapshotJobParamsFromJson("[]").status().code(), StatusCode::kCorruption);
}

TEST(SnapshotJobWireTest, RunningAndCompleted) {
  Job job;
  job.id = "11111111-2222-4333-8444-555555555555";
  job.ns = "ns1@0a1b";  // a tenant's partition: the wire shows the namespace
  job.kind = JobKind::kSnapshot;
  job.created_at = 1779789600000;
  SnapshotJobParams p;
  p.field = "color";
  job.params = SnapshotJobParamsToJson(p);
  json::object running = json::parse(SnapshotJobToJson(job)).as_object();
  EXPECT_EQ(running.at("namespace"), "ns1");
  EXPECT_EQ(running.at("status"), "running");
  EXPECT_EQ(running.at("field"), "color");
  EXPECT_EQ(running.at("source"), "auto");
  EXPECT_TRUE(running.at("sha").is_null());
  EXPECT_FALSE(running.contains("effective_source"));
  EXPECT_FALSE(running.contains("stable_as_of"));
  EXPECT_EQ(running.at("created_at"), "2026-05-26T10:00:00.000Z");

  p.effective_source = SnapshotSource::kStored;
  p.sha = std::string(64, 'b');
  job.params = SnapshotJobParamsToJson(p);
  job.status = JobStatus::kCompleted;
  job.progress = 1.0;
  job.stable_as_of = 42;
  job.documents_scanned = 9;
  job.completed_at = 1779789601000;
  json::object done = json::parse(SnapshotJobToJson(job)).as_object();
  EXPECT_EQ(done.at("status"), "completed");
  EXPECT_EQ(done.at("effective_source"), "stored");
  EXPECT_EQ(done.at("sha").as_string(), std::string(64, 'b'));
  EXPECT_EQ(done.at("stable_as_of"), 42);
  EXPECT_EQ(done.at("documents_scanned"), 9);

  Job list[] = {job, job};
  json::object both = json::parse(SnapshotJobListToJson(list)).as_object();
  EXPECT_EQ(both.at("snapshot_jobs").as_array().size(), 2u);
}

}  // namespace
}  // namespace layer::jobs
