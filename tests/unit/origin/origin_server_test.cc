// The origin's HTTP front without sockets: API keys, fault rules and OriginHandler over a fake
// exchange (docs/origin.md "API keys", "Fault injection").
#include "origin/origin_server.h"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/json.hpp>

#include <filesystem>
#include <string>

#include "origin/api_keys.h"

namespace layer::origin {
namespace {

namespace json = boost::json;
using Verdict = ApiKeys::Verdict;

// ------------------------------------------------------------------------------------------------
// ApiKeys
// ------------------------------------------------------------------------------------------------
TEST(ApiKeys, OpenAcceptsAnythingIncludingNoHeader) {
  ApiKeys keys;
  EXPECT_EQ(keys.Check(""), Verdict::kAllowed);
  EXPECT_EQ(keys.Check("Bearer whatever"), Verdict::kAllowed);
  EXPECT_EQ(keys.Check("Basic dXNlcjpwdw=="), Verdict::kAllowed);
  EXPECT_EQ(keys.ToJson(), R"({"enforced":false,"count":0})");
}

TEST(ApiKeys, EnforcedAcceptsOnlyKnownBearerTokens) {
  ApiKeys keys({"tpuf_one", "tpuf_two"});
  EXPECT_EQ(keys.Check("Bearer tpuf_one"), Verdict::kAllowed);
  EXPECT_EQ(keys.Check("bearer  tpuf_two "), Verdict::kAllowed);
  EXPECT_EQ(keys.Check(""), Verdict::kMissing);
  EXPECT_EQ(keys.Check("Bearer"), Verdict::kMissing);
  EXPECT_EQ(keys.Check("Basic tpuf_one"), Verdict::kMissing);
  EXPECT_EQ(keys.Check("tpuf_one"), Verdict::kMissing);
  EXPECT_EQ(keys.Check("Bearer tpuf_three"), Verdict::kUnknown);
  // Prefixes, extensions and case variants of a key are different keys.
  EXPECT_EQ(keys.Check("Bearer tpuf_on"), Verdict::kUnknown);
  EXPECT_EQ(keys.Check("Bearer tpuf_one1"), Verdict::kUnknown);
  EXPECT_EQ(keys.Check("Bearer tpuf_onetpuf_one"), Verdict::kUnknown);
  EXPECT_EQ(keys.Check("Bearer TPUF_ONE"), Verdict::kUnknown);
  EXPECT_EQ(keys.ToJson(), R"({"enforced":true,"count":2})");
}

TEST(ApiKeys, ConstantTimeEqualIsPlainEquality) {
  EXPECT_TRUE(ApiKeys::ConstantTimeEqual("abc", "abc"));
  EXPECT_FALSE(ApiKeys::ConstantTimeEqual("abc", "abd"));
  EXPECT_FALSE(ApiKeys::ConstantTimeEqual("abc", "abcabc"));
  EXPECT_FALSE(ApiKeys::ConstantTimeEqual("abcabc", "abc"));
  EXPECT_FALSE(ApiKeys::ConstantTimeEqual("abc", ""));
  EXPECT_FALSE(ApiKeys::ConstantTimeEqual("", "abc"));
  EXPECT_TRUE(ApiKeys::ConstantTimeEqual("", ""));
}

TEST(ApiKeys, ReplaceRevokesAndOpenReopens) {
  ApiKeys keys({"old"});
  ASSERT_TRUE(keys.ReplaceFromJson(R"({"keys":["new1","new2"]})").ok());
  EXPECT_EQ(keys.Check("Bearer old"), Verdict::kUnknown);
  EXPECT_EQ(keys.Check("Bearer new2"), Verdict::kAllowed);
  EXPECT_EQ(keys.ToJson(), R"({"enforced":true,"count":2})");
  // An empty set refuses every request.
  ASSERT_TRUE(keys.ReplaceFromJson(R"({"keys":[]})").ok());
  EXPECT_EQ(keys.Check("Bearer new1"), Verdict::kUnknown);
  keys.Open();
  EXPECT_EQ(keys.Check(""), Verdict::kAllowed);
  // Replacing the set of an open origin starts enforcing it.
  ASSERT_TRUE(keys.ReplaceFromJson(R"({"keys":["k"]})").ok());
  EXPECT_EQ(keys.Check(""), Verdict::kMissing);
}

TEST(ApiKeys, InvalidReplacementChangesNothing) {
  ApiKeys keys({"k"});
  for (const char* bad : {"", "{", "[]", R"({"keys":"k"})", R"({"keys":[1]})", R"({"keys":[""]})",
                          R"({"keys":["a b"]})", R"({"keys":["a,b"]})", R"({"keys":["k"],"x":1})",
                          R"({"key":["k"]})"}) {
    EXPECT_FALSE(keys.ReplaceFromJson(bad).ok()) << bad;
  }
  EXPECT_EQ(keys.Check("Bearer k"), Verdict::kAllowed);
  EXPECT_EQ(keys.ToJson(), R"({"enforced":true,"count":1})");
}

TEST(ApiKeys, UnauthorizedIsTurbopuffersEnvelope) {
  for (Verdict v : {Verdict::kMissing, Verdict::kUnknown}) {
    http::Response r = UnauthorizedResponse(v);
    EXPECT_EQ(r.result_int(), 401);
    EXPECT_EQ(r[http::Field::content_type], "application/json");
    json::value body = json::parse(r.body());
    ASSERT_TRUE(body.is_object());
    EXPECT_EQ(body.as_object().size(), 2u);
    EXPECT_EQ(body.at("status"), "error");
    EXPECT_FALSE(body.at("error").as_string().empty());
  }
}

// ------------------------------------------------------------------------------------------------
// FaultInjector
// ------------------------------------------------------------------------------------------------
TEST(FaultInjector, ParsesAfterApplyRules) {
  FaultInjector f;
  ASSERT_TRUE(f.Replace(R"({"write":{"after_apply":"drop","times":1},
                            "delete_namespace":{"after_apply":"delay","after_apply_delay_ms":250,
                                                "after_apply_rate":0.5},
                            "*":{"after_apply":"drop"}})")
                  .ok());
  json::value v = json::parse(f.ToJson());
  EXPECT_EQ(v.at("write").at("after_apply"), "drop");
  EXPECT_EQ(v.at("write").at("times"), 1);
  EXPECT_FALSE(v.at("write").as_object().contains("after_apply_delay_ms"));
  EXPECT_EQ(v.at("delete_namespace").at("after_apply"), "delay");
  EXPECT_EQ(v.at("delete_namespace").at("after_apply_delay_ms"), 250);
  EXPECT_EQ(v.at("delete_namespace").at("after_apply_rate").to_number<double>(), 0.5);
  EXPECT_FALSE(v.at("*").as_object().contains("times"));
  // Rules without after-apply faults print as before.
  ASSERT_TRUE(f.Replace(R"({"query":{"latency_ms":5}})").ok());
  EXPECT_FALSE(json::parse(f.ToJson()).at("query").as_object().contains("after_apply"));
}

TEST(FaultInjector, RefusesInconsistentRulesAndKeepsTheOldOnes) {
  FaultInjector f;
  ASSERT_TRUE(f.Replace(R"({"write":{"error_rate":1}})").ok());
  const std::string before = f.ToJson();
  for (const char* bad : {
           R"({"write":{"after_apply":"explode"}})",
           R"({"write":{"after_apply":1}})",
           R"({"write":{"after_apply":"delay"}})",  // no delay given
           R"({"write":{"after_apply":"delay","after_apply_delay_ms":0}})",
           R"({"write":{"after_apply":"delay","after_apply_delay_ms":1.5}})",
           R"({"write":{"after_apply":"drop","after_apply_delay_ms":10}})",
           R"({"write":{"after_apply_delay_ms":10}})",  // no after_apply
           R"({"write":{"after_apply_rate":0.5}})",
           R"({"write":{"after_apply":"drop","after_apply_rate":2}})",
           R"({"write":{"times":-1}})",
           R"({"write":{"times":1.5}})",
           R"({"query":{"after_apply":"drop"}})",  // queries change nothing
           R"({"namespaces":{"after_apply":"delay","after_apply_delay_ms":5}})",
       }) {
    EXPECT_FALSE(f.Replace(bad).ok()) << bad;
  }
  EXPECT_EQ(f.ToJson(), before);
}

TEST(FaultInjector, AfterApplyFaultsOnlyForDataChangingRequests) {
  FaultInjector f;
  ASSERT_TRUE(f.Replace(R"({"*":{"after_apply":"delay","after_apply_delay_ms":40}})").ok());
  EXPECT_EQ(f.Plan("query", false).after_apply, AfterApply::kNone);
  FaultPlan p = f.Plan("write", true);
  EXPECT_EQ(p.after_apply, AfterApply::kDelay);
  EXPECT_EQ(p.after_apply_delay_ms, 40);
  EXPECT_EQ(f.Plan("delete_namespace", true).after_apply, AfterApply::kDelay);
}

TEST(FaultInjector, BeforeApplyFaultsPreemptAfterApplyOnes) {
  FaultInjector f;
  ASSERT_TRUE(
      f.Replace(R"({"write":{"error_rate":1,"error_status":503,"after_apply":"drop"}})").ok());
  FaultPlan p = f.Plan("write", true);
  EXPECT_EQ(p.error_status, 503);
  EXPECT_EQ(p.after_apply, AfterApply::kNone);  // nothing is applied, so nothing after it
}

TEST(FaultInjector, TimesAffectsExactlyThatManyRequests) {
  FaultInjector f;
  ASSERT_TRUE(f.Replace(R"({"write":{"after_apply":"drop","times":2},
                            "*":{"error_rate":1,"error_status":500}})")
                  .ok());
  // A request the rule does not affect (a read under the write family) uses no budget.
  EXPECT_EQ(f.Plan("write", false).after_apply, AfterApply::kNone);
  EXPECT_EQ(f.Plan("write", true).after_apply, AfterApply::kDrop);
  EXPECT_EQ(json::parse(f.ToJson()).at("write").at("times"), 1);
  EXPECT_EQ(f.Plan("write", true).after_apply, AfterApply::kDrop);
  // Spent: the rule stays listed with 0 left and injects nothing; no fall-back to "*".
  for (int i = 0; i < 5; ++i) {
    FaultPlan p = f.Plan("write", true);
    EXPECT_EQ(p.after_apply, AfterApply::kNone);
    EXPECT_EQ(p.error_status, 0);
  }
  EXPECT_EQ(json::parse(f.ToJson()).at("write").at("times"), 0);
  EXPECT_EQ(f.Plan("query", false).error_status, 500);
}

TEST(FaultInjector, RatesDrawAFraction) {
  FaultInjector f;
  ASSERT_TRUE(f.Replace(R"({"write":{"after_apply":"drop","after_apply_rate":0.25}})").ok());
  int fired = 0;
  for (int i = 0; i < 4000; ++i) fired += f.Plan("write", true).after_apply == AfterApply::kDrop;
  EXPECT_GT(fired, 700);
  EXPECT_LT(fired, 1300);
}

// ------------------------------------------------------------------------------------------------
// OriginHandler over a fake exchange
// ------------------------------------------------------------------------------------------------
class FakeExchange : public http::Exchange {
 public:
  FakeExchange(http::Verb method, std::string target, std::string body,
               std::string authorization = "") {
    req_.method(method);
    req_.target(target);
    req_.version(11);
    if (!authorization.empty()) req_.set(http::Field::authorization, authorization);
    req_.set(http::Field::content_type, "application/json");
    body_ = std::move(body);
  }
  const http::Request& request() const override { return req_; }
  Task<http::BodyStatus> ReadBody() override {
    body_read = true;
    co_return http::BodyStatus::kOk;
  }
  std::string& body() override { return body_; }

  bool body_read = false;

 private:
  http::Request req_;
  std::string body_;
};

class OriginHandlerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/origin_handler_test_XXXXXX";
    dir_ = mkdtemp(tmpl);
    EngineOptions opts;
    opts.data_dir = dir_;
    auto e = Engine::Open(std::move(opts));
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    engine_ = std::move(e).value();
    OriginHandlerOptions hopts;
    hopts.faults = &faults_;
    hopts.keys = &keys_;
    handler_ = std::make_unique<OriginHandler>(*engine_, hopts);
  }
  void TearDown() override {
    handler_.reset();
    engine_.reset();
    std::filesystem::remove_all(dir_);
  }

  http::Response Run(FakeExchange& ex) {
    boost::asio::io_context io;
    auto fut = boost::asio::co_spawn(io, handler_->Handle(ex), boost::asio::use_future);
    io.run();
    return fut.get();
  }
  http::Response Do(http::Verb method, std::string target, std::string body = "",
                    std::string authorization = "Bearer good", bool* dropped = nullptr) {
    FakeExchange ex(method, std::move(target), std::move(body), std::move(authorization));
    http::Response r = Run(ex);
    if (dropped) *dropped = ex.info.drop_connection;
    return r;
  }
  std::string Ids(const std::string& ns) {
    http::Response r = Do(http::Verb::post, "/v2/namespaces/" + ns + "/query",
                          R"({"rank_by":["id","asc"],"limit":100})");
    if (r.result_int() != 200) return std::to_string(r.result_int());
    std::string out;
    const json::value body = json::parse(r.body());
    for (const auto& row : body.at("rows").as_array()) {
      out += (out.empty() ? "" : ",") + json::serialize(row.at("id"));
    }
    return out;
  }

  std::string dir_;
  std::unique_ptr<Engine> engine_;
  FaultInjector faults_;
  ApiKeys keys_{std::vector<std::string>{"good"}};
  std::unique_ptr<OriginHandler> handler_;
};

TEST_F(OriginHandlerTest, RefusedWriteChangesNothingAndReadsItsBody) {
  ASSERT_EQ(Do(http::Verb::post, "/v2/namespaces/a", R"({"upsert_rows":[{"id":1}]})").result_int(),
            200);
  for (const char* auth : {"", "Bearer bad", "Basic Z29vZA=="}) {
    FakeExchange ex(http::Verb::post, "/v2/namespaces/a", R"({"upsert_rows":[{"id":2}]})", auth);
    http::Response r = Run(ex);
    EXPECT_EQ(r.result_int(), 401) << auth;
    EXPECT_EQ(json::parse(r.body()).at("status"), "error");
    EXPECT_TRUE(ex.body_read);  // the connection stays usable
  }
  EXPECT_EQ(Ids("a"), "1");
  // The same for a namespace delete.
  EXPECT_EQ(Do(http::Verb::delete_, "/v2/namespaces/a", "", "Bearer bad").result_int(), 401);
  EXPECT_EQ(Ids("a"), "1");
}

TEST_F(OriginHandlerTest, RefusedRequestsUseNoFaultBudget) {
  ASSERT_TRUE(faults_.Replace(R"({"write":{"after_apply":"drop","times":1}})").ok());
  EXPECT_EQ(
      Do(http::Verb::post, "/v2/namespaces/a", R"({"upsert_rows":[{"id":1}]})", "").result_int(),
      401);
  bool dropped = false;
  Do(http::Verb::post, "/v2/namespaces/a", R"({"upsert_rows":[{"id":1}]})", "Bearer good",
     &dropped);
  EXPECT_TRUE(dropped);
}

TEST_F(OriginHandlerTest, AdminRoutesNeedNoKeyAndReplaceTheKeySet) {
  EXPECT_EQ(Do(http::Verb::get, "/_test/keys", "", "").body(), R"({"enforced":true,"count":1})");
  EXPECT_EQ(Do(http::Verb::put, "/_test/keys", R"({"keys":["next"]})", "").result_int(), 200);
  EXPECT_EQ(Do(http::Verb::get, "/v1/namespaces", "", "Bearer good").result_int(), 401);
  EXPECT_EQ(Do(http::Verb::get, "/v1/namespaces", "", "Bearer next").result_int(), 200);
  EXPECT_EQ(Do(http::Verb::put, "/_test/keys", R"({"keys":["a b"]})", "").result_int(), 422);
  EXPECT_EQ(Do(http::Verb::get, "/v1/namespaces", "", "Bearer next").result_int(), 200);
  EXPECT_EQ(Do(http::Verb::delete_, "/_test/keys", "", "").result_int(), 200);
  EXPECT_EQ(Do(http::Verb::get, "/v1/namespaces", "", "").result_int(), 200);
  EXPECT_EQ(Do(http::Verb::get, "/_test/faults", "", "").result_int(), 200);
}

TEST_F(OriginHandlerTest, ApplyThenDropAppliesTheWriteAndDropsTheAnswer) {
  ASSERT_TRUE(faults_.Replace(R"({"write":{"after_apply":"drop","times":1}})").ok());
  bool dropped = false;
  Do(http::Verb::post, "/v2/namespaces/a", R"({"upsert_rows":[{"id":7}]})", "Bearer good",
     &dropped);
  EXPECT_TRUE(dropped);
  EXPECT_EQ(Ids("a"), "7");
  // The budget is spent: the next write is answered.
  dropped = true;
  http::Response r = Do(http::Verb::post, "/v2/namespaces/a", R"({"upsert_rows":[{"id":8}]})",
                        "Bearer good", &dropped);
  EXPECT_FALSE(dropped);
  EXPECT_EQ(r.result_int(), 200);
  EXPECT_EQ(Ids("a"), "7,8");
}

TEST_F(OriginHandlerTest, ApplyThenDropOnNamespaceDelete) {
  ASSERT_EQ(Do(http::Verb::post, "/v2/namespaces/a", R"({"upsert_rows":[{"id":1}]})").result_int(),
            200);
  ASSERT_TRUE(faults_.Replace(R"({"delete_namespace":{"after_apply":"drop"}})").ok());
  bool dropped = false;
  Do(http::Verb::delete_, "/v2/namespaces/a", "", "Bearer good", &dropped);
  EXPECT_TRUE(dropped);
  EXPECT_EQ(Ids("a"), "404");
}

TEST_F(OriginHandlerTest, ApplyThenDelayAnswersNormally) {
  ASSERT_TRUE(
      faults_.Replace(R"({"write":{"after_apply":"delay","after_apply_delay_ms":30}})").ok());
  bool dropped = true;
  http::Response r = Do(http::Verb::post, "/v2/namespaces/a", R"({"upsert_rows":[{"id":3}]})",
                        "Bearer good", &dropped);
  EXPECT_FALSE(dropped);
  EXPECT_EQ(r.result_int(), 200);
  EXPECT_EQ(json::parse(r.body()).at("rows_upserted"), 1);
  EXPECT_EQ(Ids("a"), "3");
}

}  // namespace
}  // namespace layer::origin
