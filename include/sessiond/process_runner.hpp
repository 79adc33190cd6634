#pragma once
// Runs an external command (a profile's `exec` step) with a timeout, without a
// shell. Blocking: call it from a WorkerPool thread, never from an actor.

#include <chrono>
#include <string>
#include <vector>

namespace sessiond {

struct ProcessResult {
  bool started = false;     // false: spawn failed (see error)
  bool timed_out = false;   // killed (SIGTERM, then SIGKILL) after the timeout
  int exit_code = -1;       // valid when it exited normally
  int signal = 0;           // set when killed by a signal
  std::string error;        // why it failed to start / what happened
  std::string output_tail;  // last few KB of combined stdout+stderr (for debug logs only)
};

ProcessResult run_process(const std::vector<std::string>& argv, std::chrono::milliseconds timeout);

}  // namespace sessiond
