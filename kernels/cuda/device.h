// What CUDA devices this process can use. Compiled against the CUDA runtime
// when the build has CUDA (kernels/cuda/device.cu), else against a stub that
// reports none (kernels/cuda/stub/), so callers never need an #ifdef.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace qilin::cuda {

struct DeviceInfo {
  int index = 0;
  std::string name;
  int sm_major = 0, sm_minor = 0;
  size_t total_bytes = 0;
};

// True when this build of Qilin contains the CUDA backend.
bool built_with_cuda() noexcept;
// Usable devices; empty without a GPU, a driver, or a CUDA build.
std::vector<DeviceInfo> devices();
// Why there are no devices ("no CUDA build", "no GPU found: <driver message>"), or "" when there are.
std::string unavailable_reason();

}  // namespace qilin::cuda
