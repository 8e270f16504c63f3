// Internal to the matmul dispatch point: the paths behind matmul() and the
// per-weight state they keep. Not installed; nothing outside kernels/ includes it.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>

#include "kernels/cpu/gemm_table.h"
#include "kernels/cpu/qgemm_table.h"
#include "kernels/matmul.h"

namespace qilin {
namespace detail {

// Arguments of one call, checked by matmul(): x [m, k] f32 and y [m, n] f32
// with contiguous rows (row strides in elements), w [n, k] f32/f16/bf16 or a block format.
struct MatmulCall {
  const float* x;
  float* y;
  int64_t m, n, k;
  int64_t ldx, ldy;
  const MatmulWeight& w;
  ThreadPool& pool;
  const MatmulOptions& opts;
  // matmul_swiglu: when set, the activations are silu(x) * up (x holds the gate), which
  // the quantized paths form row by row as they prepare x (see swiglu_folds_into).
  const float* up = nullptr;
  int64_t ldup = 0;
};

// With MatmulOptions::allow_bf16_compute, float weights are multiplied in bf16 from
// this many rows on (fewer rows stream the weight through the own GEMV in its stored
// type, bandwidth-bound anyway): on the own AMX kernels where the active level has
// them (simd_bf16_compute; from 7 rows, where the GEMV's 6-row tiles would stream the
// weight twice), else f32 and f16 on oneDNN from 16 rows at avx512_bf16.
inline constexpr int64_t kSimdBf16ComputeMinRows = 7;
inline constexpr int64_t kOnednnBf16ComputeMinRows = 16;

// Whether the simd path multiplies M rows by a weight of dtype w on the own
// bf16-compute kernels (GemmTable::gemm_bf16 at a level where they are fast).
bool simd_bf16_compute(int64_t m, DType w, const MatmulOptions& opts);

// Own kernels (kernels/cpu/gemm_table.h): `ref` uses the scalar table, `simd`
// the active ISA level's. Allocation-free after the first call of a shape.
void run_cpu_kernels(const MatmulCall& call, bool scalar_ref);
// The calls (1 to 8, all reading the same x) on the bf16-compute kernels, where
// simd_bf16_compute holds for each (kernels/matmul_bf16.cpp).
void run_bf16_compute(std::span<const MatmulCall* const> calls);
// Shared by the two: a call's arguments for a float kernel, the index of a float
// weight dtype in cpu::GemmTable, and the calling thread's scratch for kernels that
// ask for some (grown, never shrunk).
cpu::GemmArgs gemm_args(const MatmulCall& c);
int gemm_weight_index(DType w) noexcept;
void* cpu_thread_scratch(size_t bytes);
// Several calls with the same x in one parallel region (at most 8; see matmul_group).
void run_cpu_kernels_group(std::span<const MatmulCall> calls, bool scalar_ref);
// Products with at most this many rows of x (decode) split their weight's rows over
// the pool with parallel_for_dynamic; larger ones statically (kernels/matmul_cpu.cpp).
constexpr int64_t kDynamicMaxRows = 4;
// The name of the kernel run_cpu_kernels would use (for the verbose plan).
const char* cpu_kernel_name(int64_t m, DType w, bool scalar_ref, const MatmulOptions& opts);

// Quantized weights (kernels/matmul_quant.cpp): q8_0, q4_0, q4_1, q4_k, q6_k on the
// own kernels (kernels/cpu/qgemm_table.h), activations quantized once per call.
bool is_quant_weight(DType w) noexcept;
// The packed form of a quantized weight for the SIMD kernels (kernels/cpu/qgemm_pack.h).
struct QuantPack;
struct QuantPackDeleter {
  void operator()(QuantPack* p) const noexcept;
};
// Builds the packed form now (on `pool` when given) if the active level's kernel reads one.
void prepare_quant(const MatmulWeight& w, ThreadPool* pool);
size_t quant_packed_bytes(const MatmulWeight& w) noexcept;
// The bytes a decode kernel streams for this quantized weight: its packed form once
// built, else the weight as stored.
ThreadPool::ByteRange quant_stream_bytes(const MatmulWeight& w) noexcept;
const char* quant_kernel_name(int64_t m, DType w, bool scalar_ref);

// Whether `path` forms matmul_swiglu's activations itself, row by row as it prepares x
// (quantized weights on the own kernels); on the other paths swiglu() runs first.
bool swiglu_folds_into(MatmulPath path, DType w) noexcept;

// One quantized product, ready to run over rows [n0, n1) of its weight on any thread:
// kernel->fn(args, n0, n1), n0 a multiple of kernel->n_grain.
struct QuantJob {
  const cpu::QGemmKernel* kernel = nullptr;
  cpu::QGemmArgs args;
};
// Quantizes the shared x of `calls` once (per-thread scratch of the calling thread,
// grown on first use) and fills jobs[i] for every call whose weight is quantized
// (the others are left alone). Builds missing packed forms on the pool.
void prepare_quant_jobs(std::span<const MatmulCall> calls, bool scalar_ref, QuantJob* jobs);

// Eigen at baseline flags, N split across the pool (kernels/matmul_eigen.cpp).
void run_eigen(const MatmulCall& call);

// oneDNN matmul with the weight reordered once (kernels/matmul_onednn.cpp).
struct OnednnPack;
struct OnednnPackDeleter {
  void operator()(OnednnPack* p) const noexcept;
};
// Why oneDNN cannot multiply by this weight; empty when it can.
std::string onednn_unsupported_reason(DType w, const MatmulOptions& opts);
void prepare_onednn(const MatmulWeight& w, int64_t max_m, const MatmulOptions& opts);
void run_onednn(const MatmulCall& call);
// oneDNN's implementation name for the last primitive used with this weight ("" before any).
std::string onednn_impl_name(const MatmulWeight& w);
// Bytes of this weight's packed copies in oneDNN's layouts.
size_t onednn_packed_bytes(const MatmulWeight& w) noexcept;

}  // namespace detail

struct MatmulWeight::Packs {
  std::mutex mutex;  // guards lazy construction of the packs below
  std::unique_ptr<detail::OnednnPack, detail::OnednnPackDeleter> onednn;
  std::unique_ptr<detail::QuantPack, detail::QuantPackDeleter> quant;
  std::atomic<const detail::QuantPack*> quant_ready{nullptr};  // `quant` once built: read without the lock
  size_t resident_bytes = 0;       // make_resident()'s copy of a float weight (view() points into it)
  HugePageArena* arena = nullptr;  // make_resident()'s arena: where prepare() puts a block format's repack
};

}  // namespace qilin
