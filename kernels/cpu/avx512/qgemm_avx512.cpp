// Quantized-matmul kernels at the avx512 level (no VNNI): the kernels of
// qgemm_simd.h on 512-bit vectors with vpmaddubsw + vpmaddwd, Q8_0 for many rows
// on int16 (qgemm_q8_0_madd.h), and the AVX-512 activation quantizer
// (qgemm_v512.h), which the avx512_bf16 level keeps.
#include "kernels/cpu/qgemm_q8_0_madd.h"
#include "kernels/cpu/qgemm_simd.h"
#include "kernels/cpu/qgemm_v512.h"

namespace qilin::cpu {

void fill_qgemm_avx512(QGemmTable& t) noexcept {
  static constexpr const char* kNames[kQFormatCount] = {"avx512 q8_0 (vpmaddubsw, sign trick)",
                                                        "avx512 q4_0 (vpmaddubsw)", "avx512 q4_1 (vpmaddubsw)",
                                                        "avx512 q4_k (vpmaddubsw)", "avx512 q6_k (vpmaddubsw)"};
  QKernels<V512<false>>::fill(t, kNames);
  constexpr int kQ8 = static_cast<int>(QFormat::q8_0);
  t.large[kQ8] = Q8MaddKernel<V512<false>>::entry("avx512 q8_0 (vpmaddwd on int16, many rows)");
  // The sign trick keeps up to ~32 rows here (matmul_quant_kernel/avx512*/q8_0 in
  // bench/bench_matmul_quant.cpp: 1 thread, 576x1536, M=32 ~142 vs ~148 GFLOP/s, M=64 142 vs 159).
  t.large_min_m[kQ8] = 48;
  t.quantize_x = quantize_x_avx512;
}

}  // namespace qilin::cpu
