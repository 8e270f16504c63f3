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

ThreadPool::ThreadPool(int n_threads)
    : n_threads_(n_threads < 1 ? 1 : n_threads),
      regions_(std::make_unique<Region[]>(static_cast<size_t>(n_threads_))),
      hint_progress_(std::make_unique<HintProgress[]>(static_cast<size_t>(n_threads_))) {
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
  // Meanwhile pull our share of the next hinted job into cache.
  prefetch_hinted_share(0, [&] { return remaining_.load(std::memory_order_relaxed) == 0; });
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

namespace {

// A region word: the job id (16 bits) and the region's unclaimed units [lo, hi)
// (24 bits each). Ids need only tell the current job from the one before it (see
// help_with_chunks), so 16 bits are plenty.
constexpr int64_t kMaxUnits = (int64_t{1} << 24) - 1;
constexpr uint64_t pack_region(uint32_t id, int64_t lo, int64_t hi) noexcept {
  return (uint64_t{id & 0xffffu} << 48) | (static_cast<uint64_t>(lo) << 24) | static_cast<uint64_t>(hi);
}
constexpr uint32_t region_id(uint64_t w) noexcept { return static_cast<uint32_t>(w >> 48); }
constexpr int64_t region_lo(uint64_t w) noexcept { return static_cast<int64_t>((w >> 24) & 0xffffffu); }
constexpr int64_t region_hi(uint64_t w) noexcept { return static_cast<int64_t>(w & 0xffffffu); }

// The owner of a region claims all but an eighth of what is left of it (at least one
// unit), so a region is read in few, long pieces (decode's prefetching streams restart
// at every piece) and yet its last pieces are small enough to balance the threads.
int64_t owner_piece(int64_t left) noexcept { return left - left / 8; }
// Another thread takes half of what is left (rounded up) from the back.
int64_t thief_piece(int64_t left) noexcept { return (left + 1) / 2; }

}  // namespace

void ThreadPool::run_chunks(int64_t n, int64_t grain, FunctionRef<void(int64_t, int64_t)> fn) noexcept {
  int64_t units = (n + grain - 1) / grain;
  if (units > kMaxUnits) {  // more units than a region word holds: coarser units
    grain *= (units + kMaxUnits - 1) / kMaxUnits;
    units = (n + grain - 1) / grain;
  }
  const uint32_t id = ++chunk_id_;
  chunk_jobs_[id & 1u] = ChunkJob{&fn, n, grain};
  for (int t = 0; t < n_threads_; ++t) {
    const int64_t lo = split_point(units, t, n_threads_), hi = split_point(units, t + 1, n_threads_);
    regions_[static_cast<size_t>(t)].word.store(pack_region(id, lo, hi), std::memory_order_relaxed);
  }
  // Releases the job's slot and regions to a worker that reads this id.
  chunk_current_.store(id, std::memory_order_seq_cst);
  publish(/*chunk_job=*/true);
  t_in_job = true;
  help_with_chunks(0);
  t_in_job = false;
  // Every unit is claimed; wait only for workers still running a piece (or about to
  // find none left). A worker that arrives later finds every region empty and leaves.
  // Meanwhile pull our share of the next hinted job into cache.
  prefetch_hinted_share(0, [&] { return chunk_helpers_.load(std::memory_order_relaxed) == 0; });
  for (int i = 0; chunk_helpers_.load(std::memory_order_seq_cst) != 0; ++i) {
    QILIN_PAUSE();
    if ((i & 1023) == 1023) std::this_thread::yield();
  }
}

void ThreadPool::help_with_chunks(int self) noexcept {
  // Why this is safe for a worker that arrives after its job ended: it is counted in
  // chunk_helpers_ (seq_cst) before it reads chunk_current_, so the caller of any job
  // still running waits for it, and a job's slot is reused two jobs later at the
  // earliest, which cannot start while it is counted; a claim succeeds only while a
  // region word still holds the id whose slot it read, so a stale worker claims nothing.
  chunk_helpers_.fetch_add(1, std::memory_order_seq_cst);
  const uint32_t id = chunk_current_.load(std::memory_order_seq_cst) & 0xffffu;
  const ChunkJob& job = chunk_jobs_[id & 1u];
  auto run_units = [&](int64_t u0, int64_t u1) {
    const int64_t b = u0 * job.grain, e = u1 * job.grain < job.n ? u1 * job.grain : job.n;
    (*job.fn)(b, e);
  };
  // Claims from region r until it is empty (or belongs to another job); the owner
  // from the front, the others from the back.
  auto drain = [&](int r) {
    std::atomic<uint64_t>& word = regions_[static_cast<size_t>(r)].word;
    const bool own = r == self;
    uint64_t w = word.load(std::memory_order_acquire);
    for (;;) {
      if (region_id(w) != id) return;
      const int64_t lo = region_lo(w), hi = region_hi(w);
      if (lo >= hi) return;
      const int64_t take = own ? owner_piece(hi - lo) : thief_piece(hi - lo);
      const uint64_t claimed = own ? pack_region(id, lo + take, hi) : pack_region(id, lo, hi - take);
      if (!word.compare_exchange_weak(w, claimed, std::memory_order_acq_rel, std::memory_order_acquire)) continue;
      if (own) {
        run_units(lo, lo + take);
      } else {
        run_units(hi - take, hi);
      }
      w = word.load(std::memory_order_acquire);
    }
  };
  // A region seen empty stays empty (regions only shrink), so one pass over the
  // others, after the own region, leaves nothing unclaimed.
  drain(self);
  for (int k = 1; k < n_threads_; ++k) drain((self + k) % n_threads_);
  chunk_helpers_.fetch_sub(1, std::memory_order_seq_cst);
}

void ThreadPool::hint_next_dynamic(std::span<const ByteRange> ranges) noexcept {
  if (n_threads_ == 1) return;
  const uint32_t seq = hint_seq_.load(std::memory_order_relaxed) + 1;
  // The slot written now was published two hints ago and a worker may still be copying
  // it. This fence, after the last publication, pairs with the worker's fence: a worker
  // that reads any value written below then sees hint_seq_ moved on, and drops its copy.
  std::atomic_thread_fence(std::memory_order_release);
  Hint& h = hints_[seq & 1u];
  const int count = ranges.size() < kMaxHintRanges ? static_cast<int>(ranges.size()) : kMaxHintRanges;
  for (int i = 0; i < count; ++i) {
    h.data[i].store(ranges[static_cast<size_t>(i)].data, std::memory_order_relaxed);
    h.bytes[i].store(ranges[static_cast<size_t>(i)].bytes, std::memory_order_relaxed);
  }
  h.count.store(count, std::memory_order_relaxed);
  hint_seq_.store(seq, std::memory_order_release);
}

void ThreadPool::prefetch_hinted_share(int index, FunctionRef<bool()> stop) noexcept {
#if defined(__x86_64__) || defined(_M_X64)
  uint32_t& done_seq = hint_progress_[static_cast<size_t>(index)].seq;
  size_t& done_bytes = hint_progress_[static_cast<size_t>(index)].bytes;
  const uint32_t seq = hint_seq_.load(std::memory_order_acquire);
  if (seq == 0 || (seq == done_seq && done_bytes == SIZE_MAX)) return;
  const Hint& h = hints_[seq & 1u];
  ByteRange r[kMaxHintRanges];
  const int count = h.count.load(std::memory_order_relaxed);
  size_t total = 0;
  for (int i = 0; i < count; ++i) {
    r[i] = {h.data[i].load(std::memory_order_relaxed), h.bytes[i].load(std::memory_order_relaxed)};
    total += r[i].bytes;
  }
  std::atomic_thread_fence(std::memory_order_acquire);
  if (hint_seq_.load(std::memory_order_relaxed) != seq) return;  // rewritten while copied
  if (seq != done_seq) {
    done_seq = seq;
    done_bytes = 0;
  }
  // Byte [s, e) of the sequence the ranges make, in whatever ranges it falls.
  auto prefetch_span = [&](size_t s, size_t e) {
    size_t pos = 0;
    for (int i = 0; i < count && pos < e; pos += r[i].bytes, ++i) {
      const size_t lo = s > pos ? s - pos : 0, hi = e - pos < r[i].bytes ? e - pos : r[i].bytes;
      const auto* p = static_cast<const char*>(r[i].data);
      for (size_t o = lo; o < hi; o += 64) _mm_prefetch(p + o, _MM_HINT_T1);
    }
  };
  // This thread's share of the sequence, as parallel_for_dynamic's regions split units.
  // (Going on with the back of the region the thread would take from next was slower.)
  const auto first = static_cast<size_t>(split_point(static_cast<int64_t>(total), index, n_threads_));
  const auto end = static_cast<size_t>(split_point(static_cast<int64_t>(total), index + 1, n_threads_));
  for (size_t s = first + done_bytes; s < end;) {
    const size_t e = s + 1024 < end ? s + 1024 : end;
    prefetch_span(s, e);
    s = e;
    if (stop()) {  // looked at every 1 KiB, so a job is joined promptly
      done_bytes = s - first;
      return;
    }
  }
  done_bytes = SIZE_MAX;
#else
  (void)index;
  (void)stop;
#endif
}

void ThreadPool::worker_loop(int index) {
  // Jobs start at epoch 1. Not a load of epoch_: a thread scheduled late could
  // otherwise read the first job's epoch, take it as already seen, and hang the pool.
  uint32_t seen = 0;
  for (;;) {
    if (seen != 0) prefetch_hinted_share(index, [&] { return epoch_.load(std::memory_order_relaxed) != seen; });
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
      help_with_chunks(index);
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
