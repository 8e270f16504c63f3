// A read-only memory-mapped file.
//
// Weights are used straight from the page cache: nothing is copied at load,
// and pages are read on first touch. The mapping is PROT_READ, so a stray
// write through a view of it faults at once instead of corrupting weights.
// Hold the shared_ptr as long as any pointer into the mapping is in use; it is
// usable as the keep-alive owner of Tensor::wrap.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace qilin {

class MappedFile {
 public:
  // Maps the whole file; throws Error naming the path (and errno's text) on failure.
  static std::shared_ptr<MappedFile> open(const std::string& path);

  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  // Start of the mapping; nullptr for an empty file.
  const uint8_t* data() const noexcept { return data_; }
  size_t size() const noexcept { return size_; }
  const std::string& path() const noexcept { return path_; }

  // Drops the whole pages inside [p, p + bytes) from this process's resident set
  // (madvise MADV_DONTNEED): for a weight the program has copied or repacked, so it
  // is not held twice. Safe: the mapping is read-only and private, so a later read
  // of a dropped page faults it in again from the file. Ranges outside the mapping
  // are ignored; partial pages at either end are kept.
  void release(const void* p, size_t bytes) const noexcept;

 private:
  MappedFile(std::string path, const uint8_t* data, size_t size) noexcept
      : path_(std::move(path)), data_(data), size_(size) {}

  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace qilin
