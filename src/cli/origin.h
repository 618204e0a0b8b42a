// `layer origin`: the local Turbopuffer-compatible server on its own, and the in-process origin
// that `layer serve` embeds when no upstream is configured.
#pragma once

#include <memory>
#include <string>

#include "common/config.h"
#include "http/io_pool.h"
#include "http/server.h"
#include "origin/engine/engine.h"
#include "origin/origin_server.h"

namespace layer::cli {

// An origin engine served on a loopback port of an existing IoPool.
struct EmbeddedOrigin {
  std::unique_ptr<origin::Engine> engine;
  std::unique_ptr<origin::OriginHandler> handler;
  std::unique_ptr<http::HttpServer> server;
  std::string base_url;  // http://127.0.0.1:<port>
};

// Opens the engine in `data_dir` and starts serving it on 127.0.0.1 (ephemeral port).
Result<std::unique_ptr<EmbeddedOrigin>> StartEmbeddedOrigin(http::IoPool& pool,
                                                            const std::string& data_dir,
                                                            int64_t index_lag_ms);

// Runs `layer origin` until SIGTERM/SIGINT. Returns the process exit code.
int RunOrigin(const OriginConfig& cfg);

}  // namespace layer::cli
