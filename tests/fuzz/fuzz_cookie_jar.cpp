// libFuzzer target: the cookie conversion between a session file's Playwright
// cookies and the Netscape lines libcurl's cookie engine reads and writes.
// Input: a JSON object {"cookies": [Playwright cookies], "jar": [lines]}; the
// "jar" lines stand for what libcurl returns after a transfer (they carry the
// site's Set-Cookie values). Invariants: no exception, crash or UB; every line
// handed to libcurl is one line; a save + load cycle changes nothing; what
// sessiond would write back loads as a session file again.

#include <cstddef>
#include <cstdint>
#include <exception>
#include <string>

#include "fuzz_check.hpp"
#include "sessiond/cookie_jar.hpp"
#include "sessiond/profile.hpp"
#include "sessiond/session_file.hpp"

using namespace sessiond;
using json = nlohmann::json;

namespace {

// The cookies array as sessiond would save it (the rest of the file aside).
void check_saveable(const json& cookies, const char* what) {
  auto again = parse_session(serialize_session(json{{"cookies", cookies}}));
  if (auto* err = std::get_if<FileError>(&again))
    FUZZ_FAIL(std::string(what) + " gives a file sessiond rejects: " + err->message);
}

void check_lines(const CookieLines& jar) {
  for (const auto& line : jar)
    FUZZ_CHECK(line.find_first_of("\r\n") == std::string::npos,
               "a jar line must be one line (libcurl reads each as a cookie-file line)");
}

void run(const json& input) {
  const json cookies = input.is_object() && input.contains("cookies") ? input["cookies"] : input;
  // sessiond builds jars only from files that passed parse_session().
  if (std::holds_alternative<FileError>(
          parse_session(serialize_session(json{{"cookies", cookies}}))))
    return;

  // Load: Playwright -> jar.
  const CookieLines jar = jar_from_playwright(cookies);
  check_lines(jar);

  // A transfer that changed nothing, then save: the same cookies, loadable,
  // and loading them again gives the same jar.
  const json saved = playwright_from_jar(cookies, jar);
  FUZZ_CHECK(saved.is_array() && saved.size() <= jar.size(), "one cookie per jar line at most");
  check_saveable(saved, "saving an unchanged jar");
  FUZZ_CHECK(jar_from_playwright(saved) == jar, "save + load changed the jar");
  FUZZ_CHECK(playwright_from_jar(saved, jar) == saved, "saving twice is not idempotent");

  // A transfer that returned other lines (Set-Cookie from the site).
  if (input.is_object() && input.contains("jar") && input["jar"].is_array()) {
    CookieLines after = jar;
    for (const auto& line : input["jar"])
      if (line.is_string()) after.push_back(line.get<std::string>());
    const json merged = playwright_from_jar(cookies, after);
    FUZZ_CHECK(merged.is_array(), "merged cookies are an array");
    check_saveable(merged, "saving a jar after Set-Cookie");
    const CookieLines reloaded = jar_from_playwright(merged);
    check_lines(reloaded);
    FUZZ_CHECK(jar_from_playwright(playwright_from_jar(merged, reloaded)) == reloaded,
               "save + load after Set-Cookie is not stable");
    // Captures: a value from the site's response (JSON body or header) goes
    // into the jar ("to": "cookie:NAME") or the file's headers.
    static const Profile profile = parse_profile(R"({
      "base_url": "https://baman24.ir:443",
      "refresh": {"method": "POST", "path": "/api/refresh", "capture": [
        {"from": "json:/token", "to": "cookie:captured", "format": "{value}"},
        {"from": "header:X-Token", "to": "header:Authorization", "format": "Bearer {value}"}]}
    })");
    for (const auto& line : input["jar"]) {
      if (!line.is_string()) continue;
      const std::string v = line.get<std::string>();
      (void)url_host(v);
      HttpResponse response;
      response.status = 200;
      response.body = json{{"token", v}}.dump();
      response.headers = {{"x-token", v}};
      json doc = {{"cookies", merged}};
      CookieLines j = reloaded;
      (void)apply_captures(*profile.refresh, response, profile.base_url, doc, j);
      check_lines(j);
      doc["cookies"] = playwright_from_jar(doc["cookies"], j);
      check_saveable(doc["cookies"], "saving a captured cookie");
      if (!v.empty() && v.find_first_of("\r\n") == std::string::npos &&
          !jar_value(reloaded, "captured"))
        FUZZ_CHECK(jar_value(j, "captured") == v, "a captured cookie reads back");
      if (doc.contains("headers"))
        for (auto& [name, value] : doc["headers"].items())
          FUZZ_CHECK(value.get<std::string>().find_first_of("\r\n") == std::string::npos,
                     "a captured header value must be one line");
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const json input = json::parse(data, data + size, nullptr, false);
  if (input.is_discarded()) return 0;
  try {
    run(input);
  } catch (const std::exception& e) {
    FUZZ_FAIL(std::string("exception escaped: ") + e.what());
  }
  return 0;
}
