// Every CUDA op (kernels/cuda/ops.h) against the CPU reference (kernels/ops.h at the
// ref level) on the same inputs, over awkward sizes. Skipped (exit 4, ctest
// "Skipped") where no GPU is usable; written without one, so the first GPU run is
// the first time these kernels execute (docs/cuda.md).
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "core/half.h"
#include "kernels/cuda/ops.h"
#include "kernels/ops.h"
#include "test_cuda_common.h"
#include "test_ops_common.h"

using namespace qilin;
using namespace qilin::test;

namespace {

const cuda::Stream& gpu() { return cuda::default_stream(); }

struct ActivationCase {
  const char* name;
  void (*cpu_op)(const TensorView&, const TensorView&, ThreadPool&);
  void (*gpu_op)(const TensorView&, const TensorView&, const cuda::Stream&);
  double abs_tol, rel_tol;
};

}  // namespace

TEST_CASE("cuda ops: add, mul, scale, add_inplace, add_bias equal the CPU bit for bit", "[cuda]") {
  require_cuda();
  ThreadPool pool(1);
  for (int64_t n : kAwkwardSizes) {
    const int64_t rows = 3;
    INFO("n " << n);
    const Shape shape{rows, n};
    auto a = random_floats(static_cast<size_t>(rows * n), -4, 4, 1);
    auto b = random_floats(a.size(), -4, 4, 2);
    auto bias = random_floats(static_cast<size_t>(n), -1, 1, 3);
    std::vector<float> sum(a.size()), prod(a.size()), scaled(a.size()), biased = a;
    at_ref([&] {
      add(view_of(a, shape), view_of(b, shape), view_of(sum, shape), pool);
      mul(view_of(a, shape), view_of(b, shape), view_of(prod, shape), pool);
      scale(view_of(a, shape), 0.37f, view_of(scaled, shape), pool);
      add_bias(view_of(biased, shape), view_of(bias, {n}), pool);
    });
    const Tensor ga = to_gpu(a, shape), gb = to_gpu(b, shape), gbias = to_gpu(bias, {n});
    const Tensor y = cuda::empty(shape, DType::f32);
    // One IEEE f32 operation per element on both sides: identical results (tolerance 0).
    cuda::add(ga, gb, y, gpu());
    require_close(from_gpu(y), sum, 0, 0);
    cuda::mul(ga, gb, y, gpu());
    require_close(from_gpu(y), prod, 0, 0);
    cuda::scale(ga, 0.37f, y, gpu());
    require_close(from_gpu(y), scaled, 0, 0);
    cuda::copy(ga, y, gpu());
    cuda::add_inplace(y, gb, gpu());
    require_close(from_gpu(y), sum, 0, 0);
    cuda::copy(ga, y, gpu());
    cuda::add_bias(y, gbias, gpu());
    require_close(from_gpu(y), biased, 0, 0);
  }
}

TEST_CASE("cuda ops: activations and SwiGLU match the CPU ref", "[cuda]") {
  require_cuda();
  ThreadPool pool(1);
  // The CPU ref evaluates in double and rounds once. The GPU computes in f32 with
  // expf/erfcf (2 and 4 ulp): silu x/(1+e^-x) is within 2e-6 relative; gelu_tanh's
  // f32 argument u is rounded, an error exp amplifies by |2u| (<= 28 where |y| > 1e-12):
  // 1e-5 relative; gelu_erf as 0.5·x·erfc(-x/√2) has no cancellation: 1e-5 relative,
  // and below 1e-12 only absolute error counts.
  const ActivationCase cases[] = {{"silu", silu, cuda::silu, 1e-30, 2e-6},
                                  {"gelu_tanh", gelu_tanh, cuda::gelu_tanh, 1e-12, 1e-5},
                                  {"gelu_erf", gelu_erf, cuda::gelu_erf, 1e-12, 1e-5}};
  for (const ActivationCase& c : cases) {
    for (int64_t n : kAwkwardSizes) {
      INFO(c.name << " n " << n);
      const Shape shape{3, n};
      auto x = random_floats(static_cast<size_t>(3 * n), -12, 12, 4);
      std::vector<float> want(x.size());
      at_ref([&] { c.cpu_op(view_of(x, shape), view_of(want, shape), pool); });
      const Tensor g = to_gpu(x, shape);
      c.gpu_op(g, g, gpu());  // in place
      require_close(from_gpu(g), want, c.abs_tol, c.rel_tol);
    }
  }
  for (int64_t n : kAwkwardSizes) {
    INFO("swiglu n " << n);
    auto gate = random_floats(static_cast<size_t>(2 * n), -8, 8, 5);
    auto up = random_floats(gate.size(), -3, 3, 6);
    std::vector<float> want(gate.size()), gate_up(static_cast<size_t>(4 * n));
    for (int64_t r = 0; r < 2; ++r) {  // the fused layout [gate | up] per row
      std::memcpy(&gate_up[static_cast<size_t>(r * 2 * n)], &gate[static_cast<size_t>(r * n)], n * sizeof(float));
      std::memcpy(&gate_up[static_cast<size_t>(r * 2 * n + n)], &up[static_cast<size_t>(r * n)], n * sizeof(float));
    }
    at_ref([&] { swiglu(view_of(gate, {2, n}), view_of(up, {2, n}), view_of(want, {2, n}), pool); });
    const Tensor y = cuda::empty({2, n}, DType::f32);
    cuda::swiglu(to_gpu(gate, {2, n}), to_gpu(up, {2, n}), y, gpu());
    // silu's 2e-6 relative, times up exactly once more rounded.
    require_close(from_gpu(y), want, 1e-30, 2.5e-6);
    const Tensor fused = cuda::empty({2, n}, DType::f32);
    cuda::swiglu_fused(to_gpu(gate_up, {2, 2 * n}), fused, gpu());
    require_close(from_gpu(fused), from_gpu(y), 0, 0);  // the same kernel on the same numbers
  }
}

TEST_CASE("cuda ops: rmsnorm, layernorm and softmax match the CPU ref", "[cuda]") {
  require_cuda();
  ThreadPool pool(1);
  std::vector<int64_t> sizes = kAwkwardSizes;
  sizes.push_back(151936);  // a vocabulary-sized softmax row: many block-stride steps
  for (int64_t n : sizes) {
    INFO("n " << n);
    const int64_t rows = 3;
    const Shape shape{rows, n};
    auto x = random_floats(static_cast<size_t>(rows * n), -2, 2, 7);
    for (int64_t i = 0; i < n; ++i) x[static_cast<size_t>(n + i)] += 1000.0f;  // a row with a large mean
    auto w = random_floats(static_cast<size_t>(n), 0.5, 1.5, 8);
    auto b = random_floats(static_cast<size_t>(n), -1, 1, 9);
    std::vector<float> rms(x.size()), ln(x.size()), ln_nobias(x.size()), sm(x.size());
    auto logits = random_floats(x.size(), -15, 15, 10);
    for (int64_t i = 0; i < n; ++i) logits[static_cast<size_t>(n + i)] *= 1000.0f;  // exp overflows unshifted
    at_ref([&] {
      rmsnorm(view_of(x, shape), view_of(w, {n}), 1e-5f, view_of(rms, shape), pool);
      layernorm(view_of(x, shape), view_of(w, {n}), view_of(b, {n}), 1e-5f, view_of(ln, shape), pool);
      layernorm(view_of(x, shape), view_of(w, {n}), TensorView(), 1e-5f, view_of(ln_nobias, shape), pool);
      softmax(view_of(logits, shape), view_of(sm, shape), pool);
    });
    const Tensor gx = to_gpu(x, shape), gw = to_gpu(w, {n}), gb = to_gpu(b, {n});
    Tensor y = to_gpu(x, shape);
    cuda::rmsnorm(y, gw, 1e-5f, y, gpu());  // in place
    // f32 tree sums over <= 151936 elements (relative error ~ log2(n)·2^-24) and two
    // f32 products per element: as the CPU SIMD levels' 1e-5 relative.
    require_close(from_gpu(y), rms, 1e-7, 1e-5);
    const Tensor out = cuda::empty(shape, DType::f32);
    cuda::layernorm(gx, gw, gb, 1e-5f, out, gpu());
    // Outputs are O(1); the x - mean of the row offset by 1000 is rounded in f32: absolute.
    require_close(from_gpu(out), ln, 2e-5, 1e-5);
    cuda::layernorm(gx, gw, TensorView(), 1e-5f, out, gpu());
    require_close(from_gpu(out), ln_nobias, 2e-5, 1e-5);
    y = to_gpu(logits, shape);
    cuda::softmax(y, y, gpu());
    // expf (2 ulp) and an f32 sum of up to 151936 terms: 1e-5 relative; underflowed tails absolute.
    require_close(from_gpu(y), sm, 1e-30, 1e-5);
  }
}

TEST_CASE("cuda ops: rope equals the CPU ref bit for bit, both layouts, partial rotary", "[cuda]") {
  require_cuda();
  ThreadPool pool(1);
  const int64_t tokens = 5, heads = 3, max_pos = 300;
  const std::vector<int32_t> positions = {0, 1, 299, 17, 150};
  for (auto [head_dim, rot_dim] : {std::pair<int64_t, int64_t>{64, 64}, {128, 64}, {80, 32}, {6, 2}}) {
    const RopeCache cache(rot_dim, max_pos, 10000.0);
    const cuda::RopeTable table(cache, gpu());
    for (RopeLayout layout : {RopeLayout::neox, RopeLayout::interleaved}) {
      INFO("head_dim " << head_dim << " rot_dim " << rot_dim << " neox " << (layout == RopeLayout::neox));
      const Shape shape{tokens, heads, head_dim};
      auto x = random_floats(static_cast<size_t>(tokens * heads * head_dim), -3, 3, 11);
      std::vector<float> want = x;
      at_ref([&] { rope(view_of(want, shape), positions, layout, cache, pool); });
      // x0·c - x1·s in double rounded once, on both sides (both products exact in double): tolerance 0.
      const Tensor g = to_gpu(x, shape);
      cuda::rope(g, positions, layout, table, gpu());
      require_close(from_gpu(g), want, 0, 0);
      const Tensor g2 = to_gpu(x, shape);
      cuda::rope(g2, to_gpu(positions, {tokens}, DType::i32), layout, table, gpu());
      require_close(from_gpu(g2), want, 0, 0);
    }
  }
  const RopeCache cache(64, max_pos);
  const cuda::RopeTable table(cache, gpu());
  const Tensor g = cuda::zeros({2, 1, 64}, DType::f32, gpu());
  const std::vector<int32_t> bad = {0, 300};
  REQUIRE_THROWS_WITH(cuda::rope(g, bad, RopeLayout::neox, table, gpu()),
                      Catch::Contains("[rope] position 300 of token 1 is outside the cache's [0, 300)"));
  cuda::rope(g, to_gpu(bad, {2}, DType::i32), RopeLayout::neox, table, gpu());  // not checkable on the host
  const auto out = from_gpu(g);
  REQUIRE(out[0] == 0.0f);  // position 0 of zeros: zeros
  REQUIRE(std::isnan(out[64]));
  REQUIRE(std::isnan(out[64 + 32]));
}

TEST_CASE("cuda ops: embedding returns the CPU's dequantized rows bit for bit, every dtype", "[cuda]") {
  require_cuda();
  ThreadPool pool(1);
  const int64_t vocab = 37;
  const std::vector<int32_t> ids = {0, 36, 5, 5, 17, 1, 36};
  for (DType dtype :
       {DType::f32, DType::f16, DType::bf16, DType::q8_0, DType::q4_0, DType::q4_1, DType::q4_k, DType::q6_k}) {
    const DTypeTraits& tr = traits(dtype);
    const std::vector<int64_t> dims =
        tr.block_size == 1 ? kAwkwardSizes : std::vector<int64_t>{tr.block_size, 3 * tr.block_size};
    for (int64_t dim : dims) {
      INFO(tr.name << " dim " << dim);
      std::vector<uint8_t> table(static_cast<size_t>(vocab) * row_bytes(dtype, dim));
      auto values = random_floats(static_cast<size_t>(vocab * dim), -3, 3, 12);
      tr.from_float(values.data(), table.data(), vocab * dim);
      const TensorView host(table.data(), {vocab, dim}, dtype);
      std::vector<float> want(ids.size() * static_cast<size_t>(dim));
      at_ref([&] { embedding(host, ids, view_of(want, {static_cast<int64_t>(ids.size()), dim}), pool); });
      const Tensor gtable = cuda::to_device(host, gpu());
      const Tensor out = cuda::empty({static_cast<int64_t>(ids.size()), dim}, DType::f32);
      // f16/bf16 conversions are exact and the block formats use the CPU dequantizer's
      // operations without FMA contraction (quant_math.h): identical bits.
      cuda::embedding(gtable, ids, out, gpu());
      require_close(from_gpu(out), want, 0, 0);
      const Tensor out2 = cuda::empty({static_cast<int64_t>(ids.size()), dim}, DType::f32);
      cuda::embedding(gtable, to_gpu(ids, {static_cast<int64_t>(ids.size())}, DType::i32), out2, gpu());
      require_close(from_gpu(out2), want, 0, 0);
    }
  }
  std::vector<float> small(4 * 8, 1.0f);
  const Tensor t = to_gpu(small, {4, 8});
  const Tensor out = cuda::empty({2, 8}, DType::f32);
  const std::vector<int32_t> bad = {3, 4};
  REQUIRE_THROWS_WITH(cuda::embedding(t, bad, out, gpu()),
                      Catch::Contains("[embedding] token id 4 (at 1) is outside the vocabulary of 4"));
  cuda::embedding(t, to_gpu(bad, {2}, DType::i32), out, gpu());
  const auto rows = from_gpu(out);
  REQUIRE(rows[0] == 1.0f);
  REQUIRE(std::isnan(rows[8]));
}

TEST_CASE("cuda ops: kv_store writes the CPU's bytes for f32, f16 and q8_0 caches", "[cuda]") {
  require_cuda();
  ThreadPool pool(1);
  for (DType type : {DType::f32, DType::f16, DType::q8_0}) {
    for (int64_t head_dim : {32, 64, 96, 7}) {
      if (type == DType::q8_0 && head_dim % 32 != 0) continue;
      INFO(name_of(type) << " head_dim " << head_dim);
      const int64_t n = 5, heads = 3, max_pos = 9, pos0 = 2;
      auto src = random_floats(static_cast<size_t>(n * heads * head_dim), -4, 4, 13);
      for (size_t i = 0; i < src.size(); i += 11) src[i] *= 30.0f;
      const Shape cache_shape{heads, max_pos, head_dim};
      std::vector<uint8_t> want(TensorView(nullptr, cache_shape, type).nbytes(), 0);
      at_ref([&] {
        kv_store(view_of(src, {n, heads, head_dim}), TensorView(want.data(), cache_shape, type), pos0, pool);
      });
      const Tensor cache = cuda::zeros(cache_shape, type, gpu());
      cuda::kv_store(to_gpu(src, {n, heads, head_dim}), cache, pos0, gpu());
      // Copies, round-to-nearest-even f16 and the CPU's q8_0 rounding (quant_math.h): identical bytes.
      REQUIRE(bytes_from_gpu(cache) == want);
    }
  }
}

namespace {

struct AttentionCase {
  int64_t n_heads, n_kv_heads, head_dim;
};

// A cache [n_kv, max_pos, head_dim] of `type` from values in [-1, 1). Positions past
// `valid` hold NaN (1e4 in q8_0, which has no NaN): a kernel reading them would show.
std::vector<uint8_t> make_cache(DType type, int64_t n_kv, int64_t max_pos, int64_t head_dim, int64_t valid,
                                uint32_t seed) {
  auto values = random_floats(static_cast<size_t>(n_kv * max_pos * head_dim), -1, 1, seed);
  for (size_t i = 0; i < values.size(); ++i) {
    if (static_cast<int64_t>(i) / head_dim % max_pos >= valid) values[i] = type == DType::q8_0 ? 1e4f : NAN;
  }
  std::vector<uint8_t> bytes(TensorView(nullptr, {n_kv, max_pos, head_dim}, type).nbytes());
  traits(type).from_float(values.data(), bytes.data(), static_cast<int64_t>(values.size()));
  return bytes;
}

}  // namespace

TEST_CASE("cuda ops: attention matches the CPU ref, GQA, decode and prefill, f32/f16/q8_0 caches", "[cuda]") {
  require_cuda();
  ThreadPool pool(1);
  const AttentionCase cases[] = {{4, 4, 64},  {4, 2, 128}, {14, 2, 64}, {28, 4, 128}, {9, 3, 64},
                                 {16, 1, 80}, {2, 1, 256}, {3, 1, 512}, {40, 2, 32},  {2, 1, 7}};
  // n_q, pos0: decode at short and long contexts (many splits), and prefill blocks.
  const std::pair<int64_t, int64_t> queries[] = {{1, 0}, {1, 37}, {1, 700}, {1, 5000}, {5, 0}, {17, 3}, {9, 300}};
  for (const AttentionCase& c : cases) {
    for (auto [n_q, pos0] : queries) {
      for (DType type : {DType::f32, DType::f16, DType::q8_0}) {
        if (type == DType::q8_0 && c.head_dim % 32 != 0) continue;
        INFO("heads " << c.n_heads << "/" << c.n_kv_heads << " head_dim " << c.head_dim << " n_q " << n_q << " pos0 "
                      << pos0 << " " << name_of(type));
        const int64_t max_pos = pos0 + n_q + 5;
        const Shape cache_shape{c.n_kv_heads, max_pos, c.head_dim}, q_shape{n_q, c.n_heads, c.head_dim};
        auto k = make_cache(type, c.n_kv_heads, max_pos, c.head_dim, pos0 + n_q, 14);
        auto v = make_cache(type, c.n_kv_heads, max_pos, c.head_dim, pos0 + n_q, 15);
        auto q = random_floats(static_cast<size_t>(q_shape.numel()), -1, 1, 16);
        std::vector<float> want(q.size());
        at_ref([&] {
          attention(view_of(q, q_shape), TensorView(k.data(), cache_shape, type),
                    TensorView(v.data(), cache_shape, type), pos0, view_of(want, q_shape), pool);
        });
        const Tensor gk = cuda::to_device(TensorView(k.data(), cache_shape, type), gpu());
        const Tensor gv = cuda::to_device(TensorView(v.data(), cache_shape, type), gpu());
        const Tensor out = cuda::empty(q_shape, DType::f32);
        cuda::attention(to_gpu(q, q_shape), gk, gv, pos0, out, gpu());
        // As the CPU's SIMD levels against ref: f32 dots of head_dim terms |q k| <= 1 and
        // expf (2 ulp) move each softmax weight by < 1e-6 relative (head_dim <= 128; more
        // terms above); the split merge adds two f32 roundings; outputs average |v| <= 1.
        require_close(from_gpu(out), want, c.head_dim > 128 ? 1e-5 : 4e-6, 0);
      }
    }
  }
}

TEST_CASE("cuda ops: attention with peaky scores and a custom scale stays finite and accurate", "[cuda]") {
  require_cuda();
  ThreadPool pool(1);
  const int64_t n_heads = 6, n_kv = 2, head_dim = 64, n_q = 3, pos0 = 2000, max_pos = 2048;
  const Shape cache_shape{n_kv, max_pos, head_dim}, q_shape{n_q, n_heads, head_dim};
  auto k = make_cache(DType::f32, n_kv, max_pos, head_dim, pos0 + n_q, 17);
  auto v = make_cache(DType::f32, n_kv, max_pos, head_dim, pos0 + n_q, 18);
  auto q = random_floats(static_cast<size_t>(q_shape.numel()), -1, 1, 19);
  std::vector<float> want(q.size());
  at_ref([&] {
    attention(view_of(q, q_shape), TensorView(k.data(), cache_shape, DType::f32),
              TensorView(v.data(), cache_shape, DType::f32), pos0, view_of(want, q_shape), pool, 10.0f);
  });
  const Tensor out = cuda::empty(q_shape, DType::f32);
  cuda::attention(to_gpu(q, q_shape), cuda::to_device(TensorView(k.data(), cache_shape, DType::f32), gpu()),
                  cuda::to_device(TensorView(v.data(), cache_shape, DType::f32), gpu()), pos0, out, gpu(), 10.0f);
  // Scores reach ±100 (80x the default scale), where exp alone would overflow: score
  // errors grow with their magnitude, 80 x 2.4e-7, as the CPU SIMD levels' bound.
  require_close(from_gpu(out), want, 2e-5, 0);
}

TEST_CASE("cuda ops: a decode step allocates nothing once warm", "[cuda]") {
  require_cuda();
  const int64_t heads = 14, kv_heads = 2, head_dim = 64, max_pos = 512, dim = heads * head_dim;
  const RopeCache cache(head_dim, max_pos);
  const cuda::RopeTable table(cache, gpu());
  std::vector<float> h(dim, 0.5f), w(dim, 1.0f);
  const Tensor x = to_gpu(h, {1, dim}), norm_w = to_gpu(w, {dim}), y = cuda::empty({1, dim}, DType::f32);
  const Tensor q = cuda::zeros({1, heads, head_dim}, DType::f32, gpu()),
               out = cuda::empty({1, heads, head_dim}, DType::f32);
  const Tensor kc = cuda::zeros({kv_heads, max_pos, head_dim}, DType::f16, gpu());
  const Tensor vc = cuda::zeros({kv_heads, max_pos, head_dim}, DType::f16, gpu());
  const Tensor kv_src = cuda::zeros({1, kv_heads, head_dim}, DType::f32, gpu());
  auto step = [&](int32_t pos) {
    const std::vector<int32_t> p = {pos};
    cuda::rmsnorm(x, norm_w, 1e-5f, y, gpu());
    cuda::rope(q, p, RopeLayout::neox, table, gpu());
    cuda::kv_store(kv_src, kc, pos, gpu());
    cuda::kv_store(kv_src, vc, pos, gpu());
    cuda::attention(q, kc, vc, pos, out, gpu());
    cuda::add_inplace(y, x, gpu());
  };
  for (int32_t pos = 0; pos < 300; ++pos) step(pos);  // warm-up: the caches' size classes get their blocks
  const uint64_t mallocs = cuda::allocator_stats().device_allocations;
  for (int32_t pos = 300; pos < 500; ++pos) step(pos);
  gpu().synchronize();
  REQUIRE(cuda::allocator_stats().device_allocations == mallocs);
}

TEST_CASE("cuda ops: bad arguments throw the CPU ops' messages", "[cuda]") {
  require_cuda();
  std::vector<float> host(12);
  const TensorView on_cpu(host.data(), {3, 4}, DType::f32);
  const Tensor a = cuda::empty({3, 4}, DType::f32), b = cuda::empty({4, 3}, DType::f32);
  REQUIRE_THROWS_WITH(cuda::add(a, b, a, gpu()), Catch::Contains("[add] a is 3x4 but b is 4x3"));
  REQUIRE_THROWS_WITH(cuda::add(a, on_cpu, a, gpu()),
                      Catch::Contains("[add] b is on cpu, but this op runs on the GPU"));
  const Tensor h16 = cuda::empty({3, 4}, DType::f16);
  REQUIRE_THROWS_WITH(cuda::silu(h16, h16, gpu()), Catch::Contains("[silu] x is 3x4 f16 but must be f32"));
  const Tensor w = cuda::empty({5}, DType::f32);
  REQUIRE_THROWS_WITH(cuda::rmsnorm(a, w, 1e-5f, a, gpu()), Catch::Contains("[rmsnorm] w is 5 but x is 3x4"));
  const Tensor q = cuda::empty({1, 4, 64}, DType::f32), k = cuda::empty({3, 8, 64}, DType::f16);
  const Tensor out = cuda::empty({1, 4, 64}, DType::f32);
  REQUIRE_THROWS_WITH(cuda::attention(q, k, k, 0, out, gpu()),
                      Catch::Contains("[attention]") && Catch::Contains("4 query heads cannot share 3 KV heads"));
  const Tensor k2 = cuda::empty({2, 8, 64}, DType::f16);
  REQUIRE_THROWS_WITH(cuda::attention(q, k2, k2, 8, out, gpu()), Catch::Contains("do not fit a cache of 8"));
  REQUIRE_THROWS_WITH(cuda::attention(q, k2, k2, 0, q, gpu()), Catch::Contains("overlaps q"));
}
