// Wall-clock time in epoch milliseconds: the unit of write stamps, watermarks and job times.
#pragma once

#include <chrono>
#include <cstdint>

namespace layer {

inline int64_t WallClockMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace layer
