// Actor tests with deterministic time: CAF's test coordinator drives the
// scheduler and the clock; HTTP is a scripted transport; blocking work runs
// inline; session files are real files in a temp dir. The decisions of a
// refresh are tested without actors in test_refresh_cycle.cpp; these check
// that the shells perform them: timers, results fed back, replies, the status
// board, the supervisor's restarts.

#include <catch2/catch.hpp>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scheduler/test_coordinator.hpp>
#include <caf/send.hpp>
#include <caf/typed_event_based_actor.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <deque>
#include <filesystem>
#include <fstream>
#include <optional>

#include "sessiond/json_log.hpp"
#include "sessiond/session_actor.hpp"
#include "sessiond/status_board.hpp"
#include "sessiond/supervisor.hpp"
#include "test_support.hpp"

using namespace sessiond;
using namespace std::chrono_literals;
using json = nlohmann::json;

namespace {

// Records requests; the test answers them one by one.
struct ScriptedTransport : HttpTransport {
  struct Pending {
    HttpRequest request;
    Callback done;
  };
  std::deque<Pending> pending;
  int submitted = 0;
  void submit(HttpRequest request, Callback done) override {
    ++submitted;
    pending.push_back({std::move(request), std::move(done)});
  }
  // Answers the oldest request; `sid` (if set) rotates the sid cookie.
  HttpRequest answer(long status, std::string body, std::optional<std::string> sid = std::nullopt,
                     std::vector<std::pair<std::string, std::string>> headers = {}) {
    REQUIRE_FALSE(pending.empty());
    auto p = std::move(pending.front());
    pending.pop_front();
    p.done(testing::scripted_response(p.request, status, std::move(body), sid, std::move(headers)));
    return p.request;
  }
};

// Stands in for the status board and a session listener: keeps what it is told.
struct Recorded {
  std::vector<SessionStatus> statuses;
  std::vector<CycleReport> reports;
  std::vector<std::string> forgotten;
};

status_board_actor::behavior_type board_recorder(status_board_actor::pointer,
                                                 std::shared_ptr<Recorded> rec) {
  return {
      [=](put_atom, const SessionStatusPtr& s) { rec->statuses.push_back(*s); },
      [=](forget_atom, const std::string&, const std::string& id) { rec->forgotten.push_back(id); },
      [=](site_error_atom, const std::string&, const std::string&) {},
      [=](remove_atom, const std::string&) {},
      [=](sites_atom, const SiteInfoListPtr&) {},
      [=](scanned_atom) {},
      [=](drain_atom) {},
      [=](ready_atom) { return true; },
      [=](metrics_atom) { return std::string(); },
      [=](status_atom, const std::string&, std::uint64_t, const std::string&) {
        return std::string();
      },
      [=](session_atom, const std::string&, const std::string&) { return std::string(); },
      [=](locate_atom, const std::string&) { return std::vector<std::string>(); },
      [=](sites_atom) { return std::string(); },
      [=](page_atom, const PageQuery&) { return PageResult{}; },
      [=](heartbeat_atom) {},
      [=](report_atom) {},
  };
}

session_listener_actor::behavior_type listener_recorder(session_listener_actor::pointer,
                                                        std::shared_ptr<Recorded> rec) {
  return {
      [=](scanned_atom, const std::vector<std::string>&) {},
      [=](finished_atom, const CycleReport& r) { rec->reports.push_back(r); },
  };
}

struct Fixture {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  caf::scheduler::test_coordinator* sched = nullptr;
  caf::actor_clock::time_point t0;
  std::string dir;
  ScriptedTransport http;
  testing::InlineExecutor inline_exec;
  std::shared_ptr<Recorded> rec = std::make_shared<Recorded>();
  std::shared_ptr<Runtime> rt = std::make_shared<Runtime>();
  std::shared_ptr<SiteSettings> settings = std::make_shared<SiteSettings>();
  std::shared_ptr<Metrics> metrics = std::make_shared<Metrics>(MetricsConfig{});
  SitePtr site;
  const WallTime wall0 = std::chrono::system_clock::now();

  Fixture() {
    cfg.set("scheduler.policy", caf::atom("testing"));
    sys = std::make_unique<caf::actor_system>(cfg);
    sched = &dynamic_cast<caf::scheduler::test_coordinator&>(sys->scheduler());
    t0 = sched->clock().now();
    char tmpl[] = "/tmp/sessiond-actors-XXXXXX";
    dir = ::mkdtemp(tmpl);
    settings->profile = std::make_shared<Profile>(parse_profile(testing::kRefreshProfile));
    settings->sessions_dir = dir;
    settings->interval = settings->profile->interval;
    settings->idle_timeout = settings->profile->idle_timeout;
    settings->catchup_window = 10s;
    settings->metrics = metrics.get();
    auto* clock = &sched->clock();
    auto start = t0;
    auto wall = wall0;
    settings->now = [clock, start, wall] {
      return wall +
             std::chrono::duration_cast<std::chrono::system_clock::duration>(clock->now() - start);
    };
    rt->http = &http;
    rt->io = &inline_exec;
    rt->exec = &inline_exec;
    rt->metrics = metrics;
    rt->board = sys->spawn(board_recorder, rec);
    rt->listener = sys->spawn(listener_recorder, rec);
    site = std::make_shared<Site>(Site{settings, rt});
  }
  std::vector<caf::actor> actors;  // stopped at the end, even when a REQUIRE fails

  WallTime now() const { return settings->now(); }

  session_actor spawn_session(const std::string& id) {
    auto a = sys->spawn(session_actor_impl, site, id);
    actors.push_back(caf::actor_cast<caf::actor>(a));
    return a;
  }

  std::vector<std::string> outcomes() const {
    std::vector<std::string> out;
    for (const auto& r : rec->reports) out.push_back(to_string(r.outcome));
    return out;
  }

  ~Fixture() {
    for (auto& a : actors) caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(rt->board, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(rt->listener, caf::exit_reason::user_shutdown);
    sched->run();
    std::filesystem::remove_all(dir);
  }

  std::string write_session(const std::string& id, std::optional<WallTime> last_refresh) {
    json doc = testing::session_doc(last_refresh);
    std::string path = session_path(dir, id);
    REQUIRE(std::holds_alternative<FileIdentity>(write_file_atomic(path, serialize_session(doc))));
    return path;
  }

  json read(const std::string& path) {
    std::ifstream in(path);
    return json::parse(in);
  }

  void advance(Millis d) {
    sched->clock().advance_time(d);
    sched->run();
  }

  void refresh_ok(const std::string& new_sid) {
    auto check = http.answer(200, "<div class=\"homeSection\">", new_sid);
    CHECK(check.url == "http://127.0.0.1:1/pwa");
    sched->run();
    auto refresh = http.answer(200, R"({"token":"T1"})");
    CHECK(refresh.method == "POST");
    sched->run();
  }
};

}  // namespace

TEST_CASE("a session actor refreshes on schedule, rotates and saves", "[actors]") {
  Fixture f;
  // Refreshed 1 minute ago: next refresh due in about 4 minutes, not now.
  auto path = f.write_session("09120000001", f.wall0 - 1min);
  auto a = f.spawn_session("09120000001");
  f.sched->run();
  CHECK(f.http.pending.empty());
  f.advance(3min);
  CHECK(f.http.pending.empty());  // jitter keeps it within [0.9, 1.0] of the 4 minutes left
  f.advance(1min + 1s);
  REQUIRE(f.http.pending.size() == 1);
  f.refresh_ok("s1");
  CHECK(f.outcomes() == std::vector<std::string>{"success"});
  // The published status says when the next refresh is (GET /status: nextRefresh).
  REQUIRE(f.rec->statuses.back().next_refresh);
  CHECK(*f.rec->statuses.back().next_refresh > f.now() + 4min + 20s);
  CHECK(*f.rec->statuses.back().next_refresh <= f.now() + 5min);
  auto doc = f.read(path);
  CHECK(doc["cookies"][0]["value"] == "s1");
  CHECK(doc["cookies"][0]["sameSite"] == "Lax");
  CHECK(doc["headers"]["Authorization"] == "Bearer T1");
  CHECK(doc["keepalive"]["refreshCount"] == 8);
  CHECK(doc["keepalive"]["state"] == "active");
  CHECK(doc["botField"] == 42);
  CHECK(doc["origins"][0]["localStorage"][0]["value"] == "v");
  // Next one about one interval later, with the rotated cookie and the token.
  f.advance(4min + 20s);
  CHECK(f.http.pending.empty());
  f.advance(45s);
  REQUIRE(f.http.pending.size() == 1);
  auto req = f.http.pending.front().request;
  CHECK(jar_value(req.cookies, "sid") == std::optional<std::string>("s1"));
  CHECK(std::find(req.headers.begin(), req.headers.end(), "Authorization: Bearer T1") !=
        req.headers.end());
  f.refresh_ok("s2");
  CHECK(f.outcomes().size() == 2);
  CHECK(f.metrics->refreshes(RefreshResult::success) == 2);
}

TEST_CASE("an overdue session is refreshed within the catch-up window", "[actors]") {
  Fixture f;
  auto path = f.write_session("09120000002", f.wall0 - 20min);
  auto a = f.spawn_session("09120000002");
  f.sched->run();
  f.advance(10s);
  CHECK(f.http.pending.size() == 1);
}

TEST_CASE("transient failures are retried with backoff; never two cycles at once", "[actors]") {
  Fixture f;
  auto path = f.write_session("09120000003", std::nullopt);
  auto a = f.spawn_session("09120000003");
  f.sched->run();
  f.advance(10s);
  REQUIRE(f.http.pending.size() == 1);
  // A manual refresh while a cycle runs does not start a second one.
  caf::anon_send(a, refresh_atom::value);
  f.sched->run();
  CHECK(f.http.pending.size() == 1);
  f.http.answer(503, "busy");
  f.sched->run();
  CHECK(f.outcomes() == std::vector<std::string>{"transient_error"});
  CHECK(f.rec->statuses.back().state == SessionState::retrying);
  CHECK(f.rec->statuses.back().retry_count == 1);
  REQUIRE(f.rec->statuses.back().next_refresh);
  CHECK(*f.rec->statuses.back().next_refresh >= f.now() + 1s);
  CHECK(*f.rec->statuses.back().next_refresh <= f.now() + 2s);
  // First retry within [base/2, base] = [1s, 2s]; nothing before.
  f.advance(900ms);
  CHECK(f.http.pending.empty());
  f.advance(1200ms);
  REQUIRE(f.http.pending.size() == 1);
  f.http.answer(429, "slow down", std::nullopt, {{"retry-after", "20"}});
  f.sched->run();
  // Retry-After wins over the (shorter) backoff.
  f.advance(19s);
  CHECK(f.http.pending.empty());
  f.advance(2s);
  REQUIRE(f.http.pending.size() == 1);
  f.refresh_ok("s9");
  CHECK(f.outcomes().back() == "success");
  CHECK(f.rec->statuses.back().state == SessionState::active);
  CHECK(f.rec->statuses.back().retry_count == 0);
  CHECK(f.read(path)["cookies"][0]["value"] == "s9");
}

TEST_CASE("a logged-out session is quarantined and no longer refreshed", "[actors]") {
  Fixture f;
  auto path = f.write_session("09120000004", std::nullopt);
  auto a = f.spawn_session("09120000004");
  f.sched->run();
  f.advance(10s);
  REQUIRE(f.http.pending.size() == 1);
  f.http.answer(302, "", std::nullopt, {{"location", "/login?next=%2Fpwa"}});
  f.sched->run();
  CHECK(f.outcomes() == std::vector<std::string>{"logged_out"});
  CHECK(f.rec->statuses.back().state == SessionState::invalid);
  CHECK_FALSE(std::filesystem::exists(path));
  auto moved = f.read(f.dir + "/invalid/session-09120000004.json");
  CHECK(moved["keepalive"]["state"] == "invalid");
  CHECK(moved["botField"] == 42);
  f.advance(1h);
  CHECK(f.http.pending.empty());
  CHECK(f.http.submitted == 1);
}

TEST_CASE("a save that fails keeps the rotated cookie for the next cycle", "[actors]") {
  Fixture f;
  auto path = f.write_session("09120000005", std::nullopt);
  auto a = f.spawn_session("09120000005");
  f.sched->run();
  f.advance(10s);
  REQUIRE(f.http.pending.size() == 1);
  // The directory cannot take the temp file: make the save fail. (Root ignores
  // permissions, so replace the directory by a file of the same name instead.)
  std::string moved_dir = f.dir + ".away";
  std::filesystem::rename(f.dir, moved_dir);
  { std::ofstream blocker(f.dir); }
  f.http.answer(200, "<div class=\"homeSection\">", std::string("rotated"));
  f.sched->run();
  f.http.answer(200, R"({"token":"T2"})");
  f.sched->run();
  REQUIRE_FALSE(f.outcomes().empty());
  CHECK(f.outcomes().back() == "transient_error");
  CHECK(f.metrics->file_errors(FileErrorKind::write) == 1);
  std::filesystem::remove(f.dir);
  std::filesystem::rename(moved_dir, f.dir);
  CHECK(f.read(path)["cookies"][0]["value"] == "s0");  // old file intact
  // The retry uses the rotated cookie, not the stale one on disk.
  f.advance(3s);
  REQUIRE(f.http.pending.size() == 1);
  CHECK(jar_value(f.http.pending.front().request.cookies, "sid") ==
        std::optional<std::string>("rotated"));
  f.refresh_ok("rotated2");
  CHECK(f.read(path)["cookies"][0]["value"] == "rotated2");
}

TEST_CASE("the bot's rewrite during a refresh wins", "[actors]") {
  Fixture f;
  auto path = f.write_session("09120000006", std::nullopt);
  auto a = f.spawn_session("09120000006");
  f.sched->run();
  f.advance(10s);
  REQUIRE(f.http.pending.size() == 1);
  f.http.answer(200, "<div class=\"homeSection\">", std::string("ours"));
  f.sched->run();
  // The login bot writes a new session while our refresh is in flight.
  json bot = {
      {"cookies",
       json::array({{{"name", "sid"}, {"value", "bot"}, {"domain", "127.0.0.1"}, {"path", "/"}}})},
      {"origins", json::array()}};
  REQUIRE(std::holds_alternative<FileIdentity>(write_file_atomic(path, bot.dump())));
  f.http.answer(200, R"({"token":"T3"})");
  f.sched->run();
  CHECK(f.read(path)["cookies"][0]["value"] == "bot");  // not overwritten
  // It is reloaded and refreshed next, with the bot's cookie.
  REQUIRE(f.http.pending.size() == 1);
  CHECK(jar_value(f.http.pending.front().request.cookies, "sid") ==
        std::optional<std::string>("bot"));
  f.refresh_ok("bot2");
  CHECK(f.read(path)["cookies"][0]["value"] == "bot2");
}

TEST_CASE("a change report of our own save is ignored; the bot's new file is refreshed at once",
          "[actors]") {
  Fixture f;
  auto path = f.write_session("09120000008", f.wall0 - 1min);
  auto a = f.spawn_session("09120000008");
  f.sched->run();
  f.advance(4min + 1s);
  REQUIRE(f.http.pending.size() == 1);
  f.refresh_ok("s1");
  REQUIRE(f.outcomes() == std::vector<std::string>{"success"});
  // The watcher reports the file as our save left it: nothing to do.
  caf::anon_send(a, changed_atom::value, *stat_identity(path));
  f.sched->run();
  CHECK(f.http.pending.empty());
  // The login bot writes a new session: refreshed now, not at the schedule.
  json bot = {
      {"cookies",
       json::array({{{"name", "sid"}, {"value", "bot"}, {"domain", "127.0.0.1"}, {"path", "/"}}})},
      {"origins", json::array()}};
  REQUIRE(std::holds_alternative<FileIdentity>(write_file_atomic(path, bot.dump())));
  caf::anon_send(a, changed_atom::value, *stat_identity(path));
  f.sched->run();
  REQUIRE(f.http.pending.size() == 1);
  CHECK(jar_value(f.http.pending.front().request.cookies, "sid") ==
        std::optional<std::string>("bot"));
}

namespace {
// Asks the supervisor once (a scoped_actor would block under the test
// coordinator) and keeps the answer.
caf::behavior ask_supervisor(caf::event_based_actor* self, supervisor_actor sup, std::string what,
                             std::string id, std::shared_ptr<std::vector<CycleReport>> out) {
  auto keep = [=](const CycleReport& r) { out->push_back(r); };
  if (what == "pause")
    self->request(sup, caf::infinite, pause_atom::value, id, std::string("bot migration"))
        .then(keep);
  else if (what == "resume")
    self->request(sup, caf::infinite, resume_atom::value, id).then(keep);
  else
    self->request(sup, caf::infinite, refresh_atom::value, id).then(keep);
  return {};
}
}  // namespace

TEST_CASE("pause and resume through the supervisor: written after the running cycle, answered",
          "[actors][pause]") {
  Fixture f;
  auto path = f.write_session("09120000009", f.wall0 - 1min);
  SupervisorSetup setup;
  setup.site = f.site;
  auto sup = f.sys->spawn(supervisor_impl, setup);
  f.actors.push_back(caf::actor_cast<caf::actor>(sup));
  caf::anon_send(sup, file_added_atom::value, std::string("09120000009"),
                 std::optional<FileIdentity>());
  f.sched->run();
  f.advance(4min + 1s);
  REQUIRE(f.http.pending.size() == 1);  // a refresh is in flight

  auto answers = std::make_shared<std::vector<CycleReport>>();
  auto ask = [&](const std::string& what, const std::string& id) {
    f.sys->spawn(ask_supervisor, sup, what, id, answers);
    f.sched->run();
  };
  ask("pause", "09120000009");
  CHECK(answers->empty());  // the running cycle finishes first
  CHECK_FALSE(f.read(path)["keepalive"].contains("paused"));
  f.refresh_ok("s1");
  REQUIRE(answers->size() == 1);
  CHECK(answers->back().outcome == CycleOutcome::paused);
  CHECK(answers->back().state == SessionState::paused);
  auto doc = f.read(path);
  CHECK(doc["keepalive"]["paused"] == true);
  CHECK(doc["keepalive"]["pauseReason"] == "bot migration");
  CHECK(doc["cookies"][0]["value"] == "s1");
  CHECK(f.rec->statuses.back().state == SessionState::paused);
  f.advance(20min);
  CHECK(f.http.pending.empty());  // no timer while paused

  ask("refresh", "09120000009");  // POST /sessions/{id}/refresh: 409
  REQUIRE(answers->size() == 2);
  CHECK(answers->back().outcome == CycleOutcome::paused);
  CHECK(f.http.pending.empty());
  ask("pause", "09000000000");
  REQUIRE(answers->size() == 3);
  CHECK(answers->back().outcome == CycleOutcome::not_found);

  ask("resume", "09120000009");
  REQUIRE(answers->size() == 4);
  CHECK(answers->back().outcome == CycleOutcome::resumed);
  CHECK_FALSE(f.read(path)["keepalive"].contains("paused"));
  // Twenty minutes since the last refresh: due within the catch-up window.
  f.advance(10s);
  REQUIRE(f.http.pending.size() == 1);
  f.refresh_ok("s2");
  CHECK(f.rec->statuses.back().state == SessionState::active);
}

namespace {
// A child that crashes as soon as it starts.
caf::behavior crashing(caf::event_based_actor* self, std::shared_ptr<int> spawned) {
  ++*spawned;
  self->quit(caf::sec::runtime_error);
  return {};
}
}  // namespace

TEST_CASE("the supervisor restarts a crashing child with backoff and gives up after its limit",
          "[actors]") {
  Fixture f;
  auto spawned = std::make_shared<int>(0);
  SupervisorSetup setup;
  setup.site = f.site;
  setup.restart_limit = 3;
  setup.restart_window = 10min;
  setup.spawn_child = [spawned](supervisor_actor::pointer sup, const std::string&) {
    return caf::actor_cast<session_actor>(sup->spawn(crashing, spawned));
  };
  auto sup = f.sys->spawn(supervisor_impl, setup);
  f.actors.push_back(caf::actor_cast<caf::actor>(sup));
  f.sched->run();
  caf::anon_send(sup, file_added_atom::value, std::string("09120000007"),
                 std::optional<FileIdentity>());
  f.sched->run();
  CHECK(*spawned == 1);
  // Restarts come after a backoff delay, not at once.
  CHECK(f.metrics->actor_restarts() == 1);
  f.advance(30s);
  CHECK(*spawned == 2);
  f.advance(30s);
  CHECK(*spawned == 3);
  f.advance(30s);
  CHECK(*spawned == 4);
  f.advance(5min);
  CHECK(*spawned == 4);  // gave up: 1 start + 3 restarts
  CHECK(f.metrics->actor_restarts() == 3);
  REQUIRE_FALSE(f.rec->statuses.empty());
  CHECK(f.rec->statuses.back().state == SessionState::failed);
  // A listener (`sessiond once`) hears that this session's pass is over.
  REQUIRE_FALSE(f.rec->reports.empty());
  CHECK(f.rec->reports.back().outcome == CycleOutcome::failed);
  // A new version of the file gives it a fresh start.
  caf::anon_send(sup, file_added_atom::value, std::string("09120000007"),
                 std::optional<FileIdentity>());
  f.sched->run();
  CHECK(*spawned == 5);
  caf::anon_send_exit(sup, caf::exit_reason::user_shutdown);
  f.sched->run();
}

namespace {
// Asks the status board once and keeps the answers (a scoped_actor would
// block under the test coordinator).
struct BoardAnswers {
  std::optional<bool> ready;
  std::optional<std::string> status;
  std::optional<std::string> session;
  std::optional<std::string> metrics;
};

caf::behavior ask_board(caf::event_based_actor* self, status_board_actor board,
                        std::shared_ptr<BoardAnswers> out) {
  self->request(board, caf::infinite, ready_atom::value).then([=](bool r) { out->ready = r; });
  self->request(board, caf::infinite, status_atom::value, std::string(), std::uint64_t{10},
                std::string())
      .then([=](const std::string& s) { out->status = s; });
  self->request(board, caf::infinite, session_atom::value, std::string(),
                std::string("09120000002"))
      .then([=](const std::string& s) { out->session = s; });
  self->request(board, caf::infinite, metrics_atom::value).then([=](const std::string& s) {
    out->metrics = s;
  });
  return {};
}
}  // namespace

TEST_CASE("the status board keeps the latest status of each session and derives the gauges",
          "[actors]") {
  Fixture f;
  StatusBoardSetup setup;
  setup.info.version = "test";
  setup.info.interval_s = 300;
  setup.metrics = f.metrics;
  setup.now = [&f] { return f.now(); };
  auto board = f.sys->spawn(status_board_impl, setup);
  f.actors.push_back(caf::actor_cast<caf::actor>(board));
  auto put = [&](const std::string& id, SessionState state) {
    SessionStatus s;
    s.id = id;
    s.state = state;
    s.last_refresh = f.now() - 30s;
    caf::anon_send(board, put_atom::value, SessionStatusPtr(std::make_shared<SessionStatus>(s)));
  };
  put("09120000001", SessionState::active);
  put("09120000002", SessionState::pending);
  put("09120000002", SessionState::retrying);  // the latest one counts
  put("09120000003", SessionState::invalid);
  caf::anon_send(board, forget_atom::value, std::string(), std::string("09120000003"));
  f.sched->run();

  auto before_scan = std::make_shared<BoardAnswers>();
  f.actors.push_back(f.sys->spawn(ask_board, board, before_scan));
  f.sched->run();
  REQUIRE(before_scan->ready);
  CHECK_FALSE(*before_scan->ready);  // not before the first scan

  caf::anon_send(board, scanned_atom::value);
  auto answers = std::make_shared<BoardAnswers>();
  f.actors.push_back(f.sys->spawn(ask_board, board, answers));
  f.sched->run();
  REQUIRE(answers->ready);
  CHECK(*answers->ready);
  REQUIRE(answers->status);
  auto status = json::parse(*answers->status);
  CHECK(status["totalSessions"] == 2);
  CHECK(status["activeSessions"] == 2);
  CHECK(status["sessionsByState"]["retrying"] == 1);
  CHECK(status["sessionsByState"]["invalid"] == 0);
  REQUIRE(answers->session);
  CHECK(json::parse(*answers->session)["state"] == "retrying");
  REQUIRE(answers->metrics);
  CHECK(answers->metrics->find("sessiond_sessions{state=\"retrying\"} 1") != std::string::npos);
  CHECK(answers->metrics->find("sessiond_ready 1") != std::string::npos);

  caf::anon_send(board, drain_atom::value);  // shutting down: not ready any more
  auto draining = std::make_shared<BoardAnswers>();
  f.actors.push_back(f.sys->spawn(ask_board, board, draining));
  f.sched->run();
  REQUIRE(draining->ready);
  CHECK_FALSE(*draining->ready);
}
