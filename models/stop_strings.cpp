// StopStrings: see stop_strings.h.
#include "models/stop_strings.h"

#include <algorithm>
#include <utility>

namespace qilin {

StopStrings::StopStrings(std::vector<std::string> stops) : stops_(std::move(stops)) {
  std::erase_if(stops_, [](const std::string& s) { return s.empty(); });
}

void StopStrings::reset() {
  held_.clear();
  matched_.clear();
  stopped_ = false;
}

std::string StopStrings::feed(std::string_view piece) {
  if (stopped_) return {};
  held_.append(piece);

  // The occurrence that ends first (ties: the longest, which starts first). Only the
  // first occurrence of each stop string can end first.
  size_t best_start = std::string::npos, best_end = std::string::npos;
  const std::string* best = nullptr;
  for (const std::string& s : stops_) {
    const size_t start = held_.find(s);
    if (start == std::string::npos) continue;
    const size_t end = start + s.size();
    if (best == nullptr || end < best_end || (end == best_end && start < best_start)) {
      best_start = start;
      best_end = end;
      best = &s;
    }
  }
  if (best != nullptr) {
    std::string out = held_.substr(0, best_start);
    matched_ = *best;
    stopped_ = true;
    held_.clear();
    return out;
  }

  // Hold back the longest suffix that is a proper prefix of some stop string; a stop
  // string completed by later pieces must start there or later.
  size_t hold = 0;
  for (const std::string& s : stops_) {
    for (size_t len = std::min(s.size() - 1, held_.size()); len > hold; --len) {
      if (std::string_view(held_).substr(held_.size() - len) == std::string_view(s).substr(0, len)) {
        hold = len;
        break;
      }
    }
  }
  std::string out = held_.substr(0, held_.size() - hold);
  held_.erase(0, held_.size() - hold);
  return out;
}

std::string StopStrings::flush() {
  std::string out = std::move(held_);
  held_.clear();
  return out;
}

}  // namespace qilin
