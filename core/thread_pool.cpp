#include "core/thread_pool.h"

#include <chrono>
#include <climits>

#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define QILIN_PAUSE() _mm_pause()
#else
#define QILIN_PAUSE() ((void)0)
#endif

namespace qilin {
namespace {

// Set while a thread runs a job, so nested parallel regions run inline
// instead of deadlocking on the pool.
thread_local bool t_in_job = false;

// How long an idle thread spins before sleeping on a futex. Decode issues a
// few hundred small jobs per token back to back; spinning across the gaps
// saves a wake-up (several microseconds) per job, while sleeping after a
// short while leaves the core to other processes between requests.
constexpr auto kSpinTime = std::chrono::microseconds(300);

// Sleeps while `word` still holds `old`. A raw futex on Linux: libstdc++ 12's
// std::atomic::wait can lose wake-ups (GCC PR 106183), which hangs the pool.
void futex_wait(std::atomic<uint32_t>& word, uint32_t old) noexcept {
#if defined(__linux__)
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(&word), FUTEX_WAIT_PRIVATE, old, nullptr, nullptr, 0);
#else
  word.wait(old, std::memory_order_seq_cst);
#endif
}

void futex_wake_all(std::atomic<uint32_t>& word) noexcept {
#if defined(__linux__)
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(&word), FUTEX_WAKE_PRIVATE, INT_MAX, nullptr, nullptr, 0);
#else
  word.notify_all();
#endif
}

}  // namespace

ThreadPool::ThreadPool(int n_threads) : n_threads_(n_threads < 1 ? 1 : n_threads) {
  workers_.reserve(static_cast<size_t>(n_threads_ - 1));
  for (int i = 1; i < n_threads_; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
}

ThreadPool::~ThreadPool() {
  stop_.store(true, std::memory_order_release);
  epoch_.fetch_add(1, std::memory_order_seq_cst);
  futex_wake_all(epoch_);
  for (auto& t : workers_) t.join();
}

bool ThreadPool::t_in_job_flag() noexcept { return t_in_job; }

void ThreadPool::run(FunctionRef<void(int, int)> fn) noexcept {
  if (n_threads_ == 1 || t_in_job) {
    fn(0, 1);
    return;
  }
  job_ = &fn;
  remaining_.store(n_threads_ - 1, std::memory_order_relaxed);
  publish(/*chunk_job=*/false);

  t_in_job = true;
  fn(0, n_threads_);
  t_in_job = false;

  // Wait for the workers; they finish within microseconds of us in the common case.
  for (int i = 0; remaining_.load(std::memory_order_acquire) != 0; ++i) {
    QILIN_PAUSE();
    if ((i & 1023) == 1023) std::this_thread::yield();
  }
  job_ = nullptr;
}

void ThreadPool::publish(bool chunk_job) noexcept {
  // The next epoch of the job's parity (odd: chunk job). Only the caller writes epoch_.
  // seq_cst pairs with the sleeper's increment of sleepers_ and re-check of
  // epoch_: either it sees the new epoch, or we see it asleep and wake it.
  const uint32_t e = epoch_.load(std::memory_order_relaxed);
  epoch_.store(e + ((e & 1u) == (chunk_job ? 1u : 0u) ? 2u : 1u), std::memory_order_seq_cst);
  if (sleepers_.load(std::memory_order_seq_cst) > 0) futex_wake_all(epoch_);
}

void ThreadPool::run_chunks(int64_t n, int64_t grain, FunctionRef<void(int64_t, int64_t)> fn) noexcept {
  const uint32_t id = ++chunk_id_;
  chunk_jobs_[id & 1u] = ChunkJob{&fn, n, grain, (n + grain - 1) / grain};
  chunk_state_.store(uint64_t{id} << 32, std::memory_order_seq_cst);
  publish(/*chunk_job=*/true);
  t_in_job = true;
  help_with_chunks();
  t_in_job = false;
  // Every chunk is claimed; wait only for workers still running one (or about to
  // find none left). A worker that arrives later reads the exhausted state and leaves.
  for (int i = 0; chunk_helpers_.load(std::memory_order_seq_cst) != 0; ++i) {
    QILIN_PAUSE();
    if ((i & 1023) == 1023) std::this_thread::yield();
  }
}

void ThreadPool::help_with_chunks() noexcept {
  // Why this is safe for a worker that arrives after its job ended: it is counted in
  // chunk_helpers_ (seq_cst) before it reads chunk_state_, so the caller of any job
  // still running waits for it, and a job's slot is reused two jobs later at the
  // earliest, which cannot start while it is counted; a claim succeeds only while the
  // state still holds the id whose slot it read, so a stale worker claims nothing.
  chunk_helpers_.fetch_add(1, std::memory_order_seq_cst);
  uint64_t s = chunk_state_.load(std::memory_order_seq_cst);
  for (;;) {
    const ChunkJob& job = chunk_jobs_[(s >> 32) & 1u];
    const auto chunk = static_cast<int64_t>(s & 0xffffffffu);
    if (chunk >= job.count) break;
    if (!chunk_state_.compare_exchange_weak(s, s + 1, std::memory_order_acq_rel, std::memory_order_acquire)) continue;
    const int64_t b = chunk * job.grain, e = b + job.grain < job.n ? b + job.grain : job.n;
    (*job.fn)(b, e);
    s = chunk_state_.load(std::memory_order_acquire);
  }
  chunk_helpers_.fetch_sub(1, std::memory_order_seq_cst);
}

void ThreadPool::worker_loop(int index) {
  // Jobs start at epoch 1. Not a load of epoch_: a thread scheduled late could
  // otherwise read the first job's epoch, take it as already seen, and hang the pool.
  uint32_t seen = 0;
  for (;;) {
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; epoch_.load(std::memory_order_acquire) == seen; ++i) {
      QILIN_PAUSE();
      if ((i & 255) == 255 && std::chrono::steady_clock::now() - start > kSpinTime) {
        sleepers_.fetch_add(1, std::memory_order_seq_cst);
        while (epoch_.load(std::memory_order_seq_cst) == seen) futex_wait(epoch_, seen);
        sleepers_.fetch_sub(1, std::memory_order_relaxed);
        break;
      }
    }
    seen = epoch_.load(std::memory_order_acquire);
    if (stop_.load(std::memory_order_acquire)) return;
    if ((seen & 1u) != 0) {  // a chunk job: optional, and perhaps over already
      t_in_job = true;
      help_with_chunks();
      t_in_job = false;
      continue;
    }
    t_in_job = true;
    (*job_)(index, n_threads_);
    t_in_job = false;
    remaining_.fetch_sub(1, std::memory_order_acq_rel);
  }
}

}  // namespace qilin
