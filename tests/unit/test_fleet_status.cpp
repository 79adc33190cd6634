// `sessiond status --all`'s merge and table, from /status bodies as the
// replicas send them: no sockets.

#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include <string>

#include "sessiond/fleet_status.hpp"
#include "sessiond/session_file.hpp"

using namespace sessiond;
using json = nlohmann::json;

namespace {

json session(const std::string& id, const std::string& state, const json& error = nullptr) {
  return {{"mobile", id},          {"state", state},      {"lastRefreshAgeSeconds", 30.0},
          {"refreshCount", 4},     {"refreshing", false}, {"nextRefresh", nullptr},
          {"lastError", error},    {"retryCount", 0},     {"isActive", true},
          {"lastRefresh", nullptr}};
}

// A /status body of shard `index` of `count` holding `sessions`.
ReplicaAnswer replica(const std::string& name, int index, int count, const json& sessions,
                      bool ready = true) {
  json by_state = {{"active", 0}, {"retrying", 0}, {"invalid", 0}};
  int active = 0;
  for (const auto& s : sessions) {
    by_state[s["state"].get<std::string>()] = by_state.value(s["state"].get<std::string>(), 0) + 1;
    active += s["state"] != "invalid";
  }
  json doc = {{"sessions", sessions},
              {"totalSessions", sessions.size()},
              {"activeSessions", active},
              {"sessionsByState", by_state},
              {"ready", ready},
              {"version", "0.1.0"},
              {"shard", {{"index", index}, {"count", count}}}};
  return {name, 200, doc.dump(), ""};
}

}  // namespace

TEST_CASE("fleet status: merges every replica's sessions and totals", "[fleet]") {
  FleetStatus fleet;
  // DNS gives the replicas in any order; the merge sorts sessions by id.
  fleet.add(replica("sessiond-1", 1, 3, json::array({session("0912b", "retrying", "HTTP 503")})));
  fleet.add(replica("sessiond-0", 0, 3,
                    json::array({session("0912c", "active"), session("0912a", "invalid")})));
  fleet.add(replica("sessiond-2", 2, 3, json::array({session("0912d", "active")})));
  CHECK(fleet.complete());

  auto merged = fleet.merged_json();
  REQUIRE(merged["sessions"].size() == 4);
  std::vector<std::string> ids, owners;
  for (const auto& s : merged["sessions"]) {
    ids.push_back(s["mobile"]);
    owners.push_back(s["replica"].get<std::string>() + "/" + s["shard"].dump());
  }
  CHECK(ids == std::vector<std::string>{"0912a", "0912b", "0912c", "0912d"});
  CHECK(owners ==
        std::vector<std::string>{"sessiond-0/0", "sessiond-1/1", "sessiond-0/0", "sessiond-2/2"});
  CHECK(merged["totalSessions"] == 4);
  CHECK(merged["activeSessions"] == 3);
  CHECK(merged["sessionsByState"] == json{{"active", 2}, {"retrying", 1}, {"invalid", 1}});
  CHECK(merged["shardCount"] == 3);
  CHECK(merged["shardsWithoutAnswer"] == json::array());
  CHECK(merged["failedReplicas"] == json::array());
  CHECK(merged["ready"] == true);
  REQUIRE(merged["replicas"].size() == 3);
  CHECK(merged["replicas"][0]["replica"] == "sessiond-0");  // by shard index
  CHECK(merged["replicas"][2]["shard"] == json{{"index", 2}, {"count", 3}});

  const auto table = fleet.table(std::chrono::system_clock::now());
  CHECK(table.rfind("REPLICA/SHARD   ID      STATE      LAST REFRESH   COUNT   NEXT   LAST ERROR\n",
                    0) == 0);
  CHECK(table.find("sessiond-1/1    0912b   retrying   30s ago        4       -      HTTP 503\n") !=
        std::string::npos);
  CHECK(table.find(
            "\n3 active of 4 sessions on 3 of 3 replicas; active 2, invalid 1, retrying 1\n") !=
        std::string::npos);
  CHECK(table.find("did not answer") == std::string::npos);
}

TEST_CASE("fleet status: replicas that did not answer are named with the reason", "[fleet]") {
  FleetStatus fleet;
  fleet.add(replica("sessiond-0", 0, 3, json::array({session("0912a", "active")})));
  fleet.add({"sessiond-1", std::nullopt, "", "Couldn't connect to server"});
  fleet.add({"sessiond-2", 401, R"({"error":"wrong bearer token"})", ""});
  fleet.add({"10.0.0.9:9464", 200, "<html>not sessiond</html>", ""});
  CHECK_FALSE(fleet.complete());

  auto merged = fleet.merged_json();
  CHECK(merged["sessions"].size() == 1);
  CHECK(merged["totalSessions"] == 1);
  CHECK(merged["failedReplicas"] ==
        json::array({{{"replica", "sessiond-1"}, {"error", "Couldn't connect to server"}},
                     {{"replica", "sessiond-2"}, {"error", "HTTP 401: wrong bearer token"}},
                     {{"replica", "10.0.0.9:9464"},
                      {"error", "the answer is not sessiond's /status JSON"}}}));
  // Shards 1 and 2 have no answering replica (we cannot tell which one died).
  CHECK(merged["shardsWithoutAnswer"] == json::array({1, 2}));
  CHECK(merged["ready"] == false);

  const auto table = fleet.table(std::chrono::system_clock::now());
  CHECK(table.find("\n1 active of 1 sessions on 1 of 4 replicas; active 1\n") != std::string::npos);
  CHECK(table.find("shards of 3 without an answering replica: 1, 2\n") != std::string::npos);
  CHECK(table.find("did not answer: sessiond-1 (Couldn't connect to server)\n") !=
        std::string::npos);
  CHECK(table.find("did not answer: sessiond-2 (HTTP 401: wrong bearer token)\n") !=
        std::string::npos);
}

TEST_CASE("fleet status: an id on two replicas (a rollout moving it) shows twice", "[fleet]") {
  FleetStatus fleet;
  fleet.add(replica("a", 0, 2, json::array({session("0912x", "active")})));
  fleet.add(replica("b", 1, 2, json::array({session("0912x", "pending")}), false));
  auto merged = fleet.merged_json();
  REQUIRE(merged["sessions"].size() == 2);
  CHECK(merged["ready"] == false);
  const auto table = fleet.table(std::chrono::system_clock::now());
  CHECK(table.find("not ready yet: b\n") != std::string::npos);
}

TEST_CASE("fleet status: ages, next refresh and a long error as in `sessiond status`", "[fleet]") {
  CHECK(format_age(5) == "5s");
  CHECK(format_age(119) == "119s");
  CHECK(format_age(600) == "10m");
  CHECK(format_age(7200) == "2h");
  const auto now = std::chrono::system_clock::now();
  CHECK(format_until(nullptr, now) == "-");
  CHECK(format_until("not a time", now) == "-");
  CHECK(format_until("2000-01-01T00:00:00Z", now) == "now");

  FleetStatus fleet;
  auto s = session("0912a", "retrying", std::string(80, 'e') + "\nsecond line");
  s["refreshing"] = true;
  fleet.add(replica("r", 0, 1, json::array({s})));
  const auto table = fleet.table(now);
  CHECK(table.find(" running ") != std::string::npos);
  CHECK(table.find(std::string(57, 'e') + "...\n") != std::string::npos);
  CHECK(table.find("second line") == std::string::npos);
}

TEST_CASE("fleet status: --peers as a list of URLs", "[fleet]") {
  auto peers = find_peers(" http://127.0.0.1:9464/, http://[::1]:9465 ,,", 1);
  REQUIRE(peers.size() == 2);
  CHECK(peers[0].name == "127.0.0.1:9464");
  CHECK(peers[0].url == "http://127.0.0.1:9464");
  CHECK(peers[1].name == "[::1]:9465");
  CHECK(peers[1].url == "http://[::1]:9465");
  // A numeric name resolves without a DNS server; the port comes from NAME:PORT or the default.
  auto dns = find_peers("127.0.0.1", 9464);
  REQUIRE(dns.size() == 1);
  CHECK(dns[0].url == "http://127.0.0.1:9464");
  CHECK(find_peers("127.0.0.1:9470", 9464)[0].url == "http://127.0.0.1:9470");
  CHECK_THROWS(find_peers("http://,", 9464));
  CHECK_THROWS(find_peers("127.0.0.1:port", 9464));
}

TEST_CASE("fleet status: each replica's build and counts by state; odd members read as absent",
          "[fleet]") {
  FleetStatus fleet;
  fleet.add({"a", 200,
             R"({"sessions":[],"version":"0.1.0","revision":"abc","ready":true,)"
             R"("totalSessions":3,"sessionsByState":{"active":2,"at_risk":1,"x":"y"},)"
             R"("shard":{"index":0,"count":2}})",
             ""});
  fleet.add({"b", 200, R"({"sessions":[],"version":7,"ready":"yes","shard":"x"})", ""});
  const auto merged = fleet.merged_json();
  REQUIRE(merged["replicas"].size() == 2);
  const auto& a = merged["replicas"][1];  // "b" has no shard index: sorted first
  CHECK(a["replica"] == "a");
  CHECK(a["revision"] == "abc");
  CHECK(a["sessionsByState"] == json{{"active", 2}, {"at_risk", 1}});
  const auto& b = merged["replicas"][0];
  CHECK(b["version"] == "");
  CHECK(b["ready"] == false);
  CHECK(b["shard"] == json::object());
  CHECK(merged["ready"] == false);
}
