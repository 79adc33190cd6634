#pragma once
// One site's share of a shared runner: the HTTP client (SiteLimiter) or the
// browser pool (SiteBrowserLimiter). Every site's requests go through its own
// limiter: at most max_in_flight of them in the shared runner at once and at
// most rate_per_second started (a token bucket); the rest wait here, most
// urgent first (the request's priority). A slow or busy site fills its own
// queue, never the shared runner's, so it cannot starve another site.
//
// BasicSiteQueue decides (no threads, time passed in: unit-tested);
// BasicSiteLimiter performs (a mutex, and a timer thread only while requests
// wait for a token). One template for both runners: the rule is the same.

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

#include "sessiond/browser_step.hpp"
#include "sessiond/http_client.hpp"
#include "sessiond/token_bucket.hpp"

namespace sessiond {

// What a limiter needs to know of the runner it shares: the request and
// result types, and what a request still waiting at shutdown completes with.
template <class Runner>
struct SharedRunner;

template <>
struct SharedRunner<HttpTransport> {
  using Request = HttpRequest;
  using Result = HttpResponse;
  static HttpResponse shutdown_result();  // as HttpClient answers at shutdown
};

template <>
struct SharedRunner<BrowserRunner> {
  using Request = BrowserStepRequest;
  using Result = BrowserStepResult;
  static BrowserStepResult shutdown_result();  // transient, not sent
};

template <class Runner>
class BasicSiteQueue {
 public:
  using Request = typename SharedRunner<Runner>::Request;
  using Callback = typename Runner::Callback;
  struct Pending {
    Request request;
    Callback done;
    std::uint64_t seq = 0;
  };
  BasicSiteQueue(std::size_t max_in_flight, double rate_per_second, double rate_burst,
                 TokenBucket::Clock::time_point now);

  void push(Request request, Callback done);
  // The requests that may start now (each counted in flight); `wait` is set
  // to how long until a token when requests wait for one (zero otherwise).
  std::vector<Pending> take_ready(TokenBucket::Clock::time_point now,
                                  TokenBucket::Clock::duration* wait = nullptr);
  // A request that started has completed.
  void finished();
  // Everything still waiting (shutdown).
  std::vector<Pending> take_all();

  std::size_t in_flight() const { return in_flight_; }
  std::size_t queued() const { return queue_.size(); }
  std::uint64_t rate_limited_total() const { return rate_limited_total_; }
  double tokens(TokenBucket::Clock::time_point now) const { return bucket_.tokens(now); }

 private:
  std::size_t max_in_flight_;
  TokenBucket bucket_;
  std::vector<Pending> queue_;  // a heap: the smallest priority, then the oldest, on top
  std::uint64_t next_seq_ = 0;
  std::size_t in_flight_ = 0;
  std::uint64_t rate_limited_total_ = 0;
  std::uint64_t last_limited_seq_ = UINT64_MAX;  // counted once per waiting request
};

template <class Runner>
class BasicSiteLimiter final : public Runner {
 public:
  using Request = typename SharedRunner<Runner>::Request;
  using Callback = typename Runner::Callback;
  struct Options {
    std::size_t max_in_flight = 16;
    double rate_per_second = 0;  // 0: unlimited
    double rate_burst = 0;       // 0: one second's worth
  };
  BasicSiteLimiter(Runner& inner, Options options);
  // Stops the timer; requests still waiting complete with the shutdown
  // result, and so does every later submit. Idempotent.
  void stop();
  ~BasicSiteLimiter() override { stop(); }
  BasicSiteLimiter(const BasicSiteLimiter&) = delete;
  BasicSiteLimiter& operator=(const BasicSiteLimiter&) = delete;

  void submit(Request request, Callback done) override;
  HttpLoad load() const;  // in flight, queued, tokens, rate-limited total

 private:
  void pump();
  void timer_loop();

  Runner& inner_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  BasicSiteQueue<Runner> queue_;              // guarded by mu_
  TokenBucket::Clock::time_point wake_at_{};  // guarded by mu_; {}: nothing waits for a token
  bool stopping_ = false;                     // guarded by mu_
  std::thread timer_;
};

extern template class BasicSiteQueue<HttpTransport>;
extern template class BasicSiteQueue<BrowserRunner>;
extern template class BasicSiteLimiter<HttpTransport>;
extern template class BasicSiteLimiter<BrowserRunner>;

using SiteQueue = BasicSiteQueue<HttpTransport>;
using SiteLimiter = BasicSiteLimiter<HttpTransport>;
using SiteBrowserQueue = BasicSiteQueue<BrowserRunner>;
using SiteBrowserLimiter = BasicSiteLimiter<BrowserRunner>;

}  // namespace sessiond
