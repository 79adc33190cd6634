#pragma once
// A fixed set of threads for blocking work (disk I/O, external commands), so
// it never runs on CAF's scheduler threads. Tasks report back by messaging an
// actor. The destructor finishes every queued task (pending saves included).

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace sessiond {

// What actors post blocking work to; tests substitute an inline executor.
class Executor {
 public:
  virtual ~Executor() = default;
  virtual void post(std::function<void()> task) = 0;
  // Runs before every task posted with post(): saves of credentials the site
  // already rotated go ahead of loads for new requests (issue 11: a kill -9
  // loses what is not renamed yet). Executors without priorities just run it.
  virtual void post_first(std::function<void()> task) { post(std::move(task)); }
};

class WorkerPool final : public Executor {
 public:
  // `name`: what its threads are called (thread_name.hpp), e.g. "sd-io".
  WorkerPool(std::size_t threads, const std::string& name);
  ~WorkerPool() override;
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  void post(std::function<void()> task) override;
  void post_first(std::function<void()> task) override;
  std::size_t queued() const;

 private:
  void run();
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> first_;  // taken before tasks_
  std::deque<std::function<void()>> tasks_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace sessiond
