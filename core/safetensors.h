// safetensors files and Hugging Face checkpoints made of them.
//
// Layout of one file: u64 little-endian header length N | N bytes of JSON |
// the data section. The JSON maps each tensor name to
//   {"dtype": "BF16", "shape": [N, K], "data_offsets": [begin, end]}
// (offsets relative to the data section, shape outermost first as in Qilin)
// and may hold "__metadata__": {string: string}.
//
// The reader maps the file and validates everything before anything is used,
// as strictly as the reference implementation (the `safetensors` Rust crate):
// header length at most 100 MB and inside the file, valid JSON starting with
// '{', the schema above with no duplicate keys, a known dtype, each tensor's
// byte count equal to numel x element size (no int64 overflow), and tensors
// that tile the data section exactly: no overlap, no hole, no trailing bytes.
// Any violation throws qilin::Error naming the file and the field.
//
// A tensor that is valid in the file but that Qilin cannot represent (a dtype
// such as I64 or F64, more than 4 dimensions, or no elements) is still listed,
// with the reason in `unsupported`; view() and tensor() throw for it. This
// lets a checkpoint with, say, an I64 buffer or a 5-D vision convolution load
// as long as those tensors are not used.
//
// Tensor data is used in place (zero-copy views into the read-only mapping).
// The data section starts at byte 8 + N, which writers pad to a multiple of 8;
// tensors follow each other without padding, so a tensor's data is aligned to
// its element size only when the tensors before it keep it so (true for files
// written by the `safetensors` package, which orders tensors by alignment).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/dtype.h"
#include "core/tensor.h"

namespace qilin {

inline constexpr uint64_t kSafetensorsMaxHeaderBytes = 100'000'000;  // the reference implementation's limit
inline constexpr int kSafetensorsMaxRank = 16;                       // dimensions accepted in a file

struct SafetensorsTensorInfo {
  std::string name;
  std::string dtype_name;         // as the file spells it: "F32", "BF16", "I64", ...
  DType dtype = DType::f32;       // F32/F16/BF16/I8/I32; meaningful when loadable()
  Shape shape;                    // outermost first; meaningful when loadable()
  uint64_t offset = 0;            // data_offsets[0], from the start of the data section
  size_t nbytes = 0;              // data_offsets[1] - data_offsets[0]
  const uint8_t* data = nullptr;  // into the mapping (nullptr for an empty tensor)
  std::string unsupported;        // why Qilin cannot view this tensor; empty when it can

  bool loadable() const noexcept { return unsupported.empty(); }
};

class MappedFile;

class SafetensorsFile {
 public:
  // Maps and validates a file; throws Error naming the path and the field.
  static SafetensorsFile open(const std::string& path);
  // Validates bytes already in memory (`name` is used in messages); `keep_alive`
  // owns them and is what tensor() hands to Tensor::wrap. Used by the fuzzer and tests.
  static SafetensorsFile parse(const uint8_t* data, size_t size, std::string name, std::shared_ptr<void> keep_alive);

  const std::string& path() const noexcept { return path_; }
  size_t file_size() const noexcept { return size_; }
  uint64_t data_offset() const noexcept { return data_offset_; }  // 8 + header length

  // "__metadata__" in key order (empty when the file has none).
  const std::vector<std::pair<std::string, std::string>>& metadata() const noexcept { return metadata_; }
  const std::string* find_metadata(std::string_view key) const noexcept;

  // Tensors in data order (ascending offset).
  const std::vector<SafetensorsTensorInfo>& tensors() const noexcept { return tensors_; }
  const SafetensorsTensorInfo* find_tensor(std::string_view name) const noexcept;
  const SafetensorsTensorInfo& require_tensor(std::string_view name) const;  // throws when missing
  // A view of the tensor's bytes in the mapping (read-only memory: never write
  // through it); throws when the tensor is not loadable().
  TensorView view(const SafetensorsTensorInfo& info) const;
  // The same view as a Tensor that keeps the mapping alive; no copy.
  Tensor tensor(std::string_view name) const;
  // Drops the pages of a tensor's bytes from the process's resident set when they
  // lie in this file's mapping (the caller holds a copy or repack): they are read
  // again from the file if touched. A no-op for bytes handed to parse().
  void release_pages(const TensorView& view) const noexcept;

 private:
  SafetensorsFile() = default;

  struct KeyHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
  };
  using Index = std::unordered_map<std::string, size_t, KeyHash, std::equal_to<>>;

  std::string path_;
  std::shared_ptr<void> keep_alive_;
  std::shared_ptr<const MappedFile> mapping_;  // set by open(); null after parse()
  size_t size_ = 0;
  uint64_t data_offset_ = 0;
  std::vector<std::pair<std::string, std::string>> metadata_;
  std::vector<SafetensorsTensorInfo> tensors_;
  Index tensor_index_;
};

// A Hugging Face checkpoint: a folder with model.safetensors, or with
// model.safetensors.index.json whose "weight_map" names the shard file of each
// tensor (the single file wins when both exist, as in transformers). Each shard
// is opened once; every tensor of the weight map must be in the shard it names,
// and no tensor may be in two shards. Tensors a shard holds beyond its weight
// map entries are kept. Shard names must be plain file names in the folder.
class SafetensorsModel {
 public:
  // `path` is a model folder or a single .safetensors file.
  static SafetensorsModel open(const std::string& path);

  const std::string& path() const noexcept { return path_; }
  const std::vector<SafetensorsFile>& shards() const noexcept { return shards_; }
  size_t tensor_count() const noexcept { return index_.size(); }
  std::vector<std::string> tensor_names() const;  // sorted

  const SafetensorsTensorInfo* find_tensor(std::string_view name) const noexcept;
  const SafetensorsTensorInfo& require_tensor(std::string_view name) const;  // throws when missing
  const SafetensorsFile& shard_of(std::string_view name) const;              // throws when missing
  TensorView view(std::string_view name) const;
  Tensor tensor(std::string_view name) const;

 private:
  SafetensorsModel() = default;
  void add_shard(SafetensorsFile file);

  struct KeyHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
  };
  struct Location {
    size_t shard;
    size_t tensor;
  };

  std::string path_;
  std::vector<SafetensorsFile> shards_;
  std::unordered_map<std::string, Location, KeyHash, std::equal_to<>> index_;
};

}  // namespace qilin
