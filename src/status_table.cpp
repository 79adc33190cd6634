#include "sessiond/status_table.hpp"

#include <algorithm>
#include <vector>

#include "sessiond/build_info.hpp"
#include "sessiond/json_log.hpp"

namespace sessiond {

const SessionStatus* StatusTable::find(const std::string& site, const std::string& id) const {
  auto it = by_id_.find(key(site, id));
  if (it != by_id_.end()) return &it->second;
  // Site "": the session of that id, when exactly one site has it.
  if (site.empty()) {
    auto sites = sites_of(id);
    if (sites.size() == 1) return find(sites.front(), id);
  }
  return nullptr;
}

std::vector<std::string> StatusTable::sites_of(const std::string& id) const {
  std::vector<std::string> out;
  for (const auto& [k, s] : by_id_)
    if (s.id == id) out.push_back(s.site);
  std::sort(out.begin(), out.end());
  return out;
}

StatusSummary StatusTable::summary(WallTime now) const {
  return summary_of(std::string(), now);
}

StatusSummary StatusTable::summary_of(const std::string& site, WallTime now) const {
  StatusSummary sum;
  for (const auto& [k, s] : by_id_) {
    if (!site.empty() && s.site != site) continue;
    ++sum.total;
    ++sum.counts[static_cast<std::size_t>(s.state)];
    if (!s.is_live()) continue;
    ++sum.live;
    if (s.last_refresh) {
      double age = std::chrono::duration<double>(now - *s.last_refresh).count();
      if (!sum.oldest_age || age > *sum.oldest_age) sum.oldest_age = age;
    }
  }
  for (auto s : kSessionStates)
    sum.by_state[to_string(s)] = sum.counts[static_cast<std::size_t>(s)];
  return sum;
}

nlohmann::json StatusTable::status_json(const std::string& state_filter, std::uint64_t limit,
                                        bool ready, bool running, const StatusInfo& info,
                                        WallTime now, const std::string& site_filter,
                                        const std::vector<std::string>& sites) const {
  auto sum = summary_of(site_filter, now);
  nlohmann::json j;
  j["isRunning"] = running;
  j["activeSessions"] = sum.live;
  j["refreshInterval"] = info.interval_s;
  std::vector<const SessionStatus*> list;
  list.reserve(by_id_.size());
  std::map<std::string, int> site_names;
  for (const auto& name : sites) site_names[name];
  for (const auto& [k, s] : by_id_) {
    if (!s.site.empty()) ++site_names[s.site];
    if (!site_filter.empty() && s.site != site_filter) continue;
    if (state_filter.empty() || state_filter == to_string(s.state)) list.push_back(&s);
  }
  const auto shown = static_cast<std::size_t>(std::min<std::uint64_t>(limit, list.size()));
  auto by_id = [](auto* a, auto* b) { return a->id != b->id ? a->id < b->id : a->site < b->site; };
  std::partial_sort(list.begin(), list.begin() + static_cast<std::ptrdiff_t>(shown), list.end(),
                    by_id);
  auto sessions = nlohmann::json::array();
  for (std::size_t i = 0; i < shown; ++i) sessions.push_back(to_json(*list[i], now));
  j["sessions"] = std::move(sessions);
  j["matchingSessions"] = list.size();
  j["ready"] = ready;
  j["version"] = info.version;
  j["revision"] = build_revision();
  j["idleTimeout"] = info.idle_timeout_s;
  j["totalSessions"] = sum.total;
  if (!site_names.empty()) {
    auto sites = nlohmann::json::object();
    for (const auto& [name, n] : site_names) {
      if (!site_filter.empty() && name != site_filter) continue;
      auto s = summary_of(name, now);
      sites[name] = {{"totalSessions", s.total},
                     {"activeSessions", s.live},
                     {"sessionsByState", s.by_state},
                     {"oldestRefreshAgeSeconds",
                      s.oldest_age ? nlohmann::json(*s.oldest_age) : nlohmann::json()}};
    }
    j["sites"] = std::move(sites);
  }
  j["sessionsByState"] = sum.by_state;
  j["oldestRefreshAgeSeconds"] =
      sum.oldest_age ? nlohmann::json(*sum.oldest_age) : nlohmann::json();
  j["shard"] = {{"index", info.shard_index}, {"count", info.shard_count}};
  j["time"] = log::iso8601(now);
  return j;
}

nlohmann::json StatusTable::summary_fields(std::int64_t interval_s, WallTime now) const {
  auto sum = summary(now);
  return {
      {"active_sessions", sum.live},
      {"total_sessions", by_id_.size()},
      {"sessions_by_state", sum.by_state},
      {"oldest_refresh_age_s", sum.oldest_age ? nlohmann::json(*sum.oldest_age) : nlohmann::json()},
      {"refresh_interval_s", interval_s}};
}

}  // namespace sessiond
