// Matmul kernels at the avx512 level (kernels/cpu/gemm_table.h). Not written yet:
// the level below serves.
#include "kernels/cpu/gemm_table.h"

namespace qilin::cpu {

void fill_gemm_avx512(GemmTable& t) noexcept { (void)t; }

}  // namespace qilin::cpu
