#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cctype>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "sessiond/cookie_jar.hpp"
#include "sessiond/profile.hpp"
#include "test_support.hpp"

using namespace sessiond;
using sessiond::testing::base64url;
using sessiond::testing::make_jwt;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

// The repository root: $SESSIOND_SOURCE_DIR, else walk up from the current
// directory (at most 6 levels) until profiles/demo.json exists.
std::string source_dir() {
  if (const char* env = std::getenv("SESSIOND_SOURCE_DIR"); env && *env) return env;
  fs::path p = fs::current_path();
  for (int i = 0; i <= 6; ++i) {
    if (fs::exists(p / "profiles" / "demo.json")) return p.string();
    if (!p.has_parent_path() || p.parent_path() == p) break;
    p = p.parent_path();
  }
  return {};
}

std::string error_of(const std::string& text) {
  try {
    parse_profile(text);
  } catch (const ProfileError& e) {
    return e.what();
  }
  FAIL("parse_profile accepted: " << text);
  return {};
}

// A minimal valid profile with one field replaced/added.
std::string with(const std::string& extra) {
  return R"({"base_url": "https://site.test", "check": {"path": "/pwa"})" +
         (extra.empty() ? std::string() : ", " + extra) + "}";
}

HttpResponse response(long status, std::string body = {},
                      std::vector<std::pair<std::string, std::string>> headers = {}) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  r.headers = std::move(headers);
  return r;
}

const char* kTestProfile = R"(
// A profile exercising every feature. Comments are allowed.
{
  "name": "test",
  "base_url": "https://site.test/",   /* trailing slash is dropped */
  "interval": "4m",
  "idle_timeout": 600,                 // seconds
  "jitter": 0.2,
  "headers": {"Accept": "text/html", "X-Trace": "{id}", "x-override": "default"},
  "check": {
    "path": "/pwa",
    "headers": {"X-OVERRIDE": "step", "X-Csrf": "{cookie:csrftoken}"},
    "logged_in": [{"status": 200, "body_contains": "homeSection"},
                  {"status": "2xx", "json_pointer": "/user/loggedIn", "equals": true}],
    "logged_out": [{"status": [301, 302, 303, 307, 308], "redirect_contains": "/login"},
                   {"status": [401, 403]},
                   {"status": 200, "json_pointer": "/error", "equals": "session_expired"}]
  },
  "refresh": {
    "method": "POST",
    "path": "/api/refresh?u={id}",
    "body": {"mobile": "{id}", "n": 1},
    "capture": [
      {"from": "json:/token", "to": "header:Authorization", "format": "Bearer {value}"},
      {"from": "json:/token", "to": "cookie:pwa_access_token", "required": true},
      {"from": "header:X-New-Csrf", "to": "cookie:csrftoken"}
    ]
  },
  "token_deadline": {"from": "cookie:pwa_access_token", "margin": "5m"},
  "retry": {"base": "1s", "max": "30s", "max_attempts": 7},
  "rate_limit": {"per_second": 20, "burst": 40},
  "circuit_breaker": {"failure_ratio": 0.6, "min_requests": 10, "window": "1m", "open_for": "20s"}
}
)";

json session_doc() {
  return json{{"cookies", json::array({{{"name", "csrftoken"},
                                        {"value", "from-file"},
                                        {"domain", "site.test"},
                                        {"path", "/"},
                                        {"expires", -1}}})},
              {"headers", {{"Authorization", "Bearer old"}, {"X-Override", "file"}}},
              {"profile", {{"a", {{"b", "deep"}}}, {"n", 42}}}};
}

std::vector<std::string> headers_named(const HttpRequest& req, std::string name) {
  std::transform(name.begin(), name.end(), name.begin(), ::tolower);
  std::vector<std::string> out;
  for (auto& h : req.headers) {
    auto colon = h.find(':');
    std::string n = h.substr(0, colon);
    std::transform(n.begin(), n.end(), n.begin(), ::tolower);
    if (n == name) out.push_back(h);
  }
  return out;
}

}  // namespace

TEST_CASE("the bundled profiles parse", "[profile]") {
  const auto root = source_dir();
  REQUIRE_FALSE(root.empty());

  auto demo = load_profile(root + "/profiles/demo.json");
  CHECK(demo.name == "demo");
  CHECK(demo.base_url == "http://127.0.0.1:8080");
  CHECK(demo.interval == Millis(2000));
  CHECK(demo.idle_timeout == Millis(6000));
  CHECK(demo.interval < demo.idle_timeout);
  REQUIRE(demo.check);
  REQUIRE(demo.refresh);
  CHECK(demo.refresh->method == "POST");
  REQUIRE(demo.refresh->captures.size() == 1);
  CHECK(demo.refresh->captures[0].required);
  CHECK(demo.refresh->captures[0].to == Capture::To::cookie);
  CHECK(demo.refresh->captures[0].target == "pwa_access_token");
  REQUIRE(demo.token_deadline);
  CHECK(demo.token_deadline->name == "pwa_access_token");
  CHECK(demo.token_deadline->margin == Millis(60000));
  CHECK(demo.retry.base == Millis(200));
  CHECK(demo.retry.max == Millis(2000));

  // The original's behaviour: /pwa in the browser, logged in when div.homeSection renders.
  auto baman = load_profile(root + "/profiles/baman24.json");
  CHECK(baman.name == "baman24");
  CHECK(baman.base_url == "https://baman24.ir");
  CHECK(baman.interval == Millis(5 * 60000));
  CHECK(baman.idle_timeout == Millis(10 * 60000));
  CHECK(baman.jitter == Approx(0.1));
  REQUIRE(baman.check);
  CHECK_FALSE(baman.refresh);
  REQUIRE(baman.check->is_browser());
  CHECK(baman.check->browser->url == "/pwa");
  REQUIRE(baman.check->browser->wait_for.size() == 1);
  CHECK(baman.check->browser->wait_for[0].selector ==
        std::optional<std::string>("div.homeSection"));
  CHECK(baman.check->browser->timeout == Millis(30000));
  CHECK_FALSE(baman.token_deadline);  // the page renews the token itself

  // The plain-HTTP guess, kept until its rules are confirmed against the live site.
  auto http = load_profile(root + "/profiles/baman24-http.json");
  REQUIRE(http.check);
  CHECK_FALSE(http.check->is_browser());
  CHECK(http.check->timeout == Millis(20000));
  CHECK(http.default_headers.size() == 3);
  CHECK(http.rate_limit_per_second == Approx(20));
  CHECK(http.rate_limit_burst == Approx(40));
  CHECK(http.max_in_flight == 32);
  REQUIRE(http.token_deadline);
  CHECK(http.token_deadline->margin == Millis(5 * 60000));
  CHECK(http.check->evaluate(response(200, "<div class=\"homeSection\">")) == Verdict::logged_in);
  auto redirect = response(302, "", {{"location", "https://baman24.ir/login?next=/pwa"}});
  CHECK(http.check->evaluate(redirect) == Verdict::logged_out);
  CHECK(http.check->evaluate(response(200, "<div id=root></div>")) == Verdict::transient);

  // my.rade.ir: network idle, then the dashboard's top bar, in one page load.
  auto rade = load_profile(root + "/profiles/rade.json");
  CHECK(rade.name == "rade");
  CHECK(rade.base_url == "https://my.rade.ir");
  REQUIRE(rade.check);
  REQUIRE(rade.check->is_browser());
  CHECK(rade.check->browser->wait_network_idle);
  REQUIRE(rade.check->browser->wait_for.size() == 1);
  CHECK(rade.check->browser->wait_for[0].selector ==
        std::optional<std::string>("app-profile-top-bar"));
  CHECK_FALSE(rade.refresh);
  CHECK_FALSE(rade.refresh_when);

  // nics24: a check every 10 minutes, the bot's login once createdAt is 90 minutes old.
  auto nics = load_profile(root + "/profiles/nics24.json");
  CHECK(nics.name == "nics24");
  CHECK(nics.base_url == "https://etebarito.nics24.ir");
  CHECK(nics.interval == Millis(10 * 60000));
  REQUIRE(nics.check);
  REQUIRE(nics.check->is_browser());
  CHECK(nics.check->browser->url == "/pishkhan");
  CHECK(nics.check->browser->wait_network_idle);
  REQUIRE(nics.check->browser->wait_for.size() == 1);
  CHECK(nics.check->browser->wait_for[0].text == std::optional<std::string>("پیشخوان"));
  REQUIRE(nics.check->browser->logged_out.size() == 1);
  CHECK(nics.check->browser->logged_out[0].url_contains == std::optional<std::string>("/login"));
  REQUIRE(nics.refresh);
  CHECK(nics.refresh->is_exec());
  REQUIRE(nics.refresh_when);
  CHECK(nics.refresh_when->older_than == Millis(90 * 60000));
  REQUIRE(nics.refresh_when->from);
  CHECK(nics.refresh_when->from->to_string() == "/createdAt");

  CHECK_THROWS_AS(load_profile(root + "/profiles/does-not-exist.json"), ProfileError);
}

TEST_CASE("a full profile with comments parses into the right values", "[profile]") {
  auto p = parse_profile(kTestProfile);
  CHECK(p.name == "test");
  CHECK(p.base_url == "https://site.test");
  CHECK(p.interval == Millis(4 * 60000));
  CHECK(p.idle_timeout == Millis(600000));
  CHECK(p.jitter == Approx(0.2));
  REQUIRE(p.check);
  CHECK(p.check->method == "GET");
  CHECK(p.check->timeout == Millis(15000));
  CHECK(p.check->logged_in.size() == 2);
  CHECK(p.check->logged_out.size() == 3);
  REQUIRE(p.refresh);
  CHECK(p.refresh->captures.size() == 3);
  CHECK(p.refresh->captures[0].format == "Bearer {value}");
  CHECK(p.refresh->captures[2].from == Capture::From::header);
  CHECK(p.retry.base == Millis(1000));
  CHECK(p.retry.max == Millis(30000));
  CHECK(p.retry.max_attempts == 7);
  CHECK(p.circuit.failure_ratio == Approx(0.6));
  CHECK(p.circuit.min_requests == 10);
  CHECK(p.circuit.window == Millis(60000));
  CHECK(p.circuit.open_for == Millis(20000));
  // A body given as JSON is kept as JSON text.
  CHECK(json::parse(p.refresh->body) == json{{"mobile", "{id}"}, {"n", 1}});

  // Defaults.
  auto d = parse_profile(with(""));
  CHECK(d.interval == Millis(5 * 60000));
  CHECK(d.idle_timeout == Millis(10 * 60000));
  CHECK(d.jitter == Approx(0.1));
  CHECK(d.retry.base == Millis(2000));
  CHECK(d.retry.max == Millis(60000));
  CHECK(d.name == "unnamed");
}

TEST_CASE("profile errors name the offending field", "[profile]") {
  auto expect = [](const std::string& text, const std::string& field) {
    auto msg = error_of(text);
    INFO("error: " << msg);
    CHECK(msg.find(field) != std::string::npos);
  };
  expect(with(R"("bogus": 1)"), "bogus");
  expect(with(R"("interval": "5 minutes")"), "interval");
  expect(with(R"("interval": "10m", "idle_timeout": "10m")"), "interval");
  expect(with(R"("interval": "11m")"), "idle_timeout");
  expect(with(R"("idle_timeout": "-5s")"), "idle_timeout");
  expect(with(R"("jitter": 0.9)"), "jitter");
  expect(
      R"({"base_url": "https://s.test", "check": {"path": "/", "logged_out": [{"status": "3yy"}]}})",
      "check.logged_out[0].status");
  expect(
      R"({"base_url": "https://s.test", "check": {"path": "/", "logged_out": [{"status": [302, 1000]}]}})",
      "check.logged_out[0].status[1]");
  expect(
      R"({"base_url": "https://s.test", "check": {"path": "/", "logged_in": [{"stauts": 200}]}})",
      "check.logged_in[0].stauts");
  expect(R"({"base_url": "https://s.test", "check": {"path": "/x/{nope}"}})", "check.path");
  expect(R"({"base_url": "https://s.test", "check": {"path": "/x/{nope}"}})", "{nope}");
  expect(R"({"base_url": "https://s.test", "check": {"path": "/", "headers": {"X": "{nope}"}}})",
         "check.headers.X");
  // A placeholder inside a literal JSON body is checked as well.
  expect(R"({"base_url": "https://s.test", "refresh": {"method": "POST", "path": "/r",
             "body": {"mobile": "{nope}"}}})",
         "refresh.body");
  expect(R"({"check": {"path": "/pwa"}})", "base_url");
  expect(R"({"base_url": "ftp://s.test", "check": {"path": "/pwa"}})", "base_url");
  expect(R"({"base_url": "https://s.test"})", "check");
  expect(R"({"base_url": "https://s.test", "check": {"method": "FETCH", "path": "/"}})",
         "check.method");
  expect(
      R"({"base_url": "https://s.test", "check": {"path": "/", "capture": [{"from": "body", "to": "header:A"}]}})",
      "check.capture[0].from");
  expect(
      R"({"base_url": "https://s.test", "check": {"path": "/", "capture": [{"from": "json:/t", "to": "file"}]}})",
      "check.capture[0].to");
  expect(with(R"("token_deadline": {"from": "cookie:a", "regex": "(unclosed"})"),
         "token_deadline.regex");
  expect(with(R"("retry": {"base": "10s", "max": "1s"})"), "retry.max");
  expect("[1, 2]", "profile");
  expect("{not json", "JSON");
}

TEST_CASE("Step::evaluate tells logged in, logged out and transient apart", "[profile]") {
  auto p = parse_profile(kTestProfile);
  const Step& check = *p.check;

  CHECK(check.evaluate(response(200, "<html><div class=homeSection>")) == Verdict::logged_in);
  // Redirect to the login page, via CURLINFO_REDIRECT_URL or the Location header.
  auto r302 = response(302);
  r302.redirect_url = "https://site.test/login?next=%2Fpwa";
  CHECK(check.evaluate(r302) == Verdict::logged_out);
  CHECK(check.evaluate(response(302, "", {{"location", "/login"}})) == Verdict::logged_out);
  // A redirect elsewhere is not a verdict on the session.
  CHECK(check.evaluate(response(302, "", {{"location", "/maintenance"}})) == Verdict::transient);
  CHECK(check.evaluate(response(401)) == Verdict::logged_out);
  CHECK(check.evaluate(response(403)) == Verdict::logged_out);
  CHECK(check.evaluate(response(503, "homeSection")) == Verdict::transient);
  CHECK(check.evaluate(response(500)) == Verdict::transient);
  CHECK(check.evaluate(response(429)) == Verdict::transient);
  CHECK(check.evaluate(response(200, "<html>maintenance</html>")) == Verdict::transient);
  CHECK(check.evaluate(response(404, "homeSection")) == Verdict::transient);

  HttpResponse timeout;
  timeout.curl_code = 28;
  timeout.error = "Operation timed out";
  CHECK(check.evaluate(timeout) == Verdict::transient);
  HttpResponse refused = response(200, "homeSection");
  refused.curl_code = 7;  // a transport error wins over whatever arrived
  CHECK(check.evaluate(refused) == Verdict::transient);

  // json_pointer + equals rules.
  CHECK(check.evaluate(response(200, R"({"user": {"loggedIn": true}})")) == Verdict::logged_in);
  CHECK(check.evaluate(response(204, R"({"user": {"loggedIn": true}})")) == Verdict::logged_in);
  CHECK(check.evaluate(response(200, R"({"user": {"loggedIn": false}})")) == Verdict::transient);
  CHECK(check.evaluate(response(200, R"({"user": {}})")) == Verdict::transient);
  CHECK(check.evaluate(response(200, R"({"error": "session_expired"})")) == Verdict::logged_out);
  CHECK(check.evaluate(response(200, R"({"error": "other"})")) == Verdict::transient);
  CHECK(check.evaluate(response(200, "{not json")) == Verdict::transient);

  // A pointer without equals only needs to exist; no rules at all: any 2xx.
  auto q = parse_profile(R"({"base_url": "https://s.test", "check": {"path": "/",
      "logged_in": [{"json_pointer": "/token"}], "logged_out": [{"body_not_contains": "alive"}]}})");
  CHECK(q.check->evaluate(response(200, R"({"token": null, "alive": 1})")) == Verdict::logged_in);
  CHECK(q.check->evaluate(response(200, R"({"alive": 1})")) == Verdict::transient);
  CHECK(q.check->evaluate(response(200, R"({"token": 1})")) == Verdict::logged_out);
  // Found by fuzzing: a 5xx or 429 error page matched that logged_out rule.
  CHECK(q.check->evaluate(response(503, "Service Unavailable")) == Verdict::transient);
  CHECK(q.check->evaluate(response(429, "")) == Verdict::transient);
  auto any = parse_profile(with(""));
  CHECK(any.check->evaluate(response(204)) == Verdict::logged_in);
  CHECK(any.check->evaluate(response(302)) == Verdict::transient);
  CHECK(std::string(to_string(Verdict::logged_out)) == "logged_out");
}

TEST_CASE("expand_template fills placeholders and leaves literal braces alone", "[profile]") {
  const std::string id = "09123456789";
  const std::string base = "https://site.test";
  const json session = session_doc();
  TemplateContext ctx{id, session, base, "", nullptr};

  CHECK(expand_template("/u/{id}", ctx) == "/u/09123456789");
  CHECK(expand_template("{base_url}/x", ctx) == "https://site.test/x");
  CHECK(expand_template("{cookie:csrftoken}", ctx) == "from-file");
  CHECK(expand_template("[{cookie:missing}]", ctx) == "[]");
  CHECK(expand_template("{header:Authorization}", ctx) == "Bearer old");
  CHECK(expand_template("[{header:Nope}]", ctx) == "[]");
  CHECK(expand_template("{field:/profile/a/b}", ctx) == "deep");
  CHECK(expand_template("{field:/profile/n}", ctx) == "42");
  CHECK(expand_template("[{field:/nothing/here}]", ctx) == "[]");
  CHECK(expand_template("no placeholders", ctx) == "no placeholders");
  CHECK(expand_template("{id}-{id}", ctx) == "09123456789-09123456789");

  // The jar, when given, is preferred over the file's cookies.
  std::vector<std::string> jar;
  jar_set(jar, "site.test", "csrftoken", "from-jar");
  TemplateContext with_jar{id, session, base, "", &jar};
  CHECK(expand_template("{cookie:csrftoken}", with_jar) == "from-jar");
  std::vector<std::string> other_jar;
  jar_set(other_jar, "site.test", "unrelated", "x");
  TemplateContext other{id, session, base, "", &other_jar};
  CHECK(expand_template("{cookie:csrftoken}", other) == "from-file");

  // Literal JSON braces stay as they are; placeholders inside JSON are filled.
  CHECK(expand_template(R"({"a": 1})", ctx) == R"({"a": 1})");
  CHECK(expand_template(R"({"mobile":"{id}"})", ctx) == R"({"mobile":"09123456789"})");
  CHECK(expand_template(R"({"a":{"b":"{cookie:csrftoken}"}})", ctx) ==
        R"({"a":{"b":"from-file"}})");
  CHECK(expand_template("{unknown}", ctx) == "{unknown}");
  CHECK(expand_template("lone { brace", ctx) == "lone { brace");
  CHECK(expand_template("lone } brace {id}", ctx) == "lone } brace 09123456789");
  CHECK(expand_template("{{id}}", ctx) == "{09123456789}");

  TemplateContext exec_ctx{id, session, base, "/tmp/copy.json", nullptr};
  CHECK(expand_template("--file={file}", exec_ctx) == "--file=/tmp/copy.json");
}

TEST_CASE("make_request merges headers, later sources winning, and refuses CR/LF", "[profile]") {
  auto p = parse_profile(kTestProfile);
  const std::string id = "09123456789";
  json session = session_doc();
  TemplateContext ctx{id, session, p.base_url, "", nullptr};
  std::vector<std::string> jar = jar_from_playwright(session["cookies"]);

  auto req = make_request(p, *p.check, ctx, jar);
  CHECK(req.method == "GET");
  CHECK(req.url == "https://site.test/pwa");
  CHECK(req.timeout == Millis(15000));
  CHECK(req.cookies == jar);
  CHECK(headers_named(req, "Accept") == std::vector<std::string>{"Accept: text/html"});
  CHECK(headers_named(req, "X-Trace") == std::vector<std::string>{"X-Trace: 09123456789"});
  // default < file "headers" < step headers, names compared case-insensitively.
  CHECK(headers_named(req, "x-override") == std::vector<std::string>{"X-OVERRIDE: step"});
  CHECK(headers_named(req, "Authorization") ==
        std::vector<std::string>{"Authorization: Bearer old"});
  CHECK(headers_named(req, "X-Csrf") == std::vector<std::string>{"X-Csrf: from-file"});

  auto refresh = make_request(p, *p.refresh, ctx, {});
  CHECK(refresh.method == "POST");
  CHECK(refresh.url == "https://site.test/api/refresh?u=09123456789");
  CHECK(json::parse(refresh.body) == json{{"mobile", "09123456789"}, {"n", 1}});
  CHECK(headers_named(refresh, "x-override") == std::vector<std::string>{"X-Override: file"});

  // Absolute URLs are used as they are; relative ones get a slash.
  auto abs = parse_profile(
      R"({"base_url": "https://s.test", "check": {"path": "https://other.test/{id}"}})");
  CHECK(make_request(abs, *abs.check, ctx, {}).url == "https://other.test/09123456789");
  auto rel = parse_profile(R"({"base_url": "https://s.test", "check": {"path": "pwa"}})");
  CHECK(make_request(rel, *rel.check, ctx, {}).url == "https://s.test/pwa");

  // A header value with CR or LF is never sent (no header injection).
  session["headers"]["X-Evil"] = "a\r\nInjected: yes";
  session["headers"]["X-Trace"] = "line1\nline2";
  session["cookies"][0]["value"] = "tok\r\nX-Injected: 1";
  auto evil = make_request(p, *p.check, ctx, {});
  for (auto& h : evil.headers) {
    INFO(h);
    CHECK(h.find_first_of("\r\n") == std::string::npos);
  }
  CHECK(headers_named(evil, "Injected").empty());
  CHECK(headers_named(evil, "X-Injected").empty());
  CHECK(headers_named(evil, "X-Evil").empty());
  CHECK(headers_named(evil, "X-Csrf").empty());
  for (auto& h : headers_named(evil, "X-Trace")) CHECK(h.find("line") == std::string::npos);
}

TEST_CASE("apply_captures writes tokens into headers and cookies", "[profile]") {
  auto p = parse_profile(kTestProfile);
  const Step& refresh = *p.refresh;
  json session = session_doc();
  std::vector<std::string> jar = jar_from_playwright(session["cookies"]);

  auto ok = response(200, R"({"token": "new.jwt.value"})", {{"x-new-csrf", "csrf2"}});
  REQUIRE(apply_captures(refresh, ok, p.base_url, session, jar));
  CHECK(session["headers"]["Authorization"] == "Bearer new.jwt.value");
  CHECK(session["headers"]["X-Override"] == "file");  // untouched
  CHECK(jar_value(jar, "pwa_access_token") == std::optional<std::string>("new.jwt.value"));
  CHECK(jar_value(jar, "csrftoken") == std::optional<std::string>("csrf2"));
  CHECK(std::count_if(jar.begin(), jar.end(), [](const std::string& l) {
          return l.find("\tcsrftoken\t") != std::string::npos;
        }) == 1);
  // The captured cookie belongs to the site's host and comes back as a Playwright cookie.
  auto cookies = playwright_from_jar(session["cookies"], jar);
  bool found = false;
  for (auto& c : cookies)
    if (c["name"] == "pwa_access_token") {
      found = true;
      CHECK(c["domain"] == "site.test");
      CHECK(c["value"] == "new.jwt.value");
    }
  CHECK(found);

  // A session file without "headers" gets the object.
  json bare = {{"cookies", json::array()}};
  std::vector<std::string> bare_jar;
  REQUIRE(apply_captures(refresh, ok, p.base_url, bare, bare_jar));
  CHECK(bare["headers"]["Authorization"] == "Bearer new.jwt.value");

  // The required capture is missing: false; optional ones missing are fine.
  json s2 = session_doc();
  std::vector<std::string> jar2;
  CHECK_FALSE(apply_captures(refresh, response(200, R"({"other": 1})"), p.base_url, s2, jar2));
  CHECK_FALSE(apply_captures(refresh, response(200, "not json"), p.base_url, s2, jar2));
  CHECK_FALSE(apply_captures(refresh, response(200, R"({"token": ""})"), p.base_url, s2, jar2));
  CHECK(s2["headers"]["Authorization"] == "Bearer old");
  CHECK(jar2.empty());

  auto optional_only = parse_profile(R"({"base_url": "https://s.test", "check": {"path": "/",
      "capture": [{"from": "header:X-Token", "to": "header:X-Token"}]}})");
  json s3 = session_doc();
  std::vector<std::string> jar3;
  CHECK(apply_captures(*optional_only.check, response(200), optional_only.base_url, s3, jar3));
  CHECK_FALSE(s3["headers"].contains("X-Token"));
  CHECK(apply_captures(*optional_only.check, response(200, "", {{"x-token", "t1"}}),
                       optional_only.base_url, s3, jar3));
  CHECK(s3["headers"]["X-Token"] == "t1");
  // No captures at all: nothing to do, success.
  CHECK(apply_captures(*p.check, response(200), p.base_url, s3, jar3));
}

TEST_CASE("jwt_exp reads the exp claim of a JWT", "[profile]") {
  CHECK(jwt_exp(make_jwt({{"sub", "09123456789"}, {"exp", 1753354887}})) ==
        std::optional<std::int64_t>(1753354887));
  CHECK(jwt_exp(make_jwt({{"exp", 1753354887.9}})) == std::optional<std::int64_t>(1753354887));
  // Payload lengths that need 1 and 2 padding characters in standard base64.
  CHECK(jwt_exp(make_jwt({{"exp", 2000000000}, {"a", "b"}})) ==
        std::optional<std::int64_t>(2000000000));
  CHECK(jwt_exp(make_jwt({{"exp", 2000000000}, {"a", "bc"}})) ==
        std::optional<std::int64_t>(2000000000));
  CHECK(jwt_exp(make_jwt({{"exp", 2000000000}, {"a", "bcd"}})) ==
        std::optional<std::int64_t>(2000000000));
  // A payload whose encoding uses the URL-safe characters '-' and '_'.
  const std::string payload = R"({"exp":1700000000,"x":"?~?~??~~~???>>>~~"})";
  const std::string encoded = base64url(payload);
  REQUIRE(encoded.find('-') != std::string::npos);
  REQUIRE(encoded.find('_') != std::string::npos);
  CHECK(jwt_exp("eyJhbGciOiJub25lIn0." + encoded + ".") == std::optional<std::int64_t>(1700000000));
  CHECK_FALSE(jwt_exp(make_jwt({{"sub", "x"}})));
  CHECK_FALSE(jwt_exp(make_jwt({{"exp", "soon"}})));
  CHECK_FALSE(jwt_exp("not-a-jwt"));
  CHECK_FALSE(jwt_exp("a.b"));
  CHECK_FALSE(jwt_exp("a.!!!.c"));
  CHECK_FALSE(jwt_exp(""));
}

TEST_CASE("token_expiry finds the deadline token in a cookie or header", "[profile]") {
  const std::string jwt = make_jwt({{"exp", 1753354887}});
  auto p = parse_profile(with(R"("token_deadline": {"from": "cookie:pwa_access_token"})"));
  REQUIRE(p.token_deadline);
  CHECK(p.token_deadline->margin == Millis(120000));

  json session = {
      {"cookies",
       json::array({{{"name", "other"}, {"value", "x"}, {"domain", "s.test"}},
                    {{"name", "pwa_access_token"}, {"value", jwt}, {"domain", "s.test"}}})}};
  auto exp = token_expiry(*p.token_deadline, session);
  REQUIRE(exp);
  CHECK(std::chrono::duration_cast<std::chrono::seconds>(exp->time_since_epoch()).count() ==
        1753354887);

  // A cookie value with a prefix is found by the regex.
  session["cookies"][1]["value"] = "v1:" + jwt;
  CHECK(token_expiry(*p.token_deadline, session) == exp);
  // Missing cookie or a value that is not a JWT: no deadline.
  session["cookies"][1]["value"] = "opaque";
  CHECK_FALSE(token_expiry(*p.token_deadline, session));
  json no_cookies = {{"cookies", json::array()}};
  CHECK_FALSE(token_expiry(*p.token_deadline, no_cookies));

  auto h = parse_profile(with(R"X("token_deadline": {"from": "header:Authorization",
                                  "regex": "Bearer (\\S+)", "margin": "30s"})X"));
  REQUIRE(h.token_deadline);
  CHECK(h.token_deadline->from == TokenDeadline::From::header);
  json with_header = {{"cookies", json::array()},
                      {"headers", {{"Authorization", "Bearer " + jwt}}}};
  auto hexp = token_expiry(*h.token_deadline, with_header);
  REQUIRE(hexp);
  CHECK(*hexp == std::chrono::system_clock::time_point(std::chrono::seconds(1753354887)));
}

TEST_CASE("token_deadline.regex is RE2: linear time, any value size, clear errors",
          "[profile][re2]") {
  const std::string jwt = make_jwt({{"exp", 1753354887}});
  const auto expected = std::chrono::system_clock::time_point(std::chrono::seconds(1753354887));
  auto cookie_doc = [](const std::string& value) {
    return json{
        {"cookies", json::array({{{"name", "t"}, {"value", value}, {"domain", "s.test"}}})}};
  };
  // A 30 KB cookie value (std::regex needed an 8 KB cap): the token at its end is found.
  auto p = parse_profile(with(R"("token_deadline": {"from": "cookie:t"})"));
  const std::string padding(30 * 1024, '~');
  CHECK(token_expiry(*p.token_deadline, cookie_doc(padding + jwt)) == expected);
  auto custom =
      parse_profile(with(R"X("token_deadline": {"from": "cookie:t", "regex": "at=(\\S+)"})X"));
  CHECK(token_expiry(*custom.token_deadline, cookie_doc(padding + "at=" + jwt)) == expected);

  // A pattern that backtracks exponentially in std::regex, over 30 KB without a
  // match: RE2 answers in linear time (a generous bound: milliseconds in practice).
  auto bad =
      parse_profile(with(R"X("token_deadline": {"from": "cookie:t", "regex": "((x+x+)+y)"})X"));
  const auto started = std::chrono::steady_clock::now();
  CHECK_FALSE(token_expiry(*bad.token_deadline, cookie_doc(std::string(30 * 1024, 'x'))));
  CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(2));

  // Invalid patterns, and what RE2 does not support (back-references, lookahead).
  for (const char* pattern : {"(unclosed", "a\\\\1", "(?=x)y", "x{2,1}"}) {
    INFO(pattern);
    auto message = error_of(with(
        std::string(R"("token_deadline": {"from": "cookie:t", "regex": ")") + pattern + "\"}"));
    CHECK(message.rfind("token_deadline.regex: invalid regular expression: ", 0) == 0);
  }
  // A profile is copied into every site: the compiled pattern is shared, still usable.
  Profile copy = custom;
  CHECK(token_expiry(*copy.token_deadline, cookie_doc("at=" + jwt)) == expected);
}

// Found by the fuzz targets (tests/fuzz, docs/RELIABILITY.md "Fuzzing").
TEST_CASE("fuzzing: profiles with out-of-range numbers fail with ProfileError", "[profile]") {
  // nlohmann throws out_of_range (not parse_error) for a number beyond double.
  CHECK(error_of(with(R"("jitter": 1e999)")).find("JSON") != std::string::npos);
  // Converting 1e300 seconds to integer milliseconds was undefined behaviour.
  CHECK(error_of(with(R"("timeout": 1e300)")).find("timeout") != std::string::npos);
  CHECK(error_of(with(R"("interval": -1e300)")).find("interval") != std::string::npos);
  // get<int> wrapped 4294967496 to 200.
  CHECK(error_of(R"({"base_url": "https://s.test", "check": {"path": "/",
                     "logged_in": [{"status": 4294967496}]}})")
            .find("check.logged_in[0].status") != std::string::npos);
  // "https://" lost its slashes and became "https:".
  CHECK(error_of(R"({"base_url": "https://", "check": {"path": "/"}})").find("base_url") !=
        std::string::npos);
  CHECK(error_of(R"({"base_url": "http:////", "check": {"path": "/"}})").find("base_url") !=
        std::string::npos);
  // libstdc++'s regex parser overflowed on "\3333333333333333333". To RE2 it is
  // an octal escape and digits (and "a{33333333333333333333}" a literal); a
  // repeat count over 1000 is refused.
  CHECK(parse_profile(
            with(R"("token_deadline": {"from": "cookie:t", "regex": "a\\33333333333333333333"})"))
            .token_deadline);
  CHECK(error_of(with(R"("token_deadline": {"from": "cookie:t", "regex": "a{1001}"})"))
            .find("token_deadline.regex: invalid regular expression: ") != std::string::npos);
  // A capture into a header needs a header name.
  CHECK(error_of(R"({"base_url": "https://s.test", "check": {"path": "/",
                     "capture": [{"from": "json:/t", "to": "header:X Bad"}]}})")
            .find("check.capture[0].to") != std::string::npos);
}

TEST_CASE("fuzzing: untrusted header names, captured values and token sizes", "[profile]") {
  auto p = parse_profile(kTestProfile);
  const std::string id = "09123456789";

  // Header names from the session file: one "Name: value" line each, or none.
  json session = session_doc();
  session["headers"]["X-A\r\nInjected"] = "1";
  session["headers"]["Bad Name"] = "2";
  session["headers"][""] = "3";
  TemplateContext ctx{id, session, p.base_url, "", nullptr};
  auto req = make_request(p, *p.check, ctx, {});
  for (auto& h : req.headers) {
    INFO(h);
    CHECK(h.find_first_of("\r\n") == std::string::npos);
    CHECK(h.find(' ') > h.find(':'));
    CHECK(h.find(':') > 0);
  }
  CHECK(headers_named(req, "Authorization") ==
        std::vector<std::string>{"Authorization: Bearer old"});

  // A captured value containing "{value}" looped forever; one with a line
  // break would split its header or cookie line: treated as missing.
  json s = session_doc();
  std::vector<std::string> jar;
  REQUIRE(
      apply_captures(*p.refresh, response(200, R"({"token": "a{value}b"})"), p.base_url, s, jar));
  CHECK(s["headers"]["Authorization"] == "Bearer a{value}b");
  CHECK(jar_value(jar, "pwa_access_token") == std::optional<std::string>("a{value}b"));
  json s2 = session_doc();
  std::vector<std::string> jar2;
  CHECK_FALSE(apply_captures(*p.refresh, response(200, R"({"token": "t\r\nX-Injected: 1"})"),
                             p.base_url, s2, jar2));
  CHECK(s2["headers"]["Authorization"] == "Bearer old");
  CHECK(jar2.empty());

  // std::regex recursed per character: a 100 KB token overflowed the stack.
  auto td = parse_profile(with(R"("token_deadline": {"from": "cookie:t"})"));
  json big = {{"cookies", json::array({{{"name", "t"},
                                        {"value", "x." + std::string(100000, 'a') + ".y"},
                                        {"domain", "s.test"}}})}};
  CHECK_FALSE(token_expiry(*td.token_deadline, big));
}

TEST_CASE("fuzzing: token deadlines and captures from hostile values", "[profile]") {
  // The default pattern matches as the same pattern written by hand does.
  auto p = parse_profile(with(R"("token_deadline": {"from": "cookie:t"})"));
  auto same_as_regex = parse_profile(with(
      R"X("token_deadline": {"from": "cookie:t", "regex": "([A-Za-z0-9_-]+[.][A-Za-z0-9_-]+[.][A-Za-z0-9_-]*)"})X"));
  const std::string jwt = make_jwt({{"exp", 1753354887}});
  for (std::string v :
       {jwt, "v1:" + jwt, "a.b " + jwt, "x!" + jwt + "!y", jwt + ".extra", "a..b." + jwt,
        std::string("opaque"), std::string("a.b"), std::string("..."), std::string()}) {
    INFO(v);
    json s = {{"cookies", json::array({{{"name", "t"}, {"value", v}, {"domain", "s.test"}}})}};
    CHECK(token_expiry(*p.token_deadline, s) == token_expiry(*same_as_regex.token_deadline, s));
  }
  json slow = {{"cookies", json::array({{{"name", "t"},
                                         {"value", "x." + std::string(8000, 'a')},
                                         {"domain", "s.test"}}})}};
  CHECK_FALSE(token_expiry(*p.token_deadline, slow));  // was 3 s of std::regex
  // The first JWT-looking token wins, not a later one.
  const std::string later = make_jwt({{"exp", 1800000000}});
  json two = {{"cookies", json::array({{{"name", "t"},
                                        {"value", "a.b!" + jwt + " " + later},
                                        {"domain", "s.test"}}})}};
  CHECK(token_expiry(*p.token_deadline, two) ==
        std::chrono::system_clock::time_point(std::chrono::seconds(1753354887)));

  // exp beyond what a time_point holds (or 1e300, beyond int64): no deadline.
  CHECK_FALSE(jwt_exp(make_jwt({{"exp", 1e300}})));
  CHECK_FALSE(jwt_exp(make_jwt({{"exp", 1e11}})));
  CHECK_FALSE(jwt_exp(make_jwt({{"exp", -5}})));

  // A captured object or array is not a token (a deep one overflowed the stack).
  auto c = parse_profile(R"({"base_url": "https://s.test", "check": {"path": "/",
      "capture": [{"from": "json:/token", "to": "header:X-Token", "required": true}]}})");
  json doc = {{"cookies", json::array()}};
  std::vector<std::string> jar;
  const std::string deep =
      R"({"token": )" + std::string(200000, '[') + std::string(200000, ']') + "}";
  CHECK_FALSE(apply_captures(*c.check, response(200, deep), c.base_url, doc, jar));
  CHECK(apply_captures(*c.check, response(200, R"({"token": 42})"), c.base_url, doc, jar));
  CHECK(doc["headers"]["X-Token"] == "42");
}

TEST_CASE("a browser step parses with every form of conditions", "[profile]") {
  auto p = parse_profile(R"({
    "base_url": "https://baman24.ir",
    "browser": {"max_concurrent": 3},
    "check": {"browser": {
      "url": "/pwa", "wait_for": "div.homeSection",
      "logged_out": [{"url_contains": "/auth/login"}, {"selector": "form.loginForm"}],
      "settle": "500ms", "timeout": "30s"}},
    "refresh": {"browser": {
      "url": "{base_url}/pwa?u={id}",
      "wait_for": [{"selector": "div.homeSection", "text": "Welcome"}, {"url_contains": "/pwa"}],
      "logged_out": {"text": "Sign in"},
      "settle": "networkidle", "wait_for_network_idle": true, "timeout": 45}}
  })");
  CHECK(p.browser_max_concurrent == 3);
  REQUIRE(p.check);
  CHECK(p.check->is_browser());
  CHECK_FALSE(p.check->is_exec());
  const BrowserStepSpec& c = *p.check->browser;
  CHECK(c.url == "/pwa");
  REQUIRE(c.wait_for.size() == 1);
  CHECK(c.wait_for[0].selector == "div.homeSection");
  CHECK_FALSE(c.wait_for[0].text);
  REQUIRE(c.logged_out.size() == 2);
  CHECK(c.logged_out[0].url_contains == "/auth/login");
  CHECK_FALSE(c.logged_out[0].selector);
  CHECK(c.logged_out[1].selector == "form.loginForm");
  CHECK(c.settle == Millis(500));
  CHECK_FALSE(c.settle_network_idle);
  CHECK_FALSE(c.wait_network_idle);
  CHECK(c.timeout == Millis(30000));
  CHECK(p.check->timeout == Millis(30000));

  REQUIRE(p.refresh);
  const BrowserStepSpec& r = *p.refresh->browser;
  CHECK(r.url == "{base_url}/pwa?u={id}");  // a template, expanded per session
  REQUIRE(r.wait_for.size() == 2);
  CHECK(r.wait_for[0].selector == "div.homeSection");
  CHECK(r.wait_for[0].text == "Welcome");
  CHECK(r.wait_for[1].url_contains == "/pwa");
  REQUIRE(r.logged_out.size() == 1);
  CHECK(r.logged_out[0].text == "Sign in");
  CHECK(r.settle_network_idle);
  CHECK(r.wait_network_idle);
  CHECK(r.timeout == Millis(45000));
}

TEST_CASE("browser step defaults; profile browser.max_concurrent defaults to 0", "[profile]") {
  auto p = parse_profile(R"({"base_url": "https://s.test",
    "check": {"browser": {"url": "https://s.test/pwa", "wait_for": {"selector": "#app"}}}})");
  CHECK(p.browser_max_concurrent == 0);  // the number of cores
  CHECK(browser_slots(p) == std::max(1u, std::thread::hardware_concurrency()));
  p.browser_max_concurrent = 3;
  CHECK(browser_slots(p) == 3);
  const BrowserStepSpec& b = *p.check->browser;
  CHECK(b.wait_for.size() == 1);
  CHECK(b.logged_out.empty());
  CHECK(b.settle == Millis(500));
  CHECK(b.timeout == Millis(30000));
  CHECK_FALSE(b.settle_network_idle);
  // Settle 0: read the state as soon as wait_for matches.
  auto z = parse_profile(R"({"base_url": "https://s.test",
    "check": {"browser": {"url": "/", "wait_for": "#app", "settle": 0}}})");
  CHECK(z.check->browser->settle == Millis(0));
  // HTTP and exec steps are not browser steps.
  CHECK_FALSE(parse_profile(with("")).check->is_browser());
}

TEST_CASE("browser step errors name the offending field", "[profile]") {
  auto expect = [](const std::string& browser, const std::string& field,
                   const std::string& step_extra = "") {
    auto msg = error_of(R"({"base_url": "https://s.test", "check": {"browser": )" + browser +
                        step_extra + "}}");
    INFO("error: " << msg);
    CHECK(msg.find(field) != std::string::npos);
  };
  const std::string ok = R"({"url": "/pwa", "wait_for": "div.homeSection"})";
  // Mutually exclusive with HTTP and exec fields.
  expect(ok, "check.path", R"(, "path": "/pwa")");
  expect(ok, "check.exec", R"(, "exec": ["node", "x.js"])");
  expect(ok, "check.logged_out", R"(, "logged_out": [{"status": 401}])");
  expect(ok, "check.method", R"(, "method": "GET")");
  expect(ok, "check.capture", R"(, "capture": [])");
  expect(ok, "check.timeout", R"(, "timeout": "10s")");
  expect(ok, "not both", R"(, "headers": {"A": "b"})");
  // The browser object.
  expect("[1]", "check.browser");
  expect(R"({"wait_for": "div"})", "check.browser.url");
  expect(R"({"url": "", "wait_for": "div"})", "check.browser.url");
  expect(R"({"url": "pwa", "wait_for": "div"})", "check.browser.url");
  expect(R"({"url": "/p w a", "wait_for": "div"})", "check.browser.url");
  expect(R"({"url": "/pwa/{nope}", "wait_for": "div"})", "{nope}");
  expect(R"({"url": "/pwa"})", "check.browser.wait_for");
  expect(R"({"url": "/pwa", "wait_for": []})", "check.browser.wait_for");
  expect(R"({"url": "/pwa", "wait_for": ""})", "check.browser.wait_for");
  expect(R"({"url": "/pwa", "wait_for": 5})", "check.browser.wait_for");
  expect(R"({"url": "/pwa", "wait_for": {}})", "check.browser.wait_for");
  expect(R"({"url": "/pwa", "wait_for": [{"selector": "a"}, {"slector": "b"}]})",
         "check.browser.wait_for[1].slector");
  expect(R"({"url": "/pwa", "wait_for": {"text": 3}})", "check.browser.wait_for.text");
  expect(R"({"url": "/pwa", "wait_for": {"url_contains": ""}})",
         "check.browser.wait_for.url_contains");
  expect(R"({"url": "/pwa", "wait_for": "a", "logged_out": [{"status": 302}]})",
         "check.browser.logged_out[0].status");
  expect(R"({"url": "/pwa", "wait_for": "a", "settle": "soon"})", "check.browser.settle");
  expect(R"({"url": "/pwa", "wait_for": "a", "settle": -1})", "check.browser.settle");
  expect(R"({"url": "/pwa", "wait_for": "a", "settle": "30s", "timeout": "30s"})",
         "check.browser.settle");
  expect(R"({"url": "/pwa", "wait_for": "a", "timeout": "0s"})", "check.browser.timeout");
  expect(R"({"url": "/pwa", "wait_for": "a", "wait_for_network_idle": "yes"})",
         "check.browser.wait_for_network_idle");
  expect(R"({"url": "/pwa", "wait_for": "a", "waitFor": "b"})", "check.browser.waitFor");
  // Exec and HTTP fields do not mix either.
  CHECK(error_of(R"({"base_url": "https://s.test", "check": {"exec": ["x"], "method": "POST"}})")
            .find("check.method") != std::string::npos);
  // The profile-level browser object.
  CHECK(error_of(with(R"("browser": {"max_concurrent": -1})")).find("browser.max_concurrent") !=
        std::string::npos);
  CHECK(error_of(with(R"("browser": {"max_concurrent": "2"})")).find("browser.max_concurrent") !=
        std::string::npos);
  CHECK(error_of(with(R"("browser": {"pool": 2})")).find("browser.pool") != std::string::npos);
  CHECK(error_of(with(R"("browser": 2)")).find("browser") != std::string::npos);
}
