#include "sessiond/once_listener.hpp"

#include <caf/typed_event_based_actor.hpp>

#include "sessiond/json_log.hpp"

namespace sessiond {
namespace {

using Self = session_listener_actor::stateful_pointer<OnceListenerState>;

void maybe_done(Self self) {
  auto& st = self->state;
  if (st.reported) return;
  if (auto r = st.tally.result()) {
    st.reported = true;
    st.done(*r);
  }
}

}  // namespace

session_listener_actor::behavior_type once_listener_impl(
    Self self, std::function<void(OnceTally::Result)> done) {
  self->state.done = std::move(done);
  return {
      [=](scanned_atom, const std::vector<std::string>& ids) {
        self->state.tally.expect(ids);
        maybe_done(self);
      },
      [=](finished_atom, const CycleReport& report) {
        log::debug("once_done", "session finished a cycle",
                   {{"session", report.id}, {"result", to_string(report)}});
        self->state.tally.record(report);
        maybe_done(self);
      },
  };
}

}  // namespace sessiond
