#pragma once
// The status board actor: keeps a StatusTable (the latest status of every
// session) for /status, /sessions/{id} and readiness, brings the gauges
// derived from it up to date at each scrape, and writes the heartbeat and
// status-report logs. Counters are not here: see Metrics.

#include <caf/stateful_actor.hpp>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "sessiond/actors.hpp"
#include "sessiond/events.hpp"
#include "sessiond/metrics.hpp"
#include "sessiond/status_page.hpp"
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
  std::vector<SiteInfo> sites;  // the configured sites (their on_logged_out wins for theirs)
};

struct StatusBoardState {
  static inline const char* name = "status_board";
  StatusBoardSetup setup;
  StatusTable table;
  bool ready = false;
  std::size_t scans = 0;  // sites whose first scan is done
  bool draining = false;
  std::map<std::string, std::string> site_errors;  // site -> what is wrong with its directory
};

// GET /sites: each configured site with its settings, counts by state, circuit
// and error (a plain function: the board's handler, tested on its own).
nlohmann::json sites_json(const std::vector<SiteInfo>& sites,
                          const std::map<std::string, std::string>& errors,
                          const StatusTable& table, WallTime now);

// The status page's site lines, from sites_json's "sites" (the same numbers
// as GET /sites).
std::vector<SiteLine> site_lines(const nlohmann::json& sites);

status_board_actor::behavior_type status_board_impl(
    status_board_actor::stateful_pointer<StatusBoardState> self, StatusBoardSetup setup);

}  // namespace sessiond
