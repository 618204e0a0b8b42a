// Namespace-name validation shared by the gateway and the local origin, so both reject exactly
// the same names with exactly the same answer.
//
// Turbopuffer accepts names matching [A-Za-z0-9_.-]{1,128}. Layer additionally refuses the path
// segments "." and "..", which are valid characters but would let a crafted path name another
// resource once an HTTP client or proxy normalises it.
#pragma once

#include <string>
#include <string_view>

namespace layer {

enum class NamespaceNameError { kNone, kInvalidChars, kTooLong };

inline constexpr std::size_t kMaxNamespaceNameLength = 128;

// Classifies an already percent-decoded namespace name.
NamespaceNameError CheckNamespaceName(std::string_view name);

// The plain-text body Turbopuffer answers (with status 400) for an invalid name in a URL.
std::string NamespaceNameErrorText(NamespaceNameError err, std::string_view name);

}  // namespace layer
