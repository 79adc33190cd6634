// run_process: posix_spawnp without a shell, stdout and stderr through two
// pipes (their tails kept), bounded wait, SIGTERM then SIGKILL to the child's
// process group.
//
// The child is never reaped before the kill decision is final: exit is
// detected with waitid(WNOWAIT), so the process-group id (= the child's pid)
// stays reserved while we signal it and can never hit an unrelated group.
// Every descriptor is O_CLOEXEC (pipe2, pidfd), so concurrent calls from
// several threads never leak one child's pipe into another child.

#include "sessiond/process_runner.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

extern char** environ;

namespace sessiond {

namespace {

constexpr auto kKillGrace = std::chrono::seconds(1);
constexpr int kTickMs = 10;  // poll granularity when no pidfd is available

using Clock = std::chrono::steady_clock;

std::string errno_text(int err) {
  char buf[256];
  // GNU strerror_r returns the message pointer (may not use buf).
  const char* msg = strerror_r(err, buf, sizeof buf);
  return msg ? std::string(msg) : std::string("errno ") + std::to_string(err);
}

void close_fd(int& fd) {
  if (fd >= 0) {
    ::close(fd);
    fd = -1;
  }
}

// Closes the descriptors and destroys the spawn objects on every path.
struct SpawnGuard {
  int in[2] = {-1, -1};   // stdin pipe (ProcessOptions::stdin_data only)
  int out[2] = {-1, -1};  // stdout pipe
  int err[2] = {-1, -1};  // stderr pipe
  bool actions_ok = false;
  bool attr_ok = false;
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  ~SpawnGuard() {
    if (actions_ok) posix_spawn_file_actions_destroy(&actions);
    if (attr_ok) posix_spawnattr_destroy(&attr);
    for (int* fds : {in, out, err}) {
      close_fd(fds[0]);
      close_fd(fds[1]);
    }
  }
};

void append_tail(std::string& tail, std::size_t bound, const char* data, std::size_t n) {
  if (n >= bound) {
    tail.assign(data + (n - bound), bound);
    return;
  }
  tail.append(data, n);
  if (tail.size() > 2 * bound) tail.erase(0, tail.size() - bound);
}

void trim_tail(std::string& tail, std::size_t bound) {
  if (tail.size() > bound) tail.erase(0, tail.size() - bound);
}

// Reads whatever is available. Returns false once the pipe reached EOF or
// failed (the caller closes it).
bool drain_pipe(int fd, std::string& tail, std::size_t bound) {
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n > 0) {
      append_tail(tail, bound, buf, static_cast<std::size_t>(n));
      continue;
    }
    if (n == 0) return false;
    if (errno == EINTR) continue;
    return errno == EAGAIN || errno == EWOULDBLOCK;
  }
}

// True when the child has exited (not yet reaped).
bool child_exited(pid_t pid, bool& no_child) {
  for (;;) {
    siginfo_t info;
    std::memset(&info, 0, sizeof info);
    const int r = ::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT);
    if (r == 0) return info.si_pid == pid;
    if (errno == EINTR) continue;
    no_child = true;  // ECHILD: reaped elsewhere (SIGCHLD ignored?)
    return true;
  }
}

}  // namespace

std::vector<std::string> base_child_environment() {
  std::vector<std::string> env;
  const char* path = std::getenv("PATH");
  // A default for a sessiond started without PATH (systemd, a bare exec).
  env.push_back(std::string("PATH=") + (path && *path ? path : "/usr/local/bin:/usr/bin:/bin"));
  for (const char* name : {"HOME", "LANG", "LC_ALL", "TZ"})
    if (const char* v = std::getenv(name)) env.push_back(std::string(name) + "=" + v);
  return env;
}

ProcessResult run_process(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
                          const ProcessOptions& options) {
  ProcessResult result;
  if (argv.empty() || argv[0].empty()) {
    result.error = "empty command";
    return result;
  }

  SpawnGuard g;
  for (int* fds : {g.out, g.err}) {
    if (::pipe2(fds, O_CLOEXEC) != 0) {
      result.error = "pipe2: " + errno_text(errno);
      return result;
    }
    // Only our end is non-blocking; the child's stdout/stderr stay blocking.
    const int fl = ::fcntl(fds[0], F_GETFL);
    if (fl < 0 || ::fcntl(fds[0], F_SETFL, fl | O_NONBLOCK) != 0) {
      result.error = "fcntl: " + errno_text(errno);
      return result;
    }
  }

  // stdin_data goes into the pipe before the child exists: no writer loop,
  // and no SIGPIPE when the child exits without reading it.
  if (options.stdin_data) {
    const std::string& data = *options.stdin_data;
    if (data.size() > kMaxStdinBytes) {
      result.error = "stdin data too large (" + std::to_string(data.size()) + " bytes)";
      return result;
    }
    if (::pipe2(g.in, O_CLOEXEC | O_NONBLOCK) != 0) {
      result.error = "pipe2: " + errno_text(errno);
      return result;
    }
    if (data.size() > 65536 &&
        ::fcntl(g.in[1], F_SETPIPE_SZ, static_cast<int>(kMaxStdinBytes)) < 0) {
      result.error = "stdin data too large for a pipe: " + errno_text(errno);
      return result;
    }
    std::size_t written = 0;
    while (written < data.size()) {
      const ssize_t n = ::write(g.in[1], data.data() + written, data.size() - written);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        result.error = "writing stdin: " + errno_text(errno);
        return result;
      }
      written += static_cast<std::size_t>(n);
    }
    close_fd(g.in[1]);  // the child sees EOF after the data
    // The child's end blocks, as a normal stdin does.
    const int fl = ::fcntl(g.in[0], F_GETFL);
    if (fl < 0 || ::fcntl(g.in[0], F_SETFL, fl & ~O_NONBLOCK) != 0) {
      result.error = "fcntl: " + errno_text(errno);
      return result;
    }
  }

  int rc = posix_spawn_file_actions_init(&g.actions);
  if (rc != 0) {
    result.error = "posix_spawn_file_actions_init: " + errno_text(rc);
    return result;
  }
  g.actions_ok = true;
  rc = posix_spawnattr_init(&g.attr);
  if (rc != 0) {
    result.error = "posix_spawnattr_init: " + errno_text(rc);
    return result;
  }
  g.attr_ok = true;

  // stdin from /dev/null (or the stdin pipe); stdout and stderr into their
  // pipes (dup2 clears O_CLOEXEC on 0, 1 and 2; the original pipe fds close
  // on exec).
  if ((rc = options.stdin_data
                ? posix_spawn_file_actions_adddup2(&g.actions, g.in[0], 0)
                : posix_spawn_file_actions_addopen(&g.actions, 0, "/dev/null", O_RDONLY, 0)) != 0 ||
      (rc = posix_spawn_file_actions_adddup2(&g.actions, g.out[1], 1)) != 0 ||
      (rc = posix_spawn_file_actions_adddup2(&g.actions, g.err[1], 2)) != 0) {
    result.error = "posix_spawn_file_actions: " + errno_text(rc);
    return result;
  }

  // Own process group; default signal dispositions and an empty mask, whatever
  // the calling thread has blocked or ignored (SIGPIPE, ...).
  sigset_t defaults;
  sigemptyset(&defaults);
  for (int s : {SIGPIPE, SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGCHLD, SIGUSR1, SIGUSR2, SIGALRM})
    sigaddset(&defaults, s);
  sigset_t empty;
  sigemptyset(&empty);
  if ((rc = posix_spawnattr_setflags(
           &g.attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK)) != 0 ||
      (rc = posix_spawnattr_setpgroup(&g.attr, 0)) != 0 ||
      (rc = posix_spawnattr_setsigdefault(&g.attr, &defaults)) != 0 ||
      (rc = posix_spawnattr_setsigmask(&g.attr, &empty)) != 0) {
    result.error = "posix_spawnattr: " + errno_text(rc);
    return result;
  }

  std::vector<char*> cargv;
  cargv.reserve(argv.size() + 1);
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);

  std::vector<char*> cenv;
  if (options.env) {
    cenv.reserve(options.env->size() + 1);
    for (const auto& e : *options.env) cenv.push_back(const_cast<char*>(e.c_str()));
    cenv.push_back(nullptr);
  }

  pid_t pid = -1;
  rc = posix_spawnp(&pid, cargv[0], &g.actions, &g.attr, cargv.data(),
                    options.env ? cenv.data() : environ);
  if (rc != 0) {
    result.error = "cannot start " + argv[0] + ": " + errno_text(rc);
    return result;
  }
  result.started = true;
  close_fd(g.in[0]);
  close_fd(g.out[1]);  // else we never see EOF
  close_fd(g.err[1]);

  // pidfd_open(2) through syscall(): glibc 2.36's <sys/pidfd.h> lacks
  // extern "C". The fd is always O_CLOEXEC; -1 on kernels before 5.3.
#ifdef SYS_pidfd_open
  int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
#else
  int pidfd = -1;
#endif

  const auto start = Clock::now();
  const auto deadline = start + std::max(timeout, std::chrono::milliseconds(0));
  auto kill_deadline = Clock::time_point::max();
  bool term_sent = false;
  bool kill_sent = false;
  bool no_child = false;
  bool cancelled = false;

  for (;;) {
    if (child_exited(pid, no_child)) break;

    const auto now = Clock::now();
    if (!term_sent && options.cancel && options.cancel->load()) cancelled = true;
    if (!term_sent && (now >= deadline || cancelled)) {
      ::killpg(pid, SIGTERM);
      term_sent = true;
      result.timed_out = true;
      kill_deadline = now + kKillGrace;
    }
    if (term_sent && !kill_sent && now >= kill_deadline) {
      ::killpg(pid, SIGKILL);
      kill_sent = true;
    }

    const auto next =
        kill_sent ? now + std::chrono::milliseconds(100) : (term_sent ? kill_deadline : deadline);
    long long wait_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(next - now).count() + 1;
    if (pidfd < 0) wait_ms = std::min<long long>(wait_ms, kTickMs);
    if (options.cancel) wait_ms = std::min<long long>(wait_ms, 200);
    wait_ms = std::clamp<long long>(wait_ms, 0, 1000);

    // Both pipes are read while waiting: a child blocked on a full pipe
    // would never exit.
    pollfd pfds[3];
    nfds_t n = 0;
    const int out_fd = g.out[0];
    const int err_fd = g.err[0];
    if (out_fd >= 0) pfds[n++] = pollfd{out_fd, POLLIN, 0};
    if (err_fd >= 0) pfds[n++] = pollfd{err_fd, POLLIN, 0};
    if (pidfd >= 0) pfds[n++] = pollfd{pidfd, POLLIN, 0};
    const int pr = ::poll(n ? pfds : nullptr, n, static_cast<int>(wait_ms));
    for (nfds_t i = 0; pr > 0 && i < n; ++i) {
      if (pfds[i].revents == 0) continue;
      if (pfds[i].fd == out_fd && !drain_pipe(out_fd, result.stdout_tail, kStdoutTailBytes))
        close_fd(g.out[0]);
      if (pfds[i].fd == err_fd && !drain_pipe(err_fd, result.stderr_tail, kStderrTailBytes))
        close_fd(g.err[0]);
    }
  }

  // Whatever the child wrote before exiting (grandchildren may keep the pipes
  // open: read only what is already there).
  if (g.out[0] >= 0) drain_pipe(g.out[0], result.stdout_tail, kStdoutTailBytes);
  if (g.err[0] >= 0) drain_pipe(g.err[0], result.stderr_tail, kStderrTailBytes);

  if (!no_child) {
    // Timed out: the leader is gone but members of its group may live on;
    // the group id is still ours while the leader is unreaped.
    if (result.timed_out) ::killpg(pid, SIGKILL);
    int status = 0;
    pid_t w;
    do {
      w = ::waitpid(pid, &status, 0);
    } while (w < 0 && errno == EINTR);
    if (w == pid) {
      if (WIFEXITED(status)) {
        result.exit_code = WEXITSTATUS(status);
      } else if (WIFSIGNALED(status)) {
        result.signal = WTERMSIG(status);
      }
    } else {
      no_child = true;
    }
  }
  close_fd(pidfd);

  trim_tail(result.stdout_tail, kStdoutTailBytes);
  trim_tail(result.stderr_tail, kStderrTailBytes);

  if (no_child) {
    result.error = "exit status unavailable (child reaped elsewhere)";
  } else if (cancelled) {
    result.error = std::string("cancelled") +
                   (kill_sent ? ", killed with SIGKILL" : ", terminated with SIGTERM");
  } else if (result.timed_out) {
    result.error = "timed out after " + std::to_string(timeout.count()) + " ms" +
                   (kill_sent ? ", killed with SIGKILL" : ", terminated with SIGTERM");
  } else if (result.signal != 0) {
    result.error = "killed by signal " + std::to_string(result.signal);
  } else if (result.exit_code != 0) {
    result.error = "exited with code " + std::to_string(result.exit_code);
  }
  return result;
}

}  // namespace sessiond
