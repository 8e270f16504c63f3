#include "models/tokenizer/token_decoder.h"

#include "models/tokenizer/tokenizer.h"
#include "models/tokenizer/unicode.h"

namespace qilin {

std::string TokenDecoder::push(int32_t id) {
  const std::string& bytes = tokenizer_->token_bytes(id);  // checks the id
  if (skip_special_ && tokenizer_->is_special(id)) return {};
  pending_ += bytes;
  if (at_start_ && !pending_.empty()) {
    if (tokenizer_->strips_leading_space() && pending_.front() == ' ') pending_.erase(0, 1);
    at_start_ = false;
  }
  const size_t keep = unicode::incomplete_utf8_suffix(pending_);
  std::string out = unicode::to_valid_utf8(std::string_view(pending_).substr(0, pending_.size() - keep));
  pending_.erase(0, pending_.size() - keep);
  return out;
}

std::string TokenDecoder::flush() {
  std::string out = unicode::to_valid_utf8(pending_);
  pending_.clear();
  at_start_ = true;
  return out;
}

}  // namespace qilin
