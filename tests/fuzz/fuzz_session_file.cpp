// libFuzzer target: session files. Their bytes come from the login bot, an
// operator, or anyone who can write to the sessions directory, so
// parse_session() must reject anything malformed with a FileError (never an
// exception, a crash or UB), and whatever it accepts must survive what
// sessiond does next: read and rewrite its keepalive block, serialise and
// reload the file, read a token's expiry, and build requests from the file's
// cookies and headers (no header injection).

#include <cstddef>
#include <cstdint>
#include <exception>
#include <string>
#include <string_view>

#include "fuzz_check.hpp"
#include "sessiond/cookie_jar.hpp"
#include "sessiond/json_log.hpp"
#include "sessiond/profile.hpp"
#include "sessiond/session_file.hpp"

using namespace sessiond;
using json = nlohmann::json;

namespace {

// A profile that uses every template source a session file feeds.
const Profile& profile() {
  static const Profile p = parse_profile(R"({
    "base_url": "https://baman24.ir",
    "headers": {"X-Session": "{id}", "X-Token": "{header:Authorization}"},
    "check": {
      "method": "POST", "path": "/pwa?m={id}&t={cookie:csrftoken}",
      "headers": {"X-CSRFToken": "{cookie:csrftoken}", "X-Origin": "{field:/origins/0/origin}"},
      "body": {"mobile": "{id}", "state": "{field:/keepalive/state}", "c": "{cookie:sid}"}
    },
    "token_deadline": {"from": "cookie:pwa_access_token", "margin": "2m"}
  })");
  return p;
}

bool same(const KeepaliveBlock& a, const KeepaliveBlock& b) {
  return a.state == b.state && a.last_refresh == b.last_refresh &&
         a.refresh_count == b.refresh_count && a.last_error == b.last_error &&
         a.invalid_since == b.invalid_since;
}

json parsed_ok(const std::string& text, const char* what) {
  auto again = parse_session(text);
  if (auto* err = std::get_if<FileError>(&again))
    FUZZ_FAIL(std::string(what) + " does not load again: " + err->message);
  return std::get<json>(std::move(again));
}

// A request header sessiond hands to libcurl: "Name: value" on one line.
bool well_formed_header(const std::string& line) {
  if (line.find_first_of("\r\n") != std::string::npos) return false;
  auto colon = line.find(':');
  if (colon == 0 || colon == std::string::npos) return false;
  for (std::size_t i = 0; i < colon; ++i) {
    unsigned char c = static_cast<unsigned char>(line[i]);
    if (c <= 32 || c >= 127) return false;
  }
  return true;
}

void check_accepted(json doc) {
  FUZZ_CHECK(doc.is_object() && doc.contains("cookies") && doc["cookies"].is_array(),
             "an accepted session has a cookies array");

  // What sessiond writes loads again, as the same document.
  FUZZ_CHECK(parsed_ok(serialize_session(doc), "serialize_session()") == doc,
             "serialise + parse is the identity");

  // Its own keepalive block: read, write back, read again; nothing else changes.
  const KeepaliveBlock k = read_keepalive(doc);
  json rewritten = doc;
  write_keepalive(rewritten, k);
  json reloaded = parsed_ok(serialize_session(rewritten), "a file with a rewritten keepalive");
  FUZZ_CHECK(same(read_keepalive(reloaded), k), "keepalive block round trip");
  json a = doc, b = reloaded;
  a.erase("keepalive");
  b.erase("keepalive");
  FUZZ_CHECK(a == b, "write_keepalive() touched fields other than keepalive");

  // Timestamps the bot or an earlier run wrote.
  for (const auto& ts : {k.last_refresh, k.invalid_since}) {
    if (!ts) continue;
    if (auto tp = parse_iso8601(*ts)) {
      auto text = log::iso8601(*tp);
      FUZZ_CHECK(parse_iso8601(text) == tp, "parse_iso8601(iso8601(t)) != t for " + text);
    }
  }

  // The token deadline, from a cookie and from a header (RE2 over values of
  // any size: the hand-written matcher it replaced was checked here).
  const TokenDeadline& by_cookie = *profile().token_deadline;
  (void)token_expiry(by_cookie, doc);
  TokenDeadline by_header = by_cookie;
  by_header.from = TokenDeadline::From::header;
  by_header.name = "Authorization";
  (void)token_expiry(by_header, doc);

  // A request built from the file: templates expanded, headers merged.
  const std::string id = "09120000000";
  TemplateContext ctx{id, doc, profile().base_url, "/tmp/session-09120000000.json", nullptr};
  auto jar = jar_from_playwright(doc["cookies"]);
  ctx.jar = &jar;
  HttpRequest req = make_request(profile(), *profile().check, ctx, jar);
  for (const auto& h : req.headers)
    FUZZ_CHECK(well_formed_header(h), "request header is not one \"Name: value\" line");
  FUZZ_CHECK(req.url.rfind(profile().base_url + "/pwa?m=" + id, 0) == 0, "request URL");
}

// The same bytes read as a file whose storage state is nested (a profile's
// state_pointer, nics24's {"storageState": {...}} layout).
void check_nested(std::string_view text) {
  static const json::json_pointer at("/storageState");
  auto parsed = parse_session(text, at);
  if (auto* err = std::get_if<FileError>(&parsed)) {
    FUZZ_CHECK(!err->message.empty(), "a nested-layout error says what is wrong");
    return;
  }
  const json& doc = std::get<json>(parsed);
  const json* state = storage_state_of(doc, at);
  FUZZ_CHECK(
      state && state->is_object() && state->contains("cookies") && (*state)["cookies"].is_array(),
      "an accepted nested session has storageState.cookies");
  auto again = parse_session(serialize_session(doc), at);
  FUZZ_CHECK(std::holds_alternative<json>(again) && std::get<json>(again) == doc,
             "nested layout: serialise + parse is the identity");
  (void)jar_from_playwright((*state)["cookies"]);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    check_nested(text);
    auto parsed = parse_session(text);
    if (auto* err = std::get_if<FileError>(&parsed)) {
      FUZZ_CHECK(!err->message.empty(), "an error says what is wrong");
      // Bad JSON is a parse error; well-formed JSON that is no session file a schema error.
      const bool is_json = json::accept(text);
      FUZZ_CHECK(err->kind == (is_json ? FileErrorKind::schema : FileErrorKind::parse),
                 std::string("error kind ") + to_string(err->kind) + ": " + err->message);
      return 0;
    }
    check_accepted(std::get<json>(std::move(parsed)));
  } catch (const std::exception& e) {
    FUZZ_FAIL(std::string("exception escaped: ") + e.what());
  }
  return 0;
}
