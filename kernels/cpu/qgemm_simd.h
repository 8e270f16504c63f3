// The SIMD quantized-matmul kernels, written once over a vector type V and
// compiled per ISA level by kernels/cpu/{avx2,avx512,avx512_bf16}/qgemm_*.cpp,
// each of which defines its V (in an anonymous namespace) and then includes this.
// Everything here has internal linkage (see gemm_blocking.h for why).
//
// V supplies integer vectors I of V::kLanes int32 lanes (one lane per weight row),
// float vectors F, and the few operations used below; V::kVnni says whether
// vpdpbusd exists. Reading of the packed layout: kernels/cpu/qgemm_pack.h.
//
// A tile is MB rows of x against one vector's worth of weight rows (16, or 8 on
// AVX2: half a packed group). For each 32-element block, each quad (4 elements)
// of the unpacked weight vector meets the MB rows' 4 x values broadcast; the
// integer sums are exact (see Acc), then each block's sum is converted to f32,
// scaled by the 16 rows' A times the x block's d and accumulated in f32.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "kernels/cpu/qgemm_pack.h"
#include "kernels/cpu/qgemm_table.h"

namespace qilin::cpu {
namespace {

template <class V>
struct QKernels {
  using I = typename V::I;
  using F = typename V::F;
  static constexpr int L = V::kLanes;
  static constexpr int kHalves = kPackRows / L;
  static constexpr int kVecBytes = 4 * L;  // bytes of one quad vector a kernel reads (its half)

  // How a block's integer sum Σ q·xq (+ the format's offset correction) is built.
  //  vnni    vpdpbusd: u8 × s8 products summed in int32; exact for any u8 weights.
  //  i16     vpmaddubsw (pairs of u8·s8 in int16), summed in int16 over a whole block, then
  //          vpmaddwd by 1: 4-bit weights keep 8 quads' sums within 8·2·15·127 = 30480 < 2^15.
  //  i32     vpmaddubsw then vpmaddwd per quad: 6-bit weights (2·63·127 = 16002 per pair).
  //  signed  Q8_0 without VNNI: |w| · (x with w's sign), as ggml; u8·s8 pairs up to
  //          2·128·127 = 32512 < 2^15. Uses the signed weight, so no offset correction.
  enum Mode { vnni, i16, i32, sign };

  template <Mode kMode>
  struct Acc {
    I v;
    void start(int32_t corr) { v = kMode == i16 || kMode == sign ? V::zero() : V::set1(corr); }
    void add(I w, const int8_t* x) {
      if constexpr (kMode == vnni) {
        v = V::dpbusd(v, w, V::bcast4(x));
      } else if constexpr (kMode == i16) {
        v = V::add16(v, V::maddubs(w, V::bcast4(x)));
      } else {
        v = V::add32(v, V::madd1(V::maddubs(w, V::bcast4(x))));
      }
    }
    void add_signed(const typename V::Signed& w, const int8_t* x) {
      v = V::add32(v, V::madd1(V::maddubs(w.abs, V::apply_sign(V::bcast4(x), w))));
    }
    F finish(int32_t corr) const {
      if constexpr (kMode == i16) return V::cvt(V::add32(V::madd1(v), V::set1(corr)));
      return V::cvt(v);
    }
  };

  static constexpr Mode q6_mode() { return V::kVnni ? vnni : i32; }

  // One row of quantized x.
  struct XRow {
    const int8_t* q;
    const float* d;
    const float* ds;
    const int32_t* corr;
  };

  // One row of x (decode) streams the weight: the hardware prefetchers alone leave a
  // thread's stream of 16-row groups at ~35% of the cache-resident read probe
  // (SmolLM2 Q4_1 tg128: 155 t/s); asking for the bytes 1 KiB ahead brings it to ~55%
  // (225 t/s); 512 B and 2-4 KiB were slower. A thread's groups are contiguous, so
  // "ahead" may be the next group; prefetching past the end is harmless.
  static constexpr int64_t kPrefetchBytes = 1024;
  template <int MB>
  static void prefetch(const uint8_t* p, int64_t bytes) {
    if constexpr (MB == 1) {
      for (int64_t off = 0; off < bytes; off += 64)
        _mm_prefetch(reinterpret_cast<const char*>(p + kPrefetchBytes + off), _MM_HINT_T0);
    }
  }

  template <int MB>
  struct Tile {
    XRow x[MB];
    F acc[MB];

    // Q8_0: 8 quad vectors of u8 (int8 + 128) per block. With VNNI the even and odd
    // quads go to two accumulators: one chain of 8 dependent vpdpbusd per block
    // (5 cycles each) leaves the out-of-order window too little to overlap blocks.
    void q8_0(const uint8_t* g, int64_t nb, int h) {
      constexpr Mode kMode = V::kVnni ? vnni : sign;
      for (int64_t b = 0; b < nb; ++b) {
        const uint8_t* u = g + b * qpack_unit_bytes(QFormat::q8_0);
        prefetch<MB>(u, qpack_unit_bytes(QFormat::q8_0));
        Acc<kMode> s[MB], odd[MB];
        for (int i = 0; i < MB; ++i) {
          s[i].start(x[i].corr[b]);
          odd[i].start(0);
        }
        for (int j = 0; j < 8; ++j) {
          const I w = V::load(u + qpack::kQ8Quants + kQuadBytes * j + h * kVecBytes);
          if constexpr (kMode == sign) {
            const typename V::Signed ws = V::prep_signed(w);
            for (int i = 0; i < MB; ++i) s[i].add_signed(ws, x[i].q + 32 * b + 4 * j);
          } else {
            for (int i = 0; i < MB; ++i) (j % 2 == 0 ? s[i] : odd[i]).add(w, x[i].q + 32 * b + 4 * j);
          }
        }
        const F d = V::f16(u + qpack::kScales + h * 2 * L);
        for (int i = 0; i < MB; ++i) {
          const F sum = kMode == vnni ? V::cvt(V::add32(s[i].v, odd[i].v)) : s[i].finish(0);
          acc[i] = V::fmadd(sum, V::mul(d, V::set1f(x[i].d[b])), acc[i]);
        }
      }
    }

    // Σ q·xq + corr of a nibble block (4 vectors at q: quad j in the low nibbles,
    // quad j + 4 in the high ones) for each row, as f32 (exact: below 2^24).
    void nibble_sums(const uint8_t* q, int64_t b, int h, const int32_t (&corr)[MB], F (&out)[MB]) {
      if constexpr (V::kVnni) {
        // The high nibbles stay in place: p & 0xF0 is 16·q, one AND instead of a shift
        // and an AND; its sum (16× too large, exactly) is shifted back once per block.
        // Two accumulators per row also halve the dependent chain (see q8_0).
        I lo[MB], hi[MB];
        for (int i = 0; i < MB; ++i) {
          lo[i] = V::set1(corr[i]);
          hi[i] = V::zero();
        }
        for (int j = 0; j < 4; ++j) {
          const I p = V::load(q + kQuadBytes * j + h * kVecBytes);
          const I pl = V::nib_lo(p), ph = V::nib_hi_in_place(p);
          for (int i = 0; i < MB; ++i) {
            lo[i] = V::dpbusd(lo[i], pl, V::bcast4(x[i].q + 32 * b + 4 * j));
            hi[i] = V::dpbusd(hi[i], ph, V::bcast4(x[i].q + 32 * b + 16 + 4 * j));
          }
        }
        for (int i = 0; i < MB; ++i) out[i] = V::cvt(V::add32(lo[i], V::template sra32<4>(hi[i])));
      } else {
        Acc<i16> s[MB];
        for (int i = 0; i < MB; ++i) s[i].start(corr[i]);
        for (int j = 0; j < 4; ++j) {
          const I p = V::load(q + kQuadBytes * j + h * kVecBytes);
          const I lo = V::nib_lo(p), hi = V::nib_hi(p);
          for (int i = 0; i < MB; ++i) {
            s[i].add(lo, x[i].q + 32 * b + 4 * j);
            s[i].add(hi, x[i].q + 32 * b + 16 + 4 * j);
          }
        }
        for (int i = 0; i < MB; ++i) out[i] = s[i].finish(corr[i]);
      }
    }

    // Q4_0 (kMin false) and Q4_1 (kMin true): one unit per block.
    template <bool kMin>
    void q4(const uint8_t* g, int64_t nb, int h) {
      constexpr QFormat kF = kMin ? QFormat::q4_1 : QFormat::q4_0;
      for (int64_t b = 0; b < nb; ++b) {
        const uint8_t* u = g + b * qpack_unit_bytes(kF);
        prefetch<MB>(u, qpack_unit_bytes(kF));
        int32_t corr[MB];
        for (int i = 0; i < MB; ++i) corr[i] = kMin ? 0 : x[i].corr[b];
        F sums[MB];
        nibble_sums(u + (kMin ? qpack::kQ4_1Quants : qpack::kQ4_0Quants), b, h, corr, sums);
        const F d = V::f16(u + qpack::kScales + h * 2 * L);
        for (int i = 0; i < MB; ++i) acc[i] = V::fmadd(sums[i], V::mul(d, V::set1f(x[i].d[b])), acc[i]);
        if constexpr (kMin) {
          const F m = V::f16(u + qpack::kMins + h * 2 * L);
          for (int i = 0; i < MB; ++i) acc[i] = V::fmadd(m, V::set1f(x[i].ds[b]), acc[i]);
        }
      }
    }

    // Q4_K: per super-block d and dmin, per sub-block of 32 a 6-bit scale and min.
    void q4_k(const uint8_t* g, int64_t nsb, int h) {
      for (int64_t sb = 0; sb < nsb; ++sb) {
        const uint8_t* u = g + sb * qpack_unit_bytes(QFormat::q4_k);
        prefetch<MB>(u, qpack_unit_bytes(QFormat::q4_k));
        const F d = V::f16(u + qpack::kScales + h * 2 * L);
        const F dmin = V::f16(u + qpack::kMins + h * 2 * L);
        for (int sub = 0; sub < 8; ++sub) {
          const int64_t b = sb * 8 + sub;
          const int32_t corr[MB] = {};
          F sums[MB];
          nibble_sums(u + qpack::kQ4KQuants + 256 * sub, b, h, corr, sums);
          // d·sc and dmin·m are exact in f32 (at most 17 significant bits).
          const F a = V::mul(V::u8f(u + qpack::kQ4KSc + kPackRows * sub + h * L), d);
          const F mn = V::mul(V::u8f(u + qpack::kQ4KM + kPackRows * sub + h * L), dmin);
          for (int i = 0; i < MB; ++i) {
            acc[i] = V::fmadd(sums[i], V::mul(a, V::set1f(x[i].d[b])), acc[i]);
            acc[i] = V::fnmadd(mn, V::set1f(x[i].ds[b]), acc[i]);
          }
        }
      }
    }

    // Q6_K: per super-block d, per sub-block of 16 a signed 8-bit scale; quants are
    // 4 low bits (nibble vectors) and 2 high bits (H0, H1; see qgemm_pack.h).
    void q6_k(const uint8_t* g, int64_t nsb, int h) {
      constexpr Mode kMode = q6_mode();
      for (int64_t sb = 0; sb < nsb; ++sb) {
        const uint8_t* u = g + sb * qpack_unit_bytes(QFormat::q6_k);
        prefetch<MB>(u, qpack_unit_bytes(QFormat::q6_k));
        const F d = V::f16(u + qpack::kScales + h * 2 * L);
        for (int sub = 0; sub < 8; ++sub) {
          const int64_t b = sb * 8 + sub;
          const uint8_t* blk = u + qpack::kQ6KBlocks + qpack::kQ6KBlockBytes * sub;
          const I h0 = V::load(blk + 4 * kQuadBytes + h * kVecBytes);
          const I h1 = V::load(blk + 5 * kQuadBytes + h * kVecBytes);
          Acc<kMode> lo[MB], hi[MB];
          for (int i = 0; i < MB; ++i) {
            lo[i].start(x[i].corr[2 * b]);
            hi[i].start(x[i].corr[2 * b + 1]);
          }
          for (int j = 0; j < 4; ++j) {
            const I p = V::load(blk + kQuadBytes * j + h * kVecBytes);
            const I hp = j < 2 ? h0 : h1;
            // Quad j's high bits sit at bits 0-1 (j even) or 4-5 (j odd) of hp, quad j + 4's two above.
            const I qlo = V::or_(V::nib_lo(p), V::bits45(j % 2 == 0 ? V::template shl16<4>(hp) : hp));
            const I qhi =
                V::or_(V::nib_hi(p), V::bits45(j % 2 == 0 ? V::template shl16<2>(hp) : V::template shr16<2>(hp)));
            for (int i = 0; i < MB; ++i) {
              lo[i].add(qlo, x[i].q + 32 * b + 4 * j);
              hi[i].add(qhi, x[i].q + 32 * b + 16 + 4 * j);
            }
          }
          const F a_lo = V::mul(V::i8f(u + qpack::kQ6KSc + kPackRows * (2 * sub) + h * L), d);
          const F a_hi = V::mul(V::i8f(u + qpack::kQ6KSc + kPackRows * (2 * sub + 1) + h * L), d);
          for (int i = 0; i < MB; ++i) {
            const F t =
                V::fmadd(hi[i].finish(x[i].corr[2 * b + 1]), a_hi, V::mul(lo[i].finish(x[i].corr[2 * b]), a_lo));
            acc[i] = V::fmadd(t, V::set1f(x[i].d[b]), acc[i]);
          }
        }
      }
    }
  };

  // y rows [i0, i0 + MB) against weight rows [n0, n0 + valid) (one vector of a group).
  template <QFormat kF, int MB>
  static void run_tile(const QGemmArgs& a, const uint8_t* g, int h, int64_t i0, int64_t n0, int valid) {
    const int64_t k = a.x.k, nb = k / kXBlock;
    Tile<MB> t;
    for (int i = 0; i < MB; ++i) {
      t.x[i] = {a.x.q + (i0 + i) * k, a.x.d + (i0 + i) * nb, a.x.ds + (i0 + i) * nb, a.x.corr + (i0 + i) * 2 * nb};
      t.acc[i] = V::zerof();
    }
    if constexpr (kF == QFormat::q8_0) t.q8_0(g, nb, h);
    if constexpr (kF == QFormat::q4_0) t.template q4<false>(g, nb, h);
    if constexpr (kF == QFormat::q4_1) t.template q4<true>(g, nb, h);
    if constexpr (kF == QFormat::q4_k) t.q4_k(g, k / 256, h);
    if constexpr (kF == QFormat::q6_k) t.q6_k(g, k / 256, h);
    for (int i = 0; i < MB; ++i) V::store(a.y + (i0 + i) * a.ldy + n0, t.acc[i], valid);
  }

  // Rows of x in tiles of kMaxRows (8 or 4), then at most one tile of 4 and one of 1 to 3.
  template <QFormat kF>
  static void kernel(const QGemmArgs& a, int64_t n_begin, int64_t n_end) noexcept {
    constexpr int kMaxRows = V::kMaxTileRows;
    static_assert(kMaxRows == 4 || kMaxRows == 8);
    const uint8_t* base = static_cast<const uint8_t*>(a.w);
    const int64_t group_bytes = qpack_group_bytes(kF, a.x.k);
    for (int64_t g = n_begin / kPackRows; g * kPackRows < n_end; ++g) {
      for (int h = 0; h < kHalves; ++h) {
        const int64_t n0 = g * kPackRows + h * L;
        if (n0 >= n_end) break;
        const int valid = static_cast<int>(n_end - n0 < L ? n_end - n0 : L);
        const uint8_t* grp = base + g * group_bytes;
        int64_t i = 0;
        for (; i + kMaxRows <= a.x.m; i += kMaxRows) run_tile<kF, kMaxRows>(a, grp, h, i, n0, valid);
        if constexpr (kMaxRows == 8) {
          if (i + 4 <= a.x.m) {
            run_tile<kF, 4>(a, grp, h, i, n0, valid);
            i += 4;
          }
        }
        switch (a.x.m - i) {
          case 1:
            run_tile<kF, 1>(a, grp, h, i, n0, valid);
            break;
          case 2:
            run_tile<kF, 2>(a, grp, h, i, n0, valid);
            break;
          case 3:
            run_tile<kF, 3>(a, grp, h, i, n0, valid);
            break;
          default:
            break;
        }
      }
    }
  }

  static void fill(QGemmTable& t, const char* const (&names)[kQFormatCount]) {
    t.kernel[0] = {kernel<QFormat::q8_0>, names[0], kPackRows, true};
    t.kernel[1] = {kernel<QFormat::q4_0>, names[1], kPackRows, true};
    t.kernel[2] = {kernel<QFormat::q4_1>, names[2], kPackRows, true};
    t.kernel[3] = {kernel<QFormat::q4_k>, names[3], kPackRows, true};
    t.kernel[4] = {kernel<QFormat::q6_k>, names[4], kPackRows, true};
    for (int f = 0; f < kQFormatCount; ++f) t.large[f] = t.kernel[f];  // one kernel for every m
  }
};

}  // namespace
}  // namespace qilin::cpu
