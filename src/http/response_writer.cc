#include "http/response_writer.h"

namespace layer::http {

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
  size_t size = 13 + reason.size() + 2 + 2;  // "HTTP/x.y ### " reason CRLF ... CRLF
  for (const auto& f : res) size += f.name_string().size() + 2 + f.value().size() + 2;
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
  for (const auto& f : res) {
    out.append(f.name_string());
    out.append(": ", 2);
    out.append(f.value());
    out.append("\r\n", 2);
  }
  out.append("\r\n", 2);
}

}  // namespace layer::http
