// A site a reload removes leaves the Prometheus exposition: no series
// labelled with its name stays at its last value, and the same name added
// again starts from zero.

#include <catch2/catch.hpp>

#include <string>

#include "sessiond/metrics.hpp"

using namespace sessiond;

namespace {

// Every exposition line (not # HELP/# TYPE) that carries site="NAME".
int lines_of(const std::string& text, const std::string& site) {
  const std::string label = "site=\"" + site + "\"";
  int n = 0;
  std::size_t start = 0;
  while (start < text.size()) {
    auto end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(start, end - start);
    if (!line.empty() && line[0] != '#' && line.find(label) != std::string::npos) ++n;
    start = end + 1;
  }
  return n;
}

void use(Metrics& m, const std::string& site) {
  m.refresh_finished(RefreshResult::success, 0.1, site);
  m.request("check", "200", site);
  m.file_error(FileErrorKind::io, site);
  m.set_sessions(SessionState::active, 4, site);
  m.sample_site_circuit(site, true);
  m.sample_admission(site, 7);
}

}  // namespace

TEST_CASE("a removed site's series leave the exposition", "[metrics][sites]") {
  MetricsConfig mc;
  mc.sites = {"rade", "nics24"};
  Metrics m(mc);
  use(m, "rade");
  use(m, "nics24");
  m.add_site("epsilon");  // added by a reload, removed by the next
  use(m, "epsilon");
  REQUIRE(lines_of(m.serialize(), "nics24") > 0);
  REQUIRE(lines_of(m.serialize(), "epsilon") > 0);
  const int rade_lines = lines_of(m.serialize(), "rade");

  m.remove_site("nics24");
  m.remove_site("epsilon");
  auto text = m.serialize();
  CHECK(lines_of(text, "nics24") == 0);
  CHECK(lines_of(text, "epsilon") == 0);
  CHECK(m.sites() == std::vector<std::string>{"rade"});
  // The other site keeps every series and value.
  CHECK(lines_of(text, "rade") == rade_lines);
  CHECK(text.find(R"(sessiond_refresh_total{result="success",site="rade"} 1)") !=
        std::string::npos);
  CHECK(text.find(R"(sessiond_http_requests_total{code="200",site="rade",step="check"} 1)") !=
        std::string::npos);
  CHECK(text.find(R"(sessiond_refresh_admission_queued{site="rade"} 7)") != std::string::npos);

  // A cycle that finishes after its site was removed is not counted anywhere
  // (nor under another site's label).
  use(m, "nics24");
  text = m.serialize();
  CHECK(lines_of(text, "nics24") == 0);
  CHECK(m.refreshes(RefreshResult::success, "rade") == 1);
  CHECK(m.refreshes(RefreshResult::success, "nics24") == 0);
  CHECK(m.file_errors(FileErrorKind::io, "nics24") == 0);

  // Added again (a later reload): its series are back, at zero.
  m.add_site("nics24");
  text = m.serialize();
  CHECK(text.find(R"(sessiond_refresh_total{result="success",site="nics24"} 0)") !=
        std::string::npos);
  CHECK(text.find(R"(sessiond_sessions{site="nics24",state="active"} 0)") != std::string::npos);
  CHECK(text.find(R"(sessiond_session_file_errors_total{reason="io",site="nics24"} 0)") !=
        std::string::npos);
  CHECK(text.find(R"(sessiond_refresh_duration_seconds_count{site="nics24"} 0)") !=
        std::string::npos);
  CHECK(text.find(R"(site="nics24",step="check")") == std::string::npos);
  use(m, "nics24");
  CHECK(m.refreshes(RefreshResult::success, "nics24") == 1);
  CHECK(m.serialize().find(R"(sessiond_circuit_open{site="nics24"} 1)") != std::string::npos);

  // Unknown and the unlabelled "" are left alone.
  m.remove_site("never");
  m.remove_site("");
  CHECK(lines_of(m.serialize(), "rade") == rade_lines);
}

TEST_CASE("the flags' one site's admission backlog has no site label", "[metrics][sites]") {
  Metrics m(MetricsConfig{});
  m.sample_admission("", 12);
  CHECK(m.serialize().find("sessiond_refresh_admission_queued 12") != std::string::npos);
}
