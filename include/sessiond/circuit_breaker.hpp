#pragma once
// A site-wide circuit breaker: when most recent requests toward the site fail
// transiently (connect errors, timeouts, 5xx, 429), stop sending for a while
// instead of hammering a site that is down, then let a single probe through
// (half-open); its success closes the circuit. Thread-safe.
//
// GuardedTransport puts it in front of an HttpTransport, GuardedBrowser in
// front of the browser pool: a request refused by the open circuit completes
// at once, unsent, as a transient failure.

#include <chrono>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "sessiond/browser_step.hpp"
#include "sessiond/http_client.hpp"
#include "sessiond/profile.hpp"

namespace sessiond {

// The policy with open_for shortened, if needed, to half of the slack between
// the refresh interval and the idle timeout: while the circuit is open no
// session is refreshed, so an open period longer than that slack would let a
// session due just before the outage pass its idle deadline before the next
// probe, even if the site came back at once.
CircuitBreakerPolicy fit_to_idle_timeout(CircuitBreakerPolicy policy, Millis interval,
                                         Millis idle_timeout);

class CircuitBreaker {
 public:
  using Clock = std::function<std::chrono::steady_clock::time_point()>;
  enum class State { closed, open, half_open };

  explicit CircuitBreaker(CircuitBreakerPolicy policy, Clock now = std::chrono::steady_clock::now);

  // May a request go out now? In half-open state only one probe at a time.
  bool allow();
  // The outcome of a request that went out.
  void record(bool ok);

  State state() const;
  bool is_open() const { return state() != State::closed; }
  // The site it guards, named in its log lines (before any request).
  void set_site(std::string site) { site_ = std::move(site); }

 private:
  struct Bucket {
    std::int64_t second = -1;
    int ok = 0;
    int failed = 0;
  };
  void trip(std::chrono::steady_clock::time_point now);

  CircuitBreakerPolicy policy_;
  Clock now_;
  std::string site_;
  mutable std::mutex mutex_;
  State state_ = State::closed;
  std::chrono::steady_clock::time_point opened_at_{};
  bool probe_in_flight_ = false;
  std::vector<Bucket> buckets_;  // one per second of the window (a ring)
};

// "closed", "open", "half_open" (/sites, the status page).
const char* to_string(CircuitBreaker::State state);

// The same breaker in front of browser steps: a step refused by the open
// circuit completes at once, `not_sent`, transient; a transient step counts
// as a failure of the site (a page that did not come up), any verdict as a
// success.
class GuardedBrowser final : public BrowserRunner {
 public:
  GuardedBrowser(BrowserRunner& inner, CircuitBreaker& breaker)
      : inner_(inner), breaker_(breaker) {}
  void submit(BrowserStepRequest request, Callback done) override;

 private:
  BrowserRunner& inner_;
  CircuitBreaker& breaker_;
};

// A response the profile would call transient: no answer, 5xx or 429.
bool site_failed(const HttpResponse& response);

// The marker of a request the open circuit did not send.
constexpr int kNotSent = -1;

class GuardedTransport final : public HttpTransport {
 public:
  GuardedTransport(HttpTransport& inner, CircuitBreaker& breaker)
      : inner_(inner), breaker_(breaker) {}
  void submit(HttpRequest request, Callback done) override;

 private:
  HttpTransport& inner_;
  CircuitBreaker& breaker_;
};

}  // namespace sessiond
