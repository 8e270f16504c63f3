// CUDA graph capture and replay (kernels/cuda/graph.h).
#include "kernels/cuda/graph.h"

#include "core/error.h"
#include "kernels/cuda/check.h"

namespace qilin::cuda {

Graph::~Graph() {
  if (exec_ != nullptr) cudaGraphExecDestroy(exec_);  // a destructor must not throw
}

void Graph::begin_capture(const Stream& stream) {
  QILIN_CUDA_CHECK(cudaStreamBeginCapture(stream.handle(), cudaStreamCaptureModeRelaxed));
}

bool Graph::end_capture(const Stream& stream) {
  cudaGraph_t graph = nullptr;
  QILIN_CUDA_CHECK(cudaStreamEndCapture(stream.handle(), &graph));
  if (exec_ != nullptr) {
    cudaGraphExecUpdateResultInfo info{};
    if (cudaGraphExecUpdate(exec_, graph, &info) == cudaSuccess) {
      cudaGraphDestroy(graph);
      ++updates_;
      return true;
    }
    cudaGetLastError();  // the update's refusal (another topology) is not sticky: clear it
    cudaGraphExecDestroy(exec_);
    exec_ = nullptr;
  }
  const cudaError_t err = cudaGraphInstantiate(&exec_, graph, 0);
  cudaGraphDestroy(graph);
  if (err != cudaSuccess) exec_ = nullptr;
  check_cuda(err, "cudaGraphInstantiate(&exec_, graph, 0)", __FILE__, __LINE__);
  ++instantiations_;
  return false;
}

void Graph::abort_capture(const Stream& stream) noexcept {
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  if (cudaStreamIsCapturing(stream.handle(), &status) == cudaSuccess && status != cudaStreamCaptureStatusNone) {
    cudaGraph_t graph = nullptr;
    cudaStreamEndCapture(stream.handle(), &graph);  // fails for an invalidated capture; the graph is null then
    if (graph != nullptr) cudaGraphDestroy(graph);
  }
  cudaGetLastError();  // the failed capture's error, if any, is not sticky
}

void Graph::launch(const Stream& stream) const {
  if (exec_ == nullptr) fail("cuda", "Graph::launch before a capture was instantiated");
  QILIN_CUDA_CHECK(cudaGraphLaunch(exec_, stream.handle()));
}

}  // namespace qilin::cuda
