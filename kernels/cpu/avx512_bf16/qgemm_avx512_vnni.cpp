// Quantized-matmul kernels at the avx512_bf16 level, which includes AVX-512 VNNI:
// the kernels of qgemm_simd.h on 512-bit vectors with vpdpbusd (64 u8·s8
// products summed into 16 int32 lanes per instruction).
#include "kernels/cpu/qgemm_simd.h"
#include "kernels/cpu/qgemm_v512.h"

namespace qilin::cpu {

void fill_qgemm_avx512_vnni(QGemmTable& t) noexcept {
  static constexpr const char* kNames[kQFormatCount] = {"avx512_vnni q8_0 (vpdpbusd)", "avx512_vnni q4_0 (vpdpbusd)",
                                                        "avx512_vnni q4_1 (vpdpbusd)", "avx512_vnni q4_k (vpdpbusd)",
                                                        "avx512_vnni q6_k (vpdpbusd)"};
  QKernels<V512<true>>::fill(t, kNames);
  t.quantize_x = quantize_x_avx512;
}

}  // namespace qilin::cpu
