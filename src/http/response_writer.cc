#include "http/response_writer.h"

namespace layer::http {

namespace {

// Appends every field as "Name: value\r\n" and the blank line.
template <typename Fields>
void AppendFields(const Fields& fields, std::string& out) {
  for (const auto& f : fields) {
    out.append(f.name_string());
    out.append(": ", 2);
    out.append(f.value());
    out.append("\r\n", 2);
  }
  out.append("\r\n", 2);
}

template <typename Fields>
size_t FieldsSize(const Fields& fields) {
  size_t size = 2;
  for (const auto& f : fields) size += f.name_string().size() + 2 + f.value().size() + 2;
  return size;
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
  out.append(reason);
  out.append("\r\n", 2);
  AppendFields(res, out);
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

}  // namespace layer::http
