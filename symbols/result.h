// Result<T>: a value or an Error, for everything in symbols/ that can fail on
// bad input. Parsers throw ParseError internally (every bounds check is one
// throw site); the public factories catch it and hand back a Result.
#pragma once

#include <stdexcept>
#include <string>
#include <utility>
#include <variant>

namespace goroscope {

enum class ErrorKind {
  Io,                  // cannot open or read the file or process
  NotElf,              // not an ELF file at all
  NotGo,               // ELF, but no Go build info or pclntab
  Truncated,           // a table runs past the end of its section or file
  Corrupt,             // a table is inconsistent (bad magic, bad offsets)
  UnsupportedVersion,  // a Go version goroscope does not know (< 1.18, or newer than known)
  UnsupportedArch,     // not amd64 or arm64
  NotFound,            // a symbol, function or offset is not in this binary
};

const char* to_string(ErrorKind kind);

struct Error {
  ErrorKind kind;
  std::string message;  // one line, names the file or thing at fault
};

// Thrown inside parsers; converted to Error at the API boundary.
class ParseError : public std::runtime_error {
 public:
  ParseError(ErrorKind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
  ErrorKind kind() const { return kind_; }
  Error error() const { return Error{kind_, what()}; }

 private:
  ErrorKind kind_;
};

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
  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

}  // namespace goroscope
