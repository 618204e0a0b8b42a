#include "origin/origin_server.h"

#include <functional>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include <cmath>

#include "http/errors.h"
#include "tpuf/routes.h"

namespace layer::origin {

namespace asio = boost::asio;
namespace json = boost::json;

namespace {

// Route families none of whose routes changes data (tpuf/routes.cc): an after-apply fault on
// them could never fire, so Replace refuses it.
bool FamilyNeverChangesData(std::string_view family) {
  for (std::string_view f :
       {"namespaces", "query", "explain_query", "hint_cache_warm", "recall", "operations"}) {
    if (family == f) return true;
  }
  return false;
}

std::string_view AfterApplyName(AfterApply a) {
  switch (a) {
    case AfterApply::kDrop:
      return "drop";
    case AfterApply::kDelay:
      return "delay";
    case AfterApply::kNone:
      break;
  }
  return "none";
}

Result<FaultRule> ParseRule(std::string_view family, const json::object& spec) {
  FaultRule r;
  bool has_delay = false;
  bool has_rate = false;
  for (const auto& member : spec) {
    const auto& k = member.key();
    const json::value& val = member.value();
    auto bad = [&k] {
      return Status::InvalidArgument("unknown or out-of-range fault field '" + std::string(k) +
                                     "'");
    };
    if (k == "after_apply") {
      if (!val.is_string()) return bad();
      if (val.as_string() == "drop") {
        r.after_apply = AfterApply::kDrop;
      } else if (val.as_string() == "delay") {
        r.after_apply = AfterApply::kDelay;
      } else {
        return Status::InvalidArgument("after_apply must be \"drop\" or \"delay\"");
      }
      continue;
    }
    if (!val.is_number()) return Status::InvalidArgument("fault values must be numbers");
    double d = val.to_number<double>();
    const bool integral = std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9e15;
    if (k == "latency_ms" && d >= 0) {
      r.latency_ms = static_cast<int64_t>(d);
    } else if (k == "error_rate" && d >= 0 && d <= 1) {
      r.error_rate = d;
    } else if (k == "error_status" && d >= 400 && d <= 599) {
      r.error_status = static_cast<int>(d);
    } else if (k == "drop_rate" && d >= 0 && d <= 1) {
      r.drop_rate = d;
    } else if (k == "after_apply_delay_ms" && integral && d > 0) {
      r.after_apply_delay_ms = static_cast<int64_t>(d);
      has_delay = true;
    } else if (k == "after_apply_rate" && d >= 0 && d <= 1) {
      r.after_apply_rate = d;
      has_rate = true;
    } else if (k == "times" && integral && d >= 0) {
      r.times = static_cast<int64_t>(d);
    } else {
      return bad();
    }
  }
  if (r.after_apply == AfterApply::kNone && (has_delay || has_rate)) {
    return Status::InvalidArgument("after_apply_delay_ms and after_apply_rate need after_apply");
  }
  if (r.after_apply == AfterApply::kDelay && !has_delay) {
    return Status::InvalidArgument("after_apply \"delay\" needs after_apply_delay_ms");
  }
  if (r.after_apply == AfterApply::kDrop && has_delay) {
    return Status::InvalidArgument("after_apply_delay_ms is only for after_apply \"delay\"");
  }
  if (r.after_apply != AfterApply::kNone && FamilyNeverChangesData(family)) {
    return Status::InvalidArgument("after_apply on '" + std::string(family) +
                                   "', whose requests never change data");
  }
  return r;
}

}  // namespace

Status FaultInjector::Replace(std::string_view text) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec || !v.is_object()) return Status::InvalidArgument("fault rules must be a JSON object");
  std::map<std::string, FaultRule, std::less<>> rules;
  for (const auto& [family, spec] : v.as_object()) {
    if (!spec.is_object()) return Status::InvalidArgument("each fault rule must be an object");
    auto rule = ParseRule(family, spec.as_object());
    if (!rule.ok()) return rule.status();
    rules[std::string(family)] = *rule;
  }
  std::lock_guard lock(mu_);
  rules_ = std::move(rules);
  return Status::Ok();
}

void FaultInjector::Clear() {
  std::lock_guard lock(mu_);
  rules_.clear();
}

std::string FaultInjector::ToJson() const {
  std::lock_guard lock(mu_);
  json::object out;
  for (const auto& [family, r] : rules_) {
    json::object o{{"latency_ms", r.latency_ms},
                   {"error_rate", r.error_rate},
                   {"error_status", r.error_status},
                   {"drop_rate", r.drop_rate}};
    if (r.after_apply != AfterApply::kNone) {
      o["after_apply"] = AfterApplyName(r.after_apply);
      if (r.after_apply == AfterApply::kDelay) o["after_apply_delay_ms"] = r.after_apply_delay_ms;
      o["after_apply_rate"] = r.after_apply_rate;
    }
    if (r.times) o["times"] = *r.times;
    out[family] = std::move(o);
  }
  return json::serialize(out);
}

FaultPlan FaultInjector::Plan(std::string_view family, bool changes_data) {
  FaultPlan plan;
  std::lock_guard lock(mu_);
  auto it = rules_.find(family);
  if (it == rules_.end()) it = rules_.find("*");
  if (it == rules_.end()) return plan;
  FaultRule& r = it->second;
  if (r.times && *r.times <= 0) return plan;
  auto draw = [this](double rate) {
    return rate > 0 && std::uniform_real_distribution<double>(0, 1)(rng_) < rate;
  };
  plan.latency_ms = r.latency_ms;
  if (draw(r.drop_rate)) {
    plan.drop = true;
  } else if (draw(r.error_rate)) {
    plan.error_status = r.error_status;
  } else if (changes_data && r.after_apply != AfterApply::kNone && draw(r.after_apply_rate)) {
    plan.after_apply = r.after_apply;
    plan.after_apply_delay_ms = r.after_apply_delay_ms;
  }
  const bool affected = plan.latency_ms > 0 || plan.drop || plan.error_status != 0 ||
                        plan.after_apply != AfterApply::kNone;
  if (affected && r.times) --*r.times;
  return plan;
}

OriginHandler::OriginHandler(Engine& engine, OriginHandlerOptions options)
    : engine_(engine),
      faults_(options.faults),
      keys_(options.keys),
      blocking_(options.blocking_threads) {}

OriginHandler::~OriginHandler() { blocking_.join(); }

namespace {

// The test admin routes' shape: GET shows the state, PUT (or POST) replaces it from the body (422
// and nothing changed when the body is refused), DELETE resets it; each answers the state.
// The callables are taken by value: the task may start after its caller returned.
Task<http::Response> AdminRoute(http::Exchange& ex, std::string_view route,
                                std::function<Status(std::string_view)> replace,
                                std::function<void()> reset, std::function<std::string()> show) {
  ex.info.route = route;
  if (co_await ex.ReadBody() != http::BodyStatus::kOk) {
    co_return http::MakeError(http::Code::bad_request, "bad_request", "unreadable body");
  }
  switch (ex.request().method()) {
    case http::Verb::get:
      break;
    case http::Verb::put:
    case http::Verb::post:
      if (Status st = replace(ex.body()); !st.ok()) {
        co_return http::MakeError(http::Code::unprocessable_entity, "validation_error",
                                  st.message());
      }
      break;
    case http::Verb::delete_:
      reset();
      break;
    default:
      co_return http::MakeError(http::Code::method_not_allowed, "not_found", "use GET/PUT/DELETE");
  }
  http::Response res{http::Code::ok, 11};
  res.set(http::Field::content_type, "application/json");
  res.body() = show();
  co_return res;
}

}  // namespace

Task<http::Response> OriginHandler::HandleFaultAdmin(http::Exchange& ex) {
  return AdminRoute(
      ex, "test_faults", [this](std::string_view body) { return faults_->Replace(body); },
      [this] { faults_->Clear(); }, [this] { return faults_->ToJson(); });
}

Task<http::Response> OriginHandler::HandleKeyAdmin(http::Exchange& ex) {
  return AdminRoute(
      ex, "test_keys", [this](std::string_view body) { return keys_->ReplaceFromJson(body); },
      [this] { keys_->Open(); }, [this] { return keys_->ToJson(); });
}

Task<http::Response> OriginHandler::Handle(http::Exchange& ex) {
  const auto& req = ex.request();
  std::string_view target = req.target();
  size_t q = target.find('?');
  std::string_view path = target.substr(0, q);
  std::string_view query = q == std::string_view::npos ? std::string_view() : target.substr(q + 1);

  // The test admin routes stay unauthenticated, so that a test can revoke the very key it used.
  if (faults_ && path == "/_test/faults") co_return co_await HandleFaultAdmin(ex);
  if (faults_ && keys_ && path == "/_test/keys") co_return co_await HandleKeyAdmin(ex);

  auto route = tpuf::MatchRoute(req.method(), path);
  ex.info.route = route ? route->family : std::string_view("unknown");

  // The key is checked first (docs/origin.md "API keys"): a refused request changes nothing and
  // uses no fault budget. The body is still read, so the connection stays usable (the server closes
  // a connection whose announced body was left unread).
  if (keys_) {
    if (auto verdict = keys_->Check(req[http::Field::authorization]);
        verdict != ApiKeys::Verdict::kAllowed) {
      co_await ex.ReadBody();
      co_return UnauthorizedResponse(verdict);
    }
  }

  FaultPlan plan;
  if (faults_ && route) plan = faults_->Plan(route->family, route->writes);
  if (plan.latency_ms > 0) {
    asio::steady_timer t(co_await asio::this_coro::executor);
    t.expires_after(std::chrono::milliseconds(plan.latency_ms));
    co_await t.async_wait(asio::use_awaitable);
  }
  if (plan.drop) {
    ex.info.drop_connection = true;
    co_return http::Response{};
  }
  if (plan.error_status != 0) {
    http::Response res{static_cast<http::Code>(plan.error_status), 11};
    res.set(http::Field::content_type, "application/json");
    res.body() = R"({"status":"error","error":"injected fault"})";
    co_return res;
  }

  switch (co_await ex.ReadBody()) {
    case http::BodyStatus::kOk:
      break;
    case http::BodyStatus::kTooLarge:
      co_return http::MakeError(http::Code::payload_too_large, "payload_too_large",
                                "request body too large");
    case http::BodyStatus::kFailed:
      co_return http::MakeError(http::Code::bad_request, "bad_request", "unreadable body");
  }
  OriginRequest oreq{req.method_string(), path, query, req[http::Field::content_encoding],
                     ex.body()};
  OriginResponse ores = co_await asio::co_spawn(
      blocking_.get_executor(),
      [this, &oreq]() -> Task<OriginResponse> { co_return engine_.Handle(oreq); },
      asio::use_awaitable);

  // After-apply faults (docs/origin.md "Fault injection"): the engine has made the request's
  // effects durable (fdatasync'ed) before returning, whatever the answer says, so the client
  // either never hears of them or hears late.
  if (plan.after_apply == AfterApply::kDrop) {
    ex.info.drop_connection = true;
    co_return http::Response{};
  }
  if (plan.after_apply == AfterApply::kDelay) {
    asio::steady_timer t(co_await asio::this_coro::executor);
    t.expires_after(std::chrono::milliseconds(plan.after_apply_delay_ms));
    co_await t.async_wait(asio::use_awaitable);
  }
  http::Response res{static_cast<http::Code>(ores.status), 11};
  res.set(http::Field::content_type, ores.content_type);
  for (auto& [k, v] : ores.headers) res.set(k, v);
  res.body() = std::move(ores.body);
  co_return res;
}

}  // namespace layer::origin
