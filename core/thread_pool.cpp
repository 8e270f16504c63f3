#include "core/thread_pool.h"

#include <chrono>

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

template <class Pred>
void spin_then_wait(const std::atomic<uint64_t>& word, uint64_t old, Pred done) {
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; !done(); ++i) {
    QILIN_PAUSE();
    if ((i & 255) == 255 && std::chrono::steady_clock::now() - start > kSpinTime) {
      while (!done()) word.wait(old, std::memory_order_acquire);
      return;
    }
  }
}

}  // namespace

ThreadPool::ThreadPool(int n_threads) : n_threads_(n_threads < 1 ? 1 : n_threads) {
  workers_.reserve(static_cast<size_t>(n_threads_ - 1));
  for (int i = 1; i < n_threads_; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
}

ThreadPool::~ThreadPool() {
  stop_.store(true, std::memory_order_release);
  epoch_.fetch_add(1, std::memory_order_acq_rel);
  epoch_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::run(FunctionRef<void(int, int)> fn) noexcept {
  if (n_threads_ == 1 || t_in_job) {
    fn(0, 1);
    return;
  }
  job_ = &fn;
  remaining_.store(n_threads_ - 1, std::memory_order_relaxed);
  epoch_.fetch_add(1, std::memory_order_release);
  epoch_.notify_all();

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

void ThreadPool::worker_loop(int index) {
  uint64_t seen = epoch_.load(std::memory_order_acquire);
  for (;;) {
    spin_then_wait(epoch_, seen, [&] { return epoch_.load(std::memory_order_acquire) != seen; });
    seen = epoch_.load(std::memory_order_acquire);
    if (stop_.load(std::memory_order_acquire)) return;
    t_in_job = true;
    (*job_)(index, n_threads_);
    t_in_job = false;
    remaining_.fetch_sub(1, std::memory_order_acq_rel);
  }
}

}  // namespace qilin
