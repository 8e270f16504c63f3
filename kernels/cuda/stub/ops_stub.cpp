// The CUDA ops (kernels/cuda/ops.h) in a build without CUDA: every op throws.
#include "core/error.h"
#include "kernels/cuda/ops.h"

namespace qilin::cuda {
namespace {
[[noreturn]] void no_backend(const char* op) {
  fail(op, "the GPU op needs the CUDA backend, which this build of Qilin does not have (configure with QILIN_CUDA=ON)");
}
}  // namespace

void add(const TensorView&, const TensorView&, const TensorView&, const Stream&) { no_backend("add"); }
void mul(const TensorView&, const TensorView&, const TensorView&, const Stream&) { no_backend("mul"); }
void scale(const TensorView&, float, const TensorView&, const Stream&) { no_backend("scale"); }
void add_inplace(const TensorView&, const TensorView&, const Stream&) { no_backend("add_inplace"); }
void add_bias(const TensorView&, const TensorView&, const Stream&) { no_backend("add_bias"); }
void silu(const TensorView&, const TensorView&, const Stream&) { no_backend("silu"); }
void gelu_tanh(const TensorView&, const TensorView&, const Stream&) { no_backend("gelu_tanh"); }
void gelu_erf(const TensorView&, const TensorView&, const Stream&) { no_backend("gelu_erf"); }
void swiglu(const TensorView&, const TensorView&, const TensorView&, const Stream&) { no_backend("swiglu"); }
void swiglu_fused(const TensorView&, const TensorView&, const Stream&) { no_backend("swiglu_fused"); }
void rmsnorm(const TensorView&, const TensorView&, float, const TensorView&, const Stream&) { no_backend("rmsnorm"); }
void layernorm(const TensorView&, const TensorView&, const TensorView&, float, const TensorView&, const Stream&) {
  no_backend("layernorm");
}
void softmax(const TensorView&, const TensorView&, const Stream&) { no_backend("softmax"); }
RopeTable::RopeTable(const RopeCache&, const Stream&) { no_backend("rope"); }
void rope(const TensorView&, std::span<const int32_t>, RopeLayout, const RopeTable&, const Stream&) {
  no_backend("rope");
}
void rope(const TensorView&, const TensorView&, RopeLayout, const RopeTable&, const Stream&) { no_backend("rope"); }
void embedding(const TensorView&, std::span<const int32_t>, const TensorView&, const Stream&) {
  no_backend("embedding");
}
void embedding(const TensorView&, const TensorView&, const TensorView&, const Stream&) { no_backend("embedding"); }
void kv_store(const TensorView&, const TensorView&, int64_t, const Stream&) { no_backend("kv_store"); }
void attention(const TensorView&, const TensorView&, const TensorView&, int64_t, const TensorView&, const Stream&,
               std::optional<float>) {
  no_backend("attention");
}

}  // namespace qilin::cuda
