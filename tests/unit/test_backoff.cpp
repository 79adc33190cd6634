#include <algorithm>
#include <catch2/catch.hpp>
#include <climits>
#include <cmath>
#include <random>
#include <vector>

#include "sessiond/backoff.hpp"

using namespace sessiond;
using namespace std::chrono_literals;

namespace {

// The exponential cap before jitter: min(max, base * 2^(attempt-1)).
double cap_for(const RetryPolicy& p, int attempt) {
  return std::min(static_cast<double>(p.max.count()),
                  static_cast<double>(p.base.count()) * std::ldexp(1.0, attempt - 1));
}

std::vector<double> uniform_draws(unsigned seed, int n) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> dist(0.0, 1.0);
  std::vector<double> out;
  for (int i = 0; i < n; ++i) out.push_back(dist(rng));
  return out;
}

}  // namespace

TEST_CASE("next_delay stays within [cap/2, cap] for attempts 1..40", "[backoff]") {
  std::vector<RetryPolicy> policies = {RetryPolicy{}, RetryPolicy{250ms, 45s, 0},
                                       RetryPolicy{Millis(333), Millis(100000), 3}};
  auto us = uniform_draws(42, 50);
  us.push_back(0.0);
  us.push_back(0.5);
  us.push_back(std::nextafter(1.0, 0.0));
  for (const auto& p : policies) {
    for (int attempt = 1; attempt <= 40; ++attempt) {
      const double cap = cap_for(p, attempt);
      for (double u : us) {
        INFO("base " << p.base.count() << " max " << p.max.count() << " attempt " << attempt
                     << " u " << u);
        const auto d = next_delay(p, attempt, u).count();
        CHECK(d >= std::floor(cap / 2));
        CHECK(d <= cap);
        CHECK(d > 0);
      }
    }
  }
  // u = 0 gives exactly half the cap; the defaults double from 1s up to 30s.
  RetryPolicy def;
  CHECK(next_delay(def, 1, 0.0) == 1000ms);
  CHECK(next_delay(def, 2, 0.0) == 2000ms);
  CHECK(next_delay(def, 3, 0.0) == 4000ms);
  CHECK(next_delay(def, 6, 0.0) == 30000ms);
  CHECK(next_delay(def, 7, 0.0) == 30000ms);
  CHECK(next_delay(def, 1, 0.5) == 1500ms);
}

TEST_CASE("next_delay's lower bound grows monotonically until the maximum", "[backoff]") {
  RetryPolicy p{Millis(100), Millis(60000), 0};
  Millis previous{0};
  bool reached_max = false;
  for (int attempt = 1; attempt <= 40; ++attempt) {
    const auto low = next_delay(p, attempt, 0.0);
    INFO("attempt " << attempt);
    if (!reached_max) {
      CHECK(low > previous);
    } else {
      CHECK(low == previous);
    }
    if (low == p.max / 2) reached_max = true;
    previous = low;
    // The upper end grows the same way.
    CHECK(next_delay(p, attempt, 0.999999) >= low);
  }
  CHECK(reached_max);
  CHECK(previous == p.max / 2);
}

TEST_CASE("next_delay does not overflow for huge attempt numbers", "[backoff]") {
  RetryPolicy p;
  for (int attempt : {31, 32, 63, 64, 100, 1000, 100000, INT_MAX}) {
    INFO("attempt " << attempt);
    for (double u : {0.0, 0.5, 0.999999}) {
      const auto d = next_delay(p, attempt, u);
      CHECK(d >= p.max / 2);
      CHECK(d <= p.max);
    }
  }
  // Attempt numbers below 1 are treated as the first attempt.
  CHECK(next_delay(p, 0, 0.0) == next_delay(p, 1, 0.0));
  CHECK(next_delay(p, -5, 0.0) == next_delay(p, 1, 0.0));
  // A huge max with a huge attempt still gives a sane, positive delay.
  RetryPolicy big{Millis(1000), Millis(24LL * 3600 * 1000 * 365), 0};
  const auto d = next_delay(big, 1000, 0.999999);
  CHECK(d > Millis(0));
  CHECK(d <= big.max);
}

TEST_CASE("cap_to_deadline pulls retries in before the idle deadline", "[backoff]") {
  // Plenty of time: unchanged.
  CHECK(cap_to_deadline(10s, 600s, 30s, 2s) == std::optional<Millis>(10s));
  // A retry may use at most half of what is left before deadline - margin.
  CHECK(cap_to_deadline(60s, 40s, 30s, 2s) == std::optional<Millis>(5s));
  CHECK(cap_to_deadline(Millis(5001), 35s, 30s, 2s) == std::optional<Millis>(Millis(2500)));
  CHECK(cap_to_deadline(5s, 40s, 30s, 2s) == std::optional<Millis>(5s));
  // ... but steps do not shrink below min_step while that much is left.
  CHECK(cap_to_deadline(10s, 33s, 30s, 2s) == std::optional<Millis>(2s));
  CHECK(cap_to_deadline(10s, Millis(31500), 30s, 2s) == std::optional<Millis>(Millis(1500)));
  // Deadline minus margin already passed (or reached): no retry possible.
  CHECK_FALSE(cap_to_deadline(10s, 30s, 30s, 2s));
  CHECK_FALSE(cap_to_deadline(10s, 20s, 30s, 2s));
  CHECK_FALSE(cap_to_deadline(10s, -5s, 0s, 2s));
  CHECK_FALSE(cap_to_deadline(10s, 0s, 0s, 2s));
}

TEST_CASE("retries before the deadline get denser: several attempts fit, none after it",
          "[backoff]") {
  // A 60 s backoff with 100 s left: without halving only one attempt would fit.
  Millis left = 100s;
  const Millis margin = 1s, step = 2s;
  int attempts = 0;
  while (auto d = cap_to_deadline(60s, left, margin, step)) {
    REQUIRE(*d > Millis(0));
    left -= *d;
    REQUIRE(left >= margin);
    if (++attempts > 100) break;
  }
  CHECK(attempts >= 5);
  CHECK(attempts <= 100);
}

TEST_CASE("next_refresh_delay spreads refreshes over [interval*(1-jitter), interval]",
          "[backoff]") {
  const Millis interval = 5min;
  const double jitter = 0.1;
  const double lo = interval.count() * (1 - jitter);
  const double hi = interval.count();
  CHECK(next_refresh_delay(interval, jitter, 0.0) == interval);

  Millis min_seen = Millis::max(), max_seen = Millis::min();
  std::vector<int> buckets(10, 0);
  for (double u : uniform_draws(7, 1000)) {
    const auto d = next_refresh_delay(interval, jitter, u);
    REQUIRE(d.count() >= lo);
    REQUIRE(d.count() <= hi);
    min_seen = std::min(min_seen, d);
    max_seen = std::max(max_seen, d);
    auto b = static_cast<int>((d.count() - lo) / (hi - lo) * 10);
    ++buckets[std::min(b, 9)];
  }
  const double span = hi - lo;
  CHECK(min_seen.count() < lo + 0.02 * span);
  CHECK(max_seen.count() > hi - 0.02 * span);
  for (int b : buckets) CHECK(b < 200);  // roughly uniform: ~100 per tenth

  // No jitter: exactly the interval; jitter is clamped to [0, 1].
  CHECK(next_refresh_delay(interval, 0.0, 0.7) == interval);
  CHECK(next_refresh_delay(interval, -1.0, 0.7) == interval);
  CHECK(next_refresh_delay(interval, 5.0, 0.5) == interval / 2);
  CHECK(next_refresh_delay(interval, 5.0, 0.999) >= Millis(0));
}

TEST_CASE("initial_delay: due sessions keep their rhythm, overdue ones catch up", "[backoff]") {
  const Millis interval = 5min;
  const double jitter = 0.1;
  const Millis window = 30s;
  const auto us = uniform_draws(99, 1000);

  SECTION("due later: waits about the remainder") {
    for (Millis since : {Millis(0), Millis(60000), Millis(299000)}) {
      const Millis remaining = interval - since;
      for (double u : us) {
        const auto d = initial_delay(since, interval, jitter, window, u);
        INFO("since " << since.count() << " u " << u);
        REQUIRE(d.count() >= std::floor(remaining.count() * (1 - jitter)));
        REQUIRE(d <= remaining);
      }
    }
    CHECK(initial_delay(Millis(60000), interval, jitter, window, 0.0) == Millis(240000));
  }

  SECTION("overdue or unknown: within the catch-up window") {
    for (std::optional<Millis> since :
         {std::optional<Millis>(interval), std::optional<Millis>(interval + 1s),
          std::optional<Millis>(2 * interval), std::optional<Millis>(100 * interval),
          std::optional<Millis>()}) {
      for (double u : us) {
        const auto d = initial_delay(since, interval, jitter, window, u);
        REQUIRE(d >= Millis(0));
        REQUIRE(d < window);
      }
    }
  }

  SECTION("more overdue: earlier on average") {
    auto mean = [&](std::optional<Millis> since) {
      double sum = 0;
      for (double u : us)
        sum += static_cast<double>(initial_delay(since, interval, jitter, window, u).count());
      return sum / static_cast<double>(us.size());
    };
    const double slightly = mean(interval + 10s);
    const double half = mean(interval + interval / 2);
    const double very = mean(2 * interval);
    CHECK(slightly > half);
    CHECK(half > very);
    CHECK(mean(10 * interval) <= very);
    CHECK(mean(std::nullopt) <= slightly);
  }

  SECTION("1000 sessions with the same overdue age are spread across the window") {
    for (Millis since : {interval + 10s, interval + interval / 2}) {
      std::vector<int> buckets(10, 0);
      Millis lo = Millis::max(), hi = Millis::min();
      for (double u : us) {
        const auto d = initial_delay(since, interval, jitter, window, u);
        lo = std::min(lo, d);
        hi = std::max(hi, d);
        ++buckets[std::min(static_cast<int>(d.count() * 10 / window.count()), 9)];
      }
      INFO("since " << since.count());
      for (int b : buckets) CHECK(b <= 200);  // no tenth of the window holds over 20%
      CHECK(lo < window / 20);
      CHECK(hi > window * 7 / 10);
    }
    // The most overdue (and unknown ages) use the first half of the window,
    // evenly: no twentieth of the window holds over 15%.
    for (std::optional<Millis> since :
         {std::optional<Millis>(3 * interval), std::optional<Millis>()}) {
      std::vector<int> buckets(20, 0);
      for (double u : us) {
        const auto d = initial_delay(since, interval, jitter, window, u);
        REQUIRE(d <= window / 2);
        ++buckets[std::min(static_cast<int>(d.count() * 20 / window.count()), 19)];
      }
      for (int b : buckets) CHECK(b <= 150);
    }
  }
}
