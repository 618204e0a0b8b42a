// Wake-up benchmark: how late a thread that sleeps and works briefly (a request thread) gets a
// core back while busy threads (a warm's background work) keep every core it may run on busy.
//
//   sleeper   sleeps until the next whole --period-us, then works --work-us; its lateness (time
//             on the core minus the time it asked to wake) is the sample. Its scheduler slice is
//             --slice-us (SetCurrentThreadSlice; 0 = the kernel's default).
//   busy      --busy threads spin in user space for the whole run, each at --busy-nice
//             (setpriority) or, with --busy-idle, under SCHED_IDLE.
//   --cpu     pins the sleeper and the busy threads to one core (-1: no pinning).
//
// It measures the kernel's scheduler, not Layer: the gateway's request threads run with a short
// slice while a warm's threads and RocksDB's flushes keep the cores busy (docs/benchmarks.md).
// Output: one JSON line with the lateness percentiles. A benchmark, not a test: it asserts nothing.
#include <fmt/core.h>
#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>
#include <vector>

#include "bench_util.h"
#include "common/thread.h"

namespace {

using namespace layer::bench;
using Clock = std::chrono::steady_clock;

void PinTo(int cpu) {
  if (cpu < 0) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

// Spins for about `d` of CPU time (the loop cannot be optimised away).
void Work(std::chrono::microseconds d) {
  auto end = Clock::now() + d;
  while (Clock::now() < end) {
  }
}

}  // namespace

int main(int argc, char** argv) {
  int busy = 2;
  int busy_nice = 0;
  bool busy_idle = false;
  int slice_us = 100;
  int period_us = 1000;
  int work_us = 20;
  int samples = 5000;
  int cpu = -1;
  CLI::App app{"Wake-up lateness of a short-slice sleeper against busy threads"};
  app.add_option("--busy", busy, "busy threads")->capture_default_str();
  app.add_option("--busy-nice", busy_nice, "nice value of the busy threads")
      ->check(CLI::Range(-20, 19))
      ->capture_default_str();
  app.add_flag("--busy-idle", busy_idle, "busy threads under SCHED_IDLE");
  app.add_option("--slice-us", slice_us, "the sleeper's scheduler slice (0 = kernel default)")
      ->capture_default_str();
  app.add_option("--period-us", period_us, "the sleeper's wake-up period")->capture_default_str();
  app.add_option("--work-us", work_us, "the sleeper's work per wake-up")->capture_default_str();
  app.add_option("--samples", samples, "wake-ups measured")->capture_default_str();
  app.add_option("--cpu", cpu, "one core for every thread (-1: no pinning)")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  std::atomic<bool> stop{false};
  std::vector<std::thread> spinners;
  for (int i = 0; i < busy; ++i) {
    spinners.emplace_back([&] {
      PinTo(cpu);
      if (busy_idle) {
        sched_param p{};
        sched_setscheduler(0, SCHED_IDLE, &p);
      } else if (busy_nice != 0) {
        setpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid)), busy_nice);
      }
      while (!stop.load(std::memory_order_relaxed)) Work(std::chrono::microseconds(100));
    });
  }
  PinTo(cpu);
  const bool sliced = layer::SetCurrentThreadSlice(std::chrono::microseconds(slice_us));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // the busy threads are running

  std::vector<int64_t> late_ns;
  late_ns.reserve(static_cast<size_t>(samples));
  auto next = Clock::now();
  for (int i = 0; i < samples; ++i) {
    next += std::chrono::microseconds(period_us);
    std::this_thread::sleep_until(next);
    late_ns.push_back((Clock::now() - next).count());
    Work(std::chrono::microseconds(work_us));
    next = std::max(next, Clock::now());
  }
  stop = true;
  for (auto& t : spinners) t.join();

  Summary s = Summarize(late_ns);
  JsonLine line;
  line.Str("bench", "wakeup")
      .Str("measurement", "sleeper_lateness")
      .Int("busy", busy)
      .Int("busy_nice", busy_nice)
      .Bool("busy_sched_idle", busy_idle)
      .Int("slice_us", slice_us)
      .Bool("slice_set", sliced)
      .Int("period_us", period_us)
      .Int("work_us", work_us)
      .Int("cpu", cpu)
      .Int("samples", samples)
      .Num("late_p50_us", s.p50, 1)
      .Num("late_p99_us", s.p99, 1)
      .Num("late_p999_us", s.p999, 1)
      .Num("late_max_us", s.max, 1)
      .Print();
  return 0;
}
