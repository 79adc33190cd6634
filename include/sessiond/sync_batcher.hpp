#pragma once
// Group commit for saves. A save renames its new version into place at once
// (from then on a process crash, kill -9 included, cannot lose it: the page
// cache survives the process) and hands the version it displaced to the
// batcher, which makes everything written so far durable with one syncfs()
// and only then removes the displaced versions. A power loss before that
// sync may leave a new file empty or torn, but never without the complete
// previous version next to it under its temp name: start-up restores it
// (restore_from_leftovers in session_file.hpp). One fsync per save on the
// I/O threads, inside the crash window, is what this replaces.
//
// A batch gathers for a short window after its first save: on a fast disk a
// syncfs took less time than the gap between two saves, so without it each
// save paid its own sync and its own wake-up of this thread.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace sessiond {

class Metrics;

class SyncBatcher {
 public:
  // Default gather window: adds at most this to how long a power loss (not a
  // process crash) can take a saved file back to its previous version.
  static constexpr std::chrono::milliseconds kGatherWindow{10};

  // `dir`: a directory on the filesystem to sync (the sessions directory).
  SyncBatcher(const std::string& dir, Metrics* metrics,
              std::chrono::milliseconds gather = kGatherWindow);
  ~SyncBatcher();  // flush(), then stop
  SyncBatcher(const SyncBatcher&) = delete;
  SyncBatcher& operator=(const SyncBatcher&) = delete;

  // `displaced`: the previous version of a file that a save just replaced
  // (a temp name in the same directory); removed after the next sync.
  void keep_until_durable(std::string displaced);
  // Waits until everything handed in so far is synced and removed (drain,
  // shutdown, tests). False when that took longer than `timeout`.
  bool flush(std::chrono::milliseconds timeout = std::chrono::seconds(30));

  // Syncs completed so far (tests).
  std::uint64_t syncs() const;

 private:
  void run();
  bool sync_filesystem();

  int dir_fd_ = -1;
  Metrics* metrics_;
  const std::chrono::milliseconds gather_;
  mutable std::mutex mutex_;
  std::condition_variable work_cv_;
  std::condition_variable done_cv_;
  std::vector<std::string> pending_;
  std::uint64_t added_ = 0;   // displaced versions handed in
  std::uint64_t synced_ = 0;  // ... of which synced and removed
  std::uint64_t syncs_ = 0;
  std::size_t flushing_ = 0;  // flush() callers waiting: a batch stops gathering
  bool stopping_ = false;
  bool failing_ = false;  // the last sync failed (logged once per episode)
  std::thread thread_;
};

}  // namespace sessiond
