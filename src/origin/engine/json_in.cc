#include "origin/engine/json_in.h"

#include <charconv>
#include <vector>

namespace layer::origin {
namespace {

// Number literals of `text` in document order (strings skipped).
std::vector<std::string_view> NumberLiterals(std::string_view text) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < text.size()) {
    char c = text[i];
    if (c == '"') {
      ++i;
      while (i < text.size() && text[i] != '"') i += text[i] == '\\' ? 2 : 1;
      ++i;
      continue;
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
      size_t start = i;
      while (i < text.size() &&
             (text[i] == '-' || text[i] == '+' || text[i] == '.' || text[i] == 'e' ||
              text[i] == 'E' || (text[i] >= '0' && text[i] <= '9'))) {
        ++i;
      }
      out.push_back(text.substr(start, i - start));
      continue;
    }
    ++i;
  }
  return out;
}

size_t CountNumbers(const boost::json::value& v) {
  switch (v.kind()) {
    case boost::json::kind::int64:
    case boost::json::kind::uint64:
    case boost::json::kind::double_:
      return 1;
    case boost::json::kind::array: {
      size_t n = 0;
      for (const auto& e : v.get_array()) n += CountNumbers(e);
      return n;
    }
    case boost::json::kind::object: {
      size_t n = 0;
      for (const auto& kv : v.get_object()) n += CountNumbers(kv.value());
      return n;
    }
    default:
      return 0;
  }
}

bool Walk(boost::json::value& v, const std::vector<std::string_view>& lits, size_t* next) {
  switch (v.kind()) {
    case boost::json::kind::int64:
    case boost::json::kind::uint64:
      if (*next >= lits.size()) return false;
      ++*next;
      return true;
    case boost::json::kind::double_: {
      if (*next >= lits.size()) return false;
      std::string_view lit = lits[(*next)++];
      double d = 0;
      auto res = std::from_chars(lit.data(), lit.data() + lit.size(), d);
      if (res.ec == std::errc() && res.ptr == lit.data() + lit.size()) v = d;
      return true;
    }
    case boost::json::kind::array:
      for (auto& e : v.get_array()) {
        if (!Walk(e, lits, next)) return false;
      }
      return true;
    case boost::json::kind::object:
      for (auto& kv : v.get_object()) {
        if (!Walk(kv.value(), lits, next)) return false;
      }
      return true;
    default:
      return true;
  }
}

}  // namespace

bool RestoreExactDoubles(std::string_view text, boost::json::value* v) {
  std::vector<std::string_view> lits = NumberLiterals(text);
  if (CountNumbers(*v) != lits.size()) return false;
  size_t next = 0;
  return Walk(*v, lits, &next);
}

}  // namespace layer::origin
