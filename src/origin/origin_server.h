// The local origin's HTTP front: serves an origin::Engine through http::HttpServer.
//
// Engine calls block on disk I/O (every acknowledged write is fdatasync'ed), so they run on a
// small thread pool and never on an IoPool worker.
//
// With ApiKeys attached and enforced (`layer origin --api-key`), every request but the test admin
// routes needs a known bearer token; any other gets Turbopuffer's 401 envelope before anything is
// read from or done to the engine (docs/origin.md "API keys").
//
// With a FaultInjector attached (test flag only), requests can be delayed, failed with an error
// status or dropped without an answer, per Turbopuffer route family, and the rules are changed at
// run time through /_test/faults. The admin routes /_test/faults and /_test/keys exist only with
// a FaultInjector attached and are never authenticated.
#pragma once

#include <boost/asio/thread_pool.hpp>

#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <string>

#include "http/server.h"
#include "origin/api_keys.h"
#include "origin/engine/engine.h"

namespace layer::origin {

struct FaultRule {
  int64_t latency_ms = 0;    // added before the request is handled
  double error_rate = 0;     // fraction answered with error_status
  int error_status = 500;
  double drop_rate = 0;      // fraction whose connection is closed without an answer
};

// Thread-safe set of fault rules keyed by route family ("query", "write", …, or "*" for all).
class FaultInjector {
 public:
  // Replaces every rule from a JSON object {family: {latency_ms, error_rate, error_status,
  // drop_rate}}. Invalid input changes nothing.
  Status Replace(std::string_view json);
  void Clear();
  std::string ToJson() const;
  // The rule for `family` (falling back to "*"), or nullopt.
  std::optional<FaultRule> For(std::string_view family) const;
  // A uniform draw in [0, 1).
  double Draw();

 private:
  mutable std::mutex mu_;  // guards rules_ and rng_
  std::map<std::string, FaultRule, std::less<>> rules_;
  std::mt19937_64 rng_{12345};
};

struct OriginHandlerOptions {
  // Null (the default): no admin routes, no injection.
  FaultInjector* faults = nullptr;
  // Null: every request is accepted, as with an open ApiKeys.
  ApiKeys* keys = nullptr;
  int blocking_threads = 4;
};

class OriginHandler {
 public:
  // `engine` and the objects named in `options` must outlive the handler.
  OriginHandler(Engine& engine, OriginHandlerOptions options = {});
  ~OriginHandler();

  Task<http::Response> Handle(http::Exchange& ex);

 private:
  Task<http::Response> HandleFaultAdmin(http::Exchange& ex);
  Task<http::Response> HandleKeyAdmin(http::Exchange& ex);

  Engine& engine_;
  FaultInjector* faults_;
  ApiKeys* keys_;
  boost::asio::thread_pool blocking_;
};

}  // namespace layer::origin
