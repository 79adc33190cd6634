// With a config file's sites, the oldest refresh age, the idle timeout and
// the interval are each site's (the `site` label): SessiondSessionAtRisk
// compares each site's oldest age with its own idle timeout. The flags' one
// site keeps the unlabelled series.

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

SiteInfo site(const std::string& name, Millis interval, Millis idle_timeout) {
  SiteInfo s;
  s.name = name;
  s.interval_s = interval.count() / 1000;
  s.interval = interval;
  s.idle_timeout = idle_timeout;
  return s;
}

}  // namespace

TEST_CASE("each site has its own oldest refresh age, idle timeout and interval",
          "[metrics][sites]") {
  MetricsConfig mc;
  mc.sites = {"rade", "nics24"};
  mc.site_timing["rade"] = {Millis(300000), Millis(3600000)};
  mc.site_timing["nics24"] = {Millis(60000), Millis(600000)};
  auto metrics = std::make_shared<Metrics>(mc);
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  StatusBoardSetup setup;
  setup.metrics = metrics;
  setup.now = [] { return kNow; };
  setup.sites = {site("rade", Millis(300000), Millis(3600000)),
                 site("nics24", Millis(60000), Millis(600000))};
  auto board = sys.spawn(status_board_impl, setup);
  put_active(board, "rade", "0912", kNow - 1000s);  // long ago, but well inside rade's hour
  put_active(board, "nics24", "0912", kNow - 100s);
  put_active(board, "nics24", "0913", kNow - 500s);  // past 80% of nics24's 10 minutes

  auto text = scrape_board(sys, board);
  CHECK(has_line(text, R"(sessiond_oldest_refresh_age_seconds{site="rade"} 1000)"));
  CHECK(has_line(text, R"(sessiond_oldest_refresh_age_seconds{site="nics24"} 500)"));
  CHECK(has_line(text, R"(sessiond_idle_timeout_seconds{site="rade"} 3600)"));
  CHECK(has_line(text, R"(sessiond_idle_timeout_seconds{site="nics24"} 600)"));
  CHECK(has_line(text, R"(sessiond_refresh_interval_seconds{site="rade"} 300)"));
  CHECK(has_line(text, R"(sessiond_refresh_interval_seconds{site="nics24"} 60)"));
  // No process-wide series beside the sites' (it would be the first site's).
  CHECK(text.find("\nsessiond_idle_timeout_seconds ") == std::string::npos);
  CHECK(text.find("\nsessiond_oldest_refresh_age_seconds ") == std::string::npos);

  // A reload changed nics24's idle timeout: the board's new site list says so.
  auto sites = std::make_shared<std::vector<SiteInfo>>(setup.sites);
  (*sites)[1] = site("nics24", Millis(120000), Millis(1200000));
  caf::anon_send(board, sites_atom::value, SiteInfoListPtr(sites));
  text = scrape_board(sys, board);
  CHECK(has_line(text, R"(sessiond_idle_timeout_seconds{site="nics24"} 1200)"));
  CHECK(has_line(text, R"(sessiond_refresh_interval_seconds{site="nics24"} 120)"));

  // A removed site's series leave; one a reload adds has its own.
  metrics->remove_site("nics24");
  metrics->add_site("epsilon");
  metrics->set_site_timing("epsilon", Millis(30000), Millis(90000));
  metrics->set_oldest_refresh_age(12, "epsilon");
  text = metrics->serialize();
  CHECK(text.find(R"(site="nics24")") == std::string::npos);
  CHECK(has_line(text, R"(sessiond_idle_timeout_seconds{site="epsilon"} 90)"));
  CHECK(has_line(text, R"(sessiond_oldest_refresh_age_seconds{site="epsilon"} 12)"));
  caf::anon_send_exit(board, caf::exit_reason::user_shutdown);
}

TEST_CASE("the flags' one site keeps the unlabelled timing series", "[metrics][sites]") {
  MetricsConfig mc;  // no sites
  mc.interval = Millis(300000);
  mc.idle_timeout = Millis(900000);
  auto metrics = std::make_shared<Metrics>(mc);
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  StatusBoardSetup setup;
  setup.metrics = metrics;
  setup.now = [] { return kNow; };
  // The daemon names the flags' site; it has no label.
  setup.sites = {site("default", Millis(300000), Millis(900000))};
  auto board = sys.spawn(status_board_impl, setup);
  put_active(board, "default", "0912", kNow - 42s);
  auto text = scrape_board(sys, board);
  CHECK(has_line(text, "sessiond_oldest_refresh_age_seconds 42"));
  CHECK(has_line(text, "sessiond_idle_timeout_seconds 900"));
  CHECK(has_line(text, "sessiond_refresh_interval_seconds 300"));
  CHECK(text.find("site=") == std::string::npos);
  caf::anon_send_exit(board, caf::exit_reason::user_shutdown);
}
