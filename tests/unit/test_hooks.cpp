#include <catch2/catch.hpp>

#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include "sessiond/config.hpp"
#include "sessiond/hooks.hpp"
#include "sessiond/metrics.hpp"
#include "sessiond/process_runner.hpp"

using namespace sessiond;
using namespace std::chrono_literals;

namespace {

SessionEvent event(std::uint64_t id, const std::string& type = "logged_out") {
  SessionEvent e;
  e.id = id;
  e.type = type;
  e.session = "09120000001";
  e.previous_state = "active";
  e.state = "invalid";
  e.reason = "logged out by the site";
  return e;
}

bool has(const std::vector<std::string>& env, const std::string& entry) {
  return std::find(env.begin(), env.end(), entry) != env.end();
}

// A scripted receiver and a clock that only moves when the delivery waits.
struct FakeWorld {
  SteadyTime clock = SteadyTime() + 1000h;
  std::vector<long> answers;  // status per attempt; the last repeats
  std::vector<SteadyTime> attempts;
  std::vector<Millis> retry_delays;
  double u = 0.5;
  bool stop_after_first_wait = false;

  WebhookDelivery delivery(RetrySchedule s) {
    WebhookDelivery d;
    d.schedule = s;
    d.now = [this] { return clock; };
    d.uniform = [this] { return u; };
    d.post = [this](const WebhookRequest&) {
      WebhookResponse r;
      r.status = answers[std::min(attempts.size(), answers.size() - 1)];
      attempts.push_back(clock);
      if (r.status == 0) r.error = "Connection refused";
      return r;
    };
    d.wait_until = [this](SteadyTime t) {
      CHECK(t >= clock);
      clock = t;
      return !stop_after_first_wait;
    };
    d.on_retry = [this](const WebhookResponse&, int, Millis delay) {
      retry_delays.push_back(delay);
    };
    return d;
  }
};

}  // namespace

TEST_CASE("HMAC-SHA256 matches RFC 4231 test vectors", "[hooks]") {
  // RFC 4231 test case 2.
  CHECK(hmac_sha256_hex("Jefe", "what do ya want for nothing?") ==
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  // Test case 1: key 0x0b x 20, "Hi There".
  CHECK(hmac_sha256_hex(std::string(20, '\x0b'), "Hi There") ==
        "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
}

TEST_CASE("a webhook request carries the event, its type, id and signature", "[hooks]") {
  const auto e = event(42);
  const auto r = webhook_request("http://127.0.0.1:1/hook", "s3cret", e);
  CHECK(r.url == "http://127.0.0.1:1/hook");
  CHECK(r.body == to_json(e).dump());
  CHECK(r.headers.at("Content-Type") == "application/json");
  CHECK(r.headers.at("X-Sessiond-Event") == "logged_out");
  CHECK(r.headers.at("X-Sessiond-Delivery") == "42");
  CHECK(r.headers.at("X-Sessiond-Signature") == "sha256=" + hmac_sha256_hex("s3cret", r.body));
}

TEST_CASE("full jitter backoff: u times the capped exponential", "[hooks]") {
  RetrySchedule s;  // base 1s, cap 60s
  CHECK(full_jitter_delay(s, 1, 0.0) == 0ms);
  CHECK(full_jitter_delay(s, 1, 0.5) == 500ms);
  CHECK(full_jitter_delay(s, 2, 0.5) == 1000ms);
  CHECK(full_jitter_delay(s, 3, 0.5) == 2000ms);
  CHECK(full_jitter_delay(s, 6, 0.999) == 31968ms);   // 32 s ceiling
  CHECK(full_jitter_delay(s, 7, 0.5) == 30000ms);     // capped at 60 s
  CHECK(full_jitter_delay(s, 1000, 0.5) == 30000ms);  // no overflow
  CHECK(full_jitter_delay(s, 7, 1.0) == 60000ms);
}

TEST_CASE("retries stay inside the window, with a last try at its end", "[hooks]") {
  RetrySchedule s;
  s.window = 10s;
  const SteadyTime t0{};
  CHECK(next_retry_at(s, t0, t0, 1, 0.5) == t0 + 500ms);
  CHECK(next_retry_at(s, t0, t0 + 9s, 5, 0.5) == t0 + 10s);  // 8 s would pass the end
  CHECK_FALSE(next_retry_at(s, t0, t0 + 10s, 6, 0.5));       // tried at the end: give up
  CHECK_FALSE(next_retry_at(s, t0, t0 + 11s, 1, 0.0));       // enqueued too long ago
}

TEST_CASE("webhook delivery: transport errors and 5xx are retried until a 2xx", "[hooks]") {
  FakeWorld w;
  w.answers = {0, 503, 429, 408, 204};
  RetrySchedule s;
  s.window = 10min;
  auto d = w.delivery(s);
  const auto out = d.deliver(webhook_request("http://x", "k", event(1)), w.clock);
  CHECK(out.delivered);
  CHECK(out.attempts == 5);
  CHECK(out.last.status == 204);
  // u = 0.5: 0.5 s, 1 s, 2 s, 4 s apart.
  REQUIRE(w.retry_delays.size() == 4);
  CHECK(w.retry_delays == std::vector<Millis>{500ms, 1000ms, 2000ms, 4000ms});
  CHECK(w.attempts[4] - w.attempts[0] == 7500ms);
}

TEST_CASE("webhook delivery: a 4xx other than 408/429 is not retried", "[hooks]") {
  for (long status : {400L, 401L, 404L, 410L, 302L}) {
    FakeWorld w;
    w.answers = {status};
    auto d = w.delivery(RetrySchedule{});
    const auto out = d.deliver(webhook_request("http://x", "k", event(1)), w.clock);
    CHECK_FALSE(out.delivered);
    CHECK(out.attempts == 1);
    CHECK(w.retry_delays.empty());
  }
  CHECK(webhook_status_retryable(0));
  CHECK(webhook_status_retryable(500));
  CHECK_FALSE(webhook_status_retryable(403));
}

TEST_CASE("webhook delivery: a receiver down for the whole window gets up to its end", "[hooks]") {
  FakeWorld w;
  w.answers = {0};
  w.u = 0.999;
  RetrySchedule s;
  s.window = 5min;
  const SteadyTime enqueued = w.clock;
  auto d = w.delivery(s);
  const auto out = d.deliver(webhook_request("http://x", "k", event(1)), enqueued);
  CHECK_FALSE(out.delivered);
  CHECK(out.last.status == 0);
  CHECK(w.attempts.back() == enqueued + 5min);  // the last try at the window's end
  for (std::size_t i = 1; i < w.attempts.size(); ++i) {
    CHECK(w.attempts[i] - w.attempts[i - 1] <= 60s);  // the cap
    CHECK(w.attempts[i] <= enqueued + 5min);
  }
  // 0.5+1+2+4+8+16+32 s, then about 60 s each: 13 to 15 attempts in 5 min.
  CHECK(out.attempts >= 10);
  CHECK(out.attempts <= 16);
}

TEST_CASE("webhook delivery: shutdown during a retry wait gives up at once", "[hooks]") {
  FakeWorld w;
  w.answers = {503};
  w.stop_after_first_wait = true;
  auto d = w.delivery(RetrySchedule{});
  const auto out = d.deliver(webhook_request("http://x", "k", event(1)), w.clock);
  CHECK_FALSE(out.delivered);
  CHECK(out.attempts == 1);
}

TEST_CASE("a full hook queue drops the oldest and counts it", "[hooks]") {
  HookQueue q(3);
  const SteadyTime t{};
  for (std::uint64_t id = 1; id <= 3; ++id) CHECK(q.push(event(id), t) == 0);
  CHECK(q.push(event(4), t) == 1);
  CHECK(q.push(event(5), t + 1s) == 1);
  CHECK(q.size() == 3);
  CHECK(q.dropped() == 2);
  std::vector<std::uint64_t> ids;
  while (auto item = q.pop(0ms)) ids.push_back(item->event.id);
  CHECK(ids == std::vector<std::uint64_t>{3, 4, 5});
  CHECK_FALSE(q.pop(0ms));
  q.push(event(6), t);
  CHECK(q.close() == 1);
  CHECK_FALSE(q.pop(1000ms));  // closed: at once
  CHECK(q.push(event(7), t) == 0);
  CHECK(q.size() == 0);
}

TEST_CASE("a hook queue reports its length after every change", "[hooks]") {
  std::vector<std::size_t> depths;
  HookQueue q(2, [&](std::size_t n) { depths.push_back(n); });
  const SteadyTime t{};
  q.push(event(1), t);
  q.push(event(2), t);
  q.push(event(3), t);  // full: the oldest goes, the length stays
  CHECK(q.pop(0ms));
  CHECK(q.pop(0ms));
  CHECK_FALSE(q.pop(0ms));  // empty: nothing changed, nothing reported
  q.push(event(4), t);
  q.close();
  CHECK(depths == std::vector<std::size_t>{0, 1, 2, 2, 1, 0, 1, 0});
}

TEST_CASE("the hook command: words or a JSON array", "[hooks]") {
  CHECK(parse_hook_command("/usr/bin/notify --to bot") ==
        std::vector<std::string>{"/usr/bin/notify", "--to", "bot"});
  CHECK(parse_hook_command(R"(["/bin/sh", "-c", "cat > /tmp/x"])") ==
        std::vector<std::string>{"/bin/sh", "-c", "cat > /tmp/x"});
  CHECK_THROWS_AS(parse_hook_command("   "), std::invalid_argument);
  CHECK_THROWS_AS(parse_hook_command("[1, 2]"), std::invalid_argument);
  CHECK_THROWS_AS(parse_hook_command("[\"a\""), std::invalid_argument);
}

TEST_CASE("the exec hook's environment has the event and none of sessiond's secrets", "[hooks]") {
  ::setenv("SESSIOND_ADMIN_TOKEN", "admin-token-value-123", 1);
  ::setenv("SESSIOND_WEBHOOK_SECRET_FILE", "/run/secret", 1);
  ::setenv("AWS_SECRET_ACCESS_KEY", "aws-secret-value-456", 1);
  ::setenv("LANG", "C.UTF-8", 1);
  const auto e = event(7);
  const auto env = hook_environment(e);
  CHECK(has(env, "SESSIOND_EVENT_ID=7"));
  CHECK(has(env, "SESSIOND_EVENT_TYPE=logged_out"));
  CHECK(has(env, "SESSIOND_EVENT_SESSION=09120000001"));
  CHECK(has(env, "SESSIOND_EVENT_STATE=invalid"));
  CHECK(has(env, "SESSIOND_EVENT_PREVIOUS_STATE=active"));
  CHECK(has(env, "LANG=C.UTF-8"));
  for (const auto& entry : env) {
    const auto name = entry.substr(0, entry.find('='));
    const bool allowed = name == "PATH" || name == "HOME" || name == "LANG" || name == "LC_ALL" ||
                         name == "TZ" || name.rfind("SESSIOND_EVENT_", 0) == 0;
    CHECK(allowed);
    CHECK(entry.find("admin-token-value") == std::string::npos);
  }

  // What a real hook sees: the same, and the event JSON on stdin.
  ProcessOptions po;
  po.env = env;
  po.stdin_data = to_json(e).dump() + "\n";
  const auto r = run_process({"/bin/sh", "-c", "env; echo STDIN; cat"}, 5000ms, po);
  REQUIRE(r.exit_code == 0);
  CHECK(r.stdout_tail.find("SESSIOND_EVENT_TYPE=logged_out") != std::string::npos);
  CHECK(r.stdout_tail.find("SESSIOND_ADMIN_TOKEN") == std::string::npos);
  CHECK(r.stdout_tail.find("admin-token-value") == std::string::npos);
  CHECK(r.stdout_tail.find("AWS_SECRET") == std::string::npos);
  CHECK(r.stdout_tail.find("STDIN\n" + to_json(e).dump() + "\n") != std::string::npos);
  ::unsetenv("SESSIOND_ADMIN_TOKEN");
  ::unsetenv("SESSIOND_WEBHOOK_SECRET_FILE");
  ::unsetenv("AWS_SECRET_ACCESS_KEY");
}

TEST_CASE("run_process stdin: large data, and a child that never reads it", "[hooks][process]") {
  ProcessOptions po;
  po.stdin_data = std::string(200000, 'x');  // beyond a default pipe's 64 KiB
  auto r = run_process({"/bin/sh", "-c", "wc -c"}, 5000ms, po);
  CHECK(r.exit_code == 0);
  CHECK(r.stdout_tail.find("200000") != std::string::npos);
  // No SIGPIPE in sessiond when the child exits without reading.
  r = run_process({"true"}, 5000ms, po);
  CHECK(r.exit_code == 0);
  po.stdin_data = std::string(kMaxStdinBytes + 1, 'x');
  r = run_process({"true"}, 5000ms, po);
  CHECK_FALSE(r.started);
  CHECK(r.error.find("too large") != std::string::npos);
  // Without stdin_data, stdin is still /dev/null.
  r = run_process({"/bin/sh", "-c", "cat; echo end"}, 5000ms);
  CHECK(r.stdout_tail == "end\n");
}

TEST_CASE("run_process cancel stops a child that hangs", "[hooks][process]") {
  std::atomic<bool> cancel{false};
  ProcessOptions po;
  po.cancel = &cancel;
  std::thread t([&] {
    std::this_thread::sleep_for(100ms);
    cancel = true;
  });
  const auto t0 = std::chrono::steady_clock::now();
  const auto r = run_process({"sleep", "30"}, 60000ms, po);
  const auto took = std::chrono::steady_clock::now() - t0;
  t.join();
  CHECK(r.started);
  CHECK(r.signal == SIGTERM);
  CHECK(r.error.find("cancelled") == 0);
  CHECK(took < 2s);
}

TEST_CASE("Hooks deliver bus events to an exec hook and count them", "[hooks]") {
  MetricsConfig mc;
  Metrics metrics(mc);
  auto bus = std::make_shared<EventBus>();
  char dir[] = "/tmp/sessiond-hooks-XXXXXX";
  REQUIRE(::mkdtemp(dir));
  const std::string out = std::string(dir) + "/out";
  HookOptions ho;
  ho.exec = {"/bin/sh", "-c",
             "cat >> " + out + "; echo \"$SESSIOND_EVENT_TYPE\" >> " + out +
                 "; [ \"$SESSIOND_EVENT_TYPE\" != at_risk ] || "
                 "{ echo boom >&2; exit 3; }"};
  ho.types = parse_type_filter("logged_out,at_risk");
  ho.metrics = &metrics;
  ho.concurrency = 1;
  Hooks hooks(bus, ho);
  hooks.start();
  bus->publish(event(0, "registered"));  // filtered out
  bus->publish(event(0, "logged_out"));
  bus->publish(event(0, "at_risk"));
  // Bounded wait for both runs (each well under a second).
  for (int i = 0;
       i < 500 &&
       metrics.hook_deliveries("exec", "ok") + metrics.hook_deliveries("exec", "failed") < 2;
       ++i)
    std::this_thread::sleep_for(10ms);
  hooks.stop();
  CHECK(metrics.hook_deliveries("exec", "ok") == 1);
  CHECK(metrics.hook_deliveries("exec", "failed") == 1);
  CHECK(metrics.hook_deliveries("exec", "dropped") == 0);
  CHECK(metrics.hook_queue("exec") == 0);
  std::ifstream in(out);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CHECK(text.find("\"type\":\"logged_out\"") != std::string::npos);
  CHECK(text.find("registered") == std::string::npos);
  std::remove(out.c_str());
  ::rmdir(dir);
}

TEST_CASE("hook flags: parsing and the webhook secret file", "[hooks][config]") {
  auto parse = [](std::vector<const char*> args) {
    args.insert(args.begin(), "sessiond");
    return parse_config(static_cast<int>(args.size()), args.data(), {});
  };
  Config c = parse({"run", "--hook-exec", "/usr/bin/relogin --fast", "--hook-types",
                    "logged_out,invalidated", "--hook-timeout", "3s", "--hook-queue", "5"});
  CHECK(c.hook_exec == std::vector<std::string>{"/usr/bin/relogin", "--fast"});
  CHECK(c.hook_types == "logged_out,invalidated");
  CHECK(c.hook_timeout == 3000ms);
  CHECK(c.hook_queue == 5);
  CHECK(c.hook_concurrency == 2);
  CHECK(c.webhook_retry_max == 600000ms);
  CHECK_THROWS_AS(parse({"run", "--hook-types", "logged_out,bogus"}), ConfigError);
  CHECK_THROWS_AS(parse({"run", "--hook-exec", "  "}), ConfigError);
  CHECK_THROWS_AS(parse({"run", "--webhook-url", "ftp://x"}), ConfigError);
  CHECK_THROWS_AS(parse({"run", "--webhook-url", "http://127.0.0.1:1/"}), ConfigError);

  char path[] = "/tmp/sessiond-webhook-secret-XXXXXX";
  const int fd = ::mkstemp(path);
  REQUIRE(fd >= 0);
  const std::string secret = "whsec-0123456789\n";
  REQUIRE(::write(fd, secret.data(), secret.size()) == static_cast<ssize_t>(secret.size()));
  ::close(fd);
  c = parse({"run", "--webhook-url", "https://bot.example/hook", "--webhook-secret-file", path});
  CHECK(c.webhook_secret == "whsec-0123456789");
  std::remove(path);
  try {
    parse({"run", "--webhook-url", "https://bot.example/hook", "--webhook-secret-file", path});
    FAIL("no error for a missing secret file");
  } catch (const ConfigError& e) {
    CHECK(std::string(e.what()).find("--webhook-secret-file") != std::string::npos);
  }
}
