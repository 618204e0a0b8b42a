#include "common/json_text.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace layer {

namespace json = boost::json;
namespace {

// True if any of the 8 bytes of `w` is a control character, '"' or '\\' (SWAR: a byte's high
// bit is set in `(x - 0x01..) & ~x & 0x80..` exactly when that byte of x is zero, and in
// `(w - 0x20..) & ~w & 0x80..` when that byte of w is below 0x20).
inline bool NeedsEscape8(uint64_t w) {
  constexpr uint64_t kOnes = 0x0101010101010101ull;
  constexpr uint64_t kHigh = 0x8080808080808080ull;
  uint64_t quote = w ^ (kOnes * '"');
  uint64_t backslash = w ^ (kOnes * '\\');
  uint64_t t = ((w - kOnes * 0x20) & ~w) | ((quote - kOnes) & ~quote) |
               ((backslash - kOnes) & ~backslash);
  return (t & kHigh) != 0;
}

// Appends runs of characters that need no escaping in one go, skipping clean 8-byte words:
// rows are mostly plain text.
void AppendEscaped(std::string_view s, std::string* out) {
  out->push_back('"');
  size_t run = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    while (i + 8 <= s.size()) {
      uint64_t w;
      std::memcpy(&w, s.data() + i, 8);
      if (NeedsEscape8(w)) break;
      i += 8;
    }
    if (i >= s.size()) break;
    auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out->append(s.data() + run, i - run);
    run = i + 1;
    switch (c) {
      case '"':
        *out += "\\\"";
        break;
      case '\\':
        *out += "\\\\";
        break;
      case '\n':
        *out += "\\n";
        break;
      case '\r':
        *out += "\\r";
        break;
      case '\t':
        *out += "\\t";
        break;
      case '\b':
        *out += "\\b";
        break;
      case '\f':
        *out += "\\f";
        break;
      default: {
        char buf[8];
        std::snprintf(buf, sizeof(buf), "\\u%04x", c);
        *out += buf;
      }
    }
  }
  out->append(s.data() + run, s.size() - run);
  out->push_back('"');
}

template <typename Int>
void AppendInt(Int v, std::string* out) {
  char buf[24];
  auto res = std::to_chars(buf, buf + sizeof(buf), v);
  out->append(buf, res.ptr);
}

}  // namespace

void AppendDouble(double d, std::string* out) {
  if (!std::isfinite(d)) {
    *out += "null";
    return;
  }
  if (std::signbit(d)) out->push_back('-');
  if (d == 0) {
    *out += "0.0";
    return;
  }
  // The shortest round-trip digits (libstdc++ computes them with Ryu, as serde_json does), laid
  // out as Ryu's Rust printer lays them out: with digits d (n of them) and 10^(kk-1) <= |d| <
  // 10^kk, plain decimals while -5 < kk <= 16, else d.ddde<kk-1>.
  char buf[64];
  const double magnitude = std::fabs(d);
  if (magnitude >= 1e-5 && magnitude < 1e16) {
    // Plain decimals; std::to_chars writes them so when they are the shorter form.
    auto res = std::to_chars(buf, buf + sizeof(buf), magnitude);
    std::string_view text(buf, static_cast<size_t>(res.ptr - buf));
    if (text.find('e') == std::string_view::npos) {
      out->append(text);
      if (text.find('.') == std::string_view::npos) *out += ".0";
      return;
    }
  }
  auto res = std::to_chars(buf, buf + sizeof(buf), magnitude, std::chars_format::scientific);
  std::string_view sci(buf, static_cast<size_t>(res.ptr - buf));  // "d.ddde+XX" or "de-XX"
  const size_t e = sci.find('e');
  char digits[24];
  size_t n = 0;
  for (char c : sci.substr(0, e)) {
    if (c != '.') digits[n++] = c;
  }
  int exp10 = 0;
  std::string_view exp_text = sci.substr(e + 1);
  if (exp_text.front() == '+') exp_text.remove_prefix(1);
  std::from_chars(exp_text.data(), exp_text.data() + exp_text.size(), exp10);
  const int len = static_cast<int>(n);
  const int kk = exp10 + 1;
  const std::string_view all(digits, n);
  if (kk >= len && kk <= 16) {  // 1234e7 -> 12340000000.0
    out->append(all);
    out->append(static_cast<size_t>(kk - len), '0');
    *out += ".0";
  } else if (kk > 0 && kk <= 16) {  // 1234e-2 -> 12.34
    out->append(all.substr(0, static_cast<size_t>(kk)));
    out->push_back('.');
    out->append(all.substr(static_cast<size_t>(kk)));
  } else if (kk > -5 && kk <= 0) {  // 1234e-6 -> 0.001234
    *out += "0.";
    out->append(static_cast<size_t>(-kk), '0');
    out->append(all);
  } else {  // 1e30, 1234e30 -> 1.234e33
    out->push_back(digits[0]);
    if (len > 1) {
      out->push_back('.');
      out->append(all.substr(1));
    }
    out->push_back('e');
    AppendInt(kk - 1, out);
  }
}

std::string FormatDouble(double d) {
  std::string s;
  AppendDouble(d, &s);
  return s;
}

void AppendJsonString(std::string_view s, std::string* out) { AppendEscaped(s, out); }
void AppendJsonUint(uint64_t v, std::string* out) { AppendInt(v, out); }

double F32AsPrintableDouble(float f) {
  if (!std::isfinite(f)) return static_cast<double>(f);
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof(buf), f);
  *res.ptr = '\0';
  return std::strtod(buf, nullptr);
}

void AppendJson(const json::value& v, std::string* out) {
  switch (v.kind()) {
    case json::kind::null:
      *out += "null";
      break;
    case json::kind::bool_:
      *out += v.get_bool() ? "true" : "false";
      break;
    case json::kind::int64:
      AppendInt(v.get_int64(), out);
      break;
    case json::kind::uint64:
      AppendInt(v.get_uint64(), out);
      break;
    case json::kind::double_:
      AppendDouble(v.get_double(), out);
      break;
    case json::kind::string:
      AppendEscaped(v.get_string(), out);
      break;
    case json::kind::array: {
      out->push_back('[');
      bool first = true;
      for (const auto& e : v.get_array()) {
        if (!first) out->push_back(',');
        first = false;
        AppendJson(e, out);
      }
      out->push_back(']');
      break;
    }
    case json::kind::object: {
      out->push_back('{');
      bool first = true;
      for (const auto& kv : v.get_object()) {
        if (!first) out->push_back(',');
        first = false;
        AppendEscaped(kv.key(), out);
        out->push_back(':');
        AppendJson(kv.value(), out);
      }
      out->push_back('}');
      break;
    }
  }
}

std::string SerializeJson(const json::value& v) {
  std::string out;
  AppendJson(v, &out);
  return out;
}

namespace {

// The number literals of JSON text in document order; strings (keys included) are skipped.
class NumberLiterals {
 public:
  explicit NumberLiterals(std::string_view text) : text_(text) {}

  bool Next(std::string_view* literal) {
    while (pos_ < text_.size()) {
      const char c = text_[pos_];
      if (c == '"') {
        SkipString();
        continue;
      }
      if (c == '-' || (c >= '0' && c <= '9')) {
        const size_t start = pos_;
        while (pos_ < text_.size() && IsNumberChar(text_[pos_])) ++pos_;
        *literal = text_.substr(start, pos_ - start);
        return true;
      }
      ++pos_;
    }
    return false;
  }

 private:
  static bool IsNumberChar(char c) {
    return (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E';
  }
  void SkipString() {
    ++pos_;  // the opening quote
    while (true) {
      pos_ = text_.find_first_of("\"\\", pos_);
      if (pos_ == std::string_view::npos) {
        pos_ = text_.size();
        return;
      }
      if (text_[pos_] == '"') {
        ++pos_;
        return;
      }
      pos_ += 2;  // an escape
    }
  }

  std::string_view text_;
  size_t pos_ = 0;
};

bool IsIntegerLiteral(std::string_view lit) {
  return lit.find_first_of(".eE") == std::string_view::npos;
}

// Whether Boost.JSON reads `lit` exactly already: at most 15 significant digits, and a power of
// ten within ±22 once they are taken as an integer. Both are then exact doubles and one correctly
// rounded product or quotient is the nearest double (Clinger's fast path), which is how Boost.JSON
// reads them (JsonText.BoostReadsShortLiteralsExactly checks it). Most literals are such, and
// cost no second reading.
bool ReadExactlyAlready(std::string_view lit) {
  int digits = 0, fraction = 0;
  bool significant = false, after_point = false;
  size_t i = lit.size() > 0 && lit[0] == '-' ? 1 : 0;
  for (; i < lit.size(); ++i) {
    const char c = lit[i];
    if (c == '.') {
      after_point = true;
    } else if (c >= '0' && c <= '9') {
      significant = significant || c != '0';
      if (significant && ++digits > 15) return false;
      if (after_point) ++fraction;
    } else {
      break;  // the exponent
    }
  }
  int exponent = 0;
  if (i < lit.size()) {
    ++i;
    const bool negative = i < lit.size() && lit[i] == '-';
    if (i < lit.size() && (lit[i] == '-' || lit[i] == '+')) ++i;
    for (; i < lit.size(); ++i) {
      if (exponent > 1000) return false;
      exponent = exponent * 10 + (lit[i] - '0');
    }
    if (negative) exponent = -exponent;
  }
  const int power = exponent - fraction;
  return digits == 0 || (power >= -22 && power <= 22);
}

// The exact value of a floating-point literal; false when it has none (beyond the range of a
// double, where Boost.JSON's reading stays).
bool ExactDouble(std::string_view lit, double* out) {
  auto res = std::from_chars(lit.data(), lit.data() + lit.size(), *out);
  return res.ec == std::errc() && res.ptr == lit.data() + lit.size();
}

// Walks `v` in document order beside the literals, setting every double whose literal Boost.JSON
// may have misread to the literal's exact value. False when a number does not line up with its
// literal: an integer with another literal, a double further than a few ulps from it, or too few
// or too many literals.
bool Walk(json::value& v, NumberLiterals& lits) {
  switch (v.kind()) {
    case json::kind::int64:
    case json::kind::uint64: {
      std::string_view lit;
      if (!lits.Next(&lit) || !IsIntegerLiteral(lit)) return false;
      if (v.is_int64()) {
        int64_t n = 0;
        auto res = std::from_chars(lit.data(), lit.data() + lit.size(), n);
        return res.ec == std::errc() && n == v.get_int64();
      }
      uint64_t n = 0;
      auto res = std::from_chars(lit.data(), lit.data() + lit.size(), n);
      return res.ec == std::errc() && n == v.get_uint64();
    }
    case json::kind::double_: {
      std::string_view lit;
      if (!lits.Next(&lit)) return false;
      if (ReadExactlyAlready(lit)) return true;
      double exact;
      if (!ExactDouble(lit, &exact)) return true;  // out of range: as read
      const double read = v.get_double();
      if (exact == read) return true;
      if (std::fabs(exact - read) > std::fabs(exact) * 1e-14) return false;
      v = exact;
      return true;
    }
    case json::kind::array:
      for (auto& e : v.get_array()) {
        if (!Walk(e, lits)) return false;
      }
      return true;
    case json::kind::object:
      for (auto& kv : v.get_object()) {
        if (!Walk(kv.value(), lits)) return false;
      }
      return true;
    default:
      return true;
  }
}

}  // namespace

bool RestoreExactDoubles(std::string_view text, json::value* v) {
  NumberLiterals lits(text);
  std::string_view extra;
  return Walk(*v, lits) && !lits.Next(&extra);
}

json::value ParseJson(std::string_view text, boost::system::error_code& ec) {
  json::value v = json::parse(text, ec);
  if (!ec && !RestoreExactDoubles(text, &v)) v = json::parse(text, ec);  // as Boost.JSON read it
  return v;
}

}  // namespace layer
