// The browser pool (see browser_pool.hpp): one thread, one Chromium, poll()
// on the DevTools pipe, every step a chain of protocol callbacks.
//
// Why one long-lived browser context and ONE reused page per slot (measured
// with bench/browser_step.cpp on 2 cores: a page that runs a 1 MB bundle of
// 8,700 small functions, 32 steps over 4 accounts, CPU of the whole browser
// tree per step):
//   fresh context per step          0.24 CPU-s, the bundle downloaded every step
//   context per slot, new page      0.21 CPU-s (a renderer process per step)
//   context and page per slot       0.085-0.10 CPU-s, bundle from the HTTP cache
// A fresh context starts with an empty HTTP cache; a new page starts a new
// renderer. Reuse keeps both, so what the context and the page keep between
// accounts is wiped before each step:
// - cookies of every domain (Storage.clearCookies);
// - localStorage, sessionStorage, IndexedDB, Cache Storage, service workers
//   of every origin an earlier step touched (Storage.clearDataForOrigin
//   "all"; sessionStorage is also cleared by the first init script that runs
//   for such an origin, since the tab keeps its own);
// - the old document ends before the next account's wipe (the page goes to
//   about:blank between steps), and its JS heap goes with it;
// - the HTTP cache only ever serves static subresources: documents, XHR and
//   fetch requests are sent with "Cache-Control: no-cache" through Fetch
//   interception, which makes Chromium bypass the cache for them.
// The isolation test in tests/unit/test_browser_pool.cpp fails without the
// wipe or without the cache bypass. Options::new_page_per_step and
// fresh_context_per_step select the costlier modes.

#include "sessiond/browser_pool.hpp"

#include "sessiond/token_bucket.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "sessiond/devtools.hpp"
#include "sessiond/storage_state.hpp"
#include "sessiond/thread_name.hpp"

namespace sessiond {

namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;
using Verdict = BrowserStepResult::Verdict;
using devtools::Reply;

constexpr const char kBinding[] = "__sessiondReport";
// Network idle as Playwright defines it: no request in flight for 500 ms.
constexpr auto kNetworkIdle = std::chrono::milliseconds(500);
// After a verdict, the last reads (cookies, localStorage) get this long even
// when the step's own deadline has passed.
constexpr auto kCaptureGrace = std::chrono::milliseconds(3000);
// Browser memory is read from /proc at most this often (it walks /proc).
constexpr auto kUsageInterval = std::chrono::seconds(2);

// scheme://host[:port] of an absolute URL ("" when it has none).
std::string origin_of(const std::string& url) {
  const auto scheme_end = url.find("://");
  if (scheme_end == std::string::npos) return "";
  const std::string scheme = url.substr(0, scheme_end);
  if (scheme != "http" && scheme != "https") return "";
  auto host_end = url.find_first_of("/?#", scheme_end + 3);
  std::string authority =
      url.substr(scheme_end + 3,
                 host_end == std::string::npos ? std::string::npos : host_end - scheme_end - 3);
  const auto at = authority.rfind('@');
  if (at != std::string::npos) authority.erase(0, at + 1);
  if (authority.empty()) return "";
  return scheme + "://" + authority;
}

json condition_json(const PageCondition& c) {
  json j = json::object();
  if (c.selector) j["selector"] = *c.selector;
  if (c.text) j["text"] = *c.text;
  if (c.url_contains) j["url_contains"] = *c.url_contains;
  return j;
}

// Fills a script template's placeholders in one pass: a value (a session
// file's localStorage, origin or page text) that contains another
// placeholder's name is copied as it is, never filled in turn.
std::string fill(const std::string& tmpl,
                 std::initializer_list<std::pair<const char*, std::string>> values) {
  std::string out;
  std::size_t pos = 0;
  while (pos < tmpl.size()) {
    std::size_t best = std::string::npos;
    const std::pair<const char*, std::string>* which = nullptr;
    for (const auto& v : values) {
      const auto at = tmpl.find(v.first, pos);
      if (at < best) {
        best = at;
        which = &v;
      }
    }
    if (!which) break;
    out.append(tmpl, pos, best - pos);
    out += which->second;
    pos = best + std::char_traits<char>::length(which->first);
  }
  out.append(tmpl, std::min(pos, tmpl.size()), std::string::npos);
  return out;
}

// JSON text safe inside a <script>-less JS source: U+2028/9 are valid JSON
// but end a line in older JS; dump() leaves them as UTF-8, harmless in
// modern V8. Invalid UTF-8 from a session file is replaced, never thrown.
std::string js_literal(const json& j) {
  return j.dump(-1, ' ', true, json::error_handler_t::replace);
}

// Prepares one origin before the page's own scripts run: clears the tab's
// sessionStorage of an earlier account (a reused page keeps it) and puts the
// request's localStorage in place. Removed once it reported (a reload later
// in the step must not undo what the page wrote).
std::string seed_script(const std::string& origin, const json& items, bool clear_session) {
  static const std::string kTemplate = R"JS((() => {
  const origin = ORIGIN, items = ITEMS;
  if (location.origin !== origin) return;
  if (CLEAR) try { Storage.prototype.clear.call(window.sessionStorage); } catch (e) {}
  try {
    const ls = window.localStorage;
    for (const [k, v] of items) Storage.prototype.setItem.call(ls, k, v);
  } catch (e) {}
  try { window.BINDING(JSON.stringify({k: 'seeded', origin})); } catch (e) {}
})();)JS";
  return fill(kTemplate, {{"ORIGIN", js_literal(origin)},
                          {"ITEMS", js_literal(items)},
                          {"CLEAR", clear_session ? "true" : "false"},
                          {"BINDING", kBinding}});
}

// Reports localStorage writes (whole origin, synchronously: the report is on
// the pipe before the page can do anything else), document.cookie writes, and
// in the top frame the state of the conditions, on every DOM mutation and
// client-side route change (throttled; a slow timer as a safety net).
std::string tracker_script(const BrowserStepSpec& spec) {
  json conditions = {{"wait_for", json::array()}, {"logged_out", json::array()}};
  for (const auto& c : spec.wait_for) conditions["wait_for"].push_back(condition_json(c));
  for (const auto& c : spec.logged_out) conditions["logged_out"].push_back(condition_json(c));
  static const std::string kTemplate = R"JS((() => {
  const report = window.BINDING;
  if (typeof report !== 'function' || window.__sessiondTracked) return;
  Object.defineProperty(window, '__sessiondTracked', {value: true});
  const send = (o) => { try { report(JSON.stringify(o)); } catch (e) {} };
  try {
    const ls = window.localStorage;
    const proto = Storage.prototype, key = proto.key, get = proto.getItem;
    const dump = () => {
      const items = [];
      for (let i = 0; i < ls.length; ++i) { const k = key.call(ls, i); items.push([k, get.call(ls, k)]); }
      return items;
    };
    for (const name of ['setItem', 'removeItem', 'clear']) {
      const orig = proto[name];
      Object.defineProperty(proto, name, {configurable: true, writable: true, value: function(...args) {
        const r = orig.apply(this, args);
        if (this === ls) send({k: 'ls', origin: location.origin, items: dump()});
        return r;
      }});
    }
  } catch (e) {}
  try {
    const d = Object.getOwnPropertyDescriptor(Document.prototype, 'cookie');
    if (d && d.set) Object.defineProperty(Document.prototype, 'cookie', {configurable: true,
      get: d.get, set(v) { d.set.call(this, v); send({k: 'cookie'}); }});
  } catch (e) {}
  if (window.top !== window || !/^https?:$/.test(location.protocol)) return;
  const C = CONDITIONS;
  const holds = (c) => {
    try {
      if (c.url_contains != null && !location.href.includes(c.url_contains)) return false;
      if (c.selector != null && document.querySelector(c.selector) === null) return false;
      if (c.text != null && !(document.body && document.body.innerText.includes(c.text))) return false;
      return true;
    } catch (e) { return false; }
  };
  let last = '';
  const check = () => {
    const out = C.logged_out.findIndex(holds);
    const inside = C.wait_for.length > 0 && C.wait_for.every(holds);
    const now = out + '|' + inside;
    if (now !== last) { last = now; send({k: 'cond', out, in: inside}); }
  };
  let timer = 0;
  const schedule = () => { if (!timer) timer = setTimeout(() => { timer = 0; check(); }, 30); };
  new MutationObserver(schedule).observe(document,
    {subtree: true, childList: true, characterData: true, attributes: true});
  for (const name of ['pushState', 'replaceState']) {
    const orig = history[name];
    history[name] = function(...args) { const r = orig.apply(this, args); schedule(); return r; };
  }
  addEventListener('popstate', schedule);
  addEventListener('hashchange', schedule);
  addEventListener('DOMContentLoaded', schedule);
  addEventListener('load', schedule);
  setInterval(check, 500);
  check();
})();)JS";
  return fill(kTemplate, {{"CONDITIONS", js_literal(conditions)}, {"BINDING", kBinding}});
}

// Read at the end of a step: the main frame's origin and its localStorage.
constexpr const char kReadLocalStorage[] = R"JS((() => {
  const ls = window.localStorage, items = [];
  for (let i = 0; i < ls.length; ++i) {
    const k = Storage.prototype.key.call(ls, i);
    items.push([k, Storage.prototype.getItem.call(ls, k)]);
  }
  return JSON.stringify({origin: location.origin, items});
})())JS";

std::vector<std::pair<std::string, std::string>> items_of(const json& j) {
  std::vector<std::pair<std::string, std::string>> out;
  if (!j.is_array()) return out;
  for (const auto& kv : j)
    if (kv.is_array() && kv.size() == 2 && kv[0].is_string() && kv[1].is_string())
      out.emplace_back(kv[0].get<std::string>(), kv[1].get<std::string>());
  return out;
}

}  // namespace

class BrowserPool::Impl {
 public:
  Impl(Options options, EventHook hook)
      : opts_(std::move(options)),
        hook_(std::move(hook)),
        bucket_(opts_.rate_per_second, opts_.rate_burst, Clock::now()) {
    if (opts_.max_concurrent <= 0)
      opts_.max_concurrent = std::max(1u, std::thread::hardware_concurrency());
    // A write to a browser that just died must be an error, not a signal.
    ::signal(SIGPIPE, SIG_IGN);
    wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    thread_ = start_named_thread("sd-browser", [this] { run(); });
  }

  ~Impl() {
    stop();
    if (wake_fd_ >= 0) ::close(wake_fd_);
  }

  void submit(BrowserStepRequest request, Done done) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!stopping_) {
        queue_.emplace(std::make_pair(request.priority, next_seq_++),
                       Queued{std::move(request), std::move(done), Clock::now()});
        stats_.queued = static_cast<int>(queue_.size());
        wake();
        return;
      }
    }
    BrowserStepResult r;
    r.detail = "shutting down";
    r.not_sent = true;
    done(std::move(r));
  }

  void stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
      wake();
    }
    if (thread_.joinable()) thread_.join();
  }

  Stats stats() const {
    std::lock_guard<std::mutex> lock(mu_);
    return stats_;
  }

 private:
  struct Queued {
    BrowserStepRequest request;
    Done done;
    Clock::time_point submitted;
  };

  struct Slot {
    std::string context_id;
    std::set<std::string> dirty_origins;  // may hold the previous accounts' data
    bool busy = false;                    // a step, or its page still closing
    bool replace_context = false;         // a wipe or a close failed: start over
    std::string closing_target;           // a page closing or going to about:blank
    Clock::time_point closing_deadline;
    // The reused page (unless new_page_per_step).
    std::string page_target, page_session;
    bool page_ready = false;              // domains enabled, binding added
    std::vector<std::string> scripts;     // init scripts of the last step
    std::set<std::string> session_dirty;  // origins whose sessionStorage the tab may hold
  };

  struct Step {
    std::uint64_t id = 0;
    BrowserStepRequest request;
    Done done;
    std::size_t slot = 0;
    Clock::time_point started, deadline;
    std::string target_id, session_id;
    int setup_pending = 0;
    bool navigated = false;      // Page.navigate sent: reports count from now on
    bool conditions_in = false;  // the page says every wait_for holds
    bool loaded = false;         // main frame load event
    bool settling = false;
    Clock::time_point settle_until;
    bool capturing = false;  // final reads sent
    bool page_lost = false;  // crashed or closed: the slot's page cannot be reused
    int capture_pending = 0;
    std::map<std::string, std::string> seed_scripts;  // origin -> script identifier
    std::set<std::string> touched;                    // origins that may hold data now
    // Network
    std::map<std::string, bool> requests;   // in flight: requestId -> served from cache
    std::set<std::string> cookie_requests;  // responses that set cookies
    Clock::time_point network_changed;
    std::uint64_t bytes = 0;
    // The newest state seen.
    std::optional<json> cookies;
    json origins = json::array();
    bool origins_changed = false;
    bool cookie_read_running = false, cookie_read_again = false;
  };

  // ---- thread-shared ----
  void wake() {
    const std::uint64_t one = 1;
    if (wake_fd_ >= 0) (void)!::write(wake_fd_, &one, sizeof one);
  }

  // ---- pool thread ----
  void run() {
    std::vector<char> buf(1 << 16);
    for (;;) {
      bool stopping;
      {
        std::lock_guard<std::mutex> lock(mu_);
        stopping = stopping_;
      }
      if (stopping) break;
      if (!broken_.empty()) browser_gone(broken_);
      maintain();
      start_steps();

      std::vector<pollfd> fds;
      fds.push_back({wake_fd_, POLLIN, 0});
      if (browser_) {
        fds.push_back({browser_->reply_fd(), POLLIN, 0});
        if (browser_->wants_write()) fds.push_back({browser_->command_fd(), POLLOUT, 0});
      }
      const int rc = ::poll(fds.data(), fds.size(), poll_timeout_ms());
      if (rc < 0 && errno != EINTR) break;
      if (rc <= 0) continue;
      if (fds[0].revents & POLLIN) {
        std::uint64_t n;
        (void)!::read(wake_fd_, &n, sizeof n);
      }
      if (!browser_) continue;
      for (std::size_t i = 1; i < fds.size(); ++i) {
        if (!fds[i].revents || !browser_) continue;
        if (fds[i].fd == browser_->command_fd()) {
          if (!browser_->flush()) broken_ = "browser gone (write failed)";
        } else {
          read_replies(buf);
        }
      }
    }
    shutdown();
  }

  void read_replies(std::vector<char>& buf) {
    // Bounded: a browser that writes without pause must not starve timers.
    for (int round = 0; round < 64 && browser_ && broken_.empty(); ++round) {
      const ssize_t n = browser_->read_some(buf.data(), buf.size());
      if (n < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK) broken_ = "browser gone (read failed)";
        return;
      }
      if (n == 0) {
        broken_ = "browser crashed (pipe closed)";
        return;
      }
      auto out = framer_.feed(std::string_view(buf.data(), static_cast<std::size_t>(n)));
      for (auto& m : out.messages) {
        auto d = cdp_.dispatch(m);
        if (auto* ev = std::get_if<devtools::Event>(&d)) on_event(*ev);
        if (!broken_.empty()) return;
      }
      if (framer_.broken()) broken_ = "browser protocol error: " + out.errors.back();
      if (static_cast<std::size_t>(n) < buf.size()) return;
    }
  }

  // ---- commands ----
  using Callback = std::function<void(const Reply&)>;

  void call(const std::string& method, json params, const std::string& session, Callback cb = {}) {
    if (!browser_) return;
    const std::uint64_t gen = generation_;
    auto out = cdp_.send(method, std::move(params), session,
                         [this, gen, session, cb = std::move(cb)](const Reply& r) {
                           if (session.empty()) browser_calls_.erase(r.id);
                           if (gen == generation_ && cb) cb(r);
                         });
    // Only browser-level commands measure the browser's health: a page busy
    // in a script loop delays its own session, and the step deadline covers it.
    if (session.empty()) browser_calls_[out.id] = Clock::now();
    if (!browser_->write(out.frame) && broken_.empty()) broken_ = "browser gone (write failed)";
  }

  // ---- browser lifecycle ----
  enum class BrowserState { down, starting, ready, closing };

  void maintain() {
    const auto now = Clock::now();
    // Hang: a browser-level command unanswered too long.
    if (browser_ && !browser_calls_.empty() &&
        now - browser_calls_.begin()->second > opts_.command_timeout) {
      browser_gone("browser hung (no reply in " + format_duration(opts_.command_timeout) + ")");
    }
    // Step deadlines, settle ends, network idle.
    std::vector<std::uint64_t> ids;
    for (auto& [id, s] : steps_) ids.push_back(id);
    for (auto id : ids) {
      auto it = steps_.find(id);
      if (it != steps_.end()) tick(*it->second, now);
    }
    // Pages that did not go away in time: their slot starts over.
    for (auto& slot : slots_) {
      if (!slot.closing_target.empty() && now >= slot.closing_deadline) {
        slot.closing_target.clear();
        slot.replace_context = true;
        slot.busy = false;
      }
    }
    // Queued steps that waited longer than their whole timeout.
    if (now - queue_checked_ >= std::chrono::milliseconds(100)) {
      queue_checked_ = now;
      expire_queue(now);
    }
    // Recycle between steps; restart a browser that is needed.
    if (browser_ && browser_state_ == BrowserState::ready && recycle_due_ && steps_.empty() &&
        !any_closing()) {
      close_browser("browser_recycled", recycle_reason_);
    }
    if (!browser_ && has_queued() && now >= restart_at_) launch();
    if (browser_ && now - usage_read_ >= kUsageInterval) read_usage(now);
    // While pages run, the browser must answer something now and then: a
    // hung browser with no command of ours pending would go unnoticed.
    if (browser_ && browser_state_ == BrowserState::ready && browser_calls_.empty() &&
        (!steps_.empty() || any_closing()) && now - heartbeat_ >= opts_.command_timeout / 3) {
      heartbeat_ = now;
      call("Browser.getVersion", json::object(), "");
    }
  }

  bool any_closing() const {
    for (const auto& s : slots_)
      if (!s.closing_target.empty()) return true;
    return false;
  }

  bool has_queued() const {
    std::lock_guard<std::mutex> lock(mu_);
    return !queue_.empty();
  }

  void read_usage(Clock::time_point now) {
    usage_read_ = now;
    const auto u = browser_->usage(true);
    {
      std::lock_guard<std::mutex> lock(mu_);
      stats_.browser_rss_bytes = u.rss_bytes;
      stats_.browser_pss_bytes = u.pss_bytes;
      stats_.browser_cpu_seconds = u.cpu_seconds;
    }
    if (opts_.memory_cap_bytes > 0 && u.pss_bytes > opts_.memory_cap_bytes && !recycle_due_) {
      recycle_due_ = true;
      recycle_reason_ = "memory " + std::to_string(u.pss_bytes >> 20) + " MB above the cap";
    }
  }

  void launch() {
    std::string error;
    ++generation_;
    framer_ = devtools::Framer();
    cdp_ = devtools::Correlator();
    browser_calls_.clear();
    broken_.clear();
    browser_ = BrowserProcess::launch(opts_.launch, error);
    if (!browser_) {
      ++failures_;
      schedule_restart();
      emit("browser_start_failed", error);
      fail_queue("browser cannot start");
      return;
    }
    browser_state_ = BrowserState::starting;
    steps_since_launch_ = 0;
    recycle_due_ = false;
    usage_read_ = Clock::now();
    slots_.assign(static_cast<std::size_t>(opts_.max_concurrent), Slot{});
    {
      std::lock_guard<std::mutex> lock(mu_);
      stats_.browser_pid = browser_->pid();
    }
    // Target events tell us about crashed renderers and closed pages.
    auto pending = std::make_shared<int>(1 + static_cast<int>(slots_.size()));
    auto one_done = [this, pending](const Reply& r) {
      if (!r.ok && broken_.empty()) broken_ = "browser start failed: " + r.method + ": " + r.error;
      if (--*pending == 0) {
        if (broken_.empty()) {
          browser_state_ = BrowserState::ready;
          emit("browser_started", "pid " + std::to_string(browser_->pid()));
        }
      }
    };
    call("Target.setDiscoverTargets", {{"discover", true}}, "", one_done);
    for (std::size_t i = 0; i < slots_.size(); ++i) {
      call("Target.createBrowserContext", json::object(), "", [this, i, one_done](const Reply& r) {
        if (r.ok) slots_[i].context_id = r.result.value("browserContextId", "");
        one_done(r);
      });
    }
  }

  void schedule_restart() {
    auto delay = opts_.restart_backoff_base;
    for (int i = 1; i < failures_ && delay < opts_.restart_backoff_max; ++i) delay *= 2;
    delay = std::min(delay, opts_.restart_backoff_max);
    restart_at_ = Clock::now() + delay;
  }

  // Crash, hang or protocol error: every step in flight ends transient (with
  // what it captured), the browser is killed and restarted with backoff.
  void browser_gone(const std::string& why) {
    if (!browser_) return;
    broken_ = why;  // finish() sends nothing more to this browser
    const bool closing = browser_state_ == BrowserState::closing;
    ++generation_;  // callbacks of the old browser are ignored from here on
    std::vector<std::uint64_t> ids;
    for (auto& [id, s] : steps_) ids.push_back(id);
    for (auto id : ids) finish(id, Verdict::transient, why);
    browser_->kill();
    browser_.reset();
    cdp_.fail_all(why);
    browser_calls_.clear();
    slots_.clear();
    broken_.clear();
    browser_state_ = BrowserState::down;
    {
      std::lock_guard<std::mutex> lock(mu_);
      stats_.browser_pid = 0;
      stats_.browser_rss_bytes = stats_.browser_pss_bytes = 0;
    }
    if (closing) return;
    ++failures_;
    ++restarts_;
    {
      std::lock_guard<std::mutex> lock(mu_);
      stats_.restarts = restarts_;
    }
    schedule_restart();
    emit("browser_crashed", why);
  }

  // A planned close (recycle, shutdown): Browser.close, then the group is killed.
  void close_browser(const std::string& event, const std::string& why) {
    if (!browser_) return;
    browser_state_ = BrowserState::closing;
    ++generation_;
    browser_->stop(opts_.stop_grace);
    browser_.reset();
    cdp_.fail_all("browser closed");
    browser_calls_.clear();
    slots_.clear();
    broken_.clear();
    browser_state_ = BrowserState::down;
    restart_at_ = Clock::now();
    {
      std::lock_guard<std::mutex> lock(mu_);
      stats_.browser_pid = 0;
      stats_.browser_rss_bytes = stats_.browser_pss_bytes = 0;
      if (event == "browser_recycled") stats_.restarts = ++restarts_;
    }
    if (!event.empty()) emit(event, why);
  }

  void emit(const std::string& event, const std::string& detail) {
    if (hook_) hook_(event, detail);
  }

  // ---- queue ----
  void expire_queue(Clock::time_point now) {
    std::vector<Queued> expired;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (auto it = queue_.begin(); it != queue_.end();) {
        if (now - it->second.submitted > it->second.request.spec.timeout) {
          expired.push_back(std::move(it->second));
          it = queue_.erase(it);
        } else {
          ++it;
        }
      }
      stats_.queued = static_cast<int>(queue_.size());
    }
    for (auto& q : expired) refuse(q, "no browser slot within the step timeout");
  }

  void fail_queue(const std::string& why) {
    std::vector<Queued> all;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (auto& [k, q] : queue_) all.push_back(std::move(q));
      queue_.clear();
      stats_.queued = 0;
    }
    for (auto& q : all) refuse(q, why);
  }

  void refuse(Queued& q, const std::string& why) {
    BrowserStepResult r;
    r.detail = why;
    r.not_sent = true;
    count(r);
    q.done(std::move(r));
  }

  void count(const BrowserStepResult& r) {
    std::lock_guard<std::mutex> lock(mu_);
    switch (r.verdict) {
      case Verdict::logged_in:
        ++stats_.steps_logged_in;
        break;
      case Verdict::logged_out:
        ++stats_.steps_logged_out;
        break;
      case Verdict::transient:
        ++stats_.steps_transient;
        break;
    }
    if (!r.not_sent) stats_.last_step_duration = r.elapsed;
    stats_.in_flight = static_cast<int>(steps_.size());
  }

  void start_steps() {
    if (!browser_ || browser_state_ != BrowserState::ready || recycle_due_) return;
    for (std::size_t i = 0; i < slots_.size(); ++i) {
      if (slots_[i].busy) continue;
      Queued q;
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (queue_.empty()) return;
        if (!bucket_.try_take(Clock::now())) return;  // poll_timeout_ms() wakes us for the token
        q = std::move(queue_.begin()->second);
        queue_.erase(queue_.begin());
        stats_.queued = static_cast<int>(queue_.size());
      }
      begin(i, std::move(q));
      if (!browser_) return;
    }
  }

  // ---- a step ----
  Step* find(std::uint64_t id) {
    auto it = steps_.find(id);
    return it == steps_.end() ? nullptr : it->second.get();
  }

  void begin(std::size_t slot_index, Queued q) {
    auto step = std::make_unique<Step>();
    Step& s = *step;
    s.id = ++next_step_id_;
    s.request = std::move(q.request);
    s.done = std::move(q.done);
    s.slot = slot_index;
    s.started = Clock::now();
    s.deadline = s.started + s.request.spec.timeout;
    s.network_changed = s.started;
    if (s.request.state.is_object() && s.request.state.contains("origins") &&
        s.request.state["origins"].is_array())
      s.origins = s.request.state["origins"];
    steps_.emplace(s.id, std::move(step));
    {
      std::lock_guard<std::mutex> lock(mu_);
      stats_.in_flight = static_cast<int>(steps_.size());
    }
    Slot& slot = slots_[slot_index];
    slot.busy = true;
    const std::uint64_t id = s.id;
    if (slot.replace_context) {
      // Start over with a new context: whatever the old one holds is gone.
      slot.replace_context = false;
      call("Target.disposeBrowserContext", {{"browserContextId", slot.context_id}}, "");
      slot.context_id.clear();
      slot.dirty_origins.clear();
      slot.session_dirty.clear();
      forget_page(slot);  // closed with its context
      call("Target.createBrowserContext", json::object(), "", [this, id](const Reply& r) {
        Step* st = find(id);
        if (!st) return;
        if (!r.ok)
          return finish(id, Verdict::transient, "setup failed: " + r.method + ": " + r.error);
        slots_[st->slot].context_id = r.result.value("browserContextId", "");
        create_page(id);
      });
      return;
    }
    if (!opts_.new_page_per_step && slot.page_ready) {
      s.target_id = slot.page_target;
      s.session_id = slot.page_session;
      session_steps_[s.session_id] = id;
      return setup_page(id);
    }
    create_page(id);
  }

  void forget_page(Slot& slot) {
    if (!slot.page_session.empty()) {
      session_steps_.erase(slot.page_session);
      cdp_.forget_session(slot.page_session);
    }
    slot.page_target.clear();
    slot.page_session.clear();
    slot.page_ready = false;
    slot.scripts.clear();
  }

  void create_page(std::uint64_t id) {
    Step* s = find(id);
    if (!s) return;
    const std::string ctx = slots_[s->slot].context_id;
    call("Target.createTarget", {{"url", "about:blank"}, {"browserContextId", ctx}}, "",
         [this, id](const Reply& r) {
           Step* st = find(id);
           if (!r.ok) {
             if (st) finish(id, Verdict::transient, "setup failed: " + r.method + ": " + r.error);
             return;
           }
           const std::string target = r.result.value("targetId", "");
           if (!st) {  // the step ended meanwhile: do not leak the page
             call("Target.closeTarget", {{"targetId", target}}, "");
             return;
           }
           st->target_id = target;
           call("Target.attachToTarget", {{"targetId", target}, {"flatten", true}}, "",
                [this, id](const Reply& a) {
                  Step* s2 = find(id);
                  if (!s2) return;
                  if (!a.ok)
                    return finish(id, Verdict::transient,
                                  "setup failed: " + a.method + ": " + a.error);
                  s2->session_id = a.result.value("sessionId", "");
                  session_steps_[s2->session_id] = id;
                  if (!opts_.new_page_per_step) {
                    Slot& sl = slots_[s2->slot];
                    sl.page_target = s2->target_id;
                    sl.page_session = s2->session_id;
                    sl.page_ready = false;
                    sl.scripts.clear();
                  }
                  setup_page(id);
                });
         });
  }

  // Wipe, seed, instrument: all pipelined, then navigate once every reply is in.
  void setup_page(std::uint64_t id) {
    Step& s = *find(id);
    Slot& slot = slots_[s.slot];
    const std::string& sid = s.session_id;
    auto part = [this, id](const Reply& r) {
      Step* st = find(id);
      if (!st) return;
      if (!r.ok) {
        // A failed wipe must not leave the next account with this one's data.
        if (r.method.rfind("Storage.clear", 0) == 0) slots_[st->slot].replace_context = true;
        return finish(id, Verdict::transient, "setup failed: " + r.method + ": " + r.error);
      }
      if (--st->setup_pending == 0) navigate(id);
    };
    auto add = [&](const std::string& method, json params, const std::string& session,
                   Callback cb) {
      ++s.setup_pending;
      call(method, std::move(params), session, std::move(cb));
    };
    ++s.setup_pending;  // held until every command is sent
    const bool fresh_page = opts_.new_page_per_step || !slot.page_ready;
    // 0. The last step's init scripts (a reused page keeps them).
    for (const auto& script : slot.scripts)
      call("Page.removeScriptToEvaluateOnNewDocument", {{"identifier", script}}, sid);
    slot.scripts.clear();
    // 1. Wipe what earlier steps left in this context.
    add("Storage.clearCookies", {{"browserContextId", slot.context_id}}, "", part);
    for (const auto& origin : slot.dirty_origins)
      add("Storage.clearDataForOrigin", {{"origin", origin}, {"storageTypes", "all"}}, sid, part);
    slot.dirty_origins.clear();
    // 2. Domains, once per page. Without Page.enable init scripts never run;
    // without Runtime.enable bindings never report.
    if (fresh_page) {
      add("Page.enable", json::object(), sid, part);
      add("Runtime.enable", json::object(), sid, part);
      add("Network.enable", {{"maxTotalBufferSize", 0}, {"maxResourceBufferSize", 0}}, sid, part);
      json patterns = json::array();
      for (const char* type : {"Document", "XHR", "Fetch", "EventSource", "Other"})
        patterns.push_back(
            {{"urlPattern", "*"}, {"resourceType", type}, {"requestStage", "Request"}});
      add("Fetch.enable", {{"patterns", patterns}}, sid, part);
      add("Runtime.addBinding", {{"name", kBinding}}, sid, part);
    }
    // 3. Seeds, before the page's scripts: localStorage per origin (and on a
    // reused page, sessionStorage cleared for every origin it may hold), cookies.
    std::map<std::string, json> prepare;  // origin -> localStorage items
    if (!opts_.new_page_per_step)
      for (const auto& origin : slot.session_dirty) prepare[origin] = json::array();
    for (const auto& entry : s.origins) {
      if (!entry.is_object() || !entry.contains("origin") || !entry["origin"].is_string()) continue;
      const std::string origin = entry["origin"].get<std::string>();
      json items = json::array();
      if (entry.contains("localStorage") && entry["localStorage"].is_array())
        for (const auto& it : entry["localStorage"])
          if (it.is_object() && it.contains("name") && it.contains("value") &&
              it["name"].is_string() && it["value"].is_string())
            items.push_back({it["name"], it["value"]});
      s.touched.insert(origin);
      if (!items.empty()) prepare[origin] = items;
    }
    auto keep_script = [this, id](const Reply& r) {
      Step* st = find(id);
      if (st && r.ok) slots_[st->slot].scripts.push_back(r.result.value("identifier", ""));
    };
    for (const auto& [origin, items] : prepare) {
      const bool clear_session = slot.session_dirty.count(origin) > 0;
      add("Page.addScriptToEvaluateOnNewDocument",
          {{"source", seed_script(origin, items, clear_session)}}, sid,
          [this, id, origin = origin, part, keep_script](const Reply& r) {
            keep_script(r);
            if (Step* st = find(id); st && r.ok)
              st->seed_scripts[origin] = r.result.value("identifier", "");
            part(r);
          });
    }
    add("Page.addScriptToEvaluateOnNewDocument", {{"source", tracker_script(s.request.spec)}}, sid,
        [keep_script, part](const Reply& r) {
          keep_script(r);
          part(r);
        });
    json cookies = json::array();
    if (s.request.state.is_object() && s.request.state.contains("cookies"))
      cookies = cdp_cookie_params_from_playwright(s.request.state["cookies"]);
    if (!cookies.empty())
      add("Storage.setCookies", {{"cookies", cookies}, {"browserContextId", slot.context_id}}, "",
          part);
    const std::string main_origin = origin_of(s.request.spec.url);
    if (!main_origin.empty()) s.touched.insert(main_origin);
    Reply sent;
    sent.ok = true;
    part(sent);  // releases the hold
  }

  void navigate(std::uint64_t id) {
    Step& s = *find(id);
    s.navigated = true;
    if (!opts_.new_page_per_step) slots_[s.slot].page_ready = true;
    call("Page.navigate", {{"url", s.request.spec.url}}, s.session_id, [this, id](const Reply& r) {
      if (!find(id)) return;
      if (!r.ok) return finish(id, Verdict::transient, "navigation error: " + r.error);
      const std::string error = r.result.value("errorText", "");
      // net::ERR_ABORTED: the page replaced the navigation itself (a redirect
      // by script); the conditions decide.
      if (!error.empty() && error != "net::ERR_ABORTED")
        finish(id, Verdict::transient, "navigation error: " + error);
    });
  }

  void on_event(const devtools::Event& ev) {
    if (ev.session_id.empty()) return on_browser_event(ev);
    auto it = session_steps_.find(ev.session_id);
    if (it == session_steps_.end()) return;
    Step* s = find(it->second);
    if (!s) return;
    const std::uint64_t id = s->id;
    const json& p = ev.params;
    const std::string& m = ev.method;
    if (m == "Runtime.bindingCalled") {
      if (p.value("name", "") == kBinding) on_report(*s, p.value("payload", ""));
    } else if (m == "Fetch.requestPaused") {
      // Documents and API calls never come from the HTTP cache: it is shared
      // by every account that used this slot.
      json headers = json::array();
      if (p.contains("request") && p["request"].contains("headers") &&
          p["request"]["headers"].is_object()) {
        for (const auto& [name, value] : p["request"]["headers"].items()) {
          std::string lower = name;
          std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
          if (lower == "cache-control" || lower == "pragma" || !value.is_string()) continue;
          headers.push_back({{"name", name}, {"value", value}});
        }
      }
      headers.push_back({{"name", "Cache-Control"}, {"value", "no-cache"}});
      call("Fetch.continueRequest", {{"requestId", p.value("requestId", "")}, {"headers", headers}},
           s->session_id);
    } else if (m == "Network.requestWillBeSent") {
      const std::string rid = p.value("requestId", "");
      if (p.value("type", "") == "Document" && p.contains("request")) {
        const std::string o = origin_of(p["request"].value("url", ""));
        if (!o.empty()) s->touched.insert(o);
      }
      if (p.value("type", "") != "EventSource") s->requests.emplace(rid, false);
      s->network_changed = Clock::now();
    } else if (m == "Network.requestServedFromCache") {
      auto r = s->requests.find(p.value("requestId", ""));
      if (r != s->requests.end()) r->second = true;
    } else if (m == "Network.responseReceived") {
      auto r = s->requests.find(p.value("requestId", ""));
      if (r != s->requests.end() && p.contains("response")) {
        const json& resp = p["response"];
        if (resp.value("fromDiskCache", false) || resp.value("fromPrefetchCache", false) ||
            resp.value("fromServiceWorker", false))
          r->second = true;
      }
    } else if (m == "Network.responseReceivedExtraInfo") {
      if (p.contains("headers") && p["headers"].is_object()) {
        for (const auto& [name, value] : p["headers"].items()) {
          std::string lower = name;
          std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
          if (lower == "set-cookie") {
            s->cookie_requests.insert(p.value("requestId", ""));
            read_cookies(id);
            break;
          }
        }
      }
    } else if (m == "Network.loadingFinished" || m == "Network.loadingFailed") {
      const std::string rid = p.value("requestId", "");
      auto r = s->requests.find(rid);
      if (r != s->requests.end()) {
        if (!r->second && m == "Network.loadingFinished")
          s->bytes += static_cast<std::uint64_t>(std::max(0.0, p.value("encodedDataLength", 0.0)));
        s->requests.erase(r);
        s->network_changed = Clock::now();
      }
      // The cookie store has the response's cookies by now.
      if (s->cookie_requests.erase(rid)) read_cookies(id);
    } else if (m == "Page.frameNavigated") {
      if (p.contains("frame")) {
        const std::string o = origin_of(p["frame"].value("url", ""));
        if (!o.empty()) s->touched.insert(o);
      }
    } else if (m == "Page.loadEventFired") {
      s->loaded = true;
      if (s->navigated && s->request.spec.wait_for.empty()) s->conditions_in = true;
      tick(*s, Clock::now());
    } else if (m == "Page.javascriptDialogOpening") {
      call("Page.handleJavaScriptDialog", {{"accept", true}}, s->session_id);
    } else if (m == "Inspector.targetCrashed") {
      s->page_lost = true;
      finish(id, Verdict::transient, "renderer crashed");
    }
  }

  void on_browser_event(const devtools::Event& ev) {
    const json& p = ev.params;
    if (ev.method == "Target.targetCrashed") {
      const std::string target = p.value("targetId", "");
      for (auto& slot : slots_)
        if (slot.page_target == target && !slot.busy) {  // between steps: replace the page
          call("Target.closeTarget", {{"targetId", target}}, "");
          forget_page(slot);
        }
      for (auto& [id, s] : steps_)
        if (s->target_id == target) {
          s->page_lost = true;
          return finish(id, Verdict::transient, "renderer crashed");
        }
    } else if (ev.method == "Target.targetDestroyed") {
      const std::string target = p.value("targetId", "");
      for (auto& slot : slots_) {
        if (!slot.closing_target.empty() && slot.closing_target == target) {
          slot.closing_target.clear();
          slot.busy = false;
        }
        if (slot.page_target == target) forget_page(slot);
      }
      for (auto& [id, s] : steps_)
        if (s->target_id == target) {
          s->page_lost = true;
          return finish(id, Verdict::transient, "page closed");
        }
    } else if (ev.method == "Target.targetCreated" && p.contains("targetInfo")) {
      // Popups and windows a page opens: closed at once, they would outlive
      // the step in the shared context.
      const json& info = p["targetInfo"];
      if (info.value("type", "") != "page") return;
      const std::string target = info.value("targetId", "");
      const std::string opener = info.value("openerId", "");
      if (!opener.empty()) call("Target.closeTarget", {{"targetId", target}}, "");
    }
  }

  void on_report(Step& s, const std::string& payload) {
    const json r = json::parse(payload, nullptr, false);
    if (!r.is_object()) return;
    const std::string kind = r.value("k", "");
    if (kind == "ls") {
      const std::string origin = r.value("origin", "");
      if (origin_of(origin + "/") != origin) return;  // opaque or not http(s)
      s.touched.insert(origin);
      s.origins = origins_with_local_storage(s.origins, origin, items_of(r.value("items", json())));
      s.origins_changed = true;
    } else if (kind == "cookie") {
      read_cookies(s.id);
    } else if (kind == "seeded") {
      auto it = s.seed_scripts.find(r.value("origin", ""));
      if (it != s.seed_scripts.end()) {
        slots_[s.slot].session_dirty.erase(it->first);
        call("Page.removeScriptToEvaluateOnNewDocument", {{"identifier", it->second}},
             s.session_id);
        s.seed_scripts.erase(it);
      }
    } else if (kind == "cond" && s.navigated && !s.capturing) {
      const int out = r.value("out", -1);
      if (out >= 0) {
        return finish(s.id, Verdict::logged_out,
                      "logged_out condition " + std::to_string(out + 1) + " matched");
      }
      s.conditions_in = r.value("in", false);
      tick(s, Clock::now());
    }
  }

  // Storage.getCookies now; again after it when more changes came meanwhile.
  void read_cookies(std::uint64_t id, Callback after = {}) {
    Step* s = find(id);
    if (!s) return;
    if (s->cookie_read_running && !after) {
      s->cookie_read_again = true;
      return;
    }
    s->cookie_read_running = true;
    call("Storage.getCookies", {{"browserContextId", slots_[s->slot].context_id}}, "",
         [this, id, after](const Reply& r) {
           Step* st = find(id);
           if (!st) return;
           st->cookie_read_running = false;
           if (r.ok && r.result.contains("cookies")) {
             json previous = json::array();
             if (st->request.state.is_object() && st->request.state.contains("cookies"))
               previous = st->request.state["cookies"];
             st->cookies = playwright_cookies_from_cdp(r.result["cookies"], previous);
           }
           if (after) return after(r);
           if (st->cookie_read_again) {
             st->cookie_read_again = false;
             read_cookies(id);
           }
         });
  }

  bool network_idle(const Step& s, Clock::time_point now) const {
    return s.requests.empty() && now - s.network_changed >= kNetworkIdle;
  }

  void tick(Step& s, Clock::time_point now) {
    const std::uint64_t id = s.id;
    const auto& spec = s.request.spec;
    if (s.capturing) {
      if (now >= s.deadline + kCaptureGrace)
        finish(id, Verdict::logged_in, "wait_for matched (final read timed out)");
      return;
    }
    if (now >= s.deadline) {
      if (s.settling) return capture(id);  // logged in already: read what there is
      return finish(id, Verdict::transient, "timeout");
    }
    if (!s.navigated) return;
    if (!s.settling) {
      if (!s.conditions_in) return;
      if (spec.wait_network_idle && !network_idle(s, now)) return;
      s.settling = true;
      s.settle_until = now + spec.settle;
    }
    if (spec.settle_network_idle ? network_idle(s, now) : now >= s.settle_until) capture(id);
  }

  // Logged in and settled: the final reads, then the verdict.
  void capture(std::uint64_t id) {
    Step* s = find(id);
    if (!s || s->capturing) return;
    s->capturing = true;
    s->capture_pending = 2;
    auto part = [this, id](const Reply&) {
      Step* st = find(id);
      if (st && --st->capture_pending == 0) finish(id, Verdict::logged_in, "wait_for matched");
    };
    read_cookies(id, part);
    call("Runtime.evaluate", {{"expression", kReadLocalStorage}, {"returnByValue", true}},
         s->session_id, [this, id, part](const Reply& r) {
           Step* st = find(id);
           if (!st) return;
           if (r.ok && r.result.contains("result")) {
             const json v = json::parse(r.result["result"].value("value", ""), nullptr, false);
             if (v.is_object()) {
               const std::string origin = v.value("origin", "");
               if (!origin.empty() && origin_of(origin + "/") == origin) {
                 st->origins = origins_with_local_storage(st->origins, origin,
                                                          items_of(v.value("items", json())));
                 st->origins_changed = true;
               }
             }
           }
           part(r);
         });
  }

  void finish(std::uint64_t id, Verdict verdict, const std::string& detail) {
    auto it = steps_.find(id);
    if (it == steps_.end()) return;
    std::unique_ptr<Step> s = std::move(it->second);
    steps_.erase(it);
    BrowserStepResult r;
    r.verdict = verdict;
    r.detail = detail;
    r.cookies = s->cookies;
    if (s->origins_changed) r.origins = s->origins;
    r.bytes_fetched = s->bytes;
    r.elapsed = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - s->started);
    if (!s->session_id.empty()) {
      session_steps_.erase(s->session_id);
      cdp_.forget_session(s->session_id);
    }
    // The slot: its origins are dirty now; its page must be gone before reuse.
    if (s->slot < slots_.size()) {
      Slot& slot = slots_[s->slot];
      slot.dirty_origins.insert(s->touched.begin(), s->touched.end());
      if (opts_.fresh_context_per_step) slot.replace_context = true;
      const bool reuse = !opts_.new_page_per_step && !s->page_lost && !slot.replace_context &&
                         slot.page_target == s->target_id;
      if (reuse && !s->target_id.empty() && browser_ && broken_.empty()) {
        // Stop the page where it is: its scripts and requests end with the
        // document, before the next account's wipe. The slot is free once
        // about:blank has committed.
        slot.session_dirty.insert(s->touched.begin(), s->touched.end());
        const std::string target = s->target_id;
        const std::size_t index = s->slot;
        slot.closing_target = target;
        slot.closing_deadline = Clock::now() + opts_.close_page_timeout;
        call("Page.navigate", {{"url", "about:blank"}}, s->session_id,
             [this, index, target](const Reply& r) {
               if (index >= slots_.size() || slots_[index].closing_target != target) return;
               Slot& sl = slots_[index];
               if (r.ok) {
                 // The old document's heap is garbage now: a full GC keeps
                 // an idle page's renderer small (-30 MB PSS per slot with a
                 // 1 MB bundle, for ~0.01 CPU-s).
                 call("HeapProfiler.collectGarbage", json::object(), sl.page_session);
                 sl.closing_target.clear();
                 sl.busy = false;
               } else {
                 call("Target.closeTarget", {{"targetId", target}}, "");
                 forget_page(sl);  // targetDestroyed frees the slot
               }
             });
      } else if (!s->target_id.empty() && browser_ && broken_.empty()) {
        if (slot.page_target == s->target_id) forget_page(slot);
        const std::string target = s->target_id;
        const std::size_t index = s->slot;
        slot.closing_target = target;
        slot.closing_deadline = Clock::now() + opts_.close_page_timeout;
        call("Target.closeTarget", {{"targetId", target}}, "",
             [this, index, target](const Reply& r) {
               // No such target: it is gone already (crashed, closed by itself).
               if (!r.ok && index < slots_.size() && slots_[index].closing_target == target) {
                 slots_[index].closing_target.clear();
                 slots_[index].busy = false;
               }
             });
      } else {
        // No page yet: one still being created is closed when it appears
        // (create_page), and holds nothing but about:blank.
        slot.busy = false;
      }
    }
    ++steps_since_launch_;
    if (opts_.recycle_after_steps > 0 && steps_since_launch_ >= opts_.recycle_after_steps &&
        !recycle_due_) {
      recycle_due_ = true;
      recycle_reason_ = "after " + std::to_string(steps_since_launch_) + " steps";
    }
    if (verdict != Verdict::transient) failures_ = 0;
    count(r);
    s->done(std::move(r));
  }

  int poll_timeout_ms() const {
    const auto now = Clock::now();
    auto next = now + std::chrono::seconds(1);
    // Every time here is one at which maintain() acts (no busy loop on a past time).
    for (const auto& [id, s] : steps_) {
      next = std::min(next, s->capturing ? s->deadline + kCaptureGrace : s->deadline);
      if (s->settling && !s->request.spec.settle_network_idle)
        next = std::min(next, s->settle_until);
      const auto idle_at = s->network_changed + kNetworkIdle;
      if (s->requests.empty() && idle_at > now) next = std::min(next, idle_at);
    }
    for (const auto& slot : slots_)
      if (!slot.closing_target.empty()) next = std::min(next, slot.closing_deadline);
    if (!browser_calls_.empty())
      next = std::min(next, browser_calls_.begin()->second + opts_.command_timeout);
    else if (browser_ && (!steps_.empty() || any_closing()))
      next = std::min(next, std::max(now, heartbeat_ + opts_.command_timeout / 3));
    if (!browser_ && has_queued()) next = std::min(next, restart_at_);
    if (browser_ && !bucket_.unlimited() && has_queued())
      next = std::min(next, now + bucket_.wait(now));
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(next - now).count() + 1;
    return static_cast<int>(std::clamp<long long>(ms, 0, 1000));
  }

  void shutdown() {
    std::vector<std::uint64_t> ids;
    for (auto& [id, s] : steps_) ids.push_back(id);
    for (auto id : ids) finish(id, Verdict::transient, "shutting down");
    fail_queue("shutting down");
    close_browser("", "");
  }

  Options opts_;
  EventHook hook_;
  std::thread thread_;
  int wake_fd_ = -1;

  TokenBucket bucket_;     // the pool thread's only
  mutable std::mutex mu_;  // queue_, next_seq_, stopping_, stats_
  std::map<std::pair<std::int64_t, std::uint64_t>, Queued> queue_;
  std::uint64_t next_seq_ = 0;
  bool stopping_ = false;
  Stats stats_;

  // Pool thread only.
  std::unique_ptr<BrowserProcess> browser_;
  BrowserState browser_state_ = BrowserState::down;
  devtools::Framer framer_;
  devtools::Correlator cdp_;
  std::map<std::int64_t, Clock::time_point> browser_calls_;  // id -> sent (ids grow with time)
  std::uint64_t generation_ = 0;
  std::string broken_;  // set inside callbacks, handled by the loop
  std::vector<Slot> slots_;
  std::map<std::uint64_t, std::unique_ptr<Step>> steps_;
  std::map<std::string, std::uint64_t> session_steps_;
  std::uint64_t next_step_id_ = 0;
  int steps_since_launch_ = 0;
  bool recycle_due_ = false;
  std::string recycle_reason_;
  int failures_ = 0;  // consecutive, for the restart backoff
  std::uint64_t restarts_ = 0;
  Clock::time_point restart_at_{};
  Clock::time_point usage_read_{};
  Clock::time_point queue_checked_{};
  Clock::time_point heartbeat_{};
};

BrowserPool::BrowserPool(Options options, EventHook hook)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(hook))) {}

BrowserPool::~BrowserPool() = default;

void BrowserPool::submit(BrowserStepRequest request, Done done) {
  impl_->submit(std::move(request), std::move(done));
}

void BrowserPool::stop() {
  impl_->stop();
}

BrowserPool::Stats BrowserPool::stats() const {
  return impl_->stats();
}

}  // namespace sessiond
