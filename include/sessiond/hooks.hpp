#pragma once
// Hooks: the session event stream (EventBus) delivered to the login bot
// without polling, as an exec hook (a command with the event JSON on stdin
// and SESSIOND_EVENT_* variables) and a webhook (a signed POST, retried with
// backoff and full jitter). Each runs on its own threads, fed from one bus
// subscription through a bounded queue of its own (oldest dropped and counted
// when full): a stuck hook or receiver never delays a refresh, a publisher or
// the other hook. The pieces are plain functions and classes with injectable
// clocks so the policies are tested without sleeping.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "sessiond/duration.hpp"
#include "sessiond/events.hpp"

namespace sessiond {

class Metrics;

// -- pieces (hooks.cpp) --------------------------------------------------------

// --hook-exec's value: a JSON array of strings (what a config file's array
// becomes) or words separated by spaces (no shell quoting). ConfigError-free:
// std::invalid_argument on an empty command or a malformed array.
std::vector<std::string> parse_hook_command(const std::string& text);

// The exec hook's whole environment: PATH (a default when unset), HOME, LANG
// and TZ when set in sessiond's environment, and SESSIOND_EVENT_ID, _TYPE,
// _SESSION, _STATE, _PREVIOUS_STATE. Nothing else of sessiond's environment
// (never SESSIOND_ADMIN_TOKEN or other secrets).
std::vector<std::string> hook_environment(const SessionEvent& e);

// HMAC-SHA256 of `body` with `key`, lower-case hex (OpenSSL).
std::string hmac_sha256_hex(const std::string& key, const std::string& body);

// Whether a failed webhook POST is worth retrying: transport errors (status
// 0), 408, 429 and 5xx are; any other non-2xx status is not.
bool webhook_status_retryable(long status);

// Webhook retry policy: "full jitter" exponential backoff (AWS architecture
// blog): delay before retry n (1-based) = u * min(cap, base * 2^(n-1)),
// u uniform in [0, 1), within a total window from the event's enqueueing.
struct RetrySchedule {
  Millis base{1000};
  Millis cap{60000};
  Millis window{600000};  // --webhook-retry-max
};
Millis full_jitter_delay(const RetrySchedule& s, int retry, double u);
// When to try again after failed attempt number `attempt` (1-based) at `now`
// of an event enqueued at `enqueued`: now + the jittered delay, but never
// after the window ends (a last try at its end); nullopt once an attempt at
// or after the window's end failed.
using SteadyTime = std::chrono::steady_clock::time_point;
std::optional<SteadyTime> next_retry_at(const RetrySchedule& s, SteadyTime enqueued, SteadyTime now,
                                        int attempt, double u);

// A bounded FIFO of events for one hook. Full: the oldest is dropped (the
// newest state matters most to the bot) and counted. Thread-safe.
class HookQueue {
 public:
  struct Item {
    SessionEvent event;
    SteadyTime enqueued{};
  };
  // Told the queue's length on construction and after every change, under
  // the queue's lock, so the last report is the current length whichever
  // threads push and pop (the sessiond_hook_queue gauge). It must not throw
  // (a popped item would be lost) nor call the queue (its lock is held).
  using DepthReport = std::function<void(std::size_t)>;
  explicit HookQueue(std::size_t limit, DepthReport on_depth = {});
  // Returns how many were dropped to make room (0 or 1).
  std::size_t push(SessionEvent e, SteadyTime now);
  // Waits up to `timeout` for an item; nullopt on timeout or once closed.
  std::optional<Item> pop(std::chrono::milliseconds timeout);
  std::size_t size() const;
  std::uint64_t dropped() const;
  // Wakes every waiting pop; later pops return nullopt at once. Returns the
  // items left undelivered (discarded).
  std::size_t close();

 private:
  void report_depth() const;  // with mutex_ held

  const std::size_t limit_;
  const DepthReport on_depth_;
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<Item> items_;
  std::uint64_t dropped_ = 0;
  bool closed_ = false;
};

// -- the webhook's delivery loop (hooks.cpp; HTTP in webhook_post.cpp) ----------

struct WebhookRequest {
  std::string url;
  std::string body;                            // the event JSON
  std::map<std::string, std::string> headers;  // Content-Type, X-Sessiond-*
};
struct WebhookResponse {
  long status = 0;    // 0: no HTTP response (connection refused, timeout, ...)
  std::string error;  // transport error text
};
// POSTs with a libcurl easy handle of its own (kept for keep-alive), never
// the refresh HTTP client: a stuck receiver must not hold a refresh slot.
class WebhookPoster {
 public:
  // `abort` is polled during the transfer (shutdown).
  WebhookPoster(Millis timeout, std::function<bool()> abort);
  ~WebhookPoster();
  WebhookPoster(const WebhookPoster&) = delete;
  WebhookPoster& operator=(const WebhookPoster&) = delete;
  WebhookResponse post(const WebhookRequest& request);

 private:
  Millis timeout_;
  std::function<bool()> abort_;
  void* curl_ = nullptr;
};

// The request for one event: the body is to_json(e).dump(); X-Sessiond-Event
// = type, X-Sessiond-Delivery = id, X-Sessiond-Signature = sha256=HMAC hex.
WebhookRequest webhook_request(const std::string& url, const std::string& secret,
                               const SessionEvent& e);

// One event's delivery with retries. Everything with a side effect is a
// callback, so tests drive it with a fake clock and a scripted receiver.
struct WebhookDelivery {
  RetrySchedule schedule;
  std::function<WebhookResponse(const WebhookRequest&)> post;
  std::function<SteadyTime()> now = [] { return std::chrono::steady_clock::now(); };
  // Waits until `t`; false: shutting down (give up at once).
  std::function<bool(SteadyTime)> wait_until;
  std::function<double()> uniform;  // [0, 1)
  // Called for every failed attempt that will be retried (metrics, logs).
  std::function<void(const WebhookResponse&, int attempt, Millis delay)> on_retry;

  struct Outcome {
    bool delivered = false;
    int attempts = 0;
    WebhookResponse last;  // the last attempt's answer
  };
  Outcome deliver(const WebhookRequest& request, SteadyTime enqueued) const;
};

// -- the hooks service (hooks.cpp) ---------------------------------------------

struct HookOptions {
  std::vector<std::string> exec;    // argv; empty: no exec hook
  Millis timeout{10000};            // an exec hook's run, one webhook POST
  std::size_t concurrency = 2;      // exec hooks running at once
  TypeFilter types;                 // empty: every type
  std::string webhook_url;          // "": no webhook
  std::string webhook_secret;       // the contents of --webhook-secret-file
  RetrySchedule retry;              // webhook retries (window: --webhook-retry-max)
  std::size_t queue_limit = 10000;  // per hook (--hook-queue)
  Metrics* metrics = nullptr;
};

class Hooks {
 public:
  Hooks(std::shared_ptr<EventBus> bus, HookOptions options);
  ~Hooks();  // stop()
  Hooks(const Hooks&) = delete;
  Hooks& operator=(const Hooks&) = delete;

  bool enabled() const { return !options_.exec.empty() || !options_.webhook_url.empty(); }
  // Subscribes and starts the threads (nothing when no hook is configured).
  void start();
  // Stops taking events, aborts waits and the webhook's transfer, stops
  // running exec hooks (SIGTERM, SIGKILL a second later), discards what is
  // still queued (logged). Idempotent.
  void stop();

 private:
  void dispatch_loop();
  void exec_loop();
  void webhook_loop();
  void run_exec(const HookQueue::Item& item);
  void count(const char* kind, const char* result, double n = 1);
  HookQueue::DepthReport depth_gauge(const char* kind) const;

  std::shared_ptr<EventBus> bus_;
  HookOptions options_;
  std::mutex subscription_mutex_;  // stop() closes it while the dispatcher may resubscribe
  std::shared_ptr<EventSubscription> subscription_;
  std::unique_ptr<HookQueue> exec_queue_;
  std::unique_ptr<HookQueue> webhook_queue_;
  std::atomic<bool> stopping_{false};
  std::mutex stop_mutex_;  // the webhook's retry wait
  std::condition_variable stop_cv_;
  std::vector<std::thread> threads_;
  bool started_ = false;
};

}  // namespace sessiond
