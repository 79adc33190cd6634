#include "sessiond/fleet_status.hpp"

#include <algorithm>
#include <iomanip>
#include <map>
#include <set>
#include <sstream>

#include "sessiond/session_file.hpp"

namespace sessiond {
namespace {

using json = nlohmann::json;

std::int64_t number_or(const json& doc, const char* key, std::int64_t fallback) {
  auto it = doc.find(key);
  return it != doc.end() && it->is_number_integer() ? it->get<std::int64_t>() : fallback;
}

// A replica's answer is another process's JSON: a member of the wrong type
// reads as absent (json::value would throw).
std::string string_or(const json& doc, const char* key) {
  auto it = doc.find(key);
  return it != doc.end() && it->is_string() ? it->get<std::string>() : std::string();
}

bool bool_or(const json& doc, const char* key) {
  auto it = doc.find(key);
  return it != doc.end() && it->is_boolean() && it->get<bool>();
}

// {state: count} with only integer counts.
json counts_by_state(const json& doc) {
  json out = json::object();
  if (auto it = doc.find("sessionsByState"); it != doc.end() && it->is_object())
    for (const auto& [state, n] : it->items())
      if (n.is_number_integer()) out[state] = n.get<std::int64_t>();
  return out;
}

// The shard index a replica reports (-1 when it does not say).
std::int64_t shard_index(const json& status) {
  auto it = status.find("shard");
  return it != status.end() && it->is_object() ? number_or(*it, "index", -1) : -1;
}

std::int64_t shard_count(const json& status) {
  auto it = status.find("shard");
  return it != status.end() && it->is_object() ? number_or(*it, "count", 1) : 1;
}

// A member of a session object, null when absent (operator[] on a const
// json must not be asked for a missing key).
const json& field(const json& object, const char* key) {
  static const json null;
  auto it = object.find(key);
  return it == object.end() ? null : *it;
}

std::string one_line(std::string text, std::size_t max) {
  std::replace_if(
      text.begin(), text.end(), [](unsigned char c) { return c < 0x20; }, ' ');
  if (text.size() > max) text = text.substr(0, max - 3) + "...";
  return text;
}

}  // namespace

std::string format_age(double s) {
  std::ostringstream out;
  if (s < 120)
    out << static_cast<long>(s) << "s";
  else if (s < 7200)
    out << static_cast<long>(s / 60) << "m";
  else
    out << static_cast<long>(s / 3600) << "h";
  return out.str();
}

std::string format_table(const std::vector<std::vector<std::string>>& rows) {
  if (rows.empty()) return {};
  std::vector<std::size_t> width(rows[0].size(), 0);
  for (const auto& r : rows)
    for (std::size_t i = 0; i < r.size() && i < width.size(); ++i)
      width[i] = std::max(width[i], r[i].size());
  std::ostringstream out;
  for (const auto& r : rows) {
    for (std::size_t i = 0; i < r.size(); ++i)
      out << std::left
          << std::setw(static_cast<int>(i + 1 < r.size() && i < width.size() ? width[i] + 3 : 0))
          << r[i];
    out << "\n";
  }
  return out.str();
}

std::string format_until(const json& iso, WallTime now) {
  if (!iso.is_string()) return "-";
  auto t = parse_iso8601(iso.get<std::string>());
  if (!t) return "-";
  double s = std::chrono::duration<double>(*t - now).count();
  return s <= 0 ? "now" : "in " + format_age(s);
}

void FleetStatus::add(const ReplicaAnswer& answer) {
  if (!answer.http_status) {
    failed_.push_back({answer.replica, answer.error.empty() ? "no answer" : answer.error});
    return;
  }
  if (*answer.http_status != 200) {
    std::string why = "HTTP " + std::to_string(*answer.http_status);
    auto doc = json::parse(answer.body, nullptr, false);
    if (doc.is_object() && doc.contains("error") && doc["error"].is_string())
      why += ": " + one_line(doc["error"].get<std::string>(), 200);
    failed_.push_back({answer.replica, why});
    return;
  }
  auto doc = json::parse(answer.body, nullptr, false);
  if (!doc.is_object() || !doc.contains("sessions") || !doc["sessions"].is_array()) {
    failed_.push_back({answer.replica, "the answer is not sessiond's /status JSON"});
    return;
  }
  replicas_.push_back({answer.replica, std::move(doc)});
}

json FleetStatus::merged_json() const {
  // Replicas by shard, then name: stable whatever order DNS gave.
  std::vector<const Replica*> order;
  for (const auto& r : replicas_) order.push_back(&r);
  std::stable_sort(order.begin(), order.end(), [](const Replica* a, const Replica* b) {
    auto ia = shard_index(a->status), ib = shard_index(b->status);
    return ia != ib ? ia < ib : a->name < b->name;
  });

  json out;
  auto replicas = json::array();
  auto sessions = json::array();
  std::map<std::string, std::int64_t> by_state;
  std::int64_t total = 0, active = 0, count = 0;
  std::set<std::int64_t> indexes;
  bool ready = failed_.empty();
  for (const Replica* r : order) {
    const json& s = r->status;
    const auto index = shard_index(s);
    json shard = json::object();
    if (index >= 0) shard = {{"index", index}, {"count", shard_count(s)}};
    const json states = counts_by_state(s);
    replicas.push_back({{"replica", r->name},
                        {"shard", shard},
                        {"ready", bool_or(s, "ready")},
                        {"version", string_or(s, "version")},
                        {"revision", string_or(s, "revision")},
                        {"totalSessions", number_or(s, "totalSessions", 0)},
                        {"activeSessions", number_or(s, "activeSessions", 0)},
                        {"sessionsByState", states}});
    ready = ready && bool_or(s, "ready");
    total += number_or(s, "totalSessions", 0);
    active += number_or(s, "activeSessions", 0);
    count = std::max(count, shard_count(s));
    if (index >= 0) indexes.insert(index);
    for (const auto& [state, n] : states.items()) by_state[state] += n.get<std::int64_t>();
    for (const auto& session : field(s, "sessions")) {
      if (!session.is_object()) continue;
      json row = session;
      row["replica"] = r->name;
      row["shard"] = index >= 0 ? json(index) : json();
      sessions.push_back(std::move(row));
    }
  }
  // By id; an id two replicas report (a rollout that moves it) stays twice.
  std::stable_sort(sessions.begin(), sessions.end(), [](const json& a, const json& b) {
    return a.value("mobile", "") < b.value("mobile", "");
  });
  auto failed = json::array();
  for (const auto& f : failed_) failed.push_back({{"replica", f.name}, {"error", f.why}});
  auto missing = json::array();
  for (std::int64_t i = 0; i < count; ++i)
    if (!indexes.count(i)) missing.push_back(i);

  out["replicas"] = std::move(replicas);
  out["failedReplicas"] = std::move(failed);
  out["sessions"] = std::move(sessions);
  out["totalSessions"] = total;
  out["activeSessions"] = active;
  out["sessionsByState"] = by_state;
  out["shardCount"] = count;
  out["shardsWithoutAnswer"] = std::move(missing);
  out["ready"] = ready;
  return out;
}

std::string FleetStatus::table(WallTime now) const {
  const json merged = merged_json();
  std::vector<std::vector<std::string>> rows = {
      {"REPLICA/SHARD", "ID", "STATE", "LAST REFRESH", "COUNT", "NEXT", "LAST ERROR"}};
  for (const auto& s : merged["sessions"]) {
    const json& error = field(s, "lastError");
    const json& shard = field(s, "shard");
    const json& age = field(s, "lastRefreshAgeSeconds");
    const json& count = field(s, "refreshCount");
    rows.push_back(
        {s.value("replica", "?") + "/" + (shard.is_number() ? shard.dump() : "?"),
         s.value("mobile", "?"), s.value("state", "?"),
         age.is_number() ? format_age(age.get<double>()) + " ago" : "never",
         count.is_number() ? count.dump() : "0",
         field(s, "refreshing") == true ? "running" : format_until(field(s, "nextRefresh"), now),
         error.is_string() ? one_line(error.get<std::string>(), 60) : "-"});
  }
  std::ostringstream out;
  out << format_table(rows);

  const auto answered = merged["replicas"].size();
  const auto asked = answered + merged["failedReplicas"].size();
  out << "\n"
      << merged["activeSessions"].get<std::int64_t>() << " active of "
      << merged["totalSessions"].get<std::int64_t>() << " sessions on " << answered << " of "
      << asked << " replicas";
  std::string states;
  for (const auto& [state, n] : merged["sessionsByState"].items())
    if (n.get<std::int64_t>() > 0)
      states += (states.empty() ? "" : ", ") + state + " " + std::to_string(n.get<std::int64_t>());
  out << (states.empty() ? "" : "; " + states) << "\n";
  std::string not_ready;
  for (const auto& r : merged["replicas"])
    if (!r["ready"].get<bool>())
      not_ready += (not_ready.empty() ? "" : ", ") + r["replica"].get<std::string>();
  if (!not_ready.empty()) out << "not ready yet: " << not_ready << "\n";
  if (!merged["shardsWithoutAnswer"].empty()) {
    std::string list;
    for (const auto& i : merged["shardsWithoutAnswer"])
      list += (list.empty() ? "" : ", ") + std::to_string(i.get<std::int64_t>());
    out << "shards of " << merged["shardCount"].get<std::int64_t>()
        << " without an answering replica: " << list << "\n";
  }
  for (const auto& f : failed_) out << "did not answer: " << f.name << " (" << f.why << ")\n";
  return out.str();
}

}  // namespace sessiond
