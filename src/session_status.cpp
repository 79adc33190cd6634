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
  }
  return "pending";
}

namespace {
constexpr SessionState kAllStates[] = {
    SessionState::pending, SessionState::active, SessionState::retrying,  SessionState::at_risk,
    SessionState::invalid, SessionState::failed, SessionState::file_error};
}  // namespace

bool valid_state_name(const std::string& name) {
  for (auto s : kAllStates)
    if (name == to_string(s)) return true;
  return false;
}

std::string state_names() {
  std::string out;
  for (auto s : kAllStates) out += (out.empty() ? "" : ", ") + std::string(to_string(s));
  return out;
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

nlohmann::json to_json(const SessionStatus& s, WallTime now) {
  using namespace std::chrono;
  nlohmann::json j;
  // The seed's fields first (mobile, lastRefresh, refreshCount, isActive).
  j["mobile"] = s.id;
  j["lastRefresh"] =
      s.last_refresh ? nlohmann::json(log::iso8601(*s.last_refresh)) : nlohmann::json();
  j["refreshCount"] = s.refresh_count;
  j["isActive"] = s.state == SessionState::active || s.state == SessionState::retrying ||
                  s.state == SessionState::pending || s.state == SessionState::at_risk;
  j["state"] = to_string(s.state);
  j["lastRefreshAgeSeconds"] =
      s.last_refresh
          ? nlohmann::json(duration_cast<milliseconds>(now - *s.last_refresh).count() / 1000.0)
          : nlohmann::json();
  j["nextRefresh"] =
      s.next_refresh ? nlohmann::json(log::iso8601(*s.next_refresh)) : nlohmann::json();
  j["lastError"] = s.last_error ? nlohmann::json(*s.last_error) : nlohmann::json();
  j["retryCount"] = s.retry_count;
  j["refreshing"] = s.refreshing;
  return j;
}

}  // namespace sessiond
