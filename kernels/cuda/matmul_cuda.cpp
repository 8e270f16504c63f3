// The GPU paths of matmul() (kernels/cuda/matmul_cuda.h).
#include "kernels/cuda/matmul_cuda.h"

#include <fmt/format.h>

#include <algorithm>
#include <limits>
#include <mutex>
#include <vector>

#include "core/error.h"
#include "kernels/cuda/blas.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/launch.h"
#include "kernels/cuda/memory.h"
#include "kernels/cuda/stream.h"

namespace qilin::detail {
namespace {

static_assert(kCudaGemvMaxRows == cuda::launch::kGemvMaxRows);

bool is_block_format(DType w) {
  return w == DType::q8_0 || w == DType::q4_0 || w == DType::q4_1 || w == DType::q4_k || w == DType::q6_k;
}

// Per-device scratch: x quantized for the GEMV, x and the weight in 16 bits for cuBLAS.
// Grown to the largest call seen, then reused. Calls hold the mutex while they queue
// their kernels, so two host threads never interleave their uses of one buffer; in the
// stream's order each use completes before the next begins.
struct Scratch {
  std::mutex mutex;
  cuda::DeviceBuffer xq, x_half, w_half;
};

Scratch& scratch_of(int device) {
  static std::mutex mutex;
  static auto* all = new std::vector<Scratch*>();  // never destroyed, as the streams
  std::lock_guard lock(mutex);
  if (device >= static_cast<int>(all->size())) all->resize(static_cast<size_t>(device) + 1, nullptr);
  Scratch*& s = (*all)[static_cast<size_t>(device)];
  if (s == nullptr) s = new Scratch();
  return *s;
}

int checked_int(int64_t v, const char* what, const MatmulCall& c) {
  if (v > std::numeric_limits<int>::max()) {
    fail("matmul", "{} = {} exceeds cuBLAS's int range (M={} N={} K={})", what, v, c.m, c.n, c.k);
  }
  return static_cast<int>(v);
}

}  // namespace

bool cuda_accepts(DType w) noexcept {
  return w == DType::f32 || w == DType::f16 || w == DType::bf16 || is_block_format(w);
}

void run_cuda_gemv(const MatmulCall& c) {
  const TensorView& wv = c.w.view();
  const DType type = wv.dtype();
  const int device = cuda::current_device();
  const cuda::Stream& stream = cuda::default_stream(device);
  Scratch& scratch = scratch_of(device);
  std::lock_guard lock(scratch.mutex);
  if (is_block_format(type)) {
    const int64_t units = c.k / kQK;
    cuda::ensure_capacity(scratch.xq, static_cast<size_t>(c.m * units) * sizeof(cuda::XBlock), device);
    auto* xq = scratch.xq.data_as<cuda::XBlock>();
    cuda::launch::quantize_x(c.x, c.ldx, c.m, c.k, xq, stream.handle());
    QILIN_CUDA_CHECK_LAUNCH("quantize_x_kernel");
    for (int64_t i = 0; i < c.m; i += kCudaGemvMaxRows) {
      const int64_t rows = std::min(kCudaGemvMaxRows, c.m - i);
      cuda::launch::gemv_quant(type, wv.data(), wv.row_stride_bytes(), c.n, c.k, xq + i * units, rows, c.y + i * c.ldy,
                               c.ldy, stream.handle());
      QILIN_CUDA_CHECK_LAUNCH("gemv_quant_kernel");
    }
    return;
  }
  for (int64_t i = 0; i < c.m; i += kCudaGemvMaxRows) {
    const int64_t rows = std::min(kCudaGemvMaxRows, c.m - i);
    cuda::launch::gemv_float(type, wv.data(), wv.row_stride_bytes(), c.n, c.k, c.x + i * c.ldx, c.ldx, rows,
                             c.y + i * c.ldy, c.ldy, stream.handle());
    QILIN_CUDA_CHECK_LAUNCH("gemv_float_kernel");
  }
}

// Row-major y[M,N] = x[M,K]·W[N,K]ᵀ is column-major yᵀ[N,M] = W[K,N]ᵀ·xᵀ[K,M]: cuBLAS
// multiplies op(A)=Wᵀ (A = the weight rows as a K x N column-major matrix, lda = its
// row stride) by B = x (K x M column-major, ldb = ldx) into C = y (ldc = ldy).
void run_cublas(const MatmulCall& c) {
  const TensorView& wv = c.w.view();
  const DType type = wv.dtype();
  const int device = cuda::current_device();
  const cuda::Stream& stream = cuda::default_stream(device);
  Scratch& scratch = scratch_of(device);
  std::lock_guard lock(scratch.mutex);
  const int m = checked_int(c.m, "M", c), n = checked_int(c.n, "N", c), k = checked_int(c.k, "K", c);
  const int ldx = checked_int(c.ldx, "ldx", c), ldy = checked_int(c.ldy, "ldy", c);
  const float one = 1.0f, zero = 0.0f;
  cublasHandle_t handle = cuda::cublas_handle(stream);
  if (type == DType::f32) {
    const int lda = checked_int(wv.row_stride_bytes() / 4, "the weight's row stride", c);
    QILIN_CUBLAS_CHECK(cublasGemmEx(handle, CUBLAS_OP_T, CUBLAS_OP_N, n, m, k, &one, wv.data(), CUDA_R_32F, lda, c.x,
                                    CUDA_R_32F, ldx, &zero, c.y, CUDA_R_32F, ldy, CUBLAS_COMPUTE_32F,
                                    CUBLAS_GEMM_DEFAULT));
    return;
  }
  const bool bf16 = type == DType::bf16;
  const cudaDataType half_type = bf16 ? CUDA_R_16BF : CUDA_R_16F;
  const void* a = wv.data();
  int lda = 0;
  if (type == DType::f16 || bf16) {
    lda = checked_int(wv.row_stride_bytes() / 2, "the weight's row stride", c);
  } else {
    cuda::ensure_capacity(scratch.w_half, static_cast<size_t>(c.n * c.k) * 2, device);
    cuda::launch::weight_to_half(type, wv.data(), wv.row_stride_bytes(), c.n, c.k, scratch.w_half.data(), false,
                                 stream.handle());
    QILIN_CUDA_CHECK_LAUNCH("weight_to_half_kernel");
    a = scratch.w_half.data();
    lda = k;
  }
  cuda::ensure_capacity(scratch.x_half, static_cast<size_t>(c.m * c.k) * 2, device);
  cuda::launch::rows_to_half(c.x, c.ldx, c.m, c.k, scratch.x_half.data(), bf16, stream.handle());
  QILIN_CUDA_CHECK_LAUNCH("rows_to_half_kernel");
  QILIN_CUBLAS_CHECK(cublasGemmEx(handle, CUBLAS_OP_T, CUBLAS_OP_N, n, m, k, &one, a, half_type, lda,
                                  scratch.x_half.data(), half_type, k, &zero, c.y, CUDA_R_32F, ldy, CUBLAS_COMPUTE_32F,
                                  CUBLAS_GEMM_DEFAULT));
}

std::string cuda_kernel_name(MatmulPath path, DType w) {
  if (path == MatmulPath::cuda) {
    return is_block_format(w) ? fmt::format("CUDA {} GEMV: x as 8-bit blocks, dp4a", name_of(w))
                              : fmt::format("CUDA {} GEMV, f32 sums", name_of(w));
  }
  if (w == DType::f32) return "cublasGemmEx f32";
  if (w == DType::bf16) return "cublasGemmEx bf16, x rounded to bf16";
  if (w == DType::f16) return "cublasGemmEx f16, x rounded to f16";
  return fmt::format("cublasGemmEx f16: {} weight dequantized per call, x rounded to f16", name_of(w));
}

}  // namespace qilin::detail
