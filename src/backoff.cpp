#include "sessiond/backoff.hpp"

#include <algorithm>
#include <cmath>

namespace sessiond {

Millis next_delay(const RetryPolicy& policy, int attempt, double u) {
  const double base = static_cast<double>(policy.base.count());
  const double cap = static_cast<double>(policy.max.count());
  const int exponent = std::clamp(attempt - 1, 0, 30);
  const double grown = std::min(cap, base * std::ldexp(1.0, exponent));
  return Millis(static_cast<Millis::rep>(grown / 2 + u * grown / 2));
}

std::optional<Millis> cap_to_deadline(Millis delay, Millis until_deadline, Millis margin,
                                      Millis min_step) {
  const Millis latest = until_deadline - margin;
  if (latest <= Millis(0)) return std::nullopt;
  // At most half of what is left, so more than one attempt fits before the
  // deadline; but no step below min_step (unless less than that is left).
  const Millis limit = std::max(latest / 2, std::min(min_step, latest));
  return std::min(delay, limit);
}

Millis next_refresh_delay(Millis interval, double jitter, double u) {
  jitter = std::clamp(jitter, 0.0, 1.0);
  const double d = static_cast<double>(interval.count()) * (1.0 - jitter * u);
  return Millis(static_cast<Millis::rep>(d));
}

Millis initial_delay(std::optional<Millis> since_last, Millis interval, double jitter,
                     Millis catchup_window, double u) {
  if (since_last && *since_last < interval) {
    // Due later: keep its rhythm, with the usual jitter inside what remains.
    const Millis remaining = interval - *since_last;
    return next_refresh_delay(remaining, jitter, u);
  }
  // Overdue or unknown: spread over the catch-up window. The more overdue
  // (relative to one interval), the earlier its share of the window.
  double urgency = 1.0;  // unknown age counts as most overdue
  if (since_last && interval.count() > 0) {
    const double overdue = static_cast<double>((*since_last - interval).count());
    urgency = std::clamp(overdue / static_cast<double>(interval.count()), 0.0, 1.0);
  }
  const double window = static_cast<double>(catchup_window.count()) * (1.0 - 0.5 * urgency);
  return Millis(static_cast<Millis::rep>(window * u));
}

}  // namespace sessiond
