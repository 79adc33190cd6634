#pragma once
// One headless Chromium process tree driven over --remote-debugging-pipe:
// commands go to its fd 3, replies come from its fd 4 (see devtools.hpp for
// the framing). It runs in its own process group with a fresh temporary
// profile directory, removed when it is stopped. No protocol logic here: the
// browser pool (browser_pool.hpp) speaks the protocol.
//
// Not thread-safe: one thread launches, uses and stops it. Launch it from a
// long-lived thread: PR_SET_PDEATHSIG kills the browser when the thread that
// spawned it exits, not the process.

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace sessiond {

struct BrowserLaunchOptions {
  // The real binary, not the /usr/bin wrapper scripts (they add flags, and
  // one does not exec: killing it leaves Chromium running).
  std::string path = "/usr/lib/chromium/chromium-headless-shell";
  std::vector<std::string> extra_args;  // appended last
  std::string stderr_path;              // Chromium's stderr; "" = /dev/null
  std::string temp_dir;                 // parent of the profile directory; "" = $TMPDIR or /tmp
  // Chromium's own sandbox needs user namespaces, which restricted pods
  // (Kubernetes' RuntimeDefault seccomp) forbid; as root it never runs.
  bool sandbox = true;  // false: --no-sandbox (always as root)
};

// Removes profile directories (sessiond-chromium-<pid>-*) that a sessiond
// killed with -9 left in `temp_dir` ("" = $TMPDIR or /tmp): those whose
// process is gone, so other daemons sharing the directory keep theirs, and
// those with this process's pid (a restarted container reuses pids): call it
// before this process starts a browser. Returns how many were removed.
int remove_stale_profile_dirs(const std::string& temp_dir);

// The command line for `path` (argv[0] included): --headless for the headless
// shell, --headless=new for full Chromium; --no-sandbox only as root.
std::vector<std::string> chromium_args(const BrowserLaunchOptions& options,
                                       const std::string& user_data_dir);

// Figures of every live process of a process group, from /proc.
struct ProcessTreeUsage {
  int processes = 0;
  std::uint64_t rss_bytes = 0;  // sum of VmRSS (counts shared pages once per process)
  std::uint64_t pss_bytes = 0;  // sum of Pss (shared pages split): the real footprint
  // utime+stime of the live processes plus what their reaped children used
  // (cutime+cstime): renderers that exited are counted in the browser's figure.
  double cpu_seconds = 0;
};
ProcessTreeUsage process_group_usage(pid_t pgid, bool with_pss = true);

class BrowserProcess {
 public:
  // Starts Chromium. nullptr and `error` set when it could not start
  // (missing binary, no temp dir, ...).
  static std::unique_ptr<BrowserProcess> launch(const BrowserLaunchOptions& options,
                                                std::string& error);
  ~BrowserProcess();  // kill(): never leaves a process or the profile behind
  BrowserProcess(const BrowserProcess&) = delete;
  BrowserProcess& operator=(const BrowserProcess&) = delete;

  pid_t pid() const { return pid_; }          // also the process group id
  int reply_fd() const { return reply_fd_; }  // non-blocking; poll for POLLIN
  int command_fd() const {
    return command_fd_;
  }  // non-blocking; poll for POLLOUT when wants_write()
  const std::string& user_data_dir() const { return user_data_dir_; }

  // Queues bytes for fd 3 and writes what the pipe takes now. False once the
  // pipe is broken (EPIPE: the browser is gone; SIGPIPE must be ignored).
  bool write(std::string_view bytes);
  bool wants_write() const { return !out_.empty(); }
  bool flush();  // on POLLOUT
  // read(2) on fd 4: >0 bytes, 0 at EOF, -1 with errno (EAGAIN: nothing yet).
  ssize_t read_some(char* buf, std::size_t size);

  // Whether the browser process has exited (reaped here; non-blocking).
  bool exited();
  bool running() const { return !reaped_; }

  // Browser.close, then SIGKILL to the process group after `grace`; waits
  // for the browser and removes the profile directory.
  void stop(std::chrono::milliseconds grace);
  // SIGKILL to the process group now; waits; removes the profile directory.
  void kill();

  ProcessTreeUsage usage(bool with_pss = true) const { return process_group_usage(pid_, with_pss); }

 private:
  BrowserProcess() = default;
  void finish();  // SIGKILL the group, reap, close fds, remove the directory

  pid_t pid_ = -1;
  bool reaped_ = false;
  int command_fd_ = -1;
  int reply_fd_ = -1;
  std::string user_data_dir_;
  std::string out_;  // queued for fd 3
};

}  // namespace sessiond
