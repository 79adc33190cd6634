#pragma once
// Everything a SessionActor needs from the process, shared read-only by all of
// them (one copy, not one per session). Tests build one with a scripted
// transport, inline executors and a clock driven by CAF's test coordinator.

#include <caf/actor.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "sessiond/config.hpp"
#include "sessiond/http_client.hpp"
#include "sessiond/profile.hpp"
#include "sessiond/session_status.hpp"
#include "sessiond/worker_pool.hpp"

namespace sessiond {

struct Runtime {
  std::shared_ptr<const Profile> profile;
  std::string sessions_dir;
  OnLoggedOut on_logged_out = OnLoggedOut::quarantine;
  Millis interval{std::chrono::minutes(5)};         // effective (flag or profile)
  Millis idle_timeout{std::chrono::minutes(10)};    // effective (flag or profile)
  Millis catchup_window{std::chrono::seconds(30)};  // spread of overdue first refreshes
  bool once = false;  // `sessiond once`: one cycle per session, then report and stop

  HttpTransport* http = nullptr;  // outlives the actor system
  Executor* io = nullptr;         // disk I/O
  Executor* exec = nullptr;       // external commands (its own concurrency cap)
  std::function<WallTime()> now = [] { return std::chrono::system_clock::now(); };
  caf::actor metrics;  // receives events and status snapshots
};

using RuntimePtr = std::shared_ptr<const Runtime>;

}  // namespace sessiond
