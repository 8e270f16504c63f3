// GGUF reader: parses and validates the header, metadata and tensor infos of
// a mapped file. Layout (GGUF v2/v3, little-endian):
//   magic "GGUF" | u32 version | u64 tensor_count | u64 kv_count
//   kv_count x (string key | u32 type | value)
//   tensor_count x (string name | u32 n_dims | u64 ne[n_dims] | u32 ggml_type | u64 offset)
//   padding to general.alignment | tensor data (offsets relative to here)
// with string = u64 length + bytes and array = u32 elem_type + u64 count + elements.
//
// Every read goes through Cursor::take(), which checks the bytes left first;
// every count is checked against the bytes left before anything is reserved.
#include "core/gguf.h"

#include <algorithm>
#include <numeric>

#include "core/error.h"
#include "core/gguf_wire.h"
#include "core/mmap_file.h"

namespace qilin {
namespace {

constexpr int kMaxArrayDepth = 16;                             // arrays of arrays; real files use 1
constexpr uint64_t kMaxKeyBytes = 65535;                       // the GGUF spec's limit on key length
constexpr size_t kMinKvBytes = 8 + 1 + 4 + 1;                  // key length, 1-byte key, type, 1-byte value
constexpr size_t kMinTensorInfoBytes = 8 + 1 + 4 + 8 + 4 + 8;  // name, n_dims, one dim, type, offset

// Names of ggml types Qilin does not load, for messages ("q5_0 is not supported").
std::string_view ggml_type_name(uint32_t t) {
  static constexpr std::string_view kNames[] = {
      "f32",   "f16",    "q4_0", "q4_1", "q4_2", "q4_3",    "q5_0",   "q5_1",    "q8_0",  "q8_1",   "q2_k",
      "q3_k",  "q4_k",   "q5_k", "q6_k", "q8_k", "iq2_xxs", "iq2_xs", "iq3_xxs", "iq1_s", "iq4_nl", "iq3_s",
      "iq2_s", "iq4_xs", "i8",   "i16",  "i32",  "i64",     "f64",    "iq1_m",   "bf16"};
  return t < std::size(kNames) ? kNames[t] : std::string_view("unknown");
}

class Cursor {
 public:
  Cursor(const uint8_t* data, size_t size, const std::string& path) : data_(data), size_(size), path_(path) {}

  template <class... Args>
  [[noreturn]] void error(fmt::format_string<Args...> format, Args&&... args) const {
    fail("gguf", "{}: {}", path_, fmt::format(format, std::forward<Args>(args)...));
  }

  size_t pos() const noexcept { return pos_; }
  size_t left() const noexcept { return size_ - pos_; }

  const uint8_t* take(size_t n, std::string_view what) {
    if (n > left()) error("truncated: {} needs {} bytes at offset {}, only {} left", what, n, pos_, left());
    const uint8_t* p = data_ + pos_;
    pos_ += n;
    return p;
  }
  uint32_t u32(std::string_view what) { return static_cast<uint32_t>(gguf_wire::get_le(take(4, what), 4)); }
  uint64_t u64(std::string_view what) { return gguf_wire::get_le(take(8, what), 8); }

  std::string string(std::string_view what, uint64_t max_len) {
    const uint64_t len = u64(what);
    if (len > max_len) error("{} has length {}, more than the limit {}", what, len, max_len);
    if (len > left()) error("truncated: {} of length {} at offset {}, only {} bytes left", what, len, pos_, left());
    const auto* p = reinterpret_cast<const char*>(take(static_cast<size_t>(len), what));
    return {p, static_cast<size_t>(len)};
  }

  GgufValue value(GgufType type, const std::string& what, int depth);

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
  const std::string& path_;
};

GgufValue Cursor::value(GgufType type, const std::string& what, int depth) {
  if (const size_t width = gguf_wire::scalar_size(type); width != 0) {
    return gguf_wire::get_scalar(type, take(width, what));
  }
  if (type == GgufType::string) return GgufValue::string(string(what, UINT64_MAX));
  if (type != GgufType::array) error("{} has unknown value type {}", what, static_cast<uint32_t>(type));
  if (depth >= kMaxArrayDepth) error("{} nests arrays deeper than {}", what, kMaxArrayDepth);

  const auto elem = static_cast<GgufType>(u32(what));
  const uint64_t count = u64(what);
  if (const size_t width = gguf_wire::scalar_size(elem); width != 0) {
    if (count > left() / width) {
      error("{}: array of {} {} needs {} bytes, only {} left", what, count, name_of(elem),
            count > UINT64_MAX / width ? UINT64_MAX : count * width, left());
    }
    const size_t bytes = static_cast<size_t>(count) * width;
    const uint8_t* p = take(bytes, what);
    return GgufValue::packed_array(elem, std::vector<uint8_t>(p, p + bytes));
  }
  if (elem == GgufType::string) {
    // Each string takes at least its 8-byte length: bounds the reservation below.
    if (count > left() / 8) error("{}: array of {} strings cannot fit in the {} bytes left", what, count, left());
    std::vector<std::string> items;
    items.reserve(static_cast<size_t>(count));
    for (uint64_t i = 0; i < count; ++i) items.push_back(string(what, UINT64_MAX));
    return GgufValue::string_array(std::move(items));
  }
  if (elem == GgufType::array) {
    // Each inner array takes at least its type and count (12 bytes).
    if (count > left() / 12) error("{}: array of {} arrays cannot fit in the {} bytes left", what, count, left());
    std::vector<GgufValue> items;
    items.reserve(static_cast<size_t>(count));
    for (uint64_t i = 0; i < count; ++i) items.push_back(value(GgufType::array, what, depth + 1));
    return GgufValue::array_of_arrays(std::move(items));
  }
  error("{} is an array of unknown element type {}", what, static_cast<uint32_t>(elem));
}

}  // namespace

GgufFile GgufFile::open(const std::string& path) {
  std::shared_ptr<MappedFile> file = MappedFile::open(path);
  const uint8_t* data = file->data();
  const size_t size = file->size();
  GgufFile f = parse(data, size, path, file);
  f.mapping_ = std::move(file);
  return f;
}

void GgufFile::release_pages(const TensorView& view) const noexcept {
  if (mapping_ != nullptr) mapping_->release(view.data(), view.nbytes());
}

GgufFile GgufFile::parse(const uint8_t* data, size_t size, std::string name, std::shared_ptr<void> keep_alive) {
  GgufFile f;
  f.path_ = std::move(name);
  f.keep_alive_ = std::move(keep_alive);
  f.base_ = data;
  f.size_ = size;
  Cursor in(data, size, f.path_);

  // Header.
  const uint32_t magic = in.u32("the magic bytes");
  if (magic != gguf_wire::kMagic) in.error("not a GGUF file (magic 0x{:08x}, expected \"GGUF\")", magic);
  f.version_ = in.u32("the version");
  if (f.version_ == 0x02000000u || f.version_ == 0x03000000u) in.error("big-endian GGUF files are not supported");
  if (f.version_ != 2 && f.version_ != 3) in.error("GGUF version {} is not supported (only 2 and 3)", f.version_);
  const uint64_t n_tensors = in.u64("the tensor count");
  const uint64_t n_kv = in.u64("the metadata count");
  if (n_kv > in.left() / kMinKvBytes) in.error("metadata count {} cannot fit in the {} bytes left", n_kv, in.left());
  if (n_tensors > in.left() / kMinTensorInfoBytes) {
    in.error("tensor count {} cannot fit in the {} bytes left", n_tensors, in.left());
  }

  // Metadata.
  f.kv_.reserve(static_cast<size_t>(n_kv));
  for (uint64_t i = 0; i < n_kv; ++i) {
    std::string key = in.string(fmt::format("metadata key {}", i), kMaxKeyBytes);
    if (key.empty()) in.error("metadata key {} is empty", i);
    if (f.kv_index_.count(key) != 0) in.error("metadata key '{}' appears twice", key);
    const std::string what = fmt::format("metadata '{}'", key);
    const auto type = static_cast<GgufType>(in.u32(what));
    GgufValue v = in.value(type, what, 0);
    f.kv_index_.emplace(key, f.kv_.size());
    f.kv_.emplace_back(std::move(key), std::move(v));
  }
  if (const GgufValue* a = f.find("general.alignment")) {
    const std::optional<uint64_t> align = a->as_uint();
    if (a->type() != GgufType::u32 || !align || *align == 0 || (*align & (*align - 1)) != 0) {
      in.error("general.alignment is {}; it must be a u32 power of two", a->str());
    }
    f.alignment_ = static_cast<uint32_t>(*align);
  }

  // Tensor infos.
  f.tensors_.reserve(static_cast<size_t>(n_tensors));
  for (uint64_t i = 0; i < n_tensors; ++i) {
    GgufTensorInfo t;
    t.name = in.string(fmt::format("the name of tensor {}", i), kGgufMaxTensorName);
    if (t.name.empty()) in.error("tensor {} has an empty name", i);
    if (f.tensor_index_.count(t.name) != 0) in.error("tensor name '{}' appears twice", t.name);
    const std::string what = fmt::format("tensor '{}'", t.name);
    const uint32_t n_dims = in.u32(what);
    if (n_dims == 0 || n_dims > static_cast<uint32_t>(kMaxDims)) {
      in.error("{} has {} dimensions (1 to {} supported)", what, n_dims, kMaxDims);
    }
    int64_t ne[kMaxDims] = {};
    int64_t numel = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      const uint64_t n = in.u64(what);
      if (n == 0 || n > static_cast<uint64_t>(INT64_MAX)) in.error("{} has dimension ne[{}] = {}", what, d, n);
      ne[d] = static_cast<int64_t>(n);
      if (__builtin_mul_overflow(numel, ne[d], &numel)) in.error("{} has too many elements", what);
    }
    const uint32_t type = in.u32(what);
    if (!dtype_from_gguf(type, &t.dtype)) {
      in.error("{} has ggml type {} ({}), which Qilin does not support", what, type, ggml_type_name(type));
    }
    const DTypeTraits& tr = traits(t.dtype);
    if (ne[0] % tr.block_size != 0) {
      in.error("{}: innermost dimension {} is not a multiple of the {} block size {}", what, ne[0], tr.name,
               tr.block_size);
    }
    if (__builtin_mul_overflow(static_cast<uint64_t>(numel / tr.block_size), tr.block_bytes, &t.nbytes)) {
      in.error("{} is too large", what);
    }
    t.offset = in.u64(what);
    if (t.offset % f.alignment_ != 0)
      in.error("{}: offset {} is not a multiple of the alignment {}", what, t.offset, f.alignment_);
    t.shape.ndim = static_cast<int>(n_dims);
    for (uint32_t d = 0; d < n_dims; ++d) t.shape.dims[n_dims - 1 - d] = ne[d];  // GGUF lists innermost first
    f.tensor_index_.emplace(t.name, f.tensors_.size());
    f.tensors_.push_back(std::move(t));
  }

  // Data section: each tensor's bytes must lie inside the file and not overlap another's.
  f.data_offset_ = (in.pos() + f.alignment_ - 1) / f.alignment_ * f.alignment_;
  if (f.tensors_.empty()) return f;  // a metadata-only file may end without padding
  if (f.data_offset_ > size)
    in.error("data section would start at {}, past the end of the file ({} bytes)", f.data_offset_, size);
  const uint64_t data_size = size - f.data_offset_;
  for (GgufTensorInfo& t : f.tensors_) {
    if (t.offset > data_size || t.nbytes > data_size - t.offset) {
      in.error("tensor '{}': bytes [{}, {}) of the data section lie outside the file's {} data bytes", t.name, t.offset,
               t.offset + static_cast<uint64_t>(t.nbytes), data_size);
    }
    t.data = data + f.data_offset_ + t.offset;
  }
  std::vector<size_t> order(f.tensors_.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return f.tensors_[a].offset < f.tensors_[b].offset; });
  for (size_t i = 1; i < order.size(); ++i) {
    const GgufTensorInfo& a = f.tensors_[order[i - 1]];
    const GgufTensorInfo& b = f.tensors_[order[i]];
    if (a.offset + a.nbytes > b.offset) {
      in.error("tensors '{}' (bytes [{}, {})) and '{}' (from byte {}) overlap", a.name, a.offset, a.offset + a.nbytes,
               b.name, b.offset);
    }
  }
  return f;
}

const GgufValue* GgufFile::find(std::string_view key) const noexcept {
  const auto it = kv_index_.find(key);
  return it == kv_index_.end() ? nullptr : &kv_[it->second].second;
}

const GgufValue& GgufFile::require(std::string_view key) const {
  const GgufValue* v = find(key);
  if (v == nullptr) fail("gguf", "{}: required metadata key '{}' is missing", path_, key);
  return *v;
}

void GgufFile::type_error(std::string_view key, const GgufValue& v, std::string_view wanted) const {
  fail("gguf", "{}: metadata '{}' is {}, expected {}", path_, key, v.str(), wanted);
}

std::string GgufFile::get_string(std::string_view key, std::string_view fallback) const {
  return has(key) ? require_string(key) : std::string(fallback);
}
std::string GgufFile::require_string(std::string_view key) const {
  const GgufValue& v = require(key);
  if (const std::string* s = v.as_string()) return *s;
  type_error(key, v, "a string");
}

int64_t GgufFile::get_int(std::string_view key, int64_t fallback) const {
  return has(key) ? require_int(key) : fallback;
}
int64_t GgufFile::require_int(std::string_view key) const {
  const GgufValue& v = require(key);
  if (const std::optional<int64_t> x = v.as_int()) return *x;
  type_error(key, v, "an integer");
}

double GgufFile::get_float(std::string_view key, double fallback) const {
  return has(key) ? require_float(key) : fallback;
}
double GgufFile::require_float(std::string_view key) const {
  const GgufValue& v = require(key);
  if (const std::optional<double> x = v.as_double()) return *x;
  type_error(key, v, "a number");
}

bool GgufFile::get_bool(std::string_view key, bool fallback) const { return has(key) ? require_bool(key) : fallback; }
bool GgufFile::require_bool(std::string_view key) const {
  const GgufValue& v = require(key);
  if (const std::optional<bool> x = v.as_bool()) return *x;
  type_error(key, v, "a bool");
}

std::vector<std::string> GgufFile::require_string_array(std::string_view key) const {
  const GgufValue& v = require(key);
  if (const std::vector<std::string>* a = v.as_string_array()) return *a;
  type_error(key, v, "an array of strings");
}
std::vector<int64_t> GgufFile::require_int_array(std::string_view key) const {
  const GgufValue& v = require(key);
  if (std::optional<std::vector<int64_t>> a = v.as_int_array()) return std::move(*a);
  type_error(key, v, "an array of integers");
}
std::vector<float> GgufFile::require_float_array(std::string_view key) const {
  const GgufValue& v = require(key);
  if (std::optional<std::vector<float>> a = v.as_float_array()) return std::move(*a);
  type_error(key, v, "an array of numbers");
}

const GgufTensorInfo* GgufFile::find_tensor(std::string_view name) const noexcept {
  const auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

const GgufTensorInfo& GgufFile::require_tensor(std::string_view name) const {
  const GgufTensorInfo* t = find_tensor(name);
  if (t == nullptr) fail("gguf", "{}: tensor '{}' is missing", path_, name);
  return *t;
}

TensorView GgufFile::view(const GgufTensorInfo& info) const {
  // TensorView has no const flavour; the mapping is PROT_READ, so a write faults rather than corrupts.
  return TensorView(const_cast<uint8_t*>(info.data), info.shape, info.dtype);
}

Tensor GgufFile::tensor(std::string_view name) const { return Tensor::wrap(keep_alive_, view(require_tensor(name))); }

}  // namespace qilin
