#pragma once
// `sessiond status --all`: every replica's /status merged into one table and
// one JSON document, replicas that did not answer named. FleetStatus is the
// merge and the formatting, plain and tested without sockets; find_peers and
// fetch_statuses are the thin network part (DNS, libcurl).

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sessiond/session_status.hpp"

namespace sessiond {

// One replica to ask: a short name for people and its base URL.
struct Peer {
  std::string name;  // "sessiond-1" (from reverse DNS), else "10.0.0.7:9464"
  std::string url;   // "http://10.0.0.7:9464"
};

// What one replica answered: the /status body, or why there is none.
struct ReplicaAnswer {
  std::string replica;             // Peer::name
  std::optional<int> http_status;  // absent: no HTTP answer at all
  std::string body;
  std::string error;  // transport error ("Timeout was reached"); "" when an HTTP answer came
};

class FleetStatus {
 public:
  // Takes one replica's answer: its sessions count when it is a 200 with
  // /status JSON, else the replica is listed with the reason.
  void add(const ReplicaAnswer& answer);

  // Every replica answered with its status.
  bool complete() const { return failed_.empty(); }

  // {"replicas": [{"replica", "shard": {index, count}, "ready", "version",
  //   "revision", "totalSessions", "activeSessions", "sessionsByState"} ...], "failedReplicas":
  //   [{"replica", "error"} ...], "sessions": [... each /status session plus "replica" and "shard"
  //   (index)], "totalSessions", "activeSessions", "sessionsByState", "shardCount",
  //   "shardsWithoutAnswer": [indexes below the largest count that no answering replica holds],
  //   "ready": every replica ready}
  nlohmann::json merged_json() const;

  // The `sessiond status` table with a REPLICA/SHARD column first, then the
  // totals and one line per replica that did not answer.
  std::string table(WallTime now) const;

 private:
  struct Replica {
    std::string name;
    nlohmann::json status;  // the /status document
  };
  struct Failed {
    std::string name;
    std::string why;
  };
  std::vector<Replica> replicas_;
  std::vector<Failed> failed_;
};

// "3s ago"-style ages and "in 4m" as `sessiond status` prints them.
std::string format_age(double seconds);
std::string format_until(const nlohmann::json& iso, WallTime now);
// Rows as `sessiond status` prints them: columns padded to the widest cell
// plus 3 spaces, the last one unpadded.
std::string format_table(const std::vector<std::vector<std::string>>& rows);

// The replicas named by --peers: a comma list of base URLs (taken as they
// are), or a DNS name, optionally NAME:PORT, whose every A and AAAA record is
// one replica on `default_port`. Throws std::runtime_error when the name does
// not resolve or the list is empty.
std::vector<Peer> find_peers(const std::string& peers, int default_port);

// GET URL/status (URL + `path`) from every peer at once (libcurl multi), each
// within `timeout`; "Authorization: Bearer TOKEN" when `admin_token` is set.
// One answer per peer, in the order of `peers`. The page's replica view asks
// "/status?limit=0": the counts without the session list.
std::vector<ReplicaAnswer> fetch_statuses(const std::vector<Peer>& peers,
                                          const std::string& admin_token,
                                          std::chrono::milliseconds timeout,
                                          const std::string& path = "/status");

}  // namespace sessiond
