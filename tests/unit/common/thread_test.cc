#include "common/thread.h"

#include <gtest/gtest.h>

#include <sched.h>

#include <chrono>
#include <future>
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

TEST(ThreadSlice, SetsAnotherThreadsSliceAndZeroGivesTheDefaultBack) {
  if (!PerThreadSlicesSupported()) GTEST_SKIP() << "kernel without per-task scheduler slices";
  const nanoseconds mine = CurrentThreadSlice();
  const pid_t self = CurrentThreadId();
  EXPECT_EQ(ThreadSlice(self), mine);
  nanoseconds seen{-1};
  std::thread t([&] {
    const pid_t tid = CurrentThreadId();
    std::thread other([&] { ASSERT_TRUE(SetThreadSlice(tid, microseconds(400))); });
    other.join();
    seen = CurrentThreadSlice();
    ASSERT_TRUE(SetThreadSlice(tid, microseconds(0)));
    EXPECT_EQ(CurrentThreadSlice(), mine);
  });
  t.join();
  EXPECT_EQ(seen, nanoseconds(400'000));
}

// A thread that enrolls in `slices`, reports its slice on request and leaves when told.
class EnrolledThread {
 public:
  explicit EnrolledThread(RequestSlices& slices) {
    thread_ = std::thread([this, &slices] {
      RequestSlices::Enrollment e = slices.EnrollCurrentThread();
      tid_.set_value(CurrentThreadId());
      leave_.get_future().wait();
    });
    tid = tid_.get_future().get();
  }
  ~EnrolledThread() { Leave(); }
  void Leave() {
    if (!thread_.joinable()) return;
    leave_.set_value();
    thread_.join();
  }
  nanoseconds slice() const { return ThreadSlice(tid); }
  pid_t tid = 0;

 private:
  std::promise<pid_t> tid_;
  std::promise<void> leave_;
  std::thread thread_;
};

TEST(RequestSlices, EnrolledThreadsHaveTheShortSliceWhileAnyBackgroundWorkRuns) {
  if (!PerThreadSlicesSupported()) GTEST_SKIP() << "kernel without per-task scheduler slices";
  const nanoseconds def = CurrentThreadSlice();
  ASSERT_NE(def, nanoseconds(300'000));
  RequestSlices slices(microseconds(300));
  EnrolledThread a(slices);
  EXPECT_EQ(slices.enrolled(), 1u);
  EXPECT_FALSE(slices.short_now());
  EXPECT_EQ(a.slice(), def);
  {
    RequestSlices::BackgroundWork warm = slices.Background();
    EXPECT_TRUE(slices.short_now());
    EXPECT_EQ(a.slice(), nanoseconds(300'000));
    EnrolledThread b(slices);  // enrolled while work runs: short at once
    EXPECT_EQ(b.slice(), nanoseconds(300'000));
    {
      RequestSlices::BackgroundWork snapshot = slices.Background();
      RequestSlices::BackgroundWork moved = std::move(snapshot);
    }
    EXPECT_EQ(a.slice(), nanoseconds(300'000));  // the first hold still runs
    EXPECT_EQ(b.slice(), nanoseconds(300'000));
    b.Leave();
    EXPECT_EQ(slices.enrolled(), 1u);
  }
  EXPECT_FALSE(slices.short_now());
  EXPECT_EQ(a.slice(), def);
  EXPECT_EQ(CurrentThreadSlice(), def);  // never enrolled
}

TEST(RequestSlices, AZeroSliceChangesNoThread) {
  const nanoseconds def = CurrentThreadSlice();
  RequestSlices slices(microseconds(0));
  EnrolledThread a(slices);
  RequestSlices::BackgroundWork busy = slices.Background();
  EXPECT_FALSE(slices.short_now());
  EXPECT_EQ(slices.enrolled(), 1u);
  EXPECT_EQ(a.slice(), def);
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
