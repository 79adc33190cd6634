#include "admin_server.hpp"

#include <httplib.h>
#include <caf/scoped_actor.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <limits>

#include "sessiond/config.hpp"
#include "sessiond/messages.hpp"
#include "sessiond/session_file.hpp"
#include "sessiond/session_status.hpp"

namespace sessiond {
namespace {

using json = nlohmann::json;

void send_json(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(body.dump(), "application/json");
}

void send_error(httplib::Response& res, int status, const std::string& message) {
  send_json(res, status, json{{"error", message}});
}

// Constant-time comparison: the time taken does not depend on where the
// first difference is.
bool same_secret(const std::string& a, const std::string& b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  const std::string& other = a.size() == b.size() ? b : a;
  for (std::size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ other[i]);
  return diff == 0;
}

// Asks an actor; nullopt when it does not answer in time.
template <class T, class... Ts>
std::optional<T> ask(caf::actor_system& sys, const caf::actor& dest,
                     std::chrono::milliseconds timeout, Ts&&... xs) {
  std::optional<T> out;
  caf::scoped_actor self{sys};
  self->request(dest, timeout, std::forward<Ts>(xs)...)
      .receive([&](T& value) { out = std::move(value); }, [&](caf::error&) {});
  return out;
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

AdminServer::AdminServer(caf::actor_system& system, caf::actor supervisor, caf::actor metrics,
                         Options options)
    : system_(system),
      supervisor_(std::move(supervisor)),
      metrics_(std::move(metrics)),
      options_(std::move(options)) {}

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
  svr.new_task_queue = [] { return new httplib::ThreadPool(8); };
  svr.set_error_handler([](const httplib::Request&, httplib::Response& res) {
    if (!res.body.empty()) return;
    std::string msg = res.status == 413   ? "request body too large"
                      : res.status == 404 ? "not found"
                                          : "bad request";
    send_error(res, res.status, msg);
  });
  svr.set_exception_handler([](const httplib::Request&, httplib::Response& res,
                               std::exception_ptr) { send_error(res, 500, "internal error"); });

  auto authorized = [this](const httplib::Request& req, httplib::Response& res) {
    if (options_.admin_token.empty()) return true;
    auto header = req.get_header_value("Authorization");
    const std::string prefix = "Bearer ";
    if (header.rfind(prefix, 0) == 0 &&
        same_secret(header.substr(prefix.size()), options_.admin_token))
      return true;
    res.set_header("WWW-Authenticate", "Bearer");
    send_error(res, 401, header.empty() ? "missing bearer token" : "wrong bearer token");
    return false;
  };
  auto q = options_.query_timeout;

  svr.Get("/metrics", [this, q](const httplib::Request&, httplib::Response& res) {
    auto text = ask<std::string>(system_, metrics_, q, metrics_atom::value);
    if (!text) return send_error(res, 503, "metrics actor did not answer");
    res.set_content(*text, "text/plain; version=0.0.4; charset=utf-8");
  });
  svr.Get("/healthz", [this, q](const httplib::Request&, httplib::Response& res) {
    auto ready = ask<bool>(system_, metrics_, q, ready_atom::value, true);
    if (!ready) return send_error(res, 503, "actor system does not answer");
    send_json(res, 200, json{{"status", "ok"}});
  });
  svr.Get("/readyz", [this, q](const httplib::Request&, httplib::Response& res) {
    auto ready = ask<bool>(system_, metrics_, q, ready_atom::value, true);
    if (ready && *ready) return send_json(res, 200, json{{"status", "ready"}});
    send_json(res, 503, json{{"status", ready ? "not ready" : "no answer"}});
  });
  svr.Get("/status", [this, q](const httplib::Request& req, httplib::Response& res) {
    // ?state=NAME and ?limit=N keep the answer small with many sessions.
    std::string state = req.get_param_value("state");
    if (!state.empty() && !valid_state_name(state))
      return send_error(res, 400,
                        "unknown state \"" + state + "\" (expected one of " + state_names() + ")");
    std::uint64_t limit = std::numeric_limits<std::uint64_t>::max();
    if (req.has_param("limit")) {
      const std::string v = req.get_param_value("limit");
      if (v.empty() || v.size() > 9 ||
          !std::all_of(v.begin(), v.end(), [](unsigned char c) { return std::isdigit(c); }))
        return send_error(res, 400, "limit: expected a number of sessions (0-999999999)");
      limit = std::stoull(v);
    }
    auto text = ask<std::string>(system_, metrics_, q, status_atom::value, state, limit);
    if (!text) return send_error(res, 503, "status not available");
    res.set_content(*text, "application/json");
  });
  svr.Post("/refresh", [this, q, authorized](const httplib::Request& req, httplib::Response& res) {
    if (!authorized(req, res)) return;
    auto n = ask<int>(system_, supervisor_, q, refresh_atom::value);
    if (!n) return send_error(res, 503, "supervisor did not answer");
    send_json(res, 202, json{{"refreshing", *n}});
  });

  // /sessions/{id} and /sessions/{id}/refresh: ids are validated here, after
  // httplib decoded the path, so "..%2F" and friends never reach the disk.
  auto session_route = [this, q, authorized](const httplib::Request& req, httplib::Response& res) {
    const std::string id = req.matches[1];
    const bool refresh =
        req.matches.size() > 2 && req.matches[2].matched && req.matches[2].length() > 0;
    if (!valid_session_id(id))
      return send_error(res, 400, "invalid session id (expected [A-Za-z0-9_.-]{1,64})");
    if (refresh) {
      if (req.method != "POST") {
        res.set_header("Allow", "POST");
        return send_error(res, 405, "method not allowed");
      }
      if (!authorized(req, res)) return;
      auto outcome =
          ask<std::string>(system_, supervisor_, options_.refresh_timeout, refresh_atom::value, id);
      if (!outcome) return send_error(res, 504, "refresh did not finish in time");
      if (*outcome == "not_found") return send_error(res, 404, "unknown session " + id);
      return send_json(res, *outcome == "success" ? 200 : 502,
                       json{{"session", id}, {"outcome", *outcome}});
    }
    if (req.method == "GET") {
      auto text = ask<std::string>(system_, metrics_, q, session_atom::value, id);
      if (!text) return send_error(res, 503, "status not available");
      if (text->empty()) return send_error(res, 404, "unknown session " + id);
      return res.set_content(*text, "application/json");
    }
    if (req.method == "PUT" || req.method == "DELETE") {
      if (!authorized(req, res)) return;
      auto result = req.method == "PUT"
                        ? ask<std::string>(system_, supervisor_, q, register_atom::value, id)
                        : ask<std::string>(system_, supervisor_, q, unregister_atom::value, id);
      if (!result) return send_error(res, 503, "supervisor did not answer");
      if (*result == "not_found")
        return send_error(res, 404,
                          req.method == "PUT"
                              ? "no file " + session_filename(id) + " in the sessions directory"
                              : "unknown session " + id);
      return send_json(res, *result == "registered" ? 201 : 200,
                       json{{"session", id}, {"result", *result}});
    }
    res.set_header("Allow", "GET, PUT, DELETE");
    send_error(res, 405, "method not allowed");
  };
  const char* pattern = R"(/sessions/([^/]+)(/refresh)?)";
  svr.Get(pattern, session_route);
  svr.Post(pattern, session_route);
  svr.Put(pattern, session_route);
  svr.Delete(pattern, session_route);
  svr.Patch(pattern, session_route);
  for (const char* path : {"/metrics", "/healthz", "/readyz", "/status"}) {
    auto not_allowed = [](const httplib::Request&, httplib::Response& res) {
      res.set_header("Allow", "GET");
      send_error(res, 405, "method not allowed");
    };
    svr.Post(path, not_allowed);
    svr.Put(path, not_allowed);
    svr.Delete(path, not_allowed);
  }
  auto post_only = [](const httplib::Request&, httplib::Response& res) {
    res.set_header("Allow", "POST");
    send_error(res, 405, "method not allowed");
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
  thread_ = std::thread([this] { server_->listen_after_bind(); });
}

void AdminServer::stop() {
  if (server_) server_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace sessiond
