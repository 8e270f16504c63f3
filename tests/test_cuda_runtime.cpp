// The CUDA runtime layer (kernels/cuda/memory.h, stream.h, tensor.h) on a GPU:
// errors name the call and file:line, the caching allocator reuses blocks and
// reports them, tensors travel to the device and back unchanged. Skipped (exit 4,
// ctest "Skipped") where no GPU is usable.
#include <catch2/catch.hpp>
#include <cstdint>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "kernels/cuda/memory.h"
#include "kernels/cuda/stream.h"
#include "kernels/cuda/tensor.h"
#include "test_cuda_common.h"
#include "test_ops_common.h"

using namespace qilin;
using namespace qilin::test;

TEST_CASE("cuda runtime: a failing CUDA call throws with the call, the error and file:line", "[cuda]") {
  require_cuda();
  const int count = static_cast<int>(cuda::devices().size());
  REQUIRE_THROWS_WITH(cuda::set_device(count + 7), Catch::StartsWith("[cuda] cudaSetDevice(device) failed: ") &&
                                                       Catch::Contains("cudaErrorInvalidDevice") &&
                                                       Catch::Contains("kernels/cuda/memory.cpp:"));
  cuda::set_device(0);  // the failed call left the device as it was
  REQUIRE(cuda::current_device() == 0);
}

TEST_CASE("cuda runtime: running out of memory names the bytes asked for and free", "[cuda]") {
  require_cuda();
  const size_t too_much = size_t{1} << 50;  // 1 PiB
  REQUIRE_THROWS_WITH(cuda::DeviceBuffer(too_much), Catch::Contains("out of memory on device 0") &&
                                                        Catch::Contains(std::to_string(too_much)) &&
                                                        Catch::Contains("MiB free of"));
  cuda::DeviceBuffer fine(1024);  // the failure is not sticky
  REQUIRE(fine.data() != nullptr);
}

TEST_CASE("cuda runtime: freed blocks are cached by size class and reused without cudaMalloc", "[cuda]") {
  require_cuda();
  cuda::release_cached_memory();
  const cuda::AllocatorStats before = cuda::allocator_stats();
  void* first = nullptr;
  {
    cuda::DeviceBuffer a(3000);
    REQUIRE(a.capacity() == cuda::allocation_size_class(3000));
    REQUIRE(reinterpret_cast<uintptr_t>(a.data()) % 256 == 0);
    first = a.data();
    REQUIRE(cuda::allocator_stats().bytes_in_use == before.bytes_in_use + a.capacity());
  }
  REQUIRE(cuda::allocator_stats().bytes_cached == before.bytes_cached + cuda::allocation_size_class(3000));
  const uint64_t mallocs = cuda::allocator_stats().device_allocations;
  for (int i = 0; i < 100; ++i) {
    cuda::DeviceBuffer again(2049 + i);  // the same class (4 KiB): the cached block every time
    REQUIRE(again.data() == first);
  }
  const cuda::AllocatorStats after = cuda::allocator_stats();
  REQUIRE(after.device_allocations == mallocs);
  REQUIRE(after.cache_hits >= before.cache_hits + 100);
  REQUIRE(after.peak_bytes_in_use >= cuda::allocation_size_class(3000));
  cuda::release_cached_memory();
  REQUIRE(cuda::allocator_stats().bytes_cached == 0);

  cuda::DeviceBuffer moved(100);
  void* p = moved.data();
  cuda::DeviceBuffer target = std::move(moved);
  REQUIRE(target.data() == p);
  REQUIRE(!moved);  // NOLINT(bugprone-use-after-move): a moved-from buffer is empty by contract
  cuda::ensure_capacity(target, 50);
  REQUIRE(target.data() == p);  // big enough: kept
  cuda::ensure_capacity(target, 1 << 20);
  REQUIRE(target.capacity() >= size_t{1} << 20);
}

TEST_CASE("cuda runtime: tensors go to the device and back unchanged, in every direction", "[cuda]") {
  require_cuda();
  const cuda::Stream& stream = cuda::default_stream();
  for (int64_t n : {int64_t{1}, int64_t{7}, int64_t{4095}, int64_t{1} << 20}) {
    auto values = random_floats(static_cast<size_t>(n), -5, 5, 3);
    const Tensor dev = to_gpu(values, {n});
    REQUIRE(dev.view().device() == Device::cuda);
    const Tensor back = cuda::to_host(dev, stream);
    REQUIRE(back.view().device() == Device::cpu);
    REQUIRE(std::memcmp(back.data(), values.data(), values.size() * sizeof(float)) == 0);
    // device -> device, then into caller memory
    const Tensor copy = cuda::empty({n}, DType::f32);
    cuda::copy(dev, copy, stream);
    std::vector<float> out(values.size(), NAN);
    cuda::copy(copy, TensorView(out.data(), {n}, DType::f32), stream);
    REQUIRE(out == values);
  }
  const Tensor z = cuda::zeros({3, 5}, DType::f16, stream);
  for (uint8_t b : bytes_from_gpu(z)) REQUIRE(b == 0);

  // A block format keeps its bytes.
  std::vector<uint8_t> blocks(2 * 34);
  for (size_t i = 0; i < blocks.size(); ++i) blocks[i] = static_cast<uint8_t>(i * 7 + 1);
  const Tensor q = cuda::to_device(TensorView(blocks.data(), {2, 32}, DType::q8_0), stream);
  REQUIRE(bytes_from_gpu(q) == blocks);
}

TEST_CASE("cuda runtime: copies check devices, shapes and dtypes", "[cuda]") {
  require_cuda();
  const cuda::Stream& stream = cuda::default_stream();
  std::vector<float> host(12);
  const TensorView h(host.data(), {3, 4}, DType::f32);
  const Tensor d = cuda::empty({3, 4}, DType::f32);
  REQUIRE_THROWS_WITH(cuda::to_device(d, stream), Catch::Contains("[to_device]") && Catch::Contains("already on cuda"));
  REQUIRE_THROWS_WITH(cuda::to_host(h, stream), Catch::Contains("[to_host]") && Catch::Contains("not the GPU"));
  REQUIRE_THROWS_WITH(cuda::copy(h.reshape({4, 3}), d, stream),
                      Catch::Contains("[copy] src is 4x3 f32 but dst is 3x4"));
  REQUIRE_THROWS_WITH(cuda::copy(h, h, stream), Catch::Contains("both on the CPU"));
}

TEST_CASE("cuda runtime: the default stream is one per device", "[cuda]") {
  require_cuda();
  cuda::Stream& a = cuda::default_stream();
  cuda::Stream& b = cuda::default_stream(0);
  REQUIRE(&a == &b);
  REQUIRE(a.device() == 0);
  a.synchronize();
  cuda::Stream own;
  REQUIRE(own.handle() != a.handle());
  own.synchronize();
}
