#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdint>
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

TEST_CASE("thread pool: parallel_for_dynamic covers every index exactly once, in ranges on grain boundaries",
          "[core][threads]") {
  for (int threads : {1, 2, 3, 8}) {
    ThreadPool pool(threads);
    for (int64_t n : {int64_t{0}, int64_t{1}, int64_t{7}, int64_t{33}, int64_t{4095}}) {
      for (int64_t grain : {int64_t{1}, int64_t{4}, int64_t{16}}) {
        std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
        std::atomic<int> misshapen{0};
        pool.parallel_for_dynamic(n, grain, [&](int64_t b, int64_t e) {
          // Pieces of whole grains: start on a grain boundary, end on one or at n, never empty.
          if (b % grain != 0 || (e % grain != 0 && e != n) || e <= b) misshapen.fetch_add(1);
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

TEST_CASE("thread pool: parallel_for_dynamic takes over a slow worker's region", "[core][threads]") {
  // The worker's first piece stalls; the caller must finish its own region and then take
  // the rest of the worker's from the back, not wait for the worker to get to it.
  ThreadPool pool(2);
  const std::thread::id caller = std::this_thread::get_id();
  constexpr int64_t n = 64;
  std::vector<std::atomic<int>> hits(n);
  std::atomic<int64_t> caller_top{-1};  // the highest unit the caller ran
  std::atomic<bool> stalled{false};
  pool.parallel_for_dynamic(n, 1, [&](int64_t b, int64_t e) {
    if (std::this_thread::get_id() == caller) {
      int64_t top = caller_top.load();
      while (e - 1 > top && !caller_top.compare_exchange_weak(top, e - 1)) {
      }
    } else if (!stalled.exchange(true)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    for (int64_t i = b; i < e; ++i) hits[static_cast<size_t>(i)].fetch_add(1);
  });
  for (int64_t i = 0; i < n; ++i) REQUIRE(hits[static_cast<size_t>(i)].load() == 1);
  // Whether the worker started or not, the last units (the back of its region) were the caller's.
  REQUIRE(caller_top.load() == n - 1);
}

TEST_CASE("thread pool: back-to-back dynamic jobs never mix up their units", "[core][threads]") {
  // Decode runs a few hundred of these per token; a worker that arrives late must claim
  // nothing of a job that has ended, and nothing of the next one under the old job's range.
  for (int threads : {2, 3}) {
    ThreadPool pool(threads);
    std::vector<std::atomic<int>> hits(97);
    int64_t bad = 0;
    for (int job = 0; job < 20000; ++job) {
      const int64_t n = 1 + job % 97;
      for (int64_t i = 0; i < n; ++i) hits[static_cast<size_t>(i)].store(0, std::memory_order_relaxed);
      pool.parallel_for_dynamic(n, 1 + job % 3, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) hits[static_cast<size_t>(i)].fetch_add(1);
      });
      for (int64_t i = 0; i < n; ++i) bad += hits[static_cast<size_t>(i)].load() != 1;
    }
    REQUIRE(bad == 0);
  }
}

TEST_CASE("thread pool: a prefetch hint never faults and never keeps a worker from the next job", "[core][threads]") {
  ThreadPool pool(2);
  // 64 GiB at an address nothing maps: prefetches of it are dropped, never fault; at the
  // rate they are dropped a worker that did not look for new jobs would miss the ones below.
  const ThreadPool::ByteRange unmapped[2] = {{reinterpret_cast<const void*>(uintptr_t{1} << 44), size_t{1} << 36},
                                             {nullptr, 4096}};
  pool.hint_next_dynamic(unmapped);
  pool.run([](int, int) {});  // the worker, idle after this job, starts on the hint
  const std::thread::id caller = std::this_thread::get_id();
  std::atomic<int> worker_units{0}, total{0};
  for (int job = 0; job < 50; ++job) {
    pool.parallel_for_dynamic(16, 1, [&](int64_t b, int64_t e) {
      std::this_thread::sleep_for(std::chrono::microseconds(200 * (e - b)));
      if (std::this_thread::get_id() != caller) worker_units.fetch_add(static_cast<int>(e - b));
      total.fetch_add(static_cast<int>(e - b));
    });
  }
  REQUIRE(total.load() == 50 * 16);
  REQUIRE(worker_units.load() > 0);
}
