// qilin::Error — the one exception type thrown at API boundaries.
//
// Kernels are noexcept and trust their arguments; ops check arguments once and
// throw Error with the op name and the offending shapes, e.g.
//   "[matmul] x is 4x576 but w expects 896 inputs".
#pragma once

#include <fmt/format.h>

#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

namespace qilin {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Throws Error("[op] message").
template <class... Args>
[[noreturn]] void fail(std::string_view op, fmt::format_string<Args...> format, Args&&... args) {
  throw Error(fmt::format("[{}] {}", op, fmt::format(format, std::forward<Args>(args)...)));
}

}  // namespace qilin

// Checks a condition at an API boundary; the message is only formatted on failure.
#define QILIN_CHECK(cond, op, ...)               \
  do {                                           \
    if (!(cond)) ::qilin::fail(op, __VA_ARGS__); \
  } while (0)
