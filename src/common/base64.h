// Standard (RFC 4648 §4) base64, as Turbopuffer uses it for f32 vectors and listing cursors.
//
// Thread-safe, allocation only for the returned string.
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"

namespace layer {

// Encodes with '=' padding.
std::string Base64Encode(std::string_view bytes);

// Encodes without '=' padding (the form of Turbopuffer's namespace-list cursors).
std::string Base64EncodeUnpadded(std::string_view bytes);

// Decodes the standard alphabet, padded or unpadded. Rejects any other character, including
// whitespace and the URL-safe alphabet, with kInvalidArgument.
Result<std::string> Base64Decode(std::string_view text);

}  // namespace layer
