// The loop nest shared by the dot-product matmul kernels of every ISA level.
//
// Include only from kernels/cpu/<level>/gemm_*.cpp: everything here has
// internal linkage, so each level's translation unit compiles its own copy with
// its own flags (no inline function can be shared across ISA flags by the linker).
//
// A level supplies Tile<MB, R>::run(args, i0, n0, k0, k1, accumulate), which
// computes y[i0 + mb, n0 + r] (+)= x[i0 + mb, k0:k1] · w[n0 + r, k0:k1] for all
// mb < MB and r < R, storing the sums (accumulate = false) or adding them to y.
#pragma once

#include <cstdint>

#include "kernels/cpu/gemm_table.h"

namespace qilin::cpu {
namespace {

// MB rows of x against weight rows [n0, n1): R at a time, then one at a time.
template <template <int, int> class Tile, int MB, int R>
void row_group(const GemmArgs& a, int64_t i0, int64_t n0, int64_t n1, int64_t k0, int64_t k1, bool accumulate) {
  int64_t n = n0;
  for (; n + R <= n1; n += R) Tile<MB, R>::run(a, i0, n, k0, k1, accumulate);
  for (; n < n1; ++n) Tile<MB, 1>::run(a, i0, n, k0, k1, accumulate);
}

// The last `rows` (< MB) rows of x, with a tile exactly that many rows tall.
template <template <int, int> class Tile, int MB, int R>
void row_tail(const GemmArgs& a, int64_t i0, int64_t rows, int64_t n0, int64_t n1, int64_t k0, int64_t k1,
              bool accumulate) {
  if constexpr (MB > 1) {
    if (rows == MB - 1) return row_group<Tile, MB - 1, R>(a, i0, n0, n1, k0, k1, accumulate);
    row_tail<Tile, MB - 1, R>(a, i0, rows, n0, n1, k0, k1, accumulate);
  }
}

// K in blocks of kc, N in blocks of nc: inside a block every MB-row group of x
// passes over the same nc weight rows, which stay in cache. kc = k and
// nc = n_end - n_begin give the streaming (gemv) order: each weight row is read
// once per group of MB rows of x.
template <template <int, int> class Tile, int MB, int R>
void blocked(const GemmArgs& a, int64_t n_begin, int64_t n_end, int64_t kc, int64_t nc) {
  for (int64_t k0 = 0; k0 < a.k; k0 += kc) {
    const int64_t k1 = k0 + kc < a.k ? k0 + kc : a.k;
    for (int64_t nb = n_begin; nb < n_end; nb += nc) {
      const int64_t nb1 = nb + nc < n_end ? nb + nc : n_end;
      int64_t i = 0;
      for (; i + MB <= a.m; i += MB) row_group<Tile, MB, R>(a, i, nb, nb1, k0, k1, k0 > 0);
      if (i < a.m) row_tail<Tile, MB, R>(a, i, a.m - i, nb, nb1, k0, k1, k0 > 0);
    }
  }
}

}  // namespace
}  // namespace qilin::cpu
