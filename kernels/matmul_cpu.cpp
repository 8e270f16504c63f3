// The `ref` and `simd` matmul paths: Qilin's own kernels (kernels/cpu/gemm_table.h
// for float weights, kernels/cpu/qgemm_table.h for block formats, set up by
// kernels/matmul_quant.cpp) with the output columns N split across the thread pool.
//
// Allocation-free once warm: the only scratch (for gemm kernels that pack a
// block of W, quantized x, and x rounded to bf16) is per-thread, allocated on a
// thread's first such call.
//
// bf16 compute (MatmulOptions::allow_bf16_compute, many rows, a level whose
// GemmTable::gemm_bf16 is fast) has its own runner: kernels/matmul_bf16.cpp.
#include <algorithm>
#include <cstring>
#include <span>

#include "core/allocator.h"
#include "kernels/cpu/gemm_table.h"
#include "kernels/matmul_paths.h"

namespace qilin::detail {
namespace {

const cpu::GemmTable& table_for(bool scalar_ref) {
  return cpu::gemm_table(scalar_ref ? cpu::Isa::ref : cpu::active_isa());
}

// The kernel for m rows; `bf16` selects the bf16-compute kernels (simd_bf16_compute).
const cpu::GemmKernel& kernel_for(const cpu::GemmTable& table, int64_t m, DType w, bool bf16) {
  if (bf16) return table.gemm_bf16[gemm_weight_index(w)];
  return m <= table.gemv_max_m ? table.gemv[gemm_weight_index(w)] : table.gemm[gemm_weight_index(w)];
}

bool uses_bf16_compute(const MatmulCall& c, bool scalar_ref) {
  return !scalar_ref && simd_bf16_compute(c.m, c.w.view().dtype(), c.opts);
}

// Decode-sized products (a few rows of x) are one stream of the weight, split over the
// threads. A static split makes every thread wait at the end for the slowest, and on
// a shared machine one preempted thread stalls the whole step; so they go to
// parallel_for_dynamic, which balances the threads to within a piece of the kernel's
// grain while each still reads its share as a few long pieces. Larger products keep
// the static split: one contiguous range per thread packs and reuses its tiles best.

// Calls fn(begin, end) over [0, n) in ranges whose boundaries are multiples of `grain`.
template <class F>
void split_rows(ThreadPool& pool, int64_t m, int64_t n, int64_t grain, F&& fn) {
  if (m > kDynamicMaxRows || pool.size() == 1) return pool.parallel_for(n, grain, fn);
  pool.parallel_for_dynamic(n, grain, fn);
}

}  // namespace

int gemm_weight_index(DType w) noexcept {
  switch (w) {
    case DType::f16:
      return static_cast<int>(cpu::GemmWeight::f16);
    case DType::bf16:
      return static_cast<int>(cpu::GemmWeight::bf16);
    default:
      return static_cast<int>(cpu::GemmWeight::f32);
  }
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

void* cpu_thread_scratch(size_t bytes) {
  thread_local AlignedBuffer buffer;
  if (buffer.size() < bytes) buffer = AlignedBuffer(bytes);
  return buffer.data();
}

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
      own.scratch = cpu_thread_scratch(bytes);
      job.kernel->fn(own, n0, n1);
    });
    return;
  }
  if (uses_bf16_compute(call, scalar_ref)) {
    const MatmulCall* one = &call;
    return run_bf16_compute(std::span<const MatmulCall* const>(&one, 1));
  }
  const cpu::GemmKernel& kernel = kernel_for(table_for(scalar_ref), call.m, call.w.view().dtype(), false);
  const cpu::GemmArgs args = gemm_args(call);
  const cpu::GemmFn fn = kernel.fn;
  const size_t scratch_bytes = kernel.scratch_bytes;
  split_rows(call.pool, call.m, call.n, kernel.n_grain, [&](int64_t n0, int64_t n1) {
    if (scratch_bytes == 0) return fn(args, n0, n1);
    cpu::GemmArgs own = args;
    own.scratch = cpu_thread_scratch(scratch_bytes);
    fn(own, n0, n1);
  });
}

void run_cpu_kernels_group(std::span<const MatmulCall> calls, bool scalar_ref) {
  // Work is counted in units of each kernel's grain; the pool splits the units of all
  // calls as one range, so a thread may finish one weight's rows and start the next's.
  // Float and quantized weights may mix (quantized ones share one quantization of x);
  // those multiplied in bf16 go first, together, to their own runner.
  constexpr int kMaxGroup = 8;
  const cpu::GemmKernel* kernels[kMaxGroup] = {};
  cpu::GemmArgs args[kMaxGroup];
  QuantJob quant[kMaxGroup];
  int64_t grain[kMaxGroup];
  int64_t first_unit[kMaxGroup + 1];
  const size_t count = calls.size() < kMaxGroup ? calls.size() : kMaxGroup;
  const MatmulCall* bf16[kMaxGroup];
  size_t bf16_count = 0;
  for (size_t i = 0; i < count; ++i) {
    if (uses_bf16_compute(calls[i], scalar_ref)) bf16[bf16_count++] = &calls[i];
  }
  if (bf16_count > 0) run_bf16_compute(std::span<const MatmulCall* const>(bf16, bf16_count));
  if (bf16_count == count) return;
  prepare_quant_jobs(calls.first(count), scalar_ref, quant);
  first_unit[0] = 0;
  size_t scratch_bytes = 0;
  for (size_t i = 0; i < count; ++i) {
    const MatmulCall& c = calls[i];
    if (uses_bf16_compute(c, scalar_ref)) {  // done above: no units
      grain[i] = 1;
      first_unit[i + 1] = first_unit[i];
      continue;
    }
    if (quant[i].kernel != nullptr) {
      grain[i] = quant[i].kernel->n_grain;
      const size_t bytes = quant[i].kernel->scratch_bytes(c.k);
      scratch_bytes = scratch_bytes > bytes ? scratch_bytes : bytes;
    } else {
      kernels[i] = &kernel_for(table_for(scalar_ref), c.m, c.w.view().dtype(), false);
      args[i] = gemm_args(c);
      grain[i] = kernels[i]->n_grain;
      scratch_bytes = scratch_bytes > kernels[i]->scratch_bytes ? scratch_bytes : kernels[i]->scratch_bytes;
    }
    first_unit[i + 1] = first_unit[i] + (c.n + grain[i] - 1) / grain[i];
  }
  split_rows(calls.front().pool, calls.front().m, first_unit[count], 1, [&](int64_t u0, int64_t u1) {
    void* scratch = scratch_bytes ? cpu_thread_scratch(scratch_bytes) : nullptr;
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
