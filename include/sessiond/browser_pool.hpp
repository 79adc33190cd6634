#pragma once
// The browser pool: performs browser steps (browser_step.hpp) in ONE pooled
// headless Chromium driven over the DevTools pipe, from one thread of its own.
// No CAF: the daemon submits steps and gets results through callbacks.
//
// How a step runs (see browser_pool.cpp for the why):
// - Each of the max_concurrent slots owns a browser context and one page that
//   live as long as the browser: the HTTP cache, compiled scripts and the
//   renderer process survive from step to step (a fresh context per step
//   re-downloads the site's bundle; a new page starts a renderer).
// - Before a step, what the previous account left is wiped (all cookies;
//   localStorage, sessionStorage, IndexedDB, Cache Storage, service workers
//   of every origin it touched); the request's cookies and localStorage are
//   put in place before the site's scripts run; non-static requests
//   (documents, XHR, fetch) bypass the HTTP cache so no account is served
//   another's API answer. After the step the page goes to about:blank.
// - Conditions are reported by the page (MutationObserver + a binding), not
//   polled from here; cookie and localStorage changes are captured as they
//   happen, so a crash after the page renewed its token keeps the renewal.

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "sessiond/browser_process.hpp"
#include "sessiond/browser_step.hpp"
#include "sessiond/duration.hpp"

namespace sessiond {

class BrowserPool final : public BrowserRunner {
 public:
  struct Options {
    BrowserLaunchOptions launch;    // binary, extra flags
    int max_concurrent = 0;         // steps at once; 0: std::thread::hardware_concurrency()
    int recycle_after_steps = 500;  // restart the browser after this many steps
    std::uint64_t memory_cap_bytes = 1024ull
                                     << 20;  // restart above this PSS of the tree (between steps)
    // The site's politeness budget (the profile's rate_limit): a step starts
    // only with a token; waiting steps stay queued, closest deadline first.
    double rate_per_second = 0;         // 0: unlimited
    double rate_burst = 0;              // 0: one second's worth
    Millis restart_backoff_base{1000};  // after a crash or failed start, doubling
    Millis restart_backoff_max{60000};
    Millis command_timeout{15000};    // a browser-level command without a reply: the browser hangs
    Millis stop_grace{2000};          // Browser.close, then SIGKILL to the process group
    Millis close_page_timeout{5000};  // a closed page must be gone before its slot is reused
    // A new browser context for every step instead of one per slot kept
    // across steps: nothing at all survives, but every step starts with an
    // empty HTTP cache (the site's bundle downloaded and compiled each time).
    bool fresh_context_per_step = false;
    // A new page for every step instead of one page per slot reused (with
    // sessionStorage cleared by an init script before the next account's
    // page runs): costs a renderer process start per step.
    bool new_page_per_step = false;
  };

  struct Stats {
    int in_flight = 0;
    int queued = 0;
    std::uint64_t restarts = 0;  // browser (re)starts after a crash, hang or recycle
    std::uint64_t steps_logged_in = 0;
    std::uint64_t steps_logged_out = 0;
    std::uint64_t steps_transient = 0;
    std::uint64_t browser_rss_bytes = 0;  // sum of VmRSS of the browser's processes
    std::uint64_t browser_pss_bytes = 0;  // sum of Pss (what the memory cap compares)
    double browser_cpu_seconds = 0;       // CPU of the current browser tree so far
    std::chrono::microseconds last_step_duration{0};
    pid_t browser_pid = 0;  // 0: no browser running (also its process group id)
  };

  // event: "browser_started", "browser_crashed", "browser_recycled",
  // "browser_start_failed"; detail says why (never a secret). Called from the
  // pool's thread.
  using EventHook = std::function<void(const std::string& event, const std::string& detail)>;
  using Done = std::function<void(BrowserStepResult)>;

  // The browser starts lazily, with the first step: a daemon whose profiles
  // need no browser never pays for one. Sets SIGPIPE to ignored, process-wide
  // (a write to a browser that just died must fail, not kill the daemon).
  explicit BrowserPool(Options options, EventHook hook = {});
  ~BrowserPool();  // stop()
  BrowserPool(const BrowserPool&) = delete;
  BrowserPool& operator=(const BrowserPool&) = delete;

  // Thread-safe. `done` runs exactly once, on the pool's thread (after stop():
  // at once, on the caller's thread, with a transient "shutting down" result).
  // `done` must not call stop() (it would wait for its own thread).
  // Steps wait in a queue ordered by request.priority (smaller first).
  void submit(BrowserStepRequest request, Done done) override;

  // In-flight and queued steps complete as transient "shutting down"; the
  // browser is closed and its process group killed. Idempotent.
  void stop();

  Stats stats() const;  // thread-safe

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sessiond
