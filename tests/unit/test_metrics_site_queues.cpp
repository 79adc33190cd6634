// With a config file's sites, each site's own queues (its SiteLimiter in
// front of the shared HTTP client, its SiteBrowserLimiter in front of the
// browser pool) are sampled at scrape into the HTTP and browser families with
// the `site` label: the shared client has no rate limit of its own then, so
// without them sessiond_rate_limited_total and the queued gauges barely move
// and SessiondRateLimitBacklog / SessiondBrowserBacklog cannot fire.

#include <catch2/catch.hpp>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>
#include <caf/typed_event_based_actor.hpp>

#include <memory>
#include <string>
#include <vector>

#include "board_support.hpp"
#include "sessiond/metrics.hpp"
#include "sessiond/site_limiter.hpp"
#include "sessiond/status_board.hpp"

using namespace sessiond;
using namespace sessiond::testing;

namespace {

// The shared runners: keep what they are given, never answer (the requests
// stay in flight).
struct HeldTransport : HttpTransport {
  std::vector<Callback> held;
  void submit(HttpRequest, Callback done) override { held.push_back(std::move(done)); }
};
struct HeldBrowser : BrowserRunner {
  std::vector<Callback> held;
  void submit(BrowserStepRequest, Callback done) override { held.push_back(std::move(done)); }
};

}  // namespace

TEST_CASE("each site's own queues are sampled with its site label", "[metrics][sites]") {
  HeldTransport http;
  HeldBrowser browser;
  // rade: one request at a time, no rate limit; nics24: a bucket of one token
  // that refills once in 1000 s, so its second request waits for a token.
  SiteLimiter::Options ro;
  ro.max_in_flight = 1;
  SiteLimiter rade(http, ro);
  SiteLimiter::Options no;
  no.max_in_flight = 8;
  no.rate_per_second = 0.001;
  no.rate_burst = 1;
  SiteLimiter nics24(http, no);
  SiteBrowserLimiter::Options bo;
  bo.max_in_flight = 1;
  SiteBrowserLimiter nics24_browser(browser, bo);
  for (int i = 0; i < 3; ++i) {
    rade.submit(HttpRequest{}, [](HttpResponse) {});
    nics24.submit(HttpRequest{}, [](HttpResponse) {});
    nics24_browser.submit(BrowserStepRequest{}, [](BrowserStepResult) {});
  }
  REQUIRE(http.held.size() == 2);  // one of each site
  REQUIRE(browser.held.size() == 1);

  MetricsConfig mc;
  mc.sites = {"rade", "nics24"};
  auto metrics = std::make_shared<Metrics>(mc);
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  StatusBoardSetup setup;
  setup.metrics = metrics;
  SiteInfo a;
  a.name = "rade";
  a.http_load = [&rade] { return rade.load(); };
  SiteInfo b;
  b.name = "nics24";
  b.http_load = [&nics24] { return nics24.load(); };
  b.browser_load = [&nics24_browser] { return nics24_browser.load(); };
  setup.sites = {a, b};
  auto board = sys.spawn(status_board_impl, setup);

  auto text = scrape_board(sys, board);
  CHECK(has_line(text, R"(sessiond_http_in_flight{site="rade"} 1)"));
  CHECK(has_line(text, R"(sessiond_http_queued{site="rade"} 2)"));
  CHECK(has_line(text, R"(sessiond_rate_limited_total{site="rade"} 0)"));
  CHECK(has_line(text, R"(sessiond_http_in_flight{site="nics24"} 1)"));
  CHECK(has_line(text, R"(sessiond_http_queued{site="nics24"} 2)"));
  CHECK(has_line(text, R"(sessiond_rate_limited_total{site="nics24"} 1)"));
  CHECK(has_line(text, R"(sessiond_browser_in_flight{site="nics24"} 1)"));
  CHECK(has_line(text, R"(sessiond_browser_queued{site="nics24"} 2)"));
  // rade runs no browser step: no browser series of its own.
  CHECK(text.find(R"(sessiond_browser_queued{site="rade"})") == std::string::npos);
  // The shared client's own series stay unlabelled.
  CHECK(text.find("\nsessiond_http_queued ") != std::string::npos);

  // The counter only grows: a second scrape with no new wait adds nothing.
  CHECK(has_line(scrape_board(sys, board), R"(sessiond_rate_limited_total{site="nics24"} 1)"));
  caf::anon_send_exit(board, caf::exit_reason::user_shutdown);
}

TEST_CASE("a site's rate-limited counter survives its limiter being replaced", "[metrics][sites]") {
  MetricsConfig mc;
  mc.sites = {"rade"};
  Metrics m(mc);
  HttpLoad load;
  load.rate_limited_total = 5;
  m.sample_site_http("rade", load);
  load.rate_limited_total = 7;
  m.sample_site_http("rade", load);
  // A reload changed the site: its new limiter counts from zero again.
  load.rate_limited_total = 2;
  m.sample_site_http("rade", load);
  CHECK(has_line(m.serialize(), R"(sessiond_rate_limited_total{site="rade"} 9)"));
  // Unknown sites are ignored (the label stays bounded); removed ones leave.
  m.sample_site_http("never", load);
  CHECK(m.serialize().find(R"(site="never")") == std::string::npos);
  m.remove_site("rade");
  CHECK(m.serialize().find(R"(site="rade")") == std::string::npos);
}
