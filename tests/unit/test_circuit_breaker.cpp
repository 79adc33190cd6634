#include <catch2/catch.hpp>

#include "sessiond/circuit_breaker.hpp"

using namespace sessiond;
using namespace std::chrono_literals;

namespace {
struct FakeClock {
  std::chrono::steady_clock::time_point t{std::chrono::seconds(1000)};
  CircuitBreaker::Clock fn() {
    return [this] { return t; };
  }
};
CircuitBreakerPolicy policy() {
  CircuitBreakerPolicy p;
  p.failure_ratio = 0.5;
  p.min_requests = 10;
  p.window = 10s;
  p.open_for = 5s;
  return p;
}
}  // namespace

TEST_CASE("the circuit opens when most requests fail, and not before enough requests",
          "[circuit]") {
  FakeClock clock;
  CircuitBreaker cb(policy(), clock.fn());
  for (int i = 0; i < 9; ++i) cb.record(false);
  CHECK(cb.state() == CircuitBreaker::State::closed);  // 9 < min_requests
  CHECK(cb.allow());
  cb.record(false);
  CHECK(cb.state() == CircuitBreaker::State::open);
  CHECK_FALSE(cb.allow());
}

TEST_CASE("a healthy mix keeps the circuit closed; old failures leave the window", "[circuit]") {
  FakeClock clock;
  CircuitBreaker cb(policy(), clock.fn());
  for (int i = 0; i < 40; ++i) cb.record(i % 3 != 0);  // a third fail
  CHECK(cb.state() == CircuitBreaker::State::closed);
  for (int i = 0; i < 8; ++i) cb.record(false);
  clock.t += 11s;  // those failures are now outside the 10 s window
  for (int i = 0; i < 8; ++i) cb.record(true);
  cb.record(false);
  CHECK(cb.state() == CircuitBreaker::State::closed);
}

TEST_CASE("after open_for one probe goes out; its result closes or reopens", "[circuit]") {
  FakeClock clock;
  CircuitBreaker cb(policy(), clock.fn());
  for (int i = 0; i < 10; ++i) cb.record(false);
  REQUIRE(cb.is_open());
  clock.t += 4s;
  CHECK_FALSE(cb.allow());
  clock.t += 2s;
  CHECK(cb.allow());        // the probe
  CHECK_FALSE(cb.allow());  // only one
  cb.record(false);
  CHECK(cb.state() == CircuitBreaker::State::open);
  clock.t += 5s;
  CHECK(cb.allow());
  cb.record(true);
  CHECK(cb.state() == CircuitBreaker::State::closed);
  CHECK(cb.allow());
  CHECK(cb.allow());
}

TEST_CASE("the guarded transport answers refused requests at once, unsent", "[circuit]") {
  struct Counting : HttpTransport {
    int sent = 0;
    long status = 503;
    void submit(HttpRequest, Callback done) override {
      ++sent;
      HttpResponse r;
      r.status = status;
      done(std::move(r));
    }
  } inner;
  FakeClock clock;
  CircuitBreaker cb(policy(), clock.fn());
  GuardedTransport guarded(inner, cb);
  int not_sent = 0;
  for (int i = 0; i < 100; ++i)
    guarded.submit(HttpRequest{}, [&](HttpResponse r) { not_sent += r.curl_code == kNotSent; });
  CHECK(inner.sent == 10);  // opened after min_requests failures
  CHECK(not_sent == 90);
  CHECK(site_failed(HttpResponse{}));
  HttpResponse ok;
  ok.status = 302;
  CHECK_FALSE(site_failed(ok));
}

TEST_CASE("open_for never exceeds half the slack between interval and idle timeout", "[circuit]") {
  CircuitBreakerPolicy p;
  p.open_for = std::chrono::seconds(15);
  // Production: 5 min / 10 min leaves plenty: unchanged.
  CHECK(fit_to_idle_timeout(p, std::chrono::minutes(5), std::chrono::minutes(10)).open_for ==
        std::chrono::seconds(15));
  // Scaled test timing: 1 s / 3 s leaves 2 s, so at most 1 s open.
  CHECK(fit_to_idle_timeout(p, std::chrono::seconds(1), std::chrono::seconds(3)).open_for ==
        std::chrono::seconds(1));
  // Other fields are kept.
  p.min_requests = 7;
  CHECK(fit_to_idle_timeout(p, std::chrono::seconds(1), std::chrono::seconds(3)).min_requests == 7);
}
