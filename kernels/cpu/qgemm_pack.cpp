// Builds the interleaved layout of kernels/cpu/qgemm_pack.h from stored GGUF rows.
// Scalar and run once per weight, so it favours plainness over speed.
#include "kernels/cpu/qgemm_pack.h"

#include <cstring>

#include "kernels/cpu/qblock_decode.h"

namespace qilin::cpu {
namespace {

// The 16 rows of one group around block b, unsigned quants (zero for padding rows):
// the plain way, kept for Q6_K's split bits.
struct GroupBlock {
  uint8_t q[kPackRows][32];
};

void load_group_block(QFormat f, const char* w, int64_t w_stride, int64_t r0, int64_t n, int64_t b, GroupBlock& g) {
  std::memset(&g, 0, sizeof g);
  for (int r = 0; r < kPackRows && r0 + r < n; ++r) decode_quants(f, w + (r0 + r) * w_stride, b, g.q[r]);
}

void put_f16(uint8_t* dst, int r, uint16_t v) { std::memcpy(dst + 2 * r, &v, 2); }

// 4 nibble vectors: quad j low, quad j + 4 high (only the low 4 bits of each quant).
void write_nibbles(const GroupBlock& g, uint8_t* dst) {
  for (int j = 0; j < 4; ++j)
    for (int r = 0; r < kPackRows; ++r)
      for (int t = 0; t < 4; ++t) {
        const int lo = g.q[r][4 * j + t] & 0x0f, hi = g.q[r][4 * (j + 4) + t] & 0x0f;
        dst[kQuadBytes * j + 4 * r + t] = static_cast<uint8_t>(lo | (hi << 4));
      }
}

// Q6_K's high 2-bit pairs: H0 holds quads 0, 4, 1, 5 (bits 0-1, 2-3, 4-5, 6-7), H1 quads 2, 6, 3, 7.
void write_high_pairs(const GroupBlock& g, uint8_t* dst) {
  constexpr int kQuads[2][4] = {{0, 4, 1, 5}, {2, 6, 3, 7}};
  for (int h = 0; h < 2; ++h)
    for (int r = 0; r < kPackRows; ++r)
      for (int t = 0; t < 4; ++t) {
        int byte = 0;
        for (int s = 0; s < 4; ++s) byte |= (g.q[r][4 * kQuads[h][s] + t] >> 4) << (2 * s);
        dst[kQuadBytes * h + 4 * r + t] = static_cast<uint8_t>(byte);
      }
}

// Quad j of rows r0.. of a 32-element format: 4 bytes of each row at `src(r) + 4j`.
// Q4_0/Q4_1 store element e and e + 16 in the low and high nibbles of byte e, so
// their stored bytes already are nibble vectors (quad j low, quad j + 4 high).
template <class Src>
void copy_quads(int rows, int quads, Src src, uint32_t flip, uint8_t* dst) {
  for (int r = 0; r < rows; ++r) {
    const uint8_t* q = src(r);
    for (int j = 0; j < quads; ++j) {
      uint32_t v;
      std::memcpy(&v, q + 4 * j, 4);
      v ^= flip;
      std::memcpy(dst + kQuadBytes * j + 4 * r, &v, 4);
    }
  }
}

void pack_group(QFormat f, const char* w, int64_t w_stride, int64_t n, int64_t k, int64_t group, uint8_t* dst) {
  const int64_t r0 = group * kPackRows;
  const int rows = static_cast<int>(n - r0 < kPackRows ? n - r0 : kPackRows);
  const int64_t unit_bytes = qpack_unit_bytes(f);
  std::memset(dst, 0, static_cast<size_t>(qpack_group_bytes(f, k)));
  auto row = [&](int r) { return w + (r0 + r) * w_stride; };
  GroupBlock g;
  for (int64_t u = 0; u < k / qpack_unit_elements(f); ++u) {
    uint8_t* unit = dst + u * unit_bytes;
    switch (f) {
      case QFormat::q8_0: {
        for (int r = 0; r < rows; ++r)
          put_f16(unit + qpack::kScales, r, reinterpret_cast<const BlockQ8_0*>(row(r))[u].d);
        auto src = [&](int r) {
          return reinterpret_cast<const uint8_t*>(reinterpret_cast<const BlockQ8_0*>(row(r))[u].qs);
        };
        copy_quads(rows, 8, src, 0x80808080u, unit + qpack::kQ8Quants);  // int8 -> u8 = int8 + 128
        for (int j = 0; j < 8; ++j)  // padding rows: 128 stands for 0 (their scale is 0 anyway)
          for (int r = rows; r < kPackRows; ++r) std::memset(unit + qpack::kQ8Quants + kQuadBytes * j + 4 * r, 0x80, 4);
        break;
      }
      case QFormat::q4_0: {
        for (int r = 0; r < rows; ++r)
          put_f16(unit + qpack::kScales, r, reinterpret_cast<const BlockQ4_0*>(row(r))[u].d);
        copy_quads(
            rows, 4, [&](int r) { return reinterpret_cast<const BlockQ4_0*>(row(r))[u].qs; }, 0,
            unit + qpack::kQ4_0Quants);
        break;
      }
      case QFormat::q4_1: {
        for (int r = 0; r < rows; ++r) {
          const BlockQ4_1& blk = reinterpret_cast<const BlockQ4_1*>(row(r))[u];
          put_f16(unit + qpack::kScales, r, blk.d);
          put_f16(unit + qpack::kMins, r, blk.m);
        }
        copy_quads(
            rows, 4, [&](int r) { return reinterpret_cast<const BlockQ4_1*>(row(r))[u].qs; }, 0,
            unit + qpack::kQ4_1Quants);
        break;
      }
      case QFormat::q4_k: {
        for (int r = 0; r < rows; ++r) {
          const BlockQ4_K& blk = reinterpret_cast<const BlockQ4_K*>(row(r))[u];
          put_f16(unit + qpack::kScales, r, blk.d);
          put_f16(unit + qpack::kMins, r, blk.dmin);
          for (int s = 0; s < 8; ++s) {
            q4_k_scale_min(s, blk.scales, unit + qpack::kQ4KSc + kPackRows * s + r,
                           unit + qpack::kQ4KM + kPackRows * s + r);
          }
        }
        // Sub-block s is the low (s even) or high nibbles of bytes 32·(s/2) .. +31.
        for (int s = 0; s < 8; ++s) {
          uint8_t* q = unit + qpack::kQ4KQuants + 256 * s;
          for (int r = 0; r < rows; ++r) {
            const uint8_t* qs = reinterpret_cast<const BlockQ4_K*>(row(r))[u].qs + 32 * (s / 2);
            for (int j = 0; j < 4; ++j)
              for (int t = 0; t < 4; ++t) {
                const int lo = (qs[4 * j + t] >> (4 * (s % 2))) & 0x0f;
                const int hi = (qs[16 + 4 * j + t] >> (4 * (s % 2))) & 0x0f;
                q[kQuadBytes * j + 4 * r + t] = static_cast<uint8_t>(lo | (hi << 4));
              }
          }
        }
        break;
      }
      case QFormat::q6_k: {
        for (int r = 0; r < rows; ++r) {
          const BlockQ6_K& blk = reinterpret_cast<const BlockQ6_K*>(row(r))[u];
          put_f16(unit + qpack::kScales, r, blk.d);
          for (int j = 0; j < 16; ++j) unit[qpack::kQ6KSc + kPackRows * j + r] = static_cast<uint8_t>(blk.scales[j]);
        }
        for (int s = 0; s < 8; ++s) {
          load_group_block(f, w, w_stride, r0, n, u * 8 + s, g);
          uint8_t* blk = unit + qpack::kQ6KBlocks + qpack::kQ6KBlockBytes * s;
          write_nibbles(g, blk);
          write_high_pairs(g, blk + 4 * kQuadBytes);
        }
        break;
      }
    }
  }
}

}  // namespace

void qpack_groups(QFormat f, const void* w, int64_t w_stride, int64_t n, int64_t k, int64_t group_begin,
                  int64_t group_end, void* dst) noexcept {
  const int64_t group_bytes = qpack_group_bytes(f, k);
  for (int64_t g = group_begin; g < group_end; ++g) {
    pack_group(f, static_cast<const char*>(w), w_stride, n, k, g, static_cast<uint8_t*>(dst) + g * group_bytes);
  }
}

}  // namespace qilin::cpu
