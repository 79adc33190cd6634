// Which status changes are events. Only the states a login bot or an operator
// acts on: retrying (a transient failure, retried within the idle deadline)
// and pending -> active (a first refresh) are not events; a refresh that only
// moves counts and times is none.

#include "sessiond/events.hpp"

namespace sessiond {
namespace {

// States that need attention; leaving one for a live state is `recovered`.
bool troubled(SessionState s) {
  return s == SessionState::at_risk || s == SessionState::invalid || s == SessionState::failed ||
         s == SessionState::file_error;
}

SessionEvent make(const char* type, const SessionStatus* before, const SessionStatus& after,
                  std::string reason) {
  SessionEvent e;
  e.type = type;
  e.site = after.site;
  e.session = after.id;
  e.previous_state = before ? to_string(before->state) : "";
  e.state = to_string(after.state);
  e.reason = std::move(reason);
  return e;
}

const char* disposal_done(OnLoggedOut mode) {
  switch (mode) {
    case OnLoggedOut::quarantine:
      return "quarantined";
    case OnLoggedOut::mark:
      return "marked";
    case OnLoggedOut::remove:
      return "deleted";
  }
  return "quarantined";
}

}  // namespace

std::vector<SessionEvent> derive_events(const SessionStatus* before, const SessionStatus& after,
                                        OnLoggedOut mode) {
  std::vector<SessionEvent> out;
  const std::string error = after.last_error.value_or("");
  if (!before) {
    // Its state says the rest (a file marked logged out earlier is
    // registered "pending" and turns "invalid" at its first cycle).
    out.push_back(make("registered", nullptr, after, ""));
    return out;
  }
  const SessionState from = before->state;
  const SessionState to = after.state;
  if (from == to) return out;
  if (from == SessionState::paused)
    out.push_back(make("resumed", before, after, ""));
  else if (troubled(from) && is_live(to) && to != SessionState::at_risk)
    out.push_back(make("recovered", before, after, ""));
  switch (to) {
    case SessionState::invalid:
      out.push_back(make("logged_out", before, after, error));
      // A file marked logged out by an earlier run, or one whose disposal
      // failed, was not invalidated now.
      if (after.disposed) out.push_back(make("invalidated", before, after, disposal_done(mode)));
      break;
    case SessionState::at_risk:
      out.push_back(make("at_risk", before, after, error));
      break;
    case SessionState::file_error:
      out.push_back(make("file_error", before, after, error));
      break;
    case SessionState::failed:
      out.push_back(make("failed", before, after, error));
      break;
    case SessionState::paused:
      out.push_back(make("paused", before, after, after.pause_reason.value_or("")));
      break;
    case SessionState::pending:
    case SessionState::active:
    case SessionState::retrying:
      break;
  }
  return out;
}

SessionEvent removed_event(const SessionStatus& last) {
  SessionEvent e;
  e.type = "removed";
  e.site = last.site;
  e.session = last.id;
  e.previous_state = to_string(last.state);
  return e;
}

}  // namespace sessiond
