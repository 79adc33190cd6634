#pragma once
// Runs an external command (a profile's `exec` step) with a timeout, without a
// shell. Blocking: call it from a WorkerPool thread, never from an actor.

#include <atomic>
#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

namespace sessiond {

// How much of each stream is kept (the end of it).
constexpr std::size_t kStdoutTailBytes = 4096;
constexpr std::size_t kStderrTailBytes = 2048;

struct ProcessOptions {
  // The child's whole environment as "NAME=value" entries; nullopt inherits
  // this process's environment.
  std::optional<std::vector<std::string>> env;
  // What the child reads on stdin (then EOF); nullopt: /dev/null. Written into
  // the pipe before the child starts, so it must fit a pipe (kMaxStdinBytes).
  std::optional<std::string> stdin_data;
  // Polled while the child runs (at least every 200 ms): once true, the child
  // is stopped as on a timeout (shutdown of a hook that hangs).
  const std::atomic<bool>* cancel = nullptr;
};

// What every command sessiond starts (exec steps, the exec hook) gets from
// its environment: PATH (a default when unset), HOME, LANG, LC_ALL and TZ
// when set; never the rest (admin token, cloud credentials).
std::vector<std::string> base_child_environment();

// The most stdin_data run_process takes (a pipe's capacity, raised from 64 KiB).
constexpr std::size_t kMaxStdinBytes = 1 << 20;

struct ProcessResult {
  bool started = false;     // false: spawn failed (see error)
  bool timed_out = false;   // killed (SIGTERM, then SIGKILL) after the timeout
  int exit_code = -1;       // valid when it exited normally
  int signal = 0;           // set when killed by a signal
  std::string error;        // why it failed to start / what happened
  std::string stdout_tail;  // last kStdoutTailBytes of stdout
  std::string stderr_tail;  // last kStderrTailBytes of stderr (may hold secrets: redact first)
};

ProcessResult run_process(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
                          const ProcessOptions& options = {});

}  // namespace sessiond
