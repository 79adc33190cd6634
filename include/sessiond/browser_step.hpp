#pragma once
// A browser step: what one page load in the pooled headless Chromium must
// decide for one session, as plain data. The profile parses it
// (src/profile.cpp), the refresh cycle asks for it (RefreshCycle's
// run_browser action), the browser pool (src/browser_pool.cpp) performs it.
// No CAF, no Chromium here.

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sessiond/duration.hpp"

namespace sessiond {

// A condition on the page after navigation; all present fields must hold.
struct PageCondition {
  std::optional<std::string> selector;  // CSS selector present in the DOM
  std::optional<std::string> text;      // visible text contained in the page (Playwright's text=)
  std::optional<std::string> url_contains;  // the page's URL after client-side routing
};

// What the profile says (templates already expanded by the caller).
struct BrowserStepSpec {
  std::string url;                        // absolute URL
  std::vector<PageCondition> wait_for;    // logged in when ALL match (combinable)
  std::vector<PageCondition> logged_out;  // logged out when ANY matches (checked first)
  bool wait_network_idle = false;         // also wait for the network to go idle before wait_for
  Millis settle{500};                     // after logged in, before reading the state
  bool settle_network_idle = false;       // settle until the network is idle instead
  Millis timeout{30000};                  // the whole step; then transient
};

// One step for one session.
struct BrowserStepRequest {
  std::string session_id;  // for logs only
  nlohmann::json state;    // Playwright storage state: {"cookies": [...], "origins": [...]}
  BrowserStepSpec spec;
  std::int64_t priority = 0;  // smaller runs first (the idle deadline, ms since epoch)
};

struct BrowserStepResult {
  enum class Verdict { logged_in, logged_out, transient };
  Verdict verdict = Verdict::transient;
  std::string
      detail;  // why (never a secret): "wait_for matched", "timeout", "browser crashed", ...
  // The newest state seen, in Playwright's form, whenever the browser saw any
  // change (also on transient: a crash after the page renewed the token must
  // not lose the renewal). nullopt: nothing changed / nothing captured.
  std::optional<nlohmann::json> cookies;  // Playwright cookies array
  std::optional<nlohmann::json> origins;  // Playwright origins array
  std::uint64_t bytes_fetched = 0;        // from the network, this step (cache hits excluded)
  std::chrono::microseconds elapsed{0};
  bool not_sent = false;  // refused before reaching the site (circuit open, shutdown)
};

const char* to_string(BrowserStepResult::Verdict v);

// Runs browser steps: the browser pool, the circuit breaker in front of it,
// a script in tests. `done` is called exactly once, from any thread.
class BrowserRunner {
 public:
  using Callback = std::function<void(BrowserStepResult)>;
  virtual ~BrowserRunner() = default;
  virtual void submit(BrowserStepRequest request, Callback done) = 0;
};

}  // namespace sessiond
