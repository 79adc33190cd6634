#pragma once
// Command line, environment (SESSIOND_<FLAG>) and config file (JSON object
// whose keys are flag names), in increasing order: defaults < --config file <
// environment < command line. DEBUG_MODE=true means --log-level debug.

#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "sessiond/duration.hpp"

namespace sessiond {

struct ConfigError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

enum class OnLoggedOut { quarantine, mark, remove };
const char* to_string(OnLoggedOut mode);  // quarantine | mark | delete

// One site of a multi-site config file ("sites": [...]). Unset optionals fall
// back to the flags (interval, idle timeout, on_logged_out), then the profile.
struct SiteConfig {
  std::string name;  // [a-z0-9_-]{1,32}, unique
  std::string profile_path;
  std::string sessions_dir;
  std::string file_pattern = "session-{id}.json";  // exactly one {id}
  std::string base_url;                            // overrides the profile's
  std::optional<Millis> interval;
  std::optional<Millis> idle_timeout;
  std::optional<OnLoggedOut> on_logged_out;
  std::optional<std::size_t> max_in_flight;  // this site's share; capped by the profile's
};

struct Config {
  std::string command;            // run | once | status | refresh | check-config | demo
  std::vector<std::string> args;  // positional arguments (refresh ID)
  bool help = false;
  bool version = false;  // --version

  std::string config_file;
  // The config file's keys other than "sites", as read (what a reload
  // compares: no second read that an edit could change in between).
  std::string config_globals;
  std::string profile_path;
  std::string base_url;  // overrides the profile's (staging sites, tests)
  std::string sessions_dir = "sessions";
  std::optional<Millis> interval;         // overrides the profile
  std::optional<Millis> idle_timeout;     // overrides the profile
  std::string listen = "127.0.0.1:9464";  // "off" disables the HTTP port
  std::string log_level = "info";
  std::string admin_token;        // --admin-token, or the contents of --admin-token-file
  std::string admin_token_file;   // read by parse_config; the token stays out of `ps`
  std::string shard_index = "0";  // a number or "auto" (from the pod name)
  std::uint32_t shard_count = 1;
  OnLoggedOut on_logged_out = OnLoggedOut::quarantine;
  Millis drain_timeout{20000};
  Millis heartbeat_interval{60000};
  Millis status_interval{600000};
  Millis rescan_interval{30000};
  std::size_t event_buffer = 10000;  // events kept for GET /events resumption
  Millis events_heartbeat{15000};    // GET /events comment interval
  // Hooks (README "Events and hooks").
  std::vector<std::string> hook_exec;  // argv of the exec hook; empty: none
  Millis hook_timeout{10000};          // one exec hook run, one webhook POST
  std::size_t hook_concurrency = 2;    // exec hooks running at once
  std::string hook_types;              // comma list of event types; "": all
  std::size_t hook_queue = 10000;      // events queued per hook (oldest dropped)
  std::string webhook_url;
  std::string webhook_secret_file;
  std::string webhook_secret;  // the contents of --webhook-secret-file
  Millis webhook_retry_max{600000};
  std::size_t max_in_flight = 256;
  // Answers settle (saved, or found to need no save) within this lag of
  // arriving: the HTTP client's AnswerWindow. A kill -9 loses what the site
  // rotated and sessiond has not renamed yet (issue 11).
  Millis save_lag_target{3};
  std::size_t io_threads = 16;  // reads, saves, removals: in parallel where the disk or NFS is slow
  int restart_limit = 5;        // restarts of one session actor ...
  Millis restart_window{60000};  // ... within this window, then it is marked failed
  bool per_session_metrics = false;
  std::string site;              // status --site: only this site's sessions
  std::string url;               // status/refresh: the daemon's address (default: from --listen)
  std::string output = "table";  // status: table | json
  bool all = false;              // status --all: every replica of --peers, merged
  std::string peers;  // status --all: DNS name (every A/AAAA record) or comma list of URLs
  int demo_sessions = 5;
  std::string browser;  // Chromium for browser steps ("" = Debian's headless shell, then chromium)
  bool browser_sandbox = true;         // false: --browser-no-sandbox
  bool save_without_exchange = false;  // force the NFS save path (tests)
  // The config file's "sites" (empty: one site from the flags; see sites_of).
  std::vector<SiteConfig> sites;
};

// The sites to run: the config file's "sites", or one site from the flags
// (--profile, --sessions-dir, ...; its name is filled in from the profile).
// Validates names (unique, [a-z0-9_-]{1,32}) and patterns; ConfigError names
// the site and the key.
std::vector<SiteConfig> sites_of(const Config& config);
// A profile's name as a site name: lower case, [a-z0-9_-] (others become
// '-'), at most 32 characters; "default" when nothing is left.
std::string site_name_from(const std::string& profile_name);
bool valid_site_name(const std::string& name);

// `env` is the process environment (name -> value).
Config parse_config(int argc, const char* const* argv,
                    const std::map<std::string, std::string>& env);

std::map<std::string, std::string> environment_map();

// `command` "" is the overview; otherwise that command's flags only.
std::string usage(const std::string& command);

// The token in an --admin-token-file: trailing line breaks trimmed; ConfigError
// (naming the path and errno text, never the contents) when unreadable, empty
// or more than one line.
std::string read_admin_token_file(const std::string& path);
// The same rules for any secret in a file; errors name `flag` and the path.
std::string read_secret_file(const std::string& flag, const std::string& path);

// Shard index to use: a number, or from SESSIOND_POD_NAME / the hostname.
std::uint32_t resolve_shard_index(const Config& config);

}  // namespace sessiond
