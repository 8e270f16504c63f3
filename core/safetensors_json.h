// Internal: the JSON side of safetensors (the header of a file and the
// model.safetensors.index.json of a sharded checkpoint), parsed with
// nlohmann-json behind this plain interface so that the library's public
// headers never include it. Not part of the public API.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace qilin::safetensors_json {

// One tensor entry of a header, checked against the schema only (types,
// presence, no duplicate fields); the caller checks the values.
struct HeaderEntry {
  std::string name;
  std::string dtype;
  std::vector<uint64_t> shape;  // at most kSafetensorsMaxRank entries
  uint64_t begin = 0;
  uint64_t end = 0;
};

struct Header {
  std::vector<std::pair<std::string, std::string>> metadata;  // "__metadata__", key order
  std::vector<HeaderEntry> tensors;                           // header order
};

// Parses a file header. Throws Error("[safetensors] <path>: ...") for invalid
// JSON (with the byte position), a schema violation or a duplicate key.
Header parse_header(std::string_view json, const std::string& path);

// Parses an index.json: the (tensor, shard file) pairs of its "weight_map",
// sorted by tensor name. Throws Error naming `path` and the field.
std::vector<std::pair<std::string, std::string>> parse_weight_map(std::string_view json, const std::string& path);

}  // namespace qilin::safetensors_json
