#pragma once
// A fixed set of threads for blocking work (disk I/O, external commands), so
// it never runs on CAF's scheduler threads. Tasks report back by messaging an
// actor. The destructor finishes every queued task (pending saves included).

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace sessiond {

// What actors post blocking work to; tests substitute an inline executor.
class Executor {
 public:
  virtual ~Executor() = default;
  virtual void post(std::function<void()> task) = 0;
};

class WorkerPool final : public Executor {
 public:
  explicit WorkerPool(std::size_t threads);
  ~WorkerPool() override;
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  void post(std::function<void()> task) override;
  std::size_t queued() const;

 private:
  void run();
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace sessiond
