#pragma once
// What a reload that changes only sites does to each of them: a site is
// identified by its name and compared by its fingerprint (its settings and
// its profile's bytes). Removed and changed sites stop; added and changed
// ones start; the others are kept as they run (timers, counters). Plain: the
// daemon's wiring performs it.

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

namespace sessiond {

struct SiteKey {
  std::string name;
  std::string fingerprint;
};

struct SiteDiff {
  std::vector<bool> stop;  // per running site: it stops (removed or changed)
  // Per site of the new configuration: the running site it keeps (its
  // index), or nullopt: start it.
  std::vector<std::optional<std::size_t>> keep;
  std::vector<std::string> added, removed, changed, unchanged;  // names, for the log
};

SiteDiff diff_sites(const std::vector<SiteKey>& running, const std::vector<SiteKey>& next);

}  // namespace sessiond
