// Tensor (owning) and TensorView (non-owning): up to 4-D, row-major, with
// byte strides so one description covers plain types and block formats.
//
// Shape order is outermost first (PyTorch style): a weight of a Linear layer
// with K inputs and N outputs is [N, K], its rows contiguous, exactly as GGUF
// and safetensors store it. For block formats the innermost dimension must be
// contiguous and a multiple of the block size; strides of the outer
// dimensions are in bytes.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>

#include "core/dtype.h"

namespace qilin {

enum class Device : uint8_t { cpu, cuda };

std::string_view name_of(Device d) noexcept;

inline constexpr int kMaxDims = 4;

struct Shape {
  std::array<int64_t, kMaxDims> dims{};
  int ndim = 0;

  Shape() = default;
  Shape(std::initializer_list<int64_t> d);

  int64_t operator[](int i) const noexcept { return dims[static_cast<size_t>(i)]; }
  int64_t numel() const noexcept;
  int64_t last() const noexcept { return ndim ? dims[static_cast<size_t>(ndim - 1)] : 1; }
  // Product of all dimensions but the last: the number of rows.
  int64_t rows() const noexcept { return ndim ? numel() / last() : 1; }
  bool operator==(const Shape& o) const noexcept;
  std::string str() const;  // "4x576"
};

class TensorView {
 public:
  TensorView() = default;
  // A contiguous view of `data`.
  TensorView(void* data, Shape shape, DType dtype, Device device = Device::cpu);

  void* data() const noexcept { return data_; }
  template <class T>
  T* data_as() const noexcept {
    return static_cast<T*>(data_);
  }
  const Shape& shape() const noexcept { return shape_; }
  int ndim() const noexcept { return shape_.ndim; }
  int64_t dim(int i) const noexcept { return shape_[i]; }
  int64_t numel() const noexcept { return shape_.numel(); }
  int64_t rows() const noexcept { return shape_.rows(); }
  int64_t cols() const noexcept { return shape_.last(); }
  DType dtype() const noexcept { return dtype_; }
  Device device() const noexcept { return device_; }
  // Byte stride of dimension i.
  int64_t stride_bytes(int i) const noexcept { return strides_[static_cast<size_t>(i)]; }
  // Bytes of one row of the innermost dimension.
  size_t row_size() const noexcept { return row_bytes(dtype_, cols()); }
  bool is_contiguous() const noexcept;
  size_t nbytes() const noexcept;  // bytes spanned by a contiguous view

  // Start of row r, counting rows over all outer dimensions (requires the outer
  // dimensions to be laid out densely over rows, true for contiguous views and
  // for row slices of them).
  template <class T = void>
  T* row(int64_t r) const noexcept {
    return reinterpret_cast<T*>(static_cast<char*>(data_) + r * row_stride_bytes());
  }
  // Byte distance between consecutive rows (the stride of the second-innermost dimension).
  int64_t row_stride_bytes() const noexcept {
    return ndim() >= 2 ? strides_[static_cast<size_t>(ndim() - 2)] : static_cast<int64_t>(row_size());
  }

  // Rows [begin, begin + count) of a 2-D view (or of the flattened rows).
  TensorView slice_rows(int64_t begin, int64_t count) const;
  // Same bytes, another shape with the same number of elements (contiguous only).
  TensorView reshape(Shape shape) const;

 private:
  void* data_ = nullptr;
  Shape shape_;
  std::array<int64_t, kMaxDims> strides_{};
  DType dtype_ = DType::f32;
  Device device_ = Device::cpu;
};

// An owning tensor: a TensorView plus the memory behind it. Memory is either
// an aligned heap buffer or any keep-alive handle (an mmapped file, a device buffer).
class Tensor {
 public:
  Tensor() = default;
  // Uninitialised CPU tensor, 64-byte aligned.
  static Tensor empty(Shape shape, DType dtype);
  static Tensor zeros(Shape shape, DType dtype);
  // Wraps memory owned by `owner` (kept alive as long as the tensor).
  static Tensor wrap(std::shared_ptr<void> owner, TensorView view);

  const TensorView& view() const noexcept { return view_; }
  operator const TensorView&() const noexcept { return view_; }  // NOLINT: a Tensor is usable where a view is
  void* data() const noexcept { return view_.data(); }
  template <class T>
  T* data_as() const noexcept {
    return view_.data_as<T>();
  }
  const Shape& shape() const noexcept { return view_.shape(); }
  DType dtype() const noexcept { return view_.dtype(); }
  int64_t numel() const noexcept { return view_.numel(); }
  size_t nbytes() const noexcept { return view_.nbytes(); }

 private:
  std::shared_ptr<void> owner_;
  TensorView view_;
};

}  // namespace qilin
