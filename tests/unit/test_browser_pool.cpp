// The browser pool against the real headless Chromium and a tiny
// client-rendered site on 127.0.0.1 (browser_test_site.hpp).

#include <catch2/catch.hpp>

#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "browser_test_site.hpp"
#include "fake_site.hpp"
#include "sessiond/browser_pool.hpp"
#include "sessiond/browser_process.hpp"
#include "sessiond/devtools.hpp"

using namespace sessiond;
using namespace std::chrono_literals;
using nlohmann::json;
using Verdict = BrowserStepResult::Verdict;

namespace {

const std::string kShell = "/usr/lib/chromium/chromium-headless-shell";

BrowserPool::Options pool_options(int concurrent = 1) {
  BrowserPool::Options o;
  o.launch.path = kShell;
  o.max_concurrent = concurrent;
  o.restart_backoff_base = 100ms;
  o.restart_backoff_max = 1000ms;
  return o;
}

BrowserStepSpec home_spec(const std::string& url) {
  BrowserStepSpec spec;
  spec.url = url;
  spec.wait_for.push_back(PageCondition{".homeSection", std::nullopt, std::nullopt});
  spec.logged_out.push_back(PageCondition{std::nullopt, std::nullopt, "/auth/login"});
  spec.settle = 100ms;
  spec.timeout = 10000ms;
  return spec;
}

BrowserStepResult run_step(BrowserPool& pool, BrowserStepRequest req) {
  auto done = std::make_shared<std::promise<BrowserStepResult>>();
  auto fut = done->get_future();
  const auto bound = req.spec.timeout + 15s;
  pool.submit(std::move(req), [done](BrowserStepResult r) { done->set_value(std::move(r)); });
  REQUIRE(fut.wait_for(bound) == std::future_status::ready);
  return fut.get();
}

std::string cookie_value(const std::optional<json>& cookies, const std::string& name) {
  if (!cookies) return "";
  for (const auto& c : *cookies)
    if (c.value("name", "") == name) return c.value("value", "");
  return "";
}

std::string ls_value(const std::optional<json>& origins, const std::string& origin,
                     const std::string& name) {
  if (!origins) return "";
  for (const auto& o : *origins)
    if (o.value("origin", "") == origin)
      for (const auto& kv : o["localStorage"])
        if (kv.value("name", "") == name) return kv.value("value", "");
  return "";
}

// No process of the group is alive (zombies waiting for init do not count).
bool group_gone(pid_t pgid) {
  const auto until = std::chrono::steady_clock::now() + 3s;
  while (std::chrono::steady_clock::now() < until) {
    if (process_group_usage(pgid, false).processes == 0) return true;
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

}  // namespace

TEST_CASE("browser process: launch, talk over the pipe, stop", "[browser]") {
  std::string error;
  auto b = BrowserProcess::launch(BrowserLaunchOptions{kShell, {}, "", ""}, error);
  REQUIRE(b);
  const pid_t pid = b->pid();
  const std::string dir = b->user_data_dir();
  CHECK(::access(dir.c_str(), F_OK) == 0);
  CHECK(::getpgid(pid) == pid);
  // One command and its reply over the pipe.
  devtools::Correlator cdp;
  devtools::Framer framer;
  REQUIRE(b->write(cdp.send("Browser.getVersion").frame));
  json reply;
  const auto until = std::chrono::steady_clock::now() + 10s;
  while (reply.is_null() && std::chrono::steady_clock::now() < until) {
    pollfd p{b->reply_fd(), POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    char buf[4096];
    const ssize_t n = b->read_some(buf, sizeof buf);
    REQUIRE(n != 0);
    if (n < 0) continue;
    for (auto& m : framer.feed(std::string_view(buf, static_cast<std::size_t>(n))).messages)
      if (std::holds_alternative<devtools::Reply>(cdp.dispatch(m))) reply = m;
  }
  REQUIRE(reply.contains("result"));
  CHECK(reply["result"]["product"].get<std::string>().find("HeadlessChrome") != std::string::npos);
  const auto u = b->usage();
  CHECK(u.processes >= 1);
  CHECK(u.rss_bytes > 0);
  CHECK(u.pss_bytes > 0);
  b->stop(2000ms);
  CHECK(group_gone(pid));
  CHECK(::access(dir.c_str(), F_OK) != 0);

  auto missing =
      BrowserProcess::launch(BrowserLaunchOptions{"/nonexistent/chromium", {}, "", ""}, error);
  CHECK_FALSE(missing);
  CHECK(error.find("/nonexistent/chromium") != std::string::npos);
}

TEST_CASE("browser step: logged in, state rotated and returned", "[browser]") {
  browser_test::Site site;
  REQUIRE(site.start());
  std::vector<std::string> events;
  std::mutex events_mu;
  BrowserPool pool(pool_options(), [&](const std::string& e, const std::string&) {
    std::lock_guard<std::mutex> l(events_mu);
    events.push_back(e);
  });
  BrowserStepRequest req;
  req.session_id = "A";
  req.state = site.add_account("A");
  req.spec = home_spec(site.url("/app?mode=ok"));
  req.spec.wait_for.push_back(PageCondition{std::nullopt, std::string("Welcome"), std::nullopt});
  auto r = run_step(pool, req);
  INFO(r.detail);
  CHECK(r.verdict == Verdict::logged_in);
  CHECK(r.detail == "wait_for matched");
  CHECK(site.rotations() == 1);
  const auto [sid, token] = site.current("A");
  CHECK(sid == "sid-A-1");
  CHECK(cookie_value(r.cookies, "sid") == sid);
  CHECK(ls_value(r.origins, site.origin(), "token") == token);
  CHECK(r.bytes_fetched > 0);
  CHECK(r.elapsed > 0us);
  // The rotated cookie keeps its attributes in Playwright's form.
  for (const auto& c : *r.cookies)
    if (c["name"] == "sid") {
      CHECK(c["httpOnly"] == true);
      CHECK(c["expires"] == -1);
      CHECK(c["domain"] == "127.0.0.1");
    }

  // The returned state is what the next step runs with: it logs in again.
  BrowserStepRequest next = req;
  next.state = {{"cookies", *r.cookies}, {"origins", *r.origins}};
  auto r2 = run_step(pool, next);
  CHECK(r2.verdict == Verdict::logged_in);
  CHECK(site.current("A").first == "sid-A-2");
  CHECK(cookie_value(r2.cookies, "sid") == "sid-A-2");
  // The static script came from the HTTP cache the second time.
  CHECK(site.static_hits()["app.js"] == 1);

  const auto st = pool.stats();
  CHECK(st.steps_logged_in == 2);
  CHECK(st.in_flight == 0);
  CHECK(st.queued == 0);
  CHECK(st.browser_pid > 0);
  CHECK(st.last_step_duration > 0us);
  const pid_t pid = st.browser_pid;
  pool.stop();
  CHECK(pool.stats().browser_pid == 0);
  CHECK(group_gone(pid));
  std::lock_guard<std::mutex> l(events_mu);
  CHECK(events == std::vector<std::string>{"browser_started"});
}

TEST_CASE("browser step: logged out by url_contains and by selector", "[browser]") {
  browser_test::Site site;
  REQUIRE(site.start());
  BrowserPool pool(pool_options());
  site.add_account("B");
  BrowserStepRequest req;
  req.state = site.state_for("sid-B-0", "wrong-token");
  req.spec = home_spec(site.url("/app?mode=ok"));
  auto r = run_step(pool, req);
  CHECK(r.verdict == Verdict::logged_out);
  CHECK(r.detail == "logged_out condition 1 matched");

  req.spec.logged_out = {PageCondition{"form.login", std::nullopt, std::nullopt}};
  auto r2 = run_step(pool, req);
  CHECK(r2.verdict == Verdict::logged_out);
  CHECK(site.unauthorized() == 2);
}

TEST_CASE("browser step: timeout is transient and keeps the rotated state", "[browser]") {
  browser_test::Site site;
  REQUIRE(site.start());
  BrowserPool pool(pool_options());
  BrowserStepRequest req;
  req.state = site.add_account("C");
  req.spec = home_spec(site.url("/app?mode=hang"));
  req.spec.timeout = 2500ms;
  auto r = run_step(pool, req);
  CHECK(r.verdict == Verdict::transient);
  CHECK(r.detail == "timeout");
  CHECK_FALSE(r.not_sent);
  const auto [sid, token] = site.current("C");
  CHECK(sid == "sid-C-1");
  CHECK(cookie_value(r.cookies, "sid") == sid);
  CHECK(ls_value(r.origins, site.origin(), "token") == token);
  // A navigation error is transient too.
  req.spec.url = "http://127.0.0.1:1/unreachable";
  auto r2 = run_step(pool, req);
  CHECK(r2.verdict == Verdict::transient);
  CHECK(r2.detail.rfind("navigation error: net::ERR_", 0) == 0);
}

TEST_CASE("browser step: network idle, selector and text combined; values taken literally",
          "[browser][marker]") {
  browser_test::Site site;
  REQUIRE(site.start());
  BrowserPool pool(pool_options());
  BrowserStepRequest req;
  req.state = site.add_account("L");
  // A value from the file that names the page scripts' placeholders is
  // seeded as it is (it once became "…true…" / the binding's name).
  const std::string odd = "CLEAR BINDING ORIGIN ITEMS CONDITIONS \"'</script>";
  req.state["origins"][0]["localStorage"].push_back({{"name", "note"}, {"value", odd}});
  req.spec = home_spec(site.url("/app?mode=ok"));
  req.spec.wait_network_idle = true;
  req.spec.wait_for = {PageCondition{".homeSection", std::string("Welcome"), std::nullopt}};
  auto r = run_step(pool, req);
  INFO(r.detail);
  REQUIRE(r.verdict == Verdict::logged_in);
  REQUIRE(r.cookies);
  REQUIRE(r.origins);
  CHECK(ls_value(r.origins, site.origin(), "note") == odd);

  // The text is found as it is, never as a pattern: "W.lcome" is not "Welcome".
  BrowserStepRequest next = req;
  next.state = {{"cookies", *r.cookies}, {"origins", *r.origins}};
  next.spec.timeout = 2500ms;
  next.spec.wait_for = {PageCondition{".homeSection", std::string("W.lcome"), std::nullopt}};
  auto r2 = run_step(pool, next);
  CHECK(r2.verdict == Verdict::transient);
  CHECK(r2.detail == "timeout");
}

TEST_CASE("browser step: kill -9 of the browser mid-step", "[browser]") {
  browser_test::Site site;
  REQUIRE(site.start());
  std::vector<std::string> events;
  std::mutex events_mu;
  BrowserPool pool(pool_options(), [&](const std::string& e, const std::string&) {
    std::lock_guard<std::mutex> l(events_mu);
    events.push_back(e);
  });
  // The page rotates cookie and token, then 200 ms later asks /api/ack:
  // the browser is killed there, with the renewal done at the site.
  pid_t killed = 0;
  site.on_ack = [&] {
    killed = pool.stats().browser_pid;
    if (killed > 0) ::kill(-killed, SIGKILL);
  };
  BrowserStepRequest req;
  req.state = site.add_account("D");
  req.spec = home_spec(site.url("/app?mode=hang"));
  auto r = run_step(pool, req);
  CHECK(killed > 0);
  CHECK(r.verdict == Verdict::transient);
  CHECK(r.detail.find("browser crashed") != std::string::npos);
  const auto [sid, token] = site.current("D");
  CHECK(sid == "sid-D-1");
  CHECK(cookie_value(r.cookies, "sid") == sid);
  CHECK(ls_value(r.origins, site.origin(), "token") == token);
  CHECK(group_gone(killed));

  // The pool restarts the browser; the next step, with the captured state, logs in.
  site.on_ack = nullptr;
  BrowserStepRequest next;
  next.state = {{"cookies", *r.cookies}, {"origins", *r.origins}};
  next.spec = home_spec(site.url("/app?mode=ok"));
  auto r2 = run_step(pool, next);
  CHECK(r2.verdict == Verdict::logged_in);
  CHECK(site.current("D").first == "sid-D-2");
  const auto st = pool.stats();
  CHECK(st.restarts == 1);
  CHECK(st.browser_pid != killed);
  std::lock_guard<std::mutex> l(events_mu);
  CHECK(events ==
        std::vector<std::string>{"browser_started", "browser_crashed", "browser_started"});
}

TEST_CASE("browser step: a hung browser is killed and restarted", "[browser]") {
  browser_test::Site site;
  REQUIRE(site.start());
  auto opts = pool_options();
  opts.command_timeout = 1500ms;
  std::vector<std::string> details;
  std::mutex mu;
  BrowserPool pool(opts, [&](const std::string& e, const std::string& d) {
    std::lock_guard<std::mutex> l(mu);
    if (e == "browser_crashed") details.push_back(d);
  });
  pid_t stopped = 0;
  site.on_ack = [&] {
    stopped = pool.stats().browser_pid;
    if (stopped > 0) ::kill(stopped, SIGSTOP);  // the browser process only: it stops answering
  };
  BrowserStepRequest req;
  req.state = site.add_account("H");
  req.spec = home_spec(site.url("/app?mode=hang"));
  req.spec.timeout = 20000ms;
  auto r = run_step(pool, req);
  CHECK(stopped > 0);
  CHECK(r.verdict == Verdict::transient);
  CHECK(r.detail.rfind("browser hung", 0) == 0);
  CHECK(r.elapsed < 10s);
  CHECK(cookie_value(r.cookies, "sid") == site.current("H").first);
  CHECK(group_gone(stopped));
  site.on_ack = nullptr;
  BrowserStepRequest next;
  next.state = {{"cookies", *r.cookies}, {"origins", *r.origins}};
  next.spec = home_spec(site.url("/app?mode=ok"));
  CHECK(run_step(pool, next).verdict == Verdict::logged_in);
  std::lock_guard<std::mutex> l(mu);
  REQUIRE(details.size() == 1);
  CHECK(details[0].rfind("browser hung", 0) == 0);
}

TEST_CASE("browser pool: recycled after N steps", "[browser]") {
  browser_test::Site site;
  REQUIRE(site.start());
  auto opts = pool_options();
  opts.recycle_after_steps = 2;
  std::vector<std::string> events;
  std::mutex mu;
  BrowserPool pool(opts, [&](const std::string& e, const std::string&) {
    std::lock_guard<std::mutex> l(mu);
    events.push_back(e);
  });
  BrowserStepRequest req;
  req.state = site.add_account("R");
  req.spec = home_spec(site.url("/app?mode=ok"));
  std::vector<pid_t> pids;
  for (int i = 0; i < 3; ++i) {
    auto r = run_step(pool, req);
    REQUIRE(r.verdict == Verdict::logged_in);
    req.state = {{"cookies", *r.cookies}, {"origins", *r.origins}};
    pids.push_back(pool.stats().browser_pid);
  }
  CHECK(pids[2] != pids[0]);
  CHECK(group_gone(pids[0]));
  CHECK(pool.stats().restarts == 1);
  std::lock_guard<std::mutex> l(mu);
  CHECK(events ==
        std::vector<std::string>{"browser_started", "browser_recycled", "browser_started"});
}

TEST_CASE("browser step: accounts never see each other's data", "[browser]") {
  browser_test::Site site;
  REQUIRE(site.start());
  // Both page modes: one page per slot reused, and a new page per step.
  const bool new_page = GENERATE(false, true);
  INFO("new_page_per_step " << new_page);
  auto opts = pool_options(1);  // one slot: B runs where A ran
  opts.new_page_per_step = new_page;
  BrowserPool pool(opts);
  for (const std::string who : {"A", "B", "A"}) {
    BrowserStepRequest req;
    req.state = site.add_account(who + "iso" + std::to_string(site.reports().size()));
    req.spec = home_spec(site.url("/app?mode=iso&who=" + who));
    auto r = run_step(pool, req);
    CHECK(r.verdict == Verdict::logged_in);
  }
  const auto reports = site.reports();
  REQUIRE(reports.size() == 3);
  for (const auto& seen : reports) {
    INFO(seen.dump());
    CHECK(seen["ss"].is_null());     // sessionStorage
    CHECK(seen["ls"].is_null());     // localStorage
    CHECK(seen["idb"].is_null());    // IndexedDB
    CHECK(seen["cache"].is_null());  // Cache Storage
    CHECK(seen["sw"] == 0);          // service workers
    CHECK(seen["cookie"] == "");     // no earlier account's cookie (sid is HttpOnly)
    // The cacheable /api/me answer is this account's, never the cached one.
    CHECK(seen["me"].get<std::string>().rfind(seen["who"].get<std::string>() + "iso", 0) == 0);
  }
  CHECK(site.me_calls() == 3);
}

TEST_CASE("browser pool: queue order, shutdown, nothing left behind", "[browser]") {
  browser_test::Site site;
  REQUIRE(site.start());
  auto pool = std::make_unique<BrowserPool>(pool_options(1));
  std::mutex mu;
  std::vector<std::string> order;
  std::vector<BrowserStepResult> results;
  std::promise<void> all;
  const int n = 4;
  auto record = [&](const std::string& name) {
    return [&, name](BrowserStepResult r) {
      std::lock_guard<std::mutex> l(mu);
      order.push_back(name);
      results.push_back(std::move(r));
      if (static_cast<int>(results.size()) == n) all.set_value();
    };
  };
  // The first occupies the slot (hangs); the rest queue, smallest priority first.
  BrowserStepRequest hang;
  hang.state = site.add_account("Q");
  hang.spec = home_spec(site.url("/app?mode=hang"));
  hang.spec.timeout = 1500ms;
  pool->submit(hang, record("hang"));
  REQUIRE(site.wait([&] { return site.acks_locked() >= 1; }, 10s));
  for (auto [name, prio] : {std::pair<const char*, int>{"p30", 30}, {"p10", 10}, {"p20", 20}}) {
    BrowserStepRequest q = hang;
    q.priority = prio;
    pool->submit(q, record(name));
  }
  CHECK(pool->stats().queued == 3);
  auto fut = all.get_future();
  REQUIRE(fut.wait_for(30s) == std::future_status::ready);
  CHECK(order == std::vector<std::string>{"hang", "p10", "p20", "p30"});

  // Shutdown: in flight and queued complete as "shutting down".
  std::promise<void> two;
  int left = 2;
  std::vector<BrowserStepResult> down;
  auto on_down = [&](BrowserStepResult r) {
    std::lock_guard<std::mutex> l(mu);
    down.push_back(std::move(r));
    if (--left == 0) two.set_value();
  };
  hang.spec.timeout = 20000ms;
  pool->submit(hang, on_down);
  pool->submit(hang, on_down);
  const auto until = std::chrono::steady_clock::now() + 10s;
  while (pool->stats().in_flight == 0 && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(10ms);
  const pid_t pid = pool->stats().browser_pid;
  REQUIRE(pid > 0);
  pool->stop();
  REQUIRE(two.get_future().wait_for(1s) == std::future_status::ready);
  for (const auto& r : down) {
    CHECK(r.verdict == Verdict::transient);
    CHECK(r.detail == "shutting down");
  }
  CHECK(down[1].not_sent);
  CHECK(group_gone(pid));
  // After stop(): answered at once.
  bool answered = false;
  pool->submit(hang,
               [&](BrowserStepResult r) { answered = r.not_sent && r.detail == "shutting down"; });
  CHECK(answered);
  pool.reset();
}

TEST_CASE("browser step: the fake site's client-rendered app, cacheable API", "[browser]") {
  fakesite::Options fo;
  fo.threads = 4;
  fo.client_rendered = true;
  fo.bundle_bytes = 1 << 20;
  fo.api_cacheable = true;  // a shared HTTP cache would hand one account's token to another
  fakesite::FakeSite site(fo);
  site.start();
  char dir_template[] = "/tmp/sessiond-browser-test-XXXXXX";
  REQUIRE(::mkdtemp(dir_template));
  const std::string dir = dir_template;
  const auto mobiles = site.write_session_files(dir, 2, "09120000700", 0);
  std::vector<json> states;
  for (const auto& m : mobiles) {
    std::ifstream in(dir + "/session-" + m + ".json");
    states.push_back(json::parse(in));
  }
  std::filesystem::remove_all(dir);

  BrowserPool pool(pool_options(1));
  auto spec = home_spec(site.base_url() + "/pwa");
  for (int i = 0; i < 6; ++i) {
    auto& state = states[static_cast<std::size_t>(i % 2)];
    BrowserStepRequest req;
    req.state = state;
    req.spec = spec;
    auto r = run_step(pool, req);
    INFO("step " << i << ": " << r.detail);
    REQUIRE(r.verdict == Verdict::logged_in);
    state["cookies"] = *r.cookies;
    state["origins"] = *r.origins;
  }
  auto st = site.stats(false);
  CHECK(st["app"]["api_calls"] == 6);  // never answered from the shared cache
  CHECK(st["app"]["api_rejected"] == 0);
  CHECK(st["app"]["bundle_fetches"] == 1);  // the 1 MB bundle: once

  site.force_logout({mobiles[0]});
  BrowserStepRequest out;
  out.state = states[0];
  out.spec = spec;
  out.spec.logged_out = {PageCondition{"form.loginForm", std::nullopt, std::nullopt}};
  CHECK(run_step(pool, out).verdict == Verdict::logged_out);
}

TEST_CASE("browser pool: steps in parallel slots keep their accounts apart", "[browser]") {
  browser_test::Site site;
  REQUIRE(site.start());
  BrowserPool pool(pool_options(2));
  const int n = 6;
  std::mutex mu;
  std::map<std::string, BrowserStepResult> results;
  std::promise<void> all;
  for (int i = 0; i < n; ++i) {
    const std::string name = "P" + std::to_string(i);
    BrowserStepRequest req;
    req.session_id = name;
    req.state = site.add_account(name);
    req.spec = home_spec(site.url("/app?mode=ok"));
    pool.submit(req, [&, name](BrowserStepResult r) {
      std::lock_guard<std::mutex> l(mu);
      results[name] = std::move(r);
      if (static_cast<int>(results.size()) == n) all.set_value();
    });
  }
  REQUIRE(all.get_future().wait_for(60s) == std::future_status::ready);
  for (const auto& [name, r] : results) {
    INFO(name << ": " << r.detail);
    CHECK(r.verdict == Verdict::logged_in);
    const auto [sid, token] = site.current(name);
    CHECK(sid == "sid-" + name + "-1");
    CHECK(cookie_value(r.cookies, "sid") == sid);
    CHECK(ls_value(r.origins, site.origin(), "token") == token);
    CHECK(r.cookies->size() == 1);
  }
  CHECK(pool.stats().steps_logged_in == static_cast<std::uint64_t>(n));
}

TEST_CASE("browser pool: steps start no faster than the site's rate limit", "[browser]") {
  browser_test::Site site;
  REQUIRE(site.start());
  auto options = pool_options(2);
  options.rate_per_second = 4;  // one step every 250 ms after a burst of one
  options.rate_burst = 1;
  BrowserPool pool(options);
  const int n = 5;
  std::mutex mu;
  std::vector<std::chrono::steady_clock::time_point> finished;
  std::promise<void> all;
  for (int i = 0; i < n; ++i) {
    const std::string name = "R" + std::to_string(i);
    BrowserStepRequest req;
    req.session_id = name;
    req.state = site.add_account(name);
    req.spec = home_spec(site.url("/app?mode=ok"));
    pool.submit(req, [&](BrowserStepResult r) {
      CHECK(r.verdict == Verdict::logged_in);
      std::lock_guard<std::mutex> l(mu);
      finished.push_back(std::chrono::steady_clock::now());
      if (static_cast<int>(finished.size()) == n) all.set_value();
    });
  }
  REQUIRE(all.get_future().wait_for(60s) == std::future_status::ready);
  // Five steps need four more tokens after the first: about a second from
  // the first step's end to the last's, however fast the browser is (two
  // slots would otherwise run them in pairs, ~0.3 s apart).
  CHECK(finished.back() - finished.front() >= 700ms);
  CHECK(pool.stats().steps_logged_in == static_cast<std::uint64_t>(n));
}
