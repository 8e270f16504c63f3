// Reference dequantize-row and quantize-row functions of the block formats.
//
// The quantizers reproduce ggml's reference quantizers bit for bit
// (quantize_row_*_ref), so files Qilin writes match llama.cpp's.
// `n` is a multiple of the format's block size.
#pragma once

#include <cstdint>

namespace qilin {

void dequantize_row_q8_0(const void* src, float* dst, int64_t n);
void dequantize_row_q4_0(const void* src, float* dst, int64_t n);
void dequantize_row_q4_1(const void* src, float* dst, int64_t n);
void dequantize_row_q4_k(const void* src, float* dst, int64_t n);
void dequantize_row_q6_k(const void* src, float* dst, int64_t n);

void quantize_row_q8_0(const float* src, void* dst, int64_t n);
void quantize_row_q4_0(const float* src, void* dst, int64_t n);
void quantize_row_q4_1(const float* src, void* dst, int64_t n);
void quantize_row_q4_k(const float* src, void* dst, int64_t n);
void quantize_row_q6_k(const float* src, void* dst, int64_t n);

}  // namespace qilin
