#pragma once
// Atoms and payload types exchanged by the actors. Payloads travel as
// shared_ptr<const T>: one allocation, no copies, immutable once sent (small
// values such as a FileIdentity travel as they are).

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/atom.hpp>

#include <memory>
#include <optional>
#include <variant>

#include "sessiond/http_client.hpp"
#include "sessiond/process_runner.hpp"
#include "sessiond/session_file.hpp"
#include "sessiond/session_status.hpp"

namespace sessiond {

// Timers and lifecycle.
using tick_atom = caf::atom_constant<caf::atom("tick")>;      // SessionActor: refresh now (gen)
using retick_atom = caf::atom_constant<caf::atom("retick")>;  // Supervisor: restart a child
using heartbeat_atom = caf::atom_constant<caf::atom("heartbeat")>;
using report_atom = caf::atom_constant<caf::atom("report")>;
using rescan_atom = caf::atom_constant<caf::atom("rescan")>;
using drain_atom = caf::atom_constant<caf::atom("drain")>;

// Results of blocking work, delivered back to the SessionActor.
using loaded_atom = caf::atom_constant<caf::atom("loaded")>;
using http_atom = caf::atom_constant<caf::atom("http")>;
using exec_atom = caf::atom_constant<caf::atom("exec")>;
using saved_atom = caf::atom_constant<caf::atom("saved")>;
using disposed_atom = caf::atom_constant<caf::atom("disposed")>;

// Watcher -> Supervisor, Supervisor -> SessionActor.
using added_atom = caf::atom_constant<caf::atom("added")>;
using removed_atom = caf::atom_constant<caf::atom("removed")>;
using changed_atom = caf::atom_constant<caf::atom("changed")>;
using scanned_atom = caf::atom_constant<caf::atom("scanned")>;
using inotify_atom = caf::atom_constant<caf::atom("inotify")>;

// Admin API.
using refresh_atom = caf::atom_constant<caf::atom("refresh")>;
using register_atom = caf::atom_constant<caf::atom("register")>;
using unregister_atom = caf::atom_constant<caf::atom("unreg")>;
using status_atom = caf::atom_constant<caf::atom("status")>;
using session_atom = caf::atom_constant<caf::atom("session")>;
using metrics_atom = caf::atom_constant<caf::atom("metrics")>;
using done_atom = caf::atom_constant<caf::atom("done")>;

// Events into the Metrics actor.
using outcome_atom = caf::atom_constant<caf::atom("outcome")>;
using request_atom = caf::atom_constant<caf::atom("request")>;
using file_error_atom = caf::atom_constant<caf::atom("fileerr")>;
using restart_atom = caf::atom_constant<caf::atom("restart")>;
using ready_atom = caf::atom_constant<caf::atom("ready")>;
using forget_atom = caf::atom_constant<caf::atom("forget")>;

using LoadResult = std::variant<LoadedSession, FileError>;
using LoadResultPtr = std::shared_ptr<const LoadResult>;
using HttpResponsePtr = std::shared_ptr<const HttpResponse>;
using SaveOutcomePtr = std::shared_ptr<const SaveOutcome>;
using SessionStatusPtr = std::shared_ptr<const SessionStatus>;

// An exec step's result: the process outcome and the copy it updated.
struct ExecOutcome {
  ProcessResult process;
  std::optional<LoadedSession> updated;  // the private copy after the command
  std::optional<FileError> copy_error;
};
using ExecOutcomePtr = std::shared_ptr<const ExecOutcome>;

// What a disposal of a logged-out session did (quarantine / mark / delete).
struct DisposeOutcome {
  bool changed_on_disk = false;  // the bot wrote a new file: nothing was disposed
  std::optional<FileError> error;
  std::string where;  // new path (quarantine) or the file (mark)
};
using DisposeOutcomePtr = std::shared_ptr<const DisposeOutcome>;

}  // namespace sessiond

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(sessiond::FileIdentity)
// What the watcher saw of a file (nullopt: gone by the time it looked).
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::optional<sessiond::FileIdentity>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(sessiond::LoadResultPtr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(sessiond::HttpResponsePtr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(sessiond::SaveOutcomePtr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(sessiond::SessionStatusPtr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(sessiond::ExecOutcomePtr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(sessiond::DisposeOutcomePtr)
