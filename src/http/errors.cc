#include "http/errors.h"

#include <boost/json/serialize.hpp>

namespace layer::http {

Response MakeJson(Code status, const boost::json::value& body) {
  Response res{status, 11};
  res.set(Field::content_type, "application/json");
  res.body() = boost::json::serialize(body);
  return res;
}

Response MakeError(Code status, std::string_view kind, std::string_view message,
                   const boost::json::object& extra) {
  boost::json::object body;
  body["error"] = kind;
  body["message"] = message;
  for (const auto& kv : extra) body[kv.key()] = kv.value();
  return MakeJson(status, body);
}

Response MakeError(Code status, std::string_view kind, std::string_view message) {
  return MakeError(status, kind, message, {});
}

Response MakeText(Code status, std::string body) {
  Response res{status, 11};
  res.set(Field::content_type, "text/plain; charset=utf-8");
  res.body() = std::move(body);
  return res;
}

}  // namespace layer::http
