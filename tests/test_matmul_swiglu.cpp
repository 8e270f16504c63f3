// matmul_swiglu: an MLP's down projection with SwiGLU folded into the preparation of
// x must give exactly what swiglu() followed by matmul() gives, on every path and
// ISA level, for every weight format, whether or not the path folds it in.
#include <catch2/catch.hpp>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "kernels/matmul.h"
#include "kernels/ops.h"
#include "test_matmul_data.h"
#include "test_matmul_quant_data.h"

using namespace qilin;

namespace {

Tensor copy_of(const Tensor& t) {
  Tensor c = Tensor::empty(t.view().shape(), t.view().dtype());
  std::memcpy(c.data(), t.data(), t.view().nbytes());
  return c;
}

}  // namespace

TEST_CASE("matmul_swiglu: bit-identical to swiglu then matmul", "[matmul][quant]") {
  test::IsaGuard guard;
  ThreadPool pool(2);
  // K a multiple of 256 (the k-quants); N odd so the last group of 16 weight rows is partial.
  const int64_t k = 512, n = 37;
  const DType types[] = {DType::f32, DType::f16, DType::q8_0, DType::q4_0, DType::q4_1, DType::q4_k, DType::q6_k};
  uint32_t seed = 900;
  for (const DType type : types) {
    const Tensor w_tensor = traits(type).is_float ? test::random_tensor(n, k, type, test::Values::reals, ++seed)
                                                  : test::quantized_weight(type, n, k, ++seed);
    const MatmulWeight w(w_tensor.view());
    for (cpu::Isa level : test::supported_levels()) {
      cpu::set_active_isa(level);
      // 1 row (decode: prepared on the calling thread), 5, and 64 (prepared on the pool;
      // the kernels for many rows, AMX tiles at the amx level), with bf16 compute
      // allowed or not, on the automatic path and forced to the scalar reference.
      for (const int64_t m : {1, 5, 64}) {
        for (const bool bf16 : {false, true}) {
          for (const MatmulPath path : {MatmulPath::automatic, MatmulPath::ref}) {
            INFO(name_of(type) << ", isa " << cpu::name_of(level) << ", M " << m << (bf16 ? ", bf16 allowed" : "")
                               << ", path " << name_of(path));
            MatmulOptions opts;
            opts.allow_bf16_compute = bf16;
            opts.force = path;
            // Reals in [-1, 1): silu's curved part, and products that quantize with rounding.
            const Tensor gate = test::random_tensor(m, k, DType::f32, test::Values::reals, ++seed);
            const Tensor up = test::random_tensor(m, k, DType::f32, test::Values::reals, ++seed);
            const Tensor gate_copy = copy_of(gate);
            const Tensor expected = Tensor::zeros({m, n}, DType::f32);
            const Tensor got = Tensor::zeros({m, n}, DType::f32);
            swiglu(gate_copy, up, gate_copy, pool);
            matmul(gate_copy, w, expected, pool, opts);
            matmul_swiglu(gate, up, w, got, pool, opts);
            CHECK(std::memcmp(expected.data(), got.data(), expected.view().nbytes()) == 0);
          }
        }
      }
    }
  }
}

TEST_CASE("matmul_swiglu: folds SwiGLU in only where the path prepares x", "[matmul][quant]") {
  // The folded form leaves gate as it was; the others compute swiglu into gate first.
  ThreadPool pool(2);
  const int64_t m = 3, k = 64, n = 16;
  const Tensor up = test::random_tensor(m, k, DType::f32, test::Values::reals, 1);
  const Tensor y = Tensor::zeros({m, n}, DType::f32);
  for (const DType type : {DType::q8_0, DType::f32}) {
    INFO(name_of(type));
    const Tensor w_tensor = traits(type).is_float ? test::random_tensor(n, k, type, test::Values::reals, 2)
                                                  : test::quantized_weight(type, n, k, 2);
    const MatmulWeight w(w_tensor.view());
    const Tensor gate = test::random_tensor(m, k, DType::f32, test::Values::reals, 3);
    const Tensor before = copy_of(gate);
    MatmulOptions opts;
    opts.force = MatmulPath::simd;
    matmul_swiglu(gate, up, w, y, pool, opts);
    const bool unchanged = std::memcmp(before.data(), gate.data(), gate.view().nbytes()) == 0;
    CHECK(unchanged == (type == DType::q8_0));
  }
}

TEST_CASE("matmul_swiglu: gate and up must match", "[matmul]") {
  ThreadPool pool(1);
  const Tensor w_tensor = test::quantized_weight(DType::q8_0, 16, 64, 4);
  const MatmulWeight w(w_tensor.view());
  const Tensor gate = Tensor::zeros({2, 64}, DType::f32);
  const Tensor y = Tensor::zeros({2, 16}, DType::f32);
  CHECK_THROWS_AS(matmul_swiglu(gate, Tensor::zeros({3, 64}, DType::f32), w, y, pool), Error);
  CHECK_THROWS_AS(matmul_swiglu(gate, Tensor::zeros({2, 64}, DType::f16), w, y, pool), Error);
  CHECK_THROWS_AS(matmul_swiglu(gate, Tensor::zeros({2, 32}, DType::f32), w, y, pool), Error);
  CHECK_NOTHROW(matmul_swiglu(gate, Tensor::zeros({2, 64}, DType::f32), w, y, pool));
}
