#include "http/io_pool.h"

#include <gtest/gtest.h>
#include <pthread.h>
#include <sched.h>

#include <boost/asio/post.hpp>
#include <chrono>
#include <future>
#include <string>
#include <vector>

#include "common/thread.h"

namespace layer::http {
namespace {

using std::chrono::microseconds;
using std::chrono::nanoseconds;

struct WorkerView {
  const IoPool* pool = nullptr;
  int index = -2;
  std::string name;
  nanoseconds slice{-1};
  std::vector<int> cpus;  // the CPUs the worker may run on
};

std::vector<int> CpusOf(pid_t tid) {
  cpu_set_t set;
  CPU_ZERO(&set);
  EXPECT_EQ(sched_getaffinity(tid, sizeof set, &set), 0);
  std::vector<int> cpus;
  for (int c = 0; c < CPU_SETSIZE; ++c) {
    if (CPU_ISSET(c, &set)) cpus.push_back(c);
  }
  return cpus;
}

WorkerView Look(IoPool& pool, int i) {
  std::promise<WorkerView> seen;
  boost::asio::post(pool.at(i), [&] {
    WorkerView v;
    v.pool = IoPool::Current();
    v.index = IoPool::CurrentIndex();
    char name[16] = {};
    pthread_getname_np(pthread_self(), name, sizeof(name));
    v.name = name;
    v.slice = CurrentThreadSlice();
    v.cpus = CpusOf(0);
    seen.set_value(v);
  });
  return seen.get_future().get();
}

TEST(IoPool, WorkersAreNamedAndIndexed) {
  IoPool pool(2);
  pool.Start();
  for (int i = 0; i < 2; ++i) {
    WorkerView v = Look(pool, i);
    EXPECT_EQ(v.index, i);
    EXPECT_EQ(v.name, "layer-io-" + std::to_string(i));
  }
  EXPECT_EQ(IoPool::CurrentIndex(), -1);
  pool.Stop();
  pool.Join();
}

TEST(IoPool, EachWorkerKnowsItsOwnPool) {
  // A process runs a request pool and a background pool side by side: a worker's index alone
  // (0 in both) does not tell them apart, its pool does.
  IoPool requests(2);
  IoPool background(1, {}, "layer-warm-io");
  requests.Start();
  background.Start();
  WorkerView r0 = Look(requests, 0), r1 = Look(requests, 1), b0 = Look(background, 0);
  EXPECT_EQ(r0.pool, &requests);
  EXPECT_EQ(r1.pool, &requests);
  EXPECT_EQ(b0.pool, &background);
  EXPECT_EQ(b0.index, 0);
  EXPECT_EQ(b0.name, "layer-warm-io-0");
  EXPECT_EQ(r0.name, "layer-io-0");
  EXPECT_EQ(IoPool::Current(), nullptr);
  requests.Stop();
  background.Stop();
  requests.Join();
  background.Join();
}

TEST(IoPool, WorkersHaveTheShortSliceOnlyWhileBackgroundWorkRuns) {
  if (!PerThreadSlicesSupported()) GTEST_SKIP() << "kernel without per-task scheduler slices";
  const nanoseconds mine = CurrentThreadSlice();
  ASSERT_NE(mine, nanoseconds(300'000));
  RequestSlices slices(microseconds(300));
  {
    IoPool sliced(2, &slices);
    IoPool plain(1);
    sliced.Start();
    plain.Start();
    Look(sliced, 0);
    Look(sliced, 1);
    EXPECT_EQ(slices.enrolled(), 2u);
    EXPECT_EQ(Look(sliced, 0).slice, mine);  // nothing in the background: the default
    {
      RequestSlices::BackgroundWork busy = slices.Background();
      EXPECT_EQ(Look(sliced, 0).slice, nanoseconds(300'000));
      EXPECT_EQ(Look(sliced, 1).slice, nanoseconds(300'000));
      EXPECT_EQ(Look(plain, 0).slice, mine);  // not enrolled
      EXPECT_EQ(CurrentThreadSlice(), mine);
    }
    EXPECT_EQ(Look(sliced, 0).slice, mine);
    EXPECT_EQ(Look(sliced, 1).slice, mine);
    sliced.Stop();
    plain.Stop();
    sliced.Join();
    plain.Join();
  }
  EXPECT_EQ(slices.enrolled(), 0u);  // the workers left as they ended
}

TEST(IoPool, PinnedWorkersEachRunOnOneCpuInTurn) {
  const std::vector<int> all = CpusOf(0);
  IoPool pinned(3, {}, "layer-io", /*pin=*/true);
  IoPool unpinned(1);
  pinned.Start();
  unpinned.Start();
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(Look(pinned, i).cpus, std::vector<int>{all[static_cast<size_t>(i) % all.size()]})
        << "worker " << i;
  }
  EXPECT_EQ(Look(unpinned, 0).cpus, all);  // not asked: the process's CPUs
  EXPECT_EQ(CpusOf(0), all);
  pinned.Stop();
  unpinned.Stop();
  pinned.Join();
  unpinned.Join();
}

}  // namespace
}  // namespace layer::http
