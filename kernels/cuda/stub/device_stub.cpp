// Used when Qilin is built without CUDA: there are never any devices.
#include "kernels/cuda/device.h"

namespace qilin::cuda {

bool built_with_cuda() noexcept { return false; }
std::vector<DeviceInfo> devices() { return {}; }
std::string unavailable_reason() { return "this build of Qilin has no CUDA backend (configure with QILIN_CUDA=ON)"; }

}  // namespace qilin::cuda
