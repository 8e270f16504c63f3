// Matmul kernels at the avx2 level (kernels/cpu/gemm_table.h). Not written yet:
// the level below serves.
#include "kernels/cpu/gemm_table.h"

namespace qilin::cpu {

void fill_gemm_avx2(GemmTable& t) noexcept { (void)t; }

}  // namespace qilin::cpu
