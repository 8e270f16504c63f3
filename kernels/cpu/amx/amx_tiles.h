// AMX tile plumbing shared by the amx-level kernels (kernels/cpu/amx/*.cpp): the
// LDTILECFG operand, tile loads/stores the compiler orders against memory, and the
// one configuration they all use. Include only from kernels/cpu/amx/; internal
// linkage throughout. (The OS permission to use the tiles is asked for once, by
// kernels/cpu/isa.cpp, before any level above avx512_bf16 is reported supported.)
#pragma once

#include <immintrin.h>

#include <cstdint>

// GCC 12's AVX-512 headers make "undefined" vectors as `__m512i __Y = __Y;`, which
// -Wmaybe-uninitialized reports inside inlined intrinsics: a false positive.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

// GCC 12's _tile_loadd has no memory operand or clobber, so the compiler could sink
// the stores that fill a tile's memory past the load; these spell the instructions
// with a "memory" clobber. The tile number is pasted into the text: a literal.
#define QILIN_TILE_LOAD(tile, base, stride) \
  __asm__ volatile("tileloadd (%0,%1,1), %%tmm" #tile ::"r"(base), "r"(static_cast<long>(stride)) : "memory")
#define QILIN_TILE_STORE(tile, base, stride) \
  __asm__ volatile("tilestored %%tmm" #tile ", (%0,%1,1)" ::"r"(base), "r"(static_cast<long>(stride)) : "memory")

namespace qilin::cpu {
namespace {

// The 64-byte operand of LDTILECFG (palette 1); unused tiles stay 0 x 0.
struct TileConfig {
  uint8_t palette = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};
static_assert(sizeof(TileConfig) == 64);

inline void load_tile_config(const TileConfig& c) {
  // Not _tile_loadconfig: GCC 12 declares its operand as 8 bytes, so the compiler may
  // drop the stores to the rest of the configuration (it did: #GP on ldtilecfg).
  __asm__ volatile("ldtilecfg %0" ::"m"(c));
}

constexpr int kTile = 16;  // rows of every tile; also the f32 columns of a C tile

// All 8 tiles 16 rows of 64 bytes: for TDPBF16PS, A = 16 rows × 32 bf16 of K,
// B = 16 pairs of K × 16 columns, C = 16 × 16 f32.
inline void configure_full_tiles() {
  TileConfig c;
  for (int t = 0; t < 8; ++t) {
    c.colsb[t] = 64;
    c.rows[t] = kTile;
  }
  load_tile_config(c);
}

// Transposes 16 rows of 16 dwords in place: r[c] becomes element c of every row.
// A dword is a pair of bf16 neighbours along K, so rows of a matrix become a B tile's
// pair rows (the weight panels of gemm_amx_bf16.cpp, the keys of the attention kernel).
inline void transpose_16x16(__m512i r[16]) {
  __m512i t[16], u[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
  }
  // u[4i + q], 128-bit lane L: element 4L + q of rows 4i .. 4i + 3.
  for (int i = 0; i < 4; ++i) {
    u[4 * i] = _mm512_unpacklo_epi64(t[4 * i], t[4 * i + 2]);
    u[4 * i + 1] = _mm512_unpackhi_epi64(t[4 * i], t[4 * i + 2]);
    u[4 * i + 2] = _mm512_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
    u[4 * i + 3] = _mm512_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
  }
  for (int q = 0; q < 4; ++q) {
    const __m512i lo_a = _mm512_shuffle_i32x4(u[q], u[4 + q], 0x44), hi_a = _mm512_shuffle_i32x4(u[q], u[4 + q], 0xee);
    const __m512i lo_b = _mm512_shuffle_i32x4(u[8 + q], u[12 + q], 0x44);
    const __m512i hi_b = _mm512_shuffle_i32x4(u[8 + q], u[12 + q], 0xee);
    r[q] = _mm512_shuffle_i32x4(lo_a, lo_b, 0x88);
    r[4 + q] = _mm512_shuffle_i32x4(lo_a, lo_b, 0xdd);
    r[8 + q] = _mm512_shuffle_i32x4(hi_a, hi_b, 0x88);
    r[12 + q] = _mm512_shuffle_i32x4(hi_a, hi_b, 0xdd);
  }
}

}  // namespace
}  // namespace qilin::cpu
