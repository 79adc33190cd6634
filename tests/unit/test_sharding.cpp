#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "sessiond/sharding.hpp"

using namespace sessiond;

namespace {
std::vector<std::string> ids(int n) {
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) out.push_back("0912" + std::to_string(1000000 + i));
  return out;
}
}  // namespace

TEST_CASE("every id has exactly one owner and the split is even", "[sharding]") {
  const std::uint32_t n = 3;
  std::vector<int> per(n, 0);
  for (auto& id : ids(30000)) {
    int owners = 0;
    for (std::uint32_t i = 0; i < n; ++i) owners += owns(Shard{i, n}, id) ? 1 : 0;
    REQUIRE(owners == 1);
    ++per[shard_owner(id, n)];
  }
  for (int c : per) CHECK(c == Approx(10000).epsilon(0.05));
}

TEST_CASE("going from 3 to 4 replicas moves about a quarter of the ids", "[sharding]") {
  int moved = 0;
  auto all = ids(20000);
  for (auto& id : all) {
    auto before = shard_owner(id, 3);
    auto after = shard_owner(id, 4);
    if (before != after) {
      ++moved;
      CHECK(after == 3);  // ids only move to the new replica
    }
  }
  CHECK(moved == Approx(all.size() / 4.0).epsilon(0.06));
}

TEST_CASE("pod ordinal comes from the StatefulSet pod name", "[sharding]") {
  CHECK(ordinal_from_pod_name("sessiond-2") == 2u);
  CHECK(ordinal_from_pod_name("my-app-sessiond-10") == 10u);
  CHECK_FALSE(ordinal_from_pod_name("sessiond"));
  CHECK_FALSE(ordinal_from_pod_name("sessiond-"));
  CHECK_FALSE(ordinal_from_pod_name("sessiond-x1"));
  CHECK(owns(Shard{0, 1}, "anything"));
}
