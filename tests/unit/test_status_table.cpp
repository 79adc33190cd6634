// StatusTable: the latest status of every session, counts by state, the live
// sessions' oldest refresh age and the /status JSON.

#include <catch2/catch.hpp>

#include "sessiond/status_table.hpp"
#include "test_support.hpp"

using namespace sessiond;
using namespace std::chrono_literals;
using json = nlohmann::json;

namespace {

const WallTime kNow = testing::kStatusNow;

SessionStatus status(const std::string& id, SessionState state,
                     std::optional<std::chrono::seconds> age = std::nullopt) {
  return testing::make_status(id, state, age);
}

// One session in each state, put in no particular order.
StatusTable every_state() {
  StatusTable t;
  t.put(status("g", SessionState::file_error));
  t.put(status("c", SessionState::retrying, 300s));
  t.put(status("a", SessionState::pending));
  t.put(status("e", SessionState::invalid, 5000s));  // older, but not live
  t.put(status("d", SessionState::at_risk, 700s));
  t.put(status("b", SessionState::active, 100s));
  t.put(status("f", SessionState::failed));
  t.put(status("h", SessionState::paused, 9000s));  // oldest, but paused: not live
  return t;
}

std::vector<std::string> ids(const json& j) {
  std::vector<std::string> out;
  for (const auto& s : j["sessions"]) out.push_back(s["mobile"].get<std::string>());
  return out;
}

}  // namespace

TEST_CASE("status: counts by state, live sessions and the oldest live refresh age", "[status]") {
  auto t = every_state();
  CHECK(t.size() == 8);
  auto sum = t.summary(kNow);
  for (auto s : kSessionStates) CHECK(sum.counts[static_cast<std::size_t>(s)] == 1);
  CHECK(sum.by_state.size() == 8);
  CHECK(sum.by_state["at_risk"] == 1);
  CHECK(sum.live == 4);  // pending, active, retrying, at_risk
  REQUIRE(sum.oldest_age);
  CHECK(*sum.oldest_age == Approx(700.0));

  // A new status of the same session replaces the old one.
  t.put(status("d", SessionState::active, 10s));
  sum = t.summary(kNow);
  CHECK(t.size() == 8);
  CHECK(sum.counts[static_cast<std::size_t>(SessionState::at_risk)] == 0);
  CHECK(sum.counts[static_cast<std::size_t>(SessionState::active)] == 2);
  CHECK(*sum.oldest_age == Approx(300.0));

  // No live session with a last refresh: no age.
  StatusTable only_new;
  only_new.put(status("x", SessionState::pending));
  only_new.put(status("y", SessionState::invalid, 100s));
  CHECK_FALSE(only_new.summary(kNow).oldest_age);
  CHECK(only_new.summary(kNow).live == 1);
}

TEST_CASE("status: /status JSON filters by state and limits in id order", "[status]") {
  auto t = every_state();
  StatusInfo info;
  info.version = "1.2.3";
  info.interval_s = 300;
  info.idle_timeout_s = 600;
  info.shard_index = 1;
  info.shard_count = 3;

  auto all = t.status_json("", 100, true, true, info, kNow);
  CHECK(ids(all) == std::vector<std::string>{"a", "b", "c", "d", "e", "f", "g", "h"});
  CHECK(all["matchingSessions"] == 8);
  CHECK(all["totalSessions"] == 8);
  CHECK(all["activeSessions"] == 4);
  CHECK(all["isRunning"] == true);
  CHECK(all["ready"] == true);
  CHECK(all["version"] == "1.2.3");
  CHECK(all["refreshInterval"] == 300);
  CHECK(all["idleTimeout"] == 600);
  CHECK(all["shard"] == json({{"index", 1}, {"count", 3}}));
  CHECK(all["sessionsByState"]["invalid"] == 1);
  CHECK(all["oldestRefreshAgeSeconds"].get<double>() == Approx(700.0));
  CHECK(all["sessions"][1]["state"] == "active");
  CHECK(all["sessions"][1]["isActive"] == true);
  CHECK(all["sessions"][4]["isActive"] == false);

  auto limited = t.status_json("", 2, false, true, info, kNow);
  CHECK(ids(limited) == std::vector<std::string>{"a", "b"});
  CHECK(limited["matchingSessions"] == 8);
  CHECK(limited["totalSessions"] == 8);
  CHECK(limited["ready"] == false);

  auto active = t.status_json("active", 100, true, true, info, kNow);
  CHECK(ids(active) == std::vector<std::string>{"b"});
  CHECK(active["matchingSessions"] == 1);
  CHECK(active["totalSessions"] == 8);
  CHECK(active["activeSessions"] == 4);  // the summary is over all sessions

  auto none = t.status_json("invalid", 0, true, false, info, kNow);
  CHECK(none["sessions"].empty());
  CHECK(none["matchingSessions"] == 1);
  CHECK(none["isRunning"] == false);

  StatusTable empty;
  auto j = empty.status_json("", 100, false, true, info, kNow);
  CHECK(j["sessions"].empty());
  CHECK(j["totalSessions"] == 0);
  CHECK(j["oldestRefreshAgeSeconds"].is_null());
}

TEST_CASE("status: find and forget", "[status]") {
  auto t = every_state();
  const SessionStatus* b = t.find("b");
  REQUIRE(b != nullptr);
  CHECK(b->state == SessionState::active);
  CHECK(t.find("nobody") == nullptr);
  t.forget("b");
  CHECK(t.find("b") == nullptr);
  CHECK(t.size() == 7);
  CHECK(t.summary(kNow).live == 3);
  t.forget("nobody");
  CHECK(t.size() == 7);
  auto fields = t.summary_fields(300, kNow);
  CHECK(fields["active_sessions"] == 3);
  CHECK(fields["total_sessions"] == 7);
  CHECK(fields["refresh_interval_s"] == 300);
  CHECK(fields["oldest_refresh_age_s"].get<double>() == Approx(700.0));
}
