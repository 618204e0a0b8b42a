// URL helpers shared by every route table: percent-decoding and query parameters.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace layer {

// The value of a hexadecimal digit (either case), or -1 for any other character.
int HexDigitValue(char c);

// Percent-decodes `in`; returns false on a malformed escape.
bool PercentDecode(std::string_view in, std::string* out);

// The percent-decoded value of the first parameter whose percent-decoded name is `name`, or
// nullopt when absent. A value with a malformed escape is returned as sent (so it fails any
// validation rather than reading as absent).
std::optional<std::string> QueryParam(std::string_view query, std::string_view name);

}  // namespace layer
