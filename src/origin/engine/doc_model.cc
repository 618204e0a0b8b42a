#include "origin/engine/doc_model.h"

#include <cctype>
#include <cstdio>
#include <ctime>

namespace layer::origin {

std::string_view IdTypeName(IdType t) {
  switch (t) {
    case IdType::kUint:
      return "uint";
    case IdType::kString:
      return "string";
    case IdType::kUuid:
      return "uuid";
    case IdType::kUnset:
      break;
  }
  return "";
}

bool ParseRawId(const json::value& v, DocId* out) {
  if (v.is_uint64()) {
    *out = v.get_uint64();
    return true;
  }
  if (v.is_int64()) {
    if (v.get_int64() < 0) return false;
    *out = static_cast<uint64_t>(v.get_int64());
    return true;
  }
  if (v.is_string()) {
    *out = std::string(v.get_string());
    return true;
  }
  return false;
}

std::optional<std::string> ConformId(IdType ns_type, DocId* id) {
  bool is_uint = std::holds_alternative<uint64_t>(*id);
  switch (ns_type) {
    case IdType::kUnset:
      return std::nullopt;
    case IdType::kUint:
      if (is_uint) return std::nullopt;
      return "namespace ID type is uint, but you sent string; you are not allowed to mix ID types "
             "in the same namespace";
    case IdType::kString:
      if (!is_uint) return std::nullopt;
      return "namespace ID type is string, but you sent uint; you are not allowed to mix ID types "
             "in the same namespace";
    case IdType::kUuid: {
      if (is_uint) {
        return "namespace ID type is uuid, but you sent uint; you are not allowed to mix ID types "
               "in the same namespace";
      }
      auto canon = CanonicalUuid(std::get<std::string>(*id));
      if (!canon) return "namespace ID type is uuid, but a written ID could not be parsed as uuid";
      *id = *canon;
      return std::nullopt;
    }
  }
  return std::nullopt;
}

json::value IdToJson(const DocId& id) {
  if (const auto* u = std::get_if<uint64_t>(&id)) return json::value(*u);
  return json::value(std::get<std::string>(id));
}

std::string IdToDisplay(const DocId& id) {
  if (const auto* u = std::get_if<uint64_t>(&id)) return std::to_string(*u);
  return std::get<std::string>(id);
}

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

std::optional<int64_t> ParseDatetime(std::string_view s) {
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
        if (digits < 3) frac = frac * 10 + (s[p] - '0');
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
  int64_t days = DaysFromCivil(year, static_cast<unsigned>(month), static_cast<unsigned>(day));
  int64_t secs = days * 86400 + hour * 3600 + minute * 60 + second - offset_min * 60;
  return secs * 1000 + millis;
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

int KindRank(const json::value& v) {
  switch (v.kind()) {
    case json::kind::null:
      return 0;
    case json::kind::bool_:
      return 1;
    case json::kind::int64:
    case json::kind::uint64:
    case json::kind::double_:
      return 2;
    case json::kind::string:
      return 3;
    case json::kind::array:
      return 4;
    case json::kind::object:
      return 5;
  }
  return 6;
}

}  // namespace

std::string FormatDatetime(int64_t epoch_ms) { return FormatWith(epoch_ms, true); }
std::string FormatTimestamp(int64_t epoch_ms) { return FormatWith(epoch_ms, false); }

bool IsNumber(const json::value& v) { return v.is_int64() || v.is_uint64() || v.is_double(); }

double NumberAsDouble(const json::value& v) {
  if (v.is_int64()) return static_cast<double>(v.get_int64());
  if (v.is_uint64()) return static_cast<double>(v.get_uint64());
  if (v.is_double()) return v.get_double();
  return 0;
}

int CompareValues(const json::value& a, const json::value& b) {
  int ra = KindRank(a), rb = KindRank(b);
  if (ra != rb) return ra < rb ? -1 : 1;
  switch (a.kind()) {
    case json::kind::null:
      return 0;
    case json::kind::bool_:
      return static_cast<int>(a.get_bool()) - static_cast<int>(b.get_bool());
    case json::kind::int64:
    case json::kind::uint64:
    case json::kind::double_: {
      // Exact integer comparison where both are integers.
      if (!a.is_double() && !b.is_double()) {
        bool an = a.is_int64() && a.get_int64() < 0, bn = b.is_int64() && b.get_int64() < 0;
        if (an != bn) return an ? -1 : 1;
        if (an) {
          int64_t x = a.get_int64(), y = b.get_int64();
          return x < y ? -1 : (x > y ? 1 : 0);
        }
        uint64_t x = a.is_int64() ? static_cast<uint64_t>(a.get_int64()) : a.get_uint64();
        uint64_t y = b.is_int64() ? static_cast<uint64_t>(b.get_int64()) : b.get_uint64();
        return x < y ? -1 : (x > y ? 1 : 0);
      }
      double x = NumberAsDouble(a), y = NumberAsDouble(b);
      return x < y ? -1 : (x > y ? 1 : 0);
    }
    case json::kind::string: {
      int c = a.get_string().subview().compare(b.get_string().subview());
      return c < 0 ? -1 : (c > 0 ? 1 : 0);
    }
    case json::kind::array: {
      const auto& x = a.get_array();
      const auto& y = b.get_array();
      for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
        int c = CompareValues(x[i], y[i]);
        if (c != 0) return c;
      }
      return x.size() < y.size() ? -1 : (x.size() > y.size() ? 1 : 0);
    }
    case json::kind::object:
      return 0;
  }
  return 0;
}

}  // namespace layer::origin
