// Which x86 instruction sets this CPU (and its OS) supports, detected once,
// and which level the CPU kernels use now.
//
// Levels are cumulative; each kernel table starts from the level below and
// overrides what it does better, so a level need not implement everything.
//   ref          scalar C++, any x86-64 (the oracle in tests)
//   avx2         AVX2 + FMA + F16C                      (Haswell, Zen 1)
//   avx512       + AVX-512 F/BW/VL/DQ                   (Skylake-X)
//   avx512_bf16  + AVX-512 VNNI and BF16                (Cooper Lake, Sapphire Rapids, Zen 4)
//   amx          + AMX tiles, AMX-BF16, AMX-INT8        (Sapphire Rapids)
#pragma once

#include <cstdint>
#include <string_view>

namespace qilin::cpu {

enum class Isa : uint8_t { ref, avx2, avx512, avx512_bf16, amx };
inline constexpr int kIsaCount = 5;

struct CpuFeatures {
  bool avx2 = false, fma = false, f16c = false;
  bool avx512f = false, avx512bw = false, avx512vl = false, avx512dq = false;
  bool avx512vnni = false, avx512bf16 = false;
  bool amx_tile = false, amx_bf16 = false, amx_int8 = false;
  // The OS saves the register state: YMM (XCR0 bits 1-2), ZMM (5-7), AMX tiles
  // (17-18, and on Linux the per-process permission from arch_prctl).
  bool os_avx = false, os_avx512 = false, os_amx = false;
};

// Detected on first use (CPUID + XGETBV), then cached: the hardware does not change.
const CpuFeatures& cpu_features() noexcept;

bool isa_supported(Isa isa) noexcept;
Isa best_isa() noexcept;

// The level the kernels dispatch to. Starts at QILIN_ISA from the environment
// when set (e.g. QILIN_ISA=ref to prove the scalar path), else the best level.
Isa active_isa();
// Forces a level (tests, benchmarks); throws qilin::Error if this CPU lacks it.
void set_active_isa(Isa isa);

std::string_view name_of(Isa isa) noexcept;
bool isa_from_name(std::string_view name, Isa* out) noexcept;

}  // namespace qilin::cpu
