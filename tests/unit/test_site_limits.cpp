// Per-site limits in front of the shared HTTP client, and statuses keyed by
// (site, id).
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "sessiond/metrics.hpp"
#include "sessiond/site_limiter.hpp"
#include "sessiond/status_board.hpp"
#include "sessiond/status_table.hpp"

using namespace sessiond;
using namespace std::chrono_literals;

namespace {

HttpRequest req(std::int64_t priority) {
  HttpRequest r;
  r.priority = priority;
  return r;
}

// Holds every request until told to answer: a slow site (its HTTP requests
// or its browser pages). `answered` is the answer every request gets.
template <class Runner, class Request, class Result>
class Held : public Runner {
 public:
  using Callback = typename Runner::Callback;
  explicit Held(Result answered) : answered_(std::move(answered)) {}
  void submit(Request, Callback done) override {
    std::lock_guard<std::mutex> lock(mu_);
    held_.push_back(std::move(done));
  }
  std::size_t held() {
    std::lock_guard<std::mutex> lock(mu_);
    return held_.size();
  }
  void answer_all() {
    std::vector<Callback> now;
    {
      std::lock_guard<std::mutex> lock(mu_);
      now.swap(held_);
    }
    for (auto& cb : now) cb(answered_);
  }

 private:
  Result answered_;
  std::mutex mu_;
  std::vector<Callback> held_;
};

struct HeldTransport : Held<HttpTransport, HttpRequest, HttpResponse> {
  HeldTransport()
      : Held([] {
          HttpResponse r;
          r.status = 200;
          return r;
        }()) {}
};

struct HeldBrowser : Held<BrowserRunner, BrowserStepRequest, BrowserStepResult> {
  HeldBrowser()
      : Held([] {
          BrowserStepResult r;
          r.verdict = BrowserStepResult::Verdict::logged_in;
          return r;
        }()) {}
};

}  // namespace

TEST_CASE("a site's queue: its in-flight share, most urgent first", "[sites][limits]") {
  auto t0 = TokenBucket::Clock::now();
  SiteQueue q(2, 0, 0, t0);
  q.push(req(30), nullptr);
  q.push(req(10), nullptr);
  q.push(req(20), nullptr);
  auto first = q.take_ready(t0);
  REQUIRE(first.size() == 2);
  CHECK(first[0].request.priority == 10);
  CHECK(first[1].request.priority == 20);
  CHECK(q.take_ready(t0).empty());  // its share is used up
  CHECK(q.in_flight() == 2);
  q.finished();
  auto next = q.take_ready(t0);
  REQUIRE(next.size() == 1);
  CHECK(next[0].request.priority == 30);
  CHECK(q.queued() == 0);
}

TEST_CASE("a site's queue: its own rate", "[sites][limits]") {
  auto t0 = TokenBucket::Clock::now();
  SiteQueue q(100, 2, 2, t0);  // 2/s, burst 2
  for (int i = 0; i < 5; ++i) q.push(req(i), nullptr);
  TokenBucket::Clock::duration wait{};
  CHECK(q.take_ready(t0, &wait).size() == 2);
  CHECK(wait > TokenBucket::Clock::duration::zero());
  CHECK(wait <= std::chrono::milliseconds(500));
  CHECK(q.rate_limited_total() == 1);
  CHECK(q.take_ready(t0, &wait).empty());
  CHECK(q.rate_limited_total() == 1);  // the same waiting request, counted once
  CHECK(q.take_ready(t0 + 500ms, &wait).size() == 1);
  CHECK(q.take_ready(t0 + 1500ms, &wait).size() == 2);
  CHECK(wait == TokenBucket::Clock::duration::zero());
}

TEST_CASE("a slow site fills its own share, not the shared client's", "[sites][limits]") {
  HeldTransport shared;
  SiteLimiter slow(shared, SiteLimiter::Options{2, 0, 0});
  SiteLimiter other(shared, SiteLimiter::Options{2, 0, 0});
  std::atomic<int> slow_done{0}, other_done{0};
  for (int i = 0; i < 10; ++i) slow.submit(req(i), [&](HttpResponse) { ++slow_done; });
  CHECK(shared.held() == 2);  // only its share reached the shared client
  CHECK(slow.load().queued == 8);
  other.submit(req(0), [&](HttpResponse) { ++other_done; });
  CHECK(shared.held() == 3);  // the other site is not behind the slow one
  // Bounded: each round answers what is held; 10 + 1 requests need at most 6 rounds.
  for (int round = 0; round < 10 && (slow_done < 10 || other_done < 1); ++round)
    shared.answer_all();
  CHECK(slow_done == 10);
  CHECK(other_done == 1);
  CHECK(slow.load().in_flight == 0);
}

TEST_CASE("a site's rate is kept by its timer", "[sites][limits]") {
  HeldTransport shared;
  SiteLimiter limited(shared, SiteLimiter::Options{10, 20, 1});  // 20/s, one at a time
  for (int i = 0; i < 3; ++i) limited.submit(req(i), [](HttpResponse) {});
  CHECK(shared.held() == 1);
  // The timer starts the next ones (one every 50 ms): bounded wait.
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (shared.held() < 3 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(10ms);
  CHECK(shared.held() == 3);
  limited.stop();
  shared.answer_all();  // completions after stop() still reach their callers
}

TEST_CASE("stop() answers what waits for a token, and every later submit", "[sites][limits]") {
  HeldTransport shared;
  std::atomic<int> shutdown{0};
  auto count_shutdown = [&](HttpResponse r) {
    if (r.error == "shutdown") ++shutdown;
  };
  // One token, the next in 1000 s: the second request waits whatever the
  // scheduler does (a 20/s bucket refilled before stop() on a loaded machine).
  SiteLimiter limited(shared, SiteLimiter::Options{10, 0.001, 1});
  limited.submit(req(0), count_shutdown);
  limited.submit(req(1), count_shutdown);
  CHECK(shared.held() == 1);
  limited.stop();
  CHECK(shutdown == 1);
  limited.submit(req(2), count_shutdown);
  CHECK(shutdown == 2);
  shared.answer_all();
  CHECK(shutdown == 2);  // the one in flight completes with the client's answer
}

TEST_CASE("a slow site fills its own browser pages, not the shared pool's", "[sites][limits]") {
  HeldBrowser pool;
  SiteBrowserLimiter slow(pool, SiteBrowserLimiter::Options{2, 0, 0});
  SiteBrowserLimiter other(pool, SiteBrowserLimiter::Options{1, 0, 0});
  int slow_done = 0, other_done = 0, shut_down = 0;
  for (int i = 0; i < 5; ++i) {
    BrowserStepRequest r;
    r.priority = i;
    slow.submit(std::move(r), [&](BrowserStepResult) { ++slow_done; });
  }
  CHECK(pool.held() == 2);
  CHECK(slow.load().queued == 3);
  other.submit(BrowserStepRequest{}, [&](BrowserStepResult) { ++other_done; });
  CHECK(pool.held() == 3);  // not behind the slow site's queue
  pool.answer_all();        // 3 answered; the slow site's next 2 start
  CHECK(other_done == 1);
  CHECK(slow_done == 2);
  CHECK(pool.held() == 2);
  slow.stop();  // its last waiting step: transient, never sent
  slow.submit(BrowserStepRequest{}, [&](BrowserStepResult r) {
    if (r.verdict == BrowserStepResult::Verdict::transient && r.not_sent) ++shut_down;
  });
  CHECK(shut_down == 1);
  CHECK(slow_done == 3);  // the one that waited completed at stop()
  pool.answer_all();
  CHECK(slow_done == 5);
}

TEST_CASE("statuses are keyed by site and id", "[sites][status]") {
  StatusTable t;
  SessionStatus a;
  a.site = "rade";
  a.id = "alice";
  a.state = SessionState::active;
  SessionStatus b = a;
  b.site = "nics24";
  b.state = SessionState::retrying;
  SessionStatus c = a;
  c.id = "bob";
  t.put(a);
  t.put(b);
  t.put(c);
  CHECK(t.size() == 3);
  CHECK(t.find("rade", "alice")->state == SessionState::active);
  CHECK(t.find("nics24", "alice")->state == SessionState::retrying);
  CHECK(t.find("", "alice") == nullptr);  // two sites have it
  CHECK(t.find("", "bob")->site == "rade");
  CHECK(t.sites_of("alice") == std::vector<std::string>{"nics24", "rade"});
  auto now = std::chrono::system_clock::now();
  auto all = t.status_json("", 100, true, true, StatusInfo{}, now);
  CHECK(all["totalSessions"] == 3);
  CHECK(all["sites"]["rade"]["totalSessions"] == 2);
  CHECK(all["sites"]["nics24"]["sessionsByState"]["retrying"] == 1);
  CHECK(all["sessions"][0]["site"] == "nics24");  // by id, then site
  auto rade = t.status_json("", 100, true, true, StatusInfo{}, now, "rade");
  CHECK(rade["totalSessions"] == 2);
  CHECK(rade["sessions"].size() == 2);
  CHECK(rade["sites"].size() == 1);
  // A configured site without a session yet (its directory missing) is listed with 0.
  auto with_empty = t.status_json("", 100, true, true, StatusInfo{}, now, "", {"baman24", "rade"});
  CHECK(with_empty["sites"]["baman24"]["totalSessions"] == 0);
  CHECK(with_empty["sites"].size() == 3);
  t.forget("rade", "alice");
  CHECK(t.find("", "alice")->site == "nics24");

  SiteInfo info;
  info.name = "rade";
  info.dir = "/s/rade";
  info.pattern = "session-{id}.json";
  info.breaker = [] { return std::string("open"); };
  SiteInfo missing;
  missing.name = "gone";
  missing.error = "cannot read /s/gone";
  auto sites = sites_json({info, missing}, {}, t, now);
  CHECK(sites["sites"][0]["totalSessions"] == 1);
  CHECK(sites["sites"][0]["breaker"] == "open");
  CHECK(sites["sites"][0]["error"].is_null());
  CHECK(sites["sites"][1]["error"] == "cannot read /s/gone");
  // The watcher found the directory again.
  auto back = sites_json({info, missing}, {{"gone", ""}}, t, now);
  CHECK(back["sites"][1]["error"].is_null());
}

TEST_CASE("per-site metrics carry a bounded site label", "[sites][metrics]") {
  MetricsConfig mc;
  mc.sites = {"rade", "nics24"};
  Metrics m(mc);
  m.refresh_finished(RefreshResult::success, 0.1, "rade");
  m.refresh_finished(RefreshResult::transient_error, 0.1, "nics24");
  m.request("check", "200", "rade");
  m.file_error(FileErrorKind::io, "nics24");
  m.set_sessions(SessionState::active, 3, "rade");
  m.sample_site_circuit("nics24", true);
  m.sample_site_circuit("unknown", true);  // not a configured site: no new series
  CHECK(m.refreshes(RefreshResult::success, "rade") == 1);
  CHECK(m.refreshes(RefreshResult::success, "nics24") == 0);
  CHECK(m.file_errors(FileErrorKind::io, "nics24") == 1);
  const auto text = m.serialize();
  auto has = [&](const std::string& line) {
    INFO(line);
    CHECK(text.find(line) != std::string::npos);
  };
  has(R"(sessiond_refresh_total{result="success",site="rade"} 1)");
  has(R"(sessiond_refresh_total{result="transient_error",site="nics24"} 1)");
  has(R"(sessiond_http_requests_total{code="200",site="rade",step="check"} 1)");
  has(R"(sessiond_session_file_errors_total{reason="io",site="nics24"} 1)");
  has(R"(sessiond_sessions{site="rade",state="active"} 3)");
  has(R"(sessiond_circuit_open{site="nics24"} 1)");
  has(R"(sessiond_circuit_open{site="rade"} 0)");
  has(R"(sessiond_refresh_duration_seconds_count{site="rade"} 1)");
  CHECK(text.find("unknown") == std::string::npos);

  // Without sites (one-site tests): no site label at all.
  Metrics plain{MetricsConfig{}};
  plain.refresh_finished(RefreshResult::success, 0.1, "whatever");
  CHECK(plain.refreshes(RefreshResult::success) == 1);
  CHECK(plain.serialize().find("site=") == std::string::npos);
}
