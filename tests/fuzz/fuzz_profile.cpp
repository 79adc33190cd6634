// libFuzzer target: site profiles. parse_profile() must reject anything it
// cannot use with a ProfileError naming the field (never another exception, a
// crash or UB), and a profile it accepts must keep the promises the scheduler
// and the session actors rely on, and work: requests built from it, responses
// judged by its rules, captures applied.

#include <cstddef>
#include <cstdint>
#include <exception>
#include <string>

#include "fuzz_check.hpp"
#include "sessiond/profile.hpp"

using namespace sessiond;
using json = nlohmann::json;

namespace {

bool valid_condition(const PageCondition& c) {
  for (const auto* f : {&c.selector, &c.text, &c.url_contains})
    if (*f && (*f)->empty()) return false;
  return c.selector || c.text || c.url_contains;
}

bool valid_browser_step(const Step& s) {
  const BrowserStepSpec& b = *s.browser;
  if (s.is_exec() || !s.path.empty() || !s.logged_in.empty() || !s.logged_out.empty() ||
      !s.captures.empty())
    return false;  // exec, browser and HTTP fields are exclusive
  if (b.url.empty() || b.wait_for.empty() || b.timeout.count() <= 0 || b.settle.count() < 0)
    return false;
  if (!b.settle_network_idle && b.settle >= b.timeout) return false;
  for (const auto* conditions : {&b.wait_for, &b.logged_out})
    for (const auto& c : *conditions)
      if (!valid_condition(c)) return false;
  return true;
}

bool valid_step(const Step& s) {
  if (s.timeout.count() <= 0) return false;
  if (s.is_browser()) return valid_browser_step(s);
  if (!s.is_exec() && s.path.empty()) return false;
  for (const auto* rules : {&s.logged_in, &s.logged_out})
    for (const auto& r : *rules)
      for (auto [lo, hi] : r.status)
        if (lo < 100 || hi > 599 || lo > hi) return false;
  for (const auto& c : s.captures)
    if (c.target.empty() || (c.source.empty() && c.from == Capture::From::header)) return false;
  return true;
}

const json& session() {
  static const json doc = json::parse(R"({
    "cookies": [
      {"name": "csrftoken", "value": "c5rf", "domain": "baman24.ir", "path": "/"},
      {"name": "pwa_access_token", "value": "eyJhbGciOiJIUzI1NiJ9.eyJleHAiOjE3NTMzNTQ4ODd9.c2ln",
       "domain": "baman24.ir", "path": "/", "expires": 1753354887.55}
    ],
    "origins": [{"origin": "https://baman24.ir", "localStorage": [{"name": "k", "value": "v"}]}],
    "headers": {"Authorization": "Bearer eyJhbGciOiJIUzI1NiJ9.eyJleHAiOjE3NTMzNTQ4ODd9.c2ln"},
    "keepalive": {"state": "active", "refreshCount": 5}
  })");
  return doc;
}

std::vector<HttpResponse> responses() {
  std::vector<HttpResponse> out;
  auto add = [&](long status, std::string body, std::string location) {
    HttpResponse r;
    r.status = status;
    r.body = std::move(body);
    r.headers = {{"content-type", "application/json"}, {"authorization", "Bearer a.b.c"}};
    if (!location.empty()) r.headers.emplace_back("location", location);
    out.push_back(std::move(r));
  };
  add(200, "<div class=\"homeSection\"></div>", "");
  add(200, R"({"token": "eyJhbGciOiJIUzI1NiJ9.eyJleHAiOjE3NTMzNTQ4ODd9.c2ln", "ok": true})", "");
  add(200, R"({"token": {"nested": [1, "a.b.c"]}, "user": {"active": true}, "n": 12})", "");
  add(302, "", "https://baman24.ir/login?next=/pwa");
  add(401, "{}", "");
  add(503, "busy", "");
  HttpResponse failed;
  failed.curl_code = 28;
  out.push_back(failed);
  return out;
}

void use(const Profile& p) {
  static const std::vector<HttpResponse> canned = responses();
  const std::string id = "09120000000";
  for (const auto* step : {&p.check, &p.refresh}) {
    if (!*step) continue;
    const Step& s = **step;
    TemplateContext ctx{id, session(), p.base_url, "/tmp/session-09120000000.json", nullptr};
    if (s.is_exec()) {
      for (const auto& arg : s.exec) (void)expand_template(arg, ctx);
    } else if (s.is_browser()) {
      (void)expand_template(s.browser->url, ctx);
    } else {
      HttpRequest req = make_request(p, s, ctx, {});
      for (const auto& h : req.headers)
        FUZZ_CHECK(h.find_first_of("\r\n") == std::string::npos, "header injection: " + h);
    }
    for (const auto& r : canned) {
      Verdict v = s.evaluate(r);
      if (!r.transport_ok() || r.status == 503)
        FUZZ_CHECK(v == Verdict::transient, "5xx/transport");
      json doc = session();
      std::vector<std::string> jar;
      (void)apply_captures(s, r, p.base_url, doc, jar);
      FUZZ_CHECK(doc.is_object() && doc["cookies"].is_array(), "captures broke the session");
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  Profile p;
  try {
    p = parse_profile(text);
  } catch (const ProfileError& e) {
    FUZZ_CHECK(*e.what() != '\0', "a ProfileError says what is wrong");
    return 0;
  } catch (const std::exception& e) {
    FUZZ_FAIL(std::string("parse_profile threw something other than ProfileError: ") + e.what());
  }
  FUZZ_CHECK((p.base_url.rfind("http://", 0) == 0 && p.base_url.size() > 7) ||
                 (p.base_url.rfind("https://", 0) == 0 && p.base_url.size() > 8),
             "base_url: scheme and host");
  FUZZ_CHECK(p.interval.count() > 0 && p.interval < p.idle_timeout, "0 < interval < idle_timeout");
  FUZZ_CHECK(p.jitter >= 0 && p.jitter <= 0.5, "jitter in [0, 0.5]");
  FUZZ_CHECK(p.check || p.refresh, "a check or a refresh step");
  FUZZ_CHECK(p.retry.base.count() > 0 && p.retry.max >= p.retry.base, "retry base/max");
  FUZZ_CHECK(p.retry.max_attempts >= 0 && p.retry.max_attempts <= 1000, "retry.max_attempts");
  FUZZ_CHECK(p.max_in_flight >= 1 && p.exec_max_concurrent >= 1, "concurrency limits");
  FUZZ_CHECK(p.circuit.window.count() > 0 && p.circuit.open_for.count() > 0, "circuit durations");
  if (p.check) FUZZ_CHECK(valid_step(*p.check), "check step");
  if (p.refresh) FUZZ_CHECK(valid_step(*p.refresh), "refresh step");
  if (p.token_deadline)
    FUZZ_CHECK(!p.token_deadline->name.empty() && p.token_deadline->margin.count() > 0,
               "token_deadline");
  try {
    use(p);
  } catch (const std::exception& e) {
    FUZZ_FAIL(std::string("using an accepted profile threw: ") + e.what());
  }
  return 0;
}
