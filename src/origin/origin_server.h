// The local origin's HTTP front: serves an origin::Engine through http::HttpServer.
//
// Engine calls block on disk I/O (every acknowledged write is fdatasync'ed), so they run on a
// small thread pool and never on an IoPool worker.
//
// With ApiKeys attached and enforced (`layer origin --api-key`), every request but the test admin
// routes needs a known bearer token; any other gets Turbopuffer's 401 envelope before anything is
// read from or done to the engine (docs/origin.md "API keys").
//
// With a FaultInjector attached (test flag only; docs/origin.md "Fault injection"), the rules
// are changed at run time through /_test/faults and, per Turbopuffer route family (or "*"), act
// at two points:
//  - before the request is applied: latency, an error status, or a dropped connection; nothing
//    is applied;
//  - after a data-changing request (tpuf::Route::writes: "write", "delete_namespace", and the
//    legacy, schema and metadata routes that change data) was applied, durably: the connection
//    is closed without an answer ("drop"), or the answer is held back for a time ("delay"), so a
//    client sees a lost or late answer for a write that took effect.
// A rule may carry a budget (`times`): it then affects at most that many more requests.
// The admin routes /_test/faults and /_test/keys exist only with a FaultInjector attached and
// are never authenticated.
#pragma once

#include <boost/asio/thread_pool.hpp>

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <string>

#include "http/server.h"
#include "origin/api_keys.h"
#include "origin/engine/engine.h"

namespace layer::origin {

// What happens to a data-changing request once the engine has applied it.
enum class AfterApply {
  kNone,
  kDrop,   // close the connection without an answer
  kDelay,  // answer after after_apply_delay_ms
};

// One family's rule. JSON form (every field optional):
//   {"latency_ms":N, "error_rate":R, "error_status":S, "drop_rate":R,
//    "after_apply":"drop"|"delay", "after_apply_delay_ms":N, "after_apply_rate":R, "times":N}
// with rates in [0,1], S in 400..599, after_apply_delay_ms > 0 and required exactly for "delay",
// after_apply_* only with after_apply, and times an integer >= 0.
struct FaultRule {
  // Before the request is applied.
  int64_t latency_ms = 0;  // added before the request is handled
  double error_rate = 0;   // fraction answered with error_status
  int error_status = 500;
  double drop_rate = 0;  // fraction whose connection is closed without an answer
  // After a data-changing request was applied (ignored on routes that change nothing).
  AfterApply after_apply = AfterApply::kNone;
  int64_t after_apply_delay_ms = 0;
  double after_apply_rate = 1;  // fraction of the data-changing requests affected
  // Budget: when set, the number of further requests the rule may affect. A request the rule
  // affects in any way (latency, error, drop, after-apply fault) uses one; a spent rule (0) stays
  // listed and affects nothing, and its family does not fall back to "*".
  std::optional<int64_t> times;
};

// The faults drawn for one request.
struct FaultPlan {
  int64_t latency_ms = 0;
  bool drop = false;     // close the connection before applying
  int error_status = 0;  // answer this status before applying; 0 for none
  AfterApply after_apply = AfterApply::kNone;
  int64_t after_apply_delay_ms = 0;
};

// Thread-safe set of fault rules keyed by route family ("query", "write", …, or "*" for all).
class FaultInjector {
 public:
  // Replaces every rule from a JSON object {family: rule} (FaultRule's JSON form). An after-apply
  // fault on a family none of whose routes changes data is refused: it could never fire. Invalid
  // input changes nothing.
  Status Replace(std::string_view json);
  void Clear();
  // The rules in their JSON form; `times` shows what is left of a budget.
  std::string ToJson() const;
  // Draws the faults of one request of `family` (its own rule, else "*"), using one of the rule's
  // `times` when anything is drawn, atomically, so that with {"times":1} exactly one of several
  // concurrent requests is affected. `changes_data` is tpuf::Route::writes; after-apply faults
  // are drawn only for such requests, and only when no before-apply drop or error was drawn.
  FaultPlan Plan(std::string_view family, bool changes_data);

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
