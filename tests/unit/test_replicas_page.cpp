// GET /replicas: render_replicas_page over FleetStatus::merged_json() of
// /status?limit=0 bodies as replicas send them (no sockets): the table, the
// totals row, replicas that did not answer named with why, escaping, and the
// page without --peers.

#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include <string>

#include "sessiond/fleet_status.hpp"
#include "sessiond/replicas_page.hpp"

using namespace sessiond;
using json = nlohmann::json;

namespace {

// A /status?limit=0 body: counts, no session list.
ReplicaAnswer counts(const std::string& name, int index, int count, int active, int at_risk,
                     bool ready = true, const std::string& version = "0.1.0") {
  json doc = {{"sessions", json::array()},
              {"totalSessions", active + at_risk},
              {"matchingSessions", 0},
              {"activeSessions", active + at_risk},
              {"sessionsByState", {{"active", active}, {"at_risk", at_risk}, {"failed", 0}}},
              {"ready", ready},
              {"version", version},
              {"revision", "abc123"},
              {"shard", {{"index", index}, {"count", count}}}};
  return {name, 200, doc.dump(), ""};
}

std::string render(const FleetStatus& fleet, const std::string& peers = "sessiond-headless") {
  ReplicasView view;
  view.peers = peers;
  view.fleet = fleet.merged_json();
  view.now = std::chrono::system_clock::now();
  auto result = render_replicas_page(view);
  CHECK(result.status == 200);
  return result.html;
}

bool has(const std::string& html, const std::string& part) {
  return html.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("replicas page: one row per replica, the totals, a failed replica named", "[replicas]") {
  FleetStatus fleet;
  fleet.add(counts("sessiond-1", 1, 3, 40, 2, false));
  fleet.add(counts("sessiond-0", 0, 3, 50, 0));
  fleet.add({"sessiond-2", std::nullopt, "", "Timeout was reached"});
  const auto html = render(fleet);

  CHECK(has(html,
            "<p id=\"replicas-summary\" data-answered=\"2\" data-asked=\"3\">2 of 3 "
            "replicas answered: 92 sessions, 92 live.</p>"));
  // Columns: the states some replica has sessions in (failed has none).
  CHECK(has(html,
            "<th>Sessions</th><th>Live</th><th class=\"state-active\">active</th>"
            "<th class=\"state-at_risk\">at_risk</th></tr>"));
  CHECK_FALSE(has(html, ">failed</th>"));
  // By shard: sessiond-0 first.
  const auto row0 = html.find("<tr data-replica=\"sessiond-0\">");
  const auto row1 = html.find("<tr data-replica=\"sessiond-1\">");
  REQUIRE(row0 != std::string::npos);
  REQUIRE(row1 != std::string::npos);
  CHECK(row0 < row1);
  CHECK(has(html,
            "<tr data-replica=\"sessiond-1\"><td class=\"id\">sessiond-1</td><td>1 of 3</td>"
            "<td class=\"bad\">no</td><td>0.1.0 (git abc123)</td><td class=\"num\">42</td>"
            "<td class=\"num\">42</td><td class=\"num\">40</td><td class=\"num\">2</td></tr>"));
  CHECK(has(html,
            "<tr class=\"failed\" data-replica=\"sessiond-2\"><td class=\"id\">sessiond-2"
            "</td><td class=\"bad\" colspan=\"7\">did not answer: Timeout was reached</td>"));
  CHECK(has(html,
            "<tr id=\"replica-totals\"><th>Total</th><td>3 shards</td><td class=\"bad\">1 "
            "of 3</td><td></td><td class=\"num\">92</td><td class=\"num\">92</td>"
            "<td class=\"num\">90</td><td class=\"num\">2</td></tr>"));
  CHECK(has(html,
            "<p id=\"shards-missing\" class=\"bad\">Shards of 3 without an answering "
            "replica: 2."));
  CHECK(has(html, "<a href=\"/replicas\" aria-current=\"page\">replicas</a>"));
  CHECK_FALSE(has(html, "<script"));  // no script: the CSP's script-src has nothing to allow
}

TEST_CASE("replicas page: HTTP errors, mixed builds, all ready", "[replicas]") {
  FleetStatus fleet;
  fleet.add(counts("sessiond-0", 0, 2, 3, 0, true, "0.1.0"));
  fleet.add(counts("sessiond-1", 1, 2, 4, 0, true, "0.2.0"));
  fleet.add({"10.0.0.9:9464", 401, R"({"error":"wrong bearer token or cookie"})", ""});
  const auto html = render(fleet);
  CHECK(has(html, "did not answer: HTTP 401: wrong bearer token or cookie</td>"));
  CHECK(has(html, "<span class=\"bad\">2 different builds</span>"));
  CHECK(has(html, "<td class=\"bad\">2 of 3</td>"));  // the failed replica is not ready
  CHECK_FALSE(has(html, "shards-missing"));

  FleetStatus whole;
  whole.add(counts("sessiond-0", 0, 1, 3, 0));
  const auto one = render(whole);
  CHECK(has(one, "<td>1 shard</td><td class=\"ok\">1 of 1</td><td></td>"));
  CHECK_FALSE(has(one, "did not answer"));
}

TEST_CASE("replicas page: every string from a replica is escaped", "[replicas]") {
  FleetStatus fleet;
  json doc = {{"sessions", json::array()},
              {"totalSessions", 1},
              {"activeSessions", 1},
              {"sessionsByState", {{"<b>new\"state", 1}}},
              {"ready", true},
              {"version", "<script>alert(1)</script>"},
              {"revision", "\"><img src=x>"},
              {"shard", {{"index", 0}, {"count", 1}}}};
  fleet.add({"evil<i>'\"&", 200, doc.dump(), ""});
  fleet.add({"<b>dead</b>", 500, R"({"error":"<script>x</script>"})", ""});
  fleet.add({"odd", 200, R"({"sessions":[],"version":7,"ready":"yes","shard":"x"})", ""});
  const auto html = render(fleet, "<peers>&");
  CHECK_FALSE(has(html, "<script"));
  CHECK_FALSE(has(html, "<img"));
  CHECK_FALSE(has(html, "<b>"));
  CHECK_FALSE(has(html, "<i>"));
  CHECK_FALSE(has(html, "<peers>"));
  CHECK(has(html, "&lt;script&gt;alert(1)&lt;/script&gt; (git &quot;&gt;&lt;img src=x&gt;)"));
  CHECK(has(html, "data-replica=\"evil&lt;i&gt;&#39;&quot;&amp;\""));
  CHECK(has(html, "<th class=\"state-&lt;b&gt;new&quot;state\">&lt;b&gt;new&quot;state</th>"));
  CHECK(has(html, "did not answer: HTTP 500: &lt;script&gt;x&lt;/script&gt;"));
  CHECK(has(html, "--peers &lt;peers&gt;&amp;"));
  // Wrong types read as absent: no build, not ready, no shard.
  CHECK(has(html,
            "<tr data-replica=\"odd\"><td class=\"id\">odd</td><td><span class=\"none\">"
            "&#8212;</span></td><td class=\"bad\">no</td><td><span class=\"none\">"));
}

TEST_CASE("replicas page: without --peers it says how to set it; a DNS failure is shown",
          "[replicas]") {
  ReplicasView view;
  view.now = std::chrono::system_clock::now();
  auto none = render_replicas_page(view);
  CHECK(none.status == 200);
  CHECK(has(none.html, "<p id=\"not-configured\">"));
  CHECK(has(none.html, "<code>--peers NAME</code>"));
  CHECK(has(none.html, "sessiond-headless.NAMESPACE.svc.cluster.local"));
  CHECK_FALSE(has(none.html, "replica-table"));

  view.peers = "sessiond-headless.x.svc";
  view.error = "--peers: cannot resolve sessiond-headless.x.svc: Name or service not known";
  auto dns = render_replicas_page(view);
  CHECK(has(dns.html,
            "<p id=\"peers-error\" class=\"bad\">Cannot find the replicas of --peers "
            "sessiond-headless.x.svc: --peers: cannot resolve"));
  CHECK_FALSE(has(dns.html, "replica-table"));
}
