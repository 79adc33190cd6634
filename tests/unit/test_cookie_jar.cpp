#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "sessiond/cookie_jar.hpp"
#include "test_support.hpp"

using namespace sessiond;
using sessiond::testing::sample_cookies;
using json = nlohmann::json;

namespace {

const json* find_cookie(const json& cookies, const std::string& name) {
  for (const auto& c : cookies)
    if (c["name"] == name) return &c;
  return nullptr;
}

// Replaces the value of cookie `name` in Netscape lines, as libcurl would on rotation.
void rotate(CookieLines& jar, const std::string& name, const std::string& value) {
  for (auto& line : jar) {
    auto tab = line.rfind('\t');
    auto prev = line.rfind('\t', tab - 1);
    if (line.substr(prev + 1, tab - prev - 1) == name) line = line.substr(0, tab + 1) + value;
  }
}

}  // namespace

TEST_CASE("Playwright cookies map to Netscape lines", "[cookie_jar]") {
  auto lines = jar_from_playwright(sample_cookies());
  REQUIRE(lines.size() == 3);
  // httpOnly -> #HttpOnly_ prefix; host-only domain -> FALSE; fractional expiry floored.
  CHECK(lines[0] == "#HttpOnly_baman24.ir\tFALSE\t/\tTRUE\t1753354887\tpwa_access_token\tjwt-1");
  // Leading dot -> include subdomains.
  CHECK(lines[1] == ".baman24.ir\tTRUE\t/api\tTRUE\t1784890887\trefresh_token\tr1");
  // Session cookie (-1) -> 0.
  CHECK(lines[2] == "baman24.ir\tFALSE\t/\tFALSE\t0\tcsrftoken\tc1");

  CHECK(jar_value(lines, "refresh_token") == std::optional<std::string>("r1"));
  CHECK(jar_value(lines, "pwa_access_token") == std::optional<std::string>("jwt-1"));
  CHECK_FALSE(jar_value(lines, "nope"));

  // Not an array: empty jar.
  CHECK(jar_from_playwright(json::object()).empty());
  CHECK(jar_from_playwright(json()).empty());
}

TEST_CASE("a cookie round trip keeps sameSite, extra fields and fractional expires",
          "[cookie_jar]") {
  const json original = sample_cookies();
  auto jar = jar_from_playwright(original);
  auto back = playwright_from_jar(original, jar);
  CHECK(back == original);
  CHECK(back[0]["expires"].get<double>() == 1753354887.55);
  CHECK(back[1]["sameSite"] == "Strict");
  CHECK(back[1]["partitionKey"] == "https://baman24.ir");
  CHECK(back[1]["_custom"]["kept"] == true);
  CHECK(back[2]["expires"] == -1);

  // Cookies missing optional fields get the mapped ones.
  json minimal = json::array({{{"name", "a"}, {"value", "1"}, {"domain", "x.test"}}});
  auto m = playwright_from_jar(minimal, jar_from_playwright(minimal));
  REQUIRE(m.size() == 1);
  CHECK(m[0]["name"] == "a");
  CHECK(m[0]["value"] == "1");
  CHECK(m[0]["domain"] == "x.test");
  CHECK(m[0]["httpOnly"] == false);
  CHECK(m[0]["secure"] == false);
  CHECK_FALSE(m[0].contains("sameSite"));  // not added to cookies the bot wrote

  // A fractional expiry below one second survives as well (0 would mean "session").
  json tiny =
      json::array({{{"name", "t"}, {"value", "1"}, {"domain", "x.test"}, {"expires", 0.5}}});
  auto tiny_jar = jar_from_playwright(tiny);
  REQUIRE(tiny_jar.size() == 1);
  CHECK(tiny_jar[0].find("\t1\tt\t") != std::string::npos);
  CHECK(playwright_from_jar(tiny, tiny_jar)[0]["expires"].get<double>() == 0.5);
}

TEST_CASE("rotation, expiry changes, deletion and new cookies map back", "[cookie_jar]") {
  const json original = sample_cookies();
  auto jar = jar_from_playwright(original);

  SECTION("a rotated value updates only the value") {
    rotate(jar, "pwa_access_token", "jwt-2");
    auto back = playwright_from_jar(original, jar);
    REQUIRE(back.size() == 3);
    json expected = original;
    expected[0]["value"] = "jwt-2";
    CHECK(back == expected);
    CHECK(back[0]["expires"].get<double>() == 1753354887.55);
  }

  SECTION("a new expiry replaces the fractional one") {
    jar[0] = "#HttpOnly_baman24.ir\tFALSE\t/\tTRUE\t1753358487\tpwa_access_token\tjwt-2";
    auto back = playwright_from_jar(original, jar);
    REQUIRE(back.size() == 3);
    CHECK(back[0]["expires"].get<double>() == 1753358487.0);
    CHECK(back[0]["value"] == "jwt-2");
    CHECK(back[0]["sameSite"] == "None");
  }

  SECTION("flags follow the jar") {
    jar[2] = "#HttpOnly_baman24.ir\tFALSE\t/\tTRUE\t0\tcsrftoken\tc1";
    auto back = playwright_from_jar(original, jar);
    const json* c = find_cookie(back, "csrftoken");
    REQUIRE(c);
    CHECK((*c)["httpOnly"] == true);
    CHECK((*c)["secure"] == true);
    CHECK((*c)["expires"] == -1);  // still a session cookie
    CHECK((*c)["sameSite"] == "Lax");
  }

  SECTION("a cookie absent from the jar is removed") {
    jar.erase(jar.begin() + 1);
    auto back = playwright_from_jar(original, jar);
    REQUIRE(back.size() == 2);
    CHECK(back[0] == original[0]);
    CHECK(back[1] == original[2]);
    CHECK_FALSE(find_cookie(back, "refresh_token"));
  }

  SECTION("a cookie with the same name on another path or domain is a different cookie") {
    // refresh_token moves from .baman24.ir/api to baman24.ir/ : the old one goes, a new one comes.
    jar[1] = "baman24.ir\tFALSE\t/\tTRUE\t1784890887\trefresh_token\tr2";
    auto back = playwright_from_jar(original, jar);
    REQUIRE(back.size() == 3);
    const json* r = find_cookie(back, "refresh_token");
    REQUIRE(r);
    CHECK((*r)["domain"] == "baman24.ir");
    CHECK((*r)["path"] == "/");
    CHECK((*r)["value"] == "r2");
    CHECK((*r)["sameSite"] == "Lax");
    CHECK_FALSE(r->contains("partitionKey"));
  }

  SECTION("a new cookie gets sameSite Lax and mapped fields") {
    jar.push_back("#HttpOnly_.baman24.ir\tTRUE\t/app\tTRUE\t1800000000\tsid\tnew-session");
    jar.push_back("baman24.ir\tFALSE\t/\tFALSE\t0\tsession_only\tv");
    auto back = playwright_from_jar(original, jar);
    REQUIRE(back.size() == 5);
    // Existing cookies first, in their order.
    CHECK(back[0]["name"] == "pwa_access_token");
    CHECK(back[1]["name"] == "refresh_token");
    CHECK(back[2]["name"] == "csrftoken");
    const json& sid = back[3];
    CHECK(sid["name"] == "sid");
    CHECK(sid["value"] == "new-session");
    CHECK(sid["domain"] == ".baman24.ir");
    CHECK(sid["path"] == "/app");
    CHECK(sid["expires"].get<double>() == 1800000000.0);
    CHECK(sid["httpOnly"] == true);
    CHECK(sid["secure"] == true);
    CHECK(sid["sameSite"] == "Lax");
    const json& so = back[4];
    CHECK(so["expires"].get<double>() == -1.0);
    CHECK(so["httpOnly"] == false);
    CHECK(so["secure"] == false);
    CHECK(so["domain"] == "baman24.ir");
  }

  SECTION("comments and malformed lines in the jar are ignored") {
    jar.insert(jar.begin(), "# Netscape HTTP Cookie File");
    jar.push_back("not\ta\tcookie");
    jar.push_back("x.test\tFALSE\t/\tFALSE\tnot-a-number\tn\tv");
    auto back = playwright_from_jar(original, jar);
    CHECK(back == original);
  }

  SECTION("an empty jar removes everything") {
    CHECK(playwright_from_jar(original, {}).empty());
  }
}

TEST_CASE("invalid Playwright cookies are skipped, never thrown on", "[cookie_jar]") {
  json cookies = json::array({
      {{"name", "ok"}, {"value", "1"}, {"domain", "x.test"}},
      {{"value", "no-name"}, {"domain", "x.test"}},
      {{"name", "num"}, {"value", 5}, {"domain", "x.test"}},
      {{"name", "nodomain"}, {"value", "1"}},
      {{"name", "emptydomain"}, {"value", "1"}, {"domain", ""}},
      {{"name", "tab\tname"}, {"value", "1"}, {"domain", "x.test"}},
      {{"name", "nl"}, {"value", "a\r\nb"}, {"domain", "x.test"}},
      {{"name", "badsecure"}, {"value", "1"}, {"domain", "x.test"}, {"secure", "yes"}},
      {{"name", "badpath"}, {"value", "1"}, {"domain", "x.test"}, {"path", 7}},
      {{"name", "badhttponly"}, {"value", "1"}, {"domain", "x.test"}, {"httpOnly", 1}},
      "not an object",
      nullptr,
  });
  CookieLines jar;
  REQUIRE_NOTHROW(jar = jar_from_playwright(cookies));
  REQUIRE(jar.size() == 1);
  CHECK(jar_value(jar, "ok") == std::optional<std::string>("1"));
  json back;
  REQUIRE_NOTHROW(back = playwright_from_jar(cookies, jar));
  REQUIRE(back.size() == 1);
  CHECK(back[0]["name"] == "ok");
}

TEST_CASE("jar_set adds or replaces a host-only cookie", "[cookie_jar]") {
  CookieLines jar = jar_from_playwright(sample_cookies());
  jar_set(jar, "baman24.ir", "pwa_access_token", "captured");
  CHECK(jar.size() == 3);
  CHECK(jar_value(jar, "pwa_access_token") == std::optional<std::string>("captured"));
  jar_set(jar, "baman24.ir", "pwa_access_token", "captured-2");
  CHECK(jar.size() == 3);
  CHECK(jar_value(jar, "pwa_access_token") == std::optional<std::string>("captured-2"));
  // A new name adds a line; another host is another cookie.
  jar_set(jar, "baman24.ir", "new", "n");
  CHECK(jar.size() == 4);
  jar_set(jar, "other.test", "new", "o");
  CHECK(jar.size() == 5);
  CHECK(jar.back() == "other.test\tFALSE\t/\tFALSE\t0\tnew\to");

  // A captured cookie replacing a known one keeps the known cookie's extra fields.
  CookieLines fresh = jar_from_playwright(sample_cookies());
  jar_set(fresh, "baman24.ir", "csrftoken", "c2");
  auto back = playwright_from_jar(sample_cookies(), fresh);
  const json* c = find_cookie(back, "csrftoken");
  REQUIRE(c);
  CHECK((*c)["value"] == "c2");
  CHECK((*c)["sameSite"] == "Lax");
  CHECK(back.size() == 3);
}

TEST_CASE("url_host extracts the host name", "[cookie_jar]") {
  CHECK(url_host("https://baman24.ir") == "baman24.ir");
  CHECK(url_host("https://baman24.ir/pwa") == "baman24.ir");
  CHECK(url_host("http://127.0.0.1:8080") == "127.0.0.1");
  CHECK(url_host("https://a.b:8443/x") == "a.b");
  CHECK(url_host("https://a.b?q=1") == "a.b");
  CHECK(url_host("https://a.b#frag") == "a.b");
  CHECK(url_host("https://user:pw@a.b:1/x") == "a.b");
  CHECK(url_host("http://[::1]:8080/x") == "::1");
  CHECK(url_host("http://[2001:db8::1]/") == "2001:db8::1");
  CHECK(url_host("https://[fe80::1]") == "fe80::1");
  CHECK(url_host("a.b/x") == "a.b");
  CHECK(url_host("") == "");
}

// Found by the fuzz targets (tests/fuzz, docs/RELIABILITY.md "Fuzzing").
TEST_CASE("fuzzing: hostile cookies never corrupt the jar or the file", "[cookie_jar]") {
  // expires 1e300 converted to long long was undefined behaviour: clamped,
  // and the file keeps its value.
  json far = json::array({{{"name", "a"},
                           {"value", "1"},
                           {"domain", "x.test"},
                           {"expires", 1e300},
                           {"httpOnly", false},
                           {"secure", false}}});
  auto jar = jar_from_playwright(far);
  REQUIRE(jar.size() == 1);
  CHECK(jar[0].find("\t253402300799\t") != std::string::npos);
  CHECK(playwright_from_jar(far, jar) == far);

  // A tab or line break in domain or path, or a domain starting with '#',
  // made a different cookie (or a comment) of the line: skipped.
  json bad =
      json::array({{{"name", "a"}, {"value", "1"}, {"domain", "x.test\r\nevil"}},
                   {{"name", "b"}, {"value", "1"}, {"domain", "x.test"}, {"path", "/\tTRUE"}},
                   {{"name", "c"}, {"value", "1"}, {"domain", "#HttpOnly_x.test"}},
                   {{"name", "d"}, {"value", "1"}, {"domain", "x.test"}}});
  auto lines = jar_from_playwright(bad);
  REQUIRE(lines.size() == 1);
  CHECK(jar_value(lines, "d") == std::optional<std::string>("1"));

  // An empty path is "/": the cookie keeps its fields through a save.
  json empty_path = json::array({{{"name", "a"},
                                  {"value", "1"},
                                  {"domain", "x.test"},
                                  {"path", ""},
                                  {"sameSite", "Strict"},
                                  {"httpOnly", false},
                                  {"secure", false}}});
  CHECK(playwright_from_jar(empty_path, jar_from_playwright(empty_path)) == empty_path);

  // The same cookie twice: a save changes nothing (it added a copy each time),
  // and libcurl's one line for it leaves one cookie.
  json twice = json::array({{{"name", "a"},
                             {"value", "1"},
                             {"domain", "x.test"},
                             {"path", "/"},
                             {"httpOnly", false},
                             {"secure", false}},
                            {{"name", "a"},
                             {"value", "2"},
                             {"domain", "x.test"},
                             {"path", "/"},
                             {"httpOnly", false},
                             {"secure", false}}});
  auto both = jar_from_playwright(twice);
  CHECK(playwright_from_jar(twice, both) == twice);
  auto one = playwright_from_jar(twice, {both[1]});
  REQUIRE(one.size() == 1);
  CHECK(one[0]["value"] == "2");

  // A cookie the jar cannot carry (a line break in its value) never took the
  // jar line of a later cookie with the same name, domain and path: that one
  // keeps its line and its place (a save + load reordered the cookies).
  json shadowed = json::array({{{"name", "a"}, {"value", "x\r\ny"}, {"domain", "x.test"}},
                               {{"name", "b"}, {"value", "1"}, {"domain", "x.test"}},
                               {{"name", "a"}, {"value", "2"}, {"domain", "x.test"}}});
  auto shadowed_jar = jar_from_playwright(shadowed);
  REQUIRE(shadowed_jar.size() == 2);
  auto saved = playwright_from_jar(shadowed, shadowed_jar);
  REQUIRE(saved.size() == 2);
  CHECK(saved[0]["name"] == "b");
  CHECK(saved[1]["value"] == "2");
  CHECK(jar_from_playwright(saved) == shadowed_jar);
}
