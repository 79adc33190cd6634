#include "sessiond/replicas_page.hpp"

#include <cstdint>
#include <set>
#include <sstream>
#include <vector>

#include "sessiond/build_info.hpp"
#include "sessiond/json_log.hpp"

namespace sessiond {
namespace {

using json = nlohmann::json;

// merged_json() is already sanitised, but the page must not throw on an odd
// member: wrong types read as absent.
const json& member(const json& object, const char* key) {
  static const json null;
  if (!object.is_object()) return null;
  auto it = object.find(key);
  return it == object.end() ? null : *it;
}

std::int64_t integer(const json& object, const char* key) {
  const json& v = member(object, key);
  return v.is_number_integer() ? v.get<std::int64_t>() : 0;
}

std::string text(const json& object, const char* key) {
  const json& v = member(object, key);
  return v.is_string() ? v.get<std::string>() : std::string();
}

std::string build_of(const json& replica) {
  const std::string version = text(replica, "version"), revision = text(replica, "revision");
  if (version.empty() && revision.empty()) return "<span class=\"none\">&#8212;</span>";
  return html_escape(version) + (revision.empty() ? "" : " (git " + html_escape(revision) + ")");
}

// The state columns: the states any replica has sessions in, sessiond's
// order first, then names this build does not know (a newer replica's).
std::vector<std::string> state_columns(const json& fleet) {
  std::set<std::string> used;
  for (const auto& [state, n] : member(fleet, "sessionsByState").items())
    if (n.is_number_integer() && n.get<std::int64_t>() > 0) used.insert(state);
  std::vector<std::string> out;
  for (auto s : kSessionStates)
    if (used.erase(to_string(s))) out.push_back(to_string(s));
  out.insert(out.end(), used.begin(), used.end());
  return out;
}

void head(std::ostringstream& o) {
  // The stylesheet only: this view has no live updates, so no script.
  o << "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
       "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
       "<title>sessiond: replicas</title><link rel=\"stylesheet\" href=\"/ui/app.css\"></head>\n"
       "<body data-view=\"replicas\">\n<header><h1><a href=\"/\">sessiond</a></h1>"
       "<nav><a href=\"/\">sessions</a> <a href=\"/replicas\" aria-current=\"page\">replicas</a>"
       "</nav><span id=\"build\">"
    << html_escape(build_version()) << " (git " << html_escape(build_revision())
    << ")</span></header>\n<main>\n<section id=\"replicas\"><h2>Replicas</h2>\n";
}

void not_configured(std::ostringstream& o) {
  o << "<p id=\"not-configured\">This sessiond was started without <code>--peers</code>, so it "
       "does not know the other replicas. Start it with <code>--peers NAME</code> (or "
       "<code>SESSIOND_PEERS=NAME</code>): the StatefulSet's headless Service, e.g. "
       "<code>sessiond-headless.NAMESPACE.svc.cluster.local</code>, whose every A/AAAA record is "
       "one replica on this replica's --listen port, or a comma list of base URLs such as "
       "<code>http://10.0.0.7:9464,http://10.0.0.8:9464</code>. <code>sessiond status "
       "--all</code> takes the same flag.</p>\n";
}

void table(std::ostringstream& o, const json& fleet) {
  const json& replicas = member(fleet, "replicas");
  const json& failed = member(fleet, "failedReplicas");
  const std::size_t answered = replicas.is_array() ? replicas.size() : 0;
  const std::size_t asked = answered + (failed.is_array() ? failed.size() : 0);
  const auto states = state_columns(fleet);
  const std::size_t columns = 6 + states.size();

  std::size_t ready = 0;
  std::set<std::string> builds;
  for (const auto& r : replicas) {
    ready += member(r, "ready") == true ? 1 : 0;
    builds.insert(text(r, "version") + " " + text(r, "revision"));
  }
  o << "<p id=\"replicas-summary\" data-answered=\"" << answered << "\" data-asked=\"" << asked
    << "\">" << answered << " of " << asked
    << " replicas answered: " << integer(fleet, "totalSessions") << " sessions, "
    << integer(fleet, "activeSessions") << " live.</p>\n";

  o << "<table id=\"replica-table\"><thead><tr><th>Replica</th><th>Shard</th><th>Ready</th>"
       "<th>Version</th><th>Sessions</th><th>Live</th>";
  for (const auto& s : states)
    o << "<th class=\"state-" << html_escape(s) << "\">" << html_escape(s) << "</th>";
  o << "</tr></thead>\n<tbody>\n";
  for (const auto& r : replicas) {
    const json& shard = member(r, "shard");
    const bool is_ready = member(r, "ready") == true;
    o << "<tr data-replica=\"" << html_escape(text(r, "replica")) << "\"><td class=\"id\">"
      << html_escape(text(r, "replica")) << "</td><td>";
    if (member(shard, "index").is_number_integer())
      o << integer(shard, "index") << " of " << integer(shard, "count");
    else
      o << "<span class=\"none\">&#8212;</span>";
    o << "</td><td class=\"" << (is_ready ? "ok" : "bad") << "\">" << (is_ready ? "yes" : "no")
      << "</td><td>" << build_of(r) << "</td><td class=\"num\">" << integer(r, "totalSessions")
      << "</td><td class=\"num\">" << integer(r, "activeSessions") << "</td>";
    const json& by_state = member(r, "sessionsByState");
    for (const auto& s : states)
      o << "<td class=\"num\">" << integer(by_state, s.c_str()) << "</td>";
    o << "</tr>\n";
  }
  for (const auto& f : failed)
    o << "<tr class=\"failed\" data-replica=\"" << html_escape(text(f, "replica"))
      << "\"><td class=\"id\">" << html_escape(text(f, "replica")) << "</td><td class=\"bad\" "
      << "colspan=\"" << columns - 1 << "\">did not answer: " << html_escape(text(f, "error"))
      << "</td></tr>\n";
  o << "</tbody>\n<tfoot><tr id=\"replica-totals\"><th>Total</th><td>";
  const std::int64_t shard_count = integer(fleet, "shardCount");
  if (shard_count > 0) o << shard_count << (shard_count == 1 ? " shard" : " shards");
  o << "</td><td class=\"" << (ready == asked ? "ok" : "bad") << "\">" << ready << " of " << asked
    << "</td><td>"
    << (builds.size() > 1
            ? "<span class=\"bad\">" + std::to_string(builds.size()) + " different builds</span>"
            : std::string())
    << "</td><td class=\"num\">" << integer(fleet, "totalSessions") << "</td><td class=\"num\">"
    << integer(fleet, "activeSessions") << "</td>";
  const json& by_state = member(fleet, "sessionsByState");
  for (const auto& s : states) o << "<td class=\"num\">" << integer(by_state, s.c_str()) << "</td>";
  o << "</tr></tfoot></table>\n";

  const json& missing = member(fleet, "shardsWithoutAnswer");
  if (missing.is_array() && !missing.empty()) {
    o << "<p id=\"shards-missing\" class=\"bad\">Shards of " << shard_count
      << " without an answering replica: ";
    bool first = true;
    for (const auto& i : missing) {
      if (!i.is_number_integer()) continue;
      o << (first ? "" : ", ") << i.get<std::int64_t>();
      first = false;
    }
    o << ". Their sessions are not refreshed while no replica holds them.</p>\n";
  }
}

}  // namespace

PageResult render_replicas_page(const ReplicasView& view) {
  std::ostringstream o;
  head(o);
  if (view.peers.empty()) {
    not_configured(o);
  } else if (!view.error.empty()) {
    o << "<p id=\"peers-error\" class=\"bad\">Cannot find the replicas of --peers "
      << html_escape(view.peers) << ": " << html_escape(view.error) << "</p>\n";
  } else {
    table(o, view.fleet);
  }
  const std::string at = html_escape(log::iso8601(view.now));
  o << "</section>\n</main>\n<footer>Rendered <time id=\"rendered\" datetime=\"" << at << "\">"
    << at << "</time>";
  if (!view.peers.empty())
    o << " from each replica's <code>/status?limit=0</code> (replicas: <code>--peers "
      << html_escape(view.peers) << "</code>)";
  o << ".</footer>\n</body></html>\n";
  return {200, o.str()};
}

}  // namespace sessiond
