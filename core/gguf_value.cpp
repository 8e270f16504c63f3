// GgufValue: construction, typed access and comparison of metadata values.
#include <cstring>
#include <limits>

#include "core/error.h"
#include "core/gguf.h"
#include "core/gguf_wire.h"

namespace qilin {

std::string_view name_of(GgufType t) noexcept {
  static constexpr std::string_view kNames[] = {"u8",   "i8",     "u16",   "i16", "u32", "i32", "f32",
                                                "bool", "string", "array", "u64", "i64", "f64"};
  const auto i = static_cast<uint32_t>(t);
  return i < std::size(kNames) ? kNames[i] : std::string_view("?");
}

GgufValue GgufValue::integer(GgufType t, uint64_t bits) {
  GgufValue v;
  v.type_ = t;
  v.bits_ = bits;
  return v;
}

GgufValue GgufValue::f32(float x) {
  GgufValue v;
  v.type_ = GgufType::f32;
  v.f_ = x;
  return v;
}

GgufValue GgufValue::f64(double x) {
  GgufValue v;
  v.type_ = GgufType::f64;
  v.f_ = x;
  return v;
}

GgufValue GgufValue::string(std::string s) {
  GgufValue v;
  v.type_ = GgufType::string;
  v.str_ = std::move(s);
  return v;
}

GgufValue GgufValue::array(GgufType elem, std::span<const GgufValue> items) {
  const size_t width = gguf_wire::scalar_size(elem);
  if (width == 0) fail("gguf", "array(): element type {} is not a scalar type", name_of(elem));
  GgufValue v;
  v.type_ = GgufType::array;
  v.elem_ = elem;
  v.count_ = items.size();
  v.packed_.resize(items.size() * width);
  for (size_t i = 0; i < items.size(); ++i) {
    if (items[i].type_ != elem) {
      fail("gguf", "array(): element {} is {}, expected {}", i, name_of(items[i].type_), name_of(elem));
    }
    gguf_wire::put_scalar(items[i], v.packed_.data() + i * width);
  }
  return v;
}

GgufValue GgufValue::packed_array(GgufType elem, std::vector<uint8_t> packed) {
  const size_t width = gguf_wire::scalar_size(elem);
  if (width == 0) fail("gguf", "packed_array(): element type {} is not a scalar type", name_of(elem));
  if (packed.size() % width != 0)
    fail("gguf", "packed_array(): {} bytes is not a whole number of {}", packed.size(), name_of(elem));
  if (elem == GgufType::boolean) {  // canonical 0/1, so that equal arrays compare equal
    for (uint8_t& b : packed) b = b != 0;
  }
  GgufValue v;
  v.type_ = GgufType::array;
  v.elem_ = elem;
  v.count_ = packed.size() / width;
  v.packed_ = std::move(packed);
  return v;
}

GgufValue GgufValue::string_array(std::vector<std::string> items) {
  GgufValue v;
  v.type_ = GgufType::array;
  v.elem_ = GgufType::string;
  v.count_ = items.size();
  v.strings_ = std::move(items);
  return v;
}

GgufValue GgufValue::array_of_arrays(std::vector<GgufValue> items) {
  for (size_t i = 0; i < items.size(); ++i) {
    if (items[i].type_ != GgufType::array) {
      fail("gguf", "array_of_arrays(): element {} is {}, not an array", i, name_of(items[i].type_));
    }
  }
  GgufValue v;
  v.type_ = GgufType::array;
  v.elem_ = GgufType::array;
  v.count_ = items.size();
  v.arrays_ = std::move(items);
  return v;
}

GgufValue GgufValue::i32_array(std::span<const int32_t> items) {
  GgufValue v;
  v.type_ = GgufType::array;
  v.elem_ = GgufType::i32;
  v.count_ = items.size();
  v.packed_.resize(items.size() * 4);
  for (size_t i = 0; i < items.size(); ++i)
    gguf_wire::put_le(v.packed_.data() + 4 * i, static_cast<uint32_t>(items[i]));
  return v;
}

GgufValue GgufValue::f32_array(std::span<const float> items) {
  GgufValue v;
  v.type_ = GgufType::array;
  v.elem_ = GgufType::f32;
  v.count_ = items.size();
  v.packed_.resize(items.size() * 4);
  for (size_t i = 0; i < items.size(); ++i) {
    uint32_t bits;
    std::memcpy(&bits, &items[i], 4);
    gguf_wire::put_le(v.packed_.data() + 4 * i, bits);
  }
  return v;
}

bool GgufValue::is_integer() const noexcept { return gguf_wire::is_integer_type(type_); }
std::optional<int64_t> GgufValue::as_int() const noexcept {
  if (!is_integer()) return std::nullopt;
  if (type_ == GgufType::u64 && bits_ > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    return std::nullopt;
  }
  return static_cast<int64_t>(bits_);
}

std::optional<uint64_t> GgufValue::as_uint() const noexcept {
  if (!is_integer()) return std::nullopt;
  if (type_ != GgufType::u64 && static_cast<int64_t>(bits_) < 0) return std::nullopt;
  return bits_;
}

std::optional<double> GgufValue::as_double() const noexcept {
  if (is_float()) return f_;
  if (type_ == GgufType::u64) return static_cast<double>(bits_);
  if (is_integer()) return static_cast<double>(static_cast<int64_t>(bits_));
  return std::nullopt;
}

std::optional<bool> GgufValue::as_bool() const noexcept {
  if (type_ != GgufType::boolean) return std::nullopt;
  return bits_ != 0;
}

GgufValue GgufValue::at(size_t i) const {
  if (type_ != GgufType::array) fail("gguf", "at({}) on a {} value", i, name_of(type_));
  if (i >= count_) fail("gguf", "index {} out of range for an array of {}", i, count_);
  if (elem_ == GgufType::string) return string(strings_[i]);
  if (elem_ == GgufType::array) return arrays_[i];
  const size_t width = gguf_wire::scalar_size(elem_);
  return gguf_wire::get_scalar(elem_, packed_.data() + i * width);
}

const std::vector<std::string>* GgufValue::as_string_array() const noexcept {
  return type_ == GgufType::array && elem_ == GgufType::string ? &strings_ : nullptr;
}

const std::vector<GgufValue>* GgufValue::as_array_of_arrays() const noexcept {
  return type_ == GgufType::array && elem_ == GgufType::array ? &arrays_ : nullptr;
}

std::optional<std::vector<int64_t>> GgufValue::as_int_array() const {
  if (type_ != GgufType::array || !gguf_wire::is_integer_type(elem_)) return std::nullopt;
  std::vector<int64_t> out(count_);
  const size_t width = gguf_wire::scalar_size(elem_);
  for (size_t i = 0; i < count_; ++i) {
    const std::optional<int64_t> x = gguf_wire::get_scalar(elem_, packed_.data() + i * width).as_int();
    if (!x) return std::nullopt;  // a u64 above INT64_MAX
    out[i] = *x;
  }
  return out;
}

std::optional<std::vector<float>> GgufValue::as_float_array() const {
  if (type_ != GgufType::array || elem_ == GgufType::string || elem_ == GgufType::array || elem_ == GgufType::boolean) {
    return std::nullopt;
  }
  std::vector<float> out(count_);
  const size_t width = gguf_wire::scalar_size(elem_);
  for (size_t i = 0; i < count_; ++i) {
    out[i] = static_cast<float>(*gguf_wire::get_scalar(elem_, packed_.data() + i * width).as_double());
  }
  return out;
}

std::string GgufValue::str() const {
  switch (type_) {
    case GgufType::string:
      return str_.size() <= 40 ? fmt::format("string \"{}\"", str_) : fmt::format("string[{}]", str_.size());
    case GgufType::array:
      return fmt::format("array<{}>[{}]", name_of(elem_), count_);
    case GgufType::boolean:
      return bits_ ? "bool true" : "bool false";
    case GgufType::f32:
    case GgufType::f64:
      return fmt::format("{} {}", name_of(type_), f_);
    case GgufType::u64:
      return fmt::format("u64 {}", bits_);
    default:
      return fmt::format("{} {}", name_of(type_), static_cast<int64_t>(bits_));
  }
}

bool GgufValue::operator==(const GgufValue& o) const {
  if (type_ != o.type_) return false;
  switch (type_) {
    case GgufType::string:
      return str_ == o.str_;
    case GgufType::array:
      return elem_ == o.elem_ && count_ == o.count_ && packed_ == o.packed_ && strings_ == o.strings_ &&
             arrays_ == o.arrays_;
    case GgufType::f32:
    case GgufType::f64:
      return std::memcmp(&f_, &o.f_, sizeof f_) == 0;  // bitwise: NaN == NaN, -0 != +0
    default:
      return bits_ == o.bits_;
  }
}

}  // namespace qilin
