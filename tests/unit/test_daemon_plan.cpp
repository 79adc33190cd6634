// What a configuration becomes (make_plan) and when a reload may restart only
// the sites that changed (sites_only_change).
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "sessiond/daemon_plan.hpp"
#include "test_support.hpp"

using namespace sessiond;
using sessiond::testing::kRefreshProfile;

namespace {

struct TempFile {
  std::string path;
  explicit TempFile(const std::string& content, const char* suffix = ".json") {
    char tmpl[] = "/tmp/sessiond-unit-plan-XXXXXX";
    int fd = ::mkstemp(tmpl);
    REQUIRE(fd >= 0);
    ::close(fd);
    std::remove(tmpl);
    path = std::string(tmpl) + suffix;
    write(content);
  }
  void write(const std::string& content) const { std::ofstream(path) << content; }
  ~TempFile() { std::remove(path.c_str()); }
};

Plan plan_of(const std::string& config_text, std::vector<const char*> extra = {}) {
  TempFile f(config_text);
  std::vector<const char*> argv = {"sessiond", "run", "--config", f.path.c_str()};
  argv.insert(argv.end(), extra.begin(), extra.end());
  return make_plan(parse_config(static_cast<int>(argv.size()), argv.data(), {}));
}

std::string plan_error(const std::string& config_text, std::vector<const char*> extra = {}) {
  try {
    plan_of(config_text, extra);
  } catch (const ConfigError& e) {
    return e.what();
  }
  FAIL("accepted: " << config_text);
  return {};
}

// Two sites on the HTTP test profile (no browser: make_plan starts none).
std::string two_sites(const std::string& profile, const std::string& extra_global = "",
                      const std::string& b_extra = "") {
  return R"({)" + extra_global + R"("sites": [
    {"name": "a", "profile": ")" +
         profile + R"(", "sessions_dir": "/tmp/a"},
    {"name": "b", "profile": ")" +
         profile + R"(", "sessions_dir": "/tmp/b")" + b_extra + R"(}]})";
}

}  // namespace

TEST_CASE("make_plan: the sites' shares must fit in the shared client", "[daemon_plan]") {
  TempFile profile(kRefreshProfile);  // max_in_flight: the profile default, 64
  auto plan = plan_of(two_sites(profile.path));
  REQUIRE(plan.sites.size() == 2);
  CHECK(plan.sites[0].max_in_flight == 64);
  CHECK(plan.host_connections == 64);
  CHECK(plan.exec_slots == 2);
  CHECK(plan.browser_slots == 0);
  const auto msg = plan_error(two_sites(profile.path), {"--max-in-flight", "100"});
  CHECK(msg.find("the sites' max_in_flight add up to 128, more than --max-in-flight 100") !=
        std::string::npos);
  // A site's own smaller share makes them fit.
  CHECK(plan_of(two_sites(profile.path, "", R"(, "max_in_flight": 36)"), {"--max-in-flight", "100"})
            .sites[1]
            .max_in_flight == 36);
}

TEST_CASE("make_plan: a site's fingerprint follows its settings and profile bytes",
          "[daemon_plan]") {
  TempFile profile(kRefreshProfile);
  const auto before = plan_of(two_sites(profile.path));
  const auto same = plan_of(two_sites(profile.path));
  CHECK(before.sites[0].fingerprint == same.sites[0].fingerprint);
  CHECK(before.global_fingerprint == same.global_fingerprint);
  const auto slower = plan_of(two_sites(profile.path, "", R"(, "interval": "7m")"));
  CHECK(slower.sites[0].fingerprint == before.sites[0].fingerprint);
  CHECK(slower.sites[1].fingerprint != before.sites[1].fingerprint);
  CHECK(slower.global_fingerprint == before.global_fingerprint);  // "sites" left out
  profile.write(std::string(kRefreshProfile) + "\n// edited\n");
  const auto edited = plan_of(two_sites(profile.path));
  CHECK(edited.sites[0].fingerprint != before.sites[0].fingerprint);
}

TEST_CASE("sites_only_change: only the sites differ, and they fit the running pools",
          "[daemon_plan]") {
  TempFile profile(kRefreshProfile);
  const auto now = plan_of(two_sites(profile.path));
  CHECK(sites_only_change(now, plan_of(two_sites(profile.path, "", R"(, "interval": "7m")"))));
  // Another global key: the process restarts.
  CHECK_FALSE(
      sites_only_change(now, plan_of(two_sites(profile.path, R"("rescan-interval": "5s",)"))));
  // More exec threads than the running pool has.
  TempFile more_exec(std::string(kRefreshProfile).insert(1, R"("exec_max_concurrent": 8,)"));
  auto next = plan_of(R"({"sites": [{"name": "a", "profile": ")" + profile.path +
                      R"(", "sessions_dir": "/tmp/a"},
      {"name": "b", "profile": ")" +
                      more_exec.path + R"(", "sessions_dir": "/tmp/b"}]})");
  CHECK(next.exec_slots == 8);
  CHECK_FALSE(sites_only_change(now, next));
  CHECK(sites_only_change(next, now));
  // The flags' one site: always a restart.
  const char* argv[] = {"sessiond", "run", "--profile", profile.path.c_str()};
  const auto flags = make_plan(parse_config(4, argv, {}));
  CHECK(flags.from_flags);
  CHECK_FALSE(sites_only_change(flags, flags));
}

TEST_CASE("make_plan: replicas tell the site who they are", "[daemon_plan]") {
  TempFile profile(kRefreshProfile);
  auto plan = plan_of(two_sites(profile.path), {"--shard-count", "3", "--shard-index", "2"});
  for (const auto& site : plan.sites) {
    const auto& h = site.profile->default_headers;
    CHECK(std::count(h.begin(), h.end(),
                     std::make_pair(std::string("X-Sessiond-Replica"), std::string("2"))) == 1);
  }
}
