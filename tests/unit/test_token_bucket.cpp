#include <catch2/catch.hpp>

#include <chrono>

#include "sessiond/token_bucket.hpp"

using namespace sessiond;
using namespace std::chrono_literals;

TEST_CASE("a full bucket allows a burst, then one token per 1/rate", "[rate]") {
  const auto t0 = TokenBucket::Clock::time_point{} + 1h;
  TokenBucket b(10, 3, t0);  // 10/s, burst 3
  CHECK(b.try_take(t0));
  CHECK(b.try_take(t0));
  CHECK(b.try_take(t0));
  CHECK_FALSE(b.try_take(t0));
  CHECK(b.wait(t0) == 100ms);
  CHECK_FALSE(b.try_take(t0 + 99ms));
  CHECK(b.try_take(t0 + 100ms));
  CHECK_FALSE(b.try_take(t0 + 100ms));
  // Idle time refills up to the burst, never beyond.
  CHECK(b.tokens(t0 + 10s) == Approx(3.0));
  int taken = 0;
  while (b.try_take(t0 + 10s) && taken < 10) ++taken;
  CHECK(taken == 3);
}

TEST_CASE("over a long run the bucket never exceeds rate * time + burst", "[rate]") {
  const auto t0 = TokenBucket::Clock::time_point{} + 1h;
  TokenBucket b(20, 40, t0);
  int taken = 0;
  // Ask every millisecond for 10 s.
  for (int ms = 0; ms <= 10000; ++ms) {
    if (b.try_take(t0 + std::chrono::milliseconds(ms))) ++taken;
  }
  CHECK(taken <= 20 * 10 + 40);
  CHECK(taken >= 20 * 10 + 40 - 1);
}

TEST_CASE("rate 0 is unlimited; burst 0 is one second's worth", "[rate]") {
  const auto t0 = TokenBucket::Clock::time_point{} + 1h;
  TokenBucket unlimited(0, 0, t0);
  CHECK(unlimited.unlimited());
  for (int i = 0; i < 1000; ++i) REQUIRE(unlimited.try_take(t0));
  CHECK(unlimited.wait(t0) == TokenBucket::Clock::duration::zero());

  TokenBucket b(5, 0, t0);
  CHECK(b.burst() == Approx(5.0));
  TokenBucket slow(0.5, 0, t0);  // below one token per second: the burst is still one request
  CHECK(slow.burst() == Approx(1.0));
  CHECK(slow.try_take(t0));
  CHECK_FALSE(slow.try_take(t0 + 1s));
  CHECK(slow.try_take(t0 + 2s));
}

TEST_CASE("a clock read out of order neither refills twice nor throws", "[rate]") {
  const auto t0 = TokenBucket::Clock::time_point{} + 1h;
  TokenBucket b(10, 1, t0);
  CHECK(b.try_take(t0 + 1s));
  CHECK_FALSE(b.try_take(t0));  // earlier than the last refill: no tokens appear
  CHECK_FALSE(b.try_take(t0 + 1s));
  CHECK(b.try_take(t0 + 1100ms));
}
