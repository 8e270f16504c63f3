// The KV cache the attention tests read: random values of a dtype, with the positions
// past the causal limit poisoned.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "core/half.h"
#include "core/quant_blocks.h"
#include "core/tensor.h"
#include "kernels/cpu/ops_table.h"
#include "test_ops_common.h"

namespace qilin::test {

// A cache of `dtype` (f32, f16 or q8_0) from values in [-1, 1]; `k`, `v` hold the values the
// kernels read, as f32. Positions from `valid` on are NaN (a NaN scale for q8_0), so a read
// past the causal limit poisons the result.
struct Cache {
  std::vector<float> k, v;
  std::vector<uint16_t> k16, v16;
  std::vector<BlockQ8_0> k8, v8;
  TensorView k_view, v_view;

  Cache(DType dtype, int64_t n_kv, int64_t max_pos, int64_t head_dim, int64_t valid, uint32_t seed) {
    const size_t n = static_cast<size_t>(n_kv * max_pos * head_dim);
    k = random_floats(n, -1, 1, seed);
    v = random_floats(n, -1, 1, seed + 1);
    const Shape shape{n_kv, max_pos, head_dim};
    auto past = [&](size_t i) { return static_cast<int64_t>(i / static_cast<size_t>(head_dim)) % max_pos >= valid; };
    if (dtype == DType::q8_0) {
      k8.resize(n / kQK), v8.resize(n / kQK);
      const cpu::OpsTable& ref = cpu::ops_table(cpu::Isa::ref);
      ref.f32_row_to_q8_0(k.data(), k8.data(), static_cast<int64_t>(n));
      ref.f32_row_to_q8_0(v.data(), v8.data(), static_cast<int64_t>(n));
      for (size_t i = 0; i < n; ++i) {
        const BlockQ8_0 &kb = k8[i / kQK], &vb = v8[i / kQK];
        k[i] = f16_to_f32(kb.d) * static_cast<float>(kb.qs[i % kQK]);
        v[i] = f16_to_f32(vb.d) * static_cast<float>(vb.qs[i % kQK]);
        if (past(i)) k8[i / kQK].d = v8[i / kQK].d = 0x7e00, k[i] = v[i] = NAN;
      }
      k_view = TensorView(k8.data(), shape, DType::q8_0);
      v_view = TensorView(v8.data(), shape, DType::q8_0);
      return;
    }
    for (size_t i = 0; i < n; ++i) {
      if (past(i)) k[i] = v[i] = NAN;
    }
    if (dtype == DType::f16) {
      k16.resize(n), v16.resize(n);
      for (size_t i = 0; i < n; ++i) {
        k16[i] = f32_to_f16(k[i]), v16[i] = f32_to_f16(v[i]);
        k[i] = f16_to_f32(k16[i]), v[i] = f16_to_f32(v16[i]);
      }
      k_view = TensorView(k16.data(), shape, DType::f16);
      v_view = TensorView(v16.data(), shape, DType::f16);
    } else {
      k_view = TensorView(k.data(), shape, DType::f32);
      v_view = TensorView(v.data(), shape, DType::f32);
    }
  }
};

}  // namespace qilin::test
