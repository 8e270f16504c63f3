// Tokenizer construction from TokenizerConfig, encode and decode.
#include "models/tokenizer/tokenizer.h"

#include <algorithm>
#include <charconv>
#include <tuple>

#include "core/error.h"
#include "models/tokenizer/byte_level.h"
#include "models/tokenizer/unicode.h"

namespace qilin {
namespace {

constexpr uint8_t kUsed = 1, kSpecial = 2;
constexpr std::string_view kSpaceMark = "\xE2\x96\x81";  // U+2581 "▁"

// SentencePiece's byte tokens are named <0xXX>.
int byte_token_value(std::string_view piece) {
  if (piece.size() != 6 || piece.substr(0, 3) != "<0x" || piece[5] != '>') return -1;
  int v = 0;
  auto [ptr, ec] = std::from_chars(piece.data() + 3, piece.data() + 5, v, 16);
  return ec == std::errc() && ptr == piece.data() + 5 ? v : -1;
}

std::string replace_all(std::string_view s, std::string_view from, std::string_view to) {
  std::string out;
  out.reserve(s.size());
  for (size_t pos = 0;;) {
    const size_t hit = s.find(from, pos);
    out.append(s.substr(pos, hit - pos));
    if (hit == std::string_view::npos) return out;
    out.append(to);
    pos = hit + from.size();
  }
}

// SentencePiece BPE keeps scores, not merges: every split of a piece into two
// pieces is a merge, ordered by the piece's score, then by the halves' ids, as
// Hugging Face's SentencePieceExtractor orders them.
std::vector<std::pair<int32_t, int32_t>> merges_from_scores(const std::vector<std::string>& pieces,
                                                            const std::vector<float>& scores,
                                                            const std::vector<uint8_t>& mergeable,
                                                            const std::unordered_map<std::string, int32_t>& ids) {
  std::vector<std::tuple<float, int32_t, int32_t>> found;
  for (size_t id = 0; id < pieces.size(); ++id) {
    const std::string& p = pieces[id];
    if (!mergeable[id] || p.size() < 2) continue;
    for (size_t k = 1; k < p.size(); ++k) {
      if ((static_cast<unsigned char>(p[k]) & 0xC0) == 0x80) continue;  // not a character boundary
      auto left = ids.find(p.substr(0, k));
      auto right = ids.find(p.substr(k));
      if (left == ids.end() || right == ids.end()) continue;
      if (static_cast<size_t>(left->second) >= pieces.size() || static_cast<size_t>(right->second) >= pieces.size())
        continue;
      if (!mergeable[static_cast<size_t>(left->second)] || !mergeable[static_cast<size_t>(right->second)]) continue;
      found.emplace_back(id < scores.size() ? scores[id] : 0.0f, left->second, right->second);
    }
  }
  std::stable_sort(found.begin(), found.end(), [](const auto& a, const auto& b) {
    if (std::get<0>(a) != std::get<0>(b)) return std::get<0>(a) > std::get<0>(b);
    return std::tie(std::get<1>(a), std::get<2>(a)) < std::tie(std::get<1>(b), std::get<2>(b));
  });
  std::vector<std::pair<int32_t, int32_t>> merges;
  merges.reserve(found.size());
  for (const auto& [score, left, right] : found) merges.emplace_back(left, right);
  return merges;
}

}  // namespace

Tokenizer::Tokenizer(TokenizerConfig config) : config_(std::move(config)) {
  const bool spm = config_.model == TokenizerModel::sentencepiece_bpe;
  const size_t n_model = config_.tokens.size();
  size_t n = n_model;
  for (const AddedToken& t : config_.added_tokens) {
    QILIN_CHECK(t.id >= 0 && !t.content.empty(), "tokenizer", "added token '{}' has id {}", t.content, t.id);
    n = std::max(n, static_cast<size_t>(t.id) + 1);
  }
  QILIN_CHECK(n > 0, "tokenizer", "the vocabulary is empty");
  QILIN_CHECK(n < (size_t{1} << 31), "tokenizer", "{} tokens is too many", n);
  text_.resize(n);
  bytes_.resize(n);
  flags_.assign(n, 0);

  // The BPE model's view of each token: its raw bytes ("" = not part of the model).
  std::vector<std::string> model_bytes(n_model);
  std::vector<uint8_t> is_byte(n_model, 0), mergeable(n_model, 0);
  for (size_t id = 0; id < n_model; ++id) {
    std::string& text = config_.tokens[id];
    const TokenType type = id < config_.types.size() ? config_.types[id] : TokenType::normal;
    const bool in_model = type == TokenType::normal || type == TokenType::user_defined || type == TokenType::byte ||
                          type == TokenType::undefined;
    if (spm) {
      const int byte = byte_token_value(text);
      if (byte >= 0 && (type == TokenType::byte || config_.types.empty())) {
        is_byte[id] = 1;
        model_bytes[id] = bytes_[id] = std::string(1, static_cast<char>(byte));
      } else {
        bytes_[id] = replace_all(text, kSpaceMark, " ");
        if (in_model) model_bytes[id] = text;
        mergeable[id] = in_model && type != TokenType::byte;
      }
    } else {
      std::optional<std::string> raw = byte_level_decode(text);
      bytes_[id] = raw ? *raw : text;
      if (in_model) model_bytes[id] = bytes_[id];
    }
    flags_[id] = kUsed;
    ids_.emplace(text, static_cast<int32_t>(id));
    text_[id] = std::move(text);
  }
  for (const AddedToken& t : config_.added_tokens) {
    const auto id = static_cast<size_t>(t.id);
    if (id >= n_model || text_[id].empty()) {
      text_[id] = t.content;
      bytes_[id] = spm ? t.content : byte_level_decode(t.content).value_or(t.content);
    }
    flags_[id] = static_cast<uint8_t>(kUsed | (t.special ? kSpecial : 0));
    ids_.emplace(t.content, t.id);
  }

  std::vector<std::pair<int32_t, int32_t>> merges;
  if (spm && config_.merges.empty()) {
    merges = merges_from_scores(model_bytes, config_.scores, mergeable, ids_);
  } else {
    merges.reserve(config_.merges.size());
    for (const auto& [left, right] : config_.merges) {
      const int32_t l = token_id(left), r = token_id(right);
      QILIN_CHECK(l >= 0 && static_cast<size_t>(l) < n_model && r >= 0 && static_cast<size_t>(r) < n_model, "tokenizer",
                  "merge '{} {}' uses a token that is not in the vocabulary", left, right);
      merges.emplace_back(l, r);
    }
  }
  BpeModel::Options options;
  options.initial = spm ? BpeModel::Symbols::chars : BpeModel::Symbols::bytes;
  options.ignore_merges = config_.ignore_merges;
  options.byte_fallback = spm;
  options.unk_id = config_.unk_id;
  bpe_ = std::make_unique<BpeModel>(model_bytes, is_byte, merges, options);
  added_ = AddedTokenMatcher(config_.added_tokens);
  strip_leading_space_ = spm && config_.space_prefix != SpacePrefix::never;
  for (int32_t id : {config_.bos_id, config_.eos_id, config_.unk_id})
    QILIN_CHECK(id < static_cast<int32_t>(n), "tokenizer", "special token id {} is past the vocabulary ({})", id, n);
  QILIN_CHECK(!(config_.add_bos && config_.bos_id < 0), "tokenizer", "add_bos is set but there is no BOS token");
  QILIN_CHECK(!(config_.add_eos && config_.eos_id < 0), "tokenizer", "add_eos is set but there is no EOS token");
  for (int32_t id : config_.prefix_ids)
    QILIN_CHECK(id >= 0 && id < static_cast<int32_t>(n), "tokenizer",
                "prefix token id {} is outside the vocabulary ({})", id, n);
  config_.tokens = {};
  config_.merges = {};
  config_.scores = {};
}

void Tokenizer::encode_text(std::string_view text, bool at_start, std::vector<int32_t>& out) const {
  std::string normalized;
  if (config_.normalizer == Normalizer::nfc && !unicode::is_nfc_stable(text)) {
    normalized = unicode::nfc(text);
    text = normalized;
  }
  if (config_.model == TokenizerModel::byte_level_bpe) {
    thread_local std::vector<TextSpan> pieces;
    pieces.clear();
    pre_tokenize(config_.pre_tokenizer, text, pieces);
    for (const TextSpan& p : pieces) bpe_->encode(text.substr(p.begin, p.end - p.begin), out);
    return;
  }
  bool prefix = false;
  switch (config_.space_prefix) {
    case SpacePrefix::never:
      break;
    case SpacePrefix::every_segment:
      prefix = true;
      break;
    case SpacePrefix::every_segment_once:
      prefix = text.front() != ' ';
      break;
    case SpacePrefix::first_segment_once:
      prefix = at_start && text.front() != ' ';
      break;
  }
  std::string escaped = (prefix ? std::string(kSpaceMark) : std::string()) + replace_all(text, " ", kSpaceMark);
  if (!config_.split_on_space) {
    bpe_->encode(escaped, out);
    return;
  }
  // Metaspace split: each word starts at a "▁".
  size_t begin = 0;
  for (size_t pos = escaped.find(kSpaceMark, 1); pos != std::string::npos; pos = escaped.find(kSpaceMark, pos + 1)) {
    bpe_->encode(std::string_view(escaped).substr(begin, pos - begin), out);
    begin = pos;
  }
  bpe_->encode(std::string_view(escaped).substr(begin), out);
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, const EncodeOptions& options) const {
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 4);
  if (options.add_special && config_.add_bos) out.push_back(config_.bos_id);
  if (options.add_special) out.insert(out.end(), config_.prefix_ids.begin(), config_.prefix_ids.end());
  thread_local std::vector<TextSegment> segments;
  segments.clear();
  added_.split(text, options.parse_special, segments, options.plain_ranges);
  for (const TextSegment& s : segments) {
    if (s.id >= 0) {
      out.push_back(s.id);
    } else {
      encode_text(s.text, s.text.data() == text.data(), out);
    }
  }
  if (options.add_special && config_.add_eos) out.push_back(config_.eos_id);
  return out;
}

void Tokenizer::check_id(int32_t id) const {
  QILIN_CHECK(id >= 0 && id < vocab_size() && (flags_[static_cast<size_t>(id)] & kUsed), "tokenizer",
              "token id {} is not in the vocabulary (size {})", id, vocab_size());
}

const std::string& Tokenizer::token_text(int32_t id) const {
  check_id(id);
  return text_[static_cast<size_t>(id)];
}

const std::string& Tokenizer::token_bytes(int32_t id) const {
  check_id(id);
  return bytes_[static_cast<size_t>(id)];
}

int32_t Tokenizer::token_id(std::string_view text) const noexcept {
  auto it = ids_.find(std::string(text));
  return it == ids_.end() ? -1 : it->second;
}

bool Tokenizer::is_special(int32_t id) const noexcept {
  return id >= 0 && id < vocab_size() && (flags_[static_cast<size_t>(id)] & kSpecial);
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special) const {
  std::string bytes;
  for (int32_t id : ids) {
    check_id(id);
    if (skip_special && is_special(id)) continue;
    bytes += bytes_[static_cast<size_t>(id)];
  }
  if (strip_leading_space_ && !bytes.empty() && bytes.front() == ' ') bytes.erase(0, 1);
  return unicode::to_valid_utf8(bytes);
}

}  // namespace qilin
