// GGUF v3 writer.
//
// The caller supplies metadata (in order, llama.cpp key names such as
// general.architecture, <arch>.block_count, tokenizer.ggml.*) and tensors
// (llama.cpp names such as blk.N.attn_q.weight, shapes outermost first); the
// writer lays out the file per the GGUF specification: tensor infos with
// offsets, alignment padding before the data section and after each tensor,
// and general.alignment when it is not the default 32.
//
// write() goes to "<path>.partial" and renames it to <path> only when
// everything has been written and flushed, so a failure (or a crash) never
// leaves a truncated file under the final name.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/gguf.h"

namespace qilin {

class GgufWriter {
 public:
  // Fills `dst` (exactly the tensor's byte size) with the tensor's bytes; called
  // once, during write(), so large tensors can be produced (e.g. quantized) one at a time.
  using Producer = std::function<void(std::span<uint8_t> dst)>;
  // Progress during write(): bytes of tensor data written so far, and in total.
  using Progress = std::function<void(uint64_t done, uint64_t total)>;

  explicit GgufWriter(uint32_t alignment = kGgufDefaultAlignment);

  // Adds a metadata key; throws Error on a duplicate or empty key. Setting
  // general.alignment (a u32 power of two) changes the alignment used.
  void add(std::string key, GgufValue value);
  // Adds a tensor whose bytes are at `data` (which must stay valid until write()).
  void add_tensor(std::string name, Shape shape, DType dtype, const void* data);
  // Adds a CPU tensor from a contiguous view (its memory must stay valid until write()).
  void add_tensor(std::string name, const TensorView& view);
  // Adds a tensor whose bytes `produce` writes when write() gets to it.
  void add_tensor(std::string name, Shape shape, DType dtype, Producer produce);

  size_t tensor_count() const noexcept { return tensors_.size(); }
  uint64_t data_bytes() const noexcept;  // tensor data including padding

  // Writes the file (see above); throws Error naming the path on any failure.
  void write(const std::string& path, const Progress& progress = {}) const;

 private:
  struct PendingTensor {
    std::string name;
    Shape shape;
    DType dtype;
    size_t nbytes;
    Producer produce;            // either this...
    const void* data = nullptr;  // ...or the bytes themselves
  };

  void add_tensor_info(std::string name, Shape shape, DType dtype);  // checks and appends

  uint32_t alignment_;
  std::vector<std::pair<std::string, GgufValue>> kv_;
  std::vector<PendingTensor> tensors_;
};

}  // namespace qilin
