// Status and Result<T>: the error currency of the request path.
//
// Contract: no exceptions cross the request path; every fallible call returns a Status or a
// Result<T>. An OK Status is one pointer-sized null and costs nothing to copy. A non-OK Status
// carries a code, a message and a `retryable` flag (as RocksDB's IOStatus does) so callers can
// decide whether to try again without parsing text. Both types are [[nodiscard]].
#pragma once

#include <cassert>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace layer {

enum class StatusCode : int {
  kOk = 0,
  kInvalidArgument,  // the caller's input is wrong; never retry
  kNotFound,
  kTimeout,          // a deadline passed; usually retryable
  kUnavailable,      // a dependency could not be reached; usually retryable
  kIoError,          // a dependency answered with garbage or failed mid-way
  kCorruption,       // stored data failed validation
  kAborted,          // cancelled or shutting down
  kInternal,         // a broken invariant
};

class [[nodiscard]] Status {
 public:
  Status() = default;

  static Status Ok() { return Status(); }
  static Status InvalidArgument(std::string msg) {
    return Status(StatusCode::kInvalidArgument, std::move(msg), false);
  }
  static Status NotFound(std::string msg) {
    return Status(StatusCode::kNotFound, std::move(msg), false);
  }
  static Status Timeout(std::string msg) {
    return Status(StatusCode::kTimeout, std::move(msg), true);
  }
  static Status Unavailable(std::string msg) {
    return Status(StatusCode::kUnavailable, std::move(msg), true);
  }
  static Status IoError(std::string msg, bool retryable = false) {
    return Status(StatusCode::kIoError, std::move(msg), retryable);
  }
  static Status Corruption(std::string msg) {
    return Status(StatusCode::kCorruption, std::move(msg), false);
  }
  static Status Aborted(std::string msg) {
    return Status(StatusCode::kAborted, std::move(msg), false);
  }
  static Status Internal(std::string msg) {
    return Status(StatusCode::kInternal, std::move(msg), false);
  }

  bool ok() const { return rep_ == nullptr; }
  StatusCode code() const { return rep_ ? rep_->code : StatusCode::kOk; }
  bool retryable() const { return rep_ && rep_->retryable; }
  const std::string& message() const {
    static const std::string kEmpty;
    return rep_ ? rep_->message : kEmpty;
  }
  bool IsNotFound() const { return code() == StatusCode::kNotFound; }
  bool IsTimeout() const { return code() == StatusCode::kTimeout; }

  // "OK" or "<CodeName>: <message>".
  std::string ToString() const;

 private:
  struct Rep {
    StatusCode code;
    std::string message;
    bool retryable;
  };
  Status(StatusCode code, std::string msg, bool retryable)
      : rep_(std::make_shared<const Rep>(Rep{code, std::move(msg), retryable})) {}

  std::shared_ptr<const Rep> rep_;  // null means OK
};

std::string_view StatusCodeName(StatusCode code);

// Result<T> holds either a value or a non-OK Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {  // NOLINT: implicit by design
    assert(!std::get<Status>(v_).ok() && "Result constructed from an OK status");
  }

  bool ok() const { return v_.index() == 0; }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace layer
