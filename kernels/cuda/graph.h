// CUDA graphs: the kernels queued on a Stream recorded once and replayed with one
// launch.
//
// A decode step queues a few hundred small kernels. Launched one by one, each costs
// the host a few microseconds and leaves the GPU a gap before the next; captured into
// a graph and launched as one, they run back to back. The model's decoder captures
// every step anew (context lengths are kernel arguments that change each step) and
// updates the instantiated graph in place (cudaGraphExecUpdate), which costs far less
// than instantiating; only a change of topology (another batch shape) instantiates.
//
// Capture runs in cudaStreamCaptureModeRelaxed: the caching allocator may still call
// cudaMalloc when a scratch buffer grows during a captured step. Host <-> device
// copies from pageable memory cannot be captured; stage them before begin_capture().
//
// Header free of CUDA; in a build without it (kernels/cuda/stub/) every call throws.
#pragma once

#include <cstdint>

#include "kernels/cuda/stream.h"

struct CUgraphExec_st;

namespace qilin::cuda {

class Graph {
 public:
  Graph() = default;
  ~Graph();
  Graph(const Graph&) = delete;
  Graph& operator=(const Graph&) = delete;

  // Starts recording the work queued on `stream`: from here until end_capture() the
  // ops queue nothing that runs.
  void begin_capture(const Stream& stream);
  // Stops recording and makes the recording what launch() runs: the previous
  // instantiation updated in place when the topology allows, else a new one.
  // Returns true when it updated in place.
  bool end_capture(const Stream& stream);
  // Ends a capture that failed half way (an op threw) and discards the recording, so
  // the stream is usable again. The previous instantiation, if any, stays.
  void abort_capture(const Stream& stream) noexcept;
  // Queues the last recording on `stream`.
  void launch(const Stream& stream) const;
  bool ready() const noexcept { return exec_ != nullptr; }

  int64_t instantiations() const noexcept { return instantiations_; }
  int64_t updates() const noexcept { return updates_; }

 private:
  CUgraphExec_st* exec_ = nullptr;
  int64_t instantiations_ = 0, updates_ = 0;
};

}  // namespace qilin::cuda
