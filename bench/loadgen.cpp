// sessiond-loadgen: the raw load generator of bench/run.py throughput.
//
// It does per session what profiles/demo.json does per refresh cycle, with
// nothing else around it (no scheduling, no files, no metrics): GET /pwa
// (logged in: 200 and "homeSection" in the body), then POST /api/refresh with
// X-CSRFToken and an empty JSON body (logged in: 200 and a JSON /token, which
// becomes the pwa_access_token cookie). The site rotates sid on every refresh,
// so each session keeps its own libcurl cookie engine. Same transport as
// sessiond: libcurl multi, one thread, keep-alive connections in the multi's
// connection cache.
//
// C lanes each loop: take the next free session round-robin, check, refresh;
// one refresh counts when both answered "logged in". After --seconds the run
// stops (transfers still in flight are abandoned, not counted) and prints one
// JSON line. Bench tool only: not linked into sessiond; loopback URLs only.
//
// --save: each refresh also writes the session's file with sessiond's file
// operations (its cookies from the jar into the document, serialised, a new
// 0600 temp file, renameat2(RENAME_EXCHANGE) with the old one, which is then
// unlinked) but none of its checks or its sync, on the same thread: what one
// event loop per core would cost at best with a file per refresh
// (docs/PERFORMANCE.md, issue 11); the document stays in memory, not re-read.

#include <curl/curl.h>
#include <fcntl.h>
#include <stdio.h>  // renameat2
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "sessiond/cookie_jar.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

constexpr long kTimeoutMs = 5000;          // the demo profile's timeout
constexpr std::size_t kMaxBody = 1 << 20;  // bounds a misbehaving answer
constexpr int kMaxConcurrency = 4096;
constexpr int kMaxSeconds = 3600;
constexpr std::size_t kMaxSessions = 1000000;

struct Options {
  std::string base_url;
  std::string dir;
  int concurrency = 64;
  double seconds = 10;
  // Unset: no Accept-Encoding header (what plain wrk sends); "all": every
  // encoding libcurl decodes (what sessiond sends with the shipped profile);
  // anything else: that header value (e.g. "identity").
  bool accept_encoding_set = false;
  std::string accept_encoding;
  bool save = false;  // write each refreshed session's file (see the top)
};

[[noreturn]] void usage(const std::string& why) {
  std::cerr
      << "sessiond-loadgen: " << why << "\n"
      << "usage: sessiond-loadgen --base-url http://127.0.0.1:PORT --dir DIR\n"
         "         [--concurrency C (64)] [--seconds S (10)] [--accept-encoding VALUE|all]\n"
         "         [--save]\n"
         "DIR holds Playwright storage-state files session-*.json (the fake site's POST /seed).\n"
         "Prints one JSON line: refreshes, seconds, refreshes_per_s, requests, errors,\n"
         "logged_out, cpu_s, save, save_errors, sessions_saved.\n";
  std::exit(2);
}

Options parse_args(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto need = [&]() -> std::string {
      if (i + 1 >= argc) usage(a + " needs a value");
      return argv[++i];
    };
    try {
      if (a == "--base-url")
        o.base_url = need();
      else if (a == "--dir")
        o.dir = need();
      else if (a == "--concurrency")
        o.concurrency = std::stoi(need());
      else if (a == "--seconds")
        o.seconds = std::stod(need());
      else if (a == "--accept-encoding") {
        o.accept_encoding_set = true;
        o.accept_encoding = need();
      } else if (a == "--save")
        o.save = true;
      else if (a == "-h" || a == "--help")
        usage("help");
      else
        usage("unknown option " + a);
    } catch (const std::logic_error&) {
      usage("bad value for " + a);
    }
  }
  if (o.base_url.empty() || o.dir.empty()) usage("--base-url and --dir are required");
  while (!o.base_url.empty() && o.base_url.back() == '/') o.base_url.pop_back();
  // Loopback only: this tool generates load and must not aim it elsewhere.
  const bool loopback = o.base_url.rfind("http://127.0.0.1:", 0) == 0 ||
                        o.base_url.rfind("http://[::1]:", 0) == 0 ||
                        o.base_url.rfind("http://localhost:", 0) == 0;
  if (!loopback)
    usage("--base-url must be http://127.0.0.1:PORT, http://[::1]:PORT or http://localhost:PORT");
  if (o.concurrency < 1 || o.concurrency > kMaxConcurrency)
    usage("--concurrency must be in [1, 4096]");
  if (!(o.seconds > 0) || o.seconds > kMaxSeconds) usage("--seconds must be in (0, 3600]");
  return o;
}

double cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto tv = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
  return tv(ru.ru_utime) + tv(ru.ru_stime);
}

struct Session {
  CURL* easy = nullptr;  // owns the session's cookie engine
  std::string path;      // --save: its file
  json doc;              // --save: its document (cookies replaced at each save)
  bool saved = false;    // --save: written at least once
  std::string csrftoken;
  std::string domain = "127.0.0.1";  // of the sid cookie: the token cookie goes there too
  bool busy = false;
  bool dead = false;  // logged out: skipped from then on
};

struct Lane {
  Session* session = nullptr;
  bool refreshing = false;  // false: the check is in flight
  std::string body;
  std::string next_csrf;  // a csrftoken the answer set, if any
};

size_t write_cb(char* p, size_t sz, size_t n, void* ud) {
  auto* lane = static_cast<Lane*>(ud);
  if (lane->body.size() + sz * n > kMaxBody) return 0;  // aborts the transfer
  lane->body.append(p, sz * n);
  return sz * n;
}

// Watches for a new csrftoken (the demo site never rotates it, but a check
// reading "{cookie:csrftoken}" would follow it).
size_t header_cb(char* p, size_t sz, size_t n, void* ud) {
  auto* lane = static_cast<Lane*>(ud);
  std::string_view h(p, sz * n);
  constexpr std::string_view kPrefix = "set-cookie: csrftoken=";
  if (h.size() > kPrefix.size()) {
    bool match = true;
    for (std::size_t i = 0; i < kPrefix.size() && match; ++i)
      match = std::tolower(static_cast<unsigned char>(h[i])) == kPrefix[i];
    if (match) {
      auto v = h.substr(kPrefix.size());
      lane->next_csrf = std::string(v.substr(0, v.find_first_of(";\r\n")));
    }
  }
  return sz * n;
}

struct Counters {
  long long refreshes = 0, requests = 0, errors = 0, logged_out = 0, save_errors = 0;
};

// The session's jar into its document, written to a temp file beside it and
// exchanged with it; the old version is unlinked. False on any error
// (counted, the run goes on).
bool save_session(Session& s) {
  sessiond::CookieLines jar;
  curl_slist* list = nullptr;
  if (curl_easy_getinfo(s.easy, CURLINFO_COOKIELIST, &list) != CURLE_OK) return false;
  for (curl_slist* l = list; l; l = l->next) jar.emplace_back(l->data);
  curl_slist_free_all(list);
  s.doc["cookies"] = sessiond::playwright_from_jar(s.doc["cookies"], jar);
  const std::string text = s.doc.dump();
  const std::string tmp = s.path + ".loadgen-tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return false;
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ok = ::close(fd) == 0 && ok;
  if (ok) ok = ::renameat2(AT_FDCWD, tmp.c_str(), AT_FDCWD, s.path.c_str(), RENAME_EXCHANGE) == 0;
  ::unlink(tmp.c_str());  // the old version, or the new one when the exchange failed
  return ok;
}

class Generator {
 public:
  explicit Generator(const Options& o) : opt_(o) {
    multi_ = curl_multi_init();
    if (!multi_) throw std::runtime_error("curl_multi_init failed");
    check_url_ = opt_.base_url + "/pwa";
    refresh_url_ = opt_.base_url + "/api/refresh";
    if (opt_.accept_encoding_set && opt_.accept_encoding != "all")
      ae_header_ = "Accept-Encoding: " + opt_.accept_encoding;
    // One list for every check (read by libcurl until each transfer ends).
    if (!ae_header_.empty()) check_headers_ = curl_slist_append(nullptr, ae_header_.c_str());
  }
  ~Generator() {
    for (auto& l : lanes_)
      if (l.session) curl_multi_remove_handle(multi_, l.session->easy);
    for (auto& s : sessions_) curl_easy_cleanup(s.easy);
    curl_multi_cleanup(multi_);
    for (auto* l : refresh_headers_) curl_slist_free_all(l);
    curl_slist_free_all(check_headers_);
  }

  void load(const std::string& dir) {
    std::vector<std::filesystem::path> files;
    for (const auto& e : std::filesystem::directory_iterator(dir)) {
      const std::string name = e.path().filename().string();
      if (name.rfind("session-", 0) == 0 && e.path().extension() == ".json")
        files.push_back(e.path());
      if (files.size() > kMaxSessions) throw std::runtime_error("too many session files");
    }
    std::sort(files.begin(), files.end());
    sessions_.resize(files.size());
    for (std::size_t i = 0; i < files.size(); ++i) {
      std::ifstream in(files[i]);
      json doc = json::parse(in, nullptr, false);
      if (doc.is_discarded() || !doc.contains("cookies") || !doc["cookies"].is_array())
        throw std::runtime_error("not a storage-state file: " + files[i].string());
      Session& s = sessions_[i];
      if (opt_.save) {
        s.path = files[i].string();
        s.doc = doc;
      }
      s.easy = curl_easy_init();
      if (!s.easy) throw std::runtime_error("curl_easy_init failed");
      curl_easy_setopt(s.easy, CURLOPT_COOKIEFILE, "");  // the engine on, no file
      for (const auto& c : doc["cookies"]) {
        if (!c.is_object()) continue;
        if (c.value("name", "") == "csrftoken") s.csrftoken = c.value("value", "");
        if (c.value("name", "") == "sid") s.domain = c.value("domain", "127.0.0.1");
      }
      // sessiond's own conversion: both load the same jar.
      for (const auto& line : sessiond::jar_from_playwright(doc["cookies"]))
        curl_easy_setopt(s.easy, CURLOPT_COOKIELIST, line.c_str());
    }
    if (sessions_.empty()) throw std::runtime_error("no session-*.json files in " + dir);
    refresh_headers_.assign(sessions_.size(), nullptr);
  }

  Counters run() {
    lanes_.resize(static_cast<std::size_t>(opt_.concurrency));
    const auto start = Clock::now();
    const auto deadline = start + std::chrono::duration_cast<Clock::duration>(
                                      std::chrono::duration<double>(opt_.seconds));
    for (auto& l : lanes_) start_next(l);
    int running = 1;
    while (Clock::now() < deadline && idle_lanes_ < lanes_.size()) {
      curl_multi_perform(multi_, &running);
      int left = 0;
      while (CURLMsg* m = curl_multi_info_read(multi_, &left)) {
        if (m->msg != CURLMSG_DONE) continue;
        Lane* lane = nullptr;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, reinterpret_cast<char**>(&lane));
        CURLcode rc = m->data.result;
        curl_multi_remove_handle(multi_, m->easy_handle);
        finished(*lane, rc);
        if (Clock::now() >= deadline) break;
      }
      auto ms =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
      if (ms > 0)
        curl_multi_poll(multi_, nullptr, 0, static_cast<int>(std::min<long long>(ms, 100)),
                        nullptr);
    }
    elapsed_ = std::chrono::duration<double>(Clock::now() - start).count();
    return counters_;
  }

  double elapsed() const { return elapsed_; }
  std::size_t sessions_saved() const {
    return static_cast<std::size_t>(std::count_if(sessions_.begin(), sessions_.end(),
                                                  [](const Session& s) { return s.saved; }));
  }

 private:
  // Picks the next session that is neither busy in another lane nor logged
  // out, round-robin; leaves the lane idle when there is none.
  void start_next(Lane& l) {
    l.session = nullptr;
    for (std::size_t tries = 0; tries < sessions_.size(); ++tries) {
      Session& s = sessions_[next_];
      next_ = (next_ + 1) % sessions_.size();
      if (s.busy || s.dead) continue;
      s.busy = true;
      l.session = &s;
      break;
    }
    if (!l.session) {
      ++idle_lanes_;
      return;
    }
    start_check(l);
  }

  void common(Lane& l, CURL* e, const char* url) {
    l.body.clear();
    l.next_csrf.clear();
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, static_cast<void*>(&l));
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, kTimeoutMs);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &write_cb);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, static_cast<void*>(&l));
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, &header_cb);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, static_cast<void*>(&l));
    if (opt_.accept_encoding_set && opt_.accept_encoding == "all")
      curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
  }

  void add(Lane& l) {
    if (curl_multi_add_handle(multi_, l.session->easy) != CURLM_OK) {
      ++counters_.errors;
      release(l);
      ++idle_lanes_;
    }
  }

  void start_check(Lane& l) {
    CURL* e = l.session->easy;
    l.refreshing = false;
    common(l, e, check_url_.c_str());
    curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, check_headers_);
    add(l);
  }

  void start_refresh(Lane& l) {
    Session& s = *l.session;
    CURL* e = s.easy;
    l.refreshing = true;
    common(l, e, refresh_url_.c_str());
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(0));
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, "");
    // The header list must live until the transfer ends: one per session.
    auto& list = refresh_headers_[static_cast<std::size_t>(&s - sessions_.data())];
    curl_slist_free_all(list);
    list = curl_slist_append(nullptr, ("X-CSRFToken: " + s.csrftoken).c_str());
    list = curl_slist_append(list, "Content-Type: application/json");
    if (!ae_header_.empty()) list = curl_slist_append(list, ae_header_.c_str());
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, list);
    add(l);
  }

  void release(Lane& l) {
    if (l.session) l.session->busy = false;
    l.session = nullptr;
  }

  void finished(Lane& l, CURLcode rc) {
    ++counters_.requests;
    Session& s = *l.session;
    long status = 0;
    curl_easy_getinfo(s.easy, CURLINFO_RESPONSE_CODE, &status);
    if (!l.next_csrf.empty()) s.csrftoken = l.next_csrf;
    enum { in, out, error } verdict = error;
    if (rc == CURLE_OK) {
      if (status == 401 || status == 403) verdict = out;
      if (!l.refreshing) {
        if (status == 200 && l.body.find("homeSection") != std::string::npos) verdict = in;
        if (status >= 301 && status <= 308 && status != 304 && status != 305 && status != 306) {
          char* loc = nullptr;
          curl_easy_getinfo(s.easy, CURLINFO_REDIRECT_URL, &loc);
          if (loc && std::strstr(loc, "/login")) verdict = out;
        }
      } else if (status == 200) {
        json j = json::parse(l.body, nullptr, false);
        const json* tok = nullptr;
        if (j.is_object()) {
          auto it = j.find("token");
          if (it != j.end() && it->is_string()) tok = &*it;
        }
        if (tok) {
          verdict = in;
          // The captured token replaces the cookie (same name, domain, path).
          std::string line = s.domain + "\tFALSE\t/\tFALSE\t0\tpwa_access_token\t" +
                             tok->get_ref<const std::string&>();
          curl_easy_setopt(s.easy, CURLOPT_COOKIELIST, line.c_str());
        }
      }
    }
    if (verdict == out) {
      ++counters_.logged_out;
      s.dead = true;
    } else if (verdict == error) {
      ++counters_.errors;
    }
    if (verdict == in && !l.refreshing) {
      start_refresh(l);
      return;
    }
    if (verdict == in) {
      ++counters_.refreshes;
      if (opt_.save) {
        if (save_session(s))
          s.saved = true;
        else
          ++counters_.save_errors;
      }
    }
    release(l);
    start_next(l);
  }

  Options opt_;
  CURLM* multi_ = nullptr;
  std::string check_url_, refresh_url_, ae_header_;
  std::vector<Session> sessions_;
  std::vector<Lane> lanes_;
  std::vector<curl_slist*> refresh_headers_;
  curl_slist* check_headers_ = nullptr;
  std::size_t next_ = 0;
  std::size_t idle_lanes_ = 0;
  Counters counters_;
  double elapsed_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
  Options opt = parse_args(argc, argv);
  // Backstop: whatever happens, the process ends shortly after --seconds.
  alarm(static_cast<unsigned>(opt.seconds) + 30);
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
    std::cerr << "sessiond-loadgen: curl_global_init failed\n";
    return 1;
  }
  int rc = 0;
  try {
    Generator g(opt);
    g.load(opt.dir);
    const double cpu0 = cpu_seconds();
    Counters c = g.run();
    const double cpu = cpu_seconds() - cpu0;
    const double secs = g.elapsed();
    json out = {{"refreshes", c.refreshes},
                {"seconds", std::round(secs * 1000) / 1000},
                {"refreshes_per_s", secs > 0 ? std::round(c.refreshes / secs * 10) / 10 : 0.0},
                {"requests", c.requests},
                {"errors", c.errors},
                {"logged_out", c.logged_out},
                {"save", opt.save},
                {"save_errors", c.save_errors},
                {"sessions_saved", g.sessions_saved()},
                {"cpu_s", std::round(cpu * 1000) / 1000},
                {"concurrency", opt.concurrency}};
    std::cout << out.dump() << std::endl;
  } catch (const std::exception& e) {
    std::cerr << "sessiond-loadgen: " << e.what() << "\n";
    rc = 1;
  }
  curl_global_cleanup();
  return rc;
}
