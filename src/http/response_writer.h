// How the server puts a handler's Response on the wire, and the upstream client its Request,
// without Beast's serializer.
//
// The server's hot path writes every answer as one gather write of two buffers: a head built by
// SerializeResponseHead into a per-connection string, and the body; the upstream client does the
// same with SerializeRequestHead. The bytes are the ones Beast's
// response serializer writes for the same message (status line, every field in order, blank line,
// body), so a client cannot tell the two apart; tests compare the two byte for byte.
//
// Pure functions on values: no I/O, no locks, safe on any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "http/message.h"

namespace layer::http {

// Finalises `res` for the wire the way the server answers every request:
//   - keep_alive(keep_alive): on HTTP/1.1 "Connection: close" when false, no close token when
//     true (HTTP/1.0: "Connection: keep-alive" when true);
//   - x-request-id set to `request_id` (replacing any the handler set);
//   - for a request other than HEAD, prepare_payload(): Content-Length from the body, and
//     "chunked" dropped from Transfer-Encoding (the body goes out as is). It throws
//     std::invalid_argument, as Beast does, for a 1xx/204/304 with a non-empty body (a handler
//     bug);
//   - for a HEAD request, the handler's Content-Length, or "Content-Length: 0" when it set none.
void PrepareResponse(Response& res, bool keep_alive, std::string_view request_id,
                     bool head_request);

// Replaces `out`'s contents (its capacity is reused) with the response head: "HTTP/x.y ### reason"
// (the custom reason if one was set, else the standard one), every field as "Name: value", each
// line ending in CRLF, then the blank line. The body is not included: it follows the head on the
// wire, as is, unless the request was HEAD.
void SerializeResponseHead(const Response& res, std::string& out);

// PrepareResponse(res, keep_alive, request_id, false) and SerializeResponseHead together, for the
// common answer, without changing `res`: HTTP/1.1, not to a HEAD request, a status with a body
// (not 1xx, 204 or 304), and none of the fields PrepareResponse rewrites (Connection,
// Content-Length, Transfer-Encoding, x-request-id). `out` then holds the same bytes the two calls
// would have produced and the result is true; for any other answer it is false and `out` is
// unspecified (the caller takes the two calls).
bool SerializePreparedResponseHead(const Response& res, bool keep_alive,
                                   std::string_view request_id, bool head_request,
                                   std::string& out);

// The same for a request (the upstream client's hot path): "METHOD target HTTP/x.y", every field
// as "Name: value", each line ending in CRLF, then the blank line; byte for byte what Beast's
// request serializer writes for the head. The body (if any) follows as is.
void SerializeRequestHead(const Request& req, std::string& out);

// The head SerializeRequestHead writes for `req` after req.set(Host, host), req.keep_alive(true)
// and, given a `content_length`, req.content_length(*content_length) (what the upstream client
// does to every request), without changing `req`: its fields in order, then "Host", then
// "Content-Length". True when written; false, with `out` unspecified, when `req` is not HTTP/1.1
// or has a field those calls would rewrite in place (Host, Content-Length, Transfer-Encoding,
// Connection): the caller then makes the calls and serialises.
bool SerializeRequestHeadWith(const Request& req, std::string_view host,
                              std::optional<uint64_t> content_length, std::string& out);

}  // namespace layer::http
