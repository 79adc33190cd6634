#pragma once
// The supervisor of one site: a session actor per session file the watcher
// reports, one-for-one restarts with backoff and a restart limit per time
// window (as OTP does); after the limit the session is given up (`failed`)
// until its file changes. Also the admin API's entry point for a site.

#include <caf/stateful_actor.hpp>

#include <chrono>
#include <functional>
#include <random>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "sessiond/actors.hpp"
#include "sessiond/backoff.hpp"
#include "sessiond/runtime.hpp"

namespace sessiond {

struct SupervisorSetup {
  SitePtr site;
  int restart_limit = 5;
  Millis restart_window{60000};
  RetryPolicy restart_backoff{Millis(500), Millis(30000), 0};
  // Spawns a session actor (not linked; the supervisor monitors it). Tests
  // substitute actors that crash on purpose. Default: session_actor_impl.
  std::function<session_actor(supervisor_actor::pointer, const std::string& id)> spawn_child;
};

struct SupervisorState {
  static inline const char* name = "supervisor";

  // One per session, so kept small: the restart times are a vector (an empty
  // deque already holds 576 bytes).
  struct Child {
    session_actor handle;  // empty while a restart is pending or after giving up
    std::vector<std::chrono::steady_clock::time_point> restarts;  // within the window
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
};

supervisor_actor::behavior_type supervisor_impl(
    supervisor_actor::stateful_pointer<SupervisorState> self, SupervisorSetup setup);

}  // namespace sessiond
