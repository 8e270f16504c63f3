// The `eigen` matmul path: the portable fallback, compiled at the baseline
// x86-64 flags (SSE2) like the rest of kernels/*.cpp, so it runs on any x86-64.
// Eigen's own threading is off (EIGEN_DONT_PARALLELIZE); the output columns N
// are split across Qilin's thread pool instead.
//
// f16/bf16 weights are widened to f32 a block of rows at a time into a
// per-thread buffer (Eigen has no mixed-precision product), so this path pays
// a conversion per call: it is a fallback, not a fast path.
#include <Eigen/Core>
#include <algorithm>

#include "core/allocator.h"
#include "kernels/matmul_paths.h"

namespace qilin::detail {
namespace {

using RowMajorMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using ConstRowsMap = Eigen::Map<const RowMajorMatrix, Eigen::Unaligned, Eigen::OuterStride<>>;
using RowsMap = Eigen::Map<RowMajorMatrix, Eigen::Unaligned, Eigen::OuterStride<>>;

// Rows of a widened weight block: about 256 KiB of f32, enough to amortise
// Eigen's packing, small enough to stay in L2 while it is used.
int64_t widen_block_rows(int64_t k) { return std::max<int64_t>(8, (int64_t{64} << 10) / k); }

float* widen_scratch(size_t floats) {
  thread_local AlignedBuffer buffer;
  if (buffer.size() < floats * sizeof(float)) buffer = AlignedBuffer(floats * sizeof(float));
  return static_cast<float*>(buffer.data());
}

// y[:, n0:n1] = x · w[n0:n1, :]ᵀ for f32 rows of w starting at `w_rows`.
void multiply_block(const MatmulCall& c, const float* w_rows, int64_t w_ld, int64_t n0, int64_t n1) {
  const ConstRowsMap x(c.x, c.m, c.k, Eigen::OuterStride<>(c.ldx));
  const ConstRowsMap w(w_rows, n1 - n0, c.k, Eigen::OuterStride<>(w_ld));
  RowsMap y(c.y + n0, c.m, n1 - n0, Eigen::OuterStride<>(c.ldy));
  y.noalias() = x * w.transpose();
}

}  // namespace

void run_eigen(const MatmulCall& c) {
  const TensorView& wv = c.w.view();
  const char* w_base = static_cast<const char*>(wv.data());
  const int64_t w_stride = wv.row_stride_bytes();
  if (wv.dtype() == DType::f32) {
    c.pool.parallel_for(c.n, 16, [&](int64_t n0, int64_t n1) {
      multiply_block(c, reinterpret_cast<const float*>(w_base + n0 * w_stride), w_stride / 4, n0, n1);
    });
    return;
  }
  const ToFloatRowFn widen = traits(wv.dtype()).to_float;
  const int64_t block = widen_block_rows(c.k);
  c.pool.parallel_for(c.n, 16, [&](int64_t n0, int64_t n1) {
    float* wide = widen_scratch(static_cast<size_t>(block * c.k));
    for (int64_t b0 = n0; b0 < n1; b0 += block) {
      const int64_t b1 = std::min(n1, b0 + block);
      for (int64_t r = b0; r < b1; ++r) widen(w_base + r * w_stride, wide + (r - b0) * c.k, c.k);
      multiply_block(c, wide, c.k, b0, b1);
    }
  });
}

}  // namespace qilin::detail
