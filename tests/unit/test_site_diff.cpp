// diff_sites: what a sites-only reload stops, starts and keeps.

#include <catch2/catch.hpp>

#include "sessiond/site_diff.hpp"

using namespace sessiond;
using V = std::vector<std::string>;

TEST_CASE("a reload keeps unchanged sites, restarts changed ones, adds and removes",
          "[site_diff]") {
  std::vector<SiteKey> running = {{"baman24", "f1"}, {"rade", "f2"}, {"nics24", "f3"}};
  std::vector<SiteKey> next = {{"nics24", "f3-new"}, {"baman24", "f1"}, {"other", "f4"}};
  auto d = diff_sites(running, next);
  CHECK(d.stop == std::vector<bool>{false, true, true});
  REQUIRE(d.keep.size() == 3);
  CHECK_FALSE(d.keep[0]);                             // nics24 changed: started anew
  CHECK(d.keep[1] == std::optional<std::size_t>(0));  // baman24 kept as it runs
  CHECK_FALSE(d.keep[2]);                             // other: added
  CHECK(d.added == V{"other"});
  CHECK(d.removed == V{"rade"});
  CHECK(d.changed == V{"nics24"});
  CHECK(d.unchanged == V{"baman24"});
}

TEST_CASE("the same sites in another order change nothing", "[site_diff]") {
  std::vector<SiteKey> running = {{"a", "1"}, {"b", "2"}};
  auto d = diff_sites(running, {{"b", "2"}, {"a", "1"}});
  CHECK(d.stop == std::vector<bool>{false, false});
  CHECK(d.keep == std::vector<std::optional<std::size_t>>{1, 0});
  CHECK(d.added.empty());
  CHECK(d.removed.empty());
  CHECK(d.changed.empty());
  CHECK(d.unchanged == V{"b", "a"});
}

TEST_CASE("a reload to no sites stops them all; from none starts them all", "[site_diff]") {
  auto gone = diff_sites({{"a", "1"}}, {});
  CHECK(gone.stop == std::vector<bool>{true});
  CHECK(gone.removed == V{"a"});
  auto fresh = diff_sites({}, {{"a", "1"}});
  CHECK(fresh.keep == std::vector<std::optional<std::size_t>>{std::nullopt});
  CHECK(fresh.added == V{"a"});
}
