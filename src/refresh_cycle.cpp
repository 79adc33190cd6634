#include "sessiond/refresh_cycle.hpp"

#include <algorithm>

#include "sessiond/backoff.hpp"
#include "sessiond/circuit_breaker.hpp"
#include "sessiond/json_log.hpp"
#include "sessiond/metrics.hpp"

namespace sessiond {
namespace {

using json = nlohmann::json;

std::string http_code_label(const HttpResponse& r) {
  return r.transport_ok() && r.status > 0 ? std::to_string(r.status) : std::string("error");
}

std::string describe(const HttpResponse& r) {
  if (!r.transport_ok()) return r.error.empty() ? "transport error" : r.error;
  return "HTTP " + std::to_string(r.status);
}

Verdict to_verdict(BrowserStepResult::Verdict v) {
  switch (v) {
    case BrowserStepResult::Verdict::logged_in:
      return Verdict::logged_in;
    case BrowserStepResult::Verdict::logged_out:
      return Verdict::logged_out;
    case BrowserStepResult::Verdict::transient:
      return Verdict::transient;
  }
  return Verdict::transient;
}

}  // namespace

FirstLook read_first_look(const std::string& path, WallTime now, const json::json_pointer& state) {
  FirstLook look;
  // Only the keepalive block matters here; a bad file is reported by the cycle.
  auto loaded = load_session_file(path, kMaxSessionFileBytes, state);
  auto* ok = std::get_if<LoadedSession>(&loaded);
  if (!ok) return look;
  auto k = read_keepalive(ok->doc);
  if (k.last_refresh) look.last_refresh = parse_iso8601(*k.last_refresh);
  look.refresh_count = k.refresh_count;
  look.keepalive = k;
  // No keepalive block and written just now: the bot's fresh login, refreshed
  // at once (a start-up backlog of old files is spread instead).
  auto age_ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count() -
      ok->identity.mtime_ns;
  look.fresh_login = !look.last_refresh && age_ns < 5'000'000'000LL;
  return look;
}

RefreshCycle::RefreshCycle(std::shared_ptr<const SiteSettings> site, std::string id,
                           std::uint32_t seed)
    : site_(std::move(site)), path_(site_->pattern.path(site_->sessions_dir, id)) {
  status_.site = site_->name;
  status_.id = std::move(id);
  rng_.seed(static_cast<std::uint32_t>(std::hash<std::string>{}(status_.id) ^ seed));
}

double RefreshCycle::uniform() {
  return std::uniform_real_distribution<double>(0.0, 1.0)(rng_);
}

void RefreshCycle::publish(Actions& out) {
  status_.refreshing = phase_ != Phase::idle;
  status_.retry_count = attempt_;
  out.emplace_back(action::Publish{});
}

void RefreshCycle::schedule(Millis delay, Actions& out) {
  if (draining_ || removed_ || paused_) return;
  ++timer_gen_;
  delay = std::max(delay, Millis(0));
  status_.next_refresh = site_->now() + delay;
  out.emplace_back(action::Schedule{timer_gen_, delay});
}

void RefreshCycle::cancel_timer() {
  ++timer_gen_;
  status_.next_refresh.reset();
}

std::optional<Millis> RefreshCycle::until_idle_deadline() const {
  if (!last_ok_) return std::nullopt;
  return std::chrono::duration_cast<Millis>(*last_ok_ + site_->idle_timeout - site_->now());
}

Millis RefreshCycle::regular_delay() {
  const auto& p = *site_->profile;
  Millis delay = next_refresh_delay(site_->interval, p.jitter, uniform());
  // A token that expires sooner bounds the session too.
  if (p.token_deadline && doc_) {
    const auto& td = *p.token_deadline;
    if (auto exp = token_expiry(td, *doc_, site_->profile->state_pointer)) {
      auto left = std::chrono::duration_cast<Millis>(*exp - td.margin - site_->now());
      if (left > Millis(0)) {
        delay = std::min(delay, std::max(left, Millis(1000)));
        token_not_renewed_logged_ = false;  // renewed: a later lapse is news again
      } else {
        // This refresh succeeded yet left the token past its deadline: this
        // step does not renew it. Refreshing sooner would only repeat that
        // (it was once every second, forever), so the interval stands.
        if (site_->metrics) site_->metrics->token_not_renewed();
        if (!token_not_renewed_logged_) {
          token_not_renewed_logged_ = true;
          log::warn("token_not_renewed",
                    "the refresh did not renew the token_deadline token; refreshing at the "
                    "interval instead of before its expiry",
                    {{"site", site_->name},
                     {"session", id()},
                     {"token",
                      std::string(td.from == TokenDeadline::From::cookie ? "cookie:" : "header:") +
                          td.name},
                     {"exp", log::iso8601(*exp)},
                     {"exp_moved", exp_before_ != exp},
                     {"next_refresh_in_ms", delay.count()}});
        }
      }
    }
  }
  return delay;
}

// -- events -------------------------------------------------------------------

void RefreshCycle::start(Actions& out) {
  if (site_->refresh_at_start) {
    begin(out);
    return;
  }
  // First refresh: due ones at their time, overdue ones soon (spread), as the
  // file's keepalive block says; read on the disk pool.
  out.emplace_back(action::ReadFirstLook{++timer_gen_, site_->profile->state_pointer});
  publish(out);
}

void RefreshCycle::tick(std::uint64_t gen, Actions& out) {
  if (gen != timer_gen_) return;  // cancelled or superseded
  begin(out);
}

void RefreshCycle::done(std::uint64_t tag, const WorkResult& result, Actions& out) {
  if (auto* look = std::get_if<FirstLook>(&result)) {
    if (tag == timer_gen_) first_look(*look, out);
    return;
  }
  if (tag != cycle_) return;  // an older cycle's late answer
  std::visit(
      [&](const auto& r) {
        using T = std::decay_t<decltype(r)>;
        if constexpr (std::is_same_v<T, Admitted>) {
          if (phase_ == Phase::admitting) admitted(r, out);
        } else if constexpr (std::is_same_v<T, Loaded>) {
          if (phase_ == Phase::loading) loaded(r, out);
        } else if constexpr (std::is_same_v<T, HttpResponse>) {
          if (phase_ == Phase::checking || phase_ == Phase::refreshing) answered(r, out);
        } else if constexpr (std::is_same_v<T, ExecOutcome>) {
          if (phase_ == Phase::checking || phase_ == Phase::refreshing) exec_finished(r, out);
        } else if constexpr (std::is_same_v<T, BrowserStepResult>) {
          if (phase_ == Phase::checking || phase_ == Phase::refreshing) browser_finished(r, out);
        } else if constexpr (std::is_same_v<T, SaveOutcome>) {
          if (phase_ == Phase::saving) saved(r, out);
        } else if constexpr (std::is_same_v<T, DisposeOutcome>) {
          if (phase_ == Phase::disposing) disposed(r, out);
        }
      },
      result);
}

void RefreshCycle::file_changed(const FileIdentity& seen, Actions& out) {
  // Every save of ours comes back from the watcher too: it is the version we
  // know, and dropped here (the one place that does; cheaper than telling
  // the watcher about each write, which runs on another thread).
  if (known_ && *known_ == seen) return;
  if (phase_ == Phase::idle && !draining_) begin(out);
  // Busy: the cycle's save compares identities and reloads on its own.
}

void RefreshCycle::remove(Actions& out) {
  removed_ = true;
  cancel_timer();
  if (pause_wanted_ != Purpose::refresh) {
    settle(pause_wanted_, CycleOutcome::removed, {}, out);
    pause_wanted_ = Purpose::refresh;
  }
  // Still waiting for its turn: nothing started, so nothing to finish (the
  // late grant is dropped and its slot given back).
  if (phase_ == Phase::admitting) {
    finish(std::nullopt, CycleOutcome::removed, {}, out);  // leaves
    return;
  }
  // A running cycle finishes first (its disposal may be what removed the file).
  if (phase_ == Phase::idle) out.emplace_back(action::Leave{});
}

bool RefreshCycle::refresh_now(Actions& out) {
  if (draining_) return false;
  if (phase_ == Phase::idle) {
    stopped_ = false;
    if (gave_up_) attempt_ = 0;  // retry.max_attempts more tries from here
    gave_up_ = false;
    begin(out);
  }
  return true;
}

void RefreshCycle::drain(Actions& out) {
  draining_ = true;
  cancel_timer();
  if (pause_wanted_ != Purpose::refresh) {
    settle(pause_wanted_, CycleOutcome::shutting_down, {}, out);
    pause_wanted_ = Purpose::refresh;
  }
  if (phase_ == Phase::admitting) {
    // Not started yet: a drain does not wait for the rest of the queue.
    drain_pending_ = true;
    finish(std::nullopt, CycleOutcome::shutting_down, "shutting down before its turn", out);
    return;
  }
  if (phase_ == Phase::idle)
    out.emplace_back(action::Drained{});
  else
    drain_pending_ = true;
}

// -- the cycle ----------------------------------------------------------------

void RefreshCycle::first_look(const FirstLook& look, Actions& out) {
  std::optional<Millis> since;
  if (look.last_refresh) {
    // What the file says about earlier runs, until the first cycle here. A
    // time in the future (a clock ahead somewhere) counts as now: it must not
    // push the first refresh past the idle deadline.
    const WallTime last = std::min(*look.last_refresh, site_->now());
    last_ok_ = last;
    status_.last_refresh = last;
    status_.refresh_count = look.refresh_count;
    since = std::chrono::duration_cast<Millis>(site_->now() - last);
    if (*since < site_->idle_timeout) status_.state = SessionState::active;
  }
  if (look.keepalive.paused) {
    // Paused by an operator, before a restart too: registered, not scheduled.
    paused_ = true;
    status_.adopt_pause(look.keepalive);
    publish(out);
    return;
  }
  schedule(look.fresh_login ? Millis(0)
                            : initial_delay(since, site_->interval, site_->profile->jitter,
                                            site_->catchup_window, uniform()),
           out);
  publish(out);
}

void RefreshCycle::begin(Actions& out) {
  if (phase_ != Phase::idle || draining_) return;
  cancel_timer();
  // The file is read and the request built once admitted, not while waiting.
  phase_ = site_->admit_first ? Phase::admitting : Phase::loading;
  ++cycle_;
  started_ = std::chrono::steady_clock::now();
  // Checked before the fields are built: they allocate, and debug is rarely on.
  if (!stopped_ && log::enabled(spdlog::level::debug))
    log::debug("refresh", "refreshing session",
               {{"site", site_->name}, {"session", id()}, {"attempt", attempt_ + 1}});
  publish(out);
  if (phase_ == Phase::admitting)
    out.emplace_back(action::Admit{cycle_, priority()});
  else
    out.emplace_back(action::Load{cycle_, site_->profile->state_pointer});
}

void RefreshCycle::admitted(const Admitted& a, Actions& out) {
  slot_ = a.slot;
  phase_ = Phase::loading;
  out.emplace_back(action::Load{cycle_, site_->profile->state_pointer});
}

std::int64_t RefreshCycle::priority() const {
  const WallTime deadline = last_ok_ ? *last_ok_ + site_->idle_timeout : site_->now();
  return std::chrono::duration_cast<Millis>(deadline.time_since_epoch()).count();
}

void RefreshCycle::finish(std::optional<RefreshResult> result, CycleOutcome outcome,
                          std::string detail, Actions& out) {
  phase_ = Phase::idle;
  slot_.reset();  // the next waiting session's turn
  if (purpose_ != Purpose::refresh) {
    settle(purpose_, outcome, detail, out);
    purpose_ = Purpose::refresh;
  }
  step_ = nullptr;
  CookieLines().swap(jar_);  // not clear(): its capacity would stay with every idle session
  jar_rotated_ = false;
  rotated_at_ = {};
  if (result && site_->metrics)
    site_->metrics->refresh_finished(
        *result, std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count(),
        site_->name);
  out.emplace_back(
      action::Finished{CycleReport{id(), outcome, std::move(detail), status_.state, attempt_}});
  publish(out);
  if (drain_pending_) {
    drain_pending_ = false;
    out.emplace_back(action::Drained{});
  }
  if (removed_) out.emplace_back(action::Leave{});
  // A pause or resume asked for while this cycle ran.
  if (pause_wanted_ != Purpose::refresh && !removed_ && !draining_) begin_pause_write(out);
}

Loaded::Loaded(std::variant<LoadedSession, FileError> loaded) {
  if (auto* err = std::get_if<FileError>(&loaded)) {
    result = std::move(*err);
    return;
  }
  auto& session = std::get<LoadedSession>(loaded);
  result = session.identity;
  doc = std::make_shared<json>(std::move(session.doc));
}

void RefreshCycle::loaded(const Loaded& l, Actions& out) {
  if (auto* err = std::get_if<FileError>(&l.result)) {
    if (err->kind == FileErrorKind::not_found) {
      // Gone: the watcher reports the removal and the supervisor stops us.
      stopped_ = true;
      finish(std::nullopt, CycleOutcome::file_missing, {}, out);
      return;
    }
    auto identity = stat_identity(path_);
    if (!error_reported_for_ || !identity || *error_reported_for_ != *identity) {
      error_reported_for_ = identity;
      log::error("file_error",
                 "session file cannot be used; it is left untouched and retried when it changes",
                 {{"site", site_->name},
                  {"session", id()},
                  {"file", path_},
                  {"reason", to_string(err->kind)},
                  {"error", err->message}});
      if (site_->metrics) site_->metrics->file_error(err->kind, site_->name);
    }
    status_.state = SessionState::file_error;
    status_.last_error = std::string(to_string(err->kind)) + ": " + err->message;
    stopped_ = true;
    finish(std::nullopt, CycleOutcome::file_error, err->message, out);
    return;
  }
  const auto& identity = std::get<FileIdentity>(l.result);
  const bool rewritten = known_ && *known_ != identity;
  if (rewritten) {
    // The login bot wrote a new session: it is the truth from now on.
    log::info("session_reloaded", "session file changed on disk; using the new version",
              {{"site", site_->name}, {"session", id()}});
    forget_unsaved();
    attempt_ = 0;
    gave_up_ = false;
  }
  known_ = identity;
  error_reported_for_.reset();
  doc_ = l.doc;
  KeepaliveBlock k = read_keepalive(*doc_);
  if (!last_ok_ && k.last_refresh) last_ok_ = parse_iso8601(*k.last_refresh);
  status_.adopt(k);
  if (purpose_ != Purpose::refresh) {
    write_pause(k, out);
    return;
  }
  if (k.state == "invalid") {
    // Marked logged out earlier (--on-logged-out mark): stays so until the bot
    // writes a new session for this id.
    status_.state = SessionState::invalid;
    status_.last_error = k.last_error;
    stopped_ = true;
    doc_.reset();
    finish(std::nullopt, CycleOutcome::invalid, {}, out);
    return;
  }
  if (k.paused) {
    // Paused (by an earlier request, or the bot's rewrite kept the block).
    paused_ = true;
    status_.adopt_pause(k);
    doc_.reset();
    finish(std::nullopt, CycleOutcome::paused, "paused by an operator", out);
    return;
  }
  if (paused_) {
    // The bot wrote the file without the block (a new login): refreshed again.
    paused_ = false;
    status_.adopt_pause(k);
    log::info("session_resumed", "session file rewritten without the pause; refreshing it again",
              {{"site", site_->name}, {"session", id()}});
  }
  if (rewritten || status_.state == SessionState::file_error) status_.state = SessionState::pending;
  stopped_ = false;
  jar_ = unsaved_jar_ ? *unsaved_jar_ : jar_from_playwright(state()["cookies"]);
  if (unsaved_headers_) (*doc_)["headers"] = *unsaved_headers_;
  if (unsaved_origins_) state()["origins"] = *unsaved_origins_;
  const auto& p = *site_->profile;
  // Before any step: whether the refresh moved the token's exp is logged.
  exp_before_ =
      p.token_deadline ? token_expiry(*p.token_deadline, *doc_, p.state_pointer) : std::nullopt;
  if (p.refresh_when && !p.refresh_when->from) {
    // No keepalive block: the bot's new login, which began when it wrote the
    // file. Else the block's sessionStart (none: unknown, refreshed).
    session_start_.reset();
    if (!doc_->contains("keepalive"))
      session_start_ = WallTime(std::chrono::duration_cast<WallTime::duration>(
          std::chrono::nanoseconds(identity.mtime_ns)));
    else if (k.session_start)
      session_start_ = parse_rfc3339(*k.session_start);
  }
  run_step(p.check ? *p.check : *p.refresh, out);
}

void RefreshCycle::run_step(const Step& step, Actions& out) {
  const auto& p = *site_->profile;
  step_ = &step;
  phase_ = is_check(step) ? Phase::checking : Phase::refreshing;
  // Waiting requests start closest-to-logout first.
  const auto priority = this->priority();
  if (step.is_exec()) {
    // A private copy of the file, with the cookies as they are now.
    ExecJob job;
    job.session_id = id();
    job.session = *doc_;
    job.state_pointer = p.state_pointer;
    auto& job_cookies = job.session[p.state_pointer / "cookies"];
    job_cookies = playwright_from_jar(job_cookies, jar_);
    job.argv = step.exec;
    job.base_url = p.base_url;
    job.timeout = step.timeout;
    job.env = step.exec_env;
    out.emplace_back(action::RunExec{cycle_, std::move(job)});
    return;
  }
  if (step.is_browser()) {
    BrowserStepRequest req;
    req.session_id = id();
    req.state = json::object();
    req.state["cookies"] = playwright_from_jar(state()["cookies"], jar_);
    req.state["origins"] = state().contains("origins") ? state()["origins"] : json::array();
    req.spec = *step.browser;
    TemplateContext ctx{id(), *doc_, p.base_url, {}, &jar_, &p.state_pointer};
    req.spec.url = expand_template(req.spec.url, ctx);
    // An empty text would be found on any page: nothing is decided.
    if (auto missing = expand_page_conditions(req.spec, ctx)) {
      fail_transient(
          step.name + ": page text " + *missing + " is empty or missing in the session file",
          std::nullopt, out);
      return;
    }
    if (req.spec.url.rfind("http://", 0) != 0 && req.spec.url.rfind("https://", 0) != 0)
      req.spec.url = p.base_url + req.spec.url;
    req.priority = priority;
    out.emplace_back(action::RunBrowser{cycle_, std::move(req)});
    return;
  }
  TemplateContext ctx{id(), *doc_, p.base_url, {}, &jar_, &p.state_pointer};
  HttpRequest req = make_request(p, step, ctx, jar_);
  req.priority = priority;
  if (log::enabled(spdlog::level::debug))
    log::debug("request", "sending request",
               {{"site", site_->name},
                {"session", id()},
                {"step", step.name},
                {"method", req.method},
                {"url", req.url}});
  out.emplace_back(action::SendHttp{cycle_, std::move(req)});
}

void RefreshCycle::answered(const HttpResponse& r, Actions& out) {
  if (r.curl_code != kNotSent && site_->metrics)  // refused by the open circuit: never sent
    site_->metrics->request(step_->name, http_code_label(r), site_->name);
  std::string problem;
  Verdict v = step_->evaluate(
      r,
      TemplateContext{
          id(), *doc_, site_->profile->base_url, {}, &jar_, &site_->profile->state_pointer},
      &problem);
  if (v == Verdict::logged_in) {
    if (r.cookies != jar_) rotated(r.received_at);
    jar_ = r.cookies;
    jar_rotated_ = true;
    if (!apply_captures(*step_, r, site_->profile->base_url, *doc_, jar_)) v = Verdict::transient;
  }
  std::string detail = describe(r);
  if (!problem.empty())
    detail += " (" + problem + " in the session file)";
  else if (v == Verdict::transient && r.transport_ok() && r.status >= 200 && r.status < 400)
    detail += " (no logged-in or logged-out rule matched)";
  if (log::enabled(spdlog::level::debug))
    log::debug("response", "step answered",
               {{"site", site_->name},
                {"session", id()},
                {"step", step_->name},
                {"http_status", r.status},
                {"verdict", to_string(v)},
                {"duration_ms", r.elapsed.count() / 1000}});
  verdict(v, detail, retry_after_delay(r, site_->now()), out);
}

void RefreshCycle::rotated(std::chrono::steady_clock::time_point at) {
  if (rotated_at_ == std::chrono::steady_clock::time_point{})
    rotated_at_ =
        at == std::chrono::steady_clock::time_point{} ? std::chrono::steady_clock::now() : at;
  jar_rotated_ = true;
}

void RefreshCycle::exec_finished(const ExecOutcome& r, Actions& out) {
  if (site_->metrics) site_->metrics->request(step_->name, exec_code_label(r.process), site_->name);
  auto ev = exec_verdict(r);
  if (ev.verdict != Verdict::logged_in && r.process.started) {
    // What the command said about it (redacted by run_exec_job); the
    // verdict's detail stays short.
    log::warn("exec_failed", "exec step did not succeed",
              {{"site", site_->name},
               {"session", id()},
               {"step", step_->name},
               {"outcome", ev.detail},
               {"stderr_tail", r.process.stderr_tail}});
  }
  if (ev.verdict == Verdict::logged_in) {
    // The command's copy is the new state; sessiond's own block stays ours.
    json updated = r.updated->doc;
    if (doc_->contains("keepalive")) updated["keepalive"] = (*doc_)["keepalive"];
    *doc_ = std::move(updated);
    jar_ = jar_from_playwright(state()["cookies"]);
    rotated();
  }
  verdict(ev.verdict, ev.detail, std::nullopt, out);
}

void RefreshCycle::browser_finished(const BrowserStepResult& r, Actions& out) {
  if (site_->metrics) {
    site_->metrics->browser_step(r);
    if (!r.not_sent)
      site_->metrics->request(step_->name, std::string("browser_") + to_string(r.verdict),
                              site_->name);
  }
  // The newest state the browser saw, whatever the verdict: the page may have
  // renewed the token at the site before it failed.
  if (r.cookies) {
    state()["cookies"] = *r.cookies;
    jar_ = jar_from_playwright(*r.cookies);
    rotated();
  }
  if (r.origins) {
    state()["origins"] = *r.origins;
    rotated();
  }
  verdict(to_verdict(r.verdict), r.detail, std::nullopt, out);
}

void RefreshCycle::verdict(Verdict v, const std::string& detail, std::optional<Millis> server_wait,
                           Actions& out) {
  switch (v) {
    case Verdict::logged_in:
      logged_in(out);
      return;
    case Verdict::logged_out:
      log::warn(
          "logged_out", "the site logged this session out",
          {{"site", site_->name}, {"session", id()}, {"step", step_->name}, {"error", detail}});
      dispose(step_->name + ": logged out (" + detail + ")", out);
      return;
    case Verdict::transient:
      fail_transient(step_->name + ": " + detail, server_wait, out);
      return;
  }
}

void RefreshCycle::logged_in(Actions& out) {
  last_ok_ = site_->now();  // the site just saw the session alive
  const auto& p = *site_->profile;
  if (is_check(*step_) && p.refresh && (!p.refresh_when || refresh_due())) {
    run_step(*p.refresh, out);
    return;
  }
  if (!is_check(*step_) && p.refresh_when && p.refresh_when->from) {
    // The refresh ran because the field was old: it (or the bot) must renew
    // it, or every check from now on is followed by a refresh.
    // (An unreadable field was logged as session_age_unknown already.)
    std::string problem;
    if (auto start = session_started(problem)) {
      const bool renewed = site_->now() - *start <= p.refresh_when->older_than;
      if (!renewed && !age_not_renewed_logged_)
        log::warn("session_age_not_renewed",
                  "the refresh succeeded but left the session's start field as old as before; "
                  "every check will be followed by a refresh",
                  {{"site", site_->name}, {"session", id()}, {"from", p.refresh_when->from_text}});
      age_not_renewed_logged_ = !renewed;
    }
  }
  save(out);
}

// Due when the session is older than refresh_when.older_than. An age that
// cannot be read counts as due: a needless renewal costs one step, a missed
// one lets the session reach its maximum age.
bool RefreshCycle::refresh_due() {
  const auto& when = *site_->profile->refresh_when;
  std::string problem;
  auto start = session_started(problem);
  if (!start) {
    if (!age_unknown_logged_)
      log::warn("session_age_unknown", "the session's age cannot be read; refreshing it",
                {{"site", site_->name},
                 {"session", id()},
                 {"from", when.from_text},
                 {"problem", problem}});
    age_unknown_logged_ = true;
    return true;
  }
  age_unknown_logged_ = false;
  const auto age = std::chrono::duration_cast<Millis>(site_->now() - *start);
  const bool due = age > when.older_than;
  if (log::enabled(spdlog::level::debug))
    log::debug("refresh_when", due ? "session old enough: refreshing" : "refresh not due yet",
               {{"site", site_->name},
                {"session", id()},
                {"age_s", age.count() / 1000},
                {"older_than_s", when.older_than.count() / 1000}});
  return due;
}

std::optional<WallTime> RefreshCycle::session_started(std::string& problem) const {
  const auto& when = *site_->profile->refresh_when;
  std::optional<WallTime> start;
  if (when.from) {
    const json* field = nullptr;
    try {
      if (doc_->contains(*when.from)) field = &doc_->at(*when.from);
    } catch (const json::exception&) {  // e.g. "/a/b" where "a" is an array
    }
    if (!field) {
      problem = "missing";
      return std::nullopt;
    }
    start = parse_time_value(*field);
    if (!start) {
      problem = "not a time (expected epoch seconds or milliseconds, or RFC 3339 with a zone)";
      return std::nullopt;
    }
  } else {
    start = session_start_;
    if (!start) {
      problem = "missing";
      return std::nullopt;
    }
  }
  // A little ahead is clock skew; more is a wrong time (a local time written
  // as UTC), which would put the refresh off for hours.
  if (*start > site_->now() + std::chrono::minutes(5)) {
    problem = "in the future";
    return std::nullopt;
  }
  return start;
}

json& RefreshCycle::state() {
  // Present and an object: every document here passed the schema check at
  // this pointer (load_session_file).
  return doc_->at(site_->profile->state_pointer);
}

void RefreshCycle::save(Actions& out) {
  phase_ = Phase::saving;
  auto& doc = *doc_;
  state()["cookies"] = playwright_from_jar(state()["cookies"], jar_);
  KeepaliveBlock k = status_.keepalive_refreshed(read_keepalive(doc), *last_ok_);
  const auto& p = *site_->profile;
  if (p.refresh_when && !p.refresh_when->from) {
    // The refresh step renewed the session just now; else it began when it did.
    if (!is_check(*step_))
      k.session_start = log::iso8601(*last_ok_);
    else if (session_start_)
      k.session_start = log::iso8601(*session_start_);
  }
  write_keepalive(doc, k);
  // A save without new credentials loses nothing to a crash: its lag counts from now.
  const bool any_rotation = rotated_at_ != std::chrono::steady_clock::time_point{};
  out.emplace_back(action::Save{cycle_, doc_, *known_,
                                any_rotation ? rotated_at_ : std::chrono::steady_clock::now()});
}

void RefreshCycle::saved(const SaveOutcome& r, Actions& out) {
  if (purpose_ != Purpose::refresh) {
    pause_saved(r, out);
    return;
  }
  switch (r.kind) {
    case SaveOutcome::Kind::saved: {
      known_ = r.identity;
      forget_unsaved();
      attempt_ = 0;
      gave_up_ = false;
      status_.record_success(*last_ok_);
      auto took = std::chrono::duration_cast<Millis>(std::chrono::steady_clock::now() - started_);
      json fields = {{"site", site_->name},
                     {"session", id()},
                     {"refresh_count", status_.refresh_count},
                     {"duration_ms", took.count()}};
      // With refresh_when, whether this cycle's check was followed by the refresh.
      if (site_->profile->refresh_when) fields["refresh_step"] = !is_check(*step_);
      log::info("refresh_ok", "session refreshed", fields);
      schedule(regular_delay(), out);  // before finish() publishes: the status shows it
      doc_.reset();
      finish(RefreshResult::success, CycleOutcome::success, {}, out);
      return;
    }
    case SaveOutcome::Kind::changed_on_disk:
      log::info("file_changed", "session file changed during the refresh; reloading it",
                {{"site", site_->name}, {"session", id()}});
      // known_ stays the version we read: the reload sees the bot's version
      // as a rewrite (a new login: attempts and unsaved credentials reset).
      forget_unsaved();
      doc_.reset();
      schedule(Millis(0), out);
      finish(std::nullopt, CycleOutcome::superseded, "file changed on disk", out);
      return;
    case SaveOutcome::Kind::failed: {
      // The site rotated the cookies already: keep them for the next cycle.
      keep_unsaved();
      const std::string msg = report_write_error(
          r, "could not save the refreshed session; keeping it in memory and retrying");
      fail_transient("save failed: " + msg, std::nullopt, out);
      return;
    }
  }
}

void RefreshCycle::dispose(const std::string& reason, Actions& out) {
  phase_ = Phase::disposing;
  auto& doc = *doc_;
  write_keepalive(doc,
                  SessionStatus::keepalive_logged_out(read_keepalive(doc), reason, site_->now()));
  if (unsaved_jar_) state()["cookies"] = playwright_from_jar(state()["cookies"], *unsaved_jar_);
  // Announced by the I/O thread once the file is known to be this session's
  // and before it moves: after the bot's newer login nothing is announced
  // (the disposal is superseded), and the watcher's session_removed comes
  // after it. A failed disposal is logged after it as what it is.
  const char* how = to_string(site_->on_logged_out);
  auto announce = [site = site_->name, id = id(), path = path_, how] {
    log::warn("session_invalidated", "logged-out session is no longer refreshed",
              {{"site", site}, {"session", id}, {"file", path}, {"on_logged_out", how}});
  };
  out.emplace_back(action::Dispose{cycle_, doc_, *known_, std::move(announce)});
}

void RefreshCycle::disposed(const DisposeOutcome& r, Actions& out) {
  if (r.changed_on_disk) {
    log::info("file_changed",
              "session file changed on disk before its disposal; the new session is kept and "
              "refreshed",
              {{"site", site_->name}, {"session", id()}});
    doc_.reset();
    schedule(Millis(0), out);
    finish(std::nullopt, CycleOutcome::superseded, "file changed on disk", out);
    return;
  }
  if (r.identity) known_ = r.identity;  // marked in place: our write, not the bot's
  status_.state = SessionState::invalid;
  status_.last_error =
      r.error ? "logged out; disposal failed: " + r.error->message : std::string("logged out");
  status_.disposed = !r.error;
  stopped_ = true;
  forget_unsaved();
  doc_.reset();
  cancel_timer();
  if (r.error) {
    log::error("file_error", "session is logged out but its file could not be updated",
               {{"site", site_->name},
                {"session", id()},
                {"file", path_},
                {"reason", "write"},
                {"error", r.error->message}});
    if (site_->metrics) site_->metrics->file_error(FileErrorKind::write, site_->name);
  } else if (r.where != path_) {
    log::info("session_quarantined", "logged-out session file moved",
              {{"site", site_->name}, {"session", id()}, {"file", r.where}});
  }
  finish(RefreshResult::logged_out, CycleOutcome::logged_out, {}, out);
}

void RefreshCycle::fail_transient(const std::string& reason, std::optional<Millis> server_wait,
                                  Actions& out) {
  // An earlier step of this cycle (a check, a browser page before it failed)
  // may have rotated the credentials at the site: the next cycle must use
  // them, not the file's, or the session logs itself out.
  if (jar_rotated_ && doc_) keep_unsaved();
  ++attempt_;
  status_.last_error = reason;
  const auto& policy = site_->profile->retry;
  if (policy.max_attempts > 0 && attempt_ >= policy.max_attempts) {
    // retry.max_attempts: stop retrying, failed as a session its supervisor
    // gave up on. The file stays as it is; a change to it (the bot's new
    // login) or a manual refresh starts again.
    gave_up_ = true;
    stopped_ = true;
    cancel_timer();
    status_.state = SessionState::failed;
    status_.last_error =
        "gave up after " + std::to_string(attempt_) + " failed attempts: " + reason;
    log::error(
        "retries_exhausted",
        "refresh failed retry.max_attempts times in a row; not retried until the file "
        "changes or a manual refresh",
        {{"site", site_->name}, {"session", id()}, {"attempt", attempt_}, {"error", reason}});
    finish(RefreshResult::transient_error, CycleOutcome::failed, *status_.last_error, out);
    return;
  }
  Millis delay = next_delay(policy, attempt_, uniform());
  if (server_wait) delay = std::max(delay, *server_wait);  // honour Retry-After
  auto left = until_idle_deadline();
  Millis margin = std::min(Millis(1000), site_->idle_timeout / 20);
  std::optional<Millis> capped = left ? cap_to_deadline(delay, *left, margin, policy.base) : delay;
  if (capped) {
    delay = *capped;
    status_.state = SessionState::retrying;
  } else {
    // Past the idle deadline: the site has probably logged it out, but only the
    // site can say so. Keep trying at the backoff pace and say it is at risk.
    status_.state = SessionState::at_risk;
  }
  log::warn("refresh_failed", "refresh failed, will retry",
            {{"site", site_->name},
             {"session", id()},
             {"attempt", attempt_},
             {"error", reason},
             {"state", to_string(status_.state)},
             {"retry_in_ms", delay.count()}});
  if (!stopped_) schedule(delay, out);  // before finish() publishes: the status shows it
  finish(RefreshResult::transient_error, CycleOutcome::transient_error, reason, out);
}

bool RefreshCycle::is_check(const Step& step) const {
  const auto& check = site_->profile->check;
  return check && &step == &*check;
}

void RefreshCycle::keep_unsaved() {
  unsaved_jar_ = jar_;
  if (doc_ && doc_->contains("headers")) unsaved_headers_ = (*doc_)["headers"];
  if (doc_ && state().contains("origins")) unsaved_origins_ = state()["origins"];
}

void RefreshCycle::forget_unsaved() {
  unsaved_jar_.reset();
  unsaved_headers_.reset();
  unsaved_origins_.reset();
}

// -- pause and resume -----------------------------------------------------------

bool RefreshCycle::pause(std::optional<std::string> reason, Actions& out) {
  if (draining_ || removed_) return false;
  pause_reason_ = std::move(reason);
  request_pause(Purpose::pause, out);
  return true;
}

bool RefreshCycle::resume(Actions& out) {
  if (draining_ || removed_) return false;
  request_pause(Purpose::resume, out);
  return true;
}

void RefreshCycle::request_pause(Purpose wanted, Actions& out) {
  // The latest request wins; one of the other kind not yet started is over.
  if (pause_wanted_ != Purpose::refresh && pause_wanted_ != wanted)
    settle(pause_wanted_, CycleOutcome::superseded, "a later request replaced it", out);
  pause_wanted_ = wanted;
  pause_tries_ = 0;
  if (wanted == Purpose::pause) cancel_timer();  // no new cycle; a running one finishes first
  if (phase_ == Phase::idle) begin_pause_write(out);
}

// A cycle that only reads the file and saves the keepalive block, the way a
// refresh saves it: one cycle at a time, and a bot rewrite is never overwritten.
void RefreshCycle::begin_pause_write(Actions& out) {
  purpose_ = pause_wanted_;
  pause_wanted_ = Purpose::refresh;
  cancel_timer();
  phase_ = Phase::loading;
  ++cycle_;
  started_ = std::chrono::steady_clock::now();
  publish(out);
  out.emplace_back(action::Load{cycle_, site_->profile->state_pointer});
}

void RefreshCycle::write_pause(const KeepaliveBlock& k, Actions& out) {
  const bool pause = purpose_ == Purpose::pause;
  if (k.paused == pause) {  // the file says so already
    pause_written(k, false, out);
    return;
  }
  auto& doc = *doc_;
  write_keepalive(doc, pause ? SessionStatus::keepalive_paused(k, site_->now(), pause_reason_)
                             : SessionStatus::keepalive_resumed(k));
  // Credentials that rotated at the site but could not be saved go with it:
  // a restart while paused must not bring back the stale cookie.
  if (unsaved_jar_) state()["cookies"] = playwright_from_jar(state()["cookies"], *unsaved_jar_);
  if (unsaved_headers_) doc["headers"] = *unsaved_headers_;
  if (unsaved_origins_) state()["origins"] = *unsaved_origins_;
  phase_ = Phase::saving;
  out.emplace_back(action::Save{cycle_, doc_, *known_, std::chrono::steady_clock::now()});
}

void RefreshCycle::pause_saved(const SaveOutcome& r, Actions& out) {
  switch (r.kind) {
    case SaveOutcome::Kind::saved:
      known_ = r.identity;
      forget_unsaved();
      pause_written(read_keepalive(*doc_), true, out);
      return;
    case SaveOutcome::Kind::changed_on_disk:
      doc_.reset();
      // The bot's version wins; the request is applied to it (a few times:
      // a bot that never stops writing gets an error instead).
      if (pause_wanted_ == Purpose::refresh && ++pause_tries_ < 3) {
        pause_wanted_ = purpose_;
        purpose_ = Purpose::refresh;  // not settled: finish() starts it again
        finish(std::nullopt, CycleOutcome::superseded, "file changed on disk", out);
        return;
      }
      if (!paused_) schedule_as_at_start(out);
      finish(std::nullopt, CycleOutcome::superseded,
             pause_wanted_ == Purpose::refresh ? "the file kept changing on disk"
                                               : "a later request replaced it",
             out);
      return;
    case SaveOutcome::Kind::failed: {
      const std::string msg = report_write_error(r, "could not save the session's pause or resume");
      if (!paused_) schedule_as_at_start(out);  // as before the request
      finish(std::nullopt, CycleOutcome::transient_error, "save failed: " + msg, out);
      return;
    }
  }
}

// A save that failed: logged and counted as a write error, the document
// read for it dropped. Returns what went wrong (for the status).
std::string RefreshCycle::report_write_error(const SaveOutcome& r, const char* message) {
  std::string msg = r.error ? r.error->message : "write failed";
  log::error("file_error", message,
             {{"site", site_->name},
              {"session", id()},
              {"file", path_},
              {"reason", "write"},
              {"error", msg}});
  if (site_->metrics) site_->metrics->file_error(FileErrorKind::write, site_->name);
  doc_.reset();
  return msg;
}

void RefreshCycle::pause_written(const KeepaliveBlock& k, bool changed, Actions& out) {
  paused_ = k.paused;
  status_.adopt_pause(k);
  doc_.reset();
  if (paused_) {
    cancel_timer();
    if (changed)
      log::info(
          "session_paused", "session paused; not refreshed until resumed",
          {{"site", site_->name}, {"session", id()}, {"reason", k.pause_reason.value_or("")}});
    finish(std::nullopt, CycleOutcome::paused, {}, out);
    return;
  }
  if (status_.state == SessionState::pending && last_ok_ &&
      site_->now() - *last_ok_ < site_->idle_timeout)
    status_.state = SessionState::active;
  if (changed)
    log::info("session_resumed", "session resumed", {{"site", site_->name}, {"session", id()}});
  schedule_as_at_start(out);  // before finish() publishes: the status shows it
  finish(std::nullopt, CycleOutcome::resumed, {}, out);
}

void RefreshCycle::settle(Purpose request, CycleOutcome outcome, std::string detail, Actions& out) {
  out.emplace_back(
      action::Settled{request == Purpose::pause,
                      CycleReport{id(), outcome, std::move(detail), status_.state, attempt_}});
}

// Due ones at their time, overdue ones within the catch-up window, as the
// first look after a start does.
void RefreshCycle::schedule_as_at_start(Actions& out) {
  std::optional<Millis> since;
  if (last_ok_) since = std::chrono::duration_cast<Millis>(site_->now() - *last_ok_);
  schedule(initial_delay(since, site_->interval, site_->profile->jitter, site_->catchup_window,
                         uniform()),
           out);
}

}  // namespace sessiond
