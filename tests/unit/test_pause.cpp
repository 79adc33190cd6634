// The persistent pause (POST /sessions/{id}/pause, .../resume) as RefreshCycle
// decides it: kept in the file's keepalive block, written through the same
// compare-and-save path as a refresh, honoured at start-up, undone by the
// bot's fresh login. A small driver performs the cycle's actions on real
// files in a temp dir (cycle_driver.hpp);
// the status counts of a paused session are checked on the StatusTable.

#include <catch2/catch.hpp>

#include <deque>
#include <filesystem>
#include <fstream>

#include "cycle_driver.hpp"
#include "sessiond/json_log.hpp"
#include "sessiond/metrics.hpp"
#include "sessiond/refresh_cycle.hpp"
#include "sessiond/status_table.hpp"
#include "test_support.hpp"

using namespace sessiond;
using namespace std::chrono_literals;
using json = nlohmann::json;
namespace fs = std::filesystem;
using namespace cycle_test;

namespace {

json paused_doc(WallTime last_refresh, WallTime paused_at, const std::string& sid = "s0") {
  json doc = session_doc(last_refresh, sid);
  write_keepalive(doc, SessionStatus::keepalive_paused(read_keepalive(doc), paused_at,
                                                       std::string("bot migration")));
  return doc;
}

}  // namespace

TEST_CASE("pause: a file paused before a restart is registered, not scheduled", "[pause]") {
  Driver d;
  d.write(paused_doc(d.wall0 - 20min, d.wall0 - 10min));
  d.start();
  CHECK(d.count("ReadFirstLook") == 1);
  CHECK(d.schedules.empty());  // an overdue session would be scheduled within 30 s
  const auto& s = d.c().status();
  CHECK(s.state == SessionState::paused);
  CHECK_FALSE(s.is_live());
  CHECK_FALSE(s.next_refresh);
  CHECK(s.refresh_count == 7);
  REQUIRE(s.paused_at);
  CHECK(*s.paused_at == d.wall0 - 10min);
  CHECK(s.pause_reason == std::optional<std::string>("bot migration"));
  auto j = to_json(s, d.now());
  CHECK(j["state"] == "paused");
  CHECK(j["isActive"] == false);
  CHECK(j["pauseReason"] == "bot migration");
  CHECK(j["pausedAt"] == log::iso8601(d.wall0 - 10min));

  // A manual refresh reads the file, finds it paused and sends nothing.
  CHECK(d.refresh_now());
  CHECK(d.http.empty());
  REQUIRE_FALSE(d.reports.empty());
  CHECK(d.reports.back().outcome == CycleOutcome::paused);
  CHECK(d.c().status().state == SessionState::paused);
  CHECK(d.schedules.empty());
  CHECK(d.count("Save") == 0);
}

TEST_CASE("pause: written with a Save after the running cycle; no timer after it", "[pause]") {
  Driver d;
  d.write(session_doc(d.wall0 - 1min));
  d.start();
  REQUIRE(d.schedules.size() == 1);
  d.fire();
  REQUIRE(d.http.size() == 1);  // the check is in flight

  CHECK(d.pause(std::string("maintenance")));
  CHECK(d.count("Load") == 1);  // nothing until the running cycle ends
  CHECK(d.settled.empty());
  d.refresh_ok("s1");
  // The refresh saved, then the pause was read and saved in a cycle of its own.
  CHECK(d.count("Load") == 2);
  CHECK(d.count("Save") == 2);
  REQUIRE(d.settled.size() == 1);
  CHECK(d.settled[0].pause);
  CHECK(d.settled[0].report.outcome == CycleOutcome::paused);
  CHECK(d.settled[0].report.state == SessionState::paused);
  auto doc = d.read();
  CHECK(doc["keepalive"]["paused"] == true);
  CHECK(doc["keepalive"]["pausedAt"] == log::iso8601(d.now()));
  CHECK(doc["keepalive"]["pauseReason"] == "maintenance");
  CHECK(doc["keepalive"]["refreshCount"] == 8);  // the refresh before it was kept
  CHECK(doc["cookies"][0]["value"] == "s1");
  CHECK(doc["botField"] == 42);
  CHECK(d.c().status().state == SessionState::paused);
  CHECK_FALSE(d.c().status().next_refresh);
  CHECK(d.c().idle());

  // The timer the refresh armed is stale now: it starts nothing.
  const auto before = d.kinds.size();
  d.fire();
  CHECK(d.kinds.size() == before);
  CHECK(d.http.empty());

  // Pausing again is answered without a write.
  CHECK(d.pause());
  CHECK(d.count("Save") == 2);
  REQUIRE(d.settled.size() == 2);
  CHECK(d.settled[1].report.outcome == CycleOutcome::paused);
  CHECK(d.read()["keepalive"]["pauseReason"] == "maintenance");
}

TEST_CASE("pause: resume removes the block and schedules the overdue refresh soon", "[pause]") {
  Driver d;
  d.write(paused_doc(d.wall0 - 20min, d.wall0 - 15min));
  d.start();
  REQUIRE(d.schedules.empty());

  CHECK(d.resume());
  CHECK(d.count("Save") == 1);
  REQUIRE(d.settled.size() == 1);
  CHECK_FALSE(d.settled[0].pause);
  CHECK(d.settled[0].report.outcome == CycleOutcome::resumed);
  auto doc = d.read();
  CHECK_FALSE(doc["keepalive"].contains("paused"));
  CHECK_FALSE(doc["keepalive"].contains("pausedAt"));
  CHECK_FALSE(doc["keepalive"].contains("pauseReason"));
  CHECK(doc["keepalive"]["refreshCount"] == 7);
  // 20 minutes since the last refresh: overdue, so within the catch-up window.
  REQUIRE(d.schedules.size() == 1);
  CHECK(d.schedules[0].delay <= 30s);
  CHECK(d.c().status().state == SessionState::pending);
  CHECK(d.c().status().next_refresh);
  d.fire();
  REQUIRE(d.http.size() == 1);
  d.refresh_ok("s1");
  CHECK(d.c().status().state == SessionState::active);
  CHECK(d.read()["keepalive"]["refreshCount"] == 8);

  // Resuming a session that is not paused writes nothing and keeps its timer.
  const auto saves = d.count("Save");
  CHECK(d.resume());
  CHECK(d.count("Save") == saves);
  CHECK(d.settled.back().report.outcome == CycleOutcome::resumed);
  CHECK(d.schedules.back().delay > 4min);  // due in about 5 minutes, as before
}

TEST_CASE("pause: the bot's rewrite between the read and the save wins; the pause applies to it",
          "[pause]") {
  Driver d;
  d.write(session_doc(d.wall0 - 1min));
  d.start();
  d.hold_save = true;
  CHECK(d.pause());
  REQUIRE(d.held.size() == 1);
  // The login bot writes a fresh login meanwhile.
  d.write(session_doc(std::nullopt, "bot"));
  d.hold_save = false;
  d.release();
  CHECK(d.count("Load") == 2);  // read again, the bot's version
  auto doc = d.read();
  CHECK(doc["cookies"][0]["value"] == "bot");  // never overwritten by the stale copy
  CHECK(doc["keepalive"]["paused"] == true);
  REQUIRE(d.settled.size() == 1);
  CHECK(d.settled[0].report.outcome == CycleOutcome::paused);
  CHECK(d.c().status().state == SessionState::paused);
}

TEST_CASE("pause: a rewrite that keeps the block stays paused; a fresh login un-pauses",
          "[pause]") {
  Driver d;
  d.write(paused_doc(d.wall0 - 2min, d.wall0 - 1min));
  d.start();
  REQUIRE(d.c().status().state == SessionState::paused);

  // The bot rewrites cookies but keeps sessiond's block: still paused.
  d.write(paused_doc(d.wall0 - 2min, d.wall0 - 1min, "bot1"));
  d.file_changed();
  CHECK(d.http.empty());
  CHECK(d.c().status().state == SessionState::paused);
  CHECK(d.schedules.empty());

  // A fresh login drops the block: refreshed at once, as any new login.
  d.write(session_doc(std::nullopt, "bot2"));
  d.file_changed();
  REQUIRE(d.http.size() == 1);
  CHECK(jar_value(d.http.front().request.cookies, "sid") == std::optional<std::string>("bot2"));
  CHECK(d.c().status().state == SessionState::pending);
  CHECK_FALSE(d.c().status().paused_at);
  d.refresh_ok("s1");
  CHECK(d.c().status().state == SessionState::active);
  CHECK_FALSE(d.read()["keepalive"].contains("paused"));
  CHECK_FALSE(d.schedules.empty());
}

TEST_CASE("pause: the latest request wins; draining answers a request not yet started", "[pause]") {
  Driver d;
  d.write(session_doc(d.wall0 - 1min));
  d.start();
  d.fire();
  REQUIRE(d.http.size() == 1);
  CHECK(d.pause());
  CHECK(d.resume());  // before the pause was written: it is replaced
  REQUIRE(d.settled.size() == 1);
  CHECK(d.settled[0].pause);
  CHECK(d.settled[0].report.outcome == CycleOutcome::superseded);
  d.refresh_ok("s1");
  REQUIRE(d.settled.size() == 2);
  CHECK_FALSE(d.settled[1].pause);
  CHECK(d.settled[1].report.outcome == CycleOutcome::resumed);
  CHECK_FALSE(d.read()["keepalive"].contains("paused"));
  CHECK(d.c().status().next_refresh);

  d.fire();
  REQUIRE(d.http.size() == 1);
  CHECK(d.pause());
  d.run([&](Actions& o) { return (d.c().drain(o), 0); });
  REQUIRE(d.settled.size() == 3);
  CHECK(d.settled[2].report.outcome == CycleOutcome::shutting_down);
  CHECK_FALSE(d.pause());  // draining: nothing starts
  d.refresh_ok("s2");
  CHECK_FALSE(d.read()["keepalive"].contains("paused"));
}

TEST_CASE("pause: the keepalive block round-trips the pause; a bad value is not a pause",
          "[pause]") {
  json doc = session_doc(std::chrono::system_clock::now());
  CHECK_FALSE(read_keepalive(doc).paused);
  auto k = SessionStatus::keepalive_paused(read_keepalive(doc), std::chrono::system_clock::now(),
                                           std::nullopt);
  write_keepalive(doc, k);
  CHECK(doc["keepalive"]["paused"] == true);
  CHECK(doc["keepalive"]["pauseReason"].is_null());
  auto back = read_keepalive(doc);
  CHECK(back.paused);
  CHECK(back.paused_at == k.paused_at);
  doc["keepalive"]["paused"] = "yes";  // not a boolean: not paused
  CHECK_FALSE(read_keepalive(doc).paused);
  doc["keepalive"]["someoneElses"] = 1;
  write_keepalive(doc, SessionStatus::keepalive_resumed(read_keepalive(doc)));
  CHECK_FALSE(doc["keepalive"].contains("paused"));
  CHECK(doc["keepalive"]["someoneElses"] == 1);
}

TEST_CASE("pause: a paused session counts as paused, not live, not in the oldest age", "[pause]") {
  const WallTime now = std::chrono::system_clock::now();
  StatusTable t;
  SessionStatus active;
  active.id = "a";
  active.state = SessionState::active;
  active.last_refresh = now - 60s;
  SessionStatus paused;
  paused.id = "p";
  paused.state = SessionState::paused;
  paused.last_refresh = now - 3h;  // old on purpose: no alert about it
  t.put(active);
  t.put(paused);
  auto sum = t.summary(now);
  CHECK(sum.live == 1);
  CHECK(sum.counts[static_cast<std::size_t>(SessionState::paused)] == 1);
  CHECK(sum.by_state.at("paused") == 1);
  REQUIRE(sum.oldest_age);
  CHECK(*sum.oldest_age == Approx(60.0));
  auto j = t.status_json("paused", 10, true, true, StatusInfo{}, now);
  CHECK(j["activeSessions"] == 1);
  CHECK(j["matchingSessions"] == 1);
  CHECK(j["sessionsByState"]["paused"] == 1);
  CHECK(valid_state_name("paused"));

  // The sessiond_sessions gauge has a paused series.
  Metrics m{MetricsConfig{}};
  m.set_sessions(SessionState::paused, 3);
  CHECK(m.serialize().find("sessiond_sessions{state=\"paused\"} 3") != std::string::npos);
}
