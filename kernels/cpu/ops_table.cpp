#include "kernels/cpu/ops_table.h"

#include <array>

namespace qilin::cpu {

const OpsTable& ops_table(Isa isa) noexcept {
  // Built once: level 0 is the scalar reference, each level above copies the one
  // below and overrides what it does better.
  static const std::array<OpsTable, kIsaCount> tables = [] {
    std::array<OpsTable, kIsaCount> t{};
    fill_ops_ref(t[0]);
    for (int level = 1; level < kIsaCount; ++level) {
      t[static_cast<size_t>(level)] = t[static_cast<size_t>(level - 1)];
      // A filler is compiled with its level's flags: even its pointer stores may use
      // AVX, so it only runs on a CPU that has the level (else the copy stays).
      if (!isa_supported(static_cast<Isa>(level))) continue;
      switch (static_cast<Isa>(level)) {
        case Isa::avx2:
          fill_ops_avx2(t[static_cast<size_t>(level)]);
          break;
        case Isa::avx512:
          fill_ops_avx512(t[static_cast<size_t>(level)]);
          break;
        default:
          break;  // avx512_bf16 and amx add nothing for these kernels
      }
    }
    return t;
  }();
  return tables[static_cast<size_t>(isa)];
}

}  // namespace qilin::cpu
