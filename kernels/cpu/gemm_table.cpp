#include "kernels/cpu/gemm_table.h"

namespace qilin::cpu {
namespace {

struct GemmTables {
  GemmTable level[kIsaCount];
  GemmTables() noexcept {
    fill_gemm_ref(level[0]);
    level[1] = level[0];
    fill_gemm_avx2(level[1]);
    level[2] = level[1];
    fill_gemm_avx512(level[2]);
    fill_gemm_packed_avx512(level[2]);
    level[3] = level[2];
    fill_gemm_avx512_bf16(level[3]);
    level[4] = level[3];  // amx: the AMX tiles are reached through oneDNN (kernels/matmul_onednn.cpp)
  }
};

}  // namespace

const GemmTable& gemm_table(Isa isa) noexcept {
  static const GemmTables tables;
  return tables.level[static_cast<int>(isa)];
}

}  // namespace qilin::cpu
