#include "kernels/cpu/gemm_table.h"

namespace qilin::cpu {
namespace {

// Each level starts as a copy of the one below. A level's fill function is
// compiled with that level's flags (even filling a table may use its
// instructions), so it only runs on a CPU that has the level; the tables of
// the others stay copies, never called since active_isa() cannot select them.
struct GemmTables {
  GemmTable level[kIsaCount];
  GemmTables() noexcept {
    fill_gemm_ref(level[0]);
    level[1] = level[0];
    if (isa_supported(Isa::avx2)) fill_gemm_avx2(level[1]);
    level[2] = level[1];
    if (isa_supported(Isa::avx512)) {
      fill_gemm_avx512(level[2]);
      fill_gemm_packed_avx512(level[2]);
    }
    level[3] = level[2];
    if (isa_supported(Isa::avx512_bf16)) fill_gemm_avx512_bf16(level[3]);
    level[4] = level[3];
    if (isa_supported(Isa::amx)) fill_gemm_amx(level[4]);
  }
};

}  // namespace

const GemmTable& gemm_table(Isa isa) noexcept {
  static const GemmTables tables;
  return tables.level[static_cast<int>(isa)];
}

}  // namespace qilin::cpu
