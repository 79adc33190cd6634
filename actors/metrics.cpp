#include "sessiond/metrics.hpp"

#include <caf/event_based_actor.hpp>

#include <prometheus/text_serializer.h>

#include <algorithm>
#include <array>
#include <map>
#include <vector>

#include "sessiond/json_log.hpp"
#include "sessiond/process_stats.hpp"

namespace sessiond {
namespace {

using Self = caf::stateful_actor<MetricsState>;

constexpr std::array<SessionState, 7> kStates = {
    SessionState::pending, SessionState::active, SessionState::retrying,  SessionState::at_risk,
    SessionState::invalid, SessionState::failed, SessionState::file_error};

double seconds(Millis d) {
  return static_cast<double>(d.count()) / 1000.0;
}

struct Summary {
  std::map<std::string, int> by_state;
  int active = 0;  // the seed's "activeSessions": monitored and not given up
  std::optional<double> oldest_age;
};

bool counts_for_age(SessionState s) {
  return s == SessionState::active || s == SessionState::retrying || s == SessionState::at_risk;
}

Summary summarize(const MetricsState& st, WallTime now) {
  Summary sum;
  for (auto s : kStates) sum.by_state[to_string(s)] = 0;
  for (const auto& [id, s] : st.by_id) {
    ++sum.by_state[to_string(s.state)];
    if (s.state != SessionState::invalid && s.state != SessionState::failed &&
        s.state != SessionState::file_error)
      ++sum.active;
    if (counts_for_age(s.state) && s.last_refresh) {
      double age = std::chrono::duration<double>(now - *s.last_refresh).count();
      if (!sum.oldest_age || age > *sum.oldest_age) sum.oldest_age = age;
    }
  }
  return sum;
}

void init_registry(MetricsState& st) {
  using namespace prometheus;
  st.registry = std::make_shared<Registry>();
  auto& r = *st.registry;
  st.refresh_total = &BuildCounter()
                          .Name("sessiond_refresh_total")
                          .Help("Finished refresh attempts by result")
                          .Register(r);
  for (auto res :
       {RefreshResult::success, RefreshResult::logged_out, RefreshResult::transient_error})
    st.refresh_total->Add({{"result", to_string(res)}});
  st.http_requests =
      &BuildCounter()
           .Name("sessiond_http_requests_total")
           .Help("Requests (or exec commands) toward the site by step and status code")
           .Register(r);
  st.file_errors = &BuildCounter()
                        .Name("sessiond_session_file_errors_total")
                        .Help("Session files that could not be read, parsed or written, by reason")
                        .Register(r);
  for (auto reason : {"parse", "schema", "io", "too_large", "symlink", "permission", "write"})
    st.file_errors->Add({{"reason", reason}});
  st.restarts = &BuildCounter()
                     .Name("sessiond_actor_restarts_total")
                     .Help("Session actors restarted by the supervisor after a crash")
                     .Register(r)
                     .Add({});
  st.sessions = &BuildGauge().Name("sessiond_sessions").Help("Sessions by state").Register(r);
  for (auto s : kStates) st.sessions->Add({{"state", to_string(s)}});
  st.oldest_age = &BuildGauge()
                       .Name("sessiond_oldest_refresh_age_seconds")
                       .Help("Longest time since a live session's last successful refresh")
                       .Register(r)
                       .Add({});
  BuildGauge()
      .Name("sessiond_idle_timeout_seconds")
      .Help("The site's idle logout timeout")
      .Register(r)
      .Add({})
      .Set(seconds(st.setup.idle_timeout));
  BuildGauge()
      .Name("sessiond_refresh_interval_seconds")
      .Help("Configured refresh interval")
      .Register(r)
      .Add({})
      .Set(seconds(st.setup.interval));
  BuildGauge()
      .Name("sessiond_build_info")
      .Help("Build information")
      .Register(r)
      .Add({{"version", st.setup.version}})
      .Set(1);
  BuildGauge()
      .Name("sessiond_shard")
      .Help("This replica's shard index and the shard count")
      .Register(r)
      .Add({{"index", std::to_string(st.setup.shard_index)},
            {"count", std::to_string(st.setup.shard_count)}})
      .Set(1);
  st.duration = &BuildHistogram()
                     .Name("sessiond_refresh_duration_seconds")
                     .Help("Duration of one refresh attempt (load, check, refresh, save)")
                     .Register(r)
                     .Add({}, Histogram::BucketBoundaries{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                                          1, 2.5, 5, 10, 20, 30, 60});
  st.ready_gauge = &BuildGauge()
                        .Name("sessiond_ready")
                        .Help("1 once the first scan of the sessions directory is done")
                        .Register(r)
                        .Add({});
  st.in_flight = &BuildGauge()
                      .Name("sessiond_http_in_flight")
                      .Help("HTTP requests running")
                      .Register(r)
                      .Add({});
  st.queued = &BuildGauge()
                   .Name("sessiond_http_queued")
                   .Help("HTTP requests waiting for a slot (in-flight cap, rate limit)")
                   .Register(r)
                   .Add({});
  BuildGauge()
      .Name("sessiond_http_max_in_flight")
      .Help("Cap on HTTP requests running at once toward the site")
      .Register(r)
      .Add({})
      .Set(static_cast<double>(st.setup.max_in_flight));
  BuildGauge()
      .Name("sessiond_rate_limit_per_second")
      .Help("The profile's token-bucket rate for requests to the site (0: unlimited)")
      .Register(r)
      .Add({})
      .Set(st.setup.rate_limit_per_second);
  st.rate_tokens = &BuildGauge()
                        .Name("sessiond_rate_limit_tokens")
                        .Help("Tokens in the rate limiter's bucket (each request takes one)")
                        .Register(r)
                        .Add({});
  st.rate_limited = &BuildCounter()
                         .Name("sessiond_rate_limited_total")
                         .Help("Requests that waited for a rate-limiter token")
                         .Register(r)
                         .Add({});
  st.circuit = &BuildGauge()
                    .Name("sessiond_circuit_open")
                    .Help("1 while the site-wide circuit breaker holds requests back")
                    .Register(r)
                    .Add({});
  st.process_cpu = &BuildCounter()
                        .Name("process_cpu_seconds_total")
                        .Help("Total user and system CPU time spent in seconds.")
                        .Register(r)
                        .Add({});
  auto gauge = [&](const char* name, const char* help) {
    return &BuildGauge().Name(name).Help(help).Register(r).Add({});
  };
  st.process_rss = gauge("process_resident_memory_bytes", "Resident memory size in bytes.");
  st.process_vsz = gauge("process_virtual_memory_bytes", "Virtual memory size in bytes.");
  st.process_fds = gauge("process_open_fds", "Number of open file descriptors.");
  st.process_max_fds = gauge("process_max_fds", "Maximum number of open file descriptors.");
  st.process_start =
      gauge("process_start_time_seconds", "Start time of the process since unix epoch in seconds.");
  if (st.setup.per_session)
    st.per_session_last = &BuildGauge()
                               .Name("sessiond_session_last_refresh_timestamp_seconds")
                               .Help("Unix time of each session's last successful refresh (opt-in)")
                               .Register(r);
}

void update_gauges(MetricsState& st) {
  auto now = st.setup.now();
  auto sum = summarize(st, now);
  for (const auto& [state, n] : sum.by_state) st.sessions->Add({{"state", state}}).Set(n);
  st.oldest_age->Set(sum.oldest_age.value_or(0));
  st.ready_gauge->Set(st.ready && !st.draining ? 1 : 0);
  if (st.setup.http_load) {
    const HttpLoad load = st.setup.http_load();
    st.in_flight->Set(static_cast<double>(load.in_flight));
    st.queued->Set(static_cast<double>(load.queued));
    st.rate_tokens->Set(load.rate_limit_tokens);
    if (load.rate_limited_total > st.rate_limited_reported) {
      st.rate_limited->Increment(
          static_cast<double>(load.rate_limited_total - st.rate_limited_reported));
      st.rate_limited_reported = load.rate_limited_total;
    }
  }
  if (st.setup.circuit_open) st.circuit->Set(st.setup.circuit_open() ? 1 : 0);
  auto p = read_process_stats();
  if (p.cpu_seconds > st.process_cpu_reported) {
    st.process_cpu->Increment(p.cpu_seconds - st.process_cpu_reported);
    st.process_cpu_reported = p.cpu_seconds;
  }
  st.process_rss->Set(p.resident_bytes);
  st.process_vsz->Set(p.virtual_bytes);
  st.process_fds->Set(p.open_fds);
  st.process_max_fds->Set(p.max_fds);
  st.process_start->Set(p.start_time_seconds);
}

// state_filter: only sessions in that state ("" = all); limit: at most that
// many, in id order (a full list of 100k sessions is tens of MB).
nlohmann::json status_json(const MetricsState& st, const std::string& state_filter,
                           std::uint64_t limit) {
  auto now = st.setup.now();
  auto sum = summarize(st, now);
  nlohmann::json j;
  j["isRunning"] = !st.draining;
  j["activeSessions"] = sum.active;
  j["refreshInterval"] = st.setup.interval.count() / 1000;
  std::vector<const SessionStatus*> list;
  list.reserve(st.by_id.size());
  for (const auto& [id, s] : st.by_id) {
    if (state_filter.empty() || state_filter == to_string(s.state)) list.push_back(&s);
  }
  const auto shown = static_cast<std::size_t>(std::min<std::uint64_t>(limit, list.size()));
  auto by_id = [](auto* a, auto* b) { return a->id < b->id; };
  std::partial_sort(list.begin(), list.begin() + static_cast<std::ptrdiff_t>(shown), list.end(),
                    by_id);
  auto sessions = nlohmann::json::array();
  for (std::size_t i = 0; i < shown; ++i) sessions.push_back(to_json(*list[i], now));
  j["sessions"] = std::move(sessions);
  j["matchingSessions"] = list.size();
  j["ready"] = st.ready && !st.draining;
  j["version"] = st.setup.version;
  j["idleTimeout"] = st.setup.idle_timeout.count() / 1000;
  j["totalSessions"] = st.by_id.size();
  j["sessionsByState"] = sum.by_state;
  j["oldestRefreshAgeSeconds"] =
      sum.oldest_age ? nlohmann::json(*sum.oldest_age) : nlohmann::json();
  j["shard"] = {{"index", st.setup.shard_index}, {"count", st.setup.shard_count}};
  j["time"] = log::iso8601(now);
  return j;
}

nlohmann::json summary_fields(const MetricsState& st) {
  auto sum = summarize(st, st.setup.now());
  return {
      {"active_sessions", sum.active},
      {"total_sessions", st.by_id.size()},
      {"sessions_by_state", sum.by_state},
      {"oldest_refresh_age_s", sum.oldest_age ? nlohmann::json(*sum.oldest_age) : nlohmann::json()},
      {"refresh_interval_s", st.setup.interval.count() / 1000}};
}

}  // namespace

caf::behavior metrics_actor(Self* self, MetricsSetup setup) {
  auto& st = self->state;
  st.setup = std::move(setup);
  init_registry(st);
  self->delayed_send(self, st.setup.heartbeat_interval, heartbeat_atom::value);
  self->delayed_send(self, st.setup.status_interval, report_atom::value);
  return {
      [=](status_atom, const SessionStatusPtr& s) {
        auto& st = self->state;
        if (st.per_session_last && s->last_refresh)
          st.per_session_last->Add({{"session", s->id}})
              .Set(std::chrono::duration<double>(s->last_refresh->time_since_epoch()).count());
        st.by_id[s->id] = *s;
      },
      [=](forget_atom, const std::string& id) {
        auto& st = self->state;
        st.by_id.erase(id);
        if (st.per_session_last)
          st.per_session_last->Remove(&st.per_session_last->Add({{"session", id}}));
      },
      [=](outcome_atom, const std::string& result, double secs) {
        self->state.refresh_total->Add({{"result", result}}).Increment();
        self->state.duration->Observe(secs);
      },
      [=](request_atom, const std::string& step, const std::string& code) {
        self->state.http_requests->Add({{"step", step}, {"code", code}}).Increment();
      },
      [=](file_error_atom, const std::string& reason) {
        self->state.file_errors->Add({{"reason", reason}}).Increment();
      },
      [=](restart_atom) { self->state.restarts->Increment(); },
      [=](ready_atom) { self->state.ready = true; },
      [=](drain_atom) { self->state.draining = true; },
      [=](ready_atom, bool) { return self->state.ready && !self->state.draining; },
      [=](metrics_atom) {
        update_gauges(self->state);
        return prometheus::TextSerializer().Serialize(self->state.registry->Collect());
      },
      [=](status_atom, const std::string& state_filter, std::uint64_t limit) {
        return status_json(self->state, state_filter, limit).dump();
      },
      [=](session_atom, const std::string& id) {
        auto& st = self->state;
        auto it = st.by_id.find(id);
        return it == st.by_id.end() ? std::string() : to_json(it->second, st.setup.now()).dump();
      },
      [=](heartbeat_atom) {
        auto& st = self->state;
        auto fields = summary_fields(st);
        log::info("heartbeat", "sessiond is alive",
                  {{"active_sessions", fields["active_sessions"]},
                   {"total_sessions", fields["total_sessions"]}});
        self->delayed_send(self, st.setup.heartbeat_interval, heartbeat_atom::value);
      },
      [=](report_atom) {
        auto& st = self->state;
        log::info("status", "status report", summary_fields(st));
        self->delayed_send(self, st.setup.status_interval, report_atom::value);
      },
  };
}

}  // namespace sessiond
