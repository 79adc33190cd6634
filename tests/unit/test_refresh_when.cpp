// Issue 14 item 3: refresh_when (a refresh only when the session is old
// enough, the check every interval) and logged-in markers templated from the
// session file. Profile parsing here, the cycle through cycle_driver.hpp.

#include <catch2/catch.hpp>

#include <string>

#include "cycle_driver.hpp"
#include "sessiond/json_log.hpp"
#include "sessiond/profile.hpp"
#include "test_support.hpp"

using namespace sessiond;
using namespace std::chrono_literals;
using json = nlohmann::json;
using namespace cycle_test;

namespace {

std::string profile_error(const std::string& text) {
  try {
    parse_profile(text);
  } catch (const ProfileError& e) {
    return e.what();
  }
  FAIL("parse_profile accepted: " << text);
  return {};
}

// Check and refresh over HTTP, the refresh when the session is 90 minutes
// old (nics24: a check every 10 minutes, 2 hours at most). `from` is the
// refresh_when.from member, or empty for the keepalive block.
std::string nics_profile(const std::string& from) {
  return R"({
  "name": "aged", "base_url": "http://127.0.0.1:1", "interval": "10m", "idle_timeout": "30m",
  "jitter": 0.1,
  "check": {"path": "/pwa",
            "logged_in": [{"status": 200, "body_contains": "homeSection"}],
            "logged_out": [{"status": [302], "redirect_contains": "/login"}]},
  "refresh": {"method": "POST", "path": "/api/refresh",
              "logged_in": [{"status": 200, "json_pointer": "/token"}]},
  "refresh_when": {"older_than": "90m")" +
         (from.empty() ? std::string() : R"(, "from": ")" + from + "\"") + R"(},
  "retry": {"base": "2s", "max": "30s"}
})";
}

void check_interval_delay(const Driver& d) {
  REQUIRE_FALSE(d.schedules.empty());
  CHECK(d.schedules.back().delay >= Millis(540000));  // 10m * (1 - jitter)
  CHECK(d.schedules.back().delay <= Millis(600000));
}

// A session file as the nics24 bot writes it, with its login time.
json aged_doc(const json& created_at) {
  json doc = session_doc(std::nullopt);
  doc["createdAt"] = created_at;
  return doc;
}

HttpResponse page(long status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

std::int64_t epoch_ms(WallTime t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

}  // namespace

// -- parsing --------------------------------------------------------------------

TEST_CASE("refresh_when parses, on the profile, with a field or the keepalive block",
          "[refresh_when]") {
  auto p = parse_profile(nics_profile("{field:/createdAt}"));
  REQUIRE(p.refresh_when);
  CHECK(p.refresh_when->older_than == Millis(90 * 60000));
  REQUIRE(p.refresh_when->from);
  CHECK(p.refresh_when->from->to_string() == "/createdAt");
  CHECK(p.refresh_when->from_text == "/createdAt");

  auto bare = parse_profile(nics_profile("/session/started~1at"));
  REQUIRE(bare.refresh_when->from);
  CHECK(bare.refresh_when->from->to_string() == "/session/started~1at");

  auto keepalive = parse_profile(nics_profile(""));
  CHECK_FALSE(keepalive.refresh_when->from);
  CHECK(keepalive.refresh_when->from_text == "keepalive.sessionStart");

  CHECK_FALSE(parse_profile(testing::kRefreshProfile).refresh_when);
}

TEST_CASE("refresh_when errors name the field", "[refresh_when]") {
  const std::string steps = R"("base_url": "https://s.test", "check": {"path": "/"},
                               "refresh": {"path": "/r"})";
  auto expect = [&](const std::string& when, const std::string& field, const std::string& what,
                    const std::string& profile_steps = "") {
    auto msg = profile_error("{" + (profile_steps.empty() ? steps : profile_steps) +
                             R"(, "refresh_when": )" + when + "}");
    INFO("error: " << msg);
    CHECK(msg.rfind(field + ": ", 0) == 0);
    CHECK(msg.find(what) != std::string::npos);
  };
  expect(R"("90m")", "refresh_when", "expected an object");
  expect(R"({})", "refresh_when.older_than", "required");
  expect(R"({"older_than": "soon"})", "refresh_when.older_than", "positive duration");
  expect(R"({"older_than": "0s"})", "refresh_when.older_than", "positive duration");
  expect(R"({"older_than": -5})", "refresh_when.older_than", "positive duration");
  expect(R"({"older_than": "90m", "olderThan": "1h"})", "refresh_when.olderThan", "unknown");
  expect(R"({"older_than": "90m", "from": "createdAt"})", "refresh_when.from", "{field:/");
  expect(R"({"older_than": "90m", "from": "{field:createdAt}"})", "refresh_when.from", "{field:/");
  expect(R"({"older_than": "90m", "from": "/"})", "refresh_when.from", "{field:/");
  expect(R"({"older_than": "90m", "from": "/a~2"})", "refresh_when.from", "JSON pointer");
  expect(R"({"older_than": "90m", "from": 5})", "refresh_when.from", "expected a string");
  // Both steps must exist: the check runs every interval, the refresh when due.
  expect(R"({"older_than": "90m"})", "refresh_when", "check step",
         R"("base_url": "https://s.test", "check": {"path": "/"})");
  expect(R"({"older_than": "90m"})", "refresh_when", "refresh step",
         R"("base_url": "https://s.test", "refresh": {"path": "/"})");
}

TEST_CASE("parse_time_value: epoch seconds, epoch milliseconds, RFC 3339 with a zone",
          "[refresh_when]") {
  using std::chrono::seconds;
  const WallTime t(seconds(1737628200));  // 2025-01-23T10:30:00Z
  CHECK(parse_time_value(json(1737628200)) == t);
  CHECK(parse_time_value(json(1737628200.5)) == t + 500ms);
  CHECK(parse_time_value(json(1737628200000LL)) == t);  // Date.now()
  CHECK(parse_time_value(json("2025-01-23T10:30:00Z")) == t);
  CHECK(parse_time_value(json("2025-01-23T10:30:00.250Z")) == t + 250ms);
  CHECK(parse_time_value(json("2025-01-23t10:30:00z")) == t);
  CHECK(parse_time_value(json("2025-01-23T14:00:00+03:30")) == t);  // Tehran
  CHECK(parse_time_value(json("2025-01-23T05:30:00.000-05:00")) == t);
  CHECK(parse_rfc3339("2025-01-23T10:30:00+00:00") == t);

  for (const json& bad :
       {json("2025-01-23T10:30:00"),  // no zone: local to somewhere unknown
        json("2025-01-23 10:30:00Z"), json("2025-01-23"), json("1737628200"), json(""),
        json("yesterday"), json("2025-01-23T10:30:00+3:30"), json("2025-01-23T10:30:00+24:00"),
        json("2025-01-23T10:30:00.Z"), json("2025-01-23T10:30:00ZZ"), json("2025-13-23T10:30:00Z"),
        json(-5), json(0), json(1e300), json(true), json(nullptr), json::object(), json::array()}) {
    INFO(bad.dump());
    CHECK_FALSE(parse_time_value(bad));
  }
}

TEST_CASE("markers: templated body_contains and page text, matched literally", "[marker]") {
  auto p = parse_profile(R"({"base_url": "https://s.test",
    "check": {"path": "/",
              "logged_in": [{"status": 200, "body_contains": "Welcome, {field:/account/name}"}],
              "logged_out": [{"status": 302}, {"status": 200,
                              "body_not_contains": "{field:/account/name}"}]}})");
  const std::string id = "09120000001", base = "https://s.test";
  auto ctx_for = [&](const json& doc) { return TemplateContext{id, doc, base, {}}; };

  const json named = {{"cookies", json::array()}, {"account", {{"name", "Ali (A.*)"}}}};
  std::string problem;
  CHECK(p.check->evaluate(page(200, "<b>Welcome, Ali (A.*)</b>"), ctx_for(named), &problem) ==
        Verdict::logged_in);
  CHECK(problem.empty());
  // Literal, not a pattern: "A.*" does not match "Ali".
  CHECK(p.check->evaluate(page(200, "<b>Welcome, Ali (Ali)</b> Ali (A.*)"), ctx_for(named)) ==
        Verdict::transient);
  // Someone else's page: the account's name is not on it.
  CHECK(p.check->evaluate(page(200, "<b>Welcome, Reza</b>"), ctx_for(named)) ==
        Verdict::logged_out);

  // A missing or empty field decides nothing: never "logged out" (that would
  // dispose of a live session) and never "logged in".
  for (const json& doc : {json{{"cookies", json::array()}},
                          json{{"cookies", json::array()}, {"account", {{"name", ""}}}}}) {
    problem.clear();
    CHECK(p.check->evaluate(page(200, "<b>Welcome, </b>"), ctx_for(doc), &problem) ==
          Verdict::transient);
    CHECK(problem == "logged_out marker: {field:/account/name} is empty or missing");
  }
  // ... while a rule that needs no marker still decides.
  CHECK(p.check->evaluate(page(302, ""), ctx_for(json::object())) == Verdict::logged_out);
  // Without a session there is nothing to expand.
  CHECK(p.check->evaluate(page(200, "Welcome, ")) == Verdict::transient);

  // Another logged_in rule may still say logged in; an undecided one alone cannot.
  auto two = parse_profile(R"({"base_url": "https://s.test", "check": {"path": "/",
    "logged_in": [{"body_contains": "{field:/name}"}, {"body_contains": "homeSection"}]}})");
  CHECK(two.check->evaluate(page(200, "homeSection"), ctx_for(json::object())) ==
        Verdict::logged_in);
  problem.clear();
  CHECK(two.check->evaluate(page(200, "nothing"), ctx_for(json::object()), &problem) ==
        Verdict::transient);
  CHECK(problem == "logged_in marker: {field:/name} is empty or missing");
}

TEST_CASE("markers: expand_marker and page conditions; what a marker may not name", "[marker]") {
  const std::string id = "09120000001", base = "https://s.test";
  const json doc = {{"account", {{"name", "O'Brien \"}</script>"}, {"n", 42}}}};
  TemplateContext ctx{id, doc, base, {}};
  CHECK(expand_marker("{field:/account/name}!", ctx) ==
        std::optional<std::string>("O'Brien \"}</script>!"));
  CHECK(expand_marker("{field:/account/n} {id}", ctx) ==
        std::optional<std::string>("42 09120000001"));
  std::string empty;
  CHECK_FALSE(expand_marker("Hi {field:/account/none}", ctx, &empty));
  CHECK(empty == "{field:/account/none}");
  CHECK_FALSE(expand_marker("{cookie:sid}", ctx));
  CHECK(expand_marker("no placeholders", ctx) == std::optional<std::string>("no placeholders"));

  auto p = parse_profile(R"({"base_url": "https://s.test", "check": {"browser": {"url": "/",
    "wait_for": [{"selector": "app-profile-top-bar", "text": "{field:/account/name}"}],
    "wait_for_network_idle": true,
    "logged_out": [{"text": "Sign in"}, {"url_contains": "/login"}]}}})");
  BrowserStepSpec spec = *p.check->browser;
  CHECK(spec.wait_network_idle);
  CHECK_FALSE(expand_page_conditions(spec, ctx));
  CHECK(spec.wait_for[0].text == std::optional<std::string>("O'Brien \"}</script>"));
  CHECK(spec.wait_for[0].selector == std::optional<std::string>("app-profile-top-bar"));
  CHECK(spec.logged_out[0].text == std::optional<std::string>("Sign in"));
  BrowserStepSpec missing = *p.check->browser;
  CHECK(expand_page_conditions(missing, TemplateContext{id, json::object(), base, {}}) ==
        std::optional<std::string>("{field:/account/name}"));

  // {file} is an exec step's copy, {value} a capture's: neither is on a page.
  const std::string head = R"({"base_url": "https://s.test", "check": )";
  CHECK(profile_error(head + R"({"path": "/", "logged_in": [{"body_contains": "{file}"}]}})")
            .rfind("check.logged_in[0].body_contains: unknown placeholder {file}", 0) == 0);
  CHECK(profile_error(head + R"({"path": "/", "logged_out": [{"body_not_contains": "{x}"}]}})")
            .rfind("check.logged_out[0].body_not_contains: unknown placeholder {x}", 0) == 0);
  CHECK(profile_error(head + R"({"browser": {"url": "/", "wait_for": {"text": "{value}"}}}})")
            .rfind("check.browser.wait_for.text: unknown placeholder {value}", 0) == 0);
  CHECK(profile_error(head + R"({"path": "/", "logged_in": [{"body_contains": "{field:/a~2}"}]}})")
            .find("not a JSON pointer") != std::string::npos);
  // Literal JSON in a marker stays literal.
  auto literal =
      parse_profile(head + R"({"path": "/", "logged_in": [{"body_contains": "{\"ok\":true}"}]}})");
  CHECK(literal.check->evaluate(page(200, R"({"ok":true})")) == Verdict::logged_in);
}

// -- the cycle ----------------------------------------------------------------------

TEST_CASE("refresh_when: not due, only the check runs; its rotated cookie is saved",
          "[refresh_when][cycle]") {
  Driver d(nics_profile("{field:/createdAt}"));
  testing::CapturedLogs logs;
  d.write(aged_doc(log::iso8601(d.wall0 - 30min)));
  d.start();
  d.fire();
  REQUIRE(d.http.size() == 1);
  d.answer(200, kHome, "s1");
  CHECK(d.http.empty());  // no refresh request
  CHECK(d.report().outcome == CycleOutcome::success);
  auto doc = d.read();
  CHECK(doc["cookies"][0]["value"] == "s1");
  CHECK(doc["keepalive"]["refreshCount"] == 1);
  CHECK(doc["createdAt"] == log::iso8601(d.wall0 - 30min));  // the bot's field, untouched
  CHECK_FALSE(doc["keepalive"].contains("sessionStart"));    // only for the keepalive source
  check_interval_delay(d);
  CHECK(logs.count("refresh_ok") == 1);
  CHECK(logs.mentions("\"refresh_step\":false") == 1);
  CHECK(logs.count("session_age_unknown") == 0);
  CHECK(d.metrics.refreshes(RefreshResult::success) == 1);
}

TEST_CASE("refresh_when: due, the check then the refresh", "[refresh_when][cycle]") {
  Driver d(nics_profile("/createdAt"));
  testing::CapturedLogs logs;
  SECTION("epoch milliseconds") {
    d.write(aged_doc(epoch_ms(d.wall0 - 95min)));
  }
  SECTION("RFC 3339 with an offset") {
    // 95 minutes ago, written in Tehran's time.
    auto t = d.wall0 - 95min + 3h + 30min;
    auto text = log::iso8601(t);
    d.write(aged_doc(text.substr(0, text.size() - 1) + "+03:30"));
  }
  d.start();
  d.fire();
  auto check = d.answer(200, kHome, "s1");
  CHECK(check.url == "http://127.0.0.1:1/pwa");
  REQUIRE(d.http.size() == 1);
  auto refresh = d.answer(200, R"({"token": "T"})", "s2");
  CHECK(refresh.method == "POST");
  CHECK(sid_of(refresh) == std::optional<std::string>("s1"));  // the check's rotation
  CHECK(d.report().outcome == CycleOutcome::success);
  CHECK(d.read()["cookies"][0]["value"] == "s2");
  check_interval_delay(d);
  CHECK(logs.mentions("\"refresh_step\":true") == 1);
  // The HTTP refresh cannot renew the bot's createdAt: said once, not every cycle.
  CHECK(logs.count("session_age_not_renewed") == 1);
  d.fire();
  d.answer(200, kHome);
  REQUIRE(d.http.size() == 1);
  d.answer(200, R"({"token": "T"})");
  CHECK(d.report().outcome == CycleOutcome::success);
  CHECK(logs.count("session_age_not_renewed") == 1);
}

TEST_CASE("refresh_when: a missing or garbled age refreshes, and says so once without the value",
          "[refresh_when][cycle]") {
  Driver d(nics_profile("{field:/createdAt}"));
  testing::CapturedLogs logs;
  std::string problem;
  SECTION("missing") {
    d.write(session_doc(std::nullopt));
    problem = "\"problem\":\"missing\"";
  }
  SECTION("not a time") {
    d.write(aged_doc("Tuesday-s3cr3t-value"));
    problem = "not a time";
  }
  SECTION("a local time written without a zone") {
    d.write(aged_doc("2025-01-23T10:30:00"));
    problem = "not a time";
  }
  SECTION("hours in the future") {
    d.write(aged_doc(log::iso8601(d.wall0 + 3h)));
    problem = "in the future";
  }
  d.start();
  // Twice: the warning once, the refresh each time (renewing is the safe side:
  // a missed refresh lets the session reach its maximum age).
  for (int cycle = 0; cycle < 2; ++cycle) {
    d.fire();
    d.answer(200, kHome);
    REQUIRE(d.http.size() == 1);
    CHECK(d.http.front().request.url == "http://127.0.0.1:1/api/refresh");
    d.answer(200, R"({"token": "T"})");
    CHECK(d.report().outcome == CycleOutcome::success);
  }
  CHECK(logs.count("session_age_unknown") == 1);
  CHECK(logs.mentions(problem) == 1);
  CHECK(logs.mentions("\"from\":\"/createdAt\"") >= 1);
  CHECK(logs.mentions("s3cr3t") == 0);
  CHECK(logs.count("session_age_not_renewed") == 0);  // unknown is not "as old as before"

  // Readable again (the bot's new login): not due, and a later problem is news again.
  d.write(aged_doc(log::iso8601(d.now())));
  d.file_changed();
  d.answer(200, kHome);
  CHECK(d.http.empty());
  d.write(session_doc(std::nullopt));
  d.file_changed();
  d.answer(200, kHome);
  REQUIRE(d.http.size() == 1);
  d.answer(200, R"({"token": "T"})");
  CHECK(logs.count("session_age_unknown") == 2);
}

TEST_CASE("refresh_when from the keepalive block: the bot's login, then each renewal",
          "[refresh_when][cycle]") {
  Driver d(nics_profile(""));
  // The bot's new login: no keepalive block, the file written just now.
  d.write(session_doc(std::nullopt));
  const auto written = *stat_identity(d.path);
  const WallTime login(
      std::chrono::duration_cast<WallTime::duration>(std::chrono::nanoseconds(written.mtime_ns)));
  d.start();
  REQUIRE(d.schedules.size() == 1);
  CHECK(d.schedules[0].delay == Millis(0));  // a fresh login goes at once
  d.fire();
  d.answer(200, kHome);
  CHECK(d.http.empty());  // just logged in: not due
  CHECK(d.read()["keepalive"]["sessionStart"] == log::iso8601(login));

  // Checks every ~10 minutes; the first past 90 minutes refreshes.
  int checks = 1;
  bool refreshed = false;
  WallTime refreshed_at;
  for (; checks < 12 && !refreshed; ++checks) {
    d.fire();
    d.answer(200, kHome);
    if (!d.http.empty()) {
      CHECK(d.now() - login > 90min);
      CHECK(d.now() - login < 90min + 10min + 1s);
      d.answer(200, R"({"token": "T"})");
      refreshed = true;
      refreshed_at = d.now();
    } else {
      CHECK(d.now() - login <= 90min);
      CHECK(d.read()["keepalive"]["sessionStart"] == log::iso8601(login));  // kept
    }
  }
  REQUIRE(refreshed);
  CHECK(checks >= 10);
  // The refresh renewed the session: it starts again from there.
  CHECK(d.read()["keepalive"]["sessionStart"] == log::iso8601(refreshed_at));
  d.fire();
  d.answer(200, kHome);
  CHECK(d.http.empty());
  CHECK(d.read()["keepalive"]["sessionStart"] == log::iso8601(refreshed_at));
}

TEST_CASE("refresh_when from the keepalive block: a block without sessionStart refreshes once",
          "[refresh_when][cycle]") {
  Driver d(nics_profile(""));
  testing::CapturedLogs logs;
  // Written by a sessiond without refresh_when: when the session began is unknown.
  d.write(session_doc(d.wall0 - 1min));
  d.start();
  d.fire();
  d.answer(200, kHome);
  REQUIRE(d.http.size() == 1);
  d.answer(200, R"({"token": "T"})");
  CHECK(logs.count("session_age_unknown") == 1);
  CHECK(logs.mentions("\"from\":\"keepalive.sessionStart\"") == 1);
  CHECK(d.read()["keepalive"]["sessionStart"] == log::iso8601(d.now()));
  // Known from here on.
  d.fire();
  d.answer(200, kHome);
  CHECK(d.http.empty());
  CHECK(d.report().outcome == CycleOutcome::success);
}

TEST_CASE("markers in the cycle: the account's name from the file, or a transient error",
          "[marker][cycle]") {
  Driver d(R"({
    "name": "named", "base_url": "http://127.0.0.1:1", "interval": "5m", "idle_timeout": "10m",
    "check": {"path": "/panel",
              "logged_in": [{"status": 200, "body_contains": "{field:/account/name}"}],
              "logged_out": [{"status": 200, "body_not_contains": "{field:/account/name}"}]},
    "retry": {"base": "2s", "max": "30s"}
  })");
  json doc = session_doc(d.wall0 - 1min);
  SECTION("present: logged in when the page shows it") {
    doc["account"] = {{"name", "Seyed (.*)"}};
    d.write(doc);
    d.start();
    d.fire();
    d.answer(200, "<app-profile-top-bar>Seyed (.*)</app-profile-top-bar>", "s1");
    CHECK(d.report().outcome == CycleOutcome::success);
    CHECK(d.read()["cookies"][0]["value"] == "s1");
  }
  SECTION("missing: transient, never disposed") {
    d.write(doc);
    d.start();
    d.fire();
    d.answer(200, "<html>Sign in</html>");
    CHECK(d.report().outcome == CycleOutcome::transient_error);
    CHECK(d.report().detail ==
          "check: HTTP 200 (logged_out marker: {field:/account/name} is empty or missing in the "
          "session file)");
    CHECK(fs::exists(d.path));
    CHECK(d.status().state != SessionState::invalid);
  }
}

TEST_CASE("markers in the cycle: a browser step's text from the file", "[marker][cycle]") {
  Driver d(R"({
    "name": "rade-like", "base_url": "http://127.0.0.1:1", "interval": "5m", "idle_timeout": "10m",
    "check": {"browser": {"url": "/", "wait_for_network_idle": true,
              "wait_for": [{"selector": "app-profile-top-bar", "text": "{field:/account/name}"}],
              "logged_out": {"url_contains": "/login"}}}
  })");
  json doc = session_doc(d.wall0 - 1min);
  SECTION("present") {
    doc["account"] = {{"name", "Seyed 'Ali' \"K\""}};
    d.write(doc);
    d.start();
    d.fire();
    REQUIRE(d.browsers.size() == 1);
    const auto& spec = d.browsers.front().request.spec;
    CHECK(spec.wait_network_idle);
    REQUIRE(spec.wait_for.size() == 1);
    CHECK(spec.wait_for[0].selector == std::optional<std::string>("app-profile-top-bar"));
    CHECK(spec.wait_for[0].text == std::optional<std::string>("Seyed 'Ali' \"K\""));
    BrowserStepResult ok;
    ok.verdict = BrowserStepResult::Verdict::logged_in;
    d.done(d.browsers.front().tag, ok);
    CHECK(d.report().outcome == CycleOutcome::success);
  }
  SECTION("empty: no page load, a transient error") {
    doc["account"] = {{"name", ""}};
    d.write(doc);
    d.start();
    d.fire();
    CHECK(d.browsers.empty());
    CHECK(d.report().outcome == CycleOutcome::transient_error);
    CHECK(d.report().detail ==
          "check: page text {field:/account/name} is empty or missing in the session file");
    CHECK(d.status().state == SessionState::retrying);
    REQUIRE_FALSE(d.schedules.empty());
    CHECK(d.schedules.back().delay <= Millis(30000));  // retried with backoff
  }
}
