#pragma once
// A site profile: what "check" and "refresh" mean for one website, as data.
// See README "Profile format". Parsing validates everything up front and names
// the offending field in the error.

#include <chrono>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "sessiond/backoff.hpp"
#include "sessiond/browser_step.hpp"
#include "sessiond/duration.hpp"
#include "sessiond/http_client.hpp"

namespace re2 {
class RE2;
}

namespace sessiond {

// What one step's response says about the session.
enum class Verdict { logged_in, logged_out, transient };
const char* to_string(Verdict v);

struct ProfileError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// All present conditions must hold (AND); a step's rule list matches when any
// rule does (OR). body_contains and body_not_contains are templates, expanded
// per session and then matched literally (see Step::evaluate).
struct Rule {
  std::vector<std::pair<int, int>> status;  // inclusive ranges; empty = any status
  std::optional<std::string> redirect_contains;
  std::optional<std::string> body_contains;
  std::optional<std::string> body_not_contains;
  std::optional<nlohmann::json::json_pointer> json_pointer;
  std::optional<nlohmann::json> equals;  // with json_pointer; absent: the pointer must exist
};

struct Capture {
  enum class From { json, header } from = From::json;
  std::string source;  // JSON pointer text or header name
  enum class To { header, cookie } to = To::header;
  std::string target;              // header or cookie name
  std::string format = "{value}";  // e.g. "Bearer {value}"
  bool required = false;           // a missing value makes the step transient
};

struct TemplateContext;

struct Step {
  std::string name;  // "check" or "refresh"
  std::string method = "GET";
  std::string path;  // appended to base_url; may be absolute URL
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::vector<std::string> exec;      // non-empty: run this command instead of HTTP
  std::vector<std::string> exec_env;  // variables an exec command gets from sessiond's environment
  // Set: load a page in the browser pool instead. Its url is a template
  // (expanded per session; a path is relative to base_url).
  std::optional<BrowserStepSpec> browser;
  Millis timeout{15000};
  std::vector<Rule> logged_in;   // empty: any 2xx
  std::vector<Rule> logged_out;  // checked first
  std::vector<Capture> captures;

  bool is_exec() const { return !exec.empty(); }
  bool is_browser() const { return browser.has_value(); }
  // The rules' markers expanded for the session in `ctx`. A marker whose
  // placeholder expands to nothing (a missing or empty field) would match any
  // page, so that decides nothing: transient, and `problem` (when given) says
  // which placeholder, never its value.
  Verdict evaluate(const HttpResponse& response, const TemplateContext& ctx,
                   std::string* problem = nullptr) const;
  // Without a session: a templated marker cannot be expanded (transient).
  Verdict evaluate(const HttpResponse& response) const;
};

// refresh_when: the refresh step runs only when the session is older than
// `older_than` (the check still runs every interval).
struct RefreshWhen {
  Millis older_than{0};
  // The session's start, from a session-file field (a JSON pointer); unset:
  // the keepalive block's sessionStart (see README "Profile format").
  std::optional<nlohmann::json::json_pointer> from;
  std::string from_text;  // for logs: "/createdAt" or "keepalive.sessionStart"
};

// A token whose expiry bounds the session (e.g. a JWT access token).
struct TokenDeadline {
  enum class From { cookie, header } from = From::cookie;
  std::string name;
  std::string pattern;                    // RE2 syntax; group 1 (or the whole match) is the JWT
  std::shared_ptr<const re2::RE2> regex;  // compiled pattern (shared: profiles are copied)
  Millis margin{120000};                  // refresh this long before exp
};

struct CircuitBreakerPolicy {
  double failure_ratio = 0.5;  // open when this share of recent requests failed transiently
  int min_requests = 20;       // ... out of at least this many in the window
  Millis window{30000};
  Millis open_for{15000};  // then let one probe through (half-open)
};

struct Profile {
  std::string name;
  std::string base_url;
  Millis interval{std::chrono::minutes(5)};
  Millis idle_timeout{std::chrono::minutes(10)};
  double jitter = 0.1;  // refreshes land in [interval*(1-jitter), interval]
  std::vector<std::pair<std::string, std::string>> default_headers;
  std::optional<Step> check;
  std::optional<Step> refresh;
  std::optional<RefreshWhen> refresh_when;  // unset: the refresh runs after every check
  std::optional<TokenDeadline> token_deadline;
  // Where the storage state (cookies, origins) lives in a session file: a
  // JSON pointer; empty = the top level (Playwright's own files).
  nlohmann::json::json_pointer state_pointer;
  RetryPolicy retry;
  std::size_t max_in_flight = 64;          // HTTP requests toward the site at once
  double rate_limit_per_second = 0;        // 0: unlimited
  double rate_limit_burst = 0;             // token bucket size (0: = rate)
  std::size_t exec_max_concurrent = 2;     // external commands at once
  std::size_t browser_max_concurrent = 0;  // browser steps at once; 0 = the number of cores
  CircuitBreakerPolicy circuit;
};

// Browser steps of this profile at once: browser.max_concurrent, 0 meaning
// the number of cores (at least one).
std::size_t browser_slots(const Profile& profile);

// Whether the check or the refresh is a browser step (the daemon then needs
// the browser pool).
bool uses_browser(const Profile& profile);

// Parses profile JSON (comments allowed). Throws ProfileError naming the field.
Profile parse_profile(const std::string& text);
// `bytes`, if given, receives the file's content as parsed (a reload compares
// what was read, not a second read that an edit may have changed).
Profile load_profile(const std::string& path, std::string* bytes = nullptr);

// What a template may refer to: {id}, {file}, {base_url}, {cookie:NAME},
// {header:NAME} (the session file's "headers"), {field:/json/pointer}.
struct TemplateContext {
  const std::string& id;
  const nlohmann::json& session;  // the session file document
  const std::string& base_url;
  std::string file;                               // exec steps only
  const std::vector<std::string>* jar = nullptr;  // current cookies, preferred over the file's
  const nlohmann::json::json_pointer* state = nullptr;  // the profile's state_pointer; null: top
};
std::string expand_template(const std::string& text, const TemplateContext& ctx);
// expand_template for a marker matched against a page (a rule's body_contains,
// a browser condition's text): nullopt when a placeholder expands to nothing,
// and `empty` (when given) names that placeholder, e.g. "{field:/name}".
std::optional<std::string> expand_marker(const std::string& text, const TemplateContext& ctx,
                                         std::string* empty = nullptr);
// Expands the text of each of the browser step's conditions for one session.
// Returns the first placeholder that expands to nothing (nothing expanded is
// then usable), nullopt when all expanded.
std::optional<std::string> expand_page_conditions(BrowserStepSpec& spec,
                                                  const TemplateContext& ctx);

// A point in time in a session-file field: a number of seconds since the
// epoch, or of milliseconds when 1e11 or more (JavaScript's Date.now()), or an
// RFC 3339 string with a zone ("2025-01-23T10:30:00.000Z", "...+03:30").
// nullopt: anything else, or outside 1970..2199.
std::optional<std::chrono::system_clock::time_point> parse_time_value(const nlohmann::json& v);
// RFC 3339 with "Z" or a numeric offset, fractional seconds optional.
std::optional<std::chrono::system_clock::time_point> parse_rfc3339(std::string_view text);

// The HTTP request for a step: URL, profile default headers, the session
// file's "headers" (captured tokens, bot-provided Authorization), step headers
// and body, all templated; `cookies` is the session's jar in libcurl form.
HttpRequest make_request(const Profile& profile, const Step& step, const TemplateContext& ctx,
                         std::vector<std::string> cookies);

// Applies the step's captures from `response` into the session document
// ("headers" object) and the jar lines. Returns false when a required capture
// is missing.
bool apply_captures(const Step& step, const HttpResponse& response, const std::string& base_url,
                    nlohmann::json& session, std::vector<std::string>& jar);

// exp of the profile's deadline token in this session, if present. `state`:
// where the cookies are (the profile's state_pointer).
std::optional<std::chrono::system_clock::time_point> token_expiry(
    const TokenDeadline& deadline, const nlohmann::json& session,
    const nlohmann::json::json_pointer& state = nlohmann::json::json_pointer());

// exp claim of a JWT (no signature check: we only schedule by it); nullopt
// when absent or outside 1970..2199.
std::optional<std::int64_t> jwt_exp(std::string_view jwt);

}  // namespace sessiond
