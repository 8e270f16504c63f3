// Quantized weights on the `ref` and `simd` matmul paths: the packed form of a
// weight (built once), and the per-call quantization of x into scratch.
//
// Allocation-free once warm: x's quantized form lives in a per-thread buffer of
// the calling thread (grown, never shrunk), and the packed weight is built at
// prepare() or on the first call that needs it.
#include <cstring>
#include <span>

#include "core/allocator.h"
#include "kernels/cpu/gemm_table.h"
#include "kernels/cpu/ops_table.h"
#include "kernels/cpu/qgemm_pack.h"
#include "kernels/matmul_paths.h"

namespace qilin::detail {

// The repacked groups: in a huge-page arena (MatmulWeight::make_resident) or a buffer of their own.
struct QuantPack {
  AlignedBuffer owned;
  void* data = nullptr;
  size_t bytes = 0;
};

void QuantPackDeleter::operator()(QuantPack* p) const noexcept { delete p; }

namespace {

cpu::QFormat qformat(DType t) noexcept {
  switch (t) {
    case DType::q8_0:
      return cpu::QFormat::q8_0;
    case DType::q4_0:
      return cpu::QFormat::q4_0;
    case DType::q4_1:
      return cpu::QFormat::q4_1;
    case DType::q4_k:
      return cpu::QFormat::q4_k;
    default:
      return cpu::QFormat::q6_k;
  }
}

const cpu::QGemmTable& table_for(bool scalar_ref) {
  return cpu::qgemm_table(scalar_ref ? cpu::Isa::ref : cpu::active_isa());
}

// The packed form, built on first use (on the pool when one is given), in `arena`
// when one is given (prepare() only: the lazy first-use path may run on any thread,
// and an arena is not thread-safe).
const QuantPack& packed(const MatmulWeight& w, ThreadPool* pool, HugePageArena* arena = nullptr) {
  MatmulWeight::Packs& packs = w.packs();
  if (const QuantPack* ready = packs.quant_ready.load(std::memory_order_acquire)) return *ready;
  std::lock_guard lock(packs.mutex);
  if (!packs.quant) {
    const cpu::QFormat f = qformat(w.view().dtype());
    std::unique_ptr<QuantPack, QuantPackDeleter> pack(new QuantPack);
    pack->bytes = cpu::qpack_bytes(f, w.n(), w.k());
    if (arena != nullptr) {
      pack->data = arena->allocate(pack->bytes);
    } else {
      pack->owned = AlignedBuffer(pack->bytes);
      pack->data = pack->owned.data();
    }
    const int64_t groups = (w.n() + cpu::kPackRows - 1) / cpu::kPackRows;
    auto pack_range = [&](int64_t g0, int64_t g1) {
      cpu::qpack_groups(f, w.view().data(), w.view().row_stride_bytes(), w.n(), w.k(), g0, g1, pack->data);
    };
    if (pool != nullptr) {
      pool->parallel_for(groups, 1, pack_range);
    } else {
      pack_range(0, groups);
    }
    packs.quant = std::move(pack);
    packs.quant_ready.store(packs.quant.get(), std::memory_order_release);
  }
  return *packs.quant;
}

// The offset corrections the kernels add to their integer sums (qgemm_table.h):
// per 32-element block for q8_0 (offset 128) and q4_0 (8), per 16 for q6_k (32).
enum CorrKind { kCorrQ8, kCorrQ4, kCorrQ6, kCorrKinds };

CorrKind corr_kind(cpu::QFormat f) {
  if (f == cpu::QFormat::q8_0) return kCorrQ8;
  if (f == cpu::QFormat::q6_k) return kCorrQ6;
  return kCorrQ4;  // q4_1 and q4_k read none; any valid array will do
}

// The forms of x the kernels of a call read (qgemm_table.h's QuantizedX): int8 blocks
// with every kind of correction, and/or x rounded to bf16 (the AMX bf16 kernels).
struct XScratch {
  int8_t* q = nullptr;
  float* d = nullptr;
  float* ds = nullptr;
  int32_t* sums16 = nullptr;
  int32_t* corr[kCorrKinds] = {};
  uint16_t* xb = nullptr;
};

// Rows rounded up to cpu::kXRowPadding; the extra rows' values and scales are zeroed
// when `tiles` (a kernel for many rows reads whole tiles of 16). Kernels for few rows
// read only the m rows: decode skips ~11 KB of memset per call.
XScratch x_scratch(int64_t m, int64_t k, bool int8, bool bf16, bool tiles) {
  const int64_t padded = (m + cpu::kXRowPadding - 1) / cpu::kXRowPadding * cpu::kXRowPadding;
  const size_t nb = static_cast<size_t>(k / cpu::kXBlock), rows = static_cast<size_t>(padded);
  const size_t q_bytes = int8 ? align_up(rows * static_cast<size_t>(k)) : 0;
  const size_t f_bytes = int8 ? align_up(rows * nb * sizeof(float)) : 0;
  const size_t i_bytes = int8 ? align_up(rows * 2 * nb * sizeof(int32_t)) : 0;
  const size_t b_bytes = bf16 ? align_up(rows * static_cast<size_t>(k) * 2) : 0;
  const size_t total = q_bytes + 2 * f_bytes + (1 + kCorrKinds) * i_bytes + b_bytes;
  thread_local AlignedBuffer buffer;
  if (buffer.size() < total) buffer = AlignedBuffer(total);
  char* p = static_cast<char*>(buffer.data());
  XScratch s;
  const size_t pad_rows = tiles ? static_cast<size_t>(padded - m) : 0;
  if (int8) {
    s.q = reinterpret_cast<int8_t*>(p);
    s.d = reinterpret_cast<float*>(p + q_bytes);
    s.ds = reinterpret_cast<float*>(p + q_bytes + f_bytes);
    s.sums16 = reinterpret_cast<int32_t*>(p + q_bytes + 2 * f_bytes);
    for (int c = 0; c < kCorrKinds; ++c) {
      s.corr[c] = reinterpret_cast<int32_t*>(p + q_bytes + 2 * f_bytes + static_cast<size_t>(1 + c) * i_bytes);
    }
    std::memset(s.q + m * k, 0, pad_rows * static_cast<size_t>(k));
    std::memset(s.d + m * static_cast<int64_t>(nb), 0, pad_rows * nb * sizeof(float));
    std::memset(s.ds + m * static_cast<int64_t>(nb), 0, pad_rows * nb * sizeof(float));
  }
  if (bf16) {
    s.xb = reinterpret_cast<uint16_t*>(p + q_bytes + 2 * f_bytes + (1 + kCorrKinds) * i_bytes);
    for (int64_t r = m; r < m + static_cast<int64_t>(pad_rows); ++r) {
      for (int64_t e = 0; e < k; e += 32) std::memset(s.xb + cpu::xb_tiled_offset(r, e, k), 0, 32 * 2);
    }
  }
  return s;
}

// Prepares rows [r0, r1) of the activations in the forms of s: quantized with the
// corrections in `kinds` (a bit mask), and/or rounded to bf16. `x` points at row r0
// of the activations, rows `ldx` floats apart.
void prepare_block(bool scalar_ref, const float* x, int64_t ldx, int64_t k, const XScratch& s, unsigned kinds,
                   int64_t r0, int64_t r1) {
  const int64_t nb = k / cpu::kXBlock;
  if (s.xb != nullptr) {
    const auto round = cpu::gemm_table(scalar_ref ? cpu::Isa::ref : cpu::active_isa()).round_to_bf16;
    // In the tiled layout of QuantizedX::xb: one 32-value piece at a time.
    for (int64_t r = r0; r < r1; ++r) {
      const float* row = x + (r - r0) * ldx;
      for (int64_t e = 0; e < k; e += 32) round(row + e, s.xb + cpu::xb_tiled_offset(r, e, k), 32);
    }
  }
  if (s.q == nullptr) return;
  table_for(scalar_ref)
      .quantize_x(x, ldx, r1 - r0, k, s.q + r0 * k, s.d + r0 * nb, s.ds + r0 * nb, s.sums16 + r0 * 2 * nb);
  for (int64_t r = r0; r < r1; ++r) {
    const int32_t* sums = s.sums16 + r * 2 * nb;
    if (kinds & (1u << kCorrQ8 | 1u << kCorrQ4)) {
      int32_t* q8 = s.corr[kCorrQ8] + r * 2 * nb;
      int32_t* q4 = s.corr[kCorrQ4] + r * 2 * nb;
      for (int64_t b = 0; b < nb; ++b) {
        const int32_t sum = sums[2 * b] + sums[2 * b + 1];
        q8[b] = -128 * sum;
        q4[b] = -8 * sum;
      }
    }
    if (kinds & (1u << kCorrQ6)) {
      int32_t* q6 = s.corr[kCorrQ6] + r * 2 * nb;
      for (int64_t j = 0; j < 2 * nb; ++j) q6[j] = -32 * sums[j];
    }
  }
}

// Rows [r0, r1) of the call's activations. For matmul_swiglu each row's silu(gate) * up
// is formed in a buffer that stays in L1 and prepared from there: an MLP's down
// projection then reads gate and up once and writes only its own forms of x, where
// swiglu() followed by matmul() writes the product in f32 and reads it back (at 512
// rows of Qwen2.5-0.5B, 10 MB each way per layer; measured, that traffic was the small
// part: silu's exp is most of the cost, and prefill moved within this host's noise).
// swiglu is the active level's kernel, on every path, so the result is bit-identical
// to swiglu() then matmul().
void prepare_rows(bool scalar_ref, const MatmulCall& c, const XScratch& s, unsigned kinds, int64_t r0, int64_t r1) {
  if (c.up == nullptr) return prepare_block(scalar_ref, c.x + r0 * c.ldx, c.ldx, c.k, s, kinds, r0, r1);
  const auto swiglu = cpu::ops_table(cpu::active_isa()).swiglu;
  thread_local AlignedBuffer buffer;
  const size_t bytes = static_cast<size_t>(c.k) * sizeof(float);
  if (buffer.size() < bytes) buffer = AlignedBuffer(bytes);
  auto* row = static_cast<float*>(buffer.data());
  for (int64_t r = r0; r < r1; ++r) {
    swiglu(c.x + r * c.ldx, c.up + r * c.ldup, row, c.k);
    prepare_block(scalar_ref, row, c.k, c.k, s, kinds, r, r + 1);
  }
}

// Elements of x below which preparing it on the pool is not worth a wake-up.
constexpr int64_t kParallelQuantizeElements = int64_t{1} << 15;

}  // namespace

bool is_quant_weight(DType w) noexcept {
  return w == DType::q8_0 || w == DType::q4_0 || w == DType::q4_1 || w == DType::q4_k || w == DType::q6_k;
}

void prepare_quant(const MatmulWeight& w, ThreadPool* pool) {
  if (table_for(false).kernel[static_cast<int>(qformat(w.view().dtype()))].packed) packed(w, pool, w.packs().arena);
}

size_t quant_packed_bytes(const MatmulWeight& w) noexcept {
  const QuantPack* pack = w.packs().quant_ready.load(std::memory_order_acquire);
  return pack != nullptr ? pack->bytes : 0;
}

ThreadPool::ByteRange quant_stream_bytes(const MatmulWeight& w) noexcept {
  if (const QuantPack* pack = w.packs().quant_ready.load(std::memory_order_acquire)) return {pack->data, pack->bytes};
  return {w.view().data(), w.view().nbytes()};
}

bool swiglu_folds_into(MatmulPath path, DType w) noexcept {
  return (path == MatmulPath::simd || path == MatmulPath::ref) && is_quant_weight(w);
}

const char* quant_kernel_name(int64_t m, DType w, bool scalar_ref) {
  return table_for(scalar_ref).for_rows(qformat(w), m).name;
}

void prepare_quant_jobs(std::span<const MatmulCall> calls, bool scalar_ref, QuantJob* jobs) {
  const cpu::QGemmTable& table = table_for(scalar_ref);
  const MatmulCall* first = nullptr;
  unsigned kinds = 0;
  bool int8 = false, bf16 = false, tiles = false;
  for (const MatmulCall& c : calls) {
    if (!is_quant_weight(c.w.view().dtype())) continue;
    if (first == nullptr) first = &c;
    const cpu::QFormat f = qformat(c.w.view().dtype());
    kinds |= 1u << corr_kind(f);
    tiles = tiles || c.m >= table.large_min_m[static_cast<int>(f)];
    (table.for_rows(f, c.m).bf16_x ? bf16 : int8) = true;
  }
  if (first == nullptr) return;
  const MatmulCall& c = *first;  // every call of a group reads the same x
  const XScratch s = x_scratch(c.m, c.k, int8, bf16, tiles);
  if (c.m > 1 && c.m * c.k >= kParallelQuantizeElements) {
    c.pool.parallel_for(c.m, 1, [&](int64_t r0, int64_t r1) { prepare_rows(scalar_ref, c, s, kinds, r0, r1); });
  } else {
    prepare_rows(scalar_ref, c, s, kinds, 0, c.m);
  }
  for (size_t i = 0; i < calls.size(); ++i) {
    const MatmulCall& call = calls[i];
    if (!is_quant_weight(call.w.view().dtype())) continue;
    const cpu::QFormat f = qformat(call.w.view().dtype());
    QuantJob& job = jobs[i];
    job.kernel = &table.for_rows(f, c.m);
    job.args.x = {s.q, s.d, s.ds, s.corr[corr_kind(f)], s.xb, c.m, c.k};
    job.args.w = job.kernel->packed ? packed(call.w, &call.pool).data : call.w.view().data();
    job.args.w_stride = call.w.view().row_stride_bytes();
    job.args.n = call.n;
    job.args.y = call.y;
    job.args.ldy = call.ldy;
  }
}

}  // namespace qilin::detail
