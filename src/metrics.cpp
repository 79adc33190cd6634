#include "sessiond/metrics.hpp"

#include <prometheus/text_serializer.h>

#include <algorithm>

#include "sessiond/build_info.hpp"
#include "sessiond/process_stats.hpp"

namespace sessiond {
namespace {

double seconds(Millis d) {
  return static_cast<double>(d.count()) / 1000.0;
}

}  // namespace

Metrics::Metrics(const MetricsConfig& c) : registry_(std::make_shared<prometheus::Registry>()) {
  using namespace prometheus;
  auto& r = *registry_;
  auto gauge = [&](const char* name, const char* help) {
    return &BuildGauge().Name(name).Help(help).Register(r).Add({});
  };
  auto counter = [&](const char* name, const char* help) {
    return &BuildCounter().Name(name).Help(help).Register(r).Add({});
  };
  // Families with an unlabelled series (the shared runner's) and, with
  // sites, one per site (the site's own queue).
  auto gauge_family = [&](const char* name, const char* help) {
    return &BuildGauge().Name(name).Help(help).Register(r);
  };

  refresh_family_ = &BuildCounter()
                         .Name("sessiond_refresh_total")
                         .Help("Finished refresh attempts by result")
                         .Register(r);
  duration_family_ = &BuildHistogram()
                          .Name("sessiond_refresh_duration_seconds")
                          .Help("Duration of one refresh attempt (load, check, refresh, save)")
                          .Register(r);
  sessions_family_ = &BuildGauge().Name("sessiond_sessions").Help("Sessions by state").Register(r);
  requests_ = &BuildCounter()
                   .Name("sessiond_http_requests_total")
                   .Help("Requests (or exec commands) toward the site by step and status code")
                   .Register(r);
  file_errors_ = &BuildCounter()
                      .Name("sessiond_session_file_errors_total")
                      .Help("Session files that could not be read, parsed or written, by reason")
                      .Register(r);
  save_lag_ = &BuildHistogram()
                   .Name("sessiond_save_lag_seconds")
                   .Help(
                       "From the site's response to the rename of the saved file: the window "
                       "in which a crash would lose rotated credentials")
                   .Register(r)
                   .Add({}, Histogram::BucketBoundaries{0.0005, 0.001, 0.002, 0.005, 0.01, 0.025,
                                                        0.05, 0.1, 0.25, 1});
  sync_duration_ =
      &BuildHistogram()
           .Name("sessiond_save_sync_seconds")
           .Help("Duration of one group commit (syncfs) that makes saves durable")
           .Register(r)
           .Add({}, Histogram::BucketBoundaries{0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5});
  synced_saves_ = counter("sessiond_saves_synced_total",
                          "Saves made durable by group commits (divide by the sync count of "
                          "sessiond_save_sync_seconds for the batch size)");
  restarts_ = counter("sessiond_actor_restarts_total",
                      "Session actors restarted by the supervisor after a crash");
  token_not_renewed_ =
      counter("sessiond_token_not_renewed_total",
              "Successful refreshes after which the token_deadline token was still "
              "expired (or inside its margin): the interval is used instead");

  // Per site (each site has its own idle timeout: SessiondSessionAtRisk
  // compares each site's oldest age with its own).
  oldest_age_family_ = &BuildGauge()
                            .Name("sessiond_oldest_refresh_age_seconds")
                            .Help("Longest time since a live session's last successful refresh")
                            .Register(r);
  idle_timeout_family_ = &BuildGauge()
                              .Name("sessiond_idle_timeout_seconds")
                              .Help("The site's idle logout timeout")
                              .Register(r);
  interval_family_ = &BuildGauge()
                          .Name("sessiond_refresh_interval_seconds")
                          .Help("Configured refresh interval")
                          .Register(r);
  default_timing_ = {c.interval, c.idle_timeout};
  timing_ = c.site_timing;
  BuildGauge()
      .Name("sessiond_build_info")
      .Help("Build information")
      .Register(r)
      .Add({{"version", c.version}, {"revision", build_revision()}})
      .Set(1);
  BuildGauge()
      .Name("sessiond_shard")
      .Help("This replica's shard index and the shard count")
      .Register(r)
      .Add({{"index", std::to_string(c.shard_index)}, {"count", std::to_string(c.shard_count)}})
      .Set(1);
  // The same numbers as values: PromQL can compare them (an index no replica
  // reports is a shard whose sessions nobody refreshes).
  gauge("sessiond_shard_index", "This replica's shard index (0 .. sessiond_shard_count - 1)")
      ->Set(c.shard_index);
  gauge("sessiond_shard_count", "Number of shards (--shard-count) this replica was started with")
      ->Set(c.shard_count);
  ready_ = gauge("sessiond_ready", "1 once the first scan of the sessions directory is done");
  gauge("sessiond_atomic_exchange_supported",
        "1 when saves swap files atomically (renameat2 RENAME_EXCHANGE); 0: the sessions "
        "directory does not support it (NFS) or --save-without-exchange, saves use the "
        "link-check-then-rename fallback")
      ->Set(c.atomic_exchange ? 1 : 0);
  in_flight_family_ = gauge_family("sessiond_http_in_flight", "HTTP requests running");
  in_flight_ = &in_flight_family_->Add({});
  queued_family_ = gauge_family("sessiond_http_queued",
                                "HTTP requests waiting for a slot (in-flight cap, rate limit)");
  queued_ = &queued_family_->Add({});
  answers_unsettled_ = &gauge_family("sessiond_http_answers_unsaved",
                                     "HTTP answers received and not settled yet (saved, or found "
                                     "to need no save): what a kill -9 now would lose")
                            ->Add({});
  admission_queued_family_ = gauge_family(
      "sessiond_refresh_admission_queued",
      "Refresh cycles due and waiting for an admission slot, before they load their file (the "
      "backlog of a start-up or an overload; sessiond_http_queued shows only the admitted ones)");
  answer_window_ = &gauge_family("sessiond_http_answer_window",
                                 "HTTP requests that may be open at once (running or answered "
                                 "and not settled), as --save-lag-target keeps it")
                        ->Add({});
  gauge("sessiond_http_max_in_flight", "Cap on HTTP requests running at once toward the site")
      ->Set(static_cast<double>(c.max_in_flight));
  gauge("sessiond_rate_limit_per_second",
        "The profile's token-bucket rate for requests to the site (0: unlimited)")
      ->Set(c.rate_limit_per_second);
  rate_tokens_family_ = gauge_family(
      "sessiond_rate_limit_tokens", "Tokens in the rate limiter's bucket (each request takes one)");
  rate_tokens_ = &rate_tokens_family_->Add({});
  rate_limited_family_ = &BuildCounter()
                              .Name("sessiond_rate_limited_total")
                              .Help("Requests that waited for a rate-limiter token")
                              .Register(r);
  rate_limited_ = &rate_limited_family_->Add({});
  circuit_family_ = &BuildGauge()
                         .Name("sessiond_circuit_open")
                         .Help("1 while a site's circuit breaker holds its requests back")
                         .Register(r);
  if (c.sites.empty()) circuit_ = &circuit_family_->Add({});
  sites_.clear();
  for (const auto& site : c.sites.empty() ? std::vector<std::string>{std::string()} : c.sites)
    add_site_locked(site);
  process_cpu_ =
      counter("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.");
  process_rss_ = gauge("process_resident_memory_bytes", "Resident memory size in bytes.");
  process_vsz_ = gauge("process_virtual_memory_bytes", "Virtual memory size in bytes.");
  process_fds_ = gauge("process_open_fds", "Number of open file descriptors.");
  process_max_fds_ = gauge("process_max_fds", "Maximum number of open file descriptors.");
  process_start_ =
      gauge("process_start_time_seconds", "Start time of the process since unix epoch in seconds.");
  auto& browser_steps = BuildCounter()
                            .Name("sessiond_browser_steps_total")
                            .Help("Browser steps (page loads in the pooled Chromium) by result")
                            .Register(r);
  for (auto v : {BrowserStepResult::Verdict::logged_in, BrowserStepResult::Verdict::logged_out,
                 BrowserStepResult::Verdict::transient})
    browser_steps_[static_cast<std::size_t>(v)] = &browser_steps.Add({{"result", to_string(v)}});
  browser_steps_[3] = &browser_steps.Add({{"result", "not_sent"}});
  browser_duration_ =
      &BuildHistogram()
           .Name("sessiond_browser_step_duration_seconds")
           .Help("Duration of one browser step, queueing excluded")
           .Register(r)
           .Add({}, Histogram::BucketBoundaries{0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 20, 30, 60});
  browser_restarts_ = counter("sessiond_browser_restarts_total",
                              "Browser (Chromium) restarts after a crash, a hang or a recycle");
  browser_in_flight_family_ = gauge_family("sessiond_browser_in_flight", "Browser steps running");
  browser_in_flight_ = &browser_in_flight_family_->Add({});
  browser_queued_family_ =
      gauge_family("sessiond_browser_queued", "Browser steps waiting for a slot");
  browser_queued_ = &browser_queued_family_->Add({});
  browser_rss_ = gauge("sessiond_browser_resident_memory_bytes",
                       "Resident memory of the browser's processes (sum of RSS)");
  browser_pss_ = gauge("sessiond_browser_proportional_memory_bytes",
                       "Memory of the browser's processes with shared pages split (sum of PSS)");
  events_ = &BuildCounter()
                 .Name("sessiond_events_total")
                 .Help("Session events published (GET /events, hooks) by type")
                 .Register(r);
  event_subscribers_ = gauge("sessiond_event_subscribers", "Event stream subscribers connected");
  event_subscribers_dropped_ =
      counter("sessiond_event_subscribers_dropped_total",
              "Event stream subscribers dropped because they fell behind (their queue was full)");
  hook_deliveries_ = &BuildCounter()
                          .Name("sessiond_hook_deliveries_total")
                          .Help(
                              "Hook deliveries by kind (exec, webhook) and result (ok, failed, "
                              "retried: a webhook attempt to be retried, dropped: its queue was "
                              "full)")
                          .Register(r);
  hook_queue_ = &BuildGauge()
                     .Name("sessiond_hook_queue")
                     .Help("Events waiting for a hook, by kind (exec, webhook)")
                     .Register(r);
  if (c.per_session)
    per_session_last_ = &BuildGauge()
                             .Name("sessiond_session_last_refresh_timestamp_seconds")
                             .Help("Unix time of each session's last successful refresh (opt-in)")
                             .Register(r);
}

std::string Metrics::serialize() const {
  return prometheus::TextSerializer().Serialize(registry_->Collect());
}

void Metrics::refresh_finished(RefreshResult result, double secs, const std::string& site) {
  refresh_history_.record(result);
  std::shared_lock<std::shared_mutex> lock(sites_mutex_);
  if (const auto* ss = series_locked(site)) {
    ss->refresh[static_cast<std::size_t>(result)]->Increment();
    ss->duration->Observe(secs);
  }
}

double Metrics::refreshes(RefreshResult result, const std::string& site) const {
  std::shared_lock<std::shared_mutex> lock(sites_mutex_);
  const auto* ss = series_locked(site);
  return ss ? ss->refresh[static_cast<std::size_t>(result)]->Value() : 0;
}

void Metrics::set_sessions(SessionState state, double n, const std::string& site) {
  std::shared_lock<std::shared_mutex> lock(sites_mutex_);
  if (const auto* ss = series_locked(site)) ss->sessions[static_cast<std::size_t>(state)]->Set(n);
}

void Metrics::event_published(const std::string& type) {
  events_->Add({{"type", type}}).Increment();
}

double Metrics::events(const std::string& type) const {
  return events_->Add({{"type", type}}).Value();
}

void Metrics::hook_delivery(const std::string& kind, const std::string& result, double n) {
  hook_deliveries_->Add({{"kind", kind}, {"result", result}}).Increment(n);
}

void Metrics::set_hook_queue(const std::string& kind, double n) {
  hook_queue_->Add({{"kind", kind}}).Set(n);
}

double Metrics::hook_deliveries(const std::string& kind, const std::string& result) const {
  return hook_deliveries_->Add({{"kind", kind}, {"result", result}}).Value();
}

double Metrics::hook_queue(const std::string& kind) const {
  return hook_queue_->Add({{"kind", kind}}).Value();
}

void Metrics::request(const std::string& step, const std::string& code, const std::string& site) {
  std::shared_lock<std::shared_mutex> lock(sites_mutex_);
  const auto* ss = series_locked(site);
  if (!ss) return;
  auto l = ss->labels;
  l["step"] = step;
  l["code"] = code;
  requests_->Add(l).Increment();
}

void Metrics::browser_step(const BrowserStepResult& result) {
  if (result.not_sent) {
    browser_steps_[3]->Increment();
    return;
  }
  browser_steps_[static_cast<std::size_t>(result.verdict)]->Increment();
  browser_duration_->Observe(std::chrono::duration<double>(result.elapsed).count());
}

void Metrics::sample_browser(int in_flight, int queued, std::uint64_t rss_bytes,
                             std::uint64_t pss_bytes) {
  browser_in_flight_->Set(in_flight);
  browser_queued_->Set(queued);
  browser_rss_->Set(static_cast<double>(rss_bytes));
  browser_pss_->Set(static_cast<double>(pss_bytes));
}

void Metrics::sample_site_circuit(const std::string& site, bool open) {
  std::shared_lock<std::shared_mutex> lock(sites_mutex_);
  auto it = site_series_.find(site);
  if (it != site_series_.end() && it->second.circuit) it->second.circuit->Set(open ? 1 : 0);
}

void Metrics::set_oldest_refresh_age(double secs, const std::string& site) {
  std::shared_lock<std::shared_mutex> lock(sites_mutex_);
  if (const auto* ss = series_locked(site)) ss->oldest_age->Set(secs);
}

void Metrics::set_site_timing(const std::string& site, Millis interval, Millis idle_timeout) {
  std::shared_lock<std::shared_mutex> lock(sites_mutex_);
  auto it = site_series_.find(site);
  if (site.empty() || it == site_series_.end()) return;
  it->second.interval->Set(seconds(interval));
  it->second.idle_timeout->Set(seconds(idle_timeout));
}

void Metrics::add_site(const std::string& site) {
  std::unique_lock<std::shared_mutex> lock(sites_mutex_);
  add_site_locked(site);
}

namespace {

// Every series of `family` with label name=value.
template <class T>
void remove_labelled(prometheus::Family<T>& family, const std::string& name,
                     const std::string& value) {
  for (const auto& mf : family.Collect())
    for (const auto& metric : mf.metric) {
      std::map<std::string, std::string> labels;
      for (const auto& l : metric.label) labels[l.name] = l.value;
      auto it = labels.find(name);
      if (it != labels.end() && it->second == value) family.Remove(&family.Add(labels));
    }
}

}  // namespace

void Metrics::remove_site(const std::string& site) {
  std::unique_lock<std::shared_mutex> lock(sites_mutex_);
  auto it = site_series_.find(site);
  if (site.empty() || it == site_series_.end()) return;
  const SiteSeries& ss = it->second;
  for (auto* c : ss.refresh) refresh_family_->Remove(c);
  duration_family_->Remove(ss.duration);
  for (auto* g : ss.sessions) sessions_family_->Remove(g);
  if (ss.circuit) circuit_family_->Remove(ss.circuit);
  oldest_age_family_->Remove(ss.oldest_age);
  idle_timeout_family_->Remove(ss.idle_timeout);
  interval_family_->Remove(ss.interval);
  remove_labelled(*requests_, "site", site);
  remove_labelled(*file_errors_, "site", site);
  for (auto* f : {in_flight_family_, queued_family_, rate_tokens_family_, browser_in_flight_family_,
                  browser_queued_family_, admission_queued_family_})
    remove_labelled(*f, "site", site);
  remove_labelled(*rate_limited_family_, "site", site);
  if (per_session_last_) remove_labelled(*per_session_last_, "site", site);
  {
    std::lock_guard<std::mutex> sampled(sampled_mutex_);
    site_rate_limited_reported_.erase(site);
  }
  site_series_.erase(it);
  sites_.erase(std::remove(sites_.begin(), sites_.end(), site), sites_.end());
  removed_sites_.insert(site);
}

void Metrics::add_site_locked(const std::string& site) {
  if (site_series_.count(site)) return;
  removed_sites_.erase(site);
  SiteSeries ss;
  if (!site.empty()) ss.labels = {{"site", site}};
  auto with = [&](std::map<std::string, std::string> l) {
    l.insert(ss.labels.begin(), ss.labels.end());
    return l;
  };
  for (auto res :
       {RefreshResult::success, RefreshResult::logged_out, RefreshResult::transient_error})
    ss.refresh[static_cast<std::size_t>(res)] =
        &refresh_family_->Add(with({{"result", to_string(res)}}));
  ss.duration = &duration_family_->Add(
      ss.labels, prometheus::Histogram::BucketBoundaries{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                                         1, 2.5, 5, 10, 20, 30, 60});
  for (auto s : kSessionStates)
    ss.sessions[static_cast<std::size_t>(s)] =
        &sessions_family_->Add(with({{"state", to_string(s)}}));
  for (auto kind :
       {FileErrorKind::parse, FileErrorKind::schema, FileErrorKind::io, FileErrorKind::too_large,
        FileErrorKind::symlink, FileErrorKind::permission, FileErrorKind::write})
    file_errors_->Add(with({{"reason", to_string(kind)}}));
  if (!site.empty()) ss.circuit = &circuit_family_->Add(ss.labels);
  auto timing = timing_.find(site);
  const auto& t = timing != timing_.end() ? timing->second : default_timing_;
  ss.oldest_age = &oldest_age_family_->Add(ss.labels);
  ss.idle_timeout = &idle_timeout_family_->Add(ss.labels);
  ss.idle_timeout->Set(seconds(t.idle_timeout));
  ss.interval = &interval_family_->Add(ss.labels);
  ss.interval->Set(seconds(t.interval));
  site_series_[site] = std::move(ss);
  sites_.push_back(site);
}

std::vector<std::string> Metrics::sites() const {
  std::shared_lock<std::shared_mutex> lock(sites_mutex_);
  return sites_;
}

const Metrics::SiteSeries* Metrics::series_locked(const std::string& site) const {
  auto it = site_series_.find(site);
  if (it != site_series_.end()) return &it->second;
  if (removed_sites_.count(site) || sites_.empty()) return nullptr;
  return &site_series_.at(sites_.front());
}

void Metrics::file_error(FileErrorKind kind, const std::string& site) {
  std::shared_lock<std::shared_mutex> lock(sites_mutex_);
  const auto* ss = series_locked(site);
  if (!ss) return;
  auto l = ss->labels;
  l["reason"] = to_string(kind);
  file_errors_->Add(l).Increment();
}

double Metrics::file_errors(FileErrorKind kind, const std::string& site) const {
  std::shared_lock<std::shared_mutex> lock(sites_mutex_);
  const auto* ss = series_locked(site);
  if (!ss) return 0;
  auto l = ss->labels;
  l["reason"] = to_string(kind);
  return file_errors_->Add(l).Value();
}

void Metrics::set_last_refresh(const std::string& session, WallTime t, const std::string& site) {
  if (!per_session_last_) return;
  std::shared_lock<std::shared_mutex> lock(sites_mutex_);
  const auto* ss = series_locked(site);
  if (!ss) return;
  auto l = ss->labels;
  l["session"] = session;
  per_session_last_->Add(l).Set(std::chrono::duration<double>(t.time_since_epoch()).count());
}

void Metrics::forget_session(const std::string& session, const std::string& site) {
  if (!per_session_last_) return;
  std::shared_lock<std::shared_mutex> lock(sites_mutex_);
  const auto* ss = series_locked(site);
  if (!ss) return;
  auto l = ss->labels;
  l["session"] = session;
  if (per_session_last_->Has(l)) per_session_last_->Remove(&per_session_last_->Add(l));
}

void Metrics::sample_http(const HttpLoad& load) {
  in_flight_->Set(static_cast<double>(load.in_flight));
  queued_->Set(static_cast<double>(load.queued));
  rate_tokens_->Set(load.rate_limit_tokens);
  answers_unsettled_->Set(static_cast<double>(load.answers_unsettled));
  answer_window_->Set(static_cast<double>(load.answer_window));
  std::lock_guard<std::mutex> lock(sampled_mutex_);
  if (load.rate_limited_total > rate_limited_reported_) {
    rate_limited_->Increment(static_cast<double>(load.rate_limited_total - rate_limited_reported_));
    rate_limited_reported_ = load.rate_limited_total;
  }
}

void Metrics::sample_site_http(const std::string& site, const HttpLoad& load) {
  std::shared_lock<std::shared_mutex> lock(sites_mutex_);
  auto it = site_series_.find(site);
  if (site.empty() || it == site_series_.end()) return;
  const auto& labels = it->second.labels;
  in_flight_family_->Add(labels).Set(static_cast<double>(load.in_flight));
  queued_family_->Add(labels).Set(static_cast<double>(load.queued));
  rate_tokens_family_->Add(labels).Set(load.rate_limit_tokens);
  auto& counter = rate_limited_family_->Add(labels);
  std::lock_guard<std::mutex> sampled(sampled_mutex_);
  auto& reported = site_rate_limited_reported_[site];
  // Lower than reported: a reload replaced the site's limiter, which counts
  // from zero again; all it counted is new.
  const auto added = load.rate_limited_total >= reported ? load.rate_limited_total - reported
                                                         : load.rate_limited_total;
  if (added > 0) counter.Increment(static_cast<double>(added));
  reported = load.rate_limited_total;
}

void Metrics::sample_admission(const std::string& site, std::size_t queued) {
  std::shared_lock<std::shared_mutex> lock(sites_mutex_);
  if (site.empty()) {
    admission_queued_family_->Add({}).Set(static_cast<double>(queued));
    return;
  }
  auto it = site_series_.find(site);
  if (it == site_series_.end()) return;
  admission_queued_family_->Add(it->second.labels).Set(static_cast<double>(queued));
}

void Metrics::sample_site_browser(const std::string& site, const HttpLoad& load) {
  std::shared_lock<std::shared_mutex> lock(sites_mutex_);
  auto it = site_series_.find(site);
  if (site.empty() || it == site_series_.end()) return;
  browser_in_flight_family_->Add(it->second.labels).Set(static_cast<double>(load.in_flight));
  browser_queued_family_->Add(it->second.labels).Set(static_cast<double>(load.queued));
}

void Metrics::sample_process() {
  auto p = read_process_stats();
  {
    std::lock_guard<std::mutex> lock(sampled_mutex_);
    if (p.cpu_seconds > process_cpu_reported_) {
      process_cpu_->Increment(p.cpu_seconds - process_cpu_reported_);
      process_cpu_reported_ = p.cpu_seconds;
    }
  }
  process_rss_->Set(p.resident_bytes);
  process_vsz_->Set(p.virtual_bytes);
  process_fds_->Set(p.open_fds);
  process_max_fds_->Set(p.max_fds);
  process_start_->Set(p.start_time_seconds);
}

void Metrics::save_synced(double seconds, std::size_t saves) {
  sync_duration_->Observe(seconds);
  synced_saves_->Increment(static_cast<double>(saves));
}

}  // namespace sessiond
