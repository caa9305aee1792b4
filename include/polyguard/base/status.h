// Status and StatusOr: how polyguard reports failures a caller can act on.
//
// No exception crosses the public API. Every fallible public function returns
// a Status (or a StatusOr<T> holding either a value or a non-OK Status) whose
// message names the offending field and value.
//
// Thread safety: Status and StatusOr are values; distinct objects may be used
// from different threads freely, one object needs external synchronisation.
#ifndef POLYGUARD_BASE_STATUS_H_
#define POLYGUARD_BASE_STATUS_H_

#include <cstdlib>
#include <iosfwd>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace polyguard {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,     // the caller passed something malformed
  kFailedPrecondition,  // the system is not in a state to do this
  kOutOfRange,
  kNotFound,
  kDataLoss,     // errors beyond what the code can correct
  kUnavailable,  // too few peers answered; a peer is gone
  kDeadlineExceeded,
  kUnimplemented,
  kInternal,
  kResourceExhausted,  // the job needs more memory than the machine has
  kAlreadyExists,      // a name is taken (a registered strategy)
};

std::string_view StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "InvalidArgument: message", or "OK".
  std::string ToString() const;

  // Returns a copy whose message is "context: message" (no-op when OK).
  Status WithContext(std::string_view context) const;

  friend bool operator==(const Status&, const Status&) = default;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

std::ostream& operator<<(std::ostream& os, const Status& status);

Status InvalidArgumentError(std::string message);
Status FailedPreconditionError(std::string message);
Status OutOfRangeError(std::string message);
Status NotFoundError(std::string message);
Status DataLossError(std::string message);
Status UnavailableError(std::string message);
Status DeadlineExceededError(std::string message);
Status UnimplementedError(std::string message);
Status InternalError(std::string message);
Status ResourceExhaustedError(std::string message);
Status AlreadyExistsError(std::string message);

namespace internal {
[[noreturn]] void DieBecauseStatusOrNotOk(const Status& status);
}  // namespace internal

// Holds a T or a non-OK Status. Accessing the value of a non-OK StatusOr is a
// programming error and aborts with the status message.
template <typename T>
class [[nodiscard]] StatusOr {
 public:
  StatusOr(const Status& status) : data_(status) {  // NOLINT: implicit
    if (status.ok()) {
      data_ = InternalError("StatusOr constructed from an OK Status");
    }
  }
  StatusOr(Status&& status) : data_(std::move(status)) {  // NOLINT: implicit
    if (std::get<Status>(data_).ok()) {
      data_ = InternalError("StatusOr constructed from an OK Status");
    }
  }
  StatusOr(const T& value) : data_(value) {}        // NOLINT: implicit
  StatusOr(T&& value) : data_(std::move(value)) {}  // NOLINT: implicit

  bool ok() const { return std::holds_alternative<T>(data_); }
  Status status() const { return ok() ? Status() : std::get<Status>(data_); }

  const T& value() const& {
    CheckOk();
    return std::get<T>(data_);
  }
  T& value() & {
    CheckOk();
    return std::get<T>(data_);
  }
  T&& value() && {
    CheckOk();
    return std::get<T>(std::move(data_));
  }
  const T& operator*() const& { return value(); }
  T& operator*() & { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  const T* operator->() const { return &value(); }
  T* operator->() { return &value(); }

 private:
  void CheckOk() const {
    if (!ok()) internal::DieBecauseStatusOrNotOk(std::get<Status>(data_));
  }
  std::variant<Status, T> data_;
};

}  // namespace polyguard

#define POLYGUARD_STATUS_CONCAT_INNER_(a, b) a##b
#define POLYGUARD_STATUS_CONCAT_(a, b) POLYGUARD_STATUS_CONCAT_INNER_(a, b)

// Returns from the current function when `expr` (a Status) is not OK.
#define POLYGUARD_RETURN_IF_ERROR(expr)                    \
  do {                                                     \
    ::polyguard::Status polyguard_status_ = (expr);        \
    if (!polyguard_status_.ok()) return polyguard_status_; \
  } while (0)

// `lhs = value of expr`, or returns its Status when expr (a StatusOr) failed.
#define POLYGUARD_ASSIGN_OR_RETURN(lhs, expr)                                                    \
  POLYGUARD_ASSIGN_OR_RETURN_IMPL_(POLYGUARD_STATUS_CONCAT_(polyguard_statusor_, __LINE__), lhs, \
                                   expr)
#define POLYGUARD_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                     \
  if (!tmp.ok()) return tmp.status();                    \
  lhs = std::move(tmp).value()

#endif  // POLYGUARD_BASE_STATUS_H_
