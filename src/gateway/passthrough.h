// Pure passthrough of a Turbopuffer route (docs/design.md §9.1).
//
// Forwards method, the route's upstream path, the raw query string and the body bytes unchanged
// (gzip stays gzip), with the request headers Turbopuffer clients rely on. Relays the upstream
// status, Content-Type, Content-Encoding, retry hints and body verbatim, and rewrites a Location
// that points at the upstream to the gateway's own origin. A transport failure is 502
// upstream_error. The body is moved, never copied or re-serialised.
#pragma once

#include <chrono>
#include <optional>

#include "gateway/gateway.h"

namespace layer::gateway {

// `public_url` is the gateway origin for Location rewriting; empty = from the Host header.
Task<http::Response> Passthrough(RequestContext& ctx, http::Upstream& upstream,
                                       const std::string& public_url);

// Reads the body; returns the error response to answer when it could not be read.
Task<std::optional<http::Response>> ReadBodyOrError(RequestContext& ctx);

// The body without Content-Encoding (gzip is decoded, at most `max_bytes`), or nullopt when it
// cannot be decoded (the upstream then answers it as sent).
std::optional<std::string> DecodedBody(const RequestContext& ctx, size_t max_bytes);

// The route's upstream path with the client's raw query string.
std::string TargetWithQuery(const RequestContext& ctx);

// The request Forward sends: the route's upstream path and query, the client's forwarded headers
// and its body (moved) or `replacement`. For a handler that sends and times it itself (saving
// SendUpstream's coroutine frame on the hot path).
http::Request ForwardRequest(RequestContext& ctx, std::optional<std::string> replacement,
                             bool read_response);

// Forwards the request upstream with the client's forwarded headers: with its own body (moved,
// encoding untouched) or, given `replacement`, with that identity-encoded JSON body instead. With
// `read_response`, the response is asked for unencoded so the gateway can read it.
Task<Result<http::Response>> Forward(RequestContext& ctx, http::Upstream& upstream,
                                           std::optional<std::string> replacement,
                                           bool read_response);

// Sends `req` upstream on behalf of `ctx` and accounts the time in ctx.ex.info. Shared by every
// handler that talks to the upstream.
Task<Result<http::Response>> SendUpstream(RequestContext& ctx, http::Upstream& upstream,
                                                http::Request req);

// Adds the time since `since` to the upstream time of ctx's request (RequestInfo).
void AddUpstreamTime(RequestContext& ctx, std::chrono::steady_clock::time_point since);

// Copies the request headers that are forwarded upstream (content-type, content-encoding, accept,
// accept-encoding, prefer, user-agent, x-stainless-*) and the upstream Authorization.
void CopyForwardedHeaders(const RequestContext& ctx, http::Request& up);

// A request the gateway itself sends upstream on behalf of `ctx` (fetch reads, schema reads,
// stamped writes): JSON in and out, identity encoding, the upstream credential of `ctx`.
http::Request GatewayRequest(const RequestContext& ctx, http::Verb method, std::string target,
                             std::string body);

// Builds the client response from an upstream response: status, relayed headers, body. It reuses
// `upstream_res` (its other fields are erased) and moves it out.
http::Response RelayResponse(const RequestContext& ctx, http::Response& upstream_res,
                             const std::string& upstream_base, const std::string& public_url);

// The 502 answered for a transport failure.
http::Response UpstreamError(const Status& st);

}  // namespace layer::gateway
