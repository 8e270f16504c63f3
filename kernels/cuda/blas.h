// One cuBLAS and one cuBLASLt handle per device, created on first use and kept for
// the life of the process (internal to kernels/cuda/; needs the cuBLAS headers).
#pragma once

#include <cublasLt.h>
#include <cublas_v2.h>

#include <cstddef>

#include "kernels/cuda/stream.h"

namespace qilin::cuda {

// Workspace given to cuBLAS per handle: what NVIDIA recommends for Hopper (32 MiB).
inline constexpr size_t kCublasWorkspaceBytes = size_t{32} << 20;

// The cuBLAS handle of stream.device(), bound to `stream` and to the device's
// workspace (both set on every call: cheap, and no caller can leave them stale).
// Not for concurrent use from several threads (callers lock per device).
cublasHandle_t cublas_handle(const Stream& stream);

// The cuBLASLt handle of `device` (-1: current), and its workspace (kCublasWorkspaceBytes),
// for cublasLtMatmul calls, which take stream and workspace per call.
cublasLtHandle_t cublaslt_handle(int device = -1);
void* cublaslt_workspace(int device = -1);

}  // namespace qilin::cuda
