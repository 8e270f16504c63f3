// GPU roofline probes (kernels/cuda/probe.h).
#include <cuda_bf16.h>

#include <algorithm>

#include "kernels/cuda/blas.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/memory.h"
#include "kernels/cuda/probe.h"
#include "kernels/cuda/stream.h"

namespace qilin::cuda {
namespace {

// Makes `device` current for the probe's lifetime and restores the caller's device.
class DeviceGuard {
 public:
  explicit DeviceGuard(int device) : previous_(current_device()) {
    device_ = device >= 0 ? device : previous_;
    if (device_ != previous_) set_device(device_);
  }
  ~DeviceGuard() {
    if (device_ != previous_) cudaSetDevice(previous_);  // no throw from a destructor
  }
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;
  int device() const noexcept { return device_; }

 private:
  int previous_ = 0, device_ = 0;
};

// cudaMalloc'ed memory freed on scope exit: the probes' buffers stay out of the
// caching allocator, so a 1 GiB probe leaves nothing reserved for the model.
class RawBuffer {
 public:
  explicit RawBuffer(size_t bytes) { QILIN_CUDA_CHECK(cudaMalloc(&ptr_, bytes)); }
  ~RawBuffer() { cudaFree(ptr_); }
  RawBuffer(const RawBuffer&) = delete;
  RawBuffer& operator=(const RawBuffer&) = delete;
  void* get() const noexcept { return ptr_; }

 private:
  void* ptr_ = nullptr;
};

class Event {
 public:
  Event() { QILIN_CUDA_CHECK(cudaEventCreate(&event_)); }
  ~Event() { cudaEventDestroy(event_); }
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
  cudaEvent_t get() const noexcept { return event_; }

 private:
  cudaEvent_t event_ = nullptr;
};

// Milliseconds between two events recorded on one stream, after waiting for the second.
float elapsed_ms(const Event& start, const Event& stop) {
  QILIN_CUDA_CHECK(cudaEventSynchronize(stop.get()));
  float ms = 0;
  QILIN_CUDA_CHECK(cudaEventElapsedTime(&ms, start.get(), stop.get()));
  return ms;
}

// Every thread reads 16-byte vectors, four in flight per loop step, grid-stride, and
// XORs them; the store depends on the data (and almost never happens), so no load can
// be dropped and almost no write traffic is added.
__global__ void read_kernel(const uint4* __restrict__ p, size_t n, unsigned* sink) {
  const size_t stride = static_cast<size_t>(gridDim.x) * blockDim.x;
  size_t i = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  uint4 acc = make_uint4(0, 0, 0, 0);
  for (; i + 3 * stride < n; i += 4 * stride) {
    const uint4 a = p[i], b = p[i + stride], c = p[i + 2 * stride], d = p[i + 3 * stride];
    acc.x ^= a.x ^ b.x ^ c.x ^ d.x;
    acc.y ^= a.y ^ b.y ^ c.y ^ d.y;
    acc.z ^= a.z ^ b.z ^ c.z ^ d.z;
    acc.w ^= a.w ^ b.w ^ c.w ^ d.w;
  }
  for (; i < n; i += stride) {
    const uint4 a = p[i];
    acc.x ^= a.x;
    acc.y ^= a.y;
    acc.z ^= a.z;
    acc.w ^= a.w;
  }
  const unsigned r = acc.x ^ acc.y ^ acc.z ^ acc.w;
  if (r == 0x9e3779b9u) *sink = r;
}

// Small bf16 values in [-1/16, 1/16) from a hash of the index: non-zero, and no overflow in the GEMM.
__global__ void fill_bf16_kernel(__nv_bfloat16* p, size_t n, unsigned salt) {
  for (size_t i = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    unsigned h = static_cast<unsigned>(i) * 2654435761u ^ salt;
    h ^= h >> 15;
    h *= 2246822519u;
    h ^= h >> 13;
    p[i] = __float2bfloat16((static_cast<float>(h & 0xffffu) / 65536.0f - 0.5f) * 0.125f);
  }
}

int sm_count(int device) {
  int sms = 0;
  QILIN_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  return std::max(sms, 1);
}

}  // namespace

double measure_read_gbs(size_t bytes, int passes, int device) {
  DeviceGuard guard(device);
  bytes = std::max<size_t>(bytes / 16 * 16, 16);
  RawBuffer buffer(bytes), sink(sizeof(unsigned));
  cudaStream_t stream = default_stream(guard.device()).handle();
  QILIN_CUDA_CHECK(cudaMemsetAsync(buffer.get(), 1, bytes, stream));  // commit every page before timing
  constexpr int kThreads = 256;
  const int blocks = sm_count(guard.device()) * 8;  // 2048 threads per SM: full occupancy
  // Enough launches per pass that launch gaps do not count (~50 ms at 3 TB/s for 1 GiB, fewer for more).
  const int launches = static_cast<int>(std::clamp<size_t>((size_t{16} << 30) / bytes, 4, 256));
  const size_t n = bytes / 16;
  const auto* p = static_cast<const uint4*>(buffer.get());
  auto* s = static_cast<unsigned*>(sink.get());
  read_kernel<<<blocks, kThreads, 0, stream>>>(p, n, s);  // warm-up
  QILIN_CUDA_CHECK_LAUNCH("read_kernel");
  Event start, stop;
  double best = 0;
  for (int pass = 0; pass < std::max(passes, 1); ++pass) {
    QILIN_CUDA_CHECK(cudaEventRecord(start.get(), stream));
    for (int l = 0; l < launches; ++l) read_kernel<<<blocks, kThreads, 0, stream>>>(p, n, s);
    QILIN_CUDA_CHECK_LAUNCH("read_kernel");
    QILIN_CUDA_CHECK(cudaEventRecord(stop.get(), stream));
    const double seconds = elapsed_ms(start, stop) / 1e3;
    best = std::max(best, static_cast<double>(bytes) * launches / seconds / 1e9);
  }
  return best;
}

double measure_bf16_gemm_gflops(int64_t size, int passes, int device) {
  DeviceGuard guard(device);
  size = std::max<int64_t>(size, 64);
  const auto elements = static_cast<size_t>(size) * static_cast<size_t>(size);
  RawBuffer a(elements * 2), b(elements * 2), c(elements * 2);
  const Stream& stream = default_stream(guard.device());
  const int blocks = sm_count(guard.device()) * 4;
  fill_bf16_kernel<<<blocks, 256, 0, stream.handle()>>>(static_cast<__nv_bfloat16*>(a.get()), elements, 1u);
  fill_bf16_kernel<<<blocks, 256, 0, stream.handle()>>>(static_cast<__nv_bfloat16*>(b.get()), elements, 2u);
  QILIN_CUDA_CHECK_LAUNCH("fill_bf16_kernel");
  cublasHandle_t handle = cublas_handle(stream);
  const float alpha = 1.0f, beta = 0.0f;
  const int n = static_cast<int>(size);
  auto gemm = [&] {
    QILIN_CUBLAS_CHECK(cublasGemmEx(handle, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &alpha, a.get(), CUDA_R_16BF, n, b.get(),
                                    CUDA_R_16BF, n, &beta, c.get(), CUDA_R_16BF, n, CUBLAS_COMPUTE_32F,
                                    CUBLAS_GEMM_DEFAULT));
  };
  gemm();  // warm-up: picks the kernel, loads it
  const double flops = 2.0 * static_cast<double>(size) * static_cast<double>(size) * static_cast<double>(size);
  // ~0.1 s of GEMMs per pass at 1 PFLOP/s.
  const int launches = static_cast<int>(std::clamp(1e14 / flops, 2.0, 200.0));
  Event start, stop;
  double best = 0;
  for (int pass = 0; pass < std::max(passes, 1); ++pass) {
    QILIN_CUDA_CHECK(cudaEventRecord(start.get(), stream.handle()));
    for (int l = 0; l < launches; ++l) gemm();
    QILIN_CUDA_CHECK(cudaEventRecord(stop.get(), stream.handle()));
    const double seconds = elapsed_ms(start, stop) / 1e3;
    best = std::max(best, flops * launches / seconds / 1e9);
  }
  stream.synchronize();  // before the buffers are freed
  return best;
}

}  // namespace qilin::cuda
