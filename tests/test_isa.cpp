#include <catch2/catch.hpp>
#include <cstdlib>
#include <string>

#include "core/error.h"
#include "kernels/cpu/isa.h"
#include "kernels/cuda/device.h"
#include "skip.h"

using namespace qilin;

TEST_CASE("isa: levels are cumulative and the best one is active by default", "[isa]") {
  REQUIRE(cpu::isa_supported(cpu::Isa::ref));
  for (int i = 1; i < cpu::kIsaCount; ++i) {
    // A level implies every level below it.
    if (cpu::isa_supported(static_cast<cpu::Isa>(i))) REQUIRE(cpu::isa_supported(static_cast<cpu::Isa>(i - 1)));
  }
  if (std::getenv("QILIN_ISA") == nullptr) REQUIRE(cpu::active_isa() == cpu::best_isa());
}

TEST_CASE("isa: names round-trip and unsupported levels are refused", "[isa]") {
  for (int i = 0; i < cpu::kIsaCount; ++i) {
    cpu::Isa isa;
    REQUIRE(cpu::isa_from_name(cpu::name_of(static_cast<cpu::Isa>(i)), &isa));
    REQUIRE(isa == static_cast<cpu::Isa>(i));
  }
  cpu::Isa isa;
  REQUIRE_FALSE(cpu::isa_from_name("sse9", &isa));
  const cpu::Isa before = cpu::active_isa();
  for (int i = 0; i < cpu::kIsaCount; ++i) {
    const auto level = static_cast<cpu::Isa>(i);
    if (cpu::isa_supported(level)) {
      cpu::set_active_isa(level);
      REQUIRE(cpu::active_isa() == level);
    } else {
      REQUIRE_THROWS_WITH(cpu::set_active_isa(level), Catch::Contains("not supported"));
    }
  }
  cpu::set_active_isa(before);
}

TEST_CASE("isa: detection matches the CPU the test was told it runs on", "[isa]") {
  // The no-AVX2 run (qemu with an SSE4.2-only CPU model) sets QILIN_EXPECT_ISA=ref:
  // detection must then find no AVX2, so every kernel takes the scalar path.
  const char* expect = std::getenv("QILIN_EXPECT_ISA");
  if (expect == nullptr) {
    SUCCEED("QILIN_EXPECT_ISA not set: nothing to compare");
    return;
  }
  INFO("best_isa() = " << std::string(cpu::name_of(cpu::best_isa())));
  REQUIRE(cpu::name_of(cpu::best_isa()) == std::string(expect));
}

TEST_CASE("cuda: device query answers with or without a GPU", "[cuda]") {
  const auto devices = cuda::devices();
  if (devices.empty()) {
    REQUIRE_FALSE(cuda::unavailable_reason().empty());
    test::skip("no CUDA device: " + cuda::unavailable_reason());
  }
  for (const auto& d : devices) {
    REQUIRE(d.sm_major >= 7);
    REQUIRE(d.total_bytes > 0);
  }
}
