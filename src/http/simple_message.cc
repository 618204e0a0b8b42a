#include "http/simple_message.h"

#include <boost/beast/core/string.hpp>

#include <array>
#include <cstdint>
#include <cstring>

namespace layer::http {

namespace {

// tchar of RFC 9110: the bytes of a method or a field name.
constexpr std::array<bool, 256> MakeTchar() {
  std::array<bool, 256> t{};
  for (int c = '0'; c <= '9'; ++c) t[c] = true;
  for (int c = 'a'; c <= 'z'; ++c) t[c] = true;
  for (int c = 'A'; c <= 'Z'; ++c) t[c] = true;
  for (char c : std::string_view("!#$%&'*+-.^_`|~")) t[static_cast<unsigned char>(c)] = true;
  return t;
}
constexpr std::array<bool, 256> kTchar = MakeTchar();

bool IsVisible(unsigned char c) { return c >= 0x21 && c <= 0x7e; }
bool IsBlank(char c) { return c == ' ' || c == '\t'; }

// Whether [p, end) holds only field-value bytes this parser takes: 0x21-0x7e, space and tab.
// Eight bytes at a time: a word passes when none of its bytes is below 0x20, 0x7f or above.
bool ValueBytes(const char* p, const char* end) {
  constexpr uint64_t kOnes = 0x0101010101010101ull;
  constexpr uint64_t kHigh = 0x8080808080808080ull;
  while (end - p >= 8) {
    uint64_t x;
    std::memcpy(&x, p, 8);
    const uint64_t below_space = (x - kOnes * 0x20) & ~x & kHigh;
    const uint64_t del = ((x ^ (kOnes * 0x7f)) - kOnes) & ~(x ^ (kOnes * 0x7f)) & kHigh;
    if ((below_space | del | (x & kHigh)) != 0) {  // a tab, or a byte refused below
      for (int i = 0; i < 8; ++i) {
        const unsigned char c = static_cast<unsigned char>(p[i]);
        if (!IsVisible(c) && c != ' ' && c != '\t') return false;
      }
    }
    p += 8;
  }
  for (; p < end; ++p) {
    const unsigned char c = static_cast<unsigned char>(*p);
    if (!IsVisible(c) && c != ' ' && c != '\t') return false;
  }
  return true;
}

// Whether the field name `name` (tchars only, as ParseFields takes them) is `lower` in any case.
// `lower` holds only lower-case letters and '-': a tchar with the 0x20 bit set is then equal to
// a byte of `lower` exactly when it is that byte or its capital. Eight bytes at a time.
bool NameIs(std::string_view name, std::string_view lower) {
  if (name.size() != lower.size()) return false;
  constexpr uint64_t kCase = 0x2020202020202020ull;
  size_t i = 0;
  for (; i + 8 <= name.size(); i += 8) {
    uint64_t a, b;
    std::memcpy(&a, name.data() + i, 8);
    std::memcpy(&b, lower.data() + i, 8);
    if ((a | kCase) != b) return false;
  }
  for (; i < name.size(); ++i) {
    if ((name[i] | 0x20) != lower[i]) return false;
  }
  return true;
}

// The field of `name`, as bhttp::string_to_field gives it: the names most requests and answers
// carry are told apart by their length and compared once; any other name is Beast's lookup.
Field FieldOf(std::string_view name) {
  switch (name.size()) {
    case 4:
      if (NameIs(name, "host")) return Field::host;
      if (NameIs(name, "date")) return Field::date;
      break;
    case 6:
      if (NameIs(name, "accept")) return Field::accept;
      if (NameIs(name, "server")) return Field::server;
      break;
    case 10:
      if (NameIs(name, "connection")) return Field::connection;
      if (NameIs(name, "user-agent")) return Field::user_agent;
      break;
    case 12:
      if (NameIs(name, "content-type")) return Field::content_type;
      break;
    case 13:
      if (NameIs(name, "authorization")) return Field::authorization;
      break;
    case 14:
      if (NameIs(name, "content-length")) return Field::content_length;
      break;
    case 15:
      if (NameIs(name, "accept-encoding")) return Field::accept_encoding;
      break;
    case 16:
      if (NameIs(name, "content-encoding")) return Field::content_encoding;
      break;
    default:
      break;
  }
  return bhttp::string_to_field(name);
}

// A Content-Length of 1-18 digits (no overflow to check).
bool ParseLength(std::string_view v, uint64_t* out) {
  if (v.empty() || v.size() > 18) return false;
  uint64_t n = 0;
  for (char c : v) {
    if (c < '0' || c > '9') return false;
    n = n * 10 + static_cast<uint64_t>(c - '0');
  }
  *out = n;
  return true;
}

// The field lines from `p` up to and including the empty line, inserted into `out` in order;
// `p` ends past the empty line, `has_length` tells whether a Content-Length came and `length` holds
// it (0 without one). False when
// any line is not a plain field line (see the header) or the head grows past `max_head_bytes`.
template <typename Message>
bool ParseFields(const char* begin, const char* end, size_t max_head_bytes, const char*& p,
                 bool& has_length, uint64_t& length, Message& out) {
  has_length = false;
  length = 0;
  for (;;) {
    if (static_cast<size_t>(p - begin) > max_head_bytes) return false;
    if (end - p < 2) return false;
    if (p[0] == '\r') {
      if (p[1] != '\n') return false;
      p += 2;
      return static_cast<size_t>(p - begin) <= max_head_bytes;
    }
    const char* n = p;
    while (p < end && kTchar[static_cast<unsigned char>(*p)]) ++p;
    if (p == n || p == end || *p != ':') return false;
    const std::string_view name(n, static_cast<size_t>(p - n));
    ++p;
    while (p < end && IsBlank(*p)) ++p;
    const char* v = p;
    const char* cr = static_cast<const char*>(std::memchr(p, '\r', static_cast<size_t>(end - p)));
    if (!cr || end - cr < 2 || cr[1] != '\n' || !ValueBytes(v, cr)) return false;
    const char* last = cr;  // one past the last visible byte of the value
    while (last > v && IsBlank(last[-1])) --last;
    p = cr + 2;
    const std::string_view value(v, static_cast<size_t>(last - v));
    const Field id = FieldOf(name);
    switch (id) {
      case Field::content_length:
        if (has_length || !ParseLength(value, &length)) return false;
        has_length = true;
        break;
      case Field::transfer_encoding:
      case Field::upgrade:
        return false;
      case Field::connection:
      case Field::proxy_connection:
        if (!boost::beast::iequals(value, "keep-alive") && !boost::beast::iequals(value, "close")) {
          return false;
        }
        break;
      default:
        break;
    }
    out.insert(id, name, value);
  }
}

// The body of `length` bytes at `p` into `out`; false when it is over `max_body_bytes` or not all
// in [p, end).
template <typename Message>
bool TakeBody(const char* p, const char* end, uint64_t length, uint64_t max_body_bytes,
              Message& out) {
  if (length > max_body_bytes || length > static_cast<uint64_t>(end - p)) return false;
  if (length > 0) out.body().assign(p, static_cast<size_t>(length));
  return true;
}

}  // namespace

size_t ParseSimpleRequest(std::string_view in, size_t max_head_bytes, uint64_t max_body_bytes,
                          Request& out) {
  const char* const begin = in.data();
  const char* const end = begin + in.size();
  const char* p = begin;

  // Request line: method SP target SP HTTP/1.x CRLF.
  const char* m = p;
  while (p < end && kTchar[static_cast<unsigned char>(*p)]) ++p;
  if (p == m || p == end || *p != ' ') return 0;
  const std::string_view method(m, static_cast<size_t>(p - m));
  const Verb verb = bhttp::string_to_verb(method);
  if (verb == Verb::unknown) return 0;
  const char* t = ++p;
  while (p < end && IsVisible(static_cast<unsigned char>(*p))) ++p;
  if (p == t || p == end || *p != ' ') return 0;
  const std::string_view target(t, static_cast<size_t>(p - t));
  ++p;
  if (end - p < 10 || std::memcmp(p, "HTTP/1.", 7) != 0 || (p[7] != '0' && p[7] != '1') ||
      p[8] != '\r' || p[9] != '\n') {
    return 0;
  }
  const unsigned version = p[7] == '1' ? 11 : 10;
  p += 10;

  bool has_length = false;
  uint64_t length = 0;
  if (!ParseFields(begin, end, max_head_bytes, p, has_length, length, out)) return 0;
  if (!TakeBody(p, end, length, max_body_bytes, out)) return 0;
  out.target(target);
  out.method(verb);
  out.version(version);
  return static_cast<size_t>(p - begin) + static_cast<size_t>(length);
}

size_t ParseSimpleResponse(std::string_view in, size_t max_head_bytes, uint64_t max_body_bytes,
                           Response& out) {
  const char* const begin = in.data();
  const char* const end = begin + in.size();
  const char* p = begin;

  // Status line: HTTP/1.x SP 3DIGIT SP reason CRLF.
  if (end - p < 13 || std::memcmp(p, "HTTP/1.", 7) != 0 || (p[7] != '0' && p[7] != '1') ||
      p[8] != ' ') {
    return 0;
  }
  const unsigned version = p[7] == '1' ? 11 : 10;
  p += 9;
  unsigned code = 0;
  for (int i = 0; i < 3; ++i, ++p) {
    if (*p < '0' || *p > '9') return 0;
    code = code * 10 + static_cast<unsigned>(*p - '0');
  }
  // No body by its status (1xx, 204, 304): left to Beast.
  if (code < 200 || code == 204 || code == 304 || *p != ' ') return 0;
  const char* r = ++p;
  while (p < end && (IsVisible(static_cast<unsigned char>(*p)) || *p == ' ')) ++p;
  if (p == r || p[-1] == ' ' || end - p < 2 || p[0] != '\r' || p[1] != '\n') return 0;
  const std::string_view reason(r, static_cast<size_t>(p - r));
  p += 2;

  bool has_length = false;
  uint64_t length = 0;
  if (!ParseFields(begin, end, max_head_bytes, p, has_length, length, out)) return 0;
  // Without a Content-Length the body runs to the end of the connection: left to Beast.
  if (!has_length) return 0;
  if (!TakeBody(p, end, length, max_body_bytes, out)) return 0;
  out.result(code);
  out.version(version);
  out.reason(reason);
  return static_cast<size_t>(p - begin) + static_cast<size_t>(length);
}

}  // namespace layer::http
