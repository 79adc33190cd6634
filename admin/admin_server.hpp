#pragma once
// The one HTTP port: /metrics, /healthz, /readyz, /status, /sessions/{id} and
// the admin endpoints. cpp-httplib's own threads serve it and map each
// request onto an AdminRoutes function; no CAF worker ever waits on a client.

#include <caf/actor_system.hpp>

#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "admin_routes.hpp"
#include "event_stream.hpp"
#include "sessiond/actors.hpp"

namespace httplib {
class Server;
}

namespace sessiond {

struct ListenAddress {
  std::string host;
  int port = 0;
  bool loopback = false;
};
// "127.0.0.1:9464", "[::1]:9464", "localhost:9464", ":9464" (all interfaces).
ListenAddress parse_listen(const std::string& text);  // throws ConfigError

class AdminServer {
 public:
  struct Options {
    ListenAddress listen;
    std::string admin_token;
    std::chrono::milliseconds refresh_timeout{120000};  // POST /sessions/{id}/refresh
    std::chrono::milliseconds query_timeout{5000};
    std::shared_ptr<EventBus> events;  // null: no GET /events
    EventStreamOptions event_stream;   // heartbeat, subscriber cap, queue limit
    std::string peers;                 // --peers, for GET /replicas ("" = not configured)
  };
  AdminServer(caf::actor_system& system, supervisor_actor supervisor, status_board_actor board,
              Options options);
  // Every site: /sites, /sites/{site}/sessions/{id}, /status?site=.
  AdminServer(caf::actor_system& system, std::vector<SiteHandle> sites, status_board_actor board,
              Options options);
  ~AdminServer();
  // A reload changed the sites.
  void set_sites(std::vector<SiteHandle> sites) { routes_.set_sites(std::move(sites)); }
  // Binds (throws std::runtime_error with the reason) and serves on a thread.
  void start();
  void stop();
  int port() const { return port_; }

 private:
  Options options_;
  AdminRoutes routes_;
  std::unique_ptr<EventStream> events_;  // GET /events, when options_.events is set
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
};

}  // namespace sessiond
