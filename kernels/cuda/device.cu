#include <cuda_runtime.h>

#include "kernels/cuda/device.h"

namespace qilin::cuda {

bool built_with_cuda() noexcept { return true; }

std::vector<DeviceInfo> devices() {
  std::vector<DeviceInfo> out;
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) return out;
  for (int i = 0; i < count; ++i) {
    cudaDeviceProp prop{};
    if (cudaGetDeviceProperties(&prop, i) != cudaSuccess) continue;
    out.push_back({i, prop.name, prop.major, prop.minor, prop.totalGlobalMem});
  }
  return out;
}

std::string unavailable_reason() {
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) return std::string("no usable GPU: ") + cudaGetErrorString(err);
  if (count == 0) return "no GPU found";
  return "";
}

}  // namespace qilin::cuda
