// Quantized-matmul kernels for many rows at the amx level: TDPBF16PS on x rounded
// to bf16 and each group of 16 weight rows dequantized to bf16 in the thread's
// scratch, in the tiles' pair layout. Sums run on in f32 across all of K.
//
// Why bf16 and not the int8 tiles: AMX-INT8 (TDPBSSD) keeps x's 8-bit blocks and
// exact integer sums, but the block scales (a different one per 32 elements of
// every weight row) stop the tile sums at each block, and scaling each 16 x 16
// block sum in f32 (3 vector instructions per tile row) costs more than the tile
// product itself: on this project's machine it ran 236-330 GOP/s per thread at
// M = 512, barely ahead of vpdpbusd, against 670-830 GFLOP/s here (the kernel is
// in the history, commit b11fa9f; figures in docs/performance.md). The price of
// bf16 is the dequantization (once per group and call, shared by every row of x)
// and the rounding of both operands to bf16 (2^-9 relative each, where the
// integer paths round x to 8-bit blocks).
//
// Tiles 0-3: C for 2 tiles of x rows × 2 groups of weight rows (16 x 16 f32 each);
// 4, 5: A (16 rows of x, 32 bf16 of K); 6, 7: B (16 pairs of K × 16 weight rows).
// Each loaded A and B tile feeds two products.
#include "kernels/cpu/amx/qgemm_amx_common.h"

namespace qilin::cpu {
namespace {

constexpr int64_t kPairsBytesPerK = 32;  // a group's bf16 weights: 16 rows × 2 bytes per element of K

// One quad vector (element 4j + t of the 16 rows in byte t of lane n) as bf16 pair
// rows 2j and 2j + 1 of a B tile: w = a·q + min, rounded to nearest even.
inline void store_pairs(__m512i q, __m512 a, __m512 min, __m512i interleave, uint16_t* out) {
  __m512 w[4];  // element 4j + t of the 16 rows
  w[0] = _mm512_cvtepi32_ps(_mm512_srai_epi32(_mm512_slli_epi32(q, 24), 24));
  w[1] = _mm512_cvtepi32_ps(_mm512_srai_epi32(_mm512_slli_epi32(q, 16), 24));
  w[2] = _mm512_cvtepi32_ps(_mm512_srai_epi32(_mm512_slli_epi32(q, 8), 24));
  w[3] = _mm512_cvtepi32_ps(_mm512_srai_epi32(q, 24));
  for (__m512& v : w) v = _mm512_fmadd_ps(v, a, min);
  // Lane n of a pair row: element 2p of weight row n, then element 2p + 1.
  const __m512i p0 = reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(w[1], w[0]));
  const __m512i p1 = reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(w[3], w[2]));
  _mm512_storeu_si512(out, _mm512_permutexvar_epi16(interleave, p0));
  _mm512_storeu_si512(out + 32, _mm512_permutexvar_epi16(interleave, p1));
}

alignas(64) constexpr uint16_t kInterleave[32] = {0, 16, 1, 17, 2,  18, 3,  19, 4,  20, 5,  21, 6,  22, 7,  23,
                                                  8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31};

// Blocks [b0, b1) of the unpacked int8 group as bf16 B tiles: per 32 elements of K,
// 16 rows of 64 bytes, row p holding elements 2p, 2p + 1 of each of the 16 weight rows.
void dequantize_group(const Unpacked& u, int64_t b0, int64_t b1, uint16_t* dst) {
  const __m512i interleave = _mm512_load_si512(kInterleave);
  for (int64_t b = b0; b < b1; ++b) {
    const __m512 min = _mm512_loadu_ps(u.min + b * kTile);
    for (int j = 0; j < 8; ++j) {
      const __m512 a = _mm512_loadu_ps(u.scale + b * 2 * kTile + (j < 4 ? 0 : kTile));
      const __m512i q = _mm512_loadu_si512(u.quads + b * kBlockBytes + kQuadBytes * j);
      store_pairs(q, a, min, interleave, dst + b * 512 + 2 * j * 32);
    }
  }
}

// The same for Q8_0 straight from the packed group: its quads need only their +128
// removed and every block has one scale and no offset, so it skips the Unpacked copy
// (a 512-byte store and reload per block) that the other formats go through.
void dequantize_q8_0_group(const uint8_t* g, int64_t b0, int64_t b1, uint16_t* dst) {
  const __m512i interleave = _mm512_load_si512(kInterleave);
  const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
  const __m512 zero = _mm512_setzero_ps();
  for (int64_t b = b0; b < b1; ++b) {
    const uint8_t* unit = g + b * qpack_unit_bytes(QFormat::q8_0);
    const __m512 d = f16x16(unit + qpack::kScales);
    for (int j = 0; j < 8; ++j) {
      const __m512i q = _mm512_xor_si512(_mm512_loadu_si512(unit + qpack::kQ8Quants + kQuadBytes * j), flip);
      store_pairs(q, d, zero, interleave, dst + b * 512 + 2 * j * 32);
    }
  }
}

// Writes a C tile (16 x 16 f32, row stride 16) to y rows [i0, i0 + rows), columns [n0, n0 + cols).
void store_partial(const float* c, float* y, int64_t ldy, int64_t rows, int cols) {
  const auto mask = static_cast<__mmask16>((1u << cols) - 1);
  for (int64_t r = 0; r < rows; ++r) _mm512_mask_storeu_ps(y + r * ldy, mask, _mm512_loadu_ps(c + kTile * r));
}

struct Block {
  const QGemmArgs& a;
  const uint16_t* w[2];  // the two groups' bf16 tiles
  int64_t n0[2];
  int valid[2];
  float* spill;     // one C tile, for tiles not wholly inside y
  int64_t s0, s1;   // the pass over K: 32-element steps [s0, s1)
  bool accumulate;  // add to y (a later pass or chunk of K) instead of storing
};

// Tile numbers are immediates in the instructions: one branch per C tile.
template <int T>
void zero_c() {
  if constexpr (T == 0) _tile_zero(0);
  if constexpr (T == 1) _tile_zero(1);
  if constexpr (T == 2) _tile_zero(2);
  if constexpr (T == 3) _tile_zero(3);
}
template <int T>
void load_c_tile(const float* src, int64_t stride) {
  if constexpr (T == 0) QILIN_TILE_LOAD(0, src, stride);
  if constexpr (T == 1) QILIN_TILE_LOAD(1, src, stride);
  if constexpr (T == 2) QILIN_TILE_LOAD(2, src, stride);
  if constexpr (T == 3) QILIN_TILE_LOAD(3, src, stride);
}

// C tile T (x tile T / 2, group T % 2): zero for the first chunk of K, else y's
// partial sums (whole tiles straight from y, a tile cut by y's edge through the spill).
template <int T>
void load_c(const Block& blk, int64_t i0) {
  if (!blk.accumulate) {
    zero_c<T>();
    return;
  }
  const QGemmArgs& a = blk.a;
  const int64_t r0 = i0 + kTile * (T / 2);
  const int64_t rows = a.x.m - r0 < kTile ? a.x.m - r0 : kTile;
  const int valid = blk.valid[T % 2];
  const float* y = a.y + r0 * a.ldy + blk.n0[T % 2];
  if (rows == kTile && valid == kTile) {
    load_c_tile<T>(y, a.ldy * 4);
    return;
  }
  const auto mask = static_cast<__mmask16>((1u << valid) - 1);
  for (int64_t r = 0; r < kTile; ++r) {
    _mm512_storeu_ps(blk.spill + kTile * r,
                     r < rows ? _mm512_maskz_loadu_ps(mask, y + r * a.ldy) : _mm512_setzero_ps());
  }
  load_c_tile<T>(blk.spill, kTile * 4);
}

// y for x rows [i0, i0 + 16·kX) and groups w[0 .. kW), over the block's chunk of K.
template <int kX, int kW>
void tile_product(const Block& blk, int64_t i0) {
  const QGemmArgs& a = blk.a;
  // x's A tiles are contiguous (QuantizedX::xb): 1 KiB apart along K, rows 64 bytes apart.
  const int64_t k = a.x.k;
  const uint16_t* x0 = a.x.xb + xb_tiled_offset(i0, 0, k);
  const uint16_t* x1 = x0 + kTile * k;
  load_c<0>(blk, i0);
  if constexpr (kW == 2) load_c<1>(blk, i0);
  if constexpr (kX == 2) load_c<2>(blk, i0);
  if constexpr (kX == 2 && kW == 2) load_c<3>(blk, i0);
  for (int64_t s = blk.s0; s < blk.s1; ++s) {
    QILIN_TILE_LOAD(4, x0 + 512 * s, 64);
    QILIN_TILE_LOAD(6, blk.w[0] + 512 * s, 64);
    _tile_dpbf16ps(0, 4, 6);
    if constexpr (kW == 2) {
      QILIN_TILE_LOAD(7, blk.w[1] + 512 * s, 64);
      _tile_dpbf16ps(1, 4, 7);
    }
    if constexpr (kX == 2) {
      QILIN_TILE_LOAD(5, x1 + 512 * s, 64);
      _tile_dpbf16ps(2, 5, 6);
      if constexpr (kW == 2) _tile_dpbf16ps(3, 5, 7);
    }
  }
  // Tile t covers x tile t / 2 and group t % 2; whole tiles go straight to y.
  for (int t = 0; t < 4; ++t) {
    const int xt = t / 2, wt = t % 2;
    if (xt >= kX || wt >= kW) continue;
    const int64_t r0 = i0 + kTile * xt;
    const int64_t rows = a.x.m - r0 < kTile ? a.x.m - r0 : kTile;
    if (rows <= 0) continue;
    float* y = a.y + r0 * a.ldy + blk.n0[wt];
    const bool whole = rows == kTile && blk.valid[wt] == kTile;
    float* dst = whole ? y : blk.spill;
    const int64_t stride = whole ? a.ldy * 4 : kTile * 4;
    switch (t) {
      case 0:
        QILIN_TILE_STORE(0, dst, stride);
        break;
      case 1:
        QILIN_TILE_STORE(1, dst, stride);
        break;
      case 2:
        QILIN_TILE_STORE(2, dst, stride);
        break;
      default:
        QILIN_TILE_STORE(3, dst, stride);
        break;
    }
    if (!whole) store_partial(blk.spill, y, a.ldy, rows, blk.valid[wt]);
  }
}

template <int kW>
void x_tiles(const Block& blk) {
  int64_t i0 = 0;
  for (; i0 + kTile < blk.a.x.m; i0 += 2 * kTile) tile_product<2, kW>(blk, i0);  // x rows padded to 16
  if (i0 < blk.a.x.m) tile_product<1, kW>(blk, i0);
}

// Elements of K per chunk: every group pair of the thread's range meets all rows of x
// once per chunk, so x's part of a chunk should stay in L2 (2 MiB here). Without
// chunks a long K streamed all of x from L3 for every pair: Qwen2.5-0.5B's ffn_down
// (K = 4864, 512 rows: 4.9 MB of bf16 x) ran at 1.05 TFLOP/s against ~1.6 for K = 896.
// Multiples of 256 (whole Q4_K/Q6_K super-blocks).
constexpr int64_t kXChunkBytes = int64_t{1} << 20;
int64_t k_chunk(int64_t m, int64_t k) {
  const int64_t rows = (m + kTile - 1) / kTile * kTile;
  int64_t chunk = kXChunkBytes / (2 * rows) / 256 * 256;
  if (chunk < 256) chunk = 256;
  return chunk < k ? chunk : k;
}

// Steps of K (32 elements each) per pass over the chunk's x rows. Each x tile pair reads
// both groups' bf16 tiles for the pass's steps, which should stay in L1 (48 KiB here)
// from one pair to the next: a chunk of 1024 elements (64 KiB of tiles) came from L2
// for every pair, so a chunk longer than kOnePassSteps is cut into equal passes of at
// most kPassSteps (20 KiB). Each pass costs a round trip of the C tiles through y.
// Best of 15 runs at M = 512, 2 threads (bench matmul_quant/amx, q8_0 and q4_0): K = 896
// (3 passes) 1.10-1.15x one pass, and K = 4864 (chunks of 4 passes) 1.10x; K = 576 in 2
// passes was 1.06-1.08x at N = 960 and 1536 but 0.92x at N = 576 (1.1x on 1 thread), so
// chunks of up to 20 steps stay whole. Passes of at most 6 steps: 0.98-1.05x on 1 thread.
constexpr int64_t kPassSteps = 10;
constexpr int64_t kOnePassSteps = 20;

template <QFormat kF>
void qgemm_amx_bf16(const QGemmArgs& a, int64_t n_begin, int64_t n_end) noexcept {
  configure_full_tiles();
  const int64_t k = a.x.k;
  auto* p = static_cast<uint8_t*>(a.scratch);
  Unpacked u;
  p = carve_unpacked(p, k, &u);
  uint16_t* w[2] = {reinterpret_cast<uint16_t*>(p), reinterpret_cast<uint16_t*>(p + kPairsBytesPerK * k)};
  float* spill = reinterpret_cast<float*>(p + 2 * kPairsBytesPerK * k);
  const uint8_t* base = static_cast<const uint8_t*>(a.w);
  const int64_t group_bytes = qpack_group_bytes(kF, k);
  const int64_t g_end = (n_end + kPackRows - 1) / kPackRows;
  const int64_t chunk = k_chunk(a.x.m, k);
  for (int64_t k0 = 0; k0 < k; k0 += chunk) {
    const int64_t b0 = k0 / 32, b1 = (k0 + chunk < k ? k0 + chunk : k) / 32;
    for (int64_t g = n_begin / kPackRows; g < g_end; g += 2) {
      const int groups = g + 1 < g_end ? 2 : 1;
      Block blk{a, {w[0], w[1]}, {0, 0}, {0, 0}, spill, b0, b1, k0 > 0};
      for (int i = 0; i < groups; ++i) {
        if constexpr (kF == QFormat::q8_0) {
          dequantize_q8_0_group(base + (g + i) * group_bytes, b0, b1, w[i]);
        } else {
          unpack_group<kF>(base + (g + i) * group_bytes, b0, b1, u);
          dequantize_group(u, b0, b1, w[i]);
        }
        blk.n0[i] = (g + i) * kPackRows;
        blk.valid[i] = static_cast<int>(n_end - blk.n0[i] < kPackRows ? n_end - blk.n0[i] : kPackRows);
      }
      const int64_t passes = b1 - b0 <= kOnePassSteps ? 1 : (b1 - b0 + kPassSteps - 1) / kPassSteps;
      const int64_t per_pass = (b1 - b0 + passes - 1) / passes;
      for (int64_t s0 = b0; s0 < b1; s0 += per_pass) {
        blk.s0 = s0;
        blk.s1 = s0 + per_pass < b1 ? s0 + per_pass : b1;
        blk.accumulate = k0 > 0 || s0 > b0;
        if (groups == 2) {
          x_tiles<2>(blk);
        } else {
          x_tiles<1>(blk);
        }
      }
    }
  }
  _tile_release();
}

}  // namespace

void fill_qgemm_amx(QGemmTable& t) noexcept {
  static_assert(kXRowPadding % kTile == 0);
  const auto amx = [](QGemmFn fn, const char* name) {
    QGemmKernel kernel{fn, name, kPackRows, true};
    kernel.scratch_per_k = kUnpackedPerK + 2 * kPairsBytesPerK;
    kernel.scratch_fixed = kTile * kTile * sizeof(float) + 64;
    kernel.bf16_x = true;
    return kernel;
  };
  t.large[static_cast<int>(QFormat::q8_0)] = amx(qgemm_amx_bf16<QFormat::q8_0>, "amx q8_0 (tdpbf16ps, dequantized)");
  t.large[static_cast<int>(QFormat::q4_0)] = amx(qgemm_amx_bf16<QFormat::q4_0>, "amx q4_0 (tdpbf16ps, dequantized)");
  t.large[static_cast<int>(QFormat::q4_1)] = amx(qgemm_amx_bf16<QFormat::q4_1>, "amx q4_1 (tdpbf16ps, dequantized)");
  t.large[static_cast<int>(QFormat::q4_k)] = amx(qgemm_amx_bf16<QFormat::q4_k>, "amx q4_k (tdpbf16ps, dequantized)");
  t.large[static_cast<int>(QFormat::q6_k)] = amx(qgemm_amx_bf16<QFormat::q6_k>, "amx q6_k (tdpbf16ps, dequantized)");
  // From these many rows of x the tiles beat vpdpbusd despite dequantizing the whole
  // weight per call (matmul_quant_kernel in bench/bench_matmul_quant.cpp; docs/performance.md).
  for (int64_t& m : t.large_min_m) m = 32;
  t.large_min_m[static_cast<int>(QFormat::q8_0)] = 16;
}

}  // namespace qilin::cpu
