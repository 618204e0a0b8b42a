#include "common/malloc_cache.h"

#include <gtest/gtest.h>

namespace layer {
namespace {

TEST(MallocCache, AddsTheCacheDepthToTheTunables) {
  EXPECT_EQ(TunablesWithMallocCache(nullptr, 128), "glibc.malloc.tcache_count=128");
  EXPECT_EQ(TunablesWithMallocCache("", 64), "glibc.malloc.tcache_count=64");
  EXPECT_EQ(TunablesWithMallocCache("glibc.malloc.arena_max=2", 128),
            "glibc.malloc.arena_max=2:glibc.malloc.tcache_count=128");
  // A tunable whose name only begins like it is another one.
  EXPECT_EQ(TunablesWithMallocCache("glibc.malloc.tcache_count_x=1", 8),
            "glibc.malloc.tcache_count_x=1:glibc.malloc.tcache_count=8");
}

TEST(MallocCache, LeavesTunablesThatSetItAndAZeroDepthAlone) {
  EXPECT_EQ(TunablesWithMallocCache("glibc.malloc.tcache_count=7", 128), std::nullopt);
  EXPECT_EQ(TunablesWithMallocCache("glibc.malloc.arena_max=2:glibc.malloc.tcache_count=0", 128),
            std::nullopt);
  EXPECT_EQ(TunablesWithMallocCache(nullptr, 0), std::nullopt);
  EXPECT_EQ(TunablesWithMallocCache("glibc.malloc.arena_max=2", -1), std::nullopt);
}

TEST(MallocCache, TheDepthComesFromTheEnvironmentOrIsTheDefault) {
  EXPECT_EQ(MallocCacheFromEnv(nullptr), kDefaultMallocCache);
  EXPECT_EQ(MallocCacheFromEnv("0"), 0);
  EXPECT_EQ(MallocCacheFromEnv("512"), 512);
  EXPECT_EQ(MallocCacheFromEnv("65535"), 65535);
  for (const char* bad : {"", "-1", "65536", "12x", " 12", "many"}) {
    EXPECT_EQ(MallocCacheFromEnv(bad), std::nullopt) << bad;
  }
}

}  // namespace
}  // namespace layer
