// Status and Result<T>: errors as values.
//
// Every fallible function in Orrery returns a Status or a Result<T>. A Status
// carries a Code (which maps onto an HTTP status at the API edge), a
// human-readable message that is safe to show to the caller, and optionally
// a detail for the operator (host paths, system error text) that goes to
// logs and to local command-line output but never into an HTTP answer.
// Exceptions from third-party libraries are caught at the adapter that calls
// them and turned into a Status; none crosses a module boundary.
//
// Thread-safety: values; safe to copy and move between threads.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace orrery {

enum class Code {
  kOk,
  kInvalidArgument,      // malformed request or input (400)
  kUnauthenticated,      // missing, wrong, expired or revoked token (401)
  kPermissionDenied,     // authenticated but not allowed (403)
  kNotFound,             // absent, or not visible to the caller (404)
  kConflict,             // state conflict, e.g. already exists (409)
  kGone,                 // existed, and is gone for good, e.g. an expired answer (410)
  kTooLarge,             // body, archive or file count over a limit (413)
  kUnsupportedMediaType, // a body of a Content-Type the route does not take (415)
  kUnprocessable,        // well-formed but semantically invalid, e.g. manifest (422)
  kUnavailable,          // try again later (503)
  kInternal,             // a bug or an environment failure (500)
  kDataLoss,             // stored bytes do not match their digest (500)
  kInsufficientStorage,  // the data directory's file system is full (507)
};

// HTTP status code used at the API edge for `code`.
int HttpStatusFor(Code code);
const char* CodeName(Code code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }
  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  // Safe to show to any caller.
  const std::string& message() const { return message_; }
  // For the operator: the message with host paths and system error text
  // (the message itself when there is no detail).
  const std::string& detail() const { return detail_.empty() ? message_ : detail_; }
  // "NotFound: servable acme/x" style text for logs (with the detail).
  std::string ToString() const;

  // Returns a copy whose message (and detail) is prefixed with `context: `.
  Status WithContext(const std::string& context) const;
  // Returns a copy with `detail` (see detail()).
  Status WithDetail(std::string detail) const;

 private:
  Code code_ = Code::kOk;
  std::string message_;
  std::string detail_;
};

inline Status InvalidArgument(std::string m) {
  return {Code::kInvalidArgument, std::move(m)};
}
inline Status Unauthenticated(std::string m) {
  return {Code::kUnauthenticated, std::move(m)};
}
inline Status PermissionDenied(std::string m) {
  return {Code::kPermissionDenied, std::move(m)};
}
inline Status NotFound(std::string m) {
  return {Code::kNotFound, std::move(m)};
}
inline Status Conflict(std::string m) {
  return {Code::kConflict, std::move(m)};
}
inline Status TooLarge(std::string m) {
  return {Code::kTooLarge, std::move(m)};
}
inline Status UnsupportedMediaType(std::string m) {
  return {Code::kUnsupportedMediaType, std::move(m)};
}
inline Status Unprocessable(std::string m) {
  return {Code::kUnprocessable, std::move(m)};
}
inline Status Unavailable(std::string m) {
  return {Code::kUnavailable, std::move(m)};
}
inline Status Internal(std::string m) {
  return {Code::kInternal, std::move(m)};
}
inline Status DataLoss(std::string m) {
  return {Code::kDataLoss, std::move(m)};
}
inline Status InsufficientStorage(std::string m) {
  return {Code::kInsufficientStorage, std::move(m)};
}

// Result<T> holds either a T or a non-OK Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}         // NOLINT: implicit by design
  Result(Status status) : value_(std::move(status)) {}  // NOLINT: must not be OK

  bool ok() const { return std::holds_alternative<T>(value_); }
  Status status() const { return ok() ? Status::Ok() : std::get<Status>(value_); }
  T& value() & { return std::get<T>(value_); }
  const T& value() const& { return std::get<T>(value_); }
  T&& value() && { return std::get<T>(std::move(value_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> value_;
};

}  // namespace orrery

#define ORRERY_CONCAT_INNER(a, b) a##b
#define ORRERY_CONCAT(a, b) ORRERY_CONCAT_INNER(a, b)

// Returns the Status from the enclosing function if `expr` is not OK.
#define RETURN_IF_ERROR(expr)      \
  do {                             \
    ::orrery::Status _st = (expr); \
    if (!_st.ok()) return _st;     \
  } while (0)

// `ASSIGN_OR_RETURN(auto x, F());` declares x from a Result or returns its Status.
#define ASSIGN_OR_RETURN(lhs, expr) \
  ASSIGN_OR_RETURN_IMPL(ORRERY_CONCAT(_result_, __LINE__), lhs, expr)
#define ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                          \
  if (!tmp.ok()) return tmp.status();         \
  lhs = std::move(tmp).value()
