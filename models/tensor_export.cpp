#include "models/tensor_export.h"

#include <cstring>
#include <vector>

#include "core/gguf_writer.h"
#include "core/thread_pool.h"

namespace qilin {

int64_t permuted_source_row(int64_t row, int64_t head_dim) noexcept {
  const int64_t head = row / head_dim, within = row % head_dim;
  return head * head_dim + (within % 2) * (head_dim / 2) + within / 2;
}

bool exports_as_stored(const TensorExport& t) noexcept {
  return t.out_type == t.source.dtype() && t.permute_heads == 0;
}

void export_rows(const TensorExport& t, std::span<uint8_t> dst, ThreadPool& pool) {
  const int64_t rows = t.shape.rows(), cols = t.shape.last();
  const DType src_type = t.source.dtype();
  const size_t src_row = row_bytes(src_type, cols), dst_row = row_bytes(t.out_type, cols);
  const auto* src = static_cast<const uint8_t*>(t.source.data());
  const int64_t head_dim = t.permute_heads > 0 ? rows / t.permute_heads : 0;
  const size_t n_scratch = static_cast<size_t>(pool.size());
  // Per thread: one f32 row, and one aligned copy of a source row (safetensors data is
  // aligned only as far as the tensors before it keep it).
  std::vector<float> f32_rows(n_scratch * static_cast<size_t>(cols));
  std::vector<float> raw_rows(n_scratch * ((src_row + sizeof(float) - 1) / sizeof(float)));
  const size_t raw_stride = raw_rows.size() / n_scratch;
  const bool aligned = reinterpret_cast<uintptr_t>(src) % 4 == 0 && src_row % 4 == 0;
  const DTypeTraits& from = traits(src_type);
  const DTypeTraits& to = traits(t.out_type);
  const auto convert = [&](int64_t begin, int64_t end, size_t slot) noexcept {
    float* f32 = f32_rows.data() + slot * static_cast<size_t>(cols);
    float* raw = raw_rows.data() + slot * raw_stride;
    for (int64_t r = begin; r < end; ++r) {
      const int64_t s = head_dim > 0 ? permuted_source_row(r, head_dim) : r;
      const uint8_t* in = src + static_cast<size_t>(s) * src_row;
      uint8_t* out = dst.data() + static_cast<size_t>(r) * dst_row;
      if (src_type == t.out_type) {
        std::memcpy(out, in, src_row);
        continue;
      }
      if (!aligned) {
        std::memcpy(raw, in, src_row);
        in = reinterpret_cast<const uint8_t*>(raw);
      }
      from.to_float(in, f32, cols);
      to.from_float(f32, out, cols);
    }
  };
  if (rows < 2 * pool.size()) {
    convert(0, rows, 0);
    return;
  }
  pool.run([&](int thread, int n_threads) {
    const int64_t begin = rows * thread / n_threads, end = rows * (thread + 1) / n_threads;
    convert(begin, end, static_cast<size_t>(thread));
  });
}

void add_export_tensor(GgufWriter& writer, const TensorExport& t, ThreadPool& pool) {
  if (exports_as_stored(t)) {
    writer.add_tensor(t.name, t.shape, t.out_type, static_cast<const void*>(t.source.data()));
  } else {
    writer.add_tensor(t.name, t.shape, t.out_type, [&t, &pool](std::span<uint8_t> dst) { export_rows(t, dst, pool); });
  }
}

}  // namespace qilin
