// The watcher with deterministic time: CAF's test coordinator drives the
// scheduler and the clock, a real temp directory holds the files, a fake
// event source delivers the inotify events the test chooses, and a recording
// actor stands in for the supervisor.

#include <catch2/catch.hpp>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scheduler/test_coordinator.hpp>
#include <caf/send.hpp>
#include <caf/typed_event_based_actor.hpp>

#include <fcntl.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>

#include "sessiond/metrics.hpp"
#include "sessiond/session_file.hpp"
#include "sessiond/watcher.hpp"
#include "test_support.hpp"

using namespace sessiond;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

// What the supervisor heard, in order: "added <id>", "gone <id>", "scanned".
struct Heard {
  std::vector<std::string> messages;
  std::map<std::string, std::optional<FileIdentity>> identities;  // last per added id

  // The messages since the last take(), sorted (a scan reports in readdir order).
  std::vector<std::string> take_sorted() {
    auto out = std::move(messages);
    messages.clear();
    std::sort(out.begin(), out.end());
    return out;
  }
  std::vector<std::string> take() {
    auto out = std::move(messages);
    messages.clear();
    return out;
  }
};

supervisor_actor::behavior_type recording_supervisor(std::shared_ptr<Heard> heard) {
  return {
      [=](file_added_atom, const std::string& id, const std::optional<FileIdentity>& seen) {
        heard->messages.push_back("added " + id);
        heard->identities[id] = seen;
      },
      [=](file_gone_atom, const std::string& id) { heard->messages.push_back("gone " + id); },
      [=](scanned_atom) { heard->messages.push_back("scanned"); },
      // Not the watcher's business.
      [=](restart_atom, const std::string&, std::uint64_t) {},
      [=](refresh_atom) { return 0; },
      [=](refresh_atom, const std::string&) { return CycleReport{}; },
      [=](register_atom, const std::string&) { return AdminResult::not_found; },
      [=](unregister_atom, const std::string&) { return AdminResult::not_found; },
      [=](pause_atom, const std::string&, const std::string&) { return CycleReport{}; },
      [=](resume_atom, const std::string&) { return CycleReport{}; },
      [=](drain_atom) { return drained_atom::value; },
  };
}

// Events come from the test. watch() succeeds while the directory exists,
// as inotify_add_watch does.
struct FakeEvents : DirEventSource {
  Deliver deliver;
  int starts = 0;
  int watches = 0;
  int stops = 0;
  bool start(Deliver d) override {
    ++starts;
    deliver = std::move(d);
    return true;
  }
  bool watch(const std::string& dir) override {
    ++watches;
    return fs::is_directory(dir);
  }
  void stop() override {
    ++stops;
    deliver = nullptr;
  }
  void send(std::vector<DirEvent> events) {
    REQUIRE(deliver);
    deliver(std::make_shared<const std::vector<DirEvent>>(std::move(events)));
  }
};

struct Fixture {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  caf::scheduler::test_coordinator* sched = nullptr;
  std::string dir;
  std::shared_ptr<Heard> heard = std::make_shared<Heard>();
  std::shared_ptr<FakeEvents> events = std::make_shared<FakeEvents>();
  Metrics metrics{MetricsConfig{}};
  supervisor_actor supervisor;
  watcher_actor watcher;

  Fixture() {
    cfg.set("scheduler.policy", caf::atom("testing"));
    sys = std::make_unique<caf::actor_system>(cfg);
    sched = &dynamic_cast<caf::scheduler::test_coordinator&>(sys->scheduler());
    char tmpl[] = "/tmp/sessiond-watcher-XXXXXX";
    dir = ::mkdtemp(tmpl);
    supervisor = sys->spawn(recording_supervisor, heard);
  }
  ~Fixture() {
    if (watcher) caf::anon_send_exit(watcher, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(supervisor, caf::exit_reason::user_shutdown);
    sched->run();
    std::error_code ec;
    fs::remove_all(dir, ec);
  }

  void start(Shard shard = {}) {
    WatcherSetup setup;
    setup.dir = dir;
    setup.supervisor = supervisor;
    setup.rescan_interval = 30s;
    setup.shard = shard;
    setup.events = events;
    setup.metrics = &metrics;
    // Not detached: the test coordinator runs it on this thread.
    watcher = sys->spawn(watcher_actor_impl, setup);
    sched->run();
  }

  std::string path(const std::string& id) const { return session_path(dir, id); }

  // A session file with an explicit mtime: two writes within one clock tick
  // would otherwise look the same to the watcher (it compares mtimes).
  FileIdentity write(const std::string& id, std::int64_t mtime_s = 1'700'000'000) {
    auto written = write_file_atomic(path(id), R"({"cookies": [], "origins": []})");
    REQUIRE(std::holds_alternative<FileIdentity>(written));
    timespec times[2] = {{mtime_s, 0}, {mtime_s, 0}};
    REQUIRE(::utimensat(AT_FDCWD, path(id).c_str(), times, 0) == 0);
    auto now = stat_identity(path(id));
    REQUIRE(now);
    return *now;
  }

  void deliver(std::vector<DirEvent> batch) {
    events->send(std::move(batch));
    sched->run();
  }

  void advance(caf::timespan d) {
    sched->clock().advance_time(d);
    sched->run();
  }
};

std::string name_of(const std::string& id) {
  return session_filename(id);
}

}  // namespace

TEST_CASE("watcher: the first scan reports existing files, then scanned", "[watcher]") {
  Fixture f;
  auto a = f.write("a");
  auto b = f.write("b", 1'700'000'100);
  { std::ofstream(f.dir + "/notes.txt") << "not a session"; }
  { std::ofstream(f.dir + "/.session-c.json.tmp-123") << "a writer's temp file"; }
  fs::create_directory(f.dir + "/invalid");
  f.start();

  auto heard = f.heard->take();
  REQUIRE(heard.size() == 3);
  CHECK(heard.back() == "scanned");  // after every file of the scan
  std::sort(heard.begin(), heard.end());
  CHECK(heard == std::vector<std::string>{"added a", "added b", "scanned"});
  CHECK(f.heard->identities["a"] == a);
  CHECK(f.heard->identities["b"] == b);
  CHECK(f.events->starts == 1);
  CHECK(f.events->watches == 1);  // the watch is in place before the scan

  // A periodic rescan with nothing changed reports nothing, and no second scanned.
  f.advance(30s);
  CHECK(f.heard->take().empty());
}

TEST_CASE("watcher: a close-write or moved-to event reports the file with its identity",
          "[watcher]") {
  Fixture f;
  f.start();
  CHECK(f.heard->take() == std::vector<std::string>{"scanned"});

  auto a = f.write("a");
  f.deliver({{name_of("a"), IN_CLOSE_WRITE}});
  CHECK(f.heard->take() == std::vector<std::string>{"added a"});
  CHECK(f.heard->identities["a"] == a);

  // The bot renames its new file over the old one: a rewrite.
  auto a2 = f.write("a", 1'700'000'500);
  f.deliver({{name_of("a"), IN_MOVED_TO}});
  CHECK(f.heard->take() == std::vector<std::string>{"added a"});
  CHECK(f.heard->identities["a"] == a2);

  // Gone again by the time the watcher looks: reported without an identity.
  f.deliver({{name_of("late"), IN_CLOSE_WRITE}});
  CHECK(f.heard->take() == std::vector<std::string>{"added late"});
  CHECK_FALSE(f.heard->identities["late"]);

  // Creation alone is not an addition (the file may be half written), and
  // directories, temp files and other names are not sessions.
  f.write("b");
  f.deliver({{name_of("b"), IN_CREATE},
             {"session-sub.json", IN_CLOSE_WRITE | IN_ISDIR},
             {".session-b.json.tmp-1", IN_CLOSE_WRITE},
             {"notes.txt", IN_CLOSE_WRITE},
             {"session-bad id.json", IN_CLOSE_WRITE}});
  CHECK(f.heard->take().empty());
}

TEST_CASE("watcher: a delete or moved-from event reports the file gone", "[watcher]") {
  Fixture f;
  f.write("a");
  f.write("b");
  f.write("c");
  f.start();
  f.heard->take();

  REQUIRE(::unlink(f.path("a").c_str()) == 0);
  f.deliver({{name_of("a"), IN_DELETE}});
  CHECK(f.heard->take() == std::vector<std::string>{"gone a"});

  fs::rename(f.path("b"), f.dir + "/elsewhere.json");
  f.deliver({{name_of("b"), IN_MOVED_FROM}});
  CHECK(f.heard->take() == std::vector<std::string>{"gone b"});

  // A rename over the name says "moved from" too, but a file is there: a
  // rewrite when it changed, nothing when it did not.
  f.deliver({{name_of("c"), IN_MOVED_FROM}});
  CHECK(f.heard->take().empty());
  auto c2 = f.write("c", 1'700'000'900);
  f.deliver({{name_of("c"), IN_MOVED_FROM}});
  CHECK(f.heard->take() == std::vector<std::string>{"added c"});
  CHECK(f.heard->identities["c"] == c2);

  // A removal of a file never reported is not news.
  f.deliver({{name_of("never"), IN_DELETE}});
  CHECK(f.heard->take().empty());
}

TEST_CASE("watcher: a queue overflow rescans and reports the difference", "[watcher]") {
  Fixture f;
  f.write("keep");
  f.write("changed");
  f.write("removed");
  f.start();
  f.heard->take();

  // Events lost while the queue was full.
  auto changed = f.write("changed", 1'700'000'777);
  auto added = f.write("new");
  REQUIRE(::unlink(f.path("removed").c_str()) == 0);
  f.deliver({{"", IN_Q_OVERFLOW}});
  CHECK(f.heard->take_sorted() ==
        std::vector<std::string>{"added changed", "added new", "gone removed"});
  CHECK(f.heard->identities["changed"] == changed);
  CHECK(f.heard->identities["new"] == added);
  CHECK(f.events->watches == 1);  // an overflow does not lose the watch
}

TEST_CASE("watcher: the periodic rescan catches what no event said", "[watcher]") {
  Fixture f;
  f.start();
  f.heard->take();
  f.write("quiet");
  f.advance(29s);
  CHECK(f.heard->take().empty());
  f.advance(1s);
  CHECK(f.heard->take() == std::vector<std::string>{"added quiet"});
}

TEST_CASE("watcher: only the ids of its shard", "[watcher]") {
  const Shard shard{1, 3};
  std::vector<std::string> mine, theirs;
  for (int i = 0; i < 40 && (mine.size() < 3 || theirs.size() < 3); ++i) {
    std::string id = "acct" + std::to_string(i);
    (owns(shard, id) ? mine : theirs).push_back(id);
  }
  REQUIRE(mine.size() >= 3);
  REQUIRE(theirs.size() >= 3);

  Fixture f;
  f.write(mine[0]);
  f.write(theirs[0]);
  f.start(shard);
  CHECK(f.heard->take_sorted() == std::vector<std::string>{"added " + mine[0], "scanned"});

  f.write(mine[1]);
  f.write(theirs[1]);
  f.deliver({{name_of(theirs[1]), IN_CLOSE_WRITE}, {name_of(mine[1]), IN_CLOSE_WRITE}});
  CHECK(f.heard->take() == std::vector<std::string>{"added " + mine[1]});

  REQUIRE(::unlink(f.path(theirs[0]).c_str()) == 0);
  f.deliver({{name_of(theirs[0]), IN_DELETE}});
  CHECK(f.heard->take().empty());

  f.write(theirs[2]);
  f.deliver({{"", IN_Q_OVERFLOW}});
  CHECK(f.heard->take().empty());
}

TEST_CASE("watcher: the directory removed and recreated", "[watcher]") {
  Fixture f;
  f.write("a");
  f.write("b");
  f.start();
  f.heard->take();
  CHECK(f.events->watches == 1);

  // rm -r: the files' deletions, then the directory's own events.
  fs::remove_all(f.dir);
  f.deliver({{name_of("a"), IN_DELETE},
             {name_of("b"), IN_DELETE},
             {"", IN_DELETE_SELF},
             {"", IN_IGNORED}});
  CHECK(f.heard->take_sorted() == std::vector<std::string>{"gone a", "gone b"});
  CHECK(f.events->watches == 2);  // tried again during the rescan: no directory
  CHECK(f.metrics.file_errors(FileErrorKind::io) == 1);

  // Missing: the regular rescan finds nothing and looks every second after it.
  f.advance(30s);
  CHECK(f.heard->take().empty());
  CHECK(f.events->watches == 3);
  CHECK(f.metrics.file_errors(FileErrorKind::io) == 1);  // one per outage

  // Recreated (the bot's volume came back) with one file: found within a second.
  REQUIRE(fs::create_directory(f.dir));
  auto c = f.write("c");
  f.advance(1s);
  CHECK(f.heard->take() == std::vector<std::string>{"added c"});
  CHECK(f.heard->identities["c"] == c);
  CHECK(f.events->watches == 4);  // watched again, before the scan

  // Back to the regular pace, and events are believed again.
  f.advance(1s);
  CHECK(f.events->watches == 4);
  f.write("d");
  f.deliver({{name_of("d"), IN_CLOSE_WRITE}});
  CHECK(f.heard->take() == std::vector<std::string>{"added d"});
}

TEST_CASE("watcher: a directory missing at start still reports scanned", "[watcher]") {
  Fixture f;
  fs::remove_all(f.dir);
  f.start();
  CHECK(f.heard->take() == std::vector<std::string>{"scanned"});
  REQUIRE(fs::create_directory(f.dir));
  f.write("a");
  f.advance(30s);
  CHECK(f.heard->take() == std::vector<std::string>{"added a"});
}

TEST_CASE("watcher: a name that is not a session is logged once", "[watcher]") {
  testing::CapturedLogs logs;
  Fixture f;
  { std::ofstream(f.dir + "/notes.txt") << "x"; }
  { std::ofstream(f.dir + "/.session-a.json.tmp-9") << "x"; }
  f.start();
  f.deliver({{"notes.txt", IN_CLOSE_WRITE}, {".session-a.json.tmp-9", IN_CLOSE_WRITE}});
  f.advance(30s);
  CHECK(logs.mentions("\"event\":\"file_ignored\"") == 1);
  CHECK(logs.mentions("notes.txt") == 1);
  CHECK(logs.mentions(".tmp-9") == 0);
}

TEST_CASE("watcher: the event source is stopped when the watcher ends", "[watcher]") {
  Fixture f;
  f.start();
  CHECK(f.events->stops == 0);
  caf::anon_send_exit(f.watcher, caf::exit_reason::user_shutdown);
  f.sched->run();
  CHECK(f.events->stops == 1);
  CHECK_FALSE(f.events->deliver);  // the watcher's handle is released
  f.watcher = nullptr;
}

TEST_CASE("watcher: inotify delivers real events", "[watcher]") {
  // The production source against a real directory, without an actor.
  char tmpl[] = "/tmp/sessiond-inotify-XXXXXX";
  std::string dir = ::mkdtemp(tmpl);
  auto source = make_inotify_source();
  std::mutex m;
  std::condition_variable cv;
  std::vector<DirEvent> seen;
  REQUIRE(source->start([&](DirEventsPtr batch) {
    std::lock_guard<std::mutex> lock(m);
    seen.insert(seen.end(), batch->begin(), batch->end());
    cv.notify_all();
  }));
  REQUIRE(source->watch(dir));
  REQUIRE(std::holds_alternative<FileIdentity>(
      write_file_atomic(session_path(dir, "a"), R"({"cookies": []})")));
  REQUIRE(::unlink(session_path(dir, "a").c_str()) == 0);
  auto has = [&](std::uint32_t mask) {
    return std::any_of(seen.begin(), seen.end(), [&](const DirEvent& e) {
      return e.name == "session-a.json" && (e.mask & mask);
    });
  };
  {
    std::unique_lock<std::mutex> lock(m);
    cv.wait_for(lock, 5s, [&] { return has(IN_MOVED_TO) && has(IN_DELETE); });
    CHECK(has(IN_MOVED_TO));
    CHECK(has(IN_DELETE));
    // The writer's temp file never reaches the watcher.
    CHECK(std::none_of(seen.begin(), seen.end(),
                       [](const DirEvent& e) { return !e.name.empty() && e.name[0] == '.'; }));
  }
  source->stop();
  source->stop();  // idempotent
  fs::remove_all(dir);
  CHECK_FALSE(source->watch(dir));
}
