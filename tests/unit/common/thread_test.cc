#include "common/thread.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

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

}  // namespace
}  // namespace layer
