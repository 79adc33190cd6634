// The bundled fake upstream website ("fake site").
//
// A real HTTP server (cpp-httplib) that stands in for the website whose login
// sessions sessiond keeps alive: login, a check page, a JSON check, a refresh
// endpoint that rotates the session cookie, idle expiry, and a separate admin
// listener for fault injection, forced logouts, seeding session files and
// statistics. Used by the integration tests, `sessiond demo` (in process) and
// the benchmarks. See README.md in this directory.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace fakesite {

struct Options {
  std::string host = "127.0.0.1";                  // only ever loopback
  int port = 0;                                    // 0 = ephemeral
  int admin_port = 0;                              // 0 = ephemeral
  std::chrono::milliseconds idle_timeout{600000};  // session expires when idle longer
  std::chrono::milliseconds rotate_grace{0};       // how long a rotated-away sid still works
  std::chrono::seconds token_ttl{3600};            // JWT exp = now + ttl
  bool require_token = false;  // check/refresh also need "Authorization: Bearer <current token>"
  int threads = 32;            // site listener thread pool
  // A client-rendered app (like baman24's PWA): GET /pwa serves the same HTML
  // shell to everyone; its script (/static/app.<hash>.js) reads the token
  // from localStorage, calls /api/pwa/session with the cookie and the token
  // (which renews both), then renders div.homeSection, or routes to
  // /auth/login and renders form.loginForm. Only that API call keeps a
  // session alive: a plain GET /pwa does not.
  bool client_rendered = false;
  std::size_t bundle_bytes = 8192;  // the app script's size (valid JS padding the browser parses)
  bool api_cacheable = false;       // the API answers "Cache-Control: public, max-age=600"
};

class FakeSite {
 public:
  explicit FakeSite(Options options);
  ~FakeSite();  // calls stop()
  FakeSite(const FakeSite&) = delete;
  FakeSite& operator=(const FakeSite&) = delete;

  // Binds both ports and starts serving. Throws std::runtime_error on failure
  // (nothing is left listening then). Only once per object.
  void start();
  // Stops both listeners and the sweep thread; idempotent. May wait up to
  // ~1 s for idle keep-alive connections to drain.
  void stop();

  int port() const;
  int admin_port() const;
  std::string base_url() const;  // http://127.0.0.1:PORT

  // Admin "GET /stats" document; per_session adds the "per_session" object.
  nlohmann::json stats(bool per_session = false) const;
  // Replaces the whole fault set (absent fields take their defaults, so {}
  // resets everything, including down=false). Throws std::invalid_argument
  // on an unknown field or a bad value, std::runtime_error if the site port
  // cannot be bound again when leaving "down".
  void set_faults(const nlohmann::json& faults);
  nlohmann::json faults() const;  // the current fault set
  // Logs the accounts out (counted as forced_logout, never lost). Returns
  // how many were active.
  int force_logout(const std::vector<std::string>& mobiles);
  // Logs the accounts in (first_mobile + i, zero-padded to first_mobile's
  // width) and writes <dir>/session-<mobile>.json for each (Playwright
  // storage state, atomic, mode 0600). Creates dir if missing. Returns the
  // mobiles. Throws std::invalid_argument / std::runtime_error.
  std::vector<std::string> write_session_files(const std::string& dir, int count,
                                               const std::string& first_mobile = "09120000000",
                                               int localstorage_bytes = 20000);
  // {"values":[every sid, refresh_token, csrftoken and JWT ever issued]}
  // (the first 200,000 are kept; "dropped" counts the rest).
  nlohmann::json issued_secrets() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// "500ms", "3s", "10m", "1h"; a bare integer means seconds. Throws
// std::invalid_argument.
std::chrono::milliseconds parse_duration(const std::string& text);

}  // namespace fakesite
