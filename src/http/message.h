// HTTP message types shared by the server, the upstream client and the handlers.
#pragma once

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

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

}  // namespace layer::http
