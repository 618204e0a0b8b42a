// Process-wide logging on spdlog. Log lines go to stderr. Secrets never reach a log call:
// configuration is logged through ServeConfig::Redacted() and tokens are never formatted.
#pragma once

#include <spdlog/spdlog.h>

#include <string>

#include "common/status.h"

namespace layer {

// Sets the default logger's level and pattern. Returns InvalidArgument for an unknown level.
Status InitLogging(const std::string& level);

}  // namespace layer
