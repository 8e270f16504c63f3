// The GPU paths of matmul() in a build without CUDA: they throw (kernels/matmul.cpp
// refuses GPU tensors before reaching them; this is the backstop).
#include "core/error.h"
#include "kernels/cuda/matmul_cuda.h"

namespace qilin::detail {

bool cuda_accepts(DType) noexcept { return false; }
void run_cuda_gemv(const MatmulCall&) { fail("matmul", "path cuda needs the CUDA backend, which this build lacks"); }
void run_cublas(const MatmulCall&) { fail("matmul", "path cublas needs the CUDA backend, which this build lacks"); }
std::string cuda_kernel_name(MatmulPath, DType) { return "no CUDA backend in this build"; }

}  // namespace qilin::detail
