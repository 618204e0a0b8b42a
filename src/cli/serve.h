// `layer serve`: the gateway process.
#pragma once

#include "common/config.h"

namespace layer::cli {

// Runs the gateway until SIGTERM/SIGINT and the drain finish. Returns the process exit code.
int RunServe(const ServeConfig& cfg);

}  // namespace layer::cli
