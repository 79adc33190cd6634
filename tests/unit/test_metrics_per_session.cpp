// --per-session-metrics: session ids are unique per site only, so with a
// config file's sites the per-session series carry the `site` label too: two
// sites' sessions of the same id are two series, and one site forgetting its
// session leaves the other's. The flags' one site keeps {session} alone.

#include <catch2/catch.hpp>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>
#include <caf/typed_event_based_actor.hpp>

#include <chrono>
#include <memory>
#include <string>

#include "board_support.hpp"
#include "sessiond/metrics.hpp"
#include "sessiond/status_board.hpp"

using namespace sessiond;
using namespace sessiond::testing;
using namespace std::chrono_literals;

namespace {

const WallTime kNow = WallTime(std::chrono::seconds(1'800'000'000));
const std::string kFamily = "sessiond_session_last_refresh_timestamp_seconds";

SiteInfo site(const std::string& name) {
  SiteInfo s;
  s.name = name;
  return s;
}

}  // namespace

TEST_CASE("per-session series of two sites with the same id are kept apart", "[metrics][sites]") {
  MetricsConfig mc;
  mc.sites = {"rade", "nics24"};
  mc.per_session = true;
  auto metrics = std::make_shared<Metrics>(mc);
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  StatusBoardSetup setup;
  setup.metrics = metrics;
  setup.now = [] { return kNow; };
  setup.sites = {site("rade"), site("nics24")};
  auto board = sys.spawn(status_board_impl, setup);
  put_active(board, "rade", "0912", WallTime(std::chrono::seconds(1000)));
  put_active(board, "nics24", "0912", WallTime(std::chrono::seconds(2000)));

  auto text = scrape_board(sys, board);
  CHECK(has_line(text, kFamily + R"({session="0912",site="rade"} 1000)"));
  CHECK(has_line(text, kFamily + R"({session="0912",site="nics24"} 2000)"));

  // nics24 forgets its 0912: rade's stays.
  caf::anon_send(board, forget_atom::value, std::string("nics24"), std::string("0912"));
  text = scrape_board(sys, board);
  CHECK(has_line(text, kFamily + R"({session="0912",site="rade"} 1000)"));
  CHECK(text.find(R"(session="0912",site="nics24")") == std::string::npos);

  // A removed site's per-session series leave with it.
  put_active(board, "nics24", "0913", WallTime(std::chrono::seconds(3000)));
  CHECK(has_line(scrape_board(sys, board), kFamily + R"({session="0913",site="nics24"} 3000)"));
  metrics->remove_site("nics24");
  text = scrape_board(sys, board);
  CHECK(text.find(R"(site="nics24")") == std::string::npos);
  CHECK(has_line(text, kFamily + R"({session="0912",site="rade"} 1000)"));
  caf::anon_send_exit(board, caf::exit_reason::user_shutdown);
}

TEST_CASE("the flags' one site keeps per-session series labelled by session only",
          "[metrics][sites]") {
  MetricsConfig mc;  // no sites
  mc.per_session = true;
  auto metrics = std::make_shared<Metrics>(mc);
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  StatusBoardSetup setup;
  setup.metrics = metrics;
  setup.now = [] { return kNow; };
  setup.sites = {site("default")};
  auto board = sys.spawn(status_board_impl, setup);
  put_active(board, "default", "0912", WallTime(std::chrono::seconds(1000)));
  CHECK(has_line(scrape_board(sys, board), kFamily + R"({session="0912"} 1000)"));
  caf::anon_send(board, forget_atom::value, std::string("default"), std::string("0912"));
  CHECK(scrape_board(sys, board).find(kFamily + "{") == std::string::npos);
  caf::anon_send_exit(board, caf::exit_reason::user_shutdown);
}
