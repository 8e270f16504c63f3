// CUDA graphs (kernels/cuda/graph.h) in a build without CUDA: every call throws.
#include "core/error.h"
#include "kernels/cuda/graph.h"

namespace qilin::cuda {
namespace {
[[noreturn]] void no_backend(const char* what) {
  fail("cuda", "{}: this build of Qilin has no CUDA backend (configure with QILIN_CUDA=ON)", what);
}
}  // namespace

Graph::~Graph() = default;
void Graph::begin_capture(const Stream&) { no_backend("Graph::begin_capture"); }
bool Graph::end_capture(const Stream&) { no_backend("Graph::end_capture"); }
void Graph::abort_capture(const Stream&) noexcept {}
void Graph::launch(const Stream&) const { no_backend("Graph::launch"); }

}  // namespace qilin::cuda
