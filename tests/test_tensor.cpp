#include <catch2/catch.hpp>

#include "core/allocator.h"
#include "core/error.h"
#include "core/tensor.h"

using namespace qilin;

TEST_CASE("tensor: contiguous strides and row access", "[core]") {
  Tensor t = Tensor::zeros({2, 3, 8}, DType::f32);
  REQUIRE(t.numel() == 48);
  REQUIRE(t.view().rows() == 6);
  REQUIRE(t.view().stride_bytes(2) == 4);
  REQUIRE(t.view().stride_bytes(1) == 32);
  REQUIRE(t.view().stride_bytes(0) == 96);
  REQUIRE(t.view().is_contiguous());
  REQUIRE(reinterpret_cast<uintptr_t>(t.data()) % kAlignment == 0);
  REQUIRE(t.view().row<float>(5) == t.data_as<float>() + 40);
  TensorView s = t.view().slice_rows(2, 3);
  REQUIRE(s.shape() == Shape{3, 8});
  REQUIRE(s.data_as<float>() == t.data_as<float>() + 16);
}

TEST_CASE("tensor: block formats are addressed by rows of blocks", "[core]") {
  Tensor t = Tensor::empty({4, 64}, DType::q4_0);
  REQUIRE(t.view().row_size() == 2 * 18);
  REQUIRE(t.nbytes() == 4 * 2 * 18);
  REQUIRE_THROWS_AS(Tensor::empty({4, 33}, DType::q8_0), Error);
}

TEST_CASE("tensor: bad shapes throw with the op name", "[core]") {
  Tensor t = Tensor::empty({4, 8}, DType::f32);
  REQUIRE_THROWS_WITH(t.view().slice_rows(3, 2), Catch::Contains("[slice_rows]") && Catch::Contains("4x8"));
  REQUIRE_THROWS_WITH(t.view().reshape({3, 8}), Catch::Contains("[reshape]"));
  REQUIRE_THROWS_AS((Shape{1, 2, 3, 4, 5}), Error);
}

TEST_CASE("arena: bump allocation is aligned and bounded", "[core]") {
  Arena arena(1024);
  void* a = arena.allocate(3);
  void* b = arena.allocate(100);
  REQUIRE(reinterpret_cast<uintptr_t>(a) % kAlignment == 0);
  REQUIRE(reinterpret_cast<uintptr_t>(b) % kAlignment == 0);
  REQUIRE(arena.used() == 64 + 128);
  REQUIRE_THROWS_WITH(arena.allocate(2048), Catch::Contains("[arena]"));
  arena.reset();
  REQUIRE(arena.used() == 0);
  REQUIRE(arena.high_water() == 192);
}
