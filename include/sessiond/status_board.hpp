#pragma once
// The status board actor: keeps a StatusTable (the latest status of every
// session) for /status, /sessions/{id} and readiness, brings the gauges
// derived from it up to date at each scrape, and writes the heartbeat and
// status-report logs. Counters are not here: see Metrics.

#include <caf/stateful_actor.hpp>

#include <functional>
#include <memory>

#include "sessiond/actors.hpp"
#include "sessiond/events.hpp"
#include "sessiond/metrics.hpp"
#include "sessiond/status_table.hpp"

namespace sessiond {

struct StatusBoardSetup {
  StatusInfo info;
  std::shared_ptr<Metrics> metrics;
  Millis heartbeat_interval{60000};
  Millis status_interval{600000};
  std::function<void(Metrics&)> sample;  // at scrape: the HTTP queue, the circuit, ...
  std::function<WallTime()> now = [] { return std::chrono::system_clock::now(); };
  std::shared_ptr<EventBus> events;  // optional: state changes are published here
  OnLoggedOut on_logged_out = OnLoggedOut::quarantine;  // what "invalidated" says was done
};

struct StatusBoardState {
  static inline const char* name = "status_board";
  StatusBoardSetup setup;
  StatusTable table;
  bool ready = false;
  bool draining = false;
};

status_board_actor::behavior_type status_board_impl(
    status_board_actor::stateful_pointer<StatusBoardState> self, StatusBoardSetup setup);

}  // namespace sessiond
