#include "daemon.hpp"

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/exit_reason.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <future>
#include <iostream>
#include <thread>

#include "admin_server.hpp"
#include "fake_site.hpp"
#include "sessiond/circuit_breaker.hpp"
#include "sessiond/json_log.hpp"
#include "sessiond/metrics.hpp"
#include "sessiond/session_file.hpp"
#include "sessiond/supervisor.hpp"
#include "sessiond/watcher.hpp"

namespace sessiond {
namespace {

// Everything validated before any thread starts.
struct Plan {
  Config config;
  std::shared_ptr<Profile> profile;
  Millis interval{0};
  Millis idle_timeout{0};
  Shard shard;
  std::optional<ListenAddress> listen;
};

Plan make_plan(Config config, const std::string& base_url_override = {}) {
  Plan plan;
  if (config.profile_path.empty())
    throw ConfigError("--profile is required (e.g. --profile profiles/baman24.json)");
  try {
    plan.profile = std::make_shared<Profile>(load_profile(config.profile_path));
  } catch (const ProfileError& e) {
    throw ConfigError(std::string("profile ") + e.what());
  }
  const std::string& base_url = base_url_override.empty() ? config.base_url : base_url_override;
  if (!base_url.empty()) {
    plan.profile->base_url = base_url;
    while (plan.profile->base_url.back() == '/') plan.profile->base_url.pop_back();
  }
  plan.interval = config.interval.value_or(plan.profile->interval);
  plan.idle_timeout = config.idle_timeout.value_or(plan.profile->idle_timeout);
  if (plan.interval >= plan.idle_timeout)
    throw ConfigError("--interval (" + format_duration(plan.interval) +
                      ") must be shorter than the idle timeout (" +
                      format_duration(plan.idle_timeout) +
                      "), or sessions expire between refreshes");
  plan.shard.count = config.shard_count;
  plan.shard.index = resolve_shard_index(config);
  if (plan.shard.index >= plan.shard.count)
    throw ConfigError("--shard-index " + std::to_string(plan.shard.index) +
                      " must be below --shard-count " + std::to_string(plan.shard.count));
  if (config.listen != "off") {
    plan.listen = parse_listen(config.listen);
    if (!plan.listen->loopback && config.admin_token.empty())
      throw ConfigError(
          "--listen " + config.listen +
          " is not a loopback address: set --admin-token (or SESSIOND_ADMIN_TOKEN) so the admin "
          "endpoints are not open to the network");
  }
  plan.config = std::move(config);
  return plan;
}

void prepare_sessions_dir(const std::string& dir) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) throw ConfigError("--sessions-dir " + dir + ": cannot create it: " + ec.message());
    ::chmod(dir.c_str(), 0700);
    log::info("startup", "created the sessions directory", {{"dir", dir}});
  } else if (!S_ISDIR(st.st_mode)) {
    throw ConfigError("--sessions-dir " + dir + ": not a directory");
  } else if (st.st_mode & 077) {
    log::warn(
        "startup",
        "the sessions directory is readable by group or others; session files hold credentials "
        "(chmod 700 recommended)",
        {{"dir", dir}, {"mode", (std::ostringstream() << std::oct << (st.st_mode & 0777)).str()}});
  }
  if (::access(dir.c_str(), R_OK | W_OK | X_OK) != 0)
    throw ConfigError("--sessions-dir " + dir +
                      ": not readable and writable: " + std::strerror(errno));
  int removed = remove_stale_temp_files(dir, std::chrono::seconds(60));
  if (removed > 0)
    log::info("startup", "removed temp files left by an earlier crash", {{"count", removed}});
}

int wait_for_signal(std::chrono::milliseconds step, const std::function<bool()>& done) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  timespec ts{static_cast<time_t>(step.count() / 1000),
              static_cast<long>((step.count() % 1000) * 1000000)};
  for (;;) {
    int sig = ::sigtimedwait(&set, nullptr, &ts);
    if (sig > 0) return sig;
    if (done && done()) return 0;
  }
}

// Demo: a few things to watch happen, on a timeline (bounded).
void demo_script(fakesite::FakeSite& site, const std::string& dir, int sessions,
                 std::atomic<bool>& stop) {
  auto sleep_for = [&](std::chrono::seconds d) {
    for (auto end = std::chrono::steady_clock::now() + d; std::chrono::steady_clock::now() < end;) {
      if (stop) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return !stop;
  };
  if (!sleep_for(std::chrono::seconds(8))) return;
  auto added = site.write_session_files(dir, 1, "0912" + std::to_string(7000000 + sessions), 2000);
  log::info("demo", "demo: the login bot wrote a new session file", {{"session", added.front()}});
  if (!sleep_for(std::chrono::seconds(7))) return;
  site.force_logout({"09120000001"});
  log::info("demo", "demo: the site logged session 09120000001 out; watch it move to invalid/",
            {{"session", "09120000001"}});
}

}  // namespace

int check_config(const Config& config) {
  try {
    Plan plan = make_plan(config);
    const auto& p = *plan.profile;
    nlohmann::json out = {
        {"profile", config.profile_path},
        {"site", p.name},
        {"base_url", p.base_url},
        {"interval", format_duration(plan.interval)},
        {"idle_timeout", format_duration(plan.idle_timeout)},
        {"check",
         p.check ? (p.check->is_exec() ? "exec" : p.check->method + " " + p.check->path) : "none"},
        {"refresh",
         p.refresh ? (p.refresh->is_exec() ? "exec" : p.refresh->method + " " + p.refresh->path)
                   : "none"},
        {"sessions_dir", config.sessions_dir},
        {"listen", config.listen},
        {"shard", {{"index", plan.shard.index}, {"count", plan.shard.count}}},
        {"on_logged_out", config.on_logged_out == OnLoggedOut::quarantine ? "quarantine"
                          : config.on_logged_out == OnLoggedOut::mark     ? "mark"
                                                                          : "delete"},
    };
    std::cout << out.dump(2) << "\nconfiguration OK\n";
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "sessiond: " << e.what() << "\n";
    return 2;
  }
}

int run_daemon(Config config, DaemonMode mode) {
  // Signals are taken by sigtimedwait in this thread only: block them before
  // any thread starts so every thread inherits the mask.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  log::init(*log::parse_level(config.log_level));

  std::unique_ptr<fakesite::FakeSite> site;
  std::string base_url_override;
  if (mode == DaemonMode::demo) {
    fakesite::Options opts;
    opts.idle_timeout = std::chrono::seconds(6);
    opts.threads = 8;
    site = std::make_unique<fakesite::FakeSite>(opts);
    site->start();
    base_url_override = site->base_url();
    if (config.profile_path.empty()) config.profile_path = "profiles/demo.json";
    std::string dir_template = "/tmp/sessiond-demo-XXXXXX";
    if (!::mkdtemp(dir_template.data())) {
      std::cerr << "sessiond: cannot create a demo directory: " << std::strerror(errno) << "\n";
      return 2;
    }
    config.sessions_dir = dir_template;
    site->write_session_files(config.sessions_dir, config.demo_sessions, "09120000000", 2000);
  }

  Plan plan;
  try {
    plan = make_plan(config, base_url_override);
    prepare_sessions_dir(plan.config.sessions_dir);
  } catch (const std::exception& e) {
    log::error("startup", std::string("cannot start: ") + e.what());
    std::cerr << "sessiond: " << e.what() << "\n";
    return 2;
  }
  const Config& cfg = plan.config;
  if (plan.shard.count > 1)  // lets the site (and the fake site's statistics) tell replicas apart
    plan.profile->default_headers.emplace_back("X-Sessiond-Replica",
                                               std::to_string(plan.shard.index));
  log::info("startup", "sessiond starting",
            {{"version", SESSIOND_VERSION},
             {"mode", mode == DaemonMode::run    ? "run"
                      : mode == DaemonMode::once ? "once"
                                                 : "demo"},
             {"site", plan.profile->name},
             {"base_url", plan.profile->base_url},
             {"sessions_dir", cfg.sessions_dir},
             {"interval_s", plan.interval.count() / 1000.0},
             {"idle_timeout_s", plan.idle_timeout.count() / 1000.0},
             {"shard", {{"index", plan.shard.index}, {"count", plan.shard.count}}},
             {"listen", cfg.listen}});
  if (site)
    log::info("demo",
              "demo: fake site running; open http://" + cfg.listen + "/status while it runs",
              {{"site", site->base_url()},
               {"sessions_dir", cfg.sessions_dir},
               {"sessions", cfg.demo_sessions}});

  HttpClient::Options http_opts;
  http_opts.max_in_flight = std::min(cfg.max_in_flight, plan.profile->max_in_flight);
  // One connection per request in flight, reused (keep-alive): no more
  // connections toward the site than requests we allow at once.
  http_opts.max_host_connections = static_cast<long>(http_opts.max_in_flight);
  http_opts.user_agent = "sessiond/" SESSIOND_VERSION;
  http_opts.rate_per_second = plan.profile->rate_limit_per_second;
  http_opts.rate_burst = plan.profile->rate_limit_burst;
  auto http = std::make_unique<HttpClient>(http_opts);
  const auto circuit = fit_to_idle_timeout(plan.profile->circuit, plan.interval, plan.idle_timeout);
  if (circuit.open_for < plan.profile->circuit.open_for)
    log::warn(
        "config",
        "circuit_breaker.open_for shortened to half the gap between interval and idle timeout",
        {{"open_for_ms", plan.profile->circuit.open_for.count()},
         {"used_ms", circuit.open_for.count()}});
  CircuitBreaker breaker(circuit);
  GuardedTransport guarded(*http, breaker);
  auto io = std::make_unique<WorkerPool>(cfg.io_threads);
  auto exec = std::make_unique<WorkerPool>(plan.profile->exec_max_concurrent);

  int exit_code = 0;
  {
    caf::actor_system_config sys_cfg;
    // Not "stealing": CAF 0.17 steals from the tail of a singly linked queue
    // by walking it, so a fan-out to every session (drain, refresh all)
    // turns quadratic (a drain of 100k sessions took 40-100 s instead of
    // 7-17 s); with its default polling, 100k idle actors with pending timers
    // also cost a quarter core.
    sys_cfg.set("scheduler.policy", caf::atom("sharing"));
    // One worker per core, not CAF's default of at least 4: actors never
    // block (disk and HTTP run on their own threads), and on 2 cores the
    // extra workers only added context switches (bench: 1,385-1,558 ->
    // 1,676-1,757 refreshes/s, 0.91-1.04 -> 0.83-0.85 CPU-s per 1,000).
    sys_cfg.set("scheduler.max-threads",
                static_cast<size_t>(std::max(1u, std::thread::hardware_concurrency())));
    caf::actor_system system{sys_cfg};

    MetricsSetup ms;
    ms.interval = plan.interval;
    ms.idle_timeout = plan.idle_timeout;
    ms.heartbeat_interval = cfg.heartbeat_interval;
    ms.status_interval = cfg.status_interval;
    ms.shard_index = plan.shard.index;
    ms.shard_count = plan.shard.count;
    ms.per_session = cfg.per_session_metrics;
    HttpClient* http_raw = http.get();
    ms.http_load = [http_raw] { return http_raw->load(); };
    ms.max_in_flight = http_opts.max_in_flight;
    ms.rate_limit_per_second = http_opts.rate_per_second;
    ms.circuit_open = [&breaker] { return breaker.is_open(); };
    auto metrics = system.spawn(metrics_actor, ms);

    auto rt = std::make_shared<Runtime>();
    rt->profile = plan.profile;
    rt->sessions_dir = cfg.sessions_dir;
    rt->on_logged_out = cfg.on_logged_out;
    rt->interval = plan.interval;
    rt->idle_timeout = plan.idle_timeout;
    rt->catchup_window = std::min(plan.interval / 4, Millis(30000));
    rt->once = mode == DaemonMode::once;
    rt->http = &guarded;
    rt->io = io.get();
    rt->exec = exec.get();
    rt->metrics = metrics;

    SupervisorSetup ss;
    ss.rt = rt;
    ss.restart_limit = cfg.restart_limit;
    ss.restart_window = cfg.restart_window;
    auto supervisor = system.spawn(supervisor_actor, ss);

    std::unique_ptr<AdminServer> admin;
    if (plan.listen && mode != DaemonMode::once) {
      AdminServer::Options ao;
      ao.listen = *plan.listen;
      ao.admin_token = cfg.admin_token;
      admin = std::make_unique<AdminServer>(system, supervisor, metrics, ao);
      try {
        admin->start();
      } catch (const std::exception& e) {
        log::error("startup", std::string("cannot start: ") + e.what(), {{"listen", cfg.listen}});
        std::cerr << "sessiond: " << e.what() << "\n";
        caf::anon_send_exit(supervisor, caf::exit_reason::user_shutdown);
        caf::anon_send_exit(metrics, caf::exit_reason::user_shutdown);
        return 2;
      }
      log::info("startup", "HTTP port open: /metrics /healthz /readyz /status /sessions",
                {{"listen", ao.listen.host + ":" + std::to_string(admin->port())}});
    }

    WatcherSetup ws;
    ws.dir = cfg.sessions_dir;
    ws.supervisor = supervisor;
    ws.metrics = metrics;
    ws.rescan_interval = cfg.rescan_interval;
    ws.shard = plan.shard;
    auto watcher = system.spawn<caf::detached>(watcher_actor, ws);

    std::atomic<bool> demo_stop{false};
    std::thread demo_thread;
    if (site)
      demo_thread =
          std::thread([&] { demo_script(*site, cfg.sessions_dir, cfg.demo_sessions, demo_stop); });

    int sig = 0;
    if (mode == DaemonMode::once) {
      auto result = std::make_shared<std::promise<std::pair<int, int>>>();
      auto future = result->get_future();
      std::thread waiter([&system, supervisor, result] {
        caf::scoped_actor self{system};
        self->request(supervisor, caf::infinite, done_atom::value)
            .receive(
                [&](int failed, int total) {
                  result->set_value({failed, total});
                },
                [&](caf::error&) {
                  result->set_value({-1, 0});
                });
      });
      sig = wait_for_signal(Millis(100), [&] {
        return future.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
      });
      if (sig == 0) {
        auto [failed, total] = future.get();
        exit_code = failed == 0 ? 0 : 1;
        log::info("once_done", "pass finished", {{"sessions", total}, {"failed", failed}});
      } else {
        exit_code = 1;
      }
      if (sig != 0) caf::anon_send_exit(supervisor, caf::exit_reason::user_shutdown);
      waiter.join();
    } else {
      sig = wait_for_signal(Millis(1000), nullptr);
    }

    // Shutdown: readiness goes false, no new cycles, in-flight ones finish and
    // save within the drain timeout, then everything stops.
    auto drain_started = std::chrono::steady_clock::now();
    if (sig != 0)
      log::info("shutdown", "signal received; draining in-flight refreshes",
                {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"},
                 {"drain_timeout_ms", cfg.drain_timeout.count()}});
    demo_stop = true;
    if (demo_thread.joinable()) demo_thread.join();
    caf::anon_send(metrics, drain_atom::value);
    bool drained = false;
    {
      caf::scoped_actor self{system};
      self->request(supervisor, cfg.drain_timeout, drain_atom::value)
          .receive([&](done_atom) { drained = true; }, [&](caf::error&) {});
    }
    caf::anon_send_exit(watcher, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(supervisor, caf::exit_reason::user_shutdown);
    if (admin) admin->stop();
    caf::anon_send_exit(metrics, caf::exit_reason::user_shutdown);
    system.await_all_actors_done();
    // Callbacks of work still queued message actors that are gone: harmless,
    // but it must happen while the actor system still exists.
    http.reset();
    io.reset();
    exec.reset();
    auto took =
        std::chrono::duration_cast<Millis>(std::chrono::steady_clock::now() - drain_started);
    log::info(
        "shutdown",
        drained ? "sessiond stopped" : "sessiond stopped; some refreshes did not finish in time",
        {{"drained", drained}, {"duration_ms", took.count()}, {"exit_code", exit_code}});
  }
  if (site) site->stop();
  return exit_code;
}

}  // namespace sessiond
