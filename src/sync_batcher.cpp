#include "sessiond/sync_batcher.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "sessiond/json_log.hpp"
#include "sessiond/metrics.hpp"
#include "sessiond/thread_name.hpp"

namespace sessiond {

namespace {
// After a failed sync (EIO, a full or vanished disk) the batch is kept and
// tried again this much later: the displaced versions stay until it works.
constexpr auto kRetryAfterFailure = std::chrono::seconds(1);
}  // namespace

SyncBatcher::SyncBatcher(const std::string& dir, Metrics* metrics, std::chrono::milliseconds gather)
    : metrics_(metrics), gather_(gather) {
  dir_fd_ = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  thread_ = start_named_thread("sd-sync", [this] { run(); });
}

SyncBatcher::~SyncBatcher() {
  flush();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  work_cv_.notify_all();
  thread_.join();
  if (dir_fd_ >= 0) ::close(dir_fd_);
}

void SyncBatcher::keep_until_durable(std::string displaced) {
  bool first_of_batch = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    first_of_batch = pending_.empty();
    pending_.push_back(std::move(displaced));
    ++added_;
  }
  // Only the first save of a batch wakes the thread; the rest join its window.
  if (first_of_batch) work_cv_.notify_one();
}

bool SyncBatcher::flush(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mutex_);
  const std::uint64_t target = added_;
  ++flushing_;
  work_cv_.notify_one();  // a gathering batch goes now
  const bool done = done_cv_.wait_for(lock, timeout, [&] { return synced_ >= target; });
  --flushing_;
  return done;
}

std::uint64_t SyncBatcher::syncs() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return syncs_;
}

bool SyncBatcher::sync_filesystem() {
  // syncfs: one call writes back every dirty page and the journal of the
  // filesystem, so a batch of N saves costs one sync instead of N fsyncs.
  if (dir_fd_ < 0) {
    ::sync();  // the directory could not be opened: the whole system, still correct
    return true;
  }
  if (::syncfs(dir_fd_) == 0) return true;
  const int err = errno;
  if (!failing_)
    log::error("file_error", "could not make saved sessions durable (syncfs); retrying",
               {{"reason", "sync"}, {"error", std::strerror(err)}});
  return false;
}

void SyncBatcher::run() {
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    work_cv_.wait(lock, [&] { return stopping_ || !pending_.empty(); });
    if (pending_.empty()) return;  // stopping, nothing left
    work_cv_.wait_for(lock, gather_, [&] { return stopping_ || flushing_ > 0; });
    // Everything handed in until now: saves that arrive during the sync wait
    // for the next one (group commit: the busier, the larger the batch).
    std::vector<std::string> batch;
    batch.swap(pending_);
    const std::uint64_t upto = added_;
    lock.unlock();
    const auto started = std::chrono::steady_clock::now();
    const bool ok = sync_filesystem();
    if (metrics_)
      metrics_->save_synced(
          std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count(),
          batch.size());
    if (ok)
      for (const auto& path : batch) ::unlink(path.c_str());
    lock.lock();
    if (!ok) {
      if (metrics_) metrics_->file_error(FileErrorKind::write);
      failing_ = true;
      pending_.insert(pending_.begin(), batch.begin(), batch.end());
      work_cv_.wait_for(lock, kRetryAfterFailure, [&] { return stopping_; });
      if (stopping_) return;  // the displaced versions stay on disk: whole, removed at start-up
      continue;
    }
    if (failing_) log::info("file_error", "saved sessions are durable again", {{"reason", "sync"}});
    failing_ = false;
    synced_ = upto;
    ++syncs_;
    done_cv_.notify_all();
  }
}

}  // namespace sessiond
