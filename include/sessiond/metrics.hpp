#pragma once
// Metrics actor: the accountant. Every actor reports events here; it owns the
// prometheus-cpp registry, the latest status snapshot of every session (for
// /status and the gauges), and the heartbeat / status-report logs.
//
// Messages handled:
//   (status_atom, SessionStatusPtr)          a session's new snapshot
//   (forget_atom, std::string id)            a session was unregistered
//   (outcome_atom, std::string result, double seconds)   one refresh attempt finished
//   (request_atom, std::string step, std::string code)   one request/command to the site
//   (file_error_atom, std::string reason)
//   (restart_atom)                           the supervisor restarted a session actor
//   (ready_atom)                             first directory scan done
//   (drain_atom)                             shutting down (readiness goes false)
//   (metrics_atom) -> std::string            Prometheus text exposition
//   (status_atom) -> std::string             /status JSON
//   (session_atom, std::string id) -> std::string   one session's JSON ("" if unknown)
//   (ready_atom, bool) -> bool               readiness (for /readyz)
//   (heartbeat_atom), (report_atom)          self-scheduled log timers

#include <caf/behavior.hpp>
#include <caf/stateful_actor.hpp>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <functional>
#include <memory>
#include <string>
#include <unordered_map>

#include "sessiond/duration.hpp"
#include "sessiond/http_client.hpp"
#include "sessiond/messages.hpp"

namespace sessiond {

struct MetricsSetup {
  std::string version = SESSIOND_VERSION;
  Millis interval{300000};
  Millis idle_timeout{600000};
  Millis heartbeat_interval{60000};
  Millis status_interval{600000};
  std::uint32_t shard_index = 0;
  std::uint32_t shard_count = 1;
  bool per_session = false;  // opt-in per-session series
  std::function<HttpLoad()> http_load;
  std::size_t max_in_flight = 0;     // the HTTP client's cap (exported as a gauge)
  double rate_limit_per_second = 0;  // the profile's token bucket; 0 = unlimited
  std::function<bool()> circuit_open;
  std::function<WallTime()> now = [] { return std::chrono::system_clock::now(); };
};

struct MetricsState {
  static inline const char* name = "metrics";

  MetricsSetup setup;
  std::shared_ptr<prometheus::Registry> registry;
  prometheus::Family<prometheus::Counter>* refresh_total = nullptr;
  prometheus::Family<prometheus::Counter>* http_requests = nullptr;
  prometheus::Family<prometheus::Counter>* file_errors = nullptr;
  prometheus::Counter* restarts = nullptr;
  prometheus::Family<prometheus::Gauge>* sessions = nullptr;
  prometheus::Gauge* oldest_age = nullptr;
  prometheus::Histogram* duration = nullptr;
  prometheus::Gauge* ready_gauge = nullptr;
  prometheus::Gauge* in_flight = nullptr;
  prometheus::Gauge* queued = nullptr;
  prometheus::Gauge* rate_tokens = nullptr;
  prometheus::Counter* rate_limited = nullptr;
  std::uint64_t rate_limited_reported = 0;
  prometheus::Gauge* circuit = nullptr;
  // Prometheus' standard process_* series.
  prometheus::Counter* process_cpu = nullptr;
  double process_cpu_reported = 0;
  prometheus::Gauge* process_rss = nullptr;
  prometheus::Gauge* process_vsz = nullptr;
  prometheus::Gauge* process_fds = nullptr;
  prometheus::Gauge* process_max_fds = nullptr;
  prometheus::Gauge* process_start = nullptr;
  prometheus::Family<prometheus::Gauge>* per_session_last = nullptr;

  std::unordered_map<std::string, SessionStatus> by_id;
  bool ready = false;
  bool draining = false;
};

caf::behavior metrics_actor(caf::stateful_actor<MetricsState>* self, MetricsSetup setup);

}  // namespace sessiond
