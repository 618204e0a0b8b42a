// The bearer token of an `Authorization` header, shared by every server that checks keys: the
// gateway (docs/design.md §9.6) and the local origin (docs/origin.md "API keys").
#pragma once

#include <optional>
#include <string_view>

namespace layer::http {

// The token of a well-formed "Bearer <token>" header (scheme case-insensitive, surrounding spaces
// trimmed), or nullopt for an absent, empty or other-scheme header or a token with inner spaces
// or control characters. The view points into `header`.
std::optional<std::string_view> ParseBearer(std::string_view header);

}  // namespace layer::http
