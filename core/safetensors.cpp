// safetensors reader: the header length, the JSON header (safetensors_json.cpp)
// and each tensor's byte range, validated before any tensor byte is used.
#include "core/safetensors.h"

#include <fmt/ranges.h>

#include <algorithm>
#include <cstring>

#include "core/error.h"
#include "core/gguf_wire.h"
#include "core/mmap_file.h"
#include "core/safetensors_json.h"

namespace qilin {
namespace {

template <class... Args>
[[noreturn]] void error(const std::string& path, fmt::format_string<Args...> format, Args&&... args) {
  fail("safetensors", "{}: {}", path, fmt::format(format, std::forward<Args>(args)...));
}

// Every dtype of the safetensors format with a whole number of bytes per
// element; those Qilin has a DType for are loadable.
struct FileDType {
  std::string_view name;
  size_t bytes;
  bool loadable;
  DType dtype;
};
constexpr FileDType kFileDTypes[] = {
    {"F32", 4, true, DType::f32},      {"F16", 2, true, DType::f16},      {"BF16", 2, true, DType::bf16},
    {"I8", 1, true, DType::i8},        {"I32", 4, true, DType::i32},      {"BOOL", 1, false, DType::f32},
    {"U8", 1, false, DType::f32},      {"I16", 2, false, DType::f32},     {"U16", 2, false, DType::f32},
    {"U32", 4, false, DType::f32},     {"I64", 8, false, DType::f32},     {"U64", 8, false, DType::f32},
    {"F64", 8, false, DType::f32},     {"C64", 8, false, DType::f32},     {"F8_E5M2", 1, false, DType::f32},
    {"F8_E4M3", 1, false, DType::f32}, {"F8_E8M0", 1, false, DType::f32},
};

// Checks one header entry against the data section and describes it.
SafetensorsTensorInfo describe_tensor(const safetensors_json::HeaderEntry& e, uint64_t data_size,
                                      const std::string& path) {
  const std::string shape = fmt::format("[{}]", fmt::join(e.shape, ", "));
  const FileDType* dt = nullptr;
  for (const FileDType& d : kFileDTypes) {
    if (d.name == e.dtype) dt = &d;
  }
  if (dt == nullptr) error(path, "tensor '{}' has dtype '{}', which is not a known safetensors dtype", e.name, e.dtype);

  int64_t numel = 1;
  for (const uint64_t n : e.shape) {
    if (n > static_cast<uint64_t>(INT64_MAX) || __builtin_mul_overflow(numel, static_cast<int64_t>(n), &numel)) {
      error(path, "tensor '{}': shape {} has more elements than fit in 64 bits", e.name, shape);
    }
  }
  uint64_t bytes = 0;
  if (__builtin_mul_overflow(static_cast<uint64_t>(numel), dt->bytes, &bytes)) {
    error(path, "tensor '{}': shape {} of {} needs more bytes than fit in 64 bits", e.name, shape, e.dtype);
  }
  if (e.begin > e.end) error(path, "tensor '{}': data_offsets [{}, {}] end before they begin", e.name, e.begin, e.end);
  if (e.end > data_size) {
    error(path, "tensor '{}': data_offsets [{}, {}] reach past the end of the data section ({} bytes)", e.name, e.begin,
          e.end, data_size);
  }
  if (e.end - e.begin != bytes) {
    error(path, "tensor '{}': data_offsets [{}, {}] hold {} bytes, but shape {} of {} needs {}", e.name, e.begin, e.end,
          e.end - e.begin, shape, e.dtype, bytes);
  }

  SafetensorsTensorInfo t;
  t.name = e.name;
  t.dtype_name = e.dtype;
  t.offset = e.begin;
  t.nbytes = static_cast<size_t>(bytes);
  if (!dt->loadable) {
    t.unsupported = fmt::format("has dtype {}, which Qilin does not load (only F32, F16, BF16, I8, I32)", e.dtype);
  } else if (e.shape.size() > static_cast<size_t>(kMaxDims)) {
    t.unsupported = fmt::format("has {} dimensions {}, Qilin supports at most {}", e.shape.size(), shape, kMaxDims);
  } else if (numel == 0) {
    t.unsupported = fmt::format("has no elements (shape {})", shape);
  } else {
    t.dtype = dt->dtype;
    t.shape.ndim = static_cast<int>(e.shape.size());
    for (size_t d = 0; d < e.shape.size(); ++d) t.shape.dims[d] = static_cast<int64_t>(e.shape[d]);
  }
  return t;
}

}  // namespace

SafetensorsFile SafetensorsFile::open(const std::string& path) {
  std::shared_ptr<MappedFile> file = MappedFile::open(path);
  const uint8_t* data = file->data();
  const size_t size = file->size();
  SafetensorsFile f = parse(data, size, path, file);
  f.mapping_ = std::move(file);
  return f;
}

void SafetensorsFile::release_pages(const TensorView& view) const noexcept {
  if (mapping_ != nullptr) mapping_->release(view.data(), view.nbytes());
}

SafetensorsFile SafetensorsFile::parse(const uint8_t* data, size_t size, std::string name,
                                       std::shared_ptr<void> keep_alive) {
  SafetensorsFile f;
  f.path_ = std::move(name);
  f.keep_alive_ = std::move(keep_alive);
  f.size_ = size;
  const std::string& path = f.path_;

  if (size < 8) error(path, "truncated: {} bytes, fewer than the 8 of the header length", size);
  const uint64_t header_bytes = gguf_wire::get_le(data, 8);
  if (header_bytes > kSafetensorsMaxHeaderBytes) {
    error(path, "header length {} is more than the limit of {} bytes", header_bytes, kSafetensorsMaxHeaderBytes);
  }
  if (header_bytes > size - 8) {
    error(path, "truncated: header length {} but only {} bytes follow it", header_bytes, size - 8);
  }
  if (header_bytes == 0 || data[8] != '{') error(path, "the header does not start with '{{'");
  // JSON text never holds a raw NUL, and nlohmann would take one as the end of the text.
  if (const void* nul = std::memchr(data + 8, 0, header_bytes)) {
    error(path, "the header has a NUL byte at {} of the header", static_cast<const uint8_t*>(nul) - (data + 8));
  }
  f.data_offset_ = 8 + header_bytes;
  const uint64_t data_size = size - f.data_offset_;

  safetensors_json::Header header =
      safetensors_json::parse_header({reinterpret_cast<const char*>(data + 8), header_bytes}, path);
  f.metadata_ = std::move(header.metadata);
  f.tensors_.reserve(header.tensors.size());
  for (const safetensors_json::HeaderEntry& e : header.tensors) {
    if (!f.tensor_index_.emplace(e.name, 0).second) error(path, "tensor '{}' appears twice", e.name);
    f.tensors_.push_back(describe_tensor(e, data_size, path));
  }

  // The tensors must tile the data section: sorted by offset, each begins where the last one ended.
  std::sort(f.tensors_.begin(), f.tensors_.end(), [](const SafetensorsTensorInfo& a, const SafetensorsTensorInfo& b) {
    return a.offset != b.offset ? a.offset < b.offset : a.nbytes < b.nbytes;
  });
  uint64_t end = 0;
  for (size_t i = 0; i < f.tensors_.size(); ++i) {
    const SafetensorsTensorInfo& t = f.tensors_[i];
    if (t.offset < end) {
      const SafetensorsTensorInfo& prev = f.tensors_[i - 1];
      error(path, "tensors '{}' (bytes [{}, {})) and '{}' (bytes [{}, {})) overlap", prev.name, prev.offset, end,
            t.name, t.offset, t.offset + t.nbytes);
    }
    if (t.offset > end) {
      error(path, "bytes [{}, {}) of the data section, before tensor '{}', belong to no tensor", end, t.offset, t.name);
    }
    end = t.offset + t.nbytes;
  }
  if (end != data_size) {
    error(path, "the last {} bytes of the data section belong to no tensor (tensors end at {} of {})", data_size - end,
          end, data_size);
  }
  for (size_t i = 0; i < f.tensors_.size(); ++i) {
    SafetensorsTensorInfo& t = f.tensors_[i];
    if (t.nbytes != 0) t.data = data + f.data_offset_ + t.offset;
    f.tensor_index_[t.name] = i;
  }
  return f;
}

const std::string* SafetensorsFile::find_metadata(std::string_view key) const noexcept {
  const auto it = std::lower_bound(metadata_.begin(), metadata_.end(), key,
                                   [](const auto& kv, std::string_view k) { return kv.first < k; });
  return it != metadata_.end() && it->first == key ? &it->second : nullptr;
}

const SafetensorsTensorInfo* SafetensorsFile::find_tensor(std::string_view name) const noexcept {
  const auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

const SafetensorsTensorInfo& SafetensorsFile::require_tensor(std::string_view name) const {
  const SafetensorsTensorInfo* t = find_tensor(name);
  if (t == nullptr) error(path_, "tensor '{}' is missing", name);
  return *t;
}

TensorView SafetensorsFile::view(const SafetensorsTensorInfo& info) const {
  if (!info.loadable()) error(path_, "tensor '{}' {}", info.name, info.unsupported);
  // TensorView has no const flavour; the mapping is PROT_READ, so a write faults rather than corrupts.
  return TensorView(const_cast<uint8_t*>(info.data), info.shape, info.dtype);
}

Tensor SafetensorsFile::tensor(std::string_view name) const {
  return Tensor::wrap(keep_alive_, view(require_tensor(name)));
}

}  // namespace qilin
