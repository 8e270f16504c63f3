// The `ref` and `simd` matmul paths: Qilin's own kernels (kernels/cpu/gemm_table.h
// for float weights, kernels/cpu/qgemm_table.h for block formats, set up by
// kernels/matmul_quant.cpp) with the output columns N split across the thread pool.
//
// Allocation-free once warm: the only scratch (for gemm kernels that pack a
// block of W, and quantized x) is per-thread, allocated on a thread's first such call.
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

const cpu::GemmKernel& kernel_for(const cpu::GemmTable& table, int64_t m, DType w) {
  return m <= table.gemv_max_m ? table.gemv[weight_index(w)] : table.gemm[weight_index(w)];
}

// The calling thread's scratch for kernels that ask for some, grown (never shrunk) on demand.
void* thread_scratch(size_t bytes) {
  thread_local AlignedBuffer buffer;
  if (buffer.size() < bytes) buffer = AlignedBuffer(bytes);
  return buffer.data();
}

}  // namespace

const char* cpu_kernel_name(int64_t m, DType w, bool scalar_ref) {
  if (is_quant_weight(w)) return quant_kernel_name(m, w, scalar_ref);
  return kernel_for(table_for(scalar_ref), m, w).name;
}

void run_cpu_kernels(const MatmulCall& call, bool scalar_ref) {
  if (is_quant_weight(call.w.view().dtype())) {
    QuantJob job;
    prepare_quant_jobs(std::span<const MatmulCall>(&call, 1), scalar_ref, &job);
    const size_t bytes = job.kernel->scratch_bytes(call.k);
    call.pool.parallel_for(call.n, job.kernel->n_grain, [&](int64_t n0, int64_t n1) {
      if (bytes == 0) return job.kernel->fn(job.args, n0, n1);
      cpu::QGemmArgs own = job.args;
      own.scratch = thread_scratch(bytes);
      job.kernel->fn(own, n0, n1);
    });
    return;
  }
  const cpu::GemmKernel& kernel = kernel_for(table_for(scalar_ref), call.m, call.w.view().dtype());
  cpu::GemmArgs args;
  args.x = call.x;
  args.w = call.w.view().data();
  args.y = call.y;
  args.m = call.m;
  args.k = call.k;
  args.ldx = call.ldx;
  args.ldy = call.ldy;
  args.w_stride = call.w.view().row_stride_bytes();
  const cpu::GemmFn fn = kernel.fn;
  const size_t scratch_bytes = kernel.scratch_bytes;
  call.pool.parallel_for(call.n, kernel.n_grain, [&](int64_t n0, int64_t n1) {
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
  for (size_t i = 0; i < count; ++i) {
    const MatmulCall& c = calls[i];
    if (quant[i].kernel != nullptr) {
      grain[i] = quant[i].kernel->n_grain;
      const size_t bytes = quant[i].kernel->scratch_bytes(c.k);
      scratch_bytes = scratch_bytes > bytes ? scratch_bytes : bytes;
    } else {
      kernels[i] = &kernel_for(table_for(scalar_ref), c.m, c.w.view().dtype());
      args[i].x = c.x;
      args[i].w = c.w.view().data();
      args[i].y = c.y;
      args[i].m = c.m;
      args[i].k = c.k;
      args[i].ldx = c.ldx;
      args[i].ldy = c.ldy;
      args[i].w_stride = c.w.view().row_stride_bytes();
      grain[i] = kernels[i]->n_grain;
      scratch_bytes = scratch_bytes > kernels[i]->scratch_bytes ? scratch_bytes : kernels[i]->scratch_bytes;
    }
    first_unit[i + 1] = first_unit[i] + (c.n + grain[i] - 1) / grain[i];
  }
  calls.front().pool.parallel_for(first_unit[count], 1, [&](int64_t u0, int64_t u1) {
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
