#include "core/tensor.h"

#include <cstring>

#include "core/allocator.h"
#include "core/error.h"

namespace qilin {

std::string_view name_of(Device d) noexcept { return d == Device::cpu ? "cpu" : "cuda"; }

Shape::Shape(std::initializer_list<int64_t> d) {
  if (d.size() > kMaxDims) fail("shape", "{} dimensions given, at most {} supported", d.size(), kMaxDims);
  for (int64_t v : d) {
    if (v < 0) fail("shape", "negative dimension {}", v);
    dims[static_cast<size_t>(ndim++)] = v;
  }
}

int64_t Shape::numel() const noexcept {
  int64_t n = 1;
  for (int i = 0; i < ndim; ++i) n *= dims[static_cast<size_t>(i)];
  return n;
}

bool Shape::operator==(const Shape& o) const noexcept {
  if (ndim != o.ndim) return false;
  for (int i = 0; i < ndim; ++i)
    if (dims[static_cast<size_t>(i)] != o.dims[static_cast<size_t>(i)]) return false;
  return true;
}

std::string Shape::str() const {
  if (ndim == 0) return "scalar";
  std::string s;
  for (int i = 0; i < ndim; ++i) {
    if (i) s += 'x';
    s += std::to_string(dims[static_cast<size_t>(i)]);
  }
  return s;
}

TensorView::TensorView(void* data, Shape shape, DType dtype, Device device)
    : data_(data), shape_(shape), dtype_(dtype), device_(device) {
  const DTypeTraits& tr = traits(dtype);
  if (shape.ndim > 0 && shape.last() % tr.block_size != 0) {
    fail("tensor", "innermost dimension {} of a {} tensor is not a multiple of its block size {}", shape.last(),
         tr.name, tr.block_size);
  }
  int64_t stride = static_cast<int64_t>(tr.block_bytes) / tr.block_size;  // element bytes; 0 for blocks
  for (int i = shape.ndim - 1; i >= 0; --i) {
    if (i == shape.ndim - 1) {
      strides_[static_cast<size_t>(i)] = stride;
      stride = static_cast<int64_t>(row_bytes(dtype, shape.last()));
    } else {
      strides_[static_cast<size_t>(i)] = stride;
      stride *= shape[i];
    }
  }
}

bool TensorView::is_contiguous() const noexcept {
  int64_t expect = static_cast<int64_t>(row_size());
  for (int i = ndim() - 2; i >= 0; --i) {
    if (strides_[static_cast<size_t>(i)] != expect) return false;
    expect *= shape_[i];
  }
  return true;
}

size_t TensorView::nbytes() const noexcept { return static_cast<size_t>(rows()) * row_size(); }

TensorView TensorView::slice_rows(int64_t begin, int64_t count) const {
  if (begin < 0 || count < 0 || begin + count > rows()) {
    fail("slice_rows", "rows [{}, {}) out of range for a {} tensor", begin, begin + count, shape_.str());
  }
  TensorView v = *this;
  v.data_ = static_cast<char*>(data_) + begin * row_stride_bytes();
  if (ndim() <= 1) {
    v.shape_ = Shape{cols()};
    v.strides_[0] = strides_[static_cast<size_t>(ndim() ? ndim() - 1 : 0)];
    if (count != 1) fail("slice_rows", "a 1-D tensor has one row, {} requested", count);
    return v;
  }
  // Flatten the outer dimensions into one row dimension.
  v.shape_ = Shape{count, cols()};
  v.strides_ = {row_stride_bytes(), strides_[static_cast<size_t>(ndim() - 1)], 0, 0};
  return v;
}

TensorView TensorView::reshape(Shape shape) const {
  if (!is_contiguous()) fail("reshape", "a non-contiguous {} tensor cannot be reshaped", shape_.str());
  if (shape.numel() != numel()) fail("reshape", "cannot reshape {} into {}", shape_.str(), shape.str());
  return TensorView(data_, shape, dtype_, device_);
}

Tensor Tensor::empty(Shape shape, DType dtype) {
  Tensor t;
  TensorView probe(nullptr, shape, dtype);
  const size_t bytes = probe.nbytes();
  void* p = aligned_alloc_bytes(bytes == 0 ? 1 : bytes);
  t.owner_ = std::shared_ptr<void>(p, [](void* q) { aligned_free(q); });
  t.view_ = TensorView(p, shape, dtype);
  return t;
}

Tensor Tensor::zeros(Shape shape, DType dtype) {
  Tensor t = empty(shape, dtype);
  std::memset(t.data(), 0, t.nbytes());
  return t;
}

Tensor Tensor::wrap(std::shared_ptr<void> owner, TensorView view) {
  Tensor t;
  t.owner_ = std::move(owner);
  t.view_ = view;
  return t;
}

}  // namespace qilin
