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
  CHECK(r.output_tail == "ready\n");
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

TEST_CASE("output_tail captures stdout and stderr", "[process]") {
  const ProcessResult r =
      run_process({"/bin/sh", "-c", "echo hello; echo oops 1>&2; echo world"}, 2000ms);
  CHECK(r.started);
  CHECK(r.exit_code == 0);
  CHECK(r.output_tail == "hello\noops\nworld\n");

  const ProcessResult echo = run_process({"echo", "a b", "c"}, 2000ms);  // no shell splitting
  CHECK(echo.output_tail == "a b c\n");
}

TEST_CASE("output_tail keeps only the last 4 KB", "[process]") {
  const ProcessResult r = run_process(
      {"/bin/sh", "-c", "i=0; while [ $i -lt 3000 ]; do echo line$i; i=$((i+1)); done"}, 2500ms);
  CHECK(r.started);
  CHECK(r.exit_code == 0);
  CHECK(r.output_tail.size() == 4096);
  const std::string end = "line2999\n";
  REQUIRE(r.output_tail.size() >= end.size());
  CHECK(r.output_tail.compare(r.output_tail.size() - end.size(), end.size(), end) == 0);
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
    CHECK(r.output_tail == "t" + std::to_string(i) + "\n");
  }
  CHECK(open_fd_count() == before);

  // The child inherits nothing of ours beyond stdin/stdout/stderr: its fds are
  // 0-2, whatever this process already had without FD_CLOEXEC (from the
  // harness), and the one `ls` opens itself.
  const std::set<int> inheritable = inheritable_fds();
  const ProcessResult fds = run_process({"ls", "/proc/self/fd"}, 2000ms);
  CHECK(fds.exit_code == 0);
  std::set<int> child;
  std::istringstream in(fds.output_tail);
  for (int fd; in >> fd;) child.insert(fd);
  int unexpected = 0;
  for (int fd : child) {
    if (fd > 2 && !inheritable.count(fd)) ++unexpected;
  }
  CHECK(child.count(0) + child.count(1) + child.count(2) == 3);
  CHECK(unexpected <= 1);
}
