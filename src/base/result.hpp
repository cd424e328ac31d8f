// Result<T>: a value or an error message. Errors travel as values through the VMM;
// only the CLI edge turns them into a message and an exit status.
#pragma once

#include <string>
#include <utility>
#include <variant>

#include <fmt/format.h>

namespace ignition {

struct Error {
  std::string message;
};

// Builds an Error with fmt formatting: `return err("bad address {:#x}", gpa);`
template <typename... Args>
Error err(fmt::format_string<Args...> format, Args&&... args) {
  return Error{fmt::format(format, std::forward<Args>(args)...)};
}

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}
  Result(Error error) : v_(std::move(error)) {}

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)), ok_(false) {}

  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const { return error_; }

 private:
  Error error_;
  bool ok_ = true;
};

// Adds context to an error as it travels up: "loading kernel: open foo: No such file".
inline Error context(const Error& e, std::string_view what) {
  return Error{fmt::format("{}: {}", what, e.message)};
}

}  // namespace ignition

#define IGN_CONCAT_INNER(a, b) a##b
#define IGN_CONCAT(a, b) IGN_CONCAT_INNER(a, b)

// Returns the error of a Result<void>-like expression from the enclosing function.
#define IGN_TRY(expr)                                        \
  do {                                                       \
    auto&& ign_try_result = (expr);                          \
    if (!ign_try_result.ok()) return ign_try_result.error(); \
  } while (0)

// Declares `lhs` from a Result<T> expression, or returns its error.
#define IGN_ASSIGN_OR_RETURN(lhs, expr) \
  IGN_ASSIGN_OR_RETURN_IMPL(IGN_CONCAT(ign_result_, __LINE__), lhs, expr)
#define IGN_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                              \
  if (!tmp.ok()) return tmp.error();              \
  lhs = std::move(tmp).value()
