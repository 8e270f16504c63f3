// The matmul dispatch point: y[M,N] = x[M,K] · W[N,K]ᵀ.
//
// Every Linear layer of every model goes through matmul(). It chooses one
// implementation ("path") from the device, the weight's dtype, the number of
// activation rows M and the CPU's ISA level, and can be forced to any path
// (MatmulOptions::force, or QILIN_MATMUL=<name> in the environment) so tests
// and benchmarks can compare them. The choice is the table kCpuPlan in
// kernels/matmul.cpp; the figures behind it are in docs/performance.md.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

#include "core/allocator.h"
#include "core/tensor.h"
#include "core/thread_pool.h"

namespace qilin {

enum class MatmulPath : uint8_t {
  automatic,  // let the dispatcher choose
  ref,        // scalar reference (the oracle in tests)
  simd,       // Qilin's own AVX2/AVX-512 GEMV and GEMM kernels
  eigen,      // Eigen, the portable fallback
  onednn,     // oneDNN (large M; f32 and bf16, AMX when present), weights reordered once
  cuda,       // own CUDA kernels (small M on the GPU)   — wired in by the CUDA backend
  cublas,     // cuBLAS (large M on the GPU)             — wired in by the CUDA backend
};
inline constexpr int kMatmulPathCount = 7;

std::string_view name_of(MatmulPath p) noexcept;
bool matmul_path_from_name(std::string_view name, MatmulPath* out) noexcept;

struct MatmulOptions {
  MatmulPath force = MatmulPath::automatic;  // automatic also consults QILIN_MATMUL
  bool verbose = false;                      // print the plan once per shape (also QILIN_VERBOSE=1)
  // Lets float weights be multiplied in bf16 for many rows (prefill), where AMX runs
  // an order of magnitude faster than any f32 path: on AMX CPUs by the own tile kernels
  // from 7 rows on (simd path; weight panels converted as they are read, no copy kept),
  // elsewhere f32/f16 by oneDNN from 16 rows on (converted once, at prepare(), and kept).
  // Costs accuracy: weights and activations are rounded to bf16 (2^-8 relative each).
  bool allow_bf16_compute = false;
};

// A weight [N, K] as the dispatcher sees it: the stored tensor (often mmapped,
// never copied) plus whatever packed forms a path prepared for it once, at load.
// f32, f16, bf16, or a GGUF block format (q8_0, q4_0, q4_1, q4_k, q6_k), which
// is multiplied as stored, never dequantized: the own kernels quantize x to 8-bit
// blocks per call and use integer dot products (kernels/cpu/qgemm_table.h); their
// SIMD levels read a copy repacked into 16-row interleaved groups (the same size
// as the stored bytes, built by prepare() or the first call; see packed_bytes()).
class MatmulWeight {
 public:
  explicit MatmulWeight(TensorView w);
  ~MatmulWeight();
  MatmulWeight(MatmulWeight&&) noexcept;
  MatmulWeight& operator=(MatmulWeight&&) noexcept;

  // Builds packed forms (e.g. oneDNN's reordered bf16 weights, or the interleaved
  // groups of a block-format weight, on `pool` when given) for activations
  // of up to `max_m` rows, so that no call reorders the weight. Optional: a
  // path that needs a pack and finds none builds it on first use.
  void prepare(int64_t max_m, const MatmulOptions& opts = {}, ThreadPool* pool = nullptr);

  // Bytes held by the packed forms and the resident copy (0 before any is built),
  // e.g. to account for a model's memory; it grows only when a path packs the weight.
  size_t packed_bytes() const noexcept;

  // Copies a float weight (f32, f16, bf16) into 2 MiB huge pages this MatmulWeight
  // owns and re-points view() at the copy, for every path. Decode streams each weight
  // once per token, and from a file mapping's 4 KiB pages that stream runs 10-15%
  // slower (TLB misses; prefetchers stop at page boundaries). Block formats are not
  // copied (their SIMD kernels read a repacked copy): the repack that prepare() builds
  // goes into the arena instead, in huge pages too. Call before prepare().
  // The copy lives in `arena`, which must outlive this MatmulWeight.
  void make_resident(HugePageArena& arena, ThreadPool* pool = nullptr);
  // True when the paths this weight was prepared for read only memory it owns (a
  // resident copy, or the repack of a block format), so the caller may release the
  // original bytes (Checkpoint::release_pages); reading them stays correct.
  bool holds_copy() const noexcept;

  const TensorView& view() const noexcept { return w_; }
  int64_t n() const noexcept { return w_.dim(0); }  // outputs
  int64_t k() const noexcept { return w_.dim(1); }  // inputs

  struct Packs;  // per-path state, defined by the implementation
  Packs& packs() const noexcept { return *packs_; }

 private:
  TensorView w_;
  std::unique_ptr<Packs> packs_;
};

// Whether MatmulWeight multiplies by weights of this dtype as stored (f32, f16, bf16
// and the block formats q8_0, q4_0, q4_1, q4_k, q6_k); a loader converts the others.
bool matmul_accepts(DType w) noexcept;

// The path matmul() would take for M rows of activations against `w`.
MatmulPath plan_matmul(int64_t m, const MatmulWeight& w, const MatmulOptions& opts = {});

// y = x · Wᵀ. x is [M, K] f32, y is [M, N] f32, both with contiguous rows; W any
// weight type above.
// Throws qilin::Error naming the shapes when they do not fit.
void matmul(const TensorView& x, const MatmulWeight& w, const TensorView& y, ThreadPool& pool,
            const MatmulOptions& opts = {});

// y = (silu(gate) ⊙ up) · Wᵀ: an MLP's down projection with SwiGLU applied to its
// input; gate and up are [M, K] f32 with contiguous rows. The same result, bit for
// bit, as swiglu(gate, up, gate) and then matmul(gate, w, y). Where the path prepares
// x anyway (block-format weights on the own kernels quantize or round it), the
// product is formed row by row as x is prepared and never written out: prefill then
// streams gate and up once instead of writing and re-reading an [M, K] f32 product.
// Elsewhere swiglu() runs first, into `gate`: treat gate's contents as clobbered.
// CPU tensors only (the CUDA decoder runs cuda::swiglu, then matmul).
void matmul_swiglu(const TensorView& gate, const TensorView& up, const MatmulWeight& w, const TensorView& y,
                   ThreadPool& pool, const MatmulOptions& opts = {});

// y[i] = x · W[i]ᵀ for several weights that read the same activations (a layer's
// Q, K and V projections; the MLP's gate and up). The same result as one matmul()
// per weight, but on the own CPU kernels the rows of every weight are split over the
// pool in a single parallel region: one wake-up and one barrier instead of one per
// weight, which is what small-model decode is bound by. At most 8 weights.
void matmul_group(const TensorView& x, std::span<const MatmulWeight* const> w, std::span<const TensorView> y,
                  ThreadPool& pool, const MatmulOptions& opts = {});

// A hint for decode: the next matmul, matmul_swiglu or matmul_group on `pool`, with
// `m` rows of x, will read these weights (in this order). When m is decode-sized the
// pool's idle workers pull their shares of the bytes into cache while the caller runs
// the ops in between (ThreadPool::hint_next_dynamic), so the weight stream does not
// pause for them. Only a hint: no effect on results; none on the GPU or one thread.
void hint_next_matmul(int64_t m, std::span<const MatmulWeight* const> w, ThreadPool& pool) noexcept;

}  // namespace qilin
