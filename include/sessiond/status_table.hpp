#pragma once
// The latest status of every session and what is derived from it: counts by
// state, live sessions, the oldest refresh age, the /status and
// /sessions/{id} JSON. The status board actor owns one; no CAF here.

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "sessiond/session_status.hpp"

namespace sessiond {

struct StatusSummary {
  std::array<int, kSessionStateCount> counts{};  // by SessionState
  std::map<std::string, int> by_state;           // the same by name, for JSON
  int live = 0;                                  // the seed's "activeSessions"
  int total = 0;
  std::optional<double> oldest_age;  // seconds since the oldest live last refresh
};

// What /status says besides the sessions.
struct StatusInfo {
  std::string version;
  std::int64_t interval_s = 0;
  std::int64_t idle_timeout_s = 0;
  std::uint32_t shard_index = 0;
  std::uint32_t shard_count = 1;
};

// Statuses are keyed by (site, id): ids are unique per site only.
class StatusTable {
 public:
  void put(const SessionStatus& s) { by_id_[key(s.site, s.id)] = s; }
  void forget(const std::string& site, const std::string& id) { by_id_.erase(key(site, id)); }
  void forget(const std::string& id) { forget(std::string(), id); }  // site ""
  std::size_t size() const { return by_id_.size(); }
  const SessionStatus* find(const std::string& site, const std::string& id) const;
  const SessionStatus* find(const std::string& id) const { return find(std::string(), id); }
  // The sites that have a session `id`, sorted.
  std::vector<std::string> sites_of(const std::string& id) const;
  // Every status, in no particular order (the status page builds its views).
  template <class F>
  void for_each(F&& f) const {
    for (const auto& entry : by_id_) f(entry.second);
  }

  StatusSummary summary(WallTime now) const;
  // state_filter: only sessions in that state ("" = all); limit: at most that
  // many, in id order (a full list of 100k sessions is tens of MB).
  // site_filter: only that site's sessions and totals ("" = all). Besides the
  // totals, "sites" has each site's counts: every site of `sites` (the
  // configured ones, also those without a session yet) and any a session has.
  nlohmann::json status_json(const std::string& state_filter, std::uint64_t limit, bool ready,
                             bool running, const StatusInfo& info, WallTime now,
                             const std::string& site_filter = {},
                             const std::vector<std::string>& sites = {}) const;
  // Counts by state, live and total of one site ("" = all sites).
  StatusSummary summary_of(const std::string& site, WallTime now) const;
  // Fields of the heartbeat and status logs.
  nlohmann::json summary_fields(std::int64_t interval_s, WallTime now) const;

 private:
  // Site names and ids never contain '/'.
  static std::string key(const std::string& site, const std::string& id) { return site + "/" + id; }
  std::unordered_map<std::string, SessionStatus> by_id_;
};

}  // namespace sessiond
