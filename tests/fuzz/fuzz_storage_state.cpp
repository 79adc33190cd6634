// libFuzzer target: the conversion between a session file's Playwright
// storage state and Chromium's DevTools cookies and localStorage
// (src/storage_state.cpp). Input: a JSON object {"cookies": [Playwright
// cookies], "cdp": [Network.Cookie], "origins": [...], "origin": "...",
// "items": [["name", "value"], ...]}. Invariants: no exception, crash or UB;
// the CookieParams are ones Chromium accepts (one bad cookie fails the whole
// Storage.setCookies call); the cookies read back are always an array of
// Playwright cookies that a session file can hold; set then get gives the
// same cookie for every one in Playwright's form; a second cycle changes
// nothing; the origins hold `origin` once, with exactly `items`.

#include <cstddef>
#include <cstdint>
#include <exception>
#include <string>
#include <utility>
#include <vector>

#include "fuzz_check.hpp"
#include "sessiond/session_file.hpp"
#include "sessiond/storage_state.hpp"

using namespace sessiond;
using json = nlohmann::json;

namespace {

bool same_site_word(const json& v) {
  return v.is_string() && (v == "Strict" || v == "Lax" || v == "None");
}

void check_params(const json& params, const json& input_cookies) {
  FUZZ_CHECK(params.is_array(), "CookieParams are an array");
  FUZZ_CHECK(params.size() <= (input_cookies.is_array() ? input_cookies.size() : 0),
             "one CookieParam per Playwright cookie at most");
  for (const auto& p : params) {
    FUZZ_CHECK(p.is_object() && p.contains("name") && p["name"].is_string() &&
                   p.contains("value") && p["value"].is_string() && p.contains("domain") &&
                   p["domain"].is_string() && p.contains("path") && p["path"].is_string() &&
                   p.contains("secure") && p["secure"].is_boolean() && p.contains("httpOnly") &&
                   p["httpOnly"].is_boolean(),
               "a CookieParam has name, value, domain, path, secure and httpOnly");
    FUZZ_CHECK(!p.contains("url"), "no url: the domain says host-only or domain cookie");
    FUZZ_CHECK(!p.contains("partitionKey"), "partitioned cookies are not set");
    const auto name = p["name"].get<std::string>();
    const auto value = p["value"].get<std::string>();
    const auto domain = p["domain"].get<std::string>();
    const auto path = p["path"].get<std::string>();
    FUZZ_CHECK(!domain.empty() && !path.empty() && path.front() == '/',
               "Chromium rejects an empty domain or a relative path");
    FUZZ_CHECK(!name.empty() || !value.empty(), "Chromium rejects an empty name and value");
    FUZZ_CHECK(name.find('=') == std::string::npos, "Chromium rejects '=' in a name");
    for (const std::string* s : {&name, &value})
      for (char ch : *s)
        FUZZ_CHECK(static_cast<unsigned char>(ch) >= 0x20 && ch != 0x7f && ch != ';',
                   "Chromium rejects control characters and ';' in a name or value");
    if (p.contains("sameSite")) {
      FUZZ_CHECK(same_site_word(p["sameSite"]), "sameSite is Strict, Lax or None");
      FUZZ_CHECK(p["sameSite"] != "None" || p["secure"] == true,
                 "Chromium drops sameSite None without secure");
    }
    if (p.contains("expires"))
      FUZZ_CHECK(p["expires"].is_number() && p["expires"].get<double>() >= 0,
                 "expires is sent for persistent cookies only");
    (void)p.dump();  // the driver sends it: valid UTF-8
  }
}

// What Chromium reports for CookieParams it stored (Storage.getCookies).
json chromium_stores(const json& params) {
  json cookies = json::array();
  for (const auto& p : params) {
    json c = p;
    const bool session = !p.contains("expires");
    c["expires"] = session ? json(-1) : p["expires"];
    c["session"] = session;
    c["priority"] = "Medium";
    cookies.push_back(std::move(c));
  }
  return cookies;
}

bool equals_a_previous(const json& c, const json& previous) {
  if (!previous.is_array()) return false;
  for (const auto& p : previous)
    if (p == c) return true;
  return false;
}

// `saveable`: the previous cookies came from a file sessiond accepts, so the
// result must be one too.
void check_playwright(const json& cookies, const json& previous, bool saveable) {
  FUZZ_CHECK(cookies.is_array(), "Playwright cookies are an array");
  for (const auto& c : cookies) {
    if (c.contains("partitionKey") && !c["partitionKey"].is_null()) {
      FUZZ_CHECK(equals_a_previous(c, previous),
                 "a partitioned cookie is a previous one, as it was");
      continue;
    }
    auto has = [&](const char* key, bool (json::*is)() const noexcept) {
      return c.contains(key) && (c[key].*is)();
    };
    FUZZ_CHECK(c.is_object() && has("name", &json::is_string) && has("value", &json::is_string) &&
                   has("domain", &json::is_string) && has("path", &json::is_string) &&
                   has("expires", &json::is_number) && has("httpOnly", &json::is_boolean) &&
                   has("secure", &json::is_boolean) && c.contains("sameSite") &&
                   same_site_word(c["sameSite"]),
               "a cookie in Playwright's form");
    FUZZ_CHECK(!c["domain"].get<std::string>().empty(), "a cookie has a domain");
    const double expires = c["expires"].get<double>();
    FUZZ_CHECK(expires == -1 || expires > 0, "expires is -1 or a time");
  }
  if (!saveable) return;
  auto reparsed = parse_session(serialize_session(json{{"cookies", cookies}}));
  if (auto* err = std::get_if<FileError>(&reparsed))
    FUZZ_FAIL("the cookies give a file sessiond rejects: " + err->message);
}

// A Playwright cookie that set + get must give back unchanged: all eight
// fields, a valid sameSite, expires -1 or a time up to year 9999.
bool in_playwright_form(const json& c) {
  if (!c.is_object() || !c.contains("name") || !c.contains("value") || !c.contains("domain") ||
      !c.contains("path") || !c.contains("expires") || !c.contains("httpOnly") ||
      !c.contains("secure") || !c.contains("sameSite"))
    return false;
  if (!c["expires"].is_number() || !same_site_word(c["sameSite"]) || !c["path"].is_string() ||
      c["path"] == "")
    return false;
  if (c.contains("partitionKey")) return false;
  const double e = c["expires"].get<double>();
  return e == -1 || (e > 0 && e <= 253402300799.0);
}

void run_cookies(const json& input) {
  const json cookies = input.contains("cookies") ? input["cookies"] : json();
  const bool saveable = !std::holds_alternative<FileError>(
      parse_session(serialize_session(json{{"cookies", cookies}})));
  const json params = cdp_cookie_params_from_playwright(cookies);
  check_params(params, cookies);

  // Set, then get.
  const json read = playwright_cookies_from_cdp(chromium_stores(params), cookies);
  check_playwright(read, cookies, saveable);
  if (cookies.is_array()) {
    for (const auto& c : cookies) {
      if (!in_playwright_form(c) || cdp_cookie_params_from_playwright(json::array({c})).empty())
        continue;
      FUZZ_CHECK(equals_a_previous(c, read), "set then get changed a Playwright cookie");
    }
  }
  // A second cycle changes nothing.
  const json params2 = cdp_cookie_params_from_playwright(read);
  check_params(params2, read);
  const json read2 = playwright_cookies_from_cdp(chromium_stores(params2), read);
  FUZZ_CHECK(read2 == read, "a second set + get changed the cookies");
  FUZZ_CHECK(cdp_cookie_params_from_playwright(read2) == params2, "CookieParams are not stable");

  // What an arbitrary browser answer gives.
  if (input.contains("cdp")) {
    const json from_cdp = playwright_cookies_from_cdp(input["cdp"], cookies);
    check_playwright(from_cdp, cookies, saveable);
    const json p = cdp_cookie_params_from_playwright(from_cdp);
    check_params(p, from_cdp);
    const json again = playwright_cookies_from_cdp(chromium_stores(p), from_cdp);
    check_playwright(again, from_cdp, saveable);
    FUZZ_CHECK(cdp_cookie_params_from_playwright(again) == p,
               "CookieParams of a browser's cookies are not stable");
  }
}

void run_origins(const json& input) {
  const json previous = input.contains("origins") ? input["origins"] : json();
  const std::string origin = input.contains("origin") && input["origin"].is_string()
                                 ? input["origin"].get<std::string>()
                                 : std::string("https://baman24.ir");
  std::vector<std::pair<std::string, std::string>> items;
  if (input.contains("items") && input["items"].is_array())
    for (const auto& it : input["items"])
      if (it.is_array() && it.size() == 2 && it[0].is_string() && it[1].is_string())
        items.emplace_back(it[0].get<std::string>(), it[1].get<std::string>());

  const json out = origins_with_local_storage(previous, origin, items);
  FUZZ_CHECK(out.is_array(), "origins are an array");
  FUZZ_CHECK(out.size() <= (previous.is_array() ? previous.size() : 0) + 1,
             "at most one origin added");
  json expected = json::array();
  for (const auto& [n, v] : items) expected.push_back({{"name", n}, {"value", v}});
  std::size_t found = 0;
  std::size_t others = 0;
  for (const auto& o : out) {
    FUZZ_CHECK(o.is_object() && o.contains("origin") && o["origin"].is_string(),
               "an origin entry has a string origin");
    if (o["origin"] == origin) {
      ++found;
      FUZZ_CHECK(o["localStorage"] == expected, "the origin's localStorage is exactly the items");
    } else {
      ++others;
      FUZZ_CHECK(equals_a_previous(o, previous), "other origins are kept as they were");
    }
  }
  FUZZ_CHECK(found == 1, "the origin appears exactly once");
  std::size_t previous_others = 0;
  if (previous.is_array())
    for (const auto& o : previous)
      if (o.is_object() && o.contains("origin") && o["origin"].is_string() && o["origin"] != origin)
        ++previous_others;
  FUZZ_CHECK(others == previous_others, "every other origin is kept");
  FUZZ_CHECK(origins_with_local_storage(out, origin, items) == out, "replacing twice changes it");
  auto as_file = [](const json& origins) {
    return parse_session(serialize_session(json{{"cookies", json::array()}, {"origins", origins}}));
  };
  if (!std::holds_alternative<FileError>(as_file(previous.is_array() ? previous : json::array())))
    FUZZ_CHECK(!std::holds_alternative<FileError>(as_file(out)), "the origins give a valid file");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  json input = json::parse(data, data + size, nullptr, false);
  if (input.is_discarded()) return 0;
  if (!input.is_object()) input = json{{"cookies", input}, {"cdp", input}, {"origins", input}};
  try {
    run_cookies(input);
    run_origins(input);
  } catch (const std::exception& e) {
    FUZZ_FAIL(std::string("exception escaped: ") + e.what());
  }
  return 0;
}
