// GGUF (v2 and v3) files: metadata values and the reader.
//
// The reader maps the file and validates everything before anything is used:
// header, every length and count against the bytes that are left, value
// types, tensor shapes and types, alignment, and each tensor's byte range.
// Any violation throws qilin::Error naming the file and the field; nothing is
// read out of bounds and no allocation is sized by an unchecked count.
//
// Tensor shapes are converted to Qilin's order: GGUF lists ne[0] (innermost,
// contiguous) first, Qilin's Shape lists the outermost dimension first. A GGUF
// weight with ne = {K, N} is a Shape {N, K}: N rows of K elements.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/dtype.h"
#include "core/tensor.h"

namespace qilin {

class MappedFile;

// Metadata value types, with their GGUF type ids.
enum class GgufType : uint32_t {
  u8 = 0,
  i8 = 1,
  u16 = 2,
  i16 = 3,
  u32 = 4,
  i32 = 5,
  f32 = 6,
  boolean = 7,
  string = 8,
  array = 9,
  u64 = 10,
  i64 = 11,
  f64 = 12,
};

std::string_view name_of(GgufType t) noexcept;  // "u32", "string", ... ("?" when out of range)

// A metadata value. Owns its data (strings and arrays are copied out of the
// file), so it outlives the file it came from and can be handed to a writer.
class GgufValue {
 public:
  GgufValue() = default;
  static GgufValue u8(uint8_t v) { return integer(GgufType::u8, v); }
  static GgufValue i8(int8_t v) { return integer(GgufType::i8, static_cast<uint64_t>(v)); }
  static GgufValue u16(uint16_t v) { return integer(GgufType::u16, v); }
  static GgufValue i16(int16_t v) { return integer(GgufType::i16, static_cast<uint64_t>(v)); }
  static GgufValue u32(uint32_t v) { return integer(GgufType::u32, v); }
  static GgufValue i32(int32_t v) { return integer(GgufType::i32, static_cast<uint64_t>(v)); }
  static GgufValue u64(uint64_t v) { return integer(GgufType::u64, v); }
  static GgufValue i64(int64_t v) { return integer(GgufType::i64, static_cast<uint64_t>(v)); }
  static GgufValue f32(float v);
  static GgufValue f64(double v);
  static GgufValue boolean(bool v) { return integer(GgufType::boolean, v ? 1 : 0); }
  static GgufValue string(std::string v);
  // Arrays of scalars (elements given as values of `elem`, which must be a scalar type).
  static GgufValue array(GgufType elem, std::span<const GgufValue> items);
  static GgufValue string_array(std::vector<std::string> items);
  // An array of arrays (nested); `items` must all be arrays.
  static GgufValue array_of_arrays(std::vector<GgufValue> items);
  // An array of scalars from their little-endian bytes as a file stores them
  // (packed.size() must be a multiple of the element size).
  static GgufValue packed_array(GgufType elem, std::vector<uint8_t> packed);
  // Typed shorthands for the common arrays.
  static GgufValue i32_array(std::span<const int32_t> items);
  static GgufValue f32_array(std::span<const float> items);

  GgufType type() const noexcept { return type_; }
  bool is_integer() const noexcept;  // u8..i64 (not bool)
  bool is_float() const noexcept { return type_ == GgufType::f32 || type_ == GgufType::f64; }

  // Scalars; nullopt when the type does not hold such a value. Integers of any
  // width convert when the value fits; floats accept integer values too.
  std::optional<int64_t> as_int() const noexcept;
  std::optional<uint64_t> as_uint() const noexcept;
  std::optional<double> as_double() const noexcept;
  std::optional<bool> as_bool() const noexcept;
  const std::string* as_string() const noexcept { return type_ == GgufType::string ? &str_ : nullptr; }

  // Arrays: element type and count; elements of any type read as values.
  GgufType elem_type() const noexcept { return elem_; }
  size_t size() const noexcept { return count_; }
  GgufValue at(size_t i) const;  // throws Error when out of range or not an array
  const std::vector<std::string>* as_string_array() const noexcept;
  const std::vector<GgufValue>* as_array_of_arrays() const noexcept;
  // Arrays of scalars: the elements' little-endian bytes, as a file stores them.
  std::span<const uint8_t> packed_bytes() const noexcept { return packed_; }
  std::optional<std::vector<int64_t>> as_int_array() const;  // integer element types
  std::optional<std::vector<float>> as_float_array() const;  // float or integer element types

  std::string str() const;  // short description for messages: "u32 7", "array<string>[3]"

  bool operator==(const GgufValue& o) const;

 private:
  static GgufValue integer(GgufType t, uint64_t bits);

  GgufType type_ = GgufType::u8;
  GgufType elem_ = GgufType::u8;      // arrays only
  uint64_t bits_ = 0;                 // integers (sign-extended) and bool
  double f_ = 0.0;                    // f32 / f64
  std::string str_;                   // string
  size_t count_ = 0;                  // arrays: number of elements
  std::vector<uint8_t> packed_;       // arrays of scalars: little-endian elements as in the file
  std::vector<std::string> strings_;  // arrays of strings
  std::vector<GgufValue> arrays_;     // arrays of arrays
};

// One tensor as described by the file, checked against the file's bytes.
struct GgufTensorInfo {
  std::string name;
  Shape shape;  // outermost first (GGUF's ne[] reversed)
  DType dtype = DType::f32;
  uint64_t offset = 0;  // from the start of the data section
  size_t nbytes = 0;
  const uint8_t* data = nullptr;  // into the mapping
};

class GgufFile {
 public:
  // Maps and validates a file; throws Error naming the path and the field.
  static GgufFile open(const std::string& path);
  // Validates bytes already in memory (`name` is used in messages); `keep_alive`
  // owns them and is what tensor() hands to Tensor::wrap. Used by the fuzzer and tests.
  static GgufFile parse(const uint8_t* data, size_t size, std::string name, std::shared_ptr<void> keep_alive);

  const std::string& path() const noexcept { return path_; }
  uint32_t version() const noexcept { return version_; }
  uint32_t alignment() const noexcept { return alignment_; }
  uint64_t data_offset() const noexcept { return data_offset_; }  // start of the tensor data section
  size_t file_size() const noexcept { return size_; }

  // Metadata in file order.
  const std::vector<std::pair<std::string, GgufValue>>& metadata() const noexcept { return kv_; }
  const GgufValue* find(std::string_view key) const noexcept;
  bool has(std::string_view key) const noexcept { return find(key) != nullptr; }
  const GgufValue& require(std::string_view key) const;  // throws when missing

  // Typed accessors. The get_* forms return `fallback` when the key is absent;
  // both forms throw Error naming the key and the file when the key holds another type.
  std::string get_string(std::string_view key, std::string_view fallback) const;
  std::string require_string(std::string_view key) const;
  int64_t get_int(std::string_view key, int64_t fallback) const;
  int64_t require_int(std::string_view key) const;
  double get_float(std::string_view key, double fallback) const;
  double require_float(std::string_view key) const;
  bool get_bool(std::string_view key, bool fallback) const;
  bool require_bool(std::string_view key) const;
  std::vector<std::string> require_string_array(std::string_view key) const;
  std::vector<int64_t> require_int_array(std::string_view key) const;
  std::vector<float> require_float_array(std::string_view key) const;

  // Tensors in file order.
  const std::vector<GgufTensorInfo>& tensors() const noexcept { return tensors_; }
  const GgufTensorInfo* find_tensor(std::string_view name) const noexcept;
  const GgufTensorInfo& require_tensor(std::string_view name) const;
  // A view of the tensor's bytes in the mapping (read-only memory: never write through it).
  TensorView view(const GgufTensorInfo& info) const;
  // The same view as a Tensor that keeps the mapping alive; no copy.
  Tensor tensor(std::string_view name) const;
  // Drops the pages of a tensor's bytes from the process's resident set when they
  // lie in this file's mapping (the caller holds a copy or repack): they are read
  // again from the file if touched. A no-op for bytes handed to parse().
  void release_pages(const TensorView& view) const noexcept;

 private:
  GgufFile() = default;
  [[noreturn]] void type_error(std::string_view key, const GgufValue& v, std::string_view wanted) const;

  std::string path_;
  std::shared_ptr<void> keep_alive_;
  std::shared_ptr<const MappedFile> mapping_;  // set by open(); null after parse()
  const uint8_t* base_ = nullptr;
  size_t size_ = 0;
  uint32_t version_ = 0;
  uint32_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  // Hash maps looked up by string_view without building a std::string.
  struct KeyHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
  };
  using Index = std::unordered_map<std::string, size_t, KeyHash, std::equal_to<>>;

  std::vector<std::pair<std::string, GgufValue>> kv_;
  Index kv_index_;
  std::vector<GgufTensorInfo> tensors_;
  Index tensor_index_;

  friend class GgufParser;
};

inline constexpr uint32_t kGgufDefaultAlignment = 32;
inline constexpr size_t kGgufMaxTensorName = 63;  // llama.cpp's GGML_MAX_NAME (64) less the NUL

}  // namespace qilin
