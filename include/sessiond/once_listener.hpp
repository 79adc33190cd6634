#pragma once
// The session listener of `sessiond once`: tallies how each session's pass
// ended (OnceTally) and calls `done` once every session of the first scan has
// ended. The supervisor and the session actors know nothing of it.

#include <caf/stateful_actor.hpp>

#include <functional>

#include "sessiond/actors.hpp"
#include "sessiond/once_tally.hpp"

namespace sessiond {

struct OnceListenerState {
  static inline const char* name = "once_listener";
  OnceTally tally;
  std::function<void(OnceTally::Result)> done;
  bool reported = false;
};

session_listener_actor::behavior_type once_listener_impl(
    session_listener_actor::stateful_pointer<OnceListenerState> self,
    std::function<void(OnceTally::Result)> done);

}  // namespace sessiond
