#pragma once
// One site's share of the shared HTTP client. Every site's requests go
// through its own SiteLimiter: at most max_in_flight of them in the shared
// client at once and at most rate_per_second started (a token bucket); the
// rest wait here, most urgent first (HttpRequest::priority). A slow or busy
// site fills its own queue, never the shared client's, so it cannot starve
// another site.
//
// SiteQueue decides (no threads, time passed in: unit-tested); SiteLimiter
// performs (a mutex, and a timer thread only while requests wait for a token).

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

#include "sessiond/http_client.hpp"
#include "sessiond/token_bucket.hpp"

namespace sessiond {

class SiteQueue {
 public:
  struct Pending {
    HttpRequest request;
    HttpTransport::Callback done;
    std::uint64_t seq = 0;
  };
  SiteQueue(std::size_t max_in_flight, double rate_per_second, double rate_burst,
            TokenBucket::Clock::time_point now);

  void push(HttpRequest request, HttpTransport::Callback done);
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

class SiteLimiter final : public HttpTransport {
 public:
  struct Options {
    std::size_t max_in_flight = 16;
    double rate_per_second = 0;  // 0: unlimited
    double rate_burst = 0;       // 0: one second's worth
  };
  SiteLimiter(HttpTransport& inner, Options options);
  // Stops the timer; requests still waiting complete with error "shutdown",
  // and so does every later submit. Idempotent.
  void stop();
  ~SiteLimiter() override { stop(); }
  SiteLimiter(const SiteLimiter&) = delete;
  SiteLimiter& operator=(const SiteLimiter&) = delete;

  void submit(HttpRequest request, Callback done) override;
  HttpLoad load() const;

 private:
  void pump();
  void timer_loop();

  HttpTransport& inner_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  SiteQueue queue_;                           // guarded by mu_
  TokenBucket::Clock::time_point wake_at_{};  // guarded by mu_; {}: nothing waits for a token
  bool stopping_ = false;                     // guarded by mu_
  std::thread timer_;
};

}  // namespace sessiond
