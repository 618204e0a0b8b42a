// HTTP message types shared by the server, the upstream client and the handlers.
#pragma once

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include "common/task.h"

namespace layer::http {

namespace bhttp = boost::beast::http;
using Request = bhttp::request<bhttp::string_body>;
using RequestHead = bhttp::request_header<>;
using Response = bhttp::response<bhttp::string_body>;
using Code = bhttp::status;  // HTTP status codes (layer::Status is the error type)
using Verb = bhttp::verb;
using Field = bhttp::field;

}  // namespace layer::http
