#pragma once
// The session actor: a thin shell around one RefreshCycle. It feeds the cycle
// the messages it gets and performs the actions the cycle returns: disk work
// on the io pool, requests on the HTTP client, commands on the exec pool,
// browser steps on the browser pool, timers, status snapshots to the status
// board, cycle reports to the listener. Decisions are the cycle's.

#include <caf/stateful_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include <optional>
#include <string>
#include <vector>

#include "sessiond/actors.hpp"
#include "sessiond/refresh_cycle.hpp"
#include "sessiond/release_token.hpp"
#include "sessiond/runtime.hpp"

namespace sessiond {

struct SessionActorState {
  static inline const char* name = "session";
  SitePtr site;
  std::optional<RefreshCycle> cycle;
  std::vector<caf::typed_response_promise<CycleReport>> waiting;   // manual refreshes
  std::vector<caf::typed_response_promise<CycleReport>> pausing;   // pause requests
  std::vector<caf::typed_response_promise<CycleReport>> resuming;  // resume requests
  std::optional<caf::typed_response_promise<drained_atom>> drain_promise;
  // While an HTTP answer is handled: its place in the client's window, which a
  // save it leads to keeps until the rename (HttpResponse::answer_hold).
  ReleaseToken answer_hold;
};

session_actor::behavior_type session_actor_impl(
    session_actor::stateful_pointer<SessionActorState> self, SitePtr site, std::string id);

}  // namespace sessiond
