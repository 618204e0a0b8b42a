// Per-thread settings for the gateway's own worker threads (Linux; a no-op elsewhere).
#pragma once

#include <chrono>
#include <string_view>

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

// True when the kernel honours per-thread slices (Linux 6.12 or later, reporting `se.slice`).
bool PerThreadSlicesSupported();

// The calling thread's scheduler slice as the kernel reports it (/proc/thread-self/sched,
// `se.slice`), or a negative value when the kernel does not report one.
std::chrono::nanoseconds CurrentThreadSlice();

}  // namespace layer
