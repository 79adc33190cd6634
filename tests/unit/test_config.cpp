#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <fstream>
#include <initializer_list>
#include <map>
#include <string>
#include <vector>

#include "sessiond/config.hpp"
#include "sessiond/duration.hpp"

using namespace sessiond;
using namespace std::chrono_literals;
using Env = std::map<std::string, std::string>;

namespace {

Config parse(std::initializer_list<const char*> args, const Env& env = {}) {
  std::vector<const char*> argv = {"sessiond"};
  argv.insert(argv.end(), args.begin(), args.end());
  return parse_config(static_cast<int>(argv.size()), argv.data(), env);
}

std::string error_of(std::initializer_list<const char*> args, const Env& env = {}) {
  try {
    parse(args, env);
  } catch (const ConfigError& e) {
    return e.what();
  }
  FAIL("parse_config accepted the arguments");
  return {};
}

struct TempFile {
  std::string path;
  explicit TempFile(const std::string& content) {
    char tmpl[] = "/tmp/sessiond-unit-config-XXXXXX";
    int fd = ::mkstemp(tmpl);
    REQUIRE(fd >= 0);
    ::close(fd);
    path = tmpl;
    std::ofstream(path) << content;
  }
  ~TempFile() { std::remove(path.c_str()); }
};

}  // namespace

TEST_CASE("config defaults", "[config]") {
  auto c = parse({"run"});
  CHECK(c.command == "run");
  CHECK(c.args.empty());
  CHECK_FALSE(c.help);
  CHECK(c.config_file.empty());
  CHECK(c.profile_path.empty());
  CHECK(c.sessions_dir == "sessions");
  CHECK_FALSE(c.interval);
  CHECK_FALSE(c.idle_timeout);
  CHECK(c.listen == "127.0.0.1:9464");
  CHECK(c.log_level == "info");
  CHECK(c.admin_token.empty());
  CHECK(c.shard_index == "0");
  CHECK(c.shard_count == 1);
  CHECK(c.on_logged_out == OnLoggedOut::quarantine);
  CHECK(c.drain_timeout == 20s);
  CHECK(c.heartbeat_interval == 1min);
  CHECK(c.status_interval == 10min);
  CHECK(c.rescan_interval == 30s);
  CHECK(c.max_in_flight == 256);
  CHECK(c.save_lag_target == 3ms);
  CHECK(parse({"run", "--save-lag-target", "0"}).save_lag_target == 0ms);
  CHECK(parse({"run", "--save-lag-target", "10ms"}).save_lag_target == 10ms);
  CHECK_FALSE(c.per_session_metrics);
  CHECK(c.output == "table");
  CHECK(resolve_shard_index(c) == 0);
}

TEST_CASE("command line beats environment beats config file", "[config]") {
  TempFile file(R"({
    // comments are allowed
    "interval": "1m",
    "sessions-dir": "/from/file",
    "log-level": "warn",
    "shard-count": 3,
    "per-session-metrics": true,
    "admin-token": "file-token"
  })");

  SECTION("file only") {
    auto c = parse({"run", "--config", file.path.c_str()});
    CHECK(c.config_file == file.path);
    CHECK(c.interval == std::optional<Millis>(1min));
    CHECK(c.sessions_dir == "/from/file");
    CHECK(c.log_level == "warn");
    CHECK(c.shard_count == 3);
    CHECK(c.per_session_metrics);
    CHECK(c.admin_token == "file-token");
  }
  SECTION("environment over file, command line over both") {
    Env env = {{"SESSIOND_CONFIG", file.path},
               {"SESSIOND_INTERVAL", "2m"},
               {"SESSIOND_SESSIONS_DIR", "/from/env"},
               {"SESSIOND_SHARD_COUNT", "4"}};
    auto c = parse({"run", "--interval", "3m", "--shard-count=5"}, env);
    CHECK(c.config_file == file.path);
    CHECK(c.interval == std::optional<Millis>(3min));  // CLI
    CHECK(c.sessions_dir == "/from/env");              // env over file
    CHECK(c.shard_count == 5);                         // CLI
    CHECK(c.log_level == "warn");                      // file
    CHECK(c.admin_token == "file-token");              // file

    auto no_cli = parse({"run"}, env);
    CHECK(no_cli.interval == std::optional<Millis>(2min));
    CHECK(no_cli.shard_count == 4);
  }
  SECTION("--config on the command line beats SESSIOND_CONFIG") {
    TempFile other(R"({"sessions-dir": "/from/other"})");
    auto c = parse({"run", "--config", other.path.c_str()}, {{"SESSIOND_CONFIG", file.path}});
    CHECK(c.sessions_dir == "/from/other");
    CHECK(c.log_level == "info");
  }
  SECTION("errors in the file name the file and the flag") {
    TempFile bad(R"({"interval": "5x"})");
    auto msg = error_of({"run", "--config", bad.path.c_str()});
    CHECK(msg.find(bad.path) != std::string::npos);
    CHECK(msg.find("--interval") != std::string::npos);
    TempFile unknown(R"({"bogus": 1})");
    auto msg2 = error_of({"run", "--config", unknown.path.c_str()});
    CHECK(msg2.find("bogus") != std::string::npos);
    TempFile not_json("[1, 2");
    CHECK(error_of({"run", "--config", not_json.path.c_str()}).find(not_json.path) !=
          std::string::npos);
    CHECK(error_of({"run", "--config", "/nonexistent/sessiond.json"}).find("--config") !=
          std::string::npos);
  }
}

TEST_CASE("environment variables and DEBUG_MODE", "[config]") {
  auto c = parse({"once"}, {{"SESSIOND_SESSIONS_DIR", "/data/sessions"},
                            {"SESSIOND_LISTEN", "0.0.0.0:9000"},
                            {"SESSIOND_ON_LOGGED_OUT", "mark"},
                            {"SESSIOND_PER_SESSION_METRICS", "true"},
                            {"SESSIOND_IDLE_TIMEOUT", "15m"},
                            {"UNRELATED", "x"}});
  CHECK(c.command == "once");
  CHECK(c.sessions_dir == "/data/sessions");
  CHECK(c.listen == "0.0.0.0:9000");
  CHECK(c.on_logged_out == OnLoggedOut::mark);
  CHECK(c.per_session_metrics);
  CHECK(c.idle_timeout == std::optional<Millis>(15min));

  CHECK(parse({"run"}, {{"DEBUG_MODE", "true"}}).log_level == "debug");
  CHECK(parse({"run"}, {{"DEBUG_MODE", "false"}}).log_level == "info");
  // An explicit level still wins over DEBUG_MODE.
  CHECK(parse({"run", "--log-level", "error"}, {{"DEBUG_MODE", "true"}}).log_level == "error");
  CHECK(parse({"run"}, {{"DEBUG_MODE", "true"}, {"SESSIOND_LOG_LEVEL", "warn"}}).log_level ==
        "warn");

  // A bad environment value names the variable.
  auto msg = error_of({"run"}, {{"SESSIOND_SHARD_COUNT", "zero"}});
  CHECK(msg.find("SESSIOND_SHARD_COUNT") != std::string::npos);
}

TEST_CASE("bad command lines give a ConfigError naming the flag", "[config]") {
  auto expect = [](std::initializer_list<const char*> args, const std::string& needle) {
    auto msg = error_of(args);
    INFO("error: " << msg);
    CHECK(msg.find(needle) != std::string::npos);
  };
  expect({"run", "--interval", "5x"}, "--interval");
  expect({"run", "--interval", "0s"}, "--interval");
  expect({"run", "--shard-count", "0"}, "--shard-count");
  expect({"run", "--shard-count", "2x"}, "--shard-count");
  expect({"run", "--shard-index", "-1"}, "--shard-index");
  expect({"run", "--on-logged-out", "nope"}, "--on-logged-out");
  expect({"run", "--log-level", "loud"}, "--log-level");
  expect({"run", "--output", "xml"}, "--output");
  expect({"run", "--save-lag-target", "fast"}, "--save-lag-target");
  expect({"run", "--per-session-metrics=maybe"}, "--per-session-metrics");
  expect({"run", "--nope"}, "--nope");
  expect({"run", "--interval"}, "--interval");  // missing value
  expect({"frobnicate"}, "frobnicate");
  expect({}, "command");
  expect({"run", "extra"}, "extra");
  expect({"refresh", "a", "b"}, "refresh");
  CHECK_THROWS_AS(parse({"run", "--shard-count", "0"}), ConfigError);
}

TEST_CASE("help, positionals and flag forms", "[config]") {
  auto h = parse({"--help"});
  CHECK(h.help);
  CHECK(h.command.empty());
  auto h2 = parse({"status", "-h"});
  CHECK(h2.help);
  CHECK(h2.command == "status");
  CHECK_FALSE(usage("").empty());
  CHECK(usage("").find("--sessions-dir") != std::string::npos);
  CHECK(usage("refresh").find("refresh [ID]") != std::string::npos);

  auto r = parse({"refresh", "09123456789"});
  CHECK(r.command == "refresh");
  CHECK(r.args == std::vector<std::string>{"09123456789"});
  CHECK(parse({"refresh"}).args.empty());

  auto s = parse({"status", "-o", "json", "--url=http://127.0.0.1:1"});
  CHECK(s.output == "json");
  CHECK(s.url == "http://127.0.0.1:1");

  auto f = parse({"run", "--on-logged-out", "delete", "--per-session-metrics", "--shard-index",
                  "auto", "--interval=90s", "--max-in-flight", "10"});
  CHECK(f.on_logged_out == OnLoggedOut::remove);
  CHECK(f.per_session_metrics);
  CHECK(f.shard_index == "auto");
  CHECK(f.interval == std::optional<Millis>(90s));
  CHECK(f.max_in_flight == 10);
  CHECK(parse({"run", "--on-logged-out=quarantine"}).on_logged_out == OnLoggedOut::quarantine);
  for (const char* cmd : {"run", "once", "status", "refresh", "check-config", "demo"})
    CHECK(parse({cmd}).command == cmd);
}

TEST_CASE("parse_duration and format_duration", "[config]") {
  CHECK(parse_duration("300ms") == std::optional<Millis>(300ms));
  CHECK(parse_duration("5s") == std::optional<Millis>(5s));
  CHECK(parse_duration("5m") == std::optional<Millis>(5min));
  CHECK(parse_duration("1h") == std::optional<Millis>(1h));
  CHECK(parse_duration("1.5s") == std::optional<Millis>(1500ms));
  CHECK(parse_duration("0.5m") == std::optional<Millis>(30s));
  CHECK(parse_duration("10") == std::optional<Millis>(10s));
  CHECK(parse_duration("0") == std::optional<Millis>(0ms));
  CHECK_FALSE(parse_duration("5x"));
  CHECK_FALSE(parse_duration(""));
  CHECK_FALSE(parse_duration("-1s"));
  CHECK_FALSE(parse_duration("s"));
  CHECK_FALSE(parse_duration("5 s"));
  CHECK_FALSE(parse_duration("5sec"));
  CHECK_FALSE(parse_duration("."));
  CHECK_FALSE(parse_duration("1.2.3s"));
  CHECK_FALSE(parse_duration("1e9h"));
  CHECK_FALSE(parse_duration("99999999999999999999h"));

  CHECK(format_duration(5min) == "5m");
  CHECK(format_duration(1h) == "1h");
  CHECK(format_duration(90min) == "90m");
  CHECK(format_duration(3s) == "3s");
  CHECK(format_duration(1500ms) == "1500ms");
  CHECK(format_duration(0ms) == "0s");
  for (Millis d :
       {Millis(1), Millis(999), Millis(1000), Millis(61000), Millis(3600000), Millis(86400000)})
    CHECK(parse_duration(format_duration(d)) == std::optional<Millis>(d));
}

TEST_CASE("the --version flag is parsed without a command", "[config][cli]") {
  CHECK(parse({"--version"}).version);
  CHECK(parse({"run", "--version"}).version);
  CHECK_FALSE(parse({"run"}).version);
}

TEST_CASE("COMMAND --help lists that command's flags only", "[config][cli]") {
  auto status = usage("status");
  CHECK(status.find("--url") != std::string::npos);
  CHECK(status.find("--output") != std::string::npos);
  CHECK(status.find("--admin-token-file") != std::string::npos);
  CHECK(status.find("--profile") == std::string::npos);
  CHECK(status.find("--sessions-dir") == std::string::npos);
  CHECK(status.find("--sessions ") == std::string::npos);

  auto run = usage("run");
  CHECK(run.find("--profile") != std::string::npos);
  CHECK(run.find("--sessions-dir") != std::string::npos);
  CHECK(run.find("--drain-timeout") != std::string::npos);
  CHECK(run.find("--output") == std::string::npos);
  CHECK(run.find("--url") == std::string::npos);
  CHECK(run.find("--sessions N") == std::string::npos);

  auto demo = usage("demo");
  CHECK(demo.find("--sessions N") != std::string::npos);
  CHECK(demo.find("--sessions-dir") == std::string::npos);

  auto refresh = usage("refresh");
  CHECK(refresh.find("--url") != std::string::npos);
  CHECK(refresh.find("--output") == std::string::npos);
  CHECK(refresh.find("--interval") == std::string::npos);
  // The overview still lists every flag.
  CHECK(usage("").find("--output") != std::string::npos);
  CHECK(usage("").find("--profile") != std::string::npos);
}

TEST_CASE("duration flags accept compound durations", "[config][cli]") {
  auto c = parse(
      {"run", "--interval", "1m30s", "--drain-timeout=1h30m15s", "--restart-window", "500ms"});
  CHECK(c.interval == std::optional<Millis>(90s));
  CHECK(c.drain_timeout == Millis(5415000));
  CHECK(c.restart_window == 500ms);
  CHECK(parse({"run"}, {{"SESSIOND_IDLE_TIMEOUT", "2h"}}).idle_timeout ==
        std::optional<Millis>(2h));
  CHECK(error_of({"run", "--interval", "30s1m"}).find("--interval") != std::string::npos);
}

TEST_CASE("the --admin-token-file flag reads a trimmed token and names the path in errors",
          "[config][cli]") {
  SECTION("trailing line breaks are trimmed") {
    TempFile f("s3cret-token\n\n");
    CHECK(parse({"status", "--admin-token-file", f.path.c_str()}).admin_token == "s3cret-token");
    TempFile crlf("tok\r\n");
    CHECK(parse({"run", "--admin-token-file", crlf.path.c_str()}).admin_token == "tok");
    TempFile bare("tok");
    CHECK(parse({"run", "--admin-token-file", bare.path.c_str()}).admin_token == "tok");
  }
  SECTION("from the environment and the config file too") {
    TempFile f("from-env\n");
    CHECK(parse({"run"}, {{"SESSIOND_ADMIN_TOKEN_FILE", f.path}}).admin_token == "from-env");
    TempFile conf("{\"admin-token-file\": \"" + f.path + "\"}");
    CHECK(parse({"run", "--config", conf.path.c_str()}).admin_token == "from-env");
  }
  SECTION("an empty file is an error") {
    TempFile empty("");
    auto e = error_of({"run", "--admin-token-file", empty.path.c_str()});
    CHECK(e.find("empty") != std::string::npos);
    CHECK(e.find(empty.path) != std::string::npos);
    TempFile newline("\n");
    CHECK(error_of({"run", "--admin-token-file", newline.path.c_str()}).find("empty") !=
          std::string::npos);
  }
  SECTION("an unreadable file names the path and errno text, never the token") {
    auto e = error_of({"run", "--admin-token-file", "/nonexistent/sessiond-token"});
    CHECK(e.find("/nonexistent/sessiond-token") != std::string::npos);
    CHECK(e.find("No such file or directory") != std::string::npos);
    TempFile multi("line-one-secret\nline-two-secret\n");
    auto m = error_of({"run", "--admin-token-file", multi.path.c_str()});
    CHECK(m.find("one line") != std::string::npos);
    CHECK(m.find("secret") == std::string::npos);
  }
  SECTION("mutually exclusive with --admin-token, across layers") {
    TempFile f("tok\n");
    CHECK(error_of({"run", "--admin-token", "x", "--admin-token-file", f.path.c_str()})
              .find("mutually exclusive") != std::string::npos);
    CHECK(error_of({"run", "--admin-token-file", f.path.c_str()}, {{"SESSIOND_ADMIN_TOKEN", "x"}})
              .find("mutually exclusive") != std::string::npos);
  }
  SECTION("not read for --help") {
    CHECK(parse({"run", "--help", "--admin-token-file", "/nonexistent/x"}).help);
  }
}

TEST_CASE("a config file may give list flags as arrays", "[config]") {
  TempFile file(R"({
    "hook-types": ["logged_out", "invalidated"],
    "hook-exec": ["/usr/bin/relogin", "--fast"],
    "peers": ["http://127.0.0.1:9464", "http://127.0.0.1:9465"]
  })");
  auto c = parse({"run", "--config", file.path.c_str()});
  CHECK(c.hook_types == "logged_out,invalidated");
  CHECK(c.hook_exec == std::vector<std::string>{"/usr/bin/relogin", "--fast"});
  CHECK(c.peers == "http://127.0.0.1:9464,http://127.0.0.1:9465");
  TempFile bad(R"({"hook-types": ["logged_out", 3]})");
  CHECK_THAT(error_of({"run", "--config", bad.path.c_str()}),
             Catch::Contains("--hook-types: expected an array of strings"));
}
