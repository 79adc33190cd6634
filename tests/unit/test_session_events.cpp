// derive_events: which status changes are session events, with the right
// previous and new state and reason; a refresh that only moves counts is none.

#include <catch2/catch.hpp>

#include "sessiond/events.hpp"

using namespace sessiond;
using namespace std::chrono_literals;

namespace {

SessionStatus status(SessionState state, std::optional<std::string> error = std::nullopt) {
  SessionStatus s;
  s.id = "09120000001";
  s.state = state;
  s.last_error = std::move(error);
  return s;
}

std::vector<std::string> types(const std::vector<SessionEvent>& events) {
  std::vector<std::string> out;
  for (const auto& e : events) out.push_back(e.type);
  return out;
}

using V = std::vector<std::string>;

}  // namespace

TEST_CASE("a new session is registered with its state", "[events]") {
  auto after = status(SessionState::pending);
  auto events = derive_events(nullptr, after, OnLoggedOut::quarantine);
  REQUIRE(types(events) == V{"registered"});
  CHECK(events[0].session == "09120000001");
  CHECK(events[0].previous_state.empty());
  CHECK(events[0].state == "pending");
  CHECK(events[0].id == 0);  // numbered by the bus
  // Registered paused (before a restart too): its state says so.
  auto paused = derive_events(nullptr, status(SessionState::paused), OnLoggedOut::quarantine);
  CHECK(types(paused) == V{"registered"});
  CHECK(paused[0].state == "paused");
}

TEST_CASE("a refresh that changes only counts and times is no event", "[events]") {
  auto before = status(SessionState::active);
  before.refresh_count = 4;
  before.last_refresh = WallTime(1000s);
  auto after = before;
  after.refresh_count = 5;
  after.last_refresh = WallTime(1300s);
  after.refreshing = false;
  after.next_refresh = WallTime(1600s);
  CHECK(derive_events(&before, after, OnLoggedOut::quarantine).empty());
  // A refresh starting (refreshing = true) neither.
  auto starting = before;
  starting.refreshing = true;
  CHECK(derive_events(&before, starting, OnLoggedOut::quarantine).empty());
  // Nor a first refresh, nor transient failures retried within the deadline.
  auto pending = status(SessionState::pending);
  CHECK(derive_events(&pending, before, OnLoggedOut::quarantine).empty());
  auto retrying = status(SessionState::retrying, "check: HTTP 503");
  CHECK(derive_events(&before, retrying, OnLoggedOut::quarantine).empty());
  CHECK(derive_events(&retrying, before, OnLoggedOut::quarantine).empty());
  // A new error text in the same state is no new event.
  auto file_error = status(SessionState::file_error, "parse: bad JSON");
  auto other_error = status(SessionState::file_error, "schema: no cookies");
  CHECK(derive_events(&file_error, other_error, OnLoggedOut::quarantine).empty());
}

TEST_CASE("a logout is logged_out, then invalidated as --on-logged-out says", "[events]") {
  auto before = status(SessionState::active);
  auto after = status(SessionState::invalid, "logged out");
  after.disposed = true;
  for (auto [mode, done] :
       {std::pair{OnLoggedOut::quarantine, "quarantined"}, std::pair{OnLoggedOut::mark, "marked"},
        std::pair{OnLoggedOut::remove, "deleted"}}) {
    auto events = derive_events(&before, after, mode);
    REQUIRE(types(events) == V{"logged_out", "invalidated"});
    CHECK(events[0].previous_state == "active");
    CHECK(events[0].state == "invalid");
    CHECK(events[0].reason == "logged out");
    CHECK(events[1].reason == done);
    CHECK(events[1].previous_state == "active");
  }
  // At risk, then logged out: logged_out only (at_risk is not recovered).
  auto at_risk = status(SessionState::at_risk, "check: timeout");
  CHECK(types(derive_events(&at_risk, after, OnLoggedOut::mark)) == V{"logged_out", "invalidated"});
}

TEST_CASE("a logout whose disposal failed, or a file marked earlier, is not invalidated now",
          "[events]") {
  auto before = status(SessionState::retrying);
  auto failed = status(SessionState::invalid, "logged out; disposal failed: rename: EACCES");
  auto events = derive_events(&before, failed, OnLoggedOut::quarantine);
  REQUIRE(types(events) == V{"logged_out"});
  CHECK(events[0].reason == failed.last_error);
  // Marked by an earlier run: the first cycle after a start finds it invalid
  // with the reason kept in the file.
  auto pending = status(SessionState::pending);
  auto marked = status(SessionState::invalid, "check: logged out (HTTP 302 to /login)");
  CHECK(types(derive_events(&pending, marked, OnLoggedOut::mark)) == V{"logged_out"});
}

TEST_CASE("at_risk, file_error and failed carry the status's error as reason", "[events]") {
  auto active = status(SessionState::active);
  auto retrying = status(SessionState::retrying, "check: HTTP 503");
  auto at_risk = status(SessionState::at_risk, "check: HTTP 503");
  auto events = derive_events(&retrying, at_risk, OnLoggedOut::quarantine);
  REQUIRE(types(events) == V{"at_risk"});
  CHECK(events[0].previous_state == "retrying");
  CHECK(events[0].state == "at_risk");
  CHECK(events[0].reason == "check: HTTP 503");
  CHECK(types(derive_events(&active, at_risk, OnLoggedOut::quarantine)) == V{"at_risk"});

  auto file_error = status(SessionState::file_error, "parse: unexpected end of input");
  events = derive_events(&active, file_error, OnLoggedOut::quarantine);
  REQUIRE(types(events) == V{"file_error"});
  CHECK(events[0].reason == "parse: unexpected end of input");

  auto failed = status(SessionState::failed, "gave up after 3 failed attempts: check: HTTP 503");
  events = derive_events(&retrying, failed, OnLoggedOut::quarantine);
  REQUIRE(types(events) == V{"failed"});
  CHECK(events[0].reason == *failed.last_error);
  // The supervisor gives up on a crashing actor: a status that was pending.
  auto pending = status(SessionState::pending);
  CHECK(types(derive_events(&pending, SessionStatus::given_up("09120000001", "crashed 6 times"),
                            OnLoggedOut::quarantine)) == V{"failed"});
}

TEST_CASE("leaving a troubled state for a live one is recovered", "[events]") {
  auto active = status(SessionState::active);
  auto pending = status(SessionState::pending);
  auto retrying = status(SessionState::retrying, "check: HTTP 503");
  for (auto from : {SessionState::at_risk, SessionState::file_error, SessionState::failed,
                    SessionState::invalid}) {
    auto before = status(from, "something");
    auto events = derive_events(&before, active, OnLoggedOut::quarantine);
    REQUIRE(types(events) == V{"recovered"});
    CHECK(events[0].previous_state == to_string(from));
    CHECK(events[0].state == "active");
    CHECK(types(derive_events(&before, pending, OnLoggedOut::quarantine)) == V{"recovered"});
  }
  // A fixed file whose site fails for now: no longer file_error, retrying.
  auto file_error = status(SessionState::file_error, "parse: bad");
  CHECK(types(derive_events(&file_error, retrying, OnLoggedOut::quarantine)) == V{"recovered"});
  // failed -> file_error is no recovery.
  auto failed = status(SessionState::failed, "x");
  CHECK(types(derive_events(&failed, file_error, OnLoggedOut::quarantine)) == V{"file_error"});
}

TEST_CASE("pause and resume are events; the pause reason is the operator's", "[events]") {
  auto active = status(SessionState::active);
  auto paused = status(SessionState::paused);
  paused.pause_reason = "account migration";
  auto events = derive_events(&active, paused, OnLoggedOut::quarantine);
  REQUIRE(types(events) == V{"paused"});
  CHECK(events[0].reason == "account migration");
  CHECK(events[0].previous_state == "active");
  events = derive_events(&paused, active, OnLoggedOut::quarantine);
  REQUIRE(types(events) == V{"resumed"});
  CHECK(events[0].previous_state == "paused");
  CHECK(events[0].state == "active");
  // Paused while at risk, then resumed: resumed, not recovered.
  auto at_risk = status(SessionState::at_risk);
  CHECK(types(derive_events(&at_risk, paused, OnLoggedOut::quarantine)) == V{"paused"});
  auto pending = status(SessionState::pending);
  CHECK(types(derive_events(&paused, pending, OnLoggedOut::quarantine)) == V{"resumed"});
}

TEST_CASE("an unregistered session is removed with its last state", "[events]") {
  auto last = status(SessionState::invalid, "logged out");
  auto e = removed_event(last);
  CHECK(e.type == "removed");
  CHECK(e.session == "09120000001");
  CHECK(e.previous_state == "invalid");
  CHECK(e.state.empty());
}
