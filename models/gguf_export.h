// GGUF metadata for a model and its tokenizer, written the way llama.cpp's
// convert_hf_to_gguf.py writes it, so that other GGUF tools read Qilin's files.
#pragma once

#include <cstdint>

#include "core/dtype.h"

namespace qilin {

class GgufWriter;
struct ModelConfig;
enum class ModelFamily : uint8_t;
struct TokenizerConfig;

// general.file_type (llama.cpp's llama_ftype) of a file whose weights are mostly `type`:
// f32 0, f16 1, q4_0 2, q4_1 3, q8_0 7, q4_k 14 (MOSTLY_Q4_K_S), q6_k 18, bf16 32.
// Throws for other types. (Mixes such as Q4_K_M have their own codes: models/quantize_rules.h.)
uint32_t gguf_file_type(DType type);

// general.architecture, general.type, general.name, the <arch>.* hyper-parameters
// (block_count, context_length, embedding_length, feed_forward_length,
// attention.head_count[_kv], attention.key_length/value_length, rope.freq_base,
// rope.dimension_count, attention.layer_norm_rms_epsilon, vocab_size),
// general.file_type (= file_type, e.g. gguf_file_type(type)) and general.quantization_version.
// tokenizer.ggml.{bos,eos}_token_id come from add_tokenizer_metadata, or from add_token_ids
// when there is no tokenizer.
void add_model_metadata(GgufWriter& writer, const ModelConfig& config, uint32_t file_type);

// GGML_QNT_VERSION of the block layouts core implements: general.quantization_version.
inline constexpr uint32_t kGgmlQuantVersion = 2;

// tokenizer.ggml.* (model "gpt2": tokens, token_type, merges, pre) and tokenizer.chat_template
// for a byte-level BPE tokenizer of a `family` model (tokenizer.ggml.pre is the name llama.cpp
// gives that family's pre-tokenizer: "chatglm-bpe" for GLM-4's). The vocabulary is written with `n_vocab` entries (the
// model's vocab_size): ids the tokenizer does not use become "[PAD<id>]" tokens of type
// unused, as llama.cpp does. Throws when the tokenizer does not fit in n_vocab ids or is
// not byte-level BPE (SentencePiece tokenizer.json files have no piece scores to write).
void add_tokenizer_metadata(GgufWriter& writer, const TokenizerConfig& tokenizer, ModelFamily family, int64_t n_vocab,
                            int32_t bos_id, int32_t eos_id);
// Only tokenizer.ggml.bos_token_id / eos_token_id (each when >= 0), for a model without tokenizer.
void add_token_ids(GgufWriter& writer, int32_t bos_id, int32_t eos_id);

}  // namespace qilin
