#include "models/quantize_rules.h"

#include <charconv>
#include <string>

#include "core/error.h"
#include "models/gguf_export.h"

namespace qilin {
namespace {

struct QuantTypeRow {
  QuantType type;
  std::string_view name;
  DType base;
};

constexpr QuantTypeRow kQuantTypes[] = {
    {QuantType::f32, "f32", DType::f32},        {QuantType::f16, "f16", DType::f16},
    {QuantType::bf16, "bf16", DType::bf16},     {QuantType::q8_0, "q8_0", DType::q8_0},
    {QuantType::q4_0, "q4_0", DType::q4_0},     {QuantType::q4_1, "q4_1", DType::q4_1},
    {QuantType::q4_k, "q4_k", DType::q4_k},     {QuantType::q6_k, "q6_k", DType::q6_k},
    {QuantType::q4_k_m, "q4_k_m", DType::q4_k},
};

const QuantTypeRow& row_of(QuantType t) noexcept { return kQuantTypes[static_cast<int>(t)]; }

// llama.cpp's tensor_allows_quantization for the tensors of the families Qilin reads.
bool is_quantizable_weight(std::string_view name) {
  return name.ends_with("weight") && name.find("_norm.weight") == std::string_view::npos;
}

// N of "blk.N.*"; -1 for tensors outside the layers.
int64_t layer_of(std::string_view name) {
  constexpr std::string_view prefix = "blk.";
  if (!name.starts_with(prefix)) return -1;
  int64_t layer = -1;
  const char* begin = name.data() + prefix.size();
  const auto [end, ec] = std::from_chars(begin, name.data() + name.size(), layer);
  if (ec != std::errc() || end == begin || *end != '.') return -1;
  return layer;
}

bool fits(DType t, int64_t row_length) noexcept { return row_length % traits(t).block_size == 0; }

}  // namespace

bool quant_type_from_name(std::string_view name, QuantType* out) noexcept {
  for (const QuantTypeRow& r : kQuantTypes) {
    if (r.name == name) {
      *out = r.type;
      return true;
    }
  }
  return false;
}

std::string_view name_of(QuantType t) noexcept { return row_of(t).name; }

DType base_dtype(QuantType t) noexcept { return row_of(t).base; }

uint32_t llama_file_type(QuantType t) {
  if (t == QuantType::q4_k_m) return 15;  // LLAMA_FTYPE_MOSTLY_Q4_K_M
  return gguf_file_type(base_dtype(t));
}

bool uses_more_bits(int64_t layer, int64_t n_layers) noexcept {
  return layer < n_layers / 8 || layer >= 7 * n_layers / 8 || (layer - n_layers / 8) % 3 == 2;
}

DType fallback_type(DType wanted, int64_t row_length) noexcept {
  if (fits(wanted, row_length)) return wanted;
  const DType next = wanted == DType::q6_k ? DType::q8_0 : wanted == DType::q4_k ? DType::q4_1 : DType::f16;
  return fits(next, row_length) ? next : DType::f16;
}

WeightTypeChoice choose_weight_type(QuantType t, std::string_view name, const Shape& shape, DType source,
                                    const WeightTypeContext& context) {
  const DTypeTraits& src = traits(source);
  if (shape.ndim < 2) {
    const DType type = src.is_float || src.is_quantized ? DType::f32 : source;  // integer tables stay as they are
    return {type, type};
  }
  if (!is_quantizable_weight(name)) return {source, source};
  const DType base = base_dtype(t);
  if (!traits(base).is_quantized) return {base, base};

  DType wanted = base;
  if (!context.pure) {
    const bool is_output = name == "output.weight" || (!context.has_output && name == "token_embd.weight");
    if (is_output) {
      wanted = base == DType::q8_0 || !fits(base, shape.last()) ? DType::q8_0 : DType::q6_k;
    } else if (t == QuantType::q4_k_m && (name.find("attn_v.weight") != std::string_view::npos ||
                                          name.find("ffn_down") != std::string_view::npos)) {
      const int64_t layer = layer_of(name);
      if (layer >= 0 && uses_more_bits(layer, context.n_layers)) wanted = DType::q6_k;
    }
  }
  return {fallback_type(wanted, shape.last()), wanted};
}

}  // namespace qilin
