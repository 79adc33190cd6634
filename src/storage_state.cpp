#include "sessiond/storage_state.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cctype>
#include <cstddef>
#include <optional>
#include <string_view>
#include <tuple>

namespace sessiond {
namespace {

using json = nlohmann::json;

// Year 9999: a bound for the file's untrusted expiry (Chromium caps it at 400
// days anyway).
constexpr double kMaxExpires = 253402300799.0;
constexpr std::size_t kMaxNameValueBytes = 4096;  // Chromium's limit on name + value
constexpr std::size_t kMaxPathBytes = 1024;       // ... on an attribute value
constexpr std::size_t kMaxDomainBytes = 253;      // a DNS name

const char* const kPlaywrightFields[] = {"name",    "value",    "domain", "path",
                                         "expires", "httpOnly", "secure", "sameSite"};

bool is_playwright_field(const std::string& key) {
  return std::find(std::begin(kPlaywrightFields), std::end(kPlaywrightFields), key) !=
         std::end(kPlaywrightFields);
}

bool valid_same_site(const json& v) {
  return v.is_string() && (v == "Strict" || v == "Lax" || v == "None");
}

// The fields this file reads, with their Playwright types; absent optional
// fields take their defaults.
struct PlaywrightCookie {
  std::string name, value, domain, path;
  std::optional<double> expires;  // absent or negative: session cookie
  bool http_only = false, secure = false;
  std::optional<std::string> same_site;  // a valid word, else absent
};

std::optional<PlaywrightCookie> read_playwright(const json& c) {
  if (!c.is_object()) return std::nullopt;
  auto string_field = [&](const char* key, bool required, std::string& out) {
    auto it = c.find(key);
    if (it == c.end()) return !required;
    if (!it->is_string()) return false;
    out = it->get<std::string>();
    return true;
  };
  auto bool_field = [&](const char* key, bool& out) {
    auto it = c.find(key);
    if (it == c.end()) return true;
    if (!it->is_boolean()) return false;
    out = it->get<bool>();
    return true;
  };
  PlaywrightCookie p;
  if (!string_field("name", true, p.name) || !string_field("value", true, p.value) ||
      !string_field("domain", true, p.domain) || !string_field("path", false, p.path) ||
      !bool_field("httpOnly", p.http_only) || !bool_field("secure", p.secure))
    return std::nullopt;
  if (p.path.empty()) p.path = "/";
  if (auto it = c.find("expires"); it != c.end()) {
    if (!it->is_number()) return std::nullopt;
    p.expires = it->get<double>();
  }
  if (auto it = c.find("sameSite"); it != c.end() && valid_same_site(*it))
    p.same_site = it->get<std::string>();
  return p;
}

bool partitioned(const json& c) {
  auto it = c.find("partitionKey");
  return it != c.end() && !it->is_null();
}

// Playwright's identity of a cookie (as in cookie_jar.cpp): name, domain with
// its leading dot, path ("" is "/").
using Key = std::tuple<std::string, std::string, std::string>;
Key key_of(const PlaywrightCookie& p) {
  return {p.name, p.domain, p.path};
}

bool is_control(char ch) {
  auto c = static_cast<unsigned char>(ch);
  return c < 0x20 || c == 0x7f;
}

bool is_blank(char ch) {
  return ch == ' ' || ch == '\t';
}

bool starts_with_nocase(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    char a = s[i] >= 'A' && s[i] <= 'Z' ? static_cast<char>(s[i] - 'A' + 'a') : s[i];
    char b =
        prefix[i] >= 'A' && prefix[i] <= 'Z' ? static_cast<char>(prefix[i] - 'A' + 'a') : prefix[i];
    if (a != b) return false;
  }
  return true;
}

// A host name of ASCII letters, digits, '.', '-', '_', a dotted-quad IPv4 or
// a bracketed IPv6 address, with one optional leading dot (a domain cookie).
// Chromium rejects the whole setCookies call on some malformed domains
// ("[::1", "::1", "..a", ".", "a.1", "759.0.0.1": a name ending in a number
// is read as IPv4) and rewrites others ("063.0.0.1", "1.2.3"); non-ASCII
// names are stored as punycode by Chromium itself, so a file written by a
// browser never has them.
bool valid_domain(std::string_view d) {
  if (!d.empty() && d.front() == '.') d.remove_prefix(1);
  if (d.empty() || d.size() > kMaxDomainBytes || d.front() == '.') return false;
  if (d.front() == '[') {
    if (d.size() < 3 || d.back() != ']') return false;
    in6_addr addr{};
    return inet_pton(AF_INET6, std::string(d.substr(1, d.size() - 2)).c_str(), &addr) == 1;
  }
  for (char ch : d)
    if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '.' && ch != '-' && ch != '_')
      return false;
  // The URL standard's "ends in a number": then it must be an IPv4 address
  // (inet_pton takes the canonical dotted quad only, no octal or hex parts).
  std::string_view last = d;
  if (last.back() == '.') last.remove_suffix(1);
  if (auto dot = last.rfind('.'); dot != std::string_view::npos) last.remove_prefix(dot + 1);
  const bool numeric =
      !last.empty() &&
      (std::all_of(last.begin(), last.end(), [](char ch) { return ch >= '0' && ch <= '9'; }) ||
       ((last.substr(0, 2) == "0x" || last.substr(0, 2) == "0X") &&
        std::all_of(last.begin() + 2, last.end(),
                    [](char ch) { return std::isxdigit(static_cast<unsigned char>(ch)) != 0; })));
  if (numeric) {
    in_addr addr{};
    return inet_pton(AF_INET, std::string(d).c_str(), &addr) == 1;
  }
  return true;
}

// What Chromium accepts in Storage.setCookies (see the header).
bool chromium_accepts(const PlaywrightCookie& p) {
  auto bad_text = [](const std::string& s) {
    return std::any_of(s.begin(), s.end(), [](char ch) { return is_control(ch) || ch == ';'; }) ||
           (!s.empty() && (is_blank(s.front()) || is_blank(s.back())));
  };
  if (bad_text(p.name) || bad_text(p.value) || p.name.find('=') != std::string::npos) return false;
  if (p.name.empty() && p.value.empty()) return false;
  if (p.name.size() + p.value.size() > kMaxNameValueBytes) return false;
  if (!valid_domain(p.domain)) return false;
  if (p.path.front() != '/' || p.path.size() > kMaxPathBytes || bad_text(p.path)) return false;
  const bool host_only = p.domain.front() != '.';
  if (starts_with_nocase(p.name, "__Secure-") && !p.secure) return false;
  if (starts_with_nocase(p.name, "__Host-") && !(p.secure && host_only && p.path == "/"))
    return false;
  if (starts_with_nocase(p.name, "__Http-") && !(p.secure && p.http_only)) return false;
  if (starts_with_nocase(p.name, "__Host-Http-") && !p.http_only) return false;
  return true;
}

// A previous cookie's fields other than Playwright's own, onto `out`.
void keep_extra_fields(const json& previous, json& out) {
  for (auto it = previous.begin(); it != previous.end(); ++it)
    if (!is_playwright_field(it.key())) out[it.key()] = *it;
}

}  // namespace

json cdp_cookie_params_from_playwright(const json& pw_cookies) {
  json out = json::array();
  if (!pw_cookies.is_array()) return out;
  for (const auto& c : pw_cookies) {
    auto p = read_playwright(c);
    if (!p || partitioned(c) || !chromium_accepts(*p)) continue;
    json param = {{"name", p->name}, {"value", p->value},   {"domain", p->domain},
                  {"path", p->path}, {"secure", p->secure}, {"httpOnly", p->http_only}};
    if (p->expires && *p->expires >= 0) param["expires"] = std::min(*p->expires, kMaxExpires);
    if (p->same_site && !(*p->same_site == "None" && !p->secure)) param["sameSite"] = *p->same_site;
    out.push_back(std::move(param));
  }
  return out;
}

json playwright_cookies_from_cdp(const json& cdp_cookies, const json& previous_pw_cookies) {
  // The previous cookies, read once: index into previous_pw_cookies.
  struct Previous {
    std::size_t index;
    PlaywrightCookie cookie;
    bool accepted;  // given to the browser by cdp_cookie_params_from_playwright
    bool used = false;
  };
  std::vector<Previous> previous;
  if (previous_pw_cookies.is_array())
    for (std::size_t i = 0; i < previous_pw_cookies.size(); ++i)
      if (auto p = read_playwright(previous_pw_cookies[i])) {
        const bool accepted = !partitioned(previous_pw_cookies[i]) && chromium_accepts(*p);
        previous.push_back({i, std::move(*p), accepted});
      }

  std::vector<std::pair<std::size_t, json>> matched;  // previous index -> converted cookie
  json fresh = json::array();                         // not in the previous cookies
  if (cdp_cookies.is_array()) {
    for (const auto& c : cdp_cookies) {
      if (!c.is_object() || partitioned(c)) continue;
      auto p = read_playwright(c);  // Network.Cookie has Playwright's names and types
      if (!p || p->domain.empty()) continue;
      auto session = c.find("session");
      if (session != c.end() && !session->is_boolean()) continue;
      const bool is_session =
          (session != c.end() && session->get<bool>()) || !p->expires || !(*p->expires > 0);
      json out = {{"name", p->name},
                  {"value", p->value},
                  {"domain", p->domain},
                  {"path", p->path},
                  {"expires", is_session ? json(-1) : c.at("expires")},
                  {"httpOnly", p->http_only},
                  {"secure", p->secure},
                  {"sameSite", p->same_site.value_or("Lax")}};
      if (!is_session && *p->expires > kMaxExpires) out["expires"] = kMaxExpires;
      // The previous cookie the browser got (a same-key one it rejected
      // only when there is none).
      Previous* prev = nullptr;
      for (auto& candidate : previous)
        if (!candidate.used && !partitioned(previous_pw_cookies[candidate.index]) &&
            key_of(candidate.cookie) == key_of(*p) &&
            (!prev || (!prev->accepted && candidate.accepted))) {
          prev = &candidate;
          if (prev->accepted) break;
        }
      if (!prev) {
        fresh.push_back(std::move(out));
        continue;
      }
      prev->used = true;
      const PlaywrightCookie& before = prev->cookie;
      // Sent as unspecified because Chromium drops an insecure "None".
      if (!p->same_site && before.same_site == "None" && !p->secure) out["sameSite"] = "None";
      keep_extra_fields(previous_pw_cookies[prev->index], out);
      matched.emplace_back(prev->index, std::move(out));
    }
  }

  json result = json::array();
  std::sort(matched.begin(), matched.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  auto next = matched.begin();
  for (const auto& prev : previous) {
    if (next != matched.end() && next->first == prev.index) {
      result.push_back(std::move(next->second));
      ++next;
    } else if (partitioned(previous_pw_cookies[prev.index])) {
      result.push_back(previous_pw_cookies[prev.index]);  // never given to the browser
    }
  }
  for (auto& c : fresh) result.push_back(std::move(c));
  return result;
}

json origins_with_local_storage(const json& previous_origins, const std::string& origin,
                                const std::vector<std::pair<std::string, std::string>>& items) {
  json storage = json::array();
  for (const auto& [name, value] : items) storage.push_back({{"name", name}, {"value", value}});
  json out = json::array();
  bool replaced = false;
  if (previous_origins.is_array()) {
    for (const auto& entry : previous_origins) {
      if (!entry.is_object()) continue;
      auto o = entry.find("origin");
      if (o == entry.end() || !o->is_string()) continue;
      if (*o != origin) {
        out.push_back(entry);
      } else if (!replaced) {
        json updated = entry;
        updated["localStorage"] = storage;
        out.push_back(std::move(updated));
        replaced = true;
      }
    }
  }
  if (!replaced) out.push_back({{"origin", origin}, {"localStorage", std::move(storage)}});
  return out;
}

}  // namespace sessiond
