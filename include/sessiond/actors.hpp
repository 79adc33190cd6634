#pragma once
// Every actor's interface in one place: the compiler, not a comment, says
// what each actor accepts. One atom per meaning; results and outcomes are
// enums. Decisions live in plain classes in src/ (RefreshCycle, the file
// policies, the status summary); the actors only route messages to them and
// perform the actions they return. The diagram and one refresh followed end
// to end are in docs/ARCHITECTURE.md.
//
// Messages an actor only sends itself are marked (self).

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/atom.hpp>
#include <caf/typed_actor.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sessiond/refresh_cycle.hpp"
#include "sessiond/session_file.hpp"
#include "sessiond/session_status.hpp"
#include "sessiond/status_page.hpp"

namespace sessiond {

// -- atoms ------------------------------------------------------------------

using tick_atom = caf::atom_constant<caf::atom("tick")>;          // a timer fired
using result_atom = caf::atom_constant<caf::atom("result")>;      // work done elsewhere
using file_added_atom = caf::atom_constant<caf::atom("fadded")>;  // a file appeared or changed
using file_gone_atom = caf::atom_constant<caf::atom("fgone")>;    // a file disappeared
using changed_atom = caf::atom_constant<caf::atom("changed")>;    // your file was rewritten
using remove_atom = caf::atom_constant<caf::atom("remove")>;      // stop: unregistered
using scanned_atom = caf::atom_constant<caf::atom("scanned")>;    // first directory scan done
using rescan_atom = caf::atom_constant<caf::atom("rescan")>;      // scan the directory again
using dir_events_atom = caf::atom_constant<caf::atom("direvents")>;
using restart_atom = caf::atom_constant<caf::atom("restart")>;  // start a crashed child again
using refresh_atom = caf::atom_constant<caf::atom("refresh")>;  // refresh now
using pause_atom = caf::atom_constant<caf::atom("pause")>;      // stop refreshing, across restarts
using resume_atom = caf::atom_constant<caf::atom("resume")>;    // refresh again after a pause
using register_atom = caf::atom_constant<caf::atom("register")>;
using unregister_atom = caf::atom_constant<caf::atom("unreg")>;
using drain_atom = caf::atom_constant<caf::atom("drain")>;  // stop scheduling, finish cycles
using drained_atom = caf::atom_constant<caf::atom("drained")>;
using put_atom = caf::atom_constant<caf::atom("put")>;          // a session's new status
using forget_atom = caf::atom_constant<caf::atom("forget")>;    // a session is gone
using ready_atom = caf::atom_constant<caf::atom("ready")>;      // is it ready?
using status_atom = caf::atom_constant<caf::atom("status")>;    // /status
using session_atom = caf::atom_constant<caf::atom("session")>;  // /sessions/{id}
using metrics_atom = caf::atom_constant<caf::atom("metrics")>;  // /metrics
using page_atom = caf::atom_constant<caf::atom("page")>;        // the status page at /
using heartbeat_atom = caf::atom_constant<caf::atom("heartbeat")>;
using report_atom = caf::atom_constant<caf::atom("report")>;
using finished_atom = caf::atom_constant<caf::atom("finished")>;   // a session's cycle ended
using locate_atom = caf::atom_constant<caf::atom("locate")>;       // which sites have this id
using sites_atom = caf::atom_constant<caf::atom("sites")>;         // /sites
using site_error_atom = caf::atom_constant<caf::atom("siteerr")>;  // a site's directory problem

// -- payloads ---------------------------------------------------------------

using WorkResultPtr = std::shared_ptr<const WorkResult>;
using SessionStatusPtr = std::shared_ptr<const SessionStatus>;

// What a directory watcher read in one go (inotify names and masks).
struct DirEvent {
  std::string name;
  std::uint32_t mask = 0;
};
using DirEventsPtr = std::shared_ptr<const std::vector<DirEvent>>;

// What GET /sites says about a site besides its counts.
struct SiteInfo {
  std::string name;
  std::string dir;
  std::string pattern;
  std::string profile;  // the profile file
  std::int64_t interval_s = 0;
  // Exact, for the site's gauges (0: not known, the gauges are left alone).
  Millis interval{0};
  Millis idle_timeout{0};
  OnLoggedOut on_logged_out = OnLoggedOut::quarantine;
  std::function<std::string()> breaker;  // its circuit: closed | open | half_open
  // Its own queues in front of the shared HTTP client and browser pool
  // (sampled at scrape); empty when it has none (the flags' one site).
  std::function<HttpLoad()> http_load;
  // Refresh cycles due and waiting for the site's admission gate (before they
  // load their file): sessiond_refresh_admission_queued.
  std::function<std::size_t()> admission_queued;
  std::function<HttpLoad()> browser_load;
  std::string error;  // found at start-up ("" = none); the watcher updates it
};
using SiteInfoListPtr = std::shared_ptr<const std::vector<SiteInfo>>;

// Answers of the supervisor to the admin API.
enum class AdminResult { registered, exists, unregistered, not_found };
const char* to_string(AdminResult r);

// -- interfaces -------------------------------------------------------------

// Hears how every session's cycles end (`sessiond once` counts them; more
// listeners, such as an event stream, can follow). Optional.
using session_listener_actor = caf::typed_actor<
    // The first scan registered these sessions.
    caf::reacts_to<scanned_atom, std::vector<std::string>>,
    // A session's cycle ended (also sent by the supervisor when it gives a
    // crashing session up: outcome `failed`).
    caf::reacts_to<finished_atom, CycleReport>>;

// One per session file: the only one that touches it. Drives a RefreshCycle.
using session_actor = caf::typed_actor<
    // (self) Timer of generation `gen` fired; stale generations are ignored.
    caf::reacts_to<tick_atom, std::uint64_t>,
    // (self) Disk, HTTP, exec or browser work of cycle `cycle` finished.
    caf::reacts_to<result_atom, std::uint64_t, WorkResultPtr>,
    // The watcher saw the file rewritten, as it found it.
    caf::reacts_to<changed_atom, FileIdentity>,
    // Unregistered: finish the running cycle, then leave.
    caf::reacts_to<remove_atom>,
    // Refresh now; replies how the cycle ended (outcome paused: not refreshed).
    caf::replies_to<refresh_atom>::with<CycleReport>,
    // Pause with a reason ("" = none), kept in the file's keepalive block;
    // replies once written (after a running cycle): outcome paused, or why not.
    caf::replies_to<pause_atom, std::string>::with<CycleReport>,
    // Resume: the pause is removed from the file and the session scheduled;
    // replies once written: outcome resumed, or why not.
    caf::replies_to<resume_atom>::with<CycleReport>,
    // Stop scheduling; replies once no cycle runs.
    caf::replies_to<drain_atom>::with<drained_atom>>;

// One per site: a session actor per file the watcher reports, restarted
// one-for-one with backoff after a crash, given up after a limit.
using supervisor_actor = caf::typed_actor<
    // From the watcher: a file appeared or was rewritten (nullopt: gone again
    // by the time the watcher looked).
    caf::reacts_to<file_added_atom, std::string, std::optional<FileIdentity>>,
    // From the watcher: a file disappeared.
    caf::reacts_to<file_gone_atom, std::string>,
    // From the watcher: the first full scan is done.
    caf::reacts_to<scanned_atom>,
    // (self) Restart timer of a crashed child's incarnation.
    caf::reacts_to<restart_atom, std::string, std::uint64_t>,
    // Refresh every session now; replies how many were asked.
    caf::replies_to<refresh_atom>::with<int>,
    // Refresh one session; replies how its cycle ended.
    caf::replies_to<refresh_atom, std::string>::with<CycleReport>,
    // PUT /sessions/{id}: watch this file again.
    caf::replies_to<register_atom, std::string>::with<AdminResult>,
    // DELETE /sessions/{id}: stop refreshing it (the file stays).
    caf::replies_to<unregister_atom, std::string>::with<AdminResult>,
    // POST /sessions/{id}/pause?reason=: the session's answer (outcome
    // not_found: no such session).
    caf::replies_to<pause_atom, std::string, std::string>::with<CycleReport>,
    // POST /sessions/{id}/resume: the session's answer.
    caf::replies_to<resume_atom, std::string>::with<CycleReport>,
    // Stop scheduling; replies when every running cycle has finished.
    caf::replies_to<drain_atom>::with<drained_atom>>;

// Reports the files of one sessions directory to its supervisor. Runs
// detached (a directory scan never occupies a scheduler thread).
using watcher_actor = caf::typed_actor<
    // (self) Names and masks the inotify thread read.
    caf::reacts_to<dir_events_atom, DirEventsPtr>,
    // (self) Periodic full scan, the safety net for missed events.
    caf::reacts_to<rescan_atom>>;

// The latest status of every session, for /status, readiness, the gauges
// derived from them and the heartbeat and status logs. Counters and
// histograms are not here: they are updated where things happen (Metrics).
using status_board_actor = caf::typed_actor<
    // A session's new status.
    caf::reacts_to<put_atom, SessionStatusPtr>,
    // Session (site, id) is gone.
    caf::reacts_to<forget_atom, std::string, std::string>,
    // A reload removed (or is restarting) this site: forget its sessions.
    caf::reacts_to<remove_atom, std::string>,
    // A reload changed the configured sites.
    caf::reacts_to<sites_atom, SiteInfoListPtr>,
    // From a site's watcher: what is wrong with its sessions directory ("":
    // nothing any more).
    caf::reacts_to<site_error_atom, std::string, std::string>,
    // The first scan is done: ready.
    caf::reacts_to<scanned_atom>,
    // Shutting down: not ready any more.
    caf::reacts_to<drain_atom>,
    // Is it ready (for /readyz)?
    caf::replies_to<ready_atom>::with<bool>,
    // /metrics: the Prometheus text, with derived gauges brought up to date.
    caf::replies_to<metrics_atom>::with<std::string>,
    // /status?state=&limit=&site=: JSON (site "": every site).
    caf::replies_to<status_atom, std::string, std::uint64_t, std::string>::with<std::string>,
    // /sites/{site}/sessions/{id} (site "": the only site that has the id):
    // JSON, "" when unknown.
    caf::replies_to<session_atom, std::string, std::string>::with<std::string>,
    // The sites that have a session of this id (sorted).
    caf::replies_to<locate_atom, std::string>::with<std::vector<std::string>>,
    // GET /sites: JSON.
    caf::replies_to<sites_atom>::with<std::string>,
    // GET / and /s/{id}: the status page's HTML.
    caf::replies_to<page_atom, PageQuery>::with<PageResult>,
    // (self) Log timers.
    caf::reacts_to<heartbeat_atom>, caf::reacts_to<report_atom>>;

}  // namespace sessiond

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(sessiond::FileIdentity)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::optional<sessiond::FileIdentity>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(sessiond::WorkResultPtr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(sessiond::SessionStatusPtr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(sessiond::DirEventsPtr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(sessiond::CycleReport)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(sessiond::AdminResult)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(sessiond::PageQuery)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(sessiond::PageResult)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(sessiond::SiteInfoListPtr)
