#include <atomic>
#include <thread>

#include "engine_test_util.h"

namespace layer::origin::testing {
namespace {

using ConcurrencyTest = EngineTest;

TEST_F(ConcurrencyTest, ParallelWritersAndReadersOnOneNamespace) {
  ASSERT_EQ(Write("n", R"({"upsert_rows":[{"id":0,"t":0}]})").status, 200);
  constexpr int kWriters = 4;
  constexpr int kWritesEach = 50;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int w = 0; w < kWriters; ++w) {
    threads.emplace_back([&, w] {
      for (int i = 0; i < kWritesEach; ++i) {
        int id = 1 + w * kWritesEach + i;
        std::string body = R"({"upsert_rows":[{"id":)" + std::to_string(id) + R"(,"t":)" +
                           std::to_string(w) + "}]}";
        OriginRequest req{"POST", "/v2/namespaces/n", "", "", body};
        if (engine_->Handle(req).status != 200) ++failures;
      }
    });
  }
  for (int r = 0; r < 2; ++r) {
    threads.emplace_back([&] {
      for (int i = 0; i < 50; ++i) {
        std::string body = R"({"aggregate_by":{"c":["Count"]}})";
        OriginRequest req{"POST", "/v2/namespaces/n/query", "", "", body};
        if (engine_->Handle(req).status != 200) ++failures;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  Reply r = Query("n", R"({"aggregate_by":{"c":["Count"]}})");
  EXPECT_EQ(r.json.at("aggregations").at("c"), 1 + kWriters * kWritesEach);
  Reopen();
  r = Query("n", R"({"aggregate_by":{"c":["Count"]}})");
  EXPECT_EQ(r.json.at("aggregations").at("c"), 1 + kWriters * kWritesEach);
}

TEST_F(ConcurrencyTest, CreateDeleteRacesLeaveConsistentState) {
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 30; ++i) {
        std::string ns = "ns" + std::to_string(i % 3);
        if ((i + t) % 4 == 0) {
          OriginRequest req{"DELETE", "/v2/namespaces/" + ns, "", "", ""};
          std::string path = "/v2/namespaces/" + ns;
          req.path = path;
          engine_->Handle(req);
        } else {
          std::string path = "/v2/namespaces/" + ns;
          std::string body = R"({"upsert_rows":[{"id":)" + std::to_string(i) + "}]}";
          OriginRequest req{"POST", path, "", "", body};
          EXPECT_EQ(engine_->Handle(req).status, 200);
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  std::string before = Do("GET", "/v1/namespaces").body;
  std::vector<std::string> rows;
  for (int i = 0; i < 3; ++i) {
    rows.push_back(Query("ns" + std::to_string(i), R"({"rank_by":["id","asc"],"top_k":100})").body);
  }
  Reopen();
  EXPECT_EQ(Do("GET", "/v1/namespaces").body, before);
  for (int i = 0; i < 3; ++i) {
    Reply r = Query("ns" + std::to_string(i), R"({"rank_by":["id","asc"],"top_k":100})");
    if (r.status == 200) {
      EXPECT_EQ(RawField(r.body, "rows"), RawField(rows[i], "rows"));
    } else {
      EXPECT_EQ(rows[i], r.body);
    }
  }
}

}  // namespace
}  // namespace layer::origin::testing
