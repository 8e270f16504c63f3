// The matmul dispatch point: argument checks, the plan table, forcing, verbose.
#include "kernels/matmul.h"

#include <fmt/format.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <set>
#include <string>
#include <tuple>

#include "core/error.h"
#include "kernels/cpu/gemm_table.h"
#include "kernels/cpu/isa.h"
#include "kernels/cuda/device.h"
#include "kernels/cuda/matmul_cuda.h"
#include "kernels/matmul_paths.h"
#include "kernels/ops.h"

namespace qilin {
namespace {

constexpr std::string_view kPathNames[kMatmulPathCount] = {"auto", "ref", "simd", "eigen", "onednn", "cuda", "cublas"};

// ---- the plan ---------------------------------------------------------------
//
// How matmul() chooses on the CPU. First matching row wins: a row matches when
// the weight has its dtype, there are at least `min_m` activation rows and the
// active ISA level is at least `min_isa`. The thresholds are measured on this
// project's reference machine (Xeon with AMX, 2 cores) with
// bench/bench_matmul.cpp's matmul_crossover family; docs/performance.md has
// the figures:
//  - few rows are a weight stream (decode): own GEMV kernels run at the memory
//    roofline and allocate nothing;
//  - bf16 from 4 rows on: oneDNN's AMX kernels (brg:avx512_core_amx_bf16)
//    overtake the stream, and reach several TFLOP/s at large M, an order of
//    magnitude past any AVX-512 kernel;
//  - f32 from 7 rows on: oneDNN's f32 brgemm; the GEMV's 6-row tiles stream W
//    twice from 7 rows, and our packed GEMM stays ~10% behind oneDNN at large M;
//  - f16 has no oneDNN matmul (2.6): own kernels at any M;
//  - without AVX2 (or with QILIN_ISA=ref) only portable code runs: Eigen;
//  - block formats (q8_0, q4_0, q4_1, q4_k, q6_k) run on the own integer kernels at
//    any M (kernels/cpu/qgemm_table.h; the scalar ones without AVX2): no other path
//    takes them, and none may dequantize them.
// Before the table, MatmulOptions::allow_bf16_compute (the models' prefill default):
//  - on AMX every float weight takes the simd path: the own tile kernels
//    (kernels/cpu/amx/gemm_amx_bf16.cpp, run by kernels/matmul_bf16.cpp) from 7 rows
//    on, the GEMV below; never oneDNN. The tiles convert weight panels to bf16 as they
//    read them, so no copy of a weight outlives the call, where oneDNN keeps a reordered
//    bf16 copy of each for the model's lifetime (an f16 SmolLM2-135M at pp512: 521 ->
//    304 MB peak RSS), and they run at oneDNN's speed or better (pp512, 2 threads:
//    SmolLM2 f16 3949 -> 4016 t/s, Qwen2.5-0.5B f16 1301 -> 1446; SmolLM2 with bf16 or
//    f32 weights even). From 7 rows: the GEMV's 6-row tiles stream the weight twice there;
//  - with AVX512-BF16 but no AMX, f32 and f16 weights go to oneDNN's bf16 path from 16 rows.
struct PlanRow {
  DType weight;
  int64_t min_m;
  cpu::Isa min_isa;
  MatmulPath path;
};
constexpr PlanRow kCpuPlan[] = {
    // weight      rows  ISA level              path
    {DType::bf16, 4, cpu::Isa::avx512_bf16, MatmulPath::onednn}, {DType::bf16, 1, cpu::Isa::avx2, MatmulPath::simd},
    {DType::f32, 7, cpu::Isa::avx2, MatmulPath::onednn},         {DType::f32, 1, cpu::Isa::avx2, MatmulPath::simd},
    {DType::f16, 1, cpu::Isa::avx2, MatmulPath::simd},           {DType::f32, 1, cpu::Isa::ref, MatmulPath::eigen},
    {DType::f16, 1, cpu::Isa::ref, MatmulPath::eigen},           {DType::bf16, 1, cpu::Isa::ref, MatmulPath::eigen},
    {DType::q8_0, 1, cpu::Isa::avx2, MatmulPath::simd},          {DType::q8_0, 1, cpu::Isa::ref, MatmulPath::ref},
    {DType::q4_0, 1, cpu::Isa::avx2, MatmulPath::simd},          {DType::q4_0, 1, cpu::Isa::ref, MatmulPath::ref},
    {DType::q4_1, 1, cpu::Isa::avx2, MatmulPath::simd},          {DType::q4_1, 1, cpu::Isa::ref, MatmulPath::ref},
    {DType::q4_k, 1, cpu::Isa::avx2, MatmulPath::simd},          {DType::q4_k, 1, cpu::Isa::ref, MatmulPath::ref},
    {DType::q6_k, 1, cpu::Isa::avx2, MatmulPath::simd},          {DType::q6_k, 1, cpu::Isa::ref, MatmulPath::ref},
};

// How matmul() chooses on the GPU (the weight on Device::cuda): the own GEMV kernels
// while the product is a weight stream (decode, a few rows), cuBLAS from the row count
// where a GEMM's tensor cores win (llama.cpp switches at 8 rows too). Compiled but not
// yet measured: a session with a GPU sets these from bench figures (docs/cuda.md).
struct GpuPlanRow {
  DType weight;
  int64_t min_m;
  MatmulPath path;
};
constexpr int64_t kCublasMinRows = detail::kCudaGemvMaxRows + 1;
constexpr GpuPlanRow kGpuPlan[] = {
    // weight      rows            path
    {DType::f32, kCublasMinRows, MatmulPath::cublas},  {DType::f32, 1, MatmulPath::cuda},
    {DType::f16, kCublasMinRows, MatmulPath::cublas},  {DType::f16, 1, MatmulPath::cuda},
    {DType::bf16, kCublasMinRows, MatmulPath::cublas}, {DType::bf16, 1, MatmulPath::cuda},
    {DType::q8_0, kCublasMinRows, MatmulPath::cublas}, {DType::q8_0, 1, MatmulPath::cuda},
    {DType::q4_0, kCublasMinRows, MatmulPath::cublas}, {DType::q4_0, 1, MatmulPath::cuda},
    {DType::q4_1, kCublasMinRows, MatmulPath::cublas}, {DType::q4_1, 1, MatmulPath::cuda},
    {DType::q4_k, kCublasMinRows, MatmulPath::cublas}, {DType::q4_k, 1, MatmulPath::cuda},
    {DType::q6_k, kCublasMinRows, MatmulPath::cublas}, {DType::q6_k, 1, MatmulPath::cuda},
};

bool is_gpu_path(MatmulPath p) { return p == MatmulPath::cuda || p == MatmulPath::cublas; }

MatmulPath automatic_gpu_path(int64_t m, DType weight) {
  for (const GpuPlanRow& row : kGpuPlan) {
    if (row.weight == weight && m >= row.min_m) return row.path;
  }
  return MatmulPath::cuda;  // unreachable: check_weight admits only the dtypes above
}

MatmulPath automatic_path(int64_t m, DType weight, const MatmulOptions& opts) {
  const cpu::Isa isa = cpu::active_isa();
  // Where the level has own bf16-compute kernels (AMX), float weights that may be
  // multiplied in bf16 never go to oneDNN, which would keep a reordered copy of
  // each for the model's lifetime: the own tiles from a few rows on, the GEMV below.
  if (opts.allow_bf16_compute && traits(weight).is_float && cpu::gemm_table(isa).gemm_bf16_fast) {
    return MatmulPath::simd;
  }
  if (opts.allow_bf16_compute && (weight == DType::f32 || weight == DType::f16) &&
      m >= detail::kOnednnBf16ComputeMinRows && isa >= cpu::Isa::avx512_bf16) {
    return MatmulPath::onednn;
  }
  for (const PlanRow& row : kCpuPlan) {
    if (row.weight == weight && m >= row.min_m && isa >= row.min_isa) return row.path;
  }
  return MatmulPath::ref;  // unreachable: every weight dtype has a row for the ref level
}

// The path named by QILIN_MATMUL, read on every call (tests and benchmarks set
// it between calls); automatic when unset, empty or "auto".
MatmulPath path_from_environment() {
  const char* env = std::getenv("QILIN_MATMUL");
  if (env == nullptr || *env == '\0') return MatmulPath::automatic;
  MatmulPath p;
  if (!matmul_path_from_name(env, &p)) {
    fail("matmul", "QILIN_MATMUL={} is not a path; use one of auto, ref, simd, eigen, onednn, cuda, cublas", env);
  }
  return p;
}

bool verbose_from_environment() {
  const char* env = std::getenv("QILIN_VERBOSE");
  return env != nullptr && *env != '\0' && std::string_view(env) != "0";
}

// Throws when `path` cannot multiply by a weight of dtype `weight` on `device`.
void check_forced_path(MatmulPath path, DType weight, Device device, const MatmulOptions& opts) {
  if (device == Device::cuda && !is_gpu_path(path)) {
    fail("matmul", "path {} runs on the CPU, but the weight is on cuda (use cuda or cublas)", name_of(path));
  }
  switch (path) {
    case MatmulPath::cuda:
    case MatmulPath::cublas:
      if (!cuda::built_with_cuda()) {
        fail("matmul", "path {} runs on the GPU, but this build of Qilin has no CUDA backend", name_of(path));
      }
      if (device != Device::cuda) {
        fail("matmul", "path {} runs on the GPU (CUDA backend), but the weight is on {}", name_of(path),
             name_of(device));
      }
      return;
    case MatmulPath::eigen:
      if (detail::is_quant_weight(weight)) {
        fail("matmul",
             "path eigen cannot multiply by a {} weight: block formats run on the own kernels only (ref, simd)",
             name_of(weight));
      }
      return;
    case MatmulPath::onednn:
      if (std::string why = detail::onednn_unsupported_reason(weight, opts); !why.empty()) {
        fail("matmul", "path onednn cannot multiply by a {} weight: {}", name_of(weight), why);
      }
      return;
    default:
      return;
  }
}

void check_weight(const TensorView& w) {
  const DTypeTraits& tr = traits(w.dtype());
  if (w.device() == Device::cuda) {
    if (!cuda::built_with_cuda()) {
      fail("matmul",
           "the weight is on cuda, but this build of Qilin has no CUDA backend (configure with QILIN_CUDA=ON)");
    }
    if (!detail::cuda_accepts(w.dtype())) fail("matmul", "weight dtype {} is not supported on the GPU", tr.name);
    return;
  }
  // (A view of a block format always holds whole blocks per row: TensorView checks it.)
  if (tr.is_quantized) {
    if (!detail::is_quant_weight(w.dtype())) fail("matmul", "weight dtype {} is not supported yet", tr.name);
    return;
  }
  if (!tr.is_float) fail("matmul", "weight dtype {} is not a float type (f32, f16, bf16) or a block format", tr.name);
}

std::string describe_plan(MatmulPath path, int64_t m, const MatmulWeight& w, const MatmulOptions& opts, int threads) {
  std::string how;
  switch (path) {
    case MatmulPath::ref:
    case MatmulPath::simd:
      how = detail::cpu_kernel_name(m, w.view().dtype(), path == MatmulPath::ref, opts);
      break;
    case MatmulPath::eigen:
      how = "Eigen at baseline flags";
      break;
    case MatmulPath::onednn:
      how = fmt::format("oneDNN {}{}", detail::onednn_impl_name(w),
                        opts.allow_bf16_compute && w.view().dtype() != DType::bf16 ? ", bf16 compute allowed" : "");
      break;
    case MatmulPath::cuda:
    case MatmulPath::cublas:
      return fmt::format("[matmul] M={} N={} K={} w={} -> {} ({}; GPU)", m, w.n(), w.k(), name_of(w.view().dtype()),
                         name_of(path), detail::cuda_kernel_name(path, w.view().dtype()));
    default:
      break;
  }
  return fmt::format("[matmul] M={} N={} K={} w={} -> {} ({}; isa {}, {} threads)", m, w.n(), w.k(),
                     name_of(w.view().dtype()), name_of(path), how, cpu::name_of(cpu::active_isa()), threads);
}

// Prints the plan once per (M, N, K, dtype, path).
void print_plan_once(MatmulPath path, int64_t m, const MatmulWeight& w, const MatmulOptions& opts, int threads) {
  static std::mutex mutex;
  static std::set<std::tuple<int64_t, int64_t, int64_t, int, int>> printed;
  std::lock_guard lock(mutex);
  if (!printed.emplace(m, w.n(), w.k(), static_cast<int>(w.view().dtype()), static_cast<int>(path)).second) return;
  std::fprintf(stderr, "%s\n", describe_plan(path, m, w, opts, threads).c_str());
}

}  // namespace

std::string_view name_of(MatmulPath p) noexcept {
  const auto i = static_cast<size_t>(p);
  return i < std::size(kPathNames) ? kPathNames[i] : "?";
}

bool matmul_path_from_name(std::string_view name, MatmulPath* out) noexcept {
  for (size_t i = 0; i < std::size(kPathNames); ++i) {
    if (kPathNames[i] == name) {
      *out = static_cast<MatmulPath>(i);
      return true;
    }
  }
  return false;
}

MatmulWeight::MatmulWeight(TensorView w) : w_(w), packs_(std::make_unique<Packs>()) {
  if (w.ndim() != 2) fail("matmul", "the weight must be 2-D [N, K], got {}", w.shape().str());
  if (w.dim(0) < 1 || w.dim(1) < 1) fail("matmul", "the weight {} is empty", w.shape().str());
}
MatmulWeight::~MatmulWeight() = default;
MatmulWeight::MatmulWeight(MatmulWeight&&) noexcept = default;
MatmulWeight& MatmulWeight::operator=(MatmulWeight&&) noexcept = default;

size_t MatmulWeight::packed_bytes() const noexcept {
  return detail::onednn_packed_bytes(*this) + detail::quant_packed_bytes(*this) + packs_->resident_bytes;
}

void MatmulWeight::make_resident(HugePageArena& arena, ThreadPool* pool) {
  if (w_.device() != Device::cpu) return;  // a GPU weight is resident in GPU memory already
  if (detail::is_quant_weight(w_.dtype())) {
    packs_->arena = &arena;  // the repack prepare() builds goes there; the stored bytes are not copied
    return;
  }
  if (!traits(w_.dtype()).is_float || packs_->resident_bytes != 0) return;
  const int64_t rows = w_.rows();
  const size_t row_bytes = w_.row_size();
  const size_t bytes = static_cast<size_t>(rows) * row_bytes;
  auto* dst = static_cast<char*>(arena.allocate(bytes));
  auto copy_rows = [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) std::memcpy(dst + r * row_bytes, w_.row(r), row_bytes);
  };
  if (pool != nullptr) {
    pool->parallel_for(rows, 64, copy_rows);
  } else {
    copy_rows(0, rows);
  }
  w_ = TensorView(dst, w_.shape(), w_.dtype());
  packs_->resident_bytes = bytes;
}

bool MatmulWeight::holds_copy() const noexcept {
  return packs_->resident_bytes != 0 || detail::quant_packed_bytes(*this) > 0;
}

void MatmulWeight::prepare(int64_t max_m, const MatmulOptions& opts, ThreadPool* pool) {
  if (max_m < 1) fail("matmul", "prepare() needs max_m >= 1, got {}", max_m);
  if (w_.device() != Device::cpu) return;  // the GPU paths read the weight as stored
  if (detail::is_quant_weight(w_.dtype())) {
    // Decode (one row) and the largest batch may take different paths; pack for either.
    if (plan_matmul(1, *this, opts) == MatmulPath::simd || plan_matmul(max_m, *this, opts) == MatmulPath::simd) {
      detail::prepare_quant(*this, pool);
    }
    return;
  }
  if (plan_matmul(max_m, *this, opts) == MatmulPath::onednn) detail::prepare_onednn(*this, max_m, opts);
}

bool matmul_accepts(DType w) noexcept { return traits(w).is_float || detail::is_quant_weight(w); }

MatmulPath plan_matmul(int64_t m, const MatmulWeight& w, const MatmulOptions& opts) {
  check_weight(w.view());
  MatmulPath forced = opts.force != MatmulPath::automatic ? opts.force : path_from_environment();
  if (forced != MatmulPath::automatic) {
    check_forced_path(forced, w.view().dtype(), w.view().device(), opts);
    return forced;
  }
  if (w.view().device() == Device::cuda) return automatic_gpu_path(m, w.view().dtype());
  return automatic_path(m, w.view().dtype(), opts);
}

namespace {

// Checks one product and describes it for the paths.
detail::MatmulCall checked_call(const TensorView& x, const MatmulWeight& w, const TensorView& y, ThreadPool& pool,
                                const MatmulOptions& opts) {
  const TensorView& wv = w.view();
  if (x.device() != wv.device() || y.device() != wv.device()) {
    fail("matmul",
         "x is on {}, w on {} and y on {}: the CUDA backend multiplies only when all three are on the GPU, the CPU "
         "paths when all are on the CPU",
         name_of(x.device()), name_of(wv.device()), name_of(y.device()));
  }
  if (wv.device() == Device::cuda && !cuda::built_with_cuda()) {
    fail("matmul",
         "x, w and y are on cuda, but this build of Qilin has no CUDA backend (configure with QILIN_CUDA=ON)");
  }
  if (x.dtype() != DType::f32 || y.dtype() != DType::f32) {
    fail("matmul", "x and y must be f32, got x {} and y {}", name_of(x.dtype()), name_of(y.dtype()));
  }
  if (x.ndim() < 1 || y.ndim() < 1)
    fail("matmul", "x is {} and y is {}: need [M, K] and [M, N]", x.shape().str(), y.shape().str());
  const int64_t m = x.rows(), k = x.cols();
  if (k != w.k()) fail("matmul", "x is {} but w expects {} inputs", x.shape().str(), w.k());
  if (y.rows() != m || y.cols() != w.n()) {
    fail("matmul", "y is {} but x {} times w {}ᵀ is {}x{}", y.shape().str(), x.shape().str(), wv.shape().str(), m,
         w.n());
  }
  // Rows may be strided (a slice of a wider buffer) but each row is contiguous,
  // and rows must be evenly spaced: any 2-D view, or a contiguous N-D one.
  if ((x.ndim() > 2 && !x.is_contiguous()) || (y.ndim() > 2 && !y.is_contiguous())) {
    fail("matmul", "x {} and y {} must be 2-D views or contiguous", x.shape().str(), y.shape().str());
  }
  if (x.row_stride_bytes() % 4 != 0 || y.row_stride_bytes() % 4 != 0) {
    fail("matmul", "x {} and y {} need row strides that are whole floats", x.shape().str(), y.shape().str());
  }
  return {x.data_as<float>(),       y.data_as<float>(),       m, w.n(), k,
          x.row_stride_bytes() / 4, y.row_stride_bytes() / 4, w, pool,  opts};
}

void run_path(MatmulPath path, const detail::MatmulCall& call) {
  switch (path) {
    case MatmulPath::ref:
      detail::run_cpu_kernels(call, true);
      break;
    case MatmulPath::simd:
      detail::run_cpu_kernels(call, false);
      break;
    case MatmulPath::eigen:
      detail::run_eigen(call);
      break;
    case MatmulPath::onednn:
      detail::run_onednn(call);
      break;
    case MatmulPath::cuda:
      detail::run_cuda_gemv(call);
      break;
    case MatmulPath::cublas:
      detail::run_cublas(call);
      break;
    default:
      fail("matmul", "path {} is not a path that runs", name_of(path));
  }
}

}  // namespace

void matmul(const TensorView& x, const MatmulWeight& w, const TensorView& y, ThreadPool& pool,
            const MatmulOptions& opts) {
  const detail::MatmulCall call = checked_call(x, w, y, pool, opts);
  if (call.m == 0) return;
  const MatmulPath path = plan_matmul(call.m, w, opts);
  run_path(path, call);
  if (opts.verbose || verbose_from_environment()) print_plan_once(path, call.m, w, opts, pool.size());
}

void matmul_swiglu(const TensorView& gate, const TensorView& up, const MatmulWeight& w, const TensorView& y,
                   ThreadPool& pool, const MatmulOptions& opts) {
  detail::MatmulCall call = checked_call(gate, w, y, pool, opts);
  if (up.dtype() != DType::f32 || up.device() != gate.device() || up.shape() != gate.shape() ||
      (up.ndim() > 2 && !up.is_contiguous()) || up.row_stride_bytes() % 4 != 0) {
    fail("matmul", "matmul_swiglu: up is {} {} on {} but gate is {} f32 on {}: they must match, with contiguous rows",
         up.shape().str(), name_of(up.dtype()), name_of(up.device()), gate.shape().str(), name_of(gate.device()));
  }
  if (call.m == 0) return;
  const MatmulPath path = plan_matmul(call.m, w, opts);
  if (detail::swiglu_folds_into(path, w.view().dtype())) {
    call.up = up.data_as<float>();
    call.ldup = up.row_stride_bytes() / 4;
  } else {
    swiglu(gate, up, gate, pool);
  }
  run_path(path, call);
  if (opts.verbose || verbose_from_environment()) print_plan_once(path, call.m, w, opts, pool.size());
}

void matmul_group(const TensorView& x, std::span<const MatmulWeight* const> w, std::span<const TensorView> y,
                  ThreadPool& pool, const MatmulOptions& opts) {
  if (w.size() != y.size() || w.empty() || w.size() > 8) {
    fail("matmul", "matmul_group takes 1 to 8 weights and as many outputs, got {} and {}", w.size(), y.size());
  }
  // Fixed storage: the decode loop calls this and must not allocate (MatmulCall holds
  // references, so it is built in place and trivially destroyed).
  alignas(detail::MatmulCall) unsigned char storage[8 * sizeof(detail::MatmulCall)];
  auto* built = reinterpret_cast<detail::MatmulCall*>(storage);
  for (size_t i = 0; i < w.size(); ++i) new (built + i) detail::MatmulCall(checked_call(x, *w[i], y[i], pool, opts));
  const std::span<const detail::MatmulCall> calls(built, w.size());
  if (calls.front().m == 0) return;
  const MatmulPath first = plan_matmul(calls.front().m, *w[0], opts);
  bool same = first == MatmulPath::simd || first == MatmulPath::ref;
  for (size_t i = 1; i < w.size() && same; ++i) same = plan_matmul(calls[i].m, *w[i], opts) == first;
  const bool verbose = opts.verbose || verbose_from_environment();
  if (same) {
    detail::run_cpu_kernels_group(calls, first == MatmulPath::ref);
    if (verbose) {
      for (size_t i = 0; i < w.size(); ++i) print_plan_once(first, calls[i].m, *w[i], opts, pool.size());
    }
    return;
  }
  for (size_t i = 0; i < w.size(); ++i) {
    const MatmulPath path = plan_matmul(calls[i].m, *w[i], opts);
    run_path(path, calls[i]);
    if (verbose) print_plan_once(path, calls[i].m, *w[i], opts, pool.size());
  }
}

void hint_next_matmul(int64_t m, std::span<const MatmulWeight* const> w, ThreadPool& pool) noexcept {
  if (pool.size() == 1 || m > detail::kDynamicMaxRows) return;
  ThreadPool::ByteRange ranges[ThreadPool::kMaxHintRanges];
  size_t count = 0;
  for (const MatmulWeight* weight : w) {
    if (count == ThreadPool::kMaxHintRanges || weight->view().device() != Device::cpu) break;
    ranges[count++] = detail::is_quant_weight(weight->view().dtype())
                          ? detail::quant_stream_bytes(*weight)
                          : ThreadPool::ByteRange{weight->view().data(), weight->view().nbytes()};
  }
  pool.hint_next_dynamic(std::span<const ThreadPool::ByteRange>(ranges, count));
}

}  // namespace qilin
