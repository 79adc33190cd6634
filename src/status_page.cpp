#include "sessiond/status_page.hpp"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <sstream>

#include "sessiond/build_info.hpp"
#include "sessiond/json_log.hpp"

namespace sessiond {
namespace {

using std::chrono::duration_cast;
using std::chrono::seconds;

// The states that need a person, most urgent first; the rank orders the
// "needs attention" table.
constexpr SessionState kAttention[] = {SessionState::at_risk, SessionState::retrying,
                                       SessionState::failed, SessionState::file_error,
                                       SessionState::invalid};

int attention_rank(SessionState s) {
  for (std::size_t i = 0; i < std::size(kAttention); ++i)
    if (kAttention[i] == s) return static_cast<int>(i);
  return -1;
}

std::string url_encode(const std::string& v) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : v) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

// "/?q=..&state=..&after=.." with the empty ones left out, HTML-escaped for an href.
std::string page_href(const PageQuery& q, const std::string& after, const std::string& before) {
  std::string out;
  auto add = [&](const char* name, const std::string& value) {
    if (value.empty()) return;
    out += out.empty() ? "?" : "&";
    out += name;
    out += '=';
    out += url_encode(value);
  };
  add("q", q.q);
  add("state", q.state);
  if (q.limit != PageQuery::kDefaultLimit) add("limit", std::to_string(q.limit));
  add("after", after);
  add("before", before);
  return html_escape("/" + out);
}

// `site`: with several sites, the session's (ids are unique per site only).
std::string session_href(const std::string& id, const std::string& site = {}) {
  return html_escape("/s/" + url_encode(id) + (site.empty() ? "" : "?site=" + url_encode(site)));
}

// "3m 20s" for a span of seconds (positive).
std::string span(std::int64_t s) {
  char buf[48];
  if (s < 60)
    std::snprintf(buf, sizeof buf, "%" PRId64 "s", s);
  else if (s < 3600)
    std::snprintf(buf, sizeof buf, "%" PRId64 "m %" PRId64 "s", s / 60, s % 60);
  else if (s < 86400)
    std::snprintf(buf, sizeof buf, "%" PRId64 "h %" PRId64 "m", s / 3600, (s % 3600) / 60);
  else
    std::snprintf(buf, sizeof buf, "%" PRId64 "d %" PRId64 "h", s / 86400, (s % 86400) / 3600);
  return buf;
}

// <time datetime="ISO" title="ISO">3m ago</time>, or a dash.
std::string when(const std::optional<WallTime>& t, WallTime now) {
  if (!t) return "<span class=\"none\">&#8212;</span>";
  const std::string iso = html_escape(log::iso8601(*t));
  const auto d = duration_cast<seconds>(now - *t).count();
  const std::string rel = d >= 0 ? span(d) + " ago" : "in " + span(-d);
  return "<time datetime=\"" + iso + "\" title=\"" + iso + "\">" + rel + "</time>";
}

std::string state_badge(SessionState s) {
  const char* name = to_string(s);
  return std::string("<span class=\"state state-") + name + "\">" + name + "</span>";
}

void session_row(std::ostringstream& o, const SessionStatus& s, WallTime now,
                 bool with_site = false) {
  o << "<tr data-session=\"" << html_escape(s.id) << "\" data-state=\"" << to_string(s.state);
  if (with_site) o << "\" data-site=\"" << html_escape(s.site);
  o << "\"><td class=\"id\"><a href=\"" << session_href(s.id, with_site ? s.site : "") << "\">"
    << html_escape(s.id) << "</a></td><td class=\"st\">" << state_badge(s.state)
    << "</td><td class=\"err\">" << (s.last_error ? html_escape(*s.last_error) : std::string())
    << "</td><td>" << when(s.last_refresh, now) << "</td><td>" << when(s.next_refresh, now)
    << "</td><td class=\"num\">" << s.retry_count << "</td></tr>\n";
}

const char* const kRowHead =
    "<thead><tr><th>Session</th><th>State</th><th>Last error</th><th>Last refresh</th>"
    "<th>Next refresh</th><th>Retries</th></tr></thead>\n";

// `sites`: how many configured sites the page shows (0: one site, no
// grouping); `site`: the session view's site, if several.
void head(std::ostringstream& o, const std::string& title, const std::string& view,
          const std::string& session, std::size_t sites = 0, const std::string& site = {}) {
  o << "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
       "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
       "<title>"
    << html_escape(title)
    << "</title><link rel=\"stylesheet\" href=\"/ui/app.css\">"
       "<script src=\"/ui/app.js\" defer></script></head>\n<body data-view=\""
    << view << "\" data-session=\"" << html_escape(session);
  if (sites > 0) o << "\" data-sites=\"" << sites << "\" data-site=\"" << html_escape(site);
  o << "\">\n";
}

void header(std::ostringstream& o, const PageContext& c) {
  o << "<header><h1><a href=\"/\">sessiond</a></h1><nav><a href=\"/\">sessions</a> "
       "<a href=\"/replicas\">replicas</a></nav><span id=\"build\">"
    << html_escape(build_version()) << " (git " << html_escape(build_revision())
    << ")</span><span id=\"shard\">shard " << c.info.shard_index << " of " << c.info.shard_count
    << "</span><span id=\"ready\" class=\"" << (c.ready ? "ok" : "bad") << "\">"
    << (c.ready ? "ready" : (c.running ? "not ready" : "shutting down"))
    << "</span><span id=\"live\" class=\"off\">live updates: off</span></header>\n<main>\n";
}

void footer(std::ostringstream& o, const PageContext& c) {
  o << "</main>\n<footer>Rendered <time id=\"rendered\" datetime=\""
    << html_escape(log::iso8601(c.now)) << "\">" << html_escape(log::iso8601(c.now))
    << "</time>. Refresh interval " << c.info.interval_s << " s, idle timeout "
    << c.info.idle_timeout_s << " s.</footer>\n</body></html>\n";
}

// "alpha: 3 active of 5, breaker closed" (and the directory's error).
void site_line(std::ostringstream& o, const SiteLine& s) {
  o << "<b class=\"site-name\">" << html_escape(s.name) << "</b>: <span class=\"n site-active\">"
    << s.active << "</span> active of <span class=\"n site-total\">" << s.total
    << "</span>, breaker <span class=\"breaker breaker-" << html_escape(s.breaker) << "\">"
    << html_escape(s.breaker) << "</span>";
  if (!s.error.empty())
    o << ", <span class=\"err site-error\">" << html_escape(s.error) << "</span>";
}

void sites_list(std::ostringstream& o, const PageContext& c) {
  if (c.sites.empty()) return;
  o << "<section id=\"sites\"><h2>Sites</h2><ul class=\"sites\">";
  for (const auto& s : c.sites) {
    o << "<li data-site=\"" << html_escape(s.name) << "\""
      << (s.error.empty() ? "" : " class=\"bad\"") << ">";
    site_line(o, s);
    o << "</li>";
  }
  o << "</ul></section>\n";
}

void counts(std::ostringstream& o, const StatusTable& t, const StatusSummary& sum) {
  o << "<section id=\"counts\"><h2>Sessions</h2><ul class=\"counts\">"
    << "<li data-state=\"total\"><a href=\"/\"><span class=\"n\" id=\"count-total\">" << t.size()
    << "</span> total</a></li>"
    << "<li data-state=\"live\"><span class=\"n\" id=\"count-live\">" << sum.live
    << "</span> live</li>";
  for (auto s : kSessionStates) {
    const char* name = to_string(s);
    o << "<li data-state=\"" << name << "\" class=\"state-" << name
      << "\"><a href=\"/?state=" << name << "\"><span class=\"n\" id=\"count-" << name << "\">"
      << sum.counts[static_cast<std::size_t>(s)] << "</span> " << name << "</a></li>";
  }
  o << "</ul><p>Oldest refresh of a live session: <span id=\"oldest-age\">"
    << (sum.oldest_age ? span(static_cast<std::int64_t>(*sum.oldest_age)) + " ago"
                       : std::string("&#8212;"))
    << "</span></p></section>\n";
}

void attention(std::ostringstream& o, const StatusTable& t, const PageContext& c) {
  std::vector<const SessionStatus*> list;
  t.for_each([&](const SessionStatus& s) {
    if (attention_rank(s.state) >= 0) list.push_back(&s);
  });
  // Most urgent state first; inside a state the oldest last refresh first
  // (closest to being lost), except logged-out sessions: most recent first.
  auto urgent = [](const SessionStatus* a, const SessionStatus* b) {
    int ra = attention_rank(a->state), rb = attention_rank(b->state);
    if (ra != rb) return ra < rb;
    WallTime ta = a->last_refresh.value_or(WallTime{}), tb = b->last_refresh.value_or(WallTime{});
    if (ta != tb) return a->state == SessionState::invalid ? ta > tb : ta < tb;
    return a->id < b->id;
  };
  const std::size_t shown = std::min(list.size(), c.attention_limit);
  std::partial_sort(list.begin(), list.begin() + static_cast<std::ptrdiff_t>(shown), list.end(),
                    urgent);
  o << "<section id=\"attention\"><h2>Needs attention <span class=\"n\" id=\"attention-count\">"
    << list.size() << "</span></h2>\n";
  o << "<table id=\"attention-table\">" << kRowHead << "<tbody>\n";
  for (std::size_t i = 0; i < shown; ++i) session_row(o, *list[i], c.now, !c.sites.empty());
  o << "</tbody></table>\n";
  if (list.empty()) o << "<p class=\"empty\" id=\"attention-empty\">Nothing needs attention.</p>";
  if (shown < list.size())
    o << "<p>Showing the " << shown << " most urgent of " << list.size()
      << "; the state links above list them all.</p>";
  o << "</section>\n";
}

void chart(std::ostringstream& o, const PageContext& c) {
  std::uint64_t peak = 1, total = 0, failed = 0;
  for (const auto& m : c.history) {
    peak = std::max(peak, m.total());
    total += m.total();
    failed += m.failures();
  }
  constexpr int kBarW = 10, kH = 100, kTop = 14;
  const int width = static_cast<int>(c.history.size()) * kBarW;
  o << "<section id=\"history\"><h2>Refreshes per minute, last hour</h2>"
    << "<svg id=\"refresh-chart\" role=\"img\" viewBox=\"0 0 " << width + 40 << ' '
    << kH + kTop + 16 << "\" width=\"" << width + 40 << "\" height=\"" << kH + kTop + 16
    << "\" data-total=\"" << total << "\" data-failed=\"" << failed
    << "\"><title>Refreshes per minute over the last hour: " << total << " refreshes, " << failed
    << " failed or logged out</title>\n";
  o << "<line class=\"axis\" x1=\"0\" y1=\"" << kTop + kH << "\" x2=\"" << width << "\" y2=\""
    << kTop + kH << "\"/><text class=\"label\" x=\"" << width + 4 << "\" y=\"" << kTop + 4 << "\">"
    << peak << "</text><text class=\"label\" x=\"" << width + 4 << "\" y=\"" << kTop + kH << "\">0"
    << "</text><text class=\"label\" x=\"0\" y=\"" << kTop + kH + 14
    << "\">60 min ago</text><text class=\"label\" x=\"" << width - 24 << "\" y=\"" << kTop + kH + 14
    << "\">now</text>\n";
  for (std::size_t i = 0; i < c.history.size(); ++i) {
    const auto& m = c.history[i];
    if (m.total() == 0) continue;
    const int x = static_cast<int>(i) * kBarW;
    const int h = static_cast<int>(m.total() * kH / peak);
    const int hf = static_cast<int>(m.failures() * kH / peak);
    const std::string at = log::iso8601(m.start).substr(11, 5);
    o << "<g><title>" << at << " UTC: " << m.total() << " refreshes (" << m.success << " ok, "
      << m.transient_error << " transient errors, " << m.logged_out << " logged out)</title>"
      << "<rect class=\"ok\" x=\"" << x + 1 << "\" y=\"" << kTop + kH - h << "\" width=\""
      << kBarW - 2 << "\" height=\"" << h << "\"/>";
    if (hf > 0 || m.failures() > 0)
      o << "<rect class=\"fail\" x=\"" << x + 1 << "\" y=\"" << kTop + kH - std::max(hf, 1)
        << "\" width=\"" << kBarW - 2 << "\" height=\"" << std::max(hf, 1) << "\"/>";
    o << "</g>\n";
  }
  o << "</svg><p class=\"legend\"><span class=\"key ok\"></span> refreshes "
    << "<span class=\"key fail\"></span> failures (transient errors and logouts)</p></section>\n";
}

void search_form(std::ostringstream& o, const PageQuery& q) {
  o << "<form id=\"search\" method=\"get\" action=\"/\"><label>Session id contains "
    << "<input type=\"search\" name=\"q\" value=\"" << html_escape(q.q)
    << "\" maxlength=\"64\" placeholder=\"0912\"></label> <label>State <select name=\"state\">"
    << "<option value=\"\">any</option>";
  for (auto s : kSessionStates) {
    const char* name = to_string(s);
    o << "<option" << (q.state == name ? " selected" : "") << ">" << name << "</option>";
  }
  o << "</select></label> <button type=\"submit\">Search</button></form>\n";
}

// The table of every session, in id order, a page at a time: keyset paging
// (after/before an id) costs one pass over the table and a partial sort of
// one page, however deep the page is.
void session_table(std::ostringstream& o, const StatusTable& t, const PageQuery& q,
                   const PageContext& c) {
  std::vector<const SessionStatus*> match;
  t.for_each([&](const SessionStatus& s) {
    if (!q.state.empty() && q.state != to_string(s.state)) return;
    if (!q.q.empty() && s.id.find(q.q) == std::string::npos) return;
    match.push_back(&s);
  });
  auto by_id = [](const SessionStatus* a, const SessionStatus* b) { return a->id < b->id; };
  std::vector<const SessionStatus*> page;
  if (!q.before.empty()) {
    // The `limit` largest ids below `before`, shown in ascending order.
    auto end = std::partition(match.begin(), match.end(),
                              [&](const SessionStatus* s) { return s->id < q.before; });
    const auto n =
        std::min<std::ptrdiff_t>(end - match.begin(), static_cast<std::ptrdiff_t>(q.limit));
    std::partial_sort(match.begin(), match.begin() + n, end,
                      [&](auto* a, auto* b) { return by_id(b, a); });
    page.assign(match.begin(), match.begin() + n);
    std::reverse(page.begin(), page.end());
  } else {
    auto end = std::partition(match.begin(), match.end(), [&](const SessionStatus* s) {
      return q.after.empty() || s->id > q.after;
    });
    const auto n =
        std::min<std::ptrdiff_t>(end - match.begin(), static_cast<std::ptrdiff_t>(q.limit));
    std::partial_sort(match.begin(), match.begin() + n, end, by_id);
    page.assign(match.begin(), match.begin() + n);
  }
  std::size_t below = 0, above = 0;  // matching ids before / after this page
  std::string first, last;           // the page's id range (the pager's keys)
  if (!page.empty()) {
    first = page.front()->id;
    last = page.back()->id;
    for (const auto* s : match) {
      if (s->id < first) ++below;
      if (s->id > last) ++above;
    }
  }
  // With sites, the page's rows by site (in the sites' order), each group
  // under its site's line; inside a group, id order.
  auto site_rank = [&](const std::string& name) {
    for (std::size_t i = 0; i < c.sites.size(); ++i)
      if (c.sites[i].name == name) return i;
    return c.sites.size();
  };
  if (!c.sites.empty())
    std::stable_sort(page.begin(), page.end(), [&](const SessionStatus* a, const SessionStatus* b) {
      return site_rank(a->site) < site_rank(b->site);
    });

  o << "<section id=\"sessions\"><h2>All sessions</h2>\n";
  search_form(o, q);
  o << "<p id=\"page-info\" data-matching=\"" << match.size() << "\" data-first=\""
    << (page.empty() ? 0 : below + 1) << "\" data-last=\"" << below + page.size() << "\">";
  if (page.empty())
    o << "No session matches.";
  else
    o << "Sessions " << below + 1 << "&#8211;" << below + page.size() << " of " << match.size()
      << (q.q.empty() && q.state.empty() ? "" : " matching") << ".";
  o << "</p>\n<table id=\"session-table\">" << kRowHead << "<tbody>\n";
  const std::string* group = nullptr;
  for (const auto* s : page) {
    if (!c.sites.empty() && (!group || *group != s->site)) {
      group = &s->site;
      const auto rank = site_rank(s->site);
      o << "<tr class=\"site-group\" data-site=\"" << html_escape(s->site)
        << "\"><th colspan=\"6\">";
      if (rank < c.sites.size())
        site_line(o, c.sites[rank]);
      else
        o << "<b class=\"site-name\">" << html_escape(s->site) << "</b>";
      o << "</th></tr>\n";
    }
    session_row(o, *s, c.now, !c.sites.empty());
  }
  o << "</tbody></table>\n<nav class=\"pager\">";
  if (below > 0)
    o << "<a rel=\"first\" href=\"" << page_href(q, "", "") << "\">&#171; first</a> "
      << "<a rel=\"prev\" href=\"" << page_href(q, "", first) << "\">&#8249; previous</a> ";
  if (above > 0) o << "<a rel=\"next\" href=\"" << page_href(q, last, "") << "\">next &#8250;</a>";
  o << "</nav></section>\n";
}

void event_log(std::ostringstream& o) {
  o << "<section id=\"events\"><h2>Live events</h2><p class=\"empty\" id=\"events-empty\">"
       "Changes since this page was loaded appear here.</p><ol id=\"event-log\"></ol></section>\n";
}

PageResult session_view(const StatusTable& t, const PageQuery& q, const PageContext& c) {
  std::ostringstream o;
  const SessionStatus* s = t.find(q.site, q.session);
  if (!s && q.site.empty()) s = t.find(q.session);  // the one site that has it
  const std::string site = c.sites.empty() ? std::string() : s ? s->site : q.site;
  head(o, "sessiond: " + q.session, "session", q.session, c.sites.size(), site);
  header(o, c);
  o << "<p><a href=\"/\">&#8592; all sessions</a></p>\n";
  if (const auto in = t.sites_of(q.session); !s && q.site.empty() && in.size() > 1) {
    // Ids are unique per site only: say which sessions there are.
    o << "<section id=\"session\"><h2>Session " << html_escape(q.session)
      << "</h2><p id=\"ambiguous\">Several sites have this session:</p><ul>";
    for (const auto& name : in)
      o << "<li><a href=\"" << session_href(q.session, name) << "\">" << html_escape(name)
        << "</a></li>";
    o << "</ul></section>\n";
    footer(o, c);
    return {300, o.str()};
  }
  if (!s) {
    o << "<section id=\"session\"><h2>Session " << html_escape(q.session)
      << "</h2><p id=\"unknown\">No such session on this replica (shard " << c.info.shard_index
      << " of " << c.info.shard_count << ").</p></section>\n";
    footer(o, c);
    return {404, o.str()};
  }
  auto row = [&](const char* label, const std::string& id, const std::string& value) {
    o << "<dt>" << label << "</dt><dd id=\"" << id << "\">" << value << "</dd>";
  };
  o << "<section id=\"session\" data-session=\"" << html_escape(s->id) << "\"><h2>Session "
    << html_escape(s->id) << "</h2><dl>";
  row("State", "session-state", state_badge(s->state));
  row("Last error", "session-error",
      s->last_error ? html_escape(*s->last_error) : "<span class=\"none\">&#8212;</span>");
  row("Last refresh", "session-last", when(s->last_refresh, c.now));
  row("Next refresh", "session-next", when(s->next_refresh, c.now));
  row("Refreshes", "session-count", std::to_string(s->refresh_count));
  row("Failed attempts in a row", "session-retries", std::to_string(s->retry_count));
  row("Refreshing now", "session-refreshing", s->refreshing ? "yes" : "no");
  if (s->state == SessionState::paused) {
    row("Paused", "session-paused", when(s->paused_at, c.now));
    row("Pause reason", "session-pause-reason",
        s->pause_reason ? html_escape(*s->pause_reason) : std::string());
  }
  // With several sites the JSON and the refresh name the site (an id may be
  // in two).
  const std::string json_path =
      (site.empty() ? "/sessions/" : "/sites/" + url_encode(site) + "/sessions/") +
      url_encode(s->id);
  o << "</dl><p><button type=\"button\" id=\"refresh-now\" data-session=\"" << html_escape(s->id);
  if (!site.empty()) o << "\" data-site=\"" << html_escape(site);
  o << "\">Refresh now</button> <output id=\"refresh-result\" role=\"status\"></output></p>"
    << "<p class=\"hint\">JSON: <a href=\"" << html_escape(json_path) << "\">"
    << html_escape(json_path) << "</a></p></section>\n";
  event_log(o);
  footer(o, c);
  return {200, o.str()};
}

}  // namespace

std::string html_escape(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char ch : text) {
    switch (ch) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += ch;
    }
  }
  return out;
}

PageResult render_status_page(const StatusTable& table, const PageQuery& query,
                              const PageContext& context) {
  if (!query.session.empty()) return session_view(table, query, context);
  std::ostringstream o;
  head(o, "sessiond", "overview", "", context.sites.size());
  header(o, context);
  const auto sum = table.summary(context.now);
  counts(o, table, sum);
  sites_list(o, context);
  attention(o, table, context);
  event_log(o);
  chart(o, context);
  session_table(o, table, query, context);
  footer(o, context);
  return {200, o.str()};
}

}  // namespace sessiond
