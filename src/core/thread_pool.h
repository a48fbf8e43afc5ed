// A fixed pool of worker threads with a blocking ParallelFor. Passed explicitly to whoever needs it; Sessions share
// one per process (SharedThreadPool) so several conversations do not oversubscribe the cores.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace ixc {

class ThreadPool {
 public:
  // num_threads counts the calling thread: 1 means run everything inline.
  explicit ThreadPool(int num_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int num_threads() const { return static_cast<int>(workers_.size()) + 1; }

  // Calls fn(begin, end, thread_index) over disjoint chunks covering [0, n), at most one chunk per thread,
  // and returns when all are done. Chunk boundaries depend only on n and the thread count, so each output
  // element is always produced by the same arithmetic (results do not depend on scheduling).
  //
  // Safe to call from several threads at once (calls take turns) and from inside a chunk (the nested call runs
  // inline on the calling thread).
  void ParallelFor(int64_t n, const std::function<void(int64_t, int64_t, int)>& fn);

 private:
  void WorkerLoop(int index);
  void RunChunk(int index);

  std::vector<std::thread> workers_;
  std::mutex submit_mu_;  // one ParallelFor at a time

  // A job is published by bumping generation_; idle workers spin on it for a while (a decoded token makes a few
  // hundred calls, microseconds apart), then sleep on sleep_cv_.
  const std::function<void(int64_t, int64_t, int)>* job_ = nullptr;
  int64_t job_n_ = 0;
  int job_parts_ = 0;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  std::atomic<bool> stop_{false};
  std::mutex sleep_mu_;
  std::condition_variable sleep_cv_;
  std::atomic<int> sleepers_{0};
};

// The process's pool with `threads` threads (0: all hardware threads), created on first use and kept while any
// holder keeps it.
std::shared_ptr<ThreadPool> SharedThreadPool(int threads);

}  // namespace ixc
