#pragma once
// Every Prometheus series sessiond exports, as references into one registry.
// prometheus-cpp's counters, gauges and histograms are thread-safe, so each is
// updated where its event happens (a refresh cycle, the supervisor, a scrape),
// with no message in between. A new metric: a member here and its
// registration in metrics.cpp. No CAF.

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "sessiond/browser_step.hpp"
#include "sessiond/duration.hpp"
#include "sessiond/http_client.hpp"
#include "sessiond/refresh_history.hpp"
#include "sessiond/session_file.hpp"
#include "sessiond/session_status.hpp"

namespace sessiond {

struct MetricsConfig {
  std::string version = SESSIOND_VERSION;
  Millis interval{300000};
  Millis idle_timeout{600000};
  std::uint32_t shard_index = 0;
  std::uint32_t shard_count = 1;
  std::size_t max_in_flight = 0;     // the HTTP client's cap
  double rate_limit_per_second = 0;  // the profile's token bucket; 0 = unlimited
  bool per_session = false;          // opt-in per-session series
  bool atomic_exchange = true;       // saves use renameat2(RENAME_EXCHANGE) (start-up probe)
  // The sites (few; the `site` label of the per-site series). Empty: those
  // series have no site label (tests of one site).
  std::vector<std::string> sites;
  // Each site's interval and idle timeout (its gauges); a site not here has
  // `interval` and `idle_timeout`.
  struct SiteTiming {
    Millis interval{0};
    Millis idle_timeout{0};
  };
  std::map<std::string, SiteTiming> site_timing;
};

class Metrics {
 public:
  explicit Metrics(const MetricsConfig& config);
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  prometheus::Registry& registry() { return *registry_; }
  std::string serialize() const;  // the text exposition

  // -- where things happen (thread-safe) --
  // `site`: one of MetricsConfig::sites, the series' `site` label ("" without sites).
  void refresh_finished(RefreshResult result, double seconds, const std::string& site = {});
  void request(const std::string& step, const std::string& code,
               const std::string& site = {});  // one request / command
  void file_error(FileErrorKind kind, const std::string& site = {});
  void actor_restarted() { restarts_->Increment(); }
  void browser_step(const BrowserStepResult& result);
  void browser_restarted() { browser_restarts_->Increment(); }
  // A successful refresh left token_deadline's token expired (or inside its margin).
  void token_not_renewed() { token_not_renewed_->Increment(); }
  // A save's rename, this long after the site's response it writes: the
  // window in which a process crash would lose a rotation.
  void save_lag(double seconds) { save_lag_->Observe(seconds); }
  // One group commit (SyncBatcher): its syncfs duration and how many saves it covered.
  void save_synced(double seconds, std::size_t saves);
  // The event stream (EventBus).
  void event_published(const std::string& type);
  void set_event_subscribers(double n) { event_subscribers_->Set(n); }
  void event_subscriber_dropped() { event_subscribers_dropped_->Increment(); }
  // Hooks: kind exec|webhook, result ok|failed|retried|dropped.
  void hook_delivery(const std::string& kind, const std::string& result, double n = 1);
  void set_hook_queue(const std::string& kind, double n);

  // -- derived (status board) and sampled (at scrape) --
  void set_sessions(SessionState state, double n, const std::string& site = {});
  // The sites with series (a copy: a reload may add one).
  std::vector<std::string> sites() const;
  // A site added by a reload: its series, at zero. Idempotent.
  void add_site(const std::string& site);
  // A site a reload removed: every series labelled site=NAME leaves the
  // exposition (a stale value would read as a live site). Later updates for
  // it are dropped; add_site(NAME) starts it again from zero.
  void remove_site(const std::string& site);
  // The oldest refresh age of a site's live sessions (of all without sites).
  void set_oldest_refresh_age(double seconds, const std::string& site = {});
  // A configured site's interval and idle timeout (a reload may change
  // them); the flags' one site keeps MetricsConfig's.
  void set_site_timing(const std::string& site, Millis interval, Millis idle_timeout);
  void set_ready(bool ready) { ready_->Set(ready ? 1 : 0); }
  // Opt-in per-session series. Session ids are unique per site only: with
  // sites they carry the `site` label too.
  void set_last_refresh(const std::string& session, WallTime t, const std::string& site = {});
  void forget_session(const std::string& session, const std::string& site = {});
  void sample_http(const HttpLoad& load);  // the shared client's (unlabelled)
  // A configured site's own queue in front of the shared client or browser
  // pool (its SiteLimiter, SiteBrowserLimiter): the HTTP and browser series
  // with its `site` label. Unknown sites are ignored (the label stays bounded).
  void sample_site_http(const std::string& site, const HttpLoad& load);
  void sample_site_browser(const std::string& site, const HttpLoad& load);
  // A site's refresh cycles waiting for its admission gate ("" = the flags' one site, no label).
  void sample_admission(const std::string& site, std::size_t queued);
  void sample_circuit(bool open) {
    if (circuit_) circuit_->Set(open ? 1 : 0);
  }
  // One site's circuit (a configured site; others are ignored: the label stays bounded).
  void sample_site_circuit(const std::string& site, bool open);
  void sample_process();
  void sample_browser(int in_flight, int queued, std::uint64_t rss_bytes, std::uint64_t pss_bytes);

  // Counter values, for tests and logs.
  double refreshes(RefreshResult result, const std::string& site = {}) const;
  double file_errors(FileErrorKind kind, const std::string& site = {}) const;
  double actor_restarts() const { return restarts_->Value(); }
  double tokens_not_renewed() const { return token_not_renewed_->Value(); }
  // Refresh outcomes per minute, last hour (the status page's chart).
  const RefreshHistory& refresh_history() const { return refresh_history_; }
  double events(const std::string& type) const;
  double event_subscribers() const { return event_subscribers_->Value(); }
  double event_subscribers_dropped() const { return event_subscribers_dropped_->Value(); }
  double hook_deliveries(const std::string& kind, const std::string& result) const;
  double hook_queue(const std::string& kind) const;
  double browser_steps(BrowserStepResult::Verdict v) const {
    return browser_steps_[static_cast<std::size_t>(v)]->Value();
  }

 private:
  // The series that are per site (labelled `site` when there are sites).
  struct SiteSeries {
    std::map<std::string, std::string> labels;  // {} or {site: NAME}
    std::array<prometheus::Counter*, 3> refresh{};
    prometheus::Histogram* duration = nullptr;
    std::array<prometheus::Gauge*, kSessionStateCount> sessions{};
    prometheus::Gauge* circuit = nullptr;  // sites only
    prometheus::Gauge* oldest_age = nullptr;
    prometheus::Gauge* idle_timeout = nullptr;
    prometheus::Gauge* interval = nullptr;
  };
  // A configured site's series; "" (or, never in practice, an unknown name)
  // the first; nullptr for a removed site. The caller holds sites_mutex_
  // while it uses them (remove_site frees them).
  const SiteSeries* series_locked(const std::string& site) const;
  void add_site_locked(const std::string& site);

  std::shared_ptr<prometheus::Registry> registry_;
  // sites_, site_series_ and removed_sites_ (a reload adds and removes sites)
  mutable std::shared_mutex sites_mutex_;
  std::vector<std::string> sites_;  // {""} without sites
  std::map<std::string, SiteSeries> site_series_;
  std::set<std::string> removed_sites_;  // removed and not added again
  prometheus::Family<prometheus::Counter>* refresh_family_ = nullptr;
  prometheus::Family<prometheus::Histogram>* duration_family_ = nullptr;
  prometheus::Family<prometheus::Gauge>* sessions_family_ = nullptr;
  prometheus::Family<prometheus::Gauge>* circuit_family_ = nullptr;
  prometheus::Family<prometheus::Gauge>* oldest_age_family_ = nullptr;
  prometheus::Family<prometheus::Gauge>* idle_timeout_family_ = nullptr;
  prometheus::Family<prometheus::Gauge>* interval_family_ = nullptr;
  MetricsConfig::SiteTiming default_timing_;                 // MetricsConfig's
  std::map<std::string, MetricsConfig::SiteTiming> timing_;  // MetricsConfig::site_timing
  prometheus::Family<prometheus::Counter>* requests_ = nullptr;
  prometheus::Family<prometheus::Counter>* file_errors_ = nullptr;
  prometheus::Counter* restarts_ = nullptr;
  prometheus::Counter* token_not_renewed_ = nullptr;
  prometheus::Histogram* save_lag_ = nullptr;
  prometheus::Histogram* sync_duration_ = nullptr;
  prometheus::Counter* synced_saves_ = nullptr;
  prometheus::Gauge* ready_ = nullptr;
  prometheus::Family<prometheus::Gauge>* in_flight_family_ = nullptr;
  prometheus::Family<prometheus::Gauge>* queued_family_ = nullptr;
  prometheus::Family<prometheus::Gauge>* rate_tokens_family_ = nullptr;
  prometheus::Family<prometheus::Counter>* rate_limited_family_ = nullptr;
  prometheus::Family<prometheus::Gauge>* browser_in_flight_family_ = nullptr;
  prometheus::Family<prometheus::Gauge>* browser_queued_family_ = nullptr;
  prometheus::Gauge* in_flight_ = nullptr;
  prometheus::Gauge* answers_unsettled_ = nullptr;
  prometheus::Family<prometheus::Gauge>* admission_queued_family_ = nullptr;
  prometheus::Gauge* answer_window_ = nullptr;
  prometheus::Gauge* queued_ = nullptr;
  prometheus::Gauge* rate_tokens_ = nullptr;
  prometheus::Counter* rate_limited_ = nullptr;
  prometheus::Gauge* circuit_ = nullptr;  // without sites
  prometheus::Counter* process_cpu_ = nullptr;
  prometheus::Gauge* process_rss_ = nullptr;
  prometheus::Gauge* process_vsz_ = nullptr;
  prometheus::Gauge* process_fds_ = nullptr;
  prometheus::Gauge* process_max_fds_ = nullptr;
  prometheus::Gauge* process_start_ = nullptr;
  prometheus::Family<prometheus::Gauge>* per_session_last_ = nullptr;
  std::array<prometheus::Counter*, 4> browser_steps_{};  // by verdict, then not_sent
  prometheus::Histogram* browser_duration_ = nullptr;
  prometheus::Counter* browser_restarts_ = nullptr;
  prometheus::Gauge* browser_in_flight_ = nullptr;
  prometheus::Gauge* browser_queued_ = nullptr;
  prometheus::Gauge* browser_rss_ = nullptr;
  prometheus::Gauge* browser_pss_ = nullptr;
  prometheus::Family<prometheus::Counter>* events_ = nullptr;
  prometheus::Gauge* event_subscribers_ = nullptr;
  prometheus::Counter* event_subscribers_dropped_ = nullptr;
  prometheus::Family<prometheus::Counter>* hook_deliveries_ = nullptr;
  prometheus::Family<prometheus::Gauge>* hook_queue_ = nullptr;
  // Sampled totals turned into counters: what was reported so far.
  std::mutex sampled_mutex_;
  std::uint64_t rate_limited_reported_ = 0;
  std::map<std::string, std::uint64_t> site_rate_limited_reported_;  // by site
  double process_cpu_reported_ = 0;
  RefreshHistory refresh_history_;
};

}  // namespace sessiond
