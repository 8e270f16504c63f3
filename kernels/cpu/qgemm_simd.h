// The SIMD quantized-matmul kernels, written once over a vector type V and
// compiled per ISA level by kernels/cpu/{avx2,avx512,avx512_bf16}/qgemm_*.cpp,
// each of which defines its V (in an anonymous namespace) and then includes this.
// Everything here has internal linkage (see gemm_blocking.h for why).
//
// V supplies integer vectors I of V::kLanes int32 lanes (one lane per weight row),
// float vectors F, and the few operations used below; V::kVnni says whether
// vpdpbusd exists. Reading of the packed layout: kernels/cpu/qgemm_pack.h.
//
// A tile is MB rows of x against NV weight vectors (a vector: 16 weight rows, or 8
// on AVX2: half a packed group). For each 32-element block, each quad (4 elements)
// of the unpacked weight vectors meets the MB rows' 4 x values broadcast; the
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
    void add(I w, I xb) {
      if constexpr (kMode == vnni) {
        v = V::dpbusd(v, w, xb);
      } else if constexpr (kMode == i16) {
        v = V::add16(v, V::maddubs(w, xb));
      } else {
        v = V::add32(v, V::madd1(V::maddubs(w, xb)));
      }
    }
    void add_signed(const typename V::Signed& w, I xb) {
      v = V::add32(v, V::madd1(V::maddubs(w.abs, V::apply_sign(xb, w))));
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

  // One weight vector: the packed group at g, its half h (0 at 512 bits).
  struct WVec {
    const uint8_t* g;
    int h;
  };

  // One row of x (decode) streams the weight: the hardware prefetchers alone leave a
  // thread's stream of 16-row groups at ~35% of the cache-resident read probe
  // (SmolLM2 Q4_1 tg128: 155 t/s); asking for the bytes 1 KiB ahead brings it to ~55%
  // (225 t/s); 512 B and 2-4 KiB were slower then. A thread's groups are contiguous, so
  // "ahead" may be the next group; prefetching past the end is harmless. Decode also
  // reads several groups in lockstep (few_rows): more independent streams in flight and
  // one x broadcast shared by all of them took SmolLM2 q4_0 tg128 from ~270 to ~350 t/s
  // and q8_0 from ~163 to ~195 (2 threads); 2 or 3 streams were no better. With the
  // lockstep streams, 2 KiB ahead beats 1 KiB (SmolLM2 q4_0 tg128 median ~408 -> ~445
  // t/s, interleaved A/B; 3 and 4 KiB in between; q8_0 and Qwen2.5-0.5B unchanged).
  static constexpr int64_t kPrefetchBytes = 2048;
  static void prefetch_bytes(const uint8_t* p, int64_t bytes) {
    for (int64_t off = 0; off < bytes; off += 64) _mm_prefetch(reinterpret_cast<const char*>(p + off), _MM_HINT_T0);
  }

  template <int MB, int NV>
  struct Tile {
    XRow x[MB];
    WVec w[NV];
    F acc[MB][NV];

    template <QFormat kF>
    const uint8_t* unit(int v, int64_t u) const {
      return w[v].g + u * qpack_unit_bytes(kF);
    }
    // The bytes of vector v's rows in quad vector j at p.
    I quads(int v, const uint8_t* p, int j) const { return V::load(p + kQuadBytes * j + w[v].h * kVecBytes); }
    F f16_scales(int v, const uint8_t* p) const { return V::f16(p + w[v].h * 2 * L); }

    // Quad j of block b's low and high 16 elements for every row of x, broadcast.
    void x_quads(int64_t b, int j, I (&xl)[MB], I (&xh)[MB]) const {
#pragma GCC unroll 8
      for (int i = 0; i < MB; ++i) {
        xl[i] = V::bcast4(x[i].q + 32 * b + 4 * j);
        xh[i] = V::bcast4(x[i].q + 32 * b + 16 + 4 * j);
      }
    }

    template <QFormat kF>
    void prefetch(int64_t u) const {
      if constexpr (MB == 1 && kPrefetchBytes > 0) {
#pragma GCC unroll 8
        for (int v = 0; v < NV; ++v)
          if (w[v].h == 0) prefetch_bytes(unit<kF>(v, u) + kPrefetchBytes, qpack_unit_bytes(kF));
      }
    }

    // Q8_0: 8 quad vectors of u8 (int8 + 128) per block. With VNNI the even and odd
    // quads go to two accumulators: one chain of 8 dependent vpdpbusd per block
    // (5 cycles each) leaves the out-of-order window too little to overlap blocks.
    void q8_0(int64_t nb) {
      constexpr QFormat kF = QFormat::q8_0;
      constexpr Mode kMode = V::kVnni ? vnni : sign;
      for (int64_t b = 0; b < nb; ++b) {
        prefetch<kF>(b);
        Acc<kMode> s[MB][NV], odd[MB][NV];
#pragma GCC unroll 8
        for (int i = 0; i < MB; ++i)
#pragma GCC unroll 8
          for (int v = 0; v < NV; ++v) {
            s[i][v].start(x[i].corr[b]);
            odd[i][v].start(0);
          }
#pragma GCC unroll 8
        for (int j = 0; j < 8; ++j) {
          I xb[MB];
#pragma GCC unroll 8
          for (int i = 0; i < MB; ++i) xb[i] = V::bcast4(x[i].q + 32 * b + 4 * j);
#pragma GCC unroll 8
          for (int v = 0; v < NV; ++v) {
            const I wq = quads(v, unit<kF>(v, b) + qpack::kQ8Quants, j);
            if constexpr (kMode == sign) {
              const typename V::Signed ws = V::prep_signed(wq);
#pragma GCC unroll 8
              for (int i = 0; i < MB; ++i) s[i][v].add_signed(ws, xb[i]);
            } else {
#pragma GCC unroll 8
              for (int i = 0; i < MB; ++i) (j % 2 == 0 ? s[i][v] : odd[i][v]).add(wq, xb[i]);
            }
          }
        }
#pragma GCC unroll 8
        for (int v = 0; v < NV; ++v) {
          const F d = f16_scales(v, unit<kF>(v, b) + qpack::kScales);
#pragma GCC unroll 8
          for (int i = 0; i < MB; ++i) {
            const F sum = kMode == vnni ? V::cvt(V::add32(s[i][v].v, odd[i][v].v)) : s[i][v].finish(0);
            acc[i][v] = V::fmadd(sum, V::mul(d, V::set1f(x[i].d[b])), acc[i][v]);
          }
        }
      }
    }

    // Σ q·xq + corr of a nibble block (4 vectors at unit offset `quants`: quad j in the
    // low nibbles, quad j + 4 in the high ones) for each row and vector, as f32 (exact: below 2^24).
    template <QFormat kF>
    void nibble_sums(int64_t u, int quants, int64_t b, const int32_t (&corr)[MB], F (&out)[MB][NV]) const {
      if constexpr (V::kVnni) {
        // The high nibbles stay in place: p & 0xF0 is 16·q, one AND instead of a shift
        // and an AND; its sum (16× too large, exactly) is shifted back once per block.
        // Two accumulators per row also halve the dependent chain (see q8_0).
        I lo[MB][NV], hi[MB][NV];
#pragma GCC unroll 8
        for (int i = 0; i < MB; ++i)
#pragma GCC unroll 8
          for (int v = 0; v < NV; ++v) {
            lo[i][v] = V::set1(corr[i]);
            hi[i][v] = V::zero();
          }
#pragma GCC unroll 8
        for (int j = 0; j < 4; ++j) {
          I xl[MB], xh[MB];
          x_quads(b, j, xl, xh);
#pragma GCC unroll 8
          for (int v = 0; v < NV; ++v) {
            const I p = quads(v, unit<kF>(v, u) + quants, j);
            const I pl = V::nib_lo(p), ph = V::nib_hi_in_place(p);
#pragma GCC unroll 8
            for (int i = 0; i < MB; ++i) {
              lo[i][v] = V::dpbusd(lo[i][v], pl, xl[i]);
              hi[i][v] = V::dpbusd(hi[i][v], ph, xh[i]);
            }
          }
        }
#pragma GCC unroll 8
        for (int i = 0; i < MB; ++i)
#pragma GCC unroll 8
          for (int v = 0; v < NV; ++v) out[i][v] = V::cvt(V::add32(lo[i][v], V::template sra32<4>(hi[i][v])));
      } else {
        Acc<i16> s[MB][NV];
#pragma GCC unroll 8
        for (int i = 0; i < MB; ++i)
#pragma GCC unroll 8
          for (int v = 0; v < NV; ++v) s[i][v].start(corr[i]);
#pragma GCC unroll 8
        for (int j = 0; j < 4; ++j) {
          I xl[MB], xh[MB];
          x_quads(b, j, xl, xh);
#pragma GCC unroll 8
          for (int v = 0; v < NV; ++v) {
            const I p = quads(v, unit<kF>(v, u) + quants, j);
            const I lo = V::nib_lo(p), hi = V::nib_hi(p);
#pragma GCC unroll 8
            for (int i = 0; i < MB; ++i) {
              s[i][v].add(lo, xl[i]);
              s[i][v].add(hi, xh[i]);
            }
          }
        }
#pragma GCC unroll 8
        for (int i = 0; i < MB; ++i)
#pragma GCC unroll 8
          for (int v = 0; v < NV; ++v) out[i][v] = s[i][v].finish(corr[i]);
      }
    }

    // Q4_0 (kMin false) and Q4_1 (kMin true): one unit per block.
    template <bool kMin>
    void q4(int64_t nb) {
      constexpr QFormat kF = kMin ? QFormat::q4_1 : QFormat::q4_0;
      for (int64_t b = 0; b < nb; ++b) {
        prefetch<kF>(b);
        int32_t corr[MB];
#pragma GCC unroll 8
        for (int i = 0; i < MB; ++i) corr[i] = kMin ? 0 : x[i].corr[b];
        F sums[MB][NV];
        nibble_sums<kF>(b, kMin ? qpack::kQ4_1Quants : qpack::kQ4_0Quants, b, corr, sums);
#pragma GCC unroll 8
        for (int v = 0; v < NV; ++v) {
          const F d = f16_scales(v, unit<kF>(v, b) + qpack::kScales);
#pragma GCC unroll 8
          for (int i = 0; i < MB; ++i) acc[i][v] = V::fmadd(sums[i][v], V::mul(d, V::set1f(x[i].d[b])), acc[i][v]);
          if constexpr (kMin) {
            const F m = f16_scales(v, unit<kF>(v, b) + qpack::kMins);
#pragma GCC unroll 8
            for (int i = 0; i < MB; ++i) acc[i][v] = V::fmadd(m, V::set1f(x[i].ds[b]), acc[i][v]);
          }
        }
      }
    }

    // Q4_K: per super-block d and dmin, per sub-block of 32 a 6-bit scale and min.
    void q4_k(int64_t nsb) {
      constexpr QFormat kF = QFormat::q4_k;
      for (int64_t sb = 0; sb < nsb; ++sb) {
        prefetch<kF>(sb);
        F d[NV], dmin[NV];
#pragma GCC unroll 8
        for (int v = 0; v < NV; ++v) {
          d[v] = f16_scales(v, unit<kF>(v, sb) + qpack::kScales);
          dmin[v] = f16_scales(v, unit<kF>(v, sb) + qpack::kMins);
        }
#pragma GCC unroll 8
        for (int sub = 0; sub < 8; ++sub) {
          const int64_t b = sb * 8 + sub;
          const int32_t corr[MB] = {};
          F sums[MB][NV];
          nibble_sums<kF>(sb, qpack::kQ4KQuants + 256 * sub, b, corr, sums);
#pragma GCC unroll 8
          for (int v = 0; v < NV; ++v) {
            // d·sc and dmin·m are exact in f32 (at most 17 significant bits).
            const uint8_t* u = unit<kF>(v, sb) + kPackRows * sub + w[v].h * L;
            const F a = V::mul(V::u8f(u + qpack::kQ4KSc), d[v]);
            const F mn = V::mul(V::u8f(u + qpack::kQ4KM), dmin[v]);
#pragma GCC unroll 8
            for (int i = 0; i < MB; ++i) {
              acc[i][v] = V::fmadd(sums[i][v], V::mul(a, V::set1f(x[i].d[b])), acc[i][v]);
              acc[i][v] = V::fnmadd(mn, V::set1f(x[i].ds[b]), acc[i][v]);
            }
          }
        }
      }
    }

    // Q6_K: per super-block d, per sub-block of 16 a signed 8-bit scale; quants are
    // 4 low bits (nibble vectors) and 2 high bits (H0, H1; see qgemm_pack.h).
    void q6_k(int64_t nsb) {
      constexpr QFormat kF = QFormat::q6_k;
      constexpr Mode kMode = q6_mode();
      for (int64_t sb = 0; sb < nsb; ++sb) {
        prefetch<kF>(sb);
        F d[NV];
#pragma GCC unroll 8
        for (int v = 0; v < NV; ++v) d[v] = f16_scales(v, unit<kF>(v, sb) + qpack::kScales);
#pragma GCC unroll 8
        for (int sub = 0; sub < 8; ++sub) {
          const int64_t b = sb * 8 + sub;
          const int blk = qpack::kQ6KBlocks + qpack::kQ6KBlockBytes * sub;
          Acc<kMode> lo[MB][NV], hi[MB][NV];
#pragma GCC unroll 8
          for (int i = 0; i < MB; ++i)
#pragma GCC unroll 8
            for (int v = 0; v < NV; ++v) {
              lo[i][v].start(x[i].corr[2 * b]);
              hi[i][v].start(x[i].corr[2 * b + 1]);
            }
          I h0[NV], h1[NV];
#pragma GCC unroll 8
          for (int v = 0; v < NV; ++v) {
            h0[v] = quads(v, unit<kF>(v, sb) + blk, 4);
            h1[v] = quads(v, unit<kF>(v, sb) + blk, 5);
          }
#pragma GCC unroll 8
          for (int j = 0; j < 4; ++j) {
            I xl[MB], xh[MB];
            x_quads(b, j, xl, xh);
#pragma GCC unroll 8
            for (int v = 0; v < NV; ++v) {
              const I p = quads(v, unit<kF>(v, sb) + blk, j);
              const I hp = j < 2 ? h0[v] : h1[v];
              // Quad j's high bits sit at bits 0-1 (j even) or 4-5 (j odd) of hp, quad j + 4's two above.
              const I qlo = V::or_(V::nib_lo(p), V::bits45(j % 2 == 0 ? V::template shl16<4>(hp) : hp));
              const I qhi =
                  V::or_(V::nib_hi(p), V::bits45(j % 2 == 0 ? V::template shl16<2>(hp) : V::template shr16<2>(hp)));
#pragma GCC unroll 8
              for (int i = 0; i < MB; ++i) {
                lo[i][v].add(qlo, xl[i]);
                hi[i][v].add(qhi, xh[i]);
              }
            }
          }
#pragma GCC unroll 8
          for (int v = 0; v < NV; ++v) {
            const uint8_t* sc = unit<kF>(v, sb) + qpack::kQ6KSc + kPackRows * (2 * sub) + w[v].h * L;
            const F a_lo = V::mul(V::i8f(sc), d[v]);
            const F a_hi = V::mul(V::i8f(sc + kPackRows), d[v]);
#pragma GCC unroll 8
            for (int i = 0; i < MB; ++i) {
              const F t = V::fmadd(hi[i][v].finish(x[i].corr[2 * b + 1]), a_hi,
                                   V::mul(lo[i][v].finish(x[i].corr[2 * b]), a_lo));
              acc[i][v] = V::fmadd(t, V::set1f(x[i].d[b]), acc[i][v]);
            }
          }
        }
      }
    }
  };

  // The weight vectors of a kernel call: vector t covers output rows [n0(t), n0(t) + valid(t)).
  struct Vectors {
    const uint8_t* base;
    int64_t group_bytes, first, n_end;
    WVec at(int64_t t) const {
      const int64_t n0 = (first + t) * L;
      return {base + n0 / kPackRows * group_bytes, static_cast<int>(n0 % kPackRows / L)};
    }
    int64_t n0(int64_t t) const { return (first + t) * L; }
    int valid(int64_t t) const {
      const int64_t v = n_end - n0(t);
      return static_cast<int>(v < L ? (v > 0 ? v : 0) : L);
    }
  };

  // y rows [i0, i0 + MB) against the NV weight vectors ts[] (any of them may lie past
  // n_end inside the last group: its zero padding rows are read, nothing is stored).
  template <QFormat kF, int MB, int NV>
  static void run_tile(const QGemmArgs& a, const Vectors& vs, const int64_t (&ts)[NV], int64_t i0) {
    const int64_t k = a.x.k, nb = k / kXBlock;
    Tile<MB, NV> t;
    for (int i = 0; i < MB; ++i) {
      t.x[i] = {a.x.q + (i0 + i) * k, a.x.d + (i0 + i) * nb, a.x.ds + (i0 + i) * nb, a.x.corr + (i0 + i) * 2 * nb};
      for (int v = 0; v < NV; ++v) t.acc[i][v] = V::zerof();
    }
    for (int v = 0; v < NV; ++v) t.w[v] = vs.at(ts[v]);
    if constexpr (kF == QFormat::q8_0) t.q8_0(nb);
    if constexpr (kF == QFormat::q4_0) t.template q4<false>(nb);
    if constexpr (kF == QFormat::q4_1) t.template q4<true>(nb);
    if constexpr (kF == QFormat::q4_k) t.q4_k(k / 256);
    if constexpr (kF == QFormat::q6_k) t.q6_k(k / 256);
    for (int i = 0; i < MB; ++i)
      for (int v = 0; v < NV; ++v) {
        const int valid = vs.valid(ts[v]);
        if (valid > 0) V::store(a.y + (i0 + i) * a.ldy + vs.n0(ts[v]), t.acc[i][v], valid);
      }
  }

  // Groups per pass for MB rows of x (few rows): the int and float accumulators of
  // NG·kHalves vectors must fit the registers with the x broadcasts.
  static constexpr int groups_per_pass(int mb) {
    if (L == 16) return mb == 1 ? 4 : 2;
    return mb == 1 ? 2 : 1;
  }

  // NG whole groups (each its kHalves vectors), the g-th at group index gs[g] of the range.
  template <QFormat kF, int MB, int NG>
  static void run_groups(const QGemmArgs& a, const Vectors& vs, const int64_t (&gs)[NG]) {
    int64_t ts[NG * kHalves];
    for (int g = 0; g < NG; ++g)
      for (int h = 0; h < kHalves; ++h) ts[g * kHalves + h] = gs[g] * kHalves + h;
    run_tile<kF, MB, NG * kHalves>(a, vs, ts, 0);
  }

  // Few rows of x (decode): the range's groups are cut into NG segments read in lockstep,
  // NG streams; the vectors of a pass share the x broadcasts.
  template <QFormat kF, int MB>
  static void few_rows(const QGemmArgs& a, const Vectors& vs, int64_t groups) {
    constexpr int kNG = groups_per_pass(MB);
    if (groups <= 0) return;
    const int64_t streams = groups < kNG ? groups : kNG;
    const int64_t seg = groups / streams;
    // The prefetches run kPrefetchBytes ahead of each stream, so a stream's first bytes
    // would come at the pace of the demand loads: ask for them all at once. A decode
    // call's chunk is only a few groups per stream (SmolLM2: 5 KiB), so this matters.
    if constexpr (MB == 1 && kPrefetchBytes > 0) {
      for (int64_t g = 0; g < streams; ++g) prefetch_bytes(vs.at(g * seg * kHalves).g, kPrefetchBytes);
    }
    int64_t done = 0;
    if (streams == kNG) {
      for (int64_t t = 0; t < seg; ++t) {
        int64_t gs[kNG];
        for (int g = 0; g < kNG; ++g) gs[g] = g * seg + t;
        run_groups<kF, MB, kNG>(a, vs, gs);
      }
      done = kNG * seg;
    }
    // The rest (fewer groups than streams): adjacent groups, as many per pass as fit.
    for (; done < groups;) {
      const int64_t left = groups - done;
      if constexpr (kNG >= 4) {
        if (left >= 3) {
          run_groups<kF, MB, 3>(a, vs, {done, done + 1, done + 2});
          done += 3;
          continue;
        }
      }
      if constexpr (kNG >= 2) {
        if (left >= 2) {
          run_groups<kF, MB, 2>(a, vs, {done, done + 1});
          done += 2;
          continue;
        }
      }
      run_groups<kF, MB, 1>(a, vs, {done});
      done += 1;
    }
  }

  // Rows of x in tiles of kMaxRows (8 or 4), then at most one tile of 4 and one of 1 to 3.
  template <QFormat kF>
  static void run_many_rows(const QGemmArgs& a, const Vectors& vs, int64_t t) {
    constexpr int kMaxRows = V::kMaxTileRows;
    static_assert(kMaxRows == 4 || kMaxRows == 8);
    const int64_t ts[1] = {t};
    int64_t i = 0;
    for (; i + kMaxRows <= a.x.m; i += kMaxRows) run_tile<kF, kMaxRows, 1>(a, vs, ts, i);
    if constexpr (kMaxRows == 8) {
      if (i + 4 <= a.x.m) {
        run_tile<kF, 4, 1>(a, vs, ts, i);
        i += 4;
      }
    }
    switch (a.x.m - i) {
      case 1:
        return run_tile<kF, 1, 1>(a, vs, ts, i);
      case 2:
        return run_tile<kF, 2, 1>(a, vs, ts, i);
      case 3:
        return run_tile<kF, 3, 1>(a, vs, ts, i);
      default:
        return;
    }
  }

  template <QFormat kF>
  static void kernel(const QGemmArgs& a, int64_t n_begin, int64_t n_end) noexcept {
    const Vectors vs{static_cast<const uint8_t*>(a.w), qpack_group_bytes(kF, a.x.k), n_begin / L, n_end};
    const int64_t groups = (n_end - n_begin + kPackRows - 1) / kPackRows;
    if (a.x.m <= V::kPairMaxRows) {
      static_assert(V::kPairMaxRows == 2 || V::kPairMaxRows == 4);
      if (a.x.m == 1) return few_rows<kF, 1>(a, vs, groups);
      if constexpr (V::kPairMaxRows == 4) {
        if (a.x.m == 3) return few_rows<kF, 3>(a, vs, groups);
        if (a.x.m == 4) return few_rows<kF, 4>(a, vs, groups);
      }
      return few_rows<kF, 2>(a, vs, groups);
    }
    const int64_t count = (n_end - n_begin + L - 1) / L;
    for (int64_t t = 0; t < count; ++t) run_many_rows<kF>(a, vs, t);
  }

  static void fill(QGemmTable& t, const char* const (&names)[kQFormatCount]) {
    t.kernel[0] = {kernel<QFormat::q8_0>, names[0], kPackRows, true};
    t.kernel[1] = {kernel<QFormat::q4_0>, names[1], kPackRows, true};
    t.kernel[2] = {kernel<QFormat::q4_1>, names[2], kPackRows, true};
    t.kernel[3] = {kernel<QFormat::q4_k>, names[3], kPackRows, true};
    t.kernel[4] = {kernel<QFormat::q6_k>, names[4], kPackRows, true};
    for (int f = 0; f < kQFormatCount; ++f) {  // one kernel for every m (the level may add its own for many rows)
      t.large[f] = t.kernel[f];
      t.large_min_m[f] = QGemmTable::kNever;
    }
  }
};

}  // namespace
}  // namespace qilin::cpu
