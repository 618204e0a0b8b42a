// The depth of glibc's per-thread malloc cache for the server processes (docs/design.md §9.11).
//
// glibc keeps up to 7 freed blocks of each size per thread (its tcache). An I/O thread with
// dozens of requests in flight allocates and frees far more blocks of one size at a time (answer
// bodies, coroutine frames); the rest go to the arena's slower lists, which cost a proxied
// request about a twentieth of its throughput. The depth is a tunable that glibc reads only when
// a process starts (GLIBC_TUNABLES=glibc.malloc.tcache_count=N), so `layer serve` and `layer
// origin` set it and start themselves again, once, before doing anything else.
//
// LAYER_MALLOC_CACHE sets N (default kDefaultMallocCache; 0 keeps glibc's default and never
// restarts). A GLIBC_TUNABLES that already sets tcache_count is left as it is.
#pragma once

#include <optional>
#include <string>

namespace layer {

inline constexpr int kDefaultMallocCache = 128;

// The GLIBC_TUNABLES value that adds tcache_count=`count` to `current` (null: unset), or nullopt
// when nothing is to change: `count` <= 0, or `current` already sets tcache_count.
std::optional<std::string> TunablesWithMallocCache(const char* current, int count);

// The depth LAYER_MALLOC_CACHE asks for (`value`, null: unset): a number of blocks in [0, 65535],
// or nullopt when the value is not one.
std::optional<int> MallocCacheFromEnv(const char* value);

// Starts this program again (same arguments, same process id) with the tunable set, when
// LAYER_MALLOC_CACHE and GLIBC_TUNABLES call for it and this is not already the restarted
// process. Returns only when no restart is due or the restart failed (the process then runs
// with glibc's default; the reason is printed to stderr). A no-op in sanitizer builds (their
// allocator replaces glibc's) and off glibc.
void RestartWithMallocCache(char** argv);

}  // namespace layer
