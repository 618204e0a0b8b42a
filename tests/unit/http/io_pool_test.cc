#include "http/io_pool.h"

#include <gtest/gtest.h>
#include <pthread.h>

#include <boost/asio/post.hpp>
#include <chrono>
#include <future>
#include <string>

#include "common/thread.h"

namespace layer::http {
namespace {

using std::chrono::microseconds;
using std::chrono::nanoseconds;

struct WorkerView {
  int index = -2;
  std::string name;
  nanoseconds slice{-1};
};

WorkerView Look(IoPool& pool, int i) {
  std::promise<WorkerView> seen;
  boost::asio::post(pool.at(i), [&] {
    WorkerView v;
    v.index = IoPool::CurrentIndex();
    char name[16] = {};
    pthread_getname_np(pthread_self(), name, sizeof(name));
    v.name = name;
    v.slice = CurrentThreadSlice();
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

TEST(IoPool, WorkersRunWithTheRequestedSlice) {
  if (!PerThreadSlicesSupported()) GTEST_SKIP() << "kernel without per-task scheduler slices";
  const nanoseconds mine = CurrentThreadSlice();
  ASSERT_NE(mine, nanoseconds(300'000));
  IoPool sliced(2, microseconds(300));
  IoPool plain(1);
  sliced.Start();
  plain.Start();
  EXPECT_EQ(Look(sliced, 0).slice, nanoseconds(300'000));
  EXPECT_EQ(Look(sliced, 1).slice, nanoseconds(300'000));
  EXPECT_EQ(Look(plain, 0).slice, mine);  // no slice asked: the default stays
  EXPECT_EQ(CurrentThreadSlice(), mine);
  sliced.Stop();
  plain.Stop();
  sliced.Join();
  plain.Join();
}

}  // namespace
}  // namespace layer::http
