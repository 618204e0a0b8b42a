// The gateway's error envelope: {"error": <kind>, "message": <text>, ...extra}.
//
// Every error a client can see that the gateway itself produces goes through MakeError, so the
// shape and the Content-Type are the same everywhere. Kinds are stable strings (see
// docs/design.md §9.4): validation_error, not_found, upstream_error, payload_too_large, ...
#pragma once

#include <boost/json/object.hpp>

#include <string_view>

#include "http/message.h"

namespace layer::http {

Response MakeError(Code status, std::string_view kind, std::string_view message);
// As above with extra top-level fields (e.g. "cache_state").
Response MakeError(Code status, std::string_view kind, std::string_view message,
                   const boost::json::object& extra);
// A JSON response with an arbitrary body object (auth errors have no "message").
Response MakeJson(Code status, const boost::json::value& body);
// A plain-text response (Turbopuffer answers URL-level errors this way).
Response MakeText(Code status, std::string body);

}  // namespace layer::http
