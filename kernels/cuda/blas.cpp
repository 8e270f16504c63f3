// cuBLAS(Lt) handles per device (kernels/cuda/blas.h).
#include "kernels/cuda/blas.h"

#include <mutex>
#include <vector>

#include "core/error.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/memory.h"

namespace qilin::cuda {
namespace {

struct Handles {
  cublasHandle_t blas = nullptr;
  cublasLtHandle_t lt = nullptr;
  DeviceBuffer blas_workspace, lt_workspace;
};

// Never destroyed (see default_stream): handles live as long as the process.
Handles& handles_of(int device) {
  static std::mutex mutex;
  static auto* all = new std::vector<Handles*>();
  std::lock_guard lock(mutex);
  if (all->empty()) {
    int count = 0;
    QILIN_CUDA_CHECK(cudaGetDeviceCount(&count));
    all->assign(static_cast<size_t>(count), nullptr);
  }
  if (device < 0 || device >= static_cast<int>(all->size())) {
    fail("cuda", "device {} does not exist ({} CUDA devices)", device, all->size());
  }
  Handles*& h = (*all)[static_cast<size_t>(device)];
  if (h == nullptr) {
    int previous = 0;
    QILIN_CUDA_CHECK(cudaGetDevice(&previous));
    set_device(device);  // handles bind to the device current at creation
    auto* made = new Handles();
    QILIN_CUBLAS_CHECK(cublasCreate(&made->blas));
    QILIN_CUBLAS_CHECK(cublasLtCreate(&made->lt));
    made->blas_workspace = DeviceBuffer(kCublasWorkspaceBytes, device);
    made->lt_workspace = DeviceBuffer(kCublasWorkspaceBytes, device);
    set_device(previous);
    h = made;
  }
  return *h;
}

}  // namespace

cublasHandle_t cublas_handle(const Stream& stream) {
  Handles& h = handles_of(stream.device());
  QILIN_CUBLAS_CHECK(cublasSetStream(h.blas, stream.handle()));
  QILIN_CUBLAS_CHECK(cublasSetWorkspace(h.blas, h.blas_workspace.data(), h.blas_workspace.size()));
  return h.blas;
}

cublasLtHandle_t cublaslt_handle(int device) { return handles_of(device >= 0 ? device : current_device()).lt; }

void* cublaslt_workspace(int device) { return handles_of(device >= 0 ? device : current_device()).lt_workspace.data(); }

}  // namespace qilin::cuda
