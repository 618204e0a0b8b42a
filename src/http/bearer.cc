#include "http/bearer.h"

namespace layer::http {

std::optional<std::string_view> ParseBearer(std::string_view h) {
  constexpr std::string_view kPrefix = "bearer ";
  if (h.size() <= kPrefix.size()) return std::nullopt;
  for (size_t i = 0; i < kPrefix.size(); ++i) {
    char c = h[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != kPrefix[i]) return std::nullopt;
  }
  std::string_view token = h.substr(kPrefix.size());
  while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
  while (!token.empty() && token.back() == ' ') token.remove_suffix(1);
  if (token.empty()) return std::nullopt;
  for (char c : token) {
    if (c <= ' ' || c == 0x7f) return std::nullopt;
  }
  return token;
}

}  // namespace layer::http
