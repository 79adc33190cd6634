#pragma once
// What one session looks like from outside: its SessionActor publishes a
// snapshot to the Metrics actor after every change. No secrets in here.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace sessiond {

using WallTime = std::chrono::system_clock::time_point;

enum class SessionState {
  pending,     // registered, first refresh not done yet
  active,      // last refresh succeeded
  retrying,    // transient failures, retrying before the idle deadline
  at_risk,     // idle deadline passed without a successful refresh
  invalid,     // logged out: no longer refreshed
  failed,      // its actor crashed more often than the restart limit allows
  file_error,  // the file cannot be read or parsed; retried when it changes
};
const char* to_string(SessionState s);
bool valid_state_name(const std::string& name);
std::string state_names();  // "pending, active, ..." for error messages

// Outcome of one refresh attempt; the `result` label of sessiond_refresh_total.
enum class RefreshResult { success, logged_out, transient_error };
const char* to_string(RefreshResult r);

struct SessionStatus {
  std::string id;
  SessionState state = SessionState::pending;
  std::optional<WallTime> last_refresh;  // last successful refresh
  std::int64_t refresh_count = 0;
  std::optional<WallTime> next_refresh;
  std::optional<std::string> last_error;
  int retry_count = 0;  // consecutive failed attempts
  bool refreshing = false;
};

// JSON for /status and /sessions/{id}; `now` gives ages.
nlohmann::json to_json(const SessionStatus& s, WallTime now);

}  // namespace sessiond
