// Weights held once: float weights copied into huge pages (MatmulWeight::make_resident,
// HugePageArena) and the file pages of copied weights released (Checkpoint::release_pages).
#include <catch2/catch.hpp>
#include <cstdint>
#include <cstring>
#include <vector>

#include "core/allocator.h"
#include "kernels/matmul.h"
#include "models/checkpoint.h"
#include "models/model.h"
#include "test_matmul_data.h"

using namespace qilin;

namespace {

const std::string kLlamaDir = std::string(QILIN_TEST_DATA_DIR) + "/models/llama";

std::vector<uint8_t> bytes_of(const TensorView& v) {
  const auto* p = static_cast<const uint8_t*>(v.data());
  return {p, p + v.nbytes()};
}

}  // namespace

TEST_CASE("HugePageArena: aligned, disjoint, zero-filled allocations, larger ones in chunks of their own",
          "[allocator]") {
  HugePageArena arena(1 << 20);
  std::vector<std::pair<uint8_t*, size_t>> blocks;
  for (size_t bytes : {size_t{1}, size_t{100}, size_t{4096}, size_t{3} << 20, size_t{700} << 10, size_t{65}}) {
    auto* p = static_cast<uint8_t*>(arena.allocate(bytes));
    CHECK(reinterpret_cast<uintptr_t>(p) % kAlignment == 0);
    CHECK(p[0] == 0);
    CHECK(p[bytes - 1] == 0);
    std::memset(p, 0xab, bytes);  // writable to the last byte (ASan/segfault otherwise)
    blocks.emplace_back(p, bytes);
  }
  for (size_t i = 0; i < blocks.size(); ++i) {
    for (size_t j = i + 1; j < blocks.size(); ++j) {
      const bool disjoint = blocks[i].first + blocks[i].second <= blocks[j].first ||
                            blocks[j].first + blocks[j].second <= blocks[i].first;
      CHECK(disjoint);
    }
  }
  CHECK(arena.allocated() >= (size_t{3} << 20) + (size_t{700} << 10));
}

TEST_CASE("make_resident: the weight moves into owned memory and every path gives the same product", "[matmul]") {
  test::IsaGuard guard;
  ThreadPool pool(2);
  HugePageArena arena;
  for (DType dtype : {DType::f32, DType::f16, DType::bf16}) {
    const Tensor stored = test::random_tensor(37, 70, dtype, test::Values::reals, 3);
    MatmulWeight mapped(stored.view());
    MatmulWeight resident(stored.view());
    resident.make_resident(arena, &pool);
    INFO(name_of(dtype));
    CHECK(resident.view().data() != stored.data());
    CHECK(resident.view().shape() == stored.view().shape());
    CHECK(resident.holds_copy());
    CHECK(!mapped.holds_copy());
    CHECK(resident.packed_bytes() == stored.view().nbytes());
    CHECK(std::memcmp(resident.view().data(), stored.data(), stored.view().nbytes()) == 0);
    for (cpu::Isa level : test::supported_levels()) {
      cpu::set_active_isa(level);
      for (int64_t m : {1, 5, 40}) {
        const Tensor x = test::random_tensor(m, 70, DType::f32, test::Values::reals, 9);
        Tensor a = Tensor::zeros({m, 37}, DType::f32), b = Tensor::zeros({m, 37}, DType::f32);
        matmul(x, mapped, a, pool);
        matmul(x, resident, b, pool);
        // Same kernel over the same bytes: bit-identical.
        CHECK(std::memcmp(a.data(), b.data(), a.view().nbytes()) == 0);
      }
    }
  }
  // Block formats are repacked by prepare() instead; make_resident leaves them be.
  const Tensor q = test::random_tensor(16, 64, DType::q8_0, test::Values::reals, 4);
  MatmulWeight quant(q.view());
  quant.make_resident(arena, &pool);
  CHECK(quant.view().data() == q.data());
}

TEST_CASE("Checkpoint::release_pages: a released weight still reads its values from the file", "[checkpoint]") {
  const Checkpoint ckpt = Checkpoint::open(kLlamaDir);
  const TensorView& w = ckpt.require("blk.0.ffn_up.weight");
  const std::vector<uint8_t> before = bytes_of(w);
  ckpt.release_pages(w);
  CHECK(bytes_of(w) == before);
  // A view that is not in the mapping is ignored (no madvise of foreign memory).
  std::vector<uint8_t> own(before);
  ckpt.release_pages(TensorView(own.data(), {static_cast<int64_t>(own.size())}, DType::i8));
  CHECK(own == before);
}

TEST_CASE("Model: resident and mmapped float weights give identical logits", "[model]") {
  ThreadPool pool(2);
  const std::vector<int32_t> tokens = {1, 5, 9, 2, 7};
  std::vector<std::vector<float>> logits;
  for (bool mmap : {false, true}) {
    LoadOptions options;
    options.threads = 2;
    options.context = 16;
    options.kv_type = DType::f32;
    options.mmap = mmap;
    const auto model = Model::load(kLlamaDir, options);
    const ForwardRequest request{0, tokens, false};
    const TensorView out = model->decoder().forward(std::span(&request, 1), model->cache(), model->pool());
    logits.emplace_back(out.data_as<float>(), out.data_as<float>() + out.numel());
  }
  CHECK(logits[0] == logits[1]);
}
