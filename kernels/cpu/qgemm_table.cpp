#include "kernels/cpu/qgemm_table.h"

namespace qilin::cpu {
namespace {

// As gemm_table.cpp: each level copies the one below and overrides what it does
// better; fill functions run only on CPUs that have their level.
struct QGemmTables {
  QGemmTable level[kIsaCount];
  QGemmTables() noexcept {
    fill_qgemm_ref(level[0]);
    level[1] = level[0];
    if (isa_supported(Isa::avx2)) fill_qgemm_avx2(level[1]);
    level[2] = level[1];
    if (isa_supported(Isa::avx512)) fill_qgemm_avx512(level[2]);
    level[3] = level[2];
    if (isa_supported(Isa::avx512_bf16)) fill_qgemm_avx512_vnni(level[3]);
    level[4] = level[3];
    if (isa_supported(Isa::amx)) fill_qgemm_amx(level[4]);
  }
};

}  // namespace

const QGemmTable& qgemm_table(Isa isa) noexcept {
  static const QGemmTables tables;
  return tables.level[static_cast<int>(isa)];
}

}  // namespace qilin::cpu
