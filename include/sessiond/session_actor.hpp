#pragma once
// SessionActor: owns one session file and its refresh timer. Nothing else
// touches the file. One refresh cycle at a time (overlapping refreshes of a
// rotating cookie log the session out), every blocking step done elsewhere:
//
//   tick ──▶ load (io pool) ──▶ check ──▶ refresh (HTTP client or exec pool)
//        ──▶ save atomically unless the file changed on disk (io pool) ──▶ log + metrics
//
// Messages handled:
//   (tick_atom, uint64 gen)                 timer; stale generations are ignored
//   (loaded_atom, uint64 cycle, LoadResultPtr)
//   (http_atom, uint64 cycle, HttpResponsePtr)
//   (exec_atom, uint64 cycle, ExecOutcomePtr)
//   (saved_atom, uint64 cycle, SaveOutcomePtr)
//   (disposed_atom, uint64 cycle, DisposeOutcomePtr)
//   (changed_atom, FileIdentity)            the watcher saw the file rewritten (as it found it)
//   (removed_atom)                          unregistered: finish the cycle, forget, quit
//   (refresh_atom) -> std::string           refresh now; replies the outcome
//   (drain_atom) -> done_atom               stop scheduling; reply once idle
// Sends: status snapshots and events to runtime->metrics; in `once` mode
// (done_atom, id, RefreshResult-as-string) to its parent, then quits.

#include <caf/behavior.hpp>
#include <caf/response_promise.hpp>
#include <caf/stateful_actor.hpp>

#include <optional>
#include <random>
#include <string>
#include <vector>

#include "sessiond/cookie_jar.hpp"
#include "sessiond/messages.hpp"
#include "sessiond/runtime.hpp"

namespace sessiond {

struct SessionActorState {
  static inline const char* name = "session";

  enum class Phase { idle, loading, checking, refreshing, saving, disposing };

  RuntimePtr rt;
  std::string id;
  std::string path;
  caf::actor parent;  // once mode: gets (done_atom, id, result)

  SessionStatus status;
  Phase phase = Phase::idle;
  std::uint64_t timer_gen = 0;  // bumped to cancel the pending tick
  std::uint64_t cycle = 0;      // tags replies of the running cycle
  int attempt = 0;              // consecutive transient failures
  bool draining = false;
  bool removed = false;               // unregistered: finish the running cycle, then quit
  bool stopped = false;               // invalid or file error: wait for the file to change
  std::optional<FileIdentity> known;  // the version we last read or wrote
  std::optional<FileIdentity> error_reported_for;  // one file_error log per version
  std::optional<WallTime> last_ok;                 // last time the site saw this session alive
  std::minstd_rand rng;

  // The cycle in flight.
  std::chrono::steady_clock::time_point cycle_started;
  std::shared_ptr<nlohmann::json> doc;
  CookieLines jar;
  const Step* step = nullptr;
  // Cookies that rotated at the site but could not be saved: used by the next
  // cycle, or the session would be logged out by its own stale cookie.
  std::optional<CookieLines> unsaved_jar;
  std::optional<nlohmann::json> unsaved_headers;

  std::vector<caf::response_promise> waiting;  // manual refresh requests
  std::optional<caf::response_promise> drain_promise;
};

caf::behavior session_actor(caf::stateful_actor<SessionActorState>* self, RuntimePtr rt,
                            std::string id, std::string path, caf::actor parent);

}  // namespace sessiond
