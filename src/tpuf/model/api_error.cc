#include "tpuf/model/api_error.h"

namespace layer::tpuf::model {

ApiError BadRequest(std::string message) {
  return ApiError{400, "💔 " + std::move(message), {}, false};
}

ApiError BadRequestRaw(std::string message) { return ApiError{400, std::move(message), {}, false}; }

ApiError Unprocessable(std::string detail) {
  return ApiError{
      422, "Failed to deserialize the JSON body into the target type: " + detail, {}, false};
}

ApiError NamespaceNotFound(std::string_view ns) {
  return ApiError{404, "🤷 namespace '" + std::string(ns) + "' was not found", {}, false};
}

ApiError InternalError() {
  return ApiError{
      500,
      "🐡 Unknown error, if this persists, please contact support!! We'll be happy to help :)",
      {},
      false};
}

}  // namespace layer::tpuf::model
