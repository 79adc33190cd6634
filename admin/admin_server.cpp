#include "admin_server.hpp"

#include <httplib.h>

#include "sessiond/config.hpp"
#include "sessiond/thread_name.hpp"

namespace sessiond {
namespace {

void send(httplib::Response& res, const Reply& reply) {
  res.status = reply.status;
  for (const auto& [name, value] : reply.headers) res.set_header(name.c_str(), value);
  res.set_content(reply.body, reply.content_type.c_str());
}

// cpp-httplib 0.11 reads the body of a POST, PUT or PATCH without
// Content-Length until the client closes or the read timeout passes, then
// answers 400: `curl -X POST .../refresh` waited 10 s for a 400. A request
// with neither Content-Length nor Transfer-Encoding has no body (RFC 9112,
// section 6.3), so say so before httplib reads. The pre-routing handler runs
// before the body is read, on httplib's own non-const Request.
httplib::Server::HandlerResponse no_body_unless_announced(const httplib::Request& req,
                                                          httplib::Response&) {
  if (!req.has_header("Content-Length") && !req.has_header("Transfer-Encoding"))
    const_cast<httplib::Request&>(req).set_header("Content-Length", "0");
  return httplib::Server::HandlerResponse::Unhandled;
}

Auth auth_of(const httplib::Request& req) {
  return Auth{req.get_header_value("Authorization"), req.get_header_value("Cookie")};
}

std::optional<std::string> param(const httplib::Request& req, const char* name) {
  if (!req.has_param(name)) return std::nullopt;
  return req.get_param_value(name);
}

}  // namespace

ListenAddress parse_listen(const std::string& text) {
  ListenAddress a;
  auto colon = text.rfind(':');
  if (colon == std::string::npos)
    throw ConfigError("--listen: expected HOST:PORT, got \"" + text + "\"");
  a.host = text.substr(0, colon);
  if (a.host.size() >= 2 && a.host.front() == '[' && a.host.back() == ']')
    a.host = a.host.substr(1, a.host.size() - 2);
  if (a.host.empty()) a.host = "0.0.0.0";
  try {
    std::size_t used = 0;
    a.port = std::stoi(text.substr(colon + 1), &used);
    if (used != text.size() - colon - 1 || a.port < 0 || a.port > 65535)
      throw std::out_of_range("port");
  } catch (...) {
    throw ConfigError("--listen: bad port in \"" + text + "\"");
  }
  a.loopback = a.host == "localhost" || a.host == "::1" || a.host.rfind("127.", 0) == 0;
  return a;
}

AdminServer::AdminServer(caf::actor_system& system, supervisor_actor supervisor,
                         status_board_actor board, Options options)
    : AdminServer(system, {SiteHandle{std::string(), std::move(supervisor), FilePattern()}},
                  std::move(board), std::move(options)) {}

AdminServer::AdminServer(caf::actor_system& system, std::vector<SiteHandle> sites,
                         status_board_actor board, Options options)
    : options_(std::move(options)), routes_(system, std::move(sites), std::move(board), [this] {
        AdminRoutes::Options o{options_.admin_token, options_.refresh_timeout,
                               options_.query_timeout, !options_.listen.loopback};
        o.peers = options_.peers;
        // The DNS form of --peers names replicas on this one's port.
        if (options_.listen.port > 0) o.peers_port = options_.listen.port;
        return o;
      }()) {}

AdminServer::~AdminServer() {
  stop();
}

void AdminServer::start() {
  server_ = std::make_unique<httplib::Server>();
  auto& svr = *server_;
  svr.set_tcp_nodelay(true);
  svr.set_keep_alive_max_count(1000);
  svr.set_payload_max_length(64 * 1024);
  svr.set_read_timeout(10, 0);
  // Each GET /events stream keeps a thread for as long as its client stays:
  // the pool has one per allowed stream on top of the 8 the other routes use.
  if (options_.events)
    events_ = std::make_unique<EventStream>(options_.events, options_.event_stream);
  const std::size_t threads = 8 + (events_ ? options_.event_stream.max_subscribers : 0);
  svr.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  svr.set_pre_routing_handler(no_body_unless_announced);
  svr.set_error_handler([](const httplib::Request&, httplib::Response& res) {
    if (!res.body.empty()) return;
    std::string msg = res.status == 413   ? "request body too large"
                      : res.status == 404 ? "not found"
                                          : "bad request";
    send(res, AdminRoutes::error(res.status, msg));
  });
  svr.set_exception_handler(
      [](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
        send(res, AdminRoutes::error(500, "internal error"));
      });

  const AdminRoutes* routes = &routes_;
  svr.Get("/metrics", [routes](const httplib::Request&, httplib::Response& res) {
    send(res, routes->metrics());
  });
  svr.Get("/healthz", [routes](const httplib::Request&, httplib::Response& res) {
    send(res, routes->healthz());
  });
  svr.Get("/readyz", [routes](const httplib::Request&, httplib::Response& res) {
    send(res, routes->readyz());
  });
  svr.Get("/status", [routes](const httplib::Request& req, httplib::Response& res) {
    if (auto denied = routes->read_denied(auth_of(req))) return send(res, *denied);
    send(res, routes->status(
                  StatusParams{param(req, "state"), param(req, "limit"), param(req, "site")}));
  });
  svr.Get("/sites", [routes](const httplib::Request& req, httplib::Response& res) {
    if (auto denied = routes->read_denied(auth_of(req))) return send(res, *denied);
    send(res, routes->sites());
  });
  // The status page for a person, its one-session view and its assets.
  svr.Get("/", [routes](const httplib::Request& req, httplib::Response& res) {
    if (routes->read_denied(auth_of(req))) return send(res, AdminRoutes::page_login());
    send(res, routes->page(PageParams{param(req, "session"), param(req, "site"), param(req, "q"),
                                      param(req, "state"), param(req, "after"),
                                      param(req, "before"), param(req, "limit")}));
  });
  svr.Get(R"(/s/([^/]+))", [routes](const httplib::Request& req, httplib::Response& res) {
    if (routes->read_denied(auth_of(req))) return send(res, AdminRoutes::page_login());
    send(res, routes->page(PageParams{req.matches[1].str(), param(req, "site"), std::nullopt,
                                      std::nullopt, std::nullopt, std::nullopt, std::nullopt}));
  });
  svr.Get("/replicas", [routes](const httplib::Request& req, httplib::Response& res) {
    if (routes->read_denied(auth_of(req))) return send(res, AdminRoutes::page_login());
    send(res, routes->replicas());
  });
  svr.Get(R"(/ui/([A-Za-z0-9_.-]+))", [](const httplib::Request& req, httplib::Response& res) {
    send(res, AdminRoutes::ui(req.matches[1].str()));
  });
  if (events_) {
    EventStream* events = events_.get();
    svr.Get("/events", [events, routes](const httplib::Request& req, httplib::Response& res) {
      if (auto denied = routes->read_denied(auth_of(req))) return send(res, *denied);
      events->serve(req, res);
    });
  }
  // The page posts the token here to get the read cookie (form or bearer).
  svr.Post("/login", [routes](const httplib::Request& req, httplib::Response& res) {
    send(res, routes->login(req.get_header_value("Authorization"),
                            req.get_header_value("Content-Type"), req.body));
  });
  svr.Post("/logout", [](const httplib::Request& req, httplib::Response& res) {
    send(res, AdminRoutes::logout(req.get_header_value("Content-Type")));
  });
  svr.Post("/refresh", [routes](const httplib::Request& req, httplib::Response& res) {
    send(res, routes->refresh_all(req.get_header_value("Authorization")));
  });

  // /sessions/{id} and /sessions/{id}/{refresh,pause,resume}; httplib decoded the path.
  auto session_route = [routes](const httplib::Request& req, httplib::Response& res) {
    if (auto denied = routes->read_denied(auth_of(req))) return send(res, *denied);
    const std::string id = req.matches[1];
    const std::string action =
        req.matches.size() > 2 && req.matches[2].matched ? req.matches[2].str() : "";
    send(res, routes->session_route(req.method, id, action, req.get_header_value("Authorization"),
                                    param(req, "reason")));
  };
  const char* pattern = R"(/sessions/([^/]+)(?:/(refresh|pause|resume))?)";
  svr.Get(pattern, session_route);
  svr.Post(pattern, session_route);
  svr.Put(pattern, session_route);
  svr.Delete(pattern, session_route);
  svr.Patch(pattern, session_route);
  // /sites/{site}/sessions/{id}[/{refresh,pause,resume}]: always unambiguous.
  auto site_session_route = [routes](const httplib::Request& req, httplib::Response& res) {
    if (auto denied = routes->read_denied(auth_of(req))) return send(res, *denied);
    const std::string site = req.matches[1];
    const std::string id = req.matches[2];
    const std::string action =
        req.matches.size() > 3 && req.matches[3].matched ? req.matches[3].str() : "";
    send(res, routes->session_route(req.method, id, action, req.get_header_value("Authorization"),
                                    param(req, "reason"), site));
  };
  const char* site_pattern = R"(/sites/([^/]+)/sessions/([^/]+)(?:/(refresh|pause|resume))?)";
  svr.Get(site_pattern, site_session_route);
  svr.Post(site_pattern, site_session_route);
  svr.Put(site_pattern, site_session_route);
  svr.Delete(site_pattern, site_session_route);
  svr.Patch(site_pattern, site_session_route);
  auto get_only = [](const httplib::Request&, httplib::Response& res) {
    send(res, AdminRoutes::method_not_allowed("GET"));
  };
  for (const char* path : {"/metrics", "/healthz", "/readyz", "/status"}) {
    svr.Post(path, get_only);
    svr.Put(path, get_only);
    svr.Delete(path, get_only);
  }
  auto post_only = [](const httplib::Request&, httplib::Response& res) {
    send(res, AdminRoutes::method_not_allowed("POST"));
  };
  svr.Get("/refresh", post_only);
  svr.Put("/refresh", post_only);
  svr.Delete("/refresh", post_only);

  if (options_.listen.port == 0)
    port_ = svr.bind_to_any_port(options_.listen.host);
  else
    port_ =
        svr.bind_to_port(options_.listen.host, options_.listen.port) ? options_.listen.port : -1;
  if (port_ <= 0)
    throw std::runtime_error("cannot listen on " + options_.listen.host + ":" +
                             std::to_string(options_.listen.port) +
                             " (address in use or not available)");
  thread_ = start_named_thread("sd-admin", [this] { server_->listen_after_bind(); });
}

void AdminServer::stop() {
  if (events_) events_->close_all();  // the streams end before the pool is joined
  if (server_) server_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace sessiond
