#pragma once
// Status and Result<T>: the one error model of Tributary (no exceptions across modules).
//
// A Status is a protocol-neutral code, a message for people, and optionally the platform error
// number that Dataverse clients know (0x80040217 …). The HTTP layer translates code → HTTP status
// once, at the handler boundary.

#include <cstdint>
#include <string>
#include <utility>
#include <variant>

namespace tributary {

enum class Code : uint8_t {
  kOk = 0,
  kInvalidArgument,     // bad input: 400
  kNotFound,            // 404
  kAlreadyExists,       // duplicate key: 412 in Dataverse
  kFailedPrecondition,  // version mismatch / conditional failure: 412
  kUnauthenticated,     // 401
  kPermissionDenied,    // 403
  kMethodNotAllowed,    // 405
  kPayloadTooLarge,     // 413
  kResourceExhausted,   // throttled: 429
  kUnimplemented,       // 501
  kUnavailable,         // 503 (shutting down, store busy)
  kInternal,            // 500: a broken invariant; never for bad input
};

// Platform error numbers (HRESULT-style) used by Dataverse clients. Named here once.
namespace err {
inline constexpr uint32_t kObjectDoesNotExist = 0x80040217;
inline constexpr uint32_t kRecordNotFoundByEntityKey = 0x80060891;
inline constexpr uint32_t kQueryError = 0x80060888;  // OData URI / query errors
inline constexpr uint32_t kPayloadError = 0x80048d19;
inline constexpr uint32_t kInvalidArgument = 0x80040203;
inline constexpr uint32_t kValidation = 0x80044331;
inline constexpr uint32_t kPicklistOutOfRange = 0x8004431A;
inline constexpr uint32_t kDuplicateRecord = 0x80040237;
inline constexpr uint32_t kDuplicateRecordEntityKey = 0x80060892;
inline constexpr uint32_t kConcurrencyVersionMismatch = 0x80060882;
inline constexpr uint32_t kPrivilegeDenied = 0x80040220;
inline constexpr uint32_t kAccessDenied = 0x80048405;
inline constexpr uint32_t kUnauthorized = 0x80048306;
inline constexpr uint32_t kRecordAccessDenied = 0x80048306;        // the row access check failed (403)
inline constexpr uint32_t kPrincipalPrivilegeDenied = 0x80040231;  // the target principal lacks it
// Column (field) security.
inline constexpr uint32_t kAttributePermissionReadIsMissing = 0x8004F504;
inline constexpr uint32_t kAttributePermissionUpdateIsMissingDuringUpdate = 0x8004F507;
inline constexpr uint32_t kAttributePrivilegeCreateIsMissing = 0x8004F502;
inline constexpr uint32_t kNotSupported = 0x80048d0b;
inline constexpr uint32_t kCannotDeleteDueToAssociation = 0x80040227;
inline constexpr uint32_t kRequestTooLarge = 0x8004800A;
inline constexpr uint32_t kInternalError = 0x80040216;
}  // namespace err

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Code code, std::string message, uint32_t error_code = 0)
      : code_(code), error_code_(error_code), message_(std::move(message)) {}

  static Status Ok() { return {}; }
  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  // The platform error number; 0 when none was set (the HTTP layer then picks a default).
  uint32_t error_code() const { return error_code_; }
  const std::string& message() const { return message_; }
  std::string ToString() const;

 private:
  Code code_ = Code::kOk;
  uint32_t error_code_ = 0;
  std::string message_;
};

inline Status InvalidArgument(std::string m, uint32_t e = err::kInvalidArgument) {
  return {Code::kInvalidArgument, std::move(m), e};
}
inline Status NotFound(std::string m, uint32_t e = err::kObjectDoesNotExist) {
  return {Code::kNotFound, std::move(m), e};
}
inline Status QueryError(std::string m) { return {Code::kInvalidArgument, std::move(m), err::kQueryError}; }
inline Status PayloadError(std::string m) { return {Code::kInvalidArgument, std::move(m), err::kPayloadError}; }
inline Status Internal(std::string m) { return {Code::kInternal, std::move(m), err::kInternalError}; }

// Result<T>: a value or a non-OK Status, shaped like std::expected.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}         // NOLINT(google-explicit-constructor)
  Result(Status status) : v_(std::move(status)) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  const Status& status() const& {
    static const Status kOk;
    return ok() ? kOk : std::get<1>(v_);
  }
  Status status() && { return ok() ? Status() : std::get<1>(std::move(v_)); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace tributary

#define TRIB_CONCAT_INNER(a, b) a##b
#define TRIB_CONCAT(a, b) TRIB_CONCAT_INNER(a, b)

#define RETURN_IF_ERROR(expr)         \
  do {                                \
    ::tributary::Status _st = (expr); \
    if (!_st.ok()) return _st;        \
  } while (0)

#define ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr)    \
  auto tmp = (expr);                             \
  if (!tmp.ok()) return std::move(tmp).status(); \
  lhs = std::move(tmp).value()

#define ASSIGN_OR_RETURN(lhs, expr) ASSIGN_OR_RETURN_IMPL(TRIB_CONCAT(_res_, __LINE__), lhs, expr)
