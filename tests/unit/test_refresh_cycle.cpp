// RefreshCycle without an actor system, through cycle_driver.hpp's Driver.

#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <deque>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <sstream>

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include "cycle_driver.hpp"
#include "sessiond/json_log.hpp"
#include "sessiond/metrics.hpp"
#include "sessiond/refresh_cycle.hpp"
#include "test_support.hpp"

using namespace sessiond;
using namespace std::chrono_literals;
using json = nlohmann::json;
namespace fs = std::filesystem;
using namespace cycle_test;

namespace {

// One exec step: the command gets a copy of the session; the test answers
// with the ExecOutcome.
const char* kExecProfile = R"({
  "name": "exec", "base_url": "http://127.0.0.1:1", "interval": "5m", "idle_timeout": "10m", "jitter": 0.1,
  "refresh": {"exec": ["/usr/local/bin/renew", "{file}", "{id}"], "timeout": "20s"},
  "retry": {"base": "2s", "max": "30s"}
})";

// A due session's check answers "logged out"; returns the cycle's actions,
// not yet performed (the disposal among them).
Actions logged_out_until_disposal(Driver& d) {
  d.write(session_doc(d.wall0 - 1min));
  d.start();
  d.refresh_now();
  REQUIRE(d.http.size() == 1);
  auto p = d.http.front();
  d.http.pop_front();
  Actions actions;
  d.c().done(p.tag,
             testing::scripted_response(p.request, 302, "", std::nullopt, {{"location", "/login"}}),
             actions);
  return actions;
}

action::Dispose* find_dispose(Actions& actions) {
  auto it = std::find_if(actions.begin(), actions.end(), [](const Action& a) {
    return std::holds_alternative<action::Dispose>(a);
  });
  REQUIRE(it != actions.end());
  return &std::get<action::Dispose>(*it);
}

void check_regular_delay(const Driver& d) {
  REQUIRE_FALSE(d.schedules.empty());
  auto delay = d.schedules.back().delay;
  CHECK(delay >= Millis(270000));  // interval * (1 - jitter)
  CHECK(delay <= Millis(300000));
}

}  // namespace

// -- the first schedule --------------------------------------------------------

TEST_CASE("cycle: a session refreshed a minute ago waits until it is due", "[cycle]") {
  Driver d;
  d.write(session_doc(d.wall0 - 1min));
  d.start();
  CHECK(d.count("ReadFirstLook") == 1);
  REQUIRE(d.schedules.size() == 1);
  // 4 minutes left, jittered within [0.9, 1.0] of them.
  CHECK(d.schedules[0].delay >= 216s);
  CHECK(d.schedules[0].delay <= 240s);
  CHECK(d.http.empty());
  CHECK(d.status().state == SessionState::active);
  CHECK(d.status().refresh_count == 7);
  CHECK(d.status().last_refresh == std::optional<WallTime>(d.wall0 - 1min));
  CHECK(d.status().next_refresh == std::optional<WallTime>(d.now() + d.schedules[0].delay));
  REQUIRE_FALSE(d.published.empty());
  CHECK(d.published.back().next_refresh == d.status().next_refresh);
  d.fire();
  REQUIRE(d.http.size() == 1);
  CHECK(d.http.front().request.url == "http://127.0.0.1:1/pwa");
  CHECK(sid_of(d.http.front().request) == std::optional<std::string>("s0"));
  CHECK(d.status().refreshing);
}

TEST_CASE("cycle: overdue sessions are spread over the catch-up window", "[cycle]") {
  std::set<Millis::rep> delays;
  for (int i = 0; i < 8; ++i) {
    Driver d;
    d.id = "0912000010" + std::to_string(i);
    d.path = session_path(d.dir, d.id);
    d.write(session_doc(d.wall0 - 20min));
    d.start();
    REQUIRE(d.schedules.size() == 1);
    // More than one interval overdue: the first half of the 30 s window.
    CHECK(d.schedules[0].delay >= 0ms);
    CHECK(d.schedules[0].delay <= 15s);
    delays.insert(d.schedules[0].delay.count());
    // Past the idle deadline: not active until the site says so.
    CHECK(d.status().state == SessionState::pending);
  }
  CHECK(delays.size() > 1);  // spread, not all at once
  // Less overdue: a later share of the window, but within it.
  Driver d;
  d.write(session_doc(d.wall0 - 7min));
  d.start();
  REQUIRE(d.schedules.size() == 1);
  CHECK(d.schedules[0].delay <= 30s);
  CHECK(d.status().state == SessionState::active);
}

TEST_CASE("cycle: an old file without a keepalive block is spread, a fresh login goes at once",
          "[cycle]") {
  SECTION("fresh login: no keepalive block, written just now") {
    Driver d;
    d.write(session_doc(std::nullopt));
    d.start();
    REQUIRE(d.schedules.size() == 1);
    CHECK(d.schedules[0].delay == 0ms);
    d.fire();
    CHECK(d.http.size() == 1);
  }
  SECTION("unknown age, written a while ago") {
    Driver d;
    d.write(session_doc(std::nullopt));
    d.advance(10s);  // the file's mtime is 10 s old now
    d.start();
    REQUIRE(d.schedules.size() == 1);
    CHECK(d.schedules[0].delay <= 15s);
    CHECK(d.status().state == SessionState::pending);
    CHECK_FALSE(d.status().last_refresh);
  }
}

TEST_CASE("cycle: refresh_at_start begins the first cycle immediately", "[cycle]") {
  Driver d;
  d.site->refresh_at_start = true;
  d.write(session_doc(d.wall0 - 1min));  // due in 4 minutes, refreshed anyway
  d.start();
  CHECK(d.count("ReadFirstLook") == 0);
  CHECK(d.schedules.empty());
  REQUIRE(d.http.size() == 1);
  d.refresh_ok("s1");
  CHECK(d.report().outcome == CycleOutcome::success);
  CHECK(d.read()["keepalive"]["refreshCount"] == 8);
}

TEST_CASE("cycle: a stale timer or first look is ignored", "[cycle]") {
  Driver d;
  d.write(session_doc(d.wall0 - 1min));
  d.start();
  REQUIRE(d.schedules.size() == 1);
  auto first = d.schedules[0].gen;
  // A manual refresh supersedes the timer.
  CHECK(d.refresh_now());
  REQUIRE(d.http.size() == 1);
  d.tick(first);
  CHECK(d.last.empty());
  d.refresh_ok("s1");
  REQUIRE(d.schedules.size() == 2);
  d.tick(first);
  CHECK(d.last.empty());
  d.tick(d.schedules.back().gen + 1);  // never armed
  CHECK(d.last.empty());
  CHECK(d.http.empty());

  // The file's first look arrives after a cycle began: no second schedule.
  Driver e;
  e.hold_first_look = true;
  e.write(session_doc(e.wall0 - 1min));
  e.start();
  REQUIRE(e.held.size() == 1);
  CHECK(e.refresh_now());
  REQUIRE(e.http.size() == 1);
  e.hold_first_look = false;
  e.release();
  CHECK(e.schedules.empty());
  CHECK(e.status().refreshing);
}

// -- a successful refresh --------------------------------------------------------

TEST_CASE("cycle: success rotates and saves the cookies, captures the token, schedules the next",
          "[cycle]") {
  Driver d;
  d.write(session_doc(d.wall0 - 1min));
  d.start();
  d.fire();
  REQUIRE(d.http.size() == 1);
  CHECK(d.status().refreshing);
  CHECK(d.published.back().refreshing);
  d.advance(250ms);
  d.refresh_ok("s1");
  const WallTime at = d.now();

  REQUIRE(d.reports.size() == 1);
  CHECK(d.report().outcome == CycleOutcome::success);
  CHECK(d.report().state == SessionState::active);
  CHECK(d.report().attempt == 0);
  CHECK(d.report().id == d.id);
  auto doc = d.read();
  CHECK(doc["cookies"].size() == 1);
  CHECK(doc["cookies"][0]["value"] == "s1");
  CHECK(doc["cookies"][0]["sameSite"] == "Lax");
  CHECK(doc["headers"]["Authorization"] == "Bearer T1");
  CHECK(doc["keepalive"]["state"] == "active");
  CHECK(doc["keepalive"]["refreshCount"] == 8);
  CHECK(doc["keepalive"]["lastRefresh"] == log::iso8601(at));
  CHECK(doc["botField"] == 42);
  CHECK(doc["origins"][0]["localStorage"][0]["value"] == "v");

  check_regular_delay(d);
  const auto& s = d.status();
  CHECK(s.state == SessionState::active);
  CHECK(s.refresh_count == 8);
  CHECK(s.last_refresh == std::optional<WallTime>(at));
  CHECK(s.next_refresh == std::optional<WallTime>(at + d.schedules.back().delay));
  CHECK(s.retry_count == 0);
  CHECK_FALSE(s.last_error);
  CHECK_FALSE(s.refreshing);
  CHECK(d.published.back().state == SessionState::active);
  CHECK_FALSE(d.published.back().refreshing);
  CHECK(d.metrics.refreshes(RefreshResult::success) == 1);
  CHECK(d.metrics.refreshes(RefreshResult::transient_error) == 0);
  CHECK(d.metrics.refreshes(RefreshResult::logged_out) == 0);

  // The next cycle sends the rotated cookie and the captured token.
  d.fire();
  REQUIRE(d.http.size() == 1);
  CHECK(sid_of(d.http.front().request) == std::optional<std::string>("s1"));
  CHECK(has_header(d.http.front().request, "Authorization: Bearer T1"));
  d.refresh_ok("s2", "T2");
  CHECK(d.read()["keepalive"]["refreshCount"] == 9);
  CHECK(d.read()["headers"]["Authorization"] == "Bearer T2");
  CHECK(d.metrics.refreshes(RefreshResult::success) == 2);
}

// -- transient failures ------------------------------------------------------------

TEST_CASE("cycle: a transient failure is retried with backoff; success resets it", "[cycle]") {
  Driver d;
  d.write(session_doc(d.wall0 - 1min));
  d.start();
  CHECK(d.refresh_now());
  // A manual refresh while the cycle runs starts no second one.
  CHECK(d.refresh_now());
  CHECK(d.last.empty());
  CHECK(d.http.size() == 1);
  d.answer(503, "busy");
  CHECK(d.report().outcome == CycleOutcome::transient_error);
  CHECK(d.report().detail == "check: HTTP 503");
  CHECK(d.report().state == SessionState::retrying);
  CHECK(d.report().attempt == 1);
  CHECK(d.status().state == SessionState::retrying);
  CHECK(d.status().retry_count == 1);
  CHECK(d.status().last_error == std::optional<std::string>("check: HTTP 503"));
  CHECK(d.published.back().retry_count == 1);
  CHECK(d.metrics.refreshes(RefreshResult::transient_error) == 1);
  REQUIRE(d.schedules.size() == 2);
  CHECK(d.schedules.back().delay >= 1s);  // [base/2, base]
  CHECK(d.schedules.back().delay <= 2s);
  CHECK(d.status().next_refresh == std::optional<WallTime>(d.now() + d.schedules.back().delay));

  d.fire();
  d.answer(503, "busy");
  CHECK(d.report().attempt == 2);
  CHECK(d.status().retry_count == 2);
  CHECK(d.schedules.back().delay >= 2s);  // [2 base / 2, 2 base]
  CHECK(d.schedules.back().delay <= 4s);

  d.fire();
  d.refresh_ok("s9");
  CHECK(d.report().outcome == CycleOutcome::success);
  CHECK(d.report().attempt == 0);
  CHECK(d.status().state == SessionState::active);
  CHECK(d.status().retry_count == 0);
  CHECK_FALSE(d.status().last_error);
  check_regular_delay(d);
  CHECK(d.read()["cookies"][0]["value"] == "s9");
}

TEST_CASE("cycle: Retry-After wins over a shorter backoff", "[cycle]") {
  Driver d;
  d.write(session_doc(d.wall0 - 1min));
  d.start();
  d.refresh_now();
  d.answer(429, "slow down", std::nullopt, {{"retry-after", "20"}});
  CHECK(d.schedules.back().delay == 20s);
  CHECK(d.status().state == SessionState::retrying);
  d.fire();
  // Shorter than the backoff: the backoff stands.
  d.answer(429, "slow down", std::nullopt, {{"retry-after", "1"}});
  CHECK(d.schedules.back().delay >= 2s);
  CHECK(d.schedules.back().delay <= 4s);
}

TEST_CASE("cycle: retries are capped before the idle deadline, past it the session is at risk",
          "[cycle]") {
  Driver d;
  // The idle deadline is 10 s away (idle timeout 10 min).
  d.write(session_doc(d.wall0 - 9min - 50s));
  d.start();
  d.refresh_now();
  d.answer(429, "slow down", std::nullopt, {{"retry-after", "20"}});
  // Half of what is left before the deadline minus a 1 s margin: (10 s - 1 s) / 2.
  CHECK(d.schedules.back().delay == 4500ms);
  CHECK(d.status().state == SessionState::retrying);
  CHECK(d.report().state == SessionState::retrying);

  d.fire();  // 5.5 s left
  d.answer(503, "busy");
  CHECK(d.schedules.back().delay == 2250ms);
  CHECK(d.status().state == SessionState::retrying);

  d.fire(3s);  // 0.25 s left: inside the 1 s margin
  d.answer(503, "busy");
  CHECK(d.report().state == SessionState::at_risk);
  CHECK(d.report().attempt == 3);
  CHECK(d.status().state == SessionState::at_risk);
  CHECK(d.published.back().state == SessionState::at_risk);
  // Still retried, at the backoff pace.
  CHECK(d.schedules.back().delay >= 4s);
  CHECK(d.schedules.back().delay <= 8s);

  d.fire();
  d.refresh_ok("s1");
  CHECK(d.status().state == SessionState::active);
}

TEST_CASE("cycle: a failure long after the last refresh is at risk at once", "[cycle]") {
  Driver d;
  d.write(session_doc(d.wall0 - 11min));
  d.start();
  d.refresh_now();
  d.answer(503, "busy");
  CHECK(d.report().outcome == CycleOutcome::transient_error);
  CHECK(d.report().state == SessionState::at_risk);
  CHECK(d.report().attempt == 1);
  CHECK(d.schedules.back().delay >= 1s);
  CHECK(d.schedules.back().delay <= 2s);
}

TEST_CASE("cycle: a 2xx no rule matches and a transport error are transient", "[cycle]") {
  Driver d;
  d.write(session_doc(d.wall0 - 1min));
  d.start();
  d.refresh_now();
  d.answer(200, "<html>maintenance</html>");
  CHECK(d.report().outcome == CycleOutcome::transient_error);
  CHECK(d.report().detail == "check: HTTP 200 (no logged-in or logged-out rule matched)");
  CHECK(d.status().state == SessionState::retrying);

  d.fire();
  REQUIRE(d.http.size() == 1);
  auto p = d.http.front();
  d.http.pop_front();
  HttpResponse r;
  r.curl_code = 7;
  r.error = "Failed to connect to 127.0.0.1 port 1";
  d.done(p.tag, r);
  CHECK(d.report().detail == "check: Failed to connect to 127.0.0.1 port 1");
  CHECK(d.report().attempt == 2);
  CHECK(d.read()["cookies"][0]["value"] == "s0");  // nothing written
}

// -- logged out ----------------------------------------------------------------------

TEST_CASE("cycle: a logged-out session is disposed and no longer scheduled", "[cycle]") {
  Driver d;
  SECTION("quarantine") {
    d.write(session_doc(d.wall0 - 1min));
    d.start();
    d.refresh_now();
    d.answer(302, "", std::nullopt, {{"location", "/login?next=%2Fpwa"}});
    CHECK_FALSE(fs::exists(d.path));
    auto moved = Driver::read(d.dir + "/invalid/" + session_filename(d.id));
    CHECK(moved["keepalive"]["state"] == "invalid");
    CHECK(moved["keepalive"]["lastError"].get<std::string>().find("check: logged out") == 0);
    CHECK(moved["keepalive"]["invalidSince"] == log::iso8601(d.now()));
    CHECK(moved["botField"] == 42);
    CHECK(moved["cookies"][0]["value"] == "s0");
  }
  SECTION("mark") {
    d.site->on_logged_out = OnLoggedOut::mark;
    d.write(session_doc(d.wall0 - 1min));
    d.start();
    d.refresh_now();
    d.answer(302, "", std::nullopt, {{"location", "/login"}});
    CHECK(d.read()["keepalive"]["state"] == "invalid");
    CHECK(d.read()["botField"] == 42);
    CHECK_FALSE(fs::exists(d.dir + "/invalid"));
  }
  SECTION("delete") {
    d.site->on_logged_out = OnLoggedOut::remove;
    d.write(session_doc(d.wall0 - 1min));
    d.start();
    d.refresh_now();
    d.answer(302, "", std::nullopt, {{"location", "/login"}});
    CHECK_FALSE(fs::exists(d.path));
    CHECK_FALSE(fs::exists(d.dir + "/invalid"));
  }
  CHECK(d.count("Dispose") == 1);
  REQUIRE(d.reports.size() == 1);
  CHECK(d.report().outcome == CycleOutcome::logged_out);
  CHECK(d.report().state == SessionState::invalid);
  CHECK(d.status().state == SessionState::invalid);
  CHECK(d.status().last_error == std::optional<std::string>("logged out"));
  CHECK_FALSE(d.status().next_refresh);
  CHECK(d.published.back().state == SessionState::invalid);
  CHECK(d.metrics.refreshes(RefreshResult::logged_out) == 1);
  CHECK(d.schedules.size() == 1);  // only the first one, before the manual refresh
  d.tick(d.schedules[0].gen);
  CHECK(d.last.empty());
  CHECK(d.http.empty());
}

TEST_CASE("cycle: a file the bot rewrote before the disposal is left alone", "[cycle]") {
  Driver d;
  SECTION("quarantine") {}
  SECTION("mark") {
    d.site->on_logged_out = OnLoggedOut::mark;
  }
  SECTION("delete") {
    d.site->on_logged_out = OnLoggedOut::remove;
  }
  d.write(session_doc(d.wall0 - 1min));
  d.start();
  d.refresh_now();
  REQUIRE(d.http.size() == 1);
  d.write(session_doc(std::nullopt, "bot"));  // the bot's new login
  d.answer(302, "", std::nullopt, {{"location", "/login"}});
  CHECK(d.report().outcome == CycleOutcome::superseded);
  CHECK(d.report().detail == "file changed on disk");
  CHECK(d.status().state != SessionState::invalid);
  auto doc = d.read();
  CHECK(doc["cookies"][0]["value"] == "bot");
  CHECK_FALSE(doc.contains("keepalive"));
  CHECK_FALSE(fs::exists(d.dir + "/invalid"));
  CHECK(d.metrics.refreshes(RefreshResult::logged_out) == 0);
  REQUIRE(d.schedules.size() == 2);
  CHECK(d.schedules.back().delay == 0ms);
  // Refreshed next, with the bot's cookie.
  d.fire();
  REQUIRE(d.http.size() == 1);
  CHECK(sid_of(d.http.front().request) == std::optional<std::string>("bot"));
  d.refresh_ok("bot2");
  CHECK(d.read()["cookies"][0]["value"] == "bot2");
}

// -- the file ------------------------------------------------------------------------

TEST_CASE("cycle: a failed save keeps the rotated credentials for the next cycle", "[cycle]") {
  Driver d;
  d.write(session_doc(d.wall0 - 1min));
  d.start();
  d.refresh_now();
  d.answer(200, kHome, std::string("rotated"));
  // The directory cannot take the temp file. (Root ignores permissions, so
  // replace the directory by a file of the same name.)
  fs::rename(d.dir, d.away);
  { std::ofstream blocker(d.dir); }
  d.answer(200, R"({"token":"T2"})");
  fs::remove(d.dir);
  fs::rename(d.away, d.dir);
  CHECK(d.report().outcome == CycleOutcome::transient_error);
  CHECK(d.report().detail.rfind("save failed: ", 0) == 0);
  CHECK(d.status().state == SessionState::retrying);
  CHECK(d.metrics.file_errors(FileErrorKind::write) == 1);
  CHECK(d.metrics.refreshes(RefreshResult::transient_error) == 1);
  CHECK(d.read()["cookies"][0]["value"] == "s0");  // the old file is intact
  CHECK(d.schedules.back().delay <= 2s);

  // The retry carries what the site issued, not the stale file's cookie.
  d.fire();
  REQUIRE(d.http.size() == 1);
  CHECK(sid_of(d.http.front().request) == std::optional<std::string>("rotated"));
  CHECK(has_header(d.http.front().request, "Authorization: Bearer T2"));
  d.refresh_ok("rotated2", "T3");
  auto doc = d.read();
  CHECK(doc["cookies"][0]["value"] == "rotated2");
  CHECK(doc["headers"]["Authorization"] == "Bearer T3");
  CHECK(doc["keepalive"]["refreshCount"] == 8);
}

TEST_CASE("cycle: the bot's rewrite during a refresh wins", "[cycle]") {
  Driver d;
  d.write(session_doc(d.wall0 - 1min));
  d.start();
  d.refresh_now();
  d.answer(200, kHome, std::string("ours"));
  d.write(session_doc(std::nullopt, "bot"));
  d.answer(200, R"({"token":"T3"})");
  CHECK(d.report().outcome == CycleOutcome::superseded);
  CHECK(d.metrics.refreshes(RefreshResult::success) == 0);
  CHECK(d.read()["cookies"][0]["value"] == "bot");  // not overwritten
  CHECK_FALSE(d.read().contains("headers"));
  REQUIRE_FALSE(d.schedules.empty());
  CHECK(d.schedules.back().delay == 0ms);
  d.fire();
  REQUIRE(d.http.size() == 1);
  CHECK(sid_of(d.http.front().request) == std::optional<std::string>("bot"));
  CHECK_FALSE(has_header(d.http.front().request, "Authorization: Bearer T3"));
  d.refresh_ok("bot2");
  CHECK(d.read()["cookies"][0]["value"] == "bot2");
  CHECK(d.report().outcome == CycleOutcome::success);
}

TEST_CASE("cycle: the watcher's report of our own save is dropped, the bot's file is refreshed",
          "[cycle]") {
  Driver d;
  d.write(session_doc(d.wall0 - 1min));
  d.start();
  d.fire();
  d.refresh_ok("s1");
  auto gen = d.schedules.back().gen;
  d.file_changed(*stat_identity(d.path));
  CHECK(d.last.empty());
  CHECK(d.http.empty());

  // A new file while a cycle runs: the running cycle handles it, no second one.
  d.refresh_now();
  REQUIRE(d.http.size() == 1);
  d.write(session_doc(std::nullopt, "bot"));
  d.file_changed(*stat_identity(d.path));
  CHECK(d.last.empty());
  CHECK(d.http.size() == 1);
  d.answer(503, "busy");

  // Idle: the bot's new file is refreshed at once, not at the schedule.
  d.write(session_doc(std::nullopt, "bot2"));
  auto before = d.count("Load");
  d.file_changed(*stat_identity(d.path));
  CHECK(d.count("Load") == before + 1);
  REQUIRE(d.http.size() == 1);
  CHECK(sid_of(d.http.front().request) == std::optional<std::string>("bot2"));
  d.tick(gen);  // the earlier timer is cancelled
  CHECK(d.last.empty());
}

TEST_CASE("cycle: an unusable file is reported once per version and waits for a change",
          "[cycle]") {
  Driver d;
  d.write_raw("{not json");
  d.start();
  REQUIRE(d.schedules.size() == 1);
  d.fire();
  CHECK(d.http.empty());
  REQUIRE(d.reports.size() == 1);
  CHECK(d.report().outcome == CycleOutcome::file_error);
  CHECK_FALSE(d.report().detail.empty());
  CHECK(d.report().state == SessionState::file_error);
  CHECK(d.status().state == SessionState::file_error);
  REQUIRE(d.status().last_error);
  CHECK(d.status().last_error->rfind("parse: ", 0) == 0);
  CHECK(d.published.back().state == SessionState::file_error);
  CHECK(d.schedules.size() == 1);  // stopped
  CHECK(d.metrics.file_errors(FileErrorKind::parse) == 1);

  // The same version again (a manual refresh): not counted again.
  CHECK(d.refresh_now());
  CHECK(d.reports.size() == 2);
  CHECK(d.report().outcome == CycleOutcome::file_error);
  CHECK(d.metrics.file_errors(FileErrorKind::parse) == 1);
  CHECK(d.schedules.size() == 1);

  // A new, still broken version is reported.
  d.write_raw("[1, 2");
  d.file_changed(*stat_identity(d.path));
  CHECK(d.reports.size() == 3);
  CHECK(d.metrics.file_errors(FileErrorKind::parse) == 2);

  // The bot fixes it: refreshed at once.
  d.write(session_doc(std::nullopt, "fixed"));
  d.file_changed(*stat_identity(d.path));
  REQUIRE(d.http.size() == 1);
  CHECK(sid_of(d.http.front().request) == std::optional<std::string>("fixed"));
  CHECK(d.status().state == SessionState::pending);
  d.refresh_ok("fixed2");
  CHECK(d.status().state == SessionState::active);
  check_regular_delay(d);
}

TEST_CASE("cycle: a missing file and a file marked invalid end the cycle without a request",
          "[cycle]") {
  SECTION("missing") {
    Driver d;
    d.write(session_doc(d.wall0 - 1min));
    d.start();
    fs::remove(d.path);
    d.fire();
    CHECK(d.report().outcome == CycleOutcome::file_missing);
    CHECK(d.http.empty());
    CHECK(d.schedules.size() == 1);
    CHECK(d.metrics.refreshes(RefreshResult::transient_error) == 0);
  }
  SECTION("marked invalid") {
    Driver d;
    auto doc = session_doc(d.wall0 - 1min);
    doc["keepalive"]["state"] = "invalid";
    doc["keepalive"]["lastError"] = "check: logged out (HTTP 302)";
    d.write(doc);
    d.start();
    d.fire();
    CHECK(d.report().outcome == CycleOutcome::invalid);
    CHECK(d.report().state == SessionState::invalid);
    CHECK(d.status().state == SessionState::invalid);
    CHECK(d.status().last_error == std::optional<std::string>("check: logged out (HTTP 302)"));
    CHECK(d.http.empty());
    CHECK(d.schedules.size() == 1);
    CHECK(d.read()["keepalive"]["state"] == "invalid");  // untouched
  }
}

// -- token deadline --------------------------------------------------------------

TEST_CASE("cycle: a token that expires before the interval bounds the next refresh", "[cycle]") {
  SECTION("a JWT cookie") {
    Driver d(std::string(testing::kRefreshProfile)
                 .insert(1, R"("token_deadline": {"from": "cookie:jwt", "margin": "2m"},)"));
    auto doc = session_doc(d.wall0 - 1min);
    const std::int64_t exp = unix_seconds(d.wall0) + 200;
    doc["cookies"].push_back(cookie("jwt", make_jwt(exp)));
    d.write(doc);
    d.start();
    d.refresh_now();
    d.refresh_ok("s1");
    CHECK(d.report().outcome == CycleOutcome::success);
    CHECK(d.schedules.back().delay ==
          std::chrono::duration_cast<Millis>(WallTime(std::chrono::seconds(exp)) - 2min - d.now()));
    CHECK(d.schedules.back().delay < 81s);
    CHECK(d.schedules.back().delay > 79s);
  }
  SECTION("a far expiry changes nothing") {
    Driver d(std::string(testing::kRefreshProfile)
                 .insert(1, R"("token_deadline": {"from": "cookie:jwt", "margin": "2m"},)"));
    auto doc = session_doc(d.wall0 - 1min);
    doc["cookies"].push_back(cookie("jwt", make_jwt(unix_seconds(d.wall0) + 86400)));
    d.write(doc);
    d.start();
    d.refresh_now();
    d.refresh_ok("s1");
    check_regular_delay(d);
  }
  SECTION("the token this refresh captured") {
    Driver d(
        std::string(testing::kRefreshProfile)
            .insert(1, R"("token_deadline": {"from": "header:Authorization", "margin": "1m"},)"));
    d.write(session_doc(d.wall0 - 1min));
    d.start();
    d.refresh_now();
    const std::int64_t exp = unix_seconds(d.wall0) + 240;
    d.refresh_ok("s1", make_jwt(exp));
    CHECK(d.read()["headers"]["Authorization"] == "Bearer " + make_jwt(exp));
    CHECK(d.schedules.back().delay ==
          std::chrono::duration_cast<Millis>(WallTime(std::chrono::seconds(exp)) - 1min - d.now()));
  }
}

TEST_CASE("cycle: a refresh that does not renew the deadline token keeps to the interval",
          "[cycle][token_deadline]") {
  testing::CapturedLogs logs;
  // A JWT cookie no step renews, already expired: the old code refreshed every second.
  Driver d(std::string(testing::kRefreshProfile)
               .insert(1, R"("token_deadline": {"from": "cookie:jwt", "margin": "2m"},)"));
  auto doc = session_doc(d.wall0 - 1min);
  const std::string jwt = make_jwt(unix_seconds(d.wall0) - 600);
  doc["cookies"].push_back(cookie("jwt", jwt));
  d.write(doc);
  d.start();
  d.refresh_now();
  for (int i = 1; i <= 3; ++i) {
    INFO("refresh " << i);
    d.refresh_ok("s" + std::to_string(i));
    CHECK(d.report().outcome == CycleOutcome::success);
    check_regular_delay(d);  // not 1 s
    CHECK(d.metrics.tokens_not_renewed() == i);
    d.fire();
  }
  CHECK(logs.count("token_not_renewed") == 1);  // once per session
  CHECK(logs.out.str().find(jwt) == std::string::npos);
  // A transient failure still backs off as usual.
  d.answer(503, "busy");
  CHECK(d.schedules.back().delay >= 1s);
  CHECK(d.schedules.back().delay <= 2s);
}

TEST_CASE("cycle: a refresh that moves the token's exp shortens the delay again",
          "[cycle][token_deadline]") {
  testing::CapturedLogs logs;
  Driver d(
      std::string(testing::kRefreshProfile)
          .insert(1, R"("token_deadline": {"from": "header:Authorization", "margin": "1m"},)"));
  auto doc = session_doc(d.wall0 - 1min);
  const std::string stale = make_jwt(unix_seconds(d.wall0) - 600);
  doc["headers"] = {{"Authorization", "Bearer " + stale}};
  d.write(doc);
  d.start();
  d.refresh_now();
  // The site hands back the same expired token: not renewed, the interval.
  d.refresh_ok("s1", stale);
  check_regular_delay(d);
  CHECK(d.metrics.tokens_not_renewed() == 1);
  CHECK(logs.count("token_not_renewed") == 1);
  auto logged = logs.out.str();
  CHECK(logged.find("\"exp_moved\":false") != std::string::npos);

  // A renewed token: its deadline bounds the next refresh again.
  d.fire();
  const std::int64_t exp = unix_seconds(d.now()) + 240;
  d.refresh_ok("s2", make_jwt(exp));
  CHECK(d.schedules.back().delay ==
        std::chrono::duration_cast<Millis>(WallTime(std::chrono::seconds(exp)) - 1min - d.now()));
  CHECK(d.metrics.tokens_not_renewed() == 1);

  // A new token that already expires inside the margin (moved, still past the
  // deadline) is not renewed either; after a renewal that is logged again.
  d.fire();
  d.refresh_ok("s3", make_jwt(unix_seconds(d.now()) + 30));
  check_regular_delay(d);
  CHECK(d.metrics.tokens_not_renewed() == 2);
  CHECK(logs.count("token_not_renewed") == 2);
  CHECK(logs.out.str().find("\"exp_moved\":true") != std::string::npos);
}

TEST_CASE("cycle: retry.max_attempts failures in a row leave the session failed, file untouched",
          "[cycle][max_attempts]") {
  testing::CapturedLogs logs;
  std::string profile = testing::kRefreshProfile;
  const std::string retry = R"("retry": {"base": "2s", "max": "30s"})";
  REQUIRE(profile.find(retry) != std::string::npos);
  profile.replace(profile.find(retry), retry.size(),
                  R"("retry": {"base": "2s", "max": "30s", "max_attempts": 3})");
  Driver d(profile);
  d.write(session_doc(d.wall0 - 1min));
  const auto before = stat_identity(d.path);
  const std::string text_before = d.read().dump();
  d.start();
  d.refresh_now();
  d.answer(503, "busy");
  CHECK(d.status().state == SessionState::retrying);
  d.fire();
  d.answer(503, "busy");
  CHECK(d.status().state == SessionState::retrying);
  const auto schedules = d.schedules.size();
  d.fire();
  d.answer(503, "busy");
  // The third in a row: given up, not scheduled, the file as it was.
  CHECK(d.report().outcome == CycleOutcome::failed);
  CHECK(d.report().state == SessionState::failed);
  CHECK(d.report().attempt == 3);
  CHECK(d.status().state == SessionState::failed);
  CHECK_FALSE(d.status().is_live());
  CHECK(d.status().last_error ==
        std::optional<std::string>("gave up after 3 failed attempts: check: HTTP 503"));
  CHECK_FALSE(d.status().next_refresh);
  CHECK(d.schedules.size() == schedules);
  CHECK(d.published.back().state == SessionState::failed);
  CHECK(logs.count("retries_exhausted") == 1);
  CHECK(d.metrics.refreshes(RefreshResult::transient_error) == 3);
  CHECK(stat_identity(d.path) == before);
  CHECK(d.read().dump() == text_before);
  d.tick(d.schedules.back().gen);  // the last timer is stale
  CHECK(d.last.empty());
  CHECK(d.http.empty());

  SECTION("a manual refresh starts again, with max_attempts more tries") {
    CHECK(d.refresh_now());
    REQUIRE(d.http.size() == 1);
    d.answer(503, "busy");
    CHECK(d.status().state == SessionState::retrying);
    CHECK(d.report().attempt == 1);
    d.fire();
    d.refresh_ok("s1");
    CHECK(d.status().state == SessionState::active);
    check_regular_delay(d);
  }
  SECTION("the bot's new file starts again") {
    auto doc = session_doc(d.wall0 - 1min, "fresh");
    doc["botField"] = 43;
    d.write(doc);
    d.file_changed(*stat_identity(d.path));
    REQUIRE(d.http.size() == 1);
    CHECK(sid_of(d.http.front().request) == std::optional<std::string>("fresh"));
    d.answer(503, "busy");
    CHECK(d.status().state == SessionState::retrying);
    CHECK(d.report().attempt == 1);
  }
  CHECK(logs.count("retries_exhausted") == 1);
}

TEST_CASE("cycle: retry.max_attempts 0 retries past the idle deadline", "[cycle][max_attempts]") {
  Driver d;                               // no max_attempts
  d.write(session_doc(d.wall0 - 11min));  // past the idle deadline already
  d.start();
  d.refresh_now();
  for (int i = 1; i <= 12; ++i) {
    d.answer(503, "busy");
    CHECK(d.report().outcome == CycleOutcome::transient_error);
    d.fire();
  }
  CHECK(d.status().state == SessionState::at_risk);
  CHECK(d.http.size() == 1);
}

TEST_CASE(
    "cycle: session_invalidated is announced at the disposal's point of no return, before the "
    "file goes",
    "[cycle][dispose]") {
  testing::CapturedLogs logs;
  Driver d;
  SECTION("quarantine") {}
  SECTION("delete") {
    d.site->on_logged_out = OnLoggedOut::remove;
  }
  Actions actions = logged_out_until_disposal(d);
  auto dispose = find_dispose(actions);
  // Decided, not yet announced: the bot may still put a new login in place.
  CHECK(logs.count("session_invalidated") == 0);
  // The I/O thread announces while the file is still there (the watcher has
  // nothing to report yet), then moves or deletes it.
  bool file_there_when_announced = false;
  auto& announce = dispose->announce;
  announce = [&, inner = announce] {
    file_there_when_announced = fs::exists(d.path);
    inner();
  };
  d.perform(actions);
  CHECK(file_there_when_announced);
  CHECK_FALSE(fs::exists(d.path));
  CHECK(d.report().outcome == CycleOutcome::logged_out);
  CHECK(d.status().disposed);  // the event stream's `invalidated`
  auto events = logs.events();
  auto invalidated = std::find(events.begin(), events.end(), "session_invalidated");
  auto logged_out = std::find(events.begin(), events.end(), "logged_out");
  CHECK(logged_out < invalidated);
  CHECK(logs.count("session_invalidated") == 1);
}

TEST_CASE("cycle: a disposal superseded by the bot's new login announces nothing",
          "[cycle][dispose]") {
  testing::CapturedLogs logs;
  Driver d;
  Actions actions = logged_out_until_disposal(d);
  // The bot's new login lands before the disposal runs.
  d.write(session_doc(d.wall0));
  d.perform(actions);
  CHECK(fs::exists(d.path));
  CHECK(logs.count("session_invalidated") == 0);
  CHECK(logs.count("file_changed") == 1);
  CHECK(d.report().outcome == CycleOutcome::superseded);
  CHECK(d.status().state != SessionState::invalid);
}

TEST_CASE("cycle: a failed disposal is logged after the decision", "[cycle][dispose]") {
  testing::CapturedLogs logs;
  Driver d;
  Actions actions = logged_out_until_disposal(d);
  auto dispose = find_dispose(actions);
  DisposeOutcome failed;
  failed.error = FileError{FileErrorKind::write, "link into invalid: Permission denied"};
  dispose->announce();  // as the I/O thread does before the move
  d.done(dispose->tag, failed);
  auto events = logs.events();
  auto invalidated = std::find(events.begin(), events.end(), "session_invalidated");
  auto error = std::find(events.begin(), events.end(), "file_error");
  REQUIRE(invalidated != events.end());
  REQUIRE(error != events.end());
  CHECK(invalidated < error);
  CHECK(d.status().state == SessionState::invalid);
  CHECK_FALSE(d.status().disposed);
  CHECK(fs::exists(d.path));
}

TEST_CASE("cycle: the save lag counts from the first response that rotated the cookies",
          "[cycle][save_lag]") {
  Driver d;
  d.hold_save = true;
  d.write(session_doc(d.wall0 - 1min));
  d.start();
  d.refresh_now();
  const auto t_check = std::chrono::steady_clock::now() - 50ms;
  const auto t_refresh = t_check + 20ms;
  auto answer_at = [&](std::chrono::steady_clock::time_point at, const char* body,
                       std::optional<std::string> sid) {
    REQUIRE_FALSE(d.http.empty());
    auto p = d.http.front();
    d.http.pop_front();
    auto r = testing::scripted_response(p.request, 200, body, sid, {});
    r.received_at = at;
    d.done(p.tag, r);
  };
  SECTION("the check rotates") {
    answer_at(t_check, kHome, std::string("s1"));
    answer_at(t_refresh, R"({"token":"T1"})", std::nullopt);
    REQUIRE(d.held.size() == 1);
    CHECK(std::get<action::Save>(d.held.front()).responded_at == t_check);
  }
  SECTION("only the refresh rotates") {
    answer_at(t_check, kHome, std::nullopt);
    answer_at(t_refresh, R"({"token":"T1"})", std::string("s1"));
    REQUIRE(d.held.size() == 1);
    CHECK(std::get<action::Save>(d.held.front()).responded_at == t_refresh);
  }
  SECTION("nothing rotates: from the save itself") {
    const auto before = std::chrono::steady_clock::now();
    answer_at(t_check, kHome, std::nullopt);
    answer_at(t_refresh, R"({"token":"T1"})", std::nullopt);
    REQUIRE(d.held.size() == 1);
    CHECK(std::get<action::Save>(d.held.front()).responded_at >= before);
  }
  d.release();
  CHECK(d.report().outcome == CycleOutcome::success);
}

// -- stale results ------------------------------------------------------------------

TEST_CASE("cycle: results of an older cycle or in the wrong phase are ignored", "[cycle]") {
  Driver d;
  d.write(session_doc(d.wall0 - 1min));
  d.start();
  d.refresh_now();
  REQUIRE(d.http.size() == 1);
  const auto tag = d.http.front().tag;
  HttpResponse ok;
  ok.status = 200;
  ok.body = kHome;
  ok.cookies = d.http.front().request.cookies;
  d.done(tag + 1, ok);
  CHECK(d.last.empty());
  // Checking: no save, disposal, load or first look belongs here.
  auto loaded = load_session_file(d.path);
  d.done(tag, SaveOutcome{SaveOutcome::Kind::saved, FileIdentity{}, std::nullopt});
  CHECK(d.last.empty());
  d.done(tag, DisposeOutcome{});
  CHECK(d.last.empty());
  d.done(tag, Loaded{loaded});
  CHECK(d.last.empty());
  d.done(tag, FirstLook{});
  CHECK(d.last.empty());
  CHECK(d.status().refreshing);
  d.answer(503, "busy");

  // The next cycle ignores the first one's late answer.
  d.fire();
  REQUIRE(d.http.size() == 1);
  d.done(tag, ok);
  CHECK(d.last.empty());
  CHECK(d.http.size() == 1);

  // Saving: a late HTTP answer of the same cycle changes nothing.
  d.hold_save = true;
  d.answer(200, kHome, std::string("s1"));
  REQUIRE(d.http.size() == 1);
  const auto tag2 = d.http.front().tag;
  d.answer(200, R"({"token":"T1"})");
  REQUIRE(d.held.size() == 1);
  d.done(tag2, ok);
  CHECK(d.last.empty());
  d.hold_save = false;
  d.release();
  CHECK(d.report().outcome == CycleOutcome::success);
  CHECK(d.read()["cookies"][0]["value"] == "s1");
  CHECK(d.reports.size() == 2);
}

// -- exec step ------------------------------------------------------------------------

TEST_CASE("cycle: an exec step gets the current cookies; its copy is saved with our block",
          "[cycle]") {
  Driver d(kExecProfile);
  d.write(session_doc(d.wall0 - 1min));
  d.start();
  d.refresh_now();
  REQUIRE(d.execs.size() == 1);
  auto run = d.execs.front();
  d.execs.pop_front();
  CHECK(run.job.session_id == d.id);
  CHECK(run.job.argv == std::vector<std::string>{"/usr/local/bin/renew", "{file}", "{id}"});
  CHECK(run.job.base_url == "http://127.0.0.1:1");
  CHECK(run.job.timeout == 20s);
  CHECK(run.job.session["cookies"][0]["value"] == "s0");
  CHECK(run.job.session["botField"] == 42);

  SECTION("exit 0: the copy is the new session") {
    json copy = run.job.session;
    copy["cookies"][0]["value"] = "x1";
    copy["keepalive"]["refreshCount"] = 999;  // not the command's to change
    copy["fromCommand"] = true;
    ExecOutcome outcome;
    outcome.process.started = true;
    outcome.process.exit_code = 0;
    outcome.updated = LoadedSession{copy, FileIdentity{}};
    d.done(run.tag, outcome);
    CHECK(d.report().outcome == CycleOutcome::success);
    auto doc = d.read();
    CHECK(doc["cookies"][0]["value"] == "x1");
    CHECK(doc["fromCommand"] == true);
    CHECK(doc["keepalive"]["refreshCount"] == 8);
    CHECK(doc["keepalive"]["state"] == "active");
    check_regular_delay(d);
    // The next command gets the new cookies.
    d.fire();
    REQUIRE(d.execs.size() == 1);
    CHECK(d.execs.front().job.session["cookies"][0]["value"] == "x1");
  }
  SECTION("exit 3: logged out") {
    ExecOutcome outcome;
    outcome.process.started = true;
    outcome.process.exit_code = 3;
    d.done(run.tag, outcome);
    CHECK(d.report().outcome == CycleOutcome::logged_out);
    CHECK(d.status().state == SessionState::invalid);
    CHECK_FALSE(fs::exists(d.path));
    CHECK(fs::exists(d.dir + "/invalid/" + session_filename(d.id)));
  }
  SECTION("timeout: transient") {
    ExecOutcome outcome;
    outcome.process.started = true;
    outcome.process.timed_out = true;
    outcome.process.signal = 9;
    d.done(run.tag, outcome);
    CHECK(d.report().outcome == CycleOutcome::transient_error);
    CHECK(d.report().detail == "refresh: command timed out");
    CHECK(d.status().state == SessionState::retrying);
    CHECK(d.schedules.back().delay <= 2s);
    CHECK(d.read()["cookies"][0]["value"] == "s0");
  }
}

// -- browser step -----------------------------------------------------------------

namespace {
// The check is a page load: {"browser": {"url": "/pwa", "wait_for": "div.homeSection"}}.
void use_browser_check(Driver& d) {
  BrowserStepSpec spec;
  spec.url = "/pwa";
  PageCondition home;
  home.selector = "div.homeSection";
  spec.wait_for.push_back(home);
  d.profile->check->browser = spec;
  d.profile->refresh.reset();
}

json new_origins() {
  return json::array({{{"origin", "http://127.0.0.1"},
                       {"localStorage", json::array({{{"name", "k"}, {"value", "v2"}}})}}});
}
}  // namespace

TEST_CASE("cycle: a browser step gets the file's state and saves what the page left", "[cycle]") {
  Driver d;
  use_browser_check(d);
  d.write(session_doc(d.wall0 - 1min));
  d.start();
  d.refresh_now();
  REQUIRE(d.browsers.size() == 1);
  auto run = d.browsers.front();
  d.browsers.pop_front();
  CHECK(run.request.session_id == d.id);
  CHECK(run.request.spec.url == "http://127.0.0.1:1/pwa");
  REQUIRE(run.request.spec.wait_for.size() == 1);
  CHECK(run.request.spec.wait_for[0].selector == std::optional<std::string>("div.homeSection"));
  CHECK(run.request.state["cookies"] == json::array({cookie("sid", "s0")}));
  CHECK(run.request.state["origins"][0]["localStorage"][0]["value"] == "v");
  // Closest to its idle deadline first.
  CHECK(run.request.priority ==
        std::chrono::duration_cast<Millis>((d.wall0 - 1min + 10min).time_since_epoch()).count());

  SECTION("logged in with new state") {
    BrowserStepResult r;
    r.verdict = BrowserStepResult::Verdict::logged_in;
    r.cookies = json::array({cookie("sid", "b1"), cookie("csrftoken", "c1")});
    r.origins = new_origins();
    d.done(run.tag, r);
    CHECK(d.report().outcome == CycleOutcome::success);
    auto doc = d.read();
    CHECK(doc["cookies"] == json::array({cookie("sid", "b1"), cookie("csrftoken", "c1")}));
    CHECK(doc["origins"] == new_origins());
    CHECK(doc["keepalive"]["refreshCount"] == 8);
    CHECK(doc["botField"] == 42);
    check_regular_delay(d);
  }
  SECTION("transient with captured state: the next cycle uses it") {
    BrowserStepResult r;
    r.verdict = BrowserStepResult::Verdict::transient;
    r.detail = "browser crashed";
    r.cookies = json::array({cookie("sid", "b2")});
    r.origins = new_origins();
    d.done(run.tag, r);
    CHECK(d.report().outcome == CycleOutcome::transient_error);
    CHECK(d.report().detail == "check: browser crashed");
    CHECK(d.read()["cookies"][0]["value"] == "s0");  // not saved
    d.fire();
    REQUIRE(d.browsers.size() == 1);
    auto next = d.browsers.front();
    d.browsers.pop_front();
    CHECK(next.request.state["cookies"] == json::array({cookie("sid", "b2")}));
    CHECK(next.request.state["origins"] == new_origins());
    // Logged in without changes: what was captured is saved.
    BrowserStepResult ok;
    ok.verdict = BrowserStepResult::Verdict::logged_in;
    d.done(next.tag, ok);
    CHECK(d.report().outcome == CycleOutcome::success);
    CHECK(d.read()["cookies"] == json::array({cookie("sid", "b2")}));
    CHECK(d.read()["origins"] == new_origins());
  }
  SECTION("logged out") {
    BrowserStepResult r;
    r.verdict = BrowserStepResult::Verdict::logged_out;
    r.detail = "logged_out matched";
    d.done(run.tag, r);
    CHECK(d.report().outcome == CycleOutcome::logged_out);
    CHECK(d.status().state == SessionState::invalid);
    CHECK_FALSE(fs::exists(d.path));
    CHECK(fs::exists(d.dir + "/invalid/" + session_filename(d.id)));
  }
}

// -- remove and drain ------------------------------------------------------------

TEST_CASE("cycle: a removed session leaves at once when idle, after its cycle when running",
          "[cycle]") {
  SECTION("idle") {
    Driver d;
    d.write(session_doc(d.wall0 - 1min));
    d.start();
    d.remove();
    CHECK(d.left == 1);
    CHECK(d.reports.empty());
    d.tick(d.schedules.back().gen);
    CHECK(d.last.empty());
  }
  SECTION("running") {
    Driver d;
    d.write(session_doc(d.wall0 - 1min));
    d.start();
    d.refresh_now();
    d.remove();
    CHECK(d.left == 0);
    auto schedules = d.schedules.size();
    d.answer(503, "busy");
    CHECK(d.report().outcome == CycleOutcome::transient_error);
    CHECK(d.left == 1);
    CHECK(d.schedules.size() == schedules);  // no retry
    auto finished = std::find(d.kinds.begin(), d.kinds.end(), "Finished");
    auto leave = std::find(d.kinds.begin(), d.kinds.end(), "Leave");
    CHECK(finished < leave);
  }
}

TEST_CASE("cycle: drain stops scheduling and says when no cycle runs", "[cycle]") {
  SECTION("idle") {
    Driver d;
    d.write(session_doc(d.wall0 - 1min));
    d.start();
    d.drain();
    CHECK(d.drained == 1);
    CHECK(d.c().draining());
    CHECK_FALSE(d.refresh_now());
    CHECK(d.last.empty());
    d.write(session_doc(std::nullopt, "bot"));
    d.file_changed(*stat_identity(d.path));
    CHECK(d.last.empty());
    d.tick(d.schedules.back().gen);
    CHECK(d.last.empty());
    CHECK(d.http.empty());
  }
  SECTION("running") {
    Driver d;
    d.write(session_doc(d.wall0 - 1min));
    d.start();
    d.refresh_now();
    auto schedules = d.schedules.size();
    d.drain();
    CHECK(d.drained == 0);
    CHECK_FALSE(d.refresh_now());
    d.refresh_ok("s1");
    CHECK(d.report().outcome == CycleOutcome::success);
    CHECK(d.read()["cookies"][0]["value"] == "s1");  // the cycle still saves
    CHECK(d.drained == 1);
    CHECK(d.schedules.size() == schedules);
    CHECK_FALSE(d.status().next_refresh);
    auto finished = std::find(d.kinds.begin(), d.kinds.end(), "Finished");
    auto drained = std::find(d.kinds.begin(), d.kinds.end(), "Drained");
    CHECK(finished < drained);
  }
}

// -- defects found by these tests (each failed before its fix in src/refresh_cycle.cpp) --

TEST_CASE("cycle: a cookie rotated by the check survives a transient failure of the refresh",
          "[cycle]") {
  Driver d;
  d.write(session_doc(d.wall0 - 1min));
  d.start();
  d.refresh_now();
  // The check succeeds and the site rotates sid; the old one is now dead.
  d.answer(200, kHome, std::string("s1"));
  SECTION("refresh answers 503") {
    d.answer(503, "busy");
  }
  SECTION("refresh rotates again but matches no rule") {
    d.answer(200, "{}", std::string("s2"));
  }
  CHECK(d.report().outcome == CycleOutcome::transient_error);
  d.fire();
  REQUIRE(d.http.size() == 1);
  CHECK(sid_of(d.http.front().request) != std::optional<std::string>("s0"));
}

TEST_CASE("cycle: a lastRefresh in the future never delays the first refresh past the interval",
          "[cycle]") {
  Driver d;
  d.write(session_doc(d.wall0 + 1h));  // written by a host whose clock runs ahead
  d.start();
  REQUIRE(d.schedules.size() == 1);
  CHECK(d.schedules[0].delay <= d.site->interval);
}

TEST_CASE("cycle: the mark disposal's own write is not taken for the bot's new file", "[cycle]") {
  Driver d;
  d.site->on_logged_out = OnLoggedOut::mark;
  d.write(session_doc(d.wall0 - 1min));
  d.start();
  d.refresh_now();
  d.answer(302, "", std::nullopt, {{"location", "/login"}});
  REQUIRE(d.report().outcome == CycleOutcome::logged_out);
  // The watcher reports the file as the disposal left it.
  d.file_changed(*stat_identity(d.path));
  CHECK(d.last.empty());
  CHECK(d.reports.size() == 1);
}

TEST_CASE("cycle: the bot's new session after a superseded save starts with a fresh attempt count",
          "[cycle]") {
  Driver d;
  d.write(session_doc(d.wall0 - 1min));
  d.start();
  d.refresh_now();
  d.answer(503, "busy");
  d.fire();
  d.answer(503, "busy");
  REQUIRE(d.report().attempt == 2);
  d.fire();
  d.answer(200, kHome, std::string("ours"));
  d.write(session_doc(std::nullopt, "bot"));
  d.answer(200, R"({"token":"T1"})");
  REQUIRE(d.report().outcome == CycleOutcome::superseded);
  d.fire();
  REQUIRE(d.http.size() == 1);
  CHECK(sid_of(d.http.front().request) == std::optional<std::string>("bot"));
  d.answer(503, "busy");
  // One failure of the new login, not the third of the old one (`once` would
  // count the session failed at 3).
  CHECK(d.report().attempt == 1);
}
