#pragma once
// Refresh outcomes per minute over the last hour, for the status page's
// chart: 60 one-minute buckets in a ring, reused as the minutes roll over.
// Thread-safe (one mutex; a record is a few increments). The clock is
// injectable so tests can roll minutes over without waiting.

#include <array>
#include <cstdint>
#include <functional>
#include <mutex>
#include <vector>

#include "sessiond/session_status.hpp"

namespace sessiond {

class RefreshHistory {
 public:
  using Clock = std::function<WallTime()>;
  static constexpr std::size_t kMinutes = 60;

  struct Minute {
    WallTime start;  // the minute's first instant (UTC, whole minute)
    std::uint64_t success = 0;
    std::uint64_t logged_out = 0;
    std::uint64_t transient_error = 0;
    std::uint64_t total() const { return success + logged_out + transient_error; }
    std::uint64_t failures() const { return logged_out + transient_error; }
  };

  explicit RefreshHistory(Clock clock = [] { return std::chrono::system_clock::now(); });

  // One refresh reached a verdict now.
  void record(RefreshResult result);
  // kMinutes entries, oldest first; the last one is the current minute.
  std::vector<Minute> last_hour() const;

 private:
  struct Bucket {
    std::int64_t minute = -1;  // minutes since the epoch; -1: never used
    std::array<std::uint64_t, 3> counts{};
  };
  static std::int64_t minute_of(WallTime t);

  Clock clock_;
  mutable std::mutex mutex_;
  std::array<Bucket, kMinutes> buckets_{};
};

}  // namespace sessiond
