#include "daemon.hpp"

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/exit_reason.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>
#include <caf/typed_event_based_actor.hpp>

#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <iostream>
#include <memory>
#include <mutex>
#include <sstream>
#include <thread>
#include <variant>

#include "admin_server.hpp"
#include "demo.hpp"
#include "sessiond/admission.hpp"
#include "sessiond/browser_pool.hpp"
#include "sessiond/browser_probe.hpp"
#include "sessiond/circuit_breaker.hpp"
#include "sessiond/daemon_plan.hpp"
#include "sessiond/hooks.hpp"
#include "sessiond/json_log.hpp"
#include "sessiond/metrics.hpp"
#include "sessiond/once_listener.hpp"
#include "sessiond/session_file.hpp"
#include "sessiond/site_diff.hpp"
#include "sessiond/site_limiter.hpp"
#include "sessiond/status_board.hpp"
#include "sessiond/supervisor.hpp"
#include "sessiond/sync_batcher.hpp"
#include "sessiond/thread_name.hpp"
#include "sessiond/watcher.hpp"

namespace sessiond {
namespace {

// The admin listener's address (nullopt: --listen off); a non-loopback one
// needs a token. The admin library parses it, so it is checked here.
std::optional<ListenAddress> admin_listen(const Config& c) {
  if (c.listen == "off") return std::nullopt;
  ListenAddress listen = parse_listen(c.listen);
  if (!listen.loopback && c.admin_token.empty())
    throw ConfigError(
        "--listen " + c.listen +
        " is not a loopback address: set --admin-token (or SESSIOND_ADMIN_TOKEN) so the admin "
        "endpoints are not open to the network");
  return listen;
}

// make_plan and the admin listener: what start-up, check-config and a reload
// validate.
Plan plan_of(Config config, const std::string& base_url_override = {}) {
  Plan plan = make_plan(std::move(config), base_url_override);
  admin_listen(plan.config);
  return plan;
}

// `what`: how errors name the directory. A site of a config file's "sites"
// (`create` false) must find its directory: a missing one is that site's
// error, not something to paper over with an empty directory.
void prepare_sessions_dir(const std::string& dir, const std::string& what, bool create,
                          const FilePattern& pattern, const nlohmann::json::json_pointer& state) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) {
    if (!create) throw ConfigError(what + " " + dir + ": " + std::strerror(errno));
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) throw ConfigError(what + " " + dir + ": cannot create it: " + ec.message());
    ::chmod(dir.c_str(), 0700);
    log::info("startup", "created the sessions directory", {{"dir", dir}});
  } else if (!S_ISDIR(st.st_mode)) {
    throw ConfigError(what + " " + dir + ": not a directory");
  } else if (st.st_mode & 077) {
    log::warn(
        "startup",
        "the sessions directory is readable by group or others; session files hold credentials "
        "(chmod 700 recommended)",
        {{"dir", dir}, {"mode", (std::ostringstream() << std::oct << (st.st_mode & 0777)).str()}});
  }
  if (::access(dir.c_str(), R_OK | W_OK | X_OK) != 0)
    throw ConfigError(what + " " + dir + ": not readable and writable: " + std::strerror(errno));
  // A power loss between a save and its group commit can leave a file empty
  // or torn next to its complete previous version (SyncBatcher).
  for (const auto& path : restore_from_leftovers(dir, pattern, state))
    log::warn("file_restored",
              "session file was empty or torn (power loss before a sync?); restored its last "
              "complete version",
              {{"file", path}});
  int removed = remove_stale_temp_files(dir, std::chrono::seconds(60), pattern);
  if (removed > 0)
    log::info("startup", "removed temp files left by an earlier crash", {{"count", removed}});
}

// A config file's site: its unusable directory is that site's error (logged,
// shown in /sites) while the others run; its watcher takes the directory up
// once it is there.
void prepare_site_dir(SitePlan& site) {
  try {
    prepare_sessions_dir(site.sessions_dir, "site \"" + site.name + "\": sessions_dir", false,
                         site.pattern, site.profile->state_pointer);
  } catch (const ConfigError& e) {
    site.error = e.what();
    log::error("site_error", "the site's sessions directory is not usable; its sessions wait",
               {{"site", site.name}, {"dir", site.sessions_dir}, {"error", site.error}});
  }
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

// The plan of the reloaded configuration, or why it is invalid: validated
// exactly as `sessiond check-config` would validate the same command line
// now (the config file and profiles are read again from disk).
std::variant<Plan, std::string> reload_plan() {
  const auto& args = command_line();
  if (args.empty()) return std::string("the command line is not known");
  std::vector<const char*> argv;
  for (const auto& a : args) argv.push_back(a.c_str());
  try {
    Config config = parse_config(static_cast<int>(argv.size()), argv.data(), environment_map());
    return plan_of(std::move(config));
  } catch (const std::exception& e) {
    return std::string(e.what());
  }
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
// One site's own parts in front of the shared ones: its circuit breaker and
// its share of the HTTP client (in flight, rate), so one slow or failing site
// cannot starve another.
struct SiteServices {
  std::unique_ptr<CircuitBreaker> breaker;
  std::unique_ptr<SiteLimiter> limiter;  // null with one site: the client's own limits
  std::unique_ptr<SiteBrowserLimiter> browser_limiter;  // null with one site or no browser step
  std::unique_ptr<GuardedTransport> guarded;
  std::unique_ptr<GuardedBrowser> guarded_browser;
  // Bounds the site's cycles that hold a loaded file (RefreshCycle::admit_first):
  // a start-up where every session is due at once loads only a few at a time.
  std::unique_ptr<AdmissionGate> admission;
  // Group commits of the site's saves (syncfs of its directory's filesystem:
  // sites may live on different ones). Its saves come from the io threads:
  // released after them (Services::io).
  std::unique_ptr<SyncBatcher> sync;
  // What waits in the site's queues completes as shut down; nothing reaches
  // the shared client or pool afterwards.
  void stop_queues() {
    if (limiter) limiter->stop();
    if (browser_limiter) browser_limiter->stop();
    if (admission) admission->stop();
  }
};

struct Services {
  std::shared_ptr<Metrics> metrics;
  // Before the client and the browser pool, so destroyed after them: the
  // completions they deliver when they stop go through a site's limiter
  // and breaker.
  std::vector<SiteServices> sites;    // as plan.sites
  std::vector<SiteServices> retired;  // of sites a reload stopped: kept until shutdown
  std::unique_ptr<HttpClient> http;
  std::unique_ptr<WorkerPool> io;
  std::unique_ptr<WorkerPool> exec;
  std::unique_ptr<BrowserPool> browser;  // only when a profile has browser steps
  std::shared_ptr<EventBus> events;      // the board publishes, GET /events (and hooks) read
  std::unique_ptr<Hooks> hooks;          // exec hook and webhook (their own threads)
};

// A site's breaker, and with several sites its SiteLimiter, in front of the
// shared client and browser pool.
SiteServices make_site_services(const SitePlan& site, bool one_site, const Services& s) {
  const Profile& profile = *site.profile;
  SiteServices ss;
  const auto circuit = fit_to_idle_timeout(profile.circuit, site.interval, site.idle_timeout);
  if (circuit.open_for < profile.circuit.open_for)
    log::warn(
        "config",
        "circuit_breaker.open_for shortened to half the gap between interval and idle timeout",
        {{"site", site.name},
         {"open_for_ms", profile.circuit.open_for.count()},
         {"used_ms", circuit.open_for.count()}});
  ss.breaker = std::make_unique<CircuitBreaker>(circuit);
  ss.breaker->set_site(site.name);
  ss.sync = std::make_unique<SyncBatcher>(site.sessions_dir, s.metrics.get());
  // Once a backlog is through, the heap it freed goes back to the system
  // (glibc keeps freed chunks of its arenas otherwise): a supplement, as the
  // gate keeps the backlog itself small. On the disk pool: it takes a while.
  ss.admission =
      std::make_unique<AdmissionGate>(admission_slots(site.max_in_flight),
                                      [io = s.io.get()] { io->post([] { ::malloc_trim(0); }); });
  HttpTransport* inner = s.http.get();
  if (!one_site) {
    SiteLimiter::Options lo;
    lo.max_in_flight = site.max_in_flight;
    lo.rate_per_second = profile.rate_limit_per_second;
    lo.rate_burst = profile.rate_limit_burst;
    ss.limiter = std::make_unique<SiteLimiter>(*s.http, lo);
    inner = ss.limiter.get();
  }
  ss.guarded = std::make_unique<GuardedTransport>(*inner, *ss.breaker);
  if (!s.browser) return ss;
  BrowserRunner* browser = s.browser.get();
  if (!one_site && uses_browser(profile)) {
    SiteBrowserLimiter::Options bo;
    bo.max_in_flight = browser_slots(profile);
    bo.rate_per_second = profile.rate_limit_per_second;
    bo.rate_burst = profile.rate_limit_burst;
    ss.browser_limiter = std::make_unique<SiteBrowserLimiter>(*s.browser, bo);
    browser = ss.browser_limiter.get();
  }
  ss.guarded_browser = std::make_unique<GuardedBrowser>(*browser, *ss.breaker);
  return ss;
}

Services build_services(const Plan& plan) {
  const Config& cfg = plan.config;
  const SitePlan& first = plan.sites.front();
  // The flags' one site keeps the client's own cap and bucket; sites of a
  // config file each have a SiteLimiter (a reload may add more).
  const bool one_site = plan.from_flags;
  Services s;
  HttpClient::Options http_opts;
  // One site: the client's own cap and bucket are the site's (as always).
  // Several: the client's cap is --max-in-flight, each site's share and rate
  // are its SiteLimiter's.
  http_opts.max_in_flight = one_site ? first.max_in_flight : cfg.max_in_flight;
  // One connection per request in flight, reused (keep-alive): no more
  // connections toward a site than requests we allow at once.
  http_opts.max_host_connections = static_cast<long>(plan.host_connections);
  http_opts.user_agent = "sessiond/" SESSIOND_VERSION;
  http_opts.answer_lag_target = cfg.save_lag_target;
  if (one_site) {
    http_opts.rate_per_second = first.profile->rate_limit_per_second;
    http_opts.rate_burst = first.profile->rate_limit_burst;
  }
  s.http = std::make_unique<HttpClient>(http_opts);
  s.io = std::make_unique<WorkerPool>(cfg.io_threads, "sd-io");
  s.exec = std::make_unique<WorkerPool>(plan.exec_slots, "sd-exec");
  MetricsConfig mc;
  mc.interval = first.interval;
  mc.idle_timeout = first.idle_timeout;
  mc.shard_index = plan.shard.index;
  mc.shard_count = plan.shard.count;
  mc.per_session = cfg.per_session_metrics;
  // The `site` label with a config file's sites; the flags' one site keeps
  // the series as they always were (no label).
  if (!plan.from_flags)
    for (const auto& site : plan.sites) {
      mc.sites.push_back(site.name);
      mc.site_timing[site.name] = {site.interval, site.idle_timeout};
    }
  mc.max_in_flight = http_opts.max_in_flight;
  mc.rate_limit_per_second = http_opts.rate_per_second;
  // Saves are race-free against the bot only with RENAME_EXCHANGE (not on
  // NFS): probed once here, not at every save, in the first usable
  // directory (sites of one deployment share a volume).
  std::string probe_dir = first.sessions_dir;
  for (const auto& site : plan.sites)
    if (site.error.empty()) {
      probe_dir = site.sessions_dir;
      break;
    }
  if (cfg.save_without_exchange) {
    set_save_method(SaveMethod::pin_check);
    log::info("save_without_exchange",
              "saves use the link-check-then-rename fallback (--save-without-exchange)",
              {{"dir", probe_dir}});
  } else if (auto probe = probe_atomic_exchange(probe_dir); probe.supported) {
    set_save_method(SaveMethod::exchange);
  } else {
    set_save_method(SaveMethod::pin_check);
    log::warn("atomic_exchange_unsupported",
              "the sessions directory does not support renameat2(RENAME_EXCHANGE) (NFS, most "
              "network filesystems): saves fall back to link-check-then-rename, where a login the "
              "bot writes during a save (a window of about one round trip to the file server) "
              "is overwritten by the older session; prefer the sidecar layout (docs/DEPLOY.md, "
              "Shared storage (NFS))",
              {{"dir", probe_dir}, {"error", probe.detail}});
  }
  mc.atomic_exchange = save_method() == SaveMethod::exchange;
  s.metrics = std::make_shared<Metrics>(mc);
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
    bo.max_concurrent = static_cast<int>(plan.browser_slots);
    // One site: the pool's own bucket is the site's (as always). Several:
    // each site's SiteBrowserLimiter has its rate.
    if (one_site) {
      bo.rate_per_second = first.profile->rate_limit_per_second;
      bo.rate_burst = first.profile->rate_limit_burst;
    }
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
  }
  for (const auto& site : plan.sites) s.sites.push_back(make_site_services(site, one_site, s));
  return s;
}

// CAF's threads (scheduler workers, its clock) are called "sd-actors".
class NameActorThreads final : public caf::thread_hook {
 public:
  void init(caf::actor_system&) override {}
  void thread_started() override { name_this_thread("sd-actors"); }
  void thread_terminates() override {}
};

void configure_scheduler(caf::actor_system_config& cfg) {
  cfg.add_thread_hook<NameActorThreads>();
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

struct SiteActors {
  std::string name;
  session_listener_actor listener;  // `once` only: one per site (ids are unique per site)
  supervisor_actor supervisor;
  watcher_actor watcher;
};

struct Actors {
  status_board_actor board;
  std::vector<SiteActors> sites;  // as plan.sites
};

SiteInfo site_info(const SitePlan& site, const SiteServices& services) {
  const CircuitBreaker* breaker = services.breaker.get();
  SiteInfo info;
  info.name = site.name;
  info.dir = site.sessions_dir;
  info.pattern = site.pattern.text();
  info.profile = site.profile_path;
  info.interval_s = site.interval.count() / 1000;
  info.interval = site.interval;
  info.idle_timeout = site.idle_timeout;
  info.on_logged_out = site.on_logged_out;
  info.breaker = [breaker] { return std::string(to_string(breaker->state())); };
  // The site's own queues (sessiond_http_queued{site}, ...): a retired
  // site's limiters outlive the board.
  if (const auto* limiter = services.limiter.get())
    info.http_load = [limiter] { return limiter->load(); };
  if (const auto* limiter = services.browser_limiter.get())
    info.browser_load = [limiter] { return limiter->load(); };
  if (const auto* gate = services.admission.get())
    info.admission_queued = [gate] { return gate->queued(); };
  info.error = site.error;
  return info;
}

// One site's supervisor and watcher (the watcher last, once the supervisor
// can take what it reports), on one runtime: the shared pools, the site's
// guarded views of the shared HTTP client and browser pool.
SiteActors spawn_site(caf::actor_system& system, const Plan& plan, const SitePlan& sp,
                      const SiteServices& site_services, const Services& services,
                      status_board_actor board, DaemonMode mode,
                      const std::function<void(OnceTally::Result)>& once_done) {
  const Config& cfg = plan.config;
  SiteActors sa;
  sa.name = sp.name;
  if (mode == DaemonMode::once) sa.listener = system.spawn(once_listener_impl, once_done);
  auto rt = std::make_shared<Runtime>();
  rt->http = site_services.guarded.get();
  rt->io = services.io.get();
  rt->sync = site_services.sync.get();
  rt->exec = services.exec.get();
  rt->browser = site_services.guarded_browser.get();
  rt->admission = site_services.admission.get();
  rt->metrics = services.metrics;
  rt->events = services.events;
  rt->board = board;
  rt->listener = sa.listener;
  auto settings = std::make_shared<SiteSettings>();
  settings->name = sp.name;
  settings->profile = sp.profile;
  settings->sessions_dir = sp.sessions_dir;
  settings->pattern = sp.pattern;
  settings->on_logged_out = sp.on_logged_out;
  settings->interval = sp.interval;
  settings->idle_timeout = sp.idle_timeout;
  settings->catchup_window = std::min(sp.interval / 4, Millis(30000));
  settings->refresh_at_start = mode == DaemonMode::once;
  settings->admit_first = true;
  settings->metrics = services.metrics.get();
  auto site = std::make_shared<Site>(Site{settings, rt});

  SupervisorSetup ss;
  ss.site = site;
  ss.restart_limit = cfg.restart_limit;
  ss.restart_window = cfg.restart_window;
  sa.supervisor = system.spawn(supervisor_impl, ss);

  WatcherSetup ws;
  ws.dir = sp.sessions_dir;
  ws.pattern = sp.pattern;
  ws.supervisor = sa.supervisor;
  ws.rescan_interval = cfg.rescan_interval;
  ws.shard = plan.shard;
  ws.metrics = services.metrics.get();
  ws.site = sp.name;
  ws.board = board;
  sa.watcher = system.spawn<caf::detached>(watcher_actor_impl, ws);
  return sa;
}

// Spawns the board, then each site's actors. `once_done` is called once per
// site.
Actors spawn_actors(caf::actor_system& system, const Plan& plan, Services& services,
                    DaemonMode mode, std::function<void(OnceTally::Result)> once_done) {
  const Config& cfg = plan.config;
  const SitePlan& first = plan.sites.front();
  Actors a;
  StatusBoardSetup bs;
  bs.info = {SESSIOND_VERSION, first.interval.count() / 1000, first.idle_timeout.count() / 1000,
             plan.shard.index, plan.shard.count};
  bs.metrics = services.metrics;
  bs.events = services.events;
  bs.on_logged_out = first.on_logged_out;
  bs.heartbeat_interval = cfg.heartbeat_interval;
  bs.status_interval = cfg.status_interval;
  for (std::size_t i = 0; i < plan.sites.size(); ++i)
    bs.sites.push_back(site_info(plan.sites[i], services.sites[i]));
  // The sites' breakers are sampled by the board from its SiteInfo list.
  bs.sample = [http = services.http.get(), browser = services.browser.get()](Metrics& m) {
    m.sample_http(http->load());
    if (browser) {
      auto b = browser->stats();
      m.sample_browser(b.in_flight, b.queued, b.browser_rss_bytes, b.browser_pss_bytes);
    }
  };
  a.board = system.spawn(status_board_impl, bs);
  for (std::size_t i = 0; i < plan.sites.size(); ++i)
    a.sites.push_back(spawn_site(system, plan, plan.sites[i], services.sites[i], services, a.board,
                                 mode, once_done));
  return a;
}

// Readiness goes false, no new cycles, in-flight ones finish and save within
// the timeout, then every actor stops. True when everything finished in time.
// Asks the sites' supervisors to drain all at once (their running cycles
// finish and save, no new one starts) and waits for every answer within the
// one timeout: a site is never left undrained while another finishes.
// Returns whether every site drained in time.
bool drain_sites(caf::actor_system& system, const std::vector<const SiteActors*>& sites,
                 Millis timeout) {
  caf::scoped_actor self{system};
  using Reply = decltype(self->request(sites.front()->supervisor, timeout, drain_atom::value));
  std::vector<Reply> replies;
  for (const auto* s : sites)
    replies.push_back(self->request(s->supervisor, timeout, drain_atom::value));
  bool drained = true;
  for (auto& reply : replies) {
    bool ok = false;
    reply.receive([&](drained_atom) { ok = true; }, [&](caf::error&) {});
    drained = drained && ok;
  }
  return drained;
}

std::vector<const SiteActors*> all_sites(const Actors& a) {
  std::vector<const SiteActors*> out;
  for (const auto& s : a.sites) out.push_back(&s);
  return out;
}

bool drain(caf::actor_system& system, const Actors& a, Millis timeout) {
  caf::anon_send(a.board, drain_atom::value);
  const bool drained = drain_sites(system, all_sites(a), timeout);
  for (const auto& s : a.sites) {
    caf::anon_send_exit(s.watcher, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(s.supervisor, caf::exit_reason::user_shutdown);
    if (s.listener) caf::anon_send_exit(s.listener, caf::exit_reason::user_shutdown);
  }
  return drained;
}

// Sites a reload removes or changes: drained together like a shutdown (their
// running cycles finish and save), stopped, and only once their supervisors
// are down (their sessions stopped with them) their statuses are forgotten,
// so no late status of theirs lands after the removal.
void stop_sites(caf::actor_system& system, const std::vector<const SiteActors*>& sites,
                status_board_actor board, Millis timeout) {
  if (sites.empty()) return;
  drain_sites(system, sites, timeout);
  {
    caf::scoped_actor self{system};
    for (const auto* s : sites) {
      self->monitor(s->supervisor);
      caf::anon_send_exit(s->watcher, caf::exit_reason::user_shutdown);
      caf::anon_send_exit(s->supervisor, caf::exit_reason::user_shutdown);
    }
    // Bounded: a supervisor stops its children and exits at once.
    std::size_t down = 0;
    bool timed_out = false;
    while (down < sites.size() && !timed_out)
      self->receive([&](caf::down_msg&) { ++down; },
                    caf::after(std::chrono::seconds(10)) >> [&] { timed_out = true; });
  }
  for (const auto* s : sites) caf::anon_send(board, remove_atom::value, s->name);
}

// A reload that changes only sites (sites_only_change): the sites removed or
// changed stop, the added or changed ones start (their sessions resume from
// their files' keepalive blocks), the others are not touched: their timers
// run on. Returns the log fields.
nlohmann::json reload_sites(caf::actor_system& system, Plan& plan, Plan next, Services& services,
                            Actors& actors, AdminServer* admin) {
  std::vector<SiteKey> running_keys, next_keys;
  for (const auto& sp : plan.sites) running_keys.push_back({sp.name, sp.fingerprint});
  for (const auto& sp : next.sites) next_keys.push_back({sp.name, sp.fingerprint});
  const SiteDiff diff = diff_sites(running_keys, next_keys);
  std::vector<const SiteActors*> stopping;
  for (std::size_t i = 0; i < plan.sites.size(); ++i)
    if (diff.stop[i]) stopping.push_back(&actors.sites[i]);
  stop_sites(system, stopping, actors.board, plan.config.drain_timeout);
  for (std::size_t i = 0; i < plan.sites.size(); ++i) {
    if (!diff.stop[i]) continue;
    services.sites[i].stop_queues();
    services.retired.push_back(std::move(services.sites[i]));
  }
  for (const auto& name : diff.removed) services.metrics->remove_site(name);
  std::vector<SitePlan> sites;
  std::vector<SiteServices> site_services;
  std::vector<SiteActors> site_actors;
  for (std::size_t n = 0; n < next.sites.size(); ++n) {
    auto& sp = next.sites[n];
    if (const auto i = diff.keep[n]) {
      sites.push_back(std::move(plan.sites[*i]));
      site_services.push_back(std::move(services.sites[*i]));
      site_actors.push_back(std::move(actors.sites[*i]));
      continue;
    }
    prepare_site_dir(sp);
    services.metrics->add_site(sp.name);
    site_services.push_back(make_site_services(sp, false, services));
    site_actors.push_back(spawn_site(system, next, sp, site_services.back(), services, actors.board,
                                     DaemonMode::run, {}));
    sites.push_back(std::move(sp));
  }
  plan.sites = std::move(sites);
  services.sites = std::move(site_services);
  actors.sites = std::move(site_actors);
  auto infos = std::make_shared<std::vector<SiteInfo>>();
  std::vector<SiteHandle> handles;
  for (std::size_t i = 0; i < plan.sites.size(); ++i) {
    infos->push_back(site_info(plan.sites[i], services.sites[i]));
    handles.push_back(
        SiteHandle{plan.sites[i].name, actors.sites[i].supervisor, plan.sites[i].pattern});
  }
  caf::anon_send(actors.board, sites_atom::value, SiteInfoListPtr(std::move(infos)));
  if (admin) admin->set_sites(std::move(handles));
  return {{"added", diff.added},
          {"removed", diff.removed},
          {"changed", diff.changed},
          {"unchanged", diff.unchanged}};
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
    Plan plan = plan_of(config);
    auto site_json = [](const SitePlan& s) {
      const auto& p = *s.profile;
      return nlohmann::json{
          {"name", s.name},
          {"profile", s.profile_path},
          {"site", p.name},
          {"base_url", p.base_url},
          {"interval", format_duration(s.interval)},
          {"idle_timeout", format_duration(s.idle_timeout)},
          {"check", describe_step(p.check)},
          {"refresh", describe_step(p.refresh)},
          {"sessions_dir", s.sessions_dir},
          {"file_pattern", s.pattern.text()},
          {"max_in_flight", s.max_in_flight},
          {"on_logged_out", to_string(s.on_logged_out)},
      };
    };
    nlohmann::json out = plan.from_flags ? site_json(plan.sites.front()) : nlohmann::json::object();
    if (plan.from_flags) out.erase("name");
    out["browser"] = plan.browser ? nlohmann::json(plan.browser->path) : nlohmann::json();
    out["listen"] = config.listen;
    out["shard"] = {{"index", plan.shard.index}, {"count", plan.shard.count}};
    if (!plan.from_flags) {
      auto sites = nlohmann::json::array();
      for (const auto& s : plan.sites) sites.push_back(site_json(s));
      out["sites"] = std::move(sites);
    }
    std::cout << out.dump(2) << "\nconfiguration OK\n";
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "sessiond: " << e.what() << "\n";
    return 2;
  }
}

namespace {

// glibc gives each thread that contends for the heap its own arena (up to 8
// per core) and keeps what a burst freed in each: a first start of 100k due
// sessions peaked at 4.1-4.2 KB per session with that default, 3.7-3.8 KB
// with 2 arenas, at no measurable CPU cost (docs/PERFORMANCE.md): the
// daemon's threads mostly wait. An operator's limit (MALLOC_ARENA_MAX, or
// glibc.malloc.arena_max in GLIBC_TUNABLES) still decides. Before any thread
// starts.
void limit_malloc_arenas() {
  constexpr int kMallocArenas = 2;
  const char* tunables = std::getenv("GLIBC_TUNABLES");
  const bool operator_set = std::getenv("MALLOC_ARENA_MAX") != nullptr ||
                            (tunables && std::strstr(tunables, "malloc.arena_max") != nullptr);
  if (!operator_set) ::mallopt(M_ARENA_MAX, kMallocArenas);
}

}  // namespace

int run_daemon(Config config, DaemonMode mode) {
  // Signals are taken by sigtimedwait in this thread only: block them before
  // any thread starts so every thread inherits the mask.
  sigset_t set = daemon_signals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
  limit_malloc_arenas();
  log::init(*log::parse_level(config.log_level));

  std::unique_ptr<DemoSite> demo;
  Plan plan;
  try {
    if (mode == DaemonMode::demo) {
      demo = std::make_unique<DemoSite>(config.demo_sessions);
      if (config.profile_path.empty()) config.profile_path = "profiles/demo.json";
      config.sessions_dir = demo->sessions_dir();
      config.sites.clear();  // the demo is its own one site
    }
    plan = plan_of(config, demo ? demo->base_url() : std::string());
    for (auto& site : plan.sites) {
      if (plan.from_flags) {
        prepare_sessions_dir(site.sessions_dir, "--sessions-dir", true, site.pattern,
                             site.profile->state_pointer);
        continue;
      }
      prepare_site_dir(site);
    }
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
  for (const auto& site : plan.sites)
    log::info("startup", "sessiond starting",
              {{"version", SESSIOND_VERSION},
               {"mode", mode_name(mode)},
               {"site", site.name},
               {"profile", site.profile->name},
               {"base_url", site.profile->base_url},
               {"sessions_dir", site.sessions_dir},
               {"file_pattern", site.pattern.text()},
               {"interval_s", site.interval.count() / 1000.0},
               {"idle_timeout_s", site.idle_timeout.count() / 1000.0},
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
    // `once`: each site's listener reports its pass; the sum, once all have.
    struct OnceSum {
      std::mutex mu;
      OnceTally::Result sum;
      std::size_t left = 0;
      std::promise<OnceTally::Result> done;
    };
    auto once_sum = std::make_shared<OnceSum>();
    once_sum->left = plan.sites.size();
    auto once_future = once_sum->done.get_future();
    Actors actors = spawn_actors(system, plan, services, mode, [once_sum](OnceTally::Result r) {
      std::lock_guard<std::mutex> lock(once_sum->mu);
      once_sum->sum.total += r.total;
      once_sum->sum.failed += r.failed;
      if (--once_sum->left == 0) once_sum->done.set_value(once_sum->sum);
    });

    std::unique_ptr<AdminServer> admin;
    if (const auto listen = admin_listen(cfg); listen && mode != DaemonMode::once) {
      AdminServer::Options ao;
      ao.listen = *listen;
      ao.admin_token = cfg.admin_token;
      ao.events = services.events;
      ao.event_stream.heartbeat = cfg.events_heartbeat;
      ao.peers = cfg.peers;
      std::vector<SiteHandle> handles;
      for (std::size_t i = 0; i < actors.sites.size(); ++i)
        handles.push_back(
            SiteHandle{actors.sites[i].name, actors.sites[i].supervisor, plan.sites[i].pattern});
      admin = std::make_unique<AdminServer>(system, std::move(handles), actors.board, ao);
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
        auto next = reload_plan();
        if (auto* why = std::get_if<std::string>(&next)) {
          log::error("reload_rejected",
                     "SIGHUP: the new configuration is invalid; still running on the old one",
                     {{"error", *why}});
          continue;
        }
        if (sites_only_change(plan, std::get<Plan>(next))) {
          auto fields = reload_sites(system, plan, std::move(std::get<Plan>(next)), services,
                                     actors, admin.get());
          log::info("reload", "SIGHUP: only the sites that changed were restarted", fields);
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
    // The sites' queues first: nothing waiting there may reach the client
    // once it is gone.
    for (auto* list : {&services.sites, &services.retired})
      for (auto& s : *list) s.stop_queues();
    services.http.reset();
    services.io.reset();
    for (auto* list : {&services.sites, &services.retired})
      for (auto& s : *list) s.sync.reset();  // the last saves durable, displaced versions removed
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
