// Kill -9 durability: a child process acknowledges writes one by one and is SIGKILLed mid-stream;
// every acknowledged write must be visible after reopening the data directory.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine_test_util.h"

namespace layer::origin::testing {
namespace {

using DurabilityTest = EngineTest;

TEST_F(DurabilityTest, AcknowledgedWritesSurviveSigkill) {
  engine_.reset();  // the child owns the data dir while it runs
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    close(fds[0]);
    EngineOptions opts;
    opts.data_dir = dir_;
    auto engine = Engine::Open(std::move(opts));
    if (!engine.ok()) _exit(2);
    for (int i = 1;; ++i) {
      std::string body = R"({"upsert_rows":[{"id":)" + std::to_string(i) + R"(,"v":"x"}]})";
      OriginRequest req{"POST", "/v2/namespaces/d", "", "", body};
      if ((*engine)->Handle(req).status != 200) _exit(3);
      if (i % 10 == 0) {
        OriginRequest del{"DELETE", "/v2/namespaces/gone", "", "", ""};
        (*engine)->Handle(del);
      }
      int32_t acked = i;
      if (write(fds[1], &acked, sizeof(acked)) != sizeof(acked)) _exit(4);
    }
  }
  close(fds[1]);
  int32_t acked = 0;
  while (acked < 40) {
    ASSERT_EQ(read(fds[0], &acked, sizeof(acked)), static_cast<ssize_t>(sizeof(acked)));
  }
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  // Drain acknowledgements sent before the kill landed.
  int32_t more;
  while (read(fds[0], &more, sizeof(more)) == static_cast<ssize_t>(sizeof(more))) acked = more;
  close(fds[0]);

  Reopen();
  Reply r = Query("d", R"({"aggregate_by":{"c":["Count"]}})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_GE(r.json.at("aggregations").at("c").to_number<int64_t>(), acked);
  // The namespace stays writable after recovery.
  EXPECT_EQ(Write("d", R"({"upsert_rows":[{"id":0}]})").status, 200);
}

TEST_F(DurabilityTest, DeleteIsDurable) {
  ASSERT_EQ(Write("a", R"({"upsert_rows":[{"id":1}]})").status, 200);
  ASSERT_EQ(Write("b", R"({"upsert_rows":[{"id":1}]})").status, 200);
  ASSERT_EQ(Do("DELETE", "/v2/namespaces/a").status, 200);
  Reopen();
  EXPECT_EQ(Do("GET", "/v1/namespaces/a/schema").status, 404);
  EXPECT_EQ(Do("GET", "/v1/namespaces/b/schema").status, 200);
}

}  // namespace
}  // namespace layer::origin::testing
