// StopStrings: finds stop strings in generated text as it streams in.
//
// Text arrives in pieces (one per token) and a stop string may span several of them,
// so the end of what has arrived is held back while it could still be the start of
// a stop string; everything before it is safe to show. When a stop string completes,
// the text before it is released and the stop string and everything after it are not.
//
// The result does not depend on how the text is cut into pieces: when several stop
// strings occur, the one that ends first wins (ties: the longest), which is the one a
// byte-by-byte feed would complete first. Matching is by bytes, so UTF-8 stop strings
// work (a valid UTF-8 stop string can only match at a character boundary).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace qilin {

class StopStrings {
 public:
  // Empty strings in `stops` are ignored (they would stop before any text).
  explicit StopStrings(std::vector<std::string> stops);

  // Appends a piece; returns the text that is safe to emit now. After a stop string
  // has completed it returns "" and ignores further pieces.
  std::string feed(std::string_view piece);
  // At the end of generation: the text still held back ("" once stopped).
  std::string flush();
  // Forgets held-back text and the stop, for the next generation.
  void reset();

  bool stopped() const noexcept { return stopped_; }
  // The stop string that completed ("" if none).
  const std::string& matched() const noexcept { return matched_; }
  const std::vector<std::string>& stops() const noexcept { return stops_; }

 private:
  std::vector<std::string> stops_;
  std::string held_;  // received but not yet emitted
  std::string matched_;
  bool stopped_ = false;
};

}  // namespace qilin
