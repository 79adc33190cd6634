#pragma once
// The daemon's lifecycle: configuration checks, the actor system, the HTTP
// port, signals and the drain on shutdown. Used by `run`, `once` and `demo`.

#include "sessiond/config.hpp"

namespace sessiond {

enum class DaemonMode { run, once, demo };

// Returns the process exit status: 0 ok, 1 a session failed (`once`), 2 bad
// configuration.
int run_daemon(Config config, DaemonMode mode);

// The command line `run` re-executes on SIGHUP (call before run_daemon).
void remember_command_line(int argc, char** argv);

// `sessiond check-config`: 0 when the profile and flags are valid, else 2.
int check_config(const Config& config);

}  // namespace sessiond
