// Matmul helpers at the avx512_bf16 level.
//
// bf16 weights keep the avx512 level's kernels, which widen them to f32 in
// registers (exact). Kernels built on vdpbf16ps (32 bf16 multiply-adds per
// instruction, activations rounded to bf16 per call) were measured against
// them on this CPU (Sapphire Rapids) and were no faster: the decode GEMV is
// bound by memory, and vdpbf16ps issues at the rate of one f32 FMA port, so
// the blocked GEMM gained nothing while losing 2^-8 of relative accuracy
// (docs/performance.md; the kernels are in the history at commit a961960).
// Large M in bf16 goes to oneDNN's AMX kernels instead (kernels/matmul.cpp).
//
// What this level does add is the hardware f32 -> bf16 rounding, used to
// round activations for oneDNN's bf16 matmul.
#include <immintrin.h>

#include <cstdint>

#include "kernels/cpu/gemm_table.h"

// GCC 12's AVX-512 headers make "undefined" vectors as `__m512i __Y = __Y;`, which
// -Wuninitialized reports inside inlined intrinsics: a false positive.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

namespace qilin::cpu {
namespace {

// vcvtneps2bf16 rounds to nearest even like core/half.h's f32_to_bf16 (it
// treats denormal inputs as zero, as oneDNN's bf16 kernels do with their operands).
void round_to_bf16(const float* src, uint16_t* dst, int64_t n) noexcept {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256bh b = _mm512_cvtneps_pbh(_mm512_loadu_ps(src + i));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i), reinterpret_cast<__m256i>(b));
  }
  if (i < n) {
    const auto mask = static_cast<__mmask16>((1u << (n - i)) - 1);
    const __m256bh b = _mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(mask, src + i));
    _mm256_mask_storeu_epi16(dst + i, mask, reinterpret_cast<__m256i>(b));
  }
}

}  // namespace

void fill_gemm_avx512_bf16(GemmTable& t) noexcept { t.round_to_bf16 = round_to_bf16; }

}  // namespace qilin::cpu
