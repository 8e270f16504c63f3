// Flag parsing shared by the tools, in the style of llama.cpp's: "-n 64",
// "--top-k 40", "--flag" booleans. A flag's value is checked where it is read,
// so a typo or a bad number is an error message and exit code 1, never a guess.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/tensor.h"

namespace qilin::tools {

class Args {
 public:
  Args(int argc, char** argv);

  // True (and consumed) when any of `names` is present, e.g. has({"-i", "--chat"}).
  bool has(std::initializer_list<std::string_view> names);
  // The value after the flag; `fallback` when the flag is absent.
  std::string get(std::initializer_list<std::string_view> names, std::string fallback = {});
  int64_t get_int(std::initializer_list<std::string_view> names, int64_t fallback);
  double get_float(std::initializer_list<std::string_view> names, double fallback);
  // Every value of a flag that may repeat (e.g. --stop A --stop B).
  std::vector<std::string> get_all(std::initializer_list<std::string_view> names);
  // Comma-separated integers ("-p 128,512"), or fallback when absent.
  std::vector<int64_t> get_int_list(std::initializer_list<std::string_view> names, std::vector<int64_t> fallback);

  // The arguments no flag has consumed, in order, now marked consumed: call it after
  // reading every flag. Anything starting with '-' (an unknown flag) is left for finish().
  std::vector<std::string> positionals();

  // Throws qilin::Error naming the first argument nobody consumed.
  void finish() const;
  const std::string& program() const noexcept { return program_; }

 private:
  std::string program_;
  std::vector<std::string> args_;
  std::vector<bool> used_;
};

// The value of a --device flag: "cpu" or "cuda"; throws qilin::Error for anything else.
Device parse_device(std::string_view name);

// Reads a whole file; throws qilin::Error naming it.
std::string read_text_file(const std::string& path);

}  // namespace qilin::tools
