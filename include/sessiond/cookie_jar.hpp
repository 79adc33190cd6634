#pragma once
// Converts between Playwright's storage-state cookies and the Netscape
// cookie-file lines that libcurl's cookie engine reads and writes. libcurl does
// the RFC 6265 merging (rotation, deletion, expiry); this file only maps
// formats and keeps what Netscape lines cannot carry (sameSite, fractional
// expiry, unknown fields) from the original cookie.

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sessiond {

using CookieLines = std::vector<std::string>;

// Playwright cookies array -> Netscape lines. Invalid entries are skipped.
CookieLines jar_from_playwright(const nlohmann::json& cookies);

// The jar after a transfer -> Playwright cookies array. Cookies present in
// `original` keep their field order and extra fields; sameSite defaults to
// "Lax" for new ones; cookies missing from the jar (deleted/expired) go.
nlohmann::json playwright_from_jar(const nlohmann::json& original, const CookieLines& jar);

std::optional<std::string> jar_value(const CookieLines& jar, std::string_view name);

// Adds or replaces a host-only cookie (used by captures "to": "cookie:NAME").
void jar_set(CookieLines& jar, std::string_view host, std::string_view name,
             std::string_view value);

// "https://a.b:8443/x" -> "a.b"
std::string url_host(std::string_view url);

}  // namespace sessiond
