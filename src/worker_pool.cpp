#include "sessiond/worker_pool.hpp"

#include "sessiond/thread_name.hpp"

namespace sessiond {

WorkerPool::WorkerPool(std::size_t threads, const std::string& name) {
  if (threads == 0) threads = 1;
  for (std::size_t i = 0; i < threads; ++i)
    threads_.push_back(start_named_thread(name, [this] { run(); }));
}

WorkerPool::~WorkerPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
}

void WorkerPool::post(std::function<void()> task) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    tasks_.push_back(std::move(task));
  }
  cv_.notify_one();
}

void WorkerPool::post_first(std::function<void()> task) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    first_.push_back(std::move(task));
  }
  cv_.notify_one();
}

std::size_t WorkerPool::queued() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return first_.size() + tasks_.size();
}

void WorkerPool::run() {
  for (;;) {
    std::function<void()> task;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      cv_.wait(lock, [this] { return stopping_ || !first_.empty() || !tasks_.empty(); });
      auto& from = !first_.empty() ? first_ : tasks_;
      if (from.empty()) return;  // stopping and drained
      task = std::move(from.front());
      from.pop_front();
    }
    try {
      task();
    } catch (...) {
      // A task reports its own failures; one that throws must not kill the pool.
    }
  }
}

}  // namespace sessiond
