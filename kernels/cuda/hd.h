// QILIN_HD marks functions shared by CUDA kernels and host code: __host__ __device__
// under nvcc, plain inline C++ elsewhere (so host tests compile them with g++).
#pragma once

#if defined(__CUDACC__)
#define QILIN_HD __host__ __device__ __forceinline__
#else
#define QILIN_HD inline
#endif
