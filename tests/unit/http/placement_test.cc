#include "http/placement.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

namespace layer::http {
namespace {

using Clock = Placement::Clock;
using std::chrono::milliseconds;

TEST(Placement, ALightLoadPacksNewConnectionsOntoTheFirstWorker) {
  Placement p(3);
  const auto now = Clock::now();
  EXPECT_EQ(p.Pick(now), 0);  // never measured: idle
  p.Record(0, 0.4, now);
  EXPECT_EQ(p.Pick(now), 0);
  p.Record(0, 0.6, now);
  EXPECT_EQ(p.Pick(now), 1);  // the first worker with room
  p.Record(1, 0.9, now);
  EXPECT_EQ(p.Pick(now), 2);
}

TEST(Placement, WhenEveryWorkerIsBusyTheOneWithFewestConnectionsGetsIt) {
  Placement p(3);
  const auto now = Clock::now();
  for (int w = 0; w < 3; ++w) p.Record(w, 0.9, now);
  p.Joined(0);
  p.Joined(0);
  p.Joined(1);
  p.Joined(2);
  EXPECT_EQ(p.Pick(now), 1);
  p.Joined(1);
  EXPECT_EQ(p.Pick(now), 2);
  EXPECT_EQ(p.connections(0), 2);
  p.Left(0);
  EXPECT_EQ(p.connections(0), 1);
}

TEST(Placement, AStaleMeasurementCountsAsIdle) {
  Placement p(2);
  const auto then = Clock::now();
  p.Record(0, 1.0, then);
  EXPECT_DOUBLE_EQ(p.Busy(0, then + Placement::kStale), 1.0);
  EXPECT_DOUBLE_EQ(p.Busy(0, then + Placement::kStale + milliseconds(1)), 0.0);
  EXPECT_EQ(p.Pick(then + Placement::kStale + milliseconds(1)), 0);
}

TEST(Placement, ABusyWorkerHandsConnectionsToAnIdleOneUntilTheCountsAreLevel) {
  Placement p(2);
  const auto now = Clock::now();
  for (int i = 0; i < 4; ++i) p.Joined(0);
  p.Record(0, 0.95, now);
  EXPECT_EQ(p.MoveTarget(0, now), 1);
  p.Left(0);
  p.Joined(1);
  EXPECT_EQ(p.MoveTarget(0, now), 1);  // 3 against 1
  p.Left(0);
  p.Joined(1);
  EXPECT_EQ(p.MoveTarget(0, now), -1);  // 2 against 2: level
  EXPECT_EQ(p.MoveTarget(1, now), -1);  // worker 1 is not busy
}

TEST(Placement, NoHandOverBelowTheSpreadThresholdOrToAWorkerNearlyAsBusy) {
  Placement p(2);
  const auto now = Clock::now();
  for (int i = 0; i < 8; ++i) p.Joined(0);
  p.Record(0, 0.7, now);
  EXPECT_EQ(p.MoveTarget(0, now), -1);  // not busy enough to spread
  p.Record(0, 1.0, now);
  p.Record(1, 0.8, now);
  EXPECT_EQ(p.MoveTarget(0, now), -1);  // the other is busy too: the CPUs are shared anyway
  p.Record(1, 0.7, now);
  EXPECT_EQ(p.MoveTarget(0, now), 1);
}

TEST(Placement, TheLeastBusyWorkerReceives) {
  Placement p(4);
  const auto now = Clock::now();
  for (int i = 0; i < 8; ++i) p.Joined(1);
  p.Record(0, 0.5, now);
  p.Record(1, 1.0, now);
  p.Record(2, 0.1, now);
  p.Record(3, 0.3, now);
  EXPECT_EQ(p.MoveTarget(1, now), 2);
}

TEST(Placement, RebalanceMeasuresTheCallingThread) {
  Placement p(2);
  std::thread worker([&p] {
    auto start = Clock::now();
    p.Rebalance(0, start);  // the first measurement only sets the baseline
    EXPECT_DOUBLE_EQ(p.Busy(0, start), 0.0);
    // Busy for three windows: the thread runs (or waits for a CPU) the whole time.
    while (Clock::now() - start < 3 * Placement::kWindow) {
    }
    const auto now = Clock::now();
    p.Rebalance(0, now);
    EXPECT_GT(p.Busy(0, now), Placement::kSpreadAbove);
    // Asleep for two windows: nearly idle.
    std::this_thread::sleep_for(4 * Placement::kWindow);
    const auto later = Clock::now();
    p.Rebalance(0, later);
    EXPECT_LT(p.Busy(0, later), Placement::kPackBelow);
  });
  worker.join();
}

}  // namespace
}  // namespace layer::http
