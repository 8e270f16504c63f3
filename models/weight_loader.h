// WeightLoader: a checkpoint's weights in the types the forward pass takes, with
// their shapes checked against the config. Shared by the CPU decoder (which uses the
// views in place or keeps the converted copies) and the GPU one (which uploads them).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "core/thread_pool.h"

namespace qilin {

class Checkpoint;

// Rows (of a matrix) or elements (of a vector) [first, first + count) of a fused
// tensor; count < 0: all of it.
struct WeightPart {
  int64_t first = 0, count = -1;
};

class WeightLoader {
 public:
  // Converted tensors go to `owned`; the views returned point into it, so it must not
  // reallocate while they are used (reserve it, or take each view before the next call).
  WeightLoader(const Checkpoint& c, bool dequantize, DType dequantize_to, std::vector<Tensor>& owned, ThreadPool& pool)
      : c_(c), dequantize_(dequantize), dequantize_to_(dequantize_to), owned_(owned), pool_(pool) {}

  // A Linear weight [rows, cols], or rows `part` of a fused one (GLM's attn_qkv and
  // gate/up ffn_up) as a view of whole rows: used in place (float types, and block
  // formats that run natively), or dequantized when asked to.
  TensorView matrix_part(const std::string& name, int64_t rows, int64_t cols, WeightPart part = {});
  // The type matrix_part() returns for a stored matrix of `stored` type.
  DType matrix_type(DType stored) const noexcept;
  // A vector (norm weight, bias) as f32; `part`: elements [first, + count) of it.
  TensorView vector(const std::string& name, int64_t n, WeightPart part = {});
  // The stored tensor `name`, checked to be `expected` and of a weight type.
  const TensorView& checked(const std::string& name, Shape expected) const;

 private:
  // Row by row through f32 (the traits' exact to_float, then the rounding from_float).
  TensorView convert(const TensorView& w, DType to);

  const Checkpoint& c_;
  bool dequantize_;
  DType dequantize_to_;
  std::vector<Tensor>& owned_;
  ThreadPool& pool_;
};

}  // namespace qilin
