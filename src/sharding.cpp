#include "sessiond/sharding.hpp"

#include <cctype>

namespace sessiond {
namespace {

// FNV-1a then a splitmix64 finaliser: stable across builds and platforms
// (std::hash is not), and well mixed for short ids.
std::uint64_t weight(std::string_view id, std::uint32_t replica) {
  std::uint64_t h = 1469598103934665603ull;
  for (unsigned char c : id) {
    h ^= c;
    h *= 1099511628211ull;
  }
  h ^= replica + 0x9e3779b97f4a7c15ull;
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ull;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebull;
  h ^= h >> 31;
  return h;
}

}  // namespace

std::uint32_t shard_owner(std::string_view id, std::uint32_t count) {
  std::uint32_t best = 0;
  std::uint64_t best_weight = 0;
  for (std::uint32_t r = 0; r < count; ++r) {
    auto w = weight(id, r);
    if (r == 0 || w > best_weight) {
      best = r;
      best_weight = w;
    }
  }
  return best;
}

std::optional<std::uint32_t> ordinal_from_pod_name(std::string_view pod_name) {
  auto dash = pod_name.rfind('-');
  if (dash == std::string_view::npos || dash + 1 == pod_name.size()) return std::nullopt;
  std::uint64_t value = 0;
  for (char c : pod_name.substr(dash + 1)) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return std::nullopt;
    value = value * 10 + static_cast<unsigned>(c - '0');
    if (value > 1000000) return std::nullopt;
  }
  return static_cast<std::uint32_t>(value);
}

}  // namespace sessiond
