// sessiond: keeps web login sessions alive. Entry point: parses the command
// line and dispatches to the daemon or to a client of a running daemon.

#include <httplib.h>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "admin_server.hpp"
#include "daemon.hpp"
#include "sessiond/build_info.hpp"
#include "sessiond/config.hpp"
#include "sessiond/fleet_status.hpp"
#include "sessiond/session_file.hpp"

namespace {

using namespace sessiond;
using json = nlohmann::json;

std::string daemon_url(const Config& c) {
  if (!c.url.empty()) return c.url;
  auto a = parse_listen(c.listen == "off" ? "127.0.0.1:9464" : c.listen);
  std::string host = a.host == "0.0.0.0" ? "127.0.0.1" : a.host == "::" ? "::1" : a.host;
  if (host.find(':') != std::string::npos) host = "[" + host + "]";
  return "http://" + host + ":" + std::to_string(a.port);
}

std::unique_ptr<httplib::Client> client_for(const Config& c, const std::string& url) {
  auto cli = std::make_unique<httplib::Client>(url);
  cli->set_connection_timeout(3, 0);
  cli->set_read_timeout(130, 0);
  if (!c.admin_token.empty()) cli->set_bearer_token_auth(c.admin_token);
  return cli;
}

int no_daemon(const std::string& url, httplib::Error err) {
  std::cerr << "sessiond: no sessiond answers at " << url << " (" << httplib::to_string(err)
            << "). Is it running? Point at it with --url or --listen.\n";
  return 1;
}

// status --all: every replica of --peers, one merged table; exit 1 when any
// replica did not answer (the table still shows the others).
int status_all_command(const Config& c) {
  if (c.peers.empty()) {
    std::cerr << "sessiond: status --all needs --peers (SESSIOND_PEERS): the headless Service's "
                 "DNS name, e.g. sessiond-headless.NS.svc.cluster.local, or a comma list of URLs\n";
    return 2;
  }
  const int port = parse_listen(c.listen == "off" ? "127.0.0.1:9464" : c.listen).port;
  const auto peers = find_peers(c.peers, port);
  FleetStatus fleet;
  for (const auto& answer : fetch_statuses(peers, c.admin_token, std::chrono::seconds(5)))
    fleet.add(answer);
  if (c.output == "json")
    std::cout << fleet.merged_json().dump() << "\n";
  else
    std::cout << fleet.table(std::chrono::system_clock::now());
  return fleet.complete() ? 0 : 1;
}

int status_command(const Config& c) {
  if (c.all) return status_all_command(c);
  auto url = daemon_url(c);
  auto cli = client_for(c, url);
  const std::string path = c.site.empty() ? "/status" : "/status?site=" + c.site;
  auto res = cli->Get(path.c_str());
  if (!res) return no_daemon(url, res.error());
  if (res->status != 200) {
    std::cerr << "sessiond: " << url << path << " answered " << res->status << ": " << res->body
              << "\n";
    return 1;
  }
  if (c.output == "json") {
    std::cout << res->body << "\n";
    return 0;
  }
  auto doc = json::parse(res->body, nullptr, false);
  if (doc.is_discarded()) {
    std::cerr << "sessiond: " << url << "/status did not answer JSON\n";
    return 1;
  }
  // A SITE column once there is more than one site to tell apart.
  const bool by_site = doc.contains("sites") && doc["sites"].is_object() && doc["sites"].size() > 1;
  std::vector<std::vector<std::string>> rows = {
      {"ID", "STATE", "LAST REFRESH", "COUNT", "NEXT", "LAST ERROR"}};
  if (by_site) rows[0].insert(rows[0].begin(), "SITE");
  for (const auto& s : doc["sessions"]) {
    std::string err = s["lastError"].is_string() ? s["lastError"].get<std::string>() : "-";
    if (err.size() > 60) err = err.substr(0, 57) + "...";
    rows.push_back({s.value("mobile", "?"), s.value("state", "?"),
                    s["lastRefreshAgeSeconds"].is_number()
                        ? format_age(s["lastRefreshAgeSeconds"].get<double>()) + " ago"
                        : "never",
                    std::to_string(s.value("refreshCount", 0)),
                    s.value("refreshing", false)
                        ? "running"
                        : format_until(s["nextRefresh"], std::chrono::system_clock::now()),
                    err});
    if (by_site) rows.back().insert(rows.back().begin(), s.value("site", "?"));
  }
  // Grouped by site (the header row stays first).
  if (by_site) std::sort(rows.begin() + 1, rows.end());
  std::cout << format_table(rows) << "\n";
  if (by_site)
    for (const auto& [name, site] : doc["sites"].items())
      std::cout << name << ": " << site.value("activeSessions", 0) << " active of "
                << site.value("totalSessions", 0) << " sessions\n";
  std::cout << doc.value("activeSessions", 0) << " active of " << doc.value("totalSessions", 0)
            << " sessions; refresh interval " << doc.value("refreshInterval", 0)
            << "s; ready: " << (doc.value("ready", false) ? "yes" : "no") << "\n";
  return 0;
}

int refresh_command(const Config& c) {
  auto url = daemon_url(c);
  auto cli = client_for(c, url);
  std::string path = c.args.empty() ? "/refresh"
                     : c.site.empty()
                         ? "/sessions/" + c.args.front() + "/refresh"
                         : "/sites/" + c.site + "/sessions/" + c.args.front() + "/refresh";
  if (!c.args.empty() && !valid_session_id(c.args.front())) {
    std::cerr << "sessiond: invalid session id \"" << c.args.front() << "\"\n";
    return 2;
  }
  auto res = cli->Post(path.c_str(), "", "application/json");
  if (!res) return no_daemon(url, res.error());
  std::cout << res->body << "\n";
  return res->status / 100 == 2 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  Config config;
  try {
    config = parse_config(argc, argv, environment_map());
  } catch (const ConfigError& e) {
    std::cerr << "sessiond: " << e.what() << "\n";
    return 2;
  }
  if (config.version) {
    std::cout << version_line() << "\n";
    return 0;
  }
  if (config.help) {
    std::cout << usage(config.command);
    return 0;
  }
  remember_command_line(argc, argv);
  try {
    if (config.command == "run") return run_daemon(config, DaemonMode::run);
    if (config.command == "once") return run_daemon(config, DaemonMode::once);
    if (config.command == "demo") return run_daemon(config, DaemonMode::demo);
    if (config.command == "check-config") return check_config(config);
    if (config.command == "status") return status_command(config);
    if (config.command == "refresh") return refresh_command(config);
  } catch (const ConfigError& e) {
    std::cerr << "sessiond: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "sessiond: " << e.what() << "\n";
    return 1;
  }
  std::cerr << usage("");
  return 2;
}
