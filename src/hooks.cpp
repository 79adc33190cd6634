#include "sessiond/hooks.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <cstdlib>
#include <random>
#include <sstream>
#include <stdexcept>

#include "sessiond/json_log.hpp"
#include "sessiond/metrics.hpp"
#include "sessiond/process_runner.hpp"
#include "sessiond/thread_name.hpp"

namespace sessiond {

namespace {

// How long the dispatcher waits on the bus before checking for shutdown.
constexpr auto kPollStep = std::chrono::milliseconds(200);
// The bus subscription only has to absorb a burst between two of the
// dispatcher's wake-ups: it moves events into the hooks' own queues at once.
constexpr std::size_t kSubscriptionLimit = 100000;
// Of a failed hook's stderr tail, what goes into the log line.
constexpr std::size_t kLoggedStderrBytes = 1024;

std::string tail(const std::string& text, std::size_t n) {
  return text.size() <= n ? text : text.substr(text.size() - n);
}

}  // namespace

// -- pieces ------------------------------------------------------------------------

std::vector<std::string> parse_hook_command(const std::string& text) {
  std::vector<std::string> argv;
  const auto first = text.find_first_not_of(" \t\r\n");
  if (first != std::string::npos && text[first] == '[') {
    auto doc = nlohmann::json::parse(text, nullptr, false);
    if (doc.is_discarded() || !doc.is_array())
      throw std::invalid_argument("expected a JSON array of strings");
    for (const auto& a : doc) {
      if (!a.is_string()) throw std::invalid_argument("expected a JSON array of strings");
      argv.push_back(a.get<std::string>());
    }
  } else {
    std::istringstream words(text);
    for (std::string w; words >> w;) argv.push_back(w);
  }
  if (argv.empty() || argv.front().empty()) throw std::invalid_argument("empty command");
  return argv;
}

std::vector<std::string> hook_environment(const SessionEvent& e) {
  std::vector<std::string> env = base_child_environment();
  env.push_back("SESSIOND_EVENT_ID=" + std::to_string(e.id));
  env.push_back("SESSIOND_EVENT_TYPE=" + e.type);
  env.push_back("SESSIOND_EVENT_SESSION=" + e.session);
  env.push_back("SESSIOND_EVENT_SITE=" + e.site);
  env.push_back("SESSIOND_EVENT_STATE=" + e.state);
  env.push_back("SESSIOND_EVENT_PREVIOUS_STATE=" + e.previous_state);
  return env;
}

std::string hmac_sha256_hex(const std::string& key, const std::string& body) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (!HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
            reinterpret_cast<const unsigned char*>(body.data()), body.size(), digest, &len))
    throw std::runtime_error("HMAC-SHA256 failed");
  static const char* hex = "0123456789abcdef";
  std::string out;
  out.reserve(len * 2);
  for (unsigned int i = 0; i < len; ++i) {
    out += hex[digest[i] >> 4];
    out += hex[digest[i] & 0xf];
  }
  return out;
}

bool webhook_status_retryable(long status) {
  return status == 0 || status == 408 || status == 429 || status >= 500;
}

Millis full_jitter_delay(const RetrySchedule& s, int retry, double u) {
  // base * 2^(retry-1), capped, without overflowing for large retry counts.
  long long ceiling = std::max<long long>(0, s.base.count());
  for (int i = 1; i < retry && ceiling < s.cap.count(); ++i) ceiling *= 2;
  ceiling = std::min<long long>(ceiling, s.cap.count());
  u = std::clamp(u, 0.0, 1.0);
  return Millis(static_cast<long long>(u * static_cast<double>(ceiling)));
}

std::optional<SteadyTime> next_retry_at(const RetrySchedule& s, SteadyTime enqueued, SteadyTime now,
                                        int attempt, double u) {
  const SteadyTime end = enqueued + s.window;
  if (now >= end) return std::nullopt;
  return std::min(now + full_jitter_delay(s, attempt, u), end);
}

// -- HookQueue -----------------------------------------------------------------------

HookQueue::HookQueue(std::size_t limit, DepthReport on_depth)
    : limit_(std::max<std::size_t>(1, limit)), on_depth_(std::move(on_depth)) {
  report_depth();
}

void HookQueue::report_depth() const {
  if (on_depth_) on_depth_(items_.size());
}

std::size_t HookQueue::push(SessionEvent e, SteadyTime now) {
  std::size_t dropped = 0;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (closed_) return 0;
    while (items_.size() >= limit_) {
      items_.pop_front();
      ++dropped;
    }
    dropped_ += dropped;
    items_.push_back(Item{std::move(e), now});
    report_depth();
  }
  cv_.notify_one();
  return dropped;
}

std::optional<HookQueue::Item> HookQueue::pop(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mutex_);
  cv_.wait_for(lock, timeout, [this] { return closed_ || !items_.empty(); });
  if (closed_ || items_.empty()) return std::nullopt;
  Item item = std::move(items_.front());
  items_.pop_front();
  report_depth();
  return item;
}

std::size_t HookQueue::size() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return items_.size();
}

std::uint64_t HookQueue::dropped() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return dropped_;
}

std::size_t HookQueue::close() {
  std::size_t left = 0;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    closed_ = true;
    left = items_.size();
    items_.clear();
    report_depth();
  }
  cv_.notify_all();
  return left;
}

// -- the webhook's delivery ------------------------------------------------------------

WebhookRequest webhook_request(const std::string& url, const std::string& secret,
                               const SessionEvent& e) {
  WebhookRequest r;
  r.url = url;
  r.body = to_json(e).dump();
  r.headers["Content-Type"] = "application/json";
  r.headers["X-Sessiond-Event"] = e.type;
  r.headers["X-Sessiond-Delivery"] = std::to_string(e.id);
  r.headers["X-Sessiond-Signature"] = "sha256=" + hmac_sha256_hex(secret, r.body);
  return r;
}

WebhookDelivery::Outcome WebhookDelivery::deliver(const WebhookRequest& request,
                                                  SteadyTime enqueued) const {
  Outcome out;
  for (;;) {
    out.last = post(request);
    ++out.attempts;
    if (out.last.status >= 200 && out.last.status < 300) {
      out.delivered = true;
      return out;
    }
    if (!webhook_status_retryable(out.last.status)) return out;
    const SteadyTime t = now();
    auto next = next_retry_at(schedule, enqueued, t, out.attempts, uniform());
    if (!next) return out;
    if (on_retry) on_retry(out.last, out.attempts, std::chrono::duration_cast<Millis>(*next - t));
    if (!wait_until(*next)) return out;
  }
}

// -- Hooks -----------------------------------------------------------------------------

Hooks::Hooks(std::shared_ptr<EventBus> bus, HookOptions options)
    : bus_(std::move(bus)), options_(std::move(options)) {}

Hooks::~Hooks() {
  stop();
}

void Hooks::count(const char* kind, const char* result, double n) {
  if (options_.metrics && n > 0) options_.metrics->hook_delivery(kind, result, n);
}

HookQueue::DepthReport Hooks::depth_gauge(const char* kind) const {
  if (!options_.metrics) return {};
  return [metrics = options_.metrics, kind](std::size_t n) {
    metrics->set_hook_queue(kind, static_cast<double>(n));
  };
}

void Hooks::start() {
  if (started_ || !enabled() || !bus_) return;
  started_ = true;
  subscription_ = bus_->subscribe(options_.types, std::nullopt, kSubscriptionLimit);
  if (!options_.exec.empty())
    exec_queue_ = std::make_unique<HookQueue>(options_.queue_limit, depth_gauge("exec"));
  if (!options_.webhook_url.empty())
    webhook_queue_ = std::make_unique<HookQueue>(options_.queue_limit, depth_gauge("webhook"));
  if (options_.metrics)  // every series from the start, at 0
    for (const char* kind : {"exec", "webhook"})
      if ((kind[0] == 'e' && exec_queue_) || (kind[0] == 'w' && webhook_queue_))
        for (const char* result : {"ok", "failed", "retried", "dropped"})
          options_.metrics->hook_delivery(kind, result, 0);
  threads_.push_back(start_named_thread("sd-hooks", [this] { dispatch_loop(); }));
  if (exec_queue_)
    for (std::size_t i = 0; i < std::max<std::size_t>(1, options_.concurrency); ++i)
      threads_.push_back(start_named_thread("sd-hook-exec", [this] { exec_loop(); }));
  if (webhook_queue_)
    threads_.push_back(start_named_thread("sd-webhook", [this] { webhook_loop(); }));
}

void Hooks::stop() {
  if (!started_ || stopping_.exchange(true)) return;
  {
    std::lock_guard<std::mutex> lock(subscription_mutex_);
    if (subscription_) subscription_->close();
  }
  {
    std::lock_guard<std::mutex> lock(stop_mutex_);  // a retry wait sees stopping_
  }
  stop_cv_.notify_all();
  std::size_t discarded = 0;
  if (exec_queue_) discarded += exec_queue_->close();
  if (webhook_queue_) discarded += webhook_queue_->close();
  for (auto& t : threads_)
    if (t.joinable()) t.join();
  threads_.clear();
  if (discarded > 0)
    log::warn("hooks_stopped", "shutdown: queued hook deliveries discarded",
              {{"discarded", discarded}});
}

void Hooks::dispatch_loop() {
  std::uint64_t last_id = 0;
  while (!stopping_) {
    std::shared_ptr<EventSubscription> sub;
    {
      std::lock_guard<std::mutex> lock(subscription_mutex_);
      sub = subscription_;
    }
    auto batch = sub->wait(kPollStep, 1024);
    const auto now = std::chrono::steady_clock::now();
    for (auto& e : batch) {
      if (e.type == "reset") {
        // Only after a resubscription below: events were lost in between.
        log::warn("hook_events_lost",
                  "hooks missed events (the bus no longer held them): " + e.reason);
        continue;
      }
      last_id = e.id;
      if (exec_queue_) count("exec", "dropped", static_cast<double>(exec_queue_->push(e, now)));
      if (webhook_queue_)
        count("webhook", "dropped", static_cast<double>(webhook_queue_->push(e, now)));
    }
    if (sub->closed() && !sub->dropped()) {
      // The bus closed it (shutdown): wait for stop() instead of spinning.
      std::unique_lock<std::mutex> lock(stop_mutex_);
      stop_cv_.wait_for(lock, kPollStep, [this] { return stopping_.load(); });
      continue;
    }
    if (sub->dropped()) {
      // A burst beyond kSubscriptionLimit between two wake-ups: resume from
      // the bus's ring after the last event taken.
      std::lock_guard<std::mutex> lock(subscription_mutex_);
      if (stopping_) break;
      log::warn("hook_subscription_dropped", "hooks fell behind the event bus; resubscribing");
      subscription_ = bus_->subscribe(
          options_.types, last_id ? std::optional<std::uint64_t>(last_id) : std::nullopt,
          kSubscriptionLimit);
    }
  }
}

void Hooks::exec_loop() {
  while (!stopping_) {
    auto item = exec_queue_->pop(kPollStep);
    if (!item) continue;
    run_exec(*item);
  }
}

void Hooks::run_exec(const HookQueue::Item& item) {
  const SessionEvent& e = item.event;
  ProcessOptions po;
  po.env = hook_environment(e);
  po.stdin_data = to_json(e).dump() + "\n";
  po.cancel = &stopping_;  // shutdown does not wait for a hook that hangs
  const auto started = std::chrono::steady_clock::now();
  ProcessResult r = run_process(options_.exec, options_.timeout, po);
  const auto ms = std::chrono::duration_cast<Millis>(std::chrono::steady_clock::now() - started);
  nlohmann::json fields = {{"kind", "exec"},
                           {"event_id", e.id},
                           {"type", e.type},
                           {"session", e.session},
                           {"duration_ms", ms.count()}};
  if (r.started && !r.timed_out && r.signal == 0 && r.exit_code == 0) {
    count("exec", "ok");
    log::debug("hook_ok", "exec hook ran", fields);
    return;
  }
  count("exec", "failed");
  fields["error"] = r.error;
  if (r.started) {
    fields["exit_code"] = r.exit_code;
    if (r.signal) fields["signal"] = r.signal;
    fields["stderr_tail"] = tail(r.stderr_tail, kLoggedStderrBytes);
  }
  log::warn("hook_failed", "exec hook failed", fields);
}

void Hooks::webhook_loop() {
  WebhookPoster poster(options_.timeout, [this] { return stopping_.load(); });
  std::mt19937_64 rng(std::random_device{}());
  std::uniform_real_distribution<double> dist(0.0, 1.0);
  WebhookDelivery d;
  d.schedule = options_.retry;
  d.post = [&poster](const WebhookRequest& r) { return poster.post(r); };
  d.wait_until = [this](SteadyTime t) {
    std::unique_lock<std::mutex> lock(stop_mutex_);
    stop_cv_.wait_until(lock, t, [this] { return stopping_.load(); });
    return !stopping_;
  };
  d.uniform = [&] { return dist(rng); };
  const SessionEvent* current = nullptr;
  d.on_retry = [this, &current](const WebhookResponse& r, int attempt, Millis delay) {
    count("webhook", "retried");
    log::debug("hook_retry", "webhook delivery failed; retrying",
               {{"kind", "webhook"},
                {"event_id", current ? current->id : 0},
                {"attempt", attempt},
                {"status", r.status},
                {"error", r.error},
                {"retry_in_ms", delay.count()}});
  };
  while (!stopping_) {
    auto item = webhook_queue_->pop(kPollStep);
    if (!item) continue;
    current = &item->event;
    const auto started = std::chrono::steady_clock::now();
    auto out =
        d.deliver(webhook_request(options_.webhook_url, options_.webhook_secret, item->event),
                  item->enqueued);
    const auto ms = std::chrono::duration_cast<Millis>(std::chrono::steady_clock::now() - started);
    nlohmann::json fields = {{"kind", "webhook"},        {"event_id", item->event.id},
                             {"type", item->event.type}, {"session", item->event.session},
                             {"attempts", out.attempts}, {"duration_ms", ms.count()},
                             {"status", out.last.status}};
    current = nullptr;
    if (out.delivered) {
      count("webhook", "ok");
      log::debug("hook_ok", "webhook delivered", fields);
      continue;
    }
    count("webhook", "failed");
    if (!out.last.error.empty()) fields["error"] = out.last.error;
    log::warn("hook_failed",
              stopping_ ? "webhook not delivered (shutdown)" : "webhook not delivered", fields);
  }
}

}  // namespace sessiond
