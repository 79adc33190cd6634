#pragma once
// What several unit tests share: a temporary directory, JWTs, the profile of
// the refresh tests, and the cookies of a logged-in baman24 account.

#include <catch2/catch.hpp>

#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "sessiond/cookie_jar.hpp"
#include "sessiond/http_client.hpp"
#include "sessiond/json_log.hpp"
#include "sessiond/session_file.hpp"
#include "sessiond/session_status.hpp"
#include "sessiond/worker_pool.hpp"

namespace sessiond::testing {

// A fresh directory under /tmp, removed with everything in it.
struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/sessiond-unit-XXXXXX";
    char* p = ::mkdtemp(tmpl);
    REQUIRE(p != nullptr);
    path = p;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string file(const std::string& name) const { return path + "/" + name; }
};

// Runs blocking work at once, on the caller's thread.
struct InlineExecutor : Executor {
  void post(std::function<void()> task) override { task(); }
};

// The site's answer to `request` as a scripted transport gives it: the
// request's cookies, with `sid` rotated when set.
inline HttpResponse scripted_response(const HttpRequest& request, long status, std::string body,
                                      const std::optional<std::string>& sid,
                                      std::vector<std::pair<std::string, std::string>> headers) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  r.headers = std::move(headers);
  r.cookies = request.cookies;
  if (sid) jar_set(r.cookies, "127.0.0.1", "sid", *sid);
  return r;
}

inline std::string base64url(const std::string& in) {
  static const char* abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  unsigned buf = 0;
  int bits = 0;
  for (unsigned char c : in) {
    buf = (buf << 8) | c;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out.push_back(abc[(buf >> bits) & 0x3f]);
    }
  }
  if (bits > 0) out.push_back(abc[(buf << (6 - bits)) & 0x3f]);
  return out;  // unpadded, as in JWTs
}

// A JWT-shaped token with these claims (the signature is not checked).
inline std::string make_jwt(const nlohmann::json& claims) {
  return base64url(R"({"alg":"HS256","typ":"JWT"})") + "." + base64url(claims.dump()) + "." +
         base64url("not-a-real-signature");
}

// The refresh tests' profile: check GET /pwa, then refresh POST /api/refresh
// capturing the token into the Authorization header.
inline const char* kRefreshProfile = R"({
  "name": "test", "base_url": "http://127.0.0.1:1", "interval": "5m", "idle_timeout": "10m", "jitter": 0.1,
  "check": {"path": "/pwa",
            "logged_in": [{"status": 200, "body_contains": "homeSection"}],
            "logged_out": [{"status": [302], "redirect_contains": "/login"}]},
  "refresh": {"method": "POST", "path": "/api/refresh",
              "logged_in": [{"status": 200, "json_pointer": "/token"}],
              "capture": [{"from": "json:/token", "to": "header:Authorization", "format": "Bearer {value}"}]},
  "retry": {"base": "2s", "max": "30s"}
})";

// The cookies of a logged-in baman24 account as Playwright saves them: a
// rotating host-only JWT, a domain cookie on a sub-path with fields sessiond
// does not own (partitionKey, a custom object), and a session cookie.

inline nlohmann::json sample_cookies() {
  using json = nlohmann::json;
  return json::array({
      {{"name", "pwa_access_token"},
       {"value", "jwt-1"},
       {"domain", "baman24.ir"},
       {"path", "/"},
       {"expires", 1753354887.55},
       {"httpOnly", true},
       {"secure", true},
       {"sameSite", "None"}},
      {{"name", "refresh_token"},
       {"value", "r1"},
       {"domain", ".baman24.ir"},
       {"path", "/api"},
       {"expires", 1784890887.125},
       {"httpOnly", false},
       {"secure", true},
       {"sameSite", "Strict"},
       {"partitionKey", "https://baman24.ir"},
       {"_custom", {{"kept", true}}}},
      {{"name", "csrftoken"},
       {"value", "c1"},
       {"domain", "baman24.ir"},
       {"path", "/"},
       {"expires", -1},
       {"httpOnly", false},
       {"secure", false},
       {"sameSite", "Lax"}},
  });
}

// A fixed "now" for status tests, and a status as the board holds it
// (`age`: last refreshed that long before kStatusNow).
inline const WallTime kStatusNow = WallTime(std::chrono::seconds(1800000000));
inline SessionStatus make_status(const std::string& id, SessionState state,
                                 std::optional<std::chrono::seconds> age = std::nullopt) {
  SessionStatus s;
  s.id = id;
  s.state = state;
  if (age) s.last_refresh = kStatusNow - *age;
  return s;
}

// One cookie of a test session, as Playwright stores it.
inline nlohmann::json cookie(const std::string& name, const std::string& value) {
  return {{"name", name},  {"value", value},   {"domain", "127.0.0.1"}, {"path", "/"},
          {"expires", -1}, {"httpOnly", true}, {"secure", false},       {"sameSite", "Lax"}};
}

// The session as the login bot writes it, optionally with sessiond's block.
inline nlohmann::json session_doc(std::optional<WallTime> last_refresh,
                                  const std::string& sid = "s0") {
  nlohmann::json doc = {
      {"cookies", nlohmann::json::array({cookie("sid", sid)})},
      {"origins",
       nlohmann::json::array(
           {{{"origin", "http://127.0.0.1"},
             {"localStorage", nlohmann::json::array({{{"name", "k"}, {"value", "v"}}})}}})},
      {"botField", 42}};
  if (last_refresh) {
    KeepaliveBlock k;
    k.last_refresh = log::iso8601(*last_refresh);
    k.refresh_count = 7;
    write_keepalive(doc, k);
  }
  return doc;
}

// Captures sessiond's log lines (debug level) while alive, then restores the logger.
struct CapturedLogs {
  std::ostringstream out;
  std::shared_ptr<spdlog::logger> previous = spdlog::default_logger();
  CapturedLogs() {
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_st>(out);
    sink->set_pattern("%v");
    auto logger = std::make_shared<spdlog::logger>("captured", sink);
    logger->set_level(spdlog::level::debug);
    spdlog::set_default_logger(logger);
  }
  ~CapturedLogs() { spdlog::set_default_logger(previous); }
  // The events logged so far, in order.
  std::vector<std::string> events() const {
    std::vector<std::string> names;
    std::istringstream in(out.str());
    for (std::string line; std::getline(in, line);) {
      // "%v" is a marker, then the JSON object's members (the formatter adds
      // the braces, ts and level).
      auto members = line.find('"');
      if (members == std::string::npos) continue;
      auto j = nlohmann::json::parse("{" + line.substr(members) + "}", nullptr, false);
      if (j.is_object() && j.contains("event")) names.push_back(j["event"].get<std::string>());
    }
    return names;
  }
  // How often `event` was logged.
  std::size_t count(const std::string& event) const {
    auto e = events();
    return static_cast<std::size_t>(std::count(e.begin(), e.end(), event));
  }
  // How often `text` occurs anywhere in the captured lines.
  int mentions(const std::string& text) const {
    auto all = out.str();
    int n = 0;
    for (auto p = all.find(text); p != std::string::npos; p = all.find(text, p + 1)) ++n;
    return n;
  }
};

}  // namespace sessiond::testing
