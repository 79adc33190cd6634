#include "sessiond/circuit_breaker.hpp"

#include <algorithm>

#include "sessiond/json_log.hpp"

namespace sessiond {

CircuitBreakerPolicy fit_to_idle_timeout(CircuitBreakerPolicy policy, Millis interval,
                                         Millis idle_timeout) {
  const Millis limit = std::max(Millis(1), (idle_timeout - interval) / 2);
  policy.open_for = std::min(policy.open_for, limit);
  return policy;
}

CircuitBreaker::CircuitBreaker(CircuitBreakerPolicy policy, Clock now)
    : policy_(policy), now_(std::move(now)) {
  auto seconds = std::max<std::int64_t>(
      1, std::chrono::duration_cast<std::chrono::seconds>(policy_.window).count());
  buckets_.resize(static_cast<std::size_t>(seconds));
}

CircuitBreaker::State CircuitBreaker::state() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return state_;
}

bool CircuitBreaker::allow() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (state_ == State::closed) return true;
  auto now = now_();
  if (state_ == State::open && now - opened_at_ >= policy_.open_for) {
    state_ = State::half_open;
    probe_in_flight_ = false;
  }
  if (state_ == State::half_open && !probe_in_flight_) {
    probe_in_flight_ = true;  // exactly one probe
    return true;
  }
  return false;
}

void CircuitBreaker::trip(std::chrono::steady_clock::time_point now) {
  state_ = State::open;
  opened_at_ = now;
  probe_in_flight_ = false;
}

void CircuitBreaker::record(bool ok) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto now = now_();
  if (state_ == State::half_open) {
    if (ok) {
      state_ = State::closed;
      for (auto& b : buckets_) b = Bucket{};
      log::info("circuit_closed", "site answers again; circuit breaker closed", {{"site", site_}});
    } else {
      trip(now);
      log::warn("circuit_open", "probe failed; circuit breaker stays open",
                {{"site", site_}, {"open_for_ms", policy_.open_for.count()}});
    }
    return;
  }
  if (state_ == State::open) return;  // a straggler sent before the circuit opened
  auto second = std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
  auto& b = buckets_[static_cast<std::size_t>(second) % buckets_.size()];
  if (b.second != second) b = Bucket{second, 0, 0};
  (ok ? b.ok : b.failed)++;
  int total = 0, failed = 0;
  const auto oldest = second - static_cast<std::int64_t>(buckets_.size()) + 1;
  for (const auto& x : buckets_)
    if (x.second >= oldest) {
      total += x.ok + x.failed;
      failed += x.failed;
    }
  if (total >= policy_.min_requests && failed >= policy_.failure_ratio * total) {
    trip(now);
    log::warn("circuit_open", "most requests to the site fail; holding requests back",
              {{"site", site_},
               {"failed", failed},
               {"requests", total},
               {"open_for_ms", policy_.open_for.count()}});
  }
}

bool site_failed(const HttpResponse& r) {
  return !r.transport_ok() || r.status == 0 || r.status == 429 || r.status >= 500;
}

void GuardedTransport::submit(HttpRequest request, Callback done) {
  if (!breaker_.allow()) {
    HttpResponse r;
    r.curl_code = kNotSent;
    r.error = "circuit breaker open: the site is failing, request not sent";
    done(std::move(r));
    return;
  }
  CircuitBreaker* breaker = &breaker_;
  inner_.submit(std::move(request), [breaker, done = std::move(done)](HttpResponse r) {
    breaker->record(!site_failed(r));
    done(std::move(r));
  });
}

void GuardedBrowser::submit(BrowserStepRequest request, Callback done) {
  if (!breaker_.allow()) {
    BrowserStepResult r;
    r.not_sent = true;
    r.detail = "circuit breaker open: the site is failing, page not loaded";
    done(std::move(r));
    return;
  }
  CircuitBreaker* breaker = &breaker_;
  inner_.submit(std::move(request), [breaker, done = std::move(done)](BrowserStepResult r) {
    if (!r.not_sent) breaker->record(r.verdict != BrowserStepResult::Verdict::transient);
    done(std::move(r));
  });
}

const char* to_string(CircuitBreaker::State state) {
  switch (state) {
    case CircuitBreaker::State::closed:
      return "closed";
    case CircuitBreaker::State::open:
      return "open";
    case CircuitBreaker::State::half_open:
      return "half_open";
  }
  return "closed";
}

}  // namespace sessiond
