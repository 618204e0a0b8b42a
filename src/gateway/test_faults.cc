#include "gateway/test_faults.h"

#include <boost/json.hpp>

#include <optional>
#include <string>

#include "http/errors.h"

namespace layer::gateway {

namespace json = boost::json;

Task<http::Response> HandleCacheFaults(http::Exchange& ex, cache::FaultInjectingCache& f) {
  ex.info.route = "test_faults";
  if (co_await ex.ReadBody() != http::BodyStatus::kOk) {
    co_return http::MakeError(http::Code::bad_request, "bad_request", "unreadable body");
  }
  auto invalid = [](std::string_view msg) {
    return http::MakeError(http::Code::unprocessable_entity, "validation_error", msg);
  };
  switch (ex.request().method()) {
    case http::Verb::get:
      break;
    case http::Verb::delete_:
      f.Reconnect();
      f.ClearFailures();
      f.ClearLatency();
      f.SetTryGetWouldBlock(false);
      break;
    case http::Verb::put:
    case http::Verb::post: {
      boost::system::error_code ec;
      json::value v = json::parse(ex.body(), ec);
      if (ec || !v.is_object()) co_return invalid("body must be a JSON object");
      for (const auto& [k, val] : v.as_object()) {
        if (k == "disconnect" && val.is_bool()) {
          val.as_bool() ? f.Disconnect() : f.Reconnect();
        } else if (k == "fail" && val.is_bool()) {
          if (val.as_bool()) {
            f.FailAll(Status::IoError("injected cache failure"));
          } else {
            f.ClearFailures();
          }
        } else if (k == "latency_ms" && val.is_int64() && val.as_int64() >= 0) {
          f.SetLatency(std::chrono::milliseconds(val.as_int64()));
        } else if (k == "op_latency_ms" && val.is_object()) {
          for (const auto& [name, ms] : val.as_object()) {
            std::optional<cache::CacheOp> op = cache::CacheOpFromName(name);
            if (!op || !ms.is_int64() || ms.as_int64() < 0) {
              co_return invalid("invalid 'op_latency_ms' entry '" + std::string(name) + "'");
            }
            f.SetOpLatency(*op, std::chrono::milliseconds(ms.as_int64()));
          }
        } else if (k == "try_get_would_block" && val.is_bool()) {
          f.SetTryGetWouldBlock(val.as_bool());
        } else {
          co_return invalid("unknown or invalid field '" + std::string(k) + "'");
        }
      }
      break;
    }
    default:
      co_return http::MakeError(http::Code::method_not_allowed, "not_found", "use GET/PUT/DELETE");
  }
  // The calls that reached the decorator so far, per op: a test waits on them for an operation to
  // have begun (and, under an injected latency, to be held there).
  json::object calls;
  for (size_t i = 0; i < cache::kCacheOpCount; ++i) {
    const auto op = static_cast<cache::CacheOp>(i);
    calls[cache::CacheOpName(op)] = f.calls(op);
  }
  json::object state;
  state["disconnected"] = f.disconnected();
  state["calls"] = std::move(calls);
  co_return http::MakeJson(http::Code::ok, std::move(state));
}

}  // namespace layer::gateway
