#pragma once
// What the daemon runs, validated before any thread starts: the sites (each
// a SitePlan: profile, directory, pattern, timings, its reload fingerprint),
// the shard, the browser found, and what a reload compares. make_plan is the
// one place a configuration becomes sites, at start-up, in check-config and
// on SIGHUP; sites_only_change decides whether a reload may restart only the
// sites that changed (diff_sites says which) instead of the process.

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sessiond/browser_process.hpp"
#include "sessiond/config.hpp"
#include "sessiond/profile.hpp"
#include "sessiond/session_file.hpp"
#include "sessiond/sharding.hpp"

namespace sessiond {

// One site, validated.
struct SitePlan {
  std::string name;
  std::string profile_path;
  std::string sessions_dir;
  FilePattern pattern;
  std::shared_ptr<Profile> profile;
  Millis interval{0};
  Millis idle_timeout{0};
  OnLoggedOut on_logged_out = OnLoggedOut::quarantine;
  std::size_t max_in_flight = 0;  // its share of the shared HTTP client
  std::string error;              // its sessions directory is unusable (set at start-up)
  // Everything a reload compares: the settings and the profile file's bytes.
  std::string fingerprint;
};

// Everything validated before any thread starts.
struct Plan {
  Config config;
  std::vector<SitePlan> sites;
  bool from_flags = true;  // one site from the flags: its directory problems stop the daemon
  // What a reload compares besides the sites: the config file without
  // "sites", and what was read from secret files (never logged).
  std::string global_fingerprint;
  Shard shard;
  std::optional<BrowserLaunchOptions> browser;  // set when a step of the profile is a browser step
  std::string browser_product;                  // what the probe said it is
  // The pool's pages: the one site's browser_slots, or with a config file's
  // sites the sum of theirs (each site its own pages: a slow site's steps
  // never hold another's).
  std::size_t browser_slots = 0;
  // The exec pool's threads: the largest exec_max_concurrent of the sites.
  std::size_t exec_slots = 1;
  // Connections per host in the shared client: the largest site share.
  std::size_t host_connections = 1;
};

// Throws ConfigError naming the site and key; with a config file's sites,
// also when their max_in_flight add up to more than --max-in-flight (the
// shares must fit in the shared client, or one site could fill it). Reads the
// profiles; when a profile has browser steps, starts the browser once to
// prove it runs.
// `base_url_override`: every site's base URL (the demo's fake site).
Plan make_plan(Config config, const std::string& base_url_override = {});

// A reload can touch only the sites that changed when both configurations
// list sites, nothing else in the config file (nor a secret file) changed,
// and the sites fit in the running pools (browser pages, exec threads,
// connections per host: sized at start-up).
bool sites_only_change(const Plan& now, const Plan& next);

}  // namespace sessiond
