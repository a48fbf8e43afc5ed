#include "core/thread_pool.h"

#include <algorithm>
#include <chrono>
#include <map>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace ixc {

namespace {

inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// How long an idle worker polls for the next job before sleeping: long enough to cover the gaps between the
// kernel calls of one forward pass, short enough not to burn a core between requests.
constexpr auto kSpinTime = std::chrono::microseconds(200);

thread_local const ThreadPool* tls_worker_of = nullptr;  // the pool whose chunk this thread is running

void ChunkOf(int64_t n, int parts, int index, int64_t* b, int64_t* e) {
  *b = n * index / parts;
  *e = n * (index + 1) / parts;
}

}  // namespace

ThreadPool::ThreadPool(int num_threads) {
  for (int i = 1; i < std::max(1, num_threads); ++i) workers_.emplace_back([this, i] { WorkerLoop(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(sleep_mu_);
    stop_.store(true);
  }
  sleep_cv_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::RunChunk(int index) {
  int64_t b, e;
  ChunkOf(job_n_, job_parts_, index, &b, &e);
  const ThreadPool* outer = tls_worker_of;
  tls_worker_of = this;
  (*job_)(b, e, index);
  tls_worker_of = outer;
}

void ThreadPool::ParallelFor(int64_t n, const std::function<void(int64_t, int64_t, int)>& fn) {
  if (n <= 0) return;
  const int parts = static_cast<int>(std::min<int64_t>(num_threads(), n));
  if (parts == 1 || tls_worker_of == this) {
    // Nested calls run inline with the same chunking, so results stay independent of the call site.
    for (int i = 0; i < parts; ++i) {
      int64_t b, e;
      ChunkOf(n, parts, i, &b, &e);
      fn(b, e, i);
    }
    return;
  }
  std::lock_guard<std::mutex> submit(submit_mu_);
  job_ = &fn;
  job_n_ = n;
  job_parts_ = parts;
  // Every worker checks in for every job, even one with no chunk for it: then no worker can still be reading this
  // job's fields when the next one is published.
  pending_.store(static_cast<int>(workers_.size()), std::memory_order_relaxed);
  generation_.fetch_add(1);  // sequentially consistent with the sleepers_ check (see WorkerLoop)
  if (sleepers_.load() > 0) {
    std::lock_guard<std::mutex> lock(sleep_mu_);
    sleep_cv_.notify_all();
  }
  RunChunk(0);
  // The workers' chunks are about as long as ours: spin, yielding now and then in case a worker was descheduled.
  for (int spins = 0; pending_.load(std::memory_order_acquire) != 0; ++spins) {
    if ((spins & 1023) == 1023) {
      std::this_thread::yield();
    } else {
      CpuRelax();
    }
  }
  job_ = nullptr;
}

void ThreadPool::WorkerLoop(int index) {
  uint64_t seen = 0;
  for (;;) {
    uint64_t gen = generation_.load(std::memory_order_acquire);
    if (gen == seen) {
      const auto spin_until = std::chrono::steady_clock::now() + kSpinTime;
      int spins = 0;
      while ((gen = generation_.load(std::memory_order_acquire)) == seen && !stop_.load(std::memory_order_relaxed)) {
        CpuRelax();
        if ((++spins & 255) == 0 && std::chrono::steady_clock::now() > spin_until) {
          // Announce the sleep, then re-check the generation: with both sides sequentially consistent, either
          // ParallelFor sees the sleeper and notifies, or the predicate sees the new job.
          std::unique_lock<std::mutex> lock(sleep_mu_);
          sleepers_.fetch_add(1);
          sleep_cv_.wait(lock, [&] { return generation_.load() != seen || stop_.load(); });
          sleepers_.fetch_sub(1);
          spins = 0;
        }
      }
    }
    if (stop_.load(std::memory_order_relaxed)) return;
    seen = gen;
    if (index < job_parts_) RunChunk(index);
    pending_.fetch_sub(1, std::memory_order_acq_rel);
  }
}

std::shared_ptr<ThreadPool> SharedThreadPool(int threads) {
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  static std::mutex mu;
  static std::map<int, std::weak_ptr<ThreadPool>> pools;
  std::lock_guard<std::mutex> lock(mu);
  std::shared_ptr<ThreadPool> pool = pools[threads].lock();
  if (!pool) {
    pool = std::make_shared<ThreadPool>(threads);
    pools[threads] = pool;
  }
  return pool;
}

}  // namespace ixc
