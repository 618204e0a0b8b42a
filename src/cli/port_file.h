#pragma once

#include <cstdint>
#include <string>

#include "common/status.h"

namespace layer::cli {

// Writes the bound port to `path` atomically (temp file + rename), for tests and scripts.
Status WritePortFile(const std::string& path, uint16_t port);

}  // namespace layer::cli
