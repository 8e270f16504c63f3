// Shared by the GPU tests (tests/test_cuda_*.cpp): the skip when there is no GPU,
// and copies of host vectors to and from the device.
//
// Every GPU test case starts with require_cuda(): without a usable device (no GPU,
// no driver, or a build without CUDA) it prints why and exits with code 4, which
// ctest reports as skipped (tests/skip.h), never as passed.
#pragma once

#include <string>
#include <vector>

#include "core/tensor.h"
#include "kernels/cuda/device.h"
#include "kernels/cuda/stream.h"
#include "kernels/cuda/tensor.h"
#include "skip.h"

namespace qilin::test {

inline void require_cuda() {
  if (cuda::devices().empty()) test::skip("no CUDA device: " + cuda::unavailable_reason());
}

// A device copy of `values` with `shape` (contiguous, f32 unless told otherwise).
template <class T>
Tensor to_gpu(const std::vector<T>& values, Shape shape, DType dtype = DType::f32) {
  return cuda::to_device(TensorView(const_cast<T*>(values.data()), shape, dtype), cuda::default_stream());
}

// The f32 contents of a device tensor (waits for the stream).
inline std::vector<float> from_gpu(const TensorView& t) {
  std::vector<float> out(static_cast<size_t>(t.numel()));
  cuda::copy(t, TensorView(out.data(), t.shape(), DType::f32), cuda::default_stream());
  return out;
}

// The bytes of a device tensor of any dtype (waits for the stream).
inline std::vector<uint8_t> bytes_from_gpu(const TensorView& t) {
  std::vector<uint8_t> out(t.nbytes());
  cuda::copy(t, TensorView(out.data(), t.shape(), t.dtype()), cuda::default_stream());
  return out;
}

}  // namespace qilin::test
