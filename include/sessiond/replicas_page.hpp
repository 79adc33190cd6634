#pragma once
// GET /replicas: the status page's view of every replica of --peers (the
// StatefulSet's headless Service) in one table: shard, readiness, build,
// sessions by state, totals, and a row for each replica that did not answer.
// render_replicas_page is a plain function over FleetStatus::merged_json(),
// tested without sockets; the admin routes do the (thin) fetching. Every
// string from a replica goes through html_escape.

#include <string>

#include <nlohmann/json.hpp>

#include "sessiond/status_page.hpp"

namespace sessiond {

struct ReplicasView {
  std::string peers;     // --peers as configured; "" = not configured
  std::string error;     // the replicas could not be found (DNS), else ""
  nlohmann::json fleet;  // FleetStatus::merged_json() of their /status?limit=0
  WallTime now;
};

PageResult render_replicas_page(const ReplicasView& view);

}  // namespace sessiond
