#include "sessiond/token_bucket.hpp"

#include <algorithm>
#include <cmath>

namespace sessiond {

TokenBucket::TokenBucket(double rate_per_second, double burst, Clock::time_point now)
    : rate_(std::max(0.0, rate_per_second)),
      burst_(burst > 0 ? burst : std::max(1.0, rate_)),
      tokens_(burst_),
      refilled_at_(now) {
  // A burst below one token could never pay for a request.
  burst_ = std::max(1.0, burst_);
  tokens_ = burst_;
}

double TokenBucket::tokens(Clock::time_point now) const {
  if (unlimited()) return burst_;
  const double elapsed = std::chrono::duration<double>(now - refilled_at_).count();
  return std::min(burst_, tokens_ + std::max(0.0, elapsed) * rate_);
}

bool TokenBucket::try_take(Clock::time_point now) {
  if (unlimited()) return true;
  tokens_ = tokens(now);
  refilled_at_ = std::max(refilled_at_, now);  // a clock read out of order never refills twice
  if (tokens_ < 1.0) return false;
  tokens_ -= 1.0;
  return true;
}

TokenBucket::Clock::duration TokenBucket::wait(Clock::time_point now) const {
  const double missing = 1.0 - tokens(now);
  if (unlimited() || missing <= 0) return Clock::duration::zero();
  const auto secs = std::chrono::duration<double>(missing / rate_);
  // Round up: waking a hair early would find no token and spin once more.
  return std::chrono::ceil<Clock::duration>(secs);
}

}  // namespace sessiond
