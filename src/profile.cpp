#include "sessiond/profile.hpp"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <sstream>
#include <thread>

#include <re2/re2.h>

#include "sessiond/cookie_jar.hpp"
#include "sessiond/session_file.hpp"

namespace sessiond {
namespace {

using json = nlohmann::json;

[[noreturn]] void fail(const std::string& field, const std::string& what) {
  throw ProfileError(field + ": " + what);
}

const json* optional_field(const json& obj, const char* key) {
  auto it = obj.find(key);
  return it == obj.end() || it->is_null() ? nullptr : &*it;
}

std::string get_string(const json& obj, const char* key, const std::string& field,
                       std::string fallback = {}) {
  const json* v = optional_field(obj, key);
  if (!v) return fallback;
  if (!v->is_string()) fail(field + "." + key, "expected a string");
  return v->get<std::string>();
}

Millis get_duration(const json& obj, const char* key, const std::string& field, Millis fallback) {
  const json* v = optional_field(obj, key);
  if (!v) return fallback;
  std::optional<Millis> d;
  if (v->is_number()) {
    // Bounded as parse_duration: converting 1e300 to an integer is undefined.
    double ms = v->get<double>() * 1000;
    if (ms > 0 && ms <= 1e12) d = Millis(static_cast<Millis::rep>(ms));
  } else if (v->is_string()) {
    d = parse_duration(v->get<std::string>());
  }
  if (!d || d->count() <= 0)
    fail(field + "." + key, "expected a positive duration such as \"5m\", \"30s\" or \"500ms\"");
  return *d;
}

double get_number(const json& obj, const char* key, const std::string& field, double fallback,
                  double lo, double hi) {
  const json* v = optional_field(obj, key);
  if (!v) return fallback;
  if (!v->is_number()) fail(field + "." + key, "expected a number");
  double d = v->get<double>();
  if (d < lo || d > hi)
    fail(field + "." + key, "must be between " + std::to_string(lo) + " and " + std::to_string(hi));
  return d;
}

// An HTTP field name: visible ASCII without ':' (no space, no line break).
bool valid_header_name(std::string_view name) {
  if (name.empty()) return false;
  for (char ch : name) {
    auto c = static_cast<unsigned char>(ch);
    if (c <= ' ' || c >= 127 || c == ':') return false;
  }
  return true;
}

std::vector<std::pair<std::string, std::string>> get_headers(const json& obj, const char* key,
                                                             const std::string& field) {
  std::vector<std::pair<std::string, std::string>> out;
  const json* v = optional_field(obj, key);
  if (!v) return out;
  if (!v->is_object()) fail(field + "." + key, "expected an object of header name -> value");
  for (auto& [name, value] : v->items()) {
    if (!value.is_string()) fail(field + "." + key + "." + name, "expected a string");
    if (!valid_header_name(name)) fail(field + "." + key + "." + name, "not a valid header name");
    out.emplace_back(name, value.get<std::string>());
  }
  return out;
}

// allow_file: {file} names an exec step's copy of the session; a marker
// matched against a page has no such thing.
void check_template(const std::string& text, const std::string& field, bool allow_value,
                    bool allow_file = true) {
  std::size_t pos = 0;
  while ((pos = text.find('{', pos)) != std::string::npos) {
    auto end = text.find('}', pos);
    if (end == std::string::npos) return;  // a lone brace is literal (JSON bodies)
    std::string name = text.substr(pos + 1, end - pos - 1);
    bool known = name == "id" || (allow_file && name == "file") || name == "base_url" ||
                 (allow_value && name == "value") || name.rfind("cookie:", 0) == 0 ||
                 name.rfind("header:", 0) == 0 || name.rfind("field:/", 0) == 0;
    // Literal JSON such as {"a":1} contains quotes or colons first: not a placeholder.
    bool looks_like_placeholder = !name.empty() && name.find_first_of("\" {") == std::string::npos;
    if (looks_like_placeholder && !known)
      fail(field, "unknown placeholder {" + name + "} (known: {id}, " +
                      (allow_file ? "{file}, " : "") +
                      "{base_url}, {cookie:NAME}, {header:NAME}, {field:/json/pointer}" +
                      (allow_value ? ", {value}" : "") + ")");
    if (looks_like_placeholder && name.rfind("field:/", 0) == 0) {
      try {
        (void)json::json_pointer(name.substr(6));
      } catch (const json::exception&) {
        fail(field, "{" + name + "}: not a JSON pointer (\"~\" must be followed by 0 or 1)");
      }
    }
    // A literal brace may enclose placeholders (a JSON body): look inside it.
    pos = looks_like_placeholder ? end + 1 : pos + 1;
  }
}

std::pair<int, int> parse_status(const json& v, const std::string& field) {
  if (v.is_number_integer()) {
    auto s = v.get<std::int64_t>();  // get<int> would wrap 4294967496 to 200
    if (s < 100 || s > 599) fail(field, "HTTP status must be 100..599");
    return {static_cast<int>(s), static_cast<int>(s)};
  }
  if (v.is_string()) {
    auto s = v.get<std::string>();
    if (s.size() == 3 && s[0] >= '1' && s[0] <= '5' && s[1] == 'x' && s[2] == 'x') {
      int base = (s[0] - '0') * 100;
      return {base, base + 99};
    }
  }
  fail(field, "expected a status code such as 302 or a class such as \"2xx\"");
}

Rule parse_rule(const json& v, const std::string& field) {
  if (!v.is_object()) fail(field, "expected a rule object");
  static const char* known[] = {"status",        "redirect_contains",
                                "body_contains", "body_not_contains",
                                "json_pointer",  "equals"};
  for (auto& [k, _] : v.items())
    if (std::find(std::begin(known), std::end(known), k) == std::end(known))
      fail(field + "." + k,
           "unknown rule field (known: status, redirect_contains, "
           "body_contains, body_not_contains, json_pointer, equals)");
  Rule r;
  if (const json* s = optional_field(v, "status")) {
    if (s->is_array()) {
      for (std::size_t i = 0; i < s->size(); ++i)
        r.status.push_back(parse_status((*s)[i], field + ".status[" + std::to_string(i) + "]"));
    } else {
      r.status.push_back(parse_status(*s, field + ".status"));
    }
  }
  if (optional_field(v, "redirect_contains"))
    r.redirect_contains = get_string(v, "redirect_contains", field);
  // Markers are templates ({field:/name}: the account's own name on the page).
  if (optional_field(v, "body_contains")) {
    r.body_contains = get_string(v, "body_contains", field);
    check_template(*r.body_contains, field + ".body_contains", false, false);
  }
  if (optional_field(v, "body_not_contains")) {
    r.body_not_contains = get_string(v, "body_not_contains", field);
    check_template(*r.body_not_contains, field + ".body_not_contains", false, false);
  }
  if (optional_field(v, "json_pointer")) {
    auto text = get_string(v, "json_pointer", field);
    try {
      r.json_pointer = json::json_pointer(text);
    } catch (const json::exception& e) {
      fail(field + ".json_pointer", std::string("not a JSON pointer: ") + e.what());
    }
  }
  if (v.contains("equals")) {
    if (!r.json_pointer) fail(field + ".equals", "needs json_pointer");
    r.equals = v["equals"];
  }
  return r;
}

std::vector<Rule> parse_rules(const json& step, const char* key, const std::string& field) {
  std::vector<Rule> out;
  const json* v = optional_field(step, key);
  if (!v) return out;
  if (!v->is_array()) fail(field + "." + key, "expected an array of rules");
  for (std::size_t i = 0; i < v->size(); ++i)
    out.push_back(parse_rule((*v)[i], field + "." + key + "[" + std::to_string(i) + "]"));
  return out;
}

Capture parse_capture(const json& v, const std::string& field) {
  if (!v.is_object()) fail(field, "expected a capture object");
  Capture c;
  auto from = get_string(v, "from", field);
  if (from.rfind("json:", 0) == 0) {
    c.from = Capture::From::json;
    c.source = from.substr(5);
    try {
      (void)json::json_pointer(c.source);
    } catch (const json::exception&) {
      fail(field + ".from", "\"json:\" must be followed by a JSON pointer such as /token");
    }
  } else if (from.rfind("header:", 0) == 0 && from.size() > 7) {
    c.from = Capture::From::header;
    c.source = from.substr(7);
  } else {
    fail(field + ".from", "expected \"json:/pointer\" or \"header:Name\"");
  }
  auto to = get_string(v, "to", field);
  if (to.rfind("header:", 0) == 0 && valid_header_name(std::string_view(to).substr(7))) {
    c.to = Capture::To::header;
    c.target = to.substr(7);
  } else if (to.rfind("cookie:", 0) == 0 && to.size() > 7) {
    c.to = Capture::To::cookie;
    c.target = to.substr(7);
  } else {
    fail(field + ".to", "expected \"header:Name\" or \"cookie:NAME\"");
  }
  c.format = get_string(v, "format", field, "{value}");
  check_template(c.format, field + ".format", true);
  if (const json* r = optional_field(v, "required")) {
    if (!r->is_boolean()) fail(field + ".required", "expected true or false");
    c.required = r->get<bool>();
  }
  return c;
}

// A page condition: a CSS selector (a bare string) or an object of
// selector, text and url_contains (all present must hold).
PageCondition parse_condition(const json& v, const std::string& field) {
  PageCondition c;
  if (v.is_string()) {
    c.selector = v.get<std::string>();
    if (c.selector->empty()) fail(field, "expected a non-empty CSS selector");
    return c;
  }
  if (!v.is_object())
    fail(field, "expected a condition object such as {\"selector\": \"div.homeSection\"}");
  static const char* known[] = {"selector", "text", "url_contains"};
  for (auto& [k, _] : v.items())
    if (std::find(std::begin(known), std::end(known), k) == std::end(known))
      fail(field + "." + k, "unknown condition field (known: selector, text, url_contains)");
  auto one = [&](const char* key, std::optional<std::string>& out) {
    if (!optional_field(v, key)) return;
    out = get_string(v, key, field);
    if (out->empty()) fail(field + "." + key, "must not be empty");
  };
  one("selector", c.selector);
  one("text", c.text);
  // The text is a template, expanded per session (the account's own name).
  if (c.text) check_template(*c.text, field + ".text", false, false);
  one("url_contains", c.url_contains);
  if (!c.selector && !c.text && !c.url_contains)
    fail(field, "needs at least one of selector, text, url_contains");
  return c;
}

// One condition (a string or an object) or an array of them.
std::vector<PageCondition> parse_conditions(const json& obj, const char* key,
                                            const std::string& field) {
  std::vector<PageCondition> out;
  const json* v = optional_field(obj, key);
  if (!v) return out;
  const std::string name = field + "." + key;
  if (!v->is_array()) {
    out.push_back(parse_condition(*v, name));
    return out;
  }
  if (v->empty()) fail(name, "expected at least one condition");
  for (std::size_t i = 0; i < v->size(); ++i)
    out.push_back(parse_condition((*v)[i], name + "[" + std::to_string(i) + "]"));
  return out;
}

BrowserStepSpec parse_browser(const json& v, const std::string& field) {
  if (!v.is_object())
    fail(field,
         "expected an object such as {\"url\": \"/pwa\", \"wait_for\": \"div.homeSection\"}");
  static const char* known[] = {"url",    "wait_for", "logged_out", "wait_for_network_idle",
                                "settle", "timeout"};
  for (auto& [k, _] : v.items())
    if (std::find(std::begin(known), std::end(known), k) == std::end(known))
      fail(field + "." + k,
           "unknown field (known: url, wait_for, logged_out, wait_for_network_idle, settle, "
           "timeout)");
  BrowserStepSpec b;
  b.url = get_string(v, "url", field);
  if (b.url.empty()) fail(field + ".url", "required");
  if (b.url.front() != '/' && b.url.front() != '{' && b.url.rfind("http://", 0) != 0 &&
      b.url.rfind("https://", 0) != 0)
    fail(field + ".url", "expected a path such as \"/pwa\" or an http(s) URL");
  if (std::any_of(b.url.begin(), b.url.end(),
                  [](char ch) { return static_cast<unsigned char>(ch) <= ' '; }))
    fail(field + ".url", "must not contain spaces or control characters");
  check_template(b.url, field + ".url", false);
  b.wait_for = parse_conditions(v, "wait_for", field);
  if (b.wait_for.empty()) fail(field + ".wait_for", "required: what the page shows when logged in");
  b.logged_out = parse_conditions(v, "logged_out", field);
  if (const json* n = optional_field(v, "wait_for_network_idle")) {
    if (!n->is_boolean()) fail(field + ".wait_for_network_idle", "expected true or false");
    b.wait_network_idle = n->get<bool>();
  }
  b.timeout = get_duration(v, "timeout", field, b.timeout);
  if (const json* s = optional_field(v, "settle")) {
    if (s->is_string() && s->get<std::string>() == "networkidle") {
      b.settle_network_idle = true;
    } else {
      // 0 is allowed here: read the state as soon as wait_for matches.
      std::optional<Millis> d;
      if (s->is_number()) {
        double ms = s->get<double>() * 1000;
        if (ms >= 0 && ms <= 1e12) d = Millis(static_cast<Millis::rep>(ms));
      } else if (s->is_string()) {
        d = parse_duration(s->get<std::string>());
      }
      if (!d || d->count() < 0)
        fail(field + ".settle", "expected a duration such as \"500ms\", or \"networkidle\"");
      b.settle = *d;
    }
  }
  if (!b.settle_network_idle && b.settle >= b.timeout)
    fail(field + ".settle", "must be shorter than timeout (" + format_duration(b.timeout) + ")");
  return b;
}

// "env": ["NAME", ...]: variables passed through from sessiond's environment
// (the command gets no others but PATH, HOME, LANG, LC_ALL, TZ and TMPDIR).
std::vector<std::string> parse_exec_env(const json& v, const std::string& field) {
  std::vector<std::string> names;
  const json* e = optional_field(v, "env");
  if (!e) return names;
  if (!e->is_array()) fail(field + ".env", "expected an array of variable names");
  for (std::size_t i = 0; i < e->size(); ++i) {
    const std::string where = field + ".env[" + std::to_string(i) + "]";
    if (!(*e)[i].is_string()) fail(where, "expected a string");
    const auto name = (*e)[i].get<std::string>();
    const bool valid = !name.empty() && !std::isdigit(static_cast<unsigned char>(name[0])) &&
                       std::all_of(name.begin(), name.end(), [](char c) {
                         return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
                       });
    if (!valid) fail(where, "expected a variable name (letters, digits, _)");
    // The admin token and the rest of sessiond's own settings stay with it.
    if (name.rfind("SESSIOND_", 0) == 0)
      fail(where, "sessiond's own variables (SESSIOND_*) are never passed to commands");
    if (name == "TMPDIR") fail(where, "TMPDIR is always the command's private directory");
    names.push_back(name);
  }
  return names;
}

Step parse_step(const json& v, const std::string& field, Millis default_timeout) {
  if (!v.is_object()) fail(field, "expected an object");
  static const char* known[] = {"method",  "path",      "headers",    "body",    "exec",   "env",
                                "timeout", "logged_in", "logged_out", "capture", "browser"};
  for (auto& [k, _] : v.items())
    if (std::find(std::begin(known), std::end(known), k) == std::end(known))
      fail(field + "." + k, "unknown field");
  if (optional_field(v, "env") && !optional_field(v, "exec"))
    fail(field + ".env", "only an exec step takes env");
  Step s;
  s.name = field;
  if (const json* b = optional_field(v, "browser")) {
    // The page decides: no HTTP request, no command, no rules on a response.
    for (const char* other :
         {"exec", "method", "path", "headers", "body", "logged_in", "logged_out", "capture"})
      if (optional_field(v, other))
        fail(field + "." + other,
             std::string("a step has either browser or ") + other +
                 ", not both (a browser step's conditions go inside \"browser\")");
    if (optional_field(v, "timeout"))
      fail(field + ".timeout", "a browser step takes its timeout inside \"browser\"");
    s.browser = parse_browser(*b, field + ".browser");
    s.timeout = s.browser->timeout;
    return s;
  }
  s.timeout = get_duration(v, "timeout", field, default_timeout);
  if (const json* e = optional_field(v, "exec")) {
    if (!e->is_array() || e->empty())
      fail(field + ".exec", "expected a non-empty array of strings");
    for (std::size_t i = 0; i < e->size(); ++i) {
      if (!(*e)[i].is_string())
        fail(field + ".exec[" + std::to_string(i) + "]", "expected a string");
      s.exec.push_back((*e)[i].get<std::string>());
      check_template(s.exec.back(), field + ".exec[" + std::to_string(i) + "]", false);
    }
    s.exec_env = parse_exec_env(v, field);
    if (optional_field(v, "path"))
      fail(field + ".path", "a step has either exec or path, not both");
    for (const char* other : {"method", "headers", "body", "logged_in", "logged_out", "capture"})
      if (optional_field(v, other))
        fail(field + "." + other, std::string("a step has either exec or ") + other + ", not both");
    return s;
  }
  s.method = get_string(v, "method", field, "GET");
  static const char* methods[] = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"};
  if (std::find(std::begin(methods), std::end(methods), s.method) == std::end(methods))
    fail(field + ".method", "expected one of GET, POST, PUT, PATCH, DELETE, HEAD");
  s.path = get_string(v, "path", field);
  if (s.path.empty()) fail(field + ".path", "required (or use exec)");
  check_template(s.path, field + ".path", false);
  s.headers = get_headers(v, "headers", field);
  for (auto& [name, value] : s.headers) check_template(value, field + ".headers." + name, false);
  if (const json* b = optional_field(v, "body")) {
    s.body = b->is_string() ? b->get<std::string>() : b->dump();
    check_template(s.body, field + ".body", false);
  }
  s.logged_in = parse_rules(v, "logged_in", field);
  s.logged_out = parse_rules(v, "logged_out", field);
  if (const json* c = optional_field(v, "capture")) {
    if (!c->is_array()) fail(field + ".capture", "expected an array");
    for (std::size_t i = 0; i < c->size(); ++i)
      s.captures.push_back(parse_capture((*c)[i], field + ".capture[" + std::to_string(i) + "]"));
  }
  return s;
}

// refresh_when: {"older_than": "90m", "from": "{field:/createdAt}"}.
RefreshWhen parse_refresh_when(const json& v, const Profile& p) {
  const std::string field = "refresh_when";
  if (!v.is_object()) fail(field, "expected an object such as {\"older_than\": \"90m\"}");
  for (auto& [k, _] : v.items())
    if (k != "older_than" && k != "from")
      fail(field + "." + k, "unknown field (known: older_than, from)");
  // On a profile, not on the refresh step: it is about when the cycle runs
  // that step, and both steps must exist for it to mean anything.
  if (!p.check || !p.refresh)
    fail(field, "needs a check step (run every interval) and a refresh step (run when due)");
  if (!optional_field(v, "older_than"))
    fail(field + ".older_than", "required: a duration such as \"90m\"");
  RefreshWhen w;
  w.older_than = get_duration(v, "older_than", field, Millis(0));
  w.from_text = "keepalive.sessionStart";
  if (optional_field(v, "from")) {
    const std::string text = get_string(v, "from", field);
    // "{field:/createdAt}" as in templates, or the bare pointer "/createdAt".
    std::string pointer = text;
    if (text.size() > 8 && text.rfind("{field:", 0) == 0 && text.back() == '}')
      pointer = text.substr(7, text.size() - 8);
    if (pointer.size() < 2 || pointer.front() != '/')
      fail(field + ".from",
           "expected a field of the session file: \"{field:/createdAt}\" or \"/createdAt\"");
    try {
      w.from = json::json_pointer(pointer);
    } catch (const json::exception&) {
      fail(field + ".from", "not a JSON pointer (\"~\" must be followed by 0 or 1)");
    }
    w.from_text = pointer;
  }
  return w;
}

enum class Match { yes, no, unknown };

// unknown: every other condition holds, but a marker's placeholder expands to
// nothing for this session (`problem` names it).
Match rule_matches(const Rule& r, const HttpResponse& res, std::optional<json>& parsed,
                   const TemplateContext& ctx, std::string& problem) {
  if (!r.status.empty()) {
    bool any = false;
    for (auto [lo, hi] : r.status) any = any || (res.status >= lo && res.status <= hi);
    if (!any) return Match::no;
  }
  if (r.redirect_contains) {
    std::string target = res.redirect_url;
    if (target.empty()) target = res.header("location").value_or("");
    if (target.find(*r.redirect_contains) == std::string::npos) return Match::no;
  }
  if (r.json_pointer) {
    if (!parsed) parsed = json::parse(res.body, nullptr, false);
    if (parsed->is_discarded() || !parsed->contains(*r.json_pointer)) return Match::no;
    if (r.equals && parsed->at(*r.json_pointer) != *r.equals) return Match::no;
  }
  // Last: only a rule whose other conditions hold needs its markers. Found
  // with find(): the expanded value is matched literally, never as a pattern.
  if (r.body_contains) {
    auto marker = expand_marker(*r.body_contains, ctx, &problem);
    if (!marker) return Match::unknown;
    if (res.body.find(*marker) == std::string::npos) return Match::no;
  }
  if (r.body_not_contains) {
    auto marker = expand_marker(*r.body_not_contains, ctx, &problem);
    if (!marker) return Match::unknown;
    if (res.body.find(*marker) != std::string::npos) return Match::no;
  }
  return Match::yes;
}

// The default token_deadline regex: the first JWT-looking token.
const char* const kJwtPattern = "([A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]*)";

std::string base64url_decode(std::string_view in) {
  auto val = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '-' || c == '+') return 62;
    if (c == '_' || c == '/') return 63;
    return -1;
  };
  std::string out;
  unsigned buffer = 0;
  int bits = 0;
  for (char c : in) {
    if (c == '=') break;
    int v = val(c);
    if (v < 0) return {};
    buffer = (buffer << 6) | static_cast<unsigned>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((buffer >> bits) & 0xff));
    }
  }
  return out;
}

}  // namespace

const char* to_string(Verdict v) {
  switch (v) {
    case Verdict::logged_in:
      return "logged_in";
    case Verdict::logged_out:
      return "logged_out";
    default:
      return "transient";
  }
}

Verdict Step::evaluate(const HttpResponse& res, const TemplateContext& ctx,
                       std::string* problem) const {
  if (!res.transport_ok() || res.status == 0) return Verdict::transient;
  // Overload and server errors never count as a verdict on the session, even
  // when a logged_out rule without a status (body_not_contains) matches the
  // error page.
  if (res.status == 429 || res.status >= 500) return Verdict::transient;
  std::optional<json> parsed;
  // A rule that cannot be decided for this session: another rule of its list
  // may still match (any rule does), but the list cannot say "no". An
  // undecided logged_out rule must not let the logged_in rules decide.
  std::string missing;
  auto any = [&](const std::vector<Rule>& rules, const char* list) {
    Match out = Match::no;
    for (const auto& r : rules) {
      std::string why;
      Match m = rule_matches(r, res, parsed, ctx, why);
      if (m == Match::yes) return Match::yes;
      if (m == Match::unknown && out == Match::no) {
        out = Match::unknown;
        missing = std::string(list) + " marker: " + why + " is empty or missing";
      }
    }
    return out;
  };
  Match out = any(logged_out, "logged_out");
  if (out == Match::yes) return Verdict::logged_out;
  if (out == Match::unknown) {
    if (problem) *problem = missing;
    return Verdict::transient;
  }
  if (logged_in.empty())
    return res.status >= 200 && res.status < 300 ? Verdict::logged_in : Verdict::transient;
  Match in = any(logged_in, "logged_in");
  if (in == Match::yes) return Verdict::logged_in;
  if (in == Match::unknown && problem) *problem = missing;
  return Verdict::transient;
}

Verdict Step::evaluate(const HttpResponse& res) const {
  static const std::string none;
  static const json no_session = json::object();
  return evaluate(res, TemplateContext{none, no_session, none, {}}, nullptr);
}

Profile parse_profile(const std::string& text) {
  json doc;
  try {
    doc = json::parse(text, nullptr, true, /*ignore_comments=*/true);
  } catch (const json::exception& e) {  // parse_error, or out_of_range for 1e999
    throw ProfileError(std::string("not valid JSON: ") + e.what());
  }
  if (!doc.is_object()) throw ProfileError("profile: expected a JSON object");
  static const char* known[] = {"name",
                                "base_url",
                                "interval",
                                "idle_timeout",
                                "jitter",
                                "timeout",
                                "headers",
                                "check",
                                "refresh",
                                "token_deadline",
                                "retry",
                                "max_in_flight",
                                "rate_limit",
                                "exec_max_concurrent",
                                "circuit_breaker",
                                "browser",
                                "refresh_when",
                                "state_pointer",
                                "description"};
  for (auto& [k, _] : doc.items())
    if (std::find(std::begin(known), std::end(known), k) == std::end(known))
      fail(k, "unknown field");
  Profile p;
  p.name = get_string(doc, "name", "profile", "unnamed");
  p.base_url = get_string(doc, "base_url", "profile");
  if (p.base_url.rfind("http://", 0) != 0 && p.base_url.rfind("https://", 0) != 0)
    fail("base_url", "required, and must start with http:// or https://");
  const auto host = p.base_url.find("://") + 3;
  while (!p.base_url.empty() && p.base_url.back() == '/') p.base_url.pop_back();
  if (p.base_url.size() <= host) fail("base_url", "has no host");  // "https://" was "https:"
  if (auto sp = get_string(doc, "state_pointer", "profile", ""); !sp.empty()) {
    try {
      p.state_pointer = json::json_pointer(sp);
    } catch (const json::exception& e) {
      fail("state_pointer", std::string("not a JSON pointer: ") + e.what());
    }
  }
  p.interval = get_duration(doc, "interval", "profile", p.interval);
  p.idle_timeout = get_duration(doc, "idle_timeout", "profile", p.idle_timeout);
  if (p.interval >= p.idle_timeout)
    fail("interval", "must be shorter than idle_timeout (" + format_duration(p.idle_timeout) +
                         "), or sessions expire between refreshes");
  p.jitter = get_number(doc, "jitter", "profile", p.jitter, 0.0, 0.5);
  Millis timeout = get_duration(doc, "timeout", "profile", Millis(15000));
  p.default_headers = get_headers(doc, "headers", "profile");
  if (const json* c = optional_field(doc, "check")) p.check = parse_step(*c, "check", timeout);
  if (const json* r = optional_field(doc, "refresh"))
    p.refresh = parse_step(*r, "refresh", timeout);
  if (!p.check && !p.refresh)
    fail("check", "a profile needs a check step, a refresh step, or both");
  if (const json* w = optional_field(doc, "refresh_when"))
    p.refresh_when = parse_refresh_when(*w, p);
  if (const json* t = optional_field(doc, "token_deadline")) {
    if (!t->is_object()) fail("token_deadline", "expected an object");
    TokenDeadline td;
    auto from = get_string(*t, "from", "token_deadline");
    if (from.rfind("cookie:", 0) == 0 && from.size() > 7) {
      td.from = TokenDeadline::From::cookie;
    } else if (from.rfind("header:", 0) == 0 && from.size() > 7) {
      td.from = TokenDeadline::From::header;
    } else {
      fail("token_deadline.from", "expected \"cookie:NAME\" or \"header:Name\"");
    }
    td.name = from.substr(7);
    td.pattern = get_string(*t, "regex", "token_deadline", kJwtPattern);
    // RE2 matches in linear time without recursion and bounds its own memory,
    // so the caps std::regex needed (on digits in the pattern, on the value's
    // size) are gone. log_errors off: the error goes into the message instead.
    RE2::Options options;
    options.set_log_errors(false);
    auto regex = std::make_shared<const RE2>(td.pattern, options);
    if (!regex->ok()) fail("token_deadline.regex", "invalid regular expression: " + regex->error());
    td.regex = std::move(regex);
    td.margin = get_duration(*t, "margin", "token_deadline", td.margin);
    p.token_deadline = std::move(td);
  }
  if (const json* r = optional_field(doc, "retry")) {
    if (!r->is_object()) fail("retry", "expected an object");
    p.retry.base = get_duration(*r, "base", "retry", p.retry.base);
    p.retry.max = get_duration(*r, "max", "retry", p.retry.max);
    p.retry.max_attempts = static_cast<int>(get_number(*r, "max_attempts", "retry", 0, 0, 1000));
    if (p.retry.max < p.retry.base) fail("retry.max", "must be at least retry.base");
  }
  p.max_in_flight =
      static_cast<std::size_t>(get_number(doc, "max_in_flight", "profile", 64, 1, 100000));
  p.exec_max_concurrent =
      static_cast<std::size_t>(get_number(doc, "exec_max_concurrent", "profile", 2, 1, 1024));
  if (const json* b = optional_field(doc, "browser")) {
    if (!b->is_object()) fail("browser", "expected an object such as {\"max_concurrent\": 2}");
    for (auto& [k, _] : b->items())
      if (k != "max_concurrent") fail("browser." + k, "unknown field (known: max_concurrent)");
    p.browser_max_concurrent =
        static_cast<std::size_t>(get_number(*b, "max_concurrent", "browser", 0, 0, 1024));
  }
  if (const json* rl = optional_field(doc, "rate_limit")) {
    if (!rl->is_object()) fail("rate_limit", "expected an object");
    p.rate_limit_per_second = get_number(*rl, "per_second", "rate_limit", 0, 0, 1e6);
    p.rate_limit_burst = get_number(*rl, "burst", "rate_limit", 0, 0, 1e6);
  }
  if (const json* cb = optional_field(doc, "circuit_breaker")) {
    if (!cb->is_object()) fail("circuit_breaker", "expected an object");
    p.circuit.failure_ratio =
        get_number(*cb, "failure_ratio", "circuit_breaker", p.circuit.failure_ratio, 0.01, 1.0);
    p.circuit.min_requests = static_cast<int>(
        get_number(*cb, "min_requests", "circuit_breaker", p.circuit.min_requests, 1, 1e6));
    p.circuit.window = get_duration(*cb, "window", "circuit_breaker", p.circuit.window);
    p.circuit.open_for = get_duration(*cb, "open_for", "circuit_breaker", p.circuit.open_for);
  }
  return p;
}

Profile load_profile(const std::string& path, std::string* bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ProfileError(path + ": cannot read the profile file");
  std::ostringstream ss;
  ss << in.rdbuf();
  if (bytes) *bytes = ss.str();
  try {
    return parse_profile(ss.str());
  } catch (const ProfileError& e) {
    throw ProfileError(path + ": " + e.what());
  }
}

namespace {

// expand_template; `empty` (when given) gets the first placeholder that
// expanded to nothing, in braces.
std::string expand(const std::string& text, const TemplateContext& ctx, std::string* empty) {
  if (text.find('{') == std::string::npos) return text;
  std::string out;
  std::size_t pos = 0;
  while (pos < text.size()) {
    auto open = text.find('{', pos);
    if (open == std::string::npos) break;
    auto close = text.find('}', open);
    if (close == std::string::npos) break;
    out.append(text, pos, open - pos);
    std::string name = text.substr(open + 1, close - open - 1);
    std::optional<std::string> value;
    if (name == "id")
      value = ctx.id;
    else if (name == "file")
      value = ctx.file;
    else if (name == "base_url")
      value = ctx.base_url;
    else if (name.rfind("cookie:", 0) == 0) {
      auto cname = name.substr(7);
      if (ctx.jar) value = jar_value(*ctx.jar, cname);
      const json* st = storage_state_of(ctx.session, ctx.state ? *ctx.state : json::json_pointer());
      if (!value && st && st->contains("cookies") && (*st)["cookies"].is_array())
        for (const auto& c : (*st)["cookies"])
          if (c.is_object() && c.value("name", "") == cname && c.contains("value") &&
              c["value"].is_string())
            value = c["value"].get<std::string>();
      if (!value) value = std::string();
    } else if (name.rfind("header:", 0) == 0) {
      auto h = ctx.session.find("headers");
      value = std::string();
      if (h != ctx.session.end() && h->is_object()) {
        auto it = h->find(name.substr(7));
        if (it != h->end() && it->is_string()) value = it->get<std::string>();
      }
    } else if (name.rfind("field:/", 0) == 0) {
      value = std::string();
      try {
        json::json_pointer ptr(name.substr(6));
        if (ctx.session.contains(ptr)) {
          const auto& f = ctx.session.at(ptr);
          value = f.is_string() ? f.get<std::string>() : f.dump();
        }
      } catch (const json::exception&) {
      }
    }
    if (value) {
      if (value->empty() && empty && empty->empty()) *empty = "{" + name + "}";
      out += *value;
      pos = close + 1;
    } else {
      // Not a placeholder: a literal brace, which may enclose placeholders
      // ({"mobile": "{id}"}), so continue right after it.
      out += '{';
      pos = open + 1;
    }
  }
  out.append(text, pos, std::string::npos);
  return out;
}

}  // namespace

std::string expand_template(const std::string& text, const TemplateContext& ctx) {
  return expand(text, ctx, nullptr);
}

std::optional<std::string> expand_marker(const std::string& text, const TemplateContext& ctx,
                                         std::string* empty) {
  std::string missing;
  std::string out = expand(text, ctx, &missing);
  if (!missing.empty()) {
    if (empty) *empty = std::move(missing);
    return std::nullopt;
  }
  return out;
}

std::optional<std::string> expand_page_conditions(BrowserStepSpec& spec,
                                                  const TemplateContext& ctx) {
  for (auto* list : {&spec.wait_for, &spec.logged_out})
    for (auto& c : *list) {
      if (!c.text) continue;
      std::string missing;
      auto text = expand_marker(*c.text, ctx, &missing);
      if (!text) return missing;
      c.text = std::move(*text);
    }
  return std::nullopt;
}

std::optional<std::chrono::system_clock::time_point> parse_rfc3339(std::string_view text) {
  // YYYY-MM-DDTHH:MM:SS[.frac] then "Z" or +hh:mm / -hh:mm (a time without a
  // zone is local to somewhere unknown: not accepted).
  auto digits = [&](std::size_t from, std::size_t n) {
    if (from + n > text.size()) return false;
    for (std::size_t i = from; i < from + n; ++i)
      if (text[i] < '0' || text[i] > '9') return false;
    return true;
  };
  if (text.size() > 64 || !digits(0, 4) || text.size() < 20 || text[4] != '-' || !digits(5, 2) ||
      text[7] != '-' || !digits(8, 2) || (text[10] != 'T' && text[10] != 't') || !digits(11, 2) ||
      text[13] != ':' || !digits(14, 2) || text[16] != ':' || !digits(17, 2))
    return std::nullopt;
  std::size_t pos = 19;
  if (text[pos] == '.') {
    const std::size_t first = ++pos;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') ++pos;
    if (pos == first) return std::nullopt;
  }
  const std::string_view zone = text.substr(pos);
  std::string utc(text.substr(0, pos));
  utc[10] = 'T';
  auto at = parse_iso8601(utc + "Z");
  if (!at) return std::nullopt;
  if (zone == "Z" || zone == "z") return at;
  if (zone.size() != 6 || (zone[0] != '+' && zone[0] != '-') || zone[3] != ':' ||
      !digits(pos + 1, 2) || !digits(pos + 4, 2))
    return std::nullopt;
  const int hours = (zone[1] - '0') * 10 + (zone[2] - '0');
  const int minutes = (zone[4] - '0') * 10 + (zone[5] - '0');
  if (hours > 23 || minutes > 59) return std::nullopt;
  const std::chrono::minutes offset(hours * 60 + minutes);
  // 10:30+03:30 is 07:00 UTC.
  return zone[0] == '+' ? *at - offset : *at + offset;
}

std::optional<std::chrono::system_clock::time_point> parse_time_value(const json& v) {
  using std::chrono::system_clock;
  if (v.is_number()) {
    // 1e11 seconds is the year 5138; 1e11 milliseconds is 1973.
    const double n = v.get<double>();
    const bool ms = n >= 1e11;
    const double seconds = ms ? n / 1000 : n;
    if (!(seconds > 0) || !plausible_unix_seconds(seconds)) return std::nullopt;
    if (v.is_number_integer()) {  // exact
      const auto i = v.get<std::int64_t>();
      return system_clock::time_point(
          ms ? std::chrono::duration_cast<system_clock::duration>(std::chrono::milliseconds(i))
             : std::chrono::duration_cast<system_clock::duration>(std::chrono::seconds(i)));
    }
    return system_clock::time_point(
        std::chrono::duration_cast<system_clock::duration>(std::chrono::duration<double>(seconds)));
  }
  if (v.is_string()) return parse_rfc3339(v.get<std::string>());
  return std::nullopt;
}

HttpRequest make_request(const Profile& profile, const Step& step, const TemplateContext& ctx,
                         std::vector<std::string> cookies) {
  HttpRequest req;
  req.method = step.method;
  std::string path = expand_template(step.path, ctx);
  req.url = path.rfind("http://", 0) == 0 || path.rfind("https://", 0) == 0
                ? path
                : profile.base_url + (path.empty() || path.front() == '/' ? "" : "/") + path;
  req.timeout = step.timeout;
  auto add = [&](const std::string& name, const std::string& value) {
    // The session file's "headers" are untrusted: no header injection by name.
    if (!valid_header_name(name)) return;
    // Later sources override earlier ones (case-insensitive names).
    auto same = [&](const std::string& h) {
      if (h.size() <= name.size() || h[name.size()] != ':') return false;
      for (std::size_t i = 0; i < name.size(); ++i)
        if (std::tolower(static_cast<unsigned char>(h[i])) !=
            std::tolower(static_cast<unsigned char>(name[i])))
          return false;
      return true;
    };
    req.headers.erase(std::remove_if(req.headers.begin(), req.headers.end(), same),
                      req.headers.end());
    if (value.find_first_of("\r\n") != std::string::npos) return;  // no header injection
    req.headers.push_back(name + ": " + value);
  };
  for (auto& [n, v] : profile.default_headers) add(n, expand_template(v, ctx));
  if (auto h = ctx.session.find("headers"); h != ctx.session.end() && h->is_object())
    for (auto& [n, v] : h->items())
      if (v.is_string()) add(n, v.get<std::string>());
  for (auto& [n, v] : step.headers) add(n, expand_template(v, ctx));
  req.body = expand_template(step.body, ctx);
  req.cookies = std::move(cookies);
  return req;
}

bool apply_captures(const Step& step, const HttpResponse& response, const std::string& base_url,
                    json& session, std::vector<std::string>& jar) {
  if (step.captures.empty()) return true;
  std::optional<json> body;
  bool ok = true;
  for (const auto& c : step.captures) {
    std::optional<std::string> value;
    if (c.from == Capture::From::header) {
      value = response.header(c.source);
    } else {
      if (!body) body = json::parse(response.body, nullptr, false);
      if (!body->is_discarded()) {
        json::json_pointer ptr(c.source);
        if (body->contains(ptr)) {
          // A string or a number. Not an object or array: dumping one nested
          // 100k deep (the response is untrusted) overflowed the stack.
          const auto& v = body->at(ptr);
          if (v.is_string())
            value = v.get<std::string>();
          else if (v.is_number() || v.is_boolean())
            value = v.dump();
        }
      }
    }
    // A value with a line break would split its header or cookie-file line
    // (the site's response is untrusted): treated as missing.
    if (!value || value->empty() || value->find_first_of("\r\n") != std::string::npos) {
      ok = ok && !c.required;
      continue;
    }
    std::string formatted = c.format;
    // Past each substitution: the value itself may contain "{value}".
    for (std::size_t p = 0; (p = formatted.find("{value}", p)) != std::string::npos;
         p += value->size())
      formatted.replace(p, 7, *value);
    if (c.to == Capture::To::header) {
      if (!session.contains("headers") || !session["headers"].is_object())
        session["headers"] = json::object();
      session["headers"][c.target] = formatted;
    } else {
      jar_set(jar, url_host(base_url), c.target, formatted);
    }
  }
  return ok;
}

std::optional<std::int64_t> jwt_exp(std::string_view jwt) {
  auto first = jwt.find('.');
  if (first == std::string_view::npos) return std::nullopt;
  auto second = jwt.find('.', first + 1);
  if (second == std::string_view::npos) return std::nullopt;
  auto payload = base64url_decode(jwt.substr(first + 1, second - first - 1));
  auto claims = json::parse(payload, nullptr, false);
  if (claims.is_discarded() || !claims.is_object()) return std::nullopt;
  auto exp = claims.find("exp");
  if (exp == claims.end() || !exp->is_number()) return std::nullopt;
  double secs = exp->get<double>();
  if (!plausible_unix_seconds(secs)) return std::nullopt;
  return static_cast<std::int64_t>(secs);
}

std::optional<std::chrono::system_clock::time_point> token_expiry(const TokenDeadline& deadline,
                                                                  const json& session,
                                                                  const json::json_pointer& state) {
  std::optional<std::string> raw;
  if (deadline.from == TokenDeadline::From::cookie) {
    const json* st = storage_state_of(session, state);
    if (st && st->contains("cookies") && (*st)["cookies"].is_array())
      for (const auto& c : (*st)["cookies"])
        if (c.is_object() && c.value("name", "") == deadline.name && c.contains("value") &&
            c["value"].is_string())
          raw = c["value"].get<std::string>();
  } else if (auto h = session.find("headers"); h != session.end() && h->is_object()) {
    auto it = h->find(deadline.name);
    if (it != h->end() && it->is_string()) raw = it->get<std::string>();
  }
  // The value is untrusted and may be any size: RE2 is linear in it.
  if (!raw || !deadline.regex) return std::nullopt;
  const RE2& re = *deadline.regex;
  re2::StringPiece match[2];
  const int groups = std::min(re.NumberOfCapturingGroups(), 1);
  if (!re.Match(*raw, 0, raw->size(), RE2::UNANCHORED, match, groups + 1)) return std::nullopt;
  // Group 1 when it took part in the match, else the whole match.
  const re2::StringPiece token = groups == 1 && match[1].data() ? match[1] : match[0];
  auto exp = jwt_exp(std::string_view(token.data(), token.size()));
  if (!exp) return std::nullopt;
  return std::chrono::system_clock::time_point(std::chrono::seconds(*exp));
}

bool uses_browser(const Profile& profile) {
  return (profile.check && profile.check->is_browser()) ||
         (profile.refresh && profile.refresh->is_browser());
}

std::size_t browser_slots(const Profile& profile) {
  if (profile.browser_max_concurrent > 0) return profile.browser_max_concurrent;
  return std::max(1u, std::thread::hardware_concurrency());
}

}  // namespace sessiond
