#pragma once
// A RefreshCycle without an actor system, for the cycle's unit tests
// (test_refresh_cycle.cpp, test_pause.cpp): the Driver performs the cycle's
// actions as the session actor does (disk work inline on real files in a temp
// dir, after the rest of the batch, as on the pool; the wall clock faked and
// advanced by the test), queues requests, commands and browser steps for the
// test to answer, and records timers, reports and the rest.

#include <catch2/catch.hpp>

#include <unistd.h>

#include <algorithm>
#include <deque>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "sessiond/json_log.hpp"
#include "sessiond/metrics.hpp"
#include "sessiond/refresh_cycle.hpp"
#include "test_support.hpp"

namespace cycle_test {

using namespace sessiond;
using namespace std::chrono_literals;
using json = nlohmann::json;
namespace fs = std::filesystem;
using testing::cookie;
using testing::session_doc;

inline const char* kHome = "<div class=\"homeSection\">";

inline std::string make_jwt(std::int64_t exp) {
  return testing::make_jwt({{"sub", "09120000001"}, {"exp", exp}});
}

inline std::int64_t unix_seconds(WallTime t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

inline bool has_header(const HttpRequest& r, const std::string& line) {
  return std::find(r.headers.begin(), r.headers.end(), line) != r.headers.end();
}

inline std::optional<std::string> sid_of(const HttpRequest& r) {
  return jar_value(r.cookies, "sid");
}

inline const char* kind_name(std::size_t index) {
  static const char* names[] = {"ReadFirstLook", "Load",    "SendHttp", "RunExec", "RunBrowser",
                                "Save",          "Dispose", "Schedule", "Publish", "Finished",
                                "Drained",       "Leave",   "Settled",  "Admit"};
  return index < std::size(names) ? names[index] : "?";
}

// Performs a RefreshCycle's actions as the session actor does.
struct Driver {
  std::string dir;
  std::string away;  // where the save-failure test parks the directory
  WallTime wall0;
  std::shared_ptr<WallTime> clock;
  Metrics metrics{MetricsConfig{}};
  std::shared_ptr<Profile> profile;
  std::shared_ptr<SiteSettings> site = std::make_shared<SiteSettings>();
  std::string id = "09120000001";
  std::string path;
  std::unique_ptr<RefreshCycle> cycle;

  bool hold_first_look = false;  // keep ReadFirstLook / Save back until release()
  bool hold_save = false;
  std::deque<Action> held;

  // Admit: asks `gate` when set (else admitted at once); the grants wait in
  // `grants` until admit() delivers them, as the actor's mailbox would.
  AdmissionGate* gate = nullptr;
  std::deque<std::pair<std::uint64_t, AdmissionSlot>> grants;
  std::deque<action::SendHttp> http;
  std::deque<action::RunExec> execs;
  std::deque<action::RunBrowser> browsers;
  std::vector<action::Schedule> schedules;
  std::vector<SessionStatus> published;
  std::vector<CycleReport> reports;
  std::vector<action::Settled> settled;  // answers to pause / resume
  int drained = 0;
  int left = 0;
  std::vector<std::string> kinds;  // every action performed, in order
  Actions last;                    // what the last event emitted directly

  explicit Driver(const std::string& profile_json = testing::kRefreshProfile) {
    char tmpl[] = "/tmp/sessiond-cycle-XXXXXX";
    const char* made = ::mkdtemp(tmpl);
    REQUIRE(made != nullptr);
    dir = made;
    away = dir + ".away";
    // Whole milliseconds: the keepalive block stores lastRefresh in ms.
    wall0 = std::chrono::floor<std::chrono::milliseconds>(std::chrono::system_clock::now());
    clock = std::make_shared<WallTime>(wall0);
    profile = std::make_shared<Profile>(parse_profile(profile_json));
    site->name = "test";
    site->profile = profile;
    site->sessions_dir = dir;
    site->interval = profile->interval;
    site->idle_timeout = profile->idle_timeout;
    site->catchup_window = 30s;
    site->now = [c = clock] { return *c; };
    site->metrics = &metrics;
    path = session_path(dir, id);
  }
  ~Driver() {
    std::error_code ec;
    if (fs::exists(away, ec)) {
      fs::remove(dir, ec);
      fs::rename(away, dir, ec);
    }
    fs::remove_all(dir, ec);
  }

  RefreshCycle& c() {
    if (!cycle) cycle = std::make_unique<RefreshCycle>(site, id, 1);
    return *cycle;
  }
  const SessionStatus& status() { return c().status(); }
  WallTime now() const { return *clock; }
  void advance(Millis d) { *clock += d; }

  void write(const json& doc) {
    REQUIRE(std::holds_alternative<FileIdentity>(write_file_atomic(path, serialize_session(doc))));
  }
  void write_raw(const std::string& text) {
    REQUIRE(std::holds_alternative<FileIdentity>(write_file_atomic(path, text)));
  }
  static json read(const std::string& p) {
    std::ifstream in(p);
    return json::parse(in);
  }
  json read() const { return read(path); }

  // -- performing actions --
  Actions execute(const Action& a) {
    Actions more;
    std::visit(
        [&](const auto& act) {
          using T = std::decay_t<decltype(act)>;
          if constexpr (std::is_same_v<T, action::ReadFirstLook>) {
            c().done(act.tag, read_first_look(path, now(), act.state), more);
          } else if constexpr (std::is_same_v<T, action::Load>) {
            c().done(act.tag, Loaded{load_session_file(path, kMaxSessionFileBytes, act.state)},
                     more);
          } else if constexpr (std::is_same_v<T, action::Save>) {
            c().done(act.tag, save_if_unchanged(path, *act.doc, act.expected), more);
          } else if constexpr (std::is_same_v<T, action::Dispose>) {
            c().done(act.tag,
                     dispose_logged_out(path, dir, site->on_logged_out, *act.doc, act.expected,
                                        act.announce),
                     more);
          } else if constexpr (std::is_same_v<T, action::Admit>) {
            if (gate)
              gate->request(act.priority, [this, tag = act.tag](AdmissionSlot slot) {
                grants.emplace_back(tag, std::move(slot));
              });
            else
              grants.emplace_back(act.tag, AdmissionSlot{});
          } else if constexpr (std::is_same_v<T, action::SendHttp>) {
            http.push_back(act);
          } else if constexpr (std::is_same_v<T, action::RunExec>) {
            execs.push_back(act);
          } else if constexpr (std::is_same_v<T, action::RunBrowser>) {
            browsers.push_back(act);
          } else if constexpr (std::is_same_v<T, action::Schedule>) {
            schedules.push_back(act);
          } else if constexpr (std::is_same_v<T, action::Publish>) {
            published.push_back(c().status());
          } else if constexpr (std::is_same_v<T, action::Finished>) {
            reports.push_back(act.report);
          } else if constexpr (std::is_same_v<T, action::Drained>) {
            ++drained;
          } else if constexpr (std::is_same_v<T, action::Leave>) {
            ++left;
          } else if constexpr (std::is_same_v<T, action::Settled>) {
            settled.push_back(act);
          }
        },
        a);
    return more;
  }
  // Disk work finishes after the rest of the batch (it runs on a pool).
  void perform(const Actions& actions) {
    std::deque<Action> queue(actions.begin(), actions.end());
    while (!queue.empty()) {
      Action a = std::move(queue.front());
      queue.pop_front();
      kinds.push_back(kind_name(a.index()));
      if ((hold_first_look && std::holds_alternative<action::ReadFirstLook>(a)) ||
          (hold_save && std::holds_alternative<action::Save>(a))) {
        held.push_back(std::move(a));
        continue;
      }
      Actions more = execute(a);
      queue.insert(queue.end(), more.begin(), more.end());
    }
  }
  void release() {
    REQUIRE_FALSE(held.empty());
    Action a = held.front();
    held.pop_front();
    perform(execute(a));
  }
  std::size_t count(const std::string& kind) const {
    return static_cast<std::size_t>(std::count(kinds.begin(), kinds.end(), kind));
  }

  // -- events --
  template <class F>
  void run(F&& event) {
    last.clear();
    event(last);
    perform(last);
  }
  void start() {
    run([&](Actions& o) { c().start(o); });
  }
  void tick(std::uint64_t gen) {
    run([&](Actions& o) { c().tick(gen, o); });
  }
  // The last armed timer fires: the clock moves by its delay (and `extra`).
  void fire(Millis extra = Millis(0)) {
    REQUIRE_FALSE(schedules.empty());
    auto s = schedules.back();
    advance(s.delay + extra);
    tick(s.gen);
  }
  void done(std::uint64_t tag, const WorkResult& r) {
    run([&](Actions& o) { c().done(tag, r, o); });
  }
  void file_changed(const FileIdentity& seen) {
    run([&](Actions& o) { c().file_changed(seen, o); });
  }
  void remove() {
    run([&](Actions& o) { c().remove(o); });
  }
  void drain() {
    run([&](Actions& o) { c().drain(o); });
  }
  bool pause(std::optional<std::string> reason = std::nullopt) {
    bool taken = false;
    run([&](Actions& o) { taken = c().pause(reason, o); });
    return taken;
  }
  bool resume() {
    bool taken = false;
    run([&](Actions& o) { taken = c().resume(o); });
    return taken;
  }
  // The file as it is on disk now changed (the watcher's report).
  void file_changed() { file_changed(*stat_identity(path)); }
  bool refresh_now() {
    bool started = false;
    run([&](Actions& o) { started = c().refresh_now(o); });
    return started;
  }

  // Delivers the oldest grant of the admission gate.
  void admit() {
    REQUIRE_FALSE(grants.empty());
    auto g = std::move(grants.front());
    grants.pop_front();
    done(g.first, Admitted{std::move(g.second)});
  }

  // Answers the oldest request; `sid` rotates the sid cookie.
  HttpRequest answer(long status, std::string body, std::optional<std::string> sid = std::nullopt,
                     std::vector<std::pair<std::string, std::string>> headers = {}) {
    REQUIRE_FALSE(http.empty());
    auto p = http.front();
    http.pop_front();
    done(p.tag,
         testing::scripted_response(p.request, status, std::move(body), sid, std::move(headers)));
    return p.request;
  }
  void refresh_ok(const std::string& new_sid, const std::string& token = "T1") {
    auto check = answer(200, kHome, new_sid);
    CHECK(check.method == "GET");
    CHECK(check.url == "http://127.0.0.1:1/pwa");
    auto refresh = answer(200, json{{"token", token}}.dump());
    CHECK(refresh.method == "POST");
    CHECK(refresh.url == "http://127.0.0.1:1/api/refresh");
  }
  const CycleReport& report() const {
    REQUIRE_FALSE(reports.empty());
    return reports.back();
  }
};

}  // namespace cycle_test
