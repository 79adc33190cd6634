#pragma once
// RefreshCycle: everything one session decides, as a state machine without
// CAF. Events go in (a method each), actions come out; the session actor only
// performs the actions (reads and writes files on the disk pool, sends HTTP
// requests, runs commands and browser steps, arms timers) and feeds their
// results back. Backoff, the idle and token deadlines, Retry-After and the
// logged-out / transient verdicts are decided here, and unit-tested here.
//
//            start ─▶ [first look: read the keepalive block] ─▶ schedule
//                                                                   │
//   ┌──────────────── tick / refresh / file changed ◀──────────────┘
//   ▼
//  idle ─▶ [admitting] ─▶ loading ─▶ checking ─▶ refreshing ─▶ saving ──▶ idle + schedule(interval)
//             │           │  logged out │            └─ changed on disk ─▶ idle + tick now
//             │           └──────┬──────┘
//             │                  ▼
//             │              disposing ─▶ idle, stopped (invalid)
//             └─ file error ─▶ idle, stopped until the file changes
//  refresh_when, not old enough yet: checking ─▶ saving (no refresh step)
//  transient (any step) ─▶ idle + schedule(backoff, capped to the idle deadline)
//    ... the retry.max_attempts-th in a row ─▶ idle, failed, stopped until the file changes
//
// admitting (admit_first): a refresh waits for a slot of the site's admission
// gate before it reads the file, so the sessions that wait for their turn
// hold no document and no built request (a drain or removal ends the wait).
//
// One cycle at a time, ever: overlapping refreshes of a rotating cookie log
// the session out. Results of an older cycle are ignored (their tag differs).

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "sessiond/admission.hpp"
#include "sessiond/browser_step.hpp"
#include "sessiond/config.hpp"
#include "sessiond/cookie_jar.hpp"
#include "sessiond/exec_step.hpp"
#include "sessiond/http_client.hpp"
#include "sessiond/profile.hpp"
#include "sessiond/session_disposal.hpp"
#include "sessiond/session_file.hpp"
#include "sessiond/session_status.hpp"

namespace sessiond {

class Metrics;

// One site's policy, shared read-only by all of its sessions.
struct SiteSettings {
  std::string name;
  std::shared_ptr<const Profile> profile;
  std::string sessions_dir;
  FilePattern pattern;  // how its session files are named
  OnLoggedOut on_logged_out = OnLoggedOut::quarantine;
  Millis interval{std::chrono::minutes(5)};         // effective (flag or profile)
  Millis idle_timeout{std::chrono::minutes(10)};    // effective (flag or profile)
  Millis catchup_window{std::chrono::seconds(30)};  // spread of overdue first refreshes
  bool refresh_at_start = false;  // first cycle at once, whatever the file says (`once`)
  // A refresh asks for admission (action::Admit) before it loads the file:
  // the daemon's sites, whose gate bounds the loaded cycles.
  bool admit_first = false;
  std::function<WallTime()> now = [] { return std::chrono::system_clock::now(); };
  Metrics* metrics = nullptr;  // outlives every session
};

// -- results of work done elsewhere, fed back into the cycle ----------------

// What the file says before the first schedule.
struct FirstLook {
  std::optional<WallTime> last_refresh;  // the keepalive block's lastRefresh
  std::int64_t refresh_count = 0;
  bool fresh_login = false;  // no keepalive block and written just now: the bot's new login
  KeepaliveBlock keepalive;  // as read; paused: registered, not scheduled
};
// Reads `path` for the first schedule (blocking; on the disk pool).
// `state`: the profile's state_pointer.
FirstLook read_first_look(
    const std::string& path, WallTime now,
    const nlohmann::json::json_pointer& state = nlohmann::json::json_pointer());

// A load's answer. The document moves into its own allocation on the I/O
// thread, and the cycle keeps that as its working copy: no copy of the whole
// DOM per refresh on the actor's thread (docs/PERFORMANCE.md, seventh round).
// The cycle edits it in place (WorkResultPtr's const does not reach through
// this pointer), so a Loaded goes to one cycle only.
struct Loaded {
  explicit Loaded(std::variant<LoadedSession, FileError> loaded);
  std::variant<FileIdentity, FileError> result;  // the identity of the version read
  std::shared_ptr<nlohmann::json> doc;           // set when loaded
};

// The cycle's turn at the admission gate: held until the cycle ends (empty
// where no gate bounds the site).
struct Admitted {
  AdmissionSlot slot;
};

using WorkResult = std::variant<FirstLook, Loaded, HttpResponse, ExecOutcome, BrowserStepResult,
                                SaveOutcome, DisposeOutcome, Admitted>;

// -- actions ------------------------------------------------------------------

namespace action {
// Read the file's keepalive block (read_first_look); answer with the tag.
struct ReadFirstLook {
  std::uint64_t tag;
  nlohmann::json::json_pointer state;  // the profile's state_pointer
};
// Wait for a slot of the site's admission gate (smaller priority first);
// answer with Admitted and the tag.
struct Admit {
  std::uint64_t tag;
  std::int64_t priority;
};
// Read and parse the session file.
struct Load {
  std::uint64_t tag;
  nlohmann::json::json_pointer state;  // the profile's state_pointer
};
struct SendHttp {
  std::uint64_t tag;
  HttpRequest request;
};
struct RunExec {
  std::uint64_t tag;
  ExecJob job;
};
struct RunBrowser {
  std::uint64_t tag;
  BrowserStepRequest request;
};
// save_if_unchanged(path, *doc, expected).
struct Save {
  std::uint64_t tag;
  std::shared_ptr<const nlohmann::json> doc;
  FileIdentity expected;
  // When the site's last response arrived: the executor observes the save
  // lag (sessiond_save_lag_seconds) from here to the rename.
  std::chrono::steady_clock::time_point responded_at;
};
// dispose_logged_out(path, dir, mode, *doc, expected, announce).
struct Dispose {
  std::uint64_t tag;
  std::shared_ptr<const nlohmann::json> doc;
  FileIdentity expected;
  // Logs session_invalidated; run by the I/O thread at the point of no return
  // (thread-safe: it owns copies of what it logs).
  std::function<void()> announce;
};
// Arm the timer: tick(gen) after delay. A later Schedule or a cancel makes
// earlier generations stale (CAF timers cannot be cancelled).
struct Schedule {
  std::uint64_t gen;
  Millis delay;
};
// The status changed: publish status().
struct Publish {};
// A cycle ended: answer manual refreshes, tell listeners.
struct Finished {
  CycleReport report;
};
// Drain requested and no cycle runs any more.
struct Drained {};
// Unregistered and idle: forget the status and stop.
struct Leave {};
// A pause (pause true) or resume request is done, written or not: answer the
// requests of that kind.
struct Settled {
  bool pause;
  CycleReport report;
};
}  // namespace action

using Action = std::variant<action::ReadFirstLook, action::Load, action::SendHttp, action::RunExec,
                            action::RunBrowser, action::Save, action::Dispose, action::Schedule,
                            action::Publish, action::Finished, action::Drained, action::Leave,
                            action::Settled, action::Admit>;
using Actions = std::vector<Action>;

class RefreshCycle {
 public:
  // `site` must outlive the cycle; `seed` varies the jitter between sessions.
  RefreshCycle(std::shared_ptr<const SiteSettings> site, std::string id, std::uint32_t seed);

  // -- events --
  // The session was registered.
  void start(Actions& out);
  // Timer `gen` fired.
  void tick(std::uint64_t gen, Actions& out);
  // Work tagged `tag` finished (a cycle number, or the timer generation for a FirstLook).
  void done(std::uint64_t tag, const WorkResult& result, Actions& out);
  // The watcher saw the file as `seen`.
  void file_changed(const FileIdentity& seen, Actions& out);
  // Unregistered: finish the running cycle, then Leave.
  void remove(Actions& out);
  // Refresh now (manual). false while draining: nothing was started.
  bool refresh_now(Actions& out);
  // Stop scheduling; Drained once no cycle runs.
  void drain(Actions& out);
  // An operator's pause (reason: their words, may be empty) or resume, kept in
  // the file's keepalive block: after the running cycle, if any, the file is
  // read and the block saved as a refresh saves it (a bot rewrite in between
  // wins and the request is applied to it). Settled answers; the latest
  // request wins. false while draining or removed: nothing was started.
  bool pause(std::optional<std::string> reason, Actions& out);
  bool resume(Actions& out);

  const SessionStatus& status() const { return status_; }
  const std::string& id() const { return status_.id; }
  const std::string& path() const { return path_; }
  const SiteSettings& site() const { return *site_; }
  bool idle() const { return phase_ == Phase::idle; }
  bool draining() const { return draining_; }

 private:
  enum class Phase { idle, admitting, loading, checking, refreshing, saving, disposing };
  // What the running cycle is for: a refresh, or writing a pause or resume.
  enum class Purpose { refresh, pause, resume };

  double uniform();
  void publish(Actions& out);
  void schedule(Millis delay, Actions& out);
  void cancel_timer();
  std::optional<Millis> until_idle_deadline() const;
  Millis regular_delay();
  void begin(Actions& out);
  void admitted(const Admitted& a, Actions& out);
  // Queue order of this session's waits: its idle deadline (ms since the
  // epoch); an unknown last refresh counts as due now.
  std::int64_t priority() const;
  void finish(std::optional<RefreshResult> result, CycleOutcome outcome, std::string detail,
              Actions& out);
  void first_look(const FirstLook& look, Actions& out);
  void loaded(const Loaded& loaded, Actions& out);
  void run_step(const Step& step, Actions& out);
  void answered(const HttpResponse& r, Actions& out);
  void exec_finished(const ExecOutcome& r, Actions& out);
  void browser_finished(const BrowserStepResult& r, Actions& out);
  // A step answered with new credentials (at `at`; default: now).
  void rotated(std::chrono::steady_clock::time_point at = {});
  void verdict(Verdict v, const std::string& detail, std::optional<Millis> server_wait,
               Actions& out);
  void logged_in(Actions& out);
  bool refresh_due();
  std::optional<WallTime> session_started(std::string& problem) const;
  void save(Actions& out);
  void saved(const SaveOutcome& r, Actions& out);
  void dispose(const std::string& reason, Actions& out);
  void disposed(const DisposeOutcome& r, Actions& out);
  void fail_transient(const std::string& reason, std::optional<Millis> server_wait, Actions& out);
  bool is_check(const Step& step) const;
  void keep_unsaved();
  std::string report_write_error(const SaveOutcome& r, const char* message);
  void forget_unsaved();
  void request_pause(Purpose wanted, Actions& out);
  void begin_pause_write(Actions& out);
  void write_pause(const KeepaliveBlock& k, Actions& out);
  void pause_saved(const SaveOutcome& r, Actions& out);
  void pause_written(const KeepaliveBlock& k, bool changed, Actions& out);
  void settle(Purpose request, CycleOutcome outcome, std::string detail, Actions& out);
  void schedule_as_at_start(Actions& out);

  std::shared_ptr<const SiteSettings> site_;
  std::string path_;
  SessionStatus status_;
  Phase phase_ = Phase::idle;
  std::uint64_t timer_gen_ = 0;  // bumped to cancel the pending tick
  std::uint64_t cycle_ = 0;      // tags results of the running cycle
  int attempt_ = 0;              // consecutive transient failures
  bool draining_ = false;
  bool drain_pending_ = false;         // Drained owed when the running cycle ends
  bool removed_ = false;               // unregistered: finish the running cycle, then leave
  bool stopped_ = false;               // invalid or file error: wait for the file to change
  std::optional<FileIdentity> known_;  // the version we last read or wrote
  std::optional<FileIdentity> error_reported_for_;  // one file_error log per version
  std::optional<WallTime> last_ok_;                 // last time the site saw this session alive
  bool paused_ = false;                             // the file says paused: not scheduled
  Purpose purpose_ = Purpose::refresh;              // of the running cycle
  Purpose pause_wanted_ = Purpose::refresh;  // a pause or resume not yet written (refresh: none)
  std::optional<std::string> pause_reason_;  // of the wanted pause
  int pause_tries_ = 0;                      // saves of the wanted change lost to a rewrite
  std::minstd_rand rng_;

  // retry.max_attempts reached: failed until the file changes or a manual refresh.
  bool gave_up_ = false;
  bool token_not_renewed_logged_ = false;  // logged again after a renewal
  // refresh_when: the session's start as the keepalive block (or the bot's
  // write of the file) says, read with the file; logged once until readable.
  std::optional<WallTime> session_start_;
  bool age_unknown_logged_ = false;
  bool age_not_renewed_logged_ = false;  // a due refresh left the field as old
  std::optional<WallTime> exp_before_;   // token_deadline's exp as this cycle read it

  // The cycle in flight.
  std::chrono::steady_clock::time_point started_;
  AdmissionSlot slot_;  // its turn at the admission gate, given back when it ends
  std::shared_ptr<nlohmann::json> doc_;
  // The storage state (cookies, origins) in *doc_, at the profile's
  // state_pointer: every read and write of them goes through here.
  nlohmann::json& state();
  CookieLines jar_;
  bool jar_rotated_ = false;  // a step of this cycle answered with new credentials
  // When the first changed cookie jar of this cycle arrived (zero: none yet):
  // the save lag is measured from here.
  std::chrono::steady_clock::time_point rotated_at_{};
  const Step* step_ = nullptr;
  // Credentials that rotated at the site but could not be saved: used by the
  // next cycle, or the session would be logged out by its own stale cookie.
  std::optional<CookieLines> unsaved_jar_;
  std::optional<nlohmann::json> unsaved_headers_;
  std::optional<nlohmann::json> unsaved_origins_;
};

}  // namespace sessiond
