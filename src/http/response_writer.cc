#include "http/response_writer.h"

#include <boost/beast/core/string.hpp>

namespace layer::http {

namespace {

// Appends every field as "Name: value\r\n".
template <typename Fields>
void AppendFieldLines(const Fields& fields, std::string& out) {
  for (const auto& f : fields) {
    out.append(f.name_string());
    out.append(": ", 2);
    out.append(f.value());
    out.append("\r\n", 2);
  }
}

// Appends every field as "Name: value\r\n" and the blank line.
template <typename Fields>
void AppendFields(const Fields& fields, std::string& out) {
  AppendFieldLines(fields, out);
  out.append("\r\n", 2);
}

// `v` in decimal, written at the end of `buf`; returns the view of the digits.
std::string_view Decimal(uint64_t v, char (&buf)[24]) {
  size_t digits = 0;
  for (;; v /= 10) {
    buf[sizeof(buf) - 1 - digits++] = static_cast<char>('0' + v % 10);
    if (v < 10) break;
  }
  return std::string_view(buf + sizeof(buf) - digits, digits);
}

template <typename Fields>
size_t FieldsSize(const Fields& fields) {
  size_t size = 2;
  for (const auto& f : fields) size += f.name_string().size() + 2 + f.value().size() + 2;
  return size;
}

// "HTTP/x.y ### " for `version` and `code`.
void AppendStatusStart(unsigned version, unsigned code, std::string& out) {
  const char start[13] = {'H',
                          'T',
                          'T',
                          'P',
                          '/',
                          static_cast<char>('0' + version / 10 % 10),
                          '.',
                          static_cast<char>('0' + version % 10),
                          ' ',
                          static_cast<char>('0' + code / 100 % 10),
                          static_cast<char>('0' + code / 10 % 10),
                          static_cast<char>('0' + code % 10),
                          ' '};
  out.append(start, sizeof(start));
}

}  // namespace

void PrepareResponse(Response& res, bool keep_alive, std::string_view request_id,
                     bool head_request) {
  res.keep_alive(keep_alive);
  res.set("x-request-id", request_id);
  if (!head_request) {
    res.prepare_payload();
  } else if (res[Field::content_length].empty()) {
    res.content_length(0);
  }
}

void SerializeResponseHead(const Response& res, std::string& out) {
  const unsigned version = res.version();
  const unsigned code = res.result_int();
  const std::string_view reason = res.reason();
  const size_t size = 13 + reason.size() + 2 + FieldsSize(res);  // "HTTP/x.y ### " reason CRLF
  out.clear();
  out.reserve(size);
  AppendStatusStart(version, code, out);
  out.append(reason);
  out.append("\r\n", 2);
  AppendFields(res, out);
}

bool SerializePreparedResponseHead(const Response& res, bool keep_alive,
                                   std::string_view request_id, bool head_request,
                                   std::string& out) {
  const unsigned code = res.result_int();
  if (head_request || res.version() != 11 || code < 200 || code == 204 || code == 304) {
    return false;
  }
  size_t fields = 0;
  for (const auto& f : res) {
    switch (f.name()) {
      case Field::connection:
      case Field::content_length:
      case Field::transfer_encoding:
        return false;
      case Field::unknown:
        if (boost::beast::iequals(f.name_string(), "x-request-id")) return false;
        break;
      default:
        break;
    }
    fields += f.name_string().size() + 2 + f.value().size() + 2;
  }
  // What PrepareResponse appends, in its order: "Connection: close" (keep_alive(false) on
  // HTTP/1.1; nothing for true), x-request-id, then Content-Length from prepare_payload().
  char buf[24];
  const std::string_view length = Decimal(res.body().size(), buf);
  const std::string_view reason = res.reason();
  constexpr std::string_view kClose = "Connection: close\r\n";
  constexpr std::string_view kId = "x-request-id: ";
  constexpr std::string_view kLength = "\r\nContent-Length: ";
  out.clear();
  out.reserve(13 + reason.size() + 2 + fields + kClose.size() + kId.size() + request_id.size() +
              kLength.size() + length.size() + 4);
  AppendStatusStart(11, code, out);
  out.append(reason);
  out.append("\r\n", 2);
  AppendFieldLines(res, out);
  if (!keep_alive) out.append(kClose);
  out.append(kId);
  out.append(request_id);
  out.append(kLength);
  out.append(length);
  out.append("\r\n\r\n", 4);
  return true;
}

void SerializeRequestHead(const Request& req, std::string& out) {
  const unsigned version = req.version();
  const std::string_view method = req.method_string();
  const std::string_view target = req.target();
  out.clear();
  out.reserve(method.size() + 1 + target.size() + 11 + FieldsSize(req));
  out.append(method);
  out.push_back(' ');
  out.append(target);
  const char tail[11] = {' ', 'H', 'T', 'T', 'P', '/', static_cast<char>('0' + version / 10 % 10),
                         '.', static_cast<char>('0' + version % 10), '\r', '\n'};
  out.append(tail, sizeof(tail));
  AppendFields(req, out);
}

bool SerializeRequestHeadWith(const Request& req, std::string_view host,
                              std::optional<uint64_t> content_length, std::string& out) {
  if (req.version() != 11) return false;
  for (const auto& f : req) {
    switch (f.name()) {
      case Field::host:
      case Field::content_length:
      case Field::transfer_encoding:
      case Field::connection:
        return false;
      default:
        break;
    }
  }
  char buf[24];
  const std::string_view length = content_length ? Decimal(*content_length, buf) : "";
  const std::string_view method = req.method_string();
  const std::string_view target = req.target();
  out.clear();
  out.reserve(method.size() + 1 + target.size() + 11 + FieldsSize(req) + 8 + host.size() + 18 +
              length.size());
  out.append(method);
  out.push_back(' ');
  out.append(target);
  out.append(" HTTP/1.1\r\n", 11);
  AppendFieldLines(req, out);
  out.append("Host: ", 6);
  out.append(host);
  out.append("\r\n", 2);
  if (content_length) {
    out.append("Content-Length: ", 16);
    out.append(length);
    out.append("\r\n", 2);
  }
  out.append("\r\n", 2);
  return true;
}

}  // namespace layer::http
