#pragma once
// An `exec` step as plain functions: the command gets a private copy of the
// session file (never the real one), the copy is read back afterwards, and
// its exit status is mapped to a verdict. The command gets a clean
// environment (never sessiond's own, which holds the admin token) and its
// stderr comes back with the session's secrets redacted. Blocking: run it on
// the exec pool. No CAF.

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sessiond/process_runner.hpp"
#include "sessiond/profile.hpp"
#include "sessiond/session_file.hpp"

namespace sessiond {

struct ExecJob {
  std::string session_id;
  nlohmann::json session;                      // the document to hand over, cookies as they are now
  nlohmann::json::json_pointer state_pointer;  // where its cookies are (the profile's)
  std::vector<std::string> argv;               // templates ({file}, {id}, {base_url}, ...)
  std::string base_url;
  std::chrono::milliseconds timeout{15000};
  std::vector<std::string> env;  // names passed through from sessiond's environment
};

struct ExecOutcome {
  ProcessResult process;  // its stdout_tail and stderr_tail are redacted (redact_secrets)
  std::optional<LoadedSession> updated;  // the private copy after the command
  std::optional<FileError> copy_error;   // the copy could not be written or read back
};

// mkdtemp, write the copy (0600), expand argv with {file} = the copy, run
// with exec_environment(job.env, the directory), read the copy back, redact
// the output tails, remove the directory. Never throws.
ExecOutcome run_exec_job(const ExecJob& job);

// The command's whole environment: PATH (a default when unset), HOME, LANG,
// LC_ALL and TZ when set, TMPDIR = private_dir, then each name in
// `pass_through` that is set in sessiond's environment (SESSIOND_* never:
// the profile refuses them, and they are skipped here too).
std::vector<std::string> exec_environment(const std::vector<std::string>& pass_through,
                                          const std::string& private_dir);

// The values in a session document that must never be logged: cookie values,
// localStorage values and header values of at least kMinSecretLength
// characters (shorter ones are flags like "1" or "true", which would redact
// ordinary words).
constexpr std::size_t kMinSecretLength = 8;
// `state`: where a nested storage state is (a profile's state_pointer).
std::vector<std::string> session_secrets(
    const nlohmann::json& session,
    const nlohmann::json::json_pointer& state = nlohmann::json::json_pointer());

// Every occurrence of a secret replaced by "[redacted]". With cut_at_start
// (a tail that lost its beginning), so is the end of a secret the text starts
// with: the cut may have fallen inside one.
std::string redact_secrets(std::string text, const std::vector<std::string>& secrets,
                           bool cut_at_start = false);

// Exit status 0 with a readable copy: logged in; 3: logged out; anything else
// (another status, a signal, a timeout, not started, unreadable copy):
// transient. `detail` says which, never with file content.
struct ExecVerdict {
  Verdict verdict;
  std::string detail;
};
ExecVerdict exec_verdict(const ExecOutcome& outcome);

// The metric label for one command: "exec_<status>" or "exec_error".
std::string exec_code_label(const ProcessResult& process);

}  // namespace sessiond
