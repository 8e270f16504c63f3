// libFuzzer target for the GGUF reader: any input must parse or throw
// qilin::Error, never crash or read out of bounds. Also touches every parsed
// tensor byte so that a range the validator let through is read for real.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>

#include "core/error.h"
#include "core/gguf.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // A buffer of exactly `size` bytes, so ASan sees any read past the end.
  std::shared_ptr<uint8_t[]> copy(new uint8_t[size + 1]);
  if (size != 0) std::memcpy(copy.get(), data, size);
  try {
    const qilin::GgufFile f = qilin::GgufFile::parse(copy.get(), size, "fuzz.gguf", copy);
    unsigned sum = 0;
    for (const qilin::GgufTensorInfo& t : f.tensors()) {
      for (size_t i = 0; i < t.nbytes; ++i) sum += t.data[i];
    }
    for (const auto& [key, value] : f.metadata()) sum += static_cast<unsigned>(value.str().size() + key.size());
    volatile unsigned sink = sum;
    (void)sink;
  } catch (const qilin::Error&) {
  }
  return 0;
}
