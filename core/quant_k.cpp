// Reference quantizers of the k-quant formats (Q4_K, Q6_K), bit-identical to
// ggml's quantize_row_q4_K_ref / quantize_row_q6_K_ref.
// TODO(quant): being written; see issue 2.
#include <cstdint>

#include "core/error.h"
#include "core/quant.h"

namespace qilin {
void quantize_row_q4_k(const float*, void*, int64_t) { fail("quantize_row_q4_k", "not yet implemented"); }
void quantize_row_q6_k(const float*, void*, int64_t) { fail("quantize_row_q6_k", "not yet implemented"); }
}  // namespace qilin
