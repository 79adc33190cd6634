#pragma once
// Politeness toward the site: a token bucket that refills at `rate` tokens per
// second up to `burst`. Every request takes one token. Time is passed in, so
// tests drive it without sleeping.

#include <chrono>

namespace sessiond {

class TokenBucket {
 public:
  using Clock = std::chrono::steady_clock;

  // rate <= 0: unlimited (every take succeeds). burst <= 0: one second's worth
  // (at least 1), so a full bucket never exceeds the configured rate by much.
  TokenBucket(double rate_per_second, double burst, Clock::time_point now);

  bool unlimited() const { return rate_ <= 0; }
  double rate() const { return rate_; }
  double burst() const { return burst_; }

  // Takes one token if there is one.
  bool try_take(Clock::time_point now);
  // How long until try_take can succeed (zero when it can now).
  Clock::duration wait(Clock::time_point now) const;
  // Tokens available at `now` (burst when unlimited).
  double tokens(Clock::time_point now) const;

 private:
  double rate_;
  double burst_;
  double tokens_;
  Clock::time_point refilled_at_;
};

}  // namespace sessiond
