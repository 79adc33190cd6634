// HttpClient: one libcurl multi handle driven by one dedicated thread.
//
// Threading model
//   * submit() (any thread) adds to a mutex-guarded queue (a heap ordered by
//     request.priority, then submission) and wakes the client thread with
//     curl_multi_wakeup().
//   * The client thread starts queued requests while fewer than
//     max_in_flight run and the token bucket has a token; otherwise it sleeps
//     in curl_multi_poll until a transfer ends, a request arrives or the next
//     token is due.
//   * The client thread owns the multi handle, every easy handle and every
//     Transfer; nothing but the queue, the bucket and the stop flag is shared.
//   * Callbacks run on the client thread with no internal lock held, so they
//     may call submit() again. Exceptions they throw are caught and dropped.
//
// Cookie isolation
//   Easy handles are reused from a small free-list. curl_easy_reset() keeps an
//   easy handle's cookie store, so a handle going back to the free-list has its
//   cookie engine destroyed (CURLOPT_COOKIEFILE NULL), and every request also
//   wipes the store ("ALL") before it loads exactly request.cookies.

#include "sessiond/http_client.hpp"

#include "sessiond/answer_window.hpp"
#include "sessiond/thread_name.hpp"
#include "sessiond/token_bucket.hpp"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <climits>
#include <cstdlib>
#include <ctime>
#include <stdexcept>
#include <unordered_map>

namespace sessiond {

namespace {

std::once_flag g_curl_once;

void global_init() {
  std::call_once(g_curl_once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  }
  return true;
}

bool istarts_with(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

std::string_view trim(std::string_view s) {
  const char* ws = " \t\r\n";
  const auto b = s.find_first_not_of(ws);
  if (b == std::string_view::npos) return {};
  const auto e = s.find_last_not_of(ws);
  return s.substr(b, e - b + 1);
}

std::string to_lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// RFC 9110 token characters: what a method may consist of.
bool is_token(std::string_view s) {
  if (s.empty()) return false;
  for (unsigned char c : s) {
    if (std::isalnum(c)) continue;
    if (std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos)
      continue;
    return false;
  }
  return true;
}

// Splits a Netscape cookie line into its tab-separated fields.
std::vector<std::string_view> cookie_fields(std::string_view line) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  for (;;) {
    const auto tab = line.find('\t', start);
    if (tab == std::string_view::npos) {
      out.push_back(line.substr(start));
      return out;
    }
    out.push_back(line.substr(start, tab - start));
    start = tab + 1;
  }
}

// True for a jar line whose expiry lies in the past (libcurl may still list a
// cookie that a "Max-Age=0" response has just expired until its next purge).
bool cookie_expired(std::string_view line, std::time_t now) {
  const auto f = cookie_fields(line);
  if (f.size() < 7) return false;
  const std::string expiry(f[4]);
  char* end = nullptr;
  const long long v = std::strtoll(expiry.c_str(), &end, 10);
  if (end == expiry.c_str()) return false;
  return v > 0 && v <= static_cast<long long>(now);
}

// A line libcurl would treat as a command instead of a cookie ("ALL", "SESS",
// "FLUSH", "RELOAD", ...): a Netscape line always has tabs.
bool loadable_cookie_line(const std::string& line) {
  return line.find('\t') != std::string::npos || istarts_with(line, "Set-Cookie:");
}

constexpr std::size_t kMaxFreeHandles = 32;
constexpr long kMaxConnectTimeoutMs = 5000;
constexpr std::size_t kMinSecretLength = 4;

}  // namespace

std::optional<std::string> HttpResponse::header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (iequals(k, name)) return v;
  }
  return std::nullopt;
}

std::optional<std::chrono::milliseconds> retry_after_delay(
    const HttpResponse& response, std::chrono::system_clock::time_point now) {
  constexpr std::chrono::milliseconds kMax = std::chrono::hours(1);
  const auto value = response.header("retry-after");
  if (!value) return std::nullopt;
  const auto text = std::string(trim(*value));
  if (text.empty()) return std::nullopt;
  if (std::all_of(text.begin(), text.end(), [](unsigned char c) { return std::isdigit(c); })) {
    // delta-seconds; anything longer than the cap is the cap
    if (text.size() > 7) return kMax;
    return std::min<std::chrono::milliseconds>(std::chrono::seconds(std::stol(text)), kMax);
  }
  const std::time_t when = curl_getdate(text.c_str(), nullptr);
  if (when < 0) return std::nullopt;
  const auto delta = std::chrono::system_clock::from_time_t(when) - now;
  if (delta <= std::chrono::system_clock::duration::zero()) return std::chrono::milliseconds(0);
  return std::min(std::chrono::ceil<std::chrono::milliseconds>(delta), kMax);
}

// The answers handed out and not settled yet, and the window that caps them
// with the transfers (Options::answer_lag_target). Shared with the holds, which
// may outlive the client (a save finishing at shutdown).
struct AnswerSlots {
  explicit AnswerSlots(AnswerWindow w) : window(w) {}
  std::mutex mu;
  AnswerWindow window;       // guarded by mu
  std::size_t answered = 0;  // guarded by mu
  CURLM* multi = nullptr;    // guarded by mu; woken when one settles, null once stopped
};

namespace {

// One answer's place in the window: settled (its lag counted, the HTTP thread
// woken to start what the window lets in) when its last copy goes.
ReleaseToken hold_answer(const std::shared_ptr<AnswerSlots>& slots,
                         std::chrono::steady_clock::time_point received_at) {
  {
    std::lock_guard<std::mutex> lock(slots->mu);
    ++slots->answered;
  }
  return make_release_token([slots, received_at] {
    const auto now = std::chrono::steady_clock::now();
    std::lock_guard<std::mutex> lock(slots->mu);
    --slots->answered;
    slots->window.settled(now - received_at, now);
    if (slots->multi) curl_multi_wakeup(slots->multi);
  });
}

}  // namespace

struct HttpClient::Impl {
  struct Pending {
    HttpRequest request;
    Callback done;
    std::uint64_t seq = 0;          // submission order, the tie-breaker
    bool waited_for_token = false;  // counted once in rate_limited_total
  };
  // Heap order for std::push_heap/pop_heap: the top is the smallest priority,
  // the earliest submitted among equals.
  static bool later(const Pending& a, const Pending& b) {
    if (a.request.priority != b.request.priority) return a.request.priority > b.request.priority;
    return a.seq > b.seq;
  }

  // One running transfer; owned by the client thread. Never moved while the
  // easy handle points into it (request.body, errbuf, this).
  struct Transfer {
    CURL* easy = nullptr;
    curl_slist* header_list = nullptr;
    HttpRequest request;
    Callback done;
    HttpResponse response;
    std::size_t max_body = 0;
    bool body_too_large = false;
    char errbuf[CURL_ERROR_SIZE] = {};
  };

  Impl(Options opts, std::atomic<std::size_t>& in_flight_counter)
      : options(std::move(opts)),
        in_flight(in_flight_counter),
        bucket(options.rate_per_second, options.rate_burst, TokenBucket::Clock::now()) {
    if (options.max_in_flight == 0) options.max_in_flight = 1;
    if (options.answer_lag_target.count() > 0)
      answers = std::make_shared<AnswerSlots>(AnswerWindow(
          options.answer_window_min, options.max_in_flight, options.answer_lag_target));
  }

  // How many more transfers may start: max_in_flight, or with the window the
  // open requests (running, and answered but not settled) below its limit.
  std::size_t room(std::size_t running) const {
    std::size_t open = running, cap = options.max_in_flight;
    if (answers) {
      std::lock_guard<std::mutex> lock(answers->mu);
      open += answers->answered;
      cap = std::min(cap, answers->window.limit());
    }
    return open < cap ? cap - open : 0;
  }

  Options options;
  std::atomic<std::size_t>& in_flight;
  CURLM* multi = nullptr;
  std::shared_ptr<AnswerSlots> answers;  // null: answer_lag_target zero
  std::thread thread;

  mutable std::mutex mu;
  std::vector<Pending> queue;            // a heap (see later); guarded by mu
  std::uint64_t next_seq = 0;            // guarded by mu
  TokenBucket bucket;                    // guarded by mu
  std::uint64_t rate_limited_total = 0;  // guarded by mu
  bool stopping = false;                 // guarded by mu

  // Caller holds mu.
  Pending pop_queued() {
    std::pop_heap(queue.begin(), queue.end(), later);
    Pending p = std::move(queue.back());
    queue.pop_back();
    return p;
  }

  // Client thread only.
  std::unordered_map<CURL*, std::unique_ptr<Transfer>> active;
  std::vector<CURL*> free_handles;

  // ---- libcurl callbacks (client thread, inside curl_multi_perform) --------

  static size_t write_cb(char* data, size_t size, size_t nmemb, void* user) noexcept {
    auto* t = static_cast<Transfer*>(user);
    const size_t n = size * nmemb;
    try {
      if (t->response.body.size() + n > t->max_body) {
        t->body_too_large = true;
        return 0;  // CURLE_WRITE_ERROR aborts the transfer
      }
      t->response.body.append(data, n);
      return n;
    } catch (...) {
      return 0;
    }
  }

  static size_t header_cb(char* data, size_t size, size_t nitems, void* user) noexcept {
    auto* t = static_cast<Transfer*>(user);
    const size_t n = size * nitems;
    try {
      std::string_view line(data, n);
      if (line.size() >= 5 && line.substr(0, 5) == "HTTP/") {
        // A new status line: only the final response's headers are kept
        // (drops 1xx interim responses).
        t->response.headers.clear();
        return n;
      }
      if (!line.empty() && (line[0] == ' ' || line[0] == '\t')) {
        // obsolete line folding: continues the previous header's value
        const auto more = trim(line);
        if (!t->response.headers.empty() && !more.empty()) {
          auto& v = t->response.headers.back().second;
          if (!v.empty()) v += ' ';
          v.append(more);
        }
        return n;
      }
      const auto colon = line.find(':');
      if (colon == std::string_view::npos || colon == 0) return n;  // blank line etc.
      t->response.headers.emplace_back(to_lower(trim(line.substr(0, colon))),
                                       std::string(trim(line.substr(colon + 1))));
      return n;
    } catch (...) {
      return 0;  // aborts the transfer
    }
  }

  // ---- handles -------------------------------------------------------------

  CURL* take_handle() {
    if (!free_handles.empty()) {
      CURL* e = free_handles.back();
      free_handles.pop_back();
      return e;
    }
    return curl_easy_init();
  }

  void release_handle(CURL* e) {
    if (!e) return;
    // COOKIEFILE NULL before the reset, for two reasons: curl_easy_reset keeps
    // the cookie store (this destroys it, so no cookie outlives its request),
    // and libcurl 7.88.1 leaks the CURLOPT_COOKIEFILE list on reset
    // (curl/curl#10694, fixed in 8.0 by #10709); NULL frees that list.
    curl_easy_setopt(e, CURLOPT_COOKIEFILE, static_cast<const char*>(nullptr));
    curl_easy_reset(e);
    if (free_handles.size() < kMaxFreeHandles) {
      free_handles.push_back(e);
    } else {
      curl_easy_cleanup(e);
    }
  }

  // Configures t->easy for t->request. Returns CURLE_OK or the first failure.
  CURLcode configure(Transfer& t) {
    CURL* e = t.easy;
    const HttpRequest& r = t.request;
    CURLcode rc = CURLE_OK;
    auto set = [&](CURLoption opt, auto value) {
      if (rc == CURLE_OK) rc = curl_easy_setopt(e, opt, value);
    };

    const long timeout_ms = static_cast<long>(
        std::clamp<long long>(r.timeout.count(), 1, static_cast<long long>(LONG_MAX)));

    set(CURLOPT_PRIVATE, static_cast<void*>(&t));
    set(CURLOPT_ERRORBUFFER, t.errbuf);
    set(CURLOPT_NOSIGNAL, 1L);
    set(CURLOPT_URL, r.url.c_str());
    set(CURLOPT_PROTOCOLS_STR, "http,https");
    set(CURLOPT_FOLLOWLOCATION, 0L);
    set(CURLOPT_TIMEOUT_MS, timeout_ms);
    set(CURLOPT_CONNECTTIMEOUT_MS, std::min(timeout_ms, kMaxConnectTimeoutMs));
    set(CURLOPT_ACCEPT_ENCODING, "");
    set(CURLOPT_USERAGENT, options.user_agent.c_str());
    set(CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
    set(CURLOPT_WRITEFUNCTION, &Impl::write_cb);
    set(CURLOPT_WRITEDATA, static_cast<void*>(&t));
    set(CURLOPT_HEADERFUNCTION, &Impl::header_cb);
    set(CURLOPT_HEADERDATA, static_cast<void*>(&t));
    if (options.max_body_bytes <= static_cast<std::size_t>(LLONG_MAX)) {
      // early refusal when Content-Length already announces too much
      set(CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(options.max_body_bytes));
    }

    // Method and body.
    const std::string& m = r.method;
    auto with_body = [&] {
      set(CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(r.body.size()));
      set(CURLOPT_POSTFIELDS, r.body.c_str());  // sends Content-Length even when 0
    };
    if (m.empty() || iequals(m, "GET")) {
      set(CURLOPT_HTTPGET, 1L);
      if (!r.body.empty()) {
        with_body();
        set(CURLOPT_CUSTOMREQUEST, "GET");
      }
    } else if (iequals(m, "HEAD")) {
      set(CURLOPT_NOBODY, 1L);
    } else if (iequals(m, "POST")) {
      set(CURLOPT_POST, 1L);
      with_body();
    } else if (iequals(m, "PUT") || iequals(m, "PATCH")) {
      with_body();
      set(CURLOPT_CUSTOMREQUEST, iequals(m, "PUT") ? "PUT" : "PATCH");
    } else if (iequals(m, "DELETE")) {
      if (!r.body.empty()) with_body();
      set(CURLOPT_CUSTOMREQUEST, "DELETE");
    } else {
      if (!is_token(m)) return CURLE_BAD_FUNCTION_ARGUMENT;
      if (!r.body.empty()) with_body();
      set(CURLOPT_CUSTOMREQUEST, m.c_str());
    }

    // Headers. Disable "Expect: 100-continue" (a 1 s stall on large bodies)
    // unless the caller asks for it.
    bool has_expect = false;
    for (const auto& h : r.headers) {
      if (istarts_with(h, "Expect:")) has_expect = true;
      curl_slist* next = curl_slist_append(t.header_list, h.c_str());
      if (!next) return CURLE_OUT_OF_MEMORY;
      t.header_list = next;
    }
    if (!has_expect) {
      curl_slist* next = curl_slist_append(t.header_list, "Expect:");
      if (!next) return CURLE_OUT_OF_MEMORY;
      t.header_list = next;
    }
    set(CURLOPT_HTTPHEADER, t.header_list);

    // Cookies: the engine holds exactly request.cookies.
    set(CURLOPT_COOKIELIST, "ALL");  // whatever a reused handle still had
    set(CURLOPT_COOKIEFILE, "");     // enable the engine, load no file
    for (const auto& line : r.cookies) {
      if (!loadable_cookie_line(line)) continue;
      set(CURLOPT_COOKIELIST, line.c_str());
    }
    return rc;
  }

  // ---- completion ------------------------------------------------------------

  static void invoke(Callback& done, HttpResponse response) {
    if (!done) return;
    try {
      done(std::move(response));
    } catch (...) {
      // a throwing callback must not take the client thread down
    }
  }

  static void complete_pending_with(Pending& p, int code, const char* error) {
    HttpResponse resp;
    resp.curl_code = code;
    resp.error = error;
    invoke(p.done, std::move(resp));
  }

  // Error text that cannot carry a header or cookie value: libcurl's message
  // unless it happens to contain one of them, then the generic strerror text.
  static std::string safe_error(const Transfer& t, CURLcode code) {
    std::string text = t.errbuf[0] ? std::string(t.errbuf) : std::string();
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
    if (text.empty()) return curl_easy_strerror(code);
    auto leaks = [&](std::string_view secret) {
      secret = trim(secret);
      return secret.size() >= kMinSecretLength && text.find(secret) != std::string::npos;
    };
    bool bad = false;
    for (const auto& h : t.request.headers) {
      const auto colon = h.find(':');
      if (leaks(colon == std::string::npos ? std::string_view(h)
                                           : std::string_view(h).substr(colon + 1)))
        bad = true;
    }
    for (const auto& [k, v] : t.response.headers) {
      if (leaks(v)) bad = true;
    }
    auto cookie_leaks = [&](const std::vector<std::string>& lines) {
      for (const auto& line : lines) {
        const auto f = cookie_fields(line);
        if (f.size() >= 7 && (leaks(f[5]) || leaks(f[6]))) return true;
        if (f.size() < 7 && leaks(line)) return true;
      }
      return false;
    };
    if (cookie_leaks(t.request.cookies) || cookie_leaks(t.response.cookies)) bad = true;
    return bad ? std::string(curl_easy_strerror(code)) : text;
  }

  void finish(CURL* easy, CURLcode code) {
    auto it = active.find(easy);
    if (it == active.end()) return;
    std::unique_ptr<Transfer> t = std::move(it->second);
    active.erase(it);
    curl_multi_remove_handle(multi, easy);

    HttpResponse& resp = t->response;
    resp.received_at = std::chrono::steady_clock::now();
    long status = 0;
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
    resp.status = status;
    char* redirect = nullptr;
    if (curl_easy_getinfo(easy, CURLINFO_REDIRECT_URL, &redirect) == CURLE_OK && redirect)
      resp.redirect_url = redirect;
    curl_off_t total_us = 0;
    if (curl_easy_getinfo(easy, CURLINFO_TOTAL_TIME_T, &total_us) == CURLE_OK)
      resp.elapsed = std::chrono::microseconds(total_us);
    curl_slist* jar = nullptr;
    if (curl_easy_getinfo(easy, CURLINFO_COOKIELIST, &jar) == CURLE_OK) {
      const std::time_t now = std::time(nullptr);
      for (curl_slist* p = jar; p; p = p->next) {
        if (p->data && !cookie_expired(p->data, now)) resp.cookies.emplace_back(p->data);
      }
      curl_slist_free_all(jar);
    }

    resp.curl_code = static_cast<int>(code);
    if (code != CURLE_OK) {
      if (t->body_too_large || code == CURLE_FILESIZE_EXCEEDED) {
        resp.error = "response body over " + std::to_string(options.max_body_bytes) + " bytes";
      } else {
        resp.error = safe_error(*t, code);
      }
    }

    curl_slist_free_all(t->header_list);
    t->header_list = nullptr;
    t->easy = nullptr;
    release_handle(easy);
    in_flight.fetch_sub(1);
    if (answers) resp.answer_hold = hold_answer(answers, resp.received_at);

    invoke(t->done, std::move(resp));
  }

  void start(Pending p) {
    auto t = std::make_unique<Transfer>();
    t->request = std::move(p.request);
    t->done = std::move(p.done);
    t->max_body = options.max_body_bytes;
    t->easy = take_handle();
    if (!t->easy) {
      HttpResponse resp;
      resp.curl_code = CURLE_FAILED_INIT;
      resp.error = curl_easy_strerror(CURLE_FAILED_INIT);
      invoke(t->done, std::move(resp));
      return;
    }
    CURLcode rc = configure(*t);
    if (rc == CURLE_OK) {
      if (curl_multi_add_handle(multi, t->easy) != CURLM_OK) rc = CURLE_FAILED_INIT;
    }
    if (rc != CURLE_OK) {
      CURL* e = t->easy;
      curl_slist_free_all(t->header_list);
      t->header_list = nullptr;
      t->easy = nullptr;
      release_handle(e);
      HttpResponse resp;
      resp.curl_code = rc;
      resp.error =
          rc == CURLE_BAD_FUNCTION_ARGUMENT ? "invalid request method" : curl_easy_strerror(rc);
      invoke(t->done, std::move(resp));
      return;
    }
    in_flight.fetch_add(1);
    CURL* e = t->easy;
    active.emplace(e, std::move(t));
  }

  // Returns true when at least one transfer finished.
  bool reap() {
    bool any = false;
    int left = 0;
    while (CURLMsg* msg = curl_multi_info_read(multi, &left)) {
      if (msg->msg != CURLMSG_DONE) continue;
      CURL* easy = msg->easy_handle;
      const CURLcode code = msg->data.result;  // read before the handle is removed
      finish(easy, code);
      any = true;
    }
    return any;
  }

  void run() {
    constexpr std::chrono::milliseconds kMaxSleep{1000};
    for (;;) {
      std::vector<Pending> batch;
      auto sleep = kMaxSleep;
      {
        std::lock_guard<std::mutex> lock(mu);
        if (stopping) break;
        const auto now = TokenBucket::Clock::now();
        std::size_t room_now = room(active.size());
        while (!queue.empty() && batch.size() < room_now) {
          if (!bucket.try_take(now)) {
            Pending& top = queue.front();
            if (!top.waited_for_token) {
              top.waited_for_token = true;
              ++rate_limited_total;
            }
            // Wake when the next token is due (at least 1 ms: no busy loop).
            sleep = std::clamp(std::chrono::ceil<std::chrono::milliseconds>(bucket.wait(now)),
                               std::chrono::milliseconds(1), kMaxSleep);
            break;
          }
          batch.push_back(pop_queued());
        }
      }
      for (auto& p : batch) start(std::move(p));

      int running = 0;
      curl_multi_perform(multi, &running);
      if (reap()) continue;  // freed slots: start queued work before sleeping

      curl_multi_poll(multi, nullptr, 0, static_cast<int>(sleep.count()), nullptr);
    }
    shutdown_all();
  }

  // Client thread, after the stop flag: every in-flight and queued request
  // completes with "shutdown".
  void shutdown_all() {
    while (!active.empty()) {
      auto it = active.begin();
      CURL* easy = it->first;
      std::unique_ptr<Transfer> t = std::move(it->second);
      active.erase(it);
      curl_multi_remove_handle(multi, easy);
      curl_slist_free_all(t->header_list);
      t->header_list = nullptr;
      t->easy = nullptr;
      release_handle(easy);
      in_flight.fetch_sub(1);
      HttpResponse resp;
      resp.curl_code = CURLE_ABORTED_BY_CALLBACK;
      resp.error = "shutdown";
      invoke(t->done, std::move(resp));
    }
    drain_queue();
  }

  // Completes whatever is queued with "shutdown" (callbacks may submit more:
  // those are drained too).
  void drain_queue() {
    for (;;) {
      std::vector<Pending> rest;
      {
        std::lock_guard<std::mutex> lock(mu);
        rest.swap(queue);
      }
      if (rest.empty()) return;
      for (auto& p : rest) complete_pending_with(p, CURLE_ABORTED_BY_CALLBACK, "shutdown");
    }
  }
};

HttpClient::HttpClient(Options options)
    : impl_(std::make_unique<Impl>(std::move(options), in_flight_)) {
  global_init();
  impl_->multi = curl_multi_init();
  if (!impl_->multi) throw std::runtime_error("curl_multi_init failed");
  if (impl_->answers) impl_->answers->multi = impl_->multi;
  if (impl_->options.max_host_connections > 0) {
    curl_multi_setopt(impl_->multi, CURLMOPT_MAX_HOST_CONNECTIONS,
                      impl_->options.max_host_connections);
  }
  impl_->thread = start_named_thread("sd-http", [impl = impl_.get()] { impl->run(); });
}

HttpClient::~HttpClient() {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->stopping = true;
  }
  curl_multi_wakeup(impl_->multi);
  if (impl_->thread.joinable()) impl_->thread.join();
  // A submit() racing with the destructor may have queued after the thread's
  // final drain; those still get their "shutdown" callback (on this thread).
  impl_->drain_queue();
  for (CURL* e : impl_->free_handles) curl_easy_cleanup(e);
  impl_->free_handles.clear();
  if (impl_->answers) {
    std::lock_guard<std::mutex> lock(impl_->answers->mu);
    impl_->answers->multi = nullptr;  // holds released from now on wake nobody
  }
  curl_multi_cleanup(impl_->multi);
  impl_->multi = nullptr;
}

void HttpClient::submit(HttpRequest request, Callback done) {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->queue.push_back(Impl::Pending{std::move(request), std::move(done), impl_->next_seq++});
    std::push_heap(impl_->queue.begin(), impl_->queue.end(), Impl::later);
  }
  curl_multi_wakeup(impl_->multi);
}

std::size_t HttpClient::queued() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->queue.size();
}

HttpLoad HttpClient::load() const {
  HttpLoad out;
  out.in_flight = in_flight_.load();
  std::lock_guard<std::mutex> lock(impl_->mu);
  out.queued = impl_->queue.size();
  out.rate_limit_tokens = impl_->bucket.tokens(TokenBucket::Clock::now());
  out.rate_limited_total = impl_->rate_limited_total;
  if (impl_->answers) {
    std::lock_guard<std::mutex> answers_lock(impl_->answers->mu);
    out.answers_unsettled = impl_->answers->answered;
    out.answer_window = impl_->answers->window.limit();
  }
  return out;
}

}  // namespace sessiond
