#pragma once
// Rendezvous (highest-random-weight) hashing: which replica owns a session id.
// Changing the replica count from N to N+1 moves only ~1/(N+1) of the ids.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sessiond {

struct Shard {
  std::uint32_t index = 0;
  std::uint32_t count = 1;
};

// Index in [0, count) of the replica that owns `id`.
std::uint32_t shard_owner(std::string_view id, std::uint32_t count);

inline bool owns(const Shard& shard, std::string_view id) {
  return shard.count <= 1 || shard_owner(id, shard.count) == shard.index;
}

// "sessiond-2" -> 2: the ordinal a StatefulSet gives its pods.
std::optional<std::uint32_t> ordinal_from_pod_name(std::string_view pod_name);

}  // namespace sessiond
