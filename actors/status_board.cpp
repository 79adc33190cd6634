#include "sessiond/status_board.hpp"

#include <caf/typed_event_based_actor.hpp>

#include "sessiond/json_log.hpp"

namespace sessiond {

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
          st.setup.metrics->set_last_refresh(s->id, *s->last_refresh);
        if (st.setup.events) {
          // Derived from the status held until now: before put() replaces it.
          auto events = derive_events(st.table.find(s->id), *s, st.setup.on_logged_out);
          for (auto& e : events) st.setup.events->publish(std::move(e));
        }
        st.table.put(*s);
      },
      [=](forget_atom, const std::string& id) {
        auto& st = self->state;
        if (st.setup.events)
          if (const auto* last = st.table.find(id)) st.setup.events->publish(removed_event(*last));
        st.table.forget(id);
        if (st.setup.metrics) st.setup.metrics->forget_session(id);
      },
      [=](scanned_atom) { self->state.ready = true; },
      [=](drain_atom) { self->state.draining = true; },
      [=](ready_atom) { return self->state.ready && !self->state.draining; },
      [=](metrics_atom) {
        auto& st = self->state;
        if (!st.setup.metrics) return std::string();
        auto& m = *st.setup.metrics;
        auto sum = st.table.summary(st.setup.now());
        for (auto s : kSessionStates) m.set_sessions(s, sum.counts[static_cast<std::size_t>(s)]);
        m.set_oldest_refresh_age(sum.oldest_age.value_or(0));
        m.set_ready(st.ready && !st.draining);
        if (st.setup.sample) st.setup.sample(m);
        m.sample_process();
        return m.serialize();
      },
      [=](status_atom, const std::string& state_filter, std::uint64_t limit) {
        auto& st = self->state;
        return st.table
            .status_json(state_filter, limit, st.ready && !st.draining, !st.draining, st.setup.info,
                         st.setup.now())
            .dump();
      },
      [=](session_atom, const std::string& id) {
        auto& st = self->state;
        auto* s = st.table.find(id);
        return s ? to_json(*s, st.setup.now()).dump() : std::string();
      },
      [=](page_atom, const PageQuery& query) {
        auto& st = self->state;
        PageContext context;
        context.now = st.setup.now();
        context.ready = st.ready && !st.draining;
        context.running = !st.draining;
        context.info = st.setup.info;
        if (st.setup.metrics) context.history = st.setup.metrics->refresh_history().last_hour();
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
