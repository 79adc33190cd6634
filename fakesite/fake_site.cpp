#include "fake_site.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <functional>
#include <mutex>
#include <queue>
#include <random>
#include <stdexcept>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>

#include <httplib.h>

namespace fakesite {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;
using TP = Clock::time_point;

constexpr std::size_t kMaxSecrets = 200000;
constexpr int kRefreshTokenMaxAge = 2592000;  // 30 days
constexpr std::size_t kKeepAliveMaxCount = 100;
constexpr time_t kKeepAliveTimeoutSec = 1;  // bounds stop() / down: idle connections drain fast
constexpr int kAdminThreads = 4;
constexpr auto kSweepInterval = std::chrono::milliseconds(50);
constexpr std::size_t kSweepBatch = 5000;  // heap operations per lock hold
constexpr std::size_t kMaxBundleBytes = 64u << 20;

// ---------------------------------------------------------------- random ---

std::mt19937_64& rng() {
  thread_local std::mt19937_64 gen([] {
    std::random_device rd;
    std::seed_seq seq{
        rd(),
        rd(),
        rd(),
        rd(),
        static_cast<unsigned>(std::hash<std::thread::id>()(std::this_thread::get_id())),
        static_cast<unsigned>(Clock::now().time_since_epoch().count())};
    return std::mt19937_64(seq);
  }());
  return gen;
}

double uniform01() {
  return std::uniform_real_distribution<double>(0.0, 1.0)(rng());
}

const char kHex[] = "0123456789abcdef";

void append_hex64(std::string& out, std::uint64_t v) {
  for (int shift = 60; shift >= 0; shift -= 4) out.push_back(kHex[(v >> shift) & 0xF]);
}

std::string random_hex(int words64) {
  std::string out;
  out.reserve(static_cast<std::size_t>(words64) * 16);
  for (int i = 0; i < words64; ++i) append_hex64(out, rng()());
  return out;
}

// A session id is 128 random bits, kept as two words (compact index keys).
struct SidKey {
  std::uint64_t hi = 0, lo = 0;
  bool operator==(const SidKey& o) const { return hi == o.hi && lo == o.lo; }
  bool operator!=(const SidKey& o) const { return !(*this == o); }
};
struct SidKeyHash {
  std::size_t operator()(const SidKey& k) const {
    return static_cast<std::size_t>(k.hi ^ (k.lo * 0x9E3779B97F4A7C15ULL));
  }
};

SidKey random_sid() {
  return SidKey{rng()(), rng()()};
}

std::string sid_hex(const SidKey& k) {
  std::string out;
  out.reserve(32);
  append_hex64(out, k.hi);
  append_hex64(out, k.lo);
  return out;
}

int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool parse_sid(std::string_view s, SidKey& out) {
  if (s.size() != 32) return false;
  std::uint64_t w[2] = {0, 0};
  for (std::size_t i = 0; i < 32; ++i) {
    int v = hexval(s[i]);
    if (v < 0) return false;
    w[i / 16] = (w[i / 16] << 4) | static_cast<std::uint64_t>(v);
  }
  out.hi = w[0];
  out.lo = w[1];
  return true;
}

// ------------------------------------------------------------------- JWT ---

std::string base64url(std::string_view in) {
  static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  out.reserve((in.size() * 4 + 2) / 3);
  std::size_t i = 0;
  auto byte = [&](std::size_t k) {
    return static_cast<std::uint32_t>(static_cast<unsigned char>(in[k]));
  };
  for (; i + 2 < in.size(); i += 3) {
    std::uint32_t v = byte(i) << 16 | byte(i + 1) << 8 | byte(i + 2);
    out.push_back(tbl[(v >> 18) & 63]);
    out.push_back(tbl[(v >> 12) & 63]);
    out.push_back(tbl[(v >> 6) & 63]);
    out.push_back(tbl[v & 63]);
  }
  if (in.size() - i == 1) {
    std::uint32_t v = byte(i) << 16;
    out.push_back(tbl[(v >> 18) & 63]);
    out.push_back(tbl[(v >> 12) & 63]);
  } else if (in.size() - i == 2) {
    std::uint32_t v = byte(i) << 16 | byte(i + 1) << 8;
    out.push_back(tbl[(v >> 18) & 63]);
    out.push_back(tbl[(v >> 12) & 63]);
    out.push_back(tbl[(v >> 6) & 63]);
  }
  return out;
}

std::string make_jwt(const std::string& mobile, std::int64_t iat, std::int64_t exp) {
  static const std::string header = base64url(R"({"alg":"HS256","typ":"JWT"})");
  json payload = {{"sub", mobile}, {"exp", exp}, {"iat", iat}};
  std::string sig;
  sig.reserve(32);
  for (int i = 0; i < 4; ++i) {
    std::uint64_t w = rng()();
    for (int b = 0; b < 8; ++b) sig.push_back(static_cast<char>((w >> (8 * b)) & 0xFF));
  }
  return header + "." + base64url(payload.dump()) + "." + base64url(sig);
}

std::int64_t unix_now_s() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

double unix_now_frac() {
  return static_cast<double>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                 std::chrono::system_clock::now().time_since_epoch())
                                 .count()) /
         1000.0;
}

// --------------------------------------------------------------- headers ---

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// First cookie called `name` in the request's Cookie header(s).
bool find_cookie(const httplib::Request& req, std::string_view name, std::string& out) {
  auto range = req.headers.equal_range("Cookie");
  for (auto it = range.first; it != range.second; ++it) {
    std::string_view h = it->second;
    std::size_t pos = 0;
    while (pos <= h.size()) {
      std::size_t end = h.find(';', pos);
      if (end == std::string_view::npos) end = h.size();
      std::string_view part = h.substr(pos, end - pos);
      std::size_t eq = part.find('=');
      if (eq != std::string_view::npos && trim(part.substr(0, eq)) == name) {
        std::string_view v = trim(part.substr(eq + 1));
        if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
        out.assign(v.data(), v.size());
        return true;
      }
      pos = end + 1;
    }
  }
  return false;
}

bool bearer_token(const httplib::Request& req, std::string_view& out) {
  auto it = req.headers.find("Authorization");
  if (it == req.headers.end()) return false;
  std::string_view v = trim(it->second);
  if (v.size() < 7) return false;
  std::string_view scheme = v.substr(0, 7);
  static constexpr std::string_view kBearer = "bearer ";
  for (std::size_t i = 0; i < 7; ++i) {
    char c = scheme[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != kBearer[i]) return false;
  }
  out = trim(v.substr(7));
  return true;
}

const std::string kHomePage =
    "<!doctype html>\n<html lang=\"fa\"><head><meta charset=\"utf-8\"><title>Fake "
    "site</title></head>\n"
    "<body><div id=\"root\"><div class=\"homeSection\"><h1>Welcome back</h1>"
    "<p>You are logged in.</p></div></div></body></html>\n";
const std::string kLoginPage =
    "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>Login</title></head>\n"
    "<body><form class=\"loginForm\" method=\"post\" action=\"/api/login\">"
    "<input name=\"mobile\"><button>Login</button></form></body></html>\n";
const std::string kLoginRedirect = "/login?next=%2Fpwa";

// ------------------------------------------------- client-rendered app ---

const char kAppTokenKey[] = "pwa_access_token";  // the localStorage item

// The app: reads the token, calls the API with the cookie and the token,
// stores the renewed token, renders the home section; 401/403 routes to
// /auth/login. Any other failure (an injected 503, a cut connection) renders
// an error, neither logged in nor logged out, as a real app would. With the
// shell's data-hang it never renders (timeout tests). GET, so that a
// cacheable answer (api_cacheable) can be served from the browser's cache.
const char kAppScript[] = R"JS((function () {
  "use strict";
  var KEY = "pwa_access_token";
  function root() { return document.getElementById("root"); }
  function render(html) { root().innerHTML = html; }
  function loggedOut() {
    if (location.pathname !== "/auth/login") history.pushState(null, "", "/auth/login");
    render('<form class="loginForm" method="post" action="/api/login">' +
           '<input name="mobile"><button>Login</button></form>');
  }
  function failed(why) {
    render('<div class="errorSection">Temporarily unavailable (' + why + ')</div>');
  }
  function start() {
    if (document.body.hasAttribute("data-hang")) return;
    var token = null;
    try { token = window.localStorage.getItem(KEY); } catch (e) { token = null; }
    if (!token) { loggedOut(); return; }
    fetch("/api/pwa/session", {method: "GET", credentials: "include",
                               headers: {"Authorization": "Bearer " + token}})
      .then(function (r) {
        if (r.status === 401 || r.status === 403) return null;
        if (r.status !== 200) throw new Error("HTTP " + r.status);
        return r.json();
      })
      .then(function (j) {
        if (!j) { loggedOut(); return; }
        window.localStorage.setItem(KEY, j.token);
        if (location.pathname === "/auth/login") history.replaceState(null, "", "/pwa");
        render('<div class="homeSection"><h1>Welcome back</h1><p>You are logged in.</p></div>');
      })
      .catch(function (e) { failed(String(e && e.message || e)); });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
)JS";

// kAppScript padded to `bytes` with code a browser must parse: an object of
// small functions, as bundlers emit, then a comment for the last few bytes.
std::string app_bundle(std::size_t bytes) {
  std::string js = kAppScript;
  if (js.size() >= bytes) return js;
  js += "var __fakeModules = {\n";
  const std::string tail = "};\n";
  for (std::size_t i = 0;; ++i) {
    const std::string n = std::to_string(i);
    std::string fn = "  m" + n + ": function (e, t) { var n = e + " + n +
                     "; return t ? n * 2 : \"m" + n + "\" + n; },\n";
    if (js.size() + fn.size() + tail.size() + 4 > bytes) break;
    js += fn;
  }
  js += tail;
  if (js.size() + 4 <= bytes)
    js += "/*" + std::string(bytes - js.size() - 4, '.') + "*/";
  else
    js.append(bytes - js.size(), '\n');
  return js;
}

// FNV-1a 64: the bundle's name and ETag change with its content.
std::string content_hash(const std::string& data) {
  std::uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : data) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  std::string out;
  append_hex64(out, h);
  return out;
}

std::string app_shell(const std::string& bundle_path, bool hang) {
  return "<!doctype html>\n<html lang=\"fa\"><head><meta charset=\"utf-8\">"
         "<title>Fake PWA</title>\n<script src=\"" +
         bundle_path + "\" defer></script></head>\n<body" + (hang ? " data-hang=\"1\"" : "") +
         "><div id=\"root\"></div></body></html>\n";
}

enum class State { active, lost, expired_during_outage, logged_out };

const char* state_name(State s) {
  switch (s) {
    case State::active:
      return "active";
    case State::lost:
      return "lost";
    case State::expired_during_outage:
      return "expired_during_outage";
    case State::logged_out:
      return "logged_out";
  }
  return "unknown";
}

struct Account {
  std::string mobile;
  std::uint64_t gen = 0;  // bumped by each login (a new session)
  State state = State::active;
  SidKey sid;
  bool has_prev = false;  // rotated-away sid still accepted until prev_until
  SidKey prev_sid;
  TP prev_until;
  TP rotated_at{};  // the last rotation: a crash test dates the rotations a kill lost
  std::string refresh_token, csrftoken;
  std::string jwt, prev_jwt;
  std::int64_t jwt_exp = 0;  // unix seconds
  TP jwt_deadline;           // steady-clock twin of jwt_exp
  TP last_seen;
  std::uint64_t checks = 0, refreshes = 0;
  std::uint64_t api_calls = 0;        // accepted client-rendered app API calls
  std::uint64_t first_check_seq = 0;  // order of this account's first accepted check (0: none yet)
  std::vector<std::pair<std::string, std::uint64_t>> replicas;
};

struct SidRef {
  Account* acct;
  std::uint64_t gen;
};

struct HeapEntry {
  TP when;
  Account* acct;
  std::uint64_t gen;
  bool operator>(const HeapEntry& o) const { return when > o.when; }
};

// What a login/refresh issued, copied out of the lock to build the response.
struct Issued {
  std::string mobile, sid, refresh_token, csrftoken, jwt;
  std::int64_t jwt_exp = 0;
};

struct Faults {
  double error_ratio = 0;
  int error_status = 503;
  int retry_after_s = 0;
  int latency_ms = 0;
  double reset_ratio = 0;
  bool down = false;
  bool hang = false;  // client-rendered app: the page's script never renders
};

Faults parse_faults(const json& j) {
  if (!j.is_object()) throw std::invalid_argument("faults must be a JSON object");
  Faults f;
  auto ratio = [](const json& v, const char* name) {
    if (!v.is_number()) throw std::invalid_argument(std::string(name) + " must be a number");
    double d = v.get<double>();
    if (!(d >= 0.0 && d <= 1.0))
      throw std::invalid_argument(std::string(name) + " must be in [0,1]");
    return d;
  };
  auto integer = [](const json& v, const char* name, long lo, long hi) {
    if (!v.is_number()) throw std::invalid_argument(std::string(name) + " must be a number");
    double d = v.get<double>();
    if (!(d >= static_cast<double>(lo) && d <= static_cast<double>(hi)))
      throw std::invalid_argument(std::string(name) + " out of range [" + std::to_string(lo) + "," +
                                  std::to_string(hi) + "]");
    return static_cast<int>(d);
  };
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& k = it.key();
    if (k == "error_ratio")
      f.error_ratio = ratio(*it, "error_ratio");
    else if (k == "reset_ratio")
      f.reset_ratio = ratio(*it, "reset_ratio");
    else if (k == "error_status")
      f.error_status = integer(*it, "error_status", 100, 599);
    else if (k == "retry_after_s")
      f.retry_after_s = integer(*it, "retry_after_s", 0, 86400);
    else if (k == "latency_ms")
      f.latency_ms = integer(*it, "latency_ms", 0, 60000);
    else if (k == "down") {
      if (!it->is_boolean()) throw std::invalid_argument("down must be a boolean");
      f.down = it->get<bool>();
    } else if (k == "hang") {
      if (!it->is_boolean()) throw std::invalid_argument("hang must be a boolean");
      f.hang = it->get<bool>();
    } else {
      throw std::invalid_argument("unknown fault field: " + k);
    }
  }
  return f;
}

// SO_REUSEADDR (not httplib's default SO_REUSEPORT): a busy port fails to
// bind, and the site can bind its port again right after "down".
void socket_options(socket_t sock) {
  int yes = 1;
  setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
}

void configure_server(httplib::Server& s, int threads) {
  s.set_tcp_nodelay(true);
  s.set_socket_options(socket_options);
  s.set_keep_alive_max_count(kKeepAliveMaxCount);
  s.set_keep_alive_timeout(kKeepAliveTimeoutSec);
  s.set_read_timeout(5, 0);
  s.set_write_timeout(5, 0);
  std::size_t n = static_cast<std::size_t>(std::max(1, threads));
  s.new_task_queue = [n] { return new httplib::ThreadPool(n); };
}

// Headers then a connection close before the announced body is complete.
void cut_connection(httplib::Response& res, std::size_t partial_bytes) {
  res.status = 200;
  res.set_content_provider(
      4096, "text/html; charset=utf-8",
      [partial_bytes](std::size_t offset, std::size_t, httplib::DataSink& sink) {
        if (offset == 0 && partial_bytes > 0) {
          std::string part = kHomePage.substr(0, std::min(partial_bytes, kHomePage.size()));
          sink.write(part.data(), part.size());
        }
        return false;
      });
}

void write_file_atomic(const std::string& path, const std::string& content) {
  namespace fs = std::filesystem;
  fs::path p(path);
  fs::path dir = p.parent_path().empty() ? fs::path(".") : p.parent_path();
  std::string tmp = (dir / ("." + p.filename().string() + ".tmp-" + random_hex(1))).string();
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) throw std::runtime_error("cannot create " + tmp + ": " + std::strerror(errno));
  auto fail = [&](const char* what) {
    int e = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    throw std::runtime_error(std::string(what) + " " + tmp + ": " + std::strerror(e));
  };
  if (::fchmod(fd, 0600) != 0) fail("cannot chmod");
  const char* data = content.data();
  std::size_t left = content.size();
  while (left > 0) {
    ssize_t n = ::write(fd, data, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail("cannot write");
    }
    data += n;
    left -= static_cast<std::size_t>(n);
  }
  // No fsync: these are test fixtures, and seeding thousands of files must be
  // quick (an fsync costs ~10 ms on some disks). Atomic rename still holds.
  if (::close(fd) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    throw std::runtime_error("cannot close " + tmp + ": " + std::strerror(e));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    throw std::runtime_error("cannot rename " + tmp + " to " + path + ": " + std::strerror(e));
  }
}

// A JSON text of about `bytes` bytes, shaped like a redux-localstorage-simple
// dump of a shop PWA.
std::string local_storage_value(const std::string& mobile, const std::string& jwt, int bytes) {
  json v = {
      {"auth", {{"isLoggedIn", true}, {"mobile", mobile}, {"accessToken", jwt}}},
      {"user",
       {{"mobile", mobile}, {"firstName", "کاربر"}, {"lastName", "آزمایشی"}, {"city", "Tehran"}}},
      {"settings", {{"lang", "fa"}, {"theme", "light"}, {"notifications", true}}},
      {"cart", {{"items", json::array()}, {"total", 0}}},
  };
  json history = json::array();
  v["history"] = json::array();
  std::size_t size = v.dump().size();
  // Realistic-ish bulk first (sizes tracked incrementally), then exact padding.
  for (int i = 0; i < 100000; ++i) {
    json item = {{"id", 100000 + i},
                 {"title", "Product " + std::to_string(i)},
                 {"price", 125000 + 10 * i},
                 {"seen", true}};
    std::size_t item_size = item.dump().size() + 1;
    if (size + item_size + 200 > static_cast<std::size_t>(std::max(bytes, 0))) break;
    size += item_size;
    history.push_back(std::move(item));
  }
  v["history"] = std::move(history);
  std::string text = v.dump();
  const std::size_t overhead = std::string(R"(,"pad":"")").size();
  if (static_cast<std::size_t>(bytes) > text.size() + overhead) {
    std::size_t n = static_cast<std::size_t>(bytes) - text.size() - overhead;
    std::string pad;
    pad.reserve(n);
    static const char alnum[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    for (std::size_t k = 0; k < n; ++k) pad.push_back(alnum[(k * 7 + k / 61) % 62]);
    v["pad"] = pad;
    text = v.dump();
  }
  return text;
}

}  // namespace

// ================================================================== Impl ===

struct FakeSite::Impl {
  explicit Impl(Options o) : opt(std::move(o)) {
    if (opt.bundle_bytes > kMaxBundleBytes)
      throw std::invalid_argument("fakesite: bundle_bytes must be at most 67108864");
    if (opt.client_rendered) {
      bundle = app_bundle(opt.bundle_bytes);
      bundle_hash = content_hash(bundle);
      bundle_path = "/static/app." + bundle_hash + ".js";
    }
  }

  Options opt;

  // ---- the client-rendered app (immutable after construction) ----
  std::string bundle, bundle_hash, bundle_path;
  std::atomic<bool> hang{false};
  std::atomic<std::uint64_t> n_shell{0}, n_bundle{0}, n_bundle_bytes{0}, n_bundle_304{0};
  std::atomic<std::uint64_t> n_api{0}, n_api_rejected{0};

  // ---- lifecycle (life_mu before mu) ----
  std::mutex life_mu;
  bool started = false, stopped = false;
  bool want_down = false;
  std::unique_ptr<httplib::Server> site;
  std::thread site_thread;
  std::vector<std::pair<std::unique_ptr<httplib::Server>, std::thread>> retired;
  std::unique_ptr<httplib::Server> admin;
  std::thread admin_thread;
  std::atomic<int> port{0}, admin_port{0};
  std::atomic<bool> down{true};  // the site listener is not serving

  // ---- faults (read lock-free on the hot path) ----
  mutable std::mutex fault_mu;
  Faults faults_set;  // under fault_mu
  std::atomic<bool> faults_on{false};
  std::atomic<double> error_ratio{0}, reset_ratio{0};
  std::atomic<int> error_status{503}, retry_after_s{0}, latency_ms{0};

  // ---- sessions ----
  mutable std::mutex mu;
  std::unordered_map<std::string, std::unique_ptr<Account>> accounts;
  std::unordered_map<SidKey, SidRef, SidKeyHash> sids;  // every sid ever issued
  std::priority_queue<HeapEntry, std::vector<HeapEntry>, std::greater<HeapEntry>> deadlines;
  std::vector<std::pair<TP, TP>> outages;  // [down, up), TP::max() while down
  std::uint64_t active = 0, lost = 0, expired_outage = 0, forced = 0, stale = 0;
  std::uint64_t n_login = 0, n_check = 0, n_refresh = 0, n_injected = 0, n_resets = 0;
  std::uint64_t n_first_checks = 0;  // accounts checked at least once
  std::vector<std::string> secrets;
  std::uint64_t secrets_dropped = 0;

  // ---- sweep thread ----
  std::thread sweeper;
  std::mutex sweep_mu;
  std::condition_variable sweep_cv;
  bool sweep_stop = false;

  // ---------------------------------------------------------- sessions ---

  void add_secret(std::string s) {
    if (secrets.size() < kMaxSecrets)
      secrets.push_back(std::move(s));
    else
      ++secrets_dropped;
  }

  TP deadline_of(const Account& a) const {
    TP d = a.last_seen + opt.idle_timeout;
    if ((opt.require_token || opt.client_rendered) && a.jwt_deadline < d) d = a.jwt_deadline;
    return d;
  }

  // True when no outage overlaps [from, to].
  bool up_throughout(TP from, TP to) const {
    for (auto it = outages.rbegin(); it != outages.rend(); ++it) {
      if (it->second <= from) break;
      if (it->first < to) return false;
    }
    return true;
  }

  void expire(Account& a, TP deadline) {
    if (up_throughout(a.last_seen, deadline)) {
      a.state = State::lost;
      ++lost;
    } else {
      a.state = State::expired_during_outage;
      ++expired_outage;
    }
    --active;
  }

  // Expires `a` if its deadline has passed. Returns true if still active.
  bool check_deadline(Account& a, TP now) {
    if (a.state != State::active) return false;
    TP d = deadline_of(a);
    if (now > d) {
      expire(a, d);
      return false;
    }
    return true;
  }

  // Returns false if more work is left.
  bool sweep_locked(TP now, std::size_t budget) {
    while (!deadlines.empty() && deadlines.top().when <= now) {
      if (budget-- == 0) return false;
      HeapEntry e = deadlines.top();
      deadlines.pop();
      Account& a = *e.acct;
      if (a.gen != e.gen || a.state != State::active) continue;
      TP d = deadline_of(a);
      if (now > d)
        expire(a, d);
      else
        deadlines.push(HeapEntry{d + std::chrono::nanoseconds(1), &a, a.gen});
    }
    return true;
  }

  void issue_token(Account& a) {
    std::int64_t iat = unix_now_s();
    a.jwt_exp = iat + opt.token_ttl.count();
    a.jwt_deadline = Clock::now() + opt.token_ttl;
    a.jwt = make_jwt(a.mobile, iat, a.jwt_exp);
    add_secret(a.jwt);
  }

  static Issued issued_of(const Account& a) {
    return Issued{a.mobile, sid_hex(a.sid), a.refresh_token, a.csrftoken, a.jwt, a.jwt_exp};
  }

  // A new session for `mobile` (replacing any previous one).
  Issued login_locked(const std::string& mobile, TP now) {
    auto& slot = accounts[mobile];
    if (!slot) {
      slot = std::make_unique<Account>();
      slot->mobile = mobile;
      slot->state = State::logged_out;
    }
    Account& a = *slot;
    if (a.state == State::active) check_deadline(a, now);
    if (a.state != State::active) ++active;
    ++a.gen;
    a.state = State::active;
    a.sid = random_sid();
    a.has_prev = false;
    a.prev_jwt.clear();
    a.refresh_token = random_hex(4);
    a.csrftoken = random_hex(2);
    a.last_seen = now;
    issue_token(a);
    sids.emplace(a.sid, SidRef{&a, a.gen});
    add_secret(sid_hex(a.sid));
    add_secret(a.refresh_token);
    add_secret(a.csrftoken);
    deadlines.push(HeapEntry{deadline_of(a) + std::chrono::nanoseconds(1), &a, a.gen});
    return issued_of(a);
  }

  static void count_replica(Account& a, const httplib::Request& req) {
    auto it = req.headers.find("X-Sessiond-Replica");
    if (it == req.headers.end()) return;
    for (auto& r : a.replicas) {
      if (r.first == it->second) {
        ++r.second;
        return;
      }
    }
    a.replicas.emplace_back(it->second, 1);
  }

  // The account a request's sid cookie names (any state), or nullptr.
  Account* account_of(const httplib::Request& req, SidKey& key, const SidRef** ref_out) {
    std::string v;
    if (!find_cookie(req, "sid", v) || !parse_sid(v, key)) return nullptr;
    auto it = sids.find(key);
    if (it == sids.end()) return nullptr;
    *ref_out = &it->second;
    return it->second.acct;
  }

  // Resolves and authenticates a site request. Returns the account named by
  // the sid (nullptr if none); `ok` says whether it is a valid session.
  Account* authenticate(const httplib::Request& req, TP now, bool& ok) {
    return authenticate(req, now, ok, opt.require_token);
  }
  Account* authenticate(const httplib::Request& req, TP now, bool& ok, bool need_token) {
    ok = false;
    SidKey key;
    const SidRef* ref = nullptr;
    Account* a = account_of(req, key, &ref);
    if (!a) return nullptr;
    count_replica(*a, req);
    if (ref->gen != a->gen) {  // a session replaced by a later login
      ++stale;
      return a;
    }
    bool is_current = key == a->sid;
    if (!check_deadline(*a, now)) {
      if (!is_current) ++stale;
      return a;
    }
    bool in_grace = a->has_prev && key == a->prev_sid && now < a->prev_until;
    if (!is_current && !in_grace) {
      ++stale;
      return a;
    }
    if (need_token) {
      std::string_view tok;
      if (!bearer_token(req, tok)) return a;
      bool good = tok == a->jwt || (a->has_prev && now < a->prev_until && !a->prev_jwt.empty() &&
                                    tok == a->prev_jwt);
      if (!good) return a;
    }
    ok = true;
    a->last_seen = now;
    return a;
  }

  // ----------------------------------------------------------- handlers ---

  enum class Kind {
    login,
    check_page,
    check_json,
    refresh,
    login_page,
    app_shell,
    bundle,
    app_api
  };

  void serve(Kind kind, const httplib::Request& req, httplib::Response& res) {
    if (down.load(std::memory_order_relaxed)) {  // a kept-alive connection of a stopped listener
      cut_connection(res, 0);
      return;
    }
    if (faults_on.load(std::memory_order_relaxed)) {
      int lat = latency_ms.load(std::memory_order_relaxed);
      if (lat > 0) {
        std::this_thread::sleep_for(std::chrono::milliseconds(lat));
        if (down.load(std::memory_order_relaxed)) {
          cut_connection(res, 0);
          return;
        }
      }
      double er = error_ratio.load(std::memory_order_relaxed);
      if (er > 0 && uniform01() < er) {
        inject_error(req, res);
        return;
      }
      double rr = reset_ratio.load(std::memory_order_relaxed);
      if (rr > 0 && uniform01() < rr) {
        {
          std::lock_guard<std::mutex> lk(mu);
          ++n_resets;
          note_replica_only(req);
        }
        cut_connection(res, 100);
        return;
      }
    }
    switch (kind) {
      case Kind::login:
        return do_login(req, res);
      case Kind::check_page:
        return do_check(req, res, false);
      case Kind::check_json:
        return do_check(req, res, true);
      case Kind::refresh:
        return do_refresh(req, res);
      case Kind::login_page:
        res.status = 200;
        res.set_content(kLoginPage, "text/html; charset=utf-8");
        return;
      case Kind::app_shell:
        return do_app_shell(res);
      case Kind::bundle:
        return do_bundle(req, res);
      case Kind::app_api:
        return do_app_api(req, res);
    }
  }

  // Under mu: records the replica header for the request's session, if any.
  void note_replica_only(const httplib::Request& req) {
    if (req.headers.find("X-Sessiond-Replica") == req.headers.end()) return;
    SidKey key;
    const SidRef* ref = nullptr;
    if (Account* a = account_of(req, key, &ref)) count_replica(*a, req);
  }

  void inject_error(const httplib::Request& req, httplib::Response& res) {
    int status = error_status.load(std::memory_order_relaxed);
    int ra = retry_after_s.load(std::memory_order_relaxed);
    {
      std::lock_guard<std::mutex> lk(mu);
      ++n_injected;
      note_replica_only(req);
    }
    res.status = status;
    if ((status == 429 || status == 503) && ra > 0)
      res.set_header("Retry-After", std::to_string(ra));
    res.set_content(R"({"error":"injected"})", "application/json");
  }

  void set_session_cookies(httplib::Response& res, const Issued& is, bool all) {
    res.set_header("Set-Cookie", "sid=" + is.sid + "; Path=/; HttpOnly; SameSite=Lax");
    if (!all) return;
    res.set_header("Set-Cookie", "refresh_token=" + is.refresh_token + "; Path=/; Max-Age=" +
                                     std::to_string(kRefreshTokenMaxAge) + "; HttpOnly");
    res.set_header("Set-Cookie", "csrftoken=" + is.csrftoken + "; Path=/");
  }

  std::string token_body(const std::string& jwt) const {
    std::string body = R"({"token":")";
    body += jwt;
    body += R"(","expires_in":)";
    body += std::to_string(opt.token_ttl.count());
    body += "}";
    return body;
  }

  void do_login(const httplib::Request& req, httplib::Response& res) {
    json j = json::parse(req.body, nullptr, false);
    const json* m = nullptr;
    if (!j.is_discarded() && j.is_object()) {
      auto it = j.find("mobile");
      if (it != j.end() && it->is_string()) m = &*it;
    }
    if (!m || m->get_ref<const std::string&>().empty() ||
        m->get_ref<const std::string&>().size() > 64) {
      {
        std::lock_guard<std::mutex> lk(mu);
        ++n_login;
      }
      res.status = 400;
      res.set_content(R"({"error":"bad_request","detail":"body must be {\"mobile\":\"...\"}"})",
                      "application/json");
      return;
    }
    const std::string& mobile = m->get_ref<const std::string&>();
    Issued is;
    {
      std::lock_guard<std::mutex> lk(mu);
      ++n_login;
      is = login_locked(mobile, Clock::now());
      count_replica(*accounts[mobile], req);
    }
    res.status = 200;
    set_session_cookies(res, is, true);
    res.set_content(token_body(is.jwt), "application/json");
  }

  void do_check(const httplib::Request& req, httplib::Response& res, bool as_json) {
    bool ok;
    {
      std::lock_guard<std::mutex> lk(mu);
      ++n_check;
      Account* a = authenticate(req, Clock::now(), ok);
      if (ok && a->checks++ == 0) a->first_check_seq = ++n_first_checks;
    }
    if (as_json) {
      res.status = ok ? 200 : 401;
      res.set_content(ok ? R"({"loggedIn":true})" : R"({"loggedIn":false})", "application/json");
    } else if (ok) {
      res.status = 200;
      res.set_content(kHomePage, "text/html; charset=utf-8");
    } else {
      res.status = 302;
      res.set_header("Location", kLoginRedirect);
      res.set_content("Found", "text/plain");
    }
  }

  void do_refresh(const httplib::Request& req, httplib::Response& res) {
    bool ok;
    Issued is;
    {
      std::lock_guard<std::mutex> lk(mu);
      ++n_refresh;
      TP now = Clock::now();
      Account* a = authenticate(req, now, ok);
      if (ok) {
        ++a->refreshes;
        is = rotate_locked(*a, now);
      }
    }
    if (!ok) {
      res.status = 401;
      res.set_content(R"({"error":"logged_out"})", "application/json");
      return;
    }
    res.status = 200;
    set_session_cookies(res, is, false);
    res.set_content(token_body(is.jwt), "application/json");
  }

  // A new sid and token for an authenticated session (the previous ones
  // work for rotate_grace more).
  Issued rotate_locked(Account& a, TP now) {
    a.prev_sid = a.sid;
    a.prev_jwt = a.jwt;
    a.has_prev = opt.rotate_grace.count() > 0;
    a.prev_until = now + opt.rotate_grace;
    a.rotated_at = now;
    a.sid = random_sid();
    sids.emplace(a.sid, SidRef{&a, a.gen});
    add_secret(sid_hex(a.sid));
    issue_token(a);
    // The token may have pushed the deadline later: the heap entry is
    // re-armed lazily when it fires.
    return issued_of(a);
  }

  // The same shell for everyone: no session state in it, no activity.
  void do_app_shell(httplib::Response& res) {
    n_shell.fetch_add(1, std::memory_order_relaxed);
    res.status = 200;
    res.set_header("Cache-Control", "no-cache");
    res.set_content(app_shell(bundle_path, hang.load(std::memory_order_relaxed)),
                    "text/html; charset=utf-8");
  }

  void do_bundle(const httplib::Request& req, httplib::Response& res) {
    if (req.path != bundle_path) {
      res.status = 404;
      res.set_content("not found", "text/plain");
      return;
    }
    const std::string etag = "\"" + bundle_hash + "\"";
    res.set_header("Cache-Control", "public, max-age=31536000, immutable");
    res.set_header("ETag", etag);
    auto inm = req.headers.find("If-None-Match");
    if (inm != req.headers.end() && inm->second.find(etag) != std::string::npos) {
      n_bundle_304.fetch_add(1, std::memory_order_relaxed);
      res.status = 304;
      return;
    }
    n_bundle.fetch_add(1, std::memory_order_relaxed);
    n_bundle_bytes.fetch_add(bundle.size(), std::memory_order_relaxed);
    res.status = 200;
    res.set_content(bundle, "application/javascript; charset=utf-8");
  }

  // The app's session call: sid cookie and "Authorization: Bearer <token>"
  // both current (or in rotate_grace); renews both, like /api/refresh.
  void do_app_api(const httplib::Request& req, httplib::Response& res) {
    n_api.fetch_add(1, std::memory_order_relaxed);
    bool ok;
    Issued is;
    {
      std::lock_guard<std::mutex> lk(mu);
      TP now = Clock::now();
      Account* a = authenticate(req, now, ok, /*need_token=*/true);
      if (ok) {
        if (a->api_calls++ == 0 && a->first_check_seq == 0) a->first_check_seq = ++n_first_checks;
        is = rotate_locked(*a, now);
      }
    }
    res.set_header("Cache-Control", opt.api_cacheable ? "public, max-age=600" : "no-store");
    if (!ok) {
      n_api_rejected.fetch_add(1, std::memory_order_relaxed);
      res.status = 401;
      res.set_content(R"({"error":"logged_out"})", "application/json");
      return;
    }
    res.status = 200;
    set_session_cookies(res, is, false);
    res.set_content(token_body(is.jwt), "application/json");
  }

  // ------------------------------------------------------------ servers ---

  std::unique_ptr<httplib::Server> make_site_server() {
    auto s = std::make_unique<httplib::Server>();
    configure_server(*s, opt.threads);
    s->Post("/api/login",
            [this](const httplib::Request& q, httplib::Response& r) { serve(Kind::login, q, r); });
    if (opt.client_rendered) {
      auto shell = [this](const httplib::Request& q, httplib::Response& r) {
        serve(Kind::app_shell, q, r);
      };
      s->Get("/pwa", shell);
      s->Get("/auth/login", shell);  // the app's own route, when reloaded
      s->Get(
          R"(/static/app\.[0-9a-f]+\.js)",
          [this](const httplib::Request& q, httplib::Response& r) { serve(Kind::bundle, q, r); });
      auto api = [this](const httplib::Request& q, httplib::Response& r) {
        serve(Kind::app_api, q, r);
      };
      s->Get("/api/pwa/session", api);
      s->Post("/api/pwa/session", api);
    } else {
      s->Get("/pwa", [this](const httplib::Request& q, httplib::Response& r) {
        serve(Kind::check_page, q, r);
      });
    }
    s->Get("/api/me", [this](const httplib::Request& q, httplib::Response& r) {
      serve(Kind::check_json, q, r);
    });
    s->Post("/api/refresh", [this](const httplib::Request& q, httplib::Response& r) {
      serve(Kind::refresh, q, r);
    });
    s->Get("/login", [this](const httplib::Request& q, httplib::Response& r) {
      serve(Kind::login_page, q, r);
    });
    return s;
  }

  static void json_reply(httplib::Response& res, int status, const json& body) {
    res.status = status;
    res.set_content(body.dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
  }

  // Runs `fn(body)` and maps exceptions to 400/500.
  template <class F>
  static void admin_call(const httplib::Request& req, httplib::Response& res, F fn) {
    json body = json::object();
    if (!req.body.empty()) {
      body = json::parse(req.body, nullptr, false);
      if (body.is_discarded()) return json_reply(res, 400, {{"error", "invalid JSON body"}});
    }
    try {
      json_reply(res, 200, fn(body));
    } catch (const std::invalid_argument& e) {
      json_reply(res, 400, {{"error", e.what()}});
    } catch (const json::exception& e) {
      json_reply(res, 400, {{"error", e.what()}});
    } catch (const std::exception& e) {
      json_reply(res, 500, {{"error", e.what()}});
    }
  }

  std::unique_ptr<httplib::Server> make_admin_server(FakeSite& self) {
    auto s = std::make_unique<httplib::Server>();
    configure_server(*s, kAdminThreads);
    s->Post("/faults", [&self](const httplib::Request& q, httplib::Response& r) {
      admin_call(q, r, [&](const json& b) {
        self.set_faults(b);
        return self.faults();
      });
    });
    s->Get("/faults", [&self](const httplib::Request&, httplib::Response& r) {
      json_reply(r, 200, self.faults());
    });
    s->Post("/logout", [&self](const httplib::Request& q, httplib::Response& r) {
      admin_call(q, r, [&](const json& b) {
        if (!b.contains("mobiles") || !b["mobiles"].is_array())
          throw std::invalid_argument("body must be {\"mobiles\":[...]}");
        auto mobiles = b["mobiles"].get<std::vector<std::string>>();
        int n = self.force_logout(mobiles);
        return json{{"logged_out", n}};
      });
    });
    s->Post("/seed", [&self](const httplib::Request& q, httplib::Response& r) {
      admin_call(q, r, [&](const json& b) {
        if (!b.contains("dir") || !b["dir"].is_string())
          throw std::invalid_argument("\"dir\" (string) is required");
        int count = b.value("count", 1);
        std::string first = b.value("first_mobile", std::string("09120000000"));
        int ls = b.value("localstorage_bytes", 20000);
        return json{
            {"mobiles", self.write_session_files(b["dir"].get<std::string>(), count, first, ls)}};
      });
    });
    s->Get("/stats", [&self](const httplib::Request& q, httplib::Response& r) {
      std::string ps = q.get_param_value("per_session");
      json_reply(r, 200, self.stats(ps == "1" || ps == "true"));
    });
    s->Get("/secrets", [&self](const httplib::Request&, httplib::Response& r) {
      json_reply(r, 200, self.issued_secrets());
    });
    s->Get("/healthz", [](const httplib::Request&, httplib::Response& r) {
      r.set_content("ok\n", "text/plain");
    });
    return s;
  }

  // Starts listen_after_bind on its own thread and waits until it runs (a
  // stop() before that would be lost in cpp-httplib 0.11).
  static std::thread run_server(httplib::Server& s) {
    httplib::Server* raw = &s;
    std::thread t([raw] { raw->listen_after_bind(); });
    auto give_up = Clock::now() + std::chrono::seconds(10);
    while (!s.is_running() && Clock::now() < give_up)
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    return t;
  }

  // Under life_mu.
  void reap_retired() {
    for (auto it = retired.begin(); it != retired.end();) {
      if (!it->first->is_running()) {
        it->second.join();
        it = retired.erase(it);
      } else {
        ++it;
      }
    }
  }

  // Under life_mu.
  void bring_up_locked() {
    if (site) return;
    reap_retired();
    auto s = make_site_server();
    int p = port.load();
    if (p == 0) {
      p = s->bind_to_any_port(opt.host);
      if (p < 0)
        throw std::runtime_error("fakesite: cannot bind " + opt.host + " (ephemeral port)");
    } else if (!s->bind_to_port(opt.host, p)) {
      throw std::runtime_error("fakesite: cannot bind " + opt.host + ":" + std::to_string(p));
    }
    port = p;
    site_thread = run_server(*s);
    site = std::move(s);
    {
      std::lock_guard<std::mutex> lk(mu);
      if (!outages.empty() && outages.back().second == TP::max())
        outages.back().second = Clock::now();
    }
    down = false;
  }

  // Under life_mu.
  void bring_down_locked() {
    if (!site) return;
    down = true;
    {
      std::lock_guard<std::mutex> lk(mu);
      outages.emplace_back(Clock::now(), TP::max());
    }
    site->stop();  // closes the listening socket: connects are refused from here on
    reap_retired();
    retired.emplace_back(std::move(site), std::move(site_thread));
  }

  void sweep_loop() {
    std::unique_lock<std::mutex> lk(sweep_mu);
    while (!sweep_stop) {
      bool done;
      {
        std::lock_guard<std::mutex> g(mu);
        done = sweep_locked(Clock::now(), kSweepBatch);
      }
      if (!done) {  // more due: let requests in, then continue
        lk.unlock();
        std::this_thread::yield();
        lk.lock();
        continue;
      }
      sweep_cv.wait_for(lk, kSweepInterval, [this] { return sweep_stop; });
    }
  }
};

// ============================================================== FakeSite ===

FakeSite::FakeSite(Options options) : impl_(std::make_unique<Impl>(std::move(options))) {
  if (impl_->opt.threads < 1) throw std::invalid_argument("fakesite: threads must be >= 1");
  if (impl_->opt.port < 0 || impl_->opt.port > 65535 || impl_->opt.admin_port < 0 ||
      impl_->opt.admin_port > 65535)
    throw std::invalid_argument("fakesite: port out of range");
  impl_->port = impl_->opt.port;
}

FakeSite::~FakeSite() {
  try {
    stop();
  } catch (...) {
  }
}

void FakeSite::start() {
  Impl& m = *impl_;
  std::lock_guard<std::mutex> lk(m.life_mu);
  if (m.started) throw std::logic_error("fakesite: start() called twice");
  m.bring_up_locked();  // throws
  auto admin = m.make_admin_server(*this);
  int ap = m.opt.admin_port;
  bool bound;
  if (ap == 0) {
    ap = admin->bind_to_any_port(m.opt.host);
    bound = ap > 0;
  } else {
    bound = admin->bind_to_port(m.opt.host, ap);
  }
  if (!bound) {
    m.site->stop();
    m.site_thread.join();
    m.site.reset();
    m.down = true;
    throw std::runtime_error("fakesite: cannot bind admin port " + m.opt.host + ":" +
                             std::to_string(m.opt.admin_port));
  }
  m.admin_port = ap;
  m.admin_thread = Impl::run_server(*admin);
  m.admin = std::move(admin);
  m.started = true;
  if (m.want_down) m.bring_down_locked();
  m.sweeper = std::thread([&m] { m.sweep_loop(); });
}

void FakeSite::stop() {
  Impl& m = *impl_;
  {
    std::lock_guard<std::mutex> lk(m.life_mu);
    if (!m.started || m.stopped) return;
    m.stopped = true;
  }
  // The admin listener first, without life_mu: its handlers take life_mu.
  m.admin->stop();
  m.admin_thread.join();
  decltype(m.retired) retired;
  {
    std::lock_guard<std::mutex> lk(m.life_mu);
    m.bring_down_locked();
    retired.swap(m.retired);
  }
  for (auto& r : retired) r.second.join();
  {
    std::lock_guard<std::mutex> lk(m.sweep_mu);
    m.sweep_stop = true;
  }
  m.sweep_cv.notify_all();
  if (m.sweeper.joinable()) m.sweeper.join();
}

int FakeSite::port() const {
  return impl_->port.load();
}
int FakeSite::admin_port() const {
  return impl_->admin_port.load();
}
std::string FakeSite::base_url() const {
  return "http://" + impl_->opt.host + ":" + std::to_string(port());
}

nlohmann::json FakeSite::stats(bool per_session) const {
  Impl& m = *impl_;
  json out;
  std::lock_guard<std::mutex> lk(m.mu);
  TP now = Clock::now();
  m.sweep_locked(now, static_cast<std::size_t>(-1));
  out["up"] = !m.down.load();
  out["sessions"] = m.accounts.size();
  out["active"] = m.active;
  out["lost"] = m.lost;
  out["expired_during_outage"] = m.expired_outage;
  out["forced_logout"] = m.forced;
  out["stale_cookie_requests"] = m.stale;
  out["requests"] = {{"login", m.n_login},
                     {"check", m.n_check},
                     {"refresh", m.n_refresh},
                     {"injected_errors", m.n_injected},
                     {"resets", m.n_resets}};
  out["app"] = {{"shell_requests", m.n_shell.load()},
                {"bundle_fetches", m.n_bundle.load()},
                {"bundle_bytes_served", m.n_bundle_bytes.load()},
                {"bundle_not_modified", m.n_bundle_304.load()},
                {"api_calls", m.n_api.load()},
                {"api_rejected", m.n_api_rejected.load()}};
  if (per_session) {
    json ps = json::object();
    for (auto& [mobile, a] : m.accounts) {
      json reps = json::object();
      for (auto& r : a->replicas) reps[r.first] = r.second;
      ps[mobile] = {
          {"state", state_name(a->state)},
          {"checks", a->checks},
          {"first_check_seq", a->first_check_seq},
          {"refreshes", a->refreshes},
          {"api_calls", a->api_calls},
          {"replicas", std::move(reps)},
          // CLOCK_MONOTONIC (Python's time.monotonic_ns()); 0: never rotated.
          {"rotated_at_monotonic_ns",
           std::chrono::duration_cast<std::chrono::nanoseconds>(a->rotated_at.time_since_epoch())
               .count()},
          {"idle_ms",
           std::chrono::duration_cast<std::chrono::milliseconds>(now - a->last_seen).count()}};
    }
    out["per_session"] = std::move(ps);
  }
  return out;
}

void FakeSite::set_faults(const nlohmann::json& faults) {
  Impl& m = *impl_;
  Faults f = parse_faults(faults);
  {
    std::lock_guard<std::mutex> lk(m.fault_mu);
    m.faults_set = f;
    m.error_ratio = f.error_ratio;
    m.reset_ratio = f.reset_ratio;
    m.error_status = f.error_status;
    m.retry_after_s = f.retry_after_s;
    m.latency_ms = f.latency_ms;
    m.hang = f.hang;
    m.faults_on = f.error_ratio > 0 || f.reset_ratio > 0 || f.latency_ms > 0;
  }
  std::lock_guard<std::mutex> lk(m.life_mu);
  m.want_down = f.down;
  if (!m.started || m.stopped) return;
  if (f.down)
    m.bring_down_locked();
  else
    m.bring_up_locked();
}

nlohmann::json FakeSite::faults() const {
  Impl& m = *impl_;
  Faults f;
  {
    std::lock_guard<std::mutex> lk(m.fault_mu);
    f = m.faults_set;
  }
  bool is_down;
  {
    std::lock_guard<std::mutex> lk(m.life_mu);
    is_down = m.started ? (m.stopped || !m.site) : m.want_down;
  }
  return {{"error_ratio", f.error_ratio},
          {"error_status", f.error_status},
          {"retry_after_s", f.retry_after_s},
          {"latency_ms", f.latency_ms},
          {"reset_ratio", f.reset_ratio},
          {"down", is_down},
          {"hang", f.hang}};
}

int FakeSite::force_logout(const std::vector<std::string>& mobiles) {
  Impl& m = *impl_;
  std::lock_guard<std::mutex> lk(m.mu);
  TP now = Clock::now();
  int n = 0;
  for (auto& mobile : mobiles) {
    auto it = m.accounts.find(mobile);
    if (it == m.accounts.end()) continue;
    Account& a = *it->second;
    if (!m.check_deadline(a, now)) continue;  // already gone (maybe lost just now)
    a.state = State::logged_out;
    --m.active;
    ++m.forced;
    ++n;
  }
  return n;
}

std::vector<std::string> FakeSite::write_session_files(const std::string& dir, int count,
                                                       const std::string& first_mobile,
                                                       int localstorage_bytes) {
  Impl& m = *impl_;
  if (count < 0 || count > 10000000) throw std::invalid_argument("count must be in [0, 10000000]");
  if (localstorage_bytes < 0 || localstorage_bytes > 64 * 1024 * 1024)
    throw std::invalid_argument("localstorage_bytes must be in [0, 67108864]");
  if (first_mobile.empty() || first_mobile.size() > 18 ||
      !std::all_of(first_mobile.begin(), first_mobile.end(),
                   [](char c) { return c >= '0' && c <= '9'; }))
    throw std::invalid_argument("first_mobile must be 1..18 digits");
  if (dir.empty()) throw std::invalid_argument("dir must not be empty");
  const std::size_t width = first_mobile.size();
  const std::uint64_t first = std::stoull(first_mobile);
  std::uint64_t limit = 1;
  for (std::size_t i = 0; i < width; ++i) limit *= 10;
  if (first + static_cast<std::uint64_t>(count) > limit)
    throw std::invalid_argument("first_mobile + count does not fit in " + std::to_string(width) +
                                " digits");

  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw std::runtime_error("cannot create " + dir + ": " + ec.message());

  const std::string origin = base_url();
  std::vector<std::string> mobiles;
  mobiles.reserve(static_cast<std::size_t>(count));
  for (int i = 0; i < count; ++i) {
    std::string num = std::to_string(first + static_cast<std::uint64_t>(i));
    std::string mobile = std::string(width - num.size(), '0') + num;
    Issued is;
    {
      std::lock_guard<std::mutex> lk(m.mu);
      is = m.login_locked(mobile, Clock::now());
    }
    const double now = unix_now_frac();
    auto cookie = [&](const char* name, const std::string& value, json expires, bool http_only) {
      return json{{"name", name},
                  {"value", value},
                  {"domain", m.opt.host},
                  {"path", "/"},
                  {"expires", std::move(expires)},
                  {"httpOnly", http_only},
                  {"secure", false},
                  {"sameSite", "Lax"}};
    };
    json cookies = json::array();
    cookies.push_back(cookie("sid", is.sid, -1, true));
    cookies.push_back(cookie("refresh_token", is.refresh_token, now + kRefreshTokenMaxAge, true));
    cookies.push_back(cookie("csrftoken", is.csrftoken, -1, false));
    cookies.push_back(cookie("pwa_access_token", is.jwt, is.jwt_exp, false));
    json ls = json::array();
    if (m.opt.client_rendered) ls.push_back({{"name", kAppTokenKey}, {"value", is.jwt}});
    if (localstorage_bytes > 0)
      ls.push_back({{"name", "redux_localstorage_simple"},
                    {"value", local_storage_value(mobile, is.jwt, localstorage_bytes)}});
    json doc = {
        {"cookies", std::move(cookies)},
        {"origins", json::array({json{{"origin", origin}, {"localStorage", std::move(ls)}}})}};
    write_file_atomic((std::filesystem::path(dir) / ("session-" + mobile + ".json")).string(),
                      doc.dump(2));
    mobiles.push_back(std::move(mobile));
  }
  return mobiles;
}

nlohmann::json FakeSite::issued_secrets() const {
  Impl& m = *impl_;
  std::lock_guard<std::mutex> lk(m.mu);
  json out = {{"values", m.secrets}};
  if (m.secrets_dropped > 0) out["dropped"] = m.secrets_dropped;
  return out;
}

std::chrono::milliseconds parse_duration(const std::string& text) {
  std::size_t i = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
  if (i == 0 || i > 12)
    throw std::invalid_argument("bad duration '" + text + "' (want e.g. 500ms, 3s, 10m, 1h)");
  long long n = std::stoll(text.substr(0, i));
  std::string unit = text.substr(i);
  long long mult;
  if (unit == "ms")
    mult = 1;
  else if (unit.empty() || unit == "s")
    mult = 1000;
  else if (unit == "m")
    mult = 60 * 1000;
  else if (unit == "h")
    mult = 3600 * 1000;
  else
    throw std::invalid_argument("bad duration unit in '" + text + "' (want ms, s, m or h)");
  return std::chrono::milliseconds(n * mult);
}

}  // namespace fakesite
