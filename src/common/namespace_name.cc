#include "common/namespace_name.h"

namespace layer {

NamespaceNameError CheckNamespaceName(std::string_view name) {
  if (name.empty() || name == "." || name == "..") return NamespaceNameError::kInvalidChars;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.';
    if (!ok) return NamespaceNameError::kInvalidChars;
  }
  if (name.size() > kMaxNamespaceNameLength) return NamespaceNameError::kTooLong;
  return NamespaceNameError::kNone;
}

std::string NamespaceNameErrorText(NamespaceNameError err, std::string_view name) {
  switch (err) {
    case NamespaceNameError::kNone:
      return {};
    case NamespaceNameError::kTooLong:
      return "Invalid URL: Namespace `" + std::string(name) +
             "` is too long, limit is currently 128 characters";
    case NamespaceNameError::kInvalidChars:
      break;
  }
  return "Invalid URL: Namespace contains invalid characters, must be [A-Za-z0-9-_.]";
}

}  // namespace layer
