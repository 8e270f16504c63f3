// Quantized-matmul kernels for many rows at the amx level: AMX tiles.
//
// Two ways, measured against each other and against vpdpbusd (docs/performance.md):
//  int8  TDPBSSD on x quantized to int8 and the weight's int8 quants: one tile product
//        per 32-element block (16·16·32 exact products), whose int32 sums are then
//        scaled per block in f32, as every other level does. The per-block scaling
//        (3 vector instructions per tile row) bounds it, not the tile unit.
//  bf16  TDPBF16PS on x rounded to bf16 and the weight dequantized to bf16: the tile
//        sums run on in f32 across all of K, so nothing is scaled per block; the
//        price is the dequantization (once per group of 16 weight rows and call,
//        shared by every row of x) and bf16's rounding of both operands (2^-9
//        relative each, against x's 8-bit blocks on the integer paths).
// Each thread unpacks one packed group (qgemm_pack.h) at a time into its scratch,
// then runs every 16-row tile of x over it.
#include "kernels/cpu/amx/qgemm_amx_common.h"

namespace qilin::cpu {
namespace {

// ---- int8: TDPBSSD per block ----------------------------------------------
// Tiles 0, 1: C (16 x 16 int32); 2, 3: A (16 rows of 32 int8 x); 4, 5: B (8 quads of 16
// weight rows). Alternate blocks use alternate sets, so the tile unit works on one
// block while the vector unit scales the sums of the one before.
void configure_int8_tiles() {
  TileConfig c;
  c.colsb[0] = c.colsb[1] = 64;
  c.rows[0] = c.rows[1] = kTile;
  c.colsb[2] = c.colsb[3] = 32;
  c.rows[2] = c.rows[3] = kTile;
  c.colsb[4] = c.colsb[5] = 64;
  c.rows[4] = c.rows[5] = 8;
  load_tile_config(c);
}

constexpr size_t kInt8ScratchFixed = 2 * 1024 + 64;  // two C tiles' sums

// acc[r] += sums[r] · A · dx[r] + B · dx[r]·Σxq[r].
template <QFormat kF>
void scale_block(const Unpacked& u, const int32_t* sums, int64_t b, const float* xd, const float* xds, int64_t nb,
                 __m512 (&acc)[kTile]) {
  const __m512 a = _mm512_loadu_ps(u.scale + b * 2 * kTile);
  for (int r = 0; r < kTile; ++r) {
    const __m512 v = _mm512_cvtepi32_ps(_mm512_loadu_si512(sums + kTile * r));
    acc[r] = _mm512_fmadd_ps(v, _mm512_mul_ps(a, _mm512_set1_ps(xd[r * nb + b])), acc[r]);
  }
  if constexpr (kF == QFormat::q4_1 || kF == QFormat::q4_k) {
    const __m512 m = _mm512_loadu_ps(u.min + b * kTile);
    for (int r = 0; r < kTile; ++r) acc[r] = _mm512_fmadd_ps(m, _mm512_set1_ps(xds[r * nb + b]), acc[r]);
  }
}

// Block b: C = A(x rows, block b) · B(block b), stored to sums on tile set 0 or 1.
void multiply_block0(const int8_t* xq, int64_t k, int64_t b, const Unpacked& u, int32_t* sums) {
  _tile_zero(0);
  QILIN_TILE_LOAD(2, xq + b * 32, k);
  QILIN_TILE_LOAD(4, u.quads + b * kBlockBytes, kQuadBytes);
  _tile_dpbssd(0, 2, 4);
  QILIN_TILE_STORE(0, sums, 64);
}
void multiply_block1(const int8_t* xq, int64_t k, int64_t b, const Unpacked& u, int32_t* sums) {
  _tile_zero(1);
  QILIN_TILE_LOAD(3, xq + b * 32, k);
  QILIN_TILE_LOAD(5, u.quads + b * kBlockBytes, kQuadBytes);
  _tile_dpbssd(1, 3, 5);
  QILIN_TILE_STORE(1, sums, 64);
}

// 16 rows of x from i0 against the unpacked group; writes y rows < m, columns [n0, n0 + valid).
template <QFormat kF>
void int8_x_tile(const QGemmArgs& a, int64_t i0, int64_t n0, int valid, const Unpacked& u, int32_t* sums) {
  const int64_t k = a.x.k, nb = k / 32;
  const int8_t* xq = a.x.q + i0 * k;
  const float* xd = a.x.d + i0 * nb;
  const float* xds = a.x.ds + i0 * nb;
  int32_t* s[2] = {sums, sums + kTile * kTile};
  __m512 acc[kTile];
  for (__m512& v : acc) v = _mm512_setzero_ps();
  multiply_block0(xq, k, 0, u, s[0]);
  for (int64_t b = 1; b < nb; ++b) {
    if (b % 2 == 1) {
      multiply_block1(xq, k, b, u, s[1]);
    } else {
      multiply_block0(xq, k, b, u, s[0]);
    }
    scale_block<kF>(u, s[(b - 1) % 2], b - 1, xd, xds, nb, acc);
  }
  scale_block<kF>(u, s[(nb - 1) % 2], nb - 1, xd, xds, nb, acc);
  const auto mask = static_cast<__mmask16>((1u << valid) - 1);
  const int64_t rows = a.x.m - i0 < kTile ? a.x.m - i0 : kTile;
  for (int64_t r = 0; r < rows; ++r) _mm512_mask_storeu_ps(a.y + (i0 + r) * a.ldy + n0, mask, acc[r]);
}

template <QFormat kF>
void qgemm_amx_int8(const QGemmArgs& a, int64_t n_begin, int64_t n_end) noexcept {
  configure_int8_tiles();
  Unpacked u;
  auto* sums = reinterpret_cast<int32_t*>(carve_unpacked(static_cast<uint8_t*>(a.scratch), a.x.k, &u));
  const uint8_t* base = static_cast<const uint8_t*>(a.w);
  const int64_t group_bytes = qpack_group_bytes(kF, a.x.k);
  for (int64_t g = n_begin / kPackRows; g * kPackRows < n_end; ++g) {
    unpack_group<kF>(base + g * group_bytes, a.x.k, u);
    const int64_t n0 = g * kPackRows;
    const int valid = static_cast<int>(n_end - n0 < kPackRows ? n_end - n0 : kPackRows);
    // x rows are padded to a multiple of 16 (kXRowPadding), zero beyond m.
    for (int64_t i0 = 0; i0 < a.x.m; i0 += kTile) int8_x_tile<kF>(a, i0, n0, valid, u, sums);
  }
  _tile_release();
}

}  // namespace

void fill_qgemm_amx_int8(QGemmTable& t) noexcept {
  static_assert(kXRowPadding % kTile == 0);
  const auto amx = [](QGemmFn fn, const char* name) {
    QGemmKernel kernel{fn, name, kPackRows, true};
    kernel.scratch_per_k = kUnpackedPerK;
    kernel.scratch_fixed = kInt8ScratchFixed;
    return kernel;
  };
  // Q6_K's two scales per block would need two tile products per block: it keeps vpdpbusd.
  t.large[static_cast<int>(QFormat::q8_0)] = amx(qgemm_amx_int8<QFormat::q8_0>, "amx q8_0 (tdpbssd, int8 x)");
  t.large[static_cast<int>(QFormat::q4_0)] = amx(qgemm_amx_int8<QFormat::q4_0>, "amx q4_0 (tdpbssd, int8 x)");
  t.large[static_cast<int>(QFormat::q4_1)] = amx(qgemm_amx_int8<QFormat::q4_1>, "amx q4_1 (tdpbssd, int8 x)");
  t.large[static_cast<int>(QFormat::q4_k)] = amx(qgemm_amx_int8<QFormat::q4_k>, "amx q4_k (tdpbssd, int8 x)");
  t.large_min_m = 16;
}

}  // namespace qilin::cpu
