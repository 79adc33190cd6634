#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "fake_site.hpp"

using nlohmann::json;
using namespace std::chrono_literals;

namespace {

fakesite::Options opts() {
  fakesite::Options o;
  o.threads = 4;
  return o;
}

std::unique_ptr<httplib::Client> client(int port) {
  auto c = std::make_unique<httplib::Client>("127.0.0.1", port);
  c->set_connection_timeout(1, 0);
  c->set_read_timeout(2, 0);
  return c;
}

// Value of cookie `name` from the response's Set-Cookie headers ("" if none).
std::string set_cookie(const httplib::Result& r, const std::string& name) {
  auto range = r->headers.equal_range("Set-Cookie");
  for (auto it = range.first; it != range.second; ++it) {
    const std::string& h = it->second;
    if (h.rfind(name + "=", 0) == 0)
      return h.substr(name.size() + 1, h.find(';') - name.size() - 1);
  }
  return "";
}

struct Login {
  std::string sid, token;
};

Login login(int port, const std::string& mobile) {
  auto c = client(port);
  auto r = c->Post("/api/login", json{{"mobile", mobile}}.dump(), "application/json");
  REQUIRE(r);
  REQUIRE(r->status == 200);
  Login l;
  l.sid = set_cookie(r, "sid");
  l.token = json::parse(r->body).at("token").get<std::string>();
  return l;
}

httplib::Result get(int port, const std::string& path, const std::string& sid,
                    const std::string& bearer = "") {
  httplib::Headers h;
  if (!sid.empty()) h.emplace("Cookie", "csrftoken=x; sid=" + sid);
  if (!bearer.empty()) h.emplace("Authorization", "Bearer " + bearer);
  return client(port)->Get(path.c_str(), h);
}

httplib::Result refresh(int port, const std::string& sid, const std::string& bearer = "") {
  httplib::Headers h;
  if (!sid.empty()) h.emplace("Cookie", "sid=" + sid);
  if (!bearer.empty()) h.emplace("Authorization", "Bearer " + bearer);
  return client(port)->Post("/api/refresh", h, "", "application/json");
}

// Polls `pred` until true or the deadline passes.
bool eventually(const std::function<bool()>& pred, std::chrono::milliseconds within = 1500ms) {
  auto until = std::chrono::steady_clock::now() + within;
  while (std::chrono::steady_clock::now() < until) {
    if (pred()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return pred();
}

json admin_post(const fakesite::FakeSite& s, const std::string& path, const json& body,
                int expect = 200) {
  auto r = client(s.admin_port())->Post(path.c_str(), body.dump(), "application/json");
  REQUIRE(r);
  REQUIRE(r->status == expect);
  return json::parse(r->body);
}

}  // namespace

TEST_CASE("fakesite: login, then the check page shows the home section", "[fakesite]") {
  fakesite::FakeSite site(opts());
  site.start();
  REQUIRE(site.port() > 0);
  REQUIRE(site.admin_port() > 0);
  REQUIRE(site.base_url() == "http://127.0.0.1:" + std::to_string(site.port()));

  auto c = client(site.port());
  auto r = c->Post("/api/login", R"({"mobile":"09121234567"})", "application/json");
  REQUIRE(r);
  CHECK(r->status == 200);
  auto body = json::parse(r->body);
  CHECK(body["expires_in"] == 3600);
  std::string token = body["token"];
  CHECK(std::count(token.begin(), token.end(), '.') == 2);
  std::string sid = set_cookie(r, "sid");
  CHECK(sid.size() == 32);
  CHECK(!set_cookie(r, "refresh_token").empty());
  CHECK(!set_cookie(r, "csrftoken").empty());
  bool saw_flags = false;
  auto range = r->headers.equal_range("Set-Cookie");
  for (auto it = range.first; it != range.second; ++it)
    if (it->second == "sid=" + sid + "; Path=/; HttpOnly; SameSite=Lax") saw_flags = true;
  CHECK(saw_flags);

  auto page = get(site.port(), "/pwa", sid);
  REQUIRE(page);
  CHECK(page->status == 200);
  CHECK(page->body.find("<div class=\"homeSection\">") != std::string::npos);

  auto me = get(site.port(), "/api/me", sid);
  REQUIRE(me);
  CHECK(me->status == 200);
  CHECK(json::parse(me->body)["loggedIn"] == true);

  // No cookie: redirected to the login page; the JSON variant says 401.
  auto anon = get(site.port(), "/pwa", "");
  REQUIRE(anon);
  CHECK(anon->status == 302);
  // (httplib's client URL-decodes Location; the wire value is /login?next=%2Fpwa)
  CHECK(anon->get_header_value("Location") == "/login?next=/pwa");
  auto anon_me = get(site.port(), "/api/me", "");
  REQUIRE(anon_me);
  CHECK(anon_me->status == 401);
  CHECK(json::parse(anon_me->body)["loggedIn"] == false);
  auto lp = c->Get("/login");
  REQUIRE(lp);
  CHECK(lp->status == 200);

  auto bad = c->Post("/api/login", "not json", "application/json");
  REQUIRE(bad);
  CHECK(bad->status == 400);

  auto st = site.stats(true);
  CHECK(st["up"] == true);
  CHECK(st["sessions"] == 1);
  CHECK(st["active"] == 1);
  CHECK(st["requests"]["login"] == 2);
  CHECK(st["requests"]["check"] == 4);
  CHECK(st["per_session"]["09121234567"]["state"] == "active");
  CHECK(st["per_session"]["09121234567"]["checks"] == 2);

  auto secrets = site.issued_secrets()["values"];
  CHECK(std::find(secrets.begin(), secrets.end(), sid) != secrets.end());
  CHECK(std::find(secrets.begin(), secrets.end(), token) != secrets.end());
}

TEST_CASE("fakesite: refresh rotates the sid; the old one then fails and counts as stale",
          "[fakesite]") {
  fakesite::FakeSite site(opts());
  site.start();
  auto l = login(site.port(), "09120000001");

  auto r = refresh(site.port(), l.sid);
  REQUIRE(r);
  REQUIRE(r->status == 200);
  std::string sid2 = set_cookie(r, "sid");
  CHECK(sid2.size() == 32);
  CHECK(sid2 != l.sid);
  std::string tok2 = json::parse(r->body)["token"];
  CHECK(tok2 != l.token);

  auto old = get(site.port(), "/pwa", l.sid);
  REQUIRE(old);
  CHECK(old->status == 302);
  auto fresh = get(site.port(), "/pwa", sid2);
  REQUIRE(fresh);
  CHECK(fresh->status == 200);
  auto old_refresh = refresh(site.port(), l.sid);
  REQUIRE(old_refresh);
  CHECK(old_refresh->status == 401);
  CHECK(json::parse(old_refresh->body)["error"] == "logged_out");

  auto st = site.stats(true);
  CHECK(st["stale_cookie_requests"] == 2);
  CHECK(st["requests"]["refresh"] == 2);
  CHECK(st["per_session"]["09120000001"]["refreshes"] == 1);
  CHECK(st["active"] == 1);
  CHECK(st["lost"] == 0);

  // An unknown sid is simply logged out, not stale.
  auto unknown = get(site.port(), "/pwa", std::string(32, 'a'));
  REQUIRE(unknown);
  CHECK(unknown->status == 302);
  CHECK(site.stats(false)["stale_cookie_requests"] == 2);
}

TEST_CASE("fakesite: a rotated-away sid still works during rotate_grace", "[fakesite]") {
  auto o = opts();
  o.rotate_grace = 300ms;
  fakesite::FakeSite site(o);
  site.start();
  auto l = login(site.port(), "09120000002");
  auto r = refresh(site.port(), l.sid);
  REQUIRE(r);
  REQUIRE(r->status == 200);
  auto during = get(site.port(), "/pwa", l.sid);
  REQUIRE(during);
  CHECK(during->status == 200);
  CHECK(site.stats(false)["stale_cookie_requests"] == 0);
  REQUIRE(eventually([&] {
    auto after = get(site.port(), "/pwa", l.sid);
    return after && after->status == 302;
  }));
  CHECK(site.stats(false)["stale_cookie_requests"] == 1);
}

TEST_CASE("fakesite: an idle session expires and counts as lost", "[fakesite]") {
  auto o = opts();
  o.idle_timeout = 200ms;
  fakesite::FakeSite site(o);
  site.start();
  auto l = login(site.port(), "09120000003");
  REQUIRE(eventually([&] { return site.stats(false)["lost"] == 1; }));
  auto st = site.stats(true);
  CHECK(st["active"] == 0);
  CHECK(st["expired_during_outage"] == 0);
  CHECK(st["per_session"]["09120000003"]["state"] == "lost");
  CHECK(st["per_session"]["09120000003"]["idle_ms"] >= 200);
  auto r = get(site.port(), "/pwa", l.sid);
  REQUIRE(r);
  CHECK(r->status == 302);
  // Logging in again starts a new session; the old sid stays invalid.
  auto l2 = login(site.port(), "09120000003");
  CHECK(get(site.port(), "/pwa", l2.sid)->status == 200);
  CHECK(get(site.port(), "/pwa", l.sid)->status == 302);
  CHECK(site.stats(false)["active"] == 1);
}

TEST_CASE("fakesite: a session kept alive by checks does not expire", "[fakesite]") {
  auto o = opts();
  o.idle_timeout = 150ms;
  fakesite::FakeSite site(o);
  site.start();
  auto l = login(site.port(), "09120000004");
  auto until = std::chrono::steady_clock::now() + 500ms;
  while (std::chrono::steady_clock::now() < until) {
    auto r = get(site.port(), "/api/me", l.sid);
    REQUIRE(r);
    REQUIRE(r->status == 200);
    std::this_thread::sleep_for(40ms);
  }
  CHECK(site.stats(false)["lost"] == 0);
}

TEST_CASE("fakesite: forced logout counts forced_logout, not lost", "[fakesite]") {
  auto o = opts();
  o.idle_timeout = 300ms;
  fakesite::FakeSite site(o);
  site.start();
  auto a = login(site.port(), "09120000005");
  auto b = login(site.port(), "09120000006");
  CHECK(site.force_logout({"09120000005", "09129999999"}) == 1);
  CHECK(get(site.port(), "/pwa", a.sid)->status == 302);
  CHECK(refresh(site.port(), a.sid)->status == 401);
  CHECK(get(site.port(), "/pwa", b.sid)->status == 200);
  auto res = admin_post(site, "/logout", {{"mobiles", {"09120000006"}}});
  CHECK(res["logged_out"] == 1);
  CHECK(get(site.port(), "/pwa", b.sid)->status == 302);
  // Well past the idle timeout: still not lost.
  std::this_thread::sleep_for(400ms);
  auto st = site.stats(true);
  CHECK(st["forced_logout"] == 2);
  CHECK(st["lost"] == 0);
  CHECK(st["stale_cookie_requests"] == 0);
  CHECK(st["per_session"]["09120000005"]["state"] == "logged_out");
}

TEST_CASE("fakesite: injected errors carry Retry-After and do not change sessions", "[fakesite]") {
  fakesite::FakeSite site(opts());
  site.start();
  auto l = login(site.port(), "09120000007");
  auto f = admin_post(site, "/faults", {{"error_ratio", 1.0}, {"retry_after_s", 7}});
  CHECK(f["error_ratio"] == 1.0);
  CHECK(f["error_status"] == 503);
  CHECK(f["down"] == false);

  httplib::Headers h{{"Cookie", "sid=" + l.sid}, {"X-Sessiond-Replica", "r0"}};
  auto r = client(site.port())->Get("/pwa", h);
  REQUIRE(r);
  CHECK(r->status == 503);
  CHECK(r->get_header_value("Retry-After") == "7");
  CHECK(json::parse(r->body)["error"] == "injected");
  auto rr = refresh(site.port(), l.sid);
  REQUIRE(rr);
  CHECK(rr->status == 503);

  admin_post(site, "/faults", {{"error_ratio", 1.0}, {"error_status", 500}, {"retry_after_s", 7}});
  auto r500 = get(site.port(), "/pwa", l.sid);
  REQUIRE(r500);
  CHECK(r500->status == 500);
  CHECK(!r500->has_header("Retry-After"));

  // Unknown fields and bad values are rejected.
  admin_post(site, "/faults", {{"error_rate", 1}}, 400);
  admin_post(site, "/faults", {{"error_ratio", 2}}, 400);

  auto cleared = admin_post(site, "/faults", json::object());
  CHECK(cleared["error_ratio"] == 0.0);
  // The sid was not rotated by the injected refresh.
  auto ok = client(site.port())->Get("/pwa", h);
  REQUIRE(ok);
  CHECK(ok->status == 200);
  auto st = site.stats(true);
  CHECK(st["requests"]["injected_errors"] == 3);
  CHECK(st["per_session"]["09120000007"]["refreshes"] == 0);
  CHECK(st["per_session"]["09120000007"]["replicas"]["r0"] == 2);
  CHECK(st["stale_cookie_requests"] == 0);
}

TEST_CASE("fakesite: reset_ratio cuts the connection mid-response", "[fakesite]") {
  fakesite::FakeSite site(opts());
  site.start();
  auto l = login(site.port(), "09120000008");
  site.set_faults({{"reset_ratio", 1.0}});
  auto r = refresh(site.port(), l.sid);
  CHECK(!r);  // truncated body: the client reports an error
  site.set_faults(json::object());
  auto ok = get(site.port(), "/pwa", l.sid);
  REQUIRE(ok);
  CHECK(ok->status == 200);
  auto st = site.stats(false);
  CHECK(st["requests"]["resets"] == 1);
  CHECK(st["requests"]["refresh"] == 0);
}

TEST_CASE("fakesite: down refuses connections, then serves again on the same port", "[fakesite]") {
  fakesite::FakeSite site(opts());
  site.start();
  const int port = site.port();
  auto l = login(port, "09120000009");

  auto f = admin_post(site, "/faults", {{"down", true}});
  CHECK(f["down"] == true);
  CHECK(site.stats(false)["up"] == false);
  auto r = get(port, "/pwa", l.sid);
  CHECK(!r);
  if (!r) CHECK(r.error() == httplib::Error::Connection);
  // The admin port stays up.
  auto st = client(site.admin_port())->Get("/stats");
  REQUIRE(st);
  CHECK(json::parse(st->body)["up"] == false);

  admin_post(site, "/faults", {{"down", false}});
  CHECK(site.port() == port);
  CHECK(site.stats(false)["up"] == true);
  auto again = get(port, "/pwa", l.sid);
  REQUIRE(again);
  CHECK(again->status == 200);

  // Repeated toggles keep working.
  site.set_faults({{"down", true}});
  CHECK(!get(port, "/login", ""));
  site.set_faults({{"down", false}});
  auto third = get(port, "/login", "");
  REQUIRE(third);
  CHECK(third->status == 200);
}

TEST_CASE("fakesite: a session that idles out during an outage is not lost", "[fakesite]") {
  auto o = opts();
  o.idle_timeout = 200ms;
  fakesite::FakeSite site(o);
  site.start();
  login(site.port(), "09120000010");
  site.set_faults({{"down", true}});
  REQUIRE(eventually([&] { return site.stats(false)["expired_during_outage"] == 1; }));
  site.set_faults(json::object());
  auto st = site.stats(true);
  CHECK(st["lost"] == 0);
  CHECK(st["per_session"]["09120000010"]["state"] == "expired_during_outage");
}

TEST_CASE("fakesite: write_session_files writes 0600 storage-state files that work", "[fakesite]") {
  fakesite::FakeSite site(opts());
  site.start();
  char tmpl[] = "/tmp/fakesite-test-XXXXXX";
  REQUIRE(mkdtemp(tmpl) != nullptr);
  std::string dir = tmpl;

  auto mobiles = site.write_session_files(dir, 3, "09120000098", 5000);
  REQUIRE(mobiles == std::vector<std::string>{"09120000098", "09120000099", "09120000100"});
  int files = 0;
  for (auto& e : std::filesystem::directory_iterator(dir)) {
    (void)e;
    ++files;
  }
  CHECK(files == 3);  // no temp files left behind

  for (auto& m : mobiles) {
    std::string path = dir + "/session-" + m + ".json";
    struct stat sb {};
    REQUIRE(::stat(path.c_str(), &sb) == 0);
    CHECK((sb.st_mode & 0777) == 0600);
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    json doc = json::parse(ss.str());
    REQUIRE(doc["cookies"].size() == 4);
    std::string sid;
    for (auto& c : doc["cookies"]) {
      CHECK(c["domain"] == "127.0.0.1");
      CHECK(c["path"] == "/");
      if (c["name"] == "sid") {
        sid = c["value"];
        CHECK(c["expires"] == -1);
        CHECK(c["httpOnly"] == true);
      }
      if (c["name"] == "refresh_token") CHECK(c["expires"].get<double>() > 1e9);
      if (c["name"] == "csrftoken") CHECK(c["httpOnly"] == false);
      if (c["name"] == "pwa_access_token")
        CHECK(c["value"].get<std::string>().find('.') != std::string::npos);
    }
    REQUIRE(sid.size() == 32);
    auto& origin = doc["origins"].at(0);
    CHECK(origin["origin"] == site.base_url());
    auto& ls = origin["localStorage"].at(0);
    CHECK(ls["name"] == "redux_localstorage_simple");
    std::string v = ls["value"];
    CHECK(v.size() > 4000);
    CHECK(v.size() < 6000);
    CHECK(json::parse(v)["auth"]["mobile"] == m);

    auto r = get(site.port(), "/pwa", sid);
    REQUIRE(r);
    CHECK(r->status == 200);
  }

  // Seeding through the admin port; localstorage_bytes 0 gives an empty array.
  auto res = admin_post(
      site, "/seed",
      {{"dir", dir}, {"count", 1}, {"first_mobile", "09130000000"}, {"localstorage_bytes", 0}});
  CHECK(res["mobiles"] == json::array({"09130000000"}));
  std::ifstream in(dir + "/session-09130000000.json");
  json doc = json::parse(in);
  CHECK(doc["origins"][0]["localStorage"].empty());
  CHECK(site.stats(false)["active"] == 4);

  std::filesystem::remove_all(dir);
}

TEST_CASE("fakesite: require_token needs the current bearer token", "[fakesite]") {
  auto o = opts();
  o.require_token = true;
  fakesite::FakeSite site(o);
  site.start();
  auto l = login(site.port(), "09120000011");

  CHECK(get(site.port(), "/pwa", l.sid)->status == 302);
  CHECK(get(site.port(), "/pwa", l.sid, "wrong")->status == 302);
  CHECK(get(site.port(), "/pwa", l.sid, l.token)->status == 200);
  CHECK(refresh(site.port(), l.sid)->status == 401);

  auto r = refresh(site.port(), l.sid, l.token);
  REQUIRE(r);
  REQUIRE(r->status == 200);
  std::string sid2 = set_cookie(r, "sid");
  std::string tok2 = json::parse(r->body)["token"];
  CHECK(get(site.port(), "/pwa", sid2, l.token)->status == 302);
  CHECK(get(site.port(), "/pwa", sid2, tok2)->status == 200);
  auto me = get(site.port(), "/api/me", sid2, tok2);
  REQUIRE(me);
  CHECK(me->status == 200);
}

TEST_CASE("fakesite: replica header values are counted per session", "[fakesite]") {
  fakesite::FakeSite site(opts());
  site.start();
  auto l = login(site.port(), "09120000012");
  for (const char* rep : {"a", "a", "b"}) {
    httplib::Headers h{{"Cookie", "sid=" + l.sid}, {"X-Sessiond-Replica", rep}};
    auto r = client(site.port())->Get("/api/me", h);
    REQUIRE(r);
    CHECK(r->status == 200);
  }
  auto reps = site.stats(true)["per_session"]["09120000012"]["replicas"];
  CHECK(reps["a"] == 2);
  CHECK(reps["b"] == 1);
}

TEST_CASE("fakesite: admin stats and secrets over HTTP; bad ports fail to start", "[fakesite]") {
  fakesite::FakeSite site(opts());
  site.start();
  auto l = login(site.port(), "09120000013");
  auto c = client(site.admin_port());
  auto st = c->Get("/stats?per_session=1");
  REQUIRE(st);
  auto j = json::parse(st->body);
  CHECK(j["per_session"].contains("09120000013"));
  CHECK(!json::parse(c->Get("/stats")->body).contains("per_session"));
  auto sec = json::parse(c->Get("/secrets")->body)["values"];
  CHECK(std::find(sec.begin(), sec.end(), l.sid) != sec.end());

  // The site port is taken: start() throws.
  auto o = opts();
  o.port = site.port();
  fakesite::FakeSite clash(o);
  CHECK_THROWS_AS(clash.start(), std::runtime_error);
}

TEST_CASE("fakesite: parse_duration", "[fakesite]") {
  CHECK(fakesite::parse_duration("500ms") == 500ms);
  CHECK(fakesite::parse_duration("3s") == 3000ms);
  CHECK(fakesite::parse_duration("10m") == 600000ms);
  CHECK(fakesite::parse_duration("1h") == 3600000ms);
  CHECK(fakesite::parse_duration("7") == 7000ms);
  CHECK_THROWS(fakesite::parse_duration("5x"));
  CHECK_THROWS(fakesite::parse_duration(""));
  CHECK_THROWS(fakesite::parse_duration("ms"));
}

// ------------------------------------------------- client-rendered app ---

namespace {

fakesite::Options app_opts() {
  auto o = opts();
  o.client_rendered = true;
  o.bundle_bytes = 100000;
  return o;
}

// The /static/app.<hash>.js path the shell loads ("" if none).
std::string bundle_path_of(const std::string& shell) {
  auto start = shell.find("/static/app.");
  if (start == std::string::npos) return "";
  auto end = shell.find(".js\"", start);
  return end == std::string::npos ? "" : shell.substr(start, end + 3 - start);
}

httplib::Result app_api(int port, const std::string& sid, const std::string& bearer,
                        bool post = false) {
  httplib::Headers h;
  if (!sid.empty()) h.emplace("Cookie", "csrftoken=x; sid=" + sid);
  if (!bearer.empty()) h.emplace("Authorization", "Bearer " + bearer);
  auto c = client(port);
  return post ? c->Post("/api/pwa/session", h, "", "application/json")
              : c->Get("/api/pwa/session", h);
}

}  // namespace

TEST_CASE("fakesite app: the same shell for everyone, an immutable bundle with an ETag",
          "[fakesite]") {
  fakesite::FakeSite site(app_opts());
  site.start();
  auto l = login(site.port(), "09120000200");

  auto anonymous = get(site.port(), "/pwa", "");
  auto logged_in = get(site.port(), "/pwa", l.sid, l.token);
  REQUIRE(anonymous);
  REQUIRE(logged_in);
  CHECK(anonymous->status == 200);
  CHECK(logged_in->status == 200);
  CHECK(anonymous->body == logged_in->body);  // no login state in the HTML
  CHECK(anonymous->body.find("homeSection") == std::string::npos);
  CHECK(anonymous->body.find("loginForm") == std::string::npos);
  CHECK(anonymous->body.find("data-hang") == std::string::npos);
  const std::string path = bundle_path_of(anonymous->body);
  REQUIRE_FALSE(path.empty());
  // The app's own route serves the shell too (a reload there).
  CHECK(get(site.port(), "/auth/login", "")->body == anonymous->body);

  auto b = client(site.port())->Get(path.c_str());
  REQUIRE(b);
  CHECK(b->status == 200);
  CHECK(b->get_header_value("Cache-Control") == "public, max-age=31536000, immutable");
  CHECK(b->get_header_value("Content-Type").find("javascript") != std::string::npos);
  const std::string etag = b->get_header_value("ETag");
  CHECK(etag.size() > 2);
  CHECK(b->body.size() == 100000);
  CHECK(b->body.find("pwa_access_token") != std::string::npos);
  CHECK(b->body.find("/api/pwa/session") != std::string::npos);

  auto again = client(site.port())->Get(path.c_str(), {{"If-None-Match", etag}});
  REQUIRE(again);
  CHECK(again->status == 304);
  CHECK(again->body.empty());
  CHECK(client(site.port())->Get("/static/app.0123456789abcdef.js")->status == 404);

  auto st = site.stats(false);
  CHECK(st["app"]["shell_requests"] == 3);
  CHECK(st["app"]["bundle_fetches"] == 1);  // full 200 bodies only
  CHECK(st["app"]["bundle_bytes_served"] == 100000);
  CHECK(st["app"]["bundle_not_modified"] == 1);
  CHECK(st["requests"]["check"] == 0);  // the shell is no check

  // The bundle's size is an option; its name follows its content.
  auto o = app_opts();
  o.bundle_bytes = 1000;
  fakesite::FakeSite small(o);
  small.start();
  auto shell = get(small.port(), "/pwa", "");
  REQUIRE(shell);
  const std::string small_path = bundle_path_of(shell->body);
  CHECK(small_path != path);
  auto sb = client(small.port())->Get(small_path.c_str());
  REQUIRE(sb);
  // The app's code alone is larger than 1000 bytes: never cut short.
  CHECK(sb->body.size() >= 1000);
  CHECK(sb->body.find("homeSection") != std::string::npos);
}

TEST_CASE("fakesite app: the API needs cookie and token, renews and rotates both", "[fakesite]") {
  auto o = app_opts();
  fakesite::FakeSite site(o);
  site.start();
  auto l = login(site.port(), "09120000201");

  CHECK(app_api(site.port(), l.sid, "")->status == 401);       // no token
  CHECK(app_api(site.port(), l.sid, "wrong")->status == 401);  // not its token
  CHECK(app_api(site.port(), "", l.token)->status == 401);     // no cookie
  auto other = login(site.port(), "09120000202");
  CHECK(app_api(site.port(), l.sid, other.token)->status == 401);  // another account's token

  auto r = app_api(site.port(), l.sid, l.token);
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(r->get_header_value("Cache-Control") == "no-store");
  const std::string token2 = json::parse(r->body).at("token");
  const std::string sid2 = set_cookie(r, "sid");
  CHECK(token2 != l.token);
  CHECK(sid2.size() == 32);
  CHECK(sid2 != l.sid);

  // The stale pair (and each half of it) no longer works; the new one does.
  CHECK(app_api(site.port(), l.sid, l.token)->status == 401);
  CHECK(app_api(site.port(), sid2, l.token)->status == 401);
  CHECK(app_api(site.port(), l.sid, token2)->status == 401);
  auto r3 = app_api(site.port(), sid2, token2, /*post=*/true);
  REQUIRE(r3);
  CHECK(r3->status == 200);

  auto st = site.stats(true);
  CHECK(st["app"]["api_calls"] == 9);
  CHECK(st["app"]["api_rejected"] == 7);
  CHECK(st["per_session"]["09120000201"]["api_calls"] == 2);
  CHECK(st["per_session"]["09120000201"]["first_check_seq"] == 1);
  CHECK(st["stale_cookie_requests"].get<int>() >= 2);
  CHECK(st["active"] == 2);

  // api_cacheable: the answer says a shared cache may keep it.
  o.api_cacheable = true;
  fakesite::FakeSite cacheable(o);
  cacheable.start();
  auto c = login(cacheable.port(), "09120000203");
  auto cr = app_api(cacheable.port(), c.sid, c.token);
  REQUIRE(cr);
  CHECK(cr->status == 200);
  CHECK(cr->get_header_value("Cache-Control") == "public, max-age=600");
}

TEST_CASE("fakesite app: a plain GET /pwa does not keep a session alive, the API does",
          "[fakesite]") {
  auto o = app_opts();
  o.idle_timeout = 300ms;
  fakesite::FakeSite site(o);
  site.start();
  auto idle = login(site.port(), "09120000210");
  auto kept = login(site.port(), "09120000211");
  std::string sid = kept.sid, token = kept.token;
  // 700 ms of both: the shell every 50 ms for one, the API call for the other.
  auto until = std::chrono::steady_clock::now() + 700ms;
  for (int i = 0; i < 100 && std::chrono::steady_clock::now() < until; ++i) {
    auto shell = get(site.port(), "/pwa", idle.sid, idle.token);
    REQUIRE(shell);
    REQUIRE(shell->status == 200);
    auto r = app_api(site.port(), sid, token);
    REQUIRE(r);
    REQUIRE(r->status == 200);
    sid = set_cookie(r, "sid");
    token = json::parse(r->body).at("token").get<std::string>();
    std::this_thread::sleep_for(50ms);
  }
  auto st = site.stats(true);
  CHECK(st["per_session"]["09120000210"]["state"] == "lost");
  CHECK(st["per_session"]["09120000211"]["state"] == "active");
  CHECK(st["lost"] == 1);
  CHECK(app_api(site.port(), idle.sid, idle.token)->status == 401);  // never again
}

TEST_CASE("fakesite app: session files carry the token in localStorage; hang fault", "[fakesite]") {
  fakesite::FakeSite site(app_opts());
  site.start();
  char tmpl[] = "/tmp/fakesite-test-XXXXXX";
  REQUIRE(mkdtemp(tmpl) != nullptr);
  const std::string dir = tmpl;
  auto mobiles = site.write_session_files(dir, 1, "09120000220", 0);
  std::ifstream in(dir + "/session-" + mobiles.at(0) + ".json");
  json doc = json::parse(in);
  std::filesystem::remove_all(dir);

  REQUIRE(doc["origins"].size() == 1);
  CHECK(doc["origins"][0]["origin"] == site.base_url());
  auto& ls = doc["origins"][0]["localStorage"];
  REQUIRE(ls.size() == 1);
  CHECK(ls[0]["name"] == "pwa_access_token");
  const std::string token = ls[0]["value"];
  std::string sid;
  for (auto& c : doc["cookies"])
    if (c["name"] == "sid") sid = c["value"];
  // What the page would do with that file.
  auto r = app_api(site.port(), sid, token);
  REQUIRE(r);
  CHECK(r->status == 200);

  // hang: the shell tells the app never to render.
  auto f = admin_post(site, "/faults", {{"hang", true}});
  CHECK(f["hang"] == true);
  auto hung = get(site.port(), "/pwa", "");
  REQUIRE(hung);
  CHECK(hung->body.find("data-hang") != std::string::npos);
  admin_post(site, "/faults", {{"hang", "yes"}}, 400);
  CHECK(admin_post(site, "/faults", json::object())["hang"] == false);
  CHECK(get(site.port(), "/pwa", "")->body.find("data-hang") == std::string::npos);
}

TEST_CASE("fakesite: without client_rendered, no app routes and /pwa stays server-rendered",
          "[fakesite]") {
  fakesite::FakeSite site(opts());
  site.start();
  auto l = login(site.port(), "09120000230");
  auto r = get(site.port(), "/pwa", l.sid);
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(r->body.find("homeSection") != std::string::npos);
  CHECK(app_api(site.port(), l.sid, l.token)->status == 404);
  CHECK(get(site.port(), "/auth/login", "")->status == 404);
  char tmpl[] = "/tmp/fakesite-test-XXXXXX";
  REQUIRE(mkdtemp(tmpl) != nullptr);
  const std::string dir = tmpl;
  site.write_session_files(dir, 1, "09120000231", 0);
  std::ifstream in(dir + "/session-09120000231.json");
  CHECK(json::parse(in)["origins"][0]["localStorage"].empty());
  std::filesystem::remove_all(dir);
  auto o = opts();
  o.bundle_bytes = (64u << 20) + 1;
  CHECK_THROWS_AS(fakesite::FakeSite(o), std::invalid_argument);
}
