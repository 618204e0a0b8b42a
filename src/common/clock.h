// Clock: the two times the gateway reads, passed in through the options of the cache, the
// coherence core, the job store, the watcher, the warm runner and the handlers, so that write
// stamps, tombstone expiry, leases, watermarks and breaker intervals can be driven by tests.
//
// Thread-safe: every method may be called from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace layer {

class Clock {
 public:
  using SteadyTime = std::chrono::steady_clock::time_point;

  virtual ~Clock() = default;
  // Wall-clock time in epoch milliseconds: the unit of write stamps, watermarks and job times.
  virtual int64_t WallMs() const = 0;
  // Monotonic time: deadlines, intervals and durations.
  virtual SteadyTime Steady() const = 0;

  // The system's clocks. Never destroyed.
  static const Clock& System();
};

// The clock of `options.clock`-style fields: the given one, or the system's when null.
inline const Clock& ClockOr(const Clock* clock) { return clock ? *clock : Clock::System(); }

// The system's wall clock in epoch milliseconds.
inline int64_t WallClockMs() { return Clock::System().WallMs(); }

// A clock that moves only when told to (tests). Both times start where they are given and move
// together on Advance; SetWallMs moves the wall clock alone, as a stepped system clock does.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(int64_t wall_ms = 1'780'000'000'000)
      : wall_ms_(wall_ms), steady_ns_(std::chrono::nanoseconds(kSteadyStart).count()) {}

  int64_t WallMs() const override { return wall_ms_.load(std::memory_order_acquire); }
  SteadyTime Steady() const override {
    return SteadyTime(std::chrono::nanoseconds(steady_ns_.load(std::memory_order_acquire)));
  }

  void Advance(std::chrono::milliseconds d) {
    wall_ms_.fetch_add(d.count(), std::memory_order_acq_rel);
    steady_ns_.fetch_add(std::chrono::nanoseconds(d).count(), std::memory_order_acq_rel);
  }
  void SetWallMs(int64_t ms) { wall_ms_.store(ms, std::memory_order_release); }

 private:
  static constexpr std::chrono::hours kSteadyStart{24};  // any fixed point; never 0
  std::atomic<int64_t> wall_ms_;
  std::atomic<int64_t> steady_ns_;
};

}  // namespace layer
