#include "common/malloc_cache.h"

#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "common/sanitizers.h"

namespace layer {
namespace {

constexpr std::string_view kTunable = "glibc.malloc.tcache_count";
// Set in the restarted process: it never restarts again, whatever its environment says.
constexpr const char* kRestarted = "LAYER_MALLOC_CACHE_SET";

}  // namespace

std::optional<std::string> TunablesWithMallocCache(const char* current, int count) {
  if (count <= 0) return std::nullopt;
  const std::string_view now = current ? current : "";
  // GLIBC_TUNABLES is a colon-separated list of name=value.
  for (size_t start = 0; start <= now.size();) {
    size_t end = now.find(':', start);
    if (end == std::string_view::npos) end = now.size();
    const std::string_view item = now.substr(start, end - start);
    if (item.substr(0, item.find('=')) == kTunable) return std::nullopt;
    start = end + 1;
  }
  std::string out(now);
  if (!out.empty()) out += ':';
  out += kTunable;
  out += '=';
  out += std::to_string(count);
  return out;
}

std::optional<int> MallocCacheFromEnv(const char* value) {
  if (!value) return kDefaultMallocCache;
  const std::string_view v(value);
  int n = -1;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (ec != std::errc() || p != v.data() + v.size() || n < 0 || n > 65535) return std::nullopt;
  return n;
}

void RestartWithMallocCache(char** argv) {
#ifdef __GLIBC__
  if (kSanitizerBuild || std::getenv(kRestarted)) return;
  const char* asked = std::getenv("LAYER_MALLOC_CACHE");
  const std::optional<int> count = MallocCacheFromEnv(asked);
  if (!count) {
    std::fprintf(stderr, "layer: LAYER_MALLOC_CACHE=%s is not a number of blocks (0-65535); "
                 "keeping glibc's malloc cache\n", asked);
    return;
  }
  const std::optional<std::string> tunables =
      TunablesWithMallocCache(std::getenv("GLIBC_TUNABLES"), *count);
  if (!tunables) return;
  if (setenv("GLIBC_TUNABLES", tunables->c_str(), 1) != 0 || setenv(kRestarted, "1", 1) != 0) {
    return;
  }
  execv("/proc/self/exe", argv);
  // Still here: the restart failed. Run on with glibc's default.
  std::fprintf(stderr, "layer: restarting with a deeper malloc cache failed (%s); "
               "running with glibc's default\n", std::strerror(errno));
#else
  (void)argv;
#endif
}

}  // namespace layer
