// Removing a half-written output when the user interrupts a tool: GgufWriter writes
// "<out>.partial" and renames it when complete; on SIGINT/SIGTERM the handler unlinks
// the partial file (async-signal-safe: a fixed buffer and unlink) and re-raises.
#pragma once

#include <string>

namespace qilin::tools {

// Installs the handlers for `partial_path` (one path per process; later calls replace it).
void remove_on_interrupt(const std::string& partial_path);

}  // namespace qilin::tools
