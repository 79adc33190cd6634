// The status page's HTML, rendered from a StatusTable without sockets:
// counts, the attention list, escaping, paging boundaries, the per-session
// view, the chart, and how long 100k sessions take; then the route against
// the real status board actor.

#include <catch2/catch.hpp>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>
#include <caf/typed_event_based_actor.hpp>

#include <chrono>
#include <cstdio>
#include <regex>
#include <string>
#include <vector>

#include "admin_routes.hpp"
#include "sessiond/status_board.hpp"
#include "sessiond/status_page.hpp"
#include "test_support.hpp"

using namespace sessiond;
using namespace std::chrono_literals;

namespace {

const WallTime kNow = testing::kStatusNow;

SessionStatus status(const std::string& id, SessionState state,
                     std::optional<std::chrono::seconds> age = std::nullopt) {
  return testing::make_status(id, state, age);
}

PageContext context() {
  PageContext c;
  c.now = kNow;
  c.ready = true;
  c.info.shard_index = 1;
  c.info.shard_count = 3;
  return c;
}

std::string render(const StatusTable& t, const PageQuery& q = {}) {
  auto r = render_status_page(t, q, context());
  REQUIRE(r.status == 200);
  return r.html;
}

// The text between the first `from` and the next `to`.
std::string between(const std::string& html, const std::string& from, const std::string& to) {
  auto a = html.find(from);
  REQUIRE(a != std::string::npos);
  auto b = html.find(to, a);
  REQUIRE(b != std::string::npos);
  return html.substr(a, b - a);
}

// Session ids of the rows of one table (by its id attribute), in order.
std::vector<std::string> rows(const std::string& html, const std::string& table_id) {
  const std::string part = between(html, "id=\"" + table_id + "\"", "</table>");
  std::vector<std::string> out;
  static const std::regex row("<tr data-session=\"([^\"]*)\"");
  for (auto it = std::sregex_iterator(part.begin(), part.end(), row); it != std::sregex_iterator();
       ++it)
    out.push_back((*it)[1]);
  return out;
}

int count(const std::string& html, const std::string& name) {
  std::smatch m;
  const std::regex re("id=\"count-" + name + "\">([0-9]+)<");
  REQUIRE(std::regex_search(html, m, re));
  return std::stoi(m[1]);
}

std::string id(int i) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "s%03d", i);
  return buf;
}

PageQuery view(const std::string& session) {
  PageQuery q;
  q.session = session;
  return q;
}

StatusTable numbered(int n) {
  StatusTable t;
  for (int i = n - 1; i >= 0; --i) t.put(status(id(i), SessionState::active, 10s));
  return t;
}

}  // namespace

TEST_CASE("status page: the counts match the table's summary", "[status_page]") {
  StatusTable t;
  int i = 0;
  for (auto s : kSessionStates)
    for (int k = 0; k <= static_cast<int>(s); ++k)  // a different count per state
      t.put(status("x" + std::to_string(i++), s, 30s));
  const std::string html = render(t);
  const auto sum = t.summary(kNow);
  for (auto s : kSessionStates)
    CHECK(count(html, to_string(s)) == sum.counts[static_cast<std::size_t>(s)]);
  CHECK(count(html, "total") == static_cast<int>(t.size()));
  CHECK(count(html, "live") == sum.live);
  // The build, shard and readiness.
  CHECK(html.find("id=\"shard\">shard 1 of 3<") != std::string::npos);
  CHECK(html.find("id=\"ready\" class=\"ok\">ready<") != std::string::npos);
  CHECK(html.find("id=\"build\">" SESSIOND_VERSION " (git ") != std::string::npos);
  CHECK(html.find("<a href=\"/replicas\">replicas</a>") != std::string::npos);
}

TEST_CASE("status page: sessions that need attention come first, most urgent first",
          "[status_page]") {
  StatusTable t;
  t.put(status("active1", SessionState::active, 10s));
  t.put(status("invalid-old", SessionState::invalid, 9000s));
  t.put(status("invalid-new", SessionState::invalid, 60s));
  t.put(status("file1", SessionState::file_error));
  t.put(status("retry-new", SessionState::retrying, 100s));
  t.put(status("retry-old", SessionState::retrying, 500s));
  t.put(status("risk1", SessionState::at_risk, 700s));
  t.put(status("failed1", SessionState::failed, 50s));
  t.put(status("paused1", SessionState::paused, 50s));
  t.put(status("pending1", SessionState::pending));
  const std::string html = render(t);
  CHECK(rows(html, "attention-table") == std::vector<std::string>{"risk1", "retry-old", "retry-new",
                                                                  "failed1", "file1", "invalid-new",
                                                                  "invalid-old"});
  CHECK(html.find("id=\"attention-count\">7<") != std::string::npos);

  // At most attention_limit rows, with a note.
  auto c = context();
  c.attention_limit = 3;
  auto limited = render_status_page(t, {}, c).html;
  CHECK(rows(limited, "attention-table") ==
        std::vector<std::string>{"risk1", "retry-old", "retry-new"});
  CHECK(limited.find("Showing the 3 most urgent of 7") != std::string::npos);

  StatusTable fine;
  fine.put(status("a", SessionState::active, 10s));
  CHECK(render(fine).find("Nothing needs attention.") != std::string::npos);
}

TEST_CASE("status page: every string is escaped", "[status_page]") {
  const std::string evil = "<script>alert(\"x\")</script> & 'y' <img src=x onerror=alert(1)>";
  CHECK(html_escape(evil) ==
        "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39; &lt;img src=x "
        "onerror=alert(1)&gt;");
  StatusTable t;
  auto s = status("s1", SessionState::failed, 10s);
  s.last_error = evil;
  t.put(s);
  auto p = status("s2", SessionState::paused, 10s);
  p.pause_reason = evil;
  p.paused_at = kNow - 5s;
  t.put(p);

  PageQuery q;
  q.q = "\"><script>alert(1)</script>";
  for (const auto& html : {render(t), render(t, q), render(t, view("s1")), render(t, view("s2"))}) {
    CHECK(html.find("<script>") == std::string::npos);
    CHECK(html.find("<img") == std::string::npos);
    // The only script is the external one; no inline style either (CSP).
    static const std::regex script("<script");
    CHECK(std::distance(std::sregex_iterator(html.begin(), html.end(), script),
                        std::sregex_iterator()) == 1);
    CHECK(html.find("<script src=\"/ui/app.js\" defer></script>") != std::string::npos);
    CHECK(html.find(" style=") == std::string::npos);
    CHECK(html.find(" onclick=") == std::string::npos);
  }
  CHECK(render(t).find("&lt;script&gt;alert(&quot;x&quot;)") != std::string::npos);
  CHECK(render(t, q).find("value=\"&quot;&gt;&lt;script&gt;") != std::string::npos);
  CHECK(render(t, view("s2")).find("id=\"session-pause-reason\">&lt;script&gt;") !=
        std::string::npos);
}

TEST_CASE("status page: paging by id range, at the boundaries", "[status_page]") {
  const StatusTable t = numbered(120);  // s000 .. s119
  auto ids = [](int from, int to) {
    std::vector<std::string> out;
    for (int i = from; i <= to; ++i) out.push_back(id(i));
    return out;
  };

  SECTION("first page: no previous, next after its last id") {
    auto html = render(t);
    CHECK(rows(html, "session-table") == ids(0, 49));
    CHECK(html.find("Sessions 1&#8211;50 of 120.") != std::string::npos);
    CHECK(html.find("rel=\"prev\"") == std::string::npos);
    CHECK(html.find("rel=\"next\" href=\"/?after=s049\"") != std::string::npos);
  }
  SECTION("a middle page: both links") {
    PageQuery q;
    q.after = "s049";
    auto html = render(t, q);
    CHECK(rows(html, "session-table") == ids(50, 99));
    CHECK(html.find("Sessions 51&#8211;100 of 120.") != std::string::npos);
    CHECK(html.find("rel=\"prev\" href=\"/?before=s050\"") != std::string::npos);
    CHECK(html.find("rel=\"next\" href=\"/?after=s099\"") != std::string::npos);
  }
  SECTION("the last page is short and has no next") {
    PageQuery q;
    q.after = "s099";
    auto html = render(t, q);
    CHECK(rows(html, "session-table") == ids(100, 119));
    CHECK(html.find("rel=\"next\"") == std::string::npos);
    CHECK(html.find("rel=\"prev\" href=\"/?before=s100\"") != std::string::npos);
  }
  SECTION("exactly a full last page has no next either") {
    PageQuery q;
    q.after = "s069";
    auto html = render(t, q);
    CHECK(rows(html, "session-table") == ids(70, 119));
    CHECK(html.find("rel=\"next\"") == std::string::npos);
  }
  SECTION("before: the page that ends just before the id") {
    PageQuery q;
    q.before = "s060";
    auto html = render(t, q);
    CHECK(rows(html, "session-table") == ids(10, 59));
    CHECK(html.find("Sessions 11&#8211;60 of 120.") != std::string::npos);
    q.before = "s050";
    html = render(t, q);
    CHECK(rows(html, "session-table") == ids(0, 49));
    CHECK(html.find("rel=\"prev\"") == std::string::npos);
    q.before = "s010";  // fewer than a page before it
    CHECK(rows(render(t, q), "session-table") == ids(0, 9));
  }
  SECTION("after the last id: nothing") {
    PageQuery q;
    q.after = "s119";
    auto html = render(t, q);
    CHECK(rows(html, "session-table").empty());
    CHECK(html.find("No session matches.") != std::string::npos);
  }
  SECTION("an id that is not in the table still pages from where it would be") {
    PageQuery q;
    q.after = "s0495";  // between s049 and s050
    CHECK(rows(render(t, q), "session-table").front() == "s050");
  }
  SECTION("page size and the filters are kept in the links") {
    PageQuery q;
    q.limit = 7;
    q.q = "s1";
    q.state = "active";
    auto html = render(t, q);
    CHECK(rows(html, "session-table") == ids(100, 106));
    CHECK(html.find("Sessions 1&#8211;7 of 20 matching.") != std::string::npos);
    CHECK(html.find("rel=\"next\" href=\"/?q=s1&amp;state=active&amp;limit=7&amp;after=s106\"") !=
          std::string::npos);
  }
}

TEST_CASE("status page: search by id and filter by state", "[status_page]") {
  StatusTable t;
  t.put(status("09120000001", SessionState::active, 10s));
  t.put(status("09121111111", SessionState::invalid, 10s));
  t.put(status("09350000001", SessionState::active, 10s));
  PageQuery q;
  q.q = "0912";
  CHECK(rows(render(t, q), "session-table") ==
        std::vector<std::string>{"09120000001", "09121111111"});
  q.state = "invalid";
  CHECK(rows(render(t, q), "session-table") == std::vector<std::string>{"09121111111"});
  q.q = "nothing";
  CHECK(rows(render(t, q), "session-table").empty());
}

TEST_CASE("status page: the per-session view", "[status_page]") {
  StatusTable t;
  auto s = status("0912", SessionState::retrying, 120s);
  s.next_refresh = kNow + 30s;
  s.last_error = "HTTP 503";
  s.retry_count = 2;
  s.refresh_count = 17;
  t.put(s);
  auto r = render_status_page(t, view("0912"), context());
  CHECK(r.status == 200);
  CHECK(r.html.find("<body data-view=\"session\" data-session=\"0912\">") != std::string::npos);
  CHECK(r.html.find("<button type=\"button\" id=\"refresh-now\" data-session=\"0912\">") !=
        std::string::npos);
  CHECK(r.html.find("id=\"session-error\">HTTP 503<") != std::string::npos);
  CHECK(r.html.find("id=\"session-count\">17<") != std::string::npos);
  CHECK(r.html.find(">2m 0s ago</time>") != std::string::npos);
  CHECK(r.html.find(">in 30s</time>") != std::string::npos);

  auto unknown = render_status_page(t, view("0000"), context());
  CHECK(unknown.status == 404);
  CHECK(unknown.html.find("No such session") != std::string::npos);
}

TEST_CASE("status page: the chart of the last hour", "[status_page]") {
  StatusTable t;
  auto c = context();
  RefreshHistory h([] { return kNow; });
  for (int i = 0; i < 8; ++i) h.record(RefreshResult::success);
  h.record(RefreshResult::transient_error);
  h.record(RefreshResult::logged_out);
  c.history = h.last_hour();
  auto html = render_status_page(t, {}, c).html;
  CHECK(html.find("id=\"refresh-chart\"") != std::string::npos);
  CHECK(html.find("data-total=\"10\" data-failed=\"2\"") != std::string::npos);
  CHECK(html.find("10 refreshes (8 ok, 1 transient errors, 1 logged out)") != std::string::npos);
  // The current minute is the last bar (x = 59 * 10 + 1), full height.
  CHECK(html.find("<rect class=\"ok\" x=\"591\" y=\"14\" width=\"8\" height=\"100\"/>") !=
        std::string::npos);
  CHECK(html.find("<rect class=\"fail\" x=\"591\" y=\"94\" width=\"8\" height=\"20\"/>") !=
        std::string::npos);
}

TEST_CASE("status page: the assets", "[status_page]") {
  auto js = ui_asset("app.js");
  REQUIRE(js);
  CHECK(std::string(js->content_type).rfind("text/javascript", 0) == 0);
  CHECK(std::string(js->body).find("new EventSource('/events')") != std::string::npos);
  CHECK(std::string(js->body).find("innerHTML") == std::string::npos);
  auto css = ui_asset("app.css");
  REQUIRE(css);
  CHECK(std::string(css->content_type).rfind("text/css", 0) == 0);
  CHECK_FALSE(ui_asset("../etc/passwd"));
  CHECK_FALSE(ui_asset(""));
}

TEST_CASE("status page: 100k sessions render a page quickly", "[status_page][perf]") {
  StatusTable t;
  for (int i = 0; i < 100000; ++i) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "09%09d", (i * 7919) % 100000);  // not in id order
    auto state = i % 50 == 0 ? SessionState::retrying : SessionState::active;
    t.put(status(buf, state, std::chrono::seconds(i % 600)));
  }
  REQUIRE(t.size() == 100000);
  auto time = [&](const char* what, const PageQuery& q) {
    const auto start = std::chrono::steady_clock::now();
    auto r = render_status_page(t, q, context());
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    std::printf("status page, 100k sessions, %s: %.1f ms, %zu bytes\n", what, ms, r.html.size());
    CHECK(r.status == 200);
    // Generous: the machine may be busy; a full sort or a full list would be
    // far slower (and tens of MB).
    CHECK(ms < 1000);
    CHECK(r.html.size() < 200 * 1024);
    return r.html;
  };
  auto first = time("first page", {});
  CHECK(rows(first, "session-table").front() == "09000000000");
  PageQuery deep;
  deep.after = "09000050000";
  CHECK(rows(time("a page in the middle", deep), "session-table").front() == "09000050001");
  PageQuery search;
  search.q = "0912";  // no match: ids are 09000000000-09000099999
  time("a search", search);
  PageQuery by_state;
  by_state.state = "retrying";
  CHECK(rows(time("state filter", by_state), "session-table").size() == 50);
  CHECK(rows(first, "attention-table").size() == 100);
  CHECK(count(first, "retrying") == 2000);
}

TEST_CASE("status page: the route asks the real status board and checks its parameters",
          "[status_page]") {
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  StatusBoardSetup setup;
  setup.now = [] { return kNow; };
  auto board = sys.spawn(status_board_impl, setup);
  caf::anon_send(
      board, put_atom::value,
      std::make_shared<const SessionStatus>(status("0912", SessionState::at_risk, 700s)));
  caf::anon_send(board, scanned_atom::value);
  AdminRoutes routes(sys, supervisor_actor{}, board, AdminRoutes::Options{});
  auto header = [](const Reply& r, const std::string& name) {
    for (const auto& [n, v] : r.headers)
      if (n == name) return v;
    return std::string();
  };

  auto r = routes.page(PageParams{});
  CHECK(r.status == 200);
  CHECK(r.content_type == "text/html; charset=utf-8");
  CHECK(header(r, "Content-Security-Policy") == kStatusPageCsp);
  CHECK(header(r, "Cache-Control") == "no-store");
  CHECK(rows(r.body, "attention-table") == std::vector<std::string>{"0912"});
  CHECK(r.body.find("id=\"ready\" class=\"ok\">ready<") != std::string::npos);

  PageParams one;
  one.session = "0912";
  CHECK(routes.page(one).status == 200);
  one.session = "0000";
  CHECK(routes.page(one).status == 404);
  one.session = "../etc";
  CHECK(routes.page(one).status == 400);

  auto bad = [&](auto field, const char* value) {
    PageParams p;
    p.*field = value;
    auto reply = routes.page(p);
    CHECK(reply.status == 400);
    CHECK(reply.body.find("<script") == std::string::npos);
    return reply;
  };
  CHECK(bad(&PageParams::state, "<b>bogus</b>").body.find("&lt;b&gt;bogus") != std::string::npos);
  bad(&PageParams::limit, "0");
  bad(&PageParams::limit, "501");
  bad(&PageParams::limit, "ten");
  bad(&PageParams::after, "a/b");
  bad(&PageParams::q, "line\nbreak");
  bad(&PageParams::site, "Not A Site");
  PageParams ok;
  ok.limit = "500";
  ok.q = "09";
  CHECK(routes.page(ok).status == 200);

  auto js = AdminRoutes::ui("app.js");
  CHECK(js.status == 200);
  CHECK(header(js, "X-Content-Type-Options") == "nosniff");
  CHECK(AdminRoutes::ui("other.js").status == 404);
  auto login = AdminRoutes::page_login();
  CHECK(login.status == 401);
  CHECK(login.body.find("<form method=\"post\" action=\"/login\">") != std::string::npos);
  CHECK(header(login, "Content-Security-Policy") == kStatusPageCsp);
  caf::anon_send_exit(board, caf::exit_reason::user_shutdown);
}

namespace {

SessionStatus at_site(const std::string& site, const std::string& id, SessionState state) {
  auto s = status(id, state, 30s);
  s.site = site;
  return s;
}

}  // namespace

TEST_CASE("status page: with several sites, a line per site and the rows grouped by site",
          "[status_page]") {
  StatusTable t;
  // The same id in two sites; ids interleave across sites.
  t.put(at_site("beta", "0912", SessionState::active));
  t.put(at_site("alpha", "0912", SessionState::active));
  t.put(at_site("alpha", "0915", SessionState::retrying));
  t.put(at_site("beta", "0913", SessionState::pending));
  t.put(at_site("alpha", "0911", SessionState::active));
  auto c = context();
  // As the board has them from sites_json: the configured order, not by name.
  c.sites = {{"beta", 2, 1, "open", ""},
             {"alpha", 3, 2, "closed", ""},
             {"delta", 0, 0, "closed", "cannot read /srv/<delta>"}};
  const std::string html = render_status_page(t, {}, c).html;

  const std::string list = between(html, "<section id=\"sites\">", "</section>");
  CHECK(list.find("<li data-site=\"beta\"><b class=\"site-name\">beta</b>: <span class=\"n "
                  "site-active\">1</span> active of <span class=\"n site-total\">2</span>, "
                  "breaker <span class=\"breaker breaker-open\">open</span></li>") !=
        std::string::npos);
  CHECK(list.find("<li data-site=\"alpha\">") != std::string::npos);
  // A site without sessions (its directory is missing) is listed with its error, escaped.
  CHECK(list.find("<li data-site=\"delta\" class=\"bad\">") != std::string::npos);
  CHECK(list.find("cannot read /srv/&lt;delta&gt;") != std::string::npos);
  CHECK(list.find(">delta</b>: <span class=\"n site-active\">0</span> active of") !=
        std::string::npos);

  // The session table: beta's rows under beta's line, then alpha's; id order inside.
  const std::string table = between(html, "id=\"session-table\"", "</table>");
  std::vector<std::string> order;
  static const std::regex item(
      R"re(<tr (?:class="site-group" data-site="([^"]*)"|data-session="([^"]*)" data-state="[^"]*" data-site="([^"]*)"))re");
  for (auto it = std::sregex_iterator(table.begin(), table.end(), item);
       it != std::sregex_iterator(); ++it)
    order.push_back((*it)[1].matched ? "[" + (*it)[1].str() + "]"
                                     : (*it)[3].str() + "/" + (*it)[2].str());
  CHECK(order == std::vector<std::string>{"[beta]", "beta/0912", "beta/0913", "[alpha]",
                                          "alpha/0911", "alpha/0912", "alpha/0915"});
  CHECK(table.find("<th colspan=\"6\"><b class=\"site-name\">alpha</b>: <span class=\"n "
                   "site-active\">2</span> active of <span class=\"n site-total\">3</span>") !=
        std::string::npos);
  CHECK(table.find("data-site=\"delta\"") == std::string::npos);  // no rows: no group

  // Paging stays by id: the pager's keys are the page's smallest and largest ids.
  PageQuery q;
  q.limit = 2;
  q.after = "0911";
  const std::string paged = render_status_page(t, q, c).html;
  CHECK(paged.find("rel=\"next\" href=\"/?limit=2&amp;after=0912\"") != std::string::npos);
  CHECK(paged.find("rel=\"prev\" href=\"/?limit=2&amp;before=0912\"") != std::string::npos);
}

TEST_CASE("status page: with several sites, a session is named by its site too", "[status_page]") {
  StatusTable t;
  t.put(at_site("beta", "0912", SessionState::active));
  t.put(at_site("alpha", "0912", SessionState::retrying));
  t.put(at_site("alpha", "0911", SessionState::active));
  auto c = context();
  c.sites = {{"alpha", 2, 1, "closed", ""}, {"beta", 1, 1, "closed", ""}};
  const std::string html = render_status_page(t, {}, c).html;
  CHECK(html.find("data-sites=\"2\"") != std::string::npos);
  CHECK(html.find("<a href=\"/s/0912?site=beta\">") != std::string::npos);
  CHECK(html.find("<a href=\"/s/0912?site=alpha\">") != std::string::npos);

  // An id two sites have: the view lists them instead of "no such session".
  PageQuery q;
  q.session = "0912";
  auto both = render_status_page(t, q, c);
  CHECK(both.status == 300);
  CHECK(both.html.find("id=\"ambiguous\"") != std::string::npos);
  CHECK(both.html.find("href=\"/s/0912?site=alpha\"") != std::string::npos);
  // With its site: that session, its JSON and refresh under /sites/{site}.
  q.site = "beta";
  auto beta = render_status_page(t, q, c);
  CHECK(beta.status == 200);
  CHECK(beta.html.find("<span class=\"state state-active\">") != std::string::npos);
  CHECK(beta.html.find("href=\"/sites/beta/sessions/0912\"") != std::string::npos);
  CHECK(beta.html.find("data-session=\"0912\" data-site=\"beta\">Refresh now") !=
        std::string::npos);
  // An id one site has needs no site.
  q = {};
  q.session = "0911";
  CHECK(render_status_page(t, q, c).status == 200);
  q.site = "beta";
  CHECK(render_status_page(t, q, c).status == 404);
}

TEST_CASE("status page: one site (or none) renders as before, ungrouped", "[status_page]") {
  StatusTable t;
  t.put(at_site("only", "0912", SessionState::active));
  t.put(status("0913", SessionState::active, 30s));
  const std::string html = render(t);  // context().sites is empty
  CHECK(html.find("id=\"sites\"") == std::string::npos);
  CHECK(html.find("site-group") == std::string::npos);
  CHECK(html.find("data-site") == std::string::npos);
  CHECK(rows(html, "session-table") == std::vector<std::string>{"0912", "0913"});
}

TEST_CASE("status page: the board's site lines are GET /sites' numbers", "[status_page]") {
  StatusTable t;
  t.put(at_site("alpha", "1", SessionState::active));
  t.put(at_site("alpha", "2", SessionState::failed));
  SiteInfo alpha;
  alpha.name = "alpha";
  alpha.breaker = [] { return std::string("half_open"); };
  SiteInfo gone;
  gone.name = "gone";
  gone.error = "cannot read /s/gone";
  const auto json = sites_json({alpha, gone}, {}, t, kNow);
  const auto lines = site_lines(json["sites"]);
  REQUIRE(lines.size() == 2);
  CHECK(lines[0].name == "alpha");
  CHECK(lines[0].total == json["sites"][0]["totalSessions"]);
  CHECK(lines[0].total == 2);
  CHECK(lines[0].active == json["sites"][0]["activeSessions"]);
  CHECK(lines[0].breaker == "half_open");
  CHECK(lines[0].error.empty());
  CHECK(lines[1].error == "cannot read /s/gone");
}

TEST_CASE("status page: the real board groups by site only with several sites", "[status_page]") {
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  auto page_of = [&](std::vector<SiteInfo> sites) {
    StatusBoardSetup setup;
    setup.now = [] { return kNow; };
    setup.sites = std::move(sites);
    auto board = sys.spawn(status_board_impl, setup);
    caf::anon_send(
        board, put_atom::value,
        std::make_shared<const SessionStatus>(at_site("a", "0912", SessionState::active)));
    caf::scoped_actor self{sys};
    std::string html;
    self->request(board, caf::infinite, page_atom::value, PageQuery{})
        .receive([&](const PageResult& r) { html = r.html; }, [](caf::error&) {});
    caf::anon_send_exit(board, caf::exit_reason::user_shutdown);
    return html;
  };
  SiteInfo a, b;
  a.name = "a";
  b.name = "b";
  b.error = "no such directory";
  const auto two = page_of({a, b});
  CHECK(two.find("<li data-site=\"a\">") != std::string::npos);
  CHECK(two.find("<li data-site=\"b\" class=\"bad\">") != std::string::npos);
  CHECK(two.find("<tr class=\"site-group\" data-site=\"a\">") != std::string::npos);
  const auto one = page_of({a});
  CHECK(one.find("id=\"sites\"") == std::string::npos);
  CHECK(one.find("site-group") == std::string::npos);
}
