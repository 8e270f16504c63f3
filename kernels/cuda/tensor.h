// Tensors on the GPU: a qilin::Tensor whose view says Device::cuda and whose
// keep-alive is a DeviceBuffer (kernels/cuda/memory.h), and copies between the
// CPU and the GPU. Host <-> device copies belong at the edges of a forward pass
// (weights at load, token ids in, logits out), never inside it.
#pragma once

#include "core/tensor.h"
#include "kernels/cuda/stream.h"

namespace qilin::cuda {

// Uninitialised contiguous tensor on `device` (-1: the current device).
Tensor empty(Shape shape, DType dtype, int device = -1);
// Zero-filled, queued on `stream` (on stream.device()).
Tensor zeros(Shape shape, DType dtype, const Stream& stream);
// A device copy of a contiguous CPU view, on stream.device(); `host` may be reused on return.
Tensor to_device(const TensorView& host, const Stream& stream);
// A CPU copy of a contiguous device view; waits for `stream`, so the data is there on return.
Tensor to_host(const TensorView& device, const Stream& stream);
// dst = src for views of one shape and dtype, both contiguous, in any direction
// (CPU <-> GPU or within the GPU). Waits for `stream` when dst is on the CPU.
void copy(const TensorView& src, const TensorView& dst, const Stream& stream);

}  // namespace qilin::cuda
