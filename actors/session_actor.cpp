#include "sessiond/session_actor.hpp"

#include <caf/send.hpp>
#include <caf/typed_event_based_actor.hpp>

#include <random>

#include "sessiond/session_disposal.hpp"

namespace sessiond {
namespace {

using Self = session_actor::stateful_pointer<SessionActorState>;

// Results of work done on other threads come back as a message to the actor.
auto reply_to(Self self, std::uint64_t tag) {
  return [me = caf::actor_cast<session_actor>(self), tag](auto result) {
    caf::anon_send(me, result_atom::value, tag,
                   WorkResultPtr(std::make_shared<WorkResult>(std::move(result))));
  };
}

void perform(Self self, Actions& actions) {
  auto& st = self->state;
  auto& cycle = *st.cycle;
  const auto& rt = *st.site->rt;
  for (auto& a : actions) {
    std::visit(
        [&](auto& act) {
          using T = std::decay_t<decltype(act)>;
          if constexpr (std::is_same_v<T, action::ReadFirstLook>) {
            auto path = cycle.path();
            auto now = cycle.site().now;
            rt.io->post([path, now, state = act.state, done = reply_to(self, act.tag)] {
              done(read_first_look(path, now(), state));
            });
          } else if constexpr (std::is_same_v<T, action::Admit>) {
            if (rt.admission)
              rt.admission->request(act.priority,
                                    [done = reply_to(self, act.tag)](AdmissionSlot slot) {
                                      done(Admitted{std::move(slot)});
                                    });
            else
              reply_to(self, act.tag)(Admitted{});
          } else if constexpr (std::is_same_v<T, action::Load>) {
            rt.io->post([path = cycle.path(), state = act.state, done = reply_to(self, act.tag)] {
              done(Loaded{load_session_file(path, kMaxSessionFileBytes, state)});
            });
          } else if constexpr (std::is_same_v<T, action::SendHttp>) {
            rt.http->submit(std::move(act.request), reply_to(self, act.tag));
          } else if constexpr (std::is_same_v<T, action::RunExec>) {
            rt.exec->post([job = std::move(act.job), done = reply_to(self, act.tag)] {
              done(run_exec_job(job));
            });
          } else if constexpr (std::is_same_v<T, action::RunBrowser>) {
            if (rt.browser) {
              rt.browser->submit(std::move(act.request), reply_to(self, act.tag));
            } else {
              BrowserStepResult r;
              r.not_sent = true;
              r.detail = "no browser configured";
              reply_to(self, act.tag)(std::move(r));
            }
          } else if constexpr (std::is_same_v<T, action::Save>) {
            rt.io->post_first([path = cycle.path(), doc = act.doc, expected = act.expected,
                               responded_at = act.responded_at, sync = rt.sync,
                               metrics = rt.metrics.get(), hold = st.answer_hold,
                               done = reply_to(self, act.tag)]() mutable {
              auto out = save_if_unchanged(path, *doc, expected, sync);
              hold.reset();  // renamed (or not saved): the answer is settled
              if (out.kind == SaveOutcome::Kind::saved && metrics)
                metrics->save_lag(
                    std::chrono::duration<double>(std::chrono::steady_clock::now() - responded_at)
                        .count());
              done(std::move(out));
            });
          } else if constexpr (std::is_same_v<T, action::Dispose>) {
            const auto& site = cycle.site();
            rt.io->post([path = cycle.path(), dir = site.sessions_dir, mode = site.on_logged_out,
                         doc = act.doc, expected = act.expected, announce = std::move(act.announce),
                         done = reply_to(self, act.tag)] {
              done(dispose_logged_out(path, dir, mode, *doc, expected, announce));
            });
          } else if constexpr (std::is_same_v<T, action::Schedule>) {
            if (act.delay == Millis(0))
              self->send(self, tick_atom::value, act.gen);
            else
              self->delayed_send(self, act.delay, tick_atom::value, act.gen);
          } else if constexpr (std::is_same_v<T, action::Publish>) {
            caf::anon_send(rt.board, put_atom::value,
                           SessionStatusPtr(std::make_shared<SessionStatus>(cycle.status())));
          } else if constexpr (std::is_same_v<T, action::Finished>) {
            for (auto& p : st.waiting) p.deliver(act.report);
            st.waiting.clear();
            if (rt.listener) caf::anon_send(rt.listener, finished_atom::value, act.report);
          } else if constexpr (std::is_same_v<T, action::Drained>) {
            if (st.drain_promise) st.drain_promise->deliver(drained_atom::value);
            st.drain_promise.reset();
          } else if constexpr (std::is_same_v<T, action::Leave>) {
            // Unregistered (file gone or DELETE): the status goes with the actor.
            caf::anon_send(rt.board, forget_atom::value, cycle.site().name, cycle.id());
            const CycleReport removed{
                cycle.id(), CycleOutcome::removed, {}, cycle.status().state, 0};
            for (auto* list : {&st.waiting, &st.pausing, &st.resuming}) {
              for (auto& p : *list) p.deliver(removed);
              list->clear();
            }
            self->quit();
          } else if constexpr (std::is_same_v<T, action::Settled>) {
            auto& list = act.pause ? st.pausing : st.resuming;
            for (auto& p : list) p.deliver(act.report);
            list.clear();
          }
        },
        a);
  }
}

// The handlers run one at a time per actor, never nested, so one scratch
// list of actions per thread serves every session.
template <class F>
void handle(Self self, F&& event) {
  thread_local Actions actions;
  actions.clear();
  event(*self->state.cycle, actions);
  perform(self, actions);
  actions.clear();
}

// A pause or resume: answered when the cycle settles it.
template <class F>
caf::typed_response_promise<CycleReport> pause_or_resume(
    Self self, std::vector<caf::typed_response_promise<CycleReport>> SessionActorState::*list,
    F&& request) {
  auto& st = self->state;
  auto rp = self->make_response_promise<CycleReport>();
  (st.*list).push_back(rp);
  bool accepted = false;
  handle(self, [&](RefreshCycle& c, Actions& out) { accepted = request(c, out); });
  if (!accepted) {
    (st.*list).pop_back();
    const auto& c = *st.cycle;
    rp.deliver(CycleReport{c.id(),
                           c.draining() ? CycleOutcome::shutting_down : CycleOutcome::removed,
                           {},
                           c.status().state,
                           0});
  }
  return rp;
}

}  // namespace

session_actor::behavior_type session_actor_impl(Self self, SitePtr site, std::string id) {
  auto& st = self->state;
  st.site = std::move(site);
  st.cycle.emplace(st.site->settings, std::move(id), std::random_device{}());
  handle(self, [](RefreshCycle& c, Actions& out) { c.start(out); });
  return {
      [=](tick_atom, std::uint64_t gen) {
        handle(self, [gen](RefreshCycle& c, Actions& out) { c.tick(gen, out); });
      },
      [=](result_atom, std::uint64_t tag, const WorkResultPtr& r) {
        auto& st = self->state;
        if (const auto* answer = std::get_if<HttpResponse>(r.get()))
          st.answer_hold = answer->answer_hold;
        handle(self, [&](RefreshCycle& c, Actions& out) { c.done(tag, *r, out); });
        st.answer_hold.reset();
      },
      [=](changed_atom, const FileIdentity& seen) {
        handle(self, [&](RefreshCycle& c, Actions& out) { c.file_changed(seen, out); });
      },
      [=](remove_atom) { handle(self, [](RefreshCycle& c, Actions& out) { c.remove(out); }); },
      [=](refresh_atom) {
        auto& st = self->state;
        auto rp = self->make_response_promise<CycleReport>();
        bool accepted = false;
        st.waiting.push_back(rp);
        handle(self, [&](RefreshCycle& c, Actions& out) { accepted = c.refresh_now(out); });
        if (!accepted) {
          st.waiting.pop_back();
          const auto& c = *st.cycle;
          rp.deliver(CycleReport{c.id(), CycleOutcome::shutting_down, {}, c.status().state, 0});
        }
        return rp;
      },
      [=](pause_atom, const std::string& reason) {
        return pause_or_resume(
            self, &SessionActorState::pausing, [&](RefreshCycle& c, Actions& out) {
              return c.pause(reason.empty() ? std::nullopt : std::optional<std::string>(reason),
                             out);
            });
      },
      [=](resume_atom) {
        return pause_or_resume(self, &SessionActorState::resuming,
                               [](RefreshCycle& c, Actions& out) { return c.resume(out); });
      },
      [=](drain_atom) {
        auto rp = self->make_response_promise<drained_atom>();
        self->state.drain_promise = rp;
        handle(self, [](RefreshCycle& c, Actions& out) { c.drain(out); });
        return rp;
      },
  };
}

}  // namespace sessiond
