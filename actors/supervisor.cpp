#include "sessiond/supervisor.hpp"

#include <caf/event_based_actor.hpp>
#include <caf/exit_reason.hpp>
#include <caf/send.hpp>
#include <caf/system_messages.hpp>

#include <sys/stat.h>

#include <algorithm>
#include <memory>

#include "sessiond/backoff.hpp"
#include "sessiond/json_log.hpp"
#include "sessiond/session_actor.hpp"

namespace sessiond {
namespace {

using Self = caf::stateful_actor<SupervisorState>;
using Child = SupervisorState::Child;

void start_child(Self* self, const std::string& id, Child& child) {
  auto& st = self->state;
  child.handle = st.setup.spawn_child(self, id, session_path(st.setup.rt->sessions_dir, id));
  self->monitor(child.handle);
  st.by_addr[child.handle.address()] = id;
}

void add_session(Self* self, const std::string& id, const std::optional<FileIdentity>& seen) {
  auto& st = self->state;
  if (st.draining || st.unregistered.count(id)) return;
  if (st.setup.rt->once && st.scanned) return;  // once: the first scan's files only
  auto it = st.children.find(id);
  if (it == st.children.end()) {
    auto& c = st.children.emplace(id, Child()).first->second;
    start_child(self, id, c);
    log::info("session_added", "session registered", {{"session", id}});
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
              {{"session", id}});
  } else if (c.handle && seen) {
    self->send(c.handle, changed_atom::value, *seen);
  }
}

void remove_session(Self* self, const std::string& id, const char* why) {
  auto& st = self->state;
  auto it = st.children.find(id);
  if (it == st.children.end()) return;
  auto& c = it->second;
  if (c.handle) {
    // Let it finish a running cycle (e.g. the quarantine that removed the
    // file) and leave on its own; it is no longer ours to restart.
    st.by_addr.erase(c.handle.address());
    self->demonitor(c.handle);
    self->send(c.handle, removed_atom::value);
  } else {
    caf::anon_send(st.setup.rt->metrics, forget_atom::value, id);
  }
  st.children.erase(it);
  log::info("session_removed", why, {{"session", id}});
}

void maybe_finish_once(Self* self) {
  auto& st = self->state;
  if (!st.setup.rt->once || !st.scanned || !st.once_promise) return;
  if (st.once_done < static_cast<int>(st.children.size())) return;
  st.once_promise->deliver(st.once_failed, static_cast<int>(st.children.size()));
  st.once_promise.reset();
}

void on_child_down(Self* self, const caf::down_msg& dm) {
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
  if (static_cast<int>(c.restarts.size()) >= st.setup.restart_limit) {
    c.failed = true;
    log::error("session_failed",
               "session actor crashed too often; giving up until its file changes",
               {{"session", id}, {"restarts", c.restarts.size()}, {"error", reason}});
    SessionStatus s;
    s.id = id;
    s.state = SessionState::failed;
    s.last_error = "crashed " + std::to_string(c.restarts.size() + 1) + " times: " + reason;
    caf::anon_send(st.setup.rt->metrics, status_atom::value,
                   SessionStatusPtr(std::make_shared<SessionStatus>(s)));
    if (st.setup.rt->once) {
      ++st.once_done;
      ++st.once_failed;
      maybe_finish_once(self);
    }
    return;
  }
  c.restarts.push_back(now);
  double u = std::uniform_real_distribution<double>(0, 1)(st.rng);
  Millis delay = next_delay(st.setup.restart_backoff, static_cast<int>(c.restarts.size()), u);
  log::warn("actor_restart", "session actor crashed; restarting",
            {{"session", id},
             {"attempt", c.restarts.size()},
             {"error", reason},
             {"retry_in_ms", delay.count()}});
  caf::anon_send(st.setup.rt->metrics, restart_atom::value);
  self->delayed_send(self, delay, retick_atom::value, id, ++c.incarnation);
}

}  // namespace

caf::actor spawn_session_actor(caf::event_based_actor* supervisor, const RuntimePtr& rt,
                               const std::string& id, const std::string& path) {
  return supervisor->spawn(session_actor, rt, id, path, caf::actor_cast<caf::actor>(supervisor));
}

caf::behavior supervisor_actor(Self* self, SupervisorSetup setup) {
  auto& st = self->state;
  st.setup = std::move(setup);
  if (!st.setup.spawn_child) {
    auto rt = st.setup.rt;
    st.setup.spawn_child = [rt](caf::event_based_actor* sup, const std::string& id,
                                const std::string& path) {
      return spawn_session_actor(sup, rt, id, path);
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
      [=](added_atom, const std::string& id, const std::optional<FileIdentity>& seen) {
        add_session(self, id, seen);
      },
      [=](removed_atom, const std::string& id) {
        // once: the pass covers the files of the first scan; each actor ends
        // its own cycle (its quarantine is what removes the file).
        if (self->state.setup.rt->once) return;
        remove_session(self, id, "session file removed");
      },
      [=](scanned_atom) {
        auto& st = self->state;
        st.scanned = true;
        caf::anon_send(st.setup.rt->metrics, ready_atom::value);
        log::info("ready", "first scan of the sessions directory done",
                  {{"sessions", st.children.size()}, {"dir", st.setup.rt->sessions_dir}});
        maybe_finish_once(self);
      },
      [=](retick_atom, const std::string& id, std::uint64_t incarnation) {
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
      [=](refresh_atom, const std::string& id) {
        auto rp = self->make_response_promise();
        auto it = self->state.children.find(id);
        if (it == self->state.children.end() || !it->second.handle) {
          rp.deliver(std::string(it == self->state.children.end() ? "not_found" : "failed"));
          return rp;
        }
        self->request(it->second.handle, caf::infinite, refresh_atom::value)
            .then([rp](const std::string& outcome) mutable { rp.deliver(outcome); },
                  [rp](caf::error& err) mutable {
                    rp.deliver(std::string("error: ") + caf::to_string(err));
                  });
        return rp;
      },
      [=](register_atom, const std::string& id) {
        auto& st = self->state;
        st.unregistered.erase(id);
        if (st.children.count(id)) return std::string("exists");
        std::string path = session_path(st.setup.rt->sessions_dir, id);
        struct stat s {};
        if (::lstat(path.c_str(), &s) != 0) return std::string("not_found");
        add_session(self, id, std::nullopt);
        return std::string("registered");
      },
      [=](unregister_atom, const std::string& id) {
        auto& st = self->state;
        bool known = st.children.count(id) > 0;
        st.unregistered.insert(id);
        remove_session(self, id, "session unregistered through the admin API (file kept)");
        return std::string(known ? "unregistered" : "not_found");
      },
      [=](drain_atom) {
        auto& st = self->state;
        st.draining = true;
        auto rp = self->make_response_promise();
        auto pending = std::make_shared<int>(0);
        for (auto& [id, c] : st.children)
          if (c.handle) ++*pending;
        if (*pending == 0) {
          rp.deliver(done_atom::value);
          return rp;
        }
        for (auto& [id, c] : st.children) {
          if (!c.handle) continue;
          self->request(c.handle, caf::infinite, drain_atom::value)
              .then(
                  [rp, pending](done_atom) mutable {
                    if (--*pending == 0) rp.deliver(done_atom::value);
                  },
                  [rp, pending](caf::error&) mutable {
                    if (--*pending == 0) rp.deliver(done_atom::value);
                  });
        }
        return rp;
      },
      [=](done_atom, const std::string& id, const std::string& result) {
        auto& st = self->state;
        ++st.once_done;
        if (result != "success") ++st.once_failed;
        log::debug("once_done", "session finished its pass", {{"session", id}, {"result", result}});
        maybe_finish_once(self);
      },
      [=](done_atom) {
        auto rp = self->make_response_promise();
        self->state.once_promise = rp;
        maybe_finish_once(self);
        return rp;
      },
  };
}

}  // namespace sessiond
