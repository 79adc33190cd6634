#pragma once
// Scheduling math, free of clocks and randomness: callers pass `now`-relative
// durations and a uniform random number u in [0, 1), so every rule is testable.

#include <chrono>
#include <optional>

#include "sessiond/duration.hpp"

namespace sessiond {

struct RetryPolicy {
  Millis base{2000};     // first retry delay (before jitter)
  Millis max{60000};     // cap of the exponential growth
  int max_attempts = 0;  // 0: retry until the idle deadline
};

// Delay before retry number `attempt` (1-based): exponential growth capped at
// policy.max, with "equal jitter" (half fixed, half random) so retries of many
// sessions that failed together spread out but never collapse to zero.
Millis next_delay(const RetryPolicy& policy, int attempt, double u);

// A retry must never be scheduled after the site would have logged the
// session out, and one failed retry must not use up the time left. Returns the
// delay to use: at most half of `until_deadline - margin` (but not below
// `min_step` unless less is left), so attempts get denser as the deadline
// nears; nullopt when the deadline (minus margin) has already passed.
std::optional<Millis> cap_to_deadline(Millis delay, Millis until_deadline, Millis margin,
                                      Millis min_step);

// Regular refresh: uniformly in [interval * (1 - jitter), interval], i.e.
// never later than the interval, and spread so sessions do not synchronise.
Millis next_refresh_delay(Millis interval, double jitter, double u);

// First refresh after a session is registered. `since_last` is the time since
// its last successful refresh (nullopt: unknown). A session due within the
// interval waits until due; an overdue one is refreshed within
// `catchup_window`, the more overdue the sooner.
Millis initial_delay(std::optional<Millis> since_last, Millis interval, double jitter,
                     Millis catchup_window, double u);

}  // namespace sessiond
