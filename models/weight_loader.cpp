#include "models/weight_loader.h"

#include "core/error.h"
#include "models/checkpoint.h"

namespace qilin {

TensorView WeightLoader::matrix_part(const std::string& name, int64_t rows, int64_t cols, WeightPart part) {
  TensorView w = checked(name, {rows, cols});
  if (part.count >= 0) w = w.slice_rows(part.first, part.count);
  return matrix_type(w.dtype()) == w.dtype() ? w : convert(w, dequantize_to_);
}

DType WeightLoader::matrix_type(DType stored) const noexcept {
  return traits(stored).is_float || !dequantize_ ? stored : dequantize_to_;
}

TensorView WeightLoader::vector(const std::string& name, int64_t n, WeightPart part) {
  TensorView w = checked(name, {n});
  if (part.count >= 0) {
    QILIN_CHECK(traits(w.dtype()).block_size == 1, "model", "{}: the fused vector {} is stored as {}", c_.path(), name,
                name_of(w.dtype()));
    w = TensorView(static_cast<char*>(w.data()) + row_bytes(w.dtype(), part.first), Shape{part.count}, w.dtype(),
                   w.device());
  }
  return w.dtype() == DType::f32 ? w : convert(w, DType::f32);
}

const TensorView& WeightLoader::checked(const std::string& name, Shape expected) const {
  const TensorView& w = c_.require(name);
  if (!(w.shape() == expected)) {
    fail("model", "{}: tensor {} is {} but the config implies {}", c_.path(), name, w.shape().str(), expected.str());
  }
  if (w.dtype() == DType::i8 || w.dtype() == DType::i32) {
    fail("model", "{}: tensor {} has type {}, which is not a weight type", c_.path(), name, name_of(w.dtype()));
  }
  return w;
}

TensorView WeightLoader::convert(const TensorView& w, DType to) {
  Tensor out = Tensor::empty(w.shape(), to);
  const TensorView dst = out.view();
  pool_.parallel_for(w.rows(), 64, [&](int64_t r0, int64_t r1) {
    std::vector<float> row(to == DType::f32 ? 0 : static_cast<size_t>(w.cols()));
    for (int64_t r = r0; r < r1; ++r) {
      float* f = to == DType::f32 ? dst.row<float>(r) : row.data();
      traits(w.dtype()).to_float(w.row(r), f, w.cols());
      if (to != DType::f32) traits(to).from_float(f, dst.row(r), w.cols());
    }
  });
  owned_.push_back(std::move(out));
  return owned_.back().view();
}

}  // namespace qilin
