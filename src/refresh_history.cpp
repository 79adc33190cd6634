#include "sessiond/refresh_history.hpp"

#include <utility>

namespace sessiond {

RefreshHistory::RefreshHistory(Clock clock) : clock_(std::move(clock)) {}

std::int64_t RefreshHistory::minute_of(WallTime t) {
  auto secs = std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
  // Floor, not truncation: a clock before 1970 (a test's) still lands in one bucket.
  return secs >= 0 ? secs / 60 : (secs - 59) / 60;
}

void RefreshHistory::record(RefreshResult result) {
  const auto minute = minute_of(clock_());
  std::lock_guard<std::mutex> lock(mutex_);
  auto& b = buckets_[static_cast<std::size_t>(((minute % 60) + 60) % 60)];
  if (b.minute != minute) b = Bucket{minute, {}};  // an hour-old minute: reuse it
  ++b.counts[static_cast<std::size_t>(result)];
}

std::vector<RefreshHistory::Minute> RefreshHistory::last_hour() const {
  const auto now = minute_of(clock_());
  std::vector<Minute> out;
  out.reserve(kMinutes);
  std::lock_guard<std::mutex> lock(mutex_);
  for (std::int64_t m = now - static_cast<std::int64_t>(kMinutes) + 1; m <= now; ++m) {
    Minute row;
    row.start = WallTime(std::chrono::minutes(m));
    const auto& b = buckets_[static_cast<std::size_t>(((m % 60) + 60) % 60)];
    if (b.minute == m) {
      row.success = b.counts[static_cast<std::size_t>(RefreshResult::success)];
      row.logged_out = b.counts[static_cast<std::size_t>(RefreshResult::logged_out)];
      row.transient_error = b.counts[static_cast<std::size_t>(RefreshResult::transient_error)];
    }
    out.push_back(row);
  }
  return out;
}

}  // namespace sessiond
