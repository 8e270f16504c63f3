// The GPU probes (kernels/cuda/probe.h) in a build without CUDA: they throw.
#include "core/error.h"
#include "kernels/cuda/probe.h"

namespace qilin::cuda {

double measure_read_gbs(size_t, int, int) {
  fail("cuda", "measure_read_gbs: this build of Qilin has no CUDA backend (configure with QILIN_CUDA=ON)");
}
double measure_bf16_gemm_gflops(int64_t, int, int) {
  fail("cuda", "measure_bf16_gemm_gflops: this build of Qilin has no CUDA backend (configure with QILIN_CUDA=ON)");
}

}  // namespace qilin::cuda
