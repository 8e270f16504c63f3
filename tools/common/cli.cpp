#include "common/cli.h"

#include <charconv>
#include <fstream>
#include <sstream>

#include "core/error.h"

namespace qilin::tools {

Args::Args(int argc, char** argv) : program_(argc > 0 ? argv[0] : "qilin") {
  for (int i = 1; i < argc; ++i) args_.emplace_back(argv[i]);
  used_.assign(args_.size(), false);
}

namespace {
bool matches(const std::string& arg, std::initializer_list<std::string_view> names) {
  for (std::string_view n : names) {
    if (arg == n) return true;
  }
  return false;
}
}  // namespace

bool Args::has(std::initializer_list<std::string_view> names) {
  bool found = false;
  for (size_t i = 0; i < args_.size(); ++i) {
    if (!used_[i] && matches(args_[i], names)) used_[i] = found = true;
  }
  return found;
}

std::vector<std::string> Args::get_all(std::initializer_list<std::string_view> names) {
  std::vector<std::string> values;
  for (size_t i = 0; i < args_.size(); ++i) {
    if (used_[i] || !matches(args_[i], names)) continue;
    if (i + 1 >= args_.size()) fail("args", "{} needs a value", args_[i]);
    used_[i] = used_[i + 1] = true;
    values.push_back(args_[i + 1]);
    ++i;
  }
  return values;
}

std::string Args::get(std::initializer_list<std::string_view> names, std::string fallback) {
  std::vector<std::string> values = get_all(names);
  return values.empty() ? fallback : values.back();  // the last one wins, as in most tools
}

int64_t Args::get_int(std::initializer_list<std::string_view> names, int64_t fallback) {
  const std::string s = get(names);
  if (s.empty()) return fallback;
  int64_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size())
    fail("args", "{} expects an integer, got '{}'", *names.begin(), s);
  return v;
}

double Args::get_float(std::initializer_list<std::string_view> names, double fallback) {
  const std::string s = get(names);
  if (s.empty()) return fallback;
  try {
    size_t used = 0;
    const double v = std::stod(s, &used);
    if (used == s.size()) return v;
  } catch (const std::exception&) {
  }
  fail("args", "{} expects a number, got '{}'", *names.begin(), s);
}

std::vector<int64_t> Args::get_int_list(std::initializer_list<std::string_view> names, std::vector<int64_t> fallback) {
  const std::vector<std::string> all = get_all(names);
  if (all.empty()) return fallback;
  std::vector<int64_t> out;
  for (const std::string& value : all) {
    std::stringstream ss(value);
    std::string item;
    while (std::getline(ss, item, ',')) {
      int64_t v = 0;
      const auto [end, ec] = std::from_chars(item.data(), item.data() + item.size(), v);
      if (ec != std::errc() || end != item.data() + item.size()) {
        fail("args", "{} expects integers separated by commas, got '{}'", *names.begin(), value);
      }
      out.push_back(v);
    }
  }
  return out;
}

std::vector<std::string> Args::positionals() {
  std::vector<std::string> out;
  for (size_t i = 0; i < args_.size(); ++i) {
    if (used_[i] || (args_[i].size() > 1 && args_[i][0] == '-')) continue;
    used_[i] = true;
    out.push_back(args_[i]);
  }
  return out;
}

void Args::finish() const {
  for (size_t i = 0; i < args_.size(); ++i) {
    if (!used_[i]) fail("args", "unknown argument '{}' (see --help)", args_[i]);
  }
}

Device parse_device(std::string_view name) {
  if (name == "cpu") return Device::cpu;
  if (name == "cuda") return Device::cuda;
  fail("args", "--device must be cpu or cuda, not '{}'", name);
}

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("args", "cannot read {}", path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace qilin::tools
