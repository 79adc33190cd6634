// A profile's state_pointer: session files whose Playwright storage state is
// nested under a key (nics24's bot writes {"storageState": {...}, ...}).

#include <catch2/catch.hpp>

#include <string>

#include "cycle_driver.hpp"
#include "sessiond/exec_step.hpp"
#include "sessiond/profile.hpp"
#include "sessiond/session_file.hpp"

using namespace sessiond;
using namespace std::chrono_literals;
using json = nlohmann::json;
using namespace cycle_test;

namespace {

// kRefreshProfile with the storage state under /storageState.
std::string nested_profile(const std::string& base = testing::kRefreshProfile) {
  std::string text = base;
  auto at = text.find("\"jitter\": 0.1,");
  REQUIRE(at != std::string::npos);
  text.insert(at, "\"state_pointer\": \"/storageState\", ");
  return text;
}

// session_doc() as nics24's bot lays it out: cookies and origins nested,
// the bot's own fields and sessiond's keepalive block at the top.
json nested_doc(std::optional<WallTime> last_refresh, const std::string& sid = "s0") {
  json flat = session_doc(last_refresh, sid);
  json doc = flat;
  doc.erase("cookies");
  doc.erase("origins");
  doc["storageState"] = {{"cookies", flat["cookies"]}, {"origins", flat["origins"]}};
  doc["createdAt"] = "2026-01-02T03:04:05.000Z";
  return doc;
}

}  // namespace

TEST_CASE("state_pointer: parsed as a JSON pointer, a bad one names the key", "[state_pointer]") {
  CHECK(parse_profile(testing::kRefreshProfile).state_pointer.empty());
  CHECK(parse_profile(nested_profile()).state_pointer == json::json_pointer("/storageState"));
  auto with = [](const std::string& value) {
    std::string text = testing::kRefreshProfile;
    text.insert(text.find("\"jitter\""), "\"state_pointer\": " + value + ", ");
    return text;
  };
  CHECK(parse_profile(with("\"\"")).state_pointer.empty());
  CHECK_THROWS_WITH(parse_profile(with("\"storageState\"")),
                    Catch::Contains("state_pointer") && Catch::Contains("JSON pointer"));
  CHECK_THROWS_WITH(parse_profile(with("\"/a~2\"")), Catch::Contains("state_pointer"));
  CHECK_THROWS_AS(parse_profile(with("3")), ProfileError);
  CHECK_THROWS_WITH(parse_profile(with("3")), Catch::Contains("state_pointer"));
}

TEST_CASE("state_pointer: the schema is checked at the pointer, errors name the path",
          "[state_pointer]") {
  const json::json_pointer at("/storageState");
  json doc = nested_doc(std::nullopt);
  CHECK(std::holds_alternative<json>(parse_session(doc.dump(), at)));
  // Read at the top level, a nested file has no cookies.
  CHECK(std::get<FileError>(parse_session(doc.dump())).kind == FileErrorKind::schema);
  auto error_of = [&](const json& d) {
    auto r = parse_session(d.dump(), at);
    REQUIRE(std::holds_alternative<FileError>(r));
    CHECK(std::get<FileError>(r).kind == FileErrorKind::schema);
    return std::get<FileError>(r).message;
  };
  json no_cookies = doc;
  no_cookies["storageState"].erase("cookies");
  CHECK_THAT(error_of(no_cookies), Catch::Contains("storageState.cookies"));
  json bad_cookie = doc;
  bad_cookie["storageState"]["cookies"][0].erase("domain");
  CHECK_THAT(error_of(bad_cookie), Catch::Contains("storageState.cookies[0]"));
  json bad_origins = doc;
  bad_origins["storageState"]["origins"] = 1;
  CHECK_THAT(error_of(bad_origins), Catch::Contains("storageState.origins"));
  json flat = session_doc(std::nullopt);
  CHECK_THAT(error_of(flat), Catch::Contains("storageState"));
  json not_object = doc;
  not_object["storageState"] = json::array();
  CHECK_THAT(error_of(not_object), Catch::Contains("storageState"));
}

TEST_CASE("state_pointer: {cookie:NAME} reads the nested cookies", "[state_pointer]") {
  const json::json_pointer at("/storageState");
  const json doc = nested_doc(std::nullopt, "nested-sid");
  const std::string id = "x", base = "http://127.0.0.1:1";
  CHECK(expand_template("{cookie:sid}", TemplateContext{id, doc, base, {}, nullptr, &at}) ==
        "nested-sid");
  // Without the pointer the top level has no cookies.
  CHECK(expand_template("{cookie:sid}", TemplateContext{id, doc, base, {}, nullptr}).empty());
}

TEST_CASE("state_pointer: a cycle sends the nested cookies and saves rotated ones there",
          "[state_pointer]") {
  Driver d(nested_profile());
  d.write(nested_doc(d.wall0 - 1min));
  d.start();
  REQUIRE(d.schedules.size() == 1);
  CHECK(d.schedules[0].delay <= 240s);  // the keepalive block was read: not overdue
  d.fire();
  REQUIRE(d.http.size() == 1);
  CHECK(sid_of(d.http.front().request) == std::optional<std::string>("s0"));
  d.refresh_ok("s1");
  CHECK(d.report().outcome == CycleOutcome::success);
  const json saved = d.read();
  CHECK_FALSE(saved.contains("cookies"));
  CHECK_FALSE(saved.contains("origins"));
  REQUIRE(saved["storageState"]["cookies"].size() == 1);
  CHECK(saved["storageState"]["cookies"][0]["name"] == "sid");
  CHECK(saved["storageState"]["cookies"][0]["value"] == "s1");
  CHECK(saved["storageState"]["origins"] == nested_doc(std::nullopt)["storageState"]["origins"]);
  CHECK(saved["createdAt"] == "2026-01-02T03:04:05.000Z");
  CHECK(saved["botField"] == 42);
  CHECK(saved["keepalive"]["refreshCount"] == 8);
  CHECK(saved["keepalive"]["state"] == "active");
  CHECK(saved["headers"]["Authorization"] == "Bearer T1");
  // The next cycle sends the rotated cookie.
  d.fire();
  REQUIRE(d.http.size() == 1);
  CHECK(sid_of(d.http.front().request) == std::optional<std::string>("s1"));
}

TEST_CASE("state_pointer: a nested file without storageState.cookies is a file error naming it",
          "[state_pointer]") {
  Driver d(nested_profile());
  json doc = nested_doc(d.wall0 - 20min);
  doc["storageState"].erase("cookies");
  d.write(doc);
  d.start();
  REQUIRE_FALSE(d.schedules.empty());
  d.fire();
  CHECK(d.http.empty());
  CHECK(d.status().state == SessionState::file_error);
  REQUIRE(d.status().last_error);
  CHECK_THAT(*d.status().last_error,
             Catch::Contains("schema") && Catch::Contains("storageState.cookies"));
  CHECK(d.report().outcome == CycleOutcome::file_error);
  CHECK(d.read() == doc);  // left untouched
}

TEST_CASE("state_pointer: an exec step gets the whole file, cookies as they are now",
          "[state_pointer]") {
  const std::string exec_profile = R"({
  "name": "exec", "base_url": "http://127.0.0.1:1", "interval": "5m", "idle_timeout": "10m", "jitter": 0.1,
  "refresh": {"exec": ["/usr/local/bin/renew", "{file}", "{id}"], "timeout": "20s"},
  "retry": {"base": "2s", "max": "30s"}
})";
  Driver d(nested_profile(exec_profile));
  d.write(nested_doc(d.wall0 - 20min));
  d.start();
  d.fire();
  REQUIRE(d.execs.size() == 1);
  const auto& job = d.execs.front().job;
  CHECK(job.state_pointer == json::json_pointer("/storageState"));
  CHECK(job.session["createdAt"] == "2026-01-02T03:04:05.000Z");
  CHECK_FALSE(job.session.contains("cookies"));
  REQUIRE(job.session["storageState"]["cookies"].size() == 1);
  CHECK(job.session["storageState"]["cookies"][0]["value"] == "s0");
  // Its cookie values are secrets to redact from its output.
  json secret_doc = nested_doc(std::nullopt, "a-long-cookie-value");
  auto secrets = session_secrets(secret_doc, json::json_pointer("/storageState"));
  CHECK(std::find(secrets.begin(), secrets.end(), "a-long-cookie-value") != secrets.end());
}

TEST_CASE("state_pointer: a browser step gets the nested state and saves the page's there",
          "[state_pointer]") {
  Driver d(nested_profile());
  BrowserStepSpec spec;
  spec.url = "/pwa";
  PageCondition home;
  home.selector = "div.homeSection";
  spec.wait_for.push_back(home);
  d.profile->check->browser = spec;
  d.profile->refresh.reset();
  d.write(nested_doc(d.wall0 - 1min));
  d.start();
  d.refresh_now();
  REQUIRE(d.browsers.size() == 1);
  auto run = d.browsers.front();
  d.browsers.pop_front();
  CHECK(run.request.state["cookies"] == json::array({cookie("sid", "s0")}));
  CHECK(run.request.state["origins"][0]["localStorage"][0]["value"] == "v");
  CHECK_FALSE(run.request.state.contains("createdAt"));
  BrowserStepResult r;
  r.verdict = BrowserStepResult::Verdict::logged_in;
  r.cookies = json::array({cookie("sid", "b1")});
  r.origins = json::array();
  d.done(run.tag, r);
  CHECK(d.report().outcome == CycleOutcome::success);
  const json saved = d.read();
  CHECK(saved["storageState"]["cookies"] == json::array({cookie("sid", "b1")}));
  CHECK(saved["storageState"]["origins"] == json::array());
  CHECK_FALSE(saved.contains("cookies"));
  CHECK(saved["createdAt"] == "2026-01-02T03:04:05.000Z");
  CHECK(saved["keepalive"]["refreshCount"] == 8);
}
