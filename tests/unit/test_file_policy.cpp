// The file policies of a refresh cycle as plain functions: what happens to a
// logged-out session's file (dispose_logged_out) and an exec step (a private
// copy, a real command, its exit status mapped to a verdict). Real temp
// directories, real processes.

#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <variant>
#include <vector>

#include "sessiond/exec_step.hpp"
#include "sessiond/session_disposal.hpp"
#include "sessiond/session_file.hpp"
#include "test_support.hpp"

using namespace sessiond;
using sessiond::testing::TempDir;
using namespace std::chrono_literals;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

std::string read_raw(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

json session_doc(const std::string& marker) {
  return json{{"cookies", sessiond::testing::sample_cookies()},
              {"origins", json::array()},
              {"note", marker}};
}

// The document as the session actor hands it over: marked invalid.
json marked_invalid(json doc) {
  KeepaliveBlock k = read_keepalive(doc);
  k.state = "invalid";
  k.last_error = "check: logged out (HTTP 401)";
  k.invalid_since = "2026-12-01T10:00:00.000Z";
  write_keepalive(doc, k);
  return doc;
}

// Writes a session file as the login bot does and returns its identity.
FileIdentity bot_writes(const std::string& path, const json& doc) {
  auto written = write_file_atomic(path, serialize_session(doc));
  REQUIRE(std::holds_alternative<FileIdentity>(written));
  return std::get<FileIdentity>(written);
}

json load_doc(const std::string& path) {
  auto loaded = load_session_file(path);
  REQUIRE(std::holds_alternative<LoadedSession>(loaded));
  return std::get<LoadedSession>(loaded).doc;
}

std::vector<std::string> list_dir(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (auto& e : fs::directory_iterator(dir, ec)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

TEST_CASE("dispose_logged_out delete unlinks the version it read", "[file_policy]") {
  TempDir dir;
  const std::string path = session_path(dir.path, "acct1");
  auto read_version = bot_writes(path, session_doc("v1"));

  bool in_place_when_announced = false;
  auto out =
      dispose_logged_out(path, dir.path, OnLoggedOut::remove, marked_invalid(session_doc("v1")),
                         read_version, [&] { in_place_when_announced = fs::exists(path); });
  CHECK(in_place_when_announced);
  CHECK_FALSE(out.changed_on_disk);
  CHECK_FALSE(out.error);
  CHECK(out.where == path);
  CHECK_FALSE(fs::exists(path));
  CHECK_FALSE(fs::exists(dir.path + "/invalid"));
}

TEST_CASE("dispose_logged_out mark rewrites the file with the invalid block", "[file_policy]") {
  TempDir dir;
  const std::string path = session_path(dir.path, "acct1");
  auto read_version = bot_writes(path, session_doc("v1"));

  auto out = dispose_logged_out(path, dir.path, OnLoggedOut::mark,
                                marked_invalid(session_doc("v1")), read_version);
  CHECK_FALSE(out.changed_on_disk);
  CHECK_FALSE(out.error);
  CHECK(out.where == path);
  json on_disk = load_doc(path);
  CHECK(read_keepalive(on_disk).state == "invalid");
  CHECK(read_keepalive(on_disk).last_error ==
        std::optional<std::string>("check: logged out (HTTP 401)"));
  CHECK(on_disk["note"] == "v1");
  CHECK(on_disk["cookies"] == sessiond::testing::sample_cookies());
  CHECK_FALSE(fs::exists(dir.path + "/invalid"));
}

TEST_CASE("dispose_logged_out quarantine moves the marked file to invalid/", "[file_policy]") {
  TempDir dir;
  const std::string path = session_path(dir.path, "acct1");
  auto read_version = bot_writes(path, session_doc("v1"));

  bool in_place_when_announced = false;
  auto out =
      dispose_logged_out(path, dir.path, OnLoggedOut::quarantine, marked_invalid(session_doc("v1")),
                         read_version, [&] { in_place_when_announced = fs::exists(path); });
  CHECK(in_place_when_announced);
  CHECK_FALSE(out.changed_on_disk);
  REQUIRE_FALSE(out.error);
  CHECK(out.where == session_path(dir.path + "/invalid", "acct1"));
  CHECK_FALSE(fs::exists(path));
  json moved = load_doc(out.where);
  CHECK(read_keepalive(moved).state == "invalid");
  CHECK(moved["note"] == "v1");
  struct stat st {};
  REQUIRE(::stat((dir.path + "/invalid").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0700);
}

TEST_CASE("dispose_logged_out quarantine never overwrites an earlier quarantined file",
          "[file_policy]") {
  TempDir dir;
  const std::string path = session_path(dir.path, "acct1");
  auto first = bot_writes(path, session_doc("first login"));
  auto out1 = dispose_logged_out(path, dir.path, OnLoggedOut::quarantine,
                                 marked_invalid(session_doc("first login")), first);
  REQUIRE_FALSE(out1.error);

  // The bot logs the account in again; the site logs it out again.
  auto second = bot_writes(path, session_doc("second login"));
  auto out2 = dispose_logged_out(path, dir.path, OnLoggedOut::quarantine,
                                 marked_invalid(session_doc("second login")), second);
  REQUIRE_FALSE(out2.error);
  CHECK(out2.where != out1.where);
  CHECK(load_doc(out1.where)["note"] == "first login");
  CHECK(load_doc(out2.where)["note"] == "second login");
  CHECK(list_dir(dir.path + "/invalid").size() == 2);
  CHECK_FALSE(fs::exists(path));
}

TEST_CASE("dispose_logged_out leaves a file the bot rewrote meanwhile untouched", "[file_policy]") {
  auto mode = GENERATE(OnLoggedOut::remove, OnLoggedOut::mark, OnLoggedOut::quarantine);
  CAPTURE(static_cast<int>(mode));
  TempDir dir;
  const std::string path = session_path(dir.path, "acct1");
  auto read_version = bot_writes(path, session_doc("old login"));
  // Between the refresh that read v1 and the disposal: a new login.
  bot_writes(path, session_doc("new login"));
  const std::string bytes_before = read_raw(path);

  int announced = 0;
  auto out = dispose_logged_out(path, dir.path, mode, marked_invalid(session_doc("old login")),
                                read_version, [&] { ++announced; });
  CHECK(out.changed_on_disk);
  CHECK(announced == 0);
  CHECK_FALSE(out.error);
  CHECK(read_raw(path) == bytes_before);
  CHECK_FALSE(fs::exists(dir.path + "/invalid"));
  CHECK(list_dir(dir.path) == std::vector<std::string>{"session-acct1.json"});
}

TEST_CASE("dispose_logged_out with the file already gone changes nothing", "[file_policy]") {
  auto mode = GENERATE(OnLoggedOut::remove, OnLoggedOut::mark, OnLoggedOut::quarantine);
  CAPTURE(static_cast<int>(mode));
  TempDir dir;
  const std::string path = session_path(dir.path, "acct1");
  auto read_version = bot_writes(path, session_doc("v1"));
  REQUIRE(::unlink(path.c_str()) == 0);

  auto out =
      dispose_logged_out(path, dir.path, mode, marked_invalid(session_doc("v1")), read_version);
  CHECK(out.changed_on_disk);
  CHECK_FALSE(fs::exists(path));
  CHECK(list_dir(dir.path).empty());
}

TEST_CASE("dispose_logged_out reports a write failure", "[file_policy]") {
  TempDir dir;
  const std::string path = session_path(dir.path, "acct1");
  auto read_version = bot_writes(path, session_doc("v1"));
  // invalid/ cannot be created: a plain file holds its name (works as root too).
  { std::ofstream(dir.path + "/invalid") << "not a directory"; }

  auto out = dispose_logged_out(path, dir.path, OnLoggedOut::quarantine,
                                marked_invalid(session_doc("v1")), read_version);
  CHECK_FALSE(out.changed_on_disk);
  REQUIRE(out.error);
  CHECK(out.error->kind == FileErrorKind::write);
  // The mark was written before the move failed; the file stays in place.
  CHECK(read_keepalive(load_doc(path)).state == "invalid");
}

// -- exec step --------------------------------------------------------------

namespace {

ExecJob job_running(std::vector<std::string> argv, std::chrono::milliseconds timeout = 10s) {
  ExecJob job;
  job.session_id = "acct1";
  job.session = session_doc("handed over");
  job.argv = std::move(argv);
  job.base_url = "http://127.0.0.1:1";
  job.timeout = timeout;
  return job;
}

ExecJob shell_job(const std::string& script, std::chrono::milliseconds timeout = 10s) {
  // $0 is the copy: the script never needs quoting of the path.
  return job_running({"/bin/sh", "-c", script, "{file}"}, timeout);
}

}  // namespace

TEST_CASE("exec: exit 0 with an updated copy is logged in", "[file_policy]") {
  TempDir dir;
  const std::string seen = dir.path + "/seen";
  // Record what the command got, then update the copy as a login script would.
  auto job = job_running({"/bin/sh", "-c",
                          "printf '%s\\n%s\\n%s\\n' \"$0\" \"$1\" \"$2\" > " + seen +
                              " && stat -c %a \"$0\" >> " + seen +
                              " && sed -i 's/handed over/updated by the command/' \"$0\"",
                          "{file}", "{id}", "{base_url}"});
  auto out = run_exec_job(job);
  CHECK(out.process.started);
  CHECK(out.process.exit_code == 0);
  CHECK_FALSE(out.copy_error);
  REQUIRE(out.updated);
  CHECK(out.updated->doc["note"] == "updated by the command");
  CHECK(out.updated->doc["cookies"] == sessiond::testing::sample_cookies());

  std::istringstream lines(read_raw(seen));
  std::string copy, id, base_url, mode;
  std::getline(lines, copy);
  std::getline(lines, id);
  std::getline(lines, base_url);
  std::getline(lines, mode);
  CHECK(fs::path(copy).filename() == "session-acct1.json");
  CHECK(fs::path(copy).parent_path().filename().string().rfind("sessiond-exec-", 0) == 0);
  CHECK(id == "acct1");
  CHECK(base_url == "http://127.0.0.1:1");
  CHECK(mode == "600");
  CHECK_FALSE(fs::exists(fs::path(copy).parent_path()));  // the private directory is removed

  auto v = exec_verdict(out);
  CHECK(v.verdict == Verdict::logged_in);
  CHECK(v.detail == "exit status 0");
  CHECK(exec_code_label(out.process) == "exec_0");
}

TEST_CASE("exec: exit 3 is logged out", "[file_policy]") {
  auto out = run_exec_job(shell_job("exit 3"));
  CHECK(out.updated);  // the copy is still readable; it does not matter
  auto v = exec_verdict(out);
  CHECK(v.verdict == Verdict::logged_out);
  CHECK(v.detail == "command exit status 3");
  CHECK(exec_code_label(out.process) == "exec_3");
}

TEST_CASE("exec: another non-zero status is transient", "[file_policy]") {
  auto out = run_exec_job(shell_job("exit 7"));
  auto v = exec_verdict(out);
  CHECK(v.verdict == Verdict::transient);
  CHECK(v.detail == "command exit status 7");
  CHECK(exec_code_label(out.process) == "exec_7");
}

TEST_CASE("exec: a timeout is transient", "[file_policy]") {
  const auto started = std::chrono::steady_clock::now();
  auto out = run_exec_job(job_running({"sleep", "30"}, 200ms));
  CHECK(std::chrono::steady_clock::now() - started < 10s);
  CHECK(out.process.timed_out);
  auto v = exec_verdict(out);
  CHECK(v.verdict == Verdict::transient);
  CHECK(v.detail == "command timed out");
  CHECK(exec_code_label(out.process) == "exec_error");
}

TEST_CASE("exec: death by a signal is transient", "[file_policy]") {
  auto out = run_exec_job(shell_job("kill -KILL $$"));
  CHECK(out.process.signal == 9);
  auto v = exec_verdict(out);
  CHECK(v.verdict == Verdict::transient);
  CHECK(v.detail == "command killed by signal 9");
  CHECK(exec_code_label(out.process) == "exec_error");
}

TEST_CASE("exec: a command that does not start is transient", "[file_policy]") {
  auto out = run_exec_job(job_running({"/nonexistent/sessiond-no-such-command", "{file}"}));
  CHECK_FALSE(out.process.started);
  auto v = exec_verdict(out);
  CHECK(v.verdict == Verdict::transient);
  CHECK(v.detail.rfind("command did not start: ", 0) == 0);
  CHECK(v.detail.size() > std::string("command did not start: ").size());
  CHECK(exec_code_label(out.process) == "exec_error");
}

TEST_CASE("exec: a copy that cannot be written is transient, nothing runs", "[file_policy]") {
  TempDir dir;
  const std::string marker = dir.path + "/ran";
  auto job = shell_job("touch " + marker);
  job.session_id = "no/such/dir";  // the copy's path has a missing directory
  auto out = run_exec_job(job);
  CHECK_FALSE(out.process.started);
  REQUIRE(out.copy_error);
  CHECK_FALSE(fs::exists(marker));
  auto v = exec_verdict(out);
  CHECK(v.verdict == Verdict::transient);
  CHECK(v.detail == "command did not start: " + out.copy_error->message);
  CHECK(exec_code_label(out.process) == "exec_error");
}

TEST_CASE("exec: exit 0 with an unusable copy is transient", "[file_policy]") {
  SECTION("not JSON") {
    auto out = run_exec_job(shell_job("echo '{not json' > \"$0\""));
    CHECK_FALSE(out.updated);
    REQUIRE(out.copy_error);
    CHECK(out.copy_error->kind == FileErrorKind::parse);
    auto v = exec_verdict(out);
    CHECK(v.verdict == Verdict::transient);
    CHECK(v.detail == "command left an unusable session copy: " + out.copy_error->message);
    CHECK(exec_code_label(out.process) == "exec_0");
  }
  SECTION("removed") {
    auto out = run_exec_job(shell_job("rm \"$0\""));
    CHECK_FALSE(out.updated);
    REQUIRE(out.copy_error);
    CHECK(out.copy_error->kind == FileErrorKind::not_found);
    auto v = exec_verdict(out);
    CHECK(v.verdict == Verdict::transient);
    CHECK(v.detail.rfind("command left an unusable session copy: ", 0) == 0);
  }
  SECTION("valid JSON, not a session") {
    auto out = run_exec_job(shell_job("echo '{\"cookies\": 1}' > \"$0\""));
    REQUIRE(out.copy_error);
    CHECK(out.copy_error->kind == FileErrorKind::schema);
    CHECK(exec_verdict(out).verdict == Verdict::transient);
  }
}

TEST_CASE("exec_verdict maps every process outcome", "[file_policy]") {
  // The pure mapping, without processes: precedence when several flags are set.
  ExecOutcome out;
  out.process.started = true;
  out.process.exit_code = 0;
  out.updated = LoadedSession{session_doc("x"), FileIdentity{}};
  CHECK(exec_verdict(out).verdict == Verdict::logged_in);

  out.process.signal = 15;  // a signal wins over a readable copy
  CHECK(exec_verdict(out).detail == "command killed by signal 15");
  out.process.timed_out = true;  // a timeout is reported as such, not as its SIGTERM
  CHECK(exec_verdict(out).detail == "command timed out");
  CHECK(exec_code_label(out.process) == "exec_error");

  ExecOutcome not_started;
  not_started.process.error = "posix_spawnp: No such file or directory";
  CHECK(exec_verdict(not_started).detail ==
        "command did not start: posix_spawnp: No such file or directory");
  CHECK(exec_code_label(not_started.process) == "exec_error");
}
