// Chromium over --remote-debugging-pipe: launch, pipe I/O, stop (see
// browser_process.hpp).
//
// fork + exec rather than posix_spawn: the child must set PR_SET_PDEATHSIG
// (so a crashed daemon takes the browser with it) and map the pipes to the
// fixed fds 3 and 4. Everything the child needs is prepared before fork();
// between fork and exec it only makes async-signal-safe calls.

#include "sessiond/browser_process.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

extern char** environ;

namespace sessiond {
namespace {

using Clock = std::chrono::steady_clock;

std::string errno_text(int err) {
  char buf[256];
  const char* msg = strerror_r(err, buf, sizeof buf);  // GNU: may not use buf
  return msg ? std::string(msg) : "errno " + std::to_string(err);
}

void close_fd(int& fd) {
  if (fd >= 0) {
    ::close(fd);
    fd = -1;
  }
}

// A descriptor number >= 10, close-on-exec: the child's dup2() onto 3 and 4
// then never meets a source that already is 3 or 4 (dup2 onto itself would
// keep FD_CLOEXEC and the browser would start without its pipe).
int high_fd(int fd) {
  const int hi = ::fcntl(fd, F_DUPFD_CLOEXEC, 10);
  ::close(fd);
  return hi;
}

// The Browser.close command stop() writes. Chromium wants ids that fit an
// int32 (a larger one is dropped as malformed); INT32_MAX is far above what
// the pool's correlator uses in a browser's lifetime, so the reply is ignored.
constexpr const char kBrowserClose[] = R"({"id":2147483647,"method":"Browser.close"})";

constexpr const char kProfilePrefix[] = "sessiond-chromium-";

std::string profile_parent(const std::string& temp_dir) {
  if (!temp_dir.empty()) return temp_dir;
  const char* t = std::getenv("TMPDIR");
  return (t && *t) ? t : "/tmp";
}

bool is_headless_shell(const std::string& path) {
  return path.find("headless-shell") != std::string::npos ||
         path.find("headless_shell") != std::string::npos;
}

}  // namespace

int remove_stale_profile_dirs(const std::string& temp_dir) {
  int removed = 0;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(profile_parent(temp_dir), ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(kProfilePrefix, 0) != 0) continue;
    const std::string rest = name.substr(sizeof kProfilePrefix - 1);
    const auto dash = rest.find('-');
    if (dash == std::string::npos || dash == 0 || dash > 9 ||
        rest.find_first_not_of("0123456789") != dash)
      continue;  // not ours, or from before pids were in the name
    const pid_t pid = static_cast<pid_t>(std::stol(rest.substr(0, dash)));
    // Our own pid: an earlier incarnation (a container restart reuses pids);
    // we start no browser before this runs.
    if (pid != ::getpid() && (::kill(pid, 0) == 0 || errno != ESRCH)) continue;  // in use
    std::error_code rm;
    std::filesystem::remove_all(entry.path(), rm);
    if (!rm) ++removed;
  }
  return removed;
}

std::vector<std::string> chromium_args(const BrowserLaunchOptions& options,
                                       const std::string& user_data_dir) {
  std::vector<std::string> args = {options.path};
  args.push_back(is_headless_shell(options.path) ? "--headless" : "--headless=new");
  if (::geteuid() == 0 || !options.sandbox)
    args.push_back("--no-sandbox");  // as root Chromium refuses to run otherwise
  const char* const kSwitches[] = {
      // Background work nobody asked for (after Playwright's chromiumSwitches.ts).
      "--disable-field-trial-config",
      "--disable-background-networking",
      "--disable-background-timer-throttling",
      "--disable-backgrounding-occluded-windows",
      "--disable-back-forward-cache",  // a page left behind must not stay alive
      "--disable-breakpad",
      "--disable-crash-reporter",
      "--disable-client-side-phishing-detection",
      "--disable-component-extensions-with-background-pages",
      "--disable-component-update",
      "--disable-default-apps",
      "--disable-dev-shm-usage",
      "--disable-extensions",
      "--disable-sync",
      "--disable-domain-reliability",
      "--disable-hang-monitor",
      "--disable-ipc-flooding-protection",
      "--disable-popup-blocking",
      "--disable-prompt-on-repost",
      "--disable-renderer-backgrounding",
      "--disable-gpu",
      "--disable-search-engine-choice-screen",
      "--metrics-recording-only",
      "--no-default-browser-check",
      "--no-first-run",
      "--no-service-autorun",
      "--password-store=basic",
      "--use-mock-keychain",
      "--mute-audio",
      "--hide-scrollbars",
      "--force-color-profile=srgb",
      "--allow-pre-commit-input",
      // Only the last --disable-features counts: one flag for all of them.
      // ThirdPartyStoragePartitioning off: an iframe's storage is keyed by its
      // origin alone, so clearing an origin between accounts clears it all.
      "--disable-features=ImprovedCookieControls,LazyFrameLoading,GlobalMediaControls,"
      "DestroyProfileOnBrowserClose,MediaRouter,DialMediaRouteProvider,AcceptCHFrame,"
      "AutoExpandDetailsElement,CertificateTransparencyComponentUpdater,"
      "AvoidUnnecessaryBeforeUnloadCheckSync,Translate,HttpsUpgrades,PaintHolding,"
      "ThirdPartyStoragePartitioning,OptimizationHints,MediaEngagementBypassAutoplayPolicies,"
      "InterestFeedContentSuggestions,CalculateNativeWinOcclusion,BackForwardCache",
      "--remote-debugging-pipe",
      "--no-startup-window",
  };
  for (const char* s : kSwitches) args.emplace_back(s);
  args.push_back("--user-data-dir=" + user_data_dir);
  for (const auto& a : options.extra_args) args.push_back(a);
  return args;
}

ProcessTreeUsage process_group_usage(pid_t pgid, bool with_pss) {
  ProcessTreeUsage u;
  if (pgid <= 0) return u;
  const double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
  const std::uint64_t page = static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
  DIR* proc = ::opendir("/proc");
  if (!proc) return u;
  while (dirent* e = ::readdir(proc)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    const std::string dir = std::string("/proc/") + e->d_name;
    std::ifstream stat_in(dir + "/stat");
    std::string line;
    if (!std::getline(stat_in, line)) continue;  // exited meanwhile
    // Fields after the command name (which may contain spaces and ')').
    const auto close = line.rfind(')');
    if (close == std::string::npos || close + 2 > line.size()) continue;
    std::istringstream rest(line.substr(close + 2));
    std::string field;
    long pgrp = -1;
    double cpu = 0;
    std::uint64_t rss_pages = 0;
    // rest starts at field 3 (state): pgrp=5, utime..cstime=14..17, rss=24.
    for (int i = 3; rest >> field; ++i) {
      if (i == 5) {
        pgrp = std::strtol(field.c_str(), nullptr, 10);
        if (pgrp != pgid) break;
      } else if (i >= 14 && i <= 17) {
        cpu += std::strtod(field.c_str(), nullptr) / ticks;
      } else if (i == 24) {
        rss_pages = std::strtoull(field.c_str(), nullptr, 10);
        break;
      }
    }
    if (pgrp != pgid) continue;
    if (line[close + 2] == 'Z') continue;  // exited, waiting for init to reap it
    ++u.processes;
    u.cpu_seconds += cpu;
    u.rss_bytes += rss_pages * page;
    if (with_pss) {
      std::ifstream rollup(dir + "/smaps_rollup");
      std::string key;
      while (rollup >> key) {
        if (key == "Pss:") {
          std::uint64_t kb = 0;
          rollup >> kb;
          u.pss_bytes += kb * 1024;
          break;
        }
        rollup.ignore(1 << 12, '\n');
      }
    }
  }
  ::closedir(proc);
  return u;
}

std::unique_ptr<BrowserProcess> BrowserProcess::launch(const BrowserLaunchOptions& options,
                                                       std::string& error) {
  if (::access(options.path.c_str(), X_OK) != 0) {
    error = "browser not executable: " + options.path + ": " + errno_text(errno);
    return nullptr;
  }
  const std::string parent = profile_parent(options.temp_dir);
  // The pid in the name tells a later start whose directory it was.
  std::string templ = parent + "/" + kProfilePrefix + std::to_string(::getpid()) + "-XXXXXX";
  if (!::mkdtemp(templ.data())) {
    error = "cannot create a profile directory in " + parent + ": " + errno_text(errno);
    return nullptr;
  }
  std::unique_ptr<BrowserProcess> b(new BrowserProcess());
  b->user_data_dir_ = templ;
  b->reaped_ = true;  // nothing to reap until fork() succeeded

  // Everything the child needs, before fork().
  const std::vector<std::string> args = chromium_args(options, b->user_data_dir_);
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);

  int cmd[2] = {-1, -1}, reply[2] = {-1, -1}, status[2] = {-1, -1};
  auto close_all = [&] {
    for (int* p : {cmd, reply, status}) {
      close_fd(p[0]);
      close_fd(p[1]);
    }
  };
  if (::pipe2(cmd, O_CLOEXEC) != 0 || ::pipe2(reply, O_CLOEXEC) != 0 ||
      ::pipe2(status, O_CLOEXEC) != 0) {
    error = "pipe2: " + errno_text(errno);
    close_all();
    return nullptr;  // the destructor removes the directory
  }
  cmd[0] = high_fd(cmd[0]);      // the browser reads commands here (its fd 3)
  reply[1] = high_fd(reply[1]);  // the browser writes replies here (its fd 4)
  status[1] = high_fd(status[1]);
  const int devnull = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  int err_out = devnull;
  if (!options.stderr_path.empty())
    err_out = ::open(options.stderr_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (devnull < 0 || err_out < 0 || cmd[0] < 0 || reply[1] < 0 || status[1] < 0) {
    error = "cannot prepare descriptors: " + errno_text(errno);
    if (err_out != devnull && err_out >= 0) ::close(err_out);
    if (devnull >= 0) ::close(devnull);
    close_all();
    return nullptr;
  }
  const pid_t parent_pid = ::getpid();

  const pid_t pid = ::fork();
  if (pid == 0) {
    // Child: async-signal-safe calls only.
    ::setpgid(0, 0);
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent_pid) ::_exit(127);  // the parent died before prctl
    ::signal(SIGPIPE, SIG_DFL);                   // ignored dispositions survive exec
    sigset_t none;
    ::sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    if (::dup2(devnull, 0) < 0 || ::dup2(devnull, 1) < 0 || ::dup2(err_out, 2) < 0 ||
        ::dup2(cmd[0], 3) < 0 || ::dup2(reply[1], 4) < 0 || ::dup3(status[1], 5, O_CLOEXEC) < 0) {
      const int e = errno;
      (void)!::write(status[1], &e, sizeof e);
      ::_exit(127);
    }
    // Nothing else leaks into the browser, whatever other threads opened
    // without O_CLOEXEC (fd 5 closes itself on exec).
    ::syscall(SYS_close_range, 6U, ~0U, 0U);
    ::execve(argv[0], argv.data(), environ);
    const int e = errno;
    (void)!::write(5, &e, sizeof e);
    ::_exit(127);
  }
  const int fork_errno = errno;
  if (err_out != devnull) ::close(err_out);
  ::close(devnull);
  close_fd(cmd[0]);
  close_fd(reply[1]);
  close_fd(status[1]);
  if (pid < 0) {
    error = "fork: " + errno_text(fork_errno);
    close_all();
    return nullptr;
  }
  ::setpgid(pid, pid);  // also here: no window in which a kill misses the group
  b->pid_ = pid;
  b->reaped_ = false;
  b->command_fd_ = cmd[1];
  b->reply_fd_ = reply[0];
  cmd[1] = reply[0] = -1;

  // EOF on the status pipe: exec succeeded; an int: the child's errno.
  int child_errno = 0;
  ssize_t n;
  do n = ::read(status[0], &child_errno, sizeof child_errno);
  while (n < 0 && errno == EINTR);
  close_all();
  if (n > 0) {
    error = "cannot execute " + options.path + ": " + errno_text(child_errno);
    return nullptr;  // the destructor reaps the child and removes the directory
  }
  ::fcntl(b->command_fd_, F_SETFL, ::fcntl(b->command_fd_, F_GETFL) | O_NONBLOCK);
  ::fcntl(b->reply_fd_, F_SETFL, ::fcntl(b->reply_fd_, F_GETFL) | O_NONBLOCK);
  return b;
}

BrowserProcess::~BrowserProcess() {
  finish();
}

bool BrowserProcess::write(std::string_view bytes) {
  if (command_fd_ < 0) return false;
  out_.append(bytes);
  return flush();
}

bool BrowserProcess::flush() {
  if (command_fd_ < 0) return false;
  while (!out_.empty()) {
    const ssize_t n = ::write(command_fd_, out_.data(), out_.size());
    if (n > 0) {
      out_.erase(0, static_cast<std::size_t>(n));
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      return true;  // the rest on POLLOUT
    } else {
      out_.clear();
      return false;
    }
  }
  return true;
}

ssize_t BrowserProcess::read_some(char* buf, std::size_t size) {
  if (reply_fd_ < 0) return 0;
  ssize_t n;
  do n = ::read(reply_fd_, buf, size);
  while (n < 0 && errno == EINTR);
  return n;
}

bool BrowserProcess::exited() {
  if (reaped_) return true;
  // WNOWAIT first: while the exited browser is an unreaped zombie its pid
  // (= the group id) cannot be reused, so the group kill below cannot hit an
  // unrelated process.
  siginfo_t info{};
  if (::waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOHANG | WNOWAIT) != 0) {
    if (errno == ECHILD) reaped_ = true;  // someone else reaped it
    return reaped_;
  }
  if (info.si_pid != pid_) return false;  // still running
  ::kill(-pid_, SIGKILL);                 // helpers the browser left behind in its group
  int st = 0;
  while (::waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
  }
  reaped_ = true;
  return true;
}

void BrowserProcess::stop(std::chrono::milliseconds grace) {
  if (!reaped_ && command_fd_ >= 0) {
    out_.clear();  // half-written commands would garble Browser.close
    out_.assign(kBrowserClose, sizeof kBrowserClose);  // includes the terminating NUL
    flush();
    // Wait for the browser to exit by itself (EOF on fd 4, then waitpid).
    const auto deadline = Clock::now() + grace;
    char buf[4096];
    bool eof = reply_fd_ < 0;
    while (!exited() && Clock::now() < deadline) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (eof) {
        // No fd left to wait on: short sleeps until the grace ends.
        ::usleep(static_cast<useconds_t>(std::min<long long>(left.count(), 10) * 1000));
        continue;
      }
      pollfd p{reply_fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(std::max<long long>(left.count(), 1))) > 0) {
        const ssize_t n = read_some(buf, sizeof buf);  // replies are dropped
        if (n == 0 || (n < 0 && errno != EAGAIN)) eof = true;
      }
    }
  }
  finish();
}

void BrowserProcess::kill() {
  finish();
}

void BrowserProcess::finish() {
  if (pid_ > 0 && !reaped_) {
    // The unreaped browser keeps the group id ours: no kill after the reap.
    ::kill(-pid_, SIGKILL);  // the whole group, also helpers that outlived the browser
    int st = 0;
    while (::waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
    }
    reaped_ = true;
  }
  close_fd(command_fd_);
  close_fd(reply_fd_);
  out_.clear();
  if (!user_data_dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(user_data_dir_, ec);
    user_data_dir_.clear();
  }
}

}  // namespace sessiond
