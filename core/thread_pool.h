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
  // counter until none is left, and the caller never waits for a worker that has
  // not started: on a busy machine a worker that is not scheduled simply takes no
  // part, and the caller does its share (decode's GEMVs, a few hundred per token,
  // would otherwise each wait for the other thread's next time slice). A worker
  // that did claim a range is waited for. fn(begin, end) may be called several
  // times per thread, in no fixed order; it must not throw.
  template <class F>
  void parallel_for_dynamic(int64_t n, int64_t grain, F&& fn) noexcept {
    if (n <= 0) return;
    if (grain < 1) grain = 1;
    if (n_threads_ == 1 || n <= grain || t_in_job_flag()) {
      fn(int64_t{0}, n);
      return;
    }
    run_chunks(n, grain, [&](int64_t b, int64_t e) { fn(b, e); });
  }

 private:
  // One parallel_for_dynamic call, in one of two slots (a late worker may still read
  // the previous call's slot while the next call fills the other).
  struct ChunkJob {
    FunctionRef<void(int64_t, int64_t)>* fn = nullptr;
    int64_t n = 0, grain = 1, count = 0;
  };
  static bool t_in_job_flag() noexcept;
  void run_chunks(int64_t n, int64_t grain, FunctionRef<void(int64_t, int64_t)> fn) noexcept;
  void help_with_chunks() noexcept;
  void publish(bool chunk_job) noexcept;
  void worker_loop(int index);

  int n_threads_;
  std::vector<std::thread> workers_;
  FunctionRef<void(int, int)>* job_ = nullptr;
  std::atomic<uint32_t> epoch_{0};  // bumped once per job; idle workers sleep on it (a futex word)
  std::atomic<int> sleepers_{0};    // workers asleep or about to sleep: only then is a wake-up syscall needed
  std::atomic<int> remaining_{0};   // workers still running the current job
  std::atomic<bool> stop_{false};
  // Chunk jobs: epoch_ is odd while one is published (even for run() jobs).
  // chunk_state_ = (job id << 32) | next unclaimed chunk; claims are CASes on it, so a
  // worker can claim only in the job it read the parameters of.
  ChunkJob chunk_jobs_[2];
  uint32_t chunk_id_ = 0;  // the caller's count of chunk jobs
  std::atomic<uint64_t> chunk_state_{0};
  std::atomic<int> chunk_helpers_{0};  // workers inside help_with_chunks()
};

}  // namespace qilin
