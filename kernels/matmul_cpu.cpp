// The `ref` and `simd` matmul paths: Qilin's own kernels (kernels/cpu/gemm_table.h)
// with the output columns N split across the thread pool.
//
// Allocation-free once warm: the only scratch (for gemm kernels that pack a
// block of W) is a per-thread buffer, allocated on a thread's first such call.
#include <cstring>

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
  return kernel_for(table_for(scalar_ref), m, w).name;
}

void run_cpu_kernels(const MatmulCall& call, bool scalar_ref) {
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

}  // namespace qilin::detail
