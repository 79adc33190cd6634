#include "sessiond/site_limiter.hpp"

#include <algorithm>

#include "sessiond/thread_name.hpp"

namespace sessiond {
namespace {

template <class Pending>
bool later(const Pending& a, const Pending& b) {
  if (a.request.priority != b.request.priority) return a.request.priority > b.request.priority;
  return a.seq > b.seq;
}

// What HttpClient answers at shutdown (CURLE_ABORTED_BY_CALLBACK).
constexpr int kShutdownCode = 42;

}  // namespace

HttpResponse SharedRunner<HttpTransport>::shutdown_result() {
  HttpResponse r;
  r.curl_code = kShutdownCode;
  r.error = "shutdown";
  return r;
}

BrowserStepResult SharedRunner<BrowserRunner>::shutdown_result() {
  BrowserStepResult r;
  r.verdict = BrowserStepResult::Verdict::transient;
  r.detail = "shutting down";
  r.not_sent = true;
  return r;
}

template <class Runner>
BasicSiteQueue<Runner>::BasicSiteQueue(std::size_t max_in_flight, double rate_per_second,
                                       double rate_burst, TokenBucket::Clock::time_point now)
    : max_in_flight_(std::max<std::size_t>(1, max_in_flight)),
      bucket_(rate_per_second, rate_burst, now) {}

template <class Runner>
void BasicSiteQueue<Runner>::push(Request request, Callback done) {
  queue_.push_back(Pending{std::move(request), std::move(done), next_seq_++});
  std::push_heap(queue_.begin(), queue_.end(), later<Pending>);
}

template <class Runner>
std::vector<typename BasicSiteQueue<Runner>::Pending> BasicSiteQueue<Runner>::take_ready(
    TokenBucket::Clock::time_point now, TokenBucket::Clock::duration* wait) {
  std::vector<Pending> out;
  if (wait) *wait = TokenBucket::Clock::duration::zero();
  while (!queue_.empty() && in_flight_ < max_in_flight_) {
    if (!bucket_.try_take(now)) {
      if (queue_.front().seq != last_limited_seq_) {
        last_limited_seq_ = queue_.front().seq;
        ++rate_limited_total_;
      }
      if (wait) *wait = std::max(bucket_.wait(now), TokenBucket::Clock::duration(1));
      break;
    }
    std::pop_heap(queue_.begin(), queue_.end(), later<Pending>);
    out.push_back(std::move(queue_.back()));
    queue_.pop_back();
    ++in_flight_;
  }
  return out;
}

template <class Runner>
void BasicSiteQueue<Runner>::finished() {
  if (in_flight_ > 0) --in_flight_;
}

template <class Runner>
std::vector<typename BasicSiteQueue<Runner>::Pending> BasicSiteQueue<Runner>::take_all() {
  std::vector<Pending> out;
  out.swap(queue_);
  return out;
}

template <class Runner>
BasicSiteLimiter<Runner>::BasicSiteLimiter(Runner& inner, Options options)
    : inner_(inner),
      queue_(options.max_in_flight, options.rate_per_second, options.rate_burst,
             TokenBucket::Clock::now()) {
  if (options.rate_per_second > 0)
    timer_ = start_named_thread("sd-ratelimit", [this] { timer_loop(); });
}

template <class Runner>
void BasicSiteLimiter<Runner>::stop() {
  std::vector<typename BasicSiteQueue<Runner>::Pending> rest;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    stopping_ = true;
    rest = queue_.take_all();
  }
  cv_.notify_all();
  if (timer_.joinable()) timer_.join();
  for (auto& p : rest) p.done(SharedRunner<Runner>::shutdown_result());
}

template <class Runner>
void BasicSiteLimiter<Runner>::submit(Request request, Callback done) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!stopping_) {
      queue_.push(std::move(request), std::move(done));
      done = nullptr;
    }
  }
  if (done) {  // stopped: completes at once, outside the lock (it may submit again)
    done(SharedRunner<Runner>::shutdown_result());
    return;
  }
  pump();
}

// Starts what may start, outside the lock (the inner client may complete a
// request at once, on this thread, and that completion pumps again).
template <class Runner>
void BasicSiteLimiter<Runner>::pump() {
  std::vector<typename BasicSiteQueue<Runner>::Pending> ready;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    TokenBucket::Clock::duration wait{};
    auto now = TokenBucket::Clock::now();
    ready = queue_.take_ready(now, &wait);
    bool was_waiting = wake_at_ != TokenBucket::Clock::time_point{};
    wake_at_ =
        wait > TokenBucket::Clock::duration::zero() ? now + wait : TokenBucket::Clock::time_point{};
    if (wake_at_ != TokenBucket::Clock::time_point{} && !was_waiting) cv_.notify_all();
  }
  for (auto& p : ready) {
    auto done = std::move(p.done);
    inner_.submit(std::move(p.request),
                  [this, done = std::move(done)](typename SharedRunner<Runner>::Result r) {
                    {
                      std::lock_guard<std::mutex> lock(mu_);
                      queue_.finished();
                    }
                    done(std::move(r));
                    pump();
                  });
  }
}

template <class Runner>
void BasicSiteLimiter<Runner>::timer_loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    if (wake_at_ == TokenBucket::Clock::time_point{}) {
      cv_.wait(lock);
      continue;
    }
    if (cv_.wait_until(lock, wake_at_) == std::cv_status::timeout) {
      lock.unlock();
      pump();
      lock.lock();
    }
  }
}

template <class Runner>
HttpLoad BasicSiteLimiter<Runner>::load() const {
  std::lock_guard<std::mutex> lock(mu_);
  HttpLoad out;
  out.in_flight = queue_.in_flight();
  out.queued = queue_.queued();
  out.rate_limit_tokens = queue_.tokens(TokenBucket::Clock::now());
  out.rate_limited_total = queue_.rate_limited_total();
  return out;
}

template class BasicSiteQueue<HttpTransport>;
template class BasicSiteQueue<BrowserRunner>;
template class BasicSiteLimiter<HttpTransport>;
template class BasicSiteLimiter<BrowserRunner>;

}  // namespace sessiond
