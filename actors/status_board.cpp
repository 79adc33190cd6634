#include "sessiond/status_board.hpp"

#include <caf/typed_event_based_actor.hpp>

#include <algorithm>

#include "sessiond/json_log.hpp"

namespace sessiond {
namespace {

OnLoggedOut mode_of(const StatusBoardSetup& setup, const std::string& site) {
  for (const auto& s : setup.sites)
    if (s.name == site) return s.on_logged_out;
  return setup.on_logged_out;
}

}  // namespace

nlohmann::json sites_json(const std::vector<SiteInfo>& sites,
                          const std::map<std::string, std::string>& errors,
                          const StatusTable& table, WallTime now) {
  auto list = nlohmann::json::array();
  for (const auto& s : sites) {
    auto sum = table.summary_of(s.name, now);
    auto err = errors.find(s.name);
    const std::string error = err != errors.end() ? err->second : s.error;
    list.push_back({{"name", s.name},
                    {"dir", s.dir},
                    {"pattern", s.pattern},
                    {"profile", s.profile},
                    {"interval", s.interval_s},
                    {"onLoggedOut", to_string(s.on_logged_out)},
                    {"totalSessions", sum.total},
                    {"activeSessions", sum.live},
                    {"sessionsByState", sum.by_state},
                    {"breaker", s.breaker ? s.breaker() : std::string("closed")},
                    {"error", error.empty() ? nlohmann::json() : nlohmann::json(error)}});
  }
  return {{"sites", std::move(list)}};
}

std::vector<SiteLine> site_lines(const nlohmann::json& sites) {
  std::vector<SiteLine> out;
  for (const auto& s : sites) {
    SiteLine line;
    line.name = s.at("name").get<std::string>();
    line.total = s.at("totalSessions").get<int>();
    line.active = s.at("activeSessions").get<int>();
    line.breaker = s.at("breaker").get<std::string>();
    if (s.at("error").is_string()) line.error = s.at("error").get<std::string>();
    out.push_back(std::move(line));
  }
  return out;
}

status_board_actor::behavior_type status_board_impl(
    status_board_actor::stateful_pointer<StatusBoardState> self, StatusBoardSetup setup) {
  auto& st = self->state;
  st.setup = std::move(setup);
  self->delayed_send(self, st.setup.heartbeat_interval, heartbeat_atom::value);
  self->delayed_send(self, st.setup.status_interval, report_atom::value);
  return {
      [=](put_atom, const SessionStatusPtr& s) {
        auto& st = self->state;
        if (s->last_refresh && st.setup.metrics)
          st.setup.metrics->set_last_refresh(s->id, *s->last_refresh, s->site);
        if (st.setup.events) {
          // Derived from the status held until now: before put() replaces it.
          auto events =
              derive_events(st.table.find(s->site, s->id), *s, mode_of(st.setup, s->site));
          for (auto& e : events) st.setup.events->publish(std::move(e));
        }
        st.table.put(*s);
      },
      [=](forget_atom, const std::string& site, const std::string& id) {
        auto& st = self->state;
        const auto* last = st.table.find(site, id);
        if (last && last->site != site) last = nullptr;  // not another site's
        if (st.setup.events && last) st.setup.events->publish(removed_event(*last));
        st.table.forget(site, id);
        if (st.setup.metrics) st.setup.metrics->forget_session(id, site);
      },
      [=](scanned_atom) {
        // Ready once every site's first scan is done.
        auto& st = self->state;
        // (A site a reload adds does not take readiness away.)
        st.ready = st.ready || ++st.scans >= std::max<std::size_t>(1, st.setup.sites.size());
      },
      [=](drain_atom) { self->state.draining = true; },
      [=](ready_atom) { return self->state.ready && !self->state.draining; },
      [=](metrics_atom) {
        auto& st = self->state;
        if (!st.setup.metrics) return std::string();
        auto& m = *st.setup.metrics;
        const auto now = st.setup.now();
        auto sum = st.table.summary(now);
        // Sessions by state per site (the `site` label), or in all without sites.
        for (const auto& site : m.sites()) {
          auto of = site.empty() ? sum : st.table.summary_of(site, now);
          for (auto s : kSessionStates)
            m.set_sessions(s, of.counts[static_cast<std::size_t>(s)], site);
          m.set_oldest_refresh_age(of.oldest_age.value_or(0), site);
        }
        m.set_ready(st.ready && !st.draining);
        // Each site's breaker (sessiond_circuit_open{site}).
        bool any_open = false;
        for (const auto& s : st.setup.sites) {
          const bool open = s.breaker && s.breaker() != "closed";
          m.sample_site_circuit(s.name, open);
          if (s.idle_timeout.count() > 0) m.set_site_timing(s.name, s.interval, s.idle_timeout);
          if (s.http_load) m.sample_site_http(s.name, s.http_load());
          if (s.browser_load) m.sample_site_browser(s.name, s.browser_load());
          if (s.admission_queued) m.sample_admission(s.name, s.admission_queued());
          any_open = any_open || open;
        }
        m.sample_circuit(any_open);  // the unlabelled series, without sites
        if (st.setup.sample) st.setup.sample(m);
        m.sample_process();
        return m.serialize();
      },
      [=](remove_atom, const std::string& site) {
        auto& st = self->state;
        std::vector<std::pair<std::string, std::string>> gone;
        st.table.for_each([&](const SessionStatus& s) {
          if (s.site == site) gone.emplace_back(s.site, s.id);
        });
        for (const auto& [s, id] : gone) {
          if (st.setup.events)
            if (const auto* last = st.table.find(s, id))
              st.setup.events->publish(removed_event(*last));
          st.table.forget(s, id);
        }
        st.site_errors.erase(site);
      },
      [=](sites_atom, const SiteInfoListPtr& sites) {
        if (sites) self->state.setup.sites = *sites;
      },
      [=](site_error_atom, const std::string& site, const std::string& error) {
        auto& st = self->state;
        if (error.empty())
          st.site_errors[site] = std::string();  // overrides a start-up error too
        else
          st.site_errors[site] = error;
      },
      [=](status_atom, const std::string& state_filter, std::uint64_t limit,
          const std::string& site) {
        auto& st = self->state;
        std::vector<std::string> configured;
        for (const auto& s : st.setup.sites) configured.push_back(s.name);
        return st.table
            .status_json(state_filter, limit, st.ready && !st.draining, !st.draining, st.setup.info,
                         st.setup.now(), site, configured)
            .dump();
      },
      [=](session_atom, const std::string& site, const std::string& id) {
        auto& st = self->state;
        auto* s = st.table.find(site, id);
        return s ? to_json(*s, st.setup.now()).dump() : std::string();
      },
      [=](locate_atom, const std::string& id) { return self->state.table.sites_of(id); },
      [=](sites_atom) {
        auto& st = self->state;
        return sites_json(st.setup.sites, st.site_errors, st.table, st.setup.now()).dump();
      },
      [=](page_atom, const PageQuery& query) {
        auto& st = self->state;
        PageContext context;
        context.now = st.setup.now();
        context.ready = st.ready && !st.draining;
        context.running = !st.draining;
        context.info = st.setup.info;
        if (st.setup.metrics) context.history = st.setup.metrics->refresh_history().last_hour();
        if (st.setup.sites.size() > 1)
          context.sites = site_lines(
              sites_json(st.setup.sites, st.site_errors, st.table, context.now)["sites"]);
        return render_status_page(st.table, query, context);
      },
      [=](heartbeat_atom) {
        auto& st = self->state;
        auto fields = st.table.summary_fields(st.setup.info.interval_s, st.setup.now());
        log::info("heartbeat", "sessiond is alive",
                  {{"active_sessions", fields["active_sessions"]},
                   {"total_sessions", fields["total_sessions"]}});
        self->delayed_send(self, st.setup.heartbeat_interval, heartbeat_atom::value);
      },
      [=](report_atom) {
        auto& st = self->state;
        log::info("status", "status report",
                  st.table.summary_fields(st.setup.info.interval_s, st.setup.now()));
        self->delayed_send(self, st.setup.status_interval, report_atom::value);
      },
  };
}

}  // namespace sessiond
