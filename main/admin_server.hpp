#pragma once
// The one HTTP port: /metrics, /healthz, /readyz, /status, /sessions/{id} and
// the admin endpoints. cpp-httplib's own threads serve it; each request asks
// the actors through a scoped_actor with a timeout, so no CAF worker ever
// waits on a client and a stuck actor yields 503/504, not a hung request.

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>

#include <chrono>
#include <memory>
#include <string>
#include <thread>

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
  };
  AdminServer(caf::actor_system& system, caf::actor supervisor, caf::actor metrics,
              Options options);
  ~AdminServer();
  // Binds (throws std::runtime_error with the reason) and serves on a thread.
  void start();
  void stop();
  int port() const { return port_; }

 private:
  caf::actor_system& system_;
  caf::actor supervisor_;
  caf::actor metrics_;
  Options options_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
};

}  // namespace sessiond
