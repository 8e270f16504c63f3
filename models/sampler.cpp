// Sampler: see sampler.h for the chain and the reproducibility contract.
//
// How one sample() call runs (n = vocabulary, k = top_k):
//   copy and sanitise the logits (NaN -> -inf, +inf -> FLT_MAX), apply the
//   penalties to the few tokens in the history, find the max (and argmax for greedy);
//   top-k: a bounded heap of ids; a block of 16 logits none of which beats the heap's
//   worst costs 16 compares and one well-predicted branch, about a cycle per token;
//   no top-k but top-p: exp(l - max) for all n tokens (vectorised), then only tokens
//   heavier than (1-p)/2 of the average mass can be in the nucleus (the lighter ones
//   together weigh less than (1-p)/2 of the total), so only those are gathered, and
//   the nucleus' last token is found by a radix selection on the logit's bits that
//   sums masses per bucket (three passes of 11, 11 and 10 bits, each over the tokens
//   left in the bucket that holds the boundary), never a sort;
//   min-p is a logit cut (logit >= max + log(min_p)); temperature scales what is left
//   and the draw walks the kept tokens in id order with integer cumulative masses.
//
// Probabilities are fixed point: mass = trunc(exp(l - max) * 2^30), a uint32 (float ->
// int32 conversion vectorises; int64 needs AVX-512). The largest token weighs 2^30, a
// vocabulary sums below 2^48 in uint64, and integer sums do not depend on their order.
// A token below 2^-30 (1e-9) of the most likely one is never drawn.
#include "models/sampler.h"

#include <algorithm>
#include <bit>
#include <cfloat>
#include <cmath>
#include <limits>
#include <numeric>

#include "core/error.h"

namespace qilin {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr size_t kBlock = 16;  // logits tested together before the scalar path looks at them

// NaN -> -inf, +inf -> FLT_MAX: every later comparison and subtraction is then defined.
inline float sanitize(float v) { return v != v ? -kInf : std::min(v, FLT_MAX); }

// Copies the sanitised logits from `in` to `out` (which may be `in`) and returns their
// max, kept in kBlock independent lanes: one running max would chain every compare to
// the previous one, and written like this GCC vectorises the loop.
float copy_sanitized_max(const float* in, float* out, size_t n) {
  float lane[kBlock];
  std::fill_n(lane, kBlock, -kInf);
  size_t i = 0;
  for (; i + kBlock <= n; i += kBlock) {
    for (size_t j = 0; j < kBlock; ++j) {
      const float v = sanitize(in[i + j]);
      out[i + j] = v;
      lane[j] = std::max(lane[j], v);
    }
  }
  for (; i < n; ++i) {
    out[i] = sanitize(in[i]);
    lane[0] = std::max(lane[0], out[i]);
  }
  return *std::max_element(lane, lane + kBlock);
}

// exp(x) for x <= 0 (Cephes expf: Cody-Waite reduction, degree-6 polynomial, about
// 1 ulp). Our own so that a seed draws the same tokens with any libm. Below -87
// (exp < 2^-125, and -inf) it returns 0. The clamp and the zeroing are integer masks:
// written as float selects, GCC turns them into branches (it folds the polynomial for
// the constant -87) that it may not if-convert under -ftrapping-math, and the loops
// over the vocabulary stop vectorising.
inline float exp_nonpositive(float x) {
  const uint32_t bits = std::bit_cast<uint32_t>(x);
  const uint32_t low = std::bit_cast<uint32_t>(-87.0f);
  // For x <= 0 the bits grow with the magnitude: keep is all ones unless x < -87.
  const uint32_t keep = 0u - static_cast<uint32_t>(bits <= low);
  x = std::bit_cast<float>((bits & keep) | (low & ~keep));
  const float shifter = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  const float n = (x * 1.44269504088896341f + shifter) - shifter;
  const float r = (x - n * 0.693359375f) - n * -2.12194440e-4f;
  const float z = r * r;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float e = p * z + r + 1.0f;
  const float scale = std::bit_cast<float>((static_cast<int32_t>(n) + 127) << 23);
  return std::bit_cast<float>(std::bit_cast<uint32_t>(e * scale) & keep);
}

// trunc(w * 2^30) for w in [0, 1].
inline uint32_t to_fixed(float w) { return static_cast<uint32_t>(static_cast<int32_t>(w * 1073741824.0f)); }

// A key whose ascending order is the descending order of the (sanitised) logit; -0
// and +0 compare equal, so they get the same key.
inline uint32_t rank_key(float logit) {
  uint32_t u = std::bit_cast<uint32_t>(logit);
  u = u == 0x80000000u ? 0 : u;
  return (u & 0x80000000u) ? u : ~(u | 0x80000000u);
}

// The chain's order: higher logit first, then lower id (a strict total order, so "the
// k best" and "the smallest prefix" are unique sets).
inline bool ranks_before(float la, int32_t a, float lb, int32_t b) { return la > lb || (la == lb && a < b); }

// Keeps the tokens with logit >= min_logit (and mass >= min_mass) as candidates, in id
// order. kWithMass: mass[t] holds token t's mass and is compacted in place (a write
// index never passes the read index). Blocks with no such token are skipped after one
// branch; in the others every token is written and the count advances only for those
// kept (no branch to mispredict when about half are kept).
template <bool kWithMass>
size_t gather(const float* l, size_t n, float min_logit, uint32_t min_mass, float* logit, int32_t* id, uint32_t* mass) {
  size_t count = 0;
  const auto take = [&](size_t t) {
    const bool keep = (l[t] >= min_logit) & (!kWithMass || mass[t] >= min_mass);
    const uint32_t m = kWithMass ? mass[t] : 0;
    logit[count] = l[t];
    id[count] = static_cast<int32_t>(t);
    mass[count] = m;
    count += keep;
  };
  size_t i = 0;
  for (; i + kBlock <= n; i += kBlock) {
    int any = 0;
    for (size_t j = 0; j < kBlock; ++j) any |= (l[i + j] >= min_logit) & (!kWithMass || mass[i + j] >= min_mass);
    if (any)
      for (size_t j = 0; j < kBlock; ++j) take(i + j);
  }
  for (; i < n; ++i) take(i);
  return count;
}

uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

}  // namespace

void validate(const SamplerOptions& o) {
  QILIN_CHECK(std::isfinite(o.temperature), "sampler", "temperature is {}, not a finite number", o.temperature);
  QILIN_CHECK(o.top_p >= 0.0f && o.top_p <= 1.0f, "sampler", "top_p is {} but must be in [0, 1]", o.top_p);
  QILIN_CHECK(o.min_p >= 0.0f && o.min_p <= 1.0f, "sampler", "min_p is {} but must be in [0, 1]", o.min_p);
  QILIN_CHECK(std::isfinite(o.repeat_penalty) && o.repeat_penalty > 0.0f, "sampler",
              "repeat_penalty is {} but must be a finite number > 0", o.repeat_penalty);
  QILIN_CHECK(o.repeat_last_n >= -1, "sampler", "repeat_last_n is {} but must be >= -1 (-1: all tokens)",
              o.repeat_last_n);
  QILIN_CHECK(std::isfinite(o.presence_penalty) && std::isfinite(o.frequency_penalty), "sampler",
              "presence_penalty {} and frequency_penalty {} must be finite", o.presence_penalty, o.frequency_penalty);
}

Sampler::Sampler(int32_t vocab_size, SamplerOptions options) : vocab_size_(vocab_size), options_(options) {
  QILIN_CHECK(vocab_size > 0, "sampler", "vocab_size is {} but must be > 0", vocab_size);
  validate(options_);
  // log() once here: the min-p cut is the only use of libm, and a 1-ulp difference
  // between libms could only move a token whose logit sits exactly on the cut.
  if (options_.min_p > 0.0f) log_min_p_ = static_cast<float>(std::log(double{options_.min_p}));
  const size_t n = static_cast<size_t>(vocab_size);
  counts_.assign(n, 0);
  active_pos_.assign(n, -1);
  active_.reserve(n);
  if (options_.repeat_last_n > 0) window_.reserve(std::min<size_t>(options_.repeat_last_n, size_t{1} << 16));
  logits_.resize(n);
  cand_logit_.resize(n);
  cand_id_.resize(n);
  cand_mass_.resize(n);
  scratch_logit_.resize(n);
  scratch_id_.resize(n);
  scratch_mass_.resize(n);
  histogram_.resize(size_t{1} << 11);
  reset();
}

void Sampler::reset() {
  for (int32_t t : active_) {
    counts_[t] = 0;
    active_pos_[t] = -1;
  }
  active_.clear();
  window_.clear();
  window_head_ = 0;
  uint64_t s = options_.seed;
  for (uint64_t& word : rng_) word = splitmix64(s);
}

// xoshiro256** (Blackman & Vigna): fast, 256 bits of state, the same stream everywhere.
uint64_t Sampler::next_random() noexcept {
  const uint64_t result = std::rotl(rng_[1] * 5, 7) * 9;
  const uint64_t t = rng_[1] << 17;
  rng_[2] ^= rng_[0];
  rng_[3] ^= rng_[1];
  rng_[1] ^= rng_[2];
  rng_[0] ^= rng_[3];
  rng_[2] ^= t;
  rng_[3] = std::rotl(rng_[3], 45);
  return result;
}

bool Sampler::penalties_active() const noexcept {
  const SamplerOptions& o = options_;
  return o.repeat_last_n != 0 &&
         (o.repeat_penalty != 1.0f || o.presence_penalty != 0.0f || o.frequency_penalty != 0.0f);
}

void Sampler::accept(int32_t token) {
  QILIN_CHECK(token >= 0 && token < vocab_size_, "sampler", "accepted token {} is outside the vocabulary of {}", token,
              vocab_size_);
  const int32_t last_n = options_.repeat_last_n;
  if (last_n == 0) return;
  if (last_n > 0 && window_.size() == static_cast<size_t>(last_n)) {
    // The window is full: the oldest token leaves it.
    const int32_t old = window_[window_head_];
    if (--counts_[old] == 0) {
      const int32_t pos = active_pos_[old];
      active_[pos] = active_.back();
      active_pos_[active_[pos]] = pos;
      active_.pop_back();
      active_pos_[old] = -1;
    }
    window_[window_head_] = token;
    window_head_ = (window_head_ + 1) % window_.size();
  } else if (last_n > 0) {
    window_.push_back(token);
  }
  if (counts_[token]++ == 0) {
    active_pos_[token] = static_cast<int32_t>(active_.size());
    active_.push_back(token);
  }
}

void Sampler::apply_penalties(std::span<float> logits) const {
  QILIN_CHECK(logits.size() == static_cast<size_t>(vocab_size_), "sampler",
              "logits have {} entries but the vocabulary has {}", logits.size(), vocab_size_);
  if (!penalties_active()) return;
  const SamplerOptions& o = options_;
  for (int32_t t : active_) {
    float& x = logits[t];
    // Dividing a negative logit would make the token more likely (llama.cpp, HF).
    x = x > 0.0f ? x / o.repeat_penalty : x * o.repeat_penalty;
    x -= static_cast<float>(counts_[t]) * o.frequency_penalty + o.presence_penalty;
  }
}

int32_t Sampler::sample(std::span<const float> logits) {
  QILIN_CHECK(logits.size() == static_cast<size_t>(vocab_size_), "sampler",
              "logits have {} entries but the vocabulary has {}", logits.size(), vocab_size_);
  float* l = logits_.data();
  const size_t n = logits_.size();
  float max_logit = copy_sanitized_max(logits.data(), l, n);
  if (penalties_active()) {
    apply_penalties(logits_);
    for (int32_t t : active_) l[t] = sanitize(l[t]);  // x / p or x * p may overflow
    max_logit = copy_sanitized_max(l, l, n);          // a penalised token may have been the max
  }
  QILIN_CHECK(max_logit > -kInf, "sampler", "all {} logits are -inf or NaN", n);
  if (options_.temperature <= 0.0f || options_.top_k == 1) {
    size_t argmax = 0;  // the first maximum: ties go to the lowest id
    while (l[argmax] != max_logit) ++argmax;
    return static_cast<int32_t>(argmax);
  }
  return draw(max_logit);
}

// The top-k set of the sanitised logits into the candidates, in id order, with masses.
size_t Sampler::gather_top_k(size_t k, float max_logit) {
  const float* l = logits_.data();
  const size_t n = logits_.size();
  int32_t* heap = scratch_id_.data();  // a max-heap on rank: heap[0] is the worst kept
  const auto worse = [l](int32_t a, int32_t b) { return ranks_before(l[a], a, l[b], b); };
  size_t size = 0, i = 0;
  for (; i < n && size < k; ++i) {
    if (l[i] == -kInf) continue;
    heap[size++] = static_cast<int32_t>(i);
    std::push_heap(heap, heap + size, worse);
  }
  float worst = size == k ? l[heap[0]] : kInf;
  // ids ascend, so a logit equal to the worst one ranks after it: only > replaces.
  const auto consider = [&](size_t t) {
    if (l[t] > worst) {
      std::pop_heap(heap, heap + size, worse);
      heap[size - 1] = static_cast<int32_t>(t);
      std::push_heap(heap, heap + size, worse);
      worst = l[heap[0]];
    }
  };
  for (; i < n && i % kBlock != 0; ++i) consider(i);
  for (; i + kBlock <= n; i += kBlock) {
    int any = 0;
    for (size_t j = 0; j < kBlock; ++j) any |= l[i + j] > worst;
    if (any)
      for (size_t j = 0; j < kBlock; ++j) consider(i + j);
  }
  for (; i < n; ++i) consider(i);

  std::copy(heap, heap + size, cand_id_.data());
  std::sort(cand_id_.data(), cand_id_.data() + size);
  for (size_t c = 0; c < size; ++c) {
    cand_logit_[c] = l[cand_id_[c]];
    cand_mass_[c] = to_fixed(exp_nonpositive(cand_logit_[c] - max_logit));
  }
  return size;
}

// The id of the last token of the smallest rank prefix of the n candidates whose mass
// reaches `target` (the caller checked that their total does).
int32_t Sampler::nucleus_end(size_t n, uint64_t target) {
  const float* logit = cand_logit_.data();
  const int32_t* id = cand_id_.data();
  const uint32_t* mass = cand_mass_.data();
  uint64_t before = 0;  // mass of the candidates ranked before those still considered
  if (n <= 64) {        // few (top-k's): sorting them is cheaper than clearing histograms
    int32_t* order = scratch_id_.data();
    std::iota(order, order + n, 0);
    std::sort(order, order + n, [&](int32_t a, int32_t b) { return ranks_before(logit[a], id[a], logit[b], id[b]); });
    for (size_t i = 0; i < n; ++i) {
      before += mass[order[i]];
      if (before >= target) return id[order[i]];
    }
    return id[order[n - 1]];
  }
  // Radix selection on rank_key, most significant bits first: sum the masses per
  // bucket, find the bucket where the running sum reaches the target, keep only its
  // candidates (still in id order) for the next bits.
  float* s_logit = scratch_logit_.data();
  int32_t* s_id = scratch_id_.data();
  uint32_t* s_mass = scratch_mass_.data();
  uint64_t* hist = histogram_.data();
  constexpr int kShift[3] = {21, 10, 0};
  constexpr uint32_t kMask[3] = {0x7ff, 0x7ff, 0x3ff};
  for (int pass = 0; pass < 3; ++pass) {
    const int shift = kShift[pass];
    const uint32_t mask = kMask[pass];
    std::fill_n(hist, mask + 1, uint64_t{0});
    for (size_t i = 0; i < n; ++i) hist[(rank_key(logit[i]) >> shift) & mask] += mass[i];
    uint32_t bucket = 0;
    while (before + hist[bucket] < target) before += hist[bucket++];
    size_t kept = 0;
    for (size_t i = 0; i < n; ++i) {  // branch-free, as in gather()
      const float li = logit[i];
      const int32_t ii = id[i];
      const uint32_t mi = mass[i];
      s_logit[kept] = li;
      s_id[kept] = ii;
      s_mass[kept] = mi;
      kept += ((rank_key(li) >> shift) & mask) == bucket;
    }
    logit = s_logit;
    id = s_id;
    mass = s_mass;
    n = kept;
  }
  // All left have the same logit; ties rank by id, the order they are in.
  for (size_t i = 0; i < n; ++i) {
    before += mass[i];
    if (before >= target) return id[i];
  }
  return id[n - 1];
}

int32_t Sampler::draw(float max_logit) {
  const SamplerOptions& o = options_;
  const size_t vocab = logits_.size();
  float* logit = cand_logit_.data();
  int32_t* id = cand_id_.data();
  uint32_t* mass = cand_mass_.data();
  // min-p keeps p >= min_p * p_max, i.e. logit >= max + log(min_p). It follows top-p in
  // the chain, but both keep a prefix of the rank order, so the result is their
  // intersection and the cut can come first; it does not change top-p's total.
  const float min_logit = o.min_p > 0.0f ? std::max(max_logit + log_min_p_, -FLT_MAX) : -FLT_MAX;
  const bool top_p = o.top_p < 1.0f;
  size_t n = 0;
  uint64_t total = 0;  // mass of the top-k set: top-p's fraction is of this
  if (o.top_k > 0 && static_cast<size_t>(o.top_k) < vocab) {
    n = gather_top_k(static_cast<size_t>(o.top_k), max_logit);
    size_t kept = 0;
    for (size_t i = 0; i < n; ++i) {
      total += mass[i];
      if (logit[i] >= min_logit) {
        logit[kept] = logit[i];
        id[kept] = id[i];
        mass[kept] = mass[i];
        ++kept;
      }
    }
    n = kept;
  } else if (top_p) {
    const float* l = logits_.data();
    for (size_t i = 0; i < vocab; ++i) mass[i] = to_fixed(exp_nonpositive(l[i] - max_logit));
    for (size_t i = 0; i < vocab; ++i) total += mass[i];
    // Tokens lighter than this weigh less than (1-p)/2 of the total together, so the
    // rest reaches p of it and holds the whole nucleus.
    const double min_mass = std::floor(static_cast<double>(total) * (1.0 - double{o.top_p}) / (2.0 * vocab));
    n = gather<true>(l, vocab, min_logit, static_cast<uint32_t>(min_mass), logit, id, mass);
  } else {
    n = gather<false>(logits_.data(), vocab, min_logit, 0, logit, id, mass);
  }

  // top-p: the smallest rank prefix whose mass reaches p of the total. If min-p left
  // less than that, min-p's set is the shorter prefix and is kept whole.
  float end_logit = -kInf;  // keep the candidates ranked up to (end_logit, end_id)
  int32_t end_id = std::numeric_limits<int32_t>::max();
  if (top_p) {
    // At least 1, so that the boundary is a token with mass (top_p = 0: the argmax).
    const uint64_t target =
        std::max<uint64_t>(1, static_cast<uint64_t>(std::ceil(double{o.top_p} * static_cast<double>(total))));
    uint64_t kept_mass = 0;
    for (size_t i = 0; i < n; ++i) kept_mass += mass[i];
    if (kept_mass >= target) {
      end_id = nucleus_end(n, target);
      end_logit = logits_[end_id];
    }
  }

  // Temperature, then the draw over the kept candidates in id order.
  const float temperature = o.temperature;
  for (size_t i = 0; i < n; ++i) {
    const bool kept = (logit[i] > end_logit) | ((logit[i] == end_logit) & (id[i] <= end_id));
    const uint32_t m = to_fixed(exp_nonpositive((logit[i] - max_logit) / temperature));
    mass[i] = m & (0u - static_cast<uint32_t>(kept));  // a mask, not a select: see exp_nonpositive
  }
  uint64_t sum = 0;  // >= 2^30: the argmax is always kept and weighs exp(0)
  for (size_t i = 0; i < n; ++i) sum += mass[i];
  const double u = static_cast<double>(next_random() >> 11) * 0x1.0p-53;  // [0, 1), 53 bits
  const uint64_t r = std::min(static_cast<uint64_t>(u * static_cast<double>(sum)), sum - 1);
  uint64_t cum = 0;
  for (size_t i = 0; i < n; ++i) {
    cum += mass[i];
    if (r < cum) return id[i];
  }
  return id[n - 1];  // not reached: cum ends at sum > r
}

}  // namespace qilin
