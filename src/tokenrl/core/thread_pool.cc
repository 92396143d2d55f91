#include "tokenrl/core/thread_pool.h"

#include "tokenrl/core/status.h"

namespace tokenrl {

ThreadPool::ThreadPool(int num_threads) : num_threads_(num_threads) {
  TOKENRL_CHECK(num_threads >= 1, "ThreadPool needs at least one thread, got {}", num_threads);
  for (int i = 1; i < num_threads; ++i) workers_.emplace_back([this, i] { WorkerLoop(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  work_ready_.notify_all();
  for (auto& w : workers_) w.join();
}

void ThreadPool::ParallelFor(int num_chunks, const std::function<void(int)>& fn) {
  const int threads = num_threads();
  if (threads == 1 || num_chunks <= 1) {
    for (int c = 0; c < num_chunks; ++c) fn(c);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    job_ = &fn;
    num_chunks_ = num_chunks;
    pending_ = num_threads_ - 1;
    ++generation_;
  }
  work_ready_.notify_all();
  for (int c = 0; c < num_chunks; c += threads) fn(c);  // The caller is thread 0.
  std::unique_lock<std::mutex> lock(mutex_);
  work_done_.wait(lock, [this] { return pending_ == 0; });
  job_ = nullptr;
}

void ThreadPool::WorkerLoop(int worker_index) {
  uint64_t seen = 0;
  const int threads = num_threads();
  while (true) {
    const std::function<void(int)>* job;
    int num_chunks;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      work_ready_.wait(lock, [&] { return stopping_ || generation_ != seen; });
      if (stopping_) return;
      seen = generation_;
      job = job_;
      num_chunks = num_chunks_;
    }
    for (int c = worker_index; c < num_chunks; c += threads) (*job)(c);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (--pending_ == 0) work_done_.notify_one();
    }
  }
}

}  // namespace tokenrl
