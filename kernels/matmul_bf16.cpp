// bf16 compute on the own kernels (the simd path where simd_bf16_compute holds: many
// rows, MatmulOptions::allow_bf16_compute, a level whose GemmTable::gemm_bf16 is fast,
// i.e. AMX). x is rounded to bf16 once for all calls that read it (a matmul_group's
// weights share it), then each weight's gemm_bf16 kernel runs, which converts the
// weight panel by panel as it reads it. Two ways to split the work over the pool:
//  - by columns (N), the general case: each thread converts only its share of the
//    weight, and every thread reads all of x;
//  - by rows (M), for many rows against a small weight (SmolLM2's, or Qwen's attention
//    projections): each thread rounds and multiplies only its own rows of x, so x never
//    crosses cores and a thread's share of it stays in its L2, and it writes whole rows
//    of y; the price is that every thread converts the whole weight, which a small one
//    makes cheap. 512 rows, 2 threads (bench/bench_matmul.cpp, matmul_bf16compute):
//    1536x576 490 against 670 us by columns, 576x576 180 against 225, 576x1536 470
//    against 505; but 896x4864 (8.7 MB) 2300 against 2200, and below ~128 rows per
//    thread the duplicated conversion loses everywhere (576x1536 at 128 rows: 183 against 143).
#include <cstring>

#include "core/allocator.h"
#include "kernels/cpu/gemm_table.h"
#include "kernels/matmul_paths.h"

namespace qilin::detail {
namespace {

constexpr int64_t kRowSplitMinRowsPerThread = 192;
constexpr size_t kRowSplitMaxWeightBytes = size_t{4} << 20;
constexpr int64_t kRowBlock = 32;  // a 2 x 2 tile block's rows: row ranges start at its multiples
constexpr int64_t kParallelRoundElements = int64_t{1} << 15;  // below: not worth a wake-up
constexpr int kMaxCalls = 8;

// x in bf16 as the gemm_bf16 kernels read it (cpu::GemmArgs::xb): rows padded to
// kBf16RowPad, each row to ld elements, with zeros.
struct RoundedX {
  uint16_t* data;
  int64_t ld, rows;
};

// The calling thread's buffer (grown, never shrunk; every thread of the call reads it).
RoundedX rounded_x_buffer(int64_t m, int64_t k) {
  int64_t ld = (k + cpu::kBf16KPad - 1) / cpu::kBf16KPad * cpu::kBf16KPad;
  if (ld % 512 == 0) ld += cpu::kBf16KPad;  // rows a multiple of 1 KiB apart share L1 sets: 16-row tiles thrash
  const int64_t rows = (m + cpu::kBf16RowPad - 1) / cpu::kBf16RowPad * cpu::kBf16RowPad;
  thread_local AlignedBuffer buffer;
  const size_t bytes = static_cast<size_t>(rows * ld) * 2;
  if (buffer.size() < bytes) buffer = AlignedBuffer(bytes);
  return {static_cast<uint16_t*>(buffer.data()), ld, rows};
}

// Rounds rows [r0, r1) of x into xb; the range that ends x also zeroes the padding rows.
void round_rows(const MatmulCall& c, const RoundedX& xb, int64_t r0, int64_t r1) {
  const auto round = cpu::gemm_table(cpu::active_isa()).round_to_bf16;
  for (int64_t r = r0; r < r1; ++r) {
    round(c.x + r * c.ldx, xb.data + r * xb.ld, c.k);
    std::memset(xb.data + r * xb.ld + c.k, 0, static_cast<size_t>(xb.ld - c.k) * 2);
  }
  if (r1 == c.m) std::memset(xb.data + c.m * xb.ld, 0, static_cast<size_t>((xb.rows - c.m) * xb.ld) * 2);
}

struct Job {
  const cpu::GemmKernel* kernel;
  cpu::GemmArgs args;
};

void split_by_rows(std::span<const MatmulCall* const> calls, const Job* jobs, const RoundedX& xb, size_t scratch) {
  const MatmulCall& first = *calls.front();
  const int64_t blocks = (first.m + kRowBlock - 1) / kRowBlock;
  first.pool.run([&](int t, int nt) {
    const int64_t per = blocks / nt, extra = blocks % nt;
    const int64_t b0 = t * per + (t < extra ? t : extra), b1 = b0 + per + (t < extra ? 1 : 0);
    const int64_t r0 = b0 * kRowBlock, r1 = b1 * kRowBlock < first.m ? b1 * kRowBlock : first.m;
    if (r0 >= r1) return;
    round_rows(first, xb, r0, r1);
    void* own_scratch = cpu_thread_scratch(scratch);
    for (size_t i = 0; i < calls.size(); ++i) {
      cpu::GemmArgs own = jobs[i].args;
      own.xb += r0 * own.ldxb;
      own.y += r0 * own.ldy;
      own.m = r1 - r0;
      own.scratch = own_scratch;
      jobs[i].kernel->fn(own, 0, calls[i]->n);
    }
  });
}

// Each call's columns in units of its kernel's grain; the pool splits the units of all
// calls as one range, so a thread may finish one weight's columns and start the next's.
void split_by_columns(std::span<const MatmulCall* const> calls, const Job* jobs, const RoundedX& xb, size_t scratch) {
  const MatmulCall& first = *calls.front();
  if (first.m > 1 && first.m * first.k >= kParallelRoundElements) {
    first.pool.parallel_for(first.m, 1, [&](int64_t r0, int64_t r1) { round_rows(first, xb, r0, r1); });
  } else {
    round_rows(first, xb, 0, first.m);
  }
  int64_t first_unit[kMaxCalls + 1] = {0};
  for (size_t i = 0; i < calls.size(); ++i) {
    const int64_t grain = jobs[i].kernel->n_grain;
    first_unit[i + 1] = first_unit[i] + (calls[i]->n + grain - 1) / grain;
  }
  first.pool.parallel_for(first_unit[calls.size()], 1, [&](int64_t u0, int64_t u1) {
    void* own_scratch = cpu_thread_scratch(scratch);
    for (size_t i = 0; i < calls.size(); ++i) {
      const int64_t b = u0 > first_unit[i] ? u0 : first_unit[i];
      const int64_t e = u1 < first_unit[i + 1] ? u1 : first_unit[i + 1];
      if (b >= e) continue;
      const int64_t grain = jobs[i].kernel->n_grain;
      const int64_t n1 = (e - first_unit[i]) * grain;
      cpu::GemmArgs own = jobs[i].args;
      own.scratch = own_scratch;
      jobs[i].kernel->fn(own, (b - first_unit[i]) * grain, n1 < calls[i]->n ? n1 : calls[i]->n);
    }
  });
}

}  // namespace

void run_bf16_compute(std::span<const MatmulCall* const> calls) {
  const MatmulCall& first = *calls.front();  // every call reads the same x
  const RoundedX xb = rounded_x_buffer(first.m, first.k);
  const cpu::GemmTable& table = cpu::gemm_table(cpu::active_isa());
  Job jobs[kMaxCalls];
  size_t scratch = 0, weight_bytes = 0;
  for (size_t i = 0; i < calls.size(); ++i) {
    const MatmulCall& c = *calls[i];
    jobs[i].kernel = &table.gemm_bf16[gemm_weight_index(c.w.view().dtype())];
    jobs[i].args = gemm_args(c);
    jobs[i].args.xb = xb.data;
    jobs[i].args.ldxb = xb.ld;
    scratch = scratch > jobs[i].kernel->scratch_bytes ? scratch : jobs[i].kernel->scratch_bytes;
    weight_bytes += static_cast<size_t>(c.n) * c.w.view().row_size();
  }
  const bool by_rows = first.pool.size() > 1 && first.m >= kRowSplitMinRowsPerThread * first.pool.size() &&
                       weight_bytes <= kRowSplitMaxWeightBytes;
  if (by_rows) {
    split_by_rows(calls, jobs, xb, scratch);
  } else {
    split_by_columns(calls, jobs, xb, scratch);
  }
}

}  // namespace qilin::detail
