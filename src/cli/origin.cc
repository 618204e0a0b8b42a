#include "cli/origin.h"

#include <boost/asio/signal_set.hpp>
#include <spdlog/spdlog.h>

#include <csignal>
#include <cstdio>
#include <filesystem>

#include "cli/port_file.h"
#include "common/log.h"
#include "common/version.h"

namespace layer::cli {

Result<std::unique_ptr<EmbeddedOrigin>> StartEmbeddedOrigin(http::IoPool& pool,
                                                            const std::string& data_dir,
                                                            int64_t index_lag_ms) {
  auto out = std::make_unique<EmbeddedOrigin>();
  origin::EngineOptions eopts;
  eopts.data_dir = data_dir;
  eopts.index_lag_ms = index_lag_ms;
  auto engine = origin::Engine::Open(eopts);
  if (!engine.ok()) return engine.status();
  out->engine = std::move(*engine);
  // Open by default (docs/origin.md "API keys"): the gateway in front is the only client.
  out->handler = std::make_unique<origin::OriginHandler>(*out->engine);
  http::ServerOptions sopts;
  sopts.host = "127.0.0.1";
  sopts.port = 0;
  sopts.access_log = false;
  auto* handler = out->handler.get();
  out->server = std::make_unique<http::HttpServer>(
      pool, sopts, [handler](http::Exchange& ex) { return handler->Handle(ex); });
  if (Status st = out->server->Listen(); !st.ok()) return st;
  out->server->Start();
  out->base_url = "http://127.0.0.1:" + std::to_string(out->server->port());
  return out;
}

int RunOrigin(const OriginConfig& cfg) {
  if (Status st = InitLogging(cfg.log_level); !st.ok()) {
    std::fprintf(stderr, "layer origin: %s\n", st.message().c_str());
    return 2;
  }
  std::error_code ec;
  auto abs = std::filesystem::absolute(cfg.data_dir, ec);
  spdlog::info("layer {} local Turbopuffer-compatible origin, data in {}", kVersion,
               abs.string());
  spdlog::info("configuration: {}", cfg.Redacted());
  if (cfg.test_faults) {
    spdlog::warn(
        "fault injection enabled at /_test/faults, key replacement at /_test/keys "
        "(test mode)");
  }

  origin::EngineOptions eopts;
  eopts.data_dir = cfg.data_dir;
  eopts.index_lag_ms = cfg.index_lag_ms;
  auto engine = origin::Engine::Open(eopts);
  if (!engine.ok()) {
    spdlog::error("cannot open origin data: {}", engine.status().ToString());
    return 1;
  }
  origin::FaultInjector faults;
  origin::ApiKeys keys = cfg.api_keys.empty() ? origin::ApiKeys() : origin::ApiKeys(cfg.api_keys);
  origin::OriginHandlerOptions hopts;
  hopts.faults = cfg.test_faults ? &faults : nullptr;
  hopts.keys = &keys;
  origin::OriginHandler handler(**engine, hopts);

  http::IoPool pool(cfg.threads);
  http::ServerOptions sopts;
  uint16_t port = 0;
  if (Status st = ParseHostPort(cfg.listen, &sopts.host, &port); !st.ok()) {
    spdlog::error("{}", st.message());
    return 2;
  }
  sopts.port = port;
  sopts.max_body_bytes = cfg.max_body_bytes;
  sopts.access_log = cfg.access_log;
  http::HttpServer server(pool, sopts, [&handler](http::Exchange& ex) { return handler.Handle(ex); });
  // Caught from before the port is announced (see serve.cc).
  boost::asio::signal_set signals(pool.at(0), SIGTERM, SIGINT);
  if (Status st = ListenAndWritePort(server, cfg.port_file); !st.ok()) {
    spdlog::error("{}", st.message());
    return 1;
  }
  spdlog::info("origin listening on http://{}:{}", sopts.host, server.port());
  signals.async_wait([&](const boost::system::error_code& e, int) {
    if (e) return;
    spdlog::info("origin stopping");
    server.StopAccepting();
    pool.Stop();
  });
  server.Start();
  pool.Start();
  pool.Join();
  return 0;
}

}  // namespace layer::cli
