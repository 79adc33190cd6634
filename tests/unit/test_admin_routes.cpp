// The admin API's routes called directly against a real actor system, with
// small stand-in actors for the supervisor and the status board; then the
// HTTP mapping over loopback, including requests without a body.

#include <catch2/catch.hpp>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>
#include <caf/typed_event_based_actor.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <httplib.h>

#include <chrono>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <tuple>
#include <vector>

#include "admin_routes.hpp"
#include "admin_server.hpp"
#include "sessiond/config.hpp"
#include "sessiond/status_page.hpp"

using namespace sessiond;
using namespace std::chrono_literals;
using json = nlohmann::json;

namespace {

// What the stand-ins answer, and what they were asked ("refresh_all",
// "refresh <id>", "register <id>", "status <state> <limit>", ...).
struct Script {
  std::mutex m;
  bool hang = false;  // never answer (the route times out)
  int refreshing = 7;
  std::map<std::string, CycleReport> reports;      // refresh <id>; default not_found
  std::map<std::string, AdminResult> registers;    // PUT; default not_found
  std::map<std::string, AdminResult> unregisters;  // DELETE; default not_found
  std::map<std::string, CycleReport> pauses;       // pause <id> <reason>; default not_found
  std::map<std::string, CycleReport> resumes;      // resume <id>; default not_found
  bool ready = true;
  std::map<std::string, std::string> sessions;              // GET /sessions/{id}; default ""
  std::map<std::string, std::vector<std::string>> located;  // locate_atom: sites per id
  std::vector<std::string> asked;

  void note(std::string what) {
    std::lock_guard<std::mutex> lock(m);
    asked.push_back(std::move(what));
  }
  std::vector<std::string> take() {
    std::lock_guard<std::mutex> lock(m);
    auto out = std::move(asked);
    asked.clear();
    return out;
  }
};

// Answers through a promise: at once, or never while the script hangs.
template <class T, class Self>
caf::typed_response_promise<T> answer(Self* self, const Script& s,
                                      std::vector<caf::typed_response_promise<T>>& parked,
                                      T value) {
  auto rp = self->template make_response_promise<T>();
  if (s.hang)
    parked.push_back(rp);
  else
    rp.deliver(std::move(value));
  return rp;
}

struct Parked {
  std::vector<caf::typed_response_promise<int>> ints;
  std::vector<caf::typed_response_promise<CycleReport>> reports;
  std::vector<caf::typed_response_promise<AdminResult>> results;
  std::vector<caf::typed_response_promise<bool>> bools;
  std::vector<caf::typed_response_promise<std::string>> strings;
  std::vector<caf::typed_response_promise<drained_atom>> drained;
};

supervisor_actor::behavior_type standin_supervisor(supervisor_actor::pointer self,
                                                   std::shared_ptr<Script> s) {
  auto parked = std::make_shared<Parked>();
  return {
      [=](file_added_atom, const std::string&, const std::optional<FileIdentity>&) {},
      [=](file_gone_atom, const std::string&) {},
      [=](scanned_atom) {},
      [=](restart_atom, const std::string&, std::uint64_t) {},
      [=](refresh_atom) {
        s->note("refresh_all");
        return answer<int>(self, *s, parked->ints, s->refreshing);
      },
      [=](refresh_atom, const std::string& id) {
        s->note("refresh " + id);
        CycleReport r{id, CycleOutcome::not_found, "", SessionState::pending, 0};
        if (auto it = s->reports.find(id); it != s->reports.end()) r = it->second;
        return answer<CycleReport>(self, *s, parked->reports, r);
      },
      [=](register_atom, const std::string& id) {
        s->note("register " + id);
        auto it = s->registers.find(id);
        return answer<AdminResult>(self, *s, parked->results,
                                   it == s->registers.end() ? AdminResult::not_found : it->second);
      },
      [=](unregister_atom, const std::string& id) {
        s->note("unregister " + id);
        auto it = s->unregisters.find(id);
        return answer<AdminResult>(
            self, *s, parked->results,
            it == s->unregisters.end() ? AdminResult::not_found : it->second);
      },
      [=](pause_atom, const std::string& id, const std::string& reason) {
        s->note("pause " + id + " " + reason);
        CycleReport r{id, CycleOutcome::not_found, "", SessionState::pending, 0};
        if (auto it = s->pauses.find(id); it != s->pauses.end()) r = it->second;
        return answer<CycleReport>(self, *s, parked->reports, r);
      },
      [=](resume_atom, const std::string& id) {
        s->note("resume " + id);
        CycleReport r{id, CycleOutcome::not_found, "", SessionState::pending, 0};
        if (auto it = s->resumes.find(id); it != s->resumes.end()) r = it->second;
        return answer<CycleReport>(self, *s, parked->reports, r);
      },
      [=](drain_atom) {
        return answer<drained_atom>(self, *s, parked->drained, drained_atom::value);
      },
  };
}

status_board_actor::behavior_type standin_board(status_board_actor::pointer self,
                                                std::shared_ptr<Script> s) {
  auto parked = std::make_shared<Parked>();
  return {
      [=](put_atom, const SessionStatusPtr&) {},
      [=](forget_atom, const std::string&, const std::string&) {},
      [=](site_error_atom, const std::string&, const std::string&) {},
      [=](remove_atom, const std::string&) {},
      [=](sites_atom, const SiteInfoListPtr&) {},
      [=](scanned_atom) {},
      [=](drain_atom) {},
      [=](ready_atom) {
        s->note("ready");
        return answer<bool>(self, *s, parked->bools, s->ready);
      },
      [=](metrics_atom) {
        s->note("metrics");
        return answer<std::string>(self, *s, parked->strings,
                                   std::string("# TYPE sessiond_up gauge\nsessiond_up 1\n"));
      },
      [=](status_atom, const std::string& state, std::uint64_t limit, const std::string& site) {
        s->note("status " + state + " " + std::to_string(limit) + (site.empty() ? "" : " " + site));
        return answer<std::string>(self, *s, parked->strings,
                                   json{{"state", state}, {"limit", limit}}.dump());
      },
      [=](locate_atom, const std::string& id) {
        auto it = s->located.find(id);
        return it == s->located.end() ? std::vector<std::string>() : it->second;
      },
      [=](sites_atom) {
        s->note("sites");
        return std::string(R"({"sites":[]})");
      },
      [=](session_atom, const std::string& site, const std::string& id) {
        if (!site.empty()) s->note("site " + site);
        s->note("session " + id);
        auto it = s->sessions.find(id);
        return answer<std::string>(self, *s, parked->strings,
                                   it == s->sessions.end() ? std::string() : it->second);
      },
      [=](page_atom, const PageQuery& q) {
        s->note("page " + q.session);
        return PageResult{200, "<p>" + html_escape(q.session) + "</p>"};
      },
      [=](heartbeat_atom) {},
      [=](report_atom) {},
  };
}

struct Fixture {
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  std::shared_ptr<Script> sup_script = std::make_shared<Script>();
  std::shared_ptr<Script> board_script = std::make_shared<Script>();
  supervisor_actor supervisor = sys.spawn(standin_supervisor, sup_script);
  status_board_actor board = sys.spawn(standin_board, board_script);

  AdminRoutes routes(std::string token = "") {
    return AdminRoutes(sys, supervisor, board, AdminRoutes::Options{token, 300ms, 200ms});
  }
  ~Fixture() {
    caf::anon_send_exit(supervisor, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(board, caf::exit_reason::user_shutdown);
  }
};

json body_of(const Reply& r) {
  REQUIRE(r.content_type == "application/json");
  return json::parse(r.body);
}

std::string header(const Reply& r, const std::string& name) {
  for (const auto& [k, v] : r.headers)
    if (k == name) return v;
  return "";
}

}  // namespace

TEST_CASE("admin routes: metrics, healthz, readyz", "[admin]") {
  Fixture f;
  auto routes = f.routes();

  auto m = routes.metrics();
  CHECK(m.status == 200);
  CHECK(m.content_type == "text/plain; version=0.0.4; charset=utf-8");
  CHECK(m.body == "# TYPE sessiond_up gauge\nsessiond_up 1\n");

  CHECK(routes.healthz().status == 200);
  CHECK(body_of(routes.healthz()) == json{{"status", "ok"}});
  CHECK(routes.readyz().status == 200);
  CHECK(body_of(routes.readyz()) == json{{"status", "ready"}});

  f.board_script->ready = false;
  CHECK(routes.healthz().status == 200);  // alive, not ready
  auto not_ready = routes.readyz();
  CHECK(not_ready.status == 503);
  CHECK(body_of(not_ready) == json{{"status", "not ready"}});
}

TEST_CASE("admin routes: a status board that does not answer is 503", "[admin]") {
  Fixture f;
  auto routes = f.routes();
  f.board_script->hang = true;
  const auto started = std::chrono::steady_clock::now();
  auto m = routes.metrics();
  CHECK(m.status == 503);
  CHECK(body_of(m) == json{{"error", "metrics actor did not answer"}});
  CHECK(std::chrono::steady_clock::now() - started < 5s);  // the query timeout, 200 ms
  CHECK(body_of(routes.healthz()) == json{{"error", "actor system does not answer"}});
  CHECK(routes.healthz().status == 503);
  auto r = routes.readyz();
  CHECK(r.status == 503);
  CHECK(body_of(r) == json{{"status", "no answer"}});
  auto s = routes.status({});
  CHECK(s.status == 503);
  CHECK(body_of(s) == json{{"error", "status not available"}});
  auto g = routes.get_session("acct1");
  CHECK(g.status == 503);
  CHECK(body_of(g) == json{{"error", "status not available"}});
}

TEST_CASE("admin routes: an actor that is gone is 503 at once", "[admin]") {
  Fixture f;
  auto routes = f.routes();
  {
    caf::scoped_actor self{f.sys};
    caf::anon_send_exit(f.board, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(f.supervisor, caf::exit_reason::user_shutdown);
    self->wait_for(f.board, f.supervisor);
  }
  CHECK(routes.metrics().status == 503);
  CHECK(routes.readyz().status == 503);
  CHECK(routes.refresh_all("").status == 503);
  CHECK(routes.refresh_session("acct1", "").status == 504);
  CHECK(routes.put_session("acct1", "").status == 503);
}

TEST_CASE("admin routes: status passes state and limit, and validates them", "[admin]") {
  Fixture f;
  auto routes = f.routes();

  auto all = routes.status({});
  CHECK(all.status == 200);
  CHECK(body_of(all) == json{{"state", ""}, {"limit", std::numeric_limits<std::uint64_t>::max()}});

  auto some = routes.status({std::string("at_risk"), std::string("25")});
  CHECK(some.status == 200);
  CHECK(body_of(some) == json{{"state", "at_risk"}, {"limit", 25}});
  CHECK(body_of(routes.status({std::string(""), std::string("0")})) ==
        json{{"state", ""}, {"limit", 0}});
  CHECK(body_of(routes.status({std::nullopt, std::string("999999999")}))["limit"] == 999999999);

  auto bad_state = routes.status({std::string("sleepy"), std::nullopt});
  CHECK(bad_state.status == 400);
  CHECK(body_of(bad_state)["error"] ==
        "unknown state \"sleepy\" (expected one of " + state_names() + ")");
  for (const char* bad : {"", "-1", "1e3", "12a", "1000000000", " 5", "+5"}) {
    CAPTURE(bad);
    auto r = routes.status({std::nullopt, std::string(bad)});
    CHECK(r.status == 400);
    CHECK(body_of(r)["error"] == "limit: expected a number of sessions (0-999999999)");
  }
  // Only the valid ones reached the board.
  CHECK(f.board_script->take().size() == 4);
}

TEST_CASE("admin routes: refresh all", "[admin]") {
  Fixture f;
  auto routes = f.routes();
  auto r = routes.refresh_all("");
  CHECK(r.status == 202);
  CHECK(body_of(r) == json{{"refreshing", 7}});
  CHECK(f.sup_script->take() == std::vector<std::string>{"refresh_all"});

  f.sup_script->hang = true;
  auto late = routes.refresh_all("");
  CHECK(late.status == 503);
  CHECK(body_of(late) == json{{"error", "supervisor did not answer"}});
}

TEST_CASE("admin routes: refresh one session maps the cycle report", "[admin]") {
  Fixture f;
  auto routes = f.routes();
  f.sup_script->reports["ok"] = {"ok", CycleOutcome::success, "", SessionState::active, 0};
  f.sup_script->reports["out"] = {"out", CycleOutcome::logged_out, "", SessionState::invalid, 0};
  f.sup_script->reports["flaky"] = {"flaky", CycleOutcome::transient_error, "HTTP 503",
                                    SessionState::retrying, 1};
  f.sup_script->reports["busy"] = {"busy", CycleOutcome::shutting_down, "", SessionState::active,
                                   0};

  auto ok = routes.refresh_session("ok", "");
  CHECK(ok.status == 200);
  CHECK(body_of(ok) == json{{"session", "ok"}, {"outcome", "success"}});
  auto out = routes.refresh_session("out", "");
  CHECK(out.status == 502);
  CHECK(body_of(out) == json{{"session", "out"}, {"outcome", "logged_out"}});
  auto flaky = routes.refresh_session("flaky", "");
  CHECK(flaky.status == 502);
  CHECK(body_of(flaky) == json{{"session", "flaky"}, {"outcome", "transient_error: HTTP 503"}});
  CHECK(routes.refresh_session("busy", "").status == 502);
  auto unknown = routes.refresh_session("nobody", "");
  CHECK(unknown.status == 404);
  CHECK(body_of(unknown) == json{{"error", "unknown session nobody"}});

  f.sup_script->hang = true;
  const auto started = std::chrono::steady_clock::now();
  auto late = routes.refresh_session("ok", "");
  CHECK(std::chrono::steady_clock::now() - started >= 300ms);  // the refresh timeout
  CHECK(late.status == 504);
  CHECK(body_of(late) == json{{"error", "refresh did not finish in time"}});
}

TEST_CASE("admin routes: get, put and delete a session", "[admin]") {
  Fixture f;
  auto routes = f.routes();
  f.board_script->sessions["acct1"] = R"({"id":"acct1","state":"active"})";
  f.sup_script->registers["new"] = AdminResult::registered;
  f.sup_script->registers["acct1"] = AdminResult::exists;
  f.sup_script->unregisters["acct1"] = AdminResult::unregistered;

  auto got = routes.get_session("acct1");
  CHECK(got.status == 200);
  CHECK(body_of(got) == json{{"id", "acct1"}, {"state", "active"}});
  auto missing = routes.get_session("nobody");
  CHECK(missing.status == 404);
  CHECK(body_of(missing) == json{{"error", "unknown session nobody"}});

  auto created = routes.put_session("new", "");
  CHECK(created.status == 201);
  CHECK(body_of(created) == json{{"session", "new"}, {"result", "registered"}});
  auto exists = routes.put_session("acct1", "");
  CHECK(exists.status == 200);
  CHECK(body_of(exists) == json{{"session", "acct1"}, {"result", "exists"}});
  auto no_file = routes.put_session("nofile", "");
  CHECK(no_file.status == 404);
  CHECK(body_of(no_file) ==
        json{{"error", "no file session-nofile.json in the sessions directory"}});

  auto removed = routes.delete_session("acct1", "");
  CHECK(removed.status == 200);
  CHECK(body_of(removed) == json{{"session", "acct1"}, {"result", "unregistered"}});
  auto unknown = routes.delete_session("nobody", "");
  CHECK(unknown.status == 404);
  CHECK(body_of(unknown) == json{{"error", "unknown session nobody"}});

  f.sup_script->hang = true;
  CHECK(routes.put_session("new", "").status == 503);
  CHECK(body_of(routes.delete_session("acct1", "")) ==
        json{{"error", "supervisor did not answer"}});
}

TEST_CASE("admin routes: pause and resume map the session's answer", "[admin][pause]") {
  Fixture f;
  auto routes = f.routes();
  auto report = [](const std::string& id, CycleOutcome o, SessionState s, std::string detail = "") {
    return CycleReport{id, o, std::move(detail), s, 0};
  };
  f.sup_script->pauses["acct1"] = report("acct1", CycleOutcome::paused, SessionState::paused);
  f.sup_script->resumes["acct1"] = report("acct1", CycleOutcome::resumed, SessionState::active);
  f.sup_script->pauses["gone"] = report("gone", CycleOutcome::file_missing, SessionState::pending);
  f.sup_script->pauses["broken"] =
      report("broken", CycleOutcome::file_error, SessionState::file_error, "parse: not JSON");
  f.sup_script->pauses["raced"] = report("raced", CycleOutcome::superseded, SessionState::active,
                                         "a later request replaced it");
  f.sup_script->resumes["raced"] = report("raced", CycleOutcome::superseded, SessionState::paused,
                                          "the file kept changing on disk");
  f.sup_script->pauses["stopping"] =
      report("stopping", CycleOutcome::shutting_down, SessionState::active);
  f.sup_script->resumes["disk"] = report("disk", CycleOutcome::transient_error,
                                         SessionState::paused, "save failed: No space left");
  f.sup_script->reports["acct1"] =
      report("acct1", CycleOutcome::paused, SessionState::paused, "paused by an operator");

  auto paused = routes.pause_session("acct1", std::string("migrating the bot"), "");
  CHECK(paused.status == 200);
  CHECK(body_of(paused) == json{{"session", "acct1"}, {"paused", true}, {"state", "paused"}});
  auto no_reason = routes.pause_session("acct1", std::nullopt, "");
  CHECK(no_reason.status == 200);
  auto resumed = routes.resume_session("acct1", "");
  CHECK(resumed.status == 200);
  CHECK(body_of(resumed) == json{{"session", "acct1"}, {"paused", false}, {"state", "active"}});
  CHECK(f.sup_script->take() ==
        std::vector<std::string>{"pause acct1 migrating the bot", "pause acct1 ", "resume acct1"});

  // A manual refresh of a paused session is refused: resume it first.
  auto refused = routes.refresh_session("acct1", "");
  CHECK(refused.status == 409);
  CHECK(
      body_of(refused) ==
      json{{"error", "session acct1 is paused; POST /sessions/acct1/resume to refresh it again"}});

  auto unknown = routes.pause_session("nobody", std::nullopt, "");
  CHECK(unknown.status == 404);
  CHECK(body_of(unknown) == json{{"error", "unknown session nobody"}});
  CHECK(routes.resume_session("nobody", "").status == 404);
  auto gone = routes.pause_session("gone", std::nullopt, "");
  CHECK(gone.status == 404);
  CHECK(body_of(gone) == json{{"error", "no file session-gone.json in the sessions directory"}});
  auto broken = routes.pause_session("broken", std::nullopt, "");
  CHECK(broken.status == 409);
  CHECK(body_of(broken) == json{{"error", "session file cannot be used: parse: not JSON"}});
  auto raced = routes.pause_session("raced", std::nullopt, "");
  CHECK(raced.status == 409);
  CHECK(body_of(raced) == json{{"error", "not written: a later request replaced it"}});
  CHECK(body_of(routes.resume_session("raced", "")) ==
        json{{"error", "not written: the file kept changing on disk"}});
  CHECK(routes.pause_session("stopping", std::nullopt, "").status == 503);
  auto disk = routes.resume_session("disk", "");
  CHECK(disk.status == 500);
  CHECK(body_of(disk) ==
        json{{"error", "not written: transient_error: save failed: No space left"}});

  // The reason goes into the file and the status: one short line.
  f.sup_script->take();
  for (const std::string& bad :
       {std::string(201, 'x'), std::string("two\nlines"), std::string("tab\there"),
        std::string("nul\0byte", 8), std::string("del\x7f")}) {
    CAPTURE(bad);
    auto r = routes.pause_session("acct1", bad, "");
    CHECK(r.status == 400);
    CHECK(body_of(r) == json{{"error", "reason: at most 200 bytes, no control characters"}});
  }
  CHECK(f.sup_script->take().empty());
  CHECK(routes.pause_session("acct1", std::string(200, 'x'), "").status == 200);
  CHECK(routes.pause_session("acct1", std::string("ünïcode ok"), "").status == 200);

  // Waits like a manual refresh (a running cycle finishes first), then 504.
  f.sup_script->hang = true;
  const auto started = std::chrono::steady_clock::now();
  auto late = routes.pause_session("acct1", std::nullopt, "");
  CHECK(std::chrono::steady_clock::now() - started >= 300ms);  // the refresh timeout
  CHECK(late.status == 504);
  CHECK(routes.resume_session("acct1", "").status == 504);
}

TEST_CASE("admin routes: session ids are validated before anything else", "[admin]") {
  Fixture f;
  auto routes = f.routes("s3cret");
  const json invalid = {{"error", "invalid session id (expected [A-Za-z0-9_.-]{1,64})"}};
  for (const std::string& bad :
       std::vector<std::string>{"", "../etc", "a/b", "a b", std::string(65, 'a'), "ü"}) {
    CAPTURE(bad);
    for (auto r :
         {routes.get_session(bad), routes.refresh_session(bad, ""), routes.put_session(bad, ""),
          routes.delete_session(bad, ""), routes.session_route("PATCH", bad, "", ""),
          routes.session_route("GET", bad, "refresh", ""), routes.pause_session(bad, "why", ""),
          routes.resume_session(bad, ""), routes.session_route("POST", bad, "pause", "")}) {
      CHECK(r.status == 400);
      CHECK(body_of(r) == invalid);
    }
  }
  CHECK(f.sup_script->take().empty());
  CHECK(f.board_script->take().empty());
  CHECK(routes.get_session(std::string(64, 'a')).status == 404);  // the longest valid id
}

TEST_CASE("admin routes: the bearer token guards every mutating route", "[admin]") {
  Fixture f;
  auto routes = f.routes("s3cret");
  f.sup_script->reports["acct1"] = {"acct1", CycleOutcome::success, "", SessionState::active, 0};
  f.sup_script->registers["acct1"] = AdminResult::exists;
  f.sup_script->unregisters["acct1"] = AdminResult::unregistered;
  f.board_script->sessions["acct1"] = "{}";
  f.sup_script->pauses["acct1"] = {"acct1", CycleOutcome::paused, "", SessionState::paused, 0};
  f.sup_script->resumes["acct1"] = {"acct1", CycleOutcome::resumed, "", SessionState::active, 0};

  using Call = std::function<Reply(const std::string&)>;
  std::vector<std::pair<std::string, Call>> guarded = {
      {"refresh_all", [&](const std::string& a) { return routes.refresh_all(a); }},
      {"refresh_session", [&](const std::string& a) { return routes.refresh_session("acct1", a); }},
      {"put_session", [&](const std::string& a) { return routes.put_session("acct1", a); }},
      {"delete_session", [&](const std::string& a) { return routes.delete_session("acct1", a); }},
      {"pause_session",
       [&](const std::string& a) { return routes.pause_session("acct1", std::nullopt, a); }},
      {"resume_session", [&](const std::string& a) { return routes.resume_session("acct1", a); }},
  };
  for (auto& [name, call] : guarded) {
    CAPTURE(name);
    auto none = call("");
    CHECK(none.status == 401);
    CHECK(body_of(none) == json{{"error", "missing bearer token"}});
    CHECK(header(none, "WWW-Authenticate") == "Bearer");
    for (const char* wrong : {"Bearer s3cre", "Bearer s3cret2", "Bearer S3CRET", "bearer s3cret",
                              "Basic s3cret", "s3cret", "Bearer  s3cret", "Bearer "}) {
      CAPTURE(wrong);
      auto r = call(wrong);
      CHECK(r.status == 401);
      CHECK(body_of(r) == json{{"error", "wrong bearer token"}});
      CHECK(r.body.find("s3cret") == std::string::npos);  // the token is never echoed
    }
    CHECK(f.sup_script->take().empty());  // nothing reached the supervisor
    auto ok = call("Bearer s3cret");
    CHECK(ok.status >= 200);
    CHECK(ok.status < 300);
    CHECK(f.sup_script->take().size() == 1);
  }
  // Reading needs no token.
  CHECK(routes.get_session("acct1").status == 200);
  CHECK(routes.status({}).status == 200);
  CHECK(routes.metrics().status == 200);
}

TEST_CASE("admin routes: session_route checks the method", "[admin]") {
  Fixture f;
  auto routes = f.routes();
  f.sup_script->reports["acct1"] = {"acct1", CycleOutcome::success, "", SessionState::active, 0};
  f.sup_script->registers["acct1"] = AdminResult::registered;
  f.sup_script->unregisters["acct1"] = AdminResult::unregistered;
  f.board_script->sessions["acct1"] = "{}";

  for (const char* method : {"GET", "PUT", "DELETE", "PATCH", "HEAD"}) {
    CAPTURE(method);
    for (const char* action : {"refresh", "pause", "resume"}) {
      CAPTURE(action);
      auto r = routes.session_route(method, "acct1", action, "");
      CHECK(r.status == 405);
      CHECK(header(r, "Allow") == "POST");
      CHECK(body_of(r) == json{{"error", "method not allowed"}});
    }
  }
  for (const char* method : {"POST", "PATCH", "HEAD"}) {
    CAPTURE(method);
    auto r = routes.session_route(method, "acct1", "", "");
    CHECK(r.status == 405);
    CHECK(header(r, "Allow") == "GET, PUT, DELETE");
  }
  CHECK(f.sup_script->take().empty());
  f.sup_script->pauses["acct1"] = {"acct1", CycleOutcome::paused, "", SessionState::paused, 0};
  f.sup_script->resumes["acct1"] = {"acct1", CycleOutcome::resumed, "", SessionState::active, 0};
  CHECK(routes.session_route("POST", "acct1", "refresh", "").status == 200);
  CHECK(routes.session_route("GET", "acct1", "", "").status == 200);
  CHECK(routes.session_route("PUT", "acct1", "", "").status == 201);
  CHECK(routes.session_route("DELETE", "acct1", "", "").status == 200);
  CHECK(routes.session_route("POST", "acct1", "pause", "", std::string("maintenance")).status ==
        200);
  CHECK(routes.session_route("POST", "acct1", "resume", "").status == 200);
  CHECK(f.sup_script->take() ==
        std::vector<std::string>{"refresh acct1", "register acct1", "unregister acct1",
                                 "pause acct1 maintenance", "resume acct1"});
}

// -- over HTTP ----------------------------------------------------------------

namespace {

// One keep-alive connection to 127.0.0.1 speaking raw HTTP/1.1.
struct RawClient {
  int fd = -1;
  explicit RawClient(int port) {
    fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    timeval tv{5, 0};  // httplib waited 10 s for a body that never came
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  }
  ~RawClient() {
    if (fd >= 0) ::close(fd);
  }
  // Sends `request` as is; returns the status code and body of the answer
  // (0 when none came within the timeout).
  std::pair<int, std::string> exchange(const std::string& request) {
    REQUIRE(::send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
            static_cast<ssize_t>(request.size()));
    std::string in;
    char buf[4096];
    std::size_t header_end = std::string::npos;
    std::size_t length = 0;
    for (int reads = 0; reads < 1000; ++reads) {
      if (header_end == std::string::npos) {
        header_end = in.find("\r\n\r\n");
        if (header_end != std::string::npos) {
          auto cl = in.find("Content-Length: ");
          if (cl != std::string::npos && cl < header_end)
            length = std::stoul(in.substr(cl + 16, in.find("\r\n", cl) - cl - 16));
        }
      }
      if (header_end != std::string::npos && in.size() >= header_end + 4 + length) break;
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) return {0, in};
      in.append(buf, static_cast<std::size_t>(n));
    }
    if (in.rfind("HTTP/1.1 ", 0) != 0) return {0, in};
    return {std::stoi(in.substr(9, 3)), in.substr(header_end + 4, length)};
  }
};

struct ServerFixture : Fixture {
  std::unique_ptr<AdminServer> server;
  explicit ServerFixture(std::string token = "") {
    AdminServer::Options o;
    o.listen = parse_listen("127.0.0.1:0");
    o.admin_token = std::move(token);
    o.refresh_timeout = 300ms;
    o.query_timeout = 200ms;
    server = std::make_unique<AdminServer>(sys, supervisor, board, o);
    server->start();
    REQUIRE(server->port() > 0);
  }
  ~ServerFixture() { server->stop(); }
};

}  // namespace

TEST_CASE("admin server: POST, PUT and DELETE without a body or Content-Length", "[admin]") {
  ServerFixture f;
  f.sup_script->registers["acct1"] = AdminResult::registered;
  f.sup_script->unregisters["acct1"] = AdminResult::unregistered;
  f.sup_script->reports["acct1"] = {"acct1", CycleOutcome::success, "", SessionState::active, 0};
  f.sup_script->pauses["acct1"] = {"acct1", CycleOutcome::paused, "", SessionState::paused, 0};
  f.sup_script->resumes["acct1"] = {"acct1", CycleOutcome::resumed, "", SessionState::active, 0};
  RawClient c(f.server->port());

  // What `curl -X POST 127.0.0.1:9464/refresh` sends.
  const auto started = std::chrono::steady_clock::now();
  auto r = c.exchange("POST /refresh HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: */*\r\n\r\n");
  CHECK(r.first == 202);
  CHECK(json::parse(r.second) == json{{"refreshing", 7}});
  CHECK(std::chrono::steady_clock::now() - started < 2s);

  // The same connection goes on: nothing was taken for a body.
  r = c.exchange("POST /sessions/acct1/refresh HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  CHECK(r.first == 200);
  r = c.exchange("PUT /sessions/acct1 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  CHECK(r.first == 201);
  r = c.exchange("DELETE /sessions/acct1 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  CHECK(r.first == 200);
  r = c.exchange("POST /sessions/acct1/pause?reason=bot%20migration HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(r.first == 200);
  CHECK(json::parse(r.second) == json{{"session", "acct1"}, {"paused", true}, {"state", "paused"}});
  r = c.exchange("POST /sessions/acct1/resume HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  CHECK(r.first == 200);
  r = c.exchange("GET /sessions/acct1/pause HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  CHECK(r.first == 405);
  r = c.exchange("POST /sessions/acct1/sleep HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  CHECK(r.first == 404);
  r = c.exchange("POST /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  CHECK(r.first == 405);
  r = c.exchange("POST /nowhere HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  CHECK(r.first == 404);
  // A body that is announced is still read (and ignored), chunked too.
  r = c.exchange("POST /refresh HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\n\r\nhello");
  CHECK(r.first == 202);
  r = c.exchange(
      "POST /refresh HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5\r\nhello\r\n0\r\n\r\n");
  CHECK(r.first == 202);
  r = c.exchange("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  CHECK(r.first == 200);
  CHECK(f.sup_script->take() ==
        std::vector<std::string>{"refresh_all", "refresh acct1", "register acct1",
                                 "unregister acct1", "pause acct1 bot migration", "resume acct1",
                                 "refresh_all", "refresh_all"});
}

TEST_CASE("admin server: maps requests onto the routes", "[admin]") {
  ServerFixture f("s3cret");
  f.sup_script->reports["acct1"] = {"acct1", CycleOutcome::transient_error, "HTTP 503",
                                    SessionState::retrying, 1};
  httplib::Client c("127.0.0.1", f.server->port());
  c.set_read_timeout(5, 0);

  auto m = c.Get("/metrics");
  REQUIRE(m);
  CHECK(m->status == 200);
  CHECK(m->get_header_value("Content-Type") == "text/plain; version=0.0.4; charset=utf-8");

  auto s = c.Get("/status?state=active&limit=5");
  REQUIRE(s);
  CHECK(s->status == 200);
  CHECK(json::parse(s->body) == json{{"state", "active"}, {"limit", 5}});
  auto bad = c.Get("/status?limit=");
  REQUIRE(bad);
  CHECK(bad->status == 400);

  auto denied = c.Post("/sessions/acct1/refresh");
  REQUIRE(denied);
  CHECK(denied->status == 401);
  CHECK(denied->get_header_value("WWW-Authenticate") == "Bearer");
  c.set_bearer_token_auth("s3cret");
  auto refreshed = c.Post("/sessions/acct1/refresh");
  REQUIRE(refreshed);
  CHECK(refreshed->status == 502);
  CHECK(json::parse(refreshed->body) ==
        json{{"session", "acct1"}, {"outcome", "transient_error: HTTP 503"}});

  // The path is decoded before the id is checked.
  auto spaced = c.Get("/sessions/a%20b");
  REQUIRE(spaced);
  CHECK(spaced->status == 400);
  auto traversal = c.Get("/sessions/..%2Fetc");  // decoded to two segments: no route
  REQUIRE(traversal);
  CHECK(traversal->status == 404);

  auto patch = c.Patch("/sessions/acct1", "", "application/json");
  REQUIRE(patch);
  CHECK(patch->status == 405);
  CHECK(patch->get_header_value("Allow") == "GET, PUT, DELETE");
  auto get_refresh = c.Get("/refresh");
  REQUIRE(get_refresh);
  CHECK(get_refresh->status == 405);
  CHECK(get_refresh->get_header_value("Allow") == "POST");
  auto put_status = c.Put("/status", "", "application/json");
  REQUIRE(put_status);
  CHECK(put_status->status == 405);
  CHECK(put_status->get_header_value("Allow") == "GET");

  auto big = c.Post("/refresh", std::string(65 * 1024, 'x'), "text/plain");
  REQUIRE(big);
  CHECK(big->status == 413);
  CHECK(json::parse(big->body) == json{{"error", "request body too large"}});
  auto nowhere = c.Get("/nowhere");
  REQUIRE(nowhere);
  CHECK(nowhere->status == 404);
  CHECK(json::parse(nowhere->body) == json{{"error", "not found"}});
}

TEST_CASE("parse_listen", "[admin]") {
  auto a = parse_listen("127.0.0.1:9464");
  CHECK(a.host == "127.0.0.1");
  CHECK(a.port == 9464);
  CHECK(a.loopback);
  auto b = parse_listen("[::1]:80");
  CHECK(b.host == "::1");
  CHECK(b.loopback);
  auto c = parse_listen(":9464");
  CHECK(c.host == "0.0.0.0");
  CHECK_FALSE(c.loopback);
  CHECK(parse_listen("localhost:1").loopback);
  CHECK_THROWS_AS(parse_listen("9464"), ConfigError);
  CHECK_THROWS_AS(parse_listen("127.0.0.1:x"), ConfigError);
  CHECK_THROWS_AS(parse_listen("127.0.0.1:65536"), ConfigError);
  CHECK_THROWS_AS(parse_listen("127.0.0.1:80x"), ConfigError);
}

// -- who may read (issue 12, part 4) -------------------------------------------

namespace {

AdminRoutes read_routes(Fixture& f, std::string token, bool read_needs_token) {
  AdminRoutes::Options o{std::move(token), 300ms, 200ms};
  o.read_needs_token = read_needs_token;
  return AdminRoutes(f.sys, f.supervisor, f.board, o);
}

// The cookie value /login sets for token "s3cret": the token's bytes in hex.
const std::string kCookie = "sessiond_token=733363726574";

}  // namespace

TEST_CASE("read access: on loopback, or without a token, anyone may read", "[admin][read]") {
  Fixture f;
  CHECK(read_routes(f, "s3cret", false).may_read(Auth{}));
  CHECK_FALSE(read_routes(f, "s3cret", false).read_denied(Auth{}));
  CHECK(read_routes(f, "", true).may_read(Auth{}));
}

TEST_CASE("read access: off loopback, the bearer token or the login cookie", "[admin][read]") {
  Fixture f;
  auto routes = read_routes(f, "s3cret", true);
  CHECK_FALSE(routes.may_read(Auth{}));
  CHECK(routes.may_read(Auth{"Bearer s3cret", ""}));
  CHECK_FALSE(routes.may_read(Auth{"Bearer s3cre", ""}));
  CHECK_FALSE(routes.may_read(Auth{"Bearer s3cret2", ""}));
  CHECK_FALSE(routes.may_read(Auth{"Basic s3cret", ""}));
  CHECK_FALSE(routes.may_read(Auth{"s3cret", ""}));
  CHECK(routes.may_read(Auth{"", kCookie}));
  CHECK(routes.may_read(Auth{"", "theme=dark; " + kCookie + "; lang=en"}));
  CHECK(routes.may_read(Auth{"", "sessiond_token=wrong;" + kCookie}));  // a duplicate name
  CHECK(routes.may_read(Auth{"", "sessiond_token=\"733363726574\""}));
  // The raw token is not the cookie value, nor is a prefix or a lookalike name.
  CHECK_FALSE(routes.may_read(Auth{"", "sessiond_token=s3cret"}));
  CHECK_FALSE(routes.may_read(Auth{"", "sessiond_token=7333637265"}));
  CHECK_FALSE(routes.may_read(Auth{"", "xsessiond_token=733363726574"}));
  CHECK_FALSE(routes.may_read(Auth{"", "sessiond_token2=733363726574"}));
  CHECK_FALSE(routes.may_read(Auth{"", "sessiond_token="}));

  auto denied = routes.read_denied(Auth{});
  REQUIRE(denied);
  CHECK(denied->status == 401);
  CHECK(header(*denied, "WWW-Authenticate") == "Bearer");
  CHECK(body_of(*denied)["error"].get<std::string>().find("admin token") != std::string::npos);
  auto wrong = routes.read_denied(Auth{"Bearer nope", ""});
  REQUIRE(wrong);
  CHECK(wrong->body.find("nope") == std::string::npos);  // never echoes what was sent
  CHECK_FALSE(routes.read_denied(Auth{"", kCookie}));
}

TEST_CASE("read access: /login sets the cookie for the right token only", "[admin][read]") {
  Fixture f;
  auto routes = read_routes(f, "s3cret", true);
  auto ok = routes.login("Bearer s3cret", "", "");
  CHECK(ok.status == 204);
  CHECK(header(ok, "Set-Cookie") == kCookie + "; Path=/; HttpOnly; SameSite=Strict");
  CHECK(header(ok, "Cache-Control") == "no-store");

  // A form post (the page without script) goes back to the page.
  auto form = routes.login("", "application/x-www-form-urlencoded", "x=1&token=s3cret");
  CHECK(form.status == 303);
  CHECK(header(form, "Location") == "/");
  CHECK(header(form, "Set-Cookie") == kCookie + "; Path=/; HttpOnly; SameSite=Strict");
  // Form encoding is decoded: a token with a space, '+' and ';' gets a cookie that reads back.
  auto odd = read_routes(f, "a b+c;d", true);
  auto odd_login =
      odd.login("", "application/x-www-form-urlencoded; charset=UTF-8", "token=a+b%2Bc%3Bd");
  CHECK(odd_login.status == 303);
  const std::string set = header(odd_login, "Set-Cookie");
  CHECK(odd.may_read(Auth{"", set.substr(0, set.find(';'))}));

  for (const auto& [authorization, content_type, body] :
       std::vector<std::tuple<std::string, std::string, std::string>>{
           {"", "", ""},
           {"Bearer guess1", "", ""},
           {"", "application/x-www-form-urlencoded", "token=guess1"},
           {"", "application/x-www-form-urlencoded", "token="},
           {"", "application/json", "token=s3cret"},  // only a form body is read
       }) {
    CAPTURE(authorization, content_type, body);
    auto r = routes.login(authorization, content_type, body);
    CHECK(r.status == 401);
    CHECK(header(r, "Set-Cookie").empty());
    CHECK(r.body.find("guess1") == std::string::npos);  // never echoed
    CHECK(r.body.find("s3cret") == std::string::npos);
  }
  // No token configured: there is nothing to log in with.
  CHECK(read_routes(f, "", false).login("Bearer x", "", "").status == 401);

  auto out = AdminRoutes::logout("");
  CHECK(out.status == 204);
  CHECK(header(out, "Set-Cookie") ==
        "sessiond_token=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict");
  CHECK(AdminRoutes::logout("application/x-www-form-urlencoded").status == 303);
}

TEST_CASE("read access over HTTP: a non-loopback listen address guards reads only",
          "[admin][read]") {
  Fixture f;
  AdminServer::Options o;
  // Tests bind 127.0.0.1 only: the flag stands in for a non-loopback address
  // (what parse_listen(":9464") gives), which is what the server acts on.
  o.listen = parse_listen("127.0.0.1:0");
  o.listen.loopback = false;
  o.admin_token = "s3cret";
  o.refresh_timeout = 300ms;
  o.query_timeout = 200ms;
  AdminServer server(f.sys, f.supervisor, f.board, o);
  server.start();
  REQUIRE(server.port() > 0);
  f.board_script->sessions["acct1"] = R"({"mobile":"acct1"})";

  httplib::Client c("127.0.0.1", server.port());
  c.set_read_timeout(5, 0);
  for (const char* path : {"/status", "/sessions/acct1"}) {
    CAPTURE(path);
    auto r = c.Get(path);
    REQUIRE(r);
    CHECK(r->status == 401);
    CHECK(r->get_header_value("WWW-Authenticate") == "Bearer");
  }
  for (const char* path : {"/metrics", "/healthz", "/readyz"}) {
    CAPTURE(path);
    auto r = c.Get(path);
    REQUIRE(r);
    CHECK(r->status == 200);
  }
  // Mutations still need the bearer token; the read cookie is not enough.
  auto refresh = c.Post("/refresh", httplib::Headers{{"Cookie", kCookie}}, "", "text/plain");
  REQUIRE(refresh);
  CHECK(refresh->status == 401);

  // The page's login: a wrong token gets no cookie, the right one does.
  auto wrong = c.Post("/login", "token=nope", "application/x-www-form-urlencoded");
  REQUIRE(wrong);
  CHECK(wrong->status == 401);
  CHECK_FALSE(wrong->has_header("Set-Cookie"));
  auto login = c.Post("/login", "token=s3cret", "application/x-www-form-urlencoded");
  REQUIRE(login);
  CHECK(login->status == 303);
  const std::string cookie = login->get_header_value("Set-Cookie");
  CHECK(cookie.find("HttpOnly") != std::string::npos);
  CHECK(cookie.find("SameSite=Strict") != std::string::npos);
  httplib::Headers with_cookie{{"Cookie", cookie.substr(0, cookie.find(';'))}};
  auto status = c.Get("/status", with_cookie);
  REQUIRE(status);
  CHECK(status->status == 200);
  auto session = c.Get("/sessions/acct1", with_cookie);
  REQUIRE(session);
  CHECK(session->status == 200);
  CHECK(json::parse(session->body) == json{{"mobile", "acct1"}});

  c.set_bearer_token_auth("s3cret");
  auto bearer = c.Get("/status");
  REQUIRE(bearer);
  CHECK(bearer->status == 200);
  server.stop();
}

TEST_CASE("read access over HTTP: loopback reads need no token", "[admin][read]") {
  ServerFixture f("s3cret");
  httplib::Client c("127.0.0.1", f.server->port());
  c.set_read_timeout(5, 0);
  auto r = c.Get("/status");
  REQUIRE(r);
  CHECK(r->status == 200);
}

TEST_CASE("replicas over HTTP: read access, the token to each peer, limit=0, a dead peer named",
          "[admin][replicas]") {
  Fixture f;
  AdminServer::Options po;
  po.listen = parse_listen("127.0.0.1:0");
  po.listen.loopback = false;  // the peer, too, reads only with the token
  po.admin_token = "s3cret";
  po.query_timeout = 200ms;
  AdminServer peer(f.sys, f.supervisor, f.board, po);
  peer.start();
  REQUIRE(peer.port() > 0);
  // A bound port that does not listen: connections are refused.
  int dead = socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(dead >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(bind(dead, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  socklen_t len = sizeof addr;
  REQUIRE(getsockname(dead, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  const std::string dead_name = "127.0.0.1:" + std::to_string(ntohs(addr.sin_port));

  AdminServer::Options o = po;
  o.peers = "http://127.0.0.1:" + std::to_string(peer.port()) + ",http://" + dead_name;
  AdminServer server(f.sys, f.supervisor, f.board, o);
  server.start();
  REQUIRE(server.port() > 0);
  httplib::Client c("127.0.0.1", server.port());
  c.set_read_timeout(10, 0);

  auto denied = c.Get("/replicas");
  REQUIRE(denied);
  CHECK(denied->status == 401);
  CHECK(denied->body.find("action=\"/login\"") != std::string::npos);
  f.board_script->take();

  c.set_bearer_token_auth("s3cret");
  auto r = c.Get("/replicas");
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(r->get_header_value("Content-Type") == "text/html; charset=utf-8");
  CHECK(r->get_header_value("Content-Security-Policy") == kStatusPageCsp);
  CHECK(r->get_header_value("Cache-Control") == "no-store");
  // The stand-in board's /status is not sessiond's JSON, but it was asked
  // for the counts only and with the token (else the peer said 401).
  CHECK(f.board_script->take() == std::vector<std::string>{"status  0"});
  CHECK(r->body.find("did not answer: the answer is not sessiond&#39;s /status JSON") !=
        std::string::npos);
  CHECK(r->body.find("<tr class=\"failed\" data-replica=\"" + dead_name + "\">") !=
        std::string::npos);
  CHECK(r->body.find("0 of 2 replicas answered") != std::string::npos);
  CHECK(r->body.find("s3cret") == std::string::npos);
  server.stop();
  peer.stop();
  close(dead);
}

TEST_CASE("replicas over HTTP: without --peers the page says how to set it", "[admin][replicas]") {
  ServerFixture f;
  httplib::Client c("127.0.0.1", f.server->port());
  c.set_read_timeout(5, 0);
  auto r = c.Get("/replicas");
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(r->get_header_value("Content-Security-Policy") == kStatusPageCsp);
  CHECK(r->body.find("id=\"not-configured\"") != std::string::npos);
  CHECK(f.board_script->take().empty());
}

TEST_CASE("admin routes: several sites, /sites/{site}/sessions/{id} and /sessions/{id}",
          "[admin][sites]") {
  Fixture f;
  auto nics_script = std::make_shared<Script>();
  supervisor_actor nics = f.sys.spawn(standin_supervisor, nics_script);
  AdminRoutes routes(f.sys,
                     {SiteHandle{"rade", f.supervisor, FilePattern()},
                      SiteHandle{"nics24", nics, *FilePattern::parse("{id}_session.json")}},
                     f.board, AdminRoutes::Options{"", 300ms, 200ms});
  f.sup_script->reports["alice"] = {"alice", CycleOutcome::success, "", SessionState::active, 0};
  nics_script->reports["alice"] = {"alice", CycleOutcome::success, "", SessionState::active, 0};
  nics_script->reports["bob"] = {"bob", CycleOutcome::success, "", SessionState::active, 0};

  // Named: always that site's supervisor.
  CHECK(routes.session_route("POST", "alice", "refresh", "", std::nullopt, "nics24").status == 200);
  CHECK(nics_script->take() == std::vector<std::string>{"refresh alice"});
  CHECK(f.sup_script->take().empty());
  CHECK(routes.session_route("POST", "alice", "refresh", "", std::nullopt, "nope").status == 404);
  CHECK(routes.session_route("GET", "alice", "", "", std::nullopt, "Bad!").status == 400);

  // Unnamed: the one site the board knows the id in, 409 when several, 404 when none.
  f.board_script->located["bob"] = {"nics24"};
  f.board_script->located["alice"] = {"nics24", "rade"};
  CHECK(routes.refresh_session("bob", "").status == 200);
  CHECK(nics_script->take() == std::vector<std::string>{"refresh bob"});
  auto both = routes.refresh_session("alice", "");
  CHECK(both.status == 409);
  CHECK(body_of(both)["error"].get<std::string>().find("/sites/{site}/sessions/alice") !=
        std::string::npos);
  CHECK(routes.refresh_session("carol", "").status == 404);
  // PUT of an id nobody has yet: name the site (several sites).
  CHECK(routes.put_session("carol", "").status == 400);
  auto put = routes.put_session("carol", "", "nics24");
  CHECK(put.status == 404);
  CHECK(body_of(put)["error"] == "no file carol_session.json in the sessions directory");

  // Every site refreshes; /status passes the site filter, an unknown one is 404.
  CHECK(body_of(routes.refresh_all("")) == json{{"refreshing", 14}});
  CHECK(routes.status({std::nullopt, std::nullopt, std::string("rade")}).status == 200);
  CHECK(routes.status({std::nullopt, std::nullopt, std::string("nope")}).status == 404);
  CHECK(routes.sites().status == 200);
  caf::anon_send_exit(nics, caf::exit_reason::user_shutdown);
}
