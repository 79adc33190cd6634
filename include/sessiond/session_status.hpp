#pragma once
// What one session looks like from outside, and the one place that says what
// its states mean: which are live, how a refresh or a logout changes it, how
// it maps to and from the file's keepalive block, and how a cycle ended. The
// RefreshCycle changes it; the status board keeps the latest copy of each.
// No secrets in here.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "sessiond/session_file.hpp"

namespace sessiond {

using WallTime = std::chrono::system_clock::time_point;

enum class SessionState {
  pending,     // registered, first refresh not done yet
  active,      // last refresh succeeded
  retrying,    // transient failures, retrying before the idle deadline
  at_risk,     // idle deadline passed without a successful refresh
  invalid,     // logged out: no longer refreshed
  failed,      // its actor crashed too often, or retry.max_attempts transient failures in a row
  file_error,  // the file cannot be read or parsed; retried when it changes
  paused,      // an operator paused it (kept in the file's keepalive block): not refreshed
};
// Every state, in declaration order.
constexpr SessionState kSessionStates[] = {
    SessionState::pending, SessionState::active, SessionState::retrying,   SessionState::at_risk,
    SessionState::invalid, SessionState::failed, SessionState::file_error, SessionState::paused};
constexpr std::size_t kSessionStateCount = std::size(kSessionStates);
const char* to_string(SessionState s);
bool valid_state_name(const std::string& name);
std::string state_names();  // "pending, active, ..." for error messages
// Still kept alive (the seed's isActive): pending, active, retrying, at_risk.
// Not paused: a paused session is neither live nor counted in the oldest
// refresh age (its age grows on purpose).
bool is_live(SessionState s);

// Outcome of one refresh attempt that reached a verdict; the `result` label
// of sessiond_refresh_total.
enum class RefreshResult { success, logged_out, transient_error };
const char* to_string(RefreshResult r);

// How one cycle of a session ended (the answer to a manual refresh, what a
// session listener hears).
enum class CycleOutcome {
  success,
  logged_out,
  transient_error,
  file_error,    // the file cannot be used
  invalid,       // the file is marked logged out
  file_missing,  // the file is gone
  superseded,    // the bot rewrote the file during the cycle: it is refreshed next
  removed,       // unregistered while waiting
  shutting_down,
  not_found,  // no such session (admin API)
  failed,     // its actor crashed too often (supervisor), or retry.max_attempts reached (cycle)
  paused,     // the file says paused: not refreshed (also: a pause request is written)
  resumed,    // a resume request is written: refreshed next
};
const char* to_string(CycleOutcome o);

struct CycleReport {
  std::string id;
  CycleOutcome outcome = CycleOutcome::success;
  std::string detail;  // why, for transient errors and file errors (never a secret)
  SessionState state = SessionState::pending;
  int attempt = 0;  // consecutive failed attempts after this cycle
};
// "success", "logged_out", "transient_error: HTTP 503", ...
std::string to_string(const CycleReport& r);

struct SessionStatus {
  std::string site;  // the site's name: ids are unique per site only
  std::string id;
  SessionState state = SessionState::pending;
  std::optional<WallTime> last_refresh;  // last successful refresh
  std::int64_t refresh_count = 0;
  std::optional<WallTime> next_refresh;
  std::optional<std::string> last_error;
  int retry_count = 0;  // consecutive failed attempts
  bool refreshing = false;
  std::optional<WallTime> paused_at;        // paused: since when
  std::optional<std::string> pause_reason;  // paused: what the operator said
  bool disposed = false;  // invalid: this run quarantined, marked or deleted the file

  bool is_live() const { return sessiond::is_live(state); }

  // What the file's keepalive block says about earlier runs: the refresh
  // count and last refresh, where they are ahead of what is known here.
  void adopt(const KeepaliveBlock& k);
  // The block to write with a refreshed session saved at `at` (counts the
  // refresh that record_success() then records).
  KeepaliveBlock keepalive_refreshed(KeepaliveBlock k, WallTime at) const;
  // A refresh at `at` was saved.
  void record_success(WallTime at);
  // The block to write for a logged-out session.
  static KeepaliveBlock keepalive_logged_out(KeepaliveBlock k, const std::string& reason,
                                             WallTime now);
  // What the keepalive block says about a pause: state `paused` and its
  // details when it is paused; a paused status that the block no longer
  // confirms goes back to pending.
  void adopt_pause(const KeepaliveBlock& k);
  // The block to write for a pause at `now` (reason: the operator's words),
  // and for a resume.
  static KeepaliveBlock keepalive_paused(KeepaliveBlock k, WallTime now,
                                         std::optional<std::string> reason);
  static KeepaliveBlock keepalive_resumed(KeepaliveBlock k);
  // A crashing session given up by its supervisor.
  static SessionStatus given_up(const std::string& id, const std::string& reason);
};

// JSON for /status and /sessions/{id}; `now` gives ages.
nlohmann::json to_json(const SessionStatus& s, WallTime now);

}  // namespace sessiond
