// The `ref` and `simd` matmul paths: Qilin's own kernels (kernels/cpu/gemm_table.h
// for float weights, kernels/cpu/qgemm_table.h for block formats, set up by
// kernels/matmul_quant.cpp) with the output columns N split across the thread pool.
//
// Allocation-free once warm: the only scratch (for gemm kernels that pack a
// block of W, quantized x, and x rounded to bf16) is per-thread, allocated on a
// thread's first such call.
//
// bf16 compute (MatmulOptions::allow_bf16_compute, many rows, a level whose
// GemmTable::gemm_bf16 is fast): x is rounded to bf16 once per call, here, on the
// pool; the kernels convert the weight panel by panel into their scratch.
#include <algorithm>
#include <cstring>
#include <span>

#include "core/allocator.h"
#include "kernels/cpu/gemm_table.h"
#include "kernels/matmul_paths.h"

namespace qilin::detail {
namespace {

int weight_index(DType t) noexcept {
  switch (t) {
    case DType::f16:
      return static_cast<int>(cpu::GemmWeight::f16);
    case DType::bf16:
      return static_cast<int>(cpu::GemmWeight::bf16);
    default:
      return static_cast<int>(cpu::GemmWeight::f32);
  }
}

const cpu::GemmTable& table_for(bool scalar_ref) {
  return cpu::gemm_table(scalar_ref ? cpu::Isa::ref : cpu::active_isa());
}

// The kernel for m rows; `bf16` selects the bf16-compute kernels (simd_bf16_compute).
const cpu::GemmKernel& kernel_for(const cpu::GemmTable& table, int64_t m, DType w, bool bf16) {
  if (bf16) return table.gemm_bf16[weight_index(w)];
  return m <= table.gemv_max_m ? table.gemv[weight_index(w)] : table.gemm[weight_index(w)];
}

bool uses_bf16_compute(const MatmulCall& c, bool scalar_ref) {
  return !scalar_ref && simd_bf16_compute(c.m, c.w.view().dtype(), c.opts);
}

// The calling thread's scratch for kernels that ask for some, grown (never shrunk) on demand.
void* thread_scratch(size_t bytes) {
  thread_local AlignedBuffer buffer;
  if (buffer.size() < bytes) buffer = AlignedBuffer(bytes);
  return buffer.data();
}

// Elements of x below which rounding it on the pool is not worth a wake-up.
constexpr int64_t kParallelRoundElements = int64_t{1} << 15;

// x rounded to bf16 as the gemm_bf16 kernels read it (GemmArgs::xb), in the calling
// thread's buffer (grown, never shrunk; every thread of the call reads it).
void round_x_to_bf16(const MatmulCall& c, cpu::GemmArgs& args) {
  int64_t ld = (c.k + cpu::kBf16KPad - 1) / cpu::kBf16KPad * cpu::kBf16KPad;
  if (ld % 512 == 0) ld += cpu::kBf16KPad;  // rows a multiple of 1 KiB apart share L1 sets: 16-row tiles thrash
  const int64_t rows = (c.m + cpu::kBf16RowPad - 1) / cpu::kBf16RowPad * cpu::kBf16RowPad;
  thread_local AlignedBuffer buffer;
  const size_t bytes = static_cast<size_t>(rows * ld) * 2;
  if (buffer.size() < bytes) buffer = AlignedBuffer(bytes);
  auto* xb = static_cast<uint16_t*>(buffer.data());
  const auto round = cpu::gemm_table(cpu::active_isa()).round_to_bf16;
  auto round_rows = [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      round(c.x + r * c.ldx, xb + r * ld, c.k);
      std::memset(xb + r * ld + c.k, 0, static_cast<size_t>(ld - c.k) * 2);
    }
  };
  if (c.m > 1 && c.m * c.k >= kParallelRoundElements) {
    c.pool.parallel_for(c.m, 1, round_rows);
  } else {
    round_rows(0, c.m);
  }
  std::memset(xb + c.m * ld, 0, static_cast<size_t>((rows - c.m) * ld) * 2);
  args.xb = xb;
  args.ldxb = ld;
}

// Decode-sized products (a few rows of x) are one stream of the weight, split over the
// threads. A static split makes every thread wait at the end for the slowest, and on
// a shared machine one preempted thread stalls the whole step; so they are cut into
// several chunks per thread, claimed dynamically. Larger products keep the static
// split: one contiguous range per thread packs and reuses its tiles best.
constexpr int64_t kDynamicMaxRows = 4;
constexpr int64_t kChunksPerThread = 8;

// Calls fn(begin, end) over [0, n) in ranges whose boundaries are multiples of `grain`.
template <class F>
void split_rows(ThreadPool& pool, int64_t m, int64_t n, int64_t grain, F&& fn) {
  if (m > kDynamicMaxRows || pool.size() == 1) return pool.parallel_for(n, grain, fn);
  const int64_t units = (n + grain - 1) / grain;
  const int64_t per_chunk = std::max<int64_t>(1, units / (pool.size() * kChunksPerThread));
  pool.parallel_for_dynamic(n, per_chunk * grain, fn);
}

cpu::GemmArgs gemm_args(const MatmulCall& c) {
  cpu::GemmArgs args;
  args.x = c.x;
  args.w = c.w.view().data();
  args.y = c.y;
  args.m = c.m;
  args.k = c.k;
  args.ldx = c.ldx;
  args.ldy = c.ldy;
  args.w_stride = c.w.view().row_stride_bytes();
  return args;
}

}  // namespace

bool simd_bf16_compute(int64_t m, DType w, const MatmulOptions& opts) {
  return opts.allow_bf16_compute && traits(w).is_float && m >= kSimdBf16ComputeMinRows &&
         cpu::gemm_table(cpu::active_isa()).gemm_bf16_fast;
}

const char* cpu_kernel_name(int64_t m, DType w, bool scalar_ref, const MatmulOptions& opts) {
  if (is_quant_weight(w)) return quant_kernel_name(m, w, scalar_ref);
  return kernel_for(table_for(scalar_ref), m, w, !scalar_ref && simd_bf16_compute(m, w, opts)).name;
}

void run_cpu_kernels(const MatmulCall& call, bool scalar_ref) {
  if (is_quant_weight(call.w.view().dtype())) {
    QuantJob job;
    prepare_quant_jobs(std::span<const MatmulCall>(&call, 1), scalar_ref, &job);
    const size_t bytes = job.kernel->scratch_bytes(call.k);
    split_rows(call.pool, call.m, call.n, job.kernel->n_grain, [&](int64_t n0, int64_t n1) {
      if (bytes == 0) return job.kernel->fn(job.args, n0, n1);
      cpu::QGemmArgs own = job.args;
      own.scratch = thread_scratch(bytes);
      job.kernel->fn(own, n0, n1);
    });
    return;
  }
  const bool bf16 = uses_bf16_compute(call, scalar_ref);
  const cpu::GemmKernel& kernel = kernel_for(table_for(scalar_ref), call.m, call.w.view().dtype(), bf16);
  cpu::GemmArgs args = gemm_args(call);
  if (bf16) round_x_to_bf16(call, args);
  const cpu::GemmFn fn = kernel.fn;
  const size_t scratch_bytes = kernel.scratch_bytes;
  split_rows(call.pool, call.m, call.n, kernel.n_grain, [&](int64_t n0, int64_t n1) {
    if (scratch_bytes == 0) return fn(args, n0, n1);
    cpu::GemmArgs own = args;
    own.scratch = thread_scratch(scratch_bytes);
    fn(own, n0, n1);
  });
}

void run_cpu_kernels_group(std::span<const MatmulCall> calls, bool scalar_ref) {
  // Work is counted in units of each kernel's grain; the pool splits the units of all
  // calls as one range, so a thread may finish one weight's rows and start the next's.
  // Float and quantized weights may mix (quantized ones share one quantization of x).
  constexpr int kMaxGroup = 8;
  const cpu::GemmKernel* kernels[kMaxGroup] = {};
  cpu::GemmArgs args[kMaxGroup];
  QuantJob quant[kMaxGroup];
  int64_t grain[kMaxGroup];
  int64_t first_unit[kMaxGroup + 1];
  const size_t count = calls.size() < kMaxGroup ? calls.size() : kMaxGroup;
  prepare_quant_jobs(calls.first(count), scalar_ref, quant);
  first_unit[0] = 0;
  size_t scratch_bytes = 0;
  cpu::GemmArgs rounded;  // x in bf16, once for every call that multiplies in bf16
  for (size_t i = 0; i < count; ++i) {
    const MatmulCall& c = calls[i];
    if (quant[i].kernel != nullptr) {
      grain[i] = quant[i].kernel->n_grain;
      const size_t bytes = quant[i].kernel->scratch_bytes(c.k);
      scratch_bytes = scratch_bytes > bytes ? scratch_bytes : bytes;
    } else {
      const bool bf16 = uses_bf16_compute(c, scalar_ref);
      kernels[i] = &kernel_for(table_for(scalar_ref), c.m, c.w.view().dtype(), bf16);
      args[i] = gemm_args(c);
      if (bf16) {
        if (rounded.xb == nullptr) round_x_to_bf16(c, rounded);
        args[i].xb = rounded.xb;
        args[i].ldxb = rounded.ldxb;
      }
      grain[i] = kernels[i]->n_grain;
      scratch_bytes = scratch_bytes > kernels[i]->scratch_bytes ? scratch_bytes : kernels[i]->scratch_bytes;
    }
    first_unit[i + 1] = first_unit[i] + (c.n + grain[i] - 1) / grain[i];
  }
  split_rows(calls.front().pool, calls.front().m, first_unit[count], 1, [&](int64_t u0, int64_t u1) {
    void* scratch = scratch_bytes ? thread_scratch(scratch_bytes) : nullptr;
    for (size_t i = 0; i < count; ++i) {
      const int64_t b = u0 > first_unit[i] ? u0 : first_unit[i];
      const int64_t e = u1 < first_unit[i + 1] ? u1 : first_unit[i + 1];
      if (b >= e) continue;
      const int64_t n0 = (b - first_unit[i]) * grain[i];
      const int64_t n1 = (e - first_unit[i]) * grain[i] < calls[i].n ? (e - first_unit[i]) * grain[i] : calls[i].n;
      if (quant[i].kernel != nullptr) {
        cpu::QGemmArgs own = quant[i].args;
        own.scratch = scratch;
        quant[i].kernel->fn(own, n0, n1);
        continue;
      }
      cpu::GemmArgs own = args[i];
      own.scratch = scratch;
      kernels[i]->fn(own, n0, n1);
    }
  });
}

}  // namespace qilin::detail
