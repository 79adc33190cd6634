#include "sessiond/daemon_plan.hpp"

#include <algorithm>

#include "sessiond/browser_probe.hpp"

namespace sessiond {
namespace {

// A site of the config file (`flags`: the one site of the flags, whose
// errors keep their flag names).
SitePlan make_site_plan(const Config& config, const SiteConfig& sc, bool flags,
                        const std::string& base_url_override) {
  const std::string where = flags ? std::string() : "site \"" + sc.name + "\": ";
  SitePlan site;
  std::string profile_bytes;
  if (sc.profile_path.empty())
    throw ConfigError("--profile is required (e.g. --profile profiles/baman24.json)");
  try {
    site.profile = std::make_shared<Profile>(load_profile(sc.profile_path, &profile_bytes));
  } catch (const ProfileError& e) {
    throw ConfigError(where + "profile " + e.what());
  }
  site.profile_path = sc.profile_path;
  site.sessions_dir = sc.sessions_dir;
  site.name = sc.name.empty() ? site_name_from(site.profile->name) : sc.name;
  std::string why;
  auto pattern = FilePattern::parse(sc.file_pattern, &why);
  if (!pattern) throw ConfigError(where + "file_pattern \"" + sc.file_pattern + "\": " + why);
  site.pattern = *pattern;
  const std::string& base_url = base_url_override.empty() ? sc.base_url : base_url_override;
  if (!base_url.empty()) {
    site.profile->base_url = base_url;
    while (site.profile->base_url.back() == '/') site.profile->base_url.pop_back();
  }
  site.interval = sc.interval.value_or(config.interval.value_or(site.profile->interval));
  site.idle_timeout =
      sc.idle_timeout.value_or(config.idle_timeout.value_or(site.profile->idle_timeout));
  site.on_logged_out = sc.on_logged_out.value_or(config.on_logged_out);
  if (site.interval >= site.idle_timeout)
    throw ConfigError(where + (flags ? "--interval (" : "interval (") +
                      format_duration(site.interval) + ") must be shorter than the idle timeout (" +
                      format_duration(site.idle_timeout) +
                      "), or sessions expire between refreshes");
  site.max_in_flight = std::min(sc.max_in_flight.value_or(site.profile->max_in_flight),
                                std::min(config.max_in_flight, site.profile->max_in_flight));
  site.fingerprint = nlohmann::json{site.name,
                                    site.profile_path,
                                    profile_bytes,
                                    site.profile->base_url,
                                    site.sessions_dir,
                                    site.pattern.text(),
                                    site.interval.count(),
                                    site.idle_timeout.count(),
                                    to_string(site.on_logged_out),
                                    site.max_in_flight}
                         .dump();
  return site;
}

}  // namespace

Plan make_plan(Config config, const std::string& base_url_override) {
  Plan plan;
  plan.from_flags = config.sites.empty();
  for (const auto& sc : sites_of(config))
    plan.sites.push_back(make_site_plan(config, sc, plan.from_flags, base_url_override));
  if (!config.config_file.empty())
    plan.global_fingerprint =
        nlohmann::json{config.config_globals, config.admin_token, config.webhook_secret}.dump();
  std::size_t shares = 0;
  for (const auto& site : plan.sites) {
    shares += site.max_in_flight;
    plan.exec_slots = std::max(plan.exec_slots, site.profile->exec_max_concurrent);
    plan.host_connections = std::max(plan.host_connections, site.max_in_flight);
  }
  if (!plan.from_flags && shares > config.max_in_flight)
    throw ConfigError("the sites' max_in_flight add up to " + std::to_string(shares) +
                      ", more than --max-in-flight " + std::to_string(config.max_in_flight) +
                      " (each site's share must fit in the shared client): lower a site's "
                      "max_in_flight or raise --max-in-flight");
  plan.shard.count = config.shard_count;
  plan.shard.index = resolve_shard_index(config);
  if (plan.shard.index >= plan.shard.count)
    throw ConfigError("--shard-index " + std::to_string(plan.shard.index) +
                      " must be below --shard-count " + std::to_string(plan.shard.count));
  if (plan.shard.count > 1)  // lets the site (and the fake site's statistics) tell replicas apart
    for (auto& site : plan.sites)
      site.profile->default_headers.emplace_back("X-Sessiond-Replica",
                                                 std::to_string(plan.shard.index));
  if (std::any_of(plan.sites.begin(), plan.sites.end(),
                  [](const SitePlan& s) { return uses_browser(*s.profile); })) {
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
    for (const auto& site : plan.sites)
      if (uses_browser(*site.profile)) plan.browser_slots += browser_slots(*site.profile);
  }
  plan.config = std::move(config);
  return plan;
}

// A reload can touch only the sites that changed when both configurations
// list sites, nothing else in the config file (nor a secret file) changed,
// and the sites' browser steps fit in the running pool's pages.
bool sites_only_change(const Plan& now, const Plan& next) {
  return !now.from_flags && !next.from_flags && !now.global_fingerprint.empty() &&
         now.global_fingerprint == next.global_fingerprint && (!next.browser || now.browser) &&
         next.browser_slots <= now.browser_slots && next.exec_slots <= now.exec_slots &&
         next.host_connections <= now.host_connections;
}

}  // namespace sessiond
