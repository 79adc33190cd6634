#pragma once
// An `exec` step as plain functions: the command gets a private copy of the
// session file (never the real one), the copy is read back afterwards, and
// its exit status is mapped to a verdict. Blocking: run it on the exec pool.
// No CAF.

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
  nlohmann::json session;         // the document to hand over, cookies as they are now
  std::vector<std::string> argv;  // templates ({file}, {id}, {base_url}, ...)
  std::string base_url;
  std::chrono::milliseconds timeout{15000};
};

struct ExecOutcome {
  ProcessResult process;
  std::optional<LoadedSession> updated;  // the private copy after the command
  std::optional<FileError> copy_error;   // the copy could not be written or read back
};

// mkdtemp, write the copy (0600), expand argv with {file} = the copy, run,
// read the copy back, remove the directory. Never throws.
ExecOutcome run_exec_job(const ExecJob& job);

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
