#include "sessiond/cookie_jar.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <tuple>

namespace sessiond {
namespace {

constexpr std::string_view kHttpOnlyPrefix = "#HttpOnly_";

struct NetscapeCookie {
  std::string domain;  // without leading dot
  bool include_subdomains = false;
  std::string path = "/";
  bool secure = false;
  bool http_only = false;
  long long expires = 0;  // 0: session cookie
  std::string name;
  std::string value;
};

std::optional<NetscapeCookie> parse_line(std::string_view line) {
  NetscapeCookie c;
  if (line.substr(0, kHttpOnlyPrefix.size()) == kHttpOnlyPrefix) {
    c.http_only = true;
    line.remove_prefix(kHttpOnlyPrefix.size());
  } else if (!line.empty() && line.front() == '#') {
    return std::nullopt;
  }
  std::vector<std::string_view> f;
  std::size_t start = 0;
  while (f.size() < 6) {
    auto tab = line.find('\t', start);
    if (tab == std::string_view::npos) return std::nullopt;
    f.push_back(line.substr(start, tab - start));
    start = tab + 1;
  }
  f.push_back(line.substr(start));  // the value may contain anything but newlines
  c.domain = std::string(f[0]);
  if (!c.domain.empty() && c.domain.front() == '.') c.domain.erase(0, 1);
  c.include_subdomains = f[1] == "TRUE";
  c.path = std::string(f[2]);
  c.secure = f[3] == "TRUE";
  try {
    c.expires = std::stoll(std::string(f[4]));
  } catch (...) {
    return std::nullopt;
  }
  c.name = std::string(f[5]);
  c.value = std::string(f[6]);
  return c;
}

std::string to_line(const NetscapeCookie& c) {
  std::string out;
  if (c.http_only) out += kHttpOnlyPrefix;
  if (c.include_subdomains) out += '.';
  out += c.domain;
  out += c.include_subdomains ? "\tTRUE\t" : "\tFALSE\t";
  out += c.path.empty() ? "/" : c.path;
  out += c.secure ? "\tTRUE\t" : "\tFALSE\t";
  out += std::to_string(c.expires);
  out += '\t';
  out += c.name;
  out += '\t';
  out += c.value;
  return out;
}

// Fields read from a Playwright cookie must have their Playwright types (a
// wrong type would make nlohmann's value() throw): such entries are skipped.
bool well_typed(const nlohmann::json& c) {
  if (!c.is_object()) return false;
  auto is = [&](const char* key, bool (nlohmann::json::*check)() const noexcept, bool required) {
    auto it = c.find(key);
    return it == c.end() ? !required : ((*it).*check)();
  };
  return is("name", &nlohmann::json::is_string, true) &&
         is("value", &nlohmann::json::is_string, true) &&
         is("domain", &nlohmann::json::is_string, false) &&
         is("path", &nlohmann::json::is_string, false) &&
         is("secure", &nlohmann::json::is_boolean, false) &&
         is("httpOnly", &nlohmann::json::is_boolean, false);
}

// Playwright's identity of a cookie: name + domain (with its leading dot, which
// marks a domain cookie) + path ("" is "/", as in its jar line).
std::tuple<std::string, std::string, std::string> key_of(const nlohmann::json& c) {
  std::string path = c.value("path", "/");
  return {c.value("name", ""), c.value("domain", ""), path.empty() ? "/" : path};
}

// Playwright's expires (float seconds, -1: session) -> the jar's whole seconds
// (0: session). Clamped to year 9999: the file is untrusted, and converting a
// double beyond long long (1e300) is undefined behaviour.
long long jar_expires(double expires) {
  if (!(expires >= 0)) return 0;
  long long secs = static_cast<long long>(std::floor(std::min(expires, 253402300799.0)));
  return secs == 0 ? 1 : secs;  // 0 would mean "session" to libcurl
}

std::string playwright_domain(const NetscapeCookie& c) {
  return c.include_subdomains ? "." + c.domain : c.domain;
}

// One Playwright cookie as a jar line's fields; nullopt for the ones a jar
// cannot carry (they are skipped on load, so they are not in the jar to save).
std::optional<NetscapeCookie> netscape_from_playwright(const nlohmann::json& c) {
  if (!well_typed(c)) return std::nullopt;
  NetscapeCookie n;
  std::string domain = c.value("domain", "");
  if (domain.empty()) return std::nullopt;
  n.include_subdomains = domain.front() == '.';
  n.domain = n.include_subdomains ? domain.substr(1) : domain;
  n.path = c.value("path", "/");
  n.secure = c.value("secure", false);
  n.http_only = c.value("httpOnly", false);
  if (c.contains("expires") && c["expires"].is_number())
    n.expires = jar_expires(c["expires"].get<double>());
  n.name = c["name"].get<std::string>();
  n.value = c["value"].get<std::string>();
  // A tab or line break in a field would shift the fields of the line or
  // start another one (a cookie of the file's making); a line starting with
  // '#' is a comment (or #HttpOnly_).
  if (n.name.find_first_of("\t\r\n") != std::string::npos ||
      n.domain.find_first_of("\t\r\n") != std::string::npos ||
      n.path.find_first_of("\t\r\n") != std::string::npos ||
      n.value.find_first_of("\r\n") != std::string::npos || domain.front() == '#')
    return std::nullopt;
  return n;
}

}  // namespace

CookieLines jar_from_playwright(const nlohmann::json& cookies) {
  CookieLines lines;
  if (!cookies.is_array()) return lines;
  for (const auto& c : cookies)
    if (auto n = netscape_from_playwright(c)) lines.push_back(to_line(*n));
  return lines;
}

nlohmann::json playwright_from_jar(const nlohmann::json& original, const CookieLines& jar) {
  nlohmann::json out = nlohmann::json::array();
  std::vector<NetscapeCookie> parsed;
  for (const auto& line : jar)
    if (auto c = parse_line(line)) parsed.push_back(std::move(*c));

  // One jar line per cookie: a file with the same cookie twice must not map
  // both to one line and add the other line again on every save.
  std::vector<bool> used(parsed.size(), false);
  auto find_parsed =
      [&](const std::tuple<std::string, std::string, std::string>& key) -> NetscapeCookie* {
    for (std::size_t i = 0; i < parsed.size(); ++i) {
      const auto& p = parsed[i];
      if (!used[i] && std::get<0>(key) == p.name && std::get<1>(key) == playwright_domain(p) &&
          std::get<2>(key) == p.path)
        return &parsed[i];
    }
    return nullptr;
  };

  auto apply = [](nlohmann::json& c, const NetscapeCookie& p) {
    c["value"] = p.value;
    c["httpOnly"] = p.http_only;
    c["secure"] = p.secure;
    double old =
        c.contains("expires") && c["expires"].is_number() ? c["expires"].get<double>() : -1;
    if (p.expires != jar_expires(old))
      c["expires"] = p.expires == 0 ? -1.0 : static_cast<double>(p.expires);
  };
  // Existing cookies first, in their order, with every field they had.
  if (original.is_array()) {
    for (const auto& c : original) {
      // Never made it into the jar: it must not take the line of another
      // cookie with the same name, domain and path.
      if (!netscape_from_playwright(c)) continue;
      auto* p = find_parsed(key_of(c));
      if (!p) continue;  // deleted or expired
      used[static_cast<std::size_t>(p - parsed.data())] = true;
      nlohmann::json updated = c;
      apply(updated, *p);
      out.push_back(std::move(updated));
    }
  }
  for (std::size_t i = 0; i < parsed.size(); ++i) {
    if (used[i]) continue;
    const auto& p = parsed[i];
    nlohmann::json c = {{"name", p.name},     {"value", p.value}, {"domain", playwright_domain(p)},
                        {"path", p.path},     {"expires", -1.0},  {"httpOnly", p.http_only},
                        {"secure", p.secure}, {"sameSite", "Lax"}};
    apply(c, p);
    out.push_back(std::move(c));
  }
  return out;
}

std::optional<std::string> jar_value(const CookieLines& jar, std::string_view name) {
  for (const auto& line : jar)
    if (auto c = parse_line(line); c && c->name == name) return c->value;
  return std::nullopt;
}

void jar_set(CookieLines& jar, std::string_view host, std::string_view name,
             std::string_view value) {
  for (auto it = jar.begin(); it != jar.end();) {
    auto c = parse_line(*it);
    if (c && c->name == name && c->domain == host)
      it = jar.erase(it);
    else
      ++it;
  }
  NetscapeCookie c;
  c.domain = std::string(host);
  c.name = std::string(name);
  c.value = std::string(value);
  jar.push_back(to_line(c));
}

std::string url_host(std::string_view url) {
  auto scheme = url.find("://");
  if (scheme != std::string_view::npos) url.remove_prefix(scheme + 3);
  auto end = url.find_first_of("/?#");
  if (end != std::string_view::npos) url = url.substr(0, end);
  auto at = url.rfind('@');
  if (at != std::string_view::npos) url.remove_prefix(at + 1);
  if (!url.empty() && url.front() == '[') {
    auto close = url.find(']');
    return std::string(url.substr(1, close == std::string_view::npos ? url.size() - 1 : close - 1));
  }
  auto colon = url.find(':');
  return std::string(url.substr(0, colon));
}

}  // namespace sessiond
