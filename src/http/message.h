// HTTP message types shared by the server, the upstream client and the handlers.
#pragma once

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include <string_view>

#include "common/task.h"
#include "http/field_allocator.h"

namespace layer::http {

namespace bhttp = boost::beast::http;
// Header fields come from FieldAllocator (http/field_allocator.h): per-thread free lists.
using Fields = bhttp::basic_fields<FieldAllocator<char>>;
using Request = bhttp::request<bhttp::string_body, Fields>;
using RequestHead = bhttp::request_header<Fields>;
using Response = bhttp::response<bhttp::string_body, Fields>;
// Parsers that produce a Request / a Response.
using RequestParser = bhttp::parser<true, bhttp::string_body, FieldAllocator<char>>;
using ResponseParser = bhttp::parser<false, bhttp::string_body, FieldAllocator<char>>;
using Code = bhttp::status;  // HTTP status codes (layer::Status is the error type)
using Verb = bhttp::verb;
using Field = bhttp::field;

// The value of the first field `id` (a known field, not Field::unknown) in `fields`, or empty:
// what `fields[id]` answers, found by a walk of the fields in order instead of Beast's
// case-insensitive search of its name tree (a message carries a few fields; the request path
// looks up several per request).
inline std::string_view FieldValue(const Fields& fields, Field id) {
  for (const auto& f : fields) {
    if (f.name() == id) return f.value();
  }
  return {};
}

// The same by name, in any case (for the fields Beast does not know, such as x-request-id).
inline std::string_view FieldValue(const Fields& fields, std::string_view name) {
  for (const auto& f : fields) {
    if (boost::beast::iequals(f.name_string(), name)) return f.value();
  }
  return {};
}

}  // namespace layer::http
