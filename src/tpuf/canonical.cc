#include "tpuf/canonical.h"

#include <boost/json.hpp>

#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>

#include "common/base64.h"
#include "common/json_text.h"

namespace layer::tpuf {

std::optional<std::string> CanonicalUuid(std::string_view text) {
  std::string_view s = text;
  if (s.size() >= 9 && (s.substr(0, 9) == "urn:uuid:" || s.substr(0, 9) == "URN:UUID:")) {
    s.remove_prefix(9);
  } else if (s.size() >= 2 && s.front() == '{' && s.back() == '}') {
    s = s.substr(1, s.size() - 2);
  }
  std::string hex;
  if (s.size() == 32) {
    hex = std::string(s);
  } else if (s.size() == 36) {
    for (size_t i = 0; i < s.size(); ++i) {
      bool dash_pos = i == 8 || i == 13 || i == 18 || i == 23;
      if (dash_pos) {
        if (s[i] != '-') return std::nullopt;
      } else {
        hex += s[i];
      }
    }
  } else {
    return std::nullopt;
  }
  for (char& c : hex) {
    if (!std::isxdigit(static_cast<unsigned char>(c))) return std::nullopt;
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return hex.substr(0, 8) + "-" + hex.substr(8, 4) + "-" + hex.substr(12, 4) + "-" +
         hex.substr(16, 4) + "-" + hex.substr(20, 12);
}

namespace {

int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

void CivilFromDays(int64_t z, int64_t* y, unsigned* m, unsigned* d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t yy = static_cast<int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  *d = doy - (153 * mp + 2) / 5 + 1;
  *m = mp < 10 ? mp + 3 : mp - 9;
  *y = yy + (*m <= 2);
}

bool ReadDigits(std::string_view s, size_t* pos, size_t n, int* out) {
  if (*pos + n > s.size()) return false;
  int v = 0;
  for (size_t i = 0; i < n; ++i) {
    char c = s[*pos + i];
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  *pos += n;
  *out = v;
  return true;
}

}  // namespace

namespace {

// What ParseDatetime reads, and what it leaves out of the instant.
struct ParsedDatetime {
  int64_t epoch_ms = 0;
  int year = 0, month = 0, day = 0;
  bool sub_ms_digits = false;  // a non-zero digit below the millisecond was dropped
  bool leap_second = false;    // second 60
};

int DaysInMonth(int year, int month) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  return month == 2 && leap ? 29 : kDays[month - 1];
}

std::optional<ParsedDatetime> ParseDatetimeParts(std::string_view s) {
  ParsedDatetime out;
  size_t p = 0;
  int year, month, day;
  if (!ReadDigits(s, &p, 4, &year) || p >= s.size() || s[p++] != '-' ||
      !ReadDigits(s, &p, 2, &month) || p >= s.size() || s[p++] != '-' ||
      !ReadDigits(s, &p, 2, &day)) {
    return std::nullopt;
  }
  if (month < 1 || month > 12 || day < 1 || day > 31) return std::nullopt;
  int hour = 0, minute = 0, second = 0;
  int64_t millis = 0;
  int64_t offset_min = 0;
  if (p < s.size()) {
    if (s[p] != 'T' && s[p] != 't' && s[p] != ' ') return std::nullopt;
    ++p;
    if (!ReadDigits(s, &p, 2, &hour) || p >= s.size() || s[p++] != ':' ||
        !ReadDigits(s, &p, 2, &minute)) {
      return std::nullopt;
    }
    if (p < s.size() && s[p] == ':') {
      ++p;
      if (!ReadDigits(s, &p, 2, &second)) return std::nullopt;
    }
    if (p < s.size() && (s[p] == '.' || s[p] == ',')) {
      ++p;
      int digits = 0;
      int64_t frac = 0;
      while (p < s.size() && std::isdigit(static_cast<unsigned char>(s[p]))) {
        if (digits < 3) {
          frac = frac * 10 + (s[p] - '0');
        } else if (s[p] != '0') {
          out.sub_ms_digits = true;
        }
        ++digits;
        ++p;
      }
      if (digits == 0) return std::nullopt;
      for (int i = digits; i < 3; ++i) frac *= 10;
      millis = frac;
    }
    if (p < s.size()) {
      if (s[p] == 'Z' || s[p] == 'z') {
        ++p;
      } else if (s[p] == '+' || s[p] == '-') {
        int sign = s[p] == '-' ? -1 : 1;
        ++p;
        int oh, om = 0;
        if (!ReadDigits(s, &p, 2, &oh)) return std::nullopt;
        if (p < s.size() && s[p] == ':') ++p;
        if (p < s.size() && !ReadDigits(s, &p, 2, &om)) return std::nullopt;
        offset_min = sign * (oh * 60 + om);
      } else {
        return std::nullopt;
      }
    }
    if (p != s.size()) return std::nullopt;
  }
  if (hour > 23 || minute > 59 || second > 60) return std::nullopt;
  out.leap_second = second == 60;
  int64_t days = DaysFromCivil(year, static_cast<unsigned>(month), static_cast<unsigned>(day));
  int64_t secs = days * 86400 + hour * 3600 + minute * 60 + second - offset_min * 60;
  out.epoch_ms = secs * 1000 + millis;
  out.year = year;
  out.month = month;
  out.day = day;
  return out;
}

}  // namespace

std::optional<int64_t> ParseDatetime(std::string_view s) {
  auto parsed = ParseDatetimeParts(s);
  if (!parsed) return std::nullopt;
  return parsed->epoch_ms;
}

namespace {

std::string FormatWith(int64_t epoch_ms, bool nanos) {
  int64_t secs = epoch_ms >= 0 ? epoch_ms / 1000 : -((-epoch_ms + 999) / 1000);
  int64_t ms = epoch_ms - secs * 1000;
  int64_t days = secs >= 0 ? secs / 86400 : -((-secs + 86399) / 86400);
  int64_t rem = secs - days * 86400;
  int64_t y;
  unsigned m, d;
  CivilFromDays(days, &y, &m, &d);
  char buf[64];
  if (nanos) {
    std::snprintf(buf, sizeof(buf), "%04lld-%02u-%02uT%02d:%02d:%02d.%03lld000000Z",
                  static_cast<long long>(y), m, d, static_cast<int>(rem / 3600),
                  static_cast<int>(rem % 3600 / 60), static_cast<int>(rem % 60),
                  static_cast<long long>(ms));
  } else {
    std::snprintf(buf, sizeof(buf), "%04lld-%02u-%02uT%02d:%02d:%02dZ", static_cast<long long>(y),
                  m, d, static_cast<int>(rem / 3600), static_cast<int>(rem % 3600 / 60),
                  static_cast<int>(rem % 60));
  }
  return buf;
}

}  // namespace

std::string FormatDatetime(int64_t epoch_ms) { return FormatWith(epoch_ms, true); }
std::string FormatTimestamp(int64_t epoch_ms) { return FormatWith(epoch_ms, false); }

std::optional<std::string> CanonicalDatetime(std::string_view text) {
  auto parsed = ParseDatetimeParts(text);
  if (!parsed || parsed->sub_ms_digits || parsed->leap_second) return std::nullopt;
  if (parsed->day > DaysInMonth(parsed->year, parsed->month)) return std::nullopt;
  // An offset may carry the instant out of the years FormatDatetime prints in four digits.
  static const int64_t kFirst = DaysFromCivil(0, 1, 1) * 86'400'000;
  static const int64_t kEnd = DaysFromCivil(10000, 1, 1) * 86'400'000;
  if (parsed->epoch_ms < kFirst || parsed->epoch_ms >= kEnd) return std::nullopt;
  return FormatDatetime(parsed->epoch_ms);
}

// ---- Attribute types and the form of values ----

namespace json = boost::json;
using Kind = AttributeType::Kind;

AttributeType ParseAttributeType(std::string_view name) {
  AttributeType t;
  if (name.size() > 2 && name[0] == '[' && name[1] != ']') {
    size_t close = name.find(']');
    if (close == std::string_view::npos || name.substr(close + 1) != "f32") return t;
    std::string_view num = name.substr(1, close - 1);
    uint32_t dims = 0;
    auto res = std::from_chars(num.data(), num.data() + num.size(), dims);
    if (res.ec != std::errc() || res.ptr != num.data() + num.size() || dims == 0) return t;
    t.kind = Kind::kVectorF32;
    t.dims = dims;
    return t;
  }
  if (name.starts_with("[]")) {
    t.array = true;
    name.remove_prefix(2);
  }
  static constexpr std::pair<std::string_view, Kind> kScalars[] = {
      {"string", Kind::kString}, {"int", Kind::kInt},   {"uint", Kind::kUint},
      {"float", Kind::kFloat},   {"bool", Kind::kBool}, {"datetime", Kind::kDatetime},
      {"uuid", Kind::kUuid}};
  for (const auto& [n, kind] : kScalars) {
    if (name == n) {
      t.kind = kind;
      return t;
    }
  }
  return AttributeType{};  // kOther, not an array of it
}

AttributeTypes AttributeTypesOfSchema(const json::value& schema) {
  AttributeTypes out;
  if (!schema.is_object()) return out;
  for (const auto& [name, entry] : schema.get_object()) {
    if (name == "id") continue;
    const json::value* type = &entry;
    if (entry.is_object()) type = entry.get_object().if_contains("type");
    if (type == nullptr || !type->is_string()) continue;
    out.emplace(std::string(name), ParseAttributeType(type->get_string()));
  }
  return out;
}

namespace {

ValueForm Scalar(Kind kind, const json::value& v, json::value* out) {
  switch (kind) {
    case Kind::kString:
      return v.is_string() ? ValueForm::kCanonical : ValueForm::kUnknown;
    case Kind::kBool:
      return v.is_bool() ? ValueForm::kCanonical : ValueForm::kUnknown;
    case Kind::kUint:
      return v.is_uint64() || (v.is_int64() && v.get_int64() >= 0) ? ValueForm::kCanonical
                                                                   : ValueForm::kUnknown;
    case Kind::kInt: {
      if (v.is_int64()) return ValueForm::kCanonical;  // the parser keeps > i64 max as uint64
      if (!v.is_double()) return ValueForm::kUnknown;
      const double d = v.get_double();
      // [-2^63, 2^63): every integral double in it converts exactly.
      if (std::trunc(d) != d || d < -9223372036854775808.0 || d >= 9223372036854775808.0) {
        return ValueForm::kUnknown;
      }
      *out = static_cast<int64_t>(d);
      return ValueForm::kRewritten;
    }
    case Kind::kFloat:
      // The parser reads a literal past f64 (1e400) as an infinity, which JSON cannot carry.
      if (v.is_double()) {
        return std::isfinite(v.get_double()) ? ValueForm::kCanonical : ValueForm::kUnknown;
      }
      if (v.is_int64()) {
        *out = static_cast<double>(v.get_int64());
        return ValueForm::kRewritten;
      }
      if (v.is_uint64()) {
        *out = static_cast<double>(v.get_uint64());
        return ValueForm::kRewritten;
      }
      return ValueForm::kUnknown;
    case Kind::kDatetime: {
      if (!v.is_string()) return ValueForm::kUnknown;
      auto canonical = CanonicalDatetime(v.get_string());
      if (!canonical) return ValueForm::kUnknown;
      if (*canonical == std::string_view(v.get_string())) return ValueForm::kCanonical;
      *out = json::string(*canonical);
      return ValueForm::kRewritten;
    }
    case Kind::kUuid: {
      if (!v.is_string()) return ValueForm::kUnknown;
      auto canonical = CanonicalUuid(v.get_string());
      if (!canonical) return ValueForm::kUnknown;
      if (*canonical == std::string_view(v.get_string())) return ValueForm::kCanonical;
      *out = json::string(*canonical);
      return ValueForm::kRewritten;
    }
    case Kind::kVectorF32:
    case Kind::kOther:
      return ValueForm::kUnknown;
  }
  return ValueForm::kUnknown;
}

ValueForm Array(Kind kind, const json::array& in, json::value* out) {
  json::array rewritten;  // allocated at the first element that needs rewriting
  bool any = false;
  for (size_t i = 0; i < in.size(); ++i) {
    json::value element;
    ValueForm form = Scalar(kind, in[i], &element);
    if (form == ValueForm::kUnknown) return ValueForm::kUnknown;
    if (form == ValueForm::kRewritten && !any) {
      any = true;
      rewritten.reserve(in.size());
      for (size_t j = 0; j < i; ++j) rewritten.push_back(in[j]);
    }
    if (any) rewritten.push_back(form == ValueForm::kRewritten ? std::move(element) : in[i]);
  }
  if (!any) return ValueForm::kCanonical;
  *out = std::move(rewritten);
  return ValueForm::kRewritten;
}

// The f32 value of `f` as a JSON number that prints in shortest f32 form; false if not finite.
bool F32Value(float f, double* out) {
  if (!std::isfinite(f)) return false;
  *out = F32AsPrintableDouble(f);
  return true;
}

// The same for a number written as a double: false beyond the f32 range (a cast there is
// undefined; Turbopuffer would refuse or overflow it).
bool F32Value(double d, double* out) {
  if (!(std::fabs(d) <= std::numeric_limits<float>::max())) return false;
  return F32Value(static_cast<float>(d), out);
}

ValueForm VectorF32(uint32_t dims, const json::value& v, json::value* out) {
  json::array floats;
  if (v.is_string()) {
    auto bytes = Base64Decode(std::string_view(v.get_string()));
    if (!bytes.ok() || bytes->size() != size_t{dims} * 4) return ValueForm::kUnknown;
    floats.reserve(dims);
    for (size_t i = 0; i < dims; ++i) {
      float f;
      std::memcpy(&f, bytes->data() + 4 * i, 4);  // little-endian, as this host
      double d;
      if (!F32Value(f, &d)) return ValueForm::kUnknown;
      floats.push_back(d);
    }
    *out = std::move(floats);
    return ValueForm::kRewritten;
  }
  if (!v.is_array() || v.get_array().size() != dims) return ValueForm::kUnknown;
  const json::array& in = v.get_array();
  bool canonical = true;
  for (const json::value& e : in) {
    if (!e.is_number()) return ValueForm::kUnknown;
    double d;
    if (!F32Value(e.to_number<double>(), &d)) return ValueForm::kUnknown;
    if (canonical && e.is_double()) {
      const double written = e.get_double();
      canonical = std::memcmp(&d, &written, sizeof d) == 0;  // -0.0 is not 0.0
    } else {
      canonical = false;
    }
  }
  if (canonical) return ValueForm::kCanonical;
  floats.reserve(dims);
  for (const json::value& e : in) {
    double d = 0;
    (void)F32Value(e.to_number<double>(), &d);  // in range: checked above
    floats.push_back(d);
  }
  *out = std::move(floats);
  return ValueForm::kRewritten;
}

}  // namespace

ValueForm CanonicalValue(const AttributeType& type, const json::value& value, json::value* out) {
  if (type.kind == Kind::kVectorF32) return VectorF32(type.dims, value, out);
  if (!type.array) return Scalar(type.kind, value, out);
  if (!value.is_array()) return ValueForm::kUnknown;
  return Array(type.kind, value.get_array(), out);
}

bool FormIndependentOfType(const json::value& value) {
  return value.is_bool() || (value.is_array() && value.get_array().empty());
}

}  // namespace layer::tpuf
