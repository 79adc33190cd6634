#include "sessiond/site_diff.hpp"

#include <algorithm>

namespace sessiond {

SiteDiff diff_sites(const std::vector<SiteKey>& running, const std::vector<SiteKey>& next) {
  SiteDiff d;
  d.stop.assign(running.size(), false);
  auto find = [](const std::vector<SiteKey>& in, const std::string& name) {
    return std::find_if(in.begin(), in.end(), [&](const SiteKey& k) { return k.name == name; });
  };
  for (std::size_t i = 0; i < running.size(); ++i) {
    auto it = find(next, running[i].name);
    if (it != next.end() && it->fingerprint == running[i].fingerprint) continue;
    d.stop[i] = true;
    (it == next.end() ? d.removed : d.changed).push_back(running[i].name);
  }
  for (const auto& site : next) {
    auto it = find(running, site.name);
    const auto i = static_cast<std::size_t>(it - running.begin());
    if (it != running.end() && !d.stop[i]) {
      d.keep.emplace_back(i);
      d.unchanged.push_back(site.name);
    } else {
      d.keep.emplace_back(std::nullopt);
      if (it == running.end()) d.added.push_back(site.name);
    }
  }
  return d;
}

}  // namespace sessiond
