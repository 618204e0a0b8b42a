// Placement: which I/O worker serves an inbound connection (docs/design.md §9.12).
//
// Every request of a connection runs on one worker thread. Spreading connections round-robin
// puts every worker to work even at a light load, and then each request wakes a thread that was
// asleep, often on another CPU: at a few thousand requests a second that wake-up, not the work,
// is most of the gateway's added latency. Placement packs instead and spreads on demand:
//
//   - A new connection goes to the first worker, in index order, that was busy (running or
//     waiting for a CPU, not asleep) less than kPackBelow of its recent time; when every worker
//     is that busy, to the one serving the fewest connections. At a light load all connections
//     share one worker, and one wake-up serves the requests that arrive together.
//   - A worker busy kSpreadAbove of its time or more hands a connection over, between two of its
//     requests, to the least busy worker when that one is busy at least kSpreadMargin less and
//     serves at least two connections fewer (Rebalance). Connections that all arrived while the
//     gateway was idle spread over the workers as soon as the load needs them; hand-overs stop
//     when the counts are level or the workers equally busy, so they do not oscillate.
//
// A worker's busy fraction is measured on its own thread from the kernel's accounting of it
// (CPU time plus run-queue wait over wall time, /proc/thread-self/schedstat), at most once per
// kWindow, when one of its connections finishes a request. A worker that has not measured for
// kStale (no requests) counts as idle. Without that accounting every worker counts as idle and
// placement packs.
//
// Thread safety: Pick, Joined, Left and Busy from any thread; Rebalance on worker `w`'s thread
// only (it owns w's measurement).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>

namespace layer::http {

class Placement {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr double kPackBelow = 0.5;
  static constexpr double kSpreadAbove = 0.75;
  static constexpr double kSpreadMargin = 0.25;
  static constexpr std::chrono::milliseconds kWindow{10};
  static constexpr std::chrono::milliseconds kStale{50};

  explicit Placement(int workers);
  ~Placement();
  Placement(const Placement&) = delete;
  Placement& operator=(const Placement&) = delete;

  // The worker for a new connection (the rules above). Does not count it: see Joined.
  int Pick(Clock::time_point now) const;
  // A connection starts or stops being served by worker `w`.
  void Joined(int w);
  void Left(int w);
  int connections(int w) const;

  // On worker `w`'s thread, between two requests of one of its connections: measures w when its
  // window has passed, then returns the worker that connection should move to, or -1 to stay.
  // The caller moves it (Left(w), Joined(target)) or keeps it.
  int Rebalance(int w, Clock::time_point now);
  // Rebalance's choice from the measurements there are, without measuring.
  int MoveTarget(int w, Clock::time_point now) const;

  // The busy fraction of `w` as placement sees it at `now` (0 when stale or never measured).
  double Busy(int w, Clock::time_point now) const;
  // Records a measurement of `w` taken at `at`, as Rebalance does (tests set loads with it).
  void Record(int w, double busy, Clock::time_point at);

 private:
  struct Slot;
  void Measure(int w, Clock::time_point now);

  const int workers_;
  std::unique_ptr<Slot[]> slots_;
};

}  // namespace layer::http
