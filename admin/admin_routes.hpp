#pragma once
// The admin API as plain functions, one per route: each asks the actors
// (through a scoped_actor with a timeout, so a stuck actor yields 503/504, not
// a hung request) and returns the whole answer. No HTTP library in here:
// AdminServer maps cpp-httplib requests onto these, tests call them directly.

#include <caf/actor_system.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "sessiond/actors.hpp"
#include "sessiond/session_file.hpp"

namespace sessiond {

struct Reply {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

// GET /status?state=NAME&limit=N, as given (absent: nullopt).
struct StatusParams {
  std::optional<std::string> state;
  std::optional<std::string> limit;
  std::optional<std::string> site{};  // only this site's sessions and totals
};

// A site's supervisor, for the session routes (ids are unique per site only).
struct SiteHandle {
  std::string name;  // "" for a stand-in without a name
  supervisor_actor supervisor;
  FilePattern pattern;  // for "no file ..." answers
};

// GET / and /s/{id}: the status page's parameters, as given (absent: nullopt).
struct PageParams {
  std::optional<std::string> session;  // /s/{id} or ?session=
  std::optional<std::string> site;     // ?site= (with /s/{id}: the session's site)
  std::optional<std::string> q;
  std::optional<std::string> state;
  std::optional<std::string> after;
  std::optional<std::string> before;
  std::optional<std::string> limit;
};

// What a request shows to prove it may read: its Authorization and Cookie
// headers ("" when absent).
struct Auth {
  std::string authorization;
  std::string cookie;
};

// The cookie the page's login sets: its value is the admin token (hex), HttpOnly
// (no script reads it) and SameSite=Strict (no other site's request carries it).
inline constexpr const char* kReadCookieName = "sessiond_token";

class AdminRoutes {
 public:
  struct Options {
    std::string admin_token;                            // empty: the mutating routes need no token
    std::chrono::milliseconds refresh_timeout{120000};  // POST /sessions/{id}/refresh
    std::chrono::milliseconds query_timeout{5000};
    // Session ids are personal data: on a non-loopback listen address /status,
    // /sessions/*, /events and / need the token (bearer or the cookie).
    bool read_needs_token = false;
    // GET /replicas: --peers ("" = not configured), the port of a DNS form
    // (this replica's), and how long each replica may take to answer.
    std::string peers{};
    int peers_port = 9464;
    std::chrono::milliseconds replicas_timeout{2000};
  };

  // One site.
  AdminRoutes(caf::actor_system& system, supervisor_actor supervisor, status_board_actor board,
              Options options);
  // Every site (at least one).
  AdminRoutes(caf::actor_system& system, std::vector<SiteHandle> sites, status_board_actor board,
              Options options);

  // `authorization` is the Authorization header ("" when absent). Mutating
  // routes check it (Bearer, constant-time) before anything else but the id.
  Reply metrics() const;                                      // GET /metrics
  Reply healthz() const;                                      // GET /healthz
  Reply readyz() const;                                       // GET /readyz
  Reply status(const StatusParams& params) const;             // GET /status
  Reply refresh_all(const std::string& authorization) const;  // POST /refresh (every site)
  Reply sites() const;                                        // GET /sites
  // A reload changed the sites (thread-safe; requests in flight keep the old list).
  void set_sites(std::vector<SiteHandle> sites);
  // The session routes take the site of /sites/{site}/sessions/{id}; "" for
  // /sessions/{id}: the only site, or the one site that has a session of
  // that id (409 when several have; PUT names its site when there are several).
  Reply get_session(const std::string& id, const std::string& site = {}) const;
  Reply refresh_session(const std::string& id, const std::string& authorization,
                        const std::string& site = {}) const;
  Reply put_session(const std::string& id, const std::string& authorization,
                    const std::string& site = {}) const;
  Reply delete_session(const std::string& id, const std::string& authorization,
                       const std::string& site = {}) const;
  // POST /sessions/{id}/pause?reason=TEXT: not refreshed until resumed, across
  // restarts (kept in the file's keepalive block). Answers once written.
  Reply pause_session(const std::string& id, const std::optional<std::string>& reason,
                      const std::string& authorization, const std::string& site = {}) const;
  // POST /sessions/{id}/resume: back on its schedule. Answers once written.
  Reply resume_session(const std::string& id, const std::string& authorization,
                       const std::string& site = {}) const;
  // /sessions/{id} (action "") and /sessions/{id}/ACTION (refresh, pause,
  // resume) with any method: the id is checked first, then the method (405
  // with Allow), then the route. `reason`: the pause's ?reason=.
  Reply session_route(const std::string& method, const std::string& id, const std::string& action,
                      const std::string& authorization,
                      const std::optional<std::string>& reason = std::nullopt,
                      const std::string& site = {}) const;

  // GET / (overview, search, paging) and /s/{id} (one session): HTML with a
  // strict Content-Security-Policy.
  Reply page(const PageParams& params) const;
  // GET /replicas: every replica of --peers (their /status?limit=0, at once,
  // each within replicas_timeout) in one HTML table; without --peers, how to
  // set it. At most kMaxReplicaViews at once (503 beyond): each asks this
  // replica too, over a thread of the same pool.
  Reply replicas() const;
  static constexpr int kMaxReplicaViews = 2;
  // GET /ui/{name}: the page's script and stylesheet (404 for anything else).
  static Reply ui(const std::string& name);
  // The page's answer to a reader without the token: 401 with a form that
  // posts it to /login (which sets the read cookie and comes back to /).
  static Reply page_login();

  // Who may read (GET /status, /sessions/*, /events, /): anyone when the
  // listen address is loopback or no token is set; else a request with
  // "Bearer TOKEN" or the cookie sessiond_token=hex(TOKEN) (constant-time).
  bool may_read(const Auth& auth) const;
  // nullopt when may_read, else the 401 to send (JSON, WWW-Authenticate: Bearer).
  std::optional<Reply> read_denied(const Auth& auth) const;
  // POST /login: the token as "Authorization: Bearer TOKEN" or as the form
  // field token=TOKEN (application/x-www-form-urlencoded body). Right: sets
  // the cookie, 204 (303 to `/` for a form post). Wrong: 401, no cookie.
  Reply login(const std::string& authorization, const std::string& content_type,
              const std::string& body) const;
  // POST /logout: clears the cookie (204; 303 to `/` for a form post).
  static Reply logout(const std::string& content_type);

  // 405 with the Allow header.
  static Reply method_not_allowed(const std::string& allow);
  // {"error": message}
  static Reply error(int status, const std::string& message);

 private:
  // nullopt: authorized; else the 401 to send.
  std::optional<Reply> unauthorized(const std::string& authorization) const;
  // The answer to a pause or resume whose success is `done`.
  static Reply pause_reply(const SiteHandle& site, const std::string& id,
                           const std::optional<CycleReport>& report, CycleOutcome done);
  // The site a session route is about (see get_session), or the error to send.
  // `registering`: PUT, whose session the board does not know yet.
  std::variant<SiteHandle, Reply> site_for(const std::string& site, const std::string& id,
                                           bool registering = false) const;
  std::shared_ptr<const std::vector<SiteHandle>> sites_now() const {
    return std::atomic_load(&sites_);
  }

  caf::actor_system& system_;
  // Replaced whole by a reload (set_sites), read by the HTTP workers.
  std::shared_ptr<const std::vector<SiteHandle>> sites_;
  status_board_actor board_;
  Options options_;
  std::shared_ptr<std::atomic<int>> replica_views_ = std::make_shared<std::atomic<int>>(0);
};

}  // namespace sessiond
