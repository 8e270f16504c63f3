// Float matmul with operands rounded to bf16 at the amx level (GemmTable::gemm_bf16):
// TDPBF16PS on x as the dispatcher rounded it (GemmArgs::xb) and on the weight
// converted to bf16 one panel at a time, as it is read. No copy of the weight
// outlives the call: panels live in this thread's scratch (two of at most 128 KiB),
// and each panel is converted once per call, then multiplied by every row of x.
//
// Loop nest, per thread (its columns [n_begin, n_end) of y):
//   K in chunks (all of K when x is small; else chunks whose part of x fits in L2)
//     N in panels of 32 weight rows, converted to B tiles (the next panel's
//     conversion interleaved with this one's tile products)
//       M in blocks of 32 rows: 2 x 2 C tiles over the chunk's K (stored to y,
//       or added to y's partial sums after the first chunk: f32 round trips exactly)
// so every weight element is converted exactly once per call.
//
// Tiles 0-3: C (2 tiles of x rows × 2 tiles of weight rows, 16 x 16 f32 each);
// 4, 5: A (16 rows of x × 32 bf16 of K); 6, 7: B (16 pairs of K × 16 weight rows).
// Each loaded A and B tile feeds two products.
#include "kernels/cpu/amx/amx_tiles.h"
#include "kernels/cpu/gemm_table.h"

namespace qilin::cpu {
namespace {

constexpr int64_t kPanelRows = 2 * kTile;  // weight rows per panel: two B tiles
constexpr int64_t kStep = 32;              // K per tile product (bf16 per A-tile row)
constexpr int64_t kTileElements = 512;     // bf16 in one A or B tile
constexpr int64_t kMaxChunk = 2048;        // K per chunk at most: panels of 128 KiB
constexpr int64_t kMinChunk = 256;         // K per chunk at least: C round trips stay rare
constexpr int64_t kXChunkBytes = 1 << 20;  // x's part of a chunk, at most (this CPU's L2: 2 MiB)
constexpr size_t kPanelBytes = kPanelRows * kMaxChunk * 2;
constexpr size_t kSpillBytes = kTile * kTile * sizeof(float);

static_assert(kBf16RowPad == kTile && kBf16KPad == kStep, "GemmArgs::xb's padding is this kernel's tiling");

// 32 weights of one row from element k, `count` (1..32) of them real and the rest
// 0, rounded to bf16 (to nearest even; f16 goes through f32, exactly).
template <GemmWeight kW>
__m512i load_bf16_row(const void* row, int64_t k, int64_t count) {
  if constexpr (kW == GemmWeight::f32) {
    const float* p = static_cast<const float*>(row) + k;
    const auto m0 = static_cast<__mmask16>(count >= 16 ? 0xffff : (1u << count) - 1);
    const auto m1 = static_cast<__mmask16>(count >= 32 ? 0xffff : count > 16 ? (1u << (count - 16)) - 1 : 0);
    return reinterpret_cast<__m512i>(
        _mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(m1, p + 16), _mm512_maskz_loadu_ps(m0, p)));
  } else {
    const uint16_t* p = static_cast<const uint16_t*>(row) + k;
    const auto mask = static_cast<__mmask32>(count >= 32 ? 0xffffffffu : (1u << count) - 1);
    const __m512i h = _mm512_maskz_loadu_epi16(mask, p);
    if constexpr (kW == GemmWeight::bf16) return h;
    const __m512 lo = _mm512_cvtph_ps(_mm512_castsi512_si256(h));
    const __m512 hi = _mm512_cvtph_ps(_mm512_extracti64x4_epi64(h, 1));
    return reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(hi, lo));
  }
}

// Converts one panel's chunk of K into B tiles, a few tiles at a time, so that the
// next panel's conversion can run between the current panel's tile products: the
// vector units are idle while the tiles multiply, and vice versa.
//
// The panel is weight rows [n0, n0 + rows) (rows <= 32; missing rows are 0), K from
// k0 for `steps` steps. Tile (s, t) at panel + (2s + t)·512 holds, in row p,
// elements k0 + 32s + 2p and + 1 of weight rows n0 + 16t .. n0 + 16t + 15.
template <GemmWeight kW>
struct PanelConverter {
  const GemmArgs& a;
  int64_t k0 = 0, steps = 0;
  const char* rows_base = nullptr;
  int64_t rows = 0;
  uint16_t* panel = nullptr;
  int64_t done = 0, total = 0;  // tiles converted, of (tiles per step) × steps, in order (t, s)

  PanelConverter(const GemmArgs& args, int64_t chunk_k0, int64_t chunk_steps)
      : a(args), k0(chunk_k0), steps(chunk_steps) {}

  void start(int64_t n0, int64_t n_rows, uint16_t* dst) {
    rows_base = static_cast<const char*>(a.w) + n0 * a.w_stride;
    rows = n_rows;
    panel = dst;
    done = 0;
    total = (rows > kTile ? 2 : 1) * steps;
  }
  void stop() { done = total = 0; }
  int64_t left() const { return total - done; }

  void advance(int64_t count) {
    for (; count > 0 && done < total; --count, ++done) {
      const int64_t t = done / steps, s = done % steps;
      const int64_t k = k0 + s * kStep;
      const int64_t count_k = a.k - k < kStep ? a.k - k : kStep;  // >= 1: only K's last step is short
      __m512i r[kTile];
      for (int j = 0; j < kTile; ++j) {
        const int64_t n = t * kTile + j;
        r[j] = n < rows ? load_bf16_row<kW>(rows_base + n * a.w_stride, k, count_k) : _mm512_setzero_si512();
      }
      transpose_16x16(r);
      uint16_t* dst = panel + (2 * s + t) * kTileElements;
      for (int p = 0; p < kTile; ++p) _mm512_store_si512(dst + 32 * p, r[p]);
    }
  }
  void finish() { advance(left()); }
};

// The tile number must be a literal in the instruction: t is a constant after inlining.
inline void store_c(int t, float* dst, int64_t stride) {
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
}
inline void load_c(int t, const float* src, int64_t stride) {
  switch (t) {
    case 0:
      QILIN_TILE_LOAD(0, src, stride);
      break;
    case 1:
      QILIN_TILE_LOAD(1, src, stride);
      break;
    case 2:
      QILIN_TILE_LOAD(2, src, stride);
      break;
    default:
      QILIN_TILE_LOAD(3, src, stride);
      break;
  }
}

// One panel's chunk against x rows [i0, i0 + 16·kX): C tiles for weight tiles 0 .. kN.
struct Block {
  const GemmArgs& a;
  const uint16_t* panel;
  int64_t n0, cols;  // the panel's first weight row, and how many are real (1..32)
  int64_t k0, steps;
  bool accumulate;  // add to y (a later K chunk) rather than overwrite it
  float* spill;     // one C tile, for tiles not wholly inside y
};

// Also converts `quota` tiles of the next panel, spread over the steps.
template <int kX, int kN, class Converter>
void tile_block(const Block& b, int64_t i0, Converter& next, int64_t quota) {
  const GemmArgs& a = b.a;
  // Tile t covers x tile t / 2 and weight tile t % 2; whole tiles go straight to y.
  auto c_tile = [&](int t, int64_t* rows, int64_t* cols, float** y) {
    const int64_t r0 = i0 + kTile * (t / 2), c0 = kTile * (t % 2);
    *rows = a.m - r0 < kTile ? a.m - r0 : kTile;
    *cols = b.cols - c0 < kTile ? b.cols - c0 : kTile;
    *y = a.y + r0 * a.ldy + b.n0 + c0;
  };
  for (int t = 0; t < 4; ++t) {
    if (t / 2 >= kX || t % 2 >= kN) continue;
    if (!b.accumulate) {
      if (t == 0) _tile_zero(0);
      if (t == 1) _tile_zero(1);
      if (t == 2) _tile_zero(2);
      if (t == 3) _tile_zero(3);
      continue;
    }
    int64_t rows, cols;
    float* y;
    c_tile(t, &rows, &cols, &y);
    if (rows == kTile && cols == kTile) {
      load_c(t, y, a.ldy * 4);
      continue;
    }
    const auto mask = static_cast<__mmask16>((1u << cols) - 1);
    for (int64_t r = 0; r < kTile; ++r) {
      const __m512 v = r < rows ? _mm512_maskz_loadu_ps(mask, y + r * a.ldy) : _mm512_setzero_ps();
      _mm512_store_ps(b.spill + kTile * r, v);
    }
    load_c(t, b.spill, kTile * 4);
  }
  const int64_t lda = a.ldxb * 2;  // bytes per row of x
  const uint16_t* x0 = a.xb + i0 * a.ldxb + b.k0;
  const uint16_t* x1 = x0 + kTile * a.ldxb;
  int64_t converted = 0;
  for (int64_t s = 0; s < b.steps; ++s) {
    const int64_t due = quota * (s + 1) / b.steps;
    next.advance(due - converted);
    converted = due;
    QILIN_TILE_LOAD(4, x0 + kStep * s, lda);
    QILIN_TILE_LOAD(6, b.panel + 2 * s * kTileElements, 64);
    _tile_dpbf16ps(0, 4, 6);
    if constexpr (kN == 2) {
      QILIN_TILE_LOAD(7, b.panel + (2 * s + 1) * kTileElements, 64);
      _tile_dpbf16ps(1, 4, 7);
    }
    if constexpr (kX == 2) {
      QILIN_TILE_LOAD(5, x1 + kStep * s, lda);
      _tile_dpbf16ps(2, 5, 6);
      if constexpr (kN == 2) _tile_dpbf16ps(3, 5, 7);
    }
  }
  for (int t = 0; t < 4; ++t) {
    if (t / 2 >= kX || t % 2 >= kN) continue;
    int64_t rows, cols;
    float* y;
    c_tile(t, &rows, &cols, &y);
    if (rows <= 0) continue;
    if (rows == kTile && cols == kTile) {
      store_c(t, y, a.ldy * 4);
      continue;
    }
    store_c(t, b.spill, kTile * 4);
    const auto mask = static_cast<__mmask16>((1u << cols) - 1);
    for (int64_t r = 0; r < rows; ++r) _mm512_mask_storeu_ps(y + r * a.ldy, mask, _mm512_load_ps(b.spill + kTile * r));
  }
}

// Every row of x against one panel, the next panel's conversion spread evenly over the blocks.
template <int kN, class Converter>
void x_blocks(const Block& b, Converter& next) {
  const int64_t blocks = (b.a.m + 2 * kTile - 1) / (2 * kTile);
  int64_t i0 = 0;
  for (int64_t blk = 0; blk < blocks; ++blk, i0 += 2 * kTile) {
    const int64_t quota = (next.left() + blocks - blk - 1) / (blocks - blk);
    if (i0 + kTile < b.a.m) {
      tile_block<2, kN>(b, i0, next, quota);  // x rows are padded to 16: the second tile may be partly padding
    } else {
      tile_block<1, kN>(b, i0, next, quota);
    }
  }
}

template <GemmWeight kW>
void gemm_bf16_amx(const GemmArgs& a, int64_t n_begin, int64_t n_end) noexcept {
  const int64_t kpad = (a.k + kStep - 1) / kStep * kStep;
  const int64_t mpad = (a.m + kTile - 1) / kTile * kTile;
  // Chunks of K as even as multiples of kStep allow, each holding x's part under kXChunkBytes.
  int64_t most = kXChunkBytes / (mpad * 2) / kStep * kStep;
  most = most < kMinChunk ? kMinChunk : (most > kMaxChunk ? kMaxChunk : most);
  const int64_t chunks = (kpad + most - 1) / most;
  const int64_t chunk = (kpad / kStep + chunks - 1) / chunks * kStep;
  uint16_t* panels[2] = {static_cast<uint16_t*>(a.scratch),
                         reinterpret_cast<uint16_t*>(static_cast<char*>(a.scratch) + kPanelBytes)};
  float* spill = reinterpret_cast<float*>(static_cast<char*>(a.scratch) + 2 * kPanelBytes);
  auto rows_at = [&](int64_t n0) { return n_end - n0 < kPanelRows ? n_end - n0 : kPanelRows; };
  configure_full_tiles();
  for (int64_t k0 = 0; k0 < kpad; k0 += chunk) {
    const int64_t steps = (kpad - k0 < chunk ? kpad - k0 : chunk) / kStep;
    PanelConverter<kW> next(a, k0, steps);
    next.start(n_begin, rows_at(n_begin), panels[0]);
    next.finish();
    int cur = 0;
    for (int64_t n0 = n_begin; n0 < n_end; n0 += kPanelRows, cur ^= 1) {
      // While this panel multiplies, the next one is converted into the other buffer.
      if (n0 + kPanelRows < n_end) {
        next.start(n0 + kPanelRows, rows_at(n0 + kPanelRows), panels[cur ^ 1]);
      } else {
        next.stop();
      }
      const int64_t cols = rows_at(n0);
      const Block b{a, panels[cur], n0, cols, k0, steps, k0 > 0, spill};
      if (cols > kTile) {
        x_blocks<2>(b, next);
      } else {
        x_blocks<1>(b, next);
      }
      next.finish();
    }
  }
  _tile_release();
}

}  // namespace

void fill_gemm_amx(GemmTable& t) noexcept {
  constexpr size_t scratch = 2 * kPanelBytes + kSpillBytes;  // two panels: one multiplies, one is converted
  t.gemm_bf16[static_cast<int>(GemmWeight::f32)] = {gemm_bf16_amx<GemmWeight::f32>, "amx f32 (tdpbf16ps, bf16 compute)",
                                                    scratch, kPanelRows};
  t.gemm_bf16[static_cast<int>(GemmWeight::f16)] = {gemm_bf16_amx<GemmWeight::f16>, "amx f16 (tdpbf16ps, bf16 compute)",
                                                    scratch, kPanelRows};
  t.gemm_bf16[static_cast<int>(GemmWeight::bf16)] = {gemm_bf16_amx<GemmWeight::bf16>,
                                                     "amx bf16 (tdpbf16ps, bf16 compute)", scratch, kPanelRows};
  t.gemm_bf16_fast = true;
}

}  // namespace qilin::cpu
