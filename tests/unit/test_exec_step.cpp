// Exec steps: the command's environment (clean, plus what the profile names),
// its stderr tail, and the redaction of the session's secrets in it.

#include <catch2/catch.hpp>

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sessiond/exec_step.hpp"
#include "sessiond/profile.hpp"
#include "test_support.hpp"

using namespace sessiond;
using namespace std::chrono_literals;
using json = nlohmann::json;
using sessiond::testing::TempDir;

namespace {

// Cookie and localStorage values long enough to count as secrets.
const std::string kSid = "sid-3f9a1c77e2b04d51";
const std::string kStored = "ls-token-a8d2e6f0c4b1";
const std::string kRotated = "sid-rotated-by-the-command-91ab";

json secret_session() {
  return json{
      {"cookies", json::array({{{"name", "sid"},
                                {"value", kSid},
                                {"domain", "127.0.0.1"},
                                {"path", "/"},
                                {"expires", -1},
                                {"httpOnly", true},
                                {"secure", false},
                                {"sameSite", "Lax"}},
                               {{"name", "short"},
                                {"value", "1"},
                                {"domain", "127.0.0.1"},
                                {"path", "/"},
                                {"expires", -1},
                                {"httpOnly", false},
                                {"secure", false},
                                {"sameSite", "Lax"}}})},
      {"origins",
       json::array({{{"origin", "http://127.0.0.1"},
                     {"localStorage", json::array({{{"name", "auth"}, {"value", kStored}}})}}})}};
}

ExecJob shell_job(const std::string& script) {
  ExecJob job;
  job.session_id = "acct1";
  job.session = secret_session();
  // $0 is the copy of the session file.
  job.argv = {"/bin/sh", "-c", script, "{file}"};
  job.base_url = "http://127.0.0.1:1";
  job.timeout = 10s;
  return job;
}

std::string read_all(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

bool has_line(const std::vector<std::string>& lines, const std::string& line) {
  return std::find(lines.begin(), lines.end(), line) != lines.end();
}

bool has_prefix(const std::vector<std::string>& lines, const std::string& prefix) {
  return std::any_of(lines.begin(), lines.end(),
                     [&](const std::string& l) { return l.rfind(prefix, 0) == 0; });
}

std::string profile_error(const std::string& refresh) {
  try {
    parse_profile(R"({"base_url": "https://site.test", "refresh": )" + refresh + "}");
  } catch (const ProfileError& e) {
    return e.what();
  }
  FAIL("parse_profile accepted: " << refresh);
  return {};
}

}  // namespace

TEST_CASE("exec: the command gets a clean environment plus the names the profile passes",
          "[exec_env]") {
  TempDir dir;
  const std::string env_file = dir.file("env");
  ::setenv("SESSIOND_ADMIN_TOKEN", "admin-token-never-passed", 1);
  ::setenv("EXEC_TEST_NAMED", "named value", 1);
  ::setenv("EXEC_TEST_UNNAMED", "not named", 1);
  const char* home = std::getenv("HOME");
  const std::string saved_home = home ? home : "";
  ::setenv("HOME", "/home/exec-test", 1);
  auto job = shell_job("env > " + env_file + "; dirname \"$0\" >> " + env_file);
  job.env = {"EXEC_TEST_NAMED", "EXEC_TEST_UNSET", "SESSIOND_ADMIN_TOKEN"};
  auto out = run_exec_job(job);
  ::unsetenv("SESSIOND_ADMIN_TOKEN");
  ::unsetenv("EXEC_TEST_NAMED");
  ::unsetenv("EXEC_TEST_UNNAMED");
  if (home)
    ::setenv("HOME", saved_home.c_str(), 1);
  else
    ::unsetenv("HOME");
  REQUIRE(out.process.exit_code == 0);

  const auto lines = lines_of(read_all(env_file));
  REQUIRE(lines.size() >= 2);
  const std::string private_dir = lines.back();  // the copy's directory
  CHECK(private_dir.find("sessiond-exec-") != std::string::npos);
  CHECK_FALSE(has_prefix(lines, "SESSIOND_"));
  CHECK_FALSE(has_prefix(lines, "EXEC_TEST_UNNAMED="));
  CHECK_FALSE(has_prefix(lines, "EXEC_TEST_UNSET="));
  CHECK(has_line(lines, "EXEC_TEST_NAMED=named value"));
  CHECK(has_line(lines, "HOME=/home/exec-test"));
  CHECK(has_line(lines, "TMPDIR=" + private_dir));
  CHECK(has_prefix(lines, "PATH=/"));
}

TEST_CASE("exec_environment: PATH has a default, TMPDIR is the private directory", "[exec_env]") {
  const char* saved = std::getenv("PATH");
  const std::string path = saved ? saved : "";
  ::unsetenv("PATH");
  auto env = exec_environment({"PATH", "TMPDIR"}, "/tmp/sessiond-exec-x");
  if (saved) ::setenv("PATH", path.c_str(), 1);
  CHECK(has_line(env, "PATH=/usr/local/bin:/usr/bin:/bin"));
  CHECK(has_line(env, "TMPDIR=/tmp/sessiond-exec-x"));
  CHECK(std::count_if(env.begin(), env.end(),
                      [](const std::string& e) { return e.rfind("TMPDIR=", 0) == 0; }) == 1);
}

TEST_CASE("exec: a failed command's stderr tail comes back, bounded and redacted", "[exec_env]") {
  SECTION("cookie and localStorage values, and the short ones left alone") {
    auto out =
        run_exec_job(shell_job("echo 'progress on stdout " + kSid + "'; echo 'cookie sid=" + kSid +
                               " storage " + kStored + " flag 1' >&2; exit 1"));
    CHECK(out.process.exit_code == 1);
    CHECK(out.process.stderr_tail == "cookie sid=[redacted] storage [redacted] flag 1\n");
    CHECK(out.process.stdout_tail == "progress on stdout [redacted]\n");
    CHECK(exec_verdict(out).detail == "command exit status 1");  // the verdict stays short
  }
  SECTION("a value the command itself wrote into the copy") {
    auto out =
        run_exec_job(shell_job("sed -i 's/" + kSid + "/" + kRotated +
                               "/' \"$0\"; echo \"new cookie " + kRotated + "\" >&2; exit 3"));
    CHECK(exec_verdict(out).verdict == Verdict::logged_out);
    CHECK(out.process.stderr_tail == "new cookie [redacted]\n");
  }
  SECTION("only the last kStderrTailBytes, and a secret cut by the bound") {
    // 3000 bytes of stderr; the cut falls 5 bytes into the cookie value.
    const std::size_t before = 3000 - kStderrTailBytes - 5;
    const std::string script = "head -c " + std::to_string(before) +
                               " /dev/zero | tr '\\0' x >&2;" + " printf '%s' '" + kSid + "' >&2;" +
                               " head -c " + std::to_string(3000 - before - kSid.size()) +
                               " /dev/zero | tr '\\0' y >&2; exit 1";
    auto out = run_exec_job(shell_job(script));
    const auto& tail = out.process.stderr_tail;
    CHECK(tail.rfind("[redacted]", 0) == 0);
    CHECK(tail.find(kSid.substr(5)) == std::string::npos);
    CHECK(tail.size() == kStderrTailBytes - (kSid.size() - 5) + std::string("[redacted]").size());
    CHECK(tail.back() == 'y');
  }
}

TEST_CASE("redact_secrets", "[exec_env]") {
  const std::vector<std::string> secrets = {"abcdefghijkl", "abcdefgh"};
  CHECK(redact_secrets("x abcdefghijkl y abcdefgh z", secrets) == "x [redacted] y [redacted] z");
  CHECK(redact_secrets("ghijkl and more", secrets) == "ghijkl and more");
  CHECK(redact_secrets("ghijkl and more", secrets, true) == "[redacted] and more");
  CHECK(redact_secrets("nothing here", secrets, true) == "nothing here");
  CHECK(redact_secrets("", secrets, true).empty());

  json doc = secret_session();
  doc["headers"] = {{"Authorization", "Bearer eyJhbGciOi.payload"}};
  auto found = session_secrets(doc);
  CHECK(has_line(found, kSid));
  CHECK(has_line(found, kStored));
  CHECK(has_line(found, "Bearer eyJhbGciOi.payload"));
  CHECK(has_line(found, "eyJhbGciOi.payload"));
  CHECK_FALSE(has_line(found, "1"));
  CHECK_FALSE(has_line(found, "Bearer"));
}

TEST_CASE("profile: an exec step's env names variables; sessiond's own are refused", "[exec_env]") {
  auto p = parse_profile(
      R"({"base_url": "https://site.test", "refresh": {"exec": ["node", "r.js", "{file}"], "env": ["BOT_PASSWORD", "NODE_OPTIONS"]}})");
  REQUIRE(p.refresh);
  CHECK(p.refresh->exec_env == std::vector<std::string>{"BOT_PASSWORD", "NODE_OPTIONS"});

  CHECK_THAT(profile_error(R"({"exec": ["x"], "env": ["SESSIOND_ADMIN_TOKEN"]})"),
             Catch::Contains("refresh.env[0]") && Catch::Contains("SESSIOND_"));
  CHECK_THAT(profile_error(R"({"exec": ["x"], "env": ["OK", "SESSIOND_CONFIG"]})"),
             Catch::Contains("refresh.env[1]"));
  CHECK_THAT(profile_error(R"({"exec": ["x"], "env": ["TMPDIR"]})"), Catch::Contains("TMPDIR"));
  CHECK_THAT(profile_error(R"({"exec": ["x"], "env": ["A=B"]})"), Catch::Contains("variable name"));
  CHECK_THAT(profile_error(R"({"exec": ["x"], "env": ["1A"]})"), Catch::Contains("variable name"));
  CHECK_THAT(profile_error(R"({"exec": ["x"], "env": {"A": "b"}})"),
             Catch::Contains("refresh.env"));
  CHECK_THAT(profile_error(R"({"path": "/x", "env": ["A"]})"),
             Catch::Contains("only an exec step takes env"));
}
