// OnceTally: when `sessiond once` has seen every session of the first scan
// end its pass, and how many failed.

#include <catch2/catch.hpp>

#include "sessiond/once_tally.hpp"

using namespace sessiond;

namespace {

CycleReport report(const std::string& id, CycleOutcome outcome, int attempt = 0,
                   SessionState state = SessionState::active) {
  CycleReport r;
  r.id = id;
  r.outcome = outcome;
  r.attempt = attempt;
  r.state = state;
  return r;
}

bool same(const std::optional<OnceTally::Result>& r, int failed, int total) {
  return r && r->failed == failed && r->total == total;
}

}  // namespace

TEST_CASE("once: success ends a pass, every final failure ends it failed", "[once]") {
  OnceTally t;
  t.expect({"a", "b", "c", "d", "e"});
  t.record(report("a", CycleOutcome::success));
  CHECK_FALSE(t.result());
  t.record(report("b", CycleOutcome::logged_out, 0, SessionState::invalid));
  t.record(report("c", CycleOutcome::file_error, 0, SessionState::file_error));
  t.record(report("d", CycleOutcome::invalid, 0, SessionState::invalid));
  CHECK_FALSE(t.result());
  t.record(report("e", CycleOutcome::failed, 0, SessionState::failed));
  CHECK(same(t.result(), 4, 5));
}

TEST_CASE("once: a transient error ends the pass only at the attempt limit or at risk", "[once]") {
  OnceTally t;
  t.expect({"a", "b"});
  t.record(report("a", CycleOutcome::transient_error, 1, SessionState::retrying));
  t.record(report("a", CycleOutcome::transient_error, 2, SessionState::retrying));
  t.record(report("b", CycleOutcome::transient_error, 1, SessionState::retrying));
  CHECK_FALSE(t.result());
  t.record(
      report("a", CycleOutcome::transient_error, OnceTally::kMaxAttempts, SessionState::retrying));
  CHECK_FALSE(t.result());  // b goes on
  t.record(report("b", CycleOutcome::transient_error, 2, SessionState::at_risk));
  CHECK(same(t.result(), 2, 2));

  // A retry that succeeds before the limit ends it well.
  OnceTally u;
  u.expect({"a"});
  u.record(report("a", CycleOutcome::transient_error, 2, SessionState::retrying));
  u.record(report("a", CycleOutcome::success));
  CHECK(same(u.result(), 0, 1));
}

TEST_CASE("once: a superseded cycle does not end the pass", "[once]") {
  OnceTally t;
  t.expect({"a"});
  t.record(report("a", CycleOutcome::superseded, 0, SessionState::pending));
  CHECK_FALSE(t.result());
  t.record(report("a", CycleOutcome::success));
  CHECK(same(t.result(), 0, 1));
}

TEST_CASE("once: a result only after expect(); reports before it count", "[once]") {
  OnceTally t;
  t.record(report("a", CycleOutcome::success));
  t.record(report("b", CycleOutcome::logged_out, 0, SessionState::invalid));
  CHECK_FALSE(t.result());  // the first scan is not done
  t.expect({"a", "b"});
  CHECK(same(t.result(), 1, 2));

  OnceTally empty;
  CHECK_FALSE(empty.result());
  empty.expect({});
  CHECK(same(empty.result(), 0, 0));
}

TEST_CASE("once: later cycles of an ended session and unexpected sessions change nothing",
          "[once]") {
  OnceTally t;
  t.expect({"a", "b"});
  t.record(report("a", CycleOutcome::success));
  t.record(report("a", CycleOutcome::logged_out, 0, SessionState::invalid));
  t.record(report("b", CycleOutcome::logged_out, 0, SessionState::invalid));
  t.record(report("b", CycleOutcome::success));
  t.record(report("zzz", CycleOutcome::logged_out, 0, SessionState::invalid));
  CHECK(same(t.result(), 1, 2));
}
