// A persistent thread pool. Threads are created once; each job wakes them,
// runs one function on every thread (the caller included) and waits.
//
// Work is split by rows: parallel_for(n, grain, fn) hands each thread one
// contiguous range, so a GEMV's output rows or a norm's tokens are divided
// without any per-op allocation or thread start.
#pragma once

#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

#include "core/function_ref.h"

namespace qilin {

class ThreadPool {
 public:
  // `n_threads` counts the calling thread: ThreadPool(1) runs everything inline.
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const noexcept { return n_threads_; }

  // Runs fn(thread_index, n_threads) on every thread and returns when all are done.
  // fn must not throw. Called from inside a job, it runs fn(0, 1) inline.
  void run(FunctionRef<void(int, int)> fn) noexcept;

  // Splits [0, n) into at most size() contiguous ranges whose boundaries are
  // multiples of `grain`, and calls fn(begin, end) for each non-empty range.
  template <class F>
  void parallel_for(int64_t n, int64_t grain, F&& fn) noexcept {
    if (n <= 0) return;
    if (grain < 1) grain = 1;
    const int64_t chunks = (n + grain - 1) / grain;
    if (n_threads_ == 1 || chunks == 1) {
      fn(int64_t{0}, n);
      return;
    }
    run([&](int t, int nt) {
      const int64_t per = chunks / nt, extra = chunks % nt;
      const int64_t c0 = t * per + (t < extra ? t : extra);
      const int64_t c1 = c0 + per + (t < extra ? 1 : 0);
      const int64_t b = c0 * grain, e = c1 * grain < n ? c1 * grain : n;
      if (b < e) fn(b, e);
    });
  }

  // Like parallel_for, but the threads claim `grain`-sized ranges from a shared
  // counter until none is left, so a thread that was preempted or streams from
  // slower memory does less of the work instead of holding the others at the
  // barrier. fn may be called several times per thread; ranges come in no fixed order.
  template <class F>
  void parallel_for_dynamic(int64_t n, int64_t grain, F&& fn) noexcept {
    if (n <= 0) return;
    if (grain < 1) grain = 1;
    const int64_t chunks = (n + grain - 1) / grain;
    if (n_threads_ == 1 || chunks == 1) {
      fn(int64_t{0}, n);
      return;
    }
    std::atomic<int64_t> next{0};
    run([&](int, int) {
      for (int64_t c = next.fetch_add(1, std::memory_order_relaxed); c < chunks;
           c = next.fetch_add(1, std::memory_order_relaxed)) {
        const int64_t b = c * grain, e = b + grain < n ? b + grain : n;
        fn(b, e);
      }
    });
  }

 private:
  void worker_loop(int index);

  int n_threads_;
  std::vector<std::thread> workers_;
  FunctionRef<void(int, int)>* job_ = nullptr;
  std::atomic<uint32_t> epoch_{0};  // bumped once per job; idle workers sleep on it (a futex word)
  std::atomic<int> sleepers_{0};    // workers asleep or about to sleep: only then is a wake-up syscall needed
  std::atomic<int> remaining_{0};   // workers still running the current job
  std::atomic<bool> stop_{false};

  void wake_workers() noexcept;
};

}  // namespace qilin
