#include "http/deadline.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <memory>

namespace layer::http {
namespace {

using Clock = Deadline::Clock;
using namespace std::chrono_literals;

// io_context::run() returns once the timer has no more work: when the deadline expired, was
// cleared, or its owner is gone. Every test waits for that, never for a time.
struct Fixture {
  boost::asio::io_context ioc;
  int expired_calls = 0;
  Clock::time_point expired_at{};
  std::unique_ptr<Deadline> deadline = std::make_unique<Deadline>(ioc.get_executor(), [this] {
    ++expired_calls;
    expired_at = Clock::now();
  });
};

TEST(Deadline, ExpiresOnceAndSaysSo) {
  Fixture f;
  const auto due = Clock::now() + 2ms;
  f.deadline->Set(due);
  f.ioc.run();
  EXPECT_EQ(f.expired_calls, 1);
  EXPECT_TRUE(f.deadline->expired());
  EXPECT_GE(f.expired_at, due);
}

TEST(Deadline, ClearedDeadlineNeverExpires) {
  Fixture f;
  f.deadline->Set(Clock::now() + 2ms);
  f.deadline->Clear();
  f.ioc.run();  // the armed timer fires, finds no deadline and stops
  EXPECT_EQ(f.expired_calls, 0);
  EXPECT_FALSE(f.deadline->expired());
}

TEST(Deadline, LaterDeadlineIsHonouredByReArming) {
  Fixture f;
  f.deadline->Set(Clock::now() + 1ms);
  const auto due = Clock::now() + 20ms;
  f.deadline->Set(due);  // the timer stays armed for 1 ms and re-arms when it fires
  f.ioc.run();
  EXPECT_EQ(f.expired_calls, 1);
  EXPECT_GE(f.expired_at, due);
}

TEST(Deadline, EarlierDeadlineReArmsAtOnce) {
  Fixture f;
  const auto start = Clock::now();
  f.deadline->Set(start + 600s);
  f.deadline->Set(Clock::now() + 1ms);
  f.ioc.run();
  EXPECT_EQ(f.expired_calls, 1);
  EXPECT_LT(f.expired_at - start, 60s);  // not the first arming's 600 s
}

TEST(Deadline, SetAgainClearsExpiredAndCanExpireAgain) {
  Fixture f;
  f.deadline->Set(Clock::now() + 1ms);
  f.ioc.run();
  ASSERT_TRUE(f.deadline->expired());
  f.deadline->Set(Clock::now() + 1ms);
  EXPECT_FALSE(f.deadline->expired());
  f.ioc.restart();
  f.ioc.run();
  EXPECT_EQ(f.expired_calls, 2);
}

TEST(Deadline, DestroyedDeadlineNeverCallsBack) {
  Fixture f;
  f.deadline->Set(Clock::now() + 1ms);
  f.deadline.reset();
  f.ioc.run();
  EXPECT_EQ(f.expired_calls, 0);
}

}  // namespace
}  // namespace layer::http
