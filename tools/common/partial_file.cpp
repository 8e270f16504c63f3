#include "common/partial_file.h"

#include <unistd.h>

#include <csignal>
#include <cstring>

namespace qilin::tools {
namespace {

char g_partial[4096];

extern "C" void on_interrupt(int sig) {
  if (g_partial[0] != '\0') ::unlink(g_partial);
  std::signal(sig, SIG_DFL);
  std::raise(sig);
}

}  // namespace

void remove_on_interrupt(const std::string& partial_path) {
  if (partial_path.size() >= sizeof g_partial) return;  // too long to keep: the partial file stays behind
  std::memcpy(g_partial, partial_path.c_str(), partial_path.size() + 1);
  std::signal(SIGINT, on_interrupt);
  std::signal(SIGTERM, on_interrupt);
}

}  // namespace qilin::tools
