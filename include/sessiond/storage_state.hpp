#pragma once
// Converts a session file's Playwright storage state to and from what
// Chromium's DevTools protocol speaks, for the browser step. Pure functions
// (no CAF, no Chromium); the input is untrusted: entries of the wrong type are
// skipped, nothing throws.
//
// Cookie mapping (checked against Chromium 156, Storage.setCookies and
// Storage.getCookies on a fresh browser context):
// - domain: passed through unchanged, no `url`. Chromium reads a domain
//   without a leading dot as host-only ("example.com" is not sent to
//   sub.example.com) and keeps the dot of a domain cookie (".example.com"),
//   and Storage.getCookies returns both forms as they were set: the mapping
//   round-trips. Chromium canonicalises some domains (case, IDN to punycode,
//   ".127.0.0.1" and public suffixes such as ".co.uk" become host-only); the
//   file then holds Chromium's form, as Playwright would save it.
// - expires: -1 (or any negative) is a session cookie, sent without
//   `expires`; read back, `session: true` or a non-positive `expires` gives
//   -1. Chromium caps a persistent cookie at 400 days from now.
// - sameSite: "Strict" | "Lax" | "None" both ways. Absent or another word is
//   sent as unspecified and read back as "Lax", as Playwright does. "None" on
//   a cookie without `secure` would make Chromium drop the cookie silently: it
//   is sent as unspecified instead, and read back as "None" again when the
//   previous cookie said so (the file keeps working in Firefox, where such
//   cookies are common).
// - Storage.setCookies rejects the whole array for one invalid cookie
//   ("Invalid cookie fields"), so cookies Chromium rejects are left out:
//   an empty or malformed domain (only ASCII host names, dotted-quad IPv4 and
//   bracketed IPv6 pass), a path not starting with '/', control characters
//   or ';' in name, value or path, '=' in the name, leading or trailing
//   blanks, name + value over 4096 bytes, and the __Secure-/__Host-/__Http-
//   prefix rules. Such a cookie is lost from the file after a browser step,
//   as it would be with Playwright (which throws on most of them).
// - Partitioned cookies (Playwright's `partitionKey`, CDP's `partitionKey`)
//   are not given to the browser and not read from it: a previous one is
//   carried over unchanged.

#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace sessiond {

// Playwright storage-state cookies -> DevTools Network.CookieParam array for
// Storage.setCookies.
nlohmann::json cdp_cookie_params_from_playwright(const nlohmann::json& pw_cookies);

// DevTools Network.Cookie array (Storage.getCookies) -> Playwright cookies
// array in Playwright's form (name, value, domain, path, expires, httpOnly,
// secure, sameSite; nlohmann::json orders keys alphabetically when dumped).
// `previous_pw_cookies` supplies unknown extra fields to keep for the same
// (name, domain, path); cookies found in it come first, in its order.
nlohmann::json playwright_cookies_from_cdp(const nlohmann::json& cdp_cookies,
                                           const nlohmann::json& previous_pw_cookies);

// origins[] with `origin`'s localStorage replaced by `items` (other origins
// and unknown fields kept; a new entry appended when the origin was absent;
// later duplicates of `origin` dropped, since they would override `items`
// when loaded). Entries that are not objects with a string "origin" are
// dropped. `origin` is compared exactly ("https://baman24.ir", no slash).
nlohmann::json origins_with_local_storage(
    const nlohmann::json& previous_origins, const std::string& origin,
    const std::vector<std::pair<std::string, std::string>>& items);

}  // namespace sessiond
