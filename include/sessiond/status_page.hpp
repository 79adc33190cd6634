#pragma once
// The status page at GET / (and /s/{id}): server-rendered HTML for a person,
// plus its script and stylesheet (served as /ui/app.js and /ui/app.css, no
// inline script, so a strict Content-Security-Policy holds). Plain functions
// over a StatusTable, tested without sockets; the status board calls them.
// Every string that reaches the HTML goes through html_escape.

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "sessiond/refresh_history.hpp"
#include "sessiond/status_table.hpp"

namespace sessiond {

// What GET / was asked (already checked by the admin routes).
struct PageQuery {
  std::string session;  // non-empty: the per-session view (/s/{id}, /?session=)
  std::string site;     // the session's site (?site=): ids are unique per site only
  std::string q;        // search: ids containing it
  std::string state;    // only sessions in this state ("" = all)
  std::string after;    // page: ids after this one (id order)
  std::string before;   // page: ids before this one
  std::size_t limit = kDefaultLimit;
  static constexpr std::size_t kDefaultLimit = 50;
  static constexpr std::size_t kMaxLimit = 500;
};

// One configured site's line: what GET /sites says of it (sites_json).
struct SiteLine {
  std::string name;
  int total = 0;
  int active = 0;
  std::string breaker;  // closed | open | half_open
  std::string error;    // what is wrong with its directory ("" = nothing)
};

// What the page shows besides the sessions.
struct PageContext {
  WallTime now;
  bool ready = false;
  bool running = true;
  StatusInfo info;
  std::vector<RefreshHistory::Minute> history;  // oldest first
  std::size_t attention_limit = 100;            // rows in "needs attention"
  // With several sites (a config file's "sites"): a line per site, and the
  // session table's rows grouped by site. Empty: one site, no grouping.
  std::vector<SiteLine> sites;
};

struct PageResult {
  int status = 200;
  std::string html;
};

// &, <, >, " and ' as entities: safe in text and in quoted attributes.
std::string html_escape(const std::string& text);

PageResult render_status_page(const StatusTable& table, const PageQuery& query,
                              const PageContext& context);

// The page's assets; nullopt for an unknown name ("app.js", "app.css").
struct UiAsset {
  const char* content_type;
  const char* body;
};
std::optional<UiAsset> ui_asset(const std::string& name);

// The header every page response carries.
inline constexpr const char* kStatusPageCsp =
    "default-src 'self'; script-src 'self'; style-src 'self'";

}  // namespace sessiond
