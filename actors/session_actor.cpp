#include "sessiond/session_actor.hpp"

#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <functional>

#include "sessiond/backoff.hpp"
#include "sessiond/circuit_breaker.hpp"
#include "sessiond/json_log.hpp"

namespace sessiond {
namespace {

using Self = caf::stateful_actor<SessionActorState>;
using Phase = SessionActorState::Phase;
using json = nlohmann::json;

constexpr int kOnceMaxAttempts = 3;

double uniform(SessionActorState& st) {
  return std::uniform_real_distribution<double>(0.0, 1.0)(st.rng);
}

std::string http_code_label(const HttpResponse& r) {
  return r.transport_ok() && r.status > 0 ? std::to_string(r.status) : std::string("error");
}

std::string describe(const HttpResponse& r) {
  if (!r.transport_ok()) return r.error.empty() ? "transport error" : r.error;
  return "HTTP " + std::to_string(r.status);
}

void publish(Self* self) {
  auto& st = self->state;
  st.status.refreshing = st.phase != Phase::idle;
  st.status.retry_count = st.attempt;
  caf::anon_send(st.rt->metrics, status_atom::value,
                 SessionStatusPtr(std::make_shared<SessionStatus>(st.status)));
}

void schedule(Self* self, Millis delay) {
  auto& st = self->state;
  if (st.draining || st.removed) return;
  ++st.timer_gen;
  if (delay < Millis(0)) delay = Millis(0);
  st.status.next_refresh = st.rt->now() + delay;
  if (delay == Millis(0))
    self->send(self, tick_atom::value, st.timer_gen);
  else
    self->delayed_send(self, delay, tick_atom::value, st.timer_gen);
}

void cancel_timer(SessionActorState& st) {
  ++st.timer_gen;
  st.status.next_refresh.reset();
}

// Time left before the site logs the session out for idleness.
std::optional<Millis> until_idle_deadline(const SessionActorState& st) {
  if (!st.last_ok) return std::nullopt;
  auto left = *st.last_ok + st.rt->idle_timeout - st.rt->now();
  return std::chrono::duration_cast<Millis>(left);
}

Millis regular_delay(Self* self) {
  auto& st = self->state;
  Millis delay = next_refresh_delay(st.rt->interval, st.rt->profile->jitter, uniform(st));
  // A token that expires sooner bounds the session too.
  if (st.rt->profile->token_deadline && st.doc) {
    const auto& td = *st.rt->profile->token_deadline;
    if (auto exp = token_expiry(td, *st.doc)) {
      auto left = std::chrono::duration_cast<Millis>(*exp - td.margin - st.rt->now());
      delay = std::min(delay, std::max(left, Millis(1000)));
    }
  }
  return delay;
}

void finish_cycle(Self* self, std::optional<RefreshResult> result, const std::string& outcome);

// Unregistered (file gone or DELETE): the status disappears with the actor.
void leave(Self* self) {
  auto& st = self->state;
  caf::anon_send(st.rt->metrics, forget_atom::value, st.id);
  for (auto& p : st.waiting) p.deliver(std::string("removed"));
  st.waiting.clear();
  self->quit();
}

void fail_transient(Self* self, const std::string& reason, std::optional<Millis> server_wait) {
  auto& st = self->state;
  ++st.attempt;
  st.status.last_error = reason;
  const auto& policy = st.rt->profile->retry;
  Millis delay = next_delay(policy, st.attempt, uniform(st));
  if (server_wait) delay = std::max(delay, *server_wait);  // honour Retry-After
  auto left = until_idle_deadline(st);
  Millis margin = std::min(Millis(1000), st.rt->idle_timeout / 20);
  std::optional<Millis> capped = left ? cap_to_deadline(delay, *left, margin, policy.base) : delay;
  if (capped) {
    delay = *capped;
    st.status.state = SessionState::retrying;
  } else {
    // Past the idle deadline: the site has probably logged it out, but only the
    // site can say so. Keep trying at the backoff pace and say it is at risk.
    st.status.state = SessionState::at_risk;
  }
  log::warn("refresh_failed", "refresh failed, will retry",
            {{"session", st.id},
             {"attempt", st.attempt},
             {"error", reason},
             {"state", to_string(st.status.state)},
             {"retry_in_ms", delay.count()}});
  const bool give_up = st.rt->once && (st.attempt >= kOnceMaxAttempts || !capped);
  // Scheduled before finish_cycle() publishes, so the status shows nextRefresh.
  if (!give_up && !st.stopped) schedule(self, delay);
  finish_cycle(self, RefreshResult::transient_error, "transient_error: " + reason);
  if (give_up) {
    self->send(st.parent, done_atom::value, st.id, std::string("transient_error"));
    self->quit();
  }
}

void finish_cycle(Self* self, std::optional<RefreshResult> result, const std::string& outcome) {
  auto& st = self->state;
  st.phase = Phase::idle;
  st.step = nullptr;
  st.jar.clear();
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - st.cycle_started).count();
  if (result)
    caf::anon_send(st.rt->metrics, outcome_atom::value, std::string(to_string(*result)), seconds);
  for (auto& p : st.waiting) p.deliver(outcome);
  st.waiting.clear();
  publish(self);
  if (st.drain_promise) {
    st.drain_promise->deliver(done_atom::value);
    st.drain_promise.reset();
  }
  if (st.removed) leave(self);
}

void succeed(Self* self, const FileIdentity& written) {
  auto& st = self->state;
  st.known = written;
  st.unsaved_jar.reset();
  st.unsaved_headers.reset();
  st.attempt = 0;
  st.status.state = SessionState::active;
  st.status.last_error.reset();
  ++st.status.refresh_count;
  st.status.last_refresh = st.last_ok;
  auto took =
      std::chrono::duration_cast<Millis>(std::chrono::steady_clock::now() - st.cycle_started);
  log::info("refresh_ok", "session refreshed",
            {{"session", st.id},
             {"refresh_count", st.status.refresh_count},
             {"duration_ms", took.count()}});
  if (!st.rt->once) schedule(self, regular_delay(self));  // before finish_cycle() publishes
  st.doc.reset();
  finish_cycle(self, RefreshResult::success, "success");
  if (st.rt->once) {
    self->send(st.parent, done_atom::value, st.id, std::string("success"));
    self->quit();
  }
}

void save(Self* self) {
  auto& st = self->state;
  st.phase = Phase::saving;
  auto& doc = *st.doc;
  doc["cookies"] = playwright_from_jar(doc["cookies"], st.jar);
  KeepaliveBlock k = read_keepalive(doc);
  k.state = "active";
  k.last_refresh = log::iso8601(*st.last_ok);
  k.refresh_count = st.status.refresh_count + 1;
  k.last_error.reset();
  k.invalid_since.reset();
  write_keepalive(doc, k);
  auto doc_copy = st.doc;
  auto expected = *st.known;
  auto path = st.path;
  auto cycle = st.cycle;
  caf::actor me = caf::actor_cast<caf::actor>(self);
  st.rt->io->post([=] {
    auto out = std::make_shared<SaveOutcome>(save_if_unchanged(path, *doc_copy, expected));
    caf::anon_send(me, saved_atom::value, cycle, SaveOutcomePtr(std::move(out)));
  });
}

void dispose(Self* self, const std::string& reason) {
  auto& st = self->state;
  st.phase = Phase::disposing;
  auto& doc = *st.doc;
  KeepaliveBlock k = read_keepalive(doc);
  k.state = "invalid";
  k.last_error = reason;
  k.invalid_since = log::iso8601(st.rt->now());
  write_keepalive(doc, k);
  if (st.unsaved_jar) doc["cookies"] = playwright_from_jar(doc["cookies"], *st.unsaved_jar);
  auto doc_copy = st.doc;
  auto expected = *st.known;
  auto path = st.path;
  auto dir = st.rt->sessions_dir;
  auto mode = st.rt->on_logged_out;
  auto cycle = st.cycle;
  caf::actor me = caf::actor_cast<caf::actor>(self);
  st.rt->io->post([=] {
    auto out = std::make_shared<DisposeOutcome>();
    if (mode == OnLoggedOut::remove) {
      auto current = stat_identity(path);
      if (!current || *current != expected) {
        out->changed_on_disk = true;
      } else if (::unlink(path.c_str()) != 0) {
        out->error =
            FileError{FileErrorKind::write, std::string("unlink: ") + std::strerror(errno)};
      } else {
        out->where = path;
      }
    } else {
      auto saved = save_if_unchanged(path, *doc_copy, expected);
      if (saved.kind == SaveOutcome::Kind::changed_on_disk) {
        out->changed_on_disk = true;
      } else if (saved.kind == SaveOutcome::Kind::failed) {
        out->error = saved.error;
      } else if (mode == OnLoggedOut::quarantine) {
        auto moved = quarantine_file(path, dir);
        if (auto* err = std::get_if<FileError>(&moved))
          out->error = *err;
        else
          out->where = std::get<std::string>(moved);
      } else {
        out->where = path;
      }
    }
    caf::anon_send(me, disposed_atom::value, cycle, DisposeOutcomePtr(std::move(out)));
  });
}

void run_step(Self* self, const Step& step);

void after_logged_in(Self* self) {
  auto& st = self->state;
  st.last_ok = st.rt->now();  // the site just saw the session alive
  const auto& p = *st.rt->profile;
  if (st.step == &*p.check && p.refresh) {
    run_step(self, *p.refresh);
    return;
  }
  save(self);
}

void on_verdict(Self* self, Verdict verdict, const std::string& detail,
                std::optional<Millis> server_wait) {
  auto& st = self->state;
  switch (verdict) {
    case Verdict::logged_in:
      after_logged_in(self);
      return;
    case Verdict::logged_out:
      log::warn("logged_out", "the site logged this session out",
                {{"session", st.id}, {"step", st.step->name}, {"error", detail}});
      dispose(self, st.step->name + ": logged out (" + detail + ")");
      return;
    case Verdict::transient:
      fail_transient(self, st.step->name + ": " + detail, server_wait);
      return;
  }
}

void run_exec(Self* self, const Step& step) {
  auto& st = self->state;
  // A private copy of the file, with the cookies as they are now.
  json copy = *st.doc;
  copy["cookies"] = playwright_from_jar(copy["cookies"], st.jar);
  std::vector<std::string> argv_template = step.exec;
  auto timeout = step.timeout;
  auto id = st.id;
  auto base_url = st.rt->profile->base_url;
  auto cycle = st.cycle;
  caf::actor me = caf::actor_cast<caf::actor>(self);
  st.rt->exec->post([=] {
    auto out = std::make_shared<ExecOutcome>();
    std::error_code ec;
    auto tmp_root = std::filesystem::temp_directory_path(ec);
    std::string dir_template =
        (ec ? std::string("/tmp") : tmp_root.string()) + "/sessiond-exec-XXXXXX";
    std::vector<char> buf(dir_template.begin(), dir_template.end());
    buf.push_back('\0');
    if (!::mkdtemp(buf.data())) {
      out->copy_error =
          FileError{FileErrorKind::write, std::string("mkdtemp: ") + std::strerror(errno)};
      caf::anon_send(me, exec_atom::value, cycle, ExecOutcomePtr(std::move(out)));
      return;
    }
    std::string dir(buf.data());
    std::string file = session_path(dir, id);
    auto written = write_file_atomic(file, serialize_session(copy));
    if (auto* err = std::get_if<FileError>(&written)) {
      out->copy_error = *err;
    } else {
      TemplateContext ctx{id, copy, base_url, file};
      std::vector<std::string> argv;
      for (const auto& a : argv_template) argv.push_back(expand_template(a, ctx));
      out->process = run_process(argv, timeout);
      auto reread = load_session_file(file);
      if (auto* loaded = std::get_if<LoadedSession>(&reread))
        out->updated = std::move(*loaded);
      else
        out->copy_error = std::get<FileError>(reread);
    }
    std::filesystem::remove_all(dir, ec);
    caf::anon_send(me, exec_atom::value, cycle, ExecOutcomePtr(std::move(out)));
  });
}

void run_step(Self* self, const Step& step) {
  auto& st = self->state;
  st.step = &step;
  st.phase = &step == &*st.rt->profile->check ? Phase::checking : Phase::refreshing;
  if (step.is_exec()) {
    run_exec(self, step);
    return;
  }
  TemplateContext ctx{st.id, *st.doc, st.rt->profile->base_url, {}, &st.jar};
  HttpRequest req = make_request(*st.rt->profile, step, ctx, st.jar);
  // Waiting requests start closest-to-logout first; an unknown last refresh
  // counts as due now.
  const WallTime deadline = st.last_ok ? *st.last_ok + st.rt->idle_timeout : st.rt->now();
  req.priority = std::chrono::duration_cast<Millis>(deadline.time_since_epoch()).count();
  if (log::enabled(spdlog::level::debug))
    log::debug("request", "sending request",
               {{"session", st.id}, {"step", step.name}, {"method", req.method}, {"url", req.url}});
  caf::actor me = caf::actor_cast<caf::actor>(self);
  auto cycle = st.cycle;
  st.rt->http->submit(std::move(req), [me, cycle](HttpResponse r) {
    caf::anon_send(me, http_atom::value, cycle,
                   HttpResponsePtr(std::make_shared<HttpResponse>(std::move(r))));
  });
}

void start_cycle(Self* self) {
  auto& st = self->state;
  if (st.phase != Phase::idle || st.draining) return;
  cancel_timer(st);
  st.phase = Phase::loading;
  ++st.cycle;
  st.cycle_started = std::chrono::steady_clock::now();
  // Checked before the fields are built: they allocate, and debug is rarely on.
  if (!st.stopped && log::enabled(spdlog::level::debug))
    log::debug("refresh", "refreshing session", {{"session", st.id}, {"attempt", st.attempt + 1}});
  publish(self);
  auto path = st.path;
  auto cycle = st.cycle;
  caf::actor me = caf::actor_cast<caf::actor>(self);
  st.rt->io->post([=] {
    auto out = std::make_shared<LoadResult>(load_session_file(path));
    caf::anon_send(me, loaded_atom::value, cycle, LoadResultPtr(std::move(out)));
  });
}

void on_loaded(Self* self, const LoadResult& result) {
  auto& st = self->state;
  if (auto* err = std::get_if<FileError>(&result)) {
    if (err->kind == FileErrorKind::not_found) {
      // Gone: the watcher reports the removal and the supervisor stops us.
      st.stopped = true;
      finish_cycle(self, std::nullopt, "file_missing");
      return;
    }
    auto identity = stat_identity(st.path);
    if (!st.error_reported_for || !identity || *st.error_reported_for != *identity) {
      st.error_reported_for = identity;
      log::error("file_error",
                 "session file cannot be used; it is left untouched and retried when it changes",
                 {{"session", st.id},
                  {"file", st.path},
                  {"reason", to_string(err->kind)},
                  {"error", err->message}});
      caf::anon_send(st.rt->metrics, file_error_atom::value, std::string(to_string(err->kind)));
    }
    st.status.state = SessionState::file_error;
    st.status.last_error = std::string(to_string(err->kind)) + ": " + err->message;
    st.stopped = true;
    finish_cycle(self, std::nullopt, "file_error: " + err->message);
    if (st.rt->once) {
      self->send(st.parent, done_atom::value, st.id, std::string("file_error"));
      self->quit();
    }
    return;
  }
  const auto& loaded = std::get<LoadedSession>(result);
  const bool rewritten = st.known && *st.known != loaded.identity;
  if (rewritten) {
    // The login bot wrote a new session: it is the truth from now on.
    log::info("session_reloaded", "session file changed on disk; using the new version",
              {{"session", st.id}});
    st.unsaved_jar.reset();
    st.unsaved_headers.reset();
    st.attempt = 0;
  }
  st.known = loaded.identity;
  st.error_reported_for.reset();
  st.doc = std::make_shared<json>(loaded.doc);
  KeepaliveBlock k = read_keepalive(*st.doc);
  if (!st.last_ok && k.last_refresh) st.last_ok = parse_iso8601(*k.last_refresh);
  if (st.status.refresh_count < k.refresh_count) st.status.refresh_count = k.refresh_count;
  if (!st.status.last_refresh && k.last_refresh)
    st.status.last_refresh = parse_iso8601(*k.last_refresh);
  if (k.state == "invalid") {
    // Marked logged out earlier (--on-logged-out mark): stays so until the bot
    // writes a new session for this id.
    st.status.state = SessionState::invalid;
    st.status.last_error = k.last_error;
    st.stopped = true;
    st.doc.reset();
    finish_cycle(self, std::nullopt, "invalid");
    if (st.rt->once) {
      self->send(st.parent, done_atom::value, st.id, std::string("invalid"));
      self->quit();
    }
    return;
  }
  if (rewritten || st.status.state == SessionState::file_error)
    st.status.state = SessionState::pending;
  st.stopped = false;
  st.jar = st.unsaved_jar ? *st.unsaved_jar : jar_from_playwright((*st.doc)["cookies"]);
  if (st.unsaved_headers) (*st.doc)["headers"] = *st.unsaved_headers;
  const auto& p = *st.rt->profile;
  run_step(self, p.check ? *p.check : *p.refresh);
}

void on_http(Self* self, const HttpResponse& r) {
  auto& st = self->state;
  if (r.curl_code != kNotSent)  // refused by the open circuit: nothing reached the site
    caf::anon_send(st.rt->metrics, request_atom::value, st.step->name, http_code_label(r));
  Verdict verdict = st.step->evaluate(r);
  if (verdict == Verdict::logged_in) {
    st.jar = r.cookies;
    if (!apply_captures(*st.step, r, st.rt->profile->base_url, *st.doc, st.jar))
      verdict = Verdict::transient;
  }
  std::string detail = describe(r);
  if (verdict == Verdict::transient && r.transport_ok() && r.status >= 200 && r.status < 400)
    detail += " (no logged-in or logged-out rule matched)";
  if (log::enabled(spdlog::level::debug))
    log::debug("response", "step answered",
               {{"session", st.id},
                {"step", st.step->name},
                {"http_status", r.status},
                {"verdict", to_string(verdict)},
                {"duration_ms", r.elapsed.count() / 1000}});
  on_verdict(self, verdict, detail, retry_after_delay(r, self->state.rt->now()));
}

void on_exec(Self* self, const ExecOutcome& out) {
  auto& st = self->state;
  const auto& pr = out.process;
  std::string code =
      pr.started && !pr.timed_out && pr.signal == 0 ? std::to_string(pr.exit_code) : "error";
  caf::anon_send(st.rt->metrics, request_atom::value, st.step->name, std::string("exec_") + code);
  if (!pr.started) {
    on_verdict(self, Verdict::transient, "command did not start: " + pr.error, std::nullopt);
    return;
  }
  if (pr.timed_out) {
    on_verdict(self, Verdict::transient, "command timed out", std::nullopt);
    return;
  }
  if (pr.signal != 0) {
    on_verdict(self, Verdict::transient, "command killed by signal " + std::to_string(pr.signal),
               std::nullopt);
    return;
  }
  if (pr.exit_code == 3) {
    on_verdict(self, Verdict::logged_out, "command exit status 3", std::nullopt);
    return;
  }
  if (pr.exit_code != 0) {
    on_verdict(self, Verdict::transient, "command exit status " + std::to_string(pr.exit_code),
               std::nullopt);
    return;
  }
  if (!out.updated) {
    on_verdict(
        self, Verdict::transient,
        "command left an unusable session copy: " + (out.copy_error ? out.copy_error->message : ""),
        std::nullopt);
    return;
  }
  // The command's copy is the new state; sessiond's own block stays ours.
  json updated = out.updated->doc;
  if (st.doc->contains("keepalive")) updated["keepalive"] = (*st.doc)["keepalive"];
  *st.doc = std::move(updated);
  st.jar = jar_from_playwright((*st.doc)["cookies"]);
  on_verdict(self, Verdict::logged_in, "exit status 0", std::nullopt);
}

void on_saved(Self* self, const SaveOutcome& out) {
  auto& st = self->state;
  switch (out.kind) {
    case SaveOutcome::Kind::saved:
      succeed(self, out.identity);
      return;
    case SaveOutcome::Kind::changed_on_disk:
      log::info("file_changed", "session file changed during the refresh; reloading it",
                {{"session", st.id}});
      st.known.reset();  // force the reload path on the next cycle
      st.unsaved_jar.reset();
      st.unsaved_headers.reset();
      st.doc.reset();
      schedule(self, Millis(0));
      finish_cycle(self, std::nullopt, "superseded: file changed on disk");
      return;
    case SaveOutcome::Kind::failed: {
      // The site rotated the cookies already: keep them for the next cycle.
      st.unsaved_jar = st.jar;
      if (st.doc->contains("headers")) st.unsaved_headers = (*st.doc)["headers"];
      std::string msg = out.error ? out.error->message : "write failed";
      log::error("file_error",
                 "could not save the refreshed session; keeping it in memory and retrying",
                 {{"session", st.id}, {"file", st.path}, {"reason", "write"}, {"error", msg}});
      caf::anon_send(st.rt->metrics, file_error_atom::value, std::string("write"));
      st.doc.reset();
      fail_transient(self, "save failed: " + msg, std::nullopt);
      return;
    }
  }
}

void on_disposed(Self* self, const DisposeOutcome& out) {
  auto& st = self->state;
  if (out.changed_on_disk) {
    log::info("file_changed", "session file changed on disk; not invalidating the new session",
              {{"session", st.id}});
    st.known.reset();
    st.doc.reset();
    schedule(self, Millis(0));
    finish_cycle(self, std::nullopt, "superseded: file changed on disk");
    return;
  }
  st.status.state = SessionState::invalid;
  st.status.last_error =
      out.error ? "logged out; disposal failed: " + out.error->message : std::string("logged out");
  st.stopped = true;
  st.unsaved_jar.reset();
  st.unsaved_headers.reset();
  st.doc.reset();
  cancel_timer(st);
  if (out.error) {
    log::error("file_error", "session is logged out but its file could not be updated",
               {{"session", st.id},
                {"file", st.path},
                {"reason", "write"},
                {"error", out.error->message}});
    caf::anon_send(st.rt->metrics, file_error_atom::value, std::string("write"));
  } else {
    log::warn("session_invalidated", "logged-out session is no longer refreshed",
              {{"session", st.id}, {"file", out.where}});
  }
  finish_cycle(self, RefreshResult::logged_out, "logged_out");
  if (st.rt->once) {
    self->send(st.parent, done_atom::value, st.id, std::string("logged_out"));
    self->quit();
  }
}

}  // namespace

caf::behavior session_actor(Self* self, RuntimePtr rt, std::string id, std::string path,
                            caf::actor parent) {
  auto& st = self->state;
  st.rt = std::move(rt);
  st.id = std::move(id);
  st.path = std::move(path);
  st.parent = std::move(parent);
  st.status.id = st.id;
  st.rng.seed(static_cast<std::uint32_t>(std::hash<std::string>{}(st.id) ^ std::random_device{}()));

  // First refresh: due ones at their time, overdue ones soon (spread), read
  // from the file's keepalive block on the io pool.
  if (st.rt->once) {
    start_cycle(self);
  } else {
    auto path_copy = st.path;
    caf::actor me = caf::actor_cast<caf::actor>(self);
    auto gen = ++st.timer_gen;
    st.rt->io->post([me, path_copy, gen] {
      // Only the keepalive block matters here; a bad file is reported by the cycle.
      auto loaded = load_session_file(path_copy);
      std::int64_t last_ms = -1, count = 0;
      if (auto* ok = std::get_if<LoadedSession>(&loaded)) {
        auto k = read_keepalive(ok->doc);
        if (auto t = k.last_refresh ? parse_iso8601(*k.last_refresh) : std::nullopt)
          last_ms = std::chrono::duration_cast<Millis>(t->time_since_epoch()).count();
        count = k.refresh_count;
        // No keepalive block and written just now: the bot's fresh login,
        // refreshed at once (a startup backlog of old files is spread instead).
        auto age_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count() -
                      ok->identity.mtime_ns;
        if (last_ms < 0 && age_ns < 5'000'000'000LL) last_ms = -2;
      }
      caf::anon_send(me, tick_atom::value, gen, last_ms, count);
    });
  }
  publish(self);

  return {
      // The first schedule, once the file's last refresh time is known.
      [=](tick_atom, std::uint64_t gen, std::int64_t last_refresh_ms, std::int64_t refresh_count) {
        auto& st = self->state;
        if (gen != st.timer_gen) return;
        std::optional<Millis> since;
        if (last_refresh_ms >= 0) {
          // What the file says about earlier runs, until the first cycle here.
          WallTime last{std::chrono::duration_cast<WallTime::duration>(Millis(last_refresh_ms))};
          st.last_ok = last;
          st.status.last_refresh = last;
          st.status.refresh_count = refresh_count;
          since = std::chrono::duration_cast<Millis>(st.rt->now() - last);
          if (*since < st.rt->idle_timeout) st.status.state = SessionState::active;
        }
        schedule(self, last_refresh_ms == -2
                           ? Millis(0)
                           : initial_delay(since, st.rt->interval, st.rt->profile->jitter,
                                           st.rt->catchup_window, uniform(st)));
        publish(self);
      },
      [=](tick_atom, std::uint64_t gen) {
        if (gen != self->state.timer_gen) return;  // cancelled or superseded
        start_cycle(self);
      },
      [=](loaded_atom, std::uint64_t cycle, const LoadResultPtr& r) {
        if (cycle == self->state.cycle && self->state.phase == Phase::loading) on_loaded(self, *r);
      },
      [=](http_atom, std::uint64_t cycle, const HttpResponsePtr& r) {
        auto ph = self->state.phase;
        if (cycle == self->state.cycle && (ph == Phase::checking || ph == Phase::refreshing))
          on_http(self, *r);
      },
      [=](exec_atom, std::uint64_t cycle, const ExecOutcomePtr& r) {
        auto ph = self->state.phase;
        if (cycle == self->state.cycle && (ph == Phase::checking || ph == Phase::refreshing))
          on_exec(self, *r);
      },
      [=](saved_atom, std::uint64_t cycle, const SaveOutcomePtr& r) {
        if (cycle == self->state.cycle && self->state.phase == Phase::saving) on_saved(self, *r);
      },
      [=](disposed_atom, std::uint64_t cycle, const DisposeOutcomePtr& r) {
        if (cycle == self->state.cycle && self->state.phase == Phase::disposing)
          on_disposed(self, *r);
      },
      [=](changed_atom, const FileIdentity& seen) {
        // The watcher saw a write, and the file as it found it. Our own saves
        // show up here too: they are the version we know.
        auto& st = self->state;
        if (st.known && *st.known == seen) return;  // our own write
        if (st.phase == Phase::idle && !st.draining) start_cycle(self);
        // Busy: the cycle's save compares identities and reloads on its own.
      },
      [=](removed_atom) {
        auto& st = self->state;
        st.removed = true;
        cancel_timer(st);
        // A running cycle finishes first (its disposal may be what removed the file).
        if (st.phase == Phase::idle) leave(self);
      },
      [=](refresh_atom) {
        auto& st = self->state;
        auto rp = self->make_response_promise();
        if (st.draining) {
          rp.deliver(std::string("shutting_down"));
          return rp;
        }
        st.waiting.push_back(rp);
        if (st.phase == Phase::idle) {
          st.stopped = false;
          start_cycle(self);
        }
        return rp;
      },
      [=](drain_atom) {
        auto& st = self->state;
        st.draining = true;
        cancel_timer(st);
        auto rp = self->make_response_promise();
        if (st.phase == Phase::idle)
          rp.deliver(done_atom::value);
        else
          st.drain_promise = rp;
        return rp;
      },
  };
}

}  // namespace sessiond
