// Internal: how GGUF scalars sit in the file (little-endian, packed), shared by
// the GGUF value, reader and writer code. Not part of the public API.
#pragma once

#include <cstdint>
#include <cstring>

#include "core/gguf.h"

namespace qilin::gguf_wire {

inline constexpr uint32_t kMagic = 0x46554747;  // "GGUF" read as a little-endian uint32

// Bytes of one scalar of type t; 0 for string, array and unknown types.
inline size_t scalar_size(GgufType t) noexcept {
  switch (t) {
    case GgufType::u8:
    case GgufType::i8:
    case GgufType::boolean:
      return 1;
    case GgufType::u16:
    case GgufType::i16:
      return 2;
    case GgufType::u32:
    case GgufType::i32:
    case GgufType::f32:
      return 4;
    case GgufType::u64:
    case GgufType::i64:
    case GgufType::f64:
      return 8;
    default:
      return 0;
  }
}

inline bool is_integer_type(GgufType t) noexcept {
  return scalar_size(t) != 0 && t != GgufType::boolean && t != GgufType::f32 && t != GgufType::f64;
}

// Byte-by-byte so that unaligned positions and big-endian hosts both work.
inline uint64_t get_le(const uint8_t* p, size_t n) noexcept {
  uint64_t v = 0;
  for (size_t i = 0; i < n; ++i) v |= static_cast<uint64_t>(p[i]) << (8 * i);
  return v;
}

template <class T>
inline void put_le(uint8_t* p, T v) noexcept {
  for (size_t i = 0; i < sizeof(T); ++i) p[i] = static_cast<uint8_t>(static_cast<uint64_t>(v) >> (8 * i));
}

// Decodes a scalar of type t from scalar_size(t) bytes at p.
inline GgufValue get_scalar(GgufType t, const uint8_t* p) {
  const uint64_t raw = get_le(p, scalar_size(t));
  switch (t) {
    case GgufType::u8:
      return GgufValue::u8(static_cast<uint8_t>(raw));
    case GgufType::i8:
      return GgufValue::i8(static_cast<int8_t>(raw));
    case GgufType::u16:
      return GgufValue::u16(static_cast<uint16_t>(raw));
    case GgufType::i16:
      return GgufValue::i16(static_cast<int16_t>(raw));
    case GgufType::u32:
      return GgufValue::u32(static_cast<uint32_t>(raw));
    case GgufType::i32:
      return GgufValue::i32(static_cast<int32_t>(raw));
    case GgufType::u64:
      return GgufValue::u64(raw);
    case GgufType::i64:
      return GgufValue::i64(static_cast<int64_t>(raw));
    case GgufType::boolean:
      return GgufValue::boolean(raw != 0);
    case GgufType::f32: {
      const auto bits = static_cast<uint32_t>(raw);
      float f;
      std::memcpy(&f, &bits, 4);
      return GgufValue::f32(f);
    }
    default: {  // f64
      double d;
      std::memcpy(&d, &raw, 8);
      return GgufValue::f64(d);
    }
  }
}

// Encodes a scalar value into scalar_size(v.type()) bytes at p.
inline void put_scalar(const GgufValue& v, uint8_t* p) {
  switch (v.type()) {
    case GgufType::f32: {
      const auto f = static_cast<float>(*v.as_double());
      uint32_t bits;
      std::memcpy(&bits, &f, 4);
      put_le(p, bits);
      return;
    }
    case GgufType::f64: {
      const double d = *v.as_double();
      uint64_t bits;
      std::memcpy(&bits, &d, 8);
      put_le(p, bits);
      return;
    }
    case GgufType::boolean:
      p[0] = *v.as_bool() ? 1 : 0;
      return;
    default: {
      const uint64_t bits = v.type() == GgufType::u64 ? *v.as_uint() : static_cast<uint64_t>(*v.as_int());
      for (size_t i = 0; i < scalar_size(v.type()); ++i) p[i] = static_cast<uint8_t>(bits >> (8 * i));
    }
  }
}

}  // namespace qilin::gguf_wire
