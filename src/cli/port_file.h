#pragma once

#include <cstdint>
#include <string>

#include "common/status.h"
#include "http/server.h"

namespace layer::cli {

// Writes the bound port to `path` atomically (temp file + rename), for tests and scripts.
Status WritePortFile(const std::string& path, uint16_t port);

// Binds `server` and, when `port_file` is set, writes the bound port there.
Status ListenAndWritePort(http::HttpServer& server, const std::string& port_file);

}  // namespace layer::cli
