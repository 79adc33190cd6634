#include "admin_routes.hpp"

#include <caf/scoped_actor.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <limits>

#include "sessiond/config.hpp"
#include "sessiond/fleet_status.hpp"
#include "sessiond/replicas_page.hpp"
#include "sessiond/session_file.hpp"
#include "sessiond/session_status.hpp"
#include "sessiond/status_page.hpp"

namespace sessiond {
namespace {

using json = nlohmann::json;

Reply json_reply(int status, const json& body) {
  Reply r;
  r.status = status;
  r.body = body.dump();
  return r;
}

// Constant-time comparison: the time taken does not depend on where the
// first difference is.
bool same_secret(const std::string& a, const std::string& b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  const std::string& other = a.size() == b.size() ? b : a;
  for (std::size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ other[i]);
  return diff == 0;
}

// Asks an actor; nullopt when it does not answer in time (or is gone).
template <class T, class Handle, class... Ts>
std::optional<T> ask(caf::actor_system& sys, const Handle& dest, std::chrono::milliseconds timeout,
                     Ts&&... xs) {
  std::optional<T> out;
  caf::scoped_actor self{sys};
  self->request(dest, timeout, std::forward<Ts>(xs)...)
      .receive([&](T& value) { out = std::move(value); }, [&](caf::error&) {});
  return out;
}

const char* const kInvalidId = "invalid session id (expected [A-Za-z0-9_.-]{1,64})";
constexpr std::size_t kMaxReasonBytes = 200;

// A pause's reason goes into the file and the status: short, one line.
bool valid_reason(const std::string& reason) {
  return reason.size() <= kMaxReasonBytes &&
         std::none_of(reason.begin(), reason.end(),
                      [](unsigned char c) { return c < 0x20 || c == 0x7f; });
}

// Headers of the status page and its assets: nothing from elsewhere, no
// inline script or style, not framed, not sniffed.
void page_headers(Reply& r, const char* cache) {
  r.headers.emplace_back("Content-Security-Policy", kStatusPageCsp);
  r.headers.emplace_back("X-Content-Type-Options", "nosniff");
  r.headers.emplace_back("X-Frame-Options", "DENY");
  r.headers.emplace_back("Referrer-Policy", "no-referrer");
  r.headers.emplace_back("Cache-Control", cache);
}

Reply html_error(int status, const std::string& message) {
  Reply r;
  r.status = status;
  r.content_type = "text/html; charset=utf-8";
  r.body =
      "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>sessiond</title>"
      "</head><body><p>" +
      html_escape(message) + "</p><p><a href=\"/\">status page</a></p></body></html>\n";
  page_headers(r, "no-store");
  return r;
}

}  // namespace

AdminRoutes::AdminRoutes(caf::actor_system& system, supervisor_actor supervisor,
                         status_board_actor board, Options options)
    : AdminRoutes(system, {SiteHandle{std::string(), std::move(supervisor), FilePattern()}},
                  std::move(board), std::move(options)) {}

AdminRoutes::AdminRoutes(caf::actor_system& system, std::vector<SiteHandle> sites,
                         status_board_actor board, Options options)
    : system_(system),
      sites_(std::make_shared<const std::vector<SiteHandle>>(std::move(sites))),
      board_(std::move(board)),
      options_(std::move(options)) {}

void AdminRoutes::set_sites(std::vector<SiteHandle> sites) {
  std::atomic_store(&sites_, std::make_shared<const std::vector<SiteHandle>>(std::move(sites)));
}

std::variant<SiteHandle, Reply> AdminRoutes::site_for(const std::string& site,
                                                      const std::string& id,
                                                      bool registering) const {
  const auto all = sites_now();
  if (!site.empty()) {
    for (const auto& s : *all)
      if (s.name == site) return s;
    return error(404, "unknown site " + site);
  }
  if (all->size() == 1) return all->front();
  auto found = ask<std::vector<std::string>>(system_, board_, options_.query_timeout,
                                             locate_atom::value, id);
  if (!found) return error(503, "status not available");
  if (found->size() == 1)
    for (const auto& s : *all)
      if (s.name == found->front()) return s;
  if (found->size() > 1) {
    std::string names;
    for (const auto& n : *found) names += (names.empty() ? "" : ", ") + n;
    return error(409, "session " + id + " exists in several sites (" + names +
                          "): use /sites/{site}/sessions/" + id);
  }
  if (registering) return error(400, "several sites: name one, PUT /sites/{site}/sessions/" + id);
  return error(404, "unknown session " + id);
}

Reply AdminRoutes::sites() const {
  auto text = ask<std::string>(system_, board_, options_.query_timeout, sites_atom::value);
  if (!text) return error(503, "status not available");
  Reply r;
  r.body = std::move(*text);
  return r;
}

Reply AdminRoutes::error(int status, const std::string& message) {
  return json_reply(status, json{{"error", message}});
}

Reply AdminRoutes::method_not_allowed(const std::string& allow) {
  Reply r = error(405, "method not allowed");
  r.headers.emplace_back("Allow", allow);
  return r;
}

std::optional<Reply> AdminRoutes::unauthorized(const std::string& authorization) const {
  if (options_.admin_token.empty()) return std::nullopt;
  const std::string prefix = "Bearer ";
  if (authorization.rfind(prefix, 0) == 0 &&
      same_secret(authorization.substr(prefix.size()), options_.admin_token))
    return std::nullopt;
  Reply r = error(401, authorization.empty() ? "missing bearer token" : "wrong bearer token");
  r.headers.emplace_back("WWW-Authenticate", "Bearer");
  return r;
}

namespace {

// The value of cookie `name` in a Cookie header ("a=1; b=2"), every one of
// them when a name repeats (a path-scoped duplicate must not hide ours).
std::vector<std::string> cookie_values(const std::string& header, const std::string& name) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  while (pos < header.size()) {
    std::size_t end = header.find(';', pos);
    if (end == std::string::npos) end = header.size();
    std::string pair = header.substr(pos, end - pos);
    pos = end + 1;
    auto first = pair.find_first_not_of(' ');
    if (first == std::string::npos) continue;
    pair.erase(0, first);
    auto eq = pair.find('=');
    if (eq == std::string::npos || pair.compare(0, eq, name) != 0 || eq != name.size()) continue;
    std::string value = pair.substr(eq + 1);
    while (!value.empty() && value.back() == ' ') value.pop_back();
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"')
      value = value.substr(1, value.size() - 2);
    out.push_back(std::move(value));
  }
  return out;
}

// %XX and '+' of an application/x-www-form-urlencoded field.
std::string form_decode(const std::string& in) {
  std::string out;
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '+') {
      out += ' ';
    } else if (in[i] == '%' && i + 2 < in.size() &&
               std::isxdigit(static_cast<unsigned char>(in[i + 1])) &&
               std::isxdigit(static_cast<unsigned char>(in[i + 2]))) {
      out += static_cast<char>(std::stoi(in.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else {
      out += in[i];
    }
  }
  return out;
}

std::optional<std::string> form_field(const std::string& body, const std::string& name) {
  std::size_t pos = 0;
  while (pos <= body.size()) {
    std::size_t end = body.find('&', pos);
    if (end == std::string::npos) end = body.size();
    std::string pair = body.substr(pos, end - pos);
    auto eq = pair.find('=');
    if (eq != std::string::npos && form_decode(pair.substr(0, eq)) == name)
      return form_decode(pair.substr(eq + 1));
    pos = end + 1;
  }
  return std::nullopt;
}

// The cookie carries the token hex-encoded: a token may hold characters a
// cookie value cannot (space, ';', ',', '"').
std::string hex(const std::string& in) {
  static const char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(in.size() * 2);
  for (unsigned char c : in) {
    out += digits[c >> 4];
    out += digits[c & 0xf];
  }
  return out;
}

bool is_form(const std::string& content_type) {
  return content_type.rfind("application/x-www-form-urlencoded", 0) == 0;
}

// A form post is a person's browser: send it back to the page.
Reply after_form(Reply r, const std::string& content_type) {
  if (!is_form(content_type)) return r;
  r.status = 303;
  r.headers.emplace_back("Location", "/");
  return r;
}

}  // namespace

bool AdminRoutes::may_read(const Auth& auth) const {
  if (!options_.read_needs_token || options_.admin_token.empty()) return true;
  const std::string prefix = "Bearer ";
  if (auth.authorization.rfind(prefix, 0) == 0 &&
      same_secret(auth.authorization.substr(prefix.size()), options_.admin_token))
    return true;
  bool found = false;
  for (const auto& value : cookie_values(auth.cookie, kReadCookieName))
    found |= same_secret(value, hex(options_.admin_token));
  return found;
}

std::optional<Reply> AdminRoutes::read_denied(const Auth& auth) const {
  if (may_read(auth)) return std::nullopt;
  Reply r = error(401, auth.authorization.empty() && auth.cookie.empty()
                           ? "this listen address needs the admin token to read sessions "
                             "(Authorization: Bearer, or POST /login from the page)"
                           : "wrong bearer token or cookie");
  r.headers.emplace_back("WWW-Authenticate", "Bearer");
  return r;
}

Reply AdminRoutes::login(const std::string& authorization, const std::string& content_type,
                         const std::string& body) const {
  std::string token;
  const std::string prefix = "Bearer ";
  if (authorization.rfind(prefix, 0) == 0)
    token = authorization.substr(prefix.size());
  else if (is_form(content_type))
    token = form_field(body, "token").value_or("");
  if (token.empty() || options_.admin_token.empty() || !same_secret(token, options_.admin_token)) {
    Reply r = error(401, options_.admin_token.empty() ? "no admin token is configured"
                                                      : "wrong or missing token");
    r.headers.emplace_back("WWW-Authenticate", "Bearer");
    return r;
  }
  Reply r;
  r.status = 204;
  r.content_type = "text/plain";
  // No Secure: sessiond serves plain HTTP (TLS, if any, ends before it).
  // No Max-Age: gone when the browser closes; a new token voids it at once.
  r.headers.emplace_back("Set-Cookie", std::string(kReadCookieName) + "=" + hex(token) +
                                           "; Path=/; HttpOnly; SameSite=Strict");
  r.headers.emplace_back("Cache-Control", "no-store");
  return after_form(std::move(r), content_type);
}

Reply AdminRoutes::logout(const std::string& content_type) {
  Reply r;
  r.status = 204;
  r.content_type = "text/plain";
  r.headers.emplace_back("Set-Cookie", std::string(kReadCookieName) +
                                           "=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict");
  return after_form(std::move(r), content_type);
}

Reply AdminRoutes::metrics() const {
  auto text = ask<std::string>(system_, board_, options_.query_timeout, metrics_atom::value);
  if (!text) return error(503, "metrics actor did not answer");
  Reply r;
  r.content_type = "text/plain; version=0.0.4; charset=utf-8";
  r.body = std::move(*text);
  return r;
}

Reply AdminRoutes::healthz() const {
  // Alive means the actors answer, ready or not.
  auto ready = ask<bool>(system_, board_, options_.query_timeout, ready_atom::value);
  if (!ready) return error(503, "actor system does not answer");
  return json_reply(200, json{{"status", "ok"}});
}

Reply AdminRoutes::readyz() const {
  auto ready = ask<bool>(system_, board_, options_.query_timeout, ready_atom::value);
  if (ready && *ready) return json_reply(200, json{{"status", "ready"}});
  return json_reply(503, json{{"status", ready ? "not ready" : "no answer"}});
}

Reply AdminRoutes::status(const StatusParams& params) const {
  // ?state=NAME and ?limit=N keep the answer small with many sessions.
  std::string state = params.state.value_or("");
  if (!state.empty() && !valid_state_name(state))
    return error(400, "unknown state \"" + state + "\" (expected one of " + state_names() + ")");
  std::uint64_t limit = std::numeric_limits<std::uint64_t>::max();
  if (params.limit) {
    const std::string& v = *params.limit;
    if (v.empty() || v.size() > 9 ||
        !std::all_of(v.begin(), v.end(), [](unsigned char c) { return std::isdigit(c); }))
      return error(400, "limit: expected a number of sessions (0-999999999)");
    limit = std::stoull(v);
  }
  std::string site = params.site.value_or("");
  const auto all = sites_now();
  if (!site.empty() &&
      std::none_of(all->begin(), all->end(), [&](const SiteHandle& s) { return s.name == site; }))
    return error(404, "unknown site " + site);
  auto text = ask<std::string>(system_, board_, options_.query_timeout, status_atom::value, state,
                               limit, site);
  if (!text) return error(503, "status not available");
  Reply r;
  r.body = std::move(*text);
  return r;
}

Reply AdminRoutes::refresh_all(const std::string& authorization) const {
  if (auto denied = unauthorized(authorization)) return *denied;
  int total = 0;
  for (const auto& s : *sites_now()) {
    auto n = ask<int>(system_, s.supervisor, options_.query_timeout, refresh_atom::value);
    if (!n) return error(503, "supervisor did not answer");
    total += *n;
  }
  return json_reply(202, json{{"refreshing", total}});
}

// Ids are validated here, after the path was decoded, so "..%2F" and friends
// never reach the disk.
Reply AdminRoutes::get_session(const std::string& id, const std::string& site) const {
  if (!valid_session_id(id)) return error(400, kInvalidId);
  auto where = site_for(site, id);
  if (auto* r = std::get_if<Reply>(&where)) return *r;
  auto text = ask<std::string>(system_, board_, options_.query_timeout, session_atom::value,
                               std::get<SiteHandle>(where).name, id);
  if (!text) return error(503, "status not available");
  if (text->empty()) return error(404, "unknown session " + id);
  Reply r;
  r.body = std::move(*text);
  return r;
}

Reply AdminRoutes::refresh_session(const std::string& id, const std::string& authorization,
                                   const std::string& site) const {
  if (!valid_session_id(id)) return error(400, kInvalidId);
  if (auto denied = unauthorized(authorization)) return *denied;
  auto where = site_for(site, id);
  if (auto* r = std::get_if<Reply>(&where)) return *r;
  auto report = ask<CycleReport>(system_, std::get<SiteHandle>(where).supervisor,
                                 options_.refresh_timeout, refresh_atom::value, id);
  if (!report) return error(504, "refresh did not finish in time");
  if (report->outcome == CycleOutcome::not_found) return error(404, "unknown session " + id);
  if (report->outcome == CycleOutcome::paused)
    return error(
        409, "session " + id + " is paused; POST /sessions/" + id + "/resume to refresh it again");
  return json_reply(report->outcome == CycleOutcome::success ? 200 : 502,
                    json{{"session", id}, {"outcome", to_string(*report)}});
}

Reply AdminRoutes::put_session(const std::string& id, const std::string& authorization,
                               const std::string& site) const {
  if (!valid_session_id(id)) return error(400, kInvalidId);
  if (auto denied = unauthorized(authorization)) return *denied;
  auto where = site_for(site, id, true);
  if (auto* r = std::get_if<Reply>(&where)) return *r;
  const SiteHandle& handle = std::get<SiteHandle>(where);
  auto result = ask<AdminResult>(system_, handle.supervisor, options_.query_timeout,
                                 register_atom::value, id);
  if (!result) return error(503, "supervisor did not answer");
  if (*result == AdminResult::not_found)
    return error(404, "no file " + handle.pattern.filename(id) + " in the sessions directory");
  return json_reply(*result == AdminResult::registered ? 201 : 200,
                    json{{"session", id}, {"result", to_string(*result)}});
}

Reply AdminRoutes::delete_session(const std::string& id, const std::string& authorization,
                                  const std::string& site) const {
  if (!valid_session_id(id)) return error(400, kInvalidId);
  if (auto denied = unauthorized(authorization)) return *denied;
  auto where = site_for(site, id);
  if (auto* r = std::get_if<Reply>(&where)) return *r;
  auto result = ask<AdminResult>(system_, std::get<SiteHandle>(where).supervisor,
                                 options_.query_timeout, unregister_atom::value, id);
  if (!result) return error(503, "supervisor did not answer");
  if (*result == AdminResult::not_found) return error(404, "unknown session " + id);
  return json_reply(*result == AdminResult::registered ? 201 : 200,
                    json{{"session", id}, {"result", to_string(*result)}});
}

Reply AdminRoutes::pause_session(const std::string& id, const std::optional<std::string>& reason,
                                 const std::string& authorization, const std::string& site) const {
  if (!valid_session_id(id)) return error(400, kInvalidId);
  if (auto denied = unauthorized(authorization)) return *denied;
  if (reason && !valid_reason(*reason))
    return error(400, "reason: at most " + std::to_string(kMaxReasonBytes) +
                          " bytes, no control characters");
  auto where = site_for(site, id);
  if (auto* r = std::get_if<Reply>(&where)) return *r;
  const SiteHandle& handle = std::get<SiteHandle>(where);
  // Waits like a manual refresh: a running cycle finishes before the write.
  auto report = ask<CycleReport>(system_, handle.supervisor, options_.refresh_timeout,
                                 pause_atom::value, id, reason.value_or(""));
  return pause_reply(handle, id, report, CycleOutcome::paused);
}

Reply AdminRoutes::resume_session(const std::string& id, const std::string& authorization,
                                  const std::string& site) const {
  if (!valid_session_id(id)) return error(400, kInvalidId);
  if (auto denied = unauthorized(authorization)) return *denied;
  auto where = site_for(site, id);
  if (auto* r = std::get_if<Reply>(&where)) return *r;
  const SiteHandle& handle = std::get<SiteHandle>(where);
  auto report = ask<CycleReport>(system_, handle.supervisor, options_.refresh_timeout,
                                 resume_atom::value, id);
  return pause_reply(handle, id, report, CycleOutcome::resumed);
}

Reply AdminRoutes::pause_reply(const SiteHandle& site, const std::string& id,
                               const std::optional<CycleReport>& report, CycleOutcome done) {
  if (!report) return error(504, "not written in time; it still happens after the running refresh");
  const auto& r = *report;
  if (r.outcome == done)
    return json_reply(200, json{{"session", id},
                                {"paused", done == CycleOutcome::paused},
                                {"state", to_string(r.state)}});
  switch (r.outcome) {
    case CycleOutcome::not_found:
    case CycleOutcome::removed:
      return error(404, "unknown session " + id);
    case CycleOutcome::file_missing:
      return error(404, "no file " + site.pattern.filename(id) + " in the sessions directory");
    case CycleOutcome::file_error:
      return error(409, "session file cannot be used: " + r.detail);
    case CycleOutcome::superseded:
      return error(409, "not written: " + r.detail);
    case CycleOutcome::shutting_down:
      return error(503, "shutting down");
    case CycleOutcome::failed:
      return error(503, "session is restarting or was given up" +
                            (r.detail.empty() ? std::string() : ": " + r.detail));
    default:
      return error(500, "not written: " + to_string(r));
  }
}

Reply AdminRoutes::page(const PageParams& params) const {
  // Read access (the token or the page's cookie) is checked by the caller
  // (read_denied, then page_login()).
  PageQuery query;
  if (params.session && !params.session->empty()) {
    if (!valid_session_id(*params.session)) return html_error(400, kInvalidId);
    query.session = *params.session;
  }
  if (params.site && !params.site->empty()) {
    if (!valid_site_name(*params.site)) return html_error(400, "site: expected [a-z0-9_-]{1,32}");
    query.site = *params.site;
  }
  if (params.q) {
    if (!valid_reason(*params.q) || params.q->size() > 64)
      return html_error(400, "search: at most 64 bytes, no control characters");
    query.q = *params.q;
  }
  if (params.state && !params.state->empty()) {
    if (!valid_state_name(*params.state))
      return html_error(
          400, "unknown state \"" + *params.state + "\" (expected one of " + state_names() + ")");
    query.state = *params.state;
  }
  for (auto [given, into] :
       {std::pair{&params.after, &query.after}, std::pair{&params.before, &query.before}}) {
    if (!*given || (*given)->empty()) continue;
    if (!valid_session_id(**given)) return html_error(400, "after/before: a session id");
    *into = **given;
  }
  if (params.limit) {
    const std::string& v = *params.limit;
    if (v.empty() || v.size() > 3 ||
        !std::all_of(v.begin(), v.end(), [](unsigned char c) { return std::isdigit(c); }) ||
        std::stoul(v) == 0 || std::stoul(v) > PageQuery::kMaxLimit)
      return html_error(400, "limit: expected 1-" + std::to_string(PageQuery::kMaxLimit));
    query.limit = std::stoul(v);
  }
  auto result = ask<PageResult>(system_, board_, options_.query_timeout, page_atom::value, query);
  if (!result) return html_error(503, "status not available");
  Reply r;
  r.status = result->status;
  r.content_type = "text/html; charset=utf-8";
  r.body = std::move(result->html);
  page_headers(r, "no-store");
  return r;
}

Reply AdminRoutes::replicas() const {
  // Read access is checked by the caller, as for page().
  ReplicasView view;
  view.peers = options_.peers;
  if (!view.peers.empty()) {
    if (replica_views_->fetch_add(1) >= kMaxReplicaViews) {
      replica_views_->fetch_sub(1);
      Reply busy = html_error(503, "The replica view is being built for other readers; retry.");
      busy.headers.emplace_back("Retry-After", "2");
      return busy;
    }
    try {
      // The counts only: a replica's full session list is ~30 MB at 100k.
      FleetStatus fleet;
      for (const auto& answer :
           fetch_statuses(find_peers(view.peers, options_.peers_port), options_.admin_token,
                          options_.replicas_timeout, "/status?limit=0"))
        fleet.add(answer);
      view.fleet = fleet.merged_json();
    } catch (const std::exception& e) {
      view.error = e.what();  // find_peers: the name did not resolve
    }
    replica_views_->fetch_sub(1);
  }
  view.now = std::chrono::system_clock::now();
  auto result = render_replicas_page(view);
  Reply r;
  r.status = result.status;
  r.content_type = "text/html; charset=utf-8";
  r.body = std::move(result.html);
  page_headers(r, "no-store");
  return r;
}

Reply AdminRoutes::page_login() {
  Reply r = html_error(401, "This sessiond shows session ids only to holders of its admin token.");
  const std::string form =
      "<form method=\"post\" action=\"/login\"><label>Admin token "
      "<input type=\"password\" name=\"token\" autocomplete=\"current-password\" "
      "required></label> <button type=\"submit\">Sign in</button></form>";
  r.body.insert(r.body.find("<p><a href="), form);
  r.headers.emplace_back("WWW-Authenticate", "Bearer");
  return r;
}

Reply AdminRoutes::ui(const std::string& name) {
  auto asset = ui_asset(name);
  if (!asset) return error(404, "not found");
  Reply r;
  r.content_type = asset->content_type;
  r.body = asset->body;
  // Revalidated on each load: the assets change with the binary.
  page_headers(r, "no-cache");
  return r;
}

Reply AdminRoutes::session_route(const std::string& method, const std::string& id,
                                 const std::string& action, const std::string& authorization,
                                 const std::optional<std::string>& reason,
                                 const std::string& site) const {
  if (!valid_session_id(id)) return error(400, kInvalidId);
  if (!site.empty() && !valid_site_name(site)) return error(400, "invalid site name");
  if (!action.empty()) {
    if (method != "POST") return method_not_allowed("POST");
    if (action == "pause") return pause_session(id, reason, authorization, site);
    if (action == "resume") return resume_session(id, authorization, site);
    if (action == "refresh") return refresh_session(id, authorization, site);
    return error(404, "not found");
  }
  if (method == "GET") return get_session(id, site);
  if (method == "PUT") return put_session(id, authorization, site);
  if (method == "DELETE") return delete_session(id, authorization, site);
  return method_not_allowed("GET, PUT, DELETE");
}

}  // namespace sessiond
