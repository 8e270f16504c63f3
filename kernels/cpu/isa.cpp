#include "kernels/cpu/isa.h"

#include <atomic>
#include <cstdlib>

#include "core/error.h"

#if defined(__x86_64__)
#include <cpuid.h>
#endif
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace qilin::cpu {
namespace {

#if defined(__x86_64__)
uint64_t read_xcr0() {
  uint32_t eax, edx;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<uint64_t>(edx) << 32) | eax;
}

// Linux keeps AMX tile data disabled until a process asks for it.
bool request_amx_permission() {
#if defined(__linux__)
  constexpr int kArchReqXcompPerm = 0x1023;
  constexpr int kXfeatureXtiledata = 18;
  return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
#else
  return false;
#endif
}
#endif

CpuFeatures detect() {
  CpuFeatures f;
#if defined(__x86_64__)
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  const bool osxsave = (c >> 27) & 1;
  f.fma = (c >> 12) & 1;
  f.f16c = (c >> 29) & 1;
  const bool avx = (c >> 28) & 1;
  const uint64_t xcr0 = osxsave ? read_xcr0() : 0;
  f.os_avx = avx && (xcr0 & 0x6) == 0x6;
  f.os_avx512 = f.os_avx && (xcr0 & 0xe0) == 0xe0;
  const bool os_tiles = (xcr0 & 0x60000) == 0x60000;

  if (__get_cpuid_max(0, nullptr) >= 7) {
    __cpuid_count(7, 0, a, b, c, d);
    f.avx2 = (b >> 5) & 1;
    f.avx512f = (b >> 16) & 1;
    f.avx512dq = (b >> 17) & 1;
    f.avx512bw = (b >> 30) & 1;
    f.avx512vl = (b >> 31) & 1;
    f.avx512vnni = (c >> 11) & 1;
    f.amx_bf16 = (d >> 22) & 1;
    f.amx_tile = (d >> 24) & 1;
    f.amx_int8 = (d >> 25) & 1;
    __cpuid_count(7, 1, a, b, c, d);
    f.avx512bf16 = (a >> 5) & 1;
  }
  f.os_amx = f.amx_tile && os_tiles && request_amx_permission();
#endif
  return f;
}

Isa initial_isa() {
  if (const char* env = std::getenv("QILIN_ISA"); env != nullptr && *env != '\0') {
    Isa isa;
    if (!isa_from_name(env, &isa)) fail("isa", "QILIN_ISA={} is not one of ref, avx2, avx512, avx512_bf16, amx", env);
    if (!isa_supported(isa)) fail("isa", "QILIN_ISA={} is not supported by this CPU", env);
    return isa;
  }
  return best_isa();
}

std::atomic<int>& active_slot() {
  static std::atomic<int> slot{static_cast<int>(initial_isa())};
  return slot;
}

constexpr std::string_view kNames[kIsaCount] = {"ref", "avx2", "avx512", "avx512_bf16", "amx"};

}  // namespace

const CpuFeatures& cpu_features() noexcept {
  static const CpuFeatures features = detect();
  return features;
}

bool isa_supported(Isa isa) noexcept {
  const CpuFeatures& f = cpu_features();
  const bool avx2 = f.os_avx && f.avx2 && f.fma && f.f16c;
  const bool avx512 = avx2 && f.os_avx512 && f.avx512f && f.avx512bw && f.avx512vl && f.avx512dq;
  const bool avx512_bf16 = avx512 && f.avx512vnni && f.avx512bf16;
  const bool amx = avx512_bf16 && f.os_amx && f.amx_bf16 && f.amx_int8;
  switch (isa) {
    case Isa::ref:
      return true;
    case Isa::avx2:
      return avx2;
    case Isa::avx512:
      return avx512;
    case Isa::avx512_bf16:
      return avx512_bf16;
    case Isa::amx:
      return amx;
  }
  return false;
}

Isa best_isa() noexcept {
  for (int i = kIsaCount - 1; i > 0; --i)
    if (isa_supported(static_cast<Isa>(i))) return static_cast<Isa>(i);
  return Isa::ref;
}

Isa active_isa() { return static_cast<Isa>(active_slot().load(std::memory_order_relaxed)); }

void set_active_isa(Isa isa) {
  if (!isa_supported(isa)) fail("isa", "{} is not supported by this CPU", name_of(isa));
  active_slot().store(static_cast<int>(isa), std::memory_order_relaxed);
}

std::string_view name_of(Isa isa) noexcept { return kNames[static_cast<int>(isa)]; }

bool isa_from_name(std::string_view name, Isa* out) noexcept {
  for (int i = 0; i < kIsaCount; ++i) {
    if (kNames[i] == name) {
      *out = static_cast<Isa>(i);
      return true;
    }
  }
  return false;
}

}  // namespace qilin::cpu
