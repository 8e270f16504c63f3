// Quantized-matmul kernels at the avx512 level (no VNNI): the kernels of
// qgemm_simd.h on 512-bit vectors with vpmaddubsw + vpmaddwd, and the AVX-512
// activation quantizer (qgemm_v512.h), which the avx512_bf16 level keeps.
#include "kernels/cpu/qgemm_simd.h"
#include "kernels/cpu/qgemm_v512.h"

namespace qilin::cpu {

void fill_qgemm_avx512(QGemmTable& t) noexcept {
  static constexpr const char* kNames[kQFormatCount] = {"avx512 q8_0 (vpmaddubsw, sign trick)",
                                                        "avx512 q4_0 (vpmaddubsw)", "avx512 q4_1 (vpmaddubsw)",
                                                        "avx512 q4_k (vpmaddubsw)", "avx512 q6_k (vpmaddubsw)"};
  QKernels<V512<false>>::fill(t, kNames);
  t.quantize_x = quantize_x_avx512;
}

}  // namespace qilin::cpu
