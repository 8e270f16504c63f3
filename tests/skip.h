// Reporting a test as skipped: ctest has no notion of a Catch2 v2 skip, so a
// test that cannot run here (no GPU, no model file) prints why and exits with
// code 4, which tests/CMakeLists.txt registers as SKIP_RETURN_CODE. ctest then
// lists it as "Not Run (Skipped)", never as passed.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>

namespace qilin::test {

inline constexpr int kSkipExitCode = 4;

[[noreturn]] inline void skip(const std::string& why) {
  std::printf("SKIPPED: %s\n", why.c_str());
  std::fflush(stdout);
  std::_Exit(kSkipExitCode);
}

}  // namespace qilin::test
