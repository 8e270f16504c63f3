// BPE merging with a priority queue of candidate pairs (Hugging Face's
// algorithm: stale candidates are skipped when popped).
#include "models/tokenizer/bpe_model.h"

#include <algorithm>
#include <bit>

#include "models/tokenizer/unicode.h"

namespace qilin {
namespace {

uint64_t pair_key(int32_t left, int32_t right) noexcept {
  return ((static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right)) + 1;
}

uint64_t mix(uint64_t x) noexcept {  // splitmix64 finaliser
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

struct Symbol {
  int32_t id;
  int32_t prev, next;  // -1 at the ends
  uint32_t len;        // bytes; 0 once merged into its left neighbour
};

struct Candidate {
  int32_t rank, pos, merged;
  bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
};

}  // namespace

BpeModel::BpeModel(std::span<const std::string> tokens, std::span<const uint8_t> is_byte_token,
                   std::span<const std::pair<int32_t, int32_t>> merges, Options options)
    : options_(options) {
  std::fill(std::begin(byte_token_), std::end(byte_token_), -1);
  ids_.reserve(tokens.size());
  for (size_t id = 0; id < tokens.size(); ++id) {
    const std::string& t = tokens[id];
    if (t.empty()) continue;
    const bool byte = id < is_byte_token.size() && is_byte_token[id] != 0;
    if (byte || (options.initial == Symbols::bytes && t.size() == 1)) {
      int32_t& slot = byte_token_[static_cast<unsigned char>(t[0])];
      if (slot < 0) slot = static_cast<int32_t>(id);
    }
    if (!byte) ids_.emplace(t, static_cast<int32_t>(id));  // the first id wins on duplicates
  }
  const size_t capacity = std::bit_ceil(std::max<size_t>(16, merges.size() * 2));
  merge_keys_.assign(capacity, 0);
  merge_values_.resize(capacity);
  merge_mask_ = capacity - 1;
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const auto [left, right] = merges[rank];
    const std::string merged = tokens[static_cast<size_t>(left)] + tokens[static_cast<size_t>(right)];
    const int32_t merged_id = find(merged);
    if (merged_id < 0) continue;  // a merge whose result is not a token can never apply
    const uint64_t key = pair_key(left, right);
    for (uint64_t slot = mix(key) & merge_mask_;; slot = (slot + 1) & merge_mask_) {
      if (merge_keys_[slot] == key) break;  // duplicate pair: the lower rank stays
      if (merge_keys_[slot] == 0) {
        merge_keys_[slot] = key;
        merge_values_[slot] = {static_cast<int32_t>(rank), merged_id};
        break;
      }
    }
  }
}

int32_t BpeModel::find(std::string_view bytes) const {
  auto it = ids_.find(bytes);
  return it == ids_.end() ? -1 : it->second;
}

const BpeModel::Merge* BpeModel::find_merge(int32_t left, int32_t right) const noexcept {
  const uint64_t key = pair_key(left, right);
  for (uint64_t slot = mix(key) & merge_mask_;; slot = (slot + 1) & merge_mask_) {
    if (merge_keys_[slot] == key) return &merge_values_[slot];
    if (merge_keys_[slot] == 0) return nullptr;
  }
}

void BpeModel::initial_symbols(std::string_view word, std::vector<int32_t>& ids, std::vector<uint32_t>& lens) const {
  if (options_.initial == Symbols::bytes) {
    for (char c : word) {
      const int32_t id = byte_token_[static_cast<unsigned char>(c)];
      if (id >= 0) {
        ids.push_back(id);
        lens.push_back(1);
      } else if (options_.unk_id >= 0) {
        ids.push_back(options_.unk_id);
        lens.push_back(1);
      }
    }
    return;
  }
  bool last_unk = false;
  for (const char* p = word.data(); p < word.data() + word.size();) {
    const uint32_t len = unicode::decode_utf8(p, word.data() + word.size()).len;
    const std::string_view ch(p, len);
    p += len;
    if (const int32_t id = find(ch); id >= 0) {
      ids.push_back(id);
      lens.push_back(len);
      last_unk = false;
      continue;
    }
    const bool all_bytes = options_.byte_fallback && std::all_of(ch.begin(), ch.end(), [&](char c) {
                             return byte_token_[static_cast<unsigned char>(c)] >= 0;
                           });
    if (all_bytes) {
      for (char c : ch) {
        ids.push_back(byte_token_[static_cast<unsigned char>(c)]);
        lens.push_back(1);
      }
      last_unk = false;
    } else if (options_.unk_id >= 0) {
      if (last_unk) {
        lens.back() += len;  // fuse_unk
      } else {
        ids.push_back(options_.unk_id);
        lens.push_back(len);
      }
      last_unk = true;
    }
  }
}

void BpeModel::encode(std::string_view word, std::vector<int32_t>& out) const {
  if (word.empty()) return;
  if (options_.ignore_merges) {
    if (const int32_t id = find(word); id >= 0) {
      out.push_back(id);
      return;
    }
  }
  thread_local std::vector<int32_t> ids;
  thread_local std::vector<uint32_t> lens;
  thread_local std::vector<Symbol> symbols;
  thread_local std::vector<Candidate> heap_storage;
  ids.clear();
  lens.clear();
  initial_symbols(word, ids, lens);
  const int32_t n = static_cast<int32_t>(ids.size());
  if (n <= 1) {
    out.insert(out.end(), ids.begin(), ids.end());
    return;
  }
  symbols.resize(static_cast<size_t>(n));
  for (int32_t i = 0; i < n; ++i)
    symbols[static_cast<size_t>(i)] = {ids[static_cast<size_t>(i)], i - 1, i + 1 < n ? i + 1 : -1,
                                       lens[static_cast<size_t>(i)]};

  // A min-heap on (rank, position) kept in a reused vector.
  std::vector<Candidate>& queue = heap_storage;
  queue.clear();
  const auto later = std::greater<>{};
  auto consider = [&](int32_t pos) {
    const Symbol& s = symbols[static_cast<size_t>(pos)];
    if (s.next < 0) return;
    if (const Merge* m = find_merge(s.id, symbols[static_cast<size_t>(s.next)].id)) {
      queue.push_back({m->rank, pos, m->merged});
      std::push_heap(queue.begin(), queue.end(), later);
    }
  };
  for (int32_t i = 0; i + 1 < n; ++i) consider(i);
  while (!queue.empty()) {
    std::pop_heap(queue.begin(), queue.end(), later);
    const Candidate top = queue.back();
    queue.pop_back();
    Symbol& left = symbols[static_cast<size_t>(top.pos)];
    if (left.len == 0 || left.next < 0) continue;
    Symbol& right = symbols[static_cast<size_t>(left.next)];
    const Merge* m = find_merge(left.id, right.id);
    if (!m || m->merged != top.merged) continue;  // stale: a neighbour changed since it was queued
    left.id = top.merged;
    left.len += right.len;
    right.len = 0;
    left.next = right.next;
    if (left.next >= 0) symbols[static_cast<size_t>(left.next)].prev = top.pos;
    if (left.prev >= 0) consider(left.prev);
    consider(top.pos);
  }
  for (int32_t i = 0; i >= 0; i = symbols[static_cast<size_t>(i)].next)
    out.push_back(symbols[static_cast<size_t>(i)].id);
}

}  // namespace qilin
