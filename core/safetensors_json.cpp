// The JSON side of safetensors, with nlohmann-json.
//
// A file header is read with nlohmann's SAX interface: a small state machine
// takes the events and throws at the first one that breaks the schema, so no
// JSON tree is built, memory stays proportional to what is kept, and nesting
// is bounded (an adversarial header cannot exhaust the stack or the heap).
// Duplicate keys, which a JSON tree would silently collapse to the last one,
// are rejected: tensor names (by the caller), "__metadata__", metadata keys
// and a tensor's own fields. Unknown fields of a tensor are skipped, as the
// reference implementation does.
//
// The index.json of a sharded checkpoint is small and read into a tree, with a
// parser callback that rejects duplicate keys at any depth and deep nesting.
#include "core/safetensors_json.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>

#include "core/error.h"
#include "core/safetensors.h"

namespace qilin::safetensors_json {
namespace {

using nlohmann::json;

constexpr std::string_view kMetadataKey = "__metadata__";
constexpr int kMaxNesting = 64;  // inside ignored tensor fields, and in index.json

template <class... Args>
[[noreturn]] void error(const std::string& path, fmt::format_string<Args...> format, Args&&... args) {
  fail("safetensors", "{}: {}", path, fmt::format(format, std::forward<Args>(args)...));
}

enum class Kind { null, boolean, negative, unsigned_int, floating, string, object, array };

std::string_view describe(Kind k) {
  switch (k) {
    case Kind::null:
      return "null";
    case Kind::boolean:
      return "a boolean";
    case Kind::negative:
      return "a negative number";
    case Kind::unsigned_int:
      return "a number";
    case Kind::floating:
      return "a fractional or out-of-range number";
    case Kind::string:
      return "a string";
    case Kind::object:
      return "an object";
    default:
      return "an array";
  }
}

// The nlohmann SAX handler for a header (the member names are nlohmann's).
class HeaderReader {
 public:
  HeaderReader(const std::string& path, Header* out) : path_(path), out_(out) {}

  bool null() { return value(Kind::null, 0, nullptr); }
  bool boolean(bool) { return value(Kind::boolean, 0, nullptr); }
  bool number_integer(json::number_integer_t v) {
    return v < 0 ? value(Kind::negative, 0, nullptr) : value(Kind::unsigned_int, static_cast<uint64_t>(v), nullptr);
  }
  bool number_unsigned(json::number_unsigned_t v) { return value(Kind::unsigned_int, v, nullptr); }
  bool number_float(json::number_float_t, const json::string_t&) { return value(Kind::floating, 0, nullptr); }
  bool string(json::string_t& s) { return value(Kind::string, 0, &s); }
  bool binary(json::binary_t&) { return value(Kind::null, 0, nullptr); }  // never produced from JSON text
  bool start_object(std::size_t) { return value(Kind::object, 0, nullptr); }
  bool start_array(std::size_t) { return value(Kind::array, 0, nullptr); }
  bool key(json::string_t& k);
  bool end_object();
  bool end_array();
  bool parse_error(std::size_t position, const std::string&, const json::exception& e) {
    error(path_, "the header is not valid JSON (at byte {} of the header): {}", position, e.what());
  }

 private:
  enum class Ctx { start, top, metadata, tensor, shape, offsets, done };
  enum class Field { dtype, shape, offsets, other };

  bool value(Kind k, uint64_t number, json::string_t* text);
  void tensor_field(Kind k, json::string_t* text);
  HeaderEntry& entry() { return out_->tensors.back(); }
  void enter_ignored() {
    if (++ignored_depth_ > kMaxNesting) {
      error(path_, "tensor '{}': field '{}' nests deeper than {} levels", entry().name, key_, kMaxNesting);
    }
  }

  const std::string& path_;
  Header* out_;
  Ctx ctx_ = Ctx::start;
  std::string key_;  // the last key read (a tensor name, a metadata key or a tensor field)
  Field field_ = Field::other;
  bool seen_metadata_ = false;
  bool has_dtype_ = false, has_shape_ = false, has_offsets_ = false;
  int n_offsets_ = 0;
  int ignored_depth_ = 0;  // > 0 while inside the value of an ignored tensor field
};

bool HeaderReader::value(Kind k, uint64_t number, json::string_t* text) {
  if (ignored_depth_ > 0) {
    if (k == Kind::object || k == Kind::array) enter_ignored();
    return true;
  }
  switch (ctx_) {
    case Ctx::start:
      if (k != Kind::object) error(path_, "the header is {}, not a JSON object", describe(k));
      ctx_ = Ctx::top;
      return true;
    case Ctx::top:
      if (key_ == kMetadataKey) {
        if (k != Kind::object) error(path_, "__metadata__ is {}, not an object", describe(k));
        ctx_ = Ctx::metadata;
        return true;
      }
      if (k != Kind::object) error(path_, "tensor '{}' is {}, not an object", key_, describe(k));
      out_->tensors.emplace_back().name = std::move(key_);
      has_dtype_ = has_shape_ = has_offsets_ = false;
      ctx_ = Ctx::tensor;
      return true;
    case Ctx::metadata:
      if (k != Kind::string) error(path_, "__metadata__ '{}' is {}, not a string", key_, describe(k));
      out_->metadata.emplace_back(std::move(key_), std::move(*text));
      return true;
    case Ctx::tensor:
      tensor_field(k, text);
      return true;
    case Ctx::shape: {
      HeaderEntry& t = entry();
      if (k != Kind::unsigned_int) {
        error(path_, "tensor '{}': shape[{}] is {}, not a non-negative integer", t.name, t.shape.size(), describe(k));
      }
      if (t.shape.size() == kSafetensorsMaxRank) {
        error(path_, "tensor '{}': shape has more than {} dimensions", t.name, kSafetensorsMaxRank);
      }
      t.shape.push_back(number);
      return true;
    }
    case Ctx::offsets: {
      HeaderEntry& t = entry();
      if (k != Kind::unsigned_int) {
        error(path_, "tensor '{}': data_offsets[{}] is {}, not a non-negative integer", t.name, n_offsets_,
              describe(k));
      }
      if (n_offsets_ == 2) error(path_, "tensor '{}': data_offsets has more than 2 entries", t.name);
      (n_offsets_++ == 0 ? t.begin : t.end) = number;
      return true;
    }
    default:  // strict parsing reports anything after the top-level object as a parse error
      error(path_, "unexpected {} after the header object", describe(k));
  }
}

void HeaderReader::tensor_field(Kind k, json::string_t* text) {
  HeaderEntry& t = entry();
  switch (field_) {
    case Field::dtype:
      if (k != Kind::string) error(path_, "tensor '{}': dtype is {}, not a string", t.name, describe(k));
      t.dtype = std::move(*text);
      return;
    case Field::shape:
      if (k != Kind::array) error(path_, "tensor '{}': shape is {}, not an array", t.name, describe(k));
      ctx_ = Ctx::shape;
      return;
    case Field::offsets:
      if (k != Kind::array) error(path_, "tensor '{}': data_offsets is {}, not an array", t.name, describe(k));
      n_offsets_ = 0;
      ctx_ = Ctx::offsets;
      return;
    case Field::other:
      if (k == Kind::object || k == Kind::array) enter_ignored();
      return;
  }
}

bool HeaderReader::key(json::string_t& k) {
  if (ignored_depth_ > 0) return true;
  if (ctx_ == Ctx::tensor) {
    bool* seen = nullptr;
    if (k == "dtype") {
      field_ = Field::dtype, seen = &has_dtype_;
    } else if (k == "shape") {
      field_ = Field::shape, seen = &has_shape_;
    } else if (k == "data_offsets") {
      field_ = Field::offsets, seen = &has_offsets_;
    } else {
      field_ = Field::other;
    }
    if (seen != nullptr && *seen) error(path_, "tensor '{}': field '{}' appears twice", entry().name, k);
    if (seen != nullptr) *seen = true;
  } else if (ctx_ == Ctx::top && k == kMetadataKey) {
    if (seen_metadata_) error(path_, "__metadata__ appears twice");
    seen_metadata_ = true;
  }
  key_ = std::move(k);
  return true;
}

bool HeaderReader::end_object() {
  if (ignored_depth_ > 0) {
    --ignored_depth_;
    return true;
  }
  if (ctx_ == Ctx::tensor) {
    const HeaderEntry& t = entry();
    if (!has_dtype_) error(path_, "tensor '{}' has no dtype", t.name);
    if (!has_shape_) error(path_, "tensor '{}' has no shape", t.name);
    if (!has_offsets_) error(path_, "tensor '{}' has no data_offsets", t.name);
  }
  ctx_ = ctx_ == Ctx::top ? Ctx::done : Ctx::top;  // metadata and tensor objects sit in the top one
  return true;
}

bool HeaderReader::end_array() {
  if (ignored_depth_ > 0) {
    --ignored_depth_;
    return true;
  }
  if (ctx_ == Ctx::offsets && n_offsets_ != 2) {
    error(path_, "tensor '{}': data_offsets has {} entries, expected 2", entry().name, n_offsets_);
  }
  ctx_ = Ctx::tensor;  // shape and data_offsets are the only arrays read
  return true;
}

}  // namespace

Header parse_header(std::string_view text, const std::string& path) {
  Header h;
  HeaderReader reader(path, &h);
  // Strict: only whitespace may follow the object (writers pad the header with spaces).
  json::sax_parse(text.data(), text.data() + text.size(), &reader);
  std::sort(h.metadata.begin(), h.metadata.end());
  const auto dup = std::adjacent_find(h.metadata.begin(), h.metadata.end(),
                                      [](const auto& a, const auto& b) { return a.first == b.first; });
  if (dup != h.metadata.end()) error(path, "__metadata__ key '{}' appears twice", dup->first);
  return h;
}

std::vector<std::pair<std::string, std::string>> parse_weight_map(std::string_view text, const std::string& path) {
  std::vector<std::set<std::string>> open_objects;  // keys seen so far in each object being parsed
  const json::parser_callback_t check = [&](int depth, json::parse_event_t event, json& parsed) {
    if (depth > kMaxNesting) error(path, "nests deeper than {} levels", kMaxNesting);
    if (event == json::parse_event_t::object_start) {
      open_objects.emplace_back();
    } else if (event == json::parse_event_t::object_end) {
      open_objects.pop_back();
    } else if (event == json::parse_event_t::key && !open_objects.back().insert(parsed.get<std::string>()).second) {
      error(path, "key '{}' appears twice", parsed.get<std::string>());
    }
    return true;
  };
  json doc;
  try {
    doc = json::parse(text.data(), text.data() + text.size(), check);
  } catch (const json::exception& e) {
    error(path, "not valid JSON: {}", e.what());
  }
  if (!doc.is_object()) error(path, "is {}, not a JSON object", doc.type_name());
  const auto map = doc.find("weight_map");
  if (map == doc.end()) error(path, "has no \"weight_map\"");
  if (!map->is_object()) error(path, "weight_map is {}, not an object", map->type_name());
  std::vector<std::pair<std::string, std::string>> out;
  out.reserve(map->size());
  for (const auto& [tensor, file] : map->items()) {
    if (!file.is_string()) error(path, "weight_map '{}' is {}, not a file name", tensor, file.type_name());
    out.emplace_back(tensor, file.get<std::string>());
  }
  return out;  // nlohmann's object is a std::map: already sorted by tensor name
}

}  // namespace qilin::safetensors_json
