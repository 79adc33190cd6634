#include <catch2/catch.hpp>

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>

#include <chrono>
#include <cstdlib>
#include <future>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "sessiond/process_runner.hpp"

using namespace sessiond;
using namespace std::chrono_literals;

namespace {

int open_fd_count() {
  int n = 0;
  if (DIR* d = ::opendir("/proc/self/fd")) {
    while (::readdir(d) != nullptr) ++n;
    ::closedir(d);
  }
  return n;
}

std::set<int> inheritable_fds() {
  std::set<int> out;
  if (DIR* d = ::opendir("/proc/self/fd")) {
    while (dirent* e = ::readdir(d)) {
      if (e->d_name[0] == '.') continue;
      const int fd = std::atoi(e->d_name);
      if (fd == ::dirfd(d)) continue;
      const int flags = ::fcntl(fd, F_GETFD);
      if (flags >= 0 && !(flags & FD_CLOEXEC)) out.insert(fd);
    }
    ::closedir(d);
  }
  return out;
}

}  // namespace

TEST_CASE("exit code of a normal exit", "[process]") {
  const ProcessResult r = run_process({"/bin/sh", "-c", "exit 3"}, 2000ms);
  CHECK(r.started);
  CHECK_FALSE(r.timed_out);
  CHECK(r.exit_code == 3);
  CHECK(r.signal == 0);

  const ProcessResult ok = run_process({"true"}, 2000ms);  // found via PATH
  CHECK(ok.started);
  CHECK(ok.exit_code == 0);
  CHECK(ok.error.empty());
}

TEST_CASE("a command over its timeout is terminated", "[process]") {
  const auto t0 = std::chrono::steady_clock::now();
  const ProcessResult r = run_process({"sleep", "5"}, 200ms);
  const auto took = std::chrono::steady_clock::now() - t0;
  CHECK(r.started);
  CHECK(r.timed_out);
  CHECK(r.signal == SIGTERM);
  CHECK(r.exit_code == -1);
  CHECK(took >= 200ms);
  CHECK(took < 1500ms);
}

TEST_CASE("a command ignoring SIGTERM is killed after the grace period", "[process]") {
  const auto t0 = std::chrono::steady_clock::now();
  // the shell and its sleep child (same process group) both ignore SIGTERM
  const ProcessResult r =
      run_process({"/bin/sh", "-c", "trap '' TERM; echo ready; sleep 5; echo never"}, 200ms);
  const auto took = std::chrono::steady_clock::now() - t0;
  CHECK(r.started);
  CHECK(r.timed_out);
  CHECK(r.signal == SIGKILL);
  CHECK(r.stdout_tail == "ready\n");
  CHECK(took >= 1100ms);
  CHECK(took < 2500ms);
}

TEST_CASE("a missing binary does not start", "[process]") {
  const ProcessResult r = run_process({"/nonexistent/definitely-not-here", "x"}, 1000ms);
  CHECK_FALSE(r.started);
  CHECK_FALSE(r.timed_out);
  CHECK(r.error.find("No such file") != std::string::npos);

  const ProcessResult viapath = run_process({"definitely-not-a-command-sessiond"}, 1000ms);
  CHECK_FALSE(viapath.started);
  CHECK_FALSE(viapath.error.empty());

  const ProcessResult empty = run_process({}, 1000ms);
  CHECK_FALSE(empty.started);
  CHECK_FALSE(empty.error.empty());
}

TEST_CASE("stdout and stderr are captured apart", "[process]") {
  const ProcessResult r =
      run_process({"/bin/sh", "-c", "echo hello; echo oops 1>&2; echo world"}, 2000ms);
  CHECK(r.started);
  CHECK(r.exit_code == 0);
  CHECK(r.stdout_tail == "hello\nworld\n");
  CHECK(r.stderr_tail == "oops\n");

  const ProcessResult echo = run_process({"echo", "a b", "c"}, 2000ms);  // no shell splitting
  CHECK(echo.stdout_tail == "a b c\n");
}

TEST_CASE("stdout_tail keeps only the last 4 KB", "[process]") {
  const ProcessResult r = run_process(
      {"/bin/sh", "-c", "i=0; while [ $i -lt 3000 ]; do echo line$i; i=$((i+1)); done"}, 2500ms);
  CHECK(r.started);
  CHECK(r.exit_code == 0);
  CHECK(r.stdout_tail.size() == 4096);
  const std::string end = "line2999\n";
  REQUIRE(r.stdout_tail.size() >= end.size());
  CHECK(r.stdout_tail.compare(r.stdout_tail.size() - end.size(), end.size(), end) == 0);
}

TEST_CASE("stderr_tail keeps only the last kStderrTailBytes", "[process]") {
  const ProcessResult r = run_process(
      {"/bin/sh", "-c", "i=0; while [ $i -lt 2000 ]; do echo err$i >&2; i=$((i+1)); done"}, 2500ms);
  CHECK(r.exit_code == 0);
  CHECK(r.stdout_tail.empty());
  CHECK(r.stderr_tail.size() == kStderrTailBytes);
  const std::string end = "err1999\n";
  REQUIRE(r.stderr_tail.size() >= end.size());
  CHECK(r.stderr_tail.compare(r.stderr_tail.size() - end.size(), end.size(), end) == 0);
}

TEST_CASE("a child filling both pipes is read while it runs", "[process]") {
  // 1 MB on each stream, far beyond a pipe's buffer: unread, the child blocks.
  const ProcessResult r = run_process({"/bin/sh", "-c",
                                       "head -c 1048576 /dev/zero >&2 & "
                                       "head -c 1048576 /dev/zero; wait; echo done >&2"},
                                      5000ms);
  CHECK_FALSE(r.timed_out);
  CHECK(r.exit_code == 0);
  CHECK(r.stdout_tail.size() == kStdoutTailBytes);
  CHECK(r.stderr_tail.size() == kStderrTailBytes);
  CHECK(r.stderr_tail.substr(r.stderr_tail.size() - 5) == "done\n");
}

TEST_CASE("options.env is the child's whole environment", "[process]") {
  ::setenv("SESSIOND_ADMIN_TOKEN", "admin-token-of-the-test", 1);
  ProcessOptions clean;
  clean.env = std::vector<std::string>{"PATH=/usr/bin:/bin", "ONLY_THIS=1"};
  const ProcessResult r = run_process({"env"}, 2000ms, clean);
  const ProcessResult inherited =
      run_process({"/bin/sh", "-c", "echo \"x$SESSIOND_ADMIN_TOKEN\""}, 2000ms);
  ::unsetenv("SESSIOND_ADMIN_TOKEN");
  CHECK(r.exit_code == 0);
  CHECK(r.stdout_tail == "PATH=/usr/bin:/bin\nONLY_THIS=1\n");
  // Without options the child inherits ours (the exec step always passes one).
  CHECK(inherited.stdout_tail == "xadmin-token-of-the-test\n");
}

TEST_CASE("run_process leaks no descriptors and works from several threads", "[process]") {
  const int before = open_fd_count();
  std::vector<std::future<ProcessResult>> runs;
  for (int i = 0; i < 4; ++i) {
    runs.push_back(std::async(std::launch::async, [i] {
      return run_process({"/bin/sh", "-c", "echo t$0; exit $0", std::to_string(i)}, 2000ms);
    }));
  }
  for (int i = 0; i < 4; ++i) {
    REQUIRE(runs[i].wait_for(2500ms) == std::future_status::ready);
    const ProcessResult r = runs[i].get();
    CHECK(r.started);
    CHECK(r.exit_code == i);
    CHECK(r.stdout_tail == "t" + std::to_string(i) + "\n");
  }
  CHECK(open_fd_count() == before);

  // The child inherits nothing of ours beyond stdin/stdout/stderr: its fds are
  // 0-2, whatever this process already had without FD_CLOEXEC (from the
  // harness), and the one `ls` opens itself.
  const std::set<int> inheritable = inheritable_fds();
  const ProcessResult fds = run_process({"ls", "/proc/self/fd"}, 2000ms);
  CHECK(fds.exit_code == 0);
  std::set<int> child;
  std::istringstream in(fds.stdout_tail);
  for (int fd; in >> fd;) child.insert(fd);
  int unexpected = 0;
  for (int fd : child) {
    if (fd > 2 && !inheritable.count(fd)) ++unexpected;
  }
  CHECK(child.count(0) + child.count(1) + child.count(2) == 3);
  CHECK(unexpected <= 1);
}
