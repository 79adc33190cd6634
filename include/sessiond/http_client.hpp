#pragma once
// An asynchronous HTTP client: one libcurl multi handle driven by its own
// thread, so no CAF worker ever blocks on the network. Callers hand over a
// request and a callback; the callback runs on the client's thread and must be
// short (typically one caf::anon_send).

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "sessiond/release_token.hpp"

namespace sessiond {

struct HttpRequest {
  std::string method = "GET";
  std::string url;
  std::vector<std::string> headers;  // "Name: value"
  std::string body;
  // Netscape cookie-file lines loaded into libcurl's cookie engine before the
  // transfer (the session's jar); see CookieJar.
  std::vector<std::string> cookies;
  std::chrono::milliseconds timeout{10000};
  // Queue order: smaller starts first; equal ones in submission order. Session
  // actors pass their idle deadline (ms since the epoch), so when requests
  // wait (in-flight cap, rate limit) the session closest to being logged out
  // goes first: after an outage, catch-up runs most-overdue first.
  std::int64_t priority = 0;
};

struct HttpResponse {
  long status = 0;    // 0 when no HTTP response arrived
  int curl_code = 0;  // CURLcode; 0 = transport ok
  std::string error;  // curl's error text; never contains headers or cookies
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
  std::string body;
  std::string redirect_url;          // CURLINFO_REDIRECT_URL (redirects are not followed)
  std::vector<std::string> cookies;  // the jar after the transfer (CURLINFO_COOKIELIST)
  std::chrono::microseconds elapsed{0};
  // When the transfer completed (the HTTP thread): where the save lag starts.
  std::chrono::steady_clock::time_point received_at{};
  // With Options::answer_lag_target: this answer's place in the client's
  // window (AnswerWindow), given back when the last copy is gone. Whoever
  // saves what the answer rotated keeps a copy until the rename; everyone
  // else just drops the response.
  ReleaseToken answer_hold;

  bool transport_ok() const { return curl_code == 0; }
  // First header with that (case-insensitive) name.
  std::optional<std::string> header(std::string_view name) const;
};

// How long a Retry-After header asks to wait: delta-seconds or an HTTP-date
// (parsed by libcurl's curl_getdate), capped at one hour; nullopt when absent
// or unparsable. A date in the past means "now" (zero).
std::optional<std::chrono::milliseconds> retry_after_delay(
    const HttpResponse& response, std::chrono::system_clock::time_point now);

// The client's queue and limiter, for metrics.
struct HttpLoad {
  std::size_t in_flight = 0;
  std::size_t queued = 0;
  double rate_limit_tokens = 0;          // tokens in the bucket now (burst when unlimited)
  std::uint64_t rate_limited_total = 0;  // requests that had to wait for a token
  // With an answer lag target (the shared client only): answers not settled
  // yet, and how many requests the AnswerWindow lets be open now.
  std::size_t answers_unsettled = 0;
  std::size_t answer_window = 0;
};

// What session actors talk to; tests substitute a scripted transport.
class HttpTransport {
 public:
  using Callback = std::function<void(HttpResponse)>;
  virtual ~HttpTransport() = default;
  virtual void submit(HttpRequest request, Callback done) = 0;
};

class HttpClient final : public HttpTransport {
 public:
  struct Options {
    std::size_t max_in_flight = 256;  // transfers running at once; the rest wait (see priority)
    std::size_t max_body_bytes = 4u << 20;  // larger bodies fail the transfer (curl_code set)
    long max_host_connections = 0;          // 0 = libcurl default (no limit)
    std::string user_agent = "sessiond";
    double rate_per_second = 0;  // token bucket: requests started per second; 0 = unlimited
    double rate_burst = 0;       // bucket size; 0 = one second's worth
    // Nonzero: a request stays open until its answer is settled (the
    // response's answer_hold released), and the open requests are capped by
    // an AnswerWindow that keeps answers settled within this lag (issue 11).
    // Zero: a request is open until its answer arrives (max_in_flight only).
    std::chrono::microseconds answer_lag_target{0};
    std::size_t answer_window_min = 8;
  };

  explicit HttpClient(Options options);
  ~HttpClient() override;  // stops the thread; pending callbacks get error "shutdown"
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  void submit(HttpRequest request, Callback done) override;

  std::size_t in_flight() const { return in_flight_.load(); }
  std::size_t queued() const;
  HttpLoad load() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::atomic<std::size_t> in_flight_{0};
};

}  // namespace sessiond
