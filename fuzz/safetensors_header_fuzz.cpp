// libFuzzer target for the safetensors reader (length, JSON header, byte
// ranges): any input must parse or throw qilin::Error, never crash or read out
// of bounds. Also touches every byte of every accepted tensor and views each
// loadable one, so that a range the validator let through is used for real.
//
// Most inputs are taken as a whole file. When the first byte is '{' the input
// is taken as the JSON header alone and framed with a correct length, so the
// fuzzer spends its time in the JSON schema rather than on length mismatches
// (data bytes may follow the header after a NUL: "{...}\0<data>").
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "core/error.h"
#include "core/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<uint8_t> file;
  if (size != 0 && data[0] == '{') {
    const auto* nul = static_cast<const uint8_t*>(std::memchr(data, 0, size));
    const size_t header = nul != nullptr ? static_cast<size_t>(nul - data) : size;
    for (int i = 0; i < 8; ++i) file.push_back(static_cast<uint8_t>(static_cast<uint64_t>(header) >> (8 * i)));
    file.insert(file.end(), data, data + header);
    if (nul != nullptr) file.insert(file.end(), nul + 1, data + size);
  } else {
    file.assign(data, data + size);
  }
  // A buffer of exactly the file's size, so ASan sees any read past the end.
  std::shared_ptr<uint8_t[]> copy(new uint8_t[file.size() + 1]);
  if (!file.empty()) std::memcpy(copy.get(), file.data(), file.size());
  try {
    const qilin::SafetensorsFile f = qilin::SafetensorsFile::parse(copy.get(), file.size(), "fuzz.safetensors", copy);
    unsigned sum = 0;
    for (const qilin::SafetensorsTensorInfo& t : f.tensors()) {
      for (size_t i = 0; i < t.nbytes; ++i) sum += t.data[i];
      if (t.loadable()) sum += static_cast<unsigned>(f.tensor(t.name).nbytes());
    }
    for (const auto& [key, value] : f.metadata()) sum += static_cast<unsigned>(key.size() + value.size());
    volatile unsigned sink = sum;
    (void)sink;
  } catch (const qilin::Error&) {
  }
  return 0;
}
