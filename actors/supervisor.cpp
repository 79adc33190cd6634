#include "sessiond/supervisor.hpp"

#include <caf/exit_reason.hpp>
#include <caf/send.hpp>
#include <caf/system_messages.hpp>
#include <caf/typed_event_based_actor.hpp>

#include <sys/stat.h>

#include <algorithm>
#include <memory>

#include "sessiond/json_log.hpp"
#include "sessiond/session_actor.hpp"

namespace sessiond {
namespace {

using Self = supervisor_actor::stateful_pointer<SupervisorState>;
using Child = SupervisorState::Child;

const RuntimePtr& runtime(Self self) {
  return self->state.setup.site->rt;
}

const std::string& site_name(Self self) {
  return self->state.setup.site->settings->name;
}

void start_child(Self self, const std::string& id, Child& child) {
  auto& st = self->state;
  child.handle = st.setup.spawn_child(self, id);
  self->monitor(child.handle);
  st.by_addr[child.handle.address()] = id;
}

void add_session(Self self, const std::string& id, const std::optional<FileIdentity>& seen) {
  auto& st = self->state;
  if (st.draining || st.unregistered.count(id)) return;
  auto it = st.children.find(id);
  if (it == st.children.end()) {
    auto& c = st.children.emplace(id, Child()).first->second;
    start_child(self, id, c);
    log::info("session_added", "session registered", {{"site", site_name(self)}, {"session", id}});
    return;
  }
  auto& c = it->second;
  if (c.failed) {
    // A new version of the file gives a given-up session a fresh start.
    c.failed = false;
    c.restarts.clear();
    ++c.incarnation;
    start_child(self, id, c);
    log::info("session_added", "session file changed; restarting the failed session",
              {{"site", site_name(self)}, {"session", id}});
  } else if (c.handle && seen) {
    self->send(c.handle, changed_atom::value, *seen);
  }
}

void remove_session(Self self, const std::string& id, const char* why) {
  auto& st = self->state;
  auto it = st.children.find(id);
  if (it == st.children.end()) return;
  auto& c = it->second;
  if (c.handle) {
    // Let it finish a running cycle (e.g. the quarantine that removed the
    // file) and leave on its own; it is no longer ours to restart.
    st.by_addr.erase(c.handle.address());
    self->demonitor(c.handle.address());
    self->send(c.handle, remove_atom::value);
  } else {
    caf::anon_send(runtime(self)->board, forget_atom::value, site_name(self), id);
  }
  st.children.erase(it);
  log::info("session_removed", why, {{"site", site_name(self)}, {"session", id}});
}

void on_child_down(Self self, const caf::down_msg& dm) {
  auto& st = self->state;
  auto a = st.by_addr.find(dm.source);
  if (a == st.by_addr.end()) return;
  std::string id = a->second;
  st.by_addr.erase(a);
  auto it = st.children.find(id);
  if (it == st.children.end()) return;
  auto& c = it->second;
  c.handle = nullptr;
  if (!dm.reason || dm.reason == caf::exit_reason::user_shutdown || st.draining)
    return;  // normal end
  // Crashed: one-for-one restart with backoff, within the restart limit.
  auto now = std::chrono::steady_clock::now();
  auto in_window = std::find_if(c.restarts.begin(), c.restarts.end(),
                                [&](auto t) { return now - t <= st.setup.restart_window; });
  c.restarts.erase(c.restarts.begin(), in_window);
  std::string reason = to_string(dm.reason);
  const auto& rt = *runtime(self);
  if (static_cast<int>(c.restarts.size()) >= st.setup.restart_limit) {
    c.failed = true;
    log::error("session_failed",
               "session actor crashed too often; giving up until its file changes",
               {{"site", site_name(self)},
                {"session", id},
                {"restarts", c.restarts.size()},
                {"error", reason}});
    auto status = SessionStatus::given_up(
        id, "crashed " + std::to_string(c.restarts.size() + 1) + " times: " + reason);
    status.site = site_name(self);
    if (rt.listener)
      caf::anon_send(rt.listener, finished_atom::value,
                     CycleReport{id, CycleOutcome::failed, *status.last_error, status.state, 0});
    caf::anon_send(rt.board, put_atom::value,
                   SessionStatusPtr(std::make_shared<SessionStatus>(std::move(status))));
    return;
  }
  c.restarts.push_back(now);
  double u = std::uniform_real_distribution<double>(0, 1)(st.rng);
  Millis delay = next_delay(st.setup.restart_backoff, static_cast<int>(c.restarts.size()), u);
  log::warn("actor_restart", "session actor crashed; restarting",
            {{"site", site_name(self)},
             {"session", id},
             {"attempt", c.restarts.size()},
             {"error", reason},
             {"retry_in_ms", delay.count()}});
  if (rt.metrics) rt.metrics->actor_restarted();
  self->delayed_send(self, delay, restart_atom::value, id, ++c.incarnation);
}

// Forwards a request to session `id` and relays its CycleReport (not_found:
// no such session; failed: given up, or it died before answering).
template <class... Ts>
caf::typed_response_promise<CycleReport> ask_child(Self self, const std::string& id,
                                                   const Ts&... xs) {
  auto rp = self->make_response_promise<CycleReport>();
  auto it = self->state.children.find(id);
  if (it == self->state.children.end() || !it->second.handle) {
    rp.deliver(CycleReport{
        id,
        it == self->state.children.end() ? CycleOutcome::not_found : CycleOutcome::failed,
        {},
        SessionState::failed,
        0});
    return rp;
  }
  self->request(it->second.handle, caf::infinite, xs...)
      .then([rp](const CycleReport& report) mutable { rp.deliver(report); },
            [rp, id](caf::error& err) mutable {
              rp.deliver(CycleReport{id, CycleOutcome::failed, caf::to_string(err),
                                     SessionState::failed, 0});
            });
  return rp;
}

}  // namespace

supervisor_actor::behavior_type supervisor_impl(Self self, SupervisorSetup setup) {
  auto& st = self->state;
  st.setup = std::move(setup);
  if (!st.setup.spawn_child) {
    st.setup.spawn_child = [site = st.setup.site](supervisor_actor::pointer sup,
                                                  const std::string& id) {
      return sup->spawn(session_actor_impl, site, id);
    };
  }
  self->set_down_handler([=](caf::down_msg& dm) { on_child_down(self, dm); });
  // Children must be told to stop, or the actor system waits for them forever.
  self->set_exit_handler([=](caf::exit_msg& em) {
    for (auto& [id, c] : self->state.children)
      if (c.handle) self->send_exit(c.handle, caf::exit_reason::user_shutdown);
    self->quit(em.reason);
  });
  return {
      [=](file_added_atom, const std::string& id, const std::optional<FileIdentity>& seen) {
        add_session(self, id, seen);
      },
      [=](file_gone_atom, const std::string& id) {
        remove_session(self, id, "session file removed");
      },
      [=](scanned_atom) {
        auto& st = self->state;
        st.scanned = true;
        const auto& rt = *runtime(self);
        caf::anon_send(rt.board, scanned_atom::value);
        if (rt.listener) {
          std::vector<std::string> ids;
          ids.reserve(st.children.size());
          for (const auto& [id, c] : st.children) ids.push_back(id);
          caf::anon_send(rt.listener, scanned_atom::value, std::move(ids));
        }
        log::info("ready", "first scan of the sessions directory done",
                  {{"site", site_name(self)},
                   {"sessions", st.children.size()},
                   {"dir", st.setup.site->settings->sessions_dir}});
      },
      [=](restart_atom, const std::string& id, std::uint64_t incarnation) {
        auto& st = self->state;
        auto it = st.children.find(id);
        if (it == st.children.end() || it->second.incarnation != incarnation || it->second.handle ||
            it->second.failed || st.draining)
          return;
        start_child(self, id, it->second);
      },
      [=](refresh_atom) {
        int n = 0;
        for (auto& [id, c] : self->state.children)
          if (c.handle) {
            caf::anon_send(c.handle, refresh_atom::value);  // replies go nowhere
            ++n;
          }
        return n;
      },
      [=](refresh_atom, const std::string& id) { return ask_child(self, id, refresh_atom::value); },
      [=](pause_atom, const std::string& id, const std::string& reason) {
        return ask_child(self, id, pause_atom::value, reason);
      },
      [=](resume_atom, const std::string& id) { return ask_child(self, id, resume_atom::value); },
      [=](register_atom, const std::string& id) {
        auto& st = self->state;
        st.unregistered.erase(id);
        if (st.children.count(id)) return AdminResult::exists;
        struct stat s {};
        const auto& site = *st.setup.site->settings;
        if (::lstat(site.pattern.path(site.sessions_dir, id).c_str(), &s) != 0)
          return AdminResult::not_found;
        add_session(self, id, std::nullopt);
        return AdminResult::registered;
      },
      [=](unregister_atom, const std::string& id) {
        auto& st = self->state;
        bool known = st.children.count(id) > 0;
        st.unregistered.insert(id);
        remove_session(self, id, "session unregistered through the admin API (file kept)");
        return known ? AdminResult::unregistered : AdminResult::not_found;
      },
      [=](drain_atom) {
        auto& st = self->state;
        st.draining = true;
        auto rp = self->make_response_promise<drained_atom>();
        auto pending = std::make_shared<int>(0);
        for (auto& [id, c] : st.children)
          if (c.handle) ++*pending;
        if (*pending == 0) {
          rp.deliver(drained_atom::value);
          return rp;
        }
        for (auto& [id, c] : st.children) {
          if (!c.handle) continue;
          self->request(c.handle, caf::infinite, drain_atom::value)
              .then(
                  [rp, pending](drained_atom) mutable {
                    if (--*pending == 0) rp.deliver(drained_atom::value);
                  },
                  [rp, pending](caf::error&) mutable {
                    if (--*pending == 0) rp.deliver(drained_atom::value);
                  });
        }
        return rp;
      },
  };
}

const char* to_string(AdminResult r) {
  switch (r) {
    case AdminResult::registered:
      return "registered";
    case AdminResult::exists:
      return "exists";
    case AdminResult::unregistered:
      return "unregistered";
    case AdminResult::not_found:
      return "not_found";
  }
  return "not_found";
}

}  // namespace sessiond
