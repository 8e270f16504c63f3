// cuda::Graph (kernels/cuda/graph.h): capture of ops queued on a stream, launch,
// in-place update of the same topology, a new instantiation for another one, and a
// capture aborted half way. Skipped (exit 4, ctest "Skipped") where no GPU is usable;
// written without one, never yet run. The decoder's graphs (tests/test_model_cuda.cpp)
// rest on these.
#include <catch2/catch.hpp>
#include <vector>

#include "core/error.h"
#include "kernels/cuda/graph.h"
#include "kernels/cuda/ops.h"
#include "test_cuda_common.h"

using namespace qilin;
using namespace qilin::test;

TEST_CASE("cuda graph: a captured op runs only when launched, and again on every launch", "[cuda]") {
  require_cuda();
  const cuda::Stream& stream = cuda::default_stream();
  const std::vector<float> ones(37, 1.0f);
  const Tensor x = to_gpu(ones, {37});
  const Tensor y = to_gpu(ones, {37});
  cuda::Graph graph;
  CHECK_FALSE(graph.ready());
  graph.begin_capture(stream);
  cuda::add_inplace(y, x, stream);  // y += x, recorded
  CHECK_FALSE(graph.end_capture(stream));
  CHECK(graph.ready());
  CHECK(from_gpu(y) == ones);  // nothing ran yet
  graph.launch(stream);
  graph.launch(stream);
  // Small integers: exact in f32.
  CHECK(from_gpu(y) == std::vector<float>(37, 3.0f));
  CHECK(graph.instantiations() == 1);
  CHECK(graph.updates() == 0);
}

TEST_CASE("cuda graph: the same topology updates in place, another one instantiates", "[cuda]") {
  require_cuda();
  const cuda::Stream& stream = cuda::default_stream();
  const Tensor x = to_gpu(std::vector<float>(64, 1.0f), {64});
  const Tensor y = cuda::zeros({64}, DType::f32, stream);
  cuda::Graph graph;
  for (const float s : {2.0f, 5.0f}) {  // only a kernel argument changes
    graph.begin_capture(stream);
    cuda::scale(x, s, y, stream);
    graph.end_capture(stream);
    graph.launch(stream);
    CHECK(from_gpu(y) == std::vector<float>(64, s));
  }
  CHECK(graph.instantiations() == 1);
  CHECK(graph.updates() == 1);
  graph.begin_capture(stream);  // two kernels instead of one
  cuda::scale(x, 3.0f, y, stream);
  cuda::add_inplace(y, x, stream);
  graph.end_capture(stream);
  graph.launch(stream);
  CHECK(from_gpu(y) == std::vector<float>(64, 4.0f));
  CHECK(graph.instantiations() == 2);
}

TEST_CASE("cuda graph: an op that throws during capture leaves the stream usable", "[cuda]") {
  require_cuda();
  const cuda::Stream& stream = cuda::default_stream();
  const Tensor x = to_gpu(std::vector<float>(8, 1.0f), {8});
  const Tensor wrong = cuda::zeros({9}, DType::f32, stream);
  cuda::Graph graph;
  graph.begin_capture(stream);
  CHECK_THROWS_AS(cuda::add_inplace(wrong, x, stream), Error);  // shapes differ: refused on the host
  graph.abort_capture(stream);
  CHECK_FALSE(graph.ready());
  const Tensor y = cuda::zeros({8}, DType::f32, stream);
  cuda::add_inplace(y, x, stream);  // runs directly again
  CHECK(from_gpu(y) == std::vector<float>(8, 1.0f));
}
