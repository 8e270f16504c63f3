// matmul() with weights on the GPU (MatmulPath::cuda: own GEMV kernels; cublas:
// cublasGemmEx) against the CPU ref path on the same operands, every weight type,
// awkward N, K and M. Skipped (exit 4, ctest "Skipped") where no GPU is usable;
// written without one, so the first GPU run is the first time these kernels execute.
#include <catch2/catch.hpp>
#include <cmath>
#include <vector>

#include "core/error.h"
#include "kernels/cuda/memory.h"
#include "kernels/cuda/tensor.h"
#include "kernels/matmul.h"
#include "test_cuda_common.h"
#include "test_matmul_data.h"
#include "test_matmul_quant_data.h"
#include "test_ops_common.h"

using namespace qilin;
using namespace qilin::test;

namespace {

constexpr DType kFloatTypes[] = {DType::f32, DType::f16, DType::bf16};
constexpr MatmulPath kGpuPaths[] = {MatmulPath::cuda, MatmulPath::cublas};

bool is_block(DType t) { return !traits(t).is_float; }

// y = x · wᵀ on the GPU by `path` (x, w on the host; copied over for the call).
std::vector<float> gpu_product(const Tensor& x, const Tensor& w, MatmulPath path, ThreadPool& pool) {
  const cuda::Stream& stream = cuda::default_stream();
  const Tensor gx = cuda::to_device(x, stream), gw = cuda::to_device(w, stream);
  const Tensor gy = cuda::empty({x.shape()[0], w.shape()[0]}, DType::f32);
  matmul(gx, MatmulWeight(gw), gy, pool, {path});
  return from_gpu(gy);
}

std::vector<float> cpu_ref_product(const Tensor& x, const Tensor& w, ThreadPool& pool) {
  std::vector<float> y(static_cast<size_t>(x.shape()[0] * w.shape()[0]));
  matmul(x, MatmulWeight(w), TensorView(y.data(), {x.shape()[0], w.shape()[0]}, DType::f32), pool, {MatmulPath::ref});
  return y;
}

// Σ|x·w| per output, from the weight as core dequantizes it (see abs_product_sums).
std::vector<double> scales_of(const Tensor& x, const Tensor& w) {
  if (!is_block(w.dtype())) return abs_product_sums(x, w);
  std::vector<float> deq = dequantized(w);
  return abs_product_sums(x, TensorView(deq.data(), {w.shape()[0], w.shape()[1]}, DType::f32));
}

// The product in double from the dequantized weight and the exact x.
std::vector<double> exact_product(const Tensor& x, const Tensor& w) {
  const int64_t m = x.shape()[0], n = w.shape()[0], k = w.shape()[1];
  std::vector<float> deq = is_block(w.dtype()) ? dequantized(w) : std::vector<float>();
  std::vector<double> y(static_cast<size_t>(m * n));
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double acc = 0;
      for (int64_t p = 0; p < k; ++p) {
        const double wv = deq.empty() ? element(w, j, p) : deq[static_cast<size_t>(j * k + p)];
        acc += static_cast<double>(x.data_as<float>()[i * k + p]) * wv;
      }
      y[static_cast<size_t>(i * n + j)] = acc;
    }
  }
  return y;
}

void require_within(const std::vector<float>& got, const std::vector<double>& want, const std::vector<double>& scale,
                    double relative) {
  REQUIRE(got.size() == want.size());
  double worst = 0;
  size_t at = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double allowed = relative * scale[i] + 1e-30;
    const double ratio = std::isnan(got[i]) ? INFINITY : std::fabs(got[i] - want[i]) / allowed;
    if (ratio > worst) worst = ratio, at = i;
  }
  INFO("worst output " << at << ": got " << got[at] << ", want " << want[at] << ", error/allowed " << worst);
  REQUIRE(worst <= 1.0);
}

}  // namespace

TEST_CASE("cuda matmul: exact operands give the CPU ref's bits on every GPU path", "[cuda]") {
  require_cuda();
  ThreadPool pool(1);
  const int64_t ms[] = {1, 2, 5, 8, 9, 20};
  for (DType t :
       {DType::f32, DType::f16, DType::bf16, DType::q8_0, DType::q4_0, DType::q4_1, DType::q4_k, DType::q6_k}) {
    // Float K: the GEMV's 16-byte vector loop with and without a tail, and the scalar path
    // (K whose rows are not 16-byte multiples). Block K: 1 to 16 blocks of 32 or 1 to 2 of 256.
    const std::vector<int64_t> ks =
        is_block(t) ? (is_k_quant(t) ? std::vector<int64_t>{256, 512} : std::vector<int64_t>{32, 96, 512})
                    : std::vector<int64_t>{1, 7, 33, 64, 264};
    for (int64_t k : ks) {
      for (int64_t n : {1, 7, 33, 130}) {
        const Tensor w = is_block(t) ? exact_weight(t, n, k, 5) : random_tensor(n, k, t, Values::integers, 5);
        for (int64_t m : ms) {
          const Tensor x = is_block(t) ? exact_x(m, k, 6) : random_tensor(m, k, DType::f32, Values::integers, 6);
          const std::vector<float> want = cpu_ref_product(x, w, pool);
          for (MatmulPath path : kGpuPaths) {
            // cuBLAS sums in its own (tensor-core) order: exact only while every partial
            // sum fits f32's 24 bits, which these operands guarantee up to K = 256.
            if (path == MatmulPath::cublas && k > 256) continue;
            INFO(name_of(t) << " M " << m << " N " << n << " K " << k << " path " << name_of(path));
            // Integer-valued operands with power-of-two scales: every product and partial sum
            // is exact in f32 and in f16/bf16 inputs, so any path must give identical results.
            require_close(gpu_product(x, w, path, pool), want, 0, 0);
          }
        }
      }
    }
  }
}

TEST_CASE("cuda matmul: realistic operands stay within each path's rounding bound", "[cuda]") {
  require_cuda();
  ThreadPool pool(1);
  for (DType t :
       {DType::f32, DType::f16, DType::bf16, DType::q8_0, DType::q4_0, DType::q4_1, DType::q4_k, DType::q6_k}) {
    const int64_t k = is_block(t) ? 4096 : 4095, n = 257;
    const Tensor w = is_block(t) ? quantized_weight(t, n, k, 8) : random_tensor(n, k, t, Values::reals, 8);
    for (int64_t m : {1, 3, 8, 9, 64}) {
      const Tensor x = random_tensor(m, k, DType::f32, Values::reals, 9);
      const std::vector<double> scale = scales_of(x, w);
      const std::vector<double> exact = exact_product(x, w);
      {
        INFO(name_of(t) << " M " << m << " path cuda");
        const std::vector<float> got = gpu_product(x, w, MatmulPath::cuda, pool);
        if (is_block(t)) {
          // The GEMV quantizes x exactly as the CPU ref does and multiplies integers
          // exactly: against the ref, only f32 rounding is left (a few ulp per 32-element
          // unit and the sums over 128 units), well under 1e-5 of Σ|w·x|.
          const std::vector<float> ref = cpu_ref_product(x, w, pool);
          require_within(got, std::vector<double>(ref.begin(), ref.end()), scale, 1e-5);
        } else {
          // f32 products and sums, K terms in any order: K·2^-24 of Σ|w·x|.
          require_within(got, exact, scale, static_cast<double>(k) * 0x1p-24);
        }
      }
      {
        INFO(name_of(t) << " M " << m << " path cublas");
        const std::vector<float> got = gpu_product(x, w, MatmulPath::cublas, pool);
        // f32 sums (K·2^-24), plus the 16-bit inputs' rounding: x to bf16 (2^-8) for bf16
        // weights, x to f16 (2^-11) for f16 weights, and x and the dequantized weight to f16
        // (2^-11 each) for block formats; f32 weights are multiplied in f32.
        double bound = static_cast<double>(k) * 0x1p-24;
        if (t == DType::bf16) bound += 0x1p-8;
        if (t == DType::f16) bound += 0x1p-11;
        if (is_block(t)) bound += 2 * 0x1p-11;
        require_within(got, exact, scale, bound);
      }
    }
  }
}

TEST_CASE("cuda matmul: the plan sends few rows to the GEMV and many to cuBLAS", "[cuda]") {
  require_cuda();
  for (DType t :
       {DType::f32, DType::f16, DType::bf16, DType::q8_0, DType::q4_0, DType::q4_1, DType::q4_k, DType::q6_k}) {
    INFO(name_of(t));
    const Tensor w = cuda::zeros({64, 256}, t, cuda::default_stream());
    const MatmulWeight mw(w);
    REQUIRE(plan_matmul(1, mw) == MatmulPath::cuda);
    REQUIRE(plan_matmul(8, mw) == MatmulPath::cuda);
    REQUIRE(plan_matmul(9, mw) == MatmulPath::cublas);
    REQUIRE(plan_matmul(512, mw) == MatmulPath::cublas);
    REQUIRE(plan_matmul(1, mw, {MatmulPath::cublas}) == MatmulPath::cublas);
    REQUIRE_THROWS_WITH(plan_matmul(1, mw, {MatmulPath::simd}),
                        Catch::Contains("[matmul] path simd runs on the CPU, but the weight is on cuda"));
  }
  const Tensor cpu_w = Tensor::zeros({64, 256}, DType::q8_0);
  REQUIRE_THROWS_WITH(plan_matmul(1, MatmulWeight(cpu_w), {MatmulPath::cuda}),
                      Catch::Contains("path cuda runs on the GPU (CUDA backend), but the weight is on cpu"));
  const Tensor i8 = cuda::zeros({4, 4}, DType::i8, cuda::default_stream());
  REQUIRE_THROWS_WITH(plan_matmul(1, MatmulWeight(i8)), Catch::Contains("weight dtype i8 is not supported on the GPU"));
}

TEST_CASE("cuda matmul: x, w and y must share the device", "[cuda]") {
  require_cuda();
  ThreadPool pool(1);
  const Tensor w = cuda::zeros({16, 32}, DType::q4_0, cuda::default_stream());
  const Tensor x_gpu = cuda::zeros({2, 32}, DType::f32, cuda::default_stream());
  const Tensor y_gpu = cuda::empty({2, 16}, DType::f32);
  std::vector<float> host(64);
  const TensorView x_cpu(host.data(), {2, 32}, DType::f32), y_cpu(host.data(), {2, 16}, DType::f32);
  REQUIRE_THROWS_WITH(matmul(x_cpu, MatmulWeight(w), y_gpu, pool),
                      Catch::Contains("x is on cpu, w on cuda and y on cuda"));
  REQUIRE_THROWS_WITH(matmul(x_gpu, MatmulWeight(w), y_cpu, pool), Catch::Contains("y on cpu"));
  matmul(x_gpu, MatmulWeight(w), y_gpu, pool);
  for (float v : from_gpu(y_gpu)) REQUIRE(v == 0.0f);
}

TEST_CASE("cuda matmul: matmul_group on GPU weights equals one matmul per weight", "[cuda]") {
  require_cuda();
  ThreadPool pool(1);
  const cuda::Stream& stream = cuda::default_stream();
  const int64_t k = 512;
  const Tensor wq = cuda::to_device(quantized_weight(DType::q4_k, 96, k, 1), stream);
  const Tensor wk = cuda::to_device(quantized_weight(DType::q8_0, 32, k, 2), stream);
  const Tensor wv = cuda::to_device(random_tensor(32, k, DType::f16, Values::reals, 3), stream);
  const MatmulWeight mq(wq), mk(wk), mv(wv);
  for (int64_t m : {1, 12}) {
    INFO("M " << m);
    const Tensor x = cuda::to_device(random_tensor(m, k, DType::f32, Values::reals, 4), stream);
    const Tensor yq = cuda::empty({m, 96}, DType::f32), yk = cuda::empty({m, 32}, DType::f32),
                 yv = cuda::empty({m, 32}, DType::f32);
    const MatmulWeight* ws[] = {&mq, &mk, &mv};
    const TensorView ys[] = {yq, yk, yv};
    matmul_group(x, ws, ys, pool);
    const Tensor y1 = cuda::empty({m, 96}, DType::f32);
    matmul(x, mq, y1, pool);
    // The same kernels on the same operands: identical bits.
    require_close(from_gpu(yq), from_gpu(y1), 0, 0);
    const Tensor y2 = cuda::empty({m, 32}, DType::f32);
    matmul(x, mv, y2, pool);
    require_close(from_gpu(yv), from_gpu(y2), 0, 0);
  }
}

TEST_CASE("cuda matmul: decode-sized products allocate nothing once warm", "[cuda]") {
  require_cuda();
  ThreadPool pool(1);
  const cuda::Stream& stream = cuda::default_stream();
  std::vector<Tensor> weights;
  for (DType t : {DType::f16, DType::q8_0, DType::q4_0, DType::q4_k, DType::q6_k}) {
    weights.push_back(cuda::to_device(
        is_block(t) ? quantized_weight(t, 64, 1024, 1) : random_tensor(64, 1024, t, Values::reals, 1), stream));
  }
  const Tensor x = cuda::to_device(random_tensor(1, 1024, DType::f32, Values::reals, 2), stream);
  const Tensor y = cuda::empty({1, 64}, DType::f32);
  auto step = [&] {
    for (const Tensor& w : weights) matmul(x, MatmulWeight(w), y, pool);
  };
  step();
  const uint64_t mallocs = cuda::allocator_stats().device_allocations;
  for (int i = 0; i < 50; ++i) step();
  stream.synchronize();
  REQUIRE(cuda::allocator_stats().device_allocations == mallocs);
}
