#include "common/clock.h"

#include <gtest/gtest.h>

namespace layer {
namespace {

TEST(ManualClock, MovesOnlyWhenToldAndBothTimesTogether) {
  ManualClock clock(1000);
  const Clock::SteadyTime start = clock.Steady();
  EXPECT_EQ(clock.WallMs(), 1000);
  EXPECT_EQ(clock.Steady(), start);
  clock.Advance(std::chrono::milliseconds(250));
  EXPECT_EQ(clock.WallMs(), 1250);
  EXPECT_EQ(clock.Steady() - start, std::chrono::milliseconds(250));
  // A stepped wall clock leaves the steady time alone.
  clock.SetWallMs(10);
  EXPECT_EQ(clock.WallMs(), 10);
  EXPECT_EQ(clock.Steady() - start, std::chrono::milliseconds(250));
}

TEST(Clock, SystemIsTheDefaultOfAnEmptyOption) {
  ManualClock manual(42);
  EXPECT_EQ(&ClockOr(nullptr), &Clock::System());
  EXPECT_EQ(ClockOr(&manual).WallMs(), 42);
  EXPECT_GT(Clock::System().WallMs(), 1'600'000'000'000);  // a real epoch-ms wall clock
}

}  // namespace
}  // namespace layer
