#include "sessiond/session_status.hpp"

#include "sessiond/json_log.hpp"

namespace sessiond {

const char* to_string(SessionState s) {
  switch (s) {
    case SessionState::pending:
      return "pending";
    case SessionState::active:
      return "active";
    case SessionState::retrying:
      return "retrying";
    case SessionState::at_risk:
      return "at_risk";
    case SessionState::invalid:
      return "invalid";
    case SessionState::failed:
      return "failed";
    case SessionState::file_error:
      return "file_error";
    case SessionState::paused:
      return "paused";
  }
  return "pending";
}

bool valid_state_name(const std::string& name) {
  for (auto s : kSessionStates)
    if (name == to_string(s)) return true;
  return false;
}

std::string state_names() {
  std::string out;
  for (auto s : kSessionStates) out += (out.empty() ? "" : ", ") + std::string(to_string(s));
  return out;
}

bool is_live(SessionState s) {
  return s == SessionState::pending || s == SessionState::active || s == SessionState::retrying ||
         s == SessionState::at_risk;
}

const char* to_string(RefreshResult r) {
  switch (r) {
    case RefreshResult::success:
      return "success";
    case RefreshResult::logged_out:
      return "logged_out";
    case RefreshResult::transient_error:
      return "transient_error";
  }
  return "transient_error";
}

const char* to_string(CycleOutcome o) {
  switch (o) {
    case CycleOutcome::success:
      return "success";
    case CycleOutcome::logged_out:
      return "logged_out";
    case CycleOutcome::transient_error:
      return "transient_error";
    case CycleOutcome::file_error:
      return "file_error";
    case CycleOutcome::invalid:
      return "invalid";
    case CycleOutcome::file_missing:
      return "file_missing";
    case CycleOutcome::superseded:
      return "superseded";
    case CycleOutcome::removed:
      return "removed";
    case CycleOutcome::shutting_down:
      return "shutting_down";
    case CycleOutcome::not_found:
      return "not_found";
    case CycleOutcome::failed:
      return "failed";
    case CycleOutcome::paused:
      return "paused";
    case CycleOutcome::resumed:
      return "resumed";
  }
  return "failed";
}

std::string to_string(const CycleReport& r) {
  std::string out = to_string(r.outcome);
  if (!r.detail.empty()) out += ": " + r.detail;
  return out;
}

void SessionStatus::adopt(const KeepaliveBlock& k) {
  if (refresh_count < k.refresh_count) refresh_count = k.refresh_count;
  if (!last_refresh && k.last_refresh) last_refresh = parse_iso8601(*k.last_refresh);
}

KeepaliveBlock SessionStatus::keepalive_refreshed(KeepaliveBlock k, WallTime at) const {
  k.state = "active";
  k.last_refresh = log::iso8601(at);
  k.refresh_count = refresh_count + 1;
  k.last_error.reset();
  k.invalid_since.reset();
  return k;
}

void SessionStatus::record_success(WallTime at) {
  state = SessionState::active;
  last_error.reset();
  ++refresh_count;
  last_refresh = at;
}

KeepaliveBlock SessionStatus::keepalive_logged_out(KeepaliveBlock k, const std::string& reason,
                                                   WallTime now) {
  k.state = "invalid";
  k.last_error = reason;
  k.invalid_since = log::iso8601(now);
  return k;
}

void SessionStatus::adopt_pause(const KeepaliveBlock& k) {
  if (k.paused) {
    state = SessionState::paused;
    paused_at = k.paused_at ? parse_iso8601(*k.paused_at) : std::nullopt;
    pause_reason = k.pause_reason;
    next_refresh.reset();
    return;
  }
  if (state == SessionState::paused) state = SessionState::pending;
  paused_at.reset();
  pause_reason.reset();
}

KeepaliveBlock SessionStatus::keepalive_paused(KeepaliveBlock k, WallTime now,
                                               std::optional<std::string> reason) {
  k.paused = true;
  k.paused_at = log::iso8601(now);
  k.pause_reason = std::move(reason);
  return k;
}

KeepaliveBlock SessionStatus::keepalive_resumed(KeepaliveBlock k) {
  k.paused = false;
  k.paused_at.reset();
  k.pause_reason.reset();
  return k;
}

SessionStatus SessionStatus::given_up(const std::string& id, const std::string& reason) {
  SessionStatus s;
  s.id = id;
  s.state = SessionState::failed;
  s.last_error = reason;
  return s;
}

nlohmann::json to_json(const SessionStatus& s, WallTime now) {
  using namespace std::chrono;
  nlohmann::json j;
  // The seed's fields first (mobile, lastRefresh, refreshCount, isActive).
  j["mobile"] = s.id;
  j["lastRefresh"] =
      s.last_refresh ? nlohmann::json(log::iso8601(*s.last_refresh)) : nlohmann::json();
  j["refreshCount"] = s.refresh_count;
  j["isActive"] = s.is_live();
  j["state"] = to_string(s.state);
  if (!s.site.empty()) j["site"] = s.site;
  j["lastRefreshAgeSeconds"] =
      s.last_refresh
          ? nlohmann::json(duration_cast<milliseconds>(now - *s.last_refresh).count() / 1000.0)
          : nlohmann::json();
  j["nextRefresh"] =
      s.next_refresh ? nlohmann::json(log::iso8601(*s.next_refresh)) : nlohmann::json();
  j["lastError"] = s.last_error ? nlohmann::json(*s.last_error) : nlohmann::json();
  j["retryCount"] = s.retry_count;
  j["refreshing"] = s.refreshing;
  if (s.state == SessionState::paused) {
    j["pausedAt"] = s.paused_at ? nlohmann::json(log::iso8601(*s.paused_at)) : nlohmann::json();
    j["pauseReason"] = s.pause_reason ? nlohmann::json(*s.pause_reason) : nlohmann::json();
  }
  return j;
}

}  // namespace sessiond
