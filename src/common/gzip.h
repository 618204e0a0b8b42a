// gzip (RFC 1952) helpers over zlib, for Content-Encoding: gzip request and response bodies.
//
// Thread-safe; each call owns its zlib stream.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "common/status.h"

namespace layer {

// Decompresses a gzip stream (concatenated members are accepted). Fails with kInvalidArgument on
// malformed input or when the output would exceed `max_out` bytes (a decompression-bomb guard).
Result<std::string> GzipDecompress(std::string_view compressed, size_t max_out);

// Compresses into a single gzip member. `level` is zlib's 0..9 (or -1 for the default).
Result<std::string> GzipCompress(std::string_view data, int level = -1);

}  // namespace layer
