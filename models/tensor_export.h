// Rows of a tensor on their way into a GGUF file being written (convert, quantize):
// read from a mapped source in any type with a dequantize function (f32, f16, bf16,
// or a block format), optionally with the llama family's Q/K rows permuted, and
// written in the output type through f32 (core's reference quantizers).
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "core/tensor.h"

namespace qilin {

class GgufWriter;
class ThreadPool;

struct TensorExport {
  std::string name;  // GGUF name
  Shape shape;       // outermost first, as written
  DType out_type = DType::f32;
  TensorView source;          // contiguous rows of `shape` in the source's type
  int64_t permute_heads = 0;  // > 0: llama Q/K rows permuted over this many heads (see below)
};

// llama.cpp's LlamaModel.permute: w.reshape(n_head, 2, rows / n_head / 2, cols).swapaxes(1, 2).
// Output row h*hd + 2i + s comes from source row h*hd + s*hd/2 + i (hd = rows / n_head),
// so the two halves that Hugging Face's rotate_half pairs become adjacent rows.
int64_t permuted_source_row(int64_t row, int64_t head_dim) noexcept;

// Fills `dst` (row_bytes(out_type, cols) * rows bytes) with `t`'s rows in its out_type:
// copied when the types match, else dequantized to f32 and converted or quantized.
// Rows are split over `pool` when there are enough of them.
void export_rows(const TensorExport& t, std::span<uint8_t> dst, ThreadPool& pool);

// True when export_rows would only copy the source bytes (same type, no permutation).
bool exports_as_stored(const TensorExport& t) noexcept;

// Adds `t` to the writer: its stored bytes when exports_as_stored, else a producer that
// runs export_rows when write() gets to it. `t`, its source and `pool` must outlive write().
void add_export_tensor(GgufWriter& writer, const TensorExport& t, ThreadPool& pool);

}  // namespace qilin
