// The `ref` and `simd` matmul paths: Qilin's own kernels (kernels/cpu/gemm_table.h)
// with the output columns N split across the thread pool.
//
// Allocation-free once warm: the only scratch (x rounded to bf16, for kernels
// that multiply in bf16) is a per-thread buffer that grows to the largest call.
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

// A scratch buffer owned by the calling thread, grown (never shrunk) on demand.
uint16_t* bf16_scratch(size_t elements) {
  thread_local AlignedBuffer buffer;
  const size_t bytes = elements * sizeof(uint16_t);
  if (buffer.size() < bytes) buffer = AlignedBuffer(align_up(bytes, 4096));
  return static_cast<uint16_t*>(buffer.data());
}

}  // namespace

const char* cpu_kernel_name(int64_t m, DType w, bool scalar_ref) {
  return kernel_for(table_for(scalar_ref), m, w).name;
}

void run_cpu_kernels(const MatmulCall& call, bool scalar_ref) {
  const cpu::GemmTable& table = table_for(scalar_ref);
  const cpu::GemmKernel& kernel = kernel_for(table, call.m, call.w.view().dtype());

  cpu::GemmArgs args;
  args.x = call.x;
  args.w = call.w.view().data();
  args.y = call.y;
  args.m = call.m;
  args.k = call.k;
  args.ldx = call.ldx;
  args.ldy = call.ldy;
  args.w_stride = call.w.view().row_stride_bytes();

  if (kernel.wants_bf16_x) {
    // Rows padded to 32 elements (64 bytes) so that each row starts aligned.
    const int64_t ld = (call.k + 31) / 32 * 32;
    uint16_t* xb = bf16_scratch(static_cast<size_t>(call.m * ld));
    const auto round = table.round_to_bf16;
    call.pool.parallel_for(call.m, 1, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) round(call.x + r * call.ldx, xb + r * ld, call.k);
    });
    args.x_bf16 = xb;
    args.ldx_bf16 = ld;
  }

  const cpu::GemmFn fn = kernel.fn;
  call.pool.parallel_for(call.n, table.n_grain, [&](int64_t n0, int64_t n1) { fn(args, n0, n1); });
}

}  // namespace qilin::detail
