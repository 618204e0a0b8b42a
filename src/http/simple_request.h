// A light parser for the plain, complete HTTP/1.x request: the server's fast path in front of
// Beast's request parser (http/server.cc).
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
// Unit tests compare it with Beast on varied heads; fuzz/fuzz_simple_request.cc checks that
// whatever it accepts, Beast accepts with the same result.
//
// Pure function: no I/O, no allocation other than `out`'s; safe on any thread.
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

}  // namespace layer::http
