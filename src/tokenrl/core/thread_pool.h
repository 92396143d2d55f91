#pragma once
// A fixed pool of worker threads for fork-join loops (`ParallelFor`). Workers
// persist between calls, so a call costs a wake-up, not a thread creation.
// With num_threads == 1 everything runs inline on the caller's thread.

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace tokenrl {

class ThreadPool {
 public:
  // REQUIRES: num_threads >= 1 (the caller counts as one thread).
  explicit ThreadPool(int num_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int num_threads() const { return num_threads_; }

  // Calls fn(chunk) for chunk in [0, num_chunks), chunks spread over the
  // threads (chunk i on thread i % num_threads); returns when all are done.
  // fn must not throw.
  void ParallelFor(int num_chunks, const std::function<void(int)>& fn);

 private:
  void WorkerLoop(int worker_index);

  const int num_threads_;  // Set before any worker starts; workers_ grows meanwhile.
  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable work_ready_;
  std::condition_variable work_done_;
  const std::function<void(int)>* job_ = nullptr;
  int num_chunks_ = 0;
  uint64_t generation_ = 0;
  int pending_ = 0;
  bool stopping_ = false;
};

}  // namespace tokenrl
