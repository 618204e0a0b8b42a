#pragma once

namespace layer {
inline constexpr const char* kVersion = "0.1.0";
}  // namespace layer
