// /_test/cache-faults: run-time cache fault injection, served only when the gateway was started
// with --test-faults (never in production). Lets integration tests take the real cache "down",
// make it slow or make it fail, then bring it back, while the gateway runs.
//
//   PUT    /_test/cache-faults  {"disconnect":bool?, "fail":bool?, "latency_ms":int?,
//                                 "op_latency_ms":{"<op>":int,...}?, "try_get_would_block":bool?}
// (try_get_would_block: non-blocking reads always decline, so fetch hits take the guarded path;
// op_latency_ms: the latency of single operations, by their metric name, e.g.
// {"put_if_newer_batch":1000}; DELETE wakes callers sleeping in a latency.)
//   GET    /_test/cache-faults  the state: {"disconnected":bool, "calls":{"<op>":n, ...}}
//   DELETE /_test/cache-faults  clear every fault
// Every method answers the state after it. `calls` counts, per op (cache/cache_op.h names), the
// calls that reached the decorator since the gateway started, counted on arrival (before an
// injected latency or failure), so a test can wait for an operation to have begun.
#pragma once

#include "cache/fault_injecting_cache.h"
#include "http/server.h"

namespace layer::gateway {

inline constexpr std::string_view kCacheFaultsPath = "/_test/cache-faults";

Task<http::Response> HandleCacheFaults(http::Exchange& ex, cache::FaultInjectingCache& f);

}  // namespace layer::gateway
