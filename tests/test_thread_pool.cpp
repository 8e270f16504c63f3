#include <atomic>
#include <catch2/catch.hpp>
#include <thread>
#include <vector>

#include "core/thread_pool.h"

using namespace qilin;

TEST_CASE("thread pool: parallel_for covers every index exactly once", "[core][threads]") {
  for (int threads : {1, 2, 3, 8}) {
    ThreadPool pool(threads);
    for (int64_t n : {int64_t{0}, int64_t{1}, int64_t{7}, int64_t{33}, int64_t{4095}}) {
      for (int64_t grain : {int64_t{1}, int64_t{4}, int64_t{16}}) {
        // Catch2 assertions are not thread-safe: workers only record, the main thread checks.
        std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
        std::atomic<int> misaligned{0};
        pool.parallel_for(n, grain, [&](int64_t b, int64_t e) {
          // Every range starts on a grain boundary and ends on one or at n.
          if (b % grain != 0 || (e % grain != 0 && e != n)) misaligned.fetch_add(1);
          for (int64_t i = b; i < e; ++i) hits[static_cast<size_t>(i)].fetch_add(1);
        });
        REQUIRE(misaligned.load() == 0);
        for (int64_t i = 0; i < n; ++i) REQUIRE(hits[static_cast<size_t>(i)].load() == 1);
      }
    }
  }
}

TEST_CASE("thread pool: parallel_for_dynamic covers every index exactly once, in grain-sized ranges",
          "[core][threads]") {
  for (int threads : {1, 2, 3, 8}) {
    ThreadPool pool(threads);
    for (int64_t n : {int64_t{0}, int64_t{1}, int64_t{7}, int64_t{33}, int64_t{4095}}) {
      for (int64_t grain : {int64_t{1}, int64_t{4}, int64_t{16}}) {
        std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
        std::atomic<int> misshapen{0};
        pool.parallel_for_dynamic(n, grain, [&](int64_t b, int64_t e) {
          // One chunk per call: starts on a grain boundary, a whole grain long unless it ends at n.
          if (b % grain != 0 || (e - b != grain && e != n) || e <= b) misshapen.fetch_add(1);
          for (int64_t i = b; i < e; ++i) hits[static_cast<size_t>(i)].fetch_add(1);
        });
        REQUIRE(misshapen.load() == 0);
        for (int64_t i = 0; i < n; ++i) REQUIRE(hits[static_cast<size_t>(i)].load() == 1);
      }
    }
  }
}

TEST_CASE("thread pool: run reaches every thread, the caller included", "[core][threads]") {
  ThreadPool pool(4);
  std::vector<std::thread::id> ids(4);
  std::atomic<int> calls{0}, wrong_count{0};
  for (int rep = 0; rep < 1000; ++rep) {  // many back-to-back jobs, as in decode
    pool.run([&](int t, int nt) {
      if (nt != 4) wrong_count.fetch_add(1);
      ids[static_cast<size_t>(t)] = std::this_thread::get_id();
      calls.fetch_add(1);
    });
  }
  REQUIRE(wrong_count.load() == 0);
  REQUIRE(calls.load() == 4000);
  REQUIRE(ids[0] == std::this_thread::get_id());
  for (size_t i = 1; i < ids.size(); ++i) REQUIRE(ids[i] != ids[0]);
}

TEST_CASE("thread pool: a nested parallel region runs inline", "[core][threads]") {
  ThreadPool pool(2);
  std::atomic<int64_t> sum{0};
  pool.parallel_for(4, 1, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      pool.parallel_for(10, 1, [&](int64_t b2, int64_t e2) { sum.fetch_add(e2 - b2); });
    }
  });
  REQUIRE(sum.load() == 40);
}

TEST_CASE("thread pool: workers sleep after idling and wake for the next job", "[core][threads]") {
  ThreadPool pool(2);
  std::atomic<int> calls{0};
  pool.run([&](int, int) { calls.fetch_add(1); });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));  // past the spin window: workers block on a futex
  pool.run([&](int, int) { calls.fetch_add(1); });
  REQUIRE(calls.load() == 4);
}
