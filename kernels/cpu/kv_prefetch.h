// Software prefetch of KV-cache rows for the decode attention kernels of every SIMD
// level (kernels/cpu/avx2/ and avx512/ops_attention_*.cpp). In decode the KV cache
// comes from L3 or DRAM (the weights have streamed through the caches since the layer
// last read it), and the hardware prefetchers stop at every 4 KiB page: measured, the
// kernel otherwise waits on these loads for most of its time in a decoder (perf,
// SmolLM2 tg512; docs/performance.md).
//
// Included by translation units compiled with ISA flags, so the template sits in an
// anonymous namespace: no copy of it reaches another TU through the linker.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <type_traits>

#include "core/quant_blocks.h"

namespace qilin::cpu {
namespace {

// Prefetches cache rows [r0, r1) into L1: rows of head_dim f32 or f16 elements, or of
// head_dim / 32 q8_0 blocks.
template <class KV>
inline void prefetch_rows(const KV* cache, int64_t r0, int64_t r1, int64_t head_dim) {
  const int64_t row_bytes =
      static_cast<int64_t>(sizeof(KV)) * (std::is_same_v<KV, BlockQ8_0> ? head_dim / kQK : head_dim);
  const char* first = reinterpret_cast<const char*>(cache) + r0 * row_bytes;
  const int64_t bytes = (r1 - r0) * row_bytes;
  for (int64_t b = 0; b < bytes; b += 64) _mm_prefetch(first + b, _MM_HINT_T0);
  if (bytes > 0) _mm_prefetch(first + bytes - 1, _MM_HINT_T0);
}

}  // namespace
}  // namespace qilin::cpu
