// Cost of a browser step: CPU-s of the whole Chromium tree per step and
// static bytes fetched per step after warm-up, on the test site of
// tests/unit/browser_test_site.hpp with its 1 MB immutable bundle.
//
// Build (from the repository root, after building sessiond_core in build-<you>):
//   g++ -std=c++17 -O2 -Iinclude -Itests/unit bench/browser_step.cpp build-<you>/libsessiond_core.a
//   \
//       -lcpp-httplib -lpthread -o build-<you>/browser_step_bench
// Run: build-<you>/browser_step_bench [steps=32] [accounts=4] [concurrency=1]
// [new-page|fresh-context]
//   env BROWSER_FLAGS="--flag ..." (extra Chromium flags), BROWSER_PATH (another binary)

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <future>
#include <string>
#include <vector>

#include "browser_test_site.hpp"
#include "sessiond/browser_pool.hpp"

using namespace sessiond;
using namespace std::chrono_literals;

int main(int argc, char** argv) {
  const int steps = argc > 1 ? std::atoi(argv[1]) : 32;
  const int accounts = argc > 2 ? std::atoi(argv[2]) : 4;
  const int concurrency = argc > 3 ? std::atoi(argv[3]) : 1;
  // Mode: "" (one page per slot, reused), "new-page" (a new page per step),
  // "fresh-context" (a new browser context per step).
  const std::string mode = argc > 4 ? argv[4] : "";
  const bool fresh = mode == "fresh-context";
  const int warmup = 2;

  browser_test::Site site;
  if (!site.start()) return 1;
  BrowserPool::Options opts;
  opts.max_concurrent = concurrency;
  opts.fresh_context_per_step = fresh;
  opts.new_page_per_step = fresh || mode == "new-page";
  // Extra Chromium flags to try, separated by spaces (BROWSER_FLAGS="--a --b").
  if (const char* flags = std::getenv("BROWSER_FLAGS")) {
    std::string all = flags;
    for (std::size_t pos = 0; pos < all.size();) {
      auto end = all.find(' ', pos);
      if (end == std::string::npos) end = all.size();
      if (end > pos) opts.launch.extra_args.push_back(all.substr(pos, end - pos));
      pos = end + 1;
    }
  }
  if (const char* path = std::getenv("BROWSER_PATH")) opts.launch.path = path;
  BrowserPool pool(opts);

  std::vector<nlohmann::json> states;
  for (int a = 0; a < accounts; ++a)
    states.push_back(site.add_account("bench" + std::to_string(a)));

  auto run = [&](int i) {
    BrowserStepRequest req;
    const int a = i % accounts;
    req.state = states[a];
    req.spec.url = site.url("/app?mode=ok&bundle=1");
    req.spec.wait_for.push_back(PageCondition{".homeSection", std::nullopt, std::nullopt});
    req.spec.logged_out.push_back(PageCondition{std::nullopt, std::nullopt, "/auth/login"});
    req.spec.settle = 0ms;
    std::promise<BrowserStepResult> p;
    auto f = p.get_future();
    pool.submit(req, [&p](BrowserStepResult r) { p.set_value(std::move(r)); });
    if (f.wait_for(60s) != std::future_status::ready) {
      std::fprintf(stderr, "step %d: no result\n", i);
      std::exit(1);
    }
    auto r = f.get();
    if (r.verdict != BrowserStepResult::Verdict::logged_in) {
      std::fprintf(stderr, "step %d: %s (%s)\n", i, to_string(r.verdict), r.detail.c_str());
      std::exit(1);
    }
    states[a] = {{"cookies", *r.cookies}, {"origins", *r.origins}};
    return r;
  };

  for (int i = 0; i < warmup; ++i) run(i);
  const pid_t pid = pool.stats().browser_pid;
  const auto before = process_group_usage(pid, false);
  const auto bytes_before = site.static_bytes();
  const auto hits_before = site.static_hits()["bundle.js"];
  std::uint64_t reported = 0;
  double wall = 0;
  for (int i = warmup; i < warmup + steps; ++i) {
    auto r = run(i);
    reported += r.bytes_fetched;
    wall += std::chrono::duration<double>(r.elapsed).count();
  }
  const auto after = process_group_usage(pid, true);
  if (pool.stats().browser_pid != pid) std::fprintf(stderr, "warning: the browser restarted\n");
  std::printf(
      "mode %s, concurrency %d, %d steps after %d warm-up, %d accounts\n"
      "  CPU of the browser tree per step: %.3f s\n"
      "  static bytes fetched per step:    %.0f (%.1f%% of the 1 MB bundle); bundle fetched %d "
      "times\n"
      "  bytes from the network per step (Network.loadingFinished): %.0f\n"
      "  step duration (mean):             %.0f ms\n"
      "  browser tree: %d processes, RSS %.0f MB, PSS %.0f MB\n",
      fresh ? "fresh context per step"
            : (opts.new_page_per_step ? "context per slot, new page per step"
                                      : "context and page per slot, reused"),
      concurrency, steps, warmup, accounts, (after.cpu_seconds - before.cpu_seconds) / steps,
      double(site.static_bytes() - bytes_before) / steps,
      100.0 * double(site.static_bytes() - bytes_before) / steps / double(1 << 20),
      site.static_hits()["bundle.js"] - hits_before, double(reported) / steps, 1000 * wall / steps,
      after.processes, after.rss_bytes / 1048576.0, after.pss_bytes / 1048576.0);
  pool.stop();
  return 0;
}
