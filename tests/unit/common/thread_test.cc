#include "common/thread.h"

#include <gtest/gtest.h>

#include <sched.h>

#include <chrono>
#include <thread>
#include <vector>

namespace layer {
namespace {

using std::chrono::microseconds;
using std::chrono::nanoseconds;

TEST(ThreadSlice, ZeroLeavesTheSliceAlone) {
  const nanoseconds before = CurrentThreadSlice();
  EXPECT_TRUE(SetCurrentThreadSlice(microseconds(0)));
  EXPECT_EQ(CurrentThreadSlice(), before);
}

TEST(ThreadSlice, SetsTheCallingThreadsSliceOnly) {
  if (!PerThreadSlicesSupported()) GTEST_SKIP() << "kernel without per-task scheduler slices";
  const nanoseconds mine = CurrentThreadSlice();
  nanoseconds theirs{-1};
  std::thread t([&] {
    ASSERT_TRUE(SetCurrentThreadSlice(microseconds(250)));
    theirs = CurrentThreadSlice();
  });
  t.join();
  EXPECT_EQ(theirs, nanoseconds(250'000));
  EXPECT_EQ(CurrentThreadSlice(), mine);
}

// The CPUs the test process may use, in order.
std::vector<int> AllowedCpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  EXPECT_EQ(sched_getaffinity(0, sizeof set, &set), 0);
  std::vector<int> cpus;
  for (int c = 0; c < CPU_SETSIZE; ++c) {
    if (CPU_ISSET(c, &set)) cpus.push_back(c);
  }
  return cpus;
}

TEST(PinThread, PinsTheCallingThreadToTheIndexthAllowedCpuOnly) {
  const std::vector<int> cpus = AllowedCpus();
  ASSERT_FALSE(cpus.empty());
  for (int index : {0, 1, static_cast<int>(cpus.size()), static_cast<int>(cpus.size()) + 1}) {
    int pinned = -2;
    std::vector<int> after;
    std::thread t([&] {
      pinned = PinCurrentThread(index);
      after = AllowedCpus();  // the calling thread's own mask
    });
    t.join();
    const int want = cpus[static_cast<size_t>(index) % cpus.size()];
    EXPECT_EQ(pinned, want) << "index " << index;
    EXPECT_EQ(after, std::vector<int>{want}) << "index " << index;
  }
  EXPECT_EQ(AllowedCpus(), cpus);  // this thread is untouched
  EXPECT_EQ(PinCurrentThread(-1), -1);
}

}  // namespace
}  // namespace layer
