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

#include <nlohmann/json.hpp>

#include "sessiond/session_status.hpp"

namespace sessiond {

struct StatusSummary {
  std::array<int, kSessionStateCount> counts{};  // by SessionState
  std::map<std::string, int> by_state;           // the same by name, for JSON
  int live = 0;                                  // the seed's "activeSessions"
  std::optional<double> oldest_age;              // seconds since the oldest live last refresh
};

// What /status says besides the sessions.
struct StatusInfo {
  std::string version;
  std::int64_t interval_s = 0;
  std::int64_t idle_timeout_s = 0;
  std::uint32_t shard_index = 0;
  std::uint32_t shard_count = 1;
};

class StatusTable {
 public:
  void put(const SessionStatus& s) { by_id_[s.id] = s; }
  void forget(const std::string& id) { by_id_.erase(id); }
  std::size_t size() const { return by_id_.size(); }
  const SessionStatus* find(const std::string& id) const;
  // Every status, in no particular order (the status page builds its views).
  template <class F>
  void for_each(F&& f) const {
    for (const auto& entry : by_id_) f(entry.second);
  }

  StatusSummary summary(WallTime now) const;
  // state_filter: only sessions in that state ("" = all); limit: at most that
  // many, in id order (a full list of 100k sessions is tens of MB).
  nlohmann::json status_json(const std::string& state_filter, std::uint64_t limit, bool ready,
                             bool running, const StatusInfo& info, WallTime now) const;
  // Fields of the heartbeat and status logs.
  nlohmann::json summary_fields(std::int64_t interval_s, WallTime now) const;

 private:
  std::unordered_map<std::string, SessionStatus> by_id_;
};

}  // namespace sessiond
