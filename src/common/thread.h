// Per-thread settings for the gateway's own worker threads (Linux; a no-op elsewhere).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <mutex>
#include <string_view>
#include <vector>

namespace layer {

// Names the calling thread (at most 15 bytes are kept), as top, perf and gdb show it.
void NameCurrentThread(std::string_view name);

// Asks the kernel to run the calling thread with a scheduler time slice of `slice` (EEVDF's
// per-task slice, sched_setattr's sched_runtime for SCHED_OTHER, Linux 6.12 and later). A
// thread with a shorter slice than the one running gets the core when it wakes up instead of
// waiting for the other thread's slice to end: request threads given a short slice answer
// promptly while long background work (a warm's parsing, the cache's bulk writes, RocksDB's
// flushes) runs on the same cores. That holds while one busy thread shares the core; with two or
// more runnable at normal priority the kernel may still keep it waiting for milliseconds
// (bench/wakeup_bench). The thread's share of the CPU (its weight) does not change.
// The kernel clamps the slice to 0.1–100 ms; older kernels ignore it. Returns false only when
// the kernel refuses the call. A zero `slice` changes nothing and returns true.
bool SetCurrentThreadSlice(std::chrono::microseconds slice);

// Pins the calling thread to one CPU: the `index`-th (modulo their number) of the CPUs the
// process may run on, so worker i of N stays on its own core as nginx's worker_cpu_affinity does.
// Returns the CPU, or -1 when the kernel refuses (the thread then runs where the scheduler puts
// it).
int PinCurrentThread(int index);

// Sets the scheduler slice of thread `tid` of this process, as SetCurrentThreadSlice does, except
// that a zero `slice` gives the thread back the kernel's default. False when the kernel refuses.
bool SetThreadSlice(pid_t tid, std::chrono::microseconds slice);

// The calling thread's id (gettid).
pid_t CurrentThreadId();

// True when the kernel honours per-thread slices (Linux 6.12 or later, reporting `se.slice`).
bool PerThreadSlicesSupported();

// The calling thread's scheduler slice as the kernel reports it (/proc/thread-self/sched,
// `se.slice`), or a negative value when the kernel does not report one.
std::chrono::nanoseconds CurrentThreadSlice();

// The slice of thread `tid` of this process (/proc/self/task/<tid>/sched), or a negative value.
std::chrono::nanoseconds ThreadSlice(pid_t tid);

// The request threads' short scheduler slice, in force only while background work runs
// (docs/design.md §9.11). A short slice lets a waking request thread take its core from a warm's
// parsing or the cache's bulk writes at once; with nothing in the background it only makes the
// thread preempt whatever else shares its core (the client, the upstream) instead of running
// beside it, which costs latency. So request threads enroll here, background work holds a
// BackgroundWork for as long as it runs, and the enrolled threads have the short slice from the
// first hold's start to the last one's end and the kernel's default otherwise.
//
// Thread safety: every member may be called from any thread. Transitions (the first hold, the
// last release, an enrollment) take a lock and make one system call per enrolled thread; they
// happen per job, never per request. The object must outlive its enrollments and holds.
class RequestSlices {
 public:
  // A zero `slice` never changes any thread's slice (holds and enrollments are still counted).
  explicit RequestSlices(std::chrono::microseconds slice);
  RequestSlices(const RequestSlices&) = delete;
  RequestSlices& operator=(const RequestSlices&) = delete;

  // The enrollment of one thread: its slice follows the background work until this ends. It
  // must end on, or before the exit of, the thread it enrolled.
  class Enrollment {
   public:
    Enrollment() = default;
    Enrollment(Enrollment&& o) noexcept;
    Enrollment& operator=(Enrollment&& o) noexcept;
    ~Enrollment();

   private:
    friend class RequestSlices;
    Enrollment(RequestSlices* owner, pid_t tid) : owner_(owner), tid_(tid) {}
    RequestSlices* owner_ = nullptr;
    pid_t tid_ = 0;
  };

  // A span of background work; enrolled threads have the short slice while any lives.
  class BackgroundWork {
   public:
    BackgroundWork() = default;
    BackgroundWork(BackgroundWork&& o) noexcept;
    BackgroundWork& operator=(BackgroundWork&& o) noexcept;
    ~BackgroundWork();

   private:
    friend class RequestSlices;
    explicit BackgroundWork(RequestSlices* owner) : owner_(owner) {}
    RequestSlices* owner_ = nullptr;
  };

  [[nodiscard]] Enrollment EnrollCurrentThread();
  [[nodiscard]] BackgroundWork Background();
  // A hold of `slices`, or none when it is null.
  [[nodiscard]] static BackgroundWork BackgroundIn(RequestSlices* slices) {
    return slices ? slices->Background() : BackgroundWork();
  }

  std::chrono::microseconds slice() const { return slice_; }
  // Whether enrolled threads have the short slice now (some background work runs).
  bool short_now() const;
  // Threads enrolled now.
  size_t enrolled() const;

 private:
  void Leave(pid_t tid);
  void Release();
  void ApplyLocked(pid_t tid) const;

  const std::chrono::microseconds slice_;
  mutable std::mutex mu_;
  std::vector<pid_t> tids_;
  int busy_ = 0;
};

}  // namespace layer
