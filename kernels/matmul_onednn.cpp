// The `onednn` matmul path: dnnl::matmul, the weight reordered once where it pays.
//
// A weight multiplied in bf16 is reordered, once per weight (at prepare(), or on
// first use), into the layout oneDNN's fastest kernel asks for (format_tag::any; on
// AMX CPUs the bf16 brgemm wants 16a64b2a blocks). Primitives are cached per
// (M, row strides, threads) and all read that one packed copy, so no call
// reorders the weight. An f32 weight multiplied in f32 is used as stored (see
// plain_weights()).
//
// Types: oneDNN 2.6 multiplies f32·f32 and bf16·bf16 (activations are rounded
// to bf16 per call, 2^-8 relative); it has no f16 matmul and no f32·bf16 mix.
// With MatmulOptions::allow_bf16_compute, f32 and f16 weights are converted to
// bf16 at reorder time so large M runs on AMX.
//
// Threads: this oneDNN is built on OpenMP. Large M on a cache-sized weight is
// split by rows across Qilin's pool, each thread running a single-threaded
// primitive on its rows with its own scratchpad; the rest goes to oneDNN's
// OpenMP team, sized to the pool (see onednn_threading for the measurements). Team sizes are set with
// omp_set_num_threads, looked up in the already-loaded OpenMP runtime so Qilin need not link it.
#include <dlfcn.h>
#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <deque>
#include <dnnl.hpp>
#include <string_view>
#include <vector>

#include "core/allocator.h"
#include "core/error.h"
#include "kernels/cpu/gemm_table.h"
#include "kernels/matmul_paths.h"

namespace qilin::detail {
namespace {

using dnnl::memory;
using DnnlType = memory::data_type;

dnnl::engine& cpu_engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

dnnl::stream& cpu_stream() {
  static dnnl::stream stream(cpu_engine());
  return stream;
}

void set_onednn_threads(int n) {
  using SetThreads = void (*)(int);
  static const auto set = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "omp_set_num_threads"));
  if (set != nullptr) set(n);
}

// allow_bf16_compute is a permission, taken only where the level multiplies bf16 in
// hardware (as the plan's oneDNN bf16 rows require): below it oneDNN 2.6 has no bf16
// matmul at all on AVX2-only CPUs (the primitive cannot be created) and emulates it on
// AVX-512 without BF16, slower than f32.
DnnlType compute_type(DType w, const MatmulOptions& opts) {
  if (w == DType::bf16) return DnnlType::bf16;
  if (opts.allow_bf16_compute && cpu::active_isa() >= cpu::Isa::avx512_bf16) return DnnlType::bf16;
  return DnnlType::f32;
}

uint16_t* bf16_scratch(size_t elements) {
  thread_local AlignedBuffer buffer;
  if (buffer.size() < elements * 2) buffer = AlignedBuffer(align_up(elements * 2, 4096));
  return static_cast<uint16_t*>(buffer.data());
}

}  // namespace

struct OnednnPack {
  DnnlType compute;
  int64_t k = 0, n = 0;
  // Packed copies of the weight; usually one, as every M has asked for the same layout so far.
  struct Layout {
    memory::desc desc;
    memory weights;
  };
  std::vector<Layout> layouts;
  struct Primitive {
    int64_t m, ldx, ldy;
    int threads;
    size_t layout;
    dnnl::matmul matmul;
    std::string impl;  // oneDNN's name for its kernel, e.g. "brg:avx512_core_amx_bf16"
    memory::desc scratchpad_desc;
  };
  std::deque<Primitive> primitives;        // a deque: references stay valid as it grows
  std::vector<AlignedBuffer> scratchpads;  // one per pool thread
  std::string impl;                        // of the last primitive used (for the verbose plan)
};

void OnednnPackDeleter::operator()(OnednnPack* p) const noexcept { delete p; }

namespace {

// Reorders the user's weight [N, K] (seen by oneDNN as [K, N] in "ba" order)
// into `desc`.
memory pack_weight(const MatmulWeight& w, const memory::desc& desc) {
  const TensorView& wv = w.view();
  const memory::dims dims{w.k(), w.n()};
  std::vector<float> widened;  // f16 weights go through f32: oneDNN 2.6 cannot read f16
  const void* data = wv.data();
  DnnlType type = wv.dtype() == DType::f32 ? DnnlType::f32 : DnnlType::bf16;
  int64_t row_stride = wv.row_stride_bytes() / static_cast<int64_t>(wv.dtype() == DType::f32 ? 4 : 2);
  if (wv.dtype() == DType::f16) {
    widened.resize(static_cast<size_t>(w.n() * w.k()));
    for (int64_t r = 0; r < w.n(); ++r) {
      traits(DType::f16).to_float(wv.row(r), widened.data() + r * w.k(), w.k());
    }
    data = widened.data();
    type = DnnlType::f32;
    row_stride = w.k();
  }
  memory user(memory::desc(dims, type, memory::dims{1, row_stride}), cpu_engine(), const_cast<void*>(data));
  memory packed(desc, cpu_engine());
  dnnl::reorder(user, packed).execute(cpu_stream(), user, packed);
  cpu_stream().wait();
  return packed;
}

// f32 weights multiplied in f32 are handed to oneDNN as they are stored ([N, K] rows
// seen as a [K, N] "ba" matrix), not reordered: its brgemm copies B blocks per call
// and runs within 0.5-5% of the reordered weight (896x4864 at M=512: 15.5 vs 15.4 ms;
// 576x1536: 3.08 vs 2.93 ms), where a reordered copy would double the model's memory.
// Where oneDNN has no kernel for that layout (its avx2 f32 matmul, e.g. with
// DNNL_MAX_CPU_ISA=AVX2), describe() falls back to a reordered copy.
bool plain_weights(const OnednnPack& pack, const MatmulWeight& w) {
  return pack.compute == DnnlType::f32 && w.view().dtype() == DType::f32;
}

memory::desc plain_weights_desc(const OnednnPack& pack, const MatmulWeight& w) {
  const int64_t row_stride = w.view().row_stride_bytes() / static_cast<int64_t>(sizeof(float));
  return memory::desc({w.k(), w.n()}, pack.compute, memory::dims{1, row_stride});
}

// The index of the packed copy in the layout `pd` asks for, packing it on first use.
size_t ensure_layout(OnednnPack& pack, const MatmulWeight& w, const dnnl::matmul::primitive_desc& pd) {
  for (size_t i = 0; i < pack.layouts.size(); ++i) {
    if (pack.layouts[i].desc == pd.weights_desc()) return i;
  }
  if (plain_weights(pack, w) && pd.weights_desc() == plain_weights_desc(pack, w)) {
    pack.layouts.push_back(
        {pd.weights_desc(), memory(pd.weights_desc(), cpu_engine(), const_cast<void*>(w.view().data()))});
    return pack.layouts.size() - 1;
  }
  pack.layouts.push_back({pd.weights_desc(), pack_weight(w, pd.weights_desc())});
  return pack.layouts.size() - 1;
}

dnnl::matmul::primitive_desc describe(const OnednnPack& pack, const MatmulWeight& w, int64_t m, int64_t ldx,
                                      int64_t ldy) {
  const memory::desc src({m, w.k()}, pack.compute, memory::dims{ldx, 1});
  const memory::desc dst({m, w.n()}, DnnlType::f32, memory::dims{ldy, 1});
  // The caller passes each thread its own scratchpad, so threads may run one primitive at once.
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  if (plain_weights(pack, w)) {
    try {
      return dnnl::matmul::primitive_desc(dnnl::matmul::desc(src, plain_weights_desc(pack, w), dst), attr,
                                          cpu_engine());
    } catch (const dnnl::error&) {
      // no kernel for the stored layout at this ISA: reorder once, as for bf16
    }
  }
  const memory::desc weights({w.k(), w.n()}, pack.compute, memory::format_tag::any);
  return dnnl::matmul::primitive_desc(dnnl::matmul::desc(src, weights, dst), attr, cpu_engine());
}

// The primitive for `m` rows, created (and the weight packed) on first use.
// oneDNN plans its work split for the OpenMP team size current when the
// primitive is created, so the caller sets the team size first and the cache keys on it.
OnednnPack::Primitive& find_primitive(OnednnPack& pack, const MatmulWeight& w, int64_t m, int64_t ldx, int64_t ldy,
                                      int threads) {
  for (auto& p : pack.primitives) {
    if (p.m == m && p.ldx == ldx && p.ldy == ldy && p.threads == threads) return p;
  }
  const dnnl::matmul::primitive_desc pd = describe(pack, w, m, ldx, ldy);
  const size_t layout = ensure_layout(pack, w, pd);
  pack.primitives.push_back({m, ldx, ldy, threads, layout, dnnl::matmul(pd), pd.impl_info_str(), pd.scratchpad_desc()});
  return pack.primitives.back();
}

// Thread `t`'s scratchpad, grown to what `p` needs.
void* scratchpad(OnednnPack& pack, int t, const OnednnPack::Primitive& p) {
  if (pack.scratchpads.size() <= static_cast<size_t>(t)) pack.scratchpads.resize(static_cast<size_t>(t) + 1);
  AlignedBuffer& buffer = pack.scratchpads[static_cast<size_t>(t)];
  const size_t bytes = p.scratchpad_desc.get_size();
  if (buffer.size() < bytes) buffer = AlignedBuffer(bytes);
  return buffer.data();
}

void execute(const OnednnPack& pack, OnednnPack::Primitive& p, void* src, float* dst, void* scratch) {
  thread_local dnnl::stream stream(cpu_engine());
  const int64_t k = pack.k, n = pack.n;
  memory src_mem(memory::desc({p.m, k}, pack.compute, memory::dims{p.ldx, 1}), cpu_engine(), src);
  memory dst_mem(memory::desc({p.m, n}, DnnlType::f32, memory::dims{p.ldy, 1}), cpu_engine(), dst);
  memory scratch_mem(p.scratchpad_desc, cpu_engine(), scratch);
  p.matmul.execute(stream, {{DNNL_ARG_SRC, src_mem},
                            {DNNL_ARG_WEIGHTS, pack.layouts[p.layout].weights},
                            {DNNL_ARG_DST, dst_mem},
                            {DNNL_ARG_SCRATCHPAD, scratch_mem}});
  stream.wait();
}

// How run_onednn spreads the work over threads:
//  - pool: rows split across Qilin's pool, one single-threaded primitive per
//    thread. No OpenMP team spins on the cores Qilin's pool uses (alternating
//    with pool work, the OpenMP way lost ~10%), and bf16 at 512x896x4864 ran
//    ~6% faster than oneDNN's own split. But every thread reads the whole weight;
//  - openmp: oneDNN's own team (as many threads as the pool) splits N, so the
//    weight is read once: better with fewer rows per thread (f32 at M = 64:
//    +17%) and for weights beyond the last-level cache (a 90 MB bf16 weight at
//    M = 64: +48%).
// Measured on the reference machine (docs/performance.md); QILIN_ONEDNN_THREADS=omp
// or =pool forces one.
enum class OnednnThreading { openmp, pool };
constexpr int64_t kPoolMinRowsPerThread = 128;
constexpr size_t kPoolMaxWeightBytes = size_t{32} << 20;

OnednnThreading onednn_threading(int64_t m, int threads, size_t weight_bytes) {
  const char* env = std::getenv("QILIN_ONEDNN_THREADS");
  if (env != nullptr && std::string_view(env) == "omp") return OnednnThreading::openmp;
  if (env != nullptr && std::string_view(env) == "pool") return OnednnThreading::pool;
  const bool many_rows = m >= kPoolMinRowsPerThread * threads;
  return many_rows && weight_bytes <= kPoolMaxWeightBytes ? OnednnThreading::pool : OnednnThreading::openmp;
}

// Rows [0, m) in `parts` contiguous ranges whose boundaries are multiples of 16
// (an AMX tile's rows), as even as that allows.
struct RowSplit {
  int64_t m, chunks;
  int parts;
  int64_t begin(int t) const { return chunk_begin(t) * 16; }
  int64_t rows(int t) const { return std::min(m, chunk_begin(t + 1) * 16) - begin(t); }
  int64_t chunk_begin(int t) const {
    const int64_t per = chunks / parts, extra = chunks % parts;
    return t * per + std::min<int64_t>(t, extra);
  }
};
RowSplit split_rows(int64_t m, int threads) {
  const int64_t chunks = (m + 15) / 16;
  return {m, chunks, static_cast<int>(std::min<int64_t>(threads, chunks))};
}

OnednnPack& pack_of(const MatmulWeight& w, const MatmulOptions& opts) {
  auto& slot = w.packs().onednn;
  const DnnlType compute = compute_type(w.view().dtype(), opts);
  if (!slot || slot->compute != compute) {
    slot.reset(new OnednnPack);
    slot->compute = compute;
    slot->k = w.k();
    slot->n = w.n();
  }
  return *slot;
}

}  // namespace

std::string onednn_unsupported_reason(DType w, const MatmulOptions& opts) {
  if (w != DType::f32 && w != DType::bf16 && w != DType::f16) return "oneDNN takes f32, f16 or bf16 weights only";
  if (w == DType::f16 && !opts.allow_bf16_compute) {
    return "oneDNN 2.6 has no f16 matmul on the CPU (MatmulOptions::allow_bf16_compute converts it to bf16 once)";
  }
  if (compute_type(w, opts) == DnnlType::bf16 && !cpu::isa_supported(cpu::Isa::avx512)) {
    return "oneDNN 2.6 multiplies bf16 only on CPUs with AVX-512";
  }
  return {};
}

void prepare_onednn(const MatmulWeight& w, int64_t max_m, const MatmulOptions& opts) {
  std::lock_guard lock(w.packs().mutex);
  OnednnPack& pack = pack_of(w, opts);
  try {
    // Only the packed weight is kept: primitives depend on the pool's size, known at the call.
    ensure_layout(pack, w, describe(pack, w, max_m, w.k(), w.n()));
  } catch (const dnnl::error& e) {
    fail("matmul", "oneDNN cannot prepare a {}x{} {} weight: {}", w.n(), w.k(), name_of(w.view().dtype()), e.what());
  }
}

void run_onednn(const MatmulCall& c) {
  std::lock_guard lock(c.w.packs().mutex);
  OnednnPack& pack = pack_of(c.w, c.opts);
  const bool bf16 = pack.compute == DnnlType::bf16;
  // oneDNN 2.6 has no f32·bf16 matmul: bf16 runs on activations rounded per call.
  uint16_t* xb = bf16 ? bf16_scratch(static_cast<size_t>(c.m * c.k)) : nullptr;
  const int64_t ldx = bf16 ? c.k : c.ldx;
  const auto round = cpu::gemm_table(cpu::active_isa()).round_to_bf16;
  try {
    const size_t weight_bytes = static_cast<size_t>(c.n * c.k) * (bf16 ? 2 : 4);
    if (onednn_threading(c.m, c.pool.size(), weight_bytes) == OnednnThreading::openmp) {
      set_onednn_threads(c.pool.size());
      if (bf16) {
        for (int64_t r = 0; r < c.m; ++r) round(c.x + r * c.ldx, xb + r * ldx, c.k);
      }
      OnednnPack::Primitive& p = find_primitive(pack, c.w, c.m, ldx, c.ldy, c.pool.size());
      execute(pack, p, bf16 ? static_cast<void*>(xb) : const_cast<float*>(c.x), c.y, scratchpad(pack, 0, p));
      pack.impl = p.impl;
      return;
    }
    // Rows split across Qilin's pool, one single-threaded primitive per thread.
    set_onednn_threads(1);
    const RowSplit split = split_rows(c.m, c.pool.size());
    std::vector<OnednnPack::Primitive*> primitives(static_cast<size_t>(split.parts));
    for (int t = 0; t < split.parts; ++t) {
      primitives[static_cast<size_t>(t)] = &find_primitive(pack, c.w, split.rows(t), ldx, c.ldy, 1);
      scratchpad(pack, t, *primitives[static_cast<size_t>(t)]);  // grown here, before the workers run
    }
    c.pool.run([&](int t, int) {
      if (t >= split.parts) return;
      set_onednn_threads(1);
      const int64_t r0 = split.begin(t), rows = split.rows(t);
      if (bf16) {
        for (int64_t r = r0; r < r0 + rows; ++r) round(c.x + r * c.ldx, xb + r * ldx, c.k);
      }
      void* src = bf16 ? static_cast<void*>(xb + r0 * ldx) : const_cast<float*>(c.x + r0 * c.ldx);
      execute(pack, *primitives[static_cast<size_t>(t)], src, c.y + r0 * c.ldy,
              pack.scratchpads[static_cast<size_t>(t)].data());
    });
    pack.impl = primitives[0]->impl;
  } catch (const dnnl::error& e) {
    fail("matmul", "oneDNN failed on x {}x{} times w {}x{} ({}): {}", c.m, c.k, c.n, c.k, name_of(c.w.view().dtype()),
         e.what());
  }
}

size_t onednn_packed_bytes(const MatmulWeight& w) noexcept {
  std::lock_guard lock(w.packs().mutex);
  size_t bytes = 0;
  if (w.packs().onednn) {
    for (const auto& layout : w.packs().onednn->layouts) bytes += layout.desc.get_size();
  }
  return bytes;
}

std::string onednn_impl_name(const MatmulWeight& w) {
  std::lock_guard lock(w.packs().mutex);
  return w.packs().onednn ? w.packs().onednn->impl : std::string();
}

}  // namespace qilin::detail
