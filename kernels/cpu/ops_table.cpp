#include "kernels/cpu/ops_table.h"

#include <array>

namespace qilin::cpu {
namespace {

// Below the amx level no kernel gains from bf16: the bf16-compute entries are the exact ones.
void exact_blocked_attention_for_bf16(OpsTable& t) {
  t.attention_block_bf16_f32 = t.attention_block_f32;
  t.attention_block_bf16_f16 = t.attention_block_f16;
  t.attention_block_bf16_q8_0 = t.attention_block_q8_0;
}

}  // namespace

const OpsTable& ops_table(Isa isa) noexcept {
  // Built once: level 0 is the scalar reference, each level above copies the one
  // below and overrides what it does better.
  static const std::array<OpsTable, kIsaCount> tables = [] {
    std::array<OpsTable, kIsaCount> t{};
    fill_ops_ref(t[0]);
    exact_blocked_attention_for_bf16(t[0]);
    for (int level = 1; level < kIsaCount; ++level) {
      t[static_cast<size_t>(level)] = t[static_cast<size_t>(level - 1)];
      // A filler is compiled with its level's flags: even its pointer stores may use
      // AVX, so it only runs on a CPU that has the level (else the copy stays).
      if (!isa_supported(static_cast<Isa>(level))) continue;
      switch (static_cast<Isa>(level)) {
        case Isa::avx2:
          fill_ops_avx2(t[static_cast<size_t>(level)]);
          exact_blocked_attention_for_bf16(t[static_cast<size_t>(level)]);
          break;
        case Isa::avx512:
          fill_ops_avx512(t[static_cast<size_t>(level)]);
          exact_blocked_attention_for_bf16(t[static_cast<size_t>(level)]);
          break;
        case Isa::amx:
          fill_ops_attention_block_amx(t[static_cast<size_t>(level)]);
          break;
        default:
          break;  // avx512_bf16 adds nothing for these kernels
      }
    }
    return t;
  }();
  return tables[static_cast<size_t>(isa)];
}

}  // namespace qilin::cpu
