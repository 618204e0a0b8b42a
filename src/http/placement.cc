#include "http/placement.h"

#include <fcntl.h>
#include <unistd.h>

#include <cinttypes>
#include <cstdio>
#include <ctime>
#include <limits>

namespace layer::http {

namespace {

int64_t Nanos(Placement::Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

constexpr int64_t kNever = std::numeric_limits<int64_t>::min();

}  // namespace

struct alignas(64) Placement::Slot {
  std::atomic<int> connections{0};
  std::atomic<float> busy{0};
  std::atomic<int64_t> measured_ns{kNever};
  // Owned by the worker's thread (Measure).
  int schedstat_fd = -2;  // -2: not opened yet, -1: not available
  uint64_t busy_ns = 0;   // CPU time plus run-queue wait at the last measurement
  Clock::time_point last{};

  ~Slot() {
    if (schedstat_fd >= 0) ::close(schedstat_fd);
  }
};

Placement::Placement(int workers)
    : workers_(workers < 1 ? 1 : workers), slots_(new Slot[static_cast<size_t>(workers_)]) {}

Placement::~Placement() = default;

void Placement::Joined(int w) { slots_[w].connections.fetch_add(1, std::memory_order_relaxed); }

void Placement::Left(int w) { slots_[w].connections.fetch_sub(1, std::memory_order_relaxed); }

int Placement::connections(int w) const {
  return slots_[w].connections.load(std::memory_order_relaxed);
}

double Placement::Busy(int w, Clock::time_point now) const {
  const int64_t at = slots_[w].measured_ns.load(std::memory_order_acquire);
  if (at == kNever || Nanos(now) - at > std::chrono::nanoseconds(kStale).count()) return 0;
  return slots_[w].busy.load(std::memory_order_relaxed);
}

void Placement::Record(int w, double busy, Clock::time_point at) {
  slots_[w].busy.store(static_cast<float>(busy), std::memory_order_relaxed);
  slots_[w].measured_ns.store(Nanos(at), std::memory_order_release);
}

int Placement::Pick(Clock::time_point now) const {
  int fewest = 0;
  for (int w = 0; w < workers_; ++w) {
    if (Busy(w, now) < kPackBelow) return w;
    if (connections(w) < connections(fewest)) fewest = w;
  }
  return fewest;
}

int Placement::MoveTarget(int w, Clock::time_point now) const {
  const double mine = Busy(w, now);
  if (mine < kSpreadAbove) return -1;
  int best = -1;
  double best_busy = 0;
  for (int t = 0; t < workers_; ++t) {
    if (t == w) continue;
    const double b = Busy(t, now);
    if (best < 0 || b < best_busy) {
      best = t;
      best_busy = b;
    }
  }
  if (best < 0 || best_busy > mine - kSpreadMargin) return -1;
  if (connections(w) < connections(best) + 2) return -1;
  return best;
}

int Placement::Rebalance(int w, Clock::time_point now) {
  if (now - slots_[w].last >= kWindow) Measure(w, now);
  return MoveTarget(w, now);
}

// The thread's CPU time (exact, where /proc's run time lags by up to a scheduler tick for a
// running thread) plus its run-queue wait from /proc/thread-self/schedstat ("<run ns> <wait ns>
// <time slices>"; the wait only grows while the thread is not running, so it is current).
void Placement::Measure(int w, Clock::time_point now) {
  Slot& s = slots_[w];
  if (s.schedstat_fd == -2) {
    s.schedstat_fd = ::open("/proc/thread-self/schedstat", O_RDONLY | O_CLOEXEC);
  }
  if (s.schedstat_fd < 0) return;
  char buf[96];
  const ssize_t n = ::pread(s.schedstat_fd, buf, sizeof buf - 1, 0);
  if (n <= 0) return;
  buf[n] = '\0';
  uint64_t wait = 0;
  if (std::sscanf(buf, "%*s %" SCNu64, &wait) != 1) return;
  timespec cpu{};
  if (::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu) != 0) return;
  const uint64_t busy_ns =
      static_cast<uint64_t>(cpu.tv_sec) * 1'000'000'000u + static_cast<uint64_t>(cpu.tv_nsec) + wait;
  const bool first = s.last == Clock::time_point{};
  const auto wall = std::chrono::duration_cast<std::chrono::nanoseconds>(now - s.last).count();
  if (!first && wall > 0 && busy_ns >= s.busy_ns) {
    const double busy = static_cast<double>(busy_ns - s.busy_ns) / static_cast<double>(wall);
    Record(w, busy > 1 ? 1 : busy, now);
  }
  s.busy_ns = busy_ns;
  s.last = now;
}

}  // namespace layer::http
