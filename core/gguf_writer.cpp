#include "core/gguf_writer.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "core/error.h"
#include "core/gguf_wire.h"

namespace qilin {
namespace {

constexpr uint32_t kVersion = 3;

uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

// Appends little-endian encodings to a byte buffer.
struct Encoder {
  std::vector<uint8_t> out;

  template <class T>
  void le(T v) {
    const size_t at = out.size();
    out.resize(at + sizeof(T));
    gguf_wire::put_le(out.data() + at, v);
  }
  void str(std::string_view s) {
    le<uint64_t>(s.size());
    out.insert(out.end(), s.begin(), s.end());
  }
  // The value's payload: everything after its type tag.
  void payload(const GgufValue& v) {
    switch (v.type()) {
      case GgufType::string:
        str(*v.as_string());
        return;
      case GgufType::array:
        le<uint32_t>(static_cast<uint32_t>(v.elem_type()));
        le<uint64_t>(v.size());
        if (const auto* strings = v.as_string_array()) {
          for (const std::string& s : *strings) str(s);
        } else if (const auto* arrays = v.as_array_of_arrays()) {
          for (const GgufValue& a : *arrays) payload(a);  // element type is declared once, above
        } else {
          out.insert(out.end(), v.packed_bytes().begin(), v.packed_bytes().end());
        }
        return;
      default: {
        const size_t at = out.size();
        out.resize(at + gguf_wire::scalar_size(v.type()));
        gguf_wire::put_scalar(v, out.data() + at);
      }
    }
  }
};

// Owns the FILE* of the temporary file; removes the file unless committed.
class TempFile {
 public:
  TempFile(std::string final_path) : path_(std::move(final_path)), tmp_(path_ + ".partial") {
    file_ = std::fopen(tmp_.c_str(), "wb");
    if (file_ == nullptr) fail("gguf_writer", "cannot create '{}': {}", tmp_, std::strerror(errno));
    std::setvbuf(file_, nullptr, _IOFBF, 1 << 20);
  }
  ~TempFile() {
    if (file_ != nullptr) std::fclose(file_);
    if (!committed_) std::remove(tmp_.c_str());
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;

  void write(const void* data, size_t n) {
    if (n != 0 && std::fwrite(data, 1, n, file_) != n) {
      fail("gguf_writer", "writing '{}' failed: {}", tmp_, std::strerror(errno));
    }
    written_ += n;
  }
  void pad_to(uint64_t alignment) {
    static constexpr uint8_t kZeros[256] = {};
    uint64_t pad = align_up(written_, alignment) - written_;
    while (pad > 0) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(pad, sizeof kZeros));
      write(kZeros, n);
      pad -= n;
    }
  }
  // Flushes to disk and renames over the final path.
  void commit() {
    const bool ok = std::fflush(file_) == 0 && ::fsync(fileno(file_)) == 0;
    const int err = errno;
    const bool closed = std::fclose(file_) == 0;
    file_ = nullptr;
    if (!ok || !closed) fail("gguf_writer", "writing '{}' failed: {}", tmp_, std::strerror(ok ? errno : err));
    if (std::rename(tmp_.c_str(), path_.c_str()) != 0) {
      fail("gguf_writer", "cannot rename '{}' to '{}': {}", tmp_, path_, std::strerror(errno));
    }
    committed_ = true;
  }

 private:
  std::string path_, tmp_;
  std::FILE* file_ = nullptr;
  uint64_t written_ = 0;
  bool committed_ = false;
};

}  // namespace

GgufWriter::GgufWriter(uint32_t alignment) : alignment_(kGgufDefaultAlignment) {
  if (alignment != kGgufDefaultAlignment) add("general.alignment", GgufValue::u32(alignment));
}

void GgufWriter::add(std::string key, GgufValue value) {
  if (key.empty() || key.size() > 65535)
    fail("gguf_writer", "metadata key of {} bytes (1 to 65535 allowed)", key.size());
  if (key == "general.alignment") {
    const std::optional<uint64_t> a = value.as_uint();
    if (value.type() != GgufType::u32 || !a || *a == 0 || (*a & (*a - 1)) != 0) {
      fail("gguf_writer", "general.alignment must be a u32 power of two, not {}", value.str());
    }
    alignment_ = static_cast<uint32_t>(*a);
    for (auto& [k, v] : kv_) {
      if (k == key) {
        v = std::move(value);
        return;
      }
    }
  } else {
    for (const auto& kv : kv_) {
      if (kv.first == key) fail("gguf_writer", "metadata key '{}' added twice", key);
    }
  }
  kv_.emplace_back(std::move(key), std::move(value));
}

void GgufWriter::add_tensor(std::string name, Shape shape, DType dtype, Producer produce) {
  add_tensor_info(std::move(name), shape, dtype);
  if (!produce) fail("gguf_writer", "tensor '{}' has no producer", tensors_.back().name);
  tensors_.back().produce = std::move(produce);
}

void GgufWriter::add_tensor_info(std::string name, Shape shape, DType dtype) {
  if (name.empty() || name.size() > kGgufMaxTensorName) {
    fail("gguf_writer", "tensor name '{}' has {} bytes (1 to {} allowed)", name, name.size(), kGgufMaxTensorName);
  }
  for (const PendingTensor& t : tensors_) {
    if (t.name == name) fail("gguf_writer", "tensor '{}' added twice", name);
  }
  if (shape.ndim < 1) fail("gguf_writer", "tensor '{}' has no dimensions", name);
  for (int i = 0; i < shape.ndim; ++i) {
    if (shape[i] <= 0) fail("gguf_writer", "tensor '{}' has shape {}; dimensions must be positive", name, shape.str());
  }
  const DTypeTraits& tr = traits(dtype);
  if (shape.last() % tr.block_size != 0) {
    fail("gguf_writer", "tensor '{}' has shape {}: the innermost dimension is not a multiple of the {} block size {}",
         name, shape.str(), tr.name, tr.block_size);
  }
  const size_t nbytes = row_bytes(dtype, shape.last()) * static_cast<size_t>(shape.rows());
  tensors_.push_back({std::move(name), shape, dtype, nbytes, Producer(), nullptr});
}

void GgufWriter::add_tensor(std::string name, Shape shape, DType dtype, const void* data) {
  if (data == nullptr) fail("gguf_writer", "tensor '{}' has no data", name);
  add_tensor_info(std::move(name), shape, dtype);
  tensors_.back().data = data;  // written straight from the caller's memory
}

void GgufWriter::add_tensor(std::string name, const TensorView& view) {
  if (view.device() != Device::cpu || !view.is_contiguous()) {
    fail("gguf_writer", "tensor '{}' must be a contiguous CPU tensor", name);
  }
  add_tensor(std::move(name), view.shape(), view.dtype(), static_cast<const void*>(view.data()));
}

uint64_t GgufWriter::data_bytes() const noexcept {
  uint64_t total = 0;
  for (const PendingTensor& t : tensors_) total += align_up(t.nbytes, alignment_);
  return total;
}

void GgufWriter::write(const std::string& path, const Progress& progress) const {
  Encoder head;
  head.le<uint32_t>(gguf_wire::kMagic);
  head.le<uint32_t>(kVersion);
  head.le<uint64_t>(tensors_.size());
  head.le<uint64_t>(kv_.size());
  for (const auto& [key, value] : kv_) {
    head.str(key);
    head.le<uint32_t>(static_cast<uint32_t>(value.type()));
    head.payload(value);
  }
  uint64_t offset = 0;
  for (const PendingTensor& t : tensors_) {
    head.str(t.name);
    head.le<uint32_t>(static_cast<uint32_t>(t.shape.ndim));
    for (int d = t.shape.ndim - 1; d >= 0; --d) head.le<uint64_t>(static_cast<uint64_t>(t.shape[d]));  // ne[0] first
    head.le<uint32_t>(traits(t.dtype).gguf_type);
    head.le<uint64_t>(offset);
    offset += align_up(t.nbytes, alignment_);
  }

  TempFile file(path);
  file.write(head.out.data(), head.out.size());
  file.pad_to(alignment_);
  const uint64_t total = data_bytes();
  uint64_t done = 0;
  std::vector<uint8_t> scratch;
  for (const PendingTensor& t : tensors_) {
    if (t.data != nullptr) {
      file.write(t.data, t.nbytes);
    } else {
      scratch.assign(t.nbytes, 0);
      t.produce(std::span<uint8_t>(scratch));
      file.write(scratch.data(), scratch.size());
    }
    file.pad_to(alignment_);
    done += align_up(t.nbytes, alignment_);
    if (progress) progress(done, total);
  }
  file.commit();
}

}  // namespace qilin
