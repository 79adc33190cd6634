#include "sessiond/config.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <sstream>

#include "sessiond/events.hpp"
#include "sessiond/hooks.hpp"
#include "sessiond/session_file.hpp"
#include "sessiond/sharding.hpp"

extern char** environ;

namespace sessiond {

namespace {

struct Flag {
  const char* name;
  const char* value_name;  // nullptr: boolean flag
  const char* help;
  std::function<void(Config&, const std::string&)> set;
  bool comma_list = false;  // a config file may give the list as a JSON array of strings
};

// A config file value as the command line would give it: strings as they
// are, a comma list flag's array joined, anything else as JSON text (numbers,
// booleans, --hook-exec's argv array).
std::string config_file_value(const Flag& f, const nlohmann::json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (f.comma_list && v.is_array()) {
    std::string out;
    for (const auto& item : v) {
      if (!item.is_string())
        throw ConfigError(std::string("--") + f.name + ": expected an array of strings");
      out += (out.empty() ? "" : ",") + item.get<std::string>();
    }
    return out;
  }
  return v.dump();
}

Millis duration_value(const std::string& flag, const std::string& v) {
  auto d = parse_duration(v);
  if (!d || d->count() <= 0)
    throw ConfigError("--" + flag +
                      ": expected a positive duration such as 5m, 30s or 500ms, got \"" + v + "\"");
  return *d;
}

long long int_value(const std::string& flag, const std::string& v, long long lo, long long hi) {
  try {
    std::size_t used = 0;
    long long n = std::stoll(v, &used);
    if (used == v.size() && n >= lo && n <= hi) return n;
  } catch (...) {
  }
  throw ConfigError("--" + flag + ": expected a whole number from " + std::to_string(lo) + " to " +
                    std::to_string(hi) + ", got \"" + v + "\"");
}

bool bool_value(const std::string& flag, const std::string& v) {
  if (v == "true" || v == "1" || v == "yes" || v.empty()) return true;
  if (v == "false" || v == "0" || v == "no") return false;
  throw ConfigError("--" + flag + ": expected true or false, got \"" + v + "\"");
}

OnLoggedOut on_logged_out_value(const std::string& flag, const std::string& v) {
  if (v == "quarantine") return OnLoggedOut::quarantine;
  if (v == "mark") return OnLoggedOut::mark;
  if (v == "delete") return OnLoggedOut::remove;
  throw ConfigError("--" + flag + ": expected quarantine, mark or delete, got \"" + v + "\"");
}

// One entry of the config file's "sites". Errors name the site (or its
// index while the name is unknown) and the key.
SiteConfig parse_site(const nlohmann::json& j, std::size_t index) {
  std::string where = "sites[" + std::to_string(index) + "]";
  if (!j.is_object()) throw ConfigError(where + ": expected an object");
  SiteConfig s;
  if (auto n = j.find("name"); n != j.end()) {
    if (!n->is_string() || !valid_site_name(n->get<std::string>()))
      throw ConfigError(where + ": name: expected [a-z0-9_-]{1,32}, got " + n->dump());
    s.name = n->get<std::string>();
    where = "site \"" + s.name + "\"";
  } else {
    throw ConfigError(where + ": name is required");
  }
  auto text = [&](const std::string& key, const nlohmann::json& v) {
    if (v.is_string()) return v.get<std::string>();
    if (v.is_number()) return v.dump();
    throw ConfigError(where + ": " + key + ": expected a string");
  };
  for (auto& [k, v] : j.items()) {
    try {
      if (k == "name") continue;
      if (k == "profile") {
        s.profile_path = text(k, v);
      } else if (k == "sessions_dir") {
        s.sessions_dir = text(k, v);
      } else if (k == "file_pattern") {
        s.file_pattern = text(k, v);
        std::string why;
        if (!FilePattern::parse(s.file_pattern, &why))
          throw ConfigError(where + ": file_pattern \"" + s.file_pattern + "\": " + why);
      } else if (k == "base_url") {
        s.base_url = text(k, v);
        if (s.base_url.rfind("http://", 0) != 0 && s.base_url.rfind("https://", 0) != 0)
          throw ConfigError(where + ": base_url: expected http://... or https://...");
      } else if (k == "interval") {
        s.interval = duration_value("interval", text(k, v));
      } else if (k == "idle_timeout") {
        s.idle_timeout = duration_value("idle-timeout", text(k, v));
      } else if (k == "on_logged_out") {
        s.on_logged_out = on_logged_out_value("on-logged-out", text(k, v));
      } else if (k == "max_in_flight") {
        s.max_in_flight =
            static_cast<std::size_t>(int_value("max-in-flight", text(k, v), 1, 100000));
      } else {
        throw ConfigError(where + ": unknown key \"" + k +
                          "\" (keys: name, profile, sessions_dir, file_pattern, base_url, "
                          "interval, idle_timeout, on_logged_out, max_in_flight)");
      }
    } catch (const ConfigError& e) {
      const std::string msg = e.what();
      if (msg.rfind(where, 0) == 0) throw;
      throw ConfigError(where + ": " + k + ": " +
                        (msg.rfind("--", 0) == 0 ? msg.substr(msg.find(' ') + 1) : msg));
    }
  }
  if (s.profile_path.empty()) throw ConfigError(where + ": profile is required");
  if (s.sessions_dir.empty()) throw ConfigError(where + ": sessions_dir is required");
  return s;
}

// The same directory however spelled (trailing slash, "..", a symlink in
// the existing part of the path).
bool same_directory(const std::string& a, const std::string& b) {
  std::error_code ea, eb;
  auto ca = std::filesystem::weakly_canonical(std::filesystem::absolute(a, ea), ea);
  auto cb = std::filesystem::weakly_canonical(std::filesystem::absolute(b, eb), eb);
  if (ea || eb) {
    ca = std::filesystem::path(a);
    cb = std::filesystem::path(b);
  }
  return (ca / "").lexically_normal() == (cb / "").lexically_normal();
}

std::vector<SiteConfig> parse_sites(const nlohmann::json& v) {
  if (!v.is_array() || v.empty()) throw ConfigError("sites: expected a non-empty array of objects");
  std::vector<SiteConfig> sites;
  for (std::size_t i = 0; i < v.size(); ++i) {
    auto s = parse_site(v[i], i);
    for (const auto& other : sites) {
      if (other.name == s.name)
        throw ConfigError("site \"" + s.name + "\": name: used by two sites");
      if (same_directory(other.sessions_dir, s.sessions_dir) &&
          FilePattern::parse(other.file_pattern)->overlaps(*FilePattern::parse(s.file_pattern)))
        throw ConfigError("site \"" + s.name + "\": file_pattern: \"" + s.file_pattern +
                          "\" and site \"" + other.name + "\"'s \"" + other.file_pattern +
                          "\" can name the same file in the same directory (two sites would "
                          "manage it): use distinct prefixes or suffixes, or separate directories");
    }
    sites.push_back(std::move(s));
  }
  return sites;
}

const std::vector<Flag>& flags() {
  static const std::vector<Flag> all = {
      {"config", "FILE", "JSON file with flag values (keys are flag names)",
       [](Config& c, const std::string& v) { c.config_file = v; }},
      {"profile", "FILE", "site profile (JSON); see profiles/",
       [](Config& c, const std::string& v) { c.profile_path = v; }},
      {"base-url", "URL", "override the profile's base_url (e.g. a staging site)",
       [](Config& c, const std::string& v) {
         if (v.rfind("http://", 0) != 0 && v.rfind("https://", 0) != 0)
           throw ConfigError("--base-url: expected http://... or https://..., got \"" + v + "\"");
         c.base_url = v;
       }},
      {"sessions-dir", "DIR", "directory of session-<id>.json files (default: sessions)",
       [](Config& c, const std::string& v) { c.sessions_dir = v; }},
      {"interval", "DUR", "refresh interval (default: the profile's, 5m)",
       [](Config& c, const std::string& v) { c.interval = duration_value("interval", v); }},
      {"idle-timeout", "DUR", "the site's idle logout (default: the profile's, 10m)",
       [](Config& c, const std::string& v) { c.idle_timeout = duration_value("idle-timeout", v); }},
      {"listen", "ADDR",
       "HTTP address for /metrics, /status and the admin API (default "
       "127.0.0.1:9464; \"off\" disables)",
       [](Config& c, const std::string& v) { c.listen = v; }},
      {"log-level", "LEVEL", "trace, debug, info, warn or error (default info)",
       [](Config& c, const std::string& v) {
         static const char* ok[] = {"trace", "debug", "info", "warn", "error", "off"};
         if (std::find(std::begin(ok), std::end(ok), v) == std::end(ok))
           throw ConfigError("--log-level: expected trace, debug, info, warn or error, got \"" + v +
                             "\"");
         c.log_level = v;
       }},
      {"admin-token", "TOKEN", "bearer token required by mutating endpoints",
       [](Config& c, const std::string& v) { c.admin_token = v; }},
      {"admin-token-file", "FILE",
       "read the admin token from FILE (e.g. a mounted secret; not shown in ps)",
       [](Config& c, const std::string& v) {
         if (v.empty()) throw ConfigError("--admin-token-file: expected a file name");
         c.admin_token_file = v;
       }},
      {"shard-index", "N|auto", "this replica's index (auto: from the pod name sessiond-N)",
       [](Config& c, const std::string& v) {
         if (v != "auto") int_value("shard-index", v, 0, 100000);
         c.shard_index = v;
       }},
      {"shard-count", "N", "number of replicas sharing the sessions directory (default 1)",
       [](Config& c, const std::string& v) {
         c.shard_count = static_cast<std::uint32_t>(int_value("shard-count", v, 1, 100000));
       }},
      {"on-logged-out", "MODE", "quarantine (move to invalid/, default), mark, or delete",
       [](Config& c, const std::string& v) {
         c.on_logged_out = on_logged_out_value("on-logged-out", v);
       }},
      {"drain-timeout", "DUR", "on SIGTERM, how long in-flight refreshes may finish (default 20s)",
       [](Config& c, const std::string& v) {
         c.drain_timeout = duration_value("drain-timeout", v);
       }},
      {"heartbeat-interval", "DUR", "heartbeat log interval (default 1m)",
       [](Config& c, const std::string& v) {
         c.heartbeat_interval = duration_value("heartbeat-interval", v);
       }},
      {"status-interval", "DUR", "status summary log interval (default 10m)",
       [](Config& c, const std::string& v) {
         c.status_interval = duration_value("status-interval", v);
       }},
      {"event-buffer", "N",
       "session events kept for GET /events resumption with Last-Event-ID (default 10000)",
       [](Config& c, const std::string& v) {
         c.event_buffer = static_cast<std::size_t>(int_value("event-buffer", v, 0, 1000000));
       }},
      {"events-heartbeat", "DUR",
       "GET /events sends a comment this often so proxies keep it open (default 15s)",
       [](Config& c, const std::string& v) {
         c.events_heartbeat = duration_value("events-heartbeat", v);
       }},
      {"hook-exec", "CMD",
       "exec hook: run CMD (words split on spaces, or a JSON array) on every session event, the "
       "event JSON on stdin (README \"Events and hooks\")",
       [](Config& c, const std::string& v) {
         try {
           c.hook_exec = parse_hook_command(v);
         } catch (const std::invalid_argument& e) {
           throw ConfigError(std::string("--hook-exec: ") + e.what());
         }
       }},
      {"hook-timeout", "DUR", "an exec hook run or one webhook POST at most (default 10s)",
       [](Config& c, const std::string& v) { c.hook_timeout = duration_value("hook-timeout", v); }},
      {"hook-concurrency", "N", "exec hooks running at once (default 2)",
       [](Config& c, const std::string& v) {
         c.hook_concurrency = static_cast<std::size_t>(int_value("hook-concurrency", v, 1, 64));
       }},
      {"hook-types", "TYPES",
       "event types the hooks get, comma-separated (default: all; e.g. logged_out,invalidated)",
       [](Config& c, const std::string& v) {
         try {
           parse_type_filter(v);
         } catch (const std::invalid_argument& e) {
           throw ConfigError(std::string("--hook-types: ") + e.what());
         }
         c.hook_types = v;
       },
       true},
      {"hook-queue", "N", "events queued per hook; when full the oldest is dropped (default 10000)",
       [](Config& c, const std::string& v) {
         c.hook_queue = static_cast<std::size_t>(int_value("hook-queue", v, 1, 1000000));
       }},
      {"webhook-url", "URL",
       "webhook: POST every session event as JSON to URL, signed (X-Sessiond-Signature)",
       [](Config& c, const std::string& v) {
         if (!v.empty() && v.rfind("http://", 0) != 0 && v.rfind("https://", 0) != 0)
           throw ConfigError("--webhook-url: expected http://... or https://...");
         c.webhook_url = v;
       }},
      {"webhook-secret-file", "FILE",
       "the webhook's HMAC-SHA256 signing secret, read from FILE (required with --webhook-url)",
       [](Config& c, const std::string& v) {
         if (v.empty()) throw ConfigError("--webhook-secret-file: expected a file name");
         c.webhook_secret_file = v;
       }},
      {"webhook-retry-max", "DUR",
       "how long a webhook delivery is retried (backoff 1s..60s, full jitter; default 10m)",
       [](Config& c, const std::string& v) {
         c.webhook_retry_max = duration_value("webhook-retry-max", v);
       }},
      {"rescan-interval", "DUR", "full directory rescan interval, besides inotify (default 30s)",
       [](Config& c, const std::string& v) {
         c.rescan_interval = duration_value("rescan-interval", v);
       }},
      {"max-in-flight", "N", "HTTP requests in flight at most, all sites (default 256)",
       [](Config& c, const std::string& v) {
         c.max_in_flight = static_cast<std::size_t>(int_value("max-in-flight", v, 1, 100000));
       }},
      {"save-lag-target", "DUR",
       "keep HTTP answers saved within this lag of arriving: the requests open at once "
       "shrink while answers wait longer (default 3ms; 0 = off, --max-in-flight alone)",
       [](Config& c, const std::string& v) {
         c.save_lag_target = v == "0" ? Millis(0) : duration_value("save-lag-target", v);
       }},
      {"io-threads", "N",
       "threads for disk I/O (default 16: reads, saves, removals; many in parallel where the disk "
       "or NFS is slow)",
       [](Config& c, const std::string& v) {
         c.io_threads = static_cast<std::size_t>(int_value("io-threads", v, 1, 256));
       }},
      {"restart-limit", "N", "restarts of one session actor per window before it is marked failed",
       [](Config& c, const std::string& v) {
         c.restart_limit = static_cast<int>(int_value("restart-limit", v, 0, 1000));
       }},
      {"restart-window", "DUR", "window of --restart-limit (default 1m)",
       [](Config& c, const std::string& v) {
         c.restart_window = duration_value("restart-window", v);
       }},
      {"per-session-metrics", nullptr, "add per-session metric series (small deployments only)",
       [](Config& c, const std::string& v) {
         c.per_session_metrics = bool_value("per-session-metrics", v);
       }},
      {"browser", "PATH",
       "Chromium for browser steps (default: /usr/lib/chromium/chromium-headless-shell, then "
       "/usr/lib/chromium/chromium)",
       [](Config& c, const std::string& v) { c.browser = v; }},
      {"browser-no-sandbox", nullptr,
       "run Chromium without its own sandbox (pods that forbid user namespaces; see "
       "docs/DEPLOY.md)",
       [](Config& c, const std::string& v) {
         c.browser_sandbox = !bool_value("browser-no-sandbox", v);
       }},
      {"save-without-exchange", nullptr,
       "save with the link-check-then-rename fallback even where renameat2(RENAME_EXCHANGE) "
       "works (tests of the NFS path; see docs/DEPLOY.md)",
       [](Config& c, const std::string& v) {
         c.save_without_exchange = bool_value("save-without-exchange", v);
       }},
      {"site", "NAME", "status: only this site's sessions; refresh ID: the session of this site",
       [](Config& c, const std::string& v) {
         if (!valid_site_name(v)) throw ConfigError("--site: expected [a-z0-9_-]{1,32}");
         c.site = v;
       }},
      {"url", "URL", "status/refresh: the daemon's base URL (default: http://<listen>)",
       [](Config& c, const std::string& v) { c.url = v; }},
      {"output", "FORMAT", "status: table or json",
       [](Config& c, const std::string& v) {
         if (v != "table" && v != "json") throw ConfigError("--output: expected table or json");
         c.output = v;
       }},
      {"all", nullptr, "status: ask every replica of --peers and merge their answers",
       [](Config& c, const std::string& v) { c.all = bool_value("all", v); }},
      {"peers", "NAME|URLS",
       "status --all and the page's /replicas: the replicas: a DNS name whose every A/AAAA record "
       "is one (the headless Service, e.g. sessiond-headless.NS.svc.cluster.local; port from "
       "--listen) or a comma list of base URLs",
       [](Config& c, const std::string& v) { c.peers = v; }, true},
      {"sessions", "N", "demo: how many sessions the fake site logs in (default 5)",
       [](Config& c, const std::string& v) {
         c.demo_sessions = static_cast<int>(int_value("sessions", v, 1, 100000));
       }},
  };
  return all;
}

const Flag* find_flag(const std::string& name) {
  for (const auto& f : flags())
    if (name == f.name) return &f;
  return nullptr;
}

std::string env_name(const std::string& flag) {
  std::string out = "SESSIOND_";
  for (char c : flag)
    out += c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

const char* kCommands[] = {"run", "once", "status", "refresh", "check-config", "demo"};

// Which commands a flag means something to, for `sessiond COMMAND --help`.
// Flags not listed here configure the daemon (run, once, check-config, demo).
// Parsing stays lenient (a flag of another command is accepted and unused) so
// one config file or environment can serve the daemon and the clients.
bool flag_applies(const std::string& flag, const std::string& command) {
  static const std::map<std::string, std::vector<std::string>> only = {
      {"config", {"run", "once", "status", "refresh", "check-config", "demo"}},
      {"listen", {"run", "status", "refresh", "check-config", "demo"}},
      {"admin-token", {"run", "status", "refresh", "check-config", "demo"}},
      {"admin-token-file", {"run", "status", "refresh", "check-config", "demo"}},
      {"url", {"status", "refresh"}},
      {"output", {"status"}},
      {"site", {"status", "refresh"}},
      {"all", {"status"}},
      {"peers", {"run", "status", "check-config"}},
      {"sessions", {"demo"}},
      // demo supplies its own site, sessions directory and single shard
      {"base-url", {"run", "once", "check-config"}},
      {"sessions-dir", {"run", "once", "check-config"}},
      {"shard-index", {"run", "once", "check-config"}},
      {"shard-count", {"run", "once", "check-config"}},
  };
  auto it = only.find(flag);
  const std::vector<std::string> daemon = {"run", "once", "check-config", "demo"};
  const auto& commands = it != only.end() ? it->second : daemon;
  return std::find(commands.begin(), commands.end(), command) != commands.end();
}

}  // namespace

std::map<std::string, std::string> environment_map() {
  std::map<std::string, std::string> env;
  for (char** e = environ; e && *e; ++e) {
    std::string kv(*e);
    auto eq = kv.find('=');
    if (eq != std::string::npos) env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  return env;
}

Config parse_config(int argc, const char* const* argv,
                    const std::map<std::string, std::string>& env) {
  Config c;
  // 1. Split the command line into the command, flags and positionals.
  std::vector<std::pair<const Flag*, std::string>> cli;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "-h" || a == "--help") {
      c.help = true;
      continue;
    }
    if (a == "--version") {
      c.version = true;
      continue;
    }
    if (a == "-o") a = "--output";
    if (a.rfind("--", 0) == 0) {
      std::string name = a.substr(2), value;
      bool has_value = false;
      if (auto eq = name.find('='); eq != std::string::npos) {
        value = name.substr(eq + 1);
        name = name.substr(0, eq);
        has_value = true;
      }
      const Flag* f = find_flag(name);
      if (!f) throw ConfigError("unknown flag --" + name + " (see sessiond --help)");
      if (f->value_name && !has_value) {
        if (i + 1 >= argc)
          throw ConfigError("--" + name + " needs a value (" + f->value_name + ")");
        value = argv[++i];
      }
      cli.emplace_back(f, value);
      continue;
    }
    if (c.command.empty()) {
      if (std::find(std::begin(kCommands), std::end(kCommands), a) == std::end(kCommands))
        throw ConfigError("unknown command \"" + a +
                          "\" (commands: run, once, status, refresh, check-config, demo)");
      c.command = a;
    } else {
      c.args.push_back(a);
    }
  }
  // 2. The config file may itself come from the environment or the command line.
  std::string config_file;
  if (auto it = env.find("SESSIOND_CONFIG"); it != env.end()) config_file = it->second;
  for (auto& [f, v] : cli)
    if (std::string(f->name) == "config") config_file = v;
  if (!config_file.empty()) {
    std::ifstream in(config_file);
    if (!in) throw ConfigError("--config: cannot read " + config_file);
    std::stringstream ss;
    ss << in.rdbuf();
    auto doc = nlohmann::json::parse(ss.str(), nullptr, false, true);
    if (doc.is_discarded() || !doc.is_object())
      throw ConfigError(config_file + ": expected a JSON object of flag name -> value");
    for (auto& [k, v] : doc.items()) {
      if (k == "sites") {
        try {
          c.sites = parse_sites(v);
        } catch (const ConfigError& e) {
          throw ConfigError(config_file + ": " + e.what());
        }
        continue;
      }
      const Flag* f = find_flag(k);
      if (!f || k == "config") throw ConfigError(config_file + ": unknown key \"" + k + "\"");
      try {
        f->set(c, config_file_value(*f, v));
      } catch (const ConfigError& e) {
        throw ConfigError(config_file + ": " + e.what());
      }
    }
    c.config_file = config_file;
    doc.erase("sites");
    c.config_globals = doc.dump();
  }
  // 3. Environment.
  if (auto it = env.find("DEBUG_MODE"); it != env.end() && it->second == "true")
    c.log_level = "debug";
  for (const auto& f : flags()) {
    if (std::string(f.name) == "config") continue;
    auto it = env.find(env_name(f.name));
    if (it == env.end()) continue;
    try {
      f.set(c, it->second);
    } catch (const ConfigError& e) {
      throw ConfigError(env_name(f.name) + ": " + e.what());
    }
  }
  // 4. Command line wins.
  for (auto& [f, v] : cli) f->set(c, v);
  if (c.help || c.version) return c;
  // 5. The admin token from its file, once every layer has had its say.
  if (!c.admin_token_file.empty()) {
    if (!c.admin_token.empty())
      throw ConfigError(
          "--admin-token and --admin-token-file are mutually exclusive (set one; check the "
          "config file and SESSIOND_ADMIN_TOKEN / SESSIOND_ADMIN_TOKEN_FILE)");
    c.admin_token = read_admin_token_file(c.admin_token_file);
  }
  if (!c.webhook_url.empty()) {
    if (c.webhook_secret_file.empty())
      throw ConfigError(
          "--webhook-url needs --webhook-secret-file (the receiver checks the signature)");
    c.webhook_secret = read_secret_file("--webhook-secret-file", c.webhook_secret_file);
  }
  if (c.command.empty()) throw ConfigError("no command given (see sessiond --help)");
  if (c.command == "refresh" && c.args.size() > 1)
    throw ConfigError("refresh takes at most one ID");
  if (c.command != "refresh" && !c.args.empty())
    throw ConfigError("unexpected argument \"" + c.args.front() + "\"");
  return c;
}

const char* to_string(OnLoggedOut mode) {
  return mode == OnLoggedOut::quarantine ? "quarantine"
         : mode == OnLoggedOut::mark     ? "mark"
                                         : "delete";
}

bool valid_site_name(const std::string& name) {
  if (name.empty() || name.size() > 32) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
}

std::string site_name_from(const std::string& profile_name) {
  std::string out;
  for (char c : profile_name) {
    if (out.size() == 32) break;
    char l = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    bool ok = (l >= 'a' && l <= 'z') || (l >= '0' && l <= '9') || l == '_' || l == '-';
    out += ok ? l : '-';
  }
  if (std::all_of(out.begin(), out.end(), [](char c) { return c == '-'; })) return "default";
  return out;
}

std::vector<SiteConfig> sites_of(const Config& config) {
  if (!config.sites.empty()) {
    if (!config.profile_path.empty())
      throw ConfigError(
          "--profile and the config file's \"sites\" are mutually exclusive (give each site its "
          "profile)");
    return config.sites;
  }
  SiteConfig s;  // name: from the profile, once it is loaded
  s.profile_path = config.profile_path;
  s.sessions_dir = config.sessions_dir;
  s.base_url = config.base_url;
  return {s};
}

std::string read_admin_token_file(const std::string& path) {
  return read_secret_file("--admin-token-file", path);
}

std::string read_secret_file(const std::string& flag, const std::string& path) {
  // Only the path and errno text go into errors: the contents are the secret.
  const std::string what = flag == "--admin-token-file" ? "the token" : "the key";
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    int err = errno;
    throw ConfigError(flag + " " + path + ": cannot read it: " + std::strerror(err));
  }
  std::stringstream ss;
  ss << in.rdbuf();
  if (in.bad()) {
    int err = errno;
    throw ConfigError(flag + " " + path + ": cannot read it: " + std::strerror(err));
  }
  std::string token = ss.str();
  while (!token.empty() && (token.back() == '\n' || token.back() == '\r')) token.pop_back();
  if (token.empty())
    throw ConfigError(flag + " " + path + ": the file is empty (expected " + what + ")");
  if (token.find_first_of("\r\n") != std::string::npos)
    throw ConfigError(flag + " " + path + ": expected " + what +
                      " on one line (the file has several)");
  return token;
}

std::string usage(const std::string& command) {
  std::ostringstream out;
  if (command.empty()) {
    out << "sessiond keeps web login sessions alive.\n\n"
           "Usage: sessiond COMMAND [FLAGS]\n\n"
           "Commands:\n"
           "  run           the daemon: watch the sessions directory and keep every session alive\n"
           "  once          one check+refresh pass over all sessions; exit 1 if any failed\n"
           "  status        show the sessions of a running daemon (-o json for JSON)\n"
           "  refresh [ID]  ask a running daemon to refresh one session, or all now\n"
           "  check-config  validate the profile and flags; exit 2 on error\n"
           "  demo          run the daemon against the bundled fake site\n\n"
           "Run 'sessiond COMMAND --help' for details.\n\n";
  } else {
    static const std::map<std::string, std::string> what = {
        {"run",
         "Watches --sessions-dir and refreshes every session on schedule until SIGTERM. "
         "SIGHUP reloads: the config file and profile are validated, then the daemon drains "
         "and re-executes itself (same PID); invalid ones are logged and ignored."},
        {"once",
         "Checks and refreshes every session once, then exits: 0 when all succeeded, 1 "
         "otherwise, 2 on bad configuration."},
        {"status",
         "Prints the sessions of the daemon at --url (or --listen) as a table; with --all, of "
         "every replica of --peers in one table."},
        {"refresh", "Asks the daemon at --url (or --listen) to refresh session ID, or all."},
        {"check-config",
         "Loads --profile and every flag; prints the effective settings or the "
         "error (exit 2)."},
        {"demo",
         "Starts the bundled fake site, logs --sessions accounts in, and runs the daemon "
         "against it with a short interval. Ctrl-C stops everything."},
    };
    auto it = what.find(command);
    out << "Usage: sessiond " << command << (command == "refresh" ? " [ID]" : "") << " [FLAGS]\n\n"
        << (it != what.end() ? it->second : "") << "\n\n";
  }
  out << "Flags (each also read from SESSIOND_<FLAG>, e.g. SESSIOND_SESSIONS_DIR):\n";
  for (const auto& f : flags()) {
    if (!command.empty() && !flag_applies(f.name, command)) continue;
    std::string left =
        std::string("  --") + f.name + (f.value_name ? std::string(" ") + f.value_name : "");
    out << left << std::string(left.size() < 30 ? 30 - left.size() : 1, ' ') << f.help << "\n";
  }
  out << "  -h, --help                  this help\n"
         "      --version               print the version and the source revision\n"
         "\nDurations (DUR): 500ms, 30s, 5m, 2h, or combined from the largest unit down, such as "
         "1m30s or 1h30m15s; a bare number is seconds.\n"
         "DEBUG_MODE=true turns on debug logs.\n";
  return out.str();
}

std::uint32_t resolve_shard_index(const Config& config) {
  if (config.shard_index != "auto")
    return static_cast<std::uint32_t>(std::stoul(config.shard_index));
  std::string pod;
  if (const char* p = std::getenv("SESSIOND_POD_NAME"); p && *p) pod = p;
  if (pod.empty()) {
    char host[256] = {};
    if (::gethostname(host, sizeof host - 1) == 0) pod = host;
  }
  auto ordinal = ordinal_from_pod_name(pod);
  if (!ordinal)
    throw ConfigError("--shard-index auto: cannot read an ordinal from the pod name \"" + pod +
                      "\" (expected NAME-N; set SESSIOND_POD_NAME)");
  if (*ordinal >= config.shard_count)
    throw ConfigError("--shard-index auto: ordinal " + std::to_string(*ordinal) +
                      " is not below --shard-count " + std::to_string(config.shard_count));
  return *ordinal;
}

}  // namespace sessiond
