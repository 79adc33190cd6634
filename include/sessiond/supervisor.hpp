#pragma once
// Supervisor: one SessionActor per session file, reconciled with what the
// Watcher reports. One-for-one restarts with backoff and a restart limit per
// time window (as OTP does); after the limit the session is marked failed and
// left alone until its file changes. Also the entry point of the admin API.
//
// Messages handled:
//   (added_atom, std::string id, std::optional<FileIdentity>)   from the watcher
//   (removed_atom, std::string id)                    from the watcher
//   (scanned_atom)                                    first scan done -> ready
//   (retick_atom, std::string id, uint64 incarnation) restart timer
//   (refresh_atom) -> int                             refresh all now; number of sessions
//   (refresh_atom, std::string id) -> std::string     refresh one; its outcome, or "not_found"
//   (register_atom, std::string id) -> std::string    PUT: "registered" | "not_found" | "exists"
//   (unregister_atom, std::string id) -> std::string  DELETE: "unregistered" | "not_found"
//   (drain_atom) -> done_atom                         stop scheduling, wait for in-flight cycles
//   (done_atom, std::string id, std::string result)   once mode: a session finished
//   (done_atom) -> (int failed, int total)            once mode: reply when every session finished
// Monitors its children (down messages) and forwards exits to all of them.

#include <caf/behavior.hpp>
#include <caf/response_promise.hpp>
#include <caf/stateful_actor.hpp>

#include <chrono>
#include <functional>
#include <optional>
#include <random>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "sessiond/messages.hpp"
#include "sessiond/runtime.hpp"

namespace sessiond {

struct SupervisorSetup {
  RuntimePtr rt;
  int restart_limit = 5;
  Millis restart_window{60000};
  RetryPolicy restart_backoff{Millis(500), Millis(30000), 0};
  // Spawns a child linked to nothing and monitored by the caller; tests
  // substitute actors that crash on purpose.
  std::function<caf::actor(caf::event_based_actor* supervisor, const std::string& id,
                           const std::string& path)>
      spawn_child;
};

struct SupervisorState {
  static inline const char* name = "supervisor";

  // One per session, so kept small: the file's path is derived from the id
  // when a child starts, and the restart times are a vector (an empty deque
  // already holds 576 bytes).
  struct Child {
    caf::actor handle;  // empty while a restart is pending or after giving up
    std::vector<std::chrono::steady_clock::time_point> restarts;  // within the window, oldest first
    std::uint64_t incarnation = 0;
    bool failed = false;
  };

  SupervisorSetup setup;
  std::unordered_map<std::string, Child> children;
  std::unordered_map<caf::actor_addr, std::string> by_addr;
  std::unordered_set<std::string> unregistered;  // DELETE /sessions/{id}, until PUT
  bool scanned = false;
  bool draining = false;
  std::minstd_rand rng{std::random_device{}()};

  // once mode
  int once_done = 0;
  int once_failed = 0;
  std::optional<caf::response_promise> once_promise;
};

caf::behavior supervisor_actor(caf::stateful_actor<SupervisorState>* self, SupervisorSetup setup);

// The production child: a SessionActor.
caf::actor spawn_session_actor(caf::event_based_actor* supervisor, const RuntimePtr& rt,
                               const std::string& id, const std::string& path);

}  // namespace sessiond
