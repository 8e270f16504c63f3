// A persistent thread pool. Threads are created once; each job wakes them,
// runs one function on every thread (the caller included) and waits.
//
// Work is split by rows: parallel_for(n, grain, fn) hands each thread one
// contiguous range, so a GEMV's output rows or a norm's tokens are divided
// without any per-op allocation or thread start.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
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
      const int64_t c0 = split_point(chunks, t, nt), c1 = split_point(chunks, t + 1, nt);
      const int64_t b = c0 * grain, e = c1 * grain < n ? c1 * grain : n;
      if (b < e) fn(b, e);
    });
  }

  // Like parallel_for, but balanced at run time, for decode's GEMVs (a few hundred per
  // token, each a few microseconds). [0, n) is cut into grain-sized units and every
  // thread gets one contiguous region of them, as in parallel_for. A thread claims its
  // own region from the front in shrinking pieces (seven eighths of what is left each
  // time), so it reads the weight as a few long streams; once its region is done it
  // takes half of what is left of another thread's region, from the back. So the
  // threads end within about a piece of each other however unevenly they run, and the
  // caller never waits for a worker that has not started: on a busy machine an
  // unscheduled worker's region is taken by the others. A thread that did claim a
  // piece is waited for. fn(begin, end) gets ranges whose ends are multiples of
  // `grain` (or n), may be called several times per thread, in no fixed order, and
  // must not throw.
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

  // A hint for decode: the next parallel_for_dynamic call will read these byte ranges,
  // taken in order as one sequence and split over the threads like its units. A worker
  // idle between jobs, and the caller while it waits for the workers at the end of a
  // job, pull the part they will own (their share of the sequence) into L2, so decode's
  // weight stream keeps going while the caller runs the serial ops between GEMVs.
  // Replaces the previous hint; at most kMaxHintRanges ranges are used. Only the
  // calling thread may give hints. Nothing is read through the pointers (a prefetch
  // cannot fault), so a stale hint costs bandwidth only.
  struct ByteRange {
    const void* data = nullptr;
    size_t bytes = 0;
  };
  static constexpr int kMaxHintRanges = 4;
  void hint_next_dynamic(std::span<const ByteRange> ranges) noexcept;

 private:
  // Where thread t's share of `count` items starts when they are split over nt threads
  // as evenly as whole items allow (the first count % nt threads get one more): the one
  // split of parallel_for's ranges, parallel_for_dynamic's regions and the hints' shares.
  static constexpr int64_t split_point(int64_t count, int t, int nt) noexcept {
    const int64_t per = count / nt, extra = count % nt;
    return t * per + (t < extra ? t : extra);
  }
  // One parallel_for_dynamic call, in one of two slots (a late worker may still read
  // the previous call's slot while the next call fills the other).
  struct ChunkJob {
    FunctionRef<void(int64_t, int64_t)>* fn = nullptr;
    int64_t n = 0, grain = 1;
  };
  // A thread's region of a chunk job: the unclaimed units [lo, hi) and the job's id,
  // in one word so that every claim is one CAS and a claim can succeed only in the job
  // whose parameters the claimer read. One cache line each: the owner's claims stay
  // in its own cache until another thread comes to take from the back.
  struct alignas(64) Region {
    std::atomic<uint64_t> word{0};
  };
  static bool t_in_job_flag() noexcept;
  void run_chunks(int64_t n, int64_t grain, FunctionRef<void(int64_t, int64_t)> fn) noexcept;
  void help_with_chunks(int self) noexcept;
  void publish(bool chunk_job) noexcept;
  void worker_loop(int index);
  // Prefetches thread `index`'s share of the latest hint into its L2, in 1 KiB steps
  // until done or stop() says a job needs the thread.
  void prefetch_hinted_share(int index, FunctionRef<bool()> stop) noexcept;

  int n_threads_;
  std::vector<std::thread> workers_;
  FunctionRef<void(int, int)>* job_ = nullptr;
  std::atomic<uint32_t> epoch_{0};  // bumped once per job; idle workers sleep on it (a futex word)
  std::atomic<int> sleepers_{0};    // workers asleep or about to sleep: only then is a wake-up syscall needed
  std::atomic<int> remaining_{0};   // workers still running the current job
  std::atomic<bool> stop_{false};
  // Chunk jobs: epoch_ is odd while one is published (even for run() jobs).
  ChunkJob chunk_jobs_[2];
  uint32_t chunk_id_ = 0;                   // the caller's count of chunk jobs
  std::atomic<uint32_t> chunk_current_{0};  // the id of the latest chunk job
  std::unique_ptr<Region[]> regions_;       // one per thread, the caller's first
  std::atomic<int> chunk_helpers_{0};       // workers inside help_with_chunks()
  // The latest hint_next_dynamic(), in one of two slots, like a seqlock: a worker
  // copies slot (seq & 1) and keeps the copy only if hint_seq_ has not moved.
  struct Hint {
    std::atomic<const void*> data[kMaxHintRanges] = {};
    std::atomic<size_t> bytes[kMaxHintRanges] = {};
    std::atomic<int> count{0};
  };
  Hint hints_[2];
  std::atomic<uint32_t> hint_seq_{0};
  // Per thread (the caller's first; each touched only by its thread): the hint it last
  // worked on and how many bytes of its share it has prefetched, so a thread called
  // away to a job picks up where it stopped.
  struct alignas(64) HintProgress {
    uint32_t seq = 0;
    size_t bytes = 0;
  };
  std::unique_ptr<HintProgress[]> hint_progress_;
};

}  // namespace qilin
