// avx512 versions of the non-matmul kernels (kernels/cpu/ops_table.h).
#include "kernels/cpu/ops_table.h"

namespace qilin::cpu {

void fill_ops_avx512(OpsTable& t) noexcept { (void)t; }

}  // namespace qilin::cpu
