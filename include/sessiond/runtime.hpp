#pragma once
// What the actors need from the process. A Runtime is shared by every site
// (the HTTP client, the disk and exec pools, the browser pool, the metrics,
// the status board); a Site is one site's settings plus the runtime, shared
// read-only by all of that site's session actors (one pointer each). Tests
// build them with a scripted transport, inline executors and a clock driven
// by CAF's test coordinator.

#include <functional>
#include <memory>

#include "sessiond/actors.hpp"
#include "sessiond/admission.hpp"
#include "sessiond/browser_step.hpp"
#include "sessiond/events.hpp"
#include "sessiond/http_client.hpp"
#include "sessiond/metrics.hpp"
#include "sessiond/refresh_cycle.hpp"
#include "sessiond/sync_batcher.hpp"
#include "sessiond/worker_pool.hpp"

namespace sessiond {

struct Runtime {
  HttpTransport* http = nullptr;     // outlives the actor system
  Executor* io = nullptr;            // disk I/O
  SyncBatcher* sync = nullptr;       // group commit of saves; null: each save fsyncs
  Executor* exec = nullptr;          // external commands (its own concurrency cap)
  BrowserRunner* browser = nullptr;  // null: no profile uses browser steps
  // The site's admission gate (action::Admit); null: admitted at once.
  AdmissionGate* admission = nullptr;
  std::shared_ptr<Metrics> metrics;
  status_board_actor board;         // receives status snapshots
  session_listener_actor listener;  // optional: hears how cycles end
  // The session event stream (the status board publishes; hooks subscribe).
  std::shared_ptr<EventBus> events;
};
using RuntimePtr = std::shared_ptr<const Runtime>;

struct Site {
  std::shared_ptr<const SiteSettings> settings;
  RuntimePtr rt;
};
using SitePtr = std::shared_ptr<const Site>;

}  // namespace sessiond
