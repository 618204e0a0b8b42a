// Light parsers for the plain, complete HTTP/1.x request and response: the server's fast path in
// front of Beast's request parser (http/server.cc) and the upstream client's in front of Beast's
// response parser (http/http_upstream.cc).
//
// ParseSimpleRequest reads a request whose head and whole body are already buffered, in one pass
// over the bytes, and builds the same Request Beast's parser would: the method, the target and
// the version, every field with its name as spelled and its value without surrounding blanks, in
// order, and the body. It declines (returns 0, leaving `out` unspecified) whatever it does not
// fully understand, so that Beast parses it exactly as before and answers its errors (400, 413,
// 431) the same way:
//   - a head or body not yet complete in `in`;
//   - a head longer than `max_head_bytes`, a Content-Length above `max_body_bytes`;
//   - an unknown method, a target with a byte outside 0x21-0x7e, a version other than HTTP/1.0
//     or HTTP/1.1;
//   - any field line that is not `token ":" OWS value OWS CRLF` with value bytes in 0x21-0x7e,
//     space and tab (so obs-fold, bare LF, control bytes and obs-text are declined);
//   - Transfer-Encoding, Upgrade, a second Content-Length or one that is not 1-18 digits, and a
//     Connection or Proxy-Connection other than a lone "keep-alive" or "close".
// ParseSimpleResponse does the same for an answer with a Content-Length: the status code, the
// reason phrase as sent (stored as the message's reason, as Beast's parser does) and the version,
// the fields and the body. It also declines a status line that is not `HTTP/1.x SP 3DIGIT SP
// reason CRLF` with a non-empty reason of visible bytes and spaces (not ending in one), a status
// without a body (1xx, 204, 304), and an answer without Content-Length (its body runs to the end
// of the connection). It is not for the answer to a HEAD request (that has no body whatever its
// Content-Length says).
// Unit tests compare both with Beast on varied heads; fuzz/fuzz_simple_message.cc checks that
// whatever they accept, Beast accepts with the same result.
//
// Pure functions: no I/O, no allocation other than `out`'s; safe on any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "http/message.h"

namespace layer::http {

// Returns the bytes of `in` the request takes (head and body) and fills `out`, which must be a
// default-constructed Request; 0 when it declines.
size_t ParseSimpleRequest(std::string_view in, size_t max_head_bytes, uint64_t max_body_bytes,
                          Request& out);

// The same for a response; `out` must be a default-constructed Response.
size_t ParseSimpleResponse(std::string_view in, size_t max_head_bytes, uint64_t max_body_bytes,
                           Response& out);

}  // namespace layer::http
