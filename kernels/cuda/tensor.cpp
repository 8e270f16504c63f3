// GPU tensors and copies (kernels/cuda/tensor.h).
#include "kernels/cuda/tensor.h"

#include <memory>

#include "core/error.h"
#include "kernels/cuda/memory.h"

namespace qilin::cuda {
namespace {

void check_contiguous(const char* op, const char* name, const TensorView& t) {
  QILIN_CHECK(t.is_contiguous(), op, "{} ({}) must be contiguous", name, t.shape().str());
  QILIN_CHECK(t.data() != nullptr || t.numel() == 0, op, "{} ({}) has no data", name, t.shape().str());
}

}  // namespace

Tensor empty(Shape shape, DType dtype, int device) {
  const size_t bytes = TensorView(nullptr, shape, dtype).nbytes();
  auto buffer = std::make_shared<DeviceBuffer>(bytes == 0 ? 1 : bytes, device);
  void* data = buffer->data();
  return Tensor::wrap(std::move(buffer), TensorView(data, shape, dtype, Device::cuda));
}

Tensor zeros(Shape shape, DType dtype, const Stream& stream) {
  Tensor t = empty(shape, dtype, stream.device());
  fill_zero(t.data(), t.nbytes(), stream);
  return t;
}

Tensor to_device(const TensorView& host, const Stream& stream) {
  QILIN_CHECK(host.device() == Device::cpu, "to_device", "the source {} is already on {}", host.shape().str(),
              name_of(host.device()));
  check_contiguous("to_device", "the source", host);
  Tensor t = empty(host.shape(), host.dtype(), stream.device());
  copy_to_device(t.data(), host.data(), host.nbytes(), stream);
  return t;
}

Tensor to_host(const TensorView& device, const Stream& stream) {
  QILIN_CHECK(device.device() == Device::cuda, "to_host", "the source {} is on {}, not the GPU", device.shape().str(),
              name_of(device.device()));
  check_contiguous("to_host", "the source", device);
  Tensor t = Tensor::empty(device.shape(), device.dtype());
  copy_to_host(t.data(), device.data(), device.nbytes(), stream);
  return t;
}

void copy(const TensorView& src, const TensorView& dst, const Stream& stream) {
  QILIN_CHECK(src.shape() == dst.shape() && src.dtype() == dst.dtype(), "copy", "src is {} {} but dst is {} {}",
              src.shape().str(), name_of(src.dtype()), dst.shape().str(), name_of(dst.dtype()));
  check_contiguous("copy", "src", src);
  check_contiguous("copy", "dst", dst);
  const size_t bytes = src.nbytes();
  const bool from_gpu = src.device() == Device::cuda, to_gpu = dst.device() == Device::cuda;
  if (from_gpu && to_gpu) {
    copy_on_device(dst.data(), src.data(), bytes, stream);
  } else if (to_gpu) {
    copy_to_device(dst.data(), src.data(), bytes, stream);
  } else if (from_gpu) {
    copy_to_host(dst.data(), src.data(), bytes, stream);
  } else {
    fail("copy", "src and dst ({}) are both on the CPU: use std::memcpy", src.shape().str());
  }
}

}  // namespace qilin::cuda
