// ApiError: an error exactly as Turbopuffer reports it to a client (status code + message).
//
// The engine's request path returns ApiStatus (OK or one ApiError) instead of throwing. Messages
// are the live service's texts (docs/origin.md); helpers add the fixed
// prefixes so call sites only state what went wrong.
#pragma once

#include <memory>
#include <string>
#include <utility>

namespace layer::tpuf::model {

struct ApiError {
  int http_status = 400;
  std::string message;
  std::string attribute;    // when non-empty, echoed as an "attribute" key (schema type change)
  bool plain_text = false;  // body is the bare message, Content-Type text/plain
};

// 400 with the live "💔 " prefix added.
ApiError BadRequest(std::string message);
// 400 with the message verbatim (some live 400s carry no emoji, e.g. filter type errors).
ApiError BadRequestRaw(std::string message);
// 422 "Failed to deserialize the JSON body into the target type: <detail>".
ApiError Unprocessable(std::string detail);
// 404 "🤷 namespace '<ns>' was not found".
ApiError NamespaceNotFound(std::string_view ns);
// 500 with the live opaque text.
ApiError InternalError();

class [[nodiscard]] ApiStatus {
 public:
  ApiStatus() = default;
  ApiStatus(ApiError error)  // NOLINT: implicit by design, like Result<T>
      : error_(std::make_shared<ApiError>(std::move(error))) {}
  bool ok() const { return error_ == nullptr; }
  const ApiError& error() const { return *error_; }

 private:
  std::shared_ptr<const ApiError> error_;  // null means OK
};

#define ORIGIN_RETURN_IF_ERROR(expr)              \
  do {                                            \
    ::layer::tpuf::model::ApiStatus _st = (expr); \
    if (!_st.ok()) return _st;                    \
  } while (0)

}  // namespace layer::tpuf::model
