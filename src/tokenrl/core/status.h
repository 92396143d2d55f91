#pragma once
// Status and StatusOr: LevelDB-style error values for everything that can fail
// on user input (configs, environment names, files). Library code returns them;
// only the CLI turns them into messages and exit codes. Programming errors that
// cannot come from user input use TOKENRL_CHECK instead.

#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include <fmt/format.h>

namespace tokenrl {

class Status {
 public:
  enum class Code { kOk, kInvalidArgument, kNotFound, kOutOfRange, kIoError, kCorruption, kInternal };

  Status() = default;  // OK; holds no allocation, so returning OK is free.
  Status(const Status& other) : rep_(other.rep_ ? std::make_unique<Rep>(*other.rep_) : nullptr) {}
  Status& operator=(const Status& other) {
    rep_ = other.rep_ ? std::make_unique<Rep>(*other.rep_) : nullptr;
    return *this;
  }
  Status(Status&&) noexcept = default;
  Status& operator=(Status&&) noexcept = default;
  static Status Ok() { return Status(); }
  static Status InvalidArgument(std::string msg) { return Status(Code::kInvalidArgument, std::move(msg)); }
  static Status NotFound(std::string msg) { return Status(Code::kNotFound, std::move(msg)); }
  static Status OutOfRange(std::string msg) { return Status(Code::kOutOfRange, std::move(msg)); }
  static Status IoError(std::string msg) { return Status(Code::kIoError, std::move(msg)); }
  static Status Corruption(std::string msg) { return Status(Code::kCorruption, std::move(msg)); }
  static Status Internal(std::string msg) { return Status(Code::kInternal, std::move(msg)); }

  bool ok() const { return rep_ == nullptr; }
  Code code() const { return rep_ ? rep_->code : Code::kOk; }
  const std::string& message() const;
  // "invalid argument: <message>", or "OK".
  std::string ToString() const;

  // Returns a copy whose message is "<prefix>: <message>" (for adding context).
  Status WithContext(std::string_view prefix) const;

 private:
  struct Rep {
    Code code;
    std::string message;
  };
  Status(Code code, std::string msg) : rep_(std::make_unique<Rep>(Rep{code, std::move(msg)})) {}
  std::unique_ptr<Rep> rep_;  // nullptr means OK (as LevelDB's state_).
};

// A value or an error. REQUIRES for value(): ok().
template <typename T>
class StatusOr {
 public:
  StatusOr(T value) : value_(std::move(value)) {}            // NOLINT: implicit by design.
  StatusOr(Status status) : status_(std::move(status)) {     // NOLINT: implicit by design.
    if (status_.ok()) status_ = Status::Internal("StatusOr constructed from an OK status without a value");
  }
  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }
  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T& operator*() & { return *value_; }
  const T& operator*() const& { return *value_; }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }

 private:
  Status status_;
  std::optional<T> value_;
};

[[noreturn]] void CheckFailed(const char* file, int line, const char* expr, std::string_view msg);

}  // namespace tokenrl

// Invariant checks for conditions no user input can cause; always on.
#define TOKENRL_CHECK(cond, ...)                                                              \
  do {                                                                                        \
    if (!(cond)) ::tokenrl::CheckFailed(__FILE__, __LINE__, #cond, ::fmt::format("" __VA_ARGS__)); \
  } while (0)

// Propagates a non-OK Status from an expression returning Status.
#define TOKENRL_RETURN_IF_ERROR(expr)          \
  do {                                         \
    ::tokenrl::Status _st = (expr);            \
    if (!_st.ok()) return _st;                 \
  } while (0)

#define TOKENRL_CONCAT_INNER_(a, b) a##b
#define TOKENRL_CONCAT_(a, b) TOKENRL_CONCAT_INNER_(a, b)
// Assigns the value of a StatusOr expression to `lhs` or returns its error.
#define TOKENRL_ASSIGN_OR_RETURN(lhs, expr)                                  \
  auto TOKENRL_CONCAT_(_so_, __LINE__) = (expr);                             \
  if (!TOKENRL_CONCAT_(_so_, __LINE__).ok()) return TOKENRL_CONCAT_(_so_, __LINE__).status(); \
  lhs = std::move(TOKENRL_CONCAT_(_so_, __LINE__)).value()
