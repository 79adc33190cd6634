#include <catch2/catch.hpp>
#include <string>

#include "sessiond/storage_state.hpp"

using namespace sessiond;
using json = nlohmann::json;

namespace {

json pw_cookie(const std::string& name, const std::string& value, const std::string& domain,
               json expires = -1, bool http_only = false, bool secure = false,
               const std::string& same_site = "Lax", const std::string& path = "/") {
  return {{"name", name},     {"value", value},       {"domain", domain},
          {"path", path},     {"expires", expires},   {"httpOnly", http_only},
          {"secure", secure}, {"sameSite", same_site}};
}

// What Chromium 156 answered in Storage.getCookies for a CookieParam that it
// accepted (checked by hand: see storage_state.hpp); no clamping, no
// canonicalisation.
json chromium_stores(const json& params) {
  json cookies = json::array();
  for (const auto& p : params) {
    json c = p;
    const bool session = !p.contains("expires");
    c["expires"] = session ? json(-1) : p["expires"];
    c["session"] = session;
    c["size"] = p["name"].get<std::string>().size() + p["value"].get<std::string>().size();
    c["priority"] = "Medium";
    c["sourceScheme"] = p["secure"].get<bool>() ? "Secure" : "NonSecure";
    c["sourcePort"] = p["secure"].get<bool>() ? 443 : 80;
    cookies.push_back(std::move(c));
  }
  return cookies;
}

json round_trip(const json& pw) {
  return playwright_cookies_from_cdp(chromium_stores(cdp_cookie_params_from_playwright(pw)), pw);
}

}  // namespace

TEST_CASE("Playwright cookies become CookieParams", "[storage_state]") {
  json pw = json::array({pw_cookie("sid", "s1", "baman24.ir", -1, true, true, "Lax"),
                         pw_cookie("refresh_token", "r1", ".baman24.ir", 1784890887.5, true, true,
                                   "Strict", "/api")});
  json params = cdp_cookie_params_from_playwright(pw);
  REQUIRE(params.size() == 2);
  // Host-only: the domain as it is, without a url (Chromium keeps it host-only).
  CHECK(params[0] == json{{"name", "sid"},
                          {"value", "s1"},
                          {"domain", "baman24.ir"},
                          {"path", "/"},
                          {"secure", true},
                          {"httpOnly", true},
                          {"sameSite", "Lax"}});
  CHECK_FALSE(params[0].contains("url"));
  CHECK_FALSE(params[0].contains("expires"));  // a session cookie
  // Domain cookie: the leading dot kept; a persistent expiry passed on.
  CHECK(params[1]["domain"] == ".baman24.ir");
  CHECK(params[1]["path"] == "/api");
  CHECK(params[1]["expires"] == 1784890887.5);
  CHECK(params[1]["sameSite"] == "Strict");
}

TEST_CASE("CookieParam defaults: path /, flags false, sameSite unspecified", "[storage_state]") {
  json params = cdp_cookie_params_from_playwright(
      json::array({{{"name", "a"}, {"value", "1"}, {"domain", "127.0.0.1"}},
                   {{"name", "b"}, {"value", "2"}, {"domain", "127.0.0.1"}, {"path", ""}},
                   {{"name", "c"}, {"value", "3"}, {"domain", "x.ir"}, {"sameSite", "lax"}},
                   {{"name", "d"}, {"value", "4"}, {"domain", "x.ir"}, {"expires", -5}}}));
  REQUIRE(params.size() == 4);
  CHECK(params[0] == json{{"name", "a"},
                          {"value", "1"},
                          {"domain", "127.0.0.1"},
                          {"path", "/"},
                          {"secure", false},
                          {"httpOnly", false}});
  CHECK(params[1]["path"] == "/");
  CHECK_FALSE(params[2].contains("sameSite"));  // not one of Strict, Lax, None
  CHECK_FALSE(params[3].contains("expires"));   // negative: a session cookie
}

TEST_CASE("sameSite None without secure is sent unspecified and read back as None",
          "[storage_state]") {
  json pw = json::array({pw_cookie("a", "1", "x.ir", -1, false, false, "None"),
                         pw_cookie("b", "2", "x.ir", -1, false, true, "None")});
  json params = cdp_cookie_params_from_playwright(pw);
  REQUIRE(params.size() == 2);
  CHECK_FALSE(params[0].contains("sameSite"));  // Chromium would drop the cookie
  CHECK(params[1]["sameSite"] == "None");
  CHECK(round_trip(pw) == pw);
  // Without that previous cookie, unspecified is "Lax" (as Playwright writes).
  json read = playwright_cookies_from_cdp(chromium_stores(params), json::array());
  CHECK(read[0]["sameSite"] == "Lax");
  CHECK(read[1]["sameSite"] == "None");
}

TEST_CASE("Cookies Chromium would reject are left out, the others kept", "[storage_state]") {
  json pw = json::array({
      pw_cookie("ok", "1", "x.ir"),
      pw_cookie("nodomain", "1", ""),
      pw_cookie("semi", "a;b", "x.ir"),
      pw_cookie("ctl", "a\nb", "x.ir"),
      pw_cookie("tab", "a\tb", "x.ir"),
      pw_cookie("a=b", "1", "x.ir"),
      pw_cookie(" lead", "1", "x.ir"),
      pw_cookie("trail", "1 ", "x.ir"),
      pw_cookie("", "", "x.ir"),
      pw_cookie("big", std::string(4094, 'v'), "x.ir"),
      pw_cookie("relpath", "1", "x.ir", -1, false, false, "Lax", "api"),
      pw_cookie("longpath", "1", "x.ir", -1, false, false, "Lax", "/" + std::string(1024, 'p')),
      pw_cookie("__Secure-a", "1", "x.ir", -1, false, false),
      pw_cookie("__Host-b", "1", ".x.ir", -1, false, true),
      pw_cookie("__host-c", "1", "x.ir", -1, false, true, "Lax", "/p"),
      pw_cookie("__Http-d", "1", "x.ir", -1, false, true),
      pw_cookie("bad", "1", "[::1"),
      pw_cookie("bad", "1", "::1"),
      pw_cookie("bad", "1", "."),
      pw_cookie("bad", "1", "..x.ir"),
      pw_cookie("bad", "1", "x.ir:8080"),
      pw_cookie("bad", "1", "x.1"),        // ends in a number: read as IPv4
      pw_cookie("bad", "1", "759.0.0.1"),  // not an IPv4 address
      pw_cookie("bad", "1", "063.0.0.1"),  // octal: Chromium would rewrite it
      pw_cookie("bad", "1", "[::EEEEE1]"),
      pw_cookie("trailing", "1", "x.ir", -1, false, false, "Lax", "/a "),
      pw_cookie("ctlpath", "1", "x.ir", -1, false, false, "Lax", "/a\x01"),
      pw_cookie("__Host-ok", "1", "x.ir", -1, false, true),
      pw_cookie("__Http-ok", "1", "x.ir", -1, true, true),
      pw_cookie("v6", "1", "[::1]"),
      pw_cookie("v4", "1", ".127.0.0.1"),
      pw_cookie("dot", "1", "x.ir."),
      pw_cookie("space", "1", "x.ir", -1, false, false, "Lax", "/a b"),
      pw_cookie("", "nameless", "x.ir"),
  });
  json params = cdp_cookie_params_from_playwright(pw);
  std::vector<std::string> names;
  for (const auto& p : params) names.push_back(p["name"].get<std::string>());
  CHECK(names ==
        std::vector<std::string>{"ok", "__Host-ok", "__Http-ok", "v6", "v4", "dot", "space", ""});
}

TEST_CASE("Wrong types are skipped, never thrown", "[storage_state]") {
  json pw = json::array({
      42,
      "text",
      nullptr,
      json::array(),
      {{"name", 1}, {"value", "1"}, {"domain", "x.ir"}},
      {{"name", "a"}, {"domain", "x.ir"}},
      {{"name", "a"}, {"value", "1"}, {"domain", "x.ir"}, {"httpOnly", "yes"}},
      {{"name", "a"}, {"value", "1"}, {"domain", "x.ir"}, {"secure", 1}},
      {{"name", "a"}, {"value", "1"}, {"domain", "x.ir"}, {"expires", "soon"}},
      {{"name", "a"}, {"value", "1"}, {"domain", "x.ir"}, {"path", json::object()}},
      {{"name", "ok"}, {"value", "1"}, {"domain", "x.ir"}, {"sameSite", 3}},
  });
  json params;
  REQUIRE_NOTHROW(params = cdp_cookie_params_from_playwright(pw));
  REQUIRE(params.size() == 1);
  CHECK(params[0]["name"] == "ok");
  CHECK_FALSE(params[0].contains("sameSite"));
  CHECK(cdp_cookie_params_from_playwright(json::object()) == json::array());
  CHECK(cdp_cookie_params_from_playwright(json()) == json::array());

  json read;
  REQUIRE_NOTHROW(read = playwright_cookies_from_cdp(pw, "junk"));
  REQUIRE(read.size() == 1);
  CHECK(read[0]["sameSite"] == "Lax");
  CHECK(playwright_cookies_from_cdp(json::object(), json::array()) == json::array());
  CHECK(playwright_cookies_from_cdp(
            json::array({{{"name", "a"}, {"value", "1"}, {"domain", "x.ir"}, {"session", 1}}}),
            nullptr) == json::array());
}

TEST_CASE("Network.Cookie becomes a Playwright cookie in Playwright's form", "[storage_state]") {
  json cdp = json::array({
      {{"name", "sid"},
       {"value", "s2"},
       {"domain", "baman24.ir"},
       {"path", "/"},
       {"expires", -1},
       {"size", 4},
       {"httpOnly", true},
       {"secure", true},
       {"session", true},
       {"priority", "Medium"},
       {"sourceScheme", "Secure"},
       {"sourcePort", 443}},
      {{"name", "refresh_token"},
       {"value", "r2"},
       {"domain", ".baman24.ir"},
       {"path", "/api"},
       {"expires", 1831107407.514541},
       {"httpOnly", true},
       {"secure", true},
       {"session", false},
       {"sameSite", "Strict"}},
  });
  json pw = playwright_cookies_from_cdp(cdp, json::array());
  REQUIRE(pw.size() == 2);
  CHECK(pw[0] == pw_cookie("sid", "s2", "baman24.ir", -1, true, true, "Lax"));
  CHECK(pw[1] == pw_cookie("refresh_token", "r2", ".baman24.ir", 1831107407.514541, true, true,
                           "Strict", "/api"));
  CHECK(pw[0].dump().find("priority") == std::string::npos);
}

TEST_CASE("session flag or a non-positive expires is a session cookie (-1)", "[storage_state]") {
  json cdp = json::array({
      {{"name", "a"}, {"value", "1"}, {"domain", "x.ir"}, {"expires", 1.9e9}, {"session", true}},
      {{"name", "b"}, {"value", "1"}, {"domain", "x.ir"}, {"expires", 0}},
      {{"name", "c"}, {"value", "1"}, {"domain", "x.ir"}},
      {{"name", "d"}, {"value", "1"}, {"domain", "x.ir"}, {"expires", 1.9e9}},
  });
  json pw = playwright_cookies_from_cdp(cdp, json::array());
  REQUIRE(pw.size() == 4);
  CHECK(pw[0]["expires"] == -1);
  CHECK(pw[1]["expires"] == -1);
  CHECK(pw[2]["expires"] == -1);
  CHECK(pw[3]["expires"] == 1.9e9);
}

TEST_CASE("Partitioned cookies are neither set nor read, and carried over", "[storage_state]") {
  json part = pw_cookie("chips", "p", "x.ir", -1, false, true, "None");
  part["partitionKey"] = "https://x.ir";
  json pw = json::array({pw_cookie("a", "1", "x.ir"), part});
  json params = cdp_cookie_params_from_playwright(pw);
  REQUIRE(params.size() == 1);
  json cdp = chromium_stores(params);
  json pk = cdp[0];
  pk["name"] = "chips";
  pk["partitionKey"] = {{"topLevelSite", "https://x.ir"}, {"hasCrossSiteAncestor", false}};
  cdp.push_back(pk);
  json read = playwright_cookies_from_cdp(cdp, pw);
  CHECK(read == pw);  // the browser's partitioned one ignored, the file's kept as it was
}

TEST_CASE("Set then get gives the same Playwright cookies", "[storage_state]") {
  json pw = json::array({
      pw_cookie("sid", "s1", "127.0.0.1", -1, true, false, "Lax"),
      pw_cookie("refresh_token", "r1", "127.0.0.1", 1784890887.25, true, false, "Lax"),
      pw_cookie("csrftoken", "c1", ".baman24.ir", -1, false, true, "Strict", "/api"),
      pw_cookie("pwa_access_token", "eyJ.x.y", "baman24.ir", 1753354887, false, true, "None"),
      pw_cookie("insecure_none", "v", "baman24.ir", -1, false, false, "None"),
  });
  CHECK(round_trip(pw) == pw);
  CHECK(round_trip(round_trip(pw)) == pw);
}

TEST_CASE("Unknown extra fields are kept for the same name, domain and path", "[storage_state]") {
  json old = pw_cookie("sid", "s1", "x.ir");
  old["partyId"] = {{"k", 1}};
  old["note"] = "keep me";
  json other = pw_cookie("sid", "s1", ".x.ir");  // another domain: another cookie
  other["note"] = "other";
  json previous = json::array({old, other});

  json cdp = chromium_stores(cdp_cookie_params_from_playwright(
      json::array({pw_cookie("sid", "s2", "x.ir"), pw_cookie("sid", "s3", ".x.ir"),
                   pw_cookie("sid", "s4", "x.ir", -1, false, false, "Lax", "/sub"),
                   pw_cookie("n", "1", "x.ir")})));
  json read = playwright_cookies_from_cdp(cdp, previous);
  REQUIRE(read.size() == 4);
  CHECK(read[0]["value"] == "s2");
  CHECK(read[0]["note"] == "keep me");
  CHECK(read[0]["partyId"] == json{{"k", 1}});
  CHECK(read[1]["value"] == "s3");
  CHECK(read[1]["note"] == "other");
  CHECK_FALSE(read[2].contains("note"));  // path /sub: a new cookie
  CHECK(read[2]["path"] == "/sub");
  CHECK(read[3]["name"] == "n");
}

TEST_CASE("Cookies keep the previous order; new ones follow; gone ones go", "[storage_state]") {
  json previous = json::array(
      {pw_cookie("a", "1", "x.ir"), pw_cookie("gone", "1", "x.ir"), pw_cookie("b", "1", "x.ir")});
  json cdp = chromium_stores(cdp_cookie_params_from_playwright(json::array(
      {pw_cookie("new", "1", "x.ir"), pw_cookie("b", "2", "x.ir"), pw_cookie("a", "2", "x.ir")})));
  json read = playwright_cookies_from_cdp(cdp, previous);
  REQUIRE(read.size() == 3);
  CHECK(read[0]["name"] == "a");
  CHECK(read[0]["value"] == "2");
  CHECK(read[1]["name"] == "b");
  CHECK(read[2]["name"] == "new");
}

TEST_CASE("origins_with_local_storage replaces one origin's localStorage", "[storage_state]") {
  json previous = json::array({
      {{"origin", "https://other.ir"},
       {"localStorage", json::array({{{"name", "k"}, {"value", "v"}}})}},
      {{"origin", "https://baman24.ir"},
       {"localStorage", json::array({{{"name", "old"}, {"value", "1"}}})},
       {"indexedDB", json::array()}},
  });
  json out = origins_with_local_storage(previous, "https://baman24.ir",
                                        {{"pwa_access_token", "t2"}, {"theme", "dark"}});
  REQUIRE(out.size() == 2);
  CHECK(out[0] == previous[0]);
  CHECK(out[1]["origin"] == "https://baman24.ir");
  CHECK(out[1]["indexedDB"] == json::array());  // unknown fields kept
  CHECK(out[1]["localStorage"] == json::array({{{"name", "pwa_access_token"}, {"value", "t2"}},
                                               {{"name", "theme"}, {"value", "dark"}}}));
}

TEST_CASE("origins_with_local_storage appends a missing origin, drops junk and duplicates",
          "[storage_state]") {
  json out = origins_with_local_storage(json::array(), "http://127.0.0.1:8080", {{"k", "v"}});
  CHECK(out == json::array({{{"origin", "http://127.0.0.1:8080"},
                             {"localStorage", json::array({{{"name", "k"}, {"value", "v"}}})}}}));
  CHECK(origins_with_local_storage("junk", "o", {}) ==
        json::array({{{"origin", "o"}, {"localStorage", json::array()}}}));

  json previous = json::array({1,
                               "s",
                               {{"origin", 5}},
                               {{"origin", "o"}, {"localStorage", 1}},
                               {{"origin", "p"}},
                               {{"origin", "o"}, {"localStorage", json::array()}}});
  json out2;
  REQUIRE_NOTHROW(out2 = origins_with_local_storage(previous, "o", {{"a", "b"}}));
  REQUIRE(out2.size() == 2);
  CHECK(out2[0]["origin"] == "o");
  CHECK(out2[0]["localStorage"] == json::array({{{"name", "a"}, {"value", "b"}}}));
  CHECK(out2[1] == json{{"origin", "p"}});
}
