#include "daemon.hpp"

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/exit_reason.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>
#include <caf/typed_event_based_actor.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <future>
#include <iostream>
#include <memory>
#include <thread>

#include "admin_server.hpp"
#include "demo.hpp"
#include "sessiond/browser_pool.hpp"
#include "sessiond/browser_probe.hpp"
#include "sessiond/circuit_breaker.hpp"
#include "sessiond/hooks.hpp"
#include "sessiond/json_log.hpp"
#include "sessiond/metrics.hpp"
#include "sessiond/once_listener.hpp"
#include "sessiond/session_file.hpp"
#include "sessiond/status_board.hpp"
#include "sessiond/supervisor.hpp"
#include "sessiond/sync_batcher.hpp"
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
  std::optional<BrowserLaunchOptions> browser;  // set when a step of the profile is a browser step
  std::string browser_product;                  // what the probe said it is
};

bool uses_browser(const Profile& p) {
  return (p.check && p.check->is_browser()) || (p.refresh && p.refresh->is_browser());
}

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
  if (uses_browser(*plan.profile)) {
    // Fail at start-up, not at the first step: a browser that does not start
    // would make every refresh transient until the idle deadline.
    BrowserLaunchOptions launch;
    launch.path = choose_browser(config.browser);
    launch.sandbox = config.browser_sandbox;
    auto probe = probe_browser(launch, Millis(20000));
    if (!probe.ok)
      throw ConfigError("the profile has browser steps but the browser does not start: " +
                        probe.error);
    plan.browser = launch;
    plan.browser_product = probe.product;
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
  // A power loss between a save and its group commit can leave a file empty
  // or torn next to its complete previous version (SyncBatcher).
  for (const auto& path : restore_from_leftovers(dir))
    log::warn("file_restored",
              "session file was empty or torn (power loss before a sync?); restored its last "
              "complete version",
              {{"file", path}});
  int removed = remove_stale_temp_files(dir, std::chrono::seconds(60));
  if (removed > 0)
    log::info("startup", "removed temp files left by an earlier crash", {{"count", removed}});
}

// The signals the daemon takes: SIGINT and SIGTERM stop it, SIGHUP reloads.
sigset_t daemon_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  return set;
}

const char* signal_name(int sig) {
  return sig == SIGTERM ? "SIGTERM" : sig == SIGHUP ? "SIGHUP" : "SIGINT";
}

// The command line as main() got it, for the re-exec on SIGHUP.
std::vector<std::string>& command_line() {
  static std::vector<std::string> argv;
  return argv;
}

// A reload is validated exactly as `sessiond check-config` would validate the
// same command line now: the config file and profile are read again from
// disk. Returns why it is invalid, or nullopt.
std::optional<std::string> reload_rejected_because() {
  const auto& args = command_line();
  if (args.empty()) return std::string("the command line is not known");
  std::vector<const char*> argv;
  for (const auto& a : args) argv.push_back(a.c_str());
  try {
    Config config = parse_config(static_cast<int>(argv.size()), argv.data(), environment_map());
    make_plan(std::move(config));
  } catch (const std::exception& e) {
    return std::string(e.what());
  }
  return std::nullopt;
}

// Replaces this process with a fresh start of the same binary, command line
// and environment (same PID). Returns only when exec failed.
int reexec_self() {
  // Descriptors opened without O_CLOEXEC (libraries, the admin socket) must
  // not outlive the exec: the new image binds the same port again.
  if (::close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) != 0) {
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator("/proc/self/fd", ec)) {
      int fd = std::atoi(e.path().filename().c_str());
      if (fd > 2) ::fcntl(fd, F_SETFD, FD_CLOEXEC);
    }
  }
  std::cout.flush();
  std::vector<char*> argv;
  for (auto& a : command_line()) argv.push_back(a.data());
  argv.push_back(nullptr);
  ::execv("/proc/self/exe", argv.data());
  int err = errno;
  log::error("reload", std::string("cannot re-execute sessiond: ") + std::strerror(err));
  std::cerr << "sessiond: cannot re-execute /proc/self/exe: " << std::strerror(err) << "\n";
  return 1;
}

int wait_for_signal(std::chrono::milliseconds step, const std::function<bool()>& done) {
  sigset_t set = daemon_signals();
  timespec ts{static_cast<time_t>(step.count() / 1000),
              static_cast<long>((step.count() % 1000) * 1000000)};
  for (;;) {
    int sig = ::sigtimedwait(&set, nullptr, &ts);
    if (sig > 0) return sig;
    if (done && done()) return 0;
  }
}

// Everything outside the actor system: built from the plan before it, torn
// down after it (callbacks of work still queued message actors that are gone:
// harmless, but only while the actor system exists).
struct Services {
  std::shared_ptr<Metrics> metrics;
  std::unique_ptr<HttpClient> http;
  std::unique_ptr<CircuitBreaker> breaker;
  std::unique_ptr<GuardedTransport> guarded;
  std::unique_ptr<SyncBatcher> sync;  // before io: the io threads hand it work until they stop
  std::unique_ptr<WorkerPool> io;
  std::unique_ptr<WorkerPool> exec;
  std::unique_ptr<BrowserPool> browser;  // only when the profile has browser steps
  std::unique_ptr<GuardedBrowser> guarded_browser;
  std::shared_ptr<EventBus> events;  // the board publishes, GET /events (and hooks) read
  std::unique_ptr<Hooks> hooks;      // exec hook and webhook (their own threads)
};

Services build_services(const Plan& plan) {
  const Config& cfg = plan.config;
  const Profile& profile = *plan.profile;
  Services s;
  HttpClient::Options http_opts;
  http_opts.max_in_flight = std::min(cfg.max_in_flight, profile.max_in_flight);
  // One connection per request in flight, reused (keep-alive): no more
  // connections toward the site than requests we allow at once.
  http_opts.max_host_connections = static_cast<long>(http_opts.max_in_flight);
  http_opts.user_agent = "sessiond/" SESSIOND_VERSION;
  http_opts.rate_per_second = profile.rate_limit_per_second;
  http_opts.rate_burst = profile.rate_limit_burst;
  s.http = std::make_unique<HttpClient>(http_opts);
  const auto circuit = fit_to_idle_timeout(profile.circuit, plan.interval, plan.idle_timeout);
  if (circuit.open_for < profile.circuit.open_for)
    log::warn(
        "config",
        "circuit_breaker.open_for shortened to half the gap between interval and idle timeout",
        {{"open_for_ms", profile.circuit.open_for.count()}, {"used_ms", circuit.open_for.count()}});
  s.breaker = std::make_unique<CircuitBreaker>(circuit);
  s.guarded = std::make_unique<GuardedTransport>(*s.http, *s.breaker);
  s.io = std::make_unique<WorkerPool>(cfg.io_threads);
  s.exec = std::make_unique<WorkerPool>(profile.exec_max_concurrent);
  MetricsConfig mc;
  mc.interval = plan.interval;
  mc.idle_timeout = plan.idle_timeout;
  mc.shard_index = plan.shard.index;
  mc.shard_count = plan.shard.count;
  mc.per_session = cfg.per_session_metrics;
  mc.max_in_flight = http_opts.max_in_flight;
  mc.rate_limit_per_second = http_opts.rate_per_second;
  // Saves are race-free against the bot only with RENAME_EXCHANGE (not on
  // NFS): probed once here, not at every save.
  if (cfg.save_without_exchange) {
    set_save_method(SaveMethod::pin_check);
    log::info("save_without_exchange",
              "saves use the link-check-then-rename fallback (--save-without-exchange)",
              {{"dir", cfg.sessions_dir}});
  } else if (auto probe = probe_atomic_exchange(cfg.sessions_dir); probe.supported) {
    set_save_method(SaveMethod::exchange);
  } else {
    set_save_method(SaveMethod::pin_check);
    log::warn("atomic_exchange_unsupported",
              "the sessions directory does not support renameat2(RENAME_EXCHANGE) (NFS, most "
              "network filesystems): saves fall back to link-check-then-rename, where a login the "
              "bot writes during a save (a window of about one round trip to the file server) "
              "is overwritten by the older session; prefer the sidecar layout (docs/DEPLOY.md, "
              "Shared storage (NFS))",
              {{"dir", cfg.sessions_dir}, {"error", probe.detail}});
  }
  mc.atomic_exchange = save_method() == SaveMethod::exchange;
  s.metrics = std::make_shared<Metrics>(mc);
  s.sync = std::make_unique<SyncBatcher>(cfg.sessions_dir, s.metrics.get());
  EventBus::Options eo;
  eo.ring_capacity = cfg.event_buffer;
  // Ids start at the start time in microseconds: a Last-Event-ID from before
  // a restart is always older than this process's ring (a reset, not a
  // wrong resumption).
  const auto since_epoch = std::chrono::system_clock::now().time_since_epoch();
  eo.first_id = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(since_epoch).count());
  eo.metrics = s.metrics.get();
  s.events = std::make_shared<EventBus>(eo);
  HookOptions ho;
  ho.exec = cfg.hook_exec;
  ho.timeout = cfg.hook_timeout;
  ho.concurrency = cfg.hook_concurrency;
  ho.types = parse_type_filter(cfg.hook_types);
  ho.webhook_url = cfg.webhook_url;
  ho.webhook_secret = cfg.webhook_secret;
  ho.retry.window = cfg.webhook_retry_max;
  ho.queue_limit = cfg.hook_queue;
  ho.metrics = s.metrics.get();
  s.hooks = std::make_unique<Hooks>(s.events, std::move(ho));
  if (plan.browser) {
    BrowserPool::Options bo;
    bo.launch = *plan.browser;
    bo.max_concurrent = static_cast<int>(profile.browser_max_concurrent);
    bo.rate_per_second = profile.rate_limit_per_second;
    bo.rate_burst = profile.rate_limit_burst;
    auto hook = [metrics = s.metrics](const std::string& event, const std::string& detail) {
      if (event == "browser_crashed" || event == "browser_start_failed") {
        log::error(event, "the browser failed; in-flight steps are retried, the browser restarts",
                   {{"error", detail}});
      } else {
        log::info(event, event == "browser_recycled" ? "browser recycled" : "browser started",
                  {{"detail", detail}});
      }
      if (event == "browser_crashed" || event == "browser_recycled") metrics->browser_restarted();
    };
    s.browser = std::make_unique<BrowserPool>(bo, hook);
    s.guarded_browser = std::make_unique<GuardedBrowser>(*s.browser, *s.breaker);
  }
  return s;
}

void configure_scheduler(caf::actor_system_config& cfg) {
  // Not "stealing": CAF 0.17 steals from the tail of a singly linked queue
  // by walking it, so a fan-out to every session (drain, refresh all)
  // turns quadratic (a drain of 100k sessions took 40-100 s instead of
  // 7-17 s); with its default polling, 100k idle actors with pending timers
  // also cost a quarter core.
  cfg.set("scheduler.policy", caf::atom("sharing"));
  // One worker per core, not CAF's default of at least 4: actors never
  // block (disk and HTTP run on their own threads), and on 2 cores the
  // extra workers only added context switches (bench: 1,385-1,558 ->
  // 1,676-1,757 refreshes/s, 0.91-1.04 -> 0.83-0.85 CPU-s per 1,000).
  cfg.set("scheduler.max-threads",
          static_cast<size_t>(std::max(1u, std::thread::hardware_concurrency())));
}

struct Actors {
  status_board_actor board;
  session_listener_actor listener;  // `once` only
  supervisor_actor supervisor;
  watcher_actor watcher;
};

// Spawns the actors of one site; the watcher last, once the supervisor can
// take what it reports.
Actors spawn_actors(caf::actor_system& system, const Plan& plan, Services& services,
                    DaemonMode mode, std::function<void(OnceTally::Result)> once_done) {
  const Config& cfg = plan.config;
  Actors a;
  StatusBoardSetup bs;
  bs.info = {SESSIOND_VERSION, plan.interval.count() / 1000, plan.idle_timeout.count() / 1000,
             plan.shard.index, plan.shard.count};
  bs.metrics = services.metrics;
  bs.events = services.events;
  bs.on_logged_out = cfg.on_logged_out;
  bs.heartbeat_interval = cfg.heartbeat_interval;
  bs.status_interval = cfg.status_interval;
  bs.sample = [http = services.http.get(), breaker = services.breaker.get(),
               browser = services.browser.get()](Metrics& m) {
    m.sample_http(http->load());
    m.sample_circuit(breaker->is_open());
    if (browser) {
      auto b = browser->stats();
      m.sample_browser(b.in_flight, b.queued, b.browser_rss_bytes, b.browser_pss_bytes);
    }
  };
  a.board = system.spawn(status_board_impl, bs);
  if (mode == DaemonMode::once) a.listener = system.spawn(once_listener_impl, std::move(once_done));

  auto rt = std::make_shared<Runtime>();
  rt->http = services.guarded.get();
  rt->io = services.io.get();
  rt->sync = services.sync.get();
  rt->exec = services.exec.get();
  rt->browser = services.guarded_browser.get();
  rt->metrics = services.metrics;
  rt->events = services.events;
  rt->board = a.board;
  rt->listener = a.listener;
  auto settings = std::make_shared<SiteSettings>();
  settings->name = plan.profile->name;
  settings->profile = plan.profile;
  settings->sessions_dir = cfg.sessions_dir;
  settings->on_logged_out = cfg.on_logged_out;
  settings->interval = plan.interval;
  settings->idle_timeout = plan.idle_timeout;
  settings->catchup_window = std::min(plan.interval / 4, Millis(30000));
  settings->refresh_at_start = mode == DaemonMode::once;
  settings->metrics = services.metrics.get();
  auto site = std::make_shared<Site>(Site{settings, rt});

  SupervisorSetup ss;
  ss.site = site;
  ss.restart_limit = cfg.restart_limit;
  ss.restart_window = cfg.restart_window;
  a.supervisor = system.spawn(supervisor_impl, ss);

  WatcherSetup ws;
  ws.dir = cfg.sessions_dir;
  ws.supervisor = a.supervisor;
  ws.rescan_interval = cfg.rescan_interval;
  ws.shard = plan.shard;
  ws.metrics = services.metrics.get();
  a.watcher = system.spawn<caf::detached>(watcher_actor_impl, ws);
  return a;
}

// Readiness goes false, no new cycles, in-flight ones finish and save within
// the timeout, then every actor stops. True when everything finished in time.
bool drain(caf::actor_system& system, const Actors& a, Millis timeout) {
  caf::anon_send(a.board, drain_atom::value);
  bool drained = false;
  {
    caf::scoped_actor self{system};
    self->request(a.supervisor, timeout, drain_atom::value)
        .receive([&](drained_atom) { drained = true; }, [&](caf::error&) {});
  }
  caf::anon_send_exit(a.watcher, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(a.supervisor, caf::exit_reason::user_shutdown);
  if (a.listener) caf::anon_send_exit(a.listener, caf::exit_reason::user_shutdown);
  return drained;
}

std::string describe_step(const std::optional<Step>& step) {
  if (!step) return "none";
  if (step->is_exec()) return "exec";
  if (step->is_browser()) return "browser " + step->browser->url;
  return step->method + " " + step->path;
}

const char* mode_name(DaemonMode mode) {
  return mode == DaemonMode::run ? "run" : mode == DaemonMode::once ? "once" : "demo";
}

}  // namespace

void remember_command_line(int argc, char** argv) {
  command_line().assign(argv, argv + argc);
}

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
        {"check", describe_step(p.check)},
        {"refresh", describe_step(p.refresh)},
        {"browser", plan.browser ? nlohmann::json(plan.browser->path) : nlohmann::json()},
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
  sigset_t set = daemon_signals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
  log::init(*log::parse_level(config.log_level));

  std::unique_ptr<DemoSite> demo;
  Plan plan;
  try {
    if (mode == DaemonMode::demo) {
      demo = std::make_unique<DemoSite>(config.demo_sessions);
      if (config.profile_path.empty()) config.profile_path = "profiles/demo.json";
      config.sessions_dir = demo->sessions_dir();
    }
    plan = make_plan(config, demo ? demo->base_url() : std::string());
    prepare_sessions_dir(plan.config.sessions_dir);
    if (plan.browser) {
      int removed = remove_stale_profile_dirs(plan.browser->temp_dir);
      if (removed > 0)
        log::info("startup", "removed browser profile directories left by an earlier crash",
                  {{"count", removed}});
    }
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
             {"mode", mode_name(mode)},
             {"site", plan.profile->name},
             {"base_url", plan.profile->base_url},
             {"sessions_dir", cfg.sessions_dir},
             {"interval_s", plan.interval.count() / 1000.0},
             {"idle_timeout_s", plan.idle_timeout.count() / 1000.0},
             {"shard", {{"index", plan.shard.index}, {"count", plan.shard.count}}},
             {"listen", cfg.listen}});
  if (plan.browser)
    log::info("startup", "browser found",
              {{"browser", plan.browser->path}, {"product", plan.browser_product}});
  if (demo)
    log::info("demo",
              "demo: fake site running; open http://" + cfg.listen + "/status while it runs",
              {{"site", demo->base_url()},
               {"sessions_dir", cfg.sessions_dir},
               {"sessions", cfg.demo_sessions}});

  Services services = build_services(plan);
  // Before the actors: the first registered events reach the hooks too.
  services.hooks->start();
  if (services.hooks->enabled())
    log::info("startup", "hooks on",
              {{"exec", !cfg.hook_exec.empty()},
               {"webhook", !cfg.webhook_url.empty()},
               {"types", cfg.hook_types.empty() ? "all" : cfg.hook_types}});
  int exit_code = 0;
  bool reload = false;  // SIGHUP with a valid configuration: re-exec after the drain
  {
    caf::actor_system_config sys_cfg;
    configure_scheduler(sys_cfg);
    caf::actor_system system{sys_cfg};
    auto once_result = std::make_shared<std::promise<OnceTally::Result>>();
    auto once_future = once_result->get_future();
    Actors actors = spawn_actors(system, plan, services, mode,
                                 [once_result](OnceTally::Result r) { once_result->set_value(r); });

    std::unique_ptr<AdminServer> admin;
    if (plan.listen && mode != DaemonMode::once) {
      AdminServer::Options ao;
      ao.listen = *plan.listen;
      ao.admin_token = cfg.admin_token;
      ao.events = services.events;
      ao.event_stream.heartbeat = cfg.events_heartbeat;
      ao.peers = cfg.peers;
      admin = std::make_unique<AdminServer>(system, actors.supervisor, actors.board, ao);
      try {
        admin->start();
      } catch (const std::exception& e) {
        log::error("startup", std::string("cannot start: ") + e.what(), {{"listen", cfg.listen}});
        std::cerr << "sessiond: " << e.what() << "\n";
        drain(system, actors, Millis(0));
        caf::anon_send_exit(actors.board, caf::exit_reason::user_shutdown);
        return 2;
      }
      log::info("startup", "HTTP port open: /metrics /healthz /readyz /status /sessions",
                {{"listen", ao.listen.host + ":" + std::to_string(admin->port())}});
    }
    if (demo) demo->start_timeline();

    int sig = 0;
    if (mode == DaemonMode::once) {
      sig = wait_for_signal(Millis(100), [&] {
        return once_future.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
      });
      if (sig == 0) {
        auto r = once_future.get();
        exit_code = r.failed == 0 ? 0 : 1;
        log::info("once_done", "pass finished", {{"sessions", r.total}, {"failed", r.failed}});
      } else {
        exit_code = 1;
      }
    } else {
      // SIGHUP in `run`: validate, then drain and re-exec (one code path
      // applies every setting); `demo` treats it as SIGTERM (its fake site
      // and temp directories would not survive an exec).
      for (;;) {
        sig = wait_for_signal(Millis(1000), nullptr);
        if (sig != SIGHUP || mode != DaemonMode::run) break;
        if (auto why = reload_rejected_because()) {
          log::error("reload_rejected",
                     "SIGHUP: the new configuration is invalid; still running on the old one",
                     {{"error", *why}});
          continue;
        }
        reload = true;
        break;
      }
    }

    auto drain_started = std::chrono::steady_clock::now();
    if (reload)
      log::info("reload", "SIGHUP: configuration valid; draining, then re-executing sessiond",
                {{"drain_timeout_ms", cfg.drain_timeout.count()}});
    else if (sig != 0)
      log::info("shutdown", "signal received; draining in-flight refreshes",
                {{"signal", signal_name(sig)}, {"drain_timeout_ms", cfg.drain_timeout.count()}});
    if (demo) demo->stop_timeline();  // it writes into the sessions directory
    bool drained = drain(system, actors, cfg.drain_timeout);
    if (admin) admin->stop();
    services.hooks->stop();
    caf::anon_send_exit(actors.board, caf::exit_reason::user_shutdown);
    system.await_all_actors_done();
    services.http.reset();
    services.io.reset();
    services.sync.reset();  // the last saves made durable, their previous versions removed
    services.exec.reset();
    if (services.browser) services.browser->stop();
    auto took =
        std::chrono::duration_cast<Millis>(std::chrono::steady_clock::now() - drain_started);
    if (reload)
      log::info(
          "reload",
          drained ? "drained; re-executing" : "re-executing; some refreshes did not finish in time",
          {{"drained", drained}, {"duration_ms", took.count()}});
    else
      log::info(
          "shutdown",
          drained ? "sessiond stopped" : "sessiond stopped; some refreshes did not finish in time",
          {{"drained", drained}, {"duration_ms", took.count()}, {"exit_code", exit_code}});
  }
  demo.reset();  // the fake site, after the refreshes against it have drained
  if (reload) {
    // Nothing of this image may hold a descriptor or thread. Destroyed, not
    // assigned over (assignment replaces members in declaration order, so the
    // metrics went before the event bus that reports to them): members go in
    // reverse order, as at a normal return.
    { Services released = std::move(services); }
    return reexec_self();
  }
  return exit_code;
}

}  // namespace sessiond
