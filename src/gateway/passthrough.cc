#include "gateway/passthrough.h"

#include <boost/beast/core/string.hpp>

#include "common/gzip.h"
#include "http/errors.h"

namespace layer::gateway {
namespace {

namespace beast = boost::beast;

bool HasPrefix(std::string_view name, std::string_view prefix) {
  return name.size() > prefix.size() && beast::iequals(name.substr(0, prefix.size()), prefix);
}

// The common names are matched by the parser's field id; any other name is compared as text.
bool IsForwardedRequestHeader(http::Field id, std::string_view name) {
  switch (id) {
    case http::Field::content_type:
    case http::Field::content_encoding:
    case http::Field::accept:
    case http::Field::accept_encoding:
    case http::Field::prefer:
    case http::Field::user_agent:
      return true;
    default:
      return HasPrefix(name, "x-stainless-");
  }
}

bool IsRelayedResponseHeader(http::Field id, std::string_view name) {
  switch (id) {
    case http::Field::content_type:
    case http::Field::content_encoding:
    case http::Field::retry_after:
    case http::Field::preference_applied:
      return true;
    default:
      return beast::iequals(name, "retry-after-ms") || beast::iequals(name, "x-should-retry") ||
             HasPrefix(name, "x-turbopuffer-");
  }
}

// If `location` is under the upstream base URL, re-anchor it at the gateway's origin.
std::string RewriteLocation(std::string_view location, const std::string& upstream_base,
                            std::string_view gateway_origin) {
  if (gateway_origin.empty() || location.size() < upstream_base.size() ||
      !beast::iequals(location.substr(0, upstream_base.size()), upstream_base)) {
    return std::string(location);
  }
  std::string_view rest = location.substr(upstream_base.size());
  if (!rest.empty() && rest[0] != '/' && rest[0] != '?') return std::string(location);
  std::string out(gateway_origin);
  while (!out.empty() && out.back() == '/') out.pop_back();
  out += rest;
  return out;
}

}  // namespace

void CopyForwardedHeaders(const RequestContext& ctx, http::Request& up) {
  for (const auto& f : ctx.ex.request()) {
    // The parsed field id is passed along: no second lookup of the name.
    if (IsForwardedRequestHeader(f.name(), f.name_string())) {
      up.insert(f.name(), f.name_string(), f.value());
    }
  }
  if (!ctx.auth.upstream_authorization.empty()) {
    up.set(http::Field::authorization, ctx.auth.upstream_authorization);
  }
}

http::Request GatewayRequest(const RequestContext& ctx, http::Verb method, std::string target,
                             std::string body) {
  http::Request up{method, std::move(target), 11};
  up.set(http::Field::accept, "application/json");
  if (!body.empty()) up.set(http::Field::content_type, "application/json");
  if (auto ua = http::FieldValue(ctx.ex.request(), http::Field::user_agent); !ua.empty()) {
    up.set(http::Field::user_agent, ua);
  }
  if (!ctx.auth.upstream_authorization.empty()) {
    up.set(http::Field::authorization, ctx.auth.upstream_authorization);
  }
  up.body() = std::move(body);
  return up;
}

Task<Result<http::Response>> SendUpstream(RequestContext& ctx, http::Upstream& upstream,
                                                http::Request req) {
  auto t0 = std::chrono::steady_clock::now();
  auto res = co_await upstream.Send(std::move(req), ctx.route.idempotent);
  AddUpstreamTime(ctx, t0);
  co_return res;
}

void AddUpstreamTime(RequestContext& ctx, std::chrono::steady_clock::time_point since) {
  ctx.ex.info.upstream_seconds +=
      std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

http::Response UpstreamError(const Status& st) {
  return http::MakeError(http::Code::bad_gateway, "upstream_error", st.message());
}

http::Response RelayResponse(const RequestContext& ctx, http::Response& ur,
                             const std::string& upstream_base, const std::string& public_url) {
  // In place: the upstream's answer keeps its code and reason phrase as sent, its relayed fields
  // in their order and its body; every other field goes (the first Location and, for HEAD, the
  // first Content-Length come back at the end, as set() would append them).
  std::string location, length;
  bool has_location = false, has_length = false;
  for (auto it = ur.begin(); it != ur.end();) {
    if (IsRelayedResponseHeader(it->name(), it->name_string())) {
      ++it;
      continue;
    }
    if (it->name() == http::Field::location && !has_location) {
      location = it->value();
      has_location = true;
    } else if (it->name() == http::Field::content_length && !has_length) {
      length = it->value();
      has_length = true;
    }
    it = ur.erase(it);
  }
  ur.version(11);
  if (!location.empty()) {
    std::string origin = public_url;
    if (origin.empty()) {
      auto host = http::FieldValue(ctx.ex.request(), http::Field::host);
      if (!host.empty()) origin = "http://" + std::string(host);
    }
    ur.set(http::Field::location, RewriteLocation(location, upstream_base, origin));
  }
  if (ctx.ex.request().method() == http::Verb::head && !length.empty()) {
    ur.set(http::Field::content_length, length);
  }
  return std::move(ur);
}

Task<std::optional<http::Response>> ReadBodyOrError(RequestContext& ctx) {
  http::BodyStatus st = co_await ctx.ex.ReadBody();
  switch (st) {
    case http::BodyStatus::kOk:
      co_return std::nullopt;
    case http::BodyStatus::kTooLarge:
      co_return http::MakeError(http::Code::payload_too_large, "payload_too_large",
                                "request body exceeds the configured limit");
    case http::BodyStatus::kFailed:
      break;
  }
  co_return http::MakeError(http::Code::bad_request, "bad_request",
                            "request body could not be read");
}

std::optional<std::string> DecodedBody(const RequestContext& ctx, size_t max_bytes) {
  auto enc = http::FieldValue(ctx.ex.request(), http::Field::content_encoding);
  if (enc.empty() || beast::iequals(enc, "identity")) return ctx.ex.body();
  if (!beast::iequals(enc, "gzip")) return std::nullopt;
  auto raw = GzipDecompress(ctx.ex.body(), max_bytes);
  if (!raw.ok()) return std::nullopt;
  return std::move(*raw);
}

std::string TargetWithQuery(const RequestContext& ctx) {
  std::string target = ctx.route.upstream_path;
  if (!ctx.query.empty()) {
    target += '?';
    target += ctx.query;
  }
  return target;
}

http::Request ForwardRequest(RequestContext& ctx, std::optional<std::string> replacement,
                             bool read_response) {
  http::Request up{ctx.ex.request().method(), TargetWithQuery(ctx), 11};
  CopyForwardedHeaders(ctx, up);
  if (replacement) {
    up.erase(http::Field::content_encoding);
    up.set(http::Field::content_type, "application/json");
    up.body() = std::move(*replacement);
  } else {
    up.body() = std::move(ctx.ex.body());
  }
  if (read_response) up.erase(http::Field::accept_encoding);
  return up;
}

// Not a coroutine: it builds the request and returns SendUpstream's (lazy) task, which the caller
// awaits at once, so a request costs no coroutine frame here.
Task<Result<http::Response>> Forward(RequestContext& ctx, http::Upstream& upstream,
                                           std::optional<std::string> replacement,
                                           bool read_response) {
  return SendUpstream(ctx, upstream,
                      ForwardRequest(ctx, std::move(replacement), read_response));
}

Task<http::Response> Passthrough(RequestContext& ctx, http::Upstream& upstream,
                                       const std::string& public_url) {
  if (!ctx.ex.ReadBufferedBody()) {
    if (auto err = co_await ReadBodyOrError(ctx)) co_return std::move(*err);
  }
  // Forward, timed here rather than in SendUpstream's frame.
  http::Request up = ForwardRequest(ctx, std::nullopt, false);
  const auto t0 = std::chrono::steady_clock::now();
  auto res = co_await upstream.Send(std::move(up), ctx.route.idempotent);
  AddUpstreamTime(ctx, t0);
  if (!res.ok()) co_return UpstreamError(res.status());
  co_return RelayResponse(ctx, *res, upstream.base(), public_url);
}

}  // namespace layer::gateway
