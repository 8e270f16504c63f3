// f16/bf16 conversions and the GGUF block formats against golden data made by
// the gguf Python package and ggml (tests/data/make_quant_fixtures.py).
// Quantized bytes and dequantized floats must match bit for bit: the whole
// point of the reference quantizers is that files match llama.cpp's.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/half.h"

using namespace qilin;

namespace {

std::vector<uint8_t> read_fixture(const std::string& name) {
  const std::string path = std::string(QILIN_TEST_DATA_DIR) + "/quant/" + name;
  std::ifstream f(path, std::ios::binary);
  INFO("fixture " << path);
  REQUIRE(f.good());
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

std::vector<float> read_f32(const std::string& name) {
  const std::vector<uint8_t> bytes = read_fixture(name);
  std::vector<float> v(bytes.size() / sizeof(float));
  std::memcpy(v.data(), bytes.data(), v.size() * sizeof(float));
  return v;
}

// First index where two float arrays differ bitwise (so -0 vs +0 and NaN payloads count), or -1.
int64_t first_bit_mismatch(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (f32_to_bits(a[i]) != f32_to_bits(b[i])) return static_cast<int64_t>(i);
  }
  return -1;
}

// Pairs (uint32 f32 bits, uint16 expected bits) written by the fixture script.
struct RoundCase {
  uint32_t f;
  uint16_t h;
};
std::vector<RoundCase> read_round_cases(const std::string& name) {
  const std::vector<uint8_t> bytes = read_fixture(name);
  REQUIRE(bytes.size() % 6 == 0);
  std::vector<RoundCase> cases(bytes.size() / 6);
  for (size_t i = 0; i < cases.size(); ++i) {
    std::memcpy(&cases[i].f, &bytes[6 * i], 4);
    std::memcpy(&cases[i].h, &bytes[6 * i + 4], 2);
  }
  return cases;
}

// Value of an f16 bit pattern computed independently of half.h (double arithmetic).
double f16_value(uint16_t h) {
  const int sign = h >> 15, exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
  const double mag = exp == 0 ? std::ldexp(mant, -24) : std::ldexp(1024 + mant, exp - 25);
  return sign ? -mag : mag;
}

constexpr int kRows = 4, kCols = 512;  // shape of input.f32

}  // namespace

TEST_CASE("half: every f16 converts to its exact value and back", "[quant]") {
  for (uint32_t h = 0; h < 65536; ++h) {
    const auto h16 = static_cast<uint16_t>(h);
    const float f = f16_to_f32(h16);
    const bool is_nan = ((h16 >> 10) & 0x1f) == 0x1f && (h16 & 0x3ff) != 0;
    const bool is_inf = ((h16 >> 10) & 0x1f) == 0x1f && (h16 & 0x3ff) == 0;
    INFO("f16 bits 0x" << std::hex << h);
    if (is_nan) {
      REQUIRE(std::isnan(f));
      REQUIRE(std::isnan(f16_to_f32(f32_to_f16(f))));  // NaN stays NaN (payload is not specified)
      continue;
    }
    if (is_inf) {
      REQUIRE(std::isinf(f));
    } else {
      REQUIRE(static_cast<double>(f) == f16_value(h16));
    }
    REQUIRE(std::signbit(f) == ((h16 & 0x8000) != 0));
    REQUIRE(f32_to_f16(f) == h16);
  }
}

TEST_CASE("half: f32 -> f16 rounds like numpy on tricky values", "[quant]") {
  const std::vector<RoundCase> cases = read_round_cases("f16_round.bin");
  REQUIRE(cases.size() > 500);
  for (const RoundCase& c : cases) {
    INFO("f32 bits 0x" << std::hex << c.f << " expected f16 0x" << c.h);
    REQUIRE(f32_to_f16(bits_to_f32(c.f)) == c.h);
  }
}

TEST_CASE("half: f32 -> f16 is round-to-nearest-even on a dense sweep", "[quant]") {
  // Every 4099th f32 bit pattern (about a million values, all binades): the result
  // must be at least as close as its neighbours, ties going to the even pattern.
  for (uint64_t bits = 0; bits < (1ull << 32); bits += 4099) {
    const float f = bits_to_f32(static_cast<uint32_t>(bits));
    if (std::isnan(f)) continue;
    const uint16_t h = f32_to_f16(f);
    INFO("f32 bits 0x" << std::hex << bits << " -> 0x" << h);
    const double x = std::fabs(static_cast<double>(f));
    const uint16_t mag = h & 0x7fff;
    REQUIRE(((h & 0x8000) != 0) == std::signbit(f));
    if (mag == 0x7c00) {  // inf: only when |f| >= 65520, the midpoint of 65504 and 2^16
      REQUIRE(x >= 65520.0);
      continue;
    }
    const double err = std::fabs(f16_value(mag) - x);
    const double up = mag < 0x7bff ? std::fabs(f16_value(static_cast<uint16_t>(mag + 1)) - x) : 1e300;
    const double down = mag > 0 ? std::fabs(f16_value(static_cast<uint16_t>(mag - 1)) - x) : 1e300;
    REQUIRE(err <= up);
    REQUIRE(err <= down);
    if (err == up || err == down) REQUIRE((mag & 1) == 0);
  }
}

TEST_CASE("half: every bf16 converts exactly and back; f32 -> bf16 matches ggml", "[quant]") {
  for (uint32_t b = 0; b < 65536; ++b) {
    const auto b16 = static_cast<uint16_t>(b);
    const float f = bf16_to_f32(b16);
    REQUIRE(f32_to_bits(f) == b << 16);  // bf16 is the top half of an f32, by definition
    if (std::isnan(f)) {
      REQUIRE(std::isnan(bf16_to_f32(f32_to_bf16(f))));
    } else {
      REQUIRE(f32_to_bf16(f) == b16);
    }
  }
  const std::vector<RoundCase> cases = read_round_cases("bf16_round.bin");
  REQUIRE(cases.size() > 500);
  for (const RoundCase& c : cases) {
    INFO("f32 bits 0x" << std::hex << c.f << " expected bf16 0x" << c.h);
    REQUIRE(f32_to_bf16(bits_to_f32(c.f)) == c.h);
  }
}

TEST_CASE("quant: block sizes match the GGUF specification", "[quant]") {
  struct Expect {
    DType t;
    int64_t block;
    size_t bytes;
    uint32_t gguf;
  };
  for (const Expect& e :
       {Expect{DType::q8_0, 32, 34, 8}, Expect{DType::q4_0, 32, 18, 2}, Expect{DType::q4_1, 32, 20, 3},
        Expect{DType::q4_k, 256, 144, 12}, Expect{DType::q6_k, 256, 210, 14}}) {
    REQUIRE(traits(e.t).block_size == e.block);
    REQUIRE(traits(e.t).block_bytes == e.bytes);
    REQUIRE(traits(e.t).gguf_type == e.gguf);
  }
}

TEST_CASE("quant: quantize and dequantize match gguf/ggml byte for byte", "[quant]") {
  const std::vector<float> input = read_f32("input.f32");
  REQUIRE(input.size() == static_cast<size_t>(kRows * kCols));
  for (DType t : {DType::q8_0, DType::q4_0, DType::q4_1, DType::q4_k, DType::q6_k}) {
    const DTypeTraits& tr = traits(t);
    const std::string name(tr.name);
    SECTION(name) {
      const std::vector<uint8_t> golden = read_fixture(name + ".bin");
      const size_t row_size = row_bytes(t, kCols);
      REQUIRE(golden.size() == kRows * row_size);
      std::vector<uint8_t> q(golden.size());
      for (int r = 0; r < kRows; ++r) tr.from_float(input.data() + r * kCols, q.data() + r * row_size, kCols);
      for (size_t i = 0; i < q.size(); ++i) {
        INFO(name << ": byte " << i << " (block " << i / tr.block_bytes << ", offset " << i % tr.block_bytes << ")");
        REQUIRE(static_cast<int>(q[i]) == static_cast<int>(golden[i]));
      }
      const std::vector<float> expected = read_f32(name + ".deq.f32");
      std::vector<float> deq(input.size());
      tr.to_float(golden.data(), deq.data(), kRows * kCols);
      const int64_t bad = first_bit_mismatch(deq, expected);
      INFO(name << ": first mismatching element " << bad);
      REQUIRE(bad == -1);
    }
  }
}

TEST_CASE("quant: dequantizing random valid blocks matches gguf exactly", "[quant]") {
  // Random bytes cover scale/min bit patterns (the 6-bit packed Q4_K scales, negative
  // Q6_K scales) that quantizing real data seldom produces.
  for (DType t : {DType::q8_0, DType::q4_0, DType::q4_1, DType::q4_k, DType::q6_k}) {
    const DTypeTraits& tr = traits(t);
    const std::string name(tr.name);
    const std::vector<uint8_t> blocks = read_fixture(name + "_blocks.bin");
    const std::vector<float> expected = read_f32(name + "_blocks.deq.f32");
    REQUIRE(blocks.size() % tr.block_bytes == 0);
    const auto n = static_cast<int64_t>(blocks.size() / tr.block_bytes) * tr.block_size;
    REQUIRE(expected.size() == static_cast<size_t>(n));
    std::vector<float> deq(expected.size());
    tr.to_float(blocks.data(), deq.data(), n);
    const int64_t bad = first_bit_mismatch(deq, expected);
    INFO(name << ": first mismatching element " << bad);
    REQUIRE(bad == -1);
  }
}

TEST_CASE("quant: round-trip error stays within each format's bound", "[quant]") {
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  constexpr int64_t kN = 256 * 64;
  std::vector<float> x(kN), y(kN);
  for (float& v : x) v = normal(rng) * 0.02f;
  for (int i = 0; i < 256; ++i) x[static_cast<size_t>(i)] = 0.0f;  // an all-zero super-block
  x[1000] = 0.9f;                                                  // an outlier

  for (DType t : {DType::q8_0, DType::q4_0, DType::q4_1, DType::q4_k, DType::q6_k}) {
    const DTypeTraits& tr = traits(t);
    std::vector<uint8_t> q(row_bytes(t, kN));
    tr.from_float(x.data(), q.data(), kN);
    tr.to_float(q.data(), y.data(), kN);
    INFO(tr.name);
    REQUIRE(std::all_of(y.begin(), y.begin() + 256, [](float v) { return v == 0.0f; }));  // zeros stay exact
    for (int64_t b = 0; b < kN / 32; ++b) {
      const float* xb = x.data() + b * 32;
      const float* yb = y.data() + b * 32;
      float amax = 0.0f, mn = xb[0], mx = xb[0];
      for (int j = 0; j < 32; ++j) {
        amax = std::max(amax, std::fabs(xb[j]));
        mn = std::min(mn, xb[j]);
        mx = std::max(mx, xb[j]);
      }
      float bound;
      if (t == DType::q8_0) {
        bound = 0.57f * amax / 127.0f;  // half a step (amax/127), plus 127 steps of the f16 scale's 2^-11 error
      } else if (t == DType::q4_0) {
        bound = 1.01f * amax / 8.0f;  // the value opposite the max clips from +8 to +7: one full step amax/8
      } else if (t == DType::q4_1) {
        // half a step (range/15), 15 steps of f16 scale error, and the f16 rounding of the min
        bound = 0.51f * (mx - mn) / 15.0f + std::fabs(mn) * 0x1p-11f + 1e-7f;
      } else {
        continue;  // k-quants: least-squares scales have no per-element bound; checked by RMS below
      }
      for (int j = 0; j < 32; ++j) REQUIRE(std::fabs(yb[j] - xb[j]) <= bound);
    }
    // Relative RMS error over the Gaussian part. Expected for uniform rounding of a
    // Gaussian to 2^bits levels over about +-3.5 sigma: 4 bits ~0.13, 6 bits ~0.03, 8 bits ~0.008;
    // the bounds leave headroom for scale rounding.
    double err2 = 0.0, sig2 = 0.0;
    for (int64_t i = 512; i < kN; ++i) {
      if (i >= 992 && i < 1024) continue;  // the outlier's block
      err2 += static_cast<double>(y[i] - x[i]) * (y[i] - x[i]);
      sig2 += static_cast<double>(x[i]) * x[i];
    }
    const double rel = std::sqrt(err2 / sig2);
    const double max_rel = t == DType::q8_0 ? 0.01 : t == DType::q6_k ? 0.04 : 0.16;
    INFO("relative RMS error " << rel);
    REQUIRE(rel < max_rel);
    REQUIRE(rel > max_rel / 20);  // a quantizer that stored floats exactly would be a bug here too
  }
}
